//! Sizes on the command line: `4096`, `512K`, `8M`, `1G`, `1T`, `64MiB`; and limits, which
//! may also be `unlimited` or `infinity`. Powers of 1024, as in `ulimit` and systemd. And the
//! values they become: [`Limit`], a resource limit's [`Rlimit`] pair.

use std::fmt;

use memlock_run_protocol::SizeText;

/// An RLIMIT value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Limit {
    Bytes(u64),
    Unlimited,
}

impl Limit {
    pub fn from_rlim(value: libc::rlim_t) -> Limit {
        if value == libc::RLIM_INFINITY {
            Limit::Unlimited
        } else {
            Limit::Bytes(value)
        }
    }

    pub fn to_rlim(self) -> libc::rlim_t {
        match self {
            Limit::Bytes(bytes) => bytes,
            Limit::Unlimited => libc::RLIM_INFINITY,
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Bytes(bytes) => f.write_str(SizeText::new(*bytes).as_str()),
            Limit::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// A resource limit, soft and hard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rlimit {
    pub soft: Limit,
    pub hard: Limit,
}

impl Rlimit {
    pub const UNLIMITED: Rlimit = Rlimit {
        soft: Limit::Unlimited,
        hard: Limit::Unlimited,
    };

    /// Both at `bytes`.
    pub const fn both(bytes: u64) -> Rlimit {
        Rlimit {
            soft: Limit::Bytes(bytes),
            hard: Limit::Bytes(bytes),
        }
    }
}

impl fmt::Display for Rlimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "soft {}, hard {}", self.soft, self.hard)
    }
}

/// A byte count as the shim prints it.
pub fn show(bytes: u64) -> String {
    SizeText::new(bytes).as_str().to_owned()
}

const HOW: &str =
    "use a number of bytes with an optional suffix K, M, G or T (powers of 1024), such as 8M";

pub fn parse_size(text: &str) -> Result<u64, String> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err(format!("'{text}' is not a size: {HOW}"));
    }
    let shift = match suffix {
        "" | "B" => 0,
        "K" | "k" | "KiB" => 10,
        "M" | "m" | "MiB" => 20,
        "G" | "g" | "GiB" => 30,
        "T" | "t" | "TiB" => 40,
        _ => {
            return Err(format!(
                "'{text}' is not a size: unknown suffix '{suffix}'; {HOW}"
            ))
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| format!("'{text}' is too large a size"))
}

pub fn parse_limit(text: &str) -> Result<Limit, String> {
    match text {
        "unlimited" | "infinity" => Ok(Limit::Unlimited),
        _ => parse_size(text)
            .map(Limit::Bytes)
            .map_err(|err| format!("{err}, or 'unlimited'")),
    }
}

#[cfg(test)]
mod hostile {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_is_a_size_or_an_error(text in ".{0,40}") {
            let _ = parse_size(&text);
            let _ = parse_limit(&text);
        }

        #[test]
        fn sizes_read_as_written(n in 0u64..(1 << 44), unit in 0usize..5) {
            let (suffix, shift) = [("", 0), ("K", 10), ("M", 20), ("G", 30), ("T", 40)][unit];
            let text = format!("{n}{suffix}");
            prop_assert_eq!(parse_size(&text).ok(), n.checked_mul(1 << shift));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (text, bytes) in [
            ("4096", 4096),
            ("0", 0),
            ("512K", 512 << 10),
            ("512k", 512 << 10),
            ("8M", 8 << 20),
            ("8MiB", 8 << 20),
            ("1G", 1 << 30),
            ("1GiB", 1 << 30),
            ("1T", 1 << 40),
            ("64KiB", 64 << 10),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn bad_sizes_name_the_value() {
        for text in [
            "",
            "M",
            "8 M",
            "8MB",
            "-1",
            "1.5M",
            "8X",
            "99999999999T",
            "unlimited",
        ] {
            let err = parse_size(text).unwrap_err();
            assert!(err.contains(&format!("'{text}'")), "{err}");
        }
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit("unlimited"), Ok(Limit::Unlimited));
        assert_eq!(parse_limit("infinity"), Ok(Limit::Unlimited));
        assert_eq!(parse_limit("64M"), Ok(Limit::Bytes(64 << 20)));
        assert!(parse_limit("lots").unwrap_err().contains("'lots'"));
        assert!(Limit::Bytes(u64::MAX - 1) < Limit::Unlimited);
        assert_eq!(Limit::from_rlim(libc::RLIM_INFINITY), Limit::Unlimited);
        assert_eq!(Limit::Bytes(8 << 20).to_string(), "8 MiB");
    }
}
