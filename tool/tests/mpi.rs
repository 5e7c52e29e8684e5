//! Integration tests that launch real `mpirun` jobs (through `tessera run`,
//! which becomes `mpirun`) at several rank counts.
//!
//! Every job is bounded by a timeout: a hang is a failure, never a stuck CI.
//! Jobs run one at a time so that oversubscribed runs on small machines do
//! not compete with each other.

mod common;

use std::process::Command;

use common::jobs::{example, mpirun_cmd, run, tessera};
use common::npy::{write_npy_1d, write_npy_f64};

#[test]
fn selftest_passes_at_one_to_four_ranks() {
    for ranks in 1..=4 {
        let job = run(ranks, &["selftest"], &[]);
        job.assert_ok(&format!("selftest at {ranks} ranks"));
        let out = job.stdout();
        assert!(
            out.contains(&format!(
                "selftest on {ranks} ranks: 12 checks ok, 0 failed"
            )),
            "{out}"
        );
    }
}

#[test]
fn selftest_passes_with_checks_turned_off() {
    let job = run(
        3,
        &["selftest", "reduce", "gather", "alltoall"],
        &[(tessera::env::UNCHECKED, "1")],
    );
    job.assert_ok("unchecked selftest");
    assert!(
        job.stdout().contains("3 checks ok, 0 failed"),
        "{}",
        job.stdout()
    );
}

#[test]
fn process_grids_form_for_one_to_twelve_ranks() {
    // 1..=4 are covered by the full self-test; primes 5, 7, 11 give 1 x P.
    for ranks in 5..=12 {
        let job = run(ranks, &["selftest", "grid", "comm"], &[]);
        job.assert_ok(&format!("grid at {ranks} ranks"));
        assert!(
            job.stdout().contains("2 checks ok, 0 failed"),
            "{}",
            job.stdout()
        );
    }
}

#[test]
fn summa_is_right_on_prime_and_composite_rank_counts() {
    // 1-4 ranks are covered by the full self-test.
    for ranks in [5, 6, 7] {
        let job = run(ranks, &["selftest", "matmul"], &[]);
        job.assert_ok(&format!("matmul at {ranks} ranks"));
        assert!(
            job.stdout().contains("1 checks ok, 0 failed"),
            "{}",
            job.stdout()
        );
    }
}

#[test]
fn length_mismatch_is_an_error_on_every_rank_not_a_hang() {
    // The mismatch check asserts, on every rank, that the call returned the
    // error naming the ranks that disagree, and that the ranks are still in
    // step afterwards.
    for ranks in [2, 3, 5] {
        let job = run(ranks, &["selftest", "mismatch"], &[]);
        job.assert_ok(&format!("mismatch at {ranks} ranks"));
        assert!(
            job.stdout().contains("selftest mismatch ... ok"),
            "{}",
            job.stdout()
        );
    }
}

#[test]
fn hello_ranks_prints_every_rank_in_order() {
    for ranks in 1..=4 {
        let job = run(ranks, &[&example("hello_ranks")], &[]);
        job.assert_ok("hello_ranks");
        let lines: Vec<String> = job.stdout().lines().map(String::from).collect();
        assert_eq!(lines.len(), ranks, "{lines:?}");
        for (r, line) in lines.iter().enumerate() {
            assert!(
                line.starts_with(&format!("hello from rank {r} of {ranks} on ")),
                "{line}"
            );
        }
    }
}

#[test]
fn ring_token_sums_the_ranks() {
    for ranks in 1..=4 {
        let job = run(ranks, &[&example("ring"), "3"], &[]);
        job.assert_ok("ring");
        let sum = 3 * ranks * (ranks - 1) / 2;
        assert!(
            job.stdout()
                .contains(&format!("token {sum} after 3 laps, as expected")),
            "{}",
            job.stdout()
        );
    }
}

#[test]
fn the_readmes_first_program_is_the_example_it_runs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let block = readme
        .split("```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a rust block in the README");
    let source = std::fs::read_to_string(root.join("examples/sum_of_ranks.rs")).unwrap();
    let code: String = source
        .lines()
        .skip_while(|l| l.starts_with("//!") || l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        block, code,
        "README's first program and examples/sum_of_ranks.rs differ"
    );
    for ranks in 1..=4 {
        let job = run(ranks, &[&example("sum_of_ranks")], &[]);
        job.assert_ok("sum_of_ranks");
        let sum = ranks * (ranks - 1) / 2;
        assert!(
            job.stdout()
                .contains(&format!("sum of ranks over {ranks} ranks = {sum}")),
            "{}",
            job.stdout()
        );
    }
}

#[test]
fn allreduce_example_checks_every_element() {
    for ranks in 1..=4 {
        let job = run(ranks, &[&example("allreduce"), "10000"], &[]);
        job.assert_ok("allreduce");
        assert!(
            job.stdout().contains(&format!(
                "allreduce of 10000 u64 over {ranks} ranks: sum, min and max correct on every rank"
            )),
            "{}",
            job.stdout()
        );
    }
}

#[test]
fn info_json_describes_every_rank() {
    let job = run(2, &["info", "--json"], &[]);
    job.assert_ok("info --json");
    let v: serde_json::Value = serde_json::from_str(&job.stdout()).expect("info prints JSON");
    assert_eq!(v["ranks"], 2);
    assert!(v["mpi_library"].as_str().unwrap_or("").contains("Open MPI"));
    let ranks = v["rank_info"].as_array().expect("rank_info");
    assert_eq!(ranks.len(), 2);
    for (r, info) in ranks.iter().enumerate() {
        assert_eq!(info["rank"], r);
        assert!(!info["host"].as_str().unwrap_or("").is_empty());
        assert!(info["cpu_model"].is_string() && info["simd"].is_array());
        // Without a GPU the device is the CPU and the reason is given.
        if info["gpu"].is_null() {
            assert_eq!(info["device"], "cpu");
            assert!(info["gpu_absent_reason"].is_string());
        }
    }
    let mut locals: Vec<u64> = ranks
        .iter()
        .map(|i| i["local_rank"].as_u64().unwrap())
        .collect();
    locals.sort();
    assert_eq!(locals, vec![0, 1], "both ranks run on this node");
    // The table form names the same ranks.
    let table = run(2, &["info"], &[]);
    table.assert_ok("info");
    assert!(
        table.stdout().contains("MPI library: Open MPI"),
        "{}",
        table.stdout()
    );
}

#[test]
fn bench_json_has_a_row_per_size() {
    for op in ["allreduce", "bcast", "alltoall", "p2p"] {
        let job = run(2, &["bench", op, "--sizes", "8B..1KiB:x8", "--json"], &[]);
        job.assert_ok(&format!("bench {op}"));
        let v: serde_json::Value = serde_json::from_str(job.stdout().trim()).expect("bench JSON");
        assert_eq!(v["op"], op);
        assert_eq!(v["ranks"], 2);
        let results = v["results"].as_array().expect("results");
        let sizes: Vec<u64> = results
            .iter()
            .map(|r| r["bytes"].as_u64().unwrap())
            .collect();
        assert_eq!(sizes, vec![8, 64, 512]);
        for r in results {
            for key in [
                "tessera_us",
                "tessera_unchecked_us",
                "rsmpi_us",
                "tessera_gbps",
            ] {
                let x = r[key].as_f64().unwrap_or(-1.0);
                assert!(x.is_finite() && x > 0.0, "{op} {key} = {x}");
            }
        }
    }
}

#[test]
fn bad_requests_fail_with_a_reason() {
    let job = run(1, &["bench", "p2p", "--sizes", "8B"], &[]);
    assert_eq!(job.code(), Some(2));
    assert!(
        job.stderr().contains("needs at least 2 ranks"),
        "{}",
        job.stderr()
    );
    let job = run(2, &["bench", "allreduce", "--sizes", "8Q"], &[]);
    assert_eq!(job.code(), Some(2));
    assert!(
        job.stderr().contains("bad --sizes value"),
        "{}",
        job.stderr()
    );
    let job = run(2, &["selftest", "nonsense"], &[]);
    assert_ne!(job.code(), Some(0));
    assert!(
        job.stderr().contains("unknown check `nonsense`"),
        "{}",
        job.stderr()
    );
    let job = run(2, &["/nonexistent/program"], &[]);
    assert_ne!(job.code(), Some(0));
    assert!(
        job.stderr().contains("cannot launch /nonexistent/program"),
        "{}",
        job.stderr()
    );
}

#[test]
fn a_program_in_the_current_directory_is_found_and_a_missing_one_named_once() {
    let ring = std::path::PathBuf::from(example("ring"));
    let dir = ring.parent().unwrap();
    // As mpirun finds it: a name without a slash, from its own folder.
    let job = common::jobs::tessera_in(dir, &["run", "-n", "3", "--", "ring"]);
    job.assert_ok("tessera run -n 3 -- ring, from the examples folder");
    let job = common::jobs::tessera_in(dir, &["run", "-n", "3", "--", "no-such-program"]);
    assert_ne!(job.code(), Some(0));
    let stderr = job.stderr();
    let lines = common::jobs::messages(&stderr);
    assert_eq!(lines.len(), 1, "one message, not one per rank: {stderr}");
    assert!(lines[0].contains("./no-such-program"), "{stderr}");
}

#[test]
fn bench_merge_json_has_a_row_per_run_count_against_the_copy() {
    let out = Command::new(tessera())
        .args([
            "bench",
            "merge",
            "--n",
            "300000",
            "--runs",
            "2,3,16",
            "--dtype",
            "f64",
            "--threads",
            "2",
            "--json",
        ])
        .output()
        .expect("run tessera bench merge");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bench merge JSON");
    assert_eq!(v["dtype"], "f64");
    assert_eq!(v["threads"], 2);
    let rows = v["results"].as_array().expect("results");
    let runs: Vec<u64> = rows.iter().map(|r| r["runs"].as_u64().unwrap()).collect();
    assert_eq!(runs, vec![2, 3, 16]);
    for r in rows {
        let (merge, copy) = (
            r["gb_per_second"].as_f64().unwrap(),
            r["copy_gb_per_second"].as_f64().unwrap(),
        );
        assert!(merge > 0.0 && copy > 0.0, "{r}");
        let ratio = r["ratio_vs_copy"].as_f64().unwrap();
        assert!((ratio - merge / copy).abs() <= 1e-9 * ratio.max(1.0), "{r}");
    }
}

#[test]
fn bench_gemm_json_reports_peak_and_ratio() {
    let out = Command::new(tessera())
        .args([
            "bench",
            "gemm",
            "--n",
            "64,96",
            "--dtype",
            "f32",
            "--json",
            "--threads",
            "1",
        ])
        .output()
        .expect("run tessera bench gemm");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bench gemm JSON");
    assert_eq!(v["dtype"], "f32");
    assert_eq!(v["threads"], 1);
    let peak = v["peak_gflops"].as_f64().unwrap_or(0.0);
    assert!(peak > 0.0, "peak {peak}");
    let rows = v["results"].as_array().expect("results");
    assert_eq!(
        rows.iter()
            .map(|r| r["n"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![64, 96]
    );
    for r in rows {
        let g = r["gflops"].as_f64().unwrap_or(0.0);
        assert!(g > 0.0 && (r["peak_fraction"].as_f64().unwrap() - g / peak).abs() < 1e-9);
        // OpenBLAS is optional: when present, the ratio is its quotient.
        if let Some(o) = r["openblas_gflops"].as_f64() {
            assert!((r["ratio_vs_openblas"].as_f64().unwrap() - g / o).abs() < 1e-9);
        }
    }
}

#[test]
fn without_verify_nothing_claims_to_be_verified_and_tiny_times_keep_digits() {
    for args in [
        &[
            "matmul", "--m", "8", "--k", "8", "--n", "8", "--repeat", "1",
        ][..],
        &["sort", "--n", "64"][..],
    ] {
        let job = run(2, args, &[]);
        job.assert_ok(&args.join(" "));
        let out = job.stdout();
        assert!(!out.contains("verified"), "{out}");
        assert!(out.contains("not checked (pass --verify"), "{out}");
        // A problem this small takes microseconds: shown in them, not as 0.0000 s.
        assert!(!out.contains("time 0.0000 s"), "{out}");
        let job = run(2, &[args, &["--json"]].concat(), &[]);
        let v: serde_json::Value = serde_json::from_str(job.stdout().trim()).unwrap();
        assert!(v["verified"].is_null(), "{v}");
    }
}

#[test]
fn matmul_example_and_cli_verify_at_one_to_four_ranks() {
    for ranks in 1..=4 {
        let job = run(ranks, &[&example("matmul"), "37", "23", "41"], &[]);
        job.assert_ok("matmul example");
        assert!(job.stdout().contains("= 2 x A["), "{}", job.stdout());
        let job = run(
            ranks,
            &[
                "matmul", "--m", "65", "--k", "33", "--n", "17", "--panel", "8", "--verify",
                "--json", "--repeat", "1",
            ],
            &[],
        );
        job.assert_ok("tessera matmul");
        let v: serde_json::Value = serde_json::from_str(job.stdout().trim()).expect("matmul JSON");
        for key in [
            "m",
            "n",
            "k",
            "dtype",
            "ranks",
            "grid",
            "device",
            "seconds",
            "gflops",
            "compute_seconds",
            "comm_seconds",
            "residual",
            "verified",
        ] {
            assert!(!v[key].is_null(), "missing {key}: {v}");
        }
        assert_eq!(
            (v["m"].as_u64(), v["k"].as_u64(), v["n"].as_u64()),
            (Some(65), Some(33), Some(17))
        );
        assert_eq!(v["ranks"], ranks);
        assert_eq!(v["verified"], true);
        assert!(v["residual"].as_f64().unwrap() <= v["residual_threshold"].as_f64().unwrap());
    }
}

#[test]
fn matmul_npy_round_trip_and_bad_files() {
    let dir = std::env::temp_dir().join(format!("tessera-mm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (pa, pb, pc) = (dir.join("a.npy"), dir.join("b.npy"), dir.join("c.npy"));
    // A = [[1, 2, 3], [4, 5, 6]] (C order), B = 3 x 2 in Fortran order.
    write_npy_f64(&pa, &[2, 3], false, &[1., 2., 3., 4., 5., 6.]);
    write_npy_f64(&pb, &[3, 2], true, &[1., 0., 2., 0., 1., 1.]);
    // B (row-major) = [[1, 0], [0, 1], [2, 1]]; A B = [[7, 5], [16, 11]].
    for ranks in [1, 3, 4] {
        let _ = std::fs::remove_file(&pc);
        let job = run(
            ranks,
            &[
                "matmul",
                "--a",
                pa.to_str().unwrap(),
                "--b",
                pb.to_str().unwrap(),
                "--out",
                pc.to_str().unwrap(),
                "--verify",
            ],
            &[],
        );
        job.assert_ok("matmul from .npy");
        let bytes = std::fs::read(&pc).expect("C written");
        let values: Vec<f64> = bytes[bytes.len() - 32..]
            .chunks(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(values, vec![7., 5., 16., 11.], "at {ranks} ranks");
    }
    // Bad files: an error on every rank, exit status 2, no hang.
    let truncated = dir.join("t.npy");
    let good = std::fs::read(&pa).unwrap();
    std::fs::write(&truncated, &good[..good.len() - 5]).unwrap();
    let wrong = dir.join("w.npy");
    std::fs::write(&wrong, b"definitely not numpy").unwrap();
    for (bad, expect) in [(&truncated, "truncated"), (&wrong, "not an .npy file")] {
        let job = run(
            3,
            &[
                "matmul",
                "--a",
                bad.to_str().unwrap(),
                "--b",
                pb.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(job.code(), Some(2), "{}", job.stderr());
        assert!(job.stderr().contains(expect), "{}", job.stderr());
    }
    // Shapes that do not conform.
    let job = run(
        2,
        &[
            "matmul",
            "--a",
            pa.to_str().unwrap(),
            "--b",
            pa.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(job.code(), Some(2), "{}", job.stderr());
    assert!(
        job.stderr().contains("shapes do not conform"),
        "{}",
        job.stderr()
    );
    let job = run(3, &["matmul", "--grid", "2x2"], &[]);
    assert_eq!(job.code(), Some(2));
    assert!(
        job.stderr()
            .contains("cannot form a 2 x 2 process grid from 3 ranks"),
        "{}",
        job.stderr()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sort_example_and_cli_verify_at_one_to_four_ranks() {
    for ranks in 1..=4 {
        for algo in ["merge", "sample", "radix"] {
            let job = run(ranks, &[&example("merge_sort"), "20000", algo], &[]);
            job.assert_ok("merge_sort example");
            assert!(
                job.stdout()
                    .contains("sorted and a permutation of the input"),
                "{}",
                job.stdout()
            );
        }
        let job = run(
            ranks,
            &[
                "sort", "--n", "30001", "--dtype", "f32", "--dist", "normal", "--verify", "--json",
            ],
            &[],
        );
        job.assert_ok("tessera sort");
        let v: serde_json::Value = serde_json::from_str(job.stdout().trim()).expect("sort JSON");
        for key in [
            "n",
            "dtype",
            "ranks",
            "algo",
            "device",
            "seconds",
            "keys_per_second",
            "local_sort_seconds",
            "exchange_seconds",
            "merge_seconds",
            "max_over_mean",
            "verified",
        ] {
            assert!(!v[key].is_null(), "missing {key}: {v}");
        }
        assert_eq!(v["n"], 30001);
        assert_eq!(v["verified"], true);
        // Sample sort balances exactly: no rank above ceil(N / P).
        let bound = (30001.0f64 / ranks as f64).ceil();
        let max = v["max_over_mean"].as_f64().unwrap() * 30001.0 / ranks as f64;
        assert!(max <= bound + 1e-6, "max {max} over the bound {bound}");
    }
}

/// Little-endian bytes of `values` converted by `to` (one key type's
/// encoding), with the descr numpy writes for it.
fn key_file(descr: &str, values: &[i64]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for &v in values {
        match descr {
            "<u4" => bytes.extend((v as u32).to_le_bytes()),
            "<u8" => bytes.extend((v as u64).to_le_bytes()),
            "<i4" => bytes.extend((v as i32).to_le_bytes()),
            "<i8" => bytes.extend(v.to_le_bytes()),
            "<f4" => bytes.extend((v as f32).to_le_bytes()),
            "<f8" => bytes.extend((v as f64).to_le_bytes()),
            _ => unreachable!("{descr}"),
        }
    }
    bytes
}

#[test]
fn the_npy_header_decides_the_key_type_at_several_ranks() {
    let dir = std::env::temp_dir().join(format!("tessera-keytypes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Values that every key type holds exactly; negative ones only for the
    // signed and float types.
    let unsigned: Vec<i64> = (0..41).map(|i| (i * 7919) % 1000).collect();
    let signed: Vec<i64> = unsigned.iter().map(|v| v - 500).collect();
    for (descr, dtype) in [
        ("<u4", "u32"),
        ("<u8", "u64"),
        ("<i4", "i32"),
        ("<i8", "i64"),
        ("<f4", "f32"),
        ("<f8", "f64"),
    ] {
        let values = if dtype.starts_with('u') {
            &unsigned
        } else {
            &signed
        };
        let (input, output) = (
            dir.join(format!("{dtype}.npy")),
            dir.join(format!("{dtype}-sorted.npy")),
        );
        write_npy_1d(&input, descr, &key_file(descr, values), values.len());
        let mut want = values.clone();
        want.sort();
        let want = key_file(descr, &want);
        for ranks in [2, 3] {
            let _ = std::fs::remove_file(&output);
            // No --dtype: the file decides.
            let job = run(
                ranks,
                &[
                    "sort",
                    "--input",
                    input.to_str().unwrap(),
                    "--out",
                    output.to_str().unwrap(),
                    "--verify",
                    "--json",
                ],
                &[],
            );
            job.assert_ok(&format!("sort of a {dtype} file at {ranks} ranks"));
            let v: serde_json::Value =
                serde_json::from_str(job.stdout().trim()).expect("sort JSON");
            assert_eq!(v["dtype"], dtype, "{v}");
            assert_eq!(v["n"], values.len());
            let bytes = std::fs::read(&output).expect("sorted keys written");
            assert_eq!(
                &bytes[bytes.len() - want.len()..],
                &want[..],
                "{dtype} at {ranks} ranks"
            );
            assert!(
                String::from_utf8_lossy(&bytes).contains(descr),
                "{dtype}: written as {descr}"
            );
        }
        // --dtype that agrees is a check that passes.
        run(
            2,
            &["sort", "--input", input.to_str().unwrap(), "--dtype", dtype],
            &[],
        )
        .assert_ok(&format!("sort of a {dtype} file with --dtype {dtype}"));
    }
    // A mismatch names both types; a lossless conversion is offered.
    let job = run(
        2,
        &[
            "sort",
            "--input",
            dir.join("i32.npy").to_str().unwrap(),
            "--dtype",
            "i64",
        ],
        &[],
    );
    assert_eq!(job.code(), Some(2), "{}", job.stderr());
    let err = job.stderr();
    assert!(
        err.contains("--dtype i64 was given but") && err.contains("holds i32 values"),
        "{err}"
    );
    assert!(
        err.contains("a.astype('<i8')") && err.contains("loses nothing"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_npy_headers_decide_the_matrix_type() {
    let dir = std::env::temp_dir().join(format!("tessera-matrixtypes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (m, k, n) = (5usize, 4usize, 3usize);
    let a: Vec<f64> = (0..m * k).map(|i| (i % 7) as f64 - 3.0).collect();
    let b: Vec<f64> = (0..k * n).map(|i| (i % 5) as f64 * 0.5).collect();
    let as_f32 = |v: &[f64]| {
        v.iter()
            .flat_map(|x| (*x as f32).to_le_bytes())
            .collect::<Vec<u8>>()
    };
    let as_f64 = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    for (descr, dtype, encode) in [
        ("<f4", "f32", &as_f32 as &dyn Fn(&[f64]) -> Vec<u8>),
        ("<f8", "f64", &as_f64),
    ] {
        let (pa, pb) = (
            dir.join(format!("a-{dtype}.npy")),
            dir.join(format!("b-{dtype}.npy")),
        );
        common::npy::write_npy(&pa, descr, false, &format!("({m}, {k})"), &encode(&a));
        common::npy::write_npy(&pb, descr, false, &format!("({k}, {n})"), &encode(&b));
        for ranks in [2, 4] {
            let job = run(
                ranks,
                &[
                    "matmul",
                    "--a",
                    pa.to_str().unwrap(),
                    "--b",
                    pb.to_str().unwrap(),
                    "--verify",
                    "--json",
                ],
                &[],
            );
            job.assert_ok(&format!("matmul of {dtype} files at {ranks} ranks"));
            let v: serde_json::Value =
                serde_json::from_str(job.stdout().trim()).expect("matmul JSON");
            assert_eq!(v["dtype"], dtype, "{v}");
            assert_eq!(
                (v["m"].as_u64(), v["k"].as_u64(), v["n"].as_u64()),
                (Some(5), Some(4), Some(3))
            );
        }
    }
    // A in f32, B in f64: convert A (widening), never B.
    let job = run(
        2,
        &[
            "matmul",
            "--a",
            dir.join("a-f32.npy").to_str().unwrap(),
            "--b",
            dir.join("b-f64.npy").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(job.code(), Some(2), "{}", job.stderr());
    let err = job.stderr();
    assert!(
        err.contains("A and B must hold the same type") && err.contains("a.astype('<f8')"),
        "{err}"
    );
    // --dtype f32 against f64 files: both types named, no narrowing offered.
    let job = run(
        2,
        &[
            "matmul",
            "--a",
            dir.join("a-f64.npy").to_str().unwrap(),
            "--b",
            dir.join("b-f64.npy").to_str().unwrap(),
            "--dtype",
            "f32",
        ],
        &[],
    );
    assert_eq!(job.code(), Some(2), "{}", job.stderr());
    let err = job.stderr();
    assert!(
        err.contains("--dtype f32 was given but") && err.contains("holds f64 values"),
        "{err}"
    );
    assert!(!err.contains("astype"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sort_npy_round_trip_and_bad_files() {
    let dir = std::env::temp_dir().join(format!("tessera-sort-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (input, output) = (dir.join("keys.npy"), dir.join("sorted.npy"));
    let keys: Vec<i64> = vec![5, -3, 9, 0, -3, 7, 2, 2, 100, -50, 1];
    write_npy_1d(
        &input,
        "<i8",
        &keys
            .iter()
            .flat_map(|k| k.to_le_bytes())
            .collect::<Vec<u8>>(),
        keys.len(),
    );
    let mut want = keys.clone();
    want.sort();
    for ranks in [1, 3, 4] {
        for algo in ["sample", "merge", "radix"] {
            let _ = std::fs::remove_file(&output);
            let job = run(
                ranks,
                &[
                    "sort",
                    "--input",
                    input.to_str().unwrap(),
                    "--out",
                    output.to_str().unwrap(),
                    "--dtype",
                    "i64",
                    "--algo",
                    algo,
                    "--verify",
                ],
                &[],
            );
            job.assert_ok("sort from .npy");
            let bytes = std::fs::read(&output).expect("sorted keys written");
            let got: Vec<i64> = bytes[bytes.len() - 8 * keys.len()..]
                .chunks(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            assert_eq!(got, want, "{algo} at {ranks} ranks");
        }
    }
    // The wrong key type, a 2-D array and a truncated file: exit 2 on every rank.
    let job = run(
        3,
        &["sort", "--input", input.to_str().unwrap(), "--dtype", "u32"],
        &[],
    );
    assert_eq!(job.code(), Some(2), "{}", job.stderr());
    let err = job.stderr();
    assert!(
        err.contains("--dtype u32 was given but")
            && err.contains("holds i64 values (descr '<i8'): leave out --dtype"),
        "{err}"
    );
    // i64 to u32 loses values: no conversion is suggested.
    assert!(!err.contains("astype"), "{err}");
    let truncated = dir.join("t.npy");
    let good = std::fs::read(&input).unwrap();
    std::fs::write(&truncated, &good[..good.len() - 3]).unwrap();
    let job = run(
        2,
        &[
            "sort",
            "--input",
            truncated.to_str().unwrap(),
            "--dtype",
            "i64",
        ],
        &[],
    );
    assert_eq!(job.code(), Some(2), "{}", job.stderr());
    assert!(job.stderr().contains("truncated"), "{}", job.stderr());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_sort_json_reports_the_ratio_against_rayon() {
    let out = Command::new(tessera())
        .args([
            "bench",
            "sort",
            "--n",
            "5000,100000",
            "--dtype",
            "f64",
            "--json",
            "--threads",
            "2",
        ])
        .output()
        .expect("run tessera bench sort");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bench sort JSON");
    assert_eq!(v["dtype"], "f64");
    assert_eq!(v["threads"], 2);
    let rows = v["results"].as_array().expect("results");
    assert_eq!(
        rows.iter()
            .map(|r| r["n"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![5000, 100000]
    );
    for r in rows {
        let (ours, theirs) = (
            r["keys_per_second"].as_f64().unwrap(),
            r["rayon_keys_per_second"].as_f64().unwrap(),
        );
        assert!(ours > 0.0 && theirs > 0.0);
        assert!(
            (r["ratio_vs_rayon"].as_f64().unwrap() - ours / theirs).abs() < 1e-9 * ours / theirs
        );
        // The crates' anchors, and the ratio to the faster of them.
        let best = r["voracious_keys_per_second"]
            .as_f64()
            .unwrap()
            .max(r["rdst_keys_per_second"].as_f64().unwrap());
        assert!(best > 0.0, "{r}");
        assert!(
            (r["ratio_vs_best_crate"].as_f64().unwrap() - ours / best).abs() < 1e-9 * ours / best,
            "{r}"
        );
    }
}

#[test]
fn soak_example_checks_mixed_collectives_and_leaves_nothing_pending() {
    // A short run of the soak (scripts/soak.sh runs 10,000 operations on the
    // release build).
    let job = run(
        4,
        &[&example("soak"), "--ops", "120", "--max-bytes", "1048576"],
        &[],
    );
    job.assert_ok("soak");
    let out = job.stdout();
    assert!(out.contains("120 operations on 4 ranks"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("soak: ops=120 "))
        .expect("summary line");
    assert!(line.ends_with(" pending=0"), "{line}");
}

#[test]
fn sample_sort_exchanges_through_shared_memory_and_mpi_alike() {
    // Both ways the radix sample sort moves keys (a shared-memory window
    // where every rank shares the node, MPI_Alltoallv) sort and balance the
    // same input.
    for ranks in [2, 3] {
        let mut outputs = Vec::new();
        for path in ["shared", "mpi"] {
            let job = run(
                ranks,
                &[
                    "sort", "--n", "200003", "--dtype", "i64", "--dist", "few", "--algo", "radix",
                    "--verify", "--json",
                ],
                &[(tessera::env::EXCHANGE, path)],
            );
            job.assert_ok(&format!("sort over {path}"));
            let v: serde_json::Value =
                serde_json::from_str(job.stdout().trim()).expect("sort JSON");
            assert_eq!(v["verified"], true, "{path}: {v}");
            let most = v["max_over_mean"].as_f64().unwrap() * 200003.0 / ranks as f64;
            assert!(
                most <= (200003.0f64 / ranks as f64).ceil() + 1e-6,
                "{path}: a rank holds {most} keys"
            );
            outputs.push(v["max_over_mean"].clone());
        }
        assert_eq!(outputs[0], outputs[1], "both paths balance alike");
    }
    let job = run(
        2,
        &["sort", "--n", "1000", "--algo", "radix"],
        &[(tessera::env::EXCHANGE, "tcp")],
    );
    assert!(
        !job.output.status.success(),
        "a bad exchange path must fail"
    );
    assert!(
        job.stderr().contains("auto, mpi or shared"),
        "the message names the choices: {}",
        job.stderr()
    );
}

#[test]
fn a_rank_held_to_one_core_says_so_once() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        eprintln!("one core here: nothing for a binding to hold back");
        return;
    }
    let tessera = tessera();
    let tessera = tessera.to_str().unwrap();
    let timeout = common::jobs::TIMEOUT;
    let warnings = |stderr: &str| {
        stderr
            .lines()
            .filter(|l| l.starts_with("warning: "))
            .count()
    };
    // Plain mpirun binds one rank to one core while the others idle.
    let job = mpirun_cmd(&["-n", "1", tessera, "info"], &[], timeout);
    job.assert_ok("mpirun -n 1 tessera info");
    let err = job.stderr();
    assert_eq!(warnings(&err), 1, "{err}");
    assert!(
        err.contains("warning: rank 0 is bound to one core")
            && err.contains("--bind-to none")
            && err.contains(&format!("--map-by slot:PE={cores}")),
        "{err}"
    );
    // Two ranks asking for two threads each: one warning naming both.
    let job = mpirun_cmd(
        &["-n", "2", tessera, "info"],
        &[("RAYON_NUM_THREADS", "2")],
        timeout,
    );
    job.assert_ok("mpirun -n 2 tessera info");
    let err = job.stderr();
    assert_eq!(warnings(&err), 1, "{err}");
    assert!(
        err.contains("warning: ranks 0-1 are bound to one core each"),
        "{err}"
    );
    // Unbound, or bound by tessera run: no warning.
    let job = mpirun_cmd(
        &["-n", "1", "--bind-to", "none", tessera, "info"],
        &[],
        timeout,
    );
    job.assert_ok("mpirun --bind-to none");
    assert_eq!(warnings(&job.stderr()), 0, "{}", job.stderr());
    let job = run(1, &["info"], &[]);
    job.assert_ok("tessera run -n 1 info");
    assert_eq!(warnings(&job.stderr()), 0, "{}", job.stderr());
}
