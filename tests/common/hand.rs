//! Helpers for tests that compute a layer's values by hand (in f64) and compare.
use burn::tensor::{Device, Tensor, TensorData};

pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

/// `v` as a [n, len / n] tensor.
pub fn rows(v: &[f64], n: usize, d: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), [n, v.len() / n]), d)
}

pub fn row(v: &[f64], d: &Device) -> Tensor<2> {
    rows(v, 1, d)
}

pub fn sig(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// v W (+ b) with W [in, out] row-major.
pub fn affine(w: &[f64], b: Option<&[f64]>, v: &[f64], out: usize) -> Vec<f64> {
    (0..out)
        .map(|o| b.map_or(0.0, |b| b[o]) + v.iter().enumerate().map(|(i, vi)| vi * w[i * out + o]).sum::<f64>())
        .collect()
}

pub fn assert_all_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 2e-5, "{what}: {g} vs {w}\n{got:?}\n{want:?}");
    }
}
