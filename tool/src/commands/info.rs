//! `tessera info`: a table (or JSON) of every rank of the job.

use tessera::{Comm, Universe};
use tessera_cli::Result;

/// Prints the job's description on rank 0.
pub fn info(universe: &Universe, world: &Comm, json: bool) -> Result<u8> {
    if let Some(job) = tessera_cli::info::gather_job_info(universe, world, 0)? {
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&job).expect("JobInfo serialises")
            );
        } else {
            print!("{}", tessera_cli::info::render_table(&job));
        }
    }
    Ok(0)
}
