//! The static `shapes` dataset: 28×28 binary images, three shape outlines each, drawn from
//! square, up-triangle and down-triangle at random positions; overlaps allowed. Later shapes
//! are drawn on top, so a pixel belongs to the last shape that covers it. Pure in (seed, index).
use crate::data::h5::NemSplit;
use crate::util::rng;
use rand::RngExt;

pub const SIZE: usize = 28;
const SQUARE: usize = 9; // side of the square outline
const TRI_H: usize = 8; // height of a triangle outline (base 2·TRI_H − 1)

/// The pixels (row, col) of one shape outline with its top-left corner at the origin.
pub(crate) fn outline(kind: usize) -> Vec<(usize, usize)> {
    let mut px = Vec::new();
    match kind {
        0 => {
            for i in 0..SQUARE {
                px.extend([(0, i), (SQUARE - 1, i), (i, 0), (i, SQUARE - 1)]);
            }
        }
        _ => {
            let w = 2 * TRI_H - 1;
            for r in 0..TRI_H {
                // Up-triangle: apex on top; down-triangle: the mirror image.
                let row = if kind == 1 { r } else { TRI_H - 1 - r };
                let (l, rt) = (TRI_H - 1 - r, TRI_H - 1 + r);
                if r == TRI_H - 1 {
                    px.extend((0..w).map(|c| (row, c)));
                } else {
                    px.extend([(row, l), (row, rt)]);
                }
            }
        }
    }
    px.sort_unstable();
    px.dedup();
    px
}

pub(crate) fn extent(kind: usize) -> (usize, usize) {
    if kind == 0 { (SQUARE, SQUARE) } else { (TRI_H, 2 * TRI_H - 1) }
}

/// Image `index` of the dataset with `seed`: (binary pixels, object ids with 0 = background).
pub fn sample(seed: u64, index: u64) -> (Vec<f32>, Vec<f32>) {
    let mut r = rng(seed, &[index]);
    let mut groups = vec![0f32; SIZE * SIZE];
    for obj in 1..=3 {
        let kind = r.random_range(0..3usize);
        let (h, w) = extent(kind);
        let (top, left) = (r.random_range(0..=SIZE - h), r.random_range(0..=SIZE - w));
        for (y, x) in outline(kind) {
            groups[(top + y) * SIZE + left + x] = obj as f32;
        }
    }
    let features = groups.iter().map(|&g| if g > 0.0 { 1.0 } else { 0.0 }).collect();
    (features, groups)
}

/// `n` images starting at `first` as an N-EM split with T = 1.
pub fn split(seed: u64, first: u64, n: usize) -> NemSplit {
    super::static_split(sample, SIZE, seed, first, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_deterministic_and_have_three_objects() {
        let (f1, g1) = sample(7, 3);
        let (f2, g2) = sample(7, 3);
        assert_eq!((f1.clone(), g1.clone()), (f2, g2));
        assert_ne!(sample(8, 3).1, g1);
        // Every foreground pixel carries an object id and every object id appears somewhere
        // (an object can be hidden completely only if drawn over exactly; allow ≥ 2 ids).
        for (f, g) in f1.iter().zip(&g1) {
            assert_eq!(*f > 0.5, *g > 0.5);
        }
        let ids: std::collections::BTreeSet<u32> = g1.iter().map(|&g| g as u32).collect();
        assert!(ids.len() >= 3, "background plus at least two objects: {ids:?}");
    }

    #[test]
    fn outlines_have_the_expected_pixel_counts() {
        assert_eq!(outline(0).len(), 4 * (SQUARE - 1));
        // Two slanted edges of TRI_H − 1 pixels each meeting at the apex, plus the base.
        assert_eq!(outline(1).len(), 2 * (TRI_H - 1) - 1 + 2 * TRI_H - 1);
        assert_eq!(outline(1).len(), outline(2).len());
    }
}
