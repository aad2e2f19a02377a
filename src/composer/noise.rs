//! The noise axis: how many distractor sentences a problem states (recipe key `distractors`).
//!
//! GSM-Infinite studies exactly this axis (noise and context length). The default is the
//! reference family's own distribution at each op ([`super::profile`]); a count or a range
//! gives a user an easier (or noisier) task at the same op.

use std::fmt;

use super::build::world_floor;
use crate::template::{Template, MAX_WIDTH};

/// How many distractor sentences each problem states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Noise {
    /// The reference generator's distribution at this op (`REFERENCE_STATS.md`).
    #[default]
    Reference,
    /// Exactly this many; 0 is `"none"`, only the needed sentences.
    Exact(u32),
    /// Uniformly many in `lo..=hi`, drawn per problem.
    Range(u32, u32),
}

/// Why a `distractors` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoiseError {
    #[error(
        "distractors `{0}` is not \"reference\", \"none\", a count N or a range \"A-B\" (A <= B)"
    )]
    Syntax(String),
    #[error(
        "distractors `{value}` cannot be held at op {op} on template `{template}`: its world \
         holds at most {max} distractors at that op"
    )]
    TooMany {
        value: String,
        op: u32,
        template: String,
        max: u32,
    },
}

impl Noise {
    /// Parse `"reference"`, `"none"`, `"N"` or `"A-B"`.
    pub fn parse(s: &str) -> Result<Noise, NoiseError> {
        let bad = || NoiseError::Syntax(s.to_string());
        let num = |x: &str| -> Result<u32, NoiseError> {
            let x = x.trim();
            if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            x.parse::<u32>().map_err(|_| bad())
        };
        match s.trim() {
            "reference" => Ok(Noise::Reference),
            "none" => Ok(Noise::Exact(0)),
            t => match t.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (num(a)?, num(b)?);
                    if a > b {
                        return Err(bad());
                    }
                    Ok(if a == b {
                        Noise::Exact(a)
                    } else {
                        Noise::Range(a, b)
                    })
                }
                None => Ok(Noise::Exact(num(t)?)),
            },
        }
    }

    /// The most distractors this setting can ask for (`None` for the reference distribution).
    pub fn max(self) -> Option<u32> {
        match self {
            Noise::Reference => None,
            Noise::Exact(n) | Noise::Range(_, n) => Some(n),
        }
    }

    /// Check that every problem of `t` at `op` can hold this many distractors, before anything
    /// is composed or written.
    pub fn check(self, t: &Template, op: u32) -> Result<(), NoiseError> {
        let Some(want) = self.max() else {
            return Ok(());
        };
        let max = max_distractors(t, op);
        if want > max {
            return Err(NoiseError::TooMany {
                value: self.to_string(),
                op,
                template: t.id.clone(),
                max,
            });
        }
        Ok(())
    }
}

/// Most distractors every problem of `t` at `op` can state: the composer keeps that many
/// locations free of needed quantities (each holds a full row of items), and the necessary DAG
/// needs `world_floor` locations of its own.
pub fn max_distractors(t: &Template, op: u32) -> u32 {
    let gl = t
        .location_groups
        .iter()
        .map(|g| g.names.len().min(MAX_WIDTH))
        .min()
        .unwrap_or(0);
    let gi = t
        .item_groups
        .iter()
        .map(|g| g.names.len().min(MAX_WIDTH))
        .min()
        .unwrap_or(0);
    (gl.saturating_sub(world_floor(op, gl)) * gi) as u32
}

impl fmt::Display for Noise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Noise::Reference => f.write_str("reference"),
            Noise::Exact(0) => f.write_str("none"),
            Noise::Exact(n) => write!(f, "{n}"),
            Noise::Range(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_prints_it_back() {
        for (s, n) in [
            ("reference", Noise::Reference),
            ("none", Noise::Exact(0)),
            ("0", Noise::Exact(0)),
            ("7", Noise::Exact(7)),
            ("2-5", Noise::Range(2, 5)),
            ("3-3", Noise::Exact(3)),
        ] {
            assert_eq!(Noise::parse(s).unwrap(), n, "{s}");
            assert_eq!(Noise::parse(&n.to_string()).unwrap(), n);
        }
        for bad in ["", "-1", "5-2", "many", "1-", "-", "1.5", "99999999999"] {
            assert!(Noise::parse(bad).is_err(), "{bad}");
        }
    }
}
