//! `invaders84`: a procedural, action-conditioned stand-in for R-NEM's Space Invaders files
//! (which cannot be made here), in the Atari layout: 84×84 binary frames, `groups`, and one-hot
//! `actions` (T, N, 4). A ship at the bottom moves by the recorded action (no-op, left, right,
//! fire); fire launches a bullet when none is in flight; five invaders march as a block, bounce off
//! the walls one row lower, and vanish when a bullet hits them. Actions are drawn at random and
//! kept for a few frames, as a player holds a key. The action of frame t acts between frames t and
//! t + 1. Sequence i is a pure function of (seed, i).
use super::flying::time_major_arrays;
use super::h5::{Mask, NemSplit, Values};
use crate::util::rng;
use rand::RngExt;

pub const SIZE: usize = 84;
pub const ACTIONS: usize = 4;
pub const FRAMES: usize = 51;
const INVADERS: usize = 5;
/// Sprite sizes (rows, cols) and speeds in pixels a frame.
const SHIP: [usize; 2] = [4, 7];
const INVADER: [usize; 2] = [4, 6];
const BULLET: [usize; 2] = [3, 1];
const SHIP_ROW: usize = 76;
const SHIP_SPEED: i64 = 2;
const BULLET_SPEED: i64 = 4;

struct World {
    ship: i64,
    /// Top-left of the block; invader j sits at column `left + 12 j`.
    block: [i64; 2],
    dir: i64,
    alive: [bool; INVADERS],
    bullet: Option<[i64; 2]>,
}

impl World {
    /// One frame under `action` (0 no-op, 1 left, 2 right, 3 fire).
    fn advance(&mut self, action: usize) {
        let room = (SIZE - SHIP[1]) as i64;
        match action {
            1 => self.ship = (self.ship - SHIP_SPEED).max(0),
            2 => self.ship = (self.ship + SHIP_SPEED).min(room),
            3 if self.bullet.is_none() => self.bullet = Some([SHIP_ROW as i64 - BULLET[0] as i64, self.ship + 3]),
            _ => {}
        }
        let width = 12 * (INVADERS as i64 - 1) + INVADER[1] as i64;
        let left = self.block[1] + self.dir;
        if left < 0 || left + width > SIZE as i64 {
            self.dir = -self.dir;
            self.block[0] += 3;
        } else {
            self.block[1] = left;
        }
        if let Some([r, c]) = self.bullet {
            let r = r - BULLET_SPEED;
            self.bullet = (r >= 0).then_some([r, c]);
            for j in 0..INVADERS {
                let [ir, ic] = self.invader(j);
                let hit = self.alive[j]
                    && (ir..ir + INVADER[0] as i64).contains(&(r + 1))
                    && (ic..ic + INVADER[1] as i64).contains(&c);
                if hit && self.bullet.is_some() {
                    self.alive[j] = false;
                    self.bullet = None;
                }
            }
        }
    }

    fn invader(&self, j: usize) -> [i64; 2] {
        [self.block[0], self.block[1] + 12 * j as i64]
    }

    /// Object ids: ship 1, invaders 2–6, bullet 7 (0 = background).
    fn render(&self) -> Vec<u8> {
        let mut ids = vec![0u8; SIZE * SIZE];
        let mut fill = |[r, c]: [i64; 2], [h, w]: [usize; 2], id: u8| {
            for y in r.max(0)..(r + h as i64).min(SIZE as i64) {
                for x in c.max(0)..(c + w as i64).min(SIZE as i64) {
                    ids[y as usize * SIZE + x as usize] = id;
                }
            }
        };
        fill([SHIP_ROW as i64, self.ship], SHIP, 1);
        for j in (0..INVADERS).filter(|&j| self.alive[j]) {
            fill(self.invader(j), INVADER, 2 + j as u8);
        }
        if let Some(b) = self.bullet {
            fill(b, BULLET, 7);
        }
        ids
    }
}

/// Sequence `index`: (frames, object ids, one-hot actions), each time first.
pub fn sequence(seed: u64, index: u64) -> [Vec<u8>; 3] {
    let mut r = rng(seed, &[index]);
    let mut world = World {
        ship: r.random_range(0..=(SIZE - SHIP[1]) as i64),
        block: [r.random_range(4..12), r.random_range(0..20)],
        dir: if r.random_bool(0.5) { 1 } else { -1 },
        alive: [true; INVADERS],
        bullet: None,
    };
    let frame = SIZE * SIZE;
    let (mut groups, mut actions) = (vec![0u8; FRAMES * frame], vec![0u8; FRAMES * ACTIONS]);
    let mut action = 0;
    for t in 0..FRAMES {
        groups[t * frame..][..frame].copy_from_slice(&world.render());
        if r.random_bool(0.3) {
            action = r.random_range(0..ACTIONS);
        }
        actions[t * ACTIONS + action] = 1;
        world.advance(action);
    }
    let features = groups.iter().map(|&g| if g > 0 { 255 } else { 0 }).collect();
    [features, groups, actions]
}

/// `n` sequences from index `first`.
pub fn split(seed: u64, first: u64, n: usize) -> NemSplit {
    let frame = SIZE * SIZE;
    let [features, groups, actions]: [Vec<u8>; 3] =
        time_major_arrays(n, FRAMES, &[frame, frame, ACTIONS], |i| sequence(seed, first + i as u64).into())
            .try_into()
            .expect("three arrays");
    NemSplit {
        shape: [FRAMES, n, SIZE, SIZE, 1],
        features: Values::U8(features),
        groups: Some(groups),
        masks: vec![Mask { name: "actions".into(), dims: vec![ACTIONS], values: actions }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ship_follows_the_recorded_actions() {
        let [_, groups, actions] = sequence(5, 2);
        let frame = SIZE * SIZE;
        let ship_left = |t: usize| (0..SIZE).find(|&x| groups[t * frame + SHIP_ROW * SIZE + x] == 1).unwrap() as i64;
        let mut fired = false;
        for t in 0..FRAMES - 1 {
            let a = (0..ACTIONS).find(|&a| actions[t * ACTIONS + a] == 1).unwrap();
            assert_eq!(actions[t * ACTIONS..][..ACTIONS].iter().map(|&v| v as usize).sum::<usize>(), 1);
            let moved = ship_left(t + 1) - ship_left(t);
            match a {
                1 => assert!(moved == -SHIP_SPEED || ship_left(t) < SHIP_SPEED, "t {t}"),
                2 => assert!(moved == SHIP_SPEED || ship_left(t + 1) == (SIZE - SHIP[1]) as i64, "t {t}"),
                _ => assert_eq!(moved, 0, "t {t}"),
            }
            fired |= a == 3 && groups[(t + 1) * frame..][..frame].contains(&7);
        }
        assert!(fired, "a fire action launches a bullet");
        assert_eq!(sequence(5, 2), sequence(5, 2));
        let s = split(5, 0, 3);
        assert_eq!(s.masks[0].values.len(), FRAMES * 3 * ACTIONS);
    }
}
