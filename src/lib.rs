//! Tessera: SPMD message passing on Open MPI, with local work offloaded to a
//! CUDA GPU where there is one and to the CPU cores where there is not.
//!
//! A program runs as N ranks (started by `mpirun`, `srun` or `tessera run`).
//! Ranks exchange data through typed, checked collectives in [`comm`], and
//! find out where their local work runs through [`device`].
//!
//! ```no_run
//! use tessera::comm::ReduceOp;
//!
//! tessera::spmd(|world| {
//!     let total = world.all_reduce(&[world.rank() as u64], ReduceOp::Sum)?;
//!     println!("rank {} of {}: sum of ranks = {}", world.rank(), world.size(), total[0]);
//!     Ok(())
//! });
//! ```
//!
//! Failure model: a panic or an error returned to [`spmd`] on any rank ends
//! the whole job with that rank's number, host and message; collective
//! arguments that disagree between ranks are an [`Error`] on every rank, not
//! a hang.

#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[macro_use]
mod choice;

pub mod comm;
pub mod device;
pub mod distributed;
mod error;
pub mod ops;
pub mod rng;
pub mod trace;

pub use comm::{Comm, Universe, spmd};
pub use device::Device;
pub use error::{Error, Result};
