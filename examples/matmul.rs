//! A distributed matrix multiply to copy and start from: build A and B over
//! a process grid, multiply them by SUMMA, check the product without
//! gathering it, and gather a corner of C to rank 0.
//!
//! ```text
//! tessera run -n 4 ./target/release/examples/matmul 2000 1500 1000
//! ```

use tessera::Error;
use tessera::comm::ProcessGrid;
use tessera::distributed::{DistMatrix, matmul, verify_product};

fn main() {
    let dims: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (m, k, n) = match dims.as_slice() {
        [] => (512, 512, 512),
        [m, k, n] => (*m, *k, *n),
        _ => {
            eprintln!("usage: matmul [M K N]");
            std::process::exit(2);
        }
    };
    tessera::spmd(|world| {
        // The squarest grid for this many ranks (a prime count gives 1 x P).
        let grid = ProcessGrid::square_ish(world)?;
        // Each rank fills only its own block; entry (i, j) is the same
        // whatever the rank count.
        let a = DistMatrix::<f64>::random(&grid, m, k, 1);
        let b = DistMatrix::<f64>::from_fn(&grid, k, n, |i, j| if i == j { 2.0 } else { 0.0 });
        let c = matmul(&a, &b)?;
        let check = verify_product(&a, &b, &c, 7)?;
        if !check.passed {
            return Err(Error::msg(format!(
                "matmul example: residual {} over {}",
                check.residual, check.threshold
            )));
        }
        // B is twice the identity (where it is square), so C = 2 A there.
        let full = c.gather_to_root(0)?;
        let full_a = a.gather_to_root(0)?;
        if let (Some(c), Some(a)) = (full, full_a) {
            let (i, j) = (m - 1, k.min(n) - 1);
            println!(
                "{m} x {k} times {k} x {n} on a {} x {} grid: residual {:.2e} (threshold {:.2}); C[{i},{j}] = {} = 2 x A[{i},{j}]",
                grid.rows(),
                grid.cols(),
                check.residual,
                check.threshold,
                c[[i, j]],
            );
            assert_eq!(c[[i, j]], 2.0 * a[[i, j]]);
        }
        Ok(())
    });
}
