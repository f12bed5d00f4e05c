//! Weights that travel. The layouts are proved against PyTorch: an EMORL state_dict saved as an
//! original checkpoint, with the outputs of its forward's deterministic parts on fixed inputs
//! (`scripts/fixtures/emorl_torch.py`). The N-EM family (no TensorFlow here) round-trips exactly.
mod common;

use burn::store::pytorch::PytorchReader;
use burn::store::{ModuleSnapshot, bridge};
use burn::tensor::{DType, Device, Tensor, TensorData};
use common::*;
use gestalt::emorl::model::{DecoderKind, EmorlNet, NetShape, Posterior, PosteriorCell};
use gestalt::train::Family;
use gestalt::weights::{self, OriginalNames};
use safetensors::SafeTensors;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn load<const D: usize>(file: &SafeTensors, name: &str, device: &Device) -> Tensor<D> {
    let v = file.tensor(name).unwrap_or_else(|_| panic!("fixture tensor {name}"));
    Tensor::from_data(TensorData::from_bytes_vec(v.data().to_vec(), v.shape().to_vec(), DType::F32), device)
}

/// Within 1e-5 of the reference, relative to its largest magnitude (at least 1).
fn assert_close<const D: usize>(got: Tensor<D>, want: Tensor<D>, what: &str) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let (g, w) = (got.into_data().try_to_vec::<f32>().unwrap(), want.into_data().try_to_vec::<f32>().unwrap());
    let scale = w.iter().fold(1f32, |m, v| m.max(v.abs()));
    let worst = g.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst <= 1e-5 * scale, "{what}: max |Δ| {worst} against scale {scale}");
}

fn tetrominoes_net(device: &Device) -> EmorlNet {
    let shape = NetShape { image: [35, 35], z_size: 32, layers: 3, decoder: DecoderKind::Small, dual_gru: true };
    EmorlNet::new(&shape, device)
}

fn original_emorl(device: &Device) -> (EmorlNet, serde_json::Map<String, serde_json::Value>) {
    let net = tetrominoes_net(device);
    let names = gestalt::emorl::names::original_names(&net).unwrap();
    weights::import(net, &names, &fixture("emorl_torch.pth")).unwrap()
}

#[test]
fn an_original_emorl_checkpoint_reproduces_pytorchs_outputs() {
    let d = Device::flex();
    let (net, extra) = original_emorl(&d);
    assert!(extra["geco_C_ema"].is_number() && extra["geco_beta"].is_number(), "GECO's scalars: {extra:?}");
    let bytes = std::fs::read(fixture("emorl_torch_outputs.safetensors")).unwrap();
    let f = SafeTensors::deserialize(&bytes).unwrap();

    let (k, v) = net.encoder.forward(load(&f, "enc_x", &d));
    assert_close(k, load(&f, "enc_k", &d), "encoder keys");
    assert_close(v, load(&f, "enc_v", &d), "encoder values");

    let (rgb, log_masks) = net.decoder.forward(load(&f, "dec_z", &d), 4, [35, 35]);
    assert_close(rgb, load(&f, "dec_rgb", &d), "decoder RGB");
    assert_close(log_masks, load(&f, "dec_mask_logp", &d), "decoder log-masks");

    let PosteriorCell::Dual(gru) = &net.hvae.gru else { panic!("DualGRU") };
    assert_close(gru.forward(load(&f, "gru_x", &d), load(&f, "gru_h", &d)), load(&f, "gru_out", &d), "DualGRU step");

    let lam: Tensor<2> = load(&f, "ref_lam", &d);
    let q = Posterior { mu: lam.clone().slice([0..8, 0..32]), s: lam.slice([0..8, 32..64]) };
    let h: Tensor<3> = load(&f, "ref_h", &d);
    let (d_mu, d_s, h) = net.refinement.step(&q, load(&f, "ref_g", &d), h.reshape([8, 32]));
    assert_close(Tensor::cat(vec![d_mu, d_s], 1), load(&f, "ref_delta", &d), "refinement δ");
    assert_close(h.reshape([1, 8, 32]), load(&f, "ref_h_out", &d), "refinement GRU state");

    let p = net.prior.forward(load(&f, "prior_z", &d));
    assert_close(p.mu, load(&f, "prior_mu", &d), "prior μ");
    assert_close(p.s, load(&f, "prior_s", &d), "prior s");
}

/// Every tensor of a file as (shape, values), by name.
fn tensors_of(named: Vec<(String, TensorData)>) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    named.into_iter().map(|(n, d)| (n, (d.shape().to_vec(), d.convert::<f32>().try_to_vec::<f32>().unwrap()))).collect()
}

fn safetensors_file(path: &std::path::Path) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let f = SafeTensors::deserialize(&bytes).unwrap();
    tensors_of(
        f.tensors()
            .into_iter()
            .map(|(n, v)| (n, TensorData::from_bytes_vec(v.data().to_vec(), v.shape().to_vec(), DType::F32)))
            .collect(),
    )
}

#[test]
fn export_writes_the_original_state_dict() {
    let d = Device::flex();
    let (net, _) = original_emorl(&d);
    let names = gestalt::emorl::names::original_names(&net).unwrap();
    let out = tmpdir("export-emorl").join("weights.safetensors");
    weights::export(&net, &names, &Default::default(), &out).unwrap();
    let reader = PytorchReader::with_top_level_key(fixture("emorl_torch.pth"), "model").unwrap();
    let mut original = tensors_of(
        reader
            .into_tensors()
            .into_iter()
            .map(|(n, t)| {
                (n.trim_start_matches("module.").to_string(), bridge::into_data(bridge::from_pytorch(t)).unwrap())
            })
            .collect(),
    );
    // GECO's scalars are the controller's state, exported as metadata.
    original.retain(|n, _| !n.starts_with("geco_"));
    assert_eq!(safetensors_file(&out), original);
}

/// Every parameter of a module by path.
fn params<M: ModuleSnapshot>(m: &M) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    tensors_of(
        m.collect(None, None, false).into_iter().map(|t| (t.name.clone(), bridge::to_data(&t).unwrap())).collect(),
    )
}

fn nem_round_trip(words: &[&str], expect: &[(&str, &[usize])]) {
    let r = gestalt::config::resolve(&words.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let nem = gestalt::nem::Nem::new(&r).unwrap();
    let d = Device::flex();
    d.seed(1);
    let a = nem.build_model(&d).unwrap();
    gestalt::nn::materialize(&a);
    let names: OriginalNames = nem.original_names(&a).unwrap();
    let out = tmpdir(&format!("export-nem-{}", words.len())).join("w.safetensors");
    weights::export(&a, &names, &Default::default(), &out).unwrap();
    let file = safetensors_file(&out);
    for (name, shape) in expect {
        assert_eq!(file.get(*name).map(|t| t.0.as_slice()), Some(*shape), "{name} in {:?}", file.keys());
    }
    d.seed(2);
    let b = nem.build_model(&d).unwrap();
    gestalt::nn::materialize(&b);
    assert_ne!(params(&a), params(&b));
    let (b, _) = weights::import(b, &names, &out).unwrap();
    assert_eq!(params(&a), params(&b));
}

#[test]
fn nem_family_exports_tensorflow_names_and_round_trips_exactly() {
    let cell = "NEM/multi_rnn_cell/cell_0";
    nem_round_trip(
        &["dataset.shapes", "network.shapes"],
        &[
            (&format!("{cell}/basic_rnn_cell/weights"), &[784 + 250, 250]),
            (&format!("{cell}/basic_rnn_cell/biases"), &[250]),
            ("NEM/OutputWrapper0/fully_connected/weights", &[250, 784]),
        ],
    );
    nem_round_trip(
        &["dataset.shapes", "network.flying_shapes"],
        &[
            ("NEM/InputWrapper0/Conv/weights", &[4, 4, 1, 32]), // HWIO
            ("NEM/LayerNormI0/LayerNorm/gamma", &[32]),
            ("NEM/InputWrapper3/fully_connected/weights", &[3136, 512]),
            (&format!("{cell}/LayerNormR0/LayerNorm/beta"), &[100]),
            ("NEM/OutputWrapper4/Conv/weights", &[4, 4, 32, 1]),
        ],
    );
    nem_round_trip(
        &["dataset.shapes", "network.NEM"],
        &[(&format!("{cell}/NEMCell/input/weights"), &[784, 250]), (&format!("{cell}/NEMCell/lr/scalar"), &[1, 1])],
    );
}

#[test]
fn export_then_evaluate_from_the_file_through_the_cli() {
    let dir = tmpdir("export-cli");
    let words = tiny_words(&dir.join("data"));
    let run = dir.join("run");
    let o = gestalt(&args("train", &words, &["--out", run.to_str().unwrap(), "--quiet"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = gestalt(&["export", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let file = run.join("weights.safetensors");
    assert_eq!(last_json(&o)["export"], file.to_str().unwrap());
    let eval = |net: &str| {
        let w = [words.clone(), vec![format!("net_path={net}")]].concat();
        let o = gestalt(&args("evaluate", &w, &["--quiet", "--out", dir.join("eval").to_str().unwrap()]));
        assert!(o.status.success(), "{}", stderr(&o));
        last_json(&o)
    };
    let (from_run, from_file) = (eval(run.to_str().unwrap()), eval(file.to_str().unwrap()));
    for k in ["loss", "last_AMI", "AMI"] {
        assert_eq!(from_run[k], from_file[k], "{k}");
    }
    // Bad input: one line, exit status 2.
    for (cmd, needle) in [
        (vec!["export".to_string(), dir.join("nothing").display().to_string()], "not a run directory"),
        ([words.clone(), vec![format!("net_path={}", dir.join("missing.pth").display())]].concat(), "net_path"),
        (
            [
                words.clone(),
                vec![r#"network.recurrent=[{"name":"rnn","size":25}]"#.into(), format!("net_path={}", file.display())],
            ]
            .concat(),
            "cannot load weights",
        ),
    ] {
        let full: Vec<&str> = if cmd[0] == "export" {
            cmd.iter().map(|s| s.as_str()).collect()
        } else {
            args("evaluate", &cmd, &["--quiet"])
        };
        let o = gestalt(&full);
        assert_eq!(o.status.code(), Some(2), "{full:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle) && stderr(&o).trim().lines().count() == 1, "{}", stderr(&o));
    }
}

#[test]
fn an_original_emorl_checkpoint_evaluates_and_trains_on_through_the_cli() {
    let dir = tmpdir("export-emorl-cli");
    let pth = fixture("emorl_torch.pth");
    let common = [
        format!("dataset.data_path={}", dir.join("data").display()),
        "dataset.sizes.train=4".into(),
        "dataset.sizes.test=2".into(),
        "test.num_images_to_process=2".into(),
        "test.batch_size=2".into(),
        format!("net_path={}", pth.display()),
    ];
    let run = |cmd: &str, cfg: &str, extra: &[&str]| {
        let mut a = vec![cmd, "with", cfg];
        a.extend(common.iter().map(String::as_str));
        a.extend(extra);
        let o = gestalt(&a);
        assert!(o.status.success(), "{}", stderr(&o));
        last_json(&o)
    };
    let eval = dir.join("eval");
    let scores = run("evaluate", "test/tetrominoes/ARI_MSE_KL/EMORL", &["--quiet", "--out", eval.to_str().unwrap()]);
    assert!(scores["MSE"].as_f64().is_some_and(f64::is_finite), "{scores}");
    // Training on from it: one step, then its export holds GECO's state from the .pth.
    let out = dir.join("run");
    let words = ["training.batch_size=2", "training.iters=0", "--quiet", "--out", out.to_str().unwrap()];
    run("train", "train/tetrominoes/EMORL", &words);
    let o = gestalt(&["export", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(out.join("weights.safetensors")).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let state: serde_json::Value =
        serde_json::from_str(&meta.metadata().as_ref().unwrap()[weights::STATE_KEY]).unwrap();
    assert!(state["geco_beta"].as_f64().is_some_and(|b| (b - 0.5207).abs() < 0.01), "{state}");
}
