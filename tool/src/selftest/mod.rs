//! `tessera selftest`: checks every part of the runtime on the ranks of a
//! job, against values each rank computes on its own.
//!
//! Each rank's contribution is a known function of its rank, so every rank
//! can compute what any collective must return without communicating. Run it
//! on a new cluster or after an MPI upgrade: `tessera run -n 4 selftest`.
//! The integration tests launch it at several rank counts.

use tessera::Error;
use tessera::comm::{Comm, ReduceOp};

/// A check's name and the `(rank, message)` of every rank where it failed.
pub type CheckReport = (String, Vec<(usize, String)>);

/// A check's verdict on one rank.
pub type Outcome = std::result::Result<(), String>;

/// A named check.
pub struct Check {
    /// Name, as given on the command line.
    pub name: &'static str,
    /// What it covers.
    pub about: &'static str,
    run: fn(&Comm) -> Outcome,
}

/// Every check, in the order they run.
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            name: "p2p",
            about: "send, receive, sendrecv, short buffers, any-source",
            run: p2p::p2p,
        },
        Check {
            name: "nonblocking",
            about: "isend/irecv, ibroadcast, iall_reduce, iall_to_all(v)",
            run: nonblocking::nonblocking,
        },
        Check {
            name: "broadcast",
            about: "broadcast and broadcast_vec from every root",
            run: collectives::broadcast,
        },
        Check {
            name: "reduce",
            about: "reduce and all-reduce, every operation, ints and floats",
            run: collectives::reduce,
        },
        Check {
            name: "gather",
            about: "gather, scatter, all-gather and their v forms with empty ranks",
            run: collectives::gather,
        },
        Check {
            name: "alltoall",
            about: "all-to-all and all-to-all-v with empty blocks",
            run: collectives::alltoall,
        },
        Check {
            name: "scan",
            about: "scan, exclusive scan, reduce-scatter",
            run: collectives::scan,
        },
        Check {
            name: "comm",
            about: "split, split_shared, dup, unchecked",
            run: communicators::comm_ops,
        },
        Check {
            name: "grid",
            about: "process grids and their row/column communicators",
            run: communicators::grid,
        },
        Check {
            name: "matmul",
            about: "distributed matrices and SUMMA against a serial reference",
            run: matmul::matmul,
        },
        Check {
            name: "sort",
            about: "sample sort and merge sort against a serial sort, every distribution and key type",
            run: sort::sort_check,
        },
        Check {
            name: "mismatch",
            about: "disagreeing arguments give an error on every rank, no hang",
            run: mismatch::mismatch,
        },
    ]
}

/// Runs the named checks (all when `names` is empty) on every rank of `comm`.
/// Collective. Returns `(name, failures)` per check, where failures lists
/// `(rank, message)` for the ranks that failed; the same on every rank.
/// `done` sees each check's report as soon as that check has ended, so a
/// check that never ends is the one after the last reported.
pub fn run(
    comm: &Comm,
    names: &[String],
    mut done: impl FnMut(&CheckReport),
) -> crate::Result<Vec<CheckReport>> {
    let all = checks();
    for n in names {
        if !all.iter().any(|c| c.name == n) {
            let known: Vec<String> = all
                .iter()
                .map(|c| format!("\n  {:<10} {}", c.name, c.about))
                .collect();
            return Err(crate::Error::Usage(format!(
                "unknown check `{n}`: choose from{}",
                known.concat()
            )));
        }
    }
    let mut report = Vec::new();
    for check in all
        .iter()
        .filter(|c| names.is_empty() || names.iter().any(|n| n == c.name))
    {
        // Run on the checked communicator, then (for data checks) unchecked.
        let mut outcome = (check.run)(comm);
        // Whether to go on is decided together, so that no rank starts the
        // second pass while another has stopped.
        let all_ok = comm
            .unchecked()
            .all_reduce(&[outcome.is_ok() as u8], ReduceOp::Min)?[0]
            == 1;
        if all_ok && check.name != "mismatch" {
            outcome = (check.run)(&comm.unchecked()).map_err(|e| format!("unchecked: {e}"));
        }
        let message = outcome.err().unwrap_or_default();
        let failures = comm
            .unchecked()
            .all_gather_v(message.as_bytes())?
            .parts()
            .enumerate()
            .filter(|(_, m)| !m.is_empty())
            .map(|(r, m)| (r, String::from_utf8_lossy(m).into_owned()))
            .collect();
        report.push((check.name.to_string(), failures));
        done(report.last().expect("pushed"));
    }
    Ok(report)
}

/// Fails the check with the formatted message unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

// The checks, one file per family (after `ensure!`, which they use).
mod collectives;
mod communicators;
mod matmul;
mod mismatch;
mod nonblocking;
mod p2p;
mod sort;

/// A library error as a check's failure message.
fn err(e: Error) -> String {
    e.to_string()
}

/// A value that rank `r` contributes at index `i`.
fn f(r: usize, i: usize) -> i64 {
    ((r * 131 + i * 17) % 1009) as i64 - 500
}
