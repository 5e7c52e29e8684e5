//! `tessera sort`: a distributed sort of generated or `.npy` keys, timed,
//! verified and reported.

use std::path::PathBuf;

use serde::Serialize;

use super::Resident;
use crate::{Error, Result};
use tessera::comm::{Comm, ReduceOp};
use tessera::device::DeviceChoice;
use tessera::distributed::block_range;
use tessera::distributed::sort::{
    SortAlgo, SortCheck, dist_sort, dist_sort_device, fingerprint, verify_sorted,
    verify_sorted_device,
};
use tessera::ops::generate::{KeyDist, generate_keys, generate_keys_on};
use tessera::ops::sort::SortKey;

/// What `tessera sort` was asked for.
#[derive(Debug, Clone)]
pub struct SortJob {
    /// Keys in all (generated input).
    pub n: usize,
    /// Distribution of generated keys.
    pub dist: KeyDist,
    /// A 1-D `.npy` file of keys instead (read on rank 0 and scattered).
    pub input: Option<PathBuf>,
    /// Where to write the sorted keys (`.npy`).
    pub out: Option<PathBuf>,
    /// Algorithm.
    pub algo: SortAlgo,
    /// Device.
    pub device: DeviceChoice,
    /// Seed of the generated keys.
    pub seed: u64,
    /// Check the result (sorted across ranks, a permutation of the input);
    /// without it nothing is checked.
    pub verify: bool,
}

/// What `tessera sort` reports (`--json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct SortReport {
    /// Keys.
    pub n: usize,
    /// Key type.
    pub dtype: &'static str,
    /// Ranks.
    pub ranks: usize,
    /// Algorithm.
    pub algo: SortAlgo,
    /// Distribution of generated keys (`input` for a file).
    pub dist: String,
    /// Device.
    pub device: String,
    /// Wall time of the sort (slowest rank).
    pub seconds: f64,
    /// n / seconds.
    pub keys_per_second: f64,
    /// keys_per_second / ranks.
    pub keys_per_second_per_rank: f64,
    /// Local sort time (slowest rank).
    pub local_sort_seconds: f64,
    /// Exchange time (slowest rank).
    pub exchange_seconds: f64,
    /// Merge time (slowest rank).
    pub merge_seconds: f64,
    /// Local computation, from the trace spans (slowest rank).
    pub compute_seconds: f64,
    /// Communication, waiting excluded (slowest rank).
    pub comm_seconds: f64,
    /// Waiting for other ranks (slowest rank).
    pub wait_seconds: f64,
    /// Every rank's split of the sort's time.
    pub split: Vec<tessera::trace::RankSplit>,
    /// Most keys on one rank over the mean.
    pub max_over_mean: f64,
    /// Globally sorted and a permutation of the input; none when not
    /// checked (no `--verify`).
    pub verified: Option<bool>,
    /// Whether the keys stayed in device memory from generation to result
    /// (generated keys on GPUs, sample sort): only the exchange and `--out`
    /// move them across the link.
    pub device_resident: bool,
    /// Generating the keys (slowest rank), outside `seconds`; for a
    /// device-resident run of normal keys, generating them on the host and
    /// copying them to the device.
    pub generate_seconds: f64,
    /// Checking the result (`--verify`: the fingerprint of the input and
    /// the check of the output; slowest rank), outside `seconds`.
    pub verify_seconds: f64,
    /// Copying the sorted keys to the host for `--out`, outside `seconds`
    /// (device-resident runs only; the copies of a host-resident GPU sort
    /// are part of its sort).
    pub copy_seconds: f64,
}

/// Runs the job on every rank (collective); the report is the same on
/// every rank.
pub fn run<K: SortKey>(comm: &Comm, job: &SortJob) -> Result<SortReport> {
    if job.input.is_none() && job.n < comm.size() {
        // Keys read from a file may be fewer than the ranks (some ranks
        // then hold none); a generated benchmark should give each a share.
        return Err(Error::Usage(format!(
            "--n {} keys are fewer than the {} ranks, so some ranks would sort nothing: pass --n of at least {}, or run with fewer ranks",
            job.n,
            comm.size(),
            comm.size()
        )));
    }
    let device = tessera::device::Device::select(job.device, comm.local_rank())?;
    // The paths below differ by device: every rank must take the same.
    comm.same_everywhere(
        "sort",
        &[tessera::comm::Agreed::named(
            "the device kind",
            device.kind_code(),
            |v| tessera::Device::kind_name(v).to_string(),
        )],
    )?;
    // Generated keys on GPUs stay in device memory (sample sort across
    // ranks; one rank has no algorithm to choose).
    let resident = comm.size() == 1 || job.algo == SortAlgo::Sample;
    if device.is_gpu_like() && job.input.is_none() && resident {
        return run_on_device::<K>(comm, job, device);
    }
    let t = std::time::Instant::now();
    let keys: Vec<K> = match &job.input {
        Some(path) => tessera::npy::read_keys_distributed(comm, path, 0)?,
        None => generate_keys(
            job.dist,
            job.n,
            block_range(job.n, comm.size(), comm.rank()),
            job.seed,
        ),
    };
    let generate_seconds = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let before = if job.verify {
        Some(fingerprint(comm, &keys)?)
    } else {
        None
    };
    let mut verify_seconds = t.elapsed().as_secs_f64();
    comm.barrier()?;
    let ((sorted, stats, mine), split) = tessera::comm::trace::measured(comm, || {
        let start = tessera::comm::wtime();
        let (sorted, stats) = dist_sort(comm, keys, job.algo, device)?;
        Ok((sorted, stats, tessera::comm::wtime() - start))
    })?;
    let t = std::time::Instant::now();
    let check = match &before {
        Some(before) => Some(verify_sorted(comm, before, &sorted)?),
        None => None,
    };
    verify_seconds += t.elapsed().as_secs_f64();
    if let Some(path) = &job.out {
        tessera::npy::write_keys_distributed(comm, &sorted, path, 0)?;
    }
    report::<K>(
        comm,
        job,
        device,
        (mine, stats, split),
        (sorted.len(), check),
        Resident {
            on_device: false,
            generate_seconds,
            copy_seconds: 0.0,
            verify_seconds,
        },
    )
}

/// Generated keys on GPUs: each rank's block is generated in device memory
/// (bit for bit the host's keys), sorted there
/// ([`dist_sort_device`]: the exchange moves device buffers), and
/// comes to the host only for `--out`. `--verify` checks the result on the
/// device against a fingerprint of keys the host generates itself, so the
/// generator and the sort are both checked.
fn run_on_device<K: SortKey>(
    comm: &Comm,
    job: &SortJob,
    device: tessera::Device,
) -> Result<SortReport> {
    let place = block_range(job.n, comm.size(), comm.rank());
    let t = std::time::Instant::now();
    let before = if job.verify {
        let input: Vec<K> = generate_keys(job.dist, job.n, place.clone(), job.seed);
        Some(fingerprint(comm, &input)?)
    } else {
        None
    };
    let mut verify_seconds = t.elapsed().as_secs_f64();
    comm.barrier()?;
    let t = std::time::Instant::now();
    let keys = generate_keys_on::<K>(device, job.dist, job.n, place, job.seed)?;
    keys.synchronize()?;
    let generate_seconds = t.elapsed().as_secs_f64();
    comm.barrier()?;
    let ((mut sorted, stats, mine), split) = tessera::comm::trace::measured(comm, || {
        let start = tessera::comm::wtime();
        let (sorted, stats) = dist_sort_device(comm, keys)?;
        Ok((sorted, stats, tessera::comm::wtime() - start))
    })?;
    let t = std::time::Instant::now();
    let check = match &before {
        Some(before) => Some(verify_sorted_device(comm, before, &mut sorted)?),
        None => None,
    };
    verify_seconds += t.elapsed().as_secs_f64();
    let mut copy_seconds = 0.0;
    if let Some(path) = &job.out {
        let t = std::time::Instant::now();
        let host = sorted.to_vec()?;
        copy_seconds = t.elapsed().as_secs_f64();
        tessera::npy::write_keys_distributed(comm, &host, path, 0)?;
    }
    report::<K>(
        comm,
        job,
        device,
        (mine, stats, split),
        (sorted.len(), check),
        Resident {
            on_device: true,
            generate_seconds,
            copy_seconds,
            verify_seconds,
        },
    )
}

/// The report of a run (collective): this rank's sort time, phases and
/// split, the keys it holds and the check, if any.
fn report<K: SortKey>(
    comm: &Comm,
    job: &SortJob,
    device: tessera::Device,
    (mine, stats, split): (
        f64,
        tessera::distributed::sort::SortStats,
        Vec<tessera::trace::RankSplit>,
    ),
    (held, check): (usize, Option<SortCheck>),
    resident: Resident,
) -> Result<SortReport> {
    let slowest = comm.all_reduce(
        &[
            mine,
            stats.local_sort_seconds,
            stats.exchange_seconds,
            stats.merge_seconds,
        ],
        ReduceOp::Max,
    )?;
    let resident = resident.slowest(comm, job.verify)?;
    // Keys in all and the load balance, checked or not.
    let n = comm.all_reduce(&[held as u64], ReduceOp::Sum)?[0] as usize;
    let most = comm.all_reduce(&[held as u64], ReduceOp::Max)?[0];
    let max_over_mean = check.as_ref().map_or_else(
        || {
            if n == 0 {
                1.0
            } else {
                most as f64 / (n as f64 / comm.size() as f64)
            }
        },
        |c| c.max_over_mean,
    );
    let kps = n as f64 / slowest[0];
    Ok(SortReport {
        n,
        dtype: K::DTYPE,
        ranks: comm.size(),
        algo: job.algo,
        dist: if job.input.is_some() {
            "input".into()
        } else {
            format!("{:?}", job.dist).to_lowercase()
        },
        device: device.to_string(),
        seconds: slowest[0],
        keys_per_second: kps,
        keys_per_second_per_rank: kps / comm.size() as f64,
        local_sort_seconds: slowest[1],
        exchange_seconds: slowest[2],
        merge_seconds: slowest[3],
        compute_seconds: tessera::trace::slowest(&split, |r| r.compute + r.copy),
        comm_seconds: tessera::trace::slowest(&split, |r| r.comm),
        wait_seconds: tessera::trace::slowest(&split, |r| r.wait),
        split,
        max_over_mean,
        verified: check.as_ref().map(|c| c.passed()),
        device_resident: resident.on_device,
        generate_seconds: resident.generate_seconds,
        copy_seconds: resident.copy_seconds,
        verify_seconds: resident.verify_seconds,
    })
}

/// The report as the lines `tessera sort` prints.
pub fn render(r: &SortReport) -> String {
    format!(
        "sort {n} {dtype} keys ({dist}) on {ranks} ranks, {algo:?} sort, device {device}\n\
         time {secs}: local sort {ls}, exchange {ex}, merge {mg} (slowest rank)\n\
         {split}\
         {kps:.1} M keys/s overall, {kpr:.1} M keys/s per rank; load balance max/mean {bal:.3}\n\
         {resident}{verdict}\n",
        n = r.n,
        dtype = r.dtype,
        dist = r.dist,
        ranks = r.ranks,
        algo = r.algo,
        device = r.device,
        secs = super::human_seconds(r.seconds),
        ls = super::human_seconds(r.local_sort_seconds),
        ex = super::human_seconds(r.exchange_seconds),
        mg = super::human_seconds(r.merge_seconds),
        split = tessera::trace::render_split(&r.split),
        kps = r.keys_per_second / 1e6,
        kpr = r.keys_per_second_per_rank / 1e6,
        bal = r.max_over_mean,
        resident = if r.device_resident {
            format!(
                "keys {} in {} and kept there; {}\n",
                // Normal keys take a logarithm and a cosine, which the
                // device's library does not round as the host's does.
                if r.dist == "normal" {
                    "generated on the host and copied to device memory"
                } else {
                    "generated in device memory"
                },
                super::human_seconds(r.generate_seconds),
                super::copied_to_host(r.copy_seconds, "the file")
            )
        } else {
            String::new()
        },
        verdict = match r.verified {
            Some(ok) => format!(
                "globally sorted and a permutation of the input: {} (check {})",
                if ok { "verified" } else { "FAILED" },
                super::human_seconds(r.verify_seconds)
            ),
            None => "not checked (pass --verify to check the sort)".to_string(),
        },
    )
}
