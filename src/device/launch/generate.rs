//! The launchers of `kernels/generate.cu`: generated matrices and keys
//! written in device memory, bit for bit what the host generates.

use bytemuck::Pod;

use super::{BLOCK, Params, stride_grid};
use crate::device::kernels::{self, Entry};
use crate::device::{DeviceBuffer, GemmElement};
use crate::error::{Error, Result};

/// Writes the `rows x cols` block at `(row0, col0)` of the random matrix of
/// `seed` (`DistMatrix::random`'s entries) into `out`, row-major with
/// leading dimension `cols` (`tessera_generate_uniform_*`).
pub(crate) fn uniform_matrix<T: GemmElement>(
    out: &mut DeviceBuffer<T>,
    rows: usize,
    cols: usize,
    (row0, col0): (usize, usize),
    seed: u64,
) -> Result<()> {
    let elements = rows.checked_mul(cols).filter(|&e| e == out.len());
    let Some(elements) = elements else {
        return Err(Error::ShapeMismatch {
            op: "generate_matrix",
            expected: format!("a buffer of {rows} x {cols} elements"),
            got: format!("{} elements", out.len()),
        });
    };
    if elements == 0 {
        return Ok(());
    }
    let entry = if size_of::<T>() == 8 {
        &kernels::GENERATE_UNIFORM_F64
    } else {
        &kernels::GENERATE_UNIFORM_F32
    };
    let params = Params::new()
        .ptr(out.addr_at(0))
        .u64(rows as u64)
        .u64(cols as u64)
        .u64(cols as u64)
        .u64(row0 as u64)
        .u64(col0 as u64)
        .u64(seed);
    // SAFETY: the kernel writes out[r * cols + c] for r < rows, c < cols:
    // elements 0..rows * cols, which is out's length (checked); `out` is
    // borrowed mutably. Grid-stride: any grid is in bounds.
    unsafe {
        params.launch(
            out.backend(),
            entry,
            stride_grid(elements as u64, 65535),
            BLOCK,
        )
    }
}

/// The kernel that generates keys of type `dtype` (the key type's name:
/// `u32`, `i64`, `f32`, ...) and `T` of that size.
fn keys_entry<T: Pod>(dtype: &str) -> Result<&'static Entry> {
    let (entry, bytes) = match dtype {
        "u32" => (&kernels::GENERATE_KEYS_U32, 4),
        "u64" => (&kernels::GENERATE_KEYS_U64, 8),
        "i32" => (&kernels::GENERATE_KEYS_I32, 4),
        "i64" => (&kernels::GENERATE_KEYS_I64, 8),
        "f32" => (&kernels::GENERATE_KEYS_F32, 4),
        "f64" => (&kernels::GENERATE_KEYS_F64, 8),
        other => {
            return Err(Error::invalid(
                "generate_keys",
                format!("no device generator for keys of type {other}"),
            ));
        }
    };
    if bytes != size_of::<T>() {
        return Err(Error::invalid(
            "generate_keys",
            format!(
                "{dtype} keys are {bytes} bytes, the buffer's elements {}",
                size_of::<T>()
            ),
        ));
    }
    Ok(entry)
}

/// The distributions the kernels generate (`KeyDist`'s index): all but
/// 1, normal, whose logarithm and cosine are not bit-identical between
/// the device's and the host's libraries.
pub(crate) fn generates_on_device(dist: u32) -> bool {
    dist == 0 || (2..=6).contains(&dist)
}

/// Writes keys `start..start + out.len()` of a generated input of `total`
/// keys (distribution index `dist`, `seed`) of type `dtype` into `out`
/// (`tessera_generate_keys_*`).
pub(crate) fn keys<T: Pod>(
    out: &mut DeviceBuffer<T>,
    dtype: &str,
    start: usize,
    total: usize,
    dist: u32,
    seed: u64,
) -> Result<()> {
    let entry = keys_entry::<T>(dtype)?;
    if !generates_on_device(dist) {
        return Err(Error::invalid(
            "generate_keys",
            format!("distribution {dist} is generated on the host"),
        ));
    }
    let end = start.checked_add(out.len()).filter(|&e| e <= total);
    if end.is_none() {
        return Err(Error::invalid(
            "generate_keys",
            format!(
                "keys {start}..{start} + {} lie outside the {total} keys of the input",
                out.len()
            ),
        ));
    }
    if out.is_empty() {
        return Ok(());
    }
    let n = out.len() as u64;
    let params = Params::new()
        .ptr(out.addr_at(0))
        .u64(n)
        .u64(start as u64)
        .u64(total as u64)
        .u32(dist)
        .u64(seed);
    // SAFETY: the kernel writes out[0..n], n being out's length, with
    // elements of T's size (checked against the key type); `out` is
    // borrowed mutably. Grid-stride: any grid is in bounds.
    unsafe { params.launch(out.backend(), entry, stride_grid(n, 65535), BLOCK) }
}
