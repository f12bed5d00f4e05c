//! The DualGRU cell (reference §1.4): two PyTorch-style GRUs (reset gate applied after the hidden
//! projection), one over the μ half of λ = [μ ; s] and one over the s half.
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};

/// Parameter names and shapes follow the original (`weight_ih_1` …, rows ordered (r, u)), so a
/// PyTorch checkpoint maps one to one.
#[derive(Module, Debug)]
pub struct DualGru {
    pub weight_ih_1: Param<Tensor<2>>,
    pub weight_hh_1: Param<Tensor<2>>,
    pub weight_in_1: Param<Tensor<2>>,
    pub weight_hn_1: Param<Tensor<2>>,
    pub weight_ih_2: Param<Tensor<2>>,
    pub weight_hh_2: Param<Tensor<2>>,
    pub weight_in_2: Param<Tensor<2>>,
    pub weight_hn_2: Param<Tensor<2>>,
    /// [4D], (r1, u1, r2, u2).
    pub bias_ih: Param<Tensor<1>>,
    pub bias_hh: Param<Tensor<1>>,
    /// [2D], (half 1, half 2).
    pub bias_in: Param<Tensor<1>>,
    pub bias_hn: Param<Tensor<1>>,
}

impl DualGru {
    /// Every parameter N(0, 1), as the original (`torch.randn`, untouched by init_weights).
    pub fn new(d: usize, device: &Device) -> DualGru {
        let n2 = |rows: usize| Initializer::Normal { mean: 0.0, std: 1.0 }.init([rows, d], device);
        let n1 = |len: usize| Initializer::Normal { mean: 0.0, std: 1.0 }.init([len], device);
        DualGru {
            weight_ih_1: n2(2 * d),
            weight_hh_1: n2(2 * d),
            weight_in_1: n2(d),
            weight_hn_1: n2(d),
            weight_ih_2: n2(2 * d),
            weight_hh_2: n2(2 * d),
            weight_in_2: n2(d),
            weight_hn_2: n2(d),
            bias_ih: n1(4 * d),
            bias_hh: n1(4 * d),
            bias_in: n1(2 * d),
            bias_hn: n1(2 * d),
        }
    }

    /// x, h: [N, 2D] → h': [N, 2D].
    pub fn forward(&self, x: Tensor<2>, h: Tensor<2>) -> Tensor<2> {
        let d = self.weight_in_1.dims()[0];
        let halves = [
            (&self.weight_ih_1, &self.weight_hh_1, &self.weight_in_1, &self.weight_hn_1),
            (&self.weight_ih_2, &self.weight_hh_2, &self.weight_in_2, &self.weight_hn_2),
        ];
        let out = halves.iter().enumerate().map(|(i, (w_ih, w_hh, w_in, w_hn))| {
            let xi = x.clone().slice([0..x.dims()[0], i * d..(i + 1) * d]);
            let hi = h.clone().slice([0..h.dims()[0], i * d..(i + 1) * d]);
            let gate_bias = |b: &Param<Tensor<1>>| b.val().slice([2 * i * d..2 * (i + 1) * d]).unsqueeze::<2>();
            let half_bias = |b: &Param<Tensor<1>>| b.val().slice([i * d..(i + 1) * d]).unsqueeze::<2>();
            gru_update(
                xi.clone().matmul(w_ih.val().transpose()) + gate_bias(&self.bias_ih),
                hi.clone().matmul(w_hh.val().transpose()) + gate_bias(&self.bias_hh),
                xi.matmul(w_in.val().transpose()) + half_bias(&self.bias_in),
                hi.clone().matmul(w_hn.val().transpose()) + half_bias(&self.bias_hn),
                hi,
            )
        });
        Tensor::cat(out.collect(), 1)
    }
}

/// PyTorch's GRU update from the projections of input and state (reset applied after the state's
/// projection): r, u = σ(i_ru + h_ru), n = tanh(i_n + r ⊙ h_n), h' = (1 − u) ⊙ n + u ⊙ h.
fn gru_update(i_ru: Tensor<2>, h_ru: Tensor<2>, i_n: Tensor<2>, h_n: Tensor<2>, h: Tensor<2>) -> Tensor<2> {
    let [rows, d] = h.dims();
    let gates = sigmoid(i_ru + h_ru);
    let r = gates.clone().slice([0..rows, 0..d]);
    let u = gates.slice([0..rows, d..2 * d]);
    let n = (i_n + r * h_n).tanh();
    (u.clone().neg() + 1.0) * n + u * h
}

/// PyTorch's `nn.GRU(D, D)` for one step: weights [3D, D] with rows (r, u, n), PyTorch's
/// default init U(−1/√D, 1/√D).
#[derive(Module, Debug)]
pub struct Gru {
    pub weight_ih: Param<Tensor<2>>,
    pub weight_hh: Param<Tensor<2>>,
    pub bias_ih: Param<Tensor<1>>,
    pub bias_hh: Param<Tensor<1>>,
}

impl Gru {
    pub fn new(d: usize, device: &Device) -> Gru {
        let a = 1.0 / (d as f64).sqrt();
        let init = Initializer::Uniform { min: -a, max: a };
        Gru {
            weight_ih: init.init([3 * d, d], device),
            weight_hh: init.init([3 * d, d], device),
            bias_ih: init.init([3 * d], device),
            bias_hh: init.init([3 * d], device),
        }
    }

    /// x, h: [N, D] → h'.
    pub fn forward(&self, x: Tensor<2>, h: Tensor<2>) -> Tensor<2> {
        let [rows, d] = h.dims();
        let gi = x.matmul(self.weight_ih.val().transpose()) + self.bias_ih.val().unsqueeze::<2>();
        let gh = h.clone().matmul(self.weight_hh.val().transpose()) + self.bias_hh.val().unsqueeze::<2>();
        let (ru, n) = (0..rows, 2 * d..3 * d);
        gru_update(
            gi.clone().slice([ru.clone(), 0..2 * d]),
            gh.clone().slice([ru.clone(), 0..2 * d]),
            gi.slice([ru.clone(), n.clone()]),
            gh.slice([ru, n]),
            h,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
    }

    /// One step computed with plain loops from the same parameters (PyTorch's GRU equations).
    #[test]
    fn one_step_matches_a_scalar_reference() {
        let (d, n) = (3, 2);
        let dev = Device::flex();
        dev.seed(4);
        let gru = DualGru::new(d, &dev);
        let x = Tensor::<2>::random([n, 2 * d], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
        let h = Tensor::<2>::random([n, 2 * d], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
        let got = vals(gru.forward(x.clone(), h.clone()));
        let (xv, hv) = (vals(x), vals(h));
        let w = |p: &Param<Tensor<2>>| vals(p.val());
        let b = |p: &Param<Tensor<1>>| vals(p.val());
        let (bih, bhh, bin, bhn) = (b(&gru.bias_ih), b(&gru.bias_hh), b(&gru.bias_in), b(&gru.bias_hn));
        let sig = |z: f64| 1.0 / (1.0 + (-z).exp());
        let dot = |m: &[f64], row: usize, v: &[f64]| (0..d).map(|j| m[row * d + j] * v[j]).sum::<f64>();
        for s in 0..n {
            for half in 0..2 {
                let (wih, whh, win, whn) = if half == 0 {
                    (w(&gru.weight_ih_1), w(&gru.weight_hh_1), w(&gru.weight_in_1), w(&gru.weight_hn_1))
                } else {
                    (w(&gru.weight_ih_2), w(&gru.weight_hh_2), w(&gru.weight_in_2), w(&gru.weight_hn_2))
                };
                let xs = &xv[s * 2 * d + half * d..][..d];
                let hs = &hv[s * 2 * d + half * d..][..d];
                for k in 0..d {
                    let r = sig(dot(&wih, k, xs) + bih[2 * half * d + k] + dot(&whh, k, hs) + bhh[2 * half * d + k]);
                    let u = sig(dot(&wih, d + k, xs)
                        + bih[2 * half * d + d + k]
                        + dot(&whh, d + k, hs)
                        + bhh[2 * half * d + d + k]);
                    let nn = (dot(&win, k, xs) + bin[half * d + k] + r * (dot(&whn, k, hs) + bhn[half * d + k])).tanh();
                    let want = (1.0 - u) * nn + u * hs[k];
                    let g = got[s * 2 * d + half * d + k];
                    assert!((g - want).abs() < 1e-5, "sample {s} half {half} unit {k}: {g} vs {want}");
                }
            }
        }
        assert_eq!(gru.num_params(), 12 * d * d + 12 * d);
    }
}
