// A CPU emulation of the subset of CUDA C that Tessera's kernels use, so that
// their logic is tested on machines without a GPU.
//
// Every CUDA thread of a block is an OS thread; blocks run one after another,
// so `__shared__` (a function-local `static`) is shared by exactly the threads
// of one block, as on the GPU. `__syncthreads` and the warp intrinsics are
// real barriers: a kernel that forgets one, or reads another lane's value
// without one, fails here too. A thread that returns early leaves the
// barriers of the rest of its block, as exited threads do on the GPU.
//
// Not emulated: inline PTX, dynamic shared memory, cooperative groups,
// textures, warp-synchronous code that relies on lockstep without a sync.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace emu {

// A reusable barrier whose party count shrinks when a thread leaves.
class Barrier {
  public:
    void reset(int parties) {
        std::lock_guard<std::mutex> l(m_);
        expected_ = parties;
        arrived_ = 0;
    }
    void arrive_and_wait() {
        std::unique_lock<std::mutex> l(m_);
        unsigned long g = gen_;
        if (++arrived_ >= expected_) {
            release();
        } else {
            cv_.wait(l, [&] { return gen_ != g; });
        }
    }
    void leave() {
        std::lock_guard<std::mutex> l(m_);
        --expected_;
        if (arrived_ > 0 && arrived_ >= expected_) release();
    }

  private:
    void release() {
        arrived_ = 0;
        ++gen_;
        cv_.notify_all();
    }
    std::mutex m_;
    std::condition_variable cv_;
    int expected_ = 0;
    int arrived_ = 0;
    unsigned long gen_ = 0;
};

struct Warp {
    Barrier bar;
    unsigned long long slot[32];
};

inline thread_local dim3 t_thread;
inline thread_local dim3 t_block;
inline thread_local unsigned t_lane;
inline thread_local Warp* t_warp;
inline dim3 g_block_dim, g_grid_dim;
inline Barrier g_block_bar;

inline unsigned linear_tid() {
    return t_thread.x + g_block_dim.x * (t_thread.y + g_block_dim.y * t_thread.z);
}

// Runs `kernel(args...)` over `grid` x `block` threads, block after block.
template <class... P, class... A>
void launch(dim3 grid, dim3 block, void (*kernel)(P...), A... args) {
    const unsigned nthreads = block.x * block.y * block.z;
    if (nthreads == 0 || nthreads > 1024) throw std::runtime_error("emu: block of " + std::to_string(nthreads) + " threads");
    if (grid.x == 0 || grid.y == 0 || grid.z == 0) throw std::runtime_error("emu: empty grid");
    g_block_dim = block;
    g_grid_dim = grid;
    const unsigned nwarps = (nthreads + 31) / 32;
    std::vector<std::unique_ptr<Warp>> warps;
    for (unsigned w = 0; w < nwarps; ++w) warps.emplace_back(new Warp());
    Barrier block_end;  // all threads, between blocks
    block_end.reset(nthreads);
    g_block_bar.reset(nthreads);
    for (unsigned w = 0; w < nwarps; ++w) warps[w]->bar.reset(std::min(32u, nthreads - 32 * w));
    auto body = [&](unsigned tid) {
        t_thread = dim3(tid % block.x, (tid / block.x) % block.y, tid / (block.x * block.y));
        t_lane = tid % 32;
        t_warp = warps[tid / 32].get();
        for (unsigned bz = 0; bz < grid.z; ++bz)
            for (unsigned by = 0; by < grid.y; ++by)
                for (unsigned bx = 0; bx < grid.x; ++bx) {
                    t_block = dim3(bx, by, bz);
                    kernel(static_cast<P>(args)...);
                    g_block_bar.leave();
                    t_warp->bar.leave();
                    block_end.arrive_and_wait();
                    if (tid == 0) {
                        g_block_bar.reset(nthreads);
                        for (unsigned w = 0; w < nwarps; ++w) warps[w]->bar.reset(std::min(32u, nthreads - 32 * w));
                    }
                    block_end.arrive_and_wait();
                }
    };
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < nthreads; ++t) threads.emplace_back(body, t);
    for (auto& t : threads) t.join();
}

template <class T>
T shfl_from(T v, int src_lane) {
    static_assert(sizeof(T) <= 8, "emu: shuffle of more than 8 bytes");
    Warp* w = t_warp;
    unsigned long long bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    w->slot[t_lane] = bits;
    w->bar.arrive_and_wait();
    unsigned long long got = w->slot[src_lane & 31];
    w->bar.arrive_and_wait();
    T out;
    std::memcpy(&out, &got, sizeof(T));
    return out;
}

template <class T>
T bit_cast(const void* p) {
    T out;
    std::memcpy(&out, p, sizeof(T));
    return out;
}

}  // namespace emu

#define threadIdx (emu::t_thread)
#define blockIdx (emu::t_block)
#define blockDim (emu::g_block_dim)
#define gridDim (emu::g_grid_dim)
#define warpSize 32

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __restrict__ __restrict
#define __shared__ static
#define __constant__ static const
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

inline void __syncthreads() { emu::g_block_bar.arrive_and_wait(); }
inline int __syncthreads_count(int pred) {
    static std::atomic<int> count{0};
    static std::atomic<int> result{0};
    count.fetch_add(pred ? 1 : 0);
    emu::g_block_bar.arrive_and_wait();
    if (emu::linear_tid() == 0) result.store(count.exchange(0));
    emu::g_block_bar.arrive_and_wait();
    int r = result.load();
    emu::g_block_bar.arrive_and_wait();
    return r;
}
inline int __syncthreads_or(int pred) { return __syncthreads_count(pred) != 0; }
inline int __syncthreads_and(int pred) { return __syncthreads_count(!pred) == 0; }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::t_warp->bar.arrive_and_wait(); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }

template <class T> T __shfl_sync(unsigned, T v, int src, int width = 32) {
    int base = (int)emu::t_lane / width * width;
    return emu::shfl_from(v, base + (src % width + width) % width);
}
template <class T> T __shfl_up_sync(unsigned, T v, unsigned d, int width = 32) {
    int lane = (int)emu::t_lane, base = lane / width * width;
    int src = lane - (int)d;
    return emu::shfl_from(v, src < base ? lane : src);
}
template <class T> T __shfl_down_sync(unsigned, T v, unsigned d, int width = 32) {
    int lane = (int)emu::t_lane, base = lane / width * width;
    int src = lane + (int)d;
    return emu::shfl_from(v, src >= base + width ? lane : src);
}
template <class T> T __shfl_xor_sync(unsigned, T v, int m, int width = 32) {
    int lane = (int)emu::t_lane, base = lane / width * width;
    int src = lane ^ m;
    return emu::shfl_from(v, src >= base + width || src < base ? lane : src);
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
    emu::Warp* w = emu::t_warp;
    w->slot[emu::t_lane] = pred ? 1 : 0;
    w->bar.arrive_and_wait();
    unsigned r = 0;
    for (unsigned l = 0; l < 32; ++l)
        if ((mask >> l & 1u) && w->slot[l]) r |= 1u << l;
    w->bar.arrive_and_wait();
    return r;
}
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, !pred) == 0; }
template <class T> unsigned __match_any_sync(unsigned mask, T v) {
    emu::Warp* w = emu::t_warp;
    unsigned long long bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    w->slot[emu::t_lane] = bits;
    w->bar.arrive_and_wait();
    unsigned r = 0;
    for (unsigned l = 0; l < 32; ++l)
        if ((mask >> l & 1u) && w->slot[l] == bits) r |= 1u << l;
    w->bar.arrive_and_wait();
    return r;
}
inline unsigned __activemask() { return 0xffffffffu; }

inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(unsigned x) { return x ? __builtin_clz(x) : 32; }
inline int __clzll(unsigned long long x) { return x ? __builtin_clzll(x) : 64; }
inline int __ffs(unsigned x) { return __builtin_ffs((int)x); }
inline int __ffsll(unsigned long long x) { return __builtin_ffsll((long long)x); }
inline unsigned __brev(unsigned x) {
    unsigned r = 0;
    for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
inline unsigned __float_as_uint(float f) { return emu::bit_cast<unsigned>(&f); }
inline float __uint_as_float(unsigned u) { return emu::bit_cast<float>(&u); }
inline int __float_as_int(float f) { return emu::bit_cast<int>(&f); }
inline float __int_as_float(int u) { return emu::bit_cast<float>(&u); }
inline long long __double_as_longlong(double d) { return emu::bit_cast<long long>(&d); }
inline double __longlong_as_double(long long u) { return emu::bit_cast<double>(&u); }
template <class T> T __ldg(const T* p) { return *p; }

// By value: `decltype(a < b ? a : b)` would be a reference to a parameter.
template <class A, class B> inline std::common_type_t<A, B> min(A a, B b) { return a < b ? a : b; }
template <class A, class B> inline std::common_type_t<A, B> max(A a, B b) { return a < b ? b : a; }
using std::fma;
using std::fmaf;
using std::fabs;


template <class T> T atomicAdd(T* p, T v) { return std::atomic_ref<T>(*p).fetch_add(v); }
template <class T> T atomicSub(T* p, T v) { return std::atomic_ref<T>(*p).fetch_sub(v); }
template <class T> T atomicExch(T* p, T v) { return std::atomic_ref<T>(*p).exchange(v); }
template <class T> T atomicOr(T* p, T v) { return std::atomic_ref<T>(*p).fetch_or(v); }
template <class T> T atomicAnd(T* p, T v) { return std::atomic_ref<T>(*p).fetch_and(v); }
template <class T> T atomicXor(T* p, T v) { return std::atomic_ref<T>(*p).fetch_xor(v); }
template <class T> T atomicCAS(T* p, T expected, T desired) {
    std::atomic_ref<T>(*p).compare_exchange_strong(expected, desired);
    return expected;
}
template <class T> T atomicMax(T* p, T v) {
    std::atomic_ref<T> a(*p);
    T old = a.load();
    while (old < v && !a.compare_exchange_weak(old, v)) {}
    return old;
}
template <class T> T atomicMin(T* p, T v) {
    std::atomic_ref<T> a(*p);
    T old = a.load();
    while (v < old && !a.compare_exchange_weak(old, v)) {}
    return old;
}

#define EMU_VEC2(name, T, al) struct alignas(al) name { T x, y; }; \
    inline name make_##name(T x, T y) { return name{x, y}; }
#define EMU_VEC4(name, T, al) struct alignas(al) name { T x, y, z, w; }; \
    inline name make_##name(T x, T y, T z, T w) { return name{x, y, z, w}; }
EMU_VEC2(float2, float, 8)
EMU_VEC4(float4, float, 16)
EMU_VEC2(double2, double, 16)
EMU_VEC2(int2, int, 8)
EMU_VEC4(int4, int, 16)
EMU_VEC2(uint2, unsigned, 8)
EMU_VEC4(uint4, unsigned, 16)
EMU_VEC2(longlong2, long long, 16)
EMU_VEC2(ulonglong2, unsigned long long, 16)
