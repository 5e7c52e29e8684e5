//! The span recorder: this rank's spans, on the thread that started the
//! recording. Knows nothing of MPI; [`crate::comm::trace`] starts and ends
//! recordings and gathers them.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Whether any thread records spans. Read on every span; written only by
/// [`crate::comm::trace::begin`] and [`crate::comm::trace::end`].
pub(crate) static RECORDING: AtomicBool = AtomicBool::new(false);

thread_local! {
    pub(crate) static RECORDER: RefCell<Option<Recorder>> = const { RefCell::new(None) };
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
pub(crate) struct Event {
    pub(crate) name: &'static str,
    pub(crate) cat: Category,
    pub(crate) start: u64,
    pub(crate) end: Option<u64>,
    pub(crate) bytes: u64,
    pub(crate) link: Option<Link>,
    /// When the operation was posted (its start, except for the wait of a
    /// non-blocking operation).
    pub(crate) posted: u64,
}

pub(crate) struct Recorder {
    pub(crate) origin: Instant,
    pub(crate) events: Vec<Event>,
    /// This clock minus rank 0's, measured at [`crate::comm::trace::begin`].
    pub(crate) offset_begin: i64,
    pub(crate) begun_at: u64,
    pub(crate) file: Option<PathBuf>,
}

impl Recorder {
    pub(crate) fn now(&self) -> u64 {
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
    pub(crate) link: Option<Link>,
    pub(crate) at: u64,
    pub(crate) bytes: u64,
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

/// A point in the recording, from which [`crate::comm::trace::split`]
/// accounts the time.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    pub(crate) event: usize,
    pub(crate) at: u64,
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

/// Pauses recording while the closure runs (so that the trace's own
/// messages are not traced).
pub(crate) fn paused<R>(f: impl FnOnce() -> R) -> R {
    let was = RECORDING.swap(false, Ordering::Relaxed);
    let out = f();
    RECORDING.store(was, Ordering::Relaxed);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_off_cost_nothing_and_record_nothing() {
        assert!(!active());
        let s = compute("x");
        assert!(s.index.is_none());
        assert!(s.posted().is_none());
    }
}
