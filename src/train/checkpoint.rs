//! A checkpoint is one file, written atomically: model, optimiser state and the loop's state
//! (step, epoch, best score, patience, controller state) as JSON.
use crate::error::{Error, Result};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde_json::Value;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"GESTALT1";

pub struct Checkpoint {
    pub state: Value,
    pub model: Vec<u8>,
    pub optim: Vec<u8>,
}

fn section(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend((bytes.len() as u64).to_le_bytes());
    out.extend(bytes);
}

impl Checkpoint {
    pub fn capture<M: Module + Clone>(model: &M, optim: &ModuleOptimizer, state: Value) -> Result<Self> {
        let model = model.clone().into_record().into_bytes().map_err(|e| Error::internal(e.to_string()))?;
        let optim = optim.into_bytes().map_err(|e| Error::internal(e.to_string()))?;
        Ok(Checkpoint { state, model: model.to_vec(), optim: optim.to_vec() })
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let mut out = Vec::with_capacity(self.model.len() + self.optim.len() + 1024);
        out.extend(MAGIC);
        section(&mut out, serde_json::to_string(&self.state).unwrap().as_bytes());
        section(&mut out, &self.model);
        section(&mut out, &self.optim);
        crate::util::write_atomic(path, &out)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let bytes =
            std::fs::read(path).map_err(|e| Error::usage(format!("cannot read checkpoint {}: {e}", path.display())))?;
        let bad = || Error::usage(format!("{} is not a gestalt checkpoint", path.display()));
        if bytes.len() < 8 || &bytes[..8] != MAGIC {
            return Err(bad());
        }
        let mut rest = &bytes[8..];
        let mut next = || -> Result<Vec<u8>> {
            if rest.len() < 8 {
                return Err(bad());
            }
            let n = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            if rest.len() < 8 + n {
                return Err(bad());
            }
            let s = rest[8..8 + n].to_vec();
            rest = &rest[8 + n..];
            Ok(s)
        };
        let state = serde_json::from_slice(&next()?).map_err(|_| bad())?;
        Ok(Checkpoint { state, model: next()?, optim: next()? })
    }

    pub fn apply_model<M: Module>(&self, model: M) -> Result<M> {
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(self.model.clone()))
            .map_err(|e| Error::usage(format!("checkpoint model: {e}")))?;
        model.try_load_record(record).map_err(|e| Error::usage(format!("checkpoint does not fit this model: {e}")))
    }

    pub fn apply_optim(&self, optim: ModuleOptimizer) -> Result<ModuleOptimizer> {
        optim
            .from_bytes(Bytes::from_bytes_vec(self.optim.clone()))
            .map_err(|e| Error::usage(format!("checkpoint optimiser state: {e}")))
    }
}

/// `net_path` as users give it: a checkpoint file, a run directory (→ its `checkpoints/best`),
/// or a directory holding `best` (the original `debug_out/best` style).
pub fn resolve_net_path(p: &str) -> Result<PathBuf> {
    let path = PathBuf::from(p);
    let candidates = [path.join("checkpoints").join("best"), path.join("best"), path.clone()];
    candidates
        .into_iter()
        .find(|c| c.is_file())
        .ok_or_else(|| Error::usage(format!("net_path {p}: no checkpoint found there")))
}
