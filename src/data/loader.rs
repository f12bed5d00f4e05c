//! Batching (reference §4) with a prefetching thread, so the model never waits on data.
//! Batches are consecutive blocks of samples; training shuffles the block order per epoch.
use crate::data::h5::NemSplit;
#[cfg(test)]
use crate::data::h5::Values;
use crate::util::rng;
use rand::seq::SliceRandom;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

/// A block of samples: `features` (T, B, H, W, C) and `groups` (T, B, H, W, 1), T cropped.
#[derive(Debug, Clone)]
pub struct NemBatch {
    /// (T, B, H, W, C).
    pub shape: [usize; 5],
    pub features: Vec<f32>,
    pub groups: Option<Vec<f32>>,
    /// The split's byte arrays (T, B, per_frame) as floats: R-NEM's `collisions` or `events`,
    /// the Atari layout's `actions`.
    pub masks: Vec<BatchMask>,
}

#[derive(Debug, Clone)]
pub struct BatchMask {
    pub name: String,
    /// Values a frame: H·W for `collisions`, 1 for `events`, A for `actions`.
    pub per_frame: usize,
    pub values: Vec<f32>,
}

impl NemBatch {
    /// The array called `name`, if the batch has it.
    pub fn mask(&self, name: &str) -> Option<&BatchMask> {
        self.masks.iter().find(|m| m.name == name)
    }
}

/// Batch starts: `limit / b` full blocks for training (shuffled by `shuffle_seed`), or every
/// block including a final partial one for evaluation.
pub fn batch_starts(limit: usize, b: usize, shuffle_seed: Option<u64>) -> Vec<(usize, usize)> {
    match shuffle_seed {
        Some(seed) => {
            let mut starts: Vec<(usize, usize)> = (0..limit / b).map(|i| (i * b, b)).collect();
            starts.shuffle(&mut rng(seed, &[]));
            starts
        }
        None => (0..limit).step_by(b.max(1)).map(|s| (s, b.min(limit - s))).collect(),
    }
}

/// Cut samples [start, start + n) and the first `frames` frames out of a split.
pub fn slice(split: &NemSplit, start: usize, n: usize, frames: usize) -> NemBatch {
    let [t, total, h, w, c] = split.shape;
    let frames = frames.min(t);
    let rows = |per: usize| (0..frames).map(move |f| (f * total + start) * per..(f * total + start + n) * per);
    let mut features = Vec::with_capacity(frames * n * h * w * c);
    rows(h * w * c).for_each(|r| split.features.extend_into(r, &mut features));
    let bytes = |g: &[u8], per: usize| rows(per).flat_map(|r| g[r].iter().map(|&v| v as f32)).collect();
    let groups = split.groups.as_ref().map(|g| bytes(g, h * w));
    let masks = split
        .masks
        .iter()
        .map(|m| BatchMask { name: m.name.clone(), per_frame: m.per_frame(), values: bytes(&m.values, m.per_frame()) })
        .collect();
    NemBatch { shape: [frames, n, h, w, c], features, groups, masks }
}

impl crate::train::Batch for NemBatch {
    fn len(&self) -> usize {
        self.shape[1]
    }

    fn slice(&self, start: usize, n: usize) -> Self {
        let [t, total, h, w, c] = self.shape;
        let cut = |data: &[f32], per: usize| -> Vec<f32> {
            (0..t).flat_map(|f| data[(f * total + start) * per..][..n * per].iter().copied()).collect()
        };
        NemBatch {
            shape: [t, n, h, w, c],
            features: cut(&self.features, h * w * c),
            groups: self.groups.as_ref().map(|g| cut(g, h * w)),
            masks: self.masks.iter().map(|m| BatchMask { values: cut(&m.values, m.per_frame), ..m.clone() }).collect(),
        }
    }
}

/// The batch `n` times over along the batch axis (copy r of image b at r·B + b): independent
/// runs of the same images in one pass.
pub fn repeat(batch: &NemBatch, n: usize) -> NemBatch {
    let [t, b, h, w, c] = batch.shape;
    let tile = |data: &[f32], per: usize| -> Vec<f32> {
        data.chunks(b * per).take(t).flat_map(|f| std::iter::repeat_n(f, n).flatten().copied()).collect()
    };
    NemBatch {
        shape: [t, n * b, h, w, c],
        features: tile(&batch.features, h * w * c),
        groups: batch.groups.as_ref().map(|g| tile(g, h * w)),
        masks: batch.masks.iter().map(|m| BatchMask { values: tile(&m.values, m.per_frame), ..m.clone() }).collect(),
    }
}

/// Batches produced on a background thread, `capacity` ahead of the consumer.
pub struct Prefetch<T> {
    rx: Receiver<T>,
    handle: Option<JoinHandle<()>>,
    len: usize,
}

impl<T: Send + 'static> Prefetch<T> {
    pub fn new<I>(items: I, capacity: usize) -> Self
    where
        I: ExactSizeIterator<Item = T> + Send + 'static,
    {
        let len = items.len();
        let (tx, rx) = sync_channel(capacity.max(1));
        let handle = std::thread::spawn(move || {
            for item in items {
                if tx.send(item).is_err() {
                    break; // the consumer stopped early
                }
            }
        });
        Prefetch { rx, handle: Some(handle), len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<T> Iterator for Prefetch<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        let item = self.rx.recv().ok();
        if item.is_some() {
            self.len -= 1;
        }
        item
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len, Some(self.len))
    }
}

impl<T> ExactSizeIterator for Prefetch<T> {}

impl<T> Drop for Prefetch<T> {
    fn drop(&mut self) {
        // Unblock the producer by dropping the receiver first, then join it.
        let (_, dummy) = sync_channel(0);
        drop(std::mem::replace(&mut self.rx, dummy));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Prefetched batches of `split` at the given starts.
pub fn prefetch(
    split: Arc<NemSplit>,
    starts: Vec<(usize, usize)>,
    frames: usize,
    capacity: usize,
) -> Prefetch<NemBatch> {
    Prefetch::new(starts.into_iter().map(move |(s, n)| slice(&split, s, n, frames)), capacity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_starts_are_full_blocks_and_shuffled_reproducibly() {
        let a = batch_starts(130, 64, Some(3));
        assert_eq!(a.len(), 2);
        assert!(a.iter().all(|&(s, n)| n == 64 && s % 64 == 0));
        assert_eq!(a, batch_starts(130, 64, Some(3)));
        let e = batch_starts(130, 64, None);
        assert_eq!(e, vec![(0, 64), (64, 64), (128, 2)]);
    }

    #[test]
    fn slicing_keeps_time_major_layout() {
        // T = 2, N = 3, 1×1×1 frames: value = 10·t + n.
        let split = NemSplit {
            shape: [2, 3, 1, 1, 1],
            features: Values::F32(vec![0., 1., 2., 10., 11., 12.]),
            groups: None,
            masks: vec![],
        };
        let b = slice(&split, 1, 2, 5);
        assert_eq!(b.shape, [2, 2, 1, 1, 1]);
        assert_eq!(b.features, vec![1., 2., 11., 12.]);
        let prefetched: Vec<_> = prefetch(Arc::new(split), vec![(0, 1), (2, 1)], 1, 1).collect();
        assert_eq!(prefetched[1].features, vec![2.]);
    }
}
