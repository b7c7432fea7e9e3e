//! binfmt_misc: the rules by which the kernel hands a file to an interpreter of the
//! administrator's choosing (a Java `.jar`, a Windows `.exe`, another machine's ELF through
//! qemu-user), read from /proc/sys/fs/binfmt_misc the way the kernel applies them.
//!
//! The kernel tries binfmt_misc before its ELF and `#!` loaders (the handler is inserted at the
//! head of the list), so a rule decides what runs whatever the file looks like: the rule's
//! interpreter is executed, with the file's path as an argument, and that interpreter is the
//! image the lock must reach. A file matches a rule by the extension of the path execve is given
//! (after the last `.` of the whole path, as the kernel compares it) or by magic bytes at an
//! offset of its first 256 (under a mask). Rules are kept newest first and the first match wins;
//! /proc shows no order, so where two enabled rules with different interpreters match, the
//! judgement cannot know which one the kernel takes and refuses.
//!
//! Not modelled: a binfmt_misc instance of another user namespace (Linux 6.7) that a task
//! mounted for itself is read only where it is mounted in the task's own view (the gate reads
//! through the task's root).

use std::fs;
use std::path::{Path, PathBuf};

/// The kernel reads this much of a file for binfmt_misc's magic (BINPRM_BUF_SIZE).
pub const HEAD: usize = 256;

/// One enabled rule of /proc/sys/fs/binfmt_misc.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub interpreter: PathBuf,
    /// The rule's flags: `P` (argv[0] kept), `O` (the file given open), `C` (credentials from
    /// the file, set-ID bits honoured), `F` (the interpreter opened when the rule was made).
    pub flags: String,
    matcher: Matcher,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Matcher {
    Extension(Vec<u8>),
    Magic {
        offset: usize,
        magic: Vec<u8>,
        mask: Option<Vec<u8>>,
    },
}

impl Rule {
    /// A rule file's text (`enabled`, `interpreter PATH`, `flags: PF`, then `extension .EXT` or
    /// `offset N`, `magic HEX`, `mask HEX`); None for a disabled rule or one it cannot read.
    pub fn parse(name: &str, text: &str) -> Option<Rule> {
        let mut lines = text.lines();
        if lines.next()? != "enabled" {
            return None;
        }
        let (mut interpreter, mut flags) = (None, String::new());
        let (mut extension, mut offset, mut magic, mut mask) = (None, 0, None, None);
        for line in lines {
            let (key, value) = line.split_once([' ', ':']).unwrap_or((line, ""));
            let value = value.trim_start_matches(':').trim();
            match key {
                "interpreter" => interpreter = Some(PathBuf::from(value)),
                "flags" => flags = value.to_owned(),
                "extension" => extension = Some(value.strip_prefix('.')?.as_bytes().to_vec()),
                "offset" => offset = value.parse().ok()?,
                "magic" => magic = Some(hex(value)?),
                "mask" => mask = Some(hex(value)?),
                _ => {}
            }
        }
        let matcher = match (extension, magic) {
            (Some(extension), None) => Matcher::Extension(extension),
            (None, Some(magic)) => Matcher::Magic {
                offset,
                magic,
                mask,
            },
            _ => return None,
        };
        Some(Rule {
            name: name.to_owned(),
            interpreter: interpreter?,
            flags,
            matcher,
        })
    }

    /// Whether the kernel would hand the file executed as `path`, whose first bytes are
    /// `head`, to this rule.
    pub fn matches(&self, path: &[u8], head: &[u8]) -> bool {
        match &self.matcher {
            Matcher::Extension(extension) => path
                .iter()
                .rposition(|&b| b == b'.')
                .and_then(|dot| path.get(dot + 1..))
                .is_some_and(|ext| ext == extension.as_slice()),
            Matcher::Magic {
                offset,
                magic,
                mask,
            } => {
                let Some(bytes) = head.get(*offset..offset + magic.len()) else {
                    return false;
                };
                bytes.iter().zip(magic).enumerate().all(|(i, (&b, &m))| {
                    let mask = mask.as_ref().and_then(|mask| mask.get(i)).copied();
                    (b ^ m) & mask.unwrap_or(0xff) == 0
                })
            }
        }
    }
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The enabled rules under `dir` (a binfmt_misc mount), none where it is not mounted or is
/// disabled as a whole.
pub fn rules(dir: &Path) -> Vec<Rule> {
    if fs::read_to_string(dir.join("status")).map_or(true, |s| s.trim() != "enabled") {
        return Vec::new();
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            if name == "register" || name == "status" {
                return None;
            }
            Rule::parse(&name, &fs::read_to_string(entry.path()).ok()?)
        })
        .collect()
}

/// The rule the kernel would hand `path` (its first bytes `head`) to, from `rules`; an error
/// naming them when two with different interpreters match.
pub fn rule_for<'a>(
    rules: &'a [Rule],
    path: &[u8],
    head: &[u8],
) -> Result<Option<&'a Rule>, String> {
    let mut matching = rules.iter().filter(|rule| rule.matches(path, head));
    let Some(first) = matching.next() else {
        return Ok(None);
    };
    if let Some(other) = matching.find(|rule| rule.interpreter != first.interpreter) {
        return Err(format!(
            "binfmt_misc rules {} ({}) and {} ({}) both match it, and which one the kernel takes depends on \
             the order they were made in, which /proc does not show",
            first.name,
            first.interpreter.display(),
            other.name,
            other.interpreter.display()
        ));
    }
    Ok(Some(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU: &str =
        "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\noffset 0\n\
                        magic 7f454c460201010000000000000000000200b700\n\
                        mask ffffffffffffff00fffffffffffffffffeffffff\n";

    #[test]
    fn rules_parse_as_proc_shows_them() {
        let jar = Rule::parse(
            "jar",
            "enabled\ninterpreter /usr/bin/jexec\nflags: \nextension .jar\n",
        )
        .unwrap();
        assert_eq!(jar.interpreter, Path::new("/usr/bin/jexec"));
        assert_eq!(jar.flags, "");
        assert_eq!(jar.matcher, Matcher::Extension(b"jar".to_vec()));
        let qemu = Rule::parse("qemu-aarch64", QEMU).unwrap();
        assert_eq!(qemu.flags, "POCF");
        let Matcher::Magic {
            offset,
            magic,
            mask,
        } = &qemu.matcher
        else {
            panic!("{qemu:?}");
        };
        assert_eq!(
            (*offset, magic.len(), mask.as_ref().map(Vec::len)),
            (0, 20, Some(20))
        );
        assert_eq!(
            Rule::parse(
                "off",
                "disabled\ninterpreter /bin/x\nflags: \nextension .x\n"
            ),
            None
        );
        assert_eq!(
            Rule::parse("odd", "enabled\ninterpreter /bin/x\nflags: \nmagic abc\n"),
            None
        );
        assert_eq!(
            Rule::parse("none", "enabled\ninterpreter /bin/x\nflags: \n"),
            None
        );
    }

    #[test]
    fn a_file_matches_by_the_paths_extension_or_its_masked_magic() {
        let jar = Rule::parse(
            "jar",
            "enabled\ninterpreter /usr/bin/jexec\nflags: \nextension .jar\n",
        )
        .unwrap();
        assert!(jar.matches(b"/opt/app.jar", b""));
        assert!(jar.matches(b"app.jar", b"\x7fELF"));
        assert!(!jar.matches(b"/opt/app.jar.bak", b""));
        assert!(!jar.matches(b"/opt/jar", b""));
        // The kernel looks for the last dot of the whole path, directories included.
        assert!(!jar.matches(b"/opt/x.jar/app", b""));
        let qemu = Rule::parse("qemu-aarch64", QEMU).unwrap();
        let mut aarch64 = *b"\x7fELF\x02\x01\x01\x03\0\0\0\0\0\0\0\0\x02\0\xb7\0";
        assert!(qemu.matches(b"/bin/x", &aarch64), "OS/ABI byte masked out");
        aarch64[16] = 3; // ET_DYN: the mask lets bit 0 of e_type vary
        assert!(qemu.matches(b"/bin/x", &aarch64));
        aarch64[18] = 0x3e; // x86-64
        assert!(!qemu.matches(b"/bin/x", &aarch64));
        assert!(
            !qemu.matches(b"/bin/x", b"\x7fELF"),
            "shorter than the magic"
        );
    }

    #[test]
    fn two_rules_with_different_interpreters_are_ambiguous() {
        let a = Rule::parse("a", "enabled\ninterpreter /bin/a\nflags: \nextension .x\n").unwrap();
        let b = Rule::parse("b", "enabled\ninterpreter /bin/b\nflags: \nextension .x\n").unwrap();
        let a2 = Rule::parse(
            "a2",
            "enabled\ninterpreter /bin/a\nflags: P\nextension .x\n",
        )
        .unwrap();
        assert_eq!(
            rule_for(std::slice::from_ref(&a), b"f.x", b"").unwrap(),
            Some(&a)
        );
        assert_eq!(
            rule_for(std::slice::from_ref(&a), b"f.y", b"").unwrap(),
            None
        );
        assert_eq!(rule_for(&[a.clone(), a2], b"f.x", b"").unwrap(), Some(&a));
        assert!(rule_for(&[a, b], b"f.x", b"")
            .unwrap_err()
            .contains("rules a (/bin/a) and b (/bin/b)"));
        assert!(rules(Path::new("/nonexistent")).is_empty());
    }
}
