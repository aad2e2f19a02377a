//! Reading a generated dataset back: the manifest, the shards of each split, and rows with
//! their gold graphs.

use std::path::{Path, PathBuf};

use arrow::array::{
    ArrayRef, AsArray, Float64Array, Int32Array, Int64Array, ListArray, RecordBatch, StringArray,
    UInt32Array,
};
use arrow::datatypes::{Float64Type, Int32Type, Int64Type, UInt32Type};
use serde::Deserialize;

use super::shard::{read_batches, read_column_rows, read_columns, row_group_rows, ShardError};
use crate::composer::Mode;
use crate::graph::GoldGraph;

use super::gold_graph::GraphColumn;
use super::gold_graph::GraphError;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: not a complete dagmath dataset (no readable manifest.json: {problem})")]
    NoManifest { path: PathBuf, problem: String },
    #[error("{path}: column `{column}`: {problem}")]
    Column {
        path: PathBuf,
        column: String,
        problem: String,
    },
    #[error("{path}: expected {expected} rows from row {from}, read {read}")]
    Short {
        path: PathBuf,
        from: usize,
        expected: usize,
        read: usize,
    },
    #[error("{path}: column `graph`: {problem}")]
    Graph { path: PathBuf, problem: GraphError },
    #[error(transparent)]
    Shard(#[from] ShardError),
}

#[derive(Debug, Clone, Deserialize)]
pub struct ManifestShard {
    pub file: String,
    pub rows: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ManifestSplit {
    pub name: String,
    pub rows: u64,
    /// Tokens of the rows' training sequences (absent from manifests before token budgets).
    #[serde(default)]
    pub tokens: u64,
    /// The split's token budget, if it had one.
    #[serde(default)]
    pub token_budget: Option<u64>,
    pub held_out: bool,
    pub shards: Vec<ManifestShard>,
    pub op_hist: std::collections::BTreeMap<u32, u64>,
    pub template_hist: std::collections::BTreeMap<String, u64>,
    pub mode_hist: std::collections::BTreeMap<String, u64>,
}

/// The parts of `manifest.json` a reader needs.
#[derive(Debug, Clone, Deserialize)]
pub struct ManifestView {
    pub dagmath_version: String,
    pub recipe_sha256: String,
    pub seed: u64,
    /// The format of the gold traces; `full` when absent (older manifests, and the default).
    #[serde(default)]
    pub trace_format: crate::trace::TraceFormat,
    pub splits: Vec<ManifestSplit>,
}

/// An opened dataset directory.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub root: PathBuf,
    pub manifest: ManifestView,
}

/// One row of a shard.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: String,
    pub split: String,
    pub op: u32,
    pub template: String,
    pub mode: Mode,
    pub problem: String,
    pub question: String,
    pub solution: String,
    pub answer: i64,
    pub prompt: String,
    pub completion: String,
    pub graph: GoldGraph,
    pub n_distractors: u32,
    pub depth: u32,
}

impl Dataset {
    pub fn open(root: &Path) -> Result<Dataset, ReadError> {
        let path = root.join("manifest.json");
        let no = |problem: String| ReadError::NoManifest {
            path: root.to_path_buf(),
            problem,
        };
        let bytes = std::fs::read(&path).map_err(|e| no(e.to_string()))?;
        let manifest: ManifestView =
            serde_json::from_slice(&bytes).map_err(|e| no(e.to_string()))?;
        Ok(Dataset {
            root: root.to_path_buf(),
            manifest,
        })
    }

    /// Paths of a split's shards, in order.
    pub fn shard_paths(&self, split: &str) -> Vec<PathBuf> {
        self.manifest
            .splits
            .iter()
            .filter(|s| s.name == split)
            .flat_map(|s| s.shards.iter().map(|sh| self.root.join(&sh.file)))
            .collect()
    }

    /// Every row of a split (loads the whole split; use [`read_rows`] per shard for streaming).
    pub fn read_split(&self, split: &str) -> Result<Vec<Row>, ReadError> {
        let mut out = Vec::new();
        for p in self.shard_paths(split) {
            out.extend(read_rows(&p)?);
        }
        Ok(out)
    }
}

/// Every row of the table at `path`, decoded a batch at a time by `decode` (the readers of
/// the small tables beside a dataset: samples, selections).
pub fn read_table<T>(
    path: &Path,
    decode: impl Fn(&Path, &RecordBatch) -> Result<Vec<T>, ReadError>,
) -> Result<Vec<T>, ReadError> {
    let mut out = Vec::new();
    for b in super::shard::read_batch_stream(path)? {
        out.extend(decode(path, &b?)?);
    }
    Ok(out)
}

/// Read and decode every row of one shard.
pub fn read_rows(path: &Path) -> Result<Vec<Row>, ReadError> {
    let mut out = Vec::new();
    for b in read_batches(path)? {
        decode_batch(path, &b, &mut out)?;
    }
    Ok(out)
}

/// What training reads of a row: the keys a data mixture filters on and the text of its
/// sequence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainingRow<'a> {
    pub op: i32,
    pub template: &'a str,
    pub prompt: &'a str,
    pub completion: &'a str,
}

/// Call `f` on rows `from .. from + take` of the shard at `path`, in order, streaming one
/// batch at a time and reading only the columns a [`TrainingRow`] needs; the rows before
/// `from` are skipped without being decoded. Fewer rows than asked is an error naming the
/// shard. `f` may stop the stream with its own error.
pub fn for_each_training_row<E: From<ReadError>>(
    path: &Path,
    from: usize,
    take: usize,
    mut f: impl FnMut(TrainingRow) -> Result<(), E>,
) -> Result<(), E> {
    let batches = read_column_rows(
        path,
        &["op", "template", "prompt", "completion"],
        from,
        take,
    )
    .map_err(ReadError::from)?;
    let mut read = 0;
    for b in batches {
        let b = b.map_err(ReadError::from)?;
        let c = Columns::new(path, &b);
        let op = c.int32("op")?;
        let (template, prompt, completion) = (
            c.text("template")?,
            c.text("prompt")?,
            c.text("completion")?,
        );
        for r in 0..b.num_rows() {
            f(TrainingRow {
                op: op.value(r),
                template: template.value(r),
                prompt: prompt.value(r),
                completion: completion.value(r),
            })?;
        }
        read += b.num_rows();
    }
    if read != take {
        return Err(ReadError::Short {
            path: path.to_path_buf(),
            from,
            expected: take,
            read,
        }
        .into());
    }
    Ok(())
}

/// The columns that key a gold row: what results are grouped by.
struct KeyColumns<'a> {
    id: &'a StringArray,
    split: &'a StringArray,
    op: &'a Int32Array,
    template: &'a StringArray,
    mode: &'a StringArray,
}

/// A batch's columns by name and type, with errors that name the file and the column; every
/// table reader of `dataset` goes through it.
pub(crate) struct Columns<'a> {
    path: &'a Path,
    b: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    pub(crate) fn new(path: &'a Path, b: &'a RecordBatch) -> Columns<'a> {
        Columns { path, b }
    }

    pub(crate) fn err(&self, column: &str, problem: &str) -> ReadError {
        ReadError::Column {
            path: self.path.to_path_buf(),
            column: column.into(),
            problem: problem.into(),
        }
    }

    fn col(&self, name: &str) -> Result<&'a ArrayRef, ReadError> {
        self.b
            .column_by_name(name)
            .ok_or_else(|| self.err(name, "missing"))
    }

    pub(crate) fn text(&self, name: &str) -> Result<&'a StringArray, ReadError> {
        self.col(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| self.err(name, "not a string column"))
    }

    /// Column `name` as a primitive array of `T`; `problem` is the error when it is not.
    fn primitive<T: arrow::datatypes::ArrowPrimitiveType>(
        &self,
        name: &str,
        problem: &str,
    ) -> Result<&'a arrow::array::PrimitiveArray<T>, ReadError> {
        self.col(name)?
            .as_primitive_opt::<T>()
            .ok_or_else(|| self.err(name, problem))
    }

    pub(crate) fn uint32(&self, name: &str) -> Result<&'a UInt32Array, ReadError> {
        self.primitive::<UInt32Type>(name, "not a uint32 column")
    }

    pub(crate) fn float64(&self, name: &str) -> Result<&'a Float64Array, ReadError> {
        self.primitive::<Float64Type>(name, "not a float64 column")
    }

    pub(crate) fn int32(&self, name: &str) -> Result<&'a Int32Array, ReadError> {
        self.primitive::<Int32Type>(name, "not an int32 column")
    }

    pub(crate) fn int64(&self, name: &str) -> Result<&'a Int64Array, ReadError> {
        self.primitive::<Int64Type>(name, "not an int64 column")
    }

    pub(crate) fn list(&self, name: &str) -> Result<&'a ListArray, ReadError> {
        self.col(name)?
            .as_list_opt::<i32>()
            .ok_or_else(|| self.err(name, "not a list column"))
    }

    pub(crate) fn graph_err(&self, problem: GraphError) -> ReadError {
        ReadError::Graph {
            path: self.path.to_path_buf(),
            problem,
        }
    }

    /// The key columns of a gold row.
    fn keys(&self) -> Result<KeyColumns<'a>, ReadError> {
        Ok(KeyColumns {
            id: self.text("id")?,
            split: self.text("split")?,
            op: self.int32("op")?,
            template: self.text("template")?,
            mode: self.text("mode")?,
        })
    }

    /// Row `r` of the `mode` column `modes`, parsed.
    fn mode(&self, modes: &StringArray, r: usize) -> Result<Mode, ReadError> {
        let m = modes.value(r);
        Mode::parse(m).ok_or_else(|| self.err("mode", &format!("unknown mode `{m}`")))
    }
}

fn decode_batch(path: &Path, b: &RecordBatch, out: &mut Vec<Row>) -> Result<(), ReadError> {
    let c = Columns { path, b };
    let (text, int32) = (|n: &str| c.text(n), |n: &str| c.int32(n));
    let (id, split, template, mode) = (
        text("id")?,
        text("split")?,
        text("template")?,
        text("mode")?,
    );
    let (problem, question, solution) = (text("problem")?, text("question")?, text("solution")?);
    let (prompt, completion) = (text("prompt")?, text("completion")?);
    let answer = c.int64("answer")?;
    let (op, n_distractors, depth) = (int32("op")?, int32("n_distractors")?, int32("depth")?);
    let graph = GraphColumn::new(c.list("graph")?).map_err(|p| c.graph_err(p))?;
    for r in 0..b.num_rows() {
        let mode = c.mode(mode, r)?;
        let g = graph
            .decode(r, mode, answer.value(r))
            .map_err(|p| c.graph_err(p))?;
        out.push(Row {
            id: id.value(r).to_string(),
            split: split.value(r).to_string(),
            op: op.value(r) as u32,
            template: template.value(r).to_string(),
            mode,
            problem: problem.value(r).to_string(),
            question: question.value(r).to_string(),
            solution: solution.value(r).to_string(),
            answer: answer.value(r),
            prompt: prompt.value(r).to_string(),
            completion: completion.value(r).to_string(),
            graph: g,
            n_distractors: n_distractors.value(r) as u32,
            depth: depth.value(r) as u32,
        });
    }
    Ok(())
}

/// What an audit needs of a shard's row: the keys results are grouped by and the gold graph
/// (and, on request, the gold completion).
#[derive(Debug, Clone, PartialEq)]
pub struct GoldRow {
    pub id: String,
    pub split: String,
    pub op: u32,
    pub template: String,
    pub graph: GoldGraph,
    /// Empty unless asked for.
    pub completion: String,
}

/// Call `f` on every row of the shard at `path`, reading only the columns a [`GoldRow`] needs
/// (the problem and prompt text are never decompressed), one batch at a time.
pub fn for_each_gold_row(
    path: &Path,
    with_completion: bool,
    mut f: impl FnMut(GoldRow),
) -> Result<(), ReadError> {
    let mut names = vec!["id", "split", "op", "template", "mode", "answer", "graph"];
    if with_completion {
        names.push("completion");
    }
    for b in read_columns(path, &names)? {
        let b = b?;
        let c = Columns { path, b: &b };
        let k = c.keys()?;
        let completion = if with_completion {
            Some(c.text("completion")?)
        } else {
            None
        };
        let answer = c.int64("answer")?;
        let graph = GraphColumn::new(c.list("graph")?).map_err(|p| c.graph_err(p))?;
        for r in 0..b.num_rows() {
            let mode = c.mode(k.mode, r)?;
            let g = graph
                .decode(r, mode, answer.value(r))
                .map_err(|p| c.graph_err(p))?;
            f(GoldRow {
                id: k.id.value(r).to_string(),
                split: k.split.value(r).to_string(),
                op: k.op.value(r) as u32,
                template: k.template.value(r).to_string(),
                graph: g,
                completion: completion.map_or_else(String::new, |c| c.value(r).to_string()),
            });
        }
    }
    Ok(())
}

/// Call `f(row_group, id, split, op, template, mode)` on every row of the shard at `path`,
/// reading only those columns: the keys an audit keeps while it streams the graphs.
pub fn for_each_gold_key(
    path: &Path,
    mut f: impl FnMut(usize, &str, &str, u32, &str, Mode),
) -> Result<(), ReadError> {
    let sizes = row_group_rows(path)?;
    let mut group = 0;
    let mut left = sizes.first().copied().unwrap_or(0);
    for b in read_columns(path, &["id", "split", "op", "template", "mode"])? {
        let b = b?;
        let c = Columns { path, b: &b };
        let k = c.keys()?;
        for r in 0..b.num_rows() {
            while left == 0 && group + 1 < sizes.len() {
                group += 1;
                left = sizes[group];
            }
            left = left.saturating_sub(1);
            let m = c.mode(k.mode, r)?;
            f(
                group,
                k.id.value(r),
                k.split.value(r),
                k.op.value(r) as u32,
                k.template.value(r),
                m,
            );
        }
    }
    Ok(())
}

impl Row {
    /// The row as a gold problem (keys and graph) and its prompt, the two things evaluation
    /// and RL take from a dataset.
    pub fn into_gold(self) -> (crate::graph::GoldItem, String) {
        let gold = crate::graph::GoldItem {
            id: self.id,
            split: self.split,
            op: self.op,
            template: self.template,
            graph: self.graph,
        };
        (gold, self.prompt)
    }
}
