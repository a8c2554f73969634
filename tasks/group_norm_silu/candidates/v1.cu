// kpilot-parent: baseline sha256 79728d62ae02cba4fa9b34719ca168c5c5dc2b121b8b015d3cc83ab4ea22fec1
// Candidate v1 for tasks/group_norm_silu, started from the baseline. What changes: the apply
// loops of the one-pass and the general chunked kernels look the channel up once per 16-byte run
// instead of once per element when a run cannot cross a channel (16-byte vectors and spatial a
// multiple of the run length, true for every production row): one integer division and one
// weight/bias load pair per 8 fp16 elements instead of 8 of each. Everything else (launches,
// layouts, reduction order, rounding) is the baseline's, so the outputs are bit-identical.
// Since the baseline was matched to Triton's SASS (after fidelity run 20261201T013122Z-14991c9c)
// it too computes the channel once a run (unconditionally, the divisor's reciprocal hoisted),
// so change (1) is no longer a difference from the parent; v1's copies of those kernels still
// divide under a condition and may be slower than the new baseline on the paths they serve
// (channels-last rows). Its thread sums follow the baseline's new order (fma(x0, x0, x1 * x1)
// first), which keeps those paths bit-identical to the baseline.
// And, for a contiguous x (every production row but the 32 channels-last ones, which keep the
// baseline's copy and kernels), a single read: resident_kernel below holds each chunk of a
// group in shared memory between the statistics and the apply, so x crosses DRAM once (the
// baseline reads it twice) and the group's statistics are exact two-pass float64 combinations.
// Prediction (no GPU measurement yet): on contiguous rows of 64 MB or more, 1.3-1.5x (1.5x the
// bytes of the baseline moved at a similar rate), near 85-90% of copy bandwidth; the small
// one-pass rows about `same` (latency-bound with 32 CTAs either way); the channels-last rows
// `same` (baseline path). Risk: the wait of a chunk for its group must not starve the copy
// engine of loads; two CTAs a SM (104 KB each) overlap one CTA's wait with the other's loads.
// Parent moved to baseline 79728d62... (its one-pass kernel rescheduled like Triton's after
// fidelity run 20261201T015639Z-b059ff15, same values); v1's own copies are unchanged and still
// carry the previous one-pass schedule (add.rn in the sigmoid, per-iteration address work).
// Baseline for tasks/group_norm_silu: a port of SGLang 0.5.23's triton_group_norm_silu
// (sglang/kernels/ops/diffusion/norm/group_norm_silu_triton.py), the path apply_group_norm_silu
// takes for every HunyuanVideo VAE call. Written from the Triton source and the PTX Triton 3.6
// emits for sm_90 (task.toml [upstream] notes): the same launches, grids, warps, per-thread
// layout (runs of 16 bytes at thread*VEC + k*NT*VEC), load widths, reduction order and rounding
// instructions (div.full, rsqrt.approx.ftz, ex2.approx).
//
//   group_size < 2^18: one-pass kernel, grid (G, B), 4 warps, BLOCK min(4096, next_pow2(group)),
//                      stats loop then apply loop over the group.
//   else:              chunked: stats (8 warps, 2 x 4096 a program) -> finalize (4 warps)
//                      -> apply (8 warps, per-element channel) or apply_scalar_affine (4 warps,
//                      spatial % 8192 == 0 and >= 64 chunks).
//   channels-last x:   upstream runs x.contiguous() first (a PyTorch elementwise copy kernel:
//                      128 threads, 4 elements a thread, contiguous order, strided reads). The
//                      baseline does the same copy into y and then runs the path in place on y
//                      (every element is read and then written by the same thread, and the stats
//                      launches finish before the apply launch): the same bytes and launches as
//                      upstream's copy into a temporary, without an allocation the ABI forbids.
//
// Upstream allocates the chunked path's partial sums with torch.empty per call; here they live in
// a static device buffer (4 Mi floats each), enough for every row of the task; a larger call is
// refused (unsupported:workspace), never truncated.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>

#include "kpilot_abi.h"

namespace {

constexpr int kLargeGroup = 1 << 18;
constexpr int kBlock = 4096;
constexpr int kChunk = 8192;  // BLOCK_SIZE * BLOCKS_PER_PROGRAM
constexpr int kWsFloats = 1 << 22;

__device__ float g_partial_sum[kWsFloats];
__device__ float g_partial_sq[kWsFloats];
__device__ float g_stats[2 * 65536];

__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f(float v) { return v; }
template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }

// The instructions Triton emits, without fast-math for the rest of the file.
__device__ __forceinline__ float ex2_approx(float x) {
    float y;
    asm("ex2.approx.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}
__device__ __forceinline__ float rsqrt_approx_ftz(float x) {
    float y;
    asm("rsqrt.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}
__device__ __forceinline__ float div_full(float a, float b) {
    float y;
    asm("div.full.f32 %0, %1, %2;" : "=f"(y) : "f"(a), "f"(b));
    return y;
}

// silu of the affine-normalised value, as Triton's tl.sigmoid lowers: 1 / (1 + 2^(-y * log2 e)).
__device__ __forceinline__ float norm_silu(float x, float mean, float rstd, float w, float b) {
    const float n = __fmul_rn(rstd, __fsub_rn(x, mean));
    const float y = __fmaf_rn(n, w, b);
    const float e = ex2_approx(__fmul_rn(__fsub_rn(0.0f, y), 1.44269502f));
    return __fmul_rn(y, div_full(1.0f, __fadd_rn(e, 1.0f)));
}

// mean and rstd from the fp32 sums: inv = 1 / n (div.full), var = fma(sq, inv, -(mean * mean)).
__device__ __forceinline__ void finish_stats(float sum, float sq, int n, float eps, float& mean, float& rstd) {
    const float inv = div_full(1.0f, static_cast<float>(n));
    mean = __fmul_rn(sum, inv);
    const float var = __fmaf_rn(sq, inv, -__fmul_rn(mean, mean));
    rstd = rsqrt_approx_ftz(__fadd_rn(var, eps));
}

// A block reduction in Triton's order: the caller's per-thread sum, a warp butterfly
// (16, 8, 4, 2, 1), the warp partials through shared memory reduced by a butterfly over the
// warps; every thread gets the result.
template <int NW>
__device__ __forceinline__ float block_sum(float v, float* smem) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    if (threadIdx.x < NW) {
        float s = smem[threadIdx.x];
#pragma unroll
        for (int o = NW / 2; o > 0; o >>= 1) s += __shfl_xor_sync((1u << NW) - 1u, s, o);
        if (threadIdx.x == 0) smem[0] = s;
    }
    __syncthreads();
    return smem[0];
}

// VEC elements of T in 16 bytes.
template <typename T> struct Vec {
    static constexpr int N = 16 / sizeof(T);
    uint4 raw;
    __device__ __forceinline__ float get(int i) const { return to_f(reinterpret_cast<const T*>(&raw)[i]); }
    __device__ __forceinline__ void set(int i, float v) { reinterpret_cast<T*>(&raw)[i] = from_f<T>(v); }
};

// Loads the VEC elements at idx.. of a group (masked: idx >= n reads 0); VECTOR: one 16-byte load
// (Triton's v4 when the group base and size are multiples of 16 elements), else element loads.
template <typename T, bool VECTOR>
__device__ __forceinline__ Vec<T> load_run(const T* p, int idx, int n) {
    Vec<T> v;
    if (VECTOR) {
        v.raw = idx < n ? *reinterpret_cast<const uint4*>(p + idx) : make_uint4(0, 0, 0, 0);
    } else {
#pragma unroll
        for (int i = 0; i < Vec<T>::N; ++i) v.set(i, idx + i < n ? to_f(p[idx + i]) : 0.0f);
    }
    return v;
}
template <typename T, bool VECTOR>
__device__ __forceinline__ void store_run(T* p, int idx, int n, const Vec<T>& v) {
    if (VECTOR) {
        if (idx < n) *reinterpret_cast<uint4*>(p + idx) = v.raw;
    } else {
#pragma unroll
        for (int i = 0; i < Vec<T>::N; ++i)
            if (idx + i < n) p[idx + i] = reinterpret_cast<const T*>(&v.raw)[i];
    }
}

// Per-thread sums over REPS runs of VEC at thread*VEC + r*NT*VEC, in register order, as Triton's
// PTX (and the baseline): s = x0 + x1 + x2 + ...; q = fma(x0, x0, x1 * x1), then fma(xk, xk, q).
template <typename T, int NT, int REPS, bool VECTOR>
__device__ __forceinline__ void thread_sums(const T* p, int off, int n, float& s, float& q) {
    constexpr int V = Vec<T>::N;
    Vec<T> v[REPS];
#pragma unroll
    for (int r = 0; r < REPS; ++r) v[r] = load_run<T, VECTOR>(p, off + threadIdx.x * V + r * NT * V, n);
    const float x0 = v[0].get(0), x1 = v[0].get(1);
    s = __fadd_rn(x0, x1);
    q = __fmaf_rn(x0, x0, __fmul_rn(x1, x1));
#pragma unroll
    for (int r = 0; r < REPS; ++r)
#pragma unroll
        for (int i = 0; i < V; ++i) {
            if (r == 0 && i < 2) continue;
            const float x = v[r].get(i);
            s = __fadd_rn(s, x);
            q = __fmaf_rn(x, x, q);
        }
}

// ---- one-pass: grid (G, B), 4 warps, BLOCK elements a step (4096, or a power of two below) ----
template <typename T, int BLOCK, bool VECTOR>
__global__ void __launch_bounds__(128) onepass_kernel(const T* x, const T* __restrict__ w, const T* __restrict__ b,
                                                      T* y, int channels, int spatial, int cpg, int group_size,
                                                      float eps) {
    constexpr int NT = 128, V = Vec<T>::N;
    constexpr int REPS = BLOCK / (NT * V) > 0 ? BLOCK / (NT * V) : 1;
    __shared__ float smem[4];
    const int g = blockIdx.x, bt = blockIdx.y;
    const int64_t base = static_cast<int64_t>(bt) * channels * spatial + static_cast<int64_t>(g) * group_size;
    const T* xg = x + base;
    T* yg = y + base;
    float sum = 0.0f, sq = 0.0f;
    for (int off = 0; off < group_size; off += BLOCK) {
        float s, q;
        thread_sums<T, NT, REPS, VECTOR>(xg, off, group_size, s, q);
        if (BLOCK < NT * V && threadIdx.x * V >= BLOCK) s = q = 0.0f;
        sum = __fadd_rn(sum, block_sum<4>(s, smem));
        sq = __fadd_rn(sq, block_sum<4>(q, smem));
    }
    float mean, rstd;
    finish_stats(sum, sq, group_size, eps, mean, rstd);
    const int wgo = g * cpg;
    const bool per_run = spatial % V == 0;
    for (int off = 0; off < group_size; off += BLOCK) {
        if (BLOCK < NT * V && threadIdx.x * V >= BLOCK) continue;
        // Every run loaded before any is stored, as Triton's block (x and y may be one buffer).
        Vec<T> vs[REPS];
#pragma unroll
        for (int r = 0; r < REPS; ++r) vs[r] = load_run<T, VECTOR>(xg, off + threadIdx.x * V + r * NT * V, group_size);
#pragma unroll
        for (int r = 0; r < REPS; ++r) {
            const int idx = off + threadIdx.x * V + r * NT * V;
            Vec<T>& v = vs[r];
            if (VECTOR && per_run) {
                // A 16-byte run lies in one channel: one lookup for the run.
                const bool in = idx < group_size;
                const int c = wgo + (in ? idx / spatial : 0);
                const float wc = in ? to_f(w[c]) : 1.0f;
                const float bc = in ? to_f(b[c]) : 0.0f;
#pragma unroll
                for (int i = 0; i < V; ++i) v.set(i, norm_silu(v.get(i), mean, rstd, wc, bc));
            } else {
#pragma unroll
                for (int i = 0; i < V; ++i) {
                    const int e = idx + i;
                    const int c = wgo + e / spatial;
                    const float wc = e < group_size ? to_f(w[c]) : 1.0f;
                    const float bc = e < group_size ? to_f(b[c]) : 0.0f;
                    v.set(i, norm_silu(v.get(i), mean, rstd, wc, bc));
                }
            }
            store_run<T, VECTOR>(yg, idx, group_size, v);
        }
    }
}

// ---- chunked: stats, finalize, apply ----
template <typename T, bool VECTOR>
__global__ void __launch_bounds__(256) stats_kernel(const T* x, int channels, int spatial, int groups, int group_size,
                                                    int chunks) {
    constexpr int NT = 256, V = Vec<T>::N, REPS = kBlock / (NT * V);
    __shared__ float smem[8];
    const int row = blockIdx.x, chunk = blockIdx.y;
    const int bt = row / groups, g = row - bt * groups;
    const int64_t base = static_cast<int64_t>(bt) * channels * spatial + static_cast<int64_t>(g) * group_size;
    float sum = 0.0f, sq = 0.0f;
#pragma unroll 1
    for (int blk = 0; blk < 2; ++blk) {
        float s, q;
        thread_sums<T, NT, REPS, VECTOR>(x + base, chunk * kChunk + blk * kBlock, group_size, s, q);
        sum = __fadd_rn(sum, block_sum<8>(s, smem));
        sq = __fadd_rn(sq, block_sum<8>(q, smem));
    }
    if (threadIdx.x == 0) {
        g_partial_sum[row * chunks + chunk] = sum;
        g_partial_sq[row * chunks + chunk] = sq;
    }
}

// grid (rows,), 4 warps, RB = min(1024, next_pow2(chunks)) partials a step, 4 a thread-run.
__global__ void __launch_bounds__(128) finalize_kernel(int chunks, int group_size, float eps, int rb) {
    __shared__ float smem[4];
    const int row = blockIdx.x;
    const float* ps = g_partial_sum + row * chunks;
    const float* pq = g_partial_sq + row * chunks;
    float sum = 0.0f, sq = 0.0f;
    for (int off = 0; off < chunks; off += rb) {
        float s = 0.0f, q = 0.0f;
        for (int r = 0; r * 512 < rb; ++r)
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const int j = threadIdx.x * 4 + r * 512 + i;
                if (j < rb && off + j < chunks) {
                    s = __fadd_rn(s, ps[off + j]);
                    q = __fadd_rn(q, pq[off + j]);
                }
            }
        sum = __fadd_rn(sum, block_sum<4>(s, smem));
        sq = __fadd_rn(sq, block_sum<4>(q, smem));
    }
    if (threadIdx.x == 0) {
        float mean, rstd;
        finish_stats(sum, sq, group_size, eps, mean, rstd);
        g_stats[2 * row] = mean;
        g_stats[2 * row + 1] = rstd;
    }
}

// SCALAR: the scalar-affine variant (4 warps; a chunk lies in one channel), else the general one
// (8 warps; channel per element).
template <typename T, bool SCALAR, bool VECTOR>
__global__ void __launch_bounds__(SCALAR ? 128 : 256) apply_kernel(const T* x, const T* __restrict__ w,
                                                                   const T* __restrict__ b, T* y, int channels,
                                                                   int spatial, int groups, int cpg, int group_size) {
    constexpr int NT = SCALAR ? 128 : 256, V = Vec<T>::N, REPS = kBlock / (NT * V);
    const int row = blockIdx.x, chunk = blockIdx.y;
    const int bt = row / groups, g = row - bt * groups;
    const int64_t base = static_cast<int64_t>(bt) * channels * spatial + static_cast<int64_t>(g) * group_size;
    const int start = chunk * kChunk;
    const float mean = g_stats[2 * row], rstd = g_stats[2 * row + 1];
    float ws = 0.0f, bs = 0.0f;
    const bool per_run = spatial % V == 0;
    if (SCALAR) {
        const int c = g * cpg + start / spatial;
        ws = to_f(w[c]);
        bs = to_f(b[c]);
    }
#pragma unroll 1
    for (int blk = 0; blk < 2; ++blk) {
        Vec<T> vs[REPS];
#pragma unroll
        for (int r = 0; r < REPS; ++r)
            vs[r] = load_run<T, VECTOR>(x + base, start + blk * kBlock + threadIdx.x * V + r * NT * V, group_size);
#pragma unroll
        for (int r = 0; r < REPS; ++r) {
            const int idx = start + blk * kBlock + threadIdx.x * V + r * NT * V;
            Vec<T>& v = vs[r];
            if (!SCALAR && VECTOR && per_run) {
                const bool in = idx < group_size;
                const int c = g * cpg + (in ? idx / spatial : 0);
                ws = in ? to_f(w[c]) : 1.0f;
                bs = in ? to_f(b[c]) : 0.0f;
            }
#pragma unroll
            for (int i = 0; i < V; ++i) {
                float wc = ws, bc = bs;
                if (!SCALAR && !(VECTOR && per_run)) {
                    const int e = idx + i;
                    const int c = g * cpg + e / spatial;
                    wc = e < group_size ? to_f(w[c]) : 1.0f;
                    bc = e < group_size ? to_f(b[c]) : 0.0f;
                }
                v.set(i, norm_silu(v.get(i), mean, rstd, wc, bc));
            }
            store_run<T, VECTOR>(y + base, idx, group_size, v);
        }
    }
}

// ---- x.contiguous() for a strided x, as PyTorch runs it: TensorIterator coalesces the dims
// (size-1 dims dropped, neighbours merged where x's strides allow; channels_last_3d becomes
// [C, T*H*W]), then its legacy elementwise kernel (128 threads, 4 elements a thread at
// block*512 + thread + k*128, contiguous output order) computes each input offset with
// IntDivider's multiply-high division, innermost dim first. ----
struct Dims {
    int rank;
    unsigned int size[5];
    unsigned int magic[5];
    unsigned int shift[5];
    int stride[5];  // innermost first
};
template <typename T>
__global__ void __launch_bounds__(128) contiguous_copy_kernel(const T* __restrict__ x, T* __restrict__ y, Dims d,
                                                              int n) {
#pragma unroll
    for (int k = 0; k < 4; ++k) {
        const int i = blockIdx.x * 512 + threadIdx.x + k * 128;
        if (i >= n) return;
        unsigned int rem = static_cast<unsigned int>(i);
        int off = 0;
#pragma unroll
        for (int a = 0; a < 5; ++a) {
            if (a == d.rank) break;
            const unsigned int q = (__umulhi(rem, d.magic[a]) + rem) >> d.shift[a];
            off += static_cast<int>(rem - q * d.size[a]) * d.stride[a];
            rem = q;
        }
        y[i] = x[off];
    }
}

// IntDivider's constants for a divisor v: q = (umulhi(n, magic) + n) >> shift.
void int_divider(unsigned int v, unsigned int& magic, unsigned int& shift) {
    shift = 0;
    while (shift < 32 && (1ull << shift) < v) ++shift;
    magic = static_cast<unsigned int>(((1ull << 32) * ((1ull << shift) - v)) / v + 1);
}

// ---- v1: single read of x. Each CTA of RES_THREADS threads takes a ticket (its start order),
// which names its (group, chunk); it loads its chunk of up to RES_ELEMS elements once from DRAM
// into shared memory, publishes the chunk's count, mean and M2 (two passes over shared memory),
// waits until every chunk of its group has published, combines the group's partials (Chan's
// formula, in float64, every CTA in the same order: identical statistics in every CTA), and
// writes y from shared memory. Tickets are taken in start order, so the CTAs of a later group
// only exist once every CTA of the earlier groups has started: with chunks-per-group <= CTAs
// that fit on the card at once (checked on the host with the occupancy API), every wait ends.
// Counters are left at zero by the last CTA through them, so graph replays start clean. ----
constexpr int RES_THREADS = 512;
constexpr int RES_RUNS = 13;  // 16-byte runs a thread: 104 KB of shared memory a CTA, two a SM
constexpr int kResMaxCtas = 1 << 20;
constexpr int kResMaxGroups = 1 << 16;

__device__ unsigned int g_ticket;
__device__ unsigned int g_done;
__device__ unsigned int g_arrive[kResMaxGroups];
__device__ unsigned int g_leave[kResMaxGroups];
// (count, mean, M2) of each chunk.
__device__ float g_part_n[kResMaxCtas];
__device__ float g_part_mean[kResMaxCtas];
__device__ float g_part_m2[kResMaxCtas];

__device__ __forceinline__ unsigned int ld_acquire(const unsigned int* p) {
    unsigned int v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

template <int NW>
__device__ __forceinline__ double block_sum_d(double v, double* smem) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    if (warp == 0) {
        double t = lane < NW ? smem[lane] : 0.0;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
        if (lane == 0) smem[0] = t;
    }
    __syncthreads();
    return smem[0];
}

template <typename T>
__global__ void __launch_bounds__(RES_THREADS) resident_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                                               const T* __restrict__ b, T* __restrict__ y,
                                                               int spatial, int groups, int cpg, int group_size,
                                                               int clen, int chunks, int total, float eps) {
    constexpr int V = Vec<T>::N, NW = RES_THREADS / 32;
    extern __shared__ uint4 tile[];
    __shared__ double red[32];
    __shared__ unsigned int s_ticket;
    if (threadIdx.x == 0) s_ticket = atomicAdd(&g_ticket, 1u);
    __syncthreads();
    const unsigned int ticket = s_ticket;
    const int row = static_cast<int>(ticket / chunks), chunk = static_cast<int>(ticket % chunks);
    const int g = row % groups;
    const int64_t base = static_cast<int64_t>(row) * group_size;  // contiguous x: groups back to back
    const int start = chunk * clen;  // clen <= RES_THREADS * RES_RUNS * V, a multiple of V
    const int n = min(clen, group_size - start);

    // One read of the chunk from DRAM, into shared memory; the sum on the way.
    float s = 0.0f;
#pragma unroll
    for (int r = 0; r < RES_RUNS; ++r) {
        const int i = (r * RES_THREADS + threadIdx.x) * V;  // element index within the chunk
        Vec<T> v;
        v.raw = i < n ? *reinterpret_cast<const uint4*>(x + base + start + i) : make_uint4(0, 0, 0, 0);
        tile[r * RES_THREADS + threadIdx.x] = v.raw;
#pragma unroll
        for (int k = 0; k < V; ++k) s += v.get(k);
    }
    const double cmean = block_sum_d<NW>(s, red) / n;
    float m2 = 0.0f;
    const float cm = static_cast<float>(cmean);
#pragma unroll
    for (int r = 0; r < RES_RUNS; ++r) {
        const int i = (r * RES_THREADS + threadIdx.x) * V;
        if (i < n) {
            Vec<T> v;
            v.raw = tile[r * RES_THREADS + threadIdx.x];
#pragma unroll
            for (int k = 0; k < V; ++k) {
                const float d = v.get(k) - cm;
                m2 = fmaf(d, d, m2);
            }
        }
    }
    const double cm2 = block_sum_d<NW>(m2, red);

    double mean, var;
    if (chunks == 1) {
        mean = cmean;
        var = cm2 / n;
    } else {
        if (threadIdx.x == 0) {
            g_part_n[ticket] = static_cast<float>(n);
            g_part_mean[ticket] = cm;
            g_part_m2[ticket] = static_cast<float>(cm2);
            __threadfence();
            atomicAdd(&g_arrive[row], 1u);
            while (ld_acquire(&g_arrive[row]) < static_cast<unsigned int>(chunks)) __nanosleep(64);
        }
        __syncthreads();
        // Chan: mean = sum(n_j mean_j) / N; M2 = sum(M2_j + n_j (mean_j - mean)^2), every CTA
        // reading the group's partials in the same order.
        const int64_t first = static_cast<int64_t>(row) * chunks;
        double sm = 0.0;
        for (int j = threadIdx.x; j < chunks; j += RES_THREADS)
            sm += static_cast<double>(__ldcg(&g_part_n[first + j])) * __ldcg(&g_part_mean[first + j]);
        mean = block_sum_d<NW>(sm, red) / group_size;
        double sq = 0.0;
        for (int j = threadIdx.x; j < chunks; j += RES_THREADS) {
            const double d = __ldcg(&g_part_mean[first + j]) - mean;
            sq += __ldcg(&g_part_m2[first + j]) + static_cast<double>(__ldcg(&g_part_n[first + j])) * d * d;
        }
        var = block_sum_d<NW>(sq, red) / group_size;
        if (threadIdx.x == 0 && atomicAdd(&g_leave[row], 1u) == static_cast<unsigned int>(chunks) - 1u) {
            // Every CTA of this group has read its statistics: reset for the next call.
            g_arrive[row] = 0u;
            g_leave[row] = 0u;
        }
    }
    const float fmean = static_cast<float>(mean);
    const float rstd = static_cast<float>(1.0 / sqrt(var + static_cast<double>(eps)));

    // Apply from shared memory; a 16-byte run never crosses a channel when spatial % V == 0.
    const int wgo = g * cpg;
    const bool per_run = spatial % V == 0;
#pragma unroll
    for (int r = 0; r < RES_RUNS; ++r) {
        const int i = (r * RES_THREADS + threadIdx.x) * V;
        if (i >= n) continue;
        Vec<T> v;
        v.raw = tile[r * RES_THREADS + threadIdx.x];
        const int e0 = start + i;
        if (per_run) {
            const int c = wgo + e0 / spatial;
            const float wc = to_f(w[c]), bc = to_f(b[c]);
#pragma unroll
            for (int k = 0; k < V; ++k) v.set(k, norm_silu(v.get(k), fmean, rstd, wc, bc));
        } else {
#pragma unroll
            for (int k = 0; k < V; ++k) {
                const int c = wgo + (e0 + k) / spatial;
                v.set(k, norm_silu(v.get(k), fmean, rstd, to_f(w[c]), to_f(b[c])));
            }
        }
        *reinterpret_cast<uint4*>(y + base + e0) = v.raw;
    }
    if (threadIdx.x == 0 && atomicAdd(&g_done, 1u) == static_cast<unsigned int>(total) - 1u) {
        g_ticket = 0u;
        g_done = 0u;
    }
}

// CTAs of resident_kernel<T> that fit on the device at once (cached per dtype).
template <typename T>
int resident_slots() {
    static int slots = -1;
    if (slots < 0) {
        int dev = 0, sms = 0, per_sm = 0;
        const size_t smem = sizeof(uint4) * RES_THREADS * RES_RUNS;
        bool ok = cudaGetDevice(&dev) == cudaSuccess &&
                  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) == cudaSuccess &&
                  cudaFuncSetAttribute(resident_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(smem)) == cudaSuccess &&
                  cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, resident_kernel<T>, RES_THREADS, smem) ==
                      cudaSuccess;
        cudaGetLastError();
        slots = ok ? sms * per_sm : 0;
    }
    return slots;
}

int next_pow2(int v) {
    int p = 1;
    while (p < v) p <<= 1;
    return p;
}

int32_t refuse(kp_call* call, const char* why) {
    snprintf(call->path, KP_PATH_LEN, "unsupported:%s", why);
    return KP_NOT_SUPPORTED;
}

int32_t launched(kp_call* call) {
    if (cudaGetLastError() != cudaSuccess) return KP_CUDA_ERROR;
    return KP_OK;
}

template <typename T, int BLOCK>
void launch_onepass(bool vec, dim3 grid, cudaStream_t s, const T* x, const T* w, const T* b, T* y, int C, int S,
                    int cpg, int gs, float eps) {
    if (vec)
        onepass_kernel<T, BLOCK, true><<<grid, 128, 0, s>>>(x, w, b, y, C, S, cpg, gs, eps);
    else
        onepass_kernel<T, BLOCK, false><<<grid, 128, 0, s>>>(x, w, b, y, C, S, cpg, gs, eps);
}

template <typename T>
int32_t run(kp_call* call, cudaStream_t s, const kp_tensor& xt, const T* w, const T* b, T* y, int G, float eps,
            bool contiguous) {
    const int rank = xt.rank;
    const int B = static_cast<int>(xt.shape[0]), C = static_cast<int>(xt.shape[1]);
    int64_t S64 = 1;
    for (int d = 2; d < rank; ++d) S64 *= xt.shape[d];
    const int64_t numel = S64 * B * C;
    if (numel >= (int64_t(1) << 31)) return refuse(call, "numel_over_int32");
    const int S = static_cast<int>(S64), cpg = C / G, gs = cpg * S;
    const T* x = static_cast<const T*>(xt.data);
    const char* pre = "";
    // v1: the single-read path for a contiguous x whose groups fit on the card in chunks.
    constexpr int V = Vec<T>::N;
    constexpr int kResElems = RES_THREADS * RES_RUNS * V;
    // Chunks a group: at least what fits in a CTA's shared memory; more (down to 8192 elements
    // a CTA) when the groups alone would leave the card half empty.
    const int slots = resident_slots<T>();
    const int64_t bg = static_cast<int64_t>(B) * G;
    const int chunks_min = (gs + kResElems - 1) / kResElems;
    const int64_t chunks_fill = (slots + bg - 1) / bg;
    const int chunks_cap = gs / 8192 > 1 ? gs / 8192 : 1;
    const int want = static_cast<int>(chunks_fill < chunks_cap ? chunks_fill : chunks_cap);
    const int clen0 = (gs + (want > chunks_min ? want : chunks_min) - 1) / (want > chunks_min ? want : chunks_min);
    const int clen = (clen0 + V - 1) / V * V;
    const int res_chunks = (gs + clen - 1) / clen;
    const int64_t res_total = bg * res_chunks;
    if (contiguous && gs % V == 0 && (reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(y)) % 16 == 0 &&
        res_total <= kResMaxCtas && static_cast<int64_t>(B) * G <= kResMaxGroups &&
        res_chunks <= slots) {
        const size_t smem = sizeof(uint4) * RES_THREADS * RES_RUNS;
        resident_kernel<T><<<static_cast<int>(res_total), RES_THREADS, smem, s>>>(
            x, w, b, y, S, G, cpg, gs, clen, res_chunks, static_cast<int>(res_total), eps);
        snprintf(call->path, KP_PATH_LEN, "resident_single_read_c%d", res_chunks);
        return launched(call);
    }
    if (!contiguous) {
        // x.contiguous() into y, then the kernels read y.
        Dims d{};
        for (int a = rank - 1; a >= 0; --a) {
            const int64_t n = xt.shape[a];
            if (n == 1) continue;
            if (d.rank > 0 && xt.stride[a] == static_cast<int64_t>(d.stride[d.rank - 1]) * d.size[d.rank - 1]) {
                d.size[d.rank - 1] *= static_cast<unsigned int>(n);  // merges with the dim inside it
            } else {
                d.size[d.rank] = static_cast<unsigned int>(n);
                d.stride[d.rank] = static_cast<int>(xt.stride[a]);
                ++d.rank;
            }
        }
        for (int a = 0; a < d.rank; ++a) int_divider(d.size[a], d.magic[a], d.shift[a]);
        const int n = static_cast<int>(numel);
        contiguous_copy_kernel<T><<<(n + 511) / 512, 128, 0, s>>>(x, y, d, n);
        x = y;
        pre = "contiguous_copy+";
    }
    // Triton's 16-byte vectors: pointers 16-byte aligned and the group base a multiple of 16
    // elements (its integer arguments specialised as divisible by 16).
    const bool vec = gs % 16 == 0 && (reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(y)) % 16 == 0;
    if (gs < kLargeGroup) {
        const int block = next_pow2(gs < kBlock ? gs : kBlock);
        const dim3 grid(G, B);
        if (block == kBlock)
            launch_onepass<T, kBlock>(vec, grid, s, x, w, b, y, C, S, cpg, gs, eps);
        else  // small groups (regression rows only): one generic tile of 1024 covers every BLOCK <= 1024
            launch_onepass<T, 1024>(false, grid, s, x, w, b, y, C, S, cpg, gs, eps);
        snprintf(call->path, KP_PATH_LEN, "%sonepass_b%d%s", pre, block, vec ? "_v16B" : "");
        return launched(call);
    }
    const int rows = B * G, chunks = (gs + kChunk - 1) / kChunk;
    if (static_cast<int64_t>(rows) * chunks > kWsFloats || rows > 65536) return refuse(call, "workspace");
    const dim3 grid(rows, chunks);
    if (vec)
        stats_kernel<T, true><<<grid, 256, 0, s>>>(x, C, S, G, gs, chunks);
    else
        stats_kernel<T, false><<<grid, 256, 0, s>>>(x, C, S, G, gs, chunks);
    const int rb = next_pow2(chunks) < 1024 ? next_pow2(chunks) : 1024;
    finalize_kernel<<<rows, 128, 0, s>>>(chunks, gs, eps, rb);
    const bool scalar = S % kChunk == 0 && chunks >= 64;
    if (scalar) {
        if (vec)
            apply_kernel<T, true, true><<<grid, 128, 0, s>>>(x, w, b, y, C, S, G, cpg, gs);
        else
            apply_kernel<T, true, false><<<grid, 128, 0, s>>>(x, w, b, y, C, S, G, cpg, gs);
    } else {
        if (vec)
            apply_kernel<T, false, true><<<grid, 256, 0, s>>>(x, w, b, y, C, S, G, cpg, gs);
        else
            apply_kernel<T, false, false><<<grid, 256, 0, s>>>(x, w, b, y, C, S, G, cpg, gs);
    }
    snprintf(call->path, KP_PATH_LEN, "%schunked_%s%s", pre, scalar ? "scalar_affine" : "apply", vec ? "_v16B" : "");
    return launched(call);
}

bool is_contiguous(const kp_tensor& t) {
    int64_t want = 1;
    for (int d = t.rank - 1; d >= 0; --d) {
        if (t.shape[d] != 1 && t.stride[d] != want) return false;
        want *= t.shape[d];
    }
    return true;
}

}  // namespace

extern "C" {

int32_t kp_group_norm_silu(kp_call* call, void* stream_ptr) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != 4 || call->n_scalars != 2)
        return KP_INVALID;
    for (int i = 0; i < 4; ++i)
        if (call->tensors[i].rank < 0 || call->tensors[i].rank > KP_MAX_RANK) return KP_INVALID;
    const kp_tensor& x = call->tensors[0];
    const kp_tensor& w = call->tensors[1];
    const kp_tensor& b = call->tensors[2];
    const kp_tensor& y = call->tensors[3];
    const double g_d = call->scalars[0];
    const float eps = static_cast<float>(call->scalars[1]);
    cudaStream_t s = static_cast<cudaStream_t>(stream_ptr);

    // Upstream's own checks: what fails them goes to eager F.group_norm, which raises for these.
    if (x.rank < 2 || x.rank > 5) return refuse(call, "rank");
    if (!(g_d >= 1.0 && g_d <= 65535.0) || g_d != static_cast<double>(static_cast<int>(g_d)))
        return refuse(call, "num_groups");
    const int G = static_cast<int>(g_d);
    if (x.shape[1] % G != 0) return refuse(call, "channels_not_multiple_of_groups");
    const int32_t dt = x.dtype;
    if (dt != KP_BF16 && dt != KP_F16 && dt != KP_F32) return refuse(call, "dtype");
    if (w.dtype != dt || b.dtype != dt || y.dtype != dt) return refuse(call, "mixed_dtype");
    if (w.rank != 1 || b.rank != 1 || w.shape[0] != x.shape[1] || b.shape[0] != x.shape[1])
        return refuse(call, "affine_shape");
    if (w.shape[0] > 1 && (w.stride[0] != 1 || b.stride[0] != 1)) return refuse(call, "affine_stride");
    if (y.rank != x.rank || !is_contiguous(y)) return refuse(call, "y_layout");
    int64_t numel = 1;
    for (int d = 0; d < x.rank; ++d) {
        if (y.shape[d] != x.shape[d]) return refuse(call, "y_shape");
        numel *= x.shape[d];
    }
    if (numel == 0) {
        snprintf(call->path, KP_PATH_LEN, "empty");
        return KP_OK;
    }
    const bool contig = is_contiguous(x);
    if (dt == KP_F16)
        return run<__half>(call, s, x, static_cast<const __half*>(w.data), static_cast<const __half*>(b.data),
                           static_cast<__half*>(y.data), G, eps, contig);
    if (dt == KP_BF16)
        return run<__nv_bfloat16>(call, s, x, static_cast<const __nv_bfloat16*>(w.data),
                                  static_cast<const __nv_bfloat16*>(b.data), static_cast<__nv_bfloat16*>(y.data),
                                  G, eps, contig);
    return run<float>(call, s, x, static_cast<const float*>(w.data), static_cast<const float*>(b.data),
                      static_cast<float*>(y.data), G, eps, contig);
}

}  // extern "C"
