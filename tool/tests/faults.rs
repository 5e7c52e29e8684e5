//! Faults end the job fast and clearly: a rank killed by SIGKILL inside an
//! all-reduce, a rank that panics, and a rank that returns an error while
//! the others wait in a collective. Each job must end within
//! [`FAULT_BOUND`] with a non-zero status and one message naming the rank
//! and its host, and leave no process behind.
//!
//! The bound is the outer timeout: a job that takes longer is a hang, and
//! fails the test. (A lost host is tested in `scripts/multihost-test.sh`,
//! which needs network namespaces.)

mod common;

use std::time::Duration;

use common::jobs::{example, left_behind, messages, mpirun_cmd, tessera_cmd, unique_tag};

/// How long a failed job may take to end, start-up included.
const FAULT_BOUND: Duration = Duration::from_secs(15);

struct Fault {
    code: Option<i32>,
    stderr: String,
    stdout: String,
}

/// Runs `fail_fast MODE VICTIM` at `ranks` and checks the bound and that no
/// process of the job is left.
fn fault(ranks: usize, mode: &str, victim: usize) -> Fault {
    let tag = unique_tag(mode);
    let n = ranks.to_string();
    let v = victim.to_string();
    let program = example("fail_fast");
    let job = tessera_cmd(
        &["run", "-n", &n, &program, mode, &v, &tag],
        &[],
        FAULT_BOUND,
    );
    eprintln!("{mode} at {ranks} ranks ended after {:?}", job.elapsed);
    let left = left_behind(&tag, Duration::from_secs(3));
    assert!(left.is_empty(), "processes left behind: {left:?}");
    Fault {
        code: job.code(),
        stderr: job.stderr(),
        stdout: job.stdout(),
    }
}

/// This machine's name, as ranks report it (`MPI_Get_processor_name`).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[test]
fn a_rank_killed_inside_an_all_reduce_ends_the_job() {
    let f = fault(4, "kill", 2);
    // mpirun reports a rank ended by signal N as 128 + N.
    assert_eq!(f.code, Some(128 + 9), "{}", f.stderr);
    let lines = messages(&f.stderr);
    assert_eq!(lines.len(), 1, "one message: {lines:?}");
    let host = hostname();
    assert!(
        lines[0].starts_with(&format!("tessera run: rank 2 on {host} ended by signal 9")),
        "{lines:?}"
    );
}

#[test]
fn a_panicking_rank_ends_the_job_with_its_message() {
    let f = fault(3, "panic", 1);
    assert_eq!(f.code, Some(101), "{}", f.stderr);
    let lines = messages(&f.stderr);
    let host = hostname();
    assert_eq!(lines.len(), 1, "one message: {lines:?}");
    let want = format!(
        "rank 1 on {host}: panicked: rank 1 gives up on purpose (at examples/fail_fast.rs:"
    );
    assert!(lines[0].starts_with(&want), "{lines:?}");
    assert!(!f.stdout.contains("reached the all-reduce"), "{}", f.stdout);
}

#[test]
fn an_error_while_the_others_wait_in_a_collective_ends_the_job() {
    let f = fault(4, "error", 3);
    assert_ne!(f.code, Some(0));
    let lines = messages(&f.stderr);
    let host = hostname();
    assert_eq!(lines.len(), 1, "one message: {lines:?}");
    assert_eq!(
        lines[0],
        format!("rank 3 on {host}: error: fail_fast: rank 3 returns an error on purpose")
    );
}

/// Runs `fail_fast MODE` at 4 ranks under `tessera run` and under plain
/// `mpirun`; returns both standard errors.
fn at_four_ranks_both_ways(mode: &str) -> [String; 2] {
    let program = example("fail_fast");
    let run = tessera_cmd(&["run", "-n", "4", &program, mode], &[], FAULT_BOUND);
    assert_eq!(run.code(), Some(1), "{}", run.stderr());
    let plain = mpirun_cmd(&["-n", "4", &program, mode], &[], FAULT_BOUND);
    assert_ne!(plain.code(), Some(0), "{}", plain.stderr());
    [run.stderr(), plain.stderr()]
}

#[test]
fn an_error_every_rank_returns_together_is_printed_once() {
    let host = hostname();
    for (how, stderr) in ["tessera run", "mpirun"]
        .iter()
        .zip(at_four_ranks_both_ways("disagree"))
    {
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("disagree")).collect();
        assert_eq!(
            lines.len(),
            1,
            "{how}: one message, not one per rank:\n{stderr}"
        );
        assert_eq!(
            lines[0],
            format!(
                "ranks 0-3 on {host}: error: all_reduce: ranks disagree on the element count: 1 on ranks 0, 2; 2 on ranks 1, 3. Every rank must pass the same value"
            ),
            "{how}"
        );
        // The ranks end together: no abort, so no abort box or error log.
        assert!(
            !stderr.contains("MPI_ABORT") && !stderr.contains("ORTE_ERROR_LOG"),
            "{how}:\n{stderr}"
        );
        if *how == "tessera run" {
            assert_eq!(messages(&stderr).len(), 1, "{stderr}");
        }
    }
}

#[test]
fn distinct_errors_of_every_rank_come_out_whole_and_once() {
    let host = hostname();
    for (how, stderr) in ["tessera run", "mpirun"]
        .iter()
        .zip(at_four_ranks_both_ways("each"))
    {
        for rank in 0..4 {
            let want = format!(
                "rank {rank} on {host}: error: fail_fast: rank {rank} of 4 returns its own error"
            );
            let count = stderr.lines().filter(|l| *l == want).count();
            assert_eq!(count, 1, "{how}: `{want}` once, whole:\n{stderr}");
        }
        // Nothing else mentions the errors: no pieces of interleaved lines.
        let pieces = stderr
            .lines()
            .filter(|l| l.contains("returns its own") || l.contains("fail_fast:"))
            .count();
        assert_eq!(pieces, 4, "{how}:\n{stderr}");
        if *how == "tessera run" {
            assert_eq!(messages(&stderr).len(), 4, "{stderr}");
        }
    }
}

#[test]
fn a_job_without_a_fault_runs_to_the_end() {
    let tag = unique_tag("none");
    let program = example("fail_fast");
    let job = tessera_cmd(
        &["run", "-n", "3", &program, "none", &tag],
        &[],
        FAULT_BOUND,
    );
    job.assert_ok("fail_fast none");
    assert!(job.stdout().contains("all 3 ranks reached the all-reduce"));
    assert!(left_behind(&tag, Duration::from_secs(3)).is_empty());
}

/// Starts `tessera run -n 2 fail_fast kill 99` (no such rank: the ranks
/// all-reduce until the job is ended from outside) in its own process
/// group, waits until both ranks run, sends `signal` to `tessera run` (or
/// to its whole group), and checks that the job ends and leaves nothing.
fn ended_from_outside(signal: i32, to_group: bool) -> std::process::ExitStatus {
    use std::os::unix::process::CommandExt;
    let _guard = common::jobs::one_job_at_a_time();
    let tag = unique_tag("outside");
    let program = example("fail_fast");
    let mut child = std::process::Command::new(common::jobs::tessera())
        .args(["run", "-n", "2", &program, "kill", "99", &tag])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start tessera run");
    let start = std::time::Instant::now();
    // tessera run, mpirun and the two ranks.
    while common::jobs::processes_with(&tag).len() < 4 {
        assert!(start.elapsed() < FAULT_BOUND, "the job did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id() as i32;
    // SAFETY: signalling our own child (or its process group).
    unsafe {
        libc::kill(if to_group { -pid } else { pid }, signal);
    }
    let sent = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if sent.elapsed() > FAULT_BOUND {
            let _ = child.kill();
            let _ = child.wait();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let left = left_behind(&tag, Duration::from_secs(5));
    for (pid, _) in &left {
        // SAFETY: cleaning up what the test started.
        unsafe {
            libc::kill(*pid as i32, libc::SIGKILL);
        }
    }
    assert!(left.is_empty(), "processes left behind: {left:?}");
    eprintln!(
        "signal {signal} (group: {to_group}): ended after {:?}",
        sent.elapsed()
    );
    status
}

#[test]
fn sigterm_to_tessera_run_ends_every_rank() {
    let status = ended_from_outside(libc::SIGTERM, false);
    assert!(!status.success(), "{status:?}");
}

#[test]
fn ctrl_c_to_the_process_group_ends_every_rank() {
    let status = ended_from_outside(libc::SIGINT, true);
    assert!(!status.success(), "{status:?}");
}

#[test]
fn sigkill_to_tessera_run_still_ends_every_rank() {
    use std::os::unix::process::ExitStatusExt;
    let status = ended_from_outside(libc::SIGKILL, false);
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}
