//! Fail fast: a panic or an error on one rank ends the whole job.
//!
//! MPI's default when one rank dies is for the others to wait in their next
//! collective forever. Tessera prints the rank, the host and the message, then
//! calls `MPI_Abort` on `MPI_COMM_WORLD`, which makes `mpirun` kill every rank
//! and exit non-zero.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mpi::datatype::PartitionMut;
use mpi::ffi;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

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

/// How long a rank that failed waits for the others to fail too before it
/// ends the job alone. Ranks that return the same error from one collective
/// arrive within milliseconds of each other; a rank that fails alone pays
/// this once.
const TOGETHER: Duration = Duration::from_millis(500);

/// Writes `text` (whole lines) to standard error in one `write` call, so
/// that the lines of different ranks, merged by `mpirun`, never interleave.
pub(crate) fn write_whole(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// Ends this rank's part in the job after an error its program returned.
///
/// When every rank of `failures` (a duplicate of the world kept for this)
/// gets here within [`TOGETHER`] (an error they all returned together, such
/// as a disagreement about a collective's arguments), rank 0 prints each
/// distinct message once, with the ranks and hosts that gave it, and the
/// call returns: the caller finalises MPI and exits non-zero, so `mpirun`
/// shows no abort. Otherwise this rank prints `rank R on HOST: MESSAGE` in
/// one write and aborts the job (`MPI_Abort`), as a panic does.
pub(crate) fn end_with_error(failures: &SimpleCommunicator, message: &str, code: i32) {
    let barrier = failures.immediate_barrier();
    let deadline = Instant::now() + TOGETHER;
    let mut pending = barrier;
    loop {
        match pending.test() {
            Ok(_) => break,
            Err(still) if Instant::now() < deadline => {
                pending = still;
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(still) => {
                // Some rank is elsewhere: end the job from here. The request
                // is never completed; MPI_Abort ends the process first.
                std::mem::forget(still);
                abort_with_message(message, code);
            }
        }
    }
    let host = IDENTITY
        .get()
        .map(|(_, h)| h.clone())
        .unwrap_or_else(|| "unknown-host".into());
    let mine = format!("{host}\n{message}");
    let root = failures.process_at_rank(0);
    let len = mine.len() as i32;
    if failures.rank() == 0 {
        let mut lens = vec![0i32; failures.size() as usize];
        root.gather_into_root(&len, &mut lens[..]);
        let displs: Vec<i32> = lens
            .iter()
            .scan(0, |at, &l| {
                let d = *at;
                *at += l;
                Some(d)
            })
            .collect();
        let mut all = vec![0u8; lens.iter().map(|&l| l as usize).sum()];
        {
            let mut parts = PartitionMut::new(&mut all[..], &lens[..], &displs[..]);
            root.gather_varcount_into_root(mine.as_bytes(), &mut parts);
        }
        let texts = displs.iter().zip(&lens).map(|(&d, &l)| {
            String::from_utf8_lossy(&all[d as usize..(d + l) as usize]).into_owned()
        });
        write_whole(&grouped(texts));
    } else {
        root.gather_into(&len);
        root.gather_varcount_into(mine.as_bytes());
    }
}

/// One line per distinct message, in order of first appearance, naming the
/// ranks (and their hosts) that gave it: `ranks 0-3 on vm: error: ...`.
/// Each input is `HOST\nMESSAGE`, in rank order.
fn grouped(texts: impl Iterator<Item = String>) -> String {
    let mut groups: Vec<(String, Vec<usize>, Vec<String>)> = Vec::new();
    for (rank, text) in texts.enumerate() {
        let (host, message) = text.split_once('\n').unwrap_or(("unknown-host", &text));
        match groups.iter_mut().find(|(m, _, _)| m == message) {
            Some((_, ranks, hosts)) => {
                ranks.push(rank);
                if !hosts.iter().any(|h| h == host) {
                    hosts.push(host.to_string());
                }
            }
            None => groups.push((message.to_string(), vec![rank], vec![host.to_string()])),
        }
    }
    groups
        .iter()
        .map(|(message, ranks, hosts)| {
            format!(
                "{} on {}: {message}\n",
                super::rank_list(ranks),
                hosts.join(", ")
            )
        })
        .collect()
}

/// Prints `rank R on HOST: MESSAGE` on standard error (one write) and
/// aborts the job.
pub(crate) fn abort_with_message(message: &str, code: i32) -> ! {
    let (rank, host) = IDENTITY
        .get()
        .cloned()
        .unwrap_or((usize::MAX, "unknown-host".into()));
    write_whole(&format!("rank {rank} on {host}: {message}\n"));
    if mpi_is_live() {
        // SAFETY: MPI is initialised and not finalised; MPI_Abort on the world
        // communicator is valid from any rank at any time and does not return.
        unsafe {
            ffi::MPI_Abort(ffi::RSMPI_COMM_WORLD, code);
        }
    }
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::grouped;

    #[test]
    fn identical_messages_are_printed_once_with_their_ranks() {
        let texts = [
            "vm\nerror: a",
            "vm\nerror: a",
            "vm2\nerror: b",
            "vm2\nerror: a",
        ];
        assert_eq!(
            grouped(texts.iter().map(|t| t.to_string())),
            "ranks 0-1, 3 on vm, vm2: error: a\nrank 2 on vm2: error: b\n"
        );
    }
}
