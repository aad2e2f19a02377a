//! The study report's plots, one SVG per experiment and view: pass@k against op per arm,
//! pass@k against k per split, and the RL reward and verified-pass curves.
//!
//! Kept apart from the report's text because they share nothing with it but the experiment
//! they draw: the plots are plotters code and the estimates they show are the same
//! `study::estimate` calls the tables make. Each is written through [`crate::plot::svg`], so
//! a failed plot leaves no half-drawn file behind.

use std::path::Path;

use plotters::prelude::*;

use super::report::{samples, slice, Experiment, ReportError};
use super::study::{estimate, Estimate, Metric};
use crate::plot::{Canvas, Drawn, COLORS};

fn ops_of(x: &Experiment, split: &str) -> Vec<u32> {
    let mut ops: Vec<u32> = x
        .arms
        .iter()
        .flat_map(|a| a.1.iter().flat_map(|e| e.values()))
        .filter(|t| t.split == split && x.spec.template.as_deref().is_none_or(|m| m == t.template))
        .map(|t| t.op)
        .collect();
    ops.sort_unstable();
    ops.dedup();
    ops
}

/// One panel per split: pass@1 (solid) and pass@k (dashed) against op, one colour per arm,
/// with the interval of pass@k as a bar.
pub(super) fn plot_vs_op(x: &Experiment, path: &Path) -> Result<(), ReportError> {
    let n = x.spec.splits.len().max(1);
    let draw = |root: &Canvas<'_>| -> Drawn {
        let root = root.titled(
            &format!(
                "{}: verified pass@1 (solid) and pass@{} (dashed) by op",
                x.spec.name, x.spec.k
            ),
            ("sans-serif", 20),
        )?;
        for (panel, split) in root.split_evenly((1, n)).iter().zip(&x.spec.splits) {
            let ops = ops_of(x, split);
            let (lo, hi) = (
                *ops.first().unwrap_or(&0) as f64,
                *ops.last().unwrap_or(&1) as f64,
            );
            let mut chart = ChartBuilder::on(panel)
                .caption(split, ("sans-serif", 16))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d(lo - 0.5..hi + 0.5, 0.0..100.0)?;
            chart.configure_mesh().x_desc("op").y_desc("%").draw()?;
            for (i, (name, arm)) in x.arms.iter().enumerate() {
                let c = COLORS[i % COLORS.len()];
                let at = |m: Metric| -> Vec<(f64, Estimate)> {
                    ops.iter()
                        .filter_map(|&o| {
                            Some((o as f64, estimate(arm, &slice(x, split, Some(o)), m)?))
                        })
                        .collect()
                };
                let p1 = at(Metric::Verified(1));
                let pk = at(Metric::Verified(x.spec.k));
                chart
                    .draw_series(LineSeries::new(
                        p1.iter().map(|(o, e)| (*o, 100.0 * e.mean)),
                        c.stroke_width(2),
                    ))?
                    .label(name.clone())
                    .legend(crate::plot::legend_mark(c));
                chart.draw_series(DashedLineSeries::new(
                    pk.iter().map(|(o, e)| (*o, 100.0 * e.mean)),
                    6,
                    4,
                    c.stroke_width(1),
                ))?;
                chart.draw_series(pk.iter().map(|(o, e)| {
                    PathElement::new(vec![(*o, 100.0 * e.lo), (*o, 100.0 * e.hi)], c)
                }))?;
            }
            crate::plot::legend(&mut chart, SeriesLabelPosition::MiddleRight)?;
        }
        Ok(())
    };
    Ok(crate::plot::svg(path, (420 * n as u32 + 40, 460), draw)?)
}

/// One panel per split: verified pass@k against k (powers of two), one colour per arm.
pub(super) fn plot_vs_k(x: &Experiment, path: &Path) -> Result<(), ReportError> {
    let n = x.spec.splits.len().max(1);
    let draw = |root: &Canvas<'_>| -> Drawn {
        let kmax = x
            .arms
            .iter()
            .map(|a| samples(&a.1))
            .max()
            .unwrap_or(1)
            .max(2);
        let root = root.titled(
            &format!("{}: verified pass@k against k", x.spec.name),
            ("sans-serif", 20),
        )?;
        for (panel, split) in root.split_evenly((1, n)).iter().zip(&x.spec.splits) {
            let mut chart = ChartBuilder::on(panel)
                .caption(split, ("sans-serif", 16))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d((1.0..kmax as f64).log_scale(), 0.0..100.0)?;
            chart.configure_mesh().x_desc("k").y_desc("%").draw()?;
            for (i, (name, arm)) in x.arms.iter().enumerate() {
                let c = COLORS[i % COLORS.len()];
                let ks: Vec<u32> = (0..)
                    .map(|p| 1u32 << p)
                    .take_while(|&k| k <= samples(arm))
                    .collect();
                let pts: Vec<(f64, f64)> = ks
                    .iter()
                    .filter_map(|&k| {
                        let e = estimate(arm, &slice(x, split, None), Metric::Verified(k))?;
                        Some((k as f64, 100.0 * e.mean))
                    })
                    .collect();
                chart
                    .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?
                    .label(name.clone())
                    .legend(crate::plot::legend_mark(c));
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
            }
            crate::plot::legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        }
        Ok(())
    };
    Ok(crate::plot::svg(path, (420 * n as u32 + 40, 460), draw)?)
}

/// (step, reward, pass_rate) per step of an RL run.
type Curve = Vec<(f64, f64, f64)>;

/// The curve of an RL run's metrics.jsonl.
fn rl_curve(path: &Path) -> Curve {
    std::fs::read_to_string(path.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["phase"] == "rl")
        .filter_map(|v| {
            Some((
                v["step"].as_f64()?,
                v["reward"].as_f64()?,
                v["pass_rate"].as_f64()?,
            ))
        })
        .collect()
}

/// Two panels: RL reward and verified pass rate of the rollouts per step, one colour per arm, one
/// line per seed. Nothing is drawn for an experiment without RL runs.
pub(super) fn plot_rl(x: &Experiment, path: &Path) -> Result<(), ReportError> {
    let runs: Vec<(usize, &str, Curve)> = x
        .spec
        .arms
        .iter()
        .enumerate()
        .flat_map(|(i, a)| {
            a.runs
                .iter()
                .map(move |r| (i, a.name.as_str(), rl_curve(&x.dir.join(r))))
        })
        .filter(|r| !r.2.is_empty())
        .collect();
    if runs.is_empty() {
        return Ok(());
    }
    let draw = |root: &Canvas<'_>| -> Drawn {
        let steps = runs
            .iter()
            .flat_map(|r| r.2.iter().map(|p| p.0))
            .fold(1.0, f64::max);
        let root = root.titled(
            &format!("{}: RL rollouts per step (one line per seed)", x.spec.name),
            ("sans-serif", 20),
        )?;
        for (panel, (title, pick)) in root.split_evenly((1, 2)).iter().zip([
            ("reward", 1usize),
            ("verified pass rate of the rollouts", 2usize),
        ]) {
            let mut chart = ChartBuilder::on(panel)
                .caption(title, ("sans-serif", 16))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d(0.0..steps, 0.0..1.0)?;
            chart.configure_mesh().x_desc("step").draw()?;
            let mut labelled = vec![false; x.spec.arms.len()];
            for (i, name, pts) in &runs {
                let c = COLORS[i % COLORS.len()];
                let line = pts.iter().map(|p| (p.0, if pick == 1 { p.1 } else { p.2 }));
                let s = chart.draw_series(LineSeries::new(line, c.stroke_width(1)))?;
                if !labelled[*i] {
                    labelled[*i] = true;
                    s.label(name.to_string())
                        .legend(crate::plot::legend_mark(c));
                }
            }
            crate::plot::legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        }
        Ok(())
    };
    Ok(crate::plot::svg(path, (1000, 440), draw)?)
}
