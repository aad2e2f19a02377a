//! `samples.parquet` of `dagmath eval`: one row per sampled completion, with the keys its
//! problem is grouped by, so a run's raw completions can be audited or studied again without
//! sampling them anew.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringBuilder, UInt32Builder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::reader::{Columns, ReadError};

/// The file's name in an evaluation folder.
pub const FILE: &str = "samples.parquet";

/// One sampled completion (borrowed when written, owned when read back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleRow<'a> {
    pub id: Cow<'a, str>,
    pub split: Cow<'a, str>,
    pub op: u32,
    pub template: Cow<'a, str>,
    /// The sample's index among its problem's samples.
    pub sample: u32,
    pub completion: Cow<'a, str>,
    pub new_tokens: u32,
    /// How the completion ended: `stop`, `eos` or `length`.
    pub finish: Cow<'a, str>,
}

/// The Arrow schema of `samples.parquet`.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("split", DataType::Utf8, false),
        Field::new("op", DataType::UInt32, false),
        Field::new("template", DataType::Utf8, false),
        Field::new("sample", DataType::UInt32, false),
        Field::new("completion", DataType::Utf8, false),
        Field::new("new_tokens", DataType::UInt32, false),
        Field::new("finish", DataType::Utf8, false),
    ]))
}

/// Builds one batch of [`schema`] a row at a time.
#[derive(Default)]
pub struct SamplesBuilder {
    id: StringBuilder,
    split: StringBuilder,
    op: UInt32Builder,
    template: StringBuilder,
    sample: UInt32Builder,
    completion: StringBuilder,
    new_tokens: UInt32Builder,
    finish: StringBuilder,
}

impl SamplesBuilder {
    pub fn new() -> SamplesBuilder {
        SamplesBuilder::default()
    }

    pub fn push(&mut self, r: &SampleRow) {
        self.id.append_value(&r.id);
        self.split.append_value(&r.split);
        self.op.append_value(r.op);
        self.template.append_value(&r.template);
        self.sample.append_value(r.sample);
        self.completion.append_value(&r.completion);
        self.new_tokens.append_value(r.new_tokens);
        self.finish.append_value(&r.finish);
    }

    pub fn finish(mut self) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            finish_columns![
                self.id,
                self.split,
                self.op,
                self.template,
                self.sample,
                self.completion,
                self.new_tokens,
                self.finish
            ],
        )
        .expect("columns match the schema")
    }
}

/// The rows of one batch read from `path` (named in errors).
pub fn decode(path: &Path, b: &RecordBatch) -> Result<Vec<SampleRow<'static>>, ReadError> {
    let c = Columns::new(path, b);
    let (id, split, template) = (c.text("id")?, c.text("split")?, c.text("template")?);
    let (completion, finish) = (c.text("completion")?, c.text("finish")?);
    let (op, sample, new_tokens) = (
        c.uint32("op")?,
        c.uint32("sample")?,
        c.uint32("new_tokens")?,
    );
    let owned = |a: &arrow::array::StringArray, r: usize| Cow::Owned(a.value(r).to_string());
    Ok((0..b.num_rows())
        .map(|r| SampleRow {
            id: owned(id, r),
            split: owned(split, r),
            op: op.value(r),
            template: owned(template, r),
            sample: sample.value(r),
            completion: owned(completion, r),
            new_tokens: new_tokens.value(r),
            finish: owned(finish, r),
        })
        .collect())
}

/// Every row of the `samples.parquet` at `path`.
pub fn read_samples(path: &Path) -> Result<Vec<SampleRow<'static>>, ReadError> {
    super::reader::read_table(path, decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_round_trip_in_memory() {
        let rows: Vec<SampleRow> = (0..5u32)
            .map(|i| SampleRow {
                id: format!("id{}", i / 2).into(),
                split: "test_id".into(),
                op: 3 + i,
                template: "zoo".into(),
                sample: i % 2,
                completion: format!("<answer>{i}</answer>").into(),
                new_tokens: 7 * i,
                finish: ["stop", "eos", "length"][i as usize % 3].into(),
            })
            .collect();
        let mut b = SamplesBuilder::new();
        rows.iter().for_each(|r| b.push(r));
        let batch = b.finish();
        assert_eq!(batch.schema(), schema());
        assert_eq!(crate::dataset::shard::round_trip(&batch, decode), rows);
    }
}
