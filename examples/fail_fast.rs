//! Tessera's failure model: one rank fails while the others wait in a
//! collective, and the whole job ends at once with that rank's message and
//! a non-zero exit status, instead of hanging.
//!
//! `fail_fast panic R` makes rank R panic; `fail_fast error R` makes it
//! return an error; `fail_fast kill R` makes rank R's process die by
//! SIGKILL while every rank is inside a 1 MiB all-reduce (as the
//! out-of-memory killer would end it; with R beyond the last rank, the ranks
//! all-reduce until the job is ended from outside); `fail_fast none` runs to
//! completion. `fail_fast disagree` makes every rank call an all-reduce
//! with a length of its own, so every rank returns the same disagreement
//! error together (printed once, by rank 0, naming the ranks);
//! `fail_fast each` makes every rank return an error of its own (each
//! printed once, as a whole line).
//! Any further arguments are ignored (tests pass a tag to find the job's
//! processes by).
//!
//! ```text
//! tessera run -n 4 ./target/release/examples/fail_fast panic 2
//! ```

use tessera::Error;
use tessera::comm::ReduceOp;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("");
    let victim = match (mode, args.get(1).map(|r| r.parse::<usize>())) {
        ("none" | "disagree" | "each", _) => usize::MAX,
        ("panic" | "error" | "kill", Some(Ok(r))) => r,
        _ => {
            eprintln!(
                "usage: fail_fast panic RANK | fail_fast error RANK | fail_fast kill RANK | fail_fast disagree | fail_fast each | fail_fast none"
            );
            std::process::exit(2);
        }
    };
    tessera::spmd(|world| {
        let rank = world.rank();
        if mode == "disagree" {
            world.all_reduce(&vec![1u32; 1 + rank % 2], ReduceOp::Sum)?;
        }
        if mode == "each" {
            return Err(Error::msg(format!(
                "fail_fast: rank {rank} of {} returns its own error",
                world.size()
            )));
        }
        if mode == "kill" {
            if rank == victim {
                std::thread::spawn(|| {
                    std::thread::sleep(std::time::Duration::from_millis(500));
                    // SAFETY: sending a signal to this very process.
                    unsafe {
                        libc::kill(libc::getpid(), libc::SIGKILL);
                    }
                });
            }
            // All-reduce until the job is ended from outside.
            let mut data = vec![1.0f64; 1 << 17];
            loop {
                world.all_reduce_in_place(&mut data, ReduceOp::Max)?;
            }
        }
        if rank == victim {
            // Let the others reach the all-reduce first.
            std::thread::sleep(std::time::Duration::from_millis(200));
            if mode == "panic" {
                panic!("rank {rank} gives up on purpose");
            }
            return Err(Error::msg(format!(
                "fail_fast: rank {rank} returns an error on purpose"
            )));
        }
        let total = world.all_reduce(&[1u32], ReduceOp::Sum)?;
        if rank == 0 {
            println!("all {} ranks reached the all-reduce", total[0]);
        }
        Ok(())
    });
}
