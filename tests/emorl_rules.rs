//! EMORL's training rules by hand: the refinement curriculum, and GECO's form of the loss (its
//! value, its gradient and when it switches on).
use burn::tensor::{Device, Tensor};
use gestalt::emorl::geco::Geco;
use gestalt::emorl::inference::{GecoTerm, step_loss};

/// As the original's train loop: the last (step, I) entry whose step the optimiser step has reached.
#[test]
fn the_refinement_curriculum_takes_the_last_entry_reached() {
    let words: Vec<String> = ["train/tetrominoes/EMORL", "training.refinement_curriculum=[[-1,1],[5,3],[10,2]]"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let emorl = gestalt::emorl::Emorl::new(&gestalt::config::resolve(&words).unwrap()).unwrap();
    let got: Vec<usize> = [0, 4, 5, 9, 10, 1000].iter().map(|&s| emorl.refinement_at(s)).collect();
    assert_eq!(got, [1, 1, 3, 3, 2, 2]);
}

/// Per-image NLL (100, 300) and KL (4, 6), β = 1, a shard holding half the batch. Plain ELBO:
/// mean(NLL + β KL) · ½ = 102.5, ∂/∂NLL_i = ½ · ½. GECO with C = −150, C_ema = 7, sp(ζ) = 2:
/// C_t = −mean NLL + C = −350, value β KL − sp(ζ)(C_t + (C_ema − C_t)) = 5 − 2·7 = −9 (· ½), and
/// ∂/∂NLL_i = sp(ζ) / B · ½ = 0.5 (the lagged term takes no gradient).
#[test]
fn geco_loss_value_and_gradient_by_hand() {
    let d = Device::flex().autodiff();
    let nll = || Tensor::<1>::from_floats([100.0, 300.0], &d).require_grad();
    let kl = Tensor::<1>::from_floats([4.0, 6.0], &d);
    let x = nll();
    let plain = step_loss(x.clone(), kl.clone(), 1.0, None, 0.5);
    assert!((plain.clone().into_scalar::<f64>() - 102.5).abs() < 1e-4);
    let g = x.grad(&plain.backward()).unwrap().into_data().convert::<f64>().try_to_vec::<f64>().unwrap();
    assert_eq!(g, [0.25, 0.25]);
    let term =
        GecoTerm { weight: Tensor::from_floats([2.0], &d), target: -150.0, c_ema: Tensor::from_floats([7.0], &d) };
    let x = nll();
    let geco = step_loss(x.clone(), kl, 1.0, Some(&term), 0.5);
    assert!((geco.clone().into_scalar::<f64>() + 4.5).abs() < 1e-4);
    let g = x.grad(&geco.backward()).unwrap().into_data().convert::<f64>().try_to_vec::<f64>().unwrap();
    assert_eq!(g, [0.5, 0.5]);
}

/// The GECO form starts at step `geco_warm_start` (the original: plain while
/// `geco_warm_start > global_step`), and ζ only starts moving after it.
#[test]
fn geco_switches_on_at_its_warm_start() {
    let d = Device::flex();
    let mut g = Geco::new(-1.0, 10, &d);
    g.warm_start = 3;
    assert_eq!([2, 3, 4].map(|s| g.active(s)), [false, true, true]);
    let beta0 = g.beta.clone().into_scalar::<f64>();
    g.update(2, Tensor::from_floats([0.0], &d));
    assert_eq!(g.beta.clone().into_scalar::<f64>(), beta0, "before the warm start nothing moves");
}
