//! The data side from Python: `compose` (one problem, as a dict with the dataset's columns)
//! and `generate` (a whole dataset from a recipe, as `dagmath generate --recipe` writes it).

use std::path::PathBuf;

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::error::InputError;
use super::gold::graph_to_py;
use super::options::check_threads;
use crate::composer::{compose_noisy, problem_id, Mode, Noise};
use crate::dataset::{generate as generate_dataset, GenerateOptions, Quiet, Recipe};
use crate::graph::GoldGraph;
use crate::render::Rendered;
use crate::template::TemplateSet;

/// The built-in templates, plus those of `dir` if given.
fn templates(dir: Option<PathBuf>) -> Result<TemplateSet, InputError> {
    match dir {
        None => Ok(TemplateSet::builtin()),
        Some(d) => {
            TemplateSet::with_dir(&d).map_err(|e| InputError::Library(format!("templates: {e}")))
        }
    }
}

/// Compose the problem of template `template`, op count `op` and mode `mode` for `seed`, and
/// return it as one dataset row, its solution and completion in trace format `format`.
#[pyfunction]
#[pyo3(signature = (op, template = "zoo", mode = "forward", seed = 0, distractors = "reference", split = "", templates = None, format = "full"))]
#[allow(clippy::too_many_arguments)]
pub fn compose<'py>(
    py: Python<'py>,
    op: i64,
    template: &str,
    mode: &str,
    seed: u64,
    distractors: &str,
    split: &str,
    templates: Option<PathBuf>,
    format: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let format = super::options::parse_format(format)?;
    let set = self::templates(templates)?;
    let t = set.get(template).ok_or_else(|| InputError::Choice {
        arg: "template",
        value: format!("'{template}'"),
        known: "the built-in templates (zoo, school, festival) or those of templates=DIR",
    })?;
    let m = Mode::parse(mode).ok_or_else(|| InputError::Choice {
        arg: "mode",
        value: format!("'{mode}'"),
        known: "'forward', 'reverse'",
    })?;
    let op = u32::try_from(op).map_err(|_| InputError::Value {
        arg: "op",
        value: op.to_string(),
        problem: "is not an op count (ops run from 1)",
    })?;
    let noise =
        Noise::parse(distractors).map_err(|e| InputError::Library(format!("distractors: {e}")))?;
    noise
        .check(t, op)
        .map_err(|e| InputError::Library(format!("distractors: {e}")))?;
    let p = compose_noisy(t, op, m, noise, seed).map_err(|e| InputError::Library(e.to_string()))?;
    let r = Rendered::of_format(t, &p, format);
    let id = problem_id(&t.id, &p, &mut Vec::new());
    let row = PyDict::new(py);
    row.set_item("id", id.to_hex())?;
    row.set_item("split", split)?;
    row.set_item("op", p.op)?;
    row.set_item("template", &t.id)?;
    row.set_item("mode", p.mode.as_str())?;
    row.set_item("problem", &r.problem)?;
    row.set_item("question", &r.question)?;
    row.set_item("solution", &r.solution)?;
    row.set_item("answer", r.answer)?;
    row.set_item("prompt", &r.prompt)?;
    row.set_item("completion", &r.completion)?;
    row.set_item("graph", graph_to_py(py, &GoldGraph::from_problem(t, &p))?)?;
    row.set_item("n_nodes", p.needed().len())?;
    row.set_item("n_distractors", p.n_distractors())?;
    row.set_item("depth", p.depth())?;
    Ok(row)
}

/// Write the dataset of recipe file `recipe` to folder `out`; returns its manifest as a dict.
#[pyfunction]
#[pyo3(signature = (recipe, out, threads = None, seed = None, resume = false, force = false, templates = None))]
#[allow(clippy::too_many_arguments)]
pub fn generate<'py>(
    py: Python<'py>,
    recipe: PathBuf,
    out: PathBuf,
    threads: Option<i64>,
    seed: Option<u64>,
    resume: bool,
    force: bool,
    templates: Option<PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    let threads = check_threads(threads)?;
    let set = self::templates(templates)?;
    let mut r = Recipe::load(&recipe, &set).map_err(|e| InputError::Library(e.to_string()))?;
    if let Some(s) = seed {
        r.seed = s;
    }
    let opts = GenerateOptions {
        out,
        threads,
        resume,
        force,
    };
    let manifest = py
        .detach(|| generate_dataset(&r, &set, &opts, &Quiet))
        .map_err(|e| -> PyErr {
            // What the caller named is at fault: ValueError (the CLI's exit 2).
            if e.is_users() {
                InputError::Library(e.to_string()).into()
            } else {
                PyOSError::new_err(e.to_string())
            }
        })?;
    let json = serde_json::to_string(&manifest)
        .map_err(|e| InputError::Library(format!("manifest: {e}")))?;
    py.import("json")?.call_method1("loads", (json,))
}
