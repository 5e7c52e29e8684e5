//! Passes a token around the ring of ranks: each rank adds its rank number
//! and hands it on, so rank 0 gets back the sum 0 + 1 + ... + (P - 1) after
//! one lap. `ring [LAPS]` goes around LAPS times (default 1).
//!
//! ```text
//! tessera run -n 4 ./target/release/examples/ring 3
//! ```

use tessera::Error;

const TAG: i32 = 7;

fn main() {
    let laps: u64 = match std::env::args().nth(1).map(|s| s.parse()) {
        None => 1,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("usage: ring [LAPS], where LAPS is a whole number of laps");
            std::process::exit(2);
        }
    };
    tessera::spmd(|world| {
        let (rank, size) = (world.rank(), world.size());
        let (next, prev) = ((rank + 1) % size, (rank + size - 1) % size);
        let mut token = [0u64];
        for lap in 0..laps {
            if rank == 0 {
                // Rank 0 starts each lap and receives the token back.
                token[0] += rank as u64;
                world.send(&token, next, TAG)?;
                world.receive_into(&mut token, prev, TAG)?;
                println!("lap {}: token = {}", lap + 1, token[0]);
            } else {
                world.receive_into(&mut token, prev, TAG)?;
                token[0] += rank as u64;
                world.send(&token, next, TAG)?;
            }
        }
        if rank == 0 {
            let expected = laps * (size as u64 * (size as u64 - 1) / 2);
            if token[0] != expected {
                return Err(Error::msg(format!(
                    "ring: token {} after {laps} laps, expected {expected}",
                    token[0]
                )));
            }
            println!(
                "ring of {size} ranks: token {} after {laps} laps, as expected",
                token[0]
            );
        }
        Ok(())
    });
}
