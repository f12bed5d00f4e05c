//! Weights that travel: a model's weights as safetensors under the original code's parameter
//! names and layouts, and weights read back from such files or from the original PyTorch
//! checkpoints (`.pth`), through Burn's own stores. Each family says how its tensors are named
//! in the original (`OriginalNames`); this module only renames and re-lays them out.
use crate::error::{Error, Result};
use crate::train::{Family, checkpoint::Checkpoint};
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::pytorch::PytorchReader;
use burn::store::{KeyRemapper, ModuleAdapter, ModuleContext, ModuleSnapshot, SafetensorsStore, bridge};
use burn::tensor::{DType, Shape, TensorData};
use safetensors::SafeTensors;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::Path;

/// The original's layout conventions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Layout {
    /// PyTorch: linear weights [out, in]; conv weights [out, in, kh, kw] as gestalt's.
    Torch,
    /// TensorFlow 1: dense kernels [in, out] as gestalt's; conv kernels [kh, kw, in, out].
    Tf,
}

impl Layout {
    pub fn framework(self) -> &'static str {
        match self {
            Layout::Torch => "pytorch",
            Layout::Tf => "tensorflow1",
        }
    }
}

/// How a model's tensors are named in the original code: (gestalt path, original name) for
/// every tensor of the model.
pub struct OriginalNames {
    pub layout: Layout,
    pub pairs: Vec<(String, String)>,
    /// What the original's own loader does to older checkpoints' names before matching them
    /// (None: the tensor is dropped).
    pub legacy: fn(&str) -> Option<String>,
    /// Tensors the original keeps in another shape of the same size: (gestalt path, original
    /// shape), e.g. TF's scalar variables, which are [1] here.
    pub reshapes: Vec<(String, Vec<usize>)>,
}

impl OriginalNames {
    /// Name every tensor of `model` with `name` (gestalt path → original name); a tensor it does
    /// not know is an error, so an export never drops one silently.
    pub fn of<M: ModuleSnapshot>(model: &M, layout: Layout, name: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let pairs = model
            .collect(None, None, false)
            .into_iter()
            .map(|t| name(&t.name).map(|n| (t.name.clone(), n)).ok_or(t.name))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|p| Error::internal(format!("no original name for the tensor `{p}`")))?;
        Ok(OriginalNames { layout, pairs, legacy: |n| Some(n.to_string()), reshapes: Vec::new() })
    }

    fn remapper(&self, to_original: bool) -> KeyRemapper {
        let exact = |s: &str| format!("^{}$", s.replace('.', "\\."));
        self.pairs.iter().fold(KeyRemapper::new(), |r, (g, o)| {
            let (from, to) = if to_original { (g, o) } else { (o, g) };
            r.add_pattern(exact(from), to.as_str()).expect("tensor paths are plain names")
        })
    }
}

/// True for the files `net_path` reads through this module rather than as a gestalt checkpoint.
pub fn is_foreign(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("safetensors" | "pth" | "pt"))
}

/// The metadata key of the family's state (GECO's scalars) in an exported file.
pub const STATE_KEY: &str = "gestalt_family_state";

/// `model` with the weights of `path` — a gestalt checkpoint, an exported `.safetensors` or an
/// original `.pth` — and the family state that came with them (Null: none).
pub fn load<F: Family>(family: &F, model: F::Model, path: &Path) -> Result<(F::Model, Value)> {
    if !is_foreign(path) {
        let ck = Checkpoint::load(path)?;
        return Ok((ck.apply_model(model)?, ck.state["family"].clone()));
    }
    let names = family.original_names(&model)?;
    let (model, mut extra) = import(model, &names, path)?;
    // An export keeps the state in its metadata; an original checkpoint as scalar tensors.
    let state = match extra.remove(STATE_KEY) {
        Some(s) => s,
        None => {
            let scalars: Map<String, Value> = extra.into_iter().filter(|(_, v)| v.is_number()).collect();
            if scalars.is_empty() { Value::Null } else { Value::Object(scalars) }
        }
    };
    Ok((model, state))
}

/// Re-lays out tensors between gestalt and the original: PyTorch's linear weights are
/// transposed, TensorFlow's conv kernels are HWIO where gestalt's are OIHW, and the family's
/// `reshapes` take their other shape.
#[derive(Clone)]
struct Relayout {
    layout: Layout,
    to_original: bool,
    /// gestalt path → (gestalt shape, original shape).
    reshapes: HashMap<String, (Vec<usize>, Vec<usize>)>,
}

impl Relayout {
    fn new<M: ModuleSnapshot>(model: &M, names: &OriginalNames, to_original: bool) -> Self {
        let mut reshapes = HashMap::new();
        if !names.reshapes.is_empty() {
            for t in model.collect(None, None, false) {
                if let Some((_, orig)) = names.reshapes.iter().find(|(p, _)| *p == t.name) {
                    reshapes.insert(t.name.clone(), (t.shape.to_vec(), orig.clone()));
                }
            }
        }
        Relayout { layout: names.layout, to_original, reshapes }
    }
}

impl ModuleAdapter for Relayout {
    fn adapt(&self, tensor: PackTensor, ctx: ModuleContext<'_>) -> PackTensor {
        if let Some((ours, orig)) = self.reshapes.get(&tensor.name) {
            let dims = if self.to_original { orig.clone() } else { ours.clone() };
            if tensor.shape.num_elements() != dims.iter().product::<usize>() {
                return tensor; // does not fit: `apply` reports the shape
            }
            let (name, dtype) = (tensor.name.clone(), tensor.dtype);
            let shape = Shape::from(dims.clone());
            return bridge::map_data(tensor, name, dtype, shape, move |d| {
                TensorData::new(d.convert::<f32>().try_to_vec::<f32>().expect("float weights"), dims.clone())
            });
        }
        let param = tensor.name.rsplit('.').next().unwrap_or_default().to_string();
        let module = ctx.module_type().unwrap_or_default();
        let perm: &[usize] = match (self.layout, module, param.as_str(), tensor.shape.len()) {
            (Layout::Torch, "Struct:Dense", "weight", 2) => &[1, 0],
            (Layout::Tf, "Struct:Conv2d", "weight", 4) if self.to_original => &[2, 3, 1, 0], // OIHW → HWIO
            (Layout::Tf, "Struct:Conv2d", "weight", 4) => &[3, 2, 0, 1],                     // HWIO → OIHW
            _ => return tensor,
        };
        let shape = Shape::from(perm.iter().map(|&a| tensor.shape[a]).collect::<Vec<_>>());
        let (name, dtype, perm) = (tensor.name.clone(), tensor.dtype, perm.to_vec());
        bridge::map_data(tensor, name, dtype, shape, move |d| permute(d, &perm))
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}

/// `data` with its axes reordered: out axis i is in axis perm[i].
fn permute(data: TensorData, perm: &[usize]) -> TensorData {
    let dims = data.shape().to_vec();
    let values = data.convert::<f32>().try_to_vec::<f32>().expect("float weights");
    let out_dims: Vec<usize> = perm.iter().map(|&a| dims[a]).collect();
    let strides: Vec<usize> = (0..dims.len()).map(|i| dims[i + 1..].iter().product()).collect();
    let mut out = Vec::with_capacity(values.len());
    let mut idx = vec![0usize; dims.len()];
    for _ in 0..values.len() {
        out.push(values[idx.iter().zip(perm).map(|(&i, &a)| i * strides[a]).sum::<usize>()]);
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < out_dims[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    TensorData::new(out, out_dims)
}

/// Write `model`'s weights to `out` (safetensors) under their original names, with `metadata`
/// (string values) beside them. The file is written atomically.
pub fn export<M: ModuleSnapshot>(
    model: &M,
    names: &OriginalNames,
    metadata: &Map<String, Value>,
    out: &Path,
) -> Result<()> {
    let mut store = SafetensorsStore::from_bytes(None)
        .remap(names.remapper(true))
        .with_to_adapter(Relayout::new(model, names, true));
    for (k, v) in metadata {
        store = store.metadata(k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
    }
    model.save_into(&mut store).map_err(|e| Error::internal(format!("export: {e}")))?;
    let bytes = store.get_bytes().map_err(|e| Error::internal(format!("export: {e}")))?;
    crate::util::write_atomic(out, &bytes)
}

/// Load weights into `model` from a `.safetensors` file (written by `export`, or by PyTorch under
/// the same names) or from an original PyTorch checkpoint (`{'model': state_dict}`, with or without
/// DDP's `module.` prefix). Every tensor of the model must be found. Returns the model and what
/// else the file holds for the family: safetensors metadata (JSON values where they parse) and
/// the scalar tensors no model tensor took (GECO's `geco_C_ema`, `geco_beta`), by original name.
pub fn import<M: ModuleSnapshot>(mut model: M, names: &OriginalNames, path: &Path) -> Result<(M, Map<String, Value>)> {
    let bad = |e: String| Error::usage(format!("cannot load weights from {}: {e}", path.display()));
    let mut extra = Map::new();
    let tensors: Vec<PackTensor> = if path.extension().is_some_and(|e| e == "safetensors") {
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let file = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
        let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
        for (k, v) in meta.metadata().clone().unwrap_or_default() {
            extra.insert(k, serde_json::from_str(&v).unwrap_or(Value::String(v)));
        }
        let mut out = Vec::new();
        for (name, view) in file.tensors() {
            if view.dtype() != safetensors::Dtype::F32 {
                return Err(bad(format!("`{name}` is {:?}; only float32 weights are read", view.dtype())));
            }
            let data = TensorData::from_bytes_vec(view.data().to_vec(), view.shape().to_vec(), DType::F32);
            out.push(bridge::from_data(data, name, None));
        }
        out
    } else {
        // An original checkpoint keeps the state_dict under 'model'; a bare state_dict works too.
        let reader = PytorchReader::with_top_level_key(path, "model")
            .or_else(|_| PytorchReader::new(path))
            .map_err(|e| bad(e.to_string()))?;
        reader
            .into_tensors()
            .into_iter()
            .filter_map(|(name, t)| {
                let mut t = bridge::from_pytorch(t);
                t.name = (names.legacy)(name.strip_prefix("module.").unwrap_or(&name))?;
                Some(t)
            })
            .collect()
    };
    let to_gestalt: HashMap<&str, &str> = names.pairs.iter().map(|(g, o)| (o.as_str(), g.as_str())).collect();
    let mut known = Vec::new();
    for mut t in tensors {
        match to_gestalt.get(t.name.as_str()) {
            Some(g) => {
                t.name = g.to_string();
                known.push(t);
            }
            None if t.shape.num_elements() == 1 => {
                let v = bridge::to_data(&t).ok().and_then(|d| d.convert::<f64>().try_to_vec::<f64>().ok());
                extra.insert(t.name.clone(), json!(v.and_then(|v| v.first().copied())));
            }
            None => return Err(bad(format!("`{}` is not a tensor of this model", t.name))),
        }
    }
    let adapter = Relayout::new(&model, names, false);
    let result = model.apply(known, None, Some(Box::new(adapter)), false);
    let missing: Vec<_> = result.missing.iter().map(|(p, _)| original(names, p)).collect();
    let mut problems: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
    if !missing.is_empty() {
        problems.insert(0, format!("missing {missing:?}"));
    }
    if !problems.is_empty() {
        return Err(bad(problems.join("; ")));
    }
    Ok((model, extra))
}

fn original(names: &OriginalNames, path: &str) -> String {
    names.pairs.iter().find(|(g, _)| g == path).map_or(path.to_string(), |(_, o)| o.clone())
}
