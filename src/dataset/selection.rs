//! `selection.parquet` of `dagmath select`: every problem tried with its pass rate under the
//! checkpoint, beside the selected dataset, so the band can be audited or moved afterwards.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Float64Builder, RecordBatch, StringBuilder, UInt32Builder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::reader::{Columns, ReadError};

/// The file's name in a selected dataset's folder.
pub const FILE: &str = "selection.parquet";

/// One problem tried (borrowed when written, owned when read back).
#[derive(Debug, Clone, PartialEq)]
pub struct SelectionRow<'a> {
    pub id: Cow<'a, str>,
    pub split: Cow<'a, str>,
    pub op: u32,
    /// Share of its samples that passed.
    pub pass_rate: f64,
}

/// The Arrow schema of `selection.parquet`.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("split", DataType::Utf8, false),
        Field::new("op", DataType::UInt32, false),
        Field::new("pass_rate", DataType::Float64, false),
    ]))
}

/// Builds one batch of [`schema`] a row at a time.
#[derive(Default)]
pub struct SelectionBuilder {
    id: StringBuilder,
    split: StringBuilder,
    op: UInt32Builder,
    pass_rate: Float64Builder,
}

impl SelectionBuilder {
    pub fn new() -> SelectionBuilder {
        SelectionBuilder::default()
    }

    pub fn push(&mut self, r: &SelectionRow) {
        self.id.append_value(&r.id);
        self.split.append_value(&r.split);
        self.op.append_value(r.op);
        self.pass_rate.append_value(r.pass_rate);
    }

    pub fn finish(mut self) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            finish_columns![self.id, self.split, self.op, self.pass_rate],
        )
        .expect("columns match the schema")
    }
}

/// The rows of one batch read from `path` (named in errors).
pub fn decode(path: &Path, b: &RecordBatch) -> Result<Vec<SelectionRow<'static>>, ReadError> {
    let c = Columns::new(path, b);
    let (id, split) = (c.text("id")?, c.text("split")?);
    let (op, pass_rate) = (c.uint32("op")?, c.float64("pass_rate")?);
    Ok((0..b.num_rows())
        .map(|r| SelectionRow {
            id: Cow::Owned(id.value(r).to_string()),
            split: Cow::Owned(split.value(r).to_string()),
            op: op.value(r),
            pass_rate: pass_rate.value(r),
        })
        .collect())
}

/// Every row of the `selection.parquet` at `path`.
pub fn read_selection(path: &Path) -> Result<Vec<SelectionRow<'static>>, ReadError> {
    super::reader::read_table(path, decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_round_trip_in_memory() {
        let rows: Vec<SelectionRow> = (0..6u32)
            .map(|i| SelectionRow {
                id: format!("id{i}").into(),
                split: if i < 3 { "pool" } else { "rl_pool" }.into(),
                op: 1 + i,
                pass_rate: i as f64 / 8.0,
            })
            .collect();
        let mut b = SelectionBuilder::new();
        rows.iter().for_each(|r| b.push(r));
        let batch = b.finish();
        assert_eq!(batch.schema(), schema());
        assert_eq!(crate::dataset::shard::round_trip(&batch, decode), rows);
    }
}
