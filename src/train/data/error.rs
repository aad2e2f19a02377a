//! Why the training data cannot be read as configured.

use std::path::PathBuf;

use crate::dataset::recipe::OpRangeError;
use crate::tokenizer::TokenizerError;

/// Why the training data cannot be read as configured; each variant names the setting,
/// split, shard or cursor position at fault.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("data: seq_len = {0} must be at least 2")]
    SeqLen(usize),
    #[error("data: shuffle_block must be positive")]
    ShuffleBlock,
    #[error("data: split \"{split}\" is not in {} (it has: {have})", dir.display())]
    UnknownSplit {
        split: String,
        dir: PathBuf,
        /// The dataset's splits, comma-separated.
        have: String,
    },
    #[error("{}: shard listed in manifest.json is missing", path.display())]
    MissingShard { path: PathBuf },
    #[error("data: splits [{splits}] of {} hold no rows", dir.display())]
    NoRows { splits: String, dir: PathBuf },
    #[error("data: data.mix[{index}].share = {share} must be positive")]
    Share { index: usize, share: f64 },
    #[error("data: data.mix[{index}].ops = \"{ops}\": {problem}")]
    Ops {
        index: usize,
        ops: String,
        problem: OpRangeError,
    },
    #[error("data: mixture entry {entry} ({filter}) matches no rows of the chosen splits")]
    NoMatch { entry: usize, filter: String },
    #[error(
        "data: every document of mixture entry {entry} ({filter}) is longer than data.seq_len + 1 = {tokens} tokens, and sft.packing = \"padded\" skips such documents: raise data.seq_len or use packing = \"packed\""
    )]
    TooLong {
        entry: usize,
        filter: String,
        tokens: usize,
    },
    #[error("data: checkpoint data cursor has {found} mixture entries, the config has {expected}")]
    CursorEntries { found: usize, expected: usize },
    #[error("data: checkpoint data cursor points at shard {file} of {files}")]
    CursorShard { file: usize, files: usize },
    #[error(
        "data: checkpoint data cursor points at row {row} of shard {file}, which has {rows} rows"
    )]
    CursorRow { row: u64, file: usize, rows: u64 },
    #[error("data: checkpoint data cursor position {pos} is past its block of {len}")]
    CursorPos { pos: usize, len: usize },
    #[error("data: tokenizer: the tokenizer has no [EOS] token")]
    NoEos,
    #[error("data: tokenizer: {0}")]
    Tokenizer(TokenizerError),
    #[error(transparent)]
    Read(#[from] crate::dataset::reader::ReadError),
}
