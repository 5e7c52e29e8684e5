//! Local GEMM throughput (`C = A * B`, square, f32 and f64) through
//! `tessera::ops::gemm` on the CPU. `tessera bench gemm` gives the same
//! figures against OpenBLAS and the FMA peak.
//!
//! ```text
//! cargo bench --bench gemm
//! ```

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ndarray::Array2;
use tessera::Device;
use tessera::ops::{Float, gemm};

fn square<T: Float>(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("gemm_{}", T::DTYPE));
    group.sample_size(10);
    for n in [256usize, 512, 1024] {
        let a = Array2::from_shape_fn((n, n), |(i, j)| T::from_f64(((i + 2 * j) % 7) as f64 - 3.0));
        let b = Array2::from_shape_fn((n, n), |(i, j)| T::from_f64(((3 * i + j) % 5) as f64 - 2.0));
        let mut out = Array2::<T>::zeros((n, n));
        group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| {
                gemm(
                    Device::Cpu,
                    T::one(),
                    a.view(),
                    b.view(),
                    T::zero(),
                    out.view_mut(),
                )
                .expect("shapes conform")
            })
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    square::<f32>(c);
    square::<f64>(c);
}

criterion_group!(gemm_benches, benches);
criterion_main!(gemm_benches);
