//! One (RN)N-EM step, its losses and the loop around it (reference §2.1), written once for every
//! N-EM-family model: the cells (N-EM, RNN-EM, the minimal system, later R-NEM) only differ in
//! the M-step network ([`Cell`]).
//! Shapes: ψ is [B, K, P, C] (P = H·W pixels), γ is [B, K, P, 1], a frame is [B, 1, P, C].
//! Slots live in the batch dimension of the inner network: it sees [B·K, P·C].
use crate::train::Shard;
use burn::tensor::{Device, Int, Tensor};

/// Clip applied to ψ inside logarithms.
const CLIP: f64 = 1e-6;

/// The pixel likelihood of the mixture components.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pixel {
    /// Binary data: Bernoulli pixels.
    Bernoulli,
    /// Grey-level data: Gaussian pixels with the E-step's fixed standard deviation.
    Gaussian { e_sigma: f64 },
}

/// The training loss of one EM step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LossKind {
    /// The original's: Σ γ·intra + w_inter Σ (1 − γ)·inter.
    Nem,
    /// −Σ_pixels log((1/K) Σ_k p(x | ψ_k)), the uniform-mixture likelihood (seed 003).
    Mixture,
}

/// Everything the EM loop needs besides the inner network.
#[derive(Debug, Clone)]
pub struct EmSpec {
    pub k: usize,
    pub pixel: Pixel,
    pub loss_inter_weight: f64,
    /// p of the Bernoulli pixel prior, μ of the Gaussian one.
    pub prior_p: f64,
    pub prior_mu: f64,
    /// Let gradients flow through γ (in the network input mask and the loss weights).
    pub gradient_gamma: bool,
    pub pred_init: f64,
    pub loss: LossKind,
    /// A (K+1)-th component that never changes: ψ = the pixel prior everywhere. It takes the
    /// pixels no object explains, so the K slots receive only their objects' residuals.
    pub background: bool,
}

/// ψ as the per-pixel losses read it (`EmSpec::pixel_terms`).
#[allow(clippy::large_enum_variant)] // tensor handles; boxing would add an allocation per EM step
enum PixelTerms {
    Bernoulli { log_psi: Tensor<4>, log_one_minus: Tensor<4> },
    Gaussian(Tensor<4>),
}

/// Σ over the channel axis of [B, K, P, C]; a reshape when there is one channel (cheaper, and
/// its backward is free).
fn sum_channels(t: Tensor<4>) -> Tensor<4> {
    match t.dims() {
        [_, _, _, 1] => t,
        _ => t.sum_dim(3),
    }
}

/// The M-step's network: ψ of the K slots from u = γ ⊙ (x̃ − ψ) and a recurrent state.
pub trait Cell {
    /// What the network carries between EM steps: h ([B·K, units]) for the RNN, GRU and N-EM
    /// cells; a structured state (an LSTM's (c, h)) for others.
    type State: Clone;
    /// One M-step over all slots: u [B·K, P·C] → (ψ [B·K, P·C], the new state); `action`
    /// [B·K, A] is the step's action for cells that read one (R-NEM's `feed_actions`).
    fn step(&self, u: Tensor<2>, state: Self::State, action: Option<Tensor<2>>) -> (Tensor<2>, Self::State);
    /// ψ of a state as it is (a learned initial state's first step).
    fn decode(&self, state: &Self::State) -> Tensor<2>;
    /// The attention a relational cell pays from each slot to each other one at `state`,
    /// [B·K, K − 1] (None for cells without it).
    fn attention(&self, _state: &Self::State, _action: Option<Tensor<2>>) -> Option<Tensor<2>> {
        None
    }
}

/// Where each EM step's network input comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// Step t reads the observed (corrupted) frame t.
    Observed,
    /// Observed frames before step n, then the model's own prediction Σ_k γψ (a rollout). A
    /// rollout step's loss still reads the true next frame, but the γ it carries on is taken
    /// without it: against [max_k ψ > 0.1] for Bernoulli pixels (R-NEM's rollout), against max_k ψ
    /// for Gaussian ones.
    RolloutFrom(usize),
}

/// One unrolled EM run over a batch.
pub struct Unrolled {
    pub loss: Tensor<1>,
    pub intra: Tensor<1>,
    pub inter: Tensor<1>,
    pub ub_loss_last: Tensor<1>,
    /// What evaluation keeps (`Run::keep`).
    pub kept: Option<Kept>,
    /// R-NEM's further logged losses (`Run::relational`): `ub_loss`, `r_loss`, `r_ub_loss`, and
    /// the last-dt averages `intra_last_dt`, `inter_last_dt`, `ub_loss_last_dt`.
    pub logged: Vec<(String, Tensor<1>)>,
}

/// The groupings of an unrolled run, for scores and pictures.
pub struct Kept {
    /// argmax_k γ after each step, [T, B, P].
    pub assignments: Tensor<3, Int>,
    /// max_k γ after each step, [T, B, P]: the confidence of the assignment.
    pub confidence: Tensor<3>,
    /// ψ [B, K, P, C] and γ [B, K, P, 1] of the last step.
    pub psi: Tensor<4>,
    pub gamma: Tensor<4>,
    /// The last step's loss per image, [B]: how restarts are compared.
    pub image_loss: Tensor<1>,
    /// Each step's prediction of the next frame, Σ_k γψ, [T, B, P, C].
    pub predictions: Tensor<4>,
    /// Each step's loss and upper-bound BCE (of max_k ψ, free of the E-step), batch means, [T].
    pub step_loss: Tensor<1>,
    pub step_bce: Tensor<1>,
    /// The relational cell's attention before each step, [T, B·K, K − 1].
    pub attention: Option<Tensor<3>>,
}

/// What a loop over EM steps reads besides the cell and the initial state.
pub struct Run<'a> {
    /// The loss weight of each step (its length is the number of steps).
    pub weights: &'a [f64],
    /// The observed network input of step t, [B, 1, P, C] (corrupted).
    pub observed: &'a dyn Fn(usize) -> Tensor<4>,
    /// Step t's E-step and loss target, [B, 1, P, C] (the next frame).
    pub target: &'a dyn Fn(usize) -> Tensor<4>,
    pub schedule: Schedule,
    /// The action of step t, [B, A] (R-NEM's `feed_actions`); None: no actions.
    pub actions: Option<&'a dyn Fn(usize) -> Tensor<2>>,
    /// The corruption applied to a rollout step's input Σ_k γψ (the original noises predicted
    /// frames too); None: used as it is.
    pub corrupt: Option<&'a dyn Fn(Tensor<4>) -> Tensor<4>>,
    /// Step 0 decodes the initial state instead of an M-step (a learned θ_init).
    pub decode_first: bool,
    /// Keep assignments and the last step for evaluation.
    pub keep: bool,
    /// The shard's share of the batch mean that the losses are scaled by.
    pub share: f64,
    /// R-NEM's objective and logs (None: N-EM's).
    pub relational: Option<Relational<'a>>,
}

/// R-NEM's bookkeeping (reference §2.1 item 6–7, §2.6): the losses normalised over steps
/// (Σ w_t L_t / Σ w_t), the upper bound with its inter term at every step, the relational loss
/// (each pixel's terms times the step's mask), and averages over the last `dt` steps.
pub struct Relational<'a> {
    pub dt: usize,
    /// Step t's mask, [B, 1, P, 1] (`collisions`) or [B, 1, 1, 1] (`events`).
    pub mask: Option<&'a dyn Fn(usize) -> Tensor<4>>,
}

/// The state carried from one EM step to the next.
#[derive(Debug, Clone)]
pub struct EmState<H = Tensor<2>> {
    /// Inner network state ([B·K, units] for the single-tensor cells).
    pub h: H,
    /// Component predictions ψ, [B, K, P, C] (K + 1 with the background component).
    pub psi: Tensor<4>,
    /// Posteriors γ, [B, K, P, 1] (K + 1 with the background component).
    pub gamma: Tensor<4>,
}

/// Losses of one step: per image ([B]) or for the batch ([1], divided by B).
#[derive(Debug, Clone)]
pub struct StepLoss {
    pub intra: Tensor<1>,
    pub inter: Tensor<1>,
}

impl EmSpec {
    /// Mixture components: the K slots and the background component if there is one.
    pub fn components(&self) -> usize {
        self.k + self.background as usize
    }

    /// ψ of the K slots [B, K, P, C] → ψ of every component (the background appended as slot K).
    pub fn with_background(&self, psi: Tensor<4>) -> Tensor<4> {
        if !self.background {
            return psi;
        }
        let [b, _, p, c] = psi.dims();
        let value = match self.pixel {
            Pixel::Bernoulli => self.prior_p.clamp(CLIP, 1.0 - CLIP),
            Pixel::Gaussian { .. } => self.prior_mu,
        };
        let bg = Tensor::full([b, 1, p, c], value, &psi.device());
        Tensor::cat(vec![psi, bg], 1)
    }

    /// h = 0, ψ = pred_init, γ = |N(0, 1)| normalised over the components (1 when there is one).
    pub fn initial_state(&self, b: usize, p: usize, c: usize, units: usize, shard: &Shard, device: &Device) -> EmState {
        let k = self.components();
        let gamma = if k == 1 {
            Tensor::ones([b, 1, p, 1], device)
        } else {
            let g = shard.normal(0.0, 1.0, [b, k, p, 1], device).abs();
            g.clone() / g.sum_dim(1)
        };
        EmState {
            h: Tensor::zeros([b * self.k, units], device),
            psi: self.with_background(Tensor::full([b, self.k, p, c], self.pred_init, device)),
            gamma,
        }
    }

    /// One EM step: the M-step on u = γ ⊙ (x̃ − ψ) of `state` and `input` (None: the state is
    /// decoded as it is), then the E-step against `target`. `action` [B, A] reaches every slot of
    /// its image.
    pub fn step<C: Cell>(
        &self,
        cell: &C,
        state: EmState<C::State>,
        input: Option<Tensor<4>>,
        target: Tensor<4>,
        action: Option<Tensor<2>>,
    ) -> EmState<C::State> {
        let [b, _, p, c] = state.psi.dims();
        let (psi, h) = match input {
            Some(x) => {
                let u = self.network_input(&state, x);
                cell.step(u, state.h, action.map(|a| self.per_slot(a)))
            }
            None => (cell.decode(&state.h), state.h),
        };
        let psi = self.with_background(psi.reshape([b, self.k, p, c]));
        let gamma = self.e_step(psi.clone(), target);
        EmState { h, psi, gamma }
    }

    /// The EM loop: `run.weights.len()` steps from `state`, each step's input from the schedule,
    /// losses weighted per step and scaled by the shard's share.
    pub fn unroll<C: Cell>(&self, cell: &C, mut state: EmState<C::State>, run: &Run<'_>) -> Unrolled {
        let device = state.psi.device();
        let b = state.psi.dims()[0];
        let p = state.psi.dims()[2];
        let zero = || Tensor::<1>::zeros([1], &device);
        let (mut intra, mut inter, mut ub, mut image_loss) = (zero(), zero(), zero(), zero());
        let (mut assignments, mut confidence) = (Vec::new(), Vec::new());
        let (mut predictions, mut step_loss, mut step_bce, mut attention) = (vec![], vec![], vec![], vec![]);
        let steps = run.weights.len();
        // R-NEM divides the weighted sum by Σ w; its last-dt averages by the last dt weights.
        let norm = if run.relational.is_some() { run.weights.iter().sum::<f64>() } else { 1.0 };
        let dt_from = run.relational.as_ref().map_or(steps, |r| steps.saturating_sub(r.dt));
        let dt_norm: f64 = run.weights[dt_from..].iter().sum();
        let mut logs: Vec<(String, Tensor<1>)> = Vec::new();
        let mut log = |name: &str, v: Tensor<1>| match logs.iter_mut().find(|(n, _)| n == name) {
            Some((_, sum)) => *sum = sum.clone() + v,
            None => logs.push((name.to_string(), v)),
        };
        for (t, &w) in run.weights.iter().enumerate() {
            let target = (run.target)(t);
            let input = match run.schedule {
                _ if t == 0 && run.decode_first => None,
                Schedule::RolloutFrom(n) if t >= n => {
                    let prediction = (state.gamma.clone() * state.psi.clone()).sum_dim(1);
                    Some(match run.corrupt {
                        Some(c) => c(prediction),
                        None => prediction,
                    })
                }
                _ => Some((run.observed)(t)),
            };
            let action = run.actions.map(|a| a(t));
            if run.keep {
                let a = action.clone().map(|a| self.per_slot(a));
                attention.extend(cell.attention(&state.h, a).map(|a| a.unsqueeze::<3>()));
            }
            state = self.step(cell, state, input, target.clone(), action);
            let scale = w * run.share / norm;
            if w != 0.0 || run.relational.is_some() || run.keep {
                let l = self.step_loss(state.psi.clone(), state.gamma.clone(), target.clone(), None);
                if run.keep {
                    step_loss.push((l.intra.clone() + l.inter.clone()) * run.share);
                    step_bce.push(self.upper_bound_loss(state.psi.clone(), target.clone()) * run.share);
                }
                if w != 0.0 {
                    intra = intra + l.intra.clone() * scale;
                    inter = inter + l.inter.clone() * scale;
                }
                if let Some(r) = &run.relational {
                    let step_ub = self.upper_bound(state.psi.clone(), target.clone(), true, None);
                    log("ub_loss", step_ub.clone() * scale);
                    if t >= dt_from && dt_norm > 0.0 {
                        let last = run.share / dt_norm;
                        log("intra_last_dt", l.intra * (w * last));
                        log("inter_last_dt", l.inter * (w * last));
                        log("ub_loss_last_dt", step_ub * (w * last));
                    }
                    if let Some(mask) = r.mask {
                        let m = mask(t);
                        let rl =
                            self.step_loss(state.psi.clone(), state.gamma.clone(), target.clone(), Some(m.clone()));
                        log("r_loss", (rl.intra + rl.inter) * scale);
                        log("r_ub_loss", self.upper_bound(state.psi.clone(), target.clone(), true, Some(m)) * scale);
                    }
                }
            }
            if t + 1 == steps {
                if run.keep {
                    let l = self.image_losses(state.psi.clone(), state.gamma.clone(), target.clone(), None);
                    image_loss = l.intra + l.inter;
                }
                ub = self.upper_bound_loss(state.psi.clone(), target) * run.share;
            }
            if matches!(run.schedule, Schedule::RolloutFrom(n) if t >= n) {
                state.gamma = self.e_step(state.psi.clone(), self.own_target(state.psi.clone()));
            }
            if run.keep {
                assignments.push(state.gamma.clone().argmax(1).reshape([1, b, p]));
                confidence.push(state.gamma.clone().max_dim(1).reshape([1, b, p]));
                predictions.push((state.gamma.clone() * state.psi.clone()).sum_dim(1));
            }
        }
        Unrolled {
            loss: intra.clone() + inter.clone(),
            intra,
            inter,
            ub_loss_last: ub,
            kept: run.keep.then(|| Kept {
                assignments: Tensor::cat(assignments, 0),
                confidence: Tensor::cat(confidence, 0),
                predictions: Tensor::cat(predictions, 1).swap_dims(0, 1),
                step_loss: Tensor::cat(step_loss, 0),
                step_bce: Tensor::cat(step_bce, 0),
                attention: (!attention.is_empty()).then(|| Tensor::cat(attention, 0)),
                psi: state.psi,
                gamma: state.gamma,
                image_loss,
            }),
            logged: logs,
        }
    }

    /// Rows [B, A] repeated for the K slots of each image, [B·K, A] (slot k of image b at b·K + k).
    fn per_slot(&self, a: Tensor<2>) -> Tensor<2> {
        let [b, n] = a.dims();
        a.unsqueeze_dim::<3>(1).expand([b, self.k, n]).reshape([b * self.k, n])
    }

    /// A rollout step's stand-in for the unseen frame: [max_k ψ > 0.1] (Bernoulli), max_k ψ
    /// (Gaussian), [B, 1, P, C].
    fn own_target(&self, psi: Tensor<4>) -> Tensor<4> {
        let top = psi.max_dim(1);
        match self.pixel {
            Pixel::Bernoulli => top.greater_elem(0.1).float(),
            Pixel::Gaussian { .. } => top,
        }
    }

    /// The masked difference u = γ ⊙ (x̃ − ψ) of the K slots, flattened to the inner network's
    /// [B·K, P·C].
    pub fn network_input<H>(&self, state: &EmState<H>, input: Tensor<4>) -> Tensor<2> {
        let k = self.k;
        // A full-range narrow still costs a zero-filled gradient copy in backward: skip it.
        let slots = |t: &Tensor<4>| if self.background { t.clone().narrow(1, 0, k) } else { t.clone() };
        let (gamma, psi) = (self.maybe_detach(slots(&state.gamma)), slots(&state.psi));
        let [b, _, p, c] = psi.dims();
        let delta = input - psi;
        (gamma * delta).reshape([b * k, p * c])
    }

    fn maybe_detach(&self, g: Tensor<4>) -> Tensor<4> {
        if self.gradient_gamma { g } else { g.detach() }
    }

    /// E-step against the (clean) target: γ_k ∝ Σ_c p(x | ψ_k) + 1e-6.
    pub fn e_step(&self, psi: Tensor<4>, target: Tensor<4>) -> Tensor<4> {
        let p = match self.pixel {
            Pixel::Bernoulli => {
                // x ψ + (1 − x)(1 − ψ), written with two operations on ψ.
                sum_channels(psi * (target.clone() * 2.0 - 1.0) + (target.neg() + 1.0))
            }
            Pixel::Gaussian { e_sigma } => {
                let var = e_sigma * e_sigma;
                let norm = 1.0 / (2.0 * std::f64::consts::PI * var).sqrt();
                sum_channels(((psi - target).square() * (-0.5 / var)).exp()) * norm
            }
        } + 1e-6;
        p.clone() / p.sum_dim(1)
    }

    /// What the per-pixel losses read of ψ: for Bernoulli pixels log ψ and log(1 − ψ), ψ clipped
    /// to [1e-6, 1 − 1e-6]; computed once and shared by `intra` and `inter`.
    fn pixel_terms(&self, psi: Tensor<4>) -> PixelTerms {
        match self.pixel {
            Pixel::Bernoulli => {
                let psi = psi.clamp(CLIP, 1.0 - CLIP);
                PixelTerms::Bernoulli { log_psi: psi.clone().log(), log_one_minus: (psi.neg() + 1.0).log() }
            }
            Pixel::Gaussian { .. } => PixelTerms::Gaussian(psi),
        }
    }

    /// Per-pixel negative log-likelihood of the target under ψ ("intra"), [B, K, P, C].
    pub fn intra(&self, psi: Tensor<4>, target: Tensor<4>) -> Tensor<4> {
        self.intra_of(&self.pixel_terms(psi), target)
    }

    fn intra_of(&self, terms: &PixelTerms, target: Tensor<4>) -> Tensor<4> {
        match terms {
            PixelTerms::Bernoulli { log_psi, log_one_minus } => {
                (target.clone() * log_psi.clone() + (target.neg() + 1.0) * log_one_minus.clone()).neg()
            }
            PixelTerms::Gaussian(psi) => (psi.clone() - target).square() * 0.5,
        }
    }

    /// Per-pixel divergence of ψ from the pixel prior ("inter"), [B, K, P, C].
    fn inter_of(&self, terms: &PixelTerms) -> Tensor<4> {
        match terms {
            PixelTerms::Bernoulli { log_psi, log_one_minus } => {
                // KL(Bern(p) ‖ Bern(ψ)), with 0·log 0 = 0 for the prior's end points.
                let p = self.prior_p;
                let mut kl = log_one_minus.clone() * (-(1.0 - p));
                if p > 0.0 {
                    kl = kl - log_psi.clone() * p + p * p.ln();
                }
                if p > 0.0 && p < 1.0 {
                    kl = kl + (1.0 - p) * (1.0 - p).ln();
                }
                kl
            }
            PixelTerms::Gaussian(psi) => (psi.clone() - self.prior_mu).square() * 0.5,
        }
    }

    /// log p(x | ψ_k) per pixel, summed over channels, [B, K, P, 1] (Gaussian up to a constant).
    pub fn log_likelihood(&self, psi: Tensor<4>, target: Tensor<4>) -> Tensor<4> {
        sum_channels(self.intra(psi, target)).neg()
    }

    /// −Σ_pixels log((1/K) Σ_k p(x | ψ_k)) per image, [B], with a log-sum-exp over the slots.
    pub fn mixture_nll(&self, psi: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
        let b = psi.dims()[0];
        let ll = self.log_likelihood(psi, target);
        let m = ll.clone().max_dim(1).detach();
        let lse = (ll - m.clone()).exp().sum_dim(1).log() + m;
        (lse - (self.components() as f64).ln()).sum_dim(2).reshape([b]).neg()
    }

    /// The step's loss per image, [B] each: the original's
    /// Σ γ·intra + w_inter Σ (1 − γ)·inter (over K, pixels and channels), or the mixture likelihood.
    /// A `mask` ([B, 1, P, 1] or [B, 1, 1, 1]) multiplies every pixel's terms (R-NEM's relational loss).
    pub fn image_losses(
        &self,
        psi: Tensor<4>,
        gamma: Tensor<4>,
        target: Tensor<4>,
        mask: Option<Tensor<4>>,
    ) -> StepLoss {
        let b = psi.dims()[0];
        match self.loss {
            LossKind::Nem => {
                let gamma = self.maybe_detach(gamma);
                let per_image = |t: Tensor<4>| {
                    let t = match &mask {
                        Some(m) => t * m.clone(),
                        None => t,
                    };
                    t.reshape([b as i32, -1]).sum_dim(1).reshape([b])
                };
                let terms = self.pixel_terms(psi);
                let intra = per_image(gamma.clone() * self.intra_of(&terms, target));
                let inter = per_image((gamma.neg() + 1.0) * self.inter_of(&terms)) * self.loss_inter_weight;
                StepLoss { intra, inter }
            }
            LossKind::Mixture => {
                let intra = self.mixture_nll(psi, target);
                StepLoss { inter: intra.zeros_like(), intra }
            }
        }
    }

    /// The step's loss, summed over the batch and divided by B (the original's normalisation).
    pub fn step_loss(&self, psi: Tensor<4>, gamma: Tensor<4>, target: Tensor<4>, mask: Option<Tensor<4>>) -> StepLoss {
        let b = psi.dims()[0] as f64;
        let l = self.image_losses(psi, gamma, target, mask);
        StepLoss { intra: l.intra.sum() / b, inter: l.inter.sum() / b }
    }

    /// The upper-bound loss, free of the E-step: the pixel loss of max_k ψ, summed, / B.
    pub fn upper_bound_loss(&self, psi: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
        self.upper_bound(psi, target, false, None)
    }

    /// The upper bound on max_k ψ: intra, plus w_inter · inter as R-NEM has it (`with_inter`),
    /// each pixel's terms times `mask` if given; summed, / B.
    pub fn upper_bound(
        &self,
        psi: Tensor<4>,
        target: Tensor<4>,
        with_inter: bool,
        mask: Option<Tensor<4>>,
    ) -> Tensor<1> {
        let b = psi.dims()[0] as f64;
        let terms = self.pixel_terms(psi.max_dim(1));
        let mut l = self.intra_of(&terms, target);
        if with_inter {
            l = l + self.inter_of(&terms) * self.loss_inter_weight;
        }
        match mask {
            Some(m) => (l * m).sum() / b,
            None => l.sum() / b,
        }
    }
}
