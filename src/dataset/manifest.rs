//! `manifest.json` of a generated dataset: the recipe and seed it came from, the trace format
//! of its `solution` and `completion` columns, every split's shards with their SHA-256, the
//! split's histograms and the overlap check between splits.
//! Its own module so that the card (which renders it) and the generator (which fills it) both
//! depend on it, and not on each other.

use std::collections::BTreeMap;

use serde::Serialize;

use super::recipe::{Budget, Recipe, SplitSpec};
use super::schema::SCHEMA_VERSION;
use super::split::HELD_OUT_BUCKETS;
use crate::trace::TraceFormat;

/// Datasets up to this many rows get an exact pairwise overlap check (8 bytes per row).
const EXACT_OVERLAP_MAX_ROWS: u64 = 1_000_000;

/// `manifest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub dagmath_version: String,
    pub schema_version: u32,
    pub recipe_sha256: String,
    pub seed: u64,
    /// The format of the gold traces (the `solution` and `completion` columns), which
    /// `audit`, `eval` and the RL pool read completions in. Absent when `full`, so datasets of
    /// the default format keep their bytes, and a manifest without the key (older ones too)
    /// means `full`.
    #[serde(skip_serializing_if = "TraceFormat::is_full")]
    pub trace_format: TraceFormat,
    pub recipe: Recipe,
    pub held_out_rule: String,
    pub splits: Vec<SplitManifest>,
    pub overlap: Overlap,
}

impl Manifest {
    /// The manifest of a finished dataset of `recipe` (whose hash is `recipe_sha256`).
    pub fn new(
        recipe: &Recipe,
        recipe_sha256: String,
        splits: Vec<SplitManifest>,
        overlap: Overlap,
    ) -> Manifest {
        Manifest {
            dagmath_version: env!("CARGO_PKG_VERSION").to_string(),
            schema_version: SCHEMA_VERSION,
            recipe_sha256,
            seed: recipe.seed,
            trace_format: recipe.trace_format,
            recipe: recipe.clone(),
            held_out_rule: format!(
                "a problem is held out iff the first two bytes of its id (big-endian) are < {HELD_OUT_BUCKETS}; \
                 held-out splits take only such problems and training splits never do, in every dataset"
            ),
            splits,
            overlap,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SplitManifest {
    pub name: String,
    pub held_out: bool,
    pub rows: u64,
    /// Tokens of the rows' training sequences: prompt + completion under the domain tokenizer
    /// (`dagmath tokenizer`), plus one EOS per row.
    pub tokens: u64,
    /// The recipe's `tokens = N`, for splits with a token budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_budget: Option<u64>,
    /// For splits with a token budget: each cell's budget and the rows it resolved to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cells: Vec<CellManifest>,
    pub shards: Vec<ShardEntry>,
    pub op_hist: BTreeMap<u32, u64>,
    pub template_hist: BTreeMap<String, u64>,
    pub mode_hist: BTreeMap<String, u64>,
    /// The `distractors` settings of the split's cells, and rows by distractor count.
    pub distractors: Vec<String>,
    pub distractor_hist: BTreeMap<usize, u64>,
    /// Candidates composed for this split, and how many were rejected by the held-out rule or
    /// as duplicates.
    pub candidates: u64,
    pub rejected_bucket: u64,
    pub rejected_duplicate: u64,
}

impl SplitManifest {
    /// The entry of `split` before its first row: `rows` resolved, everything else counted as
    /// the rows are written.
    pub fn new(split: &SplitSpec, rows: u64) -> SplitManifest {
        SplitManifest {
            name: split.name.clone(),
            held_out: split.held_out,
            rows,
            tokens: 0,
            token_budget: match split.budget {
                Budget::Rows(_) => None,
                Budget::Tokens(n) => Some(n),
            },
            cells: Vec::new(),
            shards: Vec::new(),
            op_hist: BTreeMap::new(),
            template_hist: BTreeMap::new(),
            mode_hist: BTreeMap::new(),
            distractors: Vec::new(),
            distractor_hist: BTreeMap::new(),
            candidates: 0,
            rejected_bucket: 0,
            rejected_duplicate: 0,
        }
    }
}

/// One cell of a token-budget split: it took rows until `tokens >= token_budget`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CellManifest {
    pub template: String,
    pub op: u32,
    pub mode: String,
    pub distractors: String,
    pub token_budget: u64,
    pub rows: u64,
    pub tokens: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ShardEntry {
    pub file: String,
    pub rows: u64,
    pub tokens: u64,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Overlap {
    /// How disjointness is guaranteed.
    pub method: String,
    /// Whether `pairs` was computed by comparing every id (small datasets) or only holds by
    /// construction.
    pub exact: bool,
    pub duplicate_ids: u64,
    pub pairs: Vec<OverlapPair>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OverlapPair {
    pub a: String,
    pub b: String,
    pub shared_ids: u64,
}

/// Id fingerprints of every split, kept for the exact overlap check while the dataset has at
/// most `EXACT_OVERLAP_MAX_ROWS` rows (dropped as soon as it has more).
pub struct Fingerprints {
    per_split: Vec<Vec<u64>>,
    rows: u64,
    exact: bool,
}

impl Fingerprints {
    pub fn new(splits: usize) -> Fingerprints {
        Fingerprints {
            per_split: vec![Vec::new(); splits],
            rows: 0,
            exact: true,
        }
    }

    pub fn push(&mut self, split: usize, fp: u64) {
        if !self.exact {
            return;
        }
        self.rows += 1;
        if self.rows > EXACT_OVERLAP_MAX_ROWS {
            self.exact = false;
            self.per_split = vec![Vec::new(); self.per_split.len()];
            return;
        }
        self.per_split[split].push(fp);
    }
}

/// Pairwise shared ids between splits (exact for small datasets) and duplicate ids overall.
pub fn overlap_check(recipe: &Recipe, fps: Fingerprints) -> Overlap {
    let Fingerprints {
        per_split: mut fps,
        exact,
        ..
    } = fps;
    let mut pairs = Vec::new();
    let mut duplicates = 0;
    for v in fps.iter_mut() {
        v.sort_unstable();
        duplicates += v.windows(2).filter(|w| w[0] == w[1]).count() as u64;
    }
    for a in 0..recipe.splits.len() {
        for b in a + 1..recipe.splits.len() {
            let shared = if exact {
                count_shared(&fps[a], &fps[b])
            } else {
                0
            };
            pairs.push(OverlapPair {
                a: recipe.splits[a].name.clone(),
                b: recipe.splits[b].name.clone(),
                shared_ids: shared,
            });
        }
    }
    Overlap {
        method: "every accepted id is checked against a dataset-wide Bloom filter (no false \
                 negatives) before use, so no id can repeat within or across splits; for datasets \
                 up to 1M rows the id fingerprints of every pair of splits are also compared exactly"
            .into(),
        exact,
        duplicate_ids: duplicates,
        pairs,
    }
}

/// Ids two sorted fingerprint lists share.
fn count_shared(a: &[u64], b: &[u64]) -> u64 {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}
