//! Model predictions to audit: JSONL or Parquet rows with an `id` and the completion text in
//! `completion`, `response` or `output`; any number of samples per id (numbered in file order
//! unless a `sample` field is given).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type, UInt32Type};

use super::jsonl::{self, JsonlError};
use super::shard::{read_batches, ShardError};

/// Column / field names accepted for the completion text, in order of preference.
pub const TEXT_FIELDS: [&str; 3] = ["completion", "response", "output"];

#[derive(Debug, thiserror::Error)]
pub enum PredictionError {
    #[error(transparent)]
    Jsonl(#[from] JsonlError),
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },
    #[error(transparent)]
    Shard(#[from] ShardError),
}

/// One sampled completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prediction {
    pub id: String,
    pub sample: u32,
    pub completion: String,
}

/// Read predictions from `.jsonl` / `.json` (one object per line) or `.parquet`.
pub fn read_predictions(path: &Path) -> Result<Vec<Prediction>, PredictionError> {
    let mut preds = match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => read_parquet(path)?,
        _ => read_jsonl(path)?,
    };
    // Number samples per id in file order where the file gave none.
    let mut next: HashMap<String, u32> = HashMap::new();
    for p in &mut preds {
        let n = next.entry(p.id.clone()).or_insert(0);
        if p.sample == u32::MAX {
            p.sample = *n;
        }
        *n = (*n).max(p.sample.saturating_add(1));
    }
    Ok(preds)
}

fn read_jsonl(path: &Path) -> Result<Vec<Prediction>, PredictionError> {
    let mut out = Vec::new();
    jsonl::for_each(path, |r| {
        let v = &r.value;
        let id = jsonl::id(v)?.ok_or("missing field `id`")?;
        let text = TEXT_FIELDS
            .iter()
            .find_map(|f| v.get(*f))
            .ok_or("missing field `completion` (or `response` / `output`)")?;
        let completion = text
            .as_str()
            .ok_or_else(|| format!("the completion must be a string, got {text}"))?
            .to_string();
        let sample = match v.get("sample") {
            None => u32::MAX,
            Some(s) => s.as_u64().filter(|&s| s < u32::MAX as u64).ok_or_else(|| {
                format!("field `sample` must be a small non-negative integer, got {s}")
            })? as u32,
        };
        out.push(Prediction {
            id,
            sample,
            completion,
        });
        Ok(())
    })?;
    Ok(out)
}

fn read_parquet(path: &Path) -> Result<Vec<Prediction>, PredictionError> {
    let mut out = Vec::new();
    let file_err = |problem: String| PredictionError::File {
        path: path.to_path_buf(),
        problem,
    };
    for b in read_batches(path)? {
        let id_col = b
            .column_by_name("id")
            .ok_or_else(|| file_err("missing column `id`".into()))?;
        let text_col = TEXT_FIELDS
            .iter()
            .find_map(|f| b.column_by_name(f))
            .ok_or_else(|| {
                file_err("missing column `completion` (or `response` / `output`)".into())
            })?;
        let texts = text_col.as_string_opt::<i32>().ok_or_else(|| {
            file_err(format!(
                "the completion column is {}, not a string",
                text_col.data_type()
            ))
        })?;
        let ids: Vec<String> = match id_col.data_type() {
            DataType::Utf8 => {
                let a = id_col.as_string::<i32>();
                (0..a.len()).map(|i| a.value(i).to_string()).collect()
            }
            DataType::Int64 => {
                let a = id_col.as_primitive::<Int64Type>();
                (0..a.len()).map(|i| a.value(i).to_string()).collect()
            }
            t => {
                return Err(file_err(format!(
                    "column `id` is {t}; expected string or int64"
                )))
            }
        };
        let samples = match b.column_by_name("sample") {
            None => None,
            Some(c) => Some(
                c.as_primitive_opt::<UInt32Type>()
                    .map(|a| (0..a.len()).map(|i| a.value(i)).collect::<Vec<_>>())
                    .or_else(|| {
                        c.as_primitive_opt::<Int64Type>().map(|a| {
                            (0..a.len())
                                .map(|i| a.value(i).clamp(0, u32::MAX as i64 - 1) as u32)
                                .collect()
                        })
                    })
                    .ok_or_else(|| {
                        file_err(format!(
                            "column `sample` is {}; expected an integer",
                            c.data_type()
                        ))
                    })?,
            ),
        };
        for (i, id) in ids.into_iter().enumerate() {
            if texts.is_null(i) {
                return Err(file_err(format!(
                    "row with id {id}: the completion is null"
                )));
            }
            out.push(Prediction {
                id,
                sample: samples.as_ref().map_or(u32::MAX, |s| s[i]),
                completion: texts.value(i).to_string(),
            });
        }
    }
    Ok(out)
}
