//! Strong and weak scaling sweeps: run a workload at several rank counts,
//! fit Amdahl's (strong) or Gustafson's (weak) law, and write the figures,
//! the model and the picture (`tessera scaling`).
//!
//! - [`sweep`] launches one job per rank count and repeat through the same
//!   launcher as `tessera run`, and collects each rank's time split from
//!   the trace spans (see [`tessera::trace`]).
//! - [`analyse`] turns the runs into points (median, spread, speedup,
//!   efficiency, Karp-Flatt serial fraction) and fits the model.
//! - [`write_outputs`] writes `scaling.csv` (one row per run),
//!   `scaling.json` (points, fit, machine) and `scaling.svg`/`.png`.
//!
//! The mathematics is in [`model`], the chart in [`plot`].

pub mod model;
pub mod plot;
mod report;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use report::{Machine, Startup, analyse, render_table, write_outputs};

use crate::launch::{RunOptions, prepare};
use crate::{Error, Result};
use tessera::trace::RankSplit;

/// What is swept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workload {
    /// `tessera matmul`: n x n times n x n.
    Matmul,
    /// `tessera sort`: n keys.
    Sort,
    /// `tessera allreduce`: n samples, a gradient all-reduced per step.
    Allreduce,
    /// A user's own SPMD program and its arguments, timed as a whole run.
    Command(Vec<OsString>),
}

impl Workload {
    /// The workload's name in files and tables.
    pub fn name(&self) -> String {
        match self {
            Workload::Matmul => "matmul".into(),
            Workload::Sort => "sort".into(),
            Workload::Allreduce => "allreduce".into(),
            Workload::Command(args) => args
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// Parses `matmul`, `sort` or `allreduce`.
    pub fn parse(name: &str) -> Result<Workload> {
        match name {
            "matmul" => Ok(Workload::Matmul),
            "sort" => Ok(Workload::Sort),
            "allreduce" => Ok(Workload::Allreduce),
            other => Err(Error::Usage(format!(
                "unknown workload `{other}`: use matmul, sort or allreduce, or give your own program after `--` (tessera scaling --ranks 1,2 -- ./prog args)"
            ))),
        }
    }
}

/// Strong scaling keeps the problem fixed; weak scaling grows it with the
/// rank count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The same problem on every rank count.
    Strong,
    /// The same work per rank: matmul's n grows with the cube root of the
    /// ranks (flops per rank constant), sort's and allreduce's n with the
    /// ranks.
    Weak,
}

/// What `tessera scaling` was asked for.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// The workload.
    pub workload: Workload,
    /// Rank counts to measure (must include 1).
    pub ranks: Vec<usize>,
    /// Strong or weak.
    pub mode: Mode,
    /// Problem size at one rank.
    pub n: usize,
    /// The sort's algorithm (`sample`, `merge`, `radix`), where not the
    /// default.
    pub algo: Option<String>,
    /// The element type of matmul or sort, where not the default.
    pub dtype: Option<String>,
    /// Runs per rank count.
    pub repeat: usize,
    /// Threads per rank.
    pub threads: usize,
    /// Device for matmul and sort (`auto`, `cpu`, `cuda`).
    pub device: String,
    /// Fit oversubscribed points too.
    pub include_oversubscribed: bool,
    /// Directory for the output files.
    pub out: PathBuf,
    /// A user's program: how its total work grows with the ranks, as the
    /// power E of p (default 0 for strong scaling, 1 for weak).
    pub work_exponent: Option<f64>,
}

impl SweepOptions {
    /// The workload's name, with the algorithm and element type where they
    /// were given (`sort merge f64`).
    pub fn label(&self) -> String {
        let mut label = self.workload.name();
        for value in [&self.algo, &self.dtype].into_iter().flatten() {
            label.push(' ');
            label.push_str(value);
        }
        label
    }

    /// Checks the options and says what to change.
    pub fn validate(&self) -> Result<()> {
        if self.ranks.is_empty() {
            return Err(Error::Usage(
                "--ranks is empty: give rank counts, e.g. --ranks 1,2,4,8".into(),
            ));
        }
        if self.ranks.contains(&0) {
            return Err(Error::Usage(
                "--ranks contains 0: every rank count must be at least 1".into(),
            ));
        }
        if !self.ranks.contains(&1) {
            return Err(Error::Usage(
                "--ranks must include 1: speedups are measured against one rank".into(),
            ));
        }
        if self.repeat == 0 {
            return Err(Error::Usage("--repeat must be at least 1".into()));
        }
        if self.algo.is_some() && self.workload != Workload::Sort {
            return Err(Error::Usage(
                "--algo is for --workload sort: leave it out, or sweep the sort".into(),
            ));
        }
        if let Some(dtype) = &self.dtype {
            let types: &[&str] = match self.workload {
                Workload::Matmul => &["f32", "f64"],
                Workload::Sort => &tessera::distributed::sort::KEY_TYPES,
                _ => &[],
            };
            if types.is_empty() {
                return Err(Error::Usage(
                    "--dtype is for --workload matmul or sort: leave it out here".into(),
                ));
            }
            if !types.contains(&dtype.as_str()) {
                return Err(Error::Usage(format!(
                    "--dtype {dtype} is not a type of the {} workload: use one of {}",
                    self.workload.name(),
                    types.join(", ")
                )));
            }
        }
        if self.threads == 0 {
            return Err(Error::Usage("--threads must be at least 1".into()));
        }
        if let Some(e) = self.work_exponent {
            if !matches!(self.workload, Workload::Command(_)) {
                return Err(Error::Usage(
                    "--work-exponent is for your own program (after `--`): the built-in workloads know how their work grows".into(),
                ));
            }
            if !(e.is_finite() && (0.0..=3.0).contains(&e)) {
                return Err(Error::Usage(format!(
                    "--work-exponent {e}: give a power from 0 (the same total work at every rank count) to 3 (work growing as p^3)"
                )));
            }
        }
        if self.n == 0 && !matches!(self.workload, Workload::Command(_)) {
            return Err(Error::Usage(
                "--n must be at least 1: it is the problem size at one rank".into(),
            ));
        }
        Ok(())
    }

    /// The problem size at `p` ranks.
    pub fn size_at(&self, p: usize) -> usize {
        match (self.mode, &self.workload) {
            (Mode::Strong, _) | (_, Workload::Command(_)) => self.n,
            (Mode::Weak, Workload::Matmul) => {
                (self.n as f64 * (p as f64).cbrt()).round().max(1.0) as usize
            }
            (Mode::Weak, _) => self.n.saturating_mul(p),
        }
    }

    /// The work at `p` ranks relative to one rank's: what weak scaling's
    /// scaled speedup multiplies by (matmul's flops grow as n^3).
    /// A user's program says how its work grows with `--work-exponent`
    /// (default: 1 for strong scaling, p for weak).
    pub fn work_ratio(&self, p: usize) -> f64 {
        if let Workload::Command(_) = self.workload {
            let exponent = self.work_exponent.unwrap_or(match self.mode {
                Mode::Strong => 0.0,
                Mode::Weak => 1.0,
            });
            return (p as f64).powf(exponent);
        }
        let (n1, np) = (self.size_at(1) as f64, self.size_at(p) as f64);
        match self.workload {
            Workload::Matmul => (np / n1).powi(3),
            _ => np / n1,
        }
    }

    /// The arguments of the job at `p` ranks.
    pub fn program(&self, p: usize) -> Vec<OsString> {
        let n = self.size_at(p).to_string();
        let mut args: Vec<String> = match &self.workload {
            Workload::Matmul => vec![
                "matmul".into(),
                "--m".into(),
                n.clone(),
                "--k".into(),
                n.clone(),
                "--n".into(),
                n,
                "--repeat".into(),
                "1".into(),
                "--device".into(),
                self.device.clone(),
                "--verify".into(),
                "--json".into(),
            ],
            Workload::Sort => vec![
                "sort".into(),
                "--n".into(),
                n,
                "--device".into(),
                self.device.clone(),
                "--verify".into(),
                "--json".into(),
            ],
            Workload::Allreduce => vec!["allreduce".into(), "--n".into(), n, "--json".into()],
            Workload::Command(args) => return args.clone(),
        };
        for (flag, value) in [("--algo", &self.algo), ("--dtype", &self.dtype)] {
            if let Some(value) = value {
                args.extend([flag.to_string(), value.clone()]);
            }
        }
        args.into_iter().map(OsString::from).collect()
    }
}

/// What a run's `seconds` measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeSource {
    /// The timed section a built-in workload reports.
    Workload,
    /// The program's `tessera::timed` sections, summed.
    Timed,
    /// The whole run, from launch to exit: MPI start-up included.
    WholeRun,
}

/// One job of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Ranks.
    pub ranks: usize,
    /// Which repeat (from 0).
    pub repeat: usize,
    /// Problem size.
    pub size: usize,
    /// The timed section (slowest rank) as the workload reports it; for a
    /// user's program, its `tessera::timed` sections, else the whole job's
    /// wall time (less the start-up, once [`analyse`] has measured it).
    pub seconds: f64,
    /// What `seconds` measure.
    pub source: TimeSource,
    /// The whole job, launch included.
    pub wall_seconds: f64,
    /// Every rank's split (empty for a user's program).
    pub split: Vec<RankSplit>,
    /// The workload's own phases (slowest rank), where it reports them:
    /// the sort's local sort, exchange and merge.
    #[serde(default)]
    pub phases: Vec<(String, f64)>,
}

/// The timed section and split a workload prints as JSON.
#[derive(Deserialize)]
struct WorkloadReport {
    seconds: f64,
    #[serde(default)]
    split: Vec<RankSplit>,
    /// Whether the result was checked and right (`None`: not checked).
    #[serde(default)]
    verified: Option<bool>,
    /// The sort's phases (slowest rank).
    local_sort_seconds: Option<f64>,
    exchange_seconds: Option<f64>,
    merge_seconds: Option<f64>,
}

impl WorkloadReport {
    /// The phases the workload reported, named.
    fn phases(&self) -> Vec<(String, f64)> {
        [
            ("local sort", self.local_sort_seconds),
            ("exchange", self.exchange_seconds),
            ("merge", self.merge_seconds),
        ]
        .into_iter()
        .filter_map(|(name, s)| s.map(|s| (name.to_string(), s)))
        .collect()
    }
}

/// Runs one job: `p` ranks through the `tessera run` launcher, output
/// captured.
pub fn run_once(opts: &SweepOptions, p: usize, repeat: usize) -> Result<Run> {
    let timed_file = std::env::temp_dir().join(format!(
        "tessera-scaling-{}-{p}-{repeat}.jsonl",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&timed_file);
    let mut run = RunOptions {
        ranks: p,
        threads: Some(opts.threads),
        program: opts.program(p),
        ..RunOptions::default()
    };
    if let Workload::Command(_) = opts.workload {
        run.env
            .push((tessera::env::TIMED_FILE.into(), timed_file.clone().into()));
    }
    let (out, wall, shown) = launch_job(&run, p)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut phases = Vec::new();
    let (seconds, source, split) = match opts.workload {
        Workload::Command(_) => {
            let sections = read_timed_sections(&timed_file);
            let _ = std::fs::remove_file(&timed_file);
            match sections? {
                Some((seconds, split)) => (seconds, TimeSource::Timed, split),
                None => (wall, TimeSource::WholeRun, Vec::new()),
            }
        }
        _ => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let line = stdout
                .lines()
                .rev()
                .find(|l| l.trim_start().starts_with('{'))
                .ok_or_else(|| Error::Launch {
                    program: shown.clone(),
                    reason: format!(
                        "the job printed no JSON report; its output:\n{stdout}{stderr}"
                    ),
                })?;
            let report: WorkloadReport = serde_json::from_str(line).map_err(|e| Error::Launch {
                program: shown.clone(),
                reason: format!("unreadable JSON report ({e}): {line}"),
            })?;
            if report.verified == Some(false) {
                return Err(Error::Launch {
                    program: shown,
                    reason: format!(
                        "the job at {p} ranks computed a wrong result (verification failed)"
                    ),
                });
            }
            phases = report.phases();
            (report.seconds, TimeSource::Workload, report.split)
        }
    };
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(Error::Launch {
            program: shown,
            reason: format!(
                "the job at {p} ranks reported {seconds} s, which cannot be a time: time a section that does some work"
            ),
        });
    }
    Ok(Run {
        ranks: p,
        repeat,
        size: opts.size_at(p),
        seconds,
        source,
        wall_seconds: wall,
        split,
        phases,
    })
}

/// The `tessera::timed` sections a run wrote to `path`: their total time
/// and their splits added rank by rank, or `None` when it wrote none.
fn read_timed_sections(path: &Path) -> Result<Option<(f64, Vec<RankSplit>)>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let mut total = 0.0;
    let mut split: Vec<RankSplit> = Vec::new();
    let mut any = false;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let section: tessera::comm::trace::TimedSection =
            serde_json::from_str(line).map_err(|e| {
                Error::Usage(format!(
                    "unreadable timed section in {} ({e}): {line}",
                    path.display()
                ))
            })?;
        any = true;
        total += section.seconds;
        if split.is_empty() {
            split = section.split;
        } else {
            for (sum, s) in split.iter_mut().zip(&section.split) {
                sum.elapsed += s.elapsed;
                sum.compute += s.compute;
                sum.comm += s.comm;
                sum.wait += s.wait;
                sum.copy += s.copy;
                sum.other += s.other;
                sum.bytes += s.bytes;
            }
        }
    }
    Ok(any.then_some((total, split)))
}

/// Starts one job through the launcher and waits for it: its output, its
/// wall time and how it was started (for messages). A failed job is an
/// error showing the end of its standard error.
fn launch_job(run: &RunOptions, p: usize) -> Result<(std::process::Output, f64, String)> {
    let mut cmd = prepare(run)?;
    let shown = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let start = Instant::now();
    let out = cmd.output().map_err(|e| Error::Launch {
        program: cmd.get_program().to_string_lossy().into_owned(),
        reason: e.to_string(),
    })?;
    let wall = start.elapsed().as_secs_f64();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
        return Err(Error::Launch {
            program: shown,
            reason: format!(
                "the job at {p} ranks failed ({}):\n{}",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ),
        });
    }
    Ok((out, wall, shown))
}

/// The start-up of a job at `p` ranks (launch, MPI initialisation and
/// finalisation, exit): the median wall time of `repeat` empty jobs,
/// started the way the sweep starts a program.
pub fn measure_startup(opts: &SweepOptions, p: usize) -> Result<f64> {
    let tessera =
        std::env::current_exe().map_err(|e| tessera::Error::io("finding the tessera binary", e))?;
    let run = RunOptions {
        ranks: p,
        threads: Some(opts.threads),
        program: vec![tessera.into(), "startup-probe".into()],
        ..RunOptions::default()
    };
    let times = (0..opts.repeat.max(3))
        .map(|_| launch_job(&run, p).map(|(_, wall, _)| wall))
        .collect::<Result<Vec<f64>>>()?;
    Ok(model::median(&times))
}

/// Runs the sweep: every rank count `repeat` times, in the order given,
/// calling `progress` after each job.
pub fn sweep(opts: &SweepOptions, mut progress: impl FnMut(&Run)) -> Result<Vec<Run>> {
    opts.validate()?;
    let mut runs = Vec::with_capacity(opts.ranks.len() * opts.repeat);
    for &p in &opts.ranks {
        for r in 0..opts.repeat {
            let run = run_once(opts, p, r)?;
            progress(&run);
            runs.push(run);
        }
    }
    Ok(runs)
}

/// Parses `--ranks 1,2,4,8` (also ranges `1..8` of powers of two).
pub fn parse_ranks(s: &str) -> Result<Vec<usize>> {
    let bad = |what: &str| {
        Error::Usage(format!(
            "bad --ranks `{s}`: {what}; give rank counts like 1,2,4,8 or a range of powers of two like 1..16"
        ))
    };
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once("..") {
            let a: usize = a.trim().parse().map_err(|_| bad("not a whole number"))?;
            let b: usize = b.trim().parse().map_err(|_| bad("not a whole number"))?;
            if a == 0 || b < a {
                return Err(bad("a range must go up from at least 1"));
            }
            let mut p = a;
            while p <= b {
                out.push(p);
                p *= 2;
            }
        } else {
            out.push(part.parse().map_err(|_| bad("not a whole number"))?);
        }
    }
    if out.is_empty() {
        return Err(bad("no rank counts"));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The directory's files: `scaling.csv`, `scaling.json`, `scaling.svg`,
/// `scaling.png`.
pub fn output_paths(dir: &Path) -> [PathBuf; 4] {
    ["scaling.csv", "scaling.json", "scaling.svg", "scaling.png"].map(|f| dir.join(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(workload: Workload, mode: Mode) -> SweepOptions {
        SweepOptions {
            workload,
            ranks: vec![1, 2, 4, 8],
            mode,
            n: 1000,
            algo: None,
            dtype: None,
            repeat: 3,
            threads: 1,
            device: "cpu".into(),
            include_oversubscribed: false,
            out: PathBuf::from("."),
            work_exponent: None,
        }
    }

    #[test]
    fn weak_scaling_keeps_the_work_per_rank() {
        let m = opts(Workload::Matmul, Mode::Weak);
        assert_eq!(m.size_at(1), 1000);
        assert_eq!(m.size_at(8), 2000);
        assert!((m.work_ratio(8) - 8.0).abs() < 1e-12);
        // 1000 * 2^(1/3) = 1259.92...: flops within rounding of 2x.
        assert_eq!(m.size_at(2), 1260);
        assert!((m.work_ratio(2) - 2.0).abs() < 0.01);
        let s = opts(Workload::Sort, Mode::Weak);
        assert_eq!(s.size_at(4), 4000);
        assert_eq!(s.work_ratio(4), 4.0);
        let strong = opts(Workload::Sort, Mode::Strong);
        assert_eq!(strong.size_at(4), 1000);
        assert_eq!(strong.work_ratio(4), 1.0);
    }

    #[test]
    fn a_sort_sweep_passes_its_algorithm_and_type_and_others_refuse_them() {
        let sort = SweepOptions {
            algo: Some("merge".into()),
            dtype: Some("f64".into()),
            ..opts(Workload::Sort, Mode::Strong)
        };
        assert!(sort.validate().is_ok());
        let args: Vec<String> = sort
            .program(2)
            .iter()
            .map(|a| a.to_string_lossy().into())
            .collect();
        assert_eq!(args[0], "sort");
        assert!(
            args.windows(2).any(|w| w == ["--algo", "merge"]),
            "{args:?}"
        );
        assert!(args.windows(2).any(|w| w == ["--dtype", "f64"]), "{args:?}");
        assert_eq!(sort.label(), "sort merge f64");
        let matmul = SweepOptions {
            algo: None,
            dtype: Some("f32".into()),
            ..opts(Workload::Matmul, Mode::Strong)
        };
        assert!(matmul.validate().is_ok());
        for (bad, needle) in [
            (
                SweepOptions {
                    algo: Some("merge".into()),
                    ..opts(Workload::Matmul, Mode::Strong)
                },
                "--algo is for --workload sort",
            ),
            (
                SweepOptions {
                    dtype: Some("u32".into()),
                    ..opts(Workload::Matmul, Mode::Strong)
                },
                "use one of f32, f64",
            ),
            (
                SweepOptions {
                    dtype: Some("f64".into()),
                    ..opts(Workload::Allreduce, Mode::Strong)
                },
                "--dtype is for --workload matmul or sort",
            ),
        ] {
            let e = bad.validate().unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn jobs_ask_the_workload_for_json_at_the_right_size() {
        let m = opts(Workload::Matmul, Mode::Weak);
        let args: Vec<String> = m
            .program(8)
            .iter()
            .map(|a| a.to_string_lossy().into())
            .collect();
        assert_eq!(args[0], "matmul");
        assert!(args.windows(2).any(|w| w == ["--m", "2000"]));
        assert!(args.contains(&"--json".to_string()));
        let c = opts(
            Workload::Command(vec!["./prog".into(), "x".into()]),
            Mode::Weak,
        );
        assert_eq!(c.program(4), vec![OsString::from("./prog"), "x".into()]);
        // A program's work: p for weak scaling, 1 for strong, unless told.
        assert_eq!(c.work_ratio(4), 4.0);
        let strong = SweepOptions {
            mode: Mode::Strong,
            ..c.clone()
        };
        assert_eq!(strong.work_ratio(4), 1.0);
        let squared = SweepOptions {
            work_exponent: Some(2.0),
            ..strong
        };
        assert_eq!(squared.work_ratio(4), 16.0);
        assert!(squared.validate().is_ok());
        let bad = SweepOptions {
            work_exponent: Some(-1.0),
            ..squared.clone()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("--work-exponent")
        );
        let builtin = SweepOptions {
            workload: Workload::Sort,
            ..squared
        };
        assert!(
            builtin
                .validate()
                .unwrap_err()
                .to_string()
                .contains("your own program")
        );
    }

    #[test]
    fn bad_options_say_what_to_change() {
        let mut o = opts(Workload::Sort, Mode::Strong);
        o.ranks = vec![2, 4];
        assert!(o.validate().unwrap_err().to_string().contains("include 1"));
        o.ranks = vec![1, 0];
        assert!(o.validate().unwrap_err().to_string().contains("at least 1"));
        o.ranks = vec![1];
        o.repeat = 0;
        assert!(o.validate().unwrap_err().to_string().contains("--repeat"));
        assert!(
            Workload::parse("fft")
                .unwrap_err()
                .to_string()
                .contains("matmul, sort")
        );
    }

    #[test]
    fn rank_lists_and_ranges_parse() {
        assert_eq!(parse_ranks("1,2,4,8").unwrap(), vec![1, 2, 4, 8]);
        assert_eq!(parse_ranks("1..16").unwrap(), vec![1, 2, 4, 8, 16]);
        assert_eq!(parse_ranks("4, 1, 2, 2").unwrap(), vec![1, 2, 4]);
        for bad in ["", "a", "1,,x", "0..4", "8..2"] {
            assert!(parse_ranks(bad).is_err(), "{bad}");
        }
    }
}
