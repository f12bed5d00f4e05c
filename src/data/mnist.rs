//! The MNIST digits, read from the four idx files (LeCun's format: a big-endian magic number,
//! the dimensions, then u8 data) in `dataset.mnist_path`. `scripts/fetch_mnist.sh` puts them
//! there; nothing downloads at run time.
use crate::error::{Error, Result};
use std::path::Path;

/// Digits of one split: `n` images of rows × cols grey levels (0–255), row-major, and labels.
#[derive(Debug, Clone)]
pub struct Digits {
    pub n: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Digits {
    /// Image i's pixels.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * self.rows * self.cols..][..self.rows * self.cols]
    }
}

/// An idx file: (dimensions, data). `magic` is 0x0801 (u8 data) plus the number of dimensions.
fn read_idx(path: &Path, dims: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|e| {
        let dir = path.parent().unwrap_or(Path::new(".")).display();
        Error::usage(format!(
            "MNIST digits: cannot read {} ({e}); run `scripts/fetch_mnist.sh {dir}` or set dataset.mnist_path",
            path.display()
        ))
    })?;
    let bad = |what: String| Error::usage(format!("{}: not an MNIST idx file: {what}", path.display()));
    let header = 4 + 4 * dims;
    if bytes.len() < header {
        return Err(bad(format!("{} bytes", bytes.len())));
    }
    let word = |i: usize| u32::from_be_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap()) as usize;
    if word(0) != 0x0800 + dims {
        return Err(bad(format!("magic number {:#x}, expected {:#x}", word(0), 0x0800 + dims)));
    }
    let shape: Vec<usize> = (1..=dims).map(word).collect();
    let len: usize = shape.iter().product();
    if bytes.len() != header + len {
        return Err(bad(format!("{} data bytes for shape {shape:?}", bytes.len() - header)));
    }
    Ok((shape, bytes[header..].to_vec()))
}

/// The training (60,000) or test (10,000) digits in `dir`.
pub fn read(dir: &Path, train: bool) -> Result<Digits> {
    let stem = if train { "train" } else { "t10k" };
    let (shape, pixels) = read_idx(&dir.join(format!("{stem}-images.idx3-ubyte")), 3)?;
    let (lshape, labels) = read_idx(&dir.join(format!("{stem}-labels.idx1-ubyte")), 1)?;
    if lshape[0] != shape[0] {
        return Err(Error::usage(format!("{}: {} images but {} labels", dir.display(), shape[0], lshape[0])));
    }
    Ok(Digits { n: shape[0], rows: shape[1], cols: shape[2], pixels, labels })
}
