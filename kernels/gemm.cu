// Tessera dense matrix multiply (GEMM) and panel packing kernels.
//
// Compiled at run time by NVRTC: no #include, no host headers, no std::.
//
// KERNELS
//
//   tessera_gemm_f32(m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
//   tessera_gemm_f64(m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
//
//     C[i*ldc + j] = alpha * sum_p A[i*lda + p] * B[p*ldb + j] + beta * C[i*ldc + j]
//
//     for 0 <= i < m, 0 <= j < n; all three matrices row-major. When beta == 0
//     C is never read (it may hold NaN or garbage); when k == 0 the result is
//     beta * C (0 when beta == 0). Any m, n, k >= 0 and any lda >= k,
//     ldb >= n, ldc >= n are accepted; the pointers may be sub-views with any
//     element alignment. C must not overlap A or B (A and B are read through
//     the read-only data path). Elements of C outside the m x n region (the
//     padding between n and ldc) are never touched.
//
//     Launch, f32: blockDim = (256, 1, 1),
//                  gridDim  = (ceil(n / 128), ceil(m / 128), 1).
//     Launch, f64: blockDim = (256, 1, 1),
//                  gridDim  = (ceil(n / 64), ceil(m / 64), 1).
//     blockIdx.x picks the column tile, blockIdx.y the row tile, so m is
//     limited to 65535 row tiles (8.3 M rows in f32, 4.1 M in f64).
//     No dynamic shared memory; 16.5 KiB of static shared memory per block
//     for either type.
//
//   tessera_pack_f32(rows, cols, src, ld_src, dst, ld_dst)
//   tessera_pack_f64(rows, cols, src, ld_src, dst, ld_dst)
//
//     dst[r*ld_dst + c] = src[r*ld_src + c] for r < rows, c < cols: copies a
//     column panel of a row-major block into a contiguous (or differently
//     strided) panel. Nothing else in dst is written.
//
//     Launch: blockDim = (32, 8, 1), gridDim = (ceil(cols / 32), ceil(rows / 8), 1).
//     One element per thread under that launch: a warp copies 32 consecutive
//     elements of one row, so both the load and the store are coalesced. The
//     loops are grid-strided in both directions, so a smaller grid (for
//     instance rows / 8 above the 65535 limit of gridDim.y) is still correct.
//
// GEMM DESIGN
//
// One C++ template (gemm_block) serves both types; the extern "C" wrappers
// fix the tile shapes:
//
//            block tile BM x BN   k-tile BK   per-thread block TM x TN   vector
//     f32    128 x 128            8           8 x 8                      float4
//     f64     64 x  64            8           4 x 4                      double2
//
// The 256 threads form a 16 x 16 grid (tx = tid % 16 along columns,
// ty = tid / 16 along rows). A thread's TM rows are not contiguous: they are
// TM / VEC groups of VEC consecutive rows, the groups BM / (TM / VEC) rows
// apart (f32: rows 4ty..4ty+3 and 64+4ty..64+4ty+3); the same for columns.
// That split makes every shared-memory fragment read a 16-byte vector read
// in which eight consecutive lanes (one 128-bit phase) read 128 consecutive
// bytes of B, i.e. conflict free, while the A fragment is a broadcast (a
// warp spans only two values of ty). It also makes the epilogue's 16-byte
// stores of a warp cover 256 contiguous bytes of a row of C.
//
// Per k-tile each thread loads one vector of A (BM x BK elements / 256
// threads) and one vector of B into registers, and per k step does an outer
// product of its TM-element column fragment of A and TN-element row fragment
// of B into TM x TN accumulators (64 FMAs for 4 LDS.128 in f32).
//
// Double buffering: the shared tiles are As[2][..], Bs[2][..]. While tile t
// is multiplied out of buffer t&1, the global loads of tile t+1 are already
// in flight into registers; after the math they are stored into buffer
// (t+1)&1 and a single __syncthreads per k-tile publishes them. That one
// barrier is enough: buffer (t+1)&1 was last read during tile t-1, and every
// thread passed the barrier at the end of tile t-1 after finishing those
// reads.
//
// Global loads: A's tile rows are BK = 8 elements (32 or 64 bytes) long, so
// 2 (f32) or 4 (f64) consecutive threads read one row of A and a warp reads
// 16 or 8 full 32/64-byte segments; a row of B's tile is 512 contiguous bytes
// read by a whole warp. The 128-bit path is chosen per block and per k-tile
// at run time, uniformly for the whole block (no divergence): the base
// pointer is 16-byte aligned, the leading dimension is a multiple of the
// vector width (so every row start, k0 and column offset keeps the
// alignment), and the tile lies entirely inside the matrix (for A: all BM
// rows exist and k - k0 >= BK; for B: all BN columns exist and
// k - k0 >= BK). Otherwise the tile is loaded element by element, with
// consecutive threads on consecutive elements (still coalesced), guarded and
// zero-filled outside the matrix, so partial tiles contribute exact zeros.
// The epilogue likewise uses 16-byte accesses to C only when C is aligned,
// ldc is a multiple of the vector width and the C tile is full; otherwise
// every element is guarded.
//
// Bank conflicts. A is stored transposed, As[BK][BM + PAD_A], so that the
// inner loop reads a column fragment of A as contiguous (vector, broadcast)
// shared loads. The transposing stores are what needs the padding:
//
//   f32 (32-bit banks, a warp's 32-bit stores are one wavefront when the 32
//   addresses fall into 32 distinct banks). In the vector path thread t holds
//   A row r = t/2, columns c0..c0+3 with c0 = 4*(t%2), and stores element e
//   to As[c0+e][r], word address (c0+e)*(BM+PAD) + r. For one e, a warp has
//   16 consecutive rows r (16 consecutive banks) and c0 in {0, 4}; the two
//   halves differ by 4*(BM+PAD) = 4*PAD (mod 32) banks. PAD = 4 shifts them
//   by 16 banks: 32 distinct banks, conflict free. (PAD = 0 would put both
//   halves on the same 16 banks: 2-way conflict.) In the scalar path a warp
//   stores 4 consecutive rows x 8 columns: bank (4c + r) mod 32, again all
//   distinct with PAD = 4. The row pitch 132 floats = 528 bytes keeps every
//   row 16-byte aligned for the float4 fragment reads.
//
//   f64 (64-bit accesses are served per half-warp, 16 lanes x 8 bytes = 128
//   bytes = 16 eight-byte bank pairs per wavefront). Thread t holds row
//   r = t/4, columns c0 = 2*(t%4) and c0+1. A half-warp has 4 consecutive
//   rows and c0 in {0, 2, 4, 6}; bank pair (c0+e)*(BM+PAD) + r (mod 16),
//   i.e. the four c0 groups are offset by c0*PAD = {0, 2, 4, 6}*PAD. PAD = 2
//   gives offsets {0, 4, 8, 12}: 16 distinct bank pairs, conflict free. The
//   scalar path (2 rows x 8 columns per half-warp, pair 2c + r) is conflict
//   free as well. Pitch 66 doubles = 528 bytes keeps 16-byte alignment.
//
//   B is stored untransposed, Bs[BK][BN]: its stores are contiguous vectors
//   (or contiguous words in the scalar path) and need no padding.
//
// Register use: f32 holds 64 accumulators + 16 fragment values + 8 staging
// values; f64 16 + 8 + 4 doubles. With __launch_bounds__(256) ptxas (CUDA 12
// NVRTC) allocates about 135-145 registers for f32, i.e. one 256-thread block
// per SM, and about 96-98 for f64 (two blocks), with no spills. Capping f32 at
// 128 registers (__launch_bounds__(256, 2)) currently spills a few words;
// whether two resident blocks pay for that is a question for tuning on the
// hardware.
//
// Rounding: each C element is one fused multiply-add chain over p in
// ascending order, then alpha*acc + beta*C, i.e. at most k + 2 roundings.
//
// Test hook: TESSERA_GEMM_PROBE(a_vec, b_vec, c_vec), if defined before this
// file, is called by thread 0 of every GEMM block with the block's choice of
// load/store path; the CPU emulator tests use it to prove that both paths run.
// On the GPU it is not defined and compiles to nothing.

#ifndef TESSERA_GEMM_PROBE
#define TESSERA_GEMM_PROBE(a_vec, b_vec, c_vec) ((void)0)
#endif

namespace tessera_gemm {

typedef long long i64;

__device__ __forceinline__ bool aligned16(const void* p) {
    return (reinterpret_cast<unsigned long long>(p) & 15ull) == 0;
}

// The 16-byte vector type of each element type, and the operations on it.
template <typename T> struct Vec;

template <> struct Vec<float> {
    enum { W = 4 };
    static __device__ __forceinline__ void load_global(const float* p, float* r) {
        const float4 v = __ldg(reinterpret_cast<const float4*>(p));
        r[0] = v.x; r[1] = v.y; r[2] = v.z; r[3] = v.w;
    }
    static __device__ __forceinline__ void load(const float* p, float* r) {
        const float4 v = *reinterpret_cast<const float4*>(p);
        r[0] = v.x; r[1] = v.y; r[2] = v.z; r[3] = v.w;
    }
    static __device__ __forceinline__ void store(float* p, const float* r) {
        *reinterpret_cast<float4*>(p) = make_float4(r[0], r[1], r[2], r[3]);
    }
    static __device__ __forceinline__ float fma_(float a, float b, float c) { return fmaf(a, b, c); }
};

template <> struct Vec<double> {
    enum { W = 2 };
    static __device__ __forceinline__ void load_global(const double* p, double* r) {
        const double2 v = __ldg(reinterpret_cast<const double2*>(p));
        r[0] = v.x; r[1] = v.y;
    }
    static __device__ __forceinline__ void load(const double* p, double* r) {
        const double2 v = *reinterpret_cast<const double2*>(p);
        r[0] = v.x; r[1] = v.y;
    }
    static __device__ __forceinline__ void store(double* p, const double* r) {
        *reinterpret_cast<double2*>(p) = make_double2(r[0], r[1]);
    }
    static __device__ __forceinline__ double fma_(double a, double b, double c) { return fma(a, b, c); }
};

template <typename T, int BM, int BN, int BK, int TM, int TN, int PAD_A>
__device__ __forceinline__ void gemm_block(int m, int n, int k, T alpha, const T* __restrict__ A, int lda,
                                           const T* __restrict__ B, int ldb, T beta, T* __restrict__ C,
                                           int ldc) {
    constexpr int NT = 256;
    constexpr int V = Vec<T>::W;
    constexpr int TX = BN / TN;  // threads along a row of the C tile
    constexpr int TY = BM / TM;  // threads along a column of the C tile
    constexpr int GM = TM / V;   // vector groups of rows per thread
    constexpr int GN = TN / V;   // vector groups of columns per thread
    constexpr int A_VEC = BM * BK / (NT * V);  // vectors of A each thread loads per k-tile
    constexpr int B_VEC = BK * BN / (NT * V);
    constexpr int A_EL = A_VEC * V;
    constexpr int B_EL = B_VEC * V;
    static_assert(TX * TY == NT, "one TM x TN block per thread");
    static_assert(TM % V == 0 && TN % V == 0, "thread blocks are whole vectors");
    static_assert(A_VEC * NT * V == BM * BK && B_VEC * NT * V == BK * BN, "tiles split evenly over threads");
    static_assert(BK % V == 0 && BN % V == 0, "tile rows are whole vectors");
    static_assert(((BM + PAD_A) * sizeof(T)) % 16 == 0 && (BN * sizeof(T)) % 16 == 0,
                  "shared rows keep 16-byte alignment");

    __align__(16) __shared__ T As[2][BK][BM + PAD_A];
    __align__(16) __shared__ T Bs[2][BK][BN];

    const int tid = threadIdx.x;
    const int tx = tid % TX;
    const int ty = tid / TX;
    const int row0 = blockIdx.y * BM;
    const int col0 = blockIdx.x * BN;

    // Block-uniform path choices; the k-tile part is added per tile.
    const bool a_vec = aligned16(A) && lda % V == 0 && m - row0 >= BM;
    const bool b_vec = aligned16(B) && ldb % V == 0 && n - col0 >= BN;
    const bool c_vec = aligned16(C) && ldc % V == 0 && m - row0 >= BM && n - col0 >= BN;
    if (tid == 0) TESSERA_GEMM_PROBE(a_vec, b_vec, c_vec);

    const T* __restrict__ Ablk = A + (i64)row0 * lda;
    const T* __restrict__ Bblk = B + col0;

    T acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = T(0);

    // Staging registers: tile t+1 travels global -> here -> shared buffer.
    T a_st[A_EL];
    T b_st[B_EL];

    // Global -> registers. Scalar mapping: element l*NT + tid of the tile in
    // row-major order, so consecutive threads read consecutive addresses.
    auto load_tile = [&](int k0) {
        const bool full_k = k - k0 >= BK;
        if (a_vec && full_k) {
#pragma unroll
            for (int l = 0; l < A_VEC; ++l) {
                const int v = l * NT + tid;
                const int r = v / (BK / V), c = (v % (BK / V)) * V;
                Vec<T>::load_global(Ablk + (i64)r * lda + k0 + c, &a_st[l * V]);
            }
        } else {
#pragma unroll
            for (int l = 0; l < A_EL; ++l) {
                const int e = l * NT + tid;
                const int r = e / BK, c = e % BK;
                a_st[l] = (row0 + r < m && k0 + c < k) ? __ldg(Ablk + (i64)r * lda + k0 + c) : T(0);
            }
        }
        if (b_vec && full_k) {
#pragma unroll
            for (int l = 0; l < B_VEC; ++l) {
                const int v = l * NT + tid;
                const int r = v / (BN / V), c = (v % (BN / V)) * V;
                Vec<T>::load_global(Bblk + (i64)(k0 + r) * ldb + c, &b_st[l * V]);
            }
        } else {
#pragma unroll
            for (int l = 0; l < B_EL; ++l) {
                const int e = l * NT + tid;
                const int r = e / BN, c = e % BN;
                b_st[l] = (k0 + r < k && col0 + c < n) ? __ldg(Bblk + (i64)(k0 + r) * ldb + c) : T(0);
            }
        }
    };

    // Registers -> shared buffer `buf`, with the same mapping as load_tile
    // used for this k-tile (the choice depends only on k0, so it is
    // recomputed rather than kept in a register).
    auto store_tile = [&](int buf, int k0) {
        const bool full_k = k - k0 >= BK;
        if (a_vec && full_k) {
#pragma unroll
            for (int l = 0; l < A_VEC; ++l) {
                const int v = l * NT + tid;
                const int r = v / (BK / V), c = (v % (BK / V)) * V;
#pragma unroll
                for (int e = 0; e < V; ++e) As[buf][c + e][r] = a_st[l * V + e];
            }
        } else {
#pragma unroll
            for (int l = 0; l < A_EL; ++l) {
                const int e = l * NT + tid;
                As[buf][e % BK][e / BK] = a_st[l];
            }
        }
        if (b_vec && full_k) {
#pragma unroll
            for (int l = 0; l < B_VEC; ++l) {
                const int v = l * NT + tid;
                const int r = v / (BN / V), c = (v % (BN / V)) * V;
                Vec<T>::store(&Bs[buf][r][c], &b_st[l * V]);
            }
        } else {
#pragma unroll
            for (int l = 0; l < B_EL; ++l) {
                const int e = l * NT + tid;
                Bs[buf][e / BN][e % BN] = b_st[l];
            }
        }
    };

    const int ntiles = k / BK + (k % BK != 0);
    if (ntiles > 0) {
        load_tile(0);
        store_tile(0, 0);
        __syncthreads();
    }
    for (int t = 0; t < ntiles; ++t) {
        const int cur = t & 1;
        const bool has_next = t + 1 < ntiles;  // block-uniform
        // Issue the next tile's global loads first so their latency hides
        // behind the BK outer products below.
        if (has_next) load_tile((t + 1) * BK);

#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            T a[TM], b[TN];
#pragma unroll
            for (int g = 0; g < GM; ++g) Vec<T>::load(&As[cur][kk][g * TY * V + ty * V], &a[g * V]);
#pragma unroll
            for (int g = 0; g < GN; ++g) Vec<T>::load(&Bs[cur][kk][g * TX * V + tx * V], &b[g * V]);
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] = Vec<T>::fma_(a[i], b[j], acc[i][j]);
        }

        if (has_next) {
            store_tile(cur ^ 1, (t + 1) * BK);
            __syncthreads();
        }
    }

    // Epilogue. beta == 0 is tested explicitly so that C is never loaded
    // then (0 * NaN would be NaN).
    const bool read_c = beta != T(0);
#pragma unroll
    for (int gi = 0; gi < GM; ++gi) {
#pragma unroll
        for (int ii = 0; ii < V; ++ii) {
            const int i = gi * V + ii;
            const int row = row0 + gi * TY * V + ty * V + ii;
            if (!c_vec && row >= m) continue;
            T* __restrict__ crow = C + (i64)row * ldc;
#pragma unroll
            for (int gj = 0; gj < GN; ++gj) {
                const int col = col0 + gj * TX * V + tx * V;
                if (c_vec) {
                    T out[V];
                    if (read_c) {
                        T old[V];
                        Vec<T>::load(crow + col, old);
#pragma unroll
                        for (int jj = 0; jj < V; ++jj) out[jj] = alpha * acc[i][gj * V + jj] + beta * old[jj];
                    } else {
#pragma unroll
                        for (int jj = 0; jj < V; ++jj) out[jj] = alpha * acc[i][gj * V + jj];
                    }
                    Vec<T>::store(crow + col, out);
                } else {
#pragma unroll
                    for (int jj = 0; jj < V; ++jj) {
                        if (col + jj < n) {
                            const T r = alpha * acc[i][gj * V + jj];
                            crow[col + jj] = read_c ? r + beta * crow[col + jj] : r;
                        }
                    }
                }
            }
        }
    }
}

template <typename T>
__device__ __forceinline__ void pack_panel(int rows, int cols, const T* __restrict__ src, int ld_src,
                                           T* __restrict__ dst, int ld_dst) {
    const int r_step = gridDim.y * blockDim.y;
    const int c_step = gridDim.x * blockDim.x;
    for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += c_step)
        for (int r = blockIdx.y * blockDim.y + threadIdx.y; r < rows; r += r_step)
            dst[(i64)r * ld_dst + c] = src[(i64)r * ld_src + c];
}

}  // namespace tessera_gemm

// f32: 128 x 128 block tile, BK = 8, 8 x 8 per thread, A padding 4 (see top).
extern "C" __global__ void __launch_bounds__(256)
    tessera_gemm_f32(int m, int n, int k, float alpha, const float* __restrict__ A, int lda,
                     const float* __restrict__ B, int ldb, float beta, float* __restrict__ C, int ldc) {
    tessera_gemm::gemm_block<float, 128, 128, 8, 8, 8, 4>(m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

// f64: 64 x 64 block tile, BK = 8, 4 x 4 per thread, A padding 2 (see top).
extern "C" __global__ void __launch_bounds__(256)
    tessera_gemm_f64(int m, int n, int k, double alpha, const double* __restrict__ A, int lda,
                     const double* __restrict__ B, int ldb, double beta, double* __restrict__ C, int ldc) {
    tessera_gemm::gemm_block<double, 64, 64, 8, 4, 4, 2>(m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

extern "C" __global__ void __launch_bounds__(256)
    tessera_pack_f32(int rows, int cols, const float* __restrict__ src, int ld_src, float* __restrict__ dst,
                     int ld_dst) {
    tessera_gemm::pack_panel<float>(rows, cols, src, ld_src, dst, ld_dst);
}

extern "C" __global__ void __launch_bounds__(256)
    tessera_pack_f64(int rows, int cols, const double* __restrict__ src, int ld_src, double* __restrict__ dst,
                     int ld_dst) {
    tessera_gemm::pack_panel<double>(rows, cols, src, ld_src, dst, ld_dst);
}
