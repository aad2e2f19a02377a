//! The micro experiment's table and plot: pass@1 and pass@k (verified and answer-only) per
//! split for the base model and each RL arm, from their `dagmath eval` summaries.
//!
//! cargo run --release --example micro_report -- out/micro base=out/micro/eval-base \
//!     edge=out/micro/eval-edge easy=out/micro/eval-easy
//! Writes OUT/micro_report.md and OUT/micro_report.svg (OUT = the first argument).

use std::path::{Path, PathBuf};

use dagmath::plot;
use plotters::prelude::*;
use serde_json::Value;

struct Arm {
    name: String,
    summary: Value,
}

/// The split-level (split, k) → (verified, answer) rows of a summary.
fn rows(s: &Value) -> Vec<(String, u64, f64, f64)> {
    s["pass_at_k"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| {
            r.get("split").is_some()
                && r.get("op").is_none()
                && r.get("template").is_none()
                && r.get("mode").is_none()
        })
        .map(|r| {
            (
                r["split"].as_str().unwrap_or("").to_string(),
                r["k"].as_u64().unwrap_or(0),
                r["verified"].as_f64().unwrap_or(f64::NAN),
                r["answer"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: micro_report OUT NAME=EVAL_DIR ...");
        std::process::exit(2);
    }
    let out = PathBuf::from(&args[0]);
    let mut arms = Vec::new();
    for a in &args[1..] {
        let (name, dir) = a.split_once('=').unwrap_or_else(|| {
            eprintln!("{a}: expected NAME=EVAL_DIR");
            std::process::exit(2)
        });
        let path = Path::new(dir).join("summary.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            eprintln!("{}: {e}", path.display());
            std::process::exit(1)
        });
        let summary: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            eprintln!("{}: {e}", path.display());
            std::process::exit(1)
        });
        arms.push(Arm {
            name: name.to_string(),
            summary,
        });
    }
    let kmax = rows(&arms[0].summary)
        .iter()
        .map(|r| r.1)
        .max()
        .unwrap_or(1);
    let mut splits: Vec<String> = rows(&arms[0].summary).into_iter().map(|r| r.0).collect();
    splits.dedup();
    let get = |arm: &Arm, split: &str, k: u64| {
        rows(&arm.summary)
            .into_iter()
            .find(|r| r.0 == split && r.1 == k)
            .map(|r| (100.0 * r.2, 100.0 * r.3))
            .unwrap_or((f64::NAN, f64::NAN))
    };
    let mut md = String::new();
    md.push_str(&format!(
        "pass@k in %, verified (strict) / answer-only; k = 1 and k = {kmax}\n\n| model |"
    ));
    for s in &splits {
        md.push_str(&format!(" {s} pass@1 | {s} pass@{kmax} |"));
    }
    md.push_str("\n|---|");
    for _ in &splits {
        md.push_str("---|---|");
    }
    md.push('\n');
    for arm in &arms {
        md.push_str(&format!("| {} |", arm.name));
        for s in &splits {
            let (v1, a1) = get(arm, s, 1);
            let (vk, ak) = get(arm, s, kmax);
            md.push_str(&format!(" {v1:.1} / {a1:.1} | {vk:.1} / {ak:.1} |"));
        }
        md.push('\n');
    }
    print!("{md}");
    std::fs::create_dir_all(&out).expect("create OUT");
    std::fs::write(out.join("micro_report.md"), &md).expect("write micro_report.md");
    let svg = out.join("micro_report.svg");
    plot(&arms, &splits, kmax, &get, &svg).expect("plot");
    println!(
        "\nwrote {} and {}",
        out.join("micro_report.md").display(),
        svg.display()
    );
}

fn plot(
    arms: &[Arm],
    splits: &[String],
    kmax: u64,
    get: &dyn Fn(&Arm, &str, u64) -> (f64, f64),
    path: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let colors = [BLUE, RED, GREEN, MAGENTA, CYAN];
    plot::svg(path, (1000, 460), |root| {
        let panels = root.split_evenly((1, 2));
        for (panel, (title, answer)) in panels
            .iter()
            .zip([("verified (strict)", false), ("answer-only", true)])
        {
            let mut chart = ChartBuilder::on(panel)
                .caption(
                    format!("pass@1 (solid) and pass@{kmax} (dashed), {title}"),
                    ("sans-serif", 16),
                )
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(46)
                .build_cartesian_2d(-0.5..splits.len() as f64 - 0.5, 0.0..100.0)?;
            chart
                .configure_mesh()
                .x_labels(splits.len())
                .x_label_formatter(&|x| {
                    let i = x.round() as usize;
                    splits.get(i).cloned().unwrap_or_default()
                })
                .y_desc("%")
                .draw()?;
            for (i, arm) in arms.iter().enumerate() {
                let c = colors[i % colors.len()];
                let pick = |k: u64| -> Vec<(f64, f64)> {
                    splits
                        .iter()
                        .enumerate()
                        .map(|(j, s)| {
                            let (v, a) = get(arm, s, k);
                            (j as f64, if answer { a } else { v })
                        })
                        .collect()
                };
                chart
                    .draw_series(LineSeries::new(pick(1), c.stroke_width(2)))?
                    .label(arm.name.clone())
                    .legend(plot::legend_mark(c));
                chart.draw_series(DashedLineSeries::new(pick(kmax), 6, 4, c.stroke_width(1)))?;
                chart.draw_series(pick(kmax).into_iter().map(|p| Circle::new(p, 3, c)))?;
            }
            plot::legend(&mut chart, SeriesLabelPosition::MiddleRight)?;
        }
        Ok(())
    })?;
    Ok(())
}
