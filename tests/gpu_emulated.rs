//! The device code paths (kernels and the host-side launch sequences that
//! drive them) on the emulated GPU, against the CPU path. The emulator
//! library is built from tests/kernel_emu/ with g++; where g++ is missing
//! the tests say so and pass nothing off as checked.

mod common;

use common::device_checks::*;
use tessera::Device;

use common::emulator::emulator;

const EMU: Device = Device::Emulated;

#[test]
fn gemm_matches_the_reference_on_the_emulated_gpu() {
    if emulator().is_none() {
        return;
    }
    for (m, k, n) in [
        (1, 1, 1),
        (31, 31, 31),
        (1, 257, 3),
        (129, 130, 1),
        (128, 8, 128),
        (133, 70, 201),
        (5, 0, 7),
    ] {
        check_gemm::<f32>(EMU, m, k, n, 1.0, 0.0, 1);
        check_gemm::<f64>(EMU, m, k, n, -1.5, 0.25, 2);
    }
}

#[test]
fn sort_matches_the_cpu_on_the_emulated_gpu() {
    if emulator().is_none() {
        return;
    }
    for n in [0, 1, 31, 4097] {
        check_sort::<u32>(EMU, n, 3);
        check_sort::<i32>(EMU, n, 4);
        check_sort::<f32>(EMU, n, 5);
        check_sort::<u64>(EMU, n, 6);
        check_sort::<i64>(EMU, n, 7);
        check_sort::<f64>(EMU, n, 8);
    }
}

#[test]
fn nvrtc_compiles_every_kernel_for_sm_80_and_sm_90() {
    use tessera::device::{kernels, nvrtc};
    if let Err(e) = nvrtc::ensure_loaded() {
        // scripts/test.sh installs NVRTC and sets TESSERA_REQUIRE_NVRTC, so
        // CI cannot skip this silently.
        assert!(std::env::var_os("TESSERA_REQUIRE_NVRTC").is_none(), "{e}");
        eprintln!("skipping the NVRTC compile test: {e}");
        return;
    }
    for file in kernels::ALL {
        for cc in [(8, 0), (9, 0)] {
            let out = nvrtc::compile(file, cc, true).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                out.cubin.starts_with(b"\x7fELF"),
                "{}: not a CUBIN",
                file.name
            );
            for entry in file.entries {
                assert!(
                    out.log
                        .contains(&format!("Compiling entry function '{entry}'")),
                    "kernels/{}.cu has no kernel {entry} for {cc:?}:\n{}",
                    file.name,
                    out.log
                );
            }
            // The GEMM's register blocking must fit without spilling; the
            // other kernels' reports are printed for tuning.
            for line in out.log.lines().filter(|l| l.contains("spill stores")) {
                eprintln!(
                    "kernels/{}.cu sm_{}{}: {}",
                    file.name,
                    cc.0,
                    cc.1,
                    line.trim()
                );
                if file.name == "gemm" {
                    assert!(
                        line.contains(" 0 bytes spill stores"),
                        "kernels/gemm.cu spills registers on {cc:?}: {line}"
                    );
                }
            }
        }
    }
}

#[test]
fn pairs_are_stable_on_the_emulated_gpu() {
    if emulator().is_none() {
        return;
    }
    check_pairs::<u32>(EMU, 9000, 9);
    check_pairs::<f64>(EMU, 9000, 10);
}

#[test]
fn merge_and_checks_on_the_emulated_gpu() {
    if emulator().is_none() {
        return;
    }
    use tessera::device::DeviceBuffer;
    use tessera::ops::sort::check_device;
    let mut runs: Vec<Vec<i64>> = (0..5)
        .map(|r| keys::<i64>(1000 + 700 * r, r as u64, r % 2 == 0))
        .collect();
    runs.push(Vec::new());
    for r in &mut runs {
        r.sort();
    }
    let refs: Vec<&[i64]> = runs.iter().map(|r| r.as_slice()).collect();
    let got = tessera::distributed::sort::merge_runs_on(EMU, &refs).unwrap();
    assert_eq!(got, tessera::distributed::sort::merge_runs(&refs));
    let buf = DeviceBuffer::from_slice(EMU, &got).unwrap();
    let (_, _, descents) = check_device(&buf).unwrap();
    assert_eq!(descents, 0);
    let mut shuffled = got.clone();
    shuffled.swap(10, 4000);
    let buf = DeviceBuffer::from_slice(EMU, &shuffled).unwrap();
    let (sum, xor, descents) = check_device(&buf).unwrap();
    assert!(descents >= 1, "a swapped pair must show as a descent");
    // The fingerprint is order-free: the same as the sorted keys'.
    let (s2, x2, _) = check_device(&DeviceBuffer::from_slice(EMU, &got).unwrap()).unwrap();
    assert_eq!((sum, xor), (s2, x2));
}
