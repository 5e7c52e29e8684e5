//! From runs to points, fit, files and table.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::model::{self, Prediction, Spread};
use super::plot::{self, Chart, Curve, PlotPoint};
use super::{Mode, Run, SweepOptions, TimeSource, Workload};
use crate::{Error, Result};

/// The machine the sweep ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Host name.
    pub host: String,
    /// CPU model.
    pub cpu: String,
    /// Physical cores this process may use (Open MPI's slots).
    pub cores: usize,
    /// Hardware threads this process may use.
    pub logical_cpus: usize,
    /// Seconds since the Unix epoch when the analysis was made.
    pub unix_time: u64,
}

impl Machine {
    /// This machine.
    pub fn here() -> Machine {
        Machine {
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
            cpu: crate::info::cpu_model(),
            cores: crate::launch::physical_cores(),
            logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            unix_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

/// One rank count's measurements.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// Ranks.
    pub ranks: usize,
    /// Problem size.
    pub size: usize,
    /// Runs measured.
    pub runs: usize,
    /// Ranks times threads per rank, over the cores.
    pub ranks_per_core: f64,
    /// More ranks x threads than cores: marked, and not fitted unless asked.
    pub oversubscribed: bool,
    /// Median, spread of the timed section (seconds).
    pub seconds: Spread,
    /// Speedup over one rank from the medians (scaled speedup for weak
    /// scaling: times the work ratio).
    pub speedup: f64,
    /// Speedup of the slowest run.
    pub speedup_min: f64,
    /// Speedup of the fastest run.
    pub speedup_max: f64,
    /// Speedup / ranks.
    pub efficiency: f64,
    /// Karp-Flatt experimentally determined serial fraction (none at one
    /// rank).
    pub karp_flatt: Option<f64>,
    /// Seconds of computation per rank (mean over ranks, median over runs).
    pub compute: f64,
    /// Seconds of communication per rank, waiting excluded.
    pub comm: f64,
    /// Seconds waiting per rank.
    pub wait: f64,
    /// Seconds waiting on the rank that waited most (median over runs).
    pub wait_max: f64,
    /// Seconds in host-device copies per rank.
    pub copy: f64,
    /// The rest of the median time: `seconds.median - (compute + copy +
    /// comm + wait)` (work in no span, and the difference between the mean
    /// rank and the slowest), so that the columns add up. Zero without a
    /// split.
    pub other: f64,
    /// The workload's own phases (slowest rank, median over runs), where
    /// it reports them: the sort's local sort, exchange and merge.
    pub phases: Vec<(String, f64)>,
}

/// The start-up of jobs at one rank count (launch, MPI initialisation and
/// finalisation, exit), measured with empty jobs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Startup {
    /// Ranks.
    pub ranks: usize,
    /// Median seconds of an empty job.
    pub seconds: f64,
}

/// The fitted model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelFit {
    /// `amdahl` (strong scaling) or `gustafson` (weak).
    pub model: String,
    /// The serial fraction (Amdahl's f or Gustafson's alpha).
    pub serial_fraction: f64,
    /// Its standard error (none with too few runs). Amdahl's comes from a
    /// fit of every run's time, so it counts the noise at one rank too;
    /// Gustafson's is fitted to scaled speedups over the median one-rank
    /// time, whose own error it does not count (it can be up to about two
    /// times too small when one-rank runs are as noisy as the others).
    pub std_error: Option<f64>,
    /// Runs fitted (Amdahl: every run fitted, one rank included; Gustafson:
    /// the runs at more than one rank).
    pub observations: usize,
    /// Root-mean-square residual, in speedup.
    pub rms_residual: f64,
    /// Whether oversubscribed points were fitted.
    pub includes_oversubscribed: bool,
    /// What the model predicts at 2x and 10x the largest rank count.
    pub predictions: Vec<Prediction>,
    /// Amdahl's limit 1/f for any number of ranks (none for f <= 0, where
    /// there is no limit, and for Gustafson;
    /// none for Gustafson).
    pub limit: Option<f64>,
}

/// Everything a sweep found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// The workload's name.
    pub workload: String,
    /// Strong or weak.
    pub mode: Mode,
    /// Problem size at one rank.
    pub n: usize,
    /// Threads per rank.
    pub threads_per_rank: usize,
    /// Runs per rank count.
    pub repeat: usize,
    /// Device asked for.
    pub device: String,
    /// The machine.
    pub machine: Machine,
    /// One per rank count, in increasing order.
    pub points: Vec<Point>,
    /// The fit (none when no run at more than one rank can be fitted).
    pub fit: Option<ModelFit>,
    /// What the times measure, in words.
    pub timing: String,
    /// The start-up of an empty job at each rank count (measured only for
    /// a program timed as whole runs).
    pub startup: Vec<Startup>,
    /// What the reader should be wary of: few rank counts in the fit,
    /// noisy points, start-up in the times.
    pub warnings: Vec<String>,
    /// Every run.
    pub runs: Vec<Run>,
}

/// The largest spread of a point's times, relative to their median, before
/// it is worth a warning.
const NOISY_SPREAD: f64 = 0.10;

fn mean_of(
    split: &[tessera::trace::RankSplit],
    part: impl Fn(&tessera::trace::RankSplit) -> f64,
) -> f64 {
    if split.is_empty() {
        0.0
    } else {
        split.iter().map(part).sum::<f64>() / split.len() as f64
    }
}

/// Turns runs into points and fits the model. `startup` is the start-up
/// of empty jobs at each rank count, measured for a program timed as whole
/// runs: it is subtracted from those runs' times where it leaves a time to
/// measure (else the times stay whole, with a warning).
pub fn analyse(
    opts: &SweepOptions,
    machine: Machine,
    mut runs: Vec<Run>,
    startup: Vec<Startup>,
) -> Result<Analysis> {
    let mut warnings = Vec::new();
    let whole = runs.iter().any(|r| r.source == TimeSource::WholeRun);
    let startup_at = |p: usize| startup.iter().find(|s| s.ranks == p).map(|s| s.seconds);
    let timing = match (&opts.workload, whole) {
        (Workload::Command(_), false) => {
            "the program's tessera::timed sections (slowest rank)".to_string()
        }
        (Workload::Command(_), true) => {
            // Subtract only where at least a tenth of every run is left.
            let left = |r: &Run| startup_at(r.ranks).map(|s| r.wall_seconds - s);
            let subtractable = runs
                .iter()
                .all(|r| left(r).is_some_and(|t| t >= 0.1 * r.wall_seconds));
            let shown: Vec<String> = startup
                .iter()
                .map(|s| format!("{:.3} s at {}", s.seconds, s.ranks))
                .collect();
            if subtractable {
                for r in &mut runs {
                    if let Some(t) = left(r) {
                        r.seconds = t;
                    }
                }
                warnings.push(format!(
                    "the program marks no timed section, so whole runs were timed and the start-up of an empty job ({}) subtracted; mark the part to time with tessera::timed for times without launch noise",
                    shown.join(", ")
                ));
                "whole runs less the start-up of an empty job".to_string()
            } else {
                warnings.push(format!(
                    "the program marks no timed section, and the start-up of an empty job ({}) is most of each run: these times and the fit mostly measure start-up; mark the part to time with tessera::timed, or give the program more work",
                    shown.join(", ")
                ));
                "whole runs, start-up included".to_string()
            }
        }
        _ => "the workload's timed section (slowest rank)".to_string(),
    };
    let mut ranks: Vec<usize> = runs.iter().map(|r| r.ranks).collect();
    ranks.sort_unstable();
    ranks.dedup();
    let runs_at = |p: usize| -> Vec<&Run> { runs.iter().filter(|r| r.ranks == p).collect() };
    let seconds_of = |at: &[&Run]| -> Vec<f64> { at.iter().map(|r| r.seconds).collect() };
    let t1 = model::median(&seconds_of(&runs_at(1)));
    if !(t1.is_finite() && t1 > 0.0) {
        return Err(Error::Usage(
            "no usable run at one rank: speedups need a time at 1 rank (include 1 in --ranks)"
                .into(),
        ));
    }
    let cores = machine.cores.max(1);
    let mut points = Vec::new();
    // The fitted runs, as (ranks, seconds).
    let mut timings = Vec::new();
    for &p in &ranks {
        let at = runs_at(p);
        let secs = seconds_of(&at);
        let seconds = model::spread(&secs);
        let work = opts.work_ratio(p);
        let speedup = work * t1 / seconds.median;
        let used = p * opts.threads;
        let oversubscribed = used > cores;
        if !oversubscribed || opts.include_oversubscribed {
            timings.extend(secs.iter().map(|&t| (p as f64, t)));
        }
        let median_of = |part: &dyn Fn(&Run) -> f64| {
            model::median(&at.iter().map(|r| part(r)).collect::<Vec<_>>())
        };
        points.push(Point {
            ranks: p,
            size: opts.size_at(p),
            runs: at.len(),
            ranks_per_core: used as f64 / cores as f64,
            oversubscribed,
            seconds,
            speedup,
            speedup_min: work * t1 / seconds.max,
            speedup_max: work * t1 / seconds.min,
            efficiency: speedup / p as f64,
            karp_flatt: model::karp_flatt(speedup, p as f64),
            compute: median_of(&|r| mean_of(&r.split, |s| s.compute)),
            comm: median_of(&|r| mean_of(&r.split, |s| s.comm)),
            wait: median_of(&|r| mean_of(&r.split, |s| s.wait)),
            wait_max: median_of(&|r| tessera::trace::slowest(&r.split, |s| s.wait)),
            copy: median_of(&|r| mean_of(&r.split, |s| s.copy)),
            other: 0.0,
            phases: at
                .first()
                .map(|r| {
                    r.phases
                        .iter()
                        .enumerate()
                        .map(|(i, (name, _))| {
                            let at_i = |r: &Run| r.phases.get(i).map_or(0.0, |x| x.1);
                            (name.clone(), median_of(&at_i))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        });
        if let Some(point) = points.last_mut() {
            if at.iter().any(|r| !r.split.is_empty()) {
                point.other = (point.seconds.median
                    - (point.compute + point.copy + point.comm + point.wait))
                    .max(0.0);
            }
            if point.seconds.relative > NOISY_SPREAD && point.runs > 1 {
                warnings.push(format!(
                    "the times at {p} rank{} spread over {:.0}% of their median: the speedups there are uncertain; use more --repeat, more work, or a quieter machine",
                    if p == 1 { "" } else { "s" },
                    point.seconds.relative * 100.0
                ));
            }
        }
    }
    let largest = *ranks.last().unwrap_or(&1) as f64;
    let model_fit = |model: &str,
                     f: model::Fit,
                     predict: fn(&model::Fit, f64) -> Prediction,
                     limit: Option<f64>| ModelFit {
        model: model.into(),
        serial_fraction: f.value,
        std_error: f.std_error,
        observations: f.observations,
        rms_residual: f.rms_residual,
        includes_oversubscribed: opts.include_oversubscribed,
        predictions: [2.0, 10.0]
            .iter()
            .map(|m| predict(&f, m * largest))
            .collect(),
        limit,
    };
    let mut fitted_ranks: Vec<usize> = timings.iter().map(|&(p, _)| p as usize).collect();
    fitted_ranks.dedup();
    let fit = match opts.mode {
        Mode::Strong => model::fit_amdahl_times(&timings).map(|f| {
            model_fit(
                "amdahl",
                f,
                model::predict_amdahl,
                Some(model::amdahl_limit(f.value)).filter(|l| l.is_finite()),
            )
        }),
        Mode::Weak => {
            let scaled: Vec<(f64, f64)> = timings
                .iter()
                .map(|&(p, t)| (p, opts.work_ratio(p as usize) * t1 / t))
                .collect();
            model::fit_gustafson(&scaled)
                .map(|f| model_fit("gustafson", f, model::predict_gustafson, None))
        }
    };
    if let Some(f) = &fit {
        if fitted_ranks.len() < 3 {
            warnings.push(format!(
                "the fit rests on {} rank counts ({}): two points fix any curve through them, so the serial fraction and the predictions are weakly determined; measure at least three (--ranks 1,2,4)",
                fitted_ranks.len(),
                fitted_ranks
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let far: Vec<String> = f
            .predictions
            .iter()
            .filter(|p| p.ranks > 4.0 * largest)
            .map(|p| format!("S({})", p.ranks))
            .collect();
        if !far.is_empty() {
            warnings.push(format!(
                "{} lies more than 4x beyond the largest measured rank count ({largest}): an extrapolation of the model, not a measurement",
                far.join(", ")
            ));
        }
    }
    Ok(Analysis {
        workload: opts.label(),
        mode: opts.mode,
        n: opts.n,
        threads_per_rank: opts.threads,
        repeat: opts.repeat,
        device: opts.device.clone(),
        machine,
        points,
        fit,
        timing,
        startup,
        warnings,
        runs,
    })
}

/// The columns of `scaling.csv`.
pub const CSV_HEADER: &str = "workload,mode,ranks,threads_per_rank,ranks_per_core,oversubscribed,size,repeat,seconds,wall_seconds,compute_mean,comm_mean,wait_mean,copy_mean,other_mean,compute_max,comm_max,wait_max,bytes";

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `scaling.csv`: one row per run.
pub fn write_csv(a: &Analysis, path: &Path) -> Result<()> {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    let cores = a.machine.cores.max(1);
    for r in &a.runs {
        let used = r.ranks * a.threads_per_rank;
        let s = &r.split;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{:e},{:e},{:e},{:e},{:e},{:e},{:e},{:e},{:e},{:e},{}",
            csv_field(&a.workload),
            match a.mode {
                Mode::Strong => "strong",
                Mode::Weak => "weak",
            },
            r.ranks,
            a.threads_per_rank,
            used as f64 / cores as f64,
            used > cores,
            r.size,
            r.repeat,
            r.seconds,
            r.wall_seconds,
            mean_of(s, |x| x.compute),
            mean_of(s, |x| x.comm),
            mean_of(s, |x| x.wait),
            mean_of(s, |x| x.copy),
            mean_of(s, |x| x.other),
            tessera::trace::slowest(s, |x| x.compute),
            tessera::trace::slowest(s, |x| x.comm),
            tessera::trace::slowest(s, |x| x.wait),
            s.iter().map(|x| x.bytes).sum::<u64>(),
        );
    }
    std::fs::write(path, out)
        .map_err(|e| tessera::Error::io(format!("writing {}", path.display()), e).into())
}

/// `scaling.json`: the whole analysis.
pub fn write_json(a: &Analysis, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(a).map_err(|e| tessera::Error::Trace(e.to_string()))?;
    std::fs::write(path, text)
        .map_err(|e| tessera::Error::io(format!("writing {}", path.display()), e).into())
}

/// The chart of an analysis.
pub fn chart(a: &Analysis) -> Chart {
    let largest = a.points.last().map_or(1, |p| p.ranks) as f64;
    let model = a.fit.as_ref().map(|f| {
        let samples = 96;
        let top = (2.0 * largest).max(2.0);
        let points = (0..=samples)
            .map(|i| {
                let p = top.powf(i as f64 / samples as f64);
                let s = if f.model == "amdahl" {
                    model::amdahl_speedup(f.serial_fraction, p)
                } else {
                    model::gustafson_speedup(f.serial_fraction, p)
                };
                (p, s)
            })
            .collect();
        let se = f.std_error.map_or(String::new(), |e| format!(" ± {e:.3}"));
        Curve {
            label: if f.model == "amdahl" {
                format!("Amdahl fit, f = {:.3}{se}", f.serial_fraction)
            } else {
                format!("Gustafson fit, alpha = {:.3}{se}", f.serial_fraction)
            },
            points,
        }
    });
    Chart {
        title: format!(
            "{}, {} scaling, {} ({}, {} thread{} per rank)",
            a.workload,
            match a.mode {
                Mode::Strong => "strong",
                Mode::Weak => "weak",
            },
            problem(a),
            a.device,
            a.threads_per_rank,
            if a.threads_per_rank == 1 { "" } else { "s" }
        ),
        speedup_label: match a.mode {
            Mode::Strong => "speedup".into(),
            Mode::Weak => "scaled speedup".into(),
        },
        points: a
            .points
            .iter()
            .map(|p| PlotPoint {
                ranks: p.ranks as f64,
                speedup: p.speedup,
                speedup_min: p.speedup_min,
                speedup_max: p.speedup_max,
                efficiency: p.efficiency,
                oversubscribed: p.oversubscribed,
            })
            .collect(),
        model,
    }
}

/// Writes `scaling.csv`, `scaling.json`, `scaling.svg` and `scaling.png`
/// into `dir`, creating it; returns the files written and, when
/// `TESSERA_FONT` could not be used for the PNG, a note saying so.
pub fn write_outputs(a: &Analysis, dir: &Path) -> Result<(Vec<PathBuf>, Option<String>)> {
    std::fs::create_dir_all(dir).map_err(|e| {
        tessera::Error::io(
            format!("creating the output directory {}", dir.display()),
            e,
        )
    })?;
    let [csv, json, svg, png] = super::output_paths(dir);
    write_csv(a, &csv)?;
    write_json(a, &json)?;
    let c = chart(a);
    let plot_error = |e: String| Error::Usage(format!("drawing the scaling chart: {e}"));
    plot::write_svg(&c, &svg).map_err(plot_error)?;
    let mut written = vec![csv, json, svg];
    let note = plot::write_png(&c, &png).map_err(plot_error)?;
    written.push(png);
    Ok((written, note))
}

/// The problem's description in titles: `n = N at 1 rank`, or the
/// program's own for a user's program.
fn problem(a: &Analysis) -> String {
    if a.n == 0 {
        "your program's own problem".to_string()
    } else {
        format!("n = {} at 1 rank", a.n)
    }
}

/// The unit of a table's times: the largest that shows `largest` as at
/// least 1, with its name and its size in seconds.
fn time_unit(largest: f64) -> (&'static str, f64) {
    if largest >= 1.0 {
        ("s", 1.0)
    } else if largest >= 1e-3 {
        ("ms", 1e-3)
    } else {
        ("us", 1e-6)
    }
}

/// The table `tessera scaling` prints at the end: a title, what the times
/// measure, the points, a legend of the columns, the fit and its
/// predictions, and warnings.
pub fn render_table(a: &Analysis) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} scaling of {} ({}, {} run{} per point, {} thread{} per rank) on {} ({} cores)",
        match a.mode {
            Mode::Strong => "strong",
            Mode::Weak => "weak",
        },
        a.workload,
        problem(a),
        a.repeat,
        if a.repeat == 1 { "" } else { "s" },
        a.threads_per_rank,
        if a.threads_per_rank == 1 { "" } else { "s" },
        a.machine.host,
        a.machine.cores
    );
    let _ = writeln!(out, "times: {}", a.timing);
    let speedup = match a.mode {
        Mode::Strong => "speedup",
        Mode::Weak => "scaled",
    };
    let largest = a
        .points
        .iter()
        .map(|p| p.seconds.median)
        .fold(0.0, f64::max);
    let (unit, scale) = time_unit(largest);
    let _ = writeln!(
        out,
        "{:>6} {:>9} {:>10} {:>11} {:>7} {:>8} {:>6} {:>7} {:>10} {:>10} {:>10} {:>10}",
        "ranks",
        "per core",
        "size",
        format!("median {unit}"),
        "spread",
        speedup,
        "eff",
        "K-F e",
        "compute",
        "comm",
        "wait",
        "other"
    );
    let has_split = a.runs.iter().any(|r| !r.split.is_empty());
    for p in &a.points {
        let part = |x: f64| {
            if has_split {
                format!("{:.3}", x / scale)
            } else {
                "-".into()
            }
        };
        let _ = writeln!(
            out,
            "{:>6} {:>8.2}{} {:>10} {:>11} {:>6.1}% {:>8.2} {:>6.2} {:>7} {:>10} {:>10} {:>10} {:>10}",
            p.ranks,
            p.ranks_per_core,
            if p.oversubscribed { "*" } else { " " },
            if a.n == 0 {
                "-".to_string()
            } else {
                p.size.to_string()
            },
            format!("{:.3}", p.seconds.median / scale),
            p.seconds.relative * 100.0,
            p.speedup,
            p.efficiency,
            p.karp_flatt.map_or("-".into(), |e| format!("{e:.3}")),
            part(p.compute + p.copy),
            part(p.comm),
            part(p.wait),
            part(p.other),
        );
    }
    let _ = writeln!(
        out,
        "columns ({unit}): per core = ranks x threads / cores; median = median time of the runs; spread = (slowest - fastest) / median; {}; eff = {speedup} / ranks; K-F e = Karp-Flatt serial fraction (1/S - 1/p) / (1 - 1/p), steady when the serial part explains the loss; compute + comm + wait + other = median, per rank (mean): local work and host-device copies, moving data, waiting for other ranks, the rest{}",
        match a.mode {
            Mode::Strong => "speedup = T(1) / T(p)",
            Mode::Weak => "scaled = work(p) / work(1) x T(1) / T(p), the work done per unit time",
        },
        if has_split {
            ""
        } else {
            " (no split: the program was timed from outside)"
        }
    );
    if let Some(names) = a
        .points
        .iter()
        .find(|p| !p.phases.is_empty())
        .map(|p| p.phases.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>())
    {
        // The workload's own split: where the next bottleneck is.
        let _ = write!(
            out,
            "phases ({unit}, slowest rank, median of runs):\n{:>6}",
            "ranks"
        );
        for n in &names {
            let _ = write!(out, " {n:>11}");
        }
        let _ = writeln!(out);
        for p in &a.points {
            let _ = write!(out, "{:>6}", p.ranks);
            for (_, x) in &p.phases {
                let _ = write!(out, " {:>11.3}", x / scale);
            }
            let _ = writeln!(out);
        }
    }
    if a.points.iter().any(|p| p.oversubscribed) {
        let _ = writeln!(
            out,
            "* oversubscribed (more ranks x threads than cores): {}",
            if a.fit.as_ref().is_some_and(|f| f.includes_oversubscribed) {
                "fitted (--include-oversubscribed)"
            } else {
                "not fitted"
            }
        );
    }
    match &a.fit {
        None => {
            let _ = writeln!(
                out,
                "no fit: measure at least one rank count above 1 that is not oversubscribed"
            );
        }
        Some(f) => {
            let se = f
                .std_error
                .map_or(" (no uncertainty: one run fitted)".into(), |e| {
                    format!(" ± {e:.4}")
                });
            let name = if f.model == "amdahl" {
                "Amdahl: serial fraction f"
            } else {
                "Gustafson: serial fraction alpha"
            };
            let _ = writeln!(
                out,
                "{name} = {:.4}{se} (least squares over {} runs, rms residual {:.3})",
                f.serial_fraction, f.observations, f.rms_residual
            );
            let preds: Vec<String> = f
                .predictions
                .iter()
                .map(|p| match (p.low, p.high) {
                    (Some(lo), Some(hi)) => {
                        format!("S({}) = {:.2} [{:.2}, {:.2}]", p.ranks, p.speedup, lo, hi)
                    }
                    _ => format!("S({}) = {:.2}", p.ranks, p.speedup),
                })
                .collect();
            let _ = write!(
                out,
                "predicted (range: the fit's parameter ± its error): {}",
                preds.join(", ")
            );
            match f.limit {
                Some(limit) => {
                    let _ = write!(out, "; limit 1/f = {limit:.2} for any number of ranks");
                }
                None if f.model == "amdahl" => {
                    let _ = write!(out, "; no limit (f <= 0: no serial part measured)");
                }
                None => {}
            }
            out.push('\n');
            if f.model == "gustafson" && f.serial_fraction > 1.0 {
                let _ = writeln!(
                    out,
                    "alpha > 1: the scaled speedup falls below 1, so the work per rank grows with the ranks (or the ranks slow each other down); Gustafson's law does not describe this run"
                );
            }
        }
    }
    for w in &a.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scaling::Workload;
    use tessera::trace::RankSplit;

    fn machine(cores: usize) -> Machine {
        Machine {
            host: "test".into(),
            cpu: "cpu".into(),
            cores,
            logical_cpus: cores,
            unix_time: 0,
        }
    }

    fn opts(mode: Mode) -> SweepOptions {
        SweepOptions {
            workload: Workload::Sort,
            ranks: vec![1, 2, 4, 8],
            mode,
            n: 1000,
            algo: None,
            dtype: None,
            repeat: 2,
            threads: 1,
            device: "cpu".into(),
            include_oversubscribed: false,
            out: PathBuf::from("."),
            work_exponent: None,
        }
    }

    /// Runs timed exactly as Amdahl's law with serial fraction `f`.
    fn amdahl_runs(f: f64, ranks: &[usize]) -> Vec<Run> {
        ranks
            .iter()
            .flat_map(|&p| {
                (0..2).map(move |r| Run {
                    phases: Vec::new(),
                    ranks: p,
                    repeat: r,
                    size: 1000,
                    seconds: 2.0 * (f + (1.0 - f) / p as f64) * (1.0 + 0.01 * r as f64),
                    source: TimeSource::Workload,
                    wall_seconds: 3.0,
                    split: vec![
                        RankSplit {
                            rank: 0,
                            compute: 1.0,
                            wait: 0.5,
                            ..RankSplit::default()
                        },
                        RankSplit {
                            rank: 1,
                            compute: 3.0,
                            wait: 0.1,
                            ..RankSplit::default()
                        },
                    ],
                })
            })
            .collect()
    }

    #[test]
    fn points_carry_speedup_efficiency_and_karp_flatt() {
        let a = analyse(
            &opts(Mode::Strong),
            machine(16),
            amdahl_runs(0.1, &[1, 2, 4, 8]),
            vec![],
        )
        .unwrap();
        assert_eq!(a.points.len(), 4);
        let p4 = &a.points[2];
        // Both repeats scale by the same factor, so the median ratio is exact.
        let s = 1.0 / (0.1 + 0.9 / 4.0);
        assert!((p4.speedup - s).abs() < 1e-9, "{}", p4.speedup);
        assert!((p4.efficiency - s / 4.0).abs() < 1e-9);
        assert!((p4.karp_flatt.unwrap() - 0.1).abs() < 1e-9);
        assert!(a.points[0].karp_flatt.is_none());
        assert!(p4.speedup_min < p4.speedup && p4.speedup < p4.speedup_max);
        assert!((p4.compute - 2.0).abs() < 1e-12);
        assert!((p4.wait_max - 0.5).abs() < 1e-12);
        let fit = a.fit.unwrap();
        assert_eq!(fit.model, "amdahl");
        assert!((fit.serial_fraction - 0.1).abs() < 0.01, "{fit:?}");
        assert_eq!(fit.predictions[0].ranks, 16.0);
        assert_eq!(fit.predictions[1].ranks, 80.0);
        assert!((fit.limit.unwrap() - 1.0 / fit.serial_fraction).abs() < 1e-9);
    }

    #[test]
    fn oversubscribed_points_are_marked_and_not_fitted_unless_asked() {
        // f = 0.1 up to 4 ranks on 4 cores; the 8-rank point is far off.
        let mut runs = amdahl_runs(0.1, &[1, 2, 4]);
        for r in 0..2 {
            runs.push(Run {
                phases: Vec::new(),
                ranks: 8,
                repeat: r,
                size: 1000,
                seconds: 5.0,
                source: TimeSource::Workload,
                wall_seconds: 6.0,
                split: vec![],
            });
        }
        let a = analyse(&opts(Mode::Strong), machine(4), runs.clone(), vec![]).unwrap();
        assert!(a.points[3].oversubscribed && !a.points[2].oversubscribed);
        assert_eq!(a.points[3].ranks_per_core, 2.0);
        let fit = a.fit.as_ref().unwrap();
        assert_eq!(fit.observations, 6);
        assert!((fit.serial_fraction - 0.1).abs() < 0.01);
        assert!(render_table(&a).contains("* oversubscribed"));
        let mut with = opts(Mode::Strong);
        with.include_oversubscribed = true;
        let b = analyse(&with, machine(4), runs, vec![]).unwrap();
        let fit = b.fit.unwrap();
        assert_eq!(fit.observations, 8);
        assert!(fit.serial_fraction > 0.15, "{fit:?}");
    }

    #[test]
    fn weak_scaling_fits_gustafson_on_the_scaled_speedup() {
        // Scaled speedup S = p - alpha (p - 1) = work * T1 / T(p) with the
        // work p times one rank's, so T(p) = p T1 / S.
        let alpha = 0.2;
        let runs: Vec<Run> = [1usize, 2, 4, 8]
            .iter()
            .map(|&p| Run {
                phases: Vec::new(),
                ranks: p,
                repeat: 0,
                size: 1000 * p,
                seconds: p as f64 * 1.5 / (p as f64 - alpha * (p as f64 - 1.0)),
                source: TimeSource::Workload,
                wall_seconds: 2.0,
                split: vec![],
            })
            .collect();
        let a = analyse(&opts(Mode::Weak), machine(16), runs, vec![]).unwrap();
        let fit = a.fit.clone().unwrap();
        assert_eq!(fit.model, "gustafson");
        assert!((fit.serial_fraction - alpha).abs() < 1e-9, "{fit:?}");
        assert!(fit.limit.is_none());
        assert!(!render_table(&a).contains("alpha > 1"));
        assert!((a.points[3].speedup - (8.0 - alpha * 7.0)).abs() < 1e-9);
    }

    #[test]
    fn csv_and_json_agree() {
        let a = analyse(
            &opts(Mode::Strong),
            machine(4),
            amdahl_runs(0.05, &[1, 2, 4, 8]),
            vec![],
        )
        .unwrap();
        let dir = std::env::temp_dir().join(format!("tessera-scaling-{}", std::process::id()));
        let (files, _) = write_outputs(&a, &dir).unwrap();
        assert!(files.len() >= 3);
        let csv = std::fs::read_to_string(dir.join("scaling.csv")).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("scaling.json")).unwrap())
                .unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        let runs = json["runs"].as_array().unwrap();
        assert_eq!(rows.len(), runs.len());
        assert_eq!(rows.len(), 8);
        for (row, run) in rows.iter().zip(runs) {
            assert_eq!(
                row[col("ranks")].parse::<u64>().unwrap(),
                run["ranks"].as_u64().unwrap()
            );
            let secs: f64 = row[col("seconds")].parse().unwrap();
            assert_eq!(secs, run["seconds"].as_f64().unwrap());
            let over = row[col("oversubscribed")] == "true";
            let point = json["points"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["ranks"] == run["ranks"])
                .unwrap();
            assert_eq!(over, point["oversubscribed"].as_bool().unwrap());
            let compute: f64 = row[col("compute_mean")].parse().unwrap();
            assert!((compute - 2.0).abs() < 1e-12);
        }
        assert_eq!(json["fit"]["model"], "amdahl");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A run at `p` ranks of `seconds`, `source`, split evenly as 60%
    /// compute, 10% comm and 10% wait on every rank (with a split).
    fn run(p: usize, repeat: usize, seconds: f64, source: TimeSource, split: bool) -> Run {
        Run {
            phases: Vec::new(),
            ranks: p,
            repeat,
            size: 1000,
            seconds,
            source,
            wall_seconds: seconds,
            split: if split {
                (0..p)
                    .map(|rank| RankSplit {
                        rank,
                        elapsed: seconds,
                        compute: 0.6 * seconds,
                        comm: 0.1 * seconds,
                        wait: 0.1 * seconds,
                        other: 0.2 * seconds,
                        ..RankSplit::default()
                    })
                    .collect()
            } else {
                vec![]
            },
        }
    }

    #[test]
    fn the_workloads_phases_get_a_table_of_medians() {
        // The sort reports its local sort, exchange and merge: the medians
        // over runs come out per rank count.
        let with = |p: usize, repeat: usize, phases: [f64; 3]| {
            let mut r = run(p, repeat, phases.iter().sum(), TimeSource::Workload, true);
            r.phases = ["local sort", "exchange", "merge"]
                .iter()
                .zip(phases)
                .map(|(n, x)| (n.to_string(), x))
                .collect();
            r
        };
        let runs = vec![
            with(1, 0, [1.0, 0.0, 0.0]),
            with(1, 1, [1.2, 0.0, 0.0]),
            with(1, 2, [1.1, 0.0, 0.0]),
            with(2, 0, [0.5, 0.1, 0.2]),
            with(2, 1, [0.6, 0.3, 0.2]),
            with(2, 2, [0.7, 0.2, 0.4]),
        ];
        let a = analyse(&opts(Mode::Strong), machine(16), runs, vec![]).unwrap();
        let two = &a.points[1];
        let names: Vec<&str> = two.phases.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["local sort", "exchange", "merge"]);
        let medians: Vec<f64> = two.phases.iter().map(|x| x.1).collect();
        for (got, want) in medians.iter().zip([0.6, 0.2, 0.2]) {
            assert!((got - want).abs() < 1e-12, "{medians:?}");
        }
        let table = render_table(&a);
        assert!(
            table.contains("phases (s, slowest rank, median of runs)"),
            "{table}"
        );
        assert!(
            table.contains("local sort") && table.contains("0.600"),
            "{table}"
        );
        // Without phases, no such table.
        let plain = analyse(
            &opts(Mode::Strong),
            machine(16),
            vec![
                run(1, 0, 1.0, TimeSource::Workload, true),
                run(2, 0, 0.6, TimeSource::Workload, true),
            ],
            vec![],
        )
        .unwrap();
        assert!(!render_table(&plain).contains("phases ("));
    }

    #[test]
    fn the_table_adds_up_explains_its_columns_and_warns() {
        // Two rank counts, the one-rank runs 50% apart.
        let runs = vec![
            run(1, 0, 1.0, TimeSource::Workload, true),
            run(1, 1, 1.5, TimeSource::Workload, true),
            run(2, 0, 0.7, TimeSource::Workload, true),
            run(2, 1, 0.71, TimeSource::Workload, true),
        ];
        let a = analyse(&opts(Mode::Strong), machine(16), runs, vec![]).unwrap();
        for p in &a.points {
            let sum = p.compute + p.copy + p.comm + p.wait + p.other;
            assert!((sum - p.seconds.median).abs() < 1e-9, "{p:?}");
            assert!(p.other > 0.0);
        }
        let table = render_table(&a);
        assert!(
            table.contains("other") && table.contains("columns (s)"),
            "{table}"
        );
        assert!(table.contains("K-F e = Karp-Flatt"), "{table}");
        assert!(
            table.contains("spread = (slowest - fastest) / median"),
            "{table}"
        );
        let warned = |needle: &str| a.warnings.iter().any(|w| w.contains(needle));
        assert!(warned("at 1 rank spread over 40%"), "{:?}", a.warnings);
        assert!(!warned("at 2 ranks spread"), "{:?}", a.warnings);
        assert!(
            warned("the fit rests on 2 rank counts (1, 2)"),
            "{:?}",
            a.warnings
        );
        assert!(warned("S(20) lies more than 4x beyond"), "{:?}", a.warnings);
        assert!(
            table.contains("warning: the fit rests on 2 rank counts"),
            "{table}"
        );
        // Four rank counts, quiet: no warning but the far prediction's.
        let b = analyse(
            &opts(Mode::Strong),
            machine(16),
            amdahl_runs(0.1, &[1, 2, 4, 8]),
            vec![],
        )
        .unwrap();
        assert_eq!(b.warnings.len(), 1, "{:?}", b.warnings);
        assert!(b.warnings[0].contains("S(80)"));
    }

    #[test]
    fn a_programs_whole_runs_lose_their_start_up_where_it_leaves_a_time() {
        let program = SweepOptions {
            workload: Workload::Command(vec!["./prog".into()]),
            n: 0,
            ..opts(Mode::Strong)
        };
        let runs = vec![
            run(1, 0, 1.3, TimeSource::WholeRun, false),
            run(2, 0, 0.8, TimeSource::WholeRun, false),
        ];
        let startup = vec![
            Startup {
                ranks: 1,
                seconds: 0.3,
            },
            Startup {
                ranks: 2,
                seconds: 0.3,
            },
        ];
        let a = analyse(&program, machine(16), runs.clone(), startup).unwrap();
        assert_eq!(a.timing, "whole runs less the start-up of an empty job");
        assert!((a.points[0].seconds.median - 1.0).abs() < 1e-12);
        assert!((a.points[1].speedup - 2.0).abs() < 1e-12);
        assert!(a.warnings[0].contains("0.300 s at 1"), "{:?}", a.warnings);
        let table = render_table(&a);
        assert!(table.contains("your program's own problem"), "{table}");
        assert!(!table.contains("NaN"), "{table}");
        // Start-up as long as the runs: kept whole, and said.
        let slow = vec![
            Startup {
                ranks: 1,
                seconds: 1.25,
            },
            Startup {
                ranks: 2,
                seconds: 0.78,
            },
        ];
        let b = analyse(&program, machine(16), runs, slow).unwrap();
        assert_eq!(b.timing, "whole runs, start-up included");
        assert!((b.points[0].seconds.median - 1.3).abs() < 1e-12);
        assert!(
            b.warnings[0].contains("mostly measure start-up"),
            "{:?}",
            b.warnings
        );
    }

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
