//! EMORL through the command line: a tiny train → evaluate, mid-epoch checkpoints, GECO's state in
//! them, an exact resume, the test configs and sample pictures.
mod common;
use common::*;
use std::path::Path;

/// A tiny Tetrominoes model: 8 training images in batches of 2 (4 steps an epoch), GECO active
/// from step 1, a checkpoint every 3 steps.
fn tiny(data: &Path, iters: u64) -> Vec<String> {
    [
        "Net.K=3",
        "Net.z_size=8",
        "Net.stochastic_layers=2",
        "Net.refinement_iters=1",
        "Net.geco_warm_start=1",
        "training.batch_size=2",
        "training.refinement_curriculum=[[-1,1]]",
        "training.warmup=2",
        "training.checkpoint_freq=3",
        "training.tensorboard_freq=2",
        "training.validation_images=2",
        "dataset.sizes.train=8",
        "dataset.sizes.test=4",
        "test.num_images_to_process=4",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("dataset.data_path={}", data.display()), format!("training.iters={iters}")])
    .collect()
}

fn train(cfg: &str, words: &[String], out: &Path, resume: bool) {
    let mut a = vec!["train", "with", cfg];
    a.extend(words.iter().map(String::as_str));
    a.extend(["--out", out.to_str().unwrap(), "--quiet"]);
    if resume {
        a.push("--resume");
    }
    let o = gestalt(&a);
    assert!(o.status.success(), "{}", stderr(&o));
}

fn lines(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn checkpoint_state(path: &Path) -> serde_json::Value {
    gestalt::train::checkpoint::Checkpoint::load(path).unwrap().state
}

#[test]
fn emorl_trains_checkpoints_resumes_exactly_and_evaluates() {
    let data = tmpdir("emorl-train");
    let (a, b) = (data.join("a"), data.join("b"));
    // iters + 1 = 6 updates: epoch 1 (steps 1–4) and half of epoch 2.
    train("train/tetrominoes/EMORL", &tiny(&data, 5), &a, false);
    let la = lines(&a);
    assert_eq!(la.last().unwrap()["step"], 6);
    let running: Vec<&serde_json::Value> = la.iter().filter(|l| l["split"] == "train_running").collect();
    assert_eq!(running.len(), 3, "a log point every 2 steps");
    for key in ["loss", "nll", "kl", "norm_delta_lambda_1", "geco_beta", "geco_C_ema", "KL_beta"] {
        assert!(running[0][key].is_number(), "{key} logged: {}", running[0]);
    }
    let valid = la.iter().filter(|l| l["split"] == "validation").count();
    assert_eq!(valid, 4, "at steps 3, 4 (epoch end), 6 (checkpoint) and the end");
    for f in [
        "checkpoints/step-3",
        "checkpoints/step-6",
        "checkpoints/best",
        "viz/sample_0.png",
        "viz/curves.png",
        "eval/test.json",
    ] {
        assert!(a.join(f).is_file(), "{f}");
    }
    let tb: u64 = std::fs::read_dir(a.join("tb")).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(tb > 2000, "TensorBoard scalars and images, {tb} bytes");
    // GECO moved after its warm start, and its state is in the checkpoint.
    let geco = &checkpoint_state(&a.join("checkpoints/last"))["family"];
    assert!(geco["geco_C_ema"].as_f64().unwrap() != 0.0, "{geco}");
    assert!(geco["geco_beta"].as_f64().unwrap() >= 0.55, "{geco}");
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("eval/test.json")).unwrap()).unwrap();
    assert_eq!(eval["images"], 4.0);
    for key in ["ARI", "ARI_std", "MSE", "MSE_std", "KL", "KL_std"] {
        assert!(eval[key].as_f64().is_some_and(f64::is_finite), "{key}: {eval}");
    }
    assert!((0.0..=1.0).contains(&eval["MSE"].as_f64().unwrap()));

    // Stop mid-epoch after 3 updates, then resume to 6: the same losses and test scores.
    train("train/tetrominoes/EMORL", &tiny(&data, 2), &b, false);
    assert_eq!(checkpoint_state(&b.join("checkpoints/last"))["loop"]["epoch_step"], 3);
    train("train/tetrominoes/EMORL", &tiny(&data, 5), &b, true);
    let lb = lines(&b);
    let at = |l: &[serde_json::Value], step: u64| {
        l.iter().find(|x| x["split"] == "train_running" && x["step"] == step).unwrap()["loss"].clone()
    };
    assert_eq!(at(&la, 6), at(&lb, 6), "resumed losses equal the uninterrupted run's");
    let eval_b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("eval/test.json")).unwrap()).unwrap();
    for key in ["ARI", "MSE", "KL"] {
        assert_eq!(eval[key], eval_b[key], "{key}");
    }

    // The test configs, by name, on the same checkpoint.
    let net = format!("net_path={}", a.display());
    let mut words = vec!["evaluate", "with", "test/tetrominoes/ARI_MSE_KL/EMORL"];
    let t = tiny(&data, 5);
    words.extend(t.iter().map(String::as_str));
    words.push(&net);
    let o = gestalt(&words);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = last_json(&o);
    assert_eq!((v["split"].as_str(), v["images"].as_f64()), (Some("test"), Some(4.0)));
    words[2] = "test/tetrominoes/sample_viz/EMORL";
    words.push("test.num_images_to_process=2");
    let o = gestalt(&words);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(last_json(&o)["pictures"].as_array().map(Vec::len), Some(2));
    let (w, h) = gestalt::viz::png_size(&a.join("eval/sample_viz/sample_1.png")).unwrap();
    assert!(w > 500 && h > 200, "a row per step (2 layers + 1 refinement), {w}×{h}");

    // A latent traversal of slot 1: the image, then a row per dimension, 8 steps across.
    words[2] = "test/tetrominoes/disentanglement/EMORL_viz";
    words.push("test.disentangle_slot=1");
    let o = gestalt(&words);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = last_json(&o);
    assert_eq!((v["slot"].as_u64(), v["z_range"].as_array().map(Vec::len)), (Some(1), Some(8)));
    let (w, h) = gestalt::viz::png_size(&a.join("eval/slot_1_disentanglement.png")).unwrap();
    assert!(w > 8 * 35 * 2 && h > 9 * 35 * 2, "9 rows of 8 steps (35 px at ×2), {w}×{h}");
    // GIFs of the most active dimensions (all 8 here), one per slot and dimension.
    words[2] = "test/tetrominoes/make_gifs/EMORL";
    let o = gestalt(&words);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = last_json(&o);
    let (dims, mean) = (v["dims"].as_array().unwrap(), v["activeness_mean"].as_array().unwrap());
    assert_eq!((dims.len(), v["gifs"].as_array().map(Vec::len)), (8, Some(24)));
    let act = |i: usize| mean[dims[i].as_u64().unwrap() as usize].as_f64().unwrap();
    assert!((1..8).all(|i| act(i - 1) >= act(i)), "most active first: {dims:?} {mean:?}");
    let gif = std::fs::read(a.join("eval/make_gifs/slot_2_row_7.gif")).unwrap();
    assert!(gif.starts_with(b"GIF89a"));
    std::fs::remove_dir_all(&data).ok();
}

#[test]
fn emorl_bad_input_is_one_line() {
    let cases: [(&[&str], &str); 5] = [
        (&["train", "with", "train/tetrominoes/EMORL", "Net.image_likelihood=Poisson"], "image_likelihood"),
        (&["evaluate", "with", "test/tetrominoes/ARI_MSE_KL/EMORL", "test.eval_type=FID"], "eval_type"),
        (
            &["evaluate", "with", "test/tetrominoes/disentanglement/EMORL_viz", "test.disentangle_slot=4"],
            "disentangle_slot",
        ),
        (&["evaluate", "with", "test/tetrominoes/ARI_MSE_KL/EMORL"], "net_path"),
        (&["train", "with", "train/clevr6/EMORL", "dataset.data_path=/nonexistent"], "does not exist"),
    ];
    for (args, needle) in cases {
        let o = gestalt(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle) && err.trim().lines().count() == 1, "{args:?}: {err}");
    }
}
