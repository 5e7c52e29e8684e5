//! Typed memory on a device.

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
        b.backend.zero(b.addr, b.bytes())?;
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
        b.backend.upload(b.addr, bytemuck::cast_slice(data))?;
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
        self.backend
            .upload(self.addr_at(range.start), bytemuck::cast_slice(src))
    }

    /// Copies the whole of `src` into the buffer (same length).
    pub fn upload(&mut self, src: &[T]) -> Result<()> {
        self.upload_range(0..self.len, src)
    }

    /// Copies elements `range` into `dst`.
    pub fn download_range(&self, range: Range<usize>, dst: &mut [T]) -> Result<()> {
        let _span = crate::trace::copy("download", std::mem::size_of_val(dst));
        self.check("DeviceBuffer::download_range", &range, dst.len())?;
        self.backend
            .download(bytemuck::cast_slice_mut(dst), self.addr_at(range.start))
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
        self.backend.copy(
            self.addr_at(dst_start),
            src.addr_at(src_range.start),
            src_range.len() * size_of::<T>(),
        )
    }

    /// The device address of element `i` (i <= len).
    pub(crate) fn addr_at(&self, i: usize) -> Addr {
        debug_assert!(i <= self.len);
        self.addr + (i * size_of::<T>()) as Addr
    }

    /// The backend the memory belongs to.
    pub(crate) fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Waits until the work queued on this buffer's device has finished
    /// (a no-op on the CPU): for timing device work from the host.
    pub fn synchronize(&self) -> Result<()> {
        self.backend.synchronize()
    }
}

impl<T: Pod> Drop for DeviceBuffer<T> {
    fn drop(&mut self) {
        self.backend.free(self.addr, self.bytes());
    }
}
