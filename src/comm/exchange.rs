//! All-to-all-v in which the sender writes straight into what the receiver
//! reads: [`Comm::exchange`].
//!
//! The caller fills one slice per destination rank (classifying its data
//! on the way) and then consumes what arrived, in sender order. Where every
//! rank of the communicator shares one node, the slices are the receivers'
//! own memory: an MPI-3 shared-memory window (`MPI_Win_allocate_shared` on
//! the node's communicator), so the data crosses memory once, during the
//! fill, and no message is sent. Elsewhere the slices are parts of one send
//! buffer that `MPI_Alltoallv` delivers.

use std::os::raw::{c_int, c_void};

use bytemuck::Pod;
use mpi::ffi;

use super::Comm;
use super::datatype::ReduceOp;
use crate::error::{Error, Result};

/// How [`Comm::exchange`] moves data between ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExchangePath {
    /// Shared memory where every rank shares one node, MPI otherwise (the
    /// default; [`crate::env::EXCHANGE`] overrides it).
    #[default]
    Auto,
    /// `MPI_Alltoallv` from a send buffer into a receive buffer.
    Mpi,
    /// Senders write into the receivers' part of a shared-memory window;
    /// only where every rank shares one node (an error elsewhere).
    Shared,
}

named_choices!(ExchangePath { Auto => "auto", Mpi => "mpi", Shared => "shared" });

impl ExchangePath {
    /// The path [`crate::env::EXCHANGE`] asks for, or `Auto` when unset.
    pub fn from_env() -> Result<ExchangePath> {
        match std::env::var(crate::env::EXCHANGE) {
            Ok(v) if !v.is_empty() => v.parse().map_err(|_| {
                Error::invalid(
                    "exchange",
                    format!(
                        "{}={v:?} is not a path: set it to auto, mpi or shared",
                        crate::env::EXCHANGE
                    ),
                )
            }),
            _ => Ok(ExchangePath::Auto),
        }
    }
}

impl Comm {
    /// Sends `send_counts[r]` elements to each rank `r` (collective), where
    /// the elements are written by `fill` into the slice of each
    /// destination, then calls `take` on what this rank received (every
    /// sender's elements in rank order) with the count from each sender,
    /// and returns its result and the path taken.
    ///
    /// `path` chooses shared memory or MPI ([`ExchangePath::Auto`]: shared
    /// memory where every rank shares one node). With shared memory, the
    /// slices `fill` writes are the receivers' memory and `take` reads
    /// its own, so nothing is copied besides what `fill` writes; the memory
    /// is returned when `take` ends. `fill` and `take` must not call MPI
    /// (they may use rayon's threads).
    ///
    /// ```
    /// use tessera::comm::ExchangePath;
    ///
    /// tessera::spmd(|world| {
    ///     let (p, me) = (world.size(), world.rank());
    ///     // Rank r sends r + 1 copies of its rank to every rank.
    ///     let counts = vec![me + 1; p];
    ///     let (got, _path) = world.exchange::<u32, _>(
    ///         &counts,
    ///         |parts| parts.iter_mut().for_each(|part| part.fill(me as u32)),
    ///         |received, from| (received.to_vec(), from.to_vec()),
    ///         ExchangePath::Auto,
    ///     )?;
    ///     assert_eq!(got.1, (1..=p).collect::<Vec<_>>());
    ///     assert_eq!(got.0.len(), p * (p + 1) / 2);
    ///     Ok(())
    /// });
    /// ```
    pub fn exchange<T: Pod + Send, R>(
        &self,
        send_counts: &[usize],
        fill: impl FnOnce(&mut [&mut [T]]),
        take: impl FnOnce(&mut [T], &[usize]) -> R,
        path: ExchangePath,
    ) -> Result<(R, ExchangePath)> {
        let op = "exchange";
        super::collective::check_counts(op, send_counts, self.size(), send_counts.iter().sum())?;
        self.same_everywhere(
            op,
            &[super::Agreed::named(
                "the exchange path",
                path as u64,
                |v| {
                    ExchangePath::ALL
                        .get(v as usize)
                        .map_or("an unknown path", |p| p.name())
                        .to_string()
                },
            )],
        )?;
        let shared = match path {
            ExchangePath::Mpi => None,
            ExchangePath::Auto | ExchangePath::Shared => {
                let node = self.split_shared();
                let whole = node.size() == self.size() && node.rank() == self.rank();
                let everywhere = self.all_reduce(&[whole as u8], ReduceOp::Min)?[0] == 1;
                if !everywhere && path == ExchangePath::Shared {
                    return Err(Error::invalid(
                        op,
                        "a shared-memory exchange needs every rank on one node: use the mpi or auto path",
                    ));
                }
                everywhere.then_some(node)
            }
        };
        match shared {
            Some(node) => {
                let _span = self.trace_call("exchange_shared", 0);
                let r = node.exchange_shared(send_counts, fill, take)?;
                Ok((r, ExchangePath::Shared))
            }
            None => {
                let _span = self.trace_call("exchange_mpi", 0);
                let r = self.exchange_mpi(send_counts, fill, take)?;
                Ok((r, ExchangePath::Mpi))
            }
        }
    }

    fn exchange_mpi<T: Pod, R>(
        &self,
        send_counts: &[usize],
        fill: impl FnOnce(&mut [&mut [T]]),
        take: impl FnOnce(&mut [T], &[usize]) -> R,
    ) -> Result<R> {
        let mut send = vec![T::zeroed(); send_counts.iter().sum()];
        {
            let mut parts = split_counts(&mut send, send_counts);
            fill(&mut parts);
        }
        let mut received = self.all_to_all_v(&send, send_counts)?;
        drop(send);
        Ok(take(&mut received.data, &received.counts))
    }

    /// The shared-memory exchange on a communicator whose ranks share one
    /// node.
    fn exchange_shared<T: Pod, R>(
        &self,
        send_counts: &[usize],
        fill: impl FnOnce(&mut [&mut [T]]),
        take: impl FnOnce(&mut [T], &[usize]) -> R,
    ) -> Result<R> {
        let p = self.size();
        let plain = self.unchecked();
        let counts: Vec<u64> = send_counts.iter().map(|&c| c as u64).collect();
        // Where this rank's elements start in each receiver's part: the
        // counts that lower ranks send there.
        let offsets = plain.exclusive_scan(&counts, ReduceOp::Sum)?;
        let recv_counts = plain.exchange_counts(send_counts)?;
        let mine: usize = recv_counts.iter().sum();
        let elem = size_of::<T>().max(1);
        let bytes = mine
            .checked_mul(elem)
            .filter(|&b| b <= ffi::MPI_Aint::MAX as usize)
            .ok_or_else(|| {
                Error::invalid("exchange", format!("{mine} elements do not fit one window"))
            })?;
        let window = Window::allocate(self, bytes, elem)?;
        let result = {
            let mut parts: Vec<&mut [T]> = Vec::with_capacity(p);
            for (r, (&count, &offset)) in send_counts.iter().zip(&offsets).enumerate() {
                if count == 0 {
                    parts.push(&mut []);
                    continue;
                }
                let (base, size) = window.segment(r)?;
                let end = (offset as usize + count) * elem;
                if base.is_null() || end > size {
                    return Err(Error::msg(format!(
                        "exchange: rank {r}'s window holds {size} bytes, {end} needed"
                    )));
                }
                // SAFETY: `base` is rank r's segment of the window, `size`
                // bytes mapped in this process, and [offset, offset + count)
                // elements lie inside it (checked). Every sender writes only
                // its own range of each segment (offsets are the exclusive
                // prefix sums of the counts sent there), so the slices
                // alias no other live reference; T is Pod, so any bytes
                // that memory held are a valid T.
                parts.push(unsafe {
                    std::slice::from_raw_parts_mut((base as *mut T).add(offset as usize), count)
                });
            }
            fill(&mut parts);
            drop(parts);
            // Every rank's writes are done and visible before anyone reads.
            window.sync()?;
            plain.barrier()?;
            window.sync()?;
            let (base, size) = window.segment(self.rank())?;
            let own: &mut [T] = if mine == 0 || base.is_null() || size < mine * elem {
                &mut []
            } else {
                // SAFETY: this rank's own segment, `size` >= mine * elem
                // bytes; after the barrier no rank writes to it, and no
                // other reference to it lives here.
                unsafe { std::slice::from_raw_parts_mut(base as *mut T, mine) }
            };
            take(own, &recv_counts)
        };
        window.free()?;
        Ok(result)
    }
}

/// `buf` cut into consecutive slices of the given lengths.
pub(crate) fn split_counts<'a, T>(buf: &'a mut [T], counts: &[usize]) -> Vec<&'a mut [T]> {
    let mut parts = Vec::with_capacity(counts.len());
    let mut rest = buf;
    for &c in counts {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(c);
        parts.push(head);
        rest = tail;
    }
    parts
}

/// An MPI-3 shared-memory window, locked for passive access by every rank
/// from allocation until [`Window::free`].
struct Window {
    win: ffi::MPI_Win,
}

impl Window {
    /// Allocates `bytes` in this rank's segment (collective on `comm`,
    /// whose ranks share one node), each segment in its owner's memory.
    fn allocate(comm: &Comm, bytes: usize, elem: usize) -> Result<Window> {
        let mut base: *mut c_void = std::ptr::null_mut();
        // SAFETY: the null handles are MPI's constants, read once; the info
        // object is created, given a key and freed here; the window call
        // writes `base` and `win`, both live locals, and is made by every
        // rank of `comm` (collective).
        let win = unsafe {
            let mut info = ffi::RSMPI_INFO_NULL;
            let mut win = ffi::RSMPI_WIN_NULL;
            mpi!(MPI_Info_create(&mut info))?;
            mpi!(MPI_Info_set(
                info,
                c"alloc_shared_noncontig".as_ptr(),
                c"true".as_ptr()
            ))?;
            let rc = mpi!(MPI_Win_allocate_shared(
                bytes as ffi::MPI_Aint,
                elem as c_int,
                info,
                comm.as_raw(),
                &mut base as *mut *mut c_void as *mut c_void,
                &mut win,
            ));
            mpi!(MPI_Info_free(&mut info))?;
            rc?;
            mpi!(MPI_Win_lock_all(ffi::MPI_MODE_NOCHECK as c_int, win))?;
            win
        };
        Ok(Window { win })
    }

    /// The address and size in bytes of rank `r`'s segment.
    fn segment(&self, r: usize) -> Result<(*mut c_void, usize)> {
        let mut size: ffi::MPI_Aint = 0;
        let mut unit: c_int = 0;
        let mut base: *mut c_void = std::ptr::null_mut();
        // SAFETY: the window is live; the call writes three live locals.
        unsafe {
            mpi!(MPI_Win_shared_query(
                self.win,
                r as c_int,
                &mut size,
                &mut unit,
                &mut base as *mut *mut c_void as *mut c_void,
            ))?;
        }
        Ok((base, size.max(0) as usize))
    }

    /// Makes this process's stores visible to the others and theirs to it
    /// (with a barrier between two calls).
    fn sync(&self) -> Result<()> {
        // SAFETY: the window is live and locked.
        unsafe { mpi!(MPI_Win_sync(self.win)) }
    }

    /// Unlocks and frees the window (collective).
    fn free(mut self) -> Result<()> {
        // SAFETY: the window is live and locked by this rank; every
        // reference into its memory has ended (the slices were dropped).
        unsafe {
            mpi!(MPI_Win_unlock_all(self.win))?;
            mpi!(MPI_Win_free(&mut self.win))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_counts_cuts_in_order() {
        let mut v: Vec<u32> = (0..10).collect();
        let parts = split_counts(&mut v, &[3, 0, 7]);
        assert_eq!(parts.len(), 3);
        assert_eq!(&*parts[0], &[0, 1, 2]);
        assert!(parts[1].is_empty());
        assert_eq!(parts[2][0], 3);
    }

    #[test]
    fn paths_parse_by_name() {
        for path in ExchangePath::ALL {
            assert_eq!(path.name().parse::<ExchangePath>().unwrap(), *path);
        }
        assert!("tcp".parse::<ExchangePath>().is_err());
    }
}
