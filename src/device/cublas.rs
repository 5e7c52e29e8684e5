//! cuBLAS GEMM on a CUDA GPU, on the stream the GPU's other work goes to,
//! behind one safe, checked function. The only file that names
//! `cudarc::cublas`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use cudarc::cublas::{result as blas, sys};

use super::matrix::{DeviceMatrix, GemmElement, check_gemm};
use super::{Device, DeviceBuffer, cuda};
use crate::error::{Error, Result};

/// A cuBLAS handle bound to one GPU's stream.
struct Handle(sys::cublasHandle_t);

// SAFETY: a cuBLAS handle may be used from any thread as long as calls on it
// are not concurrent; it is only used under the `HANDLES` lock.
unsafe impl Send for Handle {}

fn blas_error(call: &'static str) -> impl Fn(blas::CublasError) -> Error {
    move |e| Error::Cuda {
        call,
        message: format!("{e:?}"),
    }
}

/// Runs `f` with the cuBLAS handle of GPU `ordinal`, created at first use
/// and bound to that GPU's stream (one per process and GPU, like the GPU
/// itself), with the GPU's context current.
fn with_handle<R>(ordinal: usize, f: impl FnOnce(sys::cublasHandle_t) -> Result<R>) -> Result<R> {
    static HANDLES: OnceLock<Mutex<HashMap<usize, Handle>>> = OnceLock::new();
    let gpu = cuda::gpu(ordinal)?;
    gpu.bind()?;
    let mut handles = HANDLES
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .expect("cuBLAS lock");
    // The lock is held until `f` returns: calls on a handle must not be
    // concurrent.
    let handle = match handles.entry(ordinal) {
        std::collections::hash_map::Entry::Occupied(e) => e.get().0,
        std::collections::hash_map::Entry::Vacant(slot) => {
            // SAFETY: only tries to load the library.
            if !unsafe { sys::is_culib_present() } {
                return Err(Error::Unsupported {
                    op: "gemm",
                    device: "cuBLAS".into(),
                    reason: "libcublas.so.12 was not found: install the CUDA toolkit's cuBLAS (or `pip install nvidia-cublas-cu12` and add its lib folder to LD_LIBRARY_PATH), or use --gemm-backend tessera".into(),
                });
            }
            let handle = blas::create_handle().map_err(blas_error("cublasCreate"))?;
            // SAFETY: a fresh handle, and the live stream of the GPU whose
            // context is current; the GPU (and so the stream) lives for the
            // rest of the process, as the handle does.
            unsafe { blas::set_stream(handle, gpu.cu_stream() as _) }
                .map_err(blas_error("cublasSetStream"))?;
            slot.insert(Handle(handle)).0
        }
    };
    f(handle)
}

/// `C = alpha * A * B + beta * C` by cuBLAS, on the CUDA GPU that holds the
/// operands, all row-major, C being `m x n` at element `c_offset` of `c`,
/// rows `c_ld` apart; with `beta == 0`, C is not read. Stream-ordered.
///
/// cuBLAS is column-major: a row-major C (m x n) is a column-major C^T, and
/// C^T = B^T A^T, so cuBLAS multiplies B by A with the dimensions swapped
/// and no transposes.
pub(crate) fn gemm<T: GemmElement>(
    alpha: T,
    a: &DeviceMatrix<'_, T>,
    b: &DeviceMatrix<'_, T>,
    beta: T,
    c: &mut DeviceBuffer<T>,
    (c_offset, c_ld): (usize, usize),
) -> Result<()> {
    let (m, k, n) = check_gemm(a, b, c, (c_offset, c_ld))?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    let Device::Cuda(ordinal) = c.device() else {
        return Err(Error::Unsupported {
            op: "gemm",
            device: c.device().to_string(),
            reason: "cuBLAS needs a CUDA GPU: use --gemm-backend tessera".into(),
        });
    };
    // The sizes fit in an i32 (check_gemm).
    let (m, k, n) = (m as i32, k as i32, n as i32);
    let (lda, ldb, ldc) = (a.ld.max(1) as i32, b.ld.max(1) as i32, c_ld.max(1) as i32);
    let (pa, pb, pc) = (
        a.buf.addr_at(a.offset),
        b.buf.addr_at(b.offset),
        c.addr_at(c_offset),
    );
    let op = sys::cublasOperation_t::CUBLAS_OP_N;
    with_handle(ordinal, |h| {
        // SAFETY: the handle is bound to the stream of GPU `ordinal`, where
        // all three operands live (check_gemm: one device) and where the
        // work producing them was issued. check_gemm found A (m x k, lda),
        // B (k x n, ldb) and C (m x n, ldc) inside their buffers with
        // ld >= cols, which as column-major matrices are A^T (k x m), B^T
        // (n x k) and C^T (n x m) with leading dimensions >= their rows:
        // exactly what cuBLAS reads and writes. C is borrowed mutably, so
        // distinct from A and B and untouched by the host. The pointers'
        // element type is `T` (f64 for dgemm, else f32: sealed), and alpha
        // and beta are host scalars that outlive the call.
        unsafe {
            if T::DOUBLE {
                let (al, be): (f64, f64) = (bytemuck::cast(alpha), bytemuck::cast(beta));
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
            } else {
                let (al, be): (f32, f32) = (bytemuck::cast(alpha), bytemuck::cast(beta));
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
            }
        }
        .map_err(blas_error("cublasGemm"))
    })
}
