//! The `graph` column of a shard: each row's gold graph stored as a list of nodes
//! ({name, value, parents, kind}), decoded back into a [`GoldGraph`] — whole rows for the
//! readers in [`super::reader`], or a row group held and decoded row by row into a reused
//! buffer for a streamed audit ([`GoldRows`]).

use std::path::{Path, PathBuf};

use arrow::array::{AsArray, Int64Array, StringArray};
use arrow::datatypes::Int64Type;

use super::reader::{Columns, ReadError};
use super::shard::read_columns_of;
use crate::composer::Mode;
use crate::graph::{GoldGraph, GoldNode, NodeKind};

/// What is wrong with a shard's `graph` column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("graph items are not structs")]
    NotStructs,
    #[error("node field `{0}` missing")]
    MissingField(&'static str),
    #[error("node {field} is not {expected}")]
    FieldType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("parent names are not strings")]
    ParentNames,
    #[error("unknown node kind `{0}`")]
    UnknownKind(String),
    #[error("node `{node}` has parent `{parent}` that is not an earlier node")]
    LaterParent { node: String, parent: String },
    #[error("empty graph")]
    Empty,
}

/// A batch's `graph` column with its node fields typed once, so decoding a row reads by
/// index instead of slicing arrays (which costs allocations per node). It holds its arrays
/// (clones share the batch's buffers), so it can outlive the borrow of the batch.
pub(crate) struct GraphColumn {
    nodes: arrow::buffer::OffsetBuffer<i32>,
    names: StringArray,
    values: Int64Array,
    parent_offsets: arrow::buffer::OffsetBuffer<i32>,
    parent_names: StringArray,
    kinds: StringArray,
}

impl GraphColumn {
    pub(crate) fn new(graph: &arrow::array::ListArray) -> Result<GraphColumn, GraphError> {
        let s = graph
            .values()
            .as_struct_opt()
            .ok_or(GraphError::NotStructs)?;
        let field = |n: &'static str| s.column_by_name(n).ok_or(GraphError::MissingField(n));
        let not = |field, expected| GraphError::FieldType { field, expected };
        let parents = field("parents")?
            .as_list_opt::<i32>()
            .ok_or(not("parents", "a list"))?;
        Ok(GraphColumn {
            nodes: graph.offsets().clone(),
            names: field("name")?
                .as_string_opt::<i32>()
                .ok_or(not("name", "a string"))?
                .clone(),
            values: field("value")?
                .as_primitive_opt::<Int64Type>()
                .ok_or(not("value", "int64"))?
                .clone(),
            parent_offsets: parents.offsets().clone(),
            parent_names: parents
                .values()
                .as_string_opt::<i32>()
                .ok_or(GraphError::ParentNames)?
                .clone(),
            kinds: field("kind")?
                .as_string_opt::<i32>()
                .ok_or(not("kind", "a string"))?
                .clone(),
        })
    }

    pub(crate) fn decode(
        &self,
        r: usize,
        mode: Mode,
        answer: i64,
    ) -> Result<GoldGraph, GraphError> {
        let mut g = GoldGraph {
            mode,
            nodes: Vec::new(),
            asked: 0,
            answer,
        };
        self.decode_into(r, mode, answer, &mut g)?;
        Ok(g)
    }

    /// Decode row `r` into `g`, reusing its nodes' buffers: a graph read per verified sample
    /// then costs no allocation once `g` has grown to the largest graph.
    pub(crate) fn decode_into(
        &self,
        r: usize,
        mode: Mode,
        answer: i64,
        g: &mut GoldGraph,
    ) -> Result<(), GraphError> {
        let (from, to) = (self.nodes[r] as usize, self.nodes[r + 1] as usize);
        if from == to {
            return Err(GraphError::Empty);
        }
        g.mode = mode;
        g.answer = answer;
        g.asked = to - from - 1;
        g.nodes.truncate(to - from);
        for n in from..to {
            let i = n - from;
            let kind = NodeKind::parse(self.kinds.value(n))
                .ok_or_else(|| GraphError::UnknownKind(self.kinds.value(n).to_string()))?;
            if i == g.nodes.len() {
                g.nodes.push(GoldNode {
                    name: String::new(),
                    value: 0,
                    parents: Vec::new(),
                    kind,
                });
            }
            let (earlier, rest) = g.nodes.split_at_mut(i);
            let node = &mut rest[0];
            node.parents.clear();
            let (pa, pb) = (
                self.parent_offsets[n] as usize,
                self.parent_offsets[n + 1] as usize,
            );
            for k in pa..pb {
                let name = self.parent_names.value(k);
                let j = earlier
                    .iter()
                    .position(|e: &GoldNode| e.name == name)
                    .ok_or_else(|| GraphError::LaterParent {
                        node: self.names.value(n).to_string(),
                        parent: name.to_string(),
                    })?;
                node.parents.push(j);
            }
            if kind == NodeKind::Unknown {
                g.asked = i;
            }
            node.name.clear();
            node.name.push_str(self.names.value(n));
            node.value = self.values.value(n);
            node.kind = kind;
        }
        Ok(())
    }
}

/// One row group's gold graphs, read once and decoded row by row on demand, so a streamed
/// audit verifying many samples of a row group reads and decompresses it once.
pub struct GoldRows {
    path: PathBuf,
    /// Per batch of the row group: its first row, modes, answers and graphs.
    batches: Vec<(usize, StringArray, Int64Array, GraphColumn)>,
}

impl GoldRows {
    /// Row group `row_group` of the shard at `path` (only its graph columns).
    pub fn read(path: &Path, row_group: usize) -> Result<GoldRows, ReadError> {
        let mut batches = Vec::new();
        let mut base = 0;
        for b in read_columns_of(path, &["mode", "answer", "graph"], Some(row_group))? {
            let b = b?;
            let c = Columns::new(path, &b);
            let (mode, answer) = (c.text("mode")?.clone(), c.int64("answer")?.clone());
            let gc = GraphColumn::new(c.list("graph")?).map_err(|p| c.graph_err(p))?;
            batches.push((base, mode, answer, gc));
            base += b.num_rows();
        }
        Ok(GoldRows {
            path: path.to_path_buf(),
            batches,
        })
    }

    /// Decode row `row` of the row group into `g`, reusing its buffers.
    pub fn decode_into(&self, row: usize, g: &mut GoldGraph) -> Result<(), ReadError> {
        let at = self.batches.partition_point(|b| b.0 <= row);
        let err = |problem: String| ReadError::Column {
            path: self.path.clone(),
            column: "graph".into(),
            problem,
        };
        let Some((base, modes, answers, gc)) = at.checked_sub(1).map(|i| &self.batches[i]) else {
            return Err(err(format!("row {row} is not in the row group")));
        };
        let i = row - base;
        if i >= arrow::array::Array::len(modes) {
            return Err(err(format!("row {row} is not in the row group")));
        }
        let m = modes.value(i);
        let mode = Mode::parse(m).ok_or_else(|| ReadError::Column {
            path: self.path.clone(),
            column: "mode".into(),
            problem: format!("unknown mode `{m}`"),
        })?;
        gc.decode_into(i, mode, answers.value(i), g)
            .map_err(|problem| ReadError::Graph {
                path: self.path.clone(),
                problem,
            })
    }
}
