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
// How the port maps Triton: one program = one CUDA block of num_warps * 32 threads over the same
// tile, each thread owning the elements Triton's blocked layout gives it (coalesce pass:
// sizePerThread along the row = min(16 bytes of x when N (resp. D) is divisible by 16 elements
// and x / out are 16-byte aligned, else 1 element, max(elements / threads, 1)); lanes then warps
// along the row, the rest along the rows of the one-pass tile; a tile larger than the CTA repeats,
// a smaller one replicates (replicas here compute and do not store)). Every load of the tile
// is issued before its arithmetic. Rounding as Triton compiles it for sm_90 (fp32 `/` is
// div.full.f32; tl.sqrt is sqrt.approx.ftz.f32 and tl.math.rsqrt rsqrt.approx.ftz.f32 with
// Triton's default ftz; mul + add contract to fma):
//   * sums: each thread adds its elements in register order (chunk by chunk, element by element),
//     the sum of squares as d1*d1, then fma(d0, d0, .), fma(d2, d2, .), ...; then a butterfly over
//     the lanes of the row (xor tpw/2 .. 1), then the warp partials of the row through shared
//     memory combined as a butterfly ((p0 + p2) + (p1 + p3) for 4 warps).
//   * norm_infer: mean = div.full(sum, (float)N); var = div.full(sumsq, (float)N);
//     rstd = div.full(1, sqrt.approx.ftz(var + eps)); y = fma(x_hat, w, b) / x_hat * w /
//     fma(x - mean, rstd, b) / x_hat, with x_hat = (x - mean) * rstd (RMS: x * rstd).
//   * one-pass: ms = div.full(sumsq, (float)D); rstd = rsqrt.approx.ftz(ms + (float)eps);
//     y = (x * rstd) * w, two roundings; stored round-to-nearest in x's dtype.
//
// Deliberate differences from upstream, none visible in the output of a valid call:
//   * x must already be contiguous (upstream copies a non-contiguous x with .contiguous() first;
//     no row has one); weight / bias / w may have any stride (read through it);
//   * the one-pass kernel refuses tiles of more than 16384 elements (BLOCK_SIZE_SEQ *
//     next_pow2(D) > 16384, i.e. more than 128 elements a thread; upstream compiles them, up to
//     Triton's 2^20-element limit) and a w whose shape is not [D] (upstream reads past it);
//   * M, S and N below 2^31.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <type_traits>

#include "kpilot_abi.h"

namespace {

using bf16 = __nv_bfloat16;
using f16 = __half;

enum Mode : int { kLayerNorm = 0, kRmsInfer = 1, kOnePass = 2 };

struct Params {
    const void* x;
    void* y;
    const void* w;      // nullptr when absent
    const void* b;      // nullptr when absent
    int w_dt, b_dt;     // KP_* dtypes
    int64_t w_s, b_s;   // element strides of w and b
    bool w_vec, b_vec;  // w / b of x's dtype, stride 1, 16-byte aligned: vector loads
    int64_t rows;       // M or S
    int n;              // N or D (row length)
    int bs;             // rows a program (1 for norm_infer)
    int tpw1;           // lanes along the row
    int wpc1;           // warps along the row
    int tpw0, wpc0;     // lanes / warps across rows
    int r0;             // row slots a thread (R0), in groups of R0C
    int r1;             // chunks of SPT elements a thread per row slot
    float eps;
    int mode;
};

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

// N elements of T at p (aligned to N * sizeof(T) when N > 1), in as few accesses as possible.
template <typename T, int N> struct alignas(N * sizeof(T) >= 16 ? 16 : N * sizeof(T)) Pack {
    T v[N];
    __device__ __forceinline__ void load(const T* p) {
        constexpr int B = N * sizeof(T);
        if constexpr (B >= 16) {
#pragma unroll
            for (int k = 0; k < B / 16; ++k) reinterpret_cast<uint4*>(v)[k] = reinterpret_cast<const uint4*>(p)[k];
        } else if constexpr (B == 8) {
            *reinterpret_cast<uint2*>(v) = *reinterpret_cast<const uint2*>(p);
        } else if constexpr (B == 4) {
            *reinterpret_cast<uint32_t*>(v) = *reinterpret_cast<const uint32_t*>(p);
        } else {
#pragma unroll
            for (int k = 0; k < N; ++k) v[k] = p[k];
        }
    }
    __device__ __forceinline__ void store(T* p) const {
        constexpr int B = N * sizeof(T);
        if constexpr (B >= 16) {
#pragma unroll
            for (int k = 0; k < B / 16; ++k) reinterpret_cast<uint4*>(p)[k] = reinterpret_cast<const uint4*>(v)[k];
        } else if constexpr (B == 8) {
            *reinterpret_cast<uint2*>(p) = *reinterpret_cast<const uint2*>(v);
        } else if constexpr (B == 4) {
            *reinterpret_cast<uint32_t*>(p) = *reinterpret_cast<const uint32_t*>(v);
        } else {
#pragma unroll
            for (int k = 0; k < N; ++k) p[k] = v[k];
        }
    }
};

__device__ __forceinline__ float load_any(const void* p, int dt, int64_t i) {
    if (dt == KP_F32) return static_cast<const float*>(p)[i];
    if (dt == KP_BF16) return __bfloat162float(static_cast<const bf16*>(p)[i]);
    return __half2float(static_cast<const f16*>(p)[i]);
}

// SPT elements of an affine tensor at column c: vectors of x's dtype when allowed, else one by one.
template <typename XT, int SPT>
__device__ __forceinline__ void load_affine(const void* p, int dt, int64_t s, bool vec, int c, float (&o)[SPT]) {
    if (SPT > 1 && vec) {
        Pack<XT, SPT> pk;
        pk.load(static_cast<const XT*>(p) + c);
#pragma unroll
        for (int i = 0; i < SPT; ++i) o[i] = to_f(pk.v[i]);
    } else {
#pragma unroll
        for (int i = 0; i < SPT; ++i) o[i] = load_any(p, dt, static_cast<int64_t>(c + i) * s);
    }
}

// Butterfly over the warp partials of one row, as Triton's inter-warp reduce leaves it in lane 0.
__device__ __forceinline__ float warp_tree(const float* p, int n) {
    float q[8];
#pragma unroll
    for (int w = 0; w < 8; ++w) q[w] = w < n ? p[w] : 0.f;
#pragma unroll
    for (int s = 4; s >= 1; s >>= 1) {
        if (s < n) {
#pragma unroll
            for (int w = 0; w < s; ++w) q[w] = q[w] + q[w + s];
        }
    }
    return q[0];
}

constexpr int kMaxThreads = 256;

// One Triton program. XT: x / y dtype; SPT: elements a thread per access; EPR: the most elements
// a thread holds per row slot (P.r1 chunks of SPT, r1 * SPT <= EPR; loops run to EPR with
// compile-time indices, guarded by r1, so the row stays in registers); R0C: row slots per group
// (compile time), the thread holding P.r0 slots in P.r0 / R0C groups. Columns of chunk k, element i:
// ((k * wpc1 + w1) * tpw1 + l1) * SPT + i; rows of slot j: (j * wpc0 + w0) * tpw0 + l0.
template <typename XT, int SPT, int EPR, int R0C>
__global__ void __launch_bounds__(kMaxThreads) norm_kernel(Params P) {
    constexpr int R1 = EPR / SPT;
    const int r1 = P.r1;
    const int epr = r1 * SPT;
    __shared__ float red_s[R0C][kMaxThreads / 32 * 32];
    __shared__ float red_q[R0C][kMaxThreads / 32 * 32];

    const int t = threadIdx.x;
    const int lane = t & 31, warp = t >> 5;
    const int l1 = lane % P.tpw1, l0 = lane / P.tpw1;
    const int w1 = warp % P.wpc1, w0 = warp / P.wpc1;
    const int n = P.n;
    const float n_f = static_cast<float>(n);
    const XT* __restrict__ x = static_cast<const XT*>(P.x);
    XT* __restrict__ y = static_cast<XT*>(P.y);

    for (int g = 0; g < P.r0; g += R0C) {
        int64_t seq[R0C];
        bool live[R0C];
#pragma unroll
        for (int j = 0; j < R0C; ++j) {
            const int r = ((g + j) * P.wpc0 + w0) * P.tpw0 + l0;
            seq[j] = static_cast<int64_t>(blockIdx.x) * P.bs + r;
            live[j] = r < P.bs && seq[j] < P.rows;
        }
        // The tile's loads (other = 0 past the row and past the rows).
        float v[R0C][EPR];
#pragma unroll
        for (int j = 0; j < R0C; ++j) {
#pragma unroll
            for (int k = 0; k < R1; ++k) {
                const int c = ((k * P.wpc1 + w1) * P.tpw1 + l1) * SPT;
                const bool in = k < r1 && live[j] && c < n;
                if (SPT > 1) {
                    Pack<XT, SPT> pk;
                    if (in) pk.load(x + seq[j] * n + c);
#pragma unroll
                    for (int i = 0; i < SPT; ++i) v[j][k * SPT + i] = in ? to_f(pk.v[i]) : 0.f;
                } else {
                    v[j][k] = in ? to_f(x[seq[j] * n + c]) : 0.f;
                }
            }
        }
        const bool ln = P.mode == kLayerNorm;
        // mean (LayerNorm only): in-thread, lanes, warps.
        float mean[R0C];
        if (ln) {
#pragma unroll
            for (int j = 0; j < R0C; ++j) {
                float s = v[j][0];
#pragma unroll
                for (int e = 1; e < EPR; ++e)
                    if (e < epr) s = s + v[j][e];
                for (int o = P.tpw1 / 2; o > 0; o >>= 1) s = s + __shfl_xor_sync(0xffffffffu, s, o);
                mean[j] = s;
            }
            if (P.wpc1 > 1) {
                if (l1 == 0) {
#pragma unroll
                    for (int j = 0; j < R0C; ++j) red_s[j][warp * 32 + l0] = mean[j];
                }
                __syncthreads();
#pragma unroll
                for (int j = 0; j < R0C; ++j) {
                    float p[8];
#pragma unroll
                    for (int w = 0; w < 8; ++w) p[w] = w < P.wpc1 ? red_s[j][(w0 * P.wpc1 + w) * 32 + l0] : 0.f;
                    mean[j] = warp_tree(p, P.wpc1);
                }
            }
#pragma unroll
            for (int j = 0; j < R0C; ++j) mean[j] = div_full(mean[j], n_f);
        } else {
#pragma unroll
            for (int j = 0; j < R0C; ++j) mean[j] = 0.f;
        }
        // sum of squares of xbar = where(col < n, x - mean, 0) (RMS: x).
        float var[R0C];
#pragma unroll
        for (int j = 0; j < R0C; ++j) {
            float d[EPR];
#pragma unroll
            for (int k = 0; k < R1; ++k)
#pragma unroll
                for (int i = 0; i < SPT; ++i) {
                    const int c = ((k * P.wpc1 + w1) * P.tpw1 + l1) * SPT + i;
                    d[k * SPT + i] = ln ? (c < n ? v[j][k * SPT + i] - mean[j] : 0.f) : v[j][k * SPT + i];
                }
            float q;
            if (epr == 1) {
                q = __fmul_rn(d[0], d[0]);
            } else {
                q = __fmul_rn(d[1], d[1]);
                q = fmaf(d[0], d[0], q);
#pragma unroll
                for (int e = 2; e < EPR; ++e)
                    if (e < epr) q = fmaf(d[e], d[e], q);
            }
            for (int o = P.tpw1 / 2; o > 0; o >>= 1) q = q + __shfl_xor_sync(0xffffffffu, q, o);
            var[j] = q;
        }
        if (P.wpc1 > 1) {
            if (l1 == 0) {
#pragma unroll
                for (int j = 0; j < R0C; ++j) red_q[j][warp * 32 + l0] = var[j];
            }
            __syncthreads();
#pragma unroll
            for (int j = 0; j < R0C; ++j) {
                float p[8];
#pragma unroll
                for (int w = 0; w < 8; ++w) p[w] = w < P.wpc1 ? red_q[j][(w0 * P.wpc1 + w) * 32 + l0] : 0.f;
                var[j] = warp_tree(p, P.wpc1);
            }
        }
        float rstd[R0C];
#pragma unroll
        for (int j = 0; j < R0C; ++j) {
            const float vr = div_full(var[j], n_f);
            rstd[j] = P.mode == kOnePass ? rsqrt_approx_ftz(vr + P.eps) : div_full(1.0f, sqrt_approx_ftz(vr + P.eps));
        }
        // Outputs.
#pragma unroll
        for (int j = 0; j < R0C; ++j) {
            if (!live[j]) continue;
#pragma unroll
            for (int k = 0; k < R1; ++k) {
                const int c = ((k * P.wpc1 + w1) * P.tpw1 + l1) * SPT;
                if (k >= r1 || c >= n) continue;
                float wv[SPT], bv[SPT];
                if (P.w) load_affine<XT, SPT>(P.w, P.w_dt, P.w_s, P.w_vec, c, wv);
                if (P.b) load_affine<XT, SPT>(P.b, P.b_dt, P.b_s, P.b_vec, c, bv);
                Pack<XT, SPT> o;
#pragma unroll
                for (int i = 0; i < SPT; ++i) {
                    const float xv = v[j][k * SPT + i];
                    float r;
                    if (P.mode == kOnePass) {
                        r = __fmul_rn(__fmul_rn(xv, rstd[j]), wv[i]);
                    } else {
                        const float xm = ln ? xv - mean[j] : xv;
                        if (P.w && P.b) r = fmaf(__fmul_rn(xm, rstd[j]), wv[i], bv[i]);
                        else if (P.w) r = __fmul_rn(__fmul_rn(xm, rstd[j]), wv[i]);
                        else if (P.b) r = fmaf(xm, rstd[j], bv[i]);
                        else r = __fmul_rn(xm, rstd[j]);
                    }
                    o.v[i] = from_f<XT>(r);
                }
                if (SPT > 1) o.store(y + seq[j] * n + c);
                else y[seq[j] * n + c] = o.v[0];
            }
        }
        if (g + R0C < P.r0) __syncthreads();  // red_* reused by the next group
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

template <typename XT, int SPT, int EPR, int R0C>
int32_t go(const Params& P, dim3 grid, int threads, cudaStream_t st) {
    norm_kernel<XT, SPT, EPR, R0C><<<grid, threads, 0, st>>>(P);
    return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
}

// Instantiations: SPT 1 or the full 16-byte vector, EPR buckets 8 / 32 / 128, and two row slots
// a group (Triton's loads of both before the arithmetic) only for full vectors with EPR <= 8 (the
// one-pass BLOCK_SEQ 16 tiles of D <= 128); other tiles with more row slots loop over them one
// at a time (tiny D only). 21 kernels: build time. A narrower vector Triton would take (a tile smaller than threads x 16 bytes,
// or a one-pass D divisible by 2 or 4 elements but not by 16 bytes) runs with SPT 1: the same
// elements and arithmetic, the in-thread sums in another grouping (no production row of 10 us
// or more takes it; the S 1320 one-pass row does).
template <typename XT, int SPT, int R0C>
int32_t by_epr(int epr, const Params& P, dim3 grid, int threads, cudaStream_t st) {
    if (epr <= 8) return go<XT, SPT, (SPT > 8 ? SPT : 8), R0C>(P, grid, threads, st);
    if (epr <= 32) return go<XT, SPT, 32, R0C>(P, grid, threads, st);
    if constexpr (R0C == 1) {
        if (epr <= 128) return go<XT, SPT, 128, 1>(P, grid, threads, st);
    }
    return KP_NOT_SUPPORTED;
}

template <typename XT>
int32_t by_layout(int spt, int epr, int r0c, const Params& P, dim3 grid, int threads, cudaStream_t st) {
    constexpr int V = 16 / sizeof(XT);
    if (spt == V) {
        if (r0c == 2 && epr <= 8) return go<XT, V, 8, 2>(P, grid, threads, st);  // the one-pass D <= 128 tiles
        return by_epr<XT, V, 1>(epr, P, grid, threads, st);
    }
    if (spt == 1) return by_epr<XT, 1, 1>(epr, P, grid, threads, st);  // its row-slot loop takes any r0
    return KP_NOT_SUPPORTED;
}

// Triton's layout of a [bs, bd] tile over nw warps, and the launch.
// vec: the widest access Triton's alignment analysis allows, in elements (1, 2, 4 or 8).
int32_t launch(kp_call* call, Params P, int64_t bd, int nw, int64_t programs, int64_t vec, int xdt, const char* name,
               cudaStream_t st) {
    const int64_t elems = static_cast<int64_t>(P.bs) * bd;
    const int threads = nw * 32;
    int64_t spt = vec;
    const int64_t per = elems / threads > 1 ? elems / threads : 1;
    if (spt > per) spt = per;
    if (spt != 16 / dt_size(xdt)) spt = 1;  // see by_epr
    const int64_t tpw1 = bd / spt < 32 ? bd / spt : 32;
    const int64_t tpw0 = 32 / tpw1;
    int64_t wpc1 = bd / (spt * tpw1);
    if (wpc1 < 1) wpc1 = 1;
    if (wpc1 > nw) wpc1 = nw;
    const int64_t wpc0 = nw / wpc1;
    int64_t r1 = bd / (spt * tpw1 * wpc1);
    if (r1 < 1) r1 = 1;
    int64_t r0 = P.bs / (tpw0 * wpc0);
    if (r0 < 1) r0 = 1;
    const int64_t epr = spt * r1;
    const int r0c = r0 >= 2 ? 2 : 1;
    if (epr > (r0c == 2 ? 32 : 128)) {
        set_path(call, "unsupported:tile_too_large");
        return KP_NOT_SUPPORTED;
    }
    P.tpw1 = static_cast<int>(tpw1);
    P.tpw0 = static_cast<int>(tpw0);
    P.wpc1 = static_cast<int>(wpc1);
    P.wpc0 = static_cast<int>(wpc0);
    P.r0 = static_cast<int>(r0);
    P.r1 = static_cast<int>(r1);
    snprintf(call->path, KP_PATH_LEN, "%s_bs%d_bn%lld_w%d_v%lld", name, P.bs, static_cast<long long>(bd), nw,
             static_cast<long long>(spt));
    if (programs == 0) return KP_OK;
    const dim3 grid(static_cast<unsigned>(programs));
    const int s = static_cast<int>(spt), e = static_cast<int>(epr);
    if (xdt == KP_F32) return by_layout<float>(s, e, r0c, P, grid, threads, st);
    if (xdt == KP_BF16) return by_layout<bf16>(s, e, r0c, P, grid, threads, st);
    return by_layout<f16>(s, e, r0c, P, grid, threads, st);
}

// An affine operand: absent, or [n] (any stride); `vec` when of x's dtype, stride 1, aligned.
bool affine(const kp_tensor& t, int64_t n, int xdt, const void** p, int* dt, int64_t* s, bool* vec) {
    *p = nullptr;
    *dt = KP_F32;
    *s = 1;
    *vec = false;
    if (t.dtype == KP_ABSENT) return true;
    if (!is_float_dt(t.dtype) || t.rank != 1 || t.shape[0] != n || (t.data == nullptr && n > 0)) return false;
    *p = t.data;
    *dt = t.dtype;
    *s = t.stride[0];
    *vec = t.dtype == xdt && (n == 1 || t.stride[0] == 1) && aligned16(t.data);
    return true;
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
    if (!contiguous(x) || out.dtype != x.dtype || !same_shape(out, x) || !contiguous(out) || M >= (1LL << 31) ||
        (M * N > 0 && (x.data == nullptr || out.data == nullptr))) {
        set_path(call, "unsupported:x_or_out_layout");
        return KP_NOT_SUPPORTED;
    }
    Params P{};
    if (!affine(w, N, x.dtype, &P.w, &P.w_dt, &P.w_s, &P.w_vec) || !affine(b, N, x.dtype, &P.b, &P.b_dt, &P.b_s, &P.b_vec)) {
        set_path(call, "unsupported:affine");
        return KP_NOT_SUPPORTED;
    }
    P.x = x.data;
    P.y = out.data;
    P.rows = M;
    P.n = static_cast<int>(N);
    P.bs = 1;
    P.eps = static_cast<float>(call->scalars[0]);
    P.mode = call->scalars[1] != 0.0 ? kRmsInfer : kLayerNorm;
    int64_t nw = block_n / 256;
    if (nw < 1) nw = 1;
    if (nw > 8) nw = 8;
    const bool xvec = N % 16 == 0 && aligned16(x.data) && aligned16(out.data);
    if (N == 0) { set_path(call, "triton_norm_infer_empty"); return KP_OK; }
    // N and the row stride are runtime ints: Triton knows only whether they divide by 16.
    return launch(call, P, block_n, static_cast<int>(nw), M, xvec ? 16 / dt_size(x.dtype) : 1, x.dtype,
                  P.mode == kRmsInfer ? "triton_norm_infer_rms" : "triton_norm_infer_ln", static_cast<cudaStream_t>(stream));
}

// Tensors: x (any rank, last dim D), w [D], out (x's shape). Scalars: eps.
int32_t kp_triton_one_pass_rms_norm(kp_call* call, void* stream) {
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
    if (!contiguous(x) || out.dtype != x.dtype || !same_shape(out, x) || !contiguous(out) || S >= (1LL << 31) ||
        D >= (1LL << 31) || (S * D > 0 && (x.data == nullptr || out.data == nullptr))) {
        set_path(call, "unsupported:x_or_out_layout");
        return KP_NOT_SUPPORTED;
    }
    int64_t bs = next_pow2(S / 512 > 1 ? S / 512 : 1);
    if (bs > 16) bs = 16;
    // Triton refuses a tensor of more than 2^20 elements (tl.arange / block shape).
    if (bd > (1LL << 20) || bs * bd > (1LL << 20)) { set_path(call, "unsupported:triton_max_numel"); return KP_NOT_SUPPORTED; }
    Params P{};
    if (w.dtype == KP_ABSENT || !affine(w, D, x.dtype, &P.w, &P.w_dt, &P.w_s, &P.w_vec)) {
        set_path(call, "unsupported:w");
        return KP_NOT_SUPPORTED;
    }
    P.x = x.data;
    P.y = out.data;
    P.rows = S;
    P.n = static_cast<int>(D);
    P.bs = static_cast<int>(bs);
    P.eps = static_cast<float>(call->scalars[0]);
    P.mode = kOnePass;
    int64_t v = 16 / dt_size(x.dtype);
    while (v > 1 && D % v != 0) v >>= 1;  // DIM is constexpr: its exact power-of-two divisibility
    if (!(aligned16(x.data) && aligned16(out.data))) v = 1;
    if (S == 0 || D == 0) { set_path(call, "triton_one_pass_rms_empty"); return KP_OK; }
    return launch(call, P, bd, 4, (S + bs - 1) / bs, v, x.dtype, "triton_one_pass_rms", static_cast<cudaStream_t>(stream));
}

}  // extern "C"
