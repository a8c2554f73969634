// Candidate v1 for tasks/qknorm_rope (SGLang qknorm_rope.cuh, fused_inplace_qknorm_rope): same
// entry point, semantics and support gate as baseline.cu, tuned for H100/H200.
//
// The op is memory-bound (each q/k byte is read once and written once), and upstream's kernel is
// latency-bound: one warp moves one 256-byte head per grid-stride step and then waits on a
// position -> cos/sin load chain, so too few bytes are in flight per SM. This version:
//
//   vec8 path (every production row and most regression rows):
//     * a lane owns 8 contiguous elements (one 16-byte load and store); a head is D/8 lanes
//       (8, 16 or 32), so a warp covers 4, 2 or 1 heads per access;
//     * a CTA owns one token and a chunk of its heads (q's heads then k's heads, as upstream);
//       each thread walks U heads of that token (U = 1..4, a template constant), issuing all U
//       16-byte loads before any arithmetic, so 16*U bytes per thread are in flight;
//     * position, cos/sin and both weight vectors are loaded once per thread and reused for all
//       U heads (they depend only on the token and the lane's slot inside the head);
//     * no grid-stride loop: the grid is (N tokens, head chunks); U is lowered (more, smaller
//       CTAs) only when N is too small to fill the GPU;
//     * sum of squares: 8 in-lane products, then a D/8-lane xor-shuffle butterfly;
//     * interleaved RoPE needs R % 8 == 0 (a lane is wholly rotary or not); NeoX needs R % 16 == 0
//       (the partner half is R/16 lanes away, an xor shuffle since R is a power of two).
//   fallback path (unaligned bases/strides, interleaved R % 8 != 0, NeoX R < 16): upstream's
//     warp-per-head layout, simply correct: R, position dtype at run time, element-wise accesses
//     where vectors are not aligned.
//
// Math as upstream: x in fp32, r = rsqrt(sum(x^2)/D + eps), n = x * (r * w) kept in fp32, rotated
// in fp32, rounded once (RN) to the dtype. Only the fp32 summation order of the sum of squares
// differs from upstream.
//
// PDL: used on sm90+, as upstream and as the baseline: cudaLaunchKernelEx with
// cudaLaunchAttributeProgrammaticStreamSerialization; each kernel executes griddepcontrol.wait
// before touching memory and griddepcontrol.launch_dependents after its stores.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <atomic>
#include <type_traits>

#include "kpilot_abi.h"

namespace {

using bf16 = __nv_bfloat16;
using f16 = __half;

constexpr int kMaxDevices = 64;
constexpr int kMaxThreads = 256;   // vec8 CTA size cap
constexpr int kMaxUnits = 4;       // heads per thread in the vec8 path
constexpr int kFbThreads = 256;    // fallback: 8 warps, one (token, head) per warp
constexpr int kFbWarps = kFbThreads / 32;

struct Params {
    void* q;
    void* k;
    const void* qw;
    const void* kw;
    const float* cache;
    const void* pos;
    int64_t q_tok;   // token strides and the shared head stride, in elements
    int64_t k_tok;
    int64_t head;
    uint32_t hq, hk, n;
    int32_t rope;    // R
    int32_t pos_i64; // positions dtype: 1 int64, 0 int32
    float eps;
};

// ---------------------------------------------------------------------------------------------
// Device helpers
// ---------------------------------------------------------------------------------------------

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

template <typename T> __device__ __forceinline__ float2 unpack2(uint32_t w);
template <> __device__ __forceinline__ float2 unpack2<bf16>(uint32_t w) {
    return make_float2(__uint_as_float(w << 16), __uint_as_float(w & 0xffff0000u));
}
template <> __device__ __forceinline__ float2 unpack2<f16>(uint32_t w) {
    __half2 h;
    memcpy(&h, &w, sizeof h);
    return __half22float2(h);
}

template <typename T> __device__ __forceinline__ uint32_t pack2(float a, float b);
template <> __device__ __forceinline__ uint32_t pack2<bf16>(float a, float b) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(a, b);
    uint32_t w;
    memcpy(&w, &v, sizeof w);
    return w;
}
template <> __device__ __forceinline__ uint32_t pack2<f16>(float a, float b) {
    const __half2 v = __floats2half2_rn(a, b);
    uint32_t w;
    memcpy(&w, &v, sizeof w);
    return w;
}

__device__ __forceinline__ int64_t load_position(const Params& p, uint32_t t) {
    return p.pos_i64 ? static_cast<int64_t>(__ldg(static_cast<const long long*>(p.pos) + t))
                     : static_cast<int64_t>(__ldg(static_cast<const int*>(p.pos) + t));
}

template <typename T> __device__ __forceinline__ void unpack8(const uint4& v, float (&e)[8]) {
    const float2 a = unpack2<T>(v.x), b = unpack2<T>(v.y), c = unpack2<T>(v.z), d = unpack2<T>(v.w);
    e[0] = a.x; e[1] = a.y; e[2] = b.x; e[3] = b.y;
    e[4] = c.x; e[5] = c.y; e[6] = d.x; e[7] = d.y;
}

// ---------------------------------------------------------------------------------------------
// vec8 path: CTA = (token, chunk of heads); thread = 8 elements of U heads of that token.
// blockDim.x = LPH * hpb, a multiple of 32, at most 256; hpb = heads per pass.
// ---------------------------------------------------------------------------------------------

template <typename T, int D, bool NEOX, int U>
__global__ void __launch_bounds__(kMaxThreads) qknorm_rope_vec8_kernel(const __grid_constant__ Params p) {
    constexpr int LPH = D / 8;  // lanes per head
    constexpr int NC = NEOX ? 8 : 4;  // cos (and sin) values a lane needs
    const uint32_t hpb = blockDim.x / LPH;
    const int l = static_cast<int>(threadIdx.x % LPH);
    const uint32_t h0 = blockIdx.y * (hpb * U) + threadIdx.x / LPH;
    const uint32_t t = blockIdx.x;
    const uint32_t hq = p.hq;
    const uint32_t heads = hq + p.hk;
    const int R = p.rope;

    T* const qt = static_cast<T*>(p.q) + static_cast<int64_t>(t) * p.q_tok + l * 8;
    T* const kt = static_cast<T*>(p.k) + static_cast<int64_t>(t) * p.k_tok + l * 8;
    auto head_ptr = [&](uint32_t h) -> T* {
        return h < hq ? qt + static_cast<int64_t>(h) * p.head : kt + static_cast<int64_t>(h - hq) * p.head;
    };

    pdl_wait();

    // All of this thread's head vectors first: U independent 16-byte loads in flight.
    uint4 xv[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
        const uint32_t h = h0 + u * hpb;
        xv[u] = h < heads ? *reinterpret_cast<const uint4*>(head_ptr(h)) : make_uint4(0u, 0u, 0u, 0u);
    }

    // Token- and slot-invariant operands, once per thread.
    uint4 wq = make_uint4(0u, 0u, 0u, 0u), wk = make_uint4(0u, 0u, 0u, 0u);
    if (h0 < hq) wq = __ldg(reinterpret_cast<const uint4*>(static_cast<const T*>(p.qw) + l * 8));
    if (h0 + (U - 1) * hpb >= hq) wk = __ldg(reinterpret_cast<const uint4*>(static_cast<const T*>(p.kw) + l * 8));

    const bool rot = l * 8 < R;  // the lane's 8 dims are all rotary or all pass-through
    const int hl = R / 16;       // NeoX: lanes per half of the rotary span
    float c[NC], s[NC];
#pragma unroll
    for (int i = 0; i < NC; ++i) c[i] = s[i] = 0.f;
    if (rot) {
        const float* cs = p.cache + load_position(p, t) * R;
        const int off = NEOX ? 8 * (l & (hl - 1)) : 4 * l;
#pragma unroll
        for (int i = 0; i < NC; i += 4) {
            const float4 cv = __ldg(reinterpret_cast<const float4*>(cs + off + i));
            const float4 sv = __ldg(reinterpret_cast<const float4*>(cs + R / 2 + off + i));
            c[i] = cv.x; c[i + 1] = cv.y; c[i + 2] = cv.z; c[i + 3] = cv.w;
            s[i] = sv.x; s[i + 1] = sv.y; s[i + 2] = sv.z; s[i + 3] = sv.w;
        }
    }

#pragma unroll
    for (int u = 0; u < U; ++u) {
        const uint32_t h = h0 + u * hpb;
        float e[8];
        unpack8<T>(xv[u], e);
        float ss = 0.f;
#pragma unroll
        for (int i = 0; i < 8; ++i) ss = fmaf(e[i], e[i], ss);
#pragma unroll
        for (int o = LPH / 2; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
        const float r = rsqrtf(ss / static_cast<float>(D) + p.eps);
        float w[8];
        unpack8<T>(h < hq ? wq : wk, w);
#pragma unroll
        for (int i = 0; i < 8; ++i) e[i] *= r * w[i];

        if constexpr (NEOX) {
            const bool lower = l < hl;
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                const float other = __shfl_xor_sync(0xffffffffu, e[i], hl);
                if (rot) e[i] = lower ? e[i] * c[i] - other * s[i] : e[i] * c[i] + other * s[i];
            }
        } else {
            if (rot) {
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const float a = e[2 * j], b = e[2 * j + 1];
                    e[2 * j] = a * c[j] - b * s[j];
                    e[2 * j + 1] = b * c[j] + a * s[j];
                }
            }
        }

        if (h < heads) {
            const uint4 o = make_uint4(pack2<T>(e[0], e[1]), pack2<T>(e[2], e[3]), pack2<T>(e[4], e[5]),
                                       pack2<T>(e[6], e[7]));
            *reinterpret_cast<uint4*>(head_ptr(h)) = o;
        }
    }

    pdl_trigger();
}

// ---------------------------------------------------------------------------------------------
// Fallback: one warp per (token, head), D/32 elements per lane, any supported R.
// ---------------------------------------------------------------------------------------------

template <int E, bool VEC>
__device__ __forceinline__ void load_lane(uint32_t (&w)[E / 2], const void* p) {
    if constexpr (VEC) {
        if constexpr (E == 2) {
            w[0] = *static_cast<const uint32_t*>(p);
        } else if constexpr (E == 4) {
            const uint2 v = *static_cast<const uint2*>(p);
            w[0] = v.x; w[1] = v.y;
        } else {
            static_assert(E == 8, "D/32 is 2, 4 or 8");
            const uint4 v = *static_cast<const uint4*>(p);
            w[0] = v.x; w[1] = v.y; w[2] = v.z; w[3] = v.w;
        }
    } else {
        const unsigned short* s = static_cast<const unsigned short*>(p);
#pragma unroll
        for (int j = 0; j < E / 2; ++j)
            w[j] = static_cast<uint32_t>(s[2 * j]) | (static_cast<uint32_t>(s[2 * j + 1]) << 16);
    }
}

template <int E, bool VEC>
__device__ __forceinline__ void store_lane(void* p, const uint32_t (&w)[E / 2]) {
    if constexpr (VEC) {
        if constexpr (E == 2) {
            *static_cast<uint32_t*>(p) = w[0];
        } else if constexpr (E == 4) {
            *static_cast<uint2*>(p) = make_uint2(w[0], w[1]);
        } else {
            *static_cast<uint4*>(p) = make_uint4(w[0], w[1], w[2], w[3]);
        }
    } else {
        unsigned short* s = static_cast<unsigned short*>(p);
#pragma unroll
        for (int j = 0; j < E / 2; ++j) {
            s[2 * j] = static_cast<unsigned short>(w[j] & 0xffffu);
            s[2 * j + 1] = static_cast<unsigned short>(w[j] >> 16);
        }
    }
}

template <typename T, int D, bool NEOX, bool VEC>
__global__ void __launch_bounds__(kFbThreads) qknorm_rope_fallback_kernel(const __grid_constant__ Params p) {
    constexpr int E = D / 32;
    const int R = p.rope;
    const int RL = R / E;
    const int HR = R / 2;
    const int lane = static_cast<int>(threadIdx.x % 32);
    const uint32_t heads = p.hq + p.hk;
    const uint32_t works = heads * p.n;
    const uint32_t n_workers = gridDim.x * kFbWarps;

    pdl_wait();

    for (uint32_t idx = blockIdx.x * kFbWarps + threadIdx.x / 32; idx < works; idx += n_workers) {
        const uint32_t t = idx / heads;
        const uint32_t h = idx % heads;
        const bool is_q = h < p.hq;
        T* x = (is_q ? static_cast<T*>(p.q) + static_cast<int64_t>(t) * p.q_tok + static_cast<int64_t>(h) * p.head
                     : static_cast<T*>(p.k) + static_cast<int64_t>(t) * p.k_tok +
                           static_cast<int64_t>(h - p.hq) * p.head) +
               lane * E;
        const T* w = static_cast<const T*>(is_q ? p.qw : p.kw) + lane * E;

        uint32_t xv[E / 2], wv[E / 2];
        load_lane<E, VEC>(xv, x);
        load_lane<E, VEC>(wv, w);
        float e[E];
        float ss = 0.f;
#pragma unroll
        for (int j = 0; j < E / 2; ++j) {
            const float2 f = unpack2<T>(xv[j]);
            e[2 * j] = f.x;
            e[2 * j + 1] = f.y;
            ss += f.x * f.x + f.y * f.y;
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
        const float r = rsqrtf(ss / static_cast<float>(D) + p.eps);
#pragma unroll
        for (int j = 0; j < E / 2; ++j) {
            const float2 g = unpack2<T>(wv[j]);
            e[2 * j] *= r * g.x;
            e[2 * j + 1] *= r * g.y;
        }

        if (lane < RL) {
            const float* cs = p.cache + load_position(p, t) * R;
            if constexpr (NEOX) {
                if (RL == 1) {
                    // R == E: the rotary span is lane 0's own elements, pairs (i, i + E/2).
#pragma unroll
                    for (int i = 0; i < E / 2; ++i) {
                        const float cv = __ldg(cs + i), sv = __ldg(cs + E / 2 + i);
                        const float a = e[i], b = e[i + E / 2];
                        e[i] = a * cv - b * sv;
                        e[i + E / 2] = b * cv + a * sv;
                    }
                } else {
                    const uint32_t mask = RL == 32 ? 0xffffffffu : ((1u << RL) - 1u);
                    const int half_lanes = RL / 2;
#pragma unroll
                    for (int i = 0; i < E; ++i) {
                        float other = __shfl_xor_sync(mask, e[i], half_lanes);
                        if (lane < half_lanes) other = -other;
                        const int d = lane * E + i;
                        const int hi = d < HR ? d : d - HR;
                        e[i] = e[i] * __ldg(cs + hi) + other * __ldg(cs + HR + hi);
                    }
                }
            } else {
#pragma unroll
                for (int i = 0; i < E; i += 2) {
                    const int hi = (lane * E + i) / 2;
                    const float cv = __ldg(cs + hi), sv = __ldg(cs + HR + hi);
                    const float a = e[i], b = e[i + 1];
                    e[i] = a * cv - b * sv;
                    e[i + 1] = b * cv + a * sv;
                }
            }
        }

#pragma unroll
        for (int j = 0; j < E / 2; ++j) xv[j] = pack2<T>(e[2 * j], e[2 * j + 1]);
        store_lane<E, VEC>(x, xv);
    }

    pdl_trigger();
}

// ---------------------------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------------------------

void set_path(kp_call* call, const char* s) { snprintf(call->path, KP_PATH_LEN, "%s", s); }

bool ranks_valid(const kp_call* call) {
    for (uint32_t i = 0; i < call->n_tensors; ++i)
        if (call->tensors[i].rank < 0 || call->tensors[i].rank > KP_MAX_RANK) return false;
    return true;
}

bool shape_nonneg(const kp_tensor& t) {
    for (int d = 0; d < t.rank; ++d)
        if (t.shape[d] < 0) return false;
    return true;
}

bool aligned(const void* p, uintptr_t bytes) { return (reinterpret_cast<uintptr_t>(p) & (bytes - 1)) == 0; }

struct Problem {
    Params p;
    int dtype;  // KP_BF16 / KP_F16
    int D, R;
    bool neox;
    int64_t N, heads;
};

// The support gate, identical to baseline.cu's. On refusal sets call->path and returns
// KP_NOT_SUPPORTED.
int32_t check_call(kp_call* call, Problem* pr) {
    const kp_tensor& q = call->tensors[0];
    const kp_tensor& k = call->tensors[1];
    const kp_tensor& qw = call->tensors[2];
    const kp_tensor& kw = call->tensors[3];
    const kp_tensor& cache = call->tensors[4];
    const kp_tensor& pos = call->tensors[5];
    auto refuse = [&](const char* why) { set_path(call, why); return KP_NOT_SUPPORTED; };

    if (!(q.dtype == KP_BF16 || q.dtype == KP_F16) || k.dtype != q.dtype) return refuse("unsupported:dtype");
    if (q.rank != 3 || k.rank != 3 || !shape_nonneg(q) || !shape_nonneg(k)) return refuse("unsupported:qk_rank");
    const int64_t N = q.shape[0], Hq = q.shape[1], Hk = k.shape[1], D = q.shape[2];
    if (k.shape[0] != N || k.shape[2] != D) return refuse("unsupported:qk_shape");
    if (!(D == 64 || D == 128 || D == 256)) return refuse("unsupported:head_dim");
    if (q.stride[2] != 1 || k.stride[2] != 1) return refuse("unsupported:qk_last_stride");
    int64_t hs = D;
    if (Hq > 1 && Hk > 1 && q.stride[1] != k.stride[1]) return refuse("unsupported:head_stride_mismatch");
    if (Hq > 1) hs = q.stride[1];
    else if (Hk > 1) hs = k.stride[1];
    if (Hq > 0 && N > 0 && q.data == nullptr) return refuse("unsupported:q_null");
    if (Hk > 0 && N > 0 && k.data == nullptr) return refuse("unsupported:k_null");

    for (const kp_tensor* w : {&qw, &kw}) {
        if (w->dtype != q.dtype || w->rank != 1 || w->shape[0] != D || w->stride[0] != 1 || w->data == nullptr)
            return refuse("unsupported:weight");
    }

    if (cache.dtype != KP_F32 || cache.rank != 2 || !shape_nonneg(cache)) return refuse("unsupported:cache");
    const int64_t P = cache.shape[0], R = cache.shape[1];
    if (cache.stride[1] != 1 || (P > 1 && cache.stride[0] != R)) return refuse("unsupported:cache_layout");
    const int64_t E = D / 32;
    if (R <= 0 || R > D || R % E != 0) return refuse("unsupported:rope_dim");
    const double neox_s = call->scalars[0];
    if (!(neox_s == 0.0 || neox_s == 1.0)) return refuse("unsupported:is_neox");
    const bool neox = neox_s == 1.0;
    if (neox) {
        const int64_t rl = R / E;
        if ((rl & (rl - 1)) != 0) return refuse("unsupported:neox_rope_dim");
    }
    if (N > 0 && P > 0 && cache.data == nullptr) return refuse("unsupported:cache_null");

    if (!(pos.dtype == KP_I32 || pos.dtype == KP_I64) || pos.rank != 1 || pos.shape[0] != N ||
        (N > 1 && pos.stride[0] != 1) || (N > 0 && pos.data == nullptr))
        return refuse("unsupported:positions");

    if (N >= (1ll << 31) || Hq + Hk >= (1ll << 31) || N * (Hq + Hk) >= (1ll << 31)) return refuse("unsupported:too_large");

    Params& p = pr->p;
    p.q = q.data;
    p.k = k.data;
    p.qw = qw.data;
    p.kw = kw.data;
    p.cache = static_cast<const float*>(cache.data);
    p.pos = pos.data;
    p.q_tok = q.stride[0];
    p.k_tok = k.stride[0];
    p.head = hs;
    p.hq = static_cast<uint32_t>(Hq);
    p.hk = static_cast<uint32_t>(Hk);
    p.n = static_cast<uint32_t>(N);
    p.rope = static_cast<int32_t>(R);
    p.pos_i64 = pos.dtype == KP_I64 ? 1 : 0;
    p.eps = static_cast<float>(call->scalars[1]);
    pr->dtype = q.dtype;
    pr->D = static_cast<int>(D);
    pr->R = static_cast<int>(R);
    pr->neox = neox;
    pr->N = N;
    pr->heads = Hq + Hk;
    return KP_OK;
}

// SM count and PDL capability of the current device, queried once per device.
bool device_info(int* sms_out, bool* pdl_out) {
    static std::atomic<int> sm_cache[kMaxDevices];
    static std::atomic<int> major_cache[kMaxDevices];
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return false;
    const bool cached = dev >= 0 && dev < kMaxDevices;
    int sms = cached ? sm_cache[dev].load(std::memory_order_relaxed) : 0;
    int major = cached ? major_cache[dev].load(std::memory_order_relaxed) : 0;
    if (sms <= 0 || major <= 0) {
        if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) return false;
        if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return false;
        if (cached) {
            sm_cache[dev].store(sms, std::memory_order_relaxed);
            major_cache[dev].store(major, std::memory_order_relaxed);
        }
    }
    *sms_out = sms;
    *pdl_out = major >= 9;
    return true;
}

int32_t launch_ex(void (*kernel)(Params), dim3 grid, dim3 block, cudaStream_t st, bool pdl, const Params& p) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = 0;
    cfg.stream = st;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = pdl ? 1 : 0;
    const cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, p);
    const cudaError_t last = cudaGetLastError();
    return e == cudaSuccess && last == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
}

// vec8 launch geometry.
struct Vec8Plan {
    int threads;   // LPH * hpb, a multiple of 32
    int units;     // U
    int chunks;    // grid.y
};

Vec8Plan plan_vec8(int D, int64_t N, int64_t heads, int sms) {
    const int lph = D / 8;
    const int heads_per_warp = 32 / lph;
    int64_t hpb = (heads + heads_per_warp - 1) / heads_per_warp * heads_per_warp;
    if (hpb > kMaxThreads / lph) hpb = kMaxThreads / lph;
    const int threads = static_cast<int>(hpb * lph);
    const int64_t passes = (heads + hpb - 1) / hpb;
    // Fewest chunks (most heads per thread) unless that leaves the GPU short of CTAs.
    const int64_t target = static_cast<int64_t>(sms) * (2048 / threads);
    int64_t chunks = (passes + kMaxUnits - 1) / kMaxUnits;
    while (chunks < passes && N * chunks < target) ++chunks;
    const int64_t units = (passes + chunks - 1) / chunks;
    chunks = (passes + units - 1) / units;
    return Vec8Plan{threads, static_cast<int>(units), static_cast<int>(chunks > 65535 ? -1 : chunks)};
}

using KernelFn = void (*)(Params);

template <typename T, int D, bool NEOX>
KernelFn vec8_kernel(int units) {
    switch (units) {
        case 1: return qknorm_rope_vec8_kernel<T, D, NEOX, 1>;
        case 2: return qknorm_rope_vec8_kernel<T, D, NEOX, 2>;
        case 3: return qknorm_rope_vec8_kernel<T, D, NEOX, 3>;
        default: return qknorm_rope_vec8_kernel<T, D, NEOX, 4>;
    }
}

template <typename T, int D, bool NEOX>
KernelFn fallback_kernel(bool vec) {
    return vec ? qknorm_rope_fallback_kernel<T, D, NEOX, true>
               : qknorm_rope_fallback_kernel<T, D, NEOX, false>;
}

template <typename T, int D>
KernelFn pick_kernel(bool fast, bool neox, int units, bool vec) {
    if (fast) return neox ? vec8_kernel<T, D, true>(units) : vec8_kernel<T, D, false>(units);
    return neox ? fallback_kernel<T, D, true>(vec) : fallback_kernel<T, D, false>(vec);
}

template <typename T>
KernelFn pick_kernel_d(int D, bool fast, bool neox, int units, bool vec) {
    switch (D) {
        case 64: return pick_kernel<T, 64>(fast, neox, units, vec);
        case 128: return pick_kernel<T, 128>(fast, neox, units, vec);
        default: return pick_kernel<T, 256>(fast, neox, units, vec);
    }
}

}  // namespace

extern "C" int32_t kp_fused_inplace_qknorm_rope(kp_call* call, void* stream) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != 6 || call->n_scalars != 2 ||
        !ranks_valid(call))
        return KP_INVALID;
    Problem pr{};
    const int32_t gate = check_call(call, &pr);
    if (gate != KP_OK) return gate;
    const Params& p = pr.p;

    // vec8: 16-byte vectors for q, k, weights and cos/sin; lanes wholly rotary or not.
    const bool vec16 = aligned(p.q, 16) && aligned(p.k, 16) && aligned(p.qw, 16) && aligned(p.kw, 16) &&
                       aligned(p.cache, 16) && p.q_tok % 8 == 0 && p.k_tok % 8 == 0 && p.head % 8 == 0;
    const bool rope_ok = pr.neox ? pr.R % 16 == 0 : pr.R % 8 == 0;
    bool fast = vec16 && rope_ok;
    // Fallback: the lane's D/16-byte vector must be aligned, else element-wise accesses.
    const int64_t E = pr.D / 32;
    const uintptr_t vbytes = static_cast<uintptr_t>(E * 2);
    const bool fb_vec = aligned(p.q, vbytes) && aligned(p.k, vbytes) && aligned(p.qw, vbytes) &&
                        aligned(p.kw, vbytes) && p.q_tok % E == 0 && p.k_tok % E == 0 && p.head % E == 0;

    // Plans need the SM count; N == 0 still reports the path it would take.
    int sms = 132;
    bool pdl = false;
    const bool have_info = device_info(&sms, &pdl);
    Vec8Plan plan{0, 0, 0};
    if (fast && pr.heads > 0) {
        plan = plan_vec8(pr.D, pr.N > 0 ? pr.N : 1, pr.heads, sms);
        if (plan.chunks < 0) fast = false;
    }

    char path[KP_PATH_LEN];
    const char* mode = pr.neox ? "neox" : "interleaved";
    const char* span = pr.R == pr.D ? "full" : "partial";
    if (fast) {
        snprintf(path, sizeof path, "vec8_cta_token_d%d_%s_%s_u%d", pr.D, mode, span, plan.units);
    } else {
        snprintf(path, sizeof path, "warp_fallback_d%d_%s_%s_%s", pr.D, mode, span, fb_vec ? "vec" : "scalar");
    }
    set_path(call, path);
    if (pr.N == 0 || pr.heads == 0) return KP_OK;
    if (!have_info) return KP_CUDA_ERROR;

    const KernelFn fn = pr.dtype == KP_BF16 ? pick_kernel_d<bf16>(pr.D, fast, pr.neox, plan.units, fb_vec)
                                            : pick_kernel_d<f16>(pr.D, fast, pr.neox, plan.units, fb_vec);
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    if (fast) {
        const dim3 grid(static_cast<unsigned>(pr.N), static_cast<unsigned>(plan.chunks));
        return launch_ex(fn, grid, dim3(plan.threads), st, pdl, p);
    }
    // Fallback: one warp per work item, no occupancy cap (rare shapes only).
    const int64_t works = pr.N * pr.heads;
    const unsigned grid = static_cast<unsigned>((works + kFbWarps - 1) / kFbWarps);
    return launch_ex(fn, dim3(grid), dim3(kFbThreads), st, pdl, p);
}
