//! `dagmath generate`: recipe → Parquet shards, manifest and dataset card.
//!
//! A run reads top to bottom in `generate_in_pool`: `plan` the cells and check they compose,
//! prepare and lock the `output` folder, then per split: `sizing` (token budgets only),
//! `select` the rows and `write` the shards; last the [`manifest`](crate::dataset::manifest)
//! and the card.
//!
//! Determinism across thread counts: candidates are composed in parallel, but each cell's
//! candidates are *accepted* sequentially in index order (held-out bucket rule, then the
//! Bloom-filter dedup), and rows are taken from the cells in a fixed interleaved order. Threads
//! change only how fast this happens. Crash safety: shards appear by rename when complete; the
//! manifest and card are written last; `--resume` replays the (cheap) selection to rebuild the
//! exact generator state, skips every shard already on disk and writes the rest. Sizing is
//! deterministic, so `--resume` simply repeats it.

mod output;
mod plan;
mod select;
mod sizing;
mod write;

use std::path::PathBuf;

use super::bloom::Bloom;
use super::card::dataset_card;
use super::manifest::{overlap_check, Fingerprints, Manifest, SplitManifest};
use super::recipe::{Budget, Recipe, SplitSpec};
use super::shard::{write_atomic, ShardError};
use super::split::{Cell, Share};
use crate::composer::{ComposeError, Mode};
use crate::template::TemplateSet;
use crate::tokenizer::{Tokenizer, TokenizerError};
pub use output::{lock_folder, OutputLock, RUN_FILE};
use output::{prepare_output, Prepared};
use select::Selection;
use sizing::{bloom_items, cell_manifests, size_cells};
use write::{write_shard, SplitProgress};

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

impl GenerateError {
    /// Whether what the caller named is at fault (the folder, recipe or flags: the CLI's exit
    /// 2, Python's `ValueError`) rather than the system (I/O: exit 1, `OSError`).
    pub fn is_users(&self) -> bool {
        matches!(
            self,
            GenerateError::NotEmpty(_)
                | GenerateError::OtherRecipe { .. }
                | GenerateError::NothingToResume { .. }
                | GenerateError::Compose { .. }
                | GenerateError::Exhausted { .. }
                | GenerateError::TooManyThreads { .. }
                | GenerateError::Locked(_)
                | GenerateError::NotAFolder(_)
                | GenerateError::Foreign { .. }
                | GenerateError::Corrupted { .. }
        )
    }
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

/// What every step of a run reads.
struct Run<'a> {
    recipe: &'a Recipe,
    templates: &'a TemplateSet,
    opts: &'a GenerateOptions,
    obs: &'a dyn Observer,
    hash: String,
    tok: Tokenizer,
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
    let shares = plan::plan_shares(recipe, templates)?;
    let mut prepared = prepare_output(&opts.out, &hash, recipe.seed, opts.resume, opts.force)?;
    let run = Run {
        recipe,
        templates,
        opts,
        obs,
        hash,
        tok: Tokenizer::domain(templates),
    };
    let result = write_dataset(&run, &shares, &mut prepared);
    if let Err(e) = &result {
        remove_after_bad_input(e, opts, &prepared);
    }
    result
}

/// Bad input found part-way (a cell that cannot be composed or runs out of distinct
/// problems) cannot be resumed: remove what this run created, as if it never started.
fn remove_after_bad_input(e: &GenerateError, opts: &GenerateOptions, prepared: &Prepared) {
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

/// Writes every split into the prepared folder, then the manifest and the card.
fn write_dataset(
    run: &Run,
    shares: &[Vec<Share>],
    prepared: &mut Prepared,
) -> Result<Manifest, GenerateError> {
    let recipe = run.recipe;
    let mut bloom = Bloom::for_items(bloom_items(recipe));
    let mut fingerprints = Fingerprints::new(recipe.splits.len());
    let mut splits = Vec::new();
    for (si, (split, shares)) in recipe.splits.iter().zip(shares).enumerate() {
        let sm = write_split(
            run,
            prepared,
            si,
            split,
            shares,
            &mut bloom,
            &mut fingerprints,
        )?;
        splits.push(sm);
    }
    let overlap = overlap_check(recipe, fingerprints);
    let manifest = Manifest::new(recipe, run.hash.clone(), splits, overlap);
    finish(&run.opts.out, &manifest)?;
    Ok(manifest)
}

/// One split: size it (token budgets), then select and write its shards in order.
fn write_split(
    run: &Run,
    prepared: &mut Prepared,
    si: usize,
    split: &SplitSpec,
    shares: &[Share],
    bloom: &mut Bloom,
    fingerprints: &mut Fingerprints,
) -> Result<SplitManifest, GenerateError> {
    let mut sized = match split.budget {
        Budget::Rows(_) => None,
        Budget::Tokens(n) => {
            run.obs.split_sizing(&split.name, n);
            Some(size_cells(
                run.recipe,
                split,
                shares,
                run.templates,
                &run.tok,
                bloom,
                run.obs,
            )?)
        }
    };
    let cells: Vec<Cell> = match &sized {
        None => shares.iter().map(|s| s.cell(s.units)).collect(),
        Some(sized) => sized.iter().map(|s| s.cell.clone()).collect(),
    };
    let rows: u64 = cells.iter().map(|c| c.rows).sum();
    run.obs.split_started(&split.name, rows);
    let n_cells = cells.len();
    let selection = Selection::new(
        run.recipe.seed,
        split,
        cells,
        run.templates,
        sized.as_deref_mut(),
    );
    let mut manifest = SplitManifest::new(split, rows);
    for cell in selection.cells() {
        let d = cell.noise.to_string();
        if !manifest.distractors.contains(&d) {
            manifest.distractors.push(d);
        }
    }
    let mut sp = SplitProgress {
        index: si,
        spec: split,
        rows,
        selection,
        manifest,
        cell_tokens: vec![0u64; n_cells],
    };
    let n_shards = rows.div_ceil(run.recipe.shard_size) as usize;
    for shard in 0..n_shards {
        write_shard(run, prepared, &mut sp, shard, bloom, fingerprints)?;
    }
    if let Some(sized) = sized {
        sp.manifest.cells = cell_manifests(&split.name, &sized, &sp.cell_tokens);
    }
    Ok(sp.manifest)
}

/// The dataset is complete: write the card and the manifest, then drop the run journal.
fn finish(out: &std::path::Path, manifest: &Manifest) -> Result<(), GenerateError> {
    let json = serde_json::to_string_pretty(manifest).expect("manifest serialises");
    write_atomic(&out.join("README.md"), dataset_card(manifest).as_bytes())?;
    write_atomic(&out.join("manifest.json"), format!("{json}\n").as_bytes())?;
    let run = out.join(RUN_FILE);
    std::fs::remove_file(&run).map_err(|source| ShardError::Io { path: run, source })?;
    Ok(())
}
