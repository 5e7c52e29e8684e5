//! The collectives: broadcast, reductions, gathers and scatters,
//! all-to-all, scans and reduce-scatter.

use tessera::Error;
use tessera::comm::{Comm, ReduceOp};

use super::{Outcome, err, f};

pub(super) fn broadcast(c: &Comm) -> Outcome {
    let (r, p) = (c.rank(), c.size());
    for root in 0..p {
        let mut buf: Vec<f64> = if r == root {
            (0..7).map(|i| f(root, i) as f64 * 0.5).collect()
        } else {
            vec![f64::NAN; 7]
        };
        c.broadcast(&mut buf, root).map_err(err)?;
        let want: Vec<f64> = (0..7).map(|i| f(root, i) as f64 * 0.5).collect();
        ensure!(buf == want, "broadcast from {root}: {buf:?}");
    }
    let root = p / 2;
    let data: Vec<u16> = if r == root {
        (0..(root as u16 + 3)).collect()
    } else {
        Vec::new()
    };
    let got = c.broadcast_vec(&data, root).map_err(err)?;
    ensure!(
        got == (0..(root as u16 + 3)).collect::<Vec<_>>(),
        "broadcast_vec from {root}: {got:?}"
    );
    let empty = c.broadcast_vec::<u64>(&[], 0).map_err(err)?;
    ensure!(empty.is_empty(), "empty broadcast_vec gave {empty:?}");
    Ok(())
}

pub(super) fn reduce(c: &Comm) -> Outcome {
    let (r, p) = (c.rank(), c.size());
    let n = 9;
    for op in [
        ReduceOp::Sum,
        ReduceOp::Min,
        ReduceOp::Max,
        ReduceOp::Product,
    ] {
        // Small values keep the product exact in both types.
        let val = |rank: usize, i: usize| {
            ((rank + i) % 3) as i64 - 1
                + if op == ReduceOp::Product {
                    2
                } else {
                    f(rank, i)
                }
        };
        let mine: Vec<i64> = (0..n).map(|i| val(r, i)).collect();
        let want: Vec<i64> = (0..n)
            .map(|i| (1..p).fold(val(0, i), |acc, s| op.apply(acc, val(s, i))))
            .collect();
        let got = c.all_reduce(&mine, op).map_err(err)?;
        ensure!(got == want, "all_reduce {op:?} i64: {got:?}, want {want:?}");
        let mine_f: Vec<f64> = mine.iter().map(|&x| x as f64).collect();
        let want_f: Vec<f64> = want.iter().map(|&x| x as f64).collect();
        let got = c.all_reduce(&mine_f, op).map_err(err)?;
        ensure!(
            got == want_f,
            "all_reduce {op:?} f64: {got:?}, want {want_f:?}"
        );
        let root = (p - 1) / 2;
        let got = c.reduce(&mine, op, root).map_err(err)?;
        ensure!(
            got.as_deref() == (r == root).then_some(&want[..]),
            "reduce {op:?} to {root}: {got:?}"
        );
    }
    for op in [
        ReduceOp::BitAnd,
        ReduceOp::BitOr,
        ReduceOp::BitXor,
        ReduceOp::LogicalAnd,
        ReduceOp::LogicalOr,
        ReduceOp::LogicalXor,
    ] {
        let val = |rank: usize, i: usize| {
            ((rank * 0x9e37 + i * 0x79b9) as u32)
                & (if i.is_multiple_of(2) {
                    0xff
                } else {
                    1 << (rank % 4)
                })
        };
        let mine: Vec<u32> = (0..n).map(|i| val(r, i)).collect();
        let want: Vec<u32> = (0..n)
            .map(|i| (1..p).fold(val(0, i), |acc, s| op.apply(acc, val(s, i))))
            .collect();
        let mut got = mine.clone();
        c.all_reduce_in_place(&mut got, op).map_err(err)?;
        ensure!(got == want, "all_reduce {op:?} u32: {got:?}, want {want:?}");
    }
    // Float sums: not associative, so check against the exact sum within
    // the bound of any summation order: (p - 1) * eps * sum |x|.
    let x: Vec<f64> = (0..n).map(|i| 1.0 / (1.0 + f(r, i).abs() as f64)).collect();
    let got = c.all_reduce(&x, ReduceOp::Sum).map_err(err)?;
    for (i, g) in got.iter().enumerate() {
        let exact: f64 = (0..p).map(|s| 1.0 / (1.0 + f(s, i).abs() as f64)).sum();
        let abs_sum: f64 = (0..p)
            .map(|s| (1.0 / (1.0 + f(s, i).abs() as f64)).abs())
            .sum();
        let tol = (p as f64) * f64::EPSILON * abs_sum;
        ensure!(
            (g - exact).abs().le(&tol),
            "float sum at {i}: {g} vs {exact} (tol {tol:e})"
        );
    }
    ensure!(
        matches!(
            c.all_reduce(&[1.0f32], ReduceOp::BitXor),
            Err(Error::UnsupportedReduction { .. })
        ),
        "BitXor on f32 was accepted"
    );
    Ok(())
}

pub(super) fn gather(c: &Comm) -> Outcome {
    let (r, p) = (c.rank(), c.size());
    let root = p - 1;
    let mine = [f(r, 0), f(r, 1), f(r, 2)];
    let got = c.gather(&mine, root).map_err(err)?;
    let want: Vec<i64> = (0..p).flat_map(|s| [f(s, 0), f(s, 1), f(s, 2)]).collect();
    ensure!(
        got.as_deref() == (r == root).then_some(&want[..]),
        "gather to {root}: {got:?}"
    );
    let got = c.all_gather(&mine).map_err(err)?;
    ensure!(got == want, "all_gather: {got:?}");

    // v forms: rank s has s % 3 elements, so rank 0 (and every third) has none.
    let part = |s: usize| (0..s % 3).map(|i| f(s, i)).collect::<Vec<i64>>();
    let got = c.all_gather_v(&part(r)).map_err(err)?;
    for s in 0..p {
        ensure!(
            got.part(s) == part(s),
            "all_gather_v part {s}: {:?}",
            got.part(s)
        );
    }
    let got = c.gather_v(&part(r), 0).map_err(err)?;
    if r == 0 {
        let v = got.ok_or("gather_v gave the root nothing")?;
        ensure!(
            v.counts == (0..p).map(|s| s % 3).collect::<Vec<_>>(),
            "gather_v counts {:?}",
            v.counts
        );
        for s in 0..p {
            ensure!(v.part(s) == part(s), "gather_v part {s}: {:?}", v.part(s));
        }
    } else {
        ensure!(got.is_none(), "gather_v gave a non-root data");
    }

    let all: Vec<i64> = (0..p).flat_map(|s| [f(s, 0), f(s, 1)]).collect();
    let got = c.scatter(if r == 0 { &all } else { &[] }, 0).map_err(err)?;
    ensure!(got == [f(r, 0), f(r, 1)], "scatter: {got:?}");
    let counts: Vec<usize> = (0..p).map(|s| (s + 1) % 3).collect();
    let all: Vec<i64> = (0..p)
        .flat_map(|s| (0..(s + 1) % 3).map(move |i| f(s, i)))
        .collect();
    let got = c
        .scatter_v(if r == root { &all } else { &[] }, &counts, root)
        .map_err(err)?;
    let want: Vec<i64> = (0..(r + 1) % 3).map(|i| f(r, i)).collect();
    ensure!(got == want, "scatter_v: {got:?}, want {want:?}");
    Ok(())
}

pub(super) fn alltoall(c: &Comm) -> Outcome {
    let (r, p) = (c.rank(), c.size());
    let code = |s: usize, d: usize, i: usize| (s * 10_000 + d * 100 + i) as u32;
    let send: Vec<u32> = (0..p)
        .flat_map(|d| (0..3).map(move |i| code(r, d, i)))
        .collect();
    let got = c.all_to_all(&send).map_err(err)?;
    let want: Vec<u32> = (0..p)
        .flat_map(|s| (0..3).map(move |i| code(s, r, i)))
        .collect();
    ensure!(got == want, "all_to_all: {got:?}");
    let n = |s: usize, d: usize| (s * 7 + d * 3) % 4; // zero for some pairs
    let counts: Vec<usize> = (0..p).map(|d| n(r, d)).collect();
    let send: Vec<u32> = (0..p)
        .flat_map(|d| (0..n(r, d)).map(move |i| code(r, d, i)))
        .collect();
    let got = c.all_to_all_v(&send, &counts).map_err(err)?;
    for s in 0..p {
        let want: Vec<u32> = (0..n(s, r)).map(|i| code(s, r, i)).collect();
        ensure!(
            got.part(s) == want,
            "all_to_all_v from {s}: {:?}, want {want:?}",
            got.part(s)
        );
    }
    Ok(())
}

pub(super) fn scan(c: &Comm) -> Outcome {
    let (r, p) = (c.rank(), c.size());
    let mine = [f(r, 0), (r + 1) as i64];
    let got = c.scan(&mine, ReduceOp::Sum).map_err(err)?;
    let want = [
        (0..=r).map(|s| f(s, 0)).sum::<i64>(),
        ((r + 1) * (r + 2) / 2) as i64,
    ];
    ensure!(got == want, "scan: {got:?}, want {want:?}");
    let got = c.exclusive_scan(&mine, ReduceOp::Sum).map_err(err)?;
    let want = [
        (0..r).map(|s| f(s, 0)).sum::<i64>(),
        (r * (r + 1) / 2) as i64,
    ];
    ensure!(got == want, "exclusive_scan: {got:?}, want {want:?}");
    let got = c.exclusive_scan(&[r as i32], ReduceOp::Max).map_err(err)?;
    let want = if r == 0 { i32::MIN } else { r as i32 - 1 };
    ensure!(got == [want], "exclusive_scan max: {got:?}, want {want}");

    let counts: Vec<usize> = (0..p).map(|s| s % 3).collect();
    let total: usize = counts.iter().sum();
    let send: Vec<i64> = (0..total).map(|i| f(r, i)).collect();
    let got = c
        .reduce_scatter(&send, &counts, ReduceOp::Sum)
        .map_err(err)?;
    let start: usize = counts[..r].iter().sum();
    let want: Vec<i64> = (start..start + counts[r])
        .map(|i| (0..p).map(|s| f(s, i)).sum())
        .collect();
    ensure!(got == want, "reduce_scatter: {got:?}, want {want:?}");
    let send: Vec<i64> = (0..2 * p).map(|i| f(r, i)).collect();
    let got = c.reduce_scatter_block(&send, ReduceOp::Max).map_err(err)?;
    let want: Vec<i64> = (2 * r..2 * r + 2)
        .map(|i| (0..p).map(|s| f(s, i)).max().unwrap_or(0))
        .collect();
    ensure!(got == want, "reduce_scatter_block: {got:?}, want {want:?}");
    Ok(())
}
