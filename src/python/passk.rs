//! pass@k from Python: the unbiased estimator for one problem, and `summarize`, which folds a
//! list of verdicts into the same summary `dagmath audit` writes to summary.json (pass@k per
//! split, op, template and mode, the failure taxonomy, mean rewards).

use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::error::{short_repr, InputError};
use super::options::{check_alpha, rule_name};
use super::verdict::PyVerdict;
use crate::eval::audit::{flatten, AuditConfig, Tally};
use crate::graph::KeyTable;

/// pass@k of one problem with `n` samples of which `c` are correct (Chen et al. 2021).
#[pyfunction]
pub fn pass_at_k(n: i64, c: i64, k: i64) -> PyResult<f64> {
    let bad = |problem| InputError::Value {
        arg: "pass_at_k",
        value: format!("n={n}, c={c}, k={k}"),
        problem,
    };
    let (Ok(n), Ok(c), Ok(k)) = (u32::try_from(n), u32::try_from(c), u32::try_from(k)) else {
        return Err(bad("needs counts that are not negative").into());
    };
    crate::eval::passk::pass_at_k(n, c, k)
        .ok_or_else(|| bad("needs 0 <= c <= n and 1 <= k <= n").into())
}

/// The keys of one problem: an id string, or a dict with `id` and optionally `split`, `op`,
/// `template` (a dataset row has them all).
struct Keys {
    id: String,
    split: String,
    op: u32,
    template: String,
}

fn keys(obj: &Bound<'_, PyAny>, i: usize) -> Result<Keys, InputError> {
    let bad = |problem| InputError::Value {
        arg: "problems",
        value: format!("[{i}] {}", short_repr(obj)),
        problem,
    };
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Keys {
            id: s.to_string(),
            split: String::new(),
            op: 0,
            template: String::new(),
        });
    }
    let d = obj
        .cast::<PyDict>()
        .map_err(|_| bad("is neither an id (str) nor a dict with an `id`"))?;
    let get = |k: &str| d.get_item(k).ok().flatten();
    let text = |k: &str| -> Result<String, InputError> {
        match get(k) {
            None => Ok(String::new()),
            Some(v) => v
                .extract()
                .map_err(|_| bad("has a `split`/`template` that is not a str")),
        }
    };
    let id = get("id").ok_or_else(|| bad("has no `id`"))?;
    Ok(Keys {
        id: id
            .extract()
            .map_err(|_| bad("has an `id` that is not a str"))?,
        split: text("split")?,
        op: match get("op") {
            None => 0,
            Some(v) => v
                .extract()
                .map_err(|_| bad("has an `op` that is not a count"))?,
        },
        template: text("template")?,
    })
}

/// The summary of `verdicts`, each of the problem at the same index of `problems`.
#[pyfunction]
#[pyo3(signature = (verdicts, problems, alpha = 0.2, ks = None))]
pub fn summarize<'py>(
    py: Python<'py>,
    verdicts: Vec<PyRef<'py, PyVerdict>>,
    problems: Vec<Bound<'py, PyAny>>,
    alpha: f64,
    ks: Option<Vec<u32>>,
) -> PyResult<Bound<'py, PyAny>> {
    let alpha = check_alpha(alpha)?;
    if verdicts.len() != problems.len() {
        return Err(InputError::Lengths {
            what: "verdicts",
            n: verdicts.len(),
            other: "problems",
            m: problems.len(),
        }
        .into());
    }
    if let Some(k) = ks.as_ref().and_then(|ks| ks.iter().find(|&&k| k == 0)) {
        return Err(InputError::Value {
            arg: "ks",
            value: k.to_string(),
            problem: "is not a k (every k is at least 1)",
        }
        .into());
    }
    let Some(first) = verdicts.first() else {
        return Err(InputError::Value {
            arg: "verdicts",
            value: "[]".into(),
            problem: "is empty: nothing to summarize",
        }
        .into());
    };
    let (rule, format) = (first.verdict.rule, first.format);
    let mut table = KeyTable::default();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut samples: HashMap<usize, u32> = HashMap::new();
    let mut tally = Tally::default();
    for (i, (v, p)) in verdicts.iter().zip(&problems).enumerate() {
        if v.verdict.rule != rule {
            return Err(InputError::Value {
                arg: "verdicts",
                value: format!("[{i}] rule '{}'", rule_name(v.verdict.rule)),
                problem: "differs from the first verdict's rule",
            }
            .into());
        }
        if v.format != format {
            return Err(InputError::Value {
                arg: "verdicts",
                value: format!("[{i}] format '{}'", v.format),
                problem: "differs from the first verdict's trace format",
            }
            .into());
        }
        let k = keys(p, i)?;
        let g = match index.get(&k.id) {
            Some(&g) => g,
            None => {
                table.push(&k.id, &k.split, k.op, &k.template, v.gold.mode);
                index.insert(k.id.clone(), table.len() - 1);
                table.len() - 1
            }
        };
        let s = samples.entry(g).or_insert(0);
        tally.add(&flatten(g, *s, &v.verdict, alpha));
        *s += 1;
    }
    let summary = tally.summary(
        &table,
        AuditConfig {
            rule,
            alpha,
            format,
        },
        ks.as_deref(),
    );
    let json = serde_json::to_string(&summary)
        .map_err(|e| InputError::Library(format!("summary: {e}")))?;
    py.import("json")?.call_method1("loads", (json,))
}
