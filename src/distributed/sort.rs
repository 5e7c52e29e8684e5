//! Sorting keys spread over ranks: sample sort, and merge sort across ranks.
//!
//! Limits: one MPI call carries at most 2^31 - 1 keys, so sample sort needs
//! every rank's share (before and after) below that, and merge sort, which
//! gathers everything on rank 0, the total; bigger inputs are refused on
//! every rank. Every rank gathers all `16 P^2` samples (32 bytes each), which
//! is 512 MiB per rank at P = 1024.
//!
//! Sample sort (after Shi and Schaeffer's regular sampling, with
//! oversampling and weights): every rank sorts its keys, takes `s = 16 P`
//! regular samples, and all ranks pick the same `P - 1` splitters from the
//! gathered samples; keys go to their ranks through one all-to-all-v, and
//! each rank merges the sorted runs it received. Ties are broken by
//! `(key, source rank, source index)`, so equal keys are spread over ranks
//! like any others. Sample j of a rank holding n keys stands for the
//! `w <= ceil(n / s)` keys between two strides; splitter q is the first
//! sample whose cumulative weight reaches `q N / P`, which overshoots by
//! less than one weight (at most `N / s + 1`), and each rank's count of keys
//! below a splitter differs from its samples' weight by less than one
//! weight, `N / s + P` over all ranks, on either side of either splitter.
//! So whatever the duplicates no rank ends with more than
//! `N / P + 3 N / s + 2 P + 1` keys, that is `(1 + 3/16) N / P + 2 P + 1`,
//! where N is the total. Because samples are weighted, ranks that start with
//! very different counts (or none) are balanced too.
//!
//! Merge sort across ranks is the classic divide and conquer: local sort,
//! then `ceil(log2 P)` rounds in which rank `r` merges in the keys of rank
//! `r + 2^i` (any P, not only powers of two); rank 0 ends with everything
//! and scatters it back in equal blocks. It is there to compare with sample
//! sort: all keys pass through rank 0.

use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::comm::{Agreed, Comm, ReduceOp, rank_list};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::ops::merge::merge_runs_on;
use crate::ops::sort::{Bits, SortKey, sort};
use crate::rng::mix64;

/// Samples per rank, per rank in the job (s = 16 P).
pub const OVERSAMPLING: usize = 16;

/// The distributed sort algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SortAlgo {
    /// Sample sort: one all-to-all-v.
    #[default]
    Sample,
    /// Merge sort across ranks: log2(P) rounds of pairwise merges.
    Merge,
}

named_choices!(SortAlgo { Sample => "sample", Merge => "merge" });

/// Where a rank's time went.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct SortStats {
    /// Local sort.
    pub local_sort_seconds: f64,
    /// Sampling, splitters and moving keys between ranks.
    pub exchange_seconds: f64,
    /// Merging received runs.
    pub merge_seconds: f64,
}

/// The most keys sample sort leaves on one rank, for `total` keys on
/// `ranks` ranks (see the module documentation).
pub fn balance_bound(total: usize, ranks: usize) -> usize {
    let s = OVERSAMPLING * ranks;
    total.div_ceil(ranks) + 3 * total.div_ceil(s) + 2 * ranks + 1
}

/// Sorts the keys held by all ranks of `comm` (collective). Returns this
/// rank's part of the sorted sequence: every key on rank r is <= every key
/// on rank r + 1 (IEEE total order for floats).
///
/// ```
/// use tessera::Device;
/// use tessera::distributed::sort::{SortAlgo, dist_sort};
///
/// tessera::spmd(|world| {
///     let keys = vec![3.5f64, -1.0, 2.0, -0.0, 0.0];
///     let (sorted, _stats) = dist_sort(world, keys, SortAlgo::Merge, Device::Cpu)?;
///     if world.size() == 1 {
///         assert_eq!(sorted, vec![-1.0, -0.0, 0.0, 2.0, 3.5]);
///         assert!(sorted[1].is_sign_negative());
///     }
///     Ok(())
/// });
/// ```
pub fn dist_sort<K: SortKey>(
    comm: &Comm,
    keys: Vec<K>,
    algo: SortAlgo,
    device: Device,
) -> Result<(Vec<K>, SortStats)> {
    let _span = crate::trace::region("dist_sort");
    // The algorithms run unchecked internally: agree on them first, and on
    // sizes that every MPI call below can carry (counts are C ints).
    const KEY_TYPES: [&str; 6] = ["u32", "u64", "i32", "i64", "f32", "f64"];
    let type_code = KEY_TYPES.iter().position(|&t| t == K::DTYPE).unwrap_or(99) as u64;
    comm.same_everywhere(
        "dist_sort",
        &[
            Agreed::named("the algorithm", algo as u64, |v| {
                SortAlgo::ALL
                    .get(v as usize)
                    .map_or("an unknown algorithm", |a| a.name())
                    .to_string()
            }),
            Agreed::named("the device kind", device.kind_code(), |v| {
                Device::kind_name(v).to_string()
            }),
            Agreed::named("the key type", type_code, |v| {
                KEY_TYPES
                    .get(v as usize)
                    .copied()
                    .unwrap_or("another type")
                    .to_string()
            }),
        ],
    )?;
    let sizes = comm.all_reduce(&[keys.len() as u64], ReduceOp::Sum)?[0] as usize;
    let largest = comm.all_reduce(&[keys.len() as u64], ReduceOp::Max)?[0] as usize;
    let limit = i32::MAX as usize;
    let too_many = match algo {
        SortAlgo::Sample => largest > limit || balance_bound(sizes, comm.size()) > limit,
        SortAlgo::Merge => sizes > limit,
    };
    if too_many {
        return Err(Error::CountOverflow {
            op: "dist_sort",
            count: if algo == SortAlgo::Merge {
                sizes
            } else {
                largest.max(balance_bound(sizes, comm.size()))
            },
        });
    }
    let mut keys = keys;
    let t = Instant::now();
    sort(device, &mut keys)?;
    let stats = SortStats {
        local_sort_seconds: t.elapsed().as_secs_f64(),
        ..Default::default()
    };
    if comm.size() == 1 {
        return Ok((keys, stats));
    }
    match algo {
        SortAlgo::Sample => sample_sort(&comm.unchecked(), keys, stats, device),
        SortAlgo::Merge => merge_sort(&comm.unchecked(), keys, stats, device),
    }
}

/// Runs on keys this rank has already sorted locally.
fn sample_sort<K: SortKey>(
    comm: &Comm,
    keys: Vec<K>,
    mut stats: SortStats,
    device: Device,
) -> Result<(Vec<K>, SortStats)> {
    let (me, p) = (comm.rank(), comm.size());

    let t = Instant::now();
    let n = keys.len();
    let s = (OVERSAMPLING * p).min(n);
    // Sample j stands for the keys at positions [j n / s, (j + 1) n / s) and
    // is the middle one of them: (key bits, rank, index, weight).
    let mut samples: Vec<u64> = Vec::with_capacity(4 * s);
    for j in 0..s {
        let (lo, hi) = (j * n / s, (j + 1) * n / s);
        let idx = (lo + hi) / 2;
        samples.extend([
            keys[idx].to_bits().widen(),
            me as u64,
            idx as u64,
            (hi - lo) as u64,
        ]);
    }
    let all = comm.all_gather_v(&samples)?;
    let mut tuples: Vec<[u64; 4]> = all
        .data
        .chunks_exact(4)
        .map(|c| [c[0], c[1], c[2], c[3]])
        .collect();
    tuples.sort_unstable_by_key(|t| (t[0], t[1], t[2]));
    let total: u64 = tuples.iter().map(|t| t[3]).sum();
    // Splitter q is the first sample whose cumulative weight reaches q N / P.
    let mut splitters: Vec<(u64, u64, u64)> = Vec::with_capacity(p - 1);
    let mut cumulative = 0u64;
    let mut q = 1u64;
    for t in &tuples {
        cumulative += t[3];
        while q < p as u64 && cumulative * p as u64 >= q * total {
            splitters.push((t[0], t[1], t[2]));
            q += 1;
        }
    }
    while splitters.len() < p - 1 {
        splitters.push((u64::MAX, u64::MAX, u64::MAX));
    }
    // Rank r gets the keys whose (key, rank, index) lies after splitter r
    // and up to (including) splitter r + 1.
    let mut cuts = Vec::with_capacity(p + 1);
    cuts.push(0);
    for &splitter in &splitters {
        let pos = partition_by_tuple(&keys, me as u64, splitter);
        cuts.push(pos.max(*cuts.last().unwrap_or(&0)));
    }
    cuts.push(n);
    let counts: Vec<usize> = cuts.windows(2).map(|w| w[1] - w[0]).collect();
    let received = comm.all_to_all_v(&keys, &counts)?;
    drop(keys);
    stats.exchange_seconds = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let runs: Vec<&[K]> = received.parts().collect();
    let merged = merge_runs_on(device, &runs)?;
    stats.merge_seconds = t.elapsed().as_secs_f64();
    Ok((merged, stats))
}

/// How many of this rank's sorted keys come before `splitter` in the order
/// of `(key bits, rank, index)`.
fn partition_by_tuple<K: SortKey>(keys: &[K], me: u64, splitter: (u64, u64, u64)) -> usize {
    // (key_j, me, j) increases with j, so this is a binary search.
    let mut lo = 0usize;
    let mut hi = keys.len();
    while lo < hi {
        let mid = (lo + hi) / 2;
        if (keys[mid].to_bits().widen(), me, mid as u64) <= splitter {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Runs on keys this rank has already sorted locally.
fn merge_sort<K: SortKey>(
    comm: &Comm,
    mut keys: Vec<K>,
    mut stats: SortStats,
    device: Device,
) -> Result<(Vec<K>, SortStats)> {
    let (me, p) = (comm.rank(), comm.size());
    const TAG: i32 = 4242;
    let mut step = 1;
    while step < p {
        if me % (2 * step) == 0 {
            if me + step < p {
                let t = Instant::now();
                let (theirs, _) = comm.receive_vec::<K>(me + step, TAG)?;
                stats.exchange_seconds += t.elapsed().as_secs_f64();
                let t = Instant::now();
                keys = merge_runs_on(device, &[&keys, &theirs])?;
                stats.merge_seconds += t.elapsed().as_secs_f64();
            }
        } else if me % (2 * step) == step {
            let t = Instant::now();
            comm.send(&keys, me - step, TAG)?;
            keys = Vec::new();
            stats.exchange_seconds += t.elapsed().as_secs_f64();
        }
        step *= 2;
    }
    // Rank 0 holds everything: hand it back out in equal blocks.
    let t = Instant::now();
    let mine = comm.scatter_blocks(&keys, 0)?;
    stats.exchange_seconds += t.elapsed().as_secs_f64();
    Ok((mine, stats))
}

/// An order-independent summary of a multiset of keys: count, wrapping sum
/// and xor of a 64-bit mix of each key's bits. Equal for any permutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Fingerprint {
    /// Keys.
    pub count: u64,
    /// Wrapping sum of the mixed keys.
    pub sum: u64,
    /// Xor of the mixed keys.
    pub xor: u64,
}

/// The fingerprint of every rank's keys together (collective).
pub fn fingerprint<K: SortKey>(comm: &Comm, keys: &[K]) -> Result<Fingerprint> {
    let (sum, xor) = keys
        .par_iter()
        .map(|k| mix64(k.to_bits().widen()))
        .fold(|| (0u64, 0u64), |(s, x), m| (s.wrapping_add(m), x ^ m))
        .reduce(
            || (0, 0),
            |(s1, x1), (s2, x2)| (s1.wrapping_add(s2), x1 ^ x2),
        );
    // MPI_SUM on unsigned 64-bit integers wraps modulo 2^64, like ours.
    let parts = comm.all_reduce(&[keys.len() as u64, sum], ReduceOp::Sum)?;
    let xor = comm.all_reduce(&[xor], ReduceOp::BitXor)?[0];
    Ok(Fingerprint {
        count: parts[0],
        sum: parts[1],
        xor,
    })
}

/// What [`verify_sorted`] found.
#[derive(Debug, Clone, Serialize)]
pub struct SortCheck {
    /// Every rank's keys are in order, and each rank's first key is >= the
    /// previous non-empty rank's last.
    pub sorted: bool,
    /// The keys are a permutation of the input (same fingerprint).
    pub permutation: bool,
    /// Largest number of keys on one rank over the mean.
    pub max_over_mean: f64,
    /// The ranks where order breaks, if any.
    pub problem: Option<String>,
}

impl SortCheck {
    /// Sorted and a permutation of the input.
    pub fn passed(&self) -> bool {
        self.sorted && self.permutation
    }
}

/// Checks a distributed sort without gathering the keys (collective): each
/// rank checks its own order, the ranks compare their first and last keys
/// with their neighbours', and the fingerprint must equal `before`'s.
pub fn verify_sorted<K: SortKey>(
    comm: &Comm,
    before: &Fingerprint,
    keys: &[K],
) -> Result<SortCheck> {
    let _span = crate::trace::region("verify_sorted");
    let locally = keys
        .par_windows(2)
        .all(|w| w[0].to_bits() <= w[1].to_bits());
    let ends = [
        !keys.is_empty() as u64,
        keys.first().map_or(0, |k| k.to_bits().widen()),
        keys.last().map_or(0, |k| k.to_bits().widen()),
        locally as u64,
        keys.len() as u64,
    ];
    let all = comm.all_gather(&ends)?;
    let mut bad = Vec::new();
    let mut last: Option<u64> = None;
    let mut max = 0u64;
    for (r, e) in all.chunks_exact(5).enumerate() {
        max = max.max(e[4]);
        if e[3] == 0 {
            bad.push(r);
        }
        if e[0] == 1 {
            if last.is_some_and(|l| e[1] < l) {
                bad.push(r);
            }
            last = Some(e[2]);
        }
    }
    let after = fingerprint(comm, keys)?;
    let mean = after.count as f64 / comm.size() as f64;
    bad.dedup();
    Ok(SortCheck {
        sorted: bad.is_empty(),
        permutation: after == *before,
        max_over_mean: if after.count == 0 {
            1.0
        } else {
            max as f64 / mean
        },
        problem: (!bad.is_empty()).then(|| format!("order breaks at {}", rank_list(&bad))),
    })
}
