//! A finding of `--check`: one line with a verdict word, and what to do about it.

use std::fmt;

/// How a finding bears on the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Worth knowing, nothing to do.
    Ok,
    /// The run works, but something is worth knowing.
    Warn,
    /// The run would be refused, or the lock would fail.
    Fail,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        })
    }
}

/// One line of the report, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub verdict: Verdict,
    pub topic: &'static str,
    pub text: String,
    pub remedy: Option<String>,
}

impl Finding {
    /// A warning or a failure, with its remedy.
    pub fn problem(
        verdict: Verdict,
        topic: &'static str,
        text: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Finding {
        Finding {
            verdict,
            topic,
            text: text.into(),
            remedy: Some(remedy.into()),
        }
    }

    /// A refusal of the plan, as `--check` shows it: FAIL, with the run's message as remedy.
    pub fn refused(refusal: &crate::plan::Refusal) -> Finding {
        Finding::problem(
            Verdict::Fail,
            refusal.topic,
            refusal.summary.clone(),
            refusal.message.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_order_by_severity() {
        assert!(Verdict::Fail > Verdict::Warn && Verdict::Warn > Verdict::Ok);
        assert_eq!(format!("{:<4}|", Verdict::Ok), "ok  |");
    }
}
