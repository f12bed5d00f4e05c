//! `flying_shapes`: sequences of 28×28 binary frames in which the static `shapes` outlines
//! (square, up- and down-triangle) move with constant velocity and bounce off the walls; overlap
//! is allowed and later shapes are drawn on top. The original's generator is not published; the
//! motion here (speed 1–2 px a frame in a uniform direction, mirror bounces) is gestalt's.
//! Sequence i is a pure function of (seed, i).
use super::h5::{NemSplit, Values};
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
        for (obj, Mover { kind, pos, vel, room }) in shapes.iter_mut().enumerate() {
            let (top, left) = (pos[0].round() as usize, pos[1].round() as usize);
            for (y, x) in outline(*kind) {
                frame[(top + y) * SIZE + left + x] = obj as u8 + 1;
            }
            for a in 0..2 {
                pos[a] += vel[a];
                // Mirror at the walls: the part of the move past a wall goes back.
                if pos[a] < 0.0 {
                    pos[a] = -pos[a];
                    vel[a] = -vel[a];
                } else if pos[a] > room[a] {
                    pos[a] = 2.0 * room[a] - pos[a];
                    vel[a] = -vel[a];
                }
            }
        }
    }
    let features = groups.iter().map(|&g| if g > 0 { 255 } else { 0 }).collect();
    (features, groups)
}

/// `n` sequences from index `first` with `objects` shapes, time-major (T, N, H, W, 1).
pub fn split(seed: u64, first: u64, n: usize, objects: usize) -> NemSplit {
    let frame = SIZE * SIZE;
    let mut features = vec![0u8; FRAMES * n * frame];
    let mut groups = vec![0u8; FRAMES * n * frame];
    for i in 0..n {
        let (f, g) = sequence(seed, first + i as u64, objects, FRAMES);
        for t in 0..FRAMES {
            let at = (t * n + i) * frame;
            features[at..at + frame].copy_from_slice(&f[t * frame..][..frame]);
            groups[at..at + frame].copy_from_slice(&g[t * frame..][..frame]);
        }
    }
    NemSplit { shape: [FRAMES, n, SIZE, SIZE, 1], features: Values::U8(features), groups: Some(groups) }
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
