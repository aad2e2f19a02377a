//! The study report: every experiment folder of a study that holds an `experiment.toml` becomes a
//! section of `REPORT.md` (arms × splits with 95% intervals, each finding with the paper's number,
//! ours and a verdict, the experiment's wall time) with its plots beside it: pass@k against op per
//! arm, pass@k against k per split, and the RL reward and verified-pass curves.
//!
//! `experiment.toml` (written by `examples/study.sh`, paths relative to its folder):
//!
//! ```toml
//! name = "edge"
//! title = "RL at the edge of competence"
//! scale = "micro: ID op 2-6, edge op 7-8, hard op 9-10"
//! k = 32
//! splits = ["test_id", "ood_edge", "ood_hard"]
//! notes = "markdown printed under the heading"   # optional
//! [[arms]]
//! name = "rl-edge"
//! evals = ["eval/rl-edge-s0", "eval/rl-edge-s1"]   # one `dagmath eval` folder per seed
//! runs = ["rl-edge-s0", "rl-edge-s1"]              # RL runs (metrics.jsonl), for the curves
//! [[findings]]
//! claim = "edge RL beats ID RL on edge problems"
//! paper = "edge pass@128 86 (edge RL) vs 43 (ID RL)"
//! split = "ood_edge"
//! metric = "pass@k"          # pass@1 | pass@k | hacking (lower is better)
//! better = "rl-edge"
//! worse = "rl-id"
//! ```
//!
//! Wall times come from `times.tsv` (`stage<TAB>seconds` per line) in the same folder. The plots
//! are drawn by `report_plots`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::report_plots::{plot_rl, plot_vs_k, plot_vs_op};
use super::study::{
    difference, estimate, judge, read_evaluation, Estimate, Evaluation, Metric, Slice,
};
use crate::dataset::shard::write_atomic;

/// One experiment's description.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    pub name: String,
    pub title: String,
    #[serde(default)]
    pub scale: String,
    /// The k reported beside pass@1.
    pub k: u32,
    pub splits: Vec<String>,
    /// Restrict every table and plot to one template (e.g. the context experiment's school).
    #[serde(default)]
    pub template: Option<String>,
    /// Markdown printed under the section's heading (e.g. the sweep behind the base model).
    #[serde(default)]
    pub notes: String,
    pub arms: Vec<ArmSpec>,
    #[serde(default)]
    pub findings: Vec<FindingSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmSpec {
    pub name: String,
    pub evals: Vec<PathBuf>,
    #[serde(default)]
    pub runs: Vec<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingSpec {
    pub claim: String,
    pub paper: String,
    pub split: String,
    #[serde(default = "default_metric")]
    pub metric: String,
    #[serde(default)]
    pub op: Option<u32>,
    pub better: String,
    pub worse: String,
}

fn default_metric() -> String {
    "pass@k".into()
}

/// One finding, measured.
#[derive(Debug, Clone)]
pub struct Finding {
    pub experiment: String,
    pub claim: String,
    pub paper: String,
    pub metric: String,
    /// `better − worse` (for hacking: `worse − better`, so positive is the paper's direction).
    pub difference: Option<Estimate>,
    pub verdict: &'static str,
    pub reason: String,
}

/// An experiment read from disk.
pub(super) struct Experiment {
    /// The experiment's folder (`experiment.toml`'s paths are relative to it).
    pub dir: PathBuf,
    pub spec: ExperimentSpec,
    /// Each arm's name and its evaluations, one per seed.
    pub arms: Vec<(String, Vec<Evaluation>)>,
    /// Wall time, from `times.tsv`.
    pub seconds: f64,
}

/// Why no report could be written; each error names the file or folder at fault.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: {source}", path.display())]
    ReadStudy {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Spec {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{}: k must be ≥ 1", path.display())]
    ZeroK { path: PathBuf },
    #[error("{}: metric `{metric}`: expected pass@1, pass@k or hacking", path.display())]
    Metric { path: PathBuf, metric: String },
    /// An evaluation's `verdicts.parquet` could not be read (the error names it).
    #[error(transparent)]
    Evaluation(crate::eval::study::StudyError),
    #[error("{}: no experiment folder (one holding experiment.toml)", study.display())]
    NoExperiment { study: PathBuf },
    #[error(transparent)]
    Plot(#[from] crate::plot::PlotError),
    #[error("{}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: crate::dataset::shard::ShardError,
    },
}

impl ReportError {
    /// Whether the study the user named is at fault (exit 2), rather than the system failing
    /// to draw or write the report (exit 1).
    pub fn is_users(&self) -> bool {
        !matches!(self, ReportError::Plot(_) | ReportError::Write { .. })
    }
}

/// The metric a finding names (`pass@k` at the experiment's `k`).
fn metric_of(name: &str, k: u32) -> Option<Metric> {
    match name {
        "pass@1" => Some(Metric::Verified(1)),
        "pass@k" => Some(Metric::Verified(k)),
        "hacking" => Some(Metric::Hacking),
        _ => None,
    }
}

fn load(dir: &Path) -> Result<Option<Experiment>, ReportError> {
    let path = dir.join("experiment.toml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let spec: ExperimentSpec = toml::from_str(&text).map_err(|source| ReportError::Spec {
        path: path.clone(),
        source,
    })?;
    if spec.k == 0 {
        return Err(ReportError::ZeroK { path });
    }
    let mut arms = Vec::new();
    for a in &spec.arms {
        let mut evals = Vec::new();
        for e in &a.evals {
            // A stage not run yet (a partial study) leaves its arm out rather than failing.
            if dir.join(e).join("verdicts.parquet").exists() {
                evals.push(read_evaluation(&dir.join(e)).map_err(ReportError::Evaluation)?);
            }
        }
        if !evals.is_empty() {
            arms.push((a.name.clone(), evals));
        }
    }
    if let Some(f) = spec
        .findings
        .iter()
        .find(|f| metric_of(&f.metric, spec.k).is_none())
    {
        return Err(ReportError::Metric {
            path,
            metric: f.metric.clone(),
        });
    }
    let seconds = std::fs::read_to_string(dir.join("times.tsv"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split('\t').nth(1)?.trim().parse::<f64>().ok())
        .sum();
    Ok(Some(Experiment {
        dir: dir.to_path_buf(),
        spec,
        arms,
        seconds,
    }))
}

fn pct(e: &Option<Estimate>) -> String {
    match e {
        Some(e) => format!(
            "{:.1} [{:.1}, {:.1}]",
            100.0 * e.mean,
            100.0 * e.lo,
            100.0 * e.hi
        ),
        None => "–".into(),
    }
}

/// The slice of `split` (one op, or all) within the experiment's template.
pub(super) fn slice(x: &Experiment, split: &str, op: Option<u32>) -> Slice {
    Slice {
        split: split.to_string(),
        op,
        template: x.spec.template.clone(),
    }
}

/// The fewest samples drawn for any problem in an arm's evaluations: the largest k every
/// problem supports.
pub(super) fn samples(arm: &[Evaluation]) -> u32 {
    arm.iter()
        .flat_map(|e| e.values().map(|t| t.n))
        .min()
        .unwrap_or(0)
}

fn findings(x: &Experiment) -> Vec<Finding> {
    let arm = |name: &str| x.arms.iter().find(|a| a.0 == name).map(|a| &a.1);
    x.spec
        .findings
        .iter()
        .map(|f| {
            let m = metric_of(&f.metric, x.spec.k).unwrap_or(Metric::Verified(1));
            let s = slice(x, &f.split, f.op);
            let d = match (arm(&f.better), arm(&f.worse)) {
                (Some(b), Some(w)) if m == Metric::Hacking => difference(w, b, &s, m),
                (Some(b), Some(w)) => difference(b, w, &s, m),
                _ => None,
            };
            let (verdict, reason) = match &d {
                Some(d) => {
                    let (v, r) = judge(d);
                    (v.name(), r)
                }
                None => (
                    "not run",
                    format!("arm `{}` or `{}` has no evaluation yet", f.better, f.worse),
                ),
            };
            Finding {
                experiment: x.spec.name.clone(),
                claim: f.claim.clone(),
                paper: f.paper.clone(),
                metric: f.metric.replace("pass@k", &format!("pass@{}", x.spec.k)),
                difference: d,
                verdict,
                reason,
            }
        })
        .collect()
}

fn section(x: &Experiment, md: &mut String, fs: &[Finding]) {
    let k = x.spec.k;
    let _ = writeln!(md, "## {}: {}\n", x.spec.name, x.spec.title);
    if !x.spec.scale.is_empty() {
        let _ = writeln!(md, "Scale: {}.\n", x.spec.scale);
    }
    let _ = writeln!(
        md,
        "Wall time: {:.1} min (sum of `times.tsv`).\n",
        x.seconds / 60.0
    );
    if !x.spec.notes.trim().is_empty() {
        let _ = writeln!(md, "{}\n", x.spec.notes.trim());
    }
    if x.arms.is_empty() {
        let _ = writeln!(md, "No arm has been evaluated yet.\n");
        return;
    }
    let _ = writeln!(
        md,
        "Verified (strict) pass@1 and pass@{k}, %, mean over problems with the 95% bootstrap \
         interval (seeds pooled); hacking = samples with the right answer and a wrong trace, %.\n"
    );
    let mut head = "| arm | seeds × samples |".to_string();
    let mut rule = "|---|---|".to_string();
    for s in &x.spec.splits {
        let _ = write!(head, " {s} pass@1 | {s} pass@{k} | {s} hacking |");
        rule.push_str("---|---|---|");
    }
    let _ = writeln!(md, "{head}\n{rule}");
    for (name, arm) in &x.arms {
        let _ = write!(md, "| {name} | {} × {} |", arm.len(), samples(arm));
        for s in &x.spec.splits {
            let sl = slice(x, s, None);
            let _ = write!(
                md,
                " {} | {} | {} |",
                pct(&estimate(arm, &sl, Metric::Verified(1))),
                pct(&estimate(arm, &sl, Metric::Verified(k))),
                pct(&estimate(arm, &sl, Metric::Hacking)),
            );
        }
        md.push('\n');
    }
    let problems: Vec<String> = x
        .spec
        .splits
        .iter()
        .map(|s| {
            let n = estimate(&x.arms[0].1, &slice(x, s, None), Metric::Verified(1))
                .map_or(0, |e| e.problems);
            format!("{s} {n}")
        })
        .collect();
    let _ = writeln!(md, "\nProblems per split: {}.\n", problems.join(", "));
    if !fs.is_empty() {
        findings_table(md, fs, false);
    }
    for (file, what) in [
        ("passk_vs_op.svg", "pass@k against op per arm"),
        ("passk_vs_k.svg", "pass@k against k per split"),
        ("rl_curves.svg", "RL reward and verified pass rate per step"),
    ] {
        let name = format!("{}_{file}", x.spec.name);
        if x.dir.parent().is_some_and(|p| p.join(&name).exists()) {
            let _ = writeln!(md, "![{what}]({name})\n");
        }
    }
}

/// The findings table (paper, ours with its interval, verdict, reason).
pub fn findings_table(md: &mut String, fs: &[Finding], with_experiment: bool) {
    let _ = writeln!(
        md,
        "| {}finding | paper | metric | ours: difference, points [95% CI] | verdict | why |",
        if with_experiment { "experiment | " } else { "" }
    );
    let _ = writeln!(
        md,
        "|{}---|---|---|---|---|---|",
        if with_experiment { "---|" } else { "" }
    );
    for f in fs {
        let d = match &f.difference {
            Some(d) => format!(
                "{:+.1} [{:+.1}, {:+.1}]",
                100.0 * d.mean,
                100.0 * d.lo,
                100.0 * d.hi
            ),
            None => "–".into(),
        };
        let _ = writeln!(
            md,
            "| {}{} | {} | {} | {d} | **{}** | {} |",
            if with_experiment {
                format!("{} | ", f.experiment)
            } else {
                String::new()
            },
            f.claim,
            f.paper,
            f.metric,
            f.verdict,
            f.reason
        );
    }
    md.push('\n');
}

/// What `write` produced.
#[derive(Debug, Clone)]
pub struct Written {
    pub report: PathBuf,
    pub findings: Vec<Finding>,
    /// Experiment name → wall seconds.
    pub seconds: BTreeMap<String, f64>,
}

const ORDER: [&str; 6] = ["sweep", "base", "edge", "context", "midtrain", "reward"];

/// Write `STUDY/REPORT.md` and the plots for every experiment folder under `study`.
pub fn write(study: &Path) -> Result<Written, ReportError> {
    let mut xs = Vec::new();
    let rd = std::fs::read_dir(study).map_err(|source| ReportError::ReadStudy {
        path: study.to_path_buf(),
        source,
    })?;
    let mut dirs: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for d in dirs {
        if let Some(x) = load(&d)? {
            xs.push(x);
        }
    }
    if xs.is_empty() {
        return Err(ReportError::NoExperiment {
            study: study.to_path_buf(),
        });
    }
    let rank = |n: &str| ORDER.iter().position(|o| *o == n).unwrap_or(ORDER.len());
    xs.sort_by(|a, b| {
        rank(&a.spec.name)
            .cmp(&rank(&b.spec.name))
            .then(a.spec.name.cmp(&b.spec.name))
    });
    let all: Vec<Vec<Finding>> = xs.iter().map(findings).collect();
    let mut md = String::from("# The study: report\n\n");
    let _ = writeln!(
        md,
        "Written by `dagmath report` from the evaluations under `{}`. Every pass@k is strict \
         (the verifier accepts the trace, not just the answer); intervals are 95% percentile \
         bootstraps over problems ({} resamples, seeds pooled); a finding is *reproduced* when \
         the difference has the paper's sign and its interval excludes 0, *not reproduced* when \
         the opposite sign excludes 0, *inconclusive* otherwise.\n",
        study.display(),
        super::study::RESAMPLES
    );
    let flat: Vec<Finding> = all.iter().flatten().cloned().collect();
    if !flat.is_empty() {
        md.push_str("## Summary\n\n");
        findings_table(&mut md, &flat, true);
        md.push_str("| experiment | wall time |\n|---|---|\n");
        for x in &xs {
            let _ = writeln!(md, "| {} | {:.1} min |", x.spec.name, x.seconds / 60.0);
        }
        md.push('\n');
    }
    for (x, fs) in xs.iter().zip(&all) {
        plot_vs_op(x, &study.join(format!("{}_passk_vs_op.svg", x.spec.name)))?;
        plot_vs_k(x, &study.join(format!("{}_passk_vs_k.svg", x.spec.name)))?;
        plot_rl(x, &study.join(format!("{}_rl_curves.svg", x.spec.name)))?;
        section(x, &mut md, fs);
    }
    let report = study.join("REPORT.md");
    write_atomic(&report, md.as_bytes()).map_err(|source| ReportError::Write {
        path: report.clone(),
        source,
    })?;
    Ok(Written {
        report,
        findings: flat,
        seconds: xs
            .iter()
            .map(|x| (x.spec.name.clone(), x.seconds))
            .collect(),
    })
}
