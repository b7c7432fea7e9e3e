//! What a real-time program needs beyond mlockall, as the kernel reports it: page-fault
//! counts of a steady state (getrusage), the pre-faulted heap in smaps, thread stack sizes,
//! locks in forked children (a probe, and nginx's workers), LD_BIND_NOW.

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// tests/probes/rtprobe.c: faults counted over its steady state, by part.
fn rtprobe() -> PathBuf {
    compile("rtprobe.c", "rtprobe", &["-pthread"])
}

/// Runs rtprobe through `cmd` and returns its "PART minor N major N" lines and its
/// "thread-stack N" line as `part -> (minor, major)`.
fn faults(cmd: Command) -> HashMap<String, (u64, u64)> {
    let out = output(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "rtprobe failed ({}): {stdout}\n{}",
        out.status,
        stderr_of(&out)
    );
    let mut parts = HashMap::new();
    for line in stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [part, "minor", minor, "major", major] => {
                parts.insert(
                    part.to_string(),
                    (minor.parse().unwrap(), major.parse().unwrap()),
                );
            }
            ["thread-stack", size] => {
                parts.insert("thread-stack".to_owned(), (size.parse().unwrap(), 0));
            }
            _ => {}
        }
    }
    assert!(
        parts.contains_key("total"),
        "no total in rtprobe's output: {stdout}"
    );
    parts
}

fn run_rtprobe(options: &[&str], probe_args: &[&str]) -> HashMap<String, (u64, u64)> {
    let probe = rtprobe();
    let mut args: Vec<&str> = options.to_vec();
    args.push("--");
    args.push(probe.to_str().unwrap());
    args.extend_from_slice(probe_args);
    faults(memlock_run(args))
}

#[test]
fn the_realtime_options_give_a_steady_state_without_page_faults() {
    // The command, and the same with bounded thread stacks.
    for options in [
        &["--future", "--prefault", "8M", "--heap", "64M"][..],
        &[
            "--future",
            "--prefault",
            "8M",
            "--heap",
            "64M",
            "--thread-stack",
            "256K",
        ],
    ] {
        let parts = run_rtprobe(options, &[]);
        for part in ["stack", "heap", "threads", "total"] {
            assert_eq!(
                parts[part],
                (0, 0),
                "{options:?}, {part}: minor and major faults in the steady state: {parts:?}"
            );
        }
    }
}

#[test]
fn thread_stack_sets_the_default_for_new_threads() {
    let parts = run_rtprobe(&["--thread-stack", "256K"], &["--rounds", "1"]);
    assert_eq!(parts["thread-stack"].0, 256 * KIB, "{parts:?}");
}

#[test]
fn without_them_the_steady_state_faults() {
    let probe = rtprobe();
    let direct = faults(Command::new(&probe));
    let locked = run_rtprobe(&[], &[]);
    let future = run_rtprobe(&["--future"], &[]);
    for (name, parts) in [
        ("unlocked", &direct),
        ("MCL_CURRENT", &locked),
        ("MCL_CURRENT|MCL_FUTURE", &future),
    ] {
        assert!(
            parts["total"].0 > 1000,
            "{name}: expected many minor faults, got {parts:?}"
        );
        // The stack and the heap fault each time they grow past what was there at start.
        assert!(parts["stack"].0 > 100, "{name}: {parts:?}");
        assert!(parts["heap"].0 > 100, "{name}: {parts:?}");
    }
    // Thread stacks are populated and kept when they are mapped under MCL_FUTURE; without
    // it glibc gives each exited thread's stack back (MADV_DONTNEED) and it faults again.
    assert!(direct["threads"].0 > 0, "{direct:?}");
    assert!(locked["threads"].0 > 0, "{locked:?}");
}

#[test]
fn heap_and_prefault_each_remove_their_part() {
    let stack_only = run_rtprobe(&["--future", "--prefault", "8M"], &[]);
    assert_eq!(stack_only["stack"], (0, 0), "{stack_only:?}");
    assert!(stack_only["heap"].0 > 100, "{stack_only:?}");
    let heap_only = run_rtprobe(&["--future", "--heap", "64M"], &[]);
    assert_eq!(heap_only["heap"], (0, 0), "{heap_only:?}");
    assert!(heap_only["stack"].0 > 100, "{heap_only:?}");
}

#[test]
fn the_heap_is_locked_and_resident_before_main() {
    let probe = probe();
    for options in [
        &["--heap", "64M"][..],
        &["--onfault", "--heap", "64M"],
        &["--future", "--heap", "64M"],
    ] {
        let mut args: Vec<&str> = options.to_vec();
        args.extend(["--", probe.to_str().unwrap()]);
        let running = Running::start(memlock_run(args));
        let maps = running.smaps();
        let heap = maps
            .iter()
            .find(|m| m.name == "[heap]")
            .expect("a [heap] mapping");
        assert!(
            heap.locked_flag(),
            "{options:?}: the heap is VM_LOCKED: {heap:?}"
        );
        assert!(
            heap.size() >= 64 * MIB,
            "{options:?}: heap mapping of {} bytes",
            heap.size()
        );
        assert!(
            heap.bytes("Rss") >= 64 * MIB,
            "{options:?}: heap Rss {} (populated by the kernel)",
            heap.bytes("Rss")
        );
        assert!(
            heap.bytes("Locked") >= 64 * MIB,
            "{options:?}: heap Locked {}",
            heap.bytes("Locked")
        );
        assert!(running.finish().status.success());
    }
}

#[test]
fn heap_is_refused_under_a_malloc_that_is_not_glibcs() {
    let other = compile("othermalloc.c", "libothermalloc.so", &["-shared", "-fPIC"]);
    let probe = probe();
    let mut cmd = memlock_run(["--heap", "8M", "--", probe.to_str().unwrap(), "--exit", "0"]);
    cmd.env("LD_PRELOAD", &other);
    // The message names the remedy.
    assert_refused(
        &output(cmd),
        Refused::before_main(),
        &[
            "malloc in this process is not glibc's but comes from",
            "libothermalloc.so",
            "drop --heap",
        ],
    );

    let mut cmd = memlock_run([
        "--heap",
        "8M",
        "--on-failure",
        "warn",
        "--",
        probe.to_str().unwrap(),
        "--exit",
        "0",
    ]);
    cmd.env("LD_PRELOAD", &other);
    let out = output(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("running unlocked (--on-failure warn)"));

    // Without --heap the other allocator is none of memlock-run's business.
    let mut cmd = memlock_run(["--", probe.to_str().unwrap(), "--exit", "0"]);
    cmd.env("LD_PRELOAD", &other);
    assert_eq!(output(cmd).status.code(), Some(0));
}

#[test]
fn heap_is_refused_under_jemalloc() {
    let Some(jemalloc) = find_library("libjemalloc.so.2") else {
        skip(format_args!(
            "libjemalloc.so.2 is not installed (apt-get install libjemalloc2)"
        ));
        return;
    };
    let probe = probe();
    let mut cmd = memlock_run(["--heap", "8M", "--", probe.to_str().unwrap(), "--exit", "0"]);
    cmd.env("LD_PRELOAD", &jemalloc);
    assert_refused(&output(cmd), Refused::before_main(), &["libjemalloc.so.2"]);
}

#[test]
fn thread_stack_sets_the_default_and_bounds_what_mcl_future_locks() {
    // Without --thread-stack, threads keep the size they would have had (the soft
    // RLIMIT_STACK at start), even though --prefault raised that limit.
    let parts = run_rtprobe(&["--prefault", "8M"], &["--rounds", "1"]);
    let before = limit_at_start();
    assert_eq!(parts["thread-stack"].0, before, "{parts:?}");

    // Under MCL_FUTURE each new thread's stack is locked in full: four 8 MiB stacks pass an
    // 8 MiB RLIMIT_MEMLOCK, and pthread_create fails with EAGAIN; 256 KiB stacks fit.
    let probe = rtprobe();
    let small = [
        "--stack",
        "64",
        "--heap",
        "1",
        "--threads",
        "4",
        "--rounds",
        "1",
    ];
    let mut args = vec![
        "--future",
        "--limit",
        "8M",
        "--thread-stack",
        "8M",
        "--",
        probe.to_str().unwrap(),
    ];
    args.extend(small);
    let out = output(as_nobody().memlock_run(args));
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("pthread_create: Resource temporarily unavailable"),
        "{}",
        stderr_of(&out)
    );

    let mut args = vec![
        "--future",
        "--limit",
        "8M",
        "--thread-stack",
        "256K",
        "--heap",
        "2M",
        "--",
    ];
    args.push(probe.to_str().unwrap());
    args.extend(small);
    let out = output(as_nobody().memlock_run(args));
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("total minor 0 major 0"),
        "{out:?}"
    );
}

fn limit_at_start() -> u64 {
    let limits = fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max stack size"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

#[test]
fn thread_stack_below_the_minimum_is_refused() {
    let out = output(memlock_run(["--thread-stack", "4K", "--", "true"]));
    assert_refused(
        &out,
        Refused::before_main(),
        &["below the smallest thread stack glibc accepts"],
    );
}

/// tests/probes/forkprobe.c
fn forkprobe() -> PathBuf {
    compile("forkprobe.c", "forkprobe", &[])
}

#[test]
fn forked_children_are_locked_again_unless_told_not_to() {
    let probe = forkprobe();
    let running = Running::start(memlock_run([
        "--future",
        "--",
        probe.to_str().unwrap(),
        "--map",
        "4",
    ]));
    let child = running.status();
    assert!(
        child.bytes("VmLck") >= 4 * MIB,
        "relocked child: VmLck {}",
        child.get("VmLck")
    );
    let maps = running.smaps();
    let text = maps
        .iter()
        .find(|m| m.name == probe.to_str().unwrap())
        .expect("the probe's text");
    assert!(
        text.locked_flag(),
        "inherited mappings are locked again: {text:?}"
    );
    // Mapped by the child after fork: locked because MCL_FUTURE was restored.
    let late = maps
        .iter()
        .find(|m| m.size() == 4 * MIB && m.name.is_empty())
        .expect("the child's 4 MiB mapping");
    assert!(
        late.locked_flag() && late.bytes("Locked") == 4 * MIB,
        "{late:?}"
    );
    let out = running.finish();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("child status 0"),
        "{out:?}"
    );

    let running = Running::start(memlock_run([
        "--future",
        "--fork",
        "off",
        "--",
        probe.to_str().unwrap(),
    ]));
    assert_eq!(
        running.status().bytes("VmLck"),
        0,
        "--fork off: the child runs unlocked"
    );
    assert!(running.smaps().iter().all(|m| !m.locked_flag()));
    running.finish();
}

#[test]
fn a_child_that_cannot_lock_follows_on_failure() {
    // As nobody under an 8 MiB RLIMIT_MEMLOCK: the parent locks at start, then maps 16 MiB
    // of PROT_NONE address space, which mlockall(MCL_CURRENT) counts in the child.
    let probe = forkprobe();
    let args = ["--", probe.to_str().unwrap(), "--reserve", "16"];
    let out = output(as_nobody().memlock_run(args));
    let err = stderr_of(&out);
    assert!(out.status.success(), "the parent goes on: {err}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("child status 125"),
        "{out:?}"
    );
    assert!(err.contains("cannot lock memory in a forked child: mlockall(MCL_CURRENT|MCL_ONFAULT) failed with ENOMEM"), "{err}");
    assert!(
        err.contains("RLIMIT_MEMLOCK is 8 MiB") && err.contains("--fork off"),
        "{err}"
    );

    let args = [
        "--on-failure",
        "warn",
        "--",
        probe.to_str().unwrap(),
        "--reserve",
        "16",
    ];
    let out = output(as_nobody().memlock_run(args));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("child status 0"),
        "{out:?}"
    );
    assert!(
        stderr_of(&out).contains("the child runs unlocked (--on-failure warn)"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn bind_now_is_inherited_like_the_shim() {
    let echo = ["sh", "-c", "echo \"[$LD_BIND_NOW]\""];
    let run = |options: &[&str], env: Option<&str>| {
        let mut cmd = memlock_run(options.iter().chain(&["--"]).chain(&echo));
        cmd.env_remove("LD_BIND_NOW");
        if let Some(value) = env {
            cmd.env("LD_BIND_NOW", value);
        }
        let out = output(cmd);
        assert!(out.status.success(), "{}", stderr_of(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(run(&["--bind-now"], None), "[1]");
    assert_eq!(run(&[], None), "[]");
    assert_eq!(
        run(&["--bind-now", "--no-inherit"], None),
        "[]",
        "--no-inherit takes LD_BIND_NOW out with the shim"
    );
    assert_eq!(
        run(&["--bind-now", "--no-inherit"], Some("yes")),
        "[yes]",
        "a user's own LD_BIND_NOW stays"
    );
}

#[test]
fn dry_run_shows_the_realtime_settings() {
    let out = output(memlock_run([
        "--dry-run",
        "--future",
        "--heap",
        "64M",
        "--thread-stack",
        "256K",
        "--bind-now",
        "--",
        "true",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr_of(&out));
    for line in [
        "heap:           64 MiB pre-faulted and kept",
        "fork:           children relock: mlockall(MCL_CURRENT|MCL_ONFAULT), then MCL_FUTURE",
        "binding:        at start (LD_BIND_NOW=1)",
        "thread stacks:  256 KiB (--thread-stack)",
        "MEMLOCK_RUN_HEAP=67108864",
        "MEMLOCK_RUN_THREAD_STACK=262144",
        "MEMLOCK_RUN_FORK=relock",
        "LD_BIND_NOW=1",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    let out = output(memlock_run(["--dry-run", "--fork", "off", "--", "true"]));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("fork:           children run unlocked (--fork off)"));
}

/// nginx in the foreground under memlock-run; stopped when dropped.
struct Nginx {
    master: Process,
    prefix: PathBuf,
    stderr: PathBuf,
}

impl Nginx {
    fn start(options: &[&str], tag: &str) -> Nginx {
        let prefix = scratch().join(format!("nginx-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&prefix);
        fs::create_dir_all(prefix.join("logs")).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let p = prefix.display();
        let conf = prefix.join("nginx.conf");
        fs::write(
            &conf,
            format!(
                "daemon off;\nmaster_process on;\nworker_processes 2;\npid {p}/nginx.pid;\nerror_log stderr notice;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n  \
                 fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n  \
                 server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"locked\\n\"; }} }}\n}}\n"
            ),
        )
        .unwrap();
        let stderr = prefix.join("stderr");
        let mut args: Vec<&str> = options.to_vec();
        args.extend([
            "--",
            "nginx",
            "-p",
            prefix.to_str().unwrap(),
            "-c",
            conf.to_str().unwrap(),
            "-e",
            "stderr",
        ]);
        let master = spawn(
            memlock_run(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(&stderr).unwrap()),
        )
        .expect("start memlock-run nginx");
        let mut nginx = Nginx {
            master,
            prefix,
            stderr,
        };
        nginx.wait_for_workers(2);
        nginx.check_serves(port);
        nginx
    }

    fn pid(&self) -> i32 {
        self.master.id() as i32
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn workers(&self) -> Vec<i32> {
        children_of(self.pid())
            .into_iter()
            .filter(|pid| {
                fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.starts_with(b"nginx: worker process"))
            })
            .collect()
    }

    fn wait_for_workers(&mut self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.workers().len() < count {
            if let Ok(Some(status)) = self.master.try_wait() {
                panic!(
                    "nginx exited ({status}) before its workers started; stderr:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {count} nginx workers after 20 s; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn check_serves(&self, port: u16) {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to nginx");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        assert!(
            reply.starts_with("HTTP/1.1 200") && reply.ends_with("locked\n"),
            "{reply:?}; {}",
            self.stderr()
        );
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SAFETY: signals the master this test started and has not reaped.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let _ = self.master.wait();
        let _ = fs::remove_dir_all(&self.prefix);
    }
}

fn children_of(parent: i32) -> Vec<i32> {
    let mut children = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let ppid = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .map(|v| v.trim().parse::<i32>());
        if ppid == Some(Ok(parent)) {
            children.push(pid);
        }
    }
    children
}

#[test]
fn nginx_workers_are_locked_with_the_fork_relock_and_not_without() {
    if skip_without(
        "nginx",
        "the forking-server test needs it (apt-get install nginx-light or nginx)",
    ) {
        return;
    }
    let nginx = Nginx::start(&[], "relock");
    assert!(
        ProcStatus::read(nginx.pid()).bytes("VmLck") > 0,
        "the master is locked"
    );
    for worker in nginx.workers() {
        let status = ProcStatus::read(worker);
        assert!(
            status.bytes("VmLck") >= MIB,
            "worker {worker}: VmLck {}",
            status.get("VmLck")
        );
        let locked = smaps(worker).iter().filter(|m| m.locked_flag()).count();
        assert!(
            locked > 10,
            "worker {worker}: {locked} mappings with the lo flag"
        );
    }
    drop(nginx);

    let nginx = Nginx::start(&["--fork", "off"], "off");
    assert!(
        ProcStatus::read(nginx.pid()).bytes("VmLck") > 0,
        "the master is locked"
    );
    for worker in nginx.workers() {
        assert_eq!(
            ProcStatus::read(worker).bytes("VmLck"),
            0,
            "worker {worker} under --fork off"
        );
        assert!(
            smaps(worker).iter().all(|m| !m.locked_flag()),
            "worker {worker} under --fork off"
        );
    }
}

/// execve puts a pointer beside every argument string: with many short arguments those are
/// most of the stack in use at start. The raised RLIMIT_STACK counts them, so --prefault 8M
/// still fits, as --check predicts.
#[test]
fn a_long_argument_list_is_counted_in_the_stack_for_prefault() {
    let mut hard = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: an out-pointer to a local.
    unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut hard) };
    if hard.rlim_max != libc::RLIM_INFINITY && hard.rlim_max < 16 * MIB {
        skip(format_args!(
            "the hard RLIMIT_STACK is below 16 MiB; --prefault 8M with 1 MiB of arguments cannot fit"
        ));
        return;
    }
    let many: Vec<&str> = std::iter::repeat_n("x", 100_000).collect();
    let probe = probe();
    let run = output({
        let mut cmd = memlock_run(["--prefault", "8M", "--"]);
        cmd.arg(&probe).args(["--exit", "0"]).args(&many);
        cmd
    });
    assert!(run.status.success(), "{}", stderr_of(&run));
    let check = output({
        let mut cmd = memlock_run(["--check", "--prefault", "8M", "--"]);
        cmd.arg(&probe).args(&many);
        cmd
    });
    assert_eq!(check.status.code(), Some(0), "{}", stdout_of(&check));
}

/// The mode in brackets of /sys/kernel/mm/transparent_hugepage/enabled, or why there is none.
fn thp_mode() -> Result<String, String> {
    let path = "/sys/kernel/mm/transparent_hugepage/enabled";
    let text = fs::read_to_string(path)
        .map_err(|e| format!("{path}: {e}: this kernel has no transparent huge pages"))?;
    let mode = text
        .split_whitespace()
        .find_map(|word| word.strip_prefix('[')?.strip_suffix(']'))
        .ok_or_else(|| format!("{path}: no mode in brackets: {text:?}"))?;
    match mode {
        "never" => Err(format!("{path} is [never]")),
        mode => Ok(mode.to_owned()),
    }
}

#[test]
fn huge_backs_the_prefaulted_stack_and_heap_with_huge_pages() {
    let mode = match thp_mode() {
        Ok(mode) => mode,
        Err(why) => {
            eprintln!("SKIPPED: --huge needs transparent huge pages: {why}");
            return;
        }
    };
    let probe = probe();
    let probe = probe.to_str().unwrap();
    let run = |huge: bool| {
        let mut args = vec!["-v", "--prefault", "64M", "--heap", "64M"];
        if huge {
            args.push("--huge");
        }
        args.extend(["--", probe]);
        let running = Running::start(memlock_run(args));
        let maps = running.smaps();
        let out = running.finish();
        assert!(out.status.success(), "{}", stderr_of(&out));
        (maps, stderr_of(&out))
    };

    let (maps, stderr) = run(true);
    let stacks: Vec<&Mapping> = maps.iter().filter(|m| m.name == "[stack]").collect();
    let stack = stacks[0];
    // The whole stack mapping was advised, not the pre-faulted part: no split, so glibc's
    // pthread_getattr_np still finds the stack's true lower end.
    assert_eq!(stacks.len(), 1, "one [stack] mapping: {stacks:?}");
    assert!(
        stack.size() >= 64 * MIB,
        "the stack mapping holds the whole pre-fault: {stack:?}"
    );
    let below = maps.iter().find(|m| m.end == stack.start);
    assert!(
        below.is_none_or(|m| !m.flags.iter().any(|f| f == "gd")),
        "no piece of the stack split off below it: {below:?}"
    );
    let heap = maps
        .iter()
        .find(|m| m.name == "[heap]")
        .expect("a [heap] mapping");
    for (what, mapping) in [("stack", stack), ("heap", heap)] {
        assert!(
            mapping.flags.iter().any(|f| f == "hg") && mapping.locked_flag(),
            "--huge: the {what} is advised MADV_HUGEPAGE (hg) and locked (lo): {mapping:?}"
        );
        // The kernel falls back to 4 KiB pages where it finds no free 2 MiB block; on a
        // machine with free memory nearly all of the 64 MiB is huge.
        assert!(
            mapping.bytes("AnonHugePages") >= 48 * MIB,
            "--huge: the {what}'s 64 MiB pre-fault is mostly in huge pages: {mapping:?}"
        );
    }
    let reported = stderr
        .split(", ")
        .find(|part| part.ends_with(" in huge pages (AnonHugePages)"))
        .unwrap_or_else(|| panic!("-v reports the huge pages: {stderr}"));
    assert!(
        reported.ends_with(" MiB in huge pages (AnonHugePages)"),
        "{reported}"
    );
    let mib: f64 = reported.split(' ').next().unwrap().parse().unwrap();
    let total = (stack.bytes("AnonHugePages") + heap.bytes("AnonHugePages")) as f64;
    assert!(
        mib * MIB as f64 >= total,
        "-v's figure ({reported}) counts the stack's and the heap's"
    );

    // Without --huge, in `madvise` mode, neither gets a huge page.
    if mode == "madvise" {
        let (maps, stderr) = run(false);
        for name in ["[stack]", "[heap]"] {
            let mapping = maps.iter().find(|m| m.name == name).unwrap();
            assert!(
                !mapping.flags.iter().any(|f| f == "hg") && mapping.bytes("AnonHugePages") == 0,
                "without --huge {name} is in 4 KiB pages: {mapping:?}"
            );
        }
        assert!(!stderr.contains("huge pages"), "{stderr}");
    }
}

#[test]
fn huge_needs_a_prefault_or_heap_and_the_preload() {
    let out = output(memlock_run(["--huge", "--", "true"]));
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("<--prefault <SIZE>|--heap <SIZE>>"),
        "{}",
        stderr_of(&out)
    );
    let out = output(memlock_run([
        "--method",
        "ptrace",
        "--prefault",
        "1M",
        "--huge",
        "--",
        "true",
    ]));
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out)
            .contains("--huge (the shim's MADV_HUGEPAGE before it populates) works from inside"),
        "{}",
        stderr_of(&out)
    );
    let out = output(memlock_run([
        "--dry-run",
        "--prefault",
        "1M",
        "--huge",
        "--",
        "true",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr_of(&out));
    for line in [
        "huge pages:     MADV_HUGEPAGE on the pre-faulted stack and heap",
        "MEMLOCK_RUN_HUGE=1",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
}

#[test]
fn check_says_what_huge_pages_the_machine_gives() {
    let out = output(memlock_run([
        "--check",
        "--prefault",
        "8M",
        "--heap",
        "8M",
        "--huge",
        "--",
        "true",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("huge pages "))
        .unwrap_or_else(|| panic!("a huge pages finding:\n{text}"));
    match thp_mode() {
        Ok(mode) => assert!(
            line.contains(&format!("transparent huge pages `{mode}`")),
            "{line}"
        ),
        Err(_) => assert!(line.starts_with("warn"), "{line}"),
    }
    let out = output(memlock_run(["--check", "--prefault", "8M", "--", "true"]));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("huge pages "),
        "no huge-pages finding without --huge"
    );
}
