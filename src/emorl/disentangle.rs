//! EMORL's disentanglement evaluations (reference §6, `eval.py`): the latent range of the final
//! posterior (`disentanglement_preprocessing`, `z_range.txt`) and each dimension's activeness —
//! how much the composite image changes when one slot's dimension sweeps that range.
use super::Emorl;
use super::model::EmorlNet;
use crate::data::emorl::{EmorlSplit, gather};
use crate::error::{Error, Result};
use crate::train::Shard;
use crate::util::{derive_seed, rng};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use rand::RngExt;
use std::path::Path;

/// Images both evaluations read, as the original's (one image per batch, the first 100).
pub const IMAGES: usize = 100;
/// Points of the sweep over a dimension's range in `activeness`.
const SWEEP: usize = 6;

impl Emorl {
    /// The final posterior's sample z [n·K, D] of the first `n` images (test-time refinement).
    pub fn final_z(&self, model: &EmorlNet, split: &EmorlSplit, n: usize, device: &Device) -> Tensor<2> {
        let ad = device.clone().autodiff();
        let model = model.clone().to_device(&ad);
        let batch = gather(split, &(0..n).collect::<Vec<_>>());
        let shard = Shard::whole(derive_seed(self.cfg.seed, &[u64::MAX - 4]), n);
        let inf = self.infer(&model, &batch, self.test_refinement(), None, &shard, &ad);
        Tensor::from_data(inf.z.into_data(), device)
    }

    /// The slot whose dimensions image i's activeness sweeps (drawn from the seed).
    pub fn activeness_slot(&self, i: usize) -> usize {
        rng(self.cfg.seed, &[i as u64, 7]).random_range(0..self.cfg.net.K)
    }

    /// Per dimension (min, max) of the final posterior's samples over the first `IMAGES` images
    /// and all their slots.
    pub fn latent_range(&self, model: &EmorlNet, split: &EmorlSplit, device: &Device) -> Vec<[f64; 2]> {
        let z = self.final_z(model, split, IMAGES.min(split.n), device);
        let lo = host(z.clone().min_dim(0));
        let hi = host(z.max_dim(0));
        lo.into_iter().zip(hi).map(|(a, b)| [a, b]).collect()
    }

    /// Activeness [images, D]: for each of the first `IMAGES` images, one slot drawn at random;
    /// for each dimension j, z[slot, j] set to each of `SWEEP` evenly spaced values of j's
    /// range, the composites Σ_k m_k rgb_k decoded, and their unbiased variance over the sweep
    /// averaged over pixels and channels. All sweeps of an image decode as one batch.
    pub fn activeness(
        &self,
        model: &EmorlNet,
        split: &EmorlSplit,
        range: &[[f64; 2]],
        device: &Device,
    ) -> Result<Vec<Vec<f64>>> {
        let (k, d) = (self.cfg.net.K, self.cfg.net.z_size);
        if range.len() != d {
            return Err(Error::usage(format!("the latent range has {} dimensions, Net.z_size is {d}", range.len())));
        }
        let n = IMAGES.min(split.n);
        let z = self.final_z(model, split, n, device).reshape([n, k * d]);
        let [_, h, w] = self.cfg.net.input_size;
        let variants = d * SWEEP;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let slot = self.activeness_slot(i);
            // Row (j, s) of the sweep: image i's slots with z[slot, j] = value s of j's range.
            let mut set = vec![0f32; variants * k * d];
            let mut keep = vec![1f32; variants * k * d];
            for (j, &[lo, hi]) in range.iter().enumerate() {
                for s in 0..SWEEP {
                    let at = ((j * SWEEP + s) * k + slot) * d + j;
                    set[at] = (lo + (hi - lo) * s as f64 / (SWEEP - 1) as f64) as f32;
                    keep[at] = 0.0;
                }
            }
            let t = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [variants, k * d]), device);
            let zi = z.clone().slice([i..i + 1]).expand([variants, k * d]) * t(keep) + t(set);
            let (rgb, log_masks) = model.decoder.forward(zi.reshape([variants * k, d]), k, [h, w]);
            let composite = (rgb * log_masks.exp()).sum_dim(1).reshape([d, SWEEP, 3 * h * w]);
            let mean = composite.clone().mean_dim(1);
            let var = (composite - mean).square().sum_dim(1) / (SWEEP - 1) as f64;
            out.push(host(var.mean_dim(2).reshape([d])));
        }
        Ok(out)
    }
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

/// `z_range.txt` as the original writes it: one `min,max` line per dimension.
pub fn write_range(path: &Path, range: &[[f64; 2]]) -> Result<()> {
    let text: String = range.iter().map(|[lo, hi]| format!("{lo},{hi}\n")).collect();
    crate::util::write_atomic(path, text.as_bytes())
}

/// A `z_range.txt`, or None when it does not exist.
pub fn read_range(path: &Path) -> Result<Option<Vec<[f64; 2]>>> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(None) };
    let bad = || Error::usage(format!("{}: expected one `min,max` line per latent dimension", path.display()));
    text.lines()
        .map(|l| {
            let (a, b) = l.split_once(',').ok_or_else(bad)?;
            Ok([a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?])
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}
