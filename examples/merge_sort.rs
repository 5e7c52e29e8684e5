//! A distributed sort to copy and start from: every rank generates its share
//! of the keys, the ranks sort them together, and the result is checked
//! without gathering it.
//!
//! ```text
//! tessera run -n 4 ./target/release/examples/merge_sort 10000000 merge
//! ```

use tessera::Device;
use tessera::Error;
use tessera::distributed::sort::{SortAlgo, dist_sort, fingerprint, verify_sorted};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let algo = match args.get(1).map(|a| a.parse::<SortAlgo>()) {
        None => SortAlgo::Merge,
        Some(Ok(algo)) => algo,
        Some(Err(e)) => {
            eprintln!("usage: merge_sort [N] [merge|sample|radix]: {e}");
            std::process::exit(2);
        }
    };
    tessera::spmd(|world| {
        // This rank's share of N pseudo-random keys.
        let (rank, p) = (world.rank(), world.size());
        let mine = n / p + usize::from(rank < n % p);
        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ rank as u64;
        let keys: Vec<u64> = (0..mine)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            })
            .collect();

        let before = fingerprint(world, &keys)?;
        // The timed section: what `tessera scaling -- merge_sort N` times
        // (start-up, key generation and the check are left out).
        let ((sorted, stats), section) =
            tessera::timed(world, || dist_sort(world, keys, algo, Device::Cpu))?;
        let check = verify_sorted(world, &before, &sorted)?;
        if !check.passed() {
            return Err(Error::msg(format!("merge_sort example: {check:?}")));
        }
        if rank == 0 {
            println!(
                "{algo:?} sort of {n} u64 keys on {p} ranks in {:.3} s: sorted and a permutation of the input (local sort {:.3} s, exchange {:.3} s, merge {:.3} s on rank 0; max/mean load {:.3})",
                section.seconds,
                stats.local_sort_seconds,
                stats.exchange_seconds,
                stats.merge_seconds,
                check.max_over_mean
            );
        }
        Ok(())
    });
}
