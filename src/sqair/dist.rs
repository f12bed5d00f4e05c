//! The distributions and targets of SQAIR (`reference/sqair.md` §2, §3, §7): log-probabilities
//! of diagonal and lower-triangular Gaussians, Bernoullis and the discovery count, and the IWAE
//! bound with VIMCO's control variate (`targets.py`).
use burn::tensor::Tensor;
use burn::tensor::activation::log_sigmoid;

const LOG_2PI: f32 = 1.837_877_1;

/// log N(x; loc, scale²), elementwise.
pub fn normal_log_prob<const D: usize>(x: Tensor<D>, loc: Tensor<D>, scale: Tensor<D>) -> Tensor<D> {
    let z = (x - loc) / scale.clone();
    (z.clone() * z).mul_scalar(-0.5) - scale.log() - LOG_2PI / 2.0
}

/// log N(x; loc, L Lᵀ) of 4-D `x`, `loc` [N, 4] with lower-triangular `l` [N, 4, 4]: solve
/// L y = x − loc by forward substitution, then −½|y|² − Σ log L_ii − 2 log 2π. Returns [N, 1].
pub fn mvn_tril_log_prob(x: Tensor<2>, loc: Tensor<2>, l: Tensor<3>) -> Tensor<2> {
    let [n, d] = x.dims();
    let r = x - loc;
    let entry = |i: usize, j: usize| l.clone().slice([0..n, i..i + 1, j..j + 1]).reshape([n, 1]);
    let mut y: Vec<Tensor<2>> = Vec::with_capacity(d);
    let mut log_det = Tensor::<2>::zeros([n, 1], &r.device());
    for i in 0..d {
        let mut acc = r.clone().slice([0..n, i..i + 1]);
        for (j, yj) in y.iter().enumerate() {
            acc = acc - entry(i, j) * yj.clone();
        }
        let diag = entry(i, i);
        // TF's MultivariateNormalTriL: log|det L| = Σ log|L_ii|.
        log_det = log_det + diag.clone().abs().log();
        y.push(acc / diag);
    }
    let y = Tensor::cat(y, 1);
    (y.clone() * y).sum_dim(1).mul_scalar(-0.5) - log_det - LOG_2PI * d as f32 / 2.0
}

/// log Bernoulli(x; σ(logits)) for x ∈ {0, 1}, elementwise.
pub fn bernoulli_log_prob<const D: usize>(x: Tensor<D>, logits: Tensor<D>) -> Tensor<D> {
    x.clone() * log_sigmoid(logits.clone()) + x.neg().add_scalar(1.0) * log_sigmoid(logits.neg())
}

/// AIR's "modified geometric" over the number of steps n ∈ {0..K} from K per-step presence
/// logits [N, K]: q(n) = (1 − p_{n+1}) Π_{i≤n} p_i, q(K) = Π p_i. Log-probabilities [N, K + 1],
/// computed in log space (the original renormalises in float64; the terms sum to 1 exactly).
pub fn count_log_probs(step_logits: Tensor<2>) -> Tensor<2> {
    let n = step_logits.dims()[0];
    let log_p = log_sigmoid(step_logits.clone());
    let log_not = log_sigmoid(step_logits.neg());
    let zero = Tensor::<2>::zeros([n, 1], &log_p.device());
    // Σ_{i≤n} log p_i for n = 0..K.
    let prefix = Tensor::cat(vec![zero.clone(), log_p.cumsum(1)], 1);
    prefix + Tensor::cat(vec![log_not, zero], 1)
}

/// log q(n) of counts `n` given as one-hot rows [N, K + 1], floored at log 1e-16 with the
/// gradient of the unfloored value (the original's `clip_preserve` before the log).
pub fn count_log_prob(step_logits: Tensor<2>, one_hot: Tensor<2>) -> Tensor<2> {
    let lp = (count_log_probs(step_logits) * one_hot).sum_dim(1);
    lp.clone() + (lp.clone().clamp_min((1e-16f32).ln()) - lp).detach()
}

/// log Σ exp over the last axis of [B, k] → [B, 1].
pub fn logsumexp(x: Tensor<2>) -> Tensor<2> {
    let max = x.clone().max_dim(1).detach();
    (x - max.clone()).exp().sum_dim(1).log() + max
}

/// IWAE: logsumexp_k log w_k − log k, [B, k] → [B, 1].
pub fn iwae(log_weights: Tensor<2>) -> Tensor<2> {
    let k = log_weights.dims()[1];
    logsumexp(log_weights).sub_scalar((k as f32).ln())
}

/// VIMCO's control variate per particle [B, k]: the IWAE with log w_j replaced by the mean of
/// the other k − 1 log-weights.
pub fn vimco_control_variate(log_weights: Tensor<2>) -> Tensor<2> {
    let [b, k] = log_weights.dims();
    let others = (log_weights.clone().sum_dim(1) - log_weights.clone()).div_scalar(k as f32 - 1.0);
    // [B, k (the replaced particle), k]: row j is log w with entry j swapped for `others_j`.
    let eye = Tensor::<2>::eye(k, &log_weights.device()).reshape([1, k, k]);
    let rows = log_weights.clone().reshape([b, 1, k]).expand([b, k, k]);
    let swapped = rows.clone() + eye * (others.reshape([b, k, 1]) - rows);
    logsumexp(swapped.reshape([b * k, k])).reshape([b, k]).sub_scalar((k as f32).ln())
}

/// The VIMCO surrogate to minimise: mean over batch and particles of
/// −IWAE_b − stopgrad(log w_k − baseline_k) · log q_k (`targets.vimco`); `log_q` [B, k] sums the
/// discrete variables' log-probabilities of each particle.
pub fn vimco_surrogate(log_weights: Tensor<2>, log_q: Tensor<2>) -> Tensor<1> {
    let signal = (log_weights.clone() - vimco_control_variate(log_weights.clone())).detach();
    let bound = iwae(log_weights);
    (bound.neg() - signal * log_q).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn t2(rows: &[&[f32]]) -> Tensor<2> {
        let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::<1>::from_floats(flat.as_slice(), &Device::flex()).reshape([rows.len(), rows[0].len()])
    }

    fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn close(a: &[f32], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((*x as f64 - y).abs() < tol, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn a_normal_log_prob_by_hand() {
        let lp = floats(normal_log_prob(t2(&[&[1.0]]), t2(&[&[0.5]]), t2(&[&[2.0]])));
        let want = -0.5 * 0.25f64.powi(2) - 2f64.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln();
        close(&lp, &[want], 1e-6);
    }

    #[test]
    fn a_tril_gaussian_by_hand() {
        // L = [[2,0,0,0],[1,1,0,0],[0,0,1,0],[0,0,0.5,0.5]]; x − loc = (2, 3, 1, 1).
        let l = Tensor::<1>::from_floats(
            [2.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.5, 0.5],
            &Device::flex(),
        )
        .reshape([1, 4, 4]);
        let lp = floats(mvn_tril_log_prob(t2(&[&[2.0, 3.0, 1.0, 1.0]]), t2(&[&[0.0; 4]]), l));
        // y = (1, 2, 1, (1 − 0.5·1)/0.5 = 1); |y|² = 7; log det = ln 2 + ln 0.5 = 0.
        let want = -3.5 - (2f64.ln() + 0.5f64.ln()) - 2.0 * (2.0 * std::f64::consts::PI).ln();
        close(&lp, &[want], 1e-5);
    }

    #[test]
    fn count_probabilities_sum_to_one_and_match_air() {
        let logits = t2(&[&[0.3, -1.2, 2.0], &[5.0, 5.0, -5.0]]);
        let lp = floats(count_log_probs(logits.clone()));
        let s = |x: f64| 1.0 / (1.0 + (-x).exp());
        let p = [s(0.3), s(-1.2), s(2.0)];
        let want = [1.0 - p[0], p[0] * (1.0 - p[1]), p[0] * p[1] * (1.0 - p[2]), p[0] * p[1] * p[2]];
        close(&lp[..4].iter().map(|v| v.exp()).collect::<Vec<_>>(), &want, 1e-6);
        for row in lp.chunks(4) {
            let total: f64 = row.iter().map(|&v| (v as f64).exp()).sum();
            assert!((total - 1.0).abs() < 1e-5);
        }
        let picked = floats(count_log_prob(logits, t2(&[&[0.0, 0.0, 1.0, 0.0], &[0.0, 0.0, 0.0, 1.0]])));
        close(&picked[..1], &[want[2].ln()], 1e-5);
    }

    #[test]
    fn bernoulli_log_prob_by_hand() {
        let lp = floats(bernoulli_log_prob(t2(&[&[1.0, 0.0]]), t2(&[&[0.0, 2.0]])));
        close(&lp, &[0.5f64.ln(), (1.0 / (1.0 + 2f64.exp())).ln()], 1e-6);
    }

    #[test]
    fn iwae_with_one_particle_is_the_elbo() {
        let lw = t2(&[&[-3.25], &[7.5]]);
        close(&floats(iwae(lw)), &[-3.25, 7.5], 1e-6);
        let lw = t2(&[&[0.0, 2f32.ln()]]);
        close(&floats(iwae(lw)), &[1.5f64.ln()], 1e-6);
    }

    #[test]
    fn vimco_baseline_on_a_hand_example() {
        // log w = (0, ln 2, ln 4): for particle 0 the others' mean is (ln 2 + ln 4)/2 = 1.5 ln 2,
        // so b_0 = ln((2^1.5 + 2 + 4)/3); b_1 = ln((1 + 2^1 + 4)/3) with mean(0, ln 4) = ln 2;
        // b_2 = ln((1 + 2 + 2^0.5)/3).
        let lw = t2(&[&[0.0, 2f32.ln(), 4f32.ln()]]);
        let b = floats(vimco_control_variate(lw.clone()));
        let want = [((2f64.powf(1.5) + 6.0) / 3.0).ln(), (7.0f64 / 3.0).ln(), ((3.0 + 2f64.sqrt()) / 3.0).ln()];
        close(&b, &want, 1e-5);
        // The surrogate's value: −IWAE − Σ_k (log w_k − b_k) log q_k / k.
        let log_q = t2(&[&[-1.0, -2.0, -0.5]]);
        let s = floats(vimco_surrogate(lw, log_q))[0] as f64;
        let lw = [0.0, 2f64.ln(), 4f64.ln()];
        let iwae = (7.0f64 / 3.0).ln();
        let want: f64 = (0..3).map(|k| -iwae - (lw[k] - want[k]) * [-1.0, -2.0, -0.5][k]).sum::<f64>() / 3.0;
        assert!((s - want).abs() < 1e-5, "{s} vs {want}");
    }
}
