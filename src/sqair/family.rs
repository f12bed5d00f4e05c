//! SQAIR on the training loop (`scripts/experiment.py`, `model.py`): batches drawn at random
//! with replacement, the inputs tiled into k particles, the VIMCO surrogate divided by the
//! current sequence length, the length curriculum, TF's RMSProp with the piecewise rate, and the
//! validation set scored every `log_itr` steps with importance-weighted metrics (`make_logger`).
use super::config::SqairConfig;
use super::dist::{iwae, vimco_surrogate};
use super::model::{Shape, SqairNet};
use super::seq::Unrolled;
use crate::config::Resolved;
use crate::data::loader::Prefetch;
use crate::data::seq_mnist::{MAX_OBJECTS, Split};
use crate::error::{Error, Result};
use crate::train::{Batch, Family, LoopSettings, Losses, Scores, Shard, optim::OptimParams};
use crate::util::{derive_seed, rng};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use rand::RngExt;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

pub struct Sqair {
    pub cfg: SqairConfig,
    pub shape: Shape,
    train: OnceLock<Arc<Split>>,
    valid: OnceLock<Arc<Split>>,
    /// The latest training step: validation is scored at the curriculum's current length.
    step: AtomicU64,
}

/// Sequences of a split: frames [T, B, H, W] in [0, 1], the true object count of each frame
/// [T, B] and the digits' boxes [T, B, 2, 4].
#[derive(Debug, Clone)]
pub struct SqairBatch {
    pub frames: usize,
    pub n: usize,
    pub imgs: Vec<f32>,
    pub counts: Vec<f32>,
    pub coords: Vec<f32>,
}

impl Batch for SqairBatch {
    fn len(&self) -> usize {
        self.n
    }

    fn slice(&self, start: usize, n: usize) -> Self {
        let take = |v: &[f32], per: usize| -> Vec<f32> {
            (0..self.frames).flat_map(|t| v[(t * self.n + start) * per..][..n * per].to_vec()).collect()
        };
        let px = self.imgs.len() / (self.frames * self.n);
        SqairBatch {
            frames: self.frames,
            n,
            imgs: take(&self.imgs, px),
            counts: take(&self.counts, 1),
            coords: take(&self.coords, MAX_OBJECTS * 4),
        }
    }
}

/// Sequences `idx` of `split`, time-major.
pub fn gather(split: &Split, idx: &[usize]) -> SqairBatch {
    let (t_len, n) = (split.frames, idx.len());
    let px = split.imgs.len() / (t_len * split.n);
    let mut b = SqairBatch {
        frames: t_len,
        n,
        imgs: Vec::with_capacity(t_len * n * px),
        counts: Vec::with_capacity(t_len * n),
        coords: Vec::with_capacity(t_len * n * MAX_OBJECTS * 4),
    };
    for t in 0..t_len {
        for &i in idx {
            let at = t * split.n + i;
            b.imgs.extend(split.imgs[at * px..][..px].iter().map(|&v| v as f32 / 255.0));
            b.counts.push(split.count(t, i) as f32);
            b.coords.extend_from_slice(&split.coords[at * MAX_OBJECTS * 4..][..MAX_OBJECTS * 4]);
        }
    }
    b
}

/// One batch run through the model: the unrolled terms and the particles' log-weights [B, k].
pub struct Run {
    pub unrolled: Unrolled,
    pub log_weights: Tensor<2>,
    pub frames: usize,
    pub particles: usize,
}

impl Sqair {
    pub fn new(resolved: &Resolved) -> Result<Sqair> {
        let cfg: SqairConfig = resolved.typed()?;
        let shape = cfg.shape().map_err(Error::usage)?;
        cfg.lr_schedule().map_err(Error::usage)?;
        if cfg.batch_size == 0 {
            return Err(Error::usage("batch_size must be at least 1"));
        }
        if !["rmsprop", "adam"].contains(&cfg.opt.as_str()) {
            return Err(Error::usage(format!("opt `{}` is not built (rmsprop, adam)", cfg.opt)));
        }
        if !(0.0..=1.0).contains(&cfg.eval_size_fraction) {
            return Err(Error::usage("eval_size_fraction must be in [0, 1]"));
        }
        if !["train", "validation"].contains(&cfg.dataset.eval_split.as_str()) {
            return Err(Error::usage("dataset.eval_split must be `train` or `validation`"));
        }
        Ok(Sqair { cfg, shape, train: OnceLock::new(), valid: OnceLock::new(), step: AtomicU64::new(0) })
    }

    /// The data file, generated when missing and allowed.
    pub fn data_file(&self) -> Result<PathBuf> {
        let d = &self.cfg.dataset;
        crate::data::ensure_seq_mnist_file(
            &d.data_path,
            &d.h5_path,
            d.generate,
            d.seed,
            [d.sizes.train, d.sizes.validation],
            d.frames,
            &d.mnist_path,
        )
    }

    /// Split `name` (`train` or `validation`), read once.
    pub fn split(&self, name: &str) -> Result<Arc<Split>> {
        let cell = if name == "train" { &self.train } else { &self.valid };
        if let Some(s) = cell.get() {
            return Ok(s.clone());
        }
        let s = Arc::new(crate::data::seq_mnist::read(&self.data_file()?, name, None)?);
        if s.n == 0 {
            return Err(Error::usage(format!("{}: the {name} split is empty", self.data_file()?.display())));
        }
        Ok(cell.get_or_init(|| s).clone())
    }

    /// Both splits read and a batch that fits: bad data fails before a run writes anything.
    pub fn check_data(&self) -> Result<()> {
        let train = self.split("train")?;
        crate::data::batch_fits("train", train.n, "batch_size", self.cfg.batch_size)?;
        self.split("validation")?;
        Ok(())
    }

    /// The mean of every training frame [H, W]: the decoder's initial background.
    fn mean_image(&self) -> Result<Vec<f32>> {
        let s = self.split("train")?;
        let px = s.imgs.len() / (s.frames * s.n);
        let mut sum = vec![0f64; px];
        for frame in s.imgs.chunks(px) {
            sum.iter_mut().zip(frame).for_each(|(a, &v)| *a += v as f64);
        }
        let count = (s.frames * s.n) as f64 * 255.0;
        Ok(sum.into_iter().map(|v| (v / count) as f32).collect())
    }

    /// The network with its parameters materialised now; the background from the training data.
    pub fn build_model(&self, device: &Device) -> Result<SqairNet> {
        let [h, w] = self.shape.image;
        let mean = Tensor::<1>::from_floats(self.mean_image()?.as_slice(), device).reshape([h, w]);
        let net = SqairNet::new(&self.shape, mean, device);
        crate::nn::materialize(&net);
        Ok(net)
    }

    /// The first `frames` frames of `batch`, each sequence tiled into k adjacent particles:
    /// [T, B·k, H, W].
    fn inputs(&self, batch: &SqairBatch, frames: usize, device: &Device) -> Tensor<4> {
        let [h, w] = self.shape.image;
        let (b, k) = (batch.n, self.cfg.k_particles);
        let x = Tensor::<4>::from_data(
            TensorData::new(batch.imgs[..frames * b * h * w].to_vec(), [frames, b, h, w]),
            device,
        );
        x.reshape([frames, b, 1, h, w]).expand([frames, b, k, h, w]).reshape([frames, b * k, h, w])
    }

    /// Run the model on the first `frames` frames of `batch`.
    pub fn run(&self, model: &SqairNet, batch: &SqairBatch, frames: usize, shard: &Shard, device: &Device) -> Run {
        let k = self.cfg.k_particles;
        let unrolled = model.unroll(&self.inputs(batch, frames, device), shard);
        let log_weights = unrolled.log_weight.clone().reshape([batch.n, k]);
        Run { unrolled, log_weights, frames, particles: k }
    }

    /// The importance-weighted scores of `batch` (`Model._imp_weighted_mean`, `make_logger`),
    /// as sums over its sequences (the caller divides by their number).
    pub fn batch_scores(&self, run: &Run, batch: &SqairBatch, device: &Device) -> Scores {
        let (b, k, t_len) = (batch.n, run.particles, run.frames);
        let host = |x: Tensor<2>| -> Vec<f64> { x.into_data().convert::<f64>().try_to_vec::<f64>().unwrap() };
        let log_w = host(run.log_weights.clone());
        let bound = host(iwae(run.log_weights.clone()));
        // Per frame and row [T][B·k] terms, averaged over frames.
        let per_frame = |f: &dyn Fn(&super::seq::Frame) -> Tensor<2>| -> Vec<f64> {
            let mut acc = vec![0.0; b * k];
            for frame in &run.unrolled.frames {
                acc.iter_mut().zip(host(f(frame))).for_each(|(a, v)| *a += v / t_len as f64);
            }
            acc
        };
        let x = self.inputs(batch, t_len, device);
        let truth = Tensor::<2>::from_data(TensorData::new(batch.counts[..t_len * b].to_vec(), [t_len, b]), device);
        let truth = truth.reshape([t_len, b, 1]).expand([t_len, b, k]).reshape([t_len, b * k]);
        let [h, w] = self.shape.image;
        let mut terms: Vec<(&str, Vec<f64>)> = vec![
            ("data_ll", per_frame(&|f| f.data_ll.clone())),
            ("kl", per_frame(&|f| f.log_q.clone() - f.log_p.clone())),
            ("log_p_z", per_frame(&|f| f.log_p.clone())),
            ("log_q_z_given_x", per_frame(&|f| f.log_q.clone())),
            ("num_steps", per_frame(&|f| f.steps.clone())),
            ("num_disc_steps", per_frame(&|f| f.disc_steps.clone())),
            ("num_prop_steps", per_frame(&|f| f.prop_steps.clone())),
        ];
        let mut mse = vec![0.0; b * k];
        let mut acc = vec![0.0; b * k];
        for (t, frame) in run.unrolled.frames.iter().enumerate() {
            let img = x.clone().slice([t..t + 1]).reshape([b * k, h, w]);
            let d = (img - frame.canvas.clone()).reshape([b * k, h * w]);
            mse.iter_mut().zip(host((d.clone() * d).mean_dim(1))).for_each(|(a, v)| *a += v / t_len as f64);
            let hit = frame.steps.clone().reshape([1, b * k]).equal(truth.clone().slice([t..t + 1])).float();
            acc.iter_mut().zip(host(hit.reshape([b * k, 1]))).for_each(|(a, v)| *a += v / t_len as f64);
        }
        terms.push(("mse", mse));
        terms.push(("num_step_acc", acc));
        let mut s = Scores::new();
        let (mut vae, mut ess) = (0.0, 0.0);
        for i in 0..b {
            let lw = &log_w[i * k..][..k];
            let max = lw.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = lw.iter().map(|v| (v - max).exp()).collect();
            let z: f64 = e.iter().sum();
            let wts: Vec<f64> = e.iter().map(|v| v / z).collect();
            ess += 1.0 / wts.iter().map(|v| v * v).sum::<f64>();
            vae += lw.iter().sum::<f64>() / k as f64;
            for (name, values) in &terms {
                let v: f64 = wts.iter().zip(&values[i * k..][..k]).map(|(w, v)| w * v).sum();
                *s.entry(name.to_string()).or_default() += v;
            }
        }
        let iwae_sum: f64 = bound.iter().sum();
        s.insert("elbo_iwae".into(), iwae_sum);
        s.insert("elbo_vae".into(), vae);
        s.insert("normalised_elbo_iwae".into(), iwae_sum / t_len as f64);
        s.insert("normalised_elbo_vae".into(), vae / t_len as f64);
        s.insert("ess".into(), ess);
        s
    }

    /// The scores of the first `n_batches` batches of `split`, in order, spread over `devices`.
    pub fn score(
        &self,
        model: &SqairNet,
        split: &str,
        n_batches: usize,
        frames: Option<usize>,
        devices: &[Device],
    ) -> Result<Scores> {
        let data = self.split(split)?;
        let b = self.cfg.batch_size.min(data.n);
        let n_batches = n_batches.clamp(1, data.n / b);
        let t_len = frames.unwrap_or(data.frames).min(data.frames);
        let seed = self.cfg.seed;
        let parts = crate::train::spread(&model.valid(), devices, 0..n_batches, |model, device, _, i| {
            let batch = gather(&data, &(i * b..(i + 1) * b).collect::<Vec<_>>());
            let shard = Shard::whole(derive_seed(seed, &[u64::MAX - 2, i as u64]), b);
            let model = model.clone().to_device(device);
            let run = self.run(&model, &batch, t_len, &shard, device);
            self.batch_scores(&run, &batch, device)
        });
        let mut total = Scores::new();
        for p in parts {
            for (key, v) in p {
                *total.entry(key).or_default() += v;
            }
        }
        let n = (n_batches * b) as f64;
        total.values_mut().for_each(|v| *v /= n);
        total.insert("loss".into(), -total["normalised_elbo_iwae"]);
        total.insert("sequences".into(), n);
        total.insert("frames".into(), t_len as f64);
        Ok(total)
    }

    /// Validation batches scored each `log_itr`: `eval_size_fraction` of the split.
    fn eval_batches(&self, n: usize) -> usize {
        ((n as f64 * self.cfg.eval_size_fraction) as usize / self.cfg.batch_size).max(1)
    }

    /// The sequence length the curriculum has reached after `step` steps, on this file.
    pub fn frames_now(&self, step: u64) -> Result<usize> {
        Ok(self.cfg.frames_at(step, self.split("train")?.frames))
    }
}

impl Family for Sqair {
    type Model = SqairNet;
    type Batch = SqairBatch;

    fn settings(&self) -> LoopSettings {
        let c = &self.cfg;
        LoopSettings {
            optimizer: c.opt.clone(),
            // TF's RMSProp(lr, momentum=0.9): decay 0.9, ε 1e-10; TF's Adam: ε 1e-8.
            params: OptimParams {
                learning_rate: c.learning_rate,
                beta1: 0.9,
                beta2: 0.999,
                epsilon: Some(if c.opt == "adam" { 1e-8 } else { 1e-10 }),
                momentum: Some(0.9),
                decay: 0.9,
            },
            clip_gradients: None,
            clip_global_norm: None,
            max_epoch: usize::MAX,
            max_steps: Some(c.train_itr),
            schedule: c.lr_schedule().expect("checked in new"),
            max_patience: None,
            log_steps: c.report_loss_every as usize,
            checkpoint_steps: (c.save_itr > 0).then_some(c.save_itr),
            seed: c.seed,
            devices: c.devices,
            net_path: c.net_path.clone(),
            progress_bar: true,
        }
    }

    fn init_model(&self, device: &Device) -> Result<SqairNet> {
        self.build_model(device)
    }

    fn original_names(&self, model: &SqairNet) -> Result<crate::weights::OriginalNames> {
        super::names::original_names(model)
    }

    /// An "epoch" is `log_itr` steps of batches drawn at random with replacement, as the
    /// original's training tensors; the validation set is scored after each.
    fn train_batches(&self, epoch: usize) -> Result<Box<dyn ExactSizeIterator<Item = SqairBatch>>> {
        let data = self.split("train")?;
        let b = self.cfg.batch_size;
        crate::data::batch_fits("train", data.n, "batch_size", b)?;
        let steps = self.cfg.log_itr.clamp(1, self.cfg.train_itr.max(1)) as usize;
        let mut r = rng(self.cfg.seed, &[epoch as u64]);
        let batches: Vec<Vec<usize>> =
            (0..steps).map(|_| (0..b).map(|_| r.random_range(0..data.n)).collect()).collect();
        Ok(Box::new(Prefetch::new(batches.into_iter().map(move |idx| gather(&data, &idx)), 4)))
    }

    fn loss(&self, model: &SqairNet, batch: &SqairBatch, step: u64, shard: &Shard, device: &Device) -> Losses {
        self.step.store(step, Ordering::Relaxed);
        let frames = self.cfg.frames_at(step, batch.frames);
        let run = self.run(model, batch, frames, shard, device);
        let share = shard.share() as f32;
        let t = frames as f32;
        let surrogate = vimco_surrogate(
            run.log_weights.clone(),
            run.unrolled.discrete_log_q.clone().reshape([batch.n, run.particles]),
        );
        let mean = |x: Tensor<2>| x.mean().mul_scalar(share);
        let steps = run.unrolled.frames.iter().map(|f| f.steps.clone()).reduce(|a, b| a + b).expect("a frame");
        let logged = vec![
            ("iwae".to_string(), mean(iwae(run.log_weights.clone())).div_scalar(t)),
            ("num_steps".to_string(), mean(steps).div_scalar(t)),
            ("seq_len".to_string(), Tensor::<1>::from_floats([t * share], device)),
        ];
        Losses { total: surrogate.div_scalar(t).mul_scalar(share), logged }
    }

    fn epoch_scores(&self, model: &SqairNet, split: &str, devices: &[Device]) -> Result<Scores> {
        if split == "train" {
            return Ok(Scores::new());
        }
        let n = self.split("validation")?.n;
        let frames = self.frames_now(self.step.load(Ordering::Relaxed))?;
        self.score(model, "validation", self.eval_batches(n), Some(frames), devices)
    }

    fn state(&self) -> Value {
        Value::Null
    }

    /// The pictures every `fig_itr` steps (checked at each `log_itr`, when validation runs).
    fn visualize(&self, model: &SqairNet, dir: &std::path::Path, epoch: usize, device: &Device) -> Result<()> {
        let (log, fig) = (self.cfg.log_itr.max(1), self.cfg.fig_itr.max(1));
        let step = epoch as u64 * log;
        if step / fig > step.saturating_sub(log) / fig || step >= self.cfg.train_itr {
            super::viz::draw_all(self, model, dir, device)?;
        }
        Ok(())
    }
}
