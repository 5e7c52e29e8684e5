// Tessera generation kernels: the generated problems of `src/rng.rs` and
// `src/ops/generate.rs` written straight into device memory, bit for bit
// what the CPU writes, so a problem generated on the device compares with
// one generated on the host, for any rank count. Compiled at run time by
// NVRTC: no headers.
//
// Every value is a pure function of (seed, global index): SplitMix64's
// output function (Stafford's Mix13) on a counter, then exact arithmetic
// only. A uniform double in [-1, 1) is ((z >> 11) - 2^52) * 2^-52: one
// exact product of an exact integer, equal to the CPU's
// (z >> 11) / 2^53 * 2 - 1 (every step of which is exact too), and no
// fused multiply-add can change it. Float keys round the double once (to
// nearest even), integer keys convert as Rust's `as` does (toward zero,
// saturating, NaN to 0).
//
//   tessera_generate_uniform_f32(float* out, u64 rows, u64 cols, u64 ld,
//                                u64 row0, u64 col0, u64 seed)
//   tessera_generate_uniform_f64(double* ...)
//        out[r * ld + c] = uniform(seed, row0 + r, col0 + c), the entries of
//        DistMatrix::random: r < rows, c < cols.
//   tessera_generate_keys_{u32,u64,i32,i64,f32,f64}(K* out, u64 count,
//        u64 start, u64 total, unsigned dist, u64 seed)
//        out[j] = key start + j of a generated input of `total` keys,
//        generate_keys(dist, total, start..start + count, seed); dist is
//        KeyDist's index: 0 uniform, 2 zipf, 3 sorted, 4 reverse, 5 equal,
//        6 few. 1 (normal) takes a logarithm and a cosine, which differ in
//        their last bits between CUDA's and the host's libraries: the host
//        generates those keys, and the launcher refuses dist 1.
// Launch: blockDim 256, gridDim min(ceil(elements / 256), 65535); grid-stride
// loops, so any grid is correct. Skip the launch when there is nothing to
// write.

#define TSR_GEN_GOLDEN 0x9e3779b97f4a7c15ull

typedef unsigned long long tsr_gen_u64;

__device__ __forceinline__ tsr_gen_u64 tsr_gen_finish(tsr_gen_u64 z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

__device__ __forceinline__ tsr_gen_u64 tsr_gen_mix64(tsr_gen_u64 x) { return tsr_gen_finish(x + TSR_GEN_GOLDEN); }

// (z >> 11) / 2^53 * 2 - 1, computed exactly.
__device__ __forceinline__ double tsr_gen_signed_unit(tsr_gen_u64 z) {
    long long k = (long long)(z >> 11) - (1ll << 52);
    return (double)k * 0x1p-52;
}

__device__ __forceinline__ double tsr_gen_uniform(tsr_gen_u64 seed, tsr_gen_u64 i, tsr_gen_u64 j) {
    return tsr_gen_signed_unit(tsr_gen_finish(seed + i * TSR_GEN_GOLDEN + j * 0xc2b2ae3d27d4eb4full + 0x165667b19e3779f9ull));
}

// Rust's `as` from f64: toward zero, saturating at the type's ends, NaN to 0.
__device__ __forceinline__ unsigned tsr_gen_to_u32(double x) {
    if (!(x > 0.0)) return 0u;
    if (x >= 4294967296.0) return 0xffffffffu;
    return (unsigned)x;
}
__device__ __forceinline__ tsr_gen_u64 tsr_gen_to_u64(double x) {
    if (!(x > 0.0)) return 0ull;
    if (x >= 18446744073709551616.0) return 0xffffffffffffffffull;
    return (tsr_gen_u64)x;
}
__device__ __forceinline__ int tsr_gen_to_i32(double x) {
    if (x != x) return 0;
    if (x <= -2147483648.0) return (int)0x80000000u;
    if (x >= 2147483648.0) return 0x7fffffff;
    return (int)x;
}
__device__ __forceinline__ long long tsr_gen_to_i64(double x) {
    if (x != x) return 0;
    if (x <= -9223372036854775808.0) return (long long)0x8000000000000000ull;
    if (x >= 9223372036854775808.0) return 0x7fffffffffffffffll;
    return (long long)x;
}

// The key at global index i as a double (dist 2..6), or, for dist 0, its
// 64 random bits in *bits (and the return value unused).
__device__ __forceinline__ double tsr_gen_key_value(unsigned dist, tsr_gen_u64 total, tsr_gen_u64 seed, tsr_gen_u64 i,
                                                tsr_gen_u64* bits) {
    double u = tsr_gen_uniform(seed, i, 17);
    tsr_gen_u64 b = (tsr_gen_u64)__double_as_longlong(u) ^ (i * TSR_GEN_GOLDEN);
    switch (dist) {
        case 0:
            *bits = tsr_gen_mix64(b);
            return 0.0;
        case 2:
            return floor(2.0 / (1.0 - u));
        case 3:
            return (double)i;
        case 4:
            return (double)(total - 1 - i);
        case 5:
            return 7.0;
        default:
            return (double)(tsr_gen_mix64(b) % 5);
    }
}

#define TSR_GEN_STRIDE(j, count) \
    for (tsr_gen_u64 j = (tsr_gen_u64)blockIdx.x * blockDim.x + threadIdx.x; j < (count); j += (tsr_gen_u64)gridDim.x * blockDim.x)

template <class T>
__device__ __forceinline__ void tsr_gen_generate_matrix(T* out, tsr_gen_u64 rows, tsr_gen_u64 cols, tsr_gen_u64 ld, tsr_gen_u64 row0,
                                                    tsr_gen_u64 col0, tsr_gen_u64 seed) {
    TSR_GEN_STRIDE(e, rows * cols) {
        tsr_gen_u64 r = e / cols, c = e % cols;
        out[r * ld + c] = (T)tsr_gen_uniform(seed, row0 + r, col0 + c);
    }
}

extern "C" __global__ void __launch_bounds__(256)
    tessera_generate_uniform_f32(float* out, unsigned long long rows, unsigned long long cols, unsigned long long ld,
                                 unsigned long long row0, unsigned long long col0, unsigned long long seed) {
    tsr_gen_generate_matrix(out, rows, cols, ld, row0, col0, seed);
}

extern "C" __global__ void __launch_bounds__(256)
    tessera_generate_uniform_f64(double* out, unsigned long long rows, unsigned long long cols, unsigned long long ld,
                                 unsigned long long row0, unsigned long long col0, unsigned long long seed) {
    tsr_gen_generate_matrix(out, rows, cols, ld, row0, col0, seed);
}

// A key of each type from the 64 random bits of a uniform key, and from
// the value of another distribution.
struct TsrGenU32 {
    typedef unsigned T;
    static __device__ __forceinline__ T random(tsr_gen_u64 b) { return (unsigned)b; }
    static __device__ __forceinline__ T value(double v) { return tsr_gen_to_u32(v); }
};
struct TsrGenU64 {
    typedef tsr_gen_u64 T;
    static __device__ __forceinline__ T random(tsr_gen_u64 b) { return b; }
    static __device__ __forceinline__ T value(double v) { return tsr_gen_to_u64(v); }
};
struct TsrGenI32 {
    typedef int T;
    static __device__ __forceinline__ T random(tsr_gen_u64 b) { return (int)(unsigned)b; }
    static __device__ __forceinline__ T value(double v) { return tsr_gen_to_i32(v); }
};
struct TsrGenI64 {
    typedef long long T;
    static __device__ __forceinline__ T random(tsr_gen_u64 b) { return (long long)b; }
    static __device__ __forceinline__ T value(double v) { return tsr_gen_to_i64(v); }
};
struct TsrGenF32 {
    typedef float T;
    static __device__ __forceinline__ T random(tsr_gen_u64 b) { return (float)tsr_gen_signed_unit(b); }
    static __device__ __forceinline__ T value(double v) { return (float)v; }
};
struct TsrGenF64 {
    typedef double T;
    static __device__ __forceinline__ T random(tsr_gen_u64 b) { return tsr_gen_signed_unit(b); }
    static __device__ __forceinline__ T value(double v) { return v; }
};

template <class K>
__device__ __forceinline__ void tsr_gen_generate_keys(typename K::T* out, tsr_gen_u64 count, tsr_gen_u64 start, tsr_gen_u64 total,
                                                  unsigned dist, tsr_gen_u64 seed) {
    TSR_GEN_STRIDE(j, count) {
        tsr_gen_u64 bits = 0;
        double v = tsr_gen_key_value(dist, total, seed, start + j, &bits);
        out[j] = dist == 0 ? K::random(bits) : K::value(v);
    }
}

extern "C" __global__ void __launch_bounds__(256)
    tessera_generate_keys_u32(unsigned* out, unsigned long long count, unsigned long long start,
                              unsigned long long total, unsigned dist, unsigned long long seed) {
    tsr_gen_generate_keys<TsrGenU32>(out, count, start, total, dist, seed);
}

extern "C" __global__ void __launch_bounds__(256)
    tessera_generate_keys_u64(unsigned long long* out, unsigned long long count, unsigned long long start,
                              unsigned long long total, unsigned dist, unsigned long long seed) {
    tsr_gen_generate_keys<TsrGenU64>(out, count, start, total, dist, seed);
}

extern "C" __global__ void __launch_bounds__(256)
    tessera_generate_keys_i32(int* out, unsigned long long count, unsigned long long start, unsigned long long total,
                              unsigned dist, unsigned long long seed) {
    tsr_gen_generate_keys<TsrGenI32>(out, count, start, total, dist, seed);
}

extern "C" __global__ void __launch_bounds__(256)
    tessera_generate_keys_i64(long long* out, unsigned long long count, unsigned long long start,
                              unsigned long long total, unsigned dist, unsigned long long seed) {
    tsr_gen_generate_keys<TsrGenI64>(out, count, start, total, dist, seed);
}

extern "C" __global__ void __launch_bounds__(256)
    tessera_generate_keys_f32(float* out, unsigned long long count, unsigned long long start,
                              unsigned long long total, unsigned dist, unsigned long long seed) {
    tsr_gen_generate_keys<TsrGenF32>(out, count, start, total, dist, seed);
}

extern "C" __global__ void __launch_bounds__(256)
    tessera_generate_keys_f64(double* out, unsigned long long count, unsigned long long start,
                              unsigned long long total, unsigned dist, unsigned long long seed) {
    tsr_gen_generate_keys<TsrGenF64>(out, count, start, total, dist, seed);
}
