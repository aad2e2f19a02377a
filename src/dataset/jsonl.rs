//! Line-delimited JSON input (predictions, reference-format gold): each non-blank line is one
//! object; errors name the file and the 1-based line.

use std::io::BufRead;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {problem}")]
    Line {
        path: PathBuf,
        line: usize,
        problem: RecordError,
    },
}

/// What is wrong with one record (the file and line are added by [`JsonlError::Line`]).
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("missing field `{0}`")]
    Missing(&'static str),
    #[error("missing string field `{0}`")]
    MissingText(&'static str),
    #[error("missing field `completion` (or `response` / `output`)")]
    MissingCompletion,
    #[error("the completion must be a string, got {got}")]
    CompletionNotText { got: serde_json::Value },
    #[error("field `{field}` must be {expected}, got {got}")]
    Type {
        field: &'static str,
        expected: &'static str,
        got: serde_json::Value,
    },
    #[error("field `{field}` is not a non-negative integer: {got}")]
    NotCount {
        field: &'static str,
        got: serde_json::Value,
    },
    #[error("gold trace: {0}")]
    GoldTrace(#[from] super::reference::GoldTraceError),
}

/// One parsed line: its 1-based number, its 0-based index among records, and the object.
pub struct Record {
    pub line: usize,
    pub index: usize,
    pub value: serde_json::Value,
}

/// Call `f` on every record of `path`; `f`'s error is reported at that line.
pub fn for_each<F>(path: &Path, mut f: F) -> Result<(), JsonlError>
where
    F: FnMut(&Record) -> Result<(), RecordError>,
{
    let io = |source| JsonlError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut index = 0;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let at = |problem: RecordError| JsonlError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            problem,
        };
        let value = serde_json::from_str(&line).map_err(|e| at(RecordError::Json(e)))?;
        f(&Record {
            line: i + 1,
            index,
            value,
        })
        .map_err(at)?;
        index += 1;
    }
    Ok(())
}

/// The record's `id` as a string (strings and integers accepted); `None` when absent.
pub fn id(v: &serde_json::Value) -> Result<Option<String>, RecordError> {
    match v.get("id") {
        None => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(serde_json::Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string())),
        Some(o) => Err(RecordError::Type {
            field: "id",
            expected: "a string or integer",
            got: o.clone(),
        }),
    }
}
