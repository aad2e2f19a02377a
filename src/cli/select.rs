//! `dagmath select`: keep the pool problems whose pass rate under a checkpoint lies in a band
//! (the paper's "RL data at the edge of competence"), written as a dagmath dataset that
//! `dagmath train rl` can use as its pool.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use anyhow::anyhow;

use dagmath::dataset::reader::Dataset;
use dagmath::dataset::selection::{self, SelectionBuilder, SelectionRow};
use dagmath::dataset::shard::write_table_atomic;
use dagmath::dataset::subset::write_subset;
use dagmath::eval::audit::AuditConfig;
use dagmath::eval::run::{load_problems, verify};
use dagmath::trace::Rule;

use super::eval::{load_checkpoint, run_error, sample_all, GenArgs};
use super::export::prepare_out;
use super::CliError;

/// Keep the problems whose pass rate under a checkpoint lies in a band (edge of competence).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  dagmath select --checkpoint out/micro/pretrain --pool out/micro \
--splits rl_pool --samples 8 --band 0.1-0.6 --out out/micro/edge"
)]
pub struct Args {
    /// Checkpoint folder (or a run folder: its latest checkpoint).
    #[arg(long, value_name = "CKPT")]
    checkpoint: PathBuf,
    /// The dagmath dataset holding the candidate problems.
    #[arg(long, value_name = "DIR")]
    pool: PathBuf,
    /// Splits of the pool to select from, comma-separated (default: every split).
    #[arg(long, value_delimiter = ',')]
    splits: Vec<String>,
    /// Samples per problem used to estimate its pass rate.
    #[arg(long, default_value_t = 8)]
    samples: usize,
    /// Keep problems with LO ≤ pass rate ≤ HI, e.g. 0.1-0.6.
    #[arg(long, value_name = "LO-HI")]
    band: String,
    /// Pass means the trace verifies (strict, the default) or only the answer is right.
    #[arg(long, value_parser = ["verified", "answer"], default_value = "verified")]
    pass: String,
    #[command(flatten)]
    gen: GenArgs,
    /// At most this many problems per split are tried, spread evenly over ops.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Output dataset folder (plus selection.parquet with every problem's pass rate).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Replace a non-empty --out folder.
    #[arg(long)]
    force: bool,
}

fn parse_band(s: &str) -> Result<(f64, f64), CliError> {
    let bad = || {
        CliError::usage(anyhow!(
            "--band {s}: expected LO-HI with 0 ≤ LO ≤ HI ≤ 1, e.g. 0.1-0.6"
        ))
    };
    let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
    let (lo, hi): (f64, f64) = (
        lo.trim().parse().map_err(|_| bad())?,
        hi.trim().parse().map_err(|_| bad())?,
    );
    if !(0.0..=1.0).contains(&lo) || !(0.0..=1.0).contains(&hi) || lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

pub fn run(a: Args) -> Result<(), CliError> {
    let (lo, hi) = parse_band(&a.band)?;
    let gen = a.gen.config()?;
    if a.samples == 0 {
        return Err(CliError::usage(anyhow!("--samples must be ≥ 1")));
    }
    let ds = Dataset::open(&a.pool).map_err(CliError::usage)?;
    let splits = if a.splits.is_empty() {
        ds.manifest.splits.iter().map(|s| s.name.clone()).collect()
    } else {
        a.splits.clone()
    };
    let (loaded, tok) = load_checkpoint(&a.checkpoint)?;
    let (problems, format) = load_problems(&a.pool, &splits, a.limit).map_err(run_error)?;
    prepare_out(&a.out, a.force, &["manifest.json", selection::FILE])?;
    let job = dagmath::eval::run::SampleJob::new(&loaded, &tok, &problems, a.samples, &gen);
    let sampled = sample_all(&job, a.gen.device)?;
    let cfg = AuditConfig {
        rule: Rule::Strict,
        alpha: 0.2,
        format,
    };
    let (_, verdicts) = verify(&problems, &sampled, cfg).map_err(CliError::from)?;
    let mut passes = vec![0u32; problems.len()];
    for v in &verdicts {
        let ok = if a.pass == "answer" {
            v.answer_correct
        } else {
            v.verified_correct
        };
        passes[v.gold] += ok as u32;
    }
    let rate = |i: usize| passes[i] as f64 / a.samples as f64;
    let keep: HashSet<String> = (0..problems.len())
        .filter(|&i| (lo..=hi).contains(&rate(i)))
        .map(|i| problems[i].gold.id.clone())
        .collect();
    // Per op: problems tried, kept, mean pass rate.
    let mut by_op: BTreeMap<u32, (usize, usize, f64)> = BTreeMap::new();
    for (i, p) in problems.iter().enumerate() {
        let e = by_op.entry(p.gold.op).or_default();
        e.0 += 1;
        e.1 += keep.contains(&p.gold.id) as usize;
        e.2 += rate(i);
    }
    println!(
        "pass rate ({}) of {} problems over {} samples each; band [{lo}, {hi}]:",
        a.pass,
        problems.len(),
        a.samples
    );
    for (op, (n, k, sum)) in &by_op {
        println!(
            "  op {op:>2}: {n:>5} tried  mean pass rate {:>5.1}%  kept {k:>5}",
            100.0 * sum / *n as f64
        );
    }
    if keep.is_empty() {
        return Err(CliError::from(anyhow!(
            "no problem has a pass rate in [{lo}, {hi}]; widen --band or use another checkpoint"
        )));
    }
    let provenance = serde_json::json!({
        "checkpoint": a.checkpoint.display().to_string(),
        "band": [lo, hi],
        "pass": a.pass,
        "samples": a.samples,
        "temperature": gen.sampling.temperature,
        "max_new_tokens": gen.max_new_tokens,
        "seed": gen.seed,
        "tried": problems.len(),
        "kept": keep.len(),
    });
    let counts = write_subset(&ds, &splits, &keep, &a.out, &provenance).map_err(CliError::from)?;
    let mut b = SelectionBuilder::new();
    for (i, p) in problems.iter().enumerate() {
        b.push(&SelectionRow {
            id: p.gold.id.as_str().into(),
            split: p.gold.split.as_str().into(),
            op: p.gold.op,
            pass_rate: rate(i),
        });
    }
    write_table_atomic(&a.out.join(selection::FILE), &b.finish())?;
    for (s, n) in counts {
        println!("kept {n} problems of split {s}");
    }
    println!("wrote dataset {} (and selection.parquet)", a.out.display());
    Ok(())
}
