//! HDF5 in the original repositories' layouts (design.md "Data"), read and written with hdf5-pure.
use crate::error::{Error, Result};
use hdf5_pure::{DType, File, FileBuilder};
use std::path::Path;

/// One split of an N-EM / R-NEM file: `features` (T, N, H, W, C) and `groups` (T, N, H, W, 1).
#[derive(Debug, Clone)]
pub struct NemSplit {
    /// (T, N, H, W, C).
    pub shape: [usize; 5],
    pub features: Vec<f32>,
    /// Ground-truth objects, 0 = background; absent when the file has no `groups`.
    pub groups: Option<Vec<f32>>,
}

impl NemSplit {
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

/// Read a dataset as f32, scaling uint8 data (stored ×255 by some converters) back to [0, 1].
fn read_f32(file: &File, path: &Path, key: &str, scale_u8: bool) -> Result<(Vec<usize>, Vec<f32>)> {
    let ds = file.dataset(key).map_err(|e| bad(path, key, format!("missing ({e})")))?;
    let shape: Vec<usize> = ds.shape().map_err(|e| bad(path, key, e))?.into_iter().map(|d| d as usize).collect();
    let dtype = ds.dtype().map_err(|e| bad(path, key, e))?;
    let mut data = ds.read_f32().map_err(|e| bad(path, key, format!("unreadable: {e}")))?;
    if scale_u8 && dtype == DType::U8 {
        data.iter_mut().for_each(|v| *v /= 255.0);
    } else if !matches!(dtype, DType::F32 | DType::F64 | DType::U8 | DType::I32 | DType::I64 | DType::U16) {
        return Err(bad(path, key, format!("expected a numeric array, found {dtype:?}")));
    }
    Ok((shape, data))
}

/// Read split `split` (`training`, `validation`, `test`), keeping the first `limit` samples.
pub fn read_nem_split(path: &Path, split: &str, limit: Option<usize>, with_groups: bool) -> Result<NemSplit> {
    let file = File::open_streaming(path)
        .map_err(|e| Error::usage(format!("{}: not a readable HDF5 file: {e}", path.display())))?;
    let fkey = format!("{split}/features");
    let (fshape, mut features) = read_f32(&file, path, &fkey, true)?;
    if fshape.len() != 5 {
        return Err(bad(path, &fkey, format!("expected 5 axes (T, N, H, W, C), found shape {fshape:?}")));
    }
    let mut shape = [fshape[0], fshape[1], fshape[2], fshape[3], fshape[4]];
    let groups = if with_groups {
        let gkey = format!("{split}/groups");
        let (gshape, g) = read_f32(&file, path, &gkey, false)?;
        let want = [shape[0], shape[1], shape[2], shape[3], 1];
        if gshape != want {
            return Err(bad(path, &gkey, format!("expected shape {want:?} to match features, found {gshape:?}")));
        }
        Some(g)
    } else {
        None
    };
    let mut groups = groups;
    if let Some(n) = limit.filter(|&n| n < shape[1]) {
        features = take_samples(&features, shape, n, shape[4]);
        groups = groups.map(|g| take_samples(&g, shape, n, 1));
        shape[1] = n;
    }
    Ok(NemSplit { shape, features, groups })
}

/// Keep the first `n` of the N axis of a (T, N, H, W, c) array.
fn take_samples(data: &[f32], shape: [usize; 5], n: usize, c: usize) -> Vec<f32> {
    let per = shape[2] * shape[3] * c;
    (0..shape[0]).flat_map(|t| data[t * shape[1] * per..][..n * per].iter().copied()).collect()
}

/// Write an N-EM file: each split's `features` and `groups`, chunked per sample and gzip-compressed.
pub fn write_nem(path: &Path, splits: &[(&str, &NemSplit)]) -> Result<()> {
    let mut b = FileBuilder::new();
    for (name, s) in splits {
        let [t, n, h, w, c] = s.shape;
        let mut g = b.create_group(name);
        g.create_dataset("features")
            .with_f32_data(&s.features)
            .with_shape(&[t as u64, n as u64, h as u64, w as u64, c as u64])
            .with_chunks(&[1, n.clamp(1, 64) as u64, h as u64, w as u64, c as u64])
            .with_deflate(4);
        if let Some(groups) = &s.groups {
            g.create_dataset("groups")
                .with_f32_data(groups)
                .with_shape(&[t as u64, n as u64, h as u64, w as u64, 1])
                .with_chunks(&[1, n.clamp(1, 64) as u64, h as u64, w as u64, 1])
                .with_deflate(4);
        }
        b.add_group(g.finish());
    }
    let bytes = b.finish().map_err(|e| Error::internal(format!("writing {}: {e}", path.display())))?;
    crate::util::write_atomic(path, &bytes)
}
