//! The DeepMind Tetrominoes dataset regenerated: 35×35 RGB images with three tetrominoes on black,
//! E = 4 masks (entity 0 the background). Shapes are the 17 fixed tetrominoes other than I, made of
//! 5×5-pixel cells, in one of 6 saturated colours. As in the original, tetrominoes do not overlap:
//! each is drawn (shape, colour, top-left pixel) uniformly until it fits beside the earlier ones.
//! Pure in (seed, index).
use crate::data::emorl::EmorlSplit;
use crate::util::rng;
use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;
use std::sync::LazyLock;

pub const SIZE: usize = 35;
/// Background plus three tetrominoes.
pub const ENTITIES: usize = 4;
const CELL: usize = 5;
/// Draws per tetromino before the image is restarted from a fresh stream.
const TRIES: usize = 100;
const COLOURS: [[u8; 3]; 6] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255], [0, 255, 255]];
/// O, T, S, Z, J, L; their rotations make up the rest.
const BASES: [&str; 6] = ["##/##", "###/.#.", ".##/##.", "##./.##", ".#/.#/##", "#./#./##"];

/// A tetromino as its four (row, col) cells, sorted, with the top-left of its box at (0, 0).
type Shape = [(usize, usize); 4];

/// The 17 shapes: every distinct rotation of each base, in a fixed order.
static SHAPES: LazyLock<Vec<Shape>> = LazyLock::new(|| {
    let mut all: Vec<Shape> = Vec::new();
    for base in BASES {
        let rows: Vec<&str> = base.split('/').collect();
        let mut cells: Vec<(usize, usize)> = rows
            .iter()
            .enumerate()
            .flat_map(|(r, row)| row.char_indices().filter(|&(_, ch)| ch == '#').map(move |(c, _)| (r, c)))
            .collect();
        for _ in 0..4 {
            let shape = normalise(&cells);
            if !all.contains(&shape) {
                all.push(shape);
            }
            // A quarter turn clockwise: (r, c) -> (c, -r), shifted back to non-negative rows/cols.
            let max_r = cells.iter().map(|p| p.0).max().unwrap_or(0);
            cells = cells.iter().map(|&(r, c)| (c, max_r - r)).collect();
        }
    }
    all
});

fn normalise(cells: &[(usize, usize)]) -> Shape {
    let (r0, c0) = (cells.iter().map(|p| p.0).min().unwrap_or(0), cells.iter().map(|p| p.1).min().unwrap_or(0));
    let mut s: Shape = std::array::from_fn(|i| (cells[i].0 - r0, cells[i].1 - c0));
    s.sort();
    s
}

/// Pixel indices of `shape` with its box's top-left pixel at (y, x).
fn pixels(shape: &Shape, y: usize, x: usize) -> impl Iterator<Item = usize> + '_ {
    shape.iter().flat_map(move |&(r, c)| {
        (0..CELL * CELL).map(move |k| (y + r * CELL + k / CELL) * SIZE + x + c * CELL + k % CELL)
    })
}

/// Three non-overlapping tetrominoes as (object ids per pixel, colour of each object), or None
/// when one of them found no free place in TRIES draws.
fn place(r: &mut Xoshiro256PlusPlus) -> Option<(Vec<usize>, [[u8; 3]; 3])> {
    let mut ids = vec![0; SIZE * SIZE];
    let mut colours = [[0; 3]; 3];
    for obj in 1..ENTITIES {
        let fits = (0..TRIES).find_map(|_| {
            let shape = &SHAPES[r.random_range(0..SHAPES.len())];
            let colour = COLOURS[r.random_range(0..COLOURS.len())];
            let rows = shape.iter().map(|p| p.0).max().unwrap_or(0) + 1;
            let cols = shape.iter().map(|p| p.1).max().unwrap_or(0) + 1;
            let y = r.random_range(0..=SIZE - rows * CELL);
            let x = r.random_range(0..=SIZE - cols * CELL);
            pixels(shape, y, x).all(|i| ids[i] == 0).then(|| (pixels(shape, y, x).collect::<Vec<_>>(), colour))
        });
        let (px, colour) = fits?;
        px.into_iter().for_each(|i| ids[i] = obj);
        colours[obj - 1] = colour;
    }
    Some((ids, colours))
}

/// Image `index` of the dataset with `seed`: (pixels H·W·3, masks E·H·W with 0/255).
pub fn sample(seed: u64, index: u64) -> (Vec<u8>, Vec<u8>) {
    // A failed image restarts from a stream derived from the restart count, so the result stays
    // pure in (seed, index); a failure needs an unlucky crowded layout, so restarts are rare.
    let mut restart = 0;
    let (ids, colours) = loop {
        let mut r = if restart == 0 { rng(seed, &[index]) } else { rng(seed, &[index, restart]) };
        if let Some(placed) = place(&mut r) {
            break placed;
        }
        restart += 1;
    };
    super::emorl::render(&ids, ENTITIES, |id| if id == 0 { [0; 3] } else { colours[id - 1] })
}

/// `n` images starting at index `first`.
pub fn split(seed: u64, first: u64, n: usize) -> EmorlSplit {
    super::emorl::generated_split(sample, SIZE, ENTITIES, seed, first, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index in SHAPES of the object covered by `mask` (H·W, 0/255), read back from its pixels.
    fn shape_of(mask: &[u8]) -> Option<usize> {
        let px: Vec<(usize, usize)> =
            (0..SIZE * SIZE).filter(|&i| mask[i] == 255).map(|i| (i / SIZE, i % SIZE)).collect();
        let (y0, x0) = (px.iter().map(|p| p.0).min()?, px.iter().map(|p| p.1).min()?);
        let mut cells: Vec<(usize, usize)> = px.iter().map(|&(y, x)| ((y - y0) / CELL, (x - x0) / CELL)).collect();
        cells.sort();
        cells.dedup();
        let shape: Shape = cells.try_into().ok()?;
        SHAPES.iter().position(|s| *s == shape)
    }

    #[test]
    fn the_17_shapes_are_the_fixed_tetrominoes_without_i() {
        assert_eq!(SHAPES.len(), 17);
        for s in SHAPES.iter() {
            let (rows, cols) = (s.iter().map(|p| p.0).max().unwrap() + 1, s.iter().map(|p| p.1).max().unwrap() + 1);
            assert!(matches!((rows, cols), (2, 2) | (2, 3) | (3, 2)), "{s:?} has a {rows}×{cols} box");
            // Connected: a chain of unit steps joins each cell to the first.
            let touches = |a: &(usize, usize), b: &(usize, usize)| a.0.abs_diff(b.0) + a.1.abs_diff(b.1) == 1;
            let mut reached = vec![s[0]];
            while let Some(&next) = s.iter().find(|c| !reached.contains(c) && reached.iter().any(|r| touches(r, c))) {
                reached.push(next);
            }
            assert_eq!(reached.len(), 4, "{s:?} is not connected");
        }
    }

    #[test]
    fn samples_are_deterministic_per_seed() {
        assert_eq!(sample(3, 11), sample(3, 11));
        assert_ne!(sample(3, 11), sample(4, 11));
        assert_ne!(sample(3, 11), sample(3, 12));
        let s = split(3, 10, 2);
        assert_eq!((s.n, s.h, s.w, s.e), (2, SIZE, SIZE, ENTITIES));
        assert_eq!(s.imgs[SIZE * SIZE * 3..], sample(3, 11).0[..]);
        assert_eq!(s.masks[ENTITIES * SIZE * SIZE..], sample(3, 11).1[..]);
    }

    #[test]
    fn three_coloured_tetrominoes_partition_the_image_and_all_shapes_appear() {
        let hw = SIZE * SIZE;
        let mut seen = [false; 17];
        for i in 0..300 {
            let (img, masks) = sample(7, i);
            assert_eq!((img.len(), masks.len()), (hw * 3, ENTITIES * hw));
            assert!(masks.iter().all(|&m| m == 0 || m == 255));
            for p in 0..hw {
                let owners: Vec<usize> = (0..ENTITIES).filter(|&e| masks[e * hw + p] == 255).collect();
                assert_eq!(owners.len(), 1, "pixel {p} of image {i} is in masks {owners:?}");
                let rgb: [u8; 3] = img[p * 3..p * 3 + 3].try_into().unwrap();
                if owners[0] == 0 {
                    assert_eq!(rgb, [0; 3], "background pixel {p} of image {i}");
                } else {
                    assert!(COLOURS.contains(&rgb), "object pixel {p} of image {i} is {rgb:?}");
                }
            }
            for e in 1..ENTITIES {
                let mask = &masks[e * hw..][..hw];
                assert_eq!(mask.iter().filter(|&&m| m == 255).count(), 4 * CELL * CELL, "object {e} of image {i}");
                let colours: std::collections::BTreeSet<&[u8]> =
                    (0..hw).filter(|&p| mask[p] == 255).map(|p| &img[p * 3..p * 3 + 3]).collect();
                assert_eq!(colours.len(), 1, "object {e} of image {i} has one colour");
                let k = shape_of(mask).unwrap_or_else(|| panic!("object {e} of image {i} is no known shape"));
                seen[k] = true;
            }
        }
        assert!(seen.iter().all(|&s| s), "shapes seen: {seen:?}");
    }
}
