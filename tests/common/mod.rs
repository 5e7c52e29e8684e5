//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod device_checks;
pub mod jobs;
pub mod npy;
