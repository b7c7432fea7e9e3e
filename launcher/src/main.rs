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
mod detached;
mod elf;
mod gate;
mod host;
mod plan;
mod ptrace;
mod say;
mod size;

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
    // A set-user-ID or set-group-ID install is refused here, once, for every mode.
    let installed_set_id = std::fs::metadata("/proc/self/exe").map_or(true, |m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode() & 0o6000 != 0
    });
    let outcome = match plan::set_id_refusal(host::Ids::read(), installed_set_id) {
        Some(why) => Err(anyhow::anyhow!(why)),
        None => dispatch(mode),
    };
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
                say::printable(&format!("{err:#}")),
                say::printable(&sender)
            );
            err.chain()
                .find_map(|cause| {
                    cause
                        .downcast_ref::<plan::Refusal>()
                        .map(|r| r.status)
                        .or_else(|| {
                            cause
                                .downcast_ref::<plan::target::NotRunnable>()
                                .map(|n| n.status)
                        })
                })
                .unwrap_or(FAILURE_EXIT_STATUS)
        }
    }
}

/// Decides, then says or does.
/// Decides, then says or does. `--status` reads /proc only; every other mode reads the host
/// once (`--check` the machine too).
fn dispatch(mode: cli::Mode) -> anyhow::Result<bool> {
    use anyhow::Context;
    use host::Host;
    use plan::{PidPlan, Plan};
    match mode {
        cli::Mode::Status { pids, json } => say::status::run(&pids, json),
        cli::Mode::Run(request) => {
            let host = Host::read()?;
            apply::run(Plan::build(request, &host), &host)?;
            Ok(true)
        }
        cli::Mode::DryRun(request) => {
            let plan = Plan::build(request, &Host::read()?);
            plan.refusal()?;
            say::dry_run::print(&plan).context("cannot write the --dry-run plan to stdout")?;
            Ok(true)
        }
        cli::Mode::Check(request) => {
            let host = Host::read_with_machine()?;
            say::check::run(&Plan::build(request, &host), &host)
        }
        cli::Mode::Pid(request) => {
            let host = Host::read()?;
            let process = host::procfs::Process::read(request.pid);
            apply::lock_running(&PidPlan::build(request, &host, process))?;
            Ok(true)
        }
        cli::Mode::CheckPid(request) => {
            let host = Host::read_with_machine()?;
            let process = host::procfs::Process::read(request.pid);
            say::check::run_pid(&PidPlan::build(request, &host, process), &host)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// Each top-level module of the launcher, and the others its code names (`crate::NAME`,
    /// comments left out).
    fn imports() -> BTreeMap<String, BTreeSet<String>> {
        fn walk(dir: &Path, top: Option<&str>, graph: &mut BTreeMap<String, BTreeSet<String>>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
                let module = top.map_or(name.clone(), str::to_owned);
                if path.is_dir() {
                    walk(&path, Some(&module), graph);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let names = graph.entry(module.clone()).or_default();
                for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                    for (at, _) in line.match_indices("crate::") {
                        let rest = &line[at + "crate::".len()..];
                        let end = rest
                            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                            .unwrap_or(rest.len());
                        if rest[..end] != module && !rest[..end].is_empty() {
                            names.insert(rest[..end].to_owned());
                        }
                    }
                }
            }
        }
        let mut graph = BTreeMap::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            None,
            &mut graph,
        );
        graph
    }

    /// The folders say the flow: deciding (`host`, `plan`) depends on neither saying (`say`)
    /// nor doing (`apply`, `gate`, `ptrace`); saying does not depend on doing; and no module
    /// imports another that imports it back, however far round.
    #[test]
    fn the_launcher_imports_one_way() {
        let graph = imports();
        for (module, forbidden) in [
            (
                "host",
                &["plan", "say", "apply", "gate", "ptrace", "cli"][..],
            ),
            (
                "plan",
                &["say", "apply", "gate", "ptrace", "cli", "detached"],
            ),
            ("say", &["apply", "gate", "ptrace", "cli", "detached"]),
            ("gate", &["apply", "ptrace", "cli"]),
            ("ptrace", &["apply", "gate", "cli"]),
        ] {
            let names = &graph[module];
            for name in forbidden {
                assert!(!names.contains(*name), "{module} imports {name}: {names:?}");
            }
        }
        // Depth-first search for a way back to where it started.
        fn reaches(
            graph: &BTreeMap<String, BTreeSet<String>>,
            from: &str,
            to: &str,
            seen: &mut BTreeSet<String>,
        ) -> bool {
            graph.get(from).is_some_and(|names| {
                names.iter().any(|next| {
                    next == to || (seen.insert(next.clone()) && reaches(graph, next, to, seen))
                })
            })
        }
        for module in graph.keys().filter(|m| *m != "main") {
            assert!(
                !reaches(&graph, module, module, &mut BTreeSet::new()),
                "{module} imports itself back: {graph:#?}"
            );
        }
    }
}
