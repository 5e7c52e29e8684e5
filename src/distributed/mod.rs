//! Distributed algorithms: block-distributed matrices and their product
//! (SUMMA), and sorting keys spread over ranks (sample sort, merge sort).
//!
//! They call [`comm`](crate::comm) to communicate and [`ops`](crate::ops)
//! for local work. The device a call runs on is an argument
//! ([`MatmulOptions::device`], the `device` of [`sort::dist_sort`]); the only
//! device question asked here is where a matrix's blocks live during SUMMA
//! (host memory, or device memory for the whole product: see
//! [`matmul`](mod@matmul)). Which kernel runs, and how device data reaches
//! MPI, is decided below, in `ops`, `device` and `comm`.
//!
//! A distributed product, checked without gathering it (run under `mpirun`
//! for several ranks; one rank runs it as is):
//!
//! ```
//! use tessera::comm::ProcessGrid;
//! use tessera::distributed::{DistMatrix, matmul, verify_product};
//!
//! tessera::spmd(|world| {
//!     let grid = ProcessGrid::square_ish(world)?;
//!     // The same global matrices whatever the rank count.
//!     let a = DistMatrix::<f64>::random(&grid, 120, 80, 1);
//!     let b = DistMatrix::<f64>::from_fn(&grid, 80, 60, |i, j| (i + 2 * j) as f64);
//!     let c = matmul(&a, &b)?;
//!     assert_eq!((c.nrows(), c.ncols()), (120, 60));
//!     let check = verify_product(&a, &b, &c, 7)?;
//!     assert!(check.passed, "residual {} over {}", check.residual, check.threshold);
//!     Ok(())
//! });
//! ```
//!
//! A distributed sort, on the device each rank picks for itself:
//!
//! ```
//! use tessera::device::{Device, DeviceChoice};
//! use tessera::distributed::sort::{SortAlgo, dist_sort, fingerprint, verify_sorted};
//!
//! tessera::spmd(|world| {
//!     let device = Device::select(DeviceChoice::Cpu, world.local_rank())?;
//!     let keys: Vec<u32> = (0..10_000u64)
//!         .map(|i| tessera::rng::mix64(i + 10_000 * world.rank() as u64) as u32)
//!         .collect();
//!     let before = fingerprint(world, &keys)?;
//!     let (sorted, stats) = dist_sort(world, keys, SortAlgo::Sample, device)?;
//!     assert!(verify_sorted(world, &before, &sorted)?.passed());
//!     assert!(sorted.windows(2).all(|w| w[0] <= w[1]));
//!     assert!(stats.local_sort_seconds >= 0.0);
//!     Ok(())
//! });
//! ```

pub mod matmul;
pub mod matrix;
pub mod sort;
mod split;

pub use crate::comm::{block_owner, block_range};
pub use matmul::{MatmulOptions, MatmulStats, Verification, matmul, matmul_with, verify_product};
pub use matrix::DistMatrix;
