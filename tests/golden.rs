//! Golden losses: the first 20 training losses of the default experiment, of static-shapes
//! RNN-EM and N-EM, and of the minimal system, recorded before the EM step was rewritten (`tests/fixtures/golden_losses.json`).
//! A change that alters any model's mathematics or its random draws fails here.
//! `GESTALT_WRITE_GOLDEN=1 cargo test --release --test golden` records them anew.
mod common;
use common::*;
use serde_json::{Value, json};

/// (name, config words); each trains 20 steps in one epoch, logging every step.
fn configs(data: &std::path::Path) -> Vec<(&'static str, Vec<String>)> {
    let sizes = |train: usize| {
        vec![
            format!("dataset.sizes.training={train}"),
            "dataset.sizes.validation=32".into(),
            "dataset.sizes.test=32".into(),
            "training.max_epoch=1".into(),
            "training.log_steps=1".into(),
        ]
    };
    let default = [vec![format!("dataset.path={}", data.join("default").display())], sizes(320)].concat();
    let words = |named: &[&str], dir: &str, train: usize| -> Vec<String> {
        let named = ["with"].iter().chain(named).map(|s| s.to_string()).collect();
        [named, vec![format!("dataset.path={}", data.join(dir).display())], sizes(train)].concat()
    };
    let static_shapes = ["dataset.shapes", "nem.k=4", "nem.nr_steps=15", "noise.prob=0.1"];
    vec![
        ("default", default),
        ("static_rnnem", words(&[&["network.shapes"], &static_shapes[..]].concat(), "static", 1280)),
        ("static_nem", words(&[&["network.NEM"], &static_shapes[..]].concat(), "static", 1280)),
        ("minimal", words(&["dataset.shapes24", "network.minimal"], "minimal", 640)),
    ]
}

/// The logged (loss, intra, inter) of each training step.
fn losses(words: &[String], out: &std::path::Path) -> Vec<[f64; 3]> {
    let o = gestalt(&args("train", words, &["--seed", "0", "--out", out.to_str().unwrap(), "--quiet"]));
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["split"] == "train_running")
        .map(|v| ["loss", "intra", "inter"].map(|k| v[k].as_f64().unwrap()))
        .collect()
}

#[test]
fn the_first_twenty_training_losses_are_unchanged() {
    let dir = tmpdir("golden");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden_losses.json");
    let runs: Vec<(&str, Vec<[f64; 3]>)> =
        configs(&dir.join("data")).into_iter().map(|(name, w)| (name, losses(&w, &dir.join(name)))).collect();
    if std::env::var("GESTALT_WRITE_GOLDEN").is_ok() {
        let record: serde_json::Map<String, Value> = runs.iter().map(|(n, l)| (n.to_string(), json!(l))).collect();
        std::fs::write(&path, serde_json::to_string_pretty(&record).unwrap() + "\n").unwrap();
        return;
    }
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (name, got) in runs {
        let want: Vec<[f64; 3]> = serde_json::from_value(golden[name].clone()).unwrap();
        assert_eq!(got.len(), 20, "{name}: steps");
        assert_eq!(got.len(), want.len(), "{name}: steps");
        for (step, (g, w)) in got.iter().zip(&want).enumerate() {
            for i in 0..3 {
                // Float summation order only (threads, SIMD width): 20 Adam steps keep it far
                // below this; any change of mathematics moves the first step already.
                let rel = (g[i] - w[i]).abs() / w[i].abs().max(1e-3);
                assert!(rel < 1e-4, "{name} step {}: {:?} vs golden {:?}", step + 1, g, w);
            }
        }
    }
}
