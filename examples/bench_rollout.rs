//! Rollout throughput: new tokens/s of the host decoder (the CPU default) and of the burn
//! decoder on the same model and prompts, in interleaved rounds with medians and the ratio;
//! then, as before, the burn decoder's KV cache against recomputing the whole sequence.
//!
//! The host-vs-burn workload is the eval setting of issue 13: 40 prompts of zoo problems (op
//! 2-10, forward and reverse) × 8 samples, T = 0.7, ≤ 320 new tokens, stop at `</answer>`, 64 rows
//! a batch, `tiny` and `small` with random weights (which rarely stop, so rows run to the
//! limit). The burn decoder, ~20× slower, gets the first 8 prompts (one batch of 64 rows).
//! When `DAGMATH_PYTHON` names a Python with torch and transformers (`examples/setup_torch.sh`),
//! transformers' `generate` runs on the same model exported to a Hugging Face folder, on the
//! first 2 prompts (`examples/bench_rollout_hf.py`: one call per prompt, 8 samples each; at
//! ~100-200 new tokens/s more would take minutes a round), in the same rounds.
//!
//! cargo run --release --example bench_rollout [-- --rounds 3 --preset tiny --rows 8 --prompt 96 --new 512 --skip-recompute]

use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use dagmath::composer::{compose_seeded, Mode};
use dagmath::engine::model::ModelDecoder;
use dagmath::engine::{generate, Decoder, GenConfig, Request, Sampling, Stops};
use dagmath::model::fused::HostDecoder;
use dagmath::model::{weights, ModelConfig, Qwen2};
use dagmath::render::Rendered;
use dagmath::template::TemplateSet;
use dagmath::tokenizer::Tokenizer;

#[derive(Debug)]
struct Opts {
    rounds: usize,
    preset: String,
    rows: usize,
    prompt: usize,
    new: usize,
    skip_recompute: bool,
    /// Only the CUDA measurements (for examples/gpu_check.sh).
    cuda_only: bool,
}

/// The flags; an error names the bad one (never a panic).
fn parse_args(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        rounds: 3,
        preset: "tiny".into(),
        rows: 8,
        prompt: 96,
        new: 512,
        skip_recompute: false,
        cuda_only: false,
    };
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--cuda-only" {
            o.cuda_only = true;
            i += 1;
            continue;
        }
        if args[i] == "--skip-recompute" {
            o.skip_recompute = true;
            i += 1;
            continue;
        }
        let flag = args[i].as_str();
        let known = ["--rounds", "--preset", "--rows", "--prompt", "--new"];
        if !known.contains(&flag) {
            return Err(format!(
                "unknown flag {flag:?} (--rounds, --preset, --rows, --prompt, --new, --skip-recompute, --cuda-only)"
            ));
        }
        let Some(v) = args.get(i + 1) else {
            return Err(format!("{flag} needs a value"));
        };
        let count = |min: usize| match v.parse::<usize>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(format!("{flag} takes a whole number ≥ {min}, got {v:?}")),
        };
        match flag {
            "--rounds" => o.rounds = count(1)?,
            "--preset" => o.preset = v.clone(),
            "--rows" => o.rows = count(1)?,
            "--prompt" => o.prompt = count(1)?,
            "--new" => o.new = count(1)?,
            _ => unreachable!("checked above"),
        }
        i += 2;
    }
    if ModelConfig::preset(&o.preset, 1).is_none() {
        return Err(format!(
            "unknown preset {:?} in --preset (tiny, small, paper)",
            o.preset
        ));
    }
    Ok(o)
}

fn parse() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).collect();
    parse_args(&args).unwrap_or_else(|e| fail(&e))
}

/// Bad flags exit 2 with a message, as `bench_train` does (never a panic).
fn fail(msg: &str) -> ! {
    eprintln!("bench_rollout: {msg}");
    std::process::exit(2)
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

/// New tokens/s of `dec` on `prompts` × `samples` at the eval setting.
fn eval_rate(dec: &mut dyn Decoder, prompts: &[Vec<u32>], samples: usize, stops: &Stops) -> f64 {
    let reqs: Vec<Request> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| Request {
            prompt: p,
            key: i as u64,
            samples,
        })
        .collect();
    let cfg = GenConfig {
        sampling: Sampling {
            temperature: 0.7,
            top_k: 0,
            top_p: 1.0,
        },
        max_new_tokens: 320,
        seed: 0,
        batch_rows: 64,
        decoder: Default::default(),
    };
    let start = Instant::now();
    let out = generate(dec, &reqs, &cfg, stops, |_| {});
    let secs = start.elapsed().as_secs_f64();
    let n: usize = out.iter().flatten().map(|c| c.tokens.len()).sum();
    n as f64 / secs
}

/// transformers' `generate` on `c` with weights `w` (exported to a temporary folder), on
/// `prompts` × 8 samples at the eval setting: new tokens/s, or why it could not run.
fn transformers_rate(
    python: &std::ffi::OsStr,
    c: &ModelConfig,
    w: &dagmath::model::Weights,
    tok: &Tokenizer,
    prompts: &[Vec<u32>],
    stops: &Stops,
) -> Result<f64, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let export = dir.path().join("model");
    let eos = tok.token_id("[EOS]").ok_or("no [EOS] token")?;
    dagmath::model::hf::export(&export, c, w, tok.json(), 0, eos).map_err(|e| e.to_string())?;
    let spec = serde_json::json!({
        "prompts": prompts,
        "samples": 8,
        "max_new_tokens": 320,
        "temperature": 0.7,
        "stop": stops.sequences[0],
        "eos": eos,
    });
    let spec_path = dir.path().join("prompts.json");
    std::fs::write(&spec_path, spec.to_string()).map_err(|e| e.to_string())?;
    let out = std::process::Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/bench_rollout_hf.py"
        ))
        .arg(&export)
        .arg(&spec_path)
        .output()
        .map_err(|e| format!("{}: {e}", python.to_string_lossy()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim().lines().last().unwrap_or(""))
        .map_err(|e| format!("{e}: {line}"))?;
    v["tokens_per_s"]
        .as_f64()
        .ok_or_else(|| format!("no tokens_per_s in {line}"))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Host decoder against burn decoder, interleaved rounds.
fn host_vs_burn(tok: &Tokenizer, rounds: usize) {
    let set = TemplateSet::builtin();
    let zoo = set.get("zoo").unwrap();
    let prompts: Vec<Vec<u32>> = (0..40u64)
        .map(|i| {
            let mode = if i % 2 == 0 {
                Mode::Forward
            } else {
                Mode::Reverse
            };
            let p = compose_seeded(zoo, 2 + (i % 9) as u32, mode, 1000 + i).unwrap();
            tok.encode(&Rendered::of(zoo, &p).prompt).unwrap()
        })
        .collect();
    let mean_len = prompts.iter().map(|p| p.len()).sum::<usize>() as f64 / 40.0;
    let stops = dagmath::engine::stops(tok).unwrap();
    let dev = dagmath::train::device::cpu_device();
    let python = std::env::var_os("DAGMATH_PYTHON");
    if python.is_none() {
        println!("DAGMATH_PYTHON not set: transformers' generate is not measured");
    }
    for preset in ["tiny", "small"] {
        let c = ModelConfig::preset(preset, tok.vocab_size()).unwrap();
        let init = weights::init(&c, 0);
        let model: Qwen2<dagmath::train::device::CpuInference> =
            weights::to_model(&c, &init, &dev).unwrap();
        let (mut host, mut burn, mut hf) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            host.push(eval_rate(
                &mut HostDecoder::new(&model),
                &prompts,
                8,
                &stops,
            ));
            burn.push(eval_rate(
                &mut ModelDecoder::new(&model, &dev),
                &prompts[..8],
                8,
                &stops,
            ));
            if let Some(py) = &python {
                match transformers_rate(py, &c, &init, tok, &prompts[..2], &stops) {
                    Ok(r) => hf.push(r),
                    Err(e) => println!("transformers: not measured ({})", e.trim()),
                }
            }
        }
        let (h, b) = (median(&mut host), median(&mut burn));
        println!(
            "{preset}: 40 prompts (mean {mean_len:.0} tokens) x 8 samples, T 0.7, <= 320 new, 64 rows, \
             {rounds} rounds: host decoder {h:.0} new tokens/s (rounds {host:.0?}), burn decoder \
             {b:.0} (8 prompts; rounds {burn:.0?}), host/burn {:.1}x",
            h / b
        );
        if !hf.is_empty() {
            let t = median(&mut hf);
            println!(
                "{preset}: transformers generate {t:.0} new tokens/s (2 prompts x 8 samples, one \
                 call per prompt; rounds {hf:.0?}), host/transformers {:.1}x",
                h / t
            );
        }
    }
}

fn main() {
    dagmath::train::device::tune_allocator();
    let o = parse();
    let tok = Tokenizer::domain(&TemplateSet::builtin());
    let vocab = tok.vocab_size();
    if o.cuda_only {
        #[cfg(feature = "cuda")]
        cuda(&o, vocab);
        return;
    }
    host_vs_burn(&tok, o.rounds);
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
            rounds: o.rounds,
            preset: preset.into(),
            rows: 64,
            prompt: o.prompt,
            new: o.new,
            skip_recompute: o.skip_recompute,
            cuda_only: o.cuda_only,
        };
        side_by_side::<burn::backend::Cuda<f32>>("cuda f32", &c, &o, &dev);
    }
}

#[cfg(test)]
mod tests {
    use super::parse_args;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    // Issue 15, row 23: a missing or unknown flag was a panic (`expect("flag value")`).
    #[test]
    fn bench_rollout_missing_or_unknown_flag_is_an_error_not_a_panic() {
        assert!(parse_args(&args(&["--rows"]))
            .unwrap_err()
            .contains("--rows needs a value"));
        assert!(parse_args(&args(&["--bogus", "1"]))
            .unwrap_err()
            .contains("unknown flag"));
        assert!(parse_args(&args(&["--rows", "x"]))
            .unwrap_err()
            .contains("whole number"));
        assert!(parse_args(&args(&["--preset", "huge"]))
            .unwrap_err()
            .contains("unknown preset"));
        assert_eq!(parse_args(&args(&["--rows", "3"])).unwrap().rows, 3);
    }
}
