//! Where a rank's local work runs: its CPU cores, or a CUDA GPU.
//!
//! This is the only module that touches cudarc (the driver in `cuda.rs`,
//! NVRTC in [`nvrtc`], cuBLAS in `cublas.rs`), and the only one that holds
//! raw device addresses. CUDA is loaded at run time: the binary builds and
//! runs where no CUDA is installed, and a missing driver is a reason to use
//! the CPU, never a panic.
//!
//! # The unsafe boundary
//!
//! The unsafe code of local work is here, in layers, from the bottom:
//!
//! - `backend.rs`: the `Backend` trait, implemented by a CUDA GPU
//!   (`cuda.rs`) and by the emulated GPU (`emulated.rs`); `backend_of`
//!   below picks one, and `backend.rs` depends on neither. Its copies,
//!   frees and kernel launches take raw device addresses and are
//!   `unsafe fn`s, each with a `# Safety` section: live ranges of this
//!   backend, lengths in bounds, kernel arguments of the kernel's parameter
//!   types, no host access racing the device's.
//! - [`DeviceBuffer`]: typed, owned device memory. Its copies are safe: they
//!   check element ranges against the buffer before the unsafe call.
//! - `launch/`: one typed, safe launcher per kernel of [`kernels`] (the one
//!   list of the kernels, with their parameter types). Each takes device
//!   buffers and sizes, checks lengths, offsets and devices, and the
//!   kernel's conditions on the data (by construction where the host
//!   cannot see the data: a radix histogram borrows the keys it counted,
//!   merge inputs are checked on the device to be sorted), returns
//!   [`Error::InvalidArgument`] instead of launching out of bounds, and only
//!   then launches, under a `SAFETY:` comment. The raw argument list checks
//!   its types against the kernel's before every launch.
//! - `cublas.rs` (cuBLAS) and `cpu.rs` (the `gemm` crate's raw-pointer GEMM
//!   on the CPU): the same, one safe checked function each.
//!
//! Everything above (`ops`, `distributed`) calls only safe functions: no
//! raw address, launch argument or cudarc type leaves this module, except
//! the device pointers MPI is given in `comm/device.rs`, under their own
//! `SAFETY:` comments.

use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, Result};

mod backend;
mod buffer;
pub(crate) mod cpu;
pub(crate) mod cublas;
mod cuda;
mod emulated;
pub mod kernels;
pub(crate) mod launch;
mod matrix;
pub mod nvrtc;

pub use buffer::DeviceBuffer;
pub use emulated::use_emulator_library;
pub use matrix::{DeviceMatrix, GemmElement};

/// Where local work runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Device {
    /// The CPU cores, through rayon and SIMD.
    Cpu,
    /// The CUDA GPU with this ordinal (among the GPUs this process sees).
    Cuda(usize),
    /// A GPU emulated on the CPU, for testing the device code paths where
    /// there is no GPU: device memory is host memory, and kernels run
    /// through the CPU emulator library named by `TESSERA_EMU_LIB` (built
    /// by the tests from `tests/kernel_emu/`). Slow; not for real work.
    Emulated,
}

impl Device {
    /// A number per kind of device (CPU 0, CUDA 1, emulated 2), for checks
    /// that every rank uses the same kind; the ordinal may differ.
    pub fn kind_code(self) -> u64 {
        match self {
            Device::Cpu => 0,
            Device::Cuda(_) => 1,
            Device::Emulated => 2,
        }
    }

    /// The kind of device a [`Device::kind_code`] stands for, in words.
    pub fn kind_name(code: u64) -> &'static str {
        match code {
            0 => "cpu",
            1 => "cuda",
            2 => "emulated",
            _ => "an unknown device",
        }
    }

    /// Whether work on this device goes through the device code paths
    /// (device buffers, kernels), as on a GPU.
    pub fn is_gpu_like(self) -> bool {
        !matches!(self, Device::Cpu)
    }
}

/// Copies `src` into `dst` (of the same length) on rayon's threads, a MiB
/// a piece: one thread's memcpy reaches a fraction of a node's memory
/// bandwidth, and every host-device transfer of pageable memory passes
/// through such a copy into or out of pinned staging buffers.
pub(crate) fn par_copy(dst: &mut [u8], src: &[u8]) {
    use rayon::prelude::*;
    const PIECE: usize = 1 << 20;
    if src.len() <= PIECE {
        dst.copy_from_slice(src);
        return;
    }
    dst.par_chunks_mut(PIECE)
        .zip(src.par_chunks(PIECE))
        .for_each(|(d, s)| d.copy_from_slice(s));
}

/// The driver's own host-device copies of one size, in seconds (best of
/// several): the anchors against which `tessera bench copy` measures
/// Tessera's transfers.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RawCopies {
    /// Host to device from pinned memory.
    pub h2d_pinned: f64,
    /// Device to host into pinned memory.
    pub d2h_pinned: f64,
    /// Host to device from pageable memory (the driver stages it).
    pub h2d_pageable: f64,
    /// Device to host into pageable memory.
    pub d2h_pageable: f64,
}

/// [`RawCopies`] of `bytes` bytes on `device`, best of `reps` each. On the
/// emulated GPU, whose memory is host memory, every copy is a memcpy.
///
/// # Errors
/// On the CPU (it has no device memory), or when the driver fails.
pub fn raw_copies(device: Device, bytes: usize, reps: usize) -> Result<RawCopies> {
    match device {
        Device::Cuda(i) => cuda::gpu(i)?.raw_copies(bytes, reps),
        Device::Emulated => {
            let src = vec![1u8; bytes];
            let mut dst = vec![0u8; bytes];
            let best = best_seconds(reps, &mut || {
                dst.copy_from_slice(std::hint::black_box(&src));
                Ok(())
            })?;
            std::hint::black_box(&dst);
            Ok(RawCopies {
                h2d_pinned: best,
                d2h_pinned: best,
                h2d_pageable: best,
                d2h_pageable: best,
            })
        }
        Device::Cpu => Err(Error::invalid(
            "raw_copies",
            "the CPU has no device memory: pick a GPU",
        )),
    }
}

/// The fastest of `reps` (at least one) runs of `f`, in seconds.
pub(crate) fn best_seconds(reps: usize, f: &mut dyn FnMut() -> Result<()>) -> Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let t = std::time::Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// The backend behind a GPU-like device.
fn backend_of(device: Device) -> Result<Arc<dyn backend::Backend>> {
    match device {
        Device::Cpu => Err(Error::invalid(
            "device memory",
            "the CPU has no device memory: use host slices, or pick a GPU",
        )),
        Device::Cuda(i) => Ok(cuda::gpu(i)?),
        Device::Emulated => Ok(emulated::device()),
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
            Device::Emulated => write!(f, "emulated-gpu"),
        }
    }
}

/// What a CUDA GPU is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct GpuInfo {
    /// Ordinal among the GPUs this process sees.
    pub ordinal: usize,
    /// The device name (`NVIDIA H100 80GB HBM3`, ...).
    pub name: String,
    /// Global memory in bytes.
    pub memory_bytes: u64,
    /// Compute capability (major, minor).
    pub compute_capability: (u32, u32),
}

/// The CUDA GPUs this process can use, or why there are none.
///
/// Probes for the driver library before the first driver call, because
/// cudarc panics rather than returning an error when it is missing.
pub fn probe_gpus() -> std::result::Result<Vec<GpuInfo>, String> {
    use cudarc::driver::{result, sys};
    // SAFETY: only tries to load the driver library; no driver call is made.
    if !unsafe { sys::is_culib_present() } {
        return Err("no CUDA driver library (libcuda.so) on this host".into());
    }
    let err = |call: &str, e: result::DriverError| format!("{call} failed: {e:?}");
    result::init().map_err(|e| err("cuInit", e))?;
    let count = result::device::get_count().map_err(|e| err("cuDeviceGetCount", e))?;
    let mut gpus = Vec::new();
    for ordinal in 0..count.max(0) {
        let dev = result::device::get(ordinal).map_err(|e| err("cuDeviceGet", e))?;
        let name = result::device::get_name(dev).map_err(|e| err("cuDeviceGetName", e))?;
        // SAFETY: `dev` is a valid device handle returned by cuDeviceGet.
        let memory =
            unsafe { result::device::total_mem(dev) }.map_err(|e| err("cuDeviceTotalMem", e))?;
        let attr = |a| {
            // SAFETY: `dev` is a valid device handle; `a` is a valid attribute.
            unsafe { result::device::get_attribute(dev, a) }
                .map_err(|e| err("cuDeviceGetAttribute", e))
        };
        let major = attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
        let minor = attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
        gpus.push(GpuInfo {
            ordinal: ordinal as usize,
            name,
            memory_bytes: memory as u64,
            compute_capability: (major.max(0) as u32, minor.max(0) as u32),
        });
    }
    if gpus.is_empty() {
        return Err("the CUDA driver reports no devices".into());
    }
    Ok(gpus)
}

/// Which device a rank asks for on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// The GPU of this rank's node-local index when there is one, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// A GPU; an error where there is none.
    Cuda,
    /// The GPU emulated on the CPU (for testing the device paths).
    Emulated,
}

named_choices!(DeviceChoice { Auto => "auto", Cpu => "cpu", Cuda => "cuda", Emulated => "emulated" });

impl Device {
    /// The device for the rank with node-local index `local_rank` (its rank
    /// among the ranks of its node, [`Comm::local_rank`](crate::Comm::local_rank)):
    /// the GPU at index `local_rank` modulo the GPUs this process sees, or
    /// the CPU when there is no usable GPU.
    ///
    /// Returns the device and, for the CPU, why no GPU was used.
    ///
    /// ```
    /// use tessera::Device;
    ///
    /// // Rank 0 of its node: GPU 0 where there is one, else the CPU and why.
    /// let (device, why_not_gpu) = Device::auto(0);
    /// match device {
    ///     Device::Cuda(i) => assert_eq!(i, 0),
    ///     Device::Cpu => assert!(why_not_gpu.is_some()),
    ///     Device::Emulated => unreachable!("auto never picks the emulator"),
    /// }
    /// ```
    pub fn auto(local_rank: usize) -> (Device, Option<String>) {
        match probe_gpus() {
            Ok(gpus) => (Device::Cuda(local_rank % gpus.len()), None),
            Err(reason) => (Device::Cpu, Some(reason)),
        }
    }

    /// Resolves a choice (`--device` on the command line) for the rank with
    /// node-local index `local_rank`. `Cuda` where no GPU can be used is
    /// [`Error::NoGpu`].
    ///
    /// ```
    /// use tessera::device::{Device, DeviceChoice};
    ///
    /// assert_eq!(Device::select(DeviceChoice::Cpu, 3).unwrap(), Device::Cpu);
    /// let choice: DeviceChoice = "auto".parse().unwrap();
    /// assert!(Device::select(choice, 0).is_ok());
    /// ```
    pub fn select(choice: DeviceChoice, local_rank: usize) -> Result<Device> {
        match choice {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Emulated => Ok(Device::Emulated),
            DeviceChoice::Auto => Ok(Device::auto(local_rank).0),
            DeviceChoice::Cuda => match Device::auto(local_rank) {
                (Device::Cuda(i), _) => Ok(Device::Cuda(i)),
                (_, reason) => Err(Error::NoGpu {
                    reason: format!(
                        "{}; run with --device cpu or --device auto",
                        reason.unwrap_or_default()
                    ),
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parallel_copies_copy_every_byte() {
        for len in [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 << 20 | 5] {
            let src: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
            let mut dst = vec![0u8; len];
            super::par_copy(&mut dst, &src);
            assert!(dst == src, "{len} bytes");
        }
    }
}
