//! Bouncing balls for R-NEM: 2-D elastic collisions between balls of different masses and with
//! the walls, rendered as 64×64 binary frames. The original's simulator and its parameters are
//! not published; these are gestalt's: equal radii (mass is not visible, so a model must infer
//! it from collisions), masses drawn from {1, 2, 3}, speeds 1–3 px a frame, ten sub-steps a frame.
//! Sequence i is a pure function of (seed, i).
use crate::util::rng;
use rand::RngExt;

pub const SIZE: usize = 64;
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
    for (k, b) in balls.iter().enumerate() {
        for (p, id) in ids.iter_mut().enumerate() {
            let (y, x) = ((p / SIZE) as f64 + 0.5, (p % SIZE) as f64 + 0.5);
            if (y - b.pos[0]).powi(2) + (x - b.pos[1]).powi(2) <= RADIUS * RADIUS {
                *id = k as u8 + 1;
            }
        }
    }
    ids
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
}
