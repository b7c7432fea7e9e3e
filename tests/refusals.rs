//! Targets no method can lock, and targets a preload cannot reach under `--method preload`,
//! are refused before exec: status 125, one line with the cause and the remedy, and the
//! target never runs (its `--mark` file is not created). Targets that are fine, scripts
//! included, run locked. (The ptrace method's own runs are in ptrace.rs.)

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// `memlock-run -- TARGET ARGS... --mark MARK --exit 0`.
fn run_marked(target: &Path, mark: &Path) -> Command {
    run_marked_with(&[], target, mark)
}

/// `memlock-run OPTIONS... -- TARGET ARGS... --mark MARK --exit 0`.
fn run_marked_with(options: &[&str], target: &Path, mark: &Path) -> Command {
    let mut cmd = memlock_run(options);
    cmd.args([
        "--".as_ref(),
        target.as_os_str(),
        "--mark".as_ref(),
        mark.as_os_str(),
        "--exit".as_ref(),
        "0".as_ref(),
    ]);
    cmd
}

const PRELOAD: &[&str] = &["--method", "preload"];

/// Set-user-ID and set-group-ID copies of the probe, owned by nobody or nogroup: (what,
/// owner, group, mode, what the refusal says).
type SetId = (
    &'static str,
    Option<u32>,
    Option<u32>,
    u32,
    &'static [&'static str],
);
const SET_ID: [SetId; 2] = [
    (
        "setuid",
        Some(65534),
        None,
        0o4755,
        &[
            "set-user-ID",
            "secure-execution mode",
            "without the set-ID bit",
        ],
    ),
    (
        "setgid",
        None,
        Some(65534),
        0o2755,
        &["set-group-ID", "secure-execution mode"],
    ),
];

#[test]
fn set_id_programs_are_refused() {
    if skip_unless_root("making a set-ID file of another owner or group needs root")
        || skip_on_nosuid(&scratch(), "set-ID bits have no effect there")
    {
        return;
    }
    for (what, owner, group, mode, says) in SET_ID {
        let copy = probe_copy(what);
        std::os::unix::fs::chown(&copy, owner, group).expect("chown nobody or chgrp nogroup");
        fs::set_permissions(&copy, fs::Permissions::from_mode(mode)).expect("chmod");
        let mark = marker(what);
        let out = output(run_marked(&copy, &mark));
        let line = assert_refused(&out, Refused::before_main().mark(&mark).row(what), says);
        assert!(line.contains(&copy.display().to_string()), "{what}: {line}");
    }

    // Set-user-ID to the caller itself is no privilege change: no secure mode, and it runs.
    let own = probe_copy("setuid-own");
    fs::set_permissions(&own, fs::Permissions::from_mode(0o4755)).expect("chmod u+s");
    let mark = marker("setuid-own");
    let out = output(run_marked(&own, &mark));
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(mark.exists());
}

#[test]
fn a_program_with_file_capabilities_is_refused_for_a_user_but_not_for_root() {
    if skip_unprivileged_run("the file-capability case runs as nobody")
        || skip_without(
            "setcap",
            "gives a copy of the probe a file capability (Debian: libcap2-bin)",
        )
        || skip_on_nosuid(&scratch(), "file capabilities have no effect there")
    {
        return;
    }
    let copy = probe_copy("filecap");
    let setcap = output({
        let mut cmd = Command::new("setcap");
        cmd.arg("cap_net_raw+ep").arg(&copy);
        cmd
    });
    if !setcap.status.success() {
        skip(format_args!(
            "setcap failed (file system without xattrs?): {}",
            stderr_of(&setcap).trim()
        ));
        return;
    }
    let mark = marker("filecap-nobody");
    let out = output(as_nobody().memlock_run([
        "--",
        copy.to_str().unwrap(),
        "--mark",
        mark.to_str().unwrap(),
        "--exit",
        "0",
    ]));
    assert_refused(
        &out,
        Refused::before_main().mark(&mark),
        &["file capabilities", "secure-execution mode"],
    );

    // For root, file capabilities grant nothing new: no secure mode, so it runs, locked.
    let running = Running::start(memlock_run(["--", copy.to_str().unwrap()]));
    assert!(running.status().bytes("VmLck") >= MIB);
    assert!(running.finish().status.success());
}

/// A minimal ELF executable header with a PT_INTERP: enough for the launcher to judge it.
fn crafted_elf(bits64: bool, machine: u16, interp: &str) -> Vec<u8> {
    let (ehsize, phentsize): (u16, u16) = if bits64 { (64, 56) } else { (52, 32) };
    let phoff = u64::from(ehsize);
    let interp_off = phoff + u64::from(phentsize);
    let mut interp_bytes = interp.as_bytes().to_vec();
    interp_bytes.push(0);
    let mut elf = vec![0x7f, b'E', b'L', b'F', if bits64 { 2 } else { 1 }, 1, 1, 0];
    elf.resize(16, 0);
    let word = |elf: &mut Vec<u8>, v: u64| {
        if bits64 {
            elf.extend_from_slice(&v.to_le_bytes());
        } else {
            elf.extend_from_slice(&(v as u32).to_le_bytes());
        }
    };
    elf.extend_from_slice(&2u16.to_le_bytes()); // e_type ET_EXEC
    elf.extend_from_slice(&machine.to_le_bytes());
    elf.extend_from_slice(&1u32.to_le_bytes()); // e_version
    word(&mut elf, 0x10000); // e_entry
    word(&mut elf, phoff); // e_phoff
    word(&mut elf, 0); // e_shoff
    elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    elf.extend_from_slice(&ehsize.to_le_bytes());
    elf.extend_from_slice(&phentsize.to_le_bytes());
    elf.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    elf.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    assert_eq!(elf.len(), usize::from(ehsize));
    let len = interp_bytes.len() as u64;
    elf.extend_from_slice(&3u32.to_le_bytes()); // p_type PT_INTERP
    if bits64 {
        elf.extend_from_slice(&4u32.to_le_bytes()); // p_flags
        for v in [interp_off, interp_off, interp_off, len, len, 1] {
            elf.extend_from_slice(&v.to_le_bytes());
        }
    } else {
        for v in [interp_off, interp_off, interp_off, len, len, 4, 1] {
            elf.extend_from_slice(&(v as u32).to_le_bytes());
        }
    }
    assert_eq!(elf.len() as u64, interp_off);
    elf.extend_from_slice(&interp_bytes);
    elf
}

fn write_executable(name: &str, bytes: &[u8]) -> PathBuf {
    let path = unique(name);
    writing_executables(|| {
        fs::write(&path, bytes).expect("write crafted ELF");
        set_mode(&path, 0o755);
    });
    path
}

/// Targets no preload can reach, refused before exec under `--method preload` (or by any
/// method: an ELF of another machine), and a musl program with `--heap` (the shim loads into
/// musl programs, but musl's malloc has no settings for it): (what, options, the target, what
/// the line says). The line names what it judged (the shim's class, the interpreter).
#[test]
fn targets_the_preload_cannot_serve_are_refused() {
    const EM_386: u16 = 3;
    const EM_AARCH64: u16 = 183;
    const EM_X86_64: u16 = 62;
    let native = if cfg!(target_arch = "x86_64") {
        EM_X86_64
    } else {
        EM_AARCH64
    };
    let other = if native == EM_X86_64 {
        EM_AARCH64
    } else {
        EM_X86_64
    };
    let elf32 = write_executable("elf32", &crafted_elf(false, EM_386, "/lib/ld-linux.so.2"));
    let foreign = write_executable(
        "elf-foreign",
        &crafted_elf(true, other, "/lib/ld-linux-aarch64.so.1"),
    );
    let interpreter = static_probe();
    let interpreted = script(
        &unique("static-interp.sh")
            .file_name()
            .unwrap()
            .to_string_lossy(),
        &format!("#!{}\n", interpreter.display()),
    );
    let interpreter = interpreter.display().to_string();
    let mut rows: Vec<(&str, &[&str], PathBuf, Vec<&str>)> = vec![
        (
            "a static program",
            PRELOAD,
            static_probe(),
            vec!["statically linked", "no PT_INTERP", "--method ptrace"],
        ),
        (
            "a 32-bit program",
            PRELOAD,
            elf32,
            vec!["32-bit", "another class or machine", "64-bit"],
        ),
        (
            "a program for another machine",
            &[],
            foreign,
            vec!["another class or machine"],
        ),
        (
            "a script with a static interpreter",
            PRELOAD,
            interpreted,
            vec!["is a #! script", "statically linked", &interpreter],
        ),
    ];
    if let Some(musl) = compile_musl("probe.c", "probe-musl", &[]) {
        rows.push((
            "a musl program, --heap",
            &["--heap", "1M"],
            musl,
            vec!["--heap", "musl", "glibc build"],
        ));
    }
    for (what, options, target, says) in rows {
        let mark = marker("preload-refused");
        assert_refused(
            &output(run_marked_with(options, &target, &mark)),
            Refused::before_main().mark(&mark).row(what),
            &says,
        );
    }
}

#[test]
fn an_env_script_whose_program_is_static_is_refused() {
    let dir = unique("env-bin");
    fs::create_dir_all(&dir).expect("mkdir");
    let name = "memlock-run-test-static-tool";
    let static_probe = static_probe();
    writing_executables(|| fs::copy(static_probe, dir.join(name))).expect("copy static probe");
    let script = script(
        &unique("env-static.sh")
            .file_name()
            .unwrap()
            .to_string_lossy(),
        &format!("#!/usr/bin/env {name}\n"),
    );
    let mark = marker("env-static");
    let mut cmd = run_marked(&script, &mark);
    let path = std::env::join_paths(std::iter::once(dir.clone()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
    )))
    .expect("PATH");
    cmd.env("PATH", &path);
    let line = assert_refused(
        &output(cmd),
        Refused::before_main().mark(&mark),
        &[
            "#! line",
            "through env",
            "statically linked",
            "instead of env",
        ],
    );
    assert!(
        line.contains(dir.join(name).to_str().unwrap()),
        "names what env would run: {line}"
    );
}

#[test]
fn a_script_whose_interpreter_does_not_exist_is_not_found() {
    let script = script(
        &unique("no-interp.sh")
            .file_name()
            .unwrap()
            .to_string_lossy(),
        "#!/nonexistent/memlock-run-test/interpreter\n",
    );
    let out = output(memlock_run([OsStr::new("--"), script.as_os_str()]));
    assert_refused(
        &out,
        Refused::before_main().status(127),
        &[
            "/nonexistent/memlock-run-test/interpreter",
            "does not exist",
        ],
    );
}

/// A program its user may execute but not read (mode 711): the kernel would run it, but
/// memlock-run cannot read its headers to judge it, and says how to let it. A script whose
/// interpreter its user may neither read nor execute is refused for what open(2) said: making
/// it readable would not make it run.
#[test]
fn a_program_its_user_may_execute_but_not_read_is_refused_as_unreadable() {
    if skip_unprivileged_run("the execute-only case needs a user other than root") {
        return;
    }
    let xonly = probe_copy("xonly");
    set_mode(&xonly, 0o711);
    let mark = marker("xonly");
    let out = output(as_nobody().memlock_run([
        "--",
        xonly.to_str().unwrap(),
        "--mark",
        mark.to_str().unwrap(),
        "--exit",
        "0",
    ]));
    assert_refused(
        &out,
        Refused::before_main().mark(&mark),
        &["cannot be read to be judged", "chmod a+r"],
    );

    let private = probe_copy("private-interpreter");
    set_mode(&private, 0o700);
    let name = unique("private-interpreter.sh");
    let script = script(
        &name.file_name().unwrap().to_string_lossy(),
        &format!("#!{}\n", private.display()),
    );
    let out = output(as_nobody().memlock_run([OsStr::new("--"), script.as_os_str()]));
    // execve(2) would fail with EACCES, which shells report as 126.
    let line = assert_refused(
        &out,
        Refused::before_main().status(126),
        &[private.to_str().unwrap(), "Permission denied"],
    );
    assert!(!line.contains("chmod a+r)"), "{line}");
    assert!(line.contains("chmod a+rx"), "{line}");
}

/// A shell script that reports its PID and waits for stdin to close, as the probe does.
fn waiting_script(name: &str, shebang: &str) -> PathBuf {
    script(
        &unique(name).file_name().unwrap().to_string_lossy(),
        &format!("{shebang}\necho ready $$\nwhile read -r line; do :; done\n"),
    )
}

#[test]
fn scripts_with_a_dynamic_interpreter_run_locked() {
    for shebang in ["#!/bin/sh", "#!/usr/bin/env sh"] {
        let script = waiting_script("fine.sh", shebang);
        let running = Running::start(memlock_run([OsStr::new("--"), script.as_os_str()]));
        assert_eq!(
            running.pid,
            running.child_pid(),
            "{shebang}: the shell is the same process"
        );
        let status = running.status();
        assert!(
            status.bytes("VmLck") >= MIB,
            "{shebang}: VmLck {}",
            status.get("VmLck")
        );
        let maps = running.maps();
        assert!(
            maps.contains(shim_path().canonicalize().unwrap().to_str().unwrap()),
            "{shebang}"
        );
        let out = running.finish();
        assert!(out.status.success(), "{shebang}: {}", stderr_of(&out));
    }
}

#[test]
fn an_env_line_that_takes_the_shim_out_of_the_environment_is_refused() {
    // env -i, -u LD_PRELOAD or LD_PRELOAD=... in a #! line would start the interpreter
    // without the shim: env would be locked, and the script would run unlocked.
    for env_line in [
        "-S -i sh",
        "-S --ignore-environment sh",
        "-S -u LD_PRELOAD sh",
        "-S --unset=MEMLOCK_RUN_FLAGS sh",
        "-S LD_PRELOAD= sh",
    ] {
        let mark = marker("env-strip");
        let script = script(
            &unique("env-strip.sh")
                .file_name()
                .unwrap()
                .to_string_lossy(),
            &format!("#!/usr/bin/env {env_line}\n: > '{}'\n", mark.display()),
        );
        let out = output(memlock_run([OsStr::new("--"), script.as_os_str()]));
        let line = assert_refused(
            &out,
            Refused::before_main().mark(&mark).row(env_line),
            &["env", "unlocked"],
        );
        assert!(line.contains(env_line), "quotes the #! line: {line}");
    }
    // Options that leave the environment to the shim are fine; env skips their arguments.
    for env_line in ["-S -u HOME sh", "-S -C / sh", "-S LC_ALL=C sh"] {
        let script = waiting_script("env-fine.sh", &format!("#!/usr/bin/env {env_line}"));
        let running = Running::start(memlock_run([OsStr::new("--"), script.as_os_str()]));
        assert!(running.status().bytes("VmLck") >= MIB, "{env_line}");
        let out = running.finish();
        assert!(out.status.success(), "{env_line}: {}", stderr_of(&out));
    }
}

/// Runs a script whose line is `#!/usr/bin/env LINE` through `memlock-run --dry-run` and
/// through `env -v LINE`. When memlock-run accepts it, env must run the very program it judged
/// and leave the environment (and so the shim) alone; a refusal must be a one-line 125 (or the
/// 127 of a program env would not find either). Ok: accepted; Err: refused, and why.
fn against_env(line: &str, path: &str) -> Result<(), String> {
    let script = script(
        &unique("env-line.sh").file_name().unwrap().to_string_lossy(),
        &format!("#!/usr/bin/env {line}\n"),
    );
    let mut dry = memlock_run(["--dry-run".as_ref(), "--".as_ref(), script.as_os_str()]);
    dry.env("PATH", path);
    let dry = output(dry);
    if !dry.status.success() {
        let code = dry.status.code();
        assert!(
            code == Some(125) || code == Some(127) || code == Some(126),
            "{line}: {}",
            stderr_of(&dry)
        );
        return Err(one_line(&dry));
    }
    // A line with no program makes env run the script itself, whose line starts env again:
    // without end, which memlock-run refuses; the time limit ends env's side of it.
    let mut env = Command::new("timeout");
    env.args(["5", "/usr/bin/env", "-v"])
        .arg(line)
        .arg(&script)
        .env("PATH", path);
    let env = output(env);
    let trace = stderr_of(&env);
    // env -v: "unset:    NAME", "setenv:   NAME=VALUE"; only these exact names matter.
    let ours = |name: &str| name == "LD_PRELOAD" || name.starts_with("MEMLOCK_RUN_");
    let drops_shim = trace.contains("cleaning environ")
        || trace.lines().any(|l| {
            l.strip_prefix("unset:").is_some_and(|n| ours(n.trim()))
                || l.strip_prefix("setenv:")
                    .and_then(|a| a.trim().split_once('='))
                    .is_some_and(|(n, _)| ours(n))
        });
    assert!(
        !drops_shim,
        "{line}: memlock-run accepted a line that drops the shim:\n{trace}"
    );
    let executed = trace
        .lines()
        .find_map(|l| l.strip_prefix("executing: "))
        .unwrap_or_else(|| panic!("{line}: memlock-run accepted it, env ran nothing:\n{trace}"));
    let env_path = trace
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("setenv:   PATH="))
        .unwrap_or(path);
    let resolved = env_path
        .split(':')
        .map(|d| Path::new(d).join(executed))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{line}: env's {executed} is not in {env_path}"));
    let judged = stdout_of(&dry);
    assert!(
        judged.contains(&format!("run by {} through env", resolved.display())),
        "{line}: env runs {}, memlock-run judged:\n{judged}",
        resolved.display()
    );
    Ok(())
}

/// True (after a skip line) where /usr/bin/env is not GNU coreutils' env, which the `#!`
/// reading follows.
fn skip_unless_gnu_env() -> bool {
    let version = output({
        let mut c = Command::new("/usr/bin/env");
        c.arg("--version");
        c
    });
    let gnu = stdout_of(&version).contains("GNU coreutils");
    if !gnu {
        skip(format_args!(
            "/usr/bin/env is not GNU coreutils' env; the #! reading follows GNU env"
        ));
    }
    !gnu
}

/// The `#!/usr/bin/env` reading against GNU env itself (its `-v` says what it sets, unsets and
/// executes): every line memlock-run accepts makes env run the very program memlock-run
/// judged, with the environment (and so the shim) untouched; every line that would take the
/// shim away, in any of env's spellings, is refused.
#[test]
fn env_lines_are_read_as_gnu_env_reads_them() {
    if skip_unless_gnu_env() {
        return;
    }
    let name = "memlock-run-env-prog";
    let dir = unique("env-lines");
    let other = unique("env-lines-other");
    let static_dir = unique("env-lines-static");
    for d in [&dir, &other, &static_dir] {
        fs::create_dir_all(d).expect("mkdir");
        set_mode(d, 0o755);
    }
    let (dynamic, stat) = (probe(), static_probe());
    writing_executables(|| {
        fs::copy(&dynamic, dir.join(name)).expect("copy probe");
        fs::copy(&dynamic, other.join(name)).expect("copy probe");
        fs::copy(stat, static_dir.join(name)).expect("copy static probe");
    });
    let path = format!("{}:/usr/bin:/bin", dir.display());
    let other_s = other.display().to_string();
    // (line, accepted)
    let lines: Vec<(String, bool)> = vec![
        (name.to_owned(), true),
        (format!("-S {name} --exit 0"), true),
        (format!("-S{name} --exit 0"), true),
        (format!("--split-string={name} --exit 0"), true),
        (format!("-S -v -u HOME {name} --exit 0"), true),
        (format!("-S '{name}' --exit 0"), true),
        (format!("-S -- {name} --exit 0"), true),
        (format!("-S {name} --exit 0 # comment"), true),
        (format!("-S PATH={other_s} {name} --exit 0"), true),
        // The PATH the line sets decides the program: a static one, which env would run in the
        // locked env's place, is refused.
        (
            format!("-S PATH={} {name} --exit 0", static_dir.display()),
            false,
        ),
        (format!("-S -i {name}"), false),
        (format!("-SLD_PRELOAD= {name}"), false),
        (format!("-S 'LD_PRELOAD=' {name}"), false),
        (format!("--split-string=LD_PRELOAD= {name}"), false),
        (format!("-S --un=LD_PRELOAD {name}"), false),
        (format!("-S --ignore-env {name}"), false),
        (format!("-S L\"D_PRELOAD\"= {name}"), false),
        (format!("-S -uMEMLOCK_RUN_FLAGS {name}"), false),
        (format!("-S - {name}"), false),
    ];
    // `\_` separates words: env runs a program named LD, which does not exist; so do both.
    let missing = format!("-S LD\\_PRELOAD=x {name}");
    let out = output({
        let mut c = memlock_run([
            "--dry-run".as_ref(),
            "--".as_ref(),
            script(
                &unique("env-line.sh").file_name().unwrap().to_string_lossy(),
                &format!("#!/usr/bin/env {missing}\n"),
            )
            .as_os_str(),
        ]);
        c.env("PATH", &path);
        c
    });
    assert_refused(
        &out,
        Refused::before_main().status(127),
        &["/usr/bin/env LD", "not found"],
    );
    for (line, accepted) in lines {
        let judged = against_env(&line, &path);
        assert_eq!(judged.is_ok(), accepted, "{line}: {judged:?}");
    }
}

/// A FIFO where a program should be: execve(2) would fail with EACCES, and reading its header
/// must not block memlock-run (nor --check) until something writes to it.
#[test]
fn a_fifo_is_not_executable_and_does_not_block() {
    let fifo = unique("fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o755) }, 0);
    let fifo_script = script(
        &unique("via-fifo.sh").file_name().unwrap().to_string_lossy(),
        &format!("#!{}\n", fifo.display()),
    );
    for args in [
        vec!["--".as_ref(), fifo.as_os_str()],
        vec!["--check".as_ref(), "--".as_ref(), fifo.as_os_str()],
        vec!["--".as_ref(), fifo_script.as_os_str()],
    ] {
        let mut cmd = Command::new("timeout");
        cmd.arg("10").arg(memlock_run_path()).args(&args);
        let out = output(cmd);
        let status = out.status.code();
        assert_ne!(
            status,
            Some(124),
            "{args:?}: memlock-run blocked on the FIFO"
        );
        let expected = if args[0] == "--check" { 1 } else { 126 };
        assert_eq!(status, Some(expected), "{args:?}: {}", stderr_of(&out));
        let text = stderr_of(&out) + &stdout_of(&out);
        assert!(text.contains("a FIFO"), "{args:?}: {text}");
    }
}

/// DOS line endings: the kernel looks for `/bin/sh\r`. The message says so, in one line
/// without a raw carriage return; and escape sequences in names reach no terminal.
#[test]
fn a_crlf_script_and_control_characters_are_reported_in_plain_text() {
    let crlf = script(
        &unique("crlf.sh").file_name().unwrap().to_string_lossy(),
        "#!/bin/sh\r\nexit 0\r\n",
    );
    let out = output(memlock_run(["--".as_ref(), crlf.as_os_str()]));
    let line = assert_refused(
        &out,
        Refused::before_main().status(127),
        &["carriage return", "dos2unix", "\"/bin/sh\\r\""],
    );
    assert!(
        !out.stderr.contains(&b'\r'),
        "a raw carriage return: {line:?}"
    );

    let out = output(memlock_run(["--", "no-such-program-\u{1b}[31m-red"]));
    assert_refused(
        &out,
        Refused::before_main().status(127),
        &["no-such-program-\\u{1b}[31m-red"],
    );
    assert!(
        !out.stderr.contains(&0x1b),
        "a raw escape: {}",
        stderr_of(&out)
    );
}

/// The path COMMAND names is switched, over and over, between a dynamic program and a static
/// one while memlock-run runs it: whichever it judged, what runs is locked (the judged file is
/// what is executed, with execveat, on any kernel for the preload method; the ptrace helper
/// finds a swap and stops it where the ptrace method goes by path, before Linux 6.14).
#[test]
fn a_file_swapped_after_the_judgement_never_runs_unlocked() {
    let dynamic = compile("contract.c", "contract-dynamic", &[]);
    let stat = compile("contract.c", "contract-static", &["-static"]);
    let dir = unique("swap");
    fs::create_dir_all(&dir).expect("mkdir");
    let link = dir.join("target");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let (stop, link, dir) = (stop.clone(), link.clone(), dir.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let tmp = dir.join(format!("next-{n}"));
                let to = if n.is_multiple_of(2) { &dynamic } else { &stat };
                let _ = std::os::unix::fs::symlink(to, &tmp);
                let _ = fs::rename(&tmp, &link);
                n += 1;
            }
        })
    };
    // The link exists from the flipper's first rename on (each later one replaces it); on a
    // busy machine that thread may take a while to run at all.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !link.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the flipper made no link in 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let mut seen = [0usize; 2];
    for _ in 0..300 {
        let out = output(memlock_run(["--".as_ref(), link.as_os_str()]));
        let text = stdout_of(&out);
        if out.status.success() {
            let vmlck = text
                .lines()
                .find_map(|l| l.strip_prefix("vmlck "))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            assert!(
                vmlck > 0,
                "ran unlocked with success:\n{text}{}",
                stderr_of(&out)
            );
            seen[0] += 1;
        } else {
            assert_refused(
                &out,
                Refused::before_main(),
                &["not the file memlock-run judged"],
            );
            seen[1] += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flipper.join().expect("flipper");
    assert!(seen[0] > 0, "no run succeeded: {seen:?}");
}

/// The judged file is executed by its descriptor, which the kernel names otherwise (the
/// descriptor's number before Linux 6.14, the file's own name since): the process has the
/// name its path gives it, as with execve, and the variable that carried it is gone.
#[test]
fn a_program_executed_by_its_descriptor_keeps_the_name_its_path_gives_it() {
    let dir = unique("comm");
    fs::create_dir_all(&dir).expect("mkdir");
    let link = dir.join("a-name-longer-than-fifteen-bytes");
    std::os::unix::fs::symlink("/bin/sh", &link).expect("symlink");
    let out = output(memlock_run([
        "--".as_ref(),
        link.as_os_str(),
        "-c".as_ref(),
        "cat /proc/$$/comm; env | grep -c '^MEMLOCK_RUN_COMM=' || true".as_ref(),
    ]));
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        stdout_of(&out),
        "a-name-longer-t\n0\n",
        "{}",
        stderr_of(&out)
    );
}

/// An environment that names LD_PRELOAD twice (ld.so honours the last): memlock-run leaves
/// one entry, with the shim, and the program runs locked.
#[test]
fn ld_preload_twice_in_the_environment_still_locks() {
    let envexec = compile("envexec.c", "envexec", &[]);
    let program = compile("contract.c", "contract-dynamic", &[]);
    let extra = compile("extra_preload.c", "extra_preload.so", &["-shared", "-fPIC"]);
    let out = output({
        let mut cmd = Command::new(envexec);
        cmd.arg("PATH=/usr/bin:/bin")
            .arg(format!("LD_PRELOAD={}", extra.display()))
            .arg("LD_PRELOAD=")
            .arg("--")
            .arg(memlock_run_path())
            .arg("--")
            .arg(&program);
        cmd
    });
    assert!(out.status.success(), "{}", stderr_of(&out));
    let vmlck = stdout_of(&out)
        .lines()
        .find_map(|l| l.strip_prefix("vmlck "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(vmlck > 0, "ran unlocked:\n{}", stdout_of(&out));
}

/// Lines generated from env's grammar, dangerous words and all, judged against GNU env: none
/// that memlock-run accepts lets env run another program than the one judged, or drop the
/// shim (`against_env`). A longer run: PROPTEST_CASES=5000 cargo test --test refusals generated.
#[test]
fn generated_env_lines_are_judged_as_env_runs_them() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    if skip_unless_gnu_env() {
        return;
    }
    let name = "memlock-run-gen-prog";
    let dir = unique("env-gen");
    fs::create_dir_all(&dir).expect("mkdir");
    set_mode(&dir, 0o755);
    let dynamic = probe();
    writing_executables(|| fs::copy(&dynamic, dir.join(name))).expect("copy probe");
    let path = format!("{}:/usr/bin:/bin", dir.display());
    let words = prop::sample::select(vec![
        "-S",
        name,
        name,
        name,
        "-S",
        "-v",
        "-0",
        "--",
        "-i",
        "-",
        "--ignore-env",
        "--ig",
        "--i",
        "-u",
        "-uLD_PRELOAD",
        "--un=LD_PRELOAD",
        "--unset",
        "LD_PRELOAD",
        "LD_PRELOAD=",
        "'LD_PRELOAD='",
        "L\"D_PRELOAD\"=",
        "MEMLOCK_RUN_FLAGS=x",
        "-C",
        "/",
        "X=1",
        name,
        "'memlock-run-gen-prog'",
        "#",
        "\\_",
        "--split-string=-i",
        "-S-i",
        "-vi",
        "--debug",
        "'-i'",
        "--exit",
        "0",
        "-uHOME",
        "--unset=PATH",
    ]);
    let mut runner = TestRunner::new(Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(64),
        failure_persistence: None,
        ..Config::default()
    });
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(
            &(proptest::collection::vec(words, 0..6), any::<bool>()),
            |(words, shape)| {
                // Most lines are `-S OPTIONS... PROGRAM --exit 0`, as real lines are; the rest are
                // words in any order.
                let line = if shape {
                    format!("-S {} {name} --exit 0", words.join(" "))
                } else {
                    words.join(" ")
                };
                if against_env(&line, &path).is_ok() {
                    accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(())
            },
        )
        .unwrap();
    // Lines are drawn so that some run the program: the cross-check must have had work.
    assert!(
        accepted.into_inner() > 0,
        "no generated line was accepted: the grammar no longer exercises env"
    );
}
