//! Helpers shared by the command-line tool's integration tests.
#![allow(dead_code)]

pub mod jobs;
pub mod npy;
