//! Autodiff gradients of the full unrolled loss against central finite differences, in f64, for
//! the minimal, N-EM and RNN-EM cells (static data, several EM steps, gradients through γ).
use burn::module::Param;
use burn::tensor::{Device, FloatDType, Tensor, TensorData};
use gestalt::config;
use gestalt::data::loader::NemBatch;
use gestalt::nem::{Nem, net::InnerNet};
use gestalt::train::Family;

fn device() -> Device {
    let mut d = Device::flex();
    // This test binary is its own process: f64 for every tensor it makes.
    let _ = d.configure(FloatDType::F64);
    d.autodiff()
}

fn tiny(network: &str) -> Nem {
    let act = if network == "network.minimal" { "tanh" } else { "sigmoid" };
    let recurrent = format!(r#"network.recurrent=[{{"name":"rnn","size":5,"act":"{act}","ln":false}}]"#);
    let words: Vec<String> = [
        "dataset.shapes", network, "nem.k=2", "nem.nr_steps=3", "noise.noise_type=None",
        "nem.loss_step_weights=all", &recurrent,
        r#"network.output=[{"name":"fc","size":16,"act":"*"}]"#,
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
    NemBatch { shape: [1, 2, 4, 4, 1], features: f, groups: Some(g) }
}

/// The parameter tensors this check perturbs, by name.
fn params(net: &mut InnerNet) -> Vec<(&'static str, &mut Param<Tensor<2>>)> {
    match net {
        InnerNet::Rnn(r) => {
            let mut v = vec![("rnn.W", &mut r.cell.linear.weight), ("out.W", &mut r.output[0].dense.weight)];
            if let Some(t) = r.theta_init.as_mut() {
                v.push(("theta_init", t));
            }
            v
        }
        InnerNet::Nem(c) => vec![("W", &mut c.w), ("lr", &mut c.lr)],
    }
}

fn loss(nem: &Nem, net: &InnerNet, d: &Device) -> Tensor<1> {
    d.seed(7); // the same γ initialisation every time
    nem.loss(net, &batch(), d).total
}

/// The device's random stream is shared by the whole process: the checks take turns, or one
/// check's draws would interleave with another's between its seeding and its γ initialisation.
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
    let eps = 1e-6;
    let mut worst: f64 = 0.0;
    let names: Vec<&str> = params(&mut net).iter().map(|(n, _)| *n).collect();
    for (pi, name) in names.iter().enumerate() {
        let (value, grad) = {
            let p = &params(&mut net)[pi].1;
            let v = p.val();
            let g: Vec<f64> = v.grad(&grads).unwrap().into_data().convert::<f64>().try_to_vec::<f64>().unwrap();
            (v.detach(), g)
        };
        let shape = value.dims();
        let flat: Vec<f64> = value.clone().into_data().convert::<f64>().try_to_vec::<f64>().unwrap();
        for idx in (0..flat.len()).step_by((flat.len() / 6).max(1)) {
            let eval = |delta: f64, net: &mut InnerNet| -> f64 {
                let mut v = flat.clone();
                v[idx] += delta;
                // TensorData keeps f64; `Tensor::from_floats` would round the values through f32.
                let t = Tensor::<2>::from_data(TensorData::new(v, shape), &d);
                *params(net)[pi].1 = Param::from_tensor(t);
                loss(&nem, net, &d).into_scalar::<f64>()
            };
            let fd = (eval(eps, &mut net) - eval(-eps, &mut net)) / (2.0 * eps);
            let ad = grad[idx];
            let rel = (fd - ad).abs() / (fd.abs() + ad.abs()).max(1e-6);
            assert!(rel <= 1e-3, "{network} {name}[{idx}]: autodiff {ad} vs finite difference {fd}");
            worst = worst.max(rel);
        }
        *params(&mut net)[pi].1 = Param::from_tensor(value.require_grad());
    }
    eprintln!("{network}: worst relative error {worst:.2e}");
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
