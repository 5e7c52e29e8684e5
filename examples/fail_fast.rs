//! Tessera's failure model: one rank fails while the others wait in a
//! collective, and the whole job ends at once with that rank's message and
//! a non-zero exit status, instead of hanging.
//!
//! `fail_fast panic R` makes rank R panic; `fail_fast error R` makes it
//! return an error; `fail_fast none` runs to completion.
//!
//! ```text
//! tessera run -n 4 ./target/release/examples/fail_fast panic 2
//! ```

use tessera::Error;
use tessera::comm::ReduceOp;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, victim) = match args.as_slice() {
        [m] if m == "none" => (m.clone(), usize::MAX),
        [m, r] if (m == "panic" || m == "error") && r.parse::<usize>().is_ok() => {
            (m.clone(), r.parse().unwrap_or(0))
        }
        _ => {
            eprintln!("usage: fail_fast panic RANK | fail_fast error RANK | fail_fast none");
            std::process::exit(2);
        }
    };
    tessera::spmd(|world| {
        let rank = world.rank();
        if rank == victim {
            // Let the others reach the all-reduce first.
            std::thread::sleep(std::time::Duration::from_millis(200));
            if mode == "panic" {
                panic!("rank {rank} gives up on purpose");
            }
            return Err(Error::Remote {
                op: "fail_fast",
                message: format!("rank {rank} returns an error on purpose"),
            });
        }
        let total = world.all_reduce(&[1u32], ReduceOp::Sum)?;
        if rank == 0 {
            println!("all {} ranks reached the all-reduce", total[0]);
        }
        Ok(())
    });
}
