//! What the chart's tests share: a temporary directory, sample charts and
//! the SVG's texts.

use std::path::PathBuf;

use super::super::model::{amdahl_speedup, fit_amdahl};
use super::{Chart, Curve, PlotPoint, write_svg};

pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("tessera-plot-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(super) fn join(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn point(ranks: f64, speedup: f64, oversubscribed: bool) -> PlotPoint {
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
pub(super) fn sample_chart(with_model: bool) -> Chart {
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

pub(super) fn svg_text(chart: &Chart, name: &str) -> String {
    let dir = TempDir::new(name);
    let path = dir.join("chart.svg");
    write_svg(chart, &path).unwrap();
    std::fs::read_to_string(&path).unwrap()
}

pub(super) fn parse(svg: &str) -> roxmltree::Document<'_> {
    let doc = roxmltree::Document::parse(svg).expect("SVG is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc
}

pub(super) fn texts(doc: &roxmltree::Document<'_>) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or_default().trim().to_string())
        .collect()
}
