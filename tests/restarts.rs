//! Restarts keep, per image, the EM run with the lowest last-step loss.
use burn::tensor::Device;
use gestalt::config;
use gestalt::data::loader::{self, NemBatch};
use gestalt::nem::Nem;
use gestalt::train::{Family, Shard};
use gestalt::util::derive_seed;

fn vals(t: burn::tensor::Tensor<1>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

#[test]
fn restarts_keep_each_images_lowest_loss_run() {
    let words: Vec<String> = [
        "dataset.shapes24",
        "nem.k=3",
        "nem.nr_steps=3",
        "network.recurrent=[{\"name\":\"rnn\",\"size\":8,\"act\":\"sigmoid\",\"ln\":false}]",
        "network.output=[{\"name\":\"fc\",\"size\":576,\"act\":\"*\"}]",
    ]
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
        masks: vec![],
    };
    // The restarts are copies of the batch in one pass: unroll those copies with the same draws
    // (one chunk, from restart 0).
    let shard = Shard::whole(derive_seed(5, &[0]), 24);
    let runs = nem.unroll(&net, &loader::repeat(&batch, 4), &shard, &d, true).kept.unwrap();
    let best = nem.unroll_best(&net, &batch, 5, &d, 4).kept.unwrap();
    let (all, kept) = (vals(runs.image_loss), vals(best.image_loss));
    let ints =
        |t: burn::tensor::Tensor<3, burn::tensor::Int>| t.into_data().convert::<i64>().try_to_vec::<i64>().unwrap();
    assert_eq!(best.assignments.dims(), [3, 6, 576]);
    let (all_assign, kept_assign) = (ints(runs.assignments), ints(best.assignments));
    let mut improved = false;
    for img in 0..6 {
        let losses: Vec<f64> = (0..4).map(|r| all[r * 6 + img]).collect();
        let r = (0..4).min_by(|&a, &b| losses[a].total_cmp(&losses[b])).unwrap();
        assert!((kept[img] - losses[r]).abs() < 1e-4, "image {img}: kept {} vs runs {losses:?}", kept[img]);
        improved |= losses[r] < losses[0] - 1e-3;
        // The last step's grouping is the chosen run's.
        let last = |a: &[i64], b: usize, i: usize| a[(2 * b + i) * 576..][..576].to_vec();
        assert_eq!(last(&kept_assign, 6, img), last(&all_assign, 24, r * 6 + img), "image {img}");
    }
    assert!(improved, "some image found a better run than the first: {all:?}");
}
