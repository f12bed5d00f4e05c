//! Two-stage inference (reference §1.8–§1.10): stage 1's bottom-up HVAE, then I refinement steps,
//! each fed the layer-normed gradient of the previous step's loss with respect to λ = [μ ; s].
//! The gradient is taken on a detached copy of λ by re-scoring only what depends on λ (decode,
//! likelihood, the KL terms that read λ) with the same noise; it is a constant input to the
//! refinement network, as the original's `.detach()` after the layer norm makes it.
//! Needs an autodiff device, at evaluation too.
use super::loss::{gaussian_nll, gmm_nll, kl, kl_standard, per_image};
use super::model::{EmorlNet, Posterior};
use crate::train::Shard;
use burn::module::Module;
use burn::tensor::Tensor;

/// What inference needs besides the network (the original's `Net.*` and dataset keys).
#[derive(Debug, Clone)]
pub struct InferCfg {
    pub k: usize,
    /// L, stochastic layers.
    pub layers: usize,
    /// I, refinement steps.
    pub refinement: usize,
    /// The likelihood's standard deviation.
    pub sigma: f64,
    /// Per-channel Gaussian mixture (CLEVR) instead of the Gaussian of the mean.
    pub gmm: bool,
    /// β_KL (`kl_beta_init`, 1 in every config).
    pub kl_beta: f64,
    /// Image height and width.
    pub image: [usize; 2],
    pub prior: PriorKind,
}

/// Which prior each KL term of the hierarchy uses (reference §1.9).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PriorKind {
    /// Step 0: the top layer against N(0, I), layer l against Prior(z̃ ~ q_{l+1}); refinement
    /// steps against N(0, I) (`reverse_prior_plusplus=false`).
    Reversed,
    /// As `Reversed`, but refinement steps against layer 0's prior of step 0 (the default).
    ReversedPlusPlus,
    /// Step 0: layer 0 against N(0, I), layer l against Prior(z̃ ~ q_{l−1}); refinement steps
    /// against N(0, I) (`bottom_up_prior`).
    BottomUp,
}

/// GECO's form of a step's loss, once it is active: softplus(ζ) and C_ema ([1], on the device,
/// no gradient) and the target C.
#[derive(Debug, Clone)]
pub struct GecoTerm {
    pub weight: Tensor<1>,
    pub target: f64,
    pub c_ema: Tensor<1>,
}

impl GecoTerm {
    /// The term on a replica's device.
    pub fn to_device(self, device: &burn::tensor::Device) -> Self {
        GecoTerm { weight: self.weight.to_device(device), c_ema: self.c_ema.to_device(device), ..self }
    }
}

/// One inference step's outputs: NLL and KL per image, the step's loss, the reconstruction.
pub struct Step {
    pub nll: Tensor<1>,
    pub kl: Tensor<1>,
    pub loss: Tensor<1>,
    /// [N, K, 3, H, W] in [0, 1] and log-masks [N, K, 1, H, W].
    pub rgb: Tensor<5>,
    pub log_masks: Tensor<5>,
}

pub struct Inference {
    /// Step 0 (stage 1) and the I refinement steps.
    pub steps: Vec<Step>,
    /// Σ_i w_i loss_i with w_i = (I + 3 − i)/(I + 1) (the code's weights, reference §1.10).
    pub total: Tensor<1>,
    /// Stage 1's attention per layer, [N, K, H·W].
    pub attention: Vec<Tensor<3>>,
    /// Stage 1's posteriors q_0 … q_{L−1} (pictures decode the lower layers).
    pub layers: Vec<Posterior>,
    /// Mean ‖δ‖₂ over slots of each refinement step (the shard's share of it).
    pub deltas: Vec<Tensor<1>>,
    /// The last step's sample of the final posterior, [N·K, D] (what its images decode).
    pub z: Tensor<2>,
}

/// The loss of a step from its per-image NLL and KL, times `share` (a shard's part of the batch,
/// so that the shards' losses and gradients add up to the whole batch's). With GECO active its
/// value is β KL − sp(ζ) C_ema and its gradient β ∂KL + sp(ζ) ∂NLL.
pub fn step_loss(nll: Tensor<1>, kl: Tensor<1>, kl_beta: f64, geco: Option<&GecoTerm>, share: f64) -> Tensor<1> {
    let loss = match geco {
        None => (nll + kl * kl_beta).mean(),
        Some(g) => {
            let c_t = nll.mean().neg() + g.target;
            let lagged = (c_t.clone().neg() + g.c_ema.clone()).detach();
            kl.mean() * kl_beta - (c_t + lagged) * g.weight.clone()
        }
    };
    loss * share
}

/// A step's reconstruction, NLL and KL per image.
struct Scored {
    nll: Tensor<1>,
    kl: Tensor<1>,
    rgb: Tensor<5>,
    log_masks: Tensor<5>,
}

impl EmorlNet {
    /// The parts of a step's loss that read λ: decoding z = μ + std(s)·ε, the likelihood, and the
    /// KL of q(λ) against `prior` (N(0, I) when None) plus, at step 0, the layer below's KL
    /// against the prior built from a sample of q(λ) with noise `below.1`.
    fn score(
        &self,
        q: &Posterior,
        eps: &Tensor<2>,
        prior: Option<&Posterior>,
        below: Option<(&Posterior, &Tensor<2>)>,
        x01: &Tensor<4>,
        cfg: &InferCfg,
    ) -> Scored {
        let (rgb, log_masks) = self.decoder.forward(q.sample_with(eps), cfg.k, cfg.image);
        let nll = if cfg.gmm {
            gmm_nll(x01.clone(), rgb.clone(), log_masks.clone(), cfg.sigma)
        } else {
            gaussian_nll(x01.clone(), rgb.clone(), log_masks.clone(), cfg.sigma)
        };
        let mut kl_q = match prior {
            Some(p) => kl(q, p),
            None => kl_standard(q),
        };
        if let Some((q_below, eps_below)) = below {
            kl_q = kl_q + kl(q_below, &self.prior.forward(q.sample_with(eps_below)));
        }
        Scored { nll, kl: per_image(kl_q, cfg.k), rgb, log_masks }
    }

    /// ∂(the λ-dependent part of a step's loss)/∂λ at λ = q, as a constant [N·K, 2D].
    #[allow(clippy::too_many_arguments)] // the terms of one step's loss, as `score` and `step_loss` take them
    pub fn loss_gradient(
        &self,
        q: &Posterior,
        eps: &Tensor<2>,
        prior: Option<&Posterior>,
        below: Option<(&Posterior, &Tensor<2>)>,
        x01: &Tensor<4>,
        cfg: &InferCfg,
        geco: Option<&GecoTerm>,
        share: f64,
    ) -> Tensor<2> {
        let d = q.mu.dims()[1];
        let lambda = Tensor::cat(vec![q.mu.clone(), q.s.clone()], 1).detach().require_grad();
        let rows = lambda.dims()[0];
        let qd = Posterior { mu: lambda.clone().slice([0..rows, 0..d]), s: lambda.clone().slice([0..rows, d..2 * d]) };
        let detach = |p: &Posterior| Posterior { mu: p.mu.clone().detach(), s: p.s.clone().detach() };
        let prior = prior.map(detach);
        let below = below.map(|(p, e)| (detach(p), e.clone()));
        let s = self.score(&qd, eps, prior.as_ref(), below.as_ref().map(|(p, e)| (p, e)), x01, cfg);
        let grads = step_loss(s.nll, s.kl, cfg.kl_beta, geco, share).backward();
        lambda.grad(&grads).expect("λ takes part in the loss").detach()
    }

    /// Both stages on images x [N, 3, H, W] in [−1, 1], the samples of `shard`: its draws, and
    /// losses that are its share of the whole batch's.
    pub fn infer(&self, x: Tensor<4>, cfg: &InferCfg, geco: Option<&GecoTerm>, shard: &Shard) -> Inference {
        let share = shard.share();
        let x01 = (x.clone() + 1.0) / 2.0;
        let (keys, values) = self.encoder.forward(x);
        let stage1 = self.hvae.forward(keys, values, cfg.k, cfg.layers, shard);
        let qs = stage1.posteriors;
        let last = qs.last().expect("at least one stochastic layer").clone();
        let mut kl_rest = Tensor::<1>::zeros([x01.dims()[0]], &x01.device());
        // The KL terms that read the last layer's λ are scored with it: its own (against
        // `prior_of_last`, N(0, I) when None) and, for the reversed priors, the layer below's.
        let (mut p_star, mut prior_of_last, mut below_of_last) = (None, None, None);
        if cfg.prior == PriorKind::BottomUp {
            for l in 0..cfg.layers {
                let p = (l > 0).then(|| self.prior.forward(qs[l - 1].sample(shard)));
                if l + 1 == cfg.layers {
                    prior_of_last = p;
                } else {
                    kl_rest = kl_rest + per_image(p.map_or_else(|| kl_standard(&qs[l]), |p| kl(&qs[l], &p)), cfg.k);
                }
            }
        } else {
            for l in (0..cfg.layers - 1).rev() {
                let eps = qs[l + 1].noise(shard);
                let p_l = self.prior.forward(qs[l + 1].sample_with(&eps));
                if l + 1 == cfg.layers - 1 {
                    below_of_last = Some((qs[l].clone(), eps));
                } else {
                    kl_rest = kl_rest + per_image(kl(&qs[l], &p_l), cfg.k);
                }
                if l == 0 && cfg.prior == PriorKind::ReversedPlusPlus {
                    p_star = Some(p_l);
                }
            }
        }
        let eps0 = last.noise(shard);
        let below = below_of_last.as_ref().map(|(p, e)| (p, e));
        let s0 = self.score(&last, &eps0, prior_of_last.as_ref(), below, &x01, cfg);
        let kl0 = s0.kl + kl_rest;
        let mut steps = vec![Step {
            loss: step_loss(s0.nll.clone(), kl0.clone(), cfg.kl_beta, geco, share),
            nll: s0.nll,
            kl: kl0,
            rgb: s0.rgb,
            log_masks: s0.log_masks,
        }];

        let (mut q, mut eps, mut prior, mut below) = (last, eps0, prior_of_last, below_of_last);
        let d = q.mu.dims()[1];
        let rows = q.mu.dims()[0];
        let mut h = Tensor::<2>::zeros([rows, d], &q.mu.device());
        let mut deltas = Vec::new();
        // The gradient input is a constant: scoring it with frozen weights spares the backward
        // pass their gradients, which would be thrown away.
        let frozen = if cfg.refinement > 0 { Some(self.clone().no_grad()) } else { None };
        for _ in 0..cfg.refinement {
            let g = frozen.as_ref().expect("refinement > 0").loss_gradient(
                &q,
                &eps,
                prior.as_ref(),
                below.as_ref().map(|(p, e)| (p, e)),
                &x01,
                cfg,
                geco,
                share,
            );
            let (d_mu, d_s, h_new) = self.refinement.step(&q, g, h);
            h = h_new;
            deltas.push((d_mu.clone().square().sum_dim(1) + d_s.clone().square().sum_dim(1)).sqrt().mean() * share);
            q = Posterior { mu: q.mu + d_mu, s: q.s + d_s };
            // Refinement steps compare q(λ) with p*: layer 0's prior of step 0 (reversed prior++)
            // or N(0, I).
            prior = p_star.clone();
            below = None;
            eps = q.noise(shard);
            let s = self.score(&q, &eps, prior.as_ref(), None, &x01, cfg);
            steps.push(Step {
                loss: step_loss(s.nll.clone(), s.kl.clone(), cfg.kl_beta, geco, share),
                nll: s.nll,
                kl: s.kl,
                rgb: s.rgb,
                log_masks: s.log_masks,
            });
        }
        let i = cfg.refinement as f64;
        let total = steps
            .iter()
            .enumerate()
            .map(|(j, s)| s.loss.clone() * ((i + 3.0 - j as f64) / (i + 1.0)))
            .reduce(|a, b| a + b)
            .expect("step 0");
        let z = q.sample_with(&eps);
        Inference { steps, total, attention: stage1.attention, layers: qs, deltas, z }
    }
}
