//! The demos behind the command line (`tessera matmul`, ...): argument
//! handling, timing and reporting around the library's algorithms.

pub mod allreduce;
pub mod matmul;
pub mod sort;
