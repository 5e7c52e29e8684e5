//! Fail fast: a panic or an error on one rank ends the whole job.
//!
//! MPI's default when one rank dies is for the others to wait in their next
//! collective forever. Tessera prints the rank, the host and the message, then
//! calls `MPI_Abort` on `MPI_COMM_WORLD`, which makes `mpirun` kill every rank
//! and exit non-zero.

use std::io::Write;
use std::sync::OnceLock;

use mpi::ffi;

static IDENTITY: OnceLock<(usize, String)> = OnceLock::new();

/// Exit status of a job ended by a panic (the same as Rust's own).
pub(crate) const PANIC_EXIT: i32 = 101;

pub(crate) fn install_panic_hook(rank: usize, host: String) {
    let _ = IDENTITY.set((rank, host));
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !mpi_is_live() {
            previous(info);
            return;
        }
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(panic with a non-string payload)".into());
        let location = info
            .location()
            .map(|l| format!(" (at {}:{})", l.file(), l.line()))
            .unwrap_or_default();
        abort_with_message(&format!("panicked: {message}{location}"), PANIC_EXIT);
    }));
}

fn mpi_is_live() -> bool {
    mpi::environment::is_initialized() && !mpi::environment::is_finalized()
}

/// Prints `rank R on HOST: MESSAGE` on standard error and aborts the job.
pub(crate) fn abort_with_message(message: &str, code: i32) -> ! {
    let (rank, host) = IDENTITY
        .get()
        .cloned()
        .unwrap_or((usize::MAX, "unknown-host".into()));
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "rank {rank} on {host}: {message}");
    let _ = err.flush();
    drop(err);
    if mpi_is_live() {
        // SAFETY: MPI is initialised and not finalised; MPI_Abort on the world
        // communicator is valid from any rank at any time and does not return.
        unsafe {
            ffi::MPI_Abort(ffi::RSMPI_COMM_WORLD, code);
        }
    }
    std::process::exit(code)
}
