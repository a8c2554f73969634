// Baseline for tasks/causal_conv3d_cat_pad: a faithful CUDA port of SGLang's Triton
// python/sglang/jit_kernel/diffusion/triton/causal_conv3d_pad.py
// (fused_causal_conv3d_cat_pad -> _fused_cat_pad_5d_kernel).
//
//   out = F.pad(cat([cache_x, x], dim=2), [wl, wr, ht, hb, dl - cache_t, dr])   (zero fill)
//
// Upstream launch: flat over the OUTPUT, BLOCK = 256 elements per program, grid cdiv(total, 256),
// default num_warps = 4. Every element decodes (n, c, t, h, w) from its flat index with div/mod,
// decides pad / cache / x and issues one masked scalar load (or none) and one store.
//
// Port choices (faithful in work split and access pattern, so it runs at upstream's speed):
//   * 128 threads per program, each owning 2 adjacent output elements (Triton's blocked layout for
//     a 256-element arange with 4 warps: the store's coalescing gives sizePerThread = 2).
//   * Loads are scalar, one per element, predicated on the source (cache or x) - no vectorisation,
//     because the gathered offsets have no provable contiguity.
//   * The pair of output elements is stored as one 2-element word when the output base allows it
//     (Triton vectorises the store, its offsets are contiguous and the pointer 16-byte aligned).
//   * Every size is a tl.constexpr upstream: Triton JIT-compiles the kernel once per shape, so its
//     int32 div/mod are by compile-time constants. The production shapes are compiled the same way
//     here (cat_pad_const_kernel: every size a template constant, signed int32 math, both masked
//     loads then a select, as upstream's kernel body). Other shapes use host-computed magic
//     numbers for the same decode (32-bit indexing, as Triton's int32 offsets).
//
// Deliberate differences from upstream, all invisible in the results of contiguous inputs:
//   * x and cache_x are read through their strides (upstream ignores strides, so non-contiguous
//     sources are undefined there). Contiguous sources keep the C-contiguous int32 formula
//     ("contig_i32"); other sources use 64-bit strided offsets with the same 32-bit decode
//     ("strided_i32decode"); outputs of 2^31 elements or more decode in 64 bits ("strided_i64").
//   * cache_x may be absent (cache_t = 0).

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <type_traits>

#include "kpilot_abi.h"

namespace {

constexpr int kBlock = 256;    // Triton BLOCK (elements per program)
constexpr int kThreads = 128;  // num_warps = 4
constexpr int kPerThread = kBlock / kThreads;
static_assert(kPerThread == 2, "two adjacent output elements per thread");

// ---------------------------------------------------------------------------------------------
// Division by a runtime-invariant divisor (what Triton's constexpr sizes compile to).
//   q = (umulhi(n, m) + n) >> s,  exact for 0 <= n < 2^31 and 1 <= d < 2^31.
// ---------------------------------------------------------------------------------------------

struct FastDiv {
    uint32_t d, m, s;
};

FastDiv make_fastdiv(uint32_t d) {
    FastDiv f{d, 0u, 0u};
    uint32_t s = 0;
    while ((1ull << s) < d) ++s;
    f.s = s;
    f.m = static_cast<uint32_t>((((1ull << s) - d) << 32) / d + 1ull);
    return f;
}

__device__ __forceinline__ uint32_t fdiv(uint32_t n, const FastDiv& f) { return (__umulhi(n, f.m) + n) >> f.s; }

// ---------------------------------------------------------------------------------------------
// Kernel
// ---------------------------------------------------------------------------------------------

struct Args {
    const void* x;
    const void* cache;
    void* out;
    int64_t total;
    int64_t C, T, H, W, cache_t;
    int64_t T_out, H_out, W_out;
    int64_t dpad, ht, wl;
    int64_t xs[5], cs[5];      // element strides of x / cache_x (strided path)
    FastDiv fw, fh, ft, fc;    // W_out, H_out, T_out, C (32-bit decode)
    int pair_store;            // out base aligned to a 2-element word
};

// Index modes: the element's flat index decoded in 32 bits (Triton's int32 offsets, total < 2^31)
// or 64 bits; sources addressed by the C-contiguous int32 formula or by 64-bit strides.
enum Mode : int { kContigI32 = 0, kStridedI32 = 1, kStridedI64 = 2 };

// One output element at flat index i (already known < total): its value's bits.
template <typename E, int MODE>
__device__ __forceinline__ E cat_pad_element(const Args& a, int64_t i) {
    const E* xp = static_cast<const E*>(a.x);
    const E* cp = static_cast<const E*>(a.cache);
    int64_t ow, oh, ot, oc, ob;
    if constexpr (MODE == kStridedI64) {
        int64_t tmp = i / a.W_out;
        ow = i - tmp * a.W_out;
        int64_t q = tmp / a.H_out;
        oh = tmp - q * a.H_out;
        tmp = q / a.T_out;
        ot = q - tmp * a.T_out;
        ob = tmp / a.C;
        oc = tmp - ob * a.C;
    } else {
        const uint32_t u = static_cast<uint32_t>(i);
        uint32_t tmp = fdiv(u, a.fw);
        ow = static_cast<int32_t>(u - tmp * a.fw.d);
        const uint32_t q = fdiv(tmp, a.fh);
        oh = static_cast<int32_t>(tmp - q * a.fh.d);
        tmp = fdiv(q, a.ft);
        ot = static_cast<int32_t>(q - tmp * a.ft.d);
        const uint32_t b = fdiv(tmp, a.fc);
        ob = static_cast<int32_t>(b);
        oc = static_cast<int32_t>(tmp - b * a.fc.d);
    }
    if constexpr (MODE == kContigI32) {
        // Triton's int32 arithmetic and C-contiguous offsets.
        const int32_t iw = static_cast<int32_t>(ow) - static_cast<int32_t>(a.wl);
        const int32_t ih = static_cast<int32_t>(oh) - static_cast<int32_t>(a.ht);
        const int32_t src_t = static_cast<int32_t>(ot) - static_cast<int32_t>(a.dpad);
        const int32_t C = static_cast<int32_t>(a.C), T = static_cast<int32_t>(a.T);
        const int32_t H = static_cast<int32_t>(a.H), W = static_cast<int32_t>(a.W);
        const int32_t ct = static_cast<int32_t>(a.cache_t);
        const bool valid = iw >= 0 && iw < W && ih >= 0 && ih < H && src_t >= 0 && src_t < ct + T;
        const bool from_cache = src_t < ct;
        const int32_t nc = static_cast<int32_t>(ob) * C + static_cast<int32_t>(oc);
        E v = 0;
        if (valid && from_cache) v = __ldg(cp + ((nc * ct + src_t) * H + ih) * W + iw);
        if (valid && !from_cache) v = __ldg(xp + ((nc * T + (src_t - ct)) * H + ih) * W + iw);
        return v;
    } else {
        const int64_t iw = ow - a.wl, ih = oh - a.ht, src_t = ot - a.dpad;
        const bool valid = iw >= 0 && iw < a.W && ih >= 0 && ih < a.H && src_t >= 0 && src_t < a.cache_t + a.T;
        const bool from_cache = src_t < a.cache_t;
        E v = 0;
        if (valid && from_cache)
            v = __ldg(cp + ob * a.cs[0] + oc * a.cs[1] + src_t * a.cs[2] + ih * a.cs[3] + iw * a.cs[4]);
        if (valid && !from_cache)
            v = __ldg(xp + ob * a.xs[0] + oc * a.xs[1] + (src_t - a.cache_t) * a.xs[2] + ih * a.xs[3] + iw * a.xs[4]);
        return v;
    }
}

// E: the element as a raw word (uint16 for bf16/fp16, uint32 for fp32); P: two of them.
template <typename E, typename P, int MODE>
__global__ void __launch_bounds__(kThreads) cat_pad_flat_kernel(Args a) {
    const int64_t i0 = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x * kPerThread;
    if (i0 >= a.total) return;
    const bool has1 = i0 + 1 < a.total;
    const E v0 = cat_pad_element<E, MODE>(a, i0);
    const E v1 = has1 ? cat_pad_element<E, MODE>(a, i0 + 1) : E(0);
    E* op = static_cast<E*>(a.out) + i0;
    if (has1 && a.pair_store) {
        // i0 is even, so the pair is word-aligned when the base is.
        constexpr int kShift = 8 * static_cast<int>(sizeof(E));
        *reinterpret_cast<P*>(op) = static_cast<P>(v0) | (static_cast<P>(v1) << kShift);
    } else {
        op[0] = v0;
        if (has1) op[1] = v1;
    }
}

// One instantiation per shape, as Triton's per-shape JIT compile with constexpr sizes: the decode
// divides by constants (signed int32, like Triton's offsets), and both sources are loaded under
// their masks and selected, as upstream's body does.
template <typename E, typename P, int C, int TO, int HO, int WO, int T, int H, int W, int CT, int PD, int PH, int PW>
__global__ void __launch_bounds__(kThreads) cat_pad_const_kernel(const E* __restrict__ xp, const E* __restrict__ cp,
                                                                E* __restrict__ op, int32_t total, int pair_store) {
    const int32_t i0 = static_cast<int32_t>(blockIdx.x) * kBlock + static_cast<int32_t>(threadIdx.x) * kPerThread;
    E v[kPerThread];
#pragma unroll
    for (int k = 0; k < kPerThread; ++k) {
        const int32_t i = i0 + k;
        const bool in = i < total;
        const int32_t ow = i % WO;
        int32_t tmp = i / WO;
        const int32_t oh = tmp % HO;
        tmp = tmp / HO;
        const int32_t ot = tmp % TO;
        tmp = tmp / TO;
        const int32_t oc = tmp % C;
        const int32_t ob = tmp / C;
        const int32_t iw = ow - PW, ih = oh - PH, src_t = ot - PD;
        const bool valid = in && iw >= 0 && iw < W && ih >= 0 && ih < H && src_t >= 0 && src_t < CT + T;
        const bool from_cache = src_t < CT;
        const int32_t x_t = src_t - CT;
        E xv = 0, cv = 0;
        if (valid && !from_cache) xv = __ldg(xp + ((((ob * C + oc) * T + x_t) * H + ih) * W + iw));
        if (CT > 0 && valid && from_cache) cv = __ldg(cp + ((((ob * C + oc) * CT + src_t) * H + ih) * W + iw));
        v[k] = from_cache ? cv : xv;
    }
    if (i0 + 1 < total && pair_store) {
        constexpr int kShift = 8 * static_cast<int>(sizeof(E));
        *reinterpret_cast<P*>(op + i0) = static_cast<P>(v[0]) | (static_cast<P>(v[1]) << kShift);
    } else {
        if (i0 < total) op[i0] = v[0];
        if (i0 + 1 < total) op[i0 + 1] = v[1];
    }
}

// The shapes compiled ahead, as (C, T_out, H_out, W_out, T, H, W, cache_t, d_pad, h_top, w_left):
// the production rows (Cosmos3-Nano VAE, padding [1, 1, 1, 1, 2, 0], cache_t 1 or 2).
#define KP_CAT_PAD_SHAPES(X)                        \
    X(1024, 3, 32, 54, 1, 30, 52, 1, 1, 1, 1)      \
    X(1024, 3, 32, 54, 1, 30, 52, 2, 0, 1, 1)      \
    X(1024, 4, 62, 106, 2, 60, 104, 1, 1, 1, 1)    \
    X(1024, 4, 62, 106, 2, 60, 104, 2, 0, 1, 1)    \
    X(512, 6, 122, 210, 4, 120, 208, 1, 1, 1, 1)   \
    X(512, 6, 122, 210, 4, 120, 208, 2, 0, 1, 1)   \
    X(256, 6, 242, 418, 4, 240, 416, 1, 1, 1, 1)   \
    X(256, 6, 242, 418, 4, 240, 416, 2, 0, 1, 1)

// Launches the shape's own instantiation; false when this shape was not compiled ahead.
template <typename E, typename P>
bool launch_const(const Args& a, cudaStream_t st) {
    const unsigned blocks = static_cast<unsigned>((a.total + kBlock - 1) / kBlock);
    const E* xp = static_cast<const E*>(a.x);
    const E* cp = static_cast<const E*>(a.cache);
    E* op = static_cast<E*>(a.out);
    const int32_t total = static_cast<int32_t>(a.total);
#define KP_TRY(c, to, ho, wo, t, h, w, ct, pd, ph, pw)                                                            \
    if (a.C == c && a.T_out == to && a.H_out == ho && a.W_out == wo && a.T == t && a.H == h && a.W == w &&        \
        a.cache_t == ct && a.dpad == pd && a.ht == ph && a.wl == pw) {                                             \
        cat_pad_const_kernel<E, P, c, to, ho, wo, t, h, w, ct, pd, ph, pw><<<blocks, kThreads, 0, st>>>(xp, cp, op, total, a.pair_store); \
        return true;                                                                                               \
    }
    KP_CAT_PAD_SHAPES(KP_TRY)
#undef KP_TRY
    return false;
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

// Row-major contiguous, ignoring the strides of size-1 dims.
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

template <typename E, typename P>
void launch(const Args& a, int mode, cudaStream_t st) {
    const unsigned blocks = static_cast<unsigned>((a.total + kBlock - 1) / kBlock);
    if (mode == kContigI32) cat_pad_flat_kernel<E, P, kContigI32><<<blocks, kThreads, 0, st>>>(a);
    else if (mode == kStridedI32) cat_pad_flat_kernel<E, P, kStridedI32><<<blocks, kThreads, 0, st>>>(a);
    else cat_pad_flat_kernel<E, P, kStridedI64><<<blocks, kThreads, 0, st>>>(a);
}

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
    if (!is_float_dt(x.dtype) || x.rank != 5) { set_path(call, "unsupported:x"); return KP_NOT_SUPPORTED; }
    Args a{};
    int64_t x_numel = 0, c_numel = 0;
    if (!source_ok(x, a.xs, &x_numel)) { set_path(call, "unsupported:x_layout"); return KP_NOT_SUPPORTED; }
    const int64_t N = x.shape[0], C = x.shape[1], T = x.shape[2], H = x.shape[3], W = x.shape[4];
    int64_t cache_t = 0;
    const bool has_cache = cx.dtype != KP_ABSENT;
    if (has_cache) {
        if (cx.dtype != x.dtype || cx.rank != 5 || cx.shape[0] != N || cx.shape[1] != C || cx.shape[3] != H ||
            cx.shape[4] != W || !source_ok(cx, a.cs, &c_numel)) {
            set_path(call, "unsupported:cache_x");
            return KP_NOT_SUPPORTED;
        }
        cache_t = cx.shape[2];
    }
    if (dl < cache_t || dr != 0 || wl != wr || ht != hb) { set_path(call, "unsupported:padding"); return KP_NOT_SUPPORTED; }
    const int64_t dpad = dl - cache_t;
    const int64_t T_out = dpad + cache_t + T + dr, H_out = H + ht + hb, W_out = W + wl + wr;
    if (T_out > kDimMax || H_out > kDimMax || W_out > kDimMax) { set_path(call, "unsupported:too_large"); return KP_NOT_SUPPORTED; }
    if (out.dtype != x.dtype || out.rank != 5 || out.shape[0] != N || out.shape[1] != C || out.shape[2] != T_out ||
        out.shape[3] != H_out || out.shape[4] != W_out || !is_contiguous(out)) {
        set_path(call, "unsupported:out_shape_or_layout");
        return KP_NOT_SUPPORTED;
    }
    // Output elements: at most 2^39 (grid of 2^31 - 1 programs of 256).
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

    // int32 indexing (Triton's offsets) when every index fits, and both sources are C-contiguous.
    const bool idx32 = total < (1ll << 31);
    const bool contig = idx32 && x_numel < (1ll << 31) && c_numel < (1ll << 31) && is_contiguous(x) &&
                        (!has_cache || is_contiguous(cx));
    const int mode = contig ? kContigI32 : idx32 ? kStridedI32 : kStridedI64;
    set_path(call, mode == kContigI32   ? "triton_flat256_contig_i32"
                   : mode == kStridedI32 ? "triton_flat256_strided_i32decode"
                                         : "triton_flat256_strided_i64");
    if (total == 0) return KP_OK;

    a.x = x.data;
    a.cache = has_cache ? cx.data : nullptr;
    a.out = out.data;
    a.total = total;
    a.C = C; a.T = T; a.H = H; a.W = W; a.cache_t = cache_t;
    a.T_out = T_out; a.H_out = H_out; a.W_out = W_out;
    a.dpad = dpad; a.ht = ht; a.wl = wl;
    if (idx32) {
        a.fw = make_fastdiv(static_cast<uint32_t>(W_out));
        a.fh = make_fastdiv(static_cast<uint32_t>(H_out));
        a.ft = make_fastdiv(static_cast<uint32_t>(T_out));
        a.fc = make_fastdiv(static_cast<uint32_t>(C));
    }
    a.pair_store = ptr_aligned(out.data, 2 * es) ? 1 : 0;

    cudaStream_t st = static_cast<cudaStream_t>(stream);
    if (mode == kContigI32 && N == 1 && (es == 2 ? launch_const<uint16_t, uint32_t>(a, st) : launch_const<uint32_t, uint64_t>(a, st))) {
        set_path(call, "triton_flat256_contig_i32_shape_const");
        return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
    }
    if (es == 2) launch<uint16_t, uint32_t>(a, mode, st);
    else launch<uint32_t, uint64_t>(a, mode, st);
    return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
}

}  // extern "C"
