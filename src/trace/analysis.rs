//! Where each rank's time went, from gathered traces: compute,
//! communication, waiting (for the rank that arrived last), copies; and the
//! Chrome trace of the job. Pure functions of the traces: no MPI here.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::span::{Category, Link};
use crate::error::{Error, Result};

/// Where one rank's time went between a [`Mark`](super::Mark) and
/// [`crate::comm::trace::split`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RankSplit {
    /// The rank (in the communicator passed to [`crate::comm::trace::split`]).
    pub rank: usize,
    /// Seconds from the mark to the call to [`crate::comm::trace::split`].
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
pub(crate) struct Wire {
    pub(crate) name: String,
    pub(crate) cat: Category,
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) bytes: u64,
    pub(crate) link: Option<Link>,
    pub(crate) posted: i64,
}

/// One rank's events and interval, on rank 0's clock.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RankTrace {
    pub(crate) rank: usize,
    pub(crate) host: String,
    pub(crate) from: i64,
    pub(crate) to: i64,
    pub(crate) events: Vec<Wire>,
}

/// A stretch of a span spent waiting: the event's index, start, end, and
/// the rank that arrived last.
pub(crate) type WaitSlice = (usize, i64, i64, usize);

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
pub(crate) fn splits(traces: &[RankTrace]) -> (Vec<RankSplit>, Vec<Vec<WaitSlice>>) {
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

/// Writes gathered traces as a Chrome trace (JSON object format): one
/// process per rank named `rank R (HOST)`, complete (`X`) events in
/// microseconds of rank 0's clock, waits as child spans naming the rank that
/// arrived last, and each rank's split in its process label.
pub(crate) fn write_chrome(traces: &[RankTrace], path: &Path) -> Result<()> {
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
}
