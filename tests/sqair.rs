//! SQAIR: the spatial transformer's gradients with respect to `where` against central finite
//! differences (f64), presence that once off stays off, and the seed's command through the CLI
//! on synthetic digits written as MNIST idx files.
mod common;
use burn::tensor::{Device, FloatDType, Tensor, TensorData};
use common::*;
use gestalt::sqair::model::{CountPrior, PropPrior, Shape, SqairNet};
use gestalt::sqair::stn;
use gestalt::train::Shard;
use std::path::Path;

/// This test binary is its own process: f64 for every tensor it makes (every test configures
/// the device before its first tensor, whichever test runs first).
fn flex64() -> Device {
    let mut d = Device::flex();
    let _ = d.configure(FloatDType::F64);
    d
}

fn device() -> Device {
    flex64().autodiff()
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

/// A smooth, deterministic 9×11 image [1, 9, 11] and fixed read-out weights for a glimpse of side 5.
fn image(d: &Device) -> Tensor<3> {
    let v: Vec<f64> = (0..99).map(|i| ((i as f64) * 0.37).sin() + 0.1 * (i % 7) as f64).collect();
    Tensor::from_data(TensorData::new(v, [1, 9, 11]), d)
}

fn weights(n: usize, shape: [usize; 3], d: &Device) -> Tensor<3> {
    let v: Vec<f64> = (0..n).map(|i| ((i as f64) * 1.3).cos()).collect();
    Tensor::from_data(TensorData::new(v, shape), d)
}

/// d/d(where logits) of Σ R ⊙ f(where), by autodiff and by central differences.
fn check_where_gradient(f: &dyn Fn(Tensor<2>) -> Tensor<1>, logits: [f64; 4], what: &str) {
    let d = device();
    // TensorData keeps the f64 values (`from_floats` would round them through f32).
    let at = |v: [f64; 4]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [1, 4]), &d);
    let x = at(logits).require_grad();
    let grads = f(x.clone()).backward();
    let auto = host(x.grad(&grads).unwrap());
    let eps = 1e-6;
    for i in 0..4 {
        let moved = |delta: f64| {
            let mut v = logits;
            v[i] += delta;
            host(f(at(v)))[0]
        };
        let numeric = (moved(eps) - moved(-eps)) / (2.0 * eps);
        let tol = 1e-6 * (1.0 + numeric.abs());
        assert!((auto[i] - numeric).abs() < tol, "{what}: d/d where[{i}] autodiff {} vs numeric {numeric}", auto[i]);
        assert!(numeric.abs() > 1e-4, "{what}: where[{i}] must move the output (got {numeric})");
    }
}

#[test]
fn glimpse_and_write_have_the_finite_difference_gradients_in_where() {
    let d = device();
    // Scales ≈ 0.4–0.6 and shifts off-centre: the glimpse straddles pixels on every axis.
    let logits = [-0.3, 0.2, 0.15, -0.25];
    let r = weights(25, [1, 5, 5], &d);
    let read = |w: Tensor<2>| (stn::glimpse(image(&d), stn::to_coords(w), 5) * r.clone()).sum();
    check_where_gradient(&read, logits, "glimpse");
    let g = weights(25, [1, 5, 5], &d).add_scalar(1.5);
    let r = weights(99, [1, 9, 11], &d).sin();
    let written = |w: Tensor<2>| (stn::write(g.clone(), stn::to_coords(w), [9, 11]) * r.clone()).sum();
    check_where_gradient(&written, logits, "write");
}

fn small_shape() -> Shape {
    Shape {
        image: [50, 50],
        glimpse: 6,
        n_what: 3,
        hidden: 8,
        steps: 3,
        masked_glimpse: true,
        rec_where_prior: true,
        count_prior: CountPrior::Categorical,
        prop_prior: PropPrior::Rnn,
        scale_prior: [-2.0, -2.0],
        transform_var_bias: -3.0,
        output_scale: 0.25,
        prop_prior_step_bias: 10.0,
        output_std: 0.3,
        disc_step_bias: 1.0,
        prop_step_bias: 5.0,
    }
}

/// An object slot absent at t − 1 is never propagated: over a sequence the propagated count of
/// each frame is at most the previous frame's count, and with a huge propagation bias the present
/// object is kept while the absent slots stay off.
#[test]
fn presence_once_off_stays_off() {
    let d = flex64();
    d.seed(3);
    let (p, t_len) = (12, 6);
    let frames: Vec<f32> = (0..t_len * p * 2500).map(|i| ((i * 2654435761usize) % 97) as f32 / 97.0).collect();
    let frames = Tensor::<4>::from_data(TensorData::new(frames, [t_len, p, 50, 50]), &d);
    let counts = |u: &gestalt::sqair::seq::Unrolled| -> Vec<(Vec<f64>, Vec<f64>, Vec<f64>)> {
        u.frames
            .iter()
            .map(|f| (host(f.steps.clone()), host(f.prop_steps.clone()), host(f.disc_steps.clone())))
            .collect()
    };
    // Free presences: propagated ≤ the previous frame's objects, always.
    let net = SqairNet::new(&small_shape(), Tensor::zeros([50, 50], &d), &d);
    let u = net.unroll(&frames, &Shard::whole(5, p));
    let c = counts(&u);
    assert!(c[0].1.iter().all(|&v| v == 0.0), "nothing to propagate at the first frame");
    for t in 1..t_len {
        for i in 0..p {
            assert!(c[t].1[i] <= c[t - 1].0[i], "frame {t} row {i}: {} propagated of {}", c[t].1[i], c[t - 1].0[i]);
        }
    }
    // A frame after one object: with a propagation bias of +60 every present object is kept,
    // yet the two absent slots stay off; discovery's −60 adds nothing.
    let shape = Shape { prop_step_bias: 60.0, disc_step_bias: -60.0, ..small_shape() };
    let net = SqairNet::new(&shape, Tensor::zeros([50, 50], &d), &d);
    let mut carry = net.initial_carry(p, &d);
    carry.pres = Tensor::<1>::from_floats([1.0, 0.0, 0.0], &d).reshape([1, 3]).expand([p, 3]);
    carry.ids = Tensor::<1>::from_floats([0.0, -1.0, -1.0], &d).reshape([1, 3]).expand([p, 3]);
    let img = frames.narrow(0, 1, 1).reshape([p, 50, 50]);
    let normals = Shard::whole(9, p).normal(0.0, 1.0, [p, 6, 4 + 3], &d);
    let uniforms = Shard::whole(9, p).uniform([p, 6, 1], &d);
    let (frame, next) = net.frame(&img, &carry, 1, (&normals, &uniforms));
    assert!(host(frame.prop_steps).iter().all(|&v| v == 1.0));
    assert!(host(frame.disc_steps).iter().all(|&v| v == 0.0));
    assert_eq!(host(next.pres.clone()), [1.0, 0.0, 0.0].repeat(p));
    assert_eq!(host(next.ids), [0.0, -1.0, -1.0].repeat(p), "the kept object keeps its id");
}

/// 5,010 synthetic 28×28 "digits" (filled strokes of varying size and place) as idx files: the
/// first 5,000 are the validation pool, the last 10 the training pool.
fn write_digits(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let n = 5_010u32;
    let mut images = vec![0, 0, 8, 3];
    for v in [n, 28, 28] {
        images.extend(v.to_be_bytes());
    }
    let mut labels = vec![0, 0, 8, 1];
    labels.extend(n.to_be_bytes());
    for i in 0..n as usize {
        let (h, w) = (8 + i % 13, 3 + (i / 13) % 11);
        let (y0, x0) = (2 + i % 5, 4 + i % 7);
        for y in 0..28 {
            for x in 0..28 {
                let inside = (y0..y0 + h).contains(&y) && (x0..x0 + w).contains(&x);
                images.push(if inside { (120 + (x * 17 + y * 5 + i) % 136) as u8 } else { 0 });
            }
        }
        labels.push((i % 10) as u8);
    }
    std::fs::write(dir.join("train-images.idx3-ubyte"), images).unwrap();
    std::fs::write(dir.join("train-labels.idx1-ubyte"), labels).unwrap();
}

/// `train/multi_mnist/SQAIR` with `train_itr=3 batch_size=4` makes a tiny run with the original
/// flag names; evaluation prints the original's metrics; pictures, TensorBoard scalars and a
/// checkpoint are written; `--resume` continues; bad words are one-line errors.
#[test]
fn the_seed_command_trains_evaluates_and_resumes() {
    let dir = tmpdir("sqair");
    write_digits(&dir.join("mnist"));
    let words: Vec<String> = [
        "with",
        "train/multi_mnist/SQAIR",
        "train_itr=3",
        "batch_size=4",
        "k_particles=2",
        "log_itr=3",
        "fig_itr=3",
        "save_itr=3",
        "report_loss_every=1",
        "dataset.sizes.train=8",
        "dataset.sizes.validation=8",
        "dataset.frames=4",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("dataset.mnist_path={}", dir.join("mnist").display()),
        format!("dataset.data_path={}", dir.join("data").display()),
    ])
    .collect();
    let run = dir.join("run");
    let o = gestalt(&args("train", &words, &["--out", run.to_str().unwrap(), "--quiet"]));
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["viz/reconstructions.png", "viz/reconstructions.gif", "checkpoints/last", "metrics.jsonl"] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    assert!(std::fs::read_dir(run.join("tb")).unwrap().next().is_some(), "TensorBoard events");
    let net = format!("net_path={}", run.join("checkpoints/last").display());
    let eval = [words.clone(), vec![net.clone()]].concat();
    let o = gestalt(&args("evaluate", &eval, &["--quiet", "--out", dir.join("eval").to_str().unwrap()]));
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    for key in ["elbo_iwae", "elbo_vae", "data_ll", "kl", "num_step_acc", "num_disc_steps", "num_prop_steps", "ess"] {
        assert!(j[key].as_f64().is_some_and(f64::is_finite), "{key} in {j}");
    }
    let acc = j["num_step_acc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc) && j["ess"].as_f64().unwrap() <= 2.0 + 1e-9, "{j}");
    // Three more steps from the checkpoint.
    let more = [words.clone(), vec!["train_itr=6".into()]].concat();
    let o = gestalt(&args("train", &more, &["--out", run.to_str().unwrap(), "--quiet", "--resume"]));
    assert!(o.status.success(), "{}", stderr(&o));
    // … exactly as six steps in one go.
    let straight = dir.join("straight");
    let o = gestalt(&args("train", &more, &["--out", straight.to_str().unwrap(), "--quiet"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let at_six = |run: &Path| {
        let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
        let mut rows: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|j| j["step"] == 6)
            .collect();
        rows.iter_mut().for_each(|j| _ = j.as_object_mut().unwrap().remove("elapsed_s"));
        rows
    };
    let (resumed, once) = (at_six(&run), at_six(&straight));
    assert!(!resumed.is_empty() && resumed == once, "{resumed:?} vs {once:?}");
    // The export under the original names scores as the checkpoint it came from.
    let o = gestalt(&["export", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let score = |net: &Path| {
        let w = [words.clone(), vec![format!("net_path={}", net.display())]].concat();
        let o = gestalt(&args("evaluate", &w, &["--quiet", "--out", dir.join("eval2").to_str().unwrap()]));
        assert!(o.status.success(), "{}", stderr(&o));
        let mut j = last_json(&o);
        j.as_object_mut().unwrap().remove("checkpoint");
        j
    };
    assert_eq!(score(&run.join("checkpoints/best")), score(&run.join("weights.safetensors")));
    // An unknown flag and a bad value: one line, exit 2, nothing written.
    for bad in ["batchsize=4", "disc_prior_type=poisson"] {
        let w = [words.clone(), vec![bad.to_string()]].concat();
        let out = dir.join(format!("bad-{bad}"));
        let o = gestalt(&args("train", &w, &["--out", out.to_str().unwrap()]));
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert_eq!(stderr(&o).trim().lines().count(), 1, "{bad}: {}", stderr(&o));
        assert!(!out.exists(), "{bad}: nothing written");
    }
}
