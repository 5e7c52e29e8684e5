//! Typed point-to-point messages (MPI 4.1 chapter 3).
//!
//! Any [`bytemuck::Pod`] element type travels; the receiver learns the length
//! of the message from the message itself. A receive into a buffer that is
//! too small returns [`Error::BufferTooSmall`] instead of MPI's fatal
//! truncation error: Tessera probes the message first (`MPI_Mprobe`), and if
//! it does not fit receives it into scratch space and discards it, so the
//! sender is never left hanging.

use std::mem::MaybeUninit;
use std::os::raw::c_int;

use bytemuck::Pod;
use mpi::ffi;

use super::Comm;
use super::datatype::{element_datatype, recv_ptr, send_ptr, to_count};
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
        const OP: &str = "send";
        let dest = self.check_peer(OP, "destination", dest)?;
        let tag = self.raw_tag(OP, tag, false)?;
        let count = to_count(OP, data.len())?;
        // SAFETY: `data` is valid for `count` elements of the element datatype,
        // whose extent is size_of::<T>().
        unsafe {
            ffi::MPI_Send(
                send_ptr(data),
                count,
                element_datatype::<T>(),
                dest,
                tag,
                self.as_raw(),
            );
        }
        Ok(())
    }

    /// Receives a message into `buf` (`MPI_Mprobe` + `MPI_Mrecv`). The message
    /// may be shorter than `buf`; [`Status::count`] says how many elements
    /// arrived. A longer one is an [`Error::BufferTooSmall`].
    pub fn receive_into<T: Pod>(
        &self,
        buf: &mut [T],
        source: impl Into<Source>,
        tag: i32,
    ) -> Result<Status> {
        const OP: &str = "receive_into";
        let (mut message, status, count) = self.probe_message::<T>(OP, source.into(), tag)?;
        if count > buf.len() {
            let mut scratch = vec![T::zeroed(); count];
            self.receive_message(&mut message, &mut scratch)?;
            return Err(Error::BufferTooSmall {
                op: OP,
                source_rank: status.MPI_SOURCE as usize,
                tag: status.MPI_TAG,
                needed: count,
                got: buf.len(),
            });
        }
        self.receive_message(&mut message, &mut buf[..count])
    }

    /// Receives a message into a new vector of the message's length.
    pub fn receive_vec<T: Pod>(
        &self,
        source: impl Into<Source>,
        tag: i32,
    ) -> Result<(Vec<T>, Status)> {
        let (mut message, _, count) = self.probe_message::<T>("receive_vec", source.into(), tag)?;
        let mut buf = vec![T::zeroed(); count];
        let status = self.receive_message(&mut message, &mut buf)?;
        Ok((buf, status))
    }

    /// Sends `send` to `dest` and receives into `recv` from `source` at the
    /// same time, so that pairs and rings of ranks exchange without deadlock
    /// (the semantics of `MPI_Sendrecv`, built from `MPI_Isend` and a probed
    /// receive so that a short buffer is an error, not a crash).
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
        let source = source.into();
        self.raw_source("sendrecv", source)?;
        self.raw_tag("sendrecv", recv_tag, true)?;
        let request = self.post_send("sendrecv", send, dest, send_tag)?;
        let received = self.receive_into(recv, source, recv_tag);
        request.wait_raw();
        received
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
        let source = source.into();
        self.raw_source("sendrecv_vec", source)?;
        self.raw_tag("sendrecv_vec", recv_tag, true)?;
        let request = self.post_send("sendrecv_vec", send, dest, send_tag)?;
        let received = self.receive_vec(source, recv_tag);
        request.wait_raw();
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
            ffi::MPI_Isend(
                send_ptr(send),
                count,
                element_datatype::<T>(),
                dest,
                tag,
                self.as_raw(),
                &mut raw,
            );
        }
        Ok(RawRequest(raw))
    }

    fn probe_message<T: Pod>(
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
        let mut count: c_int = 0;
        // SAFETY: valid out-pointers; MPI_Mprobe matches (and removes from the
        // queue) one message, which is received below through `message`.
        unsafe {
            ffi::MPI_Mprobe(source, tag, self.as_raw(), &mut message, &mut status);
            ffi::MPI_Get_count(&status, element_datatype::<T>(), &mut count);
        }
        // SAFETY: a constant initialised by the MPI library.
        if count == unsafe { ffi::RSMPI_UNDEFINED } || count < 0 {
            // Not a whole number of elements: receive the bytes and refuse.
            let mut bytes: c_int = 0;
            // SAFETY: valid pointers; `scratch` holds `bytes` bytes.
            unsafe {
                ffi::MPI_Get_count(&status, ffi::RSMPI_UINT8_T, &mut bytes);
                let mut scratch = vec![0u8; bytes.max(0) as usize];
                ffi::MPI_Mrecv(
                    recv_ptr(&mut scratch),
                    bytes.max(0),
                    ffi::RSMPI_UINT8_T,
                    &mut message,
                    &mut status,
                );
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
        Ok((message, status, count as usize))
    }

    fn receive_message<T: Pod>(
        &self,
        message: &mut ffi::MPI_Message,
        buf: &mut [T],
    ) -> Result<Status> {
        let mut status = empty_status();
        let count = buf.len() as c_int;
        // SAFETY: `message` was matched by MPI_Mprobe and holds exactly
        // buf.len() elements (checked by the callers); `buf` is valid for them.
        unsafe {
            ffi::MPI_Mrecv(
                recv_ptr(buf),
                count,
                element_datatype::<T>(),
                message,
                &mut status,
            );
        }
        Ok(Status {
            source: status.MPI_SOURCE as usize,
            tag: status.MPI_TAG,
            count: buf.len(),
        })
    }
}

/// A request on a borrowed buffer, waited before the borrow ends.
pub(crate) struct RawRequest(pub(crate) ffi::MPI_Request);

impl RawRequest {
    pub(crate) fn wait_raw(mut self) {
        let mut status = empty_status();
        // SAFETY: a request posted by this module and not yet completed.
        unsafe {
            ffi::MPI_Wait(&mut self.0, &mut status);
        }
    }
}
