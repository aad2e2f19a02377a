//! `dagmath train pretrain|midtrain|sft|rl`: one config, one start (fresh, `--from`, `--resume`),
//! one backend dispatch and one progress bar for every phase.

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use dagmath::train::checkpoint::PhaseRecord;
use dagmath::train::config::{DeviceKind, RlConfig};
use dagmath::train::rl::RlSummary;
use dagmath::train::trainer::SftMetrics;
use dagmath::train::{self, LmPhase, Observer, Phase, Row, Start, Summary, TrainConfig};

use super::CliError;

/// Train a Qwen2-style model on dagmath shards (pre-training, mid-training, SFT or GRPO).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    phase: Which,
}

#[derive(Debug, clap::Subcommand)]
enum Which {
    /// Pre-train from fresh weights (the config's [model] section and seed).
    Pretrain(PhaseArgs),
    /// Continue training a checkpoint on a new data mixture and schedule.
    Midtrain {
        #[command(flatten)]
        args: PhaseArgs,
        /// Checkpoint folder, Hugging Face Qwen2 folder, or a run folder (its latest
        /// checkpoint) to start from.
        #[arg(long, value_name = "CKPT", required_unless_present = "resume")]
        from: Option<PathBuf>,
    },
    /// Supervised fine-tuning from any checkpoint: the loss counts the completion only.
    ///
    /// The config is a pre-/mid-training config plus an optional `[sft]` section. Each row's
    /// prompt (everything through `<solution>`, encoded alone as RL and eval encode it) has
    /// weight 0, its completion and `[EOS]` weight 1, and the loss is the mean over the
    /// weighted tokens of the optimiser step, Σ w·nll / Σ w. `[sft] packing = "packed"` (the
    /// default) cuts the documents laid end to end into rows of `seq_len + 1` tokens, as
    /// pre-training does; `"padded"` puts one document per row, padded to the longest in the
    /// micro-batch, and skips (and counts, `skipped_docs`) documents longer than a row. The
    /// checkpoint records the phase as `sft`, so `train rl --from` it continues the compute
    /// record.
    Sft {
        #[command(flatten)]
        args: PhaseArgs,
        /// Checkpoint folder, Hugging Face Qwen2 folder, or a run folder (its latest
        /// checkpoint) to start from.
        #[arg(long, value_name = "CKPT", required_unless_present = "resume")]
        from: Option<PathBuf>,
    },
    /// GRPO with verifier rewards, starting from a checkpoint (the frozen KL reference).
    Rl {
        #[command(flatten)]
        args: PhaseArgs,
        /// Checkpoint folder (or a run folder: its latest checkpoint) to start from.
        #[arg(long, value_name = "CKPT", required_unless_present = "resume")]
        from: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct PhaseArgs {
    /// Training config (TOML): model, data, budget, optim, checkpoint, eval, device (and
    /// `[sft]` for sft).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Continue the run in the config's `out` folder from its latest checkpoint.
    #[arg(long, conflicts_with = "force")]
    resume: bool,
    /// Delete the checkpoints and metrics already in `out` and start over.
    #[arg(long)]
    force: bool,
    /// Override the config's device.
    #[arg(long, value_name = "DEVICE", value_enum)]
    device: Option<super::DeviceArg>,
}

pub fn run(a: Args) -> Result<(), CliError> {
    let (phase, args, from) = match a.phase {
        Which::Pretrain(args) => ("pretrain", args, None),
        Which::Midtrain { args, from } => ("midtrain", args, from),
        Which::Sft { args, from } => ("sft", args, from),
        Which::Rl { args, from } => ("rl", args, from),
    };
    // --from: a checkpoint folder, or a run folder meaning its latest checkpoint (every phase).
    let from = from
        .as_deref()
        .map(super::export::resolve_checkpoint)
        .transpose()?;
    let start = if args.resume {
        Start::Resume
    } else if let Some(f) = from.as_deref() {
        Start::From(f)
    } else {
        Start::Fresh
    };
    if phase == "rl" {
        let mut cfg = RlConfig::from_file(&args.config).map_err(CliError::usage)?;
        if let Some(d) = args.device {
            cfg.device = d.into();
        }
        let s = train_on(&cfg, &cfg.out, cfg.device, &args, start)?;
        report_rl(&s);
        print_files(&cfg.out, "rl_curve.svg", &s.phases, &s.final_checkpoint);
    } else {
        let mut cfg = TrainConfig::from_file(&args.config).map_err(CliError::usage)?;
        if let Some(d) = args.device {
            cfg.device = d.into();
        }
        let lm = LmPhase {
            config: &cfg,
            name: phase,
        };
        let s = train_on(&lm, &cfg.out, cfg.device, &args, start)?;
        let last = s.losses.last().map(|l| l.1);
        let first = s.losses.first().map(|l| l.1);
        if let (Some(f), Some(l)) = (first, last) {
            println!("loss {f:.4} -> {l:.4} over {} steps", s.losses.len());
        }
        if let Some(e) = s.eval_loss {
            println!("held-out loss {e:.4}");
        }
        println!("throughput {:.0} tokens/s", s.tokens_per_s);
        print_files(&cfg.out, "curve.svg", &s.phases, &s.final_checkpoint);
    }
    Ok(())
}

/// Runs `phase` with a progress bar: the device is probed before `--force` clears anything.
fn train_on<P: Phase>(
    phase: &P,
    out: &Path,
    device: DeviceKind,
    args: &PhaseArgs,
    start: Start<'_>,
) -> Result<Summary<P::Outcome>, CliError> {
    if device == DeviceKind::Cuda {
        dagmath::train::device::probe_cuda().map_err(CliError::usage)?;
    }
    if args.force {
        clear_run(out)?;
    }
    let mut bar = Bar::new();
    let result = train::dispatch(phase, start, &mut bar);
    bar.finish();
    result.map_err(super::train_error)
}

/// `--force`: the checkpoints, the metrics and the curves of an earlier run in `out`.
fn clear_run(out: &Path) -> Result<(), CliError> {
    let ck = dagmath::train::checkpoint::checkpoints_dir(out);
    if ck.exists() {
        std::fs::remove_dir_all(&ck)
            .map_err(|e| anyhow::anyhow!("{}: cannot remove: {e}", ck.display()))?;
    }
    for f in ["metrics.jsonl", "curve.svg", "rl_curve.svg"] {
        let p = out.join(f);
        if p.exists() {
            std::fs::remove_file(&p)
                .map_err(|e| anyhow::anyhow!("{}: cannot remove: {e}", p.display()))?;
        }
    }
    Ok(())
}

fn report_rl(s: &RlSummary) {
    if let (Some(first), Some(last)) = (s.metrics.first(), s.metrics.last()) {
        println!(
            "reward {:.3} -> {:.3}, verified pass rate {:.3} -> {:.3}, answer rate {:.3} -> {:.3} over {} steps",
            first.reward, last.reward, first.pass_rate, last.pass_rate, first.answer_rate, last.answer_rate,
            s.metrics.len()
        );
    }
}

/// Every phase's compute, then where the run's files are.
fn print_files(out: &Path, curve: &str, phases: &[PhaseRecord], checkpoint: &Path) {
    for p in phases {
        println!(
            "phase {:<9} steps {:>7} tokens {:>12} FLOPs {:.3e}",
            p.name, p.steps, p.tokens, p.flops
        );
    }
    println!("checkpoint {}", checkpoint.display());
    println!("metrics    {}", out.join("metrics.jsonl").display());
    println!("curve      {}", out.join(curve).display());
}

/// Progress bar over a phase's steps.
struct Bar {
    bar: Option<ProgressBar>,
    /// The latest held-out loss, shown beside the training loss.
    eval: Option<f64>,
}

impl Bar {
    fn new() -> Bar {
        Bar {
            bar: None,
            eval: None,
        }
    }
    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Observer for Bar {
    fn start(&mut self, phase: &str, start_step: u64, total_steps: u64) {
        let b = ProgressBar::new(total_steps);
        b.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} steps {msg} ({elapsed} < {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        b.set_prefix(phase.to_string());
        b.set_position(start_step);
        self.bar = Some(b);
    }

    fn row(&mut self, row: Row<'_>) {
        let Some(b) = &self.bar else {
            return;
        };
        match row {
            Row::Step(m) | Row::Sft(SftMetrics { step: m, .. }) => {
                let eval = self
                    .eval
                    .map(|e| format!(" held-out {e:.3}"))
                    .unwrap_or_default();
                b.set_message(format!(
                    "loss {:.3}{eval} lr {:.2e} {:.0} tok/s",
                    m.loss.unwrap_or(f64::NAN),
                    m.lr.unwrap_or(0.0),
                    m.tokens_per_s.unwrap_or(0.0)
                ));
                b.set_position(m.step);
            }
            Row::Eval(m) => self.eval = m.eval_loss,
            Row::Rl(m) => {
                b.set_message(format!(
                    "reward {:.3} pass {:.3} len {:.0} {:.0} rollout tok/s",
                    m.reward, m.pass_rate, m.response_length, m.rollout_tokens_per_s
                ));
                b.set_position(m.step);
            }
        }
    }
}
