//! The CPU's raw calls: the `gemm` crate's matrix multiply, behind a safe
//! function that takes ndarray views and checks their shapes, and the
//! huge-page advice for large host buffers.

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

/// `n` zeroed values in a new allocation whose pages the kernel may back
/// with transparent huge pages (`madvise(MADV_HUGEPAGE)`, where the system
/// leaves huge pages to the program): the first write to a large buffer
/// then faults in 2 MiB at a time instead of 4 KiB (15% of a 1e8-key
/// sort's time on the machine of BENCHMARKS.md). Advice the kernel refuses
/// (huge pages off, another page size) leaves ordinary pages.
pub(crate) fn zeroed_vec_huge<T: bytemuck::Pod>(n: usize) -> Vec<T> {
    let mut v: Vec<T> = bytemuck::zeroed_vec(n);
    let bytes = n * size_of::<T>();
    if bytes >= HUGE {
        let page = 4096;
        let addr = v.as_mut_ptr() as usize;
        let start = addr.next_multiple_of(page);
        let end = (addr + bytes) / page * page;
        if end > start {
            // SAFETY: [start, end) lies within the vector's allocation,
            // which this function owns; MADV_HUGEPAGE only advises the
            // kernel how to back those pages and changes no contents.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    v
}

/// Buffers from this size up are worth huge pages (a few of them).
const HUGE: usize = 8 << 20;

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn large_zeroed_buffers_are_zero_and_advised_to_use_huge_pages() {
        let n = (HUGE / 8) * 2 + 3;
        let mut v: Vec<u64> = zeroed_vec_huge(n);
        assert_eq!(v.len(), n);
        assert!(v.iter().all(|&x| x == 0));
        v[n - 1] = 7;
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        if thp.is_empty() || thp.contains("[never]") {
            return; // No huge pages on this system: nothing to advise.
        }
        // The mapping that holds the buffer carries the advice ("hg").
        let addr = v.as_ptr() as usize + 4096;
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        let mut flags = None;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ')
                && let Some((lo, hi)) = range.split_once('-')
                && let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = lo <= addr && addr < hi;
            } else if inside && let Some(f) = line.strip_prefix("VmFlags:") {
                flags = Some(f.to_string());
            }
        }
        let flags = flags.expect("the buffer's mapping is listed");
        assert!(
            flags.split_whitespace().any(|f| f == "hg"),
            "no huge-page advice: {flags}"
        );
    }

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
