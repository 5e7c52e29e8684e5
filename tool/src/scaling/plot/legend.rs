//! The legend: a band of its own between the title and the panels, so it
//! never covers a measured point or a line.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::draw::{
    CAP, DrawResult, IDEAL_COLOR, MARKER, MEASURED_COLOR, MODEL_COLOR, OVERSUBSCRIBED_COLOR,
    text_style,
};

/// Text size of the legend, in pixels.
const LEGEND_SIZE: f64 = 18.0;

// The legend's texts (the model's label comes with the chart).
pub(super) const LEGEND_MEASURED: &str = "measured (median, min-max)";
pub(super) const LEGEND_OVERSUBSCRIBED: &str = "oversubscribed (not fitted)";
pub(super) const LEGEND_IDEAL: &str = "ideal (S = p)";

/// What a legend row shows next to its text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum LegendMark {
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

/// Left edge of the legend's first entry: that of the panels' plotting
/// areas (their y label area is 90 pixels, after a margin of 15).
const LEGEND_LEFT: i32 = 105;

/// Height of one legend row, in pixels.
pub(super) const LEGEND_ROW: i32 = (1.5 * LEGEND_SIZE) as i32;

/// Draws the legend across `area` (the band above the panels, in pixel
/// coordinates): entries left to right, wrapping onto a second row (and
/// more) when the band's width is used up.
pub(super) fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(LegendMark, &str)],
    family: FontFamily<'_>,
) -> DrawResult<DB> {
    let style =
        text_style(family, LEGEND_SIZE, FontStyle::Normal).pos(Pos::new(HPos::Left, VPos::Center));
    let row = LEGEND_ROW;
    let (sample, gap, spacing) = (44, 10, 36);
    let right = area.dim_in_pixel().0 as i32 - 30;
    // Each entry's left edge and row.
    let mut places = Vec::with_capacity(entries.len());
    let (mut x, mut line) = (LEGEND_LEFT, 0);
    for (_, text) in entries {
        let width = sample + gap + text_width(area, text, &style);
        if x > LEGEND_LEFT && x + width > right {
            (x, line) = (LEGEND_LEFT, line + 1);
        }
        places.push((x, line));
        x += width + spacing;
    }
    for ((mark, text), &(sx, line)) in entries.iter().zip(&places) {
        let cy = 6 + row * line + row / 2;
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
