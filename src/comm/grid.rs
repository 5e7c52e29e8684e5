//! Two-dimensional process grids: ranks laid out as rows x cols, row-major,
//! with a communicator per grid row and per grid column (the layout that
//! SUMMA and block-distributed matrices use).

use super::Comm;
use super::check::Signature;
use crate::error::{Error, Result};

/// Factors `p` into `(rows, cols)` with `rows * cols == p`, `rows <= cols`,
/// and the two as close as possible (a prime `p` gives `(1, p)`).
pub fn square_ish_factors(p: usize) -> (usize, usize) {
    if p == 0 {
        return (0, 0);
    }
    let mut rows = (p as f64).sqrt() as usize;
    // Correct for floating-point rounding either way.
    while rows * rows > p {
        rows -= 1;
    }
    while (rows + 1) * (rows + 1) <= p {
        rows += 1;
    }
    while !p.is_multiple_of(rows) {
        rows -= 1;
    }
    (rows, p / rows)
}

/// Ranks arranged as a `rows x cols` grid, row-major: rank `r` sits at row
/// `r / cols`, column `r % cols`.
#[derive(Debug, Clone)]
pub struct ProcessGrid {
    comm: Comm,
    rows: usize,
    cols: usize,
    row_comm: Comm,
    col_comm: Comm,
}

impl ProcessGrid {
    /// Lays out the ranks of `comm` as a `rows x cols` grid (collective).
    /// Fails on every rank, with [`Error::GridShape`], unless
    /// `rows * cols == comm.size()`.
    pub fn new(comm: &Comm, rows: usize, cols: usize) -> Result<ProcessGrid> {
        let size = comm.size();
        let local = if rows == 0 || cols == 0 || rows.checked_mul(cols) != Some(size) {
            Err(Error::GridShape {
                ranks: size,
                rows,
                cols,
                want: rows.saturating_mul(cols),
            })
        } else {
            Ok(())
        };
        // Ranks that asked for different shapes would otherwise hang below.
        comm.prepare(
            Signature::new::<u8>("process_grid")
                .count(rows)
                .extra(cols as i64),
            local,
        )?;
        // A private copy, so grid traffic never matches the caller's messages.
        let comm = comm.dup();
        let rank = comm.rank();
        let (row, col) = (rank / cols, rank % cols);
        let row_comm = comm
            .split(Some(row as u32), col as i32)?
            .expect("every rank passes a colour");
        let col_comm = comm
            .split(Some(col as u32), row as i32)?
            .expect("every rank passes a colour");
        Ok(ProcessGrid {
            comm,
            rows,
            cols,
            row_comm,
            col_comm,
        })
    }

    /// The grid closest to square for `comm.size()` ranks
    /// (see [`square_ish_factors`]).
    pub fn square_ish(comm: &Comm) -> Result<ProcessGrid> {
        let (rows, cols) = square_ish_factors(comm.size());
        ProcessGrid::new(comm, rows, cols)
    }

    /// Grid rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Grid columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// This rank's grid row.
    pub fn row(&self) -> usize {
        self.comm.rank() / self.cols
    }

    /// This rank's grid column.
    pub fn col(&self) -> usize {
        self.comm.rank() % self.cols
    }

    /// The rank (in [`ProcessGrid::comm`]) at grid position `(row, col)`.
    pub fn rank_at(&self, row: usize, col: usize) -> usize {
        row * self.cols + col
    }

    /// All ranks of the grid.
    pub fn comm(&self) -> &Comm {
        &self.comm
    }

    /// The ranks of this rank's grid row, ranked by column.
    pub fn row_comm(&self) -> &Comm {
        &self.row_comm
    }

    /// The ranks of this rank's grid column, ranked by row.
    pub fn col_comm(&self) -> &Comm {
        &self.col_comm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_are_exact_and_closest_to_square() {
        for p in 1..=200usize {
            let (r, c) = square_ish_factors(p);
            assert_eq!(r * c, p, "p = {p}");
            assert!(r <= c, "p = {p}");
            // No divisor between r and sqrt(p) was skipped.
            for d in (r + 1)..=c {
                if d * d <= p {
                    assert_ne!(p % d, 0, "p = {p}: {d} is a closer divisor than {r}");
                }
            }
        }
        assert_eq!(square_ish_factors(12), (3, 4));
        assert_eq!(square_ish_factors(7), (1, 7));
        assert_eq!(square_ish_factors(16), (4, 4));
        assert_eq!(square_ish_factors(0), (0, 0));
    }
}
