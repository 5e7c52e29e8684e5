//! A CUDA GPU behind the [`Backend`] trait: one context and one stream per
//! process and GPU, kernels compiled by NVRTC for its architecture at first
//! use, host copies staged through pinned buffers. cuBLAS, on the same
//! stream, is in `device/cublas.rs`.

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

/// Bytes per pinned staging chunk; two chunks let the host copy into one
/// (on rayon's threads: one thread's memcpy is a fraction of the link's
/// rate) overlap the DMA transfer from the other.
const STAGING_CHUNK: usize = 32 << 20;

/// One CUDA GPU as this process uses it.
pub(crate) struct CudaGpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    cc: (u32, u32),
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    functions: Mutex<HashMap<&'static str, CudaFunction>>,
    staging: Mutex<Option<Staging>>,
}

struct Staging {
    buffers: [PinnedHostSlice<u8>; 2],
    done: [CudaEvent; 2],
}

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
    });
    gpus.insert(ordinal, g.clone());
    Ok(g)
}

impl CudaGpu {
    /// Makes this GPU's context current on the calling thread.
    pub(crate) fn bind(&self) -> Result<()> {
        self.ctx.bind_to_thread().map_err(driver("cuCtxSetCurrent"))
    }

    /// The stream all of this process's work on the GPU goes to.
    pub(crate) fn cu_stream(&self) -> cudarc::driver::sys::CUstream {
        self.stream.cu_stream()
    }

    fn function(&self, entry: &'static Entry) -> Result<CudaFunction> {
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
}

impl CudaGpu {
    /// The driver's own copies of `bytes` bytes, best of `reps`, in
    /// seconds: host to device and back from and to pinned memory (what
    /// the link reaches), and from and to pageable memory (the driver's
    /// own staging). The anchors of `tessera bench copy`.
    pub(crate) fn raw_copies(&self, bytes: usize, reps: usize) -> Result<super::RawCopies> {
        self.bind()?;
        let stream = self.stream.cu_stream();
        // SAFETY: pinned host memory of plain bytes; it is written before
        // it is read.
        let mut pinned = unsafe { self.ctx.alloc_pinned::<u8>(bytes.max(1)) }
            .map_err(driver("cuMemHostAlloc"))?;
        let mut pageable = vec![1u8; bytes.max(1)];
        // SAFETY: a fresh device allocation of `bytes` bytes, freed below
        // after the stream has finished every copy into and out of it.
        let dev = unsafe { result::malloc_sync(bytes.max(1)) }.map_err(driver("cuMemAlloc"))?;
        let best = |f: &mut dyn FnMut() -> Result<()>| super::best_seconds(reps, f);
        let run = (|| -> Result<super::RawCopies> {
            let host = pinned
                .as_mut_slice()
                .map_err(driver("cuEventSynchronize"))?;
            host.fill(1);
            let h2d_pinned = best(&mut || {
                // SAFETY: `dev` holds `bytes` bytes and `host` is pinned
                // memory of as many, alive until the stream is synchronised.
                unsafe { result::memcpy_htod_async(dev, &host[..bytes], stream) }
                    .map_err(driver("cuMemcpyHtoDAsync"))?;
                self.stream
                    .synchronize()
                    .map_err(driver("cuStreamSynchronize"))
            })?;
            let d2h_pinned = best(&mut || {
                // SAFETY: as above, the other way.
                unsafe { result::memcpy_dtoh_async(&mut host[..bytes], dev, stream) }
                    .map_err(driver("cuMemcpyDtoHAsync"))?;
                self.stream
                    .synchronize()
                    .map_err(driver("cuStreamSynchronize"))
            })?;
            let h2d_pageable = best(&mut || {
                // SAFETY: `dev` holds `bytes` bytes; the synchronous copy
                // is over when the call returns.
                unsafe { result::memcpy_htod_sync(dev, &pageable[..bytes]) }
                    .map_err(driver("cuMemcpyHtoD"))
            })?;
            let d2h_pageable = best(&mut || {
                // SAFETY: as above, the other way.
                unsafe { result::memcpy_dtoh_sync(&mut pageable[..bytes], dev) }
                    .map_err(driver("cuMemcpyDtoH"))
            })?;
            Ok(super::RawCopies {
                h2d_pinned,
                d2h_pinned,
                h2d_pageable,
                d2h_pageable,
            })
        })();
        self.stream
            .synchronize()
            .map_err(driver("cuStreamSynchronize"))?;
        // SAFETY: allocated above; every copy using it is over.
        unsafe { result::free_sync(dev) }.map_err(driver("cuMemFree"))?;
        run
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

    unsafe fn free(&self, addr: Addr, _bytes: usize) {
        if self.bind().is_ok() {
            // SAFETY: the caller promises `addr` came from `alloc` and is
            // freed once, with nothing issued after this using it; the free
            // is ordered on our stream after the work issued before it.
            let _ = unsafe { result::free_async(addr, self.stream.cu_stream()) };
        }
    }

    unsafe fn upload(&self, dst: Addr, src: &[u8]) -> Result<()> {
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
                super::par_copy(&mut pinned[..chunk.len()], chunk);
                let off = (i * STAGING_CHUNK) as Addr;
                // SAFETY: the caller promises `dst .. dst + src.len()` is a
                // live range, so `dst + off` has room for the chunk; the
                // pinned buffer is not written again until its event says
                // this copy is over.
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

    unsafe fn download(&self, dst: &mut [u8], src: Addr) -> Result<()> {
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
                // SAFETY: the caller promises `src .. src + dst.len()` is a
                // live range, so `src + s` holds `e - s` bytes; the pinned
                // buffer is read only after this copy's event completes.
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
                super::par_copy(&mut dst[s..e], &pinned[..e - s]);
            }
            Ok(())
        })
    }

    unsafe fn copy(&self, dst: Addr, src: Addr, bytes: usize) -> Result<()> {
        self.bind()?;
        // SAFETY: the caller promises two live, non-overlapping ranges of
        // `bytes` bytes in this context; the copy is ordered on our stream.
        unsafe { result::memcpy_dtod_async(dst, src, bytes, self.stream.cu_stream()) }
            .map_err(driver("cuMemcpyDtoDAsync"))
    }

    unsafe fn zero(&self, dst: Addr, bytes: usize) -> Result<()> {
        self.bind()?;
        // SAFETY: the caller promises a live range of `bytes` bytes in this
        // context; the memset is ordered on our stream.
        unsafe { result::memset_d8_async(dst, 0, bytes, self.stream.cu_stream()) }
            .map_err(driver("cuMemsetD8Async"))
    }

    unsafe fn launch(
        &self,
        entry: &'static Entry,
        grid: Dim3,
        block: Dim3,
        params: &[*mut c_void],
    ) -> Result<()> {
        self.bind()?;
        let f = self.function(entry)?;
        let mut params = params.to_vec();
        // SAFETY: `f` is `entry`'s function in this context; the caller
        // promises that `params` point at live values of its parameter
        // types, that the device addresses among them are live allocations
        // of this context with every access of the kernel under this launch
        // shape inside them, and that the shape is the one the kernel
        // documents. cuLaunchKernel copies the arguments before returning.
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
}
