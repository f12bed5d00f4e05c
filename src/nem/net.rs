//! The inner networks of the EM loop, built from the original layer lists (reference §2.2, §2.3, §3).
use super::cells::{LstmCell, RelationalCell};
use super::config::{LayerCfg, NetworkCfg};
use crate::nn::conv::{Conv2d, resize_nearest, upsample};
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

/// `conv` (stride s) or `r_conv` (nearest upsampling ×s, then a stride-1 conv): → LN → activation.
/// Maps travel flat in NHWC order between layers, as the original flattens them.
#[derive(Module, Debug)]
pub struct ConvLayer {
    pub conv: Conv2d,
    pub ln: Option<LayerNorm>,
    #[module(skip)]
    pub act: Act,
    /// (H, W, C) of the flat input.
    #[module(skip)]
    pub input: [usize; 3],
    /// r_conv's upsampling factor (1 for conv).
    #[module(skip)]
    pub upsample: usize,
    /// r_conv's `offset`: the map is resized to upsample · size + offset.
    #[module(skip)]
    pub offset: usize,
}

impl ConvLayer {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let [h, w, c] = self.input;
        let n = x.dims()[0];
        let map = x.reshape([n, h, w, c]).permute([0, 3, 1, 2]);
        let map = match (self.upsample, self.offset) {
            (1, 0) => map,
            (s, 0) => upsample(map, s),
            (s, o) => resize_nearest(map, h * s + o, w * s + o),
        };
        let y = self.conv.forward(map).permute([0, 2, 3, 1]); // NHWC
        let y = match &self.ln {
            Some(ln) => ln.forward(y),
            None => y,
        };
        self.act.apply(y).flatten(1, 3)
    }
}

/// `input_norm`: each row standardised over its values, (x − mean) / √var with the population
/// variance and, as the original, no ε.
#[derive(Module, Debug)]
pub struct InputNorm {}

impl InputNorm {
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mean = x.clone().mean_dim(1);
        let centred = x - mean;
        let var = centred.clone().square().mean_dim(1);
        centred / var.sqrt()
    }
}

/// One entry of a layer list.
#[derive(Module, Debug)]
pub enum Layer {
    Fc(Fc),
    Conv(ConvLayer),
    InputNorm(InputNorm),
}

impl Layer {
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            Layer::Fc(l) => l.forward(x),
            Layer::Conv(l) => l.forward(x),
            Layer::InputNorm(l) => l.forward(x),
        }
    }
}

/// `rnn`: TF's BasicRNNCell with linear activation, then `act`: state act(z), output act(LN(z))
/// or act(z). The original uses σ; the minimal system's M-step θ ← tanh(W_x r + W_h θ + b) is tanh.
/// `gru`: TF's GRUCell: [r, u] = σ(W_g[x; h] + b_g) (b_g starts at 1), c = act(W[x; r ⊙ h] + b),
/// state = output = u ⊙ h + (1 − u) ⊙ c (LN on the output if `ln`).
#[derive(Module, Debug)]
pub struct RnnCell {
    pub linear: Dense,
    pub gates: Option<Dense>,
    pub ln: Option<LayerNorm>,
    #[module(skip)]
    pub act: Act,
}

impl RnnCell {
    fn step(&self, x: Tensor<2>, h: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        if let Some(gates) = &self.gates {
            let g = sigmoid(gates.forward(Tensor::cat(vec![x.clone(), h.clone()], 1)));
            let [r, u] = g.chunk(2, 1).try_into().expect("two gates");
            let c = self.act.apply(self.linear.forward(Tensor::cat(vec![x, r * h.clone()], 1)));
            let h = u.clone() * h + (u.neg() + 1.0) * c;
            let out = match &self.ln {
                Some(ln) => ln.forward(h.clone()),
                None => h.clone(),
            };
            return (out, h);
        }
        let z = self.linear.forward(Tensor::cat(vec![x, h], 1));
        let state = self.act.apply(z.clone());
        let out = match &self.ln {
            Some(ln) => self.act.apply(ln.forward(z)),
            None => state.clone(),
        };
        (out, state)
    }
}

/// The recurrent layer between encoder and decoder.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // built once, not moved per step
pub enum Recurrent {
    /// `rnn` and `gru`.
    Rnn(RnnCell),
    /// `lstm` (R-NEM's baseline).
    Lstm(LstmCell),
    /// `r_nem`.
    Relational(RelationalCell),
}

impl Recurrent {
    /// Units of the cell's output.
    pub fn units(&self) -> usize {
        match self {
            Recurrent::Rnn(c) => c.linear.weight.dims()[1],
            Recurrent::Lstm(c) => c.units(),
            Recurrent::Relational(c) => c.units(),
        }
    }

    /// Columns of the carried state: the LSTM carries [c; h].
    pub fn state_width(&self) -> usize {
        match self {
            Recurrent::Lstm(c) => 2 * c.units(),
            other => other.units(),
        }
    }

    /// x [N, inputs], state (and the step's action, [N, A], for a relational cell that reads
    /// actions) → (output, new state).
    pub fn step(&self, x: Tensor<2>, h: Tensor<2>, action: Option<Tensor<2>>) -> (Tensor<2>, Tensor<2>) {
        match self {
            Recurrent::Rnn(c) => c.step(x, h),
            Recurrent::Lstm(c) => c.step(x, h),
            Recurrent::Relational(c) => c.step(x, h, action),
        }
    }
}

/// RNN-EM: encoder layers → recurrent cell → decoder layers.
#[derive(Module, Debug)]
pub struct RnnEm {
    pub input: Vec<Layer>,
    pub cell: Recurrent,
    pub output: Vec<Layer>,
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
#[allow(clippy::large_enum_variant)] // the model itself: built once, not moved per step
pub enum InnerNet {
    Rnn(RnnEm),
    Nem(NemCell),
}

impl super::em::Cell for InnerNet {
    type State = Tensor<2>;

    fn step(&self, u: Tensor<2>, h: Tensor<2>, action: Option<Tensor<2>>) -> (Tensor<2>, Tensor<2>) {
        InnerNet::step_with(self, u, h, action)
    }

    fn decode(&self, h: &Tensor<2>) -> Tensor<2> {
        InnerNet::decode(self, h.clone())
    }

    fn attention(&self, h: &Tensor<2>, action: Option<Tensor<2>>) -> Option<Tensor<2>> {
        match self {
            InnerNet::Rnn(RnnEm { cell: Recurrent::Relational(c), .. }) => c.attention(h.clone(), action),
            _ => None,
        }
    }
}

impl InnerNet {
    /// Columns of the recurrent state h.
    pub fn units(&self) -> usize {
        match self {
            InnerNet::Rnn(n) => n.cell.state_width(),
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

    /// The decoder alone: ψ of the cell's output (RNN-EM) or of θ (N-EM: σ(σ(θ) Wᵀ), W tied).
    pub fn decode(&self, h: Tensor<2>) -> Tensor<2> {
        match self {
            InnerNet::Rnn(n) => n.output.iter().fold(h, |x, l| l.forward(x)),
            InnerNet::Nem(c) => sigmoid(sigmoid(h).matmul(c.w.val().transpose())),
        }
    }

    /// One M-step over all slots: u [B·K, D] and h → (ψ [B·K, D], h').
    pub fn step(&self, u: Tensor<2>, h: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        self.step_with(u, h, None)
    }

    /// `step` with the step's action [B·K, A] for a relational cell that reads actions.
    pub fn step_with(&self, u: Tensor<2>, h: Tensor<2>, action: Option<Tensor<2>>) -> (Tensor<2>, Tensor<2>) {
        match self {
            InnerNet::Rnn(n) => {
                let x = n.input.iter().fold(u, |x, l| l.forward(x));
                let (out, h) = n.cell.step(x, h, action);
                (self.decode(out), h)
            }
            InnerNet::Nem(c) => {
                let s = sigmoid(h.clone());
                let ds = s.clone() * (s.neg() + 1.0);
                let theta = h + ds * u.matmul(c.w.val()) * c.lr.val();
                (self.decode(theta.clone()), theta)
            }
        }
    }
}

/// What flows between layers: a flat width, the map's (H, W, C) when it is one, and the map a
/// flattened vector came from (`reshape -1`).
#[derive(Clone, Copy, Debug)]
struct Flow {
    width: usize,
    map: Option<[usize; 3]>,
    flattened: Option<[usize; 3]>,
}

/// Build a layer list from `flow` (only follow the shapes when `device` is None); `reshape`
/// entries only change the map shape. `'*'` is `star`.
fn layers(cfgs: &[LayerCfg], mut flow: Flow, star: Act, device: Option<&Device>) -> Result<(Vec<Layer>, Flow), String> {
    let mut out = Vec::new();
    for cfg in cfgs {
        let act = match cfg.act.as_deref() {
            None | Some("*") => star,
            Some(a) => Act::parse(a)?,
        };
        let size = || cfg.size.ok_or(format!("a `{}` layer needs a `size`", cfg.name));
        match cfg.name.as_str() {
            "fc" => {
                let size = size()?;
                if let Some(device) = device {
                    out.push(Layer::Fc(Fc {
                        dense: Dense::new(flow.width, size, true, device),
                        ln: cfg.ln.then(|| LayerNorm::new(size, device)),
                        act,
                    }));
                }
                flow = Flow { width: size, map: None, flattened: None };
            }
            "reshape" => {
                let shape: Option<[usize; 3]> = match &cfg.shape {
                    Some(v) if v.as_i64() == Some(-1) => None,
                    Some(v) => {
                        Some(serde_json::from_value(v.clone()).map_err(|_| "a `reshape` shape is [H, W, C] or -1")?)
                    }
                    None => return Err("a `reshape` layer needs a `shape`".into()),
                };
                if let Some([h, w, c]) = shape.filter(|[h, w, c]| h * w * c != flow.width) {
                    return Err(format!("cannot reshape {} values to {h}×{w}×{c}", flow.width));
                }
                flow.flattened = if shape.is_none() { flow.map } else { None };
                flow.map = shape;
            }
            "conv" | "r_conv" => {
                let [h, w, c] =
                    flow.map.ok_or(format!("a `{}` layer needs a map: add a `reshape` before it", cfg.name))?;
                let (size, k, s) = (size()?, cfg.kernel.unwrap_or(4), cfg.stride.unwrap_or(1));
                let resize = cfg.name == "r_conv";
                let offset = if resize { cfg.offset.unwrap_or(0) } else { 0 };
                let (oh, ow) = if resize { (h * s + offset, w * s + offset) } else { (h.div_ceil(s), w.div_ceil(s)) };
                if let Some(device) = device {
                    out.push(Layer::Conv(ConvLayer {
                        conv: Conv2d::new(c, size, k, if resize { 1 } else { s }, device),
                        ln: cfg.ln.then(|| LayerNorm::new(size, device)),
                        act,
                        input: [h, w, c],
                        upsample: if resize { s } else { 1 },
                        offset,
                    }));
                }
                flow = Flow { width: oh * ow * size, map: Some([oh, ow, size]), flattened: None };
            }
            "input_norm" => {
                if device.is_some() {
                    out.push(Layer::InputNorm(InputNorm {}));
                }
            }
            other => {
                return Err(format!(
                    "network layer `{other}` is not available (fc, conv, r_conv, reshape, input_norm)"
                ));
            }
        }
    }
    Ok((out, flow))
}

/// The frame the decoder produces, from the layers alone: (H, W, C) when it ends in a map, else
/// (1, values, 1).
pub fn decoded_frame(cfg: &NetworkCfg) -> Result<[usize; 3], String> {
    let units = cfg.recurrent.first().and_then(|r| r.size).ok_or("the recurrent layer needs a `size`")?;
    if cfg.use_NEM_formulation {
        // The tied decoder is Wᵀ: its size is the output list's last `size`.
        let d = cfg.output.last().and_then(|l| l.size).ok_or("network.output must end with a sized layer")?;
        return Ok([1, d, 1]);
    }
    let (_, flow) = layers(&cfg.output, Flow { width: units, map: None, flattened: None }, Act::Linear, None)?;
    match flow.map.or(flow.flattened) {
        Some(frame) => Ok(frame),
        None if cfg.input.iter().any(|l| l.name.contains("conv")) => {
            Err("a conv encoder needs a decoder that ends in a map (… r_conv), which gives the frame shape".into())
        }
        None => Ok([1, flow.width, 1]),
    }
}

/// Build the inner network for frames of shape `frame` (H, W, C) and `k` slots; `output_act`
/// replaces `'*'`.
/// `actions`: the number of actions an `r_nem` cell with an `actions` list embeds.
pub fn build(
    cfg: &NetworkCfg,
    frame: [usize; 3],
    k: usize,
    actions: Option<usize>,
    output_act: Act,
    device: &Device,
) -> Result<InnerNet, String> {
    let d = frame.iter().product();
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
    let (input, flow) =
        layers(&cfg.input, Flow { width: d, map: Some(frame), flattened: None }, Act::Linear, Some(device))?;
    let cell = recurrent_cell(recurrent, flow.width, units, k, actions, device)?;
    if cfg.theta_init.is_some() && !matches!(cell, Recurrent::Rnn(_)) {
        return Err("network.theta_init needs the `rnn` or `gru` cell".into());
    }
    let (output, flow) =
        layers(&cfg.output, Flow { width: units, map: None, flattened: None }, output_act, Some(device))?;
    if flow.width != d {
        return Err(format!("the decoder ends with {} values but a frame has {d}", flow.width));
    }
    let theta_init =
        cfg.theta_init.as_ref().map(|t| Initializer::Normal { mean: 0.0, std: t.std }.init([k, units], device));
    Ok(InnerNet::Rnn(RnnEm { input, cell, output, theta_init }))
}

/// The recurrent layer `cfg` on `inputs` values: rnn, gru, lstm or r_nem (its `encoder`, `core`,
/// `context` and `attention` lists are fc layers; a missing `act` there is linear).
fn recurrent_cell(
    cfg: &LayerCfg,
    inputs: usize,
    units: usize,
    k: usize,
    actions: Option<usize>,
    device: &Device,
) -> Result<Recurrent, String> {
    let name = cfg.name.as_str();
    let act = match cfg.act.as_deref() {
        None if name == "gru" => Act::Tanh,
        None | Some("sigmoid") => Act::Sigmoid,
        Some("tanh") => Act::Tanh,
        // TF's LSTM ignores the activation (tanh), as the original warns.
        Some(_) if name == "lstm" => Act::Tanh,
        Some(a) => return Err(format!("the `{name}` layer's activation is sigmoid or tanh, not `{a}`")),
    };
    let ln = || cfg.ln.then(|| LayerNorm::new(units, device));
    Ok(match name {
        "rnn" | "gru" => {
            let gates = (name == "gru").then(|| {
                let mut g = Dense::new(inputs + units, 2 * units, true, device);
                g.bias = Some(Initializer::Ones.init([2 * units], device));
                g
            });
            Recurrent::Rnn(RnnCell { linear: Dense::new(inputs + units, units, true, device), gates, ln: ln(), act })
        }
        "lstm" => Recurrent::Lstm(LstmCell::new(inputs, units, cfg.ln, device)),
        "r_nem" => {
            if k < 2 {
                return Err("the `r_nem` cell relates slots: it needs nem.k of at least 2".into());
            }
            let mlp = |list: &Option<Vec<LayerCfg>>, width: usize| -> Result<(Vec<Layer>, usize), String> {
                let (l, flow) = layers(
                    list.as_deref().unwrap_or_default(),
                    Flow { width, map: None, flattened: None },
                    Act::Linear,
                    Some(device),
                )?;
                Ok((l, flow.width))
            };
            // The action embedding joins the state (encoder input) and the final concatenation.
            let (embed, e) = match (&cfg.actions, actions) {
                (Some(list), Some(a)) if !list.is_empty() => mlp(&cfg.actions, a)?,
                (Some(list), None) if !list.is_empty() => {
                    return Err("an `r_nem` cell with `actions` needs feed_actions=True and dataset.actions".into());
                }
                _ => (vec![], 0),
            };
            let (encoder, h1) = mlp(&cfg.encoder, units + e)?;
            let (core, hc) = mlp(&cfg.core, 2 * h1)?;
            let (context, h2) = mlp(&cfg.context, hc)?;
            let (attention, a) = mlp(&cfg.attention, hc)?;
            if !attention.is_empty() && a != 1 {
                return Err(format!("the `r_nem` attention must end with one value, not {a}"));
            }
            Recurrent::Relational(RelationalCell {
                actions: embed,
                encoder,
                core,
                context,
                attention,
                linear: Dense::new(h1 + h2 + inputs + e, units, true, device),
                ln: ln(),
                act,
                k,
            })
        }
        other => return Err(format!("recurrent layer `{other}` is not available (rnn, gru, lstm, r_nem)")),
    })
}
