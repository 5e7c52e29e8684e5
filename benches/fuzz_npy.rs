//! Fuzzes the `.npy` reader with the property tests' generators (one
//! copy, `tests/common/npy_gen.rs`): arbitrary bytes, token-soup headers,
//! valid files and mutated valid files, each fed to `parse_header` and to
//! every reader. Prints the cases run, how many some reader read and how
//! many all refused cleanly, the wall time and the cases per second; exits
//! non-zero on a panic or a failed check (shrunk to a minimal case).
//!
//! ```text
//! cargo bench --bench fuzz_npy                           # 100,000 cases
//! TESSERA_FUZZ_CASES=1000000 cargo bench --bench fuzz_npy
//! ```
//!
//! Run without `--bench` (as `cargo test --benches` does) it runs the
//! tests' 2,000 cases.

#[path = "../tests/common/npy_gen.rs"]
mod npy_gen;

use std::cell::RefCell;
use std::process::ExitCode;
use std::time::Instant;

use npy_gen::Origin;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Cases under `cargo bench` when `TESSERA_FUZZ_CASES` is not set.
const DEFAULT_BENCH_CASES: u32 = 100_000;

fn main() -> ExitCode {
    let bench = std::env::args().any(|a| a == "--bench");
    let cases = npy_gen::cases_from_env(if bench {
        DEFAULT_BENCH_CASES
    } else {
        npy_gen::DEFAULT_TEST_CASES
    });
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    // (cases, read) per origin, in Origin::ALL order.
    let counts = RefCell::new([(0u64, 0u64); Origin::ALL.len()]);
    let start = Instant::now();
    let outcome = runner.run(&npy_gen::any_case(), |case| {
        let read = npy_gen::check(&case).map_err(TestCaseError::fail)?;
        let slot = Origin::ALL
            .iter()
            .position(|&o| o == case.origin)
            .expect("every origin is listed");
        let mut counts = counts.borrow_mut();
        counts[slot].0 += 1;
        counts[slot].1 += u64::from(read);
        Ok(())
    });
    let seconds = start.elapsed().as_secs_f64();
    if let Err(e) = outcome {
        eprintln!("fuzz_npy: FAILED: {e}");
        return ExitCode::FAILURE;
    }
    let counts = counts.into_inner();
    let run: u64 = counts.iter().map(|c| c.0).sum();
    let read: u64 = counts.iter().map(|c| c.1).sum();
    println!("fuzz_npy: .npy reader (parse_header + 8 readers per case)");
    println!("  cases run       {run}");
    println!("  accepted (read) {read}");
    println!("  rejected        {} (clean errors)", run - read);
    for (origin, (n, r)) in Origin::ALL.iter().zip(counts) {
        println!("    {:<9} {n:>8} cases, {r:>8} read", format!("{origin:?}"));
    }
    println!("  wall time       {seconds:.2} s");
    println!("  cases/s         {:.0}", run as f64 / seconds);
    ExitCode::SUCCESS
}
