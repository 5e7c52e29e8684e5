//! The single-process readers: a 2-D matrix or a 1-D array of keys, from
//! a file or from bytes already in memory. The header is parsed and checked
//! first ([`parse_header`] and the checks beside it); only bytes that pass
//! are decoded, by `ndarray-npy`.

use std::path::Path;

use ndarray::{Array1, Array2};
use ndarray_npy::ReadNpyExt;

use super::header::{
    MAX_HEADER_LEN, NpyHeader, RESAVE, check_keys_header, check_matrix_header, parse_header,
};
use crate::error::{Error, Result};
use crate::ops::Float;
use crate::ops::sort::SortKey;

/// Says why `ndarray-npy` refused bytes that passed the header checks (a
/// bug in those checks: every refusal should be caught before).
fn decode_failed(e: ndarray_npy::ReadNpyError) -> String {
    format!("cannot decode it ({e}): {RESAVE}")
}

/// Reads a 2-D array of `T` from the bytes of an `.npy` file (one
/// process), or says what is wrong with them. `name` is what error
/// messages call the input (usually its path).
pub fn read_npy_bytes<T: Float>(bytes: &[u8], name: &str) -> Result<Array2<T>> {
    let input = |message: String| Error::Input {
        path: name.to_string(),
        message,
    };
    let header = parse_header(bytes).map_err(input)?;
    check_matrix_header::<T>(&header, bytes.len() - header.data_offset).map_err(input)?;
    Array2::<T>::read_npy(bytes).map_err(|e| input(decode_failed(e)))
}

/// Reads a 2-D array of `T` from an `.npy` file (one process), or says what
/// is wrong with the file.
pub fn read_npy<T: Float>(path: &Path) -> Result<Array2<T>> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::Input {
        path: name.clone(),
        message: format!("cannot read it: {e}"),
    })?;
    read_npy_bytes(&bytes, &name)
}

/// Reads a 1-D array of keys from the bytes of an `.npy` file (one
/// process), or says what is wrong with them. `name` is what error
/// messages call the input (usually its path).
pub fn read_keys_bytes<K: SortKey>(bytes: &[u8], name: &str) -> Result<Vec<K>> {
    let input = |message: String| Error::Input {
        path: name.to_string(),
        message,
    };
    let header = parse_header(bytes).map_err(input)?;
    check_keys_header::<K>(&header, bytes.len() - header.data_offset).map_err(input)?;
    let array = Array1::<K>::read_npy(bytes).map_err(|e| input(decode_failed(e)))?;
    Ok(array.into_raw_vec_and_offset().0)
}

/// Reads a 1-D array of keys from an `.npy` file (one process), or says
/// what is wrong with the file.
pub fn read_keys<K: SortKey>(path: &Path) -> Result<Vec<K>> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::Input {
        path: name.clone(),
        message: format!("cannot read it: {e}"),
    })?;
    read_keys_bytes(&bytes, &name)
}

/// Reads and checks only the header of an `.npy` file (one process): its
/// element type, order and shape, without reading the data.
pub fn read_header(path: &Path) -> Result<NpyHeader> {
    use std::io::Read as _;
    let name = path.display().to_string();
    let cannot = |e: std::io::Error| Error::Input {
        path: name.clone(),
        message: format!("cannot read it: {e}"),
    };
    // The prefix is at most 12 bytes (magic, version, a 4-byte length).
    let limit = (MAX_HEADER_LEN + 12) as u64;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit).read_to_end(&mut bytes))
        .map_err(cannot)?;
    parse_header(&bytes).map_err(|message| Error::Input {
        path: name.clone(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::npy::test_files::*;

    #[test]
    fn reads_both_orders_and_byte_orders() {
        let read = |bytes: &[u8]| read_npy_bytes::<f64>(bytes, "m.npy").unwrap();
        let c = read(&npy(
            "<f8",
            false,
            "(2, 3)",
            &f64s(&[1., 2., 3., 4., 5., 6.], false),
        ));
        assert_eq!(c, ndarray::arr2(&[[1., 2., 3.], [4., 5., 6.]]));
        let f = read(&npy(
            "<f8",
            true,
            "(2, 3)",
            &f64s(&[1., 4., 2., 5., 3., 6.], false),
        ));
        assert_eq!(f, c);
        let be = read(&npy(
            ">f8",
            false,
            "(2, 3)",
            &f64s(&[1., 2., 3., 4., 5., 6.], true),
        ));
        assert_eq!(be, c);
        let be_f = read(&npy(
            ">f8",
            true,
            "(2, 3)",
            &f64s(&[1., 4., 2., 5., 3., 6.], true),
        ));
        assert_eq!(be_f, c);
    }

    #[test]
    fn big_endian_values_read_exactly() {
        let odd = [
            -0.0,
            f64::MIN_POSITIVE / 3.0,
            f64::MAX,
            f64::NEG_INFINITY,
            1.0 / 3.0,
            -2.5e-300,
        ];
        let m =
            read_npy_bytes::<f64>(&npy(">f8", false, "(3, 2)", &f64s(&odd, true)), "m").unwrap();
        let got: Vec<u64> = m.iter().map(|x| x.to_bits()).collect();
        let want: Vec<u64> = odd.iter().map(|x| x.to_bits()).collect();
        assert_eq!(got, want);
        let nan = f64::from_bits(0x7ff8_0000_dead_beef);
        let k = read_keys_bytes::<f64>(&npy(">f8", false, "(2,)", &f64s(&[nan, -0.0], true)), "k")
            .unwrap();
        assert_eq!(
            k.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            [nan.to_bits(), (-0.0f64).to_bits()]
        );
        let f32s: Vec<u8> = [1.5f32, -1e-40, f32::MAX, 3.25]
            .iter()
            .flat_map(|x| x.to_be_bytes())
            .collect();
        let m32 = read_npy_bytes::<f32>(&npy(">f4", true, "(2, 2)", &f32s), "m").unwrap();
        assert_eq!(m32, ndarray::arr2(&[[1.5f32, f32::MAX], [-1e-40, 3.25]]));
        let i64s: Vec<u8> = [i64::MIN, -1, i64::MAX]
            .iter()
            .flat_map(|x| x.to_be_bytes())
            .collect();
        assert_eq!(
            read_keys_bytes::<i64>(&npy(">i8", false, "(3,)", &i64s), "k").unwrap(),
            [i64::MIN, -1, i64::MAX]
        );
        let u32s: Vec<u8> = [u32::MAX, 7].iter().flat_map(|x| x.to_be_bytes()).collect();
        assert_eq!(
            read_keys_bytes::<u32>(&npy(">u4", false, "(2,)", &u32s), "k").unwrap(),
            [u32::MAX, 7]
        );
    }

    #[test]
    fn empty_arrays_read_as_empty() {
        let m = read_npy_bytes::<f64>(&npy("<f8", false, "(0, 3)", &[]), "m").unwrap();
        assert_eq!(m.dim(), (0, 3));
        let m = read_npy_bytes::<f32>(&npy("<f4", true, "(3, 0)", &[]), "m").unwrap();
        assert_eq!(m.dim(), (3, 0));
        let k = read_keys_bytes::<u32>(&npy("<u4", false, "(0,)", &[]), "k").unwrap();
        assert!(k.is_empty());
        says(
            &matrix_err(&npy("<f8", false, "(0, 3)", &[0; 8])),
            "shape (0, 3) needs 0 bytes of data but the file holds 8, 8 too many",
            "numpy.save",
        );
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let missing = read_npy::<f64>(Path::new("/nonexistent/x.npy"))
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("/nonexistent/x.npy: cannot read it"),
            "{missing}"
        );
        let missing = read_keys::<u64>(Path::new("/nonexistent/k.npy"))
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("/nonexistent/k.npy: cannot read it"),
            "{missing}"
        );
        assert!(
            matrix_err(b"").starts_with("m.npy: the file is empty"),
            "{}",
            matrix_err(b"")
        );
    }
}
