//! The E-step and both losses against values computed by hand (reference §2.1).
use burn::tensor::{Device, Tensor, TensorData};
use gestalt::nem::em::{EmSpec, LossKind, Pixel};

fn spec(pixel: Pixel) -> EmSpec {
    EmSpec {
        k: 2,
        pixel,
        loss_inter_weight: 1.0,
        prior_p: 0.0,
        prior_mu: 0.0,
        gradient_gamma: true,
        pred_init: 0.0,
        loss: LossKind::Nem,
        background: false,
    }
}

fn t4(v: &[f64], shape: [usize; 4], d: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), shape), d)
}

fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

// One image, two slots, two pixels, one channel: ψ_0 = (0.8, 0.3), ψ_1 = (0.2, 0.6), x = (1, 0).
const PSI: [f64; 4] = [0.8, 0.3, 0.2, 0.6];
const X: [f64; 2] = [1.0, 0.0];

#[test]
fn bernoulli_e_step_and_losses() {
    let d = Device::flex();
    let s = spec(Pixel::Bernoulli);
    let psi = t4(&PSI, [1, 2, 2, 1], &d);
    let x = t4(&X, [1, 1, 2, 1], &d);
    // p(x | ψ) per slot and pixel, + 1e-6, normalised over slots.
    let lik = |k: usize, i: usize| X[i] * PSI[2 * k + i] + (1.0 - X[i]) * (1.0 - PSI[2 * k + i]) + 1e-6;
    let want: Vec<f64> =
        (0..2).flat_map(|k| (0..2).map(move |i| (k, i))).map(|(k, i)| lik(k, i) / (lik(0, i) + lik(1, i))).collect();
    let gamma = s.e_step(psi.clone(), x.clone());
    for (g, w) in vals(gamma.clone()).iter().zip(&want) {
        assert!((g - w).abs() < 1e-6, "γ {g} vs {w}");
    }
    // intra = Σ γ · BCE(ψ, x); inter = Σ (1 − γ) · (−log(1 − ψ)).
    let bce = |k: usize, i: usize| -(X[i] * PSI[2 * k + i].ln() + (1.0 - X[i]) * (1.0 - PSI[2 * k + i]).ln());
    let kl0 = |k: usize, i: usize| -(1.0 - PSI[2 * k + i]).ln();
    let (mut intra, mut inter) = (0.0, 0.0);
    for k in 0..2 {
        for i in 0..2 {
            intra += want[2 * k + i] * bce(k, i);
            inter += (1.0 - want[2 * k + i]) * kl0(k, i);
        }
    }
    let l = s.step_loss(psi.clone(), gamma, x.clone(), None);
    assert!((vals(l.intra)[0] - intra).abs() < 1e-5);
    assert!((vals(l.inter)[0] - inter).abs() < 1e-5);
    assert!((intra - 1.060575).abs() < 1e-5, "hand value {intra}");
    // Upper bound: BCE of max_k ψ = (0.8, 0.6) against (1, 0).
    let ub = vals(s.upper_bound_loss(psi, x))[0];
    assert!((ub - (-(0.8f64).ln() - (0.4f64).ln())).abs() < 1e-5);
}

#[test]
fn inter_weight_scales_only_the_inter_term() {
    let d = Device::flex();
    let mut s = spec(Pixel::Bernoulli);
    let psi = t4(&PSI, [1, 2, 2, 1], &d);
    let x = t4(&X, [1, 1, 2, 1], &d);
    let g = s.e_step(psi.clone(), x.clone());
    let full = s.step_loss(psi.clone(), g.clone(), x.clone(), None);
    s.loss_inter_weight = 0.2;
    let part = s.step_loss(psi, g, x, None);
    assert!((vals(part.intra)[0] - vals(full.intra)[0]).abs() < 1e-7);
    assert!((vals(part.inter)[0] - 0.2 * vals(full.inter)[0]).abs() < 1e-6);
}

#[test]
fn gaussian_e_step_and_losses() {
    let d = Device::flex();
    let sigma = 0.25;
    let s = spec(Pixel::Gaussian { e_sigma: sigma });
    let psi = t4(&PSI, [1, 2, 2, 1], &d);
    let x = t4(&X, [1, 1, 2, 1], &d);
    let dens = |k: usize, i: usize| {
        let z = (X[i] - PSI[2 * k + i]) / sigma;
        (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI * sigma * sigma).sqrt() + 1e-6
    };
    let gamma_t = s.e_step(psi.clone(), x.clone());
    let gamma = vals(gamma_t.clone());
    for k in 0..2 {
        for i in 0..2 {
            let w = dens(k, i) / (dens(0, i) + dens(1, i));
            assert!((gamma[2 * k + i] - w).abs() < 1e-5, "γ {} vs {w}", gamma[2 * k + i]);
        }
    }
    let g = s.e_step(psi.clone(), x.clone());
    let l = s.step_loss(psi, g, x, None);
    let (mut intra, mut inter) = (0.0, 0.0);
    for k in 0..2 {
        for i in 0..2 {
            let gk = gamma[2 * k + i];
            intra += gk * (PSI[2 * k + i] - X[i]).powi(2) / 2.0;
            inter += (1.0 - gk) * PSI[2 * k + i].powi(2) / 2.0;
        }
    }
    assert!((vals(l.intra)[0] - intra).abs() < 1e-5);
    assert!((vals(l.inter)[0] - inter).abs() < 1e-5);
}

#[test]
fn losses_are_divided_by_the_batch_size() {
    let d = Device::flex();
    let s = spec(Pixel::Bernoulli);
    let psi1 = t4(&PSI, [1, 2, 2, 1], &d);
    let x1 = t4(&X, [1, 1, 2, 1], &d);
    let psi2 = Tensor::cat(vec![psi1.clone(), psi1.clone()], 0);
    let x2 = Tensor::cat(vec![x1.clone(), x1.clone()], 0);
    let a = s.step_loss(psi1.clone(), s.e_step(psi1, x1.clone()), x1, None);
    let b = s.step_loss(psi2.clone(), s.e_step(psi2, x2.clone()), x2, None);
    assert!((vals(a.intra)[0] - vals(b.intra)[0]).abs() < 1e-6);
}

#[test]
fn mixture_loss_is_the_negative_log_of_the_uniform_mixture() {
    let d = Device::flex();
    let mut s = spec(Pixel::Bernoulli);
    s.loss = LossKind::Mixture;
    let psi = t4(&PSI, [1, 2, 2, 1], &d);
    let x = t4(&X, [1, 1, 2, 1], &d);
    // p(x | ψ) is (0.8, 0.7) for slot 0 and (0.2, 0.4) for slot 1: mixtures 0.5 and 0.55.
    let want = -(0.5f64.ln() + 0.55f64.ln());
    let l = s.step_loss(psi.clone(), s.e_step(psi.clone(), x.clone()), x.clone(), None);
    let got = vals(l.intra)[0];
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    assert_eq!(vals(l.inter)[0], 0.0);
    // Two copies of the image: the same loss per image.
    let psi2 = Tensor::cat(vec![psi.clone(), psi], 0);
    let x2 = Tensor::cat(vec![x.clone(), x], 0);
    assert!((vals(s.mixture_nll(psi2, x2))[0] - want).abs() < 1e-5);
}

#[test]
fn background_component_takes_unexplained_pixels() {
    let d = Device::flex();
    let s = EmSpec { background: true, ..spec(Pixel::Bernoulli) };
    assert_eq!(s.components(), 3);
    // Slots as above; the background component is fixed at the prior p = 0 (clipped to 1e-6).
    let psi = s.with_background(t4(&PSI, [1, 2, 2, 1], &d));
    assert_eq!(psi.dims(), [1, 3, 2, 1]);
    let bg = vals(psi.clone().narrow(1, 2, 1));
    assert!(bg.iter().all(|&v| (v - 1e-6).abs() < 1e-9), "background ψ {bg:?}");
    let x = t4(&X, [1, 1, 2, 1], &d);
    let gamma_t = s.e_step(psi.clone(), x.clone());
    let gamma = vals(gamma_t.clone());
    // Pixel 0 is on (x = 1): p = (0.8, 0.2, ~0) → the background gets ~nothing.
    // Pixel 1 is off: p = (0.7, 0.4, ~1) → γ_bg = 1/2.1.
    let (on, off) = ((0.8 + 1e-6) + (0.2 + 1e-6) + (2e-6), (0.7 + 1e-6) + (0.4 + 1e-6) + (1.0 - 1e-6 + 1e-6));
    assert!((gamma[4] - 2e-6 / on).abs() < 1e-6, "γ_bg on {}", gamma[4]);
    assert!((gamma[5] - 1.0 / off).abs() < 1e-5, "γ_bg off {}", gamma[5]);
    // The slots' network input γ ⊙ (x − ψ) covers the K slots only.
    let state = gestalt::nem::em::EmState { h: Tensor::<2>::zeros([2, 4], &d), psi, gamma: gamma_t };
    let u = vals(s.network_input(&state, x));
    let want: Vec<f64> = (0..4).map(|j| gamma[j] * (X[j % 2] - PSI[j])).collect();
    assert_eq!(u.len(), 4);
    for (u, w) in u.iter().zip(&want) {
        assert!((u - w).abs() < 1e-6, "u {u} vs {w}");
    }
}

/// A cell that records its inputs and always predicts `PSI` (no learning), for the loop's order.
struct Recorder(std::cell::RefCell<Vec<Vec<f64>>>, Device);

impl gestalt::nem::em::Cell for Recorder {
    type State = Tensor<2>;
    fn step(&self, u: Tensor<2>, h: Tensor<2>, _: Option<Tensor<2>>) -> (Tensor<2>, Tensor<2>) {
        self.0.borrow_mut().push(vals(u));
        (self.decode(&h), h)
    }
    fn decode(&self, _: &Tensor<2>) -> Tensor<2> {
        t4(&PSI, [1, 2, 2, 1], &self.1).reshape([2, 2])
    }
}

/// Step t reads frame t and is scored against frame t + 1; from step n on, a rollout feeds the
/// model's own prediction Σ_k γψ. Checked by hand with a cell that always predicts `PSI`.
#[test]
fn the_loop_reads_frame_t_scores_frame_t_plus_one_and_rolls_out() {
    use gestalt::nem::em::{EmState, Run, Schedule};
    let d = Device::flex();
    let s = spec(Pixel::Bernoulli);
    // Frames: frame t has both pixels equal to t mod 2 (0, 1, 0, 1).
    let frame = |t: usize| t4(&[(t % 2) as f64; 2], [1, 1, 2, 1], &d);
    let gamma0 = [0.5, 0.25, 0.5, 0.75];
    let state = EmState {
        h: Tensor::<2>::zeros([2, 1], &d),
        psi: t4(&[0.5; 4], [1, 2, 2, 1], &d),
        gamma: t4(&gamma0, [1, 2, 2, 1], &d),
    };
    let cell = Recorder(Default::default(), d.clone());
    let run = Run {
        weights: &[1.0, 1.0, 1.0, 1.0],
        observed: &frame,
        target: &|t| frame(t + 1),
        schedule: Schedule::RolloutFrom(2),
        actions: None,
        corrupt: None,
        decode_first: false,
        keep: true,
        share: 1.0,
        relational: None,
    };
    let out = s.unroll(&cell, state, &run);
    // γ of `PSI` against a frame whose pixels are all x.
    let gamma = |x: f64| -> Vec<f64> {
        let lik = |k: usize, i: usize| x * PSI[2 * k + i] + (1.0 - x) * (1.0 - PSI[2 * k + i]) + 1e-6;
        (0..2).flat_map(|k| (0..2).map(move |i| lik(k, i) / (lik(0, i) + lik(1, i)))).collect()
    };
    let u = |g: &[f64], psi: &[f64], x: &[f64; 2]| -> Vec<f64> { (0..4).map(|j| g[j] * (x[j % 2] - psi[j])).collect() };
    let inputs = cell.0.borrow().clone();
    // Step 0: frame 0 against the initial ψ = 0.5 and γ0; its E-step reads frame 1.
    assert_close(&inputs[0], &u(&gamma0, &[0.5; 4], &[0.0, 0.0]));
    // Step 1: frame 1, with γ from step 0 (against frame 1).
    let g1 = gamma(1.0);
    assert_close(&inputs[1], &u(&g1, &PSI, &[1.0, 1.0]));
    // Step 2: the rollout input Σ_k γψ of step 1's state (γ against frame 2 = 0s).
    let g2 = gamma(0.0);
    let pred = [g2[0] * PSI[0] + g2[2] * PSI[2], g2[1] * PSI[1] + g2[3] * PSI[3]];
    assert_close(&inputs[2], &u(&g2, &PSI, &pred));
    // Rollout steps carry γ taken without the frame: against [max_k ψ > 0.1] = (1, 1), so step
    // 3 reads γ of 1s and the last γ is of 1s too, though frame 4 is 0s.
    let g_free = gamma(1.0);
    let pred = [g_free[0] * PSI[0] + g_free[2] * PSI[2], g_free[1] * PSI[1] + g_free[3] * PSI[3]];
    assert_close(&inputs[3], &u(&g_free, &PSI, &pred));
    let kept = out.kept.unwrap();
    assert_close(&vals(kept.gamma), &g_free);
    // Its loss reads the true frame 4 with the in-graph E-step against it: Σ γ·BCE over 0s.
    let g4 = gamma(0.0);
    let loss4: f64 = (0..4).map(|j| -g4[j] * (1.0 - PSI[j]).ln() + (1.0 - g4[j]) * -(1.0 - PSI[j]).ln()).sum();
    assert!((vals(kept.step_loss)[3] - loss4).abs() < 1e-4);
}

fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
    }
}
