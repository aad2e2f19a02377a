//! The `dagmath` binary: parse the command line, run, print the error chain, set the exit code.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.source_chain() {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}
