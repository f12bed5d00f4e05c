//! HDF5 in the EMORL layout (design.md "Data"): group `<split>` with `imgs` (N, H, W, 3) and
//! `masks` (N, E, H, W, 1), both uint8, masks 0/255 with entity 0 the background.
use crate::error::{Error, Result};
use hdf5_pure::{DType, Dataset, File, FileBuilder};
use std::path::Path;

/// One split of an EMORL file.
#[derive(Debug, Clone, PartialEq)]
pub struct EmorlSplit {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    /// Entities per image, background included.
    pub e: usize,
    /// (N, H, W, 3), 0–255.
    pub imgs: Vec<u8>,
    /// (N, E, MH, MW, 1), 0 or 255; empty when read without masks.
    pub masks: Vec<u8>,
    /// [MH, MW]: [H, W] in every file; CLEVR's preprocessing crops the masks but resizes only
    /// the images.
    pub mask_hw: [usize; 2],
}

/// Bytes per chunk we aim for when writing: small enough that a windowed read of the first few
/// samples decompresses little, large enough that tiny images don't make one chunk each.
const CHUNK_BYTES: usize = 1 << 16;

fn bad(path: &Path, key: &str, what: impl std::fmt::Display) -> Error {
    Error::usage(format!("{}: dataset `{key}`: {what}", path.display()))
}

fn shape_of(ds: &Dataset, path: &Path, key: &str) -> Result<Vec<usize>> {
    Ok(ds.shape().map_err(|e| bad(path, key, e))?.into_iter().map(|d| d as usize).collect())
}

/// The first `n` samples of `ds` as bytes: uint8 as stored; float data (as some converters write
/// it) in [0, 1] or [0, 255], decided per dataset by its maximum, rounded to 0–255.
fn read_u8(ds: &Dataset, path: &Path, key: &str, n: usize, len: usize) -> Result<Vec<u8>> {
    let unreadable = |e| bad(path, key, format!("unreadable: {e}"));
    let data = match ds.dtype().map_err(|e| bad(path, key, e))? {
        DType::U8 => ds.read_u8_rows(0, n as u64).map_err(unreadable)?,
        DType::F32 | DType::F64 => {
            let v = ds.read_f32_rows(0, n as u64).map_err(unreadable)?;
            if v.iter().any(|x| !(0.0..=255.0).contains(x)) {
                return Err(bad(path, key, "float values outside [0, 255]"));
            }
            let scale = if v.iter().all(|&x| x <= 1.0) { 255.0 } else { 1.0 };
            v.iter().map(|&x| (x * scale).round() as u8).collect()
        }
        other => return Err(bad(path, key, format!("expected uint8 (or float) data, found {other:?}"))),
    };
    if data.len() != len {
        return Err(bad(path, key, format!("expected {len} values for {n} samples, read {}", data.len())));
    }
    Ok(data)
}

/// Read split `split` (`train`, `test`), keeping the first `limit` samples, and the masks only when
/// `masks` (training needs none). Shapes are checked before any data is read, and only the kept
/// samples are read, so a limit on a large file is cheap.
pub fn read_emorl(path: &Path, split: &str, limit: Option<usize>, masks: bool) -> Result<EmorlSplit> {
    let file = File::open_streaming(path)
        .map_err(|e| Error::usage(format!("{}: not a readable HDF5 file: {e}", path.display())))?;
    let (ikey, mkey) = (format!("{split}/imgs"), format!("{split}/masks"));
    let imgs = file.dataset(&ikey).map_err(|e| bad(path, &ikey, format!("missing ({e})")))?;
    let with_masks = masks;
    let masks = file.dataset(&mkey).map_err(|e| bad(path, &mkey, format!("missing ({e})")))?;
    let is = shape_of(&imgs, path, &ikey)?;
    if is.len() != 4 || is[3] != 3 {
        return Err(bad(path, &ikey, format!("expected shape (N, H, W, 3), found {is:?}")));
    }
    let (n, h, w) = (is[0], is[1], is[2]);
    let ms = shape_of(&masks, path, &mkey)?;
    if ms.len() != 5 || ms[0] != n || ms[2] != h || ms[3] != w || ms[4] != 1 {
        let want = format!("({n}, E, {h}, {w}, 1)");
        return Err(bad(path, &mkey, format!("expected shape {want} to match imgs, found {ms:?}")));
    }
    let e = ms[1];
    let n = limit.map_or(n, |l| l.min(n));
    Ok(EmorlSplit {
        n,
        h,
        w,
        e,
        imgs: read_u8(&imgs, path, &ikey, n, n * h * w * 3)?,
        masks: if with_masks { read_u8(&masks, path, &mkey, n, n * e * h * w)? } else { Vec::new() },
        mask_hw: [h, w],
    })
}

/// Write an EMORL file: each split's `imgs` and `masks` as uint8, chunked in blocks of whole
/// samples (about CHUNK_BYTES) and gzip-compressed.
pub fn write_emorl(path: &Path, splits: &[(&str, &EmorlSplit)]) -> Result<()> {
    let mut b = FileBuilder::new();
    for (name, s) in splits {
        let (n, h, w, e) = (s.n as u64, s.h as u64, s.w as u64, s.e as u64);
        if s.imgs.len() as u64 != n * h * w * 3 || s.masks.len() as u64 != n * e * h * w || s.mask_hw != [s.h, s.w] {
            return Err(Error::internal(format!("EMORL split `{name}`: data lengths do not match its shape")));
        }
        let block = |per_sample: u64| (CHUNK_BYTES as u64 / per_sample.max(1)).clamp(1, n.max(1));
        let mut g = b.create_group(name);
        g.create_dataset("imgs")
            .with_u8_data(&s.imgs)
            .with_shape(&[n, h, w, 3])
            .with_chunks(&[block(h * w * 3), h, w, 3])
            .with_deflate(4);
        g.create_dataset("masks")
            .with_u8_data(&s.masks)
            .with_shape(&[n, e, h, w, 1])
            .with_chunks(&[block(e * h * w), e, h, w, 1])
            .with_deflate(4);
        b.add_group(g.finish());
    }
    let bytes = b.finish().map_err(|e| Error::internal(format!("writing {}: {e}", path.display())))?;
    crate::util::write_atomic(path, &bytes)
}
/// A block of EMORL images as the model reads them: [B, 3, H, W] in [−1, 1] (the original's
/// ×2/255 − 1), with the masks kept as bytes for the metrics.
#[derive(Debug, Clone)]
pub struct EmorlBatch {
    /// (B, 3, H, W).
    pub shape: [usize; 4],
    pub imgs: Vec<f32>,
    /// (B, E, MH·MW), 0 or 255; empty when the split was read without masks.
    pub masks: Vec<u8>,
    pub e: usize,
    /// [MH, MW] (see EmorlSplit::mask_hw).
    pub mask_hw: [usize; 2],
}

impl crate::train::Batch for EmorlBatch {
    fn len(&self) -> usize {
        self.shape[0]
    }

    fn slice(&self, start: usize, n: usize) -> Self {
        let [_, c, h, w] = self.shape;
        let per_mask = self.e * self.mask_hw[0] * self.mask_hw[1];
        let masks =
            if self.masks.is_empty() { Vec::new() } else { self.masks[start * per_mask..][..n * per_mask].to_vec() };
        EmorlBatch {
            shape: [n, c, h, w],
            imgs: self.imgs[start * c * h * w..][..n * c * h * w].to_vec(),
            masks,
            ..*self
        }
    }
}

/// The images `indices` of a split, channels first (masks only if the split holds them).
pub fn gather(split: &EmorlSplit, indices: &[usize]) -> EmorlBatch {
    let p = split.h * split.w;
    let n = indices.len();
    let mut imgs = vec![0f32; n * 3 * p];
    for (b, &i) in indices.iter().enumerate() {
        for (j, px) in split.imgs[i * p * 3..][..p * 3].chunks(3).enumerate() {
            for (c, &v) in px.iter().enumerate() {
                imgs[(b * 3 + c) * p + j] = f32::from(v) * (2.0 / 255.0) - 1.0;
            }
        }
    }
    let per = split.e * split.mask_hw[0] * split.mask_hw[1];
    let masks = if split.masks.is_empty() {
        Vec::new()
    } else {
        indices.iter().flat_map(|&i| &split.masks[i * per..][..per]).copied().collect()
    };
    EmorlBatch { shape: [n, 3, split.h, split.w], imgs, masks, e: split.e, mask_hw: split.mask_hw }
}

/// `n` images of a generator that is pure in (seed, index), from index `first`.
pub fn generated_split(
    sample: fn(u64, u64) -> (Vec<u8>, Vec<u8>),
    size: usize,
    entities: usize,
    seed: u64,
    first: u64,
    n: usize,
) -> EmorlSplit {
    let mut s =
        EmorlSplit { n, h: size, w: size, e: entities, imgs: Vec::new(), masks: Vec::new(), mask_hw: [size, size] };
    for i in 0..n as u64 {
        let (img, masks) = sample(seed, first + i);
        s.imgs.extend(img);
        s.masks.extend(masks);
    }
    s
}

/// An image and its masks from per-pixel entity ids (0 = background): pixel colours from
/// `colour`, mask e = 255 where the id is e.
pub fn render(ids: &[usize], entities: usize, colour: impl Fn(usize) -> [u8; 3]) -> (Vec<u8>, Vec<u8>) {
    let img = ids.iter().flat_map(|&id| colour(id)).collect();
    let masks = (0..entities).flat_map(|e| ids.iter().map(move |&id| if id == e { 255 } else { 0 })).collect();
    (img, masks)
}
