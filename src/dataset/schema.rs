//! The Arrow schema of a dagmath shard (one function, one version) and a typed batch builder.
//!
//! `graph` is the gold graph as a list of structs `{name, value, parents, kind}` in
//! topological order; `parents` holds parent *names*, so a reader needs no other column.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Int32Builder, Int64Builder, ListArray, ListBuilder, RecordBatch,
    StringBuilder, StructArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};

use crate::composer::{Problem, ProblemId};
use crate::graph::{write_name, NodeKind};
use crate::render::Rendered;
use crate::template::Template;

/// Bumped whenever a column is added, removed or changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// Fields of one gold-graph node.
pub fn node_fields() -> Fields {
    Fields::from(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("value", DataType::Int64, false),
        Field::new(
            "parents",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, false))),
            false,
        ),
        Field::new("kind", DataType::Utf8, false),
    ])
}

/// The shard schema.
pub fn schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    let i32f = |n: &str| Field::new(n, DataType::Int32, false);
    Arc::new(Schema::new(vec![
        s("id"),
        s("split"),
        i32f("op"),
        s("template"),
        s("mode"),
        s("problem"),
        s("question"),
        s("solution"),
        Field::new("answer", DataType::Int64, false),
        s("prompt"),
        s("completion"),
        Field::new(
            "graph",
            DataType::List(Arc::new(Field::new(
                "item",
                DataType::Struct(node_fields()),
                false,
            ))),
            false,
        ),
        i32f("n_nodes"),
        i32f("n_distractors"),
        i32f("depth"),
    ]))
}

/// Name `i` of names stored back to back, `ends[i]` being where each ends.
fn nth_name<'a>(names: &'a str, ends: &[usize], i: usize) -> &'a str {
    let lo = if i == 0 { 0 } else { ends[i - 1] };
    &names[lo..ends[i]]
}

/// Columns holding long free text (no dictionary encoding for them).
pub const TEXT_COLUMNS: [&str; 6] = [
    "problem",
    "question",
    "solution",
    "prompt",
    "completion",
    "id",
];

/// Accumulates rows and produces a `RecordBatch` with [`schema`].
pub struct BatchBuilder {
    id: StringBuilder,
    split: StringBuilder,
    op: Int32Builder,
    template: StringBuilder,
    mode: StringBuilder,
    problem: StringBuilder,
    question: StringBuilder,
    solution: StringBuilder,
    answer: Int64Builder,
    prompt: StringBuilder,
    completion: StringBuilder,
    graph_offsets: Vec<i32>,
    node_name: StringBuilder,
    node_value: Int64Builder,
    node_parents: ListBuilder<StringBuilder>,
    node_kind: StringBuilder,
    n_nodes: Int32Builder,
    n_distractors: Int32Builder,
    depth: Int32Builder,
    rows: usize,
    /// Rows this builder was made for (0: unknown, buffers grow as needed).
    planned: usize,
    /// Scratch: the current row's node names, back to back, and where each ends.
    names: String,
    name_ends: Vec<usize>,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    pub fn new() -> BatchBuilder {
        BatchBuilder {
            id: StringBuilder::new(),
            split: StringBuilder::new(),
            op: Int32Builder::new(),
            template: StringBuilder::new(),
            mode: StringBuilder::new(),
            problem: StringBuilder::new(),
            question: StringBuilder::new(),
            solution: StringBuilder::new(),
            answer: Int64Builder::new(),
            prompt: StringBuilder::new(),
            completion: StringBuilder::new(),
            graph_offsets: vec![0],
            node_name: StringBuilder::new(),
            node_value: Int64Builder::new(),
            node_parents: ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new(
                "item",
                DataType::Utf8,
                false,
            ))),
            node_kind: StringBuilder::new(),
            n_nodes: Int32Builder::new(),
            n_distractors: Int32Builder::new(),
            depth: Int32Builder::new(),
            rows: 0,
            planned: 0,
            names: String::new(),
            name_ends: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// A builder for about `rows` rows: its text buffers are sized from the first row pushed,
    /// so filling it does not reallocate.
    pub fn with_rows(rows: usize) -> BatchBuilder {
        BatchBuilder {
            planned: rows,
            ..BatchBuilder::new()
        }
    }

    /// Size the text buffers for `planned` rows like `r`, with a quarter to spare.
    fn reserve_like(&mut self, r: &Rendered) {
        let n = self.planned;
        let cap = |len: usize| StringBuilder::with_capacity(n, (len + len / 4 + 16) * n);
        self.id = cap(32);
        self.problem = cap(r.problem.len());
        self.question = cap(r.question.len());
        self.solution = cap(r.solution.len());
        self.prompt = cap(r.prompt.len());
        self.completion = cap(r.completion.len());
    }

    /// Append one problem of template `t` with its rendering; the gold graph (the needed
    /// nodes, as [`crate::graph::GoldGraph::from_problem`] lists them) is written straight from `p`.
    pub fn push(&mut self, split: &str, t: &Template, id: &ProblemId, p: &Problem, r: &Rendered) {
        if self.rows == 0 && self.planned > 0 {
            self.reserve_like(r);
        }
        let hex = id.hex_bytes();
        self.id
            .append_value(std::str::from_utf8(&hex).expect("hex digits are ASCII"));
        self.split.append_value(split);
        self.op.append_value(p.op as i32);
        self.template.append_value(&t.id);
        self.mode.append_value(p.mode.as_str());
        self.problem.append_value(&r.problem);
        self.question.append_value(&r.question);
        self.solution.append_value(&r.solution);
        self.answer.append_value(r.answer);
        self.prompt.append_value(&r.prompt);
        self.completion.append_value(&r.completion);
        // Every node's name once, then nodes and their parents by name.
        let needed = p.needed();
        self.names.clear();
        self.name_ends.clear();
        for n in needed {
            write_name(&mut self.names, t, p, n.q);
            self.name_ends.push(self.names.len());
        }
        for (i, n) in needed.iter().enumerate() {
            self.node_name
                .append_value(nth_name(&self.names, &self.name_ends, i));
            self.node_value.append_value(n.value);
            for &pi in n.parents() {
                self.node_parents.values().append_value(nth_name(
                    &self.names,
                    &self.name_ends,
                    pi as usize,
                ));
            }
            self.node_parents.append(true);
            self.node_kind.append_value(NodeKind::of(p, i).as_str());
        }
        let last = *self.graph_offsets.last().expect("offsets start at 0");
        self.graph_offsets.push(last + needed.len() as i32);
        self.n_nodes.append_value(needed.len() as i32);
        self.n_distractors.append_value(p.n_distractors() as i32);
        self.depth.append_value(p.depth() as i32);
        self.rows += 1;
    }

    /// Take the accumulated rows as a batch; the builder is empty afterwards.
    pub fn finish(&mut self) -> RecordBatch {
        let nodes = StructArray::try_new(
            node_fields(),
            vec![
                Arc::new(self.node_name.finish()) as ArrayRef,
                Arc::new(self.node_value.finish()),
                Arc::new(self.node_parents.finish()),
                Arc::new(self.node_kind.finish()),
            ],
            None,
        )
        .expect("node columns match node_fields");
        let offsets = std::mem::replace(&mut self.graph_offsets, vec![0]);
        let graph = ListArray::try_new(
            Arc::new(Field::new("item", DataType::Struct(node_fields()), false)),
            OffsetBuffer::new(offsets.into()),
            Arc::new(nodes) as ArrayRef,
            None,
        )
        .expect("graph offsets are monotone");
        debug_assert_eq!(graph.len(), self.rows);
        self.rows = 0;
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(self.id.finish()),
                Arc::new(self.split.finish()),
                Arc::new(self.op.finish()),
                Arc::new(self.template.finish()),
                Arc::new(self.mode.finish()),
                Arc::new(self.problem.finish()),
                Arc::new(self.question.finish()),
                Arc::new(self.solution.finish()),
                Arc::new(self.answer.finish()),
                Arc::new(self.prompt.finish()),
                Arc::new(self.completion.finish()),
                Arc::new(graph),
                Arc::new(self.n_nodes.finish()),
                Arc::new(self.n_distractors.finish()),
                Arc::new(self.depth.finish()),
            ],
        )
        .expect("columns match schema()")
    }
}
