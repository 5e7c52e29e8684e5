//! `tessera selftest`: the checks' verdicts, printed by rank 0.

use tessera::Comm;
use tessera_cli::Result;

/// Runs the named checks (all when `names` is empty); status 1 when one
/// failed.
pub fn selftest(world: &Comm, names: &[String]) -> Result<u8> {
    // Each verdict as soon as its check ends: a check that hangs is the
    // one after the last line.
    let report = tessera_cli::selftest::run(world, names, |(name, failures)| {
        if world.rank() != 0 {
            return;
        }
        if failures.is_empty() {
            println!("selftest {name} ... ok");
        } else {
            println!("selftest {name} ... FAILED");
            for (rank, message) in failures {
                println!("    rank {rank}: {message}");
            }
        }
    })?;
    let failed = report.iter().filter(|(_, f)| !f.is_empty()).count();
    if world.rank() == 0 {
        println!(
            "selftest on {} ranks: {} checks ok, {failed} failed",
            world.size(),
            report.len() - failed
        );
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
