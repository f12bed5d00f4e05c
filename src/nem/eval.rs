//! Evaluation of the N-EM family: grouping scores over a split (with restarts), the test-split
//! evaluation of `run_from_file`, and the model's view of a few images for the pictures.
use super::{InnerNet, Kept, Nem, Unrolled, viz};
use crate::data::{h5::NemSplit, loader};
use crate::error::{Error, Result};
use crate::metrics;
use crate::train::{Scores, Shard};
use crate::util::derive_seed;
use burn::tensor::{Device, Int, Tensor};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The most images one evaluation pass unrolls when restarts run as copies of a batch.
const MAX_RESTART_IMAGES: usize = 512;

impl Nem {
    /// Unroll `restarts` times from fresh random initialisations (γ, θ jitter, noise) and keep, per
    /// image, the grouping of the run with the lowest last-step loss — as k-means keeps the best of
    /// its `n_init` runs. The restarts run as copies of the batch in one pass (in chunks of at most
    /// `MAX_RESTART_IMAGES` images, the chunk from index `first` drawing from the stream
    /// (seed, first)); the reported losses are their mean.
    pub fn unroll_best(
        &self,
        net: &InnerNet,
        batch: &loader::NemBatch,
        seed: u64,
        device: &Device,
        restarts: usize,
    ) -> Unrolled {
        if restarts <= 1 {
            return self.unroll(net, batch, &Shard::whole(derive_seed(seed, &[0]), batch.shape[1]), device, true);
        }
        let b = batch.shape[1];
        let per_chunk = (MAX_RESTART_IMAGES / b).clamp(1, restarts);
        let mut chunks = Vec::new();
        for first in (0..restarts).step_by(per_chunk) {
            let n = per_chunk.min(restarts - first);
            let shard = Shard::whole(derive_seed(seed, &[first as u64]), n * b);
            chunks.push((n, self.unroll(net, &loader::repeat(batch, n), &shard, device, true)));
        }
        let mean = |f: fn(&Unrolled) -> &Tensor<1>| -> Tensor<1> {
            chunks
                .iter()
                .map(|(n, u)| f(u).clone() * (*n as f64 / restarts as f64))
                .reduce(|a, c| a + c)
                .expect("a chunk")
        };
        let (loss, intra, inter, ub) =
            (mean(|u| &u.loss), mean(|u| &u.intra), mean(|u| &u.inter), mean(|u| &u.ub_loss_last));
        let logged = (0..chunks[0].1.logged.len())
            .map(|i| {
                let sum = chunks.iter().map(|(n, u)| u.logged[i].1.clone() * (*n as f64 / restarts as f64));
                (chunks[0].1.logged[i].0.clone(), sum.reduce(|a, c| a + c).expect("a chunk"))
            })
            .collect();
        let sizes: Vec<usize> = chunks.iter().map(|(n, _)| *n).collect();
        let kept: Vec<Kept> = chunks.into_iter().map(|(_, u)| u.kept.expect("kept")).collect();
        let cat4 = |f: fn(&Kept) -> &Tensor<4>| Tensor::cat(kept.iter().map(|k| f(k).clone()).collect(), 0);
        let (psi, gamma) = (cat4(|k| &k.psi), cat4(|k| &k.gamma)); // [R·B, K, P, C]
        let assignments = Tensor::cat(kept.iter().map(|k| k.assignments.clone()).collect(), 1); // [T, R·B, P]
        let confidence = Tensor::cat(kept.iter().map(|k| k.confidence.clone()).collect(), 1);
        let losses = Tensor::cat(kept.iter().map(|k| k.image_loss.clone()).collect(), 0).reshape([restarts, b]);
        let best = losses.clone().argmin(0); // [1, B]
        let r = restarts as i64;
        let chosen =
            Tensor::<1, Int>::arange(0..r, device).reshape([restarts, 1]).equal(best.expand([restarts, b])).float();
        // Σ_r onehot[r, b] · x[r·B + b, …].
        let pick = |x: Tensor<4>| -> Tensor<4> {
            let [_, k, p, c] = x.dims();
            (x.reshape([restarts, b, k, p, c]) * chosen.clone().reshape([restarts, b, 1, 1, 1]))
                .sum_dim(0)
                .reshape([b, k, p, c])
        };
        let [t, _, p] = assignments.dims();
        let pick3 = |x: Tensor<3>| -> Tensor<3> {
            (x.reshape([t, restarts, b, p]) * chosen.clone().reshape([1, restarts, b, 1])).sum_dim(1).reshape([t, b, p])
        };
        let assignments = pick3(assignments.float()).int();
        let predictions = Tensor::cat(kept.iter().map(|k| k.predictions.clone()).collect(), 1); // [T, R·B, P, C]
        let c = predictions.dims()[3];
        let predictions = pick3(predictions.reshape([t, restarts * b, p * c])).reshape([t, b, p, c]);
        let step_mean = |f: fn(&Kept) -> &Tensor<1>| {
            kept.iter().zip(&sizes).map(|(k, n)| f(k).clone() * (*n as f64 / restarts as f64)).reduce(|a, c| a + c)
        };
        let (step_loss, step_bce) = (step_mean(|k| &k.step_loss).unwrap(), step_mean(|k| &k.step_bce).unwrap());
        Unrolled {
            loss,
            intra,
            inter,
            ub_loss_last: ub,
            kept: Some(Kept {
                assignments,
                confidence: pick3(confidence),
                predictions,
                step_loss,
                step_bce,
                // Attention is drawn from single runs (`gestalt rollout`), not restarts.
                attention: None,
                psi: pick(psi),
                gamma: pick(gamma),
                image_loss: (losses * chosen).sum_dim(0).reshape([b]),
            }),
            logged,
        }
    }

    /// Losses and grouping scores over `split` in order (partial last batch included); with
    /// `per_frame`, also each EM step's scores (`AMI_frame_01` … for the frame it is scored on).
    #[allow(clippy::too_many_arguments)] // the evaluation's own settings, each used once
    pub fn score(
        &self,
        net: &InnerNet,
        split: &Arc<NemSplit>,
        batch_size: usize,
        with_ami: bool,
        restarts: usize,
        per_frame: bool,
        devices: &[Device],
    ) -> Result<Scores> {
        let starts = loader::batch_starts(split.len(), batch_size, None);
        let batches = loader::prefetch(split.clone(), starts, self.frames(), 4);
        let steps = self.cfg.nem.nr_steps;
        // Per batch, on whichever replica takes it: its size, its summed losses and, per step,
        // [ARI, AMI, NMI] summed over its images and the number of images scored.
        let scored = crate::train::spread(net, devices, batches, |net, device, i, batch| -> Result<_> {
            let bsz = batch.shape[1];
            let seed = derive_seed(self.cfg.seed, &[u64::MAX - 1, i as u64]);
            let out = self.unroll_best(net, &batch, seed, device, restarts);
            let named =
                [("loss", out.loss), ("intra", out.intra), ("inter", out.inter), ("ub_loss_last", out.ub_loss_last)];
            let losses: Vec<(String, f64)> = named
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .chain(out.logged)
                .map(|(k, v)| (k, v.into_scalar::<f64>() * bsz as f64))
                .collect();
            if !self.cfg.record_grouping_score {
                return Ok((bsz, losses, vec![[0.0; SCORED]; steps]));
            }
            let kept = out.kept.expect("kept");
            let assign: Vec<i64> = kept.assignments.into_data().convert::<i64>().try_into_vec::<i64>().unwrap();
            let conf: Vec<f32> = kept.confidence.into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
            let groups = batch.groups.as_ref().ok_or_else(|| Error::usage("the dataset has no `groups`"))?;
            Ok((bsz, losses, frame_scores(groups, &assign, &conf, batch.shape, steps, with_ami, self.original_ari())))
        });
        let mut sums: BTreeMap<String, f64> = BTreeMap::new();
        let (mut n, mut per_t) = (0usize, vec![[0f64; SCORED]; steps]);
        for batch in scored {
            let (bsz, losses, batch_t) = batch?;
            n += bsz;
            for (k, v) in losses {
                *sums.entry(k).or_default() += v;
            }
            for (acc, b) in per_t.iter_mut().zip(batch_t) {
                acc.iter_mut().zip(b).for_each(|(a, b)| *a += b);
            }
        }
        let mut scores: Scores = sums.into_iter().map(|(k, v)| (k, v / n as f64)).collect();
        if self.cfg.record_grouping_score {
            scores.extend(grouping_scores(&per_t, &self.weights, with_ami, per_frame));
        }
        scores.insert("samples".into(), n as f64);
        Ok(scores)
    }

    /// The model's view of the first `n` samples of `split`: what the pictures show.
    pub fn inspect(&self, net: &InnerNet, split: &str, n: usize, device: &Device) -> Result<viz::Inspection> {
        let data = self.read_split(split, Some(n))?;
        let batch = loader::slice(&data, 0, data.len(), self.frames());
        let seed = derive_seed(self.cfg.seed, &[u64::MAX - 2]);
        let out = self.unroll_best(net, &batch, seed, device, self.cfg.run_config.restarts);
        Ok(viz::Inspection::of(batch, out.kept.expect("kept"), self.spec.components()))
    }

    /// Evaluate on a whole split as `run_from_file` does: AMI (run_config.AMI) or next-step losses.
    pub fn evaluate(&self, net: &InnerNet, split: &str, devices: &[Device]) -> Result<Scores> {
        let limit = if split == "test" { self.cfg.dataset.test_size } else { None };
        let data = Arc::new(self.read_split(split, limit)?);
        let rc = &self.cfg.run_config;
        // Sequences: the scores of every frame too (AMI over time).
        let per_frame = data.shape[0] > 1;
        let mut s = self.score(net, &data, rc.batch_size.max(1), rc.AMI, rc.restarts, per_frame, devices)?;
        if !rc.AMI {
            s.retain(|k, _| !k.contains("ARI"));
        }
        Ok(s)
    }
}

/// What `frame_scores` sums per step: ARI, AMI, NMI, confidence and the images scored.
pub(super) const SCORED: usize = 5;

/// Per EM step, [ARI, AMI, NMI, confidence] summed over a batch's images and the number of
/// images scored: γ's argmax after step t (`assign`, [T, B, P]) against the groups of frame t + 1
/// (the static frame when T = 1), foreground pixels only; an image without foreground is not
/// scored. The confidence is the mean of max_k γ (`conf`) over the foreground; `original_ari`
/// scores ARI with R-NEM's in-graph formula instead of scikit-learn's.
pub(super) fn frame_scores(
    groups: &[f32],
    assign: &[i64],
    conf: &[f32],
    shape: [usize; 5],
    steps: usize,
    with_ami: bool,
    original_ari: bool,
) -> Vec<[f64; SCORED]> {
    let (bsz, p) = (shape[1], shape[2] * shape[3]);
    let mut per_t = vec![[0f64; SCORED]; steps];
    for (t, acc) in per_t.iter_mut().enumerate() {
        let gt = if shape[0] == 1 { 0 } else { t + 1 };
        for s in 0..bsz {
            let g = &groups[(gt * bsz + s) * p..][..p];
            let at = (t * bsz + s) * p;
            let fg: Vec<usize> = (0..p).filter(|&i| g[i] > 0.5).collect();
            if fg.is_empty() {
                continue;
            }
            let truth: Vec<u32> = fg.iter().map(|&i| g[i] as u32).collect();
            let pred: Vec<u32> = fg.iter().map(|&i| assign[at + i] as u32).collect();
            acc[0] += if original_ari { metrics::ari_original(&truth, &pred) } else { metrics::ari(&truth, &pred) };
            if with_ami {
                acc[1] += metrics::ami(&truth, &pred);
                acc[2] += metrics::nmi(&truth, &pred);
            }
            acc[3] += fg.iter().map(|&i| conf[at + i] as f64).sum::<f64>() / fg.len() as f64;
            acc[4] += 1.0;
        }
    }
    per_t
}

/// The scores from the per-step sums: each step's mean over scored images; `ARI`, `AMI`, `NMI`
/// weighted over the steps by the loss step weights (as the original), `last_*` the last step's,
/// and with `per_frame` every step's as `ARI_frame_01`, `AMI_frame_01`, ….
fn grouping_scores(per_t: &[[f64; SCORED]], weights: &[f64], with_ami: bool, per_frame: bool) -> Scores {
    let steps = per_t.len();
    let wsum: f64 = weights.iter().sum();
    let mean_t = |j: usize, t: usize| per_t[t][j] / per_t[t][4].max(1.0);
    let weighted = |j: usize| (0..steps).map(|t| weights[t] * mean_t(j, t)).sum::<f64>() / wsum.max(1e-12);
    let mut scores = Scores::new();
    scores.insert("ARI".into(), weighted(0));
    scores.insert("last_ARI".into(), mean_t(0, steps - 1));
    scores.insert("confidence".into(), weighted(3));
    scores.insert("last_confidence".into(), mean_t(3, steps - 1));
    if with_ami {
        scores.insert("AMI".into(), weighted(1));
        scores.insert("last_AMI".into(), mean_t(1, steps - 1));
        scores.insert("NMI".into(), weighted(2));
        scores.insert("last_NMI".into(), mean_t(2, steps - 1));
    }
    if per_frame {
        for t in 0..steps {
            scores.insert(format!("ARI_frame_{:02}", t + 1), mean_t(0, t));
            if with_ami {
                scores.insert(format!("AMI_frame_{:02}", t + 1), mean_t(1, t));
            }
        }
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two images, two steps, frames of four pixels. Frame 1 (scored by step 0): image 0 has
    /// objects {1, 1, 2, 2}, grouped perfectly (ARI = AMI = 1); image 1 has no foreground (not
    /// scored). Frame 2 (step 1): image 0 all in one slot (ARI = AMI = 0); image 1 perfect on its
    /// three foreground pixels (its background pixel's slot is ignored).
    /// Frame 0 is never scored. Step weights (0.5, 1).
    #[test]
    fn scores_average_images_per_frame_and_weight_the_steps() {
        let groups: Vec<f32> = [
            [9., 9., 9., 9.],
            [9., 9., 9., 9.],
            [1., 1., 2., 2.],
            [0., 0., 0., 0.],
            [1., 1., 2., 2.],
            [1., 1., 0., 2.],
        ]
        .concat();
        let assign: Vec<i64> = [[0, 0, 1, 1], [2, 2, 2, 2], [1, 1, 1, 1], [0, 0, 7, 5]].concat();
        let conf: Vec<f32> = [[0.5, 0.5, 1.0, 1.0], [0.1; 4], [0.6; 4], [0.2, 0.4, 0.9, 0.6]].concat();
        let per_t = frame_scores(&groups, &assign, &conf, [3, 2, 2, 2, 1], 2, true, false);
        assert_eq!(per_t[0][4], 1.0, "step 0 scores image 0 only");
        assert_eq!(per_t[1][4], 2.0);
        let s = grouping_scores(&per_t, &[0.5, 1.0], true, true);
        assert!((s["AMI_frame_01"] - 1.0).abs() < 1e-9 && (s["ARI_frame_01"] - 1.0).abs() < 1e-9);
        assert!((s["AMI_frame_02"] - 0.5).abs() < 1e-9 && (s["last_AMI"] - 0.5).abs() < 1e-9);
        assert!((s["AMI"] - (0.5 * 1.0 + 1.0 * 0.5) / 1.5).abs() < 1e-9);
        // Confidence: mean max_k γ over the foreground — frame 1 image 0: 0.75; frame 2: image 0
        // 0.6, image 1 (0.2, 0.4, 0.6) 0.4.
        assert!((s["last_confidence"] - 0.5).abs() < 1e-6 && (s["confidence"] - (0.5 * 0.75 + 0.5) / 1.5).abs() < 1e-6);
        // A static frame (T = 1) is scored by every step.
        let per_t = frame_scores(&groups[8..16], &assign, &conf, [1, 2, 2, 2, 1], 2, true, false);
        assert_eq!([per_t[0][4], per_t[1][4]], [1.0, 1.0]);
        // R-NEM's in-graph ARI agrees where no frame is degenerate.
        let per_t = frame_scores(&groups, &assign, &conf, [3, 2, 2, 2, 1], 2, true, true);
        assert!((per_t[0][0] - 1.0).abs() < 1e-6 && (per_t[1][0] - 1.0).abs() < 1e-6);
    }
}
