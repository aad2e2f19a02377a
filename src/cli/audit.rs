//! `dagmath audit`: verify model completions (or a dataset's own gold traces) against gold
//! problems; write verdicts.parquet and summary.json; print pass@k and a failure taxonomy.

use std::path::PathBuf;

use anyhow::anyhow;
use indicatif::{ProgressBar, ProgressStyle};

use dagmath::eval::audit::stream::{audit_files, Request};
use dagmath::eval::audit::{AuditConfig, Summary};
use dagmath::trace::Rule;

use super::CliError;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RuleArg {
    /// Any arithmetic error, unsupported claim or extra node fails (the default).
    Strict,
    /// The reference's semantics: extra nodes tolerated, intermediates unchecked.
    Interplay,
}

/// Verify sampled completions against gold problems and report pass@k, failures and rewards.
///
/// Gold is a dagmath dataset directory, or a reference-format JSONL file (records with
/// problem, question, solution, op, template and optionally id; the gold graph is read from the
/// gold trace; without an id a record is named by its 0-based record index). Predictions are
/// JSONL or Parquet with `id` and `completion` (or `response` / `output`), any number of
/// samples per id. Completions are read in the gold dataset's trace format (its manifest's
/// `trace_format`: full, terse, long or answer_only; reference JSONL is full); an answer_only
/// audit checks answers only and says so (`outcome_only` in summary.json).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  dagmath audit --gold out/quickstart --self\n  \
dagmath audit --gold out/quickstart --predictions samples.jsonl --rule strict --out out/audit"
)]
pub struct Args {
    /// A dagmath dataset directory or a reference-format .jsonl file.
    #[arg(long, value_name = "PATH")]
    gold: PathBuf,
    /// Completions to verify (.jsonl or .parquet).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "self_check",
        conflicts_with = "self_check"
    )]
    predictions: Option<PathBuf>,
    /// Verify the gold data's own traces instead (every one must pass).
    #[arg(long = "self")]
    self_check: bool,
    /// Verification rule.
    #[arg(long, value_enum, default_value = "strict")]
    rule: RuleArg,
    /// Outcome weight of the mixed and penalty rewards (0.2 = 0.2·outcome + 0.8·process).
    #[arg(long, default_value_t = 0.2)]
    alpha: f64,
    /// Directory for verdicts.parquet and summary.json.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Worker threads; 0 uses every core; at most 4 per core.
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

pub fn run(a: Args) -> Result<(), CliError> {
    if !(0.0..=1.0).contains(&a.alpha) {
        return Err(CliError::usage(anyhow!(
            "--alpha: {} must lie in [0, 1]",
            a.alpha
        )));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(super::check_threads(a.threads)?)
        .build()
        .map_err(|e| anyhow!("cannot create thread pool: {e}"))?;
    let req = Request {
        gold: &a.gold,
        predictions: a.predictions.as_deref(),
        cfg: AuditConfig {
            rule: match a.rule {
                RuleArg::Strict => Rule::Strict,
                RuleArg::Interplay => Rule::Interplay,
            },
            alpha: a.alpha,
            // Replaced by the gold's trace format (its manifest's) when the gold is read.
            format: Default::default(),
        },
        out: a.out.as_deref(),
    };
    let started = std::time::Instant::now();
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} verifying {human_pos}  {per_sec}")
            .expect("valid template"),
    );
    let summary = pool
        .install(|| audit_files(&req, &|n| bar.inc(n)))
        .map_err(|e| super::blame(e.is_users(), e))?;
    bar.finish_and_clear();
    print_summary(&summary, started.elapsed().as_secs_f64());
    if let Some(out) = &a.out {
        println!(
            "wrote {} and {}",
            out.join("verdicts.parquet").display(),
            out.join("summary.json").display()
        );
    }
    if a.self_check && summary.verified_correct_rate < 1.0 {
        return Err(CliError::from(anyhow!(
            "--self: {} of {} gold traces do not verify",
            summary.samples as u64 - summary.taxonomy.verified_correct,
            summary.samples
        )));
    }
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

pub fn print_summary(s: &Summary, secs: f64) {
    println!(
        "verified {} samples of {} problems ({}..{} per problem) under rule {} in {:.2}s ({:.0} samples/s)",
        s.samples,
        s.problems,
        s.samples_per_problem.0,
        s.samples_per_problem.1,
        s.rule,
        secs,
        s.samples as f64 / secs.max(1e-9)
    );
    if s.outcome_only {
        println!(
            "  trace format {}: OUTCOME ONLY, no process checked (process acc and every reward equal the outcome)",
            s.trace_format
        );
    } else if !s.trace_format.is_full() {
        println!("  trace format {}", s.trace_format);
    }
    println!(
        "  verified correct {}%   answer correct {}%   mean process acc {}%",
        pct(s.verified_correct_rate),
        pct(s.answer_correct_rate),
        pct(s.mean_process_acc)
    );
    println!(
        "  reward hacking (answer right, process wrong): {}% of samples, {}% of right answers",
        pct(s.reward_hacking_rate),
        pct(s.reward_hacking_given_right_answer)
    );
    let rewards: Vec<String> = s
        .mean_rewards
        .iter()
        .map(|(k, v)| format!("{k} {v:.3}"))
        .collect();
    println!("  mean rewards: {}", rewards.join(", "));
    let t = &s.taxonomy;
    println!("\nfailure taxonomy (samples with at least one):");
    for (name, n) in [
        ("wrong answer", t.wrong_answer),
        ("no answer", t.no_answer),
        ("missing node", t.with_missing_nodes),
        ("wrong value", t.with_wrong_values),
        ("wrong parents", t.with_wrong_parents),
        ("extra node", t.with_extra_nodes),
        ("arithmetic error", t.with_arithmetic_errors),
        ("flawed step", t.with_flawed_steps),
        ("any issue", t.with_any_issue),
    ] {
        println!(
            "  {name:<18} {n:>9}  {:>5}%",
            pct(n as f64 / t.samples.max(1) as f64)
        );
    }
    println!("\npass@k (verified / answer-only, %):");
    let only_split = s
        .pass_at_k
        .iter()
        .filter(|r| r.op.is_none() && r.template.is_none() && r.mode.is_none());
    for r in only_split {
        println!(
            "  {:<12} k={:<4} {:>6} / {:>6}   ({} problems)",
            r.split.as_deref().unwrap_or("all"),
            r.k,
            pct(r.verified),
            pct(r.answer),
            r.problems
        );
    }
    let ks: Vec<u32> = {
        let mut k: Vec<u32> = s.pass_at_k.iter().map(|r| r.k).collect();
        k.sort_unstable();
        k.dedup();
        k
    };
    if let (Some(&k1), Some(&kn)) = (ks.first(), ks.last()) {
        println!("\nper split and op: verified pass@{k1} / pass@{kn} (%):");
        for r in s
            .pass_at_k
            .iter()
            .filter(|r| r.op.is_some() && r.template.is_none() && r.mode.is_none() && r.k == k1)
        {
            let last = s
                .pass_at_k
                .iter()
                .find(|x| {
                    x.split == r.split
                        && x.op == r.op
                        && x.template.is_none()
                        && x.mode.is_none()
                        && x.k == kn
                })
                .map(|x| x.verified)
                .unwrap_or(f64::NAN);
            println!(
                "  {:<12} op {:>2}: {:>6} / {:>6}",
                r.split.as_deref().unwrap_or(""),
                r.op.unwrap_or(0),
                pct(r.verified),
                pct(last)
            );
        }
    }
}
