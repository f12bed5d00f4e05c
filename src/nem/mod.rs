//! The N-EM family: N-EM, RNN-EM (and later R-NEM), one EM loop with different inner networks.
pub mod cells;
pub mod config;
pub mod em;
mod eval;
pub mod names;
pub mod net;
mod rollout;
pub mod viz;

use crate::config::Resolved;
use crate::data::{self, h5::NemSplit, loader};
use crate::error::{Error, Result};
use crate::nn::Act;
use crate::train::{Family, LoopSettings, Losses, Scores, Shard};
use crate::util::derive_seed;
use burn::tensor::{Device, Tensor, TensorData};
use config::NemConfig;
use em::{EmSpec, Pixel};
pub use em::{Kept, Unrolled};
use net::InnerNet;
use std::sync::{Arc, OnceLock};

/// Input corruption (reference §2.5), applied to the network input only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Noise {
    None,
    Bitflip(f64),
    MaskedUniform(f64),
}

impl Noise {
    /// The corrupted input x [B, 1, P, C], its draws from `shard`.
    pub fn apply(self, x: Tensor<4>, shard: &Shard) -> Tensor<4> {
        let [b, _, p, c] = x.dims();
        let device = x.device();
        match self {
            Noise::None => x,
            Noise::Bitflip(prob) => {
                let n = shard.bernoulli(prob, [b, 1, p, c], &device);
                x.clone() + n.clone() - x * n * 2.0
            }
            Noise::MaskedUniform(prob) => {
                let m = shard.bernoulli(prob, [b, 1, p, c], &device);
                let u = shard.uniform([b, 1, p, c], &device);
                m.clone() * u + (m.neg() + 1.0) * x
            }
        }
    }
}

/// The loaded splits, read once.
struct Data {
    train: Arc<NemSplit>,
    valid: Arc<NemSplit>,
}

pub struct Nem {
    pub cfg: NemConfig,
    pub spec: EmSpec,
    pub weights: Vec<f64>,
    pub noise: Noise,
    resolved: Resolved,
    data: OnceLock<Data>,
}

impl Nem {
    pub fn new(resolved: &Resolved) -> Result<Self> {
        let cfg: NemConfig = resolved.typed()?;
        let c = &cfg.nem;
        if c.k == 0 || c.nr_steps == 0 {
            return Err(Error::usage("nem.k and nem.nr_steps must be at least 1"));
        }
        let weights = c.loss_step_weights.resolve(c.nr_steps).map_err(Error::usage)?;
        let pixel = if cfg.dataset.binary { Pixel::Bernoulli } else { Pixel::Gaussian { e_sigma: c.e_sigma } };
        let spec = EmSpec {
            k: c.k,
            pixel,
            loss_inter_weight: c.loss_inter_weight,
            prior_p: c.pixel_prior.p,
            prior_mu: c.pixel_prior.mu,
            gradient_gamma: c.gradient_gamma,
            pred_init: c.pred_init,
            loss: match c.loss.as_str() {
                "nem" => em::LossKind::Nem,
                "mixture" => em::LossKind::Mixture,
                other => return Err(Error::usage(format!("unknown nem.loss `{other}` (nem, mixture)"))),
            },
            background: c.background_slot,
        };
        let p = cfg.noise.prob;
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::usage(format!("noise.prob must lie in [0, 1], got {p}")));
        }
        let noise = match cfg.noise.noise_type.as_deref() {
            None | Some("none") | Some("None") => Noise::None,
            Some("data") if cfg.dataset.binary => Noise::Bitflip(p),
            Some("data") | Some("masked_uniform") => Noise::MaskedUniform(p),
            Some("bitflip") => Noise::Bitflip(p),
            Some(other) => {
                return Err(Error::usage(format!(
                    "unknown noise.noise_type `{other}` (data, bitflip, masked_uniform, None)"
                )));
            }
        };
        let t = &cfg.training;
        crate::train::optim::build(&t.optimizer, &t.params, t.clip_gradients)?; // reject bad names early
        if cfg.training.batch_size == 0 {
            return Err(Error::usage("training.batch_size must be at least 1"));
        }
        if cfg.feed_actions && cfg.dataset.actions.is_none() {
            return Err(Error::usage("feed_actions=True needs dataset.actions, the number of actions in the file"));
        }
        if !["sklearn", "original"].contains(&cfg.run_config.ari.as_str()) {
            return Err(Error::usage(format!(
                "run_config.ari: `{}` is not `sklearn` or `original`",
                cfg.run_config.ari
            )));
        }
        match cfg.record_relational_loss.as_deref() {
            None | Some("collisions") | Some("events") => {}
            Some(other) => {
                return Err(Error::usage(format!(
                    "record_relational_loss: `{other}` is not `collisions`, `events` or None"
                )));
            }
        }
        Ok(Nem { cfg, spec, weights, noise, resolved: resolved.clone(), data: OnceLock::new() })
    }

    /// The frame (H, W, C) the decoder produces.
    pub fn frame_shape(&self) -> Result<[usize; 3]> {
        net::decoded_frame(&self.cfg.network).map_err(|e| Error::usage(format!("network: {e}")))
    }

    pub fn build_model(&self, device: &Device) -> Result<InnerNet> {
        let out_act = match self.spec.pixel {
            Pixel::Bernoulli => Act::Sigmoid,
            Pixel::Gaussian { .. } => Act::Linear,
        };
        let actions = self.cfg.dataset.actions.filter(|_| self.cfg.feed_actions);
        let net = net::build(&self.cfg.network, self.frame_shape()?, self.spec.k, actions, out_act, device)
            .map_err(|e| Error::usage(format!("network: {e}")))?;
        // Draw the initial weights now, not lazily inside the first step's random stream.
        crate::nn::materialize(&net);
        Ok(net)
    }

    /// The dataset file, generated first when missing and allowed.
    pub fn data_file(&self) -> Result<std::path::PathBuf> {
        let d = &self.cfg.dataset;
        data::ensure_nem_file(
            &d.path,
            &d.name,
            d.generate,
            d.seed,
            [d.sizes.training, d.sizes.validation, d.sizes.test],
            &d.mnist_path,
        )
    }

    pub fn read_split(&self, split: &str, limit: Option<usize>) -> Result<NemSplit> {
        let s = data::h5::read_nem_split(&self.data_file()?, split, limit, true, &self.mask_names())?;
        // A decoder that ends in a map fixes H, W and C; an `fc` decoder only their product.
        let frame = self.frame_shape()?;
        let data = [s.shape[2], s.shape[3], s.shape[4]];
        let fits = if frame[0] == 1 { s.frame_size() == frame[1] } else { data == frame };
        if !fits {
            let decodes = if frame[0] == 1 {
                format!("{} values", frame[1])
            } else {
                format!("{}×{}×{}", frame[0], frame[1], frame[2])
            };
            return Err(Error::usage(format!(
                "dataset `{split}` has frames of {}×{}×{} but the network decodes {decodes}",
                data[0], data[1], data[2]
            )));
        }
        let need = self.cfg.nem.nr_steps + 1;
        if s.shape[0] != 1 && s.shape[0] < need {
            return Err(Error::usage(format!(
                "dataset `{split}` has {} frames but nem.nr_steps={} needs {need} (or 1 for static data)",
                s.shape[0], self.cfg.nem.nr_steps
            )));
        }
        if s.is_empty() {
            return Err(Error::usage(format!("dataset `{split}` holds no samples")));
        }
        let actions = s.masks.iter().find(|m| m.name == "actions");
        if let (Some(a), Some(m)) = (self.cfg.dataset.actions, actions)
            && m.dims != [a]
        {
            return Err(Error::usage(format!(
                "dataset `{split}/actions` has shape (T, N, {:?}) but dataset.actions={a}",
                m.dims
            )));
        }
        Ok(s)
    }

    fn data(&self) -> Result<&Data> {
        if let Some(d) = self.data.get() {
            return Ok(d);
        }
        let ds = &self.cfg.dataset;
        let train = Arc::new(self.read_split("training", ds.train_size)?);
        let valid = Arc::new(self.read_split("validation", ds.valid_size)?);
        let _ = self.data.set(Data { train, valid });
        Ok(self.data.get().unwrap())
    }

    /// Every split a run reads, read now (training and validation are kept), with a batch that
    /// fits the training split: bad data fails before a run writes anything.
    pub fn check_data(&self) -> Result<()> {
        let train = &self.data()?.train;
        crate::data::batch_fits("training", train.len(), "training.batch_size", self.cfg.training.batch_size)?;
        self.read_split("test", self.cfg.dataset.test_size).map(drop)
    }

    fn frames(&self) -> usize {
        self.cfg.nem.nr_steps + 1
    }

    /// Unroll the EM loop over a batch, the samples of `shard`: its losses are their share of the
    /// whole batch's mean. Static data (T = 1) gives every step the same frame. With a learned
    /// θ_init, iteration 0 only decodes θ_0 = θ_init + jitter (no M-step).
    pub fn unroll(
        &self,
        net: &InnerNet,
        batch: &loader::NemBatch,
        shard: &Shard,
        device: &Device,
        keep: bool,
    ) -> Unrolled {
        self.unroll_with(net, batch, shard, device, keep, &self.weights, em::Schedule::Observed)
    }

    /// `unroll` with its own step weights (one per step) and input schedule (a rollout).
    #[allow(clippy::too_many_arguments)] // `unroll`'s arguments and the two that make a rollout
    pub fn unroll_with(
        &self,
        net: &InnerNet,
        batch: &loader::NemBatch,
        shard: &Shard,
        device: &Device,
        keep: bool,
        weights: &[f64],
        schedule: em::Schedule,
    ) -> Unrolled {
        let [t_data, b, h, w, c] = batch.shape;
        let (p, k) = (h * w, self.spec.k);
        let x = Tensor::<4>::from_data(TensorData::new(batch.features.clone(), [t_data, b, p, c]), device);
        let frame = |t: usize| -> Tensor<4> {
            let t = if t_data == 1 { 0 } else { t };
            x.clone().slice([t..t + 1]).reshape([b, 1, p, c])
        };
        // R-NEM's relational mask of step t (`collisions` per pixel or `events` per frame) and
        // the step's action, from the batch's arrays.
        let array = |name: Option<&str>| {
            let m = batch.mask(name?)?;
            let all = Tensor::<3>::from_data(TensorData::new(m.values.clone(), [t_data, b, m.per_frame]), device);
            Some((all, m.per_frame))
        };
        let at = |a: &Option<(Tensor<3>, usize)>, t: usize| -> Tensor<2> {
            let (all, per) = a.as_ref().expect("the array");
            let t = if t_data == 1 { 0 } else { t };
            all.clone().slice([t..t + 1]).reshape([b, *per])
        };
        let mask = array(self.cfg.record_relational_loss.as_deref().filter(|_| self.relational()));
        let mask_of = |t: usize| -> Tensor<4> {
            let m = at(&mask, t);
            let per = m.dims()[1];
            m.reshape([b, 1, per, 1])
        };
        let actions = array(self.cfg.feed_actions.then_some("actions"));
        let action_of = |t: usize| at(&actions, t);
        let mut state = self.spec.initial_state(b, p, c, net.units(), shard, device);
        let theta_init = net.theta_init();
        if let Some(theta) = &theta_init {
            let jitter = self.cfg.network.theta_init.as_ref().map_or(0.0, |t| t.jitter);
            let units = net.units();
            let theta0 = theta.clone().unsqueeze::<3>().expand([b, k, units]).reshape([b * k, units]);
            state.h = theta0 + shard.normal(0.0, jitter, [b * k, units], device);
        }
        let run = em::Run {
            weights,
            observed: &|t| self.noise.apply(frame(t), shard),
            target: &|t| frame(t + 1),
            schedule,
            actions: actions.as_ref().map(|_| &action_of as &dyn Fn(usize) -> Tensor<2>),
            corrupt: Some(&|x| self.noise.apply(x, shard)),
            decode_first: theta_init.is_some(),
            keep,
            share: shard.share(),
            relational: self.relational().then(|| em::Relational {
                dt: self.cfg.dt,
                mask: mask.as_ref().map(|_| &mask_of as &dyn Fn(usize) -> Tensor<4>),
            }),
        };
        self.spec.unroll(net, state, &run)
    }

    pub fn resolved(&self) -> &Resolved {
        &self.resolved
    }

    /// R-NEM (family `rnem`): the loss normalised over steps, upper bound and relational losses
    /// per step, last-dt averages.
    pub fn relational(&self) -> bool {
        self.resolved.family == "rnem"
    }

    /// Score ARI with R-NEM's in-graph formula (`run_config.ari=original`).
    fn original_ari(&self) -> bool {
        self.cfg.run_config.ari == "original"
    }

    /// Whose variable names the model exports under.
    pub fn repo(&self) -> names::Repo {
        if self.relational() { names::Repo::RelationalNem } else { names::Repo::NeuralEm }
    }

    /// The byte arrays the files are read with: R-NEM's `record_relational_loss` mask, and
    /// `actions` with `feed_actions`.
    fn mask_names(&self) -> Vec<&str> {
        let relational = self.cfg.record_relational_loss.as_deref().filter(|_| self.relational());
        relational.into_iter().chain(self.cfg.feed_actions.then_some("actions")).collect()
    }
}

impl Family for Nem {
    type Model = InnerNet;
    type Batch = loader::NemBatch;

    fn settings(&self) -> LoopSettings {
        let t = &self.cfg.training;
        LoopSettings {
            optimizer: t.optimizer.clone(),
            params: t.params.clone(),
            clip_gradients: t.clip_gradients,
            clip_global_norm: t.clip_global_norm,
            max_epoch: t.max_epoch,
            max_steps: None,
            schedule: match t.lr_half_life {
                Some(half_life) => crate::train::Schedule::WarmupHalving { warmup: 0, half_life },
                None => crate::train::Schedule::Constant,
            },
            max_patience: Some(t.max_patience),
            log_steps: t.log_steps,
            checkpoint_steps: None,
            seed: self.cfg.seed,
            devices: t.devices,
            net_path: self.cfg.net_path.clone(),
            progress_bar: true,
        }
    }

    fn init_model(&self, device: &Device) -> Result<InnerNet> {
        self.build_model(device)
    }

    fn original_names(&self, model: &InnerNet) -> Result<crate::weights::OriginalNames> {
        names::original_names(&self.cfg.network, self.repo(), model)
    }

    fn train_batches(&self, epoch: usize) -> Result<Box<dyn ExactSizeIterator<Item = loader::NemBatch>>> {
        let data = self.data()?;
        let b = self.cfg.training.batch_size;
        crate::data::batch_fits("training", data.train.len(), "training.batch_size", b)?;
        let starts = loader::batch_starts(data.train.len(), b, Some(derive_seed(self.cfg.seed, &[epoch as u64])));
        let cap = self.cfg.dataset.queue_capacity.clamp(1, 16);
        Ok(Box::new(loader::prefetch(data.train.clone(), starts, self.frames(), cap)))
    }

    fn loss(&self, net: &InnerNet, batch: &loader::NemBatch, _step: u64, shard: &Shard, device: &Device) -> Losses {
        let out = self.unroll(net, batch, shard, device, false);
        Losses {
            total: out.loss,
            logged: [
                ("intra".into(), out.intra),
                ("inter".into(), out.inter),
                ("ub_loss_last".into(), out.ub_loss_last),
            ]
            .into_iter()
            .chain(out.logged)
            .collect(),
        }
    }

    fn epoch_scores(&self, net: &InnerNet, split: &str, devices: &[Device]) -> Result<Scores> {
        let data = self.data()?;
        let limit = self.cfg.dataset.valid_size.unwrap_or(usize::MAX);
        let src = if split == "train" { &data.train } else { &data.valid };
        let subset = if src.len() > limit { Arc::new(src.first(limit)) } else { src.clone() };
        let b = self.cfg.validation.batch_size.unwrap_or(self.cfg.training.batch_size);
        // Grouping scores (AMI, NMI, ARI) on the validation subset each epoch: the score curve.
        self.score(net, &subset, b, split != "train", 1, false, devices)
    }

    fn visualize(&self, net: &InnerNet, dir: &std::path::Path, epoch: usize, device: &Device) -> Result<()> {
        viz::epoch_frame(self, net, dir, epoch, device)
    }
}
