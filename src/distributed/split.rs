//! Exact splitters for sample sort, found by radix selection on unsorted
//! keys, and the classification of keys to ranks.
//!
//! Rank r of P is to receive the keys at global sorted positions
//! `[t_r, t_{r+1})`, the r-th of P balanced blocks of `0..N`
//! ([`block_range`]): every rank gets `N / P` keys, the first `N mod P`
//! ranks one more, whatever the keys. Boundary q is the key `v_q` at
//! position `t_q`. All boundaries are found together, most significant
//! bits first: every rank counts its keys by their top 16 bits, the counts
//! are summed over ranks (`MPI_Allreduce`), and each boundary's bin is the
//! one where the running count passes `t_q`; the keys in the boundaries'
//! bins (a few per boundary) are then counted by their next 16 or 8 bits,
//! and so on down to the last bit. Two reads of the keys in all (the first
//! count and the pick of the candidates); later rounds read only the
//! candidates.
//!
//! A key below every boundary value goes to rank 0; a key strictly between
//! boundary values to the rank after the boundaries below it. Copies of a
//! boundary value `v` (which equal keys are) take the positions
//! `L(v) + (copies on lower ranks) + j` in rank order, and go to the rank
//! that owns that position: so many equal keys are spread over ranks like
//! any others, and the counts are exact.

use rayon::prelude::*;

use crate::comm::{Comm, ReduceOp, block_range};
use crate::error::Result;
use crate::ops::sort::Bits;

/// Where the keys of all ranks split into P equal parts, and how this
/// rank's keys, read in fixed chunks on rayon's threads, go to ranks.
#[derive(Debug, Clone)]
pub(crate) struct Boundaries {
    /// `t_0 = 0, t_1, ..., t_P = N`: rank r owns positions `[t_r, t_{r+1})`.
    targets: Vec<u64>,
    /// The distinct boundary values, ascending.
    values: Vec<u64>,
    /// How many boundaries have each value.
    multiplicity: Vec<usize>,
    /// Keys below each value, over all ranks.
    below: Vec<u64>,
    /// Copies of each value on lower ranks.
    before_me: Vec<u64>,
    /// The shift that leaves a key's top 16 bits.
    shift: u32,
    /// For each value of the top 16 bits, the rank of every key with those
    /// bits, or [`MIXED`] where a boundary value has them too.
    bin_rank: Vec<u32>,
    /// Keys per chunk.
    chunk: usize,
    /// Each chunk's count of keys by their top 16 bits.
    chunk_hists: Vec<Vec<u32>>,
    /// The count of all ranks' keys by their top 16 bits.
    top: Vec<u64>,
    /// Each chunk's keys (widened) in the bins that hold a boundary value.
    chunk_candidates: Vec<Vec<u64>>,
}

/// Bits of the first counting round.
const FIRST_BITS: u32 = 16;

/// A top-16-bit bin that holds a boundary value: its keys are classified
/// one by one.
const MIXED: u32 = u32::MAX;

impl Boundaries {
    /// Finds the boundaries of `keys` (order-preserving bits) on all ranks
    /// of `comm` (collective; `total` is the sum of every rank's count).
    /// `keys` is read in chunks of `chunk` keys, here and by [`Self::plan`]
    /// and [`Self::scatter`].
    pub(crate) fn find<B: Bits>(
        comm: &Comm,
        keys: &[B],
        total: u64,
        chunk: usize,
    ) -> Result<Boundaries> {
        let p = comm.size();
        let chunk = chunk.max(1);
        let targets: Vec<u64> = (0..=p)
            .map(|q| block_range(total as usize, p, q).start as u64)
            .collect();
        // Boundaries 1..P-1 at positions < N (all of them unless N = 0).
        let wanted: Vec<u64> = targets[1..p]
            .iter()
            .copied()
            .filter(|&t| t < total)
            .collect();
        let bits = 8 * B::BYTES as u32;
        let shift = bits - FIRST_BITS;
        let chunk_hists = count_top(keys, shift, chunk);
        // The first round's counts, over all ranks: the boundaries' top 16
        // bits, and the sizes of the buckets of [`Self::buckets`].
        let mut top = vec![0u64; 1 << FIRST_BITS];
        for c in &chunk_hists {
            top.iter_mut().zip(c).for_each(|(x, &y)| *x += u64::from(y));
        }
        let top = comm.all_reduce(&top, ReduceOp::Sum)?;
        // Per boundary: the top `done` bits of v_q, and the keys whose top
        // bits are below them.
        let mut prefix = vec![0u64; wanted.len()];
        let mut below = vec![0u64; wanted.len()];
        let mut done = 0u32;
        let mut candidates: Vec<u64> = Vec::new();
        let mut chunk_candidates: Vec<Vec<u64>> = Vec::new();
        while done < bits && !wanted.is_empty() {
            let mut distinct = prefix.clone();
            distinct.dedup();
            let width = if done == 0 {
                FIRST_BITS
            } else if distinct.len() <= 4 {
                // Up to 4 x 2^16 counts (2 MiB) per all-reduce; more
                // boundaries take 8-bit rounds, 2 KiB each.
                16
            } else {
                8
            }
            .min(bits - done);
            let bins = 1usize << width;
            let shift = bits - done - width;
            let hist: Vec<u64> = if done == 0 {
                top.clone()
            } else {
                if done == FIRST_BITS {
                    chunk_candidates = pick_candidates(keys, shift + width, &distinct, chunk);
                    candidates = chunk_candidates.concat();
                } else {
                    candidates.retain(|&k| distinct.binary_search(&(k >> (shift + width))).is_ok());
                }
                let mut h = vec![0u64; distinct.len() * bins];
                for &k in &candidates {
                    if let Ok(i) = distinct.binary_search(&(k >> (shift + width))) {
                        h[i * bins + ((k >> shift) as usize & (bins - 1))] += 1;
                    }
                }
                comm.all_reduce(&h, ReduceOp::Sum)?
            };
            for q in 0..wanted.len() {
                let i = distinct.binary_search(&prefix[q]).unwrap_or(0);
                let bin = &hist[i * bins..(i + 1) * bins];
                let need = wanted[q] - below[q];
                let mut running = 0u64;
                let mut digit = bins - 1;
                for (d, &c) in bin.iter().enumerate() {
                    if running + c > need {
                        digit = d;
                        break;
                    }
                    running += c;
                }
                below[q] += running;
                prefix[q] = if done == 0 {
                    digit as u64
                } else {
                    (prefix[q] << width) | digit as u64
                };
            }
            done += width;
        }
        // The boundary values, each once, with the keys below them.
        let mut values: Vec<u64> = Vec::new();
        let mut multiplicity = Vec::new();
        let mut below_v = Vec::new();
        for (&v, &b) in prefix.iter().zip(&below) {
            if values.last() == Some(&v) {
                *multiplicity.last_mut().expect("pushed with the value") += 1;
            } else {
                values.push(v);
                multiplicity.push(1);
                below_v.push(b);
            }
        }
        // This rank's copies of each value, then those of lower ranks.
        let mine = if done > FIRST_BITS {
            copies_of(candidates.iter().copied(), &values)
        } else {
            copies_of(keys.iter().map(|k| k.widen()), &values)
        };
        let before_me = comm.exclusive_scan(&mine, ReduceOp::Sum)?;
        // A bin with no boundary value goes whole to the rank after the
        // boundaries below it.
        let mut bin_rank = vec![0u32; 1 << FIRST_BITS];
        let mut boundaries_below = 0usize;
        let mut next = 0usize;
        for (b, slot) in bin_rank.iter_mut().enumerate() {
            let mut mixed = false;
            while next < values.len() && (values[next] >> shift) as usize == b {
                boundaries_below += multiplicity[next];
                next += 1;
                mixed = true;
            }
            *slot = if mixed {
                MIXED
            } else {
                boundaries_below as u32
            };
        }
        Ok(Boundaries {
            targets,
            values,
            multiplicity,
            below: below_v,
            before_me,
            shift,
            bin_rank,
            chunk,
            chunk_hists,
            top,
            chunk_candidates,
        })
    }

    /// The rank of the keys in each gap between boundary values: gap i
    /// (above value `i - 1`, below value `i`) goes to the rank after the
    /// boundaries below it.
    fn gap_rank(&self) -> Vec<usize> {
        let p = self.targets.len() - 1;
        let mut gap_rank = Vec::with_capacity(self.values.len() + 1);
        let mut boundaries_below = 0;
        gap_rank.push(0);
        for &mult in &self.multiplicity {
            boundaries_below += mult;
            gap_rank.push(boundaries_below.min(p - 1));
        }
        gap_rank
    }

    /// Chunk `c`'s keys in bins that hold a boundary value.
    fn candidates_of(&self, c: usize) -> &[u64] {
        self.chunk_candidates.get(c).map_or(&[], Vec::as_slice)
    }

    /// The global position of this rank's first copy of each boundary
    /// value.
    fn first_copies(&self) -> Vec<u64> {
        self.below
            .iter()
            .zip(&self.before_me)
            .map(|(b, m)| b + m)
            .collect()
    }

    /// This rank's keys of each chunk in each of `slots` slots (ranks, or
    /// buckets), and where each chunk's copies of each boundary value start
    /// (global positions): the keys of a whole bin go to `bin_slot(bin)`,
    /// `None` for a bin that holds a boundary value, whose keys (the
    /// chunk's candidates) go one by one to `slot(key, rank)` for the rank
    /// they belong to (copies of a boundary value by their positions).
    fn count_chunks(
        &self,
        slots: usize,
        bin_slot: impl Fn(usize) -> Option<usize> + Sync,
        slot: impl Fn(u64, usize) -> usize + Sync,
    ) -> (Vec<Vec<usize>>, Vec<Vec<u64>>) {
        let m = self.values.len();
        let gap_rank = self.gap_rank();
        let per_chunk: Vec<(Vec<usize>, Vec<u64>)> = self
            .chunk_hists
            .par_iter()
            .enumerate()
            .map(|(c, hist)| {
                let mut to = vec![0usize; slots];
                for (b, &n) in hist.iter().enumerate() {
                    if let Some(j) = bin_slot(b) {
                        to[j] += n as usize;
                    }
                }
                let mut ties = vec![0u64; m];
                for &k in self.candidates_of(c) {
                    let class = self.class(k);
                    if class.is_multiple_of(2) {
                        to[slot(k, gap_rank[class / 2])] += 1;
                    } else {
                        ties[class / 2] += 1;
                    }
                }
                (to, ties)
            })
            .collect();
        let mut next_copy = self.first_copies();
        let mut chunk_counts = Vec::with_capacity(per_chunk.len());
        let mut tie_start = Vec::with_capacity(per_chunk.len());
        for (mut to, ties) in per_chunk {
            tie_start.push(next_copy.clone());
            for (i, &n) in ties.iter().enumerate() {
                // Copies at positions [first, first + n) split by owner.
                let first = next_copy[i];
                let mut pos = first;
                while pos < first + n {
                    let r = self.owner(pos);
                    let end = (first + n).min(self.targets[r + 1]);
                    to[slot(self.values[i], r)] += (end - pos) as usize;
                    pos = end;
                }
                next_copy[i] += n;
            }
            chunk_counts.push(to);
        }
        (chunk_counts, tie_start)
    }

    /// The rank that owns global position `pos`.
    fn owner(&self, pos: u64) -> usize {
        self.targets[1..].partition_point(|&t| t <= pos)
    }

    /// The class of a key: `2 i` for keys strictly between value `i - 1`
    /// and value `i` (below value 0 for `i = 0`, above the last for
    /// `i = m`), `2 i + 1` for copies of value `i`.
    fn class(&self, k: u64) -> usize {
        let below = self.values.partition_point(|&x| x < k);
        2 * below + (self.values.get(below) == Some(&k)) as usize
    }

    /// How many of `keys` (this rank's, the ones [`Self::find`] counted)
    /// go to each rank, and where each chunk's copies of the boundary
    /// values stand in the global order.
    pub(crate) fn plan<B: Bits>(&self, keys: &[B]) -> Plan {
        let p = self.targets.len() - 1;
        debug_assert_eq!(keys.len().div_ceil(self.chunk), self.chunk_hists.len());
        let (chunk_counts, tie_start) = self.count_chunks(
            p,
            |b| (self.bin_rank[b] != MIXED).then_some(self.bin_rank[b] as usize),
            |_, r| r,
        );
        let send_counts = (0..p)
            .map(|r| chunk_counts.iter().map(|c| c[r]).sum())
            .collect();
        Plan {
            gap_rank: self.gap_rank(),
            chunk_counts,
            tie_start,
            send_counts,
        }
    }

    /// Writes `keys` into `parts` (one slice per rank, of the plan's send
    /// counts) on rayon's threads, following `plan`.
    pub(crate) fn scatter<B: Bits>(&self, keys: &[B], plan: &Plan, parts: &mut [&mut [B]]) {
        // Each rank's slice is cut into one piece per chunk, in chunk order.
        let chunks = plan.chunk_counts.len();
        let mut pieces: Vec<Vec<&mut [B]>> = (0..chunks)
            .map(|_| Vec::with_capacity(parts.len()))
            .collect();
        for (r, part) in parts.iter_mut().enumerate() {
            let mut rest: &mut [B] = part;
            for (c, counts) in plan.chunk_counts.iter().enumerate() {
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(counts[r]);
                pieces[c].push(head);
                rest = tail;
            }
        }
        keys.par_chunks(self.chunk)
            .zip(pieces.into_par_iter())
            .zip(plan.tie_start.par_iter())
            .for_each(|((c, mut out), starts)| {
                let mut next = vec![0usize; out.len()];
                let mut copy = starts.clone();
                for &k in c {
                    let wide = k.widen();
                    let mut r = self.bin_rank[(wide >> self.shift) as usize];
                    if r == MIXED {
                        let class = self.class(wide);
                        r = if class.is_multiple_of(2) {
                            plan.gap_rank[class / 2] as u32
                        } else {
                            let i = class / 2;
                            copy[i] += 1;
                            self.owner(copy[i] - 1) as u32
                        };
                    }
                    let r = r as usize;
                    out[r][next[r]] = k;
                    next[r] += 1;
                }
            });
    }
}

impl Boundaries {
    /// Cuts the keys of all ranks into buckets for a sample sort whose
    /// classification is a radix sort's first pass: runs of top-16-bit bins
    /// in key order, each owned by one rank and holding about `per_bucket`
    /// keys over all ranks (a single bin may hold more); a bin that holds a
    /// boundary value gives a bucket to each rank its keys go to. No bucket
    /// spans two values of the top byte, which would cost its in-cache sort
    /// a pass (an empty bucket may: it costs nothing). Counts
    /// this rank's keys in each bucket, chunk by chunk, from the counts and
    /// candidates of [`Self::find`] (no read of the keys).
    pub(crate) fn buckets(&self, per_bucket: u64) -> Buckets {
        let p = self.targets.len() - 1;
        let gap_rank = self.gap_rank();
        let mut bin_bucket = vec![0u32; 1 << FIRST_BITS];
        let mut mixed: Vec<(usize, usize)> = Vec::new();
        let mut owner: Vec<usize> = Vec::new();
        // The rank and keys of the last bucket, while bins may join it.
        let mut open: Option<(usize, u64)> = None;
        let (mut boundaries_below, mut next) = (0usize, 0usize);
        for (b, slot) in bin_bucket.iter_mut().enumerate() {
            let lo = boundaries_below;
            while next < self.values.len() && (self.values[next] >> self.shift) as usize == b {
                boundaries_below += self.multiplicity[next];
                next += 1;
            }
            if boundaries_below > lo {
                *slot = MIXED_BUCKET | mixed.len() as u32;
                mixed.push((owner.len(), lo));
                owner.extend(lo..=boundaries_below.min(p - 1));
                open = None;
                continue;
            }
            let here = self.top[b];
            // A bucket stays within one value of the top byte, so that its
            // sort needs no pass on that byte.
            let same_byte = b % 256 != 0;
            match &mut open {
                Some((rank, keys))
                    if *rank == lo && same_byte && (*keys == 0 || *keys + here <= per_bucket) =>
                {
                    *keys += here
                }
                _ => {
                    owner.push(lo);
                    open = Some((lo, here));
                }
            }
            *slot = (owner.len() - 1) as u32;
        }
        let shift = self.shift;
        let mixed_bucket = |k: u64, rank: usize| {
            let (first, lo) = mixed[(bin_bucket[(k >> shift) as usize] & !MIXED_BUCKET) as usize];
            first + rank - lo
        };
        let nb = owner.len();
        let (chunk_counts, tie_start) = self.count_chunks(
            nb,
            |b| (bin_bucket[b] & MIXED_BUCKET == 0).then_some(bin_bucket[b] as usize),
            mixed_bucket,
        );
        let counts = (0..nb)
            .map(|j| chunk_counts.iter().map(|c| c[j]).sum())
            .collect();
        let mut first_of_rank = vec![nb; p + 1];
        for (j, &r) in owner.iter().enumerate().rev() {
            first_of_rank[r] = j;
        }
        for r in (0..p).rev() {
            first_of_rank[r] = first_of_rank[r].min(first_of_rank[r + 1]);
        }
        Buckets {
            bin_bucket,
            mixed,
            gap_rank,
            first_of_rank,
            chunk_counts,
            tie_start,
            counts,
        }
    }

    /// Writes `keys` into `parts` (one slice per rank, as long as the keys
    /// this rank sends there: the sums of its buckets' counts) bucket by
    /// bucket, on rayon's threads: a stable radix pass whose digit is the
    /// bucket.
    pub(crate) fn scatter_buckets<B: Bits>(
        &self,
        keys: &[B],
        buckets: &Buckets,
        parts: &mut [&mut [B]],
    ) {
        // Each bucket's slice is cut into one piece per chunk, in chunk
        // order; each chunk gets its piece of every bucket.
        let chunks = buckets.chunk_counts.len();
        let mut pieces: Vec<Vec<&mut [B]>> = (0..chunks)
            .map(|_| Vec::with_capacity(buckets.counts.len()))
            .collect();
        for (r, part) in parts.iter_mut().enumerate() {
            let mut rest: &mut [B] = part;
            for j in buckets.of_rank(r) {
                for (c, counts) in buckets.chunk_counts.iter().enumerate() {
                    let (head, tail) = std::mem::take(&mut rest).split_at_mut(counts[j]);
                    pieces[c].push(head);
                    rest = tail;
                }
            }
        }
        let shift = self.shift;
        keys.par_chunks(self.chunk)
            .zip(pieces.into_par_iter())
            .zip(buckets.tie_start.par_iter())
            .for_each(|((c, mut out), starts)| {
                let mut next = vec![0usize; out.len()];
                let mut copy = starts.clone();
                for &k in c {
                    let wide = k.widen();
                    let j = buckets.bin_bucket[(wide >> shift) as usize];
                    let j = if j & MIXED_BUCKET == 0 {
                        j as usize
                    } else {
                        let (first, lo) = buckets.mixed[(j & !MIXED_BUCKET) as usize];
                        let class = self.class(wide);
                        let r = if class.is_multiple_of(2) {
                            buckets.gap_rank[class / 2]
                        } else {
                            let i = class / 2;
                            copy[i] += 1;
                            self.owner(copy[i] - 1)
                        };
                        first + r - lo
                    };
                    out[j][next[j]] = k;
                    next[j] += 1;
                }
            });
    }
}

/// Marks a bin of [`Buckets::bin_bucket`] that holds a boundary value;
/// the other bits index [`Buckets::mixed`].
const MIXED_BUCKET: u32 = 1 << 31;

/// The buckets of [`Boundaries::buckets`].
#[derive(Debug, Clone)]
pub(crate) struct Buckets {
    /// The bucket of each top-16-bit bin, or [`MIXED_BUCKET`] and an index
    /// into `mixed` for a bin that holds a boundary value.
    bin_bucket: Vec<u32>,
    /// For each bin that holds a boundary value: its first bucket, and the
    /// rank of that bucket (the next ones belong to the next ranks).
    mixed: Vec<(usize, usize)>,
    /// The rank of each gap between boundary values ([`Boundaries::gap_rank`]).
    gap_rank: Vec<usize>,
    /// The first bucket of each rank, and the number of buckets at the end.
    first_of_rank: Vec<usize>,
    /// This rank's keys of each chunk in each bucket.
    chunk_counts: Vec<Vec<usize>>,
    /// Where each chunk's copies of each boundary value start (global
    /// positions).
    tie_start: Vec<Vec<u64>>,
    /// This rank's keys in each bucket.
    pub(crate) counts: Vec<usize>,
}

impl Buckets {
    /// The buckets of rank `r` (consecutive).
    pub(crate) fn of_rank(&self, r: usize) -> std::ops::Range<usize> {
        self.first_of_rank[r]..self.first_of_rank[r + 1]
    }
}

/// How keys go to ranks: see [`Boundaries::plan`].
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    gap_rank: Vec<usize>,
    /// Keys of each chunk for each rank.
    chunk_counts: Vec<Vec<usize>>,
    /// Where each chunk's copies of each boundary value start (global
    /// positions).
    tie_start: Vec<Vec<u64>>,
    /// Keys for each rank.
    pub(crate) send_counts: Vec<usize>,
}

/// Each chunk's count of `keys` by their bits above `shift` (2^16 bins),
/// on rayon's threads. The counts are u32 (a chunk holds fewer keys than
/// one MPI call carries): half the table of u64 counts, which keeps more of
/// it in cache while keys hit it at random.
fn count_top<B: Bits>(keys: &[B], shift: u32, chunk: usize) -> Vec<Vec<u32>> {
    keys.par_chunks(chunk)
        .map(|c| {
            let mut h = vec![0u32; 1 << FIRST_BITS];
            for k in c {
                h[(k.widen() >> shift) as usize & 0xffff] += 1;
            }
            h
        })
        .collect()
}

/// The keys (widened) whose bits above `shift` are one of `prefixes`
/// (sorted; values below 2^16), chunk by chunk.
fn pick_candidates<B: Bits>(
    keys: &[B],
    shift: u32,
    prefixes: &[u64],
    chunk: usize,
) -> Vec<Vec<u64>> {
    if prefixes.len() <= 4 {
        // A few prefixes (a few ranks): compared outright, faster than a
        // table looked up at random.
        let mut few = [u64::MAX; 4];
        few[..prefixes.len()].copy_from_slice(prefixes);
        return keys
            .par_chunks(chunk)
            .map(|c| {
                c.iter()
                    .map(|k| k.widen())
                    .filter(|&k| few.contains(&(k >> shift)))
                    .collect()
            })
            .collect();
    }
    let mut wanted = vec![false; 1 << FIRST_BITS];
    for &p in prefixes {
        wanted[p as usize] = true;
    }
    keys.par_chunks(chunk)
        .map(|c| {
            c.iter()
                .map(|k| k.widen())
                .filter(|&k| wanted[(k >> shift) as usize & 0xffff])
                .collect()
        })
        .collect()
}

/// How many of `keys` equal each of `values` (sorted).
fn copies_of(keys: impl Iterator<Item = u64>, values: &[u64]) -> Vec<u64> {
    let mut counts = vec![0u64; values.len()];
    for k in keys {
        if let Ok(i) = values.binary_search(&k) {
            counts[i] += 1;
        }
    }
    counts
}
