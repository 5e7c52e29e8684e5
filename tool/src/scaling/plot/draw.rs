//! Drawing the chart on a plotters backend: the title, the two panels
//! (speedup above, efficiency below), their markers, error bars and lines.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::WIDTH;
use super::axes::Axis;
use super::data::{Marker, PlotData};
use super::legend::{
    LEGEND_IDEAL, LEGEND_MEASURED, LEGEND_OVERSUBSCRIBED, LEGEND_ROW, LegendMark, draw_legend,
};

/// Height of the title band.
pub(super) const TITLE_BAND: i32 = 56;
/// Height of the legend band below it: two rows of entries.
pub(super) const LEGEND_BAND: i32 = 2 * LEGEND_ROW + 12;
/// Height of the speedup panel; the efficiency panel takes the rest.
const TOP_PANEL: i32 = 460;

// Text sizes, in pixels: the title, the axis descriptions, the tick labels.
const TITLE_SIZE: f64 = 30.0;
const AXIS_DESC_SIZE: f64 = 22.0;
const TICK_LABEL_SIZE: f64 = 18.0;

// Colours: measured points, oversubscribed points, the model, the ideal.
pub(super) const MEASURED_COLOR: RGBColor = RGBColor(31, 119, 180);
pub(super) const OVERSUBSCRIBED_COLOR: RGBColor = RGBColor(255, 127, 14);
pub(super) const MODEL_COLOR: RGBColor = RGBColor(214, 39, 40);
pub(super) const IDEAL_COLOR: RGBColor = RGBColor(110, 110, 110);

/// Marker radius (circle) and half side (square), in pixels.
pub(super) const MARKER: i32 = 6;
/// Half width of an error bar's caps, in pixels.
pub(super) const CAP: i32 = 5;

/// Result of drawing on backend `DB`.
pub(super) type DrawResult<DB> =
    Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A text style of the given family, size and weight, in black.
pub(super) fn text_style(family: FontFamily<'_>, size: f64, style: FontStyle) -> TextStyle<'_> {
    TextStyle::from(FontDesc::new(family, size, style)).color(&BLACK)
}

/// Draws the whole chart on `root`.
pub(super) fn draw_chart<DB: DrawingBackend>(
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
    let (_, below_title) = root.split_vertically(TITLE_BAND);
    let (legend, body) = below_title.split_vertically(LEGEND_BAND);
    draw_legend(&legend, &legend_entries(data), family)?;
    let (top, bottom) = body.split_vertically(TOP_PANEL);
    draw_speedup_panel(&top, data, family)?;
    draw_efficiency_panel(&bottom, data, family)
}

/// The legend's entries: measured points, oversubscribed ones where there
/// are any, the ideal line and the model.
fn legend_entries(data: &PlotData) -> Vec<(LegendMark, &str)> {
    let mut entries = vec![(LegendMark::Measured, LEGEND_MEASURED)];
    if data.any_oversubscribed {
        entries.push((LegendMark::Oversubscribed, LEGEND_OVERSUBSCRIBED));
    }
    entries.push((LegendMark::Ideal, LEGEND_IDEAL));
    if let Some(label) = &data.model_label {
        entries.push((LegendMark::Model, label.as_str()));
    }
    entries
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

/// The top panel: speedups, ideal line and model curve.
fn draw_speedup_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &PlotData,
    family: FontFamily<'_>,
) -> DrawResult<DB> {
    let mut chart = panel(area, &data.x, &data.y_speedup, family, &data.speedup_label)?;
    draw_runs(&mut chart, &data.ideal, IDEAL_COLOR.stroke_width(2))?;
    draw_runs(&mut chart, &data.model, MODEL_COLOR.stroke_width(3))?;
    draw_measured(&mut chart, &data.markers, |m| m.speedup)
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

#[cfg(test)]
mod tests {
    use super::super::testing::{parse, point, sample_chart, svg_text, texts};
    use super::super::{Chart, HEIGHT, WIDTH};
    use super::*;

    fn svg_color(c: RGBColor) -> String {
        format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
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
    fn the_legend_sits_above_the_panels_clear_of_the_data() {
        let chart = sample_chart(true);
        let svg = svg_text(&chart, "legend-place");
        let doc = parse(&svg);
        let legend: Vec<f64> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter(|n| {
                n.text().map(str::trim).is_some_and(|t| {
                    [LEGEND_MEASURED, LEGEND_IDEAL, LEGEND_OVERSUBSCRIBED].contains(&t)
                        || t.starts_with("Amdahl fit")
                })
            })
            .map(|n| n.attribute("y").unwrap().parse().unwrap())
            .collect();
        assert_eq!(legend.len(), 4, "{svg}");
        let band = (TITLE_BAND + LEGEND_BAND) as f64;
        assert!(
            legend.iter().all(|&y| y > TITLE_BAND as f64 && y < band),
            "{legend:?}"
        );
        // Every data marker lies below the band, in the panels.
        let circles: Vec<f64> = doc
            .descendants()
            .filter(|n| n.has_tag_name("circle"))
            .map(|n| n.attribute("cy").unwrap().parse().unwrap())
            .collect();
        assert!(!circles.is_empty());
        let in_legend = circles.iter().filter(|&&y| y < band).count();
        // One circle is the legend's own sample marker.
        assert_eq!(in_legend, 1, "{circles:?}");
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
}
