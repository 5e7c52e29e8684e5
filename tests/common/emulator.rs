//! The kernel emulator (tests/kernel_emu/), built with g++ once per test
//! binary; shared by the library's and the command-line tool's tests.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root: the manifest folder of the library, or the parent
/// of the command-line tool's.
fn repository_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if manifest.join("tests/kernel_emu").is_dir() {
        manifest
    } else {
        manifest.join("..")
    }
}

/// Builds the emulator library once per test binary; `None` (with a line
/// saying why) where it cannot be built.
pub fn emulator() -> Option<PathBuf> {
    static LIB: OnceLock<Option<PathBuf>> = OnceLock::new();
    LIB.get_or_init(|| {
        let root = repository_root();
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("libtessera_emu.so");
        let status = Command::new("g++")
            .args(["-std=c++20", "-O2", "-pthread", "-shared", "-fPIC", "-Wno-unknown-pragmas", "-include"])
            .arg(root.join("tests/kernel_emu/cuda_emu.hpp"))
            .arg(root.join("tests/kernel_emu/registry.cpp"))
            .arg("-o")
            .arg(&out)
            .status();
        match status {
            Ok(s) if s.success() => {
                tessera::device::use_emulator_library(&out);
                Some(out)
            }
            Ok(s) => panic!("building the kernel emulator failed ({s}): the kernels or the emulator do not compile as C++"),
            Err(e) => {
                eprintln!("skipping emulated-GPU tests: g++ cannot be run ({e})");
                None
            }
        }
    })
    .clone()
}
