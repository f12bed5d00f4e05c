//! SQAIR's building blocks with Sonnet 1's conventions (`neural.py`, Sonnet `Linear`,
//! `VanillaRNN`, `GRU`): linear weights truncated-normal with std 1/√fan_in (cut at 2σ), zero
//! biases, the GRU's Glorot-uniform, ELU hidden layers, trainable zero initial states.
use crate::nn::{Act, Dense};
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Distribution, Tensor};

/// A [rows, cols] weight, N(0, std²) truncated at ±2 std (TF's `truncated_normal_initializer`).
pub fn truncated_normal(rows: usize, cols: usize, std: f64, device: &Device) -> Param<Tensor<2>> {
    let draw = || Tensor::<2>::random([rows, cols], Distribution::Normal(0.0, std), device);
    let mut w = draw();
    for _ in 0..4 {
        let outside = w.clone().abs().greater_elem(2.0 * std);
        w = w.mask_where(outside, draw());
    }
    Param::from_tensor(w.clamp(-2.0 * std, 2.0 * std))
}

/// Sonnet's `Linear`: truncated-normal weights with std 1/√d_in, zero bias.
pub fn linear(d_in: usize, d_out: usize, device: &Device) -> Dense {
    Dense {
        weight: truncated_normal(d_in, d_out, 1.0 / (d_in as f64).sqrt(), device),
        bias: Some(zeros(d_out, device)),
    }
}

/// A linear layer whose bias starts at `bias` (Sonnet's `constant_initializer` on `b`).
pub fn linear_with_bias(d_in: usize, bias: &[f32], device: &Device) -> Dense {
    let mut l = linear(d_in, bias.len(), device);
    l.bias = Some(Param::from_tensor(Tensor::<1>::from_floats(bias, device)));
    l
}

fn zeros(n: usize, device: &Device) -> Param<Tensor<1>> {
    Initializer::Zeros.init([n], device)
}

/// `neural.MLP`: ELU hidden layers, then an optional output layer with no activation (without
/// one, the last hidden layer, ELU included, is the output).
#[derive(Module, Debug)]
pub struct Mlp {
    pub layers: Vec<Dense>,
    #[module(skip)]
    pub hidden: usize,
}

impl Mlp {
    pub fn new(d_in: usize, hidden: &[usize], out: Option<usize>, device: &Device) -> Mlp {
        Self::with_out_bias(d_in, hidden, out.map(|n| vec![0.0; n]), device)
    }

    /// An output layer whose bias starts at `out_bias`.
    pub fn with_out_bias(d_in: usize, hidden: &[usize], out_bias: Option<Vec<f32>>, device: &Device) -> Mlp {
        let mut layers = Vec::new();
        let mut d = d_in;
        for &h in hidden {
            layers.push(linear(d, h, device));
            d = h;
        }
        if let Some(bias) = out_bias {
            layers.push(linear_with_bias(d, &bias, device));
        }
        Mlp { layers, hidden: hidden.len() }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.layers.iter().enumerate().fold(x, |x, (i, l)| {
            let y = l.forward(x);
            if i < self.hidden { Act::Elu.apply(y) } else { y }
        })
    }
}

/// Sonnet's `VanillaRNN`: h' = tanh(x W_in + b_in + h W_h + b_h).
#[derive(Module, Debug)]
pub struct VanillaRnn {
    pub in_to_hidden: Dense,
    pub hidden_to_hidden: Dense,
    /// The trainable initial state [1, H].
    pub initial: Param<Tensor<2>>,
}

impl VanillaRnn {
    /// `d_state` is the width of the state the cell reads (the hidden size, except in
    /// discovery's where prior, which feeds it a wider conditioned state).
    pub fn new(d_in: usize, d_state: usize, hidden: usize, device: &Device) -> Self {
        VanillaRnn {
            in_to_hidden: linear(d_in, hidden, device),
            hidden_to_hidden: linear(d_state, hidden, device),
            initial: Initializer::Zeros.init([1, hidden], device),
        }
    }

    pub fn forward(&self, x: Tensor<2>, h: Tensor<2>) -> Tensor<2> {
        (self.in_to_hidden.forward(x) + self.hidden_to_hidden.forward(h)).tanh()
    }

    /// The initial state of `rows` sequences.
    pub fn initial(&self, rows: usize) -> Tensor<2> {
        let h = self.initial.dims()[1];
        self.initial.val().expand([rows, h])
    }
}

/// Sonnet's `GRU`, with its nine variables: z = σ(x W_z + h U_z + b_z),
/// r = σ(x W_r + h U_r + b_r), h̃ = tanh(x W_h + (r ⊙ h) U_h + b_h), h' = (1 − z) ⊙ h + z ⊙ h̃.
#[derive(Module, Debug)]
pub struct Gru {
    pub wz: Param<Tensor<2>>,
    pub uz: Param<Tensor<2>>,
    pub bz: Param<Tensor<1>>,
    pub wr: Param<Tensor<2>>,
    pub ur: Param<Tensor<2>>,
    pub br: Param<Tensor<1>>,
    pub wh: Param<Tensor<2>>,
    pub uh: Param<Tensor<2>>,
    pub bh: Param<Tensor<1>>,
    pub initial: Param<Tensor<2>>,
}

impl Gru {
    /// Sonnet creates every variable with `tf.get_variable` and no initialiser: Glorot-uniform,
    /// which for a bias [H] is U(±√(3/H)).
    pub fn new(d_in: usize, hidden: usize, device: &Device) -> Self {
        let w = |rows: usize| {
            Initializer::XavierUniform { gain: 1.0 }.init_with([rows, hidden], Some(rows), Some(hidden), device)
        };
        let bound = (3.0 / hidden as f64).sqrt();
        let b = || Initializer::Uniform { min: -bound, max: bound }.init([hidden], device);
        Gru {
            wz: w(d_in),
            uz: w(hidden),
            bz: b(),
            wr: w(d_in),
            ur: w(hidden),
            br: b(),
            wh: w(d_in),
            uh: w(hidden),
            bh: b(),
            initial: Initializer::Zeros.init([1, hidden], device),
        }
    }

    pub fn forward(&self, x: Tensor<2>, h: Tensor<2>) -> Tensor<2> {
        let affine = |w: &Param<Tensor<2>>, u: &Param<Tensor<2>>, b: &Param<Tensor<1>>, h: Tensor<2>| {
            x.clone().matmul(w.val()) + h.matmul(u.val()) + b.val().unsqueeze()
        };
        let z = sigmoid(affine(&self.wz, &self.uz, &self.bz, h.clone()));
        let r = sigmoid(affine(&self.wr, &self.ur, &self.br, h.clone()));
        let candidate = affine(&self.wh, &self.uh, &self.bh, r * h.clone()).tanh();
        h.clone() + z * (candidate - h)
    }

    pub fn initial(&self, rows: usize) -> Tensor<2> {
        let h = self.initial.dims()[1];
        self.initial.val().expand([rows, h])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(d: &mut Dense, w: &[f32], b: Option<&[f32]>) {
        let dev = Device::flex();
        let [i, o] = d.weight.dims();
        d.weight = Param::from_tensor(Tensor::<1>::from_floats(w, &dev).reshape([i, o]));
        d.bias = b.map(|b| Param::from_tensor(Tensor::<1>::from_floats(b, &dev)));
    }

    fn floats(t: Tensor<2>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn truncated_weights_stay_within_two_std() {
        let w = floats(truncated_normal(64, 64, 0.1, &Device::flex()).val());
        assert!(w.iter().all(|v| v.abs() <= 0.2 + 1e-7));
        let var = w.iter().map(|v| (v * v) as f64).sum::<f64>() / w.len() as f64;
        // A normal cut at ±2σ keeps 0.774 of its variance.
        assert!((var.sqrt() - 0.088).abs() < 0.006, "{}", var.sqrt());
    }

    #[test]
    fn an_mlp_uses_elu_on_hidden_layers_only() {
        let dev = Device::flex();
        let mut m = Mlp::new(1, &[1], Some(1), &dev);
        set(&mut m.layers[0], &[2.0], Some(&[-3.0]));
        set(&mut m.layers[1], &[1.5], Some(&[0.5]));
        let y = floats(m.forward(Tensor::<1>::from_floats([1.0], &dev).reshape([1, 1])));
        let want = 1.5 * ((-1f64).exp() - 1.0) + 0.5;
        assert!((y[0] as f64 - want).abs() < 1e-6);
    }

    #[test]
    fn a_gru_step_by_hand() {
        let dev = Device::flex();
        let mut g = Gru::new(1, 1, &dev);
        let p1 = |v: f32| Param::from_tensor(Tensor::<1>::from_floats([v], &dev));
        let p2 = |v: f32| Param::from_tensor(Tensor::<1>::from_floats([v], &dev).reshape([1, 1]));
        (g.wz, g.wr, g.wh) = (p2(1.0), p2(-1.0), p2(0.5));
        (g.bz, g.br, g.bh) = (p1(0.0), p1(0.5), p1(0.1));
        (g.uz, g.ur, g.uh) = (p2(0.3), p2(2.0), p2(-1.0));
        let (x, h) = (0.8f64, 0.4f64);
        let s = |v: f64| 1.0 / (1.0 + (-v).exp());
        let z = s(x + 0.3 * h);
        let r = s(-x + 0.5 + 2.0 * h);
        let c = (0.5 * x + 0.1 - r * h).tanh();
        let want = (1.0 - z) * h + z * c;
        let t = |v: f64| Tensor::<1>::from_floats([v as f32], &dev).reshape([1, 1]);
        let got = floats(g.forward(t(x), t(h)))[0] as f64;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
}
