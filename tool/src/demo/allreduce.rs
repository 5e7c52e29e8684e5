//! `tessera allreduce`: the communication pattern of data-parallel training,
//! as a workload for scaling sweeps.
//!
//! Each of `iters` steps, every rank computes a contribution from each of
//! its share of `n` samples (a 16-step recurrence per sample, about 32
//! flops), accumulates them into a gradient of `len` values (sample `i`
//! into entry `i mod len`), and the ranks all-reduce the gradient. The
//! computation divides among the ranks; the all-reduce does not, and grows
//! with the rank count: Amdahl's law in one loop.
//!
//! The values are chosen so that every sum is exact in `f64` (integers
//! times powers of two, far from 2^53), so the result does not depend on
//! the rank count or the order of the additions, and it is checked exactly.

use rayon::prelude::*;
use serde::Serialize;

use crate::{Error, Result};
use tessera::comm::{Comm, ReduceOp};
use tessera::distributed::block_range;
use tessera::trace::RankSplit;

/// What `tessera allreduce` was asked for.
#[derive(Debug, Clone)]
pub struct AllreduceJob {
    /// Samples in all.
    pub n: usize,
    /// Gradient length (values all-reduced per step).
    pub len: usize,
    /// Steps.
    pub iters: usize,
}

/// What `tessera allreduce` reports (`--json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct AllreduceReport {
    /// Samples in all.
    pub n: usize,
    /// Gradient length.
    pub len: usize,
    /// Steps.
    pub iters: usize,
    /// Ranks.
    pub ranks: usize,
    /// Wall time of all steps (slowest rank).
    pub seconds: f64,
    /// Sum of the final gradient (the same for any rank count).
    pub checksum: f64,
    /// The all-reduced gradient sums exactly to the sum of every rank's
    /// contributions, on every step.
    pub verified: bool,
    /// Local computation (slowest rank).
    pub compute_seconds: f64,
    /// Communication, waiting excluded (slowest rank).
    pub comm_seconds: f64,
    /// Waiting for other ranks (slowest rank).
    pub wait_seconds: f64,
    /// Every rank's split of the time.
    pub split: Vec<RankSplit>,
}

/// Sample `i`'s contribution: a 16-step recurrence on an integer below
/// 1024 (exact in `f64`: at most 27 significant bits).
fn contribution(i: usize, step: usize) -> f64 {
    let v = ((i as u64 ^ step as u64).wrapping_mul(2_654_435_761) % 1024) as f64;
    let mut y = 0.0f64;
    for _ in 0..16 {
        y = y * 0.5 + v;
    }
    y
}

/// This rank's gradient for `step` over the samples `range`.
fn local_gradient(range: std::ops::Range<usize>, len: usize, step: usize) -> Vec<f64> {
    let _span = tessera::trace::compute("gradient");
    // Each of `len` entries sums the samples congruent to it, in parallel
    // over entries.
    (0..len)
        .into_par_iter()
        .map(|j| {
            let first = range.start + (j + len - range.start % len) % len;
            (first..range.end)
                .step_by(len)
                .map(|i| contribution(i, step))
                .sum()
        })
        .collect()
}

/// Runs the job on every rank (collective); the report is the same on
/// every rank.
pub fn run(comm: &Comm, job: &AllreduceJob) -> Result<AllreduceReport> {
    if job.len == 0 || job.iters == 0 {
        return Err(Error::Usage("--len and --iters must be at least 1".into()));
    }
    // Exactness: every value is a multiple of 2^-15 below 2^11, so sums of
    // fewer than 2^27 of them are exact.
    if job.n >= 1 << 27 {
        return Err(Error::Usage(format!(
            "--n {} is too large: keep it below 134217728 (sums must stay exact)",
            job.n
        )));
    }
    let range = block_range(job.n, comm.size(), comm.rank());
    comm.barrier()?;
    let ((seconds, checksum, verified), split) = tessera::comm::trace::measured(comm, || {
        let start = tessera::comm::wtime();
        let mut verified = true;
        let mut checksum = 0.0;
        for step in 0..job.iters {
            let mut grad = local_gradient(range.clone(), job.len, step);
            let mine: f64 = grad.iter().sum();
            comm.all_reduce_in_place(&mut grad, ReduceOp::Sum)?;
            let total = comm.all_reduce(&[mine], ReduceOp::Sum)?[0];
            checksum = grad.iter().sum::<f64>();
            verified &= checksum == total;
        }
        Ok((tessera::comm::wtime() - start, checksum, verified))
    })?;
    let seconds = comm.all_reduce(&[seconds], ReduceOp::Max)?[0];
    Ok(AllreduceReport {
        n: job.n,
        len: job.len,
        iters: job.iters,
        ranks: comm.size(),
        seconds,
        checksum,
        verified,
        compute_seconds: tessera::trace::slowest(&split, |r| r.compute),
        comm_seconds: tessera::trace::slowest(&split, |r| r.comm),
        wait_seconds: tessera::trace::slowest(&split, |r| r.wait),
        split,
    })
}

/// The report as the lines `tessera allreduce` prints.
pub fn render(r: &AllreduceReport) -> String {
    format!(
        "{iters} steps of {n} samples into a gradient of {len} values, all-reduced on {ranks} ranks\n\
         time {secs} ({per:.3} ms per step)\n\
         {split}\
         checksum {sum}: {verdict}\n",
        iters = r.iters,
        n = r.n,
        len = r.len,
        ranks = r.ranks,
        secs = super::human_seconds(r.seconds),
        per = r.seconds / r.iters as f64 * 1e3,
        split = tessera::trace::render_split(&r.split),
        sum = r.checksum,
        verdict = if r.verified { "verified" } else { "FAILED" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_whole_gradient_exactly() {
        let (n, len) = (10_007, 64);
        let whole = local_gradient(0..n, len, 3);
        for parts in [2, 3, 7] {
            let mut sum = vec![0.0; len];
            for p in 0..parts {
                for (s, g) in sum
                    .iter_mut()
                    .zip(local_gradient(block_range(n, parts, p), len, 3))
                {
                    *s += g;
                }
            }
            assert_eq!(sum, whole, "{parts} parts");
        }
        // Entry j holds exactly the samples i = j (mod len).
        let direct: f64 = (5..n).step_by(len).map(|i| contribution(i, 3)).sum();
        assert_eq!(whole[5], direct);
    }
}
