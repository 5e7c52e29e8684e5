//! What a device must do for Tessera's device paths: memory, copies, kernel
//! launches. Two implementations: a CUDA GPU ([`super::cuda`]) and the
//! emulated GPU ([`Emulated`]), whose memory is host memory and whose
//! kernels run through the CPU emulator library, so that every device code
//! path above this trait is tested on machines without a GPU.

use std::collections::HashMap;
use std::ffi::{CString, c_char, c_void};
use std::sync::{Mutex, OnceLock};

use super::kernels::Entry;
use crate::error::{Error, Result};

/// A device address (a `CUdeviceptr`, or a host address on the emulated
/// device).
pub(crate) type Addr = u64;

/// Grid or block dimensions.
pub(crate) type Dim3 = (u32, u32, u32);

/// Memory, copies and launches on one device, in the order they are issued
/// (one stream per device and process).
pub(crate) trait Backend: Send + Sync {
    /// Allocates `bytes` (at least 256-byte aligned; 0 bytes gives a valid,
    /// unusable address).
    fn alloc(&self, bytes: usize) -> Result<Addr>;
    /// Frees an address from [`Backend::alloc`] of this backend.
    fn free(&self, addr: Addr, bytes: usize);
    /// Copies host memory to the device; returns when `src` may be reused.
    fn upload(&self, dst: Addr, src: &[u8]) -> Result<()>;
    /// Copies device memory to the host; returns when `dst` holds it.
    fn download(&self, dst: &mut [u8], src: Addr) -> Result<()>;
    /// Copies between device addresses (stream-ordered).
    fn copy(&self, dst: Addr, src: Addr, bytes: usize) -> Result<()>;
    /// Sets `bytes` bytes to zero (stream-ordered).
    fn zero(&self, dst: Addr, bytes: usize) -> Result<()>;
    /// Launches a kernel; `params` point at each argument, as for
    /// `cuLaunchKernel`.
    fn launch(&self, entry: Entry, grid: Dim3, block: Dim3, params: &[*mut c_void]) -> Result<()>;
    /// Waits for everything issued so far.
    fn synchronize(&self) -> Result<()>;
    /// The CUDA GPU behind this backend, if it is one.
    fn cuda(&self) -> Option<&super::cuda::CudaGpu> {
        None
    }
}

/// Kernel arguments for a launch, each kept alive until the launch returns.
pub(crate) struct Params {
    values: Vec<u64>,
}

impl Params {
    pub(crate) fn new() -> Self {
        Params {
            values: Vec::with_capacity(12),
        }
    }
    /// Adds a 32-bit integer argument.
    pub(crate) fn i32(mut self, v: i32) -> Self {
        self.values.push(v as u32 as u64);
        self
    }
    /// Adds a 64-bit unsigned argument.
    pub(crate) fn u64(mut self, v: u64) -> Self {
        self.values.push(v);
        self
    }
    /// Adds a pointer argument.
    pub(crate) fn ptr(self, addr: Addr) -> Self {
        self.u64(addr)
    }
    /// Adds an f32 argument.
    pub(crate) fn f32(mut self, v: f32) -> Self {
        self.values.push(v.to_bits() as u64);
        self
    }
    /// Adds an f64 argument.
    pub(crate) fn f64(mut self, v: f64) -> Self {
        self.values.push(v.to_bits());
        self
    }
    /// Launches `entry` with these arguments. Each value sits at the start
    /// of its own 8-byte slot, so a pointer to the slot is a pointer to a
    /// 4-byte argument too (little-endian).
    pub(crate) fn launch(
        mut self,
        device: &dyn Backend,
        entry: Entry,
        grid: Dim3,
        block: Dim3,
    ) -> Result<()> {
        if grid.0 == 0 || grid.1 == 0 || grid.2 == 0 {
            return Ok(());
        }
        let params: Vec<*mut c_void> = self
            .values
            .iter_mut()
            .map(|v| v as *mut u64 as *mut c_void)
            .collect();
        device.launch(entry, grid, block, &params)
    }
}

/// Blocks needed for `n` items at `per_block` each, as a u32 grid size.
pub(crate) fn blocks(n: u64, per_block: u64, op: &'static str) -> Result<u32> {
    u32::try_from(n.div_ceil(per_block)).map_err(|_| {
        Error::invalid(
            op,
            format!("{n} elements need more than 2^32 - 1 thread blocks"),
        )
    })
}

/// The emulated GPU: host memory, kernels run by the CPU emulator library
/// named by `TESSERA_EMU_LIB` (built from `tests/kernel_emu/` by the tests).
/// For testing the device paths, and MPI's handling of device buffers,
/// without a GPU; it is slow.
pub(crate) struct Emulated {
    live: Mutex<HashMap<Addr, std::alloc::Layout>>,
}

/// The emulated device (one per process).
pub(crate) fn emulated() -> std::sync::Arc<Emulated> {
    static DEVICE: OnceLock<std::sync::Arc<Emulated>> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            std::sync::Arc::new(Emulated {
                live: Mutex::new(HashMap::new()),
            })
        })
        .clone()
}

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
        let path = EMU_PATH.get().map(|p| p.clone().into_os_string()).or_else(|| std::env::var_os("TESSERA_EMU_LIB")).ok_or_else(|| {
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
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { std::alloc::alloc(layout) };
        if p.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        self.live
            .lock()
            .expect("emulator lock")
            .insert(p as Addr, layout);
        Ok(p as Addr)
    }
    fn free(&self, addr: Addr, _bytes: usize) {
        if let Some(layout) = self.live.lock().expect("emulator lock").remove(&addr) {
            // SAFETY: allocated above with this layout and removed from the
            // live set, so freed once.
            unsafe { std::alloc::dealloc(addr as *mut u8, layout) };
        }
    }
    fn upload(&self, dst: Addr, src: &[u8]) -> Result<()> {
        // SAFETY: `dst` is an emulated device address with room for `src`
        // (DeviceBuffer checks lengths); host memory does not overlap it.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, src.len()) };
        Ok(())
    }
    fn download(&self, dst: &mut [u8], src: Addr) -> Result<()> {
        // SAFETY: as for upload, in the other direction.
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }
    fn copy(&self, dst: Addr, src: Addr, bytes: usize) -> Result<()> {
        // SAFETY: both are emulated device ranges of `bytes` bytes; `copy`
        // allows overlap.
        unsafe { std::ptr::copy(src as *const u8, dst as *mut u8, bytes) };
        Ok(())
    }
    fn zero(&self, dst: Addr, bytes: usize) -> Result<()> {
        // SAFETY: an emulated device range of `bytes` bytes.
        unsafe { std::ptr::write_bytes(dst as *mut u8, 0, bytes) };
        Ok(())
    }
    fn launch(&self, entry: Entry, grid: Dim3, block: Dim3, params: &[*mut c_void]) -> Result<()> {
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
        // SAFETY: `params` point at live arguments of the kernel's types
        // (Params builds them); `err` has the length passed.
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
            // SAFETY: the emulator writes a NUL-terminated message.
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
