//! GECO as EMORL's training loop runs it (reference §2): a Lagrange multiplier ζ on the
//! reconstruction term, raised while the reconstruction log-likelihood is below a target.
use serde::{Deserialize, Serialize};

/// ζ never goes below this (softplus(0.55) ≈ 1.0055).
pub const BETA_FLOOR: f64 = 0.55;

/// The controller's state; it takes no gradient and is saved with each checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Geco {
    /// C: the target negative log-likelihood of an image (per-element target × C·H·W).
    pub target: f64,
    /// EMA of C − nll; positive once the reconstruction beats the target.
    pub c_ema: f64,
    /// ζ, the pre-softplus multiplier.
    pub beta: f64,
    /// η.
    pub step_size: f64,
    /// η is multiplied by this while C_ema > 0 (`geco_step_size_acceleration`).
    pub acceleration: f64,
    /// The step at which C_ema is initialised; updates start after it.
    pub warm_start: u64,
}

impl Geco {
    /// `target_per_element` is the config's `geco_reconstruction_target` (e.g. −1.224 for
    /// Tetrominoes), `elements` = C·H·W.
    pub fn new(target_per_element: f64, elements: usize, acceleration: f64) -> Geco {
        Geco {
            target: target_per_element * elements as f64,
            c_ema: 0.0,
            beta: BETA_FLOOR,
            step_size: 1e-6,
            acceleration,
            warm_start: 1000,
        }
    }

    /// The weight of the reconstruction term: softplus(ζ).
    pub fn weight(&self) -> f64 {
        softplus(self.beta)
    }

    /// After the optimiser step `step` (1-based), with the batch-mean last-step nll.
    pub fn update(&mut self, step: u64, nll: f64) {
        let gap = self.target - nll;
        if step == self.warm_start {
            self.c_ema = gap;
        } else if step > self.warm_start {
            self.c_ema = 0.99 * self.c_ema + 0.01 * gap;
            let eta = if self.c_ema > 0.0 { self.step_size * self.acceleration } else { self.step_size };
            self.beta = (self.beta - eta * self.c_ema).max(BETA_FLOOR);
        }
    }
}

fn softplus(x: f64) -> f64 {
    if x > 30.0 { x } else { x.exp().ln_1p() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_start_then_ema_and_multiplier_by_hand() {
        let mut g = Geco::new(-1.224, 3675, 1.0);
        assert!((g.target - -4498.2).abs() < 1e-9);
        g.update(999, -4000.0);
        assert_eq!((g.c_ema, g.beta), (0.0, BETA_FLOOR), "nothing moves before the warm start");
        g.update(1000, -4400.0); // worse than the target by 98.2
        assert!((g.c_ema - -98.2).abs() < 1e-9);
        assert_eq!(g.beta, BETA_FLOOR, "the warm-start step only sets the EMA");
        g.update(1001, -4300.0); // gap −198.2
        let ema = 0.99 * -98.2 + 0.01 * -198.2;
        assert!((g.c_ema - ema).abs() < 1e-9);
        assert!((g.beta - (BETA_FLOOR - 1e-6 * ema)).abs() < 1e-12, "ζ rises while below target");
        assert!((g.weight() - (g.beta.exp() + 1.0).ln()).abs() < 1e-12);
    }

    #[test]
    fn above_target_the_multiplier_falls_faster_but_not_below_the_floor() {
        let mut g = Geco::new(-1.0, 100, 5.0);
        g.beta = 0.6;
        g.c_ema = 1000.0;
        g.update(2000, -200.0); // gap +100: C_ema = 990 + 1 = 991 > 0, η = 5e-6
        assert!((g.c_ema - 991.0).abs() < 1e-9);
        assert!((g.beta - (0.6 - 5e-6 * 991.0)).abs() < 1e-12);
        for s in 2001..4000 {
            g.update(s, -200.0);
        }
        assert_eq!(g.beta, BETA_FLOOR);
    }
}
