//! Measuring the local kernels: this CPU's FMA peak, and GEMM against
//! OpenBLAS in the same run.
//!
//! OpenBLAS is loaded at run time (`libopenblas.so.0`, Debian's
//! `libopenblas0`), only by the benchmark: Tessera itself needs no BLAS.

use std::time::Instant;

use ndarray::Array2;
use serde::Serialize;

use crate::{Error, Result};
use tessera::device::Device;
use tessera::ops::gemm::{Float, gemm};

/// Floating-point operations per second of a loop of independent fused
/// multiply-adds on `threads` threads, in GFLOP/s (2 flops per lane per FMA),
/// using the widest vector FMA this CPU has: the peak a GEMM can approach.
pub fn fma_peak_gflops<T: Float>(threads: usize) -> f64 {
    let seconds = 0.2;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build();
    let run = || {
        rayon::broadcast(|_| {
            let start = Instant::now();
            let mut flops = 0.0f64;
            while start.elapsed().as_secs_f64() < seconds {
                flops += fma_burst::<T>();
            }
            flops / start.elapsed().as_secs_f64()
        })
    };
    let rates: Vec<f64> = match pool {
        Ok(pool) => pool.install(run),
        Err(_) => run(),
    };
    rates.iter().sum::<f64>() / 1e9
}

/// One burst of FMAs; returns the flops it did.
fn fma_burst<T: Float>() -> f64 {
    const ITERS: usize = 1 << 16;
    #[cfg(target_arch = "x86_64")]
    {
        let double = std::mem::size_of::<T>() == 8;
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            let lanes = unsafe { x86::fma512(ITERS, double) };
            return 2.0 * lanes;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            let lanes = unsafe { x86::fma256(ITERS, double) };
            return 2.0 * lanes;
        }
    }
    // Portable: 8 independent scalar chains.
    let mut acc = [T::one(); 8];
    let (x, y) = (T::from_f64(0.999_999), T::from_f64(1e-7));
    for _ in 0..ITERS {
        for a in acc.iter_mut() {
            *a = a.mul_add(x, y);
        }
    }
    std::hint::black_box(acc);
    2.0 * 8.0 * ITERS as f64
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// 12 independent 512-bit FMA chains (enough to cover the FMA latency on
    /// two ports). Returns the lane-FMAs done.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn fma512(iters: usize, double: bool) -> f64 {
        if double {
            let x = _mm512_set1_pd(0.999_999);
            let y = _mm512_set1_pd(1e-7);
            let mut a = [_mm512_set1_pd(1.0); 12];
            for _ in 0..iters {
                for v in a.iter_mut() {
                    *v = _mm512_fmadd_pd(*v, x, y);
                }
            }
            std::hint::black_box(a);
            (iters * 12 * 8) as f64
        } else {
            let x = _mm512_set1_ps(0.999_999);
            let y = _mm512_set1_ps(1e-7);
            let mut a = [_mm512_set1_ps(1.0); 12];
            for _ in 0..iters {
                for v in a.iter_mut() {
                    *v = _mm512_fmadd_ps(*v, x, y);
                }
            }
            std::hint::black_box(a);
            (iters * 12 * 16) as f64
        }
    }

    /// 12 independent 256-bit FMA chains. Returns the lane-FMAs done.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn fma256(iters: usize, double: bool) -> f64 {
        if double {
            let x = _mm256_set1_pd(0.999_999);
            let y = _mm256_set1_pd(1e-7);
            let mut a = [_mm256_set1_pd(1.0); 12];
            for _ in 0..iters {
                for v in a.iter_mut() {
                    *v = _mm256_fmadd_pd(*v, x, y);
                }
            }
            std::hint::black_box(a);
            (iters * 12 * 4) as f64
        } else {
            let x = _mm256_set1_ps(0.999_999);
            let y = _mm256_set1_ps(1e-7);
            let mut a = [_mm256_set1_ps(1.0); 12];
            for _ in 0..iters {
                for v in a.iter_mut() {
                    *v = _mm256_fmadd_ps(*v, x, y);
                }
            }
            std::hint::black_box(a);
            (iters * 12 * 8) as f64
        }
    }
}

type CblasGemm<T> = unsafe extern "C" fn(
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    T,
    *const T,
    i32,
    *const T,
    i32,
    T,
    *mut T,
    i32,
);

/// OpenBLAS, loaded at run time.
pub struct OpenBlas {
    lib: libloading::Library,
}

impl OpenBlas {
    /// Loads `libopenblas.so.0` (or `libopenblas.so`), or says why not.
    pub fn load() -> std::result::Result<OpenBlas, String> {
        for name in ["libopenblas.so.0", "libopenblas.so"] {
            // SAFETY: loading OpenBLAS runs its initialisers, which have no
            // preconditions.
            if let Ok(lib) = unsafe { libloading::Library::new(name) } {
                // The calls below pass 32-bit integers: refuse an ILP64 build.
                // SAFETY: `char *openblas_get_config(void)` returns a static
                // NUL-terminated string.
                let config = unsafe {
                    lib.get::<unsafe extern "C" fn() -> *const std::os::raw::c_char>(
                        b"openblas_get_config\0",
                    )
                    .ok()
                    .map(|f| std::ffi::CStr::from_ptr(f()).to_string_lossy().into_owned())
                };
                if config.as_deref().is_some_and(|c| c.contains("USE64BITINT")) {
                    return Err(format!(
                        "{name} is an ILP64 (64-bit integer) build; the anchor needs the LP64 one"
                    ));
                }
                return Ok(OpenBlas { lib });
            }
        }
        Err("OpenBLAS not found (install Debian's libopenblas0 for the anchor)".into())
    }

    /// Sets OpenBLAS's thread count.
    pub fn set_threads(&self, threads: usize) {
        // SAFETY: the symbol is OpenBLAS's `void openblas_set_num_threads(int)`.
        unsafe {
            if let Ok(f) = self
                .lib
                .get::<unsafe extern "C" fn(i32)>(b"openblas_set_num_threads\0")
            {
                f(threads as i32);
            }
        }
    }

    /// `C = A * B` for square row-major n x n matrices.
    pub fn gemm<T: Float>(
        &self,
        n: usize,
        a: &[T],
        b: &[T],
        c: &mut [T],
    ) -> std::result::Result<(), String> {
        assert!(a.len() == n * n && b.len() == n * n && c.len() == n * n);
        let n =
            i32::try_from(n).map_err(|_| format!("n = {n} is beyond OpenBLAS's 32-bit sizes"))?;
        let name: &[u8] = if T::DTYPE == "f32" {
            b"cblas_sgemm\0"
        } else {
            b"cblas_dgemm\0"
        };
        // SAFETY: cblas_{s,d}gemm have this C signature for T = f32, f64; the
        // buffers hold n * n elements each; CblasRowMajor = 101, CblasNoTrans = 111.
        unsafe {
            let f = self
                .lib
                .get::<CblasGemm<T>>(name)
                .map_err(|e| format!("OpenBLAS lacks {}: {e}", String::from_utf8_lossy(name)))?;
            f(
                101,
                111,
                111,
                n,
                n,
                n,
                T::one(),
                a.as_ptr(),
                n,
                b.as_ptr(),
                n,
                T::zero(),
                c.as_mut_ptr(),
                n,
            );
        }
        Ok(())
    }
}

/// One size's GEMM figures.
#[derive(Debug, Clone, Serialize)]
pub struct GemmRow {
    /// Matrix order.
    pub n: usize,
    /// Tessera's GFLOP/s (best of the timed runs).
    pub gflops: f64,
    /// `gflops` over the FMA peak.
    pub peak_fraction: f64,
    /// OpenBLAS's GFLOP/s on the same matrices, if it could be loaded.
    pub openblas_gflops: Option<f64>,
    /// `gflops / openblas_gflops`.
    pub ratio_vs_openblas: Option<f64>,
}

/// Seconds of the fastest of several runs of `f` (at least 3, and at least
/// about 1 second in all).
fn best_seconds(mut f: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    let start = Instant::now();
    let mut runs = 0;
    while runs < 3 || (start.elapsed().as_secs_f64() < 1.0 && runs < 50) {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
        runs += 1;
    }
    best
}

/// Times `C = A * B` for each order in `sizes`, against OpenBLAS.
pub fn bench_gemm<T: Float>(sizes: &[usize], threads: usize, peak: f64) -> Result<Vec<GemmRow>> {
    let blas = OpenBlas::load().ok();
    if let Some(b) = &blas {
        b.set_threads(threads);
    }
    let mut rows = Vec::new();
    for &n in sizes {
        if n == 0 {
            return Err(Error::Usage("--n values must be positive".into()));
        }
        let a = Array2::from_shape_fn((n, n), |(i, j)| {
            T::from_f64(((i * 7 + j * 13) % 17) as f64 / 17.0 - 0.5)
        });
        let b = Array2::from_shape_fn((n, n), |(i, j)| {
            T::from_f64(((i * 11 + j * 5) % 19) as f64 / 19.0 - 0.5)
        });
        let mut c = Array2::<T>::zeros((n, n));
        let flops = 2.0 * (n as f64).powi(3);
        let ours = best_seconds(|| {
            gemm(
                Device::Cpu,
                T::one(),
                a.view(),
                b.view(),
                T::zero(),
                c.view_mut(),
            )
            .expect("shapes conform");
        });
        let theirs = blas.as_ref().map(|blas| {
            let (a, b) = (
                a.as_slice().expect("standard layout"),
                b.as_slice().expect("standard layout"),
            );
            let mut c2 = vec![T::zero(); n * n];
            best_seconds(|| {
                let _ = blas.gemm(n, a, b, &mut c2);
            })
        });
        let gflops = flops / ours / 1e9;
        let openblas_gflops = theirs.map(|t| flops / t / 1e9);
        rows.push(GemmRow {
            n,
            gflops,
            peak_fraction: gflops / peak,
            openblas_gflops,
            ratio_vs_openblas: openblas_gflops.map(|o| gflops / o),
        });
    }
    Ok(rows)
}

/// One size's sort figures.
#[derive(Debug, Clone, Serialize)]
pub struct SortRow {
    /// Keys sorted.
    pub n: usize,
    /// Tessera's keys per second (best of the timed runs).
    pub keys_per_second: f64,
    /// rayon's `par_sort_unstable` on the same keys, keys per second.
    pub rayon_keys_per_second: f64,
    /// `keys_per_second / rayon_keys_per_second`.
    pub ratio_vs_rayon: f64,
    /// voracious_radix_sort's `voracious_mt_sort` on the same keys, keys per second.
    pub voracious_keys_per_second: f64,
    /// rdst's `radix_sort_unstable` on the same keys, keys per second.
    pub rdst_keys_per_second: f64,
    /// `keys_per_second` over the faster of the two crates.
    pub ratio_vs_best_crate: f64,
}

/// Times [`tessera::ops::sort::sort`] against rayon's `par_sort_unstable`
/// (`total_cmp` for floats, the same total order), voracious_radix_sort and
/// rdst on the same uniformly random keys (`tessera sort --dist uniform`:
/// all bits for integers, [-1, 1) for floats), and checks that all four
/// agree key by key.
pub fn bench_sort<K: tessera::ops::sort::SortKey + super::anchors::CrateSorts>(
    sizes: &[usize],
) -> Result<Vec<SortRow>> {
    use tessera::ops::sort::sort;
    let mut rows = Vec::new();
    for &n in sizes {
        if n == 0 {
            return Err(Error::Usage("--n values must be positive".into()));
        }
        let input: Vec<K> = tessera::ops::generate::generate_keys(
            tessera::ops::generate::KeyDist::Uniform,
            n,
            0..n,
            0x5047,
        );
        let runs = if n >= 50_000_000 { 2 } else { 3 };
        let mut ours = f64::INFINITY;
        let mut theirs = f64::INFINITY;
        let (mut voracious, mut rdst) = (f64::INFINITY, f64::INFINITY);
        let threads = rayon::current_num_threads();
        for _ in 0..runs {
            let mut v = input.clone();
            let t = Instant::now();
            sort(Device::Cpu, &mut v)?;
            ours = ours.min(t.elapsed().as_secs_f64());
            let mut w = input.clone();
            let t = Instant::now();
            K::rayon_sort(&mut w);
            theirs = theirs.min(t.elapsed().as_secs_f64());
            if v.iter().zip(&w).any(|(a, b)| a.to_bits() != b.to_bits()) {
                return Err(tessera::Error::msg(
                    "bench sort: the radix sort and rayon disagree (a bug: please report it)",
                )
                .into());
            }
            let mut x = input.clone();
            let t = Instant::now();
            K::voracious(&mut x, threads);
            voracious = voracious.min(t.elapsed().as_secs_f64());
            let mut y = input.clone();
            let t = Instant::now();
            K::rdst(&mut y);
            rdst = rdst.min(t.elapsed().as_secs_f64());
            for (name, sorted) in [("voracious_radix_sort", &x), ("rdst", &y)] {
                if v.iter()
                    .zip(sorted)
                    .any(|(a, b)| a.to_bits() != b.to_bits())
                {
                    return Err(tessera::Error::msg(format!(
                        "bench sort: {name} and Tessera's sort disagree on these keys"
                    ))
                    .into());
                }
            }
        }
        rows.push(SortRow {
            n,
            keys_per_second: n as f64 / ours,
            rayon_keys_per_second: n as f64 / theirs,
            ratio_vs_rayon: theirs / ours,
            voracious_keys_per_second: n as f64 / voracious,
            rdst_keys_per_second: n as f64 / rdst,
            ratio_vs_best_crate: voracious.min(rdst) / ours,
        });
    }
    Ok(rows)
}

/// One case of `tessera bench merge`.
#[derive(Debug, Clone, Serialize)]
pub struct MergeRow {
    /// Keys in all.
    pub n: usize,
    /// Sorted runs merged.
    pub runs: usize,
    /// Keys merged per second (best of the timed runs).
    pub keys_per_second: f64,
    /// Bytes read plus bytes written per second by the merge.
    pub gb_per_second: f64,
    /// The same for a parallel copy of the same keys into a buffer of the
    /// same size, in the same run: the memory speed a merge can reach.
    pub copy_gb_per_second: f64,
    /// `gb_per_second / copy_gb_per_second`.
    pub ratio_vs_copy: f64,
}

/// Times [`tessera::ops::merge::merge_runs`] of `runs` sorted runs of
/// uniform keys (`n` in all) against a parallel copy of the same keys into
/// an allocated buffer (what any merge must at least do: read every key and
/// write it once), and checks the merge against a sort of the keys.
pub fn bench_merge<K: tessera::ops::sort::SortKey>(
    sizes: &[usize],
    runs: &[usize],
) -> Result<Vec<MergeRow>> {
    use rayon::prelude::*;
    use tessera::ops::merge::merge_runs;
    let mut rows = Vec::new();
    for &n in sizes {
        let keys: Vec<K> = tessera::ops::generate::generate_keys(
            tessera::ops::generate::KeyDist::Uniform,
            n,
            0..n,
            0x3e76,
        );
        let mut want: Vec<K::Bits> = keys.iter().map(|k| k.to_bits()).collect();
        want.par_sort_unstable();
        for &p in runs {
            let mut sorted = keys.clone();
            let bounds: Vec<usize> = (0..=p).map(|i| n * i / p).collect();
            let mut rest = &mut sorted[..];
            let mut pieces = Vec::with_capacity(p);
            for w in bounds.windows(2) {
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(w[1] - w[0]);
                pieces.push(head);
                rest = tail;
            }
            pieces
                .par_iter_mut()
                .for_each(|r| r.sort_unstable_by_key(|k| k.to_bits()));
            let parts: Vec<&[K]> = bounds.windows(2).map(|w| &sorted[w[0]..w[1]]).collect();
            let (mut merge_s, mut copy_s) = (f64::INFINITY, f64::INFINITY);
            for _ in 0..3 {
                let t = Instant::now();
                let merged = merge_runs(&parts);
                merge_s = merge_s.min(t.elapsed().as_secs_f64());
                if merged.iter().zip(&want).any(|(a, b)| a.to_bits() != *b) {
                    return Err(tessera::Error::msg(
                        "bench merge: the merge is not the sorted keys (a bug: please report it)",
                    )
                    .into());
                }
                drop(merged);
                let t = Instant::now();
                let mut copy = vec![K::zeroed(); n];
                copy.par_chunks_mut(1 << 16)
                    .zip(sorted.par_chunks(1 << 16))
                    .for_each(|(d, s)| d.copy_from_slice(s));
                copy_s = copy_s.min(t.elapsed().as_secs_f64());
                std::hint::black_box(&copy);
            }
            let bytes = 2.0 * (n * size_of::<K>()) as f64;
            rows.push(MergeRow {
                n,
                runs: p,
                keys_per_second: n as f64 / merge_s,
                gb_per_second: bytes / merge_s / 1e9,
                copy_gb_per_second: bytes / copy_s / 1e9,
                ratio_vs_copy: copy_s / merge_s,
            });
        }
    }
    Ok(rows)
}

/// One size of `tessera bench gemm --device cuda`.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceGemmRow {
    /// Matrix order.
    pub n: usize,
    /// Tessera's kernel, TFLOP/s (best of the runs).
    pub tessera_tflops: f64,
    /// cuBLAS on the same matrices, TFLOP/s; `None` where it is unavailable.
    pub cublas_tflops: Option<f64>,
    /// tessera / cublas.
    pub ratio: Option<f64>,
    /// Largest |tessera - cublas| over the largest |cublas| entry.
    pub max_rel_diff: Option<f64>,
}

/// Times `C = A B` on a GPU-like device for each order in `sizes`, with the
/// operands in device memory: Tessera's kernel, then cuBLAS on the same
/// matrices (the anchor), best of three runs after a warm-up.
pub fn bench_gemm_device<T: Float>(device: Device, sizes: &[usize]) -> Result<Vec<DeviceGemmRow>> {
    use tessera::device::DeviceBuffer;
    use tessera::ops::gemm::{DeviceMatrix, GemmBackend, gemm_device};
    let mut rows = Vec::new();
    for &n in sizes {
        if n == 0 {
            return Err(Error::Usage("--n values must be positive".into()));
        }
        let fill: Vec<T> = (0..n * n)
            .map(|i| T::from_f64(((i * 7 + i / n * 13) % 17) as f64 / 17.0 - 0.5))
            .collect();
        let a = DeviceBuffer::from_slice(device, &fill)?;
        let b = DeviceBuffer::from_slice(device, &fill)?;
        let mut c = DeviceBuffer::<T>::uninit(device, n * n)?;
        let flops = 2.0 * (n as f64).powi(3);
        let time = |backend: GemmBackend, c: &mut DeviceBuffer<T>| -> Result<f64> {
            let mut best = f64::INFINITY;
            for run in 0..4 {
                c.synchronize()?;
                let t = Instant::now();
                gemm_device(
                    backend,
                    T::one(),
                    DeviceMatrix::new(&a, n, n),
                    DeviceMatrix::new(&b, n, n),
                    T::zero(),
                    c,
                    (0, n),
                )?;
                c.synchronize()?;
                if run > 0 {
                    best = best.min(t.elapsed().as_secs_f64());
                }
            }
            Ok(flops / best / 1e12)
        };
        let tessera_tflops = time(GemmBackend::Tessera, &mut c)?;
        let ours = c.to_vec()?;
        let (cublas_tflops, max_rel_diff) = match time(GemmBackend::Cublas, &mut c) {
            Ok(t) => {
                let theirs = c.to_vec()?;
                let scale = theirs.iter().fold(0.0f64, |m, x| m.max(x.as_f64().abs()));
                let diff = ours
                    .iter()
                    .zip(&theirs)
                    .fold(0.0f64, |m, (x, y)| m.max((x.as_f64() - y.as_f64()).abs()));
                (Some(t), Some(diff / scale.max(f64::MIN_POSITIVE)))
            }
            Err(_) => (None, None),
        };
        rows.push(DeviceGemmRow {
            n,
            tessera_tflops,
            cublas_tflops,
            ratio: cublas_tflops.map(|c| tessera_tflops / c),
            max_rel_diff,
        });
    }
    Ok(rows)
}

/// One size of `tessera bench sort --device cuda`.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceSortRow {
    /// Keys.
    pub n: usize,
    /// Keys per second sorted in device memory (best of the runs).
    pub device_keys_per_s: f64,
    /// Keys per second including the copies to and from the device.
    pub with_copies_keys_per_s: f64,
    /// (key, u32 index) pairs per second sorted in device memory, the
    /// index moving with its key (an argsort).
    pub pairs_keys_per_s: f64,
    /// The result equals the CPU sort of the same keys, and the pairs'
    /// indices are the stable sorting permutation.
    pub matches_cpu: bool,
}

/// Times the device radix sort on uniform keys, in device memory and with
/// the host copies, and checks the result against the CPU path.
pub fn bench_sort_device<K: tessera::ops::sort::SortKey>(
    device: Device,
    sizes: &[usize],
) -> Result<Vec<DeviceSortRow>> {
    use tessera::device::DeviceBuffer;
    use tessera::ops::sort::{sort, sort_device};
    let mut rows = Vec::new();
    for &n in sizes {
        if n == 0 {
            return Err(Error::Usage("--n values must be positive".into()));
        }
        let input: Vec<K> = tessera::ops::generate::generate_keys(
            tessera::ops::generate::KeyDist::Uniform,
            n,
            0..n,
            0x5047,
        );
        let mut best = f64::INFINITY;
        let mut dk = DeviceBuffer::from_slice(device, &input)?;
        for run in 0..4 {
            dk.upload(&input)?;
            dk.synchronize()?;
            let t = Instant::now();
            sort_device(&mut dk, None)?;
            dk.synchronize()?;
            if run > 0 {
                best = best.min(t.elapsed().as_secs_f64());
            }
        }
        // Pairs: the keys with their positions, which must come out as the
        // stable sorting permutation.
        let positions: Vec<u32> = (0..n as u32).collect();
        let mut pk = DeviceBuffer::from_slice(device, &input)?;
        let mut pv = DeviceBuffer::from_slice(device, &positions)?;
        let mut best_pairs = f64::INFINITY;
        for run in 0..4 {
            pk.upload(&input)?;
            pv.upload(&positions)?;
            pv.synchronize()?;
            let t = Instant::now();
            sort_device(&mut pk, Some(&mut pv))?;
            pk.synchronize()?;
            if run > 0 {
                best_pairs = best_pairs.min(t.elapsed().as_secs_f64());
            }
        }
        let (pair_keys, order) = (pk.to_vec()?, pv.to_vec()?);
        let pairs_right = order.iter().zip(&pair_keys).all(|(&i, k)| {
            input
                .get(i as usize)
                .is_some_and(|x| x.to_bits() == k.to_bits())
        }) && order
            .windows(2)
            .zip(pair_keys.windows(2))
            .all(|(i, k)| k[0].to_bits() != k[1].to_bits() || i[0] < i[1]);
        let mut with_copies = input.clone();
        let t = Instant::now();
        sort(device, &mut with_copies)?;
        let copies = t.elapsed().as_secs_f64();
        let mut expected = input;
        sort(Device::Cpu, &mut expected)?;
        let got = dk.to_vec()?;
        let same = |x: &[K], y: &[K]| x.iter().zip(y).all(|(a, b)| a.to_bits() == b.to_bits());
        rows.push(DeviceSortRow {
            n,
            device_keys_per_s: n as f64 / best,
            with_copies_keys_per_s: n as f64 / copies,
            pairs_keys_per_s: n as f64 / best_pairs,
            matches_cpu: same(&got, &expected)
                && same(&with_copies, &expected)
                && same(&pair_keys, &expected)
                && pairs_right,
        });
    }
    Ok(rows)
}

/// One size of `tessera bench copy`, rates in GB/s (10^9 bytes per second).
#[derive(Debug, Clone, Serialize)]
pub struct CopyRow {
    /// Size in MiB.
    pub mib: usize,
    /// The driver, host to device from pinned memory.
    pub h2d_pinned_gbs: f64,
    /// The driver, host to device from pageable memory.
    pub h2d_pageable_gbs: f64,
    /// Tessera, a `Vec` uploaded into a `DeviceBuffer`.
    pub h2d_tessera_gbs: f64,
    /// The driver, device to host into pinned memory.
    pub d2h_pinned_gbs: f64,
    /// The driver, device to host into pageable memory.
    pub d2h_pageable_gbs: f64,
    /// Tessera, a `DeviceBuffer` downloaded into a `Vec`.
    pub d2h_tessera_gbs: f64,
    /// Tessera, device to device (read and write counted once).
    pub d2d_tessera_gbs: f64,
    /// The data came back unchanged.
    pub round_trip_exact: bool,
}

/// Copies of each size in MiB, Tessera's against the driver's, best of 5
/// after a warm-up.
pub fn bench_copy(device: Device, sizes_mib: &[usize]) -> Result<Vec<CopyRow>> {
    let mut rows = Vec::with_capacity(sizes_mib.len());
    for &mib in sizes_mib {
        let bytes = mib << 20;
        let raw = tessera::device::raw_copies(device, bytes, 5)?;
        let host: Vec<u64> = (0..bytes / 8)
            .map(|i| tessera::rng::mix64(i as u64))
            .collect();
        let mut back = vec![0u64; host.len()];
        let mut buf = tessera::device::DeviceBuffer::<u64>::uninit(device, host.len())?;
        let mut other = tessera::device::DeviceBuffer::<u64>::uninit(device, host.len())?;
        let (mut up, mut down, mut d2d) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
        for rep in 0..6 {
            let t = Instant::now();
            buf.upload(&host)?;
            buf.synchronize()?;
            let u = t.elapsed().as_secs_f64();
            let t = Instant::now();
            other.copy_from(0, &buf, 0..host.len())?;
            other.synchronize()?;
            let c = t.elapsed().as_secs_f64();
            let t = Instant::now();
            other.download(&mut back)?;
            let d = t.elapsed().as_secs_f64();
            if rep > 0 {
                up = up.min(u);
                d2d = d2d.min(c);
                down = down.min(d);
            }
        }
        let gbs = |s: f64| bytes as f64 / s / 1e9;
        rows.push(CopyRow {
            mib,
            h2d_pinned_gbs: gbs(raw.h2d_pinned),
            h2d_pageable_gbs: gbs(raw.h2d_pageable),
            h2d_tessera_gbs: gbs(up),
            d2h_pinned_gbs: gbs(raw.d2h_pinned),
            d2h_pageable_gbs: gbs(raw.d2h_pageable),
            d2h_tessera_gbs: gbs(down),
            d2d_tessera_gbs: gbs(d2d),
            round_trip_exact: back == host,
        });
    }
    Ok(rows)
}
