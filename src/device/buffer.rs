//! Typed memory on a device: the safe face of the raw [`Backend`] copies.
//! Every copy checks its element range against the buffer's length before
//! the unsafe call on raw addresses.

use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;

use bytemuck::Pod;

use super::Device;
use super::backend::{Addr, Backend};
use crate::error::{Error, Result};

/// `len` elements of `T` in a device's memory, freed on drop (in stream
/// order, after the work already issued). Copies to and from the host go
/// through pinned staging buffers in chunks, overlapping the host-side copy
/// with the transfer.
///
/// Whatever writes the buffer's memory (an upload, a kernel launch, an MPI
/// receive) borrows it mutably; reads borrow it shared.
pub struct DeviceBuffer<T: Pod> {
    addr: Addr,
    len: usize,
    device: Device,
    backend: Arc<dyn Backend>,
    _elements: PhantomData<T>,
}

impl<T: Pod> std::fmt::Debug for DeviceBuffer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DeviceBuffer<{}>[{}] on {}",
            std::any::type_name::<T>(),
            self.len,
            self.device
        )
    }
}

impl<T: Pod> DeviceBuffer<T> {
    /// Allocates `len` elements on `device`, every byte zero.
    pub fn zeros(device: Device, len: usize) -> Result<Self> {
        let b = Self::uninit(device, len)?;
        // SAFETY: the whole of the allocation `b` just made and owns, which
        // nothing else can reach yet.
        unsafe { b.backend.zero(b.addr, b.bytes()) }?;
        Ok(b)
    }

    /// Allocates `len` elements whose contents are unspecified (any bit
    /// pattern is a valid `T`, so reading them is not undefined behaviour,
    /// only meaningless).
    pub fn uninit(device: Device, len: usize) -> Result<Self> {
        let backend = super::backend_of(device)?;
        let bytes = len.checked_mul(size_of::<T>()).ok_or_else(|| {
            Error::invalid(
                "DeviceBuffer",
                format!("{len} elements overflow the address space"),
            )
        })?;
        let addr = backend.alloc(bytes)?;
        Ok(DeviceBuffer {
            addr,
            len,
            device,
            backend,
            _elements: PhantomData,
        })
    }

    /// Copies `data` to a new buffer on `device`.
    pub fn from_slice(device: Device, data: &[T]) -> Result<Self> {
        let b = Self::uninit(device, data.len())?;
        // SAFETY: the allocation `b` just made for `data.len()` elements is
        // exactly `size_of_val(data)` bytes, and nothing else can reach it.
        unsafe { b.backend.upload(b.addr, bytemuck::cast_slice(data)) }?;
        Ok(b)
    }

    /// Elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The device the memory is on.
    pub fn device(&self) -> Device {
        self.device
    }

    fn bytes(&self) -> usize {
        self.len * size_of::<T>()
    }

    fn check(&self, op: &'static str, range: &Range<usize>, host: usize) -> Result<()> {
        if range.start > range.end || range.end > self.len || range.len() != host {
            return Err(Error::ShapeMismatch {
                op,
                expected: format!(
                    "a range within the buffer's {} elements, as long as the host slice",
                    self.len
                ),
                got: format!(
                    "elements {}..{} and a host slice of {host}",
                    range.start, range.end
                ),
            });
        }
        Ok(())
    }

    /// Copies `src` into elements `range` of the buffer.
    pub fn upload_range(&mut self, range: Range<usize>, src: &[T]) -> Result<()> {
        let _span = crate::trace::copy("upload", std::mem::size_of_val(src));
        self.check("DeviceBuffer::upload_range", &range, src.len())?;
        // SAFETY: `range` lies within the buffer and is as long as `src`
        // (checked above), so the bytes written are inside our live
        // allocation; `&mut self` keeps every other user of the buffer out.
        unsafe {
            self.backend
                .upload(self.addr_at(range.start), bytemuck::cast_slice(src))
        }
    }

    /// Copies the whole of `src` into the buffer (same length).
    pub fn upload(&mut self, src: &[T]) -> Result<()> {
        self.upload_range(0..self.len, src)
    }

    /// Copies elements `range` into `dst`.
    pub fn download_range(&self, range: Range<usize>, dst: &mut [T]) -> Result<()> {
        let _span = crate::trace::copy("download", std::mem::size_of_val(dst));
        self.check("DeviceBuffer::download_range", &range, dst.len())?;
        // SAFETY: `range` lies within the buffer and is as long as `dst`
        // (checked above), so the bytes read are inside our live allocation;
        // writers of the buffer need `&mut self`, which our `&self` excludes.
        unsafe {
            self.backend
                .download(bytemuck::cast_slice_mut(dst), self.addr_at(range.start))
        }
    }

    /// Copies the whole buffer into `dst` (same length).
    pub fn download(&self, dst: &mut [T]) -> Result<()> {
        self.download_range(0..self.len, dst)
    }

    /// The buffer's contents in a new vector.
    pub fn to_vec(&self) -> Result<Vec<T>> {
        let mut v = vec![T::zeroed(); self.len];
        self.download(&mut v)?;
        Ok(v)
    }

    /// Copies `src[src_range]` to this buffer at `dst_start`, on the device.
    pub fn copy_from(
        &mut self,
        dst_start: usize,
        src: &DeviceBuffer<T>,
        src_range: Range<usize>,
    ) -> Result<()> {
        let _span = crate::trace::copy("device copy", 0);
        src.check("DeviceBuffer::copy_from", &src_range, src_range.len())?;
        self.check(
            "DeviceBuffer::copy_from",
            &(dst_start..dst_start + src_range.len()),
            src_range.len(),
        )?;
        if self.device != src.device {
            return Err(Error::invalid(
                "DeviceBuffer::copy_from",
                format!(
                    "the buffers are on {} and {}: copy through the host",
                    self.device, src.device
                ),
            ));
        }
        // SAFETY: both ranges were checked to lie within their buffers and
        // both buffers are on one device, so one backend owns both live
        // allocations; `&mut self` and `&src` are distinct buffers, so the
        // ranges do not overlap, and they keep host writers out of both.
        unsafe {
            self.backend.copy(
                self.addr_at(dst_start),
                src.addr_at(src_range.start),
                src_range.len() * size_of::<T>(),
            )
        }
    }

    /// The device address of element `i` (i <= len): for the kernel
    /// launchers, which check their ranges against [`DeviceBuffer::len`].
    pub(in crate::device) fn addr_at(&self, i: usize) -> Addr {
        assert!(i <= self.len, "element {i} of a buffer of {}", self.len);
        self.addr + (i * size_of::<T>()) as Addr
    }

    /// The backend the memory belongs to.
    pub(in crate::device) fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// The start of the buffer's memory, for MPI to read: a device address
    /// (or a host one on the emulated GPU), never to be dereferenced by the
    /// host on a CUDA GPU. Valid for `len` elements while `self` lives.
    pub(crate) fn as_raw_ptr(&self) -> *const std::ffi::c_void {
        self.addr as *const std::ffi::c_void
    }

    /// [`DeviceBuffer::as_raw_ptr`] for MPI to write.
    pub(crate) fn as_raw_mut_ptr(&mut self) -> *mut std::ffi::c_void {
        self.addr as *mut std::ffi::c_void
    }

    /// Waits until the work queued on this buffer's device has finished
    /// (a no-op on the CPU): for timing device work from the host.
    pub fn synchronize(&self) -> Result<()> {
        self.backend.synchronize()
    }
}

impl<T: Pod> Drop for DeviceBuffer<T> {
    fn drop(&mut self) {
        // SAFETY: our own allocation of `bytes()` bytes from this backend,
        // freed once, here; work already issued on it is stream-ordered
        // before the free, and nothing can use it after the drop.
        unsafe { self.backend.free(self.addr, self.bytes()) };
    }
}
