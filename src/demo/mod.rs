//! The demos behind the command line (`tessera matmul`, ...): argument
//! handling, timing and reporting around the library's algorithms.

pub mod matmul;
pub mod sort;

use crate::comm::Comm;
use crate::device::{Device, DeviceChoice};
use crate::error::Result;

/// The device a demo's local work runs on: `--device` resolved for this
/// rank (collective over `comm`).
pub(crate) fn pick_device(comm: &Comm, choice: DeviceChoice) -> Result<Device> {
    Device::select(comm, choice)
}
