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
        problem: String,
    },
}

/// One parsed line: its 1-based number, its 0-based index among records, and the object.
pub struct Record {
    pub line: usize,
    pub index: usize,
    pub value: serde_json::Value,
}

/// Call `f` on every record of `path`; `f`'s error message is reported at that line.
pub fn for_each<F>(path: &Path, mut f: F) -> Result<(), JsonlError>
where
    F: FnMut(&Record) -> Result<(), String>,
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
        let at = |problem: String| JsonlError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            problem,
        };
        let value = serde_json::from_str(&line).map_err(|e| at(format!("invalid JSON: {e}")))?;
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
pub fn id(v: &serde_json::Value) -> Result<Option<String>, String> {
    match v.get("id") {
        None => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(serde_json::Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string())),
        Some(o) => Err(format!("field `id` must be a string or integer, got {o}")),
    }
}
