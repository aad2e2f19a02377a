//! The `dagmath` Python module (cargo feature `python`, built into a wheel by maturin from
//! `pyproject.toml`): the verifier as a reward for Python RL engines (TRL, verl), pass@k,
//! and the generator. A top layer like the CLI: it calls the library and converts values;
//! nothing below it knows Python.
//!
//! - `verify` / `rewards` (`verify.rs`): one full verdict, or a batch of scalar rewards
//!   computed in parallel with the GIL released;
//! - `gold` (`gold.rs`): the gold graph from a dataset row's `graph`, a row, a reference
//!   record or JSON;
//! - `Verdict`, `Issue` (`verdict.rs`); `pass_at_k`, `summarize` (`passk.rs`);
//! - `compose`, `generate` (`data.rs`).
//!
//! Bad input raises `ValueError` naming the value (`error.rs`); the Python package around
//! this native module (`src/python/dagmath/`) adds the type stubs and the TRL / verl adapters.

mod arrow;
mod data;
mod error;
mod gold;
mod options;
mod passk;
mod verdict;
mod verify;

use pyo3::prelude::*;

/// The native module, imported by the package as `dagmath._dagmath`.
#[pymodule]
#[pyo3(name = "_dagmath")]
fn dagmath_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<gold::Gold>()?;
    m.add_class::<verdict::PyVerdict>()?;
    m.add_class::<verdict::PyIssue>()?;
    m.add_function(wrap_pyfunction!(gold::gold, m)?)?;
    m.add_function(wrap_pyfunction!(verify::verify, m)?)?;
    m.add_function(wrap_pyfunction!(verify::rewards, m)?)?;
    m.add_function(wrap_pyfunction!(passk::pass_at_k, m)?)?;
    m.add_function(wrap_pyfunction!(passk::summarize, m)?)?;
    m.add_function(wrap_pyfunction!(data::compose, m)?)?;
    m.add_function(wrap_pyfunction!(data::generate, m)?)?;
    Ok(())
}
