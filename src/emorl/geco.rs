//! GECO as EMORL's training loop runs it (reference §2): a Lagrange multiplier ζ on the
//! reconstruction term, raised while the reconstruction log-likelihood is below a target.
//! The state lives on the device, so the per-step update needs no host read.
use burn::tensor::activation::softplus;
use burn::tensor::{Device, Tensor};

/// ζ never goes below this (softplus(0.55) ≈ 1.0055).
pub const BETA_FLOOR: f64 = 0.55;

/// The controller: settings, and its state (C_ema, ζ), which takes no gradient and is saved with
/// each checkpoint.
#[derive(Debug, Clone)]
pub struct Geco {
    /// C: the target negative log-likelihood of an image (per-element target × C·H·W).
    pub target: f64,
    /// η.
    pub step_size: f64,
    /// η is multiplied by this while C_ema > 0 (`geco_step_size_acceleration`).
    pub acceleration: f64,
    /// EMA factor (`geco_ema_alpha`).
    pub alpha: f64,
    /// The step at which C_ema is initialised; updates start after it (`Net.geco_warm_start`).
    pub warm_start: u64,
    /// EMA of C − nll, [1]; positive once the reconstruction beats the target.
    pub c_ema: Tensor<1>,
    /// ζ, the pre-softplus multiplier, [1].
    pub beta: Tensor<1>,
}

impl Geco {
    /// `target_per_element` is `geco_reconstruction_target` (e.g. −1.224 for Tetrominoes),
    /// `elements` = C·H·W.
    pub fn new(target_per_element: f64, elements: usize, device: &Device) -> Geco {
        Geco {
            target: target_per_element * elements as f64,
            step_size: 1e-6,
            acceleration: 1.0,
            alpha: 0.99,
            warm_start: 1000,
            c_ema: Tensor::zeros([1], device),
            beta: Tensor::full([1], BETA_FLOOR, device),
        }
    }

    /// Whether the loss takes GECO's form at `step`.
    pub fn active(&self, step: u64) -> bool {
        step >= self.warm_start
    }

    /// The weight of the reconstruction term: softplus(ζ), no gradient.
    pub fn weight(&self) -> Tensor<1> {
        softplus(self.beta.clone(), 1.0).detach()
    }

    /// After the optimiser step `step`, with the batch-mean last-step nll [1].
    pub fn update(&mut self, step: u64, nll: Tensor<1>) {
        let gap = nll.detach().neg() + self.target;
        if step == self.warm_start {
            self.c_ema = gap;
        } else if step > self.warm_start {
            self.c_ema = self.c_ema.clone() * self.alpha + gap * (1.0 - self.alpha);
            let faster = self.c_ema.clone().greater_elem(0.0).float() * (self.acceleration - 1.0) + 1.0;
            self.beta = (self.beta.clone() - faster * self.c_ema.clone() * self.step_size).clamp_min(BETA_FLOOR);
        }
    }

    /// (C_ema, ζ) for a checkpoint: a host read, once per checkpoint.
    pub fn state(&self) -> (f64, f64) {
        (self.c_ema.clone().into_scalar::<f64>(), self.beta.clone().into_scalar::<f64>())
    }

    pub fn restore(&mut self, (c_ema, beta): (f64, f64)) {
        let device = self.c_ema.device();
        self.c_ema = Tensor::full([1], c_ema, &device);
        self.beta = Tensor::full([1], beta, &device);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nll(v: f64) -> Tensor<1> {
        Tensor::full([1], v, &Device::flex())
    }

    /// The state is f32 on the device (as the original's parameters): C ≈ −4498 leaves ~1e-4.
    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-5 * b.abs().max(1.0)
    }

    #[test]
    fn warm_start_then_ema_and_multiplier_by_hand() {
        let mut g = Geco::new(-1.224, 3675, &Device::flex());
        assert!((g.target - -4498.2).abs() < 1e-9);
        g.update(999, nll(-4000.0));
        assert_eq!(g.state(), (0.0, BETA_FLOOR as f32 as f64), "nothing moves before the warm start");
        assert!(!g.active(999) && g.active(1000));
        g.update(1000, nll(-4400.0)); // worse than the target by 98.2
        assert!(close(g.state().0, -98.2));
        assert_eq!(g.state().1, BETA_FLOOR as f32 as f64, "the warm-start step only sets the EMA");
        g.update(1001, nll(-4300.0)); // gap −198.2
        let ema = 0.99 * -98.2 + 0.01 * -198.2;
        assert!(close(g.state().0, ema));
        assert!(close(g.state().1, BETA_FLOOR - 1e-6 * ema), "ζ rises while below target");
        let w = g.weight().into_scalar::<f64>();
        assert!(close(w, (g.state().1.exp() + 1.0).ln()));
    }

    #[test]
    fn above_target_the_multiplier_falls_faster_but_not_below_the_floor() {
        let mut g = Geco::new(-1.0, 100, &Device::flex());
        g.acceleration = 5.0;
        g.restore((1000.0, 0.6));
        g.update(2000, nll(-200.0)); // gap +100: C_ema = 990 + 1 = 991 > 0, η = 5e-6
        assert!(close(g.state().0, 991.0));
        assert!(close(g.state().1, 0.6 - 5e-6 * 991.0));
        for s in 2001..2300 {
            g.update(s, nll(-200.0));
        }
        assert_eq!(g.state().1, BETA_FLOOR as f32 as f64);
    }
}
