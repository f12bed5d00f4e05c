//! Direct stride-1 convolutions for the CPU backend (flex, f32, AVX-512), with their own
//! backward: a Burn backend extension. flex convolves by im2col and gemm, and takes the weight
//! gradient as a convolution with batch and channels swapped; on EMORL's 5×5 convolutions that
//! runs at a third of the speed of PyTorch's oneDNN kernels, and the convolutions are most of an
//! EMORL step. The same sums in another order: the gradient checks of every model hold, and the
//! tests compare each of the three results with Burn's own convolution.
//! Elsewhere (other backends, strides, dtypes, kernel sizes, CPUs without AVX-512) Burn's
//! convolution runs; [`conv2d`] says which by returning `None`.
#[cfg(target_arch = "x86_64")]
mod kernels;

use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};

#[cfg(target_arch = "x86_64")]
pub use imp::conv2d;

/// Burn's convolution everywhere but x86-64.
#[cfg(not(target_arch = "x86_64"))]
pub fn conv2d(_: &Tensor<4>, _: &Tensor<4>, _: &Tensor<1>, _: &ConvOptions<2>) -> Option<Tensor<4>> {
    None
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::kernels;
    use super::*;
    use burn::backend::TensorMetadata;
    use burn::backend::autodiff::NodeId;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension, tensor::FloatTensor};
    use burn::tensor::{DType, Device};

    /// [top, bottom, left, right] zero padding.
    type Padding = [usize; 4];

    #[backend_extension(Flex, Autodiff)]
    pub trait DirectConv: Backend {
        /// conv2d(x [N, C, H, W], weight [O, C, k, k]) + bias [O], stride 1.
        fn direct_conv2d(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            padding: Padding,
        ) -> FloatTensor<Self>;
    }

    /// The direct convolution where it applies: flex, f32, stride 1, no dilation or groups, a
    /// 3×3 or 5×5 kernel, padding below k on each side, and a CPU with AVX-512F.
    pub fn conv2d(x: &Tensor<4>, weight: &Tensor<4>, bias: &Tensor<1>, options: &ConvOptions<2>) -> Option<Tensor<4>> {
        let [_, _, kh, kw] = weight.dims();
        let [(t, b), (l, r)] = options.padding;
        let applies = options.stride == [1, 1]
            && options.dilation == [1, 1]
            && options.groups == 1
            && kh == kw
            && matches!(kh, 3 | 5)
            && [t, b, l, r].iter().all(|&p| p < kh)
            && x.dtype() == DType::F32
            && weight.dtype() == DType::F32
            && x.device().inner() == Device::flex()
            && std::arch::is_x86_feature_detected!("avx512f");
        if !applies {
            return None;
        }
        let y = <Dispatch as DirectConv>::direct_conv2d(
            x.clone().into_dispatch(),
            weight.clone().into_dispatch(),
            bias.clone().into_dispatch(),
            [t, b, l, r],
        );
        Some(Tensor::from_dispatch(y))
    }

    fn dims(t: &FloatTensor<Flex>) -> [usize; 4] {
        t.shape().dims()
    }

    /// The values of `t` in row-major order, copied only when its layout is not contiguous.
    fn contiguous(t: &FloatTensor<Flex>) -> FloatTensor<Flex> {
        t.to_contiguous()
    }

    fn slice(t: &FloatTensor<Flex>) -> &[f32] {
        t.as_slice::<f32>().expect("direct convolution on contiguous f32 maps")
    }

    fn tensor(v: Vec<f32>, shape: Vec<usize>) -> FloatTensor<Flex> {
        FloatTensor::<Flex>::from_data(TensorData::new(v, shape))
    }

    /// The convolution, and the padded input that its weight gradient reads again.
    fn forward(
        x: &FloatTensor<Flex>,
        weight: &FloatTensor<Flex>,
        bias: &FloatTensor<Flex>,
        padding: Padding,
    ) -> (FloatTensor<Flex>, FloatTensor<Flex>) {
        let ([n, c, h, w], [o, _, k, _]) = (dims(x), dims(weight));
        let xp = kernels::pad(slice(&contiguous(x)), [n, c, h, w], padding);
        let (hp, wp) = (h + padding[0] + padding[1], w + padding[2] + padding[3]);
        let (wt, cp) = kernels::pack(slice(&contiguous(weight)), [o, c, k, k], false);
        let y = kernels::conv(&xp, [n, c, hp, wp], &wt, k, o, cp, Some(slice(&contiguous(bias))));
        (tensor(y, vec![n, o, hp + 1 - k, wp + 1 - k]), tensor(xp, vec![n, c, hp, wp]))
    }

    impl DirectConv for Flex {
        fn direct_conv2d(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            padding: Padding,
        ) -> FloatTensor<Self> {
            forward(&x, &weight, &bias, padding).0
        }
    }

    /// The three gradients of [`DirectConv::direct_conv2d`].
    #[derive(Debug)]
    struct DirectConvBackward;

    impl Backward<Flex, 3> for DirectConvBackward {
        /// The padded input, the weight's node and the padding.
        type State = (FloatTensor<Flex>, NodeId, Padding);

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
            let [node_x, node_w, node_b] = ops.parents;
            let grad = grads.consume::<Flex>(&ops.node);
            let (xp, w_id, [t, b, l, r]) = ops.state;
            let weight = checkpointer.retrieve_node_output::<FloatTensor<Flex>>(w_id);
            let ([n, c, hp, wp], [o, _, k, _]) = (dims(&xp), dims(&weight));
            let (h, w, ho, wo) = (hp - t - b, wp - l - r, hp + 1 - k, wp + 1 - k);
            let g = contiguous(&grad);
            let g = slice(&g);
            if let Some(node) = node_x {
                // ∂L/∂x: the output gradient padded by k−1−p, convolved with the rotated,
                // transposed weights.
                let pad = [k - 1 - t, k - 1 - b, k - 1 - l, k - 1 - r];
                let gp = kernels::pad(g, [n, o, ho, wo], pad);
                let (wt, cp) = kernels::pack(slice(&contiguous(&weight)), [o, c, k, k], true);
                let dx =
                    kernels::conv(&gp, [n, o, ho + 2 * (k - 1) - t - b, wo + 2 * (k - 1) - l - r], &wt, k, c, cp, None);
                grads.register::<Flex>(node.id, tensor(dx, vec![n, c, h, w]));
            }
            if let Some(node) = node_w {
                let (gl, op) = kernels::channels_last(g, [n, o, ho, wo]);
                let dw = kernels::weight_grad(slice(&xp), [n, c, hp, wp], &gl, o, op, k);
                grads.register::<Flex>(node.id, tensor(dw, vec![o, c, k, k]));
            }
            if let Some(node) = node_b {
                grads.register::<Flex>(node.id, tensor(kernels::bias_grad(g, [n, o, ho, wo]), vec![o]));
            }
        }
    }

    impl<C: CheckpointStrategy> DirectConv for Autodiff<Flex, C> {
        fn direct_conv2d(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            padding: Padding,
        ) -> FloatTensor<Self> {
            let (y, xp) = forward(x.primitive(), weight.primitive(), bias.primitive(), padding);
            match DirectConvBackward.prepare::<C>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
                OpsKind::Tracked(mut prep) => {
                    let state = (xp, prep.checkpoint(&weight), padding);
                    prep.finish(state, y)
                }
                OpsKind::UnTracked(prep) => prep.finish(y),
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use burn::tensor::module::conv2d as burn_conv2d;
    use burn::tensor::{Device, Distribution};

    /// Output and the three gradients of the direct kernels against Burn's convolution.
    fn check(n: usize, c: usize, o: usize, [h, w]: [usize; 2], k: usize, padding: [(usize, usize); 2]) {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return;
        }
        let d = Device::flex().autodiff();
        let x = Tensor::<4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), &d).require_grad();
        let wt = Tensor::<4>::random([o, c, k, k], Distribution::Normal(0.0, 1.0), &d).require_grad();
        let b = Tensor::<1>::random([o], Distribution::Normal(0.0, 1.0), &d).require_grad();
        let options = ConvOptions { stride: [1, 1], padding, dilation: [1, 1], groups: 1 };
        let direct = conv2d(&x, &wt, &b, &options).expect("the direct kernels apply");
        let reference = burn_conv2d(x.clone(), wt.clone(), Some(b.clone()), options);
        assert_eq!(direct.dims(), reference.dims());
        // A fixed weighting of the outputs, so that each gradient is a different sum.
        let r = Tensor::<4>::random(direct.dims(), Distribution::Normal(0.0, 1.0), &d);
        let (gd, gr) = ((direct.clone() * r.clone()).sum().backward(), (reference.clone() * r).sum().backward());
        let close = |a: Tensor<4>, b: Tensor<4>, what: &str| {
            let err = (a.clone() - b.clone()).abs().max().into_scalar::<f32>();
            let scale = b.abs().max().into_scalar::<f32>();
            assert!(err <= 1e-5 * scale.max(1.0), "{what}: max error {err} at scale {scale}");
        };
        close(direct.detach(), reference.detach(), "output");
        close(x.grad(&gd).unwrap(), x.grad(&gr).unwrap(), "∂x");
        close(wt.grad(&gd).unwrap(), wt.grad(&gr).unwrap(), "∂w");
        close(b.grad(&gd).unwrap().reshape([1, 1, 1, o]), b.grad(&gr).unwrap().reshape([1, 1, 1, o]), "∂b");
    }

    #[test]
    fn matches_burn_conv_5x5() {
        check(3, 4, 32, [9, 11], 5, [(2, 2), (2, 2)]);
        check(2, 3, 64, [7, 20], 5, [(1, 1), (1, 1)]);
        check(2, 32, 40, [6, 17], 5, [(0, 0), (0, 0)]);
    }

    #[test]
    fn matches_burn_conv_3x3_uneven_padding() {
        check(2, 5, 4, [8, 15], 3, [(0, 1), (1, 0)]);
        check(1, 33, 32, [5, 30], 3, [(1, 1), (2, 2)]);
    }

    #[test]
    fn leaves_other_convolutions_to_burn() {
        let d = Device::flex();
        let x = Tensor::<4>::zeros([1, 2, 8, 8], &d);
        let b = Tensor::<1>::zeros([4], &d);
        let opt = |s| ConvOptions { stride: [s, s], padding: [(1, 1), (1, 1)], dilation: [1, 1], groups: 1 };
        assert!(conv2d(&x, &Tensor::zeros([4, 2, 3, 3], &d), &b, &opt(2)).is_none());
        assert!(conv2d(&x, &Tensor::zeros([4, 2, 4, 4], &d), &b, &opt(1)).is_none());
        let x64 = Tensor::<4>::zeros([1, 2, 8, 8], (&d, burn::tensor::DType::F64));
        assert!(conv2d(&x64, &Tensor::zeros([4, 2, 3, 3], (&d, burn::tensor::DType::F64)), &b, &opt(1)).is_none());
    }
}
