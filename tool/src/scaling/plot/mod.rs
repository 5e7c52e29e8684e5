//! Speedup and efficiency chart of a scaling study, drawn with `plotters` as
//! SVG and PNG (with the TrueType font embedded in the binary, or
//! `$TESSERA_FONT`).
//!
//! Layout: a title, then two panels sharing the x axis (ranks, base-2
//! logarithmic when the ranks span a factor of 4 or more). The top panel
//! shows the measured median speedups with min-max error bars, the ideal
//! line `S = p`, and the fitted model curve; the bottom panel shows the
//! parallel efficiency `S / p` with the ideal at 1. Oversubscribed points
//! (more ranks x threads than cores) are drawn with a hollow square of their
//! own colour. A legend sits in the top-left corner of the top panel.
//!
//! # Text without fonts
//!
//! The SVG needs no font: plotters' SVG backend writes each text as a
//! `<text>` element and leaves the glyphs to the viewer. The chart never asks
//! plotters to measure text there: the title and the legend are drawn as
//! plain `Text` elements at computed positions (not with plotters'
//! `caption` or series-label legend, which measure text with a registered
//! font), the label areas have fixed sizes, and the legend's width comes
//! from the backend's text measurement only when that succeeds, from a
//! per-character estimate otherwise. With the `ab_glyph` feature, plotters
//! measures and rasterises text only with fonts registered at run time, so
//! the PNG writer registers its font (the embedded one, or `$TESSERA_FONT`)
//! under a private family name; the SVG uses the generic `sans-serif` family, which
//! is never registered.
//!
//! # Code
//!
//! This file has the chart's types and the two writers; `data` reduces a
//! chart to what is drawn, on the axes of `axes`, with lines clipped by
//! `clip`; `draw` and `legend` draw it; `fonts` finds the PNG's font.

mod axes;
mod clip;
mod data;
mod draw;
mod fonts;
mod legend;
#[cfg(test)]
mod testing;

use std::path::Path;

use plotters::prelude::*;

use data::PlotData;
use draw::draw_chart;
use fonts::{FONT_ENV, PNG_FAMILY, font_override, register_png_font};

/// One measured rank count, as plotted.
#[derive(Debug, Clone)]
pub struct PlotPoint {
    /// Rank count `p` (on the x axis).
    pub ranks: f64,
    /// Median speedup over the repeats.
    pub speedup: f64,
    /// Smallest speedup over the repeats (lower end of the error bar).
    pub speedup_min: f64,
    /// Largest speedup over the repeats (upper end of the error bar).
    pub speedup_max: f64,
    /// Efficiency = speedup / ranks (median).
    pub efficiency: f64,
    /// More ranks (x threads) than cores: drawn with a distinct hollow marker
    /// and listed in the legend as "oversubscribed (not fitted)".
    pub oversubscribed: bool,
}

/// A model curve to draw: its legend label and (ranks, speedup) samples.
#[derive(Debug, Clone)]
pub struct Curve {
    /// Legend label, e.g. "Amdahl fit, f = 0.081 ± 0.002".
    pub label: String,
    /// `(ranks, speedup)` samples, drawn as a polyline in order of ranks.
    pub points: Vec<(f64, f64)>,
}

/// Everything on the chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Title, e.g. "matmul, strong scaling, n = 2048 (cpu)".
    pub title: String,
    /// "speedup" for strong, "scaled speedup" for weak: the y-axis label of
    /// the top panel.
    pub speedup_label: String,
    /// The measured points, one per rank count.
    pub points: Vec<PlotPoint>,
    /// The fitted model (Amdahl for strong, Gustafson for weak), sampled by
    /// the caller densely over the x range (it may extend beyond the measured
    /// ranks), or None when no fit exists.
    pub model: Option<Curve>,
}

/// Chart size in pixels (SVG user units and PNG pixels alike).
const WIDTH: u32 = 1200;
/// Chart height in pixels.
const HEIGHT: u32 = 900;

/// Font family of the SVG text: generic, resolved by the viewer, never
/// registered with plotters.
const SVG_FAMILY: FontFamily<'static> = FontFamily::SansSerif;

/// Writes the chart as SVG (1200 x 900 user units).
///
/// Needs no font on this machine: text goes into `<text>` elements with the
/// generic `sans-serif` family, rendered by whatever views the file.
///
/// # Errors
///
/// A message saying what failed and what to do, when the chart has nothing
/// finite to plot or the file cannot be written.
pub fn write_svg(chart: &Chart, path: &Path) -> Result<(), String> {
    let data = PlotData::new(chart)?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw_chart(&root, &data, SVG_FAMILY)
            .and_then(|()| root.present())
            .map_err(|e| format!("cannot draw the SVG chart for {}: {e}", path.display()))?;
    }
    std::fs::write(path, svg).map_err(|e| {
        format!(
            "cannot write the SVG chart to {}: {e}; check that its directory exists and is writable",
            path.display()
        )
    })
}

/// Writes the chart as a 1200 x 900 PNG; `path` must end in `.png`.
///
/// Text is drawn with the TrueType font embedded in the binary, or with
/// `$TESSERA_FONT` when that names one, so no system font is needed.
/// Returns a note when `$TESSERA_FONT` could not be used (the built-in font
/// was, and the PNG is written all the same).
///
/// # Errors
///
/// A message saying what failed and what to do, when `path` does not end in
/// `.png`, the chart has nothing finite to plot, or drawing or writing the
/// image fails (a partly written file is removed).
pub fn write_png(chart: &Chart, path: &Path) -> Result<Option<String>, String> {
    write_png_with_font(
        chart,
        path,
        font_override(std::env::var_os(FONT_ENV)).as_deref(),
    )
}

/// [`write_png`] with the font file to prefer over the embedded one.
fn write_png_with_font(
    chart: &Chart,
    path: &Path,
    font: Option<&Path>,
) -> Result<Option<String>, String> {
    let is_png = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !is_png {
        return Err(format!(
            "cannot write a PNG chart to {}: the file name must end in .png",
            path.display()
        ));
    }
    let data = PlotData::new(chart)?;
    let note = register_png_font(font);
    let result = {
        let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
        draw_chart(&root, &data, FontFamily::Name(PNG_FAMILY)).and_then(|()| root.present())
    };
    match result {
        Ok(()) => Ok(note),
        Err(e) => {
            // The backend may have saved a partial image when dropped.
            let _ = std::fs::remove_file(path);
            Err(format!(
                "cannot write the PNG chart to {}: {e}; check that its directory exists and is writable",
                path.display()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::legend::LEGEND_MEASURED;
    use super::testing::{TempDir, parse, sample_chart, svg_text, texts};
    use super::*;

    #[test]
    fn svg_needs_no_font() {
        // No font is registered for the SVG's family in this process (the
        // PNG tests register only PNG_FAMILY), so plotters cannot measure
        // its text; the SVG must not need to.
        let font = FontDesc::new(SVG_FAMILY, 12.0, FontStyle::Normal);
        assert!(font.box_size("ranks").is_err());
        let svg = svg_text(&sample_chart(true), "no-font");
        assert!(texts(&parse(&svg)).iter().any(|t| t == LEGEND_MEASURED));
    }

    #[test]
    fn nothing_to_plot_is_an_error() {
        let mut chart = sample_chart(false);
        chart.points.iter_mut().for_each(|p| p.speedup = f64::NAN);
        let dir = TempDir::new("empty");
        let err = write_svg(&chart, &dir.join("chart.svg")).unwrap_err();
        assert!(err.contains("no point"), "{err}");
        assert!(!dir.join("chart.svg").exists());
        chart.points.clear();
        assert!(write_svg(&chart, &dir.join("chart.svg")).is_err());
    }

    #[test]
    fn unwritable_svg_path_is_reported() {
        let dir = TempDir::new("unwritable");
        let path = dir.join("missing-dir").join("chart.svg");
        let err = write_svg(&sample_chart(true), &path).unwrap_err();
        assert!(
            err.contains("missing-dir") && err.contains("directory"),
            "{err}"
        );
    }

    /// Checks that `path` holds a PNG of the chart's size.
    fn assert_png(path: &Path) {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&bytes[12..16], b"IHDR");
        let width = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
        let height = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
        assert_eq!((width, height), (WIDTH, HEIGHT));
        assert!(bytes.len() > 10_000, "suspiciously small PNG");
    }

    #[test]
    fn png_written_with_the_embedded_font_alone() {
        // No system font is looked at: only the font inside the binary.
        let dir = TempDir::new("png");
        let path = dir.join("chart.png");
        assert_eq!(
            write_png_with_font(&sample_chart(true), &path, None),
            Ok(None)
        );
        assert_png(&path);
    }

    #[test]
    fn an_unusable_font_override_falls_back_to_the_embedded_font() {
        let dir = TempDir::new("png-bad-font");
        let junk = dir.join("junk.ttf");
        std::fs::write(&junk, b"not a font at all").unwrap();
        for bad in [dir.join("missing.ttf"), junk, dir.0.clone()] {
            let path = dir.join("chart.png");
            let note = write_png_with_font(&sample_chart(true), &path, Some(&bad))
                .unwrap()
                .expect("a note about the unusable font");
            assert!(note.contains(FONT_ENV), "{note}");
            assert_png(&path);
            std::fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn png_needs_png_extension() {
        let dir = TempDir::new("png-ext");
        let path = dir.join("chart.svg");
        let err = write_png(&sample_chart(true), &path).unwrap_err();
        assert!(err.contains(".png"), "{err}");
        assert!(!path.exists());
    }
}
