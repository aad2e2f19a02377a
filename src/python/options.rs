//! The string and number options of the Python functions (`rule`, `kind`, `alpha`, `format`,
//! `threads`),
//! checked before any work starts; each refusal names the option and the value.

use super::error::InputError;
use crate::trace::{Reward, Rule, TraceFormat};

/// `rule="strict"` or `"interplay"`.
pub fn parse_rule(s: &str) -> Result<Rule, InputError> {
    match s {
        "strict" => Ok(Rule::Strict),
        "interplay" => Ok(Rule::Interplay),
        _ => Err(InputError::Choice {
            arg: "rule",
            value: format!("'{s}'"),
            known: "'strict', 'interplay'",
        }),
    }
}

/// `format="full"`, `"terse"`, `"long"` or `"answer_only"`: the trace format the completions
/// are written in (a dataset's `manifest.json` records its own).
pub fn parse_format(s: &str) -> Result<TraceFormat, InputError> {
    s.parse().map_err(|_| InputError::Choice {
        arg: "format",
        value: format!("'{s}'"),
        known: "'full', 'terse', 'long', 'answer_only'",
    })
}

pub fn rule_name(r: Rule) -> &'static str {
    match r {
        Rule::Strict => "strict",
        Rule::Interplay => "interplay",
    }
}

/// `alpha` must lie in [0, 1] (as `dagmath audit --alpha`).
pub fn check_alpha(alpha: f64) -> Result<f64, InputError> {
    if (0.0..=1.0).contains(&alpha) {
        Ok(alpha)
    } else {
        Err(InputError::Value {
            arg: "alpha",
            value: alpha.to_string(),
            problem: "must lie in [0, 1]",
        })
    }
}

/// `kind=` of `rewards`: which scalar reward, with its outcome weight `alpha`.
pub fn parse_reward(kind: &str, alpha: f64) -> Result<Reward, InputError> {
    let alpha = check_alpha(alpha)?;
    Ok(match kind {
        "outcome" => Reward::Outcome,
        "process" => Reward::Process,
        "mixed" => Reward::Mixed { alpha },
        "strict" => Reward::Strict,
        "penalty" => Reward::Penalty { alpha },
        _ => {
            return Err(InputError::Choice {
                arg: "kind",
                value: format!("'{kind}'"),
                known: "'outcome', 'process', 'mixed', 'strict', 'penalty'",
            })
        }
    })
}

/// `threads=None` (every core) or a count in 1..=`limits::max_threads()`.
pub fn check_threads(threads: Option<i64>) -> Result<usize, InputError> {
    let max = crate::limits::max_threads();
    match threads {
        None => Ok(0),
        Some(n) if n >= 1 && n as usize <= max => Ok(n as usize),
        Some(n) => Err(InputError::Value {
            arg: "threads",
            value: n.to_string(),
            problem: "must be at least 1 and at most 4 per core (None uses every core)",
        }),
    }
}

/// A rayon pool of `threads` workers (0: every core).
pub fn pool(threads: usize) -> Result<rayon::ThreadPool, InputError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| InputError::Library(format!("cannot start {threads} threads: {e}")))
}
