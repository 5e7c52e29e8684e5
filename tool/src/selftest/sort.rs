//! The distributed sorts against a serial sort.

use tessera::Error;
use tessera::comm::{Comm, ReduceOp};

use super::{Outcome, err};

pub(super) fn sort_check(c: &Comm) -> Outcome {
    use tessera::distributed::sort::SortAlgo;
    use tessera::ops::generate::KeyDist;
    let p = c.size();
    // From empty to several chunks of 2^16 keys per rank (the exchange
    // classifies keys chunk by chunk).
    let sizes = [0, 1, 7, 48 * p * p + 5];
    let dists = [
        KeyDist::Uniform,
        KeyDist::Normal,
        KeyDist::Zipf,
        KeyDist::Sorted,
        KeyDist::Reverse,
        KeyDist::Equal,
        KeyDist::Few,
    ];
    let big = sizes[sizes.len() - 1];
    for &algo in SortAlgo::ALL {
        // Every key type at every size, and with negative keys; every
        // distribution for an integer and a float type.
        let mut cases: Vec<(KeyDist, usize, &[&str])> = sizes
            .iter()
            .map(|&n| (KeyDist::Uniform, n, ALL_TYPES))
            .collect();
        cases.push((KeyDist::Normal, big, ALL_TYPES));
        cases.extend(dists.iter().map(|&d| (d, big, &["u32", "f64"][..])));
        cases.extend(dists.iter().map(|&d| (d, 7, &["u64"][..])));
        for (dist, n, types) in cases {
            let place = tessera::distributed::block_range(n, p, c.rank());
            let keys = |seed| (dist, n, place.clone(), seed);
            for &t in types {
                match t {
                    "u32" => sort_case::<u32>(c, algo, &generated(keys(1)))?,
                    "u64" => sort_case::<u64>(c, algo, &generated(keys(2)))?,
                    "i32" => sort_case::<i32>(c, algo, &generated(keys(3)))?,
                    "i64" => sort_case::<i64>(c, algo, &generated(keys(4)))?,
                    "f32" => sort_case::<f32>(c, algo, &generated(keys(5)))?,
                    _ => sort_case::<f64>(c, algo, &generated(keys(6)))?,
                }
            }
        }
        // Every key on rank 0, none elsewhere.
        let lopsided: Vec<u64> = if c.rank() == 0 {
            tessera::ops::generate::generate_keys(KeyDist::Uniform, 5000, 0..5000, 7)
        } else {
            Vec::new()
        };
        sort_case::<u64>(c, algo, &lopsided)?;
        // The same with enough keys for sample sort's bucketed path (64 per
        // bucket and rank): every other rank receives without sending.
        let lopsided: Vec<u64> = if c.rank() == 0 {
            tessera::ops::generate::generate_keys(KeyDist::Uniform, 40_000 * p, 0..40_000 * p, 7)
        } else {
            Vec::new()
        };
        sort_case::<u64>(c, algo, &lopsided)?;
        // Several chunks of 2^16 keys per rank (the exchange classifies
        // keys chunk by chunk), with many ties.
        let n = 140_001 * p;
        let place = tessera::distributed::block_range(n, p, c.rank());
        sort_case::<u32>(
            c,
            algo,
            &tessera::ops::generate::generate_keys(KeyDist::Few, n, place.clone(), 8),
        )?;
        sort_case::<f64>(
            c,
            algo,
            &tessera::ops::generate::generate_keys(KeyDist::Normal, n, place.clone(), 9),
        )?;
        // Floats that crowd a few exponents but spread over the bits below:
        // sample sort's first pass buckets them by ranges of 16-bit prefixes.
        sort_case::<f32>(
            c,
            algo,
            &tessera::ops::generate::generate_keys(KeyDist::Uniform, n, place, 10),
        )?;
        // NaN, infinities and both zeros.
        let specials = [
            f64::NAN,
            -0.0,
            0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -f64::NAN,
            1.0,
            -1.0,
        ];
        let mine: Vec<f64> = (0..40)
            .map(|i| specials[(i + c.rank()) % specials.len()])
            .collect();
        sort_case::<f64>(c, algo, &mine)?;
        // Keys at the top of their type, where a boundary search must not
        // step past the largest value.
        let top: Vec<u64> = (0..37 + c.rank())
            .map(|i| {
                if i % 9 == 0 {
                    0
                } else {
                    u64::MAX - (i % 2) as u64
                }
            })
            .collect();
        sort_case::<u64>(c, algo, &top)?;
        let top: Vec<u32> = (0..29 + 3 * c.rank())
            .map(|i| u32::MAX - (i % 3) as u32)
            .collect();
        sort_case::<u32>(c, algo, &top)?;
    }
    // Ranks that sort different key types of the same size get an error.
    if p > 1 {
        let res = if c.rank() == 0 {
            tessera::distributed::sort::dist_sort(
                c,
                vec![1.0f64],
                SortAlgo::Sample,
                tessera::Device::Cpu,
            )
            .map(drop)
        } else {
            tessera::distributed::sort::dist_sort(
                c,
                vec![1u64],
                SortAlgo::Sample,
                tessera::Device::Cpu,
            )
            .map(drop)
        };
        ensure!(
            matches!(res, Err(Error::Disagreement { .. })),
            "f64 and u64 keys mixed: {res:?}"
        );
    }
    // The balance is exact whatever the keys: every rank ends with its
    // balanced block, for all-equal keys too. (The radix sample sort's
    // buckets, about n / 256 keys each and at least 4096, are many here,
    // and bins holding a boundary value are split between ranks.)
    for (algo, dist) in [SortAlgo::Sample, SortAlgo::Radix]
        .into_iter()
        .flat_map(|a| {
            [
                KeyDist::Equal,
                KeyDist::Few,
                KeyDist::Zipf,
                KeyDist::Uniform,
            ]
            .map(|d| (a, d))
        })
    {
        // Uniform keys also with their low 16 bits cleared: copies of each
        // value spread over every bucket of the first pass, and the
        // boundaries fall among them. With their top 4 bits cleared (and
        // then also their low 16 bits, for ties at the lowest value of a
        // prefix) they crowd a few values of the top 9 bits, and sample
        // sort buckets them by 16-bit prefixes.
        let masks: &[u32] = if dist == KeyDist::Uniform {
            &[u32::MAX, !0xffff, u32::MAX >> 4, (u32::MAX >> 4) & !0xffff]
        } else {
            &[u32::MAX]
        };
        for (n, &mask) in [2000 * p + p / 2, 140_003 * p]
            .into_iter()
            .flat_map(|n| masks.iter().map(move |m| (n, m)))
        {
            let keys: Vec<u32> = tessera::ops::generate::generate_keys::<u32>(
                dist,
                n,
                tessera::distributed::block_range(n, p, c.rank()),
                1,
            )
            .into_iter()
            .map(|k| k & mask)
            .collect();
            let print = tessera::distributed::sort::fingerprint(c, &keys).map_err(err)?;
            let (sorted, _) =
                tessera::distributed::sort::dist_sort(c, keys, algo, tessera::Device::Cpu)
                    .map_err(err)?;
            let verdict =
                tessera::distributed::sort::verify_sorted(c, &print, &sorted).map_err(err)?;
            ensure!(
                verdict.passed(),
                "{algo:?} sort of {n} {dist} keys (mask {mask:x}): {verdict:?}"
            );
            let want = tessera::distributed::block_range(n, p, c.rank()).len();
            let wrong = c
                .all_reduce(&[(sorted.len() != want) as u64], ReduceOp::Max)
                .map_err(err)?[0];
            ensure!(
                wrong == 0,
                "{algo:?} sort of {dist} keys, n = {n}: rank {} holds {} keys, not its block of {want}",
                c.rank(),
                sorted.len()
            );
        }
    }
    Ok(())
}

/// The key types the sorts take.
const ALL_TYPES: &[&str] = &tessera::distributed::sort::KEY_TYPES;

/// Generated keys: distribution, total, this rank's positions, seed.
fn generated<K: tessera::ops::sort::SortKey>(
    (dist, n, place, seed): (
        tessera::ops::generate::KeyDist,
        usize,
        std::ops::Range<usize>,
        u64,
    ),
) -> Vec<K> {
    tessera::ops::generate::generate_keys(dist, n, place, seed)
}

fn sort_case<K: tessera::ops::sort::SortKey>(
    c: &Comm,
    algo: tessera::distributed::sort::SortAlgo,
    keys: &[K],
) -> Outcome {
    use tessera::distributed::sort::{dist_sort, fingerprint, verify_sorted};
    let what = format!("{algo:?} sort of {} keys", K::DTYPE);
    let before = fingerprint(c, keys).map_err(err)?;
    let (sorted, _) = dist_sort(c, keys.to_vec(), algo, tessera::Device::Cpu)
        .map_err(|e| format!("{what}: {e}"))?;
    let check = verify_sorted(c, &before, &sorted).map_err(err)?;
    ensure!(check.passed(), "{what}: verification failed: {check:?}");
    // Against the standard library's sort of the gathered input.
    let input = c.gather_v(keys, 0).map_err(err)?;
    let output = c.gather_v(&sorted, 0).map_err(err)?;
    if let (Some(input), Some(output)) = (input, output) {
        let mut want = input.data;
        want.sort_unstable_by_key(|k| k.to_bits());
        ensure!(
            want.len() == output.data.len(),
            "{what}: {} keys in, {} out",
            want.len(),
            output.data.len()
        );
        let same = want
            .iter()
            .zip(&output.data)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        ensure!(
            same,
            "{what}: differs from sort_unstable of the gathered input"
        );
    }
    Ok(())
}
