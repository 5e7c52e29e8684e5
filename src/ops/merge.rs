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

use crate::device::launch::sort::{self as launch, SortedBits};
use crate::device::{Device, DeviceBuffer};
use crate::error::{Error, Result};
use crate::ops::sort::{SortKey, key_kind};

/// [`merge_runs`] on `device`: on a GPU-like device the runs are merged
/// pairwise by the merge-path kernel, staying in device memory until the
/// last merge.
pub fn merge_runs_on<K: SortKey>(device: Device, runs: &[&[K]]) -> Result<Vec<K>> {
    if !device.is_gpu_like() {
        return Ok(merge_runs(runs));
    }
    merge_runs_device(device, runs)
}

/// Merges sorted runs into one sorted vector: pairwise, in parallel.
pub fn merge_runs<K: SortKey>(runs: &[&[K]]) -> Vec<K> {
    let _span = crate::trace::compute("merge_runs");
    match runs {
        [] => Vec::new(),
        [one] => one.to_vec(),
        _ => {
            let (left, right) = runs.split_at(runs.len() / 2);
            let (a, b) = rayon::join(|| merge_runs(left), || merge_runs(right));
            merge_two(&a, &b)
        }
    }
}

/// Merges two sorted runs (by key bits).
pub fn merge_two<K: SortKey>(a: &[K], b: &[K]) -> Vec<K> {
    let _span = crate::trace::compute("merge");
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if b[j].to_bits() < a[i].to_bits() {
            out.push(b[j]);
            j += 1;
        } else {
            out.push(a[i]);
            i += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
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
    let kind = key_kind::<K>();
    let mut level = Vec::with_capacity(runs.len());
    for (i, r) in runs.iter().enumerate() {
        let buf = DeviceBuffer::from_slice(device, r)?;
        level.push(SortedBits::check(
            buf,
            kind,
            "merge_runs_device",
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
        Some(all) => all.into_keys()?.to_vec(),
        None => Ok(Vec::new()),
    }
}
