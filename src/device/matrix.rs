//! Matrices in device memory, as the GEMM kernels and cuBLAS take them, and
//! the checks that keep those calls inside their buffers.

use super::DeviceBuffer;
use crate::error::{Error, Result};

mod sealed {
    /// Which of the two element types; only f32 and f64 implement it.
    pub trait Sealed {
        /// Whether the type is f64 (else f32).
        const DOUBLE: bool;
    }
}

/// The element types of the GEMMs of the device layer (Tessera's kernel,
/// cuBLAS, and the `gemm` crate on the CPU): `f32` and `f64`. Sealed.
pub trait GemmElement: bytemuck::Pod + PartialEq + sealed::Sealed {}

impl sealed::Sealed for f32 {
    const DOUBLE: bool = false;
}
impl sealed::Sealed for f64 {
    const DOUBLE: bool = true;
}
impl GemmElement for f32 {}
impl GemmElement for f64 {}

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

/// Checks that an operand lies inside its buffer (every element
/// `offset + i * ld + j`, `i < rows`, `j < cols`, below `buf_len`, with
/// `ld >= cols`) and that its sizes fit the kernels' 32-bit integers.
pub(crate) fn check_operand(
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

/// The sizes `(m, k, n)` of `C = A B` after checking that the shapes
/// conform, that A, B and C (`m x n` at `c_offset`, rows `c_ld` apart) lie
/// inside their buffers with sizes below 2^31, and that all three are on
/// one device: what makes a GEMM on these operands stay in bounds.
pub(crate) fn check_gemm<T: bytemuck::Pod>(
    a: &DeviceMatrix<'_, T>,
    b: &DeviceMatrix<'_, T>,
    c: &DeviceBuffer<T>,
    (c_offset, c_ld): (usize, usize),
) -> Result<(usize, usize, usize)> {
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
    Ok((m, k, n))
}
