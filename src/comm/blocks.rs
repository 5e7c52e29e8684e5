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

    /// `local`, a step each rank took on its own (a device allocation, a
    /// check of its arguments), if it went well on every rank
    /// (collective, one small all-reduce): otherwise this rank's own error,
    /// or, on a rank whose step went well, an [`Error::Remote`] for `op`
    /// saying `others`. Called before the collectives that follow the step,
    /// so that no rank waits in them for one that failed.
    pub(crate) fn all_ok<T>(&self, op: &'static str, local: Result<T>, others: &str) -> Result<T> {
        let failed = self
            .unchecked()
            .all_reduce(&[local.is_err() as u8], ReduceOp::Max)?[0];
        let value = local?;
        if failed == 1 {
            return Err(Error::Remote {
                op,
                message: others.into(),
            });
        }
        Ok(value)
    }

    /// Checks that every rank passed the same values (a shape, an
    /// algorithm, a device kind) to the distributed operation `op`
    /// (collective): otherwise an [`Error::Disagreement`] naming each field
    /// that differs, in words, with the ranks that gave each value
    /// (`the algorithm: sample on ranks 0-1; merge on rank 2`). Costs two
    /// small all-reduces; the values are gathered only when they differ.
    pub fn same_everywhere(&self, op: &'static str, fields: &[Agreed]) -> Result<()> {
        let values: Vec<u64> = fields.iter().map(|f| f.value).collect();
        let lo = self.all_reduce(&values, ReduceOp::Min)?;
        let hi = self.all_reduce(&values, ReduceOp::Max)?;
        if lo == hi {
            return Ok(());
        }
        let all = self.all_gather(&values)?;
        let mut first = None;
        let mut parts = Vec::new();
        for (i, field) in fields.iter().enumerate() {
            if lo[i] == hi[i] {
                continue;
            }
            // Group the ranks by the value they gave, in order of first appearance.
            let mut groups: Vec<(u64, Vec<usize>)> = Vec::new();
            for (rank, row) in all.chunks(fields.len()).enumerate() {
                match groups.iter_mut().find(|(v, _)| *v == row[i]) {
                    Some((_, ranks)) => ranks.push(rank),
                    None => groups.push((row[i], vec![rank])),
                }
            }
            let shown: Vec<String> = groups
                .iter()
                .take(6)
                .map(|(v, ranks)| format!("{} on {}", (field.show)(*v), super::rank_list(ranks)))
                .collect();
            let more = if groups.len() > 6 {
                format!("; and {} more values", groups.len() - 6)
            } else {
                String::new()
            };
            let text = format!("{}{more}", shown.join("; "));
            if first.is_none() {
                first = Some(field.what);
                parts.push(text);
            } else {
                parts.push(format!("and on {}: {text}", field.what));
            }
        }
        Err(Error::Disagreement {
            op,
            what: first.unwrap_or("their arguments"),
            detail: format!("{}. Every rank must pass the same value", parts.join("; ")),
        })
    }
}

/// One value that must be the same on every rank, for
/// [`Comm::same_everywhere`]: what it is, and how to say a value in words.
#[derive(Clone, Copy)]
pub struct Agreed {
    /// What the value is (`the algorithm`, `the number of rows of A`).
    pub what: &'static str,
    /// This rank's value, encoded.
    pub value: u64,
    /// A value in words (`sample`, `cuda`, `i64`, `2048`).
    pub show: fn(u64) -> String,
}

impl Agreed {
    /// A number, shown as it is.
    pub fn number(what: &'static str, value: u64) -> Self {
        Agreed {
            what,
            value,
            show: |v| v.to_string(),
        }
    }

    /// A code, shown as `show` names it.
    pub fn named(what: &'static str, value: u64, show: fn(u64) -> String) -> Self {
        Agreed { what, value, show }
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
