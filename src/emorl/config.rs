//! The EMORL family's configuration, with the original repository's keys (reference §3):
//! `Net.*`, `dataset.*`, `training.*`, `seed`. Train configs live in `configs/train/<dataset>/`.
use super::model::{DecoderKind, NetShape};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmorlConfig {
    pub family: String,
    pub seed: u64,
    #[serde(rename = "Net")]
    pub net: NetCfg,
    pub dataset: DatasetCfg,
    pub training: TrainingCfg,
    pub test: TestCfg,
    /// The weights `evaluate` reads and `train` starts from (a checkpoint, a run directory, a
    /// `.safetensors` export or an original `.pth`); `test.checkpoint` as well.
    pub net_path: Option<String>,
}

/// `gestalt evaluate`'s settings: the original's `test.*` (configs/test/…).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TestCfg {
    pub batch_size: usize,
    /// [C, H, W] (the original's; the images' size comes from `Net.input_size`).
    pub output_size: [usize; 3],
    /// How many test images, from the first.
    pub num_images_to_process: usize,
    /// GECO's form of the loss for the refinement gradient; None: `training.use_geco`. Only ζ
    /// (from the checkpoint) changes that gradient; the target and step sizes do not.
    pub use_geco: Option<bool>,
    pub geco_beta_stepsize: f64,
    pub geco_ema_alpha: f64,
    pub geco_reconstruction_target: f64,
    /// "ARI_MSE_KL" (FG-ARI, MSE, KL mean ± std), "sample_viz" (pictures of each step),
    /// "disentanglement_preprocessing", "activeness", "disentanglement_viz" or "make_gifs".
    pub eval_type: String,
    /// The slot whose dimensions `disentanglement_viz` traverses.
    pub disentangle_slot: usize,
    /// The split of the test file.
    pub mode: String,
    pub model: String,
    pub experiment_name: String,
    /// Where `eval/` goes (default: the checkpoint's run directory).
    pub out_dir: String,
    /// The checkpoint (a file or a run directory), inside `checkpoint_dir` when that is set.
    pub checkpoint: String,
    pub checkpoint_dir: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct NetCfg {
    pub K: usize,
    /// [C, H, W].
    pub input_size: [usize; 3],
    /// "Gaussian" (of the mask-weighted mean) or "GMM" (per-channel mixture).
    pub image_likelihood: String,
    pub z_size: usize,
    /// "small", "iodine" or "big".
    pub image_decoder: String,
    pub stochastic_layers: usize,
    /// ln σ of the likelihood.
    pub log_scale: f64,
    pub bottom_up_prior: bool,
    pub reverse_prior_plusplus: bool,
    pub use_DualGRU: bool,
    /// I outside training (the curriculum sets it while training).
    pub refinement_iters: usize,
    pub geco_warm_start: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetCfg {
    pub data_path: String,
    pub h5_path: String,
    /// gestalt: the test images of a train config, for validation and pictures (null:
    /// `<stem>_test.h5`, the Zenodo archive's naming except CLEVR6's).
    pub test_h5_path: Option<String>,
    pub masks: bool,
    /// The file's split: "train" or "test".
    pub mode: String,
    /// Write the file with gestalt's generator when it is missing (Tetrominoes, Multi-dSprites).
    pub generate: bool,
    pub seed: u64,
    pub sizes: SplitSizes,
    /// CLEVR: crop to 192×192 and resize to 96 (`clevr-small`) or 128 (`clevr-large`).
    pub clevr_preprocess_style: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SplitSizes {
    pub train: usize,
    pub test: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingCfg {
    pub batch_size: usize,
    pub kl_beta_init: f64,
    pub use_geco: bool,
    pub use_scheduler: bool,
    pub geco_beta_stepsize: f64,
    pub geco_ema_alpha: f64,
    /// Per pixel and channel; GECO's C is this × C·H·W.
    pub geco_reconstruction_target: f64,
    pub geco_step_size_acceleration: f64,
    pub checkpoint_freq: u64,
    pub iters: u64,
    /// [step, I] pairs: past `step`, use I refinement steps.
    pub refinement_curriculum: Vec<(i64, usize)>,
    pub load_from_checkpoint: bool,
    pub checkpoint: String,
    pub lr: f64,
    pub warmup: u64,
    pub clip_grad_norm: bool,
    pub model: String,
    pub num_workers: usize,
    pub run_suffix: String,
    pub tensorboard_freq: u64,
    pub out_dir: String,
    pub tqdm: bool,
    /// gestalt: the first test images, scored (FG-ARI, MSE, KL) at each checkpoint and epoch end
    /// for the validation curve; 0: none. The score after training takes `test.num_images_to_process`.
    pub validation_images: usize,
    /// gestalt: model replicas sharing each batch, one per device (`--devices`).
    pub devices: usize,
}

impl EmorlConfig {
    /// The network's shape, or what in the config gestalt cannot build yet.
    pub fn shape(&self) -> Result<NetShape, String> {
        let n = &self.net;
        let decoder = match n.image_decoder.as_str() {
            "small" => DecoderKind::Small,
            "iodine" => DecoderKind::Iodine,
            "big" => DecoderKind::Big,
            other => return Err(format!("unknown Net.image_decoder `{other}` (small, iodine, big)")),
        };
        if decoder == DecoderKind::Big && n.input_size[1..] != [96, 96] {
            return Err(format!("Net.image_decoder `big` draws 96×96 images, Net.input_size is {:?}", n.input_size));
        }
        if n.input_size[0] != 3 {
            return Err(format!("Net.input_size must have 3 channels, got {}", n.input_size[0]));
        }
        if n.bottom_up_prior && n.reverse_prior_plusplus {
            return Err(
                "Net.bottom_up_prior and Net.reverse_prior_plusplus exclude each other (the original asserts so)"
                    .into(),
            );
        }
        if n.stochastic_layers == 0 || n.K == 0 || n.z_size == 0 {
            return Err("Net.K, Net.z_size and Net.stochastic_layers must be at least 1".into());
        }
        Ok(NetShape {
            image: [n.input_size[1], n.input_size[2]],
            z_size: n.z_size,
            layers: n.stochastic_layers,
            decoder,
            dual_gru: n.use_DualGRU,
        })
    }
}
