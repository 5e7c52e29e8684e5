//! Sample sort whose keys stay in device memory from start to end: the
//! GPU twin of [`dist_sort`](super::dist_sort)'s sample sort for keys that
//! already live on the device (generated there, or left by an earlier
//! step).
//!
//! Each rank sorts its keys on the device; the boundary keys of the
//! balanced blocks are found by the same search as on the host
//! ([`block_counts`](super::block_counts)), each round's counts taken by
//! binary searches on the device (a few hundred queries up, as many
//! counts down); [`Comm::all_to_all_v_device`] sends each rank its part of
//! every run (device addresses to MPI where it is CUDA-aware, otherwise
//! pairwise through host memory, copies overlapping the transfers); and the
//! received runs are merged on the device. Only the counts cross the link
//! besides what the exchange moves.

use std::time::Instant;

use super::{SortCheck, SortStats, block_counts, judge};
use crate::comm::Comm;
use crate::device::DeviceBuffer;
use crate::error::Result;
use crate::ops::merge::merge_device_runs;
use crate::ops::sort::{Bits, SortKey, SortedOnDevice, check_device, sort_device};

/// What a rank whose device step went well says when another's failed.
const FAILED_ELSEWHERE: &str = "another rank's device failed (its own message says how)";

/// Sorts the keys that every rank of `comm` holds in device memory
/// (collective): rank r ends with its balanced block of the sorted whole,
/// `block_range(N, P, r)`, in device memory on the same device. Returns the
/// block and the time of each phase.
///
/// # Errors
/// When the ranks disagree on the key type or the device kind, when a
/// rank's share does not fit one MPI call or one device sort (2^32 - 1
/// keys), or when the device or MPI fails.
pub fn dist_sort_device<K: SortKey>(
    comm: &Comm,
    mut keys: DeviceBuffer<K>,
) -> Result<(DeviceBuffer<K>, SortStats)> {
    let _span = crate::trace::region("dist_sort_device");
    let device = keys.device();
    super::agree::<K>(comm, "dist_sort_device", None, device)?;
    super::shares_fit(comm, "dist_sort_device", keys.len())?;
    let t = Instant::now();
    // A device that fails here (out of memory, say) fails on one rank: say
    // so on every rank before the collectives, so none waits in them.
    let local = sort_device(&mut keys, None).and_then(|()| keys.synchronize());
    comm.all_ok("dist_sort_device", local, FAILED_ELSEWHERE)?;
    let mut stats = SortStats {
        local_sort_seconds: t.elapsed().as_secs_f64(),
        ..Default::default()
    };
    if comm.size() == 1 {
        return Ok((keys, stats));
    }
    let group = comm.unchecked();
    let t = Instant::now();
    let counts = {
        let search = group.all_ok(
            "dist_sort_device",
            SortedOnDevice::new(&mut keys, "dist_sort_device"),
            FAILED_ELSEWHERE,
        )?;
        let n = search.len();
        let counts = block_counts(&group, n, 8 * size_of::<K>() as u32, |q| search.below(q));
        search.finish()?;
        counts?
    };
    let (received, from) = group.all_to_all_v_device(&keys, &counts)?;
    drop(keys);
    stats.exchange_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    // Each sender's run in a buffer of its own, then merged pairwise.
    let mut runs = Vec::with_capacity(from.len());
    let mut at = 0;
    for &c in &from {
        if c > 0 {
            let mut run = DeviceBuffer::<K>::uninit(device, c)?;
            run.copy_from(0, &received, at..at + c)?;
            runs.push(run);
        }
        at += c;
    }
    drop(received);
    let merged = merge_device_runs(device, runs)?;
    merged.synchronize()?;
    stats.merge_seconds = t.elapsed().as_secs_f64();
    Ok((merged, stats))
}

/// The fingerprint of every rank's device keys together (collective),
/// computed on the device: equal to [`fingerprint`](super::fingerprint) of
/// the same keys on the host.
pub fn fingerprint_device<K: SortKey>(
    comm: &Comm,
    keys: &mut DeviceBuffer<K>,
) -> Result<super::Fingerprint> {
    let (sum, xor, _) = check_device(keys)?;
    super::Fingerprint::over(comm, keys.len(), sum, xor)
}

/// [`verify_sorted`](super::verify_sorted) of keys in device memory
/// (collective): the order within each rank and the fingerprint are taken
/// on the device, and only each rank's first and last key come to the host.
pub fn verify_sorted_device<K: SortKey>(
    comm: &Comm,
    before: &super::Fingerprint,
    keys: &mut DeviceBuffer<K>,
) -> Result<SortCheck> {
    let _span = crate::trace::region("verify_sorted");
    let (sum, xor, descents) = check_device(keys)?;
    let n = keys.len();
    let end = |i: usize| -> Result<u64> {
        let mut k = [K::from_f64(0.0)];
        keys.download_range(i..i + 1, &mut k)?;
        Ok(k[0].to_bits().widen())
    };
    let ends = if n == 0 {
        [0, 0, 0, 1, 0]
    } else {
        [1, end(0)?, end(n - 1)?, (descents == 0) as u64, n as u64]
    };
    let after = super::Fingerprint::over(comm, n, sum, xor)?;
    judge(comm, before, ends, after)
}
