//! Clipping of lines to a panel (Liang-Barsky).

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
pub(super) fn clip_polyline(
    points: &[(f64, f64)],
    x: (f64, f64),
    y: (f64, f64),
) -> Vec<Vec<(f64, f64)>> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
