//! Training throughput: tokens/s of forward + backward + AdamW step for the `tiny` and `small`
//! presets at sequence length 512 on the CPU, beside the same model in PyTorch (transformers'
//! Qwen2ForCausalLM, run by examples/bench_train_torch.py) as a ratio; with `--features cuda`
//! and a GPU, the `paper` preset on CUDA with its MFU.
//!
//! cargo run --release --example bench_train [-- --steps N --rounds R --batch B --seq S
//!     --presets tiny,small]
//! PyTorch is found at $DAGMATH_PYTHON, else .venv-torch/bin/python (examples/setup_torch.sh).
//!
//! Shared machines drift by ±15% from minute to minute, so each preset is measured in `R`
//! rounds (default 3), each dagmath then PyTorch back to back; the table gives the median
//! tokens/s of each side, the median of the per-round ratios and their range.

use std::time::Instant;

use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use dagmath::model::{weights, ModelConfig, Qwen2};
use dagmath::template::TemplateSet;
use dagmath::tokenizer::Tokenizer;
use dagmath::train::optim::{clip_factor, AdamW, OptimConfig};
use dagmath::train::trainer::{autodiff_loss_and_grads, loss_and_grads};
use rand::{RngExt, SeedableRng};

struct Opts {
    steps: usize,
    warmup: usize,
    rounds: usize,
    batch: usize,
    seq: usize,
    presets: Vec<String>,
    /// Also time burn autodiff on the CPU (the path the fused step replaced).
    autodiff: bool,
}

fn parse() -> Opts {
    let mut o = Opts {
        steps: 8,
        warmup: 2,
        rounds: 3,
        batch: 8,
        seq: 512,
        presets: vec!["tiny".into(), "small".into()],
        autodiff: false,
    };
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--autodiff") {
        o.autodiff = true;
        args.remove(at);
    }
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let Some(v) = it.next() else {
            fail(&format!("{flag} needs a value"))
        };
        let count = |min: usize| match v.parse::<usize>() {
            Ok(n) if n >= min => n,
            _ => fail(&format!("{flag} takes a whole number ≥ {min}, got {v:?}")),
        };
        match flag.as_str() {
            "--steps" => o.steps = count(1),
            "--warmup" => o.warmup = count(0),
            "--rounds" => o.rounds = count(1),
            "--batch" => o.batch = count(1),
            "--seq" => o.seq = count(1),
            "--presets" => o.presets = v.split(',').map(String::from).collect(),
            other => fail(&format!(
                "unknown flag {other:?} (--steps, --warmup, --rounds, --batch, --seq, --presets, --autodiff)"
            )),
        }
    }
    if let Some(bad) = o
        .presets
        .iter()
        .find(|p| ModelConfig::preset(p, 1).is_none())
    {
        fail(&format!(
            "unknown preset {bad:?} in --presets (tiny, small, paper)"
        ));
    }
    o
}

fn fail(msg: &str) -> ! {
    eprintln!("bench_train: {msg}");
    std::process::exit(2)
}

type Step<B> = fn(&Qwen2<B>, &[u32], &[u32], usize, usize, f32) -> (f64, GradientsParams);

/// Median seconds per step of `steps` timed steps after `warmup`, each a forward, loss and
/// backward by `step`, the global-norm clip and an AdamW update.
fn bench<B: AutodiffBackend>(
    c: &ModelConfig,
    o: &Opts,
    device: &B::Device,
    step_fn: Step<B>,
) -> f64 {
    let mut model: Qwen2<B> = weights::to_model(c, &weights::init(c, 0), device).unwrap();
    let mut optim = AdamW::<B>::new(OptimConfig {
        lr: 1e-3,
        ..OptimConfig::default()
    });
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut times = Vec::new();
    for step in 0..o.warmup + o.steps {
        let rows: Vec<Vec<u32>> = (0..o.batch)
            .map(|_| {
                (0..=o.seq)
                    .map(|_| rng.random_range(0..c.vocab_size as u32))
                    .collect()
            })
            .collect();
        let x: Vec<u32> = rows.iter().flat_map(|r| r[..o.seq].to_vec()).collect();
        let y: Vec<u32> = rows.iter().flat_map(|r| r[1..].to_vec()).collect();
        let t0 = Instant::now();
        let (_, grads) = step_fn(&model, &x, &y, o.batch, o.seq, 1.0);
        let (clip, _) = clip_factor(&model, &grads, 1.0);
        model = optim.step(1e-3, model, grads, clip);
        // Force the step to finish (lazy backends) before stopping the clock.
        let _ = model.embed_tokens.weight.val().narrow(0, 0, 1).into_data();
        if step >= o.warmup {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    median(&mut times)
}

/// The middle value (the upper of the two middle ones for an even count).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
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
        "{:<7} {:>11} {:>15} {:>16} {:>8} {:>13} {:>17}",
        "preset",
        "params",
        "dagmath tok/s",
        "pytorch tok/s",
        "ratio",
        "ratio range",
        "burn autodiff"
    );
    type Cpu = dagmath::train::device::CpuBackend;
    let dev = dagmath::train::device::cpu_device();
    for preset in &o.presets {
        let c = ModelConfig::preset(preset, vocab).expect("a preset name");
        let tps = |secs: f64| (o.batch * o.seq) as f64 / secs;
        let (mut ours, mut theirs, mut ratios) = (vec![], vec![], vec![]);
        for _ in 0..o.rounds {
            let us = tps(bench::<Cpu>(&c, &o, &dev, loss_and_grads::<Cpu>));
            ours.push(us);
            if let Some(them) = torch(preset, vocab, &o) {
                theirs.push(them);
                ratios.push(us / them);
            }
        }
        let ours = median(&mut ours);
        let (t, r, range) = if theirs.is_empty() {
            ("n/a".into(), "n/a".into(), "n/a".into())
        } else {
            let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = ratios.iter().copied().fold(0.0, f64::max);
            (
                format!("{:.0}", median(&mut theirs)),
                format!("{:.2}x", median(&mut ratios)),
                format!("{lo:.2}-{hi:.2}x"),
            )
        };
        let autodiff = if o.autodiff {
            format!(
                "{:.0}",
                tps(bench::<Cpu>(&c, &o, &dev, autodiff_loss_and_grads::<Cpu>))
            )
        } else {
            "(--autodiff)".into()
        };
        println!(
            "{:<7} {:>11} {:>15.0} {:>16} {:>8} {:>13} {:>17}",
            preset,
            c.n_params(),
            ours,
            t,
            r,
            range,
            autodiff
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
        autodiff: false,
        rounds: 1,
        steps: o.steps,
        warmup: o.warmup,
    };
    let dev = burn::backend::cuda::CudaDevice::default();
    type Gpu = dagmath::train::device::CudaBf16Backend;
    let secs = bench::<Gpu>(&c, &opts, &dev, loss_and_grads::<Gpu>);
    let tps = (opts.batch * opts.seq) as f64 / secs;
    let mfu = tps * c.train_flops_per_token(opts.seq) / (peak * 1e12);
    println!(
        "cuda paper bf16: batch {} x seq {}: {tps:.0} tokens/s, MFU {:.1}% (peak {peak} TFLOP/s)",
        opts.batch,
        opts.seq,
        mfu * 100.0
    );
}
