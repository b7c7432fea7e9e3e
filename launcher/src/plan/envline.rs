//! What `#!/usr/bin/env ARGUMENT` runs, read as GNU env reads it, or why memlock-run will not
//! follow it.
//!
//! The kernel hands env the rest of the `#!` line as one argument. env parses it with
//! getopt_long, stopping at the first operand: long options may be abbreviated to any
//! unambiguous prefix (`--un=NAME`), short options may be clustered (`-vi`) and take their
//! value from the rest of the word (`-SLD_PRELOAD=`). `-S`/`--split-string` splits its value
//! (quotes, backslash escapes, `#` comments, `${NAME}`) into words that replace it in the
//! argument list, and option parsing goes on over them. Then every operand holding a `=` is an
//! assignment, and the first other operand is the program, found through PATH as env's
//! execvp finds it, with the PATH the line may have assigned.
//!
//! Everything that would start the program without the shim is an error here: emptying the
//! environment (`-i`, `-`, `--ignore-environment` and its abbreviations), unsetting or
//! assigning `LD_PRELOAD` or any `MEMLOCK_RUN_*` variable, and whatever this reading cannot
//! be sure of (`${NAME}` expansion, `\c`, unknown escapes, options env would reject, an
//! unterminated quote). Failing closed: a line memlock-run misreads must be refused, never
//! run unlocked.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// The program env would run, and the PATH it would search for it, if the line assigns one.
#[derive(Debug, PartialEq, Eq)]
pub struct EnvRuns {
    pub program: OsString,
    pub path: Option<OsString>,
    /// `-C DIR`: env changes to DIR before it looks for the program.
    pub chdir: Option<OsString>,
}

/// GNU env's long options: name, and whether it takes a value (`Required`), may take one
/// after `=` (`Optional`), or takes none.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Takes {
    Nothing,
    Required,
    Optional,
}

const LONG: &[(&str, Takes)] = &[
    ("ignore-environment", Takes::Nothing),
    ("null", Takes::Nothing),
    ("unset", Takes::Required),
    ("chdir", Takes::Required),
    ("split-string", Takes::Required),
    ("argv0", Takes::Required),
    ("block-signal", Takes::Optional),
    ("default-signal", Takes::Optional),
    ("ignore-signal", Takes::Optional),
    ("list-signal-handling", Takes::Nothing),
    ("debug", Takes::Nothing),
    ("help", Takes::Nothing),
    ("version", Takes::Nothing),
];

const EMPTIES: &str = "empties the environment of the program env starts";

/// Reads `#!/usr/bin/env ARGUMENT`: the program env runs (None: env runs nothing, it prints
/// its environment), or why memlock-run refuses to follow the line.
pub fn env_runs(argument: Option<&[u8]>) -> Result<Option<EnvRuns>, String> {
    let mut args: VecDeque<Vec<u8>> = argument.map(|a| a.to_vec()).into_iter().collect();
    let mut state = State::default();
    // Options, until the first operand or `--`.
    while let Some(arg) = args.pop_front() {
        if arg == b"--" {
            break;
        }
        if let Some(long) = arg.strip_prefix(b"--") {
            let (given, inline) = match long.iter().position(|&b| b == b'=') {
                Some(eq) => (&long[..eq], Some(long[eq + 1..].to_vec())),
                None => (long, None),
            };
            let (name, takes) = long_option(given)?;
            let value = match (takes, inline) {
                (Takes::Nothing, Some(_)) => {
                    return Err(format!(
                        "gives --{name} a value, which env rejects (so nothing would run)"
                    ))
                }
                (Takes::Required, None) => Some(args.pop_front().ok_or_else(|| {
                    format!("ends without the value --{name} needs, which env rejects")
                })?),
                (_, inline) => inline,
            };
            option(name, value, &mut args, &mut state)?;
        } else if arg == b"-" {
            return Err(EMPTIES.to_owned());
        } else if arg.len() > 1 && arg[0] == b'-' {
            // A cluster of short options; one that takes a value takes the rest of the word,
            // or the next word.
            let mut i = 1;
            while i < arg.len() {
                let flag = arg[i];
                let name = match flag {
                    b'i' => "ignore-environment",
                    b'0' => "null",
                    b'v' => "debug",
                    b'u' => "unset",
                    b'C' => "chdir",
                    b'S' => "split-string",
                    b'a' => "argv0",
                    _ => {
                        return Err(format!(
                            "has the option -{}, which env rejects (so nothing would run)",
                            shown(&[flag])
                        ))
                    }
                };
                if matches!(flag, b'u' | b'C' | b'S' | b'a') {
                    let rest = arg[i + 1..].to_vec();
                    let value = if rest.is_empty() {
                        args.pop_front().ok_or_else(|| {
                            format!("ends without the value -{} needs", shown(&[flag]))
                        })?
                    } else {
                        rest
                    };
                    option(name, Some(value), &mut args, &mut state)?;
                    break;
                }
                option(name, None, &mut args, &mut state)?;
                i += 1;
            }
        } else {
            args.push_front(arg);
            break;
        }
    }
    // Operands: assignments, then the program.
    let mut path = None;
    while let Some(arg) = args.pop_front() {
        let Some(eq) = arg.iter().position(|&b| b == b'=') else {
            if state.null {
                return Err(
                    "has -0 (--null) and a program, which env refuses (so nothing would run)"
                        .to_owned(),
                );
            }
            return Ok(Some(EnvRuns {
                program: OsString::from_vec(arg),
                path,
                chdir: state.chdir,
            }));
        };
        let name = &arg[..eq];
        ours(name, "sets")?;
        if name == b"PATH" {
            path = Some(OsString::from_vec(arg[eq + 1..].to_vec()));
        }
    }
    Ok(None)
}

/// getopt_long's reading of a long option: an exact name, or a prefix of exactly one.
fn long_option(given: &[u8]) -> Result<(&'static str, Takes), String> {
    if let Some(&(name, takes)) = LONG.iter().find(|(name, _)| name.as_bytes() == given) {
        return Ok((name, takes));
    }
    let matches: Vec<_> = LONG
        .iter()
        .filter(|(name, _)| !given.is_empty() && name.as_bytes().starts_with(given))
        .collect();
    match matches.as_slice() {
        [&(name, takes)] => Ok((name, takes)),
        [] => Err(format!(
            "has the option --{}, which env rejects (so nothing would run)",
            shown(given)
        )),
        _ => Err(format!(
            "has the option --{}, which is ambiguous to env (so nothing would run)",
            shown(given)
        )),
    }
}

/// What the options so far set, that matters once the program is known.
#[derive(Default)]
struct State {
    null: bool,
    chdir: Option<OsString>,
}

/// One option and its value: refuses what drops the shim, splices `-S` words in.
fn option(
    name: &str,
    value: Option<Vec<u8>>,
    args: &mut VecDeque<Vec<u8>>,
    state: &mut State,
) -> Result<(), String> {
    match name {
        "null" => {
            state.null = true;
            Ok(())
        }
        "chdir" => {
            state.chdir = value.map(OsString::from_vec);
            Ok(())
        }
        "ignore-environment" => Err(EMPTIES.to_owned()),
        "unset" => {
            let name = value.as_deref().unwrap_or_default();
            // unsetenv(3) refuses an empty name or one with '=': env stops there.
            if name.is_empty() || name.contains(&b'=') {
                return Err(format!(
                    "unsets '{}', which env cannot (so nothing would run)",
                    shown(name)
                ));
            }
            ours(name, "unsets")
        }
        "split-string" => {
            let words = split_string(value.as_deref().unwrap_or_default())?;
            for word in words.into_iter().rev() {
                args.push_front(word);
            }
            Ok(())
        }
        "help" | "version" => Err(format!("has --{name}, so env prints that and runs nothing")),
        _ => Ok(()),
    }
}

/// Names whose change takes the shim or its settings away from the program env starts.
fn ours(name: &[u8], verb: &str) -> Result<(), String> {
    if name == b"LD_PRELOAD" || name.starts_with(memlock_run_protocol::PREFIX.as_bytes()) {
        return Err(format!("{verb} {} for the program env starts", shown(name)));
    }
    Ok(())
}

/// GNU env's `-S` splitting (coreutils' split-string rules).
fn split_string(text: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut words = Vec::new();
    let mut word: Option<Vec<u8>> = None;
    let mut bytes = text.iter().copied().peekable();
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r');
    while let Some(b) = bytes.next() {
        match b {
            _ if is_space(b) => {
                if let Some(done) = word.take() {
                    words.push(done);
                }
            }
            b'#' if word.is_none() => break,
            b'\'' => {
                let current = word.get_or_insert_with(Vec::new);
                loop {
                    match bytes.next() {
                        None => return Err("has an unterminated ' quote after -S".to_owned()),
                        Some(b'\'') => break,
                        Some(b'\\') if matches!(bytes.peek(), Some(b'\\') | Some(b'\'')) => {
                            current.extend(bytes.next());
                        }
                        Some(other) => current.push(other),
                    }
                }
            }
            b'"' => {
                let current = word.get_or_insert_with(Vec::new);
                loop {
                    match bytes.next() {
                        None => return Err("has an unterminated \" quote after -S".to_owned()),
                        Some(b'"') => break,
                        Some(b'\\') => current.push(escape(bytes.next(), true)?),
                        Some(b'$') => return Err(EXPANSION.to_owned()),
                        Some(other) => current.push(other),
                    }
                }
            }
            b'\\' => {
                let next = bytes.next();
                match next {
                    Some(b'c') => break,
                    // Outside quotes `\_` separates words, like a space.
                    Some(b'_') => {
                        if let Some(done) = word.take() {
                            words.push(done);
                        }
                    }
                    _ => word.get_or_insert_with(Vec::new).push(escape(next, false)?),
                }
            }
            b'$' => return Err(EXPANSION.to_owned()),
            other => word.get_or_insert_with(Vec::new).push(other),
        }
    }
    words.extend(word);
    Ok(words)
}

const EXPANSION: &str = "uses ${NAME} expansion after -S, which memlock-run does not follow";

fn escape(next: Option<u8>, quoted: bool) -> Result<u8, String> {
    Ok(match next {
        Some(b'n') => b'\n',
        Some(b't') => b'\t',
        Some(b'r') => b'\r',
        Some(b'f') => b'\x0c',
        Some(b'v') => b'\x0b',
        Some(b'_') => b' ',
        Some(c @ (b'\\' | b'"' | b'\'' | b'$' | b'#')) => c,
        Some(b' ') if !quoted => b' ',
        Some(other) => {
            return Err(format!(
                "has the escape \\{} after -S, which env rejects",
                shown(&[other])
            ))
        }
        None => return Err("ends in a backslash after -S, which env rejects".to_owned()),
    })
}

/// Bytes for a message: printable ASCII as is, anything else escaped.
fn shown(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(line: &str) -> Option<(String, Option<String>)> {
        env_runs(Some(line.as_bytes()))
            .unwrap_or_else(|why| panic!("{line:?}: {why}"))
            .map(|r| {
                (
                    r.program.to_string_lossy().into_owned(),
                    r.path.map(|p| p.to_string_lossy().into_owned()),
                )
            })
    }

    #[test]
    fn the_program_env_runs() {
        assert_eq!(runs("python3"), Some(("python3".into(), None)));
        assert_eq!(runs("-S python3 -u"), Some(("python3".into(), None)));
        assert_eq!(runs("-Spython3 -u"), Some(("python3".into(), None)));
        assert_eq!(runs("--split-string=perl -w"), Some(("perl".into(), None)));
        assert_eq!(runs("-S LC_ALL=C perl -w"), Some(("perl".into(), None)));
        assert_eq!(runs("-S -u HOME -C /tmp perl"), Some(("perl".into(), None)));
        assert_eq!(
            runs("-S --unset=HOME --chdir /tmp -uLANG perl"),
            Some(("perl".into(), None))
        );
        assert_eq!(runs("-S 'my prog' x"), Some(("my prog".into(), None)));
        assert_eq!(runs("-S \"a\\_b\" x"), Some(("a b".into(), None)));
        assert_eq!(
            runs("-S LD\\_PRELOAD=x printenv"),
            Some(("LD".into(), None))
        );
        assert_eq!(
            runs("-S -v --ignore-sig=PIPE sh # a comment"),
            Some(("sh".into(), None))
        );
        assert_eq!(
            runs("-S PATH=/opt/bin:/bin sh"),
            Some(("sh".into(), Some("/opt/bin:/bin".into())))
        );
        // No -S: the whole argument is one word, as the kernel passes it.
        assert_eq!(runs("python3 -u"), Some(("python3 -u".into(), None)));
        assert_eq!(runs("-S -- -dash"), Some(("-dash".into(), None)));
        assert_eq!(env_runs(None), Ok(None));
        assert_eq!(runs("-S FOO=bar"), None);
    }

    #[test]
    fn lines_that_take_the_shim_away_are_refused() {
        for line in [
            "-S -i sh",
            "-S -vi sh",
            "-S - sh",
            "-i",
            "-S --ignore-environment sh",
            "-S --ignore-env sh",
            "-S --ig sh",
            "-S -u LD_PRELOAD sh",
            "-S -uLD_PRELOAD sh",
            "-S --unset MEMLOCK_RUN_FLAGS sh",
            "-S --unset=MEMLOCK_RUN_INHERIT sh",
            "-S --un=LD_PRELOAD prog",
            "-S --u LD_PRELOAD prog",
            "-S LD_PRELOAD=/x.so sh",
            "-SLD_PRELOAD= prog",
            "-S 'LD_PRELOAD=' prog",
            "--split-string=LD_PRELOAD= prog",
            "-S L\"D_PRELOAD\"= prog",
            "-S L'D_PRE'LOAD= prog",
            "-S MEMLOCK_RUN_FLAGS=future sh",
            "-S -S '-i' sh",
        ] {
            assert!(env_runs(Some(line.as_bytes())).is_err(), "{line}");
        }
    }

    #[test]
    fn lines_memlock_run_cannot_be_sure_of_are_refused() {
        for line in [
            "-S ${SHELL}",
            "-S \"${X}\" sh",
            "-S 'unterminated sh",
            "-S \\q sh",
            "-S sh \\c more",
            "--bogus sh",
            "-x sh",
            "--i sh",
            "-S --help",
        ] {
            let result = env_runs(Some(line.as_bytes()));
            // `\c` ends the line: "sh" runs; everything else is an error.
            if line.contains("\\c") {
                assert_eq!(result.unwrap().unwrap().program, "sh");
            } else {
                assert!(result.is_err(), "{line}: {result:?}");
            }
        }
    }
}

#[cfg(test)]
mod hostile {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_line_is_read_or_refused(line in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = env_runs(Some(&line));
        }
    }
}
