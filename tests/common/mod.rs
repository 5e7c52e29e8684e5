//! Helpers shared by the library's integration tests.
#![allow(dead_code)]

pub mod device_checks;
pub mod emulator;
