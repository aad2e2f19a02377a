//! Training metrics: one JSON object per line in `metrics.jsonl` (kept consistent across a
//! resume by dropping lines past the checkpoint), and the run's curve as an SVG at the end:
//! one [`plot`] for every phase, drawing the series its [`Chart`] names.

use std::io::Write;
use std::path::{Path, PathBuf};

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
        crate::fs::write_atomic(path, kept.as_bytes()).map_err(|(_, e)| e)?;
        let file = std::fs::OpenOptions::new().append(true).open(path)?;
        Ok(MetricsLog { file })
    }

    /// Appends one record (any phase's row: it has `phase` and `step` fields).
    pub fn write<T: Serialize>(&mut self, m: &T) -> std::io::Result<()> {
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

/// Why a curve could not be drawn (the system's fault: the metrics were just written).
#[derive(Debug, thiserror::Error)]
pub enum CurveError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Plot(#[from] crate::plot::PlotError),
}

/// One line of a [`Chart`]: the metrics key it draws, its legend and colour.
pub struct Series {
    pub key: &'static str,
    pub label: &'static str,
    pub color: RGBColor,
    pub stroke: u32,
    /// A dot at every point (sparse series such as the held-out loss).
    pub dots: bool,
}

/// What a phase's curve shows: its lines against `x_key`, for the metrics lines of `phase`.
pub struct Chart<'a> {
    pub phase: &'a str,
    pub title: &'a str,
    pub x_key: &'static str,
    pub x_desc: &'static str,
    pub y_desc: &'static str,
    /// The x axis from 0 (steps), or from the first point (tokens of every phase).
    pub x_from_zero: bool,
    /// A fixed top of the y axis (rates in [0, 1]); `None`: 5 % above the highest point.
    pub y_top: Option<f64>,
    pub series: Vec<Series>,
}

impl Chart<'_> {
    /// Pre- and mid-training: training and held-out loss against the tokens of every phase.
    pub fn loss<'a>(phase: &'a str, title: &'a str) -> Chart<'a> {
        Chart {
            phase,
            title,
            x_key: "cum_tokens",
            x_desc: "tokens (all phases)",
            y_desc: "loss (nats/token)",
            x_from_zero: false,
            y_top: None,
            series: vec![
                Series {
                    key: "loss",
                    label: "train",
                    color: BLUE,
                    stroke: 1,
                    dots: false,
                },
                Series {
                    key: "eval_loss",
                    label: "held-out",
                    color: RED,
                    stroke: 2,
                    dots: true,
                },
            ],
        }
    }

    /// RL: the trained reward, verified pass rate and answer rate against step.
    pub fn rl() -> Chart<'static> {
        let line = |key, label, color| Series {
            key,
            label,
            color,
            stroke: 2,
            dots: false,
        };
        Chart {
            phase: "rl",
            title: "GRPO: reward and pass rate of the rollouts",
            x_key: "step",
            x_desc: "RL step",
            y_desc: "mean over rollouts",
            x_from_zero: true,
            y_top: Some(1.0),
            series: vec![
                line("reward", "reward (trained)", BLUE),
                line("pass_rate", "verified pass rate", RED),
                line("answer_rate", "answer rate", GREEN),
            ],
        }
    }
}

/// Draws `chart` from the metrics file `metrics` as an SVG at `path` (nothing when the phase
/// logged no point).
pub fn plot(metrics: &Path, path: &Path, chart: &Chart<'_>) -> Result<(), CurveError> {
    let text = std::fs::read_to_string(metrics).map_err(|source| CurveError::Read {
        path: metrics.to_path_buf(),
        source,
    })?;
    let mut points: Vec<Vec<(f64, f64)>> = vec![Vec::new(); chart.series.len()];
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v.get("phase").and_then(|p| p.as_str()) != Some(chart.phase) {
            continue;
        }
        let Some(x) = v.get(chart.x_key).and_then(|x| x.as_f64()) else {
            continue;
        };
        for (s, pts) in chart.series.iter().zip(points.iter_mut()) {
            if let Some(y) = v.get(s.key).and_then(|y| y.as_f64()) {
                pts.push((x, y));
            }
        }
    }
    let all = || points.iter().flatten();
    if all().next().is_none() {
        return Ok(());
    }
    let (x0, x1) = if chart.x_from_zero {
        (0.0, all().map(|p| p.0).fold(1.0, f64::max))
    } else {
        let x0 = all().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let x1 = all().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
        (x0, x1.max(x0 + 1.0))
    };
    let y1 = chart
        .y_top
        .unwrap_or_else(|| all().map(|p| p.1).fold(0.0, f64::max) * 1.05 + 1e-9);
    let draw = |root: &crate::plot::Canvas<'_>| -> crate::plot::Drawn {
        let mut c = ChartBuilder::on(root)
            .caption(chart.title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, 0.0..y1)?;
        c.configure_mesh()
            .x_desc(chart.x_desc)
            .y_desc(chart.y_desc)
            .draw()?;
        for (s, pts) in chart.series.iter().zip(points) {
            // A sparse series that is absent (no held-out split) gets no legend entry either.
            if s.dots && pts.is_empty() {
                continue;
            }
            let color = s.color;
            c.draw_series(LineSeries::new(pts.clone(), color.stroke_width(s.stroke)))?
                .label(s.label)
                .legend(crate::plot::legend_mark(color));
            if s.dots {
                c.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
            }
        }
        crate::plot::legend(&mut c, SeriesLabelPosition::MiddleRight)
    };
    Ok(crate::plot::svg(path, (900, 540), draw)?)
}
