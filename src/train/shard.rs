//! A shard: the part of a batch one model replica takes. Its random draws are a function of (the
//! step's seed, draw number, sample index) alone — not of how the batch is split between devices,
//! nor of the backend's generator — and its losses are its share of the whole batch's means. So
//! training with N replicas gives the numbers of one replica (up to float summation order).
use crate::util::rng;
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;
use rand::rngs::Xoshiro256PlusPlus;
use std::cell::Cell;

/// Samples `offset..offset + len` of a batch of `batch` samples, drawing from the stream `seed`.
#[derive(Debug)]
pub struct Shard {
    seed: u64,
    offset: usize,
    len: usize,
    batch: usize,
    next: Cell<u64>,
}

impl Shard {
    pub fn new(seed: u64, offset: usize, len: usize, batch: usize) -> Self {
        assert!(len > 0 && offset + len <= batch, "shard {offset}+{len} of a batch of {batch}");
        Shard { seed, offset, len, batch, next: Cell::new(0) }
    }

    /// A whole batch of `batch` samples.
    pub fn whole(seed: u64, batch: usize) -> Self {
        Shard::new(seed, 0, batch, batch)
    }

    /// The shard's part of the batch: what its means of per-sample terms are scaled by, so that
    /// the shards' values add up to the whole batch's mean.
    pub fn share(&self) -> f64 {
        self.len as f64 / self.batch as f64
    }

    /// A tensor of `shape` whose leading axis (or a block of leading axes) runs over the shard's
    /// samples: each sample's values come from its own stream.
    fn draw<const D: usize>(
        &self,
        shape: [usize; D],
        device: &Device,
        value: impl Fn(&mut Xoshiro256PlusPlus) -> f32,
    ) -> Tensor<D> {
        let draw = self.next.get();
        self.next.set(draw + 1);
        let total: usize = shape.iter().product();
        assert_eq!(total % self.len, 0, "a draw of {shape:?} over {} samples", self.len);
        let per = total / self.len;
        let mut out = Vec::with_capacity(total);
        for i in 0..self.len {
            let mut r = rng(self.seed, &[draw, (self.offset + i) as u64]);
            out.extend((0..per).map(|_| value(&mut r)));
        }
        Tensor::from_data(TensorData::new(out, shape), device)
    }

    /// Uniform on [0, 1).
    pub fn uniform<const D: usize>(&self, shape: [usize; D], device: &Device) -> Tensor<D> {
        self.draw(shape, device, |r| unit(r.next_u32()))
    }

    /// 1 with probability `p`, else 0.
    pub fn bernoulli<const D: usize>(&self, p: f64, shape: [usize; D], device: &Device) -> Tensor<D> {
        let p = p as f32;
        self.draw(shape, device, |r| f32::from(unit(r.next_u32()) < p))
    }

    /// N(mean, std²), by Box–Muller (one normal per pair of uniforms).
    pub fn normal<const D: usize>(&self, mean: f64, std: f64, shape: [usize; D], device: &Device) -> Tensor<D> {
        let (mean, std) = (mean as f32, std as f32);
        self.draw(shape, device, |r| {
            let u1 = 1.0 - unit(r.next_u32()); // (0, 1]: ln is finite
            let u2 = unit(r.next_u32());
            mean + std * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
        })
    }
}

/// The top 24 bits of `x` as a float in [0, 1).
fn unit(x: u32) -> f32 {
    (x >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn a_shard_draws_the_rows_of_its_samples() {
        let d = Device::flex();
        let whole = Shard::whole(7, 5);
        let (a, b) = (Shard::new(7, 0, 3, 5), Shard::new(7, 3, 2, 5));
        let w1 = rows(whole.normal(0.0, 1.0, [5, 2, 2], &d));
        let w2 = rows(whole.bernoulli(0.3, [5, 4], &d));
        let (a1, b1) = (rows(a.normal(0.0, 1.0, [3, 2, 2], &d)), rows(b.normal(0.0, 1.0, [2, 2, 2], &d)));
        let (a2, b2) = (rows(a.bernoulli(0.3, [3, 4], &d)), rows(b.bernoulli(0.3, [2, 4], &d)));
        assert_eq!(w1, [a1, b1].concat());
        assert_eq!(w2, [a2, b2].concat());
        assert_ne!(w1[..4], w1[4..8], "samples have their own streams");
        assert_eq!((a.share(), whole.share()), (0.6, 1.0));
    }

    #[test]
    fn the_moments_are_right() {
        let d = Device::flex();
        let x = rows(Shard::whole(1, 100).normal(2.0, 0.5, [100, 1000], &d));
        let mean = x.iter().sum::<f32>() / x.len() as f32;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / x.len() as f32;
        assert!((mean - 2.0).abs() < 0.01 && (var - 0.25).abs() < 0.01, "{mean} {var}");
        let u = rows(Shard::whole(1, 100).uniform([100, 1000], &d));
        assert!(u.iter().all(|v| (0.0..1.0).contains(v)));
        let p = rows(Shard::whole(1, 100).bernoulli(0.1, [100, 1000], &d)).iter().sum::<f32>() / 1e5;
        assert!((p - 0.1).abs() < 0.005, "{p}");
    }
}
