//! `verify` (one completion, the full verdict) and `rewards` (a batch, one float each): the
//! batch converts its inputs under the GIL, then releases it and verifies on rayon's workers
//! with one reusable [`Verifier`] per worker, as `dagmath audit` does.
//!
//! Options are keyword arguments parsed by `options`; `format` names the trace format the
//! completions are written in (`full` by default, as `dagmath audit` reads a dataset's own
//! from its manifest); `answer_only` verdicts score the outcome only and say so.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use rayon::prelude::*;

use super::arrow::ArrowGolds;
use super::error::{short_repr, InputError};
use super::gold::extract;
use super::options::{check_threads, parse_format, parse_reward, parse_rule, pool};
use super::verdict::PyVerdict;
use crate::dataset::gold_graph::GraphError;
use crate::graph::GoldGraph;
use crate::trace::{Reward, Rule, TraceFormat, Verifier};

/// Verify one completion against its gold graph.
#[pyfunction]
#[pyo3(signature = (completion, gold, rule = "strict", format = "full"))]
pub fn verify(
    py: Python<'_>,
    completion: &Bound<'_, PyAny>,
    gold: &Bound<'_, PyAny>,
    rule: &str,
    format: &str,
) -> PyResult<PyVerdict> {
    let rule = parse_rule(rule)?;
    let format = parse_format(format)?;
    let text = completion_text(completion, None)?;
    let gold = extract(gold)?;
    let verdict = py.detach(|| {
        Verifier::for_format(format)
            .verify(&gold, &text, rule)
            .clone()
    });
    Ok(PyVerdict {
        verdict,
        gold,
        format,
    })
}

/// A completion as text; anything but a `str` is refused, naming its index in a batch.
fn completion_text(
    obj: &Bound<'_, PyAny>,
    index: Option<usize>,
) -> Result<PyBackedStr, InputError> {
    obj.extract::<PyBackedStr>().map_err(|_| InputError::Value {
        arg: "completion",
        value: match index {
            Some(i) => format!("[{i}] {}", short_repr(obj)),
            None => short_repr(obj),
        },
        problem: "is not a str",
    })
}

/// A batch's golds: graphs converted from Python objects, or the `graph` column read from
/// Arrow and decoded row by row by the workers.
enum Golds {
    Objects(Vec<Arc<GoldGraph>>),
    Arrow(ArrowGolds),
}

impl Golds {
    /// Gold `i`: the converted graph, or row `i` decoded into `buf`.
    fn get<'a>(&'a self, i: usize, buf: &'a mut GoldGraph) -> Result<&'a GoldGraph, GraphError> {
        match self {
            Golds::Objects(v) => Ok(&v[i]),
            Golds::Arrow(a) => {
                a.decode_into(i, buf)?;
                Ok(buf)
            }
        }
    }
}

/// Golds of a batch of `n` completions: an Arrow column as it is, else a sequence of Python
/// values, where consecutive items that are the same object (a GRPO group's completions share
/// their problem) are converted once.
fn golds(golds: &Bound<'_, PyAny>, n: usize) -> Result<Golds, InputError> {
    let lengths = |m: usize| InputError::Lengths {
        what: "completions",
        n,
        other: "golds",
        m,
    };
    if let Some(arrow) = ArrowGolds::from_py(golds) {
        let arrow = arrow?;
        if arrow.len() != n {
            return Err(lengths(arrow.len()));
        }
        return Ok(Golds::Arrow(arrow));
    }
    let items: Vec<Bound<'_, PyAny>> =
        golds
            .try_iter()
            .and_then(|it| it.collect())
            .map_err(|_| InputError::Value {
                arg: "golds",
                value: short_repr(golds),
                problem: "is not a sequence of golds",
            })?;
    if items.len() != n {
        return Err(lengths(items.len()));
    }
    let mut out: Vec<Arc<GoldGraph>> = Vec::with_capacity(n);
    for (i, g) in items.iter().enumerate() {
        if i > 0 && g.is(&items[i - 1]) {
            let prev = out[i - 1].clone();
            out.push(prev);
            continue;
        }
        out.push(extract(g).map_err(|e| InputError::Gold {
            problem: format!("golds[{i}]: {e}"),
        })?);
    }
    Ok(Golds::Objects(out))
}

/// Score every completion against its gold (same length); the result is in input order,
/// whatever the number of threads.
#[pyfunction]
#[pyo3(signature = (completions, golds, kind = "mixed", alpha = 0.2, rule = "strict", threads = None, format = "full"))]
#[allow(clippy::too_many_arguments)]
pub fn rewards(
    py: Python<'_>,
    completions: &Bound<'_, PyAny>,
    golds: &Bound<'_, PyAny>,
    kind: &str,
    alpha: f64,
    rule: &str,
    threads: Option<i64>,
    format: &str,
) -> PyResult<Vec<f64>> {
    let reward = parse_reward(kind, alpha)?;
    let rule = parse_rule(rule)?;
    let format = parse_format(format)?;
    let threads = check_threads(threads)?;
    if completions.is_instance_of::<pyo3::types::PyString>() {
        return Err(InputError::Value {
            arg: "completions",
            value: short_repr(completions),
            problem: "is one str; pass a list of completions",
        }
        .into());
    }
    let texts: Vec<PyBackedStr> = completions
        .try_iter()
        .map_err(|_| InputError::Value {
            arg: "completions",
            value: short_repr(completions),
            problem: "is not a sequence of str",
        })?
        .enumerate()
        .map(|(i, c)| {
            let c = c.map_err(|e| InputError::Library(e.to_string()))?;
            completion_text(&c, Some(i))
        })
        .collect::<Result<_, _>>()?;
    let golds = self::golds(golds, texts.len())?;
    let out = py.detach(|| {
        let run = || score_all(&texts, &golds, reward, rule, format);
        if threads == 0 {
            Ok(run())
        } else {
            pool(threads).map(|p| p.install(run))
        }
    })?;
    Ok(out?)
}

/// Every completion's reward, in input order whatever the thread count, each worker with one
/// reusable verifier and graph buffer; a gold that cannot be decoded is an error naming its
/// index (the first such, whatever the thread count).
fn score_all(
    texts: &[PyBackedStr],
    golds: &Golds,
    reward: Reward,
    rule: Rule,
    format: TraceFormat,
) -> Result<Vec<f64>, InputError> {
    let scored: Vec<Result<f64, (usize, String)>> = (0..texts.len())
        .into_par_iter()
        .with_min_len(64)
        .map_init(
            || {
                let buf = GoldGraph {
                    mode: crate::composer::Mode::Forward,
                    nodes: Vec::new(),
                    asked: 0,
                    answer: 0,
                };
                (Verifier::for_format(format), buf)
            },
            |(ver, buf), i| {
                let g = golds.get(i, buf).map_err(|e| (i, e.to_string()))?;
                Ok(reward.score(ver.verify(g, &texts[i], rule)))
            },
        )
        .collect();
    scored
        .into_iter()
        .map(|r| {
            r.map_err(|(i, problem)| InputError::Gold {
                problem: format!("golds[{i}]: {problem}"),
            })
        })
        .collect()
}
