//! Tracing across ranks: starting and ending a recording on every rank,
//! aligning their clocks to rank 0's, and gathering the spans to split each
//! rank's time (see [`crate::trace`] for what the split means).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Comm, ReduceOp};
use crate::error::{Error, Result};
use crate::trace::analysis::{RankSplit, RankTrace, Wire, splits, write_chrome};
use crate::trace::span::{Mark, RECORDER, RECORDING, Recorder, active, mark, paused};

/// Tag of the clock-alignment messages (on the unchecked world).
const CLOCK_TAG: i32 = 32_007;
/// Ping-pongs per rank; the one with the shortest round trip is used.
const CLOCK_ROUNDS: usize = 8;

/// This rank's clock minus rank 0's, in nanoseconds (collective): Cristian's
/// method, the ping-pong with the shortest round trip of several.
fn clock_offset(world: &Comm, origin: Instant) -> Result<i64> {
    let w = world.unchecked();
    let now = || origin.elapsed().as_nanos() as i64;
    if w.rank() == 0 {
        for peer in 1..w.size() {
            for _ in 0..CLOCK_ROUNDS {
                let mut ping = [0i64; 1];
                w.receive_into(&mut ping, peer, CLOCK_TAG)?;
                w.send(&[now()], peer, CLOCK_TAG)?;
            }
        }
        Ok(0)
    } else {
        let mut best = (i64::MAX, 0i64);
        for _ in 0..CLOCK_ROUNDS {
            let t1 = now();
            w.send(&[t1], 0, CLOCK_TAG)?;
            let mut reply = [0i64; 1];
            w.receive_into(&mut reply, 0, CLOCK_TAG)?;
            let t2 = now();
            let rtt = t2 - t1;
            if rtt < best.0 {
                best = (rtt, (t1 + t2) / 2 - reply[0]);
            }
        }
        Ok(best.1)
    }
}

/// Starts recording spans on every rank (collective): aligns the clocks of
/// all ranks to rank 0's through MPI, then records on this thread until
/// [`end`]. With `file`, [`end`] writes the Chrome trace there. When
/// recording is already on, only sets the file (if none was set).
pub fn begin(world: &Comm, file: Option<PathBuf>) -> Result<()> {
    let already = RECORDER.with(|r| {
        let mut r = r.borrow_mut();
        match r.as_mut() {
            Some(rec) => {
                if rec.file.is_none() {
                    rec.file = file.clone();
                }
                true
            }
            None => false,
        }
    });
    let already = world
        .unchecked()
        .all_reduce(&[u8::from(already)], ReduceOp::Min)?[0]
        == 1;
    if already {
        return Ok(());
    }
    let origin = Instant::now();
    let offset = clock_offset(world, origin)?;
    RECORDER.with(|r| {
        *r.borrow_mut() = Some(Recorder {
            origin,
            events: Vec::new(),
            offset_begin: offset,
            begun_at: origin.elapsed().as_nanos() as u64,
            file,
        })
    });
    RECORDING.store(true, Ordering::Relaxed);
    Ok(())
}

/// Starts recording when `TESSERA_TRACE` names a file (collective).
pub fn begin_from_env(world: &Comm) -> Result<()> {
    match std::env::var_os(crate::env::TRACE) {
        Some(path) if !path.is_empty() => begin(world, Some(PathBuf::from(path))),
        _ => Ok(()),
    }
}

/// Runs a whole program's `body` (collective) with the job's trace: into
/// `file`, else where `TESSERA_TRACE` says, else not at all. After `body`
/// succeeds, rank 0 writes the trace and says where on standard error.
pub fn run_traced<R>(
    world: &Comm,
    file: Option<PathBuf>,
    body: impl FnOnce() -> Result<R>,
) -> Result<R> {
    match file {
        Some(path) => begin(world, Some(path))?,
        None => begin_from_env(world)?,
    }
    let out = body()?;
    if let Some(path) = end(world)? {
        eprintln!(
            "trace of {} ranks written to {}",
            world.size(),
            path.display()
        );
    }
    Ok(out)
}

/// This rank's events since `since`, on rank 0's clock: the offset is
/// measured again now and interpolated linearly from the one at [`begin`],
/// which corrects a drift between the hosts' clocks.
fn collect(world: &Comm, since: Mark) -> Result<RankTrace> {
    let origin = RECORDER.with(|r| r.borrow().as_ref().map(|rec| rec.origin));
    let Some(origin) = origin else {
        // Not recording here: take part in the offset exchange anyway.
        clock_offset(world, Instant::now())?;
        return Ok(RankTrace {
            rank: world.rank(),
            host: world.host().to_string(),
            from: 0,
            to: 0,
            events: Vec::new(),
        });
    };
    let offset_end = clock_offset(world, origin)?;
    RECORDER.with(|r| {
        let r = r.borrow();
        let rec = r.as_ref().expect("checked above");
        let now = rec.now();
        let (t0, o0) = (rec.begun_at as f64, rec.offset_begin as f64);
        let slope = if now as f64 > t0 {
            (offset_end as f64 - o0) / (now as f64 - t0)
        } else {
            0.0
        };
        let map = |t: u64| (t as f64 - (o0 + slope * (t as f64 - t0))).round() as i64;
        let events = rec.events[since.event.min(rec.events.len())..]
            .iter()
            .map(|e| Wire {
                name: e.name.to_string(),
                cat: e.cat,
                start: map(e.start),
                end: map(e.end.unwrap_or(now)),
                bytes: e.bytes,
                link: e.link,
                posted: map(e.posted),
            })
            .collect();
        Ok(RankTrace {
            rank: world.rank(),
            host: world.host().to_string(),
            from: map(since.at.max(rec.begun_at)),
            to: map(now),
            events,
        })
    })
}

/// Every rank's trace since `since`, on rank 0 (collective); `None` on the
/// other ranks.
fn gather(world: &Comm, since: Mark) -> Result<Option<Vec<RankTrace>>> {
    paused(|| {
        let mine = collect(world, since)?;
        let bytes = serde_json::to_vec(&mine).map_err(|e| Error::Trace(e.to_string()))?;
        let all = world.unchecked().gather_v(&bytes, 0)?;
        let Some(all) = all else { return Ok(None) };
        all.parts()
            .map(|part| serde_json::from_slice(part).map_err(|e| Error::Trace(e.to_string())))
            .collect::<Result<Vec<RankTrace>>>()
            .map(Some)
    })
}

/// Where every rank's time went since `since` (collective): the same vector
/// on every rank, in rank order. All zeros (but `elapsed`) when not
/// recording.
pub fn split(world: &Comm, since: Mark) -> Result<Vec<RankSplit>> {
    let traces = gather(world, since)?;
    let fields = 8;
    let mut flat = vec![0f64; world.size() * fields];
    if let Some(traces) = traces {
        let (s, _) = splits(&traces);
        for r in s {
            let row = &mut flat[r.rank * fields..(r.rank + 1) * fields];
            row.copy_from_slice(&[
                r.elapsed,
                r.compute,
                r.comm,
                r.wait,
                r.copy,
                r.other,
                r.bytes as f64,
                0.0,
            ]);
        }
    }
    paused(|| world.unchecked().broadcast(&mut flat, 0))?;
    Ok(flat
        .chunks(fields)
        .enumerate()
        .map(|(rank, f)| RankSplit {
            rank,
            elapsed: f[0],
            compute: f[1],
            comm: f[2],
            wait: f[3],
            copy: f[4],
            other: f[5],
            bytes: f[6] as u64,
        })
        .collect())
}

/// Runs `body` (collective) with spans recorded, and returns its result
/// with every rank's split of the time it took. Recording is started for
/// the call when it is off (and stopped after), so a program pays for spans
/// only where it asks for the split.
pub fn measured<R>(world: &Comm, body: impl FnOnce() -> Result<R>) -> Result<(R, Vec<RankSplit>)> {
    let owned = !active();
    if owned {
        begin(world, None)?;
    }
    let since = mark();
    let out = body()?;
    let split = split(world, since)?;
    if owned {
        end(world)?;
    }
    Ok((out, split))
}

/// One section timed by [`timed`], as written to `TESSERA_TIMED_FILE`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TimedSection {
    /// Seconds from the barrier before the section to its end on the
    /// slowest rank.
    pub seconds: f64,
    /// Every rank's split of the section (compute, communication, waiting).
    pub split: Vec<RankSplit>,
}

/// Runs `body` as the program's timed section (collective): the ranks meet
/// in a barrier, `body` runs, and the section's time is that of the slowest
/// rank, returned with the result and every rank's split of it.
///
/// This is how a program tells `tessera scaling` which part of it to time:
/// without a timed section the harness can only time whole runs, start-up
/// of MPI included. When `TESSERA_TIMED_FILE` is set (the harness sets it
/// for each run), rank 0 appends the section to that file as one JSON line;
/// a run with several sections is timed as their sum.
///
/// ```
/// tessera::spmd(|world| {
///     let data = vec![1.0f64; 1000];
///     let (sum, section) = tessera::comm::trace::timed(world, || {
///         Ok(world.all_reduce(&[data.iter().sum::<f64>()], tessera::comm::ReduceOp::Sum)?[0])
///     })?;
///     assert!(section.seconds >= 0.0 && sum > 0.0);
///     Ok(())
/// });
/// ```
pub fn timed<R>(world: &Comm, body: impl FnOnce() -> Result<R>) -> Result<(R, TimedSection)> {
    world.barrier()?;
    let ((out, mine), split) = measured(world, || {
        let start = super::wtime();
        let out = body()?;
        Ok((out, super::wtime() - start))
    })?;
    let seconds = world.all_reduce(&[mine], ReduceOp::Max)?[0];
    let section = TimedSection { seconds, split };
    if world.rank() == 0
        && let Some(path) = std::env::var_os(crate::env::TIMED_FILE).filter(|p| !p.is_empty())
    {
        use std::io::Write as _;
        let line = serde_json::to_string(&section).map_err(|e| Error::Trace(e.to_string()))?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()))
            .map_err(|e| {
                Error::io(
                    format!(
                        "appending the timed section to {} ({})",
                        std::path::Path::new(&path).display(),
                        crate::env::TIMED_FILE
                    ),
                    e,
                )
            })?;
    }
    Ok((out, section))
}

/// Stops recording (collective). When a file was given to [`begin`] (or by
/// `TESSERA_TRACE`), rank 0 writes the Chrome trace of the whole recording
/// there and the path is returned on rank 0.
pub fn end(world: &Comm) -> Result<Option<PathBuf>> {
    let file = RECORDER.with(|r| r.borrow().as_ref().and_then(|rec| rec.file.clone()));
    let wants = world
        .unchecked()
        .all_reduce(&[u8::from(file.is_some())], ReduceOp::Max)?[0]
        == 1;
    let mut written = None;
    if wants {
        let traces = gather(world, Mark { event: 0, at: 0 })?;
        if let (Some(traces), Some(path)) = (traces, file) {
            write_chrome(&traces, &path)?;
            written = Some(path);
        }
    }
    RECORDING.store(false, Ordering::Relaxed);
    RECORDER.with(|r| *r.borrow_mut() = None);
    Ok(written)
}
