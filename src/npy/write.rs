//! The single-process writers.

use std::path::Path;

use ndarray::Array2;
use ndarray_npy::WriteNpyExt;

use crate::error::{Error, Result};
use crate::ops::Float;

/// Writes a 2-D array as an `.npy` file (C order, little-endian).
pub fn write_npy<T: Float>(path: &Path, array: &Array2<T>) -> Result<()> {
    write_array(path, array)
}

/// Writes any array as an `.npy` file (C order, little-endian).
pub(super) fn write_array<A: WriteNpyExt>(path: &Path, array: &A) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::npy::{read_keys, read_npy};

    #[test]
    fn writes_what_it_reads() {
        let a = ndarray::arr2(&[[1.5f32, -2.0], [0.25, 8.0], [3.0, 1e-3]]);
        let path = std::env::temp_dir().join(format!("tessera-npy-w-{}.npy", std::process::id()));
        write_npy(&path, &a).unwrap();
        assert_eq!(read_npy::<f32>(&path).unwrap(), a);
        let keys = [3u64, 1, u64::MAX];
        write_array(&path, &ndarray::arr1(&keys)).unwrap();
        assert_eq!(read_keys::<u64>(&path).unwrap(), keys);
        let _ = std::fs::remove_file(path);
    }
}
