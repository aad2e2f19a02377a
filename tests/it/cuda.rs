//! The CUDA backend against the CPU (build with `--features cuda`; run by `examples/gpu_check.sh`
//! on a machine with an NVIDIA GPU). Each test skips, saying so, where no CUDA driver loads, so
//! a cuda build without a GPU stays green. The same weights go to both devices: the CUDA
//! model's full forward and its cached decoding equal the CPU forward, and a training step's
//! loss and gradients through burn autodiff on CUDA equal the fused CPU step's, in f32; in bf16
//! the loss stays within bf16's rounding of the f32 one.

use burn::backend::cuda::CudaDevice;
use burn::backend::Cuda;
use burn::optim::GradientsParams;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use dagmath::engine::model::ModelDecoder;
use dagmath::engine::Decoder;
use dagmath::model::{fused, weights, ModelConfig, Qwen2};
use dagmath::train::device::{
    cpu_device, probe_cuda, CpuBackend, CpuInference, CudaBf16Backend, CudaF32Backend,
};
use dagmath::train::optim::param_paths;
use dagmath::train::trainer::autodiff_loss_and_grads;

fn gpu() -> Option<CudaDevice> {
    match probe_cuda() {
        Ok(()) => Some(CudaDevice::default()),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

fn config() -> ModelConfig {
    ModelConfig {
        vocab_size: 61,
        hidden_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        intermediate_size: 96,
        ..ModelConfig::preset("tiny", 61).unwrap()
    }
}

fn tokens(n: usize, vocab: usize, salt: usize) -> Vec<u32> {
    (0..n)
        .map(|i| ((i * 7919 + salt * 104_729) % vocab) as u32)
        .collect()
}

fn full_logits<B: Backend>(m: &Qwen2<B>, seq: &[u32], dev: &B::Device) -> Vec<f32> {
    let ids: Vec<i64> = seq.iter().map(|&t| t as i64).collect();
    let t = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, seq.len()]), dev);
    m.forward(t)
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Every gradient as (path, values), read back to the host as f32.
fn flat<B: burn::tensor::backend::AutodiffBackend>(
    model: &Qwen2<B>,
    g: &GradientsParams,
) -> Vec<(String, Vec<f32>)> {
    param_paths(model)
        .into_iter()
        .map(|(path, id)| {
            let vector = path.ends_with("bias") || path.ends_with("gamma");
            let v = if vector {
                g.get::<B::InnerBackend, 1>(id).map(|t| t.into_data())
            } else {
                g.get::<B::InnerBackend, 2>(id).map(|t| t.into_data())
            };
            let v = v.unwrap_or_else(|| panic!("no gradient for {path}"));
            (path, v.convert::<f32>().to_vec::<f32>().unwrap())
        })
        .collect()
}

#[test]
fn cuda_forward_and_cached_decoding_equal_the_cpu_forward() {
    let Some(dev) = gpu() else { return };
    let c = config();
    let w = weights::init(&c, 5);
    let cpu: Qwen2<CpuInference> = weights::to_model(&c, &w, &cpu_device()).unwrap();
    let gpu: Qwen2<Cuda<f32>> = weights::to_model(&c, &w, &dev).unwrap();
    let v = c.vocab_size;
    let prompts: [Vec<u32>; 2] = [tokens(9, v, 1), tokens(4, v, 2)];
    let cont: [Vec<u32>; 2] = [tokens(6, v, 3), tokens(6, v, 4)];
    // Full forward over a whole sequence.
    let seq: Vec<u32> = prompts[0].iter().chain(&cont[0]).copied().collect();
    let d = max_diff(
        &full_logits(&gpu, &seq, &dev),
        &full_logits(&cpu, &seq, &cpu_device()),
    );
    eprintln!("cuda full forward vs cpu: max abs diff {d:e}");
    assert!(d <= 1e-3, "full forward: {d}");
    // Cached decoding on CUDA, rows of different lengths, against the CPU's full forward.
    let mut dec = ModelDecoder::new(&gpu, &dev);
    let refs: Vec<&[u32]> = prompts.iter().map(|p| p.as_slice()).collect();
    let mut logits = Vec::new();
    dec.prefill(&refs, 32, &mut logits);
    let mut worst = 0.0f32;
    for step in 0..=cont[0].len() {
        for r in 0..2 {
            let seq: Vec<u32> = prompts[r].iter().chain(&cont[r][..step]).copied().collect();
            let full = full_logits(&cpu, &seq, &cpu_device());
            let last = &full[(seq.len() - 1) * v..seq.len() * v];
            worst = worst.max(max_diff(&logits[r * v..(r + 1) * v], last));
        }
        if step < cont[0].len() {
            dec.step(&[cont[0][step], cont[1][step]], &mut logits);
        }
    }
    eprintln!("cuda cached decoding vs cpu full forward: max abs diff {worst:e}");
    assert!(worst <= 1e-3, "cached decoding: {worst}");
}

#[test]
fn cuda_training_step_equals_the_fused_cpu_step() {
    let Some(dev) = gpu() else { return };
    let c = config();
    let w = weights::init(&c, 7);
    let (batch, seq) = (2, 70);
    let x = tokens(batch * seq, c.vocab_size, 1);
    let y = tokens(batch * seq, c.vocab_size, 2);
    let cpu: Qwen2<CpuBackend> = weights::to_model(&c, &w, &cpu_device()).unwrap();
    let (cl, cg) = fused::loss_and_grads(&cpu, &x, &y, batch, seq, 0.5);
    let cg = flat(&cpu, &cg);

    let gpu: Qwen2<CudaF32Backend> = weights::to_model(&c, &w, &dev).unwrap();
    let (gl, gg) = autodiff_loss_and_grads(&gpu, &x, &y, batch, seq, 0.5);
    let gg = flat(&gpu, &gg);
    eprintln!("f32 loss: cuda {gl} cpu {cl}");
    assert!((gl - cl).abs() <= 1e-4 * cl, "f32 loss {gl} vs {cl}");
    assert_eq!(gg.len(), cg.len());
    let mut worst_rel = 0.0f32;
    for ((path, g), (_, f)) in gg.iter().zip(&cg) {
        let scale = f.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(scale > 0.0, "{path}: zero gradient");
        let d = max_diff(g, f) / scale;
        worst_rel = worst_rel.max(d);
        assert!(
            d <= 2e-3,
            "{path}: max abs diff {d} of its largest gradient"
        );
    }
    eprintln!("f32 gradients: worst max-abs-diff / largest gradient {worst_rel:e}");

    let half: Qwen2<CudaBf16Backend> = weights::to_model(&c, &w, &dev).unwrap();
    let (hl, hg) = autodiff_loss_and_grads(&half, &x, &y, batch, seq, 0.5);
    assert_eq!(flat(&half, &hg).len(), cg.len());
    eprintln!("bf16 loss: cuda {hl} (f32 cpu {cl})");
    // bf16 keeps 8 bits of mantissa: the loss within 2% of the f32 one.
    assert!((hl - cl).abs() <= 0.02 * cl, "bf16 loss {hl} vs f32 {cl}");
}
