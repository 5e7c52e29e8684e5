//! Per-rank spans: where each rank spent its time, as compute, communication
//! and waiting, and a Chrome trace of the whole job.
//!
//! Tessera's own code opens a span around every local computation (a GEMM,
//! a sort, a merge), every collective and transfer (with its bytes), and
//! every wait for a non-blocking operation. Recording is off by default: a
//! span then costs one relaxed atomic load. It is turned on for the whole
//! job by `TESSERA_TRACE=path.json` ([`crate::env::TRACE`]) (or `--trace path.json`), which writes
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
//! The module has three parts, in two layers: [`span`] records this
//! rank's spans and knows nothing of MPI; [`analysis`] splits gathered
//! traces into compute, communication and waiting and writes the Chrome
//! trace, also without MPI; [`crate::comm::trace`] starts and ends a
//! recording on every rank, aligns the clocks and gathers the traces
//! through the communicator.
//!
//! ```
//! use tessera::comm::trace;
//!
//! tessera::spmd(|world| {
//!     trace::begin(world, None)?;
//!     let start = tessera::trace::mark();
//!     {
//!         let _s = tessera::trace::compute("my step");
//!         // ... local work ...
//!     }
//!     world.barrier()?;
//!     let split = trace::split(world, start)?;
//!     if world.rank() == 0 {
//!         for r in &split {
//!             println!("rank {}: compute {:.3} s, wait {:.3} s", r.rank, r.compute, r.wait);
//!         }
//!     }
//!     trace::end(world)?;
//!     Ok(())
//! });
//! ```

pub mod analysis;
pub mod span;

pub use analysis::{RankSplit, render_split, slowest};
pub use span::{Category, Mark, Span, active, compute, copy, mark, region};
pub(crate) use span::{Link, Posted, comm, wait_for};
