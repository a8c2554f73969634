// kpilot-parent: v6 sha256 5b88226fb1f468499363fd8e6ee1e741920cb37829ba30e3cde2fe9b49d1df14
//
// Candidate v7 for tasks/fuse_scale_shift: v6 (this file is v6's text, from `kpilot candidate new
// --from v6`) with EP2's row kernel replaced: v7_ep2_kernel computes the row's mean and M2 in ONE
// block reduction (Chan et al.'s pairwise merge of (mean, M2)) instead of v6's two (sum, then
// sum of squares about the mean). Everything else is v6's, byte for byte: EP1 (v5c's), EP3
// (v6_row_kernel<true>, 72 registers), every dispatch condition and fallback, the Args layout. EP2's
// path is ln_select01_row128x3_1red; EP3's stays residual_ln_select01_row128x3.
//
// WHY, part 1: there is no excess L2 traffic on EP2 to remove (the question this version was asked
// to answer). From the ncu CSVs in ncu/fuse_scale_shift/ (H200; EP2 run 20261201T055957Z-796f532b,
// EP3 run 20261201T060005Z-95e400b9, earlier runs 0b39173a, 78f3ba2d, 0981a996, 70bbf5b4, 4778398a,
// 68253eec), per call:
//   * What the SMs ask of L2 is exactly compulsory plus L1-hit traffic. v6's EP2: global load
//     requests 208,106,496 B = 8424 rows x (x + the selected scale, shift and gate rows, 4 x 6144 B)
//     + 8424 x 4 warps x one 32 B sector of the index; stores 103,514,112 B = out + gate_out
//     exactly (2 x 51,757,056; 202,176 full 512-byte warp stores, no partial sectors); 438,048 load
//     instructions = 8424 x 4 warps x 13 (14.8 B average width: 12 x 16 B + one 4 B index).
//   * lts__throughput (the "82% of L2 peak") is the compulsory byte rate and nothing else:
//     lts% / (compulsory bytes / ncu duration) = 21.00, 21.08, 21.00 %/(TB/s) on v6's three EP2
//     calls, 21.01-21.07 for the baseline's EP2, 21.08-21.09 for v6's EP3, and 21.00-21.01 for v1's
//     EP1 flat stream on wan-t2v (run 68253eec), which moves only compulsory bytes. So 100% of
//     lts__throughput is ~4.75 TB/s of compulsory traffic (DRAM's peak in the same data: 3.32 TB/s
//     at 68.95% = 4.81 TB/s), and EP2 at 82-84% is its 155.3 MB at 38.9-40.1 us. Kernels that do
//     re-read through L2 show up above 21.0: v1's warp rows 21.8 (EP2) / 23.4 (EP3), v2's
//     persistent CTAs 21.6-21.7 / 22.1, the baseline's EP1 tiles 21.55.
//   * The modulation rows (3/4 of EP2's load requests) hit L1: v2, which read no modulation through
//     global loads at all, sat at 21.6-21.7 (v2.1: 21.1), v6 at 21.0.
//   * DRAM's 67%: in ncu's window DRAM moves 51.9 MB read (x) but only 77.0 of the 103.5 MB
//     written, 0.830 of compulsory: ~26.5 MB of out / gate_out is still dirty in L2 when the kernel
//     ends (EP3: 0.920, ~25 MB; EP1 wan-t2v: 0.983-0.985, 17-19 MB). In the harness that write-back
//     lands in the next launch. "L2-bound with DRAM at 67%" is the write-heavy row's compulsory
//     stream seen before its write-back, not extra L2 work.
// EP2's real limit is its mix (1 byte read per 2 written): its stream reference, a kernel that only
// moves the compulsory bytes, runs at 92.3-92.5% of copy, and v6 at 98.9% of that (run
// 20261201T055512Z-96cbc342: 40.15 us against the stream's ~39.70 us).
//
// WHY, part 2 (what v7 changes): the remaining 1.1% to the stream reference is, on this reading,
// mostly the grid's ramp and drain, whose length is a row's unloaded lifetime: the x round trip
// (the stream has the same) plus what a row does after x arrives. v6's post-load chain (SASS read):
// a 24-long dependent FADD chain, 5 dependent shuffles, barrier, shared read, div.full, a 24-long
// FFMA chain, 5 dependent shuffles, barrier, shared read, div.full, rsqrt, then the output. v7's:
// three independent 8-long chains for the sum and for M2, 5 merge steps of two independent
// shuffles, ONE barrier, two 16-byte shared reads, a multiply by 1/3072 instead of div.full,
// rsqrt, the output. Loads, their order (index, x, gate row -> gate_out, scale, shift) and
// occupancy are v6's.
//
// The merge: each thread's 24 elements give (mean_t, M2_t) (mean_t = s * (1/24) plus one FMA
// residual correction, exact whenever s / 24 is representable, so a constant row keeps
// x - mean == 0 and var == 0); lanes merge at xor distance 16..1 with mean = (m + m') / 2 and
// M2 = M2 + M2' + (m' - m)^2 * n / 2 (n the elements a side: 24 .. 384), symmetric in the two
// lanes, so every lane holds the same bits; the 4 warps' (mean_w, M2_w) (768 elements each) give
// mean = their average and M2 = sum M2_w + 768 * sum (mean_w - mean)^2; var = M2 / 3072 (a
// multiply), rstd = rsqrt.approx.ftz(var + eps), y = fma((x - mean) * rstd, 1 + scale, shift) as
// v6. Not bit-identical to v6 or the baseline (which is not bit-identical to v6 either). CPU
// emulation of exactly these float32 operations (500 rows of 3072 bf16: U(-1, 3) as the row's
// inputs, N(100, 0.5), N(1000, 1), N(0, 50), U(-1, 3) with 1% of elements x100, constant): every
// lane identical, variance within 8.6e-6 relative of float64, x_hat within 6.9e-5 (the mean-1000
// rows; 7.5e-8 on U(-1, 3)), constant rows var exactly 0. Expected largest error on the row: one
// bf16 ulp (0.0156), as v6 and the baseline; tolerance 5e-2 + 5e-2 |ref|.
//
// Registers (ptxas, sm_90a, the task's flags, CUDA 13.0): v7_ep2_kernel 48, 0 stack, 0 spill, one
// barrier, 32 B shared, __launch_bounds__(128, 10) (10 CTAs an SM as v6's EP2); at (128, 11) or
// (128, 12) it needs 40 and spills 32 bytes, so no higher-occupancy variant. v6_row_kernel<true>
// (EP3) 72, 0 spill, unchanged. No host state beyond v6's (none); the host path is v6's.
//
// PREDICTION (not measured; H200, cold, against v6's run 20261201T055512Z-96cbc342: baseline 41.11
// us, v6 40.15 us = 91.5% of copy, 98.9% of stream ~39.70 us; copy there 4.231 TB/s):
//   * qwen-edit ln_select01 S8424 (EP2, the only EP2 production row): ~40.0 us (39.85-40.15),
//     ~1.004x v6 (most likely inside `same`), ~1.028x the baseline, ~91.8% of copy, ~99.3% of
//     stream. The 92%-of-copy goal (39.91 us at that run's copy) is at the edge, not expected
//     with confidence: the saving is in the drain, a fraction of a row's unloaded lifetime (a
//     ~0.2 us shorter post-load chain out of ~1.5-2 us), not in steady-state bandwidth, which the
//     row already spends at its mix's DRAM limit. Launch-inclusive (eager) ~41.7 us against v6's
//     41.86 and the baseline's 42.89.
//   * The EP2 regression rows (B2 L257 C1024 affine i64: 4.13 us; L17 C999: 6.04 us in v6's run)
//     take the baseline's path as in v6: same.
//   * EP3 and every EP1 row: v6's code, same; launch-inclusive the same (v6's host path).
//   * Headline: v6's 1.0597x, +0.0003 at most.
// If v7 comes out `same`, v6's remaining gap is not in the row's post-load work, and EP2 at ~99%
// of its stream reference is where this shape ends on the H200.
//
// ------------------------------------------------------------------------------------------------
// v6's own header follows, unchanged (its EP2 text describes v6_row_kernel<false>, which v7 no
// longer launches, so no longer instantiates).
//
// kpilot-parent: v5c sha256 cfb79a97f38341d5cfb1ba5a2f93faa4840fb9d68c21ee9ec2175d854eaec433
//
// Candidate v6 for tasks/fuse_scale_shift: v5c (included whole: EP1 exactly v5c's) plus, for EP2
// and EP3 on the production layout with C = 3072, a row kernel of its own whose row lifetime is
// shorter than the baseline's, at no spill. Every other call (other C, weight or bias, fp16 / fp32,
// strided modulation, every refusal) goes to v5c's entry, which is the baseline's.
//
// Why (H200, run 20261201T035634Z-129187d7, v5c = the baseline's EP2 / EP3 code): EP2 S8424 41.14 us
// = 89.0% of copy = 96.4% of its stream reference (39.67 us); EP3 S8424 77.93 us = 94.2% of copy =
// 98.0% of its stream reference (76.17 us). The untested hypothesis from v3's post-mortem: v3 (128
// threads a row, 3 vectors a thread, no masked lanes) lost (EP2 0.882x, EP3 0.903x, run
// 20261130T224207Z-6e8ccb8f) because __launch_bounds__(1024) capped it at 64 registers with a 40-byte
// spill stack, not because of its shape. What the baseline's EP2 / EP3 row does after its x loads
// (baseline.cu, ln_select01_simple), all in series with the row's DRAM latency:
//   * two block reductions through row_sum: 5 __syncthreads a row (2 + 1 + 2);
//   * only then the index load (a cold 4-byte DRAM or L2 access) and, after it, the selected
//     modulation rows: EP2 chunk by chunk (a load, wait, store per 16-byte chunk), EP3 all at once;
//   * a fourth chunk (columns 3072..4095 of BLOCK_N 4096) masked off on every thread.
// So a baseline row holds its CTA slot for the x latency + the reductions + an index round trip +
// the modulation round trips; the card's 8424 rows / 132 SMs = 64 rows an SM go through 10 (EP2, 45
// registers) or 5 (EP3, 96) slots, and the last rows of the grid drain for one such lifetime with
// the card partly idle. The stream reference (one vector a thread) has a lifetime of one DRAM
// round trip.
//
// v6's row (v6_row_kernel, one CTA of 128 threads a row, 3 16-byte vectors a thread, exactly the
// baseline's element-to-thread layout without its masked chunk):
//   1. the index load, then every row load of the thread (EP2: 3 vectors of x; EP3: 3 each of x,
//      residual and residual_gate), all issued before the first wait (SASS read: the row's LDGs
//      come before the first instruction that uses the index);
//   2. once the index is back (it overlaps the row loads): the selected gate row's 3 vectors,
//      stored straight to gate_out (no arithmetic), and the selected scale and shift rows' 6
//      vectors, issued before the first block sum (EP2: after the gate stores; EP3: after
//      residual_out is computed and stored, so the 9 packed inputs and the 6 modulation vectors are
//      not live together). They are plain loads (LDG.E.128, L1-cached like .nc): ptxas sank
//      ld.global.nc ones past the first bar.sync, which it may not do with a plain load;
//   3. the two block sums with one __syncthreads each (warp butterfly, each warp's partial to its
//      own shared slot, every thread adding the 4 partials itself), so the modulation's L1 / L2
//      latency is under the reductions instead of after them;
//   4. out = fma(x_hat, 1 + scale, shift), stored.
// Registers (ptxas -v, sm_90a, the task's flags, CUDA 13.0; __launch_bounds__(threads, CTAs an SM)
// with the most CTAs an SM at which ptxas reports no spill): EP2 48 registers (10 CTAs of 128 an
// SM, as the baseline's 45), EP3 72 (7 CTAs; the baseline's EP3 kernel has 96, 5 CTAs), 0 bytes
// stack, 0 spill stores / loads, 32 bytes of shared memory. Row bytes in flight an SM when every
// CTA is in its load phase: EP2 10 x 6 KB of x = 60 KB, EP3 7 x 18 KB = 126 KB (baseline 60 KB and
// 90 KB), against the ~32 KB of traffic an SM the H200 needs at ~1 us (4.24 TB/s / 132 SMs).
//
// Numerics: the baseline's, bit for bit. The same per-thread elements in the same column order (the
// baseline's masked fourth chunk only adds +0.0 to the sum and fma(0, 0, q) = q to the squares),
// the same warp butterfly, the same (w0 + w2) + (w1 + w3) of the 4 warp partials, div.full.f32 for
// mean and variance, rsqrt.approx.ftz.f32, x - mean two-pass from registers, EP3's residual_out =
// fma(x, residual_gate, residual) normalised unrounded, out = cvt.rn(fma((v - mean) * rstd,
// 1 + scale, shift)), gate_out the gate row's bits: the baseline's own device helpers (Vec, to_f,
// from_f, div_full, rsqrt_approx_ftz). v6b (V6_THREADS 192, 2 vectors a thread) sums its 6 warp
// partials in warp order instead: within the tolerance, not bit-identical.
//
// Fast path (else v5c's entry): x and the outputs bf16 contiguous [B, L, C] with C = 8 x threads x
// vectors (v6: 3072), 16-byte aligned; weight and bias absent; the six modulation tensors bf16
// [1|B, C], unit column stride, 16-byte aligned, batch stride a multiple of 8 elements; index i32 or
// i64 [B, L] (any strides, as the baseline reads it); 1 <= B*L < 2^31. Paths
// ln_select01_row<threads>x<vectors>, residual_ln_select01_row<threads>x<vectors>.
//
// PREDICTION (not measured; H200, cold, against run 20261201T035634Z-129187d7). Steady state: the
// baseline moves 1.55 EP2 rows a microsecond an SM (18 KB a row, 41.14 us) through ~9 resident CTAs
// (ncu: 57% achieved occupancy), so its rows live ~6 us: the memory system is saturated and queueing,
// not short of requests (60 KB of x an SM when every slot loads, against ~10 KB of reads an SM that
// 1.26 TB/s of EP2 reads needs at ~1 us). v6 does not add bytes the DRAM can take; it shortens the
// non-memory part of a row (an index round trip, 3 modulation round trips and 3 barriers fewer), so
// more of each slot's time has loads outstanding, and the grid's last rows drain faster. Expected:
// EP2 41.14 -> ~40.3 us (~1.02x, ~90.9% of copy, ~98.4% of its stream reference), EP3 77.93 -> ~77.0
// us (~1.012x, ~95.1% of copy, ~98.9% of stream; 7 CTAs an SM instead of 5 as well). The issue's
// EP2 goal (>= 92% of copy: <= 39.81 us, within 0.4% of the stream reference's own 39.67 us) is not
// expected; EP3's (>= 95%: <= 77.10 us, 1.2% over its stream reference) is the prediction's edge. Every EP1 row `same` (v5c's code);
// regression and rejection rows take the baseline's paths (none has C = 3072 without weight).

#define kp_fuse_layernorm_scale_shift_gate_select01_kernel v6_v5c_ln_select01
#define kp_fuse_residual_layernorm_scale_shift_gate_select01_kernel v6_v5c_residual_ln_select01
#include "v5c.cu"
#undef kp_fuse_layernorm_scale_shift_gate_select01_kernel
#undef kp_fuse_residual_layernorm_scale_shift_gate_select01_kernel

#ifndef V6_THREADS
#define V6_THREADS 128  // threads a row (v6b: 192)
#endif
#ifndef V6_VECS
#define V6_VECS 3  // 16-byte vectors a thread (v6b: 2); C = 8 * V6_THREADS * V6_VECS
#endif

namespace v6 {

constexpr int kT = V6_THREADS;
constexpr int kK = V6_VECS;
constexpr int kNW = kT / 32;
constexpr int kCV = kT * kK;  // 16-byte vectors a row
constexpr int kC = 8 * kCV;   // bf16 columns
// CTAs an SM ptxas must allow for (its register cap): the most at which ptxas -v reports no spill
// (v6, 128 threads: EP2 10 = 48 registers, EP3 7 = 72; v6b, 192 threads: EP2 8 = 40, EP3 6 = 56).
#ifndef V6_MINB_EP2
#define V6_MINB_EP2 10
#endif
#ifndef V6_MINB_EP3
#define V6_MINB_EP3 7
#endif
template <bool RESID> constexpr int kMinBlocks = RESID ? V6_MINB_EP3 : V6_MINB_EP2;
static_assert(kT % 32 == 0 && kK >= 1, "whole warps");

using V8 = Vec<bf16, 8>;  // one 16-byte vector of the row (4 packed words)

struct Args {
    const bf16* x;
    const bf16* res;       // EP3
    const bf16* res_gate;  // EP3
    bf16* out;
    bf16* res_out;         // EP3
    bf16* gate_out;
    const bf16* mod[6];    // scale0, shift0, gate0, scale1, shift1, gate1
    int64_t mod_sb[6];     // batch stride in elements (0: one row for every batch)
    const void* index;
    int64_t index_sb, index_sl;
    unsigned L;
    int index_i64;
    float eps;
    uint32_t opaque_zero;  // always 0: the baseline's keep_packed (EP2 keeps x packed, below)
};

// tl.sum's order for the baseline's 4 warps: butterfly over the warp, then (w0 + w2) + (w1 + w3)
// (row_sum's 2-step butterfly on lane 0), here computed by every thread from the shared partials,
// so one barrier. Other warp counts (v6b): the partials in warp order. Each sum has its own `red`.
__device__ __forceinline__ float block_total(float v, float* red) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = v + __shfl_xor_sync(0xffffffffu, v, o);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    if constexpr (kNW == 4) {
        return (red[0] + red[2]) + (red[1] + red[3]);
    } else {
        float s = red[0];
#pragma unroll
        for (int w = 1; w < kNW; ++w) s = s + red[w];
        return s;
    }
}

__device__ __forceinline__ void load_plain(V8& v, const bf16* p) {
    const uint4 u = *reinterpret_cast<const uint4*>(p);
    v.w[0] = u.x; v.w[1] = u.y; v.w[2] = u.z; v.w[3] = u.w;
}

template <bool RESID>
__global__ void __launch_bounds__(kT, kMinBlocks<RESID>) v6_row_kernel(Args a) {
    __shared__ float red[2][kNW];
    const int t = threadIdx.x;
    const unsigned row = blockIdx.x;
    const size_t base = static_cast<size_t>(row) * kC;
    auto col = [&](int k) { return (k * kT + t) * 8; };  // the baseline's (r*128 + t)*V at kT = 128

    // 1. The index (B*L < 2^31: 32-bit row / L as the baseline), then the row's loads.
    const unsigned bi = row / a.L, li = row - bi * a.L;
    const int64_t ioff = static_cast<int64_t>(bi) * a.index_sb + static_cast<int64_t>(li) * a.index_sl;
    const bool sel = a.index_i64 ? (__ldg(static_cast<const long long*>(a.index) + ioff) != 0)
                                 : (__ldg(static_cast<const int*>(a.index) + ioff) != 0);

    V8 px[RESID ? 1 : kK];
    V8 lx[RESID ? kK : 1], lr[RESID ? kK : 1], lg[RESID ? kK : 1];
    if constexpr (!RESID) {
#pragma unroll
        for (int k = 0; k < kK; ++k) px[k].load(a.x + base + col(k));
    } else {
#pragma unroll
        for (int k = 0; k < kK; ++k) lx[k].load(a.x + base + col(k));
#pragma unroll
        for (int k = 0; k < kK; ++k) lr[k].load(a.res + base + col(k));
#pragma unroll
        for (int k = 0; k < kK; ++k) lg[k].load(a.res_gate + base + col(k));
    }

    // 2. The selected rows. Scale and shift with plain (coherent) loads, not ld.global.nc: ptxas
    // may sink a .nc load past a bar.sync (it did, to after the first block sum, at 48 and 64
    // registers), a plain one it may not, so they stay ahead of the reductions. The gate's rows go
    // straight to gate_out (bits unchanged, the baseline's pass-through of a same-dtype gate).
    const int m0 = sel ? 3 : 0;
    const bf16* scp = a.mod[m0] + bi * a.mod_sb[m0];
    const bf16* shp = a.mod[m0 + 1] + bi * a.mod_sb[m0 + 1];
    const bf16* gtp = a.mod[m0 + 2] + bi * a.mod_sb[m0 + 2];
    V8 sc[kK], sh[kK];
    auto load_scale_shift = [&]() {
#pragma unroll
        for (int k = 0; k < kK; ++k) load_plain(sc[k], scp + col(k));
#pragma unroll
        for (int k = 0; k < kK; ++k) load_plain(sh[k], shp + col(k));
    };
    {
        V8 gt[kK];
#pragma unroll
        for (int k = 0; k < kK; ++k) gt[k].load(gtp + col(k));
#pragma unroll
        for (int k = 0; k < kK; ++k) gt[k].store(a.gate_out + base + col(k));
    }
    // EP2: after the gate stores, not between the gate loads and them: that order spilled at 48
    // registers and ptxas then issued one of x's loads after the modulation's.
    if constexpr (!RESID) load_scale_shift();

    // EP3: residual_out = fma(x, residual_gate, residual) in fp32, stored rounded, kept unrounded;
    // then scale and shift (after, so that the 9 packed input vectors and the 6 modulation vectors
    // are not live together).
    float v[RESID ? 8 * kK : 1];
    if constexpr (RESID) {
#pragma unroll
        for (int k = 0; k < kK; ++k) {
            V8 o;
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                v[8 * k + i] = fmaf(lx[k].get(i), lg[k].get(i), lr[k].get(i));
                o.set(i, from_f<bf16>(v[8 * k + i]));
            }
            o.store(a.res_out + base + col(k));
        }
        load_scale_shift();
    }
    auto xe = [&](int k, int i) -> float {
        if constexpr (RESID) return v[8 * k + i];
        else return px[k].get(i);
    };

    // 3. mean: column-order partial (the baseline's s = e0 + e1 + ...), block total, div.full by C.
    constexpr int E = 8 * kK;
    float s = xe(0, 0);
#pragma unroll
    for (int e = 1; e < E; ++e) s = s + xe(e / 8, e % 8);
    const float n_f = static_cast<float>(kC);
    const float mean = div_full(block_total(s, red[0]), n_f);
    // EP2: x stays packed (12 registers), converted again at each use, as the baseline's
    // keep_packed does, rather than 24 fp32 x or x - mean kept live across the reductions.
    auto repack = [&]() {
        if constexpr (!RESID) {
#pragma unroll
            for (int k = 0; k < kK; ++k)
#pragma unroll
                for (int w = 0; w < 4; ++w) keep_packed(px[k].w[w], a.opaque_zero);
        }
    };
    repack();

    // variance: the baseline's order, d1*d1 first, then fma(d0, d0, .), fma(d2, d2, .), ...
    auto dev = [&](int e) { return xe(e / 8, e % 8) - mean; };
    const float d1 = dev(1);
    float q = __fmul_rn(d1, d1);
    const float d0 = dev(0);
    q = fmaf(d0, d0, q);
#pragma unroll
    for (int e = 2; e < E; ++e) {
        const float de = dev(e);
        q = fmaf(de, de, q);
    }
    const float var = div_full(block_total(q, red[1]), n_f);
    const float rstd = rsqrt_approx_ftz(var + a.eps);
    repack();

    // 4. y = fma((x - mean) * rstd, 1 + scale, shift), rounded once.
#pragma unroll
    for (int k = 0; k < kK; ++k) {
        V8 o;
#pragma unroll
        for (int i = 0; i < 8; ++i) o.set(i, from_f<bf16>(fmaf((xe(k, i) - mean) * rstd, 1.0f + sc[k].get(i), sh[k].get(i))));
        o.store(a.out + base + col(k));
    }
}

// ---------------------------------------------------------------------------------------------
// v7: EP2's row with one block reduction instead of two (mean and M2 together, Chan et al.'s
// pairwise update). EP3 keeps v6_row_kernel<true> above, unchanged.
// ---------------------------------------------------------------------------------------------
// CTAs an SM ptxas must allow for: 10 (48 registers, no spill, v6's EP2 occupancy). 11 or 12
// (40 registers) spilled 32 bytes, and 20 with the shift loads moved after the barrier, where ptxas
// also issued one x load after the gate's stores.
#ifndef V7_MINB_EP2
#define V7_MINB_EP2 10
#endif

// Merge (mean, M2) with the partner lane's at xor distance `off`, both over n elements:
// mean = (m + m') / 2, M2 = M2 + M2' + (m' - m)^2 * n / 2. Every operation is symmetric in the
// two lanes (m + m' and q + q' commute, (m' - m)^2 == (m - m')^2), so both lanes, and after the
// last step every lane of the warp, hold the same bits.
__device__ __forceinline__ void v7_chan_xor(float& m, float& q, float half_n, int off) {
    const float mo = __shfl_xor_sync(0xffffffffu, m, off);
    const float qo = __shfl_xor_sync(0xffffffffu, q, off);
    const float d = mo - m;
    m = 0.5f * (m + mo);
    q = fmaf(d * d, half_n, q + qo);
}

__global__ void __launch_bounds__(kT, V7_MINB_EP2) v7_ep2_kernel(Args a) {
    static_assert(kNW == 4 && kK == 3 && kC == 3072, "v7's EP2 row is v6's 128 x 3 layout");
    __shared__ __align__(16) float red[2][kNW];  // each warp's mean (red[0]) and M2 (red[1])
    const int t = threadIdx.x;
    const unsigned row = blockIdx.x;
    const size_t base = static_cast<size_t>(row) * kC;
    auto col = [&](int k) { return (k * kT + t) * 8; };

    // 1. The index, then the row's 3 vectors of x (as v6).
    const unsigned bi = row / a.L, li = row - bi * a.L;
    const int64_t ioff = static_cast<int64_t>(bi) * a.index_sb + static_cast<int64_t>(li) * a.index_sl;
    const bool sel = a.index_i64 ? (__ldg(static_cast<const long long*>(a.index) + ioff) != 0)
                                 : (__ldg(static_cast<const int*>(a.index) + ioff) != 0);
    V8 px[kK];
#pragma unroll
    for (int k = 0; k < kK; ++k) px[k].load(a.x + base + col(k));

    // 2. The selected gate row straight to gate_out, then scale and shift (plain loads), as v6.
    const int m0 = sel ? 3 : 0;
    const bf16* scp = a.mod[m0] + bi * a.mod_sb[m0];
    const bf16* shp = a.mod[m0 + 1] + bi * a.mod_sb[m0 + 1];
    const bf16* gtp = a.mod[m0 + 2] + bi * a.mod_sb[m0 + 2];
    {
        V8 gt[kK];
#pragma unroll
        for (int k = 0; k < kK; ++k) gt[k].load(gtp + col(k));
#pragma unroll
        for (int k = 0; k < kK; ++k) gt[k].store(a.gate_out + base + col(k));
    }

    // x stays packed (12 registers) and is converted again in each phase, as in v6. The second
    // repack XORs with opaque_zero << 1, not opaque_zero: (w ^ z) ^ z may fold back to w, and with
    // the same z twice ptxas kept some of the sum phase's fp32 x for the output phase (20 bytes
    // spilled at 48 registers; 4 with the shift; 0 once the shared partials were read in halves).
    auto repack = [&](uint32_t z) {
#pragma unroll
        for (int k = 0; k < kK; ++k)
#pragma unroll
            for (int w = 0; w < 4; ++w) keep_packed(px[k].w[w], z);
    };

    // 3. The thread's 24 elements: sum (one accumulator a vector), their mean (s * (1/24) plus
    // one residual correction: exact whenever s / 24 is representable, so a constant row keeps
    // x - mean == 0), and M2 = sum (x - mean_t)^2 about it.
    float s3[kK];
#pragma unroll
    for (int k = 0; k < kK; ++k) {
        float s = px[k].get(0);
#pragma unroll
        for (int i = 1; i < 8; ++i) s = s + px[k].get(i);
        s3[k] = s;
    }
    const float s = (s3[0] + s3[1]) + s3[2];
    constexpr float kInv24 = 1.0f / 24.0f;
    float m = s * kInv24;
    m = fmaf(fmaf(-24.0f, m, s), kInv24, m);
    repack(a.opaque_zero);
    float q3[kK];
#pragma unroll
    for (int k = 0; k < kK; ++k) {
        const float d0 = px[k].get(0) - m;
        float q = d0 * d0;
#pragma unroll
        for (int i = 1; i < 8; ++i) {
            const float d = px[k].get(i) - m;
            q = fmaf(d, d, q);
        }
        q3[k] = q;
    }
    float q = (q3[0] + q3[1]) + q3[2];
    repack(a.opaque_zero << 1);
    // Scale and shift (plain loads, L1 hits after a CTA's first rows, as in v6) only now, under
    // the warp merges and the barrier: issued before x's statistics they spilled (72 bytes at 48
    // registers). ptxas interleaves both with the shuffles either way (SASS read).
    V8 sc[kK], sh[kK];
#pragma unroll
    for (int k = 0; k < kK; ++k) load_plain(sc[k], scp + col(k));

    // The warp: 5 pairwise merges (24, 48, 96, 192, 384 elements a side), two shuffles each.
    v7_chan_xor(m, q, 12.0f, 16);
    v7_chan_xor(m, q, 24.0f, 8);
    v7_chan_xor(m, q, 48.0f, 4);
    v7_chan_xor(m, q, 96.0f, 2);
    v7_chan_xor(m, q, 192.0f, 1);
#pragma unroll
    for (int k = 0; k < kK; ++k) load_plain(sh[k], shp + col(k));
    if ((t & 31) == 0) red[0][t >> 5] = m, red[1][t >> 5] = q;
    __syncthreads();  // the row's only barrier

    // The 4 warps (768 elements each): mean = the partials' average, M2 = sum M2_w +
    // 768 * sum (mean_w - mean)^2, in the same order on every thread.
    // (The means first, then the M2s: two 16-byte shared reads, 4 registers at a time.)
    const float4 mw = *reinterpret_cast<const float4*>(red[0]);
    const float mean = ((mw.x + mw.z) + (mw.y + mw.w)) * 0.25f;
    const float e0 = mw.x - mean, e1 = mw.y - mean, e2 = mw.z - mean, e3 = mw.w - mean;
    const float dev = fmaf(e0, e0, e2 * e2) + fmaf(e1, e1, e3 * e3);
    const float4 qw = *reinterpret_cast<const float4*>(red[1]);
    const float m2 = fmaf(dev, 768.0f, (qw.x + qw.z) + (qw.y + qw.w));
    const float var = m2 * (1.0f / static_cast<float>(kC));
    const float rstd = rsqrt_approx_ftz(var + a.eps);

    // 4. y = fma((x - mean) * rstd, 1 + scale, shift), rounded once (v6's expression).
#pragma unroll
    for (int k = 0; k < kK; ++k) {
        V8 o;
#pragma unroll
        for (int i = 0; i < 8; ++i)
            o.set(i, from_f<bf16>(fmaf((px[k].get(i) - mean) * rstd, 1.0f + sc[k].get(i), sh[k].get(i))));
        o.store(a.out + base + col(k));
    }
}

bool bf16_blc(const kp_tensor& t, int64_t B, int64_t L, int64_t C) {
    return is_blc(t, KP_BF16, B, L, C) && t.data != nullptr && aligned16(t.data);
}

// Takes the call when it is the production layout (above); false: nothing launched, v5c decides.
bool try_row(kp_call* call, void* stream, bool resid, int32_t* rc) {
    const LnSlots& s = resid ? kEp3Slots : kEp2Slots;
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != static_cast<uint32_t>(s.n) ||
        call->n_scalars != 1 || !ranks_valid(call))
        return false;
    const kp_tensor* t = call->tensors;
    const kp_tensor& x = t[s.x];
    if (x.dtype != KP_BF16 || x.rank != 3 || !shape_nonneg(x)) return false;
    const int64_t B = x.shape[0], L = x.shape[1], C = x.shape[2];
    if (C != kC || B * L < 1 || B * L >= (1ll << 31)) return false;
    if (!bf16_blc(x, B, L, C) || !bf16_blc(t[s.out], B, L, C) || !bf16_blc(t[s.gate_out], B, L, C)) return false;
    if (resid && (!bf16_blc(t[s.res], B, L, C) || !bf16_blc(t[s.res_gate], B, L, C) || !bf16_blc(t[s.res_out], B, L, C)))
        return false;
    if (t[s.w].dtype != KP_ABSENT || t[s.b].dtype != KP_ABSENT) return false;
    Args a{};
    for (int i = 0; i < 6; ++i) {
        const kp_tensor& m = t[s.mod0 + i];
        if (m.dtype != KP_BF16 || m.rank != 2 || !(m.shape[0] == B || m.shape[0] == 1) || m.shape[1] != C ||
            m.stride[1] != 1 || m.data == nullptr || !aligned16(m.data))
            return false;
        const int64_t sb = m.shape[0] == 1 ? 0 : m.stride[0];
        if (sb % 8 != 0) return false;
        a.mod[i] = static_cast<const bf16*>(m.data);
        a.mod_sb[i] = sb;
    }
    const kp_tensor& idx = t[s.index];
    if (!(idx.dtype == KP_I32 || idx.dtype == KP_I64) || idx.rank != 2 || idx.shape[0] != B || idx.shape[1] != L ||
        idx.data == nullptr)
        return false;
    a.x = static_cast<const bf16*>(x.data);
    a.out = static_cast<bf16*>(t[s.out].data);
    a.gate_out = static_cast<bf16*>(t[s.gate_out].data);
    if (resid) {
        a.res = static_cast<const bf16*>(t[s.res].data);
        a.res_gate = static_cast<const bf16*>(t[s.res_gate].data);
        a.res_out = static_cast<bf16*>(t[s.res_out].data);
    }
    a.index = idx.data;
    a.index_i64 = idx.dtype == KP_I64;
    a.index_sb = B == 1 ? 0 : idx.stride[0];
    a.index_sl = L == 1 ? 0 : idx.stride[1];
    a.L = static_cast<unsigned>(L);
    a.eps = static_cast<float>(call->scalars[0]);
    a.opaque_zero = 0;

    cudaStream_t st = static_cast<cudaStream_t>(stream);
    const unsigned rows = static_cast<unsigned>(B * L);
    if (resid) v6_row_kernel<true><<<rows, kT, 0, st>>>(a);
    else v7_ep2_kernel<<<rows, kT, 0, st>>>(a);  // v7: EP2's one-reduction row
    char path[KP_PATH_LEN];
    snprintf(path, sizeof path, "%s_row%dx%d%s", resid ? "residual_ln_select01" : "ln_select01", kT, kK,
             resid ? "" : "_1red");  // EP3's path as v6's
    set_path(call, path);
    *rc = cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
    return true;
}

}  // namespace v6

extern "C" {

int32_t kp_fuse_layernorm_scale_shift_gate_select01_kernel(kp_call* call, void* stream) {
    int32_t rc;
    if (v6::try_row(call, stream, false, &rc)) return rc;
    return v6_v5c_ln_select01(call, stream);
}

int32_t kp_fuse_residual_layernorm_scale_shift_gate_select01_kernel(kp_call* call, void* stream) {
    int32_t rc;
    if (v6::try_row(call, stream, true, &rc)) return rc;
    return v6_v5c_residual_ln_select01(call, stream);
}

}  // extern "C"
