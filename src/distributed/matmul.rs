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

use super::matrix::DistMatrix;
use crate::comm::{Agreed, ProcessGrid, ReduceOp, Request};
use crate::comm::{block_owner, block_range};
use crate::device::{Device, DeviceBuffer};
use crate::error::{Error, Result};
use crate::ops::gemm::{DeviceMatrix, GemmBackend, gemm_device, pack_device, upload_matrix};
use crate::ops::{Float, gemm};
use crate::rng::uniform;

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
    /// Seconds copying between host and device (GPU-like devices only:
    /// the operands up, the product down, panels when MPI needs them on the
    /// host).
    pub copy_seconds: f64,
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
    /// The GEMM used on a GPU.
    pub gemm_backend: GemmBackend,
    /// Pieces (column blocks of C) each step's local GEMM on the CPU is cut
    /// into, with a test of the next step's panel broadcasts between
    /// pieces: Open MPI moves a non-blocking broadcast along only inside
    /// MPI calls, so without them the next panels travel only once the
    /// GEMM is done. 1 = one GEMM per step and no tests.
    pub progress_slices: usize,
}

/// Default [`MatmulOptions::progress_slices`], measured: see BENCHMARKS.md.
pub const DEFAULT_PROGRESS_SLICES: usize = 4;

impl Default for MatmulOptions {
    fn default() -> Self {
        MatmulOptions {
            device: Device::Cpu,
            panel: DEFAULT_PANEL,
            gemm_backend: GemmBackend::Tessera,
            progress_slices: DEFAULT_PROGRESS_SLICES,
        }
    }
}

/// `C = A * B` for A (m x k) and B (k x n) on the same grid, by SUMMA on the
/// CPU with the default panel width (collective). [`matmul_with`] takes a
/// device and a panel width.
///
/// ```
/// use tessera::comm::ProcessGrid;
/// use tessera::distributed::{DistMatrix, matmul};
///
/// tessera::spmd(|world| {
///     let grid = ProcessGrid::square_ish(world)?;
///     let a = DistMatrix::<f64>::from_fn(&grid, 3, 2, |i, j| (i + j) as f64);
///     let b = DistMatrix::<f64>::from_fn(&grid, 2, 3, |i, j| if i == j { 1.0 } else { 0.0 });
///     let c = matmul(&a, &b)?;
///     // B is [I | 0], so C is A with a zero column: gather it to check.
///     if let Some(c) = c.gather_to_root(0)? {
///         assert_eq!(c.row(2).to_vec(), vec![2.0, 3.0, 0.0]);
///     }
///     Ok(())
/// });
/// ```
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
            let end = start + (w[1] - start).min(width.max(1));
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

/// Checks, the same way on every rank, that A (m x k), B (k x n) and, if
/// given, C (m x n) have conforming shapes on the same grid of the same ranks.
fn check_operands<T: Float>(
    a: &DistMatrix<T>,
    b: &DistMatrix<T>,
    c: Option<&DistMatrix<T>>,
) -> Result<()> {
    let grid = a.grid();
    let same_grid = |x: &DistMatrix<T>| {
        (x.grid().rows(), x.grid().cols()) == (grid.rows(), grid.cols())
            && x.grid().comm().same_ranks_as(grid.comm())
    };
    let grids_agree = same_grid(b) && c.is_none_or(same_grid);
    let c_shape = c.map_or([0, 0], |c| [c.nrows() as u64, c.ncols() as u64]);
    grid.comm().same_everywhere(
        "matmul",
        &[
            Agreed::number("the rows of A", a.nrows() as u64),
            Agreed::number("the columns of A", a.ncols() as u64),
            Agreed::number("the rows of B", b.nrows() as u64),
            Agreed::number("the columns of B", b.ncols() as u64),
            Agreed::number("the rows of C", c_shape[0]),
            Agreed::number("the columns of C", c_shape[1]),
            Agreed::number("the grid rows", grid.rows() as u64),
            Agreed::number("the grid columns", grid.cols() as u64),
            Agreed::named(
                "whether A, B and C share one grid",
                grids_agree as u64,
                |v| if v == 1 { "yes" } else { "no" }.to_string(),
            ),
        ],
    )?;
    if !grids_agree {
        return Err(Error::ShapeMismatch {
            op: "matmul",
            expected:
                "A, B and C on the same process grid (same shape, same ranks in the same order)"
                    .into(),
            got: format!(
                "A on {} x {}, B on {} x {}",
                grid.rows(),
                grid.cols(),
                b.grid().rows(),
                b.grid().cols()
            ),
        });
    }
    let c_ok = c.is_none_or(|c| (c.nrows(), c.ncols()) == (a.nrows(), b.ncols()));
    if b.nrows() != a.ncols() || !c_ok {
        return Err(Error::ShapeMismatch {
            op: "matmul",
            expected: "A: m x k, B: k x n (and C: m x n)".into(),
            got: format!(
                "A: {} x {}, B: {} x {}{}",
                a.nrows(),
                a.ncols(),
                b.nrows(),
                b.ncols(),
                c.map_or(String::new(), |c| format!(
                    ", C: {} x {}",
                    c.nrows(),
                    c.ncols()
                ))
            ),
        });
    }
    Ok(())
}

/// Checks that every rank of the grid agrees on `fields` and on the panel
/// width and device kind of `options` (the SUMMA steps run unchecked, so
/// every rank must cut the same panels and reach the same steps), and that
/// the panel width is at least 1.
fn agree_on_options(
    grid: &ProcessGrid,
    op: &'static str,
    options: MatmulOptions,
    mut fields: Vec<Agreed>,
) -> Result<()> {
    fields.push(Agreed::number("the panel width", options.panel as u64));
    fields.push(Agreed::named(
        "the device kind",
        options.device.kind_code(),
        |v| Device::kind_name(v).to_string(),
    ));
    grid.comm().same_everywhere(op, &fields)?;
    if options.panel == 0 {
        return Err(Error::invalid(op, "the panel width must be at least 1"));
    }
    Ok(())
}

/// [`matmul`] with a device and panel width; also returns where this rank's
/// time went.
pub fn matmul_with<T: Float>(
    a: &DistMatrix<T>,
    b: &DistMatrix<T>,
    options: MatmulOptions,
) -> Result<(DistMatrix<T>, MatmulStats)> {
    let _span = crate::trace::region("summa");
    let grid = a.grid();
    let (rows, cols) = (grid.rows(), grid.cols());
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    check_operands(a, b, None)?;
    // The steps below run unchecked: every rank must cut the same panels
    // and reach the same steps.
    agree_on_options(grid, "matmul", options, Vec::new())?;
    if options.device.is_gpu_like() {
        return matmul_device(a, b, options);
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
        // Column blocks of C, testing the next step's broadcasts between
        // them so that they progress while this step computes.
        let slices = options.progress_slices.clamp(1, n_local.max(1));
        let mut testing = 0.0;
        for piece in 0..slices {
            let cols = block_range(n_local, slices, piece);
            gemm(
                options.device,
                T::one(),
                a_view.view(),
                b_view.slice(s![.., cols.clone()]),
                T::one(),
                c_local.slice_mut(s![.., cols]),
            )?;
            if piece + 1 < slices
                && let Some((a_next, b_next)) = next.as_mut()
            {
                let t = Instant::now();
                if let Some(r) = a_next.as_mut() {
                    r.test()?;
                }
                if let Some(r) = b_next.as_mut() {
                    r.test()?;
                }
                testing += t.elapsed().as_secs_f64();
            }
        }
        stats.comm_seconds += testing;
        stats.compute_seconds += t.elapsed().as_secs_f64() - testing;
        spare.push((a_panel.unwrap_or_default(), b_panel.unwrap_or_default()));
    }
    Ok((DistMatrix::from_parts(grid, m, n, c_local), stats))
}

/// SUMMA with the blocks in device memory: A and B go up once, C comes
/// down once ([`matmul_device_blocks`] between).
fn matmul_device<T: Float>(
    a: &DistMatrix<T>,
    b: &DistMatrix<T>,
    options: MatmulOptions,
) -> Result<(DistMatrix<T>, MatmulStats)> {
    let device = options.device;
    let grid = a.grid();
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    let (m_local, n_local) = (a.local().nrows(), b.local().ncols());
    let t = Instant::now();
    let a_dev = upload_matrix(device, a.local())?;
    let b_dev = upload_matrix(device, b.local())?;
    a_dev.synchronize()?;
    let up = t.elapsed().as_secs_f64();
    let (c_dev, mut stats) = summa_device(grid, (m, k, n), &a_dev, &b_dev, options)?;
    let t = Instant::now();
    let c_local = Array2::from_shape_vec((m_local, n_local), c_dev.to_vec()?).expect("sized above");
    stats.copy_seconds += up + t.elapsed().as_secs_f64();
    Ok((DistMatrix::from_parts(grid, m, n, c_local), stats))
}

/// C = A B where every operand block stays in device memory (collective
/// over `grid`): `a` is this rank's block of the `m x k` matrix A, and `b`
/// its block of the `k x n` matrix B, each row-major and laid out as
/// [`DistMatrix`] deals blocks (rows `block_range(m, grid.rows(),
/// grid.row())`, columns `block_range(k, grid.cols(), grid.col())` for A).
/// Returns this rank's block of C, row-major, on the same device. Each
/// step packs the owner's panel on the device, broadcasts it as a device
/// buffer (directly with a CUDA-aware MPI, else staged in chunks) and
/// multiplies on the device: nothing crosses the host-device link but the
/// panels MPI needs on the host.
///
/// # Errors
/// When the ranks disagree on the shape, panel or device, when a block's
/// length does not match its share, or when the device or MPI fails.
pub fn matmul_device_blocks<T: Float>(
    grid: &ProcessGrid,
    (m, k, n): (usize, usize, usize),
    a: &DeviceBuffer<T>,
    b: &DeviceBuffer<T>,
    options: MatmulOptions,
) -> Result<(DeviceBuffer<T>, MatmulStats)> {
    let _span = crate::trace::region("summa");
    let shape = vec![
        Agreed::number("m", m as u64),
        Agreed::number("k", k as u64),
        Agreed::number("n", n as u64),
    ];
    agree_on_options(grid, "matmul_device_blocks", options, shape)?;
    let share = |rows: usize, cols: usize| {
        block_range(rows, grid.rows(), grid.row()).len()
            * block_range(cols, grid.cols(), grid.col()).len()
    };
    let (want_a, want_b) = (share(m, k), share(k, n));
    let local = if !options.device.is_gpu_like()
        || a.device() != options.device
        || b.device() != options.device
    {
        Err(Error::invalid(
            "matmul_device_blocks",
            format!(
                "the blocks are on {} and {}, the options name {}: pass blocks on the GPU the options name",
                a.device(),
                b.device(),
                options.device
            ),
        ))
    } else if a.len() != want_a || b.len() != want_b {
        Err(Error::ShapeMismatch {
            op: "matmul_device_blocks",
            expected: format!("blocks of {want_a} (A) and {want_b} (B) elements on this rank"),
            got: format!("{} and {}", a.len(), b.len()),
        })
    } else {
        Ok(())
    };
    // One rank's wrong block must not leave the others in a broadcast.
    grid.comm().all_ok(
        "matmul_device_blocks",
        local,
        "another rank's blocks are not its share on the GPU the options name",
    )?;
    summa_device(grid, (m, k, n), a, b, options)
}

/// The SUMMA loop of [`matmul_device_blocks`], on checked operands.
fn summa_device<T: Float>(
    grid: &ProcessGrid,
    (m, k, n): (usize, usize, usize),
    a_dev: &DeviceBuffer<T>,
    b_dev: &DeviceBuffer<T>,
    options: MatmulOptions,
) -> Result<(DeviceBuffer<T>, MatmulStats)> {
    let device = options.device;
    let (rows, cols) = (grid.rows(), grid.cols());
    let row_comm = grid.row_comm().unchecked();
    let col_comm = grid.col_comm().unchecked();
    let a_col_range = block_range(k, cols, grid.col());
    let b_row_range = block_range(k, rows, grid.row());
    let n_local = block_range(n, cols, grid.col()).len();
    let a_cols = a_col_range.len();
    let m_local = block_range(m, rows, grid.row()).len();
    let steps = panels(k, rows, cols, options.panel);
    let mut stats = MatmulStats {
        panel_width: options.panel,
        panels: steps.len(),
        ..Default::default()
    };
    let mut c_dev = DeviceBuffer::<T>::zeros(device, m_local * n_local)?;
    for &(k0, k1) in &steps {
        let w = k1 - k0;
        let t = Instant::now();
        // Panels are allocated per step: stream-ordered allocations come
        // from the driver's pool, and a buffer's length is what is sent.
        let a_panel;
        let b_panel;
        // A's panel: columns k0..k1 of the owner's block, packed.
        let a_op = if cols == 1 {
            DeviceMatrix {
                buf: a_dev,
                offset: k0 - a_col_range.start,
                rows: m_local,
                cols: w,
                ld: a_cols,
            }
        } else {
            let owner = block_owner(k, cols, k0);
            let mut panel = DeviceBuffer::<T>::uninit(device, m_local * w)?;
            if grid.col() == owner {
                let src = DeviceMatrix {
                    buf: a_dev,
                    offset: k0 - a_col_range.start,
                    rows: m_local,
                    cols: w,
                    ld: a_cols,
                };
                pack_device(src, &mut panel)?;
            }
            row_comm.broadcast_device(&mut panel, owner)?;
            a_panel = panel;
            DeviceMatrix::new(&a_panel, m_local, w)
        };
        // B's panel: rows k0..k1 of the owner's block, contiguous already.
        let b_op = if rows == 1 {
            DeviceMatrix {
                buf: b_dev,
                offset: (k0 - b_row_range.start) * n_local,
                rows: w,
                cols: n_local,
                ld: n_local,
            }
        } else {
            let owner = block_owner(k, rows, k0);
            let mut panel = DeviceBuffer::<T>::uninit(device, w * n_local)?;
            if grid.row() == owner {
                let r0 = k0 - b_row_range.start;
                panel.copy_from(0, b_dev, r0 * n_local..(r0 + w) * n_local)?;
            }
            col_comm.broadcast_device(&mut panel, owner)?;
            b_panel = panel;
            DeviceMatrix::new(&b_panel, w, n_local)
        };
        stats.comm_seconds += t.elapsed().as_secs_f64();
        let t = Instant::now();
        gemm_device(
            options.gemm_backend,
            T::one(),
            a_op,
            b_op,
            T::one(),
            &mut c_dev,
            (0, n_local),
        )?;
        c_dev.synchronize()?;
        stats.compute_seconds += t.elapsed().as_secs_f64();
    }
    Ok((c_dev, stats))
}

/// The outcome of [`verify_product`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Verification {
    /// `||C r - A (B r)||_inf / (||A||_inf ||B||_inf ||r||_inf k eps)`: an
    /// estimate (from below) of `||C - AB|| / (||A|| ||B|| k eps)`. NaN or
    /// infinite when C, A or B hold non-finite values.
    pub residual: f64,
    /// The largest `residual` a correct product can have (a worst-case
    /// bound; see [`verify_product`]).
    pub threshold: f64,
    /// The largest ratio, over the rows, of `|C r - A (B r)|` to the
    /// probabilistic bound for that row; at most 1 for a correct product.
    pub row_ratio: f64,
    /// `residual <= threshold` and `row_ratio <= 1`, all finite.
    pub passed: bool,
    /// A and B hold only finite values. When they do not, C holds the NaNs
    /// and infinities IEEE 754 arithmetic gives, the residual is NaN and
    /// the check does not pass: it applies to finite inputs only.
    pub inputs_finite: bool,
}

/// Confidence parameter of the probabilistic bound: a correct product fails
/// with probability below `2 m n k exp(-LAMBDA^2 / 2)`, under 1e-16 for
/// m = n = k = 1e5.
const LAMBDA: f64 = 12.0;

/// Checks `C = A * B` without gathering anything (Freivalds' check, with a
/// random real vector `r`): compares `C r` with `A (B r)`, both computed in
/// f64 (collective).
///
/// Two tests, both derived from rounding-error analysis, must pass:
///
/// - Norm-wise, worst case: a product computed in T by any summation order
///   satisfies `|C - AB| <= gamma_{k+1} |A||B|` (Higham, Accuracy and
///   Stability of Numerical Algorithms, 2nd ed., §3.5), so `residual`
///   (normalised by `k eps_T ||A|| ||B|| ||r||`) stays below
///   `gamma_{k+1}(u_T) / (k eps_T)` plus the checking error of the two f64
///   matrix-vector products, `gamma_{2n+k}(u_64) / (k eps_T)`, with 1% to
///   spare. Never fails a correct product; detects only gross errors.
/// - Row-wise, probabilistic: with rounding errors modelled as independent
///   and mean-zero, `|C - AB| <= gamma~_k(lambda) |A||B|` with
///   `gamma~_k = exp(lambda sqrt(k) u_T + k u_T^2 / (1 - u_T)) - 1`, except
///   with probability at most `2 k exp(-lambda^2 (1 - u_T)^2 / 2)` per entry
///   (Higham and Mary, "A new approach to probabilistic rounding error
///   analysis", SIAM J. Sci. Comput. 41(5), 2019, Theorem 3.1). Row `i`
///   must satisfy `|(C r - A (B r))_i| <= gamma~_k (|A| (|B| |r|))_i` plus
///   the f64 checking error and, for products that underflow, `(k + 2)`
///   times the smallest subnormal of T times `sum |r|`. This catches errors
///   of about `sqrt(k)` rounding errors, where the worst case allows `k`.
pub fn verify_product<T: Float>(
    a: &DistMatrix<T>,
    b: &DistMatrix<T>,
    c: &DistMatrix<T>,
    seed: u64,
) -> Result<Verification> {
    let _span = crate::trace::region("verify_product");
    check_operands(a, b, Some(c))?;
    let (k, n) = (a.ncols(), c.ncols());
    let grid = c.grid();
    let r: Vec<f64> = (0..n)
        .map(|j| uniform(seed ^ 0x5eed, j as u64, 0))
        .collect();
    let r_abs: Vec<f64> = r.iter().map(|x| x.abs()).collect();
    let y = c.matvec_rows(&r, |x| x)?;
    let z = DistMatrix::<T>::assemble_by_grid_rows(b.grid(), k, &b.matvec_rows(&r, |x| x)?)?;
    let w = a.matvec_rows(&z, |x| x)?;
    // |A| (|B| |r|), row by row: the scale of each row's rounding errors.
    let z_abs =
        DistMatrix::<T>::assemble_by_grid_rows(b.grid(), k, &b.matvec_rows(&r_abs, f64::abs)?)?;
    let scale_rows = a.matvec_rows(&z_abs, f64::abs)?;

    let u_t = T::EPS / 2.0;
    let u64_ = f64::EPSILON / 2.0;
    let gamma = |count: f64, u: f64| count * u / (1.0 - count * u);
    let (kf, nf) = (k as f64, n as f64);
    let gamma_tilde = (LAMBDA * kf.sqrt() * u_t + kf * u_t * u_t / (1.0 - u_t)).exp_m1();
    let checking = gamma(2.0 * nf + kf + 2.0, u64_);
    let underflow =
        (kf + 2.0) * T::min_positive_value().as_f64() * T::EPS * r_abs.iter().sum::<f64>();
    let mut diff = 0.0f64;
    let mut row_ratio = 0.0f64;
    for ((yi, wi), si) in y.iter().zip(&w).zip(&scale_rows) {
        let d = (yi - wi).abs();
        diff = super::matrix::nan_max(diff, d);
        let tol = (gamma_tilde + checking) * si + underflow;
        let ratio = if d == 0.0 {
            0.0
        } else if tol > 0.0 {
            d / tol
        } else {
            f64::INFINITY
        };
        row_ratio = super::matrix::nan_max(row_ratio, ratio);
    }
    let comm = grid.comm();
    let any_nan = comm.all_reduce(
        &[(diff.is_nan() || row_ratio.is_nan()) as u8],
        ReduceOp::Max,
    )?[0]
        == 1;
    let diff = comm.all_reduce(&[diff], ReduceOp::Max)?[0];
    let row_ratio = comm.all_reduce(&[row_ratio], ReduceOp::Max)?[0];
    let norms = a.norm_inf()? * b.norm_inf()? * r_abs.iter().copied().fold(0.0, f64::max);
    let scale = norms * kf * T::EPS;
    let residual = if any_nan || norms.is_nan() {
        f64::NAN
    } else if diff == 0.0 {
        0.0
    } else if scale > 0.0 {
        diff / scale
    } else {
        f64::INFINITY
    };
    let threshold = if k == 0 {
        0.0
    } else {
        1.01 * (gamma(kf + 1.0, u_t) + gamma(2.0 * nf + kf, u64_)) / (kf * T::EPS)
            + underflow / scale.max(f64::MIN_POSITIVE)
    };
    let row_ratio = if any_nan { f64::NAN } else { row_ratio };
    let finite_here = a
        .local()
        .iter()
        .chain(b.local().iter())
        .all(|x| x.as_f64().is_finite());
    let inputs_finite = comm.all_reduce(&[u8::from(finite_here)], ReduceOp::Min)?[0] == 1;
    Ok(Verification {
        inputs_finite,
        residual,
        threshold,
        row_ratio,
        passed: residual <= threshold && row_ratio <= 1.0,
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
