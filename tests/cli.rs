//! The command line end to end: config words, errors, train → evaluate, resume.
mod common;
use common::*;

#[test]
fn print_config_merges_named_configs_and_overrides() {
    let o = gestalt(&[
        "print-config",
        "with",
        "dataset.shapes",
        "network.NEM",
        "nem.k=4",
        "nem.nr_steps=15",
        "noise.prob=0.1",
        "run_config.AMI=False",
        "nem.sequential",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["nem"]["k"], 4);
    assert_eq!(v["nem"]["nr_steps"], 15);
    assert_eq!(v["noise"]["prob"], 0.1);
    assert_eq!(v["run_config"]["AMI"], false);
    assert_eq!(v["network"]["use_NEM_formulation"], true);
    assert_eq!(v["nem"]["loss_step_weights"], "all");
    assert_eq!(v["nem"]["gradient_gamma"], false);
    // Untouched defaults survive the deep merge.
    assert_eq!(v["nem"]["e_sigma"], 0.25);
    assert_eq!(v["training"]["params"]["learning_rate"], 0.001);
}

#[test]
fn info_prints_the_reference_parameter_counts() {
    for (net, want) in [("network.shapes", 455_534), ("network.NEM", 196_001), ("network.flying_shapes", 3_403_389)] {
        let o = gestalt(&["info", "with", "dataset.shapes", net, "nem.k=4"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(last_json(&o)["trainable_parameters"], want, "{net}");
    }
    // Flying MNIST's network reads 24×24 frames.
    let o = gestalt(&["info", "with", "dataset.shapes24", "network.flying_mnist", "nem.k=2"]);
    assert_eq!(last_json(&o)["trainable_parameters"], 1_835_091, "{}", stderr(&o));
}

fn assert_usage_error(args: &[&str], needle: &str) {
    let o = gestalt(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(needle), "{args:?}: stderr {err:?} lacks {needle:?}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err:?}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_input_is_one_line_and_exit_status_two() {
    assert_usage_error(&["print-config", "with", "nem.kk=4"], "did you mean `nem.k`");
    assert_usage_error(&["print-config", "with", "nem.k=four"], "nem.k");
    assert_usage_error(&["print-config", "with", "dataset.shapez"], "did you mean `dataset.shapes`");
    assert_usage_error(&["print-config", "with", "=4"], "bad override");
    assert_usage_error(&["print-config", "with", "/no/such/file.json"], "cannot read config file");
    assert_usage_error(&["info", "with", "dataset.shapes", "--backend", "tpu"], "unknown backend `tpu`");
    assert_usage_error(&["info", "with", "nem.loss_step_weights=[1,2]"], "loss_step_weights");
    assert_usage_error(&["info", "with", "training.optimizer=adamax"], "adamax");
    assert_usage_error(&["bench", "with", "dataset.shapes24", "--devices", "0"], "training.devices must be at least 1");
    let data = tmpdir("missing");
    let path = format!("dataset.path={}", data.display());
    assert_usage_error(
        &["train", "with", "dataset.generate=false", &path, "--out", data.join("run").to_str().unwrap()],
        "does not exist",
    );
}

#[test]
fn a_malformed_data_file_is_a_clear_error() {
    let data = tmpdir("malformed");
    std::fs::write(data.join("shapes.h5"), b"garbage").unwrap();
    let words = tiny_words(&data);
    let out = data.join("run");
    let o = gestalt(&args("train", &words, &["--out", out.to_str().unwrap(), "--quiet"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("shapes.h5"), "{}", stderr(&o));
}

/// Truncated or overwritten data files, and a batch larger than its split, fail with one line and
/// exit status 2 before the run directory exists.
#[test]
fn bad_data_writes_nothing() {
    let data = tmpdir("corrupt");
    let words = tiny_words(&data);
    let o = gestalt(&args("generate", &words, &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let file = data.join("shapes.h5");
    let good = std::fs::read(&file).unwrap();
    let n = good.len();
    let out = data.join("run");
    let out_arg = out.to_str().unwrap().to_string();
    let train = |extra: &[&str]| gestalt(&args("train", &words, &[&["--out", &out_arg, "--quiet"], extra].concat()));
    // Cuts through the header, each split's data and the end; zeroed blocks at the same places.
    let mut broken: Vec<(String, Vec<u8>)> = Vec::new();
    for frac in [0.001, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.999] {
        let at = ((n as f64 * frac) as usize).max(1);
        broken.push((format!("cut at {at}"), good[..at].to_vec()));
    }
    for at in [0, 8, 64, 512, 2048] {
        let mut b = good.clone();
        b[at..(at + 256).min(n)].fill(0xA5);
        broken.push((format!("bytes {at}.. overwritten"), b));
    }
    for (what, bytes) in broken {
        std::fs::write(&file, &bytes).unwrap();
        let o = train(&[]);
        if o.status.success() {
            let _ = std::fs::remove_dir_all(&out); // the bytes held no metadata the read needs
            continue;
        }
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{what}: one line: {err:?}");
        assert!(!out.exists(), "{what}: a run directory was left behind ({err})");
    }
    std::fs::write(&file, &good).unwrap();
    let o = train(&["training.batch_size=97"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("fewer than training.batch_size=97"), "{}", stderr(&o));
    assert!(!out.exists(), "a batch larger than its split left a run directory");
}

#[test]
fn train_then_evaluate_through_the_cli() {
    let data = tmpdir("e2e");
    let words = tiny_words(&data);
    let out = data.join("run");
    let o = gestalt(&args("train", &words, &["--out", out.to_str().unwrap(), "--quiet"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let test = last_json(&o);
    assert_eq!(test["split"], "test");
    let ami = test["AMI"].as_f64().unwrap();
    assert!((-1.0..=1.0).contains(&ami), "{test}");
    assert_eq!(test["samples"], 32.0);
    for f in ["config.json", "metrics.jsonl", "checkpoints/last", "checkpoints/best", "eval/test.json"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert!(std::fs::read_dir(out.join("tb")).unwrap().count() > 0, "TensorBoard events");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let valid: Vec<_> = lines.iter().filter(|l| l["split"] == "validation").collect();
    assert_eq!(valid.len(), 2, "one validation point per epoch");
    for l in &valid {
        for k in ["loss", "ub_loss_last", "ARI", "step", "epoch", "elapsed_s"] {
            assert!(!l[k].is_null(), "{k} in {l}");
        }
    }
    assert!(lines.iter().any(|l| l["split"] == "train" && !l["ARI"].is_null()));
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["gestalt"]["backend"], "flex");

    // evaluate with the run's words and net_path, AMI on and off.
    let net = format!("net_path={}", out.display());
    let mut w = words.clone();
    w.push(net.clone());
    w.push("run_config.AMI=True".into());
    let o = gestalt(&args("evaluate", &w, &["--quiet"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let e = last_json(&o);
    assert_eq!(e["AMI"], test["AMI"], "evaluate reproduces train's final evaluation");
    // Batches spread over two replicas score as on one (each batch's draws are its own).
    let mut small = w.clone();
    small.push("run_config.batch_size=8".into());
    let on = |n: &str| last_json(&gestalt(&args("evaluate", &small, &["--quiet", "--devices", n])));
    let (one, two) = (on("1"), on("2"));
    for key in ["AMI", "NMI", "ARI", "loss", "samples"] {
        assert_eq!(one[key], two[key], "{key}: {one} vs {two}");
    }
    w.pop();
    w.push("run_config.AMI=False".into());
    let o = gestalt(&args("evaluate", &w, &["--quiet"]));
    let e = last_json(&o);
    assert!(e["loss"].as_f64().unwrap() > 0.0 && e["ub_loss_last"].as_f64().unwrap() > 0.0);
    assert!(e.get("AMI").is_none());

    // A second train into the same directory refuses rather than overwrite.
    let o = gestalt(&args("train", &words, &["--out", out.to_str().unwrap(), "--quiet"]));
    assert_eq!(o.status.code(), Some(2));
}

/// Validation losses per epoch from metrics.jsonl.
fn valid_losses(run: &std::path::Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["split"] == "validation")
        .map(|l| l["loss"].as_f64().unwrap())
        .collect()
}

#[test]
fn resume_continues_exactly_as_an_uninterrupted_run() {
    // With one model replica, and with two sharing each batch (`--devices 2`).
    for devices in ["1", "2"] {
        let data = tmpdir(&format!("resume-{devices}"));
        let words = tiny_words(&data);
        let (a, b) = (data.join("a"), data.join("b"));
        let train = |words: &[String], out: &std::path::Path, resume: bool| {
            let mut extra = vec!["--out", out.to_str().unwrap(), "--quiet", "--devices", devices];
            if resume {
                extra.push("--resume");
            }
            let o = gestalt(&args("train", words, &extra));
            assert!(o.status.success(), "{}", stderr(&o));
        };
        train(&words, &a, false);
        let mut one = words.clone();
        one.push("training.max_epoch=1".into());
        train(&one, &b, false);
        train(&words, &b, true);
        let (la, lb) = (valid_losses(&a), valid_losses(&b));
        assert_eq!(la.len(), 2);
        assert_eq!(la, lb, "{devices} replica(s): resumed run's validation losses equal the uninterrupted run's");
    }
}

#[test]
fn a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let data = tmpdir("nan");
    let mut words = tiny_words(&data);
    let out = data.join("run");
    words.push("training.max_epoch=1".into());
    let o = gestalt(&args("train", &words, &["--out", out.to_str().unwrap(), "--quiet"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let before = std::fs::read(out.join("checkpoints/last")).unwrap();
    // An infinite step size (1e300 in f32) turns the weights, and so the loss, into NaN.
    words.pop();
    words.push("training.params.learning_rate=1e300".into());
    let o = gestalt(&args("train", &words, &["--out", out.to_str().unwrap(), "--quiet", "--resume"]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("not finite"), "{}", stderr(&o));
    assert_eq!(std::fs::read(out.join("checkpoints/last")).unwrap(), before, "last checkpoint untouched");
}

#[test]
fn no_config_words_run_the_default_experiment() {
    let o = gestalt(&["print-config"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["dataset"]["name"], "shapes24");
    // Overrides alone still apply to the default experiment.
    let o = gestalt(&["print-config", "with", "nem.k=4"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!((v["dataset"]["name"].as_str(), v["nem"]["k"].as_u64()), (Some("shapes24"), Some(4)));
}

#[test]
fn minimal_has_the_seed_parameter_count() {
    // θ_init K·H + W_x H·D + W_h H·H + b_h H + W_dec D·H + b_dec D, K = 3, H = 24, D = 576.
    let o = gestalt(&["info", "with", "dataset.shapes24", "network.minimal"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(last_json(&o)["trainable_parameters"], 3 * 24 + 24 * 576 + 24 * 24 + 24 + 576 * 24 + 576);
}

#[test]
fn every_run_draws_its_pictures_and_viz_redraws_them() {
    let data = tmpdir("viz");
    let out = data.join("run");
    let words: Vec<String> = [
        "with",
        "dataset.shapes24",
        "network.minimal",
        "dataset.sizes.training=64",
        "dataset.sizes.validation=16",
        "dataset.sizes.test=16",
        "dataset.valid_size=16",
        "training.max_epoch=2",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("dataset.path={}", data.display())])
    .collect();
    let o = gestalt(&args("train", &words, &["--out", out.to_str().unwrap(), "--quiet"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let test = last_json(&o);
    for k in ["AMI", "NMI", "ARI", "last_AMI", "last_NMI"] {
        assert!(test[k].as_f64().is_some(), "{k} in {test}");
    }
    let pictures =
        ["dataset_examples", "learning_curves", "grouping_scores", "slot_assignments", "slot_reconstructions"];
    let viz = out.join("viz");
    for p in pictures {
        let (w, h) = gestalt::viz::png_size(&viz.join(format!("{p}.png"))).unwrap();
        assert!(w > 100 && h > 60, "{p}: {w}×{h}");
    }
    assert_eq!(std::fs::read_dir(viz.join("frames")).unwrap().count(), 2, "one frame per epoch");
    let gif = std::fs::read(viz.join("training.gif")).unwrap();
    assert!(gif.starts_with(b"GIF89a"));
    // Redraw from the run directory alone.
    std::fs::remove_file(viz.join("slot_assignments.png")).unwrap();
    let o = gestalt(&["viz", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(viz.join("slot_assignments.png").is_file());
    assert_usage_error(&["viz", data.to_str().unwrap()], "not a run directory");
}

#[test]
fn a_generated_file_made_with_other_settings_is_refused() {
    let data = tmpdir("stale");
    let path = format!("dataset.path={}", data.display());
    let sizes = ["dataset.sizes.training=8", "dataset.sizes.validation=4", "dataset.sizes.test=4"];
    let generate =
        |extra: &[&'static str]| [&["generate", "with", "dataset.shapes24", path.as_str()], &sizes[..], extra].concat();
    let o = gestalt(&generate(&[]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(data.join("shapes24.h5.json").is_file());
    let o = gestalt(&generate(&[]));
    assert!(o.status.success(), "the same settings reuse the file: {}", stderr(&o));
    assert_usage_error(&generate(&["dataset.seed=5"]), "was generated with");
}

#[test]
fn emorl_configs_resolve_by_name_with_the_original_keys() {
    for (cfg, want) in [("train/tetrominoes/EMORL", 467_236), ("train/multi_dsprites/EMORL", 666_500)] {
        let o = gestalt(&["info", "with", cfg, "Net.K=5", "training.batch_size=16"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v = last_json(&o);
        assert_eq!((v["trainable_parameters"].as_u64(), v["geco_scalars"].as_u64()), (Some(want), Some(2)), "{cfg}");
    }
    let o = gestalt(&["print-config", "with", "train/tetrominoes/EMORL", "Net.K=5"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!((v["Net"]["K"].as_u64(), v["training"]["warmup"].as_u64()), (Some(5), Some(10000)));
    assert_usage_error(&["print-config", "with", "train/tetrominoes/EMORL", "Net.KK=3"], "did you mean `Net.K`");
    assert_usage_error(&["print-config", "with", "train/tetrominoes/EMORL", "Net.image_decoder=big"], "96×96");
    assert_usage_error(
        &["print-config", "with", "train/tetrominoes/EMORL", "Net.bottom_up_prior=true"],
        "exclude each other",
    );
}

#[test]
fn emorl_generate_writes_the_train_and_test_files() {
    let data = tmpdir("emorl-gen");
    let path = format!("dataset.data_path={}", data.display());
    for (cfg, stem, e) in [
        ("train/tetrominoes/EMORL", "tetrominoes", 4),
        ("train/multi_dsprites/EMORL", "multi_dsprites_colored_on_grayscale", 6),
    ] {
        let o = gestalt(&["generate", "with", cfg, "dataset.sizes.train=6", "dataset.sizes.test=3", &path]);
        assert!(o.status.success(), "{}", stderr(&o));
        let train = gestalt::data::emorl::read_emorl(&data.join(format!("{stem}.h5")), "train", None, true).unwrap();
        let test = gestalt::data::emorl::read_emorl(&data.join(format!("{stem}_test.h5")), "test", None, true).unwrap();
        assert_eq!((train.n, test.n, train.e), (6, 3, e));
        assert_ne!(train.imgs[..test.imgs.len()], test.imgs[..], "disjoint images");
    }
    assert_usage_error(
        &["generate", "with", "train/tetrominoes/EMORL", "dataset.sizes.train=7", "dataset.sizes.test=3", &path],
        "was generated with",
    );
}
