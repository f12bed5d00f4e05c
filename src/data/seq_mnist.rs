//! SQAIR's moving multi-MNIST (`reference/sqair.md` §1): 50×50 frames with 0–2 distinct MNIST
//! digits that move with noisy acceleration and bounce off the walls, pasted with a pixel-wise
//! max. Training sequences take the last 55,000 MNIST training digits, validation the first
//! 5,000 (TensorFlow's `input_data` split); t10k is not used. Sequence i is a pure function of
//! (seed, i); the original drew from numpy's global stream.
use super::mnist::Digits;
use crate::error::{Error, Result};
use crate::util::rng;
use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;
use std::path::Path;

/// Canvas side.
pub const CANVAS: usize = 50;
/// Digits per sequence are uniform in 0..=MAX_OBJECTS.
pub const MAX_OBJECTS: usize = 2;
/// The first `VALIDATION_DIGITS` training digits are TF's validation split.
pub const VALIDATION_DIGITS: usize = 5_000;
/// Frame-0 placements tried per example (shared by its digits) before it is drawn again.
const PLACEMENT_TRIES: usize = 5;
const MAX_SPEED: f64 = 10.0;
const MAX_ACC: f64 = 3.0;
const ACC_NOISE_STD: f64 = 0.01;

/// A digit cropped to its ink: grey levels stretched so the brightest pixel is 255 (scipy's
/// `imresize` byte-scaling of a 28×28 image to 28×28).
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub h: usize,
    pub w: usize,
    pub pixels: Vec<u8>,
}

/// The original's `dim_coords`: size = the number of non-empty rows (columns), start = the last
/// non-empty one − size + 1. For a digit with an empty row inside it this drops the top rows; kept.
fn ink_span(proj: &[u32]) -> (usize, usize) {
    let size = proj.iter().filter(|&&v| v > 0).count();
    let last = proj.iter().rposition(|&v| v > 0).unwrap_or(0);
    ((last + 1).saturating_sub(size), size)
}

/// MNIST image `i` as a template.
pub fn template(digits: &Digits, i: usize) -> Template {
    let (rows, cols) = (digits.rows, digits.cols);
    let img = digits.image(i);
    let max = img.iter().copied().max().unwrap_or(0).max(1) as f64;
    let scaled: Vec<u8> = img.iter().map(|&v| (v as f64 * 255.0 / max + 0.5).min(255.0) as u8).collect();
    let row_ink: Vec<u32> = (0..rows).map(|y| scaled[y * cols..][..cols].iter().map(|&v| v as u32).sum()).collect();
    let col_ink: Vec<u32> = (0..cols).map(|x| (0..rows).map(|y| scaled[y * cols + x] as u32).sum()).collect();
    let ((y0, h), (x0, w)) = (ink_span(&row_ink), ink_span(&col_ink));
    let pixels = (0..h).flat_map(|y| scaled[(y0 + y) * cols + x0..][..w].to_vec()).collect();
    Template { h, w, pixels }
}

/// One sequence: frames (T, 50, 50) grey levels, the digit count, and per frame and digit
/// (y, x, h, w) with (y, x) the float top-left corner; the MNIST labels of its digits.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    pub frames: Vec<u8>,
    pub count: usize,
    /// [T][MAX_OBJECTS] boxes, zero for absent digits.
    pub boxes: Vec<[[f32; 4]; MAX_OBJECTS]>,
    pub labels: [u8; MAX_OBJECTS],
}

/// The digits of a split: training digits `first..first + n` of `digits`.
pub struct Pool<'a> {
    pub digits: &'a Digits,
    pub first: usize,
    pub n: usize,
}

impl Pool<'_> {
    /// The training split (the last 55,000 training digits) or the validation split (the first 5,000).
    pub fn of(digits: &Digits, validation: bool) -> Pool<'_> {
        let cut = VALIDATION_DIGITS.min(digits.n);
        match validation {
            true => Pool { digits, first: 0, n: cut },
            false => Pool { digits, first: cut, n: digits.n - cut },
        }
    }
}

/// Noisy-acceleration motion of a top-left corner, per axis: pos += vel; vel += acc;
/// acc += N(0, 0.01²); outside [0, 50] the position is mirrored and vel and acc flip; then the
/// state is clipped to its bounds (|vel| ≤ 10, |acc| ≤ 3).
#[derive(Debug, Clone, Copy)]
struct Motion {
    pos: [f64; 2],
    vel: [f64; 2],
    acc: [f64; 2],
}

impl Motion {
    fn step(&mut self, r: &mut Xoshiro256PlusPlus) {
        let bound = CANVAS as f64;
        for a in 0..2 {
            self.pos[a] += self.vel[a];
            self.vel[a] += self.acc[a];
            self.acc[a] += ACC_NOISE_STD * normal(r);
            if self.pos[a] < 0.0 || self.pos[a] > bound {
                self.pos[a] = if self.pos[a] < 0.0 { -self.pos[a] } else { 2.0 * bound - self.pos[a] };
                self.vel[a] = -self.vel[a];
                self.acc[a] = -self.acc[a];
            }
            self.pos[a] = self.pos[a].clamp(0.0, bound);
            self.vel[a] = self.vel[a].clamp(-MAX_SPEED, MAX_SPEED);
            self.acc[a] = self.acc[a].clamp(-MAX_ACC, MAX_ACC);
        }
    }

    /// The original's start: a uniform state stepped once, then the frame-0 corner put in.
    fn start(corner: [f64; 2], r: &mut Xoshiro256PlusPlus) -> Motion {
        let mut u = |lo: f64, hi: f64| [r.random_range(lo..hi), r.random_range(lo..hi)];
        let (pos, vel, acc) = (u(0.0, CANVAS as f64), u(-MAX_SPEED, MAX_SPEED), u(-MAX_ACC, MAX_ACC));
        let mut m = Motion { pos, vel, acc };
        m.step(r);
        m.pos = corner;
        m
    }
}

/// A standard normal draw (Box–Muller).
fn normal(r: &mut Xoshiro256PlusPlus) -> f64 {
    let u1: f64 = 1.0 - r.random::<f64>();
    let u2: f64 = r.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Paste `t` with its corner at the rounded `pos`, clipped to the canvas, by pixel-wise max.
fn paste(frame: &mut [u8], t: &Template, pos: [f64; 2]) {
    let (y0, x0) = (pos[0].round() as i64, pos[1].round() as i64);
    for y in 0..t.h as i64 {
        for x in 0..t.w as i64 {
            let (cy, cx) = (y0 + y, x0 + x);
            if (0..CANVAS as i64).contains(&cy) && (0..CANVAS as i64).contains(&cx) {
                let at = cy as usize * CANVAS + cx as usize;
                frame[at] = frame[at].max(t.pixels[(y * t.w as i64 + x) as usize]);
            }
        }
    }
}

/// Frame-0 corners of `templates` that do not overlap, with the original's budget of
/// `PLACEMENT_TRIES` re-draws for the whole example; None when it runs out.
fn place(templates: &[Template], r: &mut Xoshiro256PlusPlus) -> Option<Vec<[usize; 2]>> {
    let mut occupied = vec![false; CANVAS * CANVAS];
    let mut tries = 0;
    let mut corners = Vec::new();
    for t in templates {
        let mut draw = || {
            let y = (r.random::<f64>() * (CANVAS - t.h) as f64).round() as usize;
            let x = (r.random::<f64>() * (CANVAS - t.w) as f64).round() as usize;
            [y, x]
        };
        let hits = |c: [usize; 2]| (0..t.h).any(|y| (0..t.w).any(|x| occupied[(c[0] + y) * CANVAS + c[1] + x]));
        let mut c = draw();
        while hits(c) && tries < PLACEMENT_TRIES {
            c = draw();
            tries += 1;
        }
        if tries == PLACEMENT_TRIES {
            return None;
        }
        (0..t.h).for_each(|y| (0..t.w).for_each(|x| occupied[(c[0] + y) * CANVAS + c[1] + x] = true));
        corners.push(c);
    }
    Some(corners)
}

/// Sequence `index` of `frames` frames from `pool`.
pub fn sequence(pool: &Pool, seed: u64, index: u64, frames: usize) -> Sequence {
    let mut r = rng(seed, &[index]);
    let count = r.random_range(0..=MAX_OBJECTS);
    let (templates, labels, corners) = loop {
        let mut chosen: Vec<usize> = Vec::with_capacity(count);
        while chosen.len() < count {
            let i = pool.first + r.random_range(0..pool.n);
            if !chosen.contains(&i) {
                chosen.push(i);
            }
        }
        let templates: Vec<Template> = chosen.iter().map(|&i| template(pool.digits, i)).collect();
        if let Some(corners) = place(&templates, &mut r) {
            let mut labels = [0u8; MAX_OBJECTS];
            chosen.iter().enumerate().for_each(|(j, &i)| labels[j] = pool.digits.labels[i]);
            break (templates, labels, corners);
        }
    };
    let mut motions: Vec<Motion> = corners.iter().map(|c| Motion::start([c[0] as f64, c[1] as f64], &mut r)).collect();
    let mut out = Sequence {
        frames: vec![0u8; frames * CANVAS * CANVAS],
        count,
        boxes: vec![[[0.0; 4]; MAX_OBJECTS]; frames],
        labels,
    };
    for t in 0..frames {
        if t > 0 {
            motions.iter_mut().for_each(|m| m.step(&mut r));
        }
        let frame = &mut out.frames[t * CANVAS * CANVAS..][..CANVAS * CANVAS];
        for (j, (m, tpl)) in motions.iter().zip(&templates).enumerate() {
            paste(frame, tpl, m.pos);
            out.boxes[t][j] = [m.pos[0] as f32, m.pos[1] as f32, tpl.h as f32, tpl.w as f32];
        }
    }
    out
}

/// `n` sequences from index `first`, time-major as the original's arrays: `imgs` (T, N, 50, 50)
/// u8, `nums` (T, N, 3) u8 presence indicators (the first `count` are 1, as the original tiles
/// them over T), `coords` (T, N, 2, 4) f32 (y, x, h, w), `labels` (N, 2) u8.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub frames: usize,
    pub n: usize,
    pub imgs: Vec<u8>,
    pub nums: Vec<u8>,
    pub coords: Vec<f32>,
    pub labels: Vec<u8>,
}

pub fn split(pool: &Pool, seed: u64, first: u64, n: usize, frames: usize) -> Split {
    let px = CANVAS * CANVAS;
    let mut s = Split {
        frames,
        n,
        imgs: vec![0; frames * n * px],
        nums: vec![0; frames * n * (MAX_OBJECTS + 1)],
        coords: vec![0.0; frames * n * MAX_OBJECTS * 4],
        labels: vec![0; n * MAX_OBJECTS],
    };
    for i in 0..n {
        let q = sequence(pool, seed, first + i as u64, frames);
        s.labels[i * MAX_OBJECTS..][..MAX_OBJECTS].copy_from_slice(&q.labels);
        for t in 0..frames {
            let at = t * n + i;
            s.imgs[at * px..][..px].copy_from_slice(&q.frames[t * px..][..px]);
            s.nums[at * (MAX_OBJECTS + 1)..][..q.count].fill(1);
            let flat: Vec<f32> = q.boxes[t].iter().flatten().copied().collect();
            s.coords[at * MAX_OBJECTS * 4..][..MAX_OBJECTS * 4].copy_from_slice(&flat);
        }
    }
    s
}

impl Split {
    /// Objects present in frame t of sequence i.
    pub fn count(&self, t: usize, i: usize) -> usize {
        self.nums[(t * self.n + i) * (MAX_OBJECTS + 1)..][..MAX_OBJECTS + 1].iter().map(|&v| v as usize).sum()
    }
}

/// Write splits (`train`, `validation`) as HDF5 groups with the arrays of [`Split`].
pub fn write(path: &Path, splits: &[(&str, &Split)]) -> Result<()> {
    use hdf5_pure::FileBuilder;
    let mut b = FileBuilder::new();
    for (name, s) in splits {
        let (t, n, k) = (s.frames as u64, s.n as u64, MAX_OBJECTS as u64);
        let c = s.n.clamp(1, 64) as u64;
        let side = CANVAS as u64;
        let mut g = b.create_group(name);
        g.create_dataset("imgs")
            .with_u8_data(&s.imgs)
            .with_shape(&[t, n, side, side])
            .with_chunks(&[1, c, side, side])
            .with_deflate(4);
        g.create_dataset("nums").with_u8_data(&s.nums).with_shape(&[t, n, k + 1]);
        g.create_dataset("coords").with_f32_data(&s.coords).with_shape(&[t, n, k, 4]);
        g.create_dataset("labels").with_u8_data(&s.labels).with_shape(&[n, k]);
        b.add_group(g.finish());
    }
    let bytes = b.finish().map_err(|e| Error::internal(format!("writing {}: {e}", path.display())))?;
    crate::util::write_atomic(path, &bytes)
}

/// Read split `name` of a file written by [`write`] (or converted from the original's pickles
/// with the same keys), keeping the first `limit` sequences.
pub fn read(path: &Path, name: &str, limit: Option<usize>) -> Result<Split> {
    let file = hdf5_pure::File::open_streaming(path)
        .map_err(|e| Error::usage(format!("{}: not a readable HDF5 file: {e}", path.display())))?;
    let bad = |key: &str, what: String| Error::usage(format!("{}: dataset `{name}/{key}`: {what}", path.display()));
    let open = |key: &str| -> Result<(Vec<usize>, hdf5_pure::Dataset)> {
        let ds = file.dataset(&format!("{name}/{key}")).map_err(|e| bad(key, format!("missing ({e})")))?;
        let shape = ds.shape().map_err(|e| bad(key, e.to_string()))?.into_iter().map(|d| d as usize).collect();
        Ok((shape, ds))
    };
    let (ishape, imgs) = open("imgs")?;
    if ishape.len() != 4 || ishape[2..] != [CANVAS, CANVAS] {
        return Err(bad("imgs", format!("expected (T, N, {CANVAS}, {CANVAS}), found {ishape:?}")));
    }
    let (frames, n) = (ishape[0], ishape[1]);
    let expect = |key: &str, shape: &[usize], want: &[usize]| {
        if shape != want { Err(bad(key, format!("expected shape {want:?}, found {shape:?}"))) } else { Ok(()) }
    };
    let (nshape, nums) = open("nums")?;
    expect("nums", &nshape, &[frames, n, MAX_OBJECTS + 1])?;
    let (cshape, coords) = open("coords")?;
    expect("coords", &cshape, &[frames, n, MAX_OBJECTS, 4])?;
    let (lshape, labels) = open("labels")?;
    expect("labels", &lshape, &[n, MAX_OBJECTS])?;
    let unreadable = |key: &'static str| move |e: hdf5_pure::Error| bad(key, format!("unreadable: {e}"));
    let s = Split {
        frames,
        n,
        imgs: imgs.read_u8().map_err(unreadable("imgs"))?,
        nums: nums.read_u8().map_err(unreadable("nums"))?,
        coords: coords.read_f32().map_err(unreadable("coords"))?,
        labels: labels.read_u8().map_err(unreadable("labels"))?,
    };
    Ok(match limit {
        Some(m) if m < n => s.first(m),
        _ => s,
    })
}

impl Split {
    /// The first `m` sequences.
    pub fn first(&self, m: usize) -> Split {
        let take = |v: &[u8], per: usize| -> Vec<u8> {
            (0..self.frames).flat_map(|t| v[t * self.n * per..][..m * per].iter().copied()).collect()
        };
        let per_box = MAX_OBJECTS * 4;
        Split {
            frames: self.frames,
            n: m,
            imgs: take(&self.imgs, CANVAS * CANVAS),
            nums: take(&self.nums, MAX_OBJECTS + 1),
            coords: (0..self.frames)
                .flat_map(|t| self.coords[t * self.n * per_box..][..m * per_box].to_vec())
                .collect(),
            labels: self.labels[..m * MAX_OBJECTS].to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Digits made by hand: digit i is an i-wide bar of grey 100 + i in a 28×28 image.
    fn digits(n: usize) -> Digits {
        let mut pixels = vec![0u8; n * 28 * 28];
        for i in 0..n {
            for y in 4..24 {
                for x in 10..10 + 1 + i % 8 {
                    pixels[i * 784 + y * 28 + x] = 100 + i as u8;
                }
            }
        }
        Digits { n, rows: 28, cols: 28, pixels, labels: (0..n).map(|i| (i % 10) as u8).collect() }
    }

    #[test]
    fn templates_are_stretched_and_cropped_to_their_ink() {
        let d = digits(3);
        let t = template(&d, 2);
        assert_eq!((t.h, t.w), (20, 3));
        assert!(t.pixels.iter().all(|&v| v == 255), "brightest pixel becomes 255");
        // A gap row inside: size counts ink rows, start = last − size + 1 (the original's rule).
        assert_eq!(ink_span(&[0, 1, 0, 1, 1, 0]), (2, 3));
    }

    #[test]
    fn sequences_are_pure_bounded_and_max_pasted() {
        let d = digits(40);
        let pool = Pool { digits: &d, first: 0, n: 40 };
        let mut counts = [0; MAX_OBJECTS + 1];
        for i in 0..60 {
            let s = sequence(&pool, 7, i, 10);
            assert_eq!(s, sequence(&pool, 7, i, 10));
            counts[s.count] += 1;
            for t in 0..10 {
                for j in 0..s.count {
                    let [y, x, h, w] = s.boxes[t][j];
                    assert!((0.0..=50.0).contains(&y) && (0.0..=50.0).contains(&x), "corner in [0, 50]");
                    assert_eq!((h, w), (20.0, s.boxes[0][j][3]));
                }
                // Every lit pixel is the max of the digits covering it: here all digits are flat
                // bars, so a lit pixel holds one of their grey levels (255 after stretching).
                assert!(s.frames[t * 2500..][..2500].iter().all(|&v| v == 0 || v == 255));
            }
            if s.count == 0 {
                assert!(s.frames.iter().all(|&v| v == 0));
            }
        }
        assert!(counts.iter().all(|&c| c > 5), "0, 1 and 2 digits all occur: {counts:?}");
    }

    #[test]
    fn frame_zero_digits_do_not_overlap_and_moves_bounce() {
        let d = digits(40);
        let pool = Pool { digits: &d, first: 0, n: 40 };
        let mut r = rng(1, &[]);
        for _ in 0..200 {
            let mut m = Motion::start([25.0, 25.0], &mut r);
            for _ in 0..30 {
                m.step(&mut r);
                assert!(m.pos.iter().all(|p| (0.0..=50.0).contains(p)));
                assert!(m.vel.iter().all(|v| v.abs() <= MAX_SPEED) && m.acc.iter().all(|a| a.abs() <= MAX_ACC));
            }
        }
        for i in 0..40 {
            let s = sequence(&pool, 3, i, 1);
            if s.count == 2 {
                let [a, b] = s.boxes[0];
                let apart = |p: usize, q: usize| a[p] + a[q] <= b[p] || b[p] + b[q] <= a[p];
                assert!(apart(0, 2) || apart(1, 3), "boxes {a:?} {b:?} overlap");
            }
        }
    }

    #[test]
    fn splits_take_their_own_digits_and_round_trip() {
        let d = digits(5_010);
        let (train, valid) = (Pool::of(&d, false), Pool::of(&d, true));
        assert_eq!((train.first, train.n, valid.first, valid.n), (5_000, 10, 0, 5_000));
        let s = split(&train, 0, 0, 6, 4);
        for i in 0..6 {
            let q = sequence(&train, 0, i as u64, 4);
            assert_eq!((0..4).map(|t| s.count(t, i)).collect::<Vec<_>>(), vec![q.count; 4]);
            assert_eq!(&s.imgs[(2 * 6 + i) * 2500..][..2500], &q.frames[2 * 2500..][..2500]);
            // Training digits 5000.. have labels (i % 10) of their own index.
            for j in 0..q.count {
                assert!(q.labels[j] < 10);
            }
        }
        let dir = std::env::temp_dir().join(format!("gestalt-seq-mnist-{}", std::process::id()));
        let path = dir.join("seq_mnist.h5");
        write(&path, &[("train", &s)]).unwrap();
        assert_eq!(read(&path, "train", None).unwrap(), s);
        assert_eq!(read(&path, "train", Some(2)).unwrap(), split(&train, 0, 0, 2, 4));
        let err = read(&path, "validation", None).unwrap_err().to_string();
        assert!(err.contains("validation/imgs") && err.contains("missing"), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }
}
