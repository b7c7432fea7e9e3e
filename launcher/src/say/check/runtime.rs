//! Runtime classes `--check` and `-v` recognise in COMMAND's file, and what each does to the
//! limit or the lock: the JVM, V8 (node, Chromium, Electron), and threaded programs.
//!
//! Recognised from what can be read without running anything: the file name, the libraries
//! it needs (DT_NEEDED), and its dynamic symbols. Go is recognised by `elf::is_go` for the
//! ptrace method, which Go programs take. Not for: deciding how to lock (that is
//! `crate::plan::method`), or anything a program only shows once it runs.

use std::ffi::OsStr;
use std::fs::File;
use std::path::Path;

use object::{Object, ObjectSymbol, ReadCache};

use memlock_run_protocol::Fork;

use crate::plan::Request;
use crate::say::finding::{Finding, Verdict};
use crate::size::{Limit, Rlimit};

/// What COMMAND's file says it is.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Runtime {
    /// A JVM launcher: libjvm is dlopen'ed after start.
    pub jvm: bool,
    /// V8 (node, Chromium, Electron): reserves GiBs of address space, frees with madvise.
    pub v8: bool,
    /// The program calls pthread_create itself, or needs a library that exists to run
    /// threads.
    pub threads: bool,
    /// Chromium or Electron: a browser whose zygote forks its children.
    pub chromium: bool,
    /// Ruby: at start it touches the bottom of its main stack, as deep as RLIMIT_STACK allows
    /// (thread_pthread.c's reserve_stack, against mappings placed in the stack's way), so the
    /// locked stack grows by nearly its whole limit at once.
    pub whole_stack: bool,
}

impl Runtime {
    pub fn of(path: &Path) -> Runtime {
        let name = path.file_name().and_then(OsStr::to_str).unwrap_or_default();
        let needed: Vec<String> = crate::elf::layout(path)
            .ok()
            .flatten()
            .map(|l| {
                l.needed
                    .iter()
                    .map(|n| n.to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let needs = |prefix: &str| needed.iter().any(|n| n.starts_with(prefix));
        // Libraries that exist to run threads: libpthread, GnuPG's npth (gpg-agent), GLib's
        // gthread, libuv, OpenMP's runtime.
        let thread_library = [
            "libpthread.",
            "libnpth.",
            "libgthread-",
            "libuv.",
            "libgomp.",
        ]
        .iter()
        .any(|prefix| needs(prefix));
        let (mut exports_v8, mut threads) = (false, thread_library);
        if let Ok(file) = File::open(path) {
            let data = ReadCache::new(file);
            if let Ok(parsed) = object::File::parse(&data) {
                for symbol in parsed.dynamic_symbols() {
                    let Ok(sym) = symbol.name() else { continue };
                    // node exports V8's API for its addons: _ZN2v8...
                    exports_v8 |= symbol.is_definition() && sym.starts_with("_ZN2v8");
                    threads |= symbol.is_undefined() && sym.starts_with("pthread_create");
                }
            }
        }
        Runtime {
            jvm: needs("libjli.") || needs("libjvm.") || name == "java",
            v8: exports_v8
                || needs("libnode.")
                || needs("libv8")
                || ["node", "nodejs", "chromium", "chrome", "electron"].contains(&name),
            // The JVM and V8 are threaded whatever their launcher's symbols say.
            threads: threads || needs("libjli.") || name == "java",
            chromium: ["chromium", "chrome", "electron"].contains(&name),
            whole_stack: needs("libruby") || name.starts_with("ruby"),
        }
    }
}

/// glibc's default thread stack: the soft RLIMIT_STACK, or 2 MiB when it is unlimited.
pub fn default_thread_stack(stack: Rlimit) -> u64 {
    match stack.soft {
        Limit::Bytes(bytes) => bytes,
        Limit::Unlimited => 2 << 20,
    }
}

fn finding(verdict: Verdict, topic: &'static str, text: String, remedy: Option<String>) -> Finding {
    Finding {
        verdict,
        topic,
        text,
        remedy,
    }
}

/// `--check`'s findings for COMMAND's runtime class (`Runtime::of` COMMAND's file, the plan's
/// target); `memlock_after` the limit COMMAND will have, `will_hold` whether it will hold
/// CAP_IPC_LOCK. Threads are judged with the room the limit leaves (`super::growth`).
pub fn findings(
    request: &Request,
    runtime: &Runtime,
    memlock_after: Option<Rlimit>,
    will_hold: bool,
) -> Vec<Finding> {
    let limit = match memlock_after.map(|l| l.soft) {
        Some(Limit::Bytes(bytes)) if !will_hold => Some(bytes),
        _ => None,
    };
    let show = crate::size::show;
    let capability =
        "give COMMAND CAP_IPC_LOCK (run memlock-run as root, or from a systemd unit with \
                      AmbientCapabilities=CAP_IPC_LOCK)";
    let mut out = Vec::new();
    if runtime.jvm {
        if !request.flags.future {
            out.push(finding(
                Verdict::Warn,
                "JVM",
                "a JVM: it loads libjvm (about 20 MiB) and maps its heap and code cache after start, so \
                 MCL_CURRENT locks only the launcher, a few MiB of the 40 MiB or more it will have mapped \
                 once running; -v's VmLck is measured at start"
                    .to_owned(),
                Some("lock what it maps later too: --onfault --future (docs/jvm.md)".to_owned()),
            ));
        } else if !request.flags.onfault {
            out.push(finding(
                Verdict::Warn,
                "JVM",
                "a JVM under --future without --onfault: G1 commits heap regions inside its pauses and \
                 MCL_FUTURE has the kernel populate them there, so pauses grow from milliseconds to \
                 hundreds of milliseconds and idle RSS many times"
                    .to_owned(),
                Some("add --onfault: pages are then locked as they are first touched (docs/jvm.md)".to_owned()),
            ));
        }
        if let (true, Some(limit)) = (request.flags.future, limit) {
            out.push(finding(
                Verdict::Fail,
                "JVM",
                format!(
                    "a JVM under --future without CAP_IPC_LOCK: it reserves its heap and code cache (hundreds \
                     of MiB of address space) at start, MCL_FUTURE counts them against RLIMIT_MEMLOCK {}, \
                     and it stops (\"failed to map segment\")",
                    show(limit)
                ),
                Some(format!("{capability}, or drop --future")),
            ));
        }
    }
    if runtime.v8 {
        if let (true, Some(limit)) = (request.flags.future, limit) {
            out.push(finding(
                Verdict::Fail,
                "V8",
                format!(
                    "V8 (node, Chromium, Electron) under --future without CAP_IPC_LOCK: it reserves GiBs of \
                     address space for its heap cage, which MCL_FUTURE counts against RLIMIT_MEMLOCK {}",
                    show(limit)
                ),
                Some(format!("{capability}, or drop --future")),
            ));
        } else {
            out.push(finding(
                Verdict::Ok,
                "V8",
                "V8 (node, Chromium, Electron) frees memory with madvise(MADV_DONTNEED), which the kernel \
                 refuses on locked ranges: the shim's madvise frees it anyway and keeps it locked"
                    .to_owned(),
                None,
            ));
        }
    }
    let relock = request.fork != Some(Fork::Off);
    // Chromium's zygote drops every capability in the children it forks (capset to none,
    // even with --no-sandbox): only an unlimited RLIMIT_MEMLOCK then lets them map memory.
    let unlimited = matches!(memlock_after.map(|l| l.soft), Some(Limit::Unlimited));
    if runtime.chromium && request.flags.future && relock && !unlimited {
        out.push(finding(
            Verdict::Fail,
            "Chromium",
            "Chromium under --future with forked children locked again: its zygote drops every capability \
             in the children it forks (CAP_IPC_LOCK too, even with --no-sandbox), and their locked memory \
             (tens of GiB of reserved address space) is past RLIMIT_MEMLOCK, so their next mmap fails with \
             EAGAIN and they stop (the GPU process exits with code 5, renderers with SIGTRAP)"
                .to_owned(),
            Some(
                "drop --future: MCL_CURRENT locks Chromium's reserved address space and what it maps at start \
                 (98% of its resident memory in the compatibility suite); or run it with an unlimited hard \
                 RLIMIT_MEMLOCK (LimitMEMLOCK=infinity in a systemd unit, then --limit unlimited); --fork off \
                 also lets it run, but its zygote's children (renderers) then run unlocked"
                    .to_owned(),
            ),
        ));
    }
    out
}

/// `-v`'s word, before exec, on a program that loads its code after start.
pub fn verbose_note(request: &Request, path: &Path) -> Option<String> {
    let runtime = Runtime::of(path);
    (runtime.jvm && !request.flags.future).then(|| {
        format!(
            "memlock-run: {} is a JVM: it loads libjvm and maps its heap after start, which MCL_CURRENT does \
             not lock; the VmLck reported at start is the launcher's only. Lock it with --onfault --future \
             (docs/jvm.md)",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_binary_is_threaded_and_neither_jvm_nor_v8() {
        let exe = std::env::current_exe().unwrap();
        let runtime = Runtime::of(&exe);
        assert!(!runtime.jvm && !runtime.v8);
    }
}
