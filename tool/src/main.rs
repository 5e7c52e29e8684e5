//! The `tessera` command: job information, the launcher, benchmarks and the
//! runtime's self-test.
//!
//! The command line is defined in [`cli`], what each subcommand does in
//! [`commands`].

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    commands::dispatch(cli::Cli::parse())
}
