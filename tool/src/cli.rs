//! The command line: every subcommand, flag and help text of `tessera`
//! (clap), and the parsers of the values clap checks; the parser's fuzz
//! tests.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tessera_cli::demo::matmul as matmul_demo;
use tessera_cli::launch::RunOptions;

/// SPMD programs on Open MPI with GPU offload.
#[derive(Parser)]
#[command(name = "tessera", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `tessera run`'s arguments.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Number of ranks.
    #[arg(value_parser = rank_count, short = 'n', long = "np", value_name = "N")]
    pub ranks: usize,
    /// Open MPI hostfile (`HOST slots=N` per line).
    #[arg(long, value_name = "FILE")]
    pub hostfile: Option<PathBuf>,
    /// Hosts and slots, e.g. node1:4,node2:4.
    #[arg(long = "host", value_name = "H1:S1,H2:S2")]
    pub hosts: Option<String>,
    /// Allow more ranks than slots.
    #[arg(long)]
    pub oversubscribe: bool,
    /// Threads per rank (RAYON_NUM_THREADS); each rank is bound to that
    /// many cores. Default: the cores divided among the ranks.
    #[arg(value_parser = positive, long, value_name = "T")]
    pub threads: Option<usize>,
    /// Record a Chrome trace of every rank into this file (sets
    /// TESSERA_TRACE for the job).
    #[arg(long, value_name = "TRACE.json")]
    pub trace: Option<PathBuf>,
    /// An Open MPI parameter for the job, e.g. `--mca btl tcp,self`
    /// (repeatable; overrides Tessera's failure-detection defaults).
    #[arg(long, num_args = 2, value_names = ["KEY", "VALUE"], action = clap::ArgAction::Append)]
    pub mca: Vec<String>,
    /// Print mpirun's own messages unchanged (by default the boxes that
    /// repeat a rank's message are dropped and the rest shortened to
    /// one line).
    #[arg(long)]
    pub raw: bool,
    /// The program and its arguments (default: tessera info).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROGRAM ARGS"
    )]
    pub program: Vec<OsString>,
}

impl From<RunArgs> for RunOptions {
    fn from(a: RunArgs) -> Self {
        RunOptions {
            ranks: a.ranks,
            hostfile: a.hostfile,
            hosts: a.hosts,
            oversubscribe: a.oversubscribe,
            threads: a.threads,
            trace: a.trace,
            mca: a
                .mca
                .chunks_exact(2)
                .map(|kv| (kv[0].clone(), kv[1].clone()))
                .collect(),
            raw: a.raw,
            program: a.program,
            env: Vec::new(),
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Describe every rank of the job: host, CPU, SIMD, GPU, MPI.
    Info {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Start N ranks through mpirun with the environment Tessera needs.
    ///
    /// Without PROGRAM it runs `tessera info`; `tessera run -n 4 bench
    /// allreduce` runs a tessera subcommand on every rank.
    Run(RunArgs),
    /// Benchmarks, each against an anchor measured in the same run.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Distributed matrix multiply C = A * B by SUMMA, timed and verified
    /// (`tessera run -n 4 matmul --m 2048 --k 2048 --n 2048 --verify`).
    Matmul {
        /// Rows of A and C (generated matrices; files give their own).
        #[arg(value_parser = positive, long, default_value_t = 1024, conflicts_with = "a")]
        m: usize,
        /// Columns of A, rows of B (generated matrices).
        #[arg(value_parser = positive, long, default_value_t = 1024, conflicts_with = "a")]
        k: usize,
        /// Columns of B and C (generated matrices).
        #[arg(value_parser = positive, long, default_value_t = 1024, conflicts_with = "a")]
        n: usize,
        /// Read A from this .npy file (with --b) instead of a random fill.
        #[arg(long, requires = "b", value_name = "A.npy")]
        a: Option<PathBuf>,
        /// Read B from this .npy file (with --a).
        #[arg(long, requires = "a", value_name = "B.npy")]
        b: Option<PathBuf>,
        /// Write C to this .npy file.
        #[arg(long, value_name = "C.npy")]
        out: Option<PathBuf>,
        /// Element type: f64 by default for generated matrices; with --a and
        /// --b the files decide, and --dtype only checks that they hold it.
        #[arg(long)]
        dtype: Option<Dtype>,
        /// Where the local products run.
        #[arg(long, default_value = "auto", value_parser = choice(tessera::device::DeviceChoice::ALL))]
        device: tessera::device::DeviceChoice,
        /// The GEMM used on a GPU.
        #[arg(long, default_value = "tessera", value_parser = choice(tessera::ops::gemm::GemmBackend::ALL))]
        gemm_backend: tessera::ops::gemm::GemmBackend,
        /// Process grid ROWSxCOLS (default: the squarest for the rank count).
        #[arg(long, value_name = "RxC", value_parser = grid_arg)]
        grid: Option<(usize, usize)>,
        /// SUMMA panel width.
        #[arg(value_parser = positive, long, default_value_t = tessera::distributed::matmul::DEFAULT_PANEL)]
        panel: usize,
        /// Column blocks each SUMMA step's CPU GEMM is cut into, with a
        /// test of the next panels' broadcasts between blocks so that they
        /// progress during the GEMM (1: one GEMM per step, no tests).
        #[arg(value_parser = positive, long, default_value_t = tessera::distributed::matmul::DEFAULT_PROGRESS_SLICES)]
        progress_slices: usize,
        /// Seed of the random matrices and of the verification.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Run the multiply this many times and report the fastest.
        #[arg(value_parser = positive, long, default_value_t = 3)]
        repeat: usize,
        /// Exit with status 1 when the residual is over its threshold.
        #[arg(long)]
        verify: bool,
        /// Print one JSON object on rank 0 instead of text.
        #[arg(long)]
        json: bool,
        /// Write a Chrome trace of every rank (Perfetto, chrome://tracing).
        #[arg(long, value_name = "TRACE.json")]
        trace: Option<PathBuf>,
    },
    /// Distributed sort (sample sort or merge sort across ranks), timed and
    /// verified (`tessera run -n 4 sort --n 100000000 --dtype u32 --verify`).
    Sort {
        /// Keys in all (generated input).
        #[arg(value_parser = positive, long, default_value_t = 10_000_000)]
        n: usize,
        /// Key type: u32 by default for generated keys; with --input the
        /// file decides, and --dtype only checks that it holds that type.
        #[arg(long)]
        dtype: Option<KeyType>,
        /// Distribution of the generated keys.
        #[arg(long, default_value = "uniform", value_parser = choice(tessera::ops::generate::KeyDist::ALL))]
        dist: tessera::ops::generate::KeyDist,
        /// Read the keys from a 1-D .npy file instead (rank 0 reads and scatters).
        #[arg(long, value_name = "keys.npy")]
        input: Option<PathBuf>,
        /// Write the sorted keys to a 1-D .npy file.
        #[arg(long, value_name = "sorted.npy")]
        out: Option<PathBuf>,
        /// Algorithm: sample (local sort, one exchange, one multi-way
        /// merge; on the CPU, unless one 16-bit value crowds the keys, the
        /// local sort split around the exchange and no merge), merge (log2 P rounds of two-way merges, every rank
        /// merging), radix (each key sorted once: a first radix pass into
        /// the ranks' buckets, one exchange, each bucket sorted in cache).
        #[arg(long, default_value = "sample", value_parser = choice(tessera::distributed::sort::SortAlgo::ALL))]
        algo: tessera::distributed::sort::SortAlgo,
        /// Where the local sorts run.
        #[arg(long, default_value = "auto", value_parser = choice(tessera::device::DeviceChoice::ALL))]
        device: tessera::device::DeviceChoice,
        /// Seed of the generated keys.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Exit with status 1 unless the result is sorted and a permutation.
        #[arg(long)]
        verify: bool,
        /// Print one JSON object on rank 0 instead of text.
        #[arg(long)]
        json: bool,
        /// Write a Chrome trace of every rank (Perfetto, chrome://tracing).
        #[arg(long, value_name = "TRACE.json")]
        trace: Option<PathBuf>,
    },
    /// Data-parallel training's pattern as a scaling workload: each step
    /// computes on this rank's share of N samples, then all-reduces a
    /// gradient (`tessera run -n 4 allreduce --n 10000000`).
    Allreduce {
        /// Samples in all.
        #[arg(value_parser = positive, long, default_value_t = 10_000_000)]
        n: usize,
        /// Gradient length (f64 values all-reduced per step).
        #[arg(value_parser = positive, long, default_value_t = 8192)]
        len: usize,
        /// Steps.
        #[arg(value_parser = positive, long, default_value_t = 20)]
        iters: usize,
        /// Print one JSON object on rank 0 instead of text.
        #[arg(long)]
        json: bool,
        /// Write a Chrome trace of every rank (Perfetto, chrome://tracing).
        #[arg(long, value_name = "TRACE.json")]
        trace: Option<PathBuf>,
    },
    /// Strong or weak scaling sweep: runs a workload at each rank count,
    /// fits Amdahl's (strong) or Gustafson's (weak) law, and writes
    /// scaling.csv, scaling.json and scaling.svg/.png
    /// (`tessera scaling --workload matmul --ranks 1,2,4 --n 2048`; your
    /// own program: `tessera scaling --ranks 1,2,4 -- ./prog args`).
    Scaling(ScalingArgs),
    /// Check every collective on the ranks of this job against values each
    /// rank computes independently.
    Selftest {
        /// Checks to run (default: all): p2p, nonblocking, broadcast, reduce,
        /// gather, alltoall, scan, comm, grid, mismatch.
        checks: Vec<String>,
    },
    /// Internal: initialises MPI and ends, what `tessera scaling` times as
    /// the start-up of a job.
    #[command(hide = true)]
    StartupProbe,
    /// Internal: sets this rank's GPU and runs PROGRAM (used by `tessera run`).
    #[command(hide = true)]
    RankExec {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        program: Vec<OsString>,
    },
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Ping-pong latency and bandwidth against rsmpi (`tessera run -n 2 bench p2p`).
    P2p(CommBenchArgs),
    /// All-reduce against rsmpi.
    Allreduce(CommBenchArgs),
    /// Broadcast against rsmpi.
    Bcast(CommBenchArgs),
    /// All-to-all against rsmpi.
    Alltoall(CommBenchArgs),
    /// Merging sorted runs on this rank's threads against a parallel copy
    /// of the same keys (memory speed: one read and one write per key).
    Merge {
        /// Keys in all, comma-separated.
        #[arg(value_parser = positive, long, value_delimiter = ',', default_value = "20000000")]
        n: Vec<usize>,
        /// Numbers of sorted runs to merge, comma-separated.
        #[arg(value_parser = positive, long, value_delimiter = ',', default_value = "2,4,16")]
        runs: Vec<usize>,
        /// Key type.
        #[arg(long, default_value = "u32")]
        dtype: KeyType,
        /// Threads (default: rayon's, the cores this process may use).
        #[arg(value_parser = positive, long)]
        threads: Option<usize>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Local sort keys/s against rayon's par_sort_unstable on the same keys.
    Sort {
        /// Key counts, comma-separated.
        #[arg(value_parser = positive, long, value_delimiter = ',', default_value = "10000000")]
        n: Vec<usize>,
        /// Key type.
        #[arg(long, default_value = "u32")]
        dtype: KeyType,
        /// Threads (default: rayon's, the cores this process may use).
        #[arg(value_parser = positive, long)]
        threads: Option<usize>,
        /// Where to run: cpu (against rayon and the radix-sort crates), or
        /// cuda / auto for a GPU (against the CPU sort of the same keys).
        #[arg(long, default_value = "cpu", value_parser = choice(tessera::device::DeviceChoice::ALL))]
        device: tessera::device::DeviceChoice,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Host-device copies: Tessera's transfers of pageable memory against
    /// the driver's own copies from pinned and pageable memory, same sizes,
    /// same run (GB/s).
    Copy {
        /// Sizes in MiB, comma-separated.
        #[arg(value_parser = positive, long, value_delimiter = ',', default_value = "64,1024")]
        mib: Vec<usize>,
        /// The GPU (cuda or auto; emulated for a dry run without one).
        #[arg(long, default_value = "cuda", value_parser = choice(tessera::device::DeviceChoice::ALL))]
        device: tessera::device::DeviceChoice,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Local GEMM GFLOP/s against this CPU's FMA peak and OpenBLAS.
    Gemm {
        /// Matrix orders, comma-separated.
        #[arg(value_parser = positive, long, value_delimiter = ',', default_value = "512,1024,2048")]
        n: Vec<usize>,
        /// Element type.
        #[arg(long, default_value = "f64")]
        dtype: Dtype,
        /// Threads (default: rayon's, the cores this process may use).
        #[arg(value_parser = positive, long)]
        threads: Option<usize>,
        /// Where to run: cpu (against the CPU anchors), or cuda / auto for
        /// a GPU (against cuBLAS for gemm).
        #[arg(long, default_value = "cpu", value_parser = choice(tessera::device::DeviceChoice::ALL))]
        device: tessera::device::DeviceChoice,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Key types of the sort commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    U32,
    U64,
    I32,
    I64,
    F32,
    F64,
}

/// The arguments of `tessera scaling`.
#[derive(clap::Args)]
pub struct ScalingArgs {
    /// matmul, sort or allreduce (ignored when a program follows `--`).
    #[arg(long, default_value = "matmul")]
    pub workload: String,
    /// Rank counts, including 1: a list (1,2,4,8) or a range, which means
    /// its powers of two (1..16 is 1,2,4,8,16).
    #[arg(long, default_value = "1,2")]
    pub ranks: String,
    /// strong: the same problem at every rank count; weak: the same
    /// work per rank.
    #[arg(long, default_value = "strong")]
    pub mode: tessera_cli::scaling::Mode,
    /// Problem size at one rank (matmul: the order n; sort: keys;
    /// allreduce: samples).
    #[arg(value_parser = positive, long)]
    pub n: Option<usize>,
    /// The sort's algorithm (sample, merge or radix; --workload sort).
    #[arg(long, value_parser = choice(tessera::distributed::sort::SortAlgo::ALL))]
    pub algo: Option<tessera::distributed::sort::SortAlgo>,
    /// Element type: f32 or f64 for matmul (f64 by default); u32, u64, i32,
    /// i64, f32 or f64 for sort (u32 by default).
    #[arg(long)]
    pub dtype: Option<String>,
    /// Runs per rank count.
    #[arg(value_parser = positive, long, default_value_t = 3)]
    pub repeat: usize,
    /// Threads per rank.
    #[arg(value_parser = positive, long, default_value_t = 1)]
    pub threads: usize,
    /// Where matmul and sort run.
    #[arg(long, default_value = "cpu", value_parser = choice(tessera::device::DeviceChoice::ALL))]
    pub device: tessera::device::DeviceChoice,
    /// Directory for scaling.csv, scaling.json, scaling.svg, scaling.png.
    #[arg(long, default_value = "scaling-out")]
    pub out: PathBuf,
    /// Fit the points with more ranks x threads than cores too.
    #[arg(long)]
    pub include_oversubscribed: bool,
    /// Your own program: how its total work grows with the ranks, as the
    /// power E of p in work(p) = work(1) p^E (default: 0 for --mode strong,
    /// the same problem at every rank count; 1 for weak, the same work per
    /// rank). Weak scaling's scaled speedup multiplies by it.
    #[arg(long, value_name = "E", allow_negative_numbers = false)]
    pub work_exponent: Option<f64>,
    /// Your own SPMD program and its arguments (after `--`). Its
    /// `tessera::timed` sections are timed when it has any; otherwise
    /// whole runs, less the MPI start-up measured with an empty job.
    #[arg(last = true, value_name = "PROGRAM ARGS")]
    pub program: Vec<OsString>,
}

#[derive(clap::Args)]
pub struct CommBenchArgs {
    /// Message sizes: a range of powers of two (8B..64MiB, 8B..64MiB:x4) or a
    /// list (1KiB,1MiB).
    #[arg(long, default_value = "8B..64MiB:x4")]
    pub sizes: String,
    /// Print one JSON object on rank 0 instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Element types of the numeric commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    F32,
    F64,
}

/// A parser for one of the library's named choices: their names are the
/// possible values clap lists (the emulated device stays out of the help).
fn choice<T: tessera::choice::Choice>(
    all: &'static [T],
) -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser as _};
    let values = all
        .iter()
        .map(|c| PossibleValue::new(c.name()).hide(c.name() == "emulated"));
    PossibleValuesParser::new(values).map(move |name| {
        *all.iter()
            .find(|c| c.name() == name)
            .expect("clap accepts only the listed names")
    })
}

/// A rank count: at least 1, and at most what MPI's `int` ranks can number.
fn rank_count(s: &str) -> Result<usize, String> {
    let n = positive(s)?;
    if n > i32::MAX as usize {
        return Err(format!("MPI numbers ranks up to {}", i32::MAX));
    }
    Ok(n)
}

/// A count that must be at least 1 (ranks, sizes, repetitions, threads).
fn positive(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "`{s}` is not a whole number from 1 to {}",
            usize::MAX
        )),
    }
}

/// `--grid RxC`.
fn grid_arg(s: &str) -> Result<(usize, usize), String> {
    matmul_demo::parse_grid(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    //! The command line under generated argument vectors: parsing never
    //! panics, and what parses passes the checks `tessera run` makes before
    //! launching without panicking either. `TESSERA_FUZZ_CASES` sets the
    //! number of cases (default 2,000).

    use super::*;
    use clap::CommandFactory;
    use proptest::prelude::*;
    use tessera_cli::launch;

    /// Words an argument vector is built from: every subcommand and flag,
    /// values in and out of range, and hostile text.
    const WORDS: &[&str] = &[
        "run",
        "info",
        "bench",
        "matmul",
        "sort",
        "allreduce",
        "scaling",
        "selftest",
        "rank-exec",
        "p2p",
        "gemm",
        "-n",
        "--np",
        "--hostfile",
        "--host",
        "--threads",
        "--trace",
        "--mca",
        "--raw",
        "--oversubscribe",
        "--m",
        "--k",
        "--n",
        "--a",
        "--b",
        "--out",
        "--dtype",
        "--device",
        "--grid",
        "--panel",
        "--progress-slices",
        "--seed",
        "--repeat",
        "--verify",
        "--json",
        "--dist",
        "--input",
        "--algo",
        "--len",
        "--iters",
        "--ranks",
        "--mode",
        "--workload",
        "--sizes",
        "--",
        "-",
        "0",
        "1",
        "2",
        "3x",
        "2x2",
        "0x4",
        "-1",
        "18446744073709551616",
        "99999999999999999999999",
        "1..16",
        "1,2,4",
        "f64",
        "u32",
        "cuda",
        "cpu",
        "auto",
        "sample",
        "merge",
        "weak",
        "strong",
        "8B..1MiB",
        "",
        "a:0",
        "n1:2,n2",
        "$(rm -rf /)",
        "; echo",
        "é",
        "\u{0}",
        "--help",
    ];

    fn argv() -> impl Strategy<Value = Vec<String>> {
        let word = prop_oneof![
            8 => proptest::sample::select(WORDS).prop_map(String::from),
            1 => "\\PC{0,12}",
            1 => any::<i64>().prop_map(|n| n.to_string()),
        ];
        proptest::collection::vec(word, 0..10)
    }

    fn cases() -> u32 {
        std::env::var(tessera::env::FUZZ_CASES)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2_000)
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn counts_and_grids_are_checked_by_the_parser() {
        assert_eq!(positive("3"), Ok(3));
        assert!(positive("0").unwrap_err().contains("at least 1"));
        assert!(positive("-2").unwrap_err().contains("not a whole number"));
        assert_eq!(grid_arg("2x3"), Ok((2, 3)));
        assert!(grid_arg("2x0").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

        #[test]
        fn no_argument_vector_makes_the_parser_panic(args in argv()) {
            let parsed = Cli::try_parse_from(std::iter::once("tessera".to_string()).chain(args));
            if let Ok(Cli { command: Command::Run(args) }) = parsed {
                prop_assert!(args.ranks >= 1 && args.ranks <= i32::MAX as usize);
                prop_assert!(args.threads.is_none_or(|t| t >= 1));
                prop_assert_eq!(args.mca.len() % 2, 0);
                let opts = RunOptions::from(args);
                // Builds the command (never runs it): errors are fine, panics not.
                let _ = launch::mpirun_command(&opts, std::path::Path::new("mpirun"), std::path::Path::new("/t"));
            }
        }
    }
}
