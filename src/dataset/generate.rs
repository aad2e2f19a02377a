//! `dagmath generate`: recipe → Parquet shards, manifest and dataset card.
//!
//! Determinism across thread counts: candidates are composed in parallel, but each cell's
//! candidates are *accepted* sequentially in index order (held-out bucket rule, then the
//! Bloom-filter dedup), and rows are taken from the cells in a fixed interleaved order. Threads
//! change only how fast this happens. Crash safety: shards appear by rename when complete; the
//! manifest and card are written last; `--resume` replays the (cheap) selection to rebuild the
//! exact generator state, skips every shard already on disk and writes the rest.
//!
//! Token budgets (`tokens = N`): shard layout needs every cell's row count before the first row
//! is written, so such a split is *sized* first. Each cell in turn walks its candidates in
//! index order exactly as selection does (bucket rule, then the Bloom filter), renders and
//! tokenizes the accepted ones, and stops at the first row that brings its tokens to its
//! budget. Sizing is the split's real dedup pass: it inserts exactly the ids the split will
//! use and remembers the candidates the filter rejected, and the writing pass then replays
//! those decisions instead of consulting the filter again (whose false positives depend on
//! insertion order). Sizing is deterministic, so `--resume` simply repeats it.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use rayon::prelude::*;
use serde::Serialize;

use super::bloom::Bloom;
use super::card::dataset_card;
use super::recipe::{Budget, Recipe, SplitSpec};
use super::schema::{BatchBuilder, SCHEMA_VERSION};
use super::shard::{
    file_sha256, read_meta, shard_file_name, write_atomic, ShardError, ShardInfo, ShardMeta,
    ShardWriter,
};
use super::split::{admits, apportion, Cell, Interleave, Share, HELD_OUT_BUCKETS};
use crate::composer::{
    compose_noisy, problem_id, seed, ComposeError, Mode, Noise, Problem, ProblemId,
};
use crate::render::Rendered;
use crate::template::{Template, TemplateSet};
use crate::tokenizer::{Tokenizer, TokenizerError};

/// Marker file present while a run is in progress (removed when the dataset is complete).
pub const RUN_FILE: &str = ".dagmath-run.json";
/// Consecutive rejected candidates after which a cell is declared exhausted.
const MAX_CONSECUTIVE_REJECTS: u64 = 200_000;
/// Rows selected, rendered and written per step (fixed, so output does not depend on threads).
const CHUNK_ROWS: usize = 1024;
/// Rows rendered and encoded as one Arrow batch (fixed, for the same reason).
const PART_ROWS: usize = 256;
/// Batches the writer thread may have queued (bounds memory when encoding is the slower side).
const WRITER_QUEUE: usize = 8;
/// Datasets up to this many rows get an exact pairwise overlap check (8 bytes per row).
const EXACT_OVERLAP_MAX_ROWS: u64 = 1_000_000;
/// Rows per sizing window while a cell's tokens per row are still unknown.
const PROBE_ROWS: u64 = 32;
/// Most candidates in one sizing window (bounds its memory).
const MAX_SIZING_WINDOW: u64 = 1 << 16;
/// Tokens per row assumed when sizing the Bloom filter for token budgets. Real rows are longer
/// (op 1 rows have 46 or more, op 2-10 rows about 350 on average), so the filter errs on the
/// large side; its size only moves which rare false positives get skipped, deterministically.
const BLOOM_TOKENS_PER_ROW: u64 = 32;

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(
        "output directory {0} is not empty; pass --resume to continue an interrupted run or \
         --force to overwrite it"
    )]
    NotEmpty(PathBuf),
    #[error("{path}: holds a dataset from a different recipe or seed (recipe sha256 {found}, this run {expected}); use --force to overwrite it")]
    OtherRecipe {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("{path}: nothing to resume (no {RUN_FILE} or manifest.json)")]
    NothingToResume { path: PathBuf },
    #[error("split `{split}`, template `{template}`, op {op}, {mode}: {source}")]
    Compose {
        split: String,
        template: String,
        op: u32,
        mode: Mode,
        source: ComposeError,
    },
    #[error(
        "split `{split}`: template `{template}`, op {op}, {mode} yields too few distinct problems \
         ({accepted} accepted, then {rejected} candidates in a row were duplicates or held-out); \
         lower this cell's share or the split's budget"
    )]
    Exhausted {
        split: String,
        template: String,
        op: u32,
        mode: Mode,
        accepted: u64,
        rejected: u64,
    },
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("cannot create thread pool: {0}")]
    Threads(String),
    #[error("threads: {threads} is more than {max} (4 per core); 0 uses every core")]
    TooManyThreads { threads: usize, max: usize },
    #[error("{0}: another dagmath run is writing this folder (it holds the folder's lock)")]
    Locked(PathBuf),
    #[error("{0}: is not a folder")]
    NotAFolder(PathBuf),
    #[error(
        "{path}: {file} was not written by dagmath (no dataset manifest or run journal here); \
         refusing to overwrite it, even with --force"
    )]
    Foreign { path: PathBuf, file: String },
    #[error(
        "{path}: shard {file} does not match the run journal (sha256 {found}, recorded {expected}); \
         it was changed or corrupted since it was written: delete it and --resume, or start over with --force"
    )]
    Corrupted {
        path: PathBuf,
        file: String,
        found: String,
        expected: String,
    },
}

/// How to run a generation.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub out: PathBuf,
    /// Worker threads (0 = all cores).
    pub threads: usize,
    pub resume: bool,
    pub force: bool,
}

/// Progress notifications (the library never prints; the CLI draws a bar).
pub trait Observer: Sync {
    /// A split with a token budget is being sized (before its `split_started`).
    fn split_sizing(&self, _split: &str, _tokens: u64) {}
    /// Tokens counted so far while sizing.
    fn tokens_sized(&self, _tokens: u64) {}
    /// Rows of the split about to be selected and written (resolved for token budgets).
    fn split_started(&self, _split: &str, _rows: u64) {}
    fn rows_done(&self, _rows: u64) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub dagmath_version: String,
    pub schema_version: u32,
    pub recipe_sha256: String,
    pub seed: u64,
    pub recipe: Recipe,
    pub held_out_rule: String,
    pub splits: Vec<SplitManifest>,
    pub overlap: Overlap,
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

/// Per-cell generator state: the next candidate index and accepted problems not yet used.
struct CellState<'t> {
    cell: Cell,
    template: &'t Template,
    seed_base: [u64; 4],
    next: u64,
    queue: VecDeque<(Problem, ProblemId)>,
    accepted: u64,
    rejects_in_a_row: u64,
    /// Dedup decisions made while sizing (token budgets); `None` consults the Bloom filter.
    replay: Option<Replay>,
}

impl CellState<'_> {
    /// Whether admitted candidate `i` (id `id`) is a duplicate; otherwise it is now taken.
    fn duplicate(&mut self, i: u64, id: &ProblemId, bloom: &mut Bloom) -> bool {
        match self.replay.as_mut() {
            Some(r) => r.duplicate(i),
            None => !bloom.insert(id),
        }
    }
}

/// The candidates sizing found to be duplicates, replayed in index order.
struct Replay {
    duplicates: Vec<u64>,
    at: usize,
}

impl Replay {
    /// Whether candidate `i` was a duplicate; candidates are asked about in increasing order.
    fn duplicate(&mut self, i: u64) -> bool {
        while self.duplicates.get(self.at).is_some_and(|&d| d < i) {
            self.at += 1;
        }
        self.duplicates.get(self.at) == Some(&i)
    }
}

/// A token-budget cell after sizing.
struct SizedCell {
    cell: Cell,
    token_budget: u64,
    tokens: u64,
    duplicates: Vec<u64>,
}

/// Derived seed of candidate `i` of a cell.
fn candidate_seed(base: &[u64; 4], i: u64) -> u64 {
    seed::derive(&[base[0], base[1], base[2], base[3], i])
}

/// Seed base of a cell: (recipe seed, split, template, op, mode and, unless it is the
/// reference default, the distractor setting).
fn cell_seed_base(
    recipe_seed: u64,
    split: &str,
    template: &str,
    op: u32,
    mode: Mode,
    noise: Noise,
) -> [u64; 4] {
    let mut t = seed::str_key(template);
    if noise != Noise::Reference {
        t = seed::derive(&[t, seed::str_key(&noise.to_string())]);
    }
    [
        recipe_seed,
        seed::str_key(split),
        t,
        (op as u64) << 8 | mode_key(mode),
    ]
}

/// Tokens a row costs in training: its prompt + completion, then one EOS. The prompt ends
/// with a special token, where the tokenizer's pieces start afresh, so the two parts are
/// counted apart (`row_tokens_are_the_count_of_the_joined_sequence` holds this).
fn row_tokens(tok: &Tokenizer, r: &Rendered) -> Result<u64, TokenizerError> {
    debug_assert!(r.prompt.ends_with("<solution>"));
    Ok((tok.count(&r.prompt)? + tok.count(&r.completion)?) as u64 + 1)
}

/// Add one to `hist[key]`, allocating the key only the first time it is seen.
fn bump(hist: &mut BTreeMap<String, u64>, key: &str) {
    match hist.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            hist.insert(key.to_string(), 1);
        }
    }
}

fn mode_key(m: Mode) -> u64 {
    match m {
        Mode::Forward => 0,
        Mode::Reverse => 1,
    }
}

/// Generate the dataset of `recipe` into `opts.out`.
pub fn generate(
    recipe: &Recipe,
    templates: &TemplateSet,
    opts: &GenerateOptions,
    obs: &dyn Observer,
) -> Result<Manifest, GenerateError> {
    let max = crate::limits::max_threads();
    if opts.threads > max {
        return Err(GenerateError::TooManyThreads {
            threads: opts.threads,
            max,
        });
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .map_err(|e| GenerateError::Threads(e.to_string()))?;
    pool.install(|| generate_in_pool(recipe, templates, opts, obs))
}

fn generate_in_pool(
    recipe: &Recipe,
    templates: &TemplateSet,
    opts: &GenerateOptions,
    obs: &dyn Observer,
) -> Result<Manifest, GenerateError> {
    let hash = recipe.hash();
    // Everything that can be checked is checked before the first byte is written.
    let shares: Vec<Vec<Share>> = recipe
        .splits
        .iter()
        .map(|s| apportion(s, s.budget.units()))
        .collect();
    for (split, cells) in recipe.splits.iter().zip(&shares) {
        for c in cells {
            let t = templates
                .get(&c.template)
                .expect("recipe templates were validated");
            compose_noisy(t, c.op, c.mode, c.noise, 0).map_err(|source| {
                GenerateError::Compose {
                    split: split.name.clone(),
                    template: c.template.clone(),
                    op: c.op,
                    mode: c.mode,
                    source,
                }
            })?;
        }
    }
    let mut prepared = prepare_output(&opts.out, &hash, recipe.seed, opts.resume, opts.force)?;
    let result = write_dataset(recipe, templates, opts, obs, &hash, &shares, &mut prepared);
    if let Err(e) = &result {
        // Bad input found part-way (a cell that cannot be composed or runs out of distinct
        // problems) cannot be resumed: remove what this run created, as if it never started.
        let bad_input = matches!(
            e,
            GenerateError::Compose { .. } | GenerateError::Exhausted { .. }
        );
        if bad_input && prepared.created {
            let _ = std::fs::remove_dir_all(&opts.out);
        } else if bad_input && prepared.was_empty {
            let _ = std::fs::remove_dir_all(&prepared.data);
            let _ = std::fs::remove_file(opts.out.join(RUN_FILE));
        }
    }
    result
}

/// Writes every split into the prepared folder, then the manifest and the card.
#[allow(clippy::too_many_arguments)]
fn write_dataset(
    recipe: &Recipe,
    templates: &TemplateSet,
    opts: &GenerateOptions,
    obs: &dyn Observer,
    hash: &str,
    shares: &[Vec<Share>],
    prepared: &mut Prepared,
) -> Result<Manifest, GenerateError> {
    let hash = hash.to_string();
    let data = prepared.data.clone();
    let shares = shares.to_vec();

    let tok = Tokenizer::domain(templates);
    let expected_rows: u64 = recipe
        .splits
        .iter()
        .map(|s| match s.budget {
            Budget::Rows(n) => n,
            Budget::Tokens(n) => n.div_ceil(BLOOM_TOKENS_PER_ROW),
        })
        .fold(0u64, u64::saturating_add);
    let mut bloom = Bloom::for_items(expected_rows);
    let mut fingerprints = Fingerprints::new(recipe.splits.len());
    let mut splits = Vec::new();
    for (si, (split, shares)) in recipe.splits.iter().zip(shares).enumerate() {
        let mut sized = match split.budget {
            Budget::Rows(_) => None,
            Budget::Tokens(n) => {
                obs.split_sizing(&split.name, n);
                Some(size_cells(
                    recipe.seed,
                    split,
                    &shares,
                    templates,
                    &tok,
                    &mut bloom,
                    obs,
                )?)
            }
        };
        let cells: Vec<Cell> = match &sized {
            None => shares.iter().map(|s| s.cell(s.units)).collect(),
            Some(sized) => sized.iter().map(|s| s.cell.clone()).collect(),
        };
        let split_rows: u64 = cells.iter().map(|c| c.rows).sum();
        obs.split_started(&split.name, split_rows);
        let mut states: Vec<CellState> = cells
            .into_iter()
            .enumerate()
            .map(|(ci, cell)| CellState {
                template: templates.get(&cell.template).expect("validated"),
                seed_base: cell_seed_base(
                    recipe.seed,
                    &split.name,
                    &cell.template,
                    cell.op,
                    cell.mode,
                    cell.noise,
                ),
                cell,
                next: 0,
                queue: VecDeque::new(),
                accepted: 0,
                rejects_in_a_row: 0,
                replay: sized.as_mut().map(|s| Replay {
                    duplicates: std::mem::take(&mut s[ci].duplicates),
                    at: 0,
                }),
            })
            .collect();
        let mut il = Interleave::new(&states.iter().map(|s| s.cell.clone()).collect::<Vec<_>>());
        let mut cell_tokens = vec![0u64; states.len()];
        let mut sm = SplitManifest {
            name: split.name.clone(),
            held_out: split.held_out,
            rows: split_rows,
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
        };
        for st in &states {
            let d = st.cell.noise.to_string();
            if !sm.distractors.contains(&d) {
                sm.distractors.push(d);
            }
        }
        let n_shards = split_rows.div_ceil(recipe.shard_size) as usize;
        for shard in 0..n_shards {
            let lo = shard as u64 * recipe.shard_size;
            let rows = (split_rows - lo).min(recipe.shard_size) as usize;
            let file = shard_file_name(&split.name, shard, n_shards);
            let path = data.join(&file);
            let meta = ShardMeta {
                recipe_sha256: hash.clone(),
                seed: recipe.seed,
                split: split.name.clone(),
                shard,
                n_shards,
            };
            // A shard already on disk (resume) is checked, then its rows are only replayed
            // (rendered and counted, not encoded).
            // A shard the journal does not record (killed between its rename and the
            // journal's update) is simply written again: the bytes are deterministic.
            let key = format!("data/{file}");
            let recorded = prepared.journal.shards.get(&key).cloned();
            let done = match recorded {
                Some(expected) if opts.resume && path.exists() => {
                    let (bytes, found) = file_sha256(&path)?;
                    if found != expected {
                        return Err(GenerateError::Corrupted {
                            path: opts.out.clone(),
                            file: key,
                            found,
                            expected,
                        });
                    }
                    let (m, n) = read_meta(&path)?;
                    if m != meta || n != rows as u64 {
                        return Err(GenerateError::OtherRecipe {
                            path,
                            found: m.recipe_sha256,
                            expected: hash.clone(),
                        });
                    }
                    Some((bytes, found))
                }
                _ => None,
            };
            let writer = match done {
                Some(_) => None,
                None => Some(ShardWriter::create(&path, &meta, recipe.row_group_size)?),
            };
            let encode = writer.is_some();
            let mut shard_tokens = 0u64;
            // Rows are selected in fixed-size chunks and rendered in fixed-size parts (both
            // independent of the thread count), so memory stays bounded whatever the shard
            // size and the Parquet bytes do not depend on threads. A writer thread encodes and
            // compresses the parts while the pool prepares the next chunk.
            let written = std::thread::scope(|sc| -> Result<Option<ShardInfo>, GenerateError> {
                let (tx, rx) = std::sync::mpsc::sync_channel::<ToWriter>(WRITER_QUEUE);
                let handle = writer.map(|w| sc.spawn(move || write_shard(w, rx)));
                let mut left = rows;
                while left > 0 {
                    let n = left.min(CHUNK_ROWS);
                    left -= n;
                    let order: Vec<u16> = (0..n).map(|_| il.next_cell() as u16).collect();
                    let mut need = vec![0u64; states.len()];
                    for &c in &order {
                        need[c as usize] += 1;
                    }
                    fill_queues(
                        &mut states,
                        &need,
                        split.held_out,
                        &split.name,
                        &mut bloom,
                        &mut sm,
                    )?;
                    let mut taken: Vec<(&Template, Problem, ProblemId)> = Vec::with_capacity(n);
                    for &c in &order {
                        let s = &mut states[c as usize];
                        let (p, id) = s
                            .queue
                            .pop_front()
                            .expect("queue was filled for this chunk");
                        *sm.op_hist.entry(p.op).or_default() += 1;
                        bump(&mut sm.template_hist, &s.cell.template);
                        bump(&mut sm.mode_hist, p.mode.as_str());
                        *sm.distractor_hist.entry(p.n_distractors()).or_default() += 1;
                        fingerprints.push(si, id.fingerprint());
                        taken.push((s.template, p, id));
                    }
                    let parts: Vec<(Option<RecordBatch>, Vec<u64>)> = taken
                        .par_chunks(PART_ROWS)
                        .map(|part| prepare_part(part, &split.name, &tok, encode))
                        .collect::<Result<_, TokenizerError>>()?;
                    let mut row = 0;
                    for (batch, tokens) in parts {
                        for n in tokens {
                            cell_tokens[order[row] as usize] += n;
                            shard_tokens += n;
                            row += 1;
                        }
                        // A closed channel means the writer failed: its join says why.
                        if let Some(b) = batch {
                            if tx.send(ToWriter::Batch(b)).is_err() {
                                break;
                            }
                        }
                    }
                    obs.rows_done(n as u64);
                }
                let _ = tx.send(ToWriter::Finish);
                drop(tx);
                match handle {
                    Some(h) => Ok(Some(h.join().expect("the shard writer does not panic")?)),
                    None => Ok(None),
                }
            })?;
            let (bytes, sha256) = match (written, done) {
                (Some(info), _) => (info.bytes, info.sha256),
                (None, Some(d)) => d,
                (None, None) => unreachable!("a shard is either written or already done"),
            };
            sm.tokens += shard_tokens;
            prepared.journal.shards.insert(key, sha256.clone());
            prepared.journal.write(&opts.out)?;
            sm.shards.push(ShardEntry {
                file: format!("data/{file}"),
                rows: rows as u64,
                tokens: shard_tokens,
                bytes,
                sha256,
            });
        }
        if let Some(sized) = sized {
            for (c, &tokens) in sized.iter().zip(&cell_tokens) {
                // Sizing counted the very rows that were written.
                assert_eq!(
                    c.tokens, tokens,
                    "split `{}`: sizing and writing disagree on cell {} op {} {}",
                    split.name, c.cell.template, c.cell.op, c.cell.mode
                );
                sm.cells.push(CellManifest {
                    template: c.cell.template.clone(),
                    op: c.cell.op,
                    mode: c.cell.mode.as_str().to_string(),
                    distractors: c.cell.noise.to_string(),
                    token_budget: c.token_budget,
                    rows: c.cell.rows,
                    tokens: c.tokens,
                });
            }
        }
        splits.push(sm);
    }

    let overlap = overlap_check(recipe, fingerprints);
    let manifest = Manifest {
        dagmath_version: env!("CARGO_PKG_VERSION").to_string(),
        schema_version: SCHEMA_VERSION,
        recipe_sha256: hash,
        seed: recipe.seed,
        recipe: recipe.clone(),
        held_out_rule: format!(
            "a problem is held out iff the first two bytes of its id (big-endian) are < {HELD_OUT_BUCKETS}; \
             held-out splits take only such problems and training splits never do, in every dataset"
        ),
        splits,
        overlap,
    };
    let json = serde_json::to_string_pretty(&manifest).expect("manifest serialises");
    write_atomic(
        &opts.out.join("README.md"),
        dataset_card(&manifest).as_bytes(),
    )?;
    write_atomic(
        &opts.out.join("manifest.json"),
        format!("{json}\n").as_bytes(),
    )?;
    let run = opts.out.join(RUN_FILE);
    std::fs::remove_file(&run).map_err(|source| ShardError::Io { path: run, source })?;
    Ok(manifest)
}

/// What the selecting loop sends the shard's writer thread.
enum ToWriter {
    Batch(RecordBatch),
    /// Every row was sent: close the shard and make it visible.
    Finish,
}

/// The writer thread of one shard: encode the batches in order, and make the shard visible
/// only once `Finish` arrives (a channel closed early leaves the temp file, removed on the
/// next run).
fn write_shard(
    mut w: ShardWriter,
    rx: std::sync::mpsc::Receiver<ToWriter>,
) -> Result<ShardInfo, ShardError> {
    for msg in rx {
        match msg {
            ToWriter::Batch(b) => w.write(&b)?,
            ToWriter::Finish => return w.finish(),
        }
    }
    Err(w.abandon())
}

/// Render and count one part of a chunk and, if `encode`, build its Arrow batch.
fn prepare_part(
    part: &[(&Template, Problem, ProblemId)],
    split: &str,
    tok: &Tokenizer,
    encode: bool,
) -> Result<(Option<RecordBatch>, Vec<u64>), TokenizerError> {
    let mut r = Rendered::default();
    let mut b = BatchBuilder::with_rows(if encode { part.len() } else { 0 });
    let mut tokens = Vec::with_capacity(part.len());
    for (t, p, id) in part {
        r.fill(t, p);
        tokens.push(row_tokens(tok, &r)?);
        if encode {
            b.push(split, t, id, p, &r);
        }
    }
    Ok((encode.then(|| b.finish()), tokens))
}

/// Size a token-budget split: for each cell in turn, walk its candidates in index order through
/// the bucket rule and the Bloom filter (inserting the accepted ids), and take accepted rows
/// until the cell's tokens reach its budget; the row that reaches it is kept, so a cell
/// overshoots its budget by less than one row. Candidates are composed, rendered and tokenized
/// in parallel windows whose size depends only on the counts so far, never on threads.
fn size_cells(
    recipe_seed: u64,
    split: &SplitSpec,
    shares: &[Share],
    templates: &TemplateSet,
    tok: &Tokenizer,
    bloom: &mut Bloom,
    obs: &dyn Observer,
) -> Result<Vec<SizedCell>, GenerateError> {
    let mut out = Vec::with_capacity(shares.len());
    for share in shares {
        let t = templates.get(&share.template).expect("validated");
        let base = cell_seed_base(
            recipe_seed,
            &split.name,
            &t.id,
            share.op,
            share.mode,
            share.noise,
        );
        let compose_err = |source| GenerateError::Compose {
            split: split.name.clone(),
            template: share.template.clone(),
            op: share.op,
            mode: share.mode,
            source,
        };
        let budget = share.units;
        let (mut next, mut rows, mut tokens) = (0u64, 0u64, 0u64);
        let (mut rejects_in_a_row, mut duplicates) = (0u64, Vec::new());
        while tokens < budget {
            // Enough candidates for the rows still missing at the mean row length so far,
            // scaled by the expected acceptance rate as in `fill_queues`.
            let want = match rows {
                0 => PROBE_ROWS,
                _ => (budget - tokens).div_ceil(tokens / rows),
            };
            let window = if split.held_out {
                want * 17 + 32
            } else {
                want + want / 8 + 8
            }
            .min(MAX_SIZING_WINDOW);
            // Per candidate: its id and, if the bucket rule admits it, its token count.
            let results: Vec<Result<(ProblemId, Option<u64>), GenerateError>> = (next..next
                + window)
                .into_par_iter()
                .map_init(
                    || (Vec::new(), Rendered::default()),
                    |(buf, r), i| {
                        let p = compose_noisy(
                            t,
                            share.op,
                            share.mode,
                            share.noise,
                            candidate_seed(&base, i),
                        )
                        .map_err(compose_err)?;
                        let id = problem_id(&t.id, &p, buf);
                        if !admits(split.held_out, &id) {
                            return Ok((id, None));
                        }
                        r.fill(t, &p);
                        Ok((id, Some(row_tokens(tok, r)?)))
                    },
                )
                .collect();
            let before = tokens;
            for (i, res) in (next..).zip(results) {
                next = i + 1;
                let (id, n) = res?;
                match n {
                    None => rejects_in_a_row += 1,
                    Some(_) if !bloom.insert(&id) => {
                        duplicates.push(i);
                        rejects_in_a_row += 1;
                    }
                    Some(n) => {
                        rows += 1;
                        tokens += n;
                        rejects_in_a_row = 0;
                        if tokens >= budget {
                            break;
                        }
                    }
                }
                if rejects_in_a_row >= MAX_CONSECUTIVE_REJECTS {
                    return Err(GenerateError::Exhausted {
                        split: split.name.clone(),
                        template: share.template.clone(),
                        op: share.op,
                        mode: share.mode,
                        accepted: rows,
                        rejected: rejects_in_a_row,
                    });
                }
            }
            obs.tokens_sized(tokens - before);
        }
        out.push(SizedCell {
            cell: share.cell(rows),
            token_budget: budget,
            tokens,
            duplicates,
        });
    }
    Ok(out)
}

/// Compose candidates until every cell's queue holds `need` problems.
fn fill_queues(
    states: &mut [CellState],
    need: &[u64],
    held_out: bool,
    split: &str,
    bloom: &mut Bloom,
    sm: &mut SplitManifest,
) -> Result<(), GenerateError> {
    loop {
        // Candidate windows: the deficit, scaled by the expected acceptance rate.
        let mut tasks: Vec<(usize, u64)> = Vec::new();
        for (ci, s) in states.iter().enumerate() {
            let deficit = need[ci].saturating_sub(s.queue.len() as u64);
            if deficit == 0 {
                continue;
            }
            let window = if held_out {
                deficit * 17 + 32
            } else {
                deficit + deficit / 8 + 8
            };
            tasks.extend((s.next..s.next + window).map(|i| (ci, i)));
        }
        if tasks.is_empty() {
            return Ok(());
        }
        let results: Vec<Result<(Problem, ProblemId), ComposeError>> = tasks
            .par_iter()
            .map_init(Vec::new, |buf, &(ci, i)| {
                let s = &states[ci];
                let p = compose_noisy(
                    s.template,
                    s.cell.op,
                    s.cell.mode,
                    s.cell.noise,
                    candidate_seed(&s.seed_base, i),
                )?;
                let id = problem_id(&s.template.id, &p, buf);
                Ok((p, id))
            })
            .collect();
        for (&(ci, i), r) in tasks.iter().zip(results) {
            let s = &mut states[ci];
            s.next = i + 1;
            sm.candidates += 1;
            let (p, id) = r.map_err(|source| GenerateError::Compose {
                split: split.to_string(),
                template: s.cell.template.clone(),
                op: s.cell.op,
                mode: s.cell.mode,
                source,
            })?;
            if !admits(held_out, &id) {
                sm.rejected_bucket += 1;
                s.rejects_in_a_row += 1;
            } else if s.duplicate(i, &id, bloom) {
                sm.rejected_duplicate += 1;
                s.rejects_in_a_row += 1;
            } else {
                s.queue.push_back((p, id));
                s.accepted += 1;
                s.rejects_in_a_row = 0;
            }
            if s.rejects_in_a_row >= MAX_CONSECUTIVE_REJECTS {
                return Err(GenerateError::Exhausted {
                    split: split.to_string(),
                    template: s.cell.template.clone(),
                    op: s.cell.op,
                    mode: s.cell.mode,
                    accepted: s.accepted,
                    rejected: s.rejects_in_a_row,
                });
            }
        }
    }
}

/// The run journal (`.dagmath-run.json`): the recipe being written and the SHA-256 of every
/// shard finished so far, rewritten atomically after each shard. `--resume` keeps a shard on
/// disk only if its bytes match the journal.
#[derive(Serialize, serde::Deserialize)]
struct RunFile {
    recipe_sha256: String,
    seed: u64,
    /// `data/FILE` → sha256 of the shards complete so far.
    #[serde(default)]
    shards: BTreeMap<String, String>,
}

impl RunFile {
    fn write(&self, out: &Path) -> Result<(), ShardError> {
        let run = serde_json::to_vec(self).expect("run file serialises");
        write_atomic(&out.join(RUN_FILE), &run)
    }
}

/// An exclusive lock on the output folder, held for the whole run (released on drop): a
/// second run on the same folder stops at once instead of interleaving its shards.
pub struct OutputLock {
    _dir: std::fs::File,
}

/// Takes the lock on folder `dir` (which exists): `flock(LOCK_EX | LOCK_NB)` on the folder
/// itself, so no lock file is left behind. (`std::fs::File::try_lock` does the same but needs
/// Rust 1.89, above this crate's MSRV.) Elsewhere than Unix runs are not locked.
pub fn lock_folder(dir: &Path) -> Result<OutputLock, GenerateError> {
    let io = |source| {
        GenerateError::Shard(ShardError::Io {
            path: dir.to_path_buf(),
            source,
        })
    };
    let f = std::fs::File::open(dir).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock on a descriptor this function owns; no memory is shared.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            return Err(if e.kind() == std::io::ErrorKind::WouldBlock {
                GenerateError::Locked(dir.to_path_buf())
            } else {
                io(e)
            });
        }
    }
    Ok(OutputLock { _dir: f })
}

/// The output folder, checked, locked and prepared.
struct Prepared {
    data: PathBuf,
    /// Shards recorded as complete by the journal (or the manifest of a finished dataset).
    journal: RunFile,
    /// Whether this run created the folder (removed again if the run fails on bad input).
    created: bool,
    /// Whether the folder was empty (what the run wrote is removed if it fails on bad input).
    was_empty: bool,
    _lock: OutputLock,
}

/// Check, lock and prepare the output directory. Writes nothing unless the run may proceed
/// (a folder it had to create for the lock is removed again).
fn prepare_output(
    out: &Path,
    hash: &str,
    seed: u64,
    resume: bool,
    force: bool,
) -> Result<Prepared, GenerateError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| GenerateError::Shard(ShardError::Io { path, source })
    };
    if out.exists() && !out.is_dir() {
        return Err(GenerateError::NotAFolder(out.to_path_buf()));
    }
    let created = !out.exists();
    let was_empty = created
        || std::fs::read_dir(out)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
    std::fs::create_dir_all(out).map_err(io(out))?;
    let lock = lock_folder(out)?;
    let checked = check_output(out, hash, seed, resume, force);
    let journal = match checked {
        Ok(j) => j,
        Err(e) => {
            if created {
                let _ = std::fs::remove_dir(out);
            }
            return Err(e);
        }
    };
    let data = out.join("data");
    if force && !resume {
        for f in ["manifest.json", "README.md", RUN_FILE] {
            let p = out.join(f);
            if p.exists() {
                std::fs::remove_file(&p).map_err(io(&p))?;
            }
        }
    }
    std::fs::create_dir_all(&data).map_err(io(&data))?;
    // Leftover temp files of a killed run, and (with --force) old shards.
    for e in std::fs::read_dir(&data).map_err(io(&data))? {
        let p = e.map_err(io(&data))?.path();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stale_tmp = name.starts_with('.') && name.ends_with(".tmp");
        let old_shard = force && !resume && name.ends_with(".parquet");
        if stale_tmp || old_shard {
            std::fs::remove_file(&p).map_err(io(&p))?;
        }
    }
    let journal = RunFile {
        recipe_sha256: hash.to_string(),
        seed,
        shards: journal.shards,
    };
    journal.write(out)?;
    Ok(Prepared {
        data,
        journal,
        created,
        was_empty,
        _lock: lock,
    })
}

/// Whether the run may write into `out` (locked); returns what the journal (or a finished
/// dataset's manifest) records as done.
fn check_output(
    out: &Path,
    hash: &str,
    seed: u64,
    resume: bool,
    force: bool,
) -> Result<RunFile, GenerateError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| GenerateError::Shard(ShardError::Io { path, source })
    };
    let empty = RunFile {
        recipe_sha256: hash.to_string(),
        seed,
        shards: BTreeMap::new(),
    };
    let non_empty = std::fs::read_dir(out).map_err(io(out))?.next().is_some();
    if !non_empty {
        return Ok(empty);
    }
    if !resume && !force {
        return Err(GenerateError::NotEmpty(out.to_path_buf()));
    }
    // What dagmath wrote here: the journal of an unfinished run, else a finished manifest.
    let read = |name: &str| -> Option<serde_json::Value> {
        let b = std::fs::read(out.join(name)).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&b).ok()?;
        v.get("recipe_sha256")?.as_str()?;
        Some(v)
    };
    let found = read(RUN_FILE)
        .map(|v| (v, true))
        .or_else(|| read("manifest.json").map(|v| (v, false)));
    let Some((v, is_journal)) = found else {
        if resume {
            return Err(GenerateError::NothingToResume {
                path: out.to_path_buf(),
            });
        }
        // --force replaces a dataset, never a folder of someone else's files.
        let file = std::fs::read_dir(out)
            .map_err(io(out))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .min()
            .unwrap_or_default();
        return Err(GenerateError::Foreign {
            path: out.to_path_buf(),
            file,
        });
    };
    if !resume {
        return Ok(empty);
    }
    let f = v["recipe_sha256"].as_str().unwrap_or_default();
    if f != hash {
        return Err(GenerateError::OtherRecipe {
            path: out.to_path_buf(),
            found: f.to_string(),
            expected: hash.to_string(),
        });
    }
    let mut shards = BTreeMap::new();
    if is_journal {
        if let Some(m) = v.get("shards").and_then(|m| m.as_object()) {
            for (file, sha) in m {
                if let Some(sha) = sha.as_str() {
                    shards.insert(file.clone(), sha.to_string());
                }
            }
        }
    } else {
        for split in v
            .get("splits")
            .and_then(|s| s.as_array())
            .into_iter()
            .flatten()
        {
            for sh in split
                .get("shards")
                .and_then(|s| s.as_array())
                .into_iter()
                .flatten()
            {
                if let (Some(file), Some(sha)) = (
                    sh.get("file").and_then(|x| x.as_str()),
                    sh.get("sha256").and_then(|x| x.as_str()),
                ) {
                    shards.insert(file.to_string(), sha.to_string());
                }
            }
        }
    }
    Ok(RunFile { shards, ..empty })
}

/// Id fingerprints of every split, kept for the exact overlap check while the dataset has at
/// most [`EXACT_OVERLAP_MAX_ROWS`] rows (dropped as soon as it has more).
struct Fingerprints {
    per_split: Vec<Vec<u64>>,
    rows: u64,
    exact: bool,
}

impl Fingerprints {
    fn new(splits: usize) -> Fingerprints {
        Fingerprints {
            per_split: vec![Vec::new(); splits],
            rows: 0,
            exact: true,
        }
    }

    fn push(&mut self, split: usize, fp: u64) {
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
fn overlap_check(recipe: &Recipe, fps: Fingerprints) -> Overlap {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::composer::compose_seeded;

    #[test]
    fn row_tokens_are_the_count_of_the_joined_sequence() {
        let set = TemplateSet::builtin();
        let tok = Tokenizer::domain(&set);
        let mut r = Rendered::default();
        for id in set.ids() {
            let t = set.get(id).unwrap();
            for (i, mode) in [Mode::Forward, Mode::Reverse].into_iter().enumerate() {
                for op in [1, 2, 5, 10, 20, 30] {
                    let p = compose_seeded(t, op, mode, 100 + i as u64).unwrap();
                    r.fill(t, &p);
                    let joined = format!("{}{}", r.prompt, r.completion);
                    assert_eq!(
                        row_tokens(&tok, &r).unwrap(),
                        tok.count(&joined).unwrap() as u64 + 1,
                        "{id} op {op} {mode}"
                    );
                }
            }
        }
    }
}
