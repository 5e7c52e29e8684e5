// Tessera sort kernels: key mapping, LSD radix sort (histogram, scan,
// scatter), gather, iota, merge path, and on-device verification
// (fingerprint, descent count). Compiled at run time by NVRTC: no headers.
//
// ===========================================================================
// Key mapping ("bits")
// ===========================================================================
// Keys are sorted as unsigned bits, identical to the Rust CPU path:
//   kind 0 (unsigned): as is.
//   kind 1 (signed):   flip the sign bit (both directions).
//   kind 2 (float):    to bits: sign set -> flip all bits, else set the sign.
//                      back:    sign set -> clear it, else flip all bits.
// So -NaN < -inf < ... < -0 < +0 < ... < +inf < +NaN.
//
//   tessera_keys_to_bits_32(unsigned* keys, u64 n, int kind)            in place
//   tessera_bits_to_keys_32(unsigned* keys, u64 n, int kind)
//   tessera_keys_to_bits_64(u64* keys, u64 n, int kind)
//   tessera_bits_to_keys_64(u64* keys, u64 n, int kind)
//   tessera_iota_u32(unsigned* out, u64 n)                              out[i] = i
//   tessera_gather_bytes(const u8* src, u8* dst, const unsigned* perm, u64 n,
//                        unsigned elem_bytes)     dst elem i = src elem perm[i]
//   tessera_fingerprint_32/64(const K* bits, u64 n, u64* out)
//        out[0] += wrapping sum of mix64(bits[i]), out[1] ^= xor of them
//        (host zeroes out[0..2] first). mix64 = one SplitMix64 step:
//        z = x + 0x9e3779b97f4a7c15; z = (z ^ z>>30) * 0xbf58476d1ce4e5b9;
//        z = (z ^ z>>27) * 0x94d049bb133111eb; z ^ z>>31.
//   tessera_count_descents_32/64(const K* bits, u64 n, u64* count)
//        count += #{i : bits[i] > bits[i+1]} (host zeroes count first)
// Launch for all of the above: blockDim 256, gridDim min(ceil(n/256), 65535)
// (fingerprint and count_descents: min(ceil(n/256), 1024)); grid-stride
// loops, so any grid size is correct. Skip the launch when n == 0.
//
// ===========================================================================
// Scan (exclusive prefix sum of u32, wrapping)
// ===========================================================================
//   tessera_scan_exclusive_u32(unsigned* data, u64 n, unsigned* tile_sums)
//        gridDim ceil(n/2048), blockDim 256. Block b exclusive-scans tile
//        [b*2048, min(n,(b+1)*2048)) in place; if tile_sums != null it writes
//        the tile total to tile_sums[b].
//   tessera_scan_add_u32(unsigned* data, u64 n, const unsigned* tile_offsets)
//        gridDim ceil(n/2048), blockDim 256. Adds tile_offsets[b] to every
//        element of tile b.
// Host sequence scan(data, n):
//   n == 0: nothing.
//   n <= 2048: scan_exclusive<<<1, 256>>>(data, n, null).
//   else: t = ceil(n/2048); sums = buffer of t u32;
//         scan_exclusive<<<t, 256>>>(data, n, sums); scan(sums, t);
//         scan_add<<<t, 256>>>(data, n, sums).
//
// ===========================================================================
// LSD radix sort, 8-bit digits, stable, keys with optional u32 values
// ===========================================================================
// TILE = 4096 keys per block (256 threads x 16 keys); nblocks = ceil(n/4096);
// n <= 2^32 - 1 (offsets are u32).
//   tessera_radix_histogram_32/64(const K* keys, u64 n, int shift, unsigned* hist)
//        gridDim nblocks, blockDim 256. hist[d * nblocks + b] = number of keys
//        of tile b with digit d = (key >> shift) & 255 (digit-major, so an
//        exclusive scan of all 256*nblocks entries gives every (digit, tile)
//        its first output position).
//   tessera_radix_scatter_32/64(const K* keys_in, K* keys_out,
//        const unsigned* vals_in, unsigned* vals_out, u64 n, int shift,
//        const unsigned* offsets)
//        gridDim nblocks, blockDim 256. offsets = the scanned histogram.
//        vals_in/vals_out may both be null (keys only). Stable: a key goes to
//        offsets[d*nblocks+b] + (keys of tile b with digit d before it).
// Host sequence sort(keys A, n, [vals VA]):
//   n == 0: nothing.
//   kind != 0: keys_to_bits(A)
//   for shift = 0, 8, ..., (8*sizeof(K) - 8):
//       radix_histogram<<<nblocks, 256>>>(A, n, shift, hist)    (256*nblocks u32)
//       scan(hist, 256*nblocks)
//       radix_scatter<<<nblocks, 256>>>(A, B, VA, VB, n, shift, hist)
//       swap(A, B); swap(VA, VB)
//   kind != 0: bits_to_keys(A)
// After an even number of passes (4 or 8) the result is back in the original
// buffers. Pairs of any value type: sort (key, iota index) pairs, then
// gather_bytes the values with the sorted indices as perm.
//
// ===========================================================================
// Merge of two sorted runs (merge path), stable: ties take a first
// ===========================================================================
//   tessera_merge_path_32/64(const K* a, u64 na, const K* b, u64 nb, K* out)
//        inputs are mapped bits, ascending. blockDim 256, 8 outputs per
//        thread: gridDim ceil((na+nb)/2048). Skip when na + nb == 0.
//
// ===========================================================================
// Design notes
// ===========================================================================
// Radix scatter: each warp owns 512 consecutive keys of the tile, held 16 per
// lane in a warp-striped layout (item i of lane l is key w*512 + i*32 + l), so
// loads are coalesced and "earlier in input" is (warp, item, lane)
// lexicographic. Ranking walks the items in order: __match_any_sync groups the
// lanes holding the same digit, every lane reads its digit's per-warp counter
// in shared memory, the group's highest lane bumps it by the group size, and
// each lane's rank is the old counter plus the lower lanes of its group. A
// per-digit exclusive scan over the 8 warps, plus a block-wide exclusive scan
// over digits, turns those ranks into positions of the tile sorted by digit
// (stable). The tile is staged in shared memory in that order, then written
// out striped: staged slot j goes to offsets[d*nblocks+b] - digit_start[d] + j,
// so consecutive threads write consecutive addresses within a digit's run.
// Values reuse the same staging buffer; the staged digit of every slot is kept
// in shared memory so the value pass needs no keys.
//
// Histogram: per-warp sub-histograms with shared atomics, summed per digit.
// Scan: striped loads transposed through (padded) shared memory so each
// thread scans 8 consecutive elements, then a warp-shuffle block scan.
// Merge path: warps 0 and 1 find the block's two diagonal splits in global
// memory with a 32-ary search (one ballot per round), the block loads its a
// and b ranges into shared memory, each thread binary-searches its own
// sub-diagonal there and merges 8 outputs, which go back through shared
// memory for coalesced stores.
// Fingerprint / descents: grid-stride per-thread accumulation, shuffle and
// shared-memory block reduction, one 64-bit atomic per block.
//
// Everything is a separate launch (no inter-block waits or look-back), so the
// kernels are correct whatever the block scheduling order.

#define TSR_FULL_MASK 0xffffffffu

// An enum, not constexpr variables: NVRTC would emit those as device globals.
enum : unsigned {
    TSR_THREADS = 256,
    TSR_WARPS = TSR_THREADS / 32,
    TSR_RADIX_ITEMS = 16,
    TSR_RADIX_TILE = TSR_THREADS * TSR_RADIX_ITEMS,  // 4096
    TSR_WARP_KEYS = 32 * TSR_RADIX_ITEMS,            // 512
    TSR_DIGITS = 256,
    TSR_SCAN_ITEMS = 8,
    TSR_SCAN_TILE = TSR_THREADS * TSR_SCAN_ITEMS,  // 2048
    TSR_MERGE_ITEMS = 8,
    TSR_MERGE_TILE = TSR_THREADS * TSR_MERGE_ITEMS,  // 2048
};

// Own min helpers: CUDA's min() overload set and the emulator's template
// differ (the latter returns a reference to its argument for equal types).
__device__ __forceinline__ unsigned tsr_min_u32(unsigned a, unsigned b) { return a < b ? a : b; }

__device__ __forceinline__ unsigned long long tsr_min_u64(unsigned long long a, unsigned long long b) {
    return a < b ? a : b;
}

__device__ __forceinline__ unsigned long long tsr_gstride_start() {
    return (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ unsigned long long tsr_gstride_step() {
    return (unsigned long long)gridDim.x * blockDim.x;
}

// ---------------------------------------------------------------------------
// Key mapping
// ---------------------------------------------------------------------------

template <class U>
__device__ __forceinline__ U tsr_sign_bit() {
    return (U)1 << (sizeof(U) * 8 - 1);
}

template <class U>
__device__ __forceinline__ U tsr_to_bits(U x, int kind) {
    const U sign = tsr_sign_bit<U>();
    if (kind == 1) return x ^ sign;
    if (kind == 2) return (x & sign) ? (U)~x : (U)(x | sign);
    return x;
}

template <class U>
__device__ __forceinline__ U tsr_from_bits(U x, int kind) {
    const U sign = tsr_sign_bit<U>();
    if (kind == 1) return x ^ sign;
    if (kind == 2) return (x & sign) ? (U)(x & ~sign) : (U)~x;
    return x;
}

template <class U>
__device__ __forceinline__ void tsr_map_keys(U* keys, unsigned long long n, int kind, bool forward) {
    // Unsigned keys are already their bits; the host normally skips the launch.
    if (kind != 1 && kind != 2) return;
    for (unsigned long long i = tsr_gstride_start(); i < n; i += tsr_gstride_step())
        keys[i] = forward ? tsr_to_bits<U>(keys[i], kind) : tsr_from_bits<U>(keys[i], kind);
}

extern "C" __global__ void __launch_bounds__(256) tessera_keys_to_bits_32(unsigned* keys, unsigned long long n, int kind) {
    tsr_map_keys<unsigned>(keys, n, kind, true);
}

extern "C" __global__ void __launch_bounds__(256) tessera_bits_to_keys_32(unsigned* keys, unsigned long long n, int kind) {
    tsr_map_keys<unsigned>(keys, n, kind, false);
}

extern "C" __global__ void __launch_bounds__(256) tessera_keys_to_bits_64(unsigned long long* keys, unsigned long long n, int kind) {
    tsr_map_keys<unsigned long long>(keys, n, kind, true);
}

extern "C" __global__ void __launch_bounds__(256) tessera_bits_to_keys_64(unsigned long long* keys, unsigned long long n, int kind) {
    tsr_map_keys<unsigned long long>(keys, n, kind, false);
}

extern "C" __global__ void __launch_bounds__(256) tessera_iota_u32(unsigned* out, unsigned long long n) {
    for (unsigned long long i = tsr_gstride_start(); i < n; i += tsr_gstride_step()) out[i] = (unsigned)i;
}

// ---------------------------------------------------------------------------
// Gather
// ---------------------------------------------------------------------------

template <class W>
__device__ __forceinline__ void tsr_gather_words(const unsigned char* src, unsigned char* dst, const unsigned* perm,
                                                 unsigned long long n, unsigned elem_bytes) {
    const unsigned words = elem_bytes / (unsigned)sizeof(W);
    for (unsigned long long i = tsr_gstride_start(); i < n; i += tsr_gstride_step()) {
        const W* s = (const W*)(src + (unsigned long long)perm[i] * elem_bytes);
        W* d = (W*)(dst + i * elem_bytes);
        for (unsigned w = 0; w < words; ++w) d[w] = s[w];
    }
}

extern "C" __global__ void __launch_bounds__(256) tessera_gather_bytes(const unsigned char* src, unsigned char* dst,
                                                                       const unsigned* perm, unsigned long long n,
                                                                       unsigned elem_bytes) {
    // Every element starts at a multiple of elem_bytes, so the widest word that
    // divides both elem_bytes and the base addresses is aligned everywhere.
    const unsigned long long align = (unsigned long long)src | (unsigned long long)dst | elem_bytes;
    if ((align & 7) == 0)
        tsr_gather_words<unsigned long long>(src, dst, perm, n, elem_bytes);
    else if ((align & 3) == 0)
        tsr_gather_words<unsigned>(src, dst, perm, n, elem_bytes);
    else if ((align & 1) == 0)
        tsr_gather_words<unsigned short>(src, dst, perm, n, elem_bytes);
    else
        tsr_gather_words<unsigned char>(src, dst, perm, n, elem_bytes);
}

// ---------------------------------------------------------------------------
// Block-wide helpers (blockDim == 256)
// ---------------------------------------------------------------------------

// Inclusive scan across the warp.
__device__ __forceinline__ unsigned tsr_warp_inclusive_scan(unsigned x) {
    const unsigned lane = threadIdx.x & 31;
#pragma unroll
    for (unsigned d = 1; d < 32; d <<= 1) {
        const unsigned y = __shfl_up_sync(TSR_FULL_MASK, x, d);
        if (lane >= d) x += y;
    }
    return x;
}

// Exclusive scan of one value per thread across the block; *total gets the
// block sum. `warp_sums` is TSR_WARPS words of shared scratch; the caller
// must __syncthreads() before reusing it.
__device__ __forceinline__ unsigned tsr_block_exclusive_scan(unsigned x, unsigned* warp_sums, unsigned* total) {
    const unsigned lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const unsigned incl = tsr_warp_inclusive_scan(x);
    if (lane == 31) warp_sums[warp] = incl;
    __syncthreads();
    unsigned before = 0, sum = 0;
#pragma unroll
    for (unsigned w = 0; w < TSR_WARPS; ++w) {
        const unsigned s = warp_sums[w];
        if (w < warp) before += s;
        sum += s;
    }
    *total = sum;
    return before + incl - x;
}

// ---------------------------------------------------------------------------
// Scan
// ---------------------------------------------------------------------------

// Pads one word every 32 so that thread t reading its 8 consecutive elements
// (t*8 .. t*8+7) hits 32 distinct banks across the warp.
__device__ __forceinline__ unsigned tsr_scan_pad(unsigned j) { return j + (j >> 5); }

extern "C" __global__ void __launch_bounds__(256) tessera_scan_exclusive_u32(unsigned* data, unsigned long long n,
                                                                             unsigned* tile_sums) {
    __shared__ unsigned s_tile[TSR_SCAN_TILE + TSR_SCAN_TILE / 32];
    __shared__ unsigned s_warp[TSR_WARPS];
    const unsigned tid = threadIdx.x;
    const unsigned long long base = (unsigned long long)blockIdx.x * TSR_SCAN_TILE;
    const unsigned count = (unsigned)tsr_min_u64(n - base, TSR_SCAN_TILE);
    unsigned* tile = data + base;

    // Striped (coalesced) global loads, transposed through shared memory into
    // a blocked layout so each thread scans 8 consecutive elements serially.
#pragma unroll
    for (unsigned k = 0; k < TSR_SCAN_ITEMS; ++k) {
        const unsigned j = k * TSR_THREADS + tid;
        s_tile[tsr_scan_pad(j)] = j < count ? tile[j] : 0u;
    }
    __syncthreads();
    unsigned v[TSR_SCAN_ITEMS];
    unsigned sum = 0;
#pragma unroll
    for (unsigned i = 0; i < TSR_SCAN_ITEMS; ++i) {
        v[i] = s_tile[tsr_scan_pad(tid * TSR_SCAN_ITEMS + i)];
        sum += v[i];
    }
    unsigned total;
    unsigned run = tsr_block_exclusive_scan(sum, s_warp, &total);
#pragma unroll
    for (unsigned i = 0; i < TSR_SCAN_ITEMS; ++i) {
        s_tile[tsr_scan_pad(tid * TSR_SCAN_ITEMS + i)] = run;
        run += v[i];
    }
    __syncthreads();
#pragma unroll
    for (unsigned k = 0; k < TSR_SCAN_ITEMS; ++k) {
        const unsigned j = k * TSR_THREADS + tid;
        if (j < count) tile[j] = s_tile[tsr_scan_pad(j)];
    }
    if (tile_sums != nullptr && tid == 0) tile_sums[blockIdx.x] = total;
}

extern "C" __global__ void __launch_bounds__(256) tessera_scan_add_u32(unsigned* data, unsigned long long n,
                                                                       const unsigned* tile_offsets) {
    const unsigned long long base = (unsigned long long)blockIdx.x * TSR_SCAN_TILE;
    const unsigned count = (unsigned)tsr_min_u64(n - base, TSR_SCAN_TILE);
    const unsigned add = tile_offsets[blockIdx.x];
    unsigned* tile = data + base;
#pragma unroll
    for (unsigned k = 0; k < TSR_SCAN_ITEMS; ++k) {
        const unsigned j = k * TSR_THREADS + threadIdx.x;
        if (j < count) tile[j] += add;
    }
}

// ---------------------------------------------------------------------------
// Radix sort
// ---------------------------------------------------------------------------

__device__ __forceinline__ unsigned tsr_digit(unsigned key, int shift) { return (key >> shift) & (TSR_DIGITS - 1); }

// Picks the 32-bit half first: a 64-bit variable shift costs more
// instructions and registers.
__device__ __forceinline__ unsigned tsr_digit(unsigned long long key, int shift) {
    const unsigned half = shift >= 32 ? (unsigned)(key >> 32) : (unsigned)key;
    return (half >> (shift & 31)) & (TSR_DIGITS - 1);
}

template <class K>
__device__ __forceinline__ void tsr_radix_histogram(const K* keys, unsigned long long n, int shift, unsigned* hist) {
    // Per-warp sub-histograms cut contention on the shared atomics when many
    // keys share a digit (e.g. the high bytes of small integers).
    __shared__ unsigned s_hist[TSR_WARPS][TSR_DIGITS];
    const unsigned tid = threadIdx.x, warp = tid >> 5;
    const unsigned long long base = (unsigned long long)blockIdx.x * TSR_RADIX_TILE;
    const unsigned count = (unsigned)tsr_min_u64(n - base, TSR_RADIX_TILE);
    const K* tile = keys + base;

    for (unsigned i = tid; i < TSR_WARPS * TSR_DIGITS; i += TSR_THREADS) (&s_hist[0][0])[i] = 0;
    __syncthreads();
    if (count == TSR_RADIX_TILE) {
        // Full tile: all loads first, then the atomics, for memory parallelism.
        K k[TSR_RADIX_ITEMS];
#pragma unroll
        for (unsigned i = 0; i < TSR_RADIX_ITEMS; ++i) k[i] = tile[i * TSR_THREADS + tid];
#pragma unroll
        for (unsigned i = 0; i < TSR_RADIX_ITEMS; ++i) atomicAdd(&s_hist[warp][tsr_digit(k[i], shift)], 1u);
    } else {
        for (unsigned j = tid; j < count; j += TSR_THREADS) atomicAdd(&s_hist[warp][tsr_digit(tile[j], shift)], 1u);
    }
    __syncthreads();
    unsigned c = 0;
#pragma unroll
    for (unsigned w = 0; w < TSR_WARPS; ++w) c += s_hist[w][tid];
    hist[(unsigned long long)tid * gridDim.x + blockIdx.x] = c;
}

extern "C" __global__ void __launch_bounds__(256) tessera_radix_histogram_32(const unsigned* keys, unsigned long long n,
                                                                             int shift, unsigned* hist) {
    tsr_radix_histogram<unsigned>(keys, n, shift, hist);
}

extern "C" __global__ void __launch_bounds__(256) tessera_radix_histogram_64(const unsigned long long* keys,
                                                                             unsigned long long n, int shift,
                                                                             unsigned* hist) {
    tsr_radix_histogram<unsigned long long>(keys, n, shift, hist);
}

template <class K>
__device__ __forceinline__ void tsr_radix_scatter(const K* keys_in, K* keys_out, const unsigned* vals_in,
                                                  unsigned* vals_out, unsigned long long n, int shift,
                                                  const unsigned* offsets) {
    // The staging buffer holds the tile sorted by digit: keys first, then
    // (reused) values.
    __shared__ union {
        K keys[TSR_RADIX_TILE];
        unsigned vals[TSR_RADIX_TILE];
    } s_stage;
    // The digit of every staged slot, so the value pass needs no keys.
    __shared__ unsigned char s_dig[TSR_RADIX_TILE];
    // Per-warp digit counters; after the scans, the tile position of each
    // warp's first key of each digit. Counts never exceed 4096, so u16 fits.
    __shared__ unsigned short s_wcnt[TSR_WARPS][TSR_DIGITS];
    // Global position of staged slot j = s_gbase[digit] + j (wrapping u32).
    __shared__ unsigned s_gbase[TSR_DIGITS];
    __shared__ unsigned s_warp[TSR_WARPS];

    const unsigned tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const unsigned long long base = (unsigned long long)blockIdx.x * TSR_RADIX_TILE;
    const unsigned count = (unsigned)tsr_min_u64(n - base, TSR_RADIX_TILE);
    const unsigned wbase = warp * TSR_WARP_KEYS;
    const K* tile_in = keys_in + base;

    for (unsigned i = tid; i < TSR_WARPS * TSR_DIGITS; i += TSR_THREADS) (&s_wcnt[0][0])[i] = 0;
    K key[TSR_RADIX_ITEMS];
#pragma unroll
    for (unsigned i = 0; i < TSR_RADIX_ITEMS; ++i) {
        const unsigned j = wbase + i * 32 + lane;
        key[i] = j < count ? tile_in[j] : (K)0;
    }
    __syncthreads();

    // Warp-local stable ranks, items in input order.
    const unsigned lower_lanes = (1u << lane) - 1u;
    unsigned pos[TSR_RADIX_ITEMS];
#pragma unroll
    for (unsigned i = 0; i < TSR_RADIX_ITEMS; ++i) {
        const bool valid = wbase + i * 32 + lane < count;
        // Out-of-range items get a digit of their own (TSR_DIGITS); they are
        // last in input order, so they cannot shift any valid key's rank.
        const unsigned d = valid ? tsr_digit(key[i], shift) : TSR_DIGITS;
        const unsigned peers = __match_any_sync(TSR_FULL_MASK, d);
        const unsigned before = valid ? s_wcnt[warp][d] : 0u;
        // Every lane of the group has read the counter before one bumps it...
        __syncwarp();
        if (valid && lane == 31u - __clz(peers)) s_wcnt[warp][d] = (unsigned short)(before + __popc(peers));
        // ...and the next item's readers see the bump.
        __syncwarp();
        pos[i] = before + __popc(peers & lower_lanes);
    }
    __syncthreads();

    // Thread t owns digit t: prefix over warps, then over digits.
    unsigned digit_count = 0;
#pragma unroll
    for (unsigned w = 0; w < TSR_WARPS; ++w) {
        const unsigned c = s_wcnt[w][tid];
        s_wcnt[w][tid] = (unsigned short)digit_count;
        digit_count += c;
    }
    unsigned tile_total;
    const unsigned digit_start = tsr_block_exclusive_scan(digit_count, s_warp, &tile_total);
#pragma unroll
    for (unsigned w = 0; w < TSR_WARPS; ++w) s_wcnt[w][tid] = (unsigned short)(s_wcnt[w][tid] + digit_start);
    s_gbase[tid] = offsets[(unsigned long long)tid * gridDim.x + blockIdx.x] - digit_start;
    __syncthreads();

#pragma unroll
    for (unsigned i = 0; i < TSR_RADIX_ITEMS; ++i) {
        if (wbase + i * 32 + lane < count) {
            const unsigned d = tsr_digit(key[i], shift);
            const unsigned p = pos[i] + s_wcnt[warp][d];
            pos[i] = p;
            s_stage.keys[p] = key[i];
            s_dig[p] = (unsigned char)d;
        }
    }
    __syncthreads();

    // Consecutive slots of one digit go to consecutive global addresses.
#pragma unroll
    for (unsigned k = 0; k < TSR_RADIX_ITEMS; ++k) {
        const unsigned j = k * TSR_THREADS + tid;
        if (j < count) keys_out[s_gbase[s_dig[j]] + j] = s_stage.keys[j];
    }

    if (vals_in != nullptr) {
        const unsigned* vtile = vals_in + base;
        unsigned v[TSR_RADIX_ITEMS];
#pragma unroll
        for (unsigned i = 0; i < TSR_RADIX_ITEMS; ++i) {
            const unsigned j = wbase + i * 32 + lane;
            v[i] = j < count ? vtile[j] : 0u;
        }
        __syncthreads();  // every staged key has been read
#pragma unroll
        for (unsigned i = 0; i < TSR_RADIX_ITEMS; ++i)
            if (wbase + i * 32 + lane < count) s_stage.vals[pos[i]] = v[i];
        __syncthreads();
#pragma unroll
        for (unsigned k = 0; k < TSR_RADIX_ITEMS; ++k) {
            const unsigned j = k * TSR_THREADS + tid;
            if (j < count) vals_out[s_gbase[s_dig[j]] + j] = s_stage.vals[j];
        }
    }
}

// Register budgets: unbounded, ptxas takes 100-125 registers (2 blocks per
// SM). Three blocks per SM (80 registers) fit 16 32-bit keys and their ranks
// without spilling; 16 64-bit keys spill there, so that version keeps two
// blocks per SM (16 warps, each with 16 independent 8-byte loads in flight,
// ample for bandwidth).
extern "C" __global__ void __launch_bounds__(256, 3) tessera_radix_scatter_32(const unsigned* keys_in, unsigned* keys_out,
                                                                           const unsigned* vals_in, unsigned* vals_out,
                                                                           unsigned long long n, int shift,
                                                                           const unsigned* offsets) {
    tsr_radix_scatter<unsigned>(keys_in, keys_out, vals_in, vals_out, n, shift, offsets);
}

extern "C" __global__ void __launch_bounds__(256, 2) tessera_radix_scatter_64(const unsigned long long* keys_in,
                                                                           unsigned long long* keys_out,
                                                                           const unsigned* vals_in, unsigned* vals_out,
                                                                           unsigned long long n, int shift,
                                                                           const unsigned* offsets) {
    tsr_radix_scatter<unsigned long long>(keys_in, keys_out, vals_in, vals_out, n, shift, offsets);
}

// ---------------------------------------------------------------------------
// Merge path
// ---------------------------------------------------------------------------

// How many elements of a are among the first `diag` outputs of the stable
// merge (ties: a first). Called by a whole warp: a 32-ary search, so about
// log32(len) rounds of dependent global loads instead of log2(len).
template <class K>
__device__ __forceinline__ unsigned long long tsr_merge_split_warp(const K* a, unsigned long long na, const K* b,
                                                                   unsigned long long nb, unsigned long long diag) {
    const unsigned lane = threadIdx.x & 31;
    // Predicate "a[i] goes before b[diag-1-i]" is true on a prefix of [lo, hi).
    unsigned long long lo = diag > nb ? diag - nb : 0;
    unsigned long long hi = tsr_min_u64(diag, na);
    while (hi > lo) {
        const unsigned long long len = hi - lo;
        if (len <= 32) {
            bool p = false;
            if (lane < len) {
                const unsigned long long i = lo + lane;
                p = a[i] <= b[diag - 1 - i];
            }
            return lo + __popc(__ballot_sync(TSR_FULL_MASK, p));
        }
        // Probes at lo + len*l/32 are strictly increasing since len > 32.
        const unsigned long long i = lo + len * lane / 32;
        const unsigned c = __popc(__ballot_sync(TSR_FULL_MASK, a[i] <= b[diag - 1 - i]));
        if (c == 0) return lo;
        const unsigned long long new_hi = c < 32 ? lo + len * c / 32 : hi;
        lo = lo + len * (c - 1) / 32 + 1;
        hi = new_hi;
    }
    return lo;
}

template <class K>
__device__ __forceinline__ void tsr_merge_path(const K* a, unsigned long long na, const K* b, unsigned long long nb,
                                               K* out) {
    // Padded like the scan tile: thread t's outputs t*8.. land in distinct banks.
    __shared__ K s_tile[TSR_MERGE_TILE + TSR_MERGE_TILE / 32];
    __shared__ unsigned long long s_split[2];
    const unsigned tid = threadIdx.x, warp = tid >> 5;
    const unsigned long long d0 = (unsigned long long)blockIdx.x * TSR_MERGE_TILE;
    const unsigned long long d1 = tsr_min_u64(d0 + TSR_MERGE_TILE, na + nb);

    if (warp < 2) {
        const unsigned long long s = tsr_merge_split_warp<K>(a, na, b, nb, warp == 0 ? d0 : d1);
        if ((tid & 31) == 0) s_split[warp] = s;
    }
    __syncthreads();
    const unsigned long long a0 = s_split[0], a1 = s_split[1];
    const unsigned long long b0 = d0 - a0;
    const unsigned la = (unsigned)(a1 - a0), lb = (unsigned)(d1 - a1 - b0);
    const unsigned len = la + lb;
    // Shared layout: a's part at [0, la), b's at [la, len).
    for (unsigned j = tid; j < len; j += TSR_THREADS)
        s_tile[tsr_scan_pad(j)] = j < la ? a[a0 + j] : b[b0 + (j - la)];
    __syncthreads();

    const unsigned k = tsr_min_u32(tid * TSR_MERGE_ITEMS, len);
    unsigned lo = k > lb ? k - lb : 0, hi = tsr_min_u32(k, la);
    while (lo < hi) {
        const unsigned mid = (lo + hi) >> 1;
        if (s_tile[tsr_scan_pad(mid)] <= s_tile[tsr_scan_pad(la + k - 1 - mid)])
            lo = mid + 1;
        else
            hi = mid;
    }
    unsigned ai = lo, bi = la + (k - lo);
    K res[TSR_MERGE_ITEMS];
#pragma unroll
    for (unsigned i = 0; i < TSR_MERGE_ITEMS; ++i) {
        const bool a_ok = ai < la, b_ok = bi < len;
        const K va = a_ok ? s_tile[tsr_scan_pad(ai)] : (K)0;
        const K vb = b_ok ? s_tile[tsr_scan_pad(bi)] : (K)0;
        const bool take_a = a_ok && (!b_ok || va <= vb);
        res[i] = take_a ? va : vb;
        ai += take_a ? 1u : 0u;
        bi += take_a ? 0u : 1u;
    }
    __syncthreads();  // every input has been read
#pragma unroll
    for (unsigned i = 0; i < TSR_MERGE_ITEMS; ++i)
        if (k + i < len) s_tile[tsr_scan_pad(k + i)] = res[i];
    __syncthreads();
    for (unsigned j = tid; j < len; j += TSR_THREADS) out[d0 + j] = s_tile[tsr_scan_pad(j)];
}

extern "C" __global__ void __launch_bounds__(256) tessera_merge_path_32(const unsigned* a, unsigned long long na,
                                                                        const unsigned* b, unsigned long long nb,
                                                                        unsigned* out) {
    tsr_merge_path<unsigned>(a, na, b, nb, out);
}

extern "C" __global__ void __launch_bounds__(256) tessera_merge_path_64(const unsigned long long* a,
                                                                        unsigned long long na,
                                                                        const unsigned long long* b,
                                                                        unsigned long long nb,
                                                                        unsigned long long* out) {
    tsr_merge_path<unsigned long long>(a, na, b, nb, out);
}

// ---------------------------------------------------------------------------
// Verification: fingerprint and descent count
// ---------------------------------------------------------------------------

__device__ __forceinline__ unsigned long long tsr_mix64(unsigned long long x) {
    unsigned long long z = x + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// Sums (or xors) a per-thread value over the block; the result is valid in
// thread 0 only.
__device__ __forceinline__ unsigned long long tsr_block_reduce_u64(unsigned long long x, bool use_xor,
                                                                   unsigned long long* warp_vals) {
    const unsigned lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        const unsigned long long y = __shfl_xor_sync(TSR_FULL_MASK, x, off);
        x = use_xor ? (x ^ y) : (x + y);
    }
    if (lane == 0) warp_vals[warp] = x;
    __syncthreads();
    unsigned long long r = 0;
    if (threadIdx.x == 0)
        for (unsigned w = 0; w < TSR_WARPS; ++w) r = use_xor ? (r ^ warp_vals[w]) : (r + warp_vals[w]);
    return r;
}

template <class K>
__device__ __forceinline__ void tsr_fingerprint(const K* bits, unsigned long long n, unsigned long long* out) {
    __shared__ unsigned long long s_sum[TSR_WARPS], s_xor[TSR_WARPS];
    unsigned long long sum = 0, x = 0;
    for (unsigned long long i = tsr_gstride_start(); i < n; i += tsr_gstride_step()) {
        const unsigned long long m = tsr_mix64((unsigned long long)bits[i]);
        sum += m;
        x ^= m;
    }
    sum = tsr_block_reduce_u64(sum, false, s_sum);
    x = tsr_block_reduce_u64(x, true, s_xor);
    if (threadIdx.x == 0) {
        atomicAdd(out, sum);
        atomicXor(out + 1, x);
    }
}

extern "C" __global__ void __launch_bounds__(256) tessera_fingerprint_32(const unsigned* bits, unsigned long long n,
                                                                         unsigned long long* out) {
    tsr_fingerprint<unsigned>(bits, n, out);
}

extern "C" __global__ void __launch_bounds__(256) tessera_fingerprint_64(const unsigned long long* bits,
                                                                         unsigned long long n,
                                                                         unsigned long long* out) {
    tsr_fingerprint<unsigned long long>(bits, n, out);
}

template <class K>
__device__ __forceinline__ void tsr_count_descents(const K* bits, unsigned long long n, unsigned long long* count) {
    __shared__ unsigned long long s_cnt[TSR_WARPS];
    const unsigned long long pairs = n > 0 ? n - 1 : 0;
    unsigned long long c = 0;
    for (unsigned long long i = tsr_gstride_start(); i < pairs; i += tsr_gstride_step()) c += bits[i] > bits[i + 1];
    c = tsr_block_reduce_u64(c, false, s_cnt);
    if (threadIdx.x == 0 && c != 0) atomicAdd(count, c);
}

extern "C" __global__ void __launch_bounds__(256) tessera_count_descents_32(const unsigned* bits, unsigned long long n,
                                                                            unsigned long long* count) {
    tsr_count_descents<unsigned>(bits, n, count);
}

extern "C" __global__ void __launch_bounds__(256) tessera_count_descents_64(const unsigned long long* bits,
                                                                            unsigned long long n,
                                                                            unsigned long long* count) {
    tsr_count_descents<unsigned long long>(bits, n, count);
}

// ===========================================================================
// Batched lower bound (the distributed sort's boundary search)
// ===========================================================================
//   tessera_lower_bound_32/64(const K* bits, u64 n, const u64* queries,
//                             u64 nq, u64* out)
//        out[q] = #{i < n : bits[i] < queries[q]} for ascending bits: one
//        binary search per query, each thread its own queries. Launch:
//        blockDim 256, gridDim min(ceil(nq/256), 65535); grid-stride.
template <class K>
__device__ __forceinline__ void tsr_lower_bound(const K* bits, unsigned long long n,
                                                const unsigned long long* queries, unsigned long long nq,
                                                unsigned long long* out) {
    for (unsigned long long q = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; q < nq;
         q += (unsigned long long)gridDim.x * blockDim.x) {
        unsigned long long x = queries[q], lo = 0, hi = n;
        while (lo < hi) {
            unsigned long long mid = lo + (hi - lo) / 2;
            if ((unsigned long long)bits[mid] < x) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        out[q] = lo;
    }
}

extern "C" __global__ void __launch_bounds__(256)
    tessera_lower_bound_32(const unsigned* bits, unsigned long long n, const unsigned long long* queries,
                           unsigned long long nq, unsigned long long* out) {
    tsr_lower_bound<unsigned>(bits, n, queries, nq, out);
}

extern "C" __global__ void __launch_bounds__(256)
    tessera_lower_bound_64(const unsigned long long* bits, unsigned long long n, const unsigned long long* queries,
                           unsigned long long nq, unsigned long long* out) {
    tsr_lower_bound<unsigned long long>(bits, n, queries, nq, out);
}
