//! Micro-benchmarks of the runtime against rsmpi, measured in the same run.
//!
//! For each message size, three variants run in interleaved batches: the
//! Tessera call (checked), the same call on [`Comm::unchecked`], and the
//! equivalent call made directly through rsmpi on the same communicator and
//! buffers. Each batch is timed on every rank with `MPI_Wtime` between
//! barriers; a batch's time is the slowest rank's, and a figure is the median
//! over batches. The ratio against rsmpi shows what Tessera adds to Open MPI.

use mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
use mpi::point_to_point::{Destination, Source as _};
use mpi::topology::Communicator;
use serde::Serialize;

use crate::{Error, Result};
use tessera::comm::{Comm, ReduceOp, wtime};

/// The operation a benchmark measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchOp {
    /// Ping-pong between ranks 0 and 1; latency is half the round trip.
    P2p,
    /// All-reduce (sum) of f64 elements.
    Allreduce,
    /// Broadcast from rank 0.
    Bcast,
    /// All-to-all; the size is the block each rank sends to each rank.
    Alltoall,
}

/// One message size's figures.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    /// Payload bytes per call (per pair for all-to-all).
    pub bytes: usize,
    /// Microseconds per Tessera call, checked (median of batches).
    pub tessera_us: f64,
    /// Microseconds per Tessera call with the checks off.
    pub tessera_unchecked_us: f64,
    /// Microseconds per direct rsmpi call.
    pub rsmpi_us: f64,
    /// Payload GB/s of the checked Tessera call.
    pub tessera_gbps: f64,
    /// `tessera_us / rsmpi_us`: what the checked call adds (1.0 = nothing).
    pub ratio_vs_rsmpi: f64,
    /// `tessera_unchecked_us / rsmpi_us`: what the typed wrapper alone adds.
    pub unchecked_ratio_vs_rsmpi: f64,
}

/// Batches per variant and size; the median is reported.
const BATCHES: usize = 7;
/// Target duration of one batch, in seconds.
const BATCH_SECONDS: f64 = 0.01;

/// Runs the benchmark of `op` over `sizes` (bytes). Collective: every rank
/// calls it; the rows are the same on every rank.
pub fn run(comm: &Comm, op: BenchOp, sizes: &[usize]) -> Result<Vec<BenchRow>> {
    if op == BenchOp::P2p && comm.size() < 2 {
        return Err(Error::Usage(
            "the p2p benchmark needs at least 2 ranks: run it as `tessera run -n 2 bench p2p`"
                .into(),
        ));
    }
    let mut rows = Vec::with_capacity(sizes.len());
    for &bytes in sizes {
        let mut bench = Bufs::new(comm, op, bytes);
        let checked = comm.checked();
        let unchecked = comm.unchecked();
        // Warm up every variant once, then size the batches from the slowest.
        let mut estimate: f64 = 0.0;
        for variant in 0..3 {
            let t0 = wtime();
            bench.call(variant, &checked, &unchecked)?;
            estimate = estimate.max(wtime() - t0);
        }
        let estimate = unchecked.all_reduce(&[estimate], ReduceOp::Max)?[0];
        let iters = ((BATCH_SECONDS / estimate.max(1e-7)) as usize).clamp(1, 20_000);
        let mut times = [[0.0f64; BATCHES]; 3];
        for batch in 0..BATCHES {
            for (variant, slot) in times.iter_mut().enumerate() {
                unchecked.barrier()?;
                let t0 = wtime();
                for _ in 0..iters {
                    bench.call(variant, &checked, &unchecked)?;
                }
                let t = (wtime() - t0) / iters as f64;
                slot[batch] = unchecked.all_reduce(&[t], ReduceOp::Max)?[0];
            }
        }
        let [t, tu, tr] = times.map(|mut ts| median(&mut ts));
        // A ping-pong iteration is a round trip: report one-way time.
        let scale = if op == BenchOp::P2p { 0.5 } else { 1.0 };
        rows.push(BenchRow {
            bytes,
            tessera_us: t * scale * 1e6,
            tessera_unchecked_us: tu * scale * 1e6,
            rsmpi_us: tr * scale * 1e6,
            tessera_gbps: bytes as f64 / (t * scale) / 1e9,
            ratio_vs_rsmpi: t / tr,
            unchecked_ratio_vs_rsmpi: tu / tr,
        });
    }
    Ok(rows)
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Buffers for one size, reused across calls.
struct Bufs {
    op: BenchOp,
    bytes: Vec<u8>,
    bytes_out: Vec<u8>,
    floats: Vec<f64>,
    floats_out: Vec<f64>,
    rank: usize,
}

impl Bufs {
    fn new(comm: &Comm, op: BenchOp, bytes: usize) -> Self {
        let p = comm.size();
        let (n_bytes, n_floats) = match op {
            BenchOp::P2p | BenchOp::Bcast => (bytes, 0),
            BenchOp::Allreduce => (0, (bytes / 8).max(1)),
            BenchOp::Alltoall => (bytes * p, 0),
        };
        Bufs {
            op,
            bytes: (0..n_bytes).map(|i| i as u8).collect(),
            bytes_out: vec![0; n_bytes],
            floats: (0..n_floats).map(|i| i as f64).collect(),
            floats_out: vec![0.0; n_floats],
            rank: comm.rank(),
        }
    }

    /// One call of `variant`: 0 Tessera checked, 1 unchecked, 2 rsmpi.
    fn call(&mut self, variant: usize, checked: &Comm, unchecked: &Comm) -> Result<()> {
        let comm = if variant == 0 { checked } else { unchecked };
        let raw = unchecked.rsmpi();
        match (self.op, variant) {
            (BenchOp::P2p, 0 | 1) => match self.rank {
                0 => {
                    comm.send(&self.bytes, 1, 1)?;
                    comm.receive_into(&mut self.bytes_out, 1, 1)?;
                }
                1 => {
                    comm.receive_into(&mut self.bytes_out, 0, 1)?;
                    comm.send(&self.bytes_out, 0, 1)?;
                }
                _ => {}
            },
            (BenchOp::P2p, _) => match self.rank {
                0 => {
                    raw.process_at_rank(1).send_with_tag(&self.bytes[..], 1);
                    raw.process_at_rank(1)
                        .receive_into_with_tag(&mut self.bytes_out[..], 1);
                }
                1 => {
                    raw.process_at_rank(0)
                        .receive_into_with_tag(&mut self.bytes_out[..], 1);
                    raw.process_at_rank(0).send_with_tag(&self.bytes_out[..], 1);
                }
                _ => {}
            },
            (BenchOp::Allreduce, 0 | 1) => {
                comm.all_reduce_into(&self.floats, &mut self.floats_out, ReduceOp::Sum)?
            }
            (BenchOp::Allreduce, _) => raw.all_reduce_into(
                &self.floats[..],
                &mut self.floats_out[..],
                SystemOperation::sum(),
            ),
            (BenchOp::Bcast, 0 | 1) => comm.broadcast(&mut self.bytes, 0)?,
            (BenchOp::Bcast, _) => raw.process_at_rank(0).broadcast_into(&mut self.bytes[..]),
            (BenchOp::Alltoall, 0 | 1) => comm.all_to_all_into(&self.bytes, &mut self.bytes_out)?,
            (BenchOp::Alltoall, _) => raw.all_to_all_into(&self.bytes[..], &mut self.bytes_out[..]),
        }
        Ok(())
    }
}

/// Parses a size list: `8B..64MiB` (every power of two in the range),
/// `8B..64MiB:x4` (every fourth power), or a comma list `1KiB,1MiB,100`.
pub fn parse_sizes(spec: &str) -> Result<Vec<usize>> {
    let bad = |what: &str| {
        Error::Usage(format!(
            "bad --sizes value `{spec}`: {what}; write e.g. 8B..64MiB, 8B..64MiB:x4 or 1KiB,1MiB"
        ))
    };
    if let Some((lo, rest)) = spec.split_once("..") {
        let (hi, step) = match rest.split_once(":x") {
            Some((hi, step)) => (
                hi,
                step.parse::<usize>()
                    .map_err(|_| bad("the step after `:x` is not a whole number"))?,
            ),
            None => (rest, 2),
        };
        let (lo, hi) = (
            parse_size(lo).map_err(|e| bad(&e))?,
            parse_size(hi).map_err(|e| bad(&e))?,
        );
        if lo == 0 || lo > hi {
            return Err(bad(
                "the range must go from a positive size up to a larger one",
            ));
        }
        if step < 2 {
            return Err(bad("the step must be at least 2"));
        }
        let mut sizes = Vec::new();
        let mut s = lo;
        while s <= hi {
            sizes.push(s);
            s = s
                .checked_mul(step)
                .ok_or_else(|| bad("the range overflows"))?;
        }
        Ok(sizes)
    } else {
        spec.split(',')
            .map(|s| parse_size(s.trim()).map_err(|e| bad(&e)))
            .collect()
    }
}

/// Parses `64`, `64B`, `4KiB`, `16MiB`, `1GiB` (also `K`, `M`, `G`, `KB`...,
/// all powers of 1024).
pub fn parse_size(s: &str) -> std::result::Result<usize, String> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits);
    let n: usize = num
        .parse()
        .map_err(|_| format!("`{s}` does not start with a number"))?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown unit `{other}` in `{s}`")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("8B"), Ok(8));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("3k"), Ok(3072));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("4PiB").is_err());
        let r = parse_sizes("8B..64MiB").unwrap();
        assert_eq!(r.first(), Some(&8));
        assert_eq!(r.last(), Some(&(64 << 20)));
        assert_eq!(r.len(), 24);
        assert_eq!(
            parse_sizes("1KiB..1MiB:x4").unwrap(),
            vec![1024, 4096, 16384, 65536, 262144, 1048576]
        );
        assert_eq!(parse_sizes("1KiB, 100").unwrap(), vec![1024, 100]);
        assert!(parse_sizes("64MiB..8B").is_err());
        assert!(parse_sizes("8B..1KiB:x1").is_err());
    }

    #[test]
    fn median_is_the_middle() {
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), 3.0);
    }
}
