//! Bouncing balls for R-NEM: 2-D elastic collisions between balls of different masses and with
//! the walls, rendered as 64×64 binary frames. The original's simulator and its parameters are
//! not published; these are gestalt's: equal radii (mass is not visible, so a model must infer
//! it from collisions), masses drawn from {1, 2, 3}, speeds 1–3 px a frame, ten sub-steps a frame.
//! Sequence i is a pure function of (seed, i). The files hold `features`, `groups`,
//! `collisions` (1 on the pixels of balls that hit another ball while moving into that frame)
//! and `events` (1 when any ball did), each (T, N, H, W, 1) with 1 × 1 frames for `events`.
use super::flying::time_major_arrays;
use super::h5::{Mask, NemSplit, Values};
use crate::util::rng;
use rand::RngExt;

pub const SIZE: usize = 64;
/// Frames per sequence: 30 EM steps need 31, a rollout of 20 after 30 needs 51.
pub const FRAMES: usize = 51;
/// The curtain of `balls3curtain64`: a white band over these columns, in front of the balls.
pub const CURTAIN: std::ops::Range<usize> = 26..38;
pub const RADIUS: f64 = 4.5;
const SUBSTEPS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ball {
    /// Centre (row, col) in pixels, inside [RADIUS, SIZE − RADIUS]².
    pub pos: [f64; 2],
    /// Pixels a frame.
    pub vel: [f64; 2],
    pub mass: f64,
}

/// Total kinetic energy and momentum (conserved by every collision; walls flip momentum).
pub fn energy(balls: &[Ball]) -> f64 {
    balls.iter().map(|b| 0.5 * b.mass * (b.vel[0].powi(2) + b.vel[1].powi(2))).sum()
}

pub fn momentum(balls: &[Ball]) -> [f64; 2] {
    [0, 1].map(|a| balls.iter().map(|b| b.mass * b.vel[a]).sum())
}

/// An elastic collision of balls i and j if they touch and approach: the velocity components
/// along the line of centres are exchanged as masses dictate. Returns whether they collided.
fn collide(balls: &mut [Ball], i: usize, j: usize) -> bool {
    let (a, b) = (balls[i], balls[j]);
    let d = [a.pos[0] - b.pos[0], a.pos[1] - b.pos[1]];
    let dist = (d[0] * d[0] + d[1] * d[1]).sqrt();
    if dist >= 2.0 * RADIUS || dist == 0.0 {
        return false;
    }
    let n = [d[0] / dist, d[1] / dist];
    let approach = (a.vel[0] - b.vel[0]) * n[0] + (a.vel[1] - b.vel[1]) * n[1];
    if approach >= 0.0 {
        return false; // already separating
    }
    let total = a.mass + b.mass;
    for (ax, n_ax) in n.iter().enumerate() {
        balls[i].vel[ax] -= 2.0 * b.mass / total * approach * n_ax;
        balls[j].vel[ax] += 2.0 * a.mass / total * approach * n_ax;
    }
    true
}

/// One frame of motion: sub-steps of moving, mirror bounces off the walls and ball–ball
/// collisions. Returns, per ball, whether it collided with another ball during the frame.
pub fn advance(balls: &mut [Ball]) -> Vec<bool> {
    let mut hit = vec![false; balls.len()];
    let (lo, hi) = (RADIUS, SIZE as f64 - RADIUS);
    for _ in 0..SUBSTEPS {
        for b in balls.iter_mut() {
            for a in 0..2 {
                b.pos[a] += b.vel[a] / SUBSTEPS as f64;
                if b.pos[a] < lo {
                    b.pos[a] = 2.0 * lo - b.pos[a];
                    b.vel[a] = b.vel[a].abs();
                } else if b.pos[a] > hi {
                    b.pos[a] = 2.0 * hi - b.pos[a];
                    b.vel[a] = -b.vel[a].abs();
                }
            }
        }
        for i in 0..balls.len() {
            for j in i + 1..balls.len() {
                if collide(balls, i, j) {
                    hit[i] = true;
                    hit[j] = true;
                }
            }
        }
    }
    hit
}

/// `n` balls placed without overlap, random directions and masses.
pub fn initial(seed: u64, index: u64, n: usize) -> Vec<Ball> {
    let mut r = rng(seed, &[index]);
    let mut balls: Vec<Ball> = Vec::with_capacity(n);
    while balls.len() < n {
        let pos = [0, 1].map(|_| r.random_range(RADIUS..SIZE as f64 - RADIUS));
        if balls.iter().any(|b| ((b.pos[0] - pos[0]).powi(2) + (b.pos[1] - pos[1]).powi(2)).sqrt() < 2.0 * RADIUS + 1.0)
        {
            continue;
        }
        let (angle, speed) = (r.random_range(0.0..std::f64::consts::TAU), r.random_range(1.0..3.0));
        let mass = [1.0, 2.0, 3.0][r.random_range(0..3usize)];
        balls.push(Ball { pos, vel: [speed * angle.sin(), speed * angle.cos()], mass });
    }
    balls
}

/// Object ids of a frame (0 = background; later balls on top): pixel centres within the radius.
pub fn render(balls: &[Ball]) -> Vec<u8> {
    let mut ids = vec![0u8; SIZE * SIZE];
    // Only the pixels of each ball's bounding box can be inside it.
    let span = |c: f64| (c - RADIUS).floor().max(0.0) as usize..((c + RADIUS).ceil() as usize).min(SIZE);
    for (k, b) in balls.iter().enumerate() {
        for row in span(b.pos[0]) {
            for col in span(b.pos[1]) {
                let (y, x) = (row as f64 + 0.5, col as f64 + 0.5);
                if (y - b.pos[0]).powi(2) + (x - b.pos[1]).powi(2) <= RADIUS * RADIUS {
                    ids[row * SIZE + col] = k as u8 + 1;
                }
            }
        }
    }
    ids
}

/// Sequence `index` with `n` balls: (frames, object ids, per-pixel collisions, per-frame
/// events), each time first. With `curtain`, the band is drawn over the balls as object n + 1.
pub fn sequence(seed: u64, index: u64, n: usize, curtain: bool) -> [Vec<u8>; 4] {
    let mut balls = initial(seed, index, n);
    let frame = SIZE * SIZE;
    let (mut groups, mut collisions) = (vec![0u8; FRAMES * frame], vec![0u8; FRAMES * frame]);
    let mut events = vec![0u8; FRAMES];
    for t in 0..FRAMES {
        let hit = if t == 0 { vec![false; n] } else { advance(&mut balls) };
        let mut ids = render(&balls);
        if curtain {
            for row in ids.chunks_mut(SIZE) {
                row[CURTAIN].fill(n as u8 + 1);
            }
        }
        for (p, &id) in ids.iter().enumerate() {
            collisions[t * frame + p] = (id > 0 && (id as usize) <= n && hit[id as usize - 1]) as u8;
        }
        events[t] = hit.iter().any(|&h| h) as u8;
        groups[t * frame..][..frame].copy_from_slice(&ids);
    }
    let features = groups.iter().map(|&g| if g > 0 { 255 } else { 0 }).collect();
    [features, groups, collisions, events]
}

/// `count` sequences from index `first`; sequence i has `balls(i)` balls.
fn split(seed: u64, first: u64, count: usize, balls: impl Fn(u64) -> usize, curtain: bool) -> NemSplit {
    let frame = SIZE * SIZE;
    let [features, groups, collisions, events]: [Vec<u8>; 4] =
        time_major_arrays(count, FRAMES, &[frame, frame, frame, 1], |i| {
            let index = first + i as u64;
            sequence(seed, index, balls(index), curtain).into()
        })
        .try_into()
        .expect("four arrays");
    NemSplit {
        shape: [FRAMES, count, SIZE, SIZE, 1],
        features: Values::U8(features),
        groups: Some(groups),
        masks: vec![
            Mask { name: "collisions".into(), dims: vec![SIZE, SIZE, 1], values: collisions },
            Mask { name: "events".into(), dims: vec![1, 1, 1], values: events },
        ],
    }
}

/// `balls4mass64`: four balls.
pub fn split4(seed: u64, first: u64, n: usize) -> NemSplit {
    split(seed, first, n, |_| 4, false)
}

/// `balls678mass64`: six to eight balls (the extrapolation test).
pub fn split678(seed: u64, first: u64, n: usize) -> NemSplit {
    split(seed, first, n, |i| 6 + rng(seed, &[i, 678]).random_range(0..3usize), false)
}

/// `balls3curtain64`: three balls behind a curtain.
pub fn split_curtain(seed: u64, first: u64, n: usize) -> NemSplit {
    split(seed, first, n, |_| 3, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_on_collision_conserves_momentum_and_energy() {
        // Masses 1 and 3 meeting head-on: 1-D elastic collision values by hand.
        let mut balls = vec![
            Ball { pos: [32.0, 20.0], vel: [0.0, 2.0], mass: 1.0 },
            Ball { pos: [32.0, 30.0], vel: [0.0, -1.0], mass: 3.0 },
        ];
        let (e0, p0) = (energy(&balls), momentum(&balls));
        let mut collided = false;
        for _ in 0..5 {
            collided |= advance(&mut balls).iter().all(|&h| h);
        }
        assert!(collided);
        // v1' = ((m1 − m2) v1 + 2 m2 v2) / (m1 + m2) = (−2·2 − 6)/4 = −2.5; v2' = (2·2 + 2·(−1))/4 = 0.5.
        assert!((balls[0].vel[1] + 2.5).abs() < 1e-9 && (balls[1].vel[1] - 0.5).abs() < 1e-9, "{balls:?}");
        assert!((energy(&balls) - e0).abs() < 1e-9);
        assert!((momentum(&balls)[1] - p0[1]).abs() < 1e-9);
    }

    #[test]
    fn energy_is_conserved_and_balls_stay_inside() {
        let mut balls = initial(7, 3, 6);
        let e0 = energy(&balls);
        let mut collisions = 0;
        for _ in 0..200 {
            collisions += advance(&mut balls).iter().filter(|&&h| h).count();
            for b in &balls {
                assert!(b.pos.iter().all(|&c| (RADIUS..=SIZE as f64 - RADIUS).contains(&c)), "{b:?}");
            }
        }
        assert!(collisions > 0, "six balls for 200 frames collide");
        assert!((energy(&balls) - e0).abs() < 1e-9 * e0);
        assert_eq!(initial(7, 3, 6), initial(7, 3, 6));
        let ids = render(&balls);
        assert!((1..=6).all(|k| ids.contains(&k)) || balls.len() < 6);
    }

    #[test]
    fn files_mark_collisions_on_the_colliding_balls() {
        let s = split678(3, 10, 4);
        assert_eq!(s.shape, [FRAMES, 4, SIZE, SIZE, 1]);
        let (groups, [collisions, events]) = (s.groups.as_ref().unwrap(), [&s.masks[0].values, &s.masks[1].values]);
        let frame = SIZE * SIZE;
        let mut any = false;
        for t in 0..FRAMES {
            for i in 0..4 {
                let at = (t * 4 + i) * frame;
                let (g, c) = (&groups[at..at + frame], &collisions[at..at + frame]);
                // Collision pixels are ball pixels, and a frame has them exactly when it has an event.
                assert!(g.iter().zip(c).all(|(&g, &c)| c == 0 || g > 0));
                assert_eq!(c.contains(&1), events[t * 4 + i] == 1, "t {t} sequence {i}");
                any |= events[t * 4 + i] == 1;
            }
        }
        assert!(any, "6–8 balls over 51 frames collide");
        let n = |i: usize| *groups[i * frame..(i + 1) * frame].iter().max().unwrap();
        assert!((0..4).all(|i| (6..=8).contains(&n(i))));
        let c = split_curtain(3, 0, 1);
        assert!(c.groups.unwrap()[..SIZE].iter().enumerate().all(|(x, &g)| CURTAIN.contains(&x) == (g == 4)));
    }
}
