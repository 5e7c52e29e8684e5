//! Local compute kernels, one file per operation. Each takes the
//! [`Device`](crate::Device) it runs on; the CPU path and the GPU path of an
//! operation live in the same file, behind the same function.

pub mod gemm;
pub mod generate;
pub mod sort;

pub use gemm::{Float, gemm};
