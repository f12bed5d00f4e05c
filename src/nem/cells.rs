//! The recurrent cells R-NEM adds (reference §2.3, §2.4): TF1.2's layer-normalised LSTM and the
//! relational cell (`R_NEM`, scope `NPE`). Slots stay in the batch dimension: [B·K, ·].
use super::net::Layer;
use crate::nn::{Act, Dense, LayerNorm};
use burn::module::Module;
use burn::tensor::{Int, Tensor, TensorData, activation::sigmoid};

/// `LayerNormBasicLSTMCell(units, layer_norm)`: [i, j, f, o] = W[x; h] (a bias only without
/// LN), each gate normalised on its own, c' = c σ(f + 1) + σ(i) tanh(j), c' normalised,
/// h' = tanh(c') σ(o). The state travels as one tensor [c; h] of 2·units columns.
#[derive(Module, Debug)]
pub struct LstmCell {
    pub linear: Dense,
    pub norms: Option<LstmNorms>,
}

/// The five layer norms of the LSTM, named as TF names their scopes.
#[derive(Module, Debug)]
pub struct LstmNorms {
    pub input: LayerNorm,
    pub transform: LayerNorm,
    pub forget: LayerNorm,
    pub output: LayerNorm,
    pub state: LayerNorm,
}

/// TF's `forget_bias`, added to the forget gate before its sigmoid.
const FORGET_BIAS: f64 = 1.0;

impl LstmCell {
    pub fn new(inputs: usize, units: usize, ln: bool, device: &burn::tensor::Device) -> Self {
        let norm = || LayerNorm::new(units, device);
        LstmCell {
            linear: Dense::new(inputs + units, 4 * units, !ln, device),
            norms: ln.then(|| LstmNorms {
                input: norm(),
                transform: norm(),
                forget: norm(),
                output: norm(),
                state: norm(),
            }),
        }
    }

    pub fn units(&self) -> usize {
        self.linear.weight.dims()[1] / 4
    }

    /// x [N, inputs], state [c; h] [N, 2·units] → (h', [c'; h']).
    pub fn step(&self, x: Tensor<2>, state: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let [c, h]: [Tensor<2>; 2] = state.chunk(2, 1).try_into().expect("[c; h]");
        let gates = self.linear.forward(Tensor::cat(vec![x, h], 1));
        let [i, j, f, o]: [Tensor<2>; 4] = gates.chunk(4, 1).try_into().expect("four gates");
        let norm = |which: fn(&LstmNorms) -> &LayerNorm, t: Tensor<2>| match &self.norms {
            Some(n) => which(n).forward(t),
            None => t,
        };
        let (i, j) = (norm(|n| &n.input, i), norm(|n| &n.transform, j));
        let (f, o) = (norm(|n| &n.forget, f), norm(|n| &n.output, o));
        let c = c * sigmoid(f + FORGET_BIAS) + sigmoid(i) * j.tanh();
        let c = norm(|n| &n.state, c);
        let h = c.clone().tanh() * sigmoid(o);
        (h.clone(), Tensor::cat(vec![c, h], 1))
    }
}

/// R-NEM's relational cell. Per slot k with state h_k and encoded input e_k:
/// s_k = encoder(h_k); for every other slot j, c_kj = core([s_k; s_j]), g_kj = context(c_kj),
/// α_kj = attention(c_kj); the effect E_k = Σ_j α_kj g_kj (Σ_j g_kj without attention);
/// z_k = W[s_k; E_k; e_k] + b; state σ(z), output σ(LN(z)). With `actions`, the action's
/// embedding a joins h_k before the encoder and the concatenation: W[s_k; E_k; e_k; a] + b.
#[derive(Module, Debug)]
pub struct RelationalCell {
    /// The action embedding (empty: the cell reads no actions).
    pub actions: Vec<Layer>,
    pub encoder: Vec<Layer>,
    pub core: Vec<Layer>,
    pub context: Vec<Layer>,
    pub attention: Vec<Layer>,
    pub linear: Dense,
    pub ln: Option<LayerNorm>,
    #[module(skip)]
    pub act: Act,
    /// Slots per image: the pairs are formed within each image's K rows.
    #[module(skip)]
    pub k: usize,
}

fn mlp(layers: &[Layer], x: Tensor<2>) -> Tensor<2> {
    layers.iter().fold(x, |x, l| l.forward(x))
}

impl RelationalCell {
    pub fn units(&self) -> usize {
        self.linear.weight.dims()[1]
    }

    /// The K(K−1) ordered pairs (focus k, context j ≠ k), j increasing: two index vectors.
    fn pairs(&self, device: &burn::tensor::Device) -> (Tensor<1, Int>, Tensor<1, Int>) {
        let k = self.k as i64;
        let (focus, context): (Vec<i64>, Vec<i64>) =
            (0..k).flat_map(|f| (0..k).filter(move |&j| j != f).map(move |j| (f, j))).unzip();
        let n = focus.len();
        let t = |v: Vec<i64>| Tensor::from_data(TensorData::new(v, [n]), device);
        (t(focus), t(context))
    }

    /// The action embedding of [B·K, A] actions (None without actions).
    fn embed(&self, action: Option<Tensor<2>>) -> Option<Tensor<2>> {
        if self.actions.is_empty() {
            return None;
        }
        Some(mlp(&self.actions, action.expect("this R-NEM cell reads an action every step")))
    }

    /// s = encoder(h (; a)), the core's output for every pair, [B·K·(K−1), ·].
    fn core(&self, h: Tensor<2>, a: Option<Tensor<2>>) -> (Tensor<2>, Tensor<2>) {
        let [bk, _] = h.dims();
        let (b, k) = (bk / self.k, self.k);
        let h = match a {
            Some(a) => Tensor::cat(vec![h, a], 1),
            None => h,
        };
        let s = mlp(&self.encoder, h);
        let h1 = s.dims()[1];
        let (focus, context) = self.pairs(&s.device());
        let s3 = s.clone().reshape([b, k, h1]);
        let pair = Tensor::cat(vec![s3.clone().select(1, focus), s3.select(1, context)], 2);
        (s, mlp(&self.core, pair.reshape([b * k * (k - 1), 2 * h1])))
    }

    /// The attention coefficients α_kj of state h, [B·K, K−1] (None without attention).
    pub fn attention(&self, h: Tensor<2>, action: Option<Tensor<2>>) -> Option<Tensor<2>> {
        if self.attention.is_empty() {
            return None;
        }
        let bk = h.dims()[0];
        let (_, core) = self.core(h, self.embed(action));
        Some(mlp(&self.attention, core).reshape([bk, self.k - 1]))
    }

    /// x [B·K, M] (the encoded input), h [B·K, units], the action [B·K, A] if the cell reads
    /// one → (output, new state).
    pub fn step(&self, x: Tensor<2>, h: Tensor<2>, action: Option<Tensor<2>>) -> (Tensor<2>, Tensor<2>) {
        let bk = h.dims()[0];
        let a = self.embed(action);
        let (s, core) = self.core(h, a.clone());
        let g = mlp(&self.context, core.clone());
        let h2 = g.dims()[1];
        let g = g.reshape([bk, self.k - 1, h2]);
        let effect =
            if self.attention.is_empty() { g } else { g * mlp(&self.attention, core).reshape([bk, self.k - 1, 1]) };
        let effect = effect.sum_dim(1).reshape([bk, h2]);
        let z = self.linear.forward(Tensor::cat([vec![s, effect, x], a.into_iter().collect()].concat(), 1));
        let state = self.act.apply(z.clone());
        let out = match &self.ln {
            Some(ln) => self.act.apply(ln.forward(z)),
            None => state.clone(),
        };
        (out, state)
    }
}
