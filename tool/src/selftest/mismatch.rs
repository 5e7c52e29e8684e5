//! Arguments that ranks disagree on: an error on every rank, never a hang.

use tessera::Error;
use tessera::comm::{Comm, ReduceOp};

use super::{Outcome, err};

pub(super) fn mismatch(c: &Comm) -> Outcome {
    let (r, p) = (c.rank(), c.size());
    let c = &c.checked();
    // Out-of-range root: the same error on every rank.
    let e = c.broadcast(&mut [0u8; 4], p).unwrap_err().to_string();
    ensure!(
        e.contains(&format!("root {p} is not a rank")),
        "bad root: {e}"
    );
    ensure!(
        matches!(
            c.all_reduce(&[1.0f64], ReduceOp::BitAnd),
            Err(Error::UnsupportedReduction { .. })
        ),
        "BitAnd on f64 accepted"
    );
    if p >= 2 {
        // Rank 1 passes a longer buffer.
        let len = if r == 1 { 5 } else { 4 };
        let e = c.all_reduce(&vec![1i32; len], ReduceOp::Sum).unwrap_err();
        let msg = e.to_string();
        ensure!(
            matches!(
                e,
                Error::Disagreement {
                    what: "the element count",
                    ..
                }
            ),
            "length mismatch: {msg}"
        );
        ensure!(
            msg.contains("5 on rank 1") && msg.contains("4 on rank"),
            "length mismatch names ranks: {msg}"
        );
        // Different roots.
        let mut buf = [0u8; 3];
        let msg = c
            .broadcast(&mut buf, if r == 0 { 0 } else { 1 })
            .unwrap_err()
            .to_string();
        ensure!(
            msg.contains("the root rank") && msg.contains("0 on rank 0"),
            "root mismatch: {msg}"
        );
        // Different element types of different sizes.
        let msg = if r == 0 {
            c.all_gather(&[1u32]).map(drop)
        } else {
            c.all_gather(&[1u64]).map(drop)
        }
        .unwrap_err()
        .to_string();
        ensure!(msg.contains("element size"), "type mismatch: {msg}");
        // A distributed sort with different algorithms and key types: the
        // fields that differ, in words, with their ranks.
        use tessera::distributed::sort::{SortAlgo, dist_sort};
        let algo = if r == 0 {
            SortAlgo::Sample
        } else {
            SortAlgo::Merge
        };
        let msg = if r == 0 {
            dist_sort(c, vec![3u32, 1], algo, tessera::Device::Cpu).map(drop)
        } else {
            dist_sort(c, vec![2i64], algo, tessera::Device::Cpu).map(drop)
        }
        .unwrap_err()
        .to_string();
        let others = if p == 2 {
            "rank 1".to_string()
        } else {
            format!("ranks 1-{}", p - 1)
        };
        ensure!(
            msg.contains(&format!(
                "ranks disagree on the algorithm: sample on rank 0; merge on {others}; and on the key type: u32 on rank 0; i64 on {others}"
            )) && !msg.contains('['),
            "dist_sort mismatch in words: {msg}"
        );
        // Different collectives.
        let msg = if r == 0 {
            c.barrier()
        } else {
            c.all_reduce(&[1u8], ReduceOp::Sum).map(drop)
        }
        .unwrap_err()
        .to_string();
        ensure!(
            msg.contains("which collective") && msg.contains("barrier on rank 0"),
            "call mismatch: {msg}"
        );
        // Counts that do not add up, on the root only.
        let res = c.scatter_v(&vec![1u8; p + 1], &vec![1; p], 0);
        match (r, res) {
            (0, Err(Error::InvalidArgument { message, .. })) if message.contains("add up to") => {}
            (0, other) => return Err(format!("root with bad counts: {other:?}")),
            (_, Err(Error::Remote { message, .. })) if message.contains("rank 0") => {}
            (_, other) => return Err(format!("non-root after root's bad counts: {other:?}")),
        }
        // A variable-count call against a fixed-count one, and against a
        // barrier: the check catches both, where plain MPI would hang.
        let res = if r == 0 {
            c.gather_v(&[1u8], 0).map(drop)
        } else {
            c.gather(&[1u8], 0).map(drop)
        };
        let msg = res.unwrap_err().to_string();
        ensure!(
            msg.contains("gather_v on rank 0"),
            "gather_v vs gather: {msg}"
        );
        let res = if r == 0 {
            c.all_gather_v(&[1u8]).map(drop)
        } else {
            c.barrier()
        };
        let msg = res.unwrap_err().to_string();
        ensure!(
            msg.contains("which collective"),
            "all_gather_v vs barrier: {msg}"
        );
        // A colour MPI cannot take, on one rank only.
        let res = c.split(Some(if r == 0 { u32::MAX } else { 1 }), 0);
        match (r, res) {
            (0, Err(Error::InvalidArgument { message, .. }))
                if message.contains("above 2147483647") => {}
            (_, Err(Error::Remote { message, .. })) if r != 0 && message.contains("rank 0") => {}
            (_, other) => return Err(format!("split with a bad colour on rank 0: {other:?}")),
        }
        // Reduce-scatter counts that differ between ranks.
        let mut counts = vec![1usize; p];
        if r == p - 1 {
            counts[0] = 0;
            counts[p - 1] = 2;
        }
        let msg = c
            .reduce_scatter(&vec![1i64; p], &counts, ReduceOp::Sum)
            .unwrap_err()
            .to_string();
        ensure!(
            msg.contains("counts array"),
            "reduce_scatter counts mismatch: {msg}"
        );
    }
    // After all that, the ranks are still in step.
    let sum = c.all_reduce(&[1u64], ReduceOp::Sum).map_err(err)?;
    ensure!(sum == [p as u64], "collective after errors: {sum:?}");
    Ok(())
}
