//! How Rust element types map onto MPI datatypes.
//!
//! Data-movement calls (send, broadcast, gather, all-to-all, ...) accept any
//! [`bytemuck::Pod`] type: the bytes are moved unchanged, so a `#[repr(C)]`
//! struct of numbers travels as well as an `f64`. They use an MPI datatype whose
//! extent is `size_of::<T>()`, so counts are element counts and the 2^31 - 1
//! limit of MPI's `int` counts applies to elements, not bytes (MPI 4.1 §5.1).
//!
//! Reductions need MPI to understand the numbers, so they take a
//! [`Reducible`] type: the fixed-width integers and the two IEEE floats.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::raw::{c_int, c_void};

use mpi::ffi;

use crate::error::{Error, Result};

/// A reduction operation for reduce, all-reduce, scan and reduce-scatter.
///
/// `LogicalAnd`, `LogicalOr` and `LogicalXor` treat non-zero as true and give
/// 0 or 1 wherever two values are combined; as in MPI, a communicator of one
/// rank returns its input unchanged. They and the bitwise operations are
/// defined for integers only (MPI 4.1 §6.9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// Sum (`MPI_SUM`).
    Sum,
    /// Product (`MPI_PROD`).
    Product,
    /// Minimum (`MPI_MIN`).
    Min,
    /// Maximum (`MPI_MAX`).
    Max,
    /// Logical and (`MPI_LAND`), integers only.
    LogicalAnd,
    /// Logical or (`MPI_LOR`), integers only.
    LogicalOr,
    /// Logical exclusive or (`MPI_LXOR`), integers only.
    LogicalXor,
    /// Bitwise and (`MPI_BAND`), integers only.
    BitAnd,
    /// Bitwise or (`MPI_BOR`), integers only.
    BitOr,
    /// Bitwise exclusive or (`MPI_BXOR`), integers only.
    BitXor,
}

impl ReduceOp {
    /// Every operation, in a fixed order (used for codes exchanged between ranks).
    pub const ALL: [ReduceOp; 10] = [
        ReduceOp::Sum,
        ReduceOp::Product,
        ReduceOp::Min,
        ReduceOp::Max,
        ReduceOp::LogicalAnd,
        ReduceOp::LogicalOr,
        ReduceOp::LogicalXor,
        ReduceOp::BitAnd,
        ReduceOp::BitOr,
        ReduceOp::BitXor,
    ];

    /// Whether the operation needs integer elements.
    pub fn integer_only(self) -> bool {
        !matches!(
            self,
            ReduceOp::Sum | ReduceOp::Product | ReduceOp::Min | ReduceOp::Max
        )
    }

    pub(crate) fn code(self) -> i64 {
        ReduceOp::ALL.iter().position(|&o| o == self).unwrap_or(0) as i64 + 1
    }

    pub(crate) fn raw(self) -> ffi::MPI_Op {
        // SAFETY: the RSMPI_* handles are constants initialised by the MPI
        // library; reading them has no side effect.
        unsafe {
            match self {
                ReduceOp::Sum => ffi::RSMPI_SUM,
                ReduceOp::Product => ffi::RSMPI_PROD,
                ReduceOp::Min => ffi::RSMPI_MIN,
                ReduceOp::Max => ffi::RSMPI_MAX,
                ReduceOp::LogicalAnd => ffi::RSMPI_LAND,
                ReduceOp::LogicalOr => ffi::RSMPI_LOR,
                ReduceOp::LogicalXor => ffi::RSMPI_LXOR,
                ReduceOp::BitAnd => ffi::RSMPI_BAND,
                ReduceOp::BitOr => ffi::RSMPI_BOR,
                ReduceOp::BitXor => ffi::RSMPI_BXOR,
            }
        }
    }

    /// Applies the operation to two values on the host: the reference that
    /// tests compare MPI's result with, and the identity used for the first
    /// rank of an exclusive scan.
    pub fn apply<T: Reducible>(self, a: T, b: T) -> T {
        T::combine(self, a, b)
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Element types MPI can reduce: `i8`..`i64`, `u8`..`u64`, `f32`, `f64`.
///
/// Sealed: MPI's built-in reductions are defined for these types only.
pub trait Reducible: bytemuck::Pod + PartialOrd + sealed::Sealed {
    /// The type's name, for error messages.
    const NAME: &'static str;
    /// Whether the type is an integer (logical and bitwise reductions allowed).
    const INTEGER: bool;
    /// The matching MPI datatype.
    fn mpi_datatype() -> ffi::MPI_Datatype;
    /// The identity of `op` for this type (0 for a sum, 1 for a product, the
    /// largest value for a minimum, ...).
    fn identity(op: ReduceOp) -> Self;
    /// `op` applied to two values, as MPI defines it.
    fn combine(op: ReduceOp, a: Self, b: Self) -> Self;
    /// A small code naming the type, exchanged to catch ranks that disagree.
    fn type_code() -> i64;
}

macro_rules! reducible_int {
    ($($t:ty => $dt:ident, $code:expr);* $(;)?) => {$(
        impl sealed::Sealed for $t {}
        impl Reducible for $t {
            const NAME: &'static str = stringify!($t);
            const INTEGER: bool = true;
            fn mpi_datatype() -> ffi::MPI_Datatype {
                // SAFETY: a constant handle initialised by the MPI library.
                unsafe { ffi::$dt }
            }
            fn identity(op: ReduceOp) -> Self {
                match op {
                    ReduceOp::Sum | ReduceOp::LogicalOr | ReduceOp::LogicalXor
                    | ReduceOp::BitOr | ReduceOp::BitXor => 0,
                    ReduceOp::Product | ReduceOp::LogicalAnd => 1,
                    ReduceOp::Min => <$t>::MAX,
                    ReduceOp::Max => <$t>::MIN,
                    ReduceOp::BitAnd => !0,
                }
            }
            fn combine(op: ReduceOp, a: Self, b: Self) -> Self {
                match op {
                    ReduceOp::Sum => a.wrapping_add(b),
                    ReduceOp::Product => a.wrapping_mul(b),
                    ReduceOp::Min => a.min(b),
                    ReduceOp::Max => a.max(b),
                    ReduceOp::LogicalAnd => ((a != 0) && (b != 0)) as $t,
                    ReduceOp::LogicalOr => ((a != 0) || (b != 0)) as $t,
                    ReduceOp::LogicalXor => ((a != 0) != (b != 0)) as $t,
                    ReduceOp::BitAnd => a & b,
                    ReduceOp::BitOr => a | b,
                    ReduceOp::BitXor => a ^ b,
                }
            }
            fn type_code() -> i64 { $code }
        }
    )*};
}

reducible_int! {
    i8 => RSMPI_INT8_T, 1;
    i16 => RSMPI_INT16_T, 2;
    i32 => RSMPI_INT32_T, 3;
    i64 => RSMPI_INT64_T, 4;
    u8 => RSMPI_UINT8_T, 5;
    u16 => RSMPI_UINT16_T, 6;
    u32 => RSMPI_UINT32_T, 7;
    u64 => RSMPI_UINT64_T, 8;
}

macro_rules! reducible_float {
    ($($t:ty => $dt:ident, $code:expr);* $(;)?) => {$(
        impl sealed::Sealed for $t {}
        impl Reducible for $t {
            const NAME: &'static str = stringify!($t);
            const INTEGER: bool = false;
            fn mpi_datatype() -> ffi::MPI_Datatype {
                // SAFETY: a constant handle initialised by the MPI library.
                unsafe { ffi::$dt }
            }
            fn identity(op: ReduceOp) -> Self {
                match op {
                    ReduceOp::Product => 1.0,
                    ReduceOp::Min => <$t>::INFINITY,
                    ReduceOp::Max => <$t>::NEG_INFINITY,
                    _ => 0.0,
                }
            }
            fn combine(op: ReduceOp, a: Self, b: Self) -> Self {
                match op {
                    ReduceOp::Sum => a + b,
                    ReduceOp::Product => a * b,
                    ReduceOp::Min => if b < a { b } else { a },
                    ReduceOp::Max => if b > a { b } else { a },
                    // Not reachable through the collectives, which refuse
                    // integer-only operations on floats before calling MPI.
                    _ => a,
                }
            }
            fn type_code() -> i64 { $code }
        }
    )*};
}

reducible_float! {
    f32 => RSMPI_FLOAT, 9;
    f64 => RSMPI_DOUBLE, 10;
}

/// Refuses integer-only reductions on float elements.
pub(crate) fn check_reduction<T: Reducible>(op: &'static str, reduction: ReduceOp) -> Result<()> {
    if reduction.integer_only() && !T::INTEGER {
        return Err(Error::UnsupportedReduction {
            op,
            reduction: format!("{reduction:?}"),
            dtype: T::NAME,
        });
    }
    Ok(())
}

thread_local! {
    // Contiguous byte datatypes by element size, committed once and kept for
    // the life of the process (MPI_Finalize releases them).
    static BYTE_TYPES: RefCell<HashMap<usize, usize>> = RefCell::new(HashMap::new());
}

/// An MPI datatype whose extent is `size_of::<T>()` bytes, for moving `T`
/// elements unchanged.
pub(crate) fn element_datatype<T: bytemuck::Pod>() -> ffi::MPI_Datatype {
    const {
        assert!(
            std::mem::size_of::<T>() != 0,
            "zero-sized element types cannot be sent through MPI"
        )
    };
    let size = std::mem::size_of::<T>();
    // SAFETY: reading constant handles initialised by the MPI library.
    unsafe {
        match size {
            1 => return ffi::RSMPI_UINT8_T,
            2 => return ffi::RSMPI_UINT16_T,
            4 => return ffi::RSMPI_UINT32_T,
            8 => return ffi::RSMPI_UINT64_T,
            _ => {}
        }
    }
    BYTE_TYPES.with(|cache| {
        let mut cache = cache.borrow_mut();
        let handle = *cache.entry(size).or_insert_with(|| {
            // SAFETY: a constant handle; overwritten by MPI_Type_contiguous.
            let mut dt: ffi::MPI_Datatype = unsafe { ffi::RSMPI_DATATYPE_NULL };
            // SAFETY: MPI is initialised (every caller holds a Comm); `dt` is a
            // valid out-pointer; the new type is committed before first use.
            unsafe {
                ffi::MPI_Type_contiguous(size as c_int, ffi::RSMPI_UINT8_T, &mut dt);
                ffi::MPI_Type_commit(&mut dt);
            }
            dt.0 as usize
        });
        ffi::MPI_Datatype(handle as *mut ffi::ompi_datatype_t)
    })
}

/// Stands in for the address of an empty buffer. An empty Rust slice's
/// pointer is a dangling, aligned address such as `0x1`, and Open MPI reads
/// `(void *) 1` as `MPI_IN_PLACE`: an empty `&[u8]` would turn a gather into
/// an in-place one. MPI never reads or writes a buffer of count 0, so any real
/// address will do.
static EMPTY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The address MPI gets for a send buffer.
pub(crate) fn send_ptr<T>(s: &[T]) -> *const c_void {
    if s.is_empty() {
        EMPTY.as_ptr() as *const c_void
    } else {
        s.as_ptr() as *const c_void
    }
}

/// The address MPI gets for a receive buffer.
pub(crate) fn recv_ptr<T>(s: &mut [T]) -> *mut c_void {
    if s.is_empty() {
        EMPTY.as_ptr() as *mut c_void
    } else {
        s.as_mut_ptr() as *mut c_void
    }
}

/// Converts an element count to MPI's `int`, or says why it cannot be.
pub(crate) fn to_count(op: &'static str, count: usize) -> Result<c_int> {
    c_int::try_from(count).map_err(|_| Error::CountOverflow { op, count })
}

/// Converts counts to MPI `int`s and computes their displacements.
pub(crate) fn counts_and_displs(
    op: &'static str,
    counts: &[usize],
) -> Result<(Vec<c_int>, Vec<c_int>)> {
    let mut c = Vec::with_capacity(counts.len());
    let mut d = Vec::with_capacity(counts.len());
    let mut offset = 0usize;
    for &n in counts {
        c.push(to_count(op, n)?);
        d.push(to_count(op, offset)?);
        offset += n;
    }
    Ok((c, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_neutral() {
        for op in ReduceOp::ALL {
            for v in [-7i32, 0, 1, 42, i32::MAX, i32::MIN] {
                let id = i32::identity(op);
                let expected = if matches!(
                    op,
                    ReduceOp::LogicalAnd | ReduceOp::LogicalOr | ReduceOp::LogicalXor
                ) {
                    (v != 0) as i32
                } else {
                    v
                };
                assert_eq!(op.apply(id, v), expected, "{op:?} identity for {v}");
            }
        }
        for op in [
            ReduceOp::Sum,
            ReduceOp::Product,
            ReduceOp::Min,
            ReduceOp::Max,
        ] {
            for v in [-2.5f64, 0.0, 3.0, 1e300] {
                assert_eq!(op.apply(f64::identity(op), v), v, "{op:?} identity for {v}");
            }
        }
    }

    #[test]
    fn integer_only_operations_are_refused_on_floats() {
        assert!(check_reduction::<f32>("t", ReduceOp::BitXor).is_err());
        assert!(check_reduction::<f64>("t", ReduceOp::LogicalAnd).is_err());
        assert!(check_reduction::<u16>("t", ReduceOp::BitXor).is_ok());
        assert!(check_reduction::<f64>("t", ReduceOp::Max).is_ok());
    }

    #[test]
    fn counts_and_displacements() {
        let (c, d) = counts_and_displs("t", &[3, 0, 5, 1]).unwrap();
        assert_eq!(c, vec![3, 0, 5, 1]);
        assert_eq!(d, vec![0, 3, 3, 8]);
        assert!(matches!(
            to_count("t", 1 << 31),
            Err(Error::CountOverflow { count, .. }) if count == 1 << 31
        ));
    }
}
