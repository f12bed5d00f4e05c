//! R-NEM (Relational-NEM): parameter counts of the original configs, the LSTM and the relational
//! cell against values computed by hand, the original variable names, the objective's
//! normalisation and relational loss, and R-NEM's own config words.
mod common;
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use common::hand::{affine, assert_all_close as close, host, rows as row, sig};
use gestalt::config;
use gestalt::nem::em::{Cell, EmSpec, EmState, LossKind, Pixel, Relational, Run, Schedule};
use gestalt::nem::net::{InnerNet, Layer, Recurrent};
use gestalt::nem::{Nem, names};

fn nem(words: &[&str]) -> Nem {
    let words: Vec<String> = words.iter().map(|s| s.to_string()).collect();
    Nem::new(&config::resolve(&words).unwrap()).unwrap()
}

/// TF1.2's layer norm of one row with γ = 1, β = 0 (ε = 1e-12).
fn ln(v: &[f64]) -> Vec<f64> {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64;
    v.iter().map(|x| (x - m) / (var + 1e-12).sqrt()).collect()
}

/// The counts reference §3 gives for the Relational-NEM configs on 64×64 balls.
#[test]
fn parameter_counts_match_the_original() {
    let d = Device::flex();
    for (words, want) in [
        (vec!["dataset.balls4mass64", "network.r_nem", "nem.k=5"], 4_951_978),
        (vec!["dataset.balls4mass64", "network.r_nem_no_attention", "nem.k=5"], 4_926_577),
        (vec!["dataset.balls4mass64", "network.rnn_250", "nem.k=5"], 4_611_827),
        (vec!["dataset.balls4mass64", "network.lstm_250", "nem.k=1"], 5_185_077),
    ] {
        let net = nem(&words).build_model(&d).unwrap();
        assert_eq!(net.num_params(), want, "{words:?}");
    }
}

/// A net with a tiny encoder (fc 3) on 2×2 frames and the given recurrent layer.
fn tiny(recurrent: &str, k: usize) -> (InnerNet, Device) {
    let d = Device::flex();
    let words = [
        "dataset.balls4mass64".to_string(),
        r#"network.input=[{"name":"fc","size":3,"act":"elu"}]"#.to_string(),
        format!("network.recurrent=[{recurrent}]"),
        r#"network.output=[{"name":"fc","size":4,"act":"sigmoid"}]"#.to_string(),
        format!("nem.k={k}"),
    ];
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    (nem(&words).build_model(&d).unwrap(), d)
}

/// TF1.2's LayerNormBasicLSTMCell: gates [i, j, f, o] = [x; h] W (no bias with LN), each gate
/// normalised, c' = LN(c σ(f + 1) + σ(i) tanh(j)), h' = tanh(c') σ(o).
#[test]
fn lstm_step_by_hand() {
    let (net, d) = tiny(r#"{"name":"lstm","size":2,"act":"sigmoid","ln":true}"#, 1);
    let InnerNet::Rnn(r) = &net else { panic!("an RNN-EM net") };
    let Recurrent::Lstm(cell) = &r.cell else { panic!("an LSTM") };
    assert!(cell.linear.bias.is_none(), "no bias when layer norm is on");
    let w = host(cell.linear.weight.val());
    let x = [0.3, -0.8, 0.5];
    let (c, h) = ([0.4, -0.2], [0.1, 0.6]);
    let xh: Vec<f64> = x.iter().chain(&h).copied().collect();
    let z = affine(&w, None, &xh, 8);
    let gate = |g: usize| ln(&z[2 * g..2 * g + 2]);
    let (i, j, f, o) = (gate(0), gate(1), gate(2), gate(3));
    let c_new = ln(&(0..2).map(|u| c[u] * sig(f[u] + 1.0) + sig(i[u]) * j[u].tanh()).collect::<Vec<_>>());
    let h_new: Vec<f64> = (0..2).map(|u| c_new[u].tanh() * sig(o[u])).collect();
    let Recurrent::Lstm(cell) = &r.cell else { unreachable!() };
    let state = row(&[c[0], c[1], h[0], h[1]], 1, &d);
    let (out, new_state) = cell.step(row(&x, 1, &d), state);
    close(&host(out), &h_new, "h'");
    close(&host(new_state), &[c_new, h_new].concat(), "[c'; h']");
}

/// The relational cell on K = 3 slots of one image: s_k = relu(LN(h_k W_e + b)); for j ≠ k in
/// increasing order c_kj = relu(LN([s_k; s_j] W_c + b)), g_kj = relu(LN(c_kj W_g + b)),
/// α_kj = σ(tanh(LN(c_kj W_a + b)) w + b); E_k = Σ α_kj g_kj; z = [s; E; x] W + b; state σ(z),
/// output σ(LN(z)).
#[test]
fn relational_cell_step_by_hand() {
    let spec = r#"{"name":"r_nem","size":2,"act":"sigmoid","ln":true,
        "encoder":[{"name":"fc","size":2,"act":"relu","ln":true}],
        "core":[{"name":"fc","size":2,"act":"relu","ln":true}],
        "context":[{"name":"fc","size":2,"act":"relu","ln":true}],
        "attention":[{"name":"fc","size":2,"act":"tanh","ln":true},{"name":"fc","size":1,"act":"sigmoid"}]}"#;
    let (net, d) = tiny(&spec.replace('\n', ""), 3);
    let InnerNet::Rnn(r) = &net else { panic!("an RNN-EM net") };
    let Recurrent::Relational(cell) = &r.cell else { panic!("an r_nem cell") };
    let fc = |l: &Layer| {
        let Layer::Fc(f) = l else { panic!("fc") };
        (host(f.dense.weight.val()), host(f.dense.bias.as_ref().unwrap().val()))
    };
    let (we, be) = fc(&cell.encoder[0]);
    let (wc, bc) = fc(&cell.core[0]);
    let (wg, bg) = fc(&cell.context[0]);
    let (wa, ba) = fc(&cell.attention[0]);
    let (wa2, ba2) = fc(&cell.attention[1]);
    let (w, b) = (host(cell.linear.weight.val()), host(cell.linear.bias.as_ref().unwrap().val()));
    let relu = |v: Vec<f64>| -> Vec<f64> { v.into_iter().map(|x| x.max(0.0)).collect() };
    let h = [[0.2, 0.7], [0.9, 0.1], [0.4, 0.5]];
    let x = [[0.3, -0.2, 0.8], [-0.5, 0.6, 0.1], [0.0, 0.4, -0.7]];
    let s: Vec<Vec<f64>> = h.iter().map(|h| relu(ln(&affine(&we, Some(&be), h, 2)))).collect();
    let mut want_state = vec![];
    let mut want_out = vec![];
    let mut want_alpha = vec![];
    for k in 0..3 {
        let mut effect = [0.0; 2];
        for j in (0..3).filter(|&j| j != k) {
            let pair: Vec<f64> = s[k].iter().chain(&s[j]).copied().collect();
            let c = relu(ln(&affine(&wc, Some(&bc), &pair, 2)));
            let g = relu(ln(&affine(&wg, Some(&bg), &c, 2)));
            let a1: Vec<f64> = ln(&affine(&wa, Some(&ba), &c, 2)).into_iter().map(f64::tanh).collect();
            let alpha = sig(affine(&wa2, Some(&ba2), &a1, 1)[0]);
            want_alpha.push(alpha);
            effect[0] += alpha * g[0];
            effect[1] += alpha * g[1];
        }
        let total: Vec<f64> = s[k].iter().chain(&effect).chain(&x[k]).copied().collect();
        let z = affine(&w, Some(&b), &total, 2);
        want_state.extend(z.iter().map(|&v| sig(v)));
        want_out.extend(ln(&z).into_iter().map(sig));
    }
    let hs = row(&h.concat(), 3, &d);
    let (out, state) = cell.step(row(&x.concat(), 3, &d), hs.clone(), None);
    close(&host(state), &want_state, "state σ(z)");
    close(&host(out), &want_out, "output σ(LN(z))");
    close(&host(net.attention(&hs, None).unwrap()), &want_alpha, "α");
    // Without attention the effect is the plain sum over the other slots.
    let no_att = spec.replace(
        r#""attention":[{"name":"fc","size":2,"act":"tanh","ln":true},{"name":"fc","size":1,"act":"sigmoid"}]"#,
        r#""attention":[]"#,
    );
    let (net, _) = tiny(&no_att.replace('\n', ""), 3);
    assert!(net.attention(&hs, None).is_none());
}

#[test]
fn exports_under_relational_nem_names() {
    let n = nem(&["dataset.balls4mass64", "network.r_nem", "nem.k=5"]);
    let d = Device::flex();
    let net = n.build_model(&d).unwrap();
    let got = names::original_names(&n.cfg.network, names::Repo::RelationalNem, &net).unwrap();
    let names: Vec<&str> = got.pairs.iter().map(|(_, o)| o.as_str()).collect();
    for want in [
        "R-RNNEM/InputWrapper1/Conv/weights",
        "R-RNNEM/LayerNormI1/LayerNorm/gamma",
        "R-RNNEM/InputWrapper5/fully_connected/biases",
        "R-RNNEM/NPE/fully_connected/weights",
        "R-RNNEM/NPE/LayerNorm/gamma",
        "R-RNNEM/NPE/fully_connected_1/weights",
        "R-RNNEM/NPE/fully_connected_3/weights",
        "R-RNNEM/NPE/LayerNorm_3/beta",
        "R-RNNEM/NPE/fully_connected_4/biases",
        "R-RNNEM/NPE/fully_connected_5/weights",
        "R-RNNEM/LayerNormR0/LayerNorm/gamma",
        "R-RNNEM/OutputWrapper5/Conv/weights",
    ] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    let lstm = nem(&["dataset.balls4mass64", "network.lstm_250", "nem.k=1"]);
    let net = lstm.build_model(&d).unwrap();
    let got = names::original_names(&lstm.cfg.network, names::Repo::RelationalNem, &net).unwrap();
    let names: Vec<&str> = got.pairs.iter().map(|(_, o)| o.as_str()).collect();
    for want in ["R-RNNEM/layer_norm_basic_lstm_cell/weights", "R-RNNEM/layer_norm_basic_lstm_cell/forget/gamma"] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
}

/// A cell that always predicts `PSI`, for the loop's bookkeeping.
struct Fixed(Device);
const PSI: [f64; 4] = [0.8, 0.3, 0.2, 0.6];

impl Cell for Fixed {
    type State = Tensor<2>;
    fn step(&self, _: Tensor<2>, h: Tensor<2>, _: Option<Tensor<2>>) -> (Tensor<2>, Tensor<2>) {
        (self.decode(&h), h)
    }
    fn decode(&self, _: &Tensor<2>) -> Tensor<2> {
        row(&PSI, 2, &self.0)
    }
}

fn t4(v: &[f64], shape: [usize; 4], d: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), shape), d)
}

/// R-NEM's objective: Σ_t w_t L_t / Σ w_t; the upper bound with its inter term at every step;
/// the relational loss with each pixel's terms times the step's mask; last-dt averages.
#[test]
fn the_objective_is_normalised_and_the_relational_loss_masked() {
    let d = Device::flex();
    let spec = EmSpec {
        k: 2,
        pixel: Pixel::Bernoulli,
        loss_inter_weight: 1.0,
        prior_p: 0.0,
        prior_mu: 0.0,
        gradient_gamma: false,
        pred_init: 0.0,
        loss: LossKind::Nem,
        background: false,
    };
    let frame = |t: usize| t4(&[(t % 2) as f64, 1.0], [1, 1, 2, 1], &d);
    let mask = |t: usize| t4(&[1.0, (t == 1) as u8 as f64], [1, 1, 2, 1], &d);
    let state = || EmState {
        h: Tensor::<2>::zeros([2, 1], &d),
        psi: t4(&[0.5; 4], [1, 2, 2, 1], &d),
        gamma: t4(&[0.5; 4], [1, 2, 2, 1], &d),
    };
    let weights = [1.0, 2.0, 3.0];
    let target = |t: usize| frame(t + 1);
    let run = |relational| Run {
        weights: &weights,
        observed: &frame,
        target: &target,
        schedule: Schedule::Observed,
        actions: None,
        corrupt: None,
        decode_first: false,
        keep: false,
        share: 1.0,
        relational,
    };
    let cell = Fixed(d.clone());
    // Step t's loss by hand: γ of PSI against frame t + 1, Σ γ·BCE + (1 − γ)·(−log(1 − ψ)).
    let per_pixel = |t: usize, m: [f64; 2]| -> (f64, f64) {
        let x = [((t + 1) % 2) as f64, 1.0];
        let (mut l, mut ub) = (0.0, 0.0);
        for i in 0..2 {
            let lik = |k: usize| x[i] * PSI[2 * k + i] + (1.0 - x[i]) * (1.0 - PSI[2 * k + i]) + 1e-6;
            for k in 0..2 {
                let (psi, g) = (PSI[2 * k + i], lik(k) / (lik(0) + lik(1)));
                let bce = -(x[i] * psi.ln() + (1.0 - x[i]) * (1.0 - psi).ln());
                l += m[i] * (g * bce + (1.0 - g) * -(1.0 - psi).ln());
            }
            let top = PSI[i].max(PSI[2 + i]);
            ub += m[i] * (-(x[i] * top.ln() + (1.0 - x[i]) * (1.0 - top).ln()) - (1.0 - top).ln());
        }
        (l, ub)
    };
    let plain = spec.unroll(&cell, state(), &run(None));
    let want_plain: f64 = (0..3).map(|t| weights[t] * per_pixel(t, [1.0, 1.0]).0).sum();
    assert!((host(plain.loss)[0] - want_plain).abs() < 1e-4, "N-EM: Σ w_t L_t, not normalised");
    let rel = spec.unroll(&cell, state(), &run(Some(Relational { dt: 2, mask: Some(&mask) })));
    assert!((host(rel.loss)[0] - want_plain / 6.0).abs() < 1e-4, "R-NEM: divided by Σ w = 6");
    let logged = |name: &str| host(rel.logged.iter().find(|(n, _)| n == name).unwrap().1.clone())[0];
    let m = |t: usize| [1.0, (t == 1) as u8 as f64];
    let r_loss: f64 = (0..3).map(|t| weights[t] * per_pixel(t, m(t)).0).sum::<f64>() / 6.0;
    assert!((logged("r_loss") - r_loss).abs() < 1e-4, "r_loss {} vs {r_loss}", logged("r_loss"));
    let ub: f64 = (0..3).map(|t| weights[t] * per_pixel(t, [1.0, 1.0]).1).sum::<f64>() / 6.0;
    assert!((logged("ub_loss") - ub).abs() < 1e-4, "ub_loss {} vs {ub}", logged("ub_loss"));
    let r_ub: f64 = (0..3).map(|t| weights[t] * per_pixel(t, m(t)).1).sum::<f64>() / 6.0;
    assert!((logged("r_ub_loss") - r_ub).abs() < 1e-4);
    // The last dt = 2 steps: (2 L_1 + 3 L_2) / 5, intra + inter.
    let last = (2.0 * per_pixel(1, [1.0, 1.0]).0 + 3.0 * per_pixel(2, [1.0, 1.0]).0) / 5.0;
    assert!((logged("intra_last_dt") + logged("inter_last_dt") - last).abs() < 1e-4);
}

#[test]
fn rnem_words_and_their_errors() {
    let r = config::resolve(&["dataset.balls4mass64".to_string()]).unwrap();
    assert_eq!(r.family, "rnem");
    assert_eq!(r.value["nem"]["loss_step_weights"], "all");
    assert_eq!(r.value["network"]["recurrent"][0]["name"], "r_nem");
    let bad = |words: &[&str]| {
        let words: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        match config::resolve(&words) {
            Err(e) => e.to_string(),
            Ok(r) => Nem::new(&r).err().map(|e| e.to_string()).unwrap_or_default(),
        }
    };
    // R-NEM has no gradient_gamma or e_sigma; N-EM has no feed_actions.
    assert!(bad(&["dataset.balls4mass64", "nem.gradient_gamma=True"]).contains("gradient_gamma"));
    assert!(bad(&["dataset.balls4mass64", "nem.e_sigma=0.1"]).contains("e_sigma"));
    assert!(bad(&["dataset.shapes", "feed_actions=True"]).contains("feed_actions"));
    assert!(bad(&["dataset.balls4mass64", "record_relational_loss=foo"]).contains("record_relational_loss"));
    assert!(bad(&["dataset.balls4mass64", "network.r_nem", "nem.k=1"]).is_empty(), "built lazily");
    let one = nem(&["dataset.balls4mass64", "network.r_nem", "nem.k=1"]);
    assert!(one.build_model(&Device::flex()).unwrap_err().to_string().contains("nem.k"));
    let r = config::resolve(&["dataset.balls4mass64".to_string(), "no_collisions".into(), "no_score".into()]).unwrap();
    assert!(r.value["record_relational_loss"].is_null() && r.value["record_grouping_score"] == false);
}

/// With `feed_actions`, the action embedding a = relu(LN(action W + b)) joins the state before
/// the encoder and the final concatenation; both slots of an image get that image's action.
#[test]
fn actions_reach_every_slot_of_their_image() {
    let d = Device::flex();
    let spec = r#"{"name":"r_nem","size":2,"act":"sigmoid","ln":true,
        "encoder":[{"name":"fc","size":2,"act":"relu","ln":true}],
        "core":[{"name":"fc","size":2,"act":"relu","ln":true}],
        "context":[{"name":"fc","size":2,"act":"relu","ln":true}],
        "attention":[],
        "actions":[{"name":"fc","size":3,"act":"relu","ln":true}]}"#
        .replace('\n', "");
    let words = [
        "dataset.invaders84".to_string(),
        r#"network.input=[{"name":"fc","size":3,"act":"elu"}]"#.to_string(),
        format!("network.recurrent=[{spec}]"),
        r#"network.output=[{"name":"fc","size":7056,"act":"sigmoid"}]"#.to_string(),
        "nem.k=2".into(),
        "feed_actions=True".into(),
    ];
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let n = nem(&words);
    let net = n.build_model(&d).unwrap();
    let InnerNet::Rnn(r) = &net else { panic!("an RNN-EM net") };
    let Recurrent::Relational(cell) = &r.cell else { panic!("an r_nem cell") };
    // The encoder reads [h; a] (2 + 3) and the final layer [s; E; x; a] (2 + 2 + 3 + 3).
    assert_eq!(cell.encoder.len(), 1);
    let Layer::Fc(enc) = &cell.encoder[0] else { panic!("fc") };
    assert_eq!(enc.dense.weight.dims(), [5, 2]);
    assert_eq!(cell.linear.weight.dims(), [10, 2]);
    let Layer::Fc(emb) = &cell.actions[0] else { panic!("fc") };
    let (wa, ba) = (host(emb.dense.weight.val()), host(emb.dense.bias.as_ref().unwrap().val()));
    let (we, be) = (host(enc.dense.weight.val()), host(enc.dense.bias.as_ref().unwrap().val()));
    let relu = |v: Vec<f64>| -> Vec<f64> { v.into_iter().map(|x| x.max(0.0)).collect() };
    // Two slots of one image, action 2 of 4.
    let action = [0.0, 0.0, 1.0, 0.0];
    let a = relu(ln(&affine(&wa, Some(&ba), &action, 3)));
    let h = [[0.2, 0.7], [0.9, 0.1]];
    let s: Vec<Vec<f64>> = h.iter().map(|h| relu(ln(&affine(&we, Some(&be), &[&h[..], &a[..]].concat(), 2)))).collect();
    let (w, b) = (host(cell.linear.weight.val()), host(cell.linear.bias.as_ref().unwrap().val()));
    let (wc, bc) = {
        let Layer::Fc(f) = &cell.core[0] else { panic!("fc") };
        (host(f.dense.weight.val()), host(f.dense.bias.as_ref().unwrap().val()))
    };
    let (wg, bg) = {
        let Layer::Fc(f) = &cell.context[0] else { panic!("fc") };
        (host(f.dense.weight.val()), host(f.dense.bias.as_ref().unwrap().val()))
    };
    let x = [[0.3, -0.2, 0.8], [-0.5, 0.6, 0.1]];
    let mut want = vec![];
    for k in 0..2 {
        let j = 1 - k;
        let c = relu(ln(&affine(&wc, Some(&bc), &[&s[k][..], &s[j][..]].concat(), 2)));
        let g = relu(ln(&affine(&wg, Some(&bg), &c, 2)));
        let total = [&s[k][..], &g[..], &x[k][..], &a[..]].concat();
        want.extend(affine(&w, Some(&b), &total, 2).into_iter().map(sig));
    }
    let actions = row(&[action, action].concat(), 2, &d);
    let (_, state) = cell.step(row(&x.concat(), 2, &d), row(&h.concat(), 2, &d), Some(actions));
    close(&host(state), &want, "state with actions");
}
