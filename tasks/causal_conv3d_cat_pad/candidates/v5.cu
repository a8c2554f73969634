// kpilot-parent: v4 sha256 e1db3da9a021c4ea00c8e06e51bede21cf2d1fe904ff867edddb3686e6abe271
//
// Candidate v5 for tasks/causal_conv3d_cat_pad: v4 (included below, its entry renamed) everywhere,
// except v4's 16-byte-unit image path on outputs of at most 192 MiB (in the production set: the
// two c1024 t2 h60 w104 rows, 92 and 105 MB), which runs v4's image kernel with its shared-memory
// and L1 work cut and, where there are zero planes, without zero-only CTAs.
//
// Why (H200, v4 run 20261201T013257Z-00ac2279; stream_us / pct_of_stream from the same records):
//   * Not the wave count. v4's grid on both c1024 t2 h60 w104 rows is (2, 4, 1024) = 8192 CTAs of
//     128 threads at 16 CTAs an SM (32 registers, 8.2 KB shared): 2112 slots, 3.88 waves. cache2
//     has the same grid and reaches 96.9% of its stream reference; cache1 90.8%. v4b (16 KB bands:
//     4096 CTAs at 8 an SM, again 3.88 waves, twice the bytes a CTA) was within 1% of v4 on both
//     (run 20261201T013306Z-65a21e50), so neither a fuller last wave nor more bytes per CTA at the
//     same bytes per SM is what is missing.
//   * Not the tail or the per-CTA setup either. Least squares over the three large rows of each
//     kind: v4 = 1.9 us + bytes / 3.92 TB/s (cache1), 1.7 us + bytes / 4.04 TB/s (cache2); the
//     stream reference = 2.2 us + bytes / 4.38 TB/s and 3.1 us + bytes / 4.42 TB/s. v4's fixed
//     part is the smaller one, and the 92 / 105 MB rows sit on v4's lines (residuals +0.12 /
//     +0.14 us). What v4 loses is steady-state bandwidth: 10.5% below the stream's slope with a
//     zero plane (cache1), 8.6% without. The 92 MB row misses 90% of copy (24.05 us) because there
//     the fixed parts weigh most: its stream reference itself is at 93.4% of copy, so v4 needs
//     96.4% of stream there, i.e. a steady state of ~4.17 TB/s (+6%); the 105 MB row needs 27.38
//     us, ~4.09 TB/s (+1.3%).
//   * ncu of v4 (run 20261201T032323Z-1feb5fbb, largest row, DRAM at 82.5% of peak, L2 at 90.6%):
//     per warp 3834 cycles long_scoreboard (global loads) but 2965 mio_throttle + 2362
//     short_scoreboard (shared-memory queue and results): a warp spends longer queueing for the
//     SM's shared-memory / L1 data path than waiting for DRAM, so CTAs spend less of their life
//     with loads in flight. v4 uses that path ~4x more than a copy: each staged 16-byte unit is 4
//     STS.32 whose lanes are 4 words apart (4-way bank conflict: 16 wavefronts per 512 bytes, 4
//     would do), each output vector's fifth word an LDS.32 at the same stride (4 wavefronts per
//     512 bytes), and the warps' 512-byte global runs start off 128-byte lines (4.50 lines per
//     LDG.128 and 4.82 per STG.128 warp instruction on the c1024 rows, CPU count, not 4): ~33
//     L1 / shared wavefronts per 512 bytes moved.
//   * The zero plane of the cache1 rows (a quarter of the output at c1024 t2) is written by
//     zero-only CTAs (2048 of 8192): launch, prologue and store drain for 6.5 KB each, with no
//     load to overlap them.
//
// What changes (kernel cat_pad_img5_kernel, v4's image kernel with four edits):
//   1. Staging without the 4-way conflict: lane l's unit is rotated in registers (two select
//      steps) so that its c-th STS.32 writes the unit's word whose address is c + l / 8 (mod 4);
//      the four 8-lane groups fall on four residues, each group's 8 words 4 apart. At most 2-way
//      (an 8-lane group straddling a row's pad gap): a mean of 1.38 wavefronts per STS on the
//      c1024 rows (counted on the CPU over both bands, every head and load offset), v4 4.
//   2. The fifth word of output vector j (word 4(j + k0) + 4) is the next lane's first word: one
//      SHFL, and an LDS.32 for lane 31 only, instead of a 4-way LDS.32. All of a thread's LDS.128
//      are issued before the SHFLs and the stores.
//   3. 128-byte lines: the units a thread loads and the vectors it stores are rotated by the run's
//      16-byte offset in its first 128-byte line, so a full warp instruction moves exactly 4 lines
//      (bands sized to 8064 bytes, not 8192, so the rotation fits 4 a thread; the c1024 band is
//      the same 31 rows). Counted on the CPU: 3.81 lines per LDG and 3.97 per STG instruction.
//   4. (V5_FOLD, on in v5, off in v5b) The zero planes are folded into the data CTAs: the grid
//      covers only the T_out - dpad source planes, and the data CTA of (band, source plane j)
//      writes piece j of each zero plane's band (cut at 128-byte lines), issued right after its
//      loads, inside their latency. c1024 t2 h60 w104 cache1: 6144 CTAs, each also writing ~2.2 KB
//      of zeros, instead of 8192.
//   About 19 wavefronts per 512 bytes (STS 5.5, LDS 5, SHFL 1, LDG 3.8, STG 4) against v4's ~33.
//   Everything else is v4's: a band of whole output rows of one plane, the output image in
//   shared memory, one constant funnel shift per vector; 32 registers, 8224 bytes of shared
//   memory, 16 CTAs an SM, no spills (ptxas, sm_90a, CUDA 13.0).
//
// Path (`img5_fold_u16_t128_b8064`, or `img5_u16_t128_b8064` when the call has no zero plane or
// V5_FOLD is 0): v4's image-path conditions with 16-byte units (2-byte elements, packed (H, W)
// sources, W % 8 == 0, 16-byte-aligned sources and plane strides, 4-byte-aligned output),
// W_out * 2 <= 8064 and an output of at most kMaxOutBytes (192 MiB, the class knob). Every
// other call is v4's entry, unchanged: the 17-20 MB rows take v4's u8 path, the 285-617 MB rows
// v4's u16 path, the regression rows v4's paths except reg_cp_no_cache_no_pad (W = 16), which
// takes img5_u16.
//
// PREDICTION (not measured; H200, cold, against run 20261201T013257Z-00ac2279). Basis: v5 closes
// about half of v4's steady-state gap to the stream's slope (cache1 3.92 -> ~4.15 TB/s, cache2
// 4.04 -> ~4.23), the fold another ~1.5% on cache1; fixed parts as v4's.
//   c1024 t2 h60 w104 cache1 (92.2 MB):  v4 25.54 us (84.7% of copy) -> v5 23.9 us (23.2-25.2),
//                                        90.6% (86.0-93.3), ~97% of stream
//   c1024 t2 h60 w104 cache2 (105.0 MB): v4 27.85 us (88.5%) -> v5 26.6 us (25.9-27.6), 92.7%
//                                        (89.3-95.2), ~101% of stream
//   the 17-20 MB and 285-617 MB rows: v4's code, v4's times within noise.
// v5b (fold off): cache1 24.3 us (23.5-25.4), 89.1%; cache2 as v5 (the same code there).

#define kp_fused_causal_conv3d_cat_pad v4_fused_causal_conv3d_cat_pad
#include "v4.cu"
#undef kp_fused_causal_conv3d_cat_pad

#ifndef V5_FOLD
#define V5_FOLD 1  // zero planes folded into the data CTAs (v5b: 0)
#endif

namespace v5 {

constexpr int kThreads = kImgThreads;                 // 128, v4's
constexpr int kPer = kImgPer;                         // 4 units and 4 vectors a thread, v4's
constexpr int kBandBytes = kImgBandBytes - 128;       // 8064: the 128-byte rotation fits kPer a thread
constexpr int64_t kMaxOutBytes = 192ll << 20;         // the class: outputs of at most 192 MiB (a knob)
constexpr bool kFold = V5_FOLD != 0;
static_assert(kPer * kThreads * 16 >= kBandBytes + 128, "rotated units and vectors fit kPer a thread");
static_assert((kBandBytes / 4) + 8 <= kImgWords, "the image fits v4's buffer");

// Zeroes p[0, n): scalar head to 16 bytes, 16-byte vectors rotated so that a full warp
// instruction covers whole 128-byte lines, scalar tail.
__device__ __forceinline__ void zero_run(uint16_t* p, int32_t n) {
    const int32_t tid = static_cast<int32_t>(threadIdx.x);
    const int32_t pre = static_cast<int32_t>((reinterpret_cast<uintptr_t>(p) & 15) >> 1);
    const int32_t head = min(n, (8 - pre) & 7);
    const int32_t nvec = (n - head) >> 3;
    const int32_t tail0 = head + nvec * 8;
    uint4* ov = reinterpret_cast<uint4*>(p + head);
    const int32_t m = static_cast<int32_t>((reinterpret_cast<uintptr_t>(ov) >> 4) & 7);
#pragma unroll
    for (int i = 0; i < kPer; ++i) {  // n <= kBandBytes / 2: nvec + m <= kPer * kThreads
        const int32_t v = tid + i * kThreads - m;
        if (v >= 0 && v < nvec) ov[v] = make_uint4(0u, 0u, 0u, 0u);
    }
    if (tid < head) p[tid] = 0;
    else if (tid >= 8 && tid - 8 < n - tail0) p[tail0 + tid - 8] = 0;
}

// Piece q of J of a zero band of count elements starting at element address base (mod 64):
// cut points at 128-byte lines, piece 0 starting at 0 and piece J - 1 ending at count.
__device__ __forceinline__ int32_t zero_cut(int32_t q, int32_t J, int32_t count, int32_t bm) {
    if (q <= 0) return 0;
    if (q >= J) return count;
    const int32_t e = static_cast<int32_t>((static_cast<int64_t>(count) * q) / J);
    const int32_t a = ((bm + e + 63) & ~63) - bm;
    return min(max(a, 0), count);
}

// grid (bands, T_out - zpl, N * C); blockIdx.y + zpl is the output plane t_o. zpl = dpad when
// the zero planes are folded into the data CTAs, else 0 (zero planes are CTAs of their own).
__global__ void __launch_bounds__(kThreads, kImgMinBlocks) cat_pad_img5_kernel(ImgArgs a, int32_t zpl) {
    using E = uint16_t;
    __shared__ __align__(16) uint32_t img[kImgWords];

    const int32_t tid = static_cast<int32_t>(threadIdx.x);
    const int32_t lane = tid & 31;
    const int32_t band = static_cast<int32_t>(blockIdx.x);
    const int32_t t_o = static_cast<int32_t>(blockIdx.y) + zpl;
    const int32_t T_out = static_cast<int32_t>(gridDim.y) + zpl;
    const uint32_t nc = blockIdx.z;
    const uint32_t n = fdiv(nc, a.f_c);
    const int32_t c = static_cast<int32_t>(nc - n * a.f_c.d);

    const int32_t b0 = band * a.rows;
    const int32_t b1 = min(b0 + a.rows, a.H_out);
    const int32_t count = (b1 - b0) * a.W_out;
    const int64_t plane0 = static_cast<int64_t>(nc) * T_out;  // output plane of t_o = 0
    E* out = static_cast<E*>(a.out) + ((plane0 + t_o) * a.H_out + b0) * a.W_out;

    const int32_t s = t_o - a.dpad;
    const int32_t h_lo = max(b0 - a.ht, 0);
    const int32_t h_hi = min(b1 - a.ht, a.H);
    const bool data = s >= 0 && h_lo < h_hi;  // uniform per CTA

    // ---- every load first; unit k of the band's source run is loaded by thread k + a0 (mod 128),
    // a0 the run's 16-byte offset in its first 128-byte line.
    uint4 r[kPer];
    int32_t nunits = 0, a0 = 0;
    const uint4* s0 = nullptr;
    if (data) {
        const E* srce;
        if (s < a.cache_t) {
            srce = static_cast<const E*>(a.cache) + static_cast<int64_t>(n) * a.cs_n + static_cast<int64_t>(c) * a.cs_c +
                   static_cast<int64_t>(s) * a.cs_t;
        } else {
            srce = static_cast<const E*>(a.x) + static_cast<int64_t>(n) * a.xs_n + static_cast<int64_t>(c) * a.xs_c +
                   static_cast<int64_t>(s - a.cache_t) * a.xs_t;
        }
        s0 = reinterpret_cast<const uint4*>(srce + static_cast<int64_t>(h_lo) * a.W);
        a0 = static_cast<int32_t>((reinterpret_cast<uintptr_t>(s0) >> 4) & 7);
        nunits = (h_hi - h_lo) * a.ur;
#pragma unroll
        for (int i = 0; i < kPer; ++i) {
            const int32_t k = tid + i * kThreads - a0;
            if (k >= 0 && k < nunits) r[i] = __ldg(s0 + k);
        }
    }

    // ---- folded zero planes: piece blockIdx.y of each zero plane's band, inside the load latency.
    if (zpl > 0) {
        const int32_t J = static_cast<int32_t>(gridDim.y), q = static_cast<int32_t>(blockIdx.y);
        for (int32_t z = 0; z < zpl; ++z) {
            E* zb = static_cast<E*>(a.out) + ((plane0 + z) * a.H_out + b0) * a.W_out;
            const int32_t bm = static_cast<int32_t>((reinterpret_cast<uintptr_t>(zb) >> 1) & 63);
            const int32_t lo = zero_cut(q, J, count, bm), hi = zero_cut(q + 1, J, count, bm);
            zero_run(zb + lo, hi - lo);
        }
    }
    if (!data) {  // a zero plane of its own (zpl == 0) or a band of pad rows only
        zero_run(out, count);
        return;
    }

    // Output geometry, as v4: scalar head [0, head), nvec aligned vectors, scalar tail [tail0, count).
    const int32_t opre = static_cast<int32_t>((reinterpret_cast<uintptr_t>(out) & 15) >> 1);
    const int32_t head = min(count, (8 - opre) & 7);
    const int32_t nvec = (count - head) >> 3;
    const int32_t tail0 = head + nvec * 8;
    const int32_t sigma = a.wl & 1;
    const int32_t phi = (sigma - head) & 7;
    const int32_t k0 = (head + phi - sigma) >> 3;
    const int32_t pitch = a.W_out >> 1;
    const int32_t wh = a.W >> 1;
    const int32_t nr = h_hi - h_lo;
    const int32_t rb0 = ((h_lo + a.ht - b0) * a.W_out + a.wl + phi) >> 1;
    const int32_t tw = ((count + phi) >> 1) + 2;

    // ---- zero words (v4's): top pads and phi, bottom pads, the gap between each two source rows.
    for (int32_t w = tid; w < rb0; w += kThreads) img[w] = 0u;
    const int32_t sfx0 = rb0 + (nr - 1) * pitch + wh;
    for (int32_t w = sfx0 + tid; w < tw; w += kThreads) img[w] = 0u;
    if (a.wl == 1) {
        for (int32_t sr = tid; sr < nr - 1; sr += kThreads) img[rb0 + sr * pitch + wh] = 0u;
    } else {
        for (int32_t sr = tid; sr < nr - 1; sr += kThreads) {
            const int32_t g = rb0 + sr * pitch + wh;
            for (int32_t qq = 0; qq < a.wl; ++qq) img[g + qq] = 0u;
        }
    }

    // ---- data words: unit k (row sr = k / ur) to image words D .. D + 3, D = rb0 + 4k + sr * wl.
    // The c-th store of lane l writes the word at address == c + l / 8 (mod 4): no bank twice in
    // an 8-lane group (addresses 4 apart), and the four groups on four different residues.
    const int32_t grp = lane >> 3;
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
        const int32_t k = tid + i * kThreads - a0;
        if (k >= 0 && k < nunits) {
            const int32_t sr = static_cast<int32_t>(fdiv(static_cast<uint32_t>(k), a.f_ur));
            const int32_t D = rb0 + 4 * k + sr * a.wl;
            const int32_t rot = (grp - D) & 3;
            uint32_t w0 = r[i].x, w1 = r[i].y, w2 = r[i].z, w3 = r[i].w;
            if (rot & 1) {
                const uint32_t t = w0;
                w0 = w1; w1 = w2; w2 = w3; w3 = t;
            }
            if (rot & 2) {
                uint32_t t = w0;
                w0 = w2; w2 = t;
                t = w1; w1 = w3; w3 = t;
            }
            // w_j is the unit's word (j + rot) & 3.
            img[D + (rot & 3)] = w0;
            img[D + ((rot + 1) & 3)] = w1;
            img[D + ((rot + 2) & 3)] = w2;
            img[D + ((rot + 3) & 3)] = w3;
        }
    }
    __syncthreads();

    // ---- write: vector v (thread v + m mod 128) is the funnel shift of image words
    // 4(v + k0) .. 4(v + k0) + 4; m is the vectors' 16-byte offset in their first 128-byte line.
    const uint32_t sh = static_cast<uint32_t>(sigma) * 16u;
    uint4* ov = reinterpret_cast<uint4*>(out + head);
    const int32_t m = static_cast<int32_t>((reinterpret_cast<uintptr_t>(ov) >> 4) & 7);
    const uint4* img4 = reinterpret_cast<const uint4*>(img) + k0;
    // Every LDS.128 first, then the SHFLs (all lanes: no divergence around them), then lane 31's
    // fifth words, then the stores. A warp with no vector in iteration i skips its loads (the
    // test is warp-uniform); lanes outside [0, nvec) read a clamped, written image vector.
    int32_t vr[kPer];
    bool act[kPer];
    uint4 p[kPer];
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
        const int32_t vw = (tid - lane) + i * kThreads - m;  // lane 0's vector
        act[i] = vw < nvec && vw + 31 >= 0;
        vr[i] = min(max(vw + lane, 0), nvec);  // word 4(k0 + nvec) is written (v4's last fifth word)
        p[i] = act[i] ? img4[vr[i]] : make_uint4(0u, 0u, 0u, 0u);
    }
    uint32_t p4[kPer];
#pragma unroll
    for (int i = 0; i < kPer; ++i) p4[i] = __shfl_down_sync(0xffffffffu, p[i].x, 1);
#pragma unroll
    for (int i = 0; i < kPer; ++i)
        if (act[i] && lane == 31) p4[i] = img[4 * (k0 + vr[i]) + 4];
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
        const int32_t v = tid + i * kThreads - m;
        if (v >= 0 && v < nvec)
            ov[v] = make_uint4(__funnelshift_r(p[i].x, p[i].y, sh), __funnelshift_r(p[i].y, p[i].z, sh),
                               __funnelshift_r(p[i].z, p[i].w, sh), __funnelshift_r(p[i].w, p4[i], sh));
    }
    int32_t e = -1;
    if (tid < head) e = tid;
    else if (tid >= 8 && tid - 8 < count - tail0) e = tail0 + tid - 8;
    if (e >= 0) out[e] = reinterpret_cast<const E*>(img)[e + phi];
}

// The v5 path's plan: every check v4's entry makes before its image path, then the class. Any
// doubt returns false and the call goes to v4's entry (its checks, paths and rejections).
bool plan(const kp_call* call, ImgArgs* args, dim3* grid, int32_t* zpl_out) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != 3 || call->n_scalars != 6 ||
        !ranks_valid(call))
        return false;
    const kp_tensor& x = call->tensors[0];
    const kp_tensor& cx = call->tensors[1];
    const kp_tensor& out = call->tensors[2];
    int64_t wl, wr, ht, hb, dl, dr;
    if (!pad_value(call->scalars[0], &wl) || !pad_value(call->scalars[1], &wr) || !pad_value(call->scalars[2], &ht) ||
        !pad_value(call->scalars[3], &hb) || !pad_value(call->scalars[4], &dl) || !pad_value(call->scalars[5], &dr))
        return false;
    if (x.dtype != KP_BF16 && x.dtype != KP_F16) return false;  // 2-byte elements only
    if (x.rank != 5) return false;
    int64_t xs[5] = {0, 0, 0, 0, 0}, cs[5] = {0, 0, 0, 0, 0};
    int64_t x_numel = 0, c_numel = 0;
    if (!source_ok(x, xs, &x_numel)) return false;
    const int64_t N = x.shape[0], C = x.shape[1], T = x.shape[2], H = x.shape[3], W = x.shape[4];
    int64_t cache_t = 0;
    const bool has_cache = cx.dtype != KP_ABSENT;
    if (has_cache) {
        if (cx.dtype != x.dtype || cx.rank != 5 || cx.shape[0] != N || cx.shape[1] != C || cx.shape[3] != H ||
            cx.shape[4] != W || !source_ok(cx, cs, &c_numel))
            return false;
        cache_t = cx.shape[2];
    }
    if (dl < cache_t || dr != 0 || wl != wr || ht != hb) return false;
    const int64_t dpad = dl - cache_t;
    const int64_t T_out = dpad + cache_t + T, H_out = H + 2 * ht, W_out = W + 2 * wl;
    if (T_out > kDimMax || H_out > kDimMax || W_out > kDimMax) return false;
    if (out.dtype != x.dtype || out.rank != 5 || out.shape[0] != N || out.shape[1] != C || out.shape[2] != T_out ||
        out.shape[3] != H_out || out.shape[4] != W_out || !is_contiguous(out))
        return false;
    const int64_t odims[5] = {N, C, T_out, H_out, W_out};
    int64_t total = 1;
    for (int d = 0; d < 5; ++d) {
        if (odims[d] <= 0) return false;  // empty: v4's entry returns without launching
        if (total > (1ll << 39) / odims[d]) return false;
        total *= odims[d];
    }
    if (total * 2 > kMaxOutBytes) return false;  // the class
    if (out.data == nullptr || !ptr_aligned(out.data, 4) || !ptr_aligned(x.data, 16) ||
        (has_cache && !ptr_aligned(cx.data, 16)))
        return false;
    // v4's image-path conditions with 16-byte units (8 elements: W % 8, plane strides % 8).
    if (W < 8 || W % 8 != 0 || H < 1 || !inner_packed(xs, H, W) || (has_cache && !inner_packed(cs, H, W)) ||
        W_out * 2 > kBandBytes || N * C > 65535 || T_out > 65535)
        return false;
    if (xs[0] % 8 != 0 || xs[1] % 8 != 0 || xs[2] % 8 != 0) return false;
    if (has_cache && (cs[0] % 8 != 0 || cs[1] % 8 != 0 || cs[2] % 8 != 0)) return false;
    int64_t rows = (kBandBytes / 2) / W_out;  // >= 1
    if (rows > H_out) rows = H_out;
    const int64_t bands = (H_out + rows - 1) / rows;
    rows = (H_out + bands - 1) / bands;
    if (bands > 65535) return false;
    const int64_t T_src = cache_t + T;
    const int64_t zpl = (kFold && dpad > 0 && T_src > 0) ? dpad : 0;

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
    a.rows = static_cast<int32_t>(rows);
    a.ur = static_cast<int32_t>(W / 8);
    a.f_c = make_fastdiv(static_cast<uint32_t>(C));
    a.f_ur = make_fastdiv(static_cast<uint32_t>(a.ur));
    *args = a;
    *grid = dim3(static_cast<unsigned>(bands), static_cast<unsigned>(T_out - zpl), static_cast<unsigned>(N * C));
    *zpl_out = static_cast<int32_t>(zpl);
    return true;
}

}  // namespace v5

extern "C" {

int32_t kp_fused_causal_conv3d_cat_pad(kp_call* call, void* stream) {
    ImgArgs a{};
    dim3 grid;
    int32_t zpl = 0;
    if (!v5::plan(call, &a, &grid, &zpl)) return v4_fused_causal_conv3d_cat_pad(call, stream);
    set_path(call, zpl > 0 ? "img5_fold_u16_t128_b8064" : "img5_u16_t128_b8064");
    v5::cat_pad_img5_kernel<<<grid, v5::kThreads, 0, static_cast<cudaStream_t>(stream)>>>(a, zpl);
    return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
}

}  // extern "C"
