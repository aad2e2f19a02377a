//! `dagmath train pretrain|midtrain`: the training loop with a progress bar.

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use dagmath::train::config::DeviceKind;
use dagmath::train::metrics::Metrics;
use dagmath::train::{self, Start, TrainConfig, TrainError, TrainObserver, TrainSummary};

use super::CliError;

/// Train a Qwen2-style model on dagmath shards (pre-training or mid-training).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    phase: Phase,
}

#[derive(Debug, clap::Subcommand)]
enum Phase {
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
    /// Training config (TOML): model, data, budget, optim, checkpoint, eval, device.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Continue the run in the config's `out` folder from its latest checkpoint.
    #[arg(long, conflicts_with = "force")]
    resume: bool,
    /// Delete the checkpoints and metrics already in `out` and start over.
    #[arg(long)]
    force: bool,
    /// Override the config's device (cpu | cuda).
    #[arg(long, value_name = "DEVICE", value_parser = ["cpu", "cuda"])]
    device: Option<String>,
}

pub fn run(a: Args) -> Result<(), CliError> {
    let (phase, args, from) = match a.phase {
        Phase::Pretrain(args) => ("pretrain", args, None),
        Phase::Midtrain { args, from } => ("midtrain", args, from),
        Phase::Rl { args, from } => ("rl", args, from),
    };
    // --from: a checkpoint folder, or a run folder meaning its latest checkpoint (every phase).
    let from = from
        .as_deref()
        .map(super::export::resolve_checkpoint)
        .transpose()?;
    if phase == "rl" {
        return run_rl(args, from);
    }
    let mut cfg = TrainConfig::from_file(&args.config)
        .map_err(anyhow::Error::msg)
        .map_err(CliError::usage)?;
    if let Some(d) = device_flag(&args) {
        cfg.device = d;
    }
    if cfg.device == DeviceKind::Cuda {
        dagmath::train::device::probe_cuda()
            .map_err(anyhow::Error::msg)
            .map_err(CliError::usage)?;
    }
    if args.force {
        clear_run(&cfg.out)?;
    }
    let start = if args.resume {
        Start::Resume
    } else if let Some(f) = from.as_deref() {
        Start::From(f)
    } else {
        Start::Fresh
    };
    let mut bar = Bar::new();
    let result = dispatch(&cfg, phase, start, &mut bar);
    bar.finish();
    let summary = result.map_err(super::train_error)?;
    report(&cfg, &summary);
    Ok(())
}

fn dispatch(
    cfg: &TrainConfig,
    phase: &str,
    start: Start<'_>,
    bar: &mut Bar,
) -> Result<TrainSummary, TrainError> {
    use dagmath::train::device::{self, BackendChoice};
    let choice = device::resolve(cfg.device, cfg.precision).map_err(TrainError::Config)?;
    if cfg.device == DeviceKind::Cuda {
        device::probe_cuda().map_err(TrainError::Config)?;
    }
    match choice {
        BackendChoice::CpuF32 => {
            train::train::<device::CpuBackend>(cfg, phase, start, &device::cpu_device(), bar)
        }
        #[cfg(feature = "cuda")]
        BackendChoice::CudaF32 => {
            let dev = burn::backend::cuda::CudaDevice::default();
            train::train::<device::CudaF32Backend>(cfg, phase, start, &dev, bar)
        }
        #[cfg(feature = "cuda")]
        BackendChoice::CudaBf16 => {
            let dev = burn::backend::cuda::CudaDevice::default();
            train::train::<device::CudaBf16Backend>(cfg, phase, start, &dev, bar)
        }
        #[cfg(not(feature = "cuda"))]
        BackendChoice::CudaF32 | BackendChoice::CudaBf16 => {
            unreachable!("probe_cuda fails without the cuda feature")
        }
    }
}

fn clear_run(out: &Path) -> Result<(), CliError> {
    let ck = dagmath::train::checkpoint::checkpoints_dir(out);
    if ck.exists() {
        std::fs::remove_dir_all(&ck)
            .map_err(|e| anyhow::anyhow!("{}: cannot remove: {e}", ck.display()))?;
    }
    for f in ["metrics.jsonl", "curve.svg"] {
        let p = out.join(f);
        if p.exists() {
            std::fs::remove_file(&p)
                .map_err(|e| anyhow::anyhow!("{}: cannot remove: {e}", p.display()))?;
        }
    }
    Ok(())
}

fn report(cfg: &TrainConfig, s: &TrainSummary) {
    let last = s.losses.last().map(|l| l.1);
    let first = s.losses.first().map(|l| l.1);
    if let (Some(f), Some(l)) = (first, last) {
        println!("loss {f:.4} -> {l:.4} over {} steps", s.losses.len());
    }
    if let Some(e) = s.eval_loss {
        println!("held-out loss {e:.4}");
    }
    println!("throughput {:.0} tokens/s", s.tokens_per_s);
    print_phases(&s.phases);
    println!("checkpoint {}", s.final_checkpoint.display());
    println!("metrics    {}", cfg.out.join("metrics.jsonl").display());
    println!("curve      {}", cfg.out.join("curve.svg").display());
}

fn print_phases(phases: &[dagmath::train::checkpoint::PhaseRecord]) {
    for p in phases {
        println!(
            "phase {:<9} steps {:>7} tokens {:>12} FLOPs {:.3e}",
            p.name, p.steps, p.tokens, p.flops
        );
    }
}

/// Progress bar over optimiser steps.
struct Bar {
    bar: Option<ProgressBar>,
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

impl TrainObserver for Bar {
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
    fn step(&mut self, m: &Metrics) {
        if let Some(b) = &self.bar {
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
    }
    fn eval(&mut self, m: &Metrics) {
        self.eval = m.eval_loss;
    }
}

/// The `--device` override, if given.
fn device_flag(args: &PhaseArgs) -> Option<DeviceKind> {
    args.device.as_deref().map(|d| match d {
        "cuda" => DeviceKind::Cuda,
        _ => DeviceKind::Cpu,
    })
}

fn run_rl(args: PhaseArgs, from: Option<PathBuf>) -> Result<(), CliError> {
    use dagmath::train::rl::{train_rl, RlConfig, RlStart};
    let mut cfg = RlConfig::from_file(&args.config)
        .map_err(anyhow::Error::msg)
        .map_err(CliError::usage)?;
    if let Some(d) = device_flag(&args) {
        cfg.device = d;
    }
    if cfg.device == DeviceKind::Cuda {
        dagmath::train::device::probe_cuda()
            .map_err(anyhow::Error::msg)
            .map_err(CliError::usage)?;
    }
    if args.force {
        clear_run(&cfg.out)?;
        let curve = cfg.out.join("rl_curve.svg");
        if curve.exists() {
            std::fs::remove_file(&curve)
                .map_err(|e| anyhow::anyhow!("{}: cannot remove: {e}", curve.display()))?;
        }
    }
    let start = match (&from, args.resume) {
        (_, true) => RlStart::Resume,
        (Some(f), false) => RlStart::From(f),
        (None, false) => unreachable!("clap requires --from or --resume"),
    };
    let mut bar = RlBar { bar: None };
    use dagmath::train::device::{self, BackendChoice};
    let result = match device::resolve(cfg.device, cfg.precision) {
        Err(e) => Err(TrainError::Config(e)),
        Ok(BackendChoice::CpuF32) => {
            train_rl::<device::CpuBackend>(&cfg, start, &device::cpu_device(), &mut bar)
        }
        #[cfg(feature = "cuda")]
        Ok(BackendChoice::CudaF32) => {
            let dev = burn::backend::cuda::CudaDevice::default();
            train_rl::<device::CudaF32Backend>(&cfg, start, &dev, &mut bar)
        }
        #[cfg(feature = "cuda")]
        Ok(BackendChoice::CudaBf16) => {
            let dev = burn::backend::cuda::CudaDevice::default();
            train_rl::<device::CudaBf16Backend>(&cfg, start, &dev, &mut bar)
        }
        #[cfg(not(feature = "cuda"))]
        Ok(BackendChoice::CudaF32 | BackendChoice::CudaBf16) => {
            unreachable!("probe_cuda fails without the cuda feature")
        }
    };
    if let Some(b) = bar.bar.take() {
        b.finish_and_clear();
    }
    let s = result.map_err(super::train_error)?;
    if let (Some(first), Some(last)) = (s.metrics.first(), s.metrics.last()) {
        println!(
            "reward {:.3} -> {:.3}, verified pass rate {:.3} -> {:.3}, answer rate {:.3} -> {:.3} over {} steps",
            first.reward, last.reward, first.pass_rate, last.pass_rate, first.answer_rate, last.answer_rate,
            s.metrics.len()
        );
    }
    print_phases(&s.phases);
    println!("checkpoint {}", s.final_checkpoint.display());
    println!("metrics    {}", cfg.out.join("metrics.jsonl").display());
    println!("curve      {}", cfg.out.join("rl_curve.svg").display());
    Ok(())
}

/// Progress bar over RL steps.
struct RlBar {
    bar: Option<ProgressBar>,
}

impl dagmath::train::rl::RlObserver for RlBar {
    fn start(&mut self, start_step: u64, total: u64) {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template(
                "rl [{bar:30}] {pos}/{len} steps {msg} ({elapsed} < {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        b.set_position(start_step);
        self.bar = Some(b);
    }
    fn step(&mut self, m: &dagmath::train::rl::RlMetrics) {
        if let Some(b) = &self.bar {
            b.set_message(format!(
                "reward {:.3} pass {:.3} len {:.0} {:.0} rollout tok/s",
                m.reward, m.pass_rate, m.response_length, m.rollout_tokens_per_s
            ));
            b.set_position(m.step);
        }
    }
}
