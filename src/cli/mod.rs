//! The `gestalt` command line: sacred-style `with` words, one subcommand per use.

/// A line on stdout; a reader that has gone away (`| head`, a closed pipe) is no error.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

mod bench;
mod experiment;

use crate::config::{self, Resolved};
use crate::error::{Error, Result};
use crate::train::{self, Family, RunDir};
use clap::{Args, Parser, Subcommand};
use experiment::{Experiment, family, with_family};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(name = "gestalt", version, about = "Object-centric (perceptual grouping) models on Burn")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a model: `gestalt train with dataset.shapes network.shapes nem.k=4`.
    Train(Common),
    /// Evaluate a checkpoint (`net_path=...`) on the test split, like `run_from_file`.
    Evaluate(Common),
    /// Run a trained sequence model on its own predictions after nem.nr_steps observed frames
    /// (`net_path=...`, `run_config.rollout_steps=...`), like R-NEM's `rollout_from_file`.
    Rollout(Common),
    /// Print the resolved configuration as JSON.
    PrintConfig(Common),
    /// Print the model and its trainable parameter count.
    Info(Common),
    /// Write the dataset's HDF5 file with the procedural generator.
    Generate(Common),
    /// Median training-step time and peak memory, as one JSON line.
    Bench(Common),
    /// Redraw a run's pictures (DIR/viz/) from its config and best checkpoint.
    Viz(VizArgs),
    /// Write a run's best weights under the original code's names (PyTorch state_dict names
    /// for EMORL, TensorFlow variable names for the N-EM family and SQAIR), the config as
    /// metadata.
    Export(ExportArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// The run directory.
    pub dir: PathBuf,
    /// The file format (safetensors).
    #[arg(long, default_value = "safetensors")]
    pub format: String,
    /// The file to write (default DIR/weights.safetensors).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct VizArgs {
    /// The run directory.
    pub dir: PathBuf,
    /// flex (default CPU), ndarray, wgpu, vulkan or cuda.
    #[arg(long, default_value = "flex")]
    pub backend: String,
    /// Device index for GPU backends.
    #[arg(long)]
    pub device: Option<usize>,
}

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// `with` followed by config names and key=value overrides.
    #[arg(num_args = 0.., allow_hyphen_values = false)]
    pub words: Vec<String>,
    /// flex (default CPU), ndarray, wgpu, vulkan or cuda.
    #[arg(long, default_value = "flex")]
    pub backend: String,
    /// Device index for GPU backends.
    #[arg(long)]
    pub device: Option<usize>,
    /// Run directory (default: runs/<config words>-<timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Overrides the config's `seed`.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Model replicas sharing each batch (overrides `training.devices`): CPU threads on flex,
    /// GPUs 0..N−1 on wgpu, vulkan and cuda.
    #[arg(long)]
    pub devices: Option<usize>,
    /// No progress bar or per-epoch lines.
    #[arg(long)]
    pub quiet: bool,
    /// Continue training in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Steps to time (bench).
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// The optimiser step the bench starts at (bench): schedules read it, e.g. EMORL's GECO
    /// form from step 1001 (`--start-step 1001`, as the PyTorch reference's bench).
    #[arg(long, default_value_t = 0)]
    pub start_step: u64,
}

impl Common {
    /// The words after `with` (the keyword itself is optional), plus `--seed`.
    fn config_words(&self) -> Vec<String> {
        let mut w: Vec<String> = self.words.iter().skip_while(|w| *w == "with").cloned().collect();
        if let Some(s) = self.seed {
            w.push(format!("seed={s}"));
        }
        w
    }

    /// The resolved config; `--devices` sets `training.devices` (SQAIR's flat `devices`).
    pub fn resolve(&self) -> Result<Resolved> {
        let mut words = self.config_words();
        if let Some(n) = self.devices {
            let key = if config::resolve(&words)?.family == "sqair" { "devices" } else { "training.devices" };
            words.push(format!("{key}={n}"));
        }
        config::resolve(&words)
    }
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::PrintConfig(c) => {
            let r = c.resolve()?;
            family(&r)?; // type-check every value before printing
            say!("{}", serde_json::to_string_pretty(&r.value).unwrap());
            Ok(())
        }
        Command::Info(c) => {
            let device = crate::backend::device(&c.backend, c.device)?;
            let (model, line) = with_family!(family(&c.resolve()?)?, m => m.info(&device))?;
            say!("{model}");
            say!("{line}");
            Ok(())
        }
        Command::Generate(c) => {
            let path = with_family!(family(&c.resolve()?)?, m => m.generate())?;
            say!("{}", json!({ "dataset": path }));
            Ok(())
        }
        Command::Train(c) => with_family!(family(&c.resolve()?)?, m => train_cmd(&c, &m)),
        Command::Evaluate(c) => with_family!(family(&c.resolve()?)?, m => evaluate_cmd(&c, &m)),
        Command::Bench(c) => {
            let r = c.resolve()?;
            with_family!(family(&r)?, m => bench::bench(&c, &r, &m))
        }
        Command::Rollout(c) => match family(&c.resolve()?)? {
            experiment::Model::Nem(m) => rollout_cmd(&c, &m),
            _ => Err(Error::usage("rollout runs the N-EM family's sequence models (R-NEM, RNN-EM, N-EM)")),
        },
        Command::Viz(v) => viz_cmd(&v),
        Command::Export(e) => export_cmd(&e),
    }
}

/// A run directory's resolved config and best checkpoint, or a usage error naming what is missing.
fn run_files(dir: &Path) -> Result<(Resolved, PathBuf)> {
    let (config, best) = (dir.join("config.json"), RunDir { dir: dir.to_path_buf() }.best());
    if !config.is_file() || !best.is_file() {
        return Err(Error::usage(format!(
            "{} is not a run directory (it needs config.json and checkpoints/best)",
            dir.display()
        )));
    }
    Ok((config::resolve(&[config.display().to_string()])?, best))
}

fn export_cmd(e: &ExportArgs) -> Result<()> {
    if e.format != "safetensors" {
        return Err(Error::usage(format!("export --format {}: only safetensors is written", e.format)));
    }
    let (resolved, best) = run_files(&e.dir)?;
    let out = e.out.clone().unwrap_or_else(|| e.dir.join("weights.safetensors"));
    let device = crate::backend::device("flex", None)?;
    let tensors = with_family!(family(&resolved)?, m => {
        let model = m.load_net(&best, &device)?;
        let names = m.original_names(&model)?;
        let meta = serde_json::Map::from_iter([
            ("gestalt_config".to_string(), json!(resolved.value.to_string())),
            ("gestalt_family".to_string(), json!(resolved.family)),
            (crate::weights::STATE_KEY.to_string(), json!(m.state().to_string())),
            ("names".to_string(), json!(names.layout.framework())),
        ]);
        crate::weights::export(&model, &names, &meta, &out)?;
        names.pairs.len()
    });
    say!("{}", json!({ "export": out, "tensors": tensors }));
    Ok(())
}

fn viz_cmd(v: &VizArgs) -> Result<()> {
    let (resolved, best) = run_files(&v.dir)?;
    let device = crate::backend::device(&v.backend, v.device)?;
    with_family!(family(&resolved)?, m => {
        m.draw(&m.load_net(&best, &device)?, &v.dir, &device)?
    });
    say!("{}", json!({ "viz": v.dir.join("viz") }));
    Ok(())
}

fn default_out(words: &[String]) -> PathBuf {
    let name: String = words
        .iter()
        .map(|w| w.replace(['/', '='], "."))
        .collect::<Vec<_>>()
        .join("_")
        .chars()
        .filter(|c| c.is_alphanumeric() || "._-".contains(*c))
        .take(80)
        .collect();
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace([':', '-'], "")
        .trim_end_matches('Z')
        .to_string();
    let name = if name.is_empty() { "default".to_string() } else { name };
    PathBuf::from("runs").join(format!("{name}-{stamp}"))
}

fn run_config_json(r: &Resolved, backend: &str) -> Value {
    let mut v = r.value.clone();
    v["gestalt"] = json!({ "version": env!("CARGO_PKG_VERSION"), "backend": backend, "words": r.words });
    v
}

fn train_cmd<E: Experiment>(c: &Common, exp: &E) -> Result<()> {
    let r = c.resolve()?;
    let out = c.out.clone().unwrap_or_else(|| default_out(&r.words));
    let run = RunDir { dir: out.clone() };
    if c.resume {
        if !run.last().is_file() {
            return Err(Error::usage(format!("--resume: {} has no checkpoints/last", out.display())));
        }
    } else if run.last().exists() {
        return Err(Error::usage(format!(
            "{} already holds a run: pass --resume to continue it, or another --out",
            out.display()
        )));
    }
    let devices = crate::backend::devices(&c.backend, c.device, exp.settings().devices)?;
    let device = devices[0].clone();
    exp.prepare()?; // bad or missing data fails before anything is written
    std::fs::create_dir_all(&out)?;
    config::write_json(&out.join("config.json"), &run_config_json(&r, &c.backend))?;
    if !c.quiet {
        eprintln!("run directory {}", out.display());
    }
    let best = train::train(exp, &run, &devices, c.resume, c.quiet)?;
    let model = exp.load_net(&best, &device)?;
    exp.draw(&model, &out, &device)?;
    report(exp, &model, &best, &out, &devices)
}

fn evaluate_cmd<E: Experiment>(c: &Common, exp: &E) -> Result<()> {
    let net_path =
        exp.net_path().ok_or_else(|| Error::usage("evaluate needs net_path=<run directory or checkpoint>"))?;
    let ckpt = train::checkpoint::resolve_net_path(&net_path)?;
    let out = match (&c.out, exp.eval_dir()) {
        (Some(o), _) => o.clone(),
        (None, Some(d)) => PathBuf::from(d),
        (None, None) => run_dir_of(&ckpt),
    };
    let devices = crate::backend::devices(&c.backend, c.device, exp.settings().devices)?;
    report(exp, &exp.load_net(&ckpt, &devices[0])?, &ckpt, &out, &devices)
}

fn rollout_cmd(c: &Common, m: &crate::nem::Nem) -> Result<()> {
    let net_path = m.net_path().ok_or_else(|| Error::usage("rollout needs net_path=<run directory or checkpoint>"))?;
    let ckpt = train::checkpoint::resolve_net_path(&net_path)?;
    let out = c.out.clone().unwrap_or_else(|| run_dir_of(&ckpt));
    let device = crate::backend::device(&c.backend, c.device)?;
    let mut obj = m.rollout(&m.load_net(&ckpt, &device)?, &out, &device)?;
    obj.insert("checkpoint".into(), json!(ckpt));
    let v = Value::Object(obj);
    config::write_json(&out.join("rollout").join("rollout.json"), &v)?;
    say!("{}", serde_json::to_string(&v).unwrap());
    Ok(())
}

/// The run directory a checkpoint belongs to (`DIR/checkpoints/best` → `DIR`).
fn run_dir_of(ckpt: &Path) -> PathBuf {
    let parent = ckpt.parent().unwrap_or(Path::new("."));
    if parent.file_name().is_some_and(|n| n == "checkpoints") {
        parent.parent().unwrap_or(Path::new(".")).to_path_buf()
    } else {
        parent.to_path_buf()
    }
}

/// Evaluate the network of checkpoint `ckpt` and report it: the last stdout line and
/// `out/eval/<name>.json`.
fn report<E: Experiment>(
    exp: &E,
    model: &E::Model,
    ckpt: &Path,
    out: &Path,
    devices: &[burn::tensor::Device],
) -> Result<()> {
    let (name, mut obj) = exp.evaluate(model, out, devices)?;
    obj.insert("checkpoint".into(), json!(ckpt));
    let v = Value::Object(obj);
    config::write_json(&out.join("eval").join(format!("{name}.json")), &v)?;
    // The scores are already in eval/<name>.json when stdout is read.
    say!("{}", serde_json::to_string(&v).unwrap());
    Ok(())
}
