//! 2-D convolution with TensorFlow's SAME padding and Glorot-uniform weights, and the nearest-
//! neighbour upsampling of a "resize conv" (`r_conv`). Maps are [N, C, H, W].
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::module::{conv_transpose2d, conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Tensor};

#[derive(Module, Debug)]
pub struct Conv2d {
    /// [out, in, k, k].
    pub weight: Param<Tensor<4>>,
    pub bias: Param<Tensor<1>>,
    #[module(skip)]
    pub stride: usize,
    /// Symmetric zero padding (PyTorch style); None: TF SAME.
    #[module(skip)]
    pub padding: Option<usize>,
}

/// TF SAME padding of one axis: (before, after) so that out = ceil(n / stride); uneven totals put
/// the extra pixel after.
pub fn same_padding(n: usize, k: usize, stride: usize) -> (usize, usize) {
    let out = n.div_ceil(stride);
    let total = ((out - 1) * stride + k).saturating_sub(n);
    (total / 2, total - total / 2)
}

impl Conv2d {
    /// TF: SAME padding, Glorot-uniform weights, zero bias.
    pub fn new(c_in: usize, c_out: usize, k: usize, stride: usize, device: &Device) -> Self {
        Self::with(c_in, c_out, k, stride, None, Initializer::XavierUniform { gain: 1.0 }, device)
    }

    /// Any padding and weight initialiser (fans of a conv kernel), zero bias.
    pub fn with(
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        padding: Option<usize>,
        init: Initializer,
        device: &Device,
    ) -> Self {
        let (fan_in, fan_out) = (c_in * k * k, c_out * k * k);
        Conv2d {
            weight: init.init_with([c_out, c_in, k, k], Some(fan_in), Some(fan_out), device),
            bias: Initializer::Zeros.init([c_out], device),
            stride,
            padding,
        }
    }

    fn options(&self, h: usize, w: usize) -> ConvOptions<2> {
        let k = self.weight.dims()[2];
        let s = self.stride;
        let padding = match self.padding {
            Some(p) => [(p, p), (p, p)],
            None => [same_padding(h, k, s), same_padding(w, k, s)],
        };
        ConvOptions { stride: [s, s], padding, dilation: [1, 1], groups: 1 }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let (weight, bias, options) = (self.weight.val(), self.bias.val(), self.options(h, w));
        match super::direct_conv::conv2d(&x, &weight, &bias, &options) {
            Some(y) => y,
            None => conv2d(x, weight, Some(bias), options),
        }
    }

    /// The conv of z [N, C], constant over space, plus a shared map [1, C, H, W], without
    /// convolving N maps (a spatial-broadcast decoder's first layer). The conv is linear, and a
    /// constant channel c contributes z_c·R_c, with R_c the (bias-free) conv of a map of ones in
    /// channel c alone: at each output pixel, the sum of the taps that land inside the input.
    pub fn forward_broadcast(&self, z: Tensor<2>, map: Tensor<4>) -> Tensor<4> {
        let [o, c, k, _] = self.weight.dims();
        let [_, _, h, w] = map.dims();
        let n = z.dims()[0];
        let shared = conv2d(map, self.weight.val(), Some(self.bias.val()), self.options(h, w));
        let [_, _, ho, wo] = shared.dims();
        let ones = Tensor::<4>::ones([1, 1, h, w], &z.device());
        let r = conv2d(ones, self.weight.val().reshape([o * c, 1, k, k]), None, self.options(h, w));
        let r = r.reshape([o, c, ho * wo]).swap_dims(0, 1).reshape([c, o * ho * wo]);
        z.matmul(r).reshape([n, o, ho, wo]) + shared
    }
}

/// 2-D transposed convolution, PyTorch's `ConvTranspose2d` (weight [in, out, k, k]).
#[derive(Module, Debug)]
pub struct ConvTranspose2d {
    pub weight: Param<Tensor<4>>,
    pub bias: Param<Tensor<1>>,
    #[module(skip)]
    pub stride: usize,
    #[module(skip)]
    pub padding: usize,
    #[module(skip)]
    pub output_padding: usize,
}

impl ConvTranspose2d {
    #[allow(clippy::too_many_arguments)] // PyTorch's ConvTranspose2d arguments, in its order
    pub fn with(
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        padding: usize,
        output_padding: usize,
        init: Initializer,
        device: &Device,
    ) -> Self {
        // PyTorch takes the fans of a transposed conv's weight from its [in, out, k, k] layout.
        let (fan_in, fan_out) = (c_out * k * k, c_in * k * k);
        ConvTranspose2d {
            weight: init.init_with([c_in, c_out, k, k], Some(fan_in), Some(fan_out), device),
            bias: Initializer::Zeros.init([c_out], device),
            stride,
            padding,
            output_padding,
        }
    }

    /// Output size: (n − 1)·stride − 2·padding + k + output_padding.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let (s, p, o) = (self.stride, self.padding, self.output_padding);
        let options = ConvTransposeOptions::new([s, s], [p, p], [o, o], [1, 1], 1);
        conv_transpose2d(x, self.weight.val(), Some(self.bias.val()), options)
    }
}

/// Nearest-neighbour upsampling by an integer factor (TF1.2's resize_nearest_neighbor at ×s).
pub fn upsample(x: Tensor<4>, s: usize) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n * c * h, 1, w, 1]).expand([n * c * h, s, w, s]).reshape([n, c, h * s, w * s])
}

/// Nearest-neighbour resize to `oh` × `ow` with TF1.2's rule, source = floor(dst · in / out):
/// for `r_conv` with an `offset` (out = stride · in + offset).
pub fn resize_nearest(x: Tensor<4>, oh: usize, ow: usize) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let index = |out: usize, inp: usize| -> Tensor<1, burn::tensor::Int> {
        let src: Vec<i64> = (0..out).map(|d| (d * inp / out) as i64).collect();
        Tensor::from_data(burn::tensor::TensorData::new(src, [out]), &x.device())
    };
    let (rows, cols) = (index(oh, h), index(ow, w));
    x.select(2, rows).select(3, cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_resize_follows_tf_and_equals_upsampling_without_offset() {
        let dev = Device::flex();
        let x = Tensor::<4>::from_floats([[[[1.0, 2.0], [3.0, 4.0]]]], &dev);
        let up: Vec<f32> = upsample(x.clone(), 2).into_data().try_to_vec::<f32>().unwrap();
        let resized: Vec<f32> = resize_nearest(x.clone(), 4, 4).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(up, resized);
        // 2 → 5 (stride 2, offset 1): sources floor(d · 2 / 5) = 0, 0, 0, 1, 1.
        let r: Vec<f32> = resize_nearest(x, 5, 5).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(&r[..5], &[1.0, 1.0, 1.0, 2.0, 2.0]);
        assert_eq!(&r[15..20], &[3.0, 3.0, 3.0, 4.0, 4.0]);
    }

    #[test]
    fn broadcast_input_matches_the_plain_conv() {
        use burn::tensor::Distribution;
        let dev = Device::flex();
        for (k, pad) in [(5, Some(1)), (3, Some(0)), (4, None)] {
            let conv = Conv2d::with(3, 5, k, 1, pad, Initializer::XavierUniform { gain: 1.0 }, &dev);
            let z = Tensor::<2>::random([4, 3], Distribution::Normal(0.0, 1.0), &dev);
            let map = Tensor::<4>::random([1, 3, 9, 8], Distribution::Normal(0.0, 1.0), &dev);
            let plain = conv.forward(z.clone().reshape([4, 3, 1, 1]).expand([4, 3, 9, 8]) + map.clone());
            let fast = conv.forward_broadcast(z, map);
            assert_eq!(plain.dims(), fast.dims());
            let err: f32 = (plain - fast).abs().max().into_scalar();
            assert!(err < 1e-5, "k={k} pad={pad:?}: {err}");
        }
    }

    #[test]
    fn transposed_conv_doubles_the_size_as_slot_attention_s_decoder() {
        let dev = Device::flex();
        let up = ConvTranspose2d::with(3, 4, 5, 2, 2, 1, Initializer::XavierUniform { gain: 1.0 }, &dev);
        assert_eq!(up.forward(Tensor::zeros([2, 3, 6, 6], &dev)).dims(), [2, 4, 12, 12]);
        // A single 1 in the input places the kernel (flipped as a correlation's adjoint) in the output.
        let mut one = ConvTranspose2d::with(1, 1, 3, 1, 1, 0, Initializer::Zeros, &dev);
        one.weight =
            Param::from_tensor(Tensor::<1, burn::tensor::Int>::arange(0..9, &dev).float().reshape([1, 1, 3, 3]));
        let x = Tensor::<4>::zeros([1, 1, 5, 5], &dev)
            .slice_assign([0..1, 0..1, 2..3, 2..3], Tensor::ones([1, 1, 1, 1], &dev));
        let y: Vec<f32> = one.forward(x).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(&y[6..9], &[0.0, 1.0, 2.0]);
        assert_eq!(&y[16..19], &[6.0, 7.0, 8.0]);
    }

    #[test]
    fn same_padding_matches_tensorflow() {
        // The reference's cases: k4 s1 pads 1/2; k8 s1 3/4; k4 s2 on 21 px 1/2; on even sizes 1/1; k8 s4 on 84 2/2.
        assert_eq!(same_padding(10, 4, 1), (1, 2));
        assert_eq!(same_padding(10, 8, 1), (3, 4));
        assert_eq!(same_padding(21, 4, 2), (1, 2));
        assert_eq!(same_padding(28, 4, 2), (1, 1));
        assert_eq!(same_padding(84, 8, 4), (2, 2));
    }

    #[test]
    fn upsample_repeats_pixels_and_convs_keep_same_sizes() {
        let d = Device::flex();
        let x = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0], &d).reshape([1, 1, 2, 2]);
        let up: Vec<f32> = upsample(x, 2).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(up, [1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.]);
        let conv = Conv2d::new(3, 5, 4, 2, &d);
        assert_eq!(conv.forward(Tensor::zeros([2, 3, 21, 21], &d)).dims(), [2, 5, 11, 11]);
        let conv = Conv2d::new(3, 1, 5, 1, &d);
        assert_eq!(conv.forward(Tensor::zeros([2, 3, 24, 24], &d)).dims(), [2, 1, 24, 24]);
    }
}
