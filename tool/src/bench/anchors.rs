//! The local sort's anchors from crates.io, timed on the same keys as
//! Tessera's radix sort: voracious_radix_sort (`voracious_mt_sort`) and rdst
//! (`radix_sort_unstable`, on rayon), the fastest parallel radix sorts for
//! Rust we know of.

/// Key types both crates sort.
pub trait CrateSorts: Sized {
    /// voracious_radix_sort's multi-threaded sort on `threads` threads.
    fn voracious(keys: &mut [Self], threads: usize);
    /// rdst's unstable radix sort (multi-threaded through rayon).
    fn rdst(keys: &mut [Self]);
}

macro_rules! crate_sorts {
    ($($t:ty),+) => {
        $(impl CrateSorts for $t {
            fn voracious(keys: &mut [Self], threads: usize) {
                voracious_radix_sort::RadixSort::voracious_mt_sort(keys, threads);
            }
            fn rdst(keys: &mut [Self]) {
                rdst::RadixSort::radix_sort_unstable(keys);
            }
        })+
    };
}

crate_sorts!(u32, u64, i32, i64, f32, f64);
