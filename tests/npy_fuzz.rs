//! Property tests of the `.npy` reader: arbitrary bytes, token soups,
//! valid files and mutated valid files never make it panic, valid files
//! round-trip exactly, and every refusal says what is wrong and what to
//! do (see `common/npy_gen.rs` for the cases and the checks).
//!
//! `TESSERA_FUZZ_CASES` sets the cases per property (default 2,000);
//! `cargo bench --bench fuzz_npy` runs 100,000 mixed cases in release.

#[path = "common/npy_gen.rs"]
mod npy_gen;

use npy_gen::{Case, check};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: npy_gen::cases_from_env(npy_gen::DEFAULT_TEST_CASES),
        ..ProptestConfig::default()
    }
}

/// Checks `case`, and that it was `read` (`Some(true)`), refused
/// (`Some(false)`) or either (`None`).
fn run(case: &Case, read: Option<bool>) -> Result<(), TestCaseError> {
    let got = check(case).map_err(TestCaseError::fail)?;
    if let Some(want) = read {
        prop_assert_eq!(got, want, "read by some reader");
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_are_refused_cleanly(case in npy_gen::random_bytes()) {
        run(&case, Some(false))?;
    }

    #[test]
    fn arbitrary_bytes_after_the_magic_string_never_panic(case in npy_gen::magic_then_random()) {
        run(&case, None)?;
    }

    #[test]
    fn headers_of_random_tokens_never_panic(case in npy_gen::token_soup()) {
        run(&case, None)?;
    }

    #[test]
    fn extreme_dimensions_are_counted_without_overflow(case in npy_gen::extreme_shapes()) {
        run(&case, None)?;
    }

    #[test]
    fn valid_files_round_trip_exactly(case in npy_gen::valid_files()) {
        run(&case, None)?;
    }

    #[test]
    fn mutated_files_are_read_exactly_or_refused_cleanly(case in npy_gen::mutated_files()) {
        run(&case, None)?;
    }

    #[test]
    fn mixed_cases_as_the_benchmark_runs_them(case in npy_gen::any_case()) {
        run(&case, None)?;
    }
}

/// The mutations do what they say on a known file.
#[test]
fn mutations_edit_the_header_and_keep_its_length_right() {
    use npy_gen::{Mutation, Pos, apply, assemble};
    let header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }\n";
    let file = assemble(1, header, &1.0f64.to_le_bytes());
    let mut inserted = file.clone();
    apply(&mut inserted, &Mutation::HeaderInsert(Pos(0), "  "));
    let h = tessera::npy::parse_header(&inserted).unwrap();
    assert_eq!(h.data_offset, 10 + header.len() + 2);
    let mut deleted = file.clone();
    apply(&mut deleted, &Mutation::HeaderDelete(Pos(0), 1));
    assert!(
        tessera::npy::parse_header(&deleted)
            .unwrap_err()
            .contains("not a Python dict")
    );
    let mut long = file;
    apply(&mut long, &Mutation::HeaderLen(70_000));
    // Version 1 keeps the low 16 bits: 70,000 - 65,536 = 4,464.
    assert!(
        tessera::npy::parse_header(&long)
            .unwrap_err()
            .contains("claims 4464 bytes")
    );
}
