//! Model predictions to audit: JSONL or Parquet rows with an `id` and the completion text in
//! `completion`, `response` or `output`; any number of samples per id (numbered in file order
//! unless a `sample` field is given).

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type, UInt32Type};
use rayon::prelude::*;

use super::jsonl::{self, JsonlError, RecordError};
use super::shard::{read_batch_stream, ShardError};

/// Column / field names accepted for the completion text, in order of preference.
pub const TEXT_FIELDS: [&str; 3] = ["completion", "response", "output"];

#[derive(Debug, thiserror::Error)]
pub enum PredictionError {
    #[error(transparent)]
    Jsonl(#[from] JsonlError),
    #[error("{path}: missing column `id`")]
    MissingId { path: PathBuf },
    #[error("{path}: missing column `completion` (or `response` / `output`)")]
    MissingCompletion { path: PathBuf },
    #[error("{path}: the completion column is {found}, not a string")]
    CompletionType { path: PathBuf, found: DataType },
    #[error("{path}: column `{column}` is {found}; expected {expected}")]
    ColumnType {
        path: PathBuf,
        column: &'static str,
        found: DataType,
        expected: &'static str,
    },
    #[error("{path}: row with id {id}: the completion is null")]
    NullCompletion { path: PathBuf, id: String },
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
    let mut s = PredictionStream::open(path)?;
    let mut out = Vec::new();
    while let Some(chunk) = s.next_chunk()? {
        out.extend(chunk);
    }
    Ok(out)
}

/// Lines (or Parquet rows) a [`PredictionStream`] chunk holds at most.
pub const CHUNK: usize = 8_192;

/// Predictions read a chunk at a time, so memory stays bounded whatever the file's size;
/// JSONL lines of a chunk are parsed in parallel (rayon), and samples are numbered per id in
/// file order as in [`read_predictions`].
pub struct PredictionStream {
    source: Source,
    next: HashMap<String, u32>,
}

enum Source {
    Jsonl {
        path: PathBuf,
        lines: std::io::BufReader<std::fs::File>,
        line: usize,
    },
    Parquet {
        path: PathBuf,
        batches: Box<dyn Iterator<Item = Result<arrow::array::RecordBatch, ShardError>> + Send>,
    },
}

impl PredictionStream {
    pub fn open(path: &Path) -> Result<PredictionStream, PredictionError> {
        let source = match path.extension().and_then(|e| e.to_str()) {
            Some("parquet") => Source::Parquet {
                path: path.to_path_buf(),
                batches: Box::new(read_batch_stream(path)?),
            },
            _ => {
                let f = std::fs::File::open(path).map_err(|source| JsonlError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                Source::Jsonl {
                    path: path.to_path_buf(),
                    lines: std::io::BufReader::with_capacity(1 << 20, f),
                    line: 0,
                }
            }
        };
        Ok(PredictionStream {
            source,
            next: HashMap::new(),
        })
    }

    /// The next chunk of predictions, `None` at the end of the file.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<Prediction>>, PredictionError> {
        let mut preds = match &mut self.source {
            Source::Jsonl { path, lines, line } => {
                // The chunk's lines in one buffer (no allocation per line); `spans` holds each
                // non-blank line's number and byte range.
                let mut buf = String::with_capacity(CHUNK * 1024);
                let mut spans: Vec<(usize, usize, usize)> = Vec::with_capacity(CHUNK);
                while spans.len() < CHUNK {
                    let start = buf.len();
                    let n = lines.read_line(&mut buf).map_err(|source| JsonlError::Io {
                        path: path.clone(),
                        source,
                    })?;
                    if n == 0 {
                        break;
                    }
                    *line += 1;
                    if buf[start..].trim().is_empty() {
                        buf.truncate(start);
                    } else {
                        spans.push((*line, start, buf.len()));
                    }
                }
                if spans.is_empty() {
                    return Ok(None);
                }
                let parsed: Vec<Result<Prediction, RecordError>> = spans
                    .par_iter()
                    .with_min_len(256)
                    .map(|&(_, a, b)| parse_line(&buf[a..b]))
                    .collect();
                let mut out = Vec::with_capacity(parsed.len());
                for (p, (n, _, _)) in parsed.into_iter().zip(&spans) {
                    out.push(p.map_err(|problem| JsonlError::Line {
                        path: path.clone(),
                        line: *n,
                        problem,
                    })?);
                }
                out
            }
            Source::Parquet { path, batches } => match batches.next() {
                None => return Ok(None),
                Some(b) => parquet_batch(path, &b?)?,
            },
        };
        // Number samples per id in file order where the file gave none.
        for p in &mut preds {
            let n = match self.next.get_mut(p.id.as_str()) {
                Some(n) => n,
                None => self.next.entry(p.id.clone()).or_insert(0),
            };
            if p.sample == u32::MAX {
                p.sample = *n;
            }
            *n = (*n).max(p.sample.saturating_add(1));
        }
        Ok(Some(preds))
    }
}

/// A prediction line's fields, borrowed where no escape forces a copy. Anything this does
/// not accept goes through [`parse_value`], which gives the same result or names the problem.
#[derive(serde::Deserialize)]
struct Fast<'a> {
    #[serde(borrow)]
    id: FastId<'a>,
    #[serde(borrow, default)]
    completion: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    response: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    output: Option<Cow<'a, str>>,
    #[serde(default)]
    sample: Option<u32>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum FastId<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Unsigned(u64),
    Signed(i64),
}

fn parse_line(line: &str) -> Result<Prediction, RecordError> {
    if let Ok(f) = serde_json::from_str::<Fast>(line) {
        // `Option` reads `null` as absent, where the full path calls it an error: a field
        // that came back `None` but may be in the line (even inside a string) sends the line
        // down the full path.
        let maybe = |key: &str| line.contains(key);
        let unsure = (f.completion.is_none() && maybe("\"completion\""))
            || (f.completion.is_none() && f.response.is_none() && maybe("\"response\""))
            || (f.sample.is_none() && maybe("\"sample\""));
        let text = f.completion.or(f.response).or(f.output);
        let sample = f
            .sample
            .map_or(Some(u32::MAX), |s| (s < u32::MAX).then_some(s));
        if let (false, Some(text), Some(s)) = (unsure, text, sample) {
            return Ok(Prediction {
                id: match f.id {
                    FastId::Text(s) => s.into_owned(),
                    FastId::Unsigned(n) => n.to_string(),
                    FastId::Signed(n) => n.to_string(),
                },
                sample: s,
                completion: text.into_owned(),
            });
        }
    }
    let v: serde_json::Value = serde_json::from_str(line)?;
    parse_value(&v)
}

fn parse_value(v: &serde_json::Value) -> Result<Prediction, RecordError> {
    let id = jsonl::id(v)?.ok_or(RecordError::Missing("id"))?;
    let text = TEXT_FIELDS
        .iter()
        .find_map(|f| v.get(*f))
        .ok_or(RecordError::MissingCompletion)?;
    let completion = text
        .as_str()
        .ok_or_else(|| RecordError::CompletionNotText { got: text.clone() })?
        .to_string();
    let sample = match v.get("sample") {
        None => u32::MAX,
        Some(s) => s
            .as_u64()
            .filter(|&s| s < u32::MAX as u64)
            .ok_or_else(|| RecordError::Type {
                field: "sample",
                expected: "a small non-negative integer",
                got: s.clone(),
            })? as u32,
    };
    Ok(Prediction {
        id,
        sample,
        completion,
    })
}

fn parquet_batch(
    path: &Path,
    b: &arrow::array::RecordBatch,
) -> Result<Vec<Prediction>, PredictionError> {
    let path_buf = || path.to_path_buf();
    let id_col = b
        .column_by_name("id")
        .ok_or_else(|| PredictionError::MissingId { path: path_buf() })?;
    let text_col = TEXT_FIELDS
        .iter()
        .find_map(|f| b.column_by_name(f))
        .ok_or_else(|| PredictionError::MissingCompletion { path: path_buf() })?;
    let texts = text_col
        .as_string_opt::<i32>()
        .ok_or_else(|| PredictionError::CompletionType {
            path: path_buf(),
            found: text_col.data_type().clone(),
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
            return Err(PredictionError::ColumnType {
                path: path_buf(),
                column: "id",
                found: t.clone(),
                expected: "string or int64",
            })
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
                .ok_or_else(|| PredictionError::ColumnType {
                    path: path_buf(),
                    column: "sample",
                    found: c.data_type().clone(),
                    expected: "an integer",
                })?,
        ),
    };
    let mut out = Vec::with_capacity(ids.len());
    for (i, id) in ids.into_iter().enumerate() {
        if texts.is_null(i) {
            return Err(PredictionError::NullCompletion {
                path: path_buf(),
                id,
            });
        }
        out.push(Prediction {
            id,
            sample: samples.as_ref().map_or(u32::MAX, |s| s[i]),
            completion: texts.value(i).to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The borrowed fast path and the full `Value` path agree on every line, errors included.
    #[test]
    fn fast_path_equals_the_full_path() {
        for line in [
            r#"{"id": "a", "completion": "Define x as 3.\nAnswer: 3"}"#,
            r#"{"id": 7, "response": "r", "sample": 2}"#,
            r#"{"id": -7, "output": "o"}"#,
            r#"{"id": "a", "completion": null, "response": "r"}"#,
            r#"{"id": "a", "completion": "c", "response": 3}"#,
            r#"{"id": "a", "response": null, "output": "o"}"#,
            r#"{"id": "a", "completion": "c", "sample": null}"#,
            r#"{"id": "a", "completion": "c", "sample": 4294967295}"#,
            r#"{"id": "a", "completion": "c", "sample": -1}"#,
            r#"{"id": 1.5, "completion": "c"}"#,
            r#"{"id": null, "completion": "c"}"#,
            r#"{"completion": "c"}"#,
            r#"{"id": "a"}"#,
            r#"{"id": "a", "completion": 3}"#,
            r#"{"id": "a", "completion": "c", "completion": "d"}"#,
            r#"{"id": "a", "completion": "the word \"sample\" inside"}"#,
        ] {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let text = |r: Result<Prediction, RecordError>| r.map_err(|e| e.to_string());
            assert_eq!(text(parse_line(line)), text(parse_value(&v)), "{line}");
        }
        assert!(parse_line("not json")
            .unwrap_err()
            .to_string()
            .starts_with("invalid JSON"));
    }
}
