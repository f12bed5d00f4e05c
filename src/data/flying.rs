//! `flying_shapes`: sequences of 28×28 binary frames in which the static `shapes` outlines
//! (square, up- and down-triangle) move with constant velocity and bounce off the walls; overlap
//! is allowed and later shapes are drawn on top. The original's generator is not published; the
//! motion here (speed 1–2 px a frame in a uniform direction, mirror bounces) is gestalt's.
//! Sequence i is a pure function of (seed, i).
use super::h5::{NemSplit, Values};
use super::mnist::Digits;
use super::shapes::{SIZE, extent, outline};
use crate::util::rng;
use rand::RngExt;

/// Frames per sequence: nr_steps + 1 = 21 for training, 41 for 40-step rollouts.
pub const FRAMES: usize = 41;

/// One moving outline: its kind, top-left position and velocity (rows, cols, in pixels), and
/// the largest position that keeps it inside the frame.
struct Mover {
    kind: usize,
    pos: [f64; 2],
    vel: [f64; 2],
    room: [f64; 2],
}

impl Mover {
    /// One frame's move; at a wall the part of the move past it goes back (a mirror bounce).
    fn advance(&mut self) {
        for a in 0..2 {
            self.pos[a] += self.vel[a];
            if self.pos[a] < 0.0 {
                self.pos[a] = -self.pos[a];
                self.vel[a] = -self.vel[a];
            } else if self.pos[a] > self.room[a] {
                self.pos[a] = 2.0 * self.room[a] - self.pos[a];
                self.vel[a] = -self.vel[a];
            }
        }
    }
}

/// Sequence `index`: (binary frames, object ids with 0 = background), each (T, H, W) row-major.
pub fn sequence(seed: u64, index: u64, objects: usize, frames: usize) -> (Vec<u8>, Vec<u8>) {
    let mut r = rng(seed, &[index]);
    let mut groups = vec![0u8; frames * SIZE * SIZE];
    let mut shapes: Vec<Mover> = (0..objects)
        .map(|_| {
            let kind = r.random_range(0..3usize);
            let (h, w) = extent(kind);
            let room = [(SIZE - h) as f64, (SIZE - w) as f64];
            let pos = [r.random_range(0.0..=room[0]), r.random_range(0.0..=room[1])];
            let (angle, speed) = (r.random_range(0.0..std::f64::consts::TAU), r.random_range(1.0..2.0));
            Mover { kind, pos, vel: [speed * angle.sin(), speed * angle.cos()], room }
        })
        .collect();
    for t in 0..frames {
        let frame = &mut groups[t * SIZE * SIZE..][..SIZE * SIZE];
        for (obj, Mover { kind, pos, .. }) in shapes.iter().enumerate() {
            let (top, left) = (pos[0].round() as usize, pos[1].round() as usize);
            for (y, x) in outline(*kind) {
                frame[(top + y) * SIZE + left + x] = obj as u8 + 1;
            }
        }
        shapes.iter_mut().for_each(Mover::advance);
    }
    let features = groups.iter().map(|&g| if g > 0 { 255 } else { 0 }).collect();
    (features, groups)
}

/// `n` sequences of `frames` frames laid out time-major, (T, N, ·) as the original files: each
/// sequence gives arrays of `sizes[a]` values a frame, time first.
pub(crate) fn time_major_arrays(
    n: usize,
    frames: usize,
    sizes: &[usize],
    sequence: impl Fn(usize) -> Vec<Vec<u8>>,
) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = sizes.iter().map(|s| vec![0u8; frames * n * s]).collect();
    for i in 0..n {
        for ((array, seq), &size) in out.iter_mut().zip(sequence(i)).zip(sizes) {
            for t in 0..frames {
                let at = (t * n + i) * size;
                array[at..at + size].copy_from_slice(&seq[t * size..][..size]);
            }
        }
    }
    out
}

/// `n` sequences of `size`×`size` frames (features and groups), time-major.
fn time_major(n: usize, size: usize, sequence: impl Fn(usize) -> (Vec<u8>, Vec<u8>)) -> NemSplit {
    let frame = size * size;
    let [features, groups]: [Vec<u8>; 2] = time_major_arrays(n, FRAMES, &[frame, frame], |i| {
        let (f, g) = sequence(i);
        vec![f, g]
    })
    .try_into()
    .expect("two arrays");
    NemSplit { shape: [FRAMES, n, size, size, 1], features: Values::U8(features), groups: Some(groups), masks: vec![] }
}

/// `n` sequences from index `first` with `objects` shapes.
pub fn split(seed: u64, first: u64, n: usize, objects: usize) -> NemSplit {
    time_major(n, SIZE, |i| sequence(seed, first + i as u64, objects, FRAMES))
}

pub fn split3(seed: u64, first: u64, n: usize) -> NemSplit {
    split(seed, first, n, 3)
}
pub fn split4(seed: u64, first: u64, n: usize) -> NemSplit {
    split(seed, first, n, 4)
}
pub fn split5(seed: u64, first: u64, n: usize) -> NemSplit {
    split(seed, first, n, 5)
}

/// Flying MNIST's frame side and its digits' side (MNIST's 28 px halved by 2×2 means, so that
/// two or three digits fit a 24×24 frame; the original's sizes are not published).
pub const MNIST_SIZE: usize = 24;
const DIGIT: usize = 14;

/// Digit `i` of `digits` at half size, grey levels 0–255.
fn small_digit(digits: &Digits, i: usize) -> Vec<u8> {
    let img = digits.image(i);
    let c = digits.cols;
    (0..DIGIT * DIGIT)
        .map(|p| {
            let (y, x) = (2 * (p / DIGIT), 2 * (p % DIGIT));
            let sum: u32 = [img[y * c + x], img[y * c + x + 1], img[(y + 1) * c + x], img[(y + 1) * c + x + 1]]
                .iter()
                .map(|&v| v as u32)
                .sum();
            (sum as f32 / 4.0).round() as u8
        })
        .collect()
}

/// Flying-MNIST sequence `index`: `n` digits drawn from the first `pool` of `digits`, moving as
/// the flying shapes do; a later digit covers the earlier ones wherever its grey level is > 0,
/// and such pixels belong to it. (grey frames, object ids), each (T, H, W) row-major.
pub fn mnist_sequence(
    digits: &Digits,
    pool: usize,
    seed: u64,
    index: u64,
    n: usize,
    frames: usize,
) -> (Vec<u8>, Vec<u8>) {
    let mut r = rng(seed, &[index]);
    let room = (MNIST_SIZE - DIGIT) as f64;
    let mut movers: Vec<(Vec<u8>, Mover)> = (0..n)
        .map(|_| {
            let digit = small_digit(digits, r.random_range(0..pool.min(digits.n)));
            let pos = [r.random_range(0.0..=room), r.random_range(0.0..=room)];
            let (angle, speed) = (r.random_range(0.0..std::f64::consts::TAU), r.random_range(1.0..2.0));
            (digit, Mover { kind: 0, pos, vel: [speed * angle.sin(), speed * angle.cos()], room: [room, room] })
        })
        .collect();
    let frame = MNIST_SIZE * MNIST_SIZE;
    let (mut features, mut groups) = (vec![0u8; frames * frame], vec![0u8; frames * frame]);
    for t in 0..frames {
        for (obj, (digit, m)) in movers.iter_mut().enumerate() {
            let (top, left) = (m.pos[0].round() as usize, m.pos[1].round() as usize);
            for (p, &v) in digit.iter().enumerate().filter(|(_, v)| **v > 0) {
                let at = t * frame + (top + p / DIGIT) * MNIST_SIZE + left + p % DIGIT;
                features[at] = v;
                groups[at] = obj as u8 + 1;
            }
            m.advance();
        }
    }
    (features, groups)
}

/// `n` flying-MNIST sequences from index `first` (see [`mnist_sequence`]), time-major.
pub fn mnist_split(digits: &Digits, pool: usize, seed: u64, first: u64, n: usize, per_seq: usize) -> NemSplit {
    time_major(n, MNIST_SIZE, |i| mnist_sequence(digits, pool, seed, first + i as u64, per_seq, FRAMES))
}

/// The flying-MNIST datasets by their original file names: (digits per sequence, the training
/// digits' pool: all of MNIST for `hard`, the first 20 or 500 for the `medium` curriculum stages).
pub fn mnist_variant(name: &str) -> Option<(usize, usize)> {
    match name {
        "flying_mnist_hard_2digits" => Some((2, usize::MAX)),
        "flying_mnist_hard_3digits" => Some((3, usize::MAX)),
        "flying_mnist_medium20_2digits" => Some((2, 20)),
        "flying_mnist_medium500_2digits" => Some((2, 500)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The top-left corner of object `id` in a frame of ids (its outline's first pixel).
    fn corner(frame: &[u8], id: u8) -> Option<(usize, usize)> {
        frame.iter().position(|&g| g == id).map(|i| (i / SIZE, i % SIZE))
    }

    #[test]
    fn shapes_move_at_constant_velocity_and_stay_inside() {
        let (f, g) = sequence(3, 11, 1, FRAMES);
        assert_eq!(f, sequence(3, 11, 1, FRAMES).0);
        let frames: Vec<&[u8]> = g.chunks(SIZE * SIZE).collect();
        let n_px = frames[0].iter().filter(|&&v| v == 1).count();
        for (t, fr) in frames.iter().enumerate() {
            // One object alone is never clipped or hidden: every frame shows all its pixels.
            assert_eq!(fr.iter().filter(|&&v| v == 1).count(), n_px, "frame {t}");
        }
        // Between bounces the corner moves by the same (rounded) step; over 40 frames it moves.
        let path: Vec<(usize, usize)> = frames.iter().map(|fr| corner(fr, 1).unwrap()).collect();
        assert!(path.windows(2).all(|w| w[0].0.abs_diff(w[1].0) <= 2 && w[0].1.abs_diff(w[1].1) <= 2));
        assert!(path.iter().collect::<std::collections::BTreeSet<_>>().len() > 10);
    }

    #[test]
    fn splits_are_time_major_with_later_shapes_on_top() {
        let s = split(0, 5, 2, 4);
        assert_eq!(s.shape, [FRAMES, 2, SIZE, SIZE, 1]);
        let (f1, g1) = sequence(0, 6, 4, FRAMES);
        let g = s.groups.as_ref().unwrap();
        let frame = SIZE * SIZE;
        // Frame 7 of sample 1 (index 6) sits at (7·N + 1)·frame.
        assert_eq!(&g[(7 * 2 + 1) * frame..][..frame], &g1[7 * frame..][..frame]);
        let Values::U8(f) = &s.features else { panic!("bytes") };
        assert_eq!(&f[(7 * 2 + 1) * frame..][..frame], &f1[7 * frame..][..frame]);
        assert!(g1.iter().all(|&v| v <= 4) && f1.iter().zip(&g1).all(|(&x, &id)| (x == 255) == (id > 0)));
    }
}
