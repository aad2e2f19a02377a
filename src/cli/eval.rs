//! `dagmath eval`: sample completions from a checkpoint for a dataset's problems, verify them,
//! and report unbiased pass@k (verified and answer-only) by split, op, template and mode, with
//! Parquet outputs, summary.json and plots.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use arrow::array::RecordBatch;
use indicatif::{ProgressBar, ProgressStyle};

use dagmath::dataset::samples::{SampleRow, SamplesBuilder};
use dagmath::dataset::shard::{write_atomic, write_table_atomic};
use dagmath::dataset::verdicts;
use dagmath::engine::{DecoderKind, Finish, GenConfig, Sampling};
use dagmath::eval::audit::{report_ks, summarize_at, AuditConfig};
use dagmath::eval::plot;
use dagmath::eval::run::{self, verify, EvalProblem, RunError, Sampled};
use dagmath::tokenizer::Tokenizer;
use dagmath::trace::Rule;
use dagmath::train::checkpoint;

use super::audit::{print_summary, RuleArg};
use super::export::{prepare_out, resolve_checkpoint};
use super::CliError;

/// Sample completions from a checkpoint, verify them, and report pass@k.
///
/// Completions are verified in the dataset's trace format (its manifest's `trace_format`);
/// with answer_only only answers are checked, and summary.json says so (`outcome_only`).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  dagmath eval --checkpoint out/pretrain --data out/quickstart \
--splits test_id,ood_edge --samples 16 --out out/eval"
)]
pub struct Args {
    /// Checkpoint folder (or a run folder: its latest checkpoint; or a Hugging Face folder).
    #[arg(long, value_name = "CKPT")]
    checkpoint: PathBuf,
    /// A dagmath dataset directory.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Splits to evaluate, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "test_id,ood_edge,ood_hard"
    )]
    splits: Vec<String>,
    #[command(flatten)]
    gen: GenArgs,
    /// Samples per problem (N of pass@k; every k ≤ N is reported).
    #[arg(long, default_value_t = 128)]
    samples: usize,
    /// At most this many problems per split, spread evenly over its ops (default: all).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Verification rule.
    #[arg(long, value_enum, default_value = "strict")]
    rule: RuleArg,
    /// Output folder: samples.parquet, verdicts.parquet, summary.json, passk_vs_op.svg,
    /// passk_vs_k.svg.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Replace a non-empty --out folder.
    #[arg(long)]
    force: bool,
}

/// Sampling flags shared by `eval` and `select`.
#[derive(Debug, Clone, clap::Args)]
pub struct GenArgs {
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f64,
    /// Nucleus sampling: keep the most likely tokens up to this probability mass (1: off).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    /// Keep only the k most likely tokens (0: off).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// New tokens per completion at most.
    #[arg(long, default_value_t = 1024)]
    pub max_new_tokens: usize,
    /// Sampling seed (each problem's samples are seeded by it, the problem id and the index).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Rows (problems × samples) decoded together.
    #[arg(long, default_value_t = 64)]
    pub batch_rows: usize,
    /// Device to sample on (cuda needs the `cuda` build and a driver).
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: super::DeviceArg,
    /// Decoder: auto (the host decoder on the CPU, burn's on CUDA) | host | burn.
    #[arg(long, default_value = "auto", value_parser = ["auto", "host", "burn"])]
    pub decoder: String,
}

impl GenArgs {
    pub fn config(&self) -> Result<GenConfig, CliError> {
        let g = GenConfig {
            sampling: Sampling {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
            },
            max_new_tokens: self.max_new_tokens,
            seed: self.seed,
            batch_rows: self.batch_rows.max(1),
            decoder: match self.decoder.as_str() {
                "host" => DecoderKind::Host,
                "burn" => DecoderKind::Burn,
                _ => DecoderKind::Auto,
            },
        };
        g.sampling
            .validate()
            .map_err(|e| CliError::usage(anyhow!("--{e}")))?;
        if g.max_new_tokens == 0 {
            return Err(CliError::usage(anyhow!("--max-new-tokens must be ≥ 1")));
        }
        Ok(g)
    }
}

/// Loads a checkpoint's weights and tokenizer (`path` may be a run folder: its latest).
pub fn load_checkpoint(path: &Path) -> Result<(checkpoint::Loaded, Tokenizer), CliError> {
    let dir = resolve_checkpoint(path)?;
    run::load_checkpoint(&dir).map_err(run_error)
}

/// The one rule for exit codes, applied to an evaluation run: a dataset, split, checkpoint,
/// tokenizer or device the user named is at fault (exit 2); a sampling failure is the
/// system's (exit 1).
pub fn run_error(e: RunError) -> CliError {
    match e {
        RunError::Checkpoint(c) => super::checkpoint_error(c),
        RunError::Sample(_) => CliError::from(e),
        RunError::UnknownSplit { .. } => CliError::usage(anyhow!("--splits: {e}")),
        _ => CliError::usage(e),
    }
}

/// Runs `job` on the chosen device with a progress bar; the sizes the flags ask for are
/// checked against memory first.
pub fn sample_all(
    job: &run::SampleJob<'_>,
    device: super::DeviceArg,
) -> Result<Vec<Vec<Sampled>>, CliError> {
    check_sizes(job)?;
    let bar = ProgressBar::new((job.problems.len() * job.samples) as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} sampling [{bar:30}] {human_pos}/{human_len} completions  {per_sec}  eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let out = run::sample_all(job, device.into(), |n| bar.inc(n as u64));
    bar.finish_and_clear();
    out.map_err(run_error)
}

/// Sizes against memory before sampling: every completion is kept (a few dozen bytes each at
/// the least), and a batch's KV cache holds every layer's keys and values for the longest
/// prompt plus the new tokens.
fn check_sizes(job: &run::SampleJob<'_>) -> Result<(), CliError> {
    let run::SampleJob {
        loaded,
        problems,
        samples,
        gen,
        ..
    } = *job;
    let w = |x: usize| x as u128;
    if u32::try_from(samples).is_err() {
        return Err(CliError::usage(anyhow!("--samples: {samples} is too many")));
    }
    dagmath::limits::check_fits(
        &format!("--samples {samples} for {} problems", problems.len()),
        w(problems.len())
            .checked_mul(w(samples))
            .and_then(|n| n.checked_mul(64)),
    )
    .map_err(|e| CliError::usage(anyhow!(e)))?;
    let m = &loaded.model;
    // About four bytes of prompt per token: an estimate on the low side, this check is for
    // absurd sizes, not a tight budget.
    let longest = problems
        .iter()
        .map(|p| p.prompt.len() / 4)
        .max()
        .unwrap_or(0);
    dagmath::limits::check_fits(
        &format!(
            "--batch-rows {} × (--max-new-tokens {} + the prompt)",
            gen.batch_rows, gen.max_new_tokens
        ),
        w(gen.batch_rows)
            .checked_mul(w(gen.max_new_tokens).saturating_add(w(longest)))
            .and_then(|n| n.checked_mul(w(m.num_hidden_layers)))
            .and_then(|n| n.checked_mul(w(m.num_key_value_heads) * w(m.head_dim())))
            .and_then(|n| n.checked_mul(2 * 4)),
    )
    .map_err(|e| CliError::usage(anyhow!(e)))
}

fn finish_name(f: Finish) -> &'static str {
    match f {
        Finish::Stop => "stop",
        Finish::Eos => "eos",
        Finish::Length => "length",
    }
}

/// samples.parquet: one row per completion.
fn samples_batch(problems: &[EvalProblem], sampled: &[Vec<Sampled>]) -> RecordBatch {
    let mut b = SamplesBuilder::new();
    for (p, s) in problems.iter().zip(sampled) {
        for (i, c) in s.iter().enumerate() {
            b.push(&SampleRow {
                id: p.gold.id.as_str().into(),
                split: p.gold.split.as_str().into(),
                op: p.gold.op,
                template: p.gold.template.as_str().into(),
                sample: i as u32,
                completion: c.text.as_str().into(),
                new_tokens: c.tokens.len() as u32,
                finish: finish_name(c.finish).into(),
            });
        }
    }
    b.finish()
}

pub fn run(a: Args) -> Result<(), CliError> {
    let gen = a.gen.config()?;
    if a.samples == 0 {
        return Err(CliError::usage(anyhow!("--samples must be ≥ 1")));
    }
    let (loaded, tok) = load_checkpoint(&a.checkpoint)?;
    let (problems, format) = run::load_problems(&a.data, &a.splits, a.limit).map_err(run_error)?;
    prepare_out(&a.out, a.force, &["summary.json"])?;
    let started = std::time::Instant::now();
    let job = run::SampleJob::new(&loaded, &tok, &problems, a.samples, &gen);
    let sampled = sample_all(&job, a.gen.device)?;
    std::fs::create_dir_all(&a.out).map_err(|e| anyhow!("{}: {e}", a.out.display()))?;
    let secs = started.elapsed().as_secs_f64();
    let new_tokens: usize = sampled.iter().flatten().map(|c| c.tokens.len()).sum();
    let truncated = sampled
        .iter()
        .flatten()
        .filter(|c| c.finish == Finish::Length)
        .count();
    println!(
        "sampled {} completions of {} problems in {secs:.1}s ({:.0} new tokens/s, {truncated} truncated at {} tokens)",
        problems.len() * a.samples,
        problems.len(),
        new_tokens as f64 / secs.max(1e-9),
        gen.max_new_tokens
    );
    let cfg = AuditConfig {
        rule: match a.rule {
            RuleArg::Strict => Rule::Strict,
            RuleArg::Interplay => Rule::Interplay,
        },
        alpha: 0.2,
        format,
    };
    let (gold, verdicts) = verify(&problems, &sampled, cfg).map_err(CliError::from)?;
    // summary.json has pass@k for every k ≤ N; the printout and the per-op plot use powers of two.
    let every_k: Vec<u32> = (1..=a.samples as u32).collect();
    let summary = summarize_at(&gold, &verdicts, cfg, Some(&every_k));
    let shown = report_ks(a.samples as u32);
    let mut brief = summary.clone();
    brief.pass_at_k.retain(|r| shown.contains(&r.k));
    print_summary(&brief, secs);
    write_table_atomic(
        &a.out.join(dagmath::dataset::samples::FILE),
        &samples_batch(&problems, &sampled),
    )?;
    write_table_atomic(
        &a.out.join("verdicts.parquet"),
        &verdicts::batch(gold.as_slice(), &verdicts),
    )?;
    let mut json = serde_json::to_value(&summary).expect("summary serialises");
    json["eval"] = serde_json::json!({
        "checkpoint": a.checkpoint.display().to_string(),
        "data": a.data.display().to_string(),
        "splits": a.splits,
        "samples": a.samples,
        "temperature": gen.sampling.temperature,
        "top_p": gen.sampling.top_p,
        "top_k": gen.sampling.top_k,
        "max_new_tokens": gen.max_new_tokens,
        "seed": gen.seed,
        "new_tokens": new_tokens,
        "truncated": truncated,
    });
    let text = serde_json::to_string_pretty(&json).expect("json");
    write_atomic(&a.out.join("summary.json"), format!("{text}\n").as_bytes())?;
    let title = format!(
        "pass@k vs op ({} samples, T = {})",
        a.samples, gen.sampling.temperature
    );
    plot::passk_vs_op(&brief.pass_at_k, &a.out.join("passk_vs_op.svg"), &title)?;
    plot::passk_vs_k(
        &summary.pass_at_k,
        &a.out.join("passk_vs_k.svg"),
        "pass@k vs k",
    )?;
    println!(
        "wrote {}/{{samples,verdicts}}.parquet, summary.json, passk_vs_op.svg, passk_vs_k.svg",
        a.out.display()
    );
    Ok(())
}
