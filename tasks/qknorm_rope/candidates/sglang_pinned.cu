// Baseline for tasks/qknorm_rope: a faithful CUDA port of SGLang's
// python/sglang/jit_kernel/csrc/diffusion/qknorm_rope.cuh (fused_inplace_qknorm_rope, the default
// round_norm_before_rope = false).
//
// "Faithful" means upstream's launch and per-thread work split, so it runs at upstream's speed:
//   * one warp per (token, head) work item, the items ordered token-major with q's heads before
//     k's heads; 256-thread blocks (8 warps);
//   * grid = min(max active blocks per SM (occupancy API) * SM count, ceil(N*(Hq+Hk)/8)) and a
//     grid-stride loop over the work items (32-bit item indices, as upstream);
//   * each lane holds D/32 contiguous elements, loaded and stored as one D/16-byte vector; fp32
//     math; the sum of squares is a 32-lane shuffle reduction; n = x * (rsqrt(ss/D + eps) * w)
//     stays fp32 (not rounded) into the rotation;
//   * lanes below R/(D/32) rotate; they read the position and then cos/sin with __ldg, one scalar
//     load each per rotated pair (non-NeoX) or element (NeoX), once per head; NeoX exchanges the
//     partner half with __shfl_xor over the rotary lanes.
//   * PDL: used, as upstream enables it on sm90+. The kernel is launched with cudaLaunchKernelEx and
//     cudaLaunchAttributeProgrammaticStreamSerialization when the device is sm90 or newer; it
//     executes griddepcontrol.wait before touching memory and griddepcontrol.launch_dependents
//     after its last store (upstream's PDLWaitPrimary / PDLTriggerSecondary).
//   * occupancy and SM count are queried once per (kernel, device) and cached, as upstream caches
//     them in statics.
//
// Deliberate differences from upstream, none of them visible in results or in production timing:
//   * rope_dim is a template constant only when R == D (every production row); partial rotary
//     reads R at run time instead of instantiating a kernel per R;
//   * NeoX with R == D/32 (one rotary lane; upstream static_asserts it away although the documented
//     gate admits it) rotates inside that lane;
//   * bases or strides that are not aligned to the lane's vector width (upstream would fault)
//     take the same kernel with element-wise 2-byte accesses ("_scalar" paths);
//   * a head stride is only compared where that tensor has more than one head (PyTorch may report
//     any stride for a size-1 dim).

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

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxDevices = 64;

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

// Two 16-bit values packed in a 32-bit word (element 2i in the low half) <-> two floats.
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

// A lane's E contiguous 16-bit elements as E/2 words: one E*2-byte vector access, or (VEC false)
// element-wise 2-byte accesses for bases and strides that are not aligned to the vector.
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

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// ---------------------------------------------------------------------------------------------
// The kernel: one warp per (token, head), grid-stride over the N*(Hq+Hk) items.
// FULL: R == D as a compile-time constant (all rotary lanes); otherwise R = p.rope.
// ---------------------------------------------------------------------------------------------

template <typename T, typename IdT, int D, bool NEOX, bool FULL, bool VEC>
__global__ void __launch_bounds__(kThreads) qknorm_rope_warp_kernel(const __grid_constant__ Params p) {
    constexpr int E = D / 32;  // elements per lane
    static_assert(E % 2 == 0, "a lane owns whole pairs");
    const int R = FULL ? D : p.rope;
    const int RL = FULL ? 32 : R / E;  // lanes holding rotary dims
    const int HR = R / 2;

    const uint32_t lane = threadIdx.x % 32;
    const uint32_t warp = threadIdx.x / 32;
    const uint32_t heads = p.hq + p.hk;
    const uint32_t works = heads * p.n;
    const uint32_t n_workers = gridDim.x * kWarps;

    pdl_wait();

    for (uint32_t idx = blockIdx.x * kWarps + warp; idx < works; idx += n_workers) {
        const uint32_t t = idx / heads;
        const uint32_t h = idx % heads;
        const bool is_q = h < p.hq;
        T* x = is_q ? static_cast<T*>(p.q) + static_cast<int64_t>(t) * p.q_tok + static_cast<int64_t>(h) * p.head
                    : static_cast<T*>(p.k) + static_cast<int64_t>(t) * p.k_tok +
                          static_cast<int64_t>(h - p.hq) * p.head;
        x += lane * E;
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
        ss = warp_sum(ss);
        const float r = rsqrtf(ss / static_cast<float>(D) + p.eps);
#pragma unroll
        for (int j = 0; j < E / 2; ++j) {
            const float2 g = unpack2<T>(wv[j]);
            e[2 * j] *= r * g.x;
            e[2 * j + 1] *= r * g.y;
        }

        if (static_cast<int>(lane) < RL) {
            const int64_t pos = static_cast<int64_t>(static_cast<const IdT*>(p.pos)[t]);
            const float* cs = p.cache + pos * R;
            if constexpr (NEOX) {
                if (RL == 1) {
                    // R == E: the whole rotary span lives in lane 0; pairs (i, i + E/2).
#pragma unroll
                    for (int i = 0; i < E / 2; ++i) {
                        const float c = __ldg(cs + i), s = __ldg(cs + E / 2 + i);
                        const float a = e[i], b = e[i + E / 2];
                        e[i] = a * c - b * s;
                        e[i + E / 2] = b * c + a * s;
                    }
                } else {
                    const uint32_t mask = RL == 32 ? 0xffffffffu : ((1u << RL) - 1u);
                    const int half_lanes = RL / 2;
#pragma unroll
                    for (int i = 0; i < E; ++i) {
                        float other = __shfl_xor_sync(mask, e[i], half_lanes);
                        if (static_cast<int>(lane) < half_lanes) other = -other;
                        const int d = static_cast<int>(lane) * E + i;
                        const int hi = d < HR ? d : d - HR;
                        const float c = __ldg(cs + hi), s = __ldg(cs + HR + hi);
                        e[i] = e[i] * c + other * s;
                    }
                }
            } else {
#pragma unroll
                for (int i = 0; i < E; i += 2) {
                    const int hi = (static_cast<int>(lane) * E + i) / 2;
                    const float c = __ldg(cs + hi), s = __ldg(cs + HR + hi);
                    const float a = e[i], b = e[i + 1];
                    e[i] = a * c - b * s;
                    e[i + 1] = b * c + a * s;
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

// Everything the support gate decides, shared by every path.
struct Problem {
    Params p;
    int dtype;     // KP_BF16 / KP_F16
    int id_dtype;  // KP_I32 / KP_I64
    int D, R;
    bool neox;
    int64_t N, heads;
};

// The support gate. On refusal sets call->path and returns KP_NOT_SUPPORTED.
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
    // The head stride is shared by q and k (upstream's single head_stride); it only exists where a
    // tensor has more than one head.
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

    // 32-bit work-item indices, as upstream.
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
    p.eps = static_cast<float>(call->scalars[1]);
    pr->dtype = q.dtype;
    pr->id_dtype = pos.dtype;
    pr->D = static_cast<int>(D);
    pr->R = static_cast<int>(R);
    pr->neox = neox;
    pr->N = N;
    pr->heads = Hq + Hk;
    return KP_OK;
}

// SM count and PDL capability of the current device, queried once per device.
bool device_info(int* dev_out, int* sms_out, bool* pdl_out) {
    static std::atomic<int> sm_cache[kMaxDevices];
    static std::atomic<int> major_cache[kMaxDevices];
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return false;
    int sms = dev >= 0 && dev < kMaxDevices ? sm_cache[dev].load(std::memory_order_relaxed) : 0;
    int major = dev >= 0 && dev < kMaxDevices ? major_cache[dev].load(std::memory_order_relaxed) : 0;
    if (sms <= 0 || major <= 0) {
        if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) return false;
        if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return false;
        if (dev >= 0 && dev < kMaxDevices) {
            sm_cache[dev].store(sms, std::memory_order_relaxed);
            major_cache[dev].store(major, std::memory_order_relaxed);
        }
    }
    *dev_out = dev;
    *sms_out = sms;
    *pdl_out = major >= 9;
    return true;
}

cudaError_t launch_ex(void (*kernel)(Params), dim3 grid, dim3 block, cudaStream_t st, bool pdl, const Params& p) {
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
    return cudaLaunchKernelEx(&cfg, kernel, p);
}

template <typename T, typename IdT, int D, bool NEOX, bool FULL, bool VEC>
int32_t launch(const Problem& pr, cudaStream_t st) {
    auto kernel = qknorm_rope_warp_kernel<T, IdT, D, NEOX, FULL, VEC>;
    static std::atomic<int> occ_cache[kMaxDevices];
    int dev = 0, sms = 0;
    bool pdl = false;
    if (!device_info(&dev, &sms, &pdl)) return KP_CUDA_ERROR;
    int occ = dev >= 0 && dev < kMaxDevices ? occ_cache[dev].load(std::memory_order_relaxed) : 0;
    if (occ <= 0) {
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, kernel, kThreads, 0) != cudaSuccess) return KP_CUDA_ERROR;
        if (occ < 1) occ = 1;
        if (dev >= 0 && dev < kMaxDevices) occ_cache[dev].store(occ, std::memory_order_relaxed);
    }
    const int64_t works = pr.N * pr.heads;
    const int64_t needed = (works + kWarps - 1) / kWarps;
    const int64_t max_blocks = static_cast<int64_t>(occ) * sms;
    const unsigned grid = static_cast<unsigned>(needed < max_blocks ? needed : max_blocks);
    const cudaError_t e = launch_ex(kernel, dim3(grid), dim3(kThreads), st, pdl, pr.p);
    const cudaError_t last = cudaGetLastError();
    return e == cudaSuccess && last == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
}

template <typename T, typename IdT, int D, bool NEOX>
int32_t dispatch_variant(const Problem& pr, bool full, bool vec, cudaStream_t st) {
    if (vec && full) return launch<T, IdT, D, NEOX, true, true>(pr, st);
    if (vec) return launch<T, IdT, D, NEOX, false, true>(pr, st);
    return launch<T, IdT, D, NEOX, false, false>(pr, st);
}

template <typename T, typename IdT>
int32_t dispatch_d(const Problem& pr, bool full, bool vec, cudaStream_t st) {
    switch (pr.D) {
        case 64:
            return pr.neox ? dispatch_variant<T, IdT, 64, true>(pr, full, vec, st)
                           : dispatch_variant<T, IdT, 64, false>(pr, full, vec, st);
        case 128:
            return pr.neox ? dispatch_variant<T, IdT, 128, true>(pr, full, vec, st)
                           : dispatch_variant<T, IdT, 128, false>(pr, full, vec, st);
        default:
            return pr.neox ? dispatch_variant<T, IdT, 256, true>(pr, full, vec, st)
                           : dispatch_variant<T, IdT, 256, false>(pr, full, vec, st);
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

    // Vector accesses need the lane's D/16-byte vector aligned for q, k and both weights.
    const int64_t E = pr.D / 32;
    const uintptr_t vbytes = static_cast<uintptr_t>(E * 2);
    const Params& p = pr.p;
    const bool vec = aligned(p.q, vbytes) && aligned(p.k, vbytes) && aligned(p.qw, vbytes) && aligned(p.kw, vbytes) &&
                     p.q_tok % E == 0 && p.k_tok % E == 0 && p.head % E == 0;
    const bool full = pr.R == pr.D;

    char path[KP_PATH_LEN];
    snprintf(path, sizeof path, "warp_grid_stride_d%d_%s_%s_%s", pr.D, pr.neox ? "neox" : "interleaved",
             full ? "full" : "partial", vec ? "vec" : "scalar");
    set_path(call, path);
    if (pr.N == 0 || pr.heads == 0) return KP_OK;

    cudaStream_t st = static_cast<cudaStream_t>(stream);
    if (pr.dtype == KP_BF16) {
        return pr.id_dtype == KP_I64 ? dispatch_d<bf16, int64_t>(pr, full, vec, st)
                                     : dispatch_d<bf16, int32_t>(pr, full, vec, st);
    }
    return pr.id_dtype == KP_I64 ? dispatch_d<f16, int64_t>(pr, full, vec, st)
                                 : dispatch_d<f16, int32_t>(pr, full, vec, st);
}
