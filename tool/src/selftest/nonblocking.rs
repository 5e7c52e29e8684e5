//! Nonblocking point to point and collectives, cancelled and short
//! receives.

use tessera::Error;
use tessera::comm::{Comm, ReduceOp};

use super::{Outcome, err, f};

pub(super) fn nonblocking(c: &Comm) -> Outcome {
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
