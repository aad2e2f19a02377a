//! `dagmath audit`: verify model completions (or a dataset's own gold traces) against gold
//! problems; write verdicts.parquet and summary.json; print pass@k and a failure taxonomy.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::anyhow;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

use dagmath::composer::Mode;
use dagmath::dataset::predictions::{Prediction, PredictionStream, CHUNK};
use dagmath::dataset::reader::{for_each_gold_key, for_each_gold_row, Dataset, GoldRows};
use dagmath::dataset::reference::read_reference_jsonl;
use dagmath::dataset::shard::{write_atomic, TableWriter};
use dagmath::dataset::verdicts::{self, SampleVerdict};
use dagmath::eval::audit::{
    verify_job, verify_jobs, AuditConfig, AuditError, Job, KeyTable, Summary, Tally,
};
use dagmath::graph::{GoldGraph, GoldItem, GoldKeys, KeyRef};
use dagmath::trace::{Rule, Verifier};

use super::CliError;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RuleArg {
    /// Any arithmetic error, unsupported claim or extra node fails (the default).
    Strict,
    /// The reference's semantics: extra nodes tolerated, intermediates unchecked.
    Interplay,
}

/// Verify sampled completions against gold problems and report pass@k, failures and rewards.
///
/// Gold is a dagmath dataset directory, or a reference-format JSONL file (records with
/// problem, question, solution, op, template and optionally id; the gold graph is read from the
/// gold trace; without an id a record is named by its 0-based record index). Predictions are
/// JSONL or Parquet with `id` and `completion` (or `response` / `output`), any number of
/// samples per id.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  dagmath audit --gold out/quickstart --self\n  \
dagmath audit --gold out/quickstart --predictions samples.jsonl --rule strict --out out/audit"
)]
pub struct Args {
    /// A dagmath dataset directory or a reference-format .jsonl file.
    #[arg(long, value_name = "PATH")]
    gold: PathBuf,
    /// Completions to verify (.jsonl or .parquet).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "self_check",
        conflicts_with = "self_check"
    )]
    predictions: Option<PathBuf>,
    /// Verify the gold data's own traces instead (every one must pass).
    #[arg(long = "self")]
    self_check: bool,
    /// Verification rule.
    #[arg(long, value_enum, default_value = "strict")]
    rule: RuleArg,
    /// Outcome weight of the mixed and penalty rewards (0.2 = 0.2·outcome + 0.8·process).
    #[arg(long, default_value_t = 0.2)]
    alpha: f64,
    /// Directory for verdicts.parquet and summary.json.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Worker threads; 0 uses every core; at most 4 per core.
    #[arg(long, default_value_t = 0)]
    threads: usize,
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
    ) -> Result<Vec<SampleVerdict>, CliError> {
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
            let read: Vec<Result<Cached, CliError>> = groups
                .par_iter()
                .map(|&(s, rg)| {
                    if let Some((_, rows)) = cache.iter().find(|c| c.0 == (s, rg)) {
                        return Ok(((s, rg), rows.clone()));
                    }
                    let rows =
                        GoldRows::read(&paths[s as usize], rg as usize).map_err(CliError::usage)?;
                    Ok(((s, rg), Arc::new(rows)))
                })
                .collect();
            *cache = read.into_iter().collect::<Result<_, _>>()?;
            let rows = |g: (u32, u32)| &cache.iter().find(|c| c.0 == g).expect("read").1;
            let verdicts: Vec<Result<SampleVerdict, CliError>> = wave
                .par_iter()
                .with_min_len(64)
                .map_init(
                    || (Verifier::new(), empty_graph()),
                    |(ver, graph), &j| {
                        let job = &jobs[j as usize];
                        let (s, rg, row) = at[job.gold];
                        rows((s, rg))
                            .decode_into(row as usize, graph)
                            .map_err(CliError::usage)?;
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

/// Gold, plus (for --self) the gold's own completions as predictions.
fn load_gold(a: &Args) -> Result<(Gold, Vec<Prediction>), CliError> {
    let mut own = Vec::new();
    let mut items = Vec::new();
    let mut add = |item: GoldItem, completion: String| {
        if a.self_check {
            own.push(Prediction {
                id: item.id.clone(),
                sample: 0,
                completion,
            });
        }
        items.push(item);
    };
    if a.gold.is_dir() {
        let ds = Dataset::open(&a.gold).map_err(CliError::usage)?;
        let paths: Vec<PathBuf> = ds
            .manifest
            .splits
            .iter()
            .flat_map(|s| ds.shard_paths(&s.name))
            .collect();
        if !a.self_check {
            let (mut keys, mut at) = (KeyTable::default(), Vec::new());
            for (s, path) in paths.iter().enumerate() {
                let mut last = (usize::MAX, 0u32);
                for_each_gold_key(path, |rg, id, split, op, template, mode| {
                    let row = if rg == last.0 { last.1 + 1 } else { 0 };
                    last = (rg, row);
                    at.push((s as u32, rg as u32, row));
                    keys.push(id, split, op, template, mode);
                })
                .map_err(CliError::usage)?;
            }
            return Ok((Gold::Shards { keys, at, paths }, own));
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
            .map_err(CliError::usage)?;
        }
    } else {
        // The reference's gold solution is the bare trace.
        for r in read_reference_jsonl(&a.gold).map_err(CliError::usage)? {
            let item = GoldItem {
                id: r.id,
                split: "reference".into(),
                op: r.op,
                template: r.template,
                graph: r.graph,
            };
            add(item, r.solution);
        }
    }
    Ok((Gold::Items(items), own))
}

/// Where the predictions come from: a file, streamed, or the gold's own completions.
enum Preds {
    File(PredictionStream),
    Own(std::vec::IntoIter<Prediction>),
}

impl Preds {
    fn next_chunk(&mut self) -> Result<Option<Vec<Prediction>>, CliError> {
        match self {
            Preds::File(s) => s.next_chunk().map_err(CliError::usage),
            Preds::Own(it) => {
                let chunk: Vec<Prediction> = it.take(CHUNK).collect();
                Ok((!chunk.is_empty()).then_some(chunk))
            }
        }
    }
}

pub fn run(a: Args) -> Result<(), CliError> {
    if !(0.0..=1.0).contains(&a.alpha) {
        return Err(CliError::usage(anyhow!(
            "--alpha: {} must lie in [0, 1]",
            a.alpha
        )));
    }
    if let Some(out) = a.out.as_ref().filter(|o| o.exists() && !o.is_dir()) {
        return Err(CliError::usage(anyhow!(
            "--out {}: is a file, not a folder",
            out.display()
        )));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(super::check_threads(a.threads)?)
        .build()
        .map_err(|e| anyhow!("cannot create thread pool: {e}"))?;
    let cfg = AuditConfig {
        rule: match a.rule {
            RuleArg::Strict => Rule::Strict,
            RuleArg::Interplay => Rule::Interplay,
        },
        alpha: a.alpha,
    };
    let started = std::time::Instant::now();
    let mut preds = match &a.predictions {
        Some(p) => Preds::File(PredictionStream::open(p).map_err(CliError::usage)?),
        None => Preds::Own(Vec::new().into_iter()),
    };
    let (gold, own) = pool.install(|| load_gold(&a))?;
    if a.self_check {
        preds = Preds::Own(own.into_iter());
    }
    // A duplicate id is an error only where a prediction names it (or for --self, always).
    let mut index: FxHashMap<&str, usize> = FxHashMap::default();
    let mut dups: FxHashSet<&str> = FxHashSet::default();
    for (i, id) in gold.ids().enumerate() {
        if index.insert(id, i).is_some() {
            dups.insert(id);
        }
    }
    let dup_err = |id: &str| {
        CliError::usage(anyhow!(
            "{}: id `{id}` appears more than once in the gold data",
            a.gold.display()
        ))
    };
    if a.self_check {
        if let Some(id) = gold.ids().find(|id| dups.contains(id)) {
            return Err(dup_err(id));
        }
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} verifying {human_pos}  {per_sec}")
            .expect("valid template"),
    );
    let mut tally = Tally::default();
    let mut unknown = (0usize, Vec::<String>::new());
    // Declared before the table, so dropped after it (the table removes its temporary file).
    let mut created = DirGuard(None);
    let mut table: Option<TableWriter> = None;
    let verdicts_path = a.out.as_ref().map(|o| o.join("verdicts.parquet"));
    let mut pending: Vec<SampleVerdict> = Vec::new();
    let mut cache = Vec::new();
    let mut chunk = pool.install(|| preds.next_chunk())?;
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
        let ((next, written), verdicts) = pool.install(|| {
            rayon::join(
                || {
                    let w = match writing {
                        Some(path) => {
                            write_verdicts(path, &gold, &pending, &mut table, &mut created.0)
                        }
                        None => Ok(()),
                    };
                    (preds.next_chunk(), w)
                },
                || gold.verify(&jobs, cfg, &mut cache),
            )
        });
        written?;
        pending = verdicts?;
        for v in &pending {
            tally.add(v);
        }
        bar.inc(ps.len() as u64);
        chunk = next?;
    }
    if let Some(path) = verdicts_path.as_deref().filter(|_| unknown.0 == 0) {
        write_verdicts(path, &gold, &pending, &mut table, &mut created.0)?;
    }
    bar.finish_and_clear();
    if unknown.0 > 0 {
        drop(table);
        let mut ex = unknown.1;
        ex.dedup();
        return Err(CliError::usage(AuditError::UnknownIds {
            count: unknown.0,
            examples: ex.join(", "),
        }));
    }
    if tally.samples() == 0 {
        return Err(CliError::usage(anyhow!("no predictions to verify")));
    }
    let secs = started.elapsed().as_secs_f64();
    let summary = tally.summary(&gold, cfg, None);
    print_summary(&summary, secs);
    if let (Some(out), Some(table)) = (&a.out, table) {
        table.finish()?;
        created.0 = None;
        let json = serde_json::to_string_pretty(&summary).expect("summary serialises");
        write_atomic(&out.join("summary.json"), format!("{json}\n").as_bytes())?;
        println!(
            "wrote {} and {}",
            out.join("verdicts.parquet").display(),
            out.join("summary.json").display()
        );
    }
    if a.self_check && summary.verified_correct_rate < 1.0 {
        return Err(CliError::from(anyhow!(
            "--self: {} of {} gold traces do not verify",
            summary.samples as u64 - summary.taxonomy.verified_correct,
            summary.samples
        )));
    }
    Ok(())
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
) -> Result<(), CliError> {
    if verdicts.is_empty() {
        return Ok(());
    }
    let batch = verdicts::batch(gold, verdicts);
    if table.is_none() {
        let dir = path.parent().expect("a file in --out");
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| anyhow!("{}: {e}", dir.display()))?;
            *created = Some(dir.to_path_buf());
        }
        *table = Some(TableWriter::create(path, batch.schema())?);
    }
    table.as_mut().expect("opened").write(&batch)?;
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

pub fn print_summary(s: &Summary, secs: f64) {
    println!(
        "verified {} samples of {} problems ({}..{} per problem) under rule {} in {:.2}s ({:.0} samples/s)",
        s.samples,
        s.problems,
        s.samples_per_problem.0,
        s.samples_per_problem.1,
        s.rule,
        secs,
        s.samples as f64 / secs.max(1e-9)
    );
    println!(
        "  verified correct {}%   answer correct {}%   mean process acc {}%",
        pct(s.verified_correct_rate),
        pct(s.answer_correct_rate),
        pct(s.mean_process_acc)
    );
    println!(
        "  reward hacking (answer right, process wrong): {}% of samples, {}% of right answers",
        pct(s.reward_hacking_rate),
        pct(s.reward_hacking_given_right_answer)
    );
    let rewards: Vec<String> = s
        .mean_rewards
        .iter()
        .map(|(k, v)| format!("{k} {v:.3}"))
        .collect();
    println!("  mean rewards: {}", rewards.join(", "));
    let t = &s.taxonomy;
    println!("\nfailure taxonomy (samples with at least one):");
    for (name, n) in [
        ("wrong answer", t.wrong_answer),
        ("no answer", t.no_answer),
        ("missing node", t.with_missing_nodes),
        ("wrong value", t.with_wrong_values),
        ("wrong parents", t.with_wrong_parents),
        ("extra node", t.with_extra_nodes),
        ("arithmetic error", t.with_arithmetic_errors),
        ("flawed step", t.with_flawed_steps),
        ("any issue", t.with_any_issue),
    ] {
        println!(
            "  {name:<18} {n:>9}  {:>5}%",
            pct(n as f64 / t.samples.max(1) as f64)
        );
    }
    println!("\npass@k (verified / answer-only, %):");
    let only_split = s
        .pass_at_k
        .iter()
        .filter(|r| r.op.is_none() && r.template.is_none() && r.mode.is_none());
    for r in only_split {
        println!(
            "  {:<12} k={:<4} {:>6} / {:>6}   ({} problems)",
            r.split.as_deref().unwrap_or("all"),
            r.k,
            pct(r.verified),
            pct(r.answer),
            r.problems
        );
    }
    let ks: Vec<u32> = {
        let mut k: Vec<u32> = s.pass_at_k.iter().map(|r| r.k).collect();
        k.sort_unstable();
        k.dedup();
        k
    };
    if let (Some(&k1), Some(&kn)) = (ks.first(), ks.last()) {
        println!("\nper split and op: verified pass@{k1} / pass@{kn} (%):");
        for r in s
            .pass_at_k
            .iter()
            .filter(|r| r.op.is_some() && r.template.is_none() && r.mode.is_none() && r.k == k1)
        {
            let last = s
                .pass_at_k
                .iter()
                .find(|x| {
                    x.split == r.split
                        && x.op == r.op
                        && x.template.is_none()
                        && x.mode.is_none()
                        && x.k == kn
                })
                .map(|x| x.verified)
                .unwrap_or(f64::NAN);
            println!(
                "  {:<12} op {:>2}: {:>6} / {:>6}",
                r.split.as_deref().unwrap_or(""),
                r.op.unwrap_or(0),
                pct(r.verified),
                pct(last)
            );
        }
    }
}
