//! Autodiff gradients of the full unrolled loss against central finite differences, in f64, for
//! the minimal, N-EM, RNN-EM, GRU, LSTM and R-NEM cells (static data, several EM steps, gradients through γ).
use burn::module::Param;
use burn::tensor::{Device, FloatDType, Tensor, TensorData};
use gestalt::config;
use gestalt::data::loader::NemBatch;
use gestalt::nem::{
    Nem,
    net::{InnerNet, Layer, Recurrent},
};
use gestalt::train::{Family, Shard};

fn device() -> Device {
    let mut d = Device::flex();
    // This test binary is its own process: f64 for every tensor it makes.
    let _ = d.configure(FloatDType::F64);
    d.autodiff()
}

/// A conv encoder and an r_conv decoder with LN, on the 4×4 test images.
const CONV_OUTPUT: &str = r#"network.output=[{"name":"fc","size":8,"act":"relu","ln":true},{"name":"reshape","shape":[2,2,2]},{"name":"r_conv","size":1,"act":"*","stride":2,"kernel":3},{"name":"reshape","shape":-1}]"#;
const CONV_INPUT: &str = r#"network.input=[{"name":"conv","size":3,"act":"elu","stride":2,"kernel":2,"ln":true},{"name":"reshape","shape":-1},{"name":"fc","size":4,"act":"elu"}]"#;

fn tiny(network: &str) -> Nem {
    let act = if network == "network.minimal" { "tanh" } else { "sigmoid" };
    let (cell, background) = match network {
        "gru" => ("gru", "true"),
        "lstm" | "r_nem" => (network, "false"),
        _ => ("rnn", "false"),
    };
    let ln = network == "lstm" || network == "r_nem";
    let rel = r#","encoder":[{"name":"fc","size":4,"act":"relu","ln":true}],"core":[{"name":"fc","size":3,"act":"relu","ln":true}],"context":[{"name":"fc","size":3,"act":"relu","ln":true}],"attention":[{"name":"fc","size":2,"act":"tanh","ln":true},{"name":"fc","size":1,"act":"sigmoid"}]"#;
    let extra = if network == "r_nem" { rel } else { "" };
    let recurrent = format!(r#"network.recurrent=[{{"name":"{cell}","size":5,"act":"{act}","ln":{ln}{extra}}}]"#);
    let k = if network == "r_nem" { "nem.k=3" } else { "nem.k=2" };
    let background = format!("nem.background_slot={background}");
    let (input, output) = if network == "conv" {
        (CONV_INPUT, CONV_OUTPUT)
    } else {
        ("seed=1", r#"network.output=[{"name":"fc","size":16,"act":"*"}]"#)
    };
    let network = if ["conv", "gru", "lstm", "r_nem"].contains(&network) { "network.shapes" } else { network };
    let words: Vec<String> = [
        "dataset.shapes",
        network,
        k,
        "nem.nr_steps=3",
        "noise.noise_type=None",
        "nem.loss_step_weights=all",
        &recurrent,
        output,
        input,
        &background,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Nem::new(&config::resolve(&words).unwrap()).unwrap()
}

fn batch() -> NemBatch {
    // Two 4×4 binary images with two objects each.
    let f: Vec<f32> = (0..32).map(|i| if (i * 7) % 5 < 2 { 1.0 } else { 0.0 }).collect();
    let g: Vec<f32> = f.iter().enumerate().map(|(i, &v)| if v > 0.0 { 1.0 + (i % 2) as f32 } else { 0.0 }).collect();
    NemBatch { shape: [1, 2, 4, 4, 1], features: f, groups: Some(g), masks: vec![] }
}

/// The 2-D parameters this check perturbs, by name.
fn params2(net: &mut InnerNet) -> Vec<(&'static str, &mut Param<Tensor<2>>)> {
    match net {
        InnerNet::Rnn(r) => {
            let mut v = match &mut r.cell {
                Recurrent::Rnn(c) => {
                    let mut v = vec![("rnn.W", &mut c.linear.weight)];
                    if let Some(g) = c.gates.as_mut() {
                        v.push(("gru.W_gates", &mut g.weight));
                    }
                    v
                }
                Recurrent::Lstm(c) => vec![("lstm.W", &mut c.linear.weight)],
                Recurrent::Relational(c) => {
                    let mut v = vec![("r_nem.W", &mut c.linear.weight)];
                    for l in c.encoder.iter_mut().chain(&mut c.core).chain(&mut c.context).chain(&mut c.attention) {
                        if let Layer::Fc(f) = l {
                            v.push(("r_nem.fc.W", &mut f.dense.weight));
                        }
                    }
                    v
                }
            };
            for l in r.input.iter_mut().chain(r.output.iter_mut()) {
                if let Layer::Fc(f) = l {
                    v.push(("fc.W", &mut f.dense.weight));
                }
            }
            if let Some(t) = r.theta_init.as_mut() {
                v.push(("theta_init", t));
            }
            v
        }
        InnerNet::Nem(c) => vec![("W", &mut c.w), ("lr", &mut c.lr)],
    }
}

/// The conv kernels, [out, in, k, k].
fn params4(net: &mut InnerNet) -> Vec<(&'static str, &mut Param<Tensor<4>>)> {
    match net {
        InnerNet::Rnn(r) => r
            .input
            .iter_mut()
            .chain(r.output.iter_mut())
            .filter_map(|l| if let Layer::Conv(c) = l { Some(("conv.W", &mut c.conv.weight)) } else { None })
            .collect(),
        InnerNet::Nem(_) => vec![],
    }
}

fn get2(net: &mut InnerNet, i: usize) -> (&'static str, &mut Param<Tensor<2>>) {
    params2(net).swap_remove(i)
}

fn get4(net: &mut InnerNet, i: usize) -> (&'static str, &mut Param<Tensor<4>>) {
    params4(net).swap_remove(i)
}

fn loss(nem: &Nem, net: &InnerNet, d: &Device) -> Tensor<1> {
    // The same γ initialisation and noise every time.
    nem.loss(net, &batch(), 0, &Shard::whole(7, 2), d).total
}

/// The device's random stream (the initial weights) is shared by the whole process: the checks
/// take turns, or one check's draws would interleave with another's.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn check(network: &str) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let d = device();
    d.seed(11); // the same weights every run
    let nem = tiny(network);
    let mut net = nem.init_model(&d).unwrap();
    let l = loss(&nem, &net, &d);
    assert_eq!(l.dtype(), burn::tensor::DType::F64, "the check runs in f64");
    let grads = l.backward();
    let mut worst: f64 = 0.0;
    for i in 0..params2(&mut net).len() {
        worst = worst.max(check_param(&nem, &mut net, &grads, &d, get2, i, network));
    }
    for i in 0..params4(&mut net).len() {
        worst = worst.max(check_param(&nem, &mut net, &grads, &d, get4, i, network));
    }
    eprintln!("{network}: worst relative error {worst:.2e}");
}

/// Central differences on a few entries of one parameter; returns the worst relative error.
fn check_param<const D: usize>(
    nem: &Nem,
    net: &mut InnerNet,
    grads: &burn::tensor::Gradients,
    d: &Device,
    get: fn(&mut InnerNet, usize) -> (&'static str, &mut Param<Tensor<D>>),
    i: usize,
    network: &str,
) -> f64 {
    let eps = 1e-6;
    let (name, p) = get(net, i);
    let value = p.val();
    let grad: Vec<f64> = value.grad(grads).unwrap().into_data().convert::<f64>().try_to_vec::<f64>().unwrap();
    let value = value.detach();
    let shape = value.dims();
    let flat: Vec<f64> = value.clone().into_data().convert::<f64>().try_to_vec::<f64>().unwrap();
    let mut worst: f64 = 0.0;
    for idx in (0..flat.len()).step_by((flat.len() / 6).max(1)) {
        let mut eval = |delta: f64| -> f64 {
            let mut v = flat.clone();
            v[idx] += delta;
            // TensorData keeps f64; `Tensor::from_floats` would round the values through f32.
            *get(net, i).1 = Param::from_tensor(Tensor::<D>::from_data(TensorData::new(v, shape), d));
            loss(nem, net, d).into_scalar::<f64>()
        };
        let fd = (eval(eps) - eval(-eps)) / (2.0 * eps);
        let ad = grad[idx];
        let rel = (fd - ad).abs() / (fd.abs() + ad.abs()).max(1e-6);
        assert!(rel <= 1e-3, "{network} {name}[{idx}]: autodiff {ad} vs finite difference {fd}");
        worst = worst.max(rel);
    }
    *get(net, i).1 = Param::from_tensor(value.require_grad());
    worst
}

#[test]
fn rnn_em_gradients_match_finite_differences() {
    check("network.shapes");
}

#[test]
fn nem_gradients_match_finite_differences() {
    check("network.NEM");
}

#[test]
fn minimal_gradients_match_finite_differences() {
    check("network.minimal");
}

#[test]
fn conv_gradients_match_finite_differences() {
    check("conv");
}

/// TF's layer-normalised LSTM (five layer norms, forget bias 1).
#[test]
fn lstm_gradients_match_finite_differences() {
    check("lstm");
}

/// R-NEM's relational cell with attention, K = 3 (six ordered pairs).
#[test]
fn relational_gradients_match_finite_differences() {
    check("r_nem");
}

/// The GRU M-step, with the background component in the E-step.
#[test]
fn gru_gradients_match_finite_differences() {
    check("gru");
}
