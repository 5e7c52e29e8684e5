//! Communicators (split, split_shared, dup, checked/unchecked) and process
//! grids.

use tessera::Error;
use tessera::comm::{Comm, ProcessGrid, ReduceOp, square_ish_factors};

use super::{Outcome, err};

pub(super) fn comm_ops(c: &Comm) -> Outcome {
    let (r, p) = (c.rank(), c.size());
    let half = c
        .split(Some((r % 2) as u32), -(r as i32))
        .map_err(err)?
        .ok_or("split gave None")?;
    let want_size = (p + 1 - r % 2) / 2;
    ensure!(
        half.size() == want_size,
        "split size {} want {want_size}",
        half.size()
    );
    // key = -rank reverses the order within each colour.
    let members = half.all_gather(&[r as u64]).map_err(err)?;
    let mut want: Vec<u64> = (0..p as u64).filter(|s| s % 2 == r as u64 % 2).collect();
    want.reverse();
    ensure!(members == want, "split members {members:?} want {want:?}");
    let none = c
        .split(if r == 0 { None } else { Some(0) }, 0)
        .map_err(err)?;
    ensure!(none.is_none() == (r == 0), "split with None");
    let local = c.split_shared();
    // Node-local communicators partition the job.
    let leaders = c
        .all_reduce(
            &[if local.rank() == 0 {
                local.size() as u64
            } else {
                0
            }],
            ReduceOp::Sum,
        )
        .map_err(err)?;
    ensure!(
        leaders[0] == p as u64,
        "node-local sizes add up to {} of {p}",
        leaders[0]
    );
    let d = c.dup();
    ensure!(
        d.size() == p && d.rank() == r && d.is_checked() == c.is_checked(),
        "dup differs"
    );
    ensure!(
        !c.unchecked().is_checked() && c.checked().is_checked(),
        "check flags"
    );
    // Messages on a duplicate never match the original's.
    if p >= 2 && r < 2 {
        let other = 1 - r;
        let on_dup = d.isend(vec![1u8], other, 0).map_err(err)?;
        let on_orig = c.isend(vec![2u8], other, 0).map_err(err)?;
        let (a, _) = c.receive_vec::<u8>(other, 0).map_err(err)?;
        let (b, _) = d.receive_vec::<u8>(other, 0).map_err(err)?;
        on_dup.wait().map_err(err)?;
        on_orig.wait().map_err(err)?;
        ensure!(
            a == [2] && b == [1],
            "dup messages crossed: orig {a:?} dup {b:?}"
        );
    }
    Ok(())
}

pub(super) fn grid(c: &Comm) -> Outcome {
    let (r, p) = (c.rank(), c.size());
    let g = ProcessGrid::square_ish(c).map_err(err)?;
    let (rows, cols) = square_ish_factors(p);
    ensure!(
        g.rows() == rows && g.cols() == cols && rows * cols == p,
        "grid {}x{} for {p}",
        g.rows(),
        g.cols()
    );
    ensure!(
        g.row() == r / cols && g.col() == r % cols && g.rank_at(g.row(), g.col()) == r,
        "grid position"
    );
    ensure!(
        g.row_comm().size() == cols && g.col_comm().size() == rows,
        "row/col sizes"
    );
    ensure!(
        g.row_comm().rank() == g.col() && g.col_comm().rank() == g.row(),
        "row/col ranks"
    );
    let row_sum = g
        .row_comm()
        .all_reduce(&[r as u64], ReduceOp::Sum)
        .map_err(err)?[0];
    let want: u64 = (0..cols).map(|j| (g.row() * cols + j) as u64).sum();
    ensure!(row_sum == want, "row sum {row_sum} want {want}");
    let col_sum = g
        .col_comm()
        .all_reduce(&[r as u64], ReduceOp::Sum)
        .map_err(err)?[0];
    let want: u64 = (0..rows).map(|i| (i * cols + g.col()) as u64).sum();
    ensure!(col_sum == want, "column sum {col_sum} want {want}");
    match ProcessGrid::new(c, p + 1, 1) {
        Err(Error::GridShape { ranks, .. }) if ranks == p => {}
        other => return Err(format!("a {}x1 grid of {p} ranks: {other:?}", p + 1)),
    }
    if p >= 2 {
        // Ranks that ask for different shapes get an error, not a hang.
        let (rows, cols) = if r == 0 { (1, p) } else { (p, 1) };
        match ProcessGrid::new(c, rows, cols) {
            Err(Error::Disagreement { .. }) if c.is_checked() => {}
            Err(e) if c.is_checked() => return Err(format!("grid shapes that disagree: {e}")),
            Ok(_) if c.is_checked() => return Err("grid shapes that disagree were accepted".into()),
            // Unchecked: both shapes are valid, and MPI itself is consistent.
            Ok(_) => {}
            Err(e) => return Err(format!("unchecked grid: {e}")),
        }
    }
    let g2 = ProcessGrid::new(c, 1, p).map_err(err)?;
    ensure!(
        g2.row_comm().size() == p && g2.col_comm().size() == 1,
        "1 x p grid"
    );
    Ok(())
}
