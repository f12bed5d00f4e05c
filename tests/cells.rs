//! The GRU M-step against TF's GRUCell and `input_norm` against values computed by hand.
use burn::tensor::{Device, Tensor, TensorData};
use gestalt::config;
use gestalt::nem::{Nem, net::InnerNet};
use gestalt::train::Family;

fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
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
    let gates = r.cell.gates.as_ref().expect("a GRU has gates");
    assert_eq!(host(gates.bias.as_ref().unwrap().val()), vec![1.0; 6], "TF starts the gate bias at 1");
    let (wg, bg) = (host(gates.weight.val()), host(gates.bias.as_ref().unwrap().val()));
    let (wc, bc) = (host(r.cell.linear.weight.val()), host(r.cell.linear.bias.as_ref().unwrap().val()));
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
