//! Agreement checks for collective arguments.
//!
//! MPI requires that every rank of a communicator make the same collective
//! calls with matching arguments; when they do not, the job hangs or memory is
//! overwritten. Before such a call each rank describes the call in a small
//! signature (which call, root, count, element size and type, reduction, a
//! hash of a counts array, and whether its own arguments are valid), and the
//! ranks compare signatures with one `MPI_Allreduce` of 18 integers: the
//! element-wise maximum of the signature and of its negation gives every
//! field's maximum and minimum, and a field agrees exactly when the two are
//! equal. That costs O(log P) time whatever the rank count. Only when
//! something disagrees (the rare case) do the ranks gather every signature
//! (`MPI_Allgather`) to say who gave what: every rank then returns the same
//! [`Error::Disagreement`] naming the ranks and their values, and no data
//! moves. A rank whose own arguments are invalid returns its own message; the
//! others return an error naming it. Either way no rank is left waiting.

use std::os::raw::{c_int, c_void};

use mpi::ffi;

use super::Comm;
use crate::error::{Error, Result};

/// Field not compared between ranks.
pub(crate) const ANY: i64 = -1;

/// Names of the checked calls; a call's index here is exchanged between ranks.
const OPS: &[&str] = &[
    "barrier",
    "broadcast",
    "broadcast_vec",
    "reduce",
    "all_reduce",
    "gather",
    "gather_v",
    "scatter",
    "scatter_v",
    "all_gather",
    "all_gather_v",
    "all_to_all",
    "all_to_all_v",
    "scan",
    "exclusive_scan",
    "reduce_scatter",
    "reduce_scatter_block",
    "ibroadcast",
    "iall_reduce",
    "iall_to_all",
    "iall_to_all_v",
    "process_grid",
    "split",
    "broadcast_device",
    "all_reduce_device",
    "all_to_all_v_device",
    "all_gather_v_device",
];

const FIELDS: usize = 8;

/// What one rank says about a collective call it is about to make.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Signature {
    /// The call's name (one of `OPS`).
    pub op: &'static str,
    /// The root rank, or [`ANY`].
    pub root: i64,
    /// An element count that must agree, or [`ANY`].
    pub count: i64,
    /// `size_of` the element type.
    pub elem_size: i64,
    /// Element type code for reductions, or [`ANY`].
    pub dtype: i64,
    /// Reduction code, or [`ANY`].
    pub reduction: i64,
    /// Another value that must agree (a hash of a counts array), or [`ANY`].
    pub extra: i64,
    /// A per-rank value that travels with the signature and is not compared
    /// (this rank's own count in the `v` forms).
    pub own: i64,
}

impl Signature {
    pub(crate) fn new<T>(op: &'static str) -> Self {
        debug_assert!(OPS.contains(&op), "unknown op {op}");
        Signature {
            op,
            root: ANY,
            count: ANY,
            elem_size: std::mem::size_of::<T>() as i64,
            dtype: ANY,
            reduction: ANY,
            extra: ANY,
            own: ANY,
        }
    }
    pub(crate) fn root(mut self, root: usize) -> Self {
        self.root = field(root);
        self
    }
    pub(crate) fn count(mut self, count: usize) -> Self {
        self.count = field(count);
        self
    }
    pub(crate) fn reduction(mut self, dtype: i64, reduction: i64) -> Self {
        self.dtype = dtype;
        self.reduction = reduction;
        self
    }
    pub(crate) fn extra(mut self, extra: i64) -> Self {
        self.extra = extra;
        self
    }
    pub(crate) fn own(mut self, own: usize) -> Self {
        self.own = field(own);
        self
    }
    fn encode(&self, local_error: bool) -> [i64; FIELDS + 1] {
        let op = OPS.iter().position(|&o| o == self.op).unwrap_or(OPS.len()) as i64;
        [
            op,
            self.root,
            self.count,
            self.elem_size,
            self.dtype,
            self.reduction,
            self.extra,
            self.own,
            local_error as i64,
        ]
    }
}

/// A `usize` as a signature field: values beyond `i64::MAX` (which no real
/// count or rank reaches) saturate, so that negating a field never overflows.
fn field(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The signatures of all ranks, in rank order.
struct Table {
    rows: Vec<[i64; FIELDS + 1]>,
}

/// FNV-1a hash of a counts array, for comparing arrays that must agree.
pub(crate) fn hash_counts(counts: &[usize]) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &c in counts {
        for b in (c as u64).to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    // Keep clear of the ANY sentinel.
    (h >> 1) as i64
}

/// Fields compared between ranks (the rest travel without being compared).
const COMPARED: usize = 7;
/// Index of the local-error flag.
const LOCAL_ERROR: usize = FIELDS;

/// Checks that every rank's signature agrees with one small all-reduce,
/// gathering the details only when something disagrees. Returns the largest
/// `own` value over the ranks.
///
/// Every checked call makes exactly this `MPI_Allreduce` first, so ranks that
/// make different checked calls still meet in it and learn of the mismatch.
///
/// `local` is this rank's own validation of its arguments: an error there is
/// returned on this rank, and the others learn which rank failed.
pub(crate) fn agree(comm: &Comm, sig: Signature, local: Result<()>) -> Result<i64> {
    let _span = comm.trace_call("check", 16 * (FIELDS + 1));
    let mine = sig.encode(local.is_err());
    let mut both = [0i64; 2 * (FIELDS + 1)];
    for (i, &v) in mine.iter().enumerate() {
        both[i] = v;
        // Every field is >= -1, so the negation cannot overflow.
        both[FIELDS + 1 + i] = -v;
    }
    let mut reduced = [0i64; 2 * (FIELDS + 1)];
    // SAFETY: both arrays hold 2 * (FIELDS + 1) i64 values.
    unsafe {
        mpi!(MPI_Allreduce(
            both.as_ptr() as *const c_void,
            reduced.as_mut_ptr() as *mut c_void,
            (2 * (FIELDS + 1)) as c_int,
            ffi::RSMPI_INT64_T,
            ffi::RSMPI_MAX,
            comm.as_raw(),
        ))?;
    }
    let max = |i: usize| reduced[i];
    let min = |i: usize| -reduced[FIELDS + 1 + i];
    let agreed = max(LOCAL_ERROR) == 0 && (0..COMPARED).all(|i| max(i) == min(i));
    if agreed {
        return local.map(|_| max(7));
    }
    // Something disagrees, and every rank knows it: gather every signature to
    // say who gave what.
    explain(comm, sig, local)?;
    // Not reached: `explain` finds the disagreement the all-reduce saw.
    Err(Error::Remote {
        op: sig.op,
        message: "the ranks disagree on this call's arguments".into(),
    })
}

/// Gathers every rank's signature and returns the error that says which
/// ranks disagree about what.
fn explain(comm: &Comm, sig: Signature, local: Result<()>) -> Result<()> {
    let mine = sig.encode(local.is_err());
    let size = comm.size();
    let mut rows = vec![[0i64; FIELDS + 1]; size];
    // SAFETY: `mine` holds FIELDS+1 i64 values; `rows` holds size*(FIELDS+1)
    // i64 values, which is what MPI_Allgather writes with this count and
    // datatype on a communicator of `size` ranks.
    unsafe {
        mpi!(MPI_Allgather(
            mine.as_ptr() as *const c_void,
            (FIELDS + 1) as c_int,
            ffi::RSMPI_INT64_T,
            rows.as_mut_ptr() as *mut c_void,
            (FIELDS + 1) as c_int,
            ffi::RSMPI_INT64_T,
            comm.as_raw(),
        ))?;
    }
    local?;
    let table = Table { rows };
    let failed: Vec<usize> = (0..size)
        .filter(|&r| table.rows[r][LOCAL_ERROR] != 0)
        .collect();
    if !failed.is_empty() {
        return Err(Error::Remote {
            op: sig.op,
            message: format!(
                "{} passed invalid arguments (its own error says which); no data was exchanged",
                rank_list(&failed)
            ),
        });
    }
    compare(&table, 0, sig.op, "which collective was called", |v| {
        OPS.get(v as usize)
            .copied()
            .unwrap_or("an unknown call")
            .to_string()
    })?;
    compare(&table, 1, sig.op, "the root rank", |v| v.to_string())?;
    compare(&table, 2, sig.op, "the element count", |v| v.to_string())?;
    compare(&table, 3, sig.op, "the element size in bytes", |v| {
        v.to_string()
    })?;
    compare(&table, 4, sig.op, "the element type", |v| {
        dtype_name(v).into()
    })?;
    compare(&table, 5, sig.op, "the reduction operation", |v| {
        super::ReduceOp::ALL
            .get((v - 1) as usize)
            .map(|o| format!("{o:?}"))
            .unwrap_or_else(|| "none".into())
    })?;
    compare(&table, 6, sig.op, "the counts array", |v| format!("{v:#x}"))?;
    Ok(())
}

fn dtype_name(code: i64) -> &'static str {
    match code {
        1 => "i8",
        2 => "i16",
        3 => "i32",
        4 => "i64",
        5 => "u8",
        6 => "u16",
        7 => "u32",
        8 => "u64",
        9 => "f32",
        10 => "f64",
        _ => "another type",
    }
}

fn compare(
    table: &Table,
    field: usize,
    op: &'static str,
    what: &'static str,
    show: impl Fn(i64) -> String,
) -> Result<()> {
    let first = table.rows[0][field];
    if table.rows.iter().all(|r| r[field] == first) {
        return Ok(());
    }
    // Group ranks by the value they gave, in order of first appearance.
    let mut groups: Vec<(i64, Vec<usize>)> = Vec::new();
    for (rank, row) in table.rows.iter().enumerate() {
        match groups.iter_mut().find(|(v, _)| *v == row[field]) {
            Some((_, ranks)) => ranks.push(rank),
            None => groups.push((row[field], vec![rank])),
        }
    }
    let shown: Vec<String> = groups
        .iter()
        .take(6)
        .map(|(v, ranks)| format!("{} on {}", show(*v), rank_list(ranks)))
        .collect();
    let more = if groups.len() > 6 {
        format!("; and {} more values", groups.len() - 6)
    } else {
        String::new()
    };
    Err(Error::Disagreement {
        op,
        what,
        detail: format!(
            "{}{more}. Every rank must pass the same value",
            shown.join("; ")
        ),
    })
}

/// Names a set of ranks compactly: `rank 3`, `ranks 0-2, 5`.
pub fn rank_list(ranks: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < ranks.len() {
        let start = ranks[i];
        let mut end = start;
        while i + 1 < ranks.len() && ranks[i + 1] == end + 1 {
            i += 1;
            end = ranks[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    let noun = if ranks.len() == 1 { "rank" } else { "ranks" };
    format!("{noun} {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[[i64; FIELDS + 1]]) -> Table {
        Table {
            rows: rows.to_vec(),
        }
    }

    #[test]
    fn rank_lists_compress_runs() {
        assert_eq!(rank_list(&[3]), "rank 3");
        assert_eq!(rank_list(&[0, 1, 2, 5]), "ranks 0-2, 5");
        assert_eq!(rank_list(&[1, 3, 4]), "ranks 1, 3-4");
    }

    #[test]
    fn disagreement_names_ranks_and_values() {
        let ok = [4, ANY, 10, 8, 10, 1, ANY, ANY, 0];
        let mut bad = ok;
        bad[2] = 12;
        let t = table(&[ok, bad, ok, ok]);
        let err = compare(&t, 2, "all_reduce", "the element count", |v| v.to_string())
            .unwrap_err()
            .to_string();
        assert!(err.contains("10 on ranks 0, 2-3"), "{err}");
        assert!(err.contains("12 on rank 1"), "{err}");
        assert!(err.starts_with("all_reduce: ranks disagree on the element count"));
        assert!(compare(&table(&[ok, ok]), 2, "x", "y", |v| v.to_string()).is_ok());
    }

    #[test]
    fn counts_hash_tells_arrays_apart() {
        assert_eq!(hash_counts(&[1, 2, 3]), hash_counts(&[1, 2, 3]));
        assert_ne!(hash_counts(&[1, 2, 3]), hash_counts(&[1, 3, 2]));
        assert_ne!(hash_counts(&[]), ANY);
    }
}
