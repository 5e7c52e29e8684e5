//! Merging sorted runs of keys, on the CPU and on a GPU-like device side by
//! side: [`merge_runs_on`] picks the path for the device it is given.
//!
//! ```
//! use tessera::Device;
//! use tessera::ops::merge::{merge_runs, merge_runs_on};
//!
//! let runs: [&[u32]; 3] = [&[1, 4, 9], &[2, 3], &[0, 10]];
//! assert_eq!(merge_runs(&runs), vec![0, 1, 2, 3, 4, 9, 10]);
//! assert_eq!(merge_runs_on(Device::Cpu, &runs).unwrap(), merge_runs(&runs));
//! ```

use rayon::prelude::*;

use crate::device::launch::sort::{self as launch, SortedBits};
use crate::device::{Device, DeviceBuffer};
use crate::error::{Error, Result};
use crate::ops::sort::{Bits, SortKey, key_kind};

/// [`merge_runs`] on `device`: on a GPU-like device the runs are merged
/// pairwise by the merge-path kernel, staying in device memory until the
/// last merge.
pub fn merge_runs_on<K: SortKey>(device: Device, runs: &[&[K]]) -> Result<Vec<K>> {
    if !device.is_gpu_like() {
        return Ok(merge_runs(runs));
    }
    merge_runs_device(device, runs)
}

/// [`merge_runs_on`] into `buffer`'s memory (its contents are dropped):
/// a buffer whose pages are already mapped costs no page faults, which on
/// large outputs is a good part of a merge's time.
pub fn merge_runs_on_into<K: SortKey>(
    device: Device,
    runs: &[&[K]],
    buffer: Vec<K>,
) -> Result<Vec<K>> {
    if device.is_gpu_like() {
        return merge_runs_device(device, runs);
    }
    let _span = crate::trace::compute("merge_runs");
    Ok(merge_runs_in(runs, ranges_for(runs), buffer))
}

/// How many output ranges the merge of `runs` is cut into.
fn ranges_for<K>(runs: &[&[K]]) -> usize {
    let total: usize = runs.iter().map(|r| r.len()).sum();
    if total < PARALLEL_MERGE {
        1
    } else {
        (2 * rayon::current_num_threads()).min(total / (PARALLEL_MERGE / 4))
    }
}

/// Below this many keys in all, one thread merges.
const PARALLEL_MERGE: usize = 1 << 16;

/// Merges sorted runs into one sorted vector on all of rayon's threads.
///
/// The output is cut into equal ranges, two per thread, and the part of
/// every run that belongs to each range is found by a multi-way selection
/// (merge path generalised to P runs: binary search on the key value for the
/// cut, equal keys shared out in run order); each range is then merged on
/// one thread, straight into its place in the output, so no thread waits
/// for another and no merge is left to one thread. Within a range two runs
/// are merged in one pass; more runs by `ceil(log2 P)` passes of that
/// two-way merge, which measured 1.3-1.8x faster than a tournament tree
/// (`tessera bench merge`). Equal keys keep the order of their runs.
pub fn merge_runs<K: SortKey>(runs: &[&[K]]) -> Vec<K> {
    let _span = crate::trace::compute("merge_runs");
    merge_runs_in(runs, ranges_for(runs), Vec::new())
}

/// Merges two sorted runs (by key bits): [`merge_runs`] of the two.
pub fn merge_two<K: SortKey>(a: &[K], b: &[K]) -> Vec<K> {
    merge_runs(&[a, b])
}

/// [`merge_runs`] with the output cut into `ranges` ranges, written into
/// `buffer`'s memory.
fn merge_runs_in<K: SortKey>(runs: &[&[K]], ranges: usize, buffer: Vec<K>) -> Vec<K> {
    let runs: Vec<&[K]> = runs.iter().copied().filter(|r| !r.is_empty()).collect();
    let total: usize = runs.iter().map(|r| r.len()).sum();
    let mut out = buffer;
    out.clear();
    match runs.as_slice() {
        [] => return out,
        [one] => {
            out.extend_from_slice(one);
            return out;
        }
        _ => {}
    }
    let ranges = ranges.clamp(1, total);
    // cuts[t][i]: where range t starts in run i (cuts[ranges] = the ends).
    let cuts: Vec<Vec<usize>> = (0..=ranges)
        .into_par_iter()
        .map(|t| split_point(&runs, total * t / ranges))
        .collect();
    if out.capacity() < total {
        out = vec![K::zeroed(); total];
    } else {
        out.resize(total, K::zeroed());
    }
    let mut pieces: Vec<(&mut [K], usize)> = Vec::with_capacity(ranges);
    let mut rest = &mut out[..];
    for t in 0..ranges {
        let len = total * (t + 1) / ranges - total * t / ranges;
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
        pieces.push((head, t));
        rest = tail;
    }
    pieces.into_par_iter().for_each(|(dst, t)| {
        let parts: Vec<&[K]> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| &r[cuts[t][i]..cuts[t + 1][i]])
            .filter(|p| !p.is_empty())
            .collect();
        merge_into(&parts, dst);
    });
    out
}

/// Where the first `rank` keys of the merged output end in each run: the
/// smallest key value `v` with at least `rank` keys `<= v` is found by
/// binary search over the values; every key below `v` is taken, and the
/// keys equal to `v` are taken in run order until `rank` are.
fn split_point<K: SortKey>(runs: &[&[K]], rank: usize) -> Vec<usize> {
    let count_le = |v: u64| -> usize {
        runs.iter()
            .map(|r| r.partition_point(|k| k.to_bits().widen() <= v))
            .sum()
    };
    // The answer lies in [lo, hi]: count_le(hi) >= rank (u64::MAX counts all).
    let (mut lo, mut hi) = (0u64, u64::MAX);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if count_le(mid) >= rank {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let v = lo;
    let below: Vec<usize> = runs
        .iter()
        .map(|r| r.partition_point(|k| k.to_bits().widen() < v))
        .collect();
    let mut need = rank - below.iter().sum::<usize>();
    runs.iter()
        .zip(below)
        .map(|(r, lt)| {
            let equal = r[lt..].partition_point(|k| k.to_bits().widen() == v);
            let take = equal.min(need);
            need -= take;
            lt + take
        })
        .collect()
}

/// Merges sorted `parts` (all non-empty, together exactly `dst.len()`
/// keys) into `dst`, on this thread; on ties the earlier part first.
fn merge_into<K: SortKey>(parts: &[&[K]], dst: &mut [K]) {
    let mut scratch = if parts.len() > 2 {
        vec![K::zeroed(); dst.len()]
    } else {
        Vec::new()
    };
    merge_tree(parts, dst, &mut scratch);
}

/// Merges sorted `parts` into `dst` as a balanced tree of two-way merges:
/// each half is merged into `scratch` (using the matching half of `dst` as
/// its own scratch), then the two halves into `dst`, so `ceil(log2 P)`
/// passes of the fastest merge and no copies. `scratch` is as long as `dst`
/// when there are more than two parts.
fn merge_tree<K: SortKey>(parts: &[&[K]], dst: &mut [K], scratch: &mut [K]) {
    match parts {
        [] => {}
        [one] => dst.copy_from_slice(one),
        [a, b] => merge_two_into(a, b, dst),
        _ => {
            let (left, right) = parts.split_at(parts.len() / 2);
            let split = left.iter().map(|p| p.len()).sum();
            let (scratch_left, scratch_right) = scratch.split_at_mut(split);
            let (dst_left, dst_right) = dst.split_at_mut(split);
            let a = merged(left, scratch_left, dst_left);
            let b = merged(right, scratch_right, dst_right);
            merge_two_into(a, b, dst);
        }
    }
}

/// `parts` merged: the one part itself, or the parts merged into `buf`
/// (with `spare`, as long as `buf`, as scratch).
fn merged<'a, K: SortKey>(parts: &[&'a [K]], buf: &'a mut [K], spare: &mut [K]) -> &'a [K] {
    if let [one] = parts {
        return one;
    }
    merge_tree(parts, buf, spare);
    buf
}

/// Merges sorted `a` and `b` into `dst` (`a.len() + b.len()` keys); on
/// ties `a` first.
///
/// The smallest keys are merged from the front and the largest from the
/// back in the same loop: two independent chains of compare-and-advance,
/// which the core runs side by side, where one chain waits on each
/// comparison before the next load. While neither run can be exhausted
/// (`min(|a|, |b|)` steps from each end) the loop needs no end checks; the
/// middle is merged by [`merge_front`].
fn merge_two_into<K: SortKey>(a: &[K], b: &[K], dst: &mut [K]) {
    // Both chains take `steps` keys: at most the whole output.
    let steps = a.len().min(b.len());
    let (mut i, mut j) = (0, 0);
    let (mut ia, mut jb) = (a.len(), b.len());
    let (front, rest) = dst.split_at_mut(steps);
    let back_start = rest.len() - steps;
    let (middle, back) = rest.split_at_mut(back_start);
    for (f, k) in front.iter_mut().zip((0..steps).rev()) {
        // From the front: the smaller head, `a` on ties.
        let take_b = b[j].to_bits() < a[i].to_bits();
        *f = if take_b { b[j] } else { a[i] };
        j += usize::from(take_b);
        i += usize::from(!take_b);
        // From the back: the larger tail, `b` on ties (it comes later).
        let take_a = a[ia - 1].to_bits() > b[jb - 1].to_bits();
        back[k] = if take_a { a[ia - 1] } else { b[jb - 1] };
        ia -= usize::from(take_a);
        jb -= usize::from(!take_a);
    }
    merge_front(&a[i..ia], &b[j..jb], middle);
}

/// [`merge_two_into`] from the front only, with end checks.
fn merge_front<K: SortKey>(a: &[K], b: &[K], dst: &mut [K]) {
    let (mut i, mut j, mut o) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        let take_b = b[j].to_bits() < a[i].to_bits();
        dst[o] = if take_b { b[j] } else { a[i] };
        j += usize::from(take_b);
        i += usize::from(!take_b);
        o += 1;
    }
    dst[o..o + a.len() - i].copy_from_slice(&a[i..]);
    o += a.len() - i;
    dst[o..].copy_from_slice(&b[j..]);
}

/// Merges two sorted runs of keys on the device into `out` (stable: on
/// ties, `a` first), by merge path (`kernels/sort.cu`). The runs are mapped
/// to their order-preserving bits in place and back (hence `&mut`), and
/// checked on the device to be sorted first: unsorted runs are an
/// [`Error::InvalidArgument`], never a merge out of bounds.
pub fn merge_device<K: SortKey>(
    a: &mut DeviceBuffer<K>,
    b: &mut DeviceBuffer<K>,
    out: &mut DeviceBuffer<K>,
) -> Result<()> {
    let _span = crate::trace::compute("merge");
    let total = a.len() + b.len();
    if out.len() != total {
        return Err(Error::ShapeMismatch {
            op: "merge_device",
            expected: "an output as long as both inputs".into(),
            got: format!("{} + {} inputs, {} outputs", a.len(), b.len(), out.len()),
        });
    }
    if total == 0 {
        return Ok(());
    }
    let kind = key_kind::<K>();
    let a = SortedBits::check(a, kind, "merge_device", "run a")?;
    let b = match SortedBits::check(b, kind, "merge_device", "run b") {
        Ok(b) => b,
        Err(e) => {
            a.into_keys()?;
            return Err(e);
        }
    };
    let merged = launch::merge(&a, &b, out);
    a.into_keys()?;
    b.into_keys()?;
    merged?.into_keys().map(drop)
}

/// Merges sorted runs of host keys on `device`, pairwise by merge path:
/// each run is mapped to its bits once (and checked to be sorted), the
/// merges stay in device memory, and only the result is mapped back and
/// copied down.
pub fn merge_runs_device<K: SortKey>(device: Device, runs: &[&[K]]) -> Result<Vec<K>> {
    let _span = crate::trace::compute("merge_runs");
    let buffers = runs
        .iter()
        .map(|r| DeviceBuffer::from_slice(device, r))
        .collect::<Result<Vec<_>>>()?;
    merge_device_runs(device, buffers)?.to_vec()
}

/// Merges sorted runs in device memory into one buffer, pairwise by merge
/// path; the data never leaves the device. Each run is mapped to its bits
/// once and checked on the device to be sorted (an unsorted run is an
/// [`Error::InvalidArgument`] naming it); the merges work on bits, and only
/// the result is mapped back.
pub fn merge_device_runs<K: SortKey>(
    device: Device,
    runs: Vec<DeviceBuffer<K>>,
) -> Result<DeviceBuffer<K>> {
    let _span = crate::trace::compute("merge_runs");
    let kind = key_kind::<K>();
    let mut level = Vec::with_capacity(runs.len());
    for (i, buf) in runs.into_iter().enumerate() {
        level.push(SortedBits::check(
            buf,
            kind,
            "merge_device_runs",
            &format!("run {i}"),
        )?);
    }
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        let mut it = level.into_iter();
        while let Some(a) = it.next() {
            match it.next() {
                Some(b) => {
                    let out = DeviceBuffer::uninit(device, a.len() + b.len())?;
                    next.push(launch::merge(&a, &b, out)?);
                }
                None => next.push(a),
            }
        }
        level = next;
    }
    match level.pop() {
        Some(all) => all.into_keys(),
        None => DeviceBuffer::uninit(device, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    /// Sorted runs of random keys: `few` values makes ties everywhere.
    fn runs<K: SortKey>(lens: &[usize], seed: u64, few: bool) -> Vec<Vec<K>> {
        let mut rng = SplitMix64(seed);
        lens.iter()
            .map(|&n| {
                let mut r: Vec<K> = (0..n)
                    .map(|_| {
                        let x = rng.next_u64();
                        K::from_random(if few { x % 5 } else { x })
                    })
                    .collect();
                r.sort_unstable_by_key(|k| k.to_bits());
                r
            })
            .collect()
    }

    fn expected<K: SortKey>(runs: &[&[K]]) -> Vec<K::Bits> {
        let mut all: Vec<K::Bits> = runs
            .iter()
            .flat_map(|r| r.iter().map(|k| k.to_bits()))
            .collect();
        all.sort_unstable();
        all
    }

    fn check<K: SortKey>(lens: &[usize], seed: u64, few: bool) {
        let owned = runs::<K>(lens, seed, few);
        let refs: Vec<&[K]> = owned.iter().map(Vec::as_slice).collect();
        let want = expected(&refs);
        for ranges in [1, 2, 3, 7, 16] {
            // A buffer with contents of its own (reused memory) or none.
            let buffer = if ranges % 2 == 0 {
                vec![K::zeroed(); 5]
            } else {
                Vec::new()
            };
            let got: Vec<K::Bits> = merge_runs_in(&refs, ranges, buffer)
                .iter()
                .map(|k| k.to_bits())
                .collect();
            assert_eq!(
                got,
                want,
                "{} lens {lens:?} few {few} ranges {ranges}",
                K::DTYPE
            );
        }
        let got: Vec<K::Bits> = merge_runs(&refs).iter().map(|k| k.to_bits()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn any_number_of_runs_of_any_length_merge_in_order() {
        let shapes: [&[usize]; 9] = [
            &[],
            &[0],
            &[5],
            &[0, 7, 0],
            &[1, 1],
            &[3, 1000],
            &[100, 200, 300],
            &[17, 0, 33, 1, 64, 5, 9],
            &[40_000, 30_000, 20_000, 10_000, 1],
        ];
        for (s, lens) in shapes.iter().enumerate() {
            for few in [false, true] {
                check::<u32>(lens, s as u64, few);
                check::<i64>(lens, 100 + s as u64, few);
                check::<f32>(lens, 200 + s as u64, few);
                check::<f64>(lens, 300 + s as u64, few);
            }
        }
    }

    #[test]
    fn two_runs_merge_from_both_ends_at_every_small_length() {
        // Every pair of lengths up to 9, keys from a few values (ties
        // across the runs and at the point where the two ends meet), one
        // run wholly below the other, and signed zeros (equal values,
        // different keys).
        for la in 0..10u64 {
            for lb in 0..10u64 {
                for values in [2u64, 5, 1000] {
                    let a: Vec<u32> = (0..la).map(|x| ((x * 7 + lb) % values) as u32).collect();
                    let b: Vec<u32> = (0..lb).map(|x| ((x * 3 + la) % values) as u32).collect();
                    let (mut a, mut b) = (a, b);
                    a.sort_unstable();
                    b.sort_unstable();
                    for (a, b) in [(&a, &b), (&b, &a)] {
                        let mut want = [a.as_slice(), b.as_slice()].concat();
                        want.sort_unstable();
                        let mut got = vec![0u32; want.len()];
                        merge_two_into(a, b, &mut got);
                        assert_eq!(got, want, "{a:?} and {b:?}");
                    }
                    let high: Vec<u32> = b.iter().map(|x| x + 2000).collect();
                    let mut got = vec![0u32; a.len() + high.len()];
                    merge_two_into(&high, &a, &mut got);
                    assert_eq!(got, [a.as_slice(), &high].concat());
                }
            }
        }
        let a = [-0.0f64, -0.0, 0.0];
        let b = [-0.0f64, 0.0, 0.0];
        let mut got = [1.0f64; 6];
        merge_two_into(&a, &b, &mut got);
        let signs: Vec<bool> = got.iter().map(|x| x.is_sign_negative()).collect();
        assert_eq!(signs, [true, true, true, false, false, false]);
    }

    #[test]
    fn cuts_split_ties_in_run_order_and_add_up() {
        // Every key equal: the cut takes the earlier runs first.
        let a = [7u32; 4];
        let b = [7u32; 3];
        let c = [7u32; 5];
        let runs: [&[u32]; 3] = [&a, &b, &c];
        assert_eq!(split_point(&runs, 0), vec![0, 0, 0]);
        assert_eq!(split_point(&runs, 5), vec![4, 1, 0]);
        assert_eq!(split_point(&runs, 12), vec![4, 3, 5]);
        // Keys below the cut value are all taken before any equal one.
        let d = [1u32, 2, 9];
        let e = [2u32, 2, 3];
        let runs: [&[u32]; 2] = [&d, &e];
        assert_eq!(split_point(&runs, 1), vec![1, 0]);
        assert_eq!(split_point(&runs, 2), vec![2, 0]);
        assert_eq!(split_point(&runs, 3), vec![2, 1]);
        assert_eq!(split_point(&runs, 5), vec![2, 3]);
        // Extremes of the key space.
        let f = [0u64, u64::MAX];
        let g = [u64::MAX];
        let runs: [&[u64]; 2] = [&f, &g];
        assert_eq!(split_point(&runs, 1), vec![1, 0]);
        assert_eq!(split_point(&runs, 2), vec![2, 0]);
        assert_eq!(split_point(&runs, 3), vec![2, 1]);
    }
}
