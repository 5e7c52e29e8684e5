//! `.npy` files for distributed matrices: rank 0 reads and scatters, or
//! gathers and writes.
//!
//! Reading and writing go through the `ndarray-npy` crate. Before a file is
//! handed to it, its header is checked here, so that every malformed file
//! gets a message that says what is wrong: not an `.npy` file, truncated
//! header or data, a header longer than the file, an element type other
//! than the one asked for, object arrays, not two-dimensional, or a shape
//! that does not match the data. Both byte orders and both C and Fortran
//! order are read.

use std::path::Path;

use ndarray::Array2;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};

use super::matrix::DistMatrix;
use crate::comm::ProcessGrid;
use crate::error::{Error, Result};
use crate::ops::Float;

/// What an `.npy` header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// The dtype descriptor (`<f8`, `>f4`, ...).
    pub descr: String,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// The array's shape.
    pub shape: Vec<usize>,
    /// Where the data starts.
    pub data_offset: usize,
}

fn bad(message: impl Into<String>) -> String {
    message.into()
}

/// Parses and checks the header of an `.npy` file held in `bytes`.
pub fn parse_header(bytes: &[u8]) -> std::result::Result<NpyHeader, String> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad(
            "not an .npy file (it does not start with \\x93NUMPY): save it with numpy.save",
        ));
    }
    let (len_size, major) = match bytes[6] {
        1 => (2, 1),
        2 | 3 => (4, bytes[6]),
        v => {
            return Err(bad(format!(
                "unsupported .npy format version {v}: save it with numpy.save"
            )));
        }
    };
    let _ = major;
    let prefix = 8 + len_size;
    if bytes.len() < prefix {
        return Err(bad("the header is truncated"));
    }
    let header_len = if len_size == 2 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as usize
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    if prefix + header_len > bytes.len() {
        return Err(bad(format!(
            "the header claims {header_len} bytes but the file holds only {} after the prefix: the file is truncated or corrupt",
            bytes.len() - prefix
        )));
    }
    let text = std::str::from_utf8(&bytes[prefix..prefix + header_len])
        .map_err(|_| bad("the header is not text"))?;
    let field = |key: &str| -> std::result::Result<&str, String> {
        let at = text
            .find(&format!("'{key}'"))
            .ok_or_else(|| bad(format!("the header has no '{key}' entry")))?;
        let rest = &text[at + key.len() + 2..];
        let colon = rest
            .find(':')
            .ok_or_else(|| bad(format!("malformed '{key}' entry")))?;
        Ok(rest[colon + 1..].trim_start())
    };
    let descr_field = field("descr")?;
    let descr = if let Some(stripped) = descr_field.strip_prefix('\'') {
        stripped.split('\'').next().unwrap_or("").to_string()
    } else {
        return Err(bad(
            "structured (record) arrays are not supported: save a plain 2-D float array",
        ));
    };
    let fortran_order = field("fortran_order")?.starts_with("True");
    let shape_field = field("shape")?;
    let close = shape_field
        .find(')')
        .ok_or_else(|| bad("malformed shape"))?;
    let shape = shape_field[1..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| bad(format!("bad shape entry `{s}`")))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(NpyHeader {
        descr,
        fortran_order,
        shape,
        data_offset: prefix + header_len,
    })
}

/// Checks that a file's header describes a 2-D array of `T` whose data is
/// all there.
fn check_header<T: Float>(header: &NpyHeader, data_len: usize) -> std::result::Result<(), String> {
    let want = if T::DTYPE == "f32" { "f4" } else { "f8" };
    let kind = header.descr.trim_start_matches(['<', '>', '=', '|']);
    if kind.starts_with('O') {
        return Err(bad(
            "object arrays are not supported: save a float array (numpy.asarray(a, dtype=float))",
        ));
    }
    if kind != want {
        let name = match kind {
            "f4" => "float32 (f32)",
            "f8" => "float64 (f64)",
            "f2" => "float16",
            k if k.starts_with('i') || k.starts_with('u') => "integers",
            k if k.starts_with('c') => "complex numbers",
            _ => "an unsupported type",
        };
        let advice = match kind {
            "f4" => "pass --dtype f32 or convert the file".to_string(),
            "f8" => "pass --dtype f64 or convert the file".to_string(),
            _ => format!(
                "convert the file to float32 or float64 (numpy: a.astype('{}'))",
                if T::DTYPE == "f32" {
                    "float32"
                } else {
                    "float64"
                }
            ),
        };
        return Err(bad(format!(
            "holds {name} (descr '{}') but {} was asked for: {advice}",
            header.descr,
            T::DTYPE,
        )));
    }
    if header.shape.len() != 2 {
        return Err(bad(format!(
            "holds a {}-dimensional array of shape {:?}: a matrix must be 2-dimensional",
            header.shape.len(),
            header.shape
        )));
    }
    let elements = header.shape[0]
        .checked_mul(header.shape[1])
        .ok_or_else(|| bad(format!("shape {:?} is too large", header.shape)))?;
    let need = elements
        .checked_mul(std::mem::size_of::<T>())
        .ok_or_else(|| bad("shape too large"))?;
    if data_len != need {
        return Err(bad(format!(
            "shape ({}, {}) needs {need} bytes of data but the file holds {data_len}: the file is truncated or its shape is wrong",
            header.shape[0], header.shape[1]
        )));
    }
    Ok(())
}

/// Reads a 2-D array of `T` from an `.npy` file (one process), or says what
/// is wrong with the file.
pub fn read_npy<T: Float>(path: &Path) -> Result<Array2<T>> {
    let input = |message: String| Error::Input {
        path: path.display().to_string(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| input(format!("cannot read it: {e}")))?;
    let header = parse_header(&bytes).map_err(input)?;
    check_header::<T>(&header, bytes.len() - header.data_offset).map_err(input)?;
    Array2::<T>::read_npy(&bytes[..]).map_err(|e| input(format!("cannot decode it: {e}")))
}

/// Writes a 2-D array as an `.npy` file (C order, little-endian).
pub fn write_npy<T: Float>(path: &Path, array: &Array2<T>) -> Result<()> {
    write_array(path, array)
}

/// Checks that a header describes a 1-D array of key type `K`.
fn check_keys_header<K: crate::ops::sort::SortKey>(
    header: &NpyHeader,
    data_len: usize,
) -> std::result::Result<(), String> {
    let kind = header.descr.trim_start_matches(['<', '>', '=', '|']);
    if kind.starts_with('O') {
        return Err(bad("object arrays are not supported: save a numeric array"));
    }
    if kind != K::NPY {
        return Err(bad(format!(
            "holds '{}' elements but {} keys were asked for: pass the matching --dtype or convert the file (numpy: a.astype(...))",
            header.descr,
            K::DTYPE
        )));
    }
    if header.shape.len() != 1 {
        return Err(bad(format!(
            "holds an array of shape {:?}: keys must be a 1-dimensional array",
            header.shape
        )));
    }
    let need = header.shape[0]
        .checked_mul(std::mem::size_of::<K>())
        .ok_or_else(|| bad("shape too large"))?;
    if data_len != need {
        return Err(bad(format!(
            "shape ({},) needs {need} bytes of data but the file holds {data_len}: the file is truncated or its shape is wrong",
            header.shape[0]
        )));
    }
    Ok(())
}

/// Reads a 1-D array of keys from an `.npy` file (one process).
pub fn read_keys<K: crate::ops::sort::SortKey>(path: &Path) -> Result<Vec<K>> {
    let input = |message: String| Error::Input {
        path: path.display().to_string(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| input(format!("cannot read it: {e}")))?;
    let header = parse_header(&bytes).map_err(input)?;
    check_keys_header::<K>(&header, bytes.len() - header.data_offset).map_err(input)?;
    let array = ndarray::Array1::<K>::read_npy(&bytes[..])
        .map_err(|e| input(format!("cannot decode it: {e}")))?;
    Ok(array.to_vec())
}

/// Shares the outcome of a step that only `root` performed (reading or
/// writing a file): every rank returns the root's error, so no rank goes on
/// into a collective that the root has abandoned. Returns the root's value
/// (`None` elsewhere).
fn share_root_outcome<T>(
    comm: &crate::comm::Comm,
    root: usize,
    op: &'static str,
    outcome: Option<Result<T>>,
) -> Result<Option<T>> {
    let message = match &outcome {
        Some(Err(e)) => e.to_string(),
        _ => String::new(),
    };
    let message = comm.broadcast_vec(message.as_bytes(), root)?;
    match outcome {
        Some(Err(e)) => Err(e),
        _ if !message.is_empty() => Err(Error::Remote {
            op,
            message: String::from_utf8_lossy(&message).into_owned(),
        }),
        Some(Ok(value)) => Ok(Some(value)),
        None => Ok(None),
    }
}

/// Writes any array as an `.npy` file (C order, little-endian).
fn write_array<A: WriteNpyExt>(path: &Path, array: &A) -> Result<()> {
    let file = std::fs::File::create(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    let mut writer = std::io::BufWriter::new(file);
    array.write_npy(&mut writer).map_err(|e| Error::Input {
        path: path.display().to_string(),
        message: format!("cannot write it: {e}"),
    })?;
    std::io::Write::flush(&mut writer)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Rank `root` reads a 1-D `.npy` file of keys and scatters it in equal
/// blocks (collective); a bad file is the same error on every rank.
pub fn read_keys_distributed<K: crate::ops::sort::SortKey>(
    comm: &crate::comm::Comm,
    path: &Path,
    root: usize,
) -> Result<Vec<K>> {
    let loaded = (comm.rank() == root).then(|| read_keys::<K>(path));
    let keys = share_root_outcome(comm, root, "read .npy", loaded)?.unwrap_or_default();
    super::matrix::scatter_blocks(comm, &keys, root)
}

/// Gathers every rank's keys, in rank order, to `root`, which writes them
/// as a 1-D `.npy` file (collective); a failed write is an error everywhere.
pub fn write_keys_distributed<K: crate::ops::sort::SortKey>(
    comm: &crate::comm::Comm,
    keys: &[K],
    path: &Path,
    root: usize,
) -> Result<()> {
    let written = match comm.gather_v(keys, root) {
        Ok(Some(all)) => Some(write_array(path, &ndarray::Array1::from_vec(all.data))),
        Ok(None) => None,
        Err(e) => Some(Err(e)),
    };
    share_root_outcome(comm, root, "write .npy", written).map(drop)
}

/// Rank `root` reads `path` and scatters it over `grid` (collective). An
/// unreadable or malformed file is the same error on every rank.
pub fn read_distributed<T: Float>(
    grid: &ProcessGrid,
    path: &Path,
    root: usize,
) -> Result<DistMatrix<T>> {
    let comm = grid.comm();
    let loaded = (comm.rank() == root).then(|| read_npy::<T>(path));
    let matrix = share_root_outcome(comm, root, "read .npy", loaded)?;
    DistMatrix::scatter_from_root(grid, matrix.as_ref().map(|a| a.view()), root)
}

/// Gathers `matrix` to rank `root`, which writes it to `path` (collective).
/// A failed write is the same error on every rank.
pub fn write_distributed<T: Float>(matrix: &DistMatrix<T>, path: &Path, root: usize) -> Result<()> {
    let written = match matrix.gather_to_root(root) {
        Ok(Some(full)) => Some(write_npy(path, &full)),
        Ok(None) => None,
        Err(e) => Some(Err(e)),
    };
    share_root_outcome(matrix.grid().comm(), root, "write .npy", written).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    fn f64s(v: &[f64], big: bool) -> Vec<u8> {
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

    fn read_bytes<T: Float>(bytes: &[u8]) -> Result<Array2<T>> {
        let dir = std::env::temp_dir().join(format!(
            "tessera-npy-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.npy");
        std::fs::write(&path, bytes).unwrap();
        read_npy::<T>(&path)
    }

    #[test]
    fn reads_both_orders_and_byte_orders() {
        let c = read_bytes::<f64>(&npy(
            "<f8",
            false,
            "(2, 3)",
            &f64s(&[1., 2., 3., 4., 5., 6.], false),
        ))
        .unwrap();
        assert_eq!(c, ndarray::arr2(&[[1., 2., 3.], [4., 5., 6.]]));
        let f = read_bytes::<f64>(&npy(
            "<f8",
            true,
            "(2, 3)",
            &f64s(&[1., 4., 2., 5., 3., 6.], false),
        ))
        .unwrap();
        assert_eq!(f, c);
        let be = read_bytes::<f64>(&npy(
            ">f8",
            false,
            "(2, 3)",
            &f64s(&[1., 2., 3., 4., 5., 6.], true),
        ))
        .unwrap();
        assert_eq!(be, c);
    }

    #[test]
    fn writes_what_it_reads() {
        let a = ndarray::arr2(&[[1.5f32, -2.0], [0.25, 8.0], [3.0, 1e-3]]);
        let path = std::env::temp_dir().join(format!("tessera-npy-w-{}.npy", std::process::id()));
        write_npy(&path, &a).unwrap();
        assert_eq!(read_npy::<f32>(&path).unwrap(), a);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn malformed_files_say_what_is_wrong() {
        let good = npy("<f8", false, "(2, 2)", &f64s(&[1., 2., 3., 4.], false));
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"PK\x03\x04 not npy at all".to_vec(), "not an .npy file"),
            (
                good[..good.len() - 8].to_vec(),
                "needs 32 bytes of data but the file holds 24",
            ),
            (good[..40].to_vec(), "the header claims"),
            (
                {
                    let mut g = good.clone();
                    g[8] = 0xff;
                    g[9] = 0xff;
                    g
                },
                "the header claims",
            ),
            (
                npy("<f4", false, "(2, 2)", &[0u8; 16]),
                "holds float32 (f32)",
            ),
            (npy("<i8", false, "(2, 2)", &[0u8; 32]), "holds integers"),
            (npy("|O", false, "(2, 2)", &[0u8; 32]), "object arrays"),
            (
                npy("<f8", false, "(4,)", &f64s(&[1., 2., 3., 4.], false)),
                "1-dimensional",
            ),
            (
                npy("<f8", false, "(3, 2)", &f64s(&[1., 2., 3., 4.], false)),
                "needs 48 bytes",
            ),
            (
                {
                    let mut g = good.clone();
                    g[6] = 9;
                    g
                },
                "format version 9",
            ),
        ];
        for (bytes, expect) in cases {
            let e = read_bytes::<f64>(&bytes).unwrap_err().to_string();
            assert!(e.contains(expect), "expected `{expect}` in `{e}`");
        }
        let missing = read_npy::<f64>(Path::new("/nonexistent/x.npy"))
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("/nonexistent/x.npy: cannot read it"),
            "{missing}"
        );
    }
}
