//! `tessera run`, the launcher, and `tessera rank-exec`, what it starts on
//! every rank.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use tessera_cli::launch::{self, RunOptions};

use super::fail;
use crate::cli::{Cli, RunArgs};

/// Starts the job through mpirun and exits with its status.
pub fn run(args: RunArgs) -> ExitCode {
    // A tessera subcommand's arguments are checked here, once,
    // rather than by every rank of the job.
    if args
        .program
        .first()
        .and_then(|f| f.to_str())
        .is_some_and(|f| launch::OWN_SUBCOMMANDS.contains(&f))
        && let Err(e) = Cli::try_parse_from(
            std::iter::once(OsString::from("tessera")).chain(args.program.iter().cloned()),
        )
    {
        e.exit();
    }
    let opts = RunOptions::from(args);
    match launch::run(&opts) {
        Ok(code) => ExitCode::from(code),
        Err(e) => fail(&e),
    }
}

/// Sets this rank's GPU and replaces the process with `program`; returns
/// only when that fails.
pub fn rank_exec(program: &[OsString]) -> ExitCode {
    fail(&launch::rank_exec(program))
}
