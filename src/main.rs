//! The `dagmath` binary: parse the command line, run, print the error chain, set the exit code.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Exit quietly when stdout is closed early (`dagmath inspect DIR | head`), as Unix tools
    // do, instead of panicking on a broken pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    #[cfg(feature = "train")]
    dagmath::train::device::tune_allocator();
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
