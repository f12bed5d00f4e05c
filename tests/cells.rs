//! The M-step cells (RNN-EM, N-EM, GRU), layer norm, `input_norm` and both noise types against values
//! computed by hand.
use burn::tensor::{Device, Tensor, TensorData};
mod common;
use common::hand::*;
use gestalt::config;
use gestalt::nem::{
    Nem,
    net::{InnerNet, Recurrent},
};
use gestalt::train::Family;

fn rnn(c: &Recurrent) -> &gestalt::nem::net::RnnCell {
    let Recurrent::Rnn(c) = c else { panic!("an rnn cell") };
    c
}

#[test]
fn gru_step_is_tf_grucell() {
    let words: Vec<String> = [
        "dataset.shapes24",
        r#"network.recurrent=[{"name":"gru","size":3}]"#,
        r#"network.output=[{"name":"fc","size":576,"act":"*"}]"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let nem = Nem::new(&config::resolve(&words).unwrap()).unwrap();
    let d = Device::flex();
    let net = nem.init_model(&d).unwrap();
    let InnerNet::Rnn(r) = &net else { panic!("an RNN-EM net") };
    let gates = rnn(&r.cell).gates.as_ref().expect("a GRU has gates");
    assert_eq!(host(gates.bias.as_ref().unwrap().val()), vec![1.0; 6], "TF starts the gate bias at 1");
    let (wg, bg) = (host(gates.weight.val()), host(gates.bias.as_ref().unwrap().val()));
    let (wc, bc) = (host(rnn(&r.cell).linear.weight.val()), host(rnn(&r.cell).linear.bias.as_ref().unwrap().val()));
    let (n_in, units) = (576, 3);
    let x: Vec<f64> = (0..n_in).map(|i| ((i * 37) % 11) as f64 / 10.0 - 0.5).collect();
    let h = [0.2, -0.4, 0.7];
    let sig = |z: f64| 1.0 / (1.0 + (-z).exp());
    // z = [x; h] W + b with W [in + units, out].
    let affine = |w: &[f64], b: &[f64], v: &[f64], out: usize| -> Vec<f64> {
        (0..out).map(|o| b[o] + v.iter().enumerate().map(|(i, vi)| vi * w[i * out + o]).sum::<f64>()).collect()
    };
    let xh: Vec<f64> = x.iter().chain(h.iter()).copied().collect();
    let g: Vec<f64> = affine(&wg, &bg, &xh, 2 * units).into_iter().map(sig).collect();
    let (rg, ug) = g.split_at(units);
    let xrh: Vec<f64> = x.iter().copied().chain((0..units).map(|j| rg[j] * h[j])).collect();
    let c: Vec<f64> = affine(&wc, &bc, &xrh, units).into_iter().map(f64::tanh).collect();
    let want: Vec<f64> = (0..units).map(|j| ug[j] * h[j] + (1.0 - ug[j]) * c[j]).collect();
    let u = Tensor::<2>::from_data(TensorData::new(x.iter().map(|&v| v as f32).collect::<Vec<_>>(), [1, n_in]), &d);
    let h0 = Tensor::<2>::from_data(TensorData::new(h.iter().map(|&v| v as f32).collect::<Vec<_>>(), [1, units]), &d);
    let (_, got) = net.step(u, h0);
    for (g, w) in host(got).iter().zip(&want) {
        assert!((g - w).abs() < 1e-5, "h' {g} vs {w}");
    }
}

/// Row (1, 2, 3, 6): mean 3, population variance (4 + 1 + 0 + 9) / 4 = 3.5; a second row scaled
/// by 10 and shifted gives the same standardised values (no ε to perturb them).
#[test]
fn input_norm_standardises_each_row_without_epsilon() {
    let d = Device::flex();
    let x = Tensor::<2>::from_data(TensorData::new(vec![1f32, 2., 3., 6., 15., 25., 35., 65.], [2, 4]), &d);
    let got = host(gestalt::nem::net::InputNorm {}.forward(x));
    let s = 3.5f64.sqrt();
    let want = [-2.0 / s, -1.0 / s, 0.0, 3.0 / s];
    for (i, g) in got.iter().enumerate() {
        assert!((g - want[i % 4]).abs() < 1e-6, "{got:?}");
    }
}

/// The network's M-step on u (one row) and h, and the parameters it reads, for a config.
fn cell(words: &[&str]) -> (InnerNet, Device) {
    let words: Vec<String> = words.iter().map(|s| s.to_string()).collect();
    let nem = Nem::new(&config::resolve(&words).unwrap()).unwrap();
    let d = Device::flex();
    let net = nem.init_model(&d).unwrap();
    (net, d)
}

/// RNN-EM: h' = σ([u; h] W + b) (TF's BasicRNNCell, then the sigmoid), ψ = σ(h' W_o + b_o).
#[test]
fn rnn_em_step_by_hand() {
    let (net, d) = cell(&[
        "dataset.shapes24",
        r#"network.recurrent=[{"name":"rnn","size":3,"act":"sigmoid"}]"#,
        r#"network.output=[{"name":"fc","size":576,"act":"*"}]"#,
    ]);
    let InnerNet::Rnn(r) = &net else { panic!("RNN-EM") };
    let (w, b) = (host(rnn(&r.cell).linear.weight.val()), host(rnn(&r.cell).linear.bias.as_ref().unwrap().val()));
    let gestalt::nem::net::Layer::Fc(out) = &r.output[0] else { panic!("fc") };
    let (wo, bo) = (host(out.dense.weight.val()), host(out.dense.bias.as_ref().unwrap().val()));
    let u: Vec<f64> = (0..576).map(|i| ((i * 13) % 7) as f64 / 7.0 - 0.4).collect();
    let h = [0.3, -0.1, 0.5];
    let uh: Vec<f64> = u.iter().chain(&h).copied().collect();
    let h_new: Vec<f64> = affine(&w, Some(&b), &uh, 3).into_iter().map(sig).collect();
    let psi: Vec<f64> = affine(&wo, Some(&bo), &h_new, 576).into_iter().map(sig).collect();
    let (got_psi, got_h) = net.step(row(&u, &d), row(&h, &d));
    assert_all_close(&host(got_h), &h_new, "h'");
    assert_all_close(&host(got_psi), &psi, "ψ");
}

/// N-EM's gradient M-step: θ' = θ + lr · σ'(θ) ⊙ (u W), ψ = σ(σ(θ') Wᵀ), W tied, no biases.
#[test]
fn nem_step_by_hand() {
    let (net, d) = cell(&[
        "dataset.shapes24",
        "network.NEM",
        r#"network.recurrent=[{"name":"rnn","size":3}]"#,
        r#"network.output=[{"name":"fc","size":576,"act":"sigmoid"}]"#,
    ]);
    let InnerNet::Nem(c) = &net else { panic!("N-EM") };
    let (w, lr) = (host(c.w.val()), host(c.lr.val())[0]);
    let u: Vec<f64> = (0..576).map(|i| ((i * 5) % 9) as f64 / 9.0 - 0.5).collect();
    let theta = [0.4, -0.7, 1.1];
    let uw = affine(&w, None, &u, 3);
    let theta_new: Vec<f64> = (0..3).map(|j| theta[j] + lr * sig(theta[j]) * (1.0 - sig(theta[j])) * uw[j]).collect();
    let s: Vec<f64> = theta_new.iter().map(|&t| sig(t)).collect();
    let psi: Vec<f64> = (0..576).map(|p| sig((0..3).map(|j| s[j] * w[p * 3 + j]).sum())).collect();
    let (got_psi, got_theta) = net.step(row(&u, &d), row(&theta, &d));
    assert_all_close(&host(got_theta), &theta_new, "θ'");
    assert_all_close(&host(got_psi), &psi, "ψ");
}

/// TF1.2's layer norm: statistics over every non-batch axis (ε = 1e-12), then a gain and a shift
/// per last axis. x = [[1, 2], [3, 4]] (two positions, two channels): mean 2.5, variance 1.25.
#[test]
fn layer_norm_by_hand() {
    let d = Device::flex();
    let mut ln = gestalt::nn::LayerNorm::new(2, &d);
    ln.gamma = burn::module::Param::from_tensor(Tensor::<1>::from_floats([2.0, 3.0], &d));
    ln.beta = burn::module::Param::from_tensor(Tensor::<1>::from_floats([0.5, -1.0], &d));
    let x = Tensor::<3>::from_data(TensorData::new(vec![1f32, 2., 3., 4.], [1, 2, 2]), &d);
    let s = 1.25f64.sqrt();
    let z = [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s];
    let want = [2.0 * z[0] + 0.5, 3.0 * z[1] - 1.0, 2.0 * z[2] + 0.5, 3.0 * z[3] - 1.0];
    assert_all_close(&host(ln.forward(x)), &want, "layer norm");
}

/// Both noise types from the shard's own draws: bit flips x ⊕ n (n ~ Bernoulli(p)), and masked
/// uniform noise m·u + (1 − m)·x (m ~ Bernoulli(p), then u ~ U[0, 1)).
#[test]
fn noise_types_by_hand() {
    use gestalt::nem::Noise;
    use gestalt::train::Shard;
    let d = Device::flex();
    let xs: Vec<f64> = (0..2 * 64).map(|i| ((i * 7) % 5) as f64 / 4.0).collect();
    let x =
        Tensor::<4>::from_data(TensorData::new(xs.iter().map(|&v| v as f32).collect::<Vec<_>>(), [2, 1, 64, 1]), &d);
    let binary: Vec<f64> = xs.iter().map(|&v| (v > 0.5) as u8 as f64).collect();
    let xb = Tensor::<4>::from_data(
        TensorData::new(binary.iter().map(|&v| v as f32).collect::<Vec<_>>(), [2, 1, 64, 1]),
        &d,
    );
    let n = host(Shard::whole(9, 2).bernoulli(0.3, [2, 1, 64, 1], &d));
    let flipped = host(Noise::Bitflip(0.3).apply(xb, &Shard::whole(9, 2)));
    let want: Vec<f64> = binary.iter().zip(&n).map(|(x, n)| if *n > 0.5 { 1.0 - x } else { *x }).collect();
    assert_all_close(&flipped, &want, "bit flips");
    let flips = n.iter().filter(|&&v| v > 0.5).count();
    assert!((20..60).contains(&flips), "{flips} of 128 flipped at p = 0.3");
    let shard = Shard::whole(9, 2);
    let (m, u) = (host(shard.bernoulli(0.3, [2, 1, 64, 1], &d)), host(shard.uniform([2, 1, 64, 1], &d)));
    let noisy = host(Noise::MaskedUniform(0.3).apply(x, &Shard::whole(9, 2)));
    let want: Vec<f64> = (0..xs.len()).map(|i| m[i] * u[i] + (1.0 - m[i]) * xs[i]).collect();
    assert_all_close(&noisy, &want, "masked uniform");
}
