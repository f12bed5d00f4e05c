//! Burn's convolution beside the direct kernels (`gestalt::nn::direct_conv`) on EMORL's shapes:
//! forward alone and forward + backward, flex on the CPU. `cargo bench --bench conv`.
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use gestalt::nn::direct_conv;
use std::time::Instant;

fn time(name: &str, mut f: impl FnMut()) {
    f();
    let s = Instant::now();
    for _ in 0..5 {
        f();
    }
    println!("{name}: {:.1} ms", s.elapsed().as_secs_f64() * 200.0);
}

fn main() {
    let d = Device::flex().autodiff();
    for (n, c, o, h, k, p) in
        [(128usize, 32usize, 32usize, 41usize, 5usize, 1usize), (32, 64, 64, 35, 5, 2), (128, 32, 4, 35, 3, 1)]
    {
        println!("N={n} C={c} O={o} H={h} k={k} p={p}");
        let x = Tensor::<4>::random([n, c, h, h], Distribution::Normal(0.0, 1.0), &d).require_grad();
        let w = Tensor::<4>::random([o, c, k, k], Distribution::Normal(0.0, 1.0), &d).require_grad();
        let b = Tensor::<1>::zeros([o], &d).require_grad();
        let opt = ConvOptions { stride: [1, 1], padding: [(p, p), (p, p)], dilation: [1, 1], groups: 1 };
        time("burn fwd", || {
            let _ = conv2d(x.clone().detach(), w.clone().detach(), Some(b.clone().detach()), opt.clone()).into_data();
        });
        time("direct fwd", || {
            let _ = direct_conv::conv2d(&x.clone().detach(), &w.clone().detach(), &b.clone().detach(), &opt)
                .unwrap()
                .into_data();
        });
        time("burn fwd+bwd", || {
            let _ = conv2d(x.clone(), w.clone(), Some(b.clone()), opt.clone()).sum().backward();
        });
        time("direct fwd+bwd", || {
            let _ = direct_conv::conv2d(&x, &w, &b, &opt).unwrap().sum().backward();
        });
    }
}
