//! Training metrics: one JSON object per line in `metrics.jsonl` (kept consistent across a
//! resume by dropping lines past the checkpoint), and the loss curve as an SVG at the end.

use std::io::Write;
use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// One optimiser step, or one evaluation (`eval_loss` set, `loss` absent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub phase: String,
    pub step: u64,
    /// Tokens of this phase so far.
    pub tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grad_norm: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_s: Option<f64>,
    /// FLOPs of this phase so far.
    pub flops: f64,
    /// Tokens and FLOPs of every phase so far (earlier phases included).
    pub cum_tokens: u64,
    pub cum_flops: f64,
}

/// Appends metric lines to `path`.
pub struct MetricsLog {
    file: std::fs::File,
}

impl MetricsLog {
    /// Opens the log; with `keep_through = Some(step)` (a resume) lines past that step are
    /// dropped first, otherwise the file starts empty.
    pub fn open(path: &Path, keep_through: Option<u64>) -> std::io::Result<MetricsLog> {
        let kept = match (keep_through, std::fs::read_to_string(path)) {
            (Some(step), Ok(text)) => text
                .lines()
                .filter(|l| {
                    serde_json::from_str::<serde_json::Value>(l)
                        .ok()
                        .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                        .is_some_and(|s| s <= step)
                })
                .map(|l| format!("{l}\n"))
                .collect::<String>(),
            _ => String::new(),
        };
        crate::dataset::shard::write_atomic(path, kept.as_bytes())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let file = std::fs::OpenOptions::new().append(true).open(path)?;
        Ok(MetricsLog { file })
    }

    pub fn write(&mut self, m: &Metrics) -> std::io::Result<()> {
        self.write_json(m)
    }

    /// Appends any record with a `step` field (the RL loop logs its own fields).
    pub fn write_json<T: Serialize>(&mut self, m: &T) -> std::io::Result<()> {
        let mut line = serde_json::to_string(m).expect("metrics serialise");
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.flush()
    }
}

/// Reads a metrics file back.
pub fn read(path: &Path) -> std::io::Result<Vec<Metrics>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// Draws training loss (and held-out loss where measured) against tokens as an SVG.
pub fn plot(metrics: &[Metrics], path: &Path, title: &str) -> Result<(), String> {
    let train: Vec<(f64, f64)> = metrics
        .iter()
        .filter_map(|m| m.loss.map(|l| (m.cum_tokens as f64, l)))
        .collect();
    let eval: Vec<(f64, f64)> = metrics
        .iter()
        .filter_map(|m| m.eval_loss.map(|l| (m.cum_tokens as f64, l)))
        .collect();
    let all = || train.iter().chain(eval.iter());
    if all().next().is_none() {
        return Ok(());
    }
    let x0 = all().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let x1 = all()
        .map(|p| p.0)
        .fold(f64::NEG_INFINITY, f64::max)
        .max(x0 + 1.0);
    let y1 = all().map(|p| p.1).fold(0.0, f64::max) * 1.05 + 1e-9;
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let tmp = crate::fs::temp_path(path);
    let root = SVGBackend::new(&tmp, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, 0.0..y1)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("tokens (all phases)")
        .y_desc("loss (nats/token)")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(train, &BLUE))
        .map_err(|e| err(&e))?
        .label("train")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    if !eval.is_empty() {
        chart
            .draw_series(LineSeries::new(eval.clone(), RED.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label("held-out")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
        chart
            .draw_series(eval.iter().map(|&p| Circle::new(p, 3, RED.filled())))
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    drop(root);
    crate::fs::commit(path)
}

/// Draws an RL run's trained reward, verified pass rate and answer rate against step as an SVG
/// (from the `rl` lines of its metrics file).
pub fn plot_rl(metrics: &Path, path: &Path) -> Result<(), String> {
    let text =
        std::fs::read_to_string(metrics).map_err(|e| format!("{}: {e}", metrics.display()))?;
    type Series = (&'static str, RGBColor, Vec<(f64, f64)>);
    let mut series: [Series; 3] = [
        ("reward (trained)", BLUE, Vec::new()),
        ("verified pass rate", RED, Vec::new()),
        ("answer rate", GREEN, Vec::new()),
    ];
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v.get("phase").and_then(|p| p.as_str()) != Some("rl") {
            continue;
        }
        let step = v["step"].as_f64().unwrap_or(0.0);
        for (key, s) in ["reward", "pass_rate", "answer_rate"]
            .iter()
            .zip(series.iter_mut())
        {
            if let Some(y) = v.get(*key).and_then(|y| y.as_f64()) {
                s.2.push((step, y));
            }
        }
    }
    if series[0].2.is_empty() {
        return Ok(());
    }
    let x1 = series[0].2.iter().map(|p| p.0).fold(1.0, f64::max);
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let tmp = crate::fs::temp_path(path);
    let root = SVGBackend::new(&tmp, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "GRPO: reward and pass rate of the rollouts",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x1, 0.0..1.0)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("RL step")
        .y_desc("mean over rollouts")
        .draw()
        .map_err(|e| err(&e))?;
    for (name, color, pts) in series {
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    drop(root);
    crate::fs::commit(path)
}
