//! `tessera bench`: the communication benchmarks (under MPI) and the local
//! GEMM and sort benchmarks (on the CPU without MPI, or on a GPU), each
//! against its anchor.

use std::process::ExitCode;

use tessera::Comm;
use tessera::device::DeviceChoice;
use tessera_cli::bench::comm::{self as comm_bench, BenchOp, BenchRow};
use tessera_cli::bench::ops as ops_bench;
use tessera_cli::{Error, Result};

use super::{finish, with_mpi};
use crate::cli::{BenchCommand, CommBenchArgs, Dtype, KeyType};

/// Calls the generic function `f` (a path) for the key type `dtype` names.
macro_rules! by_key_type {
    ($dtype:expr, $($f:ident)::+ ( $($arg:expr),* )) => {
        match $dtype {
            KeyType::U32 => $($f)::+::<u32>($($arg),*),
            KeyType::U64 => $($f)::+::<u64>($($arg),*),
            KeyType::I32 => $($f)::+::<i32>($($arg),*),
            KeyType::I64 => $($f)::+::<i64>($($arg),*),
            KeyType::F32 => $($f)::+::<f32>($($arg),*),
            KeyType::F64 => $($f)::+::<f64>($($arg),*),
        }
    };
}

/// Runs a benchmark: on a GPU and the communication ones inside MPI, the
/// CPU ones without.
pub fn bench(command: BenchCommand) -> ExitCode {
    match command {
        BenchCommand::Gemm {
            n,
            dtype,
            threads: _,
            device,
            json,
        } if device != DeviceChoice::Cpu => {
            with_mpi(|_, w| gemm_device(w, device, &n, dtype, json).map(|()| 0))
        }
        BenchCommand::Sort {
            n,
            dtype,
            device,
            json,
            ..
        } if device != DeviceChoice::Cpu => {
            with_mpi(|_, w| sort_device(w, device, &n, dtype, json).map(|()| 0))
        }
        BenchCommand::Copy { mib, device, json } => {
            with_mpi(|_, w| copy(w, device, &mib, json).map(|()| 0))
        }
        BenchCommand::Gemm {
            n,
            dtype,
            threads,
            json,
            ..
        } => finish(gemm(&n, dtype, threads, json)),
        BenchCommand::Sort {
            n,
            dtype,
            threads,
            json,
            ..
        } => finish(sort(&n, dtype, threads, json)),
        BenchCommand::Merge {
            n,
            runs,
            dtype,
            threads,
            json,
        } => finish(merge(&n, &runs, dtype, threads, json)),
        BenchCommand::P2p(args) => comm(BenchOp::P2p, args),
        BenchCommand::Allreduce(args) => comm(BenchOp::Allreduce, args),
        BenchCommand::Bcast(args) => comm(BenchOp::Bcast, args),
        BenchCommand::Alltoall(args) => comm(BenchOp::Alltoall, args),
    }
}

/// A communication benchmark, inside MPI.
fn comm(op: BenchOp, args: CommBenchArgs) -> ExitCode {
    with_mpi(|_, w| comm_table(w, op, &args.sizes, args.json))
}

/// Runs a communication benchmark and prints its table (or JSON) on rank 0.
fn comm_table(world: &Comm, op: BenchOp, sizes: &str, json: bool) -> Result<u8> {
    let sizes = comm_bench::parse_sizes(sizes)?;
    let rows = comm_bench::run(world, op, &sizes)?;
    if world.rank() != 0 {
        return Ok(0);
    }
    if json {
        #[derive(serde::Serialize)]
        struct Report<'a> {
            op: BenchOp,
            ranks: usize,
            results: &'a [BenchRow],
        }
        let report = Report {
            op,
            ranks: world.size(),
            results: &rows,
        };
        println!(
            "{}",
            serde_json::to_string(&report).expect("report serialises")
        );
    } else {
        println!(
            "{op:?} on {} ranks (µs per call, median of batches; ratio = tessera / rsmpi)",
            world.size()
        );
        println!(
            "{:>10} {:>12} {:>12} {:>12} {:>9} {:>9} {:>10}",
            "bytes", "tessera", "unchecked", "rsmpi", "ratio", "ratio-u", "GB/s"
        );
        for r in &rows {
            println!(
                "{:>10} {:>12.2} {:>12.2} {:>12.2} {:>9.3} {:>9.3} {:>10.3}",
                r.bytes,
                r.tessera_us,
                r.tessera_unchecked_us,
                r.rsmpi_us,
                r.ratio_vs_rsmpi,
                r.unchecked_ratio_vs_rsmpi,
                r.tessera_gbps
            );
        }
    }
    Ok(0)
}

/// The local GEMM on the CPU against its FMA peak and OpenBLAS.
fn gemm(sizes: &[usize], dtype: Dtype, threads: Option<usize>, json: bool) -> Result<()> {
    let (threads, pool) = thread_pool(threads)?;
    pool.install(|| {
        let (peak, rows) = match dtype {
            Dtype::F32 => {
                let peak = ops_bench::fma_peak_gflops::<f32>(threads);
                (peak, ops_bench::bench_gemm::<f32>(sizes, threads, peak)?)
            }
            Dtype::F64 => {
                let peak = ops_bench::fma_peak_gflops::<f64>(threads);
                (peak, ops_bench::bench_gemm::<f64>(sizes, threads, peak)?)
            }
        };
        if json {
            let report = serde_json::json!({
                "dtype": dtype,
                "threads": threads,
                "peak_gflops": peak,
                "results": rows,
            });
            println!("{report}");
        } else {
            println!("gemm {dtype:?} on {threads} threads; FMA peak {peak:.1} GFLOP/s (C = A * B, n x n, best of runs)");
            println!("{:>7} {:>10} {:>7} {:>10} {:>9}", "n", "GFLOP/s", "peak", "OpenBLAS", "ratio");
            for r in &rows {
                let blas = r.openblas_gflops.map_or("-".to_string(), |g| format!("{g:.1}"));
                let ratio = r.ratio_vs_openblas.map_or("-".to_string(), |x| format!("{x:.3}"));
                println!("{:>7} {:>10.1} {:>6.1}% {:>10} {:>9}", r.n, r.gflops, 100.0 * r.peak_fraction, blas, ratio);
            }
            if rows.iter().any(|r| r.openblas_gflops.is_none()) {
                println!("OpenBLAS was not found: install libopenblas0 for the anchor");
            }
        }
        Ok(())
    })
}

/// A pool of `threads` threads (default: rayon's count) and its size.
fn thread_pool(threads: Option<usize>) -> Result<(usize, rayon::ThreadPool)> {
    let threads = threads.unwrap_or_else(rayon::current_num_threads);
    if threads == 0 {
        return Err(Error::Usage("--threads must be at least 1".into()));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Usage(format!("cannot start {threads} threads: {e}")))?;
    Ok((threads, pool))
}

/// The GEMM on a device against cuBLAS.
fn gemm_device(
    world: &Comm,
    choice: DeviceChoice,
    sizes: &[usize],
    dtype: Dtype,
    json: bool,
) -> Result<()> {
    let device = tessera::Device::select(choice, world.local_rank())?;
    let rows = match dtype {
        Dtype::F32 => ops_bench::bench_gemm_device::<f32>(device, sizes)?,
        Dtype::F64 => ops_bench::bench_gemm_device::<f64>(device, sizes)?,
    };
    if world.rank() != 0 {
        return Ok(());
    }
    if json {
        println!(
            "{}",
            serde_json::json!({ "dtype": dtype, "device": device.to_string(), "results": rows })
        );
    } else {
        println!(
            "gemm {dtype:?} on {device} (C = A * B, n x n in device memory, best of 3 after a warm-up; ratio = Tessera / cuBLAS)"
        );
        println!(
            "{:>7} {:>14} {:>14} {:>7} {:>12}",
            "n", "Tessera TF/s", "cuBLAS TF/s", "ratio", "max rel diff"
        );
        for r in &rows {
            let opt = |x: Option<f64>, p: usize| x.map_or("-".to_string(), |v| format!("{v:.p$}"));
            println!(
                "{:>7} {:>14.2} {:>14} {:>7} {:>12}",
                r.n,
                r.tessera_tflops,
                opt(r.cublas_tflops, 2),
                opt(r.ratio, 2),
                r.max_rel_diff.map_or("-".into(), |d| format!("{d:.1e}"))
            );
        }
    }
    Ok(())
}

/// Host-device copies of each size: Tessera's (a `Vec` up and down through
/// `DeviceBuffer`, and a device-to-device copy) against the driver's from
/// pinned and pageable memory.
fn copy(world: &Comm, choice: DeviceChoice, sizes_mib: &[usize], json: bool) -> Result<()> {
    if choice == DeviceChoice::Cpu {
        return Err(Error::Usage(
            "bench copy measures host-device copies: pass --device cuda (or auto, or emulated)"
                .into(),
        ));
    }
    let device = tessera::Device::select(choice, world.local_rank())?;
    let rows = ops_bench::bench_copy(device, sizes_mib)?;
    if world.rank() != 0 {
        return Ok(());
    }
    if json {
        println!(
            "{}",
            serde_json::json!({ "device": device.to_string(), "results": rows })
        );
        return Ok(());
    }
    println!(
        "copies on {device} (GB/s, best of 5; Tessera moves a Vec, pageable memory, through its staging; ratio = Tessera / driver from pinned memory)"
    );
    println!(
        "{:>7} {:>4} {:>10} {:>10} {:>10} {:>7}",
        "MiB", "dir", "pinned", "pageable", "Tessera", "ratio"
    );
    for r in &rows {
        for (dir, pinned, pageable, ours) in [
            (
                "h2d",
                r.h2d_pinned_gbs,
                r.h2d_pageable_gbs,
                r.h2d_tessera_gbs,
            ),
            (
                "d2h",
                r.d2h_pinned_gbs,
                r.d2h_pageable_gbs,
                r.d2h_tessera_gbs,
            ),
        ] {
            println!(
                "{:>7} {:>4} {:>10.1} {:>10.1} {:>10.1} {:>7.2}",
                r.mib,
                dir,
                pinned,
                pageable,
                ours,
                ours / pinned
            );
        }
        println!(
            "{:>7} {:>4} {:>10} {:>10} {:>10.1} {:>7}",
            r.mib, "d2d", "-", "-", r.d2d_tessera_gbs, "-"
        );
    }
    Ok(())
}

/// The sort on a device against the CPU sort.
fn sort_device(
    world: &Comm,
    choice: DeviceChoice,
    sizes: &[usize],
    dtype: KeyType,
    json: bool,
) -> Result<()> {
    let device = tessera::Device::select(choice, world.local_rank())?;
    let rows = by_key_type!(dtype, ops_bench::bench_sort_device(device, sizes))?;
    if world.rank() != 0 {
        return Ok(());
    }
    if json {
        println!(
            "{}",
            serde_json::json!({ "dtype": dtype, "device": device.to_string(), "results": rows })
        );
    } else {
        println!(
            "sort {dtype:?} on {device} (uniform keys, best of 3 after a warm-up; pairs: each key with its u32 position)"
        );
        println!(
            "{:>11} {:>16} {:>18} {:>15} {:>8}",
            "n", "device Mkeys/s", "w/ copies Mkeys/s", "pairs Mkeys/s", "matches"
        );
        for r in &rows {
            println!(
                "{:>11} {:>16.1} {:>18.1} {:>15.1} {:>8}",
                r.n,
                r.device_keys_per_s / 1e6,
                r.with_copies_keys_per_s / 1e6,
                r.pairs_keys_per_s / 1e6,
                r.matches_cpu
            );
        }
    }
    if rows.iter().any(|r| !r.matches_cpu) {
        return Err(Error::Usage(
            "the device sort differs from the CPU sort".into(),
        ));
    }
    Ok(())
}

/// The local sort on the CPU against rayon.
fn merge(
    sizes: &[usize],
    runs: &[usize],
    dtype: KeyType,
    threads: Option<usize>,
    json: bool,
) -> Result<()> {
    let (threads, pool) = thread_pool(threads)?;
    let rows = pool.install(|| by_key_type!(dtype, ops_bench::bench_merge(sizes, runs)))?;
    if json {
        let report = serde_json::json!({ "dtype": dtype, "threads": threads, "results": rows });
        println!("{report}");
    } else {
        println!(
            "merge {dtype:?} on {threads} threads (uniform keys in sorted runs, best of runs, each merge checked against a sort; ratio = merge / parallel copy of the same keys)"
        );
        println!(
            "{:>11} {:>5} {:>10} {:>8} {:>10} {:>8}",
            "n", "runs", "Mkeys/s", "GB/s", "copy GB/s", "ratio"
        );
        for r in &rows {
            println!(
                "{:>11} {:>5} {:>10.1} {:>8.2} {:>10.2} {:>8.2}",
                r.n,
                r.runs,
                r.keys_per_second / 1e6,
                r.gb_per_second,
                r.copy_gb_per_second,
                r.ratio_vs_copy,
            );
        }
    }
    Ok(())
}

fn sort(sizes: &[usize], dtype: KeyType, threads: Option<usize>, json: bool) -> Result<()> {
    let (threads, pool) = thread_pool(threads)?;
    let rows = pool.install(|| by_key_type!(dtype, ops_bench::bench_sort(sizes)))?;
    if json {
        let report = serde_json::json!({ "dtype": dtype, "threads": threads, "results": rows });
        println!("{report}");
    } else {
        println!(
            "sort {dtype:?} on {threads} threads (uniform keys, best of runs, Mkeys/s; ratios = Tessera / rayon par_sort_unstable, Tessera / the faster of voracious_radix_sort and rdst)"
        );
        println!(
            "{:>11} {:>9} {:>9} {:>10} {:>9} {:>8} {:>8}",
            "n", "Tessera", "rayon", "voracious", "rdst", "/rayon", "/crates"
        );
        for r in &rows {
            println!(
                "{:>11} {:>9.1} {:>9.1} {:>10.1} {:>9.1} {:>8.2} {:>8.2}",
                r.n,
                r.keys_per_second / 1e6,
                r.rayon_keys_per_second / 1e6,
                r.voracious_keys_per_second / 1e6,
                r.rdst_keys_per_second / 1e6,
                r.ratio_vs_rayon,
                r.ratio_vs_best_crate
            );
        }
    }
    Ok(())
}
