//! The chart reduced to what is drawn: the axes, the finite values in axis
//! units, and the lines clipped to the panels.

use super::Chart;
use super::axes::Axis;
use super::clip::clip_polyline;

/// Samples of the ideal line across the x range when it is curved (one
/// axis logarithmic, the other linear).
const IDEAL_SAMPLES: usize = 200;

/// One point in axis units, ready to draw.
#[derive(Debug, Clone, Copy)]
pub(super) struct Marker {
    /// Ranks.
    pub(super) x: f64,
    /// Median, min and max speedup.
    pub(super) speedup: [f64; 3],
    /// Median, min and max efficiency.
    pub(super) efficiency: [f64; 3],
    pub(super) oversubscribed: bool,
}

/// The chart reduced to what is drawn: axes, finite values in axis units,
/// and polylines already clipped to the panels.
#[derive(Debug, Clone)]
pub(super) struct PlotData {
    pub(super) title: String,
    pub(super) speedup_label: String,
    /// Ranks axis, shared by both panels.
    pub(super) x: Axis,
    /// Speedup axis of the top panel.
    pub(super) y_speedup: Axis,
    /// Efficiency axis of the bottom panel.
    pub(super) y_efficiency: Axis,
    pub(super) markers: Vec<Marker>,
    pub(super) any_oversubscribed: bool,
    pub(super) model_label: Option<String>,
    /// Ideal `S = p` runs, clipped to the top panel.
    pub(super) ideal: Vec<Vec<(f64, f64)>>,
    /// Model speedup runs, clipped to the top panel.
    pub(super) model: Vec<Vec<(f64, f64)>>,
    /// Model efficiency runs, clipped to the bottom panel.
    pub(super) model_efficiency: Vec<Vec<(f64, f64)>>,
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
    pub(super) fn new(chart: &Chart) -> Result<Self, String> {
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
