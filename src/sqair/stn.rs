//! The spatial transformer of SQAIR (`reference/sqair.md` §2.3, §7): Sonnet's `AffineGridWarper`
//! without shear followed by `tf.contrib.resampler`'s bilinear sampling with zero padding. The
//! transform is axis-aligned, so sampling factors into one interpolation matrix per axis,
//! `glimpse = A_y · image · A_xᵀ` with `A[i, j] = max(0, 1 − |src(i) − j|)`: exact bilinear
//! sampling, differentiable in scale and shift through abs, relu and matmul.
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor};

/// Where logits (sx, sy, tx, ty) [N, 4] → ST coordinates: scale = σ(logit), shift = tanh(logit).
pub fn to_coords(logits: Tensor<2>) -> Tensor<2> {
    let n = logits.dims()[0];
    let scale = sigmoid(logits.clone().slice([0..n, 0..2]));
    let shift = logits.slice([0..n, 2..4]).tanh();
    Tensor::cat(vec![scale, shift], 1)
}

/// Scales clipped below at 1e-4 with the gradient of the unclipped value (`ops.clip_preserve`).
fn clip_scale(s: Tensor<2>) -> Tensor<2> {
    s.clone() + (s.clone().clamp_min(1e-4) - s).detach()
}

/// `n` points evenly from −1 to 1 [1, n] (`np.linspace(-1, 1, n)`).
fn linspace(n: usize, device: &Device) -> Tensor<2> {
    let step = if n > 1 { 2.0 / (n - 1) as f32 } else { 0.0 };
    let v: Vec<f32> = (0..n).map(|i| -1.0 + step * i as f32).collect();
    Tensor::<1>::from_floats(v.as_slice(), device).reshape([1, n])
}

/// The bilinear interpolation matrices [N, out, len] of one axis: row i samples the source at
/// pixel `src[:, i]` [N, out] of a source axis of `len` pixels.
fn interpolation(src: Tensor<2>, len: usize) -> Tensor<3> {
    let [n, out] = src.dims();
    let pixels = linspace(len, &src.device()).add_scalar(1.0).mul_scalar((len - 1) as f32 / 2.0);
    let dist = src.reshape([n, out, 1]) - pixels.reshape([1, 1, len]);
    relu(dist.abs().neg().add_scalar(1.0))
}

/// Source pixels of an axis: normalised output points `u` [1, out] → s·u + t in normalised
/// source coordinates → (len − 1)/2 · (x + 1) pixels. `s`, `t` [N, 1].
fn source(u: Tensor<2>, s: Tensor<2>, t: Tensor<2>, len: usize) -> Tensor<2> {
    (s * u + t).add_scalar(1.0).mul_scalar((len - 1) as f32 / 2.0)
}

/// The two axes' (scale, shift) columns of ST coordinates [N, 4] = (sx, sy, tx, ty), scale clipped.
fn axes(coords: Tensor<2>) -> [(Tensor<2>, Tensor<2>); 2] {
    let n = coords.dims()[0];
    let col = |i: usize| coords.clone().slice([0..n, i..i + 1]);
    let (sx, sy) = (clip_scale(col(0)), clip_scale(col(1)));
    [(sy, col(3)), (sx, col(2))]
}

/// Glimpses [N, G, G] of images [N, H, W] at ST coordinates [N, 4].
pub fn glimpse(images: Tensor<3>, coords: Tensor<2>, size: usize) -> Tensor<3> {
    let [_, h, w] = images.dims();
    let u = linspace(size, &images.device());
    let [(sy, ty), (sx, tx)] = axes(coords);
    let ay = interpolation(source(u.clone(), sy, ty, h), h);
    let ax = interpolation(source(u, sx, tx, w), w);
    ay.matmul(images).matmul(ax.swap_dims(1, 2))
}

/// The inverse warp's interpolation matrices (B_y [N, H, G], B_x [N, W, G]) for glimpses of
/// side `g` at ST coordinates [N, 4]: a canvas point x maps to (x − t)/s in glimpse coordinates,
/// and outside the glimpse it reads 0.
pub fn write_matrices(coords: Tensor<2>, g: usize, canvas: [usize; 2]) -> (Tensor<3>, Tensor<3>) {
    let device = coords.device();
    let [(sy, ty), (sx, tx)] = axes(coords);
    let inverse = |s: Tensor<2>, t: Tensor<2>, len: usize| {
        let u = linspace(len, &device);
        interpolation(source(u, s.clone().recip(), t.neg() / s, g), g)
    };
    (inverse(sy, ty, canvas[0]), inverse(sx, tx, canvas[1]))
}

/// Glimpses [N, G, G] written into [N, H, W] canvases at ST coordinates [N, 4].
pub fn write(glimpses: Tensor<3>, coords: Tensor<2>, canvas: [usize; 2]) -> Tensor<3> {
    let g = glimpses.dims()[1];
    let (by, bx) = write_matrices(coords, g, canvas);
    by.matmul(glimpses).matmul(bx.swap_dims(1, 2))
}

/// Pixel boxes (y, x, h, w) [N, 4] of ST coordinates on an image of `size` (H, W), as the
/// original's `stn_to_pixel_coords`: extent (L + 1)·s, corner (L − 1)/2 · (t − s + 1).
pub fn pixel_boxes(coords: Tensor<2>, size: [usize; 2]) -> Tensor<2> {
    let n = coords.dims()[0];
    let col = |i: usize| coords.clone().slice([0..n, i..i + 1]);
    let corner = |s: Tensor<2>, t: Tensor<2>, l: usize| (t - s).add_scalar(1.0).mul_scalar((l as f32 - 1.0) / 2.0);
    let (h, w) = (size[0], size[1]);
    Tensor::cat(
        vec![
            corner(col(1), col(3), h),
            corner(col(0), col(2), w),
            col(1).mul_scalar(h as f32 + 1.0),
            col(0).mul_scalar(w as f32 + 1.0),
        ],
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn coords(v: [f32; 4]) -> Tensor<2> {
        Tensor::<1>::from_floats(v, &Device::flex()).reshape([1, 4])
    }

    #[test]
    fn identity_glimpse_round_trips() {
        let dev = Device::flex();
        let img: Vec<f32> = (0..64).map(|i| ((i * 37) % 11) as f32 / 10.0).collect();
        let x = Tensor::<1>::from_floats(img.as_slice(), &dev).reshape([1, 8, 8]);
        let id = coords([1.0, 1.0, 0.0, 0.0]);
        let g = glimpse(x.clone(), id.clone(), 8);
        let back = write(g.clone(), id, [8, 8]);
        for (a, b) in floats(g).iter().zip(&img) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        for (a, b) in floats(back).iter().zip(&img) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    /// Half scale, shifted: glimpse pixel i of a 3-pixel glimpse on a 5-pixel axis samples
    /// (5−1)/2 · (0.5·u_i + 0.25 + 1) = 2.5 + u_i for u = (−1, 0, 1): pixels 1.5, 2.5, 3.5.
    #[test]
    fn a_glimpse_samples_bilinearly_where_the_transform_says() {
        let dev = Device::flex();
        let row: Vec<f32> = vec![0.0, 10.0, 20.0, 40.0, 80.0];
        let img: Vec<f32> = (0..5).flat_map(|_| row.clone()).collect();
        let x = Tensor::<1>::from_floats(img.as_slice(), &dev).reshape([1, 5, 5]);
        // x axis: sx = 0.5, tx = 0.25; y axis: identity-like scale 1 over 3 rows (rows 0, 2, 4).
        let g = floats(glimpse(x, coords([0.5, 1.0, 0.25, 0.0]), 3));
        assert_eq!(g.len(), 9);
        for r in 0..3 {
            let got = &g[r * 3..][..3];
            let want = [15.0, 30.0, 60.0];
            assert!(got.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-4), "{got:?}");
        }
        // Out of the image reads zero: a shift of 1 puts the right half of the glimpse outside.
        let x = Tensor::<3>::ones([1, 5, 5], &dev);
        let g = floats(glimpse(x, coords([1.0, 1.0, 1.0, 0.0]), 5));
        // Sources 2, 3, 4, 5, 6 along x: the last two fall outside.
        assert_eq!(&g[..5], &[1.0, 1.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn writing_inverts_a_glimpse_inside_its_box() {
        let dev = Device::flex();
        // A 4×4 glimpse of ones written at half scale in the centre of a 9×9 canvas covers
        // canvas pixels whose normalised coordinate x satisfies |x/0.5| ≤ 1: columns 2..=6.
        let ones = Tensor::<3>::ones([1, 4, 4], &dev);
        let c = floats(write(ones, coords([0.5, 0.5, 0.0, 0.0]), [9, 9]));
        let mid: Vec<f32> = c[4 * 9..][..9].to_vec();
        assert!(mid[2..=6].iter().all(|&v| (v - 1.0).abs() < 1e-5), "{mid:?}");
        assert!(mid[0] == 0.0 && mid[8] == 0.0 && mid[1] < 1.0);
    }

    #[test]
    fn pixel_boxes_follow_the_original_formula() {
        let b = floats(pixel_boxes(coords([0.5, 0.25, 0.1, -0.2]), [50, 40]));
        let want = [24.5 * (-0.2 - 0.25 + 1.0), 19.5 * (0.1 - 0.5 + 1.0), 51.0 * 0.25, 41.0 * 0.5];
        assert!(b.iter().zip(want).all(|(a, w)| (a - w).abs() < 1e-4), "{b:?}");
    }
}
