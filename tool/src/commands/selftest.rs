//! `tessera selftest`: the checks' verdicts, printed by rank 0.

use tessera::Comm;
use tessera_cli::Result;

/// Runs the named checks (all when `names` is empty); status 1 when one
/// failed.
pub fn selftest(world: &Comm, names: &[String]) -> Result<u8> {
    let report = tessera_cli::selftest::run(world, names)?;
    let failed = report.iter().filter(|(_, f)| !f.is_empty()).count();
    if world.rank() == 0 {
        for (name, failures) in &report {
            if failures.is_empty() {
                println!("selftest {name} ... ok");
            } else {
                println!("selftest {name} ... FAILED");
                for (rank, message) in failures {
                    println!("    rank {rank}: {message}");
                }
            }
        }
        println!(
            "selftest on {} ranks: {} checks ok, {failed} failed",
            world.size(),
            report.len() - failed
        );
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
