//! The chart's axes: linear or base-2 logarithmic, their ticks and tick
//! labels; an axis is also the plotters coordinate of its panel.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;

/// A chart axis, linear or base-2 logarithmic. Values are drawn in axis
/// units: the value itself, or its log2. It is also the plotters coordinate
/// of the axis: linear in axis units, with ticks (bold key points) exactly
/// at `ticks` and no light grid points.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Axis {
    /// Whether axis units are log2 of the value.
    pub(super) log2: bool,
    /// Lower end of the visible range, in axis units.
    pub(super) lo: f64,
    /// Upper end of the visible range, in axis units.
    pub(super) hi: f64,
    /// Tick positions, in axis units.
    pub(super) ticks: Vec<f64>,
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
    pub(super) fn ranks(min: f64, max: f64) -> Self {
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
    pub(super) fn speedup(min: f64, max: f64, log_allowed: bool) -> Self {
        if log_allowed && min > 0.0 && max / min >= 4.0 {
            Axis::log2(min, max)
        } else {
            Axis::from_zero(max)
        }
    }

    /// Linear axis from 0 to `max(1.1 max, 1.1)`.
    pub(super) fn from_zero(max: f64) -> Self {
        Axis::linear(0.0, (1.1 * max).max(1.1), 0.0)
    }

    /// Axis units of a value.
    pub(super) fn to_axis(&self, value: f64) -> f64 {
        if self.log2 { value.log2() } else { value }
    }

    /// Axis units of a value, moved onto the nearest end of the visible
    /// range when outside it.
    pub(super) fn to_axis_within(&self, value: f64) -> f64 {
        self.to_axis(value).max(self.lo).min(self.hi)
    }

    /// Value at an axis position.
    pub(super) fn to_value(&self, u: f64) -> f64 {
        if self.log2 { u.exp2() } else { u }
    }

    /// Tick label: the value.
    pub(super) fn label(&self, u: f64) -> String {
        format_number(self.to_value(u))
    }

    /// The visible range, in axis units.
    pub(super) fn bounds(&self) -> (f64, f64) {
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

#[cfg(test)]
mod tests {
    use super::super::Chart;
    use super::super::data::PlotData;
    use super::super::testing::{point, sample_chart};
    use super::*;

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
}
