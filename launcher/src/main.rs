//! memlock-run: run a program with its memory locked in RAM, without changing it.
//!
//! `main` parses, calls [`launch::run`] and maps failures to exit statuses the way
//! env(1), stdbuf(1) and timeout(1) do: 125 for memlock-run's own failures, 126 when the
//! command cannot be executed, 127 when it is not found.

mod capabilities;
mod cli;
mod elf;
mod exec;
mod install;
mod launch;
mod limits;
mod preload;
mod size;
mod target;
mod user;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use memlock_run_protocol::FAILURE_EXIT_STATUS;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            // --help and --version are not errors; usage errors are memlock-run's own.
            return if err.use_stderr() {
                ExitCode::from(FAILURE_EXIT_STATUS)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match launch::run(&cli) {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            // Not eprintln!, which panics when stderr cannot be written (a full disk,
            // /dev/full), and the panic aborts: the exit status must say what failed even then.
            let _ = writeln!(std::io::stderr(), "memlock-run: {err:#}");
            let status = err
                .chain()
                .find_map(|cause| cause.downcast_ref::<target::NotRunnable>())
                .map_or(FAILURE_EXIT_STATUS, |not_runnable| not_runnable.status);
            ExitCode::from(status)
        }
    }
}
