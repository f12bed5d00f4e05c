//! The one training loop. It knows no model: a [`Family`] supplies batches, the loss of a batch,
//! and its scores; the loop owns optimisation, validation, early stopping, checkpoints and logs.
pub mod checkpoint;
pub mod log;
pub mod optim;
pub mod shard;

use crate::error::{Error, Result};
use crate::util::derive_seed;
use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use checkpoint::Checkpoint;
use indicatif::{ProgressBar, ProgressStyle};
pub use log::{RunLog, Scores};
use serde_json::json;
pub use shard::Shard;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How the loop runs, from the family's configuration.
#[derive(Debug, Clone)]
pub struct LoopSettings {
    pub optimizer: String,
    pub params: optim::OptimParams,
    pub clip_gradients: Option<f64>,
    /// Rescale all gradients together to at most this global L2 norm.
    pub clip_global_norm: Option<f64>,
    pub max_epoch: usize,
    /// Stop after this many optimiser steps, mid-epoch if need be (EMORL's `training.iters`).
    pub max_steps: Option<u64>,
    /// The learning rate of each step, from `params.learning_rate`.
    pub schedule: Schedule,
    /// Stop after this many epochs without a better validation criterion.
    pub max_patience: Option<usize>,
    /// Log the training losses (means since the last log point) every this many steps (0: per
    /// epoch only).
    pub log_steps: usize,
    /// Also score the validation subset and save `checkpoints/last` and `checkpoints/step-<N>`
    /// every this many steps, mid-epoch (EMORL's `checkpoint_freq`).
    pub checkpoint_steps: Option<u64>,
    pub seed: u64,
    /// Model replicas, each on its own device, that share each batch (`training.devices`).
    pub devices: usize,
    /// Checkpoint file to warm-start from.
    pub net_path: Option<String>,
    /// Draw the progress bar (EMORL's `training.tqdm`); `--quiet` hides it too.
    pub progress_bar: bool,
}

/// How the learning rate moves with the step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    Constant,
    /// `tf.train.piecewise_constant`: the base rate × `factor`^i after the i-th of the first `n`
    /// `boundaries` (a step equal to a boundary still takes the earlier rate). SQAIR's
    /// `schedule='4,6,10'`: ×1/3 at 20% and 50% of `train_itr`.
    Piecewise {
        boundaries: [u64; 8],
        n: usize,
        factor: f64,
    },
    /// Linear warm-up from 0 over `warmup` steps, then halving every `half_life` steps (EMORL:
    /// GradualWarmupScheduler around 0.5^((step − warmup)/half_life)).
    WarmupHalving {
        warmup: u64,
        half_life: u64,
    },
}

impl Schedule {
    /// `total` steps split in the proportions `parts`, the rate divided by 3 at each boundary
    /// (SQAIR's `experiment.py`; at most 9 parts).
    pub fn thirds(parts: &[f64], total: u64) -> Schedule {
        let sum: f64 = parts.iter().sum();
        let mut boundaries = [0u64; 8];
        let mut acc = 0.0;
        let n = parts.len().saturating_sub(1).min(8);
        for (b, p) in boundaries.iter_mut().zip(&parts[..n]) {
            acc += p;
            *b = (acc * total as f64 / sum).round() as u64;
        }
        Schedule::Piecewise { boundaries, n, factor: 1.0 / 3.0 }
    }

    pub fn lr(self, base: f64, step: u64) -> f64 {
        match self {
            Schedule::Constant => base,
            Schedule::Piecewise { boundaries, n, factor } => {
                base * factor.powi(boundaries[..n].iter().filter(|&&b| step > b).count() as i32)
            }
            Schedule::WarmupHalving { warmup, .. } if step < warmup => base * step as f64 / warmup.max(1) as f64,
            Schedule::WarmupHalving { warmup, half_life } => {
                base * 0.5f64.powf((step - warmup) as f64 / half_life.max(1) as f64)
            }
        }
    }
}

/// Named scalars of a step, on the device ([1] each).
pub type Logged = Vec<(String, Tensor<1>)>;

/// The losses of one shard, each its share of the batch mean (sums divided by the whole batch's
/// size): `total` is optimised, the others are only logged. The shards' values add up.
pub struct Losses {
    pub total: Tensor<1>,
    pub logged: Logged,
}

/// A batch the loop can split between model replicas.
pub trait Batch: Send + Sync + 'static {
    /// The number of samples.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Samples `start..start + n`.
    fn slice(&self, start: usize, n: usize) -> Self;
}

/// What a model family gives the loop. It is shared by the replicas' threads.
pub trait Family: Sync {
    type Model: Module + Clone + std::fmt::Display + Send;
    type Batch: Batch;

    fn settings(&self) -> LoopSettings;
    fn init_model(&self, device: &Device) -> Result<Self::Model>;
    /// Training batches of `epoch`, in their (reproducible) order.
    fn train_batches(&self, epoch: usize) -> Result<Box<dyn ExactSizeIterator<Item = Self::Batch>>>;
    /// The losses of `batch`, the samples of `shard`, at optimiser step `step` (schedules such as
    /// a curriculum read it). Random draws come from `shard`, never from the device's generator.
    fn loss(&self, model: &Self::Model, batch: &Self::Batch, step: u64, shard: &Shard, device: &Device) -> Losses;
    /// After the optimiser step `step`, with that step's logged losses (controllers such as GECO).
    fn after_step(&self, _step: u64, _logged: &[(String, Tensor<1>)]) {}
    /// Per-epoch scores on the `train` and `validation` subsets, with the model in evaluation
    /// mode on the plain `devices` (the replicas', spread as [`spread`]); lower `criterion()` is
    /// better.
    fn epoch_scores(&self, model: &Self::Model, split: &str, devices: &[Device]) -> Result<Scores>;
    /// The validation score that picks `checkpoints/best`; None: the latest checkpoint is the best
    /// (models trained for a fixed number of steps, as EMORL).
    fn criterion(&self) -> Option<&'static str> {
        Some("loss")
    }
    /// State the family keeps besides the model (controllers such as GECO), for checkpoints.
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    fn restore(&self, _state: &serde_json::Value) -> Result<()> {
        Ok(())
    }
    /// The model's tensors under the original code's names and layouts (`gestalt export`,
    /// `net_path=….safetensors|.pth`).
    fn original_names(&self, model: &Self::Model) -> Result<crate::weights::OriginalNames>;
    /// Extra scalars at each log point (a host read is allowed there), e.g. controller state.
    fn log_scalars(&self) -> Scores {
        Scores::new()
    }
    /// Pictures of `batch` for TensorBoard at each log point (optional).
    fn log_images(
        &self,
        _model: &Self::Model,
        _batch: &Self::Batch,
        _step: u64,
        _log: &mut RunLog,
        _device: &Device,
    ) -> Result<()> {
        Ok(())
    }
    /// Pictures of the run so far, written under `dir/viz` (optional).
    fn visualize(&self, _model: &Self::Model, _dir: &Path, _epoch: usize, _device: &Device) -> Result<()> {
        Ok(())
    }
}

/// Loop state kept in checkpoints.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct State {
    epoch: usize,
    step: u64,
    best: Option<f64>,
    best_epoch: usize,
    bad_epochs: usize,
    elapsed_s: f64,
    /// Batches of `epoch + 1` already trained (a checkpoint taken mid-epoch).
    #[serde(default)]
    epoch_step: usize,
}

pub struct RunDir {
    pub dir: PathBuf,
}

impl RunDir {
    pub fn last(&self) -> PathBuf {
        self.dir.join("checkpoints").join("last")
    }
    pub fn best(&self) -> PathBuf {
        self.dir.join("checkpoints").join("best")
    }
}

fn progress(len: usize, epoch: usize, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    // indicatif draws nothing when stderr is not a terminal.
    let pb = ProgressBar::new(len as u64);
    pb.set_style(ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} [{elapsed}<{eta}] {msg}").unwrap());
    pb.set_prefix(epoch.to_string());
    pb
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_scalar::<f64>()
}

/// Train `family` in `run`, resuming from `run.last()` when `resume`. Returns the best checkpoint.
/// `devices` holds one device per model replica (`training.devices` of them); the first is the
/// main one, where the model, the optimiser and the scores live.
pub fn train<F: Family>(family: &F, run: &RunDir, devices: &[Device], resume: bool, quiet: bool) -> Result<PathBuf> {
    let s = family.settings();
    let device = &devices[0];
    let replicas: Vec<Device> = devices.iter().map(|d| d.clone().autodiff()).collect();
    let ad = replicas[0].clone();
    ad.seed(derive_seed(s.seed, &[u64::MAX]));
    let mut model = family.init_model(&ad)?;
    let mut optim: ModuleOptimizer = optim::build(&s.optimizer, &s.params, s.clip_gradients)?;
    let mut st = State { epoch: 0, step: 0, best: None, best_epoch: 0, bad_epochs: 0, elapsed_s: 0.0, epoch_step: 0 };
    if resume {
        let ck = Checkpoint::load(&run.last())?;
        model = ck.apply_model(model)?;
        optim = ck.apply_optim(optim)?;
        st = serde_json::from_value(ck.state["loop"].clone())
            .map_err(|e| Error::usage(format!("checkpoint loop state: {e}")))?;
        family.restore(&ck.state["family"])?;
        eprintln!("resuming {} at step {} (epoch {})", run.dir.display(), st.step, st.epoch + 1);
    } else if let Some(p) = &s.net_path {
        let path = checkpoint::resolve_net_path(p)?;
        let (loaded, state) = crate::weights::load(family, model, &path)?;
        model = loaded;
        if !state.is_null() {
            family.restore(&state)?;
        }
        eprintln!("warm start from {}", path.display());
    }
    let mut log = RunLog::open(&run.dir)?;
    let t0 = Instant::now() - std::time::Duration::from_secs_f64(st.elapsed_s);
    let save = |model: &F::Model, optim: &ModuleOptimizer, st: &State, paths: &[PathBuf]| -> Result<()> {
        let ck = Checkpoint::capture(model, optim, json!({ "loop": st, "family": family.state() }))?;
        paths.iter().try_for_each(|p| ck.save(p))
    };
    let done = |st: &State| s.max_steps.is_some_and(|m| st.step >= m);

    while st.epoch < s.max_epoch && !done(&st) {
        let epoch = st.epoch + 1;
        let batches = family.train_batches(epoch)?;
        let n_batches = batches.len();
        let pb = progress(n_batches, epoch, quiet || !s.progress_bar);
        pb.set_position(st.epoch_step as u64);
        // Means since the last log point, and over the epoch.
        let (mut window, mut sums): (Sums, Sums) = (Vec::new(), Vec::new());
        for batch in batches.skip(st.epoch_step) {
            let logged;
            (model, logged) = step(family, &s, &mut optim, model, &batch, st.step, &replicas);
            family.after_step(st.step, &logged);
            for (k, v) in logged {
                accumulate(&mut sums, &k, v.clone());
                accumulate(&mut window, &k, v);
            }
            st.step += 1;
            st.epoch_step += 1;
            pb.inc(1);
            if s.log_steps > 0 && st.step.is_multiple_of(s.log_steps as u64) {
                let mut scores = means(&std::mem::take(&mut window));
                check_finite(&scores, st.step, run)?;
                scores.extend(family.log_scalars());
                pb.set_message(format!("loss {:.3}", scores["loss"]));
                log.record(st.step, epoch, "train_running", &scores, t0.elapsed().as_secs_f64())?;
                family.log_images(&model, &batch, st.step, &mut log, device)?;
            }
            if s.checkpoint_steps.is_some_and(|c| st.step.is_multiple_of(c)) {
                st.elapsed_s = t0.elapsed().as_secs_f64();
                let valid = family.epoch_scores(&model.valid(), "validation", devices)?;
                log.record(st.step, epoch, "validation", &valid, st.elapsed_s)?;
                let numbered = run.dir.join("checkpoints").join(format!("step-{}", st.step));
                let mut paths = vec![run.last(), numbered];
                if family.criterion().is_none() {
                    paths.push(run.best()); // without a criterion the latest model is the best
                }
                save(&model, &optim, &st, &paths)?;
            }
            if done(&st) {
                break;
            }
        }
        pb.finish_and_clear();
        let running = means(&sums);
        check_finite(&running, st.step, run)?;

        let eval_model = model.valid();
        let mut train_scores = family.epoch_scores(&eval_model, "train", devices)?;
        train_scores.extend(running.iter().map(|(k, v)| (format!("running_{k}"), *v)));
        let valid = family.epoch_scores(&eval_model, "validation", devices)?;
        let elapsed = t0.elapsed().as_secs_f64();
        log.record(st.step, epoch, "train", &train_scores, elapsed)?;
        log.record(st.step, epoch, "validation", &valid, elapsed)?;
        // Without a criterion every epoch's model is the best so far (the latest).
        let crit = match family.criterion() {
            Some(key) => {
                let c = *valid.get(key).ok_or_else(|| Error::internal("validation scores lack the criterion"))?;
                if !c.is_finite() {
                    return Err(nan_error(st.step, run));
                }
                c
            }
            None => -(st.step as f64),
        };
        // An epoch cut short by max_steps stays open, so a resumed run with more steps takes up
        // its next batch.
        if !(done(&st) && st.epoch_step < n_batches) {
            st.epoch = epoch;
            st.epoch_step = 0;
        }
        st.elapsed_s = elapsed;
        let improved = st.best.is_none_or(|b| crit < b);
        if improved {
            st.best = Some(crit);
            st.best_epoch = epoch;
            st.bad_epochs = 0;
        } else {
            st.bad_epochs += 1;
        }
        let mut paths = vec![run.last()];
        if improved {
            paths.push(run.best());
        }
        save(&model, &optim, &st, &paths)?;
        if !quiet {
            let shown = match family.criterion() {
                Some(key) => format!(", valid {key} {crit:.4}{}", if improved { " *" } else { "" }),
                None => String::new(),
            };
            // A run resumed at an epoch's last batch has no steps left in it, hence no loss.
            let loss = running.get("loss").map_or(String::new(), |l| format!(": train loss {l:.4}"));
            eprintln!("epoch {epoch} (step {}){loss}{shown} ({elapsed:.0} s)", st.step);
        }
        family.visualize(&eval_model, &run.dir, epoch, device)?;
        if s.max_patience.is_some_and(|p| st.bad_epochs >= p) {
            eprintln!("early stop: no better validation score in {} epochs", st.bad_epochs);
            break;
        }
    }
    if !run.best().is_file() {
        return Err(Error::usage("no epoch was trained (training.max_epoch is 0?)"));
    }
    Ok(run.best())
}

/// One optimisation step on `batch`: [`gradients`], clipping, one update. Returns the updated
/// model and the batch's losses (detached, on the main device; nothing is read back here).
pub fn step<F: Family>(
    family: &F,
    s: &LoopSettings,
    optim: &mut ModuleOptimizer,
    model: F::Model,
    batch: &F::Batch,
    step: u64,
    replicas: &[Device],
) -> (F::Model, Logged) {
    let (mut grads, logged) = gradients(family, s.seed, &model, batch, step, replicas);
    if let Some(c) = s.clip_global_norm {
        grads = optim::clip_global_norm(grads, &model, c);
    }
    (optim.step(s.schedule.lr(s.params.learning_rate, step), model, grads), logged)
}

/// The gradients and losses of `batch` at optimiser step `step`: forward and backward on each
/// replica's shard (in parallel threads when there are several), summed on the main device
/// `replicas[0]`. Every random draw is a function of (seed, step, sample), so a step is
/// resumable exactly and its numbers do not depend on the number of replicas.
pub fn gradients<F: Family>(
    family: &F,
    seed: u64,
    model: &F::Model,
    batch: &F::Batch,
    step: u64,
    replicas: &[Device],
) -> (GradientsParams, Logged) {
    let main = &replicas[0];
    let (n, parts) = (batch.len(), replicas.len().min(batch.len()).max(1));
    let seed = derive_seed(seed, &[step]);
    let shard_step = |model: &F::Model, device: &Device, start: usize, len: usize| {
        let shard = Shard::new(seed, start, len, n);
        let part;
        let batch = if len == n {
            batch
        } else {
            part = batch.slice(start, len);
            &part
        };
        let losses = family.loss(model, batch, step, &shard, device);
        let mut logged = vec![("loss".to_string(), losses.total.clone().detach())];
        logged.extend(losses.logged.into_iter().map(|(k, v)| (k, v.detach())));
        (GradientsParams::from_grads(losses.total.backward(), model), logged)
    };
    if parts == 1 {
        return shard_step(model, main, 0, n);
    }
    // Contiguous shards whose sizes differ by at most one.
    let bounds: Vec<(usize, usize)> =
        (0..parts).map(|i| (i * n / parts, (i + 1) * n / parts - i * n / parts)).collect();
    let results: Vec<(GradientsParams, Logged)> = std::thread::scope(|scope| {
        let handles: Vec<_> = replicas[..parts]
            .iter()
            .zip(&bounds)
            .map(|(device, &(start, len))| {
                let replica = model.clone().fork(device);
                scope.spawn(move || {
                    let (grads, logged) = shard_step(&replica, device, start, len);
                    let logged: Logged = logged.into_iter().map(|(k, v)| (k, v.to_device(main))).collect();
                    (grads.to_device(main, &replica), logged)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a replica's step panicked")).collect()
    });
    let mut acc = GradientsAccumulator::new();
    let mut logged: Logged = Vec::new();
    for (g, l) in results {
        acc.accumulate(model, g);
        for (k, v) in l {
            match logged.iter_mut().find(|(key, _)| *key == k) {
                Some((_, sum)) => *sum = sum.clone() + v,
                None => logged.push((k, v)),
            }
        }
    }
    (acc.grads(), logged)
}

/// `f(model, device, index, item)` for each of `items`, spread over the replicas' `devices` (the
/// model forked to each, a thread each, each taking the next item when it is free); the results in
/// the items' order. For evaluation: forward passes whose scores are sums over items.
pub fn spread<M, T, R>(
    model: &M,
    devices: &[Device],
    items: impl Iterator<Item = T> + Send,
    f: impl Fn(&M, &Device, usize, T) -> R + Sync,
) -> Vec<R>
where
    M: Module + Send,
    T: Send,
    R: Send,
{
    if devices.len() <= 1 {
        return items.enumerate().map(|(i, t)| f(model, &devices[0], i, t)).collect();
    }
    let queue = std::sync::Mutex::new(items.enumerate());
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = devices
            .iter()
            .map(|device| {
                let (replica, queue, f) = (model.clone().fork(device), &queue, &f);
                scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                        let Some((i, item)) = next else { break done };
                        done.push((i, f(&replica, device, i, item)));
                    }
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a replica's evaluation panicked")).collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// Logged values summed on the device, with the number of steps that logged each (a key may
/// come and go, e.g. a refinement step the curriculum drops).
type Sums = Vec<(String, Tensor<1>, usize)>;

fn accumulate(sums: &mut Sums, key: &str, v: Tensor<1>) {
    match sums.iter_mut().find(|(k, _, _)| k == key) {
        Some((_, acc, n)) => {
            *acc = acc.clone() + v;
            *n += 1;
        }
        None => sums.push((key.to_string(), v, 1)),
    }
}

/// Means of the accumulated losses: the one host read of a log point.
fn means(sums: &Sums) -> Scores {
    sums.iter().map(|(k, v, n)| (k.clone(), scalar(v.clone()) / *n as f64)).collect()
}

fn nan_error(step: u64, run: &RunDir) -> Error {
    Error::internal(format!(
        "the loss is not finite at step {step}: training stopped; the last good checkpoint is {}",
        run.last().display()
    ))
}

fn check_finite(scores: &Scores, step: u64, run: &RunDir) -> Result<()> {
    if scores.values().all(|v| v.is_finite()) { Ok(()) } else { Err(nan_error(step, run)) }
}

#[cfg(test)]
mod tests {
    use super::{Schedule, Sums, accumulate, means};
    use burn::tensor::{Device, Tensor};

    #[test]
    fn a_key_logged_by_fewer_steps_is_averaged_over_those_steps() {
        let d = Device::flex();
        let v = |x: f32| Tensor::<1>::from_floats([x], &d);
        let mut sums: Sums = Vec::new();
        for (k, x) in [("loss", 1.0), ("norm_2", 4.0), ("loss", 3.0)] {
            accumulate(&mut sums, k, v(x));
        }
        let m = means(&sums);
        assert_eq!((m["loss"], m["norm_2"]), (2.0, 4.0));
    }

    #[test]
    fn warmup_then_halving() {
        let s = Schedule::WarmupHalving { warmup: 10_000, half_life: 100_000 };
        assert_eq!(s.lr(4e-4, 0), 0.0);
        assert!((s.lr(4e-4, 5_000) - 2e-4).abs() < 1e-12);
        assert!((s.lr(4e-4, 10_000) - 4e-4).abs() < 1e-12);
        assert!((s.lr(4e-4, 110_000) - 2e-4).abs() < 1e-12);
        assert_eq!(Schedule::Constant.lr(1e-3, 123), 1e-3);
        // SQAIR's '4,6,10' over 2M steps: boundaries 400k and 1M.
        let thirds = Schedule::thirds(&[4.0, 6.0, 10.0], 2_000_000);
        let lr = |s| thirds.lr(1e-5, s);
        assert_eq!(lr(400_000), 1e-5);
        assert!((lr(400_001) - 1e-5 / 3.0).abs() < 1e-20);
        assert!((lr(1_000_001) - 1e-5 / 9.0).abs() < 1e-20 && (lr(2_000_000) - 1e-5 / 9.0).abs() < 1e-20);
        // Without warm-up (N-EM's `training.lr_half_life`) the first step has the full rate.
        let halving = Schedule::WarmupHalving { warmup: 0, half_life: 320 };
        assert_eq!(halving.lr(3e-3, 0), 3e-3);
        assert!((halving.lr(3e-3, 640) - 7.5e-4).abs() < 1e-12);
    }
}
