//! Trace formats as data: every format's rendered gold verifies in that format (many problems,
//! both modes, every op), an `answer_only` verdict says it is outcome only, and a dataset of
//! another format records it (manifest, card), keeps the prompts, and audits against itself at
//! 100% through the CLI. The mutation suite on terse and long traces is `format_mutations`.

use std::path::Path;

use dagmath::composer::{compose_seeded, Mode};
use dagmath::dataset::reader::Dataset;
use dagmath::eval::audit::{summarize, AuditConfig};
use dagmath::graph::{GoldGraph, GoldItem};
use dagmath::render::Rendered;
use dagmath::template::TemplateSet;
use dagmath::trace::{IssueKind, Reward, Rewards, Rule, TraceFormat, Verifier};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::cli::{assert_usage_error, dagmath};
use super::verifier::fwd_gold;

/// Where each gold step of `text` starts, in gold order, in format `f`.
fn step_starts(text: &str, g: &GoldGraph, f: TraceFormat) -> Vec<usize> {
    g.nodes
        .iter()
        .map(|n| {
            let head = match f {
                TraceFormat::Terse => format!(" {}: ", n.name),
                _ => format!("Define {} as ", n.name),
            };
            text.find(&head)
                .unwrap_or_else(|| panic!("`{head}` in {text}"))
        })
        .collect()
}

/// Every rendered gold trace of every format verifies in that format under both rules (all
/// templates, both modes, op 1–30), with the prompt of the full format; on each, a random
/// digit change and a dropped step are rejected under Strict.
#[test]
fn rendered_gold_traces_verify_in_every_format() {
    let set = TemplateSet::builtin();
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let mut checked = 0;
    for f in [
        TraceFormat::Terse,
        TraceFormat::Long,
        TraceFormat::AnswerOnly,
    ] {
        let mut ver = Verifier::for_format(f);
        let mut r = Rendered::in_format(f);
        for tid in ["zoo", "school", "festival"] {
            let t = set.get(tid).expect("builtin template");
            for mode in Mode::ALL {
                for op in 1..=30u32 {
                    for seed in 0..6u64 {
                        let p = compose_seeded(t, op, mode, seed * 1000 + op as u64).unwrap();
                        let g = GoldGraph::from_problem(t, &p);
                        r.fill(t, &p);
                        assert_eq!(r.prompt, Rendered::of(t, &p).prompt, "{f}: prompts differ");
                        let whole = format!("{}{}", r.prompt, r.completion);
                        for text in [&r.solution, &r.completion, &whole] {
                            for rule in [Rule::Strict, Rule::Interplay] {
                                let v = ver.verify(&g, text, rule);
                                assert!(
                                    v.verified_correct
                                        && v.outcome_only == (f == TraceFormat::AnswerOnly),
                                    "{f} {tid} {mode} op {op} seed {seed} {rule:?}\n{text}\n{v:#?}"
                                );
                            }
                        }
                        let digits: Vec<usize> = (r.completion.bytes().enumerate())
                            .filter(|(_, c)| c.is_ascii_digit())
                            .map(|(i, _)| i)
                            .collect();
                        let i = digits[rng.random_range(0..digits.len())];
                        let mut m = r.completion.clone().into_bytes();
                        m[i] = if m[i] == b'9' { b'0' } else { m[i] + 1 };
                        let m = String::from_utf8(m).unwrap();
                        assert!(
                            !ver.verify(&g, &m, Rule::Strict).verified_correct,
                            "{f}: digit change accepted:\n{m}"
                        );
                        if f.has_process() {
                            let starts = step_starts(&r.completion, &g, f);
                            let k = rng.random_range(0..starts.len());
                            // The steps end where the equation (`We know P = N`, not a long
                            // format's check `We know P is`) or the solution ends.
                            let c = &r.completion;
                            let tail = c
                                .match_indices("We know ")
                                .map(|(i, _)| i)
                                .find(|&i| c[i + 9..].starts_with(" ="))
                                .unwrap_or_else(|| c.find(" </solution>").unwrap());
                            let end = starts.get(k + 1).copied().unwrap_or(tail);
                            let m =
                                format!("{}{}", &r.completion[..starts[k]], &r.completion[end..]);
                            assert!(
                                !ver.verify(&g, &m, Rule::Strict).verified_correct,
                                "{f}: dropped step accepted:\n{m}"
                            );
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 3 * 3 * 2 * 30 * 6);
}

/// Every format is written in the trace grammar's own words: the domain tokenizer (built
/// before formats existed, and unchanged by them) encodes each without an unknown piece and
/// decodes it back exactly, so a model trained on any format can write it.
#[test]
fn every_format_encodes_with_the_domain_tokenizer() {
    let set = TemplateSet::builtin();
    let tok = dagmath::tokenizer::Tokenizer::domain(&set);
    let unk = tok.token_id(dagmath::tokenizer::UNK).unwrap();
    for f in TraceFormat::ALL {
        for tid in ["zoo", "school", "festival"] {
            let t = set.get(tid).unwrap();
            for mode in Mode::ALL {
                for op in [1, 6, 15] {
                    let p = compose_seeded(t, op, mode, op as u64).unwrap();
                    let r = Rendered::of_format(t, &p, f);
                    let text = format!("{}{}", r.prompt, r.completion);
                    let ids = tok.encode(&text).unwrap();
                    assert!(!ids.contains(&unk), "{f}: unknown piece in {text}");
                    assert_eq!(tok.decode(&ids).unwrap(), text, "{f}");
                }
            }
        }
    }
}

#[test]
fn answer_only_verdicts_say_outcome_only_and_rewards_fall_back_to_the_outcome() {
    let g = fwd_gold();
    let mut ver = Verifier::for_format(TraceFormat::AnswerOnly);
    let right = " </solution> <answer> 20 </answer>";
    let v = ver.verify(&g, right, Rule::Strict).clone();
    assert!(v.outcome_only && v.verified_correct && v.answer_correct);
    assert!(v.nodes.is_empty(), "no step is judged");
    assert_eq!(v.process_acc, 1.0);
    let r = Rewards::of(&v, 0.2);
    assert_eq!(
        r,
        Rewards {
            outcome: 1.0,
            process: 1.0,
            mixed: 1.0,
            strict: 1.0,
            penalty: 1.0
        }
    );

    let wrong = ver
        .verify(&g, " </solution> <answer> 21 </answer>", Rule::Strict)
        .clone();
    assert!(wrong.outcome_only && !wrong.verified_correct && wrong.process_acc == 0.0);
    assert_eq!(Rewards::of(&wrong, 0.2), Rewards::default());

    // A right tag with a conflicting claim: the outcome stands, the strict reward does not.
    let c = ver.verify(
        &g,
        " Answer: 21. </solution> <answer> 20 </answer>",
        Rule::Strict,
    );
    assert!(c.answer_correct && !c.verified_correct);
    assert!(c.issues.iter().any(|i| i.kind == IssueKind::AnswerConflict));
    assert_eq!(
        (Reward::Outcome.score(c), Reward::Strict.score(c)),
        (1.0, 0.0)
    );

    // The same completion read as `full` is a trace with every step missing.
    let full = dagmath::trace::verify(&g, right, Rule::Strict);
    assert!(!full.outcome_only && !full.verified_correct && full.nodes.len() == 5);

    // The audit summary carries the flag; a full one keeps its old keys.
    let gold = [GoldItem {
        id: "a".into(),
        split: "test".into(),
        op: 5,
        template: "zoo".into(),
        graph: g.clone(),
    }];
    let preds = [dagmath::dataset::predictions::Prediction {
        id: "a".into(),
        sample: 0,
        completion: right.into(),
    }];
    for format in [TraceFormat::Full, TraceFormat::AnswerOnly] {
        let cfg = AuditConfig {
            format,
            ..AuditConfig::default()
        };
        let verdicts = dagmath::eval::audit::audit(&gold, &preds, cfg, &|_| {}).unwrap();
        let s = summarize(&gold, &verdicts, cfg);
        let json = serde_json::to_string(&s).unwrap();
        let only = format == TraceFormat::AnswerOnly;
        assert_eq!(s.outcome_only, only);
        assert_eq!(json.contains(r#""outcome_only":true"#), only, "{json}");
        assert_eq!(
            json.contains(r#""trace_format":"answer_only""#),
            only,
            "{json}"
        );
        assert_eq!(s.verified_correct_rate, if only { 1.0 } else { 0.0 });
    }
}

const RECIPE: &str = r#"name = "formats"
seed = 5
shard_size = 40
[[splits]]
name = "train"
size = 60
ops = "1-12"
templates = { zoo = 1, school = 1 }
modes = { forward = 0.5, reverse = 0.5 }
"#;

/// Generate `recipe` (text) into `dir` through the CLI.
fn generate(tmp: &Path, name: &str, recipe: &str) -> std::path::PathBuf {
    let file = tmp.join(format!("{name}.toml"));
    std::fs::write(&file, recipe).unwrap();
    let out = tmp.join(name);
    let o = dagmath(&[
        "generate",
        "--recipe",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn a_terse_dataset_records_its_format_keeps_its_prompts_and_audits_at_100_percent() {
    let tmp = tempfile::tempdir().unwrap();
    let full = generate(tmp.path(), "full", RECIPE);
    let terse = generate(
        tmp.path(),
        "terse",
        &format!("trace_format = \"terse\"\n{RECIPE}"),
    );
    let manifest = std::fs::read_to_string(terse.join("manifest.json")).unwrap();
    assert!(
        manifest.contains(r#""trace_format": "terse""#),
        "{manifest}"
    );
    let card = std::fs::read_to_string(terse.join("README.md")).unwrap();
    assert!(card.contains("Trace format: `terse`"), "{card}");
    // The default format writes what it always wrote: no key, no card line.
    assert!(!std::fs::read_to_string(full.join("manifest.json"))
        .unwrap()
        .contains("trace_format"));
    assert!(!std::fs::read_to_string(full.join("README.md"))
        .unwrap()
        .contains("Trace format"));
    assert_eq!(
        Dataset::open(&terse).unwrap().manifest.trace_format,
        TraceFormat::Terse
    );
    assert_eq!(
        Dataset::open(&full).unwrap().manifest.trace_format,
        TraceFormat::Full
    );

    // `inspect` says which format a dataset is written in.
    let shown = dagmath(&["inspect", terse.to_str().unwrap()]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown
            .lines()
            .next()
            .unwrap()
            .ends_with("trace format terse"),
        "{shown}"
    );

    // Same problems and prompts; only the completions differ.
    let rows = Dataset::open(&terse).unwrap().read_split("train").unwrap();
    let full_rows = Dataset::open(&full).unwrap().read_split("train").unwrap();
    assert_eq!(rows.len(), 60);
    for (t, f) in rows.iter().zip(&full_rows) {
        assert_eq!((&t.id, &t.prompt), (&f.id, &f.prompt));
        assert_ne!(t.completion, f.completion);
        assert!(!t.completion.contains("Define "), "{}", t.completion);
    }

    // Evaluation and the RL pool read the format from the manifest.
    #[cfg(feature = "train")]
    for (dir, f) in [(&terse, TraceFormat::Terse), (&full, TraceFormat::Full)] {
        let (_, format) = dagmath::eval::run::load_problems(dir, &["train".into()], None).unwrap();
        assert_eq!(format, f);
        let pool = dagmath::train::config::PoolConfig {
            dir: dir.to_path_buf(),
            splits: vec!["train".into()],
        };
        let tok = dagmath::tokenizer::Tokenizer::domain(&TemplateSet::builtin());
        let (items, format) = dagmath::train::rl::load_pool(&pool, &tok).unwrap();
        assert_eq!((items.len(), format), (60, f));
    }

    // Its own gold traces, as --self and as a predictions file, verify in its format.
    let preds = tmp.path().join("preds.jsonl");
    let lines: Vec<String> = rows
        .iter()
        .map(|r| serde_json::json!({ "id": r.id, "completion": r.completion }).to_string())
        .collect();
    std::fs::write(&preds, lines.join("\n") + "\n").unwrap();
    for (args, out) in [
        (vec!["--self"], "self"),
        (vec!["--predictions", preds.to_str().unwrap()], "preds"),
    ] {
        let out = tmp.path().join(out);
        let mut a = vec![
            "audit",
            "--gold",
            terse.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        a.extend(args);
        let o = dagmath(&a);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let s = summary(&out);
        assert_eq!(s["verified_correct_rate"], 1.0, "{s}");
        assert_eq!(s["trace_format"], "terse");
        assert!(String::from_utf8_lossy(&o.stdout).contains("trace format terse"));
    }
    // Against the full dataset (same ids), the terse completions are read as full: rejected.
    let out = tmp.path().join("cross");
    let o = dagmath(&[
        "audit",
        "--gold",
        full.to_str().unwrap(),
        "--predictions",
        preds.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert_eq!(summary(&out)["verified_correct_rate"], 0.0);
}

#[test]
fn answer_only_and_long_datasets_audit_against_themselves() {
    let tmp = tempfile::tempdir().unwrap();
    for f in ["answer_only", "long"] {
        let dir = generate(tmp.path(), f, &format!("trace_format = \"{f}\"\n{RECIPE}"));
        let out = tmp.path().join(format!("{f}-audit"));
        let o = dagmath(&[
            "audit",
            "--gold",
            dir.to_str().unwrap(),
            "--self",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(
            o.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let s = summary(&out);
        assert_eq!(s["verified_correct_rate"], 1.0, "{f}: {s}");
        let only = f == "answer_only";
        assert_eq!(s["outcome_only"] == true, only, "{f}: {s}");
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).contains("OUTCOME ONLY"),
            only,
            "{f}"
        );
    }
}

#[test]
fn a_bad_trace_format_is_a_usage_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad.toml");
    std::fs::write(&file, format!("trace_format = \"verbose\"\n{RECIPE}")).unwrap();
    let out = tmp.path().join("out");
    let o = dagmath(&[
        "generate",
        "--recipe",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_usage_error(&o, "trace_format");
    assert_usage_error(&o, "`verbose`");
    let o = dagmath(&[
        "generate",
        "--ops",
        "2-3",
        "--count",
        "5",
        "--trace-format",
        "answer-only",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_usage_error(&o, "answer-only");
    assert!(!out.exists(), "nothing written");
    let help = dagmath(&["generate", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--trace-format") && help.contains("trace_format"),
        "{help}"
    );
}
