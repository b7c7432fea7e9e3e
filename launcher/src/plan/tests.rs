//! The plan's rules as tables: (request, host) -> outcome, with hosts written down
//! (`crate::host::fixture`) and programs made on disk (ELF headers of each kind, a script, a
//! set-user-ID copy). Nothing is started.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use caps::{Capability, CapsHashSet};
use memlock_run_protocol::{GateReads, LockFlags, OnFailure};

use super::*;
use crate::host::fixture::{self, MIB};
use crate::host::procfs::Process;

/// A directory of programs for these tests, kept between runs (each file is renamed into place).
fn dir() -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("memlock-run-plan-tests-{}", nix::unistd::getuid()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A file holding `bytes`, mode `mode`: written beside and renamed into place, so that the
/// tests running at once never read one half written.
fn file(name: &str, bytes: &[u8], mode: u32) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let path = dir().join(name);
    let scratch = dir().join(format!("{name}.{}", NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&scratch, bytes).unwrap();
    std::fs::set_permissions(&scratch, std::fs::Permissions::from_mode(mode)).unwrap();
    std::fs::rename(&scratch, &path).unwrap();
    path
}

/// ELF headers as the kernel reads them: a class, a machine, and a PT_INTERP or none.
fn elf(name: &str, bits: u8, machine: u16, interp: Option<&str>) -> PathBuf {
    let (ehsize, phentsize) = if bits == 64 { (64, 56) } else { (52, 32) };
    let phnum: u16 = if interp.is_some() { 2 } else { 1 };
    let interp_at = ehsize + phentsize * phnum as usize;
    let interp_bytes = interp.map(|i| format!("{i}\0").into_bytes());
    let mut out = vec![0u8; interp_at];
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = if bits == 64 { 2 } else { 1 };
    out[5] = 1; // little-endian
    out[6] = 1;
    out[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out[18..20].copy_from_slice(&machine.to_le_bytes());
    out[20..24].copy_from_slice(&1u32.to_le_bytes());
    let mut ph = ehsize;
    if bits == 64 {
        out[32..40].copy_from_slice(&(ehsize as u64).to_le_bytes()); // e_phoff
        out[52..54].copy_from_slice(&(ehsize as u16).to_le_bytes());
        out[54..56].copy_from_slice(&(phentsize as u16).to_le_bytes());
        out[56..58].copy_from_slice(&phnum.to_le_bytes());
    } else {
        out[28..32].copy_from_slice(&(ehsize as u32).to_le_bytes());
        out[40..42].copy_from_slice(&(ehsize as u16).to_le_bytes());
        out[42..44].copy_from_slice(&(phentsize as u16).to_le_bytes());
        out[44..46].copy_from_slice(&phnum.to_le_bytes());
    }
    if let Some(bytes) = &interp_bytes {
        // PT_INTERP: type, then offset and size where the class puts them.
        out[ph..ph + 4].copy_from_slice(&3u32.to_le_bytes());
        if bits == 64 {
            out[ph + 8..ph + 16].copy_from_slice(&(interp_at as u64).to_le_bytes());
            out[ph + 32..ph + 40].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
        } else {
            out[ph + 4..ph + 8].copy_from_slice(&(interp_at as u32).to_le_bytes());
            out[ph + 16..ph + 20].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
        }
        ph += phentsize;
    }
    out[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    if let Some(bytes) = interp_bytes {
        out.extend_from_slice(&bytes);
    }
    file(name, &out, 0o755)
}

const GLIBC_LOADER: &str = "/lib64/ld-linux-x86-64.so.2";

fn dynamic() -> PathBuf {
    elf("dynamic", 64, 62, Some(GLIBC_LOADER))
}

fn static_program() -> PathBuf {
    elf("static", 64, 62, None)
}

fn request(command: &Path) -> Request {
    Request {
        command: vec![command.as_os_str().to_owned()],
        argv0: None,
        flags: LockFlags {
            current: true,
            future: false,
            onfault: false,
        },
        prefault: 0,
        heap: None,
        huge: false,
        thread_stack: None,
        fork: None,
        bind_now: false,
        limit: None,
        user: None,
        on_failure: OnFailure::Exit,
        inherit: true,
        exec_gate: true,
        no_dump: false,
        method: Wanted::Auto,
        verbose: memlock_run_protocol::Verbose::Off,
    }
}

fn topics(plan: &Plan) -> Vec<&'static str> {
    plan.refusals.iter().map(|r| r.topic).collect()
}

fn note_topics(plan: &Plan) -> Vec<&'static str> {
    plan.notes.iter().map(|n| n.topic).collect()
}

/// One row: what is asked, on what host, and what the plan must say.
struct Row {
    name: &'static str,
    request: Request,
    host: Host,
    /// The refusals' topics, in order.
    refused: &'static [&'static str],
    method: Option<Method>,
    notes: &'static [&'static str],
}

fn check(rows: Vec<Row>) {
    let mut failures = Vec::new();
    for row in rows {
        let plan = Plan::build(row.request, &row.host);
        let got = (topics(&plan), plan.method(), note_topics(&plan));
        let want = (row.refused.to_vec(), row.method, row.notes.to_vec());
        if got != want {
            failures.push(format!(
                "{}: refused {:?}, method {:?}, notes {:?}; wanted {:?}, {:?}, {:?}\n  {:?}",
                row.name, got.0, got.1, got.2, want.0, want.1, want.2, plan.refusals
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_method_and_the_options_it_can_honour() {
    let (dynamic, static_program) = (dynamic(), static_program());
    let i386 = elf("i386", 32, 3, Some("/lib/ld-linux.so.2"));
    let musl = elf("musl", 64, 62, Some("/lib/ld-musl-x86_64.so.1"));
    let other_loader = elf("other-loader", 64, 62, Some("/opt/loader.so"));
    let with = |path: &PathBuf, f: &dyn Fn(&mut Request)| {
        let mut r = request(path);
        f(&mut r);
        r
    };
    let user = fixture::user;
    check(vec![
        Row {
            name: "a glibc program takes the preload",
            request: request(&dynamic),
            host: user(),
            refused: &[],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "a static program takes ptrace",
            request: request(&static_program),
            host: user(),
            refused: &[],
            method: Some(Method::Ptrace),
            notes: &[],
        },
        Row {
            name: "i386 takes ptrace",
            request: request(&i386),
            host: user(),
            refused: &[],
            method: Some(Method::Ptrace),
            notes: &[],
        },
        Row {
            name: "a loader neither glibc's nor musl's takes ptrace",
            request: request(&other_loader),
            host: user(),
            refused: &[],
            method: Some(Method::Ptrace),
            notes: &[],
        },
        Row {
            name: "musl takes the preload",
            request: request(&musl),
            host: user(),
            refused: &[],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "--heap needs glibc's malloc",
            request: with(&musl, &|r| r.heap = Some(MIB)),
            host: user(),
            refused: &["method"],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "--heap needs the shim",
            request: with(&static_program, &|r| r.heap = Some(MIB)),
            host: user(),
            refused: &["method"],
            method: Some(Method::Ptrace),
            notes: &[],
        },
        Row {
            name: "--bind-now needs the shim",
            request: with(&static_program, &|r| r.bind_now = true),
            host: user(),
            refused: &["method"],
            method: Some(Method::Ptrace),
            notes: &[],
        },
        Row {
            name: "an explicit --fork relock needs the shim",
            request: with(&static_program, &|r| {
                r.fork = Some(memlock_run_protocol::Fork::Relock)
            }),
            host: user(),
            refused: &["method"],
            method: Some(Method::Ptrace),
            notes: &[],
        },
        Row {
            name: "--method preload cannot reach a static program",
            request: with(&static_program, &|r| r.method = Wanted::Preload),
            host: user(),
            refused: &["method"],
            method: None,
            notes: &[],
        },
        Row {
            name: "--method ptrace of a glibc program",
            request: with(&dynamic, &|r| r.method = Wanted::Ptrace),
            host: user(),
            refused: &[],
            method: Some(Method::Ptrace),
            notes: &[],
        },
        Row {
            name: "--prefault under ptrace: the thread stacks cannot be given back",
            request: with(&static_program, &|r| r.prefault = 16 * MIB),
            host: fixture::root(),
            refused: &[],
            method: Some(Method::Ptrace),
            notes: &["thread stacks"],
        },
    ]);
}

#[test]
fn the_limits_and_the_capability() {
    let dynamic = dynamic();
    let with = |f: &dyn Fn(&mut Request)| {
        let mut r = request(&dynamic);
        f(&mut r);
        r
    };
    let eight_mib_stack = || {
        let mut host = fixture::user_with_ambient_ipc_lock();
        host.limits.stack = crate::size::Rlimit::both(8 * MIB);
        host
    };
    check(vec![
        Row {
            name: "--limit above the hard limit, without CAP_IPC_LOCK",
            request: with(&|r| r.limit = Some(Limit::Bytes(64 * MIB))),
            host: fixture::user(),
            refused: &["RLIMIT_MEMLOCK"],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "--limit above the hard limit, with ambient CAP_IPC_LOCK: a note",
            request: with(&|r| r.limit = Some(Limit::Bytes(64 * MIB))),
            host: fixture::user_with_ambient_ipc_lock(),
            refused: &[],
            method: Some(Method::Preload),
            notes: &["RLIMIT_MEMLOCK"],
        },
        Row {
            name: "a pre-fault the limit cannot hold",
            request: with(&|r| r.prefault = 8 * MIB),
            host: fixture::user(),
            refused: &["--prefault"],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "a pre-fault the stack's hard limit cannot hold",
            request: with(&|r| r.prefault = 8 * MIB),
            host: eight_mib_stack(),
            refused: &["RLIMIT_STACK"],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "a thread stack below PTHREAD_STACK_MIN",
            request: with(&|r| r.thread_stack = Some(1024)),
            host: fixture::user(),
            refused: &["--thread-stack"],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "a thread stack of exactly PTHREAD_STACK_MIN, which glibc accepts",
            request: with(&|r| r.thread_stack = Some(thread_stack_min())),
            host: fixture::user(),
            refused: &[],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "every refusal is recorded, in the run's order",
            request: with(&|r| {
                r.limit = Some(Limit::Bytes(64 * MIB));
                r.prefault = 8 * MIB;
                r.thread_stack = Some(1024);
            }),
            host: eight_mib_stack(),
            refused: &["RLIMIT_STACK", "--thread-stack"],
            method: Some(Method::Preload),
            notes: &["RLIMIT_MEMLOCK"],
        },
        Row {
            name: "SECBIT_NO_CAP_AMBIENT_RAISE with CAP_IPC_LOCK to pass",
            request: request(&dynamic),
            host: Host {
                securebits: Some(1 << 6),
                ..fixture::user_with_ambient_ipc_lock()
            },
            refused: &["CAP_IPC_LOCK"],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "a kernel without ambient capabilities, as root",
            request: request(&dynamic),
            host: Host {
                caps: crate::host::Caps {
                    ambient: None,
                    ..fixture::root().caps
                },
                ..fixture::root()
            },
            refused: &["CAP_IPC_LOCK"],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "root with CAP_IPC_LOCK dropped from the bounding set (capsh --drop): it cannot pass",
            request: request(&dynamic),
            host: {
                let mut host = fixture::root();
                host.caps.bounding.remove(&Capability::CAP_IPC_LOCK);
                host
            },
            refused: &["CAP_IPC_LOCK"],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "... but it can where it is inheritable already",
            request: request(&dynamic),
            host: {
                let mut host = fixture::root();
                host.caps.bounding.remove(&Capability::CAP_IPC_LOCK);
                host.caps.inheritable.insert(Capability::CAP_IPC_LOCK);
                host
            },
            refused: &[],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "a container granted other capabilities, not IPC_LOCK: no note",
            request: request(&dynamic),
            host: Host {
                caps: crate::host::Caps {
                    bounding: [Capability::CAP_CHOWN, Capability::CAP_NET_BIND_SERVICE]
                        .into_iter()
                        .collect(),
                    ..fixture::user().caps
                },
                ..fixture::user()
            },
            refused: &[],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "granted IPC_LOCK in a container's bounding set, but not held",
            request: request(&dynamic),
            host: Host {
                caps: crate::host::Caps {
                    bounding: [Capability::CAP_IPC_LOCK].into_iter().collect(),
                    ..fixture::user().caps
                },
                ..fixture::user()
            },
            refused: &[],
            method: Some(Method::Preload),
            notes: &["CAP_IPC_LOCK"],
        },
    ]);
    let plan = Plan::build(request(&dynamic), &fixture::root());
    assert!(plan.holds_ipc_lock, "root passes CAP_IPC_LOCK on");
    let plan = Plan::build(
        request(&dynamic),
        &Host {
            initial_user_ns: false,
            ..fixture::root()
        },
    );
    assert!(
        !plan.holds_ipc_lock,
        "a user namespace's CAP_IPC_LOCK is not the kernel's"
    );
    let plan = Plan::build(request(&dynamic), &fixture::user());
    assert_eq!(
        plan.limits.memlock.unwrap().after,
        crate::size::Rlimit::both(8 * MIB),
        "the soft limit is raised to the hard one"
    );
}

#[test]
fn the_user_switch() {
    let dynamic = dynamic();
    let as_user = |spec: &str| {
        let mut r = request(&dynamic);
        r.user = Some(spec.to_owned());
        r
    };
    check(vec![
        Row {
            name: "--user needs root",
            request: as_user("nobody"),
            host: fixture::user(),
            refused: &["--user"],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "--user is refused to a memlock-run its file elevated",
            request: as_user("nobody"),
            host: Host {
                at_secure: true,
                ..fixture::root()
            },
            refused: &["--user"],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "--user root",
            request: as_user("root"),
            host: fixture::root(),
            refused: &["--user"],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "--user by a root whose bounding set lacks CAP_SETGID",
            request: as_user("nobody"),
            host: {
                let mut host = fixture::root();
                host.caps.effective.remove(&Capability::CAP_SETGID);
                host.caps.permitted.remove(&Capability::CAP_SETGID);
                host.caps.bounding.remove(&Capability::CAP_SETGID);
                host
            },
            refused: &["--user"],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "--user by a root without CAP_SETUID in effect",
            request: as_user("nobody"),
            host: {
                let mut host = fixture::root();
                host.caps.effective.remove(&Capability::CAP_SETUID);
                host
            },
            refused: &["--user"],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "--user of no one",
            request: as_user("no-such-user-memlock-run"),
            host: fixture::root(),
            refused: &["--user"],
            method: Some(Method::Preload),
            notes: &[],
        },
    ]);
    let refused = Plan::build(
        as_user("nobody"),
        &Host {
            at_secure: true,
            ..fixture::root()
        },
    );
    assert!(
        refused.refusals[0].message.contains("AT_SECURE"),
        "{}",
        refused.refusals[0].message
    );
}

#[test]
fn the_exec_gate() {
    let (dynamic, static_program) = (dynamic(), static_program());
    let warn = |path: &PathBuf| {
        let mut r = request(path);
        r.on_failure = OnFailure::Warn;
        r
    };
    let old_kernel = || Host {
        kernel: Some((5, 4)),
        ..fixture::user()
    };
    check(vec![
        Row {
            name: "Linux 5.4 has no exec gate",
            request: request(&dynamic),
            host: old_kernel(),
            refused: &["exec gate"],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "under --on-failure warn, a note",
            request: warn(&dynamic),
            host: old_kernel(),
            refused: &[],
            method: Some(Method::Preload),
            notes: &["exec gate"],
        },
        Row {
            name: "Linux 5.5 has the gate",
            request: request(&dynamic),
            host: Host {
                kernel: Some((5, 5)),
                ..fixture::user()
            },
            refused: &[],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "seccomp notifications of sizes the gate was not built for",
            request: request(&dynamic),
            host: Host {
                seccomp: crate::host::Seccomp {
                    mode: 0,
                    only_gate: false,
                    notif_sizes: Ok((88, 24)),
                },
                ..fixture::user()
            },
            refused: &["exec gate"],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "--no-exec-gate asks for none",
            request: Request {
                exec_gate: false,
                ..request(&dynamic)
            },
            host: old_kernel(),
            refused: &[],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "--no-inherit needs none",
            request: Request {
                inherit: false,
                ..request(&static_program)
            },
            host: old_kernel(),
            refused: &[],
            method: Some(Method::Ptrace),
            notes: &[],
        },
        Row {
            name: "a seccomp profile without the seccomp system call",
            request: request(&dynamic),
            host: Host {
                seccomp: crate::host::Seccomp {
                    mode: 2,
                    only_gate: false,
                    notif_sizes: Err("Function not implemented (os error 38)".into()),
                },
                ..fixture::user()
            },
            refused: &["exec gate"],
            method: Some(Method::Preload),
            notes: &[],
        },
    ]);
    // The refusal and the note say why, and what to pass instead.
    let refused = Plan::build(request(&dynamic), &old_kernel());
    let message = &refused.refusals[0].message;
    assert!(
        message.contains("Linux 5.4 runs here") && message.contains("--no-exec-gate"),
        "{message}"
    );
    let warned = Plan::build(warn(&dynamic), &old_kernel());
    let note = &warned.notes[0].text;
    assert!(
        note.starts_with("no exec gate: Linux 5.4 runs here") && note.contains("runs unlocked"),
        "{note}"
    );
    let arming = |host: Host, request: Request| Plan::build(request, &host).gate;
    assert_eq!(
        arming(fixture::root(), request(&dynamic)),
        Gate::Armed {
            arming: Arming::Admin,
            unreadable: false,
            reads: GateReads::All,
        }
    );
    assert_eq!(
        arming(fixture::user(), request(&dynamic)),
        Gate::Armed {
            arming: Arming::SetsNoNewPrivs,
            unreadable: false,
            reads: GateReads::Dumpable,
        }
    );
    assert_eq!(
        arming(
            Host {
                no_new_privs: true,
                ..fixture::user()
            },
            Request {
                no_dump: true,
                ..request(&dynamic)
            }
        ),
        Gate::Armed {
            arming: Arming::AlreadyNoNewPrivs,
            unreadable: true,
            reads: GateReads::Dumpable,
        },
        "a non-dumpable tree is unreadable without CAP_SYS_PTRACE"
    );
    let plan = Plan::build(request(&static_program), &fixture::user());
    assert!(
        plan.shim_in_env,
        "a static COMMAND carries the shim for what it executes"
    );
    let plan = Plan::build(
        Request {
            inherit: false,
            ..request(&static_program)
        },
        &fixture::user(),
    );
    assert!(!plan.shim_in_env && plan.gate == Gate::NotInheriting);
}

#[test]
fn ptrace_and_the_preload_check() {
    let (dynamic, static_program) = (dynamic(), static_program());
    let traced = || Host {
        tracer: Some((77, "strace".into())),
        ..fixture::user()
    };
    let limited = |host: Host| Host {
        limits: crate::host::Limits {
            address_space: crate::size::Rlimit::both(1 << 30),
            ..host.limits
        },
        ..host
    };
    check(vec![
        Row {
            name: "traced: the helper cannot attach",
            request: request(&static_program),
            host: traced(),
            refused: &["ptrace"],
            method: Some(Method::Ptrace),
            notes: &[],
        },
        Row {
            name: "PID 1: the helper would be COMMAND's child",
            request: request(&static_program),
            host: Host {
                pid: 1,
                ..fixture::user()
            },
            refused: &["ptrace"],
            method: Some(Method::Ptrace),
            notes: &[],
        },
        Row {
            name: "Yama 3",
            request: request(&static_program),
            host: Host {
                yama: Some(3),
                ..fixture::root()
            },
            refused: &["ptrace"],
            method: Some(Method::Ptrace),
            notes: &[],
        },
        Row {
            name: "Yama 2 without CAP_SYS_PTRACE",
            request: request(&static_program),
            host: Host {
                yama: Some(2),
                ..fixture::user()
            },
            refused: &["ptrace"],
            method: Some(Method::Ptrace),
            notes: &[],
        },
        Row {
            name: "Yama 2 as root",
            request: request(&static_program),
            host: Host {
                yama: Some(2),
                ..fixture::root()
            },
            refused: &[],
            method: Some(Method::Ptrace),
            notes: &[],
        },
        Row {
            name: "the preload needs no ptrace without RLIMIT_AS",
            request: request(&dynamic),
            host: traced(),
            refused: &[],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "under RLIMIT_AS it needs ptrace for the check",
            request: request(&dynamic),
            host: limited(traced()),
            refused: &["RLIMIT_AS"],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "and under --on-failure warn goes on unchecked",
            request: Request {
                on_failure: OnFailure::Warn,
                ..request(&dynamic)
            },
            host: limited(traced()),
            refused: &[],
            method: Some(Method::Preload),
            notes: &["RLIMIT_AS"],
        },
    ]);
    // Why the check cannot be had, and the ways on.
    let refused = Plan::build(request(&dynamic), &limited(traced()));
    let message = &refused.refusals[0].message;
    assert!(
        message.contains("traced by pid 77 (strace)")
            && message.contains("ulimit -v unlimited")
            && message.contains("--on-failure warn"),
        "{message}"
    );
    let warned = Plan::build(
        Request {
            on_failure: OnFailure::Warn,
            ..request(&dynamic)
        },
        &limited(traced()),
    );
    let note = &warned.notes[0].text;
    assert!(
        note.starts_with("cannot check that ld.so loads the preload shim")
            && note.contains("traced by pid 77 (strace)"),
        "{note}"
    );
    let plan = Plan::build(request(&dynamic), &limited(fixture::user()));
    assert!(plan.preload_check.is_some());
    let plan = Plan::build(request(&static_program), &limited(fixture::user()));
    assert!(
        plan.preload_check.is_none(),
        "the ptrace method locks itself"
    );
}

#[test]
fn what_commands_and_environments_are_refused() {
    let dynamic = dynamic();
    let text = file("text", b"just text\n", 0o755);
    let unexecutable = file("not-executable", b"#!/bin/sh\n", 0o644);
    let env_script = file("env-script", b"#!/usr/bin/env sh\n", 0o755);
    let with_env = |name: &str, value: &str| {
        let mut host = fixture::user();
        host.env.push((name.into(), value.into()));
        host
    };
    let missing = PathBuf::from("/nonexistent/memlock-run/program");
    let object = {
        let mut bytes = std::fs::read(&dynamic).unwrap();
        bytes[16..18].copy_from_slice(&1u16.to_le_bytes()); // ET_REL
        file("object.o", &bytes, 0o755)
    };
    check(vec![
        Row {
            name: "an ELF object file, which execve refuses (ENOEXEC)",
            request: request(&object),
            host: fixture::user(),
            refused: &["COMMAND"],
            method: None,
            notes: &[],
        },
        Row {
            name: "not found",
            request: request(&missing),
            host: fixture::user(),
            refused: &["COMMAND"],
            method: None,
            notes: &[],
        },
        Row {
            name: "not executable",
            request: request(&unexecutable),
            host: fixture::user(),
            refused: &["COMMAND"],
            method: None,
            notes: &[],
        },
        Row {
            name: "neither ELF nor #!",
            request: request(&text),
            host: fixture::user(),
            refused: &["COMMAND"],
            method: None,
            notes: &[],
        },
        Row {
            name: "--no-inherit of a #!/usr/bin/env script",
            request: Request {
                inherit: false,
                ..request(&env_script)
            },
            host: fixture::user(),
            refused: &["preload"],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "the C library in LD_PRELOAD",
            request: request(&dynamic),
            host: with_env("LD_PRELOAD", "libc.so.6"),
            refused: &["LD_PRELOAD"],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "the C library by its path, first in a list",
            request: request(&dynamic),
            host: with_env(
                "LD_PRELOAD",
                "/lib/x86_64-linux-gnu/libc.so.6:/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
            ),
            refused: &["LD_PRELOAD"],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "the C library first in a list separated by spaces, as ld.so also reads it",
            request: request(&dynamic),
            host: with_env(
                "LD_PRELOAD",
                "/lib/x86_64-linux-gnu/libc.so.6 /usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
            ),
            refused: &["LD_PRELOAD"],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "... is COMMAND's own with --no-inherit",
            request: Request {
                inherit: false,
                ..request(&dynamic)
            },
            host: with_env("LD_PRELOAD", "libc.so.6"),
            refused: &[],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "no shim",
            request: request(&dynamic),
            host: Host {
                shim: Err("cannot find the preload shim".into()),
                ..fixture::user()
            },
            refused: &["shim"],
            method: None,
            notes: &[],
        },
    ]);
    let statuses = |path: &PathBuf| {
        Plan::build(request(path), &fixture::user())
            .refusal()
            .unwrap_err()
            .status
    };
    assert_eq!(statuses(&missing), 127);
    assert_eq!(statuses(&unexecutable), 126);
    assert_eq!(statuses(&text), 126);
    assert_eq!(statuses(&object), 126);
    let plan = Plan::build(request(&object), &fixture::user());
    let message = &plan.refusals[0].message;
    assert!(
        message.starts_with(&format!(
            "{} has a damaged ELF header (an ELF type other than executable or shared object)",
            object.display()
        )),
        "named by its path, not the descriptor it is read through: {message}"
    );
}

#[test]
fn scripts_whose_interpreter_cannot_run_them_are_refused_with_the_reason() {
    let script = |name: &str, line: &str| file(name, format!("{line}\n").as_bytes(), 0o755);
    let refusal = |path: &PathBuf, host: &Host| {
        let plan = Plan::build(request(path), host);
        assert_eq!(topics(&plan), ["COMMAND"], "{:?}", plan.refusals);
        let refusal = plan.refusals[0].clone();
        (refusal.status, refusal.message)
    };
    let host = fixture::user();

    let missing = script(
        "missing-interpreter",
        "#!/nonexistent/memlock-run/interpreter",
    );
    let (status, message) = refusal(&missing, &host);
    assert_eq!(status, 127);
    assert!(
        message.contains("its #! interpreter /nonexistent/memlock-run/interpreter does not exist"),
        "{message}"
    );

    let directory = script("directory-interpreter", &format!("#!{}", dir().display()));
    let (status, message) = refusal(&directory, &host);
    assert_eq!(status, 126);
    assert!(
        message.contains(&format!(
            "its #! interpreter {} is not a regular file but a directory",
            dir().display()
        )),
        "{message}"
    );

    // The kernel gives up with ELOOP.
    let itself = dir().join("runs-itself");
    script("runs-itself", &format!("#!{}", itself.display()));
    let (status, message) = refusal(&itself, &host);
    assert_eq!(status, 126);
    assert!(message.contains("nest more than 4 deep"), "{message}");

    // A script named for the program its env line runs, first in PATH: env would execute it
    // again and again.
    let bin = dir().join("env-loop-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let python3 = bin.join("python3");
    std::fs::write(&python3, "#!/usr/bin/env python3\n").unwrap();
    std::fs::set_permissions(&python3, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut looping = fixture::user();
    looping.env = vec![(
        "PATH".into(),
        format!("{}:/usr/bin:/bin", bin.display()).into(),
    )];
    let (status, message) = refusal(&python3, &looping);
    assert_eq!(status, 126);
    assert!(message.contains("nest more than 4 deep"), "{message}");
}

#[test]
fn env_dash_c_finds_a_relative_program_and_relative_path_entries_from_its_directory() {
    let base = dir().join("env-chdir");
    std::fs::create_dir_all(base.join("sub")).unwrap();
    let program = base.join("sub/prog");
    std::fs::copy(dynamic(), &program).unwrap();
    let runs = |name: &str, line: String| {
        let script = file(name, format!("{line}\n").as_bytes(), 0o755);
        let plan = Plan::build(request(&script), &fixture::user());
        assert_eq!(topics(&plan), Vec::<&str>::new(), "{:?}", plan.refusals);
        match plan.target.unwrap().program {
            target::Program::Script { interpreter, .. } => interpreter.path,
            target::Program::Elf(_) => panic!("{name} is a script"),
        }
    };
    let base_shown = base.display();
    assert_eq!(
        runs(
            "env-chdir-program",
            format!("#!/usr/bin/env -S -C {base_shown} sub/prog")
        ),
        program
    );
    assert_eq!(
        runs(
            "env-chdir-path",
            format!("#!/usr/bin/env -S -C {base_shown} PATH=sub prog")
        ),
        program
    );
    // Absolute names stay as they are.
    assert_eq!(
        runs(
            "env-chdir-absolute",
            format!("#!/usr/bin/env -S -C / {}", program.display())
        ),
        program
    );
    assert_eq!(
        runs(
            "env-chdir-absolute-path",
            format!("#!/usr/bin/env -S -C / PATH={base_shown}/sub prog")
        ),
        program
    );
}

#[test]
fn a_shim_others_could_replace_is_refused_only_to_an_elevated_memlock_run() {
    let dynamic = dynamic();
    let untrusted = |at_secure: bool| {
        let mut host = fixture::user_with_ambient_ipc_lock();
        host.at_secure = at_secure;
        if let Ok(shim) = &mut host.shim {
            shim.untrusted = Some("/tmp is writable by others than root".into());
        }
        host
    };
    check(vec![
        Row {
            name: "the caller's own ambient capability: the build is used as it is",
            request: request(&dynamic),
            host: untrusted(false),
            refused: &[],
            method: Some(Method::Preload),
            notes: &[],
        },
        Row {
            name: "a file capability: refused",
            request: request(&dynamic),
            host: untrusted(true),
            refused: &["shim"],
            method: None,
            notes: &[],
        },
    ]);
    let plan = Plan::build(request(&dynamic), &untrusted(true));
    assert!(plan.refusals[0]
        .message
        .contains("/tmp is writable by others than root"));
}

#[test]
fn a_set_user_id_program_is_refused_by_every_method() {
    let copy = file("set-user-id", &std::fs::read(dynamic()).unwrap(), 0o4755);
    let nosuid = nix::sys::statvfs::statvfs(&copy)
        .is_ok_and(|fs| fs.flags().contains(nix::sys::statvfs::FsFlags::ST_NOSUID));
    if nosuid || std::fs::metadata(&copy).unwrap().permissions().mode() & 0o4000 == 0 {
        eprintln!("SKIPPED: {} cannot be set-user-ID here", copy.display());
        return;
    }
    // COMMAND runs as someone other than the file's owner.
    let owner = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&copy).unwrap().uid()
    };
    let mut host = fixture::user();
    host.ids.uid = owner.wrapping_add(1);
    host.ids.euid = host.ids.uid;
    // No exec gate, so no no_new_privs of this run's own (see below).
    for method in [Wanted::Auto, Wanted::Preload, Wanted::Ptrace] {
        let plan = Plan::build(
            Request {
                method,
                exec_gate: false,
                ..request(&copy)
            },
            &host,
        );
        assert_eq!(topics(&plan), ["method"], "{method:?}");
        assert!(plan.refusals[0].message.contains("set-user-ID"));
    }
    // The same under no_new_privs, the caller's or the one this run sets to arm its gate: the
    // kernel ignores the bit, so the program runs as the caller, without secure-execution, and
    // the preload reaches it.
    let plan = Plan::build(request(&copy), &host);
    assert!(
        matches!(
            plan.gate,
            Gate::Armed {
                arming: Arming::SetsNoNewPrivs,
                ..
            }
        ),
        "{:?}",
        plan.gate
    );
    assert!(plan.creds.no_new_privs);
    assert_eq!(topics(&plan), Vec::<&str>::new());
    // Said, since the program runs without the privilege the bit would give it.
    let note = plan.notes.iter().find(|n| n.topic == "set-ID");
    assert!(
        note.is_some_and(|n| n.text.contains("set-user-ID (owner uid")
            && n.text.contains("makes the kernel ignore the bit")),
        "{:?}",
        plan.notes
    );
    host.no_new_privs = true;
    let plan = Plan::build(
        Request {
            exec_gate: false,
            ..request(&copy)
        },
        &host,
    );
    assert_eq!(topics(&plan), Vec::<&str>::new());
    // The caller's own no_new_privs is the caller's doing: nothing to say.
    assert!(!plan.notes.iter().any(|n| n.topic == "set-ID"));
}

/// A task whose effective user ID is not its real one runs whatever it executes in
/// secure-execution mode: COMMAND too (a plain program), named as such.
#[test]
fn a_caller_with_another_effective_user_id_is_refused_for_any_program() {
    let mut host = fixture::user();
    host.ids.euid = host.ids.uid.wrapping_add(1);
    let plan = Plan::build(
        Request {
            exec_gate: false,
            ..request(&dynamic())
        },
        &host,
    );
    assert!(topics(&plan).contains(&"method"), "{:?}", topics(&plan));
    assert!(plan.refusals.iter().any(|r| r
        .message
        .contains("effective user or group ID other than its real one")));
}

#[test]
fn the_environment_comes_from_the_host_and_the_plan() {
    let dynamic = dynamic();
    let mut host = fixture::user();
    host.env.push(("LD_BIND_NOW".into(), "1".into()));
    host.env.push(("MEMLOCK_RUN_FLAGS".into(), "future".into()));
    let plan = Plan::build(
        Request {
            bind_now: true,
            ..request(&dynamic)
        },
        &host,
    );
    assert!(
        !plan.config.bind_now,
        "the user's own LD_BIND_NOW is theirs"
    );
    let get = |name: &str| {
        plan.env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("MEMLOCK_RUN_FLAGS"), Some(OsString::from("current")));
    assert_eq!(get("MEMLOCK_RUN_COMM"), Some(OsString::from("dynamic")));
    assert_eq!(
        get("MEMLOCK_RUN_LAUNCHER"),
        Some(OsString::from("/usr/bin/memlock-run"))
    );
    assert!(plan.renamed_by_shim);
}

#[test]
fn the_thread_stack_minimum_is_glibcs_run_time_one() {
    // A large signal frame (AMX) raises it above the compile-time PTHREAD_STACK_MIN.
    assert_eq!(stack_min_of(64 << 10), 64 << 10);
    // sysconf gives no minimum (-1, or nothing usable): the compile-time one.
    assert_eq!(stack_min_of(-1), libc::PTHREAD_STACK_MIN as u64);
    assert_eq!(stack_min_of(0), libc::PTHREAD_STACK_MIN as u64);
}

/// The value of `name` in COMMAND's environment.
fn var(plan: &Plan, name: &str) -> Option<String> {
    plan.env
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.to_string_lossy().into_owned())
}

#[test]
fn memlock_runs_variables_reach_only_an_environment_that_carries_the_shim() {
    let (dynamic, static_program) = (dynamic(), static_program());
    let host = fixture::user();
    let plan = |request: Request| Plan::build(request, &host);

    let preload = plan(request(&dynamic));
    assert_eq!(
        var(&preload, "MEMLOCK_RUN_LAUNCHER").as_deref(),
        Some("/usr/bin/memlock-run"),
        "the shim sends what the preload cannot reach back to memlock-run"
    );
    assert_eq!(
        var(&preload, "MEMLOCK_RUN_COMM").as_deref(),
        Some("dynamic")
    );

    let alone = plan(Request {
        inherit: false,
        ..request(&dynamic)
    });
    assert_eq!(
        var(&alone, "MEMLOCK_RUN_LAUNCHER"),
        None,
        "--no-inherit: the shim locks COMMAND alone and sends nothing on"
    );

    // The ptrace method executes the path itself, and the kernel names the process.
    let static_plan = plan(request(&static_program));
    assert!(
        var(&static_plan, "MEMLOCK_RUN_LAUNCHER").is_some(),
        "a static COMMAND carries the shim for what it executes"
    );
    assert_eq!(
        var(&static_plan, "MEMLOCK_RUN_COMM"),
        None,
        "a name for COMMAND would be taken by the first program it executes"
    );
    assert!(!static_plan.renamed_by_shim);

    // A glibc program locked from outside: the shim is not in its environment, nor anything of
    // memlock-run's that a shim further down would act on.
    let traced = plan(Request {
        method: Wanted::Ptrace,
        ..request(&dynamic)
    });
    let ours: Vec<_> = traced
        .env
        .iter()
        .filter(|(n, _)| n.as_encoded_bytes().starts_with(b"MEMLOCK_RUN_"))
        .collect();
    assert!(ours.is_empty(), "{ours:?}");
    assert_eq!(var(&traced, "LD_PRELOAD"), None);
}

#[test]
fn after_a_prefault_glibc_threads_get_their_old_default_stack_back_and_musl_threads_are_left_alone()
{
    let musl = elf("musl", 64, 62, Some("/lib/ld-musl-x86_64.so.1"));
    // --prefault 16 MiB raises the fixture's soft RLIMIT_STACK of 8 MiB.
    let thread_stack = |path: &PathBuf| {
        let plan = Plan::build(
            Request {
                prefault: 16 * MIB,
                ..request(path)
            },
            &fixture::root(),
        );
        assert_eq!(topics(&plan), Vec::<&str>::new(), "{:?}", plan.refusals);
        var(&plan, "MEMLOCK_RUN_THREAD_STACK")
    };
    assert_eq!(
        thread_stack(&dynamic()).as_deref(),
        Some("8388608"),
        "glibc sizes new threads from the soft RLIMIT_STACK it finds at start"
    );
    assert_eq!(
        thread_stack(&musl).as_deref(),
        Some("0"),
        "musl sizes thread stacks itself"
    );
}

#[test]
fn the_stack_limit_for_a_prefault_holds_what_execve_puts_on_the_stack_to_the_byte() {
    let dynamic = dynamic();
    let pointer = std::mem::size_of::<usize>();
    let command = vec![dynamic.as_os_str().to_owned(), OsString::from("--serve")];
    // Each string with its NUL and a pointer to it in argv or envp (the fixture's one variable
    // is PATH=/usr/bin:/bin), AT_EXECFN, and the variables memlock-run adds.
    let on_stack = (dynamic.as_os_str().len() + 1 + pointer)
        + ("--serve".len() + 1 + pointer)
        + ("PATH=/usr/bin:/bin".len() + 1 + pointer)
        + libc::PATH_MAX as usize
        + 1024;
    let soft = |prefault: u64| {
        let plan = Plan::build(
            Request {
                command: command.clone(),
                prefault,
                ..request(&dynamic)
            },
            &fixture::root(),
        );
        assert_eq!(topics(&plan), Vec::<&str>::new(), "{:?}", plan.refusals);
        plan.limits.stack.unwrap().after.soft
    };
    // A pre-fault that fills the last page to its last byte, and one byte more: an estimate
    // one byte off either way cannot give both.
    let fill = 16 * MIB - limits::STACK_HEADROOM - on_stack as u64;
    assert_eq!(soft(fill), Limit::Bytes(16 * MIB));
    assert_eq!(soft(fill + 1), Limit::Bytes(16 * MIB + 4096));
}

#[test]
fn another_user_reads_the_shim_by_the_owner_group_or_other_bits_as_the_kernel_picks_them() {
    use std::os::unix::fs::MetadataExt;
    // The directory above must be searchable by others, whatever the umask made it.
    std::fs::set_permissions(dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let group_only = file("shim-group-readable", b"", 0o640);
    let not_the_group = file("shim-not-group-readable", b"", 0o604);
    let meta = std::fs::metadata(&group_only).unwrap();
    let user = |gid: u32, groups: Vec<u32>| User {
        name: "svc".into(),
        uid: meta.uid() + 1,
        gid,
        groups,
        home: "/".into(),
        shell: "/bin/sh".into(),
    };
    let (group, other) = (meta.gid(), meta.gid() + 1);
    assert!(
        readable_by(&group_only, &user(group, vec![])),
        "its primary group"
    );
    assert!(
        readable_by(&group_only, &user(other, vec![group])),
        "a supplementary group"
    );
    assert!(!readable_by(&group_only, &user(other, vec![])), "another");
    // A member of the file's group gets the group's bits, not the others'.
    assert!(!readable_by(&not_the_group, &user(group, vec![])));
    assert!(readable_by(&not_the_group, &user(other, vec![])));
}

#[test]
fn a_set_id_install_is_refused_for_every_mode() {
    let mut host = fixture::user();
    assert_eq!(set_id_refusal(host.ids, true), None);
    host.ids.euid = 0;
    assert!(set_id_refusal(host.ids, true)
        .unwrap()
        .contains("set-user-ID"));
    // Not installed so: the caller's effective ID, which makes every exec secure-execution.
    let why = set_id_refusal(host.ids, false).unwrap();
    assert!(
        why.contains("effective user or group ID other than the real one")
            && why.contains("secure-execution mode"),
        "{why}"
    );
}

/// A running process of user 1000 that --pid may lock: the fixture the --pid rows vary.
fn keystore() -> Process {
    Process {
        pid: 300,
        name: "keystore".into(),
        state: "S (sleeping)".into(),
        uids: vec![1000; 4],
        seccomp: "0".into(),
        only_gate: false,
        tracer: None,
        holds_ipc_lock: false,
        memlock: Some((64 << 10, 8 * MIB)),
        vm_size: Some(4 * MIB),
    }
}

#[test]
fn pid_plans() {
    let process = keystore;
    let ask = |force: bool, limit: Option<Limit>| PidRequest {
        pid: 300,
        flags: LockFlags {
            current: true,
            future: false,
            onfault: false,
        },
        limit,
        force,
        no_dump: false,
    };
    type PidRow = (
        &'static str,
        Host,
        PidRequest,
        Option<Process>,
        &'static [&'static str],
    );
    let rows: Vec<PidRow> = vec![
        (
            "its own user's process",
            fixture::user(),
            ask(false, None),
            Some(process()),
            &[],
        ),
        (
            "no such process",
            fixture::user(),
            ask(false, None),
            None,
            &["--pid"],
        ),
        (
            "traced",
            fixture::user(),
            ask(false, None),
            Some(Process {
                tracer: Some((9, "gdb".into())),
                ..process()
            }),
            &["--pid"],
        ),
        (
            "a zombie",
            fixture::user(),
            ask(false, None),
            Some(Process {
                state: "Z (zombie)".into(),
                ..process()
            }),
            &["--pid"],
        ),
        (
            "seccomp strict, even forced",
            fixture::user(),
            ask(true, None),
            Some(Process {
                seccomp: "1".into(),
                ..process()
            }),
            &["--pid"],
        ),
        (
            "a seccomp filter",
            fixture::user(),
            ask(false, None),
            Some(Process {
                seccomp: "2".into(),
                ..process()
            }),
            &["--pid"],
        ),
        (
            "a seccomp filter, forced",
            fixture::user(),
            ask(true, None),
            Some(Process {
                seccomp: "2".into(),
                ..process()
            }),
            &[],
        ),
        (
            "the one filter is an exec gate",
            fixture::user(),
            ask(false, None),
            Some(Process {
                seccomp: "2".into(),
                only_gate: true,
                ..process()
            }),
            &[],
        ),
        (
            "another user's, unprivileged",
            fixture::user(),
            ask(false, None),
            Some(Process {
                uids: vec![0; 4],
                ..process()
            }),
            &["--pid"],
        ),
        (
            "another user's, as root",
            fixture::root(),
            ask(false, None),
            Some(process()),
            &[],
        ),
        (
            "Yama 1",
            Host {
                yama: Some(1),
                ..fixture::user()
            },
            ask(false, None),
            Some(process()),
            &["--pid"],
        ),
        (
            "Yama 2",
            Host {
                yama: Some(2),
                ..fixture::user()
            },
            ask(false, None),
            Some(process()),
            &["--pid"],
        ),
        (
            "Yama 2, as root",
            Host {
                yama: Some(2),
                ..fixture::root()
            },
            ask(false, None),
            Some(process()),
            &[],
        ),
        (
            "Yama 3, even as root",
            Host {
                yama: Some(3),
                ..fixture::root()
            },
            ask(false, None),
            Some(process()),
            &["--pid"],
        ),
        (
            "--limit for a process whose limit cannot be read",
            fixture::user(),
            ask(false, Some(Limit::Bytes(MIB))),
            Some(Process {
                memlock: None,
                ..process()
            }),
            &["--limit"],
        ),
    ];
    let mut failures = Vec::new();
    for (name, host, request, process, refused) in rows {
        let plan = PidPlan::build(request, &host, process);
        let got: Vec<&str> = plan.refusals.iter().map(|r| r.topic).collect();
        if got != refused {
            failures.push(format!(
                "{name}: {got:?}, wanted {refused:?}: {:?}",
                plan.refusals
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    let plan = PidPlan::build(ask(false, None), &fixture::user(), Some(process()));
    assert_eq!(
        plan.limit.map(|l| (l.soft, l.wanted)),
        Some((64 << 10, 8 * MIB)),
        "the soft limit is raised to the hard one"
    );
    let plan = PidPlan::build(
        ask(false, None),
        &fixture::user(),
        Some(Process {
            holds_ipc_lock: true,
            ..process()
        }),
    );
    assert_eq!(plan.limit, None, "CAP_IPC_LOCK: the limit does not bind");
    let _: CapsHashSet = CapsHashSet::new();
}

/// The RLIMIT_MEMLOCK `--check --pid` holds the process's VmSize against: the one it gets
/// (`--limit`, else its hard limit), or none to tell where its limits cannot be read.
#[test]
fn pid_plans_tell_the_limit_the_lock_will_be_bound_by() {
    let process = keystore();
    let ask = |limit: Option<Limit>| PidRequest {
        pid: 300,
        flags: LockFlags {
            current: true,
            future: false,
            onfault: false,
        },
        limit,
        force: false,
        no_dump: false,
    };
    let rows: Vec<(&str, Option<Limit>, Process, Option<u64>)> = vec![
        ("its hard limit", None, process.clone(), Some(8 * MIB)),
        (
            "its soft limit is its hard one already",
            None,
            Process {
                memlock: Some((8 * MIB, 8 * MIB)),
                ..process.clone()
            },
            Some(8 * MIB),
        ),
        (
            "--limit",
            Some(Limit::Bytes(2 * MIB)),
            process.clone(),
            Some(2 * MIB),
        ),
        (
            "--limit unlimited",
            Some(Limit::Unlimited),
            process.clone(),
            Some(u64::MAX),
        ),
        (
            "--limit of a process holding CAP_IPC_LOCK",
            Some(Limit::Bytes(3 * MIB)),
            Process {
                holds_ipc_lock: true,
                ..process.clone()
            },
            Some(3 * MIB),
        ),
        (
            "its limits cannot be read",
            None,
            Process {
                memlock: None,
                ..process.clone()
            },
            None,
        ),
    ];
    for (name, limit, process, allowed) in rows {
        let plan = PidPlan::build(ask(limit), &fixture::user(), Some(process));
        assert_eq!(plan.allowed(), allowed, "{name}");
    }
    let plan = PidPlan::build(ask(None), &fixture::user(), None);
    assert_eq!(plan.allowed(), None, "no process");
}

/// The note `--pid` ends its line with when it changed the process's soft RLIMIT_MEMLOCK.
#[test]
fn the_pid_line_says_how_the_limit_changed() {
    let raised = pid::LimitChange {
        soft: 64 << 10,
        hard: 8 * MIB,
        wanted: 8 * MIB,
    };
    assert_eq!(
        raised.describe(),
        "its RLIMIT_MEMLOCK was raised from 64 KiB to 8 MiB"
    );
    let unlimited = pid::LimitChange {
        wanted: libc::RLIM_INFINITY,
        ..raised
    };
    assert_eq!(
        unlimited.describe(),
        "its RLIMIT_MEMLOCK was raised from 64 KiB to unlimited"
    );
    // `--limit 4M` of a process whose soft limit is 8 MiB.
    let lowered = pid::LimitChange {
        soft: 8 * MIB,
        hard: 8 * MIB,
        wanted: 4 * MIB,
    };
    assert_eq!(
        lowered.describe(),
        "its RLIMIT_MEMLOCK was lowered from 8 MiB to 4 MiB"
    );
}

/// `-v` is COMMAND's: the shim in a preloaded COMMAND takes `1` out once it has reported, but
/// a COMMAND locked from outside runs no shim, so its environment says what the programs it
/// executes get (`0`); `-vv` is the whole tree's either way.
#[test]
fn verbose_reaches_what_command_executes_only_when_asked_twice() {
    use memlock_run_protocol::Verbose;
    let (dynamic, static_program) = (dynamic(), static_program());
    let host = fixture::user();
    for (command, verbose, carried) in [
        (&dynamic, Verbose::Command, "1"),
        (&dynamic, Verbose::Tree, "2"),
        (&static_program, Verbose::Command, "0"),
        (&static_program, Verbose::Tree, "2"),
        (&static_program, Verbose::Off, "0"),
    ] {
        let plan = Plan::build(
            Request {
                verbose,
                ..request(command)
            },
            &host,
        );
        assert_eq!(
            var(&plan, memlock_run_protocol::VERBOSE).as_deref(),
            Some(carried),
            "{command:?} {verbose:?}"
        );
        assert_eq!(plan.config.verbose, verbose, "the run's own setting");
    }
}

/// An LD_AUDIT library in COMMAND's environment may keep the shim out: refused, naming it and
/// the remedy; a note under --on-failure warn; nothing where the shim is not handed on.
#[test]
fn an_audit_library_is_refused_unless_on_failure_warn() {
    let dynamic = dynamic();
    let mut host = fixture::user();
    host.env.push(("LD_AUDIT".into(), "/tmp/audit.so".into()));
    let plan = Plan::build(request(&dynamic), &host);
    assert_eq!(topics(&plan), ["LD_AUDIT"]);
    let message = &plan.refusals[0].message;
    assert!(
        message.contains("LD_AUDIT names an audit library (/tmp/audit.so)")
            && message.contains("env -u LD_AUDIT"),
        "{message}"
    );
    let warned = Plan::build(
        Request {
            on_failure: OnFailure::Warn,
            ..request(&dynamic)
        },
        &host,
    );
    assert_eq!(topics(&warned), Vec::<&str>::new());
    assert!(warned.notes.iter().any(|n| n.topic == "LD_AUDIT"));
    // An empty LD_AUDIT loads nothing.
    host.env.pop();
    host.env.push(("LD_AUDIT".into(), "".into()));
    assert_eq!(
        topics(&Plan::build(request(&dynamic), &host)),
        Vec::<&str>::new()
    );
}

/// Which processes the gate reads (gate::reads), by each rule: CAP_SYS_PTRACE (all, unless
/// Yama's scope 3), or no_new_privs with the tree's own IDs, one of each, no CAP_SETUID or
/// CAP_SETGID to pass on and no Yama restriction (the dumpable ones); the word wherever a
/// mandatory access control module may deny it, or anything else is not so.
#[test]
fn what_the_gate_reads_follows_the_kernels_rules_for_reading_a_process() {
    use super::gate::reads;
    use GateReads::{All, Dumpable, Word};
    let with = |caps: &[Capability]| {
        let mut host = fixture::user();
        host.caps.permitted = caps.iter().copied().collect();
        host.caps.effective = host.caps.permitted.clone();
        host
    };
    let user = fixture::user;
    let ids = |uid, euid, gid, egid| Host {
        ids: crate::host::Ids {
            uid,
            euid,
            gid,
            egid,
        },
        ..user()
    };
    let ptrace = || with(&[Capability::CAP_SYS_PTRACE]);
    let sets = Arming::SetsNoNewPrivs;
    let rows: [(&str, Host, Arming, bool, GateReads); 19] = [
        ("unprivileged, no Yama", user(), sets, false, Dumpable),
        (
            "already no_new_privs",
            user(),
            Arming::AlreadyNoNewPrivs,
            false,
            Dumpable,
        ),
        (
            "Yama 0",
            Host {
                yama: Some(0),
                ..user()
            },
            sets,
            false,
            Dumpable,
        ),
        (
            "Yama 1",
            Host {
                yama: Some(1),
                ..user()
            },
            sets,
            false,
            Word,
        ),
        (
            "Yama 2",
            Host {
                yama: Some(2),
                ..user()
            },
            sets,
            false,
            Word,
        ),
        ("no no_new_privs", user(), Arming::Admin, false, Word),
        ("--user", user(), sets, true, Word),
        (
            "CAP_SETUID",
            with(&[Capability::CAP_SETUID]),
            sets,
            false,
            Word,
        ),
        (
            "CAP_SETGID",
            with(&[Capability::CAP_SETGID]),
            sets,
            false,
            Word,
        ),
        (
            "CAP_IPC_LOCK",
            with(&[Capability::CAP_IPC_LOCK]),
            sets,
            false,
            Dumpable,
        ),
        ("real uid", ids(0, 1000, 1000, 1000), sets, false, Word),
        ("effective uid", ids(1000, 0, 1000, 1000), sets, false, Word),
        ("real gid", ids(1000, 1000, 0, 1000), sets, false, Word),
        ("effective gid", ids(1000, 1000, 1000, 0), sets, false, Word),
        ("root", fixture::root(), Arming::Admin, true, All),
        (
            "ptrace, Yama 2",
            Host {
                yama: Some(2),
                ..ptrace()
            },
            sets,
            false,
            All,
        ),
        (
            "ptrace, Yama 3",
            Host {
                yama: Some(3),
                ..ptrace()
            },
            sets,
            false,
            Word,
        ),
        (
            "MAC, ptrace",
            Host {
                mac: true,
                ..fixture::root()
            },
            Arming::Admin,
            false,
            Word,
        ),
        (
            "MAC",
            Host {
                mac: true,
                ..user()
            },
            sets,
            false,
            Word,
        ),
    ];
    for (what, host, arming, other_user, want) in rows {
        assert_eq!(reads(arming, &host, other_user), want, "{what}");
    }
}
