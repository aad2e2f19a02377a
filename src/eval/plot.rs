//! Pass@k pictures: pass@k against op (one curve per k, one panel per split) and pass@k
//! against k (one curve per split), from a summary's rows.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::audit::PassJson;

/// The plots' palette (also the study report's).
pub(crate) const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// Why a plot could not be drawn or saved.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Drawing failed (plotters' error, as its message: its type is generic over the backend).
    #[error("{}: {message}", path.display())]
    Draw { path: PathBuf, message: String },
    /// The drawn file could not be made visible at its path (the message names it).
    #[error("{0}")]
    Save(String),
}

fn err(path: &Path) -> impl Fn(&dyn std::fmt::Display) -> PlotError + '_ {
    move |e| PlotError::Draw {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Make the drawn temporary file visible at `path`.
fn save(path: &Path) -> Result<(), PlotError> {
    crate::fs::commit(path).map_err(|e| PlotError::Save(e.to_string()))
}

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
    let e = err(path);
    let tmp = crate::fs::temp_path(path);
    let root = SVGBackend::new(&tmp, (420 * splits.len() as u32 + 40, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(|x| e(&x))?;
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
            .build_cartesian_2d(lo - 0.5..hi + 0.5, 0.0..100.0)
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_desc("op")
            .y_desc("pass@k, verified (%)")
            .draw()
            .map_err(|x| e(&x))?;
        for (i, &k) in ks.iter().enumerate() {
            let mut pts: Vec<(f64, f64)> = here
                .iter()
                .filter(|r| r.k == k)
                .map(|r| (r.op.unwrap_or(0) as f64, 100.0 * r.verified))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let c = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(|x| e(&x))?
                .label(format!("pass@{k}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
                .map_err(|x| e(&x))?;
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(|x| e(&x))?;
    }
    root.present().map_err(|x| e(&x))?;
    drop(root);
    save(path)
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
    let e = err(path);
    let tmp = crate::fs::temp_path(path);
    let root = SVGBackend::new(&tmp, (760, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d((1.0..kmax as f64).log_scale(), 0.0..100.0)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("k")
        .y_desc("pass@k (%)")
        .draw()
        .map_err(|x| e(&x))?;
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
            .draw_series(LineSeries::new(verified.clone(), c.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(format!("{split} verified"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(verified.iter().map(|&p| Circle::new(p, 3, c.filled())))
            .map_err(|x| e(&x))?;
        chart
            .draw_series(LineSeries::new(answer, c.mix(0.5)))
            .map_err(|x| e(&x))?
            .label(format!("{split} answer-only"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.mix(0.5)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    drop(root);
    save(path)
}
