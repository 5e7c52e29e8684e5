//! Non-blocking messages and collectives with owned buffers (MPI 4.1 §3.7,
//! §6.12).
//!
//! Each call takes its buffers by value and returns a [`Request`] that owns
//! them until the operation completes; [`Request::wait`] hands the result
//! back. Owning the buffers is what makes this sound in safe Rust: MPI may
//! write into them until completion, and nothing else can touch them
//! meanwhile. A request dropped without `wait` waits in its destructor; one
//! leaked with `mem::forget` leaks its buffers too, so MPI never writes into
//! freed memory.
//!
//! In checked mode the agreement check is made, blocking, when the
//! collective is posted; the transfer itself overlaps with whatever the
//! caller does until `wait`.

use std::os::raw::c_int;

use bytemuck::Pod;
use mpi::ffi;

use super::Comm;
use super::check::Signature;
use super::collective::{Varying, equal_parts};
use super::datatype::{
    ReduceOp, Reducible, check_reduction, element_datatype, recv_ptr, send_ptr, to_count,
};
use super::p2p::{Source, Status, empty_status, received_count};
use crate::error::{Error, Result};
use crate::trace;

type Finish<R> = Box<dyn FnOnce(&ffi::MPI_Status) -> Result<R>>;

/// What a request does, which decides what dropping it unwaited does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A point-to-point receive: can be cancelled.
    Receive,
    /// A send or a collective: cannot be cancelled.
    Other,
}

/// A pending non-blocking operation that owns its buffers. Call
/// [`Request::wait`] to complete it and get the result back.
///
/// Dropping a request that has not completed never blocks (a job that is
/// failing must not hang in a destructor): a pending receive is cancelled
/// (`MPI_Cancel`); any other pending operation keeps its buffers forever
/// (they are leaked, so MPI may still write into them safely), and MPI
/// completes it in the background.
#[must_use = "a request owns its buffers until it is waited: call .wait()"]
pub struct Request<R> {
    raw: ffi::MPI_Request,
    kind: Kind,
    /// Set once MPI reported completion through `test`.
    done: Option<ffi::MPI_Status>,
    /// Set when `test` saw the operation fail; `wait` returns it.
    failed: Option<Error>,
    finish: Option<Finish<R>>,
    /// The name of the wait span and when and where the operation was
    /// posted, while tracing.
    trace: Option<(&'static str, Option<trace::Posted>)>,
    /// Counted in [`pending_requests`] until MPI has completed it.
    pending: bool,
    /// Keeps MPI initialised while the request is pending.
    _comm: Comm,
}

/// Requests posted through Tessera that MPI has not completed yet.
static PENDING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The number of non-blocking operations this process posted through
/// Tessera that MPI has not completed: 0 once every [`Request`] has been
/// waited or tested to completion. A request dropped while its operation
/// still ran stays counted (its buffers are kept for MPI), so a count that
/// grows over a run is a leak.
pub fn pending_requests() -> usize {
    PENDING.load(std::sync::atomic::Ordering::Relaxed)
}

impl<R> Request<R> {
    fn new(comm: &Comm, raw: ffi::MPI_Request, kind: Kind, finish: Finish<R>) -> Self {
        Request {
            raw,
            kind,
            done: None,
            failed: None,
            finish: Some(finish),
            trace: None,
            pending: true,
            _comm: comm.clone(),
        }
        .counted()
    }

    fn counted(self) -> Self {
        PENDING.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self
    }

    /// MPI has completed (or cancelled) the operation.
    fn settle(&mut self) {
        if std::mem::take(&mut self.pending) {
            PENDING.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Records the wait of this request as `name`, linked to the span that
    /// posted it.
    fn traced(mut self, name: &'static str, posted: &trace::Span) -> Self {
        if trace::active() {
            self.trace = Some((name, posted.posted()));
        }
        self
    }

    /// Blocks until the operation completes (`MPI_Wait`) and returns its
    /// result.
    pub fn wait(mut self) -> Result<R> {
        let _span = self
            .trace
            .take()
            .map(|(name, posted)| trace::wait_for(name, posted));
        if let Some(e) = self.failed.take() {
            // MPI completed (and freed) the failed request: the buffers can go.
            self.finish = None;
            return Err(e);
        }
        let status = match self.complete() {
            Ok(status) => status,
            Err(e) => {
                self.finish = None;
                return Err(e);
            }
        };
        let finish = self.finish.take().expect("a request is finished once");
        finish(&status)
    }

    /// Whether the operation has completed (`MPI_Test`); never blocks. After
    /// `true`, [`Request::wait`] returns at once. An operation that failed
    /// gives the error here and again from `wait`.
    pub fn test(&mut self) -> Result<bool> {
        if self.done.is_some() {
            return Ok(true);
        }
        if let Some(e) = &self.failed {
            return Err(e.replay());
        }
        let mut flag: c_int = 0;
        let mut status = empty_status();
        // SAFETY: `raw` is an active request posted by this module.
        let tested = unsafe { mpi!(MPI_Test(&mut self.raw, &mut flag, &mut status)) };
        if tested.is_err() || flag != 0 {
            self.settle();
        }
        if let Err(e) = tested {
            let again = e.replay();
            self.failed = Some(e);
            return Err(again);
        }
        if flag != 0 {
            if let Err(e) = status_error("MPI_Test", &status) {
                let again = e.replay();
                self.failed = Some(e);
                return Err(again);
            }
            self.done = Some(status);
        }
        Ok(flag != 0)
    }

    fn complete(&mut self) -> Result<ffi::MPI_Status> {
        if let Some(status) = self.done.take() {
            return Ok(status);
        }
        let mut status = empty_status();
        // SAFETY: `raw` is an active request posted by this module; the
        // buffers it uses are owned by `finish`, which is still alive.
        let waited = unsafe { mpi!(MPI_Wait(&mut self.raw, &mut status)) };
        self.settle();
        waited?;
        status_error("MPI_Wait", &status)?;
        Ok(status)
    }
}

/// An error recorded in a completed request's status. Open MPI reports some
/// failures of a completed request (a truncated receive from this same
/// process, for one) there rather than in the return code; the field starts
/// at zero and MPI only writes it to report an error.
fn status_error(call: &'static str, status: &ffi::MPI_Status) -> Result<()> {
    super::check(call, status.MPI_ERROR)
}

impl<R> Drop for Request<R> {
    fn drop(&mut self) {
        if self.finish.is_none() || self.done.is_some() || self.failed.is_some() {
            return;
        }
        if matches!(self.test(), Ok(true) | Err(_)) {
            return;
        }
        match self.kind {
            Kind::Receive => {
                // SAFETY: `raw` is an active receive request; cancelling it
                // and waiting completes it promptly (MPI 4.1 §3.8.4), after
                // which the buffer it owns may be freed.
                unsafe {
                    let _ = mpi!(MPI_Cancel(&mut self.raw));
                    let _ = mpi!(MPI_Wait(&mut self.raw, &mut empty_status()));
                }
                self.settle();
            }
            Kind::Other => {
                // Cannot be cancelled and must not block: leak the buffers.
                std::mem::forget(self.finish.take());
            }
        }
    }
}

fn null_request() -> ffi::MPI_Request {
    // SAFETY: a constant initialised by the MPI library.
    unsafe { ffi::RSMPI_REQUEST_NULL }
}

impl Comm {
    /// Starts sending `data` to `dest` (`MPI_Isend`); `wait` returns the
    /// buffer for reuse.
    pub fn isend<T: Pod>(&self, data: Vec<T>, dest: usize, tag: i32) -> Result<Request<Vec<T>>> {
        let span = self.trace_p2p("isend", std::mem::size_of_val(data.as_slice()));
        const OP: &str = "isend";
        let dest = self.check_peer(OP, "destination", dest)?;
        let tag = self.raw_tag(OP, tag, false)?;
        let count = to_count(OP, data.len())?;
        let mut raw = null_request();
        // SAFETY: `data`'s heap buffer is moved into the request's finish
        // closure below and lives until the request completes; moving a Vec
        // does not move its buffer.
        unsafe {
            mpi!(MPI_Isend(
                send_ptr(&data),
                count,
                element_datatype::<T>(),
                dest,
                tag,
                self.as_raw(),
                &mut raw,
            ))?;
        }
        Ok(
            Request::new(self, raw, Kind::Other, Box::new(move |_| Ok(data)))
                .traced("wait isend", &span),
        )
    }

    /// Starts receiving a message of at most `max_len` elements
    /// (`MPI_Irecv`); `wait` returns the elements that arrived and their
    /// status. A longer message makes `wait` (and `test`) return an error:
    /// [`Error::BufferTooSmall`], or MPI's truncation error.
    pub fn irecv<T: Pod>(
        &self,
        max_len: usize,
        source: impl Into<Source>,
        tag: i32,
    ) -> Result<Request<(Vec<T>, Status)>> {
        let span = self.trace_p2p("irecv", 0);
        const OP: &str = "irecv";
        let source = self.raw_source(OP, source.into())?;
        let tag = self.raw_tag(OP, tag, true)?;
        // One element of slack: a message that fills it is longer than
        // `max_len`. Open MPI truncates a too-long message from this same
        // rank silently, so the slack is how such a message is caught.
        let count = to_count(OP, max_len + 1)?;
        let mut buf = vec![T::zeroed(); max_len + 1];
        let mut raw = null_request();
        // SAFETY: `buf`'s heap buffer is owned by the finish closure until the
        // request completes.
        unsafe {
            mpi!(MPI_Irecv(
                recv_ptr(&mut buf),
                count,
                element_datatype::<T>(),
                source,
                tag,
                self.as_raw(),
                &mut raw,
            ))?;
        }
        Ok(Request::new(
            self,
            raw,
            Kind::Receive,
            Box::new(move |status: &ffi::MPI_Status| {
                let n = received_count::<T>(OP, status)?;
                if n > max_len {
                    return Err(Error::BufferTooSmall {
                        op: OP,
                        source_rank: status.MPI_SOURCE as usize,
                        tag: status.MPI_TAG,
                        got: max_len,
                    });
                }
                buf.truncate(n);
                let st = Status {
                    source: status.MPI_SOURCE as usize,
                    tag: status.MPI_TAG,
                    count: buf.len(),
                };
                Ok((buf, st))
            }),
        )
        .traced("wait irecv", &span))
    }

    /// Starts broadcasting `buf` from `root` (`MPI_Ibcast`); every rank
    /// passes a buffer of the same length and `wait` returns it filled.
    pub fn ibroadcast<T: Pod>(&self, mut buf: Vec<T>, root: usize) -> Result<Request<Vec<T>>> {
        let span = self.trace_call("ibroadcast", std::mem::size_of_val(buf.as_slice()));
        const OP: &str = "ibroadcast";
        let local = self
            .check_root(OP, root)
            .and_then(|_| to_count(OP, buf.len()).map(drop));
        self.prepare(Signature::new::<T>(OP).root(root).count(buf.len()), local)?;
        let count = to_count(OP, buf.len())?;
        let mut raw = null_request();
        // SAFETY: `buf` is owned by the finish closure until completion.
        unsafe {
            mpi!(MPI_Ibcast(
                recv_ptr(&mut buf),
                count,
                element_datatype::<T>(),
                root as c_int,
                self.as_raw(),
                &mut raw,
            ))?;
        }
        Ok(
            Request::new(self, raw, Kind::Other, Box::new(move |_| Ok(buf)))
                .traced("wait ibroadcast", &span),
        )
    }

    /// Starts an all-reduce of `send` (`MPI_Iallreduce`); `wait` returns the
    /// combined result.
    pub fn iall_reduce<T: Reducible>(&self, send: Vec<T>, op: ReduceOp) -> Result<Request<Vec<T>>> {
        let span = self.trace_call("iall_reduce", std::mem::size_of_val(send.as_slice()));
        const OP: &str = "iall_reduce";
        let local = check_reduction::<T>(OP, op).and_then(|_| to_count(OP, send.len()).map(drop));
        self.prepare(
            Signature::new::<T>(OP)
                .count(send.len())
                .reduction(T::type_code(), op.code()),
            local,
        )?;
        let count = to_count(OP, send.len())?;
        let mut recv = vec![T::zeroed(); send.len()];
        let mut raw = null_request();
        // SAFETY: `send` and `recv` are owned by the finish closure until
        // completion; both hold `count` elements.
        unsafe {
            mpi!(MPI_Iallreduce(
                send_ptr(&send),
                recv_ptr(&mut recv),
                count,
                T::mpi_datatype(),
                op.raw(),
                self.as_raw(),
                &mut raw,
            ))?;
        }
        Ok(Request::new(
            self,
            raw,
            Kind::Other,
            Box::new(move |_| {
                drop(send);
                Ok(recv)
            }),
        )
        .traced("wait iall_reduce", &span))
    }

    /// Starts an all-to-all of equal parts (`MPI_Ialltoall`); `wait` returns
    /// the parts received, in rank order.
    pub fn iall_to_all<T: Pod>(&self, send: Vec<T>) -> Result<Request<Vec<T>>> {
        let span = self.trace_call("iall_to_all", std::mem::size_of_val(send.as_slice()));
        const OP: &str = "iall_to_all";
        let local = equal_parts(OP, send.len(), self.size(), "iall_to_all_v").map(drop);
        self.prepare(Signature::new::<T>(OP).count(send.len()), local)?;
        let count = equal_parts(OP, send.len(), self.size(), "iall_to_all_v")?;
        let mut recv = vec![T::zeroed(); send.len()];
        let mut raw = null_request();
        // SAFETY: both buffers are owned by the finish closure until
        // completion and hold `count` elements per rank.
        unsafe {
            mpi!(MPI_Ialltoall(
                send_ptr(&send),
                count,
                element_datatype::<T>(),
                recv_ptr(&mut recv),
                count,
                element_datatype::<T>(),
                self.as_raw(),
                &mut raw,
            ))?;
        }
        Ok(Request::new(
            self,
            raw,
            Kind::Other,
            Box::new(move |_| {
                drop(send);
                Ok(recv)
            }),
        )
        .traced("wait iall_to_all", &span))
    }

    /// Starts an all-to-all with per-rank counts (`MPI_Ialltoallv`). The
    /// receive counts are exchanged (blocking) before the transfer is posted.
    pub fn iall_to_all_v<T: Pod>(
        &self,
        send: Vec<T>,
        send_counts: &[usize],
    ) -> Result<Request<Varying<T>>> {
        let span = self.trace_call("iall_to_all_v", std::mem::size_of_val(send.as_slice()));
        let plan = self.plan_all_to_all_v::<T>("iall_to_all_v", send.len(), send_counts)?;
        let mut recv = vec![T::zeroed(); plan.recv_counts.iter().sum()];
        let mut raw = null_request();
        // SAFETY: the buffers and the count/displacement arrays are owned by
        // the finish closure until completion, and describe the buffers.
        unsafe {
            mpi!(MPI_Ialltoallv(
                send_ptr(&send),
                plan.send_counts.as_ptr(),
                plan.send_displs.as_ptr(),
                element_datatype::<T>(),
                recv_ptr(&mut recv),
                plan.recv_counts_raw.as_ptr(),
                plan.recv_displs.as_ptr(),
                element_datatype::<T>(),
                self.as_raw(),
                &mut raw,
            ))?;
        }
        Ok(Request::new(
            self,
            raw,
            Kind::Other,
            Box::new(move |_| {
                // The plan's count arrays stay alive until here, as MPI
                // requires for a non-blocking all-to-all-v.
                let recv_counts = plan.recv_counts;
                drop((send, plan.send_counts, plan.send_displs));
                drop((plan.recv_counts_raw, plan.recv_displs));
                Ok(Varying::new(recv, recv_counts))
            }),
        )
        .traced("wait iall_to_all_v", &span))
    }
}
