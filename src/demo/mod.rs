//! The demos behind the command line (`tessera matmul`, ...): argument
//! handling, timing and reporting around the library's algorithms.

pub mod matmul;
pub mod sort;

use crate::comm::Comm;
use crate::device::{Device, DeviceChoice};
use crate::error::{Error, Result};

/// The device a demo's local work runs on while its CUDA kernels do not
/// exist yet: `auto` uses the CPU, and `cuda` is an error that says so
/// (after the usual check that a GPU is there at all).
pub(crate) fn cpu_device(
    comm: &Comm,
    choice: DeviceChoice,
    op: &'static str,
    kernels: &str,
) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu | DeviceChoice::Auto => Ok(Device::Cpu),
        DeviceChoice::Cuda => {
            Device::select(comm, DeviceChoice::Cuda)?;
            Err(Error::Unsupported {
                op,
                device: "cuda".into(),
                reason: format!(
                    "the CUDA {kernels} kernels are not built yet: use --device cpu or auto"
                ),
            })
        }
    }
}
