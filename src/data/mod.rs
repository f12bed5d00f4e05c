//! Datasets: HDF5 files in the original layouts, procedural generators, noise and batching.
pub mod balls;
pub mod clevr;
pub mod emorl;
pub mod flying;
pub mod h5;
pub mod invaders;
pub mod loader;
pub mod mnist;
pub mod multi_dsprites;
pub mod seq_mnist;
pub mod shapes;
pub mod shapes24;
pub mod tetrominoes;

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The generators gestalt has for N-EM-family datasets, by `dataset.name`.
pub fn nem_generator(name: &str) -> Option<fn(u64, u64, usize) -> h5::NemSplit> {
    match name {
        "shapes" => Some(shapes::split),
        "shapes24" => Some(shapes24::split),
        "flying_shapes" => Some(flying::split3),
        "flying_shapes_4" => Some(flying::split4),
        "flying_shapes_5" => Some(flying::split5),
        "balls4mass64" => Some(balls::split4),
        "balls678mass64" => Some(balls::split678),
        "balls3curtain64" => Some(balls::split_curtain),
        "invaders84" => Some(invaders::split),
        _ => None,
    }
}

/// `n` static images (T = 1) of a generator that is pure in (seed, index), from index `first`.
pub fn static_split(
    sample: fn(u64, u64) -> (Vec<f32>, Vec<f32>),
    size: usize,
    seed: u64,
    first: u64,
    n: usize,
) -> h5::NemSplit {
    let mut features = Vec::with_capacity(n * size * size);
    let mut groups = Vec::with_capacity(n * size * size);
    for i in 0..n as u64 {
        let (f, g) = sample(seed, first + i);
        features.extend(f.into_iter().map(|v| (v * 255.0).round() as u8));
        groups.extend(g.into_iter().map(|v| v as u8));
    }
    h5::NemSplit {
        shape: [1, n, size, size, 1],
        features: h5::Values::U8(features),
        groups: Some(groups),
        masks: vec![],
    }
}

/// Whether `path` can be used for a config that asks for the generator settings `wanted`:
/// Ok(true) if it exists and was made with them (or not by gestalt), Ok(false) if it is missing,
/// and an error if gestalt generated it with other settings.
fn usable(path: &Path, wanted: &serde_json::Value, generate: bool) -> Result<bool> {
    if !path.exists() {
        return Ok(false);
    }
    let made: Option<serde_json::Value> =
        std::fs::read(record_of(path)).ok().and_then(|b| serde_json::from_slice(&b).ok());
    match made.filter(|m| generate && m != wanted) {
        Some(made) => Err(Error::usage(format!(
            "{} was generated with {made} but the config asks for {wanted}: delete it or set another data path",
            path.display()
        ))),
        None => Ok(true),
    }
}

/// A generated file's settings are recorded beside it: `<file>.json`.
fn record_of(path: &Path) -> PathBuf {
    path.with_extension("h5.json")
}

fn missing(path: &Path, generate: bool) -> Error {
    let why = if generate { "gestalt has no generator for it" } else { "dataset.generate is false" };
    Error::usage(format!("dataset file {} does not exist and {why}", path.display()))
}

/// Make sure the N-EM file `<path>/<name>.h5` exists, generating it when allowed. A generated
/// file records its generator settings beside it (`<name>.h5.json`); a config asking for other
/// settings is refused rather than silently given the old data.
/// Flying-MNIST files are drawn from MNIST's training digits (training and validation) and test
/// digits (test), read from `mnist_path`.
pub fn ensure_nem_file(
    dir: &str,
    name: &str,
    generate: bool,
    seed: u64,
    sizes: [usize; 3],
    mnist_path: &str,
) -> Result<PathBuf> {
    let path = Path::new(dir).join(format!("{name}.h5"));
    let wanted = serde_json::json!({ "generator": name, "dataset.seed": seed, "dataset.sizes": sizes });
    if usable(&path, &wanted, generate)? {
        return Ok(path);
    }
    let t0 = std::time::Instant::now();
    // Splits come from disjoint index ranges of one seeded stream.
    let [tr, va, te] = sizes;
    let (training, validation, test) = match flying::mnist_variant(name).filter(|_| generate) {
        Some((per_seq, pool)) => {
            let (train_digits, test_digits) =
                (mnist::read(Path::new(mnist_path), true)?, mnist::read(Path::new(mnist_path), false)?);
            let make =
                |digits: &mnist::Digits, pool, first, n| flying::mnist_split(digits, pool, seed, first, n, per_seq);
            (
                make(&train_digits, pool, 0, tr),
                make(&train_digits, pool, tr as u64, va),
                make(&test_digits, usize::MAX, (tr + va) as u64, te),
            )
        }
        None => {
            let make = nem_generator(name).filter(|_| generate).ok_or_else(|| missing(&path, generate))?;
            (make(seed, 0, tr), make(seed, tr as u64, va), make(seed, (tr + va) as u64, te))
        }
    };
    h5::write_nem(&path, &[("training", &training), ("validation", &validation), ("test", &test)])?;
    crate::util::write_atomic(&record_of(&path), wanted.to_string().as_bytes())?;
    eprintln!(
        "generated {} ({tr}/{va}/{te} images, dataset.seed={seed}) in {:.1} s",
        path.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(path)
}

/// The EMORL generators, by the stem of the original file names.
pub fn emorl_generator(stem: &str) -> Option<fn(u64, u64, usize) -> emorl::EmorlSplit> {
    match stem {
        "tetrominoes" => Some(tetrominoes::split),
        "multi_dsprites_colored_on_grayscale" => Some(multi_dsprites::split),
        _ => None,
    }
}

/// Make sure the EMORL file `<dir>/<h5_path>` exists, generating it when allowed. As the
/// originals, a generator writes `<stem>.h5` (split `train`) and `<stem>_test.h5` (split `test`),
/// from disjoint index ranges of one seeded stream.
pub fn ensure_emorl_file(dir: &str, h5_path: &str, generate: bool, seed: u64, sizes: [usize; 2]) -> Result<PathBuf> {
    let path = Path::new(dir).join(h5_path);
    let stem = h5_path.trim_end_matches(".h5").trim_end_matches("_test");
    let wanted = serde_json::json!({ "generator": stem, "dataset.seed": seed, "dataset.sizes": sizes });
    if usable(&path, &wanted, generate)? {
        return Ok(path);
    }
    let make = emorl_generator(stem).filter(|_| generate).ok_or_else(|| missing(&path, generate))?;
    let t0 = std::time::Instant::now();
    let [train, test] = sizes;
    for (split, file, first, n) in
        [("train", format!("{stem}.h5"), 0, train), ("test", format!("{stem}_test.h5"), train as u64, test)]
    {
        let file = Path::new(dir).join(file);
        emorl::write_emorl(&file, &[(split, &make(seed, first, n))])?;
        crate::util::write_atomic(&record_of(&file), wanted.to_string().as_bytes())?;
    }
    eprintln!(
        "generated {stem}.h5 and {stem}_test.h5 in {dir} ({train}/{test} images, dataset.seed={seed}) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(path)
}

/// Make sure SQAIR's moving multi-MNIST file `<dir>/<h5_path>` exists, generating it from the
/// MNIST training digits in `mnist_path` when allowed: `train` from the last 55,000 digits,
/// `validation` from the first 5,000, sequences of `frames` frames.
pub fn ensure_seq_mnist_file(
    dir: &str,
    h5_path: &str,
    generate: bool,
    seed: u64,
    sizes: [usize; 2],
    frames: usize,
    mnist_path: &str,
) -> Result<PathBuf> {
    let path = Path::new(dir).join(h5_path);
    let wanted = serde_json::json!({ "generator": "seq_mnist", "dataset.seed": seed, "dataset.sizes": sizes, "dataset.frames": frames });
    if usable(&path, &wanted, generate)? {
        return Ok(path);
    }
    if !generate {
        return Err(missing(&path, generate));
    }
    let t0 = std::time::Instant::now();
    let digits = mnist::read(Path::new(mnist_path), true)?;
    if digits.n < seq_mnist::VALIDATION_DIGITS + seq_mnist::MAX_OBJECTS {
        return Err(Error::usage(format!(
            "{mnist_path}: {} training digits; moving multi-MNIST takes its validation digits from the first {} and its training digits from the rest",
            digits.n,
            seq_mnist::VALIDATION_DIGITS
        )));
    }
    let [train, valid] = sizes;
    let (train_pool, valid_pool) = (seq_mnist::Pool::of(&digits, false), seq_mnist::Pool::of(&digits, true));
    let train = seq_mnist::split(&train_pool, seed, 0, train, frames);
    let valid = seq_mnist::split(&valid_pool, seed, train.n as u64, valid, frames);
    seq_mnist::write(&path, &[("train", &train), ("validation", &valid)])?;
    crate::util::write_atomic(&record_of(&path), wanted.to_string().as_bytes())?;
    eprintln!(
        "generated {} ({}/{} sequences of {frames} frames, dataset.seed={seed}) in {:.1} s",
        path.display(),
        train.n,
        valid.n,
        t0.elapsed().as_secs_f64()
    );
    Ok(path)
}

/// A batch of `batch` samples must fit in the split (the last partial batch is dropped).
pub fn batch_fits(split: &str, len: usize, key: &str, batch: usize) -> Result<()> {
    if len < batch {
        return Err(Error::usage(format!("the {split} split has {len} samples, fewer than {key}={batch}")));
    }
    Ok(())
}
