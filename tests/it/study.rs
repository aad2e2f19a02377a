//! examples/study.sh end to end at toy scale: the edge experiment's every stage (data, base
//! model, selection, two seeds of three RL arms, evaluations) and the report with its intervals,
//! verdicts and plots; then a rerun that finds every stage cached.

use std::path::Path;
use std::process::Command;

fn study(out: &Path, what: &str) -> std::process::Output {
    Command::new("bash")
        .arg("examples/study.sh")
        .arg(what)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("SCALE", "toy")
        .env("OUT", out)
        .env("SEEDS", "0 1")
        .env("DAGMATH", env!("CARGO_BIN_EXE_dagmath"))
        .output()
        .unwrap()
}

#[test]
fn study_toy_edge_pipeline_writes_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("study");
    let o = study(&out, "edge");
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{log}");
    let report = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    for needle in [
        "## edge: RL at the edge of competence",
        "| rl-edge | 2 × 4 |",
        "| rl-id | 2 × 4 |",
        "| base | 1 × 4 |",
        "RL on edge problems beats RL on ID problems",
        "95%",
        "## base: The shared base model",
        "this note checks that the base section prints its scale's sweep.md",
    ] {
        assert!(report.contains(needle), "no `{needle}` in:\n{report}");
    }
    // Every finding has a measured difference with an interval and one of the three verdicts.
    let rows: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("| edge | RL on edge"))
        .collect();
    assert_eq!(rows.len(), 4, "{report}");
    for r in rows {
        assert!(r.contains(" [") && r.contains("] |"), "{r}");
        assert!(
            ["**reproduced**", "**not reproduced**", "**inconclusive**"]
                .iter()
                .any(|v| r.contains(v)),
            "{r}"
        );
    }
    for plot in [
        "edge_passk_vs_op.svg",
        "edge_passk_vs_k.svg",
        "edge_rl_curves.svg",
    ] {
        let svg = std::fs::read_to_string(out.join(plot)).unwrap();
        assert!(svg.contains("<svg"), "{plot}");
    }
    let times = std::fs::read_to_string(out.join("edge/times.tsv")).unwrap();
    assert_eq!(times.lines().count(), 12, "{times}");
    // A rerun finds every stage done and rewrites the same report.
    let o = study(&out, "edge");
    assert!(o.status.success());
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stdout.matches("done before").count(), 16, "{stdout}");
    assert_eq!(
        std::fs::read_to_string(out.join("REPORT.md")).unwrap(),
        report
    );
}
