//! The launchers of `kernels/gemm.cu`: the tiled GEMM and panel packing.

use super::{Params, blocks, same_device};
use crate::device::DeviceBuffer;
use crate::device::kernels::{GEMM_F32, GEMM_F64, PACK_F32, PACK_F64};
use crate::device::matrix::{DeviceMatrix, GemmElement, check_gemm, check_operand};
use crate::error::{Error, Result};

/// Threads per block of the GEMM kernels.
const GEMM_THREADS: u32 = 256;

/// `C = alpha * A * B + beta * C` by `tessera_gemm_f32` / `_f64`, C being
/// `m x n` at element `c_offset` of `c`, rows `c_ld` apart; with
/// `beta == 0`, C is not read. Stream-ordered: returns once the work is
/// queued.
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
    let (entry, tile) = if T::DOUBLE {
        (&GEMM_F64, 64)
    } else {
        (&GEMM_F32, 128)
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
    // The scalars as the kernel's own type (`T` is that type: sealed).
    let scalar = |p: Params, x: T| {
        if T::DOUBLE {
            p.f64(bytemuck::cast(x))
        } else {
            p.f32(bytemuck::cast(x))
        }
    };
    // The sizes fit in an i32 (check_gemm).
    let params = Params::new().i32(m as i32).i32(n as i32).i32(k as i32);
    let params = scalar(params, alpha)
        .ptr(a.buf.addr_at(a.offset))
        .i32(a.ld as i32)
        .ptr(b.buf.addr_at(b.offset))
        .i32(b.ld as i32);
    let params = scalar(params, beta)
        .ptr(c.addr_at(c_offset))
        .i32(c_ld as i32);
    // SAFETY: check_gemm found A (m x k), B (k x n) and C (m x n), with
    // their leading dimensions, inside their buffers, all on one device
    // (so on `c`'s backend), with every size below 2^31; the kernel reads
    // A and B and writes C only within those m x k, k x n and m x n
    // regions, C's only when it is written. C is borrowed mutably, so it
    // overlaps neither A nor B (which the kernel reads through the
    // read-only path) and no host thread touches it. The element type is
    // the kernel's (f64 for the _f64 kernel, f32 for the other), and grid
    // and block are the shape gemm.cu documents for that tile size.
    unsafe { params.launch(c.backend(), entry, grid, (GEMM_THREADS, 1, 1)) }
}

/// Copies `src` (rows x cols of a row-major device matrix) into the start
/// of `dst`, contiguous (`tessera_pack_f32` / `_f64`): the column panels of
/// SUMMA.
pub(crate) fn pack<T: GemmElement>(
    src: &DeviceMatrix<'_, T>,
    dst: &mut DeviceBuffer<T>,
) -> Result<()> {
    let (rows, cols) = (src.rows, src.cols);
    check_operand("source", src.buf.len(), src.offset, rows, cols, src.ld)?;
    check_operand("destination", dst.len(), 0, rows, cols, cols)?;
    same_device("pack_device", &[dst.device(), src.buf.device()])?;
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let entry = if T::DOUBLE { &PACK_F64 } else { &PACK_F32 };
    let grid = (
        blocks(cols as u64, 32, "pack")?,
        blocks(rows as u64, 8, "pack")?,
        1,
    );
    // The sizes fit in an i32 (check_operand).
    let params = Params::new()
        .i32(rows as i32)
        .i32(cols as i32)
        .ptr(src.buf.addr_at(src.offset))
        .i32(src.ld as i32)
        .ptr(dst.addr_at(0))
        .i32(cols as i32);
    // SAFETY: the source's rows x cols elements (ld apart from its offset)
    // and the destination's first rows * cols elements were checked to lie
    // inside their buffers, which are on one device; the kernel touches
    // nothing else, and `dst` is borrowed mutably, so it is distinct from
    // the source and no host thread touches it. The element type is the
    // kernel's, and (32, 8, 1) blocks are the documented shape (its loops
    // are grid-strided, so any grid is in bounds).
    unsafe { params.launch(dst.backend(), entry, grid, (32, 8, 1)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Device;

    const EMU: Device = Device::Emulated;

    // Emulated buffers are host memory, made without the emulator library;
    // none of these calls may get as far as a launch (which would need it).
    #[test]
    fn operands_outside_their_buffers_are_errors_before_any_launch() {
        let a = DeviceBuffer::<f32>::zeros(EMU, 12).unwrap();
        let b = DeviceBuffer::<f32>::zeros(EMU, 12).unwrap();
        let mut c = DeviceBuffer::<f32>::zeros(EMU, 9).unwrap();
        let m = |buf, offset, rows, cols, ld| DeviceMatrix {
            buf,
            offset,
            rows,
            cols,
            ld,
        };
        let cases = [
            // (A, B, C offset and ld, what the error says)
            (
                m(&a, 1, 3, 4, 4),
                m(&b, 0, 4, 3, 3),
                (0, 3),
                "A (3 x 4, ld 4, offset 1)",
            ),
            (
                m(&a, 0, 3, 4, 3),
                m(&b, 0, 4, 3, 3),
                (0, 3),
                "A (3 x 4, ld 3",
            ),
            (
                m(&a, 0, 3, 4, 4),
                m(&b, 0, 4, 3, 4),
                (0, 3),
                "B (4 x 3, ld 4",
            ),
            (
                m(&a, 0, 3, 4, 4),
                m(&b, 0, 4, 3, 3),
                (1, 3),
                "C (3 x 3, ld 3, offset 1)",
            ),
            (
                m(&a, 0, 3, 4, 4),
                m(&b, 0, 4, 3, 3),
                (0, 4),
                "C (3 x 3, ld 4",
            ),
            (
                m(&a, 0, 3, 4, 4),
                m(&b, 0, 4, 3, 3),
                (usize::MAX, 3),
                "C (3 x 3",
            ),
        ];
        for (a, b, c_at, what) in cases {
            let e = gemm(1.0, &a, &b, 0.0, &mut c, c_at).unwrap_err();
            assert!(
                matches!(&e, Error::InvalidArgument { message, .. } if message.contains(what)),
                "{e}"
            );
        }
        let e = gemm(
            1.0,
            &m(&a, 0, 3, 4, 4),
            &m(&b, 0, 3, 4, 4),
            0.0,
            &mut c,
            (0, 3),
        )
        .unwrap_err();
        assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
        let e = pack(&m(&a, 0, 3, 4, 4), &mut c).unwrap_err();
        assert!(e.to_string().contains("destination"), "{e}");
        let e = pack(&m(&a, 4, 3, 4, 4), &mut c).unwrap_err();
        assert!(e.to_string().contains("source"), "{e}");
        // cuBLAS refuses a device that is not a CUDA GPU, after the checks.
        let e = crate::device::cublas::gemm(
            1.0,
            &m(&a, 0, 3, 3, 4),
            &m(&b, 0, 3, 3, 3),
            0.0,
            &mut c,
            (0, 3),
        )
        .unwrap_err();
        assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    }
}
