//! The optimisers the originals offer, with TensorFlow's defaults and per-tensor norm clipping.
use crate::error::{Error, Result};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::optim::grad_clipping::GradientClipping;
use burn::optim::{AdaGradConfig, AdamConfig, ModuleOptimizer, RmsPropConfig, SgdConfig, momentum::MomentumConfig};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Optimiser hyper-parameters under TensorFlow's names; each optimiser reads its own.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OptimParams {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// None: the TensorFlow default of the chosen optimiser (Adam 1e-8, RMSProp 1e-10).
    pub epsilon: Option<f64>,
    /// Required by `momentum`; RMSProp's momentum (TF default 0).
    pub momentum: Option<f64>,
    /// RMSProp's decay.
    pub decay: f64,
}

/// Build `name` (`adam`, `sgd`, `momentum`, `rmsprop`, `adagrad`) with optional clipping of each
/// gradient tensor to `clip` in L2 norm (TF `clip_by_norm` per variable, as N-EM does).
pub fn build(name: &str, p: &OptimParams, clip: Option<f64>) -> Result<ModuleOptimizer> {
    let optim = match name {
        "adam" => AdamConfig::new()
            .with_beta_1(p.beta1 as f32)
            .with_beta_2(p.beta2 as f32)
            .with_epsilon(p.epsilon.unwrap_or(1e-8) as f32)
            .init(),
        "sgd" => SgdConfig::new().init(),
        "momentum" => {
            let m =
                p.momentum.ok_or_else(|| Error::usage("training.optimizer=momentum needs training.params.momentum"))?;
            SgdConfig::new().with_momentum(Some(MomentumConfig { momentum: m, dampening: 0.0, nesterov: false })).init()
        }
        "rmsprop" => RmsPropConfig::new()
            .with_alpha(p.decay as f32)
            .with_momentum(p.momentum.unwrap_or(0.0) as f32)
            .with_epsilon(p.epsilon.unwrap_or(1e-10) as f32)
            .init(),
        "adagrad" => AdaGradConfig::new().init(),
        "adadelta" => {
            return Err(Error::usage(
                "training.optimizer=adadelta is not available (Burn has no Adadelta); use adam, sgd, momentum, rmsprop or adagrad",
            ));
        }
        other => {
            return Err(Error::usage(format!(
                "unknown training.optimizer `{other}` (adam, sgd, momentum, rmsprop, adagrad)"
            )));
        }
    };
    Ok(match clip {
        Some(c) => optim.with_grad_clipping(GradientClipping::Norm(c as f32)),
        None => optim,
    })
}

/// Rescale every gradient by c / max(‖g‖, c), ‖g‖ the L2 norm over all of them together
/// (`tf.clip_by_global_norm`, `torch.nn.utils.clip_grad_norm_`). Computed on the device.
pub fn clip_global_norm<M: Module>(grads: GradientsParams, model: &M, c: f64) -> GradientsParams {
    struct SquaredNorm<'a>(&'a GradientsParams, Option<Tensor<1>>);
    impl ModuleVisitor for SquaredNorm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.0.get::<D>(param.id) {
                let sq = g.square().sum();
                self.1 = Some(match self.1.take() {
                    Some(acc) => acc + sq,
                    None => sq,
                });
            }
        }
    }
    struct Scale(GradientsParams, Tensor<1>);
    impl ModuleVisitor for Scale {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.0.remove::<D>(param.id) {
                let s = self.1.clone().reshape([1; D]);
                self.0.register(param.id, g * s);
            }
        }
    }
    let mut norm = SquaredNorm(&grads, None);
    model.visit(&mut norm);
    let Some(sq) = norm.1 else { return grads };
    let scale = sq.sqrt().clamp_min(c).recip() * c;
    let mut scale = Scale(grads, scale);
    model.visit(&mut scale);
    scale.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Dense;
    use burn::tensor::Device;

    fn norm_after(c: f64) -> Vec<f32> {
        let d = Device::flex();
        let layer = Dense::new(2, 2, true, &d);
        let mut grads = GradientsParams::new();
        grads.register(layer.weight.id, Tensor::<2>::full([2, 2], 3.0, &d)); // Σ² = 36
        grads.register(layer.bias.as_ref().unwrap().id, Tensor::<1>::from_floats([8.0, 0.0], &d)); // Σ² = 64
        let grads = clip_global_norm(grads, &layer, c);
        let w: Vec<f32> = grads.get::<2>(layer.weight.id).unwrap().into_data().try_to_vec::<f32>().unwrap();
        let b: Vec<f32> =
            grads.get::<1>(layer.bias.as_ref().unwrap().id).unwrap().into_data().try_to_vec::<f32>().unwrap();
        w.into_iter().chain(b).collect()
    }

    #[test]
    fn global_norm_clipping_scales_all_gradients_together() {
        // ‖g‖ = sqrt(36 + 64) = 10.
        assert_eq!(norm_after(5.0), [1.5, 1.5, 1.5, 1.5, 4.0, 0.0]);
        assert_eq!(norm_after(20.0), [3.0, 3.0, 3.0, 3.0, 8.0, 0.0]);
    }
}
