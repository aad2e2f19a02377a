//! Backends and devices: f32 `ndarray` on the CPU, and `burn-cuda` (bf16 or f32) behind the
//! `cuda` cargo feature. burn 0.21 panics on the first CUDA operation when no driver can be
//! loaded, so [`probe_cuda`] checks for the driver library first and turns its absence into
//! a message.

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
pub fn probe_cuda() -> Result<(), String> {
    for lib in ["libcuda.so.1", "libcuda.so"] {
        // SAFETY: loading the driver library runs its initialisers, as cudarc itself does.
        if unsafe { libloading::Library::new(lib) }.is_ok() {
            return Ok(());
        }
    }
    Err(
        "no CUDA device: the CUDA driver library (libcuda.so.1) cannot be loaded; \
         use device = \"cpu\", or run on a machine with an NVIDIA GPU and driver"
            .into(),
    )
}

#[cfg(not(feature = "cuda"))]
pub fn probe_cuda() -> Result<(), String> {
    Err("device = \"cuda\" needs a build with the `cuda` feature \
         (cargo build --release --features cuda)"
        .into())
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
