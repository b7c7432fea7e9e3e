//! The compatibility suite: real programs from Debian's packages, run under memlock-run,
//! each talked to by its own kind of client, and read through /proc.
//!
//! One table, [`ROWS`], drives it: the program, how to start it, how to talk to it, and
//! what must hold. Every row must work (its client gets the answers it expects) and be
//! locked (the share of its resident memory in mappings whose smaps VmFlags hold `lo`,
//! summed over the process and its descendants; smaps `Locked:` is not used because it
//! counts shared pages proportionally). A row whose program is missing prints a
//! `SKIPPED:` line. The results are written as a Markdown table to
//! `target/<profile>/compat.md`; with `MEMLOCK_RUN_UPDATE_README=1` the test also puts
//! that table into README.md between its `compat-table` markers. Adding a program is one
//! row.
//!
//! Also here: the shim's own behaviours that these programs made necessary and that a
//! single row cannot show (the capability kept across nginx's switch of user, bash and
//! `--no-inherit`).

mod common;

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// How a row's program is started: arguments after `memlock-run OPTIONS --`, and files
/// written into its own directory first. `{dir}` and `{port}` are replaced in both.
struct Start {
    args: &'static [&'static str],
    files: &'static [(&'static str, &'static str)],
}

/// How a row's program is talked to.
enum Talk {
    /// HTTP/1.0 GETs of `path` on `{port}`, once it accepts connections; every reply
    /// must contain `expect`.
    Http {
        path: &'static str,
        requests: u32,
        expect: &'static str,
    },
    /// A line of its stdout must contain `expect`; the program then waits for its stdin
    /// to close, so that it can be measured while it runs.
    Stdout { expect: &'static str },
    /// Its own client programs, one after the other: each is run again until its output
    /// (stdout and stderr) contains the text that follows it, or the patience runs out.
    Clients(&'static [(&'static [&'static str], &'static str)]),
}

struct Row {
    /// What the README's table calls it.
    name: &'static str,
    /// The commands whose absence skips the row (the program first), and their Debian
    /// packages.
    needs: &'static [&'static str],
    package: &'static str,
    /// A command that prints the program's version on its first line of output.
    version: &'static [&'static str],
    options: &'static [&'static str],
    /// Commands run first, as root, in its directory (`{dir}` and `{port}` replaced).
    setup: &'static [&'static [&'static str]],
    start: Start,
    talk: Talk,
    /// Least share of resident memory in locked mappings, in percent.
    min_locked: u32,
    /// What the README's table says besides.
    notes: &'static str,
    /// What else must hold of the running program (given the PID memlock-run started).
    also: Option<fn(i32) -> Result<(), String>>,
}

const NODE_SERVER: &str = r#"const http = require('http'); let keep = [];
const server = http.createServer((q, r) => {
  const a = []; for (let i = 0; i < 5000; i++) a.push({ i, s: 'x'.repeat(200) });
  keep.push(a); if (keep.length > 20) keep.shift();
  r.end('served ' + a.length + '\n');
});
server.listen({port}, '127.0.0.1');
"#;

/// Makes V8 allocate and free young and old generations, and prints when done.
const NODE_GC: &str = r#"let kept = [];
for (let round = 0; round < 40; round++) {
  kept.push(new Array(200000).fill(round).map(x => ({ x })));
  if (kept.length > 4) kept.shift();
}
console.log('collected ' + kept.length);
process.stdin.resume();
"#;

/// The page sets its title from JavaScript after some allocation; the debugging
/// endpoint's page list shows the title, so it proves the renderer ran V8.
const CHROMIUM_PAGE: &str = r#"<html><head><title>loading</title></head><body><script>
let a = []; for (let i = 0; i < 300; i++) { a.push(new Array(10000).fill(i)); if (a.length > 10) a.shift(); }
document.title = 'rendered ' + (1 + 1);
</script></body></html>
"#;

const NGINX_CONF: &str = r#"daemon off;
master_process on;
worker_processes 2;
user nobody nogroup;
pid {dir}/nginx.pid;
error_log stderr notice;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server { listen 127.0.0.1:{port}; location / { return 200 "served\n"; } }
}
"#;

const PYTHON_POOL: &str = r#"import multiprocessing as mp, sys
def work(n):
    return sum(i * i for i in range(n))
if __name__ == '__main__':
    mp.set_start_method(sys.argv[1])
    with mp.Pool(2) as pool:
        total = sum(pool.map(work, [200000] * 8))
        print('pool', sys.argv[1], total, flush=True)
        sys.stdin.read()
"#;

/// Forks four workers that each build a hash and wait, as a preforking Perl server's do.
const PERL_WORKERS: &str = r#"use strict; $| = 1;
pipe(my $r, my $w) or die "pipe: $!"; my @kids;
for my $n (1 .. 4) {
  my $pid = fork() // die "fork: $!";
  if (!$pid) { close $w; my %h = map { $_ => 'x' x 100 } 1 .. 20000; print "worker $n ", scalar(keys %h), "\n"; <$r>; exit 0 }
  push @kids, $pid;
}
close $r; sleep 1; print "perl workers ", scalar(@kids), "\n"; <STDIN>; close $w; waitpid($_, 0) for @kids;
"#;

/// Starts Ruby threads that allocate strings, and its garbage collector runs.
const RUBY_THREADS: &str = r#"$stdout.sync = true
threads = 4.times.map { |n| Thread.new { a = []; 20000.times { |i| a << ('x' * 100) + i.to_s }; a.size } }
total = threads.sum(&:value); GC.start
puts "ruby threads #{total}"; $stdin.read
"#;

/// Allocates through G1's young and old generations, and prints its pause total.
const JAVA_G1: &str = r#"import java.lang.management.*; import java.util.*;
public class G1Work { public static void main(String[] a) throws Exception {
  List<byte[]> kept = new ArrayList<>(); Random r = new Random(1);
  for (int i = 0; i < 20000; i++) { kept.add(new byte[1024 * (1 + r.nextInt(32))]); if (kept.size() > 2000) kept.remove(r.nextInt(kept.size())); }
  long ms = 0; for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) ms += gc.getCollectionTime();
  System.out.println("g1 done, pauses " + ms + " ms"); System.in.read(); } }
"#;

const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// The table: each row is one program started one way.
const ROWS: &[Row] = &[
    Row {
        name: "node (http server)",
        needs: &["node"],
        package: "nodejs",
        version: &["node", "--version"],
        options: &["--future"],
        setup: &[],
        start: Start {
            args: &["node", "{dir}/server.js"],
            files: &[("server.js", NODE_SERVER)],
        },
        talk: Talk::Http {
            path: "/",
            requests: 200,
            expect: "served 5000",
        },
        min_locked: 95,
        notes: "V8 frees pages with madvise: the shim's wrapper",
        also: None,
    },
    Row {
        name: "node (http server)",
        needs: &["node"],
        package: "nodejs",
        version: &["node", "--version"],
        options: &["--onfault", "--future"],
        setup: &[],
        start: Start {
            args: &["node", "{dir}/server.js"],
            files: &[("server.js", NODE_SERVER)],
        },
        talk: Talk::Http {
            path: "/",
            requests: 200,
            expect: "served 5000",
        },
        min_locked: 95,
        notes: "",
        also: None,
    },
    Row {
        name: "node (http server)",
        needs: &["node"],
        package: "nodejs",
        version: &["node", "--version"],
        options: &[],
        setup: &[],
        start: Start {
            args: &["node", "{dir}/server.js"],
            files: &[("server.js", NODE_SERVER)],
        },
        talk: Talk::Http {
            path: "/",
            requests: 200,
            expect: "served 5000",
        },
        // MCL_CURRENT: what V8 maps for the requests is not locked (about 50% locked here).
        min_locked: 30,
        notes: "MCL_CURRENT: V8's later heap unlocked",
        also: None,
    },
    Row {
        name: "node (GC workload)",
        needs: &["node"],
        package: "nodejs",
        version: &["node", "--version"],
        options: &[],
        setup: &[],
        start: Start {
            args: &["node", "{dir}/gc.js"],
            files: &[("gc.js", NODE_GC)],
        },
        talk: Talk::Stdout {
            expect: "collected 4",
        },
        // MCL_CURRENT: V8's heap grows after start, unlocked.
        min_locked: 10,
        notes: "MCL_CURRENT leaves the heap V8 maps later unlocked",
        also: None,
    },
    Row {
        name: "node (GC workload)",
        needs: &["node"],
        package: "nodejs",
        version: &["node", "--version"],
        options: &["--future"],
        setup: &[],
        start: Start {
            args: &["node", "{dir}/gc.js"],
            files: &[("gc.js", NODE_GC)],
        },
        talk: Talk::Stdout {
            expect: "collected 4",
        },
        min_locked: 95,
        notes: "",
        also: None,
    },
    Row {
        name: "chromium (headless)",
        needs: &["chromium"],
        package: "chromium",
        version: &["chromium", "--version"],
        options: &[],
        setup: &[],
        start: Start {
            args: &[
                "chromium",
                "@CHROMIUM_FLAGS",
                "--user-data-dir={dir}/profile",
                "--remote-debugging-port={port}",
                "file://{dir}/page.html",
            ],
            files: &[("page.html", CHROMIUM_PAGE)],
        },
        talk: Talk::Http {
            path: "/json/list",
            requests: 1,
            expect: "rendered 2",
        },
        min_locked: 90,
        notes: "PartitionAlloc reserves its address space before the shim runs",
        also: None,
    },
    Row {
        name: "nginx (`user nobody`)",
        needs: &["nginx"],
        package: "nginx",
        version: &["nginx", "-v"],
        options: &["--future"],
        setup: &[],
        start: Start {
            args: &[
                "nginx",
                "-p",
                "{dir}",
                "-c",
                "{dir}/nginx.conf",
                "-e",
                "stderr",
            ],
            files: &[("nginx.conf", NGINX_CONF)],
        },
        talk: Talk::Http {
            path: "/",
            requests: 200,
            expect: "served",
        },
        min_locked: 95,
        notes: "as root; workers keep CAP_IPC_LOCK alone across `user`",
        also: Some(workers_run_as_nobody_with_ipc_lock_alone),
    },
    Row {
        name: "python3 multiprocessing (fork)",
        needs: &["python3"],
        package: "python3",
        version: &["python3", "--version"],
        options: &["--future"],
        setup: &[],
        start: Start {
            args: &["python3", "{dir}/pool.py", "fork"],
            files: &[("pool.py", PYTHON_POOL)],
        },
        talk: Talk::Stdout {
            expect: "pool fork",
        },
        min_locked: 95,
        notes: "forked workers locked again by the shim's fork handler",
        also: None,
    },
    Row {
        name: "python3 multiprocessing (spawn)",
        needs: &["python3"],
        package: "python3",
        version: &["python3", "--version"],
        options: &["--future"],
        setup: &[],
        start: Start {
            args: &["python3", "{dir}/pool.py", "spawn"],
            files: &[("pool.py", PYTHON_POOL)],
        },
        talk: Talk::Stdout {
            expect: "pool spawn",
        },
        min_locked: 95,
        notes: "spawned workers are new images: the shim through LD_PRELOAD",
        also: None,
    },
    Row {
        name: "perl (forked workers)",
        needs: &["perl"],
        package: "perl",
        version: &["perl", "-e", "print \"perl $^V\\n\""],
        options: &["--future"],
        setup: &[],
        start: Start {
            args: &["perl", "{dir}/workers.pl"],
            files: &[("workers.pl", PERL_WORKERS)],
        },
        talk: Talk::Stdout {
            expect: "perl workers 4",
        },
        min_locked: 95,
        notes: "forked workers locked again by the shim's fork handler",
        also: None,
    },
    Row {
        name: "ruby (threads)",
        needs: &["ruby"],
        package: "ruby",
        version: &["ruby", "--version"],
        options: &["--future"],
        setup: &[],
        start: Start {
            args: &["ruby", "{dir}/threads.rb"],
            files: &[("threads.rb", RUBY_THREADS)],
        },
        talk: Talk::Stdout {
            expect: "ruby threads 80000",
        },
        min_locked: 95,
        notes: "as root; as nobody at 8 MiB `--check` says FAIL: it touches its whole stack at start (docs/lifetime.md)",
        also: None,
    },
    Row {
        name: "openjdk (G1)",
        needs: &["java"],
        package: "openjdk-17-jre-headless",
        version: &["java", "-version"],
        options: &["--onfault", "--future"],
        setup: &[],
        start: Start {
            args: &["java", "-XX:+UseG1GC", "-Xmx256m", "{dir}/G1Work.java"],
            files: &[("G1Work.java", JAVA_G1)],
        },
        talk: Talk::Stdout { expect: "g1 done" },
        min_locked: 95,
        notes: "libjvm is loaded after start: only --future locks it",
        also: None,
    },
    Row {
        name: "openjdk (G1)",
        needs: &["java"],
        package: "openjdk-17-jre-headless",
        version: &["java", "-version"],
        options: &[],
        setup: &[],
        start: Start {
            args: &["java", "-XX:+UseG1GC", "-Xmx256m", "{dir}/G1Work.java"],
            files: &[("G1Work.java", JAVA_G1)],
        },
        talk: Talk::Stdout { expect: "g1 done" },
        // The truth of MCL_CURRENT for a JVM: its launcher only; -v and --check say so.
        min_locked: 0,
        notes: "MCL_CURRENT locks the launcher only (`-v`, `--check` say so)",
        also: None,
    },
    Row {
        name: "redis (BGSAVE)",
        needs: &["redis-server", "redis-cli", "redis-benchmark"],
        package: "redis-server",
        version: &["redis-server", "--version"],
        options: &["--future"],
        setup: &[],
        start: Start {
            args: &[
                "redis-server",
                "--port",
                "{port}",
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                "{dir}",
            ],
            files: &[],
        },
        talk: Talk::Clients(&[
            (
                &[
                    "redis-benchmark",
                    "-p",
                    "{port}",
                    "-n",
                    "2000",
                    "-q",
                    "-t",
                    "set,get",
                ],
                "GET: ",
            ),
            (
                &["redis-cli", "-p", "{port}", "BGSAVE"],
                "Background saving started",
            ),
            (
                &["redis-cli", "-p", "{port}", "INFO", "persistence"],
                "rdb_last_bgsave_status:ok",
            ),
        ]),
        min_locked: 95,
        notes: "rewrites its environment: --status reads the shim's memfd name",
        also: Some(status_reads_the_settings_redis_rewrote),
    },
    Row {
        name: "postgres (pgbench)",
        needs: &["/usr/lib/postgresql/15/bin/postgres", "pgbench", "setpriv"],
        package: "postgresql",
        version: &["/usr/lib/postgresql/15/bin/postgres", "--version"],
        options: &["--future", "--user", "nobody"],
        setup: &[
            &["chown", "nobody:nogroup", "{dir}"],
            &[
                "setpriv",
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "/usr/lib/postgresql/15/bin/initdb",
                "-D",
                "{dir}/data",
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
        ],
        start: Start {
            args: &[
                "/usr/lib/postgresql/15/bin/postgres",
                "-D",
                "{dir}/data",
                "-p",
                "{port}",
                "-k",
                "{dir}",
                "-c",
                "listen_addresses=127.0.0.1",
            ],
            files: &[],
        },
        talk: Talk::Clients(&[
            (
                &[
                    "pgbench",
                    "-i",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    "{port}",
                    "-U",
                    "postgres",
                    "postgres",
                ],
                "done in",
            ),
            (
                &[
                    "pgbench",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    "{port}",
                    "-U",
                    "postgres",
                    "-c",
                    "2",
                    "-t",
                    "200",
                    "postgres",
                ],
                "number of failed transactions: 0",
            ),
        ]),
        min_locked: 95,
        notes: "--user nobody: backends forked and locked again",
        also: None,
    },
    Row {
        name: "mariadb",
        needs: &["mariadbd", "mariadb-install-db", "mariadb"],
        package: "mariadb-server",
        version: &["mariadbd", "--version"],
        options: &["--onfault", "--future"],
        setup: &[&[
            "mariadb-install-db",
            "--no-defaults",
            "--datadir={dir}/data",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ]],
        start: Start {
            args: &[
                "mariadbd",
                "--no-defaults",
                "--datadir={dir}/data",
                "--socket={dir}/mysql.sock",
                "--bind-address=127.0.0.1",
                "--port={port}",
                "--user=root",
                "--pid-file={dir}/mysqld.pid",
            ],
            files: &[],
        },
        talk: Talk::Clients(&[(
            &[
                "mariadb",
                "--no-defaults",
                "-S",
                "{dir}/mysql.sock",
                "-uroot",
                "-e",
                "create database if not exists t; create table if not exists t.a (i int primary key, s \
                 varchar(200)); insert ignore into t.a select seq, repeat('x', 200) from seq_1_to_20000; \
                 select count(*) as n from t.a",
            ],
            "20000",
        )]),
        min_locked: 95,
        notes: "as root; `--future` alone holds 5x the RAM; --status: VmLck 8 TiB of reservations (docs/lifetime.md)",
        also: None,
    },
    Row {
        name: "Go (net/http server)",
        needs: &["go"],
        package: "golang-go",
        version: &["go", "version"],
        options: &["--future"],
        setup: &[&["go", "build", "-o", "{dir}/server", "{dir}/main.go"]],
        start: Start {
            args: &["{dir}/server", "{port}"],
            files: &[("main.go", GO_SERVER)],
        },
        talk: Talk::Http {
            path: "/",
            requests: 200,
            expect: "served 65536",
        },
        min_locked: 95,
        notes: "static: locked from outside (ptrace method)",
        also: None,
    },
];

const GO_SERVER: &str = r#"package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	var kept [][]byte
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 64<<10)
		kept = append(kept, b)
		if len(kept) > 64 {
			kept = kept[1:]
		}
		fmt.Fprintf(w, "served %d\n", len(b))
	})
	if err := http.ListenAndServe("127.0.0.1:"+os.Args[1], nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
"#;

/// What one row gave.
struct Outcome {
    version: String,
    works: Result<(), String>,
    locked: Option<f64>,
    measured: usize,
}

#[test]
fn real_programs_work_and_are_locked() {
    let mut table = String::from(
        "| program | version | options | works | locked share | notes |\n|---|---|---|---|---|---|\n",
    );
    let mut failures = Vec::new();
    for row in ROWS {
        let why = format!(
            "the compatibility row {:?} {:?} needs it (apt-get install {})",
            row.name, row.options, row.package
        );
        if row.needs.iter().any(|program| skip_without(program, &why)) {
            continue;
        }
        let started = Instant::now();
        let outcome = run_row(row);
        let options = if row.options.is_empty() {
            "(none: MCL_CURRENT)".to_owned()
        } else {
            format!("`{}`", row.options.join(" "))
        };
        let share = outcome
            .locked
            .map_or("not measured".to_owned(), |s| format!("{s:.1}%"));
        let works = match &outcome.works {
            Ok(()) => "yes".to_owned(),
            Err(why) => format!("no: {why}"),
        };
        eprintln!(
            "compat: {} {options}: works {works}, locked {share} over {} processes, in {:.1} s",
            row.name,
            outcome.measured,
            started.elapsed().as_secs_f64()
        );
        let _ = writeln!(
            table,
            "| {} | {} | {options} | {} | {share} | {} |",
            row.name,
            outcome.version,
            if outcome.works.is_ok() { "yes" } else { "no" },
            row.notes
        );
        if let Err(why) = &outcome.works {
            failures.push(format!("{} {options}: does not work: {why}", row.name));
        }
        match outcome.locked {
            Some(share) if share >= f64::from(row.min_locked) => {}
            other => failures.push(format!(
                "{} {options}: locked share {other:?}, below {}%",
                row.name, row.min_locked
            )),
        }
    }
    fs::write(bin_dir().join("compat.md"), &table).expect("write compat.md");
    if std::env::var_os("MEMLOCK_RUN_UPDATE_README").is_some() {
        update_readme(&table);
    }
    assert!(failures.is_empty(), "{}\n\n{table}", failures.join("\n"));
}

fn run_row(row: &Row) -> Outcome {
    let version = version_of(row.version);
    let name = Path::new(row.needs[0]).file_name().unwrap_or_default();
    let dir = unique(&format!("compat-{}", name.to_string_lossy()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("logs")).expect("create the row's dir");
    set_mode(&dir, 0o755);
    let port = free_port();
    let fill = |text: &str| {
        text.replace("{dir}", &dir.display().to_string())
            .replace("{port}", &port.to_string())
    };
    for (name, text) in row.start.files {
        fs::write(dir.join(name), fill(text)).expect("write the row's file");
    }
    for command in row.setup {
        let command: Vec<String> = command.iter().map(|a| fill(a)).collect();
        let out = output({
            let mut cmd = Command::new(&command[0]);
            cmd.args(&command[1..]).current_dir(&dir);
            cmd
        });
        if !out.status.success() {
            let _ = fs::remove_dir_all(&dir);
            return Outcome {
                version,
                works: Err(format!(
                    "setup {command:?} failed ({}): {}",
                    out.status,
                    stderr_of(&out)
                )),
                locked: None,
                measured: 0,
            };
        }
    }
    let mut args: Vec<String> = row.options.iter().map(|s| (*s).to_owned()).collect();
    args.push("--".to_owned());
    for arg in row.start.args {
        if *arg == "@CHROMIUM_FLAGS" {
            args.extend(CHROMIUM_FLAGS.iter().map(|s| (*s).to_owned()));
        } else {
            args.push(fill(arg));
        }
    }
    let stderr_path = dir.join("stderr");
    let mut cmd = memlock_run(&args);
    cmd.current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&stderr_path).expect("create stderr file"));
    let mut child =
        spawn_within(&mut cmd, ROW_TIMEOUT).unwrap_or_else(|e| panic!("start {args:?}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let lines = stdout_lines(stdout);

    let mut works = match &row.talk {
        Talk::Http {
            path,
            requests,
            expect,
        } => talk_http(&mut child, port, path, *requests, expect),
        Talk::Stdout { expect } => wait_for_line(&mut child, &lines, expect),
        Talk::Clients(clients) => talk_clients(&mut child, port, clients, &fill),
    };
    if let (Ok(()), Some(also)) = (&works, row.also) {
        works = also(child.id() as i32);
    }
    let (locked, measured) = if works.is_ok() {
        let (share, count) = locked_share(child.id() as i32);
        (Some(share), count)
    } else {
        (None, 0)
    };
    stop(child);
    let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
    if let Err(why) = &mut works {
        let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        write!(why, "; stderr ends:\n{}", tail.join("\n")).unwrap();
    }
    let _ = fs::remove_dir_all(&dir);
    Outcome {
        version,
        works,
        locked,
        measured,
    }
}

fn version_of(command: &[&str]) -> String {
    let Ok(out) = run(Command::new(command[0]).args(&command[1..])) else {
        return "?".to_owned();
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let first = text.lines().next().unwrap_or("?").trim();
    // "nginx version: nginx/1.22.1", "openjdk version \"17.0.15\" 2025-04-15", "v20.1.0"
    first
        .split_whitespace()
        .find(|w| w.chars().any(|c| c.is_ascii_digit()))
        .map(|w| {
            w.trim_matches('"')
                .trim_start_matches("nginx/")
                .trim_start_matches(['v', '='])
                .to_owned()
        })
        .unwrap_or_else(|| first.to_owned())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on loopback")
        .port()
}

/// The program's stdout, line by line, from a thread.
fn stdout_lines(stdout: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

const PATIENCE: Duration = Duration::from_secs(60);

/// How long a row's program may run: its start and each of its talks get `PATIENCE`.
const ROW_TIMEOUT: Duration = Duration::from_secs(240);

fn exited(child: &mut Child) -> Option<String> {
    match child.try_wait() {
        Ok(Some(status)) => Some(format!("it exited ({status})")),
        _ => None,
    }
}

fn wait_for_line(
    child: &mut Child,
    lines: &mpsc::Receiver<String>,
    expect: &str,
) -> Result<(), String> {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        match lines.recv_timeout(Duration::from_millis(200)) {
            Ok(line) if line.contains(expect) => return Ok(()),
            Ok(line) => seen.push(line),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let how = exited(child).unwrap_or_else(|| "it closed its stdout".to_owned());
                return Err(format!("no {expect:?} on stdout ({seen:?}): {how}"));
            }
        }
    }
    Err(format!(
        "no {expect:?} on stdout in {PATIENCE:?} ({seen:?})"
    ))
}

fn talk_http(
    child: &mut Child,
    port: u16,
    path: &str,
    requests: u32,
    expect: &str,
) -> Result<(), String> {
    let deadline = Instant::now() + PATIENCE;
    // Ready: it accepts connections, and (for a program that builds its answer after it
    // listens, as Chromium's page list) the first answer holds what is expected.
    loop {
        if let Some(how) = exited(child) {
            return Err(format!("before answering on port {port}: {how}"));
        }
        let last = match get(port, path) {
            Ok(reply) if reply.contains(expect) => break,
            Ok(reply) => reply,
            Err(err) => err,
        };
        if Instant::now() > deadline {
            return Err(format!(
                "no answer holding {expect:?} on port {port} in {PATIENCE:?}; last: {last:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for n in 1..requests {
        let reply = get(port, path).map_err(|e| format!("request {n}: {e}"))?;
        if !reply.contains(expect) {
            return Err(format!("request {n}: {reply:?} has no {expect:?}"));
        }
    }
    Ok(())
}

fn talk_clients(
    child: &mut Child,
    port: u16,
    clients: &[(&[&str], &str)],
    fill: &dyn Fn(&str) -> String,
) -> Result<(), String> {
    // Listening first: some clients (redis-benchmark) spin when nothing answers yet.
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(how) = exited(child) {
            return Err(format!("before listening on port {port}: {how}"));
        }
        if Instant::now() > deadline {
            return Err(format!("nothing listens on port {port} after {PATIENCE:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for (command, expect) in clients {
        let command: Vec<String> = command.iter().map(|a| fill(a)).collect();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(how) = exited(child) {
                return Err(format!("before {command:?} got its answer: {how}"));
            }
            // A client that hangs is killed, and its output judged as it stands.
            let out = output({
                let mut cmd = Command::new("timeout");
                cmd.args(["-k", "5", "30"]).args(&command);
                cmd
            });
            let text = format!("{}{}", stdout_of(&out), stderr_of(&out));
            if text.contains(expect) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{command:?} gave no {expect:?} in {PATIENCE:?}; last: {text:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}

fn get(port: u16, path: &str) -> Result<String, String> {
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    // Until the end of the body: Chromium's endpoint keeps the connection open.
    let mut reply = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            // A signal to this test process (another test's child ending) is not an answer.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read: {e}")),
        };
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            });
            if length.is_some_and(|length| body.len() >= length) {
                break;
            }
        }
    }
    let reply = String::from_utf8_lossy(&reply).into_owned();
    Ok(reply)
}

/// Resident memory in `lo` mappings over all resident memory, in percent, summed over
/// `pid` and its descendants; and how many processes that was.
fn locked_share(pid: i32) -> (f64, usize) {
    let mut pids = vec![pid];
    let mut i = 0;
    while i < pids.len() {
        pids.extend(children_of(pids[i]));
        i += 1;
    }
    let (mut locked, mut resident, mut count) = (0u64, 0u64, 0);
    for pid in pids {
        // A process that ended meanwhile has no smaps.
        if !Path::new(&format!("/proc/{pid}/smaps")).exists() {
            continue;
        }
        let maps = std::panic::catch_unwind(|| smaps(pid)).unwrap_or_default();
        if maps.is_empty() {
            continue;
        }
        count += 1;
        for map in &maps {
            resident += map.bytes("Rss");
            if map.locked_flag() {
                locked += map.bytes("Rss");
            }
        }
    }
    (100.0 * locked as f64 / resident.max(1) as f64, count)
}

fn children_of(parent: i32) -> Vec<i32> {
    let Ok(text) = fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")) else {
        return Vec::new();
    };
    let mut children: Vec<i32> = text
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    // Children of the process's other threads.
    if let Ok(tasks) = fs::read_dir(format!("/proc/{parent}/task")) {
        for task in tasks.flatten() {
            let tid = task.file_name().to_string_lossy().into_owned();
            if tid == parent.to_string() {
                continue;
            }
            if let Ok(text) = fs::read_to_string(format!("/proc/{parent}/task/{tid}/children")) {
                children.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok()),
                );
            }
        }
    }
    children
}

/// Closes stdin, then SIGTERM, then (dropped) SIGKILL to the whole tree: what the program
/// started, re-parented to init (a crash handler) or not.
fn stop(mut child: Process) {
    drop(child.stdin.take());
    // SAFETY: kill with a pid this test started and has not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// nginx's workers switched to nobody, and kept CAP_IPC_LOCK and nothing else, in every
/// set, ambient included; the master, still root, kept all it had.
fn workers_run_as_nobody_with_ipc_lock_alone(master: i32) -> Result<(), String> {
    let (nobody, _, _, _) = passwd("nobody");
    let workers: Vec<i32> = children_of(master)
        .into_iter()
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.starts_with(b"nginx: worker process"))
        })
        .collect();
    if workers.len() != 2 {
        return Err(format!("{} workers, not 2", workers.len()));
    }
    for worker in workers {
        let status = ProcStatus::read(worker);
        if status.ids("Uid") != [nobody; 4] {
            return Err(format!("worker {worker} has Uid {}", status.get("Uid")));
        }
        for set in ["CapPrm", "CapEff", "CapInh", "CapAmb"] {
            if status.caps(set) != CAP_IPC_LOCK {
                return Err(format!(
                    "worker {worker} has {set} {}, not CAP_IPC_LOCK alone (4000)",
                    status.get(set)
                ));
            }
        }
    }
    let master_caps = ProcStatus::read(master).caps("CapEff");
    let own = own_status().caps("CapEff");
    if master_caps != own {
        return Err(format!(
            "the master has CapEff {master_caps:x}, not {own:x}"
        ));
    }
    Ok(())
}

/// redis rewrites its environment for its title; `--status` still finds the settings.
fn status_reads_the_settings_redis_rewrote(pid: i32) -> Result<(), String> {
    let environ = fs::read(format!("/proc/{pid}/environ")).map_err(|e| e.to_string())?;
    if environ
        .windows("MEMLOCK_RUN_FLAGS".len())
        .any(|w| w == b"MEMLOCK_RUN_FLAGS")
    {
        return Err("its environment still holds MEMLOCK_RUN_FLAGS: nothing to prove".to_owned());
    }
    let out = output(memlock_run(["--status", &pid.to_string()]));
    let text = stdout_of(&out);
    if !text.contains("MCL_CURRENT|MCL_FUTURE") {
        return Err(format!("--status does not name the flags:\n{text}"));
    }
    Ok(())
}

const README_BEGIN: &str = "<!-- compat-table begin: tests/compat.rs writes this, run MEMLOCK_RUN_UPDATE_README=1 cargo test --test compat -->";
const README_END: &str = "<!-- compat-table end -->";

fn update_readme(table: &str) {
    let path = repo().join("README.md");
    let text = fs::read_to_string(&path).expect("read README.md");
    let (Some(begin), Some(end)) = (text.find(README_BEGIN), text.find(README_END)) else {
        panic!("README.md has no compat-table markers");
    };
    let updated = format!("{}{README_BEGIN}\n{table}{}", &text[..begin], &text[end..]);
    fs::write(&path, updated).expect("write README.md");
}

/// bash defines its own getenv and unsetenv, which the dynamic linker binds the shim's
/// calls to; `--no-inherit` must still keep memlock-run out of what bash exports.
#[test]
fn no_inherit_holds_when_bash_is_the_command() {
    let out = output(memlock_run([
        "--no-inherit",
        "--",
        "bash",
        "-c",
        "grep VmLck /proc/$$/status; cat /proc/self/environ | tr '\\0' '\\n'; grep -c libmemlock_run_shim /proc/self/maps; true",
    ]));
    let stdout = stdout_of(&out);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let bash_locked = stdout
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .expect("bash's VmLck line");
    assert!(bash_locked > 0, "bash itself is locked: {stdout}");
    let leaks: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("MEMLOCK_RUN_") || l.contains("libmemlock_run_shim.so"))
        .collect();
    assert!(leaks.is_empty(), "bash's child sees {leaks:?}");
    assert_eq!(
        stdout.lines().last(),
        Some("0"),
        "the shim is not loaded in bash's child: {stdout}"
    );
}

/// A JVM loads libjvm after start: `--check` says what MCL_CURRENT leaves out and that
/// `--onfault --future` covers it, warns of `--future` without `--onfault`, and says nothing
/// more once both are given; `-v` says it before exec.
#[test]
fn check_and_verbose_tell_what_a_jvm_leaves_unlocked() {
    if skip_without(
        "java",
        "the JVM findings need it (apt-get install openjdk-17-jre-headless)",
    ) {
        return;
    }
    let plain = stdout_of(&output(memlock_run(["--check", "--", "java", "-version"])));
    let jvm = finding_of(&plain, "JVM");
    assert_eq!(jvm.verdict, "warn", "{plain}");
    assert_mentions(
        &jvm.text,
        &["libjvm", "MCL_CURRENT locks only the launcher"],
    );
    assert!(plain.contains("--onfault --future"), "{plain}");
    let future = stdout_of(&output(memlock_run([
        "--check", "--future", "--", "java", "-version",
    ])));
    let jvm = finding_of(&future, "JVM");
    assert_eq!(jvm.verdict, "warn", "{future}");
    assert_mentions(&jvm.text, &["G1", "--onfault"]);
    let both = output(memlock_run([
        "--check",
        "--onfault",
        "--future",
        "--",
        "java",
        "-version",
    ]));
    assert_eq!(
        finding(&stdout_of(&both), "JVM"),
        None,
        "{}",
        stdout_of(&both)
    );

    let verbose = output(memlock_run(["-v", "--", "java", "-version"]));
    assert!(verbose.status.success(), "{}", stderr_of(&verbose));
    assert_mentions(
        &stderr_of(&verbose),
        &[
            "is a JVM",
            "MCL_CURRENT does not lock",
            "--onfault --future",
        ],
    );
}

/// Unprivileged, at the machine's hard limit: `--check` says FAIL for node and the JVM under
/// `--future`, and the runs fail as it said.
#[test]
fn check_fails_v8_and_the_jvm_under_an_unprivileged_future() {
    if skip_unprivileged_run("the unprivileged runtime findings")
        || skip_unless_root("setpriv to nobody")
    {
        return;
    }
    for (program, args, topic) in [
        ("node", &["-e", "console.log(1)"][..], "V8"),
        ("java", &["-version"][..], "JVM"),
    ] {
        if skip_without(program, "an unprivileged runtime finding needs it") {
            continue;
        }
        let mut check_args = vec!["--check", "--future", "--", program];
        check_args.extend(args);
        let mut cmd = as_nobody().memlock_run(&check_args);
        cmd.current_dir("/");
        let check = output(cmd);
        let report = stdout_of(&check);
        assert!(!check.status.success(), "{report}");
        let found = finding_of(&report, topic);
        assert_eq!(found.verdict, "FAIL", "{report}");
        assert_mentions(&found.text, &["without CAP_IPC_LOCK"]);

        let mut run_args = vec!["--future", "--", program];
        run_args.extend(args);
        let mut cmd = as_nobody().memlock_run(&run_args);
        cmd.current_dir("/");
        let run = output(cmd);
        assert!(
            !run.status.success(),
            "{program} ran under an unprivileged --future: {}",
            stderr_of(&run)
        );
    }
}

/// Chromium under `--future` with forked children locked again stops: its zygote drops every
/// capability in its children, whose locked reservations are past the 8 MiB limit, so their
/// next mmap fails (the GPU process exits with code 5). `--check` says FAIL before anything
/// runs, and the run fails as it said; with `--fork off` it renders.
#[test]
fn check_fails_chromium_under_future_as_the_run_does() {
    if skip_without(
        "chromium",
        "the Chromium finding needs it (apt-get install chromium)",
    ) {
        return;
    }
    let check = output(memlock_run([
        "--check",
        "--future",
        "--",
        "chromium",
        "--headless",
    ]));
    let report = stdout_of(&check);
    assert!(!check.status.success(), "{report}");
    let chromium = finding_of(&report, "Chromium");
    assert_eq!(chromium.verdict, "FAIL", "{report}");
    assert_mentions(&chromium.text, &["GPU process"]);

    let dir = unique("compat-chromium-future");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("page.html"), CHROMIUM_PAGE).unwrap();
    let render = |options: &[&str]| {
        let mut args: Vec<String> = options.iter().map(|s| (*s).to_owned()).collect();
        args.extend(["--", "chromium"].map(str::to_owned));
        args.extend(CHROMIUM_FLAGS.iter().map(|s| (*s).to_owned()));
        args.push(format!(
            "--user-data-dir={}/profile-{}",
            dir.display(),
            options.len()
        ));
        args.push("--dump-dom".to_owned());
        args.push(format!("file://{}/page.html", dir.display()));
        let mut cmd = Command::new("timeout");
        cmd.args(["-k", "5", "90"])
            .arg(memlock_run_path())
            .args(&args);
        output(cmd)
    };
    let future = render(&["--future"]);
    assert!(
        !stdout_of(&future).contains("rendered 2"),
        "Chromium rendered under --future: the FAIL is wrong now"
    );
    let fork_off = render(&["--future", "--fork", "off"]);
    assert!(
        stdout_of(&fork_off).contains("rendered 2"),
        "{}",
        stderr_of(&fork_off)
    );
    let _ = fs::remove_dir_all(&dir);
}

/// Frees pages of a locked private mapping with madvise through libc's symbol (which the
/// shim's wrapper takes), and reports what the kernel says after each step.
const MADVISE_PROBE: &str = r#"import ctypes, mmap, os
libc = ctypes.CDLL(None, use_errno=True)
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.syscall.restype = ctypes.c_long
SIZE = 1 << 20
m = mmap.mmap(-1, SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
PAGES = SIZE // mmap.PAGESIZE
def mapping():
    # Rss of exactly this range (mincore): the kernel may merge the mapping with a
    # neighbour of the same flags, whose smaps entry then counts both. VmFlags from the
    # entry that holds it.
    vec = (ctypes.c_ubyte * PAGES)()
    if libc.mincore(ctypes.c_void_p(addr), ctypes.c_size_t(SIZE), vec) != 0:
        raise OSError(ctypes.get_errno(), "mincore")
    rss = sum(b & 1 for b in vec) * mmap.PAGESIZE // 1024
    found = False
    for line in open("/proc/self/smaps"):
        first = line.split()[0]
        if "-" in first and not line.startswith("VmFlags"):
            start, end = (int(x, 16) for x in first.split("-"))
            found = start <= addr < end
        elif found and line.startswith("VmFlags:"):
            return rss, "lo" in line.split()
def report(what, rc):
    err = os.strerror(ctypes.get_errno()) if rc else "ok"
    rss, lo = mapping()
    print(what, err, "rss", rss, "lo", lo, "first", m[0])
for name, advice in (("dontneed", 4), ("free", 8)):
    m.seek(0); m.write(b"x" * SIZE)
    report(name + "-raw", libc.syscall(28, ctypes.c_void_p(addr), ctypes.c_size_t(SIZE), advice))
    report(name, libc.madvise(addr, SIZE, advice))
m.seek(0); m.write(b"y" * SIZE)
report("touched", 0)
report("unaligned", libc.madvise(addr + 1, SIZE, 4))
"#;

/// The shim's madvise: on a locked range the kernel refuses MADV_DONTNEED and MADV_FREE
/// (the raw system call says EINVAL); through the wrapper both succeed, the pages are freed
/// (Rss 0, zeroes read back), the mapping stays locked, and what is touched again is resident
/// and locked. An unaligned address still gets its EINVAL.
#[test]
fn madvise_frees_pages_of_locked_ranges_and_they_stay_locked() {
    if skip_without("python3", "the madvise probe is a python3 script") {
        return;
    }
    let script = scratch().join(format!("madvise-probe-{}.py", std::process::id()));
    fs::write(&script, MADVISE_PROBE).unwrap();
    let out = output(memlock_run([
        "--future".as_ref(),
        "--".as_ref(),
        "python3".as_ref(),
        script.as_os_str(),
    ]));
    let _ = fs::remove_file(&script);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stdout = stdout_of(&out);
    let line = |what: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(what))
            .unwrap_or_else(|| panic!("no {what} line in:\n{stdout}"))
            .to_owned()
    };
    for advice in ["dontneed", "free"] {
        assert!(
            line(&format!("{advice}-raw")).starts_with(&format!("{advice}-raw Invalid argument")),
            "the kernel accepted {advice} on a locked range: nothing to prove\n{stdout}"
        );
        assert_eq!(
            line(advice),
            format!("{advice} ok rss 0 lo True first 0"),
            "{stdout}"
        );
    }
    assert_eq!(line("touched"), "touched ok rss 1024 lo True first 121");
    assert!(
        line("unaligned").starts_with("unaligned Invalid argument"),
        "{stdout}"
    );
}

/// The shim exports exactly the functions its `wrap` module lists in its opening comment,
/// where each one's reason and cost are written.
#[test]
fn the_shim_exports_only_what_wrap_rs_documents() {
    if skip_without(
        "nm",
        "reading the shim's symbols needs it (apt-get install binutils)",
    ) {
        return;
    }
    let out = output({
        let mut cmd = Command::new("nm");
        cmd.args(["-D", "--defined-only"]).arg(shim_path());
        cmd
    });
    assert!(out.status.success(), "{}", stderr_of(&out));
    let mut exported: Vec<String> = stdout_of(&out)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let (_, kind, name) = (words.next()?, words.next()?, words.next()?);
            (kind == "T" || kind == "W").then(|| name.to_owned())
        })
        .collect();
    exported.sort();
    let source = fs::read_to_string(repo().join("preload-shim/src/wrap.rs")).unwrap();
    let mut documented: Vec<String> = source
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .filter_map(|l| l.strip_prefix("//! - "))
        .flat_map(|l| {
            let names = l.split(':').next().unwrap_or("");
            names
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    documented.sort();
    assert_eq!(
        exported, documented,
        "exported (left) and listed in wrap.rs (right)"
    );
}

/// The capability a switch of user keeps, read from /proc/self/status after the program's
/// own setresuid(2), in three programs: one that switches away from root, one that set
/// KEEPCAPS itself first (left to manage its capabilities), and one that changes only its
/// effective ID (still root in its saved ID, so the kernel keeps the permitted set).
#[test]
fn setresuid_keeps_cap_ipc_lock_alone_and_leaves_other_cases_to_the_kernel() {
    if skip_unless_root("switching user from root")
        || skip_without("python3", "the switching program is a python3 script")
    {
        return;
    }
    let (nobody, _, _, _) = passwd("nobody");
    let script = |before: &str, switch: &str| {
        format!(
            "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n{before}\n{switch}\n\
             print(''.join(l for l in open('/proc/self/status') if l.startswith(('Cap', 'Uid'))))"
        )
    };
    let run = |program: String| {
        let out = output(memlock_run(["--", "python3", "-c", &program]));
        assert!(out.status.success(), "{}", stderr_of(&out));
        let text = stdout_of(&out);
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|| panic!("no {name} in {text}"))
        };
        (
            field("Uid"),
            field("CapPrm"),
            field("CapEff"),
            field("CapAmb"),
        )
    };
    let all = format!("{:016x}", own_status().caps("CapPrm"));
    let ids = format!("{nobody} {nobody} {nobody} {nobody}");
    let switch = format!("os.setresuid({nobody}, {nobody}, {nobody})");
    assert_eq!(
        run(script("", &switch)),
        (
            ids.clone(),
            "0000000000004000".to_owned(),
            "0000000000004000".to_owned(),
            "0000000000004000".to_owned()
        ),
        "away from root: CAP_IPC_LOCK alone, ambient too"
    );
    // PR_SET_KEEPCAPS is 8: the program keeps its permitted set, as the kernel says.
    assert_eq!(
        run(script("libc.prctl(8, 1, 0, 0, 0)", &switch)),
        (
            ids,
            all.clone(),
            "0000000000000000".to_owned(),
            "0000000000000000".to_owned()
        ),
        "a program that set KEEPCAPS itself"
    );
    let effective_only = run(script("", &format!("os.setresuid(-1, {nobody}, -1)")));
    assert_eq!(
        (effective_only.1, effective_only.2),
        (all, "0000000000000000".to_owned()),
        "still root in its real and saved IDs: the kernel keeps the permitted set"
    );
}
