//! `dagmath audit` end to end: designed predictions with known verdicts, reference-format gold,
//! Parquet predictions, and bad input.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use dagmath::dataset::reader::Dataset;
use dagmath::dataset::shard::write_table_atomic;

fn dagmath(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dagmath"))
        .args(args)
        .output()
        .unwrap()
}

fn quickset(dir: &Path) {
    let o = dagmath(&[
        "generate",
        "--ops",
        "2-12",
        "--count",
        "60",
        "--mode",
        "mixed",
        "--template",
        "zoo,festival",
        "--split",
        "test_id",
        "--held-out",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn designed_predictions_give_known_rates_and_pass_at_k() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    quickset(&data);
    let rows = Dataset::open(&data).unwrap().read_split("test_id").unwrap();
    let mut jsonl = String::new();
    for r in &rows {
        let wrong = r.completion.replace(
            &format!("<answer> {} </answer>", r.answer),
            &format!("<answer> {} </answer>", r.answer + 1),
        );
        let hack = format!("<answer> {} </answer>", r.answer);
        for c in [
            r.completion.as_str(),
            wrong.as_str(),
            hack.as_str(),
            "\u{0}\u{7f}garbage = = Define as ;",
        ] {
            jsonl.push_str(&serde_json::json!({"id": r.id, "completion": c}).to_string());
            jsonl.push('\n');
        }
    }
    let preds = tmp.path().join("p.jsonl");
    std::fs::write(&preds, jsonl).unwrap();
    let out = tmp.path().join("audit");
    let o = dagmath(&[
        "audit",
        "--gold",
        data.to_str().unwrap(),
        "--predictions",
        preds.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("reward hacking") && stdout.contains("pass@k"),
        "{stdout}"
    );
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["samples"], 240);
    assert_eq!(s["problems"], 60);
    assert_eq!(s["verified_correct_rate"], 0.25);
    assert_eq!(s["answer_correct_rate"], 0.5);
    assert_eq!(s["reward_hacking_rate"], 0.25);
    let split_rows: Vec<&serde_json::Value> = s["pass_at_k"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.get("op").is_none() && r.get("template").is_none() && r.get("mode").is_none())
        .collect();
    let at = |k: u64| split_rows.iter().find(|r| r["k"] == k).unwrap();
    assert!((at(1)["verified"].as_f64().unwrap() - 0.25).abs() < 1e-12);
    assert!((at(1)["answer"].as_f64().unwrap() - 0.5).abs() < 1e-12);
    assert!((at(4)["verified"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    // pass@2 = 1 - C(3,2)/C(4,2) = 0.5 for one correct sample in four.
    assert!((at(2)["verified"].as_f64().unwrap() - 0.5).abs() < 1e-12);
    // The verdict table has one row per sample, with the rewards.
    let f = std::fs::File::open(out.join("verdicts.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
    let schema = reader.schema().clone();
    assert_eq!(reader.metadata().file_metadata().num_rows(), 240);
    for c in [
        "id",
        "sample",
        "verified_correct",
        "answer_correct",
        "process_acc",
        "n_missing",
        "reward_mixed",
        "reward_strict",
    ] {
        assert!(schema.field_with_name(c).is_ok(), "missing column {c}");
    }
}

#[test]
fn reference_jsonl_gold_and_parquet_predictions() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    quickset(&data);
    let rows = Dataset::open(&data).unwrap().read_split("test_id").unwrap();
    // Reference records: no id (named by line number), gold graph from the gold trace.
    let mut jsonl = String::new();
    for r in &rows {
        let rec = serde_json::json!({"problem": r.problem, "question": r.question, "solution": r.solution, "op": r.op, "template": r.template});
        jsonl.push_str(&rec.to_string());
        jsonl.push('\n');
    }
    let gold = tmp.path().join("ref.jsonl");
    std::fs::write(&gold, jsonl).unwrap();
    let o = dagmath(&["audit", "--gold", gold.to_str().unwrap(), "--self"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Parquet predictions with `response` and integer-like string ids.
    let ids: Vec<String> = (0..rows.len()).map(|i| i.to_string()).collect();
    let texts: Vec<String> = rows.iter().map(|r| r.solution.clone()).collect();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("response", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(texts)),
        ],
    )
    .unwrap();
    let preds = tmp.path().join("p.parquet");
    write_table_atomic(&preds, &batch).unwrap();
    let out = tmp.path().join("a");
    let o = dagmath(&[
        "audit",
        "--gold",
        gold.to_str().unwrap(),
        "--predictions",
        preds.to_str().unwrap(),
        "--rule",
        "interplay",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["verified_correct_rate"], 1.0);
    assert_eq!(s["rule"], "interplay");
}

#[test]
fn audit_bad_input_exits_2_and_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    quickset(&data);
    let g = data.to_str().unwrap();
    let p = tmp.path().join("p.jsonl");
    let run = |content: &str, needle: &str| {
        std::fs::write(&p, content).unwrap();
        let o = dagmath(&["audit", "--gold", g, "--predictions", p.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(needle), "expected `{needle}` in {err}");
    };
    run("{\"id\": \"nope\", \"completion\": \"x\"}\n", "nope");
    run("{\"id\": \"a\"}\n", "p.jsonl:1");
    run("{\"id\": \"a\", \"completion\": 3}\n", "must be a string");
    run("not json\n", "invalid JSON");
    let o = dagmath(&[
        "audit",
        "--gold",
        g,
        "--predictions",
        tmp.path().join("missing.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = dagmath(&["audit", "--gold", tmp.path().to_str().unwrap(), "--self"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("manifest.json"));
}

/// Verdicts of a Parquet file as one table.
fn verdict_table(path: &Path) -> RecordBatch {
    let batches = dagmath::dataset::shard::read_batches(path).unwrap();
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

#[test]
fn streamed_audit_equals_the_in_memory_audit_whatever_the_threads() {
    use dagmath::dataset::predictions::read_predictions;
    use dagmath::dataset::verdicts::batch as verdicts_batch;
    use dagmath::eval::audit::{audit, summarize, AuditConfig};
    use dagmath::graph::GoldItem;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    quickset(&data);
    let rows = Dataset::open(&data).unwrap().read_split("test_id").unwrap();
    // More predictions than one chunk (8,192), round-robin over the problems (not in gold
    // order), every kind of verdict.
    let mut jsonl = String::new();
    for s in 0..150 {
        for r in &rows {
            let c = match s % 4 {
                0 => r.completion.clone(),
                1 => r.completion.replace(
                    &format!("<answer> {} </answer>", r.answer),
                    &format!("<answer> {} </answer>", r.answer + 1),
                ),
                2 => format!("<answer> {} </answer>", r.answer),
                _ => "Define x as 3; so 3 = 4. garbage".to_string(),
            };
            jsonl.push_str(&serde_json::json!({"id": r.id, "completion": c}).to_string());
            jsonl.push('\n');
        }
    }
    let preds = tmp.path().join("p.jsonl");
    std::fs::write(&preds, jsonl).unwrap();
    let run = |threads: &str| {
        let out = tmp.path().join(format!("a{threads}"));
        let o = dagmath(&[
            "audit",
            "--gold",
            data.to_str().unwrap(),
            "--predictions",
            preds.to_str().unwrap(),
            "--threads",
            threads,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (
            verdict_table(&out.join("verdicts.parquet")),
            std::fs::read(out.join("summary.json")).unwrap(),
        )
    };
    let (one, sum_one) = run("1");
    let (two, sum_two) = run("2");
    assert_eq!(one.num_rows(), 150 * rows.len());
    assert_eq!(one, two);
    assert_eq!(sum_one, sum_two);
    // The whole-file, in-memory audit gives the same rows and summary.
    let gold: Vec<GoldItem> = rows
        .iter()
        .map(|r| GoldItem {
            id: r.id.clone(),
            split: r.split.clone(),
            op: r.op,
            template: r.template.clone(),
            graph: r.graph.clone(),
        })
        .collect();
    let p = read_predictions(&preds).unwrap();
    let cfg = AuditConfig::default();
    let v = audit(&gold, &p, cfg, &|_| {}).unwrap();
    assert_eq!(verdicts_batch(gold.as_slice(), &v), one);
    let json = serde_json::to_string_pretty(&summarize(&gold, &v, cfg)).unwrap();
    assert_eq!(format!("{json}\n").as_bytes(), sum_one.as_slice());
}
