//! The EMORL network (reference §1): image encoder with the fixed position grid, the bottom-up
//! hierarchical VAE (attention over slots, DualGRU, residual MLPs; weights shared across layers),
//! the spatial-broadcast decoders, the per-slot prior and the refinement network's layers.
//! Slots live in the batch dimension: every per-slot tensor is [N·K, …].
use super::dual_gru::{DualGru, Gru};
use crate::nn::conv::Conv2d;
use crate::nn::{Dense, LayerNorm, TORCH_LN_EPS};
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::activation::{log_softmax, relu, sigmoid, softmax, softplus};
use burn::tensor::{Device, Distribution, Int, Tensor};

/// The three decoders of the original.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DecoderKind {
    /// Tetrominoes: grid H+6, 3 × (conv k5 p1 → 32, ReLU), conv k3 p1 → 4.
    Small,
    /// CLEVR6, Multi-dSprites: grid H+10, 4 × (conv k3 p0 → 64, ELU), conv k3 p0 → 4.
    Iodine,
}

/// The shape of an EMORL network (the original's `Net.*` keys).
#[derive(Debug, Clone)]
pub struct NetShape {
    /// Image height and width.
    pub image: [usize; 2],
    /// D, `Net.z_size`.
    pub z_size: usize,
    /// L, `Net.stochastic_layers`.
    pub layers: usize,
    pub decoder: DecoderKind,
}

/// xavier_normal with gain 0.02 and zero biases: the original's `init_weights`.
fn small_init() -> Initializer {
    Initializer::XavierNormal { gain: 0.02 }
}

/// A two-layer MLP, `Linear → act → Linear`.
#[derive(Module, Debug)]
pub struct Mlp {
    pub first: Dense,
    pub second: Dense,
}

impl Mlp {
    fn new(d_in: usize, hidden: usize, d_out: usize, device: &Device) -> Mlp {
        Mlp { first: Dense::with(d_in, hidden, true, small_init(), device), second: Dense::with(hidden, d_out, true, small_init(), device) }
    }

    pub fn forward(&self, x: Tensor<2>, act: fn(Tensor<2>) -> Tensor<2>) -> Tensor<2> {
        self.second.forward(act(self.first.forward(x)))
    }
}

#[derive(Module, Debug)]
pub struct Encoder {
    pub convs: Vec<Conv2d>,
    /// Projection of the position grid (PyTorch's default init, untouched by init_weights).
    pub pos: Dense,
    pub ln: LayerNorm,
    pub mlp: Mlp,
    pub to_k: Dense,
    pub to_v: Dense,
}

#[derive(Module, Debug)]
pub struct Hvae {
    /// [1, 2D], starts as [0…0 ; 1…1].
    pub init_posterior: Param<Tensor<2>>,
    pub ln_q: LayerNorm,
    pub to_q: Dense,
    pub gru: DualGru,
    pub ln_mu: LayerNorm,
    pub mlp_mu: Mlp,
    pub ln_s: LayerNorm,
    pub mlp_s: Mlp,
}

#[derive(Module, Debug)]
pub struct Decoder {
    pub pos: Dense,
    pub convs: Vec<Conv2d>,
    pub out: Conv2d,
    #[module(skip)]
    pub kind: DecoderKind,
}

/// p(z | z') = N(μ(z'), std(s(z'))), one network for every layer (`IndependentPrior`).
#[derive(Module, Debug)]
pub struct Prior {
    pub hidden: Dense,
    pub mu: Dense,
    pub s: Dense,
}

/// Stage 2's layers: e = [λ ; LN g_μ ; LN g_s] → Linear(4D,128) → ELU → Linear(128,D) → GRU → δ.
#[derive(Module, Debug)]
pub struct Refinement {
    pub encode: Mlp,
    pub gru: Gru,
    pub loc: Dense,
    pub scale: Dense,
}

#[derive(Module, Debug)]
pub struct EmorlNet {
    pub encoder: Encoder,
    pub hvae: Hvae,
    pub decoder: Decoder,
    pub prior: Prior,
    pub refinement: Refinement,
}

/// std(s) = sqrt(softplus(min(s, 80)) + 1e-5): s is a pre-softplus variance parameter.
pub fn std_of(s: Tensor<2>) -> Tensor<2> {
    (softplus(s.clamp_max(80.0), 1.0) + 1e-5).sqrt()
}

/// The fixed grid: cell (i, j) of R × C holds [1 − i/(R−1), i/(R−1), j/(C−1), 1 − j/(C−1)], [R·C, 4].
pub fn position_grid(rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    let ramp = |n: usize| Tensor::<1, Int>::arange(0..n as i64, device).float() / (n.max(2) - 1) as f64;
    let i = ramp(rows).reshape([rows, 1]).expand([rows, cols]).reshape([rows * cols, 1]);
    let j = ramp(cols).reshape([1, cols]).expand([rows, cols]).reshape([rows * cols, 1]);
    Tensor::cat(vec![i.clone().neg() + 1.0, i, j.clone(), j.neg() + 1.0], 1)
}

impl EmorlNet {
    pub fn new(shape: &NetShape, device: &Device) -> EmorlNet {
        let d = shape.z_size;
        let conv = |c_in, c_out, k, pad| Conv2d::with(c_in, c_out, k, 1, Some(pad), small_init(), device);
        let encoder = Encoder {
            convs: vec![conv(3, 64, 5, 2), conv(64, 64, 5, 2), conv(64, 64, 5, 2), conv(64, 64, 5, 2)],
            pos: Dense::torch(4, 64, device),
            ln: LayerNorm::with_eps(64, TORCH_LN_EPS, device),
            mlp: Mlp::new(64, 64, 64, device),
            to_k: Dense::with(64, d, false, small_init(), device),
            to_v: Dense::with(64, d, false, small_init(), device),
        };
        let init_posterior = Tensor::cat(vec![Tensor::zeros([1, d], device), Tensor::ones([1, d], device)], 1);
        let hvae = Hvae {
            init_posterior: Param::from_tensor(init_posterior),
            ln_q: LayerNorm::with_eps(d, TORCH_LN_EPS, device),
            to_q: Dense::with(d, d, false, small_init(), device),
            gru: DualGru::new(d, device),
            ln_mu: LayerNorm::with_eps(d, TORCH_LN_EPS, device),
            mlp_mu: Mlp::new(d, 2 * d, d, device),
            ln_s: LayerNorm::with_eps(d, TORCH_LN_EPS, device),
            mlp_s: Mlp::new(d, 2 * d, d, device),
        };
        let decoder = match shape.decoder {
            DecoderKind::Small => Decoder {
                pos: Dense::with(4, d, true, small_init(), device),
                convs: vec![conv(d, 32, 5, 1), conv(32, 32, 5, 1), conv(32, 32, 5, 1)],
                out: conv(32, 4, 3, 1),
                kind: DecoderKind::Small,
            },
            DecoderKind::Iodine => Decoder {
                pos: Dense::with(4, d, true, small_init(), device),
                convs: vec![conv(d, 64, 3, 0), conv(64, 64, 3, 0), conv(64, 64, 3, 0), conv(64, 64, 3, 0)],
                out: conv(64, 4, 3, 0),
                kind: DecoderKind::Iodine,
            },
        };
        let prior = Prior {
            hidden: Dense::with(d, 128, true, small_init(), device),
            mu: Dense::with(128, d, true, small_init(), device),
            s: Dense::with(128, d, true, small_init(), device),
        };
        let refinement = Refinement {
            encode: Mlp::new(4 * d, 128, d, device),
            gru: Gru::new(d, device),
            loc: Dense::with(d, d, true, small_init(), device),
            scale: Dense::with(d, d, true, small_init(), device),
        };
        EmorlNet { encoder, hvae, decoder, prior, refinement }
    }
}

impl Encoder {
    /// x [N, 3, H, W] in [−1, 1] → keys and values [N, H·W, D].
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<3>, Tensor<3>) {
        let [n, _, h, w] = x.dims();
        let feat = self.convs.iter().fold(x, |x, c| relu(c.forward(x)));
        let pos = self.pos.forward(position_grid(h, w, &feat.device())); // [H·W, 64]
        let feat = feat.permute([0, 2, 3, 1]).reshape([n * h * w, 64]) + pos.repeat_dim(0, n);
        let feat = self.mlp.forward(self.ln.forward(feat), relu);
        let d = self.to_k.weight.dims()[1];
        (self.to_k.forward(feat.clone()).reshape([n, h * w, d]), self.to_v.forward(feat).reshape([n, h * w, d]))
    }
}

/// One layer's posterior: λ = [μ ; s], [N·K, 2D].
#[derive(Debug, Clone)]
pub struct Posterior {
    pub mu: Tensor<2>,
    pub s: Tensor<2>,
}

impl Posterior {
    /// A fresh standard-normal draw of the posterior's shape.
    pub fn noise(&self) -> Tensor<2> {
        self.mu.random_like(Distribution::Normal(0.0, 1.0))
    }

    /// The reparameterised sample μ + std(s)·ε for a given ε.
    pub fn sample_with(&self, eps: &Tensor<2>) -> Tensor<2> {
        self.mu.clone() + std_of(self.s.clone()) * eps.clone()
    }

    pub fn sample(&self) -> Tensor<2> {
        self.sample_with(&self.noise())
    }
}

/// What stage 1 produces.
pub struct Stage1 {
    /// q_0 … q_{L−1}.
    pub posteriors: Vec<Posterior>,
    /// Attention of each layer, softmax over slots, [N, K, H·W].
    pub attention: Vec<Tensor<3>>,
    /// The last layer's sample z^L, [N·K, D].
    pub z: Tensor<2>,
}

impl Hvae {
    /// The bottom-up pass over L layers for `k` slots, from keys and values [N, H·W, D].
    pub fn forward(&self, keys: Tensor<3>, values: Tensor<3>, k: usize, layers: usize) -> Stage1 {
        let [n, _, d] = keys.dims();
        let init = self.init_posterior.val().repeat_dim(0, n * k);
        let mut q = Posterior { mu: init.clone().slice([0..n * k, 0..d]), s: init.slice([0..n * k, d..2 * d]) };
        let mut z = q.sample();
        let (mut posteriors, mut attention) = (Vec::new(), Vec::new());
        for _ in 0..layers {
            let query = self.to_q.forward(self.ln_q.forward(z)).reshape([n, k, d]) * (d as f64).powf(-0.5);
            let attn = softmax(query.matmul(keys.clone().swap_dims(1, 2)), 1) + 1e-8; // [N, K, H·W]
            let weights = attn.clone() / attn.clone().sum_dim(2);
            let update = weights.matmul(values.clone()).reshape([n * k, d]);
            let h = self.gru.forward(Tensor::cat(vec![update.clone(), update], 1), Tensor::cat(vec![q.mu, q.s], 1));
            let (mu, s) = (h.clone().slice([0..n * k, 0..d]), h.slice([0..n * k, d..2 * d]));
            let mu = mu.clone() + self.mlp_mu.forward(self.ln_mu.forward(mu), relu);
            let s = s.clone() + self.mlp_s.forward(self.ln_s.forward(s), relu);
            q = Posterior { mu, s };
            z = q.sample();
            posteriors.push(q.clone());
            attention.push(attn);
        }
        Stage1 { posteriors, attention, z }
    }
}

impl Decoder {
    /// z [N·K, D] → per-slot RGB in [0, 1] [N, K, 3, H, W] and log-masks (log-softmax over slots)
    /// [N, K, 1, H, W].
    pub fn forward(&self, z: Tensor<2>, k: usize, image: [usize; 2]) -> (Tensor<5>, Tensor<5>) {
        let [nk, d] = z.dims();
        let [h, w] = image;
        let pad = match self.kind {
            DecoderKind::Small => 6,
            DecoderKind::Iodine => 10,
        };
        let (gh, gw) = (h + pad, w + pad);
        let pos = self.pos.forward(position_grid(gh, gw, &z.device())).swap_dims(0, 1).reshape([1, d, gh, gw]);
        let act = |x: Tensor<4>| match self.kind {
            DecoderKind::Small => relu(x),
            DecoderKind::Iodine => burn::tensor::activation::elu(x, 1.0),
        };
        // The first conv sees z broadcast over the grid plus the shared position map.
        let first = act(self.convs[0].forward_broadcast(z, pos));
        let out = self.out.forward(self.convs[1..].iter().fold(first, |x, c| act(c.forward(x))));
        let out = out.reshape([nk / k, k, 4, h, w]);
        let rgb = sigmoid(out.clone().slice([0..nk / k, 0..k, 0..3]));
        let logits = out.slice([0..nk / k, 0..k, 3..4]);
        (rgb, log_softmax(logits, 1))
    }
}

impl Prior {
    pub fn forward(&self, z: Tensor<2>) -> Posterior {
        let hidden = burn::tensor::activation::elu(self.hidden.forward(z), 1.0);
        Posterior { mu: self.mu.forward(hidden.clone()), s: self.s.forward(hidden) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(decoder: DecoderKind, d: usize) -> EmorlNet {
        let size = if decoder == DecoderKind::Small { 35 } else { 64 };
        EmorlNet::new(&NetShape { image: [size, size], z_size: d, layers: 3, decoder }, &Device::flex())
    }

    /// The reference's hand counts less the 2 GECO scalars, which are controller state here.
    #[test]
    fn parameter_counts_match_the_reference() {
        assert_eq!(net(DecoderKind::Small, 32).num_params(), 467_238 - 2);
        assert_eq!(net(DecoderKind::Iodine, 64).num_params(), 666_502 - 2);
    }

    #[test]
    fn stage_one_and_the_decoder_have_the_right_shapes() {
        let dev = Device::flex();
        let m = EmorlNet::new(&NetShape { image: [12, 12], z_size: 8, layers: 2, decoder: DecoderKind::Small }, &dev);
        let x = Tensor::<4>::random([2, 3, 12, 12], Distribution::Uniform(-1.0, 1.0), &dev);
        let (keys, values) = m.encoder.forward(x);
        assert_eq!(keys.dims(), [2, 144, 8]);
        let s1 = m.hvae.forward(keys, values, 3, 2);
        assert_eq!((s1.posteriors.len(), s1.z.dims()), (2, [6, 8]));
        let attn = s1.attention[0].clone();
        let over_slots: Vec<f32> = attn.sum_dim(1).into_data().try_to_vec::<f32>().unwrap();
        assert!(over_slots.iter().all(|v| (v - 1.0).abs() < 1e-4), "softmax over slots (+1e-8 each)");
        let (rgb, log_masks) = m.decoder.forward(s1.z, 3, [12, 12]);
        assert_eq!((rgb.dims(), log_masks.dims()), ([2, 3, 3, 12, 12], [2, 3, 1, 12, 12]));
        let masks: Vec<f32> = log_masks.exp().sum_dim(1).into_data().try_to_vec::<f32>().unwrap();
        assert!(masks.iter().all(|v| (v - 1.0).abs() < 1e-4));
    }

    #[test]
    fn the_position_grid_ramps() {
        let g: Vec<f32> = position_grid(2, 3, &Device::flex()).into_data().try_to_vec::<f32>().unwrap();
        // Cell (0, 0), then (0, 1): [1 − i, i, j, 1 − j] with i, j scaled to [0, 1].
        assert_eq!(&g[..8], &[1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.5, 0.5]);
        assert_eq!(&g[20..], &[0.0, 1.0, 1.0, 0.0]);
    }
}
