//! A program written as a user of the library writes one: it depends on
//! `tessera` alone (no ndarray or bytemuck of its own), returns its own
//! errors with `?` inside `spmd`, and runs under plain `mpirun`:
//!
//! ```text
//! mpirun -n 3 target/debug/tessera-user-crate 40
//! ```
//!
//! It gathers a `#[repr(C)]` struct from every rank, multiplies matrices
//! handed out from rank 0 as `ndarray` arrays and checks the product, and
//! sorts keys across the ranks. `scripts/check-architecture.sh` builds it,
//! checks that it compiles none of the tool's dependencies, and runs it.

use tessera::bytemuck::{Pod, Zeroable};
use tessera::comm::{ProcessGrid, ReduceOp};
use tessera::distributed::sort::{SortAlgo, dist_sort, fingerprint, verify_sorted};
use tessera::distributed::{DistMatrix, matmul, verify_product};
use tessera::ndarray::Array2;
use tessera::{Device, Error};

/// One rank's report, sent to rank 0 as raw bytes.
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[bytemuck(crate = "tessera::bytemuck")]
#[repr(C)]
struct Report {
    rank: u32,
    local_rank: u32,
    checksum: f64,
}

/// The matrix size from the first argument: `?` on a parse error, and a
/// program's own message as an error.
fn size_from_args() -> tessera::Result<usize> {
    let text = std::env::args().nth(1).unwrap_or_else(|| "40".into());
    let n: usize = text.parse()?;
    if n < 2 {
        return Err(format!("the size must be at least 2, got {n}").into());
    }
    Ok(n)
}

fn main() {
    tessera::spmd(|world| {
        let n = size_from_args()?;
        // `?` on an io::Error: a file that exists on every Linux host.
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
        let grid = ProcessGrid::square_ish(world)?;

        // A and B built on rank 0 with the re-exported ndarray.
        let (a, b) = if world.rank() == 0 {
            let a = Array2::from_shape_fn((n, n + 1), |(i, j)| (i * 3 + j) as f64 / n as f64);
            let b = Array2::from_shape_fn((n + 1, n), |(i, j)| if i == j { 1.0 } else { 0.5 });
            (Some(a), Some(b))
        } else {
            (None, None)
        };
        let a = DistMatrix::scatter_from_root(&grid, a.as_ref().map(|m| m.view()), 0)?;
        let b = DistMatrix::scatter_from_root(&grid, b.as_ref().map(|m| m.view()), 0)?;
        let c = matmul(&a, &b)?;
        let check = verify_product(&a, &b, &c, 11)?;
        if !check.passed {
            return Err(Error::msg(format!(
                "product check failed: residual {} over {}",
                check.residual, check.threshold
            )));
        }
        let checksum = c.local().sum();
        let total = world.all_reduce(&[checksum], ReduceOp::Sum)?[0];

        // Structs through a collective.
        let mine = Report {
            rank: world.rank() as u32,
            local_rank: world.local_rank() as u32,
            checksum,
        };
        let reports = world.all_gather(&[mine])?;
        let summed: f64 = reports.iter().map(|r| r.checksum).sum();
        if reports
            .iter()
            .enumerate()
            .any(|(i, r)| r.rank as usize != i)
        {
            return Err("reports arrived out of rank order".into());
        }

        // Keys sorted across the ranks.
        let keys: Vec<u64> = (0..1000u64)
            .map(|i| tessera::rng::mix64(i + 1000 * world.rank() as u64) % 5000)
            .collect();
        let before = fingerprint(world, &keys)?;
        let (sorted, _) = dist_sort(world, keys, SortAlgo::Sample, Device::Cpu)?;
        let sorted_ok = verify_sorted(world, &before, &sorted)?;
        if !sorted_ok.passed() {
            return Err(Error::msg(format!("sort check failed: {sorted_ok:?}")));
        }

        if world.rank() == 0 {
            println!(
                "user crate on {} ranks ({}): product residual {:.2e}, checksum {total:.6} = {summed:.6}, {} keys sorted",
                world.size(),
                hostname.trim(),
                check.residual,
                1000 * world.size()
            );
            if (total - summed).abs() > 1e-9 * total.abs().max(1.0) {
                return Err("the all-reduce and the gathered reports disagree".into());
            }
        }
        Ok(())
    });
}
