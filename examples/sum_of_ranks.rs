//! The README's first program, as it is there (a test compares the two):
//! every rank contributes its rank number and rank 0 prints the sum.
//!
//! ```text
//! tessera run -n 4 ./target/release/examples/sum_of_ranks
//! ```

use tessera::comm::ReduceOp;

fn main() {
    tessera::spmd(|world| {
        let mine = [world.rank() as f64];
        let total = world.all_reduce(&mine, ReduceOp::Sum)?;
        if world.rank() == 0 {
            println!("sum of ranks over {} ranks = {}", world.size(), total[0]);
        }
        Ok(())
    });
}
