//! How every SVG picture is written: drawn by plotters into a temporary file beside its
//! target and moved into place only once complete ([`crate::fs::commit`]), so a failed plot
//! leaves no half-drawn file; with one palette, one legend style and one error type for the
//! pass@k plots, the study report's plots and the training curves.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

/// The palette, in the order series take it.
pub const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// Why a plot could not be drawn or saved (the system's fault: its data was just made).
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// plotters failed drawing or writing the SVG (its error as a message: the type is generic
    /// over the backend).
    #[error("{}: {message}", path.display())]
    Draw { path: PathBuf, message: String },
    /// The finished SVG could not be moved into place.
    #[error("{}: {source}", path.display())]
    Save {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a drawing closure returns: plotters' errors, boxed.
pub type Drawn = Result<(), Box<dyn std::error::Error>>;

/// The canvas a drawing closure gets.
pub type Canvas<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Draw an SVG of `size` pixels at `path`: `draw` paints on a white canvas, then the file is
/// moved into place. A failed drawing removes its temporary file.
pub fn svg(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&Canvas<'_>) -> Drawn,
) -> Result<(), PlotError> {
    let tmp = crate::fs::temp_path(path);
    let drawn = (|| -> Drawn {
        let root = SVGBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
        Ok(())
    })();
    if let Err(e) = drawn {
        let _ = std::fs::remove_file(&tmp);
        return Err(PlotError::Draw {
            path: path.to_path_buf(),
            message: e.to_string(),
        });
    }
    crate::fs::commit(path).map_err(|(path, source)| PlotError::Save { path, source })
}

/// A line series' legend entry: a short stroke in `style`.
pub fn legend_mark<S: Into<ShapeStyle> + Copy>(
    style: S,
) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style)
}

/// The legend every plot draws: framed, on translucent white, at `at`.
pub fn legend<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>, at: SeriesLabelPosition) -> Drawn
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(at)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    Ok(())
}
