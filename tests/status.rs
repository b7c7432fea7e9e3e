//! `memlock-run --status PID...`: real processes in each state, read as people and as
//! scripts read them, and held to what /proc says.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

use common::*;
use serde_json::Value;

/// `memlock-run --status PID --json`, parsed; the one process in it.
fn status_json(pid: i32) -> Value {
    let out = output(memlock_run([
        "--status".to_owned(),
        pid.to_string(),
        "--json".to_owned(),
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("--json writes JSON");
    assert_eq!(report["version"], 1);
    assert_eq!(report["errors"].as_array().map(Vec::len), Some(0));
    let process = report["processes"][0].clone();
    assert_eq!(process["pid"], pid);
    process
}

fn status_text(pid: i32) -> String {
    let out = output(memlock_run(["--status".to_owned(), pid.to_string()]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    stdout_of(&out)
}

fn u(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

fn lockable(process: &Value) -> Vec<&Value> {
    process["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["lockable"] == true)
        .collect()
}

/// The mapping of the file `name`.
fn mapping_named<'a>(process: &'a Value, name: &str) -> &'a Value {
    process["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no mapping of {name}"))
}

/// The anonymous mapping of `size` bytes the probe made with --map.
fn mapping_of_size(process: &Value, size: u64) -> &Value {
    process["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| u(&m["size"]) == size && m["name"] == "")
        .unwrap_or_else(|| panic!("no anonymous mapping of {size} bytes"))
}

#[test]
fn locked_by_memlock_run() {
    let probe = probe();
    let running = Running::start(memlock_run([
        "--future".as_ref(),
        "--".as_ref(),
        probe.as_os_str(),
    ]));
    let process = status_json(running.pid);
    assert_eq!(process["state"], "locked", "{process:#}");
    assert_eq!(process["shim"]["loaded"], true);
    assert_eq!(process["shim"]["flags"], "MCL_CURRENT|MCL_FUTURE");
    assert!(process["shim"]["path"]
        .as_str()
        .unwrap()
        .ends_with("libmemlock_run_shim.so"));
    assert_eq!(
        u(&process["vm_lck"]),
        running.status().bytes("VmLck"),
        "VmLck as the kernel says"
    );
    assert_eq!(u(&process["unlocked_rss"]), 0);
    assert!(lockable(&process).iter().all(|m| m["vm_locked"] == true));
    let text = status_text(running.pid);
    assert!(
        text.contains(&format!("PID {} (probe", running.pid)) && text.contains("): locked\n"),
        "{text}"
    );
    assert!(
        text.contains("VmLck ") && text.contains("VmRSS ") && text.contains("VmSwap "),
        "{text}"
    );
    assert!(
        text.contains("shim: loaded (") && text.contains("MCL_CURRENT|MCL_FUTURE"),
        "{text}"
    );
    assert!(running.finish().status.success());
}

/// The gate of COMMAND's run, in text and JSON, as it runs, once stopped and once killed; the
/// PID is the one COMMAND's environment names, and the process there is the gate.
#[test]
fn a_process_shows_its_exec_gate_running_stopped_and_gone() {
    let probe = probe();
    let running = Running::start(memlock_run(["--", probe.to_str().unwrap()]));
    let gate = gate_of(running.pid);
    assert_eq!(
        fs::read_to_string(format!("/proc/{gate}/comm")).unwrap(),
        "memlock-gate\n"
    );
    for (state, signal, until) in [
        ("running", 0, (|c| c != 'T') as fn(char) -> bool),
        ("stopped", libc::SIGSTOP, |c| c == 'T'),
        ("running", libc::SIGCONT, |c| c != 'T'),
        ("gone", libc::SIGKILL, |c| c == '-'),
    ] {
        signal_and_wait(gate, signal, until);
        let process = status_json(running.pid);
        assert_eq!(process["gate"]["pid"], gate, "{process:#}");
        assert_eq!(process["gate"]["state"], state, "{process:#}");
        assert_eq!(process["gate"]["alive"], state != "gone", "{process:#}");
        let text = status_text(running.pid);
        assert!(
            text.contains(&format!("  exec gate: pid {gate}"))
                && text.contains(&format!(", {state}: ")),
            "{text}"
        );
    }
    assert!(running.finish().status.success());
    // No gate, no line: --no-inherit.
    let running = Running::start(memlock_run(["--no-inherit", "--", probe.to_str().unwrap()]));
    assert_eq!(status_json(running.pid)["gate"], Value::Null);
    assert!(!status_text(running.pid).contains("exec gate"));
    assert!(running.finish().status.success());
}

#[test]
fn locked_on_fault() {
    let probe = probe();
    let running = Running::start(memlock_run([
        "--future",
        "--onfault",
        "--",
        probe.to_str().unwrap(),
        "--map",
        "64",
        "--touch",
        "8",
    ]));
    let process = status_json(running.pid);
    let big = mapping_of_size(&process, 64 * MIB);
    assert_eq!(big["vm_locked"], true, "{big}");
    assert_eq!(big["lock_on_fault"], true, "{big}");
    let rss = u(&big["rss"]);
    assert!(
        (8 * MIB..16 * MIB).contains(&rss),
        "only touched pages are resident: {big}"
    );
    // VmLck counts the locked address space, untouched pages included.
    assert!(
        u(&process["vm_lck"]) >= 64 * MIB && u(&process["vm_lck"]) > u(&process["vm_rss"]),
        "{process:#}"
    );
    assert_eq!(
        process["shim"]["flags"],
        "MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT"
    );
    assert!(status_text(running.pid).contains("locked on fault (lf)"));
    assert!(running.finish().status.success());
}

/// A PROT_NONE reservation made under MCL_FUTURE (mariadbd's, a JVM's) counts in VmLck but is
/// never resident: the headline is the resident locked share, and the text says VmLck is far
/// above it.
#[test]
fn a_reservation_under_the_lock_is_not_what_is_locked() {
    let probe = probe();
    let running = Running::start(memlock_run([
        "--future",
        "--",
        probe.to_str().unwrap(),
        "--reserve",
        "1024",
    ]));
    let process = status_json(running.pid);
    let kernel = running.status();
    assert!(
        u(&process["vm_lck"]) >= 1024 * MIB,
        "the reservation is in VmLck: {process:#}"
    );
    let reserved = mapping_of_size(&process, 1024 * MIB);
    assert_eq!(reserved["vm_locked"], true, "{reserved}");
    assert_eq!(u(&reserved["rss"]), 0, "{reserved}");
    let locked_rss = u(&process["locked_rss"]);
    let total_rss = u(&process["total_rss"]);
    assert!(
        locked_rss > 0 && locked_rss <= total_rss && locked_rss < 64 * MIB,
        "{process:#}"
    );
    // Every resident page is in a locked mapping, and the smaps sum is the kernel's VmRSS
    // give or take what moved between the two reads.
    assert_eq!(u(&process["unlocked_rss"]), 0, "{process:#}");
    let vm_rss = kernel.bytes("VmRSS");
    assert!(
        total_rss.abs_diff(vm_rss) < MIB,
        "{total_rss} vs VmRSS {vm_rss}"
    );
    let text = status_text(running.pid);
    // [vdso] is resident and cannot be locked: 99% or 100%.
    assert!(
        text.contains("resident in locked mappings of") && locked_rss * 100 / total_rss >= 95,
        "{text}"
    );
    assert!(
        text.contains("of address space reserved under the lock")
            && text.contains("times the locked resident memory"),
        "{text}"
    );
    assert!(running.finish().status.success());

    // Without a reservation, no such line.
    let running = Running::start(memlock_run(["--future", "--", probe.to_str().unwrap()]));
    let text = status_text(running.pid);
    assert!(!text.contains("times the locked resident memory"), "{text}");
    assert!(running.finish().status.success());
}

#[test]
fn not_locked_and_its_large_mappings_named() {
    let probe = probe();
    let mut cmd = Command::new(&probe);
    cmd.args(["--map", "64", "--touch", "8"]);
    let running = Running::start(cmd);
    let process = status_json(running.pid);
    assert_eq!(process["state"], "not locked");
    assert_eq!(process["shim"]["loaded"], false);
    assert_eq!(u(&process["vm_lck"]), 0);
    let largest = &process["large_unlocked"][0];
    // The kernel merges a neighbouring anonymous mapping of the same permissions into one
    // (a few pages of the C library's, at times): the 64 MiB, and perhaps those.
    assert!(
        (64 * MIB..65 * MIB).contains(&u(&largest["size"])),
        "the largest unlocked mapping comes first: {largest}"
    );
    assert!(u(&process["unlocked_rss"]) >= 8 * MIB);
    let text = status_text(running.pid);
    assert!(
        text.contains("): not locked\n") && text.contains("shim: not loaded"),
        "{text}"
    );
    assert!(
        text.contains("64 MiB anonymous memory at"),
        "the large mapping is named: {text}"
    );
    assert!(running.finish().status.success());
}

#[test]
fn a_static_binary() {
    let running = Running::start(Command::new(static_probe()));
    let process = status_json(running.pid);
    assert_eq!(process["state"], "not locked");
    assert_eq!(process["shim"]["loaded"], false);
    assert!(!lockable(&process).is_empty());
    let stat = fs::read_to_string(format!("/proc/{}/stat", running.pid)).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    // minflt is field 10, majflt 12 (proc(5)); `after` starts at field 3. Faults only grow.
    assert!(u(&process["faults"]["minor"]) <= fields[7].parse::<u64>().unwrap());
    assert!(u(&process["faults"]["minor"]) > 0);
    assert!(running.finish().status.success());
}

#[test]
fn reclaimed_pages_show_as_not_resident_and_locked_ones_stay() {
    let reclaim = reclaim_probe();
    let file = scratch().join(format!("reclaim-data-{}", std::process::id()));
    let mut cmd = Command::new(&reclaim);
    cmd.arg(&file).arg("16");
    // Probe first: a kernel without MADV_PAGEOUT exits 77.
    let trial = output(cmd);
    if trial.status.code() == Some(77) {
        skip(format_args!("{}", stderr_of(&trial).trim()));
        return;
    }
    let mut cmd = Command::new(&reclaim);
    cmd.arg(&file).arg("16");
    let running = Running::start(cmd);
    let process = status_json(running.pid);
    let name = file.to_str().unwrap();
    let mapping = mapping_named(&process, name);
    assert_eq!(u(&mapping["size"]), 16 * MIB);
    if u(&mapping["rss"]) == 16 * MIB {
        // tmpfs pages, for one, need swap to be reclaimed.
        skip(format_args!(
            "the kernel reclaimed nothing of {} here (on tmpfs without swap?)",
            file.display()
        ));
        let _ = running.finish();
        let _ = fs::remove_file(&file);
        return;
    }
    let text = status_text(running.pid);
    assert!(
        text.contains(&format!("16 MiB {} at", file.display())),
        "listed as a large mapping not locked: {text}"
    );
    assert!(running.finish().status.success());

    let mut cmd = memlock_run(["--future".as_ref(), "--".as_ref(), reclaim.as_os_str()]);
    cmd.arg(&file).arg("16");
    let running = Running::start(cmd);
    let process = status_json(running.pid);
    let mapping = mapping_named(&process, name);
    assert_eq!(mapping["vm_locked"], true);
    assert_eq!(
        u(&mapping["rss"]),
        16 * MIB,
        "locked pages are not reclaimed: {mapping}"
    );
    assert!(running.finish().status.success());
    let _ = fs::remove_file(&file);
}

/// Every field docs/status-json.md documents is in the output, and nothing undocumented.
#[test]
fn json_has_the_documented_fields() {
    let probe = probe();
    let running = Running::start(memlock_run(["--", probe.to_str().unwrap()]));
    let out = output(memlock_run([
        "--status".to_owned(),
        running.pid.to_string(),
        "999999999".to_owned(),
        "--json".to_owned(),
    ]));
    assert_eq!(
        out.status.code(),
        Some(1),
        "a PID that does not exist makes it exit 1"
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON even with an error");
    let docs = fs::read_to_string(repo().join("docs/status-json.md")).expect("docs/status-json.md");
    // A key is documented as `key`, as a path ending in it (`faults.major`), or as a list (`mappings[]`).
    let documented = |key: &str| {
        [format!("`{key}`"), format!(".{key}`"), format!("`{key}[]")]
            .iter()
            .any(|form| docs.contains(form))
    };
    let mut keys = BTreeSet::new();
    collect_keys(&report, &mut keys);
    for key in &keys {
        assert!(documented(key), "{key} is not in docs/status-json.md");
    }
    for key in [
        "version",
        "processes",
        "errors",
        "pid",
        "name",
        "exe",
        "state",
        "vm_lck",
        "vm_rss",
        "vm_swap",
        "vm_size",
        "locked_rss",
        "total_rss",
        "faults",
        "major",
        "minor",
        "shim",
        "loaded",
        "path",
        "flags",
        "unlocked_rss",
        "large_unlocked",
        "mappings",
        "start",
        "end",
        "perms",
        "size",
        "rss",
        "locked",
        "swap",
        "vm_locked",
        "lock_on_fault",
        "lockable",
        "error",
        "gate",
        "alive",
    ] {
        assert!(keys.contains(key), "{key} is missing from the output");
    }
    assert_eq!(report["errors"][0]["pid"], 999999999);
    assert!(report["errors"][0]["error"]
        .as_str()
        .unwrap()
        .contains("no such process"));
    assert!(running.finish().status.success());
}

fn collect_keys(value: &Value, keys: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                keys.insert(key.clone());
                collect_keys(inner, keys);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_keys(item, keys)),
        _ => {}
    }
}

#[test]
fn unreadable_and_missing_pids_are_explained() {
    if skip_unprivileged_run("reads a root process as nobody") {
        return;
    }
    let probe = probe();
    let running = Running::start(Command::new(&probe));
    let out = output(as_nobody().memlock_run(["--status".to_owned(), running.pid.to_string()]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(
        err.contains("permission denied") && err.contains("CAP_SYS_PTRACE"),
        "{err}"
    );
    assert!(running.finish().status.success());

    let out = output(memlock_run(["--status", "999999999"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("no such process"),
        "{}",
        stderr_of(&out)
    );
    let out = output(memlock_run(["--status", "self"]));
    assert_eq!(out.status.code(), Some(125), "a usage error");
}
