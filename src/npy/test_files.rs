//! Builders of `.npy` files and checks on the readers' messages, for the
//! unit tests of the header, the readers and the writers.

use super::header::MAGIC;
use super::{read_keys_bytes, read_npy_bytes};

/// An `.npy` file with a raw header (which should end in a newline).
pub(super) fn raw(version: u8, header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend([version, 0]);
    if version == 1 {
        out.extend((header.len() as u16).to_le_bytes());
    } else {
        out.extend((header.len() as u32).to_le_bytes());
    }
    out.extend(header);
    out.extend(data);
    out
}

/// An `.npy` file whose header is `dict`, padded as numpy pads it.
pub(super) fn file(version: u8, dict: &str, data: &[u8]) -> Vec<u8> {
    let prefix = if version == 1 { 10 } else { 12 };
    let mut header = dict.to_string();
    while !(prefix + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    raw(version, header.as_bytes(), data)
}

pub(super) fn dict(descr: &str, fortran: bool, shape: &str) -> String {
    format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    )
}

pub(super) fn npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    file(1, &dict(descr, fortran, shape), data)
}

pub(super) fn f64s(v: &[f64], big: bool) -> Vec<u8> {
    v.iter()
        .flat_map(|x| {
            if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            }
        })
        .collect()
}

pub(super) fn matrix_err(bytes: &[u8]) -> String {
    read_npy_bytes::<f64>(bytes, "m.npy")
        .unwrap_err()
        .to_string()
}

pub(super) fn keys_err(bytes: &[u8]) -> String {
    read_keys_bytes::<f64>(bytes, "k.npy")
        .unwrap_err()
        .to_string()
}

/// Asserts that `message` says what is wrong (`what`) and what to do
/// (`todo`).
#[track_caller]
pub(super) fn says(message: &str, what: &str, todo: &str) {
    assert!(
        message.contains(what) && message.contains(todo),
        "expected `{what}` and `{todo}` in `{message}`"
    );
}

/// Both readers refuse `bytes` saying `what` and `todo`.
#[track_caller]
pub(super) fn both_say(bytes: &[u8], what: &str, todo: &str) {
    says(&matrix_err(bytes), what, todo);
    says(&keys_err(bytes), what, todo);
}
