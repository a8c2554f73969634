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
//                      -> apply (8 warps, channel per 16-byte run or per element, as Triton's
//                      specialisation decides) or apply_scalar_affine (4 warps, spatial % 8192 == 0
//                      and >= 64 chunks).
//   channels-last x:   upstream runs x.contiguous() first (a PyTorch elementwise copy kernel:
//                      128 threads, 4 elements a thread, contiguous order, strided reads). The
//                      baseline does the same copy into y and then runs the path in place on y
//                      (every element is read and then written by the same thread, and the stats
//                      launches finish before the apply launch): the same bytes and launches as
//                      upstream's copy into a temporary, without an allocation the ABI forbids.
//
// Matched to Triton 3.6's SASS for the production configurations (sm_90, ptxas from CUDA 13),
// instruction for instruction in what costs: the apply loops compute the channel index
// idx // spatial ONCE A RUN of 8 when spatial is a multiple of 16 (Triton specialises such an
// int argument as divisible by 16 and its axis analysis makes the quotient constant over a run;
// spatial = 600 gets one division an element, as Triton's PTX for that case), always
// unconditionally (one I2F.RP + MUFU.RCP for the divisor an iteration, in Triton's loop too,
// then IMAD.HI per division; the first port divided per element under a
// condition: 32 I2F.RP + 32 MUFU.RCP + 64 IMAD.HI an iteration of the one-pass apply loop, its
// 3.3-4.2x on the one-pass rows and 1.7x on the general chunked apply in fidelity run
// 20261201T013122Z-14991c9c on an H200); each element's w and b a predicated 2-byte load even
// where 8 share an address (64 LDG.E.U16 an iteration, as Triton); the x runs and y runs as
// straight-line predicated 16-byte loads and stores (no branch around a run's computation); the
// cross-warp reduction on every lane without a divergent branch. Per iteration and thread, SASS
// counts equal Triton's for LDG.E.128, LDG.E.U16, STG.E.128, MUFU.EX2/RCP, I2F.RP, IMAD.HI, BAR
// and BRA (one-pass; general and scalar-affine apply; stats). Loads in flight a thread: one-pass
// 4 x 16 B (stats and apply loops; Triton's num_stages=3 pipelines nothing here: no cp.async, no
// cross-iteration prefetch, loops not unrolled), stats 2 x 16 B, general apply 2 x 16 B,
// scalar-affine apply 4 x 16 B, each plus the w/b gathers; the same in Triton's PTX. Equal
// counts were not enough for the one-pass kernel (one warp a scheduler: the schedule is the
// cost); see its comment for what its SASS matches beyond them (after fidelity run
// 20261201T015639Z-b059ff15).
// Registers (fp16): one-pass 96 (Triton 80; one CTA a SM either way), general apply 56 (Triton
// 48: 4 CTAs a SM here, 5 for Triton), scalar-affine 40 (43), stats 32 (32).
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
// PLAIN: 1 + 2^t as a plain add.f32, Triton's PTX (the same value: rounded to nearest, and nothing
// to contract into it, 2^t being ex2.approx's result). ptxas then knows the divisor is >= 1 and
// drops div.full's sign and subnormal fix-up (FSETP |d| + 2 FMUL an element), which add.rn.f32
// hides from it. The one-pass kernel uses it (Triton's SASS has no fix-up); the chunked apply
// kernels keep add.rn (they matched upstream in run 20261201T015639Z-b059ff15 and were left as
// they are; Triton's SASS for them lacks the fix-up too).
template <bool PLAIN = false>
__device__ __forceinline__ float norm_silu(float x, float mean, float rstd, float w, float b) {
    const float n = __fmul_rn(rstd, __fsub_rn(x, mean));
    const float y = __fmaf_rn(n, w, b);
    const float e = ex2_approx(__fmul_rn(__fsub_rn(0.0f, y), 1.44269502f));
    return __fmul_rn(y, div_full(1.0f, PLAIN ? e + 1.0f : __fadd_rn(e, 1.0f)));
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
// warps; every thread gets the result. As Triton's PTX: the cross-warp step runs on every lane
// (a predicated shared load for the first NW threads, a full-warp butterfly, thread 0 stores),
// no divergent branch.
template <int NW>
__device__ __forceinline__ float block_sum(float v, float* smem) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    float s = threadIdx.x < NW ? smem[threadIdx.x] : 0.0f;
#pragma unroll
    for (int o = NW / 2; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (threadIdx.x == 0) smem[0] = s;
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
// The 16-byte load and store are Triton's PTX: `mov 0 x4; @p ld.global.v4.b32` and
// `@p st.global.v4.b32`, straight-line and predicated (a C++ `if` lets nvcc sink a run's whole
// computation under a branch around its store). Volatile: they stay in program order, as x and
// y may be one buffer (the channels-last path runs in place).
template <typename T, bool VECTOR>
__device__ __forceinline__ Vec<T> load_run(const T* p, int idx, int n) {
    Vec<T> v;
    if (VECTOR) {
        asm volatile(
            "{\n\t.reg .pred p;\n\tsetp.ne.b32 p, %4, 0;\n\tmov.u32 %0, 0;\n\tmov.u32 %1, 0;\n\tmov.u32 %2, 0;"
            "\n\tmov.u32 %3, 0;\n\t@p ld.global.v4.b32 {%0, %1, %2, %3}, [%5];\n\t}"
            : "=r"(v.raw.x), "=r"(v.raw.y), "=r"(v.raw.z), "=r"(v.raw.w)
            : "r"(static_cast<int>(idx < n)), "l"(p + idx)
            : "memory");
    } else {
#pragma unroll
        for (int i = 0; i < Vec<T>::N; ++i) v.set(i, idx + i < n ? to_f(p[idx + i]) : 0.0f);
    }
    return v;
}
template <typename T, bool VECTOR>
__device__ __forceinline__ void store_run(T* p, int idx, int n, const Vec<T>& v) {
    if (VECTOR) {
        asm volatile("{\n\t.reg .pred p;\n\tsetp.ne.b32 p, %0, 0;\n\t@p st.global.v4.b32 [%1], {%2, %3, %4, %5};\n\t}"
                     :
                     : "r"(static_cast<int>(idx < n)), "l"(p + idx), "r"(v.raw.x), "r"(v.raw.y), "r"(v.raw.z),
                       "r"(v.raw.w)
                     : "memory");
    } else {
#pragma unroll
        for (int i = 0; i < Vec<T>::N; ++i)
            if (idx + i < n) p[idx + i] = reinterpret_cast<const T*>(&v.raw)[i];
    }
}

// Triton's masked gather of one element: `mov dflt; @p ld.global.b16` (b32 for fp32), the raw
// element kept until its use (as Triton's PTX keeps the b16 values, two a 32-bit register).
// Volatile so that every element keeps its own load, as in Triton's PTX (8 loads of one address
// for a run whose channel is constant; ptxas keeps them all: 64 LDG.E.U16 an iteration in
// Triton's one-pass SASS).
template <typename T> struct Raw {
    using type = unsigned short;
};
template <> struct Raw<float> {
    using type = float;
};
template <typename T>
__device__ __forceinline__ typename Raw<T>::type ld_masked(const T* p, bool pred, typename Raw<T>::type dflt) {
    typename Raw<T>::type r;
    if constexpr (sizeof(T) == 2) {
        asm volatile(
            "{\n\t.reg .pred p;\n\tsetp.ne.b32 p, %2, 0;\n\tmov.u16 %0, %3;\n\t@p ld.global.b16 %0, [%1];\n\t}"
            : "=h"(r)
            : "l"(p), "r"(static_cast<int>(pred)), "h"(dflt));
    } else {
        asm volatile(
            "{\n\t.reg .pred p;\n\tsetp.ne.b32 p, %2, 0;\n\tmov.b32 %0, %3;\n\t@p ld.global.b32 %0, [%1];\n\t}"
            : "=f"(r)
            : "l"(p), "r"(static_cast<int>(pred)), "f"(dflt));
    }
    return r;
}
__device__ __forceinline__ float raw_to_f(unsigned short v, __half) { return __half2float(__ushort_as_half(v)); }
__device__ __forceinline__ float raw_to_f(unsigned short v, __nv_bfloat16) {
    return __bfloat162float(__ushort_as_bfloat16(v));
}
__device__ __forceinline__ float raw_to_f(float v, float) { return v; }
// Triton's `other` values as raw elements: 1 (w) and 0 (b).
template <typename T> __device__ __forceinline__ typename Raw<T>::type raw_one();
template <> __device__ __forceinline__ unsigned short raw_one<__half>() { return 0x3C00; }
template <> __device__ __forceinline__ unsigned short raw_one<__nv_bfloat16>() { return 0x3F80; }
template <> __device__ __forceinline__ float raw_one<float>() { return 1.0f; }

// The apply step of one block for a thread's REPS runs (already loaded in vs; run r at
// idx0 + r*NT*VEC), ordered as Triton's PTX orders it (one-pass and general chunked apply):
//   1. the channel index wgo + idx // spatial, computed unconditionally (div.s32 with a
//      loop-invariant divisor: one I2F.RP + MUFU.RCP an iteration, in Triton's loop as here,
//      then IMAD.HI a division). RUN_CH: once a run of VEC, what Triton's
//      axis analysis proves when spatial is specialised divisible by 16 (idx // spatial constant
//      over a run of 8 contiguous, 8-aligned idx); else once an element (Triton's PTX for a
//      spatial not divisible by 16: 32 div.s32 an iteration of the one-pass kernel);
//   2. every weight load (other = 1), then every bias load (other = 0), one predicated load an
//      element, the mask a run's (VECTOR: group size divisible by 16) or an element's;
//   3. the math and the stores (norm_silu<PLAIN>).
template <typename T, int NT, int REPS, bool VECTOR, bool RUN_CH, bool PLAIN = false>
__device__ __forceinline__ void apply_block(Vec<T> (&vs)[REPS], T* yg, int idx0, int n, int spatial, int wgo,
                                            const T* w, const T* b, float mean, float rstd) {
    constexpr int V = Vec<T>::N;
    int ch[REPS][V];
#pragma unroll
    for (int r = 0; r < REPS; ++r) {
        const int idx = idx0 + r * NT * V;
        if (RUN_CH) {
            const int c = wgo + idx / spatial;
#pragma unroll
            for (int i = 0; i < V; ++i) ch[r][i] = c;
        } else {
#pragma unroll
            for (int i = 0; i < V; ++i) ch[r][i] = wgo + (idx + i) / spatial;
        }
    }
    using R = typename Raw<T>::type;
    const R one = raw_one<T>(), zero = R(0);
    R wv[REPS][V], bv[REPS][V];
#pragma unroll
    for (int r = 0; r < REPS; ++r)
#pragma unroll
        for (int i = 0; i < V; ++i) {
            const int idx = idx0 + r * NT * V;
            wv[r][i] = ld_masked<T>(w + ch[r][i], VECTOR ? idx < n : idx + i < n, one);
        }
#pragma unroll
    for (int r = 0; r < REPS; ++r)
#pragma unroll
        for (int i = 0; i < V; ++i) {
            const int idx = idx0 + r * NT * V;
            bv[r][i] = ld_masked<T>(b + ch[r][i], VECTOR ? idx < n : idx + i < n, zero);
        }
#pragma unroll
    for (int r = 0; r < REPS; ++r) {
#pragma unroll
        for (int i = 0; i < V; ++i)
            vs[r].set(i, norm_silu<PLAIN>(vs[r].get(i), mean, rstd, raw_to_f(wv[r][i], T()), raw_to_f(bv[r][i], T())));
        store_run<T, VECTOR>(yg, idx0 + r * NT * V, n, vs[r]);
    }
}

// Per-thread sums over REPS runs of VEC at thread*VEC + r*NT*VEC, in register order, as Triton's
// PTX: s = x0 + x1 + x2 + ...; q = fma(x0, x0, x1 * x1), then fma(xk, xk, q) for k >= 2.
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
// With one CTA of 4 warps on each of only G*B = 32 SMs (one warp a scheduler) this kernel is
// latency-bound: its time is each warp's instruction stream and where that stream waits, i.e.
// ptxas's schedule. Fidelity run 20261201T015639Z-b059ff15 (H200): the previous port, with the
// same loads and instruction classes, was 1.17-1.29x upstream's time on every contiguous
// one-pass row. Its SASS against Triton's (sm_90, ptxas CUDA 13), a loop iteration:
//   apply loop: 975 instructions vs 896. div.full's sign and subnormal fix-up on every element
//     (FSETP |d| + 2 FMUL: 96 instructions), which Triton's SASS does not have because its
//     1 + 2^t is add.f32 and the port's was add.rn.f32 (norm_silu<PLAIN>). And x runs 1-3 issued
//     only after run 0's math had started (runs 2 and 3 after run 1's first use): three
//     serialized L2 round trips an iteration where Triton has two (run 0, then runs 1-3
//     together).
//   stats loop: 192 vs 171: four 64-bit address computations (Triton: one base and immediate
//     offsets) and the shared-memory slot addresses recomputed each iteration under predicates.
// Now: the stats loop in Triton's PTX shape (one base pointer + immediate offsets; the sum's
// chain and block reduction, then the square sum's; the slots and predicates computed once
// before the loop, predicated `@p st.shared` / `@p ld.shared`, no branches): 166 instructions.
// The apply loop as before but norm_silu<true>: 881 instructions, x run 0 issued 25
// instructions before its first use, runs 1-3 before run 1's first use (two round trips, as
// Triton). Same values as before (every operation and rounding unchanged). Registers 96 (Triton
// 80; one CTA a SM either way). A single-warp issue model from the SASS control codes (stall
// counts, scoreboards; L2 300-700 cycles, DRAM 800) puts an iteration pair at Triton's +2%
// (the previous port: +15%); not measured.

// Triton's predicated shared-memory accesses at a precomputed shared address.
__device__ __forceinline__ void st_shared_if(uint32_t addr, float v, bool pred) {
    asm volatile("{\n\t.reg .pred p;\n\tsetp.ne.b32 p, %2, 0;\n\t@p st.shared.b32 [%0], %1;\n\t}"
                 :
                 : "r"(addr), "f"(v), "r"(static_cast<int>(pred))
                 : "memory");
}
__device__ __forceinline__ float ld_shared_if(uint32_t addr, bool pred) {
    float v;
    asm volatile("{\n\t.reg .pred p;\n\tsetp.ne.b32 p, %2, 0;\n\tmov.b32 %0, 0;\n\t@p ld.shared.b32 %0, [%1];\n\t}"
                 : "=f"(v)
                 : "r"(addr), "r"(static_cast<int>(pred))
                 : "memory");
    return v;
}
__device__ __forceinline__ float ld_shared(uint32_t addr) {
    float v;
    asm volatile("ld.shared.b32 %0, [%1];" : "=f"(v) : "r"(addr) : "memory");
    return v;
}

// The block sum of the one-pass kernel (4 warps), Triton's sequence: barrier, warp butterfly,
// lane 0 stores its warp's partial, barrier, threads 0-3 load the 4 partials, butterfly (2, 1),
// thread 0 stores the total, barrier, every thread loads it.
struct OnepassRed {
    uint32_t warp_slot, thread_slot, total;
    bool lane0, lt4, t0;
};
__device__ __forceinline__ float onepass_block_sum(float v, const OnepassRed& r) {
    __syncthreads();
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    st_shared_if(r.warp_slot, v, r.lane0);
    __syncthreads();
    float s = ld_shared_if(r.thread_slot, r.lt4);
    s += __shfl_xor_sync(0xffffffffu, s, 2);
    s += __shfl_xor_sync(0xffffffffu, s, 1);
    st_shared_if(r.thread_slot, s, r.t0);
    __syncthreads();
    return ld_shared(r.total);
}

// A run of VEC elements at addr (element idx of a group of n; masked: idx >= n reads 0):
// load_run's instructions, the address computed by the caller.
template <typename T, bool VECTOR>
__device__ __forceinline__ Vec<T> load_run_at(const T* addr, int idx, int n) {
    Vec<T> v;
    if (VECTOR) {
        asm volatile(
            "{\n\t.reg .pred p;\n\tsetp.ne.b32 p, %4, 0;\n\tmov.u32 %0, 0;\n\tmov.u32 %1, 0;\n\tmov.u32 %2, 0;"
            "\n\tmov.u32 %3, 0;\n\t@p ld.global.v4.b32 {%0, %1, %2, %3}, [%5];\n\t}"
            : "=r"(v.raw.x), "=r"(v.raw.y), "=r"(v.raw.z), "=r"(v.raw.w)
            : "r"(static_cast<int>(idx < n)), "l"(addr)
            : "memory");
    } else {
#pragma unroll
        for (int i = 0; i < Vec<T>::N; ++i) v.set(i, idx + i < n ? to_f(addr[i]) : 0.0f);
    }
    return v;
}
template <typename T, int BLOCK, bool VECTOR, bool RUN_CH>
__global__ void __launch_bounds__(128) onepass_kernel(const T* x, const T* w, const T* b, T* y, int channels,
                                                      int spatial, int cpg, int group_size, float eps) {
    constexpr int NT = 128, V = Vec<T>::N, REPS = BLOCK / (NT * V);
    static_assert(REPS >= 1, "BLOCK below one run a thread");
    __shared__ float smem[4];
    const int g = blockIdx.x, bt = blockIdx.y;
    const int64_t base = static_cast<int64_t>(bt) * channels * spatial + static_cast<int64_t>(g) * group_size;
    const int t0 = threadIdx.x * V;  // the thread's first element of a block
    const T* xt = x + base + t0;
    T* yt = y + base + t0;
    OnepassRed red;
    {
        const uint32_t s0 = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
        red.warp_slot = s0 + (threadIdx.x >> 5) * 4;
        red.thread_slot = s0 + threadIdx.x * 4;
        red.total = s0;
        red.lane0 = (threadIdx.x & 31) == 0;
        red.lt4 = threadIdx.x < 4;
        red.t0 = threadIdx.x == 0;
    }
    float sum = 0.0f, sq = 0.0f;
    for (int off = 0; off < group_size; off += BLOCK) {
        Vec<T> v[REPS];
#pragma unroll
        for (int r = 0; r < REPS; ++r) v[r] = load_run_at<T, VECTOR>(xt + off + r * NT * V, off + t0 + r * NT * V, group_size);
        // s = x0 + x1 + x2 + ..., in register order; then q = fma(x0, x0, x1 * x1), fma(xk, xk, q).
        float s = __fadd_rn(v[0].get(0), v[0].get(1));
#pragma unroll
        for (int r = 0; r < REPS; ++r)
#pragma unroll
            for (int i = 0; i < V; ++i)
                if (r > 0 || i >= 2) s = __fadd_rn(s, v[r].get(i));
        sum = __fadd_rn(sum, onepass_block_sum(s, red));
        float q = __fmaf_rn(v[0].get(0), v[0].get(0), __fmul_rn(v[0].get(1), v[0].get(1)));
#pragma unroll
        for (int r = 0; r < REPS; ++r)
#pragma unroll
            for (int i = 0; i < V; ++i)
                if (r > 0 || i >= 2) q = __fmaf_rn(v[r].get(i), v[r].get(i), q);
        sq = __fadd_rn(sq, onepass_block_sum(q, red));
    }
    float mean, rstd;
    finish_stats(sum, sq, group_size, eps, mean, rstd);
    const int wgo = g * cpg;
    for (int off = 0; off < group_size; off += BLOCK) {
        // Every run loaded before any is stored, as Triton's block (x and y may be one buffer).
        Vec<T> vs[REPS];
#pragma unroll
        for (int r = 0; r < REPS; ++r) vs[r] = load_run<T, VECTOR>(x + base, off + threadIdx.x * V + r * NT * V, group_size);
        apply_block<T, NT, REPS, VECTOR, RUN_CH, true>(vs, y + base, off + threadIdx.x * V, group_size, spatial, wgo, w, b, mean,
                                                 rstd);
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
// (8 warps; the channel per run or per element, as apply_block says).
template <typename T, bool SCALAR, bool VECTOR, bool RUN_CH>
__global__ void __launch_bounds__(SCALAR ? 128 : 256) apply_kernel(const T* x, const T* w, const T* b, T* y,
                                                                   int channels, int spatial, int groups, int cpg,
                                                                   int group_size) {
    constexpr int NT = SCALAR ? 128 : 256, V = Vec<T>::N, REPS = kBlock / (NT * V);
    const int row = blockIdx.x, chunk = blockIdx.y;
    const int bt = row / groups, g = row - bt * groups;
    const int64_t base = static_cast<int64_t>(bt) * channels * spatial + static_cast<int64_t>(g) * group_size;
    const int start = chunk * kChunk;
    const float mean = g_stats[2 * row], rstd = g_stats[2 * row + 1];
    float ws = 0.0f, bs = 0.0f;
    if (SCALAR) {
        const int c = g * cpg + start / spatial;
        ws = to_f(w[c]);
        bs = to_f(b[c]);
    }
#pragma unroll 1
    for (int blk = 0; blk < 2; ++blk) {
        Vec<T> vs[REPS];
        const int idx0 = start + blk * kBlock + threadIdx.x * V;
#pragma unroll
        for (int r = 0; r < REPS; ++r) vs[r] = load_run<T, VECTOR>(x + base, idx0 + r * NT * V, group_size);
        if (SCALAR) {
#pragma unroll
            for (int r = 0; r < REPS; ++r) {
#pragma unroll
                for (int i = 0; i < V; ++i) vs[r].set(i, norm_silu(vs[r].get(i), mean, rstd, ws, bs));
                store_run<T, VECTOR>(y + base, idx0 + r * NT * V, group_size, vs[r]);
            }
        } else {
            apply_block<T, NT, REPS, VECTOR, RUN_CH>(vs, y + base, idx0, group_size, spatial, g * cpg, w, b, mean,
                                                     rstd);
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
void launch_onepass(bool vec, bool run_ch, dim3 grid, cudaStream_t s, const T* x, const T* w, const T* b, T* y,
                    int C, int S, int cpg, int gs, float eps) {
    if (vec && run_ch)
        onepass_kernel<T, BLOCK, true, true><<<grid, 128, 0, s>>>(x, w, b, y, C, S, cpg, gs, eps);
    else if (vec)
        onepass_kernel<T, BLOCK, true, false><<<grid, 128, 0, s>>>(x, w, b, y, C, S, cpg, gs, eps);
    else
        onepass_kernel<T, BLOCK, false, false><<<grid, 128, 0, s>>>(x, w, b, y, C, S, cpg, gs, eps);
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
    // Triton's idx // spatial constant over a run: spatial specialised divisible by 16 (with the
    // 16-byte runs of vec; a run is at most 8 elements, so it never crosses a channel).
    const bool run_ch = vec && S % 16 == 0;
    if (gs < kLargeGroup) {
        const int block = next_pow2(gs < kBlock ? gs : kBlock);
        const dim3 grid(G, B);
        if (block == kBlock)
            launch_onepass<T, kBlock>(vec, run_ch, grid, s, x, w, b, y, C, S, cpg, gs, eps);
        else  // small groups (regression rows only): one generic tile of 1024 covers every BLOCK <= 1024
            launch_onepass<T, 1024>(false, false, grid, s, x, w, b, y, C, S, cpg, gs, eps);
        snprintf(call->path, KP_PATH_LEN, "%sonepass_b%d%s", pre, block, vec ? (run_ch ? "_v16B_runch" : "_v16B") : "");
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
            apply_kernel<T, true, true, false><<<grid, 128, 0, s>>>(x, w, b, y, C, S, G, cpg, gs);
        else
            apply_kernel<T, true, false, false><<<grid, 128, 0, s>>>(x, w, b, y, C, S, G, cpg, gs);
    } else {
        if (run_ch)
            apply_kernel<T, false, true, true><<<grid, 256, 0, s>>>(x, w, b, y, C, S, G, cpg, gs);
        else if (vec)
            apply_kernel<T, false, true, false><<<grid, 256, 0, s>>>(x, w, b, y, C, S, G, cpg, gs);
        else
            apply_kernel<T, false, false, false><<<grid, 256, 0, s>>>(x, w, b, y, C, S, G, cpg, gs);
    }
    snprintf(call->path, KP_PATH_LEN, "%schunked_%s%s", pre, scalar ? "scalar_affine" : "apply",
             vec ? (run_ch && !scalar ? "_v16B_runch" : "_v16B") : "");
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
