//! Small shared helpers: atomic writes and reproducible random streams.
use crate::error::Result;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use std::io::Write;
use std::path::Path;

/// Write `bytes` to `path` atomically: a temporary file beside it, fsync, then rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let name = path.file_name().and_then(|s| s.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// SplitMix64 finaliser: decorrelates nearby seeds.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed that is a pure function of a base seed and a list of indices (epoch, step, sample, …).
pub fn derive_seed(base: u64, parts: &[u64]) -> u64 {
    parts.iter().fold(mix(base), |acc, &p| mix(acc ^ mix(p)))
}

/// A random stream that is a pure function of (seed, indices); the algorithm is fixed, so streams
/// are the same on every machine and every version of `rand`.
pub fn rng(base: u64, parts: &[u64]) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(derive_seed(base, parts))
}
