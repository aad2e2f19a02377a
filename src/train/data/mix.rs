//! The token-budget mixture over (context, op): the config's entries and their resolved
//! filters, each with its share of the training tokens.

use serde::{Deserialize, Serialize};

use super::DataError;
use crate::dataset::recipe::parse_op_range;

/// One mixture entry: rows whose template is in `contexts` (empty: any) and whose op lies in
/// `ops` get `share` of the training tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixEntry {
    #[serde(default)]
    pub contexts: Vec<String>,
    #[serde(default)]
    pub ops: Option<String>,
    pub share: f64,
}

/// A resolved mixture entry.
#[derive(Debug, Clone)]
pub(super) struct Filter {
    contexts: Vec<String>,
    ops: (u32, u32),
    pub(super) share: f64,
}

impl Filter {
    pub(super) fn accepts(&self, template: &str, op: u32) -> bool {
        (self.contexts.is_empty() || self.contexts.iter().any(|c| c == template))
            && (self.ops.0..=self.ops.1).contains(&op)
    }

    pub(super) fn describe(&self) -> String {
        let ctx = if self.contexts.is_empty() {
            "any".to_string()
        } else {
            self.contexts.join(",")
        };
        format!("contexts {ctx}, ops {}-{}", self.ops.0, self.ops.1)
    }
}

pub(super) fn resolve_mix(mix: &[MixEntry]) -> Result<Vec<Filter>, DataError> {
    if mix.is_empty() {
        return Ok(vec![Filter {
            contexts: Vec::new(),
            ops: (0, u32::MAX),
            share: 1.0,
        }]);
    }
    let total: f64 = mix.iter().map(|m| m.share).sum();
    let mut out = Vec::new();
    for (k, m) in mix.iter().enumerate() {
        if !(m.share > 0.0 && m.share.is_finite()) {
            return Err(DataError::Share {
                index: k,
                share: m.share,
            });
        }
        let ops = match &m.ops {
            None => (0, u32::MAX),
            Some(s) => parse_op_range(s).map_err(|problem| DataError::Ops {
                index: k,
                ops: s.clone(),
                problem,
            })?,
        };
        let contexts = m
            .contexts
            .iter()
            .filter(|c| c.as_str() != "*")
            .cloned()
            .collect();
        out.push(Filter {
            contexts,
            ops,
            share: m.share / total,
        });
    }
    Ok(out)
}
