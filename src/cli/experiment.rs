//! What the commands need of a model family beyond training: its data, its checkpoints, its
//! pictures and its evaluation. `train`, `evaluate`, `viz` and `bench` are written once over this.
use crate::config::Resolved;
use crate::emorl::Emorl;
use crate::error::{Error, Result};
use crate::nem::Nem;
use crate::sqair::Sqair;
use crate::train::Family;
use burn::module::Module;
use burn::tensor::Device;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

pub trait Experiment: Family {
    /// The data file, generated first when missing and allowed (`gestalt generate`).
    fn generate(&self) -> Result<PathBuf>;
    /// Every check a run can fail on its config or its data, before anything is written: each
    /// split it will read is read (and kept), and batches fit in their splits.
    fn prepare(&self) -> Result<()>;
    /// The model as `info` prints it, and its summary line.
    fn info(&self, device: &Device) -> Result<(String, Value)>;
    /// The network of checkpoint `ckpt`, with the family's state restored.
    fn load_net(&self, ckpt: &Path, device: &Device) -> Result<Self::Model>;
    /// The run's pictures under `dir/viz`.
    fn draw(&self, model: &Self::Model, dir: &Path, device: &Device) -> Result<()>;
    /// Evaluate `model`: the report's name (`eval/<name>.json`) and its fields.
    /// Evaluate `model` on the replicas' `devices` (the first draws any pictures): the report's
    /// name (`eval/<name>.json`) and its fields.
    fn evaluate(&self, model: &Self::Model, out: &Path, devices: &[Device]) -> Result<(String, Map<String, Value>)>;
    /// The checkpoint `evaluate` reads, from the config.
    fn net_path(&self) -> Option<String>;
    /// Where `evaluate` writes when `--out` is not given (None: the checkpoint's run directory).
    fn eval_dir(&self) -> Option<String> {
        None
    }
    /// What `bench` reports about the configuration.
    fn describe(&self) -> Value;
}

/// The model family of a resolved configuration.
#[allow(clippy::large_enum_variant)] // one per command, never moved in a loop
pub enum Model {
    Nem(Nem),
    Emorl(Emorl),
    Sqair(Sqair),
}

pub fn family(r: &Resolved) -> Result<Model> {
    match r.family.as_str() {
        "nem" | "rnem" => Ok(Model::Nem(Nem::new(r)?)),
        "emorl" => Ok(Model::Emorl(Emorl::new(r)?)),
        "sqair" => Ok(Model::Sqair(Sqair::new(r)?)),
        other => Err(Error::usage(format!("model family `{other}` is not available in this version"))),
    }
}

/// `with_family!(model, m => expr)`: `expr` with `m` bound to the family's [`Experiment`]. The one
/// place that lists the families' variants; a new family adds a line here and one in [`family`].
macro_rules! with_family {
    ($model:expr, $m:ident => $body:expr) => {
        match $model {
            $crate::cli::experiment::Model::Nem($m) => $body,
            $crate::cli::experiment::Model::Emorl($m) => $body,
            $crate::cli::experiment::Model::Sqair($m) => $body,
        }
    };
}
pub(crate) use with_family;

/// Scores as a JSON object.
fn object(scores: impl IntoIterator<Item = (String, f64)>) -> Map<String, Value> {
    scores.into_iter().map(|(k, v)| (k, json!(v))).collect()
}

impl Experiment for Nem {
    fn generate(&self) -> Result<PathBuf> {
        self.data_file()
    }

    fn prepare(&self) -> Result<()> {
        self.check_data()
    }

    fn info(&self, device: &Device) -> Result<(String, Value)> {
        let model = self.build_model(device)?;
        Ok((model.to_string(), json!({ "family": self.resolved().family, "trainable_parameters": model.num_params() })))
    }

    fn load_net(&self, ckpt: &Path, device: &Device) -> Result<Self::Model> {
        Ok(crate::weights::load(self, self.build_model(device)?, ckpt)?.0)
    }

    fn draw(&self, model: &Self::Model, dir: &Path, device: &Device) -> Result<()> {
        crate::nem::viz::draw_all(self, model, dir, device)
    }

    fn evaluate(&self, model: &Self::Model, out: &Path, devices: &[Device]) -> Result<(String, Map<String, Value>)> {
        let split = match self.cfg.run_config.usage.as_str() {
            "train" => "training".to_string(),
            other => other.to_string(),
        };
        let mut m = Map::from_iter([("split".to_string(), json!(split))]);
        m.extend(object(Nem::evaluate(self, model, &split, devices)?));
        if m.contains_key("AMI_frame_01") {
            crate::nem::viz::scores_over_time(&m, &out.join("viz").join(format!("{split}_scores_over_time.png")))?;
        }
        Ok((split, m))
    }

    fn net_path(&self) -> Option<String> {
        self.cfg.net_path.clone()
    }

    fn describe(&self) -> Value {
        json!({
            "batch_size": self.cfg.training.batch_size,
            "k": self.cfg.nem.k,
            "nr_steps": self.cfg.nem.nr_steps,
        })
    }
}

impl Experiment for Emorl {
    /// The train file (a generator writes its test file beside it).
    fn generate(&self) -> Result<PathBuf> {
        Ok(self.file(false)?.0)
    }

    fn prepare(&self) -> Result<()> {
        self.check_data()
    }

    fn info(&self, device: &Device) -> Result<(String, Value)> {
        let model = self.build_model(device);
        // The original also counts GECO's two scalars (C_ema, ζ) as parameters without gradient.
        let line = json!({ "family": "emorl", "trainable_parameters": model.num_params(), "geco_scalars": 2 });
        Ok((model.to_string(), line))
    }

    fn load_net(&self, ckpt: &Path, device: &Device) -> Result<Self::Model> {
        let (model, state) = crate::weights::load(self, self.build_model(device), ckpt)?;
        // GECO's multiplier sets the direction of the refinement gradient at test time too.
        self.load_state(&state, &device.clone().autodiff())?;
        Ok(model)
    }

    fn draw(&self, model: &Self::Model, dir: &Path, device: &Device) -> Result<()> {
        crate::emorl::viz::draw_all(self, model, dir, device)
    }

    fn evaluate(&self, model: &Self::Model, out: &Path, devices: &[Device]) -> Result<(String, Map<String, Value>)> {
        let t = &self.cfg.test;
        match t.eval_type.as_str() {
            "sample_viz" => {
                let dir = out.join("eval").join("sample_viz");
                let paths = crate::emorl::viz::write_samples(self, model, t.num_images_to_process, &dir, &devices[0])?;
                Ok((
                    "sample_viz".into(),
                    Map::from_iter([("split".into(), json!("test")), ("pictures".into(), json!(paths))]),
                ))
            }
            kind @ ("disentanglement_preprocessing" | "activeness" | "disentanglement_viz" | "make_gifs") => {
                use crate::emorl::disentangle::{GIF_DIMS, IMAGES, read_range, write_range};
                let split = self.test_split(t.num_images_to_process.max(IMAGES))?;
                let path = out.join("eval").join("z_range.txt");
                // The preprocessing (and make_gifs, as the original) computes the range; the
                // others read it, or compute it when it is missing.
                let fresh = matches!(kind, "disentanglement_preprocessing" | "make_gifs");
                let range = match read_range(&path)? {
                    Some(r) if !fresh => r,
                    _ => {
                        let r = self.latent_range(model, &split, &devices[0]);
                        write_range(&path, &r)?;
                        r
                    }
                };
                let mut m = Map::from_iter([
                    ("split".to_string(), json!("test")),
                    ("z_range".to_string(), json!(range)),
                    ("z_range_file".to_string(), json!(path)),
                ]);
                let (k, [_, h, w]) = (self.cfg.net.K, self.cfg.net.input_size);
                match kind {
                    "activeness" | "make_gifs" => {
                        let a = self.activeness(model, &split, &range, &devices[0])?;
                        let mean: Vec<f64> =
                            (0..range.len()).map(|j| a.iter().map(|v| v[j]).sum::<f64>() / a.len() as f64).collect();
                        if kind == "make_gifs" {
                            // The most active dimensions first; one GIF per slot and dimension.
                            let mut top: Vec<usize> = (0..mean.len()).collect();
                            top.sort_by(|&i, &j| mean[j].total_cmp(&mean[i]));
                            top.truncate(GIF_DIMS);
                            let dir = out.join("eval").join("make_gifs");
                            let mut gifs = Vec::new();
                            let slots: Vec<usize> = (0..k).collect();
                            let all = self.traversal(model, &split, &range, &slots, &top, &devices[0]);
                            for (slot, rows) in all.iter().enumerate() {
                                for (r, frames) in rows.iter().enumerate() {
                                    let frames: Vec<_> =
                                        frames.iter().map(|f| crate::emorl::viz::traversal_frame(f, h, w)).collect();
                                    let gif = dir.join(format!("slot_{slot}_row_{r}.gif"));
                                    crate::viz::save_gif(&gif, &frames, 250)?;
                                    gifs.push(gif);
                                }
                            }
                            m.insert("dims".into(), json!(top));
                            m.insert("gifs".into(), json!(gifs));
                        } else {
                            m.insert("activeness".into(), json!(a));
                        }
                        m.insert("activeness_mean".into(), json!(mean));
                    }
                    "disentanglement_viz" => {
                        let slot = t.disentangle_slot; // below K: checked with the config
                        let dims: Vec<usize> = (0..range.len()).collect();
                        let rows = self.traversal(model, &split, &range, &[slot], &dims, &devices[0]).remove(0);
                        let image: Vec<f32> = split.imgs[..h * w * 3].iter().map(|&v| f32::from(v) / 255.0).collect();
                        let png = out.join("eval").join(format!("slot_{slot}_disentanglement.png"));
                        crate::emorl::viz::draw_traversal(&image, &rows, &dims, h, w).save_png(&png)?;
                        m.insert("slot".into(), json!(slot));
                        m.insert("picture".into(), json!(png));
                    }
                    _ => {}
                }
                Ok((kind.to_string(), m))
            }
            _ => {
                let split = self.test_split(t.num_images_to_process)?;
                let mut m = Map::from_iter([("split".to_string(), json!("test"))]);
                m.extend(object(self.score(model, &split, t.batch_size, devices)?.summary()));
                Ok(("test".into(), m))
            }
        }
    }

    fn net_path(&self) -> Option<String> {
        let t = &self.cfg.test;
        let in_dir = || Path::new(&t.checkpoint_dir).join(&t.checkpoint).display().to_string();
        self.cfg.net_path.clone().or_else(|| (!t.checkpoint.is_empty()).then(in_dir))
    }

    fn eval_dir(&self) -> Option<String> {
        let d = &self.cfg.test.out_dir;
        (!d.is_empty()).then(|| d.clone())
    }

    fn describe(&self) -> Value {
        json!({
            "batch_size": self.cfg.training.batch_size,
            "K": self.cfg.net.K,
            "refinement_iters": self.refinement_at(0),
            "image": self.cfg.net.input_size,
        })
    }
}

impl Experiment for Sqair {
    fn generate(&self) -> Result<PathBuf> {
        self.data_file()
    }

    fn prepare(&self) -> Result<()> {
        self.check_data()
    }

    fn info(&self, device: &Device) -> Result<(String, Value)> {
        let model = self.build_model(device)?;
        Ok((model.to_string(), json!({ "family": "sqair", "trainable_parameters": model.num_params() })))
    }

    fn load_net(&self, ckpt: &Path, device: &Device) -> Result<Self::Model> {
        Ok(crate::weights::load(self, self.build_model(device)?, ckpt)?.0)
    }

    fn draw(&self, model: &Self::Model, dir: &Path, device: &Device) -> Result<()> {
        crate::sqair::viz::draw_all(self, model, dir, device)
    }

    /// The importance-weighted metrics on `dataset.eval_split` at its full sequence length
    /// (`eval_size_fraction` of it), JSON as the original's logger names them.
    fn evaluate(&self, model: &Self::Model, _out: &Path, devices: &[Device]) -> Result<(String, Map<String, Value>)> {
        let split = self.cfg.dataset.eval_split.clone();
        let n = self.split(&split)?.n;
        let batches = ((n as f64 * self.cfg.eval_size_fraction) as usize / self.cfg.batch_size.min(n)).max(1);
        let mut m = Map::from_iter([("split".to_string(), json!(split))]);
        m.extend(object(self.score(model, &split, batches, None, devices)?));
        Ok((split, m))
    }

    fn net_path(&self) -> Option<String> {
        self.cfg.net_path.clone()
    }

    fn describe(&self) -> Value {
        json!({ "batch_size": self.cfg.batch_size, "k_particles": self.cfg.k_particles, "seq_len": self.cfg.seq_len })
    }
}
