//! `gestalt rollout` (R-NEM's `rollout_from_file`, reference §2.6): nem.nr_steps observed
//! frames, then run_config.rollout_steps steps on the model's own prediction Σ_k γψ, scored
//! against the true frames; GIFs of truth, prediction, slots and attention per frame.
use super::em::Schedule;
use super::{InnerNet, Nem, eval, viz};
use crate::data::loader;
use crate::error::{Error, Result};
use crate::train::Shard;
use crate::util::derive_seed;
use burn::tensor::Device;
use serde_json::{Map, Value, json};
use std::path::Path;
use std::sync::Arc;

impl Nem {
    /// Frames a rollout reads: every step's input and the frame after the last.
    fn rollout_frames(&self) -> usize {
        self.cfg.nem.nr_steps + self.cfg.run_config.rollout_steps + 1
    }

    /// Roll out over the test split: per frame the BCE of max_k ψ against the true frame (free of
    /// the E-step), the γ-weighted loss and the ARI; the means over the observed and the rollout
    /// frames; GIFs of the first `run_config.debug_samples` sequences in `out/rollout/`.
    pub fn rollout(&self, net: &InnerNet, out: &Path, device: &Device) -> Result<Map<String, Value>> {
        let (observed, total) = (self.cfg.nem.nr_steps, self.cfg.nem.nr_steps + self.cfg.run_config.rollout_steps);
        let data = Arc::new(self.read_split("test", self.cfg.dataset.test_size)?);
        if data.shape[0] < self.rollout_frames() {
            return Err(Error::usage(format!(
                "the test split has {} frames; nem.nr_steps={observed} + run_config.rollout_steps={} needs {}",
                data.shape[0],
                self.cfg.run_config.rollout_steps,
                self.rollout_frames()
            )));
        }
        let weights = vec![1.0; total];
        let b = self.cfg.run_config.batch_size.max(1);
        let (mut bce, mut loss, mut n) = (vec![0f64; total], vec![0f64; total], 0usize);
        let mut per_t = vec![[0f64; eval::SCORED]; total];
        let starts = loader::batch_starts(data.len(), b, None);
        for (i, batch) in loader::prefetch(data.clone(), starts, self.rollout_frames(), 2).enumerate() {
            let bsz = batch.shape[1];
            let shard = Shard::whole(derive_seed(self.cfg.seed, &[u64::MAX - 3, i as u64]), bsz);
            let run = self.unroll_with(net, &batch, &shard, device, true, &weights, Schedule::RolloutFrom(observed));
            let kept = run.kept.expect("kept");
            let host = |t: burn::tensor::Tensor<1>| t.into_data().convert::<f64>().try_into_vec::<f64>().unwrap();
            for (acc, v) in [(&mut bce, host(kept.step_bce.clone())), (&mut loss, host(kept.step_loss.clone()))] {
                acc.iter_mut().zip(v).for_each(|(a, v)| *a += v * bsz as f64);
            }
            if let Some(groups) = &batch.groups {
                let ins = viz::Inspection::of(batch.clone(), kept, self.spec.components());
                let scored = eval::frame_scores(
                    groups,
                    &ins.assign.iter().map(|&a| a as i64).collect::<Vec<_>>(),
                    &ins.confidence,
                    batch.shape,
                    total,
                    false,
                    self.original_ari(),
                );
                per_t.iter_mut().zip(scored).for_each(|(a, s)| a.iter_mut().zip(s).for_each(|(a, s)| *a += s));
                if i == 0 {
                    let dir = out.join("rollout");
                    viz::rollout_gifs(&ins, observed, &self.cfg.run_config.debug_samples, &dir)?;
                }
            }
            n += bsz;
        }
        let mean =
            |v: &[f64], r: std::ops::Range<usize>| v[r.clone()].iter().sum::<f64>() / (n * r.len()).max(1) as f64;
        let mut m = Map::new();
        m.insert("split".into(), json!("test"));
        m.insert("samples".into(), json!(n));
        m.insert("nr_steps".into(), json!(observed));
        m.insert("rollout_steps".into(), json!(total - observed));
        m.insert("bce_observed".into(), json!(mean(&bce, 0..observed)));
        m.insert("bce_rollout".into(), json!(mean(&bce, observed..total)));
        m.insert("loss_rollout".into(), json!(mean(&loss, observed..total)));
        for t in 0..total {
            m.insert(format!("bce_frame_{:02}", t + 1), json!(bce[t] / n as f64));
            m.insert(format!("loss_frame_{:02}", t + 1), json!(loss[t] / n as f64));
            if per_t[t][eval::SCORED - 1] > 0.0 {
                m.insert(format!("ARI_frame_{:02}", t + 1), json!(per_t[t][0] / per_t[t][eval::SCORED - 1]));
            }
        }
        Ok(m)
    }
}
