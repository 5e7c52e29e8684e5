//! Per-call overhead of Tessera's collectives against rsmpi on one rank
//! (MPI singleton): what the typed wrapper and the agreement check cost when
//! the network costs nothing. Multi-rank figures come from `tessera bench`.
//!
//! `tessera_unchecked` runs with tracing off (every span costs one relaxed
//! atomic load); `tessera_unchecked_traced` records a span per call, so the
//! difference is what recording costs.
//!
//! ```text
//! cargo bench --bench comm_overhead
//! ```

use criterion::{Criterion, criterion_group, criterion_main};
use mpi::collective::{CommunicatorCollectives, SystemOperation};
use tessera::Universe;
use tessera::comm::ReduceOp;

fn allreduce_overhead(c: &mut Criterion) {
    let universe = Universe::init().expect("MPI initialises");
    let world = universe.world();
    let unchecked = world.unchecked();
    let send = [1.0f64; 8];
    let mut recv = [0.0f64; 8];
    let mut group = c.benchmark_group("all_reduce_8xf64_one_rank");
    group.bench_function("tessera_checked", |b| {
        b.iter(|| {
            world
                .all_reduce_into(&send, &mut recv, ReduceOp::Sum)
                .unwrap()
        })
    });
    group.bench_function("tessera_unchecked", |b| {
        b.iter(|| {
            unchecked
                .all_reduce_into(&send, &mut recv, ReduceOp::Sum)
                .unwrap()
        })
    });
    group.bench_function("tessera_unchecked_traced", |b| {
        b.iter_custom(|iters| {
            // Recording keeps every span: start afresh for each batch.
            tessera::comm::trace::begin(&world, None).unwrap();
            let start = std::time::Instant::now();
            for _ in 0..iters {
                unchecked
                    .all_reduce_into(&send, &mut recv, ReduceOp::Sum)
                    .unwrap();
            }
            let elapsed = start.elapsed();
            tessera::comm::trace::end(&world).unwrap();
            elapsed
        })
    });
    group.bench_function("rsmpi", |b| {
        b.iter(|| {
            world
                .rsmpi()
                .all_reduce_into(&send[..], &mut recv[..], SystemOperation::sum())
        })
    });
    group.finish();
}

criterion_group!(benches, allreduce_overhead);
criterion_main!(benches);
