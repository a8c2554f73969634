// kpilot-parent: v4 sha256 e1db3da9a021c4ea00c8e06e51bede21cf2d1fe904ff867edddb3686e6abe271
// Candidate v4b for tasks/causal_conv3d_cat_pad, started from candidates/v4.cu. One knob changed: the image
// path's band is 16 KB of output instead of 8 KB (same 128 threads), so a thread stages up to 8
// units and writes up to 8 vectors - the per-CTA prologue is amortised over twice the bytes - at
// the price of 64 registers (8 CTAs, 1024 threads an SM) and half as many CTAs. Everything else
// is v4.
// kpilot-parent: v1 sha256 b727fc9a8103de235135505819b46f5969fc7447f038bee2f15c7cd9d3d288c3
// Candidate v4 for tasks/causal_conv3d_cat_pad, started from candidates/v1.cu. What changes and why:
// v1 is bound by instructions issued per byte on the H200 (ncu, 92 MB row: top stall not_selected,
// then math_pipe_throttle): it decodes every output vector (a division, pad and row tests) and
// builds the vectors that touch pads or straddle rows element by element. v4 adds one path for
// 2-byte elements with packed (H, W) sources and even W (every production row): the CTA stages
// its band as the output image itself in shared memory (source rows at their output places, the
// pads as zero words), so every aligned output vector of the band is one constant funnel shift
// of five image words (see "Image kernel" below). v1's band and generic paths stay, unchanged,
// for everything else (fp32, odd W, strided rows, misaligned pointers).
// Candidate v1 for tasks/causal_conv3d_cat_pad (SGLang causal_conv3d_pad.py): same entry point,
// inputs, support rules and results (bit for bit) as baseline.cu, built to run at copy bandwidth.
//
//   out = F.pad(cat([cache_x, x], dim=2), [wl, wr, ht, hb, dl - cache_t, dr])   (zero fill)
//
// band path ("band_smem_vec16", production): a 256-thread CTA owns a band of R consecutive output
//   rows of one (n, c, t_out) plane, R * W_out ~ 8 KB of output. A zero plane or an all-pad band
//   is a pure 16-byte zero fill. Otherwise the band's source rows - one contiguous run of
//   (h_hi - h_lo) * W elements when the source's inner (H, W) dims are packed - are staged in
//   shared memory with 16-byte loads (scalar head / tail), laid out at the source's own 16-byte
//   phase. The output band (also one contiguous run) is then written with aligned 16-byte stores:
//   a vector wholly inside one row's data is assembled from shared memory with at most three
//   loads and a funnel shift (the row shift between source and output is an arbitrary number of
//   elements); vectors that touch pads or straddle rows are built element by element. Scalar
//   head / tail elements cover an output base that is not 16-byte aligned.
// generic path ("generic_flat_strided:<why>"): anything else that is supported (source H/W
//   strides not packed, rows too wide for one staging buffer, extreme sizes): flat over the
//   output, 16 bytes of output per thread, per-element strided loads, 16-byte stores where
//   aligned.
//
// Both paths read x and cache_x through their strides (see baseline.cu); no atomics, no
// reductions: every output element is written exactly once with the bits of its source or 0.

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <type_traits>

#include "kpilot_abi.h"

namespace {

constexpr int kThreads = 256;
constexpr int kTileOutBytes = 8192;   // target output bytes per band
constexpr int kStageBytes = 16384;    // staging buffer (source elements of one band)
constexpr int kStagePad = 32;         // over-read slack of the shifted vector reads
constexpr int kStep = kTileOutBytes / 16 / kThreads;  // staging loads in flight per thread
static_assert(kStep * 16 * kThreads == kTileOutBytes, "a band's staging is whole 16-byte vectors per thread");

template <int ES> struct ElemT;
template <> struct ElemT<2> { using type = uint16_t; };
template <> struct ElemT<4> { using type = uint32_t; };

// ---------------------------------------------------------------------------------------------
// Division by a launch-invariant divisor: q = (umulhi(n, m) + n) >> s, exact for
// 0 <= n < 2^31 and 1 <= d < 2^31.
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
// 16-byte vector helpers
// ---------------------------------------------------------------------------------------------

__device__ __forceinline__ uint4 ldg16(const void* p) { return __ldg(static_cast<const uint4*>(p)); }

template <int ES>
__device__ __forceinline__ typename ElemT<ES>::type ldg_elem(const typename ElemT<ES>::type* p) {
    return __ldg(p);
}

// Packs VEC elements (as uint32 bit patterns) into a 16-byte vector.
template <int ES>
__device__ __forceinline__ uint4 pack_vec(const uint32_t (&e)[16 / ES]) {
    if constexpr (ES == 2) {
        return make_uint4(e[0] | (e[1] << 16), e[2] | (e[3] << 16), e[4] | (e[5] << 16), e[6] | (e[7] << 16));
    } else {
        return make_uint4(e[0], e[1], e[2], e[3]);
    }
}

// Zero-fills out[0, count): scalar head up to the first 16-byte boundary, 16-byte body, scalar tail.
template <int ES, int NT>
__device__ __forceinline__ void zero_fill_t(typename ElemT<ES>::type* out, int32_t count) {
    using E = typename ElemT<ES>::type;
    constexpr int VEC = 16 / ES;
    const int32_t opre = static_cast<int32_t>((reinterpret_cast<uintptr_t>(out) & 15) / ES);
    const int32_t head = min(count, (VEC - opre) & (VEC - 1));
    const int32_t nvec = (count - head) / VEC;
    const int32_t tail0 = head + nvec * VEC;
    uint4* ov = reinterpret_cast<uint4*>(out + head);
    for (int32_t v = threadIdx.x; v < nvec; v += NT) ov[v] = make_uint4(0u, 0u, 0u, 0u);
    const int32_t t = threadIdx.x;
    if (t < head) out[t] = E(0);
    else if (t >= VEC && t - VEC < count - tail0) out[tail0 + t - VEC] = E(0);
}

template <int ES>
__device__ __forceinline__ void zero_fill(typename ElemT<ES>::type* out, int32_t count) {
    zero_fill_t<ES, kThreads>(out, count);
}

// ---------------------------------------------------------------------------------------------
// Band kernel
// ---------------------------------------------------------------------------------------------

struct BandArgs {
    const void* x;
    const void* cache;
    void* out;
    int64_t xs_n, xs_c, xs_t, xs_h;  // element strides of x (W stride is 1 or W <= 1)
    int64_t cs_n, cs_c, cs_t, cs_h;  // element strides of cache_x
    int32_t H, W, cache_t, H_out, W_out, dpad, ht, wl, rows;  // rows: output rows per band
    FastDiv f_bands, f_tout, f_c, f_wout;                       // bands per plane, T_out, C, W_out
};

template <int ES>
__global__ void __launch_bounds__(kThreads, 8) cat_pad_band_kernel(BandArgs a) {
    using E = typename ElemT<ES>::type;
    constexpr int VEC = 16 / ES;
    __shared__ __align__(16) unsigned char stage[kStageBytes + kStagePad];

    const int32_t tid = static_cast<int32_t>(threadIdx.x);
    const uint32_t tile = blockIdx.x;
    const uint32_t plane = fdiv(tile, a.f_bands);
    const int32_t band = static_cast<int32_t>(tile - plane * a.f_bands.d);
    const uint32_t nc = fdiv(plane, a.f_tout);
    const int32_t t_o = static_cast<int32_t>(plane - nc * a.f_tout.d);
    const uint32_t n = fdiv(nc, a.f_c);
    const int32_t c = static_cast<int32_t>(nc - n * a.f_c.d);

    const int32_t b0 = band * a.rows;
    const int32_t b1 = b0 + min(a.rows, a.H_out - b0);
    const int32_t count = (b1 - b0) * a.W_out;
    E* out = static_cast<E*>(a.out) + (static_cast<int64_t>(plane) * a.H_out + b0) * a.W_out;

    const int32_t s = t_o - a.dpad;                // source plane in cat([cache_x, x])
    const int32_t h_lo = max(b0 - a.ht, 0);         // source rows [h_lo, h_hi) of this band
    const int32_t h_hi = min(b1 - a.ht, a.H);
    if (s < 0 || h_lo >= h_hi || a.W == 0) {        // uniform per CTA: no barrier skipped unevenly
        zero_fill<ES>(out, count);
        return;
    }
    const E* src;
    if (s < a.cache_t) {
        src = static_cast<const E*>(a.cache) + static_cast<int64_t>(n) * a.cs_n + static_cast<int64_t>(c) * a.cs_c +
              static_cast<int64_t>(s) * a.cs_t + static_cast<int64_t>(h_lo) * a.cs_h;
    } else {
        src = static_cast<const E*>(a.x) + static_cast<int64_t>(n) * a.xs_n + static_cast<int64_t>(c) * a.xs_c +
              static_cast<int64_t>(s - a.cache_t) * a.xs_t + static_cast<int64_t>(h_lo) * a.xs_h;
    }

    // ---- stage: src[0, n_src) -> se[pre, pre + n_src), se keeping src's 16-byte phase.
    E* se = reinterpret_cast<E*>(stage);
    const int32_t nrows = h_hi - h_lo;
    const int32_t n_src = nrows * a.W;
    const int32_t pre = static_cast<int32_t>((reinterpret_cast<uintptr_t>(src) & 15) / ES);
    {
        const int32_t head = min(n_src, (VEC - pre) & (VEC - 1));
        const int32_t nvec = (n_src - head) / VEC;
        const int32_t tail0 = head + nvec * VEC;
        const E* gsrc = src + head;              // 16-byte aligned when nvec > 0
        uint4* sdst = reinterpret_cast<uint4*>(stage + (pre + head) * ES);
        int32_t ei = -1;  // one edge element per thread at most
        if (tid < head) ei = tid;
        else if (tid >= VEC && tid - VEC < n_src - tail0) ei = tail0 + tid - VEC;
        E ev = E(0);
        if (ei >= 0) ev = ldg_elem<ES>(src + ei);
        // Two 16-byte loads in flight per thread per step (one step for an ~8 KB band).
#pragma unroll 1
        for (int32_t v0 = tid; v0 < nvec; v0 += kStep * kThreads) {
            uint4 r[kStep];
#pragma unroll
            for (int j = 0; j < kStep; ++j) {
                const int32_t v = v0 + j * kThreads;
                if (v < nvec) r[j] = ldg16(gsrc + v * VEC);
            }
#pragma unroll
            for (int j = 0; j < kStep; ++j) {
                const int32_t v = v0 + j * kThreads;
                if (v < nvec) sdst[v] = r[j];
            }
        }
        if (ei >= 0) se[pre + ei] = ev;
    }
    __syncthreads();

    // ---- write out[0, count) (the band, contiguous in the output).
    const int32_t W = a.W, W_out = a.W_out, wl = a.wl;
    const int32_t row_off = b0 - a.ht - h_lo;  // staged row of local output row r: r + row_off
    const uint32_t* s32 = reinterpret_cast<const uint32_t*>(stage);
    const uint2* s64 = reinterpret_cast<const uint2*>(stage);
    const uint4* s128 = reinterpret_cast<const uint4*>(stage);

    auto elem = [&](int32_t r, int32_t col) -> uint32_t {
        const int32_t sr = r + row_off, w = col - wl;
        if (static_cast<uint32_t>(sr) < static_cast<uint32_t>(nrows) && static_cast<uint32_t>(w) < static_cast<uint32_t>(W))
            return se[pre + sr * W + w];
        return 0u;
    };

    const int32_t opre = static_cast<int32_t>((reinterpret_cast<uintptr_t>(out) & 15) / ES);
    const int32_t ohead = min(count, (VEC - opre) & (VEC - 1));
    const int32_t onvec = (count - ohead) / VEC;
    const int32_t otail0 = ohead + onvec * VEC;
    uint4* ov = reinterpret_cast<uint4*>(out + ohead);

#pragma unroll 2
    for (int32_t v = tid; v < onvec; v += kThreads) {
        const int32_t lo = ohead + v * VEC;
        const int32_t r = static_cast<int32_t>(fdiv(static_cast<uint32_t>(lo), a.f_wout));
        const int32_t col = lo - r * W_out;
        const int32_t sr = r + row_off, w = col - wl;
        uint4 q;
        if (static_cast<uint32_t>(sr) < static_cast<uint32_t>(nrows) && w >= 0 && w + VEC <= W) {
            // Whole vector inside one source row: VEC contiguous staged elements from k0.
            const int32_t k0 = pre + sr * W + w;
            if ((k0 & (VEC - 1)) == 0) {
                q = s128[k0 / VEC];
            } else if constexpr (ES == 2) {
                const int32_t base = k0 >> 1;  // word holding element k0
                uint32_t w0, w1, w2, w3, w4;
                if (base & 1) {
                    w0 = s32[base];
                    const uint2 p0 = s64[(base + 1) >> 1], p1 = s64[(base + 3) >> 1];
                    w1 = p0.x; w2 = p0.y; w3 = p1.x; w4 = p1.y;
                } else {
                    const uint2 p0 = s64[base >> 1], p1 = s64[(base >> 1) + 1];
                    w0 = p0.x; w1 = p0.y; w2 = p1.x; w3 = p1.y;
                    w4 = s32[base + 4];
                }
                // w4 is only consumed when k0 is odd (then it holds element k0 + 7).
                const uint32_t sh = static_cast<uint32_t>(k0 & 1) * 16u;
                q = make_uint4(__funnelshift_r(w0, w1, sh), __funnelshift_r(w1, w2, sh), __funnelshift_r(w2, w3, sh),
                               __funnelshift_r(w3, w4, sh));
            } else {
                if ((k0 & 1) == 0) {
                    const uint2 p0 = s64[k0 >> 1], p1 = s64[(k0 >> 1) + 1];
                    q = make_uint4(p0.x, p0.y, p1.x, p1.y);
                } else {
                    const uint2 p = s64[(k0 + 1) >> 1];
                    q = make_uint4(s32[k0], p.x, p.y, s32[k0 + 3]);
                }
            }
        } else {
            // Pads and row changes inside the vector: element by element.
            uint32_t e[VEC];
            int32_t rr = r, cc = col;
#pragma unroll
            for (int j = 0; j < VEC; ++j) {
                e[j] = elem(rr, cc);
                if (++cc == W_out) { cc = 0; ++rr; }
            }
            q = pack_vec<ES>(e);
        }
        ov[v] = q;
    }
    int32_t lo = -1;
    if (tid < ohead) lo = tid;
    else if (tid >= VEC && tid - VEC < count - otail0) lo = otail0 + tid - VEC;
    if (lo >= 0) {
        const int32_t r = static_cast<int32_t>(fdiv(static_cast<uint32_t>(lo), a.f_wout));
        out[lo] = static_cast<E>(elem(r, lo - r * W_out));
    }
}

// ---------------------------------------------------------------------------------------------
// Image kernel (v4, "img_smem_u<UNIT>_t<threads>_b<band bytes>"): 2-byte elements, packed source
// (H, W), W even, every staged unit aligned. A CTA owns a band of output rows of one plane and
// builds, in shared memory, the band's output image itself: image element m = band output
// element e + phi, each source row's words at a word offset fixed per row, the pad columns
// between neighbouring rows (one gap of wl words) and the pad rows as zero words. Because W_out
// is even and wl == wr, every source word lands on a whole image word (no shifting while
// staging), and the whole band is then one constant shift of the image: aligned output vector j
// is the funnel shift by 16 * (wl & 1) bits of image words 4(j + k0) .. 4(j + k0) + 4 - one
// LDS.128, one LDS.32, four SHF and one STG.128, with no branch, no division and no pad test.
// The grid is (band, t_out, n * C), so a CTA decodes nothing but n and c; every thread stages up
// to kImgPer units (one fast division each: the unit's row) and writes up to kImgPer vectors,
// all loads issued before the first shared-memory store.
// ---------------------------------------------------------------------------------------------

constexpr int kImgThreads = 128;                                // threads per CTA (a knob)
constexpr int kImgBandBytes = 16384;                            // output bytes per band, at most (v4: 8192)
constexpr int kImgPer = kImgBandBytes / 16 / kImgThreads;       // output vectors (and 16-byte units) a thread
constexpr int kImgWords = kImgBandBytes / 4 + 8;                // image words: (count + phi) / 2 + 2 <= this
constexpr int kImgMinBlocks = 8;                                // 64 registers for 8 loads in flight (v4: 16)
static_assert(kImgPer * 16 * kImgThreads == kImgBandBytes, "whole output vectors per thread");

struct ImgArgs {
    const void* x;
    const void* cache;
    void* out;
    int64_t xs_n, xs_c, xs_t;  // element strides of x (H stride W, W stride 1)
    int64_t cs_n, cs_c, cs_t;  // of cache_x
    int32_t H, W, cache_t, H_out, W_out, dpad, ht, wl, rows;
    int32_t ur;                // staging units per source row: W * 2 / UNIT
    FastDiv f_c, f_ur;
};

template <int UNIT>  // bytes per staging load: 16, 8 or 4
__global__ void __launch_bounds__(kImgThreads, kImgMinBlocks) cat_pad_img_kernel(ImgArgs a) {
    using E = uint16_t;
    constexpr int U = UNIT / 4;                                   // words per unit
    constexpr int kLdPer = kImgBandBytes / UNIT / kImgThreads;    // units a thread, at most
    static_assert(kLdPer * UNIT * kImgThreads == kImgBandBytes, "whole units per thread");
    using UT = typename std::conditional<U == 4, uint4, typename std::conditional<U == 2, uint2, uint32_t>::type>::type;
    __shared__ __align__(16) uint32_t img[kImgWords];

    const int32_t tid = static_cast<int32_t>(threadIdx.x);
    const int32_t band = static_cast<int32_t>(blockIdx.x);
    const int32_t t_o = static_cast<int32_t>(blockIdx.y);
    const uint32_t nc = blockIdx.z;
    const uint32_t n = fdiv(nc, a.f_c);
    const int32_t c = static_cast<int32_t>(nc - n * a.f_c.d);

    const int32_t b0 = band * a.rows;
    const int32_t b1 = min(b0 + a.rows, a.H_out);
    const int32_t count = (b1 - b0) * a.W_out;
    const int64_t plane = static_cast<int64_t>(nc) * gridDim.y + t_o;
    E* out = static_cast<E*>(a.out) + (plane * a.H_out + b0) * a.W_out;

    const int32_t s = t_o - a.dpad;
    const int32_t h_lo = max(b0 - a.ht, 0);
    const int32_t h_hi = min(b1 - a.ht, a.H);
    if (s < 0 || h_lo >= h_hi) {  // uniform per CTA
        zero_fill_t<2, kImgThreads>(out, count);
        return;
    }
    const E* srce;
    if (s < a.cache_t) {
        srce = static_cast<const E*>(a.cache) + static_cast<int64_t>(n) * a.cs_n + static_cast<int64_t>(c) * a.cs_c +
               static_cast<int64_t>(s) * a.cs_t;
    } else {
        srce = static_cast<const E*>(a.x) + static_cast<int64_t>(n) * a.xs_n + static_cast<int64_t>(c) * a.xs_c +
               static_cast<int64_t>(s - a.cache_t) * a.xs_t;
    }
    // This thread's first unit; unit i of the thread is src[i * kImgThreads] (UNIT-aligned).
    const UT* src = reinterpret_cast<const UT*>(srce + static_cast<int64_t>(h_lo) * a.W) + tid;
    const int32_t nr = h_hi - h_lo;
    const int32_t nunits = nr * a.ur;

    // ---- every load first.
    UT r[kLdPer];
#pragma unroll
    for (int i = 0; i < kLdPer; ++i)
        if (tid + i * kImgThreads < nunits) r[i] = __ldg(src + i * kImgThreads);

    // Output geometry: scalar head [0, head), nvec aligned vectors, scalar tail [tail0, count).
    const int32_t opre = static_cast<int32_t>((reinterpret_cast<uintptr_t>(out) & 15) >> 1);  // even
    const int32_t head = min(count, (8 - opre) & 7);
    const int32_t nvec = (count - head) >> 3;
    const int32_t tail0 = head + nvec * 8;
    const int32_t sigma = a.wl & 1;                 // image phase of every output vector
    const int32_t phi = (sigma - head) & 7;         // image element of output element e: e + phi
    const int32_t k0 = (head + phi - sigma) >> 3;   // 0 or 1
    const int32_t pitch = a.W_out >> 1;             // image words per output row
    const int32_t wh = a.W >> 1;                    // words per source row
    const int32_t rb0 = ((h_lo + a.ht - b0) * a.W_out + a.wl + phi) >> 1;  // image word of source row 0
    const int32_t tw = ((count + phi) >> 1) + 2;    // image words read

    // ---- zero words: top pads (and phi), bottom pads, the gap between each two source rows.
    for (int32_t w = tid; w < rb0; w += kImgThreads) img[w] = 0u;
    const int32_t sfx0 = rb0 + (nr - 1) * pitch + wh;
    for (int32_t w = sfx0 + tid; w < tw; w += kImgThreads) img[w] = 0u;
    if (a.wl == 1) {
        for (int32_t sr = tid; sr < nr - 1; sr += kImgThreads) img[rb0 + sr * pitch + wh] = 0u;
    } else {
        for (int32_t sr = tid; sr < nr - 1; sr += kImgThreads) {
            const int32_t g = rb0 + sr * pitch + wh;
            for (int32_t q = 0; q < a.wl; ++q) img[g + q] = 0u;
        }
    }

    // ---- data words: unit k (row sr = k / ur) to image words rb0 + k * U + sr * wl (pitch - wh == wl).
    uint32_t* dimg = img + rb0 + tid * U;
#pragma unroll
    for (int i = 0; i < kLdPer; ++i) {
        const int32_t k = tid + i * kImgThreads;
        if (k < nunits) {
            const int32_t sr = static_cast<int32_t>(fdiv(static_cast<uint32_t>(k), a.f_ur));
            uint32_t* d = dimg + (i * kImgThreads * U + sr * a.wl);
            if constexpr (U == 4) {
                d[0] = r[i].x; d[1] = r[i].y; d[2] = r[i].z; d[3] = r[i].w;
            } else if constexpr (U == 2) {
                d[0] = r[i].x; d[1] = r[i].y;
            } else {
                d[0] = r[i];
            }
        }
    }
    __syncthreads();

    // ---- write: every aligned vector is the same funnel shift of five image words.
    const uint32_t sh = static_cast<uint32_t>(sigma) * 16u;
    const uint4* img4 = reinterpret_cast<const uint4*>(img) + k0 + tid;
    const uint32_t* img1 = img + 4 * (k0 + tid) + 4;
    uint4* ov = reinterpret_cast<uint4*>(out + head) + tid;
#pragma unroll
    for (int i = 0; i < kImgPer; ++i) {
        if (tid + i * kImgThreads < nvec) {
            const uint4 p = img4[i * kImgThreads];
            const uint32_t p4 = img1[4 * i * kImgThreads];
            ov[i * kImgThreads] = make_uint4(__funnelshift_r(p.x, p.y, sh), __funnelshift_r(p.y, p.z, sh),
                                             __funnelshift_r(p.z, p.w, sh), __funnelshift_r(p.w, p4, sh));
        }
    }
    int32_t e = -1;
    if (tid < head) e = tid;
    else if (tid >= 8 && tid - 8 < count - tail0) e = tail0 + tid - 8;
    if (e >= 0) out[e] = reinterpret_cast<const E*>(img)[e + phi];
}

// ---------------------------------------------------------------------------------------------
// Generic kernel: flat over the output, VEC consecutive elements per thread, strided sources.
// ---------------------------------------------------------------------------------------------

struct GenArgs {
    const void* x;
    const void* cache;
    void* out;
    int64_t total, n_vec;
    int64_t C, T, H, W, cache_t, T_out, H_out, W_out, dpad, ht, wl;
    int64_t xs[5], cs[5];
    int vec_store;  // out base 16-byte aligned
};

template <int ES>
__global__ void __launch_bounds__(kThreads) cat_pad_generic_kernel(GenArgs a) {
    using E = typename ElemT<ES>::type;
    constexpr int VEC = 16 / ES;
    const E* xp = static_cast<const E*>(a.x);
    const E* cp = static_cast<const E*>(a.cache);
    E* op = static_cast<E*>(a.out);
    const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
    for (int64_t v = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; v < a.n_vec; v += stride) {
        const int64_t i0 = v * VEC;
        int64_t tmp = i0 / a.W_out;
        int64_t ow = i0 - tmp * a.W_out;
        int64_t q = tmp / a.H_out;
        int64_t oh = tmp - q * a.H_out;
        tmp = q / a.T_out;
        int64_t ot = q - tmp * a.T_out;
        int64_t ob = tmp / a.C;
        int64_t oc = tmp - ob * a.C;
        uint32_t e[VEC];
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
            e[j] = 0u;
            if (i0 + j < a.total) {
                const int64_t iw = ow - a.wl, ih = oh - a.ht, st = ot - a.dpad;
                if (iw >= 0 && iw < a.W && ih >= 0 && ih < a.H && st >= 0) {
                    if (st < a.cache_t)
                        e[j] = __ldg(cp + ob * a.cs[0] + oc * a.cs[1] + st * a.cs[2] + ih * a.cs[3] + iw * a.cs[4]);
                    else
                        e[j] = __ldg(xp + ob * a.xs[0] + oc * a.xs[1] + (st - a.cache_t) * a.xs[2] + ih * a.xs[3] +
                                     iw * a.xs[4]);
                }
            }
            if (++ow == a.W_out) {
                ow = 0;
                if (++oh == a.H_out) {
                    oh = 0;
                    if (++ot == a.T_out) {
                        ot = 0;
                        if (++oc == a.C) { oc = 0; ++ob; }
                    }
                }
            }
        }
        if (a.vec_store && i0 + VEC <= a.total) {
            *reinterpret_cast<uint4*>(op + i0) = pack_vec<ES>(e);
        } else {
#pragma unroll
            for (int j = 0; j < VEC; ++j)
                if (i0 + j < a.total) op[i0 + j] = static_cast<E>(e[j]);
        }
    }
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

// The band path stages (h_hi - h_lo) * W source elements as one contiguous run: the source's
// (H, W) block must be packed (W stride 1, H stride W; size-1 dims read as stride 0).
bool inner_packed(const int64_t s[5], int64_t H, int64_t W) {
    return (W <= 1 || s[4] == 1) && (H <= 1 || s[3] == W);
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
    int64_t xs[5] = {0, 0, 0, 0, 0}, cs[5] = {0, 0, 0, 0, 0};
    int64_t x_numel = 0, c_numel = 0;
    if (!source_ok(x, xs, &x_numel)) { set_path(call, "unsupported:x_layout"); return KP_NOT_SUPPORTED; }
    const int64_t N = x.shape[0], C = x.shape[1], T = x.shape[2], H = x.shape[3], W = x.shape[4];
    int64_t cache_t = 0;
    const bool has_cache = cx.dtype != KP_ABSENT;
    if (has_cache) {
        if (cx.dtype != x.dtype || cx.rank != 5 || cx.shape[0] != N || cx.shape[1] != C || cx.shape[3] != H ||
            cx.shape[4] != W || !source_ok(cx, cs, &c_numel)) {
            set_path(call, "unsupported:cache_x");
            return KP_NOT_SUPPORTED;
        }
        cache_t = cx.shape[2];
    }
    (void)c_numel;
    (void)x_numel;
    if (dl < cache_t || dr != 0 || wl != wr || ht != hb) { set_path(call, "unsupported:padding"); return KP_NOT_SUPPORTED; }
    const int64_t dpad = dl - cache_t;
    const int64_t T_out = dpad + cache_t + T + dr, H_out = H + ht + hb, W_out = W + wl + wr;
    if (T_out > kDimMax || H_out > kDimMax || W_out > kDimMax) { set_path(call, "unsupported:too_large"); return KP_NOT_SUPPORTED; }
    if (out.dtype != x.dtype || out.rank != 5 || out.shape[0] != N || out.shape[1] != C || out.shape[2] != T_out ||
        out.shape[3] != H_out || out.shape[4] != W_out || !is_contiguous(out)) {
        set_path(call, "unsupported:out_shape_or_layout");
        return KP_NOT_SUPPORTED;
    }
    // Output elements: at most 2^39 (the baseline's grid of 2^31 - 1 programs of 256).
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

    cudaStream_t st = static_cast<cudaStream_t>(stream);

    // ---- image path (v4): 2-byte elements, packed (H, W) sources, W even, out 4-byte aligned,
    // an output row within one band; the widest staging unit (16, 8, 4 bytes) that every source
    // row start is aligned to.
    int img_unit = 0;
    if (es == 2 && W >= 2 && W % 2 == 0 && H >= 1 && inner_packed(xs, H, W) &&
        (!has_cache || inner_packed(cs, H, W)) && ptr_aligned(out.data, 4) && W_out * es <= kImgBandBytes &&
        N * C <= 65535 && T_out <= 65535) {
        for (int unit = 16; unit >= 4 && img_unit == 0; unit /= 2) {
            const int64_t ue = unit / es;  // elements per unit
            bool ok = W % ue == 0 && ptr_aligned(x.data, unit) && xs[0] % ue == 0 && xs[1] % ue == 0 && xs[2] % ue == 0;
            if (has_cache) ok = ok && ptr_aligned(cx.data, unit) && cs[0] % ue == 0 && cs[1] % ue == 0 && cs[2] % ue == 0;
            if (ok) img_unit = unit;
        }
    }
    if (img_unit != 0) {
        int64_t irows = (kImgBandBytes / es) / W_out;  // >= 1
        if (irows > H_out) irows = H_out;
        int64_t ibands = (H_out + irows - 1) / irows;
        irows = (H_out + ibands - 1) / ibands;  // balance the bands of a plane
        if (ibands <= 65535) {
            char ipath[KP_PATH_LEN];
            snprintf(ipath, sizeof ipath, "img_smem_u%d_t%d_b%d", img_unit, kImgThreads, kImgBandBytes);
            set_path(call, ipath);
            if (total == 0) return KP_OK;
            ImgArgs a{};
            a.x = x.data;
            a.cache = has_cache ? cx.data : nullptr;
            a.out = out.data;
            a.xs_n = xs[0]; a.xs_c = xs[1]; a.xs_t = xs[2];
            a.cs_n = cs[0]; a.cs_c = cs[1]; a.cs_t = cs[2];
            a.H = static_cast<int32_t>(H);
            a.W = static_cast<int32_t>(W);
            a.cache_t = static_cast<int32_t>(cache_t);
            a.H_out = static_cast<int32_t>(H_out);
            a.W_out = static_cast<int32_t>(W_out);
            a.dpad = static_cast<int32_t>(dpad);
            a.ht = static_cast<int32_t>(ht);
            a.wl = static_cast<int32_t>(wl);
            a.rows = static_cast<int32_t>(irows);
            a.ur = static_cast<int32_t>(W * es / img_unit);
            a.f_c = make_fastdiv(static_cast<uint32_t>(C));
            a.f_ur = make_fastdiv(static_cast<uint32_t>(a.ur));
            const dim3 grid(static_cast<unsigned>(ibands), static_cast<unsigned>(T_out), static_cast<unsigned>(N * C));
            if (img_unit == 16) cat_pad_img_kernel<16><<<grid, kImgThreads, 0, st>>>(a);
            else if (img_unit == 8) cat_pad_img_kernel<8><<<grid, kImgThreads, 0, st>>>(a);
            else cat_pad_img_kernel<4><<<grid, kImgThreads, 0, st>>>(a);
            return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
        }
    }

    // ---- band path eligibility and geometry
    const char* why = nullptr;
    int64_t rows = 0, bands = 0, tiles = 0;
    if (!inner_packed(xs, H, W) || (has_cache && !inner_packed(cs, H, W))) {
        why = "generic_flat_strided:inner_strides";
    } else if (W * es > kStageBytes - 16) {
        why = "generic_flat_strided:wide_rows";
    } else if (total > 0) {
        rows = (kTileOutBytes / es) / W_out;
        if (rows < 1) rows = 1;
        if (rows > H_out) rows = H_out;
        bands = (H_out + rows - 1) / rows;
        rows = (H_out + bands - 1) / bands;  // balance the bands of a plane
        const int64_t planes = N * C * T_out;
        tiles = planes * bands;
        if (rows * W_out >= (1ll << 30) || tiles > kDimMax) why = "generic_flat_strided:too_large";
    }
    set_path(call, why ? why : "band_smem_vec16");
    if (total == 0) return KP_OK;

    if (why == nullptr) {
        BandArgs a{};
        a.x = x.data;
        a.cache = has_cache ? cx.data : nullptr;
        a.out = out.data;
        a.xs_n = xs[0]; a.xs_c = xs[1]; a.xs_t = xs[2]; a.xs_h = xs[3];
        a.cs_n = cs[0]; a.cs_c = cs[1]; a.cs_t = cs[2]; a.cs_h = cs[3];
        a.H = static_cast<int32_t>(H);
        a.W = static_cast<int32_t>(W);
        a.cache_t = static_cast<int32_t>(cache_t);
        a.H_out = static_cast<int32_t>(H_out);
        a.W_out = static_cast<int32_t>(W_out);
        a.dpad = static_cast<int32_t>(dpad);
        a.ht = static_cast<int32_t>(ht);
        a.wl = static_cast<int32_t>(wl);
        a.rows = static_cast<int32_t>(rows);
        a.f_bands = make_fastdiv(static_cast<uint32_t>(bands));
        a.f_tout = make_fastdiv(static_cast<uint32_t>(T_out));
        a.f_c = make_fastdiv(static_cast<uint32_t>(C));
        a.f_wout = make_fastdiv(static_cast<uint32_t>(W_out));
        const unsigned grid = static_cast<unsigned>(tiles);
        if (es == 2) cat_pad_band_kernel<2><<<grid, kThreads, 0, st>>>(a);
        else cat_pad_band_kernel<4><<<grid, kThreads, 0, st>>>(a);
    } else {
        GenArgs a{};
        a.x = x.data;
        a.cache = has_cache ? cx.data : nullptr;
        a.out = out.data;
        const int64_t vec = 16 / es;
        a.total = total;
        a.n_vec = (total + vec - 1) / vec;
        a.C = C; a.T = T; a.H = H; a.W = W; a.cache_t = cache_t;
        a.T_out = T_out; a.H_out = H_out; a.W_out = W_out;
        a.dpad = dpad; a.ht = ht; a.wl = wl;
        for (int d = 0; d < 5; ++d) { a.xs[d] = xs[d]; a.cs[d] = cs[d]; }
        a.vec_store = ptr_aligned(out.data, 16) ? 1 : 0;
        int64_t blocks = (a.n_vec + kThreads - 1) / kThreads;
        if (blocks > (1ll << 20)) blocks = 1ll << 20;  // grid-stride beyond
        if (es == 2) cat_pad_generic_kernel<2><<<static_cast<unsigned>(blocks), kThreads, 0, st>>>(a);
        else cat_pad_generic_kernel<4><<<static_cast<unsigned>(blocks), kThreads, 0, st>>>(a);
    }
    return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
}

}  // extern "C"
