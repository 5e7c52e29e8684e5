//! The CPU's one raw-pointer call: the `gemm` crate's matrix multiply,
//! behind a safe function that takes ndarray views and checks their shapes.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::matrix::GemmElement;
use crate::error::{Error, Result};

/// `C = alpha * A * B + beta * C` on the CPU cores by the `gemm` crate
/// (packed, cache-blocked micro-kernels chosen at run time), on `threads`
/// rayon threads (1: on this thread). Views of any strides, negative ones
/// included; with `beta == 0`, C is not read. Shapes that do not conform
/// (`A: m x k`, `B: k x n`, `C: m x n`) are an error.
pub(crate) fn gemm<T: GemmElement>(
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    mut c: ArrayViewMut2<'_, T>,
    threads: usize,
) -> Result<()> {
    let (m, k, n) = check_shapes(a.dim(), b.dim(), c.dim())?;
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let (a_rs, a_cs) = (a.strides()[0], a.strides()[1]);
    let (b_rs, b_cs) = (b.strides()[0], b.strides()[1]);
    let (c_rs, c_cs) = (c.strides()[0], c.strides()[1]);
    // SAFETY: the pointers and strides describe the three views exactly
    // (ndarray's as_ptr is the element at [0, 0], and the strides are in
    // elements, of either sign), so every element the crate touches for
    // these m, n, k is an element of its view; the shapes were checked to
    // conform above; `c` is borrowed mutably, so it aliases neither `a` nor
    // `b`. `T` is f32 or f64 (sealed), which the crate supports. The crate
    // computes dst = alpha_g * dst + beta_g * lhs * rhs, reading dst only
    // when read_dst is true: ours is alpha_g = beta, beta_g = alpha.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs,
            c_rs,
            beta != T::zeroed(),
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
    Ok(())
}

/// The dimensions `(m, k, n)` of `C = A B` from the shapes of A, B and C
/// (`A: m x k`, `B: k x n`, `C: m x n`), or a [`Error::ShapeMismatch`]
/// saying what was passed.
pub(crate) fn check_shapes(
    (m, k): (usize, usize),
    (k2, n): (usize, usize),
    (c_rows, c_cols): (usize, usize),
) -> Result<(usize, usize, usize)> {
    if k != k2 || (c_rows, c_cols) != (m, n) {
        return Err(Error::ShapeMismatch {
            op: "gemm",
            expected: "A: m x k, B: k x n, C: m x n".into(),
            got: format!("A: {m} x {k}, B: {k2} x {n}, C: {c_rows} x {c_cols}"),
        });
    }
    Ok((m, k, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn shapes_that_do_not_conform_are_an_error() {
        let a = Array2::<f64>::zeros((2, 3));
        let b = Array2::<f64>::zeros((2, 3));
        let mut c = Array2::<f64>::zeros((2, 3));
        let e = gemm(1.0, a.view(), b.view(), 0.0, c.view_mut(), 1).unwrap_err();
        assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
        let b = Array2::<f64>::ones((3, 2));
        let e = gemm(1.0, a.view(), b.view(), 0.0, c.view_mut(), 1).unwrap_err();
        assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
        let mut c = Array2::<f64>::from_elem((2, 2), f64::NAN);
        let a = Array2::<f64>::ones((2, 3));
        gemm(2.0, a.view(), b.view(), 0.0, c.view_mut(), 1).unwrap();
        assert!(c.iter().all(|&x| x == 6.0), "{c:?}");
    }
}
