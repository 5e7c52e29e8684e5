//! `tessera run`: starts a job through Open MPI's `mpirun` with the
//! environment Tessera programs need, so users never have to set it.
//!
//! - As root, `OMPI_ALLOW_RUN_AS_ROOT=1` and `OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1`.
//! - On one machine with more ranks than cores (or with `--oversubscribe`),
//!   `OMPI_MCA_rmaps_base_oversubscribe=1` and no binding; with fewer ranks
//!   than cores, each rank is bound to its share of the cores
//!   (`--map-by slot:PE=k`), so that its rayon threads can use them.
//! - Every `TESSERA_*` variable is exported to all ranks (`-x`).
//! - Each rank starts through `tessera rank-exec`, which gives it one GPU by
//!   setting `CUDA_VISIBLE_DEVICES` from its node-local rank where the node
//!   has GPUs, then replaces itself with the program (no shell in between).
//! - Failures are detected in bounded time: the Open MPI parameters in
//!   [`FAILURE_DETECTION`] are set unless the user set them (as
//!   `OMPI_MCA_*` variables or `--mca`).
//! - Nothing the user types reaches a shell: the program and its arguments
//!   are passed to `mpirun` as an argument vector, and from there to each
//!   rank's `execvp`.
//! - `mpirun`'s boxed messages that only repeat what a rank said are
//!   dropped, and the rest shortened to one line naming the rank and host
//!   ([`messages`]).

pub mod hostfile;
pub mod messages;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, Result};

/// The tessera subcommands `tessera run` starts as the program itself.
pub const OWN_SUBCOMMANDS: &[&str] = &["info", "bench", "selftest", "matmul", "sort", "allreduce"];

/// What `tessera run` was asked for.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Number of ranks.
    pub ranks: usize,
    /// A hostfile in Open MPI's format (`host slots=N` per line).
    pub hostfile: Option<PathBuf>,
    /// Hosts with slot counts, `h1:4,h2:4`.
    pub hosts: Option<String>,
    /// Allow more ranks than slots.
    pub oversubscribe: bool,
    /// Threads per rank (`RAYON_NUM_THREADS`; each rank is bound to that
    /// many cores where they suffice). Default: the cores divided among the
    /// ranks.
    pub threads: Option<usize>,
    /// Record a Chrome trace of the job into this file (`TESSERA_TRACE`).
    pub trace: Option<PathBuf>,
    /// Open MPI parameters passed as `--mca KEY VALUE` (they override
    /// Tessera's defaults and `OMPI_MCA_*` variables).
    pub mca: Vec<(String, String)>,
    /// Pass `mpirun`'s own messages through unchanged.
    pub raw: bool,
    /// The program and its arguments; empty runs `tessera info`.
    pub program: Vec<OsString>,
    /// Environment variables set for every rank (exported with `-x`).
    pub env: Vec<(String, OsString)>,
}

/// Open MPI parameters `tessera run` sets so that a failure ends the job in
/// bounded time, with what each bounds. A parameter the user set, as an
/// `OMPI_MCA_<name>` variable or with `--mca`, is left as the user set it.
///
/// - A rank that dies (signal, non-zero exit, `MPI_Abort`) is noticed by
///   its node's daemon at once; the others are then sent SIGTERM and, after
///   `odls_base_sigkill_timeout` seconds, SIGKILL.
/// - A host that is lost (link down, machine off, daemon killed) is noticed
///   through TCP keepalive on the daemons' connections: after
///   `oob_tcp_keepalive_time` idle seconds a probe is sent every
///   `oob_tcp_keepalive_intvl` seconds and after `oob_tcp_keepalive_probes`
///   unanswered probes the connection is dead: 2 + 1 x 5 = 7 s of silence
///   (Open MPI's defaults: 300 + 20 x 9 s, a quarter of an hour). The
///   probes are answered by the peer's kernel, so a busy host is never
///   mistaken for a lost one; a network that drops everything for 5 s is.
pub const FAILURE_DETECTION: &[(&str, &str)] = &[
    ("odls_base_sigkill_timeout", "1"),
    ("oob_tcp_keepalive_time", "2"),
    ("oob_tcp_keepalive_intvl", "1"),
    ("oob_tcp_keepalive_probes", "5"),
];

/// The cores this process may run on, counted as Open MPI counts slots by
/// default: distinct physical cores (hardware threads of one core count
/// once) among the CPUs in this process's affinity mask.
pub fn physical_cores() -> usize {
    let allowed = allowed_cpus();
    let logical = allowed.as_ref().map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |cpus| cpus.len().max(1),
    );
    let Ok(text) = std::fs::read_to_string("/proc/cpuinfo") else {
        return logical;
    };
    let cores = cores_from_cpuinfo(&text, allowed.as_deref());
    if cores == 0 { logical } else { cores }
}

/// Distinct (package, core) pairs among the processors `allowed` (all when
/// `None`) in a `/proc/cpuinfo` text.
fn cores_from_cpuinfo(text: &str, allowed: Option<&[usize]>) -> usize {
    let mut cores = std::collections::HashSet::new();
    for block in text.split("\n\n") {
        let mut processor = None;
        let mut package = None;
        let mut core = None;
        for line in block.lines() {
            if let Some((k, v)) = line.split_once(':') {
                let v = v.trim();
                match k.trim() {
                    "processor" => processor = v.parse::<usize>().ok(),
                    "physical id" => package = Some(v.to_string()),
                    "core id" => core = Some(v.to_string()),
                    _ => {}
                }
            }
        }
        if let (Some(p), Some(core)) = (processor, core)
            && allowed.is_none_or(|a| a.contains(&p))
        {
            cores.insert((package.unwrap_or_default(), core));
        }
    }
    cores.len()
}

/// The CPUs in this process's affinity mask (`sched_getaffinity`).
fn allowed_cpus() -> Option<Vec<usize>> {
    // SAFETY: cpu_set_t is a plain bit set; all-zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return None;
    }
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE and `set` is initialised.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect();
    (!cpus.is_empty()).then_some(cpus)
}

/// Finds `name` on `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Builds the `mpirun` command for `opts`; `tessera` is the path of the
/// tessera binary (used as the rank wrapper and for its own subcommands).
pub fn mpirun_command(opts: &RunOptions, mpirun: &Path, tessera: &Path) -> Result<Command> {
    if opts.ranks == 0 {
        return Err(Error::Usage(
            "-n must be at least 1: pass the number of ranks to start, e.g. -n 4".into(),
        ));
    }
    if opts.hostfile.is_some() && opts.hosts.is_some() {
        return Err(Error::Usage(
            "give either --hostfile or --host, not both".into(),
        ));
    }
    let mut cmd = Command::new(mpirun);
    cmd.arg("-n").arg(opts.ranks.to_string());
    if let Some(hostfile) = &opts.hostfile {
        hostfile::check(hostfile, opts.ranks, opts.oversubscribe)?;
        cmd.arg("--hostfile").arg(hostfile);
    }
    if let Some(hosts) = &opts.hosts {
        validate_hosts(hosts)?;
        cmd.arg("--host").arg(hosts);
    }
    let local = opts.hostfile.is_none() && opts.hosts.is_none();
    let cores = physical_cores();
    if opts.threads == Some(0) {
        return Err(Error::Usage(
            "--threads must be at least 1: pass the threads each rank may use".into(),
        ));
    }
    let threads = opts.threads.unwrap_or(1);
    if opts.oversubscribe || (local && opts.ranks.saturating_mul(threads) > cores) {
        cmd.env("OMPI_MCA_rmaps_base_oversubscribe", "1");
        // Oversubscribed ranks must not be pinned to the same core.
        cmd.arg("--bind-to").arg("none");
    } else if local && (opts.ranks < cores || opts.threads.is_some()) {
        // Give each rank its share of the cores (Open MPI would pin each to
        // one), so its threads use them all.
        let per_rank = opts.threads.unwrap_or(cores / opts.ranks);
        cmd.arg("--map-by").arg(format!("slot:PE={per_rank}"));
        cmd.arg("--bind-to").arg("core");
    }
    if let Some(t) = opts.threads {
        cmd.env("RAYON_NUM_THREADS", t.to_string());
        cmd.arg("-x").arg("RAYON_NUM_THREADS");
    }
    if let Some(trace) = &opts.trace {
        // Absolute, so that every rank writes where the user meant whatever
        // its working directory.
        let path = std::path::absolute(trace).map_err(|e| {
            tessera::Error::io(format!("resolving the trace path {}", trace.display()), e)
        })?;
        cmd.env(tessera::env::TRACE, path);
    }
    for (key, value) in &opts.mca {
        if key.is_empty() || key.contains(char::is_whitespace) || key.contains('=') {
            return Err(Error::Usage(format!(
                "bad --mca name `{key}`: pass an Open MPI parameter name and its value, e.g. --mca btl tcp,self"
            )));
        }
        cmd.arg("--mca").arg(key).arg(value);
    }
    for (key, value) in FAILURE_DETECTION {
        let var = format!("OMPI_MCA_{key}");
        if std::env::var_os(&var).is_none() && !opts.mca.iter().any(|(k, _)| k == key) {
            cmd.env(var, value);
        }
    }
    if is_root() {
        cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1");
        cmd.env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    }
    let mut exported: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("TESSERA_"))
        .collect();
    if opts.trace.is_some() && !exported.iter().any(|k| k == tessera::env::TRACE) {
        exported.push(tessera::env::TRACE.to_string());
    }
    for (name, value) in &opts.env {
        cmd.env(name, value);
        if !exported.contains(name) {
            exported.push(name.clone());
        }
    }
    exported.sort();
    for name in exported {
        cmd.arg("-x").arg(name);
    }
    cmd.arg(tessera).arg("rank-exec").arg("--");
    match opts.program.first() {
        None => {
            cmd.arg(tessera).arg("info");
        }
        Some(first) if first == "run" => {
            return Err(Error::Usage(
                "`tessera run ... run` would start jobs inside a job: name a program or a tessera subcommand (info, bench, selftest)".into(),
            ));
        }
        Some(first) if OWN_SUBCOMMANDS.iter().any(|s| first == *s) => {
            cmd.arg(tessera).args(&opts.program);
        }
        Some(_) => {
            cmd.args(&opts.program);
        }
    }
    Ok(cmd)
}

fn validate_hosts(hosts: &str) -> Result<()> {
    for entry in hosts.split(',') {
        let (host, slots) = match entry.split_once(':') {
            Some((h, s)) => (h, Some(s)),
            None => (entry, None),
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(Error::Usage(format!(
                "bad --host entry `{entry}`: write HOST or HOST:SLOTS, comma-separated, e.g. node1:4,node2:4"
            )));
        }
        if let Some(s) = slots
            && s.parse::<usize>().map_or(true, |n| n == 0)
        {
            return Err(Error::Usage(format!(
                "bad slot count in --host entry `{entry}`: SLOTS must be a positive whole number"
            )));
        }
    }
    Ok(())
}

/// `mpirun`'s process id while `tessera run` waits for it (0 otherwise).
static MPIRUN_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The signals `tessera run` passes on to `mpirun`, which passes them to
/// every rank (SIGINT and SIGTERM end the job; SIGUSR1/2 reach the program).
const FORWARDED: &[libc::c_int] = &[
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

extern "C" fn forward_signal(signal: libc::c_int) {
    // SAFETY: __errno_location returns this thread's errno, which the
    // handler must leave as it found it.
    let saved = unsafe { *libc::__errno_location() };
    let pid = MPIRUN_PID.load(std::sync::atomic::Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe; pid is our own child.
        unsafe {
            libc::kill(pid, signal);
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
}

/// Installs [`forward_signal`] for [`FORWARDED`] (except signals ignored
/// when `tessera run` started, as under `nohup`); returns the previous
/// actions, to restore.
fn forward_signals() -> Vec<(libc::c_int, libc::sigaction)> {
    let mut previous = Vec::new();
    for &signal in FORWARDED {
        // SAFETY: sigaction structs are plain data; all-zero is valid.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: reading the current action into a valid struct.
        if unsafe { libc::sigaction(signal, std::ptr::null(), &mut old) } != 0
            || old.sa_sigaction == libc::SIG_IGN
        {
            continue;
        }
        // SAFETY: as above.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = forward_signal as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        // SAFETY: the handler only loads an atomic, calls kill and keeps
        // errno, all async-signal-safe; `action` is initialised.
        if unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) } == 0 {
            previous.push((signal, old));
        }
    }
    previous
}

fn restore_signals(previous: &[(libc::c_int, libc::sigaction)]) {
    for (signal, old) in previous {
        // SAFETY: restoring an action sigaction itself returned.
        unsafe {
            libc::sigaction(*signal, old, std::ptr::null_mut());
        }
    }
}

/// Starts the job and waits for it. `mpirun` runs as this process's child
/// in its own process group, so that a signal to `tessera run`'s group
/// (Ctrl-C, `timeout`, a batch system) reaches it once, through this
/// process's signal handler, which passes each signal on once (Open MPI's
/// `mpirun` exits at once without ending its ranks when a second SIGINT or
/// SIGTERM arrives within seconds of the first); it is told to end (SIGTERM) if `tessera run` itself is killed.
/// Its standard error goes through [`messages::MessageFilter`] unless
/// `opts.raw`. Everything runs on this one thread: the parent-death signal
/// is sent when the thread that started `mpirun` ends. When standard input
/// is a terminal `mpirun` gets none (a process group that is not the
/// terminal's own would be stopped reading it); piped input reaches rank 0
/// as with `mpirun`. Returns `mpirun`'s exit status (128 + N when it was
/// ended by signal N).
pub fn run(opts: &RunOptions) -> Result<u8> {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let mut cmd = prepare(opts)?;
    if !opts.raw {
        cmd.stderr(std::process::Stdio::piped());
    }
    // SAFETY: isatty has no preconditions.
    if unsafe { libc::isatty(0) } == 1 {
        cmd.stdin(std::process::Stdio::null());
    }
    cmd.process_group(0);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the child between fork and exec and calls
    // only prctl, getppid and raise, which are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            if libc::getppid() != parent {
                // The parent is already gone.
                libc::raise(libc::SIGTERM);
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| Error::Launch {
        program: cmd.get_program().to_string_lossy().into_owned(),
        reason: format!("{e}: check that Open MPI is installed (scripts/setup.sh)"),
    })?;
    MPIRUN_PID.store(child.id() as i32, std::sync::atomic::Ordering::SeqCst);
    let previous = forward_signals();
    let status = match child.stderr.take() {
        Some(stderr) => pump_stderr(&mut child, stderr),
        None => child.wait(),
    };
    MPIRUN_PID.store(0, std::sync::atomic::Ordering::SeqCst);
    restore_signals(&previous);
    let status = status.map_err(|e| tessera::Error::io("waiting for mpirun", e))?;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => code.clamp(0, 255) as u8,
        (None, Some(signal)) => (128 + signal).clamp(0, 255) as u8,
        (None, None) => 1,
    })
}

/// `mpirun`'s standard error on its way to ours: whole lines go through
/// [`messages::MessageFilter`]; after a pause, a line still without its
/// newline (a prompt, a progress bar) and a box still open are shown as they
/// are rather than held.
struct StderrCopy<W: std::io::Write> {
    out: W,
    filter: messages::MessageFilter,
    /// Bytes of the line not yet complete.
    pending: Vec<u8>,
    /// Part of the current line was already shown unfiltered.
    shown_partial: bool,
}

impl<W: std::io::Write> StderrCopy<W> {
    fn new(out: W) -> Self {
        StderrCopy {
            out,
            filter: messages::MessageFilter::new(),
            pending: Vec::new(),
            shown_partial: false,
        }
    }

    fn show(&mut self, lines: Vec<String>) {
        for line in lines {
            let _ = writeln!(self.out, "{line}");
        }
    }

    /// Bytes read from `mpirun`.
    fn input(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        while let Some(at) = self.pending.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.pending.drain(..=at).collect();
            line.pop();
            self.line(&line);
        }
    }

    fn line(&mut self, line: &[u8]) {
        if std::mem::take(&mut self.shown_partial) {
            // The rest of a line already begun on screen.
            let _ = self.out.write_all(line);
            let _ = self.out.write_all(b"\n");
            return;
        }
        let text = String::from_utf8_lossy(line);
        let shown = self.filter.line(text.trim_end_matches('\r'));
        self.show(shown);
    }

    /// Nothing came for a while: show what is held.
    fn pause(&mut self) {
        if !self.pending.is_empty() {
            let _ = self.out.write_all(&self.pending);
            self.pending.clear();
            self.shown_partial = true;
        }
        let open = self.filter.flush_open();
        self.show(open);
    }

    /// The stream ended.
    fn finish(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.line(&line);
        }
        let rest = self.filter.finish();
        self.show(rest);
    }
}

/// Copies `mpirun`'s standard error through [`StderrCopy`] until it ends,
/// and returns `mpirun`'s exit status. A daemon left on some host could
/// hold the pipe open after `mpirun` exits: reading stops 2 s after
/// `mpirun` ends.
fn pump_stderr(
    child: &mut std::process::Child,
    mut stderr: std::process::ChildStderr,
) -> std::io::Result<std::process::ExitStatus> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};
    const IDLE: Duration = Duration::from_millis(300);
    const DRAIN: Duration = Duration::from_secs(2);
    let fd = stderr.as_raw_fd();
    let mut copy = StderrCopy::new(std::io::stderr());
    let mut exited: Option<(std::process::ExitStatus, Instant)> = None;
    let mut last_input = Instant::now();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        if exited.is_none()
            && let Some(status) = child.try_wait()?
        {
            exited = Some((status, Instant::now()));
        }
        if let Some((_, at)) = exited
            && at.elapsed() > DRAIN
        {
            break;
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for a descriptor this function owns.
        let ready = unsafe { libc::poll(&mut pfd, 1, 100) };
        if ready > 0 {
            let n = match stderr.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                break;
            }
            last_input = Instant::now();
            copy.input(&buf[..n]);
        } else if last_input.elapsed() > IDLE {
            copy.pause();
        }
    }
    copy.finish();
    match exited {
        Some((status, _)) => Ok(status),
        None => child.wait(),
    }
}

/// The `mpirun` command `tessera run` would execute.
pub fn prepare(opts: &RunOptions) -> Result<Command> {
    let mpirun = std::env::var_os(tessera::env::MPIRUN)
        .map(PathBuf::from)
        .or_else(|| find_on_path("mpirun"))
        .ok_or_else(|| Error::Launch {
            program: "mpirun".into(),
            reason: "mpirun is not on PATH: install Open MPI (`apt-get install openmpi-bin libopenmpi-dev`, or run scripts/setup.sh), or set TESSERA_MPIRUN to its path".into(),
        })?;
    let tessera =
        std::env::current_exe().map_err(|e| tessera::Error::io("finding the tessera binary", e))?;
    let remote = opts.hostfile.is_some() || opts.hosts.is_some();
    match opts.program.first() {
        Some(first) if !OWN_SUBCOMMANDS.iter().any(|s| first == *s) && first != "run" => {
            let resolved = resolve_program(first, remote)?;
            let mut opts = opts.clone();
            opts.program[0] = resolved;
            mpirun_command(&opts, &mpirun, &tessera)
        }
        _ => mpirun_command(opts, &mpirun, &tessera),
    }
}

/// The program to start on every rank, found the way `mpirun` finds it: a
/// name without a slash on `PATH`, else in the current directory (as
/// `./name`). Checked once, before launch, so that a missing program is one
/// message rather than one per rank; with other hosts (`remote`), a program
/// missing here may be there, and is passed on unchecked.
pub fn resolve_program(program: &OsString, remote: bool) -> Result<OsString> {
    let path = Path::new(program);
    let named = !program.as_encoded_bytes().contains(&b'/');
    if named
        && let Some(name) = program.to_str()
        && find_on_path(name).is_some()
    {
        return Ok(program.clone());
    }
    if path.is_file() {
        return Ok(if named {
            Path::new(".").join(path).into_os_string()
        } else {
            program.clone()
        });
    }
    if remote {
        return Ok(program.clone());
    }
    let shown = path.display();
    Err(Error::Launch {
        program: shown.to_string(),
        reason: if named {
            format!(
                "no program `{shown}` on PATH or in the current directory: give its path (./{shown} for one here, or /full/path/{shown})"
            )
        } else {
            format!(
                "no such file: check the path (relative paths start from the current directory, {})",
                std::env::current_dir()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default()
            )
        },
    })
}

/// The GPUs this node exposes: the `CUDA_VISIBLE_DEVICES` list if the
/// scheduler set one, else CUDA ordinals `0..N` for the N `/dev/nvidiaN`
/// device files (the file numbers themselves are not CUDA ordinals: a
/// container that exposes only `/dev/nvidia3` sees it as device 0).
pub fn node_gpus() -> Vec<String> {
    if let Ok(list) = std::env::var("CUDA_VISIBLE_DEVICES") {
        return list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
    }
    let count = std::fs::read_dir("/dev")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("nvidia"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .count();
    (0..count).map(|i| i.to_string()).collect()
}

/// The GPU for node-local rank `local_rank` among `gpus`.
pub fn gpu_for_local_rank(gpus: &[String], local_rank: usize) -> Option<&str> {
    if gpus.is_empty() {
        None
    } else {
        Some(&gpus[local_rank % gpus.len()])
    }
}

/// `tessera rank-exec -- PROGRAM ARGS`: sets this rank's GPU and becomes
/// PROGRAM. Returns only on failure.
pub fn rank_exec(program: &[OsString]) -> Error {
    use std::os::unix::process::CommandExt;
    let Some((prog, args)) = program.split_first() else {
        return Error::Usage("rank-exec needs a program to run".into());
    };
    let local_rank = std::env::var("OMPI_COMM_WORLD_LOCAL_RANK")
        .ok()
        .and_then(|s| s.parse::<usize>().ok());
    let mut cmd = Command::new(prog);
    cmd.args(args);
    if let Some(local_rank) = local_rank
        && let Some(gpu) = gpu_for_local_rank(&node_gpus(), local_rank)
    {
        cmd.env("CUDA_VISIBLE_DEVICES", gpu);
    }
    let err = cmd.exec();
    Error::Launch {
        program: prog.to_string_lossy().into_owned(),
        reason: format!("{err}: check the program name and that it is executable on every host"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_as_mpirun_finds_them() {
        let here = std::env::current_dir().unwrap();
        // A file of the current directory, named without a slash: ./name.
        let name = "Cargo.toml";
        assert!(here.join(name).is_file());
        assert_eq!(
            resolve_program(&OsString::from(name), false).unwrap(),
            OsString::from("./Cargo.toml")
        );
        // On PATH: unchanged.
        assert_eq!(
            resolve_program(&OsString::from("sh"), false).unwrap(),
            OsString::from("sh")
        );
        // Nowhere: one error, suggesting the path.
        let err = resolve_program(&OsString::from("no-such-app-here"), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("on PATH or in the current directory")
                && err.contains("./no-such-app-here"),
            "{err}"
        );
        let err = resolve_program(&OsString::from("/nonexistent/app"), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot launch /nonexistent/app: no such file"),
            "{err}"
        );
        // Other hosts may have it.
        assert!(resolve_program(&OsString::from("no-such-app-here"), true).is_ok());
    }

    fn args(cmd: &Command) -> Vec<String> {
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn env(cmd: &Command, key: &str) -> Option<String> {
        cmd.get_envs()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.map(|v| v.to_string_lossy().into_owned()))
    }

    #[test]
    fn program_arguments_pass_through_unchanged() {
        let opts = RunOptions {
            ranks: 3,
            program: vec!["./app".into(), "a b".into(), "$HOME".into()],
            ..Default::default()
        };
        let cmd = mpirun_command(&opts, Path::new("mpirun"), Path::new("/bin/tessera")).unwrap();
        let a = args(&cmd);
        assert_eq!(&a[..2], &["-n", "3"]);
        let tail = &a[a.len() - 6..];
        assert_eq!(
            tail,
            &["/bin/tessera", "rank-exec", "--", "./app", "a b", "$HOME"]
        );
    }

    #[test]
    fn no_program_runs_tessera_info_and_subcommands_run_tessera() {
        let opts = RunOptions {
            ranks: 2,
            ..Default::default()
        };
        let a = args(&mpirun_command(&opts, Path::new("m"), Path::new("/t")).unwrap());
        assert_eq!(&a[a.len() - 2..], &["/t", "info"]);
        let opts = RunOptions {
            ranks: 2,
            program: vec!["bench".into(), "p2p".into()],
            ..Default::default()
        };
        let a = args(&mpirun_command(&opts, Path::new("m"), Path::new("/t")).unwrap());
        assert_eq!(&a[a.len() - 3..], &["/t", "bench", "p2p"]);
    }

    #[test]
    fn oversubscription_is_allowed_beyond_the_cores() {
        let many = RunOptions {
            ranks: physical_cores() + 1,
            ..Default::default()
        };
        let cmd = mpirun_command(&many, Path::new("m"), Path::new("/t")).unwrap();
        assert_eq!(
            env(&cmd, "OMPI_MCA_rmaps_base_oversubscribe").as_deref(),
            Some("1")
        );
        let one = RunOptions {
            ranks: 1,
            ..Default::default()
        };
        let cmd = mpirun_command(&one, Path::new("m"), Path::new("/t")).unwrap();
        assert_eq!(env(&cmd, "OMPI_MCA_rmaps_base_oversubscribe"), None);
        if physical_cores() > 1 {
            let a = args(&cmd);
            let pe = format!("slot:PE={}", physical_cores());
            assert!(
                a.windows(2).any(|w| w[0] == "--map-by" && w[1] == pe),
                "{a:?}"
            );
        }
        if is_root() {
            assert_eq!(env(&cmd, "OMPI_ALLOW_RUN_AS_ROOT").as_deref(), Some("1"));
        }
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let zero = RunOptions::default();
        let e = mpirun_command(&zero, Path::new("m"), Path::new("/t")).unwrap_err();
        assert!(e.to_string().contains("-n must be at least 1"), "{e}");
        let missing = RunOptions {
            ranks: 2,
            hostfile: Some("/nonexistent/hosts".into()),
            ..Default::default()
        };
        let e = mpirun_command(&missing, Path::new("m"), Path::new("/t")).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        for bad in ["a:0", "a:x", ":3", "a b:2"] {
            let o = RunOptions {
                ranks: 2,
                hosts: Some(bad.into()),
                ..Default::default()
            };
            assert!(
                mpirun_command(&o, Path::new("m"), Path::new("/t")).is_err(),
                "{bad}"
            );
        }
        let ok = RunOptions {
            ranks: 2,
            hosts: Some("n1:2,n2".into()),
            ..Default::default()
        };
        let a = args(&mpirun_command(&ok, Path::new("m"), Path::new("/t")).unwrap());
        assert!(a.windows(2).any(|w| w == ["--host", "n1:2,n2"]));
    }

    #[test]
    fn cores_count_once_per_physical_core_within_the_affinity_mask() {
        // Two packages, two cores each, two hardware threads per core.
        let mut text = String::new();
        let mut p = 0;
        for package in 0..2 {
            for core in 0..2 {
                for _thread in 0..2 {
                    text += &format!(
                        "processor\t: {p}\nphysical id\t: {package}\ncore id\t: {core}\n\n"
                    );
                    p += 1;
                }
            }
        }
        assert_eq!(cores_from_cpuinfo(&text, None), 4);
        // Processors 0 and 1 are the two threads of one core.
        assert_eq!(cores_from_cpuinfo(&text, Some(&[0, 1])), 1);
        assert_eq!(cores_from_cpuinfo(&text, Some(&[0, 2, 4])), 3);
        assert!(physical_cores() >= 1);
    }

    #[test]
    fn non_utf8_program_names_pass_through() {
        use std::os::unix::ffi::OsStringExt;
        let name = OsString::from_vec(vec![b'.', b'/', 0xff, b'x']);
        let opts = RunOptions {
            ranks: 2,
            program: vec![name.clone(), "arg".into()],
            ..Default::default()
        };
        let cmd = mpirun_command(&opts, Path::new("m"), Path::new("/t")).unwrap();
        let a: Vec<OsString> = cmd.get_args().map(OsString::from).collect();
        assert_eq!(&a[a.len() - 2..], &[name, OsString::from("arg")]);
    }

    #[test]
    fn failure_detection_is_bounded_unless_the_user_says_otherwise() {
        let opts = RunOptions {
            ranks: 2,
            mca: vec![
                ("oob_tcp_keepalive_probes".into(), "9".into()),
                ("btl".into(), "tcp,self".into()),
            ],
            ..Default::default()
        };
        let cmd = mpirun_command(&opts, Path::new("m"), Path::new("/t")).unwrap();
        for (key, value) in FAILURE_DETECTION {
            let var = format!("OMPI_MCA_{key}");
            if *key == "oob_tcp_keepalive_probes" {
                // Given with --mca: left to it (mpirun's command line wins).
                assert_eq!(env(&cmd, &var), None);
            } else if std::env::var_os(&var).is_none() {
                assert_eq!(env(&cmd, &var).as_deref(), Some(*value), "{key}");
            } else {
                // Set by whoever runs the tests: theirs stands.
                assert_eq!(env(&cmd, &var), None, "{key}");
            }
        }
        let a = args(&cmd);
        assert!(
            a.windows(3).any(|w| w == ["--mca", "btl", "tcp,self"]),
            "{a:?}"
        );
        assert!(
            a.windows(3)
                .any(|w| w == ["--mca", "oob_tcp_keepalive_probes", "9"])
        );
        // Lost host within 2 + 1 x 5 s of silence.
        let get = |k: &str| -> u32 {
            FAILURE_DETECTION
                .iter()
                .find(|(n, _)| *n == k)
                .unwrap()
                .1
                .parse()
                .unwrap()
        };
        let bound = get("oob_tcp_keepalive_time")
            + get("oob_tcp_keepalive_intvl") * get("oob_tcp_keepalive_probes");
        assert!(bound <= 10, "{bound} s");
        let bad = RunOptions {
            ranks: 2,
            mca: vec![("a b".into(), "1".into())],
            ..Default::default()
        };
        let e = mpirun_command(&bad, Path::new("m"), Path::new("/t")).unwrap_err();
        assert!(e.to_string().contains("bad --mca name `a b`"), "{e}");
    }

    #[test]
    fn stderr_is_copied_by_line_and_a_paused_partial_line_is_shown() {
        let mut copy = StderrCopy::new(Vec::new());
        copy.input(b"rank 0 says hi\nEnter a value: ");
        assert_eq!(copy.out, b"rank 0 says hi\n");
        copy.pause();
        assert_eq!(copy.out, b"rank 0 says hi\nEnter a value: ");
        // The rest of that line follows it unfiltered.
        copy.input(b"42\n");
        let rule = "-".repeat(74);
        copy.input(format!("{rule}\nan open box\n").as_bytes());
        assert_eq!(copy.out, b"rank 0 says hi\nEnter a value: 42\n");
        copy.pause();
        let shown = String::from_utf8(copy.out.clone()).unwrap();
        assert!(
            shown.ends_with(&format!("{rule}\nan open box\n")),
            "{shown}"
        );
        copy.input(b"no newline at the end");
        copy.finish();
        assert!(
            String::from_utf8(copy.out)
                .unwrap()
                .ends_with("an open box\nno newline at the end\n")
        );
    }

    #[test]
    fn gpus_are_dealt_round_robin() {
        let gpus: Vec<String> = ["0", "1"].map(String::from).to_vec();
        assert_eq!(gpu_for_local_rank(&gpus, 0), Some("0"));
        assert_eq!(gpu_for_local_rank(&gpus, 3), Some("1"));
        assert_eq!(gpu_for_local_rank(&[], 3), None);
    }
}
