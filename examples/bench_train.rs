//! Training throughput: tokens/s of forward + backward + AdamW step for the `tiny` and `small`
//! presets at sequence length 512 on the CPU, beside the same model in PyTorch (transformers'
//! Qwen2ForCausalLM, run by examples/bench_train_torch.py) as a ratio; with `--features cuda`
//! and a GPU, the `paper` preset on CUDA with its MFU.
//!
//! cargo run --release --example bench_train [-- --steps N --batch B --seq S --presets tiny,small]
//! PyTorch is found at $DAGMATH_PYTHON, else .venv-torch/bin/python (examples/setup_torch.sh).

use std::time::Instant;

use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor, TensorData};
use dagmath::model::{weights, ModelConfig, Qwen2};
use dagmath::template::TemplateSet;
use dagmath::tokenizer::Tokenizer;
use dagmath::train::optim::{clip_factor, AdamW, OptimConfig};
use rand::{RngExt, SeedableRng};

struct Opts {
    steps: usize,
    warmup: usize,
    batch: usize,
    seq: usize,
    presets: Vec<String>,
}

fn parse() -> Opts {
    let mut o = Opts {
        steps: 8,
        warmup: 2,
        batch: 8,
        seq: 512,
        presets: vec!["tiny".into(), "small".into()],
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i + 1 < args.len() {
        let v = &args[i + 1];
        match args[i].as_str() {
            "--steps" => o.steps = v.parse().expect("--steps N"),
            "--warmup" => o.warmup = v.parse().expect("--warmup N"),
            "--batch" => o.batch = v.parse().expect("--batch N"),
            "--seq" => o.seq = v.parse().expect("--seq N"),
            "--presets" => o.presets = v.split(',').map(String::from).collect(),
            other => panic!("unknown flag {other}"),
        }
        i += 2;
    }
    o
}

/// Median seconds per step of `steps` timed steps after `warmup`.
fn bench<B: AutodiffBackend>(c: &ModelConfig, o: &Opts, device: &B::Device) -> f64 {
    let mut model: Qwen2<B> = weights::to_model(c, &weights::init(c, 0), device).unwrap();
    let mut optim = AdamW::<B>::new(OptimConfig {
        lr: 1e-3,
        ..OptimConfig::default()
    });
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut times = Vec::new();
    for step in 0..o.warmup + o.steps {
        let n = o.batch * (o.seq + 1);
        let toks: Vec<i64> = (0..n)
            .map(|_| rng.random_range(0..c.vocab_size as i64))
            .collect();
        let all =
            Tensor::<B, 2, Int>::from_data(TensorData::new(toks, [o.batch, o.seq + 1]), device);
        let x = all.clone().narrow(1, 0, o.seq);
        let y = all.narrow(1, 1, o.seq);
        let t0 = Instant::now();
        let loss = Qwen2::loss(model.forward(x), y);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let (clip, _) = clip_factor(&model, &grads, 1.0);
        model = optim.step(1e-3, model, grads, clip);
        // Force the step to finish (lazy backends) before stopping the clock.
        let _ = model.embed_tokens.weight.val().narrow(0, 0, 1).into_data();
        if step >= o.warmup {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn torch(preset: &str, vocab: usize, o: &Opts) -> Option<f64> {
    let python = std::env::var("DAGMATH_PYTHON").ok().or_else(|| {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv-torch/bin/python");
        std::path::Path::new(p).exists().then(|| p.to_string())
    })?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/bench_train_torch.py");
    let out = std::process::Command::new(python)
        .args([script, "--preset", preset, "--vocab", &vocab.to_string()])
        .args([
            "--seq-len",
            &o.seq.to_string(),
            "--batch",
            &o.batch.to_string(),
        ])
        .args([
            "--steps",
            &o.steps.to_string(),
            "--warmup",
            &o.warmup.to_string(),
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("pytorch: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v.get("tokens_per_s")?.as_f64()
}

fn main() {
    dagmath::train::device::tune_allocator();
    let o = parse();
    let vocab = Tokenizer::domain(&TemplateSet::builtin()).vocab_size();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "training throughput, CPU ({threads} threads), batch {} x seq {}, f32, forward + backward + AdamW",
        o.batch, o.seq
    );
    println!(
        "{:<7} {:>11} {:>14} {:>16} {:>8}",
        "preset", "params", "burn tok/s", "pytorch tok/s", "ratio"
    );
    for preset in &o.presets {
        let c = ModelConfig::preset(preset, vocab).expect("a preset name");
        let secs = bench::<dagmath::train::device::CpuBackend>(
            &c,
            &o,
            &dagmath::train::device::cpu_device(),
        );
        let ours = (o.batch * o.seq) as f64 / secs;
        let theirs = torch(preset, vocab, &o);
        let (t, r) = match theirs {
            Some(t) => (format!("{t:.0}"), format!("{:.2}x", ours / t)),
            None => ("n/a".into(), "n/a".into()),
        };
        println!(
            "{:<7} {:>11} {:>14.0} {:>16} {:>8}",
            preset,
            c.n_params(),
            ours,
            t,
            r
        );
    }
    #[cfg(feature = "cuda")]
    cuda(&o, vocab);
}

/// The `paper` preset on CUDA in bf16: tokens/s and MFU against the GPU's dense bf16 peak
/// (`DAGMATH_PEAK_TFLOPS`, default 989 for an H100 SXM).
#[cfg(feature = "cuda")]
fn cuda(o: &Opts, vocab: usize) {
    if let Err(e) = dagmath::train::device::probe_cuda() {
        println!("cuda: skipped ({e})");
        return;
    }
    let peak: f64 = std::env::var("DAGMATH_PEAK_TFLOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(989.0);
    let c = ModelConfig::preset("paper", vocab).unwrap();
    let opts = Opts {
        presets: vec![],
        batch: std::env::var("DAGMATH_CUDA_BATCH")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(16),
        seq: 2048,
        steps: o.steps,
        warmup: o.warmup,
    };
    let dev = burn::backend::cuda::CudaDevice::default();
    let secs = bench::<dagmath::train::device::CudaBf16Backend>(&c, &opts, &dev);
    let tps = (opts.batch * opts.seq) as f64 / secs;
    let mfu = tps * c.train_flops_per_token(opts.seq) / (peak * 1e12);
    println!(
        "cuda paper bf16: batch {} x seq {}: {tps:.0} tokens/s, MFU {:.1}% (peak {peak} TFLOP/s)",
        opts.batch,
        opts.seq,
        mfu * 100.0
    );
}
