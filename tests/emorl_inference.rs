//! EMORL's two-stage inference: the refinement network's gradient input against central finite
//! differences (f64), and the shapes of a full pass.
use burn::tensor::{Device, Distribution, FloatDType, Tensor, TensorData};
use gestalt::emorl::inference::{GecoTerm, InferCfg, PriorKind};
use gestalt::emorl::model::{DecoderKind, EmorlNet, NetShape, Posterior};
use gestalt::train::Shard;

fn cfg(k: usize) -> InferCfg {
    InferCfg {
        k,
        layers: 2,
        refinement: 2,
        sigma: 0.3,
        gmm: false,
        kl_beta: 1.0,
        image: [6, 6],
        prior: PriorKind::ReversedPlusPlus,
    }
}

fn net(d: &Device, decoder: DecoderKind) -> EmorlNet {
    let m = EmorlNet::new(&NetShape { image: [6, 6], z_size: 3, layers: 2, decoder, dual_gru: true }, d);
    gestalt::nn::materialize(&m);
    m
}

/// The device's random stream is shared by the process: the tests take turns, so that each one's
/// seeded draws (weights, images, noise) are its own.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// f64 for every tensor of this test binary: the dtype is set once per process, by whichever test
/// runs first, so every test asks for it.
fn device() -> Device {
    let mut d = Device::flex();
    let _ = d.configure(FloatDType::F64);
    d.autodiff()
}

#[test]
fn a_full_pass_has_one_step_per_refinement_and_weighted_total() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let d = device();
    d.seed(1);
    let m = net(&d, DecoderKind::Small);
    let x = Tensor::<4>::random([2, 3, 6, 6], Distribution::Uniform(-1.0, 1.0), &d);
    let out = m.infer(x, &cfg(3), None, &Shard::whole(1, 2));
    assert_eq!(out.steps.len(), 3);
    assert_eq!(out.deltas.len(), 2);
    assert_eq!(out.attention.len(), 2);
    assert_eq!(out.steps[2].rgb.dims(), [2, 3, 3, 6, 6]);
    let v = |t: Tensor<1>| t.into_scalar::<f64>();
    let want: f64 = out.steps.iter().zip([5.0 / 3.0, 4.0 / 3.0, 1.0]).map(|(s, w)| w * v(s.loss.clone())).sum();
    assert!((v(out.total.clone()) - want).abs() < 1e-3 * want.abs().max(1.0));
    // The total trains the whole network, refinement layers included.
    let grads = out.total.backward();
    assert!(m.refinement.loc.weight.val().grad(&grads).is_some());
    assert!(m.encoder.to_k.weight.val().grad(&grads).is_some());
}

#[test]
fn the_refinement_gradient_input_matches_finite_differences() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let d = device();
    assert_eq!(Tensor::<1>::zeros([1], &d).dtype(), burn::tensor::DType::F64, "the check runs in f64");
    d.seed(2);
    // The iodine decoder's ELU is smooth; the small decoder's ReLU kinks could meet a difference step.
    let m = net(&d, DecoderKind::Iodine);
    let c = cfg(2);
    let x01 = Tensor::<4>::random([1, 3, 6, 6], Distribution::Uniform(0.0, 1.0), &d);
    let rows = 2;
    let lam: Vec<f64> = (0..rows * 6).map(|i| ((i * 7 % 11) as f64 - 5.0) / 10.0).collect();
    let post = |v: &[f64]| {
        let t = Tensor::<2>::from_data(TensorData::new(v.to_vec(), [rows, 6]), &d);
        Posterior { mu: t.clone().slice([0..rows, 0..3]), s: t.slice([0..rows, 3..6]) }
    };
    let eps = Tensor::<2>::random([rows, 3], Distribution::Normal(0.0, 1.0), &d);
    let prior = Posterior { mu: eps.clone() * 0.3, s: eps.clone() * 0.2 };
    let geco = GecoTerm { weight: Tensor::full([1], 1.7, &d), target: -10.0, c_ema: Tensor::full([1], -3.0, &d) };
    let g: Vec<f64> = m
        .loss_gradient(&post(&lam), &eps, Some(&prior), None, &x01, &c, Some(&geco), 1.0)
        .into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .unwrap();
    // The λ-dependent part of the GECO loss: β·mean KL + sp(ζ)·mean NLL.
    let f = |v: &[f64]| -> f64 {
        let q = post(v);
        let (rgb, lm) = m.decoder.forward(q.sample_with(&eps), 2, [6, 6]);
        let nll = gestalt::emorl::loss::gaussian_nll(x01.clone(), rgb, lm, 0.3).mean().into_scalar::<f64>();
        let kl = gestalt::emorl::loss::kl(&q, &prior).sum().into_scalar::<f64>();
        kl + 1.7 * nll
    };
    let h = 1e-6;
    for i in 0..lam.len() {
        let (mut a, mut b) = (lam.clone(), lam.clone());
        a[i] += h;
        b[i] -= h;
        let fd = (f(&a) - f(&b)) / (2.0 * h);
        let rel = (fd - g[i]).abs() / (fd.abs() + g[i].abs()).max(1e-8);
        assert!(rel < 1e-4, "λ[{i}]: autodiff {} vs finite difference {fd}", g[i]);
    }
}

#[test]
fn the_prior_ablations_change_the_kl_terms_they_should() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let d = device();
    d.seed(3);
    let m = net(&d, DecoderKind::Small);
    let x = Tensor::<4>::random([2, 3, 6, 6], Distribution::Uniform(-1.0, 1.0), &d);
    let kls = |prior: PriorKind| -> Vec<f64> {
        // The same noise for every variant.
        let out = m.infer(x.clone(), &InferCfg { prior, ..cfg(3) }, None, &Shard::whole(4, 2));
        out.steps.iter().map(|s| s.kl.clone().sum().into_scalar::<f64>()).collect()
    };
    let (pp, rev, bu) = (kls(PriorKind::ReversedPlusPlus), kls(PriorKind::Reversed), kls(PriorKind::BottomUp));
    assert_eq!(pp[0], rev[0], "step 0 is the same reversed hierarchy");
    assert_ne!(pp[1], rev[1], "refinement: p* = layer 0's prior versus N(0, I)");
    assert_ne!(pp[0], bu[0], "the bottom-up hierarchy has other terms");
    assert!(bu.iter().chain(&rev).all(|k| k.is_finite() && *k >= 0.0), "{bu:?} {rev:?}");
}
