//! Writes memlock-run's man page and its bash, zsh and fish completions.
//!
//! The launcher's `cli.rs`, and the `size.rs` and `plan/request.rs` it parses values into, are
//! compiled here as modules of this crate: the OPTIONS section and the completions are always those of the
//! launcher's clap definition, so an option added there appears in both at the next package
//! build. The sections clap knows nothing about (EXIT STATUS, ENVIRONMENT, EXAMPLES,
//! SECURITY, SEE ALSO, ...) are written by hand in `man-sections.roff`.
//!
//! This is a build tool for `packaging/build.sh`, not part of what the packages install.
//!
//! ```text
//! memlock-run-docs [--date YYYY-MM-DD] OUT_DIR
//!   OUT_DIR/man/memlock-run.1
//!   OUT_DIR/completions/memlock-run.bash   bash
//!   OUT_DIR/completions/_memlock-run       zsh
//!   OUT_DIR/completions/memlock-run.fish   fish
//! ```

// The launcher's modules, compiled here only for their clap definition: what the launcher
// does with the parsed values is not used.
#[allow(dead_code)]
#[path = "../../../launcher/src/cli.rs"]
mod cli;
#[allow(dead_code)]
#[path = "../../../launcher/src/size.rs"]
mod size;
// The typed request cli.rs parses into.
#[path = "../../../launcher/src/plan"]
mod plan {
    #[allow(dead_code)]
    pub mod request;
}

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser, ValueHint};
use clap_complete::Shell;
use roff::{roman, Roff};

/// The sections of memlock-run(1) that do not come from the clap definition.
const HAND_WRITTEN: &str = include_str!("man-sections.roff");

/// Write memlock-run's man page and shell completions
#[derive(Parser, Debug)]
#[command(name = "memlock-run-docs")]
struct Args {
    /// Date in the man page's footer, such as the release's (default: none)
    #[arg(long, value_name = "YYYY-MM-DD")]
    date: Option<String>,

    /// Directory to write man/ and completions/ into (created if missing)
    out_dir: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let cmd = memlock_run_command();
    let man = write_man_page(&cmd, args.date.as_deref(), &args.out_dir.join("man"))?;
    println!("{}", man.display());
    for path in write_completions(cmd, &args.out_dir.join("completions"))? {
        println!("{}", path.display());
    }
    Ok(())
}

/// The launcher's command, with the value hints that completions use.
fn memlock_run_command() -> clap::Command {
    let mut cmd = cli::Cli::command();
    // Hints that do not belong in the launcher's parsing code: COMMAND completes as a command
    // line (a program from PATH, then its own arguments), USER as a user name. An argument
    // renamed in cli.rs simply loses its hint here.
    for (id, hint) in [
        ("command", ValueHint::CommandWithArguments),
        ("user", ValueHint::Username),
    ] {
        if cmd.get_arguments().any(|arg| arg.get_id() == id) {
            cmd = cmd.mut_arg(id, |arg| arg.value_hint(hint));
        }
    }
    cmd.build();
    cmd
}

/// The parts of `--help`'s closing text (`after_help` in cli.rs) that the man page takes,
/// by paragraph: "Exit status: ..." opens EXIT STATUS, the lines after "Examples:" open
/// EXAMPLES, and any other paragraph (what a SIZE is, say) goes into NOTES. So what is added
/// there reaches the man page as well.
#[derive(Debug, Default, PartialEq)]
struct AfterHelp {
    notes: Vec<String>,
    exit_status: Vec<String>,
    examples: Vec<String>,
}

impl AfterHelp {
    fn split(text: &str) -> AfterHelp {
        let mut parts = AfterHelp::default();
        for paragraph in text.split("\n\n").map(str::trim) {
            if let Some(rest) = paragraph.strip_prefix("Exit status:") {
                parts.exit_status.push(rest.trim().to_owned());
            } else if let Some(rest) = paragraph.strip_prefix("Examples:") {
                let lines = rest.lines().map(str::trim).filter(|line| !line.is_empty());
                parts.examples.extend(lines.map(str::to_owned));
            } else if !paragraph.is_empty() {
                parts.notes.push(paragraph.to_owned());
            }
        }
        parts
    }

    fn notes(&self) -> String {
        if self.notes.is_empty() {
            return String::new();
        }
        let mut roff = Roff::new();
        roff.control("SH", ["NOTES"]);
        paragraphs(&mut roff, &self.notes);
        roff.render()
    }

    fn exit_status(&self) -> String {
        let mut roff = Roff::new();
        paragraphs(&mut roff, &self.exit_status);
        roff.render()
    }

    fn examples(&self) -> String {
        let mut roff = Roff::new();
        if !self.examples.is_empty() {
            roff.control("RS", []).control("EX", []);
            for line in &self.examples {
                roff.text([roman(line)]);
            }
            roff.control("EE", []).control("RE", []);
        }
        roff.render()
    }
}

fn paragraphs(roff: &mut Roff, texts: &[String]) {
    for text in texts {
        roff.control("PP", []).text([roman(text)]);
    }
}

/// The protocol's variables, from the protocol crate itself, so that ENVIRONMENT names
/// every variable the shim reads: one tag line each, stacked with .TQ over one description.
fn protocol_variables() -> String {
    memlock_run_protocol::VARIABLES
        .iter()
        .chain([
            &memlock_run_protocol::LAUNCHER,
            &memlock_run_protocol::EXECUTED_BY,
            &memlock_run_protocol::COMM,
            &memlock_run_protocol::GATE,
        ])
        .map(|name| format!(".B {name}\n"))
        .collect::<Vec<_>>()
        .join(".TQ\n")
}

/// `man-sections.roff` with its `@NAME@` lines replaced by generated roff.
fn hand_written_sections(after_help: &AfterHelp) -> Result<String> {
    let mut text = HAND_WRITTEN.to_owned();
    for (marker, roff) in [
        ("@NOTES@\n", after_help.notes()),
        ("@EXIT_STATUS@\n", after_help.exit_status()),
        ("@EXAMPLES@\n", after_help.examples()),
        ("@PROTOCOL_VARIABLES@\n", protocol_variables()),
    ] {
        anyhow::ensure!(
            text.contains(marker),
            "man-sections.roff lost its {} line, where generated text goes; put it back",
            marker.trim_end()
        );
        text = text.replace(marker, &roff);
    }
    Ok(text)
}

fn render_man_page(cmd: &clap::Command, date: Option<&str>) -> Result<Vec<u8>> {
    let mut man = clap_mangen::Man::new(cmd.clone())
        .section("1")
        .manual("User Commands")
        .source(format!("memlock-run {}", env!("CARGO_PKG_VERSION")));
    if let Some(date) = date {
        man = man.date(date);
    }
    let after_help = AfterHelp::split(
        &cmd.get_after_long_help()
            .or(cmd.get_after_help())
            .map(|text| text.to_string())
            .unwrap_or_default(),
    );

    // clap's parts, then the hand-written ones, into which the after_help text is spread.
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    page.extend_from_slice(synopsis().as_bytes());
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    page.extend_from_slice(hand_written_sections(&after_help)?.as_bytes());
    man.render_version_section(&mut page)?;
    Ok(page)
}

/// SYNOPSIS from the usage lines `--help` shows (clap_mangen's own leaves out option values
/// and the command's arguments), with the program name in bold as man-pages(7) asks.
fn synopsis() -> String {
    let mut roff = roff::Roff::new();
    roff.control("SH", ["SYNOPSIS"]);
    for line in cli::USAGE.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let rest = line.strip_prefix("memlock-run").unwrap_or(line);
        roff.text([roff::bold("memlock-run"), roff::roman(rest)]);
        roff.control("br", []);
    }
    roff.to_roff()
}

fn write_man_page(cmd: &clap::Command, date: Option<&str>, dir: &Path) -> Result<PathBuf> {
    let page = render_man_page(cmd, date)?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("memlock-run.1");
    fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

fn write_completions(mut cmd: clap::Command, dir: &Path) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    [Shell::Bash, Shell::Zsh, Shell::Fish]
        .into_iter()
        .map(|shell| {
            clap_complete::generate_to(shell, &mut cmd, "memlock-run", dir).with_context(|| {
                format!("cannot write the {shell} completion into {}", dir.display())
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> String {
        String::from_utf8(render_man_page(&memlock_run_command(), Some("2026-01-01")).unwrap())
            .unwrap()
    }

    #[test]
    fn every_option_of_the_launcher_is_in_the_man_page() {
        let page = page();
        for arg in memlock_run_command().get_arguments() {
            if let Some(long) = arg.get_long() {
                // clap_mangen writes dashes as \- in roff.
                let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
                assert!(
                    page.contains(&roff),
                    "--{long} is missing from the man page"
                );
            }
        }
    }

    #[test]
    fn every_protocol_variable_is_in_the_environment_section() {
        let page = page();
        let environment = &page[page.find(".SH ENVIRONMENT").unwrap()..];
        let environment = &environment[..environment.find(".SH FILES").unwrap()];
        for name in memlock_run_protocol::VARIABLES {
            assert!(
                environment.contains(&format!(".B {name}\n")),
                "{name} is missing from ENVIRONMENT"
            );
        }
        assert!(!page.contains('@'), "a marker was left in the page");
    }

    #[test]
    fn after_help_is_spread_over_the_sections() {
        let parts = AfterHelp::split(
            "SIZE is bytes.\n\nExit status: 125 if it fails.\n\nExamples:\n  memlock-run -- a\n  memlock-run -- b",
        );
        assert_eq!(
            parts,
            AfterHelp {
                notes: vec!["SIZE is bytes.".into()],
                exit_status: vec!["125 if it fails.".into()],
                examples: vec!["memlock-run -- a".into(), "memlock-run -- b".into()],
            }
        );
        // Every example of --help is in the page.
        let page = page();
        let help = memlock_run_command().get_after_help().unwrap().to_string();
        for example in AfterHelp::split(&help).examples {
            let roff = example.replace('-', "\\-");
            assert!(page.contains(&roff), "the example {example} is missing");
        }
    }

    #[test]
    fn the_required_sections_are_there() {
        let page = page();
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "EXIT STATUS",
            "ENVIRONMENT",
            "EXAMPLES",
            "SECURITY",
            "SEE ALSO",
        ] {
            assert!(
                page.contains(&format!("\n.SH {section}\n")),
                "no {section} section"
            );
        }
    }
}
