//! `dagmath report`: the study report (REPORT.md and plots) from a study folder's experiments.

use std::path::PathBuf;

use dagmath::eval::report;

use super::CliError;

/// Write a study's REPORT.md (pass@k with 95% bootstrap intervals, each finding's verdict) and
/// its plots, from every experiment folder (one holding experiment.toml) under --study.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  dagmath report --study out/study\n\n\
experiment.toml is documented in examples/study/README.md and written by examples/study.sh.")]
pub struct Args {
    /// The study folder.
    #[arg(long, value_name = "DIR")]
    study: PathBuf,
}

pub fn run(a: Args) -> Result<(), CliError> {
    let w = report::write(&a.study).map_err(|e| super::blame(e.is_users(), e))?;
    for f in &w.findings {
        println!("{:<9} {:<15} {}", f.experiment, f.verdict, f.claim);
    }
    println!("wrote {}", w.report.display());
    Ok(())
}
