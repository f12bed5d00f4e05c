//! The SQAIR family's configuration: the original's flags as flat top-level keys
//! (`common_model_flags.py`, `mlp_mnist_model.py`, `experiment.py`; `reference/sqair.md` §4–5),
//! with gestalt's `dataset.*` for the generated file. `configs/defaults/sqair.json` holds them.
use super::model::{CountPrior, PropPrior, Shape};
use crate::train::Schedule;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqairConfig {
    pub family: String,
    pub seed: u64,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// "rmsprop" (TF's, momentum 0.9) or "adam".
    pub opt: String,
    /// `train_itr` split in these proportions ('4,6,10'; one number: a constant rate); the rate
    /// is divided by 3 at each boundary.
    pub schedule: Value,
    pub train_itr: u64,
    /// The curriculum: frames at step s = min(seq_len + ⌊s / stage_itr⌋, the file's frames).
    pub seq_len: usize,
    pub stage_itr: u64,
    pub k_particles: usize,
    pub n_steps_per_image: usize,
    pub glimpse_size: usize,
    pub n_what: usize,
    /// Every fully connected layer has 32 · n_units units.
    pub n_units: usize,
    pub transition: String,
    pub time_transition: String,
    pub prior_transition: String,
    pub transform_var_bias: f32,
    pub output_scale: f32,
    /// One float, or two comma-separated ones (a string, as the original's flag).
    pub scale_prior: Value,
    pub prop_prior_step_bias: f32,
    pub prop_prior_type: String,
    pub masked_glimpse: bool,
    pub output_std: f32,
    pub disc_prior_type: String,
    pub step_success_prob: f32,
    pub disc_step_bias: f32,
    pub prop_step_bias: f32,
    pub rec_where_prior: bool,
    /// Only the original's default (false) is built.
    pub sample_from_prior: bool,
    /// L2 weight decay; only 0 (the original's) is built.
    pub l2: f64,
    /// Log the running training terms every this many steps.
    pub report_loss_every: u64,
    /// Score the validation set every this many steps.
    pub log_itr: u64,
    pub save_itr: u64,
    /// Draw the reconstruction pictures every this many steps.
    pub fig_itr: u64,
    /// The part of the validation set scored at each `log_itr`.
    pub eval_size_fraction: f64,
    /// gestalt: model replicas sharing each batch (`--devices`).
    pub devices: usize,
    /// The weights `evaluate` reads and `train` starts from.
    pub net_path: Option<String>,
    pub dataset: DatasetCfg,
}

/// gestalt: where the moving multi-MNIST file is, and how to generate it when missing.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetCfg {
    pub data_path: String,
    pub h5_path: String,
    pub mnist_path: String,
    pub generate: bool,
    pub seed: u64,
    pub sizes: Sizes,
    /// Frames per generated sequence (10; 100 for the generalisation test).
    pub frames: usize,
    /// The split `evaluate` scores.
    pub eval_split: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sizes {
    pub train: usize,
    pub validation: usize,
}

impl SqairConfig {
    /// The network's shape, or what in the config gestalt cannot build.
    pub fn shape(&self) -> Result<Shape, String> {
        let one_of = |key: &str, v: &str, allowed: &[&str]| {
            if allowed.contains(&v) {
                Ok(())
            } else {
                Err(format!("{key} `{v}` is not built (only {})", allowed.join(", ")))
            }
        };
        one_of("transition", &self.transition, &["VanillaRNN"])?;
        one_of("time_transition", &self.time_transition, &["GRU"])?;
        one_of("prior_transition", &self.prior_transition, &["GRU"])?;
        if self.sample_from_prior {
            return Err("sample_from_prior=True is not built (the original's default is False)".into());
        }
        if self.l2 != 0.0 {
            return Err("l2 weight decay is not built (the original's default is 0)".into());
        }
        if self.n_steps_per_image == 0 || self.glimpse_size < 2 || self.n_what == 0 || self.n_units == 0 {
            return Err("n_steps_per_image, n_what and n_units must be at least 1 and glimpse_size at least 2".into());
        }
        if self.k_particles < 2 {
            return Err("k_particles must be at least 2 (VIMCO's baseline averages the other particles)".into());
        }
        let count_prior = match self.disc_prior_type.as_str() {
            "cat" => CountPrior::Categorical,
            "geom" if (0.0..1.0).contains(&self.step_success_prob) => CountPrior::Geometric(self.step_success_prob),
            "geom" => return Err("step_success_prob must be in [0, 1)".into()),
            other => return Err(format!("unknown disc_prior_type `{other}` (cat, geom)")),
        };
        let prop_prior = match self.prop_prior_type.as_str() {
            "rnn" => PropPrior::Rnn,
            "rw" => PropPrior::RandomWalk,
            "guided" => PropPrior::Guided,
            other => return Err(format!("unknown prop_prior_type `{other}` (rnn, rw, guided)")),
        };
        Ok(Shape {
            image: [crate::data::seq_mnist::CANVAS; 2],
            glimpse: self.glimpse_size,
            n_what: self.n_what,
            hidden: 32 * self.n_units,
            steps: self.n_steps_per_image,
            masked_glimpse: self.masked_glimpse,
            rec_where_prior: self.rec_where_prior,
            count_prior,
            prop_prior,
            scale_prior: self.scale_prior()?,
            transform_var_bias: self.transform_var_bias,
            output_scale: self.output_scale,
            prop_prior_step_bias: self.prop_prior_step_bias,
            output_std: self.output_std,
            disc_step_bias: self.disc_step_bias,
            prop_step_bias: self.prop_step_bias,
        })
    }

    /// `scale_prior`: a number, or a string of one or two comma-separated floats.
    fn scale_prior(&self) -> Result<[f32; 2], String> {
        let bad = || format!("scale_prior must be a float or two comma-separated floats, got {}", self.scale_prior);
        let values: Vec<f32> = match &self.scale_prior {
            Value::Number(n) => vec![n.as_f64().ok_or_else(bad)? as f32],
            Value::String(s) => {
                s.split(',').map(|v| v.trim().parse::<f32>().map_err(|_| bad())).collect::<Result<_, _>>()?
            }
            _ => return Err(bad()),
        };
        match values[..] {
            [v] => Ok([v, v]),
            [a, b] => Ok([a, b]),
            _ => Err(bad()),
        }
    }

    /// The learning-rate schedule `schedule` over `train_itr` steps.
    pub fn lr_schedule(&self) -> Result<Schedule, String> {
        let text = match &self.schedule {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => return Err(format!("schedule must be comma-separated numbers, got {other}")),
        };
        let parts: Vec<f64> = text
            .split(',')
            .map(|v| v.trim().parse::<f64>().map_err(|_| format!("schedule `{text}`: comma-separated numbers")))
            .collect::<Result<_, _>>()?;
        if parts.iter().any(|&p| p <= 0.0) {
            return Err(format!("schedule `{text}`: proportions must be positive"));
        }
        if parts.len() > 9 {
            return Err(format!("schedule `{text}`: at most 9 parts"));
        }
        Ok(Schedule::thirds(&parts, self.train_itr))
    }

    /// The sequence length at optimiser step `step` of sequences of `frames`: all of them when
    /// `seq_len` is 0, `seq_len` when `stage_itr` is 0, else the curriculum
    /// min(seq_len + ⌊step / stage_itr⌋, frames) (`mnist_tools.load`).
    pub fn frames_at(&self, step: u64, frames: usize) -> usize {
        if self.seq_len == 0 {
            return frames;
        }
        let stage = step.checked_div(self.stage_itr).unwrap_or(0);
        (self.seq_len as u64 + stage).min(frames as u64) as usize
    }
}
