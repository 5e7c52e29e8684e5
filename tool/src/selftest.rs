//! `tessera selftest`: checks every part of the runtime on the ranks of a
//! job, against values each rank computes on its own.
//!
//! Each rank's contribution is a known function of its rank, so every rank
//! can compute what any collective must return without communicating. Run it
//! on a new cluster or after an MPI upgrade: `tessera run -n 4 selftest`.
//! The integration tests launch it at several rank counts.

use tessera::Error;
use tessera::comm::{Comm, ProcessGrid, ReduceOp, Source, square_ish_factors};
use tessera::distributed::{DistMatrix, MatmulOptions, matmul_with, verify_product};
use tessera::ops::Float;
use tessera::ops::gemm::gemm_reference;

/// A check's name and the `(rank, message)` of every rank where it failed.
pub type CheckReport = (String, Vec<(usize, String)>);

/// A check's verdict on one rank.
pub type Outcome = std::result::Result<(), String>;

/// A named check.
pub struct Check {
    /// Name, as given on the command line.
    pub name: &'static str,
    /// What it covers.
    pub about: &'static str,
    run: fn(&Comm) -> Outcome,
}

/// Every check, in the order they run.
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            name: "p2p",
            about: "send, receive, sendrecv, short buffers, any-source",
            run: p2p,
        },
        Check {
            name: "nonblocking",
            about: "isend/irecv, ibroadcast, iall_reduce, iall_to_all(v)",
            run: nonblocking,
        },
        Check {
            name: "broadcast",
            about: "broadcast and broadcast_vec from every root",
            run: broadcast,
        },
        Check {
            name: "reduce",
            about: "reduce and all-reduce, every operation, ints and floats",
            run: reduce,
        },
        Check {
            name: "gather",
            about: "gather, scatter, all-gather and their v forms with empty ranks",
            run: gather,
        },
        Check {
            name: "alltoall",
            about: "all-to-all and all-to-all-v with empty blocks",
            run: alltoall,
        },
        Check {
            name: "scan",
            about: "scan, exclusive scan, reduce-scatter",
            run: scan,
        },
        Check {
            name: "comm",
            about: "split, split_shared, dup, unchecked",
            run: comm_ops,
        },
        Check {
            name: "grid",
            about: "process grids and their row/column communicators",
            run: grid,
        },
        Check {
            name: "matmul",
            about: "distributed matrices and SUMMA against a serial reference",
            run: matmul,
        },
        Check {
            name: "sort",
            about: "sample sort and merge sort against a serial sort, every distribution and key type",
            run: sort_check,
        },
        Check {
            name: "mismatch",
            about: "disagreeing arguments give an error on every rank, no hang",
            run: mismatch,
        },
    ]
}

/// Runs the named checks (all when `names` is empty) on every rank of `comm`.
/// Collective. Returns `(name, failures)` per check, where failures lists
/// `(rank, message)` for the ranks that failed; the same on every rank.
pub fn run(comm: &Comm, names: &[String]) -> crate::Result<Vec<CheckReport>> {
    let all = checks();
    for n in names {
        if !all.iter().any(|c| c.name == n) {
            let known: Vec<String> = all
                .iter()
                .map(|c| format!("\n  {:<10} {}", c.name, c.about))
                .collect();
            return Err(crate::Error::Usage(format!(
                "unknown check `{n}`: choose from{}",
                known.concat()
            )));
        }
    }
    let mut report = Vec::new();
    for check in all
        .iter()
        .filter(|c| names.is_empty() || names.iter().any(|n| n == c.name))
    {
        // Run on the checked communicator, then (for data checks) unchecked.
        let mut outcome = (check.run)(comm);
        // Whether to go on is decided together, so that no rank starts the
        // second pass while another has stopped.
        let all_ok = comm
            .unchecked()
            .all_reduce(&[outcome.is_ok() as u8], ReduceOp::Min)?[0]
            == 1;
        if all_ok && check.name != "mismatch" {
            outcome = (check.run)(&comm.unchecked()).map_err(|e| format!("unchecked: {e}"));
        }
        let message = outcome.err().unwrap_or_default();
        let failures = comm
            .unchecked()
            .all_gather_v(message.as_bytes())?
            .parts()
            .enumerate()
            .filter(|(_, m)| !m.is_empty())
            .map(|(r, m)| (r, String::from_utf8_lossy(m).into_owned()))
            .collect();
        report.push((check.name.to_string(), failures));
    }
    Ok(report)
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

fn err(e: Error) -> String {
    e.to_string()
}

/// A value that rank `r` contributes at index `i`.
fn f(r: usize, i: usize) -> i64 {
    ((r * 131 + i * 17) % 1009) as i64 - 500
}

fn p2p(c: &Comm) -> Outcome {
    let (r, p) = (c.rank(), c.size());
    let (next, prev) = ((r + 1) % p, (r + p - 1) % p);
    // Ring: every rank sends r+1 values to the next and receives prev+1.
    let send: Vec<i64> = (0..=r).map(|i| f(r, i)).collect();
    let (got, st) = c
        .sendrecv_vec::<i64, i64>(&send, next, 3, prev, 3)
        .map_err(err)?;
    let want: Vec<i64> = (0..=prev).map(|i| f(prev, i)).collect();
    ensure!(
        got == want,
        "ring sendrecv_vec from {prev}: got {got:?}, want {want:?}"
    );
    ensure!(
        st.source == prev && st.tag == 3 && st.count == prev + 1,
        "status {st:?}"
    );
    // Fixed buffer, longer than the message.
    let mut buf = vec![0i64; p + 2];
    let st = c.sendrecv(&send, next, 4, &mut buf, prev, 4).map_err(err)?;
    ensure!(
        st.count == prev + 1 && buf[..st.count] == want[..],
        "sendrecv into buffer: {buf:?}"
    );
    if p >= 2 {
        // A buffer too small is an error, and the message is consumed.
        if r == 0 {
            c.send(&[1u32, 2, 3], 1, 9).map_err(err)?;
            c.send(&[7u32], 1, 10).map_err(err)?;
        } else if r == 1 {
            let mut small = [0u32; 2];
            match c.receive_into(&mut small, 0, 9) {
                Err(Error::BufferTooSmall {
                    got: 2,
                    source_rank: 0,
                    tag: 9,
                    ..
                }) => {}
                other => {
                    return Err(format!(
                        "short buffer: expected BufferTooSmall, got {other:?}"
                    ));
                }
            }
            let (v, _) = c.receive_vec::<u32>(0, 10).map_err(err)?;
            ensure!(v == [7], "message after a refused one: {v:?}");
        }
        // Any-source: rank 0 hears from every other rank once.
        if r == 0 {
            let mut seen = vec![false; p];
            for _ in 1..p {
                let (v, st) = c.receive_vec::<u64>(Source::Any, 11).map_err(err)?;
                ensure!(
                    v == [st.source as u64 * 10],
                    "any-source value {v:?} from {}",
                    st.source
                );
                seen[st.source] = true;
            }
            ensure!(
                seen[1..].iter().all(|&s| s),
                "any-source missed a rank: {seen:?}"
            );
        } else {
            c.send(&[r as u64 * 10], 0, 11).map_err(err)?;
        }
    }
    // A short buffer for a message from this same rank (Open MPI would
    // truncate it silently).
    let sent = c.isend(vec![1u64, 2, 3], r, 12).map_err(err)?;
    let mut small = [0u64; 2];
    let res = c.receive_into(&mut small, r, 12);
    sent.wait().map_err(err)?;
    ensure!(
        matches!(res, Err(Error::BufferTooSmall { got: 2, .. })),
        "short buffer from self: {res:?}"
    );
    let res = c.sendrecv(&[1u8, 2], r, 13, &mut [0u8; 1], Source::Any, 13);
    ensure!(
        matches!(res, Err(Error::BufferTooSmall { got: 1, .. })),
        "short sendrecv from self: {res:?}"
    );
    ensure!(
        c.send(&[1u8], p, 0).is_err(),
        "send to rank {p} of {p} was accepted"
    );
    ensure!(c.send(&[1u8], 0, -5).is_err(), "negative tag was accepted");
    Ok(())
}

fn nonblocking(c: &Comm) -> Outcome {
    let (r, p) = (c.rank(), c.size());
    let (next, prev) = ((r + 1) % p, (r + p - 1) % p);
    let mut recv = c.irecv::<i64>(16, prev, 5).map_err(err)?;
    let send = c.isend(vec![f(r, 0), f(r, 1)], next, 5).map_err(err)?;
    let back = send.wait().map_err(err)?;
    ensure!(back == [f(r, 0), f(r, 1)], "isend returned {back:?}");
    while !recv.test().map_err(err)? {
        std::hint::spin_loop();
    }
    let (got, st) = recv.wait().map_err(err)?;
    ensure!(
        got == [f(prev, 0), f(prev, 1)] && st.source == prev,
        "irecv got {got:?} {st:?}"
    );

    let root = p - 1;
    let buf = if r == root {
        vec![f(root, 0); 5]
    } else {
        vec![0; 5]
    };
    let got = c.ibroadcast(buf, root).map_err(err)?.wait().map_err(err)?;
    ensure!(got == vec![f(root, 0); 5], "ibroadcast got {got:?}");

    let req = c
        .iall_reduce(vec![r as i64, 1], ReduceOp::Sum)
        .map_err(err)?;
    let got = req.wait().map_err(err)?;
    let want = [(p * (p - 1) / 2) as i64, p as i64];
    ensure!(got == want, "iall_reduce got {got:?}, want {want:?}");

    let send: Vec<i64> = (0..p).map(|d| (r * 100 + d) as i64).collect();
    let got = c.iall_to_all(send).map_err(err)?.wait().map_err(err)?;
    let want: Vec<i64> = (0..p).map(|s| (s * 100 + r) as i64).collect();
    ensure!(got == want, "iall_to_all got {got:?}, want {want:?}");

    let counts: Vec<usize> = (0..p).map(|d| (r + d) % 3).collect();
    let send: Vec<i64> = counts
        .iter()
        .enumerate()
        .flat_map(|(d, &n)| (0..n).map(move |i| (r * 100 + d * 10 + i) as i64))
        .collect();
    let got = c
        .iall_to_all_v(send, &counts)
        .map_err(err)?
        .wait()
        .map_err(err)?;
    for s in 0..p {
        let want: Vec<i64> = (0..(s + r) % 3)
            .map(|i| (s * 100 + r * 10 + i) as i64)
            .collect();
        ensure!(
            got.part(s) == want,
            "iall_to_all_v part from {s}: {:?}, want {want:?}",
            got.part(s)
        );
    }
    // A receive dropped before it matched is cancelled: the next message
    // with its tag goes to the next receive.
    drop(c.irecv::<u8>(4, r, 77).map_err(err)?);
    let sent = c.isend(vec![5u8], r, 77).map_err(err)?;
    let (v, _) = c.receive_vec::<u8>(r, 77).map_err(err)?;
    sent.wait().map_err(err)?;
    ensure!(v == [5], "after a cancelled irecv: {v:?}");

    // A message longer than the posted receive, from this rank (which Open
    // MPI would truncate silently) and from the previous one (which it
    // reports): `wait` says the buffer was too small either way.
    for from in [r, prev] {
        let short = c.irecv::<u32>(1, from, 78).map_err(err)?;
        // Each rank sends to the rank that receives from it.
        let to = if from == r { r } else { next };
        let sent = c.isend(vec![1u32, 2, 3], to, 78).map_err(err)?;
        let got = short.wait();
        sent.wait().map_err(err)?;
        match got {
            Err(Error::BufferTooSmall { got: 1, .. }) => {}
            Err(Error::Mpi { message, .. }) if message.contains("TRUNCATE") => {}
            other => return Err(format!("3 elements into irecv(1) from {from}: {other:?}")),
        }
    }

    // A message that is not a whole number of elements is refused.
    let odd = c.irecv::<u16>(8, r, 79).map_err(err)?;
    let sent = c.isend(vec![1u8, 2, 3], r, 79).map_err(err)?;
    let got = odd.wait();
    sent.wait().map_err(err)?;
    match got {
        Err(Error::InvalidArgument { message, .. }) if message.contains("not a whole number") => {}
        other => return Err(format!("3 bytes as u16: {other:?}")),
    }
    Ok(())
}

fn broadcast(c: &Comm) -> Outcome {
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

fn reduce(c: &Comm) -> Outcome {
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

fn gather(c: &Comm) -> Outcome {
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

fn alltoall(c: &Comm) -> Outcome {
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

fn scan(c: &Comm) -> Outcome {
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

fn comm_ops(c: &Comm) -> Outcome {
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

fn grid(c: &Comm) -> Outcome {
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

fn mismatch(c: &Comm) -> Outcome {
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

fn matmul(c: &Comm) -> Outcome {
    let p = c.size();
    let (rows, cols) = square_ish_factors(p);
    let grids = [(rows, cols), (1, p), (p, 1)];
    // Edge shapes: 1 x 1, k = 1, m or n smaller than the grid, very
    // rectangular, and ordinary ones.
    let shapes = [
        (1, 1, 1),
        (1, 7, 1),
        (5, 1, 6),
        (1, 9, 8),
        (9, 9, 1),
        (3, 50, 2),
        (37, 23, 41),
        (64, 64, 64),
    ];
    for (g, &(gr, gc)) in grids.iter().enumerate() {
        let grid = ProcessGrid::new(c, gr, gc).map_err(err)?;
        for (s, &(m, k, n)) in shapes.iter().enumerate() {
            for panel in [1, 5, 256] {
                let seed = (g * 100 + s) as u64;
                matmul_case::<f64>(&grid, m, k, n, panel, seed)?;
                if panel == 5 {
                    matmul_case::<f32>(&grid, m, k, n, panel, seed)?;
                }
            }
        }
    }
    verification_has_teeth(c)
}

/// Freivalds' check fails wrong products, NaN, and passes products that
/// underflow correctly.
fn verification_has_teeth(c: &Comm) -> Outcome {
    let grid = ProcessGrid::square_ish(c).map_err(err)?;
    let (m, k, n) = (40, 64, 48);
    let a = DistMatrix::<f32>::random(&grid, m, k, 3);
    let b = DistMatrix::<f32>::random(&grid, k, n, 4);
    let good = tessera::distributed::matmul(&a, &b).map_err(err)?;
    let v = verify_product(&a, &b, &good, 9).map_err(err)?;
    ensure!(v.passed, "correct f32 product failed: {v:?}");
    // Row 0 off by 0.01 per entry (about 60 rounding errors' worth): the
    // worst-case norm bound allows it, the row-wise bound must not.
    let r: Vec<f64> = (0..n)
        .map(|j| tessera::rng::uniform(9 ^ 0x5eed, j as u64, 0))
        .collect();
    let mut bad = good.clone();
    if bad.row_range().start == 0 && !bad.row_range().is_empty() {
        let cols = bad.col_range();
        let mut block = bad.local_mut();
        for (jj, j) in cols.enumerate() {
            block[[0, jj]] += 0.01 * r[j].signum() as f32;
        }
    }
    let v = verify_product(&a, &b, &bad, 9).map_err(err)?;
    ensure!(!v.passed && v.row_ratio > 1.0, "a wrong row passed: {v:?}");
    // A NaN anywhere fails.
    let mut nan = good.clone();
    if c.rank() == c.size() - 1 && !nan.local().is_empty() {
        nan.local_mut()[[0, 0]] = f32::NAN;
    }
    let v = verify_product(&a, &b, &nan, 9).map_err(err)?;
    ensure!(!v.passed && v.residual.is_nan(), "NaN in C passed: {v:?}");
    // Products below f32's smallest subnormal are correctly rounded to 0.
    let tiny_a = DistMatrix::<f32>::from_fn(&grid, m, k, |_, _| 1e-25);
    let tiny_b = DistMatrix::<f32>::from_fn(&grid, k, n, |_, _| 1e-25);
    let tiny = tessera::distributed::matmul(&tiny_a, &tiny_b).map_err(err)?;
    ensure!(
        tiny.local().iter().all(|&x| x == 0.0),
        "1e-25 * 1e-25 did not underflow to 0"
    );
    let v = verify_product(&tiny_a, &tiny_b, &tiny, 9).map_err(err)?;
    ensure!(v.passed, "a correctly underflowed product failed: {v:?}");
    // Operands that do not conform are an error, not a panic.
    ensure!(
        verify_product(&a, &b, &a, 9).is_err(),
        "C of the wrong shape was accepted"
    );
    // Ranks that ask for different panel widths get an error, not a hang.
    if c.size() > 1 {
        let panel = if c.rank() == 0 { 3 } else { 7 };
        let res = matmul_with(
            &a,
            &b,
            MatmulOptions {
                panel,
                ..Default::default()
            },
        );
        match res {
            Err(Error::Disagreement { .. }) => {}
            other => return Err(format!("different panel widths: {:?}", other.map(|_| ()))),
        }
    }
    Ok(())
}

fn matmul_case<T: Float>(
    grid: &ProcessGrid,
    m: usize,
    k: usize,
    n: usize,
    panel: usize,
    seed: u64,
) -> Outcome {
    let what = format!(
        "{} {m}x{k}x{n} on {}x{} panel {panel}",
        T::DTYPE,
        grid.rows(),
        grid.cols()
    );
    let a = DistMatrix::<T>::random(grid, m, k, seed);
    let b = DistMatrix::<T>::random(grid, k, n, seed + 1);
    let options = MatmulOptions {
        panel,
        ..Default::default()
    };
    let (product, _) = matmul_with(&a, &b, options).map_err(|e| format!("{what}: {e}"))?;
    let v = verify_product(&a, &b, &product, seed).map_err(err)?;
    ensure!(
        v.passed,
        "{what}: Freivalds residual {} over {}",
        v.residual,
        v.threshold
    );
    // Against a serial reference on rank 0, entry by entry, within
    // gamma_{k+2} |A||B| (the same bound as the local GEMM tests).
    let full_a = a.gather_to_root(0).map_err(err)?;
    let full_b = b.gather_to_root(0).map_err(err)?;
    let full_c = product.gather_to_root(0).map_err(err)?;
    if let (Some(fa), Some(fb), Some(fc)) = (full_a, full_b, full_c) {
        let mut reference = ndarray::Array2::<T>::zeros((m, n));
        gemm_reference(
            T::one(),
            fa.view(),
            fb.view(),
            T::zero(),
            reference.view_mut(),
        );
        for i in 0..m {
            for j in 0..n {
                let abs: f64 = (0..k)
                    .map(|q| (fa[[i, q]].as_f64() * fb[[q, j]].as_f64()).abs())
                    .sum();
                let bound = 2.0 * (k as f64 + 2.0) * T::EPS * abs;
                let e = (fc[[i, j]].as_f64() - reference[[i, j]].as_f64()).abs();
                ensure!(e.le(&bound), "{what}: C[{i},{j}] off by {e:e} > {bound:e}");
            }
        }
        // The random fill is the same global matrix whatever the grid.
        let direct = tessera::rng::uniform(seed, (m - 1) as u64, (k - 1) as u64);
        ensure!(
            fa[[m - 1, k - 1]] == T::from_f64(direct),
            "{what}: random fill depends on the grid"
        );
    }
    // Scatter from the root and gather back: the same matrix.
    let gathered = a.gather_to_root(0).map_err(err)?;
    let again =
        DistMatrix::scatter_from_root(grid, gathered.as_ref().map(|x| x.view()), 0).map_err(err)?;
    ensure!(
        again.local() == a.local(),
        "{what}: scatter/gather round trip changed the block"
    );
    Ok(())
}

fn sort_check(c: &Comm) -> Outcome {
    use tessera::distributed::sort::{OVERSAMPLING, SortAlgo};
    use tessera::ops::generate::KeyDist;
    let p = c.size();
    // From empty to more than P times the sample size.
    let sizes = [0, 1, 7, 3 * p * OVERSAMPLING * p + 5];
    let dists = [
        KeyDist::Uniform,
        KeyDist::Normal,
        KeyDist::Zipf,
        KeyDist::Sorted,
        KeyDist::Reverse,
        KeyDist::Equal,
        KeyDist::Few,
    ];
    for algo in [SortAlgo::Sample, SortAlgo::Merge] {
        for dist in dists {
            for n in sizes {
                let place = |r: usize| tessera::distributed::matrix::block_range(n, p, r);
                sort_case::<u32>(
                    c,
                    algo,
                    &tessera::ops::generate::generate_keys(dist, n, place(c.rank()), 1),
                )?;
                sort_case::<u64>(
                    c,
                    algo,
                    &tessera::ops::generate::generate_keys(dist, n, place(c.rank()), 2),
                )?;
                sort_case::<i32>(
                    c,
                    algo,
                    &tessera::ops::generate::generate_keys(dist, n, place(c.rank()), 3),
                )?;
                sort_case::<i64>(
                    c,
                    algo,
                    &tessera::ops::generate::generate_keys(dist, n, place(c.rank()), 4),
                )?;
                sort_case::<f32>(
                    c,
                    algo,
                    &tessera::ops::generate::generate_keys(dist, n, place(c.rank()), 5),
                )?;
                sort_case::<f64>(
                    c,
                    algo,
                    &tessera::ops::generate::generate_keys(dist, n, place(c.rank()), 6),
                )?;
            }
        }
        // Every key on rank 0, none elsewhere.
        let lopsided: Vec<u64> = if c.rank() == 0 {
            tessera::ops::generate::generate_keys(KeyDist::Uniform, 5000, 0..5000, 7)
        } else {
            Vec::new()
        };
        sort_case::<u64>(c, algo, &lopsided)?;
        // NaN, infinities and both zeros.
        let specials = [
            f64::NAN,
            -0.0,
            0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -f64::NAN,
            1.0,
            -1.0,
        ];
        let mine: Vec<f64> = (0..40)
            .map(|i| specials[(i + c.rank()) % specials.len()])
            .collect();
        sort_case::<f64>(c, algo, &mine)?;
    }
    // Ranks that sort different key types of the same size get an error.
    if p > 1 {
        let res = if c.rank() == 0 {
            tessera::distributed::sort::dist_sort(
                c,
                vec![1.0f64],
                SortAlgo::Sample,
                tessera::Device::Cpu,
            )
            .map(drop)
        } else {
            tessera::distributed::sort::dist_sort(
                c,
                vec![1u64],
                SortAlgo::Sample,
                tessera::Device::Cpu,
            )
            .map(drop)
        };
        ensure!(
            matches!(res, Err(Error::Disagreement { .. })),
            "f64 and u64 keys mixed: {res:?}"
        );
    }
    // The balance bound holds on the worst input for it: every key equal.
    let n = 2000 * p;
    let keys: Vec<u32> = tessera::ops::generate::generate_keys(
        KeyDist::Equal,
        n,
        tessera::distributed::matrix::block_range(n, p, c.rank()),
        1,
    );
    let (sorted, _) =
        tessera::distributed::sort::dist_sort(c, keys, SortAlgo::Sample, tessera::Device::Cpu)
            .map_err(err)?;
    let most = c
        .all_reduce(&[sorted.len() as u64], ReduceOp::Max)
        .map_err(err)?[0] as usize;
    let bound = tessera::distributed::sort::balance_bound(n, p);
    ensure!(
        most <= bound,
        "all-equal keys: a rank holds {most} keys, over the bound {bound}"
    );
    Ok(())
}

fn sort_case<K: tessera::ops::sort::SortKey>(
    c: &Comm,
    algo: tessera::distributed::sort::SortAlgo,
    keys: &[K],
) -> Outcome {
    use tessera::distributed::sort::{dist_sort, fingerprint, verify_sorted};
    let what = format!("{algo:?} sort of {} keys", K::DTYPE);
    let before = fingerprint(c, keys).map_err(err)?;
    let (sorted, _) = dist_sort(c, keys.to_vec(), algo, tessera::Device::Cpu)
        .map_err(|e| format!("{what}: {e}"))?;
    let check = verify_sorted(c, &before, &sorted).map_err(err)?;
    ensure!(check.passed(), "{what}: verification failed: {check:?}");
    // Against the standard library's sort of the gathered input.
    let input = c.gather_v(keys, 0).map_err(err)?;
    let output = c.gather_v(&sorted, 0).map_err(err)?;
    if let (Some(input), Some(output)) = (input, output) {
        let mut want = input.data;
        want.sort_unstable_by_key(|k| k.to_bits());
        ensure!(
            want.len() == output.data.len(),
            "{what}: {} keys in, {} out",
            want.len(),
            output.data.len()
        );
        let same = want
            .iter()
            .zip(&output.data)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        ensure!(
            same,
            "{what}: differs from sort_unstable of the gathered input"
        );
    }
    Ok(())
}
