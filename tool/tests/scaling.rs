//! The scaling harness and the traces, end to end under `mpirun`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::jobs::{TIMEOUT, example, messages, run, tessera_cmd};
use serde_json::Value;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tessera-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

#[test]
fn a_strong_sweep_at_one_two_and_three_ranks_runs_end_to_end() {
    let out = scratch("sweep");
    // Threads per rank such that 1 and 2 ranks fit in the cores and 3 do
    // not (on any machine with 2 or more cores).
    let cores = tessera_cli::launch::physical_cores();
    let threads = (cores / 2).max(1);
    let t = threads.to_string();
    let o = out.to_string_lossy().into_owned();
    let job = tessera_cmd(
        &[
            "scaling",
            "--workload",
            "allreduce",
            "--ranks",
            "1,2,3",
            "--n",
            "400000",
            "--repeat",
            "2",
            "--threads",
            &t,
            "--out",
            &o,
        ],
        &[],
        Duration::from_secs(300),
    );
    job.assert_ok("tessera scaling");
    let stdout = job.stdout();
    assert!(stdout.contains("Amdahl: serial fraction f"), "{stdout}");
    assert!(stdout.contains("predicted (range"), "{stdout}");
    // The table explains its columns, and they add up.
    assert!(
        stdout.contains("columns (") && stdout.contains("other"),
        "{stdout}"
    );

    let json = read_json(&out.join("scaling.json"));
    let points = json["points"].as_array().unwrap();
    assert_eq!(points.len(), 3);
    for p in points {
        let ranks = p["ranks"].as_u64().unwrap() as usize;
        assert_eq!(
            p["oversubscribed"].as_bool().unwrap(),
            ranks * threads > cores,
            "{p}"
        );
        assert_eq!(p["runs"], 2);
        assert!(p["seconds"]["median"].as_f64().unwrap() > 0.0);
    }
    if cores >= 2 {
        assert_eq!(points[2]["oversubscribed"], true);
        assert!(stdout.contains("* oversubscribed"), "{stdout}");
        // The runs at 1 and 2 ranks are fitted, not the oversubscribed 3.
        assert_eq!(json["fit"]["observations"], 4);
    }
    // Speedup at 1 rank is 1 by definition of the median.
    assert!((points[0]["speedup"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    // Every run carries every rank's split, with real compute time.
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 6);
    for r in runs {
        let split = r["split"].as_array().unwrap();
        assert_eq!(split.len() as u64, r["ranks"].as_u64().unwrap());
        for s in split {
            assert!(s["compute"].as_f64().unwrap() > 0.0, "{s}");
            let parts: f64 = ["compute", "comm", "wait", "copy", "other"]
                .iter()
                .map(|k| s[*k].as_f64().unwrap())
                .sum();
            let elapsed = s["elapsed"].as_f64().unwrap();
            assert!(parts <= elapsed * 1.001 + 1e-6, "{s}");
        }
    }
    let csv = std::fs::read_to_string(out.join("scaling.csv")).unwrap();
    assert_eq!(csv.lines().count(), 7);
    let svg = std::fs::read_to_string(out.join("scaling.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(
        svg.contains("Amdahl fit"),
        "the fitted curve is not in the SVG"
    );
    assert!(svg.contains("oversubscribed") || cores < 2);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_weak_matmul_sweep_grows_n_with_the_cube_root_and_fits_gustafson() {
    let (stdout, json, out) = sweep_of(
        "weak",
        &[
            "--workload",
            "matmul",
            "--mode",
            "weak",
            "--ranks",
            "1,2",
            "--n",
            "192",
            "--repeat",
            "1",
        ],
        &[],
    );
    assert_eq!(json["mode"], "weak");
    assert_eq!(json["points"][0]["size"], 192);
    // 192 * 2^(1/3) = 241.9
    assert_eq!(json["points"][1]["size"], 242);
    assert_eq!(json["fit"]["model"], "gustafson");
    assert!(stdout.contains("Gustafson"));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_sort_sweep_runs_the_algorithm_and_type_it_is_given() {
    let (_, json, out) = sweep_of(
        "sort-merge",
        &[
            "--workload",
            "sort",
            "--algo",
            "merge",
            "--dtype",
            "f64",
            "--ranks",
            "1,2",
            "--n",
            "200000",
            "--repeat",
            "1",
        ],
        &[],
    );
    assert_eq!(json["workload"], "sort merge f64");
    // Merge sort merges at two ranks.
    let two = json["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ranks"] == 2)
        .expect("a run at two ranks");
    let merge = two["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[0] == "merge")
        .expect("a merge phase");
    assert!(merge[1].as_f64().unwrap() > 0.0, "{two}");
    std::fs::remove_dir_all(&out).unwrap();
}

/// Every number in `v`, recursively, with its path.
fn numbers(v: &Value, path: String, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| numbers(x, format!("{path}[{i}]"), out)),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| numbers(x, format!("{path}.{k}"), out)),
        _ => out.push((path, v.clone())),
    }
}

/// Checks that no point, fit or prediction of a sweep is missing or not
/// finite (serde writes NaN and infinities as null).
fn assert_all_finite(json: &Value) {
    for key in ["points", "fit"] {
        let mut all = Vec::new();
        numbers(&json[key], key.to_string(), &mut all);
        for (path, v) in all {
            // Absent, not infinite: no Karp-Flatt at one rank, no error
            // (nor range) from a single fitted run, no limit for Gustafson.
            let no_error = json["fit"]["std_error"].is_null();
            let optional = path.ends_with("karp_flatt")
                || path.ends_with("std_error")
                || path == "fit.limit"
                || (no_error && (path.ends_with(".low") || path.ends_with(".high")));
            assert!(
                v.is_number() || v.is_boolean() || v.is_string() || (optional && v.is_null()),
                "{path} = {v}"
            );
        }
    }
}

/// Runs `tessera scaling ARGS [-- PROGRAM...]` (a built-in workload where
/// `program` is empty) into a scratch directory and returns its standard
/// output, `scaling.json` and the directory.
fn sweep_of(name: &str, args: &[&str], program: &[&str]) -> (String, Value, PathBuf) {
    let out = scratch(name);
    let o = out.to_string_lossy().into_owned();
    let mut all = vec!["scaling", "--out", &o];
    all.extend_from_slice(args);
    if !program.is_empty() {
        all.push("--");
        all.extend_from_slice(program);
    }
    let job = tessera_cmd(&all, &[], Duration::from_secs(300));
    job.assert_ok(&format!("tessera {}", all.join(" ")));
    let json = read_json(&out.join("scaling.json"));
    assert_all_finite(&json);
    assert!(out.join("scaling.png").is_file(), "no PNG");
    (job.stdout(), json, out)
}

#[test]
fn a_strong_sweep_of_a_program_times_its_timed_section() {
    let sort = example("merge_sort");
    let (stdout, json, out) = sweep_of(
        "user-strong",
        &["--ranks", "1,2", "--repeat", "2"],
        &[&sort, "300000"],
    );
    assert!(
        stdout.contains("times: the program's tessera::timed sections"),
        "{stdout}"
    );
    // The work is the same at every rank count: speedup is T(1) / T(p).
    let points = json["points"].as_array().unwrap();
    let t1 = points[0]["seconds"]["median"].as_f64().unwrap();
    let t2 = points[1]["seconds"]["median"].as_f64().unwrap();
    assert!((points[1]["speedup"].as_f64().unwrap() - t1 / t2).abs() < 1e-9);
    for r in json["runs"].as_array().unwrap() {
        assert_eq!(r["source"], "timed");
        // The timed section leaves start-up out: far less than the run.
        let (secs, wall) = (
            r["seconds"].as_f64().unwrap(),
            r["wall_seconds"].as_f64().unwrap(),
        );
        assert!(secs > 0.0 && secs < 0.8 * wall, "{r}");
        assert_eq!(
            r["split"].as_array().unwrap().len() as u64,
            r["ranks"].as_u64().unwrap()
        );
    }
    assert!(json["startup"].as_array().unwrap().is_empty());
    let f = json["fit"]["serial_fraction"].as_f64().unwrap();
    assert!(f.is_finite());
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_weak_sweep_of_a_program_scales_the_speedup_by_the_ranks() {
    let allreduce = example("allreduce");
    let (stdout, json, out) = sweep_of(
        "user-weak",
        &["--mode", "weak", "--ranks", "1,2", "--repeat", "1"],
        &[&allreduce, "200000"],
    );
    assert!(stdout.contains("Gustafson"), "{stdout}");
    let points = json["points"].as_array().unwrap();
    let t1 = points[0]["seconds"]["median"].as_f64().unwrap();
    let t2 = points[1]["seconds"]["median"].as_f64().unwrap();
    // N per rank: the work at 2 ranks is twice one rank's.
    assert!((points[1]["speedup"].as_f64().unwrap() - 2.0 * t1 / t2).abs() < 1e-9);
    for r in json["runs"].as_array().unwrap() {
        assert_eq!(r["source"], "timed", "{r}");
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_program_without_a_timed_section_gets_its_start_up_measured() {
    let hello = example("hello_ranks");
    let (stdout, json, out) = sweep_of(
        "user-whole",
        &["--ranks", "1,2", "--repeat", "1"],
        &[&hello],
    );
    let startup = json["startup"].as_array().unwrap();
    assert_eq!(startup.len(), 2, "{json}");
    for s in startup {
        assert!(s["seconds"].as_f64().unwrap() > 0.0, "{s}");
    }
    for r in json["runs"].as_array().unwrap() {
        assert_eq!(r["source"], "whole-run");
    }
    // hello_ranks does next to nothing: its runs are all start-up, and the
    // report says so rather than fitting start-up as a serial fraction
    // without a word.
    assert!(
        stdout.contains("warning: the program marks no timed section"),
        "{stdout}"
    );
    assert!(stdout.contains("start-up"), "{stdout}");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn bad_sweeps_say_what_to_change() {
    for (args, needle) in [
        (vec!["scaling", "--ranks", "2,4"], "include 1"),
        (vec!["scaling", "--ranks", "1,x"], "--ranks"),
        (vec!["scaling", "--workload", "fft"], "unknown workload"),
        (vec!["scaling", "--repeat", "0"], "--repeat"),
        (
            vec!["scaling", "--workload", "allreduce", "--dtype", "f64"],
            "--dtype is for",
        ),
        (
            vec!["scaling", "--workload", "sort", "--dtype", "f16"],
            "use one of u32",
        ),
    ] {
        let job = tessera_cmd(&args, &[], TIMEOUT);
        assert_eq!(job.code(), Some(2), "{args:?}: {}", job.stderr());
        assert!(job.stderr().contains(needle), "{args:?}: {}", job.stderr());
        let stderr = job.stderr();
        assert_eq!(messages(&stderr).len(), 1, "{stderr}");
    }
}

/// The `X` events of one track, as (name, start, end) in microseconds.
fn track(events: &[Value], pid: u64) -> Vec<(String, f64, f64)> {
    events
        .iter()
        .filter(|e| e["ph"] == "X" && e["pid"] == pid)
        .map(|e| {
            let ts = e["ts"].as_f64().unwrap();
            (
                e["name"].as_str().unwrap().to_string(),
                ts,
                ts + e["dur"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// Checks that spans on one track nest (any two are disjoint or one holds
/// the other) and returns the deepest nesting.
fn nesting_depth(spans: &[(String, f64, f64)]) -> usize {
    // Float microseconds from integer nanoseconds: allow rounding.
    let eps = 1e-3;
    let mut sorted = spans.to_vec();
    sorted.sort_by(|a, b| a.1.total_cmp(&b.1).then(b.2.total_cmp(&a.2)));
    let mut stack: Vec<(String, f64, f64)> = Vec::new();
    let mut depth = 0;
    for s in sorted {
        while stack.last().is_some_and(|top| top.2 <= s.1 + eps) {
            stack.pop();
        }
        if let Some(top) = stack.last() {
            assert!(
                s.2 <= top.2 + eps,
                "span {s:?} overlaps {top:?} without nesting in it"
            );
        }
        stack.push(s);
        depth = depth.max(stack.len());
    }
    depth
}

#[test]
fn a_trace_has_one_track_per_rank_and_spans_that_nest() {
    let dir = scratch("trace");
    let path = dir.join("matmul.json");
    let p = path.to_string_lossy().into_owned();
    let job = run(
        3,
        &[
            "--trace", &p, "matmul", "--m", "300", "--k", "300", "--n", "300", "--repeat", "1",
        ],
        &[],
    );
    job.assert_ok("tessera run --trace matmul");
    assert!(
        job.stdout().contains("time split over ranks"),
        "{}",
        job.stdout()
    );
    let doc = read_json(&path);
    let events = doc["traceEvents"].as_array().unwrap();
    let mut pids: Vec<u64> = events.iter().map(|e| e["pid"].as_u64().unwrap()).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids, vec![0, 1, 2]);
    for pid in 0..3u64 {
        let name = events
            .iter()
            .find(|e| e["ph"] == "M" && e["name"] == "process_name" && e["pid"] == pid)
            .unwrap();
        assert!(
            name["args"]["name"]
                .as_str()
                .unwrap()
                .starts_with(&format!("rank {pid} "))
        );
        let spans = track(events, pid);
        let names: Vec<&str> = spans.iter().map(|s| s.0.as_str()).collect();
        assert!(names.contains(&"summa"), "{names:?}");
        assert!(names.contains(&"gemm"), "{names:?}");
        // summa > ibroadcast or all_reduce > check, at least.
        assert!(nesting_depth(&spans) >= 2, "rank {pid}: no nested spans");
    }
    // Collectives carry their bytes.
    assert!(
        events
            .iter()
            .any(|e| e["cat"] == "comm" && e["args"]["bytes"].as_u64().unwrap_or(0) > 0)
    );

    // The environment variable works for any Tessera program.
    let env_path = dir.join("allreduce.json");
    let ep = env_path.to_string_lossy().into_owned();
    let job = run(
        2,
        &[&example("allreduce"), "1000"],
        &[(tessera::env::TRACE, ep.as_str())],
    );
    job.assert_ok("allreduce example with TESSERA_TRACE");
    let doc = read_json(&env_path);
    let events = doc["traceEvents"].as_array().unwrap();
    for pid in 0..2u64 {
        let spans = track(events, pid);
        assert!(
            spans.iter().any(|s| s.0 == "all_reduce"),
            "rank {pid}: {spans:?}"
        );
        nesting_depth(&spans);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
