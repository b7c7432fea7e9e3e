//! memlock-run: run a program with its memory locked in RAM, without changing it.
//!
//! The flow, and the folders that hold it: `main` parses ([`cli`]: the typed request), reads
//! the host once ([`host`]), decides ([`plan`]: what a run would do, or why not), then says
//! ([`say`]: `--dry-run`, `--check`, `--status`) or does ([`apply`]: limits, capabilities,
//! the user switch, the exec gate of [`gate`], the helper of [`ptrace`], exec). It maps
//! failures to exit statuses the way env(1), stdbuf(1) and timeout(1) do: 125 for
//! memlock-run's own failures, 126 when the command cannot be executed, 127 when it is not
//! found. `--check` and `--status` answer "no" with 1, as test(1) and grep(1) do, so that a
//! script can tell the answer from a failure to give one.
//!
//! memlock-run starts without Rust's runtime start-up (`#![no_main]`, a C `main`). That
//! start-up sets SIGPIPE to ignored and opens /dev/null on closed fds 0-2, and both would
//! pass into COMMAND through exec, which is to start as if it had been started directly;
//! it also reads /proc/self/maps to place a stack guard, which a launcher that execs at once
//! does not need. std works as usual: glibc hands argv to std's own constructor.
// The unit-test harness brings its own `main`.
#![cfg_attr(not(test), no_main)]

mod allocator;
mod apply;
mod cli;
mod elf;
mod envline;
mod gate;
mod host;
mod plan;
mod ptrace;
mod say;
mod size;
mod target;

use std::io::Write;

use clap::Parser;
use memlock_run_protocol::FAILURE_EXIT_STATUS;

/// Running out of memory (a tight RLIMIT_AS) ends memlock-run with 125 and a line, not an abort.
#[global_allocator]
static ALLOCATOR: allocator::ExitOnExhaustion = allocator::ExitOnExhaustion;

#[cfg(not(test))]
#[no_mangle]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    let status = run();
    // Without the runtime's clean-up, stdout is not flushed on the way out.
    let _ = std::io::stdout().flush();
    std::ffi::c_int::from(status)
}

/// A message with the control characters it may carry from file names, `#!` lines and
/// arguments (a carriage return, an escape sequence) shown as escapes, so that what reaches
/// the terminal is one line that says what it is.
fn printable(message: &str) -> String {
    message
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg_attr(test, allow(dead_code))]
fn run() -> u8 {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            // --help and --version are not errors; usage errors are memlock-run's own.
            return if err.use_stderr() {
                FAILURE_EXIT_STATUS
            } else {
                0
            };
        }
    };
    let mode = cli.mode();
    let sent = matches!(mode, cli::Mode::Run(_) | cli::Mode::DryRun(_));
    let outcome = host_for(&mode).and_then(|host| {
        // A set-user-ID or set-group-ID install is refused here, once, for every mode.
        if let Some(why) = plan::set_id_refusal(&host) {
            anyhow::bail!(why);
        }
        dispatch(mode, &host)
    });
    match outcome {
        Ok(true) => 0,
        // --check: a run would fail; --status: a PID could not be read.
        Ok(false) => 1,
        Err(err) => {
            // A program a locked program executed, sent here by the shim: say which run to
            // give --no-inherit if its refusal is not wanted.
            let sender = std::env::var(memlock_run_protocol::EXECUTED_BY)
                .ok()
                .filter(|_| sent)
                .map(|by| {
                    format!(
                        " ({by} executed it and runs under memlock-run, which locks what it executes too: start \
                         that run with --no-inherit if only it must be locked)"
                    )
                })
                .unwrap_or_default();
            // Not eprintln!, which panics when stderr cannot be written (a full disk,
            // /dev/full), and the panic aborts: the exit status must say what failed even then.
            let _ = writeln!(
                std::io::stderr(),
                "memlock-run: {}{}",
                printable(&format!("{err:#}")),
                printable(&sender)
            );
            err.chain()
                .find_map(|cause| {
                    cause
                        .downcast_ref::<plan::Refusal>()
                        .map(|r| r.status)
                        .or_else(|| {
                            cause
                                .downcast_ref::<target::NotRunnable>()
                                .map(|n| n.status)
                        })
                })
                .unwrap_or(FAILURE_EXIT_STATUS)
        }
    }
}

/// The host as the mode needs it: `--check` reads the machine too.
fn host_for(mode: &cli::Mode) -> anyhow::Result<host::Host> {
    match mode {
        cli::Mode::Check(_) | cli::Mode::CheckPid(_) => host::Host::read_with_machine(),
        _ => host::Host::read(),
    }
}

/// Decides, then says or does.
fn dispatch(mode: cli::Mode, host: &host::Host) -> anyhow::Result<bool> {
    use anyhow::Context;
    use plan::{PidPlan, Plan};
    match mode {
        cli::Mode::Status { pids, json } => say::status::run(&pids, json),
        cli::Mode::Run(request) => {
            apply::run(Plan::build(request, host), host)?;
            Ok(true)
        }
        cli::Mode::DryRun(request) => {
            let plan = Plan::build(request, host);
            plan.refusal()?;
            say::dry_run::print(&plan).context("cannot write the --dry-run plan to stdout")?;
            Ok(true)
        }
        cli::Mode::Check(request) => say::check::run(&Plan::build(request, host), host),
        cli::Mode::Pid(request) => {
            let process = host::procfs::Process::read(request.pid);
            apply::lock_running(&PidPlan::build(request, host, process))?;
            Ok(true)
        }
        cli::Mode::CheckPid(request) => {
            let process = host::procfs::Process::read(request.pid);
            say::check::run_pid(&PidPlan::build(request, host, process), host)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            super::printable("/bin/sh\r does not exist; \u{1b}[31mred"),
            "/bin/sh\\r does not exist; \\u{1b}[31mred"
        );
    }
}
