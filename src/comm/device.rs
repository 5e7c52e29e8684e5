//! Collectives and point-to-point on device buffers.
//!
//! Where Open MPI is CUDA-aware (asked at run time through
//! `MPIX_Query_cuda_support`), device addresses go to MPI directly once the
//! device's stream has finished the work that produces them. Otherwise the
//! data is staged through host buffers in chunks, the device copy of one
//! chunk overlapping the transfer of the next. `TESSERA_DEVICE_MPI=staged`
//! forces staging (for comparison, or for an MPI whose CUDA support is
//! broken); the emulated GPU, whose memory is host memory, takes either path.

use std::ffi::c_int;
use std::ops::Range;

use bytemuck::Pod;

use super::check::Signature;
use super::datatype::{Reducible, check_reduction, element_datatype, to_count};
use super::{Comm, ReduceOp, Request};
use crate::device::{Device, DeviceBuffer};
use crate::error::{Error, Result};

/// Bytes per staged chunk.
const CHUNK_BYTES: usize = 4 << 20;

/// How device data reaches MPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceTransfer {
    /// Device addresses go to MPI (CUDA-aware MPI).
    Direct,
    /// Through host buffers, chunk by chunk.
    Staged,
}

/// Whether the MPI library says it can take CUDA device memory. Open MPI
/// answers through its `MPIX_Query_cuda_support` extension; a library without
/// the function cannot. `TESSERA_GPU_DIRECT=0` or `1` overrides the answer.
pub fn cuda_aware_mpi() -> bool {
    match std::env::var(crate::env::GPU_DIRECT).as_deref() {
        Ok("0") => return false,
        Ok("1") => return true,
        _ => {}
    }
    // SAFETY: looks a symbol up in the already loaded libraries.
    let sym = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"MPIX_Query_cuda_support".as_ptr()) };
    if sym.is_null() {
        return false;
    }
    // SAFETY: Open MPI defines `int MPIX_Query_cuda_support(void)`, callable
    // at any time after the library is loaded.
    let query: extern "C" fn() -> c_int = unsafe { std::mem::transmute(sym) };
    query() == 1
}

/// The path data on `device` takes to MPI on this rank: the one decision,
/// which `tessera info` reports too. The emulated GPU's memory is host
/// memory, so MPI can always take it; a CUDA GPU's goes direct only where
/// MPI is CUDA-aware ([`cuda_aware_mpi`]); `TESSERA_DEVICE_MPI=staged`
/// forces staging. The CPU has no device memory (`None`).
pub fn transfer_path(device: Device) -> Option<DeviceTransfer> {
    let forced_staged = std::env::var(crate::env::DEVICE_MPI).as_deref() == Ok("staged");
    let direct = match device {
        Device::Cpu => return None,
        Device::Emulated => true,
        Device::Cuda(_) => cuda_aware_mpi(),
    };
    Some(if direct && !forced_staged {
        DeviceTransfer::Direct
    } else {
        DeviceTransfer::Staged
    })
}

/// The path `buf` takes to MPI on this rank (see [`transfer_path`]).
pub fn device_transfer<T: Pod>(buf: &DeviceBuffer<T>) -> DeviceTransfer {
    transfer_path(buf.device()).unwrap_or(DeviceTransfer::Staged)
}

fn chunks<T>(len: usize) -> Vec<Range<usize>> {
    let per = (CHUNK_BYTES / size_of::<T>().max(1)).max(1);
    (0..len)
        .step_by(per)
        .map(|s| s..(s + per).min(len))
        .collect()
}

/// The way `buf`'s data reaches MPI that every rank of `comm` can take
/// (collective): device addresses only where every rank can pass them, so
/// that ranks whose MPI differs (a host without CUDA-aware Open MPI, or
/// `TESSERA_DEVICE_MPI` set on some ranks only) make the same calls.
fn agreed_transfer<T: Pod>(comm: &Comm, buf: &DeviceBuffer<T>) -> Result<DeviceTransfer> {
    let direct = device_transfer(buf) == DeviceTransfer::Direct;
    let everywhere = comm
        .unchecked()
        .all_reduce(&[direct as u8], ReduceOp::Min)?[0]
        == 1;
    Ok(if everywhere {
        DeviceTransfer::Direct
    } else {
        DeviceTransfer::Staged
    })
}

/// The staged pipeline, one chunk ahead: chunk i + 1's request is posted
/// (`post`, which may first download it) before chunk i's request is waited
/// for and finished (`finish`, which may upload it), so the device copies of
/// one chunk overlap the transfer of the next.
fn staged<T: Pod, R>(
    buf: &mut DeviceBuffer<T>,
    post: impl Fn(&DeviceBuffer<T>, &Range<usize>) -> Result<Request<R>>,
    mut finish: impl FnMut(&mut DeviceBuffer<T>, Range<usize>, R) -> Result<()>,
) -> Result<()> {
    let parts = chunks::<T>(buf.len());
    let mut pending = parts.first().map(|r| post(buf, r)).transpose()?;
    for (i, r) in parts.iter().enumerate() {
        let current = pending.take().expect("posted one step ahead");
        pending = parts.get(i + 1).map(|r| post(buf, r)).transpose()?;
        finish(buf, r.clone(), current.wait()?)?;
    }
    Ok(())
}

impl Comm {
    /// [`Comm::broadcast`] of a device buffer: every rank passes a buffer of
    /// the same length on its device, and ends with the root's contents.
    pub fn broadcast_device<T: Pod>(&self, buf: &mut DeviceBuffer<T>, root: usize) -> Result<()> {
        let _span = self.trace_call("broadcast_device", buf.len() * std::mem::size_of::<T>());
        const OP: &str = "broadcast_device";
        let local = self
            .check_root(OP, root)
            .and_then(|_| to_count(OP, buf.len()).map(drop));
        self.prepare(Signature::new::<T>(OP).root(root).count(buf.len()), local)?;
        let count = to_count(OP, buf.len())?;
        match device_transfer(buf) {
            DeviceTransfer::Direct => {
                buf.synchronize()?;
                // SAFETY: MPI may read and write device memory (the library
                // said so); the buffer holds `count` elements, the device
                // has finished writing it, and `&mut buf` keeps every other
                // user out until MPI returns.
                unsafe {
                    mpi!(MPI_Bcast(
                        buf.as_raw_mut_ptr(),
                        count,
                        element_datatype::<T>(),
                        root as c_int,
                        self.as_raw(),
                    ))
                }
            }
            DeviceTransfer::Staged => {
                let comm = self.unchecked();
                let is_root = self.rank() == root;
                staged(
                    buf,
                    |buf, r| {
                        let mut host = vec![T::zeroed(); r.len()];
                        if is_root {
                            buf.download_range(r.clone(), &mut host)?;
                        }
                        comm.ibroadcast(host, root)
                    },
                    |buf, r, host| {
                        if is_root {
                            Ok(())
                        } else {
                            buf.upload_range(r, &host)
                        }
                    },
                )
            }
        }
    }

    /// [`Comm::all_reduce_in_place`] of a device buffer.
    pub fn all_reduce_device<T: Reducible>(
        &self,
        buf: &mut DeviceBuffer<T>,
        op: ReduceOp,
    ) -> Result<()> {
        let _span = self.trace_call("all_reduce_device", buf.len() * std::mem::size_of::<T>());
        const OP: &str = "all_reduce_device";
        let local = check_reduction::<T>(OP, op).and_then(|_| to_count(OP, buf.len()).map(drop));
        self.prepare(self.reduction_signature::<T>(OP, buf.len(), op), local)?;
        let count = to_count(OP, buf.len())?;
        match device_transfer(buf) {
            DeviceTransfer::Direct => {
                // A device copy as the send buffer: rsmpi does not expose
                // MPI_IN_PLACE, whose value differs between MPI libraries.
                let mut send = DeviceBuffer::<T>::uninit(buf.device(), buf.len())?;
                send.copy_from(0, buf, 0..buf.len())?;
                buf.synchronize()?;
                // SAFETY: as in broadcast_device; two distinct device
                // buffers of `count` elements.
                unsafe {
                    mpi!(MPI_Allreduce(
                        send.as_raw_ptr(),
                        buf.as_raw_mut_ptr(),
                        count,
                        T::mpi_datatype(),
                        op.raw(),
                        self.as_raw(),
                    ))
                }
            }
            DeviceTransfer::Staged => {
                let comm = self.unchecked();
                staged(
                    buf,
                    |buf, r| {
                        let mut host = vec![T::zeroed(); r.len()];
                        buf.download_range(r.clone(), &mut host)?;
                        comm.iall_reduce(host, op)
                    },
                    |buf, r, host| buf.upload_range(r, &host),
                )
            }
        }
    }

    /// [`Comm::send`] of a device buffer; the receiver passes a buffer of
    /// the same length to [`Comm::receive_device`].
    pub fn send_device<T: Pod>(&self, buf: &DeviceBuffer<T>, dest: usize, tag: i32) -> Result<()> {
        let _span = self.trace_p2p("send_device", buf.len() * std::mem::size_of::<T>());
        const OP: &str = "send_device";
        match device_transfer(buf) {
            DeviceTransfer::Direct => {
                let dest_raw = self.check_peer(OP, "destination", dest)?;
                let tag = self.raw_tag(OP, tag, false)?;
                let count = to_count(OP, buf.len())?;
                buf.synchronize()?;
                // SAFETY: MPI may read device memory; `count` elements, and
                // the device has finished writing them; `&buf` keeps writers
                // out until MPI returns.
                unsafe {
                    mpi!(MPI_Send(
                        buf.as_raw_ptr(),
                        count,
                        element_datatype::<T>(),
                        dest_raw,
                        tag,
                        self.as_raw(),
                    ))
                }
            }
            DeviceTransfer::Staged => {
                // Chunk i + 1 is downloaded while chunk i is in flight.
                let mut in_flight: Option<Request<Vec<T>>> = None;
                for r in chunks::<T>(buf.len()) {
                    let mut host = vec![T::zeroed(); r.len()];
                    buf.download_range(r, &mut host)?;
                    let req = self.isend(host, dest, tag)?;
                    if let Some(prev) = in_flight.replace(req) {
                        prev.wait()?;
                    }
                }
                if let Some(last) = in_flight {
                    last.wait()?;
                }
                Ok(())
            }
        }
    }

    /// Receives what [`Comm::send_device`] sent into `buf`, which must be
    /// exactly as long as the sender's buffer (a different length is an
    /// error, never a hang of the sender).
    pub fn receive_device<T: Pod>(
        &self,
        buf: &mut DeviceBuffer<T>,
        source: usize,
        tag: i32,
    ) -> Result<()> {
        let _span = self.trace_p2p("receive_device", 0);
        const OP: &str = "receive_device";
        let want = buf.len();
        let short = |got: usize| {
            Error::invalid(
                OP,
                format!(
                    "rank {source} sent fewer elements than the receive buffer holds ({got} < {want}): pass a buffer as long as the sender's"
                ),
            )
        };
        match device_transfer(buf) {
            DeviceTransfer::Direct => {
                let source_raw = self.check_peer(OP, "source", source)?;
                let tag_raw = self.raw_tag(OP, tag, false)?;
                let count = to_count(OP, buf.len())?;
                // The device may still be writing the buffer.
                buf.synchronize()?;
                // SAFETY: MPI_Status is plain C data; all zeros is a valid
                // value.
                let mut status: mpi::ffi::MPI_Status = unsafe { std::mem::zeroed() };
                // SAFETY: MPI may write device memory (the library said so);
                // the buffer holds `count` elements, the device is done with
                // it, and `&mut buf` keeps every other user out until MPI
                // returns; `status` is a valid out-pointer.
                unsafe {
                    mpi!(MPI_Recv(
                        buf.as_raw_mut_ptr(),
                        count,
                        element_datatype::<T>(),
                        source_raw,
                        tag_raw,
                        self.as_raw(),
                        &mut status,
                    ))?;
                }
                let mut got: c_int = 0;
                // SAFETY: `status` was filled by MPI_Recv.
                unsafe { mpi!(MPI_Get_count(&status, element_datatype::<T>(), &mut got))? };
                if got as usize != buf.len() {
                    return Err(short(got as usize));
                }
                Ok(())
            }
            DeviceTransfer::Staged => staged(
                buf,
                |_, r| self.irecv::<T>(r.len(), source, tag),
                |buf, r, (host, status)| {
                    if status.count != r.len() {
                        return Err(short(r.start + status.count));
                    }
                    buf.upload_range(r, &host)
                },
            ),
        }
    }

    /// [`Comm::all_to_all_v`] of a device buffer: `send_counts[r]`
    /// consecutive elements of `send` go to rank r. Returns what arrived
    /// (every sender's part, in rank order) in a new buffer on `send`'s
    /// device, and the count from each rank.
    ///
    /// With CUDA-aware MPI the device addresses go to `MPI_Alltoallv`.
    /// Otherwise each rank's own part is copied on the device, and the
    /// others travel point to point in a pairwise order (rank `me + s`
    /// receives from this rank in step s while `me - s` sends to it): every
    /// receive is posted first, each outgoing part is copied down while
    /// the earlier ones are on the wire, and each incoming part is copied
    /// up while the later ones still travel.
    pub fn all_to_all_v_device<T: Pod>(
        &self,
        send: &DeviceBuffer<T>,
        send_counts: &[usize],
    ) -> Result<(DeviceBuffer<T>, Vec<usize>)> {
        const OP: &str = "all_to_all_v_device";
        let _span = self.trace_call(OP, send.len() * std::mem::size_of::<T>());
        let plan = self.plan_all_to_all_v::<T>(OP, send.len(), send_counts)?;
        let total: usize = plan.recv_counts.iter().sum();
        let mut recv = DeviceBuffer::<T>::uninit(send.device(), total)?;
        match agreed_transfer(self, send)? {
            DeviceTransfer::Direct => {
                send.synchronize()?;
                // SAFETY: MPI may read and write device memory (the library
                // said so); `send` holds sum(send_counts) elements laid out
                // by the send displacements and the device has finished
                // writing them; `recv` holds sum(recv_counts) laid out by
                // the receive displacements; `&mut recv` keeps other users
                // out until MPI returns.
                unsafe {
                    mpi!(MPI_Alltoallv(
                        send.as_raw_ptr(),
                        plan.send_counts.as_ptr(),
                        plan.send_displs.as_ptr(),
                        element_datatype::<T>(),
                        recv.as_raw_mut_ptr(),
                        plan.recv_counts_raw.as_ptr(),
                        plan.recv_displs.as_ptr(),
                        element_datatype::<T>(),
                        self.as_raw(),
                    ))?;
                }
            }
            DeviceTransfer::Staged => {
                let (p, me) = (self.size(), self.rank());
                // Where each rank's part starts: the plan's displacements.
                let send_at = |r: usize| plan.send_displs[r] as usize;
                let recv_at = |r: usize| plan.recv_displs[r] as usize;
                // A message space of its own: no user message can match.
                let comm = self.unchecked().dup();
                let mut receives = Vec::with_capacity(p.saturating_sub(1));
                for step in 1..p {
                    let from = (me + p - step) % p;
                    if plan.recv_counts[from] > 0 {
                        receives.push((from, comm.irecv::<T>(plan.recv_counts[from], from, 0)?));
                    }
                }
                let mut sends = Vec::with_capacity(p.saturating_sub(1));
                for step in 1..p {
                    let to = (me + step) % p;
                    let part = send_at(to)..send_at(to) + send_counts[to];
                    if !part.is_empty() {
                        let mut host = vec![T::zeroed(); part.len()];
                        send.download_range(part, &mut host)?;
                        sends.push(comm.isend(host, to, 0)?);
                    }
                }
                if send_counts[me] > 0 {
                    let mine = send_at(me)..send_at(me) + send_counts[me];
                    recv.copy_from(recv_at(me), send, mine)?;
                }
                for (from, request) in receives {
                    let (host, status) = request.wait()?;
                    if status.count != plan.recv_counts[from] {
                        return Err(Error::invalid(
                            OP,
                            format!(
                                "rank {from} sent {} elements where it announced {}",
                                status.count, plan.recv_counts[from]
                            ),
                        ));
                    }
                    recv.upload_range(recv_at(from)..recv_at(from) + host.len(), &host)?;
                }
                for request in sends {
                    request.wait()?;
                }
            }
        }
        Ok((recv, plan.recv_counts))
    }

    /// [`Comm::all_gather_v`] of a device buffer: every rank's elements, in
    /// rank order, in a new buffer on `send`'s device on every rank, and the
    /// count from each rank (zero included).
    ///
    /// With CUDA-aware MPI the device addresses go to `MPI_Allgatherv`.
    /// Otherwise each rank's part is copied down once, gathered on the host
    /// (`MPI_Allgatherv`) and the whole copied up.
    pub fn all_gather_v_device<T: Pod>(
        &self,
        send: &DeviceBuffer<T>,
    ) -> Result<(DeviceBuffer<T>, Vec<usize>)> {
        const OP: &str = "all_gather_v_device";
        let _span = self.trace_call(OP, send.len() * std::mem::size_of::<T>());
        let local = to_count(OP, send.len()).map(drop);
        let counts = self.gather_counts(Signature::new::<T>(OP), local, send.len())?;
        match agreed_transfer(self, send)? {
            DeviceTransfer::Direct => {
                let (c, d) = super::datatype::counts_and_displs(OP, &counts)?;
                let mut recv = DeviceBuffer::<T>::uninit(send.device(), counts.iter().sum())?;
                send.synchronize()?;
                // SAFETY: MPI may read and write device memory (the library
                // said so); `send` holds counts[rank] elements the device has
                // finished writing; `recv` holds their sum, laid out by `d`;
                // `&mut recv` keeps other users out until MPI returns.
                unsafe {
                    mpi!(MPI_Allgatherv(
                        send.as_raw_ptr(),
                        send.len() as c_int,
                        element_datatype::<T>(),
                        recv.as_raw_mut_ptr(),
                        c.as_ptr(),
                        d.as_ptr(),
                        element_datatype::<T>(),
                        self.as_raw(),
                    ))?;
                }
                Ok((recv, counts))
            }
            DeviceTransfer::Staged => {
                let mine = send.to_vec()?;
                let all = self.unchecked().all_gather_v(&mine)?;
                drop(mine);
                let recv = DeviceBuffer::from_slice(send.device(), &all.data)?;
                Ok((recv, counts))
            }
        }
    }
}
