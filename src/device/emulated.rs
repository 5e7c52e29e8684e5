//! The emulated GPU behind the [`Backend`] trait: device memory is host
//! memory, and kernels run through the CPU emulator library named by
//! `TESSERA_EMU_LIB` (built from `tests/kernel_emu/` by the tests). For
//! testing the device paths, and MPI's handling of device buffers, without
//! a GPU; it is slow.
//!
//! Because its memory is host memory, a broken promise on the unsafe
//! [`Backend`] methods is undefined behaviour of this process, not a device
//! fault: the emulated GPU is where the safety contracts of the device layer
//! are exercised.

use std::collections::HashMap;
use std::ffi::{CString, c_char, c_void};
use std::sync::{Arc, Mutex, OnceLock};

use super::backend::{Addr, Backend, Dim3};
use super::kernels::Entry;
use crate::error::{Error, Result};

/// The emulated GPU: the live allocations, by address.
pub(crate) struct Emulated {
    live: Mutex<HashMap<Addr, std::alloc::Layout>>,
}

/// The emulated device (one per process).
pub(crate) fn device() -> Arc<Emulated> {
    static DEVICE: OnceLock<Arc<Emulated>> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            Arc::new(Emulated {
                live: Mutex::new(HashMap::new()),
            })
        })
        .clone()
}

/// `tessera_emu_launch` of `tests/kernel_emu/registry.cpp`.
type EmuLaunch = unsafe extern "C" fn(
    *const c_char,
    u32,
    u32,
    u32,
    u32,
    u32,
    u32,
    *const *mut c_void,
    *mut c_char,
    usize,
) -> i32;

static EMU_PATH: OnceLock<std::path::PathBuf> = OnceLock::new();

/// Names the kernel emulator library for [`super::Device::Emulated`]
/// (instead of `TESSERA_EMU_LIB`); only the first call counts.
#[doc(hidden)]
pub fn use_emulator_library(path: impl Into<std::path::PathBuf>) {
    let _ = EMU_PATH.set(path.into());
}

fn emu_library() -> Result<&'static libloading::Library> {
    static LIB: OnceLock<std::result::Result<libloading::Library, String>> = OnceLock::new();
    LIB.get_or_init(|| {
        let path = EMU_PATH.get().map(|p| p.clone().into_os_string()).or_else(|| std::env::var_os(crate::env::EMU_LIB)).ok_or_else(|| {
            "set TESSERA_EMU_LIB to the kernel emulator library (built by the tests from tests/kernel_emu/)".to_string()
        })?;
        // SAFETY: the emulator library runs no code at load time beyond
        // C++ static initialisers of its own.
        unsafe { libloading::Library::new(&path) }
            .map_err(|e| format!("cannot load {}: {e}", path.to_string_lossy()))
    })
    .as_ref()
    .map_err(|reason| Error::Unsupported {
        op: "kernel launch",
        device: "the emulated GPU".into(),
        reason: reason.clone(),
    })
}

impl Backend for Emulated {
    fn alloc(&self, bytes: usize) -> Result<Addr> {
        let layout = std::alloc::Layout::from_size_align(bytes.max(1), 256)
            .map_err(|e| Error::invalid("device alloc", e.to_string()))?;
        // Zeroed, so that reading a `DeviceBuffer::uninit` (safe) reads
        // defined bytes, as a GPU's memory always is to the host.
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        if p.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        self.live
            .lock()
            .expect("emulator lock")
            .insert(p as Addr, layout);
        Ok(p as Addr)
    }

    unsafe fn free(&self, addr: Addr, _bytes: usize) {
        if let Some(layout) = self.live.lock().expect("emulator lock").remove(&addr) {
            // SAFETY: `addr` was allocated by `alloc` with this layout, and
            // removing it from the live set means it is freed once; the
            // caller promises nothing uses it afterwards (launches are
            // synchronous here, so nothing issued before is still running).
            unsafe { std::alloc::dealloc(addr as *mut u8, layout) };
        }
    }

    unsafe fn upload(&self, dst: Addr, src: &[u8]) -> Result<()> {
        if src.is_empty() {
            return Ok(());
        }
        // SAFETY: the caller promises `dst` starts a live range of
        // `src.len()` bytes that no other thread touches; it is memory of
        // our own allocations, so it does not overlap the borrowed `src`.
        let dst = unsafe { std::slice::from_raw_parts_mut(dst as *mut u8, src.len()) };
        // Like a GPU's staging copy, on rayon's threads.
        super::par_copy(dst, src);
        Ok(())
    }

    unsafe fn download(&self, dst: &mut [u8], src: Addr) -> Result<()> {
        if dst.is_empty() {
            return Ok(());
        }
        // SAFETY: the caller promises `src` starts a live range of
        // `dst.len()` bytes that no thread writes meanwhile; our allocations
        // do not overlap the borrowed `dst`.
        let src = unsafe { std::slice::from_raw_parts(src as *const u8, dst.len()) };
        super::par_copy(dst, src);
        Ok(())
    }

    unsafe fn copy(&self, dst: Addr, src: Addr, bytes: usize) -> Result<()> {
        // SAFETY: the caller promises two live ranges of `bytes` bytes that
        // no other thread touches (`copy` would even allow overlap).
        unsafe { std::ptr::copy(src as *const u8, dst as *mut u8, bytes) };
        Ok(())
    }

    unsafe fn zero(&self, dst: Addr, bytes: usize) -> Result<()> {
        // SAFETY: the caller promises a live range of `bytes` bytes that no
        // other thread touches.
        unsafe { std::ptr::write_bytes(dst as *mut u8, 0, bytes) };
        Ok(())
    }

    unsafe fn launch(
        &self,
        entry: &'static Entry,
        grid: Dim3,
        block: Dim3,
        params: &[*mut c_void],
    ) -> Result<()> {
        let lib = emu_library()?;
        // SAFETY: the symbol has the signature of `EmuLaunch` (defined in
        // tests/kernel_emu/registry.cpp).
        let launch = unsafe { lib.get::<EmuLaunch>(b"tessera_emu_launch\0") }.map_err(|e| {
            Error::Unsupported {
                op: "kernel launch",
                device: "the emulated GPU".into(),
                reason: e.to_string(),
            }
        })?;
        let name = CString::new(entry.name).expect("kernel names have no NUL");
        let mut err = vec![0 as c_char; 512];
        // SAFETY: the caller promises that `params` point at live arguments
        // of the kernel's parameter types and that every access the kernel
        // makes under this launch shape is inside live allocations of ours;
        // the emulator runs the kernel to completion before returning, so
        // nothing outlives the call. `name` is NUL-terminated and `err` has
        // the length passed.
        let rc = unsafe {
            launch(
                name.as_ptr(),
                grid.0,
                grid.1,
                grid.2,
                block.0,
                block.1,
                block.2,
                params.as_ptr(),
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if rc != 0 {
            // SAFETY: the emulator writes a NUL-terminated message that fits
            // in `err` (snprintf with its length).
            let message = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            return Err(Error::Kernel {
                kernel: entry.name.to_string(),
                call: "emulated launch",
                message,
            });
        }
        Ok(())
    }

    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
}
