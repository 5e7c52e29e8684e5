//! The `tessera` command-line tool, as a library for its binary and its
//! tests: the launcher (`tessera run`), the demos (distributed matmul and
//! sort), the self-test, `tessera info`, the benchmarks and the scaling
//! harness. Users link the `tessera` library, not this.

#![deny(missing_docs)]

pub mod bench;
pub mod demo;
pub mod error;
pub mod info;
pub mod launch;
pub mod scaling;
pub mod selftest;

pub use error::{Error, Result};
