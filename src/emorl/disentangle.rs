//! EMORL's disentanglement evaluations (reference §6, `eval.py`): the latent range of the final
//! posterior (`disentanglement_preprocessing`, `z_range.txt`), each dimension's activeness —
//! how much the composite image changes when one slot's dimension sweeps that range — and the
//! latent traversals that `disentanglement_viz` draws and `make_gifs` animates.
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
/// Frames of a latent traversal (`disentanglement_viz`, `make_gifs`).
pub const TRAVERSAL_STEPS: usize = 8;
/// Dimensions `make_gifs` animates: the most active ones.
pub const GIF_DIMS: usize = 10;

/// `n` evenly spaced values from lo to hi.
fn linspace([lo, hi]: [f64; 2], n: usize) -> Vec<f64> {
    (0..n).map(|s| lo + (hi - lo) * s as f64 / (n - 1) as f64).collect()
}

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
        let dims: Vec<usize> = (0..d).collect();
        let values: Vec<Vec<f64>> = range.iter().map(|&r| linspace(r, SWEEP)).collect();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let composite = self.sweep(model, z.clone().slice([i..i + 1]), self.activeness_slot(i), &dims, &values);
            let mean = composite.clone().mean_dim(1);
            let var = (composite - mean).square().sum_dim(1) / (SWEEP - 1) as f64;
            out.push(host(var.mean_dim(2).reshape([d])));
        }
        Ok(out)
    }

    /// The composites Σ_k m_k rgb_k [dims, values, 3·H·W] of one image's slots z [1, K·D] with
    /// z[slot, dims[i]] set to each of `values[i]` in turn: all of them decoded as one batch.
    fn sweep(&self, model: &EmorlNet, z: Tensor<2>, slot: usize, dims: &[usize], values: &[Vec<f64>]) -> Tensor<3> {
        let (k, d, steps) = (self.cfg.net.K, self.cfg.net.z_size, values[0].len());
        let [_, h, w] = self.cfg.net.input_size;
        let variants = dims.len() * steps;
        let mut set = vec![0f32; variants * k * d];
        let mut keep = vec![1f32; variants * k * d];
        for (i, (&j, vals)) in dims.iter().zip(values).enumerate() {
            for (s, &v) in vals.iter().enumerate() {
                let at = ((i * steps + s) * k + slot) * d + j;
                set[at] = v as f32;
                keep[at] = 0.0;
            }
        }
        let device = z.device();
        let t = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [variants, k * d]), &device);
        let zs = z.expand([variants, k * d]) * t(keep) + t(set);
        let (rgb, log_masks) = model.decoder.forward(zs.reshape([variants * k, d]), k, [h, w]);
        (rgb * log_masks.exp()).sum_dim(1).reshape([dims.len(), steps, 3 * h * w])
    }

    /// Latent traversals of the first test image, inferred once: for each of `slots` and each of
    /// `dims`, the composites [3·H·W] of `TRAVERSAL_STEPS` evenly spaced values of the
    /// dimension's range in that slot (the other slots and dimensions as inferred),
    /// [slots][dims][steps]. The original traverses a range centred on (max − min)/2, a bug
    /// (see the README's deviations); this is the range itself.
    pub fn traversal(
        &self,
        model: &EmorlNet,
        split: &EmorlSplit,
        range: &[[f64; 2]],
        slots: &[usize],
        dims: &[usize],
        device: &Device,
    ) -> Vec<Vec<Vec<Vec<f32>>>> {
        let z = self.final_z(model, split, 1, device).reshape([1, self.cfg.net.K * self.cfg.net.z_size]);
        let values: Vec<Vec<f64>> = dims.iter().map(|&j| linspace(range[j], TRAVERSAL_STEPS)).collect();
        slots.iter().map(|&slot| self.frames(model, z.clone(), slot, dims, &values)).collect()
    }

    /// One slot's sweep on the host as [dims][steps] frames.
    fn frames(
        &self,
        model: &EmorlNet,
        z: Tensor<2>,
        slot: usize,
        dims: &[usize],
        values: &[Vec<f64>],
    ) -> Vec<Vec<Vec<f32>>> {
        let c = self.sweep(model, z, slot, dims, values).into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        let frame = c.len() / (dims.len() * TRAVERSAL_STEPS);
        c.chunks(frame * TRAVERSAL_STEPS).map(|row| row.chunks(frame).map(<[f32]>::to_vec).collect()).collect()
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
