//! What a device must do for Tessera's device paths: memory, copies, kernel
//! launches, on raw device addresses.
//!
//! Two implementations: a CUDA GPU (`device/cuda.rs`) and the emulated GPU
//! (`device/emulated.rs`), whose memory is host memory and whose kernels run
//! through the CPU emulator library, so that every device code path above
//! this trait is tested on machines without a GPU. `device::backend_of`
//! picks one for a [`Device`](super::Device); this file depends on neither.
//!
//! Everything here that takes a raw address is `unsafe`: an address says
//! nothing about the allocation it points into, so the caller promises what
//! the compiler cannot check. The safe layer above is
//! [`DeviceBuffer`](super::DeviceBuffer) (which checks ranges against its
//! length) and the typed kernel launchers of `device::launch`.

use std::ffi::c_void;

use super::kernels::Entry;
use crate::error::Result;

/// A device address (a `CUdeviceptr`, or a host address on the emulated
/// device).
pub(crate) type Addr = u64;

/// Grid or block dimensions.
pub(crate) type Dim3 = (u32, u32, u32);

/// Memory, copies and launches on one device, in the order they are issued
/// (one stream per device and process).
///
/// A *live range* below is `bytes` bytes starting at an address inside an
/// allocation that this backend's [`Backend::alloc`] returned and that has
/// not been passed to [`Backend::free`], wholly inside that allocation.
pub(crate) trait Backend: Send + Sync {
    /// Allocates `bytes` (at least 256-byte aligned; 0 bytes gives a valid,
    /// unusable address).
    fn alloc(&self, bytes: usize) -> Result<Addr>;

    /// Frees an allocation, after the work already issued on it.
    ///
    /// # Safety
    ///
    /// `addr` was returned by [`Backend::alloc`] of this backend for `bytes`
    /// bytes and is freed once; nothing issued after this call uses it.
    unsafe fn free(&self, addr: Addr, bytes: usize);

    /// Copies host memory to the device; returns when `src` may be reused.
    ///
    /// # Safety
    ///
    /// `dst .. dst + src.len()` is a live range of this backend, and no host
    /// thread reads or writes it during the call (on the emulated device it
    /// is host memory).
    unsafe fn upload(&self, dst: Addr, src: &[u8]) -> Result<()>;

    /// Copies device memory to the host; returns when `dst` holds it.
    ///
    /// # Safety
    ///
    /// `src .. src + dst.len()` is a live range of this backend, and no host
    /// thread writes it during the call.
    unsafe fn download(&self, dst: &mut [u8], src: Addr) -> Result<()>;

    /// Copies between device addresses (stream-ordered).
    ///
    /// # Safety
    ///
    /// `src .. src + bytes` and `dst .. dst + bytes` are live ranges of this
    /// backend that do not overlap, and no host thread writes the source or
    /// touches the destination during the call.
    unsafe fn copy(&self, dst: Addr, src: Addr, bytes: usize) -> Result<()>;

    /// Sets `bytes` bytes to zero (stream-ordered).
    ///
    /// # Safety
    ///
    /// `dst .. dst + bytes` is a live range of this backend that no host
    /// thread touches during the call.
    unsafe fn zero(&self, dst: Addr, bytes: usize) -> Result<()>;

    /// Launches a kernel (stream-ordered); `params` point at each argument,
    /// as for `cuLaunchKernel`.
    ///
    /// # Safety
    ///
    /// - `params` holds exactly one pointer per parameter of `entry`, in
    ///   order, each pointing at a live, initialised value of that
    ///   parameter's type (its [`Entry::params`]) until the call returns.
    /// - Every device pointer among the arguments is null where the kernel
    ///   allows it, or an address in a live allocation of this backend; and
    ///   under this grid and block every element the kernel reads or writes,
    ///   as `kernels/*.cu` documents it for these argument values, lies in a
    ///   live range of this backend (the data-dependent conditions the
    ///   kernel documents hold too: sorted inputs, offsets from the matching
    ///   histogram, permutation indices in bounds, ...).
    /// - `grid` and `block` are the launch shape the kernel documents (the
    ///   kernels index shared memory by thread on that assumption).
    /// - No host thread touches memory the kernel writes, or writes memory
    ///   it reads, until the stream has finished it.
    unsafe fn launch(
        &self,
        entry: &'static Entry,
        grid: Dim3,
        block: Dim3,
        params: &[*mut c_void],
    ) -> Result<()>;

    /// Waits for everything issued so far.
    fn synchronize(&self) -> Result<()>;
}
