//! Each rank contributes a vector that is a known function of its rank; the
//! all-reduce gives every rank the element-wise sum, minimum and maximum,
//! which every rank checks against the closed form.
//!
//! The three all-reduces are the program's timed section
//! ([`tessera::timed`]), which is what `tessera scaling` measures: N
//! elements per rank make it a weak-scaling workload
//! (`tessera scaling --mode weak --ranks 1,2,4 -- allreduce 1000000`).
//!
//! ```text
//! tessera run -n 4 ./target/release/examples/allreduce 1000000
//! ```

use tessera::Error;
use tessera::comm::ReduceOp;

fn main() {
    let n: usize = match std::env::args().nth(1).map(|s| s.parse()) {
        None => 1000,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("usage: allreduce [N], where N is the vector length");
            std::process::exit(2);
        }
    };
    tessera::spmd(|world| {
        let (rank, p) = (world.rank() as u64, world.size() as u64);
        // Element i on rank r is r * n + i: sums and extremes have closed forms.
        let mine: Vec<u64> = (0..n as u64).map(|i| rank * n as u64 + i).collect();
        let ((sum, min, max), section) = tessera::timed(world, || {
            Ok((
                world.all_reduce(&mine, ReduceOp::Sum)?,
                world.all_reduce(&mine, ReduceOp::Min)?,
                world.all_reduce(&mine, ReduceOp::Max)?,
            ))
        })?;
        for i in 0..n as u64 {
            let want_sum = n as u64 * p * (p - 1) / 2 + p * i;
            let (s, lo, hi) = (sum[i as usize], min[i as usize], max[i as usize]);
            if s != want_sum || lo != i || hi != (p - 1) * n as u64 + i {
                return Err(Error::msg(format!(
                    "allreduce example: rank {rank}, element {i}: sum {s} min {lo} max {hi}, expected {want_sum} {i} {}",
                    (p - 1) * n as u64 + i
                )));
            }
        }
        let all_ok = world.all_reduce(&[1u32], ReduceOp::Sum)?[0] as u64 == p;
        if rank == 0 && all_ok {
            println!(
                "allreduce of {n} u64 over {p} ranks: sum, min and max correct on every rank ({:.1} us for the three)",
                section.seconds * 1e6
            );
        }
        Ok(())
    });
}
