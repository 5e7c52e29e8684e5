//! `DistMatrix<T>`: a global m x n matrix split into blocks over a
//! [`ProcessGrid`].
//!
//! Grid row `r` of an `R x C` grid holds the global rows
//! [`block_range`]`(m, R, r)`, grid column `c` the global columns
//! `block_range(n, C, c)`; rank `(r, c)` holds their intersection, row-major.
//! Any m and n work: block sizes differ by at most one, and a rank may hold an
//! empty block when the matrix is smaller than the grid.

use std::ops::Range;

use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use crate::comm::{Agreed, ProcessGrid, ReduceOp};
pub use crate::comm::{block_owner, block_range};
use crate::error::{Error, Result};
use crate::ops::Float;
use crate::rng::uniform;

/// A global `m x n` matrix distributed in blocks over a process grid.
#[derive(Debug, Clone)]
pub struct DistMatrix<T> {
    grid: ProcessGrid,
    m: usize,
    n: usize,
    rows: Range<usize>,
    cols: Range<usize>,
    local: Array2<T>,
}

impl<T: Float> DistMatrix<T> {
    fn ranges(grid: &ProcessGrid, m: usize, n: usize) -> (Range<usize>, Range<usize>) {
        (
            block_range(m, grid.rows(), grid.row()),
            block_range(n, grid.cols(), grid.col()),
        )
    }

    /// A matrix whose entry `(i, j)` is `f(i, j)`; each rank evaluates `f`
    /// for its own block only. No communication.
    pub fn from_fn(grid: &ProcessGrid, m: usize, n: usize, f: impl Fn(usize, usize) -> T) -> Self {
        let (rows, cols) = Self::ranges(grid, m, n);
        let local = Array2::from_shape_fn((rows.len(), cols.len()), |(i, j)| {
            f(rows.start + i, cols.start + j)
        });
        DistMatrix {
            grid: grid.clone(),
            m,
            n,
            rows,
            cols,
            local,
        }
    }

    /// A matrix of uniform pseudo-random entries in `[-1, 1)` that depends on
    /// `seed`, `i` and `j` only: the same global matrix for any rank count.
    pub fn random(grid: &ProcessGrid, m: usize, n: usize, seed: u64) -> Self {
        Self::from_fn(grid, m, n, |i, j| {
            T::from_f64(uniform(seed, i as u64, j as u64))
        })
    }

    /// Distributes `matrix`, given on `root` (ignored elsewhere), over the grid
    /// (collective: the shape is broadcast, then each rank's block is sent by
    /// `scatter_v`). Any memory layout of `matrix` works.
    pub fn scatter_from_root(
        grid: &ProcessGrid,
        matrix: Option<ArrayView2<'_, T>>,
        root: usize,
    ) -> Result<Self> {
        let comm = grid.comm();
        let is_root = comm.rank() == root;
        let shape: Vec<u64> = match (&matrix, is_root) {
            (Some(a), true) => vec![a.nrows() as u64, a.ncols() as u64],
            _ => Vec::new(),
        };
        if is_root && matrix.is_none() {
            // Tell the others there is nothing to scatter, then fail together.
            comm.broadcast_vec(&[u64::MAX, u64::MAX], root)?;
            return Err(Error::invalid(
                "scatter_from_root",
                "the root passed no matrix: pass Some(matrix) on the root",
            ));
        }
        let shape = comm.broadcast_vec(&shape, root)?;
        if shape[0] == u64::MAX {
            return Err(Error::Remote {
                op: "scatter_from_root",
                message: format!("rank {root} (the root) passed no matrix"),
            });
        }
        let (m, n) = (shape[0] as usize, shape[1] as usize);
        let mut packed = Vec::new();
        let mut counts = Vec::new();
        if let (Some(a), true) = (&matrix, is_root) {
            for rank in 0..comm.size() {
                let rows = block_range(m, grid.rows(), rank / grid.cols());
                let cols = block_range(n, grid.cols(), rank % grid.cols());
                counts.push(rows.len() * cols.len());
                for i in rows {
                    packed.extend(cols.clone().map(|j| a[[i, j]]));
                }
            }
        }
        let mine = comm.scatter_v(&packed, &counts, root)?;
        let (rows, cols) = Self::ranges(grid, m, n);
        let local =
            Array2::from_shape_vec((rows.len(), cols.len()), mine).map_err(|e| Error::Remote {
                op: "scatter_from_root",
                message: format!("received a block of the wrong size: {e}"),
            })?;
        Ok(DistMatrix {
            grid: grid.clone(),
            m,
            n,
            rows,
            cols,
            local,
        })
    }

    /// Collects the whole matrix on `root` (`Some` there, `None` elsewhere;
    /// collective).
    pub fn gather_to_root(&self, root: usize) -> Result<Option<Array2<T>>> {
        let comm = self.grid.comm();
        comm.same_everywhere(
            "gather_to_root",
            &[
                Agreed::number("the matrix rows", self.m as u64),
                Agreed::number("the matrix columns", self.n as u64),
            ],
        )?;
        let packed: Vec<T> = self.local.iter().copied().collect();
        let Some(all) = comm.gather_v(&packed, root)? else {
            return Ok(None);
        };
        let mut out = Array2::<T>::zeros((self.m, self.n));
        for (rank, part) in all.parts().enumerate() {
            let rows = block_range(self.m, self.grid.rows(), rank / self.grid.cols());
            let cols = block_range(self.n, self.grid.cols(), rank % self.grid.cols());
            let block = ArrayView2::from_shape((rows.len(), cols.len()), part).map_err(|e| {
                Error::Remote {
                    op: "gather_to_root",
                    message: format!("rank {rank} sent a block of the wrong size: {e}"),
                }
            })?;
            out.slice_mut(ndarray::s![rows, cols]).assign(&block);
        }
        Ok(Some(out))
    }

    /// Global rows.
    pub fn nrows(&self) -> usize {
        self.m
    }

    /// Global columns.
    pub fn ncols(&self) -> usize {
        self.n
    }

    /// The global rows this rank's block holds.
    pub fn row_range(&self) -> Range<usize> {
        self.rows.clone()
    }

    /// The global columns this rank's block holds.
    pub fn col_range(&self) -> Range<usize> {
        self.cols.clone()
    }

    /// The global index of local entry `(i, j)`.
    pub fn global_index(&self, i: usize, j: usize) -> (usize, usize) {
        (self.rows.start + i, self.cols.start + j)
    }

    /// The grid rank that holds global entry `(i, j)`.
    pub fn owner(&self, i: usize, j: usize) -> usize {
        self.grid.rank_at(
            block_owner(self.m, self.grid.rows(), i),
            block_owner(self.n, self.grid.cols(), j),
        )
    }

    /// This rank's block.
    pub fn local(&self) -> ArrayView2<'_, T> {
        self.local.view()
    }

    /// This rank's block, writable.
    pub fn local_mut(&mut self) -> ArrayViewMut2<'_, T> {
        self.local.view_mut()
    }

    /// The grid the matrix is distributed over.
    pub fn grid(&self) -> &ProcessGrid {
        &self.grid
    }

    /// The infinity norm (largest absolute row sum), on every rank
    /// (collective). NaN if any entry is NaN.
    pub fn norm_inf(&self) -> Result<f64> {
        let sums: Vec<f64> = self
            .local
            .rows()
            .into_iter()
            .map(|row| row.iter().map(|x| x.as_f64().abs()).sum())
            .collect();
        let sums = self.grid.row_comm().all_reduce(&sums, ReduceOp::Sum)?;
        // f64::max would drop a NaN; keep it.
        let mine = sums.iter().copied().fold(0.0, nan_max);
        let nan = self
            .grid
            .comm()
            .all_reduce(&[mine.is_nan() as u8], ReduceOp::Max)?[0]
            == 1;
        let max = self.grid.comm().all_reduce(&[mine], ReduceOp::Max)?[0];
        Ok(if nan { f64::NAN } else { max })
    }

    /// `y = M x` for a vector `x` of length `ncols` known on every rank, with
    /// each entry of `M` mapped through `f` first (collective). Returns this
    /// rank's grid-row part of `y` (rows [`DistMatrix::row_range`]).
    pub(crate) fn matvec_rows(&self, x: &[f64], f: impl Fn(f64) -> f64) -> Result<Vec<f64>> {
        let xs = &x[self.cols.clone()];
        let partial: Vec<f64> = self
            .local
            .rows()
            .into_iter()
            .map(|row| row.iter().zip(xs).map(|(a, b)| f(a.as_f64()) * b).sum())
            .collect();
        self.grid.row_comm().all_reduce(&partial, ReduceOp::Sum)
    }

    /// Spreads a vector held in parts by grid rows (each grid row holding
    /// `block_range(len, rows, row)`) to every rank in full (collective).
    pub(crate) fn assemble_by_grid_rows(
        grid: &ProcessGrid,
        len: usize,
        part: &[f64],
    ) -> Result<Vec<f64>> {
        let mut full = vec![0.0; len];
        if grid.col() == 0 {
            full[block_range(len, grid.rows(), grid.row())].copy_from_slice(part);
        }
        grid.comm().all_reduce(&full, ReduceOp::Sum)
    }

    pub(crate) fn from_parts(grid: &ProcessGrid, m: usize, n: usize, local: Array2<T>) -> Self {
        let (rows, cols) = Self::ranges(grid, m, n);
        debug_assert_eq!(local.dim(), (rows.len(), cols.len()));
        DistMatrix {
            grid: grid.clone(),
            m,
            n,
            rows,
            cols,
            local,
        }
    }
}

/// The larger of two values, NaN if either is NaN.
pub(crate) fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}
