//! The N-EM family's configuration, with the original repository's key names (reference §1.1).
use crate::train::optim::OptimParams;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NemConfig {
    pub family: String,
    pub seed: u64,
    pub dataset: DatasetCfg,
    pub nem: EmCfg,
    pub noise: NoiseCfg,
    pub training: TrainingCfg,
    pub validation: ValidationCfg,
    pub run_config: RunCfg,
    pub network: NetworkCfg,
    pub log_dir: String,
    pub net_path: Option<String>,
    /// R-NEM's top-level keys (reference §1.2); absent from N-EM's defaults, so N-EM rejects them.
    #[serde(default)]
    pub feed_actions: bool,
    /// Load `groups` and score the grouping (`no_score` turns it off).
    #[serde(default = "yes")]
    pub record_grouping_score: bool,
    /// The file's mask for the relational loss: `collisions`, `events` or None.
    #[serde(default)]
    pub record_relational_loss: Option<String>,
    /// Steps in the "last dt steps" averages.
    #[serde(default = "ten")]
    pub dt: usize,
}

fn yes() -> bool {
    true
}

fn sklearn() -> String {
    "sklearn".into()
}

fn ten() -> usize {
    10
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetCfg {
    pub name: String,
    pub path: String,
    /// R-NEM has no `binary` key: its pixels are always Bernoulli.
    #[serde(default = "yes")]
    pub binary: bool,
    pub train_size: Option<usize>,
    pub valid_size: Option<usize>,
    pub test_size: Option<usize>,
    pub queue_capacity: usize,
    /// Write the file with the procedural generator when it is missing.
    pub generate: bool,
    /// Seed of the generator.
    pub seed: u64,
    /// Images per split written by the generator.
    pub sizes: SplitSizes,
    /// The folder with MNIST's four idx files, for the digit generators (`scripts/fetch_mnist.sh`).
    pub mnist_path: String,
    /// R-NEM with `feed_actions`: the number of actions in the file's one-hot `actions`.
    #[serde(default)]
    pub actions: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SplitSizes {
    pub training: usize,
    pub validation: usize,
    pub test: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmCfg {
    /// R-NEM has neither `gradient_gamma` (γ is always stop-gradient) nor `e_sigma`.
    #[serde(default)]
    pub gradient_gamma: bool,
    pub loss_inter_weight: f64,
    pub loss_step_weights: StepWeights,
    pub pixel_prior: PixelPrior,
    pub k: usize,
    pub nr_steps: usize,
    #[serde(default)]
    pub e_sigma: f64,
    pub pred_init: f64,
    /// "nem": the original's γ-weighted intra/inter loss; "mixture": −log of the uniform mixture
    /// likelihood, −Σ log((1/K) Σ_k p(x|ψ_k)), as the minimal system (seed 003) trains.
    pub loss: String,
    /// A (K+1)-th component fixed to the pixel prior (ψ = p or μ everywhere) that takes the
    /// background, so the K slots only see their objects' residuals (seed 003's suggestion).
    pub background_slot: bool,
}

/// `'last'`, `'all'` or an explicit list of nr_steps weights.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum StepWeights {
    Named(String),
    List(Vec<f64>),
}

impl StepWeights {
    pub fn resolve(&self, nr_steps: usize) -> Result<Vec<f64>, String> {
        match self {
            StepWeights::Named(s) if s == "last" => {
                Ok((0..nr_steps).map(|t| if t + 1 == nr_steps { 1.0 } else { 0.0 }).collect())
            }
            StepWeights::Named(s) if s == "all" => Ok(vec![1.0; nr_steps]),
            StepWeights::Named(s) => Err(format!("nem.loss_step_weights: `{s}` is not 'last', 'all' or a list")),
            StepWeights::List(w) if w.len() == nr_steps => Ok(w.clone()),
            StepWeights::List(w) => {
                Err(format!("nem.loss_step_weights has {} weights but nem.nr_steps is {nr_steps}", w.len()))
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PixelPrior {
    pub p: f64,
    /// R-NEM's prior has only `p`.
    #[serde(default)]
    pub mu: f64,
    /// Present in N-EM's config but unused by its code.
    #[serde(default)]
    pub sigma: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseCfg {
    /// 'data' (bitflip for binary data, masked_uniform otherwise), 'bitflip', 'masked_uniform', or None.
    pub noise_type: Option<String>,
    pub prob: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingCfg {
    pub optimizer: String,
    pub params: OptimParams,
    pub max_patience: usize,
    pub batch_size: usize,
    pub max_epoch: usize,
    pub clip_gradients: Option<f64>,
    /// Rescale all gradients together so their global L2 norm is at most this (None: off).
    pub clip_global_norm: Option<f64>,
    /// Halve the learning rate every this many steps (None: constant, as the original).
    pub lr_half_life: Option<u64>,
    /// Log the running training loss every this many steps (0: only per epoch).
    pub log_steps: usize,
    /// gestalt: model replicas sharing each batch, one per device (`--devices`).
    pub devices: usize,
    pub debug_samples: Vec<usize>,
    pub save_epochs: Vec<usize>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationCfg {
    /// None: the training batch size.
    pub batch_size: Option<usize>,
    pub debug_samples: Vec<usize>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct RunCfg {
    pub usage: String,
    pub AMI: bool,
    pub batch_size: usize,
    pub debug_samples: Vec<usize>,
    /// Run the EM loop from this many random initialisations per image and score the one with
    /// the lowest last-step loss (test scores and pictures; per-epoch validation uses one).
    pub restarts: usize,
    /// ARI as scikit-learn computes it (`sklearn`) or with R-NEM's in-graph formula (`original`:
    /// an image with one object scores 0).
    #[serde(default = "sklearn")]
    pub ari: String,
    /// `gestalt rollout`: steps the model runs on its own predictions after nem.nr_steps.
    #[serde(default = "ten")]
    pub rollout_steps: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct NetworkCfg {
    pub use_NEM_formulation: bool,
    pub input: Vec<LayerCfg>,
    pub recurrent: Vec<LayerCfg>,
    pub output: Vec<LayerCfg>,
    /// A learned initial state θ_init per slot, plus per-image jitter (the minimal system's
    /// symmetry breaker); None: the original's h = 0, ψ = pred_init, random γ.
    pub theta_init: Option<ThetaInit>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThetaInit {
    /// Standard deviation of θ_init's Gaussian initialisation.
    pub std: f64,
    /// Standard deviation of the per-image Gaussian jitter added to θ_init.
    pub jitter: f64,
}

/// One layer as the original lists it: `{name, size, act, stride, kernel, ln}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LayerCfg {
    pub name: String,
    #[serde(default)]
    pub size: Option<usize>,
    #[serde(default)]
    pub act: Option<String>,
    #[serde(default)]
    pub ln: bool,
    #[serde(default)]
    pub stride: Option<usize>,
    #[serde(default)]
    pub kernel: Option<usize>,
    #[serde(default)]
    pub offset: Option<usize>,
    /// A `reshape` layer's target (H, W, C), or -1 to flatten.
    #[serde(default)]
    pub shape: Option<serde_json::Value>,
    /// `r_nem`'s fc lists (reference §2.4): on the state, on each pair, the context, the
    /// attention (empty: no attention), and the action embedding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<Vec<LayerCfg>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core: Option<Vec<LayerCfg>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Vec<LayerCfg>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<Vec<LayerCfg>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<LayerCfg>>,
}
