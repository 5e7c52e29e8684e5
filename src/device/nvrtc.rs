//! Compiling the kernel files with NVRTC, CUDA's run-time compiler, and
//! caching the result on disk.
//!
//! NVRTC needs no GPU: kernels compile for any architecture on any x86-64
//! machine that has `libnvrtc.so.12` (from a CUDA toolkit, or from the PyPI
//! wheel `nvidia-cuda-nvrtc-cu12`). It is looked up, in order, at
//! `$TESSERA_NVRTC_LIB`, under `$CUDA_HOME` / `$CUDA_PATH` and
//! `/usr/local/cuda`, then on the library path.
//!
//! Compiled code (a CUBIN for the exact architecture, so the driver has
//! nothing left to compile) is cached in `$TESSERA_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/tessera/kernels`, else `~/.cache/tessera/kernels`, under
//! a name made of the kernel file, the architecture, the NVRTC version and a
//! hash of the source and options. A cache that cannot be read or written
//! only costs a compilation.

use std::ffi::{CStr, CString, c_char, c_int};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cudarc::nvrtc::{result, sys};

use super::kernels::KernelSource;
use crate::error::{Error, Result};

/// Options every kernel is compiled with (besides the architecture).
const OPTIONS: &[&str] = &["--std=c++17", "-lineinfo"];

/// Makes NVRTC loadable, or says why it is not.
pub fn ensure_loaded() -> Result<()> {
    static LOADED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(load)
        .clone()
        .map_err(|reason| Error::NvrtcMissing { reason })
}

fn load() -> std::result::Result<(), String> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os(crate::env::NVRTC_LIB) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(format!("TESSERA_NVRTC_LIB={} is not a file", p.display()));
        }
        candidates.push(p);
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Some(root) = std::env::var_os(var) {
            candidates.push(Path::new(&root).join("lib64/libnvrtc.so.12"));
        }
    }
    candidates.push("/usr/local/cuda/lib64/libnvrtc.so.12".into());
    for path in candidates.iter().filter(|p| p.is_file()) {
        // SAFETY: loading NVRTC runs only its initialisers. Kept loaded for
        // the life of the process, so that cudarc's lookup by name finds
        // it (the dynamic loader matches the soname of a loaded library).
        if let Ok(lib) = unsafe { libloading::Library::new(path) } {
            std::mem::forget(lib);
            break;
        }
    }
    // SAFETY: only tries to load the library; no NVRTC call is made.
    if unsafe { sys::is_culib_present() } {
        Ok(())
    } else {
        Err("libnvrtc.so.12 was not found".into())
    }
}

/// NVRTC's version (major, minor).
pub fn version() -> Result<(i32, i32)> {
    ensure_loaded()?;
    let (mut major, mut minor): (c_int, c_int) = (0, 0);
    // SAFETY: NVRTC is loaded (checked above); both pointers are valid.
    let rc = unsafe { sys::nvrtcVersion(&mut major, &mut minor) };
    nvrtc_ok(rc, "nvrtcVersion")?;
    Ok((major, minor))
}

/// The architectures NVRTC can compile for (compute capability x 10:
/// 80 = sm_80).
pub fn supported_architectures() -> Result<Vec<u32>> {
    ensure_loaded()?;
    let mut n: c_int = 0;
    // SAFETY: NVRTC is loaded; `n` is a valid pointer.
    let rc = unsafe { sys::nvrtcGetNumSupportedArchs(&mut n) };
    nvrtc_ok(rc, "nvrtcGetNumSupportedArchs")?;
    let mut archs = vec![0 as c_int; n.max(0) as usize];
    // SAFETY: `archs` holds the number of entries NVRTC just reported.
    let rc = unsafe { sys::nvrtcGetSupportedArchs(archs.as_mut_ptr()) };
    nvrtc_ok(rc, "nvrtcGetSupportedArchs")?;
    Ok(archs.into_iter().map(|a| a as u32).collect())
}

fn nvrtc_ok(rc: sys::nvrtcResult, call: &'static str) -> Result<()> {
    if rc == sys::nvrtcResult::NVRTC_SUCCESS {
        Ok(())
    } else {
        Err(Error::Cuda {
            call,
            message: format!("{rc:?}"),
        })
    }
}

/// A compiled kernel file.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The CUBIN for the architecture it was compiled for.
    pub cubin: Vec<u8>,
    /// NVRTC's log (warnings, and the assembler's resource report).
    pub log: String,
    /// Whether it came from the on-disk cache.
    pub from_cache: bool,
}

/// The architecture name for a compute capability (`(9, 0)` is `sm_90`).
pub fn arch_name(cc: (u32, u32)) -> String {
    format!("sm_{}{}", cc.0, cc.1)
}

/// Compiles `kernel` for compute capability `cc`, with the assembler's
/// resource report (registers, spills) in the log when `verbose`. No cache.
pub fn compile(kernel: &KernelSource, cc: (u32, u32), verbose: bool) -> Result<Compiled> {
    ensure_loaded()?;
    let arch = arch_name(cc);
    let fail = |message: String, log: String| Error::KernelCompile {
        kernel: kernel.name,
        arch: arch.clone(),
        message,
        log,
    };
    let src = CString::new(kernel.source)
        .map_err(|_| fail("the source holds a NUL byte".into(), String::new()))?;
    let file = CString::new(format!("{}.cu", kernel.name)).expect("kernel names have no NUL");
    let prog = result::create_program(&src, Some(&file))
        .map_err(|e| fail(format!("nvrtcCreateProgram: {e:?}"), String::new()))?;
    let program = Program(prog);
    let mut options: Vec<String> = OPTIONS.iter().map(|s| s.to_string()).collect();
    options.push(format!("--gpu-architecture={arch}"));
    if verbose {
        options.push("-Xptxas=-v".into());
    }
    // SAFETY: `prog` was created above and is destroyed only by `program`'s
    // drop, after the last use below.
    let compiled = unsafe { result::compile_program(program.0, &options) };
    // SAFETY: as above.
    let log = unsafe { result::get_program_log(program.0) }
        .map(|raw| {
            // SAFETY: NVRTC's log is NUL-terminated.
            unsafe { CStr::from_ptr(raw.as_ptr()) }
                .to_string_lossy()
                .trim_end()
                .to_string()
        })
        .unwrap_or_default();
    if let Err(e) = compiled {
        return Err(fail(format!("{e:?}"), log));
    }
    let mut size = 0usize;
    // SAFETY: `program` is live and compiled; `size` is a valid pointer.
    let rc = unsafe { sys::nvrtcGetCUBINSize(program.0, &mut size) };
    nvrtc_ok(rc, "nvrtcGetCUBINSize")?;
    let mut cubin = vec![0u8; size];
    // SAFETY: `program` is live and compiled; `cubin` holds the size NVRTC
    // just reported.
    let rc = unsafe { sys::nvrtcGetCUBIN(program.0, cubin.as_mut_ptr() as *mut c_char) };
    nvrtc_ok(rc, "nvrtcGetCUBIN")?;
    Ok(Compiled {
        cubin,
        log,
        from_cache: false,
    })
}

/// Destroys the NVRTC program when dropped.
struct Program(sys::nvrtcProgram);

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: created by nvrtcCreateProgram and destroyed only here.
        let _ = unsafe { result::destroy_program(self.0) };
    }
}

/// The folder compiled kernels are cached in, if one can be named.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(crate::env::CACHE_DIR) {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
    Some(base.join("tessera").join("kernels"))
}

/// The cache file name for `kernel` on `cc` with NVRTC `version`.
pub fn cache_key(kernel: &KernelSource, cc: (u32, u32), version: (i32, i32)) -> String {
    let mut h = Fnv::new();
    h.write(kernel.source.as_bytes());
    for o in OPTIONS {
        h.write(&[0]);
        h.write(o.as_bytes());
    }
    format!(
        "{}-{}-nvrtc{}.{}-{:016x}.cubin",
        kernel.name,
        arch_name(cc),
        version.0,
        version.1,
        h.0
    )
}

/// Compiles `kernel` for `cc`, or reads it from the cache when this source
/// was compiled before with the same options and NVRTC.
pub fn compile_cached(kernel: &KernelSource, cc: (u32, u32)) -> Result<Compiled> {
    let version = version()?;
    let path = cache_dir().map(|d| d.join(cache_key(kernel, cc, version)));
    if let Some(cubin) = path.as_ref().and_then(|p| std::fs::read(p).ok())
        && is_elf(&cubin)
    {
        return Ok(Compiled {
            cubin,
            log: String::new(),
            from_cache: true,
        });
    }
    let compiled = compile(kernel, cc, false)?;
    if let Some(path) = path {
        store(&path, &compiled.cubin);
    }
    Ok(compiled)
}

/// A CUBIN is an ELF file; anything else in the cache is a torn write.
fn is_elf(bytes: &[u8]) -> bool {
    bytes.len() > 4 && &bytes[..4] == b"\x7fELF"
}

/// Writes `bytes` to `path` through a temporary file and a rename, so that
/// ranks compiling the same kernel at once never read half a file. Failure
/// is silent: the cache is an optimisation.
fn store(path: &Path, bytes: &[u8]) {
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("kernel"),
        std::process::id()
    ));
    if std::fs::write(&tmp, bytes).is_ok() && std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// 64-bit FNV-1a: a stable hash (the standard library's is not promised to
/// stay the same between Rust versions, and the cache outlives them).
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::kernels;

    #[test]
    fn cache_key_changes_with_source_architecture_and_version() {
        let a = cache_key(&kernels::GEMM, (9, 0), (12, 9));
        assert_ne!(a, cache_key(&kernels::GEMM, (8, 0), (12, 9)));
        assert_ne!(a, cache_key(&kernels::GEMM, (9, 0), (12, 8)));
        assert_ne!(a, cache_key(&kernels::SORT, (9, 0), (12, 9)));
        let other = KernelSource {
            name: "gemm",
            source: "extern \"C\" __global__ void k() {}",
            entries: &[],
        };
        assert_ne!(a, cache_key(&other, (9, 0), (12, 9)));
        assert!(a.starts_with("gemm-sm_90-nvrtc12.9-"), "{a}");
    }

    #[test]
    fn torn_cache_files_are_not_cubins() {
        assert!(!is_elf(b""));
        assert!(!is_elf(b"\x7fEL"));
        assert!(is_elf(b"\x7fELF\x02\x01"));
    }
}
