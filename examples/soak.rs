//! Soak: thousands of mixed collectives of random sizes, every result
//! checked, with the memory (resident set) and the non-blocking requests
//! still pending reported at the start, after a warm-up, and at the end.
//!
//! ```text
//! tessera run -n 4 ./target/release/examples/soak --ops 10000 --max-bytes 16777216
//! ```
//!
//! Each operation's kind, size and root come from a generator every rank
//! runs with the same seed, so the ranks agree on them without talking.
//! Sizes: 5% of operations move 0 bytes, 1% exactly `--max-bytes`, the rest
//! a size drawn log-uniformly between 1 byte and `--max-bytes` (so small,
//! medium and large messages all occur often). Every element is a known
//! function of the operation, the sending rank and its index, so each rank
//! checks what it received against the closed form. Any wrong element ends
//! the job with the operation's number, kind and size.
//!
//! The last line, on rank 0, is machine-readable:
//! `soak: ops=N payload_bytes=B rss_start_kib=S rss_warm_kib=W rss_end_kib=E
//! rss_early_peak_kib=P1 rss_late_peak_kib=P2 pending=P` with the largest
//! resident set over the ranks at each point (the warm-up is the first
//! tenth of the operations; the peaks are those of the samples after it, up
//! to two thirds of the run and in the last third) and the most requests
//! pending on any rank at the end.

use tessera::comm::{Comm, ReduceOp};
use tessera::{Error, Result};

struct Options {
    ops: u64,
    max_bytes: u64,
    seed: u64,
}

fn parse() -> std::result::Result<Options, String> {
    let mut o = Options {
        ops: 10_000,
        max_bytes: 16 << 20,
        seed: 1,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .parse::<u64>()
            .map_err(|_| format!("{flag} takes a whole number"))?;
        match flag.as_str() {
            "--ops" => o.ops = value,
            "--max-bytes" if value > 0 => o.max_bytes = value,
            "--seed" => o.seed = value,
            _ => return Err(format!("unknown or out-of-range option {flag} {value}")),
        }
    }
    Ok(o)
}

/// SplitMix64 (the library's generator): the shared random choices.
fn mix(x: u64) -> u64 {
    tessera::rng::mix64(x)
}

/// Element `i` of what `rank` sends in an operation with key `key`.
fn value(key: u64, rank: u64, i: u64) -> u64 {
    (key ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_add(rank)
}

/// The resident set of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

const KINDS: [&str; 10] = [
    "all_reduce",
    "broadcast",
    "all_gather",
    "all_to_all",
    "reduce_scatter_block",
    "gather",
    "scatter",
    "iall_reduce x2",
    "ibroadcast",
    "scan",
];

/// Runs operation number `op` and checks its result (length and every
/// element); returns the operation's payload in bytes (its size as drawn,
/// counted once per rank).
fn one(world: &Comm, seed: u64, op: u64, max_bytes: u64) -> Result<u64> {
    let r = mix(seed ^ op.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let kind = (r % KINDS.len() as u64) as usize;
    let pick = (r >> 8) % 100;
    let bytes = match pick {
        0..=4 => 0,
        5 => max_bytes,
        _ => {
            let u = ((r >> 16) & 0xffff_ffff) as f64 / 4_294_967_296.0;
            ((max_bytes as f64).powf(u) as u64).min(max_bytes)
        }
    };
    let key = mix(r);
    let p = world.size() as u64;
    let me = world.rank() as u64;
    let root = (r >> 48) as usize % world.size();
    let words = bytes / 8;
    let per_rank = words / p;
    let wrong = |i: u64| {
        Error::msg(format!(
            "soak: operation {op} ({}, {bytes} bytes): element {i} is wrong on rank {me}",
            KINDS[kind]
        ))
    };
    let short = |len: usize, want: u64| {
        Error::msg(format!(
            "soak: operation {op} ({}, {bytes} bytes): {len} elements on rank {me}, {want} expected",
            KINDS[kind]
        ))
    };
    let mine = |rank: u64, len: u64| (0..len).map(|i| value(key, rank, i)).collect::<Vec<_>>();
    let triangle = p * (p - 1) / 2;
    match kind {
        0 => {
            let got = world.all_reduce(&mine(me, words), ReduceOp::Sum)?;
            if got.len() as u64 != words {
                return Err(short(got.len(), words));
            }
            for (i, g) in (0u64..).zip(&got) {
                if *g != value(key, 0, i).wrapping_mul(p).wrapping_add(triangle) {
                    return Err(wrong(i));
                }
            }
        }
        1 => {
            let mut buf: Vec<u8> = if world.rank() == root {
                (0..bytes).map(|i| value(key, 0, i) as u8).collect()
            } else {
                vec![0; bytes as usize]
            };
            world.broadcast(&mut buf, root)?;
            for (i, g) in (0u64..).zip(&buf) {
                if *g != value(key, 0, i) as u8 {
                    return Err(wrong(i));
                }
            }
        }
        2 | 5 => {
            let got = if kind == 2 {
                Some(world.all_gather(&mine(me, per_rank))?)
            } else {
                world.gather(&mine(me, per_rank), root)?
            };
            if let Some(got) = got {
                for (i, g) in (0u64..).zip(&got) {
                    if *g != value(key, i / per_rank.max(1), i % per_rank.max(1)) {
                        return Err(wrong(i));
                    }
                }
                if got.len() as u64 != per_rank * p {
                    return Err(short(got.len(), per_rank * p));
                }
            }
        }
        3 => {
            let c = words / p / p;
            let send: Vec<u64> = (0..p * c)
                .map(|j| value(key, me * p + j / c.max(1), j % c.max(1)))
                .collect();
            let got = world.all_to_all(&send)?;
            if got.len() as u64 != p * c {
                return Err(short(got.len(), p * c));
            }
            for (i, g) in (0u64..).zip(&got) {
                if *g != value(key, (i / c.max(1)) * p + me, i % c.max(1)) {
                    return Err(wrong(i));
                }
            }
        }
        4 => {
            let got = world.reduce_scatter_block(&mine(me, per_rank * p), ReduceOp::Sum)?;
            if got.len() as u64 != per_rank {
                return Err(short(got.len(), per_rank));
            }
            for (i, g) in (0u64..).zip(&got) {
                let j = me * per_rank + i;
                if *g != value(key, 0, j).wrapping_mul(p).wrapping_add(triangle) {
                    return Err(wrong(i));
                }
            }
        }
        6 => {
            let send = if world.rank() == root {
                (0..per_rank * p)
                    .map(|j| value(key, j / per_rank.max(1), j % per_rank.max(1)))
                    .collect()
            } else {
                Vec::new()
            };
            let got = world.scatter(&send, root)?;
            if got.len() as u64 != per_rank {
                return Err(short(got.len(), per_rank));
            }
            for (i, g) in (0u64..).zip(&got) {
                if *g != value(key, me, i) {
                    return Err(wrong(i));
                }
            }
        }
        7 => {
            // Two in flight at once, waited in the opposite order.
            let half = words / 2;
            let first = world.iall_reduce(mine(me, half), ReduceOp::Max)?;
            let second = world.iall_reduce(mine(me, words - half), ReduceOp::Min)?;
            let low = second.wait()?;
            let high = first.wait()?;
            if high.len() as u64 != half || low.len() as u64 != words - half {
                return Err(short(high.len() + low.len(), words));
            }
            for (i, g) in (0u64..).zip(&high) {
                let want = (0..p).map(|q| value(key, q, i)).max().unwrap_or(0);
                if *g != want {
                    return Err(wrong(i));
                }
            }
            for (i, g) in (0u64..).zip(&low) {
                let want = (0..p).map(|q| value(key, q, i)).min().unwrap_or(0);
                if *g != want {
                    return Err(wrong(i));
                }
            }
        }
        8 => {
            let buf = if world.rank() == root {
                mine(0, words)
            } else {
                vec![0; words as usize]
            };
            let got = world.ibroadcast(buf, root)?.wait()?;
            if got.len() as u64 != words {
                return Err(short(got.len(), words));
            }
            world.barrier()?;
            for (i, g) in (0u64..).zip(&got) {
                if *g != value(key, 0, i) {
                    return Err(wrong(i));
                }
            }
        }
        _ => {
            let got = world.scan(&mine(me, words), ReduceOp::Sum)?;
            if got.len() as u64 != words {
                return Err(short(got.len(), words));
            }
            let below = me * (me + 1) / 2;
            for (i, g) in (0u64..).zip(&got) {
                if *g != value(key, 0, i).wrapping_mul(me + 1).wrapping_add(below) {
                    return Err(wrong(i));
                }
            }
        }
    }
    Ok(bytes)
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("soak: {e}; usage: soak [--ops N] [--max-bytes B] [--seed S]");
            std::process::exit(2);
        }
    };
    tessera::spmd(|world| {
        let rss_start = rss_kib();
        let warm_up = (o.ops / 10).max(1);
        let mut rss_warm = rss_start;
        let mut trajectory = Vec::new();
        let mut bytes = 0u64;
        let t0 = tessera::comm::wtime();
        for op in 0..o.ops {
            if op == warm_up {
                rss_warm = rss_kib();
            }
            if op % warm_up == 0 {
                trajectory.push(rss_kib());
            }
            bytes += one(world, o.seed, op, o.max_bytes)?;
        }
        world.barrier()?;
        let seconds = tessera::comm::wtime() - t0;
        let rss_end = rss_kib();
        let pending = tessera::comm::pending_requests() as u64;
        let worst = world.all_reduce(&[rss_start, rss_warm, rss_end, pending], ReduceOp::Max)?;
        let total = world.all_reduce(&[bytes], ReduceOp::Sum)?[0];
        trajectory.push(rss_end);
        let trajectory = world.all_reduce(&trajectory, ReduceOp::Max)?;
        // After the warm-up: the peak of the middle and of the last third.
        let after = &trajectory[1.min(trajectory.len())..];
        let cut = after.len() * 2 / 3;
        let early_peak = after[..cut].iter().copied().max().unwrap_or(0);
        let late_peak = after[cut..].iter().copied().max().unwrap_or(0);
        if world.rank() == 0 {
            println!(
                "{} operations on {} ranks in {seconds:.1} s, every result checked",
                o.ops,
                world.size()
            );
            let mib: Vec<String> = trajectory
                .iter()
                .map(|k| format!("{:.1}", *k as f64 / 1024.0))
                .collect();
            println!(
                "resident set (MiB, largest rank) every {warm_up} operations: {}",
                mib.join(" ")
            );
            println!(
                "soak: ops={} payload_bytes={total} rss_start_kib={} rss_warm_kib={} rss_end_kib={} rss_early_peak_kib={early_peak} rss_late_peak_kib={late_peak} pending={}",
                o.ops, worst[0], worst[1], worst[2], worst[3]
            );
        }
        Ok(())
    });
}
