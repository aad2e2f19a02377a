//! Rollout throughput: new tokens/s of batched sampling with the KV cache, against recomputing
//! the full sequence at every step (the same sampler, the same model), at 512 new tokens; on
//! the CPU, and on CUDA with `--features cuda` when a GPU is present.
//!
//! cargo run --release --example bench_rollout [-- --preset tiny --rows 8 --prompt 96 --new 512]

use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use dagmath::engine::model::ModelDecoder;
use dagmath::engine::{generate, Decoder, GenConfig, Request, Sampling, Stops};
use dagmath::model::{weights, ModelConfig, Qwen2};
use dagmath::template::TemplateSet;
use dagmath::tokenizer::Tokenizer;

struct Opts {
    preset: String,
    rows: usize,
    prompt: usize,
    new: usize,
    skip_recompute: bool,
}

fn parse() -> Opts {
    let mut o = Opts {
        preset: "tiny".into(),
        rows: 8,
        prompt: 96,
        new: 512,
        skip_recompute: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--skip-recompute" {
            o.skip_recompute = true;
            i += 1;
            continue;
        }
        let v = args.get(i + 1).expect("flag value");
        match args[i].as_str() {
            "--preset" => o.preset = v.clone(),
            "--rows" => o.rows = v.parse().expect("--rows N"),
            "--prompt" => o.prompt = v.parse().expect("--prompt N"),
            "--new" => o.new = v.parse().expect("--new N"),
            other => panic!("unknown flag {other}"),
        }
        i += 2;
    }
    o
}

/// The baseline: no cache, every step runs the model over each row's whole sequence.
struct Recompute<'m, B: Backend> {
    model: &'m Qwen2<B>,
    device: B::Device,
    rows: Vec<Vec<u32>>,
}

impl<B: Backend> Recompute<'_, B> {
    fn run(&self, out: &mut Vec<f32>) {
        // Rows of one prompt have equal lengths here, so no padding is needed.
        let (b, t) = (self.rows.len(), self.rows[0].len());
        let ids: Vec<i64> = self.rows.iter().flatten().map(|&x| x as i64).collect();
        let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [b, t]), &self.device);
        let logits = self.model.forward(tokens).narrow(1, t - 1, 1);
        out.clear();
        out.extend(logits.into_data().convert::<f32>().iter::<f32>());
    }
}

impl<B: Backend> Decoder for Recompute<'_, B> {
    fn vocab_size(&self) -> usize {
        self.model.config_dims().0
    }
    fn prefill(&mut self, prompts: &[&[u32]], _capacity: usize, out: &mut Vec<f32>) {
        self.rows = prompts.iter().map(|p| p.to_vec()).collect();
        self.run(out);
    }
    fn select(&mut self, rows: &[usize]) {
        self.rows = rows.iter().map(|&r| self.rows[r].clone()).collect();
    }
    fn step(&mut self, tokens: &[u32], out: &mut Vec<f32>) {
        for (r, &t) in self.rows.iter_mut().zip(tokens) {
            r.push(t);
        }
        self.run(out);
    }
}

/// New tokens per second of `dec` generating `o.new` tokens for `o.rows` samples of one prompt.
fn rate(dec: &mut impl Decoder, o: &Opts, vocab: usize) -> (f64, usize) {
    let prompt: Vec<u32> = (0..o.prompt).map(|i| (i * 31 % vocab) as u32).collect();
    let req = [Request {
        prompt: &prompt,
        key: 1,
        samples: o.rows,
    }];
    let cfg = GenConfig {
        sampling: Sampling {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
        },
        max_new_tokens: o.new,
        seed: 0,
        batch_rows: o.rows,
        decoder: Default::default(),
    };
    // No stop rule: every row runs to the full length, so both sides do the same work.
    let start = Instant::now();
    let out = generate(dec, &req, &cfg, &Stops::default(), |_| {});
    let secs = start.elapsed().as_secs_f64();
    let n: usize = out[0].iter().map(|c| c.tokens.len()).sum();
    (n as f64 / secs, n)
}

fn side_by_side<B: Backend>(label: &str, c: &ModelConfig, o: &Opts, device: &B::Device) {
    let model: Qwen2<B> = weights::to_model(c, &weights::init(c, 0), device).unwrap();
    let (cached, n) = rate(&mut ModelDecoder::new(&model, device), o, c.vocab_size);
    println!(
        "{label} {}: {} rows x {} new tokens after a {}-token prompt",
        o.preset, o.rows, o.new, o.prompt
    );
    println!("  KV cache:   {cached:>10.1} new tokens/s ({n} tokens)");
    if o.skip_recompute {
        return;
    }
    let mut re = Recompute {
        model: &model,
        device: device.clone(),
        rows: Vec::new(),
    };
    let (full, _) = rate(&mut re, o, c.vocab_size);
    println!("  recompute:  {full:>10.1} new tokens/s");
    println!("  speed-up:   {:>10.1}x", cached / full);
}

fn main() {
    dagmath::train::device::tune_allocator();
    let o = parse();
    let vocab = Tokenizer::domain(&TemplateSet::builtin()).vocab_size();
    let c = ModelConfig::preset(&o.preset, vocab).expect("preset tiny|small|paper");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("bench_rollout: CPU ndarray f32, {threads} threads");
    let dev = dagmath::train::device::cpu_device();
    side_by_side::<dagmath::train::device::CpuInference>("cpu", &c, &o, &dev);
    #[cfg(feature = "cuda")]
    cuda(&o, vocab);
}

#[cfg(feature = "cuda")]
fn cuda(o: &Opts, vocab: usize) {
    if let Err(e) = dagmath::train::device::probe_cuda() {
        println!("cuda: skipped ({e})");
        return;
    }
    let dev = burn::backend::cuda::CudaDevice::default();
    for preset in ["tiny", "paper"] {
        let c = ModelConfig::preset(preset, vocab).unwrap();
        let o = Opts {
            preset: preset.into(),
            rows: 64,
            prompt: o.prompt,
            new: o.new,
            skip_recompute: o.skip_recompute,
        };
        side_by_side::<burn::backend::Cuda<f32>>("cuda f32", &c, &o, &dev);
    }
}
