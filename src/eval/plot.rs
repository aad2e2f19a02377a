//! Pass@k pictures: pass@k against op (one curve per k, one panel per split) and pass@k
//! against k (one curve per split), from a summary's rows.

use std::collections::BTreeSet;
use std::path::Path;

use plotters::prelude::*;

use super::audit::PassJson;

use crate::plot::{PlotError, COLORS};

/// One panel per split: verified pass@k (%) against op, one curve per k.
pub fn passk_vs_op(rows: &[PassJson], path: &Path, title: &str) -> Result<(), PlotError> {
    let by_op: Vec<&PassJson> = rows
        .iter()
        .filter(|r| r.op.is_some() && r.template.is_none() && r.mode.is_none())
        .collect();
    let splits: BTreeSet<&str> = by_op.iter().filter_map(|r| r.split.as_deref()).collect();
    let ks: BTreeSet<u32> = by_op.iter().map(|r| r.k).collect();
    if splits.is_empty() {
        return Ok(());
    }
    crate::plot::svg(path, (420 * splits.len() as u32 + 40, 460), |root| {
        let root = root.titled(title, ("sans-serif", 22))?;
        let panels = root.split_evenly((1, splits.len()));
        for (panel, split) in panels.iter().zip(&splits) {
            let here: Vec<&&PassJson> = by_op
                .iter()
                .filter(|r| r.split.as_deref() == Some(split))
                .collect();
            let ops: Vec<u32> = here.iter().filter_map(|r| r.op).collect();
            let (lo, hi) = (
                *ops.iter().min().unwrap_or(&0) as f64,
                *ops.iter().max().unwrap_or(&1) as f64,
            );
            let mut chart = ChartBuilder::on(panel)
                .caption(*split, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d(lo - 0.5..hi + 0.5, 0.0..100.0)?;
            chart
                .configure_mesh()
                .x_desc("op")
                .y_desc("pass@k, verified (%)")
                .draw()?;
            for (i, &k) in ks.iter().enumerate() {
                let mut pts: Vec<(f64, f64)> = here
                    .iter()
                    .filter(|r| r.k == k)
                    .map(|r| (r.op.unwrap_or(0) as f64, 100.0 * r.verified))
                    .collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                let c = COLORS[i % COLORS.len()];
                chart
                    .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?
                    .label(format!("pass@{k}"))
                    .legend(crate::plot::legend_mark(c));
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
            }
            crate::plot::legend(&mut chart, SeriesLabelPosition::MiddleRight)?;
        }
        Ok(())
    })
}

/// Verified (solid) and answer-only (thin) pass@k (%) against k, one colour per split.
pub fn passk_vs_k(rows: &[PassJson], path: &Path, title: &str) -> Result<(), PlotError> {
    let by_split: Vec<&PassJson> = rows
        .iter()
        .filter(|r| r.split.is_some() && r.op.is_none() && r.template.is_none() && r.mode.is_none())
        .collect();
    let splits: BTreeSet<&str> = by_split.iter().filter_map(|r| r.split.as_deref()).collect();
    let kmax = by_split.iter().map(|r| r.k).max().unwrap_or(1).max(2);
    if splits.is_empty() {
        return Ok(());
    }
    crate::plot::svg(path, (760, 480), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d((1.0..kmax as f64).log_scale(), 0.0..100.0)?;
        chart
            .configure_mesh()
            .x_desc("k")
            .y_desc("pass@k (%)")
            .draw()?;
        for (i, split) in splits.iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            let mut rows: Vec<&&PassJson> = by_split
                .iter()
                .filter(|r| r.split.as_deref() == Some(split))
                .collect();
            rows.sort_by_key(|r| r.k);
            let verified: Vec<(f64, f64)> = rows
                .iter()
                .map(|r| (r.k as f64, 100.0 * r.verified))
                .collect();
            let answer: Vec<(f64, f64)> = rows
                .iter()
                .map(|r| (r.k as f64, 100.0 * r.answer))
                .collect();
            chart
                .draw_series(LineSeries::new(verified.clone(), c.stroke_width(2)))?
                .label(format!("{split} verified"))
                .legend(crate::plot::legend_mark(c.stroke_width(2)));
            chart.draw_series(verified.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
            chart
                .draw_series(LineSeries::new(answer, c.mix(0.5)))?
                .label(format!("{split} answer-only"))
                .legend(crate::plot::legend_mark(c.mix(0.5)));
        }
        crate::plot::legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    })
}
