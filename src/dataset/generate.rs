//! `dagmath generate`: recipe → Parquet shards, manifest and dataset card.
//!
//! Determinism across thread counts: candidates are composed in parallel, but each cell's
//! candidates are *accepted* sequentially in index order (held-out bucket rule, then the
//! Bloom-filter dedup), and rows are taken from the cells in a fixed interleaved order. Threads
//! change only how fast this happens. Crash safety: shards appear by rename when complete; the
//! manifest and card are written last; `--resume` replays the (cheap) selection to rebuild the
//! exact generator state, skips every shard already on disk and writes the rest.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use super::bloom::Bloom;
use super::card::dataset_card;
use super::recipe::Recipe;
use super::schema::{BatchBuilder, SCHEMA_VERSION};
use super::shard::{
    file_sha256, read_meta, shard_file_name, write_atomic, ShardError, ShardMeta, ShardWriter,
};
use super::split::{admits, plan_cells, Cell, Interleave, HELD_OUT_BUCKETS};
use crate::composer::{compose_seeded, problem_id, seed, ComposeError, Mode, Problem, ProblemId};
use crate::graph::GoldGraph;
use crate::render::Rendered;
use crate::template::{Template, TemplateSet};

/// Marker file present while a run is in progress (removed when the dataset is complete).
pub const RUN_FILE: &str = ".dagmath-run.json";
/// Consecutive rejected candidates after which a cell is declared exhausted.
const MAX_CONSECUTIVE_REJECTS: u64 = 200_000;
/// Rows selected, rendered and written per step (fixed, so output does not depend on threads).
const CHUNK_ROWS: usize = 1024;
/// Datasets up to this many rows get an exact pairwise overlap check (8 bytes per row).
const EXACT_OVERLAP_MAX_ROWS: u64 = 1_000_000;

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
         lower this cell's share or the split's size"
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
    #[error("cannot create thread pool: {0}")]
    Threads(String),
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
    pub shards: Vec<ShardEntry>,
    pub op_hist: BTreeMap<u32, u64>,
    pub template_hist: BTreeMap<String, u64>,
    pub mode_hist: BTreeMap<String, u64>,
    /// Candidates composed for this split, and how many were rejected by the held-out rule or
    /// as duplicates.
    pub candidates: u64,
    pub rejected_bucket: u64,
    pub rejected_duplicate: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ShardEntry {
    pub file: String,
    pub rows: u64,
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
}

/// A selected row, rendered and ready to encode.
type Prepared<'t> = (&'t Template, Problem, ProblemId, Rendered, GoldGraph);

/// Derived seed of candidate `i` of a cell.
fn candidate_seed(base: &[u64; 4], i: u64) -> u64 {
    seed::derive(&[base[0], base[1], base[2], base[3], i])
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
    let plans: Vec<Vec<Cell>> = recipe.splits.iter().map(plan_cells).collect();
    for (split, cells) in recipe.splits.iter().zip(&plans) {
        for c in cells {
            let t = templates
                .get(&c.template)
                .expect("recipe templates were validated");
            compose_seeded(t, c.op, c.mode, 0).map_err(|source| GenerateError::Compose {
                split: split.name.clone(),
                template: c.template.clone(),
                op: c.op,
                mode: c.mode,
                source,
            })?;
        }
    }
    let data = prepare_output(&opts.out, &hash, recipe.seed, opts.resume, opts.force)?;

    let mut bloom = Bloom::for_items(recipe.total_rows());
    let exact = recipe.total_rows() <= EXACT_OVERLAP_MAX_ROWS;
    let mut fingerprints: Vec<Vec<u64>> = Vec::new();
    let mut splits = Vec::new();
    for (split, cells) in recipe.splits.iter().zip(plans) {
        obs.split_started(&split.name, split.size);
        let mut states: Vec<CellState> = cells
            .into_iter()
            .map(|cell| CellState {
                template: templates.get(&cell.template).expect("validated"),
                seed_base: [
                    recipe.seed,
                    seed::str_key(&split.name),
                    seed::str_key(&cell.template),
                    (cell.op as u64) << 8 | mode_key(cell.mode),
                ],
                cell,
                next: 0,
                queue: VecDeque::new(),
                accepted: 0,
                rejects_in_a_row: 0,
            })
            .collect();
        let mut il = Interleave::new(&states.iter().map(|s| s.cell.clone()).collect::<Vec<_>>());
        let mut sm = SplitManifest {
            name: split.name.clone(),
            held_out: split.held_out,
            rows: split.size,
            shards: Vec::new(),
            op_hist: BTreeMap::new(),
            template_hist: BTreeMap::new(),
            mode_hist: BTreeMap::new(),
            candidates: 0,
            rejected_bucket: 0,
            rejected_duplicate: 0,
        };
        let mut fps = Vec::new();
        let n_shards = split.size.div_ceil(recipe.shard_size) as usize;
        for shard in 0..n_shards {
            let lo = shard as u64 * recipe.shard_size;
            let rows = (split.size - lo).min(recipe.shard_size) as usize;
            let file = shard_file_name(&split.name, shard, n_shards);
            let path = data.join(&file);
            let meta = ShardMeta {
                recipe_sha256: hash.clone(),
                seed: recipe.seed,
                split: split.name.clone(),
                shard,
                n_shards,
            };
            // A shard already on disk (resume) is checked, then its rows are only replayed.
            let done = if opts.resume && path.exists() {
                let (m, n) = read_meta(&path)?;
                if m != meta || n != rows as u64 {
                    return Err(GenerateError::OtherRecipe {
                        path,
                        found: m.recipe_sha256,
                        expected: hash.clone(),
                    });
                }
                Some(file_sha256(&path)?)
            } else {
                None
            };
            let mut writer = match done {
                Some(_) => None,
                None => Some(ShardWriter::create(&path, &meta, recipe.row_group_size)?),
            };
            let mut builder = BatchBuilder::new();
            // Rows are selected and written in fixed-size chunks (independent of the thread
            // count), so memory stays bounded whatever the shard size. Encoding chunk k overlaps
            // with selecting and rendering chunk k + 1.
            let mut pending: Option<Vec<Prepared>> = None;
            let mut left = rows;
            while left > 0 || pending.is_some() {
                let n = left.min(CHUNK_ROWS);
                left -= n;
                let mut flush = |pending: Option<Vec<Prepared>>| -> Result<(), GenerateError> {
                    if let (Some(rows), Some(w)) = (pending, writer.as_mut()) {
                        for (t, p, id, r, g) in &rows {
                            builder.push(&split.name, &t.id, id, p, r, g);
                        }
                        w.write(&builder.finish())?;
                    }
                    Ok(())
                };
                let prepare = || -> Result<Option<Vec<Prepared>>, GenerateError> {
                    if n == 0 {
                        return Ok(None);
                    }
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
                        *sm.template_hist.entry(s.cell.template.clone()).or_default() += 1;
                        *sm.mode_hist.entry(p.mode.as_str().to_string()).or_default() += 1;
                        if exact {
                            fps.push(id.fingerprint());
                        }
                        taken.push((s.template, p, id));
                    }
                    obs.rows_done(n as u64);
                    if done.is_some() {
                        return Ok(None);
                    }
                    Ok(Some(
                        taken
                            .into_par_iter()
                            .map(|(t, p, id)| {
                                let r = Rendered::of(t, &p);
                                let g = GoldGraph::from_problem(t, &p);
                                (t, p, id, r, g)
                            })
                            .collect(),
                    ))
                };
                let prev = pending.take();
                let (flushed, next) = rayon::join(move || flush(prev), prepare);
                flushed?;
                pending = next?;
            }
            let (bytes, sha256) = match (writer, done) {
                (Some(w), _) => {
                    let info = w.finish()?;
                    (info.bytes, info.sha256)
                }
                (None, Some(d)) => d,
                (None, None) => unreachable!("a shard is either written or already done"),
            };
            sm.shards.push(ShardEntry {
                file: format!("data/{file}"),
                rows: rows as u64,
                bytes,
                sha256,
            });
        }
        fingerprints.push(fps);
        splits.push(sm);
    }

    let overlap = overlap_check(recipe, &mut fingerprints, exact);
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
                let p = compose_seeded(
                    s.template,
                    s.cell.op,
                    s.cell.mode,
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
            } else if !bloom.insert(&id) {
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

#[derive(Serialize, serde::Deserialize)]
struct RunFile {
    recipe_sha256: String,
    seed: u64,
}

/// Check and prepare the output directory; returns its `data/` path. Writes nothing unless
/// the run may proceed.
fn prepare_output(
    out: &Path,
    hash: &str,
    seed: u64,
    resume: bool,
    force: bool,
) -> Result<PathBuf, GenerateError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| GenerateError::Shard(ShardError::Io { path, source })
    };
    let data = out.join("data");
    let non_empty = out.exists() && std::fs::read_dir(out).map_err(io(out))?.next().is_some();
    if non_empty && !resume && !force {
        return Err(GenerateError::NotEmpty(out.to_path_buf()));
    }
    if non_empty && resume {
        let found = [out.join(RUN_FILE), out.join("manifest.json")]
            .iter()
            .find_map(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("recipe_sha256")?.as_str().map(String::from));
        match found {
            None => {
                return Err(GenerateError::NothingToResume {
                    path: out.to_path_buf(),
                })
            }
            Some(f) if f != hash => {
                return Err(GenerateError::OtherRecipe {
                    path: out.to_path_buf(),
                    found: f,
                    expected: hash.to_string(),
                })
            }
            Some(_) => {}
        }
    }
    if non_empty && force && !resume {
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
    let run = serde_json::to_vec(&RunFile {
        recipe_sha256: hash.to_string(),
        seed,
    })
    .expect("run file serialises");
    write_atomic(&out.join(RUN_FILE), &run)?;
    Ok(data)
}

/// Pairwise shared ids between splits (exact for small datasets) and duplicate ids overall.
fn overlap_check(recipe: &Recipe, fps: &mut [Vec<u64>], exact: bool) -> Overlap {
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
