//! EMORL's evaluation metrics (reference §6), computed correctly at native resolution: FG-ARI per
//! image, MSE of the reconstruction, and mean ± std over images.
use burn::tensor::Tensor;

/// The ground-truth label of each pixel from EMORL masks [E, H·W] (0/255, entity 0 = background):
/// the largest e whose mask is set.
pub fn labels_from_masks(masks: &[u8], e: usize) -> Vec<u32> {
    let p = masks.len() / e;
    (0..p).map(|i| (0..e).rev().find(|&k| masks[k * p + i] > 127).unwrap_or(0) as u32).collect()
}

/// FG-ARI of one image: ARI between the ground truth and the predicted slot (argmax of the masks)
/// over the foreground pixels only. None when the image has no foreground.
pub fn fg_ari(truth: &[u32], pred: &[u32]) -> Option<f64> {
    let (t, p): (Vec<u32>, Vec<u32>) = truth.iter().zip(pred).filter(|(t, _)| **t > 0).map(|(t, p)| (*t, *p)).unzip();
    (!t.is_empty()).then(|| crate::metrics::ari(&t, &p))
}

/// Per-image MSE over all pixels and channels, background included, of the mask-weighted mean:
/// x01 [N, 3, H, W], rgb [N, K, 3, H, W], log_masks [N, K, 1, H, W] → [N].
pub fn mse(x01: Tensor<4>, rgb: Tensor<5>, log_masks: Tensor<5>) -> Tensor<1> {
    let n = x01.dims()[0];
    let mean = (log_masks.exp() * rgb).sum_dim(1).squeeze_dim::<4>(1);
    (x01 - mean).square().reshape([n as i32, -1]).mean_dim(1).reshape([n])
}

/// Mean and (population) standard deviation, as the original reports each metric.
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (mean, (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn labels_come_from_the_masks_and_background_is_left_out() {
        // Three pixels, E = 3: background, entity 1, entity 2.
        let masks = [255, 0, 0, 0, 255, 0, 0, 0, 255];
        let truth = labels_from_masks(&masks, 3);
        assert_eq!(truth, [0, 1, 2]);
        // The background pixel's prediction does not matter.
        assert_eq!(fg_ari(&truth, &[7, 0, 1]), Some(1.0));
        assert_eq!(fg_ari(&truth, &[0, 0, 1]), Some(1.0));
        // Both objects in one slot: ARI 0 on two pixels of different objects.
        assert_eq!(fg_ari(&truth, &[0, 1, 1]), Some(0.0));
        assert_eq!(fg_ari(&[0, 0], &[1, 2]), None);
        // One object and one predicted slot: 1, where the original's formula would divide by zero.
        assert_eq!(fg_ari(&[0, 1, 1], &[3, 2, 2]), Some(1.0));
    }

    #[test]
    fn mse_of_the_composite_and_mean_std() {
        let d = Device::flex();
        let x = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 0.0, 0.5], [1, 3, 1, 1]), &d);
        let rgb = Tensor::<5>::from_data(TensorData::new(vec![0.8f32, 0.2, 0.5, 0.4, 0.6, 0.1], [1, 2, 3, 1, 1]), &d);
        let lm = Tensor::<5>::from_data(TensorData::new(vec![0.25f32.ln(), 0.75f32.ln()], [1, 2, 1, 1, 1]), &d);
        let got = mse(x, rgb, lm).into_scalar::<f64>();
        let mean: [f64; 3] = [0.25 * 0.8 + 0.75 * 0.4, 0.25 * 0.2 + 0.75 * 0.6, 0.25 * 0.5 + 0.75 * 0.1];
        let want =
            [(1.0 - mean[0]).powi(2), (0.0 - mean[1]).powi(2), (0.5 - mean[2]).powi(2)].iter().sum::<f64>() / 3.0;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        assert_eq!(mean_std(&[1.0, 3.0]), (2.0, 1.0));
    }
}
