// kpilot's own helper kernels: seeded input fill, byte-pattern poison fill and a device checksum.
//
// The Rust harness regenerates every filled value on the CPU (harness/inputs.rs) and recomputes
// checksums from downloaded bytes, so each function here is specified bit for bit in
// kernels/README.md; change one side only together with the other.
//
// Rules shared with the kernel ABI: launch only on the caller's stream, never synchronize, never
// allocate (these calls may be captured into CUDA graphs). Return 0 on success, 2 on arguments that
// cannot be honoured (nothing is launched), 3 when the launch reports a CUDA error.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "kpilot_abi.h"

// One range of kps_batch. `slot` indexes the caller's u64 result array:
//   KPS_SCAN      n elements of elem_size bytes; aux = the NaN/Inf exponent mask (0: integers);
//                 out[slot] += elements equal to the poison pattern, out[slot+1] += other NaN/Inf,
//                 out[slot+2] / out[slot+3] = min index of each (the caller sets them to ~0 first)
//   KPS_NOT_BYTE  n bytes; aux = the expected byte; out[slot] += bytes that differ, out[slot+1] = min offset
//   KPS_CHECKSUM  n bytes, 8-byte aligned; out[slot] += the kps_checksum sum
//   KPS_GATHER    n bytes copied to gather_dst + aux
enum : uint32_t { KPS_SCAN = 0, KPS_NOT_BYTE = 1, KPS_CHECKSUM = 2, KPS_GATHER = 3 };
struct kps_range {
    uint64_t ptr, n, aux, slot;
    uint32_t kind, elem_size;
};

// One region of kps_stream: n_vec 16-byte vectors from ptr (16-byte aligned), read and/or written.
struct kps_stream_region {
    uint64_t ptr, n_vec;
    uint32_t read, write;
};
enum : uint32_t { KPS_STREAM_MAX_REGIONS = 16 };

namespace {

constexpr int kThreads = 256;
// Grid-stride loops cover any size; capping the grid keeps launch cost flat for huge buffers
// while still giving every SM of an H100/H200 several blocks.
constexpr uint64_t kMaxBlocks = 4096;

__host__ __device__ __forceinline__ uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

unsigned int grid_for(uint64_t work_items) {
    uint64_t blocks = (work_items + kThreads - 1) / kThreads;
    if (blocks < 1) blocks = 1;
    if (blocks > kMaxBlocks) blocks = kMaxBlocks;
    return static_cast<unsigned int>(blocks);
}

int32_t launch_status() { return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR; }

// ---------------------------------------------------------------------------------------------
// kps_fill_random
// ---------------------------------------------------------------------------------------------

enum Dist : int { kUniform = 0, kRandint = 1, kConst = 2, kArange = 3, kSpike = 4 };

// Parameters already decoded on the host so the kernel does no double arithmetic.
struct FillArgs {
    uint64_t key;    // mix64(seed ^ (tensor_id + 1) * 0xD1B54A32D192ED03)
    float fa, fb;    // uniform: (float)a, (float)b
    int64_t lo;      // randint: (int64)a
    uint64_t span;   // randint: (uint64)((int64)b - (int64)a), > 0
    float cf;        // const: (float)a; spike: (float)d, the value at every `every`-th element
    int64_t ci;      // const: (int64)a; spike: (int64)d
    uint64_t every;  // spike: (uint64)c, >= 1
};

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
// Float to integer truncates toward zero; cvt.rzi saturates and maps NaN to 0, as Rust's `as` does.
template <> __device__ __forceinline__ int32_t from_float<int32_t>(float v) { return __float2int_rz(v); }
template <> __device__ __forceinline__ int64_t from_float<int64_t>(float v) { return __float2ll_rz(v); }

template <typename T> __device__ __forceinline__ T from_int(int64_t v) {
    // An integer stored into a float type goes through float (RN) first, then RNE to T.
    return from_float<T>(__ll2float_rn(v));
}
template <> __device__ __forceinline__ int32_t from_int<int32_t>(int64_t v) { return static_cast<int32_t>(v); }
template <> __device__ __forceinline__ int64_t from_int<int64_t>(int64_t v) { return v; }

template <typename T> struct IsInt { static constexpr bool value = false; };
template <> struct IsInt<int32_t> { static constexpr bool value = true; };
template <> struct IsInt<int64_t> { static constexpr bool value = true; };

template <typename T, int DIST>
__global__ void __launch_bounds__(kThreads) fill_random_kernel(T* __restrict__ out, uint64_t n, FillArgs a) {
    const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
    for (uint64_t i = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
        T v;
        if constexpr (DIST == kSpike) {
            // uniform(lo, hi) everywhere except elements i % every == 0, which hold the spike value.
            if (i % a.every == 0) {
                if constexpr (IsInt<T>::value) v = static_cast<T>(a.ci);
                else v = from_float<T>(a.cf);
            } else {
                const uint64_t h = mix64(a.key + i);
                const float u = static_cast<float>(h >> 40) * 0x1p-24f;
                const float range = __fsub_rn(a.fb, a.fa);
                v = from_float<T>(__fadd_rn(a.fa, __fmul_rn(range, u)));
            }
        } else if constexpr (DIST == kUniform) {
            const uint64_t h = mix64(a.key + i);
            const float u = static_cast<float>(h >> 40) * 0x1p-24f;  // exact: 24 bits
            // Explicit _rn intrinsics: the CPU side computes fa + (fb - fa)*u without an FMA.
            const float range = __fsub_rn(a.fb, a.fa);
            v = from_float<T>(__fadd_rn(a.fa, __fmul_rn(range, u)));
        } else if constexpr (DIST == kRandint) {
            const uint64_t h = mix64(a.key + i);
            // Wrapping u64 arithmetic equals lo + (h>>32) % span whenever that fits in i64.
            v = from_int<T>(static_cast<int64_t>(static_cast<uint64_t>(a.lo) + (h >> 32) % a.span));
        } else if constexpr (DIST == kArange) {
            // Element i holds i (as float via RN, then RNE, for float types).
            v = from_int<T>(static_cast<int64_t>(i));
        } else {
            if constexpr (IsInt<T>::value) v = static_cast<T>(a.ci);
            else v = from_float<T>(a.cf);
        }
        out[i] = v;
    }
}

template <typename T>
int32_t launch_fill(void* data, uint64_t n, int32_t dist, const FillArgs& a, cudaStream_t s) {
    const unsigned int g = grid_for(n);
    T* p = static_cast<T*>(data);
    switch (dist) {
        case kUniform: fill_random_kernel<T, kUniform><<<g, kThreads, 0, s>>>(p, n, a); break;
        case kRandint: fill_random_kernel<T, kRandint><<<g, kThreads, 0, s>>>(p, n, a); break;
        case kArange: fill_random_kernel<T, kArange><<<g, kThreads, 0, s>>>(p, n, a); break;
        case kSpike: fill_random_kernel<T, kSpike><<<g, kThreads, 0, s>>>(p, n, a); break;
        default: fill_random_kernel<T, kConst><<<g, kThreads, 0, s>>>(p, n, a); break;
    }
    return launch_status();
}

// Saturating double -> int64 like Rust's `as` (NaN -> 0), so out-of-range constants are defined.
int64_t f64_to_i64_sat(double v) {
    if (v != v) return 0;
    if (v >= 9223372036854775808.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return static_cast<int64_t>(v);
}

// ---------------------------------------------------------------------------------------------
// kps_fill_pattern
// ---------------------------------------------------------------------------------------------

// Byte k of the buffer is byte (k % 4) of `pattern`. The body is written with 16-byte stores from
// the first 16-byte-aligned address; a 32-bit word starting at buffer offset k0 holds `pattern`
// rotated right by 8*(k0 % 4) bits, which is the same for every word of the body.
__global__ void __launch_bounds__(kThreads) fill_pattern_kernel(uint8_t* __restrict__ p, uint64_t n_bytes, uint32_t pattern,
                                                                 uint64_t head, uint64_t n_vec, uint32_t body_word) {
    const uint64_t tid = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
    uint4* body = reinterpret_cast<uint4*>(p + head);
    const uint4 w = make_uint4(body_word, body_word, body_word, body_word);
    for (uint64_t i = tid; i < n_vec; i += stride) body[i] = w;
    // Unaligned head (< 16 bytes) and tail (< 16 bytes) byte by byte.
    const uint64_t tail_start = head + n_vec * 16;
    const uint64_t edge = head + (n_bytes - tail_start);
    for (uint64_t j = tid; j < edge; j += stride) {
        const uint64_t k = j < head ? j : tail_start + (j - head);
        p[k] = static_cast<uint8_t>(pattern >> (8 * (k & 3)));
    }
}

// ---------------------------------------------------------------------------------------------
// kps_checksum
// ---------------------------------------------------------------------------------------------

__device__ __forceinline__ unsigned long long word_hash(uint64_t w, uint64_t j) { return mix64(w ^ mix64(j)); }

// Word j = bytes [8j, 8j+8) little-endian, missing bytes past n_bytes read as zero.
__device__ __forceinline__ uint64_t load_word_bytes(const uint8_t* p, uint64_t n_bytes, uint64_t j) {
    uint64_t w = 0;
    const uint64_t base = j * 8;
#pragma unroll
    for (int b = 0; b < 8; ++b) {
        if (base + b < n_bytes) w |= static_cast<uint64_t>(p[base + b]) << (8 * b);
    }
    return w;
}

template <bool ALIGNED8>
__global__ void __launch_bounds__(kThreads) checksum_kernel(const uint8_t* __restrict__ p, uint64_t n_bytes,
                                                             unsigned long long* __restrict__ out) {
    const uint64_t n_words = (n_bytes + 7) / 8;
    const uint64_t n_full = n_bytes / 8;
    const uint64_t tid = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
    unsigned long long acc = 0;  // wrapping sum
    for (uint64_t j = tid; j < n_words; j += stride) {
        uint64_t w;
        if (ALIGNED8 && j < n_full) w = __ldg(reinterpret_cast<const unsigned long long*>(p) + j);
        else w = load_word_bytes(p, n_bytes, j);
        acc += word_hash(w, j);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    __shared__ unsigned long long warp_sums[kThreads / 32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) warp_sums[warp] = acc;
    __syncthreads();
    if (warp == 0) {
        acc = lane < kThreads / 32 ? warp_sums[lane] : 0ull;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
        if (lane == 0) atomicAdd(out, acc);
    }
}


// ---------------------------------------------------------------------------------------------
// kps_batch: many ranges in one launch (every buffer set after a timed sample)
// ---------------------------------------------------------------------------------------------

// Counts into out[slot + k] with one atomic per block, only when the block found something.
__device__ __forceinline__ void block_add(unsigned long long v, unsigned long long* dst) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    __shared__ unsigned long long part[kThreads / 32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < kThreads / 32 ? part[lane] : 0ull;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0 && v != 0) atomicAdd(dst, v);
    }
}

__device__ __forceinline__ uint64_t load_elem(const uint8_t* p, uint64_t i, uint32_t size) {
    switch (size) {
        case 1: return p[i];
        case 2: return reinterpret_cast<const uint16_t*>(p)[i];
        case 4: return reinterpret_cast<const uint32_t*>(p)[i];
        default: return reinterpret_cast<const unsigned long long*>(p)[i];
    }
}

__global__ void __launch_bounds__(kThreads) batch_kernel(const kps_range* __restrict__ ranges, uint32_t n_ranges,
                                                          uint32_t pattern, unsigned long long* __restrict__ out,
                                                          uint8_t* __restrict__ gather_dst) {
    const uint64_t tid = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
    for (uint32_t r = blockIdx.y; r < n_ranges; r += gridDim.y) {
        const kps_range rg = ranges[r];
        const uint8_t* p = reinterpret_cast<const uint8_t*>(rg.ptr);
        unsigned long long* o = out + rg.slot;
        if (rg.kind == KPS_SCAN) {
            // Poison (the pattern's bits at this element size) and NaN/Inf (exponent all ones).
            const uint64_t pp = pattern;
            const uint64_t pbits = rg.elem_size == 1 ? (pp & 0xFF) : rg.elem_size == 2 ? (pp & 0xFFFF)
                                 : rg.elem_size == 4 ? pp : (pp | (pp << 32));
            const uint64_t mask = rg.aux;
            unsigned long long poison = 0, nonfinite = 0, first_p = ~0ull, first_n = ~0ull;
            for (uint64_t i = tid; i < rg.n; i += stride) {
                const uint64_t b = load_elem(p, i, rg.elem_size);
                if (b == pbits) {
                    ++poison;
                    first_p = first_p < i ? first_p : i;
                } else if (mask != 0 && (b & mask) == mask) {
                    ++nonfinite;
                    first_n = first_n < i ? first_n : i;
                }
            }
            if (poison) atomicMin(o + 2, first_p);
            if (nonfinite) atomicMin(o + 3, first_n);
            block_add(poison, o);
            block_add(nonfinite, o + 1);
        } else if (rg.kind == KPS_NOT_BYTE) {
            // Bytes that differ from one value (a guard band): count and first offset.
            const uint8_t want = static_cast<uint8_t>(rg.aux);
            unsigned long long bad = 0, first = ~0ull;
            for (uint64_t i = tid; i < rg.n; i += stride) {
                if (p[i] != want) {
                    ++bad;
                    first = first < i ? first : i;
                }
            }
            if (bad) atomicMin(o + 1, first);
            block_add(bad, o);
        } else if (rg.kind == KPS_CHECKSUM) {
            // The same sum kps_checksum computes (the range starts 8-byte aligned).
            const uint64_t n_words = (rg.n + 7) / 8;
            unsigned long long acc = 0;
            for (uint64_t j = tid; j < n_words; j += stride) acc += word_hash(load_word_bytes(p, rg.n, j), j);
            block_add(acc, o);
        } else if (rg.kind == KPS_GATHER) {
            uint8_t* d = gather_dst + rg.aux;
            for (uint64_t i = tid; i < rg.n; i += stride) d[i] = p[i];
        }
    }
}

// ---------------------------------------------------------------------------------------------
// kps_stream: the row's stream reference (a plain copy-like kernel moving the row's bytes)
// ---------------------------------------------------------------------------------------------

struct StreamArgs {
    uint64_t ptr[KPS_STREAM_MAX_REGIONS];
    uint64_t n_vec[KPS_STREAM_MAX_REGIONS];
    uint32_t flags[KPS_STREAM_MAX_REGIONS];  // bit 0 read, bit 1 write
    uint32_t n;
};

// Fused like an elementwise kernel: thread j handles vector j of every region that long, in
// region order, with streaming (.cs) loads and stores; a written region gets the XOR of what the
// thread read so far (a region both read and written: its own value back, so in-place tensors
// keep theirs). Loads and stores are volatile asm: none is elided or reordered.
__global__ void __launch_bounds__(kThreads) stream_kernel(StreamArgs a) {
    const uint64_t j = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    uint32_t ax = 0, ay = 0, az = 0, aw = 0;
#pragma unroll
    for (uint32_t k = 0; k < KPS_STREAM_MAX_REGIONS; ++k) {
        if (k >= a.n) break;
        if (j >= a.n_vec[k]) continue;
        const uint64_t p = a.ptr[k] + 16 * j;
        uint32_t x = ax, y = ay, z = az, w = aw;
        if (a.flags[k] & 1u) {
            asm volatile("ld.global.cs.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(x), "=r"(y), "=r"(z), "=r"(w) : "l"(p));
            ax ^= x, ay ^= y, az ^= z, aw ^= w;
        }
        if (a.flags[k] & 2u)
            asm volatile("st.global.cs.v4.u32 [%0], {%1, %2, %3, %4};" ::"l"(p), "r"(x), "r"(y), "r"(z), "r"(w) : "memory");
    }
}

}  // namespace

extern "C" {

int32_t kps_fill_random(void* data, int32_t dtype, uint64_t n_elems, uint64_t seed, uint32_t tensor_id, int32_t dist,
                        double a, double b, double c, double d, void* stream) {
    if (dist < kUniform || dist > kSpike) return KP_INVALID;
    if (dtype < KP_BF16 || dtype > KP_I64) return KP_INVALID;
    if (n_elems == 0) return KP_OK;
    if (data == nullptr) return KP_INVALID;
    FillArgs fa{};
    // tensor_id + 1 is formed in 64 bits (no wrap at 2^32 - 1), as harness/inputs.rs does.
    fa.key = mix64(seed ^ ((static_cast<uint64_t>(tensor_id) + 1) * 0xD1B54A32D192ED03ull));
    if (dist == kUniform || dist == kSpike) {
        fa.fa = static_cast<float>(a);  // double -> float rounds to nearest even
        fa.fb = static_cast<float>(b);
        if (dist == kSpike) {
            // c: the period, a whole number >= 1 (as Dist::parse admits); d: the spike value.
            if (!(c >= 1.0) || c != c || c >= 18446744073709551616.0 || c != static_cast<double>(static_cast<uint64_t>(c)))
                return KP_INVALID;
            fa.every = static_cast<uint64_t>(c);
            fa.cf = static_cast<float>(d);
            fa.ci = f64_to_i64_sat(d);
        }
    } else if (dist == kRandint) {
        const int64_t lo = f64_to_i64_sat(a), hi = f64_to_i64_sat(b);
        if (!(hi > lo)) return KP_INVALID;  // empty range: a modulo by zero has no defined result
        fa.lo = lo;
        fa.span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
    } else {
        fa.cf = static_cast<float>(a);
        fa.ci = f64_to_i64_sat(a);
    }
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    switch (dtype) {
        case KP_BF16: return launch_fill<__nv_bfloat16>(data, n_elems, dist, fa, s);
        case KP_F16: return launch_fill<__half>(data, n_elems, dist, fa, s);
        case KP_F32: return launch_fill<float>(data, n_elems, dist, fa, s);
        case KP_I32: return launch_fill<int32_t>(data, n_elems, dist, fa, s);
        default: return launch_fill<int64_t>(data, n_elems, dist, fa, s);
    }
}

int32_t kps_fill_pattern(void* data, uint64_t n_bytes, uint32_t pattern, void* stream) {
    if (n_bytes == 0) return KP_OK;
    if (data == nullptr) return KP_INVALID;
    const uintptr_t addr = reinterpret_cast<uintptr_t>(data);
    uint64_t head = (16 - (addr & 15)) & 15;
    if (head > n_bytes) head = n_bytes;
    const uint64_t n_vec = (n_bytes - head) / 16;
    const unsigned r = static_cast<unsigned>(head & 3) * 8;
    const uint32_t body_word = r == 0 ? pattern : (pattern >> r) | (pattern << (32 - r));
    const uint64_t work = n_vec > 32 ? n_vec : 32;
    fill_pattern_kernel<<<grid_for(work), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        static_cast<uint8_t*>(data), n_bytes, pattern, head, n_vec, body_word);
    return launch_status();
}

int32_t kps_checksum(const void* data, uint64_t n_bytes, unsigned long long* out_dev, void* stream) {
    if (n_bytes == 0) return KP_OK;  // the sum over no words is 0: leave *out_dev as the caller set it
    if (data == nullptr || out_dev == nullptr) return KP_INVALID;
    const uint64_t n_words = (n_bytes + 7) / 8;
    const unsigned int g = grid_for(n_words);
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    const uint8_t* p = static_cast<const uint8_t*>(data);
    if ((reinterpret_cast<uintptr_t>(data) & 7) == 0) checksum_kernel<true><<<g, kThreads, 0, s>>>(p, n_bytes, out_dev);
    else checksum_kernel<false><<<g, kThreads, 0, s>>>(p, n_bytes, out_dev);
    return launch_status();
}

int32_t kps_batch(const kps_range* ranges_dev, uint32_t n_ranges, uint64_t max_range_bytes, uint32_t pattern,
                  unsigned long long* out_dev, uint8_t* gather_dev, void* stream) {
    if (n_ranges == 0) return KP_OK;
    if (ranges_dev == nullptr || out_dev == nullptr) return KP_INVALID;
    uint64_t bx = (max_range_bytes / 2 + kThreads - 1) / kThreads;
    if (bx < 1) bx = 1;
    if (bx > 64) bx = 64;
    const uint32_t by = n_ranges < 65535u ? n_ranges : 65535u;
    batch_kernel<<<dim3(static_cast<unsigned>(bx), by), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        ranges_dev, n_ranges, pattern, out_dev, gather_dev);
    return launch_status();
}

int32_t kps_stream(const kps_stream_region* regions, uint32_t n_regions, void* stream) {
    if (n_regions == 0) return KP_OK;
    if (regions == nullptr || n_regions > KPS_STREAM_MAX_REGIONS) return KP_INVALID;
    StreamArgs a{};
    uint64_t longest = 0;
    for (uint32_t k = 0; k < n_regions; ++k) {
        if ((regions[k].ptr & 15) != 0 || (regions[k].n_vec != 0 && regions[k].ptr == 0)) return KP_INVALID;
        a.ptr[k] = regions[k].ptr;
        a.n_vec[k] = regions[k].n_vec;
        a.flags[k] = (regions[k].read ? 1u : 0u) | (regions[k].write ? 2u : 0u);
        if (regions[k].n_vec > longest) longest = regions[k].n_vec;
    }
    a.n = n_regions;
    const uint64_t blocks = (longest + kThreads - 1) / kThreads;
    if (blocks == 0) return KP_OK;
    if (blocks > 0x7FFFFFFFull) return KP_INVALID;
    stream_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(a);
    return launch_status();
}

}  // extern "C"
