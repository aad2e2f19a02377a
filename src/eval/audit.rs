//! Offline audit: verify sampled completions against gold problems in parallel, then summarise
//! them as pass@k tables, a failure taxonomy (with the reward-hacking rate: answer right,
//! process wrong) and mean rewards.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, RecordBatch, StringBuilder,
    UInt32Builder,
};
use arrow::datatypes::{DataType, Field, Schema};
use rayon::prelude::*;
use serde::Serialize;

use super::passk::{By, Counts, GroupKey, PassAtK, PassRow};
use crate::composer::Mode;
use crate::dataset::predictions::Prediction;
use crate::graph::GoldGraph;
use crate::trace::{IssueKind, NodeStatus, Reward, Rule, Verdict, Verifier};

/// A gold problem with the keys results are grouped by.
#[derive(Debug, Clone)]
pub struct GoldItem {
    pub id: String,
    pub split: String,
    pub op: u32,
    pub template: String,
    pub graph: GoldGraph,
}

/// The keys of a gold problem without its graph: what verdict rows and pass@k groups need,
/// so a streamed audit keeps these in memory and reads graphs only when verifying.
#[derive(Debug, Clone)]
pub struct GoldKey {
    pub id: String,
    pub split: String,
    pub op: u32,
    pub template: String,
    pub mode: Mode,
}

/// One gold problem's keys, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct KeyRef<'a> {
    pub id: &'a str,
    pub split: &'a str,
    pub op: u32,
    pub template: &'a str,
    pub mode: Mode,
}

/// Gold problems indexed as [`SampleVerdict::gold`] indexes them.
pub trait GoldKeys {
    fn key(&self, g: usize) -> KeyRef<'_>;
}

impl GoldKeys for [GoldItem] {
    fn key(&self, g: usize) -> KeyRef<'_> {
        let it = &self[g];
        KeyRef {
            id: &it.id,
            split: &it.split,
            op: it.op,
            template: &it.template,
            mode: it.graph.mode,
        }
    }
}

impl GoldKeys for [GoldKey] {
    fn key(&self, g: usize) -> KeyRef<'_> {
        let it = &self[g];
        KeyRef {
            id: &it.id,
            split: &it.split,
            op: it.op,
            template: &it.template,
            mode: it.mode,
        }
    }
}

/// The rewards reported per sample, in this order.
pub const REWARD_NAMES: [&str; 5] = ["outcome", "process", "mixed", "strict", "penalty"];

/// The verdict of one sample, flattened for a table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleVerdict {
    /// Index into the gold items.
    pub gold: usize,
    pub sample: u32,
    pub verified_correct: bool,
    pub answer_correct: bool,
    pub process_acc: f64,
    /// The answer read from the completion (`7`, `7/2`), if any.
    pub answer: Option<String>,
    pub nodes: u32,
    pub correct: u32,
    pub flawed: u32,
    pub wrong_value: u32,
    pub wrong_parents: u32,
    pub missing: u32,
    pub extra: u32,
    pub issues: u32,
    /// Wrong results, wrong substitutions and impossible arithmetic.
    pub arithmetic_errors: u32,
    /// The first issue, e.g. `WrongResult at byte 120`.
    pub first_issue: Option<String>,
    pub rewards: [f64; 5],
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{count} prediction(s) name ids that are not in the gold data, e.g. {examples}")]
    UnknownIds { count: usize, examples: String },
}

/// Settings of an audit.
#[derive(Debug, Clone, Copy)]
pub struct AuditConfig {
    pub rule: Rule,
    /// Weight of the outcome in the mixed and penalty rewards (0.2 = the paper's 0.2/0.8).
    pub alpha: f64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            rule: Rule::Strict,
            alpha: 0.2,
        }
    }
}

fn flatten(gold: usize, sample: u32, v: &Verdict, alpha: f64) -> SampleVerdict {
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
    let rewards = [
        Reward::Outcome,
        Reward::Process,
        Reward::Mixed { alpha },
        Reward::Strict,
        Reward::Penalty { alpha },
    ]
    .map(|r| r.score(v));
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
        rewards,
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
        .map_init(Verifier::new, |ver, j| {
            let v = ver.verify(graph(j.gold), j.completion, cfg.rule);
            flatten(j.gold, j.sample, v, cfg.alpha)
        })
        .collect()
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
    sums: [f64; 5],
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
        for (s, r) in self.sums.iter_mut().zip(v.rewards) {
            *s += r;
        }
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
            table.add(GroupKey::new(it.split, it.op, it.template, it.mode), c);
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
            problems,
            samples,
            samples_per_problem: range,
            verified_correct_rate: t.verified_correct as f64 / n,
            answer_correct_rate: t.answer_correct as f64 / n,
            mean_process_acc: self.process / n,
            reward_hacking_rate: t.answer_right_process_wrong as f64 / n,
            reward_hacking_given_right_answer: t.answer_right_process_wrong as f64
                / (t.answer_correct.max(1)) as f64,
            mean_rewards: REWARD_NAMES
                .iter()
                .zip(self.sums)
                .map(|(k, s)| (k.to_string(), s / n))
                .collect(),
            taxonomy: t,
            pass_at_k,
        }
    }
}

/// The verdicts as an Arrow table (one row per sample).
pub fn verdicts_batch(gold: &[GoldItem], verdicts: &[SampleVerdict]) -> RecordBatch {
    verdict_rows(gold, verdicts)
}

/// [`verdicts_batch`] for any gold keys (a streamed audit writes one per row group).
pub fn verdict_rows<K: GoldKeys + ?Sized>(gold: &K, verdicts: &[SampleVerdict]) -> RecordBatch {
    let mut id = StringBuilder::new();
    let mut split = StringBuilder::new();
    let mut op = Int32Builder::new();
    let mut template = StringBuilder::new();
    let mut mode = StringBuilder::new();
    let mut sample = UInt32Builder::new();
    let mut vc = BooleanBuilder::new();
    let mut ac = BooleanBuilder::new();
    let mut pa = Float64Builder::new();
    let mut answer = StringBuilder::new();
    let mut first = StringBuilder::new();
    let mut counts: Vec<Int32Builder> = (0..9).map(|_| Int32Builder::new()).collect();
    let mut rewards: Vec<Float64Builder> = (0..5).map(|_| Float64Builder::new()).collect();
    for v in verdicts {
        let g = gold.key(v.gold);
        id.append_value(g.id);
        split.append_value(g.split);
        op.append_value(g.op as i32);
        template.append_value(g.template);
        mode.append_value(match g.mode {
            Mode::Forward => "forward",
            Mode::Reverse => "reverse",
        });
        sample.append_value(v.sample);
        vc.append_value(v.verified_correct);
        ac.append_value(v.answer_correct);
        pa.append_value(v.process_acc);
        answer.append_option(v.answer.as_deref());
        first.append_option(v.first_issue.as_deref());
        let c = [
            v.nodes,
            v.correct,
            v.flawed,
            v.wrong_value,
            v.wrong_parents,
            v.missing,
            v.extra,
            v.issues,
            v.arithmetic_errors,
        ];
        for (b, x) in counts.iter_mut().zip(c) {
            b.append_value(x as i32);
        }
        for (b, r) in rewards.iter_mut().zip(v.rewards) {
            b.append_value(r);
        }
    }
    let mut fields = vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("split", DataType::Utf8, false),
        Field::new("op", DataType::Int32, false),
        Field::new("template", DataType::Utf8, false),
        Field::new("mode", DataType::Utf8, false),
        Field::new("sample", DataType::UInt32, false),
        Field::new("verified_correct", DataType::Boolean, false),
        Field::new("answer_correct", DataType::Boolean, false),
        Field::new("process_acc", DataType::Float64, false),
        Field::new("answer", DataType::Utf8, true),
        Field::new("first_issue", DataType::Utf8, true),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(split.finish()),
        Arc::new(op.finish()),
        Arc::new(template.finish()),
        Arc::new(mode.finish()),
        Arc::new(sample.finish()),
        Arc::new(vc.finish()),
        Arc::new(ac.finish()),
        Arc::new(pa.finish()),
        Arc::new(answer.finish()),
        Arc::new(first.finish()),
    ];
    let count_names = [
        "n_nodes",
        "n_correct",
        "n_flawed",
        "n_wrong_value",
        "n_wrong_parents",
        "n_missing",
        "n_extra",
        "n_issues",
        "n_arithmetic_errors",
    ];
    for (name, mut b) in count_names.iter().zip(counts) {
        fields.push(Field::new(*name, DataType::Int32, false));
        cols.push(Arc::new(b.finish()));
    }
    for (name, mut b) in REWARD_NAMES.iter().zip(rewards) {
        fields.push(Field::new(
            format!("reward_{name}"),
            DataType::Float64,
            false,
        ));
        cols.push(Arc::new(b.finish()));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).expect("columns match the schema")
}
