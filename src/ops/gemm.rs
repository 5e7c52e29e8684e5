//! Dense matrix multiply: `C = alpha * A * B + beta * C` for `f32` and `f64`.
//!
//! The CPU path is the `gemm` crate (packed, cache-blocked, rayon-parallel,
//! with micro-kernels for AVX-512, AVX2/FMA and a portable fallback, chosen at
//! run time). It was measured against matrixmultiply and OpenBLAS on the same
//! machine: see BENCHMARKS.md. Any strides work, so transposed operands are
//! just transposed views (`a.t()`), with no copy.
//!
//! The GPU path (a CUDA GPU, or the emulated one) is the tiled kernel of
//! `kernels/gemm.cu`, or cuBLAS ([`GemmBackend`]), both through the device
//! layer's checked launchers. [`gemm()`] copies host views to the device and
//! back; [`gemm_device`] works on matrices that stay in device memory.

use ndarray::{ArrayView2, ArrayViewMut2};

pub use crate::device::DeviceMatrix;
use crate::device::{Device, DeviceBuffer, GemmElement, cpu, cublas, launch};
use crate::error::Result;

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
    match backend {
        GemmBackend::Tessera => launch::gemm::gemm(alpha, &a, &b, beta, c, (c_offset, c_ld)),
        GemmBackend::Cublas => cublas::gemm(alpha, &a, &b, beta, c, (c_offset, c_ld)),
    }
}

/// Copies rows x cols of a row-major device matrix into a contiguous one
/// (`kernels/gemm.cu`'s pack kernel): the column panels of SUMMA.
pub fn pack_device<T: Float>(src: DeviceMatrix<'_, T>, dst: &mut DeviceBuffer<T>) -> Result<()> {
    let _span = crate::trace::compute("pack");
    launch::gemm::pack(&src, dst)
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

/// [`gemm()`] on a GPU-like device: copies the operands there, multiplies,
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
    + GemmElement
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
/// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch).
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

/// [`gemm()`] with a choice of GPU GEMM (ignored on the CPU).
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
    cpu::check_shapes(a.dim(), b.dim(), c.dim())?;
    match device {
        Device::Cpu => gemm_cpu(alpha, a, b, beta, c.view_mut()),
        Device::Cuda(_) | Device::Emulated => gemm_on_device(device, backend, alpha, a, b, beta, c),
    }
}

fn gemm_cpu<T: Float>(
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
    if k == 0 {
        // A * B is an m x n matrix of zeros.
        if beta == T::zero() {
            c.fill(T::zero());
        } else {
            c.mapv_inplace(|x| beta * x);
        }
        return Ok(());
    }
    let threads = if m * n * k >= PARALLEL_THRESHOLD && rayon::current_num_threads() > 1 {
        rayon::current_num_threads()
    } else {
        1
    };
    cpu::gemm(alpha, a, b, beta, c, threads)
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
    use crate::Error;
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
