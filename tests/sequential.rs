//! Sequential N-EM through the command line: the seed's flying-shapes command on a tiny
//! generated set trains, draws its per-frame pictures, and evaluates every frame.
mod common;
use common::*;

#[test]
fn flying_shapes_trains_draws_frames_and_scores_every_frame() {
    let dir = tmpdir("sequential");
    let words: Vec<String> = [
        "with",
        "nem.sequential",
        "dataset.flying_shapes",
        "network.flying_shapes",
        "nem.k=3",
        "nem.nr_steps=4",
        "dataset.sizes.training=32",
        "dataset.sizes.validation=16",
        "dataset.sizes.test=16",
        "training.batch_size=16",
        "training.max_epoch=1",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("dataset.path={}", dir.join("data").display())])
    .collect();
    let run = dir.join("run");
    let o = gestalt(&args("train", &words, &["--out", run.to_str().unwrap(), "--quiet"]));
    assert!(o.status.success(), "{}", stderr(&o));
    for pic in ["slot_assignments.png", "sequence.gif", "slot_reconstructions.png"] {
        assert!(run.join("viz").join(pic).is_file(), "{pic}");
    }
    let w = [words.clone(), vec![format!("net_path={}", run.display())]].concat();
    let o = gestalt(&args("evaluate", &w, &["--quiet", "--out", dir.join("eval").to_str().unwrap()]));
    assert!(o.status.success(), "{}", stderr(&o));
    let scores = last_json(&o);
    // Step t is scored on frame t + 1; the last frame's score is the last step's.
    for t in 1..=4 {
        assert!(scores[format!("AMI_frame_{t:02}")].is_number(), "{scores}");
    }
    assert_eq!(scores["AMI_frame_04"], scores["last_AMI"]);
    assert!(dir.join("eval/viz/test_scores_over_time.png").is_file());
}
