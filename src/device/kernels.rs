//! The CUDA C kernel files, embedded in the binary and compiled by NVRTC at
//! first use (see [`super::nvrtc`]).
//!
//! This file is the one list of the kernels: each `extern "C"` kernel of
//! `kernels/*.cu` is an [`Entry`] static here, with its parameter types. The
//! unit tests check the list against the `.cu` files (names and parameter
//! types) and against the emulator's registry (`tests/kernel_emu/registry.cpp`),
//! and the typed launchers of `device::launch` refer to kernels only through
//! these statics.

/// The type of one kernel parameter, as a launch passes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// A device pointer (`T*`, `const T*`): 8 bytes.
    Ptr,
    /// `int`: 4 bytes.
    I32,
    /// `unsigned`: 4 bytes.
    U32,
    /// `unsigned long long`: 8 bytes.
    U64,
    /// `float`: 4 bytes.
    F32,
    /// `double`: 8 bytes.
    F64,
}

/// One kernel file of `kernels/`.
#[derive(Debug)]
pub struct KernelSource {
    /// The file name without `.cu` (`gemm`, `sort`).
    pub name: &'static str,
    /// The CUDA C source.
    pub source: &'static str,
    /// The `extern "C"` kernels the file defines.
    pub entries: &'static [&'static Entry],
}

/// A kernel: its file, its name and its parameters.
pub struct Entry {
    /// The file that defines it.
    pub file: &'static KernelSource,
    /// The `extern "C"` name.
    pub name: &'static str,
    /// Its parameter types, in order.
    pub params: &'static [Param],
}

impl std::fmt::Debug for Entry {
    // Not derived: the file lists its entries, which name the file.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "kernels/{}.cu:{}{:?}",
            self.file.name, self.name, self.params
        )
    }
}

use Param::{F32, F64, I32, Ptr, U32, U64};

/// `kernels/gemm.cu`: tiled SGEMM/DGEMM and panel packing.
pub static GEMM: KernelSource = KernelSource {
    name: "gemm",
    source: include_str!("../../kernels/gemm.cu"),
    entries: &[&GEMM_F32, &GEMM_F64, &PACK_F32, &PACK_F64],
};

/// `tessera_gemm_f32(int m, int n, int k, float alpha, const float* A, int
/// lda, const float* B, int ldb, float beta, float* C, int ldc)`.
pub static GEMM_F32: Entry = Entry {
    file: &GEMM,
    name: "tessera_gemm_f32",
    params: &[I32, I32, I32, F32, Ptr, I32, Ptr, I32, F32, Ptr, I32],
};

/// `tessera_gemm_f64`: [`GEMM_F32`] in double precision.
pub static GEMM_F64: Entry = Entry {
    file: &GEMM,
    name: "tessera_gemm_f64",
    params: &[I32, I32, I32, F64, Ptr, I32, Ptr, I32, F64, Ptr, I32],
};

/// `tessera_pack_f32(int rows, int cols, const float* src, int ld_src,
/// float* dst, int ld_dst)`.
pub static PACK_F32: Entry = Entry {
    file: &GEMM,
    name: "tessera_pack_f32",
    params: &[I32, I32, Ptr, I32, Ptr, I32],
};

/// `tessera_pack_f64`: [`PACK_F32`] for doubles.
pub static PACK_F64: Entry = Entry {
    file: &GEMM,
    name: "tessera_pack_f64",
    params: &[I32, I32, Ptr, I32, Ptr, I32],
};

/// `kernels/sort.cu`: LSD radix sort, scan, merge path, fingerprints.
pub static SORT: KernelSource = KernelSource {
    name: "sort",
    source: include_str!("../../kernels/sort.cu"),
    entries: &[
        &KEYS_TO_BITS_32,
        &BITS_TO_KEYS_32,
        &KEYS_TO_BITS_64,
        &BITS_TO_KEYS_64,
        &RADIX_HISTOGRAM_32,
        &RADIX_HISTOGRAM_64,
        &SCAN_EXCLUSIVE_U32,
        &SCAN_ADD_U32,
        &RADIX_SCATTER_32,
        &RADIX_SCATTER_64,
        &GATHER_BYTES,
        &IOTA_U32,
        &MERGE_PATH_32,
        &MERGE_PATH_64,
        &FINGERPRINT_32,
        &FINGERPRINT_64,
        &COUNT_DESCENTS_32,
        &COUNT_DESCENTS_64,
        &LOWER_BOUND_32,
        &LOWER_BOUND_64,
    ],
};

/// `tessera_keys_to_bits_32(unsigned* keys, u64 n, int kind)`, in place.
pub static KEYS_TO_BITS_32: Entry = Entry {
    file: &SORT,
    name: "tessera_keys_to_bits_32",
    params: &[Ptr, U64, I32],
};

/// `tessera_bits_to_keys_32(unsigned* keys, u64 n, int kind)`, in place.
pub static BITS_TO_KEYS_32: Entry = Entry {
    file: &SORT,
    name: "tessera_bits_to_keys_32",
    params: &[Ptr, U64, I32],
};

/// `tessera_keys_to_bits_64(u64* keys, u64 n, int kind)`, in place.
pub static KEYS_TO_BITS_64: Entry = Entry {
    file: &SORT,
    name: "tessera_keys_to_bits_64",
    params: &[Ptr, U64, I32],
};

/// `tessera_bits_to_keys_64(u64* keys, u64 n, int kind)`, in place.
pub static BITS_TO_KEYS_64: Entry = Entry {
    file: &SORT,
    name: "tessera_bits_to_keys_64",
    params: &[Ptr, U64, I32],
};

/// `tessera_radix_histogram_32(const unsigned* keys, u64 n, int shift,
/// unsigned* hist)`.
pub static RADIX_HISTOGRAM_32: Entry = Entry {
    file: &SORT,
    name: "tessera_radix_histogram_32",
    params: &[Ptr, U64, I32, Ptr],
};

/// `tessera_radix_histogram_64(const u64* keys, u64 n, int shift, unsigned*
/// hist)`.
pub static RADIX_HISTOGRAM_64: Entry = Entry {
    file: &SORT,
    name: "tessera_radix_histogram_64",
    params: &[Ptr, U64, I32, Ptr],
};

/// `tessera_scan_exclusive_u32(unsigned* data, u64 n, unsigned* tile_sums)`.
pub static SCAN_EXCLUSIVE_U32: Entry = Entry {
    file: &SORT,
    name: "tessera_scan_exclusive_u32",
    params: &[Ptr, U64, Ptr],
};

/// `tessera_scan_add_u32(unsigned* data, u64 n, const unsigned*
/// tile_offsets)`.
pub static SCAN_ADD_U32: Entry = Entry {
    file: &SORT,
    name: "tessera_scan_add_u32",
    params: &[Ptr, U64, Ptr],
};

/// `tessera_radix_scatter_32(const unsigned* keys_in, unsigned* keys_out,
/// const unsigned* vals_in, unsigned* vals_out, u64 n, int shift, const
/// unsigned* offsets)`.
pub static RADIX_SCATTER_32: Entry = Entry {
    file: &SORT,
    name: "tessera_radix_scatter_32",
    params: &[Ptr, Ptr, Ptr, Ptr, U64, I32, Ptr],
};

/// `tessera_radix_scatter_64`: [`RADIX_SCATTER_32`] for 64-bit keys.
pub static RADIX_SCATTER_64: Entry = Entry {
    file: &SORT,
    name: "tessera_radix_scatter_64",
    params: &[Ptr, Ptr, Ptr, Ptr, U64, I32, Ptr],
};

/// `tessera_gather_bytes(const u8* src, u8* dst, const unsigned* perm, u64
/// n, unsigned elem_bytes)`.
pub static GATHER_BYTES: Entry = Entry {
    file: &SORT,
    name: "tessera_gather_bytes",
    params: &[Ptr, Ptr, Ptr, U64, U32],
};

/// `tessera_iota_u32(unsigned* out, u64 n)`.
pub static IOTA_U32: Entry = Entry {
    file: &SORT,
    name: "tessera_iota_u32",
    params: &[Ptr, U64],
};

/// `tessera_merge_path_32(const unsigned* a, u64 na, const unsigned* b, u64
/// nb, unsigned* out)`.
pub static MERGE_PATH_32: Entry = Entry {
    file: &SORT,
    name: "tessera_merge_path_32",
    params: &[Ptr, U64, Ptr, U64, Ptr],
};

/// `tessera_merge_path_64`: [`MERGE_PATH_32`] for 64-bit keys.
pub static MERGE_PATH_64: Entry = Entry {
    file: &SORT,
    name: "tessera_merge_path_64",
    params: &[Ptr, U64, Ptr, U64, Ptr],
};

/// `tessera_fingerprint_32(const unsigned* bits, u64 n, u64* out)`.
pub static FINGERPRINT_32: Entry = Entry {
    file: &SORT,
    name: "tessera_fingerprint_32",
    params: &[Ptr, U64, Ptr],
};

/// `tessera_fingerprint_64(const u64* bits, u64 n, u64* out)`.
pub static FINGERPRINT_64: Entry = Entry {
    file: &SORT,
    name: "tessera_fingerprint_64",
    params: &[Ptr, U64, Ptr],
};

/// `tessera_count_descents_32(const unsigned* bits, u64 n, u64* count)`.
pub static COUNT_DESCENTS_32: Entry = Entry {
    file: &SORT,
    name: "tessera_count_descents_32",
    params: &[Ptr, U64, Ptr],
};

/// `tessera_count_descents_64(const u64* bits, u64 n, u64* count)`.
pub static COUNT_DESCENTS_64: Entry = Entry {
    file: &SORT,
    name: "tessera_count_descents_64",
    params: &[Ptr, U64, Ptr],
};

/// `tessera_lower_bound_32(const unsigned* bits, u64 n, const u64* queries,
/// u64 nq, u64* out)`: keys below each query in ascending bits.
pub static LOWER_BOUND_32: Entry = Entry {
    file: &SORT,
    name: "tessera_lower_bound_32",
    params: &[Ptr, U64, Ptr, U64, Ptr],
};

/// [`LOWER_BOUND_32`] for 64-bit keys.
pub static LOWER_BOUND_64: Entry = Entry {
    file: &SORT,
    name: "tessera_lower_bound_64",
    params: &[Ptr, U64, Ptr, U64, Ptr],
};

/// `kernels/generate.cu`: generated matrices and keys, bit for bit the
/// host's.
pub static GENERATE: KernelSource = KernelSource {
    name: "generate",
    source: include_str!("../../kernels/generate.cu"),
    entries: &[
        &GENERATE_UNIFORM_F32,
        &GENERATE_UNIFORM_F64,
        &GENERATE_KEYS_U32,
        &GENERATE_KEYS_U64,
        &GENERATE_KEYS_I32,
        &GENERATE_KEYS_I64,
        &GENERATE_KEYS_F32,
        &GENERATE_KEYS_F64,
    ],
};

/// `tessera_generate_uniform_f32(float* out, u64 rows, u64 cols, u64 ld,
/// u64 row0, u64 col0, u64 seed)`: a block of a random matrix.
pub static GENERATE_UNIFORM_F32: Entry = Entry {
    file: &GENERATE,
    name: "tessera_generate_uniform_f32",
    params: &[Ptr, U64, U64, U64, U64, U64, U64],
};

/// `tessera_generate_uniform_f64`: [`GENERATE_UNIFORM_F32`] in double
/// precision.
pub static GENERATE_UNIFORM_F64: Entry = Entry {
    file: &GENERATE,
    name: "tessera_generate_uniform_f64",
    params: &[Ptr, U64, U64, U64, U64, U64, U64],
};

/// `tessera_generate_keys_u32(unsigned* out, u64 count, u64 start, u64
/// total, unsigned dist, u64 seed)`: keys `start..start + count` of a
/// generated input.
pub static GENERATE_KEYS_U32: Entry = Entry {
    file: &GENERATE,
    name: "tessera_generate_keys_u32",
    params: &[Ptr, U64, U64, U64, U32, U64],
};

/// [`GENERATE_KEYS_U32`] for u64 keys.
pub static GENERATE_KEYS_U64: Entry = Entry {
    file: &GENERATE,
    name: "tessera_generate_keys_u64",
    params: &[Ptr, U64, U64, U64, U32, U64],
};

/// [`GENERATE_KEYS_U32`] for i32 keys.
pub static GENERATE_KEYS_I32: Entry = Entry {
    file: &GENERATE,
    name: "tessera_generate_keys_i32",
    params: &[Ptr, U64, U64, U64, U32, U64],
};

/// [`GENERATE_KEYS_U32`] for i64 keys.
pub static GENERATE_KEYS_I64: Entry = Entry {
    file: &GENERATE,
    name: "tessera_generate_keys_i64",
    params: &[Ptr, U64, U64, U64, U32, U64],
};

/// [`GENERATE_KEYS_U32`] for f32 keys.
pub static GENERATE_KEYS_F32: Entry = Entry {
    file: &GENERATE,
    name: "tessera_generate_keys_f32",
    params: &[Ptr, U64, U64, U64, U32, U64],
};

/// [`GENERATE_KEYS_U32`] for f64 keys.
pub static GENERATE_KEYS_F64: Entry = Entry {
    file: &GENERATE,
    name: "tessera_generate_keys_f64",
    params: &[Ptr, U64, U64, U64, U32, U64],
};

/// Every kernel file.
pub static ALL: &[&KernelSource] = &[&GEMM, &SORT, &GENERATE];

#[cfg(test)]
mod tests {
    use super::*;

    /// `source` without its comments.
    fn strip_comments(source: &str) -> String {
        let mut out = String::with_capacity(source.len());
        let mut rest = source;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("//") {
                rest = r.find('\n').map_or("", |i| &r[i..]);
            } else if let Some(r) = rest.strip_prefix("/*") {
                rest = r.find("*/").map_or("", |i| &r[i + 2..]);
                out.push(' ');
            } else {
                let c = rest.chars().next().expect("not empty");
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        out
    }

    /// The parameter type of one C parameter declaration.
    fn param_type(decl: &str) -> Param {
        if decl.contains('*') {
            return Ptr;
        }
        // Drop the parameter's name, keep the type words.
        let words: Vec<&str> = decl.split_whitespace().collect();
        match words[..words.len() - 1].join(" ").as_str() {
            "int" => I32,
            "unsigned" | "unsigned int" => U32,
            "unsigned long long" | "unsigned long long int" => U64,
            "float" => F32,
            "double" => F64,
            other => panic!("unknown kernel parameter type {other:?} in {decl:?}"),
        }
    }

    /// The `extern "C" __global__` kernels of a `.cu` source, with their
    /// parameter types, in file order.
    fn kernels_in(source: &str) -> Vec<(String, Vec<Param>)> {
        let source = strip_comments(source);
        let mut found = Vec::new();
        for (i, _) in source.match_indices("extern \"C\"") {
            let decl = source[i + "extern \"C\"".len()..].trim_start();
            let Some(decl) = decl.strip_prefix("__global__") else {
                continue;
            };
            let decl = decl
                .trim_start()
                .strip_prefix("void")
                .expect("kernels return void");
            let mut decl = decl.trim_start();
            if let Some(r) = decl.strip_prefix("__launch_bounds__") {
                let close = r.find(')').expect("__launch_bounds__(...)");
                decl = r[close + 1..].trim_start();
            }
            let open = decl.find('(').expect("a parameter list");
            let name = decl[..open].trim().to_string();
            let close = decl.find(')').expect("a parameter list");
            let params = decl[open + 1..close]
                .split(',')
                .map(|p| p.trim())
                .filter(|p| !p.is_empty())
                .map(param_type)
                .collect();
            found.push((name, params));
        }
        found
    }

    #[test]
    fn the_list_matches_the_kernels_in_every_cu_file() {
        for file in ALL {
            let listed: Vec<(String, Vec<Param>)> = file
                .entries
                .iter()
                .map(|e| (e.name.to_string(), e.params.to_vec()))
                .collect();
            let mut in_source = kernels_in(file.source);
            let mut sorted = listed.clone();
            in_source.sort_by(|a, b| a.0.cmp(&b.0));
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(
                sorted, in_source,
                "src/device/kernels.rs lists kernels/{}.cu's kernels (names and parameter types)",
                file.name
            );
            for e in file.entries {
                assert!(std::ptr::eq(e.file, *file), "{e:?} names another file");
            }
        }
    }

    #[test]
    fn every_kernel_file_is_listed() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/kernels");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("kernels/")
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                Some(name.strip_suffix(".cu")?.to_string())
            })
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = ALL.iter().map(|f| f.name.to_string()).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
    }

    #[test]
    fn the_emulator_registers_exactly_the_listed_kernels() {
        let registry = strip_comments(include_str!("../../tests/kernel_emu/registry.cpp"));
        let mut registered: Vec<&str> = registry
            .match_indices("KERNEL(")
            .filter(|(i, _)| !registry[..*i].ends_with("define "))
            .map(|(i, _)| {
                let rest = &registry[i + "KERNEL(".len()..];
                rest[..rest.find(')').expect("KERNEL(name)")].trim()
            })
            .collect();
        registered.sort();
        let mut listed: Vec<&str> = ALL
            .iter()
            .flat_map(|f| f.entries.iter().map(|e| e.name))
            .collect();
        listed.sort();
        assert_eq!(
            registered, listed,
            "tests/kernel_emu/registry.cpp must register every kernel of src/device/kernels.rs"
        );
        for file in ALL {
            assert!(
                registry.contains(&format!("#include \"../../kernels/{}.cu\"", file.name)),
                "registry.cpp does not include kernels/{}.cu",
                file.name
            );
        }
    }
}
