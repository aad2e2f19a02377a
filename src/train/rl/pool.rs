//! The RL pool: the problems of the configured splits (prompt and gold graph), and the
//! order they are drawn in, a function of (seed, epoch) so a resume draws the same prompts.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::composer::seed::{derive, str_key};
use crate::dataset::reader::{read_rows, Dataset, ReadError};
use crate::graph::GoldItem;
use crate::tokenizer::{Tokenizer, TokenizerError};
use crate::trace::TraceFormat;
use crate::train::config::PoolConfig;

/// Why the pool cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The dataset named by `data.dir` is missing or unreadable (the user's input).
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("data.splits: split \"{split}\" is not in {} (it has: {})", dir.display(), have.join(", "))]
    NoSplit {
        split: String,
        dir: std::path::PathBuf,
        have: Vec<String>,
    },
    #[error("data: splits [{}] of {} hold no problems", splits.join(", "), dir.display())]
    Empty {
        splits: Vec<String>,
        dir: std::path::PathBuf,
    },
    /// A prompt the tokenizer cannot encode (the system's fault).
    #[error("{id}: {source}")]
    Encode { id: String, source: TokenizerError },
}

impl PoolError {
    /// Whether the user's input is at fault (the dataset they named), not the system.
    pub fn is_users(&self) -> bool {
        !matches!(self, PoolError::Encode { .. })
    }
}

/// A pool problem.
#[derive(Debug, Clone)]
pub struct PoolItem {
    pub gold: GoldItem,
    pub prompt: Vec<u32>,
}

/// Loads the pool's problems and encodes their prompts; also returns the dataset's trace
/// format (its manifest's), which rollouts are verified in.
pub fn load_pool(
    c: &PoolConfig,
    tok: &Tokenizer,
) -> Result<(Vec<PoolItem>, TraceFormat), PoolError> {
    let ds = Dataset::open(&c.dir)?;
    let mut out = Vec::new();
    for split in &c.splits {
        if !ds.manifest.splits.iter().any(|s| &s.name == split) {
            return Err(PoolError::NoSplit {
                split: split.clone(),
                dir: c.dir.clone(),
                have: ds.manifest.splits.iter().map(|s| s.name.clone()).collect(),
            });
        }
        for path in ds.shard_paths(split) {
            for r in read_rows(&path)? {
                let (gold, prompt) = r.into_gold();
                let prompt = tok.encode(&prompt).map_err(|source| PoolError::Encode {
                    id: gold.id.clone(),
                    source,
                })?;
                out.push(PoolItem { gold, prompt });
            }
        }
    }
    if out.is_empty() {
        return Err(PoolError::Empty {
            splits: c.splits.clone(),
            dir: c.dir.clone(),
        });
    }
    Ok((out, ds.manifest.trace_format))
}

/// Position in the pool: the epoch's shuffled order is a function of (seed, epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PoolCursor {
    pub epoch: u64,
    pub pos: usize,
}

fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(derive(&[seed, str_key("rl-pool"), epoch]));
    order.shuffle(&mut rng);
    order
}

/// The next `k` pool indices, advancing the cursor (wrapping into new epochs).
pub fn draw(n: usize, k: usize, seed: u64, cur: &mut PoolCursor) -> Vec<usize> {
    let mut out = Vec::with_capacity(k);
    let mut order = epoch_order(n, seed, cur.epoch);
    while out.len() < k {
        if cur.pos >= n {
            cur.epoch += 1;
            cur.pos = 0;
            order = epoch_order(n, seed, cur.epoch);
        }
        out.push(order[cur.pos]);
        cur.pos += 1;
    }
    out
}
