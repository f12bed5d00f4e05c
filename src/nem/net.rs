//! The inner networks of the EM loop, built from the original layer lists (reference §2.2, §2.3, §3).
use super::config::{LayerCfg, NetworkCfg};
use crate::nn::{Act, Dense, LayerNorm};
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor, activation::sigmoid};

/// A fully connected layer: projection → LN (if `ln`) → activation.
#[derive(Module, Debug)]
pub struct Fc {
    pub dense: Dense,
    pub ln: Option<LayerNorm>,
    #[module(skip)]
    pub act: Act,
}

impl Fc {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let z = self.dense.forward(x);
        let z = match &self.ln {
            Some(ln) => ln.forward(z),
            None => z,
        };
        self.act.apply(z)
    }
}

/// TF's BasicRNNCell with linear activation, then σ: state σ(z), output σ(LN(z)) or σ(z).
#[derive(Module, Debug)]
pub struct RnnCell {
    pub linear: Dense,
    pub ln: Option<LayerNorm>,
}

impl RnnCell {
    fn step(&self, x: Tensor<2>, h: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let z = self.linear.forward(Tensor::cat(vec![x, h], 1));
        let out = match &self.ln {
            Some(ln) => sigmoid(ln.forward(z.clone())),
            None => sigmoid(z.clone()),
        };
        (out, sigmoid(z))
    }
}

/// RNN-EM: encoder layers → recurrent cell → decoder layers.
#[derive(Module, Debug)]
pub struct RnnEm {
    pub input: Vec<Fc>,
    pub cell: RnnCell,
    pub output: Vec<Fc>,
}

/// N-EM's gradient M-step (§2.2): θ ← θ + lr · σ'(θ) ⊙ (u W), ψ = σ(σ(θ) Wᵀ), W tied, no biases.
#[derive(Module, Debug)]
pub struct NemCell {
    /// [pixels, units].
    pub w: Param<Tensor<2>>,
    /// The learned step size, shape (1, 1), Glorot-uniform: U(−√3, √3).
    pub lr: Param<Tensor<2>>,
}

/// The inner network of an N-EM-family model.
#[derive(Module, Debug)]
pub enum InnerNet {
    Rnn(RnnEm),
    Nem(NemCell),
}

impl InnerNet {
    /// Units of the recurrent state h.
    pub fn units(&self) -> usize {
        match self {
            InnerNet::Rnn(n) => n.cell.linear.weight.dims()[1],
            InnerNet::Nem(c) => c.w.dims()[1],
        }
    }

    /// One M-step over all slots: u [B·K, D] and h → (ψ [B·K, D], h').
    pub fn step(&self, u: Tensor<2>, h: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        match self {
            InnerNet::Rnn(n) => {
                let x = n.input.iter().fold(u, |x, l| l.forward(x));
                let (out, h) = n.cell.step(x, h);
                (n.output.iter().fold(out, |x, l| l.forward(x)), h)
            }
            InnerNet::Nem(c) => {
                let w = c.w.val();
                let s = sigmoid(h.clone());
                let ds = s.clone() * (s.neg() + 1.0);
                let theta = h + ds * u.matmul(w.clone()) * c.lr.val();
                let psi = sigmoid(sigmoid(theta.clone()).matmul(w.transpose()));
                (psi, theta)
            }
        }
    }
}

fn fc(cfg: &LayerCfg, d_in: usize, output_act: Act, device: &Device) -> Result<(Fc, usize), String> {
    if cfg.name != "fc" {
        return Err(format!(
            "network layer `{}` is not available yet (this version builds `fc` layers)",
            cfg.name
        ));
    }
    let size = cfg.size.ok_or("an `fc` layer needs a `size`")?;
    let act = match cfg.act.as_deref() {
        None | Some("*") => output_act,
        Some(a) => Act::parse(a)?,
    };
    let layer = Fc {
        dense: Dense::new(d_in, size, true, device),
        ln: cfg.ln.then(|| LayerNorm::new(size, device)),
        act,
    };
    Ok((layer, size))
}

/// Build the inner network for `d` = H·W·C input values; `output_act` replaces `'*'`.
pub fn build(cfg: &NetworkCfg, d: usize, output_act: Act, device: &Device) -> Result<InnerNet, String> {
    let recurrent = match cfg.recurrent.as_slice() {
        [r] => r,
        _ => return Err("network.recurrent must list exactly one layer".into()),
    };
    let units = recurrent.size.ok_or("the recurrent layer needs a `size`")?;
    if cfg.use_NEM_formulation {
        if !cfg.input.is_empty() {
            return Err("network.use_NEM_formulation takes no input layers".into());
        }
        let w = Initializer::XavierUniform { gain: 1.0 }.init_with([d, units], Some(d), Some(units), device);
        let lr = Initializer::XavierUniform { gain: 1.0 }.init_with([1, 1], Some(1), Some(1), device);
        return Ok(InnerNet::Nem(NemCell { w, lr }));
    }
    if recurrent.name != "rnn" {
        return Err(format!(
            "recurrent layer `{}` is not available yet (this version builds `rnn`)",
            recurrent.name
        ));
    }
    if recurrent.act.as_deref().is_some_and(|a| a != "sigmoid") {
        return Err("the `rnn` layer's activation is sigmoid, as in the original".into());
    }
    let mut width = d;
    let mut input = Vec::new();
    for l in &cfg.input {
        let (layer, w) = fc(l, width, Act::Linear, device)?;
        input.push(layer);
        width = w;
    }
    let cell = RnnCell {
        linear: Dense::new(width + units, units, true, device),
        ln: recurrent.ln.then(|| LayerNorm::new(units, device)),
    };
    width = units;
    let mut output = Vec::new();
    for l in &cfg.output {
        let (layer, w) = fc(l, width, output_act, device)?;
        output.push(layer);
        width = w;
    }
    if width != d {
        return Err(format!("the decoder ends with {width} values but a frame has {d}"));
    }
    Ok(InnerNet::Rnn(RnnEm { input, cell, output }))
}
