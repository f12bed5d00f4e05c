//! The `gestalt` command line: sacred-style `with` words, one subcommand per use.
mod bench;

use crate::config::{self, Resolved};
use crate::error::{Error, Result};
use crate::nem::Nem;
use crate::train::{self, RunDir, checkpoint::Checkpoint};
use burn::module::Module;
use clap::{Args, Parser, Subcommand};
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
}

#[derive(Args, Debug, Clone)]
pub struct VizArgs {
    /// The run directory.
    pub dir: PathBuf,
    /// flex (default CPU), ndarray, wgpu or cuda.
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
    /// flex (default CPU), ndarray, wgpu or cuda.
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
    /// No progress bar or per-epoch lines.
    #[arg(long)]
    pub quiet: bool,
    /// Continue training in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Steps to time (bench).
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
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

    pub fn resolve(&self) -> Result<Resolved> {
        config::resolve(&self.config_words())
    }
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::PrintConfig(c) => {
            let r = c.resolve()?;
            // Type-check every value before printing.
            match r.family.as_str() {
                "emorl" => drop(emorl_config(&r)?),
                _ => drop(family(&r)?),
            }
            println!("{}", serde_json::to_string_pretty(&r.value).unwrap());
            Ok(())
        }
        Command::Info(c) => info(&c),
        Command::Generate(c) => {
            let r = c.resolve()?;
            let path = if r.family == "emorl" {
                let d = emorl_config(&r)?.0.dataset;
                crate::data::ensure_emorl_file(&d.data_path, &d.h5_path, d.generate, d.seed, [d.sizes.train, d.sizes.test])?
            } else {
                family(&r)?.data_file()?
            };
            println!("{}", json!({ "dataset": path }));
            Ok(())
        }
        Command::Train(c) => train_cmd(&c),
        Command::Evaluate(c) => evaluate_cmd(&c),
        Command::Bench(c) => bench::bench(&c, &family(&c.resolve()?)?),
        Command::Viz(v) => viz_cmd(&v),
    }
}

fn viz_cmd(v: &VizArgs) -> Result<()> {
    let (config, best) = (v.dir.join("config.json"), RunDir { dir: v.dir.clone() }.best());
    if !config.is_file() || !best.is_file() {
        return Err(Error::usage(format!(
            "{} is not a run directory (it needs config.json and checkpoints/best)",
            v.dir.display()
        )));
    }
    let nem = family(&config::resolve(&[config.display().to_string()])?)?;
    let device = crate::backend::device(&v.backend, v.device)?;
    let model = load_net(&nem, &best, &device)?;
    crate::nem::viz::draw_all(&nem, &model, &v.dir, &device)?;
    println!("{}", json!({ "viz": v.dir.join("viz") }));
    Ok(())
}

/// The model family of a resolved configuration.
fn family(r: &Resolved) -> Result<Nem> {
    match r.family.as_str() {
        "nem" => Nem::new(r),
        "emorl" => Err(Error::usage(
            "the EMORL family is not trainable yet in this version (print-config and info work)",
        )),
        other => Err(Error::usage(format!("model family `{other}` is not available in this version"))),
    }
}

/// An EMORL config, type-checked, with the network shape it asks for.
fn emorl_config(r: &Resolved) -> Result<(crate::emorl::config::EmorlConfig, crate::emorl::model::NetShape)> {
    let cfg: crate::emorl::config::EmorlConfig = r.typed()?;
    let shape = cfg.shape().map_err(Error::usage)?;
    Ok((cfg, shape))
}

fn info(c: &Common) -> Result<()> {
    let r = c.resolve()?;
    if r.family == "emorl" {
        let (_, shape) = emorl_config(&r)?;
        let device = crate::backend::device(&c.backend, c.device)?;
        let model = crate::emorl::model::EmorlNet::new(&shape, &device);
        // The original also counts GECO's two scalars (C_ema, ζ) as parameters without gradient.
        let out = json!({ "family": "emorl", "trainable_parameters": model.num_params(), "geco_scalars": 2 });
        println!("{out}");
        return Ok(());
    }
    let nem = family(&r)?;
    let device = crate::backend::device(&c.backend, c.device)?;
    let model = nem.build_model(&device)?;
    println!("{model}");
    println!("{}", json!({ "family": "nem", "trainable_parameters": model.num_params() }));
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

fn train_cmd(c: &Common) -> Result<()> {
    let r = c.resolve()?;
    let nem = family(&r)?;
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
    let device = crate::backend::device(&c.backend, c.device)?;
    nem.data_file()?; // a missing or ungeneratable dataset fails before anything is written
    std::fs::create_dir_all(&out)?;
    config::write_json(&out.join("config.json"), &run_config_json(&r, &c.backend))?;
    if !c.quiet {
        eprintln!("run directory {}", out.display());
    }
    let best = train::train(&nem, &run, &device, c.resume, c.quiet)?;
    let model = load_net(&nem, &best, &device)?;
    crate::nem::viz::draw_all(&nem, &model, &out, &device)?;
    evaluate_net(&nem, &model, &best, &out, &device)
}

/// The network of a checkpoint.
fn load_net(nem: &Nem, ckpt: &Path, device: &burn::tensor::Device) -> Result<crate::nem::net::InnerNet> {
    Checkpoint::load(ckpt)?.apply_model(nem.build_model(device)?)
}

fn evaluate_cmd(c: &Common) -> Result<()> {
    let r = c.resolve()?;
    let nem = family(&r)?;
    let net_path = nem
        .cfg
        .net_path
        .clone()
        .ok_or_else(|| Error::usage("evaluate needs net_path=<run directory or checkpoint>"))?;
    let ckpt = train::checkpoint::resolve_net_path(&net_path)?;
    let out = match &c.out {
        Some(o) => o.clone(),
        None => run_dir_of(&ckpt),
    };
    let device = crate::backend::device(&c.backend, c.device)?;
    evaluate_net(&nem, &load_net(&nem, &ckpt, &device)?, &ckpt, &out, &device)
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
/// `out/eval/<split>.json`.
fn evaluate_net(nem: &Nem, model: &crate::nem::net::InnerNet, ckpt: &Path, out: &Path, device: &burn::tensor::Device) -> Result<()> {
    let split = nem.cfg.run_config.usage.clone();
    let split = if split == "train" { "training".to_string() } else { split };
    let scores = nem.evaluate(model, &split, device)?;
    let mut obj = serde_json::Map::new();
    obj.insert("split".into(), json!(split));
    for (k, v) in &scores {
        obj.insert(k.clone(), json!(v));
    }
    obj.insert("checkpoint".into(), json!(ckpt));
    let v = Value::Object(obj);
    config::write_json(&out.join("eval").join(format!("{split}.json")), &v)?;
    // A reader that has gone away (a closed pipe) must not turn a finished run into a panic: the
    // scores are already in eval/<split>.json.
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{}", serde_json::to_string(&v).unwrap());
    Ok(())
}
