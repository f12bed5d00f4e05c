//! Data parallelism: a batch shared by two model replicas gives the gradients and losses of one
//! replica (up to float summation order) — on flex (two threads) and with two replicas on one
//! wgpu device, the multi-device path a machine without two GPUs can run.
use burn::module::{ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use gestalt::config;
use gestalt::data::emorl::EmorlBatch;
use gestalt::data::loader::NemBatch;
use gestalt::emorl::Emorl;
use gestalt::nem::Nem;
use gestalt::train::{self, Family};

fn resolve(words: &[&str]) -> config::Resolved {
    config::resolve(&words.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
}

/// Tiny RNN-EM with bit-flip noise: γ's initialisation and the noise are drawn per sample.
fn nem() -> Nem {
    Nem::new(&resolve(&[
        "dataset.shapes24",
        "nem.k=3",
        "nem.nr_steps=3",
        "noise.prob=0.2",
        r#"network.recurrent=[{"name":"rnn","size":8,"act":"sigmoid","ln":false}]"#,
        r#"network.output=[{"name":"fc","size":576,"act":"*"}]"#,
    ]))
    .unwrap()
}

fn nem_batch() -> NemBatch {
    NemBatch {
        shape: [1, 5, 24, 24, 1],
        features: (0..5 * 576).map(|i| if (i * 7) % 11 < 3 { 1.0 } else { 0.0 }).collect(),
        groups: None,
        masks: vec![],
    }
}

/// Tiny EMORL on 12×12 images, GECO active, one refinement step: the refinement gradient input
/// and GECO's reconstruction mean must be the whole batch's.
fn emorl() -> Emorl {
    Emorl::new(&resolve(&[
        "train/tetrominoes/EMORL",
        "Net.K=3",
        "Net.z_size=8",
        "Net.stochastic_layers=2",
        "Net.refinement_iters=1",
        "Net.geco_warm_start=1",
        "Net.input_size=[3,12,12]",
        "training.refinement_curriculum=[[-1,1]]",
    ]))
    .unwrap()
}

fn emorl_batch() -> EmorlBatch {
    let n = 5;
    EmorlBatch {
        shape: [n, 3, 12, 12],
        imgs: (0..n * 3 * 144).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect(),
        masks: Vec::new(),
        e: 4,
        mask_hw: [12, 12],
    }
}

/// Each parameter's gradient, flattened, in the model's order.
fn flat<M: burn::module::Module>(model: &M, grads: &GradientsParams) -> Vec<Vec<f32>> {
    struct Collect<'a>(&'a GradientsParams, Vec<Vec<f32>>);
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let g = self.0.get::<D>(p.id).map(|g| g.into_data().convert::<f32>().try_to_vec::<f32>().unwrap());
            self.1.push(g.unwrap_or_default());
        }
    }
    let mut c = Collect(grads, Vec::new());
    model.visit(&mut c);
    c.1
}

/// The gradients and logged losses of one step at step 5 with `replicas`, from the same weights.
fn one_step<F: Family>(family: &F, batch: &F::Batch, replicas: &[Device]) -> (Vec<Vec<f32>>, Vec<(String, f64)>) {
    let ad: Vec<Device> = replicas.iter().map(|d| d.clone().autodiff()).collect();
    ad[0].seed(3);
    let model = family.init_model(&ad[0]).unwrap();
    let (grads, logged) = train::gradients(family, 11, &model, batch, 5, &ad);
    let logged = logged.into_iter().map(|(k, v)| (k, v.into_scalar::<f64>())).collect();
    (flat(&model, &grads), logged)
}

fn assert_same(one: &(Vec<Vec<f32>>, Vec<(String, f64)>), two: &(Vec<Vec<f32>>, Vec<(String, f64)>), tol: f64) {
    assert_eq!(one.0.len(), two.0.len());
    for (i, (a, b)) in one.0.iter().zip(&two.0).enumerate() {
        assert_eq!(a.len(), b.len(), "parameter {i}");
        let norm = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
        let diff = norm(&mut a.iter().zip(b).map(|(x, y)| (x - y) as f64));
        let size = norm(&mut a.iter().map(|x| *x as f64));
        assert!(diff <= tol * size.max(1e-8), "parameter {i}: ‖Δ‖ {diff:e} against ‖g‖ {size:e}");
    }
    for ((k, a), (k2, b)) in one.1.iter().zip(&two.1) {
        assert_eq!(k, k2);
        assert!((a - b).abs() <= tol * a.abs().max(1e-6), "{k}: {a} vs {b}");
    }
}

#[test]
fn two_cpu_replicas_give_one_replicas_gradients() {
    let d = Device::flex();
    let (nem, b) = (nem(), nem_batch());
    let one = one_step(&nem, &b, std::slice::from_ref(&d));
    assert!(one.0.iter().all(|g| g.iter().any(|v| *v != 0.0)), "every parameter has a gradient");
    assert_same(&one, &one_step(&nem, &b, &[d.clone(), d.clone()]), 1e-5);
    let (emorl, b) = (emorl(), emorl_batch());
    let one = one_step(&emorl, &b, std::slice::from_ref(&d));
    assert!(one.1.iter().any(|(k, _)| k == "norm_delta_lambda_1"), "a refinement step ran");
    assert_same(&one, &one_step(&emorl, &b, &[d.clone(), d.clone()]), 1e-5);
}

#[test]
fn two_replicas_on_one_wgpu_device_give_one_replicas_gradients() {
    let d = match gestalt::backend::device("wgpu", None) {
        Ok(d) => d,
        Err(e) if std::env::var_os("CI").is_none() => return eprintln!("skipping: {e}"),
        Err(e) => panic!("CI needs a wgpu adapter (lavapipe): {e}"),
    };
    let (nem, b) = (nem(), nem_batch());
    let one = one_step(&nem, &b, std::slice::from_ref(&d));
    assert_same(&one, &one_step(&nem, &b, &[d.clone(), d.clone()]), 1e-5);
}
