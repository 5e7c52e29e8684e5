//! The CUDA C kernel files, embedded in the binary and compiled by NVRTC at
//! first use (see [`super::nvrtc`]).

/// One kernel file of `kernels/`.
#[derive(Debug)]
pub struct KernelSource {
    /// The file name without `.cu` (`gemm`, `sort`).
    pub name: &'static str,
    /// The CUDA C source.
    pub source: &'static str,
    /// The `extern "C"` kernels the file defines.
    pub entries: &'static [&'static str],
}

/// `kernels/gemm.cu`: tiled SGEMM/DGEMM and panel packing.
pub static GEMM: KernelSource = KernelSource {
    name: "gemm",
    source: include_str!("../../kernels/gemm.cu"),
    entries: &[
        "tessera_gemm_f32",
        "tessera_gemm_f64",
        "tessera_pack_f32",
        "tessera_pack_f64",
    ],
};

/// `kernels/sort.cu`: LSD radix sort, scan, merge path, fingerprints.
pub static SORT: KernelSource = KernelSource {
    name: "sort",
    source: include_str!("../../kernels/sort.cu"),
    entries: &[
        "tessera_keys_to_bits_32",
        "tessera_bits_to_keys_32",
        "tessera_keys_to_bits_64",
        "tessera_bits_to_keys_64",
        "tessera_radix_histogram_32",
        "tessera_radix_histogram_64",
        "tessera_scan_exclusive_u32",
        "tessera_scan_add_u32",
        "tessera_radix_scatter_32",
        "tessera_radix_scatter_64",
        "tessera_gather_bytes",
        "tessera_iota_u32",
        "tessera_merge_path_32",
        "tessera_merge_path_64",
        "tessera_fingerprint_32",
        "tessera_fingerprint_64",
        "tessera_count_descents_32",
        "tessera_count_descents_64",
    ],
};

/// Every kernel file.
pub static ALL: &[&KernelSource] = &[&GEMM, &SORT];

/// A kernel: its file and its name.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The file that defines it.
    pub file: &'static KernelSource,
    /// The `extern "C"` name.
    pub name: &'static str,
}

impl KernelSource {
    /// The kernel `name` of this file (a programming error if it is not
    /// listed in [`KernelSource::entries`]).
    pub fn entry(&'static self, name: &'static str) -> Entry {
        debug_assert!(
            self.entries.contains(&name),
            "{name} is not listed in kernels/{}.cu's entries",
            self.name
        );
        Entry { file: self, name }
    }
}
