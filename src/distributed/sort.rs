//! Sorting keys spread over ranks: sample sort, and merge sort across ranks.
//!
//! Limits: one MPI call carries at most 2^31 - 1 keys, so both sorts need
//! every rank's share (before and after) below that; bigger inputs are
//! refused on every rank.
//!
//! Both sample sorts find the keys that split the global order into P
//! balanced blocks exactly, and spread equal keys over ranks by position
//! like any others, so the balance is exact whatever the duplicates: rank r
//! ends with exactly `block_range(N, P, r).len()` keys (`N / P`, the first
//! `N mod P` ranks one more), where N is the total, and ranks that start
//! with very different counts (or none) are balanced too.
//!
//! Sample sort ([`SortAlgo::Sample`], the default): every rank sorts its
//! keys; the boundary keys are found by a search over key values (each
//! rank counts by binary search in its sorted keys, one small all-reduce
//! per 8-bit digit of the keys: 4 rounds for 32-bit keys, 8 for 64-bit);
//! one all-to-all-v sends each rank a sorted run from every rank, and it
//! merges them on all its threads (multi-way merge path) into the memory
//! its keys were sent from.
//!
//! On the CPU the local sort is split around the exchange instead, and
//! nothing is merged: the local sort's first radix pass comes before it
//! (512 buckets by the top 9 bits where a sample of the keys over all
//! ranks spreads evenly over them; otherwise, as for floats, which crowd a
//! few exponents, about 512 ranges of top-16-bit values cut from the counts
//! of every rank's keys, more of them past 1e8 keys in all, so that each
//! stays near 195,000 keys); the search counts keys below a value from the
//! bucket sizes (and prefix counts), sorting only the buckets that hold a
//! boundary; the exchange moves bucketed keys; and each rank sorts each of
//! its buckets, read from every sender's part, in cache. Keys whose sample
//! crowds one 16-bit value (duplicate-heavy keys, 64-bit floats) would
//! leave buckets too large for the cache, and take the merge, whose local
//! sort evens out its buckets.
//!
//! Sample sort that sorts each key once ([`SortAlgo::Radix`]): the
//! boundaries are found on the unsorted keys (radix selection over counts
//! of the top 16 bits, summed over ranks: see `split.rs`). On the CPU the
//! classification is the radix sort's first pass: each rank writes its
//! keys once, bucket by bucket (about 256 buckets per rank, ranges of
//! top-16-bit values that each belong to one rank), one
//! `MPI_Alltoallv` sends each rank its buckets, and each rank sorts each
//! of its buckets, gathered from every sender, in cache on its threads: no
//! key is sorted twice and nothing is merged. (`TESSERA_EXCHANGE=shared`
//! writes the buckets straight into the receivers' shared-memory window
//! instead, where every rank shares one node.) On a GPU each rank writes
//! its keys into the part of the rank that owns them
//! ([`Comm::exchange`](crate::comm::Comm::exchange)) and sorts what it
//! received with one device sort. On the 2-core machine of BENCHMARKS.md
//! it is slower than sample sort at two ranks: finding its boundaries
//! reads the keys twice (counts of 65,536 top-16-bit bins, then the keys
//! in the bins that hold a boundary), where sample sort's bucketed search
//! needs only the sizes of the buckets of its first pass. Its buckets are
//! cut from those 16-bit counts, so keys that crowd a few top values (which
//! send sample sort back to merging) still sort each key once.
//!
//! Merge sort across ranks: local sort, then `ceil(log2 P)` rounds of
//! merging pairs of sorted sequences (any P, not only powers of two). In
//! round i, groups of `2^(i+1)` ranks merge the sequence of their lower half
//! with that of their upper half, and every rank of the group takes part:
//! the keys at the group's balanced block boundaries are found by the same
//! search over key values, one all-to-all-v brings each rank the two
//! sorted runs of its block, and it merges them on all its threads. No rank idles while
//! another merges, and every rank ends with its balanced block, as in
//! sample sort.

use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::split::Boundaries;
use crate::comm::{Agreed, Comm, ExchangePath, ReduceOp, rank_list, split_counts};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::ops::merge::merge_runs_on_into;
use crate::ops::sort::{
    Bits, PREFIXES, PrefixCounts, SortKey, bits_as_keys, keys_as_bits, prefix, radix_sort,
    radix_sort_into, scatter_prefixes, sort, sort_pieces_into, sort_with, top_bits_pass,
};
use crate::rng::mix64;

mod device;
pub use device::{dist_sort_device, fingerprint_device, verify_sorted_device};

/// The distributed sort algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SortAlgo {
    /// Sample sort: local sort, exact splitters, one all-to-all-v, one
    /// P-way merge (on the CPU, unless a 16-bit value crowds the keys: the
    /// local sort's first pass, exact splitters, one all-to-all-v, the
    /// rest of the local sort, and no merge).
    #[default]
    Sample,
    /// Merge sort across ranks: log2(P) rounds of two-way merges.
    Merge,
    /// Sample sort that sorts each key once: exact splitters on the
    /// unsorted keys, a first radix pass that classifies them into buckets
    /// of the ranks, one exchange, and an in-cache sort of each bucket.
    Radix,
}

named_choices!(SortAlgo { Sample => "sample", Merge => "merge", Radix => "radix" });

/// Where a rank's time went.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct SortStats {
    /// Local sort (sample sort: of the keys received).
    pub local_sort_seconds: f64,
    /// Finding the splitters and moving keys between ranks.
    pub exchange_seconds: f64,
    /// Merging received runs (merge sort).
    pub merge_seconds: f64,
}

/// The most keys sample sort leaves on one rank, for `total` keys on
/// `ranks` ranks: `ceil(total / ranks)`, the balanced share (see the module
/// documentation).
pub fn balance_bound(total: usize, ranks: usize) -> usize {
    total.div_ceil(ranks.max(1))
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
    agree::<K>(comm, "dist_sort", Some(algo), device)?;
    let sizes = shares_fit(comm, "dist_sort", keys.len())?;
    if algo == SortAlgo::Radix && comm.size() > 1 {
        return radix_sample_sort(&comm.unchecked(), keys, sizes as u64, device);
    }
    if comm.size() == 1 || device.is_gpu_like() {
        return sort_and_merge(comm, keys, algo, device);
    }
    // On the CPU every step works on the order-preserving bits (unsigned
    // integers: the fastest to compare and merge), mapped once each way in
    // the keys' own memory.
    let t = Instant::now();
    let bits = into_bits(keys);
    let mapping = t.elapsed().as_secs_f64();
    let plain = comm.unchecked();
    let (sorted, mut stats) = match (algo, first_pass(&plain, &bits, sizes as u64)?) {
        (SortAlgo::Sample, Some(pass)) => bucketed_sample_sort(&plain, bits, sizes as u64, pass)?,
        _ => sort_and_merge(comm, bits, algo, device)?,
    };
    let t = Instant::now();
    let sorted = from_bits::<K>(sorted);
    stats.local_sort_seconds += mapping + t.elapsed().as_secs_f64();
    Ok((sorted, stats))
}

/// The keys of every rank together (collective), after checking that every
/// rank's share, before and after the sort (and in between for merge sort,
/// whose groups balance their keys too), fits one MPI call.
pub(super) fn shares_fit(comm: &Comm, op: &'static str, len: usize) -> Result<usize> {
    let total = comm.all_reduce(&[len as u64], ReduceOp::Sum)?[0] as usize;
    let largest = comm.all_reduce(&[len as u64], ReduceOp::Max)?[0] as usize;
    let share = largest.max(balance_bound(total, comm.size()));
    if share > i32::MAX as usize {
        return Err(Error::CountOverflow { op, count: share });
    }
    Ok(total)
}

/// The names of the key types the sorts take ([`SortKey::DTYPE`]), in
/// the order of the codes by which ranks check that they agree.
pub const KEY_TYPES: [&str; 6] = ["u32", "u64", "i32", "i64", "f32", "f64"];

/// Checks that every rank of `comm` sorts keys of type `K` on the same kind
/// of device (and with the same algorithm, where one is named), with an
/// error naming the ranks that differ otherwise (collective).
pub(super) fn agree<K: SortKey>(
    comm: &Comm,
    op: &'static str,
    algo: Option<SortAlgo>,
    device: Device,
) -> Result<()> {
    let type_code = KEY_TYPES.iter().position(|&t| t == K::DTYPE).unwrap_or(99) as u64;
    let mut fields = Vec::with_capacity(3);
    if let Some(algo) = algo {
        fields.push(Agreed::named("the algorithm", algo as u64, |v| {
            SortAlgo::ALL
                .get(v as usize)
                .map_or("an unknown algorithm", |a| a.name())
                .to_string()
        }));
    }
    fields.push(Agreed::named("the device kind", device.kind_code(), |v| {
        Device::kind_name(v).to_string()
    }));
    fields.push(Agreed::named("the key type", type_code, |v| {
        KEY_TYPES
            .get(v as usize)
            .copied()
            .unwrap_or("another type")
            .to_string()
    }));
    comm.same_everywhere(op, &fields)
}

/// `keys` as their order-preserving bits, in the same memory.
fn into_bits<K: SortKey>(mut keys: Vec<K>) -> Vec<K::Bits> {
    keys_as_bits(&mut keys);
    bytemuck::allocation::cast_vec(keys)
}

/// The inverse of [`into_bits`].
fn from_bits<K: SortKey>(mut bits: Vec<K::Bits>) -> Vec<K> {
    bits_as_keys::<K>(&mut bits);
    bytemuck::allocation::cast_vec(bits)
}

/// Sample sort or merge sort of `keys`: local sort, then the exchanges and
/// merges of the algorithm.
fn sort_and_merge<K: SortKey>(
    comm: &Comm,
    mut keys: Vec<K>,
    algo: SortAlgo,
    device: Device,
) -> Result<(Vec<K>, SortStats)> {
    let t = Instant::now();
    // The local sort's scratch then receives keys from the other ranks.
    let mut spare = Vec::new();
    sort_with(device, &mut keys, &mut spare)?;
    let mut stats = SortStats {
        local_sort_seconds: t.elapsed().as_secs_f64(),
        ..Default::default()
    };
    if comm.size() == 1 {
        return Ok((keys, stats));
    }
    match algo {
        SortAlgo::Merge => merge_sort(&comm.unchecked(), keys, spare, stats, device),
        _ => {
            let (sorted, _) =
                split_and_merge(&comm.unchecked(), keys, spare, None, &mut stats, device)?;
            Ok((sorted, stats))
        }
    }
}

/// Keys per bucket of the host radix sample sort, over all ranks, for
/// `total` keys on `ranks` ranks: about [`RANK_BUCKETS`] buckets per rank
/// (a quarter more keys than an even share, so that evenly spread keys
/// fill one bucket where they could fill one and a sliver), and at most
/// [`FANOUT`] buckets in all.
fn bucket_keys(total: u64, ranks: usize) -> u64 {
    let share = total.div_ceil(ranks.max(1) as u64);
    let keys = (share / RANK_BUCKETS).max(total / FANOUT);
    (keys + keys / 4).max(1 << 12)
}

/// Buckets per rank of the radix sample sort: those of a rank's own radix
/// sort, whose in-cache sorts ran 20% faster at 195,000 keys per bucket
/// than at 390,000 (5e7 u32 keys on one thread, the machine of
/// BENCHMARKS.md).
const RANK_BUCKETS: u64 = 256;

/// Most buckets the classifying pass writes at once: more write streams
/// than that leave the first-level cache.
const FANOUT: u64 = 2048;

/// Sample sort of unsorted keys: exact boundaries, each key written once
/// to the rank that owns it, one local sort of what arrived.
fn radix_sample_sort<K: SortKey>(
    comm: &Comm,
    keys: Vec<K>,
    total: u64,
    device: Device,
) -> Result<(Vec<K>, SortStats)> {
    if !device.is_gpu_like() {
        return radix_sample_sort_host(comm, keys, total);
    }
    let t = Instant::now();
    // Order-preserving bits in place: the boundaries, the classification
    // and the radix sort all work on them.
    let mut keys = into_bits(keys);
    let bits: &[K::Bits] = &keys;
    let threads = rayon::current_num_threads().max(1);
    let chunk = bits.len().div_ceil(4 * threads).max(1 << 16);
    let bounds = Boundaries::find(comm, bits, total, chunk)?;
    let plan = bounds.plan(bits);
    // The keys' buffer, once scattered, holds the sorted keys that arrive
    // (its pages are already mapped).
    let buffer = std::cell::Cell::new(None);
    let mut sort_seconds = 0.0;
    let (sorted, _path) = comm.exchange::<K::Bits, Result<Vec<K>>>(
        &plan.send_counts,
        |parts| {
            bounds.scatter(&keys, &plan, parts);
            buffer.set(Some(std::mem::take(&mut keys)));
        },
        |received, _from| {
            let t = Instant::now();
            let sorted = sort_received::<K>(device, received, buffer.take().unwrap_or_default());
            sort_seconds = t.elapsed().as_secs_f64();
            sorted
        },
        ExchangePath::from_env()?,
    )?;
    let stats = SortStats {
        local_sort_seconds: sort_seconds,
        exchange_seconds: t.elapsed().as_secs_f64() - sort_seconds,
        merge_seconds: 0.0,
    };
    Ok((sorted?, stats))
}

/// [`radix_sample_sort`] on the CPU, where the classification is the
/// first pass of the radix sort: each rank writes its keys bucket by
/// bucket (ranges of top-16-bit bins, each owned by one rank; see
/// [`Boundaries::buckets`]), sends each rank its buckets, and sorts each of
/// its own buckets, gathered from every sender, in cache and on its
/// threads. Keys move through `MPI_Alltoallv` between buffers whose pages
/// are mapped already, or, with `TESSERA_EXCHANGE=shared` and every rank
/// on one node, are written straight into the receivers' shared-memory
/// window (whose fresh pages cost more than the copy they save, on the
/// machine of BENCHMARKS.md).
fn radix_sample_sort_host<K: SortKey>(
    comm: &Comm,
    keys: Vec<K>,
    total: u64,
) -> Result<(Vec<K>, SortStats)> {
    let t = Instant::now();
    let (p, me) = (comm.size(), comm.rank());
    let mut bits = into_bits(keys);
    let threads = rayon::current_num_threads().max(1);
    let chunk = bits.len().div_ceil(4 * threads).max(1 << 16);
    let bounds = Boundaries::find(comm, &bits, total, chunk)?;
    let buckets = bounds.buckets(bucket_keys(total, p));
    // Every rank's count of each of this rank's buckets.
    let per_rank: Vec<usize> = (0..p).map(|r| buckets.of_rank(r).len()).collect();
    let wire: Vec<u64> = buckets.counts.iter().map(|&c| c as u64).collect();
    let from = comm.all_to_all_v(&wire, &per_rank)?;
    let send_counts: Vec<usize> = (0..p)
        .map(|r| buckets.counts[buckets.of_rank(r)].iter().sum())
        .collect();
    let mut stats = SortStats {
        exchange_seconds: t.elapsed().as_secs_f64(),
        ..Default::default()
    };
    let mine = buckets.of_rank(me).len();
    if ExchangePath::from_env()? == ExchangePath::Shared {
        let t = Instant::now();
        let buffer = std::cell::Cell::new(None);
        let mut sort_seconds = 0.0;
        let (sorted, _path) = comm.exchange::<K::Bits, Vec<K::Bits>>(
            &send_counts,
            |parts| {
                bounds.scatter_buckets(&bits, &buckets, parts);
                buffer.set(Some(std::mem::take(&mut bits)));
            },
            |received, sent| {
                let t = Instant::now();
                let mut out = buffer.take().unwrap_or_default();
                fit(&mut out, received.len());
                sort_buckets(received, sent, &from, mine, &mut out);
                sort_seconds = t.elapsed().as_secs_f64();
                out
            },
            ExchangePath::Shared,
        )?;
        stats.local_sort_seconds = sort_seconds;
        stats.exchange_seconds += t.elapsed().as_secs_f64() - sort_seconds;
        return Ok((from_bits(sorted), stats));
    }
    let t = Instant::now();
    let mut scratch: Vec<K::Bits> = crate::device::cpu::zeroed_vec_huge(bits.len());
    {
        let mut parts = split_counts(&mut scratch, &send_counts);
        bounds.scatter_buckets(&bits, &buckets, &mut parts);
    }
    stats.local_sort_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let received = comm.all_to_all_v_into(&scratch, &send_counts, bits)?;
    stats.exchange_seconds += t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut out = scratch;
    fit(&mut out, received.data.len());
    sort_buckets(&received.data, &received.counts, &from, mine, &mut out);
    stats.local_sort_seconds += t.elapsed().as_secs_f64();
    Ok((from_bits(out), stats))
}

/// `buf` at length `len`, writing only the elements it gains.
fn fit<T: bytemuck::Zeroable + Clone>(buf: &mut Vec<T>, len: usize) {
    if buf.len() >= len {
        buf.truncate(len);
    } else {
        buf.resize(len, T::zeroed());
    }
}

/// Sorts this rank's `buckets` buckets into `out` (as long as `received`)
/// on its threads: `received` holds what each rank sent (`sent[s]` keys
/// from rank s, in rank order), bucket by bucket, and `from` how many keys
/// of each bucket each rank sent.
fn sort_buckets<B: Bits>(
    received: &[B],
    sent: &[usize],
    from: &crate::comm::Varying<u64>,
    buckets: usize,
    out: &mut [B],
) {
    // Each sender's part, cut into its buckets.
    let mut pieces: Vec<Vec<&[B]>> = (0..buckets)
        .map(|_| Vec::with_capacity(sent.len()))
        .collect();
    let mut rest = received;
    for (s, &n) in sent.iter().enumerate() {
        let (mut part, tail) = rest.split_at(n);
        rest = tail;
        for (j, &c) in from.part(s).iter().enumerate() {
            let (head, tail) = part.split_at(c as usize);
            pieces[j].push(head);
            part = tail;
        }
    }
    sort_pieces(&pieces, out);
}

/// Sorts each bucket, the keys of its pieces, into its part of `out` (the
/// buckets' parts in order), on the rank's threads.
fn sort_pieces<B: Bits>(pieces: &[Vec<&[B]>], out: &mut [B]) {
    let lengths: Vec<usize> = pieces
        .iter()
        .map(|p| p.iter().map(|x| x.len()).sum())
        .collect();
    let outs = split_counts(out, &lengths);
    // One scratch buffer per piece of work that rayon hands a thread (a
    // run of buckets), reused bucket after bucket: no page is mapped or
    // zeroed per bucket.
    pieces
        .par_iter()
        .zip(outs)
        .for_each_init(Vec::new, |spare, (pieces, out)| {
            sort_pieces_into(pieces, out, spare)
        });
}

/// Buckets of [`bucketed_sample_sort`]'s first pass by top bits, and the
/// fewest shares of its pass by prefix ranges: 195,000 keys each for 1e8
/// keys, the size whose in-cache sorts run fastest on the machine of
/// BENCHMARKS.md.
const BUCKETS: usize = 512;

/// Keys a bucket of [`bucketed_sample_sort`]'s first pass by prefix
/// ranges should hold at most, over all ranks (1e8 / [`BUCKETS`]).
const BUCKET_KEYS: u64 = 195_313;

/// Shares of the keys that [`bucketed_sample_sort`]'s first pass by
/// prefix ranges cuts them into, for `total` keys over all ranks: a power
/// of two from [`BUCKETS`] up to 4096, enough for [`BUCKET_KEYS`] each
/// where they can be. For 1.5e8 f32 keys at two ranks, 1024 shares sorted
/// in 0.60-0.64 s against 0.66-0.88 s with 512. (The pass by top bits keeps
/// 512 buckets: 1024 sorted 1.5e8 u32 keys in 0.69-0.70 s against
/// 0.54-0.56 s, their scatter leaving the first-level cache; 3.2e8 keys,
/// whose 512 buckets overflow the cache after the exchange, sorted as fast
/// with 2048.)
fn bucket_count(total: u64) -> usize {
    (total.div_ceil(BUCKET_KEYS) as usize)
        .next_power_of_two()
        .clamp(BUCKETS, 4096)
}

/// [`scatter_prefixes`] into at most `buckets` buckets (up to 4096).
fn scatter_prefixes_into<B: Bits>(
    src: &[B],
    dst: &mut [B],
    counts: &PrefixCounts,
    bucket_of: &[u16],
    buckets: usize,
) -> Vec<usize> {
    match buckets {
        0..=1024 => scatter_prefixes::<B, u16, 1024>(src, dst, counts, bucket_of),
        1025..=2048 => scatter_prefixes::<B, u16, 2048>(src, dst, counts, bucket_of),
        _ => scatter_prefixes::<B, u16, 4096>(src, dst, counts, bucket_of),
    }
}

/// How [`bucketed_sample_sort`]'s first pass buckets the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstPass {
    /// By their top 9 bits: keys that spread evenly over them.
    TopBits,
    /// By ranges of their top 16 bits, cut from the counts of every
    /// rank's keys so that each holds about its share of them: keys
    /// that crowd a few top values (floats crowd a few exponents) but
    /// spread over their next bits.
    Prefixes,
}

/// How [`bucketed_sample_sort`] can bucket the keys of all ranks, from a
/// sample of them (collective; every rank gets the same answer), or
/// `None` where it should not run and the keys take the merge: too few
/// keys (64 per bucket and rank), or one value of the top 16 bits holding
/// more than a 128th of some rank's sample (duplicate-heavy keys, such as
/// small integers, and 64-bit floats, whose top 16 bits keep only 4 bits
/// of the mantissa): its bucket, four shares and more, would be sorted
/// where it holds a boundary and again where it is received, and would
/// not fit in cache there. (Uniform f64 keys sorted 10% slower so.)
fn first_pass<B: Bits>(comm: &Comm, keys: &[B], total: u64) -> Result<Option<FirstPass>> {
    if total < (64 * BUCKETS * comm.size()) as u64 {
        return Ok(None);
    }
    const SAMPLES: usize = 4096;
    let step = (keys.len() / SAMPLES).max(1);
    let mut sample: Vec<u16> = keys
        .iter()
        .step_by(step)
        .map(|&k| prefix(k) as u16)
        .collect();
    // Counts of the top 9 bits, and the ranks whose sample crowds one
    // 16-bit value.
    let mut hist = vec![0u64; BUCKETS + 1];
    for &p in &sample {
        hist[usize::from(p) >> (16 - BUCKETS.ilog2())] += 1;
    }
    sample.sort_unstable();
    let longest = sample.chunk_by(|a, b| a == b).map(<[u16]>::len).max();
    // (A sample of fewer keys than a bucket's share of it would be says
    // nothing either way.)
    hist[BUCKETS] = u64::from(sample.len() >= 1024 && longest.unwrap_or(0) * 128 > sample.len());
    let hist = comm.all_reduce(&hist, ReduceOp::Sum)?;
    let (hist, crowded) = hist.split_at(BUCKETS);
    let sampled: u64 = hist.iter().sum();
    let most = hist.iter().copied().max().unwrap_or(0);
    Ok(if most * BUCKETS as u64 <= 4 * sampled {
        Some(FirstPass::TopBits)
    } else if crowded[0] == 0 {
        Some(FirstPass::Prefixes)
    } else {
        None
    })
}

/// The buckets of [`bucketed_sample_sort`]'s first pass on this rank.
struct Buckets {
    /// Where each bucket starts in the pass's output, and where the last
    /// ends.
    start: Vec<usize>,
    /// `None`: bucketed by the top 9 bits. Otherwise the bucket of each
    /// value of the top 16 bits, and this rank's keys below each value.
    prefixes: Option<(Vec<u16>, Vec<u64>)>,
    /// Bits of the keys below those that pick their bucket or prefix.
    shift: u32,
}

impl Buckets {
    fn new(sizes: &[usize], prefixes: Option<(Vec<u16>, Vec<u64>)>, width: u32) -> Self {
        let mut start = vec![0usize; sizes.len() + 1];
        for (d, &c) in sizes.iter().enumerate() {
            start[d + 1] = start[d] + c;
        }
        let shift = match prefixes {
            None => width - sizes.len().ilog2(),
            Some(_) => width - 16,
        };
        Buckets {
            start,
            prefixes,
            shift,
        }
    }

    fn len(&self) -> usize {
        self.start.len() - 1
    }

    /// The bucket of keys with bits `x`.
    fn of(&self, x: u64) -> usize {
        let top = (x >> self.shift) as usize;
        match &self.prefixes {
            None => top,
            Some((bucket_of, _)) => usize::from(bucket_of[top]),
        }
    }

    /// This rank's keys below `x`, where the bucket sizes (or prefix
    /// counts) tell it without sorting: `x` the lowest value of a bucket
    /// (or of a 16-bit prefix).
    fn known_below(&self, x: u64) -> Option<u64> {
        if x & ((1u64 << self.shift) - 1) != 0 {
            return None;
        }
        let top = (x >> self.shift) as usize;
        Some(match &self.prefixes {
            None => self.start[top] as u64,
            Some((_, below)) => below[top],
        })
    }
}

/// The bucket of each value of the top 16 bits for a first pass by prefix
/// ranges, from the counts of every rank's keys: a bucket ends at the
/// first prefix that fills it to its share (1 / `buckets` of the keys) and
/// where a top-byte value begins (so at most `buckets + 256` buckets in
/// all), so that the in-cache sort of a bucket has at most the three lower
/// bytes of a 32-bit key to sort. No bucket is empty but the last, and
/// none holds more than a share but through its last prefix.
fn prefix_buckets(counts: &[u64], buckets: usize) -> Vec<u16> {
    let total: u64 = counts.iter().sum();
    let share = total.div_ceil(buckets as u64).max(1);
    let mut bucket_of = vec![0u16; PREFIXES];
    let (mut bucket, mut filled) = (0u16, 0u64);
    for (p, (slot, &here)) in bucket_of.iter_mut().zip(counts).enumerate() {
        if filled > 0 && (filled >= share || p % 256 == 0) {
            bucket += 1;
            filled = 0;
        }
        *slot = bucket;
        filled += here;
    }
    debug_assert!(usize::from(bucket) < buckets + 256);
    bucket_of
}

/// Sample sort on the CPU with the local sort split around the exchange
/// (collective; `keys` are order-preserving bits): one radix pass puts
/// this rank's keys in buckets ([`FirstPass`]); the balanced-block search
/// counts keys below a value from the bucket sizes (and prefix counts),
/// sorting only the buckets its queries fall inside (those that hold a
/// boundary); one `MPI_Alltoallv` sends each rank its keys, still
/// bucketed; and each rank sorts each bucket, read from every sender's
/// part, in cache. Every key is sorted once, and no run is merged.
fn bucketed_sample_sort<B: Bits>(
    comm: &Comm,
    keys: Vec<B>,
    total: u64,
    pass: FirstPass,
) -> Result<(Vec<B>, SortStats)> {
    let t = Instant::now();
    let n = keys.len();
    let width = 8 * B::BYTES as u32;
    let mut out: Vec<B> = crate::device::cpu::zeroed_vec_huge(n);
    let mut stats = SortStats::default();
    let buckets = match pass {
        FirstPass::TopBits => {
            let sizes = top_bits_pass::<B, BUCKETS>(&keys, &mut out);
            Buckets::new(&sizes, None, width)
        }
        FirstPass::Prefixes => {
            let counts = PrefixCounts::of(&keys);
            let mine = counts.total();
            let counted = t.elapsed().as_secs_f64();
            let all = comm.all_reduce(&mine, ReduceOp::Sum)?;
            stats.exchange_seconds = t.elapsed().as_secs_f64() - counted;
            // At most 2048 buckets filled to their share, which leaves
            // room for those where a top-byte value begins.
            let count = bucket_count(total).min(2048);
            let bucket_of = prefix_buckets(&all, count);
            let sizes = scatter_prefixes_into(&keys, &mut out, &counts, &bucket_of, count + 256);
            let mut below = mine;
            let mut sum = 0;
            for c in &mut below {
                (*c, sum) = (sum, sum + *c);
            }
            Buckets::new(&sizes, Some((bucket_of, below)), width)
        }
    };
    stats.local_sort_seconds = t.elapsed().as_secs_f64() - stats.exchange_seconds;
    let t = Instant::now();
    let start = &buckets.start;
    let mut sorted = vec![false; buckets.len()];
    let mut sort_seconds = 0.0;
    let counts = block_counts(comm, n, width, |queries| {
        Ok(queries
            .iter()
            .map(|&x| {
                if let Some(below) = buckets.known_below(x) {
                    return below;
                }
                let d = buckets.of(x);
                let bucket = &mut out[start[d]..start[d + 1]];
                if !sorted[d] {
                    let t = Instant::now();
                    radix_sort(bucket);
                    sorted[d] = true;
                    sort_seconds += t.elapsed().as_secs_f64();
                }
                (start[d] + bucket.partition_point(|k| k.widen() < x)) as u64
            })
            .collect())
    })?;
    let received = comm.all_to_all_v_into(&out, &counts, keys)?;
    stats.exchange_seconds += t.elapsed().as_secs_f64() - sort_seconds;
    let t = Instant::now();
    // What each rank sent is bucketed (ascending): cut it at each bucket's
    // first key.
    let mut pieces: Vec<Vec<&[B]>> = (0..buckets.len())
        .map(|_| Vec::with_capacity(comm.size()))
        .collect();
    for part in received.parts() {
        let mut rest = part;
        for (d, bucket) in pieces.iter_mut().enumerate() {
            let (head, tail) = rest.split_at(rest.partition_point(|k| buckets.of(k.widen()) <= d));
            if !head.is_empty() {
                bucket.push(head);
            }
            rest = tail;
        }
    }
    fit(&mut out, received.data.len());
    sort_pieces(&pieces, &mut out);
    stats.local_sort_seconds += sort_seconds + t.elapsed().as_secs_f64();
    Ok((out, stats))
}

/// Sorts the order-preserving bits that arrived (overwriting them) into
/// keys of their own buffer.
fn sort_received<K: SortKey>(
    device: Device,
    received: &mut [K::Bits],
    buffer: Vec<K::Bits>,
) -> Result<Vec<K>> {
    let mut sorted = buffer;
    sorted.clear();
    if device.is_gpu_like() {
        sorted.extend_from_slice(received);
        let mut keys = from_bits::<K>(sorted);
        sort(device, &mut keys)?;
        return Ok(keys);
    }
    sorted.resize(received.len(), bytemuck::Zeroable::zeroed());
    radix_sort_into(received, &mut sorted);
    Ok(from_bits::<K>(sorted))
}

/// Runs on keys this rank has already sorted locally: `ceil(log2 P)`
/// rounds; in round i the ranks form groups of `2^(i+1)` (the last one
/// smaller), whose lower half holds one sorted sequence and upper half
/// another, and every rank of the group merges its balanced share of the
/// two (see [`split_and_merge`]).
fn merge_sort<K: SortKey>(
    comm: &Comm,
    mut keys: Vec<K>,
    mut spare: Vec<K>,
    mut stats: SortStats,
    device: Device,
) -> Result<(Vec<K>, SortStats)> {
    let (me, p) = (comm.rank(), comm.size());
    let mut step = 1;
    while step < p {
        let first = me - me % (2 * step);
        let size = (2 * step).min(p - first);
        let group = comm
            .split(Some(first as u32), me as i32)?
            .expect("every rank has a color");
        if size > step {
            (keys, spare) = split_and_merge(
                &group.unchecked(),
                keys,
                spare,
                Some(step),
                &mut stats,
                device,
            )?;
        }
        step *= 2;
    }
    Ok((keys, stats))
}

/// Leaves each rank r of `group` its balanced block of the merge of the
/// sorted runs the ranks hold (collective): with `halves = Some(left)`,
/// ranks `[0, left)` hold one sorted sequence (in rank order) and the
/// others another; with `None` every rank's keys are a run of their own.
/// The keys at the block boundaries are found by a search over key values,
/// a digit of every boundary per all-reduce (each rank counts by binary
/// search in its sorted keys; see [`bisection_digit`]), ties split by
/// position; one all-to-all-v brings each rank its part of every run (into
/// `spare`'s memory), which it merges on all its threads into the memory
/// its keys were sent from. Returns the merged keys
/// and the receive buffer, for reuse.
fn split_and_merge<K: SortKey>(
    group: &Comm,
    keys: Vec<K>,
    spare: Vec<K>,
    halves: Option<usize>,
    stats: &mut SortStats,
    device: Device,
) -> Result<(Vec<K>, Vec<K>)> {
    let t = Instant::now();
    let size = group.size();
    let bits = |k: &K| k.to_bits().widen();
    let counts = block_counts(
        group,
        keys.len(),
        8 * <K::Bits as Bits>::BYTES as u32,
        |queries| {
            Ok(queries
                .iter()
                .map(|&x| keys.partition_point(|k| bits(k) < x) as u64)
                .collect())
        },
    )?;
    let received = group.all_to_all_v_into(&keys, &counts, spare)?;
    stats.exchange_seconds += t.elapsed().as_secs_f64();
    let t = Instant::now();
    let runs: Vec<&[K]> = match halves {
        Some(left) => {
            let (a, b) = received.data.split_at(received.displs[left.min(size)]);
            vec![a, b]
        }
        None => received.parts().collect(),
    };
    let merged = merge_runs_on_into(device, &runs, keys)?;
    stats.merge_seconds += t.elapsed().as_secs_f64();
    // What arrived becomes the next round's receive buffer.
    Ok((merged, received.data))
}

/// How many of this rank's sorted keys go to each rank of `group` so that
/// rank r receives the keys at global positions of its balanced block
/// (collective). `below(queries)` counts, for each query value, this
/// rank's keys whose order-preserving bits (of `width` bits) are below it.
/// The keys at the block boundaries are found a digit of every boundary
/// per all-reduce ([`bisection_digit`]); ties split by position, lower
/// ranks' copies first.
pub(super) fn block_counts(
    group: &Comm,
    len: usize,
    width: u32,
    mut below: impl FnMut(&[u64]) -> Result<Vec<u64>>,
) -> Result<Vec<usize>> {
    let size = group.size();
    let total = group.all_reduce(&[len as u64], ReduceOp::Sum)?[0];
    let targets: Vec<u64> = (1..size)
        .map(|q| crate::comm::block_range(total as usize, size, q).start as u64)
        .collect();
    // For each target, the largest x with (keys below x) <= target: the
    // key at that position, found a digit of every target per all-reduce.
    let mut x = vec![0u64; targets.len()];
    let digit = bisection_digit(targets.len());
    let mut left = width;
    while left > 0 {
        let w = digit.min(left);
        left -= w;
        let digits = (1u64 << w) - 1;
        // Keys below x_q + d 2^left for d = 1 .. 2^w - 1, target by target.
        let queries: Vec<u64> = x
            .iter()
            .flat_map(|&v| (1..=digits).map(move |d| v | (d << left)))
            .collect();
        let there = group.all_reduce(&below(&queries)?, ReduceOp::Sum)?;
        for (q, counts) in there.chunks(digits as usize).enumerate() {
            // Counts grow with d: the largest d that stays at or below
            // the target.
            let d = counts.partition_point(|&c| c <= targets[q]) as u64;
            x[q] |= d << left;
        }
    }
    // Keys below each boundary value over the group, this rank's copies of
    // it and those of lower ranks. Keys at or below v are those below
    // v + 1, or all of them when v is the largest value of the width.
    let top = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    let lt = below(&x)?;
    let above: Vec<u64> = x.iter().filter(|&&v| v < top).map(|&v| v + 1).collect();
    let mut le_below = below(&above)?.into_iter();
    let le: Vec<u64> = x
        .iter()
        .map(|&v| {
            if v < top {
                le_below.next().expect("one count per query")
            } else {
                len as u64
            }
        })
        .collect();
    let below_all = group.all_reduce(&lt, ReduceOp::Sum)?;
    let copies: Vec<u64> = le.iter().zip(&lt).map(|(a, b)| a - b).collect();
    let before_me = group.exclusive_scan(&copies, ReduceOp::Sum)?;
    // Position t_q cuts this rank's sorted keys after its keys below v_q
    // and those of its copies of v_q that come before t_q.
    let mut cuts = vec![0usize];
    for q in 0..targets.len() {
        let taken = targets[q]
            .saturating_sub(below_all[q] + before_me[q])
            .min(copies[q]);
        cuts.push((lt[q] + taken) as usize);
    }
    cuts.push(len);
    Ok(cuts.windows(2).map(|w| w[1] - w[0]).collect())
}

/// Bits resolved per all-reduce of the boundary search for `boundaries`
/// boundaries: up to 8 (4 rounds for 32-bit keys, 8 for 64-bit ones, each
/// of which costs a network latency), with at most 2^14 counts (128 KiB)
/// per all-reduce at many ranks.
fn bisection_digit(boundaries: usize) -> u32 {
    let mut width = 8;
    while width > 1 && (boundaries.max(1) << width) > 1 << 14 {
        width -= 1;
    }
    width
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
    Fingerprint::over(comm, keys.len(), sum, xor)
}

impl Fingerprint {
    /// The fingerprint of every rank's keys together, from this rank's
    /// count, sum and xor of mixed keys (collective).
    pub(super) fn over(comm: &Comm, count: usize, sum: u64, xor: u64) -> Result<Fingerprint> {
        // MPI_SUM on unsigned 64-bit integers wraps modulo 2^64, like ours.
        let parts = comm.all_reduce(&[count as u64, sum], ReduceOp::Sum)?;
        let xor = comm.all_reduce(&[xor], ReduceOp::BitXor)?[0];
        Ok(Fingerprint {
            count: parts[0],
            sum: parts[1],
            xor,
        })
    }
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
    let after = fingerprint(comm, keys)?;
    judge(comm, before, ends, after)
}

/// The verdict of [`verify_sorted`] from every rank's `ends` (non-empty,
/// first and last key's bits, locally sorted, count) and the fingerprints
/// before and after (collective).
pub(super) fn judge(
    comm: &Comm,
    before: &Fingerprint,
    ends: [u64; 5],
    after: Fingerprint,
) -> Result<SortCheck> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boundary_search_takes_wide_digits_within_its_count_budget() {
        // Few boundaries: 8-bit digits, 4 rounds for 32-bit keys.
        assert_eq!(bisection_digit(0), 8);
        assert_eq!(bisection_digit(64), 8);
        // Many: narrower digits, never more than 2^14 counts a round.
        for boundaries in [65, 1000, 4095, 1 << 13, 1 << 20] {
            let w = bisection_digit(boundaries);
            assert!((1..8).contains(&w), "{boundaries}: {w}");
            assert!(boundaries << w <= 1 << 14 || w == 1, "{boundaries}: {w}");
            assert!(
                boundaries << (w + 1) > 1 << 14,
                "{boundaries}: {w} is not the widest"
            );
        }
    }

    #[test]
    fn the_pass_by_prefixes_takes_more_buckets_for_more_keys() {
        assert_eq!(bucket_count(0), BUCKETS);
        assert_eq!(bucket_count(100_000_000), 512);
        assert_eq!(bucket_count(100_000_257), 1024);
        assert_eq!(bucket_count(320_000_000), 2048);
        assert_eq!(bucket_count(u64::MAX / 2), 4096);
        for total in [
            1u64 << 20,
            99_999_999,
            150_000_000,
            400_000_000,
            800_000_000,
        ] {
            let count = bucket_count(total);
            assert!(count.is_power_of_two() && (BUCKETS..=4096).contains(&count));
            // As few buckets as keep each at its size, where 4096 can.
            assert!(total.div_ceil(count as u64) <= BUCKET_KEYS || count == 4096);
            assert!(count == BUCKETS || total.div_ceil(count as u64 / 2) > BUCKET_KEYS);
        }
    }

    #[test]
    fn prefix_buckets_fill_their_share_and_begin_with_each_top_byte() {
        // Crowded counts: floats in [0.5, 1) and [0.25, 0.5) (two top-16-bit
        // runs), a hot prefix, scattered singles, an empty top byte.
        let mut counts = vec![0u64; PREFIXES];
        counts[0x3f00..0x3f80].fill(1000);
        counts[0x3e80..0x3f00].fill(500);
        counts[0x1234] = 90_000;
        for p in (0..PREFIXES).step_by(97) {
            counts[p] += 1;
        }
        counts[0x5000..0x5100].fill(0);
        let total: u64 = counts.iter().sum();
        let share = total.div_ceil(BUCKETS as u64);
        let bucket_of = prefix_buckets(&counts, BUCKETS);
        let mut sizes = vec![0u64; BUCKETS + 256];
        let mut largest_prefix = vec![0u64; BUCKETS + 256];
        for (p, (&b, &c)) in bucket_of.iter().zip(&counts).enumerate() {
            let b = usize::from(b);
            assert!(b < BUCKETS + 256);
            if p > 0 {
                let before = usize::from(bucket_of[p - 1]);
                // Buckets ascend with prefixes, one at a time.
                assert!(b == before || b == before + 1, "prefix {p:#x}");
                // A top byte's keys never share a bucket with the keys of
                // the byte before.
                if p % 256 == 0 && sizes[before] > 0 {
                    assert_eq!(b, before + 1, "prefix {p:#x}");
                }
            }
            sizes[b] += c;
            largest_prefix[b] = largest_prefix[b].max(c);
        }
        let used = usize::from(bucket_of[PREFIXES - 1]) + 1;
        for (b, &size) in sizes[..used].iter().enumerate() {
            // No empty bucket but the last; none over its share by more
            // than its last prefix.
            assert!(size > 0 || b == used - 1, "bucket {b} is empty");
            assert!(size < share + largest_prefix[b], "bucket {b}: {size}");
        }
        // The hot prefix, more than a share, ends its bucket.
        assert_eq!(bucket_of[0x1235], bucket_of[0x1234] + 1);
        // Every key has its bucket: the sizes add up.
        assert_eq!(sizes.iter().sum::<u64>(), total);
    }
}
