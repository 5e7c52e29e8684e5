//! Generated sort keys: element `i` of the global input is a pure function
//! of `(distribution, seed, i)` (see [`crate::rng`]), so every rank count and
//! every device sees the same problem.

use rayon::prelude::*;
use serde::Serialize;

use crate::ops::sort::SortKey;
use crate::rng::{mix64, uniform};

/// Key distributions for generated input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyDist {
    /// Uniform over the type (floats: uniform in [-1, 1)).
    Uniform,
    /// Normal (floats: standard normal; integers: scaled by 10^6).
    Normal,
    /// Zipf-like: key k with probability about 1 / k^2 (k = floor(1 / u)).
    Zipf,
    /// Already sorted: key i at global index i.
    Sorted,
    /// Reverse sorted.
    Reverse,
    /// Every key equal.
    Equal,
    /// Five distinct values.
    Few,
}

named_choices!(KeyDist {
    Uniform => "uniform",
    Normal => "normal",
    Zipf => "zipf",
    Sorted => "sorted",
    Reverse => "reverse",
    Equal => "equal",
    Few => "few",
});

/// The keys at global indices `range` of a generated input: the same
/// global sequence for any rank count.
pub fn generate_keys<K: SortKey>(
    dist: KeyDist,
    n: usize,
    range: std::ops::Range<usize>,
    seed: u64,
) -> Vec<K> {
    range
        .into_par_iter()
        .map(|i| {
            let u = uniform(seed, i as u64, 17); // [-1, 1)
            let bits = u.to_bits() ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            match dist {
                KeyDist::Uniform => K::from_random(mix64(bits)),
                KeyDist::Normal => {
                    let u1 = (uniform(seed, i as u64, 18) + 1.0) / 2.0;
                    let u2 = (u + 1.0) / 2.0;
                    let z =
                        (-2.0 * (1.0 - u1).ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                    K::from_f64(if K::DTYPE.starts_with('f') {
                        z
                    } else {
                        z * 1e6
                    })
                }
                KeyDist::Zipf => K::from_f64((2.0 / (1.0 - u)).floor()),
                KeyDist::Sorted => K::from_f64(i as f64),
                KeyDist::Reverse => K::from_f64((n - 1 - i) as f64),
                KeyDist::Equal => K::from_f64(7.0),
                KeyDist::Few => K::from_f64((mix64(bits) % 5) as f64),
            }
        })
        .collect()
}
