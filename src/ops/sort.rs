//! Sorting keys, and keys with payloads, on the CPU in parallel.
//!
//! Keys of every type are mapped to unsigned integers whose order is the
//! key order ([`SortKey::to_bits`]), sorted by a parallel radix sort of our
//! own (8-bit digits: parallel MSD passes down to cache-sized buckets, then
//! LSD passes within each bucket; see [`radix_sort`]), and mapped back.
//! Key-value pairs are sorted by rayon's comparison sorts on the mapped key
//! (its merge sort for the stable variant). Floats sort in IEEE
//! 754 total order: `-NaN < -inf < ... < -0.0 < +0.0 < ... < +inf < +NaN`,
//! so negative zero comes before zero and (positive) NaNs come last.
//!
//! The radix sort was measured against rdst, voracious_radix_sort and
//! rayon's `par_sort_unstable`: see BENCHMARKS.md.

use rayon::prelude::*;

use crate::device::backend::{Addr, Backend, Params, blocks};
use crate::device::{Device, DeviceBuffer, kernels};
use crate::error::{Error, Result};

mod sealed {
    pub trait Sealed {}
}

/// Unsigned integers that the radix sort works on.
pub trait Bits: bytemuck::Pod + Ord + Send + Sync + std::fmt::Debug + sealed::Sealed {
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
    keys.par_iter_mut()
        .for_each(|k| *k = bytemuck::cast(k.to_bits()));
    let bits: &mut [K::Bits] = bytemuck::cast_slice_mut(keys);
    radix_sort(bits);
    keys.par_iter_mut()
        .for_each(|k| *k = K::from_bits(bytemuck::cast(*k)));
    Ok(())
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
            let dst = DeviceBuffer::<u8>::uninit(device, src.len())?;
            let perm = DeviceBuffer::from_slice(device, &order)?;
            Params::new()
                .ptr(src.addr_at(0))
                .ptr(dst.addr_at(0))
                .ptr(perm.addr_at(0))
                .u64(keys.len() as u64)
                .i32(elem as i32)
                .launch(
                    dst.backend().as_ref(),
                    kernels::SORT.entry("tessera_gather_bytes"),
                    stride_grid(keys.len() as u64, 65535),
                    (256, 1, 1),
                )?;
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

/// Threads per block, keys per thread and keys per block of the radix
/// kernels (`kernels/sort.cu`).
const RADIX_THREADS: u32 = 256;
const RADIX_TILE: u64 = 4096;
/// Elements per block of the scan kernels.
const SCAN_TILE: u64 = 2048;
/// Outputs per block of the merge-path kernel.
const MERGE_TILE: u64 = 2048;

/// Grid for the grid-stride kernels: enough blocks of 256 threads for `n`
/// items, at most `cap`.
fn stride_grid(n: u64, cap: u64) -> (u32, u32, u32) {
    (n.div_ceil(256).clamp(1, cap) as u32, 1, 1)
}

/// 0 for unsigned keys, 1 for signed, 2 for floats: the kernels' key kinds.
fn key_kind<K: SortKey>() -> i32 {
    match K::DTYPE {
        "u32" | "u64" => 0,
        "i32" | "i64" => 1,
        _ => 2,
    }
}

fn wide<K: SortKey>() -> bool {
    size_of::<K>() == 8
}

/// Maps keys on the device to their order-preserving bits, or back.
fn map_keys_device<K: SortKey>(keys: &DeviceBuffer<K>, to_bits: bool) -> Result<()> {
    let kind = key_kind::<K>();
    if kind == 0 || keys.is_empty() {
        return Ok(());
    }
    let name = match (to_bits, wide::<K>()) {
        (true, false) => "tessera_keys_to_bits_32",
        (false, false) => "tessera_bits_to_keys_32",
        (true, true) => "tessera_keys_to_bits_64",
        (false, true) => "tessera_bits_to_keys_64",
    };
    Params::new()
        .ptr(keys.addr_at(0))
        .u64(keys.len() as u64)
        .i32(kind)
        .launch(
            keys.backend().as_ref(),
            kernels::SORT.entry(name),
            stride_grid(keys.len() as u64, 65535),
            (256, 1, 1),
        )
}

/// Exclusive prefix sum of `n` u32 at `data`, in place, on the device: a
/// scan per tile, then the tile sums scanned the same way and added back.
fn scan_device(device: Device, backend: &dyn Backend, data: Addr, n: u64) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let tiles = blocks(n, SCAN_TILE, "scan")?;
    let scan = kernels::SORT.entry("tessera_scan_exclusive_u32");
    if tiles == 1 {
        return Params::new()
            .ptr(data)
            .u64(n)
            .ptr(0)
            .launch(backend, scan, (1, 1, 1), (256, 1, 1));
    }
    let sums = DeviceBuffer::<u32>::uninit(device, tiles as usize)?;
    Params::new().ptr(data).u64(n).ptr(sums.addr_at(0)).launch(
        backend,
        scan,
        (tiles, 1, 1),
        (256, 1, 1),
    )?;
    scan_device(device, backend, sums.addr_at(0), tiles as u64)?;
    Params::new().ptr(data).u64(n).ptr(sums.addr_at(0)).launch(
        backend,
        kernels::SORT.entry("tessera_scan_add_u32"),
        (tiles, 1, 1),
        (256, 1, 1),
    )
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
    let backend = keys.backend().clone();
    let backend = backend.as_ref();
    map_keys_device(keys, true)?;
    let n64 = n as u64;
    let tiles = blocks(n64, RADIX_TILE, "sort_device")?;
    let hist = DeviceBuffer::<u32>::uninit(device, 256 * tiles as usize)?;
    let spare_keys = DeviceBuffer::<K>::uninit(device, n)?;
    let spare_values = match values {
        Some(_) => Some(DeviceBuffer::<u32>::uninit(device, n)?),
        None => None,
    };
    let (histogram, scatter) = if wide::<K>() {
        ("tessera_radix_histogram_64", "tessera_radix_scatter_64")
    } else {
        ("tessera_radix_histogram_32", "tessera_radix_scatter_32")
    };
    let mut src = (keys.addr_at(0), values.as_ref().map_or(0, |v| v.addr_at(0)));
    let mut dst = (
        spare_keys.addr_at(0),
        spare_values.as_ref().map_or(0, |v| v.addr_at(0)),
    );
    // An even number of passes (4 or 8) leaves the result where it started.
    for pass in 0..size_of::<K>() as i32 {
        let shift = 8 * pass;
        Params::new()
            .ptr(src.0)
            .u64(n64)
            .i32(shift)
            .ptr(hist.addr_at(0))
            .launch(
                backend,
                kernels::SORT.entry(histogram),
                (tiles, 1, 1),
                (RADIX_THREADS, 1, 1),
            )?;
        scan_device(device, backend, hist.addr_at(0), 256 * tiles as u64)?;
        Params::new()
            .ptr(src.0)
            .ptr(dst.0)
            .ptr(src.1)
            .ptr(dst.1)
            .u64(n64)
            .i32(shift)
            .ptr(hist.addr_at(0))
            .launch(
                backend,
                kernels::SORT.entry(scatter),
                (tiles, 1, 1),
                (RADIX_THREADS, 1, 1),
            )?;
        std::mem::swap(&mut src, &mut dst);
    }
    map_keys_device(keys, false)
}

/// Merges two sorted runs of keys on the device into `out` (stable: on
/// ties, `a` first), by merge path (`kernels/sort.cu`).
pub fn merge_device<K: SortKey>(
    a: &DeviceBuffer<K>,
    b: &DeviceBuffer<K>,
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
    map_keys_device(a, true)?;
    map_keys_device(b, true)?;
    merge_mapped(a, b, out)?;
    map_keys_device(a, false)?;
    map_keys_device(b, false)?;
    map_keys_device(out, false)
}

/// The merge-path launch on keys already mapped to their bits.
fn merge_mapped<K: SortKey>(
    a: &DeviceBuffer<K>,
    b: &DeviceBuffer<K>,
    out: &mut DeviceBuffer<K>,
) -> Result<()> {
    let total = a.len() + b.len();
    let name = if wide::<K>() {
        "tessera_merge_path_64"
    } else {
        "tessera_merge_path_32"
    };
    Params::new()
        .ptr(a.addr_at(0))
        .u64(a.len() as u64)
        .ptr(b.addr_at(0))
        .u64(b.len() as u64)
        .ptr(out.addr_at(0))
        .launch(
            out.backend().as_ref(),
            kernels::SORT.entry(name),
            (blocks(total as u64, MERGE_TILE, "merge_device")?, 1, 1),
            (256, 1, 1),
        )
}

/// Merges sorted runs of host keys on `device`, pairwise by merge path:
/// each run is mapped to its bits once, the merges stay in device memory,
/// and only the result is mapped back and copied down.
pub fn merge_runs_device<K: SortKey>(device: Device, runs: &[&[K]]) -> Result<Vec<K>> {
    let _span = crate::trace::compute("merge_runs");
    let mut level: Vec<DeviceBuffer<K>> = Vec::with_capacity(runs.len());
    for r in runs {
        let buf = DeviceBuffer::from_slice(device, r)?;
        map_keys_device(&buf, true)?;
        level.push(buf);
    }
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        let mut it = level.into_iter();
        while let Some(a) = it.next() {
            match it.next() {
                Some(b) => {
                    let mut out = DeviceBuffer::uninit(device, a.len() + b.len())?;
                    if !out.is_empty() {
                        merge_mapped(&a, &b, &mut out)?;
                    }
                    next.push(out);
                }
                None => next.push(a),
            }
        }
        level = next;
    }
    match level.pop() {
        Some(all) => {
            map_keys_device(&all, false)?;
            all.to_vec()
        }
        None => Ok(Vec::new()),
    }
}

/// The sort's fingerprint (wrapping sum and xor of the mixed key bits, as
/// [`crate::distributed::sort::fingerprint`]) and the number of descents (keys
/// greater than the next), computed on the device.
pub fn check_device<K: SortKey>(keys: &DeviceBuffer<K>) -> Result<(u64, u64, u64)> {
    let _span = crate::trace::compute("check_sorted");
    let n = keys.len() as u64;
    if n == 0 {
        return Ok((0, 0, 0));
    }
    let out = DeviceBuffer::<u64>::zeros(keys.device(), 3)?;
    map_keys_device(keys, true)?;
    let (fp, desc) = if wide::<K>() {
        ("tessera_fingerprint_64", "tessera_count_descents_64")
    } else {
        ("tessera_fingerprint_32", "tessera_count_descents_32")
    };
    // The fingerprint accumulates into out[0..2], the descents into out[2].
    for (kernel, slot) in [(fp, 0), (desc, 2)] {
        Params::new()
            .ptr(keys.addr_at(0))
            .u64(n)
            .ptr(out.addr_at(slot))
            .launch(
                keys.backend().as_ref(),
                kernels::SORT.entry(kernel),
                stride_grid(n, 1024),
                (256, 1, 1),
            )?;
    }
    map_keys_device(keys, false)?;
    let r = out.to_vec()?;
    Ok((r[0], r[1], r[2]))
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
        let o = DeviceBuffer::<u32>::uninit(device, keys.len())?;
        if !keys.is_empty() {
            Params::new()
                .ptr(o.addr_at(0))
                .u64(keys.len() as u64)
                .launch(
                    o.backend().as_ref(),
                    kernels::SORT.entry("tessera_iota_u32"),
                    stride_grid(keys.len() as u64, 65535),
                    (256, 1, 1),
                )?;
        }
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

/// A raw pointer that may cross threads: each thread writes disjoint
/// positions (see the SAFETY comment at its use).
#[derive(Clone, Copy)]
struct SharedOut<T>(*mut T);
// SAFETY: used only to write disjoint positions from different threads.
unsafe impl<T: Send> Send for SharedOut<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SharedOut<T> {}

impl<T> SharedOut<T> {
    /// The pointer (a method, so closures capture the whole wrapper).
    fn get(self) -> *mut T {
        self.0
    }
}

/// Parallel radix sort of unsigned integers. MSD passes split the keys by
/// their top bytes, in parallel, until a bucket fits in cache (at most
/// `CACHE_KEYS` keys); each such bucket is then sorted on one thread by LSD
/// passes over its remaining bytes. Buckets are worked on in parallel, and a
/// pass whose digit is the same for every key is skipped, so skewed keys
/// (floats crowding a few exponents, few distinct values) keep both the
/// parallelism and the short cut.
pub fn radix_sort<B: Bits>(keys: &mut [B]) {
    if keys.len() <= SMALL {
        keys.sort_unstable();
        return;
    }
    let mut scratch: Vec<B> = vec![B::zeroed(); keys.len()];
    if !msd(keys, &mut scratch, B::BYTES - 1) {
        keys.copy_from_slice(&scratch);
    }
}

/// Keys a bucket may hold to be finished by serial LSD passes in cache.
const CACHE_KEYS: usize = 1 << 16;

/// Sorts `a` on bytes `0..=byte`, using `b` as scratch of the same length.
/// Returns whether the sorted keys are in `a` (else they are in `b`).
fn msd<B: Bits>(a: &mut [B], b: &mut [B], byte: usize) -> bool {
    if a.len() <= CACHE_KEYS {
        return lsd_serial(a, b, byte + 1);
    }
    let Some(buckets) = scatter_pass(a, b, byte) else {
        // Every key has this digit: go on to the next byte, keys unmoved.
        return byte == 0 || msd(a, b, byte - 1);
    };
    if byte == 0 {
        return false;
    }
    // The keys now sit in `b`, bucketed by this byte; finish each bucket.
    let mut pieces: Vec<(&mut [B], &mut [B])> = Vec::with_capacity(256);
    let (mut rest_b, mut rest_a) = (&mut b[..], &mut a[..]);
    for len in buckets {
        let (b_head, b_tail) = std::mem::take(&mut rest_b).split_at_mut(len);
        let (a_head, a_tail) = std::mem::take(&mut rest_a).split_at_mut(len);
        pieces.push((b_head, a_head));
        rest_b = b_tail;
        rest_a = a_tail;
    }
    pieces.into_par_iter().for_each(|(src, dst)| {
        // Make each bucket end in `a`, so the caller finds all of them there.
        if msd(src, dst, byte - 1) {
            dst.copy_from_slice(src);
        }
    });
    true
}

/// LSD passes over bytes `0..top` of one bucket on one thread, ping-ponging
/// between `a` (where the keys start) and `b`. Returns whether the sorted
/// keys ended up in `a`.
fn lsd_serial<B: Bits>(a: &mut [B], b: &mut [B], top: usize) -> bool {
    if a.len() <= 64 {
        a.sort_unstable();
        return true;
    }
    let mut in_a = true;
    for byte in 0..top {
        let (src, dst): (&[B], &mut [B]) = if in_a { (&*a, &mut *b) } else { (&*b, &mut *a) };
        let mut count = [0usize; 256];
        for &k in src {
            count[k.digit(byte)] += 1;
        }
        if count.contains(&src.len()) {
            continue;
        }
        let mut offset = [0usize; 256];
        let mut running = 0;
        for d in 0..256 {
            offset[d] = running;
            running += count[d];
        }
        for &k in src {
            let d = k.digit(byte);
            dst[offset[d]] = k;
            offset[d] += 1;
        }
        in_a = !in_a;
    }
    in_a
}

/// One parallel, stable counting-sort pass of `src` into `dst` on `byte`.
/// Returns the 256 bucket sizes, or `None` (and moves nothing) when every
/// key has the same digit.
fn scatter_pass<B: Bits>(src: &[B], dst: &mut [B], byte: usize) -> Option<Vec<usize>> {
    let n = src.len();
    // The unsafe writes below rely on it.
    assert_eq!(n, dst.len(), "scatter_pass needs buffers of equal length");
    let threads = rayon::current_num_threads().max(1);
    let chunk = n.div_ceil(threads * 4).max(SMALL);
    let hists: Vec<[usize; 256]> = src
        .par_chunks(chunk)
        .map(|c| {
            let mut h = [0usize; 256];
            for &k in c {
                h[k.digit(byte)] += 1;
            }
            h
        })
        .collect();
    let mut total = vec![0usize; 256];
    for h in &hists {
        for d in 0..256 {
            total[d] += h[d];
        }
    }
    if total.contains(&n) {
        return None;
    }
    // Chunk c writes digit d from offset[c][d]: after every smaller digit,
    // and after the earlier chunks' keys with digit d (so the pass is stable).
    let mut offsets = vec![[0usize; 256]; hists.len()];
    let mut running = 0;
    for d in 0..256 {
        for (c, h) in hists.iter().enumerate() {
            offsets[c][d] = running;
            running += h[d];
        }
    }
    let out = SharedOut(dst.as_mut_ptr());
    src.par_chunks(chunk)
        .zip(offsets.into_par_iter())
        .for_each(|(c, mut off)| {
            for &k in c {
                let d = k.digit(byte);
                // SAFETY: the offsets partition 0..n: chunk c's keys with digit d
                // go to offset[c][d] .. offset[c][d] + hists[c][d], ranges no
                // other chunk or digit touches, all below n = dst.len().
                unsafe {
                    out.get().add(off[d]).write(k);
                }
                off[d] += 1;
            }
        });
    Some(total)
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
        for n in [0, 1, 2, 100, SMALL + 1, 100_000] {
            let raw = keys(n, n as u64 + 1);
            check::<u64>(raw.clone());
            check::<u32>(raw.iter().map(|&x| x as u32).collect());
            check::<u32>(raw.iter().map(|&x| (x % 7) as u32).collect()); // few distinct
            check::<i32>(raw.iter().map(|&x| x as i32).collect());
            check::<i64>(raw.iter().map(|&x| x as i64).collect());
            check::<f32>(raw.iter().map(|&x| f32::from_bits(x as u32)).collect()); // NaNs, infs, subnormals
            check::<f64>(raw.iter().map(|&x| f64::from_bits(x)).collect());
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
