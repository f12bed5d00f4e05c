//! The `shapes24` dataset of the minimal N-EM system (seed 003): 24×24 binary images with three
//! filled shapes from {square, disc, up-triangle}, half-size 2–4 px. Overlap is light: a placement
//! is redrawn (up to 20 tries) while it would cover more than 20% of its own area or of any
//! earlier shape's visible pixels. Later shapes are drawn on top. Pure in (seed, index).
use crate::data::h5::NemSplit;
use crate::util::rng;
use rand::RngExt;

pub const SIZE: usize = 24;
const MAX_OVERLAP: f64 = 0.2;
const TRIES: usize = 20;

/// Pixels (row, col) of a shape of `kind` with half-size `s` centred at (cy, cx).
fn shape(kind: usize, s: i64, cy: i64, cx: i64) -> Vec<usize> {
    let mut px = Vec::new();
    for dy in -s..=s {
        for dx in -s..=s {
            let inside = match kind {
                0 => true,
                // A disc of radius s + ½ looks round at these sizes.
                1 => (dy * dy + dx * dx) as f64 <= (s as f64 + 0.5).powi(2),
                // Apex on top, base of width 2s + 1 at the bottom.
                _ => 2 * dx.abs() <= dy + s,
            };
            if inside {
                px.push(((cy + dy) * SIZE as i64 + cx + dx) as usize);
            }
        }
    }
    px
}

/// Image `index` of the dataset with `seed`: (binary pixels, object ids with 0 = background).
pub fn sample(seed: u64, index: u64) -> (Vec<f32>, Vec<f32>) {
    let mut r = rng(seed, &[index]);
    let mut groups = vec![0u32; SIZE * SIZE];
    for obj in 1..=3u32 {
        let mut px = Vec::new();
        for _ in 0..TRIES {
            let kind = r.random_range(0..3usize);
            let s = r.random_range(2..=4i64);
            let (cy, cx) = (r.random_range(s..SIZE as i64 - s), r.random_range(s..SIZE as i64 - s));
            px = shape(kind, s, cy, cx);
            if light_overlap(&groups, &px, obj) {
                break;
            }
        }
        for &i in &px {
            groups[i] = obj;
        }
    }
    let features = groups.iter().map(|&g| if g > 0 { 1.0 } else { 0.0 }).collect();
    (features, groups.into_iter().map(|g| g as f32).collect())
}

/// Whether drawing `px` keeps at most MAX_OVERLAP of it, and of every earlier shape, overlapped.
fn light_overlap(groups: &[u32], px: &[usize], obj: u32) -> bool {
    let covered = |o: u32| px.iter().filter(|&&i| groups[i] == o).count();
    let hit = px.iter().filter(|&&i| groups[i] > 0).count();
    hit as f64 <= MAX_OVERLAP * px.len() as f64
        && (1..obj).all(|o| {
            let visible = groups.iter().filter(|&&g| g == o).count();
            covered(o) as f64 <= MAX_OVERLAP * visible as f64
        })
}

/// `n` images starting at `first` as an N-EM split with T = 1.
pub fn split(seed: u64, first: u64, n: usize) -> NemSplit {
    super::static_split(sample, SIZE, seed, first, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_deterministic_with_three_visible_objects() {
        assert_eq!(sample(3, 11), sample(3, 11));
        assert_ne!(sample(3, 11).1, sample(4, 11).1);
        for i in 0..200 {
            let (f, g) = sample(5, i);
            for (f, g) in f.iter().zip(&g) {
                assert_eq!(*f > 0.5, *g > 0.5);
            }
            let ids: std::collections::BTreeSet<u32> = g.iter().map(|&g| g as u32).collect();
            assert_eq!(ids.len(), 4, "background and three objects in image {i}");
        }
    }

    #[test]
    fn foreground_fraction_is_about_a_fifth() {
        let s = split(0, 0, 500);
        let f = s.features.to_f32();
        let fg = f.iter().sum::<f32>() as f64 / f.len() as f64;
        assert!((0.15..0.27).contains(&fg), "foreground fraction {fg}");
    }

    #[test]
    fn shapes_have_the_expected_areas() {
        assert_eq!(shape(0, 3, 10, 10).len(), 49);
        assert_eq!(shape(1, 2, 10, 10).len(), 21);
        // Triangle of half-size 2: rows of width 1, 1, 3, 3, 5.
        assert_eq!(shape(2, 2, 10, 10).len(), 13);
    }
}
