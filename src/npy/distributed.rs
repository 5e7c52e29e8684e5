//! Distributed reading and writing (collective): rank `root` reads a file
//! and scatters it, or gathers the data and writes it. Whatever fails on
//! the root (a missing or malformed file, a failed write) is the same error
//! on every rank, so that no rank goes on into a collective the root has
//! abandoned.

use std::path::Path;

use super::header::NpyHeader;
use super::read::{read_header, read_keys, read_npy};
use super::write::{write_array, write_npy};
use crate::comm::{Comm, ProcessGrid};
use crate::distributed::DistMatrix;
use crate::error::{Error, Result};
use crate::ops::Float;
use crate::ops::sort::SortKey;

/// Shares the outcome of a step that only `root` performed (reading or
/// writing a file): every rank returns the root's error, so no rank goes on
/// into a collective that the root has abandoned. Returns the root's value
/// (`None` elsewhere).
fn share_root_outcome<T>(
    comm: &Comm,
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

/// Rank `root` reads the header of an `.npy` file and every rank gets it
/// (collective): what element type, order and shape the file holds, so
/// that every rank can pick the type to read it as. A missing or malformed
/// file is the same error on every rank.
pub fn read_header_distributed(comm: &Comm, path: &Path, root: usize) -> Result<NpyHeader> {
    let loaded = (comm.rank() == root).then(|| read_header(path));
    let header = share_root_outcome(comm, root, "read .npy", loaded)?;
    let descr = comm.broadcast_vec(
        header.as_ref().map_or(&[][..], |h| h.descr.as_bytes()),
        root,
    )?;
    let shape: Vec<u64> = header
        .as_ref()
        .map(|h| h.shape.iter().map(|&d| d as u64).collect())
        .unwrap_or_default();
    let shape = comm.broadcast_vec(&shape, root)?;
    let mut fixed = header.as_ref().map_or([0u64; 2], |h| {
        [h.fortran_order as u64, h.data_offset as u64]
    });
    comm.broadcast(&mut fixed, root)?;
    Ok(NpyHeader {
        descr: String::from_utf8_lossy(&descr).into_owned(),
        fortran_order: fixed[0] != 0,
        shape: shape.into_iter().map(|d| d as usize).collect(),
        data_offset: fixed[1] as usize,
    })
}

/// Rank `root` reads a 1-D `.npy` file of keys and scatters it in equal
/// blocks (collective); a bad file is the same error on every rank.
pub fn read_keys_distributed<K: SortKey>(comm: &Comm, path: &Path, root: usize) -> Result<Vec<K>> {
    let loaded = (comm.rank() == root).then(|| read_keys::<K>(path));
    let keys = share_root_outcome(comm, root, "read .npy", loaded)?.unwrap_or_default();
    comm.scatter_blocks(&keys, root)
}

/// Gathers every rank's keys, in rank order, to `root`, which writes them
/// as a 1-D `.npy` file (collective); a failed write is an error everywhere.
pub fn write_keys_distributed<K: SortKey>(
    comm: &Comm,
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
