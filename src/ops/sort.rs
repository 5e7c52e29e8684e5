//! Sorting keys, and keys with payloads, on the CPU in parallel.
//!
//! Keys of every type are mapped to unsigned integers whose order is the
//! key order ([`SortKey::to_bits`]), sorted by a parallel radix sort of our
//! own (8-bit digits: parallel MSD passes down to cache-sized buckets, then
//! in each bucket LSD passes over its top bytes and a scan that finishes the
//! rare runs of keys sharing them; see [`radix_sort`]), and mapped back.
//! Key-value pairs are sorted by rayon's comparison sorts on the mapped key
//! (its merge sort for the stable variant). Floats sort in IEEE
//! 754 total order: `-NaN < -inf < ... < -0.0 < +0.0 < ... < +inf < +NaN`,
//! so negative zero comes before zero and (positive) NaNs come last.
//!
//! The radix sort was measured against rdst, voracious_radix_sort and
//! rayon's `par_sort_unstable`: see BENCHMARKS.md.

use rayon::prelude::*;

use crate::device::launch::sort::{
    self as launch, KeyKind, RadixHistogram, SortedBits, bits_to_keys, keys_to_bits,
};
use crate::device::{Device, DeviceBuffer};
use crate::error::{Error, Result};

mod sealed {
    pub trait Sealed {}
}

/// Unsigned integers that the radix sort works on.
pub trait Bits:
    bytemuck::Pod + Ord + Send + Sync + std::fmt::Debug + sealed::Sealed + SortKey<Bits = Self>
{
    /// Bytes in the key.
    const BYTES: usize;
    /// The 8-bit digit at `byte` (0 = least significant).
    fn digit(self, byte: usize) -> usize;
    /// The value as a u64 (order kept).
    fn widen(self) -> u64;
}

impl sealed::Sealed for u32 {}
impl sealed::Sealed for u64 {}

impl Bits for u32 {
    const BYTES: usize = 4;
    #[inline(always)]
    fn digit(self, byte: usize) -> usize {
        ((self >> (8 * byte)) & 0xff) as usize
    }
    fn widen(self) -> u64 {
        self as u64
    }
}

impl Bits for u64 {
    const BYTES: usize = 8;
    #[inline(always)]
    fn digit(self, byte: usize) -> usize {
        ((self >> (8 * byte)) & 0xff) as usize
    }
    fn widen(self) -> u64 {
        self
    }
}

/// Key types: u32, u64, i32, i64, f32, f64.
pub trait SortKey:
    bytemuck::Pod
    + Send
    + Sync
    + std::fmt::Debug
    + PartialEq
    + ndarray_npy::ReadableElement
    + ndarray_npy::WritableElement
    + 'static
{
    /// The `.npy` type code (`u4`, `i8`, `f4`, ...), without byte order.
    const NPY: &'static str;
    /// The unsigned type of the same width.
    type Bits: Bits;
    /// The key's name in `--dtype` terms.
    const DTYPE: &'static str;
    /// An unsigned integer whose order is this key's order (IEEE total
    /// order for floats).
    fn to_bits(self) -> Self::Bits;
    /// The inverse of [`SortKey::to_bits`].
    fn from_bits(bits: Self::Bits) -> Self;
    /// A key from a number (an `as` conversion: saturating for integers).
    fn from_f64(x: f64) -> Self;
    /// A key from raw random bits (truncated or reinterpreted).
    fn from_random(bits: u64) -> Self;
    /// Sorts with rayon's `par_sort_unstable` the way a user would for this
    /// type (`total_cmp` for floats): the benchmark's anchor.
    fn rayon_sort(keys: &mut [Self]);
}

macro_rules! integer_key {
    ($t:ty, $u:ty, $name:expr, $npy:expr, $flip:expr) => {
        impl SortKey for $t {
            type Bits = $u;
            const DTYPE: &'static str = $name;
            const NPY: &'static str = $npy;
            // Unsigned keys are their own bits; signed ones flip the sign
            // bit, which maps two's complement order onto unsigned order.
            #[inline(always)]
            fn to_bits(self) -> $u {
                (self as $u) ^ $flip
            }
            #[inline(always)]
            fn from_bits(bits: $u) -> Self {
                (bits ^ $flip) as $t
            }
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            fn from_random(bits: u64) -> Self {
                bits as $t
            }
            fn rayon_sort(keys: &mut [Self]) {
                keys.par_sort_unstable();
            }
        }
    };
}
integer_key!(u32, u32, "u32", "u4", 0);
integer_key!(u64, u64, "u64", "u8", 0);
integer_key!(i32, u32, "i32", "i4", 1 << 31);
integer_key!(i64, u64, "i64", "i8", 1 << 63);

macro_rules! float_key {
    ($t:ty, $u:ty, $name:expr, $npy:expr) => {
        impl SortKey for $t {
            type Bits = $u;
            const DTYPE: &'static str = $name;
            const NPY: &'static str = $npy;
            // IEEE total order: negative values have every bit flipped
            // (larger magnitude sorts first), positive ones only the sign.
            #[inline(always)]
            fn to_bits(self) -> $u {
                let b = self.to_bits();
                let sign = 1 << (<$u>::BITS - 1);
                if b & sign != 0 { !b } else { b | sign }
            }
            #[inline(always)]
            fn from_bits(bits: $u) -> Self {
                let sign = 1 << (<$u>::BITS - 1);
                <$t>::from_bits(if bits & sign != 0 {
                    bits & !sign
                } else {
                    !bits
                })
            }
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            fn from_random(bits: u64) -> Self {
                // Uniform in [-1, 1).
                ((bits >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as $t
            }
            fn rayon_sort(keys: &mut [Self]) {
                keys.par_sort_unstable_by(|a, b| a.total_cmp(b));
            }
        }
    };
}
float_key!(f32, u32, "f32", "f4");
float_key!(f64, u64, "f64", "f8");

/// Below this many keys one thread sorts with the standard library.
const SMALL: usize = 1 << 12;

/// Sorts `keys` in place on `device`, ascending (IEEE total order for
/// floats). Not stable; equal keys are indistinguishable anyway.
pub fn sort<K: SortKey>(device: Device, keys: &mut [K]) -> Result<()> {
    sort_with(device, keys, &mut Vec::new())
}

/// [`sort`] with `scratch` as the radix sort's second buffer (on the CPU;
/// grown to `keys.len()`, its contents dropped): a caller that needs a
/// buffer of that size next (to receive keys, say) saves mapping fresh
/// pages twice.
pub fn sort_with<K: SortKey>(device: Device, keys: &mut [K], scratch: &mut Vec<K>) -> Result<()> {
    let _span = crate::trace::compute("sort");
    if device.is_gpu_like() {
        check_device_len(device, "sort", keys.len())?;
        return sort_on_device(device, keys, false).map(drop);
    }
    if keys.len() <= SMALL {
        keys.sort_unstable_by_key(|k| k.to_bits());
        return Ok(());
    }
    // Map to order-preserving bits in place (same size), sort, map back.
    let bits = keys_as_bits(keys);
    if scratch.len() < bits.len() {
        // A new zeroed allocation (calloc: pages mapped on first write)
        // rather than `resize`, which writes every element first.
        *scratch = crate::device::cpu::zeroed_vec_huge(bits.len());
    }
    radix_sort_with(bits, bytemuck::cast_slice_mut(&mut scratch[..bits.len()]));
    bits_as_keys::<K>(bits);
    Ok(())
}

/// Replaces each key by its order-preserving bits ([`SortKey::to_bits`]),
/// in place, on rayon's threads, and returns the same memory as bits.
pub fn keys_as_bits<K: SortKey>(keys: &mut [K]) -> &mut [K::Bits] {
    keys.par_iter_mut()
        .for_each(|k| *k = bytemuck::cast(k.to_bits()));
    bytemuck::cast_slice_mut(keys)
}

/// The inverse of [`keys_as_bits`]: replaces bits by their keys in place
/// and returns the same memory as keys.
pub fn bits_as_keys<K: SortKey>(bits: &mut [K::Bits]) -> &mut [K] {
    let keys: &mut [K] = bytemuck::cast_slice_mut(bits);
    keys.par_iter_mut()
        .for_each(|k| *k = K::from_bits(bytemuck::cast(*k)));
    keys
}

/// Sorts `keys` and moves `values` with them (`keys[i]` and `values[i]` stay
/// together), ascending by key; `stable` keeps equal keys in their input
/// order. Values of any `Pod` type (a u32 or u64 record index, say).
pub fn sort_pairs<K: SortKey, V: bytemuck::Pod + Send + Sync>(
    device: Device,
    keys: &mut [K],
    values: &mut [V],
    stable: bool,
) -> Result<()> {
    let _span = crate::trace::compute("sort_pairs");
    if keys.len() != values.len() {
        return Err(Error::ShapeMismatch {
            op: "sort_pairs",
            expected: "as many values as keys".into(),
            got: format!("{} keys, {} values", keys.len(), values.len()),
        });
    }
    if device.is_gpu_like() {
        // The radix sort is stable, so `stable` holds either way. Values
        // of any type follow the permutation through the gather kernel.
        check_device_len(device, "sort_pairs", keys.len())?;
        let order = sort_on_device(device, keys, true)?.expect("asked for the order");
        let elem = size_of::<V>();
        if keys.is_empty() || elem == 0 {
            return Ok(());
        }
        if elem <= 64 {
            let src = DeviceBuffer::<u8>::from_slice(device, bytemuck::cast_slice(values))?;
            let mut dst = DeviceBuffer::<u8>::uninit(device, src.len())?;
            launch::gather(&src, &mut dst, &order, elem)?;
            dst.download(bytemuck::cast_slice_mut(values))?;
        } else {
            let old = values.to_vec();
            values
                .iter_mut()
                .zip(&order)
                .for_each(|(v, &i)| *v = old[i as usize]);
        }
        return Ok(());
    }
    // Sort (key bits, position) by the key bits: the position tells where
    // each value goes; rayon's stable merge sort keeps equal keys in input
    // order, its unstable sort need not.
    let mut order: Vec<(K::Bits, u64)> = keys
        .par_iter()
        .enumerate()
        .map(|(i, k)| (k.to_bits(), i as u64))
        .collect();
    if stable {
        order.par_sort_by_key(|&(k, _)| k);
    } else {
        order.par_sort_unstable_by_key(|&(k, _)| k);
    }
    let new_values: Vec<V> = order.par_iter().map(|&(_, i)| values[i as usize]).collect();
    keys.par_iter_mut()
        .zip(order.par_iter())
        .for_each(|(k, &(b, _))| *k = K::from_bits(b));
    values.copy_from_slice(&new_values);
    Ok(())
}

/// How the kernels map `K` to an ordered unsigned integer.
pub(super) fn key_kind<K: SortKey>() -> KeyKind {
    match K::DTYPE {
        "u32" | "u64" => KeyKind::Unsigned,
        "i32" | "i64" => KeyKind::Signed,
        _ => KeyKind::Float,
    }
}

/// Sorts keys in device memory, ascending (IEEE total order for floats),
/// and moves `values` (u32 payloads, an index say) with them. LSD radix
/// sort with 8-bit digits (`kernels/sort.cu`): stable. Stream-ordered.
pub fn sort_device<K: SortKey>(
    keys: &mut DeviceBuffer<K>,
    values: Option<&mut DeviceBuffer<u32>>,
) -> Result<()> {
    let _span = crate::trace::compute("sort");
    let n = keys.len();
    if let Some(v) = values.as_ref()
        && v.len() != n
    {
        return Err(Error::ShapeMismatch {
            op: "sort_device",
            expected: "as many values as keys".into(),
            got: format!("{n} keys, {} values", v.len()),
        });
    }
    if n > u32::MAX as usize {
        return Err(Error::invalid(
            "sort_device",
            format!(
                "{n} keys: a GPU sort takes at most 2^32 - 1 keys per call; sort in parts and merge"
            ),
        ));
    }
    if n <= 1 {
        return Ok(());
    }
    let device = keys.device();
    let kind = key_kind::<K>();
    keys_to_bits(keys, kind)?;
    let mut hist = RadixHistogram::new(device, n)?;
    let mut spare_keys = DeviceBuffer::<K>::uninit(device, n)?;
    let mut spare_values = match values {
        Some(_) => Some(DeviceBuffer::<u32>::uninit(device, n)?),
        None => None,
    };
    let mut src = (&mut *keys, values);
    let mut dst = (&mut spare_keys, spare_values.as_mut());
    // An even number of passes (4 or 8) leaves the result where it started.
    for pass in 0..size_of::<K>() as u32 {
        let offsets = hist.count(src.0, 8 * pass)?;
        let values = match (&src.1, &mut dst.1) {
            (Some(vin), Some(vout)) => Some((&**vin, &mut **vout)),
            _ => None,
        };
        offsets.scatter(dst.0, values)?;
        std::mem::swap(&mut src, &mut dst);
    }
    bits_to_keys(keys, kind)
}

/// The sort's fingerprint (wrapping sum and xor of the mixed key bits, as
/// [`crate::distributed::sort::fingerprint`]) and the number of descents (keys
/// greater than the next), computed on the device. The keys are mapped to
/// their order-preserving bits in place and back (hence `&mut`).
pub fn check_device<K: SortKey>(keys: &mut DeviceBuffer<K>) -> Result<(u64, u64, u64)> {
    let _span = crate::trace::compute("check_sorted");
    if keys.is_empty() {
        return Ok((0, 0, 0));
    }
    let kind = key_kind::<K>();
    let mut out = DeviceBuffer::<u64>::zeros(keys.device(), 3)?;
    keys_to_bits(keys, kind)?;
    // The fingerprint accumulates into out[0..2], the descents into out[2].
    launch::fingerprint(keys, &mut out, 0)?;
    launch::count_descents(keys, &mut out, 2)?;
    bits_to_keys(keys, kind)?;
    let r = out.to_vec()?;
    Ok((r[0], r[1], r[2]))
}

/// Sorted keys in device memory, held as their order-preserving bits for
/// searches (checked on the device to ascend) until [`Self::finish`] maps
/// them back.
pub(crate) struct SortedOnDevice<'a, K: SortKey> {
    bits: SortedBits<K, &'a mut DeviceBuffer<K>>,
}

impl<'a, K: SortKey> SortedOnDevice<'a, K> {
    /// Maps `keys` to their bits; an error (keys mapped back) unless they
    /// ascend.
    pub(crate) fn new(keys: &'a mut DeviceBuffer<K>, op: &'static str) -> Result<Self> {
        let bits = SortedBits::check(keys, key_kind::<K>(), op, "the sorted keys")?;
        Ok(SortedOnDevice { bits })
    }

    /// For each query, the keys whose bits are below it: binary searches on
    /// the device.
    pub(crate) fn below(&self, queries: &[u64]) -> Result<Vec<u64>> {
        launch::lower_bounds(&self.bits, queries)
    }

    /// Keys.
    pub(crate) fn len(&self) -> usize {
        self.bits.len()
    }

    /// The keys, mapped back.
    pub(crate) fn finish(self) -> Result<()> {
        self.bits.into_keys().map(drop)
    }
}

/// Host keys sorted on a GPU-like device, with an optional permutation
/// of their positions.
fn sort_on_device<K: SortKey>(
    device: Device,
    keys: &mut [K],
    with_order: bool,
) -> Result<Option<Vec<u32>>> {
    let mut dk = DeviceBuffer::from_slice(device, keys)?;
    let mut order = if with_order {
        let mut o = DeviceBuffer::<u32>::uninit(device, keys.len())?;
        launch::iota(&mut o)?;
        Some(o)
    } else {
        None
    };
    sort_device(&mut dk, order.as_mut())?;
    dk.download(keys)?;
    order.map(|o| o.to_vec()).transpose()
}

fn check_device_len(device: Device, op: &'static str, n: usize) -> Result<()> {
    if device.is_gpu_like() && n > u32::MAX as usize {
        return Err(Error::invalid(
            op,
            format!("{n} keys: a GPU sort takes at most 2^32 - 1 keys per call"),
        ));
    }
    Ok(())
}

/// Parallel radix sort of unsigned integers. MSD passes split the keys by
/// their top bytes, in parallel, until a bucket fits in cache (at most
/// `CACHE_KEYS` keys); each such bucket is then sorted on one thread by LSD
/// passes over its remaining bytes, or over only the top ones where a scan
/// for the keys that share them finishes the sort sooner. Buckets are
/// worked on in parallel, and a pass whose digit is the same for every key
/// is skipped, so skewed keys
/// (floats crowding a few exponents, few distinct values) keep both the
/// parallelism and the short cut.
pub fn radix_sort<B: Bits>(keys: &mut [B]) {
    if keys.len() <= SMALL {
        keys.sort_unstable();
        return;
    }
    let mut scratch: Vec<B> = crate::device::cpu::zeroed_vec_huge(keys.len());
    msd_top(keys, &mut scratch, true);
}

/// [`radix_sort`] with `scratch` (as long as `keys`) as the second buffer.
///
/// # Panics
/// When the lengths differ.
pub fn radix_sort_with<B: Bits>(keys: &mut [B], scratch: &mut [B]) {
    assert_eq!(
        keys.len(),
        scratch.len(),
        "radix_sort_with needs equal lengths"
    );
    if keys.len() <= SMALL {
        keys.sort_unstable();
        return;
    }
    msd_top(keys, scratch, true);
}

/// Sorts `keys` into `out` (of the same length), using `keys` as scratch:
/// [`radix_sort`] without the copy back, for keys that arrive in a buffer
/// they need not stay in.
///
/// # Panics
/// When the lengths differ.
pub fn radix_sort_into<B: Bits>(keys: &mut [B], out: &mut [B]) {
    assert_eq!(keys.len(), out.len(), "radix_sort_into needs equal lengths");
    if keys.len() <= SMALL {
        keys.sort_unstable();
        out.copy_from_slice(keys);
        return;
    }
    msd_top(keys, out, false);
}

/// One parallel, stable pass of `src` into `dst` (of the same length) by
/// the keys' top `log2 D` bits (`D` a power of two, 256 to 4096): the first
/// pass of a radix sort that goes on elsewhere. Returns the `D` bucket
/// sizes.
///
/// # Panics
/// When the lengths differ.
pub(crate) fn top_bits_pass<B: Bits, const D: usize>(src: &[B], dst: &mut [B]) -> Vec<usize> {
    const { assert!(D.is_power_of_two() && D >= 256 && D <= 4096) };
    assert_eq!(
        src.len(),
        dst.len(),
        "top_bits_pass needs buffers of equal length"
    );
    let shift = 8 * B::BYTES as u32 - D.ilog2();
    let top = move |k: B| (k.widen() >> shift) as usize;
    let (chunk, hists) = counts_by::<B, D>(src, top);
    scatter_by(src, dst, chunk, &hists, top);
    (0..D).map(|d| hists.iter().map(|h| h[d]).sum()).collect()
}

/// The chunk length of a parallel counting-sort pass over `src`, and each
/// chunk's count of the keys' digits (below `D`).
fn counts_by<B: Bits, const D: usize>(
    src: &[B],
    digit: impl Fn(B) -> usize + Sync,
) -> (usize, Vec<[usize; D]>) {
    let threads = rayon::current_num_threads().max(1);
    let chunk = src.len().div_ceil(threads * 4).max(SMALL);
    let hists = src
        .par_chunks(chunk)
        .map(|c| {
            let mut h = [0usize; D];
            for &k in c {
                h[digit(k) & (D - 1)] += 1;
            }
            h
        })
        .collect();
    (chunk, hists)
}

/// Sorts the keys of `pieces` (as many in all as `out` holds) into `out`,
/// with `spare` as scratch (grown where it must): one bucket of a sample
/// sort whose classification was a first radix pass, gathered from the
/// ranks that sent its keys. A bucket that fits in cache is sorted by the
/// in-cache passes, the first of which reads the pieces where they lie; a
/// larger one (keys crowding a few values) is gathered and takes the
/// parallel passes.
///
/// # Panics
/// When the pieces do not hold `out.len()` keys.
pub(crate) fn sort_pieces_into<B: Bits>(pieces: &[&[B]], out: &mut [B], spare: &mut Vec<B>) {
    let n = out.len();
    assert_eq!(
        pieces.iter().map(|p| p.len()).sum::<usize>(),
        n,
        "sort_pieces_into needs as many keys as places"
    );
    if spare.len() < n {
        spare.resize(n, B::zeroed());
    }
    let spare = &mut spare[..n];
    if n <= CACHE_KEYS {
        in_cache_pieces(pieces, out, spare);
    } else {
        let mut at = 0;
        for p in pieces {
            out[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        msd_top(out, spare, true);
    }
}

/// [`in_cache`] of keys that sit in several pieces, sorted into `out` (as
/// many keys as the pieces hold) with `spare` (as long) as scratch. The
/// first pass reads the pieces where they are: gathering them first cost
/// a tenth more time for 195,000 u64 keys, whose two buffers already
/// overflow the second-level cache.
fn in_cache_pieces<B: Bits>(pieces: &[&[B]], out: &mut [B], spare: &mut [B]) {
    let n = out.len();
    let byte = B::BYTES - 1;
    let Some(survey) = Survey::of(pieces, byte) else {
        return;
    };
    let sorted_on = survey.sorted_on();
    if n <= SMALL_BUCKET || sorted_on.is_empty() {
        // Few keys, or all equal: gathered, then sorted without passes.
        let keys = pieces.iter().flat_map(|p| p.iter().copied());
        for (o, k) in out.iter_mut().zip(keys) {
            *o = k;
        }
        in_cache(out, spare, byte, true);
        return;
    }
    // The first pass from the pieces, into the buffer from which the
    // remaining passes end in `out`.
    let (x, y) = if sorted_on.len() % 2 == 1 {
        (&mut *out, &mut *spare)
    } else {
        (&mut *spare, &mut *out)
    };
    let d0 = sorted_on[0];
    digit_pass(pieces, x, d0, &survey.counts[d0]);
    // The keys end in `out`: in x after an even number of passes more,
    // else in y.
    let ended_in_x = lsd_serial(x, y, &sorted_on[1..], &survey.counts);
    debug_assert_eq!(ended_in_x, !sorted_on.len().is_multiple_of(2));
    if survey.diff & ((1u64 << (8 * d0)) - 1) != 0 {
        // Keys that share the bytes sorted on remain: finish each run.
        sort_runs(out, spare, d0);
    }
}

/// What the in-cache sort of a bucket (in pieces) needs to know before
/// its passes: the bits on which its keys differ (on bytes `0..=byte`),
/// the bytes to sort on ([`digits_to_sort`]), and the counts of their
/// digits (which do not depend on the order of the keys). The read that
/// finds the differing bits also counts four bytes: all of a 32-bit key's,
/// and the four below the top byte of a 64-bit key, where the bytes to
/// sort on lie once a pass has set the top byte; any other byte to sort
/// on takes a second read. Before, the bits and the counts took a read
/// each (and the first count from pieces a third): in-cache sorts of
/// 195,000-key buckets from two pieces on one thread, 5e7 keys, took
/// 0.24 s (u32) and 0.29 s (u64), and take 0.19-0.20 s and 0.27-0.28 s
/// with one read (the machine of BENCHMARKS.md).
struct Survey {
    diff: u64,
    sorted_on: [usize; 8],
    bytes: usize,
    counts: [[u32; 256]; 8],
}

impl Survey {
    /// The survey of the keys of `pieces`, or `None` when they hold none.
    fn of<B: Bits>(pieces: &[&[B]], byte: usize) -> Option<Self> {
        let first = pieces.iter().find_map(|p| p.first())?.widen();
        let below = u64::MAX >> (8 * (7 - byte));
        let mut counts = [[0u32; 256]; 8];
        let mut diff = 0;
        // Four bytes counted in the read that finds the differing bits:
        // all of a 32-bit key's, and for 64-bit keys the four below the
        // top byte (which the passes before have set).
        let top = if B::BYTES <= 4 {
            B::BYTES - 1
        } else {
            byte.min(B::BYTES - 2)
        };
        let lo = top.saturating_sub(3);
        for p in pieces {
            for &k in *p {
                diff |= k.widen() ^ first;
                for (b, count) in counts[lo..lo + 4].iter_mut().enumerate() {
                    count[k.digit(lo + b)] += 1;
                }
            }
        }
        diff &= below;
        let n = pieces.iter().map(|p| p.len()).sum();
        let (sorted_on, bytes) = digits_to_sort(n, diff, byte);
        // Bytes to sort on that were not counted: another read.
        let missed: Vec<usize> = sorted_on[..bytes]
            .iter()
            .copied()
            .filter(|&b| b < lo || b >= lo + 4)
            .collect();
        if !missed.is_empty() {
            for p in pieces {
                for &k in *p {
                    for &b in &missed {
                        counts[b][k.digit(b)] += 1;
                    }
                }
            }
        }
        Some(Survey {
            diff,
            sorted_on,
            bytes,
            counts,
        })
    }

    /// The bytes to sort on, ascending.
    fn sorted_on(&self) -> &[usize] {
        &self.sorted_on[..self.bytes]
    }
}

/// The bytes (ascending) that [`in_cache`] sorts `n` keys on by LSD
/// passes, for keys that differ from one another on the bits of `diff`
/// and not above `byte`: the top bytes on which some keys differ, as many
/// as make keys sharing all of them rare among keys spread over their
/// values (256^d at least [`SPREAD`] times the keys, at most
/// [`DIVERT_DIGITS`]).
/// Returns them in the first entries of an array, and their count.
fn digits_to_sort(n: usize, diff: u64, byte: usize) -> ([usize; 8], usize) {
    let varies = |i: usize| (diff >> (8 * i)) & 0xff != 0;
    let wanted = ((n * SPREAD).ilog2() as usize / 8 + 1).min(DIVERT_DIGITS);
    let mut sorted_on = [0usize; 8];
    let mut count = 0;
    for i in (0..=byte).rev().filter(|&i| varies(i)).take(wanted) {
        sorted_on[count] = i;
        count += 1;
    }
    sorted_on[..count].reverse();
    (sorted_on, count)
}

/// Keys a bucket may hold to be finished on one thread in cache (2^18:
/// 17-20% faster than 2^16 for 2e7 u32 and u64 keys on the 2-core machine
/// of BENCHMARKS.md; 2^19: 10-15% faster again for 1e8 u32 keys, whose
/// 390,000-key buckets after the first level then need no second pass
/// over memory; f32 and u64 the same).
const CACHE_KEYS: usize = 1 << 19;

/// Sorts `a`, using `b` (of the same length) as scratch, leaving the sorted
/// keys in `a` when `in_a`, else in `b`: [`msd`] from the top byte, or,
/// where the keys crowd a few values of the top byte (floats: a few
/// exponents) whose buckets would each take another pass over memory, a
/// first pass by ranges of the top 16 bits into buckets of even size.
fn msd_top<B: Bits>(a: &mut [B], b: &mut [B], in_a: bool) {
    let level = if a.len() <= CACHE_KEYS {
        TopLevel::Byte
    } else {
        top_level(a)
    };
    match level {
        TopLevel::Byte => msd(a, b, B::BYTES - 1, in_a),
        TopLevel::Ranges => {
            let buckets = balanced_pass(a, b);
            let lengths: Vec<usize> = buckets.iter().map(|&(len, _)| len).collect();
            split_buckets(b, a, &lengths)
                .into_par_iter()
                .zip(buckets)
                .for_each(|((src, dst), (_, next))| msd(src, dst, next, !in_a));
        }
        TopLevel::TopBits(buckets) => by_top_bits(a, b, in_a, buckets),
    }
}

/// How [`msd_top`] splits keys too many for one bucket in cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TopLevel {
    /// A pass on the top byte, then on down byte by byte ([`msd`]).
    Byte,
    /// A pass by ranges of the top 16 bits into buckets of even size
    /// ([`balanced_pass`]).
    Ranges,
    /// A pass by the top `log2 D` bits into D buckets (a power of two, 512
    /// to 4096): keys spread over the top byte, more than 256 buckets hold
    /// in cache.
    TopBits(usize),
}

/// The buckets of a first pass by top bits for `n` keys spread evenly over
/// them, where 256 buckets (a pass on the top byte) would not fit in cache:
/// enough that each fits (up to 4096). 1.5e8 keys on 2 threads, the machine
/// of BENCHMARKS.md: u32 0.49-0.50 s against 0.60-0.65 s with a pass on the
/// top byte, whose buckets each took another pass over memory; u64
/// 0.74-0.77 s against 0.91-1.04 s.
fn wide_first_pass(n: usize) -> Option<usize> {
    (n > 256 * CACHE_KEYS).then(|| n.div_ceil(CACHE_KEYS).next_power_of_two().clamp(512, 4096))
}

/// Sorts `a` (using `b`, as long, as scratch; ending in `a` when `in_a`,
/// else in `b`) by a first pass on the top `log2 buckets` bits (512 to
/// 4096, a power of two), then each bucket on its bytes below the top one.
fn by_top_bits<B: Bits>(a: &mut [B], b: &mut [B], in_a: bool, buckets: usize) {
    let sizes = match buckets {
        0..=512 => top_bits_pass::<B, 512>(a, b),
        513..=1024 => top_bits_pass::<B, 1024>(a, b),
        1025..=2048 => top_bits_pass::<B, 2048>(a, b),
        _ => top_bits_pass::<B, 4096>(a, b),
    };
    // Every bucket's keys share their top byte (and more).
    split_buckets(b, a, &sizes)
        .into_par_iter()
        .for_each(|(src, dst)| msd(src, dst, B::BYTES - 2, !in_a));
}

/// Sorts `a` on bytes `0..=byte`, using `b` (of the same length) as
/// scratch, leaving the sorted keys in `a` when `in_a`, else in `b`.
///
/// Which buffer each level writes is planned from the top, so that the
/// passes end where the caller wants the keys: a bucket scattered from `a`
/// into `b` is finished with the roles swapped, and only the in-cache LSD
/// passes, whose count depends on the digits they skip, may need a copy.
fn msd<B: Bits>(a: &mut [B], b: &mut [B], byte: usize, in_a: bool) {
    if a.len() <= CACHE_KEYS {
        in_cache(a, b, byte, in_a);
        return;
    }
    let Some(buckets) = scatter_pass(a, b, byte) else {
        // Every key has this digit: go on to the next byte, keys unmoved.
        if byte == 0 {
            if !in_a {
                b.copy_from_slice(a);
            }
        } else {
            msd(a, b, byte - 1, in_a);
        }
        return;
    };
    // The keys now sit in `b`, bucketed by this byte.
    if byte == 0 {
        if in_a {
            a.copy_from_slice(b);
        }
        return;
    }
    // Finish each bucket from `b`, ending in `a` exactly when wanted there.
    split_buckets(b, a, &buckets)
        .into_par_iter()
        .for_each(|(src, dst)| msd(src, dst, byte - 1, !in_a));
}

/// How [`msd_top`] splits `keys` (more than fit in cache), from a sample:
/// by ranges of the top 16 bits ([`TopLevel::Ranges`]) where some value of
/// the top byte holds more keys than fit in cache and far more than its
/// share, while no value of the top 16 bits holds many: then a pass on the
/// top byte would leave buckets that need another pass over memory, and a
/// pass by ranges of the top 16 bits would not. (Where one 16-bit value
/// holds many keys, equal or nearly equal keys, the plain passes skip the
/// bytes they share without moving a key.) By more top bits
/// ([`TopLevel::TopBits`]) where the keys spread over the top byte and are
/// too many for 256 buckets in cache ([`wide_first_pass`]). Otherwise by
/// the top byte.
fn top_level<B: Bits>(keys: &[B]) -> TopLevel {
    const SAMPLES: usize = 8192;
    let n = keys.len();
    if n < 4 * SAMPLES {
        return TopLevel::Byte;
    }
    let mut prefixes: Vec<u16> = (0..SAMPLES)
        .map(|i| prefix(keys[i * (n / SAMPLES)]) as u16)
        .collect();
    let mut count = [0usize; 256];
    for &p in &prefixes {
        count[(p >> 8) as usize] += 1;
    }
    let most = count.iter().copied().max().unwrap_or(0);
    if most <= 4 * SAMPLES / 256 {
        return wide_first_pass(n).map_or(TopLevel::Byte, TopLevel::TopBits);
    }
    if most * (n / SAMPLES) <= CACHE_KEYS {
        return TopLevel::Byte;
    }
    prefixes.sort_unstable();
    let longest = prefixes
        .chunk_by(|x, y| x == y)
        .map(<[u16]>::len)
        .max()
        .unwrap_or(0);
    if longest <= SAMPLES / 16 {
        TopLevel::Ranges
    } else {
        TopLevel::Byte
    }
}

/// One parallel, stable pass of `src` into `dst` into 256 buckets of about
/// `n / 256` keys each, by ranges of the keys' top 16 bits (a 16-bit prefix
/// with more keys makes its bucket that much larger). Returns each bucket's
/// length and the highest byte on which its keys may still differ.
fn balanced_pass<B: Bits>(src: &[B], dst: &mut [B]) -> Vec<(usize, usize)> {
    let n = src.len();
    let counts = PrefixCounts::of(src);
    // A prefix goes to the bucket of the 256-quantile its first key falls
    // in: buckets follow prefix order, and each holds about n / 256 keys.
    let mut bucket_of = vec![0u8; PREFIXES];
    let mut range = [(usize::MAX, 0usize, 0usize); 256]; // (first, last prefix, keys)
    let mut before = 0usize;
    for (p, (slot, &here)) in bucket_of.iter_mut().zip(&counts.total()).enumerate() {
        let here = here as usize;
        let j = (before * 256 / n).min(255);
        *slot = j as u8;
        if here > 0 {
            let r = &mut range[j];
            r.0 = r.0.min(p);
            r.1 = p;
            r.2 += here;
        }
        before += here;
    }
    scatter_prefixes::<B, u8, 256>(src, dst, &counts, &bucket_of);
    range
        .iter()
        .map(|&(first, last, keys)| {
            // Bytes above the first one on which the bucket's prefixes
            // differ are the same for all its keys.
            let next = if keys == 0 || first == last {
                B::BYTES - 3
            } else if first >> 8 == last >> 8 {
                B::BYTES - 2
            } else {
                B::BYTES - 1
            };
            (keys, next)
        })
        .collect()
}

/// Values of the keys' top 16 bits.
pub(crate) const PREFIXES: usize = 1 << 16;

/// A key's top 16 bits.
pub(crate) fn prefix<B: Bits>(k: B) -> usize {
    (k.widen() >> (8 * B::BYTES as u32 - 16)) as usize
}

/// How many keys of each chunk of a parallel pass (one chunk per thread)
/// have each value of their top 16 bits: the first half of a pass that
/// buckets keys by ranges of those values, chosen from the counts.
pub(crate) struct PrefixCounts {
    chunk: usize,
    hists: Vec<Vec<u32>>,
}

impl PrefixCounts {
    /// Counts the prefixes of `src`, a 256 KiB count per thread (and per
    /// 2^32 - 1 keys, which a count holds).
    pub(crate) fn of<B: Bits>(src: &[B]) -> Self {
        let threads = rayon::current_num_threads().max(1);
        let chunk = src.len().div_ceil(threads).clamp(SMALL, u32::MAX as usize);
        let hists = src
            .par_chunks(chunk)
            .map(|c| {
                let mut h = vec![0u32; PREFIXES];
                for &k in c {
                    h[prefix(k)] += 1;
                }
                h
            })
            .collect();
        PrefixCounts { chunk, hists }
    }

    /// The keys with each prefix, over all chunks.
    pub(crate) fn total(&self) -> Vec<u64> {
        let mut total = vec![0u64; PREFIXES];
        for h in &self.hists {
            for (t, &c) in total.iter_mut().zip(h) {
                *t += u64::from(c);
            }
        }
        total
    }
}

/// The second half of a pass by prefix ranges: `src` (whose prefixes were
/// counted into `counts`) stably into `dst` (as long), the keys of prefix p
/// into bucket `bucket_of[p]` (below `D`, a power of two; buckets ascend
/// with prefixes). Returns the `D` bucket sizes.
///
/// # Panics
/// When the lengths differ.
pub(crate) fn scatter_prefixes<B: Bits, T: Copy + Into<usize> + Sync, const D: usize>(
    src: &[B],
    dst: &mut [B],
    counts: &PrefixCounts,
    bucket_of: &[T],
) -> Vec<usize> {
    assert_eq!(
        src.len(),
        dst.len(),
        "scatter_prefixes needs buffers of equal length"
    );
    let bucket_of = &bucket_of[..PREFIXES];
    let hists: Vec<[usize; D]> = counts
        .hists
        .iter()
        .map(|h| {
            let mut buckets = [0usize; D];
            for (&c, &j) in h.iter().zip(bucket_of) {
                buckets[j.into() & (D - 1)] += c as usize;
            }
            buckets
        })
        .collect();
    scatter_by(src, dst, counts.chunk, &hists, |k| {
        bucket_of[prefix(k)].into()
    });
    (0..D).map(|d| hists.iter().map(|h| h[d]).sum()).collect()
}

/// `src` and `dst` cut into the pieces of the given lengths, pairwise.
fn split_buckets<'a, B>(
    src: &'a mut [B],
    dst: &'a mut [B],
    lengths: &[usize],
) -> Vec<(&'a mut [B], &'a mut [B])> {
    let mut pieces = Vec::with_capacity(lengths.len());
    let (mut rest_s, mut rest_d) = (src, dst);
    for &len in lengths {
        let (s_head, s_tail) = std::mem::take(&mut rest_s).split_at_mut(len);
        let (d_head, d_tail) = std::mem::take(&mut rest_d).split_at_mut(len);
        pieces.push((s_head, d_head));
        rest_s = s_tail;
        rest_d = d_tail;
    }
    pieces
}

/// Sorts a bucket that fits in cache on bytes `0..=byte`, on one thread,
/// ending in `a` when `in_a`, else in `b`.
///
/// The bucket is sorted by LSD passes on its top bytes, as many as make keys
/// that share all of them rare among keys spread over their values (256^d
/// at least [`SPREAD`] times the keys, at most [`DIVERT_DIGITS`]; a byte
/// that is the same for every key costs no pass). When those are all the
/// bytes left, that sorts it; otherwise ("diverting" LSD) a scan finds each
/// run of keys that share them and sorts it on the bytes below: by
/// insertion sort when short, else by the same means recursively. Random
/// 64-bit keys below the parallel levels (390,000 keys, 7 bytes left) thus
/// take three passes and a scan instead of seven passes; skewed keys make
/// longer runs, never a quadratic sort.
fn in_cache<B: Bits>(a: &mut [B], b: &mut [B], byte: usize, in_a: bool) {
    let n = a.len();
    if n <= SMALL_BUCKET {
        // Fewer keys than a pass has counts: no passes.
        if n <= INSERTION {
            insertion_sort(a);
        } else {
            a.sort_unstable();
        }
        if !in_a {
            b.copy_from_slice(a);
        }
        return;
    }
    // The bytes on which some keys differ: the others cost neither a pass
    // nor a scan, and equal keys are sorted already.
    let survey = Survey::of(&[&*a], byte).expect("keys to sort");
    let sorted_on = survey.sorted_on();
    let lo = sorted_on.first().copied().unwrap_or(0);
    let ended_in_a = lsd_serial(a, b, sorted_on, &survey.counts);
    if survey.diff & ((1u64 << (8 * lo)) - 1) != 0 {
        // Keys that share the bytes sorted on remain: finish each run.
        let (sorted, spare) = if ended_in_a {
            (&mut *a, &mut *b)
        } else {
            (&mut *b, &mut *a)
        };
        sort_runs(sorted, spare, lo);
    }
    if ended_in_a != in_a {
        if in_a {
            a.copy_from_slice(b);
        } else {
            b.copy_from_slice(a);
        }
    }
}

/// Keys sorted on their bytes from `lo` up, finished: each run of keys that
/// share those bytes is sorted on bytes `0..lo`, in place (`spare`, as long
/// as `keys`, is scratch).
fn sort_runs<B: Bits>(keys: &mut [B], spare: &mut [B], lo: usize) {
    let shift = 8 * lo as u32;
    let n = keys.len();
    let mut i = 0;
    while i + 1 < n {
        let prefix = keys[i].widen() >> shift;
        if keys[i + 1].widen() >> shift != prefix {
            i += 1;
            continue;
        }
        let start = i;
        i += 2;
        while i < n && keys[i].widen() >> shift == prefix {
            i += 1;
        }
        let run = &mut keys[start..i];
        if run.len() <= INSERTION {
            insertion_sort(run);
        } else {
            in_cache(run, &mut spare[start..i], lo - 1, true);
        }
    }
}

/// Most digits a bucket is sorted on before the runs that share them are
/// finished apart (at most 3 LSD passes before a scan).
const DIVERT_DIGITS: usize = 3;

/// How many more values than keys the top digits of a diverted bucket must
/// hold: with k keys spread over s * k values, about k / (2 s) of them share
/// their top digits with another key.
const SPREAD: usize = 64;

/// Buckets of at most this many keys are finished by insertion sort.
const INSERTION: usize = 32;

/// Buckets of at most this many keys are sorted without radix passes.
const SMALL_BUCKET: usize = 64;

/// Insertion sort: the fastest for a few dozen keys.
fn insertion_sort<B: Bits>(a: &mut [B]) {
    for i in 1..a.len() {
        let k = a[i];
        let mut j = i;
        while j > 0 && a[j - 1] > k {
            a[j] = a[j - 1];
            j -= 1;
        }
        a[j] = k;
    }
}

/// Stable LSD passes over the given bytes (ascending; [`in_cache`] lists
/// only bytes on which keys differ) of one bucket on one thread,
/// ping-ponging between `a` (where the keys start) and `b`, with the
/// counts of each byte's digits over the bucket (indexed by byte). Returns
/// whether the keys ended up in `a`.
fn lsd_serial<B: Bits>(
    a: &mut [B],
    b: &mut [B],
    bytes: &[usize],
    counts: &[[u32; 256]; 8],
) -> bool {
    // Buckets fit in cache (at most CACHE_KEYS keys), so u32 counts do.
    debug_assert!(a.len() <= CACHE_KEYS);
    let mut in_a = true;
    for &byte in bytes {
        let (src, dst): (&[B], &mut [B]) = if in_a { (&*a, &mut *b) } else { (&*b, &mut *a) };
        digit_pass(&[src], dst, byte, &counts[byte]);
        in_a = !in_a;
    }
    in_a
}

/// One stable counting-sort pass on `byte` of the keys of `pieces`, in
/// order, into `dst`, given the counts of that byte's digits over them.
fn digit_pass<B: Bits>(pieces: &[&[B]], dst: &mut [B], byte: usize, count: &[u32; 256]) {
    let mut offset = starts(count);
    for p in pieces {
        for &k in *p {
            let d = k.digit(byte);
            dst[offset[d] as usize] = k;
            offset[d] += 1;
        }
    }
}

/// Where each digit's keys start in a counting-sort pass with these counts.
fn starts(count: &[u32; 256]) -> [u32; 256] {
    let mut offset = [0u32; 256];
    let mut running = 0;
    for (o, &c) in offset.iter_mut().zip(count) {
        *o = running;
        running += c;
    }
    offset
}

/// One parallel, stable counting-sort pass of `src` into `dst` on `byte`.
/// Returns the 256 bucket sizes, or `None` (and moves nothing) when every
/// key has the same digit.
fn scatter_pass<B: Bits>(src: &[B], dst: &mut [B], byte: usize) -> Option<Vec<usize>> {
    let n = src.len();
    assert_eq!(n, dst.len(), "scatter_pass needs buffers of equal length");
    let (chunk, hists) = counts_by::<B, 256>(src, |k| k.digit(byte));
    let mut total = vec![0usize; 256];
    for h in &hists {
        for d in 0..256 {
            total[d] += h[d];
        }
    }
    if total.contains(&n) {
        return None;
    }
    scatter_by(src, dst, chunk, &hists, |k| k.digit(byte));
    Some(total)
}

/// The scatter of a stable counting-sort pass: `src`, cut in chunks of
/// `chunk` keys whose counts of each digit are `hists`, into `dst` by
/// `digit` (below `D`, a power of two).
fn scatter_by<B: Bits, const D: usize>(
    src: &[B],
    dst: &mut [B],
    chunk: usize,
    hists: &[[usize; D]],
    digit: impl Fn(B) -> usize + Sync,
) {
    // Chunk c writes its keys with digit d to a part of `dst` of its own:
    // after every smaller digit, and after the earlier chunks' keys with
    // digit d (so the pass is stable). `dst` is cut into those parts, digit
    // by digit and chunk by chunk, and each chunk gets its D parts.
    let mut parts: Vec<Vec<&mut [B]>> = hists.iter().map(|_| Vec::with_capacity(D)).collect();
    let mut rest = dst;
    for d in 0..D {
        for (c, h) in hists.iter().enumerate() {
            let (part, tail) = std::mem::take(&mut rest).split_at_mut(h[d]);
            parts[c].push(part);
            rest = tail;
        }
    }
    src.par_chunks(chunk)
        .zip(parts.into_par_iter())
        .for_each(|(c, parts)| {
            // An array, so that indexing by a digit needs no bounds check.
            let parts: [&mut [B]; D] = parts.try_into().expect("D parts per chunk");
            let mut next = [0usize; D];
            for &k in c {
                let d = digit(k) & (D - 1);
                parts[d][next[d]] = k;
                next[d] += 1;
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize, seed: u64) -> Vec<u64> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s
            })
            .collect()
    }

    fn check<K: SortKey + PartialOrd>(mut v: Vec<K>) {
        let mut want = v.clone();
        want.sort_unstable_by_key(|k| k.to_bits());
        sort(Device::Cpu, &mut v).unwrap();
        assert!(
            v.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{} differs",
            K::DTYPE
        );
    }

    #[test]
    fn every_key_type_sorts_like_the_standard_library() {
        for n in [0, 1, 2, 100, SMALL + 1, 100_000, 3 * CACHE_KEYS] {
            let raw = keys(n, n as u64 + 1);
            check::<u64>(raw.clone());
            check::<u32>(raw.iter().map(|&x| x as u32).collect());
            check::<u32>(raw.iter().map(|&x| (x % 7) as u32).collect()); // few distinct
            check::<u64>(raw.iter().map(|&x| x >> 40).collect()); // top bytes all zero
            check::<u64>(raw.iter().map(|&x| (x % 1000) << 20).collect()); // ties, low bytes zero
            // Keys that share their top bytes in long runs, middle bytes
            // zero: the diverted buckets' runs are finished recursively.
            check::<u64>(raw.iter().map(|&x| x & 0xffff_0000_0000_ffff).collect());
            check::<u64>(raw.iter().map(|&x| x & 0xff00_0000_0000_0fff).collect());
            check::<u32>(raw.iter().map(|&x| (x as u32) & 0xff00_00ff).collect());
            check::<i32>(raw.iter().map(|&x| x as i32).collect());
            check::<i64>(raw.iter().map(|&x| x as i64).collect());
            check::<f32>(raw.iter().map(|&x| f32::from_bits(x as u32)).collect()); // NaNs, infs, subnormals
            check::<f64>(raw.iter().map(|&x| f64::from_bits(x)).collect());
        }
    }

    #[test]
    fn more_keys_than_256_buckets_hold_in_cache_take_a_wider_first_pass() {
        assert_eq!(wide_first_pass(256 * CACHE_KEYS), None);
        assert_eq!(wide_first_pass(256 * CACHE_KEYS + 1), Some(512));
        assert_eq!(wide_first_pass(150_000_000), Some(512));
        assert_eq!(wide_first_pass(320_000_000), Some(1024));
        assert_eq!(wide_first_pass(usize::MAX / 2), Some(4096));
        // The pass itself, at any size, either buffer last, with keys that
        // crowd one bucket and keys beyond the cache in some.
        let raw = keys(800_000, 21);
        for buckets in [512, 4096] {
            for in_a in [true, false] {
                let narrow: Vec<u32> = raw.iter().map(|&x| (x >> 32) as u32).collect();
                let crowded: Vec<u64> = raw
                    .iter()
                    .map(|&x| if x % 3 == 0 { x } else { x >> 12 })
                    .collect();
                sorts_by_top_bits(narrow, buckets, in_a);
                sorts_by_top_bits(crowded, buckets, in_a);
            }
        }
    }

    fn sorts_by_top_bits<B: Bits>(keys: Vec<B>, buckets: usize, in_a: bool) {
        let mut want = keys.clone();
        want.sort_unstable();
        let mut a = keys;
        let mut b = vec![B::zeroed(); a.len()];
        by_top_bits(&mut a, &mut b, in_a, buckets);
        let got = if in_a { a } else { b };
        assert!(got == want, "{buckets} buckets, in_a {in_a}");
    }

    #[test]
    fn keys_crowding_a_few_top_bytes_are_split_by_their_top_16_bits() {
        let n = 5 * CACHE_KEYS;
        let raw = keys(n, 11);
        // Floats uniform in [-1, 1): a quarter of them share one top byte.
        let floats: Vec<f32> = raw.iter().map(|&x| f32::from_random(x)).collect();
        let doubles: Vec<f64> = raw.iter().map(|&x| f64::from_random(x)).collect();
        // A third of the keys under one top byte, a twentieth of them
        // under one 16-bit prefix (a bucket of its own), the rest spread.
        let hot: Vec<u32> = raw
            .iter()
            .map(|&x| match x % 60 {
                0..3 => 0x1234_0000 | (x >> 40) as u32 & 0xffff,
                3..20 => 0x1200_0000 | (x >> 40) as u32 & 0xff_ffff,
                _ => (x >> 32) as u32 % 0x0500_0000,
            })
            .collect();
        let wide: Vec<u64> = raw.iter().map(|&x| (x % 3) << 56 | x >> 12).collect();
        let bits = |v: &[f32]| v.iter().map(|&k| SortKey::to_bits(k)).collect::<Vec<u32>>();
        let ranges = TopLevel::Ranges;
        assert_eq!(top_level(&bits(&floats)), ranges);
        assert_eq!(top_level(&hot), ranges);
        assert_eq!(top_level(&wide), ranges);
        assert_eq!(
            top_level(&raw),
            TopLevel::Byte,
            "uniform keys take the plain pass"
        );
        // Keys that share their top 16 bits (equal keys, small integers)
        // take the plain passes, which skip the bytes they share.
        assert_eq!(top_level(&vec![42u64; n]), TopLevel::Byte);
        assert_eq!(
            top_level(&raw.iter().map(|&x| x % 1000).collect::<Vec<u64>>()),
            TopLevel::Byte
        );
        check(floats);
        check(doubles);
        check(hot);
        check(wide);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Keys with structure: random bits under a random mask over a
        /// random base, from a few distinct values to all bits free, so
        /// that buckets have constant bytes, long runs sharing their top
        /// bytes, and every mix of the two; sizes around the thresholds.
        #[test]
        fn structured_keys_sort_like_the_standard_library(
            seed in proptest::prelude::any::<u64>(),
            mask in proptest::prelude::any::<u64>(),
            base in proptest::prelude::any::<u64>(),
            free_bits in 0u32..64,
            n in proptest::prop_oneof![0usize..100, SMALL - 10..SMALL + 10, 5_000usize..60_000],
        ) {
            let keep = mask & (u64::MAX >> (63 - free_bits));
            let raw: Vec<u64> = keys(n, seed).iter().map(|&x| base ^ (x & keep)).collect();
            for v in [raw.clone(), raw.iter().map(|&x| x.rotate_left(free_bits)).collect()] {
                let mut want = v.clone();
                want.sort_unstable();
                let mut got = v.clone();
                radix_sort(&mut got);
                proptest::prop_assert_eq!(&got, &want);
                let narrow: Vec<u32> = v.iter().map(|&x| (x >> 32) as u32 ^ x as u32).collect();
                let mut want32 = narrow.clone();
                want32.sort_unstable();
                let mut got32 = narrow;
                radix_sort(&mut got32);
                proptest::prop_assert_eq!(got32, want32);
            }
        }
    }

    #[test]
    fn pieces_gathered_from_several_senders_sort_into_one_bucket() {
        // Buckets in cache and beyond it (CACHE_KEYS), in one piece or
        // several, some empty, with narrow and wide keys and many copies.
        let wide = keys(CACHE_KEYS + 5000, 11);
        let narrow: Vec<u64> = keys(70_000, 12).iter().map(|k| k % 97).collect();
        let spread_low: Vec<u32> = keys(200_003, 13).iter().map(|&k| k as u32).collect();
        let mut spare = Vec::new();
        for data in [&wide, &narrow] {
            for cuts in [
                vec![],
                vec![0, 10, 10, 33_333],
                vec![1, 2, 3, 40_000, 69_999],
            ] {
                let mut bounds = vec![0];
                bounds.extend(cuts.iter().map(|&c: &usize| c.min(data.len())));
                bounds.push(data.len());
                let pieces: Vec<&[u64]> = bounds.windows(2).map(|w| &data[w[0]..w[1]]).collect();
                let mut out = vec![0u64; data.len()];
                sort_pieces_into(&pieces, &mut out, &mut spare);
                let mut want = data.clone();
                want.sort_unstable();
                assert_eq!(out, want, "{} keys in {} pieces", data.len(), pieces.len());
            }
        }
        // Keys on three bytes and on two (an odd and an even number of
        // passes after the first, which reads the pieces).
        let two_bytes: Vec<u32> = spread_low.iter().map(|k| k % 60_000).collect();
        for data in [&spread_low, &two_bytes] {
            let (a, b) = data.split_at(77_777);
            let mut out = vec![0u32; data.len()];
            sort_pieces_into(&[b, &[], a], &mut out, &mut Vec::new());
            let mut want = data.clone();
            want.sort_unstable();
            assert_eq!(out, want);
        }
    }

    #[test]
    fn sorting_into_another_buffer_matches_in_place() {
        for n in [0, 5, SMALL + 3, 3 * CACHE_KEYS + 1] {
            let raw = keys(n, 7);
            let mut want = raw.clone();
            want.sort_unstable();
            let mut scratch = raw.clone();
            let mut out = vec![0u64; n];
            radix_sort_into(&mut scratch, &mut out);
            assert_eq!(out, want, "u64, n = {n}");
            let mut small: Vec<u32> = raw.iter().map(|&x| (x >> 50) as u32).collect();
            let mut want32 = small.clone();
            want32.sort_unstable();
            let mut out32 = vec![0u32; n];
            radix_sort_into(&mut small, &mut out32);
            assert_eq!(out32, want32, "u32, n = {n}");
        }
    }

    #[test]
    fn float_total_order() {
        let mut v = vec![
            f64::NAN,
            1.0,
            -0.0,
            f64::INFINITY,
            0.0,
            -1.0,
            f64::NEG_INFINITY,
            -f64::NAN,
        ];
        v.extend(std::iter::repeat_n(2.0, SMALL)); // take the radix path
        sort(Device::Cpu, &mut v).unwrap();
        assert!(v[0].is_nan() && v[0].is_sign_negative());
        assert_eq!(v[1], f64::NEG_INFINITY);
        assert_eq!(v[2], -1.0);
        assert!(v[3] == 0.0 && v[3].is_sign_negative());
        assert!(v[4] == 0.0 && v[4].is_sign_positive());
        assert!(v[v.len() - 1].is_nan() && v[v.len() - 1].is_sign_positive());
        assert_eq!(v[v.len() - 2], f64::INFINITY);
        for k in [
            0.0f32,
            -0.0,
            1.5,
            -7.25,
            f32::MAX,
            f32::MIN_POSITIVE,
            f32::NAN,
        ] {
            assert_eq!(f32::from_bits(k.to_bits()).to_bits(), k.to_bits());
            assert_eq!(
                <f32 as SortKey>::from_bits(SortKey::to_bits(k)).to_bits(),
                k.to_bits()
            );
        }
    }

    #[test]
    fn pairs_move_together_and_the_stable_variant_keeps_input_order() {
        let n = 50_000;
        let raw = keys(n, 3);
        let mut k: Vec<u32> = raw.iter().map(|&x| (x % 100) as u32).collect();
        let mut v: Vec<u64> = (0..n as u64).collect();
        let original = k.clone();
        sort_pairs(Device::Cpu, &mut k, &mut v, true).unwrap();
        assert!(k.windows(2).all(|w| w[0] <= w[1]));
        for i in 0..n {
            assert_eq!(original[v[i] as usize], k[i], "value {i} left its key");
        }
        for i in 1..n {
            if k[i] == k[i - 1] {
                assert!(
                    v[i] > v[i - 1],
                    "stable: equal keys out of input order at {i}"
                );
            }
        }
        let mut k2: Vec<f64> = raw.iter().map(|&x| (x % 10) as f64 - 5.0).collect();
        let mut v2: Vec<u32> = (0..n as u32).collect();
        let orig2 = k2.clone();
        sort_pairs(Device::Cpu, &mut k2, &mut v2, false).unwrap();
        assert!(k2.windows(2).all(|w| w[0] <= w[1]));
        assert!((0..n).all(|i| orig2[v2[i] as usize] == k2[i]));
        assert!(sort_pairs(Device::Cpu, &mut [1u32, 2], &mut [1u32], false).is_err());
    }
}
