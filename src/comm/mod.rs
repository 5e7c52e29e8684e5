//! The SPMD runtime: the MPI universe, communicators, typed point-to-point
//! messages and collectives, process grids.
//!
//! This is the only module that touches rsmpi and MPI's C interface. Every
//! call here is made by the thread that initialised MPI (MPI's
//! `MPI_THREAD_FUNNELED` level): compute on rayon's threads, communicate
//! from the main one.
//!
//! ```
//! use tessera::comm::ReduceOp;
//!
//! tessera::spmd(|world| {
//!     let mine = [world.rank() as f64];
//!     let total = world.all_reduce(&mine, ReduceOp::Sum)?;
//!     if world.rank() == 0 {
//!         println!("sum of ranks = {}", total[0]);
//!     }
//!     Ok(())
//! });
//! ```

/// Calls an MPI function through `mpi::ffi` and turns its return code into a
/// `Result`, naming the function on failure. Use inside an `unsafe` block.
macro_rules! mpi {
    ($f:ident ( $($arg:expr),* $(,)? )) => {
        $crate::comm::check(stringify!($f), mpi::ffi::$f($($arg),*))
    };
}

mod abort;
mod affinity;
mod blocks;
mod check;
mod collective;
mod datatype;
mod device;
mod exchange;
mod grid;
mod nonblocking;
mod p2p;
pub mod trace;

use std::cell::Cell;
use std::os::raw::{c_char, c_int};
use std::rc::Rc;

use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::{Color, Communicator, Group, SimpleCommunicator};

pub use blocks::{Agreed, block_owner, block_range};
pub use check::rank_list;
pub use collective::Varying;
pub use datatype::{ReduceOp, Reducible};
pub use device::{DeviceTransfer, cuda_aware_mpi, device_transfer, transfer_path};
pub use exchange::ExchangePath;
pub(crate) use exchange::split_counts;
pub use grid::{ProcessGrid, square_ish_factors};
pub use nonblocking::{Request, pending_requests};
pub use p2p::{ANY_TAG, Source, Status};

use crate::error::{Error, Result};

/// Turns an MPI return code into a `Result`.
pub(crate) fn check(call: &'static str, rc: c_int) -> Result<()> {
    if rc == ffi::MPI_SUCCESS as c_int {
        Ok(())
    } else {
        Err(mpi_error(call, rc))
    }
}

/// The error class of an MPI return code (`MPI_Error_class`).
pub(crate) fn error_class(rc: c_int) -> c_int {
    if rc == ffi::MPI_SUCCESS as c_int {
        return rc;
    }
    let mut class: c_int = rc;
    // SAFETY: a valid out-pointer; MPI_Error_class accepts any error code.
    unsafe {
        ffi::MPI_Error_class(rc, &mut class);
    }
    class
}

fn mpi_error(call: &'static str, rc: c_int) -> Error {
    let mut text = vec![0 as c_char; ffi::MPI_MAX_ERROR_STRING as usize + 1];
    let mut len: c_int = 0;
    // SAFETY: `text` holds MPI_MAX_ERROR_STRING + 1 characters, as
    // MPI_Error_string requires.
    unsafe {
        ffi::MPI_Error_string(rc, text.as_mut_ptr(), &mut len);
    }
    let bytes: Vec<u8> = text[..len.clamp(0, text.len() as c_int) as usize]
        .iter()
        .map(|&c| c as u8)
        .collect();
    Error::Mpi {
        call,
        class: error_class(rc),
        message: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Makes MPI errors on `comm` return codes instead of aborting, so Tessera
/// can turn them into errors that say what to change (a short receive
/// buffer, for one).
fn return_errors(comm: &SimpleCommunicator) {
    // SAFETY: a valid communicator and a predefined error handler.
    unsafe {
        ffi::MPI_Comm_set_errhandler(comm.as_raw(), ffi::RSMPI_ERRORS_RETURN);
    }
}

/// What every communicator of the process shares: MPI itself, finalised when
/// the last communicator and the [`Universe`] are gone.
struct Env {
    // Field order matters: Tessera's world is freed before MPI is finalised.
    world: Rc<SimpleCommunicator>,
    /// A second duplicate of `MPI_COMM_WORLD`, used only when ranks end
    /// with an error (`abort::end_with_error`), so that its barrier never
    /// matches a collective of the program's.
    failures: SimpleCommunicator,
    _mpi: mpi::environment::Universe,
    host: String,
    world_rank: usize,
    world_tag: Rc<TraceTag>,
}

/// A communicator's identity in traces, the same on every rank of it, and
/// its count of collective calls (so that one call can be matched across
/// ranks) and of communicators made from it.
struct TraceTag {
    id: u64,
    size: u32,
    calls: Cell<u64>,
    children: Cell<u64>,
}

impl TraceTag {
    fn new(id: u64, size: usize) -> Rc<TraceTag> {
        Rc::new(TraceTag {
            id,
            size: size as u32,
            calls: Cell::new(0),
            children: Cell::new(0),
        })
    }
}

/// FNV-1a over the words, for communicator trace ids.
fn mix(words: &[u64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for w in words {
        for b in w.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The MPI environment of this process. Create it once, at the start of
/// `main`; MPI is finalised when it and every [`Comm`] made from it are
/// dropped.
///
/// Creating it installs a panic hook: a panic on any rank prints
/// `rank R on HOST: MESSAGE` and aborts the whole job through `MPI_Abort`, so
/// `mpirun` exits non-zero instead of waiting forever for the dead rank.
pub struct Universe {
    env: Rc<Env>,
}

impl Universe {
    /// Initialises MPI (thread level `MPI_THREAD_FUNNELED`).
    ///
    /// Collective over the job: when ranks are bound to one core each
    /// while they asked for more threads (`RAYON_NUM_THREADS`) or their
    /// node has idle cores (Open MPI's default binding under plain
    /// `mpirun`), rank 0 prints one warning naming them and the `mpirun`
    /// option that fixes it.
    ///
    /// Fails with [`Error::AlreadyInitialized`] when MPI is already
    /// initialised in this process.
    pub fn init() -> Result<Universe> {
        if mpi::environment::is_initialized() {
            return Err(Error::AlreadyInitialized);
        }
        let (universe, _level) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            .ok_or(Error::AlreadyInitialized)?;
        // Tessera's world is a duplicate of MPI_COMM_WORLD: its messages never
        // match those of other libraries on MPI_COMM_WORLD, and it returns
        // errors (see `return_errors`) without changing MPI_COMM_WORLD's
        // handler for anyone else.
        let world = universe.world().duplicate();
        return_errors(&world);
        let failures = universe.world().duplicate();
        let world_rank = world.rank() as usize;
        let world_tag = TraceTag::new(1, world.size() as usize);
        let host = mpi::environment::processor_name().unwrap_or_else(|_| "unknown-host".into());
        abort::install_panic_hook(world_rank, host.clone());
        let universe = Universe {
            env: Rc::new(Env {
                world: Rc::new(world),
                failures,
                _mpi: universe,
                host,
                world_rank,
                world_tag,
            }),
        };
        // Open MPI's default binding can hold each rank to one core: say so.
        affinity::warn_if_held_to_one_core(&universe.world())?;
        Ok(universe)
    }

    /// The communicator of every rank in the job (a duplicate of
    /// `MPI_COMM_WORLD`, made once at start-up).
    ///
    /// Collective arguments are checked unless the environment variable
    /// `TESSERA_UNCHECKED` is set to `1`.
    pub fn world(&self) -> Comm {
        let unchecked = std::env::var(crate::env::UNCHECKED).is_ok_and(|v| v == "1" || v == "true");
        Comm {
            raw: self.env.world.clone(),
            checked: !unchecked,
            tag: self.env.world_tag.clone(),
            env: self.env.clone(),
        }
    }

    /// The MPI library's own version string (`MPI_Get_library_version`).
    pub fn library_version(&self) -> String {
        mpi::environment::library_version()
            .unwrap_or_default()
            .trim_matches(|c: char| c == '\0' || c.is_whitespace())
            .to_string()
    }
}

/// Seconds since an arbitrary time in the past (`MPI_Wtime`), for timing.
pub fn wtime() -> f64 {
    mpi::time()
}

/// A communicator: a group of ranks that exchange messages and make
/// collective calls together.
///
/// Cloning is cheap and shares the MPI communicator. Every collective checks,
/// by default, that the ranks agree on its arguments before any data moves
/// (see [`Comm::unchecked`]).
#[derive(Clone)]
pub struct Comm {
    // Field order matters: the communicator is freed before the environment
    // that may finalise MPI.
    raw: Rc<SimpleCommunicator>,
    checked: bool,
    tag: Rc<TraceTag>,
    env: Rc<Env>,
}

impl std::fmt::Debug for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Comm")
            .field("rank", &self.rank())
            .field("size", &self.size())
            .field("checked", &self.checked)
            .finish()
    }
}

impl Comm {
    /// Numbers the communicators made from this one (collective calls, so
    /// the number is the same on every rank).
    fn next_child(&self) -> u64 {
        let n = self.tag.children.get();
        self.tag.children.set(n + 1);
        n
    }

    /// Wraps a communicator made from this one as the `child`-th.
    fn wrap(&self, raw: SimpleCommunicator, child: u64) -> Comm {
        return_errors(&raw);
        // The trace id: this one's, the child number, and the world rank of
        // the new communicator's rank 0 (which tells apart the
        // communicators one split makes).
        let first = raw
            .group()
            .translate_rank(0, &self.env.world.group())
            .unwrap_or(-1);
        let id = mix(&[self.tag.id, child, first as u64]);
        let size = raw.size() as usize;
        Comm {
            raw: Rc::new(raw),
            checked: self.checked,
            tag: TraceTag::new(id, size),
            env: self.env.clone(),
        }
    }

    /// Opens the trace span of a collective call on this communicator and
    /// numbers the call (always, so the numbers agree across ranks whether
    /// or not they trace).
    pub(crate) fn trace_call(&self, name: &'static str, bytes: usize) -> crate::trace::Span {
        let seq = self.tag.calls.get();
        self.tag.calls.set(seq + 1);
        crate::trace::comm(
            name,
            bytes,
            Some(crate::trace::Link {
                comm: self.tag.id,
                size: self.tag.size,
                seq,
            }),
        )
    }

    /// Opens the trace span of a point-to-point transfer.
    pub(crate) fn trace_p2p(&self, name: &'static str, bytes: usize) -> crate::trace::Span {
        crate::trace::comm(name, bytes, None)
    }

    /// This rank's number in the communicator, from 0 to `size() - 1`.
    pub fn rank(&self) -> usize {
        self.raw.rank() as usize
    }

    /// The number of ranks in the communicator.
    pub fn size(&self) -> usize {
        self.raw.size() as usize
    }

    /// The name of the host this rank runs on (`MPI_Get_processor_name`).
    pub fn host(&self) -> &str {
        &self.env.host
    }

    /// This rank's number in `MPI_COMM_WORLD`.
    pub fn world_rank(&self) -> usize {
        self.env.world_rank
    }

    /// Whether collective arguments are checked on this communicator.
    pub fn is_checked(&self) -> bool {
        self.checked
    }

    /// The same communicator with the collective-argument checks turned off.
    ///
    /// The checks cost one small `MPI_Allreduce` per collective call (see
    /// `tessera bench` for the figure). Without them, ranks that disagree on a
    /// collective's arguments hang or fail inside MPI, as in plain MPI; each
    /// rank's own buffers are still described to MPI exactly, so MPI never
    /// writes past them.
    pub fn unchecked(&self) -> Comm {
        Comm {
            checked: false,
            ..self.clone()
        }
    }

    /// The same communicator with the collective-argument checks turned on.
    pub fn checked(&self) -> Comm {
        Comm {
            checked: true,
            ..self.clone()
        }
    }

    /// Splits the communicator (`MPI_Comm_split`, collective): ranks that pass
    /// the same `color` form a new communicator, ordered by `key` and then by
    /// their rank here. Ranks that pass `None` get `None`. Colours must be at
    /// most 2147483647 (MPI's `int`).
    pub fn split(&self, color: Option<u32>, key: i32) -> Result<Option<Comm>> {
        let child = self.next_child();
        let raw_color = color.map(i32::try_from).transpose();
        let bad_color = || {
            Error::invalid(
                "split",
                format!(
                    "color {} is above 2147483647: use a smaller colour",
                    color.unwrap_or_default()
                ),
            )
        };
        if self.checked {
            let local = if raw_color.is_err() {
                Err(bad_color())
            } else {
                Ok(())
            };
            check::agree(self, check::Signature::new::<u8>("split"), local)?;
        }
        let new = self.raw.split_by_color_with_key(
            match raw_color {
                Ok(Some(c)) => Color::with_value(c),
                // An out-of-range colour (unchecked) takes part without a
                // colour, so that the other ranks are not left waiting.
                Ok(None) | Err(_) => Color::undefined(),
            },
            key,
        );
        if raw_color.is_err() {
            return Err(bad_color());
        }
        Ok(new.map(|raw| self.wrap(raw, child)))
    }

    /// The ranks of this communicator that share this rank's node (memory),
    /// as a communicator of their own (`MPI_Comm_split_type` with
    /// `MPI_COMM_TYPE_SHARED`, collective). Its rank is the node-local rank
    /// used to pick one GPU per rank.
    pub fn split_shared(&self) -> Comm {
        let child = self.next_child();
        let raw = self.raw.split_shared(self.raw.rank());
        self.wrap(raw, child)
    }

    /// This rank's index among the ranks of its node (the rank of
    /// [`split_shared`](Self::split_shared); collective): what
    /// [`Device::select`](crate::Device::select) and
    /// [`Device::auto`](crate::Device::auto) take to give each rank of a
    /// node its own GPU.
    ///
    /// ```
    /// use tessera::device::{Device, DeviceChoice};
    ///
    /// tessera::spmd(|world| {
    ///     let device = Device::select(DeviceChoice::Auto, world.local_rank())?;
    ///     println!("rank {} computes on {device}", world.rank());
    ///     Ok(())
    /// });
    /// ```
    pub fn local_rank(&self) -> usize {
        self.split_shared().rank()
    }

    /// A new communicator with the same ranks and a separate message space
    /// (`MPI_Comm_dup`, collective): a library's messages on it never match
    /// the caller's.
    pub fn dup(&self) -> Comm {
        let child = self.next_child();
        let raw = self.raw.duplicate();
        self.wrap(raw, child)
    }

    /// Whether `other` has the same ranks in the same order as this
    /// communicator (`MPI_Comm_compare` gives identical or congruent).
    pub fn same_ranks_as(&self, other: &Comm) -> bool {
        use mpi::topology::CommunicatorRelation;
        matches!(
            self.raw.compare(other.rsmpi()),
            CommunicatorRelation::Identical | CommunicatorRelation::Congruent
        )
    }

    /// Ends every rank of the job with `code` (`MPI_Abort`).
    pub fn abort(&self, code: i32) -> ! {
        self.raw.abort(code)
    }

    /// The underlying rsmpi communicator, for calls Tessera does not wrap.
    ///
    /// Its MPI error handler is `MPI_ERRORS_RETURN` (Tessera checks every
    /// return code); rsmpi's own calls ignore return codes, so check results
    /// of calls made through it.
    pub fn rsmpi(&self) -> &SimpleCommunicator {
        &self.raw
    }

    pub(crate) fn as_raw(&self) -> ffi::MPI_Comm {
        self.raw.as_raw()
    }

    /// Returns an error on every rank unless `root` is a rank of this
    /// communicator.
    pub(crate) fn check_root(&self, op: &'static str, root: usize) -> Result<()> {
        if root >= self.size() {
            return Err(Error::invalid(
                op,
                format!(
                    "root {root} is not a rank of this communicator (ranks 0-{})",
                    self.size() - 1
                ),
            ));
        }
        Ok(())
    }
}

/// Runs `body` as the SPMD program of this rank: initialises MPI, passes the
/// world communicator, and finalises MPI when `body` returns `Ok`.
///
/// When `body` returns an error, the rank prints `rank R on HOST: error: ...`
/// and aborts the whole job with exit status 1, because the other ranks may
/// be waiting for it in a collective. A panic does the same through the panic
/// hook. This is the `main` of every Tessera example.
///
/// With `TESSERA_TRACE=path.json` in the environment, every rank records
/// trace spans while `body` runs and rank 0 writes them to that file as one
/// Chrome trace (see [`crate::trace`]).
pub fn spmd<F>(body: F)
where
    F: FnOnce(&Comm) -> Result<()>,
{
    let universe = match Universe::init() {
        Ok(u) => u,
        Err(e) => {
            eprintln!("tessera: {e}");
            std::process::exit(1);
        }
    };
    let world = universe.world();
    if let Err(e) = trace::run_traced(&world, None, || body(&world)) {
        // Returns only where every rank failed together and rank 0 has
        // printed each distinct message once: end cleanly, status 1.
        abort::end_with_error(&universe.env.failures, &format!("error: {e}"), 1);
        drop(world);
        drop(universe);
        std::process::exit(1);
    }
    drop(world);
    drop(universe);
}
