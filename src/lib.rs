//! Tessera: SPMD message passing on Open MPI, with local work offloaded to a
//! CUDA GPU where there is one and to the CPU cores where there is not.
//!
//! A program runs as N ranks (started by `mpirun`, `srun` or `tessera run`).
//! Ranks exchange data through typed, checked collectives in [`comm`], and
//! find out where their local work runs through [`device`].
//!
//! ```
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

#[macro_use]
pub mod choice;

pub mod comm;
pub mod device;
pub mod distributed;
pub mod env;
mod error;
pub mod npy;
pub mod ops;
pub mod rng;
pub mod trace;

pub use comm::trace::timed;
pub use comm::{Comm, Universe, spmd};

/// The `ndarray` crate Tessera's matrices are made of
/// ([`DistMatrix::scatter_from_root`](distributed::DistMatrix::scatter_from_root)
/// and [`gather_to_root`](distributed::DistMatrix::gather_to_root) take and
/// give `ndarray::Array2`): use `tessera::ndarray` rather than a dependency of
/// your own, so that the versions always match.
pub use ndarray;

/// The `bytemuck` crate whose `Pod` bound every data-movement call takes:
/// a `#[repr(C)]` struct of numbers travels through the collectives once it
/// derives `Pod` and `Zeroable`. With the re-export, no dependency of your
/// own is needed: tell the derive where the crate is.
///
/// ```
/// use tessera::bytemuck::{Pod, Zeroable};
///
/// #[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
/// #[bytemuck(crate = "tessera::bytemuck")]
/// #[repr(C)]
/// struct Particle {
///     position: [f64; 3],
///     mass: f64,
/// }
///
/// let p = Particle { position: [1.0, 2.0, 3.0], mass: 4.0 };
/// let bytes: &[u8] = tessera::bytemuck::bytes_of(&p);
/// assert_eq!(bytes.len(), 32);
/// ```
pub use bytemuck;
pub use device::Device;
pub use error::{Error, Result};
