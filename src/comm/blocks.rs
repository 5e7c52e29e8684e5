//! Balanced blocks: how `len` elements are shared out over `parts` ranks
//! (sizes differ by at most one, earlier parts the larger), and the
//! collectives that use that layout.

use std::ops::Range;

use bytemuck::Pod;

use super::{Comm, ReduceOp};
use crate::error::{Error, Result};

/// The part `[start, end)` of `0..len` that part `index` of `parts` balanced
/// parts holds: sizes differ by at most one, earlier parts are the larger.
pub fn block_range(len: usize, parts: usize, index: usize) -> Range<usize> {
    let start = |i: usize| {
        let (q, r) = (len / parts, len % parts);
        i * q + i.min(r)
    };
    start(index)..start(index + 1)
}

/// Which part of `parts` balanced parts of `0..len` holds `i`.
pub fn block_owner(len: usize, parts: usize, i: usize) -> usize {
    let (q, r) = (len / parts, len % parts);
    // The first r parts hold q + 1 elements each.
    if i < r * (q + 1) {
        i / (q + 1)
    } else {
        r + (i - r * (q + 1)) / q.max(1)
    }
}

impl Comm {
    /// Hands `data`, held on `root`, out in balanced blocks in rank order
    /// ([`block_range`]); the other ranks pass `&[]` (collective,
    /// `MPI_Scatterv`).
    ///
    /// ```
    /// tessera::spmd(|world| {
    ///     let all: Vec<u32> = if world.rank() == 0 { (0..10).collect() } else { vec![] };
    ///     let mine = world.scatter_blocks(&all, 0)?;
    ///     let range = tessera::comm::block_range(10, world.size(), world.rank());
    ///     assert_eq!(mine, range.map(|i| i as u32).collect::<Vec<_>>());
    ///     Ok(())
    /// });
    /// ```
    pub fn scatter_blocks<T: Pod>(&self, data: &[T], root: usize) -> Result<Vec<T>> {
        // Only the root's counts are read.
        let counts: Vec<usize> = if self.rank() == root {
            (0..self.size())
                .map(|r| block_range(data.len(), self.size(), r).len())
                .collect()
        } else {
            Vec::new()
        };
        self.scatter_v(data, &counts, root)
    }

    /// Checks that every rank passed the same `values` (a shape, a length)
    /// to the distributed operation `op` (collective): an
    /// [`Error::Disagreement`] naming `what` and the range of values on every
    /// rank otherwise.
    pub fn same_everywhere(
        &self,
        op: &'static str,
        what: &'static str,
        values: &[u64],
    ) -> Result<()> {
        let lo = self.all_reduce(values, ReduceOp::Min)?;
        let hi = self.all_reduce(values, ReduceOp::Max)?;
        if lo != hi {
            return Err(Error::Disagreement {
                op,
                what,
                detail: format!("values range from {lo:?} to {hi:?} across ranks"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_partition_and_balance() {
        for len in 0..40 {
            for parts in 1..9 {
                let mut next = 0;
                for p in 0..parts {
                    let r = block_range(len, parts, p);
                    assert_eq!(r.start, next);
                    assert!(r.len() == len / parts || r.len() == len / parts + 1);
                    for i in r.clone() {
                        assert_eq!(
                            block_owner(len, parts, i),
                            p,
                            "len {len} parts {parts} i {i}"
                        );
                    }
                    next = r.end;
                }
                assert_eq!(next, len);
            }
        }
    }
}
