//! Datasets: HDF5 files in the original layouts, procedural generators, noise and batching.
pub mod emorl;
pub mod h5;
pub mod loader;
pub mod multi_dsprites;
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
        _ => None,
    }
}

/// `n` static images (T = 1) of a generator that is pure in (seed, index), from index `first`.
pub fn static_split(sample: fn(u64, u64) -> (Vec<f32>, Vec<f32>), size: usize, seed: u64, first: u64, n: usize) -> h5::NemSplit {
    let mut features = Vec::with_capacity(n * size * size);
    let mut groups = Vec::with_capacity(n * size * size);
    for i in 0..n as u64 {
        let (f, g) = sample(seed, first + i);
        features.extend(f);
        groups.extend(g);
    }
    h5::NemSplit { shape: [1, n, size, size, 1], features, groups: Some(groups) }
}

/// Make sure the N-EM file `<path>/<name>.h5` exists, generating it when allowed. A generated
/// file records its generator settings beside it (`<name>.h5.json`); a config asking for other
/// settings is refused rather than silently given the old data.
pub fn ensure_nem_file(dir: &str, name: &str, generate: bool, seed: u64, sizes: [usize; 3]) -> Result<PathBuf> {
    let path = Path::new(dir).join(format!("{name}.h5"));
    let record = path.with_extension("h5.json");
    let wanted = serde_json::json!({ "generator": name, "dataset.seed": seed, "dataset.sizes": sizes });
    if path.exists() {
        let made: Option<serde_json::Value> = std::fs::read(&record).ok().and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(made) = made.filter(|m| generate && *m != wanted) {
            return Err(Error::usage(format!(
                "{} was generated with {made} but the config asks for {wanted}: delete it or set another dataset.path",
                path.display()
            )));
        }
        return Ok(path);
    }
    let Some(make) = nem_generator(name).filter(|_| generate) else {
        let why = if generate { "gestalt has no generator for it" } else { "dataset.generate is false" };
        return Err(Error::usage(format!("dataset file {} does not exist and {why}", path.display())));
    };
    let t0 = std::time::Instant::now();
    // Splits come from disjoint index ranges of one seeded stream.
    let [tr, va, te] = sizes;
    let training = make(seed, 0, tr);
    let validation = make(seed, tr as u64, va);
    let test = make(seed, (tr + va) as u64, te);
    h5::write_nem(&path, &[("training", &training), ("validation", &validation), ("test", &test)])?;
    crate::util::write_atomic(&record, wanted.to_string().as_bytes())?;
    eprintln!(
        "generated {} ({tr}/{va}/{te} images, dataset.seed={seed}) in {:.1} s",
        path.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(path)
}
