// kpilot-parent: v5 sha256 5a4793e7562c53031ac99d483f1d050064494c8f7f3a9088cbe30fe372c26fe4
//
// Candidate v6 for tasks/causal_conv3d_cat_pad: v5's image path (16-byte-unit rows; v5's fold of
// the zero planes; loads and stores rotated onto 128-byte lines) rebuilt for fewer issued
// instructions, now on every output size (v5 stopped at 192 MiB: the c256 rows ran v4's code).
// Everything else is v4's entry (included below, renamed), unchanged.
//
// Why (H200): v5 (run 20261201T053521Z-29abf3a3) reached 86.0% of copy on the 92 MB row
// (prod_c1024_t2_h60_w104__cache1, 25.15 us, 92.2% of its stream reference), v4 84.7% (25.54 us,
// run 20261201T013257Z-00ac2279). ncu of v5 on that row (run 20261201T053550Z-5ca80090): 23.18 us a
// call, DRAM 59.8% of peak, top stalls not_selected 5043, math_pipe_throttle 2210, wait 1357 cycles
// a warp, selected 730 (= warp-instructions issued a warp): issue-bound. v5 bought v4's shared-
// memory stalls back with instructions: per warp ~730 issued (~170 thread-instructions per 16
// output bytes) against v4's ~300 (~83, NOTES' model). In v5's SASS (cuobjdump -sass, sm_90a) a
// staged unit costs ~45 instructions (8 SEL of the rotation, four rotated addresses, the row
// division, and ptxas re-deriving tid and the shared-window base at 32 registers inside each
// BSSY-guarded unit block), a written vector ~30-40 (LDS.128 and the lane-31 LDS in guarded
// branches with the same re-derivations, SHFL, 4 SHF, STG), the three zero-word loops unrolled by
// 4/16 with ~20 instructions of set-up each, and the fold's piece cut a 64-bit division.
//
// What changes (kernel cat_pad_img6_kernel<SIG, WL1>):
//   1. Staging by cp.async (LDGSTS.32, 4 bytes global -> shared, no registers): lane l of slot j
//      copies source word l + 128 j - a0w of the band's run (a0w: the run's word offset in its
//      128-byte line) to image word rb0 + w + (w / wh) * wl; one warp instruction reads exactly one
//      128-byte line and writes 32 consecutive image words (a row gap inside: at most 2-way), so
//      no bank conflict, no rotation, no SEL; the row is umulhi(w, ceil(2^32 / wh)) (exact for
//      w < 2^32 / wh). 8 slots an iteration, the predicate inside the asm (with a C++ `if`, ptxas
//      re-derived the loop invariants in every predicated slot): ~7 instructions a slot.
//   2. Fifth word of a vector: one LDS.32 (4-way, 1 instruction) instead of SHFL + a guarded
//      lane-31 LDS (3 instructions and a branch); LDS.128 of lanes outside [0, nvec) read inside
//      a 128-byte margin of the buffer (nothing of theirs is stored), so no clamping.
//   3. Fold without division: the zero plane's band is cut at 128-byte lines every zpiece
//      elements (host-computed); a piece is whole 16-byte vectors from its line plus at most 7
//      scalars at the band's two ends, 32-bit offsets from one 64-bit line pointer.
//   4. Zero words of the image (pads, phi, one gap word a row when wl == 1) in one loop of one
//      iteration a thread on the production rows; wl == 1 and the shift (SIG = wl & 1) are
//      template constants; uniform early exits for the slots no thread of the CTA needs.
//   Dynamic count (warp-level path through the SASS, c1024 t2 h60 w104): ~430 warp-instructions a
//   warp with the fold (cache1), ~360 without (cache2): ~101 / ~113 thread-instructions per 16
//   output bytes, against v5's ~170 (ncu) and v4's ~83 / ~97 (model). By phase, cache1: prologue
//   ~105, staging ~115, fold ~73, zero words ~42, barrier and write set-up ~23, write ~62, scalars
//   ~6. Shared/L1 wavefronts per 512 bytes moved ~21 (LDGSTS 4 + image writes ~5 + LDS.128 4 +
//   LDS.32 4 + STG 4), v5 ~19, v4 ~33. 32 registers, 8448 bytes of shared memory, no spills, 16
//   CTAs an SM (ptxas, sm_90a, CUDA 13.0).
//
// Path `img6_fold_cpa4_s1_t128_b8064` (`img6_cpa4_s1_t128_b8064` with no zero plane; `_s0` for
// even wl): v5's conditions (2-byte elements, packed (H, W) sources, W % 8 == 0, 16-byte-aligned
// sources and plane strides, 4-byte-aligned output, W_out * 2 <= 8064) with no size class: the
// c1024 t2, c512 and c256 rows and reg_cp_no_cache_no_pad. Every other call is v4's entry (the
// 17-20 MB rows: v4's u8 path; fp32, odd W, strided rows: v4's band / generic paths; rejections).
// v6b (V6_LDG_STAGE 1, one knob): v4's LDG.128 + 4 STS.32 staging in the same kernel.
//
// PREDICTION (not measured; H200, cold; against v5's run 20261201T053521Z-29abf3a3 and, for the
// c256 rows, v4's code in that run). Basis: issue time falls from ~19 us (v5, 1.755 GHz) to ~11 us
// a call on the 92 MB row, below the ~23 us the bytes need, with v5's wavefront budget; the rest
// of the gap to the stream reference is per-CTA latency, which v6 shortens but does not remove.
//   c1024 t2 h60 w104 cache1 (92.2 MB):  v5 25.15 us (86.0% of copy) -> 24.4 us (23.6-25.2), 88.7%
//                                        (86.0-91.6), ~95% of stream
//   c1024 t2 h60 w104 cache2 (105.0 MB): v5 27.73 us (88.8%) -> 27.3 us (26.8-27.9), 90.2% (88.3-91.9)
//   c512 t4 h120 w208 cache1 (285.2 MB): v5 72.89 us (91.8%) -> 72.0 us (70.5-73.5), 93.0%
//   c512 t4 h120 w208 cache2 (310.8 MB): v5 77.82 us (93.7%) -> 77.0 us (75.5-78.5), 94.7%
//   c256 t4 h240 w416 cache1 (566.3 MB): v4's code 145.58 us (91.3%) -> 142 us (139-146), 93.6%
//   c256 t4 h240 w416 cache2 (617.5 MB): v4's code 154.43 us (93.9%) -> 151.5 us (148-155), 95.7%
//   the 17-20 MB rows: v4's code, v4's times within noise.
// Issue 9 (every row of 64 MB or more at >= 90% of copy) is met by the central prediction on
// every row but the 92 MB one (needs 24.05 us); it hinges on that row as before.

#define kp_fused_causal_conv3d_cat_pad v4_fused_causal_conv3d_cat_pad
#include "v4.cu"
#undef kp_fused_causal_conv3d_cat_pad

#ifndef V6_LDG_STAGE
#define V6_LDG_STAGE 0  // staging: 0 = LDGSTS.32 by source word (v6), 1 = v4's LDG.128 + 4 STS.32 a unit (v6b)
#endif

namespace v6 {

constexpr int kThreads = 128;
constexpr int kPer = 4;                                   // output vectors a thread (v4's, v5's)
constexpr int kBandBytes = 8064;                          // v5's: nvec + m <= kPer * kThreads
constexpr int kSlots = (kBandBytes / 4 + 31 + kThreads - 1) / kThreads;  // 16 staging slots of 128 words
#ifndef V6_U
#define V6_U 8
#endif
constexpr int kU = V6_U;                                  // staging slots an iteration
constexpr int kMargin = 8;                                // image chunks (16 B) before chunk 0
constexpr int kChunks = kMargin + kPer * kThreads + 8;    // 528 chunks, 8448 bytes
constexpr int kMinBlocks = 2048 / kThreads;               // 16 CTAs an SM: 32 registers
static_assert(kSlots * kThreads >= kBandBytes / 4 + 31, "a band's source words fit the staging slots");
static_assert(kMinBlocks * kChunks * 16 <= 200 * 1024, "16 CTAs' shared memory fits an SM");

struct Args {
    const void* x;
    const void* cache;
    void* out;
    int64_t xs_n, xs_c, xs_t;  // element strides of x (H stride W, W stride 1)
    int64_t cs_n, cs_c, cs_t;  // of cache_x
    int32_t H, W, cache_t, H_out, W_out, dpad, ht, wl, rows;
    uint32_t wl4;    // 4 * wl: image bytes between two source rows' runs
    int32_t wh;      // W / 2: 4-byte words per source row
    uint32_t m_wh;   // ceil(2^32 / wh): the row of source word w is umulhi(w, m_wh) (exact for w < 2^32 / wh)
    int32_t zpiece;  // folded zero planes: elements per piece, a multiple of 64 (128 bytes)
    FastDiv f_c, f_ur;  // C; ur = W / 8 (16-byte units a source row, v6b's staging)
};

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 4 bytes global -> shared without registers (LDGSTS), issued only when w < n (unsigned); L1-allocating,
// the only form for 4 bytes. The predicate is inside the asm so that the address arithmetic stays
// unconditional (ptxas otherwise re-derives loop invariants inside every predicated slot).
__device__ __forceinline__ void cp_async4_if(uint32_t dst, const void* src, uint32_t w, uint32_t n) {
    asm volatile(
        "{\n\t.reg .pred p;\n\tsetp.lt.u32 p, %2, %3;\n\t@p cp.async.ca.shared.global [%0], [%1], 4;\n\t}\n" ::"r"(dst),
        "l"(src), "r"(w), "r"(n)
        : "memory");
}

__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

// Zeroes p[0, n), n <= kBandBytes / 2 + 64: scalar head to 16 bytes, 16-byte vectors rotated so
// that a full warp instruction covers whole 128-byte lines, scalar tail.
__device__ __forceinline__ void zero_run(uint16_t* p, int32_t n) {
    const int32_t tid = static_cast<int32_t>(threadIdx.x);
    const int32_t pre = static_cast<int32_t>((reinterpret_cast<uintptr_t>(p) & 15) >> 1);
    const int32_t head = min(n, (8 - pre) & 7);
    const int32_t nvec = (n - head) >> 3;
    const int32_t tail0 = head + nvec * 8;
    uint4* ov = reinterpret_cast<uint4*>(p + head);
    const int32_t m = static_cast<int32_t>((reinterpret_cast<uintptr_t>(ov) >> 4) & 7);
    int32_t v = tid - m;
    if (v < 0) v += kThreads;
#pragma unroll 1
    for (; v < nvec; v += kThreads) ov[v] = make_uint4(0u, 0u, 0u, 0u);
    if (tid < head) p[tid] = 0;
    else if (tid >= 8 && tid - 8 < n - tail0) p[tail0 + tid - 8] = 0;
}

// grid (bands, T_out - zpl, N * C); blockIdx.y + zpl is the output plane t_o. zpl = dpad when the
// zero planes are folded into the data CTAs (v5's fold), else 0. SIG = wl & 1: the image phase.
template <int SIG, bool WL1>
__global__ void __launch_bounds__(kThreads, kMinBlocks) cat_pad_img6_kernel(Args a, int32_t zpl) {
    using E = uint16_t;
    __shared__ __align__(16) uint32_t sm[kChunks * 4];
    uint32_t* const img = sm + kMargin * 4;

    const int32_t tid = static_cast<int32_t>(threadIdx.x);
    const int32_t band = static_cast<int32_t>(blockIdx.x);
    const int32_t t_o = static_cast<int32_t>(blockIdx.y) + zpl;
    const int32_t T_out = static_cast<int32_t>(gridDim.y) + zpl;
    const uint32_t nc = blockIdx.z;

    const int32_t b0 = band * a.rows;
    const int32_t b1 = min(b0 + a.rows, a.H_out);
    const int32_t count = (b1 - b0) * a.W_out;
    const int64_t plane0 = static_cast<int64_t>(nc) * T_out;  // output plane of t_o = 0
    E* const out = static_cast<E*>(a.out) + ((plane0 + t_o) * a.H_out + b0) * a.W_out;

    const int32_t s = t_o - a.dpad;
    const int32_t h_lo = max(b0 - a.ht, 0);
    const int32_t h_hi = min(b1 - a.ht, a.H);
    const bool data = s >= 0 && h_lo < h_hi;  // uniform per CTA

    // Output geometry (v4's): scalar head [0, head), nvec aligned vectors, scalar tail [tail0, count);
    // image element of output element e is e + phi; vector v is image chunk v + k0 shifted by SIG * 16 bits.
    const int32_t opre = static_cast<int32_t>((reinterpret_cast<uintptr_t>(out) & 15) >> 1);
    const int32_t head = min(count, (8 - opre) & 7);
    const int32_t nvec = (count - head) >> 3;
    const int32_t tail0 = head + nvec * 8;
    const int32_t phi = (SIG - head) & 7;
    const int32_t k0 = (head + phi - SIG) >> 3;
    const int32_t nr = h_hi - h_lo;
    const int32_t rb0 = ((h_lo + a.ht - b0) * a.W_out + a.wl + phi) >> 1;  // image word of source row 0

    // ---- staging, issued first: source word w of the band's run (row sr = w / wh) is image word
    // rb0 + w + sr * wl, copied by LDGSTS.32. Lane l of slot j copies word l + 128 j - a0w (a0w: the
    // run's word offset in its 128-byte line), so each warp instruction reads one whole line and
    // writes 32 consecutive image words (one gap at most: <= 2-way).
#if V6_LDG_STAGE
    uint4 r[kPer];
    const uint4* s4 = nullptr;
    int32_t a0u = 0, nunits = 0;
#endif
    if (data) {
        const uint32_t n = fdiv(nc, a.f_c);
        const int32_t c = static_cast<int32_t>(nc - n * a.f_c.d);
        const E* srce;
        if (s < a.cache_t) {
            srce = static_cast<const E*>(a.cache) + static_cast<int64_t>(n) * a.cs_n + static_cast<int64_t>(c) * a.cs_c +
                   static_cast<int64_t>(s) * a.cs_t;
        } else {
            srce = static_cast<const E*>(a.x) + static_cast<int64_t>(n) * a.xs_n + static_cast<int64_t>(c) * a.xs_c +
                   static_cast<int64_t>(s - a.cache_t) * a.xs_t;
        }
        const uint32_t* srcw = reinterpret_cast<const uint32_t*>(srce + static_cast<int64_t>(h_lo) * a.W);
#if V6_LDG_STAGE
        // v6b: v4's staging (one LDG.128 a unit, all loads first; stored after the zero words).
        s4 = reinterpret_cast<const uint4*>(srcw);
        a0u = static_cast<int32_t>((reinterpret_cast<uintptr_t>(s4) >> 4) & 7);
        nunits = nr * (a.wh >> 2);
#pragma unroll
        for (int i = 0; i < kPer; ++i) {
            const int32_t k = tid + i * kThreads - a0u;
            if ((i > 0 || k >= 0) && k < nunits) r[i] = __ldg(s4 + k);
        }
#else
        const int32_t a0w = static_cast<int32_t>((reinterpret_cast<uintptr_t>(srcw) >> 2) & 31);
        const int32_t nwords = nr * a.wh;
        // Lane word w = tid - a0w + 128 j.
        int32_t w = tid - a0w;
        const char* gp = reinterpret_cast<const char*>(srcw + w);
        uint32_t dp = smem_u32(img) + 4u * static_cast<uint32_t>(rb0 + w);
        const uint32_t mwh = a.m_wh, wl4 = WL1 ? 4u : a.wl4;
#pragma unroll 1
        for (int32_t j = 0; j * kThreads - a0w < nwords; j += kU) {  // uniform: kU slots an iteration
#pragma unroll
            for (int u = 0; u < kU; ++u) {
                const uint32_t wu = static_cast<uint32_t>(w + u * kThreads);  // < nwords also drops w < 0
                const uint32_t sr = __umulhi(wu, mwh);
                cp_async4_if(dp + sr * wl4 + u * 4 * kThreads, gp + u * 4 * kThreads, wu, static_cast<uint32_t>(nwords));
            }
            w += kU * kThreads;
            gp += 4 * kU * kThreads;
            dp += 4 * kU * kThreads;
        }
#endif
    }

    // ---- folded zero planes (v5's fold): piece blockIdx.y of each zero plane's band, cut at
    // 128-byte lines every zpiece elements, written while the copies are in flight.
    if (zpl > 0) {
        const int32_t q = static_cast<int32_t>(blockIdx.y);
#pragma unroll 1
        for (int32_t z = 0; z < zpl; ++z) {
            E* zb = static_cast<E*>(a.out) + ((plane0 + z) * a.H_out + b0) * a.W_out;
            const int32_t bm = static_cast<int32_t>((reinterpret_cast<uintptr_t>(zb) >> 1) & 63);
            E* const L = zb - bm;  // the 128-byte line of the band's start; piece q: [lo, hi) from L
            const int32_t lo = max(q * a.zpiece, bm), hi = min((q + 1) * a.zpiece, bm + count);
            const int32_t v0 = (lo + 7) >> 3, v1 = hi >> 3;  // whole vectors [v0, v1)
#pragma unroll 1
            for (int32_t v = v0 + tid; v < v1; v += kThreads) reinterpret_cast<uint4*>(L)[v] = make_uint4(0u, 0u, 0u, 0u);
            // scalars: head [lo, min(8 v0, hi)) and tail [max(8 v1, 8 v0), hi), at most 7 each
            int32_t e = -1;
            if (tid < 8) e = lo + tid < min(8 * v0, hi) ? lo + tid : -1;
            else if (tid < 16) e = max(8 * v1, 8 * v0) + tid - 8 < hi ? max(8 * v1, 8 * v0) + tid - 8 : -1;
            if (e >= 0) L[e] = 0;
        }
    }
    if (!data) {  // a zero plane of its own (zpl == 0) or a band of pad rows only
        zero_run(out, count);
        return;
    }

    // ---- zero words (v4's): top pads and phi [0, rb0), bottom pads [sfx0, tw), the gap of wl
    // words between each two source rows.
    {
        const int32_t pitch = a.W_out >> 1;
        const int32_t sfx0 = rb0 + (nr - 1) * pitch + (a.W >> 1);
        const int32_t tw = ((count + phi) >> 1) + 2;  // image words read (v4's)
        const int32_t npad = rb0 + tw - sfx0;
        const int32_t gap0 = rb0 + (a.W >> 1);
        if (WL1) {  // one index space: pad words [0, npad), then one gap word a row
            const int32_t nz = npad + nr - 1;
#pragma unroll 1
            for (int32_t z = tid; z < nz; z += kThreads)
                img[z < npad ? (z < rb0 ? z : z + (sfx0 - rb0)) : gap0 + (z - npad) * pitch] = 0u;
        } else {
#pragma unroll 1
            for (int32_t z = tid; z < npad; z += kThreads) img[z < rb0 ? z : z + (sfx0 - rb0)] = 0u;
#pragma unroll 1
            for (int32_t sr = tid; sr < nr - 1; sr += kThreads)
                for (int32_t qq = 0; qq < a.wl; ++qq) img[gap0 + sr * pitch + qq] = 0u;
        }
    }
#if V6_LDG_STAGE
    // unit k (row sr = k / ur) to image words rb0 + 4 k + sr * wl (v4's 4 STS.32, 4-way conflicted)
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
        const int32_t k = tid + i * kThreads - a0u;
        if ((i > 0 || k >= 0) && k < nunits) {
            const int32_t sr = static_cast<int32_t>(fdiv(static_cast<uint32_t>(k), a.f_ur));
            uint32_t* d = img + (rb0 + 4 * k + sr * a.wl);
            d[0] = r[i].x; d[1] = r[i].y; d[2] = r[i].z; d[3] = r[i].w;
        }
    }
#else
    cp_async_wait_all();
#endif
    __syncthreads();

    // ---- write: vector v (thread v + m mod 128, m its 16-byte offset in the first 128-byte line)
    // is image chunk v + k0 funnel-shifted with the next chunk's first word. Every thread reads its
    // chunk (inactive lanes read inside the buffer's margins; nothing of theirs is stored).
    uint4* const ov = reinterpret_cast<uint4*>(out + head);
    const int32_t m = static_cast<int32_t>((reinterpret_cast<uintptr_t>(ov) >> 4) & 7);
    const int32_t v0 = tid - m;
    const uint4* ip = reinterpret_cast<const uint4*>(img) + (k0 + v0);
    uint4* op = ov + v0;
    constexpr uint32_t sh = 16u * SIG;
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
        if (i * kThreads - m >= nvec) break;  // uniform: no vector left for the CTA
        const int32_t v = v0 + i * kThreads;
        const bool act = (i > 0 || v >= 0) && v < nvec;
        const uint4 p = ip[i * kThreads];
        if constexpr (SIG == 0) {
            if (act) op[i * kThreads] = p;
        } else {
            const uint32_t p4 = act ? reinterpret_cast<const uint32_t*>(ip + i * kThreads)[4] : 0u;
            if (act)
                op[i * kThreads] = make_uint4(__funnelshift_r(p.x, p.y, sh), __funnelshift_r(p.y, p.z, sh),
                                              __funnelshift_r(p.z, p.w, sh), __funnelshift_r(p.w, p4, sh));
        }
    }
    int32_t e = -1;
    if (tid < head) e = tid;
    else if (tid >= 8 && tid - 8 < count - tail0) e = tail0 + tid - 8;
    if (e >= 0) out[e] = reinterpret_cast<const E*>(img)[e + phi];
}

// The v6 path's plan: every check v4's entry makes before its image path, then v5's 16-byte-unit
// conditions. Any doubt returns false and the call goes to v4's entry (its checks, paths and
// rejections). (v5.cu cannot be included for its plan: it #undefs the entry rename.)
bool plan(const kp_call* call, Args* args, dim3* grid, int32_t* zpl_out) {
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
    if (out.data == nullptr || !ptr_aligned(out.data, 4) || !ptr_aligned(x.data, 16) ||
        (has_cache && !ptr_aligned(cx.data, 16)))
        return false;
    // v5's conditions: 16-byte units (8 elements: W % 8, plane strides % 8), a row within a band.
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
    const int64_t zpl = (dpad > 0 && T_src > 0) ? dpad : 0;  // v5's fold

    Args a{};
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
    a.wl4 = static_cast<uint32_t>(4 * wl);
    a.wh = static_cast<int32_t>(W / 2);
    a.m_wh = static_cast<uint32_t>(((1ull << 32) + static_cast<uint64_t>(a.wh) - 1) / static_cast<uint64_t>(a.wh));
    // J = T_src pieces of zpiece elements from the line below the band's start cover count + 63.
    const int64_t J = T_src > 0 ? T_src : 1;
    const int64_t per = (rows * W_out + 63 + J - 1) / J;
    a.zpiece = static_cast<int32_t>((per + 63) / 64 * 64);
    a.f_c = make_fastdiv(static_cast<uint32_t>(C));
    a.f_ur = make_fastdiv(static_cast<uint32_t>(W / 8));
    *args = a;
    *grid = dim3(static_cast<unsigned>(bands), static_cast<unsigned>(T_out - zpl), static_cast<unsigned>(N * C));
    *zpl_out = static_cast<int32_t>(zpl);
    return true;
}

}  // namespace v6

extern "C" {

int32_t kp_fused_causal_conv3d_cat_pad(kp_call* call, void* stream) {
    v6::Args a{};
    dim3 grid;
    int32_t zpl = 0;
    if (!v6::plan(call, &a, &grid, &zpl)) return v4_fused_causal_conv3d_cat_pad(call, stream);
    const cudaStream_t st = static_cast<cudaStream_t>(stream);
    const bool sig = (a.wl & 1) != 0;
    char path[KP_PATH_LEN];
    snprintf(path, sizeof path, "img6%s_%s_s%d_t%d_b%d", zpl > 0 ? "_fold" : "", V6_LDG_STAGE ? "ldg16" : "cpa4",
             sig ? 1 : 0, v6::kThreads, v6::kBandBytes);
    set_path(call, path);
    if (a.wl == 1) v6::cat_pad_img6_kernel<1, true><<<grid, v6::kThreads, 0, st>>>(a, zpl);
    else if (sig) v6::cat_pad_img6_kernel<1, false><<<grid, v6::kThreads, 0, st>>>(a, zpl);
    else v6::cat_pad_img6_kernel<0, false><<<grid, v6::kThreads, 0, st>>>(a, zpl);
    return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
}

}  // extern "C"
