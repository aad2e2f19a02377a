//! Offline audit: verify sampled completions against gold problems in parallel, then summarise
//! them as pass@k tables, a failure taxonomy (with the reward-hacking rate: answer right,
//! process wrong) and mean rewards.

pub mod stream;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use rayon::prelude::*;
use serde::Serialize;

use super::passk::{By, Counts, PassAtK, PassRow};
use crate::dataset::predictions::Prediction;
use crate::dataset::verdicts::SampleVerdict;
use crate::graph::{GoldGraph, GoldItem, GoldKeys};
use crate::trace::{IssueKind, NodeStatus, Rewards, Rule, TraceFormat, Verdict, Verifier};

/// Why an audit stopped; each variant names the file, folder or id at fault.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{count} prediction(s) name ids that are not in the gold data, e.g. {examples}")]
    UnknownIds { count: usize, examples: String },
    #[error("{}: id `{id}` appears more than once in the gold data", path.display())]
    DuplicateId { path: PathBuf, id: String },
    #[error("no predictions to verify")]
    NoPredictions,
    #[error("--out {}: is a file, not a folder", path.display())]
    OutIsFile { path: PathBuf },
    #[error(transparent)]
    Gold(#[from] crate::dataset::reader::ReadError),
    #[error(transparent)]
    Reference(#[from] crate::dataset::reference::ReferenceError),
    #[error(transparent)]
    Predictions(#[from] crate::dataset::predictions::PredictionError),
    #[error("{}: {source}", path.display())]
    CreateOut {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] crate::dataset::shard::ShardError),
}

impl AuditError {
    /// Whether the input the user named is at fault (exit 2), rather than the system failing
    /// to write the results (exit 1).
    pub fn is_users(&self) -> bool {
        !matches!(self, AuditError::CreateOut { .. } | AuditError::Write(_))
    }
}

/// Settings of an audit.
#[derive(Debug, Clone, Copy)]
pub struct AuditConfig {
    pub rule: Rule,
    /// Weight of the outcome in the mixed and penalty rewards (0.2 = the paper's 0.2/0.8).
    pub alpha: f64,
    /// The format completions are read in: the gold dataset's (its manifest's
    /// `trace_format`), which [`stream::audit_files`] sets from the gold it reads; `full` for
    /// reference-format gold.
    pub format: TraceFormat,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            rule: Rule::Strict,
            alpha: 0.2,
            format: TraceFormat::Full,
        }
    }
}

/// The flat row of verdict `v` (sample `sample` of gold item `gold`) that verdicts.parquet
/// stores, with rewards weighted by `alpha`.
pub fn flatten(gold: usize, sample: u32, v: &Verdict, alpha: f64) -> SampleVerdict {
    let count = |f: &dyn Fn(NodeStatus) -> bool| v.nodes.iter().filter(|&&s| f(s)).count() as u32;
    let arithmetic = v
        .issues
        .iter()
        .filter(|i| {
            matches!(
                i.kind,
                IssueKind::WrongResult | IssueKind::WrongSubstitution | IssueKind::BadArithmetic
            )
        })
        .count() as u32;
    SampleVerdict {
        gold,
        sample,
        verified_correct: v.verified_correct,
        answer_correct: v.answer_correct,
        process_acc: v.process_acc,
        answer: v.answer.map(|a| match a.as_int() {
            Some(i) => i.to_string(),
            None => format!("{}/{}", a.numer(), a.denom()),
        }),
        nodes: v.nodes.len() as u32,
        correct: count(&|s| s == NodeStatus::Correct),
        flawed: count(&|s| s == NodeStatus::Flawed),
        wrong_value: count(&|s| s.value_wrong()),
        wrong_parents: count(&|s| s.parents_wrong()),
        missing: count(&|s| s == NodeStatus::Missing),
        extra: v.extra.len() as u32,
        issues: v.issues.len() as u32,
        arithmetic_errors: arithmetic,
        first_issue: v.issues.first().map(|i| i.to_string()),
        rewards: Rewards::of(v, alpha),
    }
}

/// Verify every prediction against its gold item (in parallel; the result is in input order).
/// `progress` is called with the number of samples done, in chunks.
pub fn audit(
    gold: &[GoldItem],
    preds: &[Prediction],
    cfg: AuditConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<SampleVerdict>, AuditError> {
    let index: HashMap<&str, usize> = gold
        .iter()
        .enumerate()
        .map(|(i, g)| (g.id.as_str(), i))
        .collect();
    let unknown: Vec<&str> = preds
        .iter()
        .filter(|p| !index.contains_key(p.id.as_str()))
        .map(|p| p.id.as_str())
        .collect();
    if !unknown.is_empty() {
        let mut ex: Vec<&str> = unknown.iter().take(5).copied().collect();
        ex.dedup();
        return Err(AuditError::UnknownIds {
            count: unknown.len(),
            examples: ex.join(", "),
        });
    }
    let mut out = Vec::with_capacity(preds.len());
    for chunk in preds.chunks(8192) {
        let jobs: Vec<Job> = chunk
            .iter()
            .map(|p| Job {
                gold: index[p.id.as_str()],
                sample: p.sample,
                completion: &p.completion,
            })
            .collect();
        out.extend(verify_jobs(&|g| &gold[g].graph, &jobs, cfg));
        progress(chunk.len() as u64);
    }
    Ok(out)
}

/// One completion to verify against gold item `gold`.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub gold: usize,
    pub sample: u32,
    pub completion: &'a str,
}

/// Verify `jobs` in parallel (one [`Verifier`] per worker); the verdicts are in job order,
/// whatever the number of threads.
pub fn verify_jobs<'g>(
    graph: &(dyn Fn(usize) -> &'g GoldGraph + Sync),
    jobs: &[Job<'_>],
    cfg: AuditConfig,
) -> Vec<SampleVerdict> {
    jobs.par_iter()
        .with_min_len(64)
        .map_init(
            || Verifier::for_format(cfg.format),
            |ver, j| verify_job(ver, graph(j.gold), j, cfg),
        )
        .collect()
}

/// Verify one job against its gold graph with a worker's reusable [`Verifier`].
pub fn verify_job(
    ver: &mut Verifier,
    graph: &GoldGraph,
    j: &Job<'_>,
    cfg: AuditConfig,
) -> SampleVerdict {
    let v = ver.verify(graph, j.completion, cfg.rule);
    flatten(j.gold, j.sample, v, cfg.alpha)
}

/// Counts of samples showing each kind of failure.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Taxonomy {
    pub samples: u64,
    pub verified_correct: u64,
    pub answer_correct: u64,
    /// Answer right but the process not verified: the reward-hacking signature.
    pub answer_right_process_wrong: u64,
    /// Process verified… never with a wrong answer (kept as a sanity counter).
    pub no_answer: u64,
    pub wrong_answer: u64,
    pub with_missing_nodes: u64,
    pub with_wrong_values: u64,
    pub with_wrong_parents: u64,
    pub with_extra_nodes: u64,
    pub with_arithmetic_errors: u64,
    pub with_flawed_steps: u64,
    pub with_any_issue: u64,
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub rule: String,
    pub alpha: f64,
    /// The format the completions were read in (absent when `full`, so default summaries keep
    /// their bytes).
    #[serde(skip_serializing_if = "TraceFormat::is_full")]
    pub trace_format: TraceFormat,
    /// `answer_only`: no process was checked, only answers; `mean_process_acc` and the process,
    /// mixed, strict and penalty rewards equal the outcome (absent when false).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub outcome_only: bool,
    pub problems: usize,
    pub samples: usize,
    /// Samples per problem: the fewest and the most.
    pub samples_per_problem: (u32, u32),
    pub verified_correct_rate: f64,
    pub answer_correct_rate: f64,
    pub mean_process_acc: f64,
    /// Share of all samples whose answer is right while the process is not verified.
    pub reward_hacking_rate: f64,
    /// The same among samples with a right answer.
    pub reward_hacking_given_right_answer: f64,
    pub mean_rewards: BTreeMap<String, f64>,
    pub taxonomy: Taxonomy,
    pub pass_at_k: Vec<PassJson>,
}

/// One pass@k row in `summary.json`; absent keys mean "all".
#[derive(Debug, Clone, Serialize)]
pub struct PassJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    pub k: u32,
    pub problems: usize,
    pub verified: f64,
    pub answer: f64,
}

impl From<PassRow> for PassJson {
    fn from(r: PassRow) -> PassJson {
        PassJson {
            split: r.key.split,
            op: r.key.op,
            template: r.key.template,
            mode: r.key.mode.map(|m| m.as_str().to_string()),
            k: r.k,
            problems: r.problems,
            verified: r.verified,
            answer: r.answer,
        }
    }
}

/// The k values reported: powers of two up to `n`, and `n` itself.
pub fn report_ks(n: u32) -> Vec<u32> {
    let mut ks: Vec<u32> = std::iter::successors(Some(1u32), |k| k.checked_mul(2))
        .take_while(|&k| k <= n)
        .collect();
    if n > 0 && ks.last() != Some(&n) {
        ks.push(n);
    }
    ks
}

/// Per-problem counts grouped by (split, op, template, mode).
pub fn pass_table(gold: &[GoldItem], verdicts: &[SampleVerdict]) -> (PassAtK, (u32, u32), usize) {
    let mut t = Tally::default();
    for v in verdicts {
        t.add(v);
    }
    t.pass_table(gold)
}

/// Summarise an audit, with pass@k at [`report_ks`] (powers of two and the largest n).
pub fn summarize(gold: &[GoldItem], verdicts: &[SampleVerdict], cfg: AuditConfig) -> Summary {
    summarize_at(gold, verdicts, cfg, None)
}

/// [`summarize`] with pass@k at every k in `ks` (`None`: [`report_ks`]).
pub fn summarize_at(
    gold: &[GoldItem],
    verdicts: &[SampleVerdict],
    cfg: AuditConfig,
    ks: Option<&[u32]>,
) -> Summary {
    let mut t = Tally::default();
    for v in verdicts {
        t.add(v);
    }
    t.summary(gold, cfg, ks)
}

/// A summary built as verdicts stream past, in verdict order (so its sums equal
/// [`summarize`]'s on the same verdicts, bit for bit); it keeps counts, never verdicts.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    t: Taxonomy,
    sums: Rewards,
    process: f64,
    per: BTreeMap<usize, Counts>,
}

impl Tally {
    pub fn add(&mut self, v: &SampleVerdict) {
        let t = &mut self.t;
        t.samples += 1;
        t.verified_correct += v.verified_correct as u64;
        t.answer_correct += v.answer_correct as u64;
        t.answer_right_process_wrong += (v.answer_correct && !v.verified_correct) as u64;
        t.no_answer += v.answer.is_none() as u64;
        t.wrong_answer += (!v.answer_correct) as u64;
        t.with_missing_nodes += (v.missing > 0) as u64;
        t.with_wrong_values += (v.wrong_value > 0) as u64;
        t.with_wrong_parents += (v.wrong_parents > 0) as u64;
        t.with_extra_nodes += (v.extra > 0) as u64;
        t.with_arithmetic_errors += (v.arithmetic_errors > 0) as u64;
        t.with_flawed_steps += (v.flawed > 0) as u64;
        t.with_any_issue += (v.issues > 0) as u64;
        self.process += v.process_acc;
        self.sums.add(v.rewards);
        let c = self.per.entry(v.gold).or_insert(Counts {
            n: 0,
            verified: 0,
            answer: 0,
        });
        c.n += 1;
        c.verified += v.verified_correct as u32;
        c.answer += v.answer_correct as u32;
    }

    /// Samples seen.
    pub fn samples(&self) -> u64 {
        self.t.samples
    }

    /// Per-problem counts grouped by (split, op, template, mode), the (fewest, most) samples
    /// per problem, and the number of problems.
    pub fn pass_table<K: GoldKeys + ?Sized>(&self, gold: &K) -> (PassAtK, (u32, u32), usize) {
        let mut table = PassAtK::new();
        let mut range = (u32::MAX, 0);
        for (&g, &c) in &self.per {
            let it = gold.key(g);
            table.add_key(it.split, it.op, it.template, it.mode, c);
            range = (range.0.min(c.n), range.1.max(c.n));
        }
        if self.per.is_empty() {
            range = (0, 0);
        }
        (table, range, self.per.len())
    }

    /// The summary, with pass@k at every k in `ks` (`None`: [`report_ks`]).
    pub fn summary<K: GoldKeys + ?Sized>(
        &self,
        gold: &K,
        cfg: AuditConfig,
        ks: Option<&[u32]>,
    ) -> Summary {
        let t = self.t.clone();
        let samples = t.samples as usize;
        let n = samples.max(1) as f64;
        let (table, range, problems) = self.pass_table(gold);
        let ks = match ks {
            Some(ks) => ks.to_vec(),
            None => report_ks(range.1),
        };
        let mut pass_at_k: Vec<PassJson> = Vec::new();
        let views = [
            By {
                split: true,
                op: false,
                template: false,
                mode: false,
            },
            By {
                split: true,
                op: true,
                template: false,
                mode: false,
            },
            By {
                split: true,
                op: false,
                template: true,
                mode: false,
            },
            By {
                split: true,
                op: false,
                template: false,
                mode: true,
            },
            By::ALL,
        ];
        for by in views {
            pass_at_k.extend(table.report(&ks, by).into_iter().map(PassJson::from));
        }
        Summary {
            rule: format!("{:?}", cfg.rule).to_lowercase(),
            alpha: cfg.alpha,
            trace_format: cfg.format,
            outcome_only: !cfg.format.has_process(),
            problems,
            samples,
            samples_per_problem: range,
            verified_correct_rate: t.verified_correct as f64 / n,
            answer_correct_rate: t.answer_correct as f64 / n,
            mean_process_acc: self.process / n,
            reward_hacking_rate: t.answer_right_process_wrong as f64 / n,
            reward_hacking_given_right_answer: t.answer_right_process_wrong as f64
                / (t.answer_correct.max(1)) as f64,
            mean_rewards: self
                .sums
                .named()
                .iter()
                .map(|(k, s)| (k.to_string(), s / n))
                .collect(),
            taxonomy: t,
            pass_at_k,
        }
    }
}
