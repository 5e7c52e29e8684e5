//! Counter-based random numbers: the one SplitMix64 of the crate.
//!
//! Generated problems (matrices, sort keys) take element `i` from a pure
//! function of `(seed, i)`, so the same global problem comes out for any rank
//! count and on any device, and results compare across both. [`SplitMix64`]
//! is the sequential stream over the same mixing function, for tests and
//! benchmarks that want one.
//!
//! SplitMix64 is Steele, Lea and Flood, "Fast splittable pseudorandom number
//! generators" (OOPSLA 2014); the output function is Stafford's Mix13.

/// The golden-ratio increment of SplitMix64.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function (Stafford's Mix13): a bijection on `u64`.
#[inline]
pub fn finish(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A 64-bit hash of `x` (one SplitMix64 step from state `x`).
#[inline]
pub fn mix64(x: u64) -> u64 {
    finish(x.wrapping_add(GOLDEN))
}

/// The top 53 bits of `z` as a uniform value in `[0, 1)`.
#[inline]
pub fn unit_f64(z: u64) -> f64 {
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A uniform value in `[-1, 1)` from a seed and two indices, the same on
/// every rank and device.
#[inline]
pub fn uniform(seed: u64, i: u64, j: u64) -> f64 {
    let z = finish(
        seed.wrapping_add(i.wrapping_mul(GOLDEN))
            .wrapping_add(j.wrapping_mul(0xc2b2_ae3d_27d4_eb4f))
            .wrapping_add(0x1656_67b1_9e37_79f9),
    );
    unit_f64(z) * 2.0 - 1.0
}

/// The sequential SplitMix64 stream: state `s`, each step adds the golden
/// increment and returns [`finish`] of the new state.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        finish(self.0)
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        unit_f64(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_is_in_range_and_depends_on_every_input() {
        let v: Vec<f64> = (0..1000).map(|i| uniform(7, i, 3)).collect();
        assert!(v.iter().all(|x| (-1.0..1.0).contains(x)));
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.1, "mean {mean}");
        assert_ne!(uniform(1, 2, 3), uniform(1, 3, 2));
        assert_ne!(uniform(1, 2, 3), uniform(2, 2, 3));
    }

    #[test]
    fn the_stream_and_the_hash_are_the_same_generator() {
        // Published first outputs of SplitMix64 from state 0.
        let mut s = SplitMix64(0);
        assert_eq!(s.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(s.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(mix64(0), 0xe220_a839_7b1d_cdaf);
        let mut t = SplitMix64(41);
        assert_eq!(t.next_u64(), mix64(41));
    }
}
