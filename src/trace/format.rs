//! Trace formats: how a dataset writes its gold traces, and so what a model trained on it
//! writes back. The format is data (a recipe key, recorded in the manifest), so mid-training on
//! another format is one recipe away; the verifier is told the format and reads what that
//! format can show.
//!
//! The prompt (everything through `<solution>`) is the same in every format, so RL pools and
//! evaluation prompts do not change with it; only the text between `<solution>` and
//! `</solution>` does.
//!
//! | format | between `<solution>` and `</solution>` | what the verifier checks |
//! |---|---|---|
//! | `full` | `Define NAME as L; ...; so L = ... .` per step (SPEC §3) | every step |
//! | `terse` | `NAME: ...; L = ... .` per step (no `Define`/`so` prose) | every step |
//! | `long` | `full`, each step followed by `We know L is NAME, and E = v, so L = v.` | every step and every check |
//! | `answer_only` | nothing | the answer only ([`Verdict::outcome_only`](super::Verdict::outcome_only)) |
//!
//! The enum lives in the verifier's layer (the renderer imports it from here) because the
//! verifier must never import the renderer.

use std::fmt;
use std::str::FromStr;

/// A dataset's trace format (recipe key `trace_format`; `full` when absent).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TraceFormat {
    /// The reference's trace (SPEC §3): `Define NAME as L; ...; so L = ... .` per step.
    #[default]
    Full,
    /// The arithmetic without the prose: `NAME: ...; L = ... .` per step, the node's letter
    /// being the one its last assignment gives a value; reverse mode `NAME: x.` for the
    /// unknown and `We know P = N, so we have E = N; ...; x = v.` for the equation.
    Terse,
    /// No trace at all: `<solution> </solution> <answer> N </answer>`. Only the outcome can
    /// be scored.
    AnswerOnly,
    /// A longer chain of thought: the full trace with each step re-stated and checked
    /// (`We know L is NAME, and E = v, so L = v.`); a check that contradicts its step is an
    /// issue.
    Long,
}

/// A `trace_format` value that names no format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown trace format `{value}` (known: full, terse, answer_only, long)")]
pub struct UnknownTraceFormat {
    pub value: String,
}

impl TraceFormat {
    /// Every format, in the order documentation lists them.
    pub const ALL: [TraceFormat; 4] = [
        TraceFormat::Full,
        TraceFormat::Terse,
        TraceFormat::AnswerOnly,
        TraceFormat::Long,
    ];

    /// The recipe's spelling: `full`, `terse`, `answer_only`, `long`.
    pub fn as_str(self) -> &'static str {
        match self {
            TraceFormat::Full => "full",
            TraceFormat::Terse => "terse",
            TraceFormat::AnswerOnly => "answer_only",
            TraceFormat::Long => "long",
        }
    }

    /// Whether this is the default format (for `skip_serializing_if`: artifacts of the default
    /// format keep the bytes and hashes they had before formats existed).
    pub fn is_full(&self) -> bool {
        *self == TraceFormat::Full
    }

    /// Whether a trace in this format shows a process the verifier can check (all but
    /// `answer_only`).
    pub fn has_process(self) -> bool {
        self != TraceFormat::AnswerOnly
    }
}

impl fmt::Display for TraceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TraceFormat {
    type Err = UnknownTraceFormat;

    fn from_str(s: &str) -> Result<TraceFormat, UnknownTraceFormat> {
        TraceFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownTraceFormat {
                value: s.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_named() {
        for f in TraceFormat::ALL {
            assert_eq!(f.as_str().parse::<TraceFormat>(), Ok(f));
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(json, format!("\"{f}\""));
            assert_eq!(serde_json::from_str::<TraceFormat>(&json).unwrap(), f);
        }
        let e = "answer-only".parse::<TraceFormat>().unwrap_err();
        assert!(e.to_string().contains("`answer-only`"), "{e}");
        assert_eq!(TraceFormat::default(), TraceFormat::Full);
    }
}
