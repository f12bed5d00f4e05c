//! The wgpu backend trains the same config. Under CI (CI set) a missing adapter is a failure, not
//! a skip: `.ci/run` installs Mesa's lavapipe, a Vulkan adapter on the CPU.
mod common;
use common::*;

#[test]
fn wgpu_trains_the_tiny_config() {
    let data = tmpdir("wgpu");
    let mut words = tiny_words(&data);
    words.push("training.max_epoch=1".into());
    let out = data.join("run");
    let o = gestalt(&args("train", &words, &["--out", out.to_str().unwrap(), "--quiet", "--backend", "wgpu"]));
    let err = stderr(&o);
    if o.status.code() == Some(2) && err.contains("not usable here") && std::env::var_os("CI").is_none() {
        eprintln!("skipping: no wgpu adapter on this machine ({err})");
        return;
    }
    assert!(o.status.success(), "wgpu training failed: {err}");
    let test = last_json(&o);
    assert!(test["AMI"].as_f64().is_some(), "{test}");
    let cfg = std::fs::read_to_string(out.join("config.json")).unwrap();
    assert!(cfg.contains("\"backend\": \"wgpu\""));
}
