//! `verdicts.parquet`: one row per verified sample, written by `dagmath audit` and `dagmath
//! eval`. The table's schema and its row type live here, beside the other formats, so the
//! audit computes verdicts and this module alone decides how they are stored.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, RecordBatch, StringBuilder,
    UInt32Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::Serialize;

use crate::composer::Mode;
use crate::graph::GoldKeys;
use crate::trace::Rewards;

/// The verdict of one sample, flattened for a table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleVerdict {
    /// Index into the gold items.
    pub gold: usize,
    pub sample: u32,
    pub verified_correct: bool,
    pub answer_correct: bool,
    pub process_acc: f64,
    /// The answer read from the completion (`7`, `7/2`), if any.
    pub answer: Option<String>,
    pub nodes: u32,
    pub correct: u32,
    pub flawed: u32,
    pub wrong_value: u32,
    pub wrong_parents: u32,
    pub missing: u32,
    pub extra: u32,
    pub issues: u32,
    /// Wrong results, wrong substitutions and impossible arithmetic.
    pub arithmetic_errors: u32,
    /// The first issue, e.g. `WrongResult at byte 120`.
    pub first_issue: Option<String>,
    #[serde(skip)]
    pub rewards: Rewards,
}

impl SampleVerdict {
    /// The node counts, in the order of [`COUNT_COLUMNS`].
    fn counts(&self) -> [u32; 9] {
        [
            self.nodes,
            self.correct,
            self.flawed,
            self.wrong_value,
            self.wrong_parents,
            self.missing,
            self.extra,
            self.issues,
            self.arithmetic_errors,
        ]
    }
}

/// The Int32 count columns, in the order of [`SampleVerdict::counts`].
const COUNT_COLUMNS: [&str; 9] = [
    "n_nodes",
    "n_correct",
    "n_flawed",
    "n_wrong_value",
    "n_wrong_parents",
    "n_missing",
    "n_extra",
    "n_issues",
    "n_arithmetic_errors",
];

/// The schema of `verdicts.parquet`: the gold keys, the verdict, the node counts and one
/// `reward_<name>` column per reward.
pub fn schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("split", DataType::Utf8, false),
        Field::new("op", DataType::Int32, false),
        Field::new("template", DataType::Utf8, false),
        Field::new("mode", DataType::Utf8, false),
        Field::new("sample", DataType::UInt32, false),
        Field::new("verified_correct", DataType::Boolean, false),
        Field::new("answer_correct", DataType::Boolean, false),
        Field::new("process_acc", DataType::Float64, false),
        Field::new("answer", DataType::Utf8, true),
        Field::new("first_issue", DataType::Utf8, true),
    ];
    fields.extend(
        COUNT_COLUMNS
            .iter()
            .map(|name| Field::new(*name, DataType::Int32, false)),
    );
    fields.extend(
        Rewards::default()
            .named()
            .iter()
            .map(|(name, _)| Field::new(format!("reward_{name}"), DataType::Float64, false)),
    );
    Arc::new(Schema::new(fields))
}

/// `verdicts` as rows of [`schema`], with each sample's keys looked up in `gold`.
pub fn batch<K: GoldKeys + ?Sized>(gold: &K, verdicts: &[SampleVerdict]) -> RecordBatch {
    let n = verdicts.len();
    let mut id = StringBuilder::with_capacity(n, 16 * n);
    let mut split = StringBuilder::with_capacity(n, 8 * n);
    let mut op = Int32Builder::with_capacity(n);
    let mut template = StringBuilder::with_capacity(n, 8 * n);
    let mut mode = StringBuilder::with_capacity(n, 7 * n);
    let mut sample = UInt32Builder::with_capacity(n);
    let mut vc = BooleanBuilder::with_capacity(n);
    let mut ac = BooleanBuilder::with_capacity(n);
    let mut pa = Float64Builder::with_capacity(n);
    let mut answer = StringBuilder::new();
    let mut first = StringBuilder::new();
    let mut counts: Vec<Int32Builder> = (0..COUNT_COLUMNS.len())
        .map(|_| Int32Builder::with_capacity(n))
        .collect();
    let mut rewards: Vec<Float64Builder> = (0..Rewards::default().named().len())
        .map(|_| Float64Builder::with_capacity(n))
        .collect();
    for v in verdicts {
        let g = gold.key(v.gold);
        id.append_value(g.id);
        split.append_value(g.split);
        op.append_value(g.op as i32);
        template.append_value(g.template);
        mode.append_value(match g.mode {
            Mode::Forward => "forward",
            Mode::Reverse => "reverse",
        });
        sample.append_value(v.sample);
        vc.append_value(v.verified_correct);
        ac.append_value(v.answer_correct);
        pa.append_value(v.process_acc);
        answer.append_option(v.answer.as_deref());
        first.append_option(v.first_issue.as_deref());
        for (b, x) in counts.iter_mut().zip(v.counts()) {
            b.append_value(x as i32);
        }
        for (b, (_, r)) in rewards.iter_mut().zip(v.rewards.named()) {
            b.append_value(r);
        }
    }
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(split.finish()),
        Arc::new(op.finish()),
        Arc::new(template.finish()),
        Arc::new(mode.finish()),
        Arc::new(sample.finish()),
        Arc::new(vc.finish()),
        Arc::new(ac.finish()),
        Arc::new(pa.finish()),
        Arc::new(answer.finish()),
        Arc::new(first.finish()),
    ];
    cols.extend(counts.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    cols.extend(rewards.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    RecordBatch::try_new(schema(), cols).expect("columns match the schema")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::KeyTable;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::arrow::ArrowWriter;

    fn verdict(gold: usize, sample: u32, ok: bool) -> SampleVerdict {
        SampleVerdict {
            gold,
            sample,
            verified_correct: ok,
            answer_correct: ok,
            process_acc: if ok { 1.0 } else { 0.5 },
            answer: ok.then(|| "7/2".to_string()),
            nodes: 4,
            correct: if ok { 4 } else { 2 },
            flawed: 0,
            wrong_value: (!ok) as u32,
            wrong_parents: 0,
            missing: (!ok) as u32,
            extra: 0,
            issues: (!ok) as u32 * 2,
            arithmetic_errors: (!ok) as u32,
            first_issue: (!ok).then(|| "WrongResult at byte 12".to_string()),
            rewards: Rewards {
                outcome: ok as u8 as f64,
                process: if ok { 1.0 } else { 0.5 },
                mixed: 0.3,
                strict: ok as u8 as f64,
                penalty: 0.1,
            },
        }
    }

    /// Write to a file, read back: the same rows under the same schema.
    #[test]
    fn verdicts_round_trip_through_parquet() {
        let mut gold = KeyTable::default();
        gold.push("a", "train", 3, "zoo", Mode::Forward);
        gold.push("b", "ood_hard", 12, "school", Mode::Reverse);
        let rows = batch(&gold, &[verdict(0, 0, true), verdict(1, 3, false)]);
        assert_eq!(rows.schema(), schema());
        let file = tempfile::tempfile().unwrap();
        let mut w = ArrowWriter::try_new(file.try_clone().unwrap(), schema(), None).unwrap();
        w.write(&rows).unwrap();
        w.close().unwrap();
        let back: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, vec![rows]);
    }
}
