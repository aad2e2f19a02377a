//! Backends and devices: f32 `ndarray` on the CPU, and `burn-cuda` (bf16 or f32) behind the
//! `cuda` cargo feature. burn 0.21 panics on the first CUDA operation when no driver can be
//! loaded, so [`probe_cuda`] checks for the driver library first and turns its absence into
//! a message.

use super::config::{DeviceKind, Precision};

/// Why a phase cannot run on the device its config or `--device` asks for; the user's choice
/// (the CLI exits 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("precision = \"bf16\" is for device = \"cuda\"; the CPU trains in f32")]
    Bf16OnCpu,
    #[error(
        "no CUDA device: the CUDA driver library (libcuda.so.1) cannot be loaded; \
         use device = \"cpu\", or run on a machine with an NVIDIA GPU and driver"
    )]
    NoDriver,
    #[error(
        "device = \"cuda\" needs a build with the `cuda` feature \
         (cargo build --release --features cuda)"
    )]
    NotBuilt,
}

/// The backend a training phase runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    CpuF32,
    CudaF32,
    CudaBf16,
}

/// The one place where a phase's `device` and `precision` become a backend, for pre-training,
/// mid-training and RL alike: `auto` is bf16 on CUDA and f32 on the CPU; bf16 on the CPU is an
/// error.
pub fn resolve(device: DeviceKind, precision: Precision) -> Result<BackendChoice, DeviceError> {
    match (device, precision) {
        (DeviceKind::Cpu, Precision::Bf16) => Err(DeviceError::Bf16OnCpu),
        (DeviceKind::Cpu, _) => Ok(BackendChoice::CpuF32),
        (DeviceKind::Cuda, Precision::F32) => Ok(BackendChoice::CudaF32),
        (DeviceKind::Cuda, Precision::Auto | Precision::Bf16) => Ok(BackendChoice::CudaBf16),
    }
}

/// The CPU training backend.
pub type CpuBackend = burn::backend::Autodiff<burn::backend::NdArray<f32>>;
/// The CPU inference backend.
pub type CpuInference = burn::backend::NdArray<f32>;

pub fn cpu_device() -> burn::backend::ndarray::NdArrayDevice {
    burn::backend::ndarray::NdArrayDevice::Cpu
}

#[cfg(feature = "cuda")]
pub type CudaBf16Backend = burn::backend::Autodiff<burn::backend::Cuda<burn::tensor::bf16>>;
#[cfg(feature = "cuda")]
pub type CudaF32Backend = burn::backend::Autodiff<burn::backend::Cuda<f32>>;

/// Checks that a CUDA driver and NVRTC can be loaded, without touching burn.
#[cfg(feature = "cuda")]
pub fn probe_cuda() -> Result<(), DeviceError> {
    for lib in ["libcuda.so.1", "libcuda.so"] {
        // SAFETY: loading the driver library runs its initialisers, as cudarc itself does.
        if unsafe { libloading::Library::new(lib) }.is_ok() {
            return Ok(());
        }
    }
    Err(DeviceError::NoDriver)
}

#[cfg(not(feature = "cuda"))]
pub fn probe_cuda() -> Result<(), DeviceError> {
    Err(DeviceError::NotBuilt)
}

/// burn's CPU backend allocates and frees large temporaries on every tensor operation. glibc
/// returns blocks above its mmap threshold (and a large free top of heap) to the kernel at once,
/// so every operation pays page faults and page zeroing again (a fifth of a training step's time
/// in `perf`). Keeping freed memory in the heap removes that; call this first thing in `main`.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before other threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_resolves_alike_for_every_phase() {
        use crate::train::config::RlConfig;
        use crate::train::config::TrainConfig;
        for (device, precision, want) in [
            ("cpu", "auto", Ok(BackendChoice::CpuF32)),
            ("cpu", "f32", Ok(BackendChoice::CpuF32)),
            ("cpu", "bf16", Err(())),
            ("cuda", "auto", Ok(BackendChoice::CudaBf16)),
            ("cuda", "f32", Ok(BackendChoice::CudaF32)),
            ("cuda", "bf16", Ok(BackendChoice::CudaBf16)),
        ] {
            let d: DeviceKind = serde_json::from_str(&format!("\"{device}\"")).unwrap();
            let p: Precision = serde_json::from_str(&format!("\"{precision}\"")).unwrap();
            assert_eq!(resolve(d, p).map_err(|_| ()), want, "{device} {precision}");
        }
        // The shipped configs of every phase leave precision at its default, and resolve alike.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configs");
        let pre = TrainConfig::from_file(&dir.join("pretrain_quickstart.toml")).unwrap();
        let mid = TrainConfig::from_file(&dir.join("midtrain_quickstart.toml")).unwrap();
        let rl = RlConfig::from_file(&dir.join("rl_quickstart.toml")).unwrap();
        let on_cuda = |p| resolve(DeviceKind::Cuda, p);
        assert_eq!(on_cuda(pre.precision), Ok(BackendChoice::CudaBf16));
        assert_eq!(on_cuda(mid.precision), on_cuda(pre.precision));
        assert_eq!(on_cuda(rl.precision), on_cuda(pre.precision));
    }
}
