//! Restarts keep, per image, the EM run with the lowest last-step loss.
use burn::tensor::Device;
use gestalt::config;
use gestalt::data::loader::NemBatch;
use gestalt::nem::Nem;
use gestalt::train::Family;

fn vals(t: burn::tensor::Tensor<1>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

#[test]
fn restarts_never_keep_a_worse_run_than_the_first() {
    let words: Vec<String> = ["dataset.shapes24", "nem.k=3", "nem.nr_steps=3", "network.recurrent=[{\"name\":\"rnn\",\"size\":8,\"act\":\"sigmoid\",\"ln\":false}]", "network.output=[{\"name\":\"fc\",\"size\":576,\"act\":\"*\"}]"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let nem = Nem::new(&config::resolve(&words).unwrap()).unwrap();
    let d = Device::flex();
    d.seed(3);
    let net = nem.init_model(&d).unwrap();
    let batch = NemBatch {
        shape: [1, 6, 24, 24, 1],
        features: (0..6 * 576).map(|i| if (i * 7) % 11 < 3 { 1.0 } else { 0.0 }).collect(),
        groups: None,
    };
    d.seed(5);
    let one = nem.unroll_best(&net, &batch, &d, 1).kept.unwrap();
    d.seed(5);
    let best = nem.unroll_best(&net, &batch, &d, 6).kept.unwrap();
    let (a, b) = (vals(one.image_loss), vals(best.image_loss));
    assert!(a.iter().zip(&b).all(|(a, b)| b <= &(a + 1e-3)), "first {a:?} vs best of 6 {b:?}");
    assert!(a.iter().zip(&b).any(|(a, b)| b < &(a - 1e-3)), "some image found a better run: {a:?} vs {b:?}");
    assert_eq!(best.assignments.dims(), [3, 6, 576]);
}
