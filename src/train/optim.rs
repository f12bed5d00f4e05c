//! The optimisers the originals offer, with TensorFlow's defaults and per-tensor norm clipping.
use crate::error::{Error, Result};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::optim::grad_clipping::GradientClipping;
use burn::optim::{
    AdaGradConfig, AdamConfig, LearningRate, ModuleOptimizer, Optimizer, RecordState, SgdConfig, StateSink,
    StateSource, momentum::MomentumConfig,
};
use burn::tensor::{Device, Tensor};
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
        "rmsprop" => ModuleOptimizer::from(TfRmsProp {
            decay: p.decay as f32,
            momentum: p.momentum.unwrap_or(0.0) as f32,
            epsilon: p.epsilon.unwrap_or(1e-10) as f32,
        }),
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

/// TensorFlow 1's `RMSPropOptimizer`, the one both TF originals (N-EM, SQAIR) train with:
/// ms ← ρ·ms + (1 − ρ)·g² with ms starting at 1 (not 0, as Burn's and PyTorch's), then
/// mom ← μ·mom + lr·g / √(ms + ε) (ε inside the root) and θ ← θ − mom.
#[derive(Clone, Debug)]
pub struct TfRmsProp {
    pub decay: f32,
    pub momentum: f32,
    pub epsilon: f32,
}

/// Per parameter: the mean square and the momentum.
#[derive(Clone)]
pub struct TfRmsPropState<const D: usize> {
    pub ms: Tensor<D>,
    pub mom: Tensor<D>,
}

impl<const D: usize> RecordState for TfRmsPropState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_tensor(prefix, "ms", self.ms.clone().into_data());
        out.push_tensor(prefix, "mom", self.mom.clone().into_data());
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let ms = Tensor::from_data(src.take_tensor(prefix, "ms")?, device);
        let mom = Tensor::from_data(src.take_tensor(prefix, "mom")?, device);
        Some(TfRmsPropState { ms, mom })
    }
}

impl Optimizer for TfRmsProp {
    type State<const D: usize> = TfRmsPropState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (ms, mom) = match state {
            Some(s) => (s.ms, s.mom),
            None => (grad.ones_like(), grad.zeros_like()),
        };
        let ms = ms.mul_scalar(self.decay) + grad.clone().square().mul_scalar(1.0 - self.decay);
        let mom = mom.mul_scalar(self.momentum) + grad.mul_scalar(lr) / ms.clone().add_scalar(self.epsilon).sqrt();
        (tensor - mom.clone(), Some(TfRmsPropState { ms, mom }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        TfRmsPropState { ms: state.ms.to_device(device), mom: state.mom.to_device(device) }
    }
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
