//! The streamed audit behind `dagmath audit`: predictions are read a chunk at a time and gold
//! keeps only its keys in memory (a dataset's graphs stay on disk and are read a row group at
//! a time, decoded into one reused buffer per worker right before a sample is verified), while
//! the next chunk is read and the last chunk's verdicts are written. Memory is bounded
//! whatever the file sizes; verdicts and summary equal the in-memory [`super::audit`]'s at any
//! thread count.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

use super::{verify_job, verify_jobs, AuditConfig, AuditError, Job, Summary, Tally};
use crate::composer::Mode;
use crate::dataset::gold_graph::GoldRows;
use crate::dataset::predictions::{Prediction, PredictionStream, CHUNK};
use crate::dataset::reader::{for_each_gold_key, for_each_gold_row, Dataset};
use crate::dataset::reference::read_reference_jsonl;
use crate::dataset::shard::{write_atomic, TableWriter};
use crate::dataset::verdicts::{self, SampleVerdict};
use crate::graph::{GoldGraph, GoldItem, GoldKeys, KeyRef, KeyTable};
use crate::trace::{TraceFormat, Verifier};

/// What to audit.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// A dagmath dataset folder or a reference-format `.jsonl` file.
    pub gold: &'a Path,
    /// Completions (`.jsonl` or `.parquet`); `None` verifies the gold's own traces.
    pub predictions: Option<&'a Path>,
    pub cfg: AuditConfig,
    /// A folder for `verdicts.parquet` and `summary.json` (created if missing, and removed
    /// again if this call created it and fails).
    pub out: Option<&'a Path>,
}

/// Verify every prediction of `req` against its gold problem and summarise them; with
/// `req.out`, write `verdicts.parquet` and `summary.json` there. `progress` is called with the
/// number of samples verified, a chunk at a time. Runs on the current rayon pool.
pub fn audit_files(
    req: &Request<'_>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Summary, AuditError> {
    if let Some(out) = req.out.filter(|o| o.exists() && !o.is_dir()) {
        return Err(AuditError::OutIsFile {
            path: out.to_path_buf(),
        });
    }
    let mut preds = match req.predictions {
        Some(p) => Preds::File(PredictionStream::open(p)?),
        None => Preds::Own(Vec::new().into_iter()),
    };
    let (gold, own, format) = load_gold(req)?;
    // Completions are read in the gold's trace format.
    let cfg = AuditConfig { format, ..req.cfg };
    if req.predictions.is_none() {
        preds = Preds::Own(own.into_iter());
    }
    // A duplicate id is an error only where a prediction names it (or for the gold's own
    // traces, always).
    let mut index: FxHashMap<&str, usize> = FxHashMap::default();
    let mut dups: FxHashSet<&str> = FxHashSet::default();
    for (i, id) in gold.ids().enumerate() {
        if index.insert(id, i).is_some() {
            dups.insert(id);
        }
    }
    let dup_err = |id: &str| AuditError::DuplicateId {
        path: req.gold.to_path_buf(),
        id: id.to_string(),
    };
    if req.predictions.is_none() {
        if let Some(id) = gold.ids().find(|id| dups.contains(id)) {
            return Err(dup_err(id));
        }
    }
    let mut tally = Tally::default();
    let mut unknown = (0usize, Vec::<String>::new());
    // Declared before the table, so dropped after it (the table removes its temporary file).
    let mut created = DirGuard(None);
    let mut table: Option<TableWriter> = None;
    let verdicts_path = req.out.map(|o| o.join("verdicts.parquet"));
    let mut pending: Vec<SampleVerdict> = Vec::new();
    let mut cache = Vec::new();
    let mut chunk = preds.next_chunk()?;
    while let Some(ps) = chunk {
        let mut jobs = Vec::with_capacity(ps.len());
        for p in &ps {
            match index.get(p.id.as_str()) {
                Some(_) if !dups.is_empty() && dups.contains(p.id.as_str()) => {
                    return Err(dup_err(&p.id))
                }
                Some(&g) => jobs.push(Job {
                    gold: g,
                    sample: p.sample,
                    completion: &p.completion,
                }),
                None => {
                    unknown.0 += 1;
                    if unknown.1.len() < 5 {
                        unknown.1.push(p.id.clone());
                    }
                }
            }
        }
        // Read the next chunk and write the last one's verdicts while this one is verified.
        let writing = verdicts_path.as_deref().filter(|_| unknown.0 == 0);
        let ((next, written), verdicts) = rayon::join(
            || {
                let w = match writing {
                    Some(path) => write_verdicts(path, &gold, &pending, &mut table, &mut created.0),
                    None => Ok(()),
                };
                (preds.next_chunk(), w)
            },
            || gold.verify(&jobs, cfg, &mut cache),
        );
        written?;
        pending = verdicts?;
        for v in &pending {
            tally.add(v);
        }
        progress(ps.len() as u64);
        chunk = next?;
    }
    if unknown.0 > 0 {
        drop(table);
        let mut ex = unknown.1;
        ex.dedup();
        return Err(AuditError::UnknownIds {
            count: unknown.0,
            examples: ex.join(", "),
        });
    }
    if let Some(path) = verdicts_path.as_deref() {
        write_verdicts(path, &gold, &pending, &mut table, &mut created.0)?;
    }
    if tally.samples() == 0 {
        return Err(AuditError::NoPredictions);
    }
    let summary = tally.summary(&gold, cfg, None);
    if let (Some(out), Some(table)) = (req.out, table) {
        table.finish()?;
        created.0 = None;
        let json = serde_json::to_string_pretty(&summary).expect("summary serialises");
        write_atomic(&out.join("summary.json"), format!("{json}\n").as_bytes())?;
    }
    Ok(summary)
}

/// The gold data. A dataset's graphs stay on disk, read a row group at a time for the
/// predictions that need them, so memory holds keys, not graphs; reference-format JSONL and
/// `--self` keep their items in memory.
enum Gold {
    Items(Vec<GoldItem>),
    Shards {
        keys: KeyTable,
        /// (shard, row group, row within the row group) of each key.
        at: Vec<(u32, u32, u32)>,
        paths: Vec<PathBuf>,
    },
}

impl Gold {
    fn ids(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Gold::Items(items) => Box::new(items.iter().map(|g| g.id.as_str())),
            Gold::Shards { keys, .. } => Box::new((0..keys.len()).map(|g| keys.id(g))),
        }
    }

    /// Verify `jobs` in parallel; the verdicts are in job order. Shard gold is read a row
    /// group at a time, at most [`WAVE`] row groups held at once (plus the last wave's, kept
    /// for the next chunk, which in a file sorted like the gold data starts where this one
    /// ended), and each worker decodes a graph into one reused buffer right before verifying.
    fn verify(
        &self,
        jobs: &[Job<'_>],
        cfg: AuditConfig,
        cache: &mut Vec<Cached>,
    ) -> Result<Vec<SampleVerdict>, AuditError> {
        let (at, paths) = match self {
            Gold::Items(items) => return Ok(verify_jobs(&|g| &items[g].graph, jobs, cfg)),
            Gold::Shards { at, paths, .. } => (at, paths),
        };
        let group = |j: &Job<'_>| {
            let (s, rg, _) = at[j.gold];
            (s, rg)
        };
        // Job indices sorted by row group (stable, so each group keeps job order).
        let mut order: Vec<u32> = (0..jobs.len() as u32).collect();
        order.sort_by_key(|&j| group(&jobs[j as usize]));
        let mut out: Vec<Option<SampleVerdict>> = vec![None; jobs.len()];
        let mut rest = &order[..];
        while !rest.is_empty() {
            // The next wave: the jobs of the next WAVE row groups.
            let (mut groups, mut n) = (Vec::new(), 0);
            while n < rest.len() {
                let g = group(&jobs[rest[n] as usize]);
                if groups.last() != Some(&g) {
                    if groups.len() == WAVE {
                        break;
                    }
                    groups.push(g);
                }
                n += 1;
            }
            let (wave, tail) = rest.split_at(n);
            rest = tail;
            let read: Vec<Result<Cached, AuditError>> = groups
                .par_iter()
                .map(|&(s, rg)| {
                    if let Some((_, rows)) = cache.iter().find(|c| c.0 == (s, rg)) {
                        return Ok(((s, rg), rows.clone()));
                    }
                    let rows = GoldRows::read(&paths[s as usize], rg as usize)
                        .map_err(AuditError::from)?;
                    Ok(((s, rg), Arc::new(rows)))
                })
                .collect();
            *cache = read.into_iter().collect::<Result<_, _>>()?;
            let rows = |g: (u32, u32)| &cache.iter().find(|c| c.0 == g).expect("read").1;
            let verdicts: Vec<Result<SampleVerdict, AuditError>> = wave
                .par_iter()
                .with_min_len(64)
                .map_init(
                    || (Verifier::for_format(cfg.format), empty_graph()),
                    |(ver, graph), &j| {
                        let job = &jobs[j as usize];
                        let (s, rg, row) = at[job.gold];
                        rows((s, rg))
                            .decode_into(row as usize, graph)
                            .map_err(AuditError::from)?;
                        Ok(verify_job(ver, graph, job, cfg))
                    },
                )
                .collect();
            for (&j, v) in wave.iter().zip(verdicts) {
                out[j as usize] = Some(v?);
            }
        }
        Ok(out
            .into_iter()
            .map(|v| v.expect("every job verified"))
            .collect())
    }
}

/// A graph buffer for [`GoldRows::decode_into`] to fill.
fn empty_graph() -> GoldGraph {
    GoldGraph {
        mode: Mode::Forward,
        nodes: Vec::new(),
        asked: 0,
        answer: 0,
    }
}

/// A row group read for verification: (shard, row group) and its rows.
type Cached = ((u32, u32), Arc<GoldRows>);

/// Row groups held at once while verifying a chunk of predictions.
const WAVE: usize = 4;

impl GoldKeys for Gold {
    fn key(&self, g: usize) -> KeyRef<'_> {
        match self {
            Gold::Items(items) => items.as_slice().key(g),
            Gold::Shards { keys, .. } => keys.key(g),
        }
    }
}

/// Gold, plus (without predictions) the gold's own completions as predictions, and the gold's
/// trace format (a dataset's manifest's; reference-format gold is `full`).
fn load_gold(a: &Request<'_>) -> Result<(Gold, Vec<Prediction>, TraceFormat), AuditError> {
    let mut own = Vec::new();
    let mut items = Vec::new();
    let mut add = |item: GoldItem, completion: String| {
        if a.predictions.is_none() {
            own.push(Prediction {
                id: item.id.clone(),
                sample: 0,
                completion,
            });
        }
        items.push(item);
    };
    let format = if a.gold.is_dir() {
        let ds = Dataset::open(a.gold).map_err(AuditError::from)?;
        let format = ds.manifest.trace_format;
        let paths: Vec<PathBuf> = ds
            .manifest
            .splits
            .iter()
            .flat_map(|s| ds.shard_paths(&s.name))
            .collect();
        if a.predictions.is_some() {
            let (mut keys, mut at) = (KeyTable::default(), Vec::new());
            for (s, path) in paths.iter().enumerate() {
                let mut last = (usize::MAX, 0u32);
                for_each_gold_key(path, |rg, id, split, op, template, mode| {
                    let row = if rg == last.0 { last.1 + 1 } else { 0 };
                    last = (rg, row);
                    at.push((s as u32, rg as u32, row));
                    keys.push(id, split, op, template, mode);
                })
                .map_err(AuditError::from)?;
            }
            return Ok((Gold::Shards { keys, at, paths }, own, format));
        }
        for path in &paths {
            for_each_gold_row(path, true, |r| {
                let item = GoldItem {
                    id: r.id,
                    split: r.split,
                    op: r.op,
                    template: r.template,
                    graph: r.graph,
                };
                add(item, r.completion);
            })
            .map_err(AuditError::from)?;
        }
        format
    } else {
        // The reference's gold solution is the bare trace.
        for r in read_reference_jsonl(a.gold).map_err(AuditError::from)? {
            let item = GoldItem {
                id: r.id,
                split: "reference".into(),
                op: r.op,
                template: r.template,
                graph: r.graph,
            };
            add(item, r.solution);
        }
        TraceFormat::Full
    };
    Ok((Gold::Items(items), own, format))
}

/// Where the predictions come from: a file, streamed, or the gold's own completions.
enum Preds {
    File(PredictionStream),
    Own(std::vec::IntoIter<Prediction>),
}

impl Preds {
    fn next_chunk(&mut self) -> Result<Option<Vec<Prediction>>, AuditError> {
        match self {
            Preds::File(s) => s.next_chunk().map_err(AuditError::from),
            Preds::Own(it) => {
                let chunk: Vec<Prediction> = it.take(CHUNK).collect();
                Ok((!chunk.is_empty()).then_some(chunk))
            }
        }
    }
}

/// The `--out` folder this run created: removed again (if still empty) when the run fails,
/// so bad input leaves nothing behind.
struct DirGuard(Option<PathBuf>);

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Append `verdicts` to verdicts.parquet, opening it (and creating its folder, remembered in
/// `created`) on the first batch.
fn write_verdicts(
    path: &std::path::Path,
    gold: &Gold,
    verdicts: &[SampleVerdict],
    table: &mut Option<TableWriter>,
    created: &mut Option<PathBuf>,
) -> Result<(), AuditError> {
    if verdicts.is_empty() {
        return Ok(());
    }
    let batch = verdicts::batch(gold, verdicts);
    if table.is_none() {
        let dir = path.parent().expect("a file in --out");
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|source| AuditError::CreateOut {
                path: dir.to_path_buf(),
                source,
            })?;
            *created = Some(dir.to_path_buf());
        }
        *table = Some(TableWriter::create(path, batch.schema())?);
    }
    table.as_mut().expect("opened").write(&batch)?;
    Ok(())
}
