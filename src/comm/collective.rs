//! Typed collectives (MPI 4.1 chapter 6).
//!
//! Data-movement collectives take any [`bytemuck::Pod`] element type;
//! reductions take a [`Reducible`] one. In checked mode (the default) each
//! call first confirms that all ranks agree on its arguments (see
//! `check.rs`); the `v` forms learn every rank's count from the same
//! exchange, so their receive buffers are sized for the caller.

use std::os::raw::c_int;

use bytemuck::Pod;

use super::Comm;
use super::check::{Signature, agree, hash_counts};
use super::datatype::{
    ReduceOp, Reducible, check_reduction, counts_and_displs, element_datatype, recv_ptr, send_ptr,
    to_count,
};
use crate::error::{Error, Result};

/// The result of a variable-count collective: every rank's part, concatenated
/// in rank order, with the count and offset of each part.
#[derive(Debug, Clone, PartialEq)]
pub struct Varying<T> {
    /// All parts, in rank order.
    pub data: Vec<T>,
    /// The number of elements from (or for) each rank.
    pub counts: Vec<usize>,
    /// Where each rank's part starts in `data`.
    pub displs: Vec<usize>,
}

impl<T> Varying<T> {
    pub(crate) fn new(data: Vec<T>, counts: Vec<usize>) -> Self {
        let mut displs = Vec::with_capacity(counts.len());
        let mut offset = 0;
        for &c in &counts {
            displs.push(offset);
            offset += c;
        }
        Varying {
            data,
            counts,
            displs,
        }
    }

    /// The part that came from (or goes to) `rank`.
    pub fn part(&self, rank: usize) -> &[T] {
        &self.data[self.displs[rank]..self.displs[rank] + self.counts[rank]]
    }

    /// The parts in rank order.
    pub fn parts(&self) -> impl Iterator<Item = &[T]> {
        (0..self.counts.len()).map(move |r| self.part(r))
    }
}

impl Comm {
    /// Runs the agreement check in checked mode; in unchecked mode returns the
    /// local validation result alone.
    pub(crate) fn prepare(&self, sig: Signature, local: Result<()>) -> Result<()> {
        if self.checked {
            agree(self, sig, local).map(drop)
        } else {
            local
        }
    }

    /// Every rank's element count, for the variable-count collectives
    /// (`MPI_Allgather` of one integer per rank, after the check).
    pub(super) fn gather_counts(
        &self,
        sig: Signature,
        local: Result<()>,
        len: usize,
    ) -> Result<Vec<usize>> {
        self.prepare(sig, local)?;
        let counts = self.unchecked().all_gather(&[len as u64])?;
        Ok(counts.into_iter().map(|c| c as usize).collect())
    }

    /// Waits until every rank has reached this call (`MPI_Barrier`; in
    /// checked mode the agreement exchange itself is the barrier, and it also
    /// catches a rank that made a different collective call here).
    pub fn barrier(&self) -> Result<()> {
        let _span = self.trace_call("barrier", 0);
        if self.checked {
            agree(self, Signature::new::<u8>("barrier"), Ok(()))?;
        } else {
            // SAFETY: a valid communicator; MPI_Barrier takes no buffers.
            unsafe {
                mpi!(MPI_Barrier(self.as_raw()))?;
            }
        }
        Ok(())
    }

    /// Copies `buf` from `root` into `buf` on every other rank (`MPI_Bcast`).
    /// Every rank passes a buffer of the same length.
    pub fn broadcast<T: Pod>(&self, buf: &mut [T], root: usize) -> Result<()> {
        let _span = self.trace_call("broadcast", std::mem::size_of_val(buf));
        const OP: &str = "broadcast";
        let local = self
            .check_root(OP, root)
            .and_then(|_| to_count(OP, buf.len()).map(drop));
        self.prepare(Signature::new::<T>(OP).root(root).count(buf.len()), local)?;
        let count = to_count(OP, buf.len())?;
        // SAFETY: `buf` is valid for `count` elements on every rank (the
        // lengths agree: checked above, or the caller's promise when
        // unchecked).
        unsafe {
            mpi!(MPI_Bcast(
                recv_ptr(buf),
                count,
                element_datatype::<T>(),
                root as c_int,
                self.as_raw(),
            ))?;
        }
        Ok(())
    }

    /// Broadcasts `data` from `root` and returns it on every rank; the
    /// receivers need not know its length (their `data` is ignored: pass
    /// `&[]`).
    pub fn broadcast_vec<T: Pod>(&self, data: &[T], root: usize) -> Result<Vec<T>> {
        let _span = self.trace_call("broadcast_vec", std::mem::size_of_val(data));
        const OP: &str = "broadcast_vec";
        let is_root = self.rank() == root;
        let local = self
            .check_root(OP, root)
            .and_then(|_| to_count(OP, data.len()).map(drop));
        self.prepare(Signature::new::<T>(OP).root(root), local)?;
        let mut len = [data.len() as u64];
        self.unchecked().broadcast(&mut len, root)?;
        let len = len[0] as usize;
        let mut out = if is_root {
            data.to_vec()
        } else {
            vec![T::zeroed(); len]
        };
        self.unchecked().broadcast(&mut out, root)?;
        Ok(out)
    }

    pub(crate) fn reduction_signature<T: Reducible>(
        &self,
        op: &'static str,
        len: usize,
        reduction: ReduceOp,
    ) -> Signature {
        Signature::new::<T>(op)
            .count(len)
            .reduction(T::type_code(), reduction.code())
    }

    /// Combines `send` element-wise over all ranks with `op` and returns the
    /// result on `root`, `None` elsewhere (`MPI_Reduce`).
    pub fn reduce<T: Reducible>(
        &self,
        send: &[T],
        op: ReduceOp,
        root: usize,
    ) -> Result<Option<Vec<T>>> {
        let _span = self.trace_call("reduce", std::mem::size_of_val(send));
        const OP: &str = "reduce";
        let local = check_reduction::<T>(OP, op)
            .and_then(|_| self.check_root(OP, root))
            .and_then(|_| to_count(OP, send.len()).map(drop));
        self.prepare(
            self.reduction_signature::<T>(OP, send.len(), op).root(root),
            local,
        )?;
        let count = to_count(OP, send.len())?;
        let mut recv = if self.rank() == root {
            vec![T::zeroed(); send.len()]
        } else {
            Vec::new()
        };
        // SAFETY: `send` holds `count` elements; on the root `recv` holds
        // `count` elements; elsewhere the receive buffer is not used.
        unsafe {
            mpi!(MPI_Reduce(
                send_ptr(send),
                recv_ptr(&mut recv),
                count,
                T::mpi_datatype(),
                op.raw(),
                root as c_int,
                self.as_raw(),
            ))?;
        }
        Ok((self.rank() == root).then_some(recv))
    }

    /// Combines `send` element-wise over all ranks with `op` and returns the
    /// result on every rank (`MPI_Allreduce`).
    pub fn all_reduce<T: Reducible>(&self, send: &[T], op: ReduceOp) -> Result<Vec<T>> {
        let _span = self.trace_call("all_reduce", std::mem::size_of_val(send));
        let mut recv = vec![T::zeroed(); send.len()];
        self.all_reduce_into(send, &mut recv, op)?;
        Ok(recv)
    }

    /// Like [`Comm::all_reduce`], writing into `recv`, which must be as long
    /// as `send`.
    pub fn all_reduce_into<T: Reducible>(
        &self,
        send: &[T],
        recv: &mut [T],
        op: ReduceOp,
    ) -> Result<()> {
        let _span = self.trace_call("all_reduce_into", std::mem::size_of_val(send));
        const OP: &str = "all_reduce";
        let local = check_reduction::<T>(OP, op)
            .and_then(|_| to_count(OP, send.len()).map(drop))
            .and_then(|_| same_length(OP, send.len(), recv.len()));
        self.prepare(self.reduction_signature::<T>(OP, send.len(), op), local)?;
        let count = to_count(OP, send.len())?;
        // SAFETY: both buffers hold `count` elements of T, and the lengths
        // agree across ranks (checked, or the caller's promise).
        unsafe {
            mpi!(MPI_Allreduce(
                send_ptr(send),
                recv_ptr(recv),
                count,
                T::mpi_datatype(),
                op.raw(),
                self.as_raw(),
            ))?;
        }
        Ok(())
    }

    /// Like [`Comm::all_reduce`], replacing `buf` with the result.
    pub fn all_reduce_in_place<T: Reducible>(&self, buf: &mut [T], op: ReduceOp) -> Result<()> {
        let _span = self.trace_call("all_reduce_in_place", std::mem::size_of_val(buf));
        let send = buf.to_vec();
        self.all_reduce_into(&send, buf, op)
    }

    /// Collects `send` from every rank on `root`, in rank order (`MPI_Gather`).
    /// Every rank sends the same number of elements; see [`Comm::gather_v`]
    /// for differing counts.
    pub fn gather<T: Pod>(&self, send: &[T], root: usize) -> Result<Option<Vec<T>>> {
        let _span = self.trace_call("gather", std::mem::size_of_val(send));
        const OP: &str = "gather";
        let local = self
            .check_root(OP, root)
            .and_then(|_| to_count(OP, send.len()).map(drop));
        self.prepare(Signature::new::<T>(OP).root(root).count(send.len()), local)?;
        let count = to_count(OP, send.len())?;
        let is_root = self.rank() == root;
        let mut recv = if is_root {
            vec![T::zeroed(); send.len() * self.size()]
        } else {
            Vec::new()
        };
        // SAFETY: `send` holds `count` elements; on the root `recv` holds
        // `count` elements per rank.
        unsafe {
            mpi!(MPI_Gather(
                send_ptr(send),
                count,
                element_datatype::<T>(),
                recv_ptr(&mut recv),
                count,
                element_datatype::<T>(),
                root as c_int,
                self.as_raw(),
            ))?;
        }
        Ok(is_root.then_some(recv))
    }

    /// Collects `send` from every rank on `root` when the counts differ,
    /// zero included (`MPI_Gatherv`). The counts are exchanged for you.
    pub fn gather_v<T: Pod>(&self, send: &[T], root: usize) -> Result<Option<Varying<T>>> {
        let _span = self.trace_call("gather_v", std::mem::size_of_val(send));
        const OP: &str = "gather_v";
        let local = self
            .check_root(OP, root)
            .and_then(|_| to_count(OP, send.len()).map(drop));
        let counts = self.gather_counts(Signature::new::<T>(OP).root(root), local, send.len())?;
        let is_root = self.rank() == root;
        let (c, d) = counts_and_displs(OP, &counts)?;
        let total: usize = counts.iter().sum();
        let mut recv = if is_root {
            vec![T::zeroed(); total]
        } else {
            Vec::new()
        };
        // SAFETY: `send` holds counts[rank] elements; on the root `recv` holds
        // the sum of the counts, laid out by the displacements `d`.
        unsafe {
            mpi!(MPI_Gatherv(
                send_ptr(send),
                send.len() as c_int,
                element_datatype::<T>(),
                recv_ptr(&mut recv),
                c.as_ptr(),
                d.as_ptr(),
                element_datatype::<T>(),
                root as c_int,
                self.as_raw(),
            ))?;
        }
        Ok(is_root.then(|| Varying::new(recv, counts)))
    }

    /// Splits `send` on `root` into equal parts, one per rank in rank order,
    /// and returns this rank's part (`MPI_Scatter`). On the root `send.len()`
    /// must be a multiple of the rank count; elsewhere `send` is ignored.
    pub fn scatter<T: Pod>(&self, send: &[T], root: usize) -> Result<Vec<T>> {
        let _span = self.trace_call("scatter", std::mem::size_of_val(send));
        const OP: &str = "scatter";
        let size = self.size();
        let is_root = self.rank() == root;
        let local = self.check_root(OP, root).and_then(|_| {
            if is_root && !send.len().is_multiple_of(size) {
                return Err(Error::invalid(
                    OP,
                    format!(
                        "the root sends {} elements, not a multiple of the {size} ranks: pad the data or use scatter_v",
                        send.len()
                    ),
                ));
            }
            to_count(OP, send.len() / size).map(drop)
        });
        let own = if is_root { send.len() / size } else { 0 };
        self.prepare(Signature::new::<T>(OP).root(root), local)?;
        let mut n = [own as u64];
        self.unchecked().broadcast(&mut n, root)?;
        let per_rank = n[0] as usize;
        let count = to_count(OP, per_rank)?;
        let mut recv = vec![T::zeroed(); per_rank];
        // SAFETY: on the root `send` holds `count` elements per rank; every
        // rank's `recv` holds `count` elements.
        unsafe {
            mpi!(MPI_Scatter(
                send_ptr(send),
                count,
                element_datatype::<T>(),
                recv_ptr(&mut recv),
                count,
                element_datatype::<T>(),
                root as c_int,
                self.as_raw(),
            ))?;
        }
        Ok(recv)
    }

    /// Sends `counts[r]` consecutive elements of `send` on `root` to each rank
    /// `r` and returns this rank's part (`MPI_Scatterv`). On the root `counts`
    /// has one entry per rank and sums to `send.len()`; elsewhere both are
    /// ignored.
    pub fn scatter_v<T: Pod>(&self, send: &[T], counts: &[usize], root: usize) -> Result<Vec<T>> {
        let _span = self.trace_call("scatter_v", std::mem::size_of_val(send));
        const OP: &str = "scatter_v";
        let size = self.size();
        let is_root = self.rank() == root;
        let local = self.check_root(OP, root).and_then(|_| {
            if !is_root {
                return Ok(());
            }
            check_counts(OP, counts, size, send.len())?;
            counts_and_displs(OP, counts).map(drop)
        });
        self.prepare(Signature::new::<T>(OP).root(root), local)?;
        // Every rank learns its own count from the root.
        let wire: Vec<u64> = if is_root {
            counts.iter().map(|&c| c as u64).collect()
        } else {
            Vec::new()
        };
        let mine = self.unchecked().scatter(&wire, root)?[0] as usize;
        let (c, d) = if is_root {
            counts_and_displs(OP, counts)?
        } else {
            (Vec::new(), Vec::new())
        };
        let mut recv = vec![T::zeroed(); mine];
        // SAFETY: on the root `send` holds sum(counts) elements laid out by
        // `d`; every rank's `recv` holds exactly its count.
        unsafe {
            mpi!(MPI_Scatterv(
                send_ptr(send),
                c.as_ptr(),
                d.as_ptr(),
                element_datatype::<T>(),
                recv_ptr(&mut recv),
                mine as c_int,
                element_datatype::<T>(),
                root as c_int,
                self.as_raw(),
            ))?;
        }
        Ok(recv)
    }

    /// Collects `send` from every rank on every rank, in rank order
    /// (`MPI_Allgather`). Every rank sends the same number of elements.
    pub fn all_gather<T: Pod>(&self, send: &[T]) -> Result<Vec<T>> {
        let _span = self.trace_call("all_gather", std::mem::size_of_val(send));
        const OP: &str = "all_gather";
        let local = to_count(OP, send.len()).map(drop);
        self.prepare(Signature::new::<T>(OP).count(send.len()), local)?;
        let count = to_count(OP, send.len())?;
        let mut recv = vec![T::zeroed(); send.len() * self.size()];
        // SAFETY: `send` holds `count` elements; `recv` holds `count` per rank.
        unsafe {
            mpi!(MPI_Allgather(
                send_ptr(send),
                count,
                element_datatype::<T>(),
                recv_ptr(&mut recv),
                count,
                element_datatype::<T>(),
                self.as_raw(),
            ))?;
        }
        Ok(recv)
    }

    /// Collects `send` from every rank on every rank when the counts differ,
    /// zero included (`MPI_Allgatherv`).
    pub fn all_gather_v<T: Pod>(&self, send: &[T]) -> Result<Varying<T>> {
        let _span = self.trace_call("all_gather_v", std::mem::size_of_val(send));
        const OP: &str = "all_gather_v";
        let local = to_count(OP, send.len()).map(drop);
        let counts = self.gather_counts(Signature::new::<T>(OP), local, send.len())?;
        let (c, d) = counts_and_displs(OP, &counts)?;
        let mut recv = vec![T::zeroed(); counts.iter().sum()];
        // SAFETY: `send` holds counts[rank] elements; `recv` holds their sum,
        // laid out by `d`.
        unsafe {
            mpi!(MPI_Allgatherv(
                send_ptr(send),
                send.len() as c_int,
                element_datatype::<T>(),
                recv_ptr(&mut recv),
                c.as_ptr(),
                d.as_ptr(),
                element_datatype::<T>(),
                self.as_raw(),
            ))?;
        }
        Ok(Varying::new(recv, counts))
    }

    /// Sends the `r`-th of `size()` equal parts of `send` to rank `r` and
    /// returns the parts received, in rank order (`MPI_Alltoall`).
    pub fn all_to_all<T: Pod>(&self, send: &[T]) -> Result<Vec<T>> {
        let _span = self.trace_call("all_to_all", std::mem::size_of_val(send));
        let mut recv = vec![T::zeroed(); send.len()];
        self.all_to_all_into(send, &mut recv)?;
        Ok(recv)
    }

    /// Like [`Comm::all_to_all`], writing into `recv`, which must be as long
    /// as `send`.
    pub fn all_to_all_into<T: Pod>(&self, send: &[T], recv: &mut [T]) -> Result<()> {
        let _span = self.trace_call("all_to_all_into", std::mem::size_of_val(send));
        const OP: &str = "all_to_all";
        let local = equal_parts(OP, send.len(), self.size(), "all_to_all_v")
            .and_then(|_| same_length(OP, send.len(), recv.len()));
        self.prepare(Signature::new::<T>(OP).count(send.len()), local)?;
        let count = equal_parts(OP, send.len(), self.size(), "all_to_all_v")?;
        // SAFETY: both buffers hold `count` elements per rank.
        unsafe {
            mpi!(MPI_Alltoall(
                send_ptr(send),
                count,
                element_datatype::<T>(),
                recv_ptr(recv),
                count,
                element_datatype::<T>(),
                self.as_raw(),
            ))?;
        }
        Ok(())
    }

    /// Sends `send_counts[r]` consecutive elements of `send` to each rank `r`
    /// and returns what every rank sent here (`MPI_Alltoallv`). The receive
    /// counts are exchanged for you.
    pub fn all_to_all_v<T: Pod>(&self, send: &[T], send_counts: &[usize]) -> Result<Varying<T>> {
        self.all_to_all_v_into(send, send_counts, Vec::new())
    }

    /// [`all_to_all_v`](Self::all_to_all_v) into `buffer`'s memory (its
    /// contents are dropped; it grows where it must): a buffer whose pages
    /// are already mapped saves mapping fresh ones, a good part of moving
    /// large data between ranks of one node.
    pub fn all_to_all_v_into<T: Pod>(
        &self,
        send: &[T],
        send_counts: &[usize],
        buffer: Vec<T>,
    ) -> Result<Varying<T>> {
        let _span = self.trace_call("all_to_all_v", std::mem::size_of_val(send));
        let plan = self.plan_all_to_all_v::<T>("all_to_all_v", send.len(), send_counts)?;
        let total = plan.recv_counts.iter().sum();
        let mut recv = buffer;
        if recv.capacity() < total {
            // calloc'ed: pages are mapped as MPI writes them.
            recv = vec![T::zeroed(); total];
        } else if recv.len() >= total {
            // MPI overwrites every element: write none here.
            recv.truncate(total);
        } else {
            recv.resize(total, T::zeroed());
        }
        // SAFETY: `send` holds sum(send_counts) elements laid out by the send
        // displacements; `recv` holds sum(recv_counts) laid out by the receive
        // displacements, and recv_counts[r] is what rank r sends here.
        unsafe {
            mpi!(MPI_Alltoallv(
                send_ptr(send),
                plan.send_counts.as_ptr(),
                plan.send_displs.as_ptr(),
                element_datatype::<T>(),
                recv_ptr(&mut recv),
                plan.recv_counts_raw.as_ptr(),
                plan.recv_displs.as_ptr(),
                element_datatype::<T>(),
                self.as_raw(),
            ))?;
        }
        Ok(Varying::new(recv, plan.recv_counts))
    }

    /// Every rank's count for this rank, from every rank's `send_counts`.
    pub(crate) fn exchange_counts(&self, send_counts: &[usize]) -> Result<Vec<usize>> {
        let wire: Vec<u64> = send_counts.iter().map(|&c| c as u64).collect();
        let got = self.unchecked().all_to_all(&wire)?;
        Ok(got.into_iter().map(|c| c as usize).collect())
    }

    /// Inclusive prefix reduction: rank `r` gets `send` combined over ranks
    /// `0..=r` (`MPI_Scan`).
    pub fn scan<T: Reducible>(&self, send: &[T], op: ReduceOp) -> Result<Vec<T>> {
        let _span = self.trace_call("scan", std::mem::size_of_val(send));
        self.scan_impl("scan", send, op, false)
    }

    /// Exclusive prefix reduction: rank `r` gets `send` combined over ranks
    /// `0..r` (`MPI_Exscan`). Rank 0, where MPI leaves the result undefined,
    /// gets the identity of `op` (0 for a sum, 1 for a product, the type's
    /// largest value for a minimum, ...).
    pub fn exclusive_scan<T: Reducible>(&self, send: &[T], op: ReduceOp) -> Result<Vec<T>> {
        let _span = self.trace_call("exclusive_scan", std::mem::size_of_val(send));
        self.scan_impl("exclusive_scan", send, op, true)
    }

    fn scan_impl<T: Reducible>(
        &self,
        name: &'static str,
        send: &[T],
        op: ReduceOp,
        exclusive: bool,
    ) -> Result<Vec<T>> {
        let local =
            check_reduction::<T>(name, op).and_then(|_| to_count(name, send.len()).map(drop));
        self.prepare(self.reduction_signature::<T>(name, send.len(), op), local)?;
        let count = to_count(name, send.len())?;
        let mut recv = vec![T::identity(op); send.len()];
        // SAFETY: both buffers hold `count` elements of T.
        unsafe {
            if exclusive {
                mpi!(MPI_Exscan(
                    send_ptr(send),
                    recv_ptr(&mut recv),
                    count,
                    T::mpi_datatype(),
                    op.raw(),
                    self.as_raw(),
                ))?;
            } else {
                mpi!(MPI_Scan(
                    send_ptr(send),
                    recv_ptr(&mut recv),
                    count,
                    T::mpi_datatype(),
                    op.raw(),
                    self.as_raw(),
                ))?;
            }
        }
        if exclusive && self.rank() == 0 {
            recv.iter_mut().for_each(|x| *x = T::identity(op));
        }
        Ok(recv)
    }

    /// Combines `send` element-wise over all ranks, then gives rank `r` the
    /// `counts[r]` elements of the result that start at the sum of the
    /// earlier counts (`MPI_Reduce_scatter`). Every rank passes the same
    /// `counts`, which sum to `send.len()`.
    pub fn reduce_scatter<T: Reducible>(
        &self,
        send: &[T],
        counts: &[usize],
        op: ReduceOp,
    ) -> Result<Vec<T>> {
        let _span = self.trace_call("reduce_scatter", std::mem::size_of_val(send));
        const OP: &str = "reduce_scatter";
        let local = check_reduction::<T>(OP, op)
            .and_then(|_| check_counts(OP, counts, self.size(), send.len()))
            .and_then(|_| counts_and_displs(OP, counts).map(drop));
        self.prepare(
            self.reduction_signature::<T>(OP, send.len(), op)
                .extra(hash_counts(counts)),
            local,
        )?;
        let (c, _) = counts_and_displs(OP, counts)?;
        let mut recv = vec![T::zeroed(); counts[self.rank()]];
        // SAFETY: `send` holds sum(counts) elements; `recv` holds this rank's
        // count; the counts agree across ranks.
        unsafe {
            mpi!(MPI_Reduce_scatter(
                send_ptr(send),
                recv_ptr(&mut recv),
                c.as_ptr(),
                T::mpi_datatype(),
                op.raw(),
                self.as_raw(),
            ))?;
        }
        Ok(recv)
    }

    /// [`Comm::reduce_scatter`] with equal parts: `send.len()` is a multiple
    /// of the rank count and each rank gets `send.len() / size()` elements
    /// (`MPI_Reduce_scatter_block`).
    pub fn reduce_scatter_block<T: Reducible>(&self, send: &[T], op: ReduceOp) -> Result<Vec<T>> {
        let _span = self.trace_call("reduce_scatter_block", std::mem::size_of_val(send));
        const OP: &str = "reduce_scatter_block";
        let local = check_reduction::<T>(OP, op)
            .and_then(|_| equal_parts(OP, send.len(), self.size(), "reduce_scatter").map(drop));
        self.prepare(self.reduction_signature::<T>(OP, send.len(), op), local)?;
        let count = equal_parts(OP, send.len(), self.size(), "reduce_scatter")?;
        let mut recv = vec![T::zeroed(); count as usize];
        // SAFETY: `send` holds `count` elements per rank; `recv` holds `count`.
        unsafe {
            mpi!(MPI_Reduce_scatter_block(
                send_ptr(send),
                recv_ptr(&mut recv),
                count,
                T::mpi_datatype(),
                op.raw(),
                self.as_raw(),
            ))?;
        }
        Ok(recv)
    }
}

/// Checks that `len` elements split into `size` equal parts and returns the
/// part's length as an MPI count; `alternative` names the call to use
/// otherwise.
pub(crate) fn equal_parts(
    op: &'static str,
    len: usize,
    size: usize,
    alternative: &str,
) -> Result<c_int> {
    if !len.is_multiple_of(size) {
        return Err(Error::invalid(
            op,
            format!(
                "{len} elements do not split into {size} equal parts: pass a multiple of the rank count or use {alternative}"
            ),
        ));
    }
    to_count(op, len / size)
}

/// Checks that a receive buffer is as long as the send buffer.
pub(crate) fn same_length(op: &'static str, send: usize, recv: usize) -> Result<()> {
    if send != recv {
        return Err(Error::invalid(
            op,
            format!(
                "the receive buffer holds {recv} elements and the send buffer {send}: make them the same length"
            ),
        ));
    }
    Ok(())
}

/// What an all-to-all-v needs besides its buffers: both sides' counts and
/// displacements, as MPI wants them.
pub(crate) struct AllToAllV {
    pub recv_counts: Vec<usize>,
    pub send_counts: Vec<c_int>,
    pub send_displs: Vec<c_int>,
    pub recv_counts_raw: Vec<c_int>,
    pub recv_displs: Vec<c_int>,
}

impl Comm {
    /// Validates the send counts, checks the ranks agree (checked mode) and
    /// exchanges the counts, for the blocking and non-blocking all-to-all-v.
    pub(crate) fn plan_all_to_all_v<T: Pod>(
        &self,
        op: &'static str,
        send_len: usize,
        send_counts: &[usize],
    ) -> Result<AllToAllV> {
        let local = check_counts(op, send_counts, self.size(), send_len)
            .and_then(|_| counts_and_displs(op, send_counts).map(drop));
        let largest_send = if self.checked {
            agree(self, Signature::new::<T>(op).own(send_len), local)?
        } else {
            local?;
            -1
        };
        let recv_counts = self.exchange_counts(send_counts)?;
        // Only this rank knows whether what it receives fits MPI's int
        // displacements, so a failure must be shared before anyone goes on.
        let received = counts_and_displs(op, &recv_counts);
        let may_overflow = (largest_send.max(0) as u128) * (self.size() as u128) > i32::MAX as u128;
        if !self.checked {
            if let Err(e) = &received {
                // Unchecked: the other ranks cannot be told; end the job
                // rather than leave them waiting.
                super::abort::abort_with_message(&format!("error: {e}"), 1);
            }
        } else if may_overflow {
            let failed = self
                .unchecked()
                .all_reduce(&[received.is_err() as u8], ReduceOp::Max)?[0];
            if failed == 1 && received.is_ok() {
                return Err(Error::Remote {
                    op,
                    message: "another rank would receive more than 2147483647 elements: send less per call".into(),
                });
            }
        }
        let (recv_counts_raw, recv_displs) = received?;
        let (send_counts, send_displs) = counts_and_displs(op, send_counts)?;
        Ok(AllToAllV {
            recv_counts,
            send_counts,
            send_displs,
            recv_counts_raw,
            recv_displs,
        })
    }
}

/// Checks that `counts` has one entry per rank and sums to `len`.
pub(crate) fn check_counts(
    op: &'static str,
    counts: &[usize],
    size: usize,
    len: usize,
) -> Result<()> {
    if counts.len() != size {
        return Err(Error::invalid(
            op,
            format!(
                "{} counts were given for {size} ranks: pass one count per rank",
                counts.len()
            ),
        ));
    }
    let sum: usize = counts.iter().sum();
    if sum != len {
        return Err(Error::invalid(
            op,
            format!(
                "the counts add up to {sum} but the buffer holds {len} elements: make them agree"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varying_parts() {
        let v = Varying::new(vec![1, 2, 3, 4, 5], vec![2, 0, 3]);
        assert_eq!(v.displs, vec![0, 2, 2]);
        assert_eq!(v.part(0), &[1, 2]);
        assert!(v.part(1).is_empty());
        assert_eq!(v.part(2), &[3, 4, 5]);
        assert_eq!(v.parts().count(), 3);
    }

    #[test]
    fn counts_must_match_ranks_and_length() {
        assert!(check_counts("t", &[1, 2], 2, 3).is_ok());
        let e = check_counts("t", &[1, 2], 3, 3).unwrap_err().to_string();
        assert!(e.contains("2 counts were given for 3 ranks"), "{e}");
        let e = check_counts("t", &[1, 2], 2, 4).unwrap_err().to_string();
        assert!(e.contains("add up to 3 but the buffer holds 4"), "{e}");
    }
}
