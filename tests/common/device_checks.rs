//! Checks of the device code paths against the CPU path, shared by the
//! emulated-GPU tests (small sizes: the emulator is slow) and the real-GPU
//! tests (the sizes the GPU issue names).

use ndarray::Array2;
use tessera::Device;
use tessera::ops::gemm::{Float, gemm, gemm_reference};
use tessera::ops::sort::{SortKey, sort, sort_pairs};

/// A stream of test inputs: the library's SplitMix64.
pub use tessera::rng::SplitMix64 as Rng;

/// Uniform in `[-1, 1)` from the stream.
pub fn uniform(rng: &mut Rng) -> f64 {
    rng.next_f64() * 2.0 - 1.0
}

/// `C = alpha A B + beta C` on `device` against the f64 reference, with C
/// poisoned (NaN) when beta is 0. Bound: |C - ref| <= gamma(k + 2) (|alpha|
/// |A||B| + |beta| |C0|) per entry, gamma(j) = j u / (1 - j u), plus the
/// reference's own f64 error.
pub fn check_gemm<T: Float>(
    device: Device,
    m: usize,
    k: usize,
    n: usize,
    alpha: f64,
    beta: f64,
    seed: u64,
) {
    let mut rng = Rng(seed);
    let a = Array2::from_shape_fn((m, k), |_| T::from_f64(uniform(&mut rng)));
    let b = Array2::from_shape_fn((k, n), |_| T::from_f64(uniform(&mut rng)));
    let c0 = Array2::from_shape_fn((m, n), |_| T::from_f64(uniform(&mut rng)));
    let (al, be) = (T::from_f64(alpha), T::from_f64(beta));
    let mut got = if beta == 0.0 {
        Array2::from_elem((m, n), T::nan())
    } else {
        c0.clone()
    };
    gemm(device, al, a.view(), b.view(), be, got.view_mut()).expect("device gemm");
    let mut want = c0.clone();
    gemm_reference(al, a.view(), b.view(), be, want.view_mut());
    let (aa, ba) = (a.mapv(|x| x.abs()), b.mapv(|x| x.abs()));
    let mut scale = Array2::from_elem((m, n), T::zero());
    gemm_reference(T::one(), aa.view(), ba.view(), T::zero(), scale.view_mut());
    let u = T::EPS / 2.0;
    let g = |j: f64, u: f64| j * u / (1.0 - j * u);
    let gamma = g(k as f64 + 2.0, u) + g(k as f64 + 2.0, f64::EPSILON / 2.0);
    for ((idx, x), y) in got.indexed_iter().zip(want.iter()) {
        let bound = gamma
            * (alpha.abs() * scale[idx].as_f64() + beta.abs() * c0[idx].as_f64().abs())
            + f64::MIN_POSITIVE;
        let d = (x.as_f64() - y.as_f64()).abs();
        assert!(
            d <= bound,
            "{} gemm {m}x{k}x{n} on {device}: C{idx:?} = {x}, reference {y}, |diff| {d:e} > bound {bound:e}",
            T::DTYPE
        );
    }
}

/// Random keys of every kind, with specials for floats.
pub fn keys<K: SortKey>(n: usize, seed: u64, few: bool) -> Vec<K> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let r = if few {
                rng.next_u64() % 7
            } else {
                rng.next_u64()
            };
            let k = K::from_random(r);
            if K::DTYPE.starts_with('f') && i % 97 == 5 {
                let specials = [
                    f64::NAN,
                    -f64::NAN,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    0.0,
                    -0.0,
                    1e-310,
                ];
                K::from_f64(specials[(r % specials.len() as u64) as usize])
            } else {
                k
            }
        })
        .collect()
}

/// The device sort equals the CPU sort bit for bit, on an output poisoned
/// by a previous, different sort.
pub fn check_sort<K: SortKey>(device: Device, n: usize, seed: u64) {
    for few in [false, true] {
        let input = keys::<K>(n, seed, few);
        let mut want = input.clone();
        sort(Device::Cpu, &mut want).unwrap();
        let mut got = input.clone();
        sort(device, &mut got).expect("device sort");
        let same = got
            .iter()
            .zip(&want)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same && got.len() == n,
            "{} sort of {n} keys (few distinct: {few}) on {device} differs from the CPU",
            K::DTYPE
        );
    }
}

/// Pairs: keys sorted, values moved with them, equal keys in input order.
pub fn check_pairs<K: SortKey>(device: Device, n: usize, seed: u64) {
    let mut k = keys::<K>(n, seed, true);
    let orig = k.clone();
    let mut v: Vec<u64> = (0..n as u64).collect();
    sort_pairs(device, &mut k, &mut v, true).expect("device sort_pairs");
    for i in 0..n {
        assert_eq!(
            orig[v[i] as usize].to_bits(),
            k[i].to_bits(),
            "value {i} did not move with its key"
        );
        if i > 0 {
            assert!(
                k[i - 1].to_bits() <= k[i].to_bits(),
                "keys out of order at {i}"
            );
            if k[i - 1].to_bits() == k[i].to_bits() {
                assert!(
                    v[i - 1] < v[i],
                    "equal keys out of input order at {i}: not stable"
                );
            }
        }
    }
}
