//! The legend box in the top-left corner of the speedup panel.

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

/// Draws a legend box in the top-left corner of `area` (pixel coordinates
/// of a panel's plotting area).
pub(super) fn draw_legend<DB: DrawingBackend>(
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
