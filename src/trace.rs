//! Per-rank spans: where each rank spent its time, as compute, communication
//! and waiting, and a Chrome trace of the whole job.
//!
//! Tessera's own code opens a span around every local computation (a GEMM,
//! a sort, a merge), every collective and transfer (with its bytes), and
//! every wait for a non-blocking operation. Recording is off by default: a
//! span then costs one relaxed atomic load. It is turned on for the whole
//! job by `TESSERA_TRACE=path.json` (or `--trace path.json`), which writes
//! one trace file that opens in Perfetto (<https://ui.perfetto.dev>) or
//! `chrome://tracing`: one track per rank, clocks aligned through MPI.
//!
//! ## What counts as waiting
//!
//! Every collective call is matched across the ranks of its communicator
//! (same communicator, same call number). The time a rank spends in it
//! before the *last* rank arrived is waiting (for that rank, named in the
//! trace); the rest is communication. For a non-blocking collective the
//! arrival is the moment it was posted, and only the time spent in `wait`
//! counts. Time in a point-to-point call is communication; time waiting for
//! a non-blocking point-to-point message is waiting. Time covered by no
//! span is reported as `other`.
//!
//! Spans are recorded on the thread that started the recording (the thread
//! that drives MPI); work on rayon's threads is covered by the span that
//! launched it.
//!
//! ```no_run
//! tessera::spmd(|world| {
//!     tessera::trace::begin(world, None)?;
//!     let start = tessera::trace::mark();
//!     {
//!         let _s = tessera::trace::compute("my step");
//!         // ... local work ...
//!     }
//!     world.barrier()?;
//!     let split = tessera::trace::split(world, start)?;
//!     if world.rank() == 0 {
//!         for r in &split {
//!             println!("rank {}: compute {:.3} s, wait {:.3} s", r.rank, r.compute, r.wait);
//!         }
//!     }
//!     tessera::trace::end(world)?;
//!     Ok(())
//! });
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::comm::Comm;
use crate::error::{Error, Result};

/// The environment variable that turns tracing on for a whole job:
/// `TESSERA_TRACE=path.json`.
pub const TRACE_ENV: &str = "TESSERA_TRACE";

/// Whether any thread records spans. Read on every span; written only by
/// [`begin`] and [`end`].
static RECORDING: AtomicBool = AtomicBool::new(false);

thread_local! {
    static RECORDER: RefCell<Option<Recorder>> = const { RefCell::new(None) };
}

/// What a span's time is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Local computation.
    Compute,
    /// A collective or a message (refined into waiting where ranks arrived
    /// at different times).
    Comm,
    /// Waiting for a message or a request.
    Wait,
    /// Copies between host and device memory.
    Copy,
    /// A named region that groups other spans; its own time is `other`.
    Region,
}

/// The identity of one collective call, the same on every rank that takes
/// part: the communicator's trace id, its size, and the call's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Link {
    pub(crate) comm: u64,
    pub(crate) size: u32,
    pub(crate) seq: u64,
}

/// One recorded span, in nanoseconds of this process's clock.
#[derive(Debug, Clone)]
struct Event {
    name: &'static str,
    cat: Category,
    start: u64,
    end: Option<u64>,
    bytes: u64,
    link: Option<Link>,
    /// When the operation was posted (its start, except for the wait of a
    /// non-blocking operation).
    posted: u64,
}

struct Recorder {
    origin: Instant,
    events: Vec<Event>,
    /// This clock minus rank 0's, measured at [`begin`].
    offset_begin: i64,
    begun_at: u64,
    file: Option<PathBuf>,
}

impl Recorder {
    fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
}

/// Whether spans are being recorded (on this thread).
pub fn active() -> bool {
    RECORDING.load(Ordering::Relaxed) && RECORDER.with(|r| r.borrow().is_some())
}

/// An open span; it ends when dropped.
#[must_use = "a span ends when dropped: bind it with `let _span = ...`"]
pub struct Span {
    index: Option<usize>,
}

impl Span {
    const NONE: Span = Span { index: None };

    /// When the span's operation was posted and which collective call it is,
    /// for the wait of a non-blocking operation to refer back to.
    pub(crate) fn posted(&self) -> Option<Posted> {
        let index = self.index?;
        RECORDER.with(|r| {
            let r = r.borrow();
            let e = r.as_ref()?.events.get(index)?;
            Some(Posted {
                link: e.link,
                at: e.posted,
                bytes: e.bytes,
            })
        })
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(index) = self.index {
            RECORDER.with(|r| {
                if let Some(rec) = r.borrow_mut().as_mut() {
                    let now = rec.now();
                    if let Some(e) = rec.events.get_mut(index) {
                        e.end = Some(now);
                    }
                }
            });
        }
    }
}

/// Where and when a non-blocking operation was posted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Posted {
    link: Option<Link>,
    at: u64,
    bytes: u64,
}

fn open(
    name: &'static str,
    cat: Category,
    bytes: u64,
    link: Option<Link>,
    posted: Option<u64>,
) -> Span {
    if !RECORDING.load(Ordering::Relaxed) {
        return Span::NONE;
    }
    RECORDER.with(|r| {
        let mut r = r.borrow_mut();
        let Some(rec) = r.as_mut() else {
            return Span::NONE;
        };
        let start = rec.now();
        rec.events.push(Event {
            name,
            cat,
            start,
            end: None,
            bytes,
            link,
            posted: posted.unwrap_or(start),
        });
        Span {
            index: Some(rec.events.len() - 1),
        }
    })
}

/// Opens a compute span (local work).
pub fn compute(name: &'static str) -> Span {
    open(name, Category::Compute, 0, None, None)
}

/// Opens a span for a copy of `bytes` between host and device.
pub fn copy(name: &'static str, bytes: usize) -> Span {
    open(name, Category::Copy, bytes as u64, None, None)
}

/// Opens a region: a span that groups others (its own time is `other`).
pub fn region(name: &'static str) -> Span {
    open(name, Category::Region, 0, None, None)
}

/// Opens a span for a message or collective moving `bytes` from this rank.
pub(crate) fn comm(name: &'static str, bytes: usize, link: Option<Link>) -> Span {
    open(name, Category::Comm, bytes as u64, link, None)
}

/// Opens a span for the wait of a non-blocking operation posted earlier.
pub(crate) fn wait_for(name: &'static str, posted: Option<Posted>) -> Span {
    match posted {
        Some(p) if p.link.is_some() => open(name, Category::Comm, p.bytes, p.link, Some(p.at)),
        Some(p) => open(name, Category::Wait, p.bytes, None, None),
        None => open(name, Category::Wait, 0, None, None),
    }
}

/// A point in the recording, from which [`split`] accounts the time.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    event: usize,
    at: u64,
}

/// The current point in the recording (the start when not recording).
pub fn mark() -> Mark {
    RECORDER.with(|r| match r.borrow().as_ref() {
        Some(rec) => Mark {
            event: rec.events.len(),
            at: rec.now(),
        },
        None => Mark { event: 0, at: 0 },
    })
}

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
        .all_reduce(&[u8::from(already)], crate::comm::ReduceOp::Min)?[0]
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
    match std::env::var_os(TRACE_ENV) {
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

/// Where one rank's time went between a [`Mark`] and [`split`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RankSplit {
    /// The rank (in the communicator passed to [`split`]).
    pub rank: usize,
    /// Seconds from the mark to the call to [`split`].
    pub elapsed: f64,
    /// Seconds of local computation.
    pub compute: f64,
    /// Seconds moving data (collectives, messages), waiting excluded.
    pub comm: f64,
    /// Seconds waiting for other ranks or for messages.
    pub wait: f64,
    /// Seconds copying between host and device.
    pub copy: f64,
    /// Seconds in no span (the rest of `elapsed`).
    pub other: f64,
    /// Bytes this rank sent in collectives and messages.
    pub bytes: u64,
}

/// One event as it travels to rank 0: times in nanoseconds of rank 0's
/// clock.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Wire {
    name: String,
    cat: Category,
    start: i64,
    end: i64,
    bytes: u64,
    link: Option<Link>,
    posted: i64,
}

/// One rank's events and interval, on rank 0's clock.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RankTrace {
    rank: usize,
    host: String,
    from: i64,
    to: i64,
    events: Vec<Wire>,
}

/// Pauses recording while the closure runs (so that the trace's own
/// messages are not traced).
fn paused<R>(f: impl FnOnce() -> R) -> R {
    let was = RECORDING.swap(false, Ordering::Relaxed);
    let out = f();
    RECORDING.store(was, Ordering::Relaxed);
    out
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

/// A stretch of a span spent waiting: the event's index, start, end, and
/// the rank that arrived last.
type WaitSlice = (usize, i64, i64, usize);

/// Per collective call: the time the last rank arrived and which rank.
type Arrivals = HashMap<(u64, u64), (i64, usize, u32)>;

fn arrivals(traces: &[RankTrace]) -> Arrivals {
    let mut last: Arrivals = HashMap::new();
    for t in traces {
        // A post and its wait share a link: count each rank once per call.
        let mut counted = std::collections::HashSet::new();
        for e in &t.events {
            if let Some(l) = e.link {
                let entry = last.entry((l.comm, l.seq)).or_insert((i64::MIN, t.rank, 0));
                if e.posted > entry.0 {
                    entry.0 = e.posted;
                    entry.1 = t.rank;
                }
                if counted.insert((l.comm, l.seq)) {
                    entry.2 += 1;
                }
            }
        }
    }
    last
}

/// The moment before which time in `e` is waiting for a later rank, and
/// that rank, when every rank of the call was recorded.
fn wait_until(e: &Wire, arrivals: &Arrivals) -> Option<(i64, usize)> {
    let l = e.link?;
    let &(last, who, count) = arrivals.get(&(l.comm, l.seq))?;
    (count == l.size && last > e.start).then_some((last, who))
}

/// A span's own time (not covered by its children), split by category.
fn account(
    events: &[Wire],
    arrivals: &Arrivals,
    split: &mut RankSplit,
    from: i64,
    to: i64,
) -> Vec<WaitSlice> {
    // Sorted by start, longest first: a parent precedes its children.
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| (events[i].start, std::cmp::Reverse(events[i].end)));
    let mut waits = Vec::new();
    // Each open span with the end of the last child seen.
    let mut stack: Vec<(usize, i64)> = Vec::new();
    let close = |idx: usize, cursor: i64, end: i64, split: &mut RankSplit| {
        add_own(&events[idx], cursor, end, arrivals, split, from, to);
    };
    for &i in &order {
        let e = &events[i];
        while let Some(&(top, cursor)) = stack.last() {
            if events[top].end <= e.start {
                close(top, cursor, events[top].end, split);
                stack.pop();
                if let Some(parent) = stack.last_mut() {
                    parent.1 = parent.1.max(events[top].end);
                }
            } else {
                break;
            }
        }
        if let Some(parent) = stack.last_mut() {
            // The parent's own time up to this child.
            let (p, cursor) = *parent;
            add_own(&events[p], cursor, e.start, arrivals, split, from, to);
            parent.1 = parent.1.max(e.end.min(events[p].end));
        }
        if e.cat != Category::Region {
            if let Some((until, who)) = wait_until(e, arrivals) {
                waits.push((i, e.start, until.min(e.end), who));
            }
            let inside_comm = stack.iter().any(|&(p, _)| events[p].cat == Category::Comm);
            if e.cat == Category::Comm && e.posted == e.start && !inside_comm {
                split.bytes += e.bytes;
            }
        }
        stack.push((i, e.start));
    }
    while let Some((top, cursor)) = stack.pop() {
        close(top, cursor, events[top].end, split);
        if let Some(parent) = stack.last_mut() {
            parent.1 = parent.1.max(events[top].end);
        }
    }
    // A wait slice ends where the span's first child starts (the child has
    // its own), so that slices nest in the trace.
    let mut position = vec![0; events.len()];
    for (k, &i) in order.iter().enumerate() {
        position[i] = k;
    }
    for w in &mut waits {
        if let Some(&next) = order.get(position[w.0] + 1)
            && events[next].start < events[w.0].end
        {
            w.2 = w.2.min(events[next].start);
        }
    }
    waits.retain(|w| w.2 > w.1);
    waits
}

/// Adds the part of `[a, b)` inside `[from, to)` of event `e`'s own time to
/// its category (waiting before the last rank's arrival).
fn add_own(
    e: &Wire,
    a: i64,
    b: i64,
    arrivals: &Arrivals,
    split: &mut RankSplit,
    from: i64,
    to: i64,
) {
    let (a, b) = (a.max(from), b.min(to));
    if b <= a {
        return;
    }
    let secs = |ns: i64| ns as f64 * 1e-9;
    let mut rest = (a, b);
    if let Some((until, _)) = wait_until(e, arrivals) {
        let w = (until.min(b) - a).max(0);
        split.wait += secs(w);
        rest.0 = a + w;
    }
    let own = secs(rest.1 - rest.0);
    match e.cat {
        Category::Compute => split.compute += own,
        Category::Comm => split.comm += own,
        Category::Wait => split.wait += own,
        Category::Copy => split.copy += own,
        Category::Region => {}
    }
}

/// The split of every rank's time from gathered traces, in rank order, and
/// for each rank the wait sub-spans (event index, start, end, late rank).
fn splits(traces: &[RankTrace]) -> (Vec<RankSplit>, Vec<Vec<WaitSlice>>) {
    let arrivals = arrivals(traces);
    let mut out = Vec::with_capacity(traces.len());
    let mut waits = Vec::with_capacity(traces.len());
    for t in traces {
        let mut s = RankSplit {
            rank: t.rank,
            elapsed: (t.to - t.from).max(0) as f64 * 1e-9,
            ..RankSplit::default()
        };
        waits.push(account(&t.events, &arrivals, &mut s, t.from, t.to));
        s.other = (s.elapsed - s.compute - s.comm - s.wait - s.copy).max(0.0);
        out.push(s);
    }
    (out, waits)
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

/// The largest value of `part` over the ranks.
pub fn slowest(split: &[RankSplit], part: impl Fn(&RankSplit) -> f64) -> f64 {
    split.iter().map(part).fold(0.0, f64::max)
}

/// The split as lines of text: mean and slowest rank per category.
pub fn render_split(split: &[RankSplit]) -> String {
    if split.is_empty() {
        return String::new();
    }
    let n = split.len() as f64;
    let row = |label: &str, part: &dyn Fn(&RankSplit) -> f64| {
        let mean = split.iter().map(part).sum::<f64>() / n;
        let (who, max) = split
            .iter()
            .map(|r| (r.rank, part(r)))
            .fold((0, f64::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a });
        format!("  {label:<8} {mean:>10.4} s mean   {max:>10.4} s max (rank {who})\n")
    };
    let mut out = String::from("time split over ranks (from trace spans):\n");
    out += &row("compute", &|r| r.compute);
    out += &row("comm", &|r| r.comm);
    out += &row("wait", &|r| r.wait);
    if split.iter().any(|r| r.copy > 0.0) {
        out += &row("copy", &|r| r.copy);
    }
    out += &row("other", &|r| r.other);
    out
}

/// Stops recording (collective). When a file was given to [`begin`] (or by
/// `TESSERA_TRACE`), rank 0 writes the Chrome trace of the whole recording
/// there and the path is returned on rank 0.
pub fn end(world: &Comm) -> Result<Option<PathBuf>> {
    let file = RECORDER.with(|r| r.borrow().as_ref().and_then(|rec| rec.file.clone()));
    let wants = world
        .unchecked()
        .all_reduce(&[u8::from(file.is_some())], crate::comm::ReduceOp::Max)?[0]
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

/// Writes gathered traces as a Chrome trace (JSON object format): one
/// process per rank named `rank R (HOST)`, complete (`X`) events in
/// microseconds of rank 0's clock, waits as child spans naming the rank that
/// arrived last, and each rank's split in its process label.
fn write_chrome(traces: &[RankTrace], path: &Path) -> Result<()> {
    use serde_json::{Value, json};
    let (splits, waits) = splits(traces);
    let zero = traces.iter().map(|t| t.from).min().unwrap_or(0);
    let us = |ns: i64| (ns - zero) as f64 / 1000.0;
    let mut out: Vec<Value> = Vec::new();
    for (t, (s, w)) in traces.iter().zip(splits.iter().zip(&waits)) {
        out.push(
            json!({"ph": "M", "name": "process_name", "pid": t.rank, "tid": 0,
            "args": {"name": format!("rank {} ({})", t.rank, t.host)}}),
        );
        out.push(
            json!({"ph": "M", "name": "process_sort_index", "pid": t.rank, "tid": 0,
            "args": {"sort_index": t.rank}}),
        );
        out.push(json!({"ph": "M", "name": "thread_name", "pid": t.rank, "tid": 0,
            "args": {"name": format!("compute {:.3} s, comm {:.3} s, wait {:.3} s", s.compute, s.comm, s.wait)}}));
        for e in &t.events {
            let mut args = serde_json::Map::new();
            if e.bytes > 0 {
                args.insert("bytes".into(), json!(e.bytes));
            }
            if let Some(l) = e.link {
                args.insert("comm".into(), json!(format!("{:016x}", l.comm)));
                args.insert("call".into(), json!(l.seq));
            }
            out.push(
                json!({"ph": "X", "name": e.name, "cat": e.cat, "pid": t.rank, "tid": 0,
                "ts": us(e.start), "dur": (e.end - e.start).max(0) as f64 / 1000.0, "args": args}),
            );
        }
        for &(_, a, b, who) in w {
            if b > a {
                out.push(
                    json!({"ph": "X", "name": format!("wait for rank {who}"), "cat": "wait",
                    "pid": t.rank, "tid": 0, "ts": us(a), "dur": (b - a) as f64 / 1000.0,
                    "args": {"late_rank": who}}),
                );
            }
        }
    }
    let doc = json!({"traceEvents": out, "displayTimeUnit": "ms",
        "otherData": {"tool": "tessera", "ranks": traces.len()}});
    let text = serde_json::to_vec(&doc).map_err(|e| Error::Trace(e.to_string()))?;
    std::fs::write(path, text).map_err(|e| {
        Error::io(
            format!(
                "writing the trace to {} (pass a writable path to TESSERA_TRACE or --trace)",
                path.display()
            ),
            e,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &str, cat: Category, start: i64, end: i64, link: Option<Link>) -> Wire {
        Wire {
            name: name.into(),
            cat,
            start,
            end,
            bytes: 0,
            link,
            posted: start,
        }
    }

    /// One rank's trace over [0, 100) ns.
    fn on_rank(rank: usize, events: Vec<Wire>) -> RankTrace {
        RankTrace {
            rank,
            host: "h".into(),
            from: 0,
            to: 100,
            events,
        }
    }

    fn link(seq: u64) -> Option<Link> {
        Some(Link {
            comm: 7,
            size: 2,
            seq,
        })
    }

    #[test]
    fn nested_time_goes_to_the_innermost_span() {
        // region [0,100) holding compute [10,40) and comm [50,90) with a
        // nested comm [60,70); 10+10+10 ns of region own time is other.
        let t = on_rank(
            0,
            vec![
                ev("r", Category::Region, 0, 100, None),
                ev("c", Category::Compute, 10, 40, None),
                ev("b", Category::Comm, 50, 90, None),
                ev("check", Category::Comm, 60, 70, None),
            ],
        );
        let (s, _) = splits(&[t]);
        let s = &s[0];
        assert!((s.compute - 30e-9).abs() < 1e-15, "{s:?}");
        assert!((s.comm - 40e-9).abs() < 1e-15, "{s:?}");
        assert!((s.other - 30e-9).abs() < 1e-15, "{s:?}");
        assert_eq!(s.wait, 0.0);
    }

    /// Rank 1: computes until 60, then enters collective 0 until 80.
    fn s_b() -> RankTrace {
        on_rank(
            1,
            vec![
                ev("gemm", Category::Compute, 0, 60, None),
                ev("all_reduce", Category::Comm, 60, 80, link(0)),
            ],
        )
    }

    #[test]
    fn time_before_the_last_arrival_is_waiting() {
        // Rank 0 enters the collective at 10, rank 1 at 60; both leave at 80.
        let a = on_rank(0, vec![ev("all_reduce", Category::Comm, 10, 80, link(0))]);
        let (s, waits) = splits(&[a, s_b()]);
        assert!((s[0].wait - 50e-9).abs() < 1e-15, "{:?}", s[0]);
        assert!((s[0].comm - 20e-9).abs() < 1e-15, "{:?}", s[0]);
        assert_eq!(s[1].wait, 0.0);
        assert!((s[1].compute - 60e-9).abs() < 1e-15);
        assert_eq!(waits[0], vec![(0, 10, 60, 1)]);
        // With a child starting at 30, the slice stops there.
        let a2 = on_rank(
            0,
            vec![
                ev("all_reduce", Category::Comm, 10, 80, link(0)),
                ev("inner", Category::Comm, 30, 40, None),
            ],
        );
        let (_, waits) = splits(&[a2, s_b()]);
        assert_eq!(waits[0], vec![(0, 10, 30, 1)]);
        assert!(waits[1].is_empty());
    }

    #[test]
    fn a_non_blocking_wait_waits_only_for_ranks_that_posted_late() {
        // Rank 0 posts at 0 and waits from 50 to 90; rank 1 posts at 70.
        let mut w0 = ev("wait ibroadcast", Category::Comm, 50, 90, link(3));
        w0.posted = 0;
        let a = on_rank(0, vec![ev("ibroadcast", Category::Comm, 0, 1, link(3)), w0]);
        let b = on_rank(1, vec![ev("ibroadcast", Category::Comm, 70, 71, link(3))]);
        let (s, _) = splits(&[a, b]);
        // Post [0,1): waiting (before 70); wait [50,90): 20 waiting, 20 comm.
        assert!((s[0].wait - 21e-9).abs() < 1e-15, "{:?}", s[0]);
        assert!((s[0].comm - 20e-9).abs() < 1e-15, "{:?}", s[0]);
    }

    #[test]
    fn a_call_not_seen_on_every_rank_is_all_communication() {
        let a = on_rank(0, vec![ev("x", Category::Comm, 10, 80, link(9))]);
        let (s, _) = splits(&[a]);
        assert_eq!(s[0].wait, 0.0);
        assert!((s[0].comm - 70e-9).abs() < 1e-15);
    }

    #[test]
    fn spans_off_cost_nothing_and_record_nothing() {
        assert!(!active());
        let s = compute("x");
        assert!(s.index.is_none());
        assert!(s.posted().is_none());
    }
}
