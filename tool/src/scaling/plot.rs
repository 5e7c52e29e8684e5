//! Speedup and efficiency chart of a scaling study, drawn with `plotters` as
//! SVG (always) and PNG (when a TrueType font can be found).
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
//! the PNG writer first looks for a TrueType file and registers it under a
//! private family name; the SVG uses the generic `sans-serif` family, which
//! is never registered.

use std::collections::HashMap;
use std::ffi::OsString;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

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
/// Height of the title band.
const TITLE_BAND: i32 = 56;
/// Height of the speedup panel; the efficiency panel takes the rest.
const TOP_PANEL: i32 = 500;

/// Font family of the SVG text: generic, resolved by the viewer, never
/// registered with plotters.
const SVG_FAMILY: FontFamily<'static> = FontFamily::SansSerif;
/// Private family name under which the PNG writer registers its font.
const PNG_FAMILY: &str = "tessera-png-sans";

const TITLE_SIZE: f64 = 30.0;
const AXIS_DESC_SIZE: f64 = 22.0;
const TICK_LABEL_SIZE: f64 = 18.0;
const LEGEND_SIZE: f64 = 18.0;

const MEASURED_COLOR: RGBColor = RGBColor(31, 119, 180);
const OVERSUBSCRIBED_COLOR: RGBColor = RGBColor(255, 127, 14);
const MODEL_COLOR: RGBColor = RGBColor(214, 39, 40);
const IDEAL_COLOR: RGBColor = RGBColor(110, 110, 110);

const LEGEND_MEASURED: &str = "measured (median, min-max)";
const LEGEND_OVERSUBSCRIBED: &str = "oversubscribed (not fitted)";
const LEGEND_IDEAL: &str = "ideal (S = p)";

/// Marker radius (circle) and half side (square), in pixels.
const MARKER: i32 = 6;
/// Half width of an error bar's caps, in pixels.
const CAP: i32 = 5;
/// Samples of the ideal line across the x range when it is curved (one
/// axis logarithmic, the other linear).
const IDEAL_SAMPLES: usize = 200;

/// Environment variable naming a TrueType font for the PNG.
const FONT_ENV: &str = tessera::env::FONT;
/// Where common Linux distributions install a sans-serif TrueType font.
const FONT_PATHS: [&str; 7] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
];
/// Larger files are not taken for fonts (they would be read whole).
const MAX_FONT_BYTES: u64 = 64 << 20;

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
/// Text rendering needs a TrueType font: the first loadable one of
/// `$TESSERA_FONT` (when set) and the usual install paths of DejaVu Sans,
/// Liberation Sans and FreeSans is registered with plotters and used. When
/// none is found, nothing is written and the result is `Ok(false)`, so the
/// caller can say "no PNG: install a TrueType font (Debian:
/// fonts-dejavu-core) or set TESSERA_FONT"; `Ok(true)` when written.
///
/// # Errors
///
/// A message saying what failed and what to do, when `path` does not end in
/// `.png`, the chart has nothing finite to plot, or drawing or writing the
/// image fails (a partly written file is removed).
pub fn write_png(chart: &Chart, path: &Path) -> Result<bool, String> {
    write_png_with_fonts(chart, path, &font_candidates(std::env::var_os(FONT_ENV)))
}

/// [`write_png`] with an explicit list of font files to try, in order.
fn write_png_with_fonts(chart: &Chart, path: &Path, fonts: &[PathBuf]) -> Result<bool, String> {
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
    if !register_first_font(fonts) {
        return Ok(false);
    }
    let result = {
        let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
        draw_chart(&root, &data, FontFamily::Name(PNG_FAMILY)).and_then(|()| root.present())
    };
    match result {
        Ok(()) => Ok(true),
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

/// Font files to try for the PNG: `$TESSERA_FONT` first when set and not
/// empty, then [`FONT_PATHS`].
fn font_candidates(env: Option<OsString>) -> Vec<PathBuf> {
    env.filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .chain(FONT_PATHS.iter().map(PathBuf::from))
        .collect()
}

/// Font files already read, by path: their bytes, leaked once to get the
/// `'static` lifetime that `plotters::style::register_font` requires, or
/// `None` for a file that turned out not to be a font.
static LOADED_FONTS: Mutex<Option<FontCache>> = Mutex::new(None);

/// Font bytes by path; `None` for a file that is not a usable font.
type FontCache = HashMap<PathBuf, Option<&'static [u8]>>;

/// Whether `bytes` starts like a TrueType/OpenType font or collection.
fn looks_like_font(bytes: &[u8]) -> bool {
    matches!(
        bytes.get(..4),
        Some([0, 1, 0, 0] | b"true" | b"OTTO" | b"ttcf")
    )
}

/// Registers the first loadable font of `candidates` as [`PNG_FAMILY`];
/// false when none is.
fn register_first_font(candidates: &[PathBuf]) -> bool {
    // A poisoned lock only means another thread panicked while holding it;
    // the map is still consistent (each entry is inserted whole).
    let mut guard = LOADED_FONTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let loaded = guard.get_or_insert_with(HashMap::new);
    for path in candidates {
        let bytes = match loaded.get(path) {
            Some(cached) => *cached,
            None => {
                let fits =
                    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() <= MAX_FONT_BYTES);
                if !fits {
                    continue;
                }
                let Ok(bytes) = std::fs::read(path) else {
                    continue;
                };
                let leaked: Option<&'static [u8]> = if looks_like_font(&bytes) {
                    Some(Box::leak(bytes.into_boxed_slice()))
                } else {
                    None
                };
                loaded.insert(path.clone(), leaked);
                leaked
            }
        };
        if let Some(bytes) = bytes {
            if plotters::style::register_font(PNG_FAMILY, FontStyle::Normal, bytes).is_ok() {
                return true;
            }
            loaded.insert(path.clone(), None);
        }
    }
    false
}

/// A chart axis, linear or base-2 logarithmic. Values are drawn in axis
/// units: the value itself, or its log2. It is also the plotters coordinate
/// of the axis: linear in axis units, with ticks (bold key points) exactly
/// at `ticks` and no light grid points.
#[derive(Debug, Clone, PartialEq)]
struct Axis {
    /// Whether axis units are log2 of the value.
    log2: bool,
    /// Lower end of the visible range, in axis units.
    lo: f64,
    /// Upper end of the visible range, in axis units.
    hi: f64,
    /// Tick positions, in axis units.
    ticks: Vec<f64>,
}

impl Axis {
    /// Logarithmic axis over `[min, max]` (`0 < min < max`), padded by 4% on
    /// each side, with ticks at powers of two (at most 12 of them).
    fn log2(min: f64, max: f64) -> Self {
        let (a, b) = (min.log2(), max.log2());
        let pad = 0.04 * (b - a);
        let first = a.ceil() as i64;
        let last = b.floor() as i64;
        let step = ((last - first) / 12 + 1).max(1);
        let ticks = (first..=last)
            .filter(|k| (k - first) % step == 0)
            .map(|k| k as f64)
            .collect();
        Axis {
            log2: true,
            lo: a - pad,
            hi: b + pad,
            ticks,
        }
    }

    /// Linear axis over `[lo, hi]` with "nice" ticks at least `min_step`
    /// apart.
    fn linear(lo: f64, hi: f64, min_step: f64) -> Self {
        Axis {
            log2: false,
            lo,
            hi,
            ticks: nice_ticks(lo, hi, 8, min_step),
        }
    }

    /// The ranks axis over `[min, max]` (both finite, `0 < min <= max`):
    /// logarithmic when `max / min >= 4`, else linear with ticks at whole
    /// rank counts; padded so that markers at the ends are not cut, and
    /// around a single rank count when `min == max`.
    fn ranks(min: f64, max: f64) -> Self {
        if max / min >= 4.0 {
            return Axis::log2(min, max);
        }
        let span = max - min;
        let (lo, hi) = if span <= 1e-9 * max {
            (0.5 * min, 1.5 * max)
        } else {
            (min - 0.05 * span, max + 0.05 * span)
        };
        Axis::linear(lo, hi, 1.0)
    }

    /// The speedup axis for values in `[min, max]`: logarithmic when the
    /// ranks axis is (`log_allowed`), every value is positive and they span
    /// a factor of 4 or more; else linear from 0 to `max(1.1 max, 1.1)`.
    fn speedup(min: f64, max: f64, log_allowed: bool) -> Self {
        if log_allowed && min > 0.0 && max / min >= 4.0 {
            Axis::log2(min, max)
        } else {
            Axis::from_zero(max)
        }
    }

    /// Linear axis from 0 to `max(1.1 max, 1.1)`.
    fn from_zero(max: f64) -> Self {
        Axis::linear(0.0, (1.1 * max).max(1.1), 0.0)
    }

    /// Axis units of a value.
    fn to_axis(&self, value: f64) -> f64 {
        if self.log2 { value.log2() } else { value }
    }

    /// Axis units of a value, moved onto the nearest end of the visible
    /// range when outside it.
    fn to_axis_within(&self, value: f64) -> f64 {
        self.to_axis(value).max(self.lo).min(self.hi)
    }

    /// Value at an axis position.
    fn to_value(&self, u: f64) -> f64 {
        if self.log2 { u.exp2() } else { u }
    }

    /// Tick label: the value.
    fn label(&self, u: f64) -> String {
        format_number(self.to_value(u))
    }

    /// The visible range, in axis units.
    fn bounds(&self) -> (f64, f64) {
        (self.lo, self.hi)
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = (value - self.lo) / (self.hi - self.lo);
        // `as` saturates out-of-range values, which are clipped anyway.
        (f64::from(limit.0) + t * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

/// "Nice" tick positions (multiples of 1, 2 or 5 times a power of ten, and
/// at least `min_step` apart) in `[lo, hi]`, about `target` of them.
fn nice_ticks(lo: f64, hi: f64, target: usize, min_step: f64) -> Vec<f64> {
    let raw = ((hi - lo) / target.max(1) as f64).max(min_step);
    if !(raw > 0.0 && raw.is_finite()) {
        return vec![lo];
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A number for a tick label: integers without decimals, others with up to
/// three significant decimals and no trailing zeros.
fn format_number(x: f64) -> String {
    let rounded = x.round();
    if (x - rounded).abs() <= 1e-9 * x.abs().max(1.0) {
        return format!("{rounded:.0}");
    }
    let text = format!("{x:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One point in axis units, ready to draw.
#[derive(Debug, Clone, Copy)]
struct Marker {
    /// Ranks.
    x: f64,
    /// Median, min and max speedup.
    speedup: [f64; 3],
    /// Median, min and max efficiency.
    efficiency: [f64; 3],
    oversubscribed: bool,
}

/// The chart reduced to what is drawn: axes, finite values in axis units,
/// and polylines already clipped to the panels.
#[derive(Debug, Clone)]
struct PlotData {
    title: String,
    speedup_label: String,
    /// Ranks axis, shared by both panels.
    x: Axis,
    /// Speedup axis of the top panel.
    y_speedup: Axis,
    /// Efficiency axis of the bottom panel.
    y_efficiency: Axis,
    markers: Vec<Marker>,
    any_oversubscribed: bool,
    model_label: Option<String>,
    /// Ideal `S = p` runs, clipped to the top panel.
    ideal: Vec<Vec<(f64, f64)>>,
    /// Model speedup runs, clipped to the top panel.
    model: Vec<Vec<(f64, f64)>>,
    /// Model efficiency runs, clipped to the bottom panel.
    model_efficiency: Vec<Vec<(f64, f64)>>,
}

/// Smallest and largest of some values; `(inf, -inf)` when there are none.
fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

impl PlotData {
    /// Prepares a chart for drawing. Points with non-finite or non-positive
    /// ranks or speedup, or non-finite efficiency, are left out, and so are
    /// model samples with non-finite or non-positive ranks or non-finite
    /// speedup; a non-finite min or max collapses that end of the error bar
    /// onto the median, and error bars are cut at the panel's edges.
    fn new(chart: &Chart) -> Result<Self, String> {
        let finite_or = |v: f64, fallback: f64| if v.is_finite() { v } else { fallback };
        // (ranks, [speedup median, min, max], [efficiency ...], oversubscribed)
        let points: Vec<(f64, [f64; 3], [f64; 3], bool)> = chart
            .points
            .iter()
            .filter(|p| {
                p.ranks.is_finite()
                    && p.ranks > 0.0
                    && p.speedup.is_finite()
                    && p.speedup > 0.0
                    && p.efficiency.is_finite()
            })
            .map(|p| {
                let low = finite_or(p.speedup_min, p.speedup);
                let high = finite_or(p.speedup_max, p.speedup);
                (
                    p.ranks,
                    [p.speedup, low, high],
                    [p.efficiency, low / p.ranks, high / p.ranks],
                    p.oversubscribed,
                )
            })
            .collect();
        let mut model: Vec<(f64, f64)> = chart
            .model
            .iter()
            .flat_map(|c| c.points.iter().copied())
            .filter(|&(x, y)| x.is_finite() && x > 0.0 && y.is_finite())
            .collect();
        model.sort_by(|a, b| a.0.total_cmp(&b.0));

        let (x_min, x_max) = min_max(points.iter().map(|p| p.0).chain(model.iter().map(|m| m.0)));
        if !(x_min.is_finite() && x_max.is_finite()) {
            return Err(format!(
                "cannot plot \"{}\": no point has finite, positive ranks and speedup, \
                 and there is no model curve; run the measurements first",
                chart.title
            ));
        }
        let x = Axis::ranks(x_min, x_max);
        let (s_min, s_max) = min_max(
            points
                .iter()
                .flat_map(|p| p.1)
                .chain(model.iter().map(|m| m.1)),
        );
        let y_speedup = Axis::speedup(s_min, s_max, x.log2);
        let (_, e_max) = min_max(
            points
                .iter()
                .flat_map(|p| p.2)
                .chain(model.iter().map(|m| m.1 / m.0)),
        );
        let y_efficiency = Axis::from_zero(e_max);

        let markers: Vec<Marker> = points
            .iter()
            .map(|&(ranks, speedup, efficiency, oversubscribed)| Marker {
                x: x.to_axis(ranks),
                speedup: speedup.map(|v| y_speedup.to_axis_within(v)),
                efficiency: efficiency.map(|v| y_efficiency.to_axis_within(v)),
                oversubscribed,
            })
            .collect();

        // S = p is straight when both axes are linear or both logarithmic.
        let samples = if x.log2 == y_speedup.log2 {
            1
        } else {
            IDEAL_SAMPLES
        };
        let ideal_line: Vec<(f64, f64)> = (0..=samples)
            .map(|i| {
                let u = x.lo + (x.hi - x.lo) * i as f64 / samples as f64;
                (u, y_speedup.to_axis(x.to_value(u)))
            })
            .collect();
        let model_top: Vec<(f64, f64)> = model
            .iter()
            .map(|&(p, s)| (x.to_axis(p), y_speedup.to_axis(s)))
            .collect();
        let model_bottom: Vec<(f64, f64)> = model
            .iter()
            .map(|&(p, s)| (x.to_axis(p), y_efficiency.to_axis(s / p)))
            .collect();

        Ok(PlotData {
            title: chart.title.clone(),
            speedup_label: chart.speedup_label.clone(),
            ideal: clip_polyline(&ideal_line, x.bounds(), y_speedup.bounds()),
            model: clip_polyline(&model_top, x.bounds(), y_speedup.bounds()),
            model_efficiency: clip_polyline(&model_bottom, x.bounds(), y_efficiency.bounds()),
            any_oversubscribed: markers.iter().any(|m| m.oversubscribed),
            markers,
            model_label: chart.model.as_ref().map(|c| c.label.clone()),
            x,
            y_speedup,
            y_efficiency,
        })
    }
}

/// Clips the segment `a`-`b` to the rectangle `x` x `y` (Liang-Barsky);
/// `None` when no part of it is inside.
fn clip_segment(
    a: (f64, f64),
    b: (f64, f64),
    x: (f64, f64),
    y: (f64, f64),
) -> Option<((f64, f64), (f64, f64))> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let mut t0 = 0.0f64;
    let mut t1 = 1.0f64;
    for (p, q) in [
        (-dx, a.0 - x.0),
        (dx, x.1 - a.0),
        (-dy, a.1 - y.0),
        (dy, y.1 - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    if t0 > t1 {
        return None;
    }
    let at = |t: f64| {
        if t == 0.0 {
            a
        } else if t == 1.0 {
            b
        } else {
            (a.0 + t * dx, a.1 + t * dy)
        }
    };
    Some((at(t0), at(t1)))
}

/// Clips a polyline to a rectangle, returning the visible runs (each with
/// at least two vertices).
fn clip_polyline(points: &[(f64, f64)], x: (f64, f64), y: (f64, f64)) -> Vec<Vec<(f64, f64)>> {
    let mut runs = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for pair in points.windows(2) {
        match clip_segment(pair[0], pair[1], x, y) {
            Some((start, end)) => {
                if current.last() != Some(&start) {
                    if current.len() >= 2 {
                        runs.push(std::mem::take(&mut current));
                    }
                    current = vec![start];
                }
                current.push(end);
            }
            None => {
                if current.len() >= 2 {
                    runs.push(std::mem::take(&mut current));
                }
                current.clear();
            }
        }
    }
    if current.len() >= 2 {
        runs.push(current);
    }
    runs
}

/// Result of drawing on backend `DB`.
type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A text style of the given family, size and weight, in black.
fn text_style(family: FontFamily<'_>, size: f64, style: FontStyle) -> TextStyle<'_> {
    TextStyle::from(FontDesc::new(family, size, style)).color(&BLACK)
}

/// Draws the whole chart on `root`.
fn draw_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &PlotData,
    family: FontFamily<'_>,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let title_style =
        text_style(family, TITLE_SIZE, FontStyle::Bold).pos(Pos::new(HPos::Center, VPos::Center));
    root.draw(&Text::new(
        data.title.clone(),
        (WIDTH as i32 / 2, TITLE_BAND / 2),
        title_style,
    ))?;
    let (_, body) = root.split_vertically(TITLE_BAND);
    let (top, bottom) = body.split_vertically(TOP_PANEL);
    draw_speedup_panel(&top, data, family)?;
    draw_efficiency_panel(&bottom, data, family)
}

/// A panel's chart: the shared ranks axis and the panel's own y axis.
type Panel<'a, DB> = ChartContext<'a, DB, Cartesian2d<Axis, Axis>>;

/// Builds a panel's chart over axes `x` and `y`, with its mesh, tick labels
/// and axis descriptions.
fn panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    x: &Axis,
    y: &Axis,
    family: FontFamily<'a>,
    y_desc: &str,
) -> Result<Panel<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = ChartBuilder::on(area)
        .margin_top(10)
        .margin_bottom(5)
        .margin_left(15)
        .margin_right(30)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(x.clone(), y.clone())?;
    let format_x = |u: &f64| x.label(*u);
    let format_y = |u: &f64| y.label(*u);
    chart
        .configure_mesh()
        .x_labels(x.ticks.len().max(1))
        .y_labels(y.ticks.len().max(1))
        .x_label_formatter(&format_x)
        .y_label_formatter(&format_y)
        .label_style(text_style(family, TICK_LABEL_SIZE, FontStyle::Normal))
        .axis_desc_style(text_style(family, AXIS_DESC_SIZE, FontStyle::Normal))
        .x_desc("ranks")
        .y_desc(y_desc)
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;
    Ok(chart)
}

/// Draws the markers of `points` (`(u, y, oversubscribed)`): filled circles,
/// and for oversubscribed points hollow squares in their own colour.
fn draw_markers<DB: DrawingBackend>(
    chart: &mut Panel<'_, DB>,
    points: &[(f64, f64, bool)],
) -> DrawResult<DB> {
    let r = MARKER;
    chart.draw_series(
        points
            .iter()
            .filter(|p| !p.2)
            .map(|&(u, y, _)| Circle::new((u, y), r, MEASURED_COLOR.filled())),
    )?;
    chart.draw_series(points.iter().filter(|p| p.2).map(|&(u, y, _)| {
        let square = vec![(-r, -r), (r, -r), (r, r), (-r, r), (-r, -r)];
        EmptyElement::at((u, y)) + PathElement::new(square, OVERSUBSCRIBED_COLOR.stroke_width(2))
    }))?;
    Ok(())
}

/// Colour of a point's marker and error bar.
fn point_color(oversubscribed: bool) -> RGBColor {
    if oversubscribed {
        OVERSUBSCRIBED_COLOR
    } else {
        MEASURED_COLOR
    }
}

/// Draws vertical error bars `(u, low, high, oversubscribed)` with caps at
/// both ends; bars of zero length are skipped.
fn draw_error_bars<DB: DrawingBackend>(
    chart: &mut Panel<'_, DB>,
    bars: &[(f64, f64, f64, bool)],
) -> DrawResult<DB> {
    let bars: Vec<_> = bars.iter().filter(|b| b.2 > b.1).collect();
    chart.draw_series(bars.iter().map(|&&(u, lo, hi, over)| {
        PathElement::new(vec![(u, lo), (u, hi)], point_color(over).stroke_width(2))
    }))?;
    chart.draw_series(bars.iter().flat_map(|&&(u, lo, hi, over)| {
        [lo, hi].map(|y| {
            EmptyElement::at((u, y))
                + PathElement::new(vec![(-CAP, 0), (CAP, 0)], point_color(over).stroke_width(2))
        })
    }))?;
    Ok(())
}

/// Draws `runs` as polylines.
fn draw_runs<DB: DrawingBackend>(
    chart: &mut Panel<'_, DB>,
    runs: &[Vec<(f64, f64)>],
    style: ShapeStyle,
) -> DrawResult<DB> {
    for run in runs {
        chart.draw_series(std::iter::once(PathElement::new(run.clone(), style)))?;
    }
    Ok(())
}

/// Draws a panel's measured values (`pick` selects speedup or
/// efficiency): error bars, then markers on top.
fn draw_measured<DB: DrawingBackend>(
    chart: &mut Panel<'_, DB>,
    markers: &[Marker],
    pick: fn(&Marker) -> [f64; 3],
) -> DrawResult<DB> {
    let bars: Vec<_> = markers
        .iter()
        .map(|m| {
            let [_, low, high] = pick(m);
            (m.x, low, high, m.oversubscribed)
        })
        .collect();
    draw_error_bars(chart, &bars)?;
    let points: Vec<_> = markers
        .iter()
        .map(|m| (m.x, pick(m)[0], m.oversubscribed))
        .collect();
    draw_markers(chart, &points)
}

/// The top panel: speedups, ideal line, model curve and legend.
fn draw_speedup_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &PlotData,
    family: FontFamily<'_>,
) -> DrawResult<DB> {
    let mut chart = panel(area, &data.x, &data.y_speedup, family, &data.speedup_label)?;
    draw_runs(&mut chart, &data.ideal, IDEAL_COLOR.stroke_width(2))?;
    draw_runs(&mut chart, &data.model, MODEL_COLOR.stroke_width(3))?;
    draw_measured(&mut chart, &data.markers, |m| m.speedup)?;

    let mut entries = vec![(LegendMark::Measured, LEGEND_MEASURED)];
    if data.any_oversubscribed {
        entries.push((LegendMark::Oversubscribed, LEGEND_OVERSUBSCRIBED));
    }
    entries.push((LegendMark::Ideal, LEGEND_IDEAL));
    if let Some(label) = &data.model_label {
        entries.push((LegendMark::Model, label.as_str()));
    }
    draw_legend(&chart.plotting_area().strip_coord_spec(), &entries, family)
}

/// The bottom panel: efficiencies, the ideal at 1 and the model's efficiency.
fn draw_efficiency_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &PlotData,
    family: FontFamily<'_>,
) -> DrawResult<DB> {
    let mut chart = panel(area, &data.x, &data.y_efficiency, family, "efficiency")?;
    let ideal = vec![vec![(data.x.lo, 1.0), (data.x.hi, 1.0)]];
    draw_runs(&mut chart, &ideal, IDEAL_COLOR.stroke_width(2))?;
    draw_runs(
        &mut chart,
        &data.model_efficiency,
        MODEL_COLOR.stroke_width(3),
    )?;
    draw_measured(&mut chart, &data.markers, |m| m.efficiency)
}

/// What a legend row shows next to its text.
#[derive(Debug, Clone, Copy, PartialEq)]
enum LegendMark {
    Measured,
    Oversubscribed,
    Ideal,
    Model,
}

/// Width of `text` in pixels: measured by the backend when it can (a font
/// is registered for the style's family), else estimated from its length.
fn text_width<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    style: &TextStyle,
) -> i32 {
    match area.estimate_text_size(text, style) {
        Ok((w, _)) if w > 0 => w as i32,
        // Sans-serif glyphs average about 0.55 em; this overestimates
        // slightly, which only widens the legend box.
        _ => (0.55 * LEGEND_SIZE * text.chars().count() as f64).ceil() as i32,
    }
}

/// Draws a legend box in the top-left corner of `area` (pixel coordinates
/// of a panel's plotting area).
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(LegendMark, &str)],
    family: FontFamily<'_>,
) -> DrawResult<DB> {
    let style =
        text_style(family, LEGEND_SIZE, FontStyle::Normal).pos(Pos::new(HPos::Left, VPos::Center));
    let row = (1.5 * LEGEND_SIZE).round() as i32;
    let (sample, gap, pad) = (44, 10, 10);
    let text_w = entries
        .iter()
        .map(|(_, text)| text_width(area, text, &style))
        .max()
        .unwrap_or(0);
    let (x0, y0) = (16, 12);
    let w = pad + sample + gap + text_w + pad;
    let h = 2 * pad + row * entries.len() as i32;
    area.draw(&Rectangle::new(
        [(x0, y0), (x0 + w, y0 + h)],
        WHITE.mix(0.9).filled(),
    ))?;
    area.draw(&Rectangle::new(
        [(x0, y0), (x0 + w, y0 + h)],
        BLACK.mix(0.4),
    ))?;
    for (i, (mark, text)) in entries.iter().enumerate() {
        let cy = y0 + pad + row * i as i32 + row / 2;
        let sx = x0 + pad;
        let cx = sx + sample / 2;
        match mark {
            LegendMark::Measured => {
                let bar = MEASURED_COLOR.stroke_width(2);
                area.draw(&PathElement::new(vec![(cx, cy - 10), (cx, cy + 10)], bar))?;
                area.draw(&PathElement::new(
                    vec![(cx - CAP, cy - 10), (cx + CAP, cy - 10)],
                    bar,
                ))?;
                area.draw(&PathElement::new(
                    vec![(cx - CAP, cy + 10), (cx + CAP, cy + 10)],
                    bar,
                ))?;
                area.draw(&Circle::new((cx, cy), MARKER, MEASURED_COLOR.filled()))?;
            }
            LegendMark::Oversubscribed => {
                let r = MARKER;
                let square = vec![
                    (cx - r, cy - r),
                    (cx + r, cy - r),
                    (cx + r, cy + r),
                    (cx - r, cy + r),
                    (cx - r, cy - r),
                ];
                area.draw(&PathElement::new(
                    square,
                    OVERSUBSCRIBED_COLOR.stroke_width(2),
                ))?;
            }
            LegendMark::Ideal => {
                area.draw(&PathElement::new(
                    vec![(sx, cy), (sx + sample, cy)],
                    IDEAL_COLOR.stroke_width(2),
                ))?;
            }
            LegendMark::Model => {
                area.draw(&PathElement::new(
                    vec![(sx, cy), (sx + sample, cy)],
                    MODEL_COLOR.stroke_width(3),
                ))?;
            }
        }
        area.draw(&Text::new(
            text.to_string(),
            (sx + sample + gap, cy),
            style.clone(),
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::model::{amdahl_speedup, fit_amdahl};
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("tessera-plot-test-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn join(&self, file: &str) -> PathBuf {
            self.0.join(file)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn point(ranks: f64, speedup: f64, oversubscribed: bool) -> PlotPoint {
        PlotPoint {
            ranks,
            speedup,
            speedup_min: 0.95 * speedup,
            speedup_max: 1.04 * speedup,
            efficiency: speedup / ranks,
            oversubscribed,
        }
    }

    /// Strong scaling at f = 0.1 on 1, 2, 4 ranks and an oversubscribed 8,
    /// with the Amdahl curve sampled up to 16 ranks when `with_model`.
    fn sample_chart(with_model: bool) -> Chart {
        let f = 0.1;
        let mut points: Vec<PlotPoint> = [1.0, 2.0, 4.0]
            .iter()
            .map(|&p| point(p, amdahl_speedup(f, p), false))
            .collect();
        points.push(point(8.0, 3.1, true));
        let obs: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| !p.oversubscribed)
            .map(|p| (p.ranks, p.speedup))
            .collect();
        let model = with_model.then(|| {
            let fit = fit_amdahl(&obs).unwrap();
            Curve {
                label: format!("Amdahl fit, f = {:.3}", fit.value),
                points: (0..=64)
                    .map(|i| {
                        let p = (i as f64 / 16.0).exp2();
                        (p, amdahl_speedup(fit.value, p))
                    })
                    .collect(),
            }
        });
        Chart {
            title: "matmul, strong scaling, n = 2048 (cpu)".to_string(),
            speedup_label: "speedup".to_string(),
            points,
            model,
        }
    }

    fn svg_text(chart: &Chart, name: &str) -> String {
        let dir = TempDir::new(name);
        let path = dir.join("chart.svg");
        write_svg(chart, &path).unwrap();
        std::fs::read_to_string(&path).unwrap()
    }

    fn svg_color(c: RGBColor) -> String {
        format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
    }

    fn parse(svg: &str) -> roxmltree::Document<'_> {
        let doc = roxmltree::Document::parse(svg).expect("SVG is well-formed XML");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        doc
    }

    fn texts(doc: &roxmltree::Document<'_>) -> Vec<String> {
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| n.text().unwrap_or_default().trim().to_string())
            .collect()
    }

    /// Elements named `tag` whose attribute `attr` is the colour `color`.
    fn count(doc: &roxmltree::Document<'_>, tag: &str, attr: &str, color: RGBColor) -> usize {
        let color = svg_color(color);
        doc.descendants()
            .filter(|n| n.has_tag_name(tag) && n.attribute(attr) == Some(color.as_str()))
            .count()
    }

    /// Polylines of the data (curves, error bars, hollow markers), not of
    /// the axes (black tick marks, whose number depends on the x range).
    fn data_polylines(doc: &roxmltree::Document<'_>) -> usize {
        doc.descendants()
            .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke") != Some("#000000"))
            .count()
    }

    #[test]
    fn svg_has_legend_curves_and_markers() {
        let chart = sample_chart(true);
        let svg = svg_text(&chart, "full");
        let doc = parse(&svg);
        let texts = texts(&doc);
        let model_label = chart.model.as_ref().unwrap().label.as_str();
        assert_eq!(model_label, "Amdahl fit, f = 0.100");
        for expected in [
            LEGEND_MEASURED,
            LEGEND_OVERSUBSCRIBED,
            LEGEND_IDEAL,
            model_label,
            chart.title.as_str(),
            "ranks",
            "speedup",
            "efficiency",
        ] {
            assert!(
                texts.iter().any(|t| t == expected),
                "no text {expected:?} in {texts:?}"
            );
        }
        // Log2 axis (ranks 1..16): ticks at the powers of two.
        for tick in ["1", "2", "4", "8", "16"] {
            assert!(
                texts.iter().any(|t| t == tick),
                "no tick {tick} in {texts:?}"
            );
        }
        // Model: speedup curve, efficiency curve, legend sample.
        assert_eq!(count(&doc, "polyline", "stroke", MODEL_COLOR), 3);
        // Ideal: S = p (one run), E = 1, legend sample.
        assert_eq!(count(&doc, "polyline", "stroke", IDEAL_COLOR), 3);
        // Measured: 3 points in each panel and the legend's marker.
        assert_eq!(count(&doc, "circle", "fill", MEASURED_COLOR), 7);
        // Oversubscribed: a hollow square in each panel and in the legend,
        // and its error bars (bar and two caps per panel).
        assert_eq!(
            count(&doc, "polyline", "stroke", OVERSUBSCRIBED_COLOR),
            3 + 6
        );
        assert_eq!(count(&doc, "circle", "fill", OVERSUBSCRIBED_COLOR), 0);
        // Everything is clipped to the canvas.
        for node in doc.descendants().filter(|n| n.has_tag_name("polyline")) {
            for xy in node.attribute("points").unwrap().split_whitespace() {
                let (x, y) = xy.split_once(',').unwrap();
                let (x, y): (i32, i32) = (x.parse().unwrap(), y.parse().unwrap());
                assert!((0..=WIDTH as i32).contains(&x) && (0..=HEIGHT as i32).contains(&y));
            }
        }
    }

    #[test]
    fn svg_model_curve_adds_polylines_and_label() {
        let with = svg_text(&sample_chart(true), "with-model");
        let without = svg_text(&sample_chart(false), "without-model");
        let (with, without) = (parse(&with), parse(&without));
        assert_eq!(data_polylines(&with), data_polylines(&without) + 3);
        assert_eq!(count(&without, "polyline", "stroke", MODEL_COLOR), 0);
        assert!(!texts(&without).iter().any(|t| t.starts_with("Amdahl")));
        assert!(texts(&without).iter().any(|t| t == LEGEND_IDEAL));
    }

    #[test]
    fn svg_without_oversubscription_has_no_such_legend() {
        let mut chart = sample_chart(true);
        chart.points.retain(|p| !p.oversubscribed);
        let svg = svg_text(&chart, "no-oversub");
        let doc = parse(&svg);
        assert!(!texts(&doc).iter().any(|t| t == LEGEND_OVERSUBSCRIBED));
        assert_eq!(count(&doc, "polyline", "stroke", OVERSUBSCRIBED_COLOR), 0);
        assert_eq!(count(&doc, "circle", "fill", MEASURED_COLOR), 7);
    }

    #[test]
    fn svg_with_single_point_at_one_rank() {
        let chart = Chart {
            title: "one rank only".to_string(),
            speedup_label: "speedup".to_string(),
            points: vec![point(1.0, 1.0, false)],
            model: None,
        };
        let svg = svg_text(&chart, "single");
        let doc = parse(&svg);
        let texts = texts(&doc);
        assert!(texts.iter().any(|t| t == LEGEND_MEASURED));
        assert!(texts.iter().any(|t| t == "1"), "{texts:?}");
        assert_eq!(count(&doc, "circle", "fill", MEASURED_COLOR), 3);
        assert_eq!(count(&doc, "polyline", "stroke", IDEAL_COLOR), 3);
    }

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

    #[test]
    fn ranks_axis_log_or_linear() {
        let log = Axis::ranks(1.0, 64.0);
        assert!(log.log2);
        assert_eq!(log.ticks, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(log.lo < 0.0 && log.hi > 6.0);
        assert_eq!(log.label(5.0), "32");
        assert_eq!(log.to_value(log.to_axis(48.0)), 48.0);
        let wide = Axis::ranks(1.0, 4096.0);
        assert!(wide.ticks.len() <= 12 && wide.ticks.contains(&12.0));
        let linear = Axis::ranks(1.0, 3.0);
        assert!(!linear.log2);
        assert_eq!(linear.ticks, vec![1.0, 2.0, 3.0]);
        assert!(!Axis::ranks(2.0, 7.9).log2);
        assert!(Axis::ranks(2.0, 8.0).log2);
        let single = Axis::ranks(1.0, 1.0);
        assert!(!single.log2 && single.lo < 1.0 && single.hi > 1.0);
        assert_eq!(single.ticks, vec![1.0]);
    }

    #[test]
    fn speedup_axis_log_only_with_log_ranks_and_wide_range() {
        assert!(Axis::speedup(0.9, 60.0, true).log2);
        assert!(!Axis::speedup(0.9, 60.0, false).log2);
        assert!(!Axis::speedup(0.9, 3.0, true).log2);
        assert!(!Axis::speedup(-1.0, 60.0, true).log2);
        let linear = Axis::speedup(0.9, 3.0, true);
        assert_eq!((linear.lo, linear.hi), (0.0, 3.3000000000000003));
        assert_eq!(Axis::from_zero(0.5).hi, 1.1);
        // Strong scaling that saturates early keeps a linear axis from 0.
        let mut chart = sample_chart(false);
        chart.points.truncate(2);
        chart.points.push(point(16.0, 2.2, false));
        let data = PlotData::new(&chart).unwrap();
        assert!(data.x.log2 && !data.y_speedup.log2);
        // Weak scaling over 1..64: both axes logarithmic, the ideal straight.
        let weak = Chart {
            title: "weak".to_string(),
            speedup_label: "scaled speedup".to_string(),
            points: [1.0, 4.0, 16.0, 64.0]
                .iter()
                .map(|&p| point(p, 0.9 * p, false))
                .collect(),
            model: None,
        };
        let data = PlotData::new(&weak).unwrap();
        assert!(data.x.log2 && data.y_speedup.log2);
        assert_eq!(data.ideal.len(), 1);
        for &(u, v) in &data.ideal[0] {
            assert!((u - v).abs() < 1e-9, "ideal S = p is the diagonal");
        }
    }

    #[test]
    fn number_formatting() {
        assert_eq!(format_number(1.0), "1");
        assert_eq!(format_number(1024.0), "1024");
        assert_eq!(format_number(0.5), "0.5");
        assert_eq!(format_number(2.25), "2.25");
        assert_eq!(format_number(3.0000000001), "3");
        assert_eq!(format_number(0.30000000000000004), "0.3");
    }

    #[test]
    fn polylines_are_clipped_into_runs() {
        let tent = [(0.0, 0.0), (2.0, 2.0), (4.0, 0.0)];
        let runs = clip_polyline(&tent, (0.0, 4.0), (0.0, 1.0));
        assert_eq!(
            runs,
            vec![vec![(0.0, 0.0), (1.0, 1.0)], vec![(3.0, 1.0), (4.0, 0.0)]]
        );
        let inside = clip_polyline(&tent, (-1.0, 5.0), (-1.0, 3.0));
        assert_eq!(inside, vec![tent.to_vec()]);
        assert!(clip_polyline(&tent, (5.0, 6.0), (0.0, 1.0)).is_empty());
        assert!(clip_polyline(&tent[..1], (0.0, 4.0), (0.0, 1.0)).is_empty());
    }

    #[test]
    fn png_written_when_a_font_is_found() {
        let candidates = font_candidates(std::env::var_os(FONT_ENV));
        let have_font = candidates
            .iter()
            .any(|p| std::fs::read(p).is_ok_and(|b| looks_like_font(&b)));
        let dir = TempDir::new("png");
        let path = dir.join("chart.png");
        let written = write_png(&sample_chart(true), &path).unwrap();
        assert_eq!(written, have_font);
        if written {
            println!("a font was found: checking the PNG");
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
            assert_eq!(&bytes[12..16], b"IHDR");
            let width = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
            let height = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
            assert_eq!((width, height), (WIDTH, HEIGHT));
            assert!(bytes.len() > 10_000, "suspiciously small PNG");
        } else {
            println!("no font on this machine: checking that no PNG was written");
            assert!(!path.exists());
        }
    }

    #[test]
    fn png_without_font_writes_nothing() {
        let dir = TempDir::new("png-no-font");
        let junk = dir.join("junk.ttf");
        std::fs::write(&junk, b"not a font at all").unwrap();
        let corrupt = dir.join("corrupt.ttf");
        std::fs::write(&corrupt, b"true\0\0\0\0\0\0\0\0").unwrap();
        let fonts = [dir.join("missing.ttf"), junk, corrupt, dir.0.clone()];
        let path = dir.join("chart.png");
        assert_eq!(
            write_png_with_fonts(&sample_chart(true), &path, &fonts),
            Ok(false)
        );
        assert!(!path.exists());
    }

    #[test]
    fn png_font_candidates() {
        let defaults: Vec<PathBuf> = FONT_PATHS.iter().map(PathBuf::from).collect();
        assert_eq!(font_candidates(None), defaults);
        assert_eq!(font_candidates(Some(OsString::new())), defaults);
        let with_env = font_candidates(Some(OsString::from("/nonexistent/Font.ttf")));
        assert_eq!(with_env[0], PathBuf::from("/nonexistent/Font.ttf"));
        assert_eq!(&with_env[1..], &defaults[..]);
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
