//! The EMORL network (reference §1): image encoder with the fixed position grid, the bottom-up
//! hierarchical VAE (attention over slots, DualGRU, residual MLPs; weights shared across layers),
//! the spatial-broadcast decoders, the per-slot prior and the refinement network's layers.
//! Slots live in the batch dimension: every per-slot tensor is [N·K, …].
use super::dual_gru::{DualGru, Gru};
use crate::nn::conv::{Conv2d, ConvTranspose2d};
use crate::nn::{Dense, LayerNorm, TORCH_LN_EPS, normalize};
use crate::train::Shard;
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::activation::{log_softmax, relu, sigmoid, softmax, softplus};
use burn::tensor::{Device, Int, Tensor};

/// The three decoders of the original.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DecoderKind {
    /// Tetrominoes: grid H+6, 3 × (conv k5 p1 → 32, ReLU), conv k3 p1 → 4.
    Small,
    /// CLEVR6, Multi-dSprites: grid H+10, 4 × (conv k3 p0 → 64, ELU), conv k3 p0 → 4.
    Iodine,
    /// Slot Attention's: grid 6×6, 4 × (convT k5 s2 p2 op1 → 64, ReLU), convT k5 p2 → 64, ReLU,
    /// convT k3 p1 → 4; 96×96 images only.
    Big,
}

/// A decoder layer: a convolution or a transposed one.
#[derive(Module, Debug)]
pub enum DecoderLayer {
    Conv(Conv2d),
    Deconv(ConvTranspose2d),
}

impl DecoderLayer {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            DecoderLayer::Conv(c) => c.forward(x),
            DecoderLayer::Deconv(c) => c.forward(x),
        }
    }
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
    /// `Net.use_DualGRU`.
    pub dual_gru: bool,
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
        Mlp {
            first: Dense::with(d_in, hidden, true, small_init(), device),
            second: Dense::with(hidden, d_out, true, small_init(), device),
        }
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

/// Stage 1's recurrent update of λ = [μ ; s] from the attention update.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // a module field: built once, not moved per step
pub enum PosteriorCell {
    /// Two D-wide GRUs, one for μ and one for s (`Net.use_DualGRU`, the default).
    Dual(DualGru),
    /// The ablation: one GRU(2D, 2D) fed with Linear(D, 2D) of the update (PyTorch's inits).
    Single(SingleGru),
}

#[derive(Module, Debug)]
pub struct SingleGru {
    pub project: Dense,
    pub gru: Gru,
}

impl PosteriorCell {
    fn forward(&self, update: Tensor<2>, lambda: Tensor<2>) -> Tensor<2> {
        match self {
            PosteriorCell::Dual(g) => g.forward(Tensor::cat(vec![update.clone(), update], 1), lambda),
            PosteriorCell::Single(s) => s.gru.forward(s.project.forward(update), lambda),
        }
    }
}

#[derive(Module, Debug)]
pub struct Hvae {
    /// [1, 2D], starts as [0…0 ; 1…1].
    pub init_posterior: Param<Tensor<2>>,
    pub ln_q: LayerNorm,
    pub to_q: Dense,
    pub gru: PosteriorCell,
    pub ln_mu: LayerNorm,
    pub mlp_mu: Mlp,
    pub ln_s: LayerNorm,
    pub mlp_s: Mlp,
}

#[derive(Module, Debug)]
pub struct Decoder {
    pub pos: Dense,
    /// The activated layers, then the output layer (4 channels: RGB and the mask logit).
    pub layers: Vec<DecoderLayer>,
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
            gru: if shape.dual_gru {
                PosteriorCell::Dual(DualGru::new(d, device))
            } else {
                PosteriorCell::Single(SingleGru {
                    project: Dense::torch(d, 2 * d, device),
                    gru: Gru::new(2 * d, device),
                })
            },
            ln_mu: LayerNorm::with_eps(d, TORCH_LN_EPS, device),
            mlp_mu: Mlp::new(d, 2 * d, d, device),
            ln_s: LayerNorm::with_eps(d, TORCH_LN_EPS, device),
            mlp_s: Mlp::new(d, 2 * d, d, device),
        };
        let deconv = |c_in, c_out, k, stride, pad, out_pad| {
            DecoderLayer::Deconv(ConvTranspose2d::with(c_in, c_out, k, stride, pad, out_pad, small_init(), device))
        };
        let conv = |c_in, c_out, k, pad| DecoderLayer::Conv(conv(c_in, c_out, k, pad));
        let layers = match shape.decoder {
            DecoderKind::Small => vec![conv(d, 32, 5, 1), conv(32, 32, 5, 1), conv(32, 32, 5, 1), conv(32, 4, 3, 1)],
            DecoderKind::Iodine => {
                vec![conv(d, 64, 3, 0), conv(64, 64, 3, 0), conv(64, 64, 3, 0), conv(64, 64, 3, 0), conv(64, 4, 3, 0)]
            }
            DecoderKind::Big => vec![
                deconv(d, 64, 5, 2, 2, 1),
                deconv(64, 64, 5, 2, 2, 1),
                deconv(64, 64, 5, 2, 2, 1),
                deconv(64, 64, 5, 2, 2, 1),
                deconv(64, 64, 5, 1, 2, 0),
                deconv(64, 4, 3, 1, 1, 0),
            ],
        };
        let decoder = Decoder { pos: Dense::with(4, d, true, small_init(), device), layers, kind: shape.decoder };
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
    /// A fresh standard-normal draw of the posterior's shape [N·K, D] (image-major), from `shard`.
    pub fn noise(&self, shard: &Shard) -> Tensor<2> {
        shard.normal(0.0, 1.0, self.mu.dims(), &self.mu.device())
    }

    /// The reparameterised sample μ + std(s)·ε for a given ε.
    pub fn sample_with(&self, eps: &Tensor<2>) -> Tensor<2> {
        self.mu.clone() + std_of(self.s.clone()) * eps.clone()
    }

    pub fn sample(&self, shard: &Shard) -> Tensor<2> {
        self.sample_with(&self.noise(shard))
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
    pub fn forward(&self, keys: Tensor<3>, values: Tensor<3>, k: usize, layers: usize, shard: &Shard) -> Stage1 {
        let [n, _, d] = keys.dims();
        let init = self.init_posterior.val().repeat_dim(0, n * k);
        let mut q = Posterior { mu: init.clone().slice([0..n * k, 0..d]), s: init.slice([0..n * k, d..2 * d]) };
        let mut z = q.sample(shard);
        let (mut posteriors, mut attention) = (Vec::new(), Vec::new());
        for _ in 0..layers {
            let query = self.to_q.forward(self.ln_q.forward(z)).reshape([n, k, d]) * (d as f64).powf(-0.5);
            let attn = softmax(query.matmul(keys.clone().swap_dims(1, 2)), 1) + 1e-8; // [N, K, H·W]
            let weights = attn.clone() / attn.clone().sum_dim(2);
            let update = weights.matmul(values.clone()).reshape([n * k, d]);
            let h = self.gru.forward(update, Tensor::cat(vec![q.mu, q.s], 1));
            let (mu, s) = (h.clone().slice([0..n * k, 0..d]), h.slice([0..n * k, d..2 * d]));
            let mu = mu.clone() + self.mlp_mu.forward(self.ln_mu.forward(mu), relu);
            let s = s.clone() + self.mlp_s.forward(self.ln_s.forward(s), relu);
            q = Posterior { mu, s };
            z = q.sample(shard);
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
        let (gh, gw) = match self.kind {
            DecoderKind::Small => (h + 6, w + 6),
            DecoderKind::Iodine => (h + 10, w + 10),
            DecoderKind::Big => (6, 6),
        };
        let pos = self.pos.forward(position_grid(gh, gw, &z.device())).swap_dims(0, 1).reshape([1, d, gh, gw]);
        let act = |x: Tensor<4>| match self.kind {
            DecoderKind::Iodine => burn::tensor::activation::elu(x, 1.0),
            DecoderKind::Small | DecoderKind::Big => relu(x),
        };
        let (last, hidden) = self.layers.split_last().expect("an output layer");
        // z broadcast over the grid plus the shared position map: a conv of it needs no N·K maps.
        let first = match &hidden[0] {
            DecoderLayer::Conv(c) => c.forward_broadcast(z, pos),
            DecoderLayer::Deconv(c) => c.forward(z.reshape([nk, d, 1, 1]).expand([nk, d, gh, gw]) + pos),
        };
        let out = last.forward(hidden[1..].iter().fold(act(first), |x, l| act(l.forward(x))));
        let out = out.reshape([nk / k, k, 4, h, w]);
        let rgb = sigmoid(out.clone().slice([0..nk / k, 0..k, 0..3]));
        let logits = out.slice([0..nk / k, 0..k, 3..4]);
        (rgb, log_softmax(logits, 1))
    }
}

impl Refinement {
    /// One refinement step: e = [λ ; LN g_μ ; LN g_s] (g = ∂L/∂λ, layer-normed without affine)
    /// → Linear → ELU → Linear → GRU(h) → δ = [loc(h') ; scale(h')] (no softplus, as the code).
    /// Returns (δμ, δs, h').
    pub fn step(&self, q: &Posterior, g: Tensor<2>, h: Tensor<2>) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
        let [rows, d] = q.mu.dims();
        let (g_mu, g_s) = (g.clone().slice([0..rows, 0..d]), g.slice([0..rows, d..2 * d]));
        let e = Tensor::cat(
            vec![q.mu.clone(), q.s.clone(), normalize(g_mu, TORCH_LN_EPS), normalize(g_s, TORCH_LN_EPS)],
            1,
        );
        let h = self.gru.forward(self.encode.forward(e, |x| burn::tensor::activation::elu(x, 1.0)), h);
        (self.loc.forward(h.clone()), self.scale.forward(h.clone()), h)
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
        EmorlNet::new(&NetShape { image: [size, size], z_size: d, layers: 3, decoder, dual_gru: true }, &Device::flex())
    }

    /// The reference's hand counts less the 2 GECO scalars, which are controller state here.
    #[test]
    fn parameter_counts_match_the_reference() {
        assert_eq!(net(DecoderKind::Small, 32).num_params(), 467_238 - 2);
        assert_eq!(net(DecoderKind::Iodine, 64).num_params(), 666_502 - 2);
        // `big` swaps the iodine decoder (pos 4·64+64, 4 × (64·64·9+64), 64·4·9+4 = 150,340) for
        // pos 320, 5 × (64·64·25+64) and 64·4·9+4 = 514,948.
        assert_eq!(net(DecoderKind::Big, 64).num_params(), 666_500 - 150_340 + 514_948);
    }

    #[test]
    fn the_single_gru_ablation_has_its_own_shape() {
        use burn::tensor::Distribution;
        let dev = Device::flex();
        let shape = |dual_gru| NetShape { image: [96, 96], z_size: 8, layers: 2, decoder: DecoderKind::Big, dual_gru };
        let (dual, single) = (EmorlNet::new(&shape(true), &dev), EmorlNet::new(&shape(false), &dev));
        // DualGRU: 2 × (3 gates × (D·D + D·D) + 6D biases); single: Linear(D,2D) + GRU(2D,2D).
        let d = 8;
        let dual_gru = 2 * (3 * 2 * d * d + 6 * d);
        let single_gru = (d * 2 * d + 2 * d) + (3 * 2 * (2 * d) * (2 * d) + 6 * 2 * d);
        assert_eq!(single.num_params() - dual.num_params(), single_gru - dual_gru);
        let x = Tensor::<4>::random([1, 3, 96, 96], Distribution::Uniform(-1.0, 1.0), &dev);
        let (keys, values) = single.encoder.forward(x);
        let s1 = single.hvae.forward(keys, values, 2, 2, &crate::train::Shard::whole(0, 1));
        let (rgb, _) = single.decoder.forward(s1.z, 2, [96, 96]);
        assert_eq!(rgb.dims(), [1, 2, 3, 96, 96]);
    }

    #[test]
    fn stage_one_and_the_decoder_have_the_right_shapes() {
        use burn::tensor::Distribution;
        let dev = Device::flex();
        let m = EmorlNet::new(
            &NetShape { image: [12, 12], z_size: 8, layers: 2, decoder: DecoderKind::Small, dual_gru: true },
            &dev,
        );
        let x = Tensor::<4>::random([2, 3, 12, 12], Distribution::Uniform(-1.0, 1.0), &dev);
        let (keys, values) = m.encoder.forward(x);
        assert_eq!(keys.dims(), [2, 144, 8]);
        let s1 = m.hvae.forward(keys, values, 3, 2, &crate::train::Shard::whole(0, 2));
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
