//! `.npy` files: single-process readers and writers for matrices (2-D) and
//! keys (1-D), and their distributed forms, where rank `root` reads and
//! scatters or gathers and writes (collective).
//!
//! What is read:
//!
//! - format versions 1.0, 2.0 and 3.0, with a header of at most
//!   [`MAX_HEADER_LEN`] bytes, as `numpy.save` writes it (the dict's keys in
//!   any order, either quote character, any spacing);
//! - headers alone ([`read_header`], [`read_header_distributed`]), so a
//!   program can read a file as the element type it holds
//!   ([`element_type`]);
//! - matrices of float32 (`f4`) or float64 (`f8`), 2-dimensional
//!   ([`read_npy`], [`read_distributed`]); keys of u32, u64, i32, i64, f32
//!   or f64, 1-dimensional ([`read_keys`], [`read_keys_distributed`]);
//! - either byte order (`<` little-endian or `>` big-endian; the order must
//!   be given, as `numpy.save` always gives it), C or Fortran order, and
//!   empty arrays (a dimension of 0).
//!
//! Everything else is refused with a message that says what is wrong with
//! the file and what to do: object, structured, complex, string, boolean or
//! date arrays, element types other than the one asked for, the wrong
//! number of dimensions, data that does not match the shape, and files that
//! are truncated, corrupt or not `.npy` at all. The header is parsed and
//! checked here ([`parse_header`]) before any data is handed to the
//! `ndarray-npy` crate, which decodes it.
//!
//! The writers write what `numpy.load` reads: format version 1.0, in the
//! machine's byte order (little-endian on x86-64), in C order unless the
//! array's memory is in Fortran order.
//!
//! ```
//! use ndarray::array;
//! use tessera::npy::{read_npy, write_npy};
//!
//! let dir = std::env::temp_dir().join(format!("tessera-npy-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("a.npy");
//! let a = array![[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]];
//! write_npy(&path, &a)?;
//! assert_eq!(read_npy::<f64>(&path)?, a);
//! std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), tessera::Error>(())
//! ```

mod distributed;
mod header;
mod read;
#[cfg(test)]
mod test_files;
mod write;

pub use distributed::{
    read_distributed, read_header_distributed, read_keys_distributed, write_distributed,
    write_keys_distributed,
};
pub use header::{MAX_HEADER_LEN, NpyHeader, element_type, lossless_conversion_to, parse_header};
pub use read::{read_header, read_keys, read_keys_bytes, read_npy, read_npy_bytes};
pub use write::write_npy;
