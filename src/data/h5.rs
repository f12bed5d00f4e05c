//! HDF5 in the original repositories' layouts (design.md "Data"), read and written with hdf5-pure.
use crate::error::{Error, Result};
use hdf5_pure::{DType, File, FileBuilder};
use std::path::Path;

/// Pixel values in [0, 1]: float32 as in the original files, or bytes (value × 255, as gestalt's
/// generators and FudanVI's converter store them) turned into floats only when a batch is cut —
/// 50k sequences of 41 frames fit in memory as bytes, not as floats.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    F32(Vec<f32>),
    U8(Vec<u8>),
}

impl Values {
    pub fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::U8(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values `range` as floats, appended to `out`.
    pub fn extend_into(&self, range: std::ops::Range<usize>, out: &mut Vec<f32>) {
        match self {
            Values::F32(v) => out.extend_from_slice(&v[range]),
            Values::U8(v) => out.extend(v[range].iter().map(|&b| b as f32 / 255.0)),
        }
    }

    /// Every value as a float.
    pub fn to_f32(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.len());
        self.extend_into(0..self.len(), &mut out);
        out
    }
}

/// One split of an N-EM / R-NEM file: `features` (T, N, H, W, C) and `groups` (T, N, H, W, 1).
#[derive(Debug, Clone)]
pub struct NemSplit {
    /// (T, N, H, W, C).
    pub shape: [usize; 5],
    pub features: Values,
    /// Ground-truth objects, 0 = background; absent when the file has no `groups`.
    pub groups: Option<Vec<u8>>,
    /// Byte arrays beside the frames: R-NEM's `collisions` and `events`, the Atari layout's
    /// `actions`.
    pub masks: Vec<Mask>,
}

/// A byte array (T, N, …) of an R-NEM file: `collisions` (T, N, H, W, 1), 1 on the pixels of
/// colliding balls; `events` (T, N, 1, 1, 1); `actions` (T, N, A), one-hot.
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    pub name: String,
    /// The axes after (T, N).
    pub dims: Vec<usize>,
    pub values: Vec<u8>,
}

impl Mask {
    pub fn per_frame(&self) -> usize {
        self.dims.iter().product()
    }
}

impl NemSplit {
    /// The first `n` samples.
    pub fn first(&self, n: usize) -> NemSplit {
        if n >= self.shape[1] {
            return self.clone();
        }
        let features = match &self.features {
            Values::F32(v) => Values::F32(take_samples(v, self.shape, n, self.shape[4])),
            Values::U8(v) => Values::U8(take_samples(v, self.shape, n, self.shape[4])),
        };
        let groups = self.groups.as_ref().map(|g| take_samples(g, self.shape, n, 1));
        let masks = self
            .masks
            .iter()
            .map(|m| {
                let shape = [self.shape[0], self.shape[1], m.per_frame(), 1, 1];
                Mask { values: take_samples(&m.values, shape, n, 1), ..m.clone() }
            })
            .collect();
        NemSplit { shape: [self.shape[0], n, self.shape[2], self.shape[3], self.shape[4]], features, groups, masks }
    }

    pub fn len(&self) -> usize {
        self.shape[1]
    }
    pub fn is_empty(&self) -> bool {
        self.shape[1] == 0
    }
    /// Values per frame of one sample: H·W·C.
    pub fn frame_size(&self) -> usize {
        self.shape[2] * self.shape[3] * self.shape[4]
    }
}

fn bad(path: &Path, key: &str, what: impl std::fmt::Display) -> Error {
    Error::usage(format!("{}: dataset `{key}`: {what}", path.display()))
}

/// A numeric dataset: its shape and its values, bytes kept as bytes.
fn read_values(file: &File, path: &Path, key: &str) -> Result<(Vec<usize>, Values)> {
    let ds = file.dataset(key).map_err(|e| bad(path, key, format!("missing ({e})")))?;
    let shape: Vec<usize> = ds.shape().map_err(|e| bad(path, key, e))?.into_iter().map(|d| d as usize).collect();
    let unreadable = |e| bad(path, key, format!("unreadable: {e}"));
    let values = match ds.dtype().map_err(|e| bad(path, key, e))? {
        DType::U8 => Values::U8(ds.read_u8().map_err(unreadable)?),
        DType::F32 | DType::F64 | DType::I32 | DType::I64 | DType::U16 => {
            Values::F32(ds.read_f32().map_err(unreadable)?)
        }
        other => return Err(bad(path, key, format!("expected a numeric array, found {other:?}"))),
    };
    Ok((shape, values))
}

/// Read split `split` (`training`, `validation`, `test`), keeping the first `limit` samples.
/// Byte features stay bytes; groups become bytes (object ids); `masks` names the 0/1 arrays to
/// read besides (R-NEM's `collisions` or `events`).
pub fn read_nem_split(
    path: &Path,
    split: &str,
    limit: Option<usize>,
    with_groups: bool,
    masks: &[&str],
) -> Result<NemSplit> {
    let file = File::open_streaming(path)
        .map_err(|e| Error::usage(format!("{}: not a readable HDF5 file: {e}", path.display())))?;
    let fkey = format!("{split}/features");
    let (fshape, features) = read_values(&file, path, &fkey)?;
    if fshape.len() != 5 {
        return Err(bad(path, &fkey, format!("expected 5 axes (T, N, H, W, C), found shape {fshape:?}")));
    }
    let shape = [fshape[0], fshape[1], fshape[2], fshape[3], fshape[4]];
    let groups = if with_groups {
        let gkey = format!("{split}/groups");
        let (gshape, g) = read_values(&file, path, &gkey)?;
        let want = [shape[0], shape[1], shape[2], shape[3], 1];
        if gshape != want {
            return Err(bad(path, &gkey, format!("expected shape {want:?} to match features, found {gshape:?}")));
        }
        match g {
            Values::U8(ids) => Some(ids),
            Values::F32(g) if g.iter().all(|&v| (0.0..=255.0).contains(&v) && v.fract() == 0.0) => {
                Some(g.into_iter().map(|v| v as u8).collect())
            }
            Values::F32(_) => return Err(bad(path, &gkey, "object ids must be whole numbers in 0..=255")),
        }
    } else {
        None
    };
    let masks = masks
        .iter()
        .map(|name| {
            let key = format!("{split}/{name}");
            let (mshape, values) = read_values(&file, path, &key)?;
            if mshape.len() < 3 || mshape[..2] != shape[..2] {
                let want = format!("({}, {}, …)", shape[0], shape[1]);
                return Err(bad(path, &key, format!("expected shape {want}, found {mshape:?}")));
            }
            let values = match values {
                Values::U8(v) => v,
                Values::F32(v) => v.into_iter().map(|x| (x > 0.5) as u8).collect(),
            };
            Ok(Mask { name: name.to_string(), dims: mshape[2..].to_vec(), values })
        })
        .collect::<Result<Vec<_>>>()?;
    let split = NemSplit { shape, features, groups, masks };
    Ok(match limit {
        Some(n) => split.first(n),
        None => split,
    })
}

/// Keep the first `n` of the N axis of a (T, N, H, W, c) array.
fn take_samples<T: Copy>(data: &[T], shape: [usize; 5], n: usize, c: usize) -> Vec<T> {
    let per = shape[2] * shape[3] * c;
    (0..shape[0]).flat_map(|t| data[t * shape[1] * per..][..n * per].iter().copied()).collect()
}

/// Write an N-EM file: each split's `features` and `groups`, chunked per sample and gzip-compressed.
pub fn write_nem(path: &Path, splits: &[(&str, &NemSplit)]) -> Result<()> {
    let mut b = FileBuilder::new();
    for (name, s) in splits {
        let [t, n, h, w, c] = s.shape;
        let mut g = b.create_group(name);
        let features = g.create_dataset("features");
        match &s.features {
            Values::F32(v) => features.with_f32_data(v),
            Values::U8(v) => features.with_u8_data(v),
        }
        .with_shape(&[t as u64, n as u64, h as u64, w as u64, c as u64])
        .with_chunks(&[1, n.clamp(1, 64) as u64, h as u64, w as u64, c as u64])
        .with_deflate(4);
        if let Some(groups) = &s.groups {
            g.create_dataset("groups")
                .with_u8_data(groups)
                .with_shape(&[t as u64, n as u64, h as u64, w as u64, 1])
                .with_chunks(&[1, n.clamp(1, 64) as u64, h as u64, w as u64, 1])
                .with_deflate(4);
        }
        for m in &s.masks {
            let dims =
                |first: [u64; 2]| -> Vec<u64> { first.into_iter().chain(m.dims.iter().map(|&d| d as u64)).collect() };
            g.create_dataset(&m.name)
                .with_u8_data(&m.values)
                .with_shape(&dims([t as u64, n as u64]))
                .with_chunks(&dims([1, n.clamp(1, 64) as u64]))
                .with_deflate(4);
        }
        b.add_group(g.finish());
    }
    let bytes = b.finish().map_err(|e| Error::internal(format!("writing {}: {e}", path.display())))?;
    crate::util::write_atomic(path, &bytes)
}
