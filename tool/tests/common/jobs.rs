//! Running `tessera` commands under a timeout, for the integration tests.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Jobs of one test binary run one at a time, so that oversubscribed runs
/// on small machines do not compete with each other.
static ONE_JOB_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The longest any job may take: a hang is a failure, never a stuck CI.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// Holds the one-job lock of this test binary.
pub fn one_job_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_JOB_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `tessera` binary under test.
pub fn tessera() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tessera"))
}

/// A finished job.
pub struct Job {
    pub output: Output,
    pub elapsed: Duration,
}

#[allow(dead_code)]
impl Job {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }
    pub fn assert_ok(&self, what: &str) {
        assert!(
            self.output.status.success(),
            "{what} failed with {:?}\nstdout:\n{}\nstderr:\n{}",
            self.output.status,
            self.stdout(),
            self.stderr()
        );
    }
}

/// Runs `tessera ARGS...` with extra environment, killing it (SIGTERM,
/// which `tessera run` as mpirun passes to every rank, then SIGKILL) after
/// `timeout`.
pub fn tessera_cmd(args: &[&str], envs: &[(&str, &str)], timeout: Duration) -> Job {
    let mut cmd = Command::new(tessera());
    cmd.args(args);
    cmd.envs(envs.iter().copied());
    job(cmd, &format!("tessera {}", args.join(" ")), timeout)
}

/// Runs `tessera ARGS...` in the directory `dir`, under [`TIMEOUT`].
#[allow(dead_code)]
pub fn tessera_in(dir: &std::path::Path, args: &[&str]) -> Job {
    let mut cmd = Command::new(tessera());
    cmd.args(args).current_dir(dir);
    job(
        cmd,
        &format!("tessera {} (in {})", args.join(" "), dir.display()),
        TIMEOUT,
    )
}

/// Runs plain `mpirun ARGS...` (not through `tessera run`), allowed to run
/// as root and to oversubscribe as `tessera run` would be, under `timeout`.
#[allow(dead_code)]
pub fn mpirun_cmd(args: &[&str], envs: &[(&str, &str)], timeout: Duration) -> Job {
    let mut cmd = Command::new(std::env::var_os(tessera::env::MPIRUN).unwrap_or("mpirun".into()));
    cmd.args(args);
    cmd.envs([
        ("OMPI_ALLOW_RUN_AS_ROOT", "1"),
        ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"),
        ("OMPI_MCA_rmaps_base_oversubscribe", "1"),
    ]);
    cmd.envs(envs.iter().copied());
    job(cmd, &format!("mpirun {}", args.join(" ")), timeout)
}

/// Runs `cmd` to its end, killing it (SIGTERM, then SIGKILL) after
/// `timeout`; `what` names it in the failure.
fn job(mut cmd: Command, what: &str, timeout: Duration) -> Job {
    let _guard = one_job_at_a_time();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn tessera");
    // Read the pipes on threads so a chatty job cannot block on a full pipe.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut v).ok();
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut v).ok();
        v
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > timeout {
            // SAFETY: signalling our own child process.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            std::thread::sleep(Duration::from_secs(5));
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{what}` hung for more than {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    };
    Job {
        output,
        elapsed: start.elapsed(),
    }
}

/// Runs `tessera run -n N ARGS...` under [`TIMEOUT`].
#[allow(dead_code)]
pub fn run(ranks: usize, args: &[&str], envs: &[(&str, &str)]) -> Job {
    let n = ranks.to_string();
    let mut all = vec!["run", "-n", n.as_str()];
    all.extend_from_slice(args);
    tessera_cmd(&all, envs, TIMEOUT)
}

/// An example binary; `cargo test` builds the examples next to the binaries.
#[allow(dead_code)]
pub fn example(name: &str) -> String {
    let path = tessera()
        .parent()
        .expect("binary directory")
        .join("examples")
        .join(name);
    assert!(path.is_file(), "example {} was not built", path.display());
    path.to_string_lossy().into_owned()
}

/// The processes (pid, command line) whose command line contains `tag`,
/// other than this test process.
#[allow(dead_code)]
pub fn processes_with(tag: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(tag) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Waits up to `grace` for every process whose command line holds `tag` to
/// be gone; returns those still there.
#[allow(dead_code)]
pub fn left_behind(tag: &str, grace: Duration) -> Vec<(u32, String)> {
    let start = Instant::now();
    loop {
        let left = processes_with(tag);
        if left.is_empty() || start.elapsed() > grace {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A tag no other job's command line holds.
#[allow(dead_code)]
pub fn unique_tag(what: &str) -> String {
    static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!(
        "tessera-test-{what}-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// The messages in a job's standard error: its non-blank lines, less the
/// hints clap prints after its own error (usage, "try --help", tips,
/// possible values).
#[allow(dead_code)]
pub fn messages(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.starts_with("For more information, try") && !l.starts_with("Usage: "))
        .filter(|l| !l.starts_with("  tip:") && !l.starts_with("  [possible values"))
        .collect()
}
