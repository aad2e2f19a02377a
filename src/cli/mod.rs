//! Command-line interface: one file per subcommand. The only layer that prints, draws progress
//! bars or uses clap / indicatif / anyhow.

mod audit;
#[cfg(feature = "train")]
mod eval;
#[cfg(feature = "train")]
mod export;
mod generate;
mod inspect;
#[cfg(feature = "train")]
mod logits;
#[cfg(feature = "train")]
mod report;
#[cfg(feature = "train")]
mod select;
mod tokenizer;
#[cfg(feature = "train")]
mod train;

use clap::{Parser, Subcommand};

/// Compose arithmetic reasoning DAG problems, write datasets, and verify reasoning traces
/// (arXiv 2512.07783 toolkit).
#[derive(Debug, Parser)]
#[command(name = "dagmath", version, about, long_about = None, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Generate(generate::Args),
    Inspect(inspect::Args),
    Audit(audit::Args),
    Tokenizer(tokenizer::Args),
    #[cfg(feature = "train")]
    Eval(eval::Args),
    #[cfg(feature = "train")]
    Select(select::Args),
    #[cfg(feature = "train")]
    Train(train::Args),
    #[cfg(feature = "train")]
    Export(export::ExportArgs),
    #[cfg(feature = "train")]
    Import(export::ImportArgs),
    #[cfg(feature = "train")]
    Report(report::Args),
    #[cfg(feature = "train")]
    Logits(logits::Args),
}

/// `--device` of every command that runs a model: the config's `device` values.
#[cfg(feature = "train")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Cuda,
}

#[cfg(feature = "train")]
impl From<DeviceArg> for dagmath::train::config::DeviceKind {
    fn from(d: DeviceArg) -> Self {
        match d {
            DeviceArg::Cpu => Self::Cpu,
            DeviceArg::Cuda => Self::Cuda,
        }
    }
}

/// A failure with its exit code: 2 for bad input (flags, recipes, templates, output
/// directory), 1 for everything else.
pub struct CliError {
    error: anyhow::Error,
    code: u8,
}

impl CliError {
    pub fn usage(e: impl Into<anyhow::Error>) -> CliError {
        CliError {
            error: e.into(),
            code: 2,
        }
    }

    pub fn exit_code(&self) -> u8 {
        self.code
    }

    /// The causes below the top-level message.
    pub fn source_chain(&self) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
        self.error.chain().skip(1)
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.error)
    }
}

impl<E: Into<anyhow::Error>> From<E> for CliError {
    fn from(e: E) -> CliError {
        CliError {
            error: e.into(),
            code: 1,
        }
    }
}

pub fn run() -> Result<(), CliError> {
    let cli = Cli::parse();
    match cli.command {
        Command::Generate(a) => generate::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Audit(a) => audit::run(a),
        Command::Tokenizer(a) => tokenizer::run(a),
        #[cfg(feature = "train")]
        Command::Eval(a) => eval::run(a),
        #[cfg(feature = "train")]
        Command::Select(a) => select::run(a),
        #[cfg(feature = "train")]
        Command::Train(a) => train::run(a),
        #[cfg(feature = "train")]
        Command::Export(a) => export::export(a),
        #[cfg(feature = "train")]
        Command::Import(a) => export::import(a),
        #[cfg(feature = "train")]
        Command::Report(a) => report::run(a),
        #[cfg(feature = "train")]
        Command::Logits(a) => logits::run(a),
    }
}

/// Templates: the built-ins, plus a user directory when given.
pub fn load_templates(
    dir: Option<&std::path::Path>,
) -> Result<dagmath::template::TemplateSet, CliError> {
    match dir {
        None => Ok(dagmath::template::TemplateSet::builtin()),
        Some(d) => dagmath::template::TemplateSet::with_dir(d).map_err(CliError::usage),
    }
}

/// A `--threads` value: 0 means every core; more than [`dagmath::limits::max_threads`] is
/// refused (thousands of threads only add contention, and can exhaust the process).
pub fn check_threads(n: usize) -> Result<usize, CliError> {
    let max = dagmath::limits::max_threads();
    if n > max {
        return Err(CliError::usage(anyhow::anyhow!(
            "--threads: {n} is more than {max} (4 per core on this machine); 0 uses every core"
        )));
    }
    Ok(n)
}

/// The one rule for exit codes, applied to the trainer's errors: the input the user named is
/// at fault (exit 2) when a config value, a dataset or a checkpoint is missing, malformed,
/// inconsistent or altered; the system is (exit 1) when reading or writing fails, a device
/// fails or training diverges.
#[cfg(feature = "train")]
pub fn train_error(e: dagmath::train::TrainError) -> CliError {
    use dagmath::train::TrainError as T;
    let user = match &e {
        T::Config(_) | T::Run(_) | T::Device(_) | T::Data(_) | T::Templates(_) => true,
        T::Pool(p) => p.is_users(),
        // Loading the tokenizer the user named; failing to encode or decode mid-run is not.
        T::Tokenizer(t) => matches!(t, dagmath::tokenizer::TokenizerError::Load { .. }),
        T::Checkpoint(c) => checkpoint_is_users(c),
        T::Weights(w) => weights_is_users(w),
        T::Plot(_) | T::Io { .. } | T::Diverged { .. } => false,
    };
    blame(user, e)
}

/// [`train_error`]'s rule for reading a checkpoint or Hugging Face folder.
#[cfg(feature = "train")]
pub fn checkpoint_error(e: dagmath::train::checkpoint::CheckpointError) -> CliError {
    let user = checkpoint_is_users(&e);
    blame(user, e)
}

/// [`train_error`]'s rule for reading a Hugging Face folder.
#[cfg(feature = "train")]
pub fn hf_error(e: dagmath::model::hf::HfError) -> CliError {
    let user = hf_is_users(&e);
    blame(user, e)
}

/// `e` as a usage error (exit 2) when the user's input is at fault, else a system error.
pub(crate) fn blame(user: bool, e: impl Into<anyhow::Error>) -> CliError {
    if user {
        CliError::usage(e)
    } else {
        CliError::from(e)
    }
}

#[cfg(feature = "train")]
fn checkpoint_is_users(e: &dagmath::train::checkpoint::CheckpointError) -> bool {
    use dagmath::train::checkpoint::CheckpointError as C;
    match e {
        C::Bad { .. } => true,
        C::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
        C::Hf(h) => hf_is_users(h),
        C::Weights(w) => weights_is_users(w),
    }
}

#[cfg(feature = "train")]
fn hf_is_users(e: &dagmath::model::hf::HfError) -> bool {
    use dagmath::model::hf::HfError as H;
    match e {
        H::Bad { .. } | H::Config { .. } => true,
        H::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
        H::Weights(w) => weights_is_users(w),
    }
}

#[cfg(feature = "train")]
fn weights_is_users(e: &dagmath::model::WeightsError) -> bool {
    match e {
        dagmath::model::WeightsError::Io { source, .. } => {
            source.kind() == std::io::ErrorKind::NotFound
        }
        _ => true,
    }
}
