//! EMORL's likelihoods and KL terms (reference §1.7, §1.9), per image.
use super::model::{Posterior, std_of};
use burn::tensor::Tensor;

/// Gaussian likelihood of the mask-weighted mean ŷ = Σ_k m_k y_k, unnormalised (no ½ log 2π):
/// NLL = Σ_{c,h,w} ½ log σ² + ½ (x − ŷ)² / σ². `x` in [0, 1] is [N, 3, H, W]; rgb [N, K, 3, H, W];
/// log_masks [N, K, 1, H, W]. Returns [N].
pub fn gaussian_nll(x: Tensor<4>, rgb: Tensor<5>, log_masks: Tensor<5>, sigma: f64) -> Tensor<1> {
    let n = x.dims()[0];
    let mean = (log_masks.exp() * rgb).sum_dim(1).squeeze_dim::<4>(1);
    let var = sigma * sigma;
    ((x - mean).square() * (0.5 / var) + 0.5 * var.ln()).reshape([n as i32, -1]).sum_dim(1).reshape([n])
}

/// Per-channel Gaussian mixture, masks shared over channels, unnormalised:
/// NLL = −Σ_{c,h,w} logsumexp_k [log m_k − ½ log σ² − ½ (x_c − y_kc)² / σ²]. Returns [N].
pub fn gmm_nll(x: Tensor<4>, rgb: Tensor<5>, log_masks: Tensor<5>, sigma: f64) -> Tensor<1> {
    let n = x.dims()[0];
    let var = sigma * sigma;
    let comp = log_masks + (rgb - x.unsqueeze_dim::<5>(1)).square() * (-0.5 / var) - 0.5 * var.ln();
    let m = comp.clone().max_dim(1).detach();
    let lse = (comp - m.clone()).exp().sum_dim(1).log() + m;
    lse.reshape([n as i32, -1]).sum_dim(1).reshape([n]).neg()
}

/// KL(q ‖ p) of diagonal Gaussians given as (μ, s) with std(s), summed over D: [rows].
pub fn kl(q: &Posterior, p: &Posterior) -> Tensor<1> {
    let (sq, sp) = (std_of(q.s.clone()), std_of(p.s.clone()));
    let rows = q.mu.dims()[0];
    let t = sp.clone().log() - sq.clone().log()
        + (sq.square() + (q.mu.clone() - p.mu.clone()).square()) / (sp.square() * 2.0)
        - 0.5;
    t.sum_dim(1).reshape([rows])
}

/// KL(q ‖ N(0, I)) summed over D: [rows].
pub fn kl_standard(q: &Posterior) -> Tensor<1> {
    let sq = std_of(q.s.clone());
    let rows = q.mu.dims()[0];
    ((sq.clone().square() + q.mu.clone().square()) * 0.5 - sq.log() - 0.5).sum_dim(1).reshape([rows])
}

/// Sum over the K slots of a per-slot [N·K] quantity: [N].
pub fn per_image(x: Tensor<1>, k: usize) -> Tensor<1> {
    let nk = x.dims()[0];
    x.reshape([nk / k, k]).sum_dim(1).reshape([nk / k])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t<const D: usize>(v: &[f32], shape: [usize; D], d: &Device) -> Tensor<D> {
        Tensor::from_data(TensorData::new(v.to_vec(), shape), d)
    }

    fn vals(t: Tensor<1>) -> Vec<f64> {
        t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
    }

    /// s for a wanted standard deviation: softplus(s) + 1e-5 = σ².
    fn s_for(sigma: f64) -> f32 {
        ((sigma * sigma - 1e-5).exp() - 1.0).ln() as f32
    }

    #[test]
    fn likelihoods_by_hand() {
        let d = Device::flex();
        // One image of one pixel per channel (3 values), two slots.
        let x = t(&[1.0, 0.0, 0.5], [1, 3, 1, 1], &d);
        let rgb = t(&[0.8, 0.2, 0.5, 0.4, 0.6, 0.1], [1, 2, 3, 1, 1], &d);
        let (m0, m1) = (0.25f64, 0.75f64);
        let log_masks = t(&[m0.ln() as f32, m1.ln() as f32], [1, 2, 1, 1, 1], &d);
        let sigma = 0.3f64;
        let (xs, y0, y1) = ([1.0, 0.0, 0.5], [0.8, 0.2, 0.5], [0.4, 0.6, 0.1]);
        let var = sigma * sigma;
        let want: f64 = (0..3)
            .map(|c| {
                let mean = m0 * y0[c] + m1 * y1[c];
                0.5 * var.ln() + 0.5 * (xs[c] - mean).powi(2) / var
            })
            .sum();
        let got = vals(gaussian_nll(x.clone(), rgb.clone(), log_masks.clone(), sigma))[0];
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
        let comp = |m: f64, y: f64, x: f64| m * (-0.5 * (x - y).powi(2) / var).exp() / var.sqrt();
        let want: f64 = -(0..3).map(|c| (comp(m0, y0[c], xs[c]) + comp(m1, y1[c], xs[c])).ln()).sum::<f64>();
        let got = vals(gmm_nll(x, rgb, log_masks, sigma))[0];
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    }

    #[test]
    fn kl_by_hand() {
        let d = Device::flex();
        let (sq, sp) = (0.5f64, 2.0f64);
        let q = Posterior { mu: t(&[1.0, 0.0], [1, 2], &d), s: t(&[s_for(sq), s_for(sq)], [1, 2], &d) };
        let p = Posterior { mu: t(&[0.0, 0.0], [1, 2], &d), s: t(&[s_for(sp), s_for(sp)], [1, 2], &d) };
        let one = |mu: f64| (sp / sq).ln() + (sq * sq + mu * mu) / (2.0 * sp * sp) - 0.5;
        assert!((vals(kl(&q, &p))[0] - (one(1.0) + one(0.0))).abs() < 1e-4);
        let std = |mu: f64| -sq.ln() + (sq * sq + mu * mu) / 2.0 - 0.5;
        assert!((vals(kl_standard(&q))[0] - (std(1.0) + std(0.0))).abs() < 1e-4);
        assert_eq!(vals(per_image(t(&[1.0, 2.0, 3.0, 4.0], [4], &d), 2)), [3.0, 7.0]);
    }
}
