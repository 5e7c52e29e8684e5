//! Generated sort keys: element `i` of the global input is a pure function
//! of `(distribution, seed, i)` (see [`crate::rng`]), so every rank count and
//! every device sees the same problem: [`generate_keys_on`] and
//! [`uniform_matrix_on`] write the host's values, bit for bit, straight
//! into a GPU's memory (`kernels/generate.cu`), so a generated problem
//! need not cross the host-device link.

use rayon::prelude::*;
use serde::Serialize;

use crate::device::launch::generate as launch;
use crate::device::{Device, DeviceBuffer, GemmElement};
use crate::error::{Error, Result};
use crate::ops::sort::SortKey;
use crate::rng::{mix64, uniform};

/// Key distributions for generated input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyDist {
    /// Uniform over the type (floats: uniform in [-1, 1)).
    Uniform,
    /// Normal (floats: standard normal; integers: scaled by 10^6).
    Normal,
    /// Zipf-like: key k with probability about 1 / k^2 (k = floor(1 / u)).
    Zipf,
    /// Already sorted: key i at global index i.
    Sorted,
    /// Reverse sorted.
    Reverse,
    /// Every key equal.
    Equal,
    /// Five distinct values.
    Few,
}

named_choices!(KeyDist {
    Uniform => "uniform",
    Normal => "normal",
    Zipf => "zipf",
    Sorted => "sorted",
    Reverse => "reverse",
    Equal => "equal",
    Few => "few",
});

/// The keys at global indices `range` of a generated input: the same
/// global sequence for any rank count.
pub fn generate_keys<K: SortKey>(
    dist: KeyDist,
    n: usize,
    range: std::ops::Range<usize>,
    seed: u64,
) -> Vec<K> {
    range
        .into_par_iter()
        .map(|i| {
            let u = uniform(seed, i as u64, 17); // [-1, 1)
            let bits = u.to_bits() ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            match dist {
                KeyDist::Uniform => K::from_random(mix64(bits)),
                KeyDist::Normal => {
                    let u1 = (uniform(seed, i as u64, 18) + 1.0) / 2.0;
                    let u2 = (u + 1.0) / 2.0;
                    let z =
                        (-2.0 * (1.0 - u1).ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                    K::from_f64(if K::DTYPE.starts_with('f') {
                        z
                    } else {
                        z * 1e6
                    })
                }
                KeyDist::Zipf => K::from_f64((2.0 / (1.0 - u)).floor()),
                KeyDist::Sorted => K::from_f64(i as f64),
                KeyDist::Reverse => K::from_f64((n - 1 - i) as f64),
                KeyDist::Equal => K::from_f64(7.0),
                KeyDist::Few => K::from_f64((mix64(bits) % 5) as f64),
            }
        })
        .collect()
}

/// [`generate_keys`] in `device`'s memory: the same keys, bit for bit,
/// written by a kernel on a GPU, so that they never cross the link.
/// Normal keys (whose logarithm and cosine differ in their last bits
/// between the device's and the host's libraries) are generated on the
/// host and uploaded.
///
/// # Errors
/// When `device` is not a GPU (keys for the CPU come from
/// [`generate_keys`]), when `range` is not inside `0..n`, or when the
/// device fails.
pub fn generate_keys_on<K: SortKey>(
    device: Device,
    dist: KeyDist,
    n: usize,
    range: std::ops::Range<usize>,
    seed: u64,
) -> Result<DeviceBuffer<K>> {
    let _span = crate::trace::compute("generate_keys");
    gpu_only(device, "generate_keys_on")?;
    if range.start > range.end || range.end > n {
        return Err(Error::invalid(
            "generate_keys_on",
            format!("keys {range:?} are not inside the {n} keys of the input"),
        ));
    }
    let code = dist as u32;
    if !launch::generates_on_device(code) {
        let keys: Vec<K> = generate_keys(dist, n, range, seed);
        return DeviceBuffer::from_slice(device, &keys);
    }
    let mut out = DeviceBuffer::<K>::uninit(device, range.len())?;
    launch::keys(&mut out, K::DTYPE, range.start, n, code, seed)?;
    Ok(out)
}

/// The block `rows x cols` of the uniform random matrix of `seed`
/// (entries in `[-1, 1)`, those of `DistMatrix::random`), row-major,
/// written in `device`'s memory by a kernel: bit for bit the host's
/// entries, generated where they are used.
///
/// # Errors
/// When `device` is not a GPU, or the device fails.
pub fn uniform_matrix_on<T: GemmElement>(
    device: Device,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    seed: u64,
) -> Result<DeviceBuffer<T>> {
    let _span = crate::trace::compute("generate_matrix");
    gpu_only(device, "uniform_matrix_on")?;
    let (r, c) = (rows.len(), cols.len());
    let elements = r.checked_mul(c).ok_or_else(|| {
        Error::invalid("uniform_matrix_on", format!("{r} x {c} elements overflow"))
    })?;
    let mut out = DeviceBuffer::<T>::uninit(device, elements)?;
    launch::uniform_matrix(&mut out, r, c, (rows.start, cols.start), seed)?;
    Ok(out)
}

/// An error unless `device` runs kernels.
fn gpu_only(device: Device, op: &'static str) -> Result<()> {
    if device.is_gpu_like() {
        return Ok(());
    }
    Err(Error::invalid(
        op,
        format!(
            "{device} runs no kernels: generate host data with generate_keys or DistMatrix::random"
        ),
    ))
}
