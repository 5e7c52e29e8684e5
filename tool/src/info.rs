//! `tessera info`: what every rank of the job runs on.

use serde::{Deserialize, Serialize};

use tessera::comm::{Comm, DeviceTransfer, Universe};
use tessera::device::{GpuInfo, probe_gpus};
use tessera::{Error, Result};

/// What one rank runs on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankInfo {
    /// Rank in the world communicator.
    pub rank: usize,
    /// Host name.
    pub host: String,
    /// Rank among the ranks on the same node.
    pub local_rank: usize,
    /// Ranks on the same node.
    pub local_size: usize,
    /// CPU model name.
    pub cpu_model: String,
    /// Logical CPUs this rank may run on.
    pub cpus: usize,
    /// SIMD instruction sets the CPU offers.
    pub simd: Vec<String>,
    /// The GPU this rank would use (node-local rank modulo the node's GPUs).
    pub gpu: Option<GpuInfo>,
    /// Why there is no GPU, when there is none.
    pub gpu_absent_reason: Option<String>,
    /// The device `--device auto` picks.
    pub device: String,
    /// Whether the MPI library accepts GPU memory directly
    /// ([`tessera::comm::cuda_aware_mpi`], `TESSERA_GPU_DIRECT` included).
    pub cuda_aware_mpi: bool,
    /// How this rank's GPU data reaches MPI: the same decision the data
    /// path makes ([`tessera::comm::transfer_path`]); `None` without a GPU.
    pub device_transfer: Option<DeviceTransfer>,
}

/// The job as a whole, as printed by `tessera info --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInfo {
    /// The MPI library's version string.
    pub mpi_library: String,
    /// Ranks in the job.
    pub ranks: usize,
    /// One entry per rank, in rank order.
    pub rank_info: Vec<RankInfo>,
}

/// The CPU model name from `/proc/cpuinfo`, or the architecture.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("Model"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The SIMD instruction sets this CPU offers, detected at run time.
pub fn simd_features() -> Vec<String> {
    #[allow(unused_mut)]
    let mut found: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! probe {
            ($($f:tt),*) => {$(
                if std::arch::is_x86_feature_detected!($f) { found.push($f); }
            )*};
        }
        probe!(
            "sse4.2",
            "avx",
            "avx2",
            "fma",
            "avx512f",
            "avx512bw",
            "avx512vl",
            "avx512vnni",
            "avx512bf16"
        );
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! probe {
            ($($f:tt),*) => {$(
                if std::arch::is_aarch64_feature_detected!($f) { found.push($f); }
            )*};
        }
        probe!("neon", "sve", "sve2");
    }
    found.into_iter().map(String::from).collect()
}

/// This rank's description (collective over `comm`: it splits off the
/// node-local communicator).
pub fn rank_info(comm: &Comm) -> RankInfo {
    let local = comm.split_shared();
    // The same choice as `--device auto`, and the same data path.
    let (device, reason) = tessera::Device::auto(local.rank());
    let gpu = match device {
        tessera::Device::Cuda(i) => probe_gpus().ok().and_then(|gpus| gpus.get(i).cloned()),
        _ => None,
    };
    let device_transfer = tessera::comm::transfer_path(device);
    let device = device.to_string();
    RankInfo {
        rank: comm.rank(),
        host: comm.host().to_string(),
        local_rank: local.rank(),
        local_size: local.size(),
        cpu_model: cpu_model(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        simd: simd_features(),
        gpu,
        gpu_absent_reason: reason,
        device,
        cuda_aware_mpi: tessera::comm::cuda_aware_mpi(),
        device_transfer,
    }
}

/// Gathers every rank's description to `root` (collective). `Some` on root.
pub fn gather_job_info(universe: &Universe, comm: &Comm, root: usize) -> Result<Option<JobInfo>> {
    let mine = serde_json::to_vec(&rank_info(comm)).expect("RankInfo serialises");
    let Some(all) = comm.gather_v(&mine, root)? else {
        return Ok(None);
    };
    let rank_info = all
        .parts()
        .map(|bytes| {
            serde_json::from_slice(bytes).map_err(|e| Error::Remote {
                op: "info",
                message: format!("a rank sent an unreadable description: {e}"),
            })
        })
        .collect::<Result<Vec<RankInfo>>>()?;
    Ok(Some(JobInfo {
        mpi_library: universe.library_version(),
        ranks: comm.size(),
        rank_info,
    }))
}

/// The job description as a table, one row per rank.
pub fn render_table(job: &JobInfo) -> String {
    let first_line = job.mpi_library.lines().next().unwrap_or("").trim();
    let mut out = format!("MPI library: {first_line}\nranks: {}\n", job.ranks);
    let header = [
        "rank",
        "host",
        "local",
        "cpus",
        "cpu",
        "simd",
        "gpu",
        "device",
        "cuda-aware",
        "gpu data to mpi",
    ];
    let rows: Vec<[String; 10]> = job
        .rank_info
        .iter()
        .map(|r| {
            let gpu = match &r.gpu {
                Some(g) => format!(
                    "{} ({:.0} GiB, sm_{}{})",
                    g.name,
                    g.memory_bytes as f64 / (1u64 << 30) as f64,
                    g.compute_capability.0,
                    g.compute_capability.1
                ),
                None => "none".into(),
            };
            [
                r.rank.to_string(),
                r.host.clone(),
                format!("{}/{}", r.local_rank, r.local_size),
                r.cpus.to_string(),
                r.cpu_model.clone(),
                r.simd.join(","),
                gpu,
                r.device.clone(),
                if r.cuda_aware_mpi { "yes" } else { "no" }.into(),
                match r.device_transfer {
                    Some(DeviceTransfer::Direct) => "direct",
                    Some(DeviceTransfer::Staged) => "staged",
                    None => "-",
                }
                .into(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    out += &line(header.to_vec());
    for row in &rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    let reasons: std::collections::BTreeSet<&str> = job
        .rank_info
        .iter()
        .filter_map(|r| r.gpu_absent_reason.as_deref())
        .collect();
    for reason in reasons {
        out += &format!("device auto falls back to the CPU: {reason}\n");
    }
    out
}
