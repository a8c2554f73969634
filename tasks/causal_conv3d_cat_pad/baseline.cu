// Baseline for tasks/causal_conv3d_cat_pad: a CUDA port of what SGLang 0.5.23 runs on NVIDIA GPUs.
//
//   out = F.pad(cat([cache_x, x], dim=2), [wl, wr, ht, hb, dl - cache_t, dr])   (zero fill, NCTHW)
//
// Lineage (package sglang 0.5.23 from PyPI, wheel sglang-0.5.23-cp311-cp311-manylinux_2_34_x86_64.whl;
// paths relative to the unpacked wheel):
//   * Dispatch: sglang/multimodal_gen/runtime/layers/parallel_conv.py, causal_conv3d_cat_pad() ->
//     _can_fuse_causal_conv3d_cat_pad() -> fused_causal_conv3d_cat_pad(): on CUDA it calls
//     sglang/kernels/kda_kernels/causal_conv3d_cat_pad_jit.py:fused_causal_conv3d_cat_pad_cuda when
//     can_use_fused_causal_conv3d_cat_pad_cuda() holds (dtype fp16/bf16/fp32, dl >= cache_t, dr == 0,
//     output numel % (16 / sizeof(elem)) == 0), and the Triton kernel
//     sglang/kernels/ops/diffusion/layout/causal_conv3d_cat_pad_triton.py (_fused_cat_pad_5d_kernel)
//     otherwise, or after the CUDA call raised once.
//   * CUDA kernel: sglang/kernels/kda_kernels/csrc/diffusion/causal_conv3d_cat_pad.cuh, host struct
//     sglang::causal_conv3d_cat_pad::CausalConv3dCatPadKernel<T>::run (T = fp16_t / bf16_t / fp32_t),
//     launcher launch_cat_pad_flat<ET, kVec>, kernel cat_pad_flat_kernel<ET, kVec> with
//     ET = uint16_t, kVec = 8 for 16-bit dtypes and ET = uint32_t, kVec = 4 for fp32 (kVec = 16 /
//     sizeof(T)); the 16-byte pack is device::AlignedVector<ET, kVec> (sgl_kernel/vec.cuh), the
//     loads SGLANG_LDG = __ldg (sgl_kernel/utils.cuh).
//   * Launch: block 256 threads (kBlockSize, __launch_bounds__(256)), one thread per 16-byte output
//     vector, grid = div_ceil(total / kVec, 256) (cast to uint32), no dynamic shared memory, no PDL
//     attribute (host::LaunchKernel without enable_pdl), a grid-stride loop over the vectors.
//     Every index is int64: the vector's first element is decoded (w, h, t, c, n) with 64-bit
//     div/mod by the runtime output sizes, then the kVec elements walk forward with carries; the
//     source row pointer (cache or x, C-contiguous formula) is recomputed at each row change; each
//     element is one scalar __ldg or a zero; the kVec elements leave in one 16-byte store.
//   * Host checks (TensorMatcher + RuntimeCheck) that throw, which the Python caller catches and
//     answers with the Triton kernel: x, cache_x and out 5-D, same dtype, contiguous; symmetric H and
//     W padding; dl >= cache_t; dr == 0; output sizes consistent; numel % kVec == 0; out 16-byte
//     aligned. A zero-size output launches nothing.
//
// This file:
//   * kda_flat_kernel<ET, kVec>: the CUDA kernel above, same arguments, same arithmetic, same
//     launch ("kda_flat256_vec8" / "kda_flat256_vec4").
//   * triton_flat_kernel<E, P, Idx>: 0.5.23's Triton fallback _fused_cat_pad_5d_kernel, taken where
//     0.5.23 takes it (numel % kVec != 0, or an output not 16-byte aligned): flat over the output,
//     256 elements per program, num_warps 4 (128 threads x 2 adjacent elements, Triton's layout for
//     the vectorised store), runtime sizes (not constexpr in 0.5.23), int32 index math
//     ("triton_fallback_flat256_i32"; int64 above 2^31 output elements: "..._i64", where Triton's
//     int32 program offsets would overflow), both masked loads then a select.
//
// Deliberate differences from upstream, none visible in a contiguous result:
//   * Absent cache_x (no cache) runs as cache_t = 0, i.e. as 0.5.23's entry called with an empty
//     [N, C, 0, H, W] cache (its model caller never fuses without a cache: it runs F.pad alone).
//   * Non-contiguous x or cache_x: 0.5.23's model caller does not fuse them (torch.cat + F.pad), its
//     CUDA entry refuses them and its Triton kernel ignores strides. Here they run the fallback's
//     flat kernel reading through the strides ("strided_flat256_i64"), which is what the aten chain
//     computes. Only regression rows take this path.
//   * 0.5.23's model caller also runs torch.cat + F.pad (no fusion) when wl == ht == 0; the entry
//     point fuses it, and so does this file.

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kpilot_abi.h"

namespace {

// ---------------------------------------------------------------------------------------------
// 0.5.23 CUDA path: causal_conv3d_cat_pad.cuh
// ---------------------------------------------------------------------------------------------

constexpr int kKdaBlock = 256;  // kBlockSize

// kVec raw elements, aligned to their total size (16 bytes), stored with one wide store.
template <typename ET, int kVec>
struct alignas(sizeof(ET) * kVec) VecPack {
    ET e[kVec];
};

// Address of source row (ob, oc, src_t, ih) in cache_x (src_t < cache_t) or x, C-contiguous.
template <typename ET>
__device__ __forceinline__ const ET* source_row(const ET* x, const ET* cache, int64_t ob, int64_t oc, int64_t src_t,
                                                int64_t ih, int64_t channels, int64_t t_size, int64_t h_size,
                                                int64_t w_size, int64_t cache_t) {
    if (src_t < cache_t) return cache + (((ob * channels + oc) * cache_t + src_t) * h_size + ih) * w_size;
    return x + (((ob * channels + oc) * t_size + (src_t - cache_t)) * h_size + ih) * w_size;
}

template <typename ET, int kVec>
__global__ void __launch_bounds__(kKdaBlock)
    kda_flat_kernel(const ET* __restrict__ x, const ET* __restrict__ cache, ET* __restrict__ out, int64_t total_vecs,
                    int64_t channels, int64_t t_size, int64_t h_size, int64_t w_size, int64_t cache_t, int64_t out_t,
                    int64_t out_h, int64_t out_w, int64_t pad_d_left, int64_t pad_h_top, int64_t pad_w_left) {
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t v = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; v < total_vecs; v += step) {
        // Decode the vector's first output element.
        const int64_t first = v * kVec;
        int64_t ow = first % out_w;
        int64_t rest = first / out_w;
        int64_t oh = rest % out_h;
        rest /= out_h;
        int64_t od = rest % out_t;
        rest /= out_t;
        int64_t oc = rest % channels;
        int64_t ob = rest / channels;

        int64_t ih = oh - pad_h_top;
        int64_t src_t = od - pad_d_left;
        bool in_row = ih >= 0 && ih < h_size && src_t >= 0 && src_t < cache_t + t_size;
        const ET* row = in_row ? source_row(x, cache, ob, oc, src_t, ih, channels, t_size, h_size, w_size, cache_t)
                               : nullptr;

        VecPack<ET, kVec> pack;
#pragma unroll
        for (int k = 0; k < kVec; ++k) {
            ET val = ET(0);
            if (in_row) {
                const int64_t iw = ow - pad_w_left;
                if (iw >= 0 && iw < w_size) val = __ldg(row + iw);
            }
            pack.e[k] = val;

            // Next element: carry w -> h -> t -> c -> n; a new output row has a new source row.
            ++ow;
            if (ow == out_w) {
                ow = 0;
                ++oh;
                if (oh == out_h) {
                    oh = 0;
                    ++od;
                    if (od == out_t) {
                        od = 0;
                        ++oc;
                        if (oc == channels) {
                            oc = 0;
                            ++ob;
                        }
                    }
                }
                ih = oh - pad_h_top;
                src_t = od - pad_d_left;
                in_row = ih >= 0 && ih < h_size && src_t >= 0 && src_t < cache_t + t_size;
                row = in_row ? source_row(x, cache, ob, oc, src_t, ih, channels, t_size, h_size, w_size, cache_t)
                             : nullptr;
            }
        }
        reinterpret_cast<VecPack<ET, kVec>*>(out)[v] = pack;
    }
}

struct Geometry {
    const void* x;
    const void* cache;
    void* out;
    int64_t total;
    int64_t C, T, H, W, cache_t;
    int64_t T_out, H_out, W_out;
    int64_t dpad, ht, wl;
    int64_t xs[5], cs[5];  // element strides of x / cache_x (strided fallback only)
};

template <typename ET, int kVec>
void launch_kda(const Geometry& g, cudaStream_t st) {
    const int64_t total_vecs = g.total / kVec;
    const uint32_t grid = static_cast<uint32_t>((total_vecs + kKdaBlock - 1) / kKdaBlock);
    kda_flat_kernel<ET, kVec><<<grid, kKdaBlock, 0, st>>>(
        static_cast<const ET*>(g.x), static_cast<const ET*>(g.cache), static_cast<ET*>(g.out), total_vecs, g.C, g.T, g.H,
        g.W, g.cache_t, g.T_out, g.H_out, g.W_out, g.dpad, g.ht, g.wl);
}

// ---------------------------------------------------------------------------------------------
// 0.5.23 Triton fallback: layout/causal_conv3d_cat_pad_triton.py, _fused_cat_pad_5d_kernel
// (and, with kStrided, the same walk reading non-contiguous sources through their strides).
// ---------------------------------------------------------------------------------------------

constexpr int kTritonBlock = 256;   // block_size
constexpr int kTritonThreads = 128; // default num_warps = 4
constexpr int kTritonPerThread = kTritonBlock / kTritonThreads;
static_assert(kTritonPerThread == 2, "two adjacent output elements per thread");

// Output element i (i < total): its raw bits.
template <typename E, typename Idx, bool kStrided>
__device__ __forceinline__ E triton_element(const Geometry& g, Idx i) {
    const Idx out_w = static_cast<Idx>(g.W_out), out_h = static_cast<Idx>(g.H_out), out_t = static_cast<Idx>(g.T_out);
    const Idx channels = static_cast<Idx>(g.C);
    const Idx ow = i % out_w;
    Idx rest = i / out_w;
    const Idx oh = rest % out_h;
    rest = rest / out_h;
    const Idx od = rest % out_t;
    rest = rest / out_t;
    const Idx oc = rest % channels;
    const Idx ob = rest / channels;

    const Idx t_size = static_cast<Idx>(g.T), h_size = static_cast<Idx>(g.H), w_size = static_cast<Idx>(g.W);
    const Idx cache_t = static_cast<Idx>(g.cache_t);
    const Idx iw = ow - static_cast<Idx>(g.wl);
    const Idx ih = oh - static_cast<Idx>(g.ht);
    const Idx src_t = od - static_cast<Idx>(g.dpad);
    const bool valid = iw >= 0 && iw < w_size && ih >= 0 && ih < h_size && src_t >= 0 && src_t < cache_t + t_size;
    const bool from_cache = src_t < cache_t;
    const Idx x_t = src_t - cache_t;

    const E* xp = static_cast<const E*>(g.x);
    const E* cp = static_cast<const E*>(g.cache);
    E xv = 0, cv = 0;
    if constexpr (kStrided) {
        if (valid && !from_cache)
            xv = __ldg(xp + (ob * g.xs[0] + oc * g.xs[1] + x_t * g.xs[2] + ih * g.xs[3] + iw * g.xs[4]));
        if (valid && from_cache)
            cv = __ldg(cp + (ob * g.cs[0] + oc * g.cs[1] + src_t * g.cs[2] + ih * g.cs[3] + iw * g.cs[4]));
    } else {
        if (valid && !from_cache) xv = __ldg(xp + ((((ob * channels + oc) * t_size + x_t) * h_size + ih) * w_size + iw));
        if (valid && from_cache) cv = __ldg(cp + ((((ob * channels + oc) * cache_t + src_t) * h_size + ih) * w_size + iw));
    }
    return from_cache ? cv : xv;
}

// E: the element as a raw word (uint16 for bf16/fp16, uint32 for fp32); P: two of them.
template <typename E, typename P, typename Idx, bool kStrided>
__global__ void __launch_bounds__(kTritonThreads) triton_flat_kernel(Geometry g, int pair_store) {
    const Idx total = static_cast<Idx>(g.total);
    const Idx i0 = static_cast<Idx>(blockIdx.x) * kTritonBlock + static_cast<Idx>(threadIdx.x) * kTritonPerThread;
    if (i0 >= total) return;
    const bool has1 = i0 + 1 < total;
    const E v0 = triton_element<E, Idx, kStrided>(g, i0);
    const E v1 = has1 ? triton_element<E, Idx, kStrided>(g, i0 + 1) : E(0);
    E* op = static_cast<E*>(g.out) + i0;
    if (has1 && pair_store) {
        // i0 is even, so the pair is word-aligned when the base is.
        constexpr int kShift = 8 * static_cast<int>(sizeof(E));
        *reinterpret_cast<P*>(op) = static_cast<P>(v0) | (static_cast<P>(v1) << kShift);
    } else {
        op[0] = v0;
        if (has1) op[1] = v1;
    }
}

template <typename E, typename P>
void launch_triton(const Geometry& g, bool idx32, bool strided, int pair_store, cudaStream_t st) {
    const unsigned blocks = static_cast<unsigned>((g.total + kTritonBlock - 1) / kTritonBlock);
    if (strided) triton_flat_kernel<E, P, int64_t, true><<<blocks, kTritonThreads, 0, st>>>(g, pair_store);
    else if (idx32) triton_flat_kernel<E, P, int32_t, false><<<blocks, kTritonThreads, 0, st>>>(g, pair_store);
    else triton_flat_kernel<E, P, int64_t, false><<<blocks, kTritonThreads, 0, st>>>(g, pair_store);
}

// ---------------------------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------------------------

void set_path(kp_call* call, const char* s) { snprintf(call->path, KP_PATH_LEN, "%s", s); }

bool is_float_dt(int dt) { return dt == KP_BF16 || dt == KP_F16 || dt == KP_F32; }

bool ranks_valid(const kp_call* call) {
    for (uint32_t i = 0; i < call->n_tensors; ++i)
        if (call->tensors[i].rank < 0 || call->tensors[i].rank > KP_MAX_RANK) return false;
    return true;
}

// Row-major contiguous, ignoring the strides of size-1 dims (torch's is_contiguous).
bool is_contiguous(const kp_tensor& t) {
    int64_t expect = 1;
    for (int d = t.rank - 1; d >= 0; --d) {
        if (t.shape[d] == 0) return true;
        if (t.shape[d] != 1 && t.stride[d] != expect) return false;
        expect *= t.shape[d];
    }
    return true;
}

// A padding scalar: integral, 0 <= v < 2^31.
bool pad_value(double v, int64_t* out) {
    if (!(v >= 0.0 && v < 2147483648.0) || v != floor(v)) return false;
    *out = static_cast<int64_t>(v);
    return true;
}

constexpr int64_t kDimMax = (1ll << 31) - 1;

// 5-D source (x or cache_x) of sizes <= 2^31 - 1 with non-negative strides; strides of size-1
// dims are irrelevant and read as 0. Element count into *numel (no overflow: checked).
bool source_ok(const kp_tensor& t, int64_t strides[5], int64_t* numel) {
    int64_t n = 1;
    for (int d = 0; d < 5; ++d) {
        if (t.shape[d] < 0 || t.shape[d] > kDimMax) return false;
        if (t.shape[d] != 0 && n > INT64_MAX / t.shape[d]) return false;
        n *= t.shape[d];
    }
    int64_t span = 0;  // largest offset reachable, must fit int64
    for (int d = 0; d < 5; ++d) {
        strides[d] = t.shape[d] <= 1 ? 0 : t.stride[d];
        if (strides[d] < 0) return false;
        if (t.shape[d] > 1 && strides[d] > 0 && (t.shape[d] - 1) > (INT64_MAX / 4 - span) / strides[d]) return false;
        if (t.shape[d] > 1) span += (t.shape[d] - 1) * strides[d];
    }
    if (n > 0 && t.data == nullptr) return false;
    *numel = n;
    return true;
}

bool ptr_aligned(const void* p, int64_t bytes) { return (reinterpret_cast<uintptr_t>(p) % static_cast<uintptr_t>(bytes)) == 0; }

}  // namespace

extern "C" {

int32_t kp_fused_causal_conv3d_cat_pad(kp_call* call, void* stream) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != 3 || call->n_scalars != 6 ||
        !ranks_valid(call))
        return KP_INVALID;
    const kp_tensor& x = call->tensors[0];
    const kp_tensor& cx = call->tensors[1];
    const kp_tensor& out = call->tensors[2];

    int64_t wl, wr, ht, hb, dl, dr;
    if (!pad_value(call->scalars[0], &wl) || !pad_value(call->scalars[1], &wr) || !pad_value(call->scalars[2], &ht) ||
        !pad_value(call->scalars[3], &hb) || !pad_value(call->scalars[4], &dl) || !pad_value(call->scalars[5], &dr)) {
        set_path(call, "unsupported:padding_value");
        return KP_NOT_SUPPORTED;
    }
    // Upstream's dtypes: fp16, bf16, fp32 (_SUPPORTED_DTYPES; TensorMatcher with_dtype<T>).
    if (!is_float_dt(x.dtype) || x.rank != 5) { set_path(call, "unsupported:x"); return KP_NOT_SUPPORTED; }
    Geometry g{};
    int64_t x_numel = 0, c_numel = 0;
    if (!source_ok(x, g.xs, &x_numel)) { set_path(call, "unsupported:x_layout"); return KP_NOT_SUPPORTED; }
    const int64_t N = x.shape[0], C = x.shape[1], T = x.shape[2], H = x.shape[3], W = x.shape[4];
    int64_t cache_t = 0;
    const bool has_cache = cx.dtype != KP_ABSENT;
    if (has_cache) {
        // TensorMatcher({batch, channels, cache_t, h_size, w_size}).with_dtype<T>()
        if (cx.dtype != x.dtype || cx.rank != 5 || cx.shape[0] != N || cx.shape[1] != C || cx.shape[3] != H ||
            cx.shape[4] != W || !source_ok(cx, g.cs, &c_numel)) {
            set_path(call, "unsupported:cache_x");
            return KP_NOT_SUPPORTED;
        }
        cache_t = cx.shape[2];
    }
    // RuntimeCheck: dl >= cache_t, dr == 0, wl == wr, ht == hb (the Triton entry asserts the same).
    if (dl < cache_t || dr != 0 || wl != wr || ht != hb) { set_path(call, "unsupported:padding"); return KP_NOT_SUPPORTED; }
    const int64_t dpad = dl - cache_t;
    const int64_t T_out = dpad + cache_t + T + dr, H_out = H + ht + hb, W_out = W + wl + wr;
    if (T_out > kDimMax || H_out > kDimMax || W_out > kDimMax) { set_path(call, "unsupported:too_large"); return KP_NOT_SUPPORTED; }
    // RuntimeCheck out_t / out_h / out_w; TensorMatcher: out same dtype, contiguous.
    if (out.dtype != x.dtype || out.rank != 5 || out.shape[0] != N || out.shape[1] != C || out.shape[2] != T_out ||
        out.shape[3] != H_out || out.shape[4] != W_out || !is_contiguous(out)) {
        set_path(call, "unsupported:out_shape_or_layout");
        return KP_NOT_SUPPORTED;
    }
    // Output elements: at most 2^39, so every grid below fits (checked again before launching).
    int64_t total = 1;
    const int64_t odims[5] = {N, C, T_out, H_out, W_out};
    bool empty = false;
    for (int d = 0; d < 5; ++d) empty = empty || odims[d] == 0;
    if (!empty) {
        for (int d = 0; d < 5; ++d) {
            if (total > (1ll << 39) / odims[d]) { set_path(call, "unsupported:too_large"); return KP_NOT_SUPPORTED; }
            total *= odims[d];
        }
    } else {
        total = 0;
    }
    const int64_t es = x.dtype == KP_F32 ? 4 : 2;
    if ((total > 0 && out.data == nullptr) || !ptr_aligned(out.data, es) || !ptr_aligned(x.data, es) ||
        (has_cache && !ptr_aligned(cx.data, es))) {
        set_path(call, "unsupported:pointer");
        return KP_NOT_SUPPORTED;
    }
    if ((total + kTritonBlock - 1) / kTritonBlock > kDimMax) { set_path(call, "unsupported:too_large"); return KP_NOT_SUPPORTED; }

    // Which of 0.5.23's paths this call takes.
    const int64_t kvec = 16 / es;  // 16 / sizeof(T)
    const bool sources_contig = is_contiguous(x) && (!has_cache || is_contiguous(cx));
    const bool kda = sources_contig && total % kvec == 0 && ptr_aligned(out.data, 16);
    const bool idx32 = total <= kDimMax;
    char path[KP_PATH_LEN];
    if (!sources_contig) snprintf(path, sizeof path, "strided_flat256_i64");
    else if (kda) snprintf(path, sizeof path, "kda_flat256_vec%d", static_cast<int>(kvec));
    else snprintf(path, sizeof path, "triton_fallback_flat256_%s", idx32 ? "i32" : "i64");
    if (!has_cache) strncat(path, "_nocache", sizeof path - strlen(path) - 1);
    set_path(call, path);
    if (total == 0) return KP_OK;  // upstream: total == 0 returns before launching

    g.x = x.data;
    g.cache = has_cache ? cx.data : nullptr;
    g.out = out.data;
    g.total = total;
    g.C = C; g.T = T; g.H = H; g.W = W; g.cache_t = cache_t;
    g.T_out = T_out; g.H_out = H_out; g.W_out = W_out;
    g.dpad = dpad; g.ht = ht; g.wl = wl;
    (void)x_numel;
    (void)c_numel;

    cudaStream_t st = static_cast<cudaStream_t>(stream);
    if (kda) {
        if (es == 2) launch_kda<uint16_t, 8>(g, st);
        else launch_kda<uint32_t, 4>(g, st);
    } else {
        const int pair_store = ptr_aligned(out.data, 2 * es) ? 1 : 0;
        if (es == 2) launch_triton<uint16_t, uint32_t>(g, idx32, !sources_contig, pair_store, st);
        else launch_triton<uint32_t, uint64_t>(g, idx32, !sources_contig, pair_store, st);
    }
    return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
}

}  // extern "C"
