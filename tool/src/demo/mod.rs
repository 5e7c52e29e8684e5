//! The demos behind the command line (`tessera matmul`, ...): argument
//! handling, timing and reporting around the library's algorithms.

pub mod allreduce;
pub mod matmul;
pub mod sort;

/// A time for the demos' reports: seconds with four decimals, or, below
/// 0.1 s, milliseconds or microseconds with three (so a tiny problem shows
/// `41.200 us`, not `0.0000 s`).
pub fn human_seconds(s: f64) -> String {
    if !s.is_finite() || s == 0.0 || s >= 0.1 {
        format!("{s:.4} s")
    } else if s >= 1e-4 {
        format!("{:.3} ms", s * 1e3)
    } else {
        format!("{:.3} us", s * 1e6)
    }
}

/// Where a workload's data lived, and this rank's time outside the timed
/// section: generating the inputs, copying results to the host, checking.
pub(crate) struct Resident {
    /// Generated on the device and kept there.
    pub(crate) on_device: bool,
    /// Generating the inputs.
    pub(crate) generate_seconds: f64,
    /// Copying results to the host for a check or a file.
    pub(crate) copy_seconds: f64,
    /// Checking the result.
    pub(crate) verify_seconds: f64,
}

impl Resident {
    /// The same times on the slowest rank (collective: one all-reduce); the
    /// checking time only when the run was checked (`verified`: else what
    /// was timed is skipping the check).
    pub(crate) fn slowest(&self, comm: &tessera::Comm, verified: bool) -> crate::Result<Resident> {
        let verify_seconds = if verified { self.verify_seconds } else { 0.0 };
        let t = comm.all_reduce(
            &[self.generate_seconds, self.copy_seconds, verify_seconds],
            tessera::comm::ReduceOp::Max,
        )?;
        Ok(Resident {
            on_device: self.on_device,
            generate_seconds: t[0],
            copy_seconds: t[1],
            verify_seconds: t[2],
        })
    }
}

/// How a device-resident run's result reached the host, for the reports:
/// copied in `seconds` for `purpose`, or not at all.
pub(crate) fn copied_to_host(seconds: f64, purpose: &str) -> String {
    if seconds > 0.0 {
        format!(
            "copied to the host in {} for {purpose}",
            human_seconds(seconds)
        )
    } else {
        "never copied to the host".to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn small_times_keep_their_digits() {
        assert_eq!(super::human_seconds(1.23456), "1.2346 s");
        assert_eq!(super::human_seconds(0.0123), "12.300 ms");
        assert_eq!(super::human_seconds(4.12e-5), "41.200 us");
        assert_eq!(super::human_seconds(0.0), "0.0000 s");
    }
}
