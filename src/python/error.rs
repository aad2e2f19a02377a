//! What the Python module refuses, as one typed error that names the bad value; every variant
//! becomes a `ValueError` (never a panic) when it crosses into Python.

use pyo3::exceptions::PyValueError;
use pyo3::PyErr;

/// Bad input to a `dagmath` Python function. `value` fields hold a short `repr` of what was
/// passed, so the message shows it.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{arg}: {value} is not one of {known}")]
    Choice {
        arg: &'static str,
        value: String,
        known: &'static str,
    },
    #[error("{arg}: {value} {problem}")]
    Value {
        arg: &'static str,
        value: String,
        problem: &'static str,
    },
    #[error("gold: {value} is not a dataset row's graph (a list of nodes), a dataset row, a reference-format record, nor a JSON string of one")]
    GoldShape { value: String },
    #[error("gold node {node}: {problem}")]
    GoldNode { node: usize, problem: String },
    #[error("gold: {problem}")]
    Gold { problem: String },
    #[error("{what}: {n} items, but {other}: {m}")]
    Lengths {
        what: &'static str,
        n: usize,
        other: &'static str,
        m: usize,
    },
    #[error("{0}")]
    Library(String),
}

impl From<InputError> for PyErr {
    fn from(e: InputError) -> PyErr {
        PyValueError::new_err(e.to_string())
    }
}

/// A short `repr` of a Python value for an error message (long values are cut).
pub fn short_repr(obj: &pyo3::Bound<'_, pyo3::PyAny>) -> String {
    use pyo3::types::{PyAnyMethods, PyTypeMethods};
    let r = obj
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "<unprintable>".into());
    let ty = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    let cut: String = r.chars().take(80).collect();
    let more = if cut.len() < r.len() { "…" } else { "" };
    format!("{ty} {cut}{more}")
}
