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

/// TF's BasicRNNCell with linear activation, then `act`: state act(z), output act(LN(z)) or
/// act(z). The original uses σ; the minimal system's M-step θ ← tanh(W_x r + W_h θ + b) is tanh.
#[derive(Module, Debug)]
pub struct RnnCell {
    pub linear: Dense,
    pub ln: Option<LayerNorm>,
    #[module(skip)]
    pub act: Act,
}

impl RnnCell {
    fn step(&self, x: Tensor<2>, h: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let z = self.linear.forward(Tensor::cat(vec![x, h], 1));
        let out = match &self.ln {
            Some(ln) => self.act.apply(ln.forward(z.clone())),
            None => self.act.apply(z.clone()),
        };
        (out, self.act.apply(z))
    }
}

/// RNN-EM: encoder layers → recurrent cell → decoder layers.
#[derive(Module, Debug)]
pub struct RnnEm {
    pub input: Vec<Fc>,
    pub cell: RnnCell,
    pub output: Vec<Fc>,
    /// The learned initial state θ_init of each slot, [K, units] (network.theta_init).
    pub theta_init: Option<Param<Tensor<2>>>,
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

    /// θ_init [K, units] when the network learns its initial state.
    pub fn theta_init(&self) -> Option<Tensor<2>> {
        match self {
            InnerNet::Rnn(n) => n.theta_init.as_ref().map(|t| t.val()),
            InnerNet::Nem(_) => None,
        }
    }

    /// The decoder alone: ψ of a state h (the RNN cell's output is its state when there is no LN).
    pub fn decode(&self, h: Tensor<2>) -> Tensor<2> {
        match self {
            InnerNet::Rnn(n) => n.output.iter().fold(h, |x, l| l.forward(x)),
            InnerNet::Nem(c) => sigmoid(sigmoid(h).matmul(c.w.val().transpose())),
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

/// Build the inner network for `d` = H·W·C input values and `k` slots; `output_act` replaces `'*'`.
pub fn build(cfg: &NetworkCfg, d: usize, k: usize, output_act: Act, device: &Device) -> Result<InnerNet, String> {
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
        if cfg.theta_init.is_some() {
            return Err("network.theta_init needs the `rnn` cell (use_NEM_formulation=false)".into());
        }
        return Ok(InnerNet::Nem(NemCell { w, lr }));
    }
    if recurrent.name != "rnn" {
        return Err(format!(
            "recurrent layer `{}` is not available yet (this version builds `rnn`)",
            recurrent.name
        ));
    }
    let act = match recurrent.act.as_deref() {
        None | Some("sigmoid") => Act::Sigmoid,
        Some("tanh") => Act::Tanh,
        Some(a) => return Err(format!("the `rnn` layer's activation is sigmoid or tanh, not `{a}`")),
    };
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
        act,
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
    let theta_init = cfg.theta_init.as_ref().map(|t| {
        Initializer::Normal { mean: 0.0, std: t.std }.init([k, units], device)
    });
    Ok(InnerNet::Rnn(RnnEm { input, cell, output, theta_init }))
}
