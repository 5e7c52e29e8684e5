//! The launchers of `kernels/sort.cu`: key mapping, iota, gather, scan, the
//! LSD radix passes, merge path and the on-device checks.
//!
//! The kernels work on keys as unsigned integers of 4 or 8 bytes; a key
//! buffer of any `Pod` type of those sizes is taken as such (the bits are
//! only reinterpreted), and [`KeyKind`] says how they map to an order.
//!
//! Two kernels are in bounds only for the right data, which the host cannot
//! see without copying it back. The radix scatter writes each key where the
//! scanned histogram of the same keys says: [`RadixHistogram::count`]
//! returns [`RadixOffsets`], which borrows the keys it counted (so they
//! cannot change) and is the only way to the scatter. Merge path needs
//! ascending inputs: [`SortedBits`] holds mapped keys that were checked on
//! the device to ascend, or that a merge produced, and the merge takes only
//! those.

use std::borrow::BorrowMut;
use std::marker::PhantomData;

use bytemuck::Pod;

use super::{BLOCK, Params, THREADS, blocks, same_device, stride_grid};
use crate::device::kernels::{self, Entry};
use crate::device::{Device, DeviceBuffer};
use crate::error::{Error, Result};

/// Keys per block of the radix kernels.
const RADIX_TILE: u64 = 4096;
/// Elements per block of the scan kernels.
const SCAN_TILE: u64 = 2048;
/// Outputs per block of the merge-path kernel.
const MERGE_TILE: u64 = 2048;

/// How the kernels map a key's bits to an unsigned integer of the same
/// order (`kernels/sort.cu`, "Key mapping").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// Unsigned integers: their bits as they are.
    Unsigned,
    /// Two's complement integers: the sign bit flipped.
    Signed,
    /// IEEE floats: total order.
    Float,
}

impl KeyKind {
    fn code(self) -> i32 {
        match self {
            KeyKind::Unsigned => 0,
            KeyKind::Signed => 1,
            KeyKind::Float => 2,
        }
    }
}

/// Which of a kernel's two versions (32- or 64-bit keys) fits `K`.
fn pick<K: Pod>(
    op: &'static str,
    w32: &'static Entry,
    w64: &'static Entry,
) -> Result<&'static Entry> {
    match size_of::<K>() {
        4 => Ok(w32),
        8 => Ok(w64),
        s => Err(Error::invalid(
            op,
            format!("keys of {s} bytes: the sort kernels take 4- or 8-byte keys"),
        )),
    }
}

/// Maps `keys` in place between keys and their order-preserving bits
/// (`tessera_keys_to_bits_*` / `tessera_bits_to_keys_*`); nothing to do for
/// unsigned keys.
fn map<K: Pod>(keys: &mut DeviceBuffer<K>, kind: KeyKind, to_bits: bool) -> Result<()> {
    let entry = match to_bits {
        true => pick::<K>("sort", &kernels::KEYS_TO_BITS_32, &kernels::KEYS_TO_BITS_64)?,
        false => pick::<K>("sort", &kernels::BITS_TO_KEYS_32, &kernels::BITS_TO_KEYS_64)?,
    };
    if kind == KeyKind::Unsigned || keys.is_empty() {
        return Ok(());
    }
    let n = keys.len() as u64;
    let params = Params::new().ptr(keys.addr_at(0)).u64(n).i32(kind.code());
    // SAFETY: the kernel rewrites elements 0..n of `keys`, n being its
    // length and the element size the kernel's (picked above); `keys` is
    // borrowed mutably, so no host thread touches it. Grid-stride loops:
    // any grid of 256-thread blocks stays in bounds.
    unsafe { params.launch(keys.backend(), entry, stride_grid(n, 65535), BLOCK) }
}

/// Maps keys to their order-preserving bits, in place.
pub(crate) fn keys_to_bits<K: Pod>(keys: &mut DeviceBuffer<K>, kind: KeyKind) -> Result<()> {
    map(keys, kind, true)
}

/// Maps bits back to keys, in place ([`keys_to_bits`] undone).
pub(crate) fn bits_to_keys<K: Pod>(keys: &mut DeviceBuffer<K>, kind: KeyKind) -> Result<()> {
    map(keys, kind, false)
}

/// `out[i] = i` (`tessera_iota_u32`).
pub(crate) fn iota(out: &mut DeviceBuffer<u32>) -> Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let n = out.len() as u64;
    let params = Params::new().ptr(out.addr_at(0)).u64(n);
    // SAFETY: the kernel writes elements 0..n of `out`, its length; `out`
    // is borrowed mutably. Grid-stride: any grid is in bounds.
    unsafe {
        params.launch(
            out.backend(),
            &kernels::IOTA_U32,
            stride_grid(n, 65535),
            BLOCK,
        )
    }
}

/// Element `i` of `dst` = element `perm[i]` of `src`, elements being
/// `elem_bytes` bytes (`tessera_gather_bytes`). `src` and `dst` hold
/// `perm.len()` elements each; every index of `perm` must be below that.
/// The permutation is checked on the host and copied to the device here.
pub(crate) fn gather(
    src: &DeviceBuffer<u8>,
    dst: &mut DeviceBuffer<u8>,
    perm: &[u32],
    elem_bytes: usize,
) -> Result<()> {
    const OP: &str = "sort_pairs";
    let n = perm.len();
    let elem = u32::try_from(elem_bytes)
        .ok()
        .filter(|&e| e > 0)
        .ok_or_else(|| Error::invalid(OP, format!("elements of {elem_bytes} bytes")))?;
    if n.checked_mul(elem_bytes) != Some(src.len()) || dst.len() != src.len() {
        return Err(Error::invalid(
            OP,
            format!(
                "gathering {n} elements of {elem_bytes} bytes needs source and destination of {} bytes (got {} and {})",
                n.saturating_mul(elem_bytes),
                src.len(),
                dst.len()
            ),
        ));
    }
    if let Some(bad) = perm.iter().find(|&&i| i as usize >= n) {
        return Err(Error::invalid(
            OP,
            format!("permutation index {bad} out of range for {n} elements"),
        ));
    }
    same_device(OP, &[dst.device(), src.device()])?;
    if n == 0 {
        return Ok(());
    }
    let perm = DeviceBuffer::from_slice(dst.device(), perm)?;
    let params = Params::new()
        .ptr(src.addr_at(0))
        .ptr(dst.addr_at(0))
        .ptr(perm.addr_at(0))
        .u64(n as u64)
        .u32(elem);
    // SAFETY: the kernel reads perm[0..n], source elements perm[i] < n
    // (every index checked above) and writes destination elements 0..n,
    // each `elem` bytes: inside the three buffers, whose lengths were
    // checked, all on one device. `dst` is borrowed mutably (so distinct
    // from `src`) and `perm` is ours. Grid-stride: any grid is in bounds.
    unsafe {
        params.launch(
            dst.backend(),
            &kernels::GATHER_BYTES,
            stride_grid(n as u64, 65535),
            BLOCK,
        )
    }
}

/// Exclusive prefix sum (wrapping) of all of `data`, in place: a scan per
/// tile, then the tile sums scanned the same way and added back.
pub(crate) fn scan_exclusive(data: &mut DeviceBuffer<u32>) -> Result<()> {
    let n = data.len() as u64;
    if n == 0 {
        return Ok(());
    }
    let tiles = blocks(n, SCAN_TILE, "scan")?;
    if tiles == 1 {
        return scan_tiles(data, None);
    }
    let mut sums = DeviceBuffer::<u32>::uninit(data.device(), tiles as usize)?;
    scan_tiles(data, Some(&mut sums))?;
    scan_exclusive(&mut sums)?;
    scan_add(data, &sums)
}

/// Scans each 2048-element tile of `data` in place and, given `tile_sums`,
/// writes tile `b`'s total to `tile_sums[b]` (`tessera_scan_exclusive_u32`).
fn scan_tiles(
    data: &mut DeviceBuffer<u32>,
    tile_sums: Option<&mut DeviceBuffer<u32>>,
) -> Result<()> {
    let n = data.len() as u64;
    let tiles = blocks(n, SCAN_TILE, "scan")?;
    let mut params = Params::new().ptr(data.addr_at(0)).u64(n);
    params = match tile_sums {
        Some(sums) => {
            if sums.len() < tiles as usize {
                return Err(Error::invalid(
                    "scan",
                    format!("{tiles} tiles need {tiles} tile sums (got {})", sums.len()),
                ));
            }
            same_device("scan", &[data.device(), sums.device()])?;
            params.ptr(sums.addr_at(0))
        }
        None => params.null(),
    };
    // SAFETY: block b scans elements [2048 b, min(n, 2048 (b + 1))) of
    // `data` (n = its length) and writes tile_sums[b], b < tiles, when the
    // sums are given (null is allowed); both buffers were checked to be
    // that long, are on one device and are borrowed mutably. One block per
    // tile of 256 threads is the documented shape.
    unsafe {
        params.launch(
            data.backend(),
            &kernels::SCAN_EXCLUSIVE_U32,
            (tiles, 1, 1),
            BLOCK,
        )
    }
}

/// Adds `tile_offsets[b]` to every element of tile `b` of `data`
/// (`tessera_scan_add_u32`).
fn scan_add(data: &mut DeviceBuffer<u32>, tile_offsets: &DeviceBuffer<u32>) -> Result<()> {
    let n = data.len() as u64;
    let tiles = blocks(n, SCAN_TILE, "scan")?;
    if tile_offsets.len() < tiles as usize {
        return Err(Error::invalid(
            "scan",
            format!(
                "{tiles} tiles need {tiles} tile offsets (got {})",
                tile_offsets.len()
            ),
        ));
    }
    same_device("scan", &[data.device(), tile_offsets.device()])?;
    let params = Params::new()
        .ptr(data.addr_at(0))
        .u64(n)
        .ptr(tile_offsets.addr_at(0));
    // SAFETY: block b < tiles reads tile_offsets[b] and updates elements
    // [2048 b, min(n, 2048 (b + 1))) of `data`: inside both buffers (lengths
    // checked), on one device; `data` is borrowed mutably and distinct from
    // the offsets. One 256-thread block per tile is the documented shape.
    unsafe { params.launch(data.backend(), &kernels::SCAN_ADD_U32, (tiles, 1, 1), BLOCK) }
}

/// Scratch for the radix passes over `n` keys: the digit counts of every
/// tile (`256 x tiles` u32), reused by each pass.
pub(crate) struct RadixHistogram {
    counts: DeviceBuffer<u32>,
    n: usize,
    tiles: u32,
}

impl RadixHistogram {
    /// Scratch for sorting `n` keys on `device` (at most 2^32 - 1: the
    /// output positions are u32).
    pub(crate) fn new(device: Device, n: usize) -> Result<Self> {
        if n > u32::MAX as usize {
            return Err(Error::invalid(
                "sort_device",
                format!(
                    "{n} keys: a GPU sort takes at most 2^32 - 1 keys per call; sort in parts and merge"
                ),
            ));
        }
        let tiles = blocks(n as u64, RADIX_TILE, "sort_device")?;
        Ok(RadixHistogram {
            counts: DeviceBuffer::uninit(device, 256 * tiles as usize)?,
            n,
            tiles,
        })
    }

    /// Counts the 8-bit digit at bit `shift` of `keys` per tile
    /// (`tessera_radix_histogram_*`) and scans the counts into output
    /// positions: where the stable scatter of these keys puts each
    /// (digit, tile).
    pub(crate) fn count<'k, 'h, K: Pod>(
        &'h mut self,
        keys: &'k DeviceBuffer<K>,
        shift: u32,
    ) -> Result<RadixOffsets<'k, 'h, K>> {
        let entry = pick::<K>(
            "sort_device",
            &kernels::RADIX_HISTOGRAM_32,
            &kernels::RADIX_HISTOGRAM_64,
        )?;
        check_pass::<K>(keys.len(), self.n, shift)?;
        same_device("sort_device", &[self.counts.device(), keys.device()])?;
        let params = Params::new()
            .ptr(keys.addr_at(0))
            .u64(self.n as u64)
            .i32(shift as i32)
            .ptr(self.counts.addr_at(0));
        // SAFETY: block b < tiles reads keys [4096 b, min(n, 4096 (b + 1)))
        // of `keys` (n = its length, the element size the kernel's) and
        // writes counts[d * tiles + b], d < 256: `counts` holds 256 * tiles
        // (made so in `new` for this n); one device; the counts are borrowed
        // mutably. One 256-thread block per tile is the documented shape,
        // and the shift is below the key's width.
        unsafe {
            params.launch(
                self.counts.backend(),
                entry,
                (self.tiles, 1, 1),
                (THREADS, 1, 1),
            )
        }?;
        scan_exclusive(&mut self.counts)?;
        Ok(RadixOffsets {
            keys,
            offsets: &self.counts,
            tiles: self.tiles,
            shift,
        })
    }
}

/// Checks a radix pass's sizes: `len` keys for scratch made for `n`, and a
/// digit inside the key.
fn check_pass<K>(len: usize, n: usize, shift: u32) -> Result<()> {
    if len != n {
        return Err(Error::invalid(
            "sort_device",
            format!("{len} keys for radix scratch made for {n}"),
        ));
    }
    if !shift.is_multiple_of(8) || shift as usize >= 8 * size_of::<K>() {
        return Err(Error::invalid(
            "sort_device",
            format!("a digit at bit {shift} of {}-byte keys", size_of::<K>()),
        ));
    }
    Ok(())
}

/// Where the stable scatter of one radix pass puts each key: the scanned
/// digit counts of `keys`, which it borrows so they cannot change before
/// [`RadixOffsets::scatter`].
pub(crate) struct RadixOffsets<'k, 'h, K: Pod> {
    keys: &'k DeviceBuffer<K>,
    offsets: &'h DeviceBuffer<u32>,
    tiles: u32,
    shift: u32,
}

impl<K: Pod> RadixOffsets<'_, '_, K> {
    /// Writes the counted keys to `keys_out`, stably ordered by the digit
    /// (`tessera_radix_scatter_*`), and `values` (input, output) with them.
    pub(crate) fn scatter(
        self,
        keys_out: &mut DeviceBuffer<K>,
        values: Option<(&DeviceBuffer<u32>, &mut DeviceBuffer<u32>)>,
    ) -> Result<()> {
        let entry = pick::<K>(
            "sort_device",
            &kernels::RADIX_SCATTER_32,
            &kernels::RADIX_SCATTER_64,
        )?;
        let n = self.keys.len();
        let mut devices = vec![keys_out.device(), self.keys.device()];
        let mut lengths = vec![keys_out.len()];
        let mut params = Params::new()
            .ptr(self.keys.addr_at(0))
            .ptr(keys_out.addr_at(0));
        params = match values {
            Some((vin, vout)) => {
                devices.extend([vin.device(), vout.device()]);
                lengths.extend([vin.len(), vout.len()]);
                params.ptr(vin.addr_at(0)).ptr(vout.addr_at(0))
            }
            None => params.null().null(),
        };
        if let Some(&bad) = lengths.iter().find(|&&l| l != n) {
            return Err(Error::ShapeMismatch {
                op: "sort_device",
                expected: format!("{n} keys and values out, as many as in"),
                got: format!("a buffer of {bad}"),
            });
        }
        same_device("sort_device", &devices)?;
        let params = params
            .u64(n as u64)
            .i32(self.shift as i32)
            .ptr(self.offsets.addr_at(0));
        // SAFETY: `offsets` is the exclusive scan of the digit counts of
        // exactly these keys for this shift (RadixHistogram::count made it
        // and the borrow kept the keys unchanged), so the kernel writes each
        // of the n keys (and values) to a distinct position below n; it
        // reads n keys (and values) in. All buffers hold n elements (checked
        // above; the element size is the kernel's), are on one device, and
        // the outputs are borrowed mutably, distinct from the inputs. Null
        // values are allowed. One 256-thread block per 4096-key tile, as
        // when counting.
        unsafe {
            params.launch(
                keys_out.backend(),
                entry,
                (self.tiles, 1, 1),
                (THREADS, 1, 1),
            )
        }
    }
}

/// The number of descents (`keys[i] > keys[i + 1]` as unsigned bits) of
/// `bits`, added to `out[at]` (`tessera_count_descents_*`).
pub(crate) fn count_descents<K: Pod>(
    bits: &DeviceBuffer<K>,
    out: &mut DeviceBuffer<u64>,
    at: usize,
) -> Result<()> {
    accumulate(
        "check_sorted",
        (&kernels::COUNT_DESCENTS_32, &kernels::COUNT_DESCENTS_64),
        1,
        bits,
        out,
        at,
    )
}

/// The order-free fingerprint of `bits` (wrapping sum and xor of their
/// mixed values) added to `out[at]` and xored into `out[at + 1]`
/// (`tessera_fingerprint_*`).
pub(crate) fn fingerprint<K: Pod>(
    bits: &DeviceBuffer<K>,
    out: &mut DeviceBuffer<u64>,
    at: usize,
) -> Result<()> {
    accumulate(
        "check_sorted",
        (&kernels::FINGERPRINT_32, &kernels::FINGERPRINT_64),
        2,
        bits,
        out,
        at,
    )
}

/// A read-only pass over `bits` that accumulates into `out[at..at + slots]`.
fn accumulate<K: Pod>(
    op: &'static str,
    (w32, w64): (&'static Entry, &'static Entry),
    slots: usize,
    bits: &DeviceBuffer<K>,
    out: &mut DeviceBuffer<u64>,
    at: usize,
) -> Result<()> {
    let entry = pick::<K>(op, w32, w64)?;
    if at.checked_add(slots).is_none_or(|end| end > out.len()) {
        return Err(Error::invalid(
            op,
            format!(
                "{slots} results at {at} do not fit an output of {}",
                out.len()
            ),
        ));
    }
    same_device(op, &[out.device(), bits.device()])?;
    let n = bits.len() as u64;
    if n == 0 {
        return Ok(());
    }
    let params = Params::new()
        .ptr(bits.addr_at(0))
        .u64(n)
        .ptr(out.addr_at(at));
    // SAFETY: the kernel reads elements 0..n of `bits` (n its length, the
    // element size the kernel's) and atomically updates out[at..at +
    // slots], checked to lie inside `out`; one device; `out` is borrowed
    // mutably. Grid-stride: any grid of 256-thread blocks is in bounds.
    unsafe { params.launch(out.backend(), entry, stride_grid(n, 1024), BLOCK) }
}

/// Keys mapped to their order-preserving bits ([`keys_to_bits`]) and known
/// to ascend: checked on the device ([`SortedBits::check`]) or made by
/// [`merge`]. `D` is how the buffer is held: owned or borrowed mutably.
pub(crate) struct SortedBits<K: Pod, D: BorrowMut<DeviceBuffer<K>>> {
    bits: D,
    kind: KeyKind,
    _keys: PhantomData<fn() -> K>,
}

impl<K: Pod, D: BorrowMut<DeviceBuffer<K>>> SortedBits<K, D> {
    /// Maps `keys` to their bits in place and checks on the device that
    /// they ascend (one pass, and a wait for its result). Keys that do not
    /// are mapped back, and an error for `op` naming them as `what`.
    pub(crate) fn check(mut keys: D, kind: KeyKind, op: &'static str, what: &str) -> Result<Self> {
        keys_to_bits(keys.borrow_mut(), kind)?;
        let buf = keys.borrow();
        if buf.len() > 1 {
            let mut descents = DeviceBuffer::<u64>::zeros(buf.device(), 1)?;
            count_descents(buf, &mut descents, 0)?;
            let d = descents.to_vec()?[0];
            if d != 0 {
                bits_to_keys(keys.borrow_mut(), kind)?;
                return Err(Error::invalid(
                    op,
                    format!("{what} is not sorted ({d} keys greater than the next)"),
                ));
            }
        }
        Ok(SortedBits {
            bits: keys,
            kind,
            _keys: PhantomData,
        })
    }

    /// Keys.
    pub(crate) fn len(&self) -> usize {
        self.bits.borrow().len()
    }

    /// The buffer, mapped back to keys.
    pub(crate) fn into_keys(mut self) -> Result<D> {
        bits_to_keys(self.bits.borrow_mut(), self.kind)?;
        Ok(self.bits)
    }
}

/// For each query, the number of keys whose bits are below it
/// (`tessera_lower_bound_*`): one binary search per query on the device,
/// the queries uploaded and the counts copied back.
pub(crate) fn lower_bounds<K: Pod, D: BorrowMut<DeviceBuffer<K>>>(
    sorted: &SortedBits<K, D>,
    queries: &[u64],
) -> Result<Vec<u64>> {
    const OP: &str = "lower_bounds";
    let entry = pick::<K>(OP, &kernels::LOWER_BOUND_32, &kernels::LOWER_BOUND_64)?;
    if queries.is_empty() {
        return Ok(Vec::new());
    }
    let bits = sorted.bits.borrow();
    let device = bits.device();
    let q = DeviceBuffer::from_slice(device, queries)?;
    let out = DeviceBuffer::<u64>::uninit(device, queries.len())?;
    let nq = queries.len() as u64;
    let params = Params::new()
        .ptr(bits.addr_at(0))
        .u64(bits.len() as u64)
        .ptr(q.addr_at(0))
        .u64(nq)
        .ptr(out.addr_at(0));
    // SAFETY: the kernel reads bits[0..n) (n is the buffer's length; binary
    // searches stay inside it whatever the order), queries[0..nq) and
    // writes out[0..nq), both buffers made here of nq elements on the same
    // device; `out` is not otherwise borrowed. Grid-stride: any grid.
    unsafe {
        params.launch(out.backend(), entry, stride_grid(nq, 65535), BLOCK)?;
    }
    out.to_vec()
}

/// Merges two ascending runs into `out` (`tessera_merge_path_*`), stably:
/// on ties, `a` first. `out` must hold exactly both runs.
pub(crate) fn merge<K: Pod, A, B, O>(
    a: &SortedBits<K, A>,
    b: &SortedBits<K, B>,
    mut out: O,
) -> Result<SortedBits<K, O>>
where
    A: BorrowMut<DeviceBuffer<K>>,
    B: BorrowMut<DeviceBuffer<K>>,
    O: BorrowMut<DeviceBuffer<K>>,
{
    const OP: &str = "merge_device";
    let entry = pick::<K>(OP, &kernels::MERGE_PATH_32, &kernels::MERGE_PATH_64)?;
    let (ab, bb, ob) = (a.bits.borrow(), b.bits.borrow(), out.borrow_mut());
    let total = ab.len() + bb.len();
    if ob.len() != total {
        return Err(Error::ShapeMismatch {
            op: OP,
            expected: "an output as long as both inputs".into(),
            got: format!("{} + {} inputs, {} outputs", ab.len(), bb.len(), ob.len()),
        });
    }
    if a.kind != b.kind {
        return Err(Error::invalid(OP, "runs of keys of different kinds"));
    }
    same_device(OP, &[ob.device(), ab.device(), bb.device()])?;
    if total > 0 {
        let grid = (blocks(total as u64, MERGE_TILE, OP)?, 1, 1);
        let params = Params::new()
            .ptr(ab.addr_at(0))
            .u64(ab.len() as u64)
            .ptr(bb.addr_at(0))
            .u64(bb.len() as u64)
            .ptr(ob.addr_at(0));
        // SAFETY: both inputs ascend as unsigned bits (a `SortedBits` is
        // only made by a check on the device or by this merge), which is
        // what keeps merge path's splits, and so its reads of a[0..na],
        // b[0..nb] and writes of out[0..na + nb], in bounds; the lengths are
        // the buffers' own (the output's checked above, the element size
        // the kernel's), on one device; `out` is borrowed mutably, distinct
        // from the inputs. One 256-thread block per 2048 outputs is the
        // documented shape.
        unsafe { params.launch(ob.backend(), entry, grid, BLOCK) }?;
    }
    Ok(SortedBits {
        bits: out,
        kind: a.kind,
        _keys: PhantomData,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMU: Device = Device::Emulated;

    /// Asserts an invalid-argument error whose message names `what`.
    #[track_caller]
    fn invalid<T>(r: Result<T>, what: &str) {
        match r.map(drop) {
            Err(Error::InvalidArgument { message, .. }) => {
                assert!(message.contains(what), "{message:?} does not say {what:?}")
            }
            other => panic!("expected an invalid argument about {what:?}, got {other:?}"),
        }
    }

    // Emulated buffers are host memory, made without the emulator library;
    // none of these calls may get as far as a launch (which would need it).
    #[test]
    fn requests_out_of_bounds_are_errors_before_any_launch() {
        let src = DeviceBuffer::<u8>::zeros(EMU, 8).unwrap();
        let mut dst = DeviceBuffer::<u8>::uninit(EMU, 8).unwrap();
        invalid(gather(&src, &mut dst, &[0, 4], 4), "index 4 out of range");
        invalid(gather(&src, &mut dst, &[0, 1, 2], 4), "needs source");
        invalid(gather(&src, &mut dst, &[0, 1], 0), "elements of 0 bytes");
        let mut short = DeviceBuffer::<u8>::uninit(EMU, 4).unwrap();
        invalid(gather(&src, &mut short, &[1, 0], 4), "needs source");

        let mut data = DeviceBuffer::<u32>::uninit(EMU, 5000).unwrap(); // 3 tiles
        let mut sums = DeviceBuffer::<u32>::uninit(EMU, 2).unwrap();
        invalid(scan_tiles(&mut data, Some(&mut sums)), "3 tile sums");
        invalid(scan_add(&mut data, &sums), "3 tile offsets");

        invalid(RadixHistogram::new(EMU, 1 << 32), "2^32 - 1");
        let keys = DeviceBuffer::<u64>::uninit(EMU, 10).unwrap();
        invalid(
            RadixHistogram::new(EMU, 11).unwrap().count(&keys, 0),
            "made for 11",
        );
        let mut hist = RadixHistogram::new(EMU, 10).unwrap();
        invalid(hist.count(&keys, 64), "bit 64");
        invalid(hist.count(&keys, 4), "bit 4");

        let bits = DeviceBuffer::<u32>::uninit(EMU, 10).unwrap();
        let mut out = DeviceBuffer::<u64>::zeros(EMU, 2).unwrap();
        invalid(fingerprint(&bits, &mut out, 1), "do not fit");
        invalid(count_descents(&bits, &mut out, 2), "do not fit");
        invalid(count_descents(&bits, &mut out, usize::MAX), "do not fit");

        let mut odd = DeviceBuffer::<[u8; 3]>::uninit(EMU, 4).unwrap();
        invalid(keys_to_bits(&mut odd, KeyKind::Float), "3 bytes");

        // Runs of at most one unsigned key need no launch to be sorted.
        let one = || {
            SortedBits::check(
                DeviceBuffer::<u32>::zeros(EMU, 1).unwrap(),
                KeyKind::Unsigned,
                "test",
                "run",
            )
        };
        let (a, b) = (one().unwrap(), one().unwrap());
        let out = DeviceBuffer::<u32>::uninit(EMU, 3).unwrap();
        match merge(&a, &b, out) {
            Err(Error::ShapeMismatch { got, .. }) => assert!(got.contains("3 outputs"), "{got}"),
            other => panic!("expected a shape mismatch, got {:?}", other.map(|_| ())),
        }
    }
}
