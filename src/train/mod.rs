//! The one training loop. It knows no model: a [`Family`] supplies batches, the loss of a batch,
//! and its scores; the loop owns optimisation, validation, early stopping, checkpoints and logs.
pub mod checkpoint;
pub mod log;
pub mod optim;

use crate::error::{Error, Result};
use crate::util::derive_seed;
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use checkpoint::Checkpoint;
use indicatif::{ProgressBar, ProgressStyle};
pub use log::{RunLog, Scores};
use serde_json::json;
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
    /// Log the running training loss every this many steps (0: per epoch only).
    pub log_steps: usize,
    pub seed: u64,
    /// Checkpoint file to warm-start from.
    pub net_path: Option<String>,
}

/// How the learning rate moves with the step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    Constant,
    /// Linear warm-up from 0 over `warmup` steps, then halving every `half_life` steps (EMORL:
    /// GradualWarmupScheduler around 0.5^((step − warmup)/half_life)).
    WarmupHalving { warmup: u64, half_life: u64 },
}

impl Schedule {
    pub fn lr(self, base: f64, step: u64) -> f64 {
        match self {
            Schedule::Constant => base,
            Schedule::WarmupHalving { warmup, .. } if step <= warmup => base * step as f64 / warmup.max(1) as f64,
            Schedule::WarmupHalving { warmup, half_life } => {
                base * 0.5f64.powf((step - warmup) as f64 / half_life.max(1) as f64)
            }
        }
    }
}

/// The losses of one batch: `total` is optimised, the others are only logged.
pub struct Losses {
    pub total: Tensor<1>,
    pub logged: Vec<(&'static str, Tensor<1>)>,
}

/// What a model family gives the loop.
pub trait Family {
    type Model: Module + Clone + std::fmt::Display;
    type Batch: Send + 'static;

    fn settings(&self) -> LoopSettings;
    fn init_model(&self, device: &Device) -> Result<Self::Model>;
    /// Training batches of `epoch`, in their (reproducible) order.
    fn train_batches(&self, epoch: usize) -> Result<Box<dyn ExactSizeIterator<Item = Self::Batch>>>;
    /// The losses of a batch at optimiser step `step` (schedules such as a curriculum read it).
    fn loss(&self, model: &Self::Model, batch: &Self::Batch, step: u64, device: &Device) -> Losses;
    /// After the optimiser step `step`, with that step's logged losses (controllers such as GECO).
    fn after_step(&self, _step: u64, _logged: &[(&'static str, Tensor<1>)]) {}
    /// Per-epoch scores on the `train` and `validation` subsets; lower `criterion()` is better.
    fn epoch_scores(&self, model: &Self::Model, split: &str, device: &Device) -> Result<Scores>;
    fn criterion(&self) -> &'static str {
        "loss"
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
    pb.set_style(
        ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} [{elapsed}<{eta}] {msg}")
            .unwrap(),
    );
    pb.set_prefix(epoch.to_string());
    pb
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_scalar::<f64>()
}

/// Train `family` in `run`, resuming from `run.last()` when `resume`. Returns the best checkpoint.
pub fn train<F: Family>(family: &F, run: &RunDir, device: &Device, resume: bool, quiet: bool) -> Result<PathBuf> {
    let s = family.settings();
    let ad = device.clone().autodiff();
    ad.seed(derive_seed(s.seed, &[u64::MAX]));
    let mut model = family.init_model(&ad)?;
    let mut optim: ModuleOptimizer = optim::build(&s.optimizer, &s.params, s.clip_gradients)?;
    let mut st = State { epoch: 0, step: 0, best: None, best_epoch: 0, bad_epochs: 0, elapsed_s: 0.0 };
    if resume {
        let ck = Checkpoint::load(&run.last())?;
        model = ck.apply_model(model)?;
        optim = ck.apply_optim(optim)?;
        st = serde_json::from_value(ck.state["loop"].clone())
            .map_err(|e| Error::usage(format!("checkpoint loop state: {e}")))?;
        eprintln!("resuming {} after epoch {} (step {})", run.dir.display(), st.epoch, st.step);
    } else if let Some(p) = &s.net_path {
        let path = checkpoint::resolve_net_path(p)?;
        model = Checkpoint::load(&path)?.apply_model(model)?;
        eprintln!("warm start from {}", path.display());
    }
    let mut log = RunLog::open(&run.dir)?;
    let t0 = Instant::now() - std::time::Duration::from_secs_f64(st.elapsed_s);

    while st.epoch < s.max_epoch {
        let epoch = st.epoch + 1;
        let batches = family.train_batches(epoch)?;
        let pb = progress(batches.len(), epoch, quiet);
        let mut sums: Vec<(&'static str, Tensor<1>)> = Vec::new();
        let mut n_epoch = 0usize;
        for batch in batches {
            // Every random draw of a step is a pure function of (seed, step): resumable exactly.
            ad.seed(derive_seed(s.seed, &[st.step]));
            let logged;
            (model, logged) = step(family, &s, &mut optim, model, &batch, st.step, &ad);
            family.after_step(st.step, &logged);
            for (k, v) in logged {
                accumulate(&mut sums, k, v);
            }
            st.step += 1;
            n_epoch += 1;
            pb.inc(1);
            let at_end = s.max_steps.is_some_and(|m| st.step >= m);
            if s.log_steps > 0 && st.step % s.log_steps as u64 == 0 {
                let scores = means(&sums, n_epoch);
                check_finite(&scores, st.step, run)?;
                pb.set_message(format!("loss {:.3}", scores["loss"]));
                log.record(st.step, epoch, "train_running", &scores, t0.elapsed().as_secs_f64())?;
            }
            if at_end {
                break;
            }
        }
        pb.finish_and_clear();
        let running = means(&sums, n_epoch.max(1));
        check_finite(&running, st.step, run)?;

        let eval_model = model.valid();
        let mut train_scores = family.epoch_scores(&eval_model, "train", device)?;
        train_scores.insert("running_loss".into(), running["loss"]);
        let valid = family.epoch_scores(&eval_model, "validation", device)?;
        let elapsed = t0.elapsed().as_secs_f64();
        log.record(st.step, epoch, "train", &train_scores, elapsed)?;
        log.record(st.step, epoch, "validation", &valid, elapsed)?;
        let crit = *valid
            .get(family.criterion())
            .ok_or_else(|| Error::internal("validation scores lack the criterion"))?;
        if !crit.is_finite() {
            return Err(nan_error(st.step, run));
        }
        st.epoch = epoch;
        st.elapsed_s = elapsed;
        let improved = st.best.is_none_or(|b| crit < b);
        if improved {
            st.best = Some(crit);
            st.best_epoch = epoch;
            st.bad_epochs = 0;
        } else {
            st.bad_epochs += 1;
        }
        let ck = Checkpoint::capture(&model, &optim, json!({ "loop": st }))?;
        ck.save(&run.last())?;
        if improved {
            ck.save(&run.best())?;
        }
        if !quiet {
            eprintln!(
                "epoch {epoch}: train loss {:.4}, valid {} {:.4}{} ({:.0} s)",
                running["loss"],
                family.criterion(),
                crit,
                if improved { " *" } else { "" },
                elapsed
            );
        }
        family.visualize(&eval_model, &run.dir, epoch, device)?;
        if s.max_patience.is_some_and(|p| st.bad_epochs >= p) {
            eprintln!("early stop: no better validation {} in {} epochs", family.criterion(), st.bad_epochs);
            break;
        }
        if s.max_steps.is_some_and(|m| st.step >= m) {
            break;
        }
    }
    if !run.best().is_file() {
        return Err(Error::usage("no epoch was trained (training.max_epoch is 0?)"));
    }
    Ok(run.best())
}

/// One optimisation step on `batch`: forward, backward, clipping, update. Returns the updated
/// model and the batch's losses (detached, on the device; nothing is read back here).
pub fn step<F: Family>(
    family: &F,
    s: &LoopSettings,
    optim: &mut ModuleOptimizer,
    model: F::Model,
    batch: &F::Batch,
    step: u64,
    device: &Device,
) -> (F::Model, Vec<(&'static str, Tensor<1>)>) {
    let losses = family.loss(&model, batch, step, device);
    let mut logged = vec![("loss", losses.total.clone().detach())];
    logged.extend(losses.logged.into_iter().map(|(k, v)| (k, v.detach())));
    let mut grads = GradientsParams::from_grads(losses.total.backward(), &model);
    if let Some(c) = s.clip_global_norm {
        grads = optim::clip_global_norm(grads, &model, c);
    }
    (optim.step(s.schedule.lr(s.params.learning_rate, step), model, grads), logged)
}

fn accumulate(sums: &mut Vec<(&'static str, Tensor<1>)>, key: &'static str, v: Tensor<1>) {
    match sums.iter_mut().find(|(k, _)| *k == key) {
        Some((_, acc)) => *acc = acc.clone() + v,
        None => sums.push((key, v)),
    }
}

/// Means of the accumulated losses: the one host read of a log point.
fn means(sums: &[(&'static str, Tensor<1>)], n: usize) -> Scores {
    sums.iter().map(|(k, v)| (k.to_string(), scalar(v.clone()) / n as f64)).collect()
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
    use super::Schedule;

    #[test]
    fn warmup_then_halving() {
        let s = Schedule::WarmupHalving { warmup: 10_000, half_life: 100_000 };
        assert_eq!(s.lr(4e-4, 0), 0.0);
        assert!((s.lr(4e-4, 5_000) - 2e-4).abs() < 1e-12);
        assert!((s.lr(4e-4, 10_000) - 4e-4).abs() < 1e-12);
        assert!((s.lr(4e-4, 110_000) - 2e-4).abs() < 1e-12);
        assert_eq!(Schedule::Constant.lr(1e-3, 123), 1e-3);
    }
}
