//! `--backend` → a Burn device. Models are compiled once; the device picks the backend at runtime.
use crate::error::{Error, Result};
use burn::tensor::{Device, Tensor};

pub const BACKENDS: &[&str] = &["flex", "ndarray", "wgpu", "vulkan", "cuda"];

/// The device for `name`, checked with a tiny computation so that a missing adapter or driver
/// is a one-line error rather than a panic deep inside the first training step.
pub fn device(name: &str, index: Option<usize>) -> Result<Device> {
    let device = match name {
        #[cfg(feature = "flex")]
        "flex" => Device::flex(),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        "ndarray" => Device::ndarray(),
        #[cfg(feature = "wgpu")]
        "wgpu" => Device::wgpu(gpu(index)),
        // Pinned to Vulkan, with the SPIR-V compiler rather than WGSL.
        #[cfg(feature = "vulkan")]
        "vulkan" => Device::vulkan(gpu(index)),
        #[cfg(feature = "cuda")]
        "cuda" => Device::cuda(index.unwrap_or(0)),
        other if BACKENDS.contains(&other) => {
            return Err(Error::usage(format!(
                "backend `{other}` is not compiled into this binary (cargo feature `{other}`)"
            )));
        }
        other => {
            return Err(Error::usage(format!("unknown backend `{other}` (one of {})", BACKENDS.join(", "))));
        }
    };
    probe(&device).map_err(|why| Error::usage(format!("backend `{name}` is not usable here: {why}")))?;
    Ok(device)
}

#[cfg(feature = "wgpu")]
fn gpu(index: Option<usize>) -> burn::tensor::DeviceKind {
    match index {
        Some(i) => burn::tensor::DeviceKind::DiscreteGpu(i),
        None => burn::tensor::DeviceKind::DefaultDevice,
    }
}

/// The devices of `n` model replicas: `n` times the CPU for flex and ndarray (a thread each),
/// GPUs `index`.. `index + n − 1` for the GPU backends.
pub fn devices(name: &str, index: Option<usize>, n: usize) -> Result<Vec<Device>> {
    if n == 0 {
        return Err(Error::usage("training.devices must be at least 1"));
    }
    if matches!(name, "flex" | "ndarray") || n == 1 {
        return Ok(vec![device(name, index)?; n]);
    }
    let first = index.unwrap_or(0);
    (first..first + n).map(|i| device(name, Some(i))).collect()
}

fn probe(device: &Device) -> std::result::Result<(), String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let d = device.clone();
    let r = std::panic::catch_unwind(move || {
        let t = Tensor::<1>::from_floats([1.0, 2.0], &d);
        t.sum().into_scalar::<f32>()
    });
    std::panic::set_hook(hook);
    match r {
        Ok(3.0) => Ok(()),
        Ok(v) => Err(format!("1 + 2 gave {v}")),
        Err(e) => Err(e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the device failed to start".into())
            .lines()
            .next()
            .unwrap_or("")
            .to_string()),
    }
}
