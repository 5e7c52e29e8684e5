//! The typed, safe kernel launchers: one per kernel of
//! [`kernels`](super::kernels), by file (`gemm.rs`, `sort.rs`).
//!
//! A launcher takes [`DeviceBuffer`](super::DeviceBuffer)s (shared for what
//! the kernel reads, mutable for what it writes) and sizes, checks every
//! length, offset and device against the buffers, returns
//! [`crate::Error::InvalidArgument`] instead of
//! launching out of bounds, and only then builds the arguments and launches,
//! under a `SAFETY:` comment. Conditions on the data that the host cannot
//! check without reading it back (offsets from the histogram of the same
//! keys, sorted merge inputs) are carried by types that only the launchers
//! that establish them can make.
//!
//! [`Params`] is the raw argument list; its `launch` is the one `unsafe`
//! entry to [`Backend::launch`] here, and checks the argument types against
//! the kernel's [`Entry::params`].

use std::ffi::c_void;

use super::Device;
use super::backend::{Addr, Backend, Dim3};
use super::kernels::{Entry, Param};
use crate::error::{Error, Result};

pub(crate) mod gemm;
pub(crate) mod generate;
pub(crate) mod sort;

/// Kernel arguments for a launch, each kept alive until the launch returns,
/// with the parameter type each was added as.
pub(in crate::device) struct Params {
    values: Vec<u64>,
    types: Vec<Param>,
}

impl Params {
    pub(in crate::device) fn new() -> Self {
        Params {
            values: Vec::with_capacity(12),
            types: Vec::with_capacity(12),
        }
    }
    fn push(mut self, ty: Param, v: u64) -> Self {
        self.values.push(v);
        self.types.push(ty);
        self
    }
    /// Adds an `int` argument.
    pub(in crate::device) fn i32(self, v: i32) -> Self {
        self.push(Param::I32, v as u32 as u64)
    }
    /// Adds an `unsigned` argument.
    pub(in crate::device) fn u32(self, v: u32) -> Self {
        self.push(Param::U32, v as u64)
    }
    /// Adds an `unsigned long long` argument.
    pub(in crate::device) fn u64(self, v: u64) -> Self {
        self.push(Param::U64, v)
    }
    /// Adds a device pointer argument. Only a number here: what it must
    /// point at is [`Params::launch`]'s contract.
    pub(in crate::device) fn ptr(self, addr: Addr) -> Self {
        self.push(Param::Ptr, addr)
    }
    /// Adds a null pointer argument (for the kernels that accept one).
    pub(in crate::device) fn null(self) -> Self {
        self.ptr(0)
    }
    /// Adds a `float` argument.
    pub(in crate::device) fn f32(self, v: f32) -> Self {
        self.push(Param::F32, v.to_bits() as u64)
    }
    /// Adds a `double` argument.
    pub(in crate::device) fn f64(self, v: f64) -> Self {
        self.push(Param::F64, v.to_bits())
    }

    /// Launches `entry` on `backend` with these arguments; nothing when the
    /// grid is empty. The arguments' number and types are checked against
    /// `entry`'s parameters (an error, not a launch, when they differ).
    /// Each value sits at the start of its own 8-byte slot, so a pointer to
    /// the slot is a pointer to a 4-byte argument too (little-endian).
    ///
    /// # Safety
    ///
    /// Everything [`Backend::launch`] requires beyond the argument types:
    /// every pointer argument is null where the kernel accepts null, or an
    /// address inside a live allocation of `backend`; under `grid` and
    /// `block` every element the kernel reads or writes for these argument
    /// values (as `kernels/*.cu` documents) lies inside those allocations,
    /// and the kernel's conditions on the data hold; `grid` and `block` are
    /// the shape the kernel documents; and no host thread touches memory the
    /// kernel writes (or writes memory it reads) until the stream has
    /// finished it.
    pub(in crate::device) unsafe fn launch(
        mut self,
        backend: &dyn Backend,
        entry: &'static Entry,
        grid: Dim3,
        block: Dim3,
    ) -> Result<()> {
        if self.types != entry.params {
            return Err(Error::Kernel {
                kernel: entry.name.to_string(),
                call: "launch",
                message: format!(
                    "arguments {:?} do not match the kernel's parameters {:?}",
                    self.types, entry.params
                ),
            });
        }
        if grid.0 == 0 || grid.1 == 0 || grid.2 == 0 {
            return Ok(());
        }
        let params: Vec<*mut c_void> = self
            .values
            .iter_mut()
            .map(|v| v as *mut u64 as *mut c_void)
            .collect();
        // SAFETY: the arguments have exactly the kernel's parameter types
        // (checked above) and live in `self.values` until the call returns;
        // the caller promises the rest of `Backend::launch`'s contract.
        unsafe { backend.launch(entry, grid, block, &params) }
    }
}

/// Threads per block of the sort and generation kernels.
pub(in crate::device) const THREADS: u32 = 256;

/// The block of the sort and generation kernels.
pub(in crate::device) const BLOCK: Dim3 = (THREADS, 1, 1);

/// Grid for the grid-stride kernels: enough blocks of [`THREADS`] threads
/// for `n` items, at most `cap` (the kernels are correct for any grid).
pub(in crate::device) fn stride_grid(n: u64, cap: u64) -> Dim3 {
    (n.div_ceil(THREADS as u64).clamp(1, cap) as u32, 1, 1)
}

/// Blocks needed for `n` items at `per_block` each, as a u32 grid size.
pub(in crate::device) fn blocks(n: u64, per_block: u64, op: &'static str) -> Result<u32> {
    u32::try_from(n.div_ceil(per_block)).map_err(|_| {
        Error::invalid(
            op,
            format!("{n} elements need more than 2^32 - 1 thread blocks"),
        )
    })
}

/// An error unless every buffer of a launch is on the first one's device
/// (one backend: addresses of another device mean nothing to it).
pub(in crate::device) fn same_device(op: &'static str, devices: &[Device]) -> Result<()> {
    match devices.iter().find(|&&d| d != devices[0]) {
        Some(other) => Err(Error::invalid(
            op,
            format!(
                "the buffers are on {} and {}: every buffer of a kernel must be on one device",
                devices[0], other
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::kernels;

    #[test]
    fn arguments_that_do_not_match_the_kernel_are_an_error_not_a_launch() {
        struct NoLaunch;
        impl Backend for NoLaunch {
            fn alloc(&self, _: usize) -> Result<Addr> {
                unreachable!()
            }
            unsafe fn free(&self, _: Addr, _: usize) {}
            unsafe fn upload(&self, _: Addr, _: &[u8]) -> Result<()> {
                unreachable!()
            }
            unsafe fn download(&self, _: &mut [u8], _: Addr) -> Result<()> {
                unreachable!()
            }
            unsafe fn copy(&self, _: Addr, _: Addr, _: usize) -> Result<()> {
                unreachable!()
            }
            unsafe fn zero(&self, _: Addr, _: usize) -> Result<()> {
                unreachable!()
            }
            unsafe fn launch(
                &self,
                _: &'static Entry,
                _: Dim3,
                _: Dim3,
                _: &[*mut c_void],
            ) -> Result<()> {
                panic!("launched")
            }
            fn synchronize(&self) -> Result<()> {
                Ok(())
            }
        }
        // iota takes (unsigned* out, u64 n): an int for n, or a missing
        // argument, never reaches the backend.
        for params in [
            Params::new().null().i32(1),
            Params::new().null(),
            Params::new().null().u64(1).u64(1),
        ] {
            // SAFETY: the argument check fails before anything is launched.
            let e = unsafe { params.launch(&NoLaunch, &kernels::IOTA_U32, (1, 1, 1), (256, 1, 1)) }
                .unwrap_err();
            assert!(e.to_string().contains("tessera_iota_u32"), "{e}");
        }
    }
}
