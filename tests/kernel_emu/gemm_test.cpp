// CPU-emulator tests of kernels/gemm.cu (tessera_gemm_f32/f64, tessera_pack_f32/f64).
//
// Build and run (from the repository root):
//   g++ -std=c++20 -O2 -pthread -Wno-unknown-pragmas -include tests/kernel_emu/cuda_emu.hpp
//       tests/kernel_emu/gemm_test.cpp -o /tmp/gemm_test && /tmp/gemm_test
// Exit status 0 iff every case passes; one line per case.
//
// Error bound. Each C element is computed as a chain of k fused multiply-adds
// followed by alpha*acc and + beta*C, i.e. at most k + 2 roundings of unit
// roundoff u (2^-24 in f32, 2^-53 in f64), so the standard bound is
//   |C - exact| <= gamma(k+2) * (|alpha| (|A||B|)_ij + |beta| |C0_ij|),
//   gamma(n) = n u / (1 - n u).
// The reference is itself computed in double with the same number of
// roundings, so it may be off from the exact value by gamma_64(k+2) times the
// same magnitude; that checking term is added (it is negligible for f32 and
// doubles the bound for f64). Inputs are in [-1, 1], far from underflow.

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

// Counts which load/store path each GEMM block chose (see the kernel's header).
static std::atomic<long> g_blocks{0}, g_a_vec{0}, g_b_vec{0}, g_c_vec{0};
#define TESSERA_GEMM_PROBE(a, b, c) (g_blocks++, g_a_vec += (a) ? 1 : 0, g_b_vec += (b) ? 1 : 0, g_c_vec += (c) ? 1 : 0)

#include "../../kernels/gemm.cu"

namespace {

struct XorShift {
    uint64_t s;
    explicit XorShift(uint64_t seed) : s(seed ? seed : 0x9E3779B97F4A7C15ull) {}
    uint64_t next() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
    // Uniform in [-1, 1) with 53 random bits (f32 callers round it), so that
    // f64 products and sums really round and the f64 bound is exercised.
    double uniform() { return std::ldexp((double)(next() >> 11), -52) - 1.0; }
};

// A buffer whose base is 64-byte aligned (so base + offset controls the
// alignment exactly) and which ends at most 63 bytes before an inaccessible
// page: a kernel that reads or writes past the end of a matrix (for instance
// an unguarded load of a partial tile) dies with SIGSEGV instead of silently
// reading neighbouring memory. The slack before the guard page is NaN.
template <class T>
struct Buf {
    T* p;
    size_t n;
    void* map;
    size_t map_len;
    explicit Buf(size_t n_) : n(n_ ? n_ : 1) {
        const size_t page = (size_t)sysconf(_SC_PAGESIZE);
        const size_t bytes = n * sizeof(T);
        const size_t data_pages = (bytes + 64 + page - 1) / page;
        map_len = (data_pages + 1) * page;
        map = mmap(nullptr, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (map == MAP_FAILED) std::abort();
        char* guard = static_cast<char*>(map) + data_pages * page;
        if (mprotect(guard, page, PROT_NONE) != 0) std::abort();
        char* start = reinterpret_cast<char*>(reinterpret_cast<uintptr_t>(guard - bytes) & ~uintptr_t(63));
        p = reinterpret_cast<T*>(start);
        for (T* q = p + n; reinterpret_cast<char*>(q + 1) <= guard; ++q) *q = std::numeric_limits<T>::quiet_NaN();
    }
    ~Buf() { munmap(map, map_len); }
    Buf(const Buf&) = delete;
    Buf& operator=(const Buf&) = delete;
};

extern "C" void on_segv(int) {
    static const char msg[] = "FAIL: out-of-bounds access (SIGSEGV at a guard page)\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(2);
}

template <class T> struct Traits;
template <> struct Traits<float> {
    static constexpr const char* name = "f32";
    static constexpr int BM = 128, BN = 128;
    static constexpr int V = 4;
    static void gemm(dim3 g, dim3 b, int m, int n, int k, float al, const float* A, int lda, const float* B, int ldb,
                     float be, float* C, int ldc) {
        emu::launch(g, b, tessera_gemm_f32, m, n, k, al, A, lda, B, ldb, be, C, ldc);
    }
    static void pack(dim3 g, dim3 b, int rows, int cols, const float* s, int lds, float* d, int ldd) {
        emu::launch(g, b, tessera_pack_f32, rows, cols, s, lds, d, ldd);
    }
};
template <> struct Traits<double> {
    static constexpr const char* name = "f64";
    static constexpr int BM = 64, BN = 64;
    static constexpr int V = 2;
    static void gemm(dim3 g, dim3 b, int m, int n, int k, double al, const double* A, int lda, const double* B,
                     int ldb, double be, double* C, int ldc) {
        emu::launch(g, b, tessera_gemm_f64, m, n, k, al, A, lda, B, ldb, be, C, ldc);
    }
    static void pack(dim3 g, dim3 b, int rows, int cols, const double* s, int lds, double* d, int ldd) {
        emu::launch(g, b, tessera_pack_f64, rows, cols, s, lds, d, ldd);
    }
};

double gamma_n(int n, double u) { return n * u / (1.0 - n * u); }

enum class Path { Any, AllVector, AllScalar, Mixed };

struct GemmCase {
    const char* label;
    int m, n, k;
    int lda, ldb, ldc;  // 0: tight (k, n, n)
    int off;            // elements added to every base pointer
    double alpha, beta;
    bool nan_c;         // fill C with NaN before the call (only with beta == 0)
    Path path;
};

int g_failures = 0;

template <class T>
void run_gemm(const GemmCase& c, uint64_t seed) {
    const int m = c.m, n = c.n, k = c.k;
    const int lda = c.lda ? c.lda : k, ldb = c.ldb ? c.ldb : n, ldc = c.ldc ? c.ldc : n;
    const T alpha = (T)c.alpha, beta = (T)c.beta;
    XorShift rng(seed);
    // Each buffer: `off` leading elements plus rows * ld, every element initialised.
    Buf<T> A(c.off + (size_t)m * lda), B(c.off + (size_t)k * ldb), C(c.off + (size_t)m * ldc);
    // Elements of A and B outside the logical matrices (offset prefix, ld
    // padding) are NaN: a kernel that lets one of them into a product, even
    // multiplied by a zero-filled partner, produces NaN.
    const T nan = std::numeric_limits<T>::quiet_NaN();
    for (size_t i = 0; i < A.n; ++i) {
        const bool in = lda > 0 && i >= (size_t)c.off && (int)((i - c.off) % lda) < k;
        A.p[i] = in ? (T)rng.uniform() : nan;
    }
    for (size_t i = 0; i < B.n; ++i) {
        const bool in = i >= (size_t)c.off && (int)((i - c.off) % ldb) < n;
        B.p[i] = in ? (T)rng.uniform() : nan;
    }
    const T sentinel = (T)12345.5;
    for (size_t i = 0; i < C.n; ++i) C.p[i] = sentinel;
    T* a = A.p + c.off;
    T* b = B.p + c.off;
    T* cm = C.p + c.off;
    for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j)
            cm[(size_t)i * ldc + j] = c.nan_c ? std::numeric_limits<T>::quiet_NaN() : (T)rng.uniform();
    std::vector<T> c0(C.p, C.p + C.n);

    g_blocks = g_a_vec = g_b_vec = g_c_vec = 0;
    const dim3 grid((n + Traits<T>::BN - 1) / Traits<T>::BN, (m + Traits<T>::BM - 1) / Traits<T>::BM, 1);
    Traits<T>::gemm(grid, dim3(256, 1, 1), m, n, k, alpha, a, lda, b, ldb, beta, cm, ldc);

    const double u = std::ldexp(1.0, sizeof(T) == 4 ? -24 : -53);
    const double g = gamma_n(k + 2, u) + gamma_n(k + 2, std::ldexp(1.0, -53));
    double worst = 0.0;  // max |err| / tol
    long bad = 0;
    for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
            double s = 0.0, sa = 0.0;
            for (int p = 0; p < k; ++p) {
                const double x = (double)a[(size_t)i * lda + p], y = (double)b[(size_t)p * ldb + j];
                s += x * y;
                sa += std::fabs(x * y);
            }
            const double old = (double)c0[c.off + (size_t)i * ldc + j];
            const double ref = (double)alpha * s + ((double)beta != 0.0 ? (double)beta * old : 0.0);
            const double mag =
                std::fabs((double)alpha) * sa + ((double)beta != 0.0 ? std::fabs((double)beta) * std::fabs(old) : 0.0);
            const double tol = g * mag;
            const double got = (double)cm[(size_t)i * ldc + j];
            const double err = std::fabs(got - ref);
            if (!std::isfinite(got) || !(err <= tol)) {
                if (bad < 3)
                    std::printf("    C[%d][%d] = %.17g, reference %.17g, |err| %.3g > tol %.3g\n", i, j, got, ref, err,
                                tol);
                ++bad;
            } else if (tol > 0.0) {
                worst = std::max(worst, err / tol);
            }
        }
    // Nothing outside the m x n region may change: the offset prefix and the
    // ldc padding still hold the sentinel, bit for bit.
    long touched = 0;
    for (size_t idx = 0; idx < C.n; ++idx) {
        const bool inside = idx >= (size_t)c.off && ((idx - c.off) % ldc) < (size_t)n;
        if (!inside && std::memcmp(&C.p[idx], &c0[idx], sizeof(T)) != 0) ++touched;
    }
    const long blocks = g_blocks, av = g_a_vec, bv = g_b_vec, cv = g_c_vec;
    bool path_ok = blocks == (long)grid.x * grid.y;
    if (c.path == Path::AllVector) path_ok = path_ok && av == blocks && bv == blocks && cv == blocks;
    if (c.path == Path::AllScalar) path_ok = path_ok && av == 0 && bv == 0 && cv == 0;
    if (c.path == Path::Mixed) path_ok = path_ok && av == blocks && bv > 0 && bv < blocks && cv > 0 && cv < blocks;
    const bool ok = bad == 0 && touched == 0 && path_ok;
    if (!ok) ++g_failures;
    std::printf("%s gemm_%s %-34s m=%d n=%d k=%d lda=%d ldb=%d ldc=%d off=%d alpha=%g beta=%g: "
                "max err/tol %.3g, blocks %ld (vector A/B/C %ld/%ld/%ld)%s%s%s\n",
                ok ? "PASS" : "FAIL", Traits<T>::name, c.label, m, n, k, lda, ldb, ldc, c.off, c.alpha, c.beta, worst,
                blocks, av, bv, cv, bad ? " WRONG VALUES" : "", touched ? " PADDING TOUCHED" : "",
                path_ok ? "" : " UNEXPECTED PATH");
}

template <class T>
void run_pack(int rows, int cols, int ld_src, int ld_dst, uint64_t seed) {
    XorShift rng(seed);
    // One extra row in dst so that writes past `rows` would be seen too.
    Buf<T> src_buf((size_t)rows * ld_src), dst_buf((size_t)(rows + 1) * ld_dst);
    T* src = src_buf.p;
    T* dst = dst_buf.p;
    for (size_t i = 0; i < src_buf.n; ++i) src[i] = (T)rng.uniform();
    const T sentinel = (T)-777.25;
    for (size_t i = 0; i < dst_buf.n; ++i) dst[i] = sentinel;
    const dim3 grid((cols + 31) / 32, (rows + 7) / 8, 1);
    Traits<T>::pack(grid, dim3(32, 8, 1), rows, cols, src, ld_src, dst, ld_dst);
    long bad = 0, touched = 0;
    for (int r = 0; r <= rows; ++r)
        for (int c = 0; c < ld_dst; ++c) {
            const T got = dst[(size_t)r * ld_dst + c];
            if (r < rows && c < cols) {
                if (std::memcmp(&got, &src[(size_t)r * ld_src + c], sizeof(T)) != 0) ++bad;
            } else if (std::memcmp(&got, &sentinel, sizeof(T)) != 0) {
                ++touched;
            }
        }
    const bool ok = bad == 0 && touched == 0;
    if (!ok) ++g_failures;
    std::printf("%s pack_%s rows=%d cols=%d ld_src=%d ld_dst=%d: %ld wrong, %ld outside touched\n",
                ok ? "PASS" : "FAIL", Traits<T>::name, rows, cols, ld_src, ld_dst, bad, touched);
}

template <class T>
void run_all() {
    constexpr int BM = Traits<T>::BM, BN = Traits<T>::BN;
    const std::vector<GemmCase> cases = {
        {"1x1x1", 1, 1, 1, 0, 0, 0, 0, 1.0, 0.0, false, Path::Any},
        {"31x31x31", 31, 31, 31, 0, 0, 0, 0, 1.0, 0.0, false, Path::Any},
        {"1x257x3", 1, 257, 3, 0, 0, 0, 0, 1.0, 0.0, false, Path::Any},
        {"129x1x130", 129, 1, 130, 0, 0, 0, 0, 1.0, 0.0, false, Path::Any},
        // Whole tiles in m, n and k with tight, vector-multiple leading
        // dimensions (8 and 128) and 64-byte aligned bases: every block takes
        // the vector path; C is NaN and beta = 0, so the vector epilogue must
        // not read C.
        {"128x128x8 exact tiles, C=NaN beta=0", 128, 128, 8, 0, 0, 0, 0, 1.0, 0.0, true, Path::AllVector},
        {"257x131x199 odd", 257, 131, 199, 0, 0, 0, 0, 1.0, 0.0, false, Path::Any},
        {"k=0 beta=0.5", 37, 45, 0, 0, 0, 0, 0, 1.0, 0.5, false, Path::Any},
        {"k=0 beta=0 C=NaN", 37, 45, 0, 0, 0, 0, 0, 1.0, 0.0, true, Path::Any},
        {"beta=0 C=NaN", 70, 90, 20, 0, 0, 0, 0, 1.0, 0.0, true, Path::Any},
        {"alpha=-1.5 beta=0.25", 100, 77, 33, 0, 0, 0, 0, -1.5, 0.25, false, Path::Any},
        // Misaligned: every base is one element past a 64-byte boundary, so no
        // pointer is 16-byte aligned and every block must take the guarded
        // scalar path for A, B and C, whatever the leading dimensions.
        {"misaligned base+1 (scalar path)", 150, 140, 37, 37 + 3, 140 + 1, 140 + 5, 1, -1.5, 0.25, false,
         Path::AllScalar},
        // Vector path: m, n multiples of the block tile, k a multiple of BK,
        // lda, ldb, ldc multiples of 4 (hence of the vector width 4 or 2),
        // aligned bases: every block and every k-tile is full and legal for
        // 16-byte accesses; beta != 0 also exercises the vector read of C.
        {"aligned padded ld (vector path)", 2 * BM, 2 * BN, 48, 48 + 4, 2 * BN + 4, 2 * BN + 8, 0, -1.5, 0.25, false,
         Path::AllVector},
        // Mixed: A is vector-legal in every block but its second k-tile is
        // partial (k = 13), so each block switches from 16-byte to guarded
        // loads of A between k-tiles; the first column tile is vector-legal
        // for B and C, the second (3 columns) is not.
        {"vector A with partial k-tile, mixed B/C", BM, BN + 3, 13, 16, BN + 4, BN + 4, 0, 1.0, -0.75, false,
         Path::Mixed},
    };
    uint64_t seed = 0x1234567ull;
    for (const auto& c : cases) run_gemm<T>(c, seed++);

    run_pack<T>(1, 1, 1, 1, seed++);
    run_pack<T>(33, 70, 100, 75, seed++);
    run_pack<T>(8, 32, 32, 32, seed++);
    run_pack<T>(17, 5, 9, 7, seed++);
    run_pack<T>(100, 3, 64, 3, seed++);
}

}  // namespace

int main() {
    signal(SIGSEGV, on_segv);
    run_all<float>();
    run_all<double>();
    if (g_failures) {
        std::printf("%d case(s) FAILED\n", g_failures);
        return 1;
    }
    std::printf("all cases passed\n");
    return 0;
}
