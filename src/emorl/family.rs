//! EMORL on the training loop (reference §4): batches of the `train` split reshuffled each epoch,
//! the refinement curriculum, GECO updated after each optimiser step and kept in checkpoints,
//! Adam with warm-up and halving, global-norm clipping, `training.iters` + 1 updates.
use super::config::EmorlConfig;
use super::geco::Geco;
use super::inference::{GecoTerm, InferCfg, Inference, PriorKind};
use super::metrics::{fg_ari, labels_from_masks, mean_std, mse};
use super::model::{EmorlNet, NetShape};
use crate::config::Resolved;
use crate::data::emorl::{EmorlBatch, EmorlSplit, gather, read_emorl};
use crate::data::loader::Prefetch;
use crate::error::{Error, Result};
use crate::train::{Family, LoopSettings, Losses, RunLog, Schedule, Scores, Shard, optim::OptimParams};
use crate::util::{derive_seed, rng};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use rand::seq::SliceRandom;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

pub struct Emorl {
    pub cfg: EmorlConfig,
    pub shape: NetShape,
    geco: Mutex<Option<Geco>>,
    train: OnceLock<Arc<EmorlSplit>>,
    valid: OnceLock<Arc<EmorlSplit>>,
}

/// The scores of a set of test images: FG-ARI, MSE and KL per image.
pub struct ImageScores {
    pub ari: Vec<f64>,
    pub mse: Vec<f64>,
    pub kl: Vec<f64>,
}

impl ImageScores {
    /// Mean and std of each metric, under the original's names.
    pub fn summary(&self) -> Scores {
        let mut s = Scores::new();
        for (name, xs) in [("ARI", &self.ari), ("MSE", &self.mse), ("KL", &self.kl)] {
            let (m, sd) = mean_std(xs);
            s.insert(name.into(), m);
            s.insert(format!("{name}_std"), sd);
        }
        s.insert("images".into(), self.mse.len() as f64);
        s
    }
}

impl Emorl {
    pub fn new(resolved: &Resolved) -> Result<Emorl> {
        let cfg: EmorlConfig = resolved.typed()?;
        let shape = cfg.shape().map_err(Error::usage)?;
        let t = &cfg.training;
        if t.batch_size == 0 || cfg.test.batch_size == 0 {
            return Err(Error::usage("training.batch_size and test.batch_size must be at least 1"));
        }
        if t.refinement_curriculum.is_empty() {
            return Err(Error::usage("training.refinement_curriculum needs at least one [step, I] pair"));
        }
        if !["Gaussian", "GMM"].contains(&cfg.net.image_likelihood.as_str()) {
            return Err(Error::usage(format!(
                "unknown Net.image_likelihood `{}` (Gaussian, GMM)",
                cfg.net.image_likelihood
            )));
        }
        let types = [
            "ARI_MSE_KL",
            "sample_viz",
            "disentanglement_preprocessing",
            "activeness",
            "disentanglement_viz",
            "make_gifs",
        ];
        if !types.contains(&cfg.test.eval_type.as_str()) {
            return Err(Error::usage(format!(
                "unknown test.eval_type `{}` ({})",
                cfg.test.eval_type,
                types.join(", ")
            )));
        }
        if cfg.test.disentangle_slot >= cfg.net.K {
            return Err(Error::usage(format!(
                "test.disentangle_slot is {}, but there are Net.K = {} slots",
                cfg.test.disentangle_slot, cfg.net.K
            )));
        }
        Ok(Emorl { cfg, shape, geco: Mutex::new(None), train: OnceLock::new(), valid: OnceLock::new() })
    }

    /// I at optimiser step `step`: the last curriculum entry whose step it has reached.
    pub fn refinement_at(&self, step: u64) -> usize {
        let c = &self.cfg.training.refinement_curriculum;
        c.iter().rev().find(|(from, _)| step as i64 >= *from).unwrap_or(&c[0]).1
    }

    /// I at test time: a test config's `Net.refinement_iters`; for a train config (validation,
    /// pictures, the score after training) the curriculum's I at its last step, as the
    /// original's test configs pair them (Multi-dSprites and CLEVR6 train to I = 1, test at 1).
    pub fn test_refinement(&self) -> usize {
        if self.is_test_config() { self.cfg.net.refinement_iters } else { self.refinement_at(self.cfg.training.iters) }
    }

    pub fn infer_cfg(&self, refinement: usize) -> InferCfg {
        let n = &self.cfg.net;
        InferCfg {
            k: n.K,
            layers: n.stochastic_layers,
            refinement,
            sigma: n.log_scale.exp(),
            gmm: n.image_likelihood == "GMM",
            kl_beta: self.cfg.training.kl_beta_init,
            image: self.shape.image,
            prior: match (n.bottom_up_prior, n.reverse_prior_plusplus) {
                (true, _) => PriorKind::BottomUp,
                (false, true) => PriorKind::ReversedPlusPlus,
                (false, false) => PriorKind::Reversed,
            },
        }
    }

    /// The network, its parameters materialised now (Burn initialises them lazily, at first use:
    /// which would draw from whatever random stream is current then).
    pub fn build_model(&self, device: &Device) -> EmorlNet {
        let net = EmorlNet::new(&self.shape, device);
        crate::nn::materialize(&net);
        net
    }

    /// A fresh controller with the config's settings, on `device`.
    fn new_geco(&self, device: &Device) -> Geco {
        let t = &self.cfg.training;
        let [c, h, w] = self.cfg.net.input_size;
        let mut g = Geco::new(t.geco_reconstruction_target, c * h * w, device);
        g.step_size = t.geco_beta_stepsize;
        g.alpha = t.geco_ema_alpha;
        g.acceleration = t.geco_step_size_acceleration;
        g.warm_start = self.cfg.net.geco_warm_start;
        g
    }

    /// GECO's form of the loss (None: the plain ELBO) when `on`, once GECO is past its warm start
    /// at `step`.
    fn geco_term(&self, on: bool, step: u64) -> Option<GecoTerm> {
        let guard = self.geco.lock().unwrap();
        let g = guard.as_ref().filter(|g| on && g.active(step))?;
        Some(GecoTerm { weight: g.weight(), target: g.target, c_ema: g.c_ema.clone() })
    }

    /// The loss form at training step `step`.
    fn train_geco(&self, step: u64) -> Option<GecoTerm> {
        self.geco_term(self.cfg.training.use_geco, step)
    }

    /// The loss form at test time: the original evaluates at `global_step=1001`, past the warm
    /// start, with the checkpoint's ζ.
    fn test_geco(&self) -> Option<GecoTerm> {
        self.geco_term(self.cfg.test.use_geco.unwrap_or(self.cfg.training.use_geco), u64::MAX)
    }

    /// Set up GECO on `device` with a checkpoint's family state (Null: fresh).
    pub fn load_state(&self, state: &Value, device: &Device) -> Result<()> {
        let mut g = self.new_geco(device);
        if let (Some(c), Some(b)) = (state["geco_C_ema"].as_f64(), state["geco_beta"].as_f64()) {
            g.restore((c, b));
        } else if !state.is_null() {
            return Err(Error::usage("checkpoint family state: expected geco_C_ema and geco_beta"));
        }
        *self.geco.lock().unwrap() = Some(g);
        Ok(())
    }

    /// A test config names the test file itself (`…_test.h5` or `dataset.mode` test).
    fn is_test_config(&self) -> bool {
        let d = &self.cfg.dataset;
        d.mode == "test" || d.h5_path.trim_end_matches(".h5").ends_with("_test")
    }

    /// The file and split of the training images, or of the test images: a train config names
    /// the train file, whose test images are in `dataset.test_h5_path` or `<stem>_test.h5`.
    pub fn file(&self, test: bool) -> Result<(PathBuf, String)> {
        let d = &self.cfg.dataset;
        let name = if !test || self.is_test_config() {
            d.h5_path.clone()
        } else {
            d.test_h5_path.clone().unwrap_or_else(|| format!("{}_test.h5", d.h5_path.trim_end_matches(".h5")))
        };
        let path =
            crate::data::ensure_emorl_file(&d.data_path, &name, d.generate, d.seed, [d.sizes.train, d.sizes.test])?;
        Ok((path, if test { self.cfg.test.mode.clone() } else { d.mode.clone() }))
    }

    fn load(&self, test: bool, limit: Option<usize>) -> Result<EmorlSplit> {
        let (path, split) = self.file(test)?;
        let mut s = read_emorl(&path, &split, limit, test || self.cfg.dataset.masks)?;
        if let Some(style) = &self.cfg.dataset.clevr_preprocess_style {
            s = crate::data::clevr::preprocess(s, crate::data::clevr::style_size(style)?)?;
        }
        let [_, h, w] = self.cfg.net.input_size;
        if (s.h, s.w) != (h, w) {
            return Err(Error::usage(format!(
                "{}: images are {}×{}, Net.input_size asks for {h}×{w}",
                path.display(),
                s.h,
                s.w
            )));
        }
        Ok(s)
    }

    fn train_split(&self) -> Result<Arc<EmorlSplit>> {
        if let Some(s) = self.train.get() {
            return Ok(s.clone());
        }
        let s = Arc::new(self.load(false, None)?);
        Ok(self.train.get_or_init(|| s).clone())
    }

    /// The first `n` test images.
    pub fn test_split(&self, n: usize) -> Result<EmorlSplit> {
        self.load(true, Some(n))
    }

    /// The first `n` test images, kept: the validation curve's images.
    fn valid_split(&self, n: usize) -> Result<Arc<EmorlSplit>> {
        if let Some(s) = self.valid.get() {
            return Ok(s.clone());
        }
        let s = Arc::new(self.test_split(n)?);
        Ok(self.valid.get_or_init(|| s).clone())
    }

    /// Both files read now (the training images and the validation and test images are kept or
    /// checked), with a batch that fits: bad data fails before a run writes anything.
    pub fn check_data(&self) -> Result<()> {
        let train = self.train_split()?;
        crate::data::batch_fits("train", train.n, "training.batch_size", self.cfg.training.batch_size)?;
        let n = self.cfg.training.validation_images;
        if n > 0 {
            self.valid_split(n)?;
        }
        if self.cfg.test.num_images_to_process > n {
            self.test_split(self.cfg.test.num_images_to_process)?;
        }
        Ok(())
    }

    /// Both stages on a batch, the samples of `shard`, with I = `refinement`, at training step
    /// `step` (None: test time).
    pub fn infer(
        &self,
        model: &EmorlNet,
        batch: &EmorlBatch,
        refinement: usize,
        step: Option<u64>,
        shard: &Shard,
        device: &Device,
    ) -> Inference {
        let x = Tensor::<4>::from_data(TensorData::new(batch.imgs.clone(), batch.shape), device);
        let geco = match step {
            Some(s) => self.train_geco(s),
            None => self.test_geco(),
        };
        model.infer(x, &self.infer_cfg(refinement), geco.map(|g| g.to_device(device)).as_ref(), shard)
    }

    /// FG-ARI, MSE and KL of each of `split`'s images at test-time I (`test_refinement`),
    /// in batches of `batch_size` spread over the replicas' `devices`. The model may be on plain
    /// devices: the refinement gradient needs autodiff ones, so it is moved there.
    pub fn score(
        &self,
        model: &EmorlNet,
        split: &EmorlSplit,
        batch_size: usize,
        devices: &[Device],
    ) -> Result<ImageScores> {
        let starts = (0..split.n).step_by(batch_size.max(1));
        let scored = crate::train::spread(&model.valid(), devices, starts, |model, device, _, start| {
            let ad = if device.is_autodiff() { device.clone() } else { device.clone().autodiff() };
            let model = model.clone().to_device(&ad);
            let n = batch_size.min(split.n - start);
            let batch = gather(split, &(start..start + n).collect::<Vec<_>>());
            let shard = Shard::whole(derive_seed(self.cfg.seed, &[u64::MAX - 1, start as u64]), n);
            let inf = self.infer(&model, &batch, self.test_refinement(), None, &shard, &ad);
            let last = inf.steps.last().expect("step 0");
            let x01 = (Tensor::<4>::from_data(TensorData::new(batch.imgs.clone(), batch.shape), &ad) + 1.0) / 2.0;
            let host = |t: Tensor<1>| -> Vec<f64> { t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap() };
            let mut out = ImageScores { ari: Vec::new(), mse: Vec::new(), kl: Vec::new() };
            out.mse.extend(host(mse(x01, last.rgb.clone(), last.log_masks.clone())));
            out.kl.extend(host(last.kl.clone()));
            for (i, pred) in predicted_slots(last.log_masks.clone(), batch.mask_hw).into_iter().enumerate() {
                let mp = batch.mask_hw[0] * batch.mask_hw[1];
                let truth = labels_from_masks(&batch.masks[i * batch.e * mp..][..batch.e * mp], batch.e);
                out.ari.extend(fg_ari(&truth, &pred));
            }
            out
        });
        let mut out = ImageScores { ari: Vec::new(), mse: Vec::new(), kl: Vec::new() };
        for s in scored {
            out.ari.extend(s.ari);
            out.mse.extend(s.mse);
            out.kl.extend(s.kl);
        }
        Ok(out)
    }
}

/// argmax over slots of each image's masks [N, K, 1, H, W], at the ground truth's resolution
/// `mask_hw` (CLEVR: the soft masks are resized bicubically first, as the original).
fn predicted_slots(log_masks: Tensor<5>, mask_hw: [usize; 2]) -> Vec<Vec<u32>> {
    let [n, k, _, h, w] = log_masks.dims();
    if mask_hw == [h, w] {
        let pred = log_masks.argmax(1).reshape([n * h * w]).into_data().convert::<i64>().try_to_vec::<i64>().unwrap();
        return pred.chunks(h * w).map(|c| c.iter().map(|&s| s as u32).collect()).collect();
    }
    let masks = log_masks.exp().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    masks
        .chunks(k * h * w)
        .map(|m| {
            let planes: Vec<Vec<f32>> =
                m.chunks(h * w).map(|p| crate::data::clevr::resize_plane(p, h, w, mask_hw)).collect();
            (0..mask_hw[0] * mask_hw[1])
                .map(|j| (0..k).max_by(|&a, &b| planes[a][j].total_cmp(&planes[b][j])).unwrap_or(0) as u32)
                .collect()
        })
        .collect()
}

impl Family for Emorl {
    type Model = EmorlNet;
    type Batch = EmorlBatch;

    fn settings(&self) -> LoopSettings {
        let t = &self.cfg.training;
        LoopSettings {
            optimizer: "adam".into(),
            // PyTorch's Adam defaults.
            params: OptimParams {
                learning_rate: t.lr,
                beta1: 0.9,
                beta2: 0.999,
                epsilon: Some(1e-8),
                momentum: None,
                decay: 0.9,
            },
            clip_gradients: None,
            clip_global_norm: t.clip_grad_norm.then_some(5.0),
            max_epoch: usize::MAX,
            // `while step <= iters`: iters + 1 updates.
            max_steps: Some(t.iters + 1),
            schedule: if t.use_scheduler {
                Schedule::WarmupHalving { warmup: t.warmup, half_life: 100_000 }
            } else {
                Schedule::Constant
            },
            max_patience: None,
            log_steps: t.tensorboard_freq as usize,
            checkpoint_steps: (t.checkpoint_freq > 0).then_some(t.checkpoint_freq),
            seed: self.cfg.seed,
            devices: self.cfg.training.devices,
            net_path: self
                .cfg
                .net_path
                .clone()
                .or_else(|| (t.load_from_checkpoint && !t.checkpoint.is_empty()).then(|| t.checkpoint.clone())),
            progress_bar: t.tqdm,
        }
    }

    fn init_model(&self, device: &Device) -> Result<EmorlNet> {
        self.load_state(&Value::Null, device)?;
        Ok(self.build_model(device))
    }

    fn original_names(&self, model: &EmorlNet) -> Result<crate::weights::OriginalNames> {
        crate::emorl::names::original_names(model)
    }

    fn train_batches(&self, epoch: usize) -> Result<Box<dyn ExactSizeIterator<Item = EmorlBatch>>> {
        let data = self.train_split()?;
        let b = self.cfg.training.batch_size;
        crate::data::batch_fits("train", data.n, "training.batch_size", b)?;
        // A fresh permutation each epoch, the last partial batch dropped (DistributedSampler).
        let mut order: Vec<usize> = (0..data.n).collect();
        order.shuffle(&mut rng(self.cfg.seed, &[epoch as u64]));
        let batches: Vec<Vec<usize>> = order.chunks_exact(b).map(<[usize]>::to_vec).collect();
        Ok(Box::new(Prefetch::new(batches.into_iter().map(move |idx| gather(&data, &idx)), 4)))
    }

    fn loss(&self, model: &EmorlNet, batch: &EmorlBatch, step: u64, shard: &Shard, device: &Device) -> Losses {
        let inf = self.infer(model, batch, self.refinement_at(step), Some(step), shard, device);
        let last = inf.steps.last().expect("step 0");
        let share = |t: &Tensor<1>| t.clone().mean() * shard.share();
        let mut logged = vec![("nll".to_string(), share(&last.nll)), ("kl".to_string(), share(&last.kl))];
        for (i, d) in inf.deltas.into_iter().enumerate() {
            logged.push((format!("norm_delta_lambda_{}", i + 1), d));
        }
        Losses { total: inf.total, logged }
    }

    fn after_step(&self, step: u64, logged: &[(String, Tensor<1>)]) {
        if !self.cfg.training.use_geco {
            return;
        }
        let nll = logged.iter().find(|(k, _)| k == "nll").map(|(_, v)| v.clone()).expect("nll is logged");
        if let Some(g) = self.geco.lock().unwrap().as_mut() {
            g.update(step, nll);
        }
    }

    fn epoch_scores(&self, model: &EmorlNet, split: &str, devices: &[Device]) -> Result<Scores> {
        let n = self.cfg.training.validation_images;
        if split == "train" || n == 0 {
            return Ok(Scores::new());
        }
        let images = self.valid_split(n)?;
        Ok(self.score(model, &images, self.cfg.training.batch_size, devices)?.summary())
    }

    fn criterion(&self) -> Option<&'static str> {
        None
    }

    fn state(&self) -> Value {
        match self.geco.lock().unwrap().as_ref() {
            Some(g) => {
                let (c, b) = g.state();
                json!({ "geco_C_ema": c, "geco_beta": b })
            }
            None => Value::Null,
        }
    }

    fn restore(&self, state: &Value) -> Result<()> {
        let device = self
            .geco
            .lock()
            .unwrap()
            .as_ref()
            .map(|g| g.beta.device())
            .ok_or_else(|| Error::internal("GECO restored before init_model"))?;
        self.load_state(state, &device)
    }

    fn log_scalars(&self) -> Scores {
        let mut s = Scores::new();
        s.insert("KL_beta".into(), self.cfg.training.kl_beta_init);
        if self.cfg.training.use_geco {
            let (c, b) = self.geco.lock().unwrap().as_ref().map(Geco::state).unwrap_or_default();
            s.insert("geco_C_ema".into(), c);
            s.insert("geco_beta".into(), b);
        }
        s
    }

    fn log_images(
        &self,
        model: &EmorlNet,
        batch: &EmorlBatch,
        step: u64,
        log: &mut RunLog,
        device: &Device,
    ) -> Result<()> {
        super::viz::log_images(self, model, batch, step, log, device)
    }

    fn visualize(&self, model: &EmorlNet, dir: &std::path::Path, _epoch: usize, device: &Device) -> Result<()> {
        super::viz::draw_all(self, model, dir, device)
    }
}

#[cfg(test)]
mod tests {
    use super::predicted_slots;
    use burn::tensor::{Device, Tensor, TensorData};

    #[test]
    fn predicted_slots_at_native_and_at_the_masks_resolution() {
        // Two slots on a 2×2 image: slot 0 owns the left column, slot 1 the right.
        let m = [0.9f32, 0.1, 0.9, 0.1, 0.1, 0.9, 0.1, 0.9].map(f32::ln);
        let log_masks = Tensor::<5>::from_data(TensorData::new(m.to_vec(), [1, 2, 1, 2, 2]), &Device::flex());
        assert_eq!(predicted_slots(log_masks.clone(), [2, 2]), vec![vec![0, 1, 0, 1]]);
        let big = predicted_slots(log_masks, [4, 4]);
        assert_eq!(big[0].len(), 16);
        assert_eq!(big[0][..4], [0, 0, 1, 1], "resized, the left half stays slot 0");
    }
}
