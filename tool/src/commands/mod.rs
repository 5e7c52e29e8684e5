//! What each subcommand does, one file per family, and how they run:
//! inside MPI ([`with_mpi`]) or not, an error printed as `tessera: ...`
//! with exit status 2.

mod bench;
mod demo;
mod info;
mod run;
mod scaling;
mod selftest;

use std::path::PathBuf;
use std::process::ExitCode;

use tessera::{Comm, Universe};
use tessera_cli::Result;
use tessera_cli::demo::allreduce::AllreduceJob;
use tessera_cli::demo::matmul::MatmulJob;
use tessera_cli::demo::sort::SortJob;

use crate::cli::{Cli, Command};

/// Runs the command the command line asked for.
pub fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::RankExec { program } => run::rank_exec(&program),
        Command::StartupProbe => with_mpi(|_, _| Ok(0)),
        Command::Info { json } => with_mpi(|u, w| info::info(u, w, json)),
        Command::Bench(command) => bench::bench(command),
        Command::Selftest { checks } => with_mpi(|_, w| selftest::selftest(w, &checks)),
        Command::Scaling(args) => finish(scaling::scaling(args)),
        Command::Allreduce {
            n,
            len,
            iters,
            json,
            trace,
        } => {
            let job = AllreduceJob { n, len, iters };
            with_mpi_traced(trace, |_, w| demo::allreduce(w, &job, json))
        }
        Command::Sort {
            n,
            dtype,
            dist,
            input,
            out,
            algo,
            device,
            seed,
            verify,
            json,
            trace,
        } => {
            let job = SortJob {
                n,
                dist,
                input,
                out,
                algo,
                device,
                seed,
                verify,
            };
            with_mpi_traced(trace, |_, w| demo::sort(w, &job, dtype, verify, json))
        }
        Command::Matmul {
            m,
            k,
            n,
            a,
            b,
            out,
            dtype,
            device,
            gemm_backend,
            grid,
            panel,
            progress_slices,
            seed,
            repeat,
            verify,
            json,
            trace,
        } => {
            let job = MatmulJob {
                m,
                k,
                n,
                inputs: a.zip(b),
                out,
                device,
                gemm_backend,
                grid,
                panel,
                progress_slices,
                seed,
                repeat,
                verify,
            };
            with_mpi_traced(trace, |_, w| demo::matmul(w, &job, dtype, verify, json))
        }
    }
}

/// Prints the error as `tessera: ...`; exit status 2.
fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    print_error(e);
    ExitCode::from(2)
}

/// Prints `tessera: ERROR` on standard error in one write, so that the
/// line never interleaves with other ranks' output under `mpirun`.
fn print_error(e: &dyn std::fmt::Display) {
    use std::io::Write as _;
    let line = format!("tessera: {e}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Exit status 0 for a command that succeeded, else [`fail`].
fn finish(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Runs `body` inside MPI. Errors that every rank returns together finalise
/// MPI and exit with status 2; the panic hook covers the rest.
fn with_mpi(body: impl FnOnce(&Universe, &Comm) -> Result<u8>) -> ExitCode {
    with_mpi_traced(None, body)
}

/// [`with_mpi`] recording a trace into `trace` (else where `TESSERA_TRACE`
/// says, if set).
fn with_mpi_traced(
    trace: Option<PathBuf>,
    body: impl FnOnce(&Universe, &Comm) -> Result<u8>,
) -> ExitCode {
    let universe = match Universe::init() {
        Ok(u) => u,
        Err(e) => return fail(&e),
    };
    let world = universe.world();
    let rank = world.rank();
    // The body's errors pass through the library's tracing as library
    // errors, with the same message.
    let code = match tessera::comm::trace::run_traced(&world, trace, || {
        body(&universe, &world).map_err(tessera::Error::from)
    }) {
        Ok(code) => code,
        Err(e) => {
            if rank == 0 {
                print_error(&e);
            }
            2
        }
    };
    drop(world);
    drop(universe);
    ExitCode::from(code)
}
