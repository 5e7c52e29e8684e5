//! Point to point: blocking sends and receives, short buffers, any-source.

use tessera::Error;
use tessera::comm::{Comm, Source};

use super::{Outcome, err, f};

pub(super) fn p2p(c: &Comm) -> Outcome {
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
