//! `tessera matmul`: a distributed matrix multiply, timed, verified and
//! reported.

use std::path::PathBuf;

use serde::Serialize;

use super::Resident;
use crate::{Error, Result};
use tessera::comm::{Comm, ProcessGrid, ReduceOp};
use tessera::device::DeviceChoice;
use tessera::distributed::block_range;
use tessera::distributed::matmul::matmul_device_blocks;
use tessera::distributed::{DistMatrix, MatmulOptions, matmul_with, verify_product};
use tessera::ops::Float;
use tessera::ops::generate::uniform_matrix_on;

/// What `tessera matmul` was asked for.
#[derive(Debug, Clone)]
pub struct MatmulJob {
    /// Rows of A and C.
    pub m: usize,
    /// Columns of A, rows of B.
    pub k: usize,
    /// Columns of B and C.
    pub n: usize,
    /// A and B from `.npy` files instead of a seeded random fill.
    pub inputs: Option<(PathBuf, PathBuf)>,
    /// Where to write C (`.npy`), if anywhere.
    pub out: Option<PathBuf>,
    /// Where the local products run.
    pub device: DeviceChoice,
    /// The GEMM used on a GPU.
    pub gemm_backend: tessera::ops::gemm::GemmBackend,
    /// Grid shape; `None` for the squarest.
    pub grid: Option<(usize, usize)>,
    /// SUMMA panel width.
    pub panel: usize,
    /// Column blocks per step's GEMM, with progress tests between them.
    pub progress_slices: usize,
    /// Seed of the random fill and of the verification vector.
    pub seed: u64,
    /// Times to run the multiply; the fastest run is reported (the first
    /// pays for page faults and cold caches).
    pub repeat: usize,
    /// Check the product (Freivalds); without it nothing is checked.
    pub verify: bool,
}

/// What `tessera matmul` reports (`--json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct MatmulReport {
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// Element type.
    pub dtype: &'static str,
    /// Ranks.
    pub ranks: usize,
    /// Grid rows and columns.
    pub grid: [usize; 2],
    /// Where the local products ran.
    pub device: String,
    /// SUMMA panel width.
    pub panel: usize,
    /// Wall time of the fastest run of the multiply (slowest rank).
    pub seconds: f64,
    /// Runs of the multiply.
    pub repeat: usize,
    /// 2 m n k / seconds, in GFLOP/s.
    pub gflops: f64,
    /// `gflops` / ranks.
    pub gflops_per_rank: f64,
    /// Local computation (GEMM, packing) in the fastest run, slowest rank,
    /// from the trace spans.
    pub compute_seconds: f64,
    /// Communication not hidden behind computation, waiting excluded
    /// (slowest rank).
    pub comm_seconds: f64,
    /// Waiting for other ranks to reach a collective (slowest rank).
    pub wait_seconds: f64,
    /// Every rank's split of the fastest run.
    pub split: Vec<tessera::trace::RankSplit>,
    /// Freivalds estimate of `||C - AB|| / (||A|| ||B|| k eps)` (with
    /// `--verify` only, as are the next four).
    pub residual: Option<f64>,
    /// The largest residual a correct product can have (worst case).
    pub residual_threshold: Option<f64>,
    /// The largest row-wise ratio of the Freivalds difference to its
    /// probabilistic bound (at most 1 for a correct product).
    pub row_ratio: Option<f64>,
    /// `residual <= residual_threshold`; none when not checked.
    pub verified: Option<bool>,
    /// A and B hold only finite values (the check applies to those only).
    pub inputs_finite: Option<bool>,
    /// A, B and C stayed in device memory (generated operands on GPUs): A
    /// and B were generated there, and C comes to the host only for
    /// `--verify` and `--out`.
    pub device_resident: bool,
    /// Generating A and B (slowest rank), outside `seconds`.
    pub generate_seconds: f64,
    /// Checking the product (`--verify`, with the host's A and B for a
    /// device-resident run; slowest rank), outside `seconds`.
    pub verify_seconds: f64,
    /// Copying C to the host for `--verify` or `--out` (device-resident
    /// runs), outside `seconds`; the copies of a host-resident GPU run are
    /// part of its time.
    pub copy_seconds: f64,
}

/// Parses `RxC` (e.g. `2x3`).
pub fn parse_grid(s: &str) -> Result<(usize, usize)> {
    let bad = || {
        Error::Usage(format!(
            "bad --grid `{s}`: write ROWSxCOLS, e.g. 2x3, with rows x cols equal to the rank count"
        ))
    };
    let (r, c) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (r, c) = (
        r.trim().parse::<usize>().map_err(|_| bad())?,
        c.trim().parse::<usize>().map_err(|_| bad())?,
    );
    if r == 0 || c == 0 {
        return Err(bad());
    }
    Ok((r, c))
}

/// A generated problem must give every rank of a `rows` x `cols` grid a
/// share: m is split over the grid's rows, n over its columns, and k over
/// both. (Matrices read from files may be smaller than the grid: ranks with
/// empty blocks then only pass panels on.)
fn check_generated_sizes(job: &MatmulJob, rows: usize, cols: usize) -> Result<()> {
    for (flag, value, over, what) in [
        ("--m", job.m, rows, "grid rows"),
        ("--n", job.n, cols, "grid columns"),
        ("--k", job.k, rows.max(cols), "grid rows or columns"),
    ] {
        if value < over {
            return Err(Error::Usage(format!(
                "{flag} {value} is less than the {over} {what} of the {rows} x {cols} process grid, so some ranks would hold nothing: pass {flag} of at least {over}, or run with fewer ranks"
            )));
        }
    }
    Ok(())
}

/// Runs the job on every rank of `comm` (collective); the report is the
/// same on every rank.
pub fn run<T: Float>(comm: &Comm, job: &MatmulJob) -> Result<MatmulReport> {
    let (rows, cols) = job
        .grid
        .unwrap_or_else(|| tessera::comm::square_ish_factors(comm.size()));
    let grid = ProcessGrid::new(comm, rows, cols)?;
    if job.inputs.is_none() {
        check_generated_sizes(job, rows, cols)?;
    }
    let device = tessera::device::Device::select(job.device, comm.local_rank())?;
    // The paths below differ by device: every rank must take the same.
    comm.same_everywhere(
        "matmul",
        &[tessera::comm::Agreed::named(
            "the device kind",
            device.kind_code(),
            |v| tessera::Device::kind_name(v).to_string(),
        )],
    )?;
    if job.repeat == 0 {
        return Err(Error::Usage("--repeat must be at least 1".into()));
    }
    if device.is_gpu_like() && job.inputs.is_none() {
        return run_on_device::<T>(comm, job, &grid, device);
    }
    let t = std::time::Instant::now();
    let (a, b) = match &job.inputs {
        Some((pa, pb)) => (
            tessera::npy::read_distributed::<T>(&grid, pa, 0)?,
            tessera::npy::read_distributed::<T>(&grid, pb, 0)?,
        ),
        None => (
            DistMatrix::<T>::random(&grid, job.m, job.k, job.seed),
            DistMatrix::<T>::random(&grid, job.k, job.n, job.seed.wrapping_add(1)),
        ),
    };
    let generate_seconds = t.elapsed().as_secs_f64();
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    let mut best: Option<(DistMatrix<T>, f64, Vec<tessera::trace::RankSplit>)> = None;
    for _ in 0..job.repeat {
        comm.barrier()?;
        let ((c, mine), split) = tessera::comm::trace::measured(comm, || {
            let start = tessera::comm::wtime();
            let (c, _stats) = matmul_with(
                &a,
                &b,
                MatmulOptions {
                    device,
                    panel: job.panel,
                    gemm_backend: job.gemm_backend,
                    progress_slices: job.progress_slices,
                },
            )?;
            Ok((c, tessera::comm::wtime() - start))
        })?;
        let slowest = comm.all_reduce(&[mine], ReduceOp::Max)?[0];
        if best.as_ref().is_none_or(|(_, t, _)| slowest < *t) {
            best = Some((c, slowest, split));
        }
    }
    let (c, seconds, split) = best.expect("at least one run");
    let t = std::time::Instant::now();
    let verification = if job.verify {
        Some(verify_product(&a, &b, &c, job.seed)?)
    } else {
        None
    };
    let verify_seconds = t.elapsed().as_secs_f64();
    if let Some(path) = &job.out {
        tessera::npy::write_distributed(&c, path, 0)?;
    }
    report::<T>(
        comm,
        job,
        ((m, k, n), [rows, cols]),
        device,
        (seconds, split),
        verification,
        Resident {
            on_device: false,
            generate_seconds,
            copy_seconds: 0.0,
            verify_seconds,
        },
    )
}

/// Generated operands on GPUs: each rank's blocks of A and B are generated
/// in device memory (bit for bit `DistMatrix::random`'s), multiplied there
/// ([`matmul_device_blocks`]), and C comes to the host only for `--verify`
/// (Freivalds against A and B generated on the host, independently of the
/// kernels) and `--out`.
fn run_on_device<T: Float>(
    comm: &Comm,
    job: &MatmulJob,
    grid: &ProcessGrid,
    device: tessera::Device,
) -> Result<MatmulReport> {
    let (m, k, n) = (job.m, job.k, job.n);
    let rows_of = |total: usize| block_range(total, grid.rows(), grid.row());
    let cols_of = |total: usize| block_range(total, grid.cols(), grid.col());
    comm.barrier()?;
    let t = std::time::Instant::now();
    let a = uniform_matrix_on::<T>(device, rows_of(m), cols_of(k), job.seed)?;
    let b = uniform_matrix_on::<T>(device, rows_of(k), cols_of(n), job.seed.wrapping_add(1))?;
    b.synchronize()?;
    let generate_seconds = t.elapsed().as_secs_f64();
    let options = MatmulOptions {
        device,
        panel: job.panel,
        gemm_backend: job.gemm_backend,
        progress_slices: job.progress_slices,
    };
    let mut best: Option<(
        tessera::device::DeviceBuffer<T>,
        f64,
        Vec<tessera::trace::RankSplit>,
    )> = None;
    for _ in 0..job.repeat {
        comm.barrier()?;
        let ((c, mine), split) = tessera::comm::trace::measured(comm, || {
            let start = tessera::comm::wtime();
            let (c, _stats) = matmul_device_blocks(grid, (m, k, n), &a, &b, options)?;
            Ok((c, tessera::comm::wtime() - start))
        })?;
        let slowest = comm.all_reduce(&[mine], ReduceOp::Max)?[0];
        if best.as_ref().is_none_or(|(_, t, _)| slowest < *t) {
            best = Some((c, slowest, split));
        }
    }
    let (c_dev, seconds, split) = best.expect("at least one run");
    let (mut verification, mut copy_seconds, mut verify_seconds) = (None, 0.0, 0.0);
    if job.verify || job.out.is_some() {
        let t = std::time::Instant::now();
        let local = c_dev.to_vec()?;
        copy_seconds = t.elapsed().as_secs_f64();
        let (r0, c0, width) = (rows_of(m).start, cols_of(n).start, cols_of(n).len());
        let c = DistMatrix::from_fn(grid, m, n, |i, j| local[(i - r0) * width + (j - c0)]);
        if job.verify {
            let t = std::time::Instant::now();
            let a = DistMatrix::<T>::random(grid, m, k, job.seed);
            let b = DistMatrix::<T>::random(grid, k, n, job.seed.wrapping_add(1));
            verification = Some(verify_product(&a, &b, &c, job.seed)?);
            verify_seconds = t.elapsed().as_secs_f64();
        }
        if let Some(path) = &job.out {
            tessera::npy::write_distributed(&c, path, 0)?;
        }
    }
    report::<T>(
        comm,
        job,
        ((m, k, n), [grid.rows(), grid.cols()]),
        device,
        (seconds, split),
        verification,
        Resident {
            on_device: true,
            generate_seconds,
            copy_seconds,
            verify_seconds,
        },
    )
}

/// The report of a run: the shape and process grid, `seconds` of the
/// fastest multiply and its split.
fn report<T: Float>(
    comm: &Comm,
    job: &MatmulJob,
    ((m, k, n), grid): ((usize, usize, usize), [usize; 2]),
    device: tessera::Device,
    (seconds, split): (f64, Vec<tessera::trace::RankSplit>),
    verification: Option<tessera::distributed::Verification>,
    resident: Resident,
) -> Result<MatmulReport> {
    let gflops = 2.0 * m as f64 * n as f64 * k as f64 / seconds / 1e9;
    let resident = resident.slowest(comm, job.verify)?;
    Ok(MatmulReport {
        m,
        n,
        k,
        dtype: T::DTYPE,
        ranks: comm.size(),
        grid,
        device: device.to_string(),
        panel: job.panel,
        seconds,
        repeat: job.repeat,
        gflops,
        gflops_per_rank: gflops / comm.size() as f64,
        compute_seconds: tessera::trace::slowest(&split, |r| r.compute + r.copy),
        comm_seconds: tessera::trace::slowest(&split, |r| r.comm),
        wait_seconds: tessera::trace::slowest(&split, |r| r.wait),
        split,
        residual: verification.as_ref().map(|v| v.residual),
        residual_threshold: verification.as_ref().map(|v| v.threshold),
        row_ratio: verification.as_ref().map(|v| v.row_ratio),
        verified: verification.as_ref().map(|v| v.passed),
        inputs_finite: verification.as_ref().map(|v| v.inputs_finite),
        device_resident: resident.on_device,
        generate_seconds: resident.generate_seconds,
        copy_seconds: resident.copy_seconds,
        verify_seconds: resident.verify_seconds,
    })
}

/// The report as the lines `tessera matmul` prints.
pub fn render(r: &MatmulReport) -> String {
    format!(
        "C = A * B: {m} x {k} times {k} x {n}, {dtype}, {ranks} ranks on a {gr} x {gc} grid, device {device}, panel {panel}\n\
         time {secs}, fastest of {repeat}\n\
         {split}\
         {gf:.2} GFLOP/s overall, {gfr:.2} GFLOP/s per rank\n\
         {resident}{check}\n",
        m = r.m,
        k = r.k,
        n = r.n,
        dtype = r.dtype,
        ranks = r.ranks,
        gr = r.grid[0],
        gc = r.grid[1],
        device = r.device,
        panel = r.panel,
        secs = super::human_seconds(r.seconds),
        repeat = r.repeat,
        split = tessera::trace::render_split(&r.split),
        gf = r.gflops,
        gfr = r.gflops_per_rank,
        resident = if r.device_resident {
            format!(
                "A and B generated in device memory in {}; C {}\n",
                super::human_seconds(r.generate_seconds),
                super::copied_to_host(r.copy_seconds, "the check or the file")
            )
        } else {
            String::new()
        },
        check = match (
            r.residual,
            r.residual_threshold,
            r.row_ratio,
            r.verified,
            r.inputs_finite
        ) {
            (Some(res), Some(thr), Some(rows), Some(verified), Some(finite)) => format!(
                "residual ||C - AB|| / (||A|| ||B|| k eps) = {res:.3e} (threshold {thr:.3}), row check {rows:.3e} (threshold 1), check {}: {}",
                super::human_seconds(r.verify_seconds),
                match (verified, finite) {
                    (true, _) => "verified",
                    (false, true) => "FAILED",
                    (false, false) =>
                        "not verified: A or B holds NaN or infinite values, and the check applies to finite inputs only (C holds what IEEE 754 arithmetic gives)",
                }
            ),
            _ => "not checked (pass --verify to check the product)".to_string(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_parse() {
        assert_eq!(parse_grid("2x3").unwrap(), (2, 3));
        assert_eq!(parse_grid("4X1").unwrap(), (4, 1));
        for bad in ["2", "x3", "0x2", "2x", "axb", "2x-1"] {
            assert!(parse_grid(bad).is_err(), "{bad}");
        }
    }
}
