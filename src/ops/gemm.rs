//! Dense matrix multiply: `C = alpha * A * B + beta * C` for `f32` and `f64`.
//!
//! The CPU path is the `gemm` crate (packed, cache-blocked, rayon-parallel,
//! with micro-kernels for AVX-512, AVX2/FMA and a portable fallback, chosen at
//! run time). It was measured against matrixmultiply and OpenBLAS on the same
//! machine: see BENCHMARKS.md. Any strides work, so transposed operands are
//! just transposed views (`a.t()`), with no copy.
//!
//! The GPU path (a CUDA GPU, or the emulated one) is the tiled kernel of
//! `kernels/gemm.cu`, or cuBLAS ([`GemmBackend`]). [`gemm`] copies host views
//! to the device and back; [`gemm_device`] works on matrices that stay in
//! device memory.

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::device::backend::{Params, blocks};
use crate::device::{Device, DeviceBuffer, kernels};
use crate::error::{Error, Result};

/// Which GEMM runs on a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GemmBackend {
    /// Tessera's kernel (`kernels/gemm.cu`).
    #[default]
    Tessera,
    /// NVIDIA's cuBLAS (a CUDA GPU with libcublas only).
    Cublas,
}

named_choices!(GemmBackend { Tessera => "tessera", Cublas => "cublas" });

/// A row-major matrix in device memory: `rows x cols` elements starting at
/// element `offset` of `buf`, consecutive rows `ld` elements apart.
#[derive(Debug)]
pub struct DeviceMatrix<'a, T: bytemuck::Pod> {
    /// The buffer holding it.
    pub buf: &'a DeviceBuffer<T>,
    /// Index of element (0, 0) in `buf`.
    pub offset: usize,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Elements between the starts of consecutive rows (>= cols).
    pub ld: usize,
}

impl<'a, T: bytemuck::Pod> DeviceMatrix<'a, T> {
    /// The whole of `buf` as a contiguous `rows x cols` matrix.
    pub fn new(buf: &'a DeviceBuffer<T>, rows: usize, cols: usize) -> Self {
        DeviceMatrix {
            buf,
            offset: 0,
            rows,
            cols,
            ld: cols,
        }
    }
}

/// Checks that a device operand lies inside its buffer and that its sizes
/// fit the kernels' 32-bit integers.
fn check_operand(
    what: &str,
    buf_len: usize,
    offset: usize,
    rows: usize,
    cols: usize,
    ld: usize,
) -> Result<()> {
    let span = if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1)
            .checked_mul(ld)
            .and_then(|x| x.checked_add(cols))
            .unwrap_or(usize::MAX)
    };
    let fits = |x: usize| i32::try_from(x).is_ok();
    if ld < cols || offset.checked_add(span).is_none_or(|end| end > buf_len) {
        return Err(Error::invalid(
            "gemm_device",
            format!(
                "{what} ({rows} x {cols}, ld {ld}, offset {offset}) does not fit in its buffer of {buf_len} elements: ld must be >= cols and the last element inside the buffer"
            ),
        ));
    }
    if !(fits(rows) && fits(cols) && fits(ld)) {
        return Err(Error::invalid(
            "gemm_device",
            format!(
                "{what}: dimensions and leading dimension must be below 2^31 on a GPU (got {rows} x {cols}, ld {ld})"
            ),
        ));
    }
    Ok(())
}

/// `C = alpha * A * B + beta * C` on the device that holds the operands
/// (a CUDA GPU or the emulated one), all row-major; with `beta == 0`, C is
/// not read. Stream-ordered: returns once the work is queued.
pub fn gemm_device<T: Float>(
    backend: GemmBackend,
    alpha: T,
    a: DeviceMatrix<'_, T>,
    b: DeviceMatrix<'_, T>,
    beta: T,
    c: &mut DeviceBuffer<T>,
    (c_offset, c_ld): (usize, usize),
) -> Result<()> {
    let _span = crate::trace::compute("gemm");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k {
        return Err(Error::ShapeMismatch {
            op: "gemm_device",
            expected: "A: m x k, B: k x n".into(),
            got: format!("A: {m} x {k}, B: {} x {n}", b.rows),
        });
    }
    check_operand("A", a.buf.len(), a.offset, m, k, a.ld)?;
    check_operand("B", b.buf.len(), b.offset, k, n, b.ld)?;
    check_operand("C", c.len(), c_offset, m, n, c_ld)?;
    if a.buf.device() != c.device() || b.buf.device() != c.device() {
        return Err(Error::invalid(
            "gemm_device",
            "A, B and C must be on the same device",
        ));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    match backend {
        GemmBackend::Tessera => {
            let (entry, tile) = match T::DTYPE {
                "f32" => (kernels::GEMM.entry("tessera_gemm_f32"), 128),
                _ => (kernels::GEMM.entry("tessera_gemm_f64"), 64),
            };
            let grid = (
                blocks(n as u64, tile, "gemm_device")?,
                blocks(m as u64, tile, "gemm_device")?,
                1,
            );
            if grid.1 > 65535 {
                return Err(Error::invalid(
                    "gemm_device",
                    format!("{m} rows need more than 65535 row tiles: split A by rows"),
                ));
            }
            let scalar = |p: Params, x: T| {
                if T::DTYPE == "f32" {
                    p.f32(x.as_f64() as f32)
                } else {
                    p.f64(x.as_f64())
                }
            };
            let p = Params::new().i32(m as i32).i32(n as i32).i32(k as i32);
            let p = scalar(p, alpha)
                .ptr(a.buf.addr_at(a.offset))
                .i32(a.ld as i32)
                .ptr(b.buf.addr_at(b.offset))
                .i32(b.ld as i32);
            scalar(p, beta)
                .ptr(c.addr_at(c_offset))
                .i32(c_ld as i32)
                .launch(c.backend().as_ref(), entry, grid, (256, 1, 1))
        }
        GemmBackend::Cublas => cublas_gemm(alpha, &a, &b, beta, c, (c_offset, c_ld)),
    }
}

/// cuBLAS is column-major: a row-major C (m x n) is a column-major C^T, and
/// C^T = B^T A^T, so cuBLAS multiplies B by A with the dimensions swapped
/// and no transposes.
fn cublas_gemm<T: Float>(
    alpha: T,
    a: &DeviceMatrix<'_, T>,
    b: &DeviceMatrix<'_, T>,
    beta: T,
    c: &mut DeviceBuffer<T>,
    (c_offset, c_ld): (usize, usize),
) -> Result<()> {
    use cudarc::cublas::{result as blas, sys as blas_sys};
    let backend = c.backend().clone();
    let gpu = backend.cuda().ok_or_else(|| Error::Unsupported {
        op: "gemm",
        device: c.device().to_string(),
        reason: "cuBLAS needs a CUDA GPU: use --gemm-backend tessera".into(),
    })?;
    let (m, k, n) = (a.rows as i32, a.cols as i32, b.cols as i32);
    let (lda, ldb, ldc) = (a.ld.max(1) as i32, b.ld.max(1) as i32, c_ld.max(1) as i32);
    let (pa, pb, pc) = (
        a.buf.addr_at(a.offset),
        b.buf.addr_at(b.offset),
        c.addr_at(c_offset),
    );
    let op = blas_sys::cublasOperation_t::CUBLAS_OP_N;
    let err = |e: blas::CublasError| Error::Cuda {
        call: "cublasGemm",
        message: format!("{e:?}"),
    };
    gpu.with_cublas(|h| {
        // SAFETY: the handle is bound to the stream the operands were
        // produced on; the three ranges were checked to lie inside their
        // buffers; alpha and beta are host scalars that outlive the call.
        unsafe {
            if T::DTYPE == "f32" {
                let (al, be) = (alpha.as_f64() as f32, beta.as_f64() as f32);
                blas::sgemm(
                    h,
                    op,
                    op,
                    n,
                    m,
                    k,
                    &al,
                    pb as *const f32,
                    ldb,
                    pa as *const f32,
                    lda,
                    &be,
                    pc as *mut f32,
                    ldc,
                )
            } else {
                let (al, be) = (alpha.as_f64(), beta.as_f64());
                blas::dgemm(
                    h,
                    op,
                    op,
                    n,
                    m,
                    k,
                    &al,
                    pb as *const f64,
                    ldb,
                    pa as *const f64,
                    lda,
                    &be,
                    pc as *mut f64,
                    ldc,
                )
            }
        }
        .map_err(err)
    })
}

/// Copies rows x cols of a row-major device matrix into a contiguous one
/// (`kernels/gemm.cu`'s pack kernel): the column panels of SUMMA.
pub fn pack_device<T: Float>(src: DeviceMatrix<'_, T>, dst: &mut DeviceBuffer<T>) -> Result<()> {
    let _span = crate::trace::compute("pack");
    let (rows, cols) = (src.rows, src.cols);
    check_operand("source", src.buf.len(), src.offset, rows, cols, src.ld)?;
    check_operand("destination", dst.len(), 0, rows, cols, cols)?;
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let entry = match T::DTYPE {
        "f32" => kernels::GEMM.entry("tessera_pack_f32"),
        _ => kernels::GEMM.entry("tessera_pack_f64"),
    };
    let grid = (
        blocks(cols as u64, 32, "pack")?,
        blocks(rows as u64, 8, "pack")?,
        1,
    );
    Params::new()
        .i32(rows as i32)
        .i32(cols as i32)
        .ptr(src.buf.addr_at(src.offset))
        .i32(src.ld as i32)
        .ptr(dst.addr_at(0))
        .i32(cols as i32)
        .launch(dst.backend().as_ref(), entry, grid, (32, 8, 1))
}

/// Copies a matrix view of any strides to `device`, row-major and
/// contiguous (no host copy when the view already is).
pub(crate) fn upload_matrix<T: Float>(
    device: Device,
    x: ArrayView2<'_, T>,
) -> Result<DeviceBuffer<T>> {
    let x = x.as_standard_layout();
    DeviceBuffer::from_slice(device, x.as_slice().expect("standard layout is contiguous"))
}

/// [`gemm`] on a GPU-like device: copies the operands there, multiplies,
/// copies C back.
fn gemm_on_device<T: Float>(
    device: Device,
    backend: GemmBackend,
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    mut c: ArrayViewMut2<'_, T>,
) -> Result<()> {
    let ((m, k), n) = (a.dim(), b.ncols());
    if m == 0 || n == 0 {
        return Ok(());
    }
    let upload = |x| upload_matrix(device, x);
    let da = upload(a)?;
    let db = upload(b)?;
    let mut dc = if beta == T::zero() {
        DeviceBuffer::uninit(device, m * n)?
    } else {
        upload(c.view())?
    };
    gemm_device(
        backend,
        alpha,
        DeviceMatrix::new(&da, m, k),
        DeviceMatrix::new(&db, k, n),
        beta,
        &mut dc,
        (0, n),
    )?;
    let out = dc.to_vec()?;
    c.iter_mut().zip(out).for_each(|(dst, x)| *dst = x);
    Ok(())
}

/// The floating-point element types of the numeric kernels.
pub trait Float:
    crate::comm::Reducible
    + num_traits::Float
    + std::iter::Sum
    + Send
    + Sync
    + std::fmt::Debug
    + std::fmt::Display
    + ndarray_npy::ReadableElement
    + ndarray_npy::WritableElement
    + 'static
{
    /// Machine epsilon, as f64, for deriving error bounds.
    const EPS: f64;
    /// The type's name in `--dtype` and `.npy` terms.
    const DTYPE: &'static str;
    /// Converts from f64 (rounding).
    fn from_f64(x: f64) -> Self;
    /// Widens to f64 (exactly).
    fn as_f64(self) -> f64;
}

impl Float for f32 {
    const EPS: f64 = f32::EPSILON as f64;
    const DTYPE: &'static str = "f32";
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl Float for f64 {
    const EPS: f64 = f64::EPSILON;
    const DTYPE: &'static str = "f64";
    fn from_f64(x: f64) -> Self {
        x
    }
    fn as_f64(self) -> f64 {
        self
    }
}

/// Below this many multiply-adds a product runs on one thread: splitting it
/// costs more than it saves.
const PARALLEL_THRESHOLD: usize = 48 * 48 * 48;

/// `C = alpha * A * B + beta * C` on `device`, for any strides (pass `a.t()`
/// for a transposed operand). With `beta == 0`, `C` is not read, so it may
/// hold anything (NaN included) on entry.
///
/// Shapes must be `A: m x k`, `B: k x n`, `C: m x n`, else
/// [`Error::ShapeMismatch`].
pub fn gemm<T: Float>(
    device: Device,
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    c: ArrayViewMut2<'_, T>,
) -> Result<()> {
    gemm_with(device, GemmBackend::Tessera, alpha, a, b, beta, c)
}

/// [`gemm`] with a choice of GPU GEMM (ignored on the CPU).
pub fn gemm_with<T: Float>(
    device: Device,
    backend: GemmBackend,
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    mut c: ArrayViewMut2<'_, T>,
) -> Result<()> {
    let _span = crate::trace::compute("gemm");
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    if k != k2 || c.dim() != (m, n) {
        return Err(Error::ShapeMismatch {
            op: "gemm",
            expected: "A: m x k, B: k x n, C: m x n".into(),
            got: format!(
                "A: {m} x {k}, B: {k2} x {n}, C: {} x {}",
                c.nrows(),
                c.ncols()
            ),
        });
    }
    match device {
        Device::Cpu => {
            gemm_cpu(alpha, a, b, beta, c.view_mut());
            Ok(())
        }
        Device::Cuda(_) | Device::Emulated => gemm_on_device(device, backend, alpha, a, b, beta, c),
    }
}

fn gemm_cpu<T: Float>(
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    mut c: ArrayViewMut2<'_, T>,
) {
    let ((m, k), n) = (a.dim(), b.ncols());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // A * B is an m x n matrix of zeros.
        if beta == T::zero() {
            c.fill(T::zero());
        } else {
            c.mapv_inplace(|x| beta * x);
        }
        return;
    }
    let parallelism = if m * n * k >= PARALLEL_THRESHOLD && rayon::current_num_threads() > 1 {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    let (a_rs, a_cs) = (a.strides()[0], a.strides()[1]);
    let (b_rs, b_cs) = (b.strides()[0], b.strides()[1]);
    let (c_rs, c_cs) = (c.strides()[0], c.strides()[1]);
    // SAFETY: the pointers and strides describe the three views exactly
    // (ndarray's as_ptr is the element at [0, 0], and the strides are in
    // elements); the shapes were checked to conform; `c` is borrowed mutably,
    // so it aliases neither `a` nor `b`. The gemm crate computes
    // dst = alpha_g * dst + beta_g * lhs * rhs, reading dst only when
    // read_dst is true: ours is alpha_g = beta, beta_g = alpha.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs,
            c_rs,
            beta != T::zero(),
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            beta,
            alpha,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `C = alpha * A * B + beta * C` by the textbook triple loop, accumulating
/// in f64: the reference the fast paths are tested against.
pub fn gemm_reference<T: Float>(
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    mut c: ArrayViewMut2<'_, T>,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f64;
            for p in 0..k {
                acc += a[[i, p]].as_f64() * b[[p, j]].as_f64();
            }
            let old = if beta == T::zero() {
                0.0
            } else {
                beta.as_f64() * c[[i, j]].as_f64()
            };
            c[[i, j]] = T::from_f64(alpha.as_f64() * acc + old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// A deterministic pseudo-random matrix with entries in [-1, 1).
    fn matrix<T: Float>(rows: usize, cols: usize, seed: u64) -> Array2<T> {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        Array2::from_shape_fn((rows, cols), |_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            T::from_f64((state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
        })
    }

    /// Checks one product against the f64 reference, entry by entry, with
    /// the bound for a length-k dot product computed in T:
    /// |fl(c) - c| <= 2 k eps (|alpha| sum |a||b| + |beta||c0|) (Higham 3.5,
    /// plus the final scaling and addition).
    fn check<T: Float>(
        m: usize,
        k: usize,
        n: usize,
        alpha: f64,
        beta: f64,
        transpose: (bool, bool),
    ) {
        let a_store: Array2<T> = if transpose.0 {
            matrix(k, m, 1)
        } else {
            matrix(m, k, 1)
        };
        let b_store: Array2<T> = if transpose.1 {
            matrix(n, k, 2)
        } else {
            matrix(k, n, 2)
        };
        let a = if transpose.0 {
            a_store.t()
        } else {
            a_store.view()
        };
        let b = if transpose.1 {
            b_store.t()
        } else {
            b_store.view()
        };
        let c0: Array2<T> = matrix(m, n, 3);
        let (alpha_t, beta_t) = (T::from_f64(alpha), T::from_f64(beta));
        let mut fast = c0.clone();
        gemm(Device::Cpu, alpha_t, a, b, beta_t, fast.view_mut()).unwrap();
        let mut reference = c0.clone();
        gemm_reference(alpha_t, a, b, beta_t, reference.view_mut());
        for i in 0..m {
            for j in 0..n {
                let abs: f64 = (0..k)
                    .map(|p| (a[[i, p]].as_f64() * b[[p, j]].as_f64()).abs())
                    .sum();
                let bound = 2.0
                    * (k as f64 + 2.0)
                    * T::EPS
                    * (alpha.abs() * abs + beta.abs() * c0[[i, j]].as_f64().abs());
                let err = (fast[[i, j]].as_f64() - reference[[i, j]].as_f64()).abs();
                assert!(
                    err <= bound,
                    "{} {m}x{k}x{n} alpha {alpha} beta {beta} t {transpose:?}: C[{i},{j}] off by {err:e} > {bound:e}",
                    T::DTYPE
                );
            }
        }
    }

    #[test]
    fn matches_the_reference_on_awkward_shapes() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (1, 7, 1),
            (3, 1, 5),
            (17, 33, 9),
            (64, 64, 64),
            (130, 67, 129),
            (2, 300, 3),
            (255, 3, 1),
        ] {
            for &(alpha, beta) in &[(1.0, 0.0), (-0.5, 2.0), (2.0, 1.0)] {
                for transpose in [(false, false), (true, false), (false, true), (true, true)] {
                    check::<f64>(m, k, n, alpha, beta, transpose);
                    check::<f32>(m, k, n, alpha, beta, transpose);
                }
            }
        }
    }

    #[test]
    fn beta_zero_ignores_nan_in_c_and_k_zero_scales_c() {
        let a = matrix::<f64>(4, 3, 5);
        let b = matrix::<f64>(3, 2, 6);
        let mut c = Array2::from_elem((4, 2), f64::NAN);
        gemm(Device::Cpu, 1.0, a.view(), b.view(), 0.0, c.view_mut()).unwrap();
        assert!(c.iter().all(|x| x.is_finite()));
        let empty_a = Array2::<f64>::zeros((4, 0));
        let empty_b = Array2::<f64>::zeros((0, 2));
        let mut c = Array2::from_elem((4, 2), 3.0);
        gemm(
            Device::Cpu,
            1.0,
            empty_a.view(),
            empty_b.view(),
            0.5,
            c.view_mut(),
        )
        .unwrap();
        assert!(c.iter().all(|&x| x == 1.5));
    }

    #[test]
    fn nonconforming_shapes_are_an_error() {
        let a = Array2::<f32>::zeros((2, 3));
        let b = Array2::<f32>::zeros((4, 2));
        let mut c = Array2::<f32>::zeros((2, 2));
        let e = gemm(Device::Cpu, 1.0, a.view(), b.view(), 0.0, c.view_mut()).unwrap_err();
        assert!(e.to_string().contains("A: 2 x 3, B: 4 x 2"), "{e}");
        let b = Array2::<f32>::zeros((3, 2));
        // Without a GPU, asking for one is a clear error, not a panic.
        if crate::device::probe_gpus().is_err() {
            let e = gemm(Device::Cuda(0), 1.0, a.view(), b.view(), 0.0, c.view_mut()).unwrap_err();
            assert!(matches!(e, Error::NoGpu { .. }), "{e}");
        }
    }
}
