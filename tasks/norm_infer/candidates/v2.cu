// kpilot-parent: baseline sha256 f3543eb3b11904a91e2594b0ce380bb311fdd800df3983f254266875a36576c5
// Candidate v2 for tasks/norm_infer: the baseline (upstream's Triton layouts) for every call but
// one family, fp32 LayerNorm with fp32 weight and bias (helios [8640, 5120]).
//
// What changes and why (evidence and prediction in NOTES.md, section "v2"):
//   * triton_one_pass_rms_norm: every call runs the baseline's kernels and launch, unchanged. On
//     the H200 (run 20261201T013235Z-9693c2e4) the baseline already runs its production rows at
//     98.6-104% of the stream reference (hunyuan 79.99 us against 79.00, zimage M16384 3.52
//     against 3.66), so there is nothing left to take; v1's own kernel for them was 2-9% slower.
//   * norm_infer, fp32 x / out contiguous and 16-byte aligned, is_rms_norm false, fp32 weight and
//     bias [N] (stride 1, aligned), N == 5120, M even (every other call: the baseline): one block
//     of 256 threads takes two rows, 5 float4 a thread a row (exact fit: 5120 = 256 x 5 x 4, no
//     masked slot, where Triton's BLOCK_N 8192 program keeps 3 of 8 float4 slots predicated off),
//     both rows in registers (64 registers, no spill: 4 blocks = 8 rows an SM, Triton's 4); each
//     weight / bias float4 is read once for the two rows (half the L2 -> SM traffic of the 40 KB
//     of affine a row, 354 MB over the helios call without it) through ld.global.nc, x through
//     ld.global.cs (read once, evict first). The arithmetic and its rounding points are the
//     baseline's (div.full mean and variance, sqrt.approx.ftz, 1 / sqrt as a div.full, x_hat
//     rounded, y = fma(x_hat, w, b)); only the order of the cross-thread sums differs.
//
// The baseline part below is tasks/norm_infer/baseline.cu as frozen (its header kept), with its
// two entry points renamed base_norm_infer / base_triton_one_pass_rms_norm.
//
// Baseline for tasks/norm_infer: a CUDA port of the two Triton inference norms SGLang 0.5.23 runs
// on CUDA for the task's entry points.
//
// Lineage (facts; package sglang 0.5.23 from PyPI, wheel
// sglang-0.5.23-cp311-cp311-manylinux_2_34_x86_64.whl; paths relative to the unpacked wheel):
//   * norm_infer(x, weight, bias, eps, is_rms_norm=False, out=None):
//     sglang/kernels/ops/diffusion/norm/norm_triton.py, Triton kernel _norm_infer_kernel.
//     Host: `M, N = x.shape` (x must be 2-D), x.contiguous(); weight / bias, when given, must be
//     shape (N,) with stride(-1) == 1 (assert); MAX_FUSED_SIZE = 65536 // x.element_size(),
//     BLOCK_N = min(MAX_FUSED_SIZE, next_pow2(N)), N > BLOCK_N raises ("feature dim >= 64KB");
//     num_warps = min(max(BLOCK_N // 256, 1), 8); grid (M,), one program per row.
//     Kernel, all fp32: mean = sum(x) / N; xbar = where(col < N, x - mean, 0);
//     var = sum(xbar * xbar) / N (RMS: xbar = x, no mean); rstd = 1 / sqrt(var + eps);
//     x_hat = (x - mean) * rstd (RMS: x * rstd); y = x_hat * w (HAS_WEIGHT), y += b (HAS_BIAS);
//     stored in x's dtype. Weight and bias are loaded in their own dtype and converted to fp32.
//     Caller: sglang/multimodal_gen/runtime/layers/layernorm.py LayerNorm.forward_cuda ->
//     forward_triton -> norm_infer(x.view(-1, hidden), weight, bias, eps, is_rms_norm=False)
//     (helios.py: self_attn_residual_norm = LayerNorm(dim, eps, elementwise_affine=True,
//     dtype=torch.float32) when cross_attn_norm).
//   * triton_one_pass_rms_norm(x, w, eps=1e-6):
//     sglang/kernels/ops/diffusion/norm/rmsnorm_onepass_triton.py, Triton kernel
//     _rms_norm_tiled_onepass (a register_custom_op "triton_one_pass_rms_norm_cuda").
//     Host: x.contiguous(), viewed as [S, D] = x.reshape(-1, shape[-1]); y = empty_like(x);
//     BLOCK_SIZE_SEQ = min(16, next_pow2(max(1, S // 512))), BLOCK_SIZE_DIM = next_pow2(D),
//     grid (cdiv(S, BLOCK_SIZE_SEQ),), default num_warps (4); SEQ, DIM and EPS are constexpr.
//     No check of w's shape. Kernel: x fp32; ms = sum(x * x, axis=1) / DIM;
//     rstd = rsqrt(ms + EPS); y = x * rstd * w (w in its own dtype, promoted to fp32).
//     Caller: layernorm.py RMSNorm.forward_cuda, x not fp32, no residual, no variance override,
//     x.shape[-1] <= 128 (hunyuanvideo.py img/txt attn q/k norms when try_hunyuan_qknorm
//     declines; see task.toml's notes for zimage).
//
// How the port maps Triton (read from Triton 3.6.0's ttgir and PTX of both kernels compiled for
// sm_90 at every row's configuration; NOTES.md lists the layouts): one program = one CUDA block of
// num_warps * 32 threads over the same tile, and every layout is a compile-time one, one
// instantiation per layout Triton compiles for a row (Triton, too, compiles one kernel per
// BLOCK_N / BLOCK_SIZE_SEQ / num_warps / alignment): the tile stays in registers and every index
// is a constant or a 32-bit offset (Triton's `row * stride` and `seq * DIM` are i32 products).
//   * Layout (Triton's blocked layout, order [1, 0]): sizePerThread [1, SPT] elements of a row a
//     thread, accessed AW at a time (AW = SPT when the row length divides by 16 elements and the
//     pointers by 16 bytes, else 1); lanes along the row TPW1 = min(32, BD / SPT), the other lanes
//     along the rows (or replicas, which load and compute but never store, as Triton's do); warps
//     along the row WPC1, then along the rows; R1 chunks along the row, R0 row slots. Element i of
//     chunk k is column ((k * WPC1 + w1) * TPW1 + l1) * SPT + i; slot j is row
//     (j * WPC0 + w0) * TPW0 + l0.
//   * All loads of x are issued before its arithmetic (other = 0); masked slots (BLOCK_N beyond N,
//     rows beyond S) are predicated off, as Triton's are (helios: 5 of a thread's 8 float4 slots
//     live, the other 3 predicated).
//   * Sums: in-thread in register order (chunk by chunk); the sum of squares as d1 * d1, then
//     fma(d0, d0, .), fma(d2, d2, .), ... (one element a thread: d0 * d0 shuffled, and the first
//     shuffle's add contracted to fma(d0, d0, .), as LLVM emits it); then a butterfly over the row's
//     lanes (xor TPW1/2 .. 1); then, when warps share a row, Triton's shared-memory step: lane 0 of
//     each warp stores its partial, a barrier, the first ROWS * WPC1 threads load them and reduce
//     them with a butterfly (xor WPC1/2 .. 1), the first of each row stores the total, a barrier,
//     everyone reads it (a barrier before the second reduction reuses the buffer).
//   * norm_infer: mean = div.full(sum, (float)N); d = x - mean (kept); var = div.full(sum of
//     squares of where(col < N, d, 0), (float)N); rstd = div.full(1, sqrt.approx.ftz(var + eps));
//     x_hat = d * rstd (RMS: x * rstd); then weight (masked, other 1) and bias (masked, other 0) are
//     loaded in the x layout in their own dtype: y = fma(x_hat, w, b), x_hat * w,
//     fma(d, rstd, b) or x_hat.
//   * one-pass: ms = div.full(sum of squares, (float)D); rstd = rsqrt.approx.ftz(ms + (float)eps);
//     then w: where the x layout holds more than one element a thread, Triton loads w in its own
//     layout (thread t owns max(1, BD / 128) elements at t * that), converts it to fp32 and moves it
//     to the x layout through shared memory (a barrier); the port does the same with a float
//     buffer; with one element a thread w is loaded in the x layout. y = (x * rstd) * w, two
//     roundings, stored round-to-nearest in x's dtype.
//
// Deliberate differences from upstream, none visible in the output of a valid call:
//   * x must already be contiguous (upstream copies a non-contiguous x with .contiguous() first;
//     no row has one); M * N and S * D below 2^31 (Triton's i32 offsets would wrap there);
//   * only the layouts instantiated below run (the rows' and their production neighbours: see
//     the tables in ni_dispatch / op_dispatch; norm_infer's kernels are also one per
//     IS_RMS_NORM / HAS_WEIGHT / HAS_BIAS variant, as Triton's); any other layout or variant,
//     weight / bias of another dtype than x or fp32, weight and bias of different dtypes, or an
//     affine pointer not 16-byte aligned where the layout reads vectors, is refused with
//     KP_NOT_SUPPORTED and a path that says why;
//   * the one-pass kernel refuses a w whose shape is not [D] (upstream reads past it) or whose
//     stride is not 1 (upstream reads it as if contiguous);
//   * norm_infer with an unaligned 16-bit row (N not a multiple of 16): Triton stores through a
//     second, one-element layout (a shared-memory transpose); the port stores from the load layout
//     with one-element stores (the only row: reg_ni_bf16_ln_b_M7_N1001, 7 x 1001).

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kpilot_abi.h"

namespace {

using bf16 = __nv_bfloat16;
using f16 = __half;

// Triton's fp32 `/` (div.full.f32), tl.sqrt (sqrt.approx.ftz.f32), tl.math.rsqrt
// (rsqrt.approx.ftz.f32) on sm_90.
__device__ __forceinline__ float div_full(float a, float b) {
    float r;
    asm("div.full.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
}
__device__ __forceinline__ float sqrt_approx_ftz(float a) {
    float r;
    asm("sqrt.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(a));
    return r;
}
__device__ __forceinline__ float rsqrt_approx_ftz(float a) {
    float r;
    asm("rsqrt.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(a));
    return r;
}

__device__ __forceinline__ float to_f(bf16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f(f16 v) { return __half2float(v); }
__device__ __forceinline__ float to_f(float v) { return v; }
template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ bf16 from_f<bf16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ f16 from_f<f16>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }

// N elements of T in one access (N * sizeof(T) <= 16, a power of two).
template <typename T, int N> struct alignas(N * sizeof(T)) Vec {
    T v[N];
};
template <typename T, int N> __device__ __forceinline__ void load_f(const T* p, float* o) {
    static_assert(N * sizeof(T) <= 16, "one access");
    const Vec<T, N> pk = *reinterpret_cast<const Vec<T, N>*>(p);
#pragma unroll
    for (int i = 0; i < N; ++i) o[i] = to_f(pk.v[i]);
}
template <typename T, int N> __device__ __forceinline__ void store_f(T* p, const float* o) {
    Vec<T, N> pk;
#pragma unroll
    for (int i = 0; i < N; ++i) pk.v[i] = from_f<T>(o[i]);
    *reinterpret_cast<Vec<T, N>*>(p) = pk;
}
template <typename T> __host__ __device__ constexpr int vmax() { return static_cast<int>(16 / sizeof(T)); }
__host__ __device__ constexpr int cmin(int a, int b) { return a < b ? a : b; }
__host__ __device__ constexpr int cmax(int a, int b) { return a > b ? a : b; }

// Butterfly over the TPW1 lanes of a row.
template <int TPW1> __device__ __forceinline__ float lanes_sum(float s) {
#pragma unroll
    for (int o = TPW1 / 2; o > 0; o >>= 1) s = s + __shfl_xor_sync(0xffffffffu, s, o);
    return s;
}
// In-thread sum of squares of d[0..E) then the lanes: d1*d1, fma(d0,d0,.), fma(d2,d2,.), ...;
// with one element, d0*d0 is shuffled and the first add contracts to fma(d0, d0, other).
template <int E, int TPW1> __device__ __forceinline__ float sumsq(const float* d) {
    if constexpr (E == 1) {
        float q = __fmul_rn(d[0], d[0]);
        if constexpr (TPW1 > 1) {
            q = fmaf(d[0], d[0], __shfl_xor_sync(0xffffffffu, q, TPW1 / 2));
#pragma unroll
            for (int o = TPW1 / 4; o > 0; o >>= 1) q = q + __shfl_xor_sync(0xffffffffu, q, o);
        }
        return q;
    } else {
        float q = __fmul_rn(d[1], d[1]);
        q = fmaf(d[0], d[0], q);
#pragma unroll
        for (int e = 2; e < E; ++e) q = fmaf(d[e], d[e], q);
        return lanes_sum<TPW1>(q);
    }
}
// Triton's inter-warp step for WPC1 warps a row and ROWS rows a slot (one slot): `slot` is this
// thread's row within the slot, `t` its thread index.
template <int ROWS, int WPC1>
__device__ __forceinline__ float warps_sum(float s, float* red, int t, int slot, int w1, bool again) {
    static_assert(ROWS * WPC1 <= 32, "partials within one warp");
    if (again) __syncthreads();  // red still read by the previous reduction
    if ((t & 31) == 0) red[slot * WPC1 + w1] = s;  // lane 0 of each warp (TPW1 == 32 here)
    __syncthreads();
    constexpr int K = ROWS * WPC1;
    float p = t < K ? red[t] : 0.f;
#pragma unroll
    for (int o = WPC1 / 2; o > 0; o >>= 1) p = p + __shfl_xor_sync(0xffffffffu, p, o);
    if (t < K && t % WPC1 == 0) red[t] = p;
    __syncthreads();
    return red[slot * WPC1];
}

// ---------------------------------------------------------------------------------------------
// norm_infer: a program is one row of BLOCK_N = NW * 32 * SPT * R1 columns (TPW1 < 32 only for
// BLOCK_N < 32, one warp, the other lanes replicas).
// ---------------------------------------------------------------------------------------------

struct NiArgs {
    const void* x;
    void* y;
    const void* w;  // nullptr when absent
    const void* b;  // nullptr when absent
    int n;
    float eps;
};

// Triton's constexprs IS_RMS_NORM, HAS_WEIGHT, HAS_BIAS as one template int (one kernel each,
// as Triton compiles them: one straight-line program, no branches between the variants).
constexpr int kRms = 4, kW = 2, kB = 1;

// y = x_hat * w + b (fma), x_hat * w, (x - mean) * rstd + b (fma) or x_hat, with x_hat = d * rstd;
// weight (other 1) and bias (other 0) read in the x layout, masked like x, in their own dtype.
template <typename XT, typename WT, int SPT, int AW, int R1, int CS, bool HW, bool HB>
__device__ __forceinline__ void ni_out(const float* d, float rstd, const WT* w, const WT* b,
                                       XT* y, int c0, int n) {
    constexpr int EPR = SPT * R1;
    constexpr int WAW = AW == 1 ? 1 : cmin(SPT, vmax<WT>());
    static_assert(SPT % WAW == 0, "affine accesses tile the thread's elements");
    // x_hat first (d dies), as Triton computes it; then, chunk by chunk, that chunk's weight and
    // bias (kept in their own dtype until used), its outputs and its stores. Triton's PTX issues
    // all affine loads before the first store and leaves the interleaving to ptxas; written whole
    // here, nvcc hoists them all and spills (12 bytes in helios, 20 at BLOCK_N 32768), chunk by
    // chunk it lands at Triton's register counts (helios 64, no spill).
    float xh[EPR];
#pragma unroll
    for (int e = 0; e < EPR; ++e) xh[e] = HB && !HW ? d[e] : __fmul_rn(d[e], rstd);
#pragma unroll
    for (int k = 0; k < R1; ++k) {
        Vec<WT, WAW> wr[SPT / WAW], br[SPT / WAW];
#pragma unroll
        for (int g = 0; g < SPT / WAW; ++g) {
            const int o = k * CS + g * WAW;  // constant: an immediate offset off w + c0
            const bool in = c0 + o < n;
            if constexpr (HW) {
                if (in) {
                    wr[g] = *reinterpret_cast<const Vec<WT, WAW>*>(w + c0 + o);
                } else {
#pragma unroll
                    for (int i = 0; i < WAW; ++i) wr[g].v[i] = from_f<WT>(1.f);
                }
            }
            if constexpr (HB) {
                if (in) {
                    br[g] = *reinterpret_cast<const Vec<WT, WAW>*>(b + c0 + o);
                } else {
#pragma unroll
                    for (int i = 0; i < WAW; ++i) br[g].v[i] = from_f<WT>(0.f);
                }
            }
        }
        float o[SPT];
#pragma unroll
        for (int i = 0; i < SPT; ++i) {
            const int e = k * SPT + i;
            const float wv = HW ? to_f(wr[i / WAW].v[i % WAW]) : 1.f;
            const float bv = HB ? to_f(br[i / WAW].v[i % WAW]) : 0.f;
            if constexpr (HW && HB) o[i] = fmaf(xh[e], wv, bv);
            else if constexpr (HW) o[i] = __fmul_rn(xh[e], wv);
            else if constexpr (HB) o[i] = fmaf(xh[e], rstd, bv);  // xh = d here: (x - mean) * rstd + b
            else o[i] = xh[e];
        }
#pragma unroll
        for (int g = 0; g < SPT / AW; ++g) {
            const int oc = k * CS + g * AW;
            if (c0 + oc < n) store_f<XT, AW>(y + c0 + oc, o + g * AW);
        }
    }
}

// MINB: the programs an SM Triton's register count for the same kernel allows (ptxas -v on its
// PTX), given to ptxas as the occupancy to keep: left alone, nvcc schedules the affine loads
// earlier and takes more registers (helios: 79 where Triton takes 64, 3 programs an SM instead of 4).
template <typename XT, typename WT, int SPT, int AW, int R1, int NW, int TPW1, int F, int MINB>
__global__ void __launch_bounds__(NW * 32, MINB) ni_kernel(NiArgs a) {
    constexpr int EPR = SPT * R1;
    constexpr int CS = NW * TPW1 * SPT;  // columns between a thread's chunks
    static_assert(SPT % AW == 0, "accesses tile the thread's elements");
    __shared__ float red[NW];
    const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
    const int l1 = lane % TPW1;
    const bool rep = lane >= TPW1;
    const int c0 = (warp * TPW1 + l1) * SPT;
    const int n = a.n;
    const int base = static_cast<int>(blockIdx.x) * n;  // Triton's i32 row * stride
    const XT* x = static_cast<const XT*>(a.x) + base;

    float v[EPR];
#pragma unroll
    for (int k = 0; k < R1; ++k)
#pragma unroll
        for (int g = 0; g < SPT / AW; ++g) {
            const int o = k * CS + g * AW;  // constant: an immediate offset off x + c0
            if (c0 + o < n) {
                load_f<XT, AW>(x + c0 + o, v + k * SPT + g * AW);
            } else {
#pragma unroll
                for (int i = 0; i < AW; ++i) v[k * SPT + g * AW + i] = 0.f;
            }
        }
    const float n_f = static_cast<float>(n);
    constexpr bool ln = !(F & kRms);
    float mean = 0.f;
    float d[EPR];
    if constexpr (ln) {
        float s = v[0];
#pragma unroll
        for (int e = 1; e < EPR; ++e) s = s + v[e];
        s = lanes_sum<TPW1>(s);
        if constexpr (NW > 1) s = warps_sum<1, NW>(s, red, t, 0, warp, false);
        mean = div_full(s, n_f);
#pragma unroll
        for (int e = 0; e < EPR; ++e) d[e] = v[e] - mean;
    } else {
#pragma unroll
        for (int e = 0; e < EPR; ++e) d[e] = v[e];
    }
    float xb[EPR];
#pragma unroll
    for (int k = 0; k < R1; ++k)
#pragma unroll
        for (int i = 0; i < SPT; ++i) {
            const int c = c0 + k * CS + (i / AW) * AW;
            xb[k * SPT + i] = c < n ? d[k * SPT + i] : 0.f;
        }
    float q = sumsq<EPR, TPW1>(xb);
    if constexpr (NW > 1) q = warps_sum<1, NW>(q, red, t, 0, warp, ln);
    const float rstd = div_full(1.0f, sqrt_approx_ftz(div_full(q, n_f) + a.eps));

    if (rep) return;
    XT* y = static_cast<XT*>(a.y) + base;
    const WT* w = static_cast<const WT*>(a.w);
    const WT* b = static_cast<const WT*>(a.b);
    ni_out<XT, WT, SPT, AW, R1, CS, (F & kW) != 0, (F & kB) != 0>(d, rstd, w, b, y, c0, n);
}

// ---------------------------------------------------------------------------------------------
// triton_one_pass_rms_norm: a program is a [BS, BD] tile over 4 warps.
// ---------------------------------------------------------------------------------------------

struct OpArgs {
    const void* x;
    void* y;
    const void* w;
    int s;  // SEQ
    int d;  // DIM
    float eps;
};

// Blocks an SM the register allocation must allow: Triton's kernels for tiles of at most 16
// elements a thread fit in 32 registers (16 programs an SM), and nvcc left alone takes 34-35 for
// the BLOCK_SIZE_SEQ 16 tile (12 an SM); so those tiles ask for 16, the larger ones for nothing.
template <int BS, int BD> constexpr int op_min_blocks() { return BS * BD / 128 <= 16 ? 16 : 1; }

template <typename XT, typename WT, int BS, int BD, int SPT, int AW>
__global__ void __launch_bounds__(128, op_min_blocks<BS, BD>()) op_kernel(OpArgs a) {
    constexpr int NW = 4;
    constexpr int TPW1 = cmin(32, BD / SPT), TPW0 = 32 / TPW1;
    constexpr int WPC1 = cmax(1, cmin(NW, BD / (SPT * TPW1))), WPC0 = NW / WPC1;
    constexpr int R1 = cmax(1, BD / (SPT * TPW1 * WPC1));
    constexpr int ROWS = TPW0 * WPC0;  // rows a slot covers (more than BS: replicas)
    constexpr int R0 = cmax(1, BS / ROWS);
    constexpr int EPR = SPT * R1;
    constexpr int CS = WPC1 * TPW1 * SPT;
    constexpr int WSPT = cmax(1, BD / 128);  // Triton's own layout for w: thread t owns WSPT at t * WSPT
    static_assert(WPC1 == 1 || (R0 == 1 && TPW1 == 32), "warps across a row: one row slot, a warp a row");
    __shared__ float red[WPC1 > 1 ? ROWS * WPC1 : 1];
    __shared__ __align__(16) float ws[SPT > 1 ? BD : 1];

    const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
    const int l1 = lane % TPW1, l0 = lane / TPW1;
    const int w1 = warp % WPC1, w0 = warp / WPC1;
    const int c0 = (w1 * TPW1 + l1) * SPT;
    const int dd = a.d;
    const XT* x = static_cast<const XT*>(a.x);

    int off[R0];
    bool live[R0];
    bool rep = false;
#pragma unroll
    for (int j = 0; j < R0; ++j) {
        const int r = (j * WPC0 + w0) * TPW0 + l0;
        if (r >= BS) rep = true;  // a replica (R0 == 1)
        const int seq = static_cast<int>(blockIdx.x) * BS + (r & (BS - 1));
        live[j] = seq < a.s;
        off[j] = seq * dd;  // Triton's i32 seq_offset * DIM
    }
    float v[R0][EPR];
#pragma unroll
    for (int j = 0; j < R0; ++j)
#pragma unroll
        for (int k = 0; k < R1; ++k)
#pragma unroll
            for (int g = 0; g < SPT / AW; ++g) {
                const int c = c0 + k * CS + g * AW;
                if (live[j] && c < dd) {
                    load_f<XT, AW>(x + off[j] + c, v[j] + k * SPT + g * AW);
                } else {
#pragma unroll
                    for (int i = 0; i < AW; ++i) v[j][k * SPT + g * AW + i] = 0.f;
                }
            }
    float rstd[R0];
#pragma unroll
    for (int j = 0; j < R0; ++j) {
        float q = sumsq<EPR, TPW1>(v[j]);
        if constexpr (WPC1 > 1) q = warps_sum<ROWS, WPC1>(q, red, t, w0 * TPW0 + l0, w1, false);
        rstd[j] = rsqrt_approx_ftz(div_full(q, static_cast<float>(dd)) + a.eps);
    }
    const WT* w = static_cast<const WT*>(a.w);
    float wv[EPR];
    if constexpr (SPT > 1) {
        // w in Triton's own layout, to fp32, to the x layout through shared memory.
        const int cw = (t * WSPT) % BD;
        float tmp[WSPT];
        if (cw < dd) {
            load_f<WT, WSPT>(w + cw, tmp);
        } else {
#pragma unroll
            for (int i = 0; i < WSPT; ++i) tmp[i] = 0.f;
        }
        if (t * WSPT < BD) {
#pragma unroll
            for (int i = 0; i < WSPT; ++i) ws[cw + i] = tmp[i];
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < R1; ++k) {
            const int c = c0 + k * CS;
            if constexpr (SPT % 4 == 0) {
#pragma unroll
                for (int i = 0; i < SPT; i += 4) {
                    const float4 f = *reinterpret_cast<const float4*>(ws + c + i);
                    wv[k * SPT + i] = f.x;
                    wv[k * SPT + i + 1] = f.y;
                    wv[k * SPT + i + 2] = f.z;
                    wv[k * SPT + i + 3] = f.w;
                }
            } else {
#pragma unroll
                for (int i = 0; i < SPT; ++i) wv[k * SPT + i] = ws[c + i];
            }
        }
    } else {
#pragma unroll
        for (int k = 0; k < R1; ++k) {
            const int c = c0 + k * CS;
            wv[k] = c < dd ? to_f(w[c]) : 0.f;
        }
    }
    if (rep) return;
    XT* y = static_cast<XT*>(a.y);
#pragma unroll
    for (int j = 0; j < R0; ++j) {
        float o[EPR];
#pragma unroll
        for (int e = 0; e < EPR; ++e) o[e] = __fmul_rn(__fmul_rn(v[j][e], rstd[j]), wv[e]);
#pragma unroll
        for (int k = 0; k < R1; ++k)
#pragma unroll
            for (int g = 0; g < SPT / AW; ++g) {
                const int c = c0 + k * CS + g * AW;
                if (live[j] && c < dd) store_f<XT, AW>(y + off[j] + c, o + k * SPT + g * AW);
            }
    }
}

// ---------------------------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------------------------

int64_t next_pow2(int64_t v) {
    int64_t p = 1;
    while (p < v) p <<= 1;
    return p;
}
bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }
bool is_float_dt(int dt) { return dt == KP_BF16 || dt == KP_F16 || dt == KP_F32; }
int dt_size(int dt) { return dt == KP_F32 ? 4 : 2; }
void set_path(kp_call* call, const char* s) { snprintf(call->path, KP_PATH_LEN, "%s", s); }
bool ranks_valid(const kp_call* call) {
    for (uint32_t i = 0; i < call->n_tensors; ++i)
        if (call->tensors[i].rank < 0 || call->tensors[i].rank > KP_MAX_RANK) return false;
    return true;
}
int64_t numel(const kp_tensor& t) {
    int64_t n = 1;
    for (int d = 0; d < t.rank; ++d) n *= t.shape[d];
    return n;
}
// Row-major contiguous, size-1 dims ignored.
bool contiguous(const kp_tensor& t) {
    int64_t want = 1;
    for (int d = t.rank - 1; d >= 0; --d) {
        if (t.shape[d] == 1) continue;
        if (t.stride[d] != want) return false;
        want *= t.shape[d];
    }
    return true;
}
bool same_shape(const kp_tensor& a, const kp_tensor& b) {
    if (a.rank != b.rank) return false;
    for (int d = 0; d < a.rank; ++d)
        if (a.shape[d] != b.shape[d]) return false;
    return true;
}
int32_t launched() { return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR; }

// One norm_infer kernel: x dtype, affine dtype (x's or fp32), SPT, AW, R1, num_warps, TPW1, and
// the variant (kRms | kW | kB).
struct NiKey {
    int xdt, wdt, spt, aw, r1, nw, tpw1, f;
    bool operator==(const NiKey& o) const {
        return xdt == o.xdt && wdt == o.wdt && spt == o.spt && aw == o.aw && r1 == o.r1 && nw == o.nw &&
               tpw1 == o.tpw1 && f == o.f;
    }
};
template <typename T> constexpr int dt_of();
template <> constexpr int dt_of<float>() { return KP_F32; }
template <> constexpr int dt_of<bf16>() { return KP_BF16; }
template <> constexpr int dt_of<f16>() { return KP_F16; }

template <typename XT, typename WT, int SPT, int AW, int R1, int NW, int TPW1, int F, int MINB>
bool ni_try(const NiKey& k, const NiArgs& a, unsigned grid, cudaStream_t st, int32_t* rc) {
    if (!(k == NiKey{dt_of<XT>(), dt_of<WT>(), SPT, AW, R1, NW, TPW1, F})) return false;
    ni_kernel<XT, WT, SPT, AW, R1, NW, TPW1, F, MINB><<<grid, NW * 32, 0, st>>>(a);
    *rc = launched();
    return true;
}

// The instantiated norm_infer kernels: exactly Triton's for the rows (BLOCK_N = NW * 32 * SPT * R1,
// MINB = the programs an SM Triton's register count allows, except the N 1001 kernel: its row has
// 7 programs, and 16 an SM would cap it at 32 registers with a 4-byte spill), 12 kernels:
//   fp32, float4: LN w b at BLOCK_N 8192 (helios, 4 an SM) and 16384; RMS at 4096;
//   fp32 unaligned N (one element a thread): LN at BLOCK_N 1024 and 8;
//   bf16, 8-element vectors: LN w b at 4096, LN w at 32768, RMS w at 8192, LN with fp32 w b at
//   2048; bf16 unaligned N: LN b at 1024 (SPT 8, one-element accesses);
//   fp16: LN w at 2048 (vectors), RMS w b at 32 (unaligned).
constexpr int kLnWB = kW | kB;
bool ni_dispatch(const NiKey& k, const NiArgs& a, unsigned grid, cudaStream_t st, int32_t* rc) {
    return ni_try<float, float, 4, 4, 8, 8, 32, kLnWB, 4>(k, a, grid, st, rc) ||
           ni_try<float, float, 4, 4, 16, 8, 32, kLnWB, 1>(k, a, grid, st, rc) ||
           ni_try<float, float, 4, 4, 4, 8, 32, kRms, 8>(k, a, grid, st, rc) ||
           ni_try<float, float, 1, 1, 8, 4, 32, 0, 16>(k, a, grid, st, rc) ||
           ni_try<float, float, 1, 1, 1, 1, 8, 0, 1>(k, a, grid, st, rc) ||
           ni_try<bf16, bf16, 8, 8, 2, 8, 32, kLnWB, 6>(k, a, grid, st, rc) ||
           ni_try<bf16, bf16, 8, 8, 16, 8, 32, kW, 1>(k, a, grid, st, rc) ||
           ni_try<bf16, bf16, 8, 8, 4, 8, 32, kRms | kW, 4>(k, a, grid, st, rc) ||
           ni_try<bf16, float, 8, 8, 1, 8, 32, kLnWB, 8>(k, a, grid, st, rc) ||
           ni_try<bf16, bf16, 8, 1, 1, 4, 32, kB, 1>(k, a, grid, st, rc) ||
           ni_try<f16, f16, 8, 8, 1, 8, 32, kW, 8>(k, a, grid, st, rc) ||
           ni_try<f16, f16, 1, 1, 1, 1, 32, kRms | kLnWB, 1>(k, a, grid, st, rc);
}

// One one-pass layout: x dtype, w dtype, BLOCK_SIZE_SEQ, BLOCK_SIZE_DIM, SPT, AW.
struct OpKey {
    int xdt, wdt, bs, bd, spt, aw;
    bool operator==(const OpKey& o) const {
        return xdt == o.xdt && wdt == o.wdt && bs == o.bs && bd == o.bd && spt == o.spt && aw == o.aw;
    }
};
template <typename XT, typename WT, int BS, int BD, int SPT, int AW>
bool op_try(const OpKey& k, const OpArgs& a, unsigned grid, cudaStream_t st, int32_t* rc) {
    if (!(k == OpKey{dt_of<XT>(), dt_of<WT>(), BS, BD, SPT, AW})) return false;
    op_kernel<XT, WT, BS, BD, SPT, AW><<<grid, 128, 0, st>>>(a);
    *rc = launched();
    return true;
}
// The instantiated one-pass layouts: bf16 D 128 at every BLOCK_SIZE_SEQ (16, 8, 4, 2, 1; D 96
// and 127 share them), bf16 D 64 at 2 and D 256 at 16, bf16 x with fp32 w at 8, fp16 D 128 at 16
// and 8, fp16 D 100 at 8, fp32 D 128 at 4 and D 8 at 1. 13 kernels.
bool op_dispatch(const OpKey& k, const OpArgs& a, unsigned grid, cudaStream_t st, int32_t* rc) {
    return op_try<bf16, bf16, 16, 128, 8, 8>(k, a, grid, st, rc) ||
           op_try<bf16, bf16, 8, 128, 8, 8>(k, a, grid, st, rc) ||
           op_try<bf16, bf16, 4, 128, 4, 4>(k, a, grid, st, rc) ||
           op_try<bf16, bf16, 2, 128, 2, 2>(k, a, grid, st, rc) ||
           op_try<bf16, bf16, 1, 128, 1, 1>(k, a, grid, st, rc) ||
           op_try<bf16, bf16, 2, 64, 1, 1>(k, a, grid, st, rc) ||
           op_try<bf16, bf16, 16, 256, 8, 8>(k, a, grid, st, rc) ||
           op_try<bf16, float, 8, 128, 8, 8>(k, a, grid, st, rc) ||
           op_try<f16, f16, 16, 128, 8, 8>(k, a, grid, st, rc) ||
           op_try<f16, f16, 8, 128, 8, 8>(k, a, grid, st, rc) ||
           op_try<f16, f16, 8, 128, 4, 4>(k, a, grid, st, rc) ||
           op_try<float, float, 4, 128, 4, 4>(k, a, grid, st, rc) ||
           op_try<float, float, 1, 8, 1, 1>(k, a, grid, st, rc);
}

// An affine operand: absent, or [n] of x's dtype or fp32 (any stride accepted here; the callers
// check what upstream asserts).
bool affine_ok(const kp_tensor& t, int64_t n) {
    if (t.dtype == KP_ABSENT) return true;
    return is_float_dt(t.dtype) && t.rank == 1 && t.shape[0] == n && (t.data != nullptr || n == 0);
}

// The baseline's entry points, unchanged apart from their names: v2 runs them for every call its
// own kernel does not take.

// Tensors: x [M, N], weight [N]?, bias [N]?, out [M, N]. Scalars: eps, is_rms_norm.
int32_t base_norm_infer(kp_call* call, void* stream) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != 4 || call->n_scalars != 2 ||
        !ranks_valid(call))
        return KP_INVALID;
    const kp_tensor& x = call->tensors[0];
    const kp_tensor& w = call->tensors[1];
    const kp_tensor& b = call->tensors[2];
    const kp_tensor& out = call->tensors[3];
    if (!is_float_dt(x.dtype) || x.rank != 2) { set_path(call, "unsupported:x_not_2d"); return KP_NOT_SUPPORTED; }
    const int64_t M = x.shape[0], N = x.shape[1];
    // weight / bias: upstream asserts shape (N,) and stride(-1) == 1.
    if ((w.dtype != KP_ABSENT && (w.rank != 1 || w.shape[0] != N || (N > 1 && w.stride[0] != 1))) ||
        (b.dtype != KP_ABSENT && (b.rank != 1 || b.shape[0] != N || (N > 1 && b.stride[0] != 1)))) {
        set_path(call, "unsupported:affine_shape_or_stride");
        return KP_NOT_SUPPORTED;
    }
    const int64_t max_fused = 65536 / dt_size(x.dtype);
    const int64_t np2 = next_pow2(N);
    const int64_t block_n = np2 < max_fused ? np2 : max_fused;
    if (N > block_n) { set_path(call, "unsupported:feature_dim_over_64KB"); return KP_NOT_SUPPORTED; }
    if (!contiguous(x) || out.dtype != x.dtype || !same_shape(out, x) || !contiguous(out) || M * N >= (1LL << 31) ||
        (M * N > 0 && (x.data == nullptr || out.data == nullptr))) {
        set_path(call, "unsupported:x_or_out_layout");
        return KP_NOT_SUPPORTED;
    }
    if (!affine_ok(w, N) || !affine_ok(b, N)) { set_path(call, "unsupported:affine"); return KP_NOT_SUPPORTED; }
    const int wdt = w.dtype != KP_ABSENT ? w.dtype : (b.dtype != KP_ABSENT ? b.dtype : x.dtype);
    if ((w.dtype != KP_ABSENT && w.dtype != wdt) || (b.dtype != KP_ABSENT && b.dtype != wdt) ||
        (wdt != x.dtype && wdt != KP_F32)) {
        set_path(call, "unsupported:affine_dtype");
        return KP_NOT_SUPPORTED;
    }
    const bool rms = call->scalars[1] != 0.0;
    if (N == 0 || M == 0) { set_path(call, rms ? "triton_norm_infer_rms_empty" : "triton_norm_infer_ln_empty"); return KP_OK; }
    int64_t nw = block_n / 256;
    if (nw < 1) nw = 1;
    if (nw > 8) nw = 8;
    const int64_t v = 16 / dt_size(x.dtype);
    const int64_t ept = block_n / (32 * nw) > 1 ? block_n / (32 * nw) : 1;
    // N, the row strides and the pointers: Triton knows whether they divide by 16. N % 16 == 0
    // and aligned pointers give vectors of min(16 bytes, ept); else fp32 holds one element a
    // thread and 16-bit types min(8, ept) elements accessed one at a time (the ttgir of each).
    const bool xvec = N % 16 == 0 && aligned16(x.data) && aligned16(out.data);
    const int64_t spt = (xvec || x.dtype != KP_F32) ? (v < ept ? v : ept) : 1;
    const int64_t aw = xvec ? spt : 1;
    const int64_t tpw1 = block_n / spt < 32 ? block_n / spt : 32;
    const int64_t r1 = block_n / (spt * tpw1 * nw) > 1 ? block_n / (spt * tpw1 * nw) : 1;
    if (aw > 1 && ((w.dtype != KP_ABSENT && !aligned16(w.data)) || (b.dtype != KP_ABSENT && !aligned16(b.data)))) {
        set_path(call, "unsupported:affine_not_16B_aligned");
        return KP_NOT_SUPPORTED;
    }
    const NiKey k{x.dtype, wdt, static_cast<int>(spt), static_cast<int>(aw), static_cast<int>(r1), static_cast<int>(nw),
                  static_cast<int>(tpw1),
                  (rms ? kRms : 0) | (w.dtype != KP_ABSENT ? kW : 0) | (b.dtype != KP_ABSENT ? kB : 0)};
    NiArgs a{x.data, out.data, w.data, b.data, static_cast<int>(N), static_cast<float>(call->scalars[0])};
    if (w.dtype == KP_ABSENT) a.w = nullptr;
    if (b.dtype == KP_ABSENT) a.b = nullptr;
    snprintf(call->path, KP_PATH_LEN, "triton_norm_infer_%s_bn%lld_w%lld_v%lld", rms ? "rms" : "ln",
             static_cast<long long>(block_n), static_cast<long long>(nw), static_cast<long long>(aw));
    int32_t rc = KP_NOT_SUPPORTED;
    if (!ni_dispatch(k, a, static_cast<unsigned>(M), static_cast<cudaStream_t>(stream), &rc)) {
        set_path(call, "unsupported:layout_not_instantiated");
        return KP_NOT_SUPPORTED;
    }
    return rc;
}

// Tensors: x (any rank, last dim D), w [D], out (x's shape). Scalars: eps.
int32_t base_triton_one_pass_rms_norm(kp_call* call, void* stream) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != 3 || call->n_scalars != 1 ||
        !ranks_valid(call))
        return KP_INVALID;
    const kp_tensor& x = call->tensors[0];
    const kp_tensor& w = call->tensors[1];
    const kp_tensor& out = call->tensors[2];
    if (!is_float_dt(x.dtype) || x.rank < 1) { set_path(call, "unsupported:x"); return KP_NOT_SUPPORTED; }
    const int64_t D = x.shape[x.rank - 1];
    const int64_t S = D == 0 ? 0 : numel(x) / D;
    const int64_t bd = next_pow2(D);
    if (!contiguous(x) || out.dtype != x.dtype || !same_shape(out, x) || !contiguous(out) || S * D >= (1LL << 31) ||
        (S * D > 0 && (x.data == nullptr || out.data == nullptr))) {
        set_path(call, "unsupported:x_or_out_layout");
        return KP_NOT_SUPPORTED;
    }
    int64_t bs = next_pow2(S / 512 > 1 ? S / 512 : 1);
    if (bs > 16) bs = 16;
    // Triton refuses a tensor of more than 2^20 elements (tl.arange / block shape).
    if (bd > (1LL << 20) || bs * bd > (1LL << 20)) { set_path(call, "unsupported:triton_max_numel"); return KP_NOT_SUPPORTED; }
    if (w.dtype == KP_ABSENT || !affine_ok(w, D) || (D > 1 && w.stride[0] != 1) ||
        (w.dtype != x.dtype && w.dtype != KP_F32)) {
        set_path(call, "unsupported:w");
        return KP_NOT_SUPPORTED;
    }
    if (S == 0 || D == 0) { set_path(call, "triton_one_pass_rms_empty"); return KP_OK; }
    // DIM is constexpr: the vector is its largest power-of-two divisor up to 16 bytes, capped by
    // the elements a thread holds.
    int64_t v = 16 / dt_size(x.dtype);
    while (v > 1 && D % v != 0) v >>= 1;
    if (!(aligned16(x.data) && aligned16(out.data) && aligned16(w.data))) v = 1;
    const int64_t ept = bs * bd / 128 > 1 ? bs * bd / 128 : 1;
    const int64_t spt = v < ept ? v : ept;
    const OpKey k{x.dtype, w.dtype, static_cast<int>(bs), static_cast<int>(bd), static_cast<int>(spt), static_cast<int>(spt)};
    const OpArgs a{x.data, out.data, w.data, static_cast<int>(S), static_cast<int>(D), static_cast<float>(call->scalars[0])};
    snprintf(call->path, KP_PATH_LEN, "triton_one_pass_rms_bs%lld_bd%lld_v%lld", static_cast<long long>(bs),
             static_cast<long long>(bd), static_cast<long long>(spt));
    const int64_t programs = (S + bs - 1) / bs;
    int32_t rc = KP_NOT_SUPPORTED;
    if (!op_dispatch(k, a, static_cast<unsigned>(programs), static_cast<cudaStream_t>(stream), &rc)) {
        set_path(call, "unsupported:layout_not_instantiated");
        return KP_NOT_SUPPORTED;
    }
    return rc;
}

// ---------------------------------------------------------------------------------------------
// v2: fp32 norm_infer, LayerNorm with fp32 weight and bias, N = NT * K * 4 exactly (helios
// [8640, 5120]: 256 threads x 5 float4 a row, 2 rows a block). The rows in registers, no masked
// slot; each weight / bias float4 read once a block and applied to its R rows.
// ---------------------------------------------------------------------------------------------

// Thread t owns the float4s t + k * NT (k < K) of each of the block's R rows (rows
// blockIdx.x * R + r): every load and store instruction of a warp covers 512 contiguous bytes,
// as Triton's do. The arithmetic and its rounding points are the baseline's (Triton's PTX), row
// by row: in-thread sums in register order, a lane butterfly, the warp partials through shared
// memory; mean = div.full(sum, N); d = x - mean (kept); var = div.full(d1*d1 then fma(d0, d0, .),
// fma(d2, d2, .), ..., N); rstd = div.full(1, sqrt.approx.ftz(var + eps)); y = fma(d * rstd
// (rounded), w, b). Only the summation order across threads differs (another layout, as any
// other block size would give): every thread adds the NT / 32 warp partials in warp order.
template <int NT, int K, int R, int MINB>
__global__ void __launch_bounds__(NT, MINB) v2_ln_f32(const float* x, float* y, const float* w, const float* b,
                                                      int n, float eps) {
    constexpr int NW = NT / 32;
    static_assert(NT % 32 == 0, "whole warps");
    __shared__ float red[2][R][NW];  // one buffer a reduction: no barrier between them
    const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
    const int row0 = static_cast<int>(blockIdx.x) * R;  // M % R == 0 (checked on the host)

    float v[R][4 * K];
#pragma unroll
    for (int r = 0; r < R; ++r) {
        // M * N < 2^31 (checked on the host): 32-bit offsets, as Triton's row * stride
        const float4* xr = reinterpret_cast<const float4*>(x + (row0 + r) * n) + t;
#pragma unroll
        for (int k = 0; k < K; ++k) {
            const float4 f = __ldcs(xr + k * NT);  // ld.global.cs: read once, evict first
            v[r][4 * k] = f.x;
            v[r][4 * k + 1] = f.y;
            v[r][4 * k + 2] = f.z;
            v[r][4 * k + 3] = f.w;
        }
    }
    const float n_f = static_cast<float>(n);

    float mean[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
        float s = v[r][0];
#pragma unroll
        for (int e = 1; e < 4 * K; ++e) s = s + v[r][e];
        s = lanes_sum<32>(s);
        if (lane == 0) red[0][r][warp] = s;
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < R; ++r) {
        float s = red[0][r][0];
#pragma unroll
        for (int i = 1; i < NW; ++i) s = s + red[0][r][i];
        mean[r] = div_full(s, n_f);
#pragma unroll
        for (int e = 0; e < 4 * K; ++e) v[r][e] = v[r][e] - mean[r];  // d, in place
        const float q = sumsq<4 * K, 32>(v[r]);
        if (lane == 0) red[1][r][warp] = q;
    }
    __syncthreads();
    float rstd[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
        float q = red[1][r][0];
#pragma unroll
        for (int i = 1; i < NW; ++i) q = q + red[1][r][i];
        rstd[r] = div_full(1.0f, sqrt_approx_ftz(div_full(q, n_f) + eps));
    }

    const float4* wr = reinterpret_cast<const float4*>(w) + t;
    const float4* br = reinterpret_cast<const float4*>(b) + t;
#pragma unroll
    for (int k = 0; k < K; ++k) {
        const float4 wv = __ldg(wr + k * NT);  // ld.global.nc, once for the block's R rows
        const float4 bv = __ldg(br + k * NT);
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const float* d = v[r] + 4 * k;
            float4 o;
            o.x = fmaf(__fmul_rn(d[0], rstd[r]), wv.x, bv.x);
            o.y = fmaf(__fmul_rn(d[1], rstd[r]), wv.y, bv.y);
            o.z = fmaf(__fmul_rn(d[2], rstd[r]), wv.z, bv.z);
            o.w = fmaf(__fmul_rn(d[3], rstd[r]), wv.w, bv.w);
            reinterpret_cast<float4*>(y + (row0 + r) * n)[t + k * NT] = o;
        }
    }
}

template <int NT, int K, int R, int MINB>
int32_t v2_launch(const kp_tensor& x, const kp_tensor& w, const kp_tensor& b, const kp_tensor& out, float eps,
                  cudaStream_t st) {
    const int64_t m = x.shape[0];
    v2_ln_f32<NT, K, R, MINB><<<static_cast<unsigned>(m / R), NT, 0, st>>>(
        static_cast<const float*>(x.data), static_cast<float*>(out.data), static_cast<const float*>(w.data),
        static_cast<const float*>(b.data), static_cast<int>(x.shape[1]), eps);
    return launched();
}

bool v2_f32_vec(const kp_tensor& t, int64_t n) {
    return t.dtype == KP_F32 && t.rank == 1 && t.shape[0] == n && t.stride[0] == 1 && aligned16(t.data);
}

}  // namespace

extern "C" {

// Tensors: x [M, N], weight [N]?, bias [N]?, out [M, N]. Scalars: eps, is_rms_norm.
int32_t kp_norm_infer(kp_call* call, void* stream) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != 4 || call->n_scalars != 2 ||
        !ranks_valid(call))
        return KP_INVALID;
    const kp_tensor& x = call->tensors[0];
    const kp_tensor& w = call->tensors[1];
    const kp_tensor& b = call->tensors[2];
    const kp_tensor& out = call->tensors[3];
    // v2's path: fp32 LayerNorm (is_rms_norm false) with fp32 weight and bias, x and out
    // contiguous and 16-byte aligned, M * N < 2^31, N one of the instantiated widths. Every other
    // call (and every rejection) goes to the baseline's entry point.
    if (x.dtype == KP_F32 && x.rank == 2 && call->scalars[1] == 0.0 && out.dtype == KP_F32 && same_shape(out, x) &&
        x.shape[0] > 0 && x.shape[1] > 0 && x.shape[0] * x.shape[1] < (1LL << 31) && contiguous(x) &&
        contiguous(out) && aligned16(x.data) && aligned16(out.data) && v2_f32_vec(w, x.shape[1]) &&
        v2_f32_vec(b, x.shape[1])) {
        const float eps = static_cast<float>(call->scalars[0]);
        const cudaStream_t st = static_cast<cudaStream_t>(stream);
        if (x.shape[1] == 5120 && x.shape[0] % 2 == 0) {
            set_path(call, "v2_ln_f32_n5120_t256_k5_r2");
            return v2_launch<256, 5, 2, 4>(x, w, b, out, eps, st);
        }
    }
    return base_norm_infer(call, stream);
}

// Every call: the baseline's kernels and launch (upstream's Triton layouts), see the header.
int32_t kp_triton_one_pass_rms_norm(kp_call* call, void* stream) {
    return base_triton_one_pass_rms_norm(call, stream);
}

}  // extern "C"
