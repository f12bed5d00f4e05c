//! Helpers for tests that drive the `gestalt` binary.
#![allow(dead_code)]
pub mod hand;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gestalt-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn gestalt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gestalt"))
        .args(args)
        .env("GESTALT_CONFIGS", "/nonexistent") // the embedded configs only
        .output()
        .expect("the gestalt binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The JSON object on the last stdout line.
pub fn last_json(o: &Output) -> serde_json::Value {
    let out = stdout(o);
    let line = out.lines().last().unwrap_or_else(|| panic!("no stdout; stderr: {}", stderr(o)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("last line {line:?} is not JSON: {e}"))
}

/// Config words of a tiny static-shapes RNN-EM that trains in seconds, data in `data`.
pub fn tiny_words(data: &Path) -> Vec<String> {
    [
        "with",
        "dataset.shapes",
        "network.shapes",
        "nem.k=3",
        "nem.nr_steps=3",
        "noise.prob=0.1",
        "dataset.sizes.training=96",
        "dataset.sizes.validation=32",
        "dataset.sizes.test=32",
        "training.batch_size=16",
        "training.max_epoch=2",
        "training.log_steps=3",
        r#"network.recurrent=[{"name":"rnn","size":24,"act":"sigmoid","ln":false}]"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("dataset.path={}", data.display())])
    .collect()
}

pub fn args<'a>(cmd: &'a str, words: &'a [String], extra: &'a [&'a str]) -> Vec<&'a str> {
    std::iter::once(cmd).chain(words.iter().map(|s| s.as_str())).chain(extra.iter().copied()).collect()
}
