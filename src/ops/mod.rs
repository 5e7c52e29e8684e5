//! Local compute kernels, one file per operation. Each operation with a GPU
//! path takes the [`Device`](crate::Device) it runs on; the CPU path and the
//! GPU path live in the same file, behind the same function. GPU paths
//! call the typed launchers of [`device`](crate::device); nothing here is
//! `unsafe`.
//!
//! ```
//! use tessera::Device;
//! use tessera::ndarray::{Array2, array};
//! use tessera::ops::{gemm, sort};
//!
//! // C = 1 * A B + 0 * C on this rank's CPU cores.
//! let a = array![[1.0, 2.0], [3.0, 4.0]];
//! let b = array![[5.0, 6.0], [7.0, 8.0]];
//! let mut c = Array2::<f64>::zeros((2, 2));
//! gemm(Device::Cpu, 1.0, a.view(), b.view(), 0.0, c.view_mut()).unwrap();
//! assert_eq!(c, array![[19.0, 22.0], [43.0, 50.0]]);
//!
//! // Floats sort in IEEE total order: -0.0 before 0.0, NaN last.
//! let mut keys = vec![3.5f32, -0.0, f32::NAN, 0.0, -2.0];
//! sort::sort(Device::Cpu, &mut keys).unwrap();
//! assert_eq!(&keys[..4], &[-2.0, -0.0, 0.0, 3.5]);
//! assert!(keys[1].is_sign_negative() && keys[4].is_nan());
//! ```

pub mod gemm;
pub mod generate;
pub mod merge;
pub mod sort;

pub use gemm::{Float, gemm};
