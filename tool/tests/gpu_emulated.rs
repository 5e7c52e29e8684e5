//! The distributed algorithms on the emulated GPU, through `tessera run`
//! (the library's own emulated-device tests are in the root's
//! tests/gpu_emulated.rs).

#[path = "../../tests/common/emulator.rs"]
mod emulator;

use std::process::Command;

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
            let out = Command::new("timeout")
                .arg("300")
                .arg(exe)
                .args(["run", "-n", &ranks.to_string(), "--"])
                .arg(exe)
                .args(&args)
                .env(tessera::env::EMU_LIB, &lib)
                .env(tessera::env::DEVICE_MPI, transfer)
                .output()
                .expect("launch tessera run");
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
}

/// One rank on a GPU: generated keys stay in device memory from generation
/// to result, and cross to the host only for `--verify` (which checks them
/// against keys the host generates itself) and `--out`.
#[test]
fn a_one_rank_gpu_sort_keeps_its_keys_in_device_memory() {
    let Some(lib) = emulator() else { return };
    let exe = env!("CARGO_BIN_EXE_tessera");
    for (args, copied) in [
        (vec!["--dtype", "f32", "--dist", "zipf", "--verify"], true),
        (vec!["--dtype", "i64", "--dist", "normal", "--verify"], true),
        (vec!["--dtype", "u64"], false),
    ] {
        let out = Command::new("timeout")
            .arg("300")
            .arg(exe)
            .args([
                "run", "-n", "1", "--", exe, "sort", "--n", "3001", "--device", "emulated",
            ])
            .args(&args)
            .arg("--json")
            .env(tessera::env::EMU_LIB, &lib)
            .output()
            .expect("launch tessera run");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON object");
        assert_eq!(report["device_resident"], true, "{args:?}: {text}");
        assert_eq!(report["n"], 3001);
        assert!(report["generate_seconds"].as_f64().unwrap() > 0.0, "{text}");
        let copy = report["copy_seconds"].as_f64().unwrap();
        assert_eq!(copy > 0.0, copied, "{args:?}: copy_seconds {copy}");
        if copied {
            assert_eq!(report["verified"], true, "{args:?}: {text}");
        } else {
            assert!(report["verified"].is_null(), "{text}");
        }
    }
}
