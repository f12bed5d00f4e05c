//! Multi-dSprites `colored_on_grayscale` regenerated: 64×64 RGB images of 2–5 dSprites shapes
//! (oval, heart, square) on a uniform grey background, E = 6 masks (entity 0 the background).
//! Per image: the grey level is uniform in [0, 1] (same in R, G, B); the sprite count is uniform
//! in 2..=5. Per sprite: shape uniform; colour HSV with hue in [0, 1), saturation in [0.5, 1] and
//! value in [0.7, 1] (so never grey, and told apart from the background); scale uniform in
//! [0.5, 1] of a BASE-pixel box; rotation uniform in [0, 2π); centre uniform in [0.1, 0.9]·64 on
//! each axis, so most of the sprite is inside. Sprites are drawn in order, later ones on top, as
//! in the original, so a sprite may be fully hidden (its mask is then all 0). Pure in (seed, index).
use crate::data::emorl::EmorlSplit;
use crate::util::rng;
use rand::RngExt;
use std::f64::consts::TAU;

pub const SIZE: usize = 64;
/// Background plus up to five sprites.
pub const ENTITIES: usize = 6;
/// Side in pixels of a sprite's box at scale 1 (the dSprites shapes fill about a third of the image).
const BASE: f64 = 22.0;
/// Minor to major axis of the oval.
const OVAL_RATIO: f64 = 0.6;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    Oval,
    Heart,
    Square,
}

#[derive(Debug, Clone, PartialEq)]
struct Sprite {
    shape: Shape,
    colour: [u8; 3],
    /// Half the box side in pixels.
    half: f64,
    angle: f64,
    /// Centre (y, x) in pixels.
    centre: (f64, f64),
}

impl Sprite {
    /// Whether the pixel centre (y, x) is inside: it is taken to the sprite's unit box [-1, 1]²
    /// (undoing translation, rotation and scale) and tested against the implicit shape there.
    fn covers(&self, y: usize, x: usize) -> bool {
        let (dy, dx) = (y as f64 + 0.5 - self.centre.0, x as f64 + 0.5 - self.centre.1);
        let (s, c) = self.angle.sin_cos();
        let (u, v) = ((c * dx + s * dy) / self.half, (c * dy - s * dx) / self.half);
        match self.shape {
            Shape::Oval => u * u + (v / OVAL_RATIO).powi(2) <= 1.0,
            Shape::Square => u.abs() <= 1.0 && v.abs() <= 1.0,
            // (x² + y² − 1)³ − x²y³ ≤ 0 spans x ∈ [−1.14, 1.14], y ∈ [−1, 1.24]; this map fits it
            // into the box (image v points down, the curve's y up, so the lobes end up on top).
            Shape::Heart => {
                let (hx, hy) = (1.2 * u, 0.12 - 1.2 * v);
                (hx * hx + hy * hy - 1.0).powi(3) - hx * hx * hy.powi(3) <= 0.0
            }
        }
    }
}

/// A saturated colour from HSV in [0, 1] (the standard piecewise-linear conversion).
fn hsv(h: f64, s: f64, v: f64) -> [u8; 3] {
    let f = |n: f64| {
        let k = (n + h * 6.0) % 6.0;
        v - v * s * k.min(4.0 - k).clamp(0.0, 1.0)
    };
    [f(5.0), f(3.0), f(1.0)].map(|c| (c * 255.0).round() as u8)
}

/// The grey level and the sprites (bottom first) of image `index`.
fn scene(seed: u64, index: u64) -> (u8, Vec<Sprite>) {
    let mut r = rng(seed, &[index]);
    let grey = (r.random::<f64>() * 255.0).round() as u8;
    let count = r.random_range(2..ENTITIES);
    let sprites = (0..count)
        .map(|_| Sprite {
            shape: [Shape::Oval, Shape::Heart, Shape::Square][r.random_range(0..3)],
            colour: hsv(r.random(), r.random_range(0.5..=1.0), r.random_range(0.7..=1.0)),
            half: BASE / 2.0 * r.random_range(0.5..=1.0),
            angle: r.random::<f64>() * TAU,
            centre: (r.random_range(0.1..=0.9) * SIZE as f64, r.random_range(0.1..=0.9) * SIZE as f64),
        })
        .collect();
    (grey, sprites)
}

/// Image `index` of the dataset with `seed`: (pixels H·W·3, masks E·H·W with 0/255).
pub fn sample(seed: u64, index: u64) -> (Vec<u8>, Vec<u8>) {
    let (grey, sprites) = scene(seed, index);
    // Owner of each pixel: the last sprite covering it (1-based), or 0 for the background.
    let ids: Vec<usize> = (0..SIZE * SIZE)
        .map(|p| sprites.iter().rposition(|s| s.covers(p / SIZE, p % SIZE)).map_or(0, |j| j + 1))
        .collect();
    super::emorl::render(&ids, ENTITIES, |id| if id == 0 { [grey; 3] } else { sprites[id - 1].colour })
}

/// `n` images starting at index `first`.
pub fn split(seed: u64, first: u64, n: usize) -> EmorlSplit {
    super::emorl::generated_split(sample, SIZE, ENTITIES, seed, first, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::emorl::{read_emorl, write_emorl};

    const HW: usize = SIZE * SIZE;

    #[test]
    fn samples_are_deterministic_per_seed() {
        assert_eq!(sample(3, 11), sample(3, 11));
        assert_ne!(sample(3, 11), sample(4, 11));
        assert_ne!(sample(3, 11), sample(3, 12));
        let s = split(3, 10, 2);
        assert_eq!((s.n, s.h, s.w, s.e), (2, SIZE, SIZE, ENTITIES));
        assert_eq!(s.imgs[HW * 3..], sample(3, 11).0[..]);
        assert_eq!(s.masks[ENTITIES * HW..], sample(3, 11).1[..]);
    }

    #[test]
    fn masks_partition_a_grey_background_and_coloured_sprites_and_all_shapes_appear() {
        let mut seen = Vec::new();
        for i in 0..100 {
            let (grey, sprites) = scene(5, i);
            assert!((2..=5).contains(&sprites.len()), "image {i} has {} sprites", sprites.len());
            let (img, masks) = sample(5, i);
            assert_eq!((img.len(), masks.len()), (HW * 3, ENTITIES * HW));
            assert!(masks.iter().all(|&m| m == 0 || m == 255));
            for p in 0..HW {
                let owners: Vec<usize> = (0..ENTITIES).filter(|&e| masks[e * HW + p] == 255).collect();
                assert_eq!(owners.len(), 1, "pixel {p} of image {i} is in masks {owners:?}");
                let rgb: [u8; 3] = img[p * 3..p * 3 + 3].try_into().unwrap();
                let want = if owners[0] == 0 { [grey; 3] } else { sprites[owners[0] - 1].colour };
                assert_eq!(rgb, want, "pixel {p} of image {i} (entity {})", owners[0]);
            }
            for (j, s) in sprites.iter().enumerate() {
                assert_ne!(s.colour[0..2], [s.colour[2]; 2], "sprite colours are never grey");
                if masks[(j + 1) * HW..][..HW].contains(&255) && !seen.contains(&s.shape) {
                    seen.push(s.shape);
                }
            }
            assert!(masks[(sprites.len() + 1) * HW..].iter().all(|&m| m == 0), "absent sprites of image {i}");
        }
        assert_eq!(seen.len(), 3, "visible shapes: {seen:?}");
    }

    #[test]
    fn a_split_round_trips_through_an_emorl_file() {
        let path = std::env::temp_dir().join(format!("gestalt-msprites-{}.h5", std::process::id()));
        let s = split(9, 0, 5);
        write_emorl(&path, &[("train", &s)]).unwrap();
        let back = read_emorl(&path, "train", None, true);
        std::fs::remove_file(&path).ok();
        assert_eq!(back.unwrap(), s);
    }

    /// Writes four samples side by side, 4× enlarged, for a person to look at the shapes.
    #[test]
    #[ignore]
    fn save_check_picture() {
        let imgs: Vec<Vec<u8>> = (0..4).map(|i| sample(1, i).0).collect();
        let strip = image::RgbImage::from_fn(4 * SIZE as u32, SIZE as u32, |x, y| {
            let p = (y as usize * SIZE + x as usize % SIZE) * 3;
            image::Rgb(imgs[x as usize / SIZE][p..p + 3].try_into().unwrap())
        });
        let big =
            image::imageops::resize(&strip, 16 * SIZE as u32, 4 * SIZE as u32, image::imageops::FilterType::Nearest);
        big.save("/tmp/msprites_check.png").unwrap();
    }
}
