//! `.npy` files written by hand, for the integration tests.

/// Writes a small f64 .npy file by hand (version 1.0 header).
pub fn write_npy_f64(path: &std::path::Path, shape: &[usize], fortran: bool, data: &[f64]) {
    let bytes: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
    write_npy(
        path,
        "<f8",
        fortran,
        &format!("({}, {})", shape[0], shape[1]),
        &bytes,
    );
}

/// Writes a 1-D .npy file by hand.
pub fn write_npy_1d(path: &std::path::Path, descr: &str, data: &[u8], len: usize) {
    write_npy(path, descr, false, &format!("({len},)"), data);
}

/// Writes an .npy file by hand: a version 1.0 header, then `data`.
pub fn write_npy(path: &std::path::Path, descr: &str, fortran: bool, shape: &str, data: &[u8]) {
    let order = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    std::fs::write(path, out).unwrap();
}
