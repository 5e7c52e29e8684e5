//! Typed point-to-point messages (MPI 4.1 chapter 3).
//!
//! Any [`bytemuck::Pod`] element type travels; `receive_vec` learns the length
//! of the message from the message itself (`MPI_Mprobe`). A receive into a
//! buffer that is too small returns [`Error::BufferTooSmall`] instead of
//! ending the job: Tessera's communicators return MPI errors rather than
//! abort on them, and the truncated message is consumed, so the sender is
//! never left hanging.

use std::mem::MaybeUninit;
use std::os::raw::c_int;

use bytemuck::Pod;
use mpi::ffi;

use super::datatype::{element_datatype, recv_ptr, send_ptr, to_count};
use super::{Comm, check, error_class};
use crate::error::{Error, Result};

/// Matches a message with any tag, in receives.
pub const ANY_TAG: i32 = -1;

/// Which rank a receive accepts a message from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Only this rank.
    Rank(usize),
    /// Any rank (`MPI_ANY_SOURCE`).
    Any,
}

impl From<usize> for Source {
    fn from(rank: usize) -> Self {
        Source::Rank(rank)
    }
}

/// What arrived: the sender, the tag and the number of elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The rank that sent the message.
    pub source: usize,
    /// The message's tag.
    pub tag: i32,
    /// The number of elements received.
    pub count: usize,
}

pub(crate) fn empty_status() -> ffi::MPI_Status {
    // SAFETY: MPI_Status is a plain C struct of integers; all-zero is valid.
    unsafe { MaybeUninit::zeroed().assume_init() }
}

impl Comm {
    pub(crate) fn check_peer(&self, op: &'static str, what: &str, rank: usize) -> Result<c_int> {
        if rank >= self.size() {
            return Err(Error::invalid(
                op,
                format!(
                    "{what} {rank} is not a rank of this communicator (ranks 0-{})",
                    self.size() - 1
                ),
            ));
        }
        Ok(rank as c_int)
    }

    pub(crate) fn raw_source(&self, op: &'static str, source: Source) -> Result<c_int> {
        match source {
            Source::Rank(r) => self.check_peer(op, "source", r),
            // SAFETY: a constant initialised by the MPI library.
            Source::Any => Ok(unsafe { ffi::RSMPI_ANY_SOURCE }),
        }
    }

    pub(crate) fn raw_tag(&self, op: &'static str, tag: i32, receiving: bool) -> Result<c_int> {
        if receiving && tag == ANY_TAG {
            // SAFETY: a constant initialised by the MPI library.
            return Ok(unsafe { ffi::RSMPI_ANY_TAG });
        }
        // MPI guarantees at least 32767 tags (MPI 4.1 §3.2.3).
        if !(0..=32767).contains(&tag) {
            return Err(Error::invalid(
                op,
                format!("tag {tag} is out of range: use a tag from 0 to 32767"),
            ));
        }
        Ok(tag)
    }

    /// Sends `data` to rank `dest` with `tag` (`MPI_Send`). Returns when the
    /// buffer may be reused; a large message waits for the matching receive.
    pub fn send<T: Pod>(&self, data: &[T], dest: usize, tag: i32) -> Result<()> {
        let _span = self.trace_p2p("send", std::mem::size_of_val(data));
        const OP: &str = "send";
        let dest = self.check_peer(OP, "destination", dest)?;
        let tag = self.raw_tag(OP, tag, false)?;
        let count = to_count(OP, data.len())?;
        // SAFETY: `data` is valid for `count` elements of the element datatype,
        // whose extent is size_of::<T>().
        unsafe {
            mpi!(MPI_Send(
                send_ptr(data),
                count,
                element_datatype::<T>(),
                dest,
                tag,
                self.as_raw(),
            ))?;
        }
        Ok(())
    }

    /// Receives a message into `buf` (`MPI_Recv`). The message may be
    /// shorter than `buf`; [`Status::count`] says how many elements arrived.
    /// A longer one is an [`Error::BufferTooSmall`] (the message is consumed,
    /// so the sender never hangs).
    pub fn receive_into<T: Pod>(
        &self,
        buf: &mut [T],
        source: impl Into<Source>,
        tag: i32,
    ) -> Result<Status> {
        let _span = self.trace_p2p("receive_into", 0);
        const OP: &str = "receive_into";
        let source = source.into();
        if self.may_come_from_self(source) {
            return self.receive_into_probed(OP, buf, source, tag);
        }
        let source = self.raw_source(OP, source)?;
        let tag = self.raw_tag(OP, tag, true)?;
        let count = to_count(OP, buf.len())?;
        let mut status = empty_status();
        // SAFETY: `buf` is valid for `count` elements; MPI writes at most that.
        let rc = unsafe {
            ffi::MPI_Recv(
                recv_ptr(buf),
                count,
                element_datatype::<T>(),
                source,
                tag,
                self.as_raw(),
                &mut status,
            )
        };
        self.finish_receive::<T>(OP, rc, &status, buf.len())
    }

    /// Whether a receive from `source` may match a message this rank sent
    /// itself. Open MPI truncates such a message silently when the buffer is
    /// short (between two ranks it reports `MPI_ERR_TRUNCATE`), so these
    /// receives probe the length first.
    fn may_come_from_self(&self, source: Source) -> bool {
        match source {
            Source::Any => true,
            Source::Rank(r) => r == self.rank(),
        }
    }

    /// [`Comm::receive_into`] by `MPI_Mprobe` + `MPI_Mrecv`, which knows the
    /// message's length before receiving it.
    fn receive_into_probed<T: Pod>(
        &self,
        op: &'static str,
        buf: &mut [T],
        source: Source,
        tag: i32,
    ) -> Result<Status> {
        let (mut message, status, count) = self.probe::<T>(op, source, tag)?;
        if count > buf.len() {
            let mut scratch = vec![T::zeroed(); count];
            self.receive_probed(&mut message, &mut scratch)?;
            return Err(Error::BufferTooSmall {
                op,
                source_rank: status.MPI_SOURCE as usize,
                tag: status.MPI_TAG,
                got: buf.len(),
            });
        }
        self.receive_probed(&mut message, &mut buf[..count])
    }

    /// Turns a receive's return code and status into a [`Status`], or into
    /// the error that says what to change.
    fn finish_receive<T: Pod>(
        &self,
        op: &'static str,
        rc: c_int,
        status: &ffi::MPI_Status,
        capacity: usize,
    ) -> Result<Status> {
        if error_class(rc) == ffi::MPI_ERR_TRUNCATE as c_int {
            return Err(Error::BufferTooSmall {
                op,
                source_rank: status.MPI_SOURCE as usize,
                tag: status.MPI_TAG,
                got: capacity,
            });
        }
        check("MPI_Recv", rc)?;
        let count = received_count::<T>(op, status)?;
        Ok(Status {
            source: status.MPI_SOURCE as usize,
            tag: status.MPI_TAG,
            count,
        })
    }

    /// Receives a message into a new vector of the message's length
    /// (`MPI_Mprobe`, then `MPI_Mrecv` of exactly that length).
    pub fn receive_vec<T: Pod>(
        &self,
        source: impl Into<Source>,
        tag: i32,
    ) -> Result<(Vec<T>, Status)> {
        let _span = self.trace_p2p("receive_vec", 0);
        let (mut message, _, count) = self.probe::<T>("receive_vec", source.into(), tag)?;
        let mut buf = vec![T::zeroed(); count];
        let status = self.receive_probed(&mut message, &mut buf)?;
        Ok((buf, status))
    }

    /// Matches the next message from `source` with `tag` (`MPI_Mprobe`) and
    /// returns it with its length in elements. A message that is not a whole
    /// number of elements is received, discarded and refused.
    fn probe<T: Pod>(
        &self,
        op: &'static str,
        source: Source,
        tag: i32,
    ) -> Result<(ffi::MPI_Message, ffi::MPI_Status, usize)> {
        let source = self.raw_source(op, source)?;
        let tag = self.raw_tag(op, tag, true)?;
        // SAFETY: a constant initialised by the MPI library.
        let mut message = unsafe { ffi::RSMPI_MESSAGE_NULL };
        let mut status = empty_status();
        // SAFETY: valid out-pointers; MPI_Mprobe matches (and removes from the
        // queue) one message, which the caller receives through `message`.
        unsafe {
            mpi!(MPI_Mprobe(
                source,
                tag,
                self.as_raw(),
                &mut message,
                &mut status
            ))?;
        }
        match received_count::<T>(op, &status) {
            Ok(count) => Ok((message, status, count)),
            Err(e) => {
                let mut bytes: c_int = 0;
                // SAFETY: valid pointers; `scratch` holds `bytes` bytes.
                unsafe {
                    mpi!(MPI_Get_count(&status, ffi::RSMPI_UINT8_T, &mut bytes))?;
                    let mut scratch = vec![0u8; bytes.max(0) as usize];
                    mpi!(MPI_Mrecv(
                        recv_ptr(&mut scratch),
                        bytes.max(0),
                        ffi::RSMPI_UINT8_T,
                        &mut message,
                        &mut status,
                    ))?;
                }
                Err(e)
            }
        }
    }

    /// Receives a probed message of exactly `buf.len()` elements.
    fn receive_probed<T: Pod>(
        &self,
        message: &mut ffi::MPI_Message,
        buf: &mut [T],
    ) -> Result<Status> {
        let mut status = empty_status();
        // SAFETY: `message` was matched by MPI_Mprobe and holds buf.len()
        // elements (the callers checked); `buf` is valid for them.
        unsafe {
            mpi!(MPI_Mrecv(
                recv_ptr(buf),
                buf.len() as c_int,
                element_datatype::<T>(),
                message,
                &mut status,
            ))?;
        }
        Ok(Status {
            source: status.MPI_SOURCE as usize,
            tag: status.MPI_TAG,
            count: buf.len(),
        })
    }

    /// Sends `send` to `dest` and receives into `recv` from `source` at the
    /// same time (`MPI_Sendrecv`), so that pairs and rings of ranks exchange
    /// without deadlock. A message longer than `recv` is an
    /// [`Error::BufferTooSmall`].
    #[allow(clippy::too_many_arguments)]
    pub fn sendrecv<T: Pod, U: Pod>(
        &self,
        send: &[T],
        dest: usize,
        send_tag: i32,
        recv: &mut [U],
        source: impl Into<Source>,
        recv_tag: i32,
    ) -> Result<Status> {
        let _span = self.trace_p2p("sendrecv", std::mem::size_of_val(send));
        const OP: &str = "sendrecv";
        let source = source.into();
        if self.may_come_from_self(source) {
            self.raw_source(OP, source)?;
            self.raw_tag(OP, recv_tag, true)?;
            let request = self.post_send(OP, send, dest, send_tag)?;
            let received = self.receive_into_probed(OP, recv, source, recv_tag);
            request.wait_raw()?;
            return received;
        }
        let dest = self.check_peer(OP, "destination", dest)?;
        let send_tag = self.raw_tag(OP, send_tag, false)?;
        let source = self.raw_source(OP, source)?;
        let recv_tag = self.raw_tag(OP, recv_tag, true)?;
        let send_count = to_count(OP, send.len())?;
        let recv_count = to_count(OP, recv.len())?;
        let mut status = empty_status();
        // SAFETY: `send` holds `send_count` elements and `recv` holds
        // `recv_count`; MPI writes at most that many.
        let rc = unsafe {
            ffi::MPI_Sendrecv(
                send_ptr(send),
                send_count,
                element_datatype::<T>(),
                dest,
                send_tag,
                recv_ptr(recv),
                recv_count,
                element_datatype::<U>(),
                source,
                recv_tag,
                self.as_raw(),
                &mut status,
            )
        };
        self.finish_receive::<U>(OP, rc, &status, recv.len())
    }

    /// Like [`Comm::sendrecv`], receiving into a new vector of the incoming
    /// message's length.
    pub fn sendrecv_vec<T: Pod, U: Pod>(
        &self,
        send: &[T],
        dest: usize,
        send_tag: i32,
        source: impl Into<Source>,
        recv_tag: i32,
    ) -> Result<(Vec<U>, Status)> {
        let _span = self.trace_p2p("sendrecv_vec", std::mem::size_of_val(send));
        const OP: &str = "sendrecv_vec";
        let source = source.into();
        self.raw_source(OP, source)?;
        self.raw_tag(OP, recv_tag, true)?;
        let request = self.post_send(OP, send, dest, send_tag)?;
        let received = self.receive_vec(source, recv_tag);
        request.wait_raw()?;
        received
    }

    /// Posts `MPI_Isend` of a borrowed slice; the caller waits before the
    /// borrow ends.
    fn post_send<T: Pod>(
        &self,
        op: &'static str,
        send: &[T],
        dest: usize,
        tag: i32,
    ) -> Result<RawRequest> {
        let dest = self.check_peer(op, "destination", dest)?;
        let tag = self.raw_tag(op, tag, false)?;
        let count = to_count(op, send.len())?;
        // SAFETY: a constant initialised by the MPI library.
        let mut raw = unsafe { ffi::RSMPI_REQUEST_NULL };
        // SAFETY: `send` stays borrowed until the caller waits on the request,
        // which every caller does before returning.
        unsafe {
            mpi!(MPI_Isend(
                send_ptr(send),
                count,
                element_datatype::<T>(),
                dest,
                tag,
                self.as_raw(),
                &mut raw,
            ))?;
        }
        Ok(RawRequest(raw))
    }
}

/// A request on a borrowed buffer, waited before the borrow ends.
pub(crate) struct RawRequest(pub(crate) ffi::MPI_Request);

impl RawRequest {
    pub(crate) fn wait_raw(mut self) -> Result<()> {
        let mut status = empty_status();
        // SAFETY: a request posted by this module and not yet completed.
        unsafe { mpi!(MPI_Wait(&mut self.0, &mut status)) }
    }
}

/// The number of `T` elements a completed receive delivered.
pub(crate) fn received_count<T: Pod>(op: &'static str, status: &ffi::MPI_Status) -> Result<usize> {
    let mut count: c_int = 0;
    // SAFETY: `status` is the status of a completed receive or probe.
    unsafe {
        mpi!(MPI_Get_count(status, element_datatype::<T>(), &mut count))?;
    }
    // SAFETY: a constant initialised by the MPI library.
    if count == unsafe { ffi::RSMPI_UNDEFINED } || count < 0 {
        let mut bytes: c_int = 0;
        // SAFETY: as above.
        unsafe {
            mpi!(MPI_Get_count(status, ffi::RSMPI_UINT8_T, &mut bytes))?;
        }
        return Err(Error::invalid(
            op,
            format!(
                "the message from rank {} holds {bytes} bytes, not a whole number of {}-byte elements: send and receive the same element type",
                status.MPI_SOURCE,
                std::mem::size_of::<T>()
            ),
        ));
    }
    Ok(count as usize)
}
