// kpilot-parent: baseline
// Candidate v1 for tasks/norm_infer: bandwidth-shaped kernels for the production shapes, the
// baseline's code (below, unchanged apart from its entry points' names) for everything else.
//
// What changes and why (prediction in NOTES.md; no GPU evidence yet):
//   * triton_one_pass_rms_norm, D == 128, x and w of one dtype, contiguous, 16-byte aligned
//     (every production row): a row is 128 elements = 256 bytes (16-bit) or 512 bytes (fp32), so
//     16 (resp. 32) lanes each hold one 16-byte vector of it; a warp takes 2 (resp. 1) rows a
//     load, and each lane issues kRowLoads vector loads before any arithmetic, so a warp has
//     16 (resp. 8) rows in flight: 256 threads x 64 bytes = 16 KB a block, about 128 KB an SM at
//     8 blocks. The sum of squares is reduced within the row's lanes only (xor 8..1 or 16..1, no
//     shared memory, no barrier); w is read once a thread, as one vector. Upstream's tile is 16
//     rows a program of 128 threads with the reduction crossing 16 lanes, then a store before
//     the next program: fewer bytes in flight per thread.
//   * norm_infer, N a multiple of the 16-byte vector, weight / bias absent or of x's dtype, x
//     contiguous and aligned (the helios fp32 [8640, 5120] row): one block per row sized to the
//     row (threads = ceil(N / (V * K)), K = vectors a thread, the row in registers, no masked
//     lanes: 320 threads x 4 float4 for N 5120, where Triton's BLOCK_N 8192 gives 256 threads
//     x 8 float4 of which 3 are masked); mean and then the centred sum of squares from the
//     registers (two passes, as upstream), each a warp butterfly plus one shared-memory step.
//   * rstd = rsqrtf(var + eps) (rsqrt.approx; upstream's 1 / sqrt.approx is within 2 ulp of it),
//     IEEE divisions by N; within every tolerance by a wide margin (fp32: relative 1e-5).
//   * host: no device queries, only pointer and shape checks before the launch.
//
// The baseline part is tasks/norm_infer/baseline.cu as frozen (header comment dropped).

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

namespace {

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

}  // namespace

// =============================================================================================
// v1's kernels
// =============================================================================================
namespace {

constexpr int kV1Threads = 256;
constexpr int kRowLoads = 4;  // 16-byte loads a lane issues before its arithmetic

__device__ __forceinline__ float v1_f(bf16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float v1_f(f16 v) { return __half2float(v); }
__device__ __forceinline__ float v1_f(float v) { return v; }

// One-pass RMSNorm of rows of 128 elements. LPR lanes a row (16-byte vector each), 32 / LPR rows a
// warp a load, kRowLoads loads a lane.
template <typename XT>
__global__ void __launch_bounds__(kV1Threads) v1_rms128(const XT* __restrict__ x, const XT* __restrict__ w,
                                                       XT* __restrict__ y, int64_t S, float eps) {
    constexpr int V = 16 / sizeof(XT);
    constexpr int LPR = 128 / V;      // 16 (16-bit) or 32 (fp32)
    constexpr int RPW = 32 / LPR;     // rows a warp a load
    constexpr int RPWARP = RPW * kRowLoads;
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int sub = lane / LPR, l = lane % LPR;
    const int64_t row0 = (static_cast<int64_t>(blockIdx.x) * (kV1Threads / 32) + warp) * RPWARP;

    Pack<XT, V> xv[kRowLoads];
#pragma unroll
    for (int k = 0; k < kRowLoads; ++k) {
        const int64_t r = row0 + k * RPW + sub;
        if (r < S) xv[k].load(x + r * 128 + l * V);
    }
    Pack<XT, V> wv;
    wv.load(w + l * V);
#pragma unroll
    for (int k = 0; k < kRowLoads; ++k) {
        const int64_t r = row0 + k * RPW + sub;
        float f[V];
        float q = 0.f;
#pragma unroll
        for (int i = 0; i < V; ++i) {
            f[i] = v1_f(xv[k].v[i]);
            q = fmaf(f[i], f[i], q);
        }
#pragma unroll
        for (int o = LPR / 2; o > 0; o >>= 1) q += __shfl_xor_sync(0xffffffffu, q, o);
        const float rstd = rsqrtf(q * (1.0f / 128.0f) + eps);
        if (r >= S) continue;
        Pack<XT, V> o;
#pragma unroll
        for (int i = 0; i < V; ++i) o.v[i] = from_f<XT>(f[i] * rstd * v1_f(wv.v[i]));
        o.store(y + r * 128 + l * V);
    }
}

// Sum over the block (every thread gets it): warp butterfly, then the warp partials.
__device__ __forceinline__ float v1_block_sum(float v, float* red, int nwarps) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float s = 0.f;
    for (int i = 0; i < nwarps; ++i) s += red[i];
    return s;
}

// norm_infer, one block a row, K vectors of V elements a thread at vector index t + k * blockDim.
template <typename XT, int K>
__global__ void __launch_bounds__(1024) v1_norm_row(const XT* __restrict__ x, const XT* __restrict__ w,
                                                   const XT* __restrict__ b, XT* __restrict__ y, int n,
                                                   float eps, bool rms) {
    constexpr int V = 16 / sizeof(XT);
    __shared__ float red[2][32];
    const int nv = n / V;
    const int t = threadIdx.x;
    const int nwarps = blockDim.x >> 5;
    const XT* xr = x + static_cast<int64_t>(blockIdx.x) * n;
    XT* yr = y + static_cast<int64_t>(blockIdx.x) * n;
    Pack<XT, V> pv[K];
#pragma unroll
    for (int k = 0; k < K; ++k) {
        const int vi = t + k * blockDim.x;
        if (vi < nv) pv[k].load(xr + vi * V);
    }
    float f[K][V];
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < K; ++k) {
        const bool in = t + k * static_cast<int>(blockDim.x) < nv;
#pragma unroll
        for (int i = 0; i < V; ++i) {
            f[k][i] = in ? v1_f(pv[k].v[i]) : 0.f;
            s += f[k][i];
        }
    }
    const float inv_n = 1.0f / static_cast<float>(n);
    float mean = 0.f;
    if (!rms) mean = v1_block_sum(s, red[0], nwarps) * inv_n;
    float q = 0.f;
#pragma unroll
    for (int k = 0; k < K; ++k) {
        const bool in = t + k * static_cast<int>(blockDim.x) < nv;
#pragma unroll
        for (int i = 0; i < V; ++i) {
            const float d = in ? f[k][i] - mean : 0.f;
            q = fmaf(d, d, q);
        }
    }
    const float rstd = rsqrtf(v1_block_sum(q, red[1], nwarps) * inv_n + eps);
#pragma unroll
    for (int k = 0; k < K; ++k) {
        const int vi = t + k * blockDim.x;
        if (vi >= nv) continue;
        Pack<XT, V> wv, bv, o;
        if (w) wv.load(w + vi * V);
        if (b) bv.load(b + vi * V);
#pragma unroll
        for (int i = 0; i < V; ++i) {
            float r = (f[k][i] - mean) * rstd;
            if (w) r *= v1_f(wv.v[i]);
            if (b) r += v1_f(bv.v[i]);
            o.v[i] = from_f<XT>(r);
        }
        o.store(yr + vi * V);
    }
}

template <typename XT>
int32_t v1_rms128_launch(const kp_tensor& x, const kp_tensor& w, const kp_tensor& out, int64_t S, float eps,
                         cudaStream_t st) {
    constexpr int V = 16 / sizeof(XT);
    constexpr int rows_per_block = (kV1Threads / 32) * (32 / (128 / V)) * kRowLoads;
    const int64_t blocks = (S + rows_per_block - 1) / rows_per_block;
    v1_rms128<XT><<<static_cast<unsigned>(blocks), kV1Threads, 0, st>>>(
        static_cast<const XT*>(x.data), static_cast<const XT*>(w.data), static_cast<XT*>(out.data), S, eps);
    return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
}

template <typename XT, int K>
int32_t v1_norm_launch(const kp_tensor& x, const kp_tensor& w, const kp_tensor& b, const kp_tensor& out, int64_t M,
                       int threads, float eps, bool rms, cudaStream_t st) {
    v1_norm_row<XT, K><<<static_cast<unsigned>(M), threads, 0, st>>>(
        static_cast<const XT*>(x.data), static_cast<const XT*>(w.data), static_cast<const XT*>(b.data),
        static_cast<XT*>(out.data), static_cast<int>(x.shape[1]), eps, rms);
    return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
}

template <typename XT>
int32_t v1_norm_dispatch(int k, const kp_tensor& x, const kp_tensor& w, const kp_tensor& b, const kp_tensor& out,
                         int64_t M, int threads, float eps, bool rms, cudaStream_t st) {
    switch (k) {
        case 1: return v1_norm_launch<XT, 1>(x, w, b, out, M, threads, eps, rms, st);
        case 2: return v1_norm_launch<XT, 2>(x, w, b, out, M, threads, eps, rms, st);
        case 4: return v1_norm_launch<XT, 4>(x, w, b, out, M, threads, eps, rms, st);
        default: return v1_norm_launch<XT, 8>(x, w, b, out, M, threads, eps, rms, st);
    }
}

// weight / bias usable by v1: absent, or [n] of x's dtype, stride 1, aligned.
bool v1_affine_ok(const kp_tensor& t, int64_t n, int xdt) {
    return t.dtype == KP_ABSENT || (t.dtype == xdt && t.rank == 1 && t.shape[0] == n && t.stride[0] == 1 &&
                                    aligned16(t.data));
}

}  // namespace

extern "C" {

int32_t kp_norm_infer(kp_call* call, void* stream) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != 4 || call->n_scalars != 2 ||
        !ranks_valid(call))
        return KP_INVALID;
    const kp_tensor& x = call->tensors[0];
    const kp_tensor& w = call->tensors[1];
    const kp_tensor& b = call->tensors[2];
    const kp_tensor& out = call->tensors[3];
    if (is_float_dt(x.dtype) && x.rank == 2 && out.dtype == x.dtype && same_shape(out, x) && x.shape[0] > 0 &&
        x.shape[0] < (1LL << 31)) {
        const int64_t M = x.shape[0], N = x.shape[1];
        const int V = 16 / dt_size(x.dtype);
        const int64_t nv = N / V;
        const bool ok = N > 0 && N % V == 0 && N * dt_size(x.dtype) <= 65536 && contiguous(x) && contiguous(out) &&
                        aligned16(x.data) && aligned16(out.data) && v1_affine_ok(w, N, x.dtype) &&
                        v1_affine_ok(b, N, x.dtype);
        if (ok) {
            int k = 1;
            while (k < 8 && (nv + k - 1) / k > 512) k <<= 1;
            int64_t threads = (nv + k - 1) / k;
            threads = (threads + 31) / 32 * 32;
            if (threads <= 1024) {
                const bool rms = call->scalars[1] != 0.0;
                const float eps = static_cast<float>(call->scalars[0]);
                const cudaStream_t st = static_cast<cudaStream_t>(stream);
                snprintf(call->path, KP_PATH_LEN, "v1_row_k%d_t%lld%s", k, static_cast<long long>(threads),
                         rms ? "_rms" : "_ln");
                if (x.dtype == KP_F32) return v1_norm_dispatch<float>(k, x, w, b, out, M, static_cast<int>(threads), eps, rms, st);
                if (x.dtype == KP_BF16) return v1_norm_dispatch<bf16>(k, x, w, b, out, M, static_cast<int>(threads), eps, rms, st);
                return v1_norm_dispatch<f16>(k, x, w, b, out, M, static_cast<int>(threads), eps, rms, st);
            }
        }
    }
    return base_norm_infer(call, stream);
}

int32_t kp_triton_one_pass_rms_norm(kp_call* call, void* stream) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != 3 || call->n_scalars != 1 ||
        !ranks_valid(call))
        return KP_INVALID;
    const kp_tensor& x = call->tensors[0];
    const kp_tensor& w = call->tensors[1];
    const kp_tensor& out = call->tensors[2];
    if (is_float_dt(x.dtype) && x.rank >= 1 && x.shape[x.rank - 1] == 128 && w.dtype == x.dtype && w.rank == 1 &&
        w.shape[0] == 128 && w.stride[0] == 1 && aligned16(w.data) && out.dtype == x.dtype && same_shape(out, x) &&
        contiguous(x) && contiguous(out) && aligned16(x.data) && aligned16(out.data)) {
        const int64_t S = numel(x) / 128;
        if (S > 0 && S < (1LL << 31)) {
            const float eps = static_cast<float>(call->scalars[0]);
            const cudaStream_t st = static_cast<cudaStream_t>(stream);
            snprintf(call->path, KP_PATH_LEN, "v1_rms128_lanes%d", x.dtype == KP_F32 ? 32 : 16);
            if (x.dtype == KP_F32) return v1_rms128_launch<float>(x, w, out, S, eps, st);
            if (x.dtype == KP_BF16) return v1_rms128_launch<bf16>(x, w, out, S, eps, st);
            return v1_rms128_launch<f16>(x, w, out, S, eps, st);
        }
    }
    return base_triton_one_pass_rms_norm(call, stream);
}

}  // extern "C"
