//! Every `TESSERA_*` environment variable, with its meaning: the one list.
//!
//! Code reads a variable through its constant here, never through a string
//! literal (scripts/check-architecture.sh fails on a `"TESSERA_..."` literal
//! elsewhere, and on a variable used anywhere but not listed here). Variables
//! read only by the command-line tool, the tests or the scripts are listed
//! too, so that this page is the whole story.

// --- Read by the library ---

/// `TESSERA_TRACE=path.json`: record trace spans on every rank and write one
/// Chrome trace of the job there when it ends (see [`crate::trace`]).
pub const TRACE: &str = "TESSERA_TRACE";

/// `TESSERA_TIMED_FILE=path`: where [`crate::comm::trace::timed`] appends,
/// on rank 0, one JSON line per timed section (its seconds, slowest rank,
/// and every rank's split); `tessera scaling` sets it for each run of a
/// program and reads the sections back.
pub const TIMED_FILE: &str = "TESSERA_TIMED_FILE";

/// `TESSERA_UNCHECKED=1`: turn the collective-argument checks off for every
/// communicator of the job (see [`crate::comm::Comm::unchecked`]).
pub const UNCHECKED: &str = "TESSERA_UNCHECKED";

/// `TESSERA_GPU_DIRECT=0|1`: overrides whether MPI is taken to be
/// CUDA-aware (default: asked of Open MPI at run time; see
/// [`crate::comm::cuda_aware_mpi`]).
pub const GPU_DIRECT: &str = "TESSERA_GPU_DIRECT";

/// `TESSERA_DEVICE_MPI=staged`: stage device data through host buffers for
/// MPI even where it could go directly (see [`crate::comm::transfer_path`]).
pub const DEVICE_MPI: &str = "TESSERA_DEVICE_MPI";

/// `TESSERA_NVRTC_LIB=/path/libnvrtc.so.12`: the NVRTC library that
/// compiles the kernels (default: looked up on the library path).
pub const NVRTC_LIB: &str = "TESSERA_NVRTC_LIB";

/// `TESSERA_CACHE_DIR=dir`: where compiled kernels (PTX) are cached
/// (default: `$XDG_CACHE_HOME/tessera/kernels`, else `~/.cache/tessera/kernels`).
pub const CACHE_DIR: &str = "TESSERA_CACHE_DIR";

/// `TESSERA_EMU_LIB=/path/libtessera_emu.so`: the kernel emulator library
/// behind [`crate::Device::Emulated`] (built by the tests from
/// `tests/kernel_emu/`).
pub const EMU_LIB: &str = "TESSERA_EMU_LIB";

/// `TESSERA_EXCHANGE=auto|mpi|shared`: how [`crate::comm::Comm::exchange`]
/// (the sample sort's key exchange) moves data when its caller leaves the
/// choice to the job (default `auto`: through a shared-memory window where
/// every rank shares one node, else `MPI_Alltoallv`).
pub const EXCHANGE: &str = "TESSERA_EXCHANGE";

// --- Read by the command-line tool ---

/// `TESSERA_MPIRUN=/path/mpirun`: the `mpirun` that `tessera run` starts
/// (default: `mpirun` on the `PATH`).
pub const MPIRUN: &str = "TESSERA_MPIRUN";

/// `TESSERA_FONT=/path/font.ttf`: the font of `tessera scaling`'s PNG chart
/// (default: the font embedded in the binary).
pub const FONT: &str = "TESSERA_FONT";

// --- Read by the tests, benchmarks and scripts ---

/// `TESSERA_REQUIRE_NVRTC=1`: the tests fail, rather than skip, where NVRTC
/// cannot be loaded (`scripts/test.sh` sets it).
pub const REQUIRE_NVRTC: &str = "TESSERA_REQUIRE_NVRTC";

/// `TESSERA_FUZZ_CASES=N`: cases per property of the fuzz tests and of
/// `cargo bench --bench fuzz_npy`.
pub const FUZZ_CASES: &str = "TESSERA_FUZZ_CASES";

/// `TESSERA_BIN=path`: the `tessera` binary `scripts/multihost-test.sh`
/// runs (default: `target/release/tessera`).
pub const BIN: &str = "TESSERA_BIN";

/// `TESSERA_EXAMPLES=dir`: the example binaries `scripts/multihost-test.sh`
/// runs (default: `examples/` next to the binary).
pub const EXAMPLES: &str = "TESSERA_EXAMPLES";
