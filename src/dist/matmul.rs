//! Distributed matrix multiply by SUMMA (van de Geijn and Watts, "SUMMA:
//! scalable universal matrix multiplication algorithm", 1997).
//!
//! For `C = A * B` on an `R x C` grid, the inner dimension k is cut into
//! panels that never straddle a block boundary of A's columns or of B's rows.
//! For each panel, the grid column that holds it in A broadcasts it along the
//! grid rows, the grid row that holds it in B broadcasts it along the grid
//! columns, and every rank adds the product of the two panels to its block of
//! C. The next panel's broadcasts are posted (non-blocking) before the
//! current panel is multiplied, so communication overlaps computation.

use std::time::Instant;

use ndarray::{Array2, ArrayView2, s};
use serde::Serialize;

use super::matrix::{DistMatrix, block_owner, block_range, same_everywhere, uniform};
use crate::comm::{ReduceOp, Request};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::ops::{Float, gemm};

/// Default panel width, measured: see BENCHMARKS.md.
pub const DEFAULT_PANEL: usize = 512;

/// Where the time of a [`matmul`] went, on this rank.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct MatmulStats {
    /// Seconds in local GEMMs.
    pub compute_seconds: f64,
    /// Seconds posting and waiting for panel broadcasts (communication not
    /// hidden behind computation).
    pub comm_seconds: f64,
    /// Panels (SUMMA steps).
    pub panels: usize,
    /// The panel width asked for.
    pub panel_width: usize,
}

/// Options of [`matmul_with`].
#[derive(Debug, Clone, Copy)]
pub struct MatmulOptions {
    /// Where the local products run.
    pub device: Device,
    /// The widest panel (columns of A, rows of B) per step.
    pub panel: usize,
}

impl Default for MatmulOptions {
    fn default() -> Self {
        MatmulOptions {
            device: Device::Cpu,
            panel: DEFAULT_PANEL,
        }
    }
}

/// `C = A * B` for A (m x k) and B (k x n) on the same grid, by SUMMA on the
/// CPU with the default panel width (collective).
pub fn matmul<T: Float>(a: &DistMatrix<T>, b: &DistMatrix<T>) -> Result<DistMatrix<T>> {
    matmul_with(a, b, MatmulOptions::default()).map(|(c, _)| c)
}

/// The panels of `0..k`: cut at every block boundary of `k` over `grid_cols`
/// (A's columns) and over `grid_rows` (B's rows), then into pieces of at most
/// `width`.
pub fn panels(k: usize, grid_rows: usize, grid_cols: usize, width: usize) -> Vec<(usize, usize)> {
    let mut cuts: Vec<usize> = (0..grid_cols)
        .map(|c| block_range(k, grid_cols, c).start)
        .chain((0..grid_rows).map(|r| block_range(k, grid_rows, r).start))
        .chain([k])
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    for w in cuts.windows(2) {
        let mut start = w[0];
        while start < w[1] {
            let end = (start + width.max(1)).min(w[1]);
            out.push((start, end));
            start = end;
        }
    }
    out
}

/// A step's two panels in flight: `None` where the panel needs no
/// broadcast (a grid of one column holds all of A's columns on every rank,
/// one of one row all of B's rows), and the local block is used in place.
type Panels<T> = (Option<Request<Vec<T>>>, Option<Request<Vec<T>>>);

/// [`matmul`] with a device and panel width; also returns where this rank's
/// time went.
pub fn matmul_with<T: Float>(
    a: &DistMatrix<T>,
    b: &DistMatrix<T>,
    options: MatmulOptions,
) -> Result<(DistMatrix<T>, MatmulStats)> {
    let grid = a.grid();
    let (rows, cols) = (grid.rows(), grid.cols());
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    // Every rank must see the same shapes and grids, or the panels would not
    // match: one check up front, then the steps run unchecked.
    same_everywhere(
        grid.comm(),
        "the matrix shapes and grids",
        &[
            m as u64,
            k as u64,
            b.nrows() as u64,
            n as u64,
            rows as u64,
            cols as u64,
            b.grid().rows() as u64,
            b.grid().cols() as u64,
        ],
    )?;
    if b.nrows() != k {
        return Err(Error::ShapeMismatch {
            op: "matmul",
            expected: "A: m x k and B: k x n".into(),
            got: format!("A: {m} x {k}, B: {} x {n}", b.nrows()),
        });
    }
    if (b.grid().rows(), b.grid().cols()) != (rows, cols) {
        return Err(Error::ShapeMismatch {
            op: "matmul",
            expected: "A and B on the same process grid".into(),
            got: format!(
                "A on {rows} x {cols}, B on {} x {}",
                b.grid().rows(),
                b.grid().cols()
            ),
        });
    }
    if options.panel == 0 {
        return Err(Error::invalid(
            "matmul",
            "the panel width must be at least 1",
        ));
    }
    let row_comm = grid.row_comm().unchecked();
    let col_comm = grid.col_comm().unchecked();
    let (m_local, n_local) = (a.local().nrows(), b.local().ncols());
    let mut c_local = Array2::<T>::zeros((m_local, n_local));
    let steps = panels(k, rows, cols, options.panel);
    let mut stats = MatmulStats {
        panel_width: options.panel,
        panels: steps.len(),
        ..Default::default()
    };

    // Panel buffers come back from each step's broadcasts and are reused
    // for the next, so the loop allocates (and the MPI library's memory
    // hooks see) only the first two pairs.
    let mut spare: Vec<(Vec<T>, Vec<T>)> = Vec::new();
    let post = |(k0, k1): (usize, usize), spare: &mut Vec<(Vec<T>, Vec<T>)>| -> Result<Panels<T>> {
        let w = k1 - k0;
        let (mut a_panel, mut b_panel) = spare.pop().unwrap_or_default();
        let a_req = if cols == 1 {
            None
        } else {
            let a_owner = block_owner(k, cols, k0);
            a_panel.clear();
            if grid.col() == a_owner {
                let c0 = k0 - a.col_range().start;
                for row in a.local().slice(s![.., c0..c0 + w]).rows() {
                    a_panel.extend(row.iter().copied());
                }
            } else {
                a_panel.resize(m_local * w, T::zero());
            }
            Some(row_comm.ibroadcast(a_panel, a_owner)?)
        };
        let b_req = if rows == 1 {
            None
        } else {
            let b_owner = block_owner(k, rows, k0);
            b_panel.clear();
            if grid.row() == b_owner {
                let r0 = k0 - b.row_range().start;
                for row in b.local().slice(s![r0..r0 + w, ..]).rows() {
                    b_panel.extend(row.iter().copied());
                }
            } else {
                b_panel.resize(w * n_local, T::zero());
            }
            Some(col_comm.ibroadcast(b_panel, b_owner)?)
        };
        Ok((a_req, b_req))
    };

    let t = Instant::now();
    let mut next = steps.first().map(|&p| post(p, &mut spare)).transpose()?;
    stats.comm_seconds += t.elapsed().as_secs_f64();
    for (step, &(k0, k1)) in steps.iter().enumerate() {
        let t = Instant::now();
        let (a_req, b_req) = next.take().expect("posted before its step");
        if let Some(&following) = steps.get(step + 1) {
            next = Some(post(following, &mut spare)?);
        }
        let a_panel = a_req.map(Request::wait).transpose()?;
        let b_panel = b_req.map(Request::wait).transpose()?;
        stats.comm_seconds += t.elapsed().as_secs_f64();

        let t = Instant::now();
        let w = k1 - k0;
        let a_view = match &a_panel {
            Some(p) => ArrayView2::from_shape((m_local, w), p).expect("panel sized above"),
            None => a
                .local()
                .slice_move(s![.., k0 - a.col_range().start..k1 - a.col_range().start]),
        };
        let b_view = match &b_panel {
            Some(p) => ArrayView2::from_shape((w, n_local), p).expect("panel sized above"),
            None => b
                .local()
                .slice_move(s![k0 - b.row_range().start..k1 - b.row_range().start, ..]),
        };
        gemm(
            options.device,
            T::one(),
            a_view,
            b_view,
            T::one(),
            c_local.view_mut(),
        )?;
        stats.compute_seconds += t.elapsed().as_secs_f64();
        spare.push((a_panel.unwrap_or_default(), b_panel.unwrap_or_default()));
    }
    Ok((DistMatrix::from_parts(grid, m, n, c_local), stats))
}

/// The outcome of [`verify_product`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Verification {
    /// `||C r - A (B r)||_inf / (||A||_inf ||B||_inf ||r||_inf k eps)`: an
    /// estimate (from below) of `||C - AB|| / (||A|| ||B|| k eps)`.
    pub residual: f64,
    /// The largest residual a correct product can have (derived from the
    /// rounding-error bounds; see [`verify_product`]).
    pub threshold: f64,
    /// `residual <= threshold`.
    pub passed: bool,
}

/// Checks `C = A * B` without gathering anything (Freivalds' check, with
/// a random real vector `r`): compares `C r` with `A (B r)`, computed in f64
/// (collective).
///
/// Threshold: a product computed in T by any summation order satisfies
/// `|C - AB| <= gamma_{k+1} |A||B|` (Higham, Accuracy and Stability of
/// Numerical Algorithms, 2nd ed., §3.5), so
/// `||(C - AB) r|| <= (k + 1) u_T ||A|| ||B|| ||r||` with `u_T = eps_T / 2`;
/// the two f64 matrix-vector products used for checking add at most
/// `(2n + k) u_64 ||A|| ||B|| ||r||`. Divided by `k eps_T ||A|| ||B|| ||r||`,
/// a correct product stays below `(k + 1) / 2k + (2n + k) eps_64 / (2k eps_T)`,
/// taken with 1% to spare.
pub fn verify_product<T: Float>(
    a: &DistMatrix<T>,
    b: &DistMatrix<T>,
    c: &DistMatrix<T>,
    seed: u64,
) -> Result<Verification> {
    let (k, n) = (a.ncols(), c.ncols());
    let grid = c.grid();
    let r: Vec<f64> = (0..n)
        .map(|j| uniform(seed ^ 0x5eed, j as u64, 0))
        .collect();
    let y = c.matvec_rows(&r, |x| x)?;
    let z_part = b.matvec_rows(&r, |x| x)?;
    let z = DistMatrix::<T>::assemble_by_grid_rows(b.grid(), k, &z_part)?;
    let w = a.matvec_rows(&z, |x| x)?;
    let diff = y
        .iter()
        .zip(&w)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max);
    let diff = grid.comm().all_reduce(&[diff], ReduceOp::Max)?[0];
    let scale = a.norm_inf()?
        * b.norm_inf()?
        * r.iter().fold(0.0f64, |m, x| m.max(x.abs()))
        * k as f64
        * T::EPS;
    let residual = if diff == 0.0 {
        0.0
    } else if scale > 0.0 {
        diff / scale
    } else {
        f64::INFINITY
    };
    let threshold = if k == 0 {
        0.0
    } else {
        let k = k as f64;
        1.01 * ((k + 1.0) / (2.0 * k) + (2.0 * n as f64 + k) * f64::EPSILON / (2.0 * k * T::EPS))
    };
    Ok(Verification {
        residual,
        threshold,
        passed: residual <= threshold,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_cover_k_and_respect_both_block_boundaries() {
        for k in [0usize, 1, 2, 7, 100, 257] {
            for (r, c) in [(1, 1), (2, 3), (3, 2), (4, 4), (1, 7)] {
                for width in [1, 3, 64, 1000] {
                    let p = panels(k, r, c, width);
                    let mut next = 0;
                    for &(s, e) in &p {
                        assert_eq!(s, next);
                        assert!(e > s && e - s <= width);
                        // Within one block of each distribution.
                        assert_eq!(block_owner(k, c, s), block_owner(k, c, e - 1));
                        assert_eq!(block_owner(k, r, s), block_owner(k, r, e - 1));
                        next = e;
                    }
                    assert_eq!(next, k);
                }
            }
        }
    }
}
