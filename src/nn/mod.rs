//! Neural building blocks shared by the model families, with TensorFlow's conventions:
//! Glorot-uniform weights, zero biases, layer norm over every non-batch axis.
pub mod conv;
pub mod direct_conv;

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor, activation};

/// A fully connected layer `x W + b`, W Glorot-uniform and b zero (TF `fully_connected`).
#[derive(Module, Debug)]
pub struct Dense {
    pub weight: Param<Tensor<2>>,
    pub bias: Option<Param<Tensor<1>>>,
}

impl Dense {
    pub fn new(d_in: usize, d_out: usize, bias: bool, device: &Device) -> Self {
        Self::with(d_in, d_out, bias, Initializer::XavierUniform { gain: 1.0 }, device)
    }

    /// Weights from `init` (with the layer's fans), zero bias.
    pub fn with(d_in: usize, d_out: usize, bias: bool, init: Initializer, device: &Device) -> Self {
        let weight = init.init_with([d_in, d_out], Some(d_in), Some(d_out), device);
        let bias = bias.then(|| Initializer::Zeros.init([d_out], device));
        Dense { weight, bias }
    }

    /// PyTorch's `nn.Linear` default: weight and bias U(−1/√d_in, 1/√d_in).
    pub fn torch(d_in: usize, d_out: usize, device: &Device) -> Self {
        let a = 1.0 / (d_in as f64).sqrt();
        let init = Initializer::Uniform { min: -a, max: a };
        Dense { weight: init.init([d_in, d_out], device), bias: Some(init.init([d_out], device)) }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let y = x.matmul(self.weight.val());
        match &self.bias {
            Some(b) => y + b.val().unsqueeze(),
            None => y,
        }
    }
}

/// Layer norm with statistics over every non-batch axis (TF1.2 `slim.layer_norm`; PyTorch's
/// `nn.LayerNorm(C)` on a [N, C] input), gain and shift per last axis.
#[derive(Module, Debug)]
pub struct LayerNorm {
    pub gamma: Param<Tensor<1>>,
    pub beta: Param<Tensor<1>>,
    #[module(skip)]
    pub eps: f64,
}

/// TF1.2's variance epsilon in `layer_norm`.
pub const LN_EPS: f64 = 1e-12;
/// PyTorch's `nn.LayerNorm` epsilon.
pub const TORCH_LN_EPS: f64 = 1e-5;

impl LayerNorm {
    pub fn new(channels: usize, device: &Device) -> Self {
        Self::with_eps(channels, LN_EPS, device)
    }

    pub fn with_eps(channels: usize, eps: f64, device: &Device) -> Self {
        LayerNorm {
            gamma: Initializer::Ones.init([channels], device),
            beta: Initializer::Zeros.init([channels], device),
            eps,
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let shape = x.shape();
        let flat: Tensor<2> = x.flatten(1, D - 1);
        let normed = normalize(flat, self.eps).reshape(shape);
        let mut bshape = [1i32; D];
        bshape[D - 1] = -1;
        normed * self.gamma.val().reshape(bshape) + self.beta.val().reshape(bshape)
    }
}

/// Initialise every parameter of `model` now. Burn initialises parameters lazily, on first use;
/// done inside a step, that would draw from the step's seeded random stream and shift it.
pub fn materialize<M: Module>(model: &M) {
    struct Touch;
    impl burn::module::ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    model.visit(&mut Touch);
}

/// (x − mean) / sqrt(var + ε) along the last axis of a [N, F] tensor.
pub fn normalize(x: Tensor<2>, eps: f64) -> Tensor<2> {
    let (var, mean) = x.clone().var_mean_bias(1);
    (x - mean) / (var + eps).sqrt()
}

/// The activations a layer list may name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    Linear,
    Sigmoid,
    Tanh,
    Relu,
    Elu,
}

impl Act {
    pub fn parse(name: &str) -> Result<Act, String> {
        Ok(match name {
            "linear" | "identity" => Act::Linear,
            "sigmoid" => Act::Sigmoid,
            "tanh" => Act::Tanh,
            "relu" => Act::Relu,
            "elu" => Act::Elu,
            other => return Err(format!("unknown activation `{other}`")),
        })
    }

    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Act::Linear => x,
            Act::Sigmoid => activation::sigmoid(x),
            Act::Tanh => x.tanh(),
            Act::Relu => activation::relu(x),
            Act::Elu => {
                // elu(x) = x for x > 0, exp(x) − 1 otherwise.
                let neg = x.clone().clamp_max(0.0).exp() - 1.0;
                x.clamp_min(0.0) + neg
            }
        }
    }
}
