//! A CUDA GPU behind the [`Backend`] trait: one context and one stream per
//! process and GPU, kernels compiled by NVRTC for its architecture at first
//! use, host copies staged through pinned buffers.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::{
    CudaContext, CudaEvent, CudaFunction, CudaModule, CudaStream, DriverError, PinnedHostSlice,
    result,
};
use cudarc::nvrtc::Ptx;

use super::backend::{Addr, Backend, Dim3};
use super::kernels::Entry;
use super::nvrtc;
use crate::error::{Error, Result};

/// Bytes per pinned staging chunk; two chunks let the copy into one overlap
/// the DMA transfer from the other.
const STAGING_CHUNK: usize = 8 << 20;

/// One CUDA GPU as this process uses it.
pub struct CudaGpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    cc: (u32, u32),
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    functions: Mutex<HashMap<&'static str, CudaFunction>>,
    staging: Mutex<Option<Staging>>,
    cublas: Mutex<Option<Cublas>>,
}

struct Staging {
    buffers: [PinnedHostSlice<u8>; 2],
    done: [CudaEvent; 2],
}

/// A cuBLAS handle bound to the GPU's stream.
pub(crate) struct Cublas(pub(crate) cudarc::cublas::sys::cublasHandle_t);

// SAFETY: a cuBLAS handle may be used from any thread as long as calls are
// not concurrent; it is only used under the `cublas` mutex.
unsafe impl Send for Cublas {}

fn driver(call: &'static str) -> impl Fn(DriverError) -> Error {
    move |e| Error::Cuda {
        call,
        message: format!("{e:?}"),
    }
}

/// The GPU with this ordinal, set up at first use (one per process).
pub(crate) fn gpu(ordinal: usize) -> Result<Arc<CudaGpu>> {
    static GPUS: OnceLock<Mutex<HashMap<usize, Arc<CudaGpu>>>> = OnceLock::new();
    let mut gpus = GPUS
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .expect("GPU table lock");
    if let Some(g) = gpus.get(&ordinal) {
        return Ok(g.clone());
    }
    let visible = super::probe_gpus().map_err(|reason| Error::NoGpu { reason })?;
    let info = visible.get(ordinal).ok_or_else(|| Error::NoGpu {
        reason: format!(
            "GPU {ordinal} was asked for but this process sees {} (CUDA_VISIBLE_DEVICES decides which)",
            visible.len()
        ),
    })?;
    let ctx = CudaContext::new(ordinal).map_err(driver("cuDevicePrimaryCtxRetain"))?;
    let stream = ctx.new_stream().map_err(driver("cuStreamCreate"))?;
    let g = Arc::new(CudaGpu {
        ctx,
        stream,
        cc: info.compute_capability,
        modules: Mutex::new(HashMap::new()),
        functions: Mutex::new(HashMap::new()),
        staging: Mutex::new(None),
        cublas: Mutex::new(None),
    });
    gpus.insert(ordinal, g.clone());
    Ok(g)
}

impl CudaGpu {
    fn bind(&self) -> Result<()> {
        self.ctx.bind_to_thread().map_err(driver("cuCtxSetCurrent"))
    }

    fn function(&self, entry: Entry) -> Result<CudaFunction> {
        if let Some(f) = self
            .functions
            .lock()
            .expect("kernel table lock")
            .get(entry.name)
        {
            return Ok(f.clone());
        }
        let module = {
            let mut modules = self.modules.lock().expect("module table lock");
            match modules.get(entry.file.name) {
                Some(m) => m.clone(),
                None => {
                    let compiled = nvrtc::compile_cached(entry.file, self.cc)?;
                    let m = self
                        .ctx
                        .load_module(Ptx::from_binary(compiled.cubin))
                        .map_err(|e| Error::Kernel {
                            kernel: format!("kernels/{}.cu", entry.file.name),
                            call: "cuModuleLoadData",
                            message: format!("{e:?}"),
                        })?;
                    modules.insert(entry.file.name, m.clone());
                    m
                }
            }
        };
        let f = module
            .load_function(entry.name)
            .map_err(|e| Error::Kernel {
                kernel: entry.name.to_string(),
                call: "cuModuleGetFunction",
                message: format!("{e:?}"),
            })?;
        self.functions
            .lock()
            .expect("kernel table lock")
            .insert(entry.name, f.clone());
        Ok(f)
    }

    fn with_staging<R>(&self, f: impl FnOnce(&mut Staging) -> Result<R>) -> Result<R> {
        let mut guard = self.staging.lock().expect("staging lock");
        if guard.is_none() {
            // SAFETY: pinned host memory for plain bytes; every byte is
            // written before it is read (copies fill what they use).
            let alloc = || unsafe { self.ctx.alloc_pinned::<u8>(STAGING_CHUNK) };
            let event = || self.ctx.new_event(None);
            *guard = Some(Staging {
                buffers: [
                    alloc().map_err(driver("cuMemHostAlloc"))?,
                    alloc().map_err(driver("cuMemHostAlloc"))?,
                ],
                done: [
                    event().map_err(driver("cuEventCreate"))?,
                    event().map_err(driver("cuEventCreate"))?,
                ],
            });
        }
        f(guard.as_mut().expect("staging set up above"))
    }

    /// Runs `f` with this GPU's cuBLAS handle, created at first use.
    pub(crate) fn with_cublas<R>(
        &self,
        f: impl FnOnce(cudarc::cublas::sys::cublasHandle_t) -> Result<R>,
    ) -> Result<R> {
        use cudarc::cublas::result as blas;
        self.bind()?;
        let mut guard = self.cublas.lock().expect("cuBLAS lock");
        if guard.is_none() {
            // SAFETY: only tries to load the library.
            if !unsafe { cudarc::cublas::sys::is_culib_present() } {
                return Err(Error::Unsupported {
                    op: "gemm",
                    device: "cuBLAS".into(),
                    reason: "libcublas.so.12 was not found: install the CUDA toolkit's cuBLAS (or `pip install nvidia-cublas-cu12` and add its lib folder to LD_LIBRARY_PATH), or use --gemm-backend tessera".into(),
                });
            }
            let cublas_err = |call: &'static str| {
                move |e: blas::CublasError| Error::Cuda {
                    call,
                    message: format!("{e:?}"),
                }
            };
            let handle = blas::create_handle().map_err(cublas_err("cublasCreate"))?;
            // SAFETY: a fresh handle and this GPU's live stream.
            unsafe { blas::set_stream(handle, self.stream.cu_stream() as _) }
                .map_err(cublas_err("cublasSetStream"))?;
            *guard = Some(Cublas(handle));
        }
        f(guard.as_ref().expect("created above").0)
    }
}

impl Backend for CudaGpu {
    fn alloc(&self, bytes: usize) -> Result<Addr> {
        self.bind()?;
        // SAFETY: the context is bound; the allocation is stream-ordered on
        // our stream and freed by `free` on the same stream.
        unsafe { result::malloc_async(self.stream.cu_stream(), bytes.max(1)) }
            .map_err(driver("cuMemAllocAsync"))
    }

    fn free(&self, addr: Addr, _bytes: usize) {
        if self.bind().is_ok() {
            // SAFETY: `addr` came from `alloc` and is freed once (by its
            // DeviceBuffer's drop), after the work issued before it.
            let _ = unsafe { result::free_async(addr, self.stream.cu_stream()) };
        }
    }

    fn upload(&self, dst: Addr, src: &[u8]) -> Result<()> {
        self.bind()?;
        let stream = self.stream.cu_stream();
        self.with_staging(|st| {
            for (i, chunk) in src.chunks(STAGING_CHUNK).enumerate() {
                let slot = i % 2;
                // The DMA from this buffer two chunks ago must be over.
                st.done[slot]
                    .synchronize()
                    .map_err(driver("cuEventSynchronize"))?;
                let pinned = st.buffers[slot]
                    .as_mut_slice()
                    .map_err(driver("cuEventSynchronize"))?;
                pinned[..chunk.len()].copy_from_slice(chunk);
                let off = (i * STAGING_CHUNK) as Addr;
                // SAFETY: `dst + off` has room for the chunk (DeviceBuffer
                // checks lengths); the pinned buffer is not written again
                // until its event says this copy is over.
                unsafe { result::memcpy_htod_async(dst + off, &pinned[..chunk.len()], stream) }
                    .map_err(driver("cuMemcpyHtoDAsync"))?;
                st.done[slot]
                    .record(&self.stream)
                    .map_err(driver("cuEventRecord"))?;
            }
            for e in &st.done {
                e.synchronize().map_err(driver("cuEventSynchronize"))?;
            }
            Ok(())
        })
    }

    fn download(&self, dst: &mut [u8], src: Addr) -> Result<()> {
        self.bind()?;
        let stream = self.stream.cu_stream();
        self.with_staging(|st| {
            let chunks: Vec<(usize, usize)> = (0..dst.len())
                .step_by(STAGING_CHUNK)
                .map(|s| (s, (s + STAGING_CHUNK).min(dst.len())))
                .collect();
            // Issue chunk i + 1's DMA before copying chunk i out of its
            // pinned buffer, so the two overlap.
            let issue = |st: &mut Staging, i: usize| -> Result<()> {
                let (s, e) = chunks[i];
                let slot = i % 2;
                let pinned = st.buffers[slot]
                    .as_mut_slice()
                    .map_err(driver("cuEventSynchronize"))?;
                // SAFETY: `src + s` holds `e - s` bytes; the pinned buffer
                // is read only after this copy's event completes.
                unsafe { result::memcpy_dtoh_async(&mut pinned[..e - s], src + s as Addr, stream) }
                    .map_err(driver("cuMemcpyDtoHAsync"))?;
                st.done[slot]
                    .record(&self.stream)
                    .map_err(driver("cuEventRecord"))
            };
            if !chunks.is_empty() {
                issue(st, 0)?;
            }
            for i in 0..chunks.len() {
                if i + 1 < chunks.len() {
                    issue(st, i + 1)?;
                }
                let (s, e) = chunks[i];
                let slot = i % 2;
                st.done[slot]
                    .synchronize()
                    .map_err(driver("cuEventSynchronize"))?;
                let pinned = st.buffers[slot]
                    .as_slice()
                    .map_err(driver("cuEventSynchronize"))?;
                dst[s..e].copy_from_slice(&pinned[..e - s]);
            }
            Ok(())
        })
    }

    fn copy(&self, dst: Addr, src: Addr, bytes: usize) -> Result<()> {
        self.bind()?;
        // SAFETY: both ranges hold `bytes` bytes (checked by callers).
        unsafe { result::memcpy_dtod_async(dst, src, bytes, self.stream.cu_stream()) }
            .map_err(driver("cuMemcpyDtoDAsync"))
    }

    fn zero(&self, dst: Addr, bytes: usize) -> Result<()> {
        self.bind()?;
        // SAFETY: `dst` holds `bytes` bytes (checked by callers).
        unsafe { result::memset_d8_async(dst, 0, bytes, self.stream.cu_stream()) }
            .map_err(driver("cuMemsetD8Async"))
    }

    fn launch(&self, entry: Entry, grid: Dim3, block: Dim3, params: &[*mut c_void]) -> Result<()> {
        self.bind()?;
        let f = self.function(entry)?;
        let mut params = params.to_vec();
        // SAFETY: `params` point at live values of the kernel's argument
        // types (built by `Params` against the signatures in kernels/*.cu);
        // device addresses in them are live allocations of this context.
        unsafe {
            result::launch_kernel(
                f.cu_function(),
                grid,
                block,
                0,
                self.stream.cu_stream(),
                &mut params,
            )
        }
        .map_err(|e| Error::Kernel {
            kernel: entry.name.to_string(),
            call: "cuLaunchKernel",
            message: format!("{e:?}"),
        })
    }

    fn synchronize(&self) -> Result<()> {
        self.bind()?;
        self.stream
            .synchronize()
            .map_err(driver("cuStreamSynchronize"))
    }

    fn cuda(&self) -> Option<&CudaGpu> {
        Some(self)
    }
}

impl Drop for CudaGpu {
    fn drop(&mut self) {
        if let Some(h) = self.cublas.get_mut().ok().and_then(|c| c.take()) {
            // SAFETY: created by cublasCreate and destroyed once, here.
            let _ = unsafe { cudarc::cublas::result::destroy_handle(h.0) };
        }
    }
}
