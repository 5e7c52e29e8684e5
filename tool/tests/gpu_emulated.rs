//! The distributed algorithms on the emulated GPU, through `tessera run`
//! (the library's own emulated-device tests are in the root's
//! tests/gpu_emulated.rs).

#[path = "../../tests/common/emulator.rs"]
mod emulator;

use std::process::{Command, Output};

use emulator::emulator;

/// The distributed algorithms and the device collectives on the emulated
/// GPU under mpirun, through both transfer paths (device addresses to MPI,
/// and staging through host buffers).
#[test]
fn distributed_matmul_and_sort_on_the_emulated_gpu_under_mpirun() {
    let Some(lib) = emulator() else { return };
    let exe = env!("CARGO_BIN_EXE_tessera");
    for transfer in ["direct", "staged"] {
        for (ranks, args) in [
            (
                3,
                vec![
                    "matmul", "--m", "150", "--k", "70", "--n", "90", "--panel", "32", "--dtype",
                    "f32", "--device", "emulated", "--verify", "--repeat", "1",
                ],
            ),
            (
                4,
                vec![
                    "matmul", "--m", "97", "--k", "131", "--n", "64", "--panel", "40", "--dtype",
                    "f64", "--device", "emulated", "--verify", "--repeat", "1",
                ],
            ),
            (
                3,
                vec![
                    "sort", "--n", "6007", "--dtype", "f64", "--device", "emulated", "--verify",
                ],
            ),
            (
                3,
                vec![
                    "sort", "--n", "5000", "--dtype", "i32", "--dist", "few", "--algo", "merge",
                    "--device", "emulated", "--verify",
                ],
            ),
        ] {
            let out = run_emulated(&lib, ranks, transfer, exe, &args);
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success(),
                "{transfer}: tessera run -n {ranks} {args:?} failed:\n{text}"
            );
            assert!(
                text.contains("emulated-gpu"),
                "{transfer}: the report does not name the emulated device:\n{text}"
            );
            assert!(
                !text.contains("FAILED"),
                "{transfer}: verification failed:\n{text}"
            );
        }
    }
    // The radix sample sort with device sorts: keys of bins that hold a
    // boundary are classified from each chunk's candidates (two chunks of
    // keys per rank here, many copies of each boundary value).
    let args = [
        "sort", "--n", "140003", "--dtype", "u64", "--dist", "few", "--algo", "radix", "--device",
        "emulated", "--verify",
    ];
    let out = run_emulated(&lib, 2, "staged", exe, &args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("permutation of the input: verified"),
        "tessera run -n 2 {args:?}:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Generated keys on GPUs stay in device memory from generation to result
/// (sample sort, any rank count, both ways device data reaches MPI): they
/// cross to the host only for `--out`, and `--verify` checks them against
/// keys the host generates itself.
#[test]
fn a_gpu_sort_of_generated_keys_keeps_them_in_device_memory() {
    let Some(lib) = emulator() else { return };
    let dir = std::env::temp_dir().join(format!("tessera-resident-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("sorted.npy");
    let file = file.to_str().unwrap();
    for (ranks, transfer, args, copied) in [
        (
            1,
            "staged",
            vec!["--dtype", "f32", "--dist", "zipf", "--verify"],
            false,
        ),
        (1, "staged", vec!["--dtype", "u64", "--out", file], true),
        (
            3,
            "staged",
            vec!["--dtype", "i64", "--dist", "normal", "--verify"],
            false,
        ),
        (
            3,
            "direct",
            vec!["--dtype", "u32", "--dist", "few", "--verify", "--out", file],
            true,
        ),
        (
            4,
            "staged",
            vec!["--dtype", "f64", "--dist", "reverse", "--verify"],
            false,
        ),
    ] {
        let what = format!("{ranks} ranks, {transfer}, {args:?}");
        let mut all = vec!["sort", "--n", "3001"];
        all.extend(&args);
        let (report, text) = emulated_json(&lib, ranks, transfer, &all, &what);
        assert_eq!(report["device_resident"], true, "{what}: {text}");
        assert_eq!(report["n"], 3001);
        // Balanced blocks: ceil(N / P) keys at most on a rank.
        let bound = 3001usize.div_ceil(ranks) as f64 / (3001.0 / ranks as f64);
        assert!(
            report["max_over_mean"].as_f64().unwrap() <= bound + 1e-12,
            "{what}: {text}"
        );
        assert!(report["generate_seconds"].as_f64().unwrap() > 0.0, "{text}");
        let copy = report["copy_seconds"].as_f64().unwrap();
        assert_eq!(copy > 0.0, copied, "{what}: copy_seconds {copy}");
        let checked = report["verify_seconds"].as_f64().unwrap() > 0.0;
        assert_eq!(checked, args.contains(&"--verify"), "{what}: {text}");
        if args.contains(&"--verify") {
            assert_eq!(report["verified"], true, "{what}: {text}");
        } else {
            assert!(report["verified"].is_null(), "{text}");
        }
        if copied {
            // The file holds the sorted keys: ascending, all of them.
            let bytes = std::fs::read(file).unwrap();
            let header = u16::from_le_bytes([bytes[8], bytes[9]]) as usize + 10;
            let width = if args.contains(&"u32") { 4 } else { 8 };
            assert_eq!(bytes.len() - header, 3001 * width, "{what}");
            let keys: Vec<u64> = bytes[header..]
                .chunks_exact(width)
                .map(|c| {
                    if width == 4 {
                        u32::from_le_bytes(c.try_into().unwrap()) as u64
                    } else {
                        u64::from_le_bytes(c.try_into().unwrap())
                    }
                })
                .collect();
            assert!(
                keys.windows(2).all(|w| w[0] <= w[1]),
                "{what}: the file is not sorted"
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Generated operands on GPUs: A and B are generated in device memory and
/// C stays there unless `--verify` (Freivalds against A and B generated on
/// the host) or `--out` needs it.
#[test]
fn a_gpu_matmul_of_generated_operands_keeps_them_in_device_memory() {
    let Some(lib) = emulator() else { return };
    for (ranks, transfer, dtype, verify) in [
        (1, "staged", "f64", true),
        (3, "staged", "f32", true),
        (4, "direct", "f64", true),
        (2, "staged", "f32", false),
    ] {
        let what = format!("{ranks} ranks, {transfer}, {dtype}, verify {verify}");
        let mut args = vec![
            "matmul", "--m", "97", "--k", "131", "--n", "64", "--panel", "40", "--repeat", "1",
            "--dtype", dtype,
        ];
        if verify {
            args.push("--verify");
        }
        let (report, text) = emulated_json(&lib, ranks, transfer, &args, &what);
        assert_eq!(report["device_resident"], true, "{what}: {text}");
        assert!(
            report["generate_seconds"].as_f64().unwrap() > 0.0,
            "{what}: {text}"
        );
        let copy = report["copy_seconds"].as_f64().unwrap();
        assert_eq!(copy > 0.0, verify, "{what}: copy_seconds {copy}");
        let checked = report["verify_seconds"].as_f64().unwrap() > 0.0;
        assert_eq!(checked, verify, "{what}: {text}");
        if verify {
            assert_eq!(report["verified"], true, "{what}: {text}");
        } else {
            assert!(report["verified"].is_null(), "{what}: {text}");
        }
    }
}

/// `bench copy` moves data up, across and down through Tessera's paths and
/// the driver's, and gets it back unchanged.
#[test]
fn bench_copy_round_trips_through_every_path() {
    let Some(lib) = emulator() else { return };
    let args = ["bench", "copy", "--mib", "1,3"];
    let (report, text) = emulated_json(&lib, 1, "staged", &args, "bench copy");
    let rows = report["results"].as_array().expect("results");
    assert_eq!(rows.len(), 2, "{text}");
    for (row, mib) in rows.iter().zip([1, 3]) {
        assert_eq!(row["mib"], mib, "{text}");
        assert_eq!(row["round_trip_exact"], true, "{text}");
        for key in [
            "h2d_pinned_gbs",
            "h2d_tessera_gbs",
            "d2h_tessera_gbs",
            "d2d_tessera_gbs",
        ] {
            let rate = row[key].as_f64().unwrap();
            assert!(rate.is_finite() && rate > 0.0, "{key}: {text}");
        }
    }
}

/// All-to-all-v and all-gather-v of device buffers, uneven counts and
/// empty parts included, through both ways device data reaches MPI: the
/// `device_exchange` example checks every element against its closed form.
#[test]
fn device_buffers_travel_between_ranks_both_ways() {
    let Some(lib) = emulator() else { return };
    let exe = env!("CARGO_BIN_EXE_tessera");
    let example = std::path::Path::new(exe)
        .parent()
        .expect("the binary's folder")
        .join("examples/device_exchange");
    assert!(
        example.is_file(),
        "example {} was not built",
        example.display()
    );
    for transfer in ["staged", "direct"] {
        for ranks in [1, 3, 4] {
            let out = run_emulated(&lib, ranks, transfer, &example, &["emulated"]);
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "{transfer}, {ranks} ranks:\n{text}");
            assert!(
                text.contains(&format!("device exchange on {ranks} ranks"))
                    && text.contains("checked"),
                "{transfer}, {ranks} ranks:\n{text}"
            );
        }
    }
}

/// Runs `tessera run -n RANKS -- PROGRAM ARGS` (at most 300 s) on the
/// emulated GPU, with device data reaching MPI the `transfer` way.
fn run_emulated(
    lib: &std::path::Path,
    ranks: usize,
    transfer: &str,
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
) -> Output {
    Command::new("timeout")
        .arg("300")
        .arg(env!("CARGO_BIN_EXE_tessera"))
        .args(["run", "-n", &ranks.to_string(), "--"])
        .arg(program)
        .args(args)
        .env(tessera::env::EMU_LIB, lib)
        .env(tessera::env::DEVICE_MPI, transfer)
        .output()
        .expect("launch tessera run")
}

/// Runs `tessera run -n RANKS -- tessera ARGS --device emulated --json` with
/// device data reaching MPI the `transfer` way; the report and its text.
fn emulated_json(
    lib: &std::path::Path,
    ranks: usize,
    transfer: &str,
    args: &[&str],
    what: &str,
) -> (serde_json::Value, String) {
    let args = [args, &["--device", "emulated", "--json"]].concat();
    let out = run_emulated(lib, ranks, transfer, env!("CARGO_BIN_EXE_tessera"), &args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = serde_json::from_str(text.trim()).expect("one JSON object");
    (report, text)
}

/// `bench sort` on a GPU sorts keys and (key, position) pairs in device
/// memory and checks both against the CPU: the positions must come out as
/// the stable sorting permutation.
#[test]
fn bench_sort_on_the_device_checks_keys_and_pairs() {
    let Some(lib) = emulator() else { return };
    // Two radix tiles of u32 keys; one of f64 keys (eight passes).
    for (dtype, n) in [("u32", "4099"), ("f64", "1000")] {
        let args = ["bench", "sort", "--n", n, "--dtype", dtype];
        let (report, text) = emulated_json(&lib, 1, "staged", &args, dtype);
        let row = &report["results"][0];
        assert_eq!(row["matches_cpu"], true, "{dtype}: {text}");
        assert!(
            row["pairs_keys_per_s"].as_f64().unwrap() > 0.0,
            "{dtype}: {text}"
        );
    }
}
