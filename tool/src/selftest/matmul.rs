//! Distributed matrices and SUMMA against a serial reference, and the
//! verification of products.

use tessera::Error;
use tessera::comm::{Comm, ProcessGrid, square_ish_factors};
use tessera::distributed::{DistMatrix, MatmulOptions, matmul_with, verify_product};
use tessera::ops::Float;
use tessera::ops::gemm::gemm_reference;

use super::{Outcome, err};

pub(super) fn matmul(c: &Comm) -> Outcome {
    let p = c.size();
    let (rows, cols) = square_ish_factors(p);
    let grids = [(rows, cols), (1, p), (p, 1)];
    // Edge shapes: 1 x 1, k = 1, m or n smaller than the grid, very
    // rectangular, and ordinary ones.
    let shapes = [
        (1, 1, 1),
        (1, 7, 1),
        (5, 1, 6),
        (1, 9, 8),
        (9, 9, 1),
        (3, 50, 2),
        (37, 23, 41),
        (64, 64, 64),
    ];
    for (g, &(gr, gc)) in grids.iter().enumerate() {
        let grid = ProcessGrid::new(c, gr, gc).map_err(err)?;
        for (s, &(m, k, n)) in shapes.iter().enumerate() {
            for panel in [1, 5, 256] {
                let seed = (g * 100 + s) as u64;
                matmul_case::<f64>(&grid, m, k, n, panel, seed)?;
                if panel == 5 {
                    matmul_case::<f32>(&grid, m, k, n, panel, seed)?;
                }
            }
        }
    }
    verification_has_teeth(c)
}

/// Freivalds' check fails wrong products, NaN, and passes products that
/// underflow correctly.
fn verification_has_teeth(c: &Comm) -> Outcome {
    let grid = ProcessGrid::square_ish(c).map_err(err)?;
    let (m, k, n) = (40, 64, 48);
    let a = DistMatrix::<f32>::random(&grid, m, k, 3);
    let b = DistMatrix::<f32>::random(&grid, k, n, 4);
    let good = tessera::distributed::matmul(&a, &b).map_err(err)?;
    let v = verify_product(&a, &b, &good, 9).map_err(err)?;
    ensure!(v.passed, "correct f32 product failed: {v:?}");
    // Row 0 off by 0.01 per entry (about 60 rounding errors' worth): the
    // worst-case norm bound allows it, the row-wise bound must not.
    let r: Vec<f64> = (0..n)
        .map(|j| tessera::rng::uniform(9 ^ 0x5eed, j as u64, 0))
        .collect();
    let mut bad = good.clone();
    if bad.row_range().start == 0 && !bad.row_range().is_empty() {
        let cols = bad.col_range();
        let mut block = bad.local_mut();
        for (jj, j) in cols.enumerate() {
            block[[0, jj]] += 0.01 * r[j].signum() as f32;
        }
    }
    let v = verify_product(&a, &b, &bad, 9).map_err(err)?;
    ensure!(!v.passed && v.row_ratio > 1.0, "a wrong row passed: {v:?}");
    // A NaN anywhere fails.
    let mut nan = good.clone();
    if c.rank() == c.size() - 1 && !nan.local().is_empty() {
        nan.local_mut()[[0, 0]] = f32::NAN;
    }
    let v = verify_product(&a, &b, &nan, 9).map_err(err)?;
    ensure!(!v.passed && v.residual.is_nan(), "NaN in C passed: {v:?}");
    // Products below f32's smallest subnormal are correctly rounded to 0.
    let tiny_a = DistMatrix::<f32>::from_fn(&grid, m, k, |_, _| 1e-25);
    let tiny_b = DistMatrix::<f32>::from_fn(&grid, k, n, |_, _| 1e-25);
    let tiny = tessera::distributed::matmul(&tiny_a, &tiny_b).map_err(err)?;
    ensure!(
        tiny.local().iter().all(|&x| x == 0.0),
        "1e-25 * 1e-25 did not underflow to 0"
    );
    let v = verify_product(&tiny_a, &tiny_b, &tiny, 9).map_err(err)?;
    ensure!(v.passed, "a correctly underflowed product failed: {v:?}");
    // Operands that do not conform are an error, not a panic.
    ensure!(
        verify_product(&a, &b, &a, 9).is_err(),
        "C of the wrong shape was accepted"
    );
    // Ranks that ask for different panel widths get an error, not a hang.
    if c.size() > 1 {
        let panel = if c.rank() == 0 { 3 } else { 7 };
        let res = matmul_with(
            &a,
            &b,
            MatmulOptions {
                panel,
                ..Default::default()
            },
        );
        match res {
            Err(Error::Disagreement { .. }) => {}
            other => return Err(format!("different panel widths: {:?}", other.map(|_| ()))),
        }
    }
    Ok(())
}

fn matmul_case<T: Float>(
    grid: &ProcessGrid,
    m: usize,
    k: usize,
    n: usize,
    panel: usize,
    seed: u64,
) -> Outcome {
    let what = format!(
        "{} {m}x{k}x{n} on {}x{} panel {panel}",
        T::DTYPE,
        grid.rows(),
        grid.cols()
    );
    let a = DistMatrix::<T>::random(grid, m, k, seed);
    let b = DistMatrix::<T>::random(grid, k, n, seed + 1);
    let options = MatmulOptions {
        panel,
        ..Default::default()
    };
    let (product, _) = matmul_with(&a, &b, options).map_err(|e| format!("{what}: {e}"))?;
    let v = verify_product(&a, &b, &product, seed).map_err(err)?;
    ensure!(
        v.passed,
        "{what}: Freivalds residual {} over {}",
        v.residual,
        v.threshold
    );
    // Against a serial reference on rank 0, entry by entry, within
    // gamma_{k+2} |A||B| (the same bound as the local GEMM tests).
    let full_a = a.gather_to_root(0).map_err(err)?;
    let full_b = b.gather_to_root(0).map_err(err)?;
    let full_c = product.gather_to_root(0).map_err(err)?;
    if let (Some(fa), Some(fb), Some(fc)) = (full_a, full_b, full_c) {
        let mut reference = ndarray::Array2::<T>::zeros((m, n));
        gemm_reference(
            T::one(),
            fa.view(),
            fb.view(),
            T::zero(),
            reference.view_mut(),
        );
        for i in 0..m {
            for j in 0..n {
                let abs: f64 = (0..k)
                    .map(|q| (fa[[i, q]].as_f64() * fb[[q, j]].as_f64()).abs())
                    .sum();
                let bound = 2.0 * (k as f64 + 2.0) * T::EPS * abs;
                let e = (fc[[i, j]].as_f64() - reference[[i, j]].as_f64()).abs();
                ensure!(e.le(&bound), "{what}: C[{i},{j}] off by {e:e} > {bound:e}");
            }
        }
        // The random fill is the same global matrix whatever the grid.
        let direct = tessera::rng::uniform(seed, (m - 1) as u64, (k - 1) as u64);
        ensure!(
            fa[[m - 1, k - 1]] == T::from_f64(direct),
            "{what}: random fill depends on the grid"
        );
    }
    // Scatter from the root and gather back: the same matrix.
    let gathered = a.gather_to_root(0).map_err(err)?;
    let again =
        DistMatrix::scatter_from_root(grid, gathered.as_ref().map(|x| x.view()), 0).map_err(err)?;
    ensure!(
        again.local() == a.local(),
        "{what}: scatter/gather round trip changed the block"
    );
    Ok(())
}
