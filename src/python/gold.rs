//! Gold graphs from Python values: a dataset row's `graph` as `datasets` or pyarrow return it
//! (a list of `{name, value, parents, kind}` dicts, or the dict of lists `datasets` makes of a
//! `Sequence` feature), a whole dataset row, a reference-format record (`solution` holds the
//! gold trace), a JSON string of any of these, or a [`Gold`] made once by `dagmath.gold`.
//!
//! The `graph` column holds no mode and no answer (they are columns beside it): a graph with
//! an `unknown` node is reverse mode and asks for that node, else forward mode asks for the
//! last node; the answer is the asked node's value — what the shard writer stored.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use super::error::{short_repr, InputError};
use crate::composer::Mode;
use crate::dataset::reference::read_gold_trace;
use crate::graph::{GoldGraph, GoldNode, NodeKind};

/// A gold graph read once from Python, so a batch that scores many completions of the same
/// problem converts it once (`rewards` accepts these beside raw values).
#[pyclass(frozen, module = "dagmath")]
pub struct Gold {
    pub graph: Arc<GoldGraph>,
}

#[pymethods]
impl Gold {
    /// Number of gold nodes.
    fn __len__(&self) -> usize {
        self.graph.nodes.len()
    }

    /// `forward` or `reverse`.
    #[getter]
    fn mode(&self) -> &'static str {
        self.graph.mode.as_str()
    }

    /// The gold answer (the asked node's value).
    #[getter]
    fn answer(&self) -> i64 {
        self.graph.answer
    }

    /// The nodes in the dataset's `graph` column layout: `{name, value, parents, kind}`.
    #[getter]
    fn nodes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        graph_to_py(py, &self.graph)
    }

    fn __repr__(&self) -> String {
        format!(
            "Gold(mode={}, nodes={}, answer={})",
            self.graph.mode.as_str(),
            self.graph.nodes.len(),
            self.graph.answer
        )
    }
}

/// The `graph` column value of `g`: a list of `{name, value, parents, kind}` dicts.
pub fn graph_to_py<'py>(py: Python<'py>, g: &GoldGraph) -> PyResult<Bound<'py, PyList>> {
    let nodes = PyList::empty(py);
    for n in &g.nodes {
        let d = PyDict::new(py);
        d.set_item("name", &n.name)?;
        d.set_item("value", n.value)?;
        let parents: Vec<&str> = n
            .parents
            .iter()
            .map(|&p| g.nodes[p].name.as_str())
            .collect();
        d.set_item("parents", parents)?;
        d.set_item("kind", n.kind.as_str())?;
        nodes.append(d)?;
    }
    Ok(nodes)
}

/// The gold graph `obj` stands for (see the module docs for the accepted forms).
pub fn extract(obj: &Bound<'_, PyAny>) -> Result<Arc<GoldGraph>, InputError> {
    if let Ok(g) = obj.cast::<Gold>() {
        return Ok(g.get().graph.clone());
    }
    let g = extract_owned(obj, 0)?;
    // The verifier keeps a node set in a 128-bit mask: a larger graph is refused here, not
    // left to fail inside it.
    if g.nodes.len() > crate::trace::MAX_GOLD_NODES {
        return Err(InputError::Gold {
            problem: format!(
                "{} nodes, more than the verifier's {}",
                g.nodes.len(),
                crate::trace::MAX_GOLD_NODES
            ),
        });
    }
    Ok(Arc::new(g))
}

fn extract_owned(obj: &Bound<'_, PyAny>, depth: u8) -> Result<GoldGraph, InputError> {
    let shape = || InputError::GoldShape {
        value: short_repr(obj),
    };
    if let Ok(s) = obj.cast::<PyString>() {
        if depth > 0 {
            return Err(shape());
        }
        let text = s.to_cow().map_err(|_| shape())?;
        let json = obj
            .py()
            .import("json")
            .and_then(|m| m.call_method1("loads", (&*text,)))
            .map_err(|_| shape())?;
        return extract_owned(&json, 1);
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        if let Some(graph) = item(d, "graph")? {
            return from_nodes(&graph);
        }
        if let Some(solution) = item(d, "solution")? {
            let text: String = solution.extract().map_err(|_| InputError::Gold {
                problem: format!("`solution` is {}, not a string", short_repr(&solution)),
            })?;
            return read_gold_trace(&text).map_err(|e| InputError::Gold {
                problem: format!("reference record: {e}"),
            });
        }
        if item(d, "name")?.is_some() {
            return from_columns(d);
        }
        return Err(shape());
    }
    if obj.cast::<PyList>().is_ok() || obj.cast::<PyTuple>().is_ok() {
        return from_nodes(obj);
    }
    Err(shape())
}

fn item<'py>(d: &Bound<'py, PyDict>, key: &str) -> Result<Option<Bound<'py, PyAny>>, InputError> {
    d.get_item(key).map_err(|e| InputError::Gold {
        problem: format!("reading `{key}`: {e}"),
    })
}

/// One node as read from Python, parents still by name.
struct RawNode {
    name: String,
    value: i64,
    parents: Vec<String>,
    kind: String,
}

/// A list of node dicts. The hot path of `rewards` on raw graphs: keys are interned once
/// and names compared as borrowed text, so a node costs four dict lookups and one copy of
/// its name.
fn from_nodes(list: &Bound<'_, PyAny>) -> Result<GoldGraph, InputError> {
    if let Ok(d) = list.cast::<PyDict>() {
        return from_columns(d);
    }
    let py = list.py();
    let keys = [
        pyo3::intern!(py, "name"),
        pyo3::intern!(py, "value"),
        pyo3::intern!(py, "parents"),
        pyo3::intern!(py, "kind"),
    ];
    let iter = list.try_iter().map_err(|_| InputError::GoldShape {
        value: short_repr(list),
    })?;
    let mut nodes: Vec<GoldNode> = Vec::new();
    let mut unknown = None;
    for (i, n) in iter.enumerate() {
        let bad = |problem: String| InputError::GoldNode { node: i, problem };
        let n = n.map_err(|e| bad(e.to_string()))?;
        let d = n
            .cast::<PyDict>()
            .map_err(|_| bad(format!("{} is not a dict", short_repr(&n))))?;
        let mut fields = keys.iter().map(|k| {
            d.get_item(k)
                .ok()
                .flatten()
                .ok_or_else(|| bad(format!("no `{}` in {}", k, short_repr(&n))))
        });
        let (name, value, parents, kind) = (
            fields.next().expect("four keys")?,
            fields.next().expect("four keys")?,
            fields.next().expect("four keys")?,
            fields.next().expect("four keys")?,
        );
        let text = |v: &Bound<'_, PyAny>, field: &str| -> Result<String, InputError> {
            v.cast::<PyString>()
                .ok()
                .and_then(|s| s.to_cow().ok().map(|c| c.into_owned()))
                .ok_or_else(|| bad(format!("`{field}` is {}", short_repr(v))))
        };
        let name = text(&name, "name")?;
        let kind_text = text(&kind, "kind")?;
        let kind = NodeKind::parse(&kind_text).ok_or_else(|| {
            bad(format!(
                "kind '{kind_text}' is not one of constant, instance, total, unknown"
            ))
        })?;
        if kind == NodeKind::Unknown {
            unknown = Some(i);
        }
        let value: i64 = value
            .extract()
            .map_err(|_| bad(format!("`value` is {}", short_repr(&value))))?;
        let mut ps = Vec::new();
        let not_list = || bad(format!("`parents` is {}", short_repr(&parents)));
        for p in parents.try_iter().map_err(|_| not_list())? {
            let p = p.map_err(|_| not_list())?;
            let p = p
                .cast::<PyString>()
                .ok()
                .and_then(|s| s.to_cow().ok())
                .ok_or_else(not_list)?;
            let j = nodes
                .iter()
                .position(|e| e.name == *p)
                .ok_or_else(|| bad(format!("parent '{p}' of '{name}' is not an earlier node")))?;
            ps.push(j);
        }
        nodes.push(GoldNode {
            name,
            value,
            parents: ps,
            kind,
        });
    }
    finish(nodes, unknown)
}

/// The dict-of-lists form: `{"name": [...], "value": [...], "parents": [[...]], "kind": [...]}`.
fn from_columns(d: &Bound<'_, PyDict>) -> Result<GoldGraph, InputError> {
    let col = |k: &'static str| -> Result<Bound<'_, PyAny>, InputError> {
        item(d, k)?.ok_or_else(|| InputError::Gold {
            problem: format!("no `{k}` column in {}", short_repr(d.as_any())),
        })
    };
    let cols = |k: &'static str| -> Result<Vec<Bound<'_, PyAny>>, InputError> {
        col(k)?.extract().map_err(|_| InputError::Gold {
            problem: format!("`{k}` is not a list"),
        })
    };
    let (names, values, parents, kinds) = (
        cols("name")?,
        cols("value")?,
        cols("parents")?,
        cols("kind")?,
    );
    let n = names.len();
    if values.len() != n || parents.len() != n || kinds.len() != n {
        return Err(InputError::Gold {
            problem: format!(
                "columns of unequal length: name {n}, value {}, parents {}, kind {}",
                values.len(),
                parents.len(),
                kinds.len()
            ),
        });
    }
    let mut raw = Vec::with_capacity(n);
    for i in 0..n {
        raw.push(RawNode {
            name: typed(i, "name", &names[i])?,
            value: typed(i, "value", &values[i])?,
            parents: typed(i, "parents", &parents[i])?,
            kind: typed(i, "kind", &kinds[i])?,
        });
    }
    build(raw)
}

fn typed<'py, T: FromPyObjectOwned<'py>>(
    node: usize,
    field: &str,
    v: &Bound<'py, PyAny>,
) -> Result<T, InputError> {
    v.extract().map_err(|_| InputError::GoldNode {
        node,
        problem: format!("`{field}` is {}", short_repr(v)),
    })
}

/// Resolve parents by name (each must be an earlier node) and derive mode, asked and answer.
fn build(raw: Vec<RawNode>) -> Result<GoldGraph, InputError> {
    if raw.is_empty() {
        return Err(InputError::Gold {
            problem: "empty graph (no nodes)".into(),
        });
    }
    let mut nodes: Vec<GoldNode> = Vec::with_capacity(raw.len());
    let mut asked = raw.len() - 1;
    let mut mode = Mode::Forward;
    for (i, r) in raw.into_iter().enumerate() {
        let kind = NodeKind::parse(&r.kind).ok_or_else(|| InputError::GoldNode {
            node: i,
            problem: format!(
                "kind '{}' is not one of constant, instance, total, unknown",
                r.kind
            ),
        })?;
        if kind == NodeKind::Unknown {
            mode = Mode::Reverse;
            asked = i;
        }
        let mut parents = Vec::with_capacity(r.parents.len());
        for p in &r.parents {
            let j =
                nodes
                    .iter()
                    .position(|e| e.name == *p)
                    .ok_or_else(|| InputError::GoldNode {
                        node: i,
                        problem: format!("parent '{p}' of '{}' is not an earlier node", r.name),
                    })?;
            parents.push(j);
        }
        nodes.push(GoldNode {
            name: r.name,
            value: r.value,
            parents,
            kind,
        });
    }
    finish(nodes, (mode == Mode::Reverse).then_some(asked))
}

/// The graph of `nodes`: reverse mode asking for the `unknown` node if there is one, else
/// forward mode asking for the last node; the answer is the asked node's value.
fn finish(nodes: Vec<GoldNode>, unknown: Option<usize>) -> Result<GoldGraph, InputError> {
    let Some(last) = nodes.len().checked_sub(1) else {
        return Err(InputError::Gold {
            problem: "empty graph (no nodes)".into(),
        });
    };
    let asked = unknown.unwrap_or(last);
    Ok(GoldGraph {
        mode: if unknown.is_some() {
            Mode::Reverse
        } else {
            Mode::Forward
        },
        answer: nodes[asked].value,
        asked,
        nodes,
    })
}

/// `dagmath.gold(obj)`: read a gold graph once, to pass to `verify` and `rewards` many times.
#[pyfunction]
pub fn gold(obj: &Bound<'_, PyAny>) -> PyResult<Gold> {
    Ok(Gold {
        graph: extract(obj)?,
    })
}
