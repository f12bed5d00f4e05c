//! SQAIR's networks (`reference/sqair.md` §2, config `mlp_mnist_model`). Rows are (sequence,
//! particle) pairs, P of them; the K object slots of a frame are visited in order (the model's
//! own autoregression), every network runs once per slot over all P rows.
use super::dist::{bernoulli_log_prob, count_log_prob, mvn_tril_log_prob, normal_log_prob};
use super::nets::{Gru, Mlp, VanillaRnn, linear, linear_with_bias};
use super::stn;
use crate::nn::{Act, Dense};
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::activation::{log_softmax, sigmoid, softplus};
use burn::tensor::{Device, Tensor};

/// The discovery prior over how many objects a frame adds (`disc_prior_type`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CountPrior {
    /// Learned logits elu(b + [t > 0]·b_t + MLP(prior conditioning)) over 0..=K.
    Categorical,
    /// tfd.Geometric(probs = 1 − step_success_prob), not truncated at K.
    Geometric(f32),
}

/// The propagation prior's centre (`prop_prior_type`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PropPrior {
    /// `rnn`: absolute what/where from the prior GRU.
    Rnn,
    /// `rw`: centred on the previous what/where, presence logit z_{t−1} + 0.1·(its own).
    RandomWalk,
    /// `guided`: previous value + 0.1·the GRU's.
    Guided,
}

/// Sizes and the flags of the README's tinkering table.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub image: [usize; 2],
    pub glimpse: usize,
    pub n_what: usize,
    /// 32 · n_units.
    pub hidden: usize,
    /// K, objects per frame (`n_steps_per_image`).
    pub steps: usize,
    pub masked_glimpse: bool,
    pub rec_where_prior: bool,
    pub count_prior: CountPrior,
    pub prop_prior: PropPrior,
    /// Prior mean of the two scale logits (`scale_prior`).
    pub scale_prior: [f32; 2],
    pub transform_var_bias: f32,
    pub output_scale: f32,
    pub prop_prior_step_bias: f32,
    pub output_std: f32,
    pub disc_step_bias: f32,
    pub prop_step_bias: f32,
}

/// The shared glimpse encoder (`AIREncoder`): glimpse → MLP → Linear(2·n_what) → loc and
/// softplus(scale) + 0.01, the glimpse optionally multiplied by σ(MLP(temporal state)).
#[derive(Module, Debug)]
pub struct GlimpseEncoder {
    pub mlp: Mlp,
    pub params: Dense,
    pub mask: Option<Mlp>,
}

impl GlimpseEncoder {
    /// (loc, scale) [N, n_what] of glimpses [N, G, G].
    pub fn forward(&self, glimpse: Tensor<3>, mask_input: Option<Tensor<2>>) -> (Tensor<2>, Tensor<2>) {
        let [n, g, _] = glimpse.dims();
        let mut flat: Tensor<2> = glimpse.reshape([n, g * g]);
        if let (Some(mask), Some(h)) = (&self.mask, mask_input) {
            flat = flat * sigmoid(mask.forward(h));
        }
        gaussian(self.params.forward(self.mlp.forward(flat)), 0.0)
    }
}

/// A Gaussian from a [N, 2D] vector: loc, softplus(s + offset) + 0.01 (`GaussianFromParamVec`).
fn gaussian(v: Tensor<2>, offset: f32) -> (Tensor<2>, Tensor<2>) {
    let [n, d2] = v.dims();
    let loc = v.clone().slice([0..n, 0..d2 / 2]);
    let scale = softplus(v.slice([0..n, d2 / 2..d2]).add_scalar(offset), 1.0).add_scalar(0.01);
    (loc, scale)
}

/// `StochasticTransformParam`: MLP → 8 outputs, (loc, raw scale + a trainable offset).
#[derive(Module, Debug)]
pub struct WhereNet {
    pub mlp: Mlp,
    /// `scale_offset`, initialised to `transform_var_bias` [1].
    pub offset: Param<Tensor<1>>,
}

impl WhereNet {
    fn new(d_in: usize, s: &Shape, device: &Device) -> Self {
        WhereNet {
            mlp: Mlp::new(d_in, &[s.hidden, s.hidden], Some(8), device),
            offset: Param::from_tensor(Tensor::from_floats([s.transform_var_bias], device)),
        }
    }

    /// (loc [N, 4], raw scale [N, 4] with the offset added).
    fn forward(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let n = x.dims()[0];
        let p = self.mlp.forward(x);
        (p.clone().slice([0..n, 0..4]), p.slice([0..n, 4..8]) + self.offset.val().unsqueeze())
    }
}

/// Discovery: its RNN, where and presence networks (`DiscoveryCore`).
#[derive(Module, Debug)]
pub struct Discovery {
    pub rnn: VanillaRnn,
    pub where_net: WhereNet,
    pub presence: Mlp,
}

/// Propagation: its RNN, where, temporal and presence networks (`PropagationCore`).
#[derive(Module, Debug)]
pub struct Propagation {
    pub rnn: VanillaRnn,
    /// 0.1 · MLP(128 → 4)(temporal state): the glimpse's shift before the RNN.
    pub where_bias: Mlp,
    pub where_net: WhereNet,
    /// The 10 free entries of the lower-triangular factor (`AffineDiagNormal`'s `cholesky_scale`).
    pub cholesky: Param<Tensor<1>>,
    /// The temporal GRU; its initial state is the one new objects start from.
    pub temporal: Gru,
    pub temporal_what: Dense,
    /// Forget, input and temporal gates; bias initialised to 1.
    pub gates: Dense,
    pub presence: Mlp,
}

/// The propagation prior: a GRU per object over (what, where) of t − 1, read out to the presence
/// logit and the what/where Gaussians (`PropagatePrior`).
#[derive(Module, Debug)]
pub struct PropagationPrior {
    pub rnn: Gru,
    pub out: Dense,
}

/// Discovery's priors: the count's learned logits and the recurrent where prior.
#[derive(Module, Debug)]
pub struct DiscoveryPrior {
    /// `step_prior_bias` [K + 1] and `step_prior_timestep_bias` [K + 1] (init [10, 0, …]).
    pub step_bias: Param<Tensor<1>>,
    pub timestep_bias: Param<Tensor<1>>,
    pub count_mlp: Mlp,
    pub where_prior: Option<WherePrior>,
}

/// `RecurrentNormal(4, 128, conditional=True)`: a VanillaRNN(4) whose state is the conditioned
/// Linear(128)+ELU of (its learned initial state, the conditioning). The original never carries
/// the RNN's new state to the next step (its `_forward` drops it): every step reads the same
/// conditioned state and the previous sample.
#[derive(Module, Debug)]
pub struct WherePrior {
    pub rnn: VanillaRnn,
    pub readout: Dense,
    pub condition: Dense,
    pub init_sample: Param<Tensor<2>>,
}

/// Every network of the model.
#[derive(Module, Debug)]
pub struct SqairNet {
    pub input_encoder: Mlp,
    pub glimpse_encoder: GlimpseEncoder,
    pub discovery: Discovery,
    pub propagation: Propagation,
    /// Σ_k pres_k · MLP(what_k, where_k): propagation's summary for discovery.
    pub latent_encoder: Mlp,
    pub prop_prior: PropagationPrior,
    pub disc_prior: DiscoveryPrior,
    pub decoder: Mlp,
    pub output_scale: Param<Tensor<1>>,
    /// The trainable background, initialised to the training frames' mean [H, W].
    pub mean_img: Param<Tensor<2>>,
    #[module(skip)]
    pub shape: Shape,
}

impl SqairNet {
    pub fn new(s: &Shape, mean_img: Tensor<2>, device: &Device) -> Self {
        let (h, w, g, d) = (s.hidden, s.n_what, s.glimpse, s.steps);
        let pixels = s.image[0] * s.image[1];
        let hh = [h, h];
        let glimpse_encoder = GlimpseEncoder {
            mlp: Mlp::new(g * g, &hh, None, device),
            params: linear(h, 2 * w, device),
            mask: s.masked_glimpse.then(|| Mlp::with_out_bias(h, &[128], Some(vec![1.0; g * g]), device)),
        };
        let discovery = Discovery {
            rnn: VanillaRnn::new(h + h + w + 4 + 1, h, h, device),
            where_net: WhereNet::new(h, s, device),
            presence: Mlp::with_out_bias(h + w, &[h / 2], Some(vec![s.disc_step_bias]), device),
        };
        let propagation = Propagation {
            rnn: VanillaRnn::new(w + 2 * (w + 4 + 1) + h, h, h, device),
            where_bias: Mlp::new(h, &[128], Some(4), device),
            where_net: WhereNet::new(h + 4 + h, s, device),
            cholesky: Initializer::Uniform { min: -(0.3f64.sqrt()), max: 0.3f64.sqrt() }.init([10], device),
            temporal: Gru::new(h + 4 + 2 * w, h, device),
            temporal_what: linear(h, 2 * w, device),
            gates: linear_with_bias(h, &vec![1.0; 3 * w], device),
            presence: Mlp::with_out_bias(h + h + w, &[h / 2], Some(vec![s.prop_step_bias]), device),
        };
        let where_prior = s.rec_where_prior.then(|| {
            let mut bias = vec![s.scale_prior[0], s.scale_prior[1], 0.0, 0.0];
            bias.extend([1.0; 4]);
            WherePrior {
                rnn: VanillaRnn::new(4, 128, 4, device),
                readout: linear_with_bias(4, &bias, device),
                condition: linear(4 + h + 1, 128, device),
                // tf.get_variable's default: Glorot-uniform with fans (1, 4).
                init_sample: Initializer::XavierUniform { gain: 1.0 }.init_with([1, 4], Some(1), Some(4), device),
            }
        });
        let mut timestep = vec![0.0f32; d + 1];
        timestep[0] = 10.0;
        SqairNet {
            input_encoder: Mlp::new(pixels, &hh, None, device),
            glimpse_encoder,
            discovery,
            propagation,
            latent_encoder: Mlp::new(w + 4, &hh, None, device),
            prop_prior: PropagationPrior { rnn: Gru::new(w + 4, h, device), out: linear(h, 1 + 2 * (4 + w), device) },
            disc_prior: DiscoveryPrior {
                step_bias: Initializer::Zeros.init([d + 1], device),
                timestep_bias: Param::from_tensor(Tensor::from_floats(timestep.as_slice(), device)),
                count_mlp: Mlp::new(1, &[10], Some(d + 1), device),
                where_prior,
            },
            decoder: Mlp::new(w, &hh, Some(g * g), device),
            output_scale: Param::from_tensor(Tensor::from_floats([s.output_scale], device)),
            mean_img: Param::from_tensor(mean_img),
            shape: s.clone(),
        }
    }
}

/// The lower-triangular [1, 4, 4] of `fill_triangular` (TF's order: rows from the vector's tail
/// and its reverse): L00 = c4; L10, L11 = c8, c9; L20..L22 = c7, c6, c5; L30..L33 = c3, c2, c1, c0.
pub fn fill_triangular(c: Tensor<1>) -> Tensor<3> {
    const AT: [(usize, usize); 10] =
        [(0, 4), (4, 8), (5, 9), (8, 7), (9, 6), (10, 5), (12, 3), (13, 2), (14, 1), (15, 0)];
    let device = c.device();
    let mut sel = vec![0.0f32; 16 * 10];
    for (cell, i) in AT {
        sel[cell * 10 + i] = 1.0;
    }
    let sel = Tensor::<1>::from_floats(sel.as_slice(), &device).reshape([16, 10]);
    sel.matmul(c.reshape([10, 1])).reshape([1, 4, 4])
}

/// One object slot's latents: what [P, n_what], where logits [P, 4], presence and its logit [P, 1].
#[derive(Debug, Clone)]
pub struct Slot {
    pub what: Tensor<2>,
    pub where_: Tensor<2>,
    pub pres: Tensor<2>,
    pub logit: Tensor<2>,
}

/// What a slot step (propagation or discovery) produces besides its latents.
#[derive(Debug, Clone)]
pub struct SlotOut {
    pub z: Slot,
    pub what_loc: Tensor<2>,
    pub what_scale: Tensor<2>,
    pub where_loc: Tensor<2>,
    pub where_scale: Tensor<2>,
    /// Propagation only: the new temporal state.
    pub temporal: Option<Tensor<2>>,
}

/// The noise of one slot step: ε for where [P, 4] and what [P, n_what], a uniform for presence [P, 1].
#[derive(Debug, Clone)]
pub struct SlotNoise {
    pub where_: Tensor<2>,
    pub what: Tensor<2>,
    pub pres: Tensor<2>,
}

/// A Bernoulli sample from logits with a uniform u: 1 where u < σ(logit).
fn bernoulli(logit: Tensor<2>, u: Tensor<2>) -> Tensor<2> {
    u.lower(sigmoid(logit)).float()
}

/// The presence logit masked by the previous presence (`StepsPredictor`): an absent object's
/// logit is −88, so once off it stays off.
fn masked_logit(logit: Tensor<2>, prev: Tensor<2>) -> Tensor<2> {
    prev.clone() * logit + (prev.sub_scalar(1.0)).mul_scalar(88.0)
}

impl SqairNet {
    /// Glimpses [P, G, G] of frames [P, H, W] at where logits [P, 4].
    fn glimpse(&self, img: &Tensor<3>, where_: Tensor<2>) -> Tensor<3> {
        stn::glimpse(img.clone(), stn::to_coords(where_), self.shape.glimpse)
    }

    /// One discovery step (`DiscoveryCore._build`). `code` is the encoded frame, `cond` the
    /// propagation summary, `prev` the previous step's latents, `h` the RNN state.
    pub fn discover_step(
        &self,
        img: &Tensor<3>,
        code: Tensor<2>,
        cond: Tensor<2>,
        prev: &Slot,
        h: Tensor<2>,
        noise: &SlotNoise,
    ) -> (SlotOut, Tensor<2>) {
        let d = &self.discovery;
        let input = Tensor::cat(vec![code, cond, prev.what.clone(), prev.where_.clone(), prev.pres.clone()], 1);
        let h = d.rnn.forward(input, h);
        let (where_loc, raw) = d.where_net.forward(h.clone());
        let where_scale = softplus(raw, 1.0).add_scalar(0.01);
        let where_ = where_loc.clone() + where_scale.clone() * noise.where_.clone();
        let (what_loc, what_scale) = self.glimpse_encoder.forward(self.glimpse(img, where_.clone()), None);
        let what = what_loc.clone() + what_scale.clone() * noise.what.clone();
        let logit = masked_logit(d.presence.forward(Tensor::cat(vec![h.clone(), what.clone()], 1)), prev.pres.clone());
        let pres = bernoulli(logit.clone(), noise.pres.clone()) * prev.pres.clone();
        let z = Slot { what, where_, pres, logit };
        (SlotOut { z, what_loc, what_scale, where_loc, where_scale, temporal: None }, h)
    }

    /// One propagation step (`PropagationCore._build`) of slot `tm1` (its latents at t − 1 and
    /// temporal state `ht`), after the slots before it at this frame (`km1`, RNN state `h`).
    #[allow(clippy::too_many_arguments)]
    pub fn propagate_step(
        &self,
        img: &Tensor<3>,
        tm1: &Slot,
        ht: Tensor<2>,
        km1: &Slot,
        h: Tensor<2>,
        noise: &SlotNoise,
    ) -> (SlotOut, Tensor<2>) {
        let p = &self.propagation;
        let mask_input = || self.shape.masked_glimpse.then(|| ht.clone());
        let shift = p.where_bias.forward(ht.clone()).mul_scalar(0.1);
        let (seen, _) = self.glimpse_encoder.forward(self.glimpse(img, tm1.where_.clone() + shift), mask_input());
        let input = Tensor::cat(
            vec![
                seen,
                km1.what.clone(),
                km1.where_.clone(),
                km1.pres.clone(),
                tm1.what.clone(),
                tm1.where_.clone(),
                tm1.pres.clone(),
                ht.clone(),
            ],
            1,
        );
        let h = p.rnn.forward(input, h);
        // where ~ N(where_{t−1} + Δ, L Lᵀ), L = tril(c)·scale (rows) + diag(scale).
        let (delta, raw) = p.where_net.forward(Tensor::cat(vec![h.clone(), tm1.where_.clone(), ht.clone()], 1));
        let where_loc = tm1.where_.clone() + delta;
        let where_scale = softplus(raw.sub_scalar(1.0), 1.0).add_scalar(0.01);
        let l = self.tril(where_scale.clone());
        let rows = where_loc.dims()[0];
        let where_ = where_loc.clone() + l.matmul(noise.where_.clone().reshape([rows, 4, 1])).reshape([rows, 4]);
        // what: the glimpse's Gaussian and the temporal GRU's, mixed by gates.
        let (enc_loc, enc_scale) = self.glimpse_encoder.forward(self.glimpse(img, where_.clone()), mask_input());
        let temporal = p
            .temporal
            .forward(Tensor::cat(vec![h.clone(), where_.clone(), enc_loc.clone(), enc_scale.clone()], 1), ht.clone());
        let (t_loc, t_scale) = gaussian(p.temporal_what.forward(temporal.clone()), 0.0);
        let gates = sigmoid(p.gates.forward(temporal.clone())).mul_scalar(0.9999);
        let w = self.shape.n_what;
        let gate = |i: usize| gates.clone().slice([0..rows, i * w..(i + 1) * w]);
        let (f, i, g) = (gate(0), gate(1), gate(2));
        let keep_i = i.neg().add_scalar(1.0);
        let keep_g = g.neg().add_scalar(1.0);
        let what_loc = f * tm1.what.clone() + keep_i.clone() * enc_loc + keep_g.clone() * t_loc;
        let what_scale = keep_i * enc_scale + keep_g * t_scale;
        let what = what_loc.clone() + what_scale.clone() * noise.what.clone();
        let features = Tensor::cat(vec![h.clone(), ht, what.clone()], 1);
        let logit = masked_logit(p.presence.forward(features), tm1.pres.clone());
        let pres = bernoulli(logit.clone(), noise.pres.clone()) * tm1.pres.clone();
        let z = Slot { what, where_, pres, logit };
        (SlotOut { z, what_loc, what_scale, where_loc, where_scale, temporal: Some(temporal) }, h)
    }

    /// The propagation posterior's lower-triangular factor [P, 4, 4] for row scales [P, 4].
    pub fn tril(&self, scale: Tensor<2>) -> Tensor<3> {
        let rows = scale.dims()[0];
        let eye = Tensor::<2>::eye(4, &scale.device()).reshape([1, 4, 4]);
        let s = scale.reshape([rows, 4, 1]);
        fill_triangular(self.propagation.cholesky.val()) * s.clone() + eye * s
    }

    /// log q of a propagated where [P, 1].
    pub fn prop_where_log_q(&self, out: &SlotOut) -> Tensor<2> {
        mvn_tril_log_prob(out.z.where_.clone(), out.where_loc.clone(), self.tril(out.where_scale.clone()))
    }

    /// The propagation prior of every slot at once (rows P·K): presence logit [PK, 1] (masked),
    /// where (loc, scale) [PK, 4], what (loc, scale) [PK, n_what], and the new GRU state.
    pub fn prop_prior(&self, tm1: &Slot, state: Tensor<2>) -> PriorStats {
        let s = &self.shape;
        let state = self.prop_prior.rnn.forward(Tensor::cat(vec![tm1.what.clone(), tm1.where_.clone()], 1), state);
        let out = self.prop_prior.out.forward(state.clone());
        let rows = out.dims()[0];
        let col = |a: usize, b: usize| out.clone().slice([0..rows, a..b]);
        let w = s.n_what;
        let (where_raw, what_raw) = (col(1, 5), col(5, 5 + w));
        let sp = |x: Tensor<2>| softplus(x, 1.0).add_scalar(0.01);
        let (where_scale, what_scale) = (sp(col(5 + w, 9 + w)), sp(col(9 + w, 9 + 2 * w)));
        let masked = masked_logit(col(0, 1).add_scalar(s.prop_prior_step_bias), tm1.pres.clone());
        // `rw` and `guided` re-centre the masked statistics on t − 1 with weight 0.1.
        let (logit, where_loc, what_loc) = match s.prop_prior {
            PropPrior::Rnn => (masked, where_raw, what_raw),
            PropPrior::RandomWalk => (tm1.logit.clone() + masked.mul_scalar(0.1), tm1.where_.clone(), tm1.what.clone()),
            PropPrior::Guided => (
                tm1.logit.clone() + masked.mul_scalar(0.1),
                tm1.where_.clone() + where_raw.mul_scalar(0.1),
                tm1.what.clone() + what_raw.mul_scalar(0.1),
            ),
        };
        PriorStats { logit, where_loc, where_scale, what_loc, what_scale, state }
    }

    /// log p of discovered where logits [P, K, 4] (presence-weighted by the caller), under the
    /// recurrent prior conditioned on `cond` [P, d], or N((scale prior, 0, 0), 1).
    pub fn disc_where_log_p(&self, where_: &[Tensor<2>], cond: Tensor<2>) -> Vec<Tensor<2>> {
        let s = &self.shape;
        let rows = cond.dims()[0];
        let Some(prior) = &self.disc_prior.where_prior else {
            let device = cond.device();
            let loc = Tensor::<1>::from_floats([s.scale_prior[0], s.scale_prior[1], 0.0, 0.0], &device).reshape([1, 4]);
            return where_
                .iter()
                .map(|x| {
                    let ones = Tensor::<2>::ones([rows, 4], &device);
                    normal_log_prob(x.clone(), loc.clone().expand([rows, 4]), ones).sum_dim(1)
                })
                .collect();
        };
        let state = Act::Elu.apply(prior.condition.forward(Tensor::cat(vec![prior.rnn.initial(rows), cond], 1)));
        let from_state = prior.rnn.hidden_to_hidden.forward(state);
        let mut prev = prior.init_sample.val().expand([rows, 4]);
        where_
            .iter()
            .map(|x| {
                let out = (prior.rnn.in_to_hidden.forward(prev.clone()) + from_state.clone()).tanh();
                let (loc, scale) = gaussian(prior.readout.forward(out), 0.0);
                prev = x.clone();
                normal_log_prob(x.clone(), loc, scale).sum_dim(1)
            })
            .collect()
    }

    /// log p of the discovered count (one-hot [P, K + 1]) at frame `t` given the propagation
    /// prior's expected presence `cond` [P, 1].
    pub fn disc_count_log_p(&self, one_hot: Tensor<2>, cond: Tensor<2>, t: usize) -> Tensor<2> {
        match self.shape.count_prior {
            CountPrior::Categorical => {
                let dp = &self.disc_prior;
                let mut bias = dp.step_bias.val();
                if t > 0 {
                    bias = bias + dp.timestep_bias.val();
                }
                let logits = Act::Elu.apply(dp.count_mlp.forward(cond) + bias.unsqueeze());
                (log_softmax(logits, 1) * one_hot).sum_dim(1)
            }
            CountPrior::Geometric(p) => {
                let k = one_hot.dims()[1];
                let n: Vec<f32> = (0..k).map(|i| i as f32).collect();
                let n = Tensor::<1>::from_floats(n.as_slice(), &one_hot.device()).reshape([1, k]);
                (one_hot * n).sum_dim(1).mul_scalar(p.ln()).add_scalar((1.0 - p).ln())
            }
        }
    }

    /// The discovery posterior's log q of the count from the steps' presence logits [P, K].
    pub fn disc_count_log_q(&self, logits: Tensor<2>, one_hot: Tensor<2>) -> Tensor<2> {
        count_log_prob(logits, one_hot)
    }

    /// Decode latents of K slots (rows P·K) into the mean canvas [P, H, W]: glimpses
    /// MLP(what)·output_scale written at where, times presence, summed over slots, plus the mean
    /// image where anything was written (σ(−10 + 20·Σ written ones)).
    pub fn decode(&self, what: Tensor<2>, where_: Tensor<2>, pres: Tensor<2>) -> Tensor<3> {
        let s = &self.shape;
        let (g, [h, w]) = (s.glimpse, s.image);
        let rows = what.dims()[0];
        let p = rows / s.steps;
        let glimpses = (self.decoder.forward(what) * self.output_scale.val().unsqueeze()).reshape([rows, g, g]);
        let coords = stn::to_coords(where_);
        let (by, bx) = stn::write_matrices(coords, g, [h, w]);
        let pres3 = pres.reshape([rows, 1, 1]);
        let written = by.clone().matmul(glimpses).matmul(bx.clone().swap_dims(1, 2)) * pres3.clone();
        // B_y · 1 · B_xᵀ is the outer product of the two matrices' row sums.
        let ones = by.sum_dim(2).matmul(bx.sum_dim(2).swap_dims(1, 2)) * pres3;
        let sum = |x: Tensor<3>| x.reshape([p, s.steps, h, w]).sum_dim(1).reshape([p, h, w]);
        let mask = sigmoid(sum(ones).mul_scalar(20.0).sub_scalar(10.0));
        sum(written) + mask * self.mean_img.val().unsqueeze()
    }

    /// log N(x; canvas, output_std²) summed over pixels: [P, 1].
    pub fn data_log_likelihood(&self, x: Tensor<3>, canvas: Tensor<3>) -> Tensor<2> {
        let [p, h, w] = x.dims();
        let std = Tensor::<3>::ones([p, h, w], &x.device()).mul_scalar(self.shape.output_std);
        normal_log_prob(x, canvas, std).reshape([p, h * w]).sum_dim(1)
    }
}

/// The propagation prior's statistics for every slot (rows P·K).
#[derive(Debug, Clone)]
pub struct PriorStats {
    pub logit: Tensor<2>,
    pub where_loc: Tensor<2>,
    pub where_scale: Tensor<2>,
    pub what_loc: Tensor<2>,
    pub what_scale: Tensor<2>,
    pub state: Tensor<2>,
}

/// log q and log p of one propagated slot's what and where, each times p_{t−1}·p_t, and of its
/// presence, times p_{t−1} (`Propagate._compute_log_probs`): ([P,1] continuous q, p; discrete q, p).
pub fn prop_log_probs(
    net: &SqairNet,
    out: &SlotOut,
    tm1_pres: Tensor<2>,
    prior: (&Tensor<2>, &Tensor<2>, &Tensor<2>, &Tensor<2>, &Tensor<2>),
) -> [Tensor<2>; 4] {
    let (logit_p, where_loc_p, where_scale_p, what_loc_p, what_scale_p) = prior;
    let z = &out.z;
    let both = tm1_pres.clone() * z.pres.clone();
    let q_what = normal_log_prob(z.what.clone(), out.what_loc.clone(), out.what_scale.clone()).sum_dim(1);
    let q_where = net.prop_where_log_q(out);
    let p_what = normal_log_prob(z.what.clone(), what_loc_p.clone(), what_scale_p.clone()).sum_dim(1);
    let p_where = normal_log_prob(z.where_.clone(), where_loc_p.clone(), where_scale_p.clone()).sum_dim(1);
    let q_pres = bernoulli_log_prob(z.pres.clone(), z.logit.clone()) * tm1_pres.clone();
    let p_pres = bernoulli_log_prob(z.pres.clone(), logit_p.clone()) * tm1_pres;
    [(q_what + q_where) * both.clone(), (p_what + p_where) * both, q_pres, p_pres]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_triangular_follows_tensorflow() {
        // tf.contrib.distributions.fill_triangular(range(10)) for n = 4, lower.
        let c = Tensor::<1>::from_floats([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], &Device::flex());
        let l: Vec<f32> = fill_triangular(c).into_data().try_to_vec::<f32>().unwrap();
        #[rustfmt::skip]
        let want = [4.0, 0.0, 0.0, 0.0,
                    8.0, 9.0, 0.0, 0.0,
                    7.0, 6.0, 5.0, 0.0,
                    3.0, 2.0, 1.0, 0.0];
        assert_eq!(l, want);
    }
}
