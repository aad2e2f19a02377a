//! A split's mixture: `ops` or `op_weights`, `templates`, `modes` and `distractors` of one
//! component (the split itself, or one `[[splits.mix]]` entry falling back to the split's
//! keys) resolved into normalised weights, every value checked against the templates before
//! anything is written. Errors name the recipe key they came from.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Component;
use crate::composer::{Mode, Noise, MAX_OP};
use crate::template::TemplateSet;

/// A component's key that is unusable, and why (the caller adds the file).
#[derive(Debug, thiserror::Error)]
#[error("{key}: {problem}")]
pub(super) struct ComponentError {
    pub(super) key: String,
    pub(super) problem: String,
}

fn bad(key: impl Into<String>, problem: impl Into<String>) -> ComponentError {
    ComponentError {
        key: key.into(),
        problem: problem.into(),
    }
}

/// An op range that is not one: its text, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpRangeError {
    #[error("`{text}` is not an op or an op range like `2-10`")]
    NotARange { text: String },
    #[error("op range `{text}` must lie within 1-{MAX_OP} with low <= high")]
    OutOfBounds { text: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawComponent {
    pub(super) share: Option<f64>,
    pub(super) ops: Option<OpsValue>,
    pub(super) op_weights: Option<BTreeMap<String, f64>>,
    pub(super) templates: Option<BTreeMap<String, f64>>,
    pub(super) modes: Option<BTreeMap<String, f64>>,
    // A string ("reference", "none", "A-B") or a count.
    pub(super) distractors: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OpsValue {
    One(u32),
    Range(String),
}

/// Parse "7" or "2-10" into an inclusive range.
pub fn parse_op_range(s: &str) -> Result<(u32, u32), OpRangeError> {
    let s = s.trim();
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (s, s),
    };
    let not_a_range = || OpRangeError::NotARange {
        text: s.to_string(),
    };
    let lo: u32 = a.parse().map_err(|_| not_a_range())?;
    let hi: u32 = b.parse().map_err(|_| not_a_range())?;
    if lo == 0 || hi > MAX_OP || lo > hi {
        return Err(OpRangeError::OutOfBounds {
            text: s.to_string(),
        });
    }
    Ok((lo, hi))
}

/// Normalise a weight map, rejecting negative, non-finite or all-zero weights.
fn normalise<K: Ord + Clone>(
    m: &BTreeMap<K, f64>,
    key: &str,
) -> Result<BTreeMap<K, f64>, ComponentError> {
    if let Some((_, w)) = m.iter().find(|(_, w)| !w.is_finite() || **w < 0.0) {
        return Err(bad(key, format!("weight {w} must be a finite number >= 0")));
    }
    let total: f64 = m.values().sum();
    if !total.is_finite() {
        return Err(bad(
            key,
            format!("weights sum to {total}: scale them down (only their ratios matter)"),
        ));
    }
    if total <= 0.0 {
        return Err(bad(key, "weights must not all be zero"));
    }
    Ok(m.iter()
        .filter(|(_, w)| **w > 0.0)
        .map(|(k, w)| (k.clone(), w / total))
        .collect())
}

/// `splits[0]` of `splits[0].mix[1]`: where a split-level key lives.
fn parent_key(key: &str) -> &str {
    key.find(".mix[").map_or(key, |i| &key[..i])
}

/// Resolve one mixture component; fields missing in a `[[splits.mix]]` entry fall back to the
/// split's top-level `templates` / `modes`, then to zoo and forward.
pub(super) fn resolve_component(
    c: &RawComponent,
    parent: Option<&RawComponent>,
    key: &str,
    templates: &TemplateSet,
) -> Result<Component, ComponentError> {
    let share = match (parent, c.share) {
        (None, _) => 1.0,
        (Some(_), Some(s)) if s.is_finite() && s > 0.0 => s,
        (Some(_), s) => {
            return Err(bad(
                format!("{key}.share"),
                format!("a mix component needs a share > 0 (got {s:?})"),
            ))
        }
    };
    let mut ops = BTreeMap::new();
    match (&c.ops, &c.op_weights) {
        (Some(_), Some(_)) => {
            return Err(bad(
                format!("{key}.ops"),
                "give `ops` or `op_weights`, not both",
            ))
        }
        (None, None) => {
            return Err(bad(
                format!("{key}.ops"),
                "missing: give `ops` or `op_weights`",
            ))
        }
        (Some(OpsValue::One(op)), None) => {
            let (lo, hi) = parse_op_range(&op.to_string())
                .map_err(|p| bad(format!("{key}.ops"), p.to_string()))?;
            ops.insert(lo, 1.0);
            debug_assert_eq!(lo, hi);
        }
        (Some(OpsValue::Range(r)), None) => {
            let (lo, hi) =
                parse_op_range(r).map_err(|p| bad(format!("{key}.ops"), p.to_string()))?;
            for op in lo..=hi {
                ops.insert(op, 1.0);
            }
        }
        (None, Some(tiers)) => {
            for (range, &w) in tiers {
                let k = format!("{key}.op_weights.\"{range}\"");
                let (lo, hi) = parse_op_range(range).map_err(|p| bad(k.clone(), p.to_string()))?;
                if !w.is_finite() || w < 0.0 {
                    return Err(bad(k, format!("weight {w} must be a finite number >= 0")));
                }
                for op in lo..=hi {
                    if ops.contains_key(&op) {
                        return Err(bad(k, format!("op {op} appears in two op_weights ranges")));
                    }
                    ops.insert(op, w / (hi - lo + 1) as f64);
                }
            }
        }
    }
    let ops = normalise(&ops, &format!("{key}.op_weights"))?;

    let default_t = BTreeMap::from([("zoo".to_string(), 1.0)]);
    let t = c
        .templates
        .as_ref()
        .or(parent.and_then(|p| p.templates.as_ref()))
        .unwrap_or(&default_t);
    for id in t.keys() {
        if templates.get(id).is_none() {
            let known: Vec<&str> = templates.ids().collect();
            return Err(bad(
                format!("{key}.templates"),
                format!("unknown template `{id}` (known: {})", known.join(", ")),
            ));
        }
    }
    let templates_n = normalise(t, &format!("{key}.templates"))?;

    let default_m = BTreeMap::from([("forward".to_string(), 1.0)]);
    let m = c
        .modes
        .as_ref()
        .or(parent.and_then(|p| p.modes.as_ref()))
        .unwrap_or(&default_m);
    let mut modes = BTreeMap::new();
    for (name, &w) in m {
        let mode = Mode::parse(name).ok_or_else(|| {
            bad(
                format!("{key}.modes"),
                format!("unknown mode `{name}` (known: forward, reverse)"),
            )
        })?;
        modes.insert(mode, w);
    }
    let modes = normalise(&modes, &format!("{key}.modes"))?;

    let (dkey, raw) = match (&c.distractors, parent.and_then(|p| p.distractors.as_ref())) {
        (Some(v), _) => (format!("{key}.distractors"), Some(v)),
        (None, Some(v)) => (format!("{}.distractors", parent_key(key)), Some(v)),
        (None, None) => (String::new(), None),
    };
    let distractors = match raw {
        None => Noise::Reference,
        Some(v) => {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(n) if *n >= 0 => n.to_string(),
                other => other.to_string(),
            };
            let noise = Noise::parse(&text).map_err(|e| bad(dkey.clone(), e.to_string()))?;
            // Every (template, op) of the component must hold it, before anything is written.
            for id in templates_n.keys() {
                let t = templates.get(id).expect("checked above");
                for &op in ops.keys() {
                    noise
                        .check(t, op)
                        .map_err(|e| bad(dkey.clone(), e.to_string()))?;
                }
            }
            noise
        }
    };
    Ok(Component {
        share,
        ops,
        templates: templates_n,
        modes,
        distractors,
    })
}
