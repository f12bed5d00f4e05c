//! R-NEM through the command line: the README's words train on a tiny generated balls set, roll
//! out on their own predictions, extrapolate to 6–8 balls with K = 8, and export under the
//! original names; bad rollouts are one-line errors.
mod common;
use common::*;

#[test]
fn rnem_trains_rolls_out_extrapolates_and_exports() {
    let dir = tmpdir("rnem");
    let words = |dataset: &str, k: usize| -> Vec<String> {
        [
            "with",
            dataset,
            "network.r_nem",
            &format!("nem.k={k}"),
            "nem.nr_steps=4",
            "dataset.sizes.training=16",
            "dataset.sizes.validation=8",
            "dataset.sizes.test=8",
            "training.batch_size=8",
            "training.max_epoch=1",
            &format!("dataset.path={}", dir.join("data").display()),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = dir.join("run");
    let w = words("dataset.balls4mass64", 3);
    let o = gestalt(&args("train", &w, &["--out", run.to_str().unwrap(), "--quiet"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let test = last_json(&o);
    for key in ["r_loss", "ub_loss", "intra_last_dt", "confidence", "ARI_frame_04"] {
        assert!(test[key].is_number(), "{key} in {test}");
    }
    let net = format!("net_path={}", run.display());
    let roll = [w.clone(), vec![net.clone(), "run_config.rollout_steps=3".into()]].concat();
    let o = gestalt(&args("rollout", &roll, &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let r = last_json(&o);
    assert_eq!(r["rollout_steps"], 3);
    assert!(r["bce_frame_07"].is_number() && r["bce_rollout"].is_number() && r["ARI_frame_07"].is_number(), "{r}");
    assert!(run.join("rollout/rollout.json").is_file() && run.join("rollout/sequence_0.gif").is_file());
    // The relational cell's weights do not depend on K: a K = 3 model runs with K = 8.
    let extra = [words("dataset.balls678mass64", 8), vec![net.clone()]].concat();
    let o = gestalt(&args("evaluate", &extra, &["--quiet", "--out", dir.join("extra").to_str().unwrap()]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(last_json(&o)["ARI"].is_number());
    let o = gestalt(&["export", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let names = std::fs::read(run.join("weights.safetensors")).unwrap();
    assert!(String::from_utf8_lossy(&names).contains("R-RNNEM/NPE/fully_connected_5/weights"));
    // Too many rollout steps for the file's 51 frames, and a family without rollouts.
    let long = [w.clone(), vec![net.clone(), "run_config.rollout_steps=60".into()]].concat();
    let o = gestalt(&args("rollout", &long, &[]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("needs 65"), "{}", stderr(&o));
    let o = gestalt(&["rollout", "with", "train/tetrominoes/EMORL", &net]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

/// The seed's Atari command on the procedural `invaders84` environment: actions reach the
/// relational cell, training and rollouts run.
#[test]
fn the_atari_command_trains_on_the_action_environment() {
    let dir = tmpdir("rnem-atari");
    let words: Vec<String> = [
        "with",
        "dataset.invaders84",
        "network.enc_dec_84_atari",
        "network.r_nem_actions",
        "no_score",
        "no_collisions",
        "nem.k=4",
        "nem.nr_steps=3",
        "training.batch_size=4",
        "feed_actions=True",
        "noise.prob=0.002",
        "dataset.sizes.training=8",
        "dataset.sizes.validation=4",
        "dataset.sizes.test=4",
        "training.max_epoch=1",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("dataset.path={}", dir.join("data").display())])
    .collect();
    let run = dir.join("run");
    let o = gestalt(&args("train", &words, &["--out", run.to_str().unwrap(), "--quiet"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(last_json(&o)["loss"].is_number());
    let roll =
        [words.clone(), vec![format!("net_path={}", run.display()), "run_config.rollout_steps=2".into()]].concat();
    let o = gestalt(&args("rollout", &roll, &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(last_json(&o)["bce_frame_05"].is_number());
    // Without actions in the words the action cell has nothing to read.
    let no_actions: Vec<String> = words.iter().filter(|w| !w.starts_with("feed_actions")).cloned().collect();
    let o = gestalt(&args("train", &no_actions, &["--out", dir.join("run2").to_str().unwrap(), "--quiet"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("feed_actions"), "{}", stderr(&o));
}
