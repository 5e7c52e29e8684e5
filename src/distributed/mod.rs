//! Distributed algorithms: block-distributed matrices and their product
//! (SUMMA). They never branch on the device themselves: they call `ops`
//! for local work and `comm` for communication.

pub mod matmul;
pub mod matrix;
pub mod sort;

pub use crate::comm::{block_owner, block_range};
pub use matmul::{MatmulOptions, MatmulStats, Verification, matmul, matmul_with, verify_product};
pub use matrix::DistMatrix;
