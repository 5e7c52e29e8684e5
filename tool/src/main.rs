//! The `tessera` command: job information, the launcher, benchmarks and the
//! runtime's self-test.

#![warn(clippy::undocumented_unsafe_blocks)]

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tessera::{Comm, Error, Universe};
use tessera_cli::bench::comm::{self as comm_bench, BenchOp, BenchRow};
use tessera_cli::bench::ops as ops_bench;
use tessera_cli::demo::matmul as matmul_demo;
use tessera_cli::demo::sort as sort_demo;
use tessera_cli::launch::RunOptions;

use tessera_cli::{info, launch, scaling, selftest};

/// SPMD programs on Open MPI with GPU offload.
#[derive(Parser)]
#[command(name = "tessera", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `tessera run`'s arguments.
#[derive(clap::Args)]
struct RunArgs {
    /// Number of ranks.
    #[arg(value_parser = rank_count, short = 'n', long = "np", value_name = "N")]
    ranks: usize,
    /// Open MPI hostfile (`HOST slots=N` per line).
    #[arg(long, value_name = "FILE")]
    hostfile: Option<PathBuf>,
    /// Hosts and slots, e.g. node1:4,node2:4.
    #[arg(long = "host", value_name = "H1:S1,H2:S2")]
    hosts: Option<String>,
    /// Allow more ranks than slots.
    #[arg(long)]
    oversubscribe: bool,
    /// Threads per rank (RAYON_NUM_THREADS); each rank is bound to that
    /// many cores. Default: the cores divided among the ranks.
    #[arg(value_parser = positive, long, value_name = "T")]
    threads: Option<usize>,
    /// Record a Chrome trace of every rank into this file (sets
    /// TESSERA_TRACE for the job).
    #[arg(long, value_name = "TRACE.json")]
    trace: Option<PathBuf>,
    /// An Open MPI parameter for the job, e.g. `--mca btl tcp,self`
    /// (repeatable; overrides Tessera's failure-detection defaults).
    #[arg(long, num_args = 2, value_names = ["KEY", "VALUE"], action = clap::ArgAction::Append)]
    mca: Vec<String>,
    /// Print mpirun's own messages unchanged (by default the boxes that
    /// repeat a rank's message are dropped and the rest shortened to
    /// one line).
    #[arg(long)]
    raw: bool,
    /// The program and its arguments (default: tessera info).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROGRAM ARGS"
    )]
    program: Vec<OsString>,
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
        }
    }
}

#[derive(Subcommand)]
enum Command {
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
        /// Rows of A and C.
        #[arg(value_parser = positive, long, default_value_t = 1024)]
        m: usize,
        /// Columns of A, rows of B.
        #[arg(value_parser = positive, long, default_value_t = 1024)]
        k: usize,
        /// Columns of B and C.
        #[arg(value_parser = positive, long, default_value_t = 1024)]
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
        /// Element type.
        #[arg(long, default_value = "f64")]
        dtype: Dtype,
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
        /// Key type.
        #[arg(long, default_value = "u32")]
        dtype: KeyType,
        /// Distribution of the generated keys.
        #[arg(long, default_value = "uniform", value_parser = choice(tessera::ops::generate::KeyDist::ALL))]
        dist: tessera::ops::generate::KeyDist,
        /// Read the keys from a 1-D .npy file instead (rank 0 reads and scatters).
        #[arg(long, value_name = "keys.npy")]
        input: Option<PathBuf>,
        /// Write the sorted keys to a 1-D .npy file.
        #[arg(long, value_name = "sorted.npy")]
        out: Option<PathBuf>,
        /// Algorithm.
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
    /// Internal: sets this rank's GPU and runs PROGRAM (used by `tessera run`).
    #[command(hide = true)]
    RankExec {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        program: Vec<OsString>,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Ping-pong latency and bandwidth against rsmpi (`tessera run -n 2 bench p2p`).
    P2p(CommBenchArgs),
    /// All-reduce against rsmpi.
    Allreduce(CommBenchArgs),
    /// Broadcast against rsmpi.
    Bcast(CommBenchArgs),
    /// All-to-all against rsmpi.
    Alltoall(CommBenchArgs),
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
        /// Where to run: cpu (against the CPU anchors), or cuda / auto for
        /// a GPU (against cuBLAS for gemm).
        #[arg(long, default_value = "cpu", value_parser = choice(tessera::device::DeviceChoice::ALL))]
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
enum KeyType {
    U32,
    U64,
    I32,
    I64,
    F32,
    F64,
}

/// The arguments of `tessera scaling`.
#[derive(clap::Args)]
struct ScalingArgs {
    /// matmul, sort or allreduce (ignored when a program follows `--`).
    #[arg(long, default_value = "matmul")]
    workload: String,
    /// Rank counts, including 1: a list (1,2,4,8) or powers of two (1..16).
    #[arg(long, default_value = "1,2")]
    ranks: String,
    /// strong: the same problem at every rank count; weak: the same
    /// work per rank.
    #[arg(long, default_value = "strong")]
    mode: crate::scaling::Mode,
    /// Problem size at one rank (matmul: the order n; sort: keys;
    /// allreduce: samples).
    #[arg(value_parser = positive, long)]
    n: Option<usize>,
    /// Runs per rank count.
    #[arg(value_parser = positive, long, default_value_t = 3)]
    repeat: usize,
    /// Threads per rank.
    #[arg(value_parser = positive, long, default_value_t = 1)]
    threads: usize,
    /// Where matmul and sort run.
    #[arg(long, default_value = "cpu", value_parser = choice(tessera::device::DeviceChoice::ALL))]
    device: tessera::device::DeviceChoice,
    /// Directory for scaling.csv, scaling.json, scaling.svg, scaling.png.
    #[arg(long, default_value = "scaling-out")]
    out: PathBuf,
    /// Fit the points with more ranks x threads than cores too.
    #[arg(long)]
    include_oversubscribed: bool,
    /// Your own SPMD program and its arguments (after `--`), timed as a
    /// whole run.
    #[arg(last = true, value_name = "PROGRAM ARGS")]
    program: Vec<OsString>,
}

#[derive(clap::Args)]
struct CommBenchArgs {
    /// Message sizes: a range of powers of two (8B..64MiB, 8B..64MiB:x4) or a
    /// list (1KiB,1MiB).
    #[arg(long, default_value = "8B..64MiB:x4")]
    sizes: String,
    /// Print one JSON object on rank 0 instead of a table.
    #[arg(long)]
    json: bool,
}

/// Element types of the numeric commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum Dtype {
    F32,
    F64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            // A tessera subcommand's arguments are checked here, once,
            // rather than by every rank of the job.
            if args
                .program
                .first()
                .and_then(|f| f.to_str())
                .is_some_and(|f| launch::OWN_SUBCOMMANDS.contains(&f))
                && let Err(e) = Cli::try_parse_from(
                    std::iter::once(OsString::from("tessera")).chain(args.program.iter().cloned()),
                )
            {
                e.exit();
            }
            let opts = RunOptions::from(args);
            match launch::run(&opts) {
                Ok(code) => ExitCode::from(code),
                Err(e) => fail(&e),
            }
        }
        Command::RankExec { program } => fail(&launch::rank_exec(&program)),
        Command::Info { json } => with_mpi(|u, w| cmd_info(u, w, json)),
        Command::Bench(BenchCommand::Gemm {
            n,
            dtype,
            threads: _,
            device,
            json,
        }) if device != tessera::device::DeviceChoice::Cpu => {
            with_mpi(|_, w| cmd_bench_gemm_device(w, device, &n, dtype, json).map(|()| 0))
        }
        Command::Bench(BenchCommand::Sort {
            n,
            dtype,
            device,
            json,
            ..
        }) if device != tessera::device::DeviceChoice::Cpu => {
            with_mpi(|_, w| cmd_bench_sort_device(w, device, &n, dtype, json).map(|()| 0))
        }
        Command::Bench(BenchCommand::Gemm {
            n,
            dtype,
            threads,
            json,
            ..
        }) => match cmd_bench_gemm(&n, dtype, threads, json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
        Command::Bench(BenchCommand::Sort {
            n,
            dtype,
            threads,
            json,
            ..
        }) => match cmd_bench_sort(&n, dtype, threads, json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
        Command::Bench(comm_bench) => {
            let (op, args) = match comm_bench {
                BenchCommand::P2p(a) => (BenchOp::P2p, a),
                BenchCommand::Allreduce(a) => (BenchOp::Allreduce, a),
                BenchCommand::Bcast(a) => (BenchOp::Bcast, a),
                BenchCommand::Alltoall(a) => (BenchOp::Alltoall, a),
                BenchCommand::Gemm { .. } | BenchCommand::Sort { .. } => {
                    unreachable!("handled above")
                }
            };
            with_mpi(|_, w| cmd_bench(w, op, &args.sizes, args.json))
        }
        Command::Selftest { checks } => with_mpi(|_, w| cmd_selftest(w, &checks)),
        Command::Scaling(args) => match cmd_scaling(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
        Command::Allreduce {
            n,
            len,
            iters,
            json,
            trace,
        } => {
            let job = tessera_cli::demo::allreduce::AllreduceJob { n, len, iters };
            with_mpi_traced(trace, |_, w| {
                let report = tessera_cli::demo::allreduce::run(w, &job)?;
                let text = tessera_cli::demo::allreduce::render(&report);
                print_report(w, json, &report, text);
                Ok(if report.verified { 0 } else { 1 })
            })
        }
        Command::Sort {
            n,
            dtype,
            dist,
            input,
            out,
            algo,
            device,
            seed,
            verify,
            json,
            trace,
        } => {
            let job = sort_demo::SortJob {
                n,
                dist,
                input,
                out,
                algo,
                device,
                seed,
            };
            with_mpi_traced(trace, |_, w| cmd_sort(w, &job, dtype, verify, json))
        }
        Command::Matmul {
            m,
            k,
            n,
            a,
            b,
            out,
            dtype,
            device,
            gemm_backend,
            grid,
            panel,
            seed,
            repeat,
            verify,
            json,
            trace,
        } => {
            let job = matmul_demo::MatmulJob {
                m,
                k,
                n,
                inputs: a.zip(b),
                out,
                device,
                gemm_backend,
                grid,
                panel,
                seed,
                repeat,
            };
            with_mpi_traced(trace, |_, w| cmd_matmul(w, &job, dtype, verify, json))
        }
    }
}

/// `tessera scaling`: the sweep, with a progress bar, then the files and
/// the table.
fn cmd_scaling(args: ScalingArgs) -> Result<(), Error> {
    let ScalingArgs {
        workload,
        ranks,
        mode,
        n,
        repeat,
        threads,
        device,
        out,
        include_oversubscribed,
        program,
    } = args;
    use tessera_cli::scaling::{self, Mode, SweepOptions, Workload};
    let workload = if program.is_empty() {
        Workload::parse(&workload)?
    } else {
        Workload::Command(program)
    };
    let n = n.unwrap_or(match (&workload, mode) {
        (Workload::Matmul, Mode::Strong) => 2048,
        (Workload::Matmul, Mode::Weak) => 1024,
        (Workload::Sort, Mode::Strong) => 20_000_000,
        (Workload::Sort, Mode::Weak) => 5_000_000,
        (Workload::Allreduce, _) => 4_000_000,
        (Workload::Command(_), _) => 0,
    });
    let opts = SweepOptions {
        workload,
        ranks: scaling::parse_ranks(&ranks)?,
        mode,
        n,
        repeat,
        threads,
        device: device.name().to_string(),
        include_oversubscribed,
        out,
    };
    opts.validate()?;
    let total = (opts.ranks.len() * opts.repeat) as u64;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} jobs  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(format!("{} ranks", opts.ranks[0]));
    let mut next = opts
        .ranks
        .iter()
        .flat_map(|&p| std::iter::repeat_n(p, opts.repeat))
        .skip(1);
    let runs = scaling::sweep(&opts, |run| {
        bar.inc(1);
        bar.set_message(match next.next() {
            Some(p) => format!(
                "{p} ranks (last: {} ranks, {:.3} s)",
                run.ranks, run.seconds
            ),
            None => "done".into(),
        });
    });
    bar.finish_and_clear();
    let analysis = scaling::analyse(&opts, scaling::Machine::here(), runs?)?;
    let (files, note) = scaling::write_outputs(&analysis, &opts.out)?;
    print!("{}", scaling::render_table(&analysis));
    for f in files {
        println!("wrote {}", f.display());
    }
    if let Some(note) = note {
        println!("{note}");
    }
    Ok(())
}

/// A rank count: at least 1, and at most what MPI's `int` ranks can number.
/// A parser for one of the library's named choices: their names are the
/// possible values clap lists (the emulated device stays out of the help).
fn choice<T: Named>(all: &'static [T]) -> impl clap::builder::TypedValueParser<Value = T> {
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

/// The library's enums of named choices (each has `ALL` and `name`).
trait Named: Copy + Send + Sync + 'static {
    fn name(self) -> &'static str;
}

macro_rules! named {
    ($($ty:ty),+) => {
        $(impl Named for $ty {
            fn name(self) -> &'static str {
                <$ty>::name(self)
            }
        })+
    };
}

named!(
    tessera::device::DeviceChoice,
    tessera::ops::gemm::GemmBackend,
    tessera::distributed::sort::SortAlgo,
    tessera::ops::generate::KeyDist
);

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

fn fail(e: &Error) -> ExitCode {
    eprintln!("tessera: {e}");
    ExitCode::from(2)
}

/// Runs `body` inside MPI. Errors that every rank returns together finalise
/// MPI and exit with status 2; the panic hook covers the rest.
fn with_mpi(body: impl FnOnce(&Universe, &Comm) -> Result<u8, Error>) -> ExitCode {
    with_mpi_traced(None, body)
}

/// [`with_mpi`] recording a trace into `trace` (else where `TESSERA_TRACE`
/// says, if set).
fn with_mpi_traced(
    trace: Option<PathBuf>,
    body: impl FnOnce(&Universe, &Comm) -> Result<u8, Error>,
) -> ExitCode {
    let universe = match Universe::init() {
        Ok(u) => u,
        Err(e) => return fail(&e),
    };
    let world = universe.world();
    let rank = world.rank();
    let code = match tessera::trace::run_traced(&world, trace, || body(&universe, &world)) {
        Ok(code) => code,
        Err(e) => {
            if rank == 0 {
                eprintln!("tessera: {e}");
            }
            2
        }
    };
    drop(world);
    drop(universe);
    ExitCode::from(code)
}

fn cmd_info(universe: &Universe, world: &Comm, json: bool) -> Result<u8, Error> {
    if let Some(job) = info::gather_job_info(universe, world, 0)? {
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&job).expect("JobInfo serialises")
            );
        } else {
            print!("{}", info::render_table(&job));
        }
    }
    Ok(0)
}

fn cmd_bench(world: &Comm, op: BenchOp, sizes: &str, json: bool) -> Result<u8, Error> {
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

fn cmd_bench_gemm(
    sizes: &[usize],
    dtype: Dtype,
    threads: Option<usize>,
    json: bool,
) -> Result<(), Error> {
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

fn cmd_matmul(
    world: &Comm,
    job: &matmul_demo::MatmulJob,
    dtype: Dtype,
    verify: bool,
    json: bool,
) -> Result<u8, Error> {
    let report = match dtype {
        Dtype::F32 => matmul_demo::run::<f32>(world, job)?,
        Dtype::F64 => matmul_demo::run::<f64>(world, job)?,
    };
    print_report(world, json, &report, matmul_demo::render(&report));
    Ok(verdict(world, verify, report.verified, "the product"))
}

/// The exit status of a demo run with `--verify`: 1, with one line on
/// standard error from rank 0, when the result was not verified.
fn verdict(world: &Comm, verify: bool, verified: bool, what: &str) -> u8 {
    if !verify || verified {
        return 0;
    }
    if world.rank() == 0 {
        eprintln!("tessera: {what} was not verified (see the report above)");
    }
    1
}

/// Prints a demo's report on rank 0: one JSON object, or the text.
fn print_report(world: &Comm, json: bool, report: &impl serde::Serialize, text: String) {
    if world.rank() != 0 {
        return;
    }
    if json {
        println!(
            "{}",
            serde_json::to_string(report).expect("report serialises")
        );
    } else {
        print!("{text}");
    }
}

fn thread_pool(threads: Option<usize>) -> Result<(usize, rayon::ThreadPool), Error> {
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

fn cmd_bench_gemm_device(
    world: &tessera::Comm,
    choice: tessera::device::DeviceChoice,
    sizes: &[usize],
    dtype: Dtype,
    json: bool,
) -> Result<(), Error> {
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

fn cmd_bench_sort_device(
    world: &tessera::Comm,
    choice: tessera::device::DeviceChoice,
    sizes: &[usize],
    dtype: KeyType,
    json: bool,
) -> Result<(), Error> {
    let device = tessera::Device::select(choice, world.local_rank())?;
    let rows = match dtype {
        KeyType::U32 => ops_bench::bench_sort_device::<u32>(device, sizes),
        KeyType::U64 => ops_bench::bench_sort_device::<u64>(device, sizes),
        KeyType::I32 => ops_bench::bench_sort_device::<i32>(device, sizes),
        KeyType::I64 => ops_bench::bench_sort_device::<i64>(device, sizes),
        KeyType::F32 => ops_bench::bench_sort_device::<f32>(device, sizes),
        KeyType::F64 => ops_bench::bench_sort_device::<f64>(device, sizes),
    }?;
    if world.rank() != 0 {
        return Ok(());
    }
    if json {
        println!(
            "{}",
            serde_json::json!({ "dtype": dtype, "device": device.to_string(), "results": rows })
        );
    } else {
        println!("sort {dtype:?} on {device} (uniform keys, best of 3 after a warm-up)");
        println!(
            "{:>11} {:>16} {:>18} {:>8}",
            "n", "device Mkeys/s", "w/ copies Mkeys/s", "matches"
        );
        for r in &rows {
            println!(
                "{:>11} {:>16.1} {:>18.1} {:>8}",
                r.n,
                r.device_keys_per_s / 1e6,
                r.with_copies_keys_per_s / 1e6,
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

fn cmd_bench_sort(
    sizes: &[usize],
    dtype: KeyType,
    threads: Option<usize>,
    json: bool,
) -> Result<(), Error> {
    let (threads, pool) = thread_pool(threads)?;
    let rows = pool.install(|| match dtype {
        KeyType::U32 => ops_bench::bench_sort::<u32>(sizes),
        KeyType::U64 => ops_bench::bench_sort::<u64>(sizes),
        KeyType::I32 => ops_bench::bench_sort::<i32>(sizes),
        KeyType::I64 => ops_bench::bench_sort::<i64>(sizes),
        KeyType::F32 => ops_bench::bench_sort::<f32>(sizes),
        KeyType::F64 => ops_bench::bench_sort::<f64>(sizes),
    })?;
    if json {
        let report = serde_json::json!({ "dtype": dtype, "threads": threads, "results": rows });
        println!("{report}");
    } else {
        println!(
            "sort {dtype:?} on {threads} threads (uniform keys, best of runs; ratio = Tessera / rayon par_sort_unstable)"
        );
        println!(
            "{:>11} {:>14} {:>14} {:>8}",
            "n", "Mkeys/s", "rayon Mkeys/s", "ratio"
        );
        for r in &rows {
            println!(
                "{:>11} {:>14.1} {:>14.1} {:>8.2}",
                r.n,
                r.keys_per_second / 1e6,
                r.rayon_keys_per_second / 1e6,
                r.ratio_vs_rayon
            );
        }
    }
    Ok(())
}

fn cmd_sort(
    world: &Comm,
    job: &sort_demo::SortJob,
    dtype: KeyType,
    verify: bool,
    json: bool,
) -> Result<u8, Error> {
    let report = match dtype {
        KeyType::U32 => sort_demo::run::<u32>(world, job)?,
        KeyType::U64 => sort_demo::run::<u64>(world, job)?,
        KeyType::I32 => sort_demo::run::<i32>(world, job)?,
        KeyType::I64 => sort_demo::run::<i64>(world, job)?,
        KeyType::F32 => sort_demo::run::<f32>(world, job)?,
        KeyType::F64 => sort_demo::run::<f64>(world, job)?,
    };
    print_report(world, json, &report, sort_demo::render(&report));
    Ok(verdict(world, verify, report.verified, "the sort"))
}

fn cmd_selftest(world: &Comm, names: &[String]) -> Result<u8, Error> {
    let report = selftest::run(world, names)?;
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

#[cfg(test)]
mod tests {
    //! The command line under generated argument vectors: parsing never
    //! panics, and what parses passes the checks `tessera run` makes before
    //! launching without panicking either. `TESSERA_FUZZ_CASES` sets the
    //! number of cases (default 2,000).

    use super::*;
    use clap::CommandFactory;
    use proptest::prelude::*;

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
        std::env::var("TESSERA_FUZZ_CASES")
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
