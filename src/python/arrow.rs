//! Golds straight from Arrow: `rewards(completions, golds)` where `golds` is the dataset's
//! `graph` column as pyarrow holds it (`table.column("graph")`, a `ChunkedArray`, or one
//! `Array`), taken through the Arrow C data interface (`__arrow_c_array__`) without copying
//! and without building a Python object per node.
//!
//! Why: converting a graph from Python dicts costs more than verifying it, and it runs under
//! the GIL, one core at a time. Read from Arrow, each worker decodes its rows' graphs into one
//! reused buffer with the GIL released — what `dagmath audit` does with a shard's row groups.
//! Mode and answer are derived from the graph as for a raw graph (`gold.rs`).

use std::ffi::CStr;

use arrow::array::{make_array, Array, AsArray};
use arrow::ffi::{from_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyTuple};

use super::error::{short_repr, InputError};
use crate::composer::Mode;
use crate::dataset::gold_graph::{GraphColumn, GraphError};
use crate::graph::{GoldGraph, NodeKind};

/// A `graph` column read from Arrow: its chunks, each with the index of its first row.
pub struct ArrowGolds {
    chunks: Vec<(usize, GraphColumn)>,
    len: usize,
}

impl ArrowGolds {
    /// `obj` as Arrow golds, if it is an Arrow array or chunked array (`None`: some other
    /// value, for the Python-object path).
    pub fn from_py(obj: &Bound<'_, PyAny>) -> Option<Result<ArrowGolds, InputError>> {
        if obj.hasattr("__arrow_c_array__").unwrap_or(false) {
            return Some(ArrowGolds::read(std::slice::from_ref(obj), obj));
        }
        // pyarrow's ChunkedArray (a table's column): its chunks are arrays.
        if obj.hasattr("chunks").unwrap_or(false) && obj.hasattr("num_chunks").unwrap_or(false) {
            let chunks = obj
                .getattr("chunks")
                .and_then(|c| c.try_iter()?.collect::<PyResult<Vec<_>>>());
            return Some(match chunks {
                Ok(chunks) => ArrowGolds::read(&chunks, obj),
                Err(_) => Err(not_graphs(obj, "has unreadable chunks")),
            });
        }
        None
    }

    fn read(arrays: &[Bound<'_, PyAny>], whole: &Bound<'_, PyAny>) -> Result<Self, InputError> {
        let mut chunks = Vec::with_capacity(arrays.len());
        let mut len = 0;
        for a in arrays {
            let list = import(a).map_err(|_| not_graphs(whole, "is not an Arrow array"))?;
            let Some(list) = list.as_list_opt::<i32>() else {
                return Err(not_graphs(whole, "is not a list<struct> column"));
            };
            if let Some(i) = (0..list.len()).find(|&i| list.is_null(i)) {
                return Err(InputError::Gold {
                    problem: format!("golds[{}] is null", len + i),
                });
            }
            let gc = GraphColumn::new(list).map_err(|e| InputError::Gold {
                problem: format!("golds ({}): {e}", short_repr(whole)),
            })?;
            chunks.push((len, gc));
            len += list.len();
        }
        Ok(ArrowGolds { chunks, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Decode gold `i` into `g` (reusing its buffers), with mode, asked node and answer
    /// derived from the graph: reverse mode asks for the `unknown` node, forward mode for the
    /// last one.
    pub fn decode_into(&self, i: usize, g: &mut GoldGraph) -> Result<(), GraphError> {
        let at = self.chunks.partition_point(|c| c.0 <= i) - 1;
        let (start, gc) = &self.chunks[at];
        gc.decode_into(i - start, Mode::Forward, 0, g)?;
        if g.nodes.iter().any(|n| n.kind == NodeKind::Unknown) {
            g.mode = Mode::Reverse;
        }
        g.answer = g.nodes[g.asked].value;
        Ok(())
    }
}

fn not_graphs(obj: &Bound<'_, PyAny>, problem: &'static str) -> InputError {
    InputError::Value {
        arg: "golds",
        value: short_repr(obj),
        problem,
    }
}

const SCHEMA: &CStr = c"arrow_schema";
const ARRAY: &CStr = c"arrow_array";

/// One Arrow array through the C data interface: `__arrow_c_array__()` gives a schema and an
/// array capsule; the array's buffers are moved out of its capsule (which is left released, so
/// Python does not free them twice) and stay alive as long as the array here.
fn import(obj: &Bound<'_, PyAny>) -> PyResult<arrow::array::ArrayRef> {
    let pair = obj.call_method0("__arrow_c_array__")?;
    let pair = pair.cast::<PyTuple>()?;
    let schema = pair.get_item(0)?;
    let array = pair.get_item(1)?;
    let schema = schema.cast::<PyCapsule>()?;
    let array = array.cast::<PyCapsule>()?;
    let schema_ptr = schema.pointer_checked(Some(SCHEMA))?;
    let array_ptr = array.pointer_checked(Some(ARRAY))?;
    // SAFETY: the capsules are named per the Arrow PyCapsule interface, so they hold an
    // `ArrowSchema` and an `ArrowArray`; `from_raw` takes the array and marks the capsule's
    // released, and the schema is only read while its capsule is alive.
    let data = unsafe {
        let ffi_array = FFI_ArrowArray::from_raw(array_ptr.as_ptr().cast::<FFI_ArrowArray>());
        let ffi_schema = &*schema_ptr.as_ptr().cast::<FFI_ArrowSchema>();
        from_ffi(ffi_array, ffi_schema)
    }
    .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    Ok(make_array(data))
}
