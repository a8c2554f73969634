// kpilot-parent: v4b sha256 e8b94169468e2fa29976b694fe1326b97f21b5d71aa49ce539786c84cfb13947
// Candidate v4d for tasks/qknorm_rope: v4b with ONE knob changed, the ring depth S = 1 slot a warp instead of 2 (the next item's rows in flight only while the current one is computed).
// Why: v4b (ring depth 2) ran 1.0272x PASS in run 20261201T034141Z-df2dbc67 against v4's (depth 4)
// 1.0117x in run 20261201T034122Z-3f159357 (H200): less depth was faster on every large row, so
// the next knobs are depth and CTAs an SM. Prediction (H200): within 1% of v4b on the large rows
// (no strong prior either way); tiny rows `same`. Everything else is v4b's, whose header follows.
//
// Candidate v4b for tasks/qknorm_rope: v4 with ONE knob changed, the ring depth S = 2 slots a warp
// instead of 4 (kV4Stages; everything else v4's: 256-thread CTAs, 2 an SM, the same kernel body,
// registers and math). Shared memory 40.1 KB a CTA instead of 80.25 KB; q/k in flight an SM
// 16 warps x 1-2 items x 2 KB = 32-64 KB (v2b's peak 64 KB) instead of v4's 96-128 KB.
// Purpose: one lease separates "ring depth" from "the TMA staging itself": v4b within 1% of v4
// means depth is already saturated at 2 and what v4 gains or loses is the staging; v4b 2-4% slower
// than v4 means depth is the lever (then a deeper v4 is worth trying).
// Prediction (H200): 1-3% slower than v4 on joyai / qwen-edit, within 1% of v4 on the T4096 rows;
// tiny rows `same`. Path: v4_tma_ring_s2_b256x2_d128_r128_interleaved_vec.
//
// v4's comment:
// Candidate v4 for tasks/qknorm_rope: v2b (candidates/v2b.cu, sha256 d253e95c..., copied whole
// below with its own comment) plus one kernel, qk_tma_ring_kernel, for v2b's path when heads are
// 256 bytes apart (every production row of that path).
//
// Change: v2b's item (8 heads of one token, 4 rows a half-warp, 16 lanes x 8 elements a row) and
// per-row math unchanged (v2_parts, the 8/4/2/1 butterfly, rsqrt, v2_norm_rope: outputs
// bit-identical to v2b's), but the rows and the item's cos/sin row reach the warp through a ring
// of S = 4 slots (2.5 KB each) per warp in shared memory, filled by TMA bulk copies
// (cp.async.bulk ... mbarrier::complete_tx::bytes, one mbarrier a slot): at most 3 bulk copies an
// item (its q heads, its k heads where it straddles q and k, its 512-byte cache row), issued by
// lanes 0-2 (one UBLKCP each). While a warp reduces and stores item n, items n+1 .. n+S-1 (and n+S
// right after the slot is read) are in flight without registers or per-lane LDGSTS (v3c/v3d's
// cp.async ring: 5 LDGSTS a lane an item). Lean per-item work: (token, item) cursors advanced by
// the grid stride without divisions, row addresses from two 64-bit bases an item, weights in
// registers (no LDS), positions loaded one iteration ahead of their copy. 256-thread CTAs,
// 80.25 KB dynamic shared memory each, 2 CTAs an SM (16 warps, <= 128 registers), persistent grid
// min(2 x SMs, items / 8), PDL as v2b.
// ptxas (nvcc 13.0, sm_90a): 108 (bf16) / 114 (fp16) registers, no spill, no stack; ~640 SASS
// instructions in the loop (v2b ~700).
// Prediction (H200, against v2b's run 20261201T013752Z-fe7e7bda; NOTES.md "v4"): joyai T7904 H32
// ~68.5 us (~90% of copy, ~94% of the stream reference, ~1.09x), qwen-edit T8424 H24 ~55.3 us
// (~90%, ~94%, ~1.09x), qwen T4096 H24 ~28.6 us (~84%, ~92%, ~1.07x), zimage T4096/T4128 H30
// ~35.2-35.4 us (~85%, ~92%, ~1.04x); tiny rows `same` (the baseline's kernel, unchanged).
//
// v2b's comment:
// Candidate v2b for tasks/qknorm_rope, from the baseline (SGLang 0.5.23's half-warp kernel).
//
// Hypothesis (d + a: a token's heads per warp item, 4 rows in flight per lane): a warp item is 8
// heads of one token; each half-warp issues its 4 rows' 16-byte loads (64 bytes per lane) before
// any reduction; cos/sin are loaded once per item (once per 8 rows instead of once per 2), the q
// and k weights once per thread; the next item's position is loaded while this item computes, so
// the cos/sin loads never wait on a position. Persistent grid as the baseline (256 threads,
// min(occupancy x SMs, ceil(items / 8)), grid-stride, PDL); __launch_bounds__(256, 4) keeps it at
// <= 64 registers (50% occupancy x 64 B = ~2.7x the baseline's bytes in flight per SM).
// Per row the math and rounding points are the baseline's (two partial sums, butterfly 8/4/2/1).
//
// Where: bf16/fp16, head_dim 128, interleaved, rope_dim 128, 16-byte aligned vectors and at least
// kV2MinRows (token, head) rows. Everything else (the tiny production rows included) runs the
// baseline's kernels below unchanged.
//
// What follows is the baseline's own header, kept for its fallback paths.
// Baseline for tasks/qknorm_rope: a CUDA port, behind the kpilot ABI, of what SGLang 0.5.23 runs on
// CUDA for fused_inplace_qknorm_rope with the arguments its production callers pass.
//
// Lineage (facts):
//   * package sglang 0.5.23 (PyPI), wheel sglang-0.5.23-cp311-cp311-manylinux_2_34_x86_64.whl;
//   * Python entry sglang/kernels/ops/diffusion/rope/qknorm_rope_jit.py: fused_inplace_qknorm_rope
//     -> _jit_qknorm_rope_module(head_dim, rope_dim, is_neox, q.dtype, cos_sin_cache.dtype,
//     round_norm_before_rope, pack_kv=False, cache_has_full_width, out_of_place=False,
//     half_warp=True) -> QKNormRopeKernel<head_dim, rope_dim, is_neox, use_pdl, dtype, cache_dtype,
//     round_norm_before_rope, cache_has_full_width, kAllowHalfWarp=true>::run, with
//     use_pdl = is_arch_support_pdl() (JIT target major >= 9: true on sm90);
//   * CUDA sglang/kernels/jit/csrc/diffusion/qknorm_rope.cuh (helpers from
//     sglang/kernels/jit/include/sgl_kernel/{utils,warp,type,vec,runtime,math}.cuh):
//     QKNormRopeKernel picks fused_qknorm_rope_half_warp<rope_dim, is_neox, use_pdl, dtype,
//     cache_dtype, round_norm_before_rope, cache_has_full_width, IdType, kOutOfPlace=false> when
//     kUseHalfWarp<head_dim, rope_dim, is_neox, round_norm_before_rope> holds (head_dim == 128 and,
//     interleaved, rope_dim % 8 == 0; NeoX only with round_norm_before_rope and rope_dim % 16 == 0),
//     otherwise fused_qknorm_rope_warp<head_dim, rope_dim, is_neox, use_pdl, dtype, cache_dtype,
//     round_norm_before_rope, kPackKV=false, cache_has_full_width, IdType>;
//   * launch (launch_qknorm_rope): 256-thread blocks (8 warps), grid = min(occupancy of the chosen
//     kernel at 256 threads x SM count, ceil(works / 8)) with works = ceil(rows / 2) for the
//     half-warp kernel and rows for the warp kernel, rows = N * (Hq + Hk); cudaLaunchKernelEx with
//     cudaLaunchAttributeProgrammaticStreamSerialization when use_pdl; griddepcontrol.wait before
//     the work loop, griddepcontrol.launch_dependents after it.
//
// The production rows (bf16, head_dim = rope_dim = 128, interleaved, fp32 half-width cache
// [P, 128] = [cos | sin], int64 positions, round_norm_before_rope = false,
// cache_has_full_width = false) take fused_qknorm_rope_half_warp<128, false, true, bf16, fp32,
// false, false, int64_t, false>: two (token, head) rows per warp, 16 lanes per row, 8 contiguous
// elements (one 16-byte vector) per lane; each lane keeps the two partial sums of squares of the
// warp kernel's lanes 2r and 2r+1, reduces them with xor shuffles 8, 4, 2, 1 and adds them last
// (bit-identical to the warp kernel); rotary lanes load their 4 cos and 4 sin values with one
// 16-byte load each before the norm; the normalized value stays fp32 into the rotation; an odd
// last row is recomputed by the second half-warp and not stored.
//
// This file computes that: the two upstream kernels with round_norm_before_rope = false,
// cache_has_full_width = false, in place, an fp32 cache, and the same fp32 expressions, shuffle
// patterns, cos/sin indexing, load widths, launch shape and PDL placement. Differences, none
// visible in results:
//   * bases or strides that are not aligned to a lane's vector width (upstream would fault) take the
//     same kernel with element-wise accesses and rope_dim read at run time ("_scalar" paths); the
//     vector paths are instantiated per rope_dim like upstream's templates;
//   * refused here but accepted by 0.5.23 (no production caller passes them, and the ABI carries no
//     flag for the last two): fp16/bf16 cos/sin caches, cache_has_full_width,
//     round_norm_before_rope; a head stride is only compared where a tensor has more than one head;
//   * the PDL attribute is set when the running device is sm90 or newer (upstream decides at JIT
//     time from the target arch; the same on an H100/H200).

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <atomic>
#include <type_traits>
#include <utility>

#include "kpilot_abi.h"

namespace {

using bf16 = __nv_bfloat16;
using f16 = __half;

constexpr uint32_t kBlock = 256;              // threads per block
constexpr uint32_t kWarpsPerBlock = kBlock / 32;
constexpr int kMaxDevices = 64;

// Field order and units as upstream's QKNormRopeParams (strides in bytes).
struct Params {
    void* __restrict__ q;
    void* __restrict__ k_base;  // k moved back by Hq head strides: head h >= Hq addresses k's head h - Hq
    const void* __restrict__ qw;
    const void* __restrict__ kw;
    const void* __restrict__ cache;
    const void* __restrict__ pos;
    int64_t q_tok_b;  // token strides and the shared head stride, in bytes
    int64_t k_tok_b;
    int64_t head_b;
    uint32_t hq, hk, n;
    float eps;
};

// The element-wise paths (RC == 0) also take R at run time.
struct ParamsR : Params {
    int32_t rope;
};

template <int RC>
using ParamsFor = std::conditional_t<RC == 0, ParamsR, Params>;

template <int RC, typename P>
__device__ __forceinline__ int rope_of(const P& p) {
    if constexpr (RC > 0) {
        return RC;
    } else {
        return p.rope;
    }
}

// ---------------------------------------------------------------------------------------------
// Device helpers
// ---------------------------------------------------------------------------------------------

__device__ __forceinline__ void grid_dep_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void grid_dep_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// A 32-bit word holding two 16-bit values (element 2i low) <-> float2, with the intrinsics the
// upstream cast<> maps to.
template <typename T> __device__ __forceinline__ float2 word_to_f2(uint32_t w);
template <> __device__ __forceinline__ float2 word_to_f2<bf16>(uint32_t w) {
    __nv_bfloat162 v;
    memcpy(&v, &w, sizeof v);
    return __bfloat1622float2(v);
}
template <> __device__ __forceinline__ float2 word_to_f2<f16>(uint32_t w) {
    __half2 v;
    memcpy(&v, &w, sizeof v);
    return __half22float2(v);
}

template <typename T> __device__ __forceinline__ uint32_t f2_to_word(float2 f);
template <> __device__ __forceinline__ uint32_t f2_to_word<bf16>(float2 f) {
    const __nv_bfloat162 v = __float22bfloat162_rn(f);
    uint32_t w;
    memcpy(&w, &v, sizeof w);
    return w;
}
template <> __device__ __forceinline__ uint32_t f2_to_word<f16>(float2 f) {
    const __half2 v = __float22half2_rn(f);
    uint32_t w;
    memcpy(&w, &v, sizeof w);
    return w;
}

// Lane `i`'s NW consecutive 32-bit words of a row: element i of an array of NW-word vectors (one
// NW*4-byte access), or (VEC false) 2-byte accesses for data not aligned to the vector.
template <int NW> struct WordsOf;
template <> struct WordsOf<1> { using type = uint32_t; };
template <> struct WordsOf<2> { using type = uint2; };
template <> struct WordsOf<4> { using type = uint4; };

template <int NW, bool VEC>
__device__ __forceinline__ void lane_load(uint32_t (&w)[NW], const void* base, uint32_t i) {
    if constexpr (VEC) {
        using V = typename WordsOf<NW>::type;
        const V v = static_cast<const V*>(base)[i];
        memcpy(w, &v, sizeof v);
    } else {
        const uint16_t* s = static_cast<const uint16_t*>(base) + 2 * NW * i;
#pragma unroll
        for (int j = 0; j < NW; ++j) w[j] = uint32_t(s[2 * j]) | (uint32_t(s[2 * j + 1]) << 16);
    }
}

template <int NW, bool VEC>
__device__ __forceinline__ void lane_store(void* base, uint32_t i, const uint32_t (&w)[NW]) {
    if constexpr (VEC) {
        using V = typename WordsOf<NW>::type;
        V v;
        memcpy(&v, w, sizeof v);
        static_cast<V*>(base)[i] = v;
    } else {
        uint16_t* s = static_cast<uint16_t*>(base) + 2 * NW * i;
#pragma unroll
        for (int j = 0; j < NW; ++j) {
            s[2 * j] = uint16_t(w[j] & 0xffffu);
            s[2 * j + 1] = uint16_t(w[j] >> 16);
        }
    }
}

__device__ __forceinline__ const void* byte_at(const void* p, int64_t a, int64_t b) {
    return static_cast<const char*>(p) + (a + b);
}

// ---------------------------------------------------------------------------------------------
// fused_qknorm_rope_warp (round_norm_before_rope = false): one warp per row, grid-stride.
// RC: rope_dim as a template constant, as upstream instantiates it; 0 reads it from p.rope (only
// the element-wise paths for unaligned data, which upstream does not have).
// ---------------------------------------------------------------------------------------------

template <typename T, typename IdT, int D, bool NEOX, int RC, bool VEC>
__global__ void qk_warp_kernel(const __grid_constant__ ParamsFor<RC> p) {
    constexpr int E = D / 32;   // elements per lane
    constexpr int NW = E / 2;   // 32-bit words per lane
    const int R = rope_of<RC>(p);
    const uint32_t rot_lanes = static_cast<uint32_t>(R / E);
    const uint32_t half_rot = rot_lanes / 2;

    const uint32_t lane = threadIdx.x % 32;
    const uint32_t first = blockIdx.x * kWarpsPerBlock + threadIdx.x / 32;
    const uint32_t stride = gridDim.x * kWarpsPerBlock;
    const uint32_t heads = p.hq + p.hk;
    const uint32_t rows = heads * p.n;

    grid_dep_wait();

    for (uint32_t r = first; r < rows; r += stride) {
        const uint32_t t = r / heads;
        const uint32_t h = r % heads;
        const bool is_q = h < p.hq;
        const void* in = is_q ? byte_at(p.q, t * p.q_tok_b, h * p.head_b) : byte_at(p.k_base, t * p.k_tok_b, h * p.head_b);
        void* out = const_cast<void*>(in);
        const void* w = is_q ? p.qw : p.kw;

        uint32_t xv[NW], wv[NW];
        lane_load<NW, VEC>(xv, in, lane);
        lane_load<NW, VEC>(wv, w, lane);

        float v[E];
        float ss = 0.0f;
#pragma unroll
        for (int j = 0; j < NW; ++j) {
            const float2 a = word_to_f2<T>(xv[j]);
            v[2 * j] = a.x;
            v[2 * j + 1] = a.y;
            ss += a.x * a.x + a.y * a.y;
        }
#pragma unroll
        for (int m = 16; m >= 1; m >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, m, 32);
        const float nf = rsqrtf(ss / static_cast<float>(D) + p.eps);
#pragma unroll
        for (int j = 0; j < NW; ++j) {
            const float2 g = word_to_f2<T>(wv[j]);
            v[2 * j] *= nf * g.x;
            v[2 * j + 1] *= nf * g.y;
        }

        if constexpr (NEOX) {
            if (lane < rot_lanes) {
                const int64_t ps = static_cast<int64_t>(static_cast<const IdT*>(p.pos)[t]);
                const float* cs = static_cast<const float*>(byte_at(p.cache, ps * (R * int64_t(sizeof(float))), 0));
                const float* sn = cs + R / 2;
                const uint32_t partner = lane < half_rot ? lane + half_rot : lane - half_rot;
                const uint32_t act = rot_lanes == 32 ? 0xffffffffu : ((1u << rot_lanes) - 1u);
#pragma unroll
                for (uint32_t i = 0; i < uint32_t(E); ++i) {
                    float o = __shfl_sync(act, v[i], partner);
                    if (lane < half_rot) o = -o;
                    const int64_t ci = (lane % half_rot) * uint32_t(E) + i;
                    const float c = __ldg(cs + ci);
                    const float s = __ldg(sn + ci);
                    v[i] = v[i] * c + o * s;
                }
            }
        } else {
            if (lane < rot_lanes) {
                const int64_t ps = static_cast<int64_t>(static_cast<const IdT*>(p.pos)[t]);
                const float* cs = static_cast<const float*>(byte_at(p.cache, ps * (R * int64_t(sizeof(float))), 0));
                const float* sn = cs + R / 2;
#pragma unroll
                for (uint32_t i = 0; i < uint32_t(E); i += 2) {
                    const float a = v[i];
                    const float b = v[i + 1];
                    const int64_t c0i = (lane * uint32_t(E) + i) / 2;  // half-width cache: one entry per pair
                    const int64_t c1i = c0i;
                    const float c0 = __ldg(cs + c0i);
                    const float s0 = __ldg(sn + c0i);
                    const float c1 = __ldg(cs + c1i);
                    const float s1 = __ldg(sn + c1i);
                    v[i] = a * c0 - b * s0;
                    v[i + 1] = b * c1 + a * s1;
                }
            }
        }

#pragma unroll
        for (int j = 0; j < NW; ++j) xv[j] = f2_to_word<T>(make_float2(v[2 * j], v[2 * j + 1]));
        lane_store<NW, VEC>(out, lane, xv);
    }

    grid_dep_launch();
}

// ---------------------------------------------------------------------------------------------
// fused_qknorm_rope_half_warp (head_dim 128, interleaved, round_norm_before_rope = false, half-width
// cache): two rows per warp, 16 lanes per row, 8 elements per lane. RC as for qk_warp_kernel.
// ---------------------------------------------------------------------------------------------

template <typename T, typename IdT, int RC, bool VEC>
__global__ void qk_half_warp_kernel(const __grid_constant__ ParamsFor<RC> p) {
    constexpr int D = 128;
    constexpr uint32_t kRowLanes = 16;
    constexpr int E = D / kRowLanes;  // 8 elements per lane
    constexpr int NW = E / 2;         // 4 words: one 16-byte vector
    constexpr int kRun = E / 2;       // cache entries per lane (one per pair)
    const int R = rope_of<RC>(p);
    const uint32_t rot_lanes = static_cast<uint32_t>(R / E);

    const uint32_t lane = threadIdx.x % 32;
    const uint32_t rl = lane % kRowLanes;
    const uint32_t first = blockIdx.x * kWarpsPerBlock + threadIdx.x / 32;
    const uint32_t stride = gridDim.x * kWarpsPerBlock;
    const uint32_t heads = p.hq + p.hk;
    const uint32_t rows = heads * p.n;
    const uint32_t pairs = (rows + 1u) / 2u;
    const uint32_t cbase = rl * kRun;

    grid_dep_wait();

    for (uint32_t pr = first; pr < pairs; pr += stride) {
        // The upper half-warp of a last, unpaired row recomputes the last row and does not store.
        const uint32_t want = 2 * pr + lane / kRowLanes;
        const uint32_t r = want < rows ? want : rows - 1;
        const uint32_t t = r / heads;
        const uint32_t h = r % heads;
        const bool is_q = h < p.hq;
        const void* in = is_q ? byte_at(p.q, t * p.q_tok_b, h * p.head_b) : byte_at(p.k_base, t * p.k_tok_b, h * p.head_b);
        void* out = const_cast<void*>(in);

        uint32_t xv[NW], wv[NW];
        lane_load<NW, VEC>(xv, in, rl);
        lane_load<NW, VEC>(wv, is_q ? p.qw : p.kw, rl);

        float cv[kRun], sv[kRun];
        if (rl < rot_lanes) {
            const int64_t ps = static_cast<int64_t>(static_cast<const IdT*>(p.pos)[t]);
            const float* c_row = static_cast<const float*>(byte_at(p.cache, ps * (R * int64_t(sizeof(float))), 0));
            const float* cs = c_row + cbase;
            const float* sn = c_row + R / 2 + cbase;
            if constexpr (VEC) {
                const float4 c4 = *reinterpret_cast<const float4*>(cs);
                const float4 s4 = *reinterpret_cast<const float4*>(sn);
                cv[0] = c4.x; cv[1] = c4.y; cv[2] = c4.z; cv[3] = c4.w;
                sv[0] = s4.x; sv[1] = s4.y; sv[2] = s4.z; sv[3] = s4.w;
            } else {
#pragma unroll
                for (int i = 0; i < kRun; ++i) {
                    cv[i] = cs[i];
                    sv[i] = sn[i];
                }
            }
        }

        // part[0] / part[1]: the sums of the warp kernel's lanes 2*rl and 2*rl + 1 (elements 0-3
        // and 4-7 of this lane), reduced with that kernel's butterfly and added last.
        float v[E];
        float part[2] = {0.0f, 0.0f};
#pragma unroll
        for (int j = 0; j < NW; ++j) {
            const float2 a = word_to_f2<T>(xv[j]);
            v[2 * j] = a.x;
            v[2 * j + 1] = a.y;
            part[j / 2] += a.x * a.x + a.y * a.y;
        }
#pragma unroll
        for (int m = kRowLanes / 2; m >= 1; m >>= 1) {
            part[0] += __shfl_xor_sync(0xffffffffu, part[0], m);
            part[1] += __shfl_xor_sync(0xffffffffu, part[1], m);
        }
        const float nf = rsqrtf((part[0] + part[1]) / static_cast<float>(D) + p.eps);
#pragma unroll
        for (int j = 0; j < NW; ++j) {
            const float2 g = word_to_f2<T>(wv[j]);
            v[2 * j] *= nf * g.x;
            v[2 * j + 1] *= nf * g.y;
        }

        if (rl < rot_lanes) {
#pragma unroll
            for (int j = 0; j < NW; ++j) {
                const float a = v[2 * j];
                const float b = v[2 * j + 1];
                const float c0 = cv[j], s0 = sv[j];  // half-width cache: both elements of pair j
                const float c1 = cv[j], s1 = sv[j];
                v[2 * j] = a * c0 - b * s0;
                v[2 * j + 1] = b * c1 + a * s1;
            }
        }

#pragma unroll
        for (int j = 0; j < NW; ++j) xv[j] = f2_to_word<T>(make_float2(v[2 * j], v[2 * j + 1]));
        if (want < rows) lane_store<NW, VEC>(out, rl, xv);
    }

    grid_dep_launch();
}

// ---------------------------------------------------------------------------------------------
// v2 helpers: one 16-byte row chunk per lane, optionally with streaming cache hints.
// ---------------------------------------------------------------------------------------------

template <bool STREAM>
__device__ __forceinline__ uint4 v2_load(const void* base, uint32_t i) {
    const uint4* a = static_cast<const uint4*>(base) + i;
    if constexpr (STREAM) {
        return __ldcs(a);
    } else {
        return *a;
    }
}

template <bool STREAM>
__device__ __forceinline__ void v2_store(void* base, uint32_t i, const uint4& v) {
    uint4* a = static_cast<uint4*>(base) + i;
    if constexpr (STREAM) {
        __stcs(a, v);
    } else {
        *a = v;
    }
}

template <typename IdT>
__device__ __forceinline__ int64_t v2_position(const Params& p, uint32_t t) {
    return static_cast<int64_t>(static_cast<const IdT*>(p.pos)[t]);
}

__device__ __forceinline__ const void* v2_row(const Params& p, uint32_t t, uint32_t h, bool is_q) {
    return is_q ? byte_at(p.q, t * p.q_tok_b, h * p.head_b) : byte_at(p.k_base, t * p.k_tok_b, h * p.head_b);
}

// The baseline half-warp kernel's math for one lane's 8 elements, given the row's reduced norm
// factor: scale by nf * w, rotate the 4 interleaved pairs with (c, s), round to T.
template <typename T>
__device__ __forceinline__ uint4 v2_norm_rope(const uint4& x, const uint4& w, float nf, const float4& c4,
                                              const float4& s4) {
    const uint32_t xw[4] = {x.x, x.y, x.z, x.w};
    const uint32_t ww[4] = {w.x, w.y, w.z, w.w};
    const float cv[4] = {c4.x, c4.y, c4.z, c4.w};
    const float sv[4] = {s4.x, s4.y, s4.z, s4.w};
    uint32_t o[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const float2 a2 = word_to_f2<T>(xw[j]);
        const float2 g = word_to_f2<T>(ww[j]);
        float a = a2.x, b = a2.y;
        a *= nf * g.x;
        b *= nf * g.y;
        const float c0 = cv[j], s0 = sv[j];
        const float c1 = cv[j], s1 = sv[j];
        const float r0 = a * c0 - b * s0;
        const float r1 = b * c1 + a * s1;
        o[j] = f2_to_word<T>(make_float2(r0, r1));
    }
    return make_uint4(o[0], o[1], o[2], o[3]);
}

// The two partial sums of squares of the baseline half-warp kernel (elements 0-3 and 4-7).
template <typename T>
__device__ __forceinline__ void v2_parts(const uint4& x, float& p0, float& p1) {
    const uint32_t xw[4] = {x.x, x.y, x.z, x.w};
    float part[2] = {0.0f, 0.0f};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const float2 a = word_to_f2<T>(xw[j]);
        part[j / 2] += a.x * a.x + a.y * a.y;
    }
    p0 = part[0];
    p1 = part[1];
}

// ---------------------------------------------------------------------------------------------
// v2 token-chunk kernel (head_dim 128, full interleaved rotary, 16-byte vectors). A warp item is
// 8 rows (heads, q's then k's) of one token: half-warp hw takes heads j*8 + hw + 2u, u = 0..3,
// 16 lanes x 8 elements per row as the baseline's half-warp kernel. All 4 row loads (64 bytes per
// lane) are issued before any reduction; cos/sin are loaded once per item (8 rows, one token);
// both weight vectors are loaded once per CTA into shared memory (PERSIST); the next item's position is loaded while this
// item computes (PERSIST), so cos/sin never wait on a position load. Per row the math is the
// baseline's: the two partial sums, the 8/4/2/1 butterfly, rsqrt, x * (nf * w), fp32 rotation, RN.
// PERSIST: grid min(occupancy x SMs, items / 8 warps), grid-stride over items (256 threads).
// !PERSIST: one item per warp, grid = all items in 128-thread CTAs, no loop, <= 72 registers.
// PERSIST: <= 64 registers (4 CTAs of 256 per SM).
// ---------------------------------------------------------------------------------------------

constexpr int kTokU = 4;                       // rows per half-warp per item
constexpr uint32_t kItemRows = 2 * kTokU;      // rows per warp item
constexpr uint32_t kTokBlockNP = 128;          // CTA size without the grid-stride loop

template <typename T, typename IdT, bool PERSIST, bool STREAM>
__global__ void __launch_bounds__(PERSIST ? kBlock : kTokBlockNP, PERSIST ? 4 : 7)
    qk_tokchunk_kernel(const __grid_constant__ Params p) {
    constexpr int D = 128;
    constexpr int R = 128;
    constexpr uint32_t kWarps = (PERSIST ? kBlock : kTokBlockNP) / 32;
    const uint32_t lane = threadIdx.x % 32;
    const uint32_t rl = lane % 16;
    const uint32_t hw = lane / 16;
    const uint32_t first = blockIdx.x * kWarps + threadIdx.x / 32;
    const uint32_t stride = gridDim.x * kWarps;
    const uint32_t hq = p.hq;
    const uint32_t heads = hq + p.hk;
    const uint32_t ipt = (heads + kItemRows - 1) / kItemRows;  // items per token
    const uint32_t items = ipt * p.n;
    const uint32_t cbase = rl * 4;

    // PERSIST: both weight vectors once per CTA, in shared memory (not in registers: the 4 rows in
    // flight need them). !PERSIST: read per row from global (L1 hits), so that no CTA waits on a
    // barrier before issuing its row loads.
    __shared__ uint4 s_w[PERSIST ? 2 : 1][16];

    grid_dep_wait();

    if constexpr (PERSIST) {
        if (threadIdx.x < 32) {
            s_w[threadIdx.x / 16][threadIdx.x % 16] =
                *(static_cast<const uint4*>(threadIdx.x < 16 ? p.qw : p.kw) + threadIdx.x % 16);
        }
        __syncthreads();
    }

    if (first < items) {
        uint32_t item = first;
        uint32_t t = item / ipt;
        int64_t ps = v2_position<IdT>(p, t);
        for (;;) {
            const uint32_t hb = (item - t * ipt) * kItemRows + hw;

            uint4 xv[kTokU];
#pragma unroll
            for (int u = 0; u < kTokU; ++u) {
                const uint32_t h = hb + 2 * u;
                xv[u] = h < heads ? v2_load<STREAM>(v2_row(p, t, h, h < hq), rl) : make_uint4(0u, 0u, 0u, 0u);
            }
            const float* c_row = static_cast<const float*>(byte_at(p.cache, ps * (R * int64_t(sizeof(float))), 0));
            const float4 c4 = *reinterpret_cast<const float4*>(c_row + cbase);
            const float4 s4 = *reinterpret_cast<const float4*>(c_row + R / 2 + cbase);

            uint32_t nitem = 0, nt = 0;
            int64_t nps = 0;
            bool more = false;
            if constexpr (PERSIST) {
                nitem = item + stride;
                more = nitem < items;  // warp-uniform
                if (more) {
                    nt = nitem / ipt;
                    nps = v2_position<IdT>(p, nt);
                }
            }

            float part[kTokU][2];
#pragma unroll
            for (int u = 0; u < kTokU; ++u) v2_parts<T>(xv[u], part[u][0], part[u][1]);
#pragma unroll
            for (int m = 8; m >= 1; m >>= 1) {
#pragma unroll
                for (int u = 0; u < kTokU; ++u) {
                    part[u][0] += __shfl_xor_sync(0xffffffffu, part[u][0], m);
                    part[u][1] += __shfl_xor_sync(0xffffffffu, part[u][1], m);
                }
            }
#pragma unroll
            for (int u = 0; u < kTokU; ++u) {
                const uint32_t h = hb + 2 * u;
                const bool is_q = h < hq;
                const float nf = rsqrtf((part[u][0] + part[u][1]) / static_cast<float>(D) + p.eps);
                uint4 w;
                if constexpr (PERSIST) {
                    w = s_w[is_q ? 0 : 1][rl];
                } else {
                    w = *(static_cast<const uint4*>(is_q ? p.qw : p.kw) + rl);
                }
                const uint4 o = v2_norm_rope<T>(xv[u], w, nf, c4, s4);
                if (h < heads) v2_store<STREAM>(const_cast<void*>(v2_row(p, t, h, is_q)), rl, o);
            }

            if (!more) break;
            item = nitem;
            t = nt;
            ps = nps;
        }
    }

    grid_dep_launch();
}

// ---------------------------------------------------------------------------------------------
// v4: v2b's item and math, fed by a per-warp ring of S shared-memory slots filled by TMA bulk
// copies (cp.async.bulk, global -> shared, completion counted in bytes on one mbarrier a slot).
// A slot is one item: its 8 rows (2 KB, heads 8j .. 8j+7 of token t, row r at r * 256 bytes) and
// the item's 512-byte cache row (cos 0-255, sin 256-511). Per item at most three bulk copies,
// one UBLKCP each, by lanes 0-2: the item's q heads (one contiguous run: heads are 256 bytes apart
// on this path), its k heads (the other run; both only where an item straddles q and k, i.e. Hq
// not a multiple of 8), its cache row. Rows past the token's last head are not copied (their slot
// bytes are stale) and, as in v2b, not stored; a row's butterfly stays inside its half-warp, so
// they touch no other row.
// Loop for the warp's n-th item (slot n % S, parity (n / S) & 1): wait on the slot's mbarrier,
// read the slot into registers (4 rows + cos + sin: 6 LDS.128 a lane), __syncwarp, refill the slot
// with the item S grid strides ahead (its position was loaded one iteration earlier), then
// reduce, rotate and store from registers as v2b. So S - 1 to S items a warp are in flight
// during the compute, held in shared memory, not registers.
// The slot's reads (generic proxy) are ordered before its refill (async proxy) by the __syncwarp
// between them, as CUTLASS's TMA pipelines order them with an mbarrier arrive (no proxy fence).
// Every copy issued is for an item < items that the same warp's loop later waits on, so every
// completed phase is consumed and no copy is in flight into shared memory when the CTA exits;
// the barriers are initialised at every launch (no state across calls or graph replays).
// Per row the math is v2b's (the baseline's): the two partial sums, butterfly 8/4/2/1, rsqrt,
// x * (nf * w), fp32 rotation, one RN rounding, from the same bits (v2_parts / v2_norm_rope).
// ---------------------------------------------------------------------------------------------

constexpr uint32_t kV4RowBytes = 256;                        // one head of 128 bf16/fp16
constexpr uint32_t kV4CacheBytes = 512;                      // one [cos | sin] row of 128 fp32
constexpr uint32_t kV4SlotBytes = kItemRows * kV4RowBytes + kV4CacheBytes;  // 2560

__device__ __forceinline__ void v4_mbar_init(uint32_t bar, uint32_t count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}

__device__ __forceinline__ void v4_fence_mbar_init() {
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

// Arrive (the slot's one expected arrival) and add `bytes` to the phase's expected transactions.
__device__ __forceinline__ void v4_mbar_expect(uint32_t bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}

__device__ __forceinline__ void v4_mbar_wait(uint32_t bar, uint32_t parity) {
    uint32_t done;
    do {
        asm volatile(
            "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
            : "=r"(done)
            : "r"(bar), "r"(parity)
            : "memory");
    } while (!done);
}

__device__ __forceinline__ void v4_bulk_g2s(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
    asm volatile(
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
        "l"(src), "r"(bytes), "r"(bar)
        : "memory");
}

__device__ __forceinline__ uint4 v4_lds128(uint32_t a) {
    uint4 v;
    asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(a) : "memory");
    return v;
}

// Where a warp's item (t, j) is: item = t * ipt + j. Advanced by the grid stride without a
// division (stride = qs * ipt + rs, computed once). (v3c's, commit 82a3267.)
struct V3Cursor {
    uint32_t item, t, j;
};

__device__ __forceinline__ void v3_advance(V3Cursor& c, uint32_t stride, uint32_t qs, uint32_t rs, uint32_t ipt) {
    c.item += stride;
    c.t += qs;
    c.j += rs;
    if (c.j >= ipt) {
        c.j -= ipt;
        c.t += 1;
    }
}

template <typename T, typename IdT, int S, int MINB>
__global__ void __launch_bounds__(kBlock, MINB) qk_tma_ring_kernel(const __grid_constant__ Params p) {
    static_assert(S >= 2, "a ring needs two slots");
    constexpr int D = 128;
    constexpr uint32_t kWarps = kBlock / 32;
    extern __shared__ __align__(128) unsigned char v4_smem[];

    const uint32_t lane = threadIdx.x % 32;
    const uint32_t rl = lane % 16;
    const uint32_t hw = lane / 16;
    const uint32_t warp = threadIdx.x / 32;
    const uint32_t first = blockIdx.x * kWarps + warp;
    const uint32_t stride = gridDim.x * kWarps;
    const uint32_t hq = p.hq;
    const uint32_t heads = hq + p.hk;
    const uint32_t ipt = (heads + kItemRows - 1) / kItemRows;  // items per token
    const uint32_t items = ipt * p.n;
    // The grid stride in (token, item-of-token) steps, so cursors advance without a division.
    const uint32_t qs = stride / ipt;
    const uint32_t rs = stride - qs * ipt;

    // This warp's ring (S slots) and its S barriers (after every warp's ring).
    const uint32_t smem0 = static_cast<uint32_t>(__cvta_generic_to_shared(v4_smem));
    const uint32_t ring = smem0 + warp * (uint32_t(S) * kV4SlotBytes);
    const uint32_t bars = smem0 + kWarps * uint32_t(S) * kV4SlotBytes + warp * uint32_t(S) * 8u;
    // This lane's reads inside a slot: row hw + 2u at (hw + 2u) * 256 + rl * 16; cos / sin chunk rl.
    const uint32_t rd_x = hw * kV4RowBytes + rl * 16u;
    const uint32_t rd_c = kItemRows * kV4RowBytes + rl * 16u;

    if (lane == 0) {
#pragma unroll
        for (int s = 0; s < S; ++s) v4_mbar_init(bars + 8u * s, 1u);
        v4_fence_mbar_init();
    }
    __syncwarp();

    grid_dep_wait();

    if (first < items) {
        // Producer (lanes 0-2): item (t, j) into the slot at `dst`, completion on `bar`. Lane 0 has
        // already armed the barrier with the item's byte count (v4_arm), before a __syncwarp.
        auto issue = [&](uint32_t t, uint32_t j, int64_t ps, uint32_t dst, uint32_t bar) {
            const uint32_t h0 = j * kItemRows;
            const uint32_t hend = h0 + kItemRows < heads ? h0 + kItemRows : heads;
            const void* src = nullptr;
            uint32_t off = 0, bytes = 0;
            if (lane == 0) {  // q heads [h0, min(hend, hq))
                const uint32_t e = hend < hq ? hend : hq;
                if (h0 < e) {
                    src = byte_at(p.q, int64_t(t) * p.q_tok_b, int64_t(h0) * kV4RowBytes);
                    bytes = (e - h0) * kV4RowBytes;
                }
            } else if (lane == 1) {  // k heads [max(h0, hq), hend)
                const uint32_t b = h0 > hq ? h0 : hq;
                if (b < hend) {
                    src = byte_at(p.k_base, int64_t(t) * p.k_tok_b, int64_t(b) * kV4RowBytes);
                    off = (b - h0) * kV4RowBytes;
                    bytes = (hend - b) * kV4RowBytes;
                }
            } else if (lane == 2) {  // the cache row
                src = byte_at(p.cache, ps * int64_t(kV4CacheBytes), 0);
                off = kItemRows * kV4RowBytes;
                bytes = kV4CacheBytes;
            }
            if (bytes != 0) v4_bulk_g2s(dst + off, src, bytes, bar);
        };
        auto arm = [&](uint32_t j, uint32_t bar) {
            if (lane == 0) {
                const uint32_t h0 = j * kItemRows;
                const uint32_t hend = h0 + kItemRows < heads ? h0 + kItemRows : heads;
                v4_mbar_expect(bar, (hend - h0) * kV4RowBytes + kV4CacheBytes);
            }
        };

        // Both weight chunks of this lane, in registers (bits as v2b reads them from shared memory).
        const uint4 wq = *(static_cast<const uint4*>(p.qw) + rl);
        const uint4 wk = *(static_cast<const uint4*>(p.kw) + rl);

        // Prologue: the first S items' positions (loads in flight together), then their copies.
        V3Cursor pf;
        pf.item = first;
        pf.t = first / ipt;
        pf.j = first - pf.t * ipt;
        const V3Cursor first_cur = pf;
        {
            int64_t pps[S];
            V3Cursor c = pf;
#pragma unroll
            for (int s = 0; s < S; ++s) {
                pps[s] = c.item < items ? v2_position<IdT>(p, c.t) : 0;
                v3_advance(c, stride, qs, rs, ipt);
            }
            c = pf;
#pragma unroll
            for (int s = 0; s < S; ++s) {
                if (c.item < items) arm(c.j, bars + 8u * s);
                v3_advance(c, stride, qs, rs, ipt);
            }
            __syncwarp();
#pragma unroll
            for (int s = 0; s < S; ++s) {
                if (pf.item < items) issue(pf.t, pf.j, pps[s], ring + uint32_t(s) * kV4SlotBytes, bars + 8u * s);
                v3_advance(pf, stride, qs, rs, ipt);
            }
        }
        // pf is now the item S strides ahead of the first; its position, loaded one iteration early.
        int64_t pf_ps = pf.item < items ? v2_position<IdT>(p, pf.t) : 0;

        V3Cursor cur = first_cur;
        uint32_t slot = 0, parity = 0;
        do {  // cur.item < items: warp-uniform
            const uint32_t sa = ring + slot * kV4SlotBytes;
            const uint32_t bar = bars + 8u * slot;
            v4_mbar_wait(bar, parity);

            uint4 xv[kTokU];
#pragma unroll
            for (int u = 0; u < kTokU; ++u) xv[u] = v4_lds128(sa + rd_x + uint32_t(u) * 2u * kV4RowBytes);
            const uint4 cu = v4_lds128(sa + rd_c);
            const uint4 su = v4_lds128(sa + rd_c + kV4CacheBytes / 2);

            // Refill this slot with the item S strides ahead: armed, every lane past its reads, copied.
            const bool refill = pf.item < items;  // warp-uniform
            if (refill) arm(pf.j, bar);
            __syncwarp();
            if (refill) issue(pf.t, pf.j, pf_ps, sa, bar);
            v3_advance(pf, stride, qs, rs, ipt);
            if (pf.item < items) pf_ps = v2_position<IdT>(p, pf.t);

            const float4 c4 = make_float4(__uint_as_float(cu.x), __uint_as_float(cu.y), __uint_as_float(cu.z),
                                          __uint_as_float(cu.w));
            const float4 s4 = make_float4(__uint_as_float(su.x), __uint_as_float(su.y), __uint_as_float(su.z),
                                          __uint_as_float(su.w));
            float part[kTokU][2];
#pragma unroll
            for (int u = 0; u < kTokU; ++u) v2_parts<T>(xv[u], part[u][0], part[u][1]);
#pragma unroll
            for (int m = 8; m >= 1; m >>= 1) {
#pragma unroll
                for (int u = 0; u < kTokU; ++u) {
                    part[u][0] += __shfl_xor_sync(0xffffffffu, part[u][0], m);
                    part[u][1] += __shfl_xor_sync(0xffffffffu, part[u][1], m);
                }
            }
            const uint32_t hb = cur.j * kItemRows + hw;
            char* const qrow = static_cast<char*>(p.q) + int64_t(cur.t) * p.q_tok_b;
            char* const krow = static_cast<char*>(p.k_base) + int64_t(cur.t) * p.k_tok_b;
#pragma unroll
            for (int u = 0; u < kTokU; ++u) {
                const uint32_t h = hb + 2 * u;
                const bool is_q = h < hq;
                const float nf = rsqrtf((part[u][0] + part[u][1]) / static_cast<float>(D) + p.eps);
                // Selected word by word (a selected uint4 reference is put in local memory).
                const uint4 w = make_uint4(is_q ? wq.x : wk.x, is_q ? wq.y : wk.y, is_q ? wq.z : wk.z,
                                           is_q ? wq.w : wk.w);
                const uint4 o = v2_norm_rope<T>(xv[u], w, nf, c4, s4);
                if (h < heads) v2_store<false>((is_q ? qrow : krow) + int64_t(h) * kV4RowBytes, rl, o);
            }

            v3_advance(cur, stride, qs, rs, ipt);
            if (++slot == uint32_t(S)) {
                slot = 0;
                parity ^= 1u;
            }
        } while (cur.item < items);
    }

    grid_dep_launch();
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

bool aligned_to(const void* p, uintptr_t bytes) { return (reinterpret_cast<uintptr_t>(p) & (bytes - 1)) == 0; }

struct Problem {
    ParamsR p;
    const void* k_data;  // k's element [0, 0, 0] (Params holds it moved back by Hq head strides)
    int dtype;           // KP_BF16 / KP_F16
    int id_dtype;        // KP_I32 / KP_I64
    int D, R;
    bool neox;
    int64_t N, heads;
};

// 0.5.23's support gate (_can_use_fused_qknorm_rope and QKNormRopeKernel::run's tensor matchers),
// as far as the ABI can express it. On refusal sets call->path and returns KP_NOT_SUPPORTED.
int32_t check_call(kp_call* call, Problem* pr) {
    const kp_tensor& q = call->tensors[0];
    const kp_tensor& k = call->tensors[1];
    const kp_tensor& qw = call->tensors[2];
    const kp_tensor& kw = call->tensors[3];
    const kp_tensor& cache = call->tensors[4];
    const kp_tensor& pos = call->tensors[5];
    auto refuse = [&](const char* why) {
        set_path(call, why);
        return KP_NOT_SUPPORTED;
    };

    if (!(q.dtype == KP_BF16 || q.dtype == KP_F16) || k.dtype != q.dtype) return refuse("unsupported:dtype");
    if (q.rank != 3 || k.rank != 3 || !shape_nonneg(q) || !shape_nonneg(k)) return refuse("unsupported:qk_rank");
    const int64_t N = q.shape[0], Hq = q.shape[1], Hk = k.shape[1], D = q.shape[2];
    if (k.shape[0] != N || k.shape[2] != D) return refuse("unsupported:qk_shape");
    if (!(D == 64 || D == 128 || D == 256)) return refuse("unsupported:head_dim");
    if (q.stride[2] != 1 || k.stride[2] != 1) return refuse("unsupported:qk_last_stride");
    // One head stride shared by q and k (upstream's single head_stride); it only exists where a
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

    // fp32 half-width cache [P, R] = [cos | sin] (the only cache production passes).
    if (cache.dtype != KP_F32 || cache.rank != 2 || !shape_nonneg(cache)) return refuse("unsupported:cache");
    const int64_t P = cache.shape[0], R = cache.shape[1];
    if (cache.stride[1] != 1 || (P > 1 && cache.stride[0] != R)) return refuse("unsupported:cache_layout");
    const int64_t E = D / 32;
    if (R <= 0 || R > D || R % E != 0) return refuse("unsupported:rope_dim");
    const double neox_s = call->scalars[0];
    if (!(neox_s == 0.0 || neox_s == 1.0)) return refuse("unsupported:is_neox");
    const bool neox = neox_s == 1.0;
    if (neox) {
        // 0.5.23: the rotary lane count R/(D/32) must be even (and so at least 2).
        const int64_t lanes = R / E;
        if (lanes < 2 || lanes % 2 != 0) return refuse("unsupported:neox_rotary_lanes");
    }
    if (N > 0 && P > 0 && cache.data == nullptr) return refuse("unsupported:cache_null");

    if (!(pos.dtype == KP_I32 || pos.dtype == KP_I64) || pos.rank != 1 || pos.shape[0] != N ||
        (N > 1 && pos.stride[0] != 1) || (N > 0 && pos.data == nullptr))
        return refuse("unsupported:positions");

    // Upstream indexes rows in 32 bits.
    if (N >= (1ll << 31) || Hq + Hk >= (1ll << 31) || N * (Hq + Hk) >= (1ll << 31)) return refuse("unsupported:too_large");

    ParamsR& p = pr->p;
    const size_t esz = 2;  // bf16 / fp16
    p.q = q.data;
    p.k_base = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(k.data) -
                                       static_cast<uintptr_t>(Hq * hs) * static_cast<uintptr_t>(esz));
    p.qw = qw.data;
    p.kw = kw.data;
    p.cache = cache.data;
    p.pos = pos.data;
    p.q_tok_b = q.stride[0] * int64_t(esz);
    p.k_tok_b = k.stride[0] * int64_t(esz);
    p.head_b = hs * int64_t(esz);
    p.hq = static_cast<uint32_t>(Hq);
    p.hk = static_cast<uint32_t>(Hk);
    p.n = static_cast<uint32_t>(N);
    p.rope = static_cast<int32_t>(R);
    p.eps = static_cast<float>(call->scalars[1]);
    pr->k_data = k.data;
    pr->dtype = q.dtype;
    pr->id_dtype = pos.dtype;
    pr->D = static_cast<int>(D);
    pr->R = static_cast<int>(R);
    pr->neox = neox;
    pr->N = N;
    pr->heads = Hq + Hk;
    return KP_OK;
}

// SM count and compute capability major of the current device, queried once per device.
bool device_info(int* dev_out, int* sms_out, bool* pdl_out) {
    static std::atomic<int> sm_cache[kMaxDevices];
    static std::atomic<int> major_cache[kMaxDevices];
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return false;
    const bool cached_dev = dev >= 0 && dev < kMaxDevices;
    int sms = cached_dev ? sm_cache[dev].load(std::memory_order_relaxed) : 0;
    int major = cached_dev ? major_cache[dev].load(std::memory_order_relaxed) : 0;
    if (sms <= 0 || major <= 0) {
        if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) return false;
        if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return false;
        if (cached_dev) {
            sm_cache[dev].store(sms, std::memory_order_relaxed);
            major_cache[dev].store(major, std::memory_order_relaxed);
        }
    }
    *dev_out = dev;
    *sms_out = sms;
    *pdl_out = major >= 9;
    return true;
}

// Persistent grid as launch_qknorm_rope: min(occupancy x SMs, ceil(works / 8)); PDL on sm90+.
template <auto kKernel>
int32_t launch(const Problem& pr, uint32_t works, cudaStream_t st) {
    using P = std::conditional_t<std::is_same_v<decltype(kKernel), void (*)(ParamsR)>, ParamsR, Params>;
    static std::atomic<int> occ_cache[kMaxDevices];
    int dev = 0, sms = 0;
    bool pdl = false;
    if (!device_info(&dev, &sms, &pdl)) {
        cudaGetLastError();
        return KP_CUDA_ERROR;
    }
    int occ = dev >= 0 && dev < kMaxDevices ? occ_cache[dev].load(std::memory_order_relaxed) : 0;
    if (occ <= 0) {
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, kKernel, static_cast<int>(kBlock), 0) != cudaSuccess) {
            cudaGetLastError();
            return KP_CUDA_ERROR;
        }
        if (dev >= 0 && dev < kMaxDevices && occ > 0) occ_cache[dev].store(occ, std::memory_order_relaxed);
    }
    const uint32_t max_blocks = static_cast<uint32_t>(occ) * static_cast<uint32_t>(sms);
    const uint32_t needed = (works + kWarpsPerBlock - 1) / kWarpsPerBlock;
    const uint32_t grid = needed < max_blocks ? needed : max_blocks;

    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(grid);
    cfg.blockDim = dim3(kBlock);
    cfg.dynamicSmemBytes = 0;
    cfg.stream = st;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = pdl ? 1 : 0;
    const P args = pr.p;  // Params: the upstream layout (R is a template constant); ParamsR: with R
    const cudaError_t e = cudaLaunchKernelEx(&cfg, kKernel, args);
    const cudaError_t last = cudaGetLastError();
    return e == cudaSuccess && last == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
}

constexpr int32_t kNoKernel = -1;

// Vector paths: one instantiation per rope_dim, as upstream's template. lanes = R / (elements per
// lane of the warp kernel); the half-warp kernel covers D == 128 interleaved with R % 8 == 0.
template <typename T, typename IdT, int L>
int32_t half_warp_r(const Problem& pr, uint32_t works, cudaStream_t st) {
    if (pr.R != 8 * L) return kNoKernel;
    return launch<qk_half_warp_kernel<T, IdT, 8 * L, true>>(pr, works, st);
}

template <typename T, typename IdT, int D, bool NEOX, int L>
int32_t warp_r(const Problem& pr, uint32_t rows, cudaStream_t st) {
    constexpr int E = D / 32;
    if constexpr (NEOX && L % 2 != 0) {
        return kNoKernel;  // refused by the gate
    } else if constexpr (D == 128 && !NEOX && (L * E) % 8 == 0) {
        return kNoKernel;  // the half-warp kernel's
    } else {
        if (pr.R != L * E) return kNoKernel;
        return launch<qk_warp_kernel<T, IdT, D, NEOX, L * E, true>>(pr, rows, st);
    }
}

template <typename T, typename IdT, int... Ls>
int32_t half_warp_vec(const Problem& pr, uint32_t works, cudaStream_t st, std::integer_sequence<int, Ls...>) {
    int32_t rc = kNoKernel;
    ((rc = rc != kNoKernel ? rc : half_warp_r<T, IdT, Ls + 1>(pr, works, st)), ...);
    return rc;
}

template <typename T, typename IdT, int D, bool NEOX, int... Ls>
int32_t warp_vec(const Problem& pr, uint32_t rows, cudaStream_t st, std::integer_sequence<int, Ls...>) {
    int32_t rc = kNoKernel;
    ((rc = rc != kNoKernel ? rc : warp_r<T, IdT, D, NEOX, Ls + 1>(pr, rows, st)), ...);
    return rc;
}

template <typename T, typename IdT, int D, bool NEOX>
int32_t run_warp_d(const Problem& pr, bool vec, uint32_t rows, cudaStream_t st) {
    if (!vec) return launch<qk_warp_kernel<T, IdT, D, NEOX, 0, false>>(pr, rows, st);
    return warp_vec<T, IdT, D, NEOX>(pr, rows, st, std::make_integer_sequence<int, 32>{});
}

template <typename T, typename IdT>
int32_t run(const Problem& pr, bool half, bool vec, cudaStream_t st) {
    const uint32_t rows = static_cast<uint32_t>(pr.N * pr.heads);
    if (half) {
        const uint32_t works = (rows + 1u) / 2u;  // row pairs
        if (!vec) return launch<qk_half_warp_kernel<T, IdT, 0, false>>(pr, works, st);
        return half_warp_vec<T, IdT>(pr, works, st, std::make_integer_sequence<int, 16>{});
    }
    switch (pr.D) {
        case 64:
            return pr.neox ? run_warp_d<T, IdT, 64, true>(pr, vec, rows, st) : run_warp_d<T, IdT, 64, false>(pr, vec, rows, st);
        case 128:
            return pr.neox ? run_warp_d<T, IdT, 128, true>(pr, vec, rows, st) : run_warp_d<T, IdT, 128, false>(pr, vec, rows, st);
        default:
            return pr.neox ? run_warp_d<T, IdT, 256, true>(pr, vec, rows, st) : run_warp_d<T, IdT, 256, false>(pr, vec, rows, st);
    }
}

// Rows (token, head) from which the v2 kernel runs; smaller calls keep the baseline's kernel.
constexpr int64_t kV2MinRows = 65536;

template <typename T, typename IdT>
int32_t run_v2(const Problem& pr, cudaStream_t st) {
    const uint32_t items = static_cast<uint32_t>(pr.N * ((pr.heads + 7) / 8));
    (void)items;
    return launch<qk_tokchunk_kernel<T, IdT, true, false>>(pr, items, st);
}


// v4's launch: 256-thread CTAs, the rings in dynamic shared memory (S slots of 2560 bytes a warp
// plus S 8-byte barriers), as many CTAs an SM as registers and shared memory allow (the carveout
// asked for at its largest, occupancy queried once per device), grid min(that x SMs,
// ceil(items / 8)), grid-stride, PDL as the baseline.
constexpr int kV4Stages = 1;
constexpr int kV4MinBlocks = 2;

template <int S>
constexpr uint32_t v4_smem_bytes() {
    return kWarpsPerBlock * uint32_t(S) * (kV4SlotBytes + 8u);
}

template <typename T, typename IdT, int S, int MINB>
int32_t run_v4(const Problem& pr, cudaStream_t st) {
    constexpr auto kKernel = qk_tma_ring_kernel<T, IdT, S, MINB>;
    constexpr uint32_t kSmem = v4_smem_bytes<S>();
    static std::atomic<int> occ_cache[kMaxDevices];
    int dev = 0, sms = 0;
    bool pdl = false;
    if (!device_info(&dev, &sms, &pdl)) {
        cudaGetLastError();
        return KP_CUDA_ERROR;
    }
    int occ = dev >= 0 && dev < kMaxDevices ? occ_cache[dev].load(std::memory_order_relaxed) : 0;
    if (occ <= 0) {
        if (cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSmem)) !=
            cudaSuccess) {
            cudaGetLastError();
            return KP_CUDA_ERROR;
        }
        // A hint only; a failure leaves the default carveout (and the occupancy it gives).
        if (cudaFuncSetAttribute(kKernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                 static_cast<int>(cudaSharedmemCarveoutMaxShared)) != cudaSuccess)
            cudaGetLastError();
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, kKernel, static_cast<int>(kBlock), kSmem) !=
            cudaSuccess) {
            cudaGetLastError();
            return KP_CUDA_ERROR;
        }
        if (occ <= 0) return KP_CUDA_ERROR;
        if (dev >= 0 && dev < kMaxDevices) occ_cache[dev].store(occ, std::memory_order_relaxed);
    }
    const uint32_t items = static_cast<uint32_t>(pr.N * ((pr.heads + 7) / 8));
    const uint32_t max_blocks = static_cast<uint32_t>(occ) * static_cast<uint32_t>(sms);
    const uint32_t needed = (items + kWarpsPerBlock - 1) / kWarpsPerBlock;
    const uint32_t grid = needed < max_blocks ? needed : max_blocks;

    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(grid);
    cfg.blockDim = dim3(kBlock);
    cfg.dynamicSmemBytes = kSmem;
    cfg.stream = st;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = pdl ? 1 : 0;
    const Params args = pr.p;
    const cudaError_t e = cudaLaunchKernelEx(&cfg, kKernel, args);
    const cudaError_t last = cudaGetLastError();
    return e == cudaSuccess && last == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
}

}  // namespace

extern "C" int32_t kp_fused_inplace_qknorm_rope(kp_call* call, void* stream) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != 6 || call->n_scalars != 2 ||
        !ranks_valid(call))
        return KP_INVALID;
    Problem pr{};
    const int32_t gate = check_call(call, &pr);
    if (gate != KP_OK) return gate;

    // kUseHalfWarp<D, R, is_neox, round_norm_before_rope = false>: D == 128, interleaved, R % 8 == 0.
    const bool half = pr.D == 128 && !pr.neox && pr.R % 8 == 0;
    const int64_t E = half ? 8 : pr.D / 32;  // elements per lane
    const uintptr_t vbytes = static_cast<uintptr_t>(E * 2);
    const ParamsR& p = pr.p;
    const int64_t eb = E * 2;
    bool vec = aligned_to(p.q, vbytes) && aligned_to(pr.k_data, vbytes) && aligned_to(p.qw, vbytes) &&
               aligned_to(p.kw, vbytes) && p.q_tok_b % eb == 0 && p.k_tok_b % eb == 0 && p.head_b % eb == 0;
    // The half-warp kernel reads its 4 cos and 4 sin values as 16-byte vectors.
    if (half) vec = vec && aligned_to(p.cache, 16);

    // v2 path: the production signature (half-warp layout, vectors, full rotary) with enough rows.
    const bool v2 = half && vec && pr.R == 128 && pr.N * pr.heads >= kV2MinRows;
    // v4 path: v2's, with heads 256 bytes apart (an item's heads of one tensor are one contiguous
    // bulk copy); token strides and bases are 16-byte aligned already (vec). Else v2b's kernel.
    const bool v4 = v2 && p.head_b == int64_t(kV4RowBytes);

    char path[KP_PATH_LEN];
    if (v4) {
        snprintf(path, sizeof path, "v4_tma_ring_s%d_b256x%d_d128_r128_interleaved_vec", kV4Stages, kV4MinBlocks);
    } else if (v2) {
        snprintf(path, sizeof path, "v2b_tokchunk_u4_persist_d128_r128_interleaved_vec");
    } else {
        snprintf(path, sizeof path, "%s_d%d_r%d_%s_%s", half ? "half_warp" : "warp", pr.D, pr.R,
                 pr.neox ? "neox" : "interleaved", vec ? "vec" : "scalar");
    }
    set_path(call, path);
    if (pr.N == 0 || pr.heads == 0) return KP_OK;

    cudaStream_t st = static_cast<cudaStream_t>(stream);
    int32_t rc;
    if (v4) {
        constexpr int S = kV4Stages, B = kV4MinBlocks;
        if (pr.dtype == KP_BF16) {
            return pr.id_dtype == KP_I64 ? run_v4<bf16, int64_t, S, B>(pr, st) : run_v4<bf16, int32_t, S, B>(pr, st);
        }
        return pr.id_dtype == KP_I64 ? run_v4<f16, int64_t, S, B>(pr, st) : run_v4<f16, int32_t, S, B>(pr, st);
    }
    if (v2) {
        if (pr.dtype == KP_BF16) {
            return pr.id_dtype == KP_I64 ? run_v2<bf16, int64_t>(pr, st) : run_v2<bf16, int32_t>(pr, st);
        }
        return pr.id_dtype == KP_I64 ? run_v2<f16, int64_t>(pr, st) : run_v2<f16, int32_t>(pr, st);
    }
    if (pr.dtype == KP_BF16) {
        rc = pr.id_dtype == KP_I64 ? run<bf16, int64_t>(pr, half, vec, st) : run<bf16, int32_t>(pr, half, vec, st);
    } else {
        rc = pr.id_dtype == KP_I64 ? run<f16, int64_t>(pr, half, vec, st) : run<f16, int32_t>(pr, half, vec, st);
    }
    if (rc == kNoKernel) {  // unreachable: the gate admits only instantiated rope dims
        set_path(call, "unsupported:no_instantiation");
        return KP_NOT_SUPPORTED;
    }
    return rc;
}
