// Baseline for tasks/fuse_scale_shift: a CUDA port of what SGLang 0.5.23 runs on CUDA for the
// task's three entry points.
//
// Lineage (facts):
//   package      sglang 0.5.23 from PyPI, wheel sglang-0.5.23-cp311-cp311-manylinux_2_34_x86_64.whl
//   file         sglang/kernels/ops/diffusion/modulate/scale_shift_triton.py (Triton)
//   EP1 fuse_scale_shift_kernel(x, scale, shift, scale_constant)
//     scale not 4-D -> Triton kernel fuse_scale_shift_kernel_blc_opt, on CUDA with
//                      BLOCK_C = min(1024, next_pow2(C)), BLOCK_L = max(1, 4096 // BLOCK_C),
//                      grid (cdiv(L, BLOCK_L), cdiv(C, BLOCK_C), B), num_warps 4, num_stages 2.
//                      Scale and shift both scalar and both zero: output.copy_(x) (host sync).
//     scale 4-D      -> Triton kernel _fused_scale_shift_4d_kernel, BLOCK_N =
//                      max(64, min(512, next_pow2(C))), num_warps 2 if BLOCK_N == 64 else 4,
//                      grid (B*L, cdiv(C, BLOCK_N)); scale [B, F, 1, C] per frame, shift [B*L, C]
//                      per token.
//   EP2 fuse_layernorm_scale_shift_gate_select01_kernel
//                   -> Triton kernel _fused_layernorm_scale_shift_gate_select01_kernel
//   EP3 fuse_residual_layernorm_scale_shift_gate_select01_kernel
//                   -> Triton kernel _fused_residual_layernorm_scale_shift_gate_select01_kernel
//                      both: grid (B*L,), one program per row, BLOCK_N = min(65536 //
//                      x.element_size(), next_pow2(C)), num_warps 4, num_stages 4,
//                      do_not_specialize seq_len and stride_i_b.
//   Production callers in the wheel: multimodal_gen/runtime/layers/elementwise.py MulAdd.forward_cuda
//   (EP1, scale_constant = k, an int, default 0) and multimodal_gen/runtime/layers/
//   fused_scale_shift_gate.py FusedLayerNormScaleShiftGateSelect01 /
//   FusedResidualLayerNormScaleShiftGateSelect01 .forward_cuda (EP2/EP3).
//
// How the port maps Triton: one Triton program = one CUDA block of num_warps*32 threads over the
// same tile; each thread owns the elements Triton's blocked layout gives it (sizePerThread = one
// 16-byte vector of the output dtype along the fastest dim when the pointers are 16-byte
// divisible, else 1), the whole tile's loads are issued before the arithmetic, and the arithmetic
// follows the PTX Triton 3.6 emits for sm_90 (read from the compiled kernels of the production
// rows on an H200):
//   * EP1, x, scale and shift of one 16-bit type: t = k + scale (add.bf16x2), y = fma(x, t, shift)
//     as ONE 16-bit fused multiply-add (fma.rn.bf16x2: LLVM contracts Triton's mul and add).
//     An fp32 operand: the same in fp32 with one fp32 fma, rounded once to x's dtype.
//   * EP2/EP3: fp32 throughout. Row sum: each thread adds its elements in column order, then a
//     butterfly over the warp (xor 16, 8, 4, 2, 1), then the 4 warp partials as
//     (w0 + w2) + (w1 + w3). mean = sum / C and var = sumsq / C with div.full.f32 (Triton's
//     approximate fp32 division), rstd = rsqrt.approx.ftz.f32(var + eps). The squares sum as
//     d1*d1, then fma(d0, d0, .), fma(d2, d2, .), ... in column order. EP3's residual_out =
//     fma(x, residual_gate, residual) in fp32, stored rounded, normalised unrounded.
//     y = fma(x_hat, 1 + scale, shift); with weight/bias, x_hat*w + b is one fma.
//
// Checked on an H200 (Triton 3.6, torch 2.11, upstream called through upstream/adapter.py), for the
// version before the register rework below: the outputs are bit-identical to upstream's on the
// production shapes (firered/qwen/qwen-edit/hunyuan/wan EP1, qwen-edit EP2/EP3 S8424) and on the
// regression shapes (odd C, C = 17, fp16, fp32, 4-D scale, affine LayerNorm with int64 index,
// fp16 weight, C = 64, C = 999). Speed, CUDA graph of 50, warm L2: bf16 EP1 rows within 1.2% of
// upstream; the wan fp32-scale row 1.18x slower, EP2 1.50x slower and EP3 1.06x slower on S8424,
// with ptxas giving that version 96 / 110 / 110 registers a thread (the EP1 tile with fp32 scale,
// EP2 and EP3 of those rows; the all-bf16 EP1 tile 80) where Triton's kernels were recorded at
// 48 / 64 / 70. Capping registers with __launch_bounds__ spilled and was slower.
//
// Register rework (same grid, block, layout, loads before stores, rounding points and operation
// order; not yet re-checked on a GPU): ptxas -v for sm_90a now gives the EP1 tile with fp32 scale
// 80 registers (was 96), the all-bf16 EP1 tile 64 (was 80), EP2 80 (was 110) and EP3 96 (was
// 110) on the production rows, with no spills and no LDL/STL in their SASS (420 kernels now, 342
// before; of the new simple ones, EP3 with fp32 modulation at EPT 16 and fp32 x at EPT 64, no
// production row, spill 8 to 88 bytes). What changed:
//   * EP1 tile: one 64-bit base per tile and operand, 32-bit offsets inside the tile for x and out;
//     the layout's TC / TL / reps from shifts of log2(BLOCK_C) (all powers of two), reps fixed at 1
//     at compile time for 8-element vectors (BLOCK_C <= 1024 = 128 threads x 8); the vector-or-strided
//     choice of scale and shift taken once for the whole tile, not per vector.
//   * EP2 / EP3 on the production case (16-byte vectors, no weight or bias, all six modulation
//     rows vector-loadable) run a separate instantiation, ln_select01_simple, without the strided
//     and affine code (as Triton compiles one kernel per HAS_WEIGHT / HAS_BIAS and stride
//     specialisation); every other call runs the previous code unchanged (ln_select01_general).
//     In it: EP2 keeps x as packed 16-bit words and converts them to fp32 at each use (exact);
//     an XOR with LnArgs::opaque_zero (always 0) between the phases of the row stops nvcc and
//     ptxas from keeping the converted floats or x - mean live instead (an empty asm did not:
//     ptxas saw through it). EP3 keeps residual_out in fp32 (it is normalised unrounded; one
//     register an element, fewer than its three packed inputs). x - mean and x_hat are computed
//     where used, not kept in arrays; 32-bit column offsets from one 64-bit row base; 32-bit
//     row / seq_len for the index (B*L < 2^31 is checked); the row's x, residual and gate loads
//     and the scale, shift and gate loads each over all chunks in turn in the source (Triton's
//     order; ptxas interleaves them).
//   Not reached: all of a tile's or row's loads are issued before its first store (Triton's
//   program order), so the fp32-scale tile holds 64 data registers (x 16, shift 16, scale 32) and
//   EP2 / EP3 64 / 80 (x packed 16 or residual_out 32, plus scale, shift and gate 48) at the last
//   load; Triton's recorded 48 / 64 / 70 are at or under those floors, so its SASS must schedule
//   differently (not read).
//
// EP2 chunk by chunk (after fidelity run 20261130T180846Z-42a26cf5 on an H200, where the 80-register
// EP2 above was the one production row outside the band: qwen-edit_ln_select01_S8424 42.30 us
// upstream, 45.51 us baseline, 1.076; outputs identical to upstream's). Only ln_select01_simple's
// 39 EP2 instantiations changed (the other 381 kernels' SASS is identical to the previous build's):
// after rstd, each V-element chunk (8 for 16-bit x) loads its scale, shift and gate vectors,
// computes and stores out, then stores gate_out, before the next chunk's loads, instead of all
// modulation loads before the first store.
// That is the order of independent memory operations only: the x loads, the row's element-to-thread
// layout, the sums and their order, div.full / rsqrt.approx.ftz, the fma and every rounding are the
// same source expressions as before. ptxas -v for sm_90a: the production kernel (bf16 x and
// modulation, V 8, EPT 32) 45 registers (was 80), no spills, no LDL/STL in its SASS, and the same
// float instructions as the 80-register build (143 FADD, 64 FFMA, 40 FMUL, 16 F2FP, 2 MUFU.RCP,
// 1 MUFU.RSQ). 45 registers allocate as 48: 10 blocks of 128 an SM by registers, where Triton's 64
// give 8. The opaque_zero XOR is kept (without it, 63 registers: see keep_packed). Not yet measured
// on a GPU: fidelity's band is +-5% both ways, so the re-run has to show whether the extra
// occupancy makes this row faster than upstream by more than 5%.
//
// Deliberate differences from upstream, none visible in the outputs of a valid call:
//   * the scalar-zero quirk (out = x, ignoring scale_constant) is decided on the device, because
//     an entry point may not synchronize; upstream syncs and calls out.copy_(x);
//   * operands upstream makes .contiguous() first (the 4-D path's scale and shift, EP2/EP3's
//     modulation tensors and weight/bias) are read through their strides instead of copied;
//   * modulation rows of batch 1 broadcast over B (upstream would index past them);
//   * EP2/EP3 refuse C > 8192 (upstream's limit is 65536 bytes a row), mixed modulation dtypes,
//     and modulation/index shapes upstream does not check; EP1 refuses integer dtypes and
//     scale_constant other than 0 or 1 (the kernel's constexpr is documented as 0 or 1).

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

template <typename T> constexpr bool kIsF32 = std::is_same<T, float>::value;

// ---------------------------------------------------------------------------------------------
// Element conversions (bit patterns held in 32-bit words)
// ---------------------------------------------------------------------------------------------

template <typename T> __device__ __forceinline__ float to_f(uint32_t bits);
template <> __device__ __forceinline__ float to_f<bf16>(uint32_t b) { return __uint_as_float(b << 16); }
template <> __device__ __forceinline__ float to_f<f16>(uint32_t b) {
    return __half2float(__ushort_as_half(static_cast<unsigned short>(b)));
}
template <> __device__ __forceinline__ float to_f<float>(uint32_t b) { return __uint_as_float(b); }

// float -> T, round to nearest even (Triton's cvt.rn).
template <typename T> __device__ __forceinline__ uint32_t from_f(float v);
template <> __device__ __forceinline__ uint32_t from_f<bf16>(float v) { return __bfloat16_as_ushort(__float2bfloat16_rn(v)); }
template <> __device__ __forceinline__ uint32_t from_f<f16>(float v) { return __half_as_ushort(__float2half_rn(v)); }
template <> __device__ __forceinline__ uint32_t from_f<float>(float v) { return __float_as_uint(v); }

template <typename T> __device__ __forceinline__ uint32_t ld_bits(const T* p) {
    if constexpr (kIsF32<T>) return __float_as_uint(__ldg(p));
    else return __ldg(reinterpret_cast<const unsigned short*>(p));
}
template <typename T> __device__ __forceinline__ void st_bits(T* p, uint32_t b) {
    if constexpr (kIsF32<T>) *reinterpret_cast<uint32_t*>(p) = b;
    else *reinterpret_cast<unsigned short*>(p) = static_cast<unsigned short>(b);
}

// N elements of T as 32-bit words (16-bit elements two to a word, element 0 in the low half).
template <typename T, int N>
struct Vec {
    static constexpr int kBytes = N * static_cast<int>(sizeof(T));
    static constexpr int kWords = kBytes < 4 ? 1 : kBytes / 4;
    uint32_t w[kWords];

    __device__ __forceinline__ uint32_t bits(int i) const {
        if constexpr (kIsF32<T>) return w[i];
        else return (w[i >> 1] >> ((i & 1) * 16)) & 0xffffu;
    }
    __device__ __forceinline__ float get(int i) const { return to_f<T>(bits(i)); }
    __device__ __forceinline__ void set(int i, uint32_t b) {
        if constexpr (kIsF32<T>) w[i] = b;
        else if (i & 1) w[i >> 1] = (w[i >> 1] & 0xffffu) | (b << 16);
        else w[i >> 1] = (w[i >> 1] & 0xffff0000u) | b;
    }
    // One vector access of kBytes (<= 16 per instruction): p aligned to min(kBytes, 16).
    __device__ __forceinline__ void load(const T* p) {
        if constexpr (kBytes >= 16) {
#pragma unroll
            for (int q = 0; q < kBytes / 16; ++q) {
                const uint4 v = __ldg(reinterpret_cast<const uint4*>(p) + q);
                w[4 * q] = v.x; w[4 * q + 1] = v.y; w[4 * q + 2] = v.z; w[4 * q + 3] = v.w;
            }
        } else if constexpr (kBytes == 8) {
            const uint2 v = __ldg(reinterpret_cast<const uint2*>(p));
            w[0] = v.x; w[1] = v.y;
        } else if constexpr (kBytes == 4) {
            w[0] = __ldg(reinterpret_cast<const unsigned int*>(p));
        } else {
            w[0] = ld_bits(p);
        }
    }
    // Element by element through a stride (an operand Triton cannot vectorise).
    __device__ __forceinline__ void load_strided(const T* p, int64_t stride) {
        if constexpr (kBytes < 4) w[0] = 0;
#pragma unroll
        for (int i = 0; i < N; ++i) set(i, ld_bits(p + i * stride));
    }
    __device__ __forceinline__ void store(T* p) const {
        if constexpr (kBytes >= 16) {
#pragma unroll
            for (int q = 0; q < kBytes / 16; ++q)
                reinterpret_cast<uint4*>(p)[q] = make_uint4(w[4 * q], w[4 * q + 1], w[4 * q + 2], w[4 * q + 3]);
        } else if constexpr (kBytes == 8) {
            *reinterpret_cast<uint2*>(p) = make_uint2(w[0], w[1]);
        } else if constexpr (kBytes == 4) {
            *reinterpret_cast<unsigned int*>(p) = w[0];
        } else {
            st_bits(p, w[0]);
        }
    }
};

// ---------------------------------------------------------------------------------------------
// EP1 arithmetic: y = x * (k + scale) + shift with Triton's type promotion and LLVM's contraction
//   t = k + scale   in scale's dtype (k is a constexpr int 0 or 1: it takes the tensor's type)
//   p = x * t       in promote(x, t); y = p + shift in promote(p, shift)
// 16-bit results round to that dtype; bf16 with fp16 promotes to fp32. A multiply whose result
// feeds the add directly in the same type is contracted to one fma (fp32, or 16-bit when all
// three are one 16-bit type); a 16-bit product added in fp32 is rounded first (no contraction
// through the extension).
// ---------------------------------------------------------------------------------------------

template <typename XT, typename ST, typename HT>
__device__ __forceinline__ float fss_one(float x, float s, float h, float k) {
    float t = k + s;
    if constexpr (!kIsF32<ST>) t = to_f<ST>(from_f<ST>(t));
    constexpr bool kMul16 = std::is_same<XT, ST>::value && !kIsF32<XT>;
    if constexpr (kMul16) {
        if constexpr (std::is_same<HT, XT>::value) {
            // one 16-bit fused multiply-add (a single rounding), as fma.rn.bf16 / fma.rn.f16
            const XT r = __hfma(static_cast<XT>(x), static_cast<XT>(t), static_cast<XT>(h));
            return static_cast<float>(r);
        } else {
            const float p = to_f<XT>(from_f<XT>(x * t));
            return p + h;
        }
    } else {
        return fmaf(x, t, h);
    }
}

// Two elements of one 16-bit type at once, as Triton emits them: add.bf16x2 then fma.rn.bf16x2
// (add.f16x2 / fma.rn.f16x2 for fp16).
template <typename T>
__device__ __forceinline__ uint32_t fss_pair16(uint32_t x, uint32_t s, uint32_t h, uint32_t k2) {
    using T2 = typename std::conditional<std::is_same<T, bf16>::value, __nv_bfloat162, __half2>::type;
    T2 xv, sv, hv, kv;
    memcpy(&xv, &x, 4);
    memcpy(&sv, &s, 4);
    memcpy(&hv, &h, 4);
    memcpy(&kv, &k2, 4);
    const T2 y = __hfma2(xv, __hadd2(kv, sv), hv);
    uint32_t r;
    memcpy(&r, &y, 4);
    return r;
}

enum ModKind : int { kScalar = 0, kGrid = 1, kFrames = 2 };

// How scale or shift is addressed from (b, l, c): b*sb + row*sl + c*sc, row = l (kGrid) or the
// frame l / flen (kFrames); broadcast dims carry stride 0.
struct ModArg {
    const void* p;
    int kind;
    int vec;  // Triton would load it as 16-byte vectors: c-stride 1, 16-divisible b/l strides, aligned base
    int64_t sb, sl, sc, flen;
};

struct TileArgs {
    const void* x;
    void* out;
    ModArg scale, shift;
    int64_t L, C;
    float k;         // scale_constant
    int zero_check;  // both operands scalar: copy x when both are zero (upstream quirk)
    int block_c;     // BLOCK_C (power of two); BLOCK_L = 4096 / BLOCK_C
};

constexpr int kTileThreads = 128;  // num_warps = 4
constexpr int kTileElems = 4096;   // BLOCK_L * BLOCK_C on CUDA

// fuse_scale_shift_kernel_blc_opt. V elements a thread along C per vector (16 bytes of XT when
// Triton vectorises, else 1); 4096 / 128 = 32 elements a thread, NV = 32 / V vectors. Triton's
// blocked layout: TC = min(128, BLOCK_C / V) threads across C, 128 / TC rows per step, thread t at
// column (t % TC) * V and row t / TC of each step, repeated across C then L.
// Addressing: one 64-bit base per tile and operand, 32-bit offsets inside the tile for x and out
// (a tile spans at most 4 rows of C < 2^26 elements, or 4096 elements when C < 1024); the
// modulation operands' row term stays 64-bit (their strides are arbitrary).
template <typename XT, typename ST, typename HT, int V>
__global__ void __launch_bounds__(kTileThreads) fss_tile_kernel(TileArgs a) {
    constexpr int NV = kTileElems / kTileThreads / V;
    constexpr bool kAll16 = !kIsF32<XT> && std::is_same<XT, ST>::value && std::is_same<XT, HT>::value && V > 1;
    // All powers of two: shifts and masks instead of divisions.
    const int BC = a.block_c;
    const int lg_bc = __ffs(BC) - 1;
    const int lg_tc = min(7, lg_bc - __ffs(V) + 1);  // TC = min(128, BC / V)
    const int TC = 1 << lg_tc;
    const int TL = kTileThreads >> lg_tc;
    // reps_c = BC / (TC * V); BLOCK_C <= 1024 makes it 1 whenever V >= 8.
    constexpr int kMaxReps = 1024 / kTileThreads / V > 1 ? 1024 / kTileThreads / V : 1;
    const int lg_reps = kMaxReps == 1 ? 0 : lg_bc - lg_tc - (__ffs(V) - 1);
    const int BL = kTileElems >> lg_bc;

    const int t = threadIdx.x;
    const int64_t tile_l = static_cast<int64_t>(blockIdx.x) * BL;
    const int64_t tile_c = static_cast<int64_t>(blockIdx.y) * BC;
    const int64_t b = blockIdx.z;
    const int C32 = static_cast<int>(a.C);
    // Triton's masks, rows past L and columns past C, relative to the tile.
    const int rows_left = static_cast<int>(min(a.L - tile_l, static_cast<int64_t>(BL)));
    const int cols_left = static_cast<int>(min(a.C - tile_c, static_cast<int64_t>(BC)));

    // Vector j sits at tile row lt(j) = t / TC + (j / reps_c) * TL, tile column
    // ct(j) = (t % TC) * V + (j % reps_c) * TC * V.
    const int lt0 = t >> lg_tc;
    const int ct0 = (t & (TC - 1)) * V;
    auto lt = [&](int j) { return lt0 + (j >> lg_reps) * TL; };
    auto ct = [&](int j) { return ct0 + ((j & ((1 << lg_reps) - 1)) << lg_tc) * V; };
    auto in = [&](int j) { return lt(j) < rows_left && ct(j) < cols_left; };
    auto xoff = [&](int j) { return lt(j) * C32 + ct(j); };

    const int64_t xbase = (b * a.L + tile_l) * a.C + tile_c;
    const XT* xp = static_cast<const XT*>(a.x) + xbase;
    XT* op = static_cast<XT*>(a.out) + xbase;
    const bool s_scalar = a.scale.kind == kScalar, h_scalar = a.shift.kind == kScalar;
    const ST* sp = static_cast<const ST*>(a.scale.p) + (b * a.scale.sb + tile_l * a.scale.sl + tile_c * a.scale.sc);
    const HT* hp = static_cast<const HT*>(a.shift.p) + (b * a.shift.sb + tile_l * a.shift.sl + tile_c * a.shift.sc);

    Vec<XT, V> xv[NV];
    Vec<HT, V> hv[NV];
    Vec<ST, V> sv[NV];
#pragma unroll
    for (int j = 0; j < NV; ++j) {
        if (!in(j)) continue;
        if constexpr (V > 1) xv[j].load(xp + xoff(j));
        else xv[j].w[0] = ld_bits(xp + xoff(j));
    }
    // Scalar operands: one load a program, splat over the tile.
    const uint32_t h0b = h_scalar ? ld_bits(static_cast<const HT*>(a.shift.p)) : 0u;
    if (!h_scalar) {
        if (V > 1 && a.shift.vec) {  // c-stride 1
#pragma unroll
            for (int j = 0; j < NV; ++j)
                if (in(j)) hv[j].load(hp + (lt(j) * a.shift.sl + ct(j)));
        } else {
#pragma unroll
            for (int j = 0; j < NV; ++j)
                if (in(j)) hv[j].load_strided(hp + (lt(j) * a.shift.sl + ct(j) * a.shift.sc), a.shift.sc);
        }
    }
    const uint32_t s0b = s_scalar ? ld_bits(static_cast<const ST*>(a.scale.p)) : 0u;
    if (!s_scalar) {
        if (V > 1 && a.scale.vec) {
#pragma unroll
            for (int j = 0; j < NV; ++j)
                if (in(j)) sv[j].load(sp + (lt(j) * a.scale.sl + ct(j)));
        } else {
#pragma unroll
            for (int j = 0; j < NV; ++j)
                if (in(j)) sv[j].load_strided(sp + (lt(j) * a.scale.sl + ct(j) * a.scale.sc), a.scale.sc);
        }
    }
    const float s0 = to_f<ST>(s0b), h0 = to_f<HT>(h0b);
    // Any nonzero (NaN included, as torch.any) disables the copy.
    const bool copy = a.zero_check && !(s0 != 0.f) && !(h0 != 0.f);
    const uint32_t k2 = from_f<XT>(a.k) * 0x10001u;  // k is 0 or 1: exact in every dtype

#pragma unroll
    for (int j = 0; j < NV; ++j) {
        if (!in(j)) continue;
        Vec<XT, V> o;
        if (copy) {
            o = xv[j];
        } else if constexpr (kAll16) {
#pragma unroll
            for (int w = 0; w < Vec<XT, V>::kWords; ++w)
                o.w[w] = fss_pair16<XT>(xv[j].w[w], s_scalar ? s0b * 0x10001u : sv[j].w[w],
                                        h_scalar ? h0b * 0x10001u : hv[j].w[w], k2);
        } else {
            if constexpr (Vec<XT, V>::kBytes < 4) o.w[0] = 0;
#pragma unroll
            for (int i = 0; i < V; ++i)
                o.set(i, from_f<XT>(fss_one<XT, ST, HT>(xv[j].get(i), s_scalar ? s0 : sv[j].get(i),
                                                        h_scalar ? h0 : hv[j].get(i), a.k)));
        }
        if constexpr (V > 1) o.store(op + xoff(j));
        else st_bits(op + xoff(j), o.w[0]);
    }
}

// _fused_scale_shift_4d_kernel: grid (B*L, cdiv(C, BLOCK_N)), BLOCK_N = max(64, min(512,
// next_pow2(C))), 2 warps for BLOCK_N 64 else 4. Triton's layout gives min(threads, BLOCK_N / V)
// threads V contiguous elements each (the rest hold copies and store nothing).
template <typename XT, typename ST, typename HT, int V>
__global__ void __launch_bounds__(128) fss_frames_kernel(TileArgs a, int block_n) {
    constexpr bool kAll16 = !kIsF32<XT> && std::is_same<XT, ST>::value && std::is_same<XT, HT>::value && V > 1;
    const int nt = min(static_cast<int>(blockDim.x), block_n / V);
    if (static_cast<int>(threadIdx.x) >= nt) return;
    const int reps = block_n / (nt * V);
    const int64_t row = blockIdx.x;
    const int64_t b = row / a.L, l = row % a.L;
    const int64_t C = a.C;
    const XT* x = static_cast<const XT*>(a.x) + row * C;
    XT* out = static_cast<XT*>(a.out) + row * C;
    const int64_t srow = b * a.scale.sb + (l / a.scale.flen) * a.scale.sl;
    const int64_t hrow = b * a.shift.sb + l * a.shift.sl;
    const ST* sp = static_cast<const ST*>(a.scale.p) + srow;
    const HT* hp = static_cast<const HT*>(a.shift.p) + hrow;
    const uint32_t k2 = from_f<XT>(a.k) * 0x10001u;
#pragma unroll 1
    for (int r = 0; r < reps; ++r) {
        const int64_t c = static_cast<int64_t>(blockIdx.y) * block_n + (r * nt + threadIdx.x) * V;
        if (c >= C) continue;
        Vec<XT, V> xv, o;
        Vec<ST, V> sv;
        Vec<HT, V> hv;
        if constexpr (V > 1) xv.load(x + c);
        else xv.w[0] = ld_bits(x + c);
        if (V > 1 && a.scale.vec) sv.load(sp + c);
        else sv.load_strided(sp + c * a.scale.sc, a.scale.sc);
        if (V > 1 && a.shift.vec) hv.load(hp + c);
        else hv.load_strided(hp + c * a.shift.sc, a.shift.sc);
        if constexpr (kAll16) {
#pragma unroll
            for (int w = 0; w < Vec<XT, V>::kWords; ++w) o.w[w] = fss_pair16<XT>(xv.w[w], sv.w[w], hv.w[w], k2);
        } else {
            if constexpr (Vec<XT, V>::kBytes < 4) o.w[0] = 0;
#pragma unroll
            for (int i = 0; i < V; ++i) o.set(i, from_f<XT>(fss_one<XT, ST, HT>(xv.get(i), sv.get(i), hv.get(i), a.k)));
        }
        if constexpr (V > 1) o.store(out + c);
        else st_bits(out + c, o.w[0]);
    }
}

// ---------------------------------------------------------------------------------------------
// EP2 / EP3: one program (128 threads) per row.
// ---------------------------------------------------------------------------------------------

constexpr int kLnThreads = 128;
constexpr int kLnMaxC = 8192;

struct LnArgs {
    const void* x;
    const void* res;       // EP3
    const void* res_gate;  // EP3
    void* out;
    void* res_out;         // EP3
    void* gate_out;
    const void* w;  int w_dt;  int64_t w_s;  int w_vec;  // w == nullptr: absent
    const void* bb; int b_dt;  int64_t b_s;  int b_vec;
    const void* mod[6];  // scale0, shift0, gate0, scale1, shift1, gate1 (one dtype, MT)
    int64_t mod_sb[6], mod_sc[6];
    int mod_vec[6];
    const void* index; int index_i64; int64_t index_sb, index_sl;
    int64_t L, C;
    float eps;
    int nt;  // threads holding elements: min(128, BLOCK_N / V)
    uint32_t opaque_zero;  // always 0 (see keep_packed)
};

// Triton's fp32 `/` (div.full.f32) and tl.rsqrt (rsqrt.approx.ftz.f32) on sm_90.
__device__ __forceinline__ float div_full(float a, float b) {
    float r;
    asm("div.full.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
}
__device__ __forceinline__ float rsqrt_approx_ftz(float a) {
    float r;
    asm("rsqrt.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(a));
    return r;
}

// w ^ z with z == 0 (LnArgs::opaque_zero, 0 on every launch): the bits are unchanged, but neither
// nvcc nor ptxas can see that, so the fp32 conversions of a packed word (and x - mean) done in one
// phase of a row are not kept live into the next; the packed word is what stays live, and each
// phase converts again (one LOP3 a word). An empty asm is not enough: ptxas sees through it.
// Still needed with EP2's chunk-by-chunk output phase: without it ptxas keeps the row's 32 fp32
// x - mean across the variance reduction, 63 registers for the bf16 EPT-32 kernel instead of 45
// (one under the 64 that fit 8 blocks of 128 on an SM, no margin) and 121 instead of 63 at EPT 64.
__device__ __forceinline__ void keep_packed(uint32_t& w, uint32_t z) { w ^= z; }

// tl.sum over the row: per-thread partial in, row total out (every thread). Butterfly over the
// warp, the 4 warp partials through shared memory, a 2-step butterfly on them, the total
// broadcast through shared memory. `red` is reused: the caller's next use follows a barrier.
__device__ __forceinline__ float row_sum(float v, float* red) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = v + __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) red[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float p = lane < kLnThreads / 32 ? red[lane] : 0.f;
        p = p + __shfl_xor_sync(0xffffffffu, p, 2);
        p = p + __shfl_xor_sync(0xffffffffu, p, 1);
        if (lane == 0) red[0] = p;
    }
    __syncthreads();
    return red[0];
}

// VW elements of an operand whose dtype is known only at run time (weight, bias): vectors when
// Triton would vectorise, else element by element. Uniform branch.
template <int VW>
__device__ __forceinline__ void load_any(const void* p, int dt, int64_t c, int64_t stride, bool vec, float (&o)[VW]) {
    if (dt == KP_F32) {
        const float* q = static_cast<const float*>(p);
        Vec<float, VW> v;
        if (vec) v.load(q + c);
        else v.load_strided(q + c * stride, stride);
#pragma unroll
        for (int i = 0; i < VW; ++i) o[i] = v.get(i);
    } else if (dt == KP_BF16) {
        const bf16* q = static_cast<const bf16*>(p);
        Vec<bf16, VW> v;
        if (vec) v.load(q + c);
        else v.load_strided(q + c * stride, stride);
#pragma unroll
        for (int i = 0; i < VW; ++i) o[i] = v.get(i);
    } else {
        const f16* q = static_cast<const f16*>(p);
        Vec<f16, VW> v;
        if (vec) v.load(q + c);
        else v.load_strided(q + c * stride, stride);
#pragma unroll
        for (int i = 0; i < VW; ++i) o[i] = v.get(i);
    }
}

// The general row kernel (weight / bias, strided modulation, sub-16-byte accesses: no production
// row). XT: x / outputs dtype; MT: the six modulation tensors' dtype; V: elements a thread per
// access (16 bytes of XT when vectorised, else 1); EPT = BLOCK_N / nt elements a thread, in
// EPT / V chunks at columns r*nt*V + t*V.
template <typename XT, typename MT, int V, int EPT, bool RESID>
__device__ __forceinline__ void ln_select01_general(const LnArgs& a) {
    constexpr int R = EPT / V;
    static_assert(R * V == EPT, "whole chunks");
    __shared__ float red[kLnThreads / 32];

    const int t = threadIdx.x;
    const bool active = t < a.nt;
    const int64_t row = blockIdx.x;
    const int64_t C = a.C;
    const int64_t base = row * C;
    auto col = [&](int r) { return static_cast<int64_t>(r) * a.nt * V + static_cast<int64_t>(t) * V; };

    // Loads of the row (other = 0 past C), then EP3's residual_out.
    float v[EPT];
    {
        Vec<XT, V> px[R];
        Vec<XT, V> pr[RESID ? R : 1], pg[RESID ? R : 1];
#pragma unroll
        for (int r = 0; r < R; ++r) {
            if (!active || col(r) >= C) continue;
            const int64_t e = base + col(r);
            px[r].load(static_cast<const XT*>(a.x) + e);
            if constexpr (RESID) {
                pr[r].load(static_cast<const XT*>(a.res) + e);
                pg[r].load(static_cast<const XT*>(a.res_gate) + e);
            }
        }
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const bool in = active && col(r) < C;
#pragma unroll
            for (int i = 0; i < V; ++i) {
                float val = 0.f;
                if (in) {
                    val = px[r].get(i);
                    if constexpr (RESID) val = fmaf(val, pg[r].get(i), pr[r].get(i));
                }
                v[r * V + i] = val;
            }
            if constexpr (RESID) {
                if (in) {
                    Vec<XT, V> o;
                    if constexpr (Vec<XT, V>::kBytes < 4) o.w[0] = 0;
#pragma unroll
                    for (int i = 0; i < V; ++i) o.set(i, from_f<XT>(v[r * V + i]));
                    o.store(static_cast<XT*>(a.res_out) + base + col(r));
                }
            }
        }
    }

    // mean: column-order partial, then row_sum; div.full by C.
    float s = v[0];
#pragma unroll
    for (int i = 1; i < EPT; ++i) s = s + v[i];
    const float n_f = static_cast<float>(static_cast<int>(C));  // cvt.rn.f32.s32 of inner_dim
    const float mean = div_full(row_sum(s, red), n_f);

    float d[EPT];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int i = 0; i < V; ++i) {
            const bool in = active && col(r) + i < C;
            d[r * V + i] = in ? v[r * V + i] - mean : 0.f;  // tl.where(mask, x - mean, 0)
        }
    float q;
    if constexpr (EPT == 1) {
        q = __fmul_rn(d[0], d[0]);
    } else {
        q = __fmul_rn(d[1], d[1]);
        q = fmaf(d[0], d[0], q);
#pragma unroll
        for (int i = 2; i < EPT; ++i) q = fmaf(d[i], d[i], q);
    }
    __syncthreads();  // red is read by every thread above before it is written again
    const float var = div_full(row_sum(q, red), n_f);
    const float rstd = rsqrt_approx_ftz(var + a.eps);

    if (!active) return;

    // The select: one index load, then the chosen three modulation rows.
    const int64_t bi = row / a.L, li = row % a.L;
    const int64_t ioff = bi * a.index_sb + li * a.index_sl;
    const bool sel = a.index_i64 ? (static_cast<const long long*>(a.index)[ioff] != 0)
                                 : (static_cast<const int*>(a.index)[ioff] != 0);
    const int m0 = sel ? 3 : 0;
    const MT* scp = static_cast<const MT*>(a.mod[m0]) + bi * a.mod_sb[m0];
    const MT* shp = static_cast<const MT*>(a.mod[m0 + 1]) + bi * a.mod_sb[m0 + 1];
    const MT* gtp = static_cast<const MT*>(a.mod[m0 + 2]) + bi * a.mod_sb[m0 + 2];
    const int64_t scs = a.mod_sc[m0], shs = a.mod_sc[m0 + 1], gts = a.mod_sc[m0 + 2];
    const bool scv = a.mod_vec[m0], shv = a.mod_vec[m0 + 1], gtv = a.mod_vec[m0 + 2];

    // x_hat = (x - mean) * rstd [* w] [+ b]: the last multiply and the bias add are one fma.
    float xh[EPT];
    if (a.w || a.bb) {
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const int64_t c = col(r);
            float wv[V], bv[V];
            if (c < C) {
                if (a.w) load_any<V>(a.w, a.w_dt, c, a.w_s, a.w_vec, wv);
                if (a.bb) load_any<V>(a.bb, a.b_dt, c, a.b_s, a.b_vec, bv);
            }
#pragma unroll
            for (int i = 0; i < V; ++i) {
                const float n = d[r * V + i] * rstd;
                float h;
                if (a.w && a.bb) h = fmaf(n, wv[i], bv[i]);
                else if (a.w) h = n * wv[i];
                else h = fmaf(d[r * V + i], rstd, bv[i]);
                xh[r * V + i] = c < C ? h : 0.f;
            }
        }
    } else {
#pragma unroll
        for (int i = 0; i < EPT; ++i) xh[i] = d[i] * rstd;
    }

    Vec<MT, V> sc[R], sh[R], gt[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
        const int64_t c = col(r);
        if (c >= C) continue;
        if (V > 1 && scv) sc[r].load(scp + c); else sc[r].load_strided(scp + c * scs, scs);
        if (V > 1 && shv) sh[r].load(shp + c); else sh[r].load_strided(shp + c * shs, shs);
        if (V > 1 && gtv) gt[r].load(gtp + c); else gt[r].load_strided(gtp + c * gts, gts);
    }
    XT* out = static_cast<XT*>(a.out) + base;
    XT* gout = static_cast<XT*>(a.gate_out) + base;
#pragma unroll
    for (int r = 0; r < R; ++r) {
        const int64_t c = col(r);
        if (c >= C) continue;
        Vec<XT, V> po;
        if constexpr (Vec<XT, V>::kBytes < 4) po.w[0] = 0;
#pragma unroll
        for (int i = 0; i < V; ++i) po.set(i, from_f<XT>(fmaf(xh[r * V + i], 1.0f + sc[r].get(i), sh[r].get(i))));
        if constexpr (V > 1) po.store(out + c);
        else st_bits(out + c, po.w[0]);
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
        const int64_t c = col(r);
        if (c >= C) continue;
        Vec<XT, V> pg;
        if constexpr (Vec<XT, V>::kBytes < 4) pg.w[0] = 0;
#pragma unroll
        for (int i = 0; i < V; ++i) {
            if constexpr (std::is_same<XT, MT>::value) pg.set(i, gt[r].bits(i));
            else pg.set(i, from_f<XT>(gt[r].get(i)));
        }
        if constexpr (V > 1) pg.store(gout + c);
        else st_bits(gout + c, pg.w[0]);
    }
}

// The row kernel of the simple case (16-byte vectors of x, no weight or bias, all six modulation
// rows vector-loadable: every production row), with the layout, loads and arithmetic of the
// general one above. V = 16 bytes of XT; EPT = BLOCK_N / 128 elements a thread, in EPT / V chunks
// at columns (r*128 + t)*V (V > 1 implies BLOCK_N >= 128 * V, so nt = 128).
// Registers: EP2 keeps x packed in XT (Vec words) and converts each element to fp32 at each use
// (exact, so every use sees the fp32 value Triton's .to(tl.float32) gives); EP3 keeps
// residual_out = fma(x, residual_gate, residual) in fp32, one register an element (fewer than its
// three packed inputs), because the normalisation uses it unrounded. x - mean, x_hat and the
// output are computed where they are used, not kept in arrays; the operations and their order
// are those of the header. Offsets inside a row are 32-bit (C <= 8192) from one 64-bit row base.
// EP2 loads and stores the modulation and outputs chunk by chunk (below); EP3 keeps Triton's
// order, all modulation loads before the first store.
template <typename XT, typename MT, int V, int EPT, bool RESID>
__device__ __forceinline__ void ln_select01_simple(const LnArgs& a) {
    constexpr int R = EPT / V;
    // Packing saves registers only for 16-bit x in vectors (two elements a word).
    constexpr bool kPacked = !RESID && !kIsF32<XT> && V > 1;
    static_assert(R * V == EPT, "whole chunks");
    __shared__ float red[kLnThreads / 32];

    const int t = threadIdx.x;
    const bool active = t < a.nt;
    const int C = static_cast<int>(a.C);  // <= 8192 (refused above)
    const int64_t base = static_cast<int64_t>(blockIdx.x) * a.C;
    auto col = [&](int r) { return (r * kLnThreads + t) * V; };
    // Triton's mask: columns past C (whole chunks: V > 1 only when C % 16 == 0).
    auto in = [&](int r) { return active && col(r) < C; };

    // Loads of the row in Triton's order (x, then EP3's residual, then residual_gate), other = 0
    // past C; then EP3's residual_out, stored rounded.
    Vec<XT, V> px[RESID ? 1 : R];
    float v[RESID ? EPT : 1];
    if constexpr (!RESID) {
        const XT* xr = static_cast<const XT*>(a.x) + base;
#pragma unroll
        for (int r = 0; r < R; ++r) {
            if (in(r)) {
                px[r].load(xr + col(r));
            } else {
#pragma unroll
                for (int w = 0; w < Vec<XT, V>::kWords; ++w) px[r].w[w] = 0u;  // +0.0 in every dtype
            }
        }
    } else {
        Vec<XT, V> lx[R], lr[R], lg[R];
        const XT* xr = static_cast<const XT*>(a.x) + base;
        const XT* rr = static_cast<const XT*>(a.res) + base;
        const XT* gr = static_cast<const XT*>(a.res_gate) + base;
#pragma unroll
        for (int r = 0; r < R; ++r)
            if (in(r)) lx[r].load(xr + col(r));
#pragma unroll
        for (int r = 0; r < R; ++r)
            if (in(r)) lr[r].load(rr + col(r));
#pragma unroll
        for (int r = 0; r < R; ++r)
            if (in(r)) lg[r].load(gr + col(r));
        XT* ro = static_cast<XT*>(a.res_out) + base;
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const bool ok = in(r);
#pragma unroll
            for (int i = 0; i < V; ++i) v[r * V + i] = ok ? fmaf(lx[r].get(i), lg[r].get(i), lr[r].get(i)) : 0.f;
            if (ok) {
                Vec<XT, V> o;
                if constexpr (Vec<XT, V>::kBytes < 4) o.w[0] = 0;
#pragma unroll
                for (int i = 0; i < V; ++i) o.set(i, from_f<XT>(v[r * V + i]));
                o.store(ro + col(r));
            }
        }
    }
    // Element e = r*V + i of the row as fp32 (0 past C).
    auto xe = [&](int r, int i) -> float {
        if constexpr (RESID) return v[r * V + i];
        else return px[r].get(i);
    };

    // mean: column-order partial, then row_sum; div.full by C.
    float s = xe(0, 0);
#pragma unroll
    for (int e = 1; e < EPT; ++e) s = s + xe(e / V, e % V);
    const float n_f = static_cast<float>(C);  // cvt.rn.f32.s32 of inner_dim
    const float mean = div_full(row_sum(s, red), n_f);
    auto repack = [&]() {
        if constexpr (kPacked) {
#pragma unroll
            for (int r = 0; r < R; ++r)
#pragma unroll
                for (int w = 0; w < Vec<XT, V>::kWords; ++w) keep_packed(px[r].w[w], a.opaque_zero);
        }
    };
    repack();

    // tl.where(mask, x - mean, 0)
    auto dev = [&](int r, int i) -> float { return in(r) ? xe(r, i) - mean : 0.f; };
    float q;
    if constexpr (EPT == 1) {
        const float d0 = dev(0, 0);
        q = __fmul_rn(d0, d0);
    } else {
        const float d1 = dev(1 / V, 1 % V);
        q = __fmul_rn(d1, d1);
        const float d0 = dev(0, 0);
        q = fmaf(d0, d0, q);
#pragma unroll
        for (int e = 2; e < EPT; ++e) {
            const float de = dev(e / V, e % V);
            q = fmaf(de, de, q);
        }
    }
    __syncthreads();  // red is read by every thread above before it is written again
    const float var = div_full(row_sum(q, red), n_f);
    const float rstd = rsqrt_approx_ftz(var + a.eps);

    if (!active) return;
    repack();

    // The select: one index load, then the chosen three modulation rows. B*L < 2^31: 32-bit
    // row / seq_len as Triton's.
    const unsigned rowu = blockIdx.x, Lu = static_cast<unsigned>(a.L);
    const unsigned bi = rowu / Lu, li = rowu - bi * Lu;
    const int64_t ioff = static_cast<int64_t>(bi) * a.index_sb + static_cast<int64_t>(li) * a.index_sl;
    const bool sel = a.index_i64 ? (static_cast<const long long*>(a.index)[ioff] != 0)
                                 : (static_cast<const int*>(a.index)[ioff] != 0);
    const int m0 = sel ? 3 : 0;
    const MT* scp = static_cast<const MT*>(a.mod[m0]) + bi * a.mod_sb[m0];
    const MT* shp = static_cast<const MT*>(a.mod[m0 + 1]) + bi * a.mod_sb[m0 + 1];
    const MT* gtp = static_cast<const MT*>(a.mod[m0 + 2]) + bi * a.mod_sb[m0 + 2];

    // y = fma(x_hat, 1 + scale, shift) with x_hat = (x - mean) * rstd computed here from x, and
    // the gate pass-through.
    auto xhat = [&](int r, int i) { return (xe(r, i) - mean) * rstd; };
    if constexpr (!RESID) {
        // EP2: chunk by chunk, that chunk's scale, shift and gate vectors, then its out and
        // gate_out stores, so one chunk of modulation (three 16-byte vectors when MT is 16-bit)
        // is live beside the packed x, not all of them. Only the order of independent memory
        // operations differs from Triton's program (all modulation loads before any store); the
        // values and the operations computing them are the same.
        XT* out = static_cast<XT*>(a.out) + base;
        XT* gout = static_cast<XT*>(a.gate_out) + base;
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const int c = col(r);
            if (c >= C) continue;
            Vec<MT, V> sc, sh, gt;
            sc.load(scp + c);
            sh.load(shp + c);
            gt.load(gtp + c);
            Vec<XT, V> po;  // V > 1: whole 16-byte vectors
#pragma unroll
            for (int i = 0; i < V; ++i) po.set(i, from_f<XT>(fmaf(xhat(r, i), 1.0f + sc.get(i), sh.get(i))));
            po.store(out + c);
            Vec<XT, V> pg;
#pragma unroll
            for (int i = 0; i < V; ++i) {
                if constexpr (std::is_same<XT, MT>::value) pg.set(i, gt.bits(i));
                else pg.set(i, from_f<XT>(gt.get(i)));
            }
            pg.store(gout + c);
        }
    } else {
        // EP3: scale, shift and gate rows, each over all chunks (Triton's order), before any store.
        Vec<MT, V> sc[R], sh[R], gt[R];
        auto load_mod = [&](Vec<MT, V>(&m)[R], const MT* p) {
#pragma unroll
            for (int r = 0; r < R; ++r)
                if (col(r) < C) m[r].load(p + col(r));
        };
        load_mod(sc, scp);
        load_mod(sh, shp);
        load_mod(gt, gtp);

        XT* out = static_cast<XT*>(a.out) + base;
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const int c = col(r);
            if (c >= C) continue;
            Vec<XT, V> po;
            if constexpr (Vec<XT, V>::kBytes < 4) po.w[0] = 0;
#pragma unroll
            for (int i = 0; i < V; ++i) po.set(i, from_f<XT>(fmaf(xhat(r, i), 1.0f + sc[r].get(i), sh[r].get(i))));
            if constexpr (V > 1) po.store(out + c);
            else st_bits(out + c, po.w[0]);
        }
        XT* gout = static_cast<XT*>(a.gate_out) + base;
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const int c = col(r);
            if (c >= C) continue;
            Vec<XT, V> pg;
            if constexpr (Vec<XT, V>::kBytes < 4) pg.w[0] = 0;
#pragma unroll
            for (int i = 0; i < V; ++i) {
                if constexpr (std::is_same<XT, MT>::value) pg.set(i, gt[r].bits(i));
                else pg.set(i, from_f<XT>(gt[r].get(i)));
            }
            if constexpr (V > 1) pg.store(gout + c);
            else st_bits(gout + c, pg.w[0]);
        }
    }
}

template <typename XT, typename MT, int V, int EPT, bool RESID, bool SIMPLE>
__global__ void __launch_bounds__(kLnThreads) ln_select01_kernel(LnArgs a) {
    if constexpr (SIMPLE) ln_select01_simple<XT, MT, V, EPT, RESID>(a);
    else ln_select01_general<XT, MT, V, EPT, RESID>(a);
}

// ---------------------------------------------------------------------------------------------
// Host side: descriptor checks shared by all entry points
// ---------------------------------------------------------------------------------------------

bool is_float_dt(int dt) { return dt == KP_BF16 || dt == KP_F16 || dt == KP_F32; }
int64_t dt_size(int dt) { return dt == KP_F32 ? 4 : 2; }

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

bool shape_nonneg(const kp_tensor& t) {
    for (int d = 0; d < t.rank; ++d)
        if (t.shape[d] < 0) return false;
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

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// A float tensor of exactly shape [B, L, C], contiguous, of dtype `dt`.
bool is_blc(const kp_tensor& t, int dt, int64_t B, int64_t L, int64_t C) {
    return t.dtype == dt && t.rank == 3 && t.shape[0] == B && t.shape[1] == L && t.shape[2] == C && is_contiguous(t) &&
           (t.data != nullptr || B * L * C == 0);
}

// Fits a dim of size `size` against x's `full`: equal sizes keep the stride (zeroed for size 1),
// size 1 broadcasts with stride 0 (torch's expand), anything else does not fit.
bool fit_dim(int64_t size, int64_t full, int64_t stride, int64_t* out) {
    if (size == full) { *out = size == 1 ? 0 : stride; return true; }
    if (size == 1) { *out = 0; return true; }
    return false;
}

// EP1 scale/shift outside the 4-D path, as upstream reshapes them before expand(B, L, C):
// scalar (rank 0 or a single element), [B|1, C|1] (-> [:, None, :]), [B|1, L|1, C|1]; the shift
// (not the scale) may also be 1-D [C|1], which expand broadcasts as [1, 1, C].
bool classify_mod(const kp_tensor& t, bool is_shift, int64_t B, int64_t L, int64_t C, ModArg* m) {
    if (!is_float_dt(t.dtype) || !shape_nonneg(t)) return false;
    *m = ModArg{t.data, kScalar, 0, 0, 0, 0, 1};
    const int64_t n = numel(t);
    if (t.rank == 0 || (t.rank == 1 && n == 1)) return t.data != nullptr;
    bool ok = false;
    m->kind = kGrid;
    if (t.rank == 1 && is_shift) {
        ok = fit_dim(t.shape[0], C, t.stride[0], &m->sc);
    } else if (t.rank == 2) {
        ok = fit_dim(t.shape[0], B, t.stride[0], &m->sb) && fit_dim(t.shape[1], C, t.stride[1], &m->sc);
    } else if (t.rank == 3) {
        ok = fit_dim(t.shape[0], B, t.stride[0], &m->sb) && fit_dim(t.shape[1], L, t.stride[1], &m->sl) &&
             fit_dim(t.shape[2], C, t.stride[2], &m->sc);
    }
    return ok && (t.data != nullptr || n == 0);
}

// Triton vectorises an operand along C when its C stride is 1 and its other strides are
// multiples of 16 elements from a 16-byte aligned base (its divisibility specialisation).
bool triton_vec_ok(const ModArg& m) {
    return m.kind != kScalar && m.sc == 1 && m.sb % 16 == 0 && m.sl % 16 == 0 && aligned16(m.p);
}

int64_t next_pow2(int64_t n) {
    int64_t p = 1;
    while (p < n) p <<= 1;
    return p;
}

// ---------------------------------------------------------------------------------------------
// EP1 dispatch
// ---------------------------------------------------------------------------------------------

template <typename XT, typename ST, typename HT>
void launch_ep1(const TileArgs& a, int64_t B, bool frames, bool xvec, int block_n, cudaStream_t st) {
    constexpr int VX = 16 / static_cast<int>(sizeof(XT));
    if (frames) {
        const dim3 grid(static_cast<unsigned>(B * a.L), static_cast<unsigned>((a.C + block_n - 1) / block_n));
        const int threads = block_n == 64 ? 64 : 128;
        if (xvec) fss_frames_kernel<XT, ST, HT, VX><<<grid, threads, 0, st>>>(a, block_n);
        else fss_frames_kernel<XT, ST, HT, 1><<<grid, threads, 0, st>>>(a, block_n);
        return;
    }
    const int64_t block_l = kTileElems / a.block_c;
    const dim3 grid(static_cast<unsigned>((a.L + block_l - 1) / block_l),
                    static_cast<unsigned>((a.C + a.block_c - 1) / a.block_c), static_cast<unsigned>(B));
    if (xvec) fss_tile_kernel<XT, ST, HT, VX><<<grid, kTileThreads, 0, st>>>(a);
    else fss_tile_kernel<XT, ST, HT, 1><<<grid, kTileThreads, 0, st>>>(a);
}

template <typename XT, typename ST>
void launch_ep1_h(int hdt, const TileArgs& a, int64_t B, bool frames, bool xvec, int bn, cudaStream_t st) {
    if (hdt == KP_BF16) launch_ep1<XT, ST, bf16>(a, B, frames, xvec, bn, st);
    else if (hdt == KP_F16) launch_ep1<XT, ST, f16>(a, B, frames, xvec, bn, st);
    else launch_ep1<XT, ST, float>(a, B, frames, xvec, bn, st);
}

template <typename XT>
void launch_ep1_s(int sdt, int hdt, const TileArgs& a, int64_t B, bool frames, bool xvec, int bn, cudaStream_t st) {
    if (sdt == KP_BF16) launch_ep1_h<XT, bf16>(hdt, a, B, frames, xvec, bn, st);
    else if (sdt == KP_F16) launch_ep1_h<XT, f16>(hdt, a, B, frames, xvec, bn, st);
    else launch_ep1_h<XT, float>(hdt, a, B, frames, xvec, bn, st);
}

// Grid limits: z = B and y = cdiv(C, BLOCK_C) under 2^16, B*L under 2^31 (x of the 4-D grid).
bool ep1_size_ok(int64_t B, int64_t L, int64_t C) {
    return B < 65536 && (C + 1023) / 1024 < 65536 && B * L < (1ll << 31);
}

}  // namespace

extern "C" {

int32_t kp_fuse_scale_shift_kernel(kp_call* call, void* stream) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != 4 || call->n_scalars != 1 ||
        !ranks_valid(call))
        return KP_INVALID;
    const kp_tensor& x = call->tensors[0];
    const kp_tensor& sc = call->tensors[1];
    const kp_tensor& sh = call->tensors[2];
    const kp_tensor& out = call->tensors[3];
    if (!is_float_dt(x.dtype) || x.rank != 3 || !shape_nonneg(x)) { set_path(call, "unsupported:x"); return KP_NOT_SUPPORTED; }
    const int64_t B = x.shape[0], L = x.shape[1], C = x.shape[2];
    if (!is_blc(x, x.dtype, B, L, C) || !is_blc(out, x.dtype, B, L, C)) {
        set_path(call, "unsupported:x_or_out_layout");
        return KP_NOT_SUPPORTED;
    }
    ModArg ms{}, mh{};
    const bool frames = sc.rank == 4;
    if (frames) {
        // scale [B|1, F, 1, C] per frame (L % F == 0); shift reshaped to [B*L, C] per token, so
        // exactly x's [B, L, C] (a 4-D or broadcast shift does not reshape on CUDA upstream).
        const int64_t F = sc.shape[1];
        const bool s_ok = is_float_dt(sc.dtype) && shape_nonneg(sc) && sc.shape[2] == 1 && sc.shape[3] == C && F >= 1 &&
                          L % F == 0 && (sc.shape[0] == B || sc.shape[0] == 1) && (sc.data != nullptr || numel(sc) == 0);
        const bool h_ok = is_float_dt(sh.dtype) && sh.rank == 3 && sh.shape[0] == B && sh.shape[1] == L &&
                          sh.shape[2] == C && (sh.data != nullptr || B * L * C == 0);
        if (!s_ok || !h_ok) { set_path(call, "unsupported:scale_or_shift_shape"); return KP_NOT_SUPPORTED; }
        ms = ModArg{sc.data, kFrames, 0, sc.shape[0] == 1 ? 0 : sc.stride[0], F == 1 ? 0 : sc.stride[1],
                    C == 1 ? 0 : sc.stride[3], L / F > 0 ? L / F : 1};
        mh = ModArg{sh.data, kGrid, 0, B == 1 ? 0 : sh.stride[0], L == 1 ? 0 : sh.stride[1], C == 1 ? 0 : sh.stride[2], 1};
    } else if (!classify_mod(sc, false, B, L, C, &ms) || !classify_mod(sh, true, B, L, C, &mh)) {
        set_path(call, "unsupported:scale_or_shift_shape");
        return KP_NOT_SUPPORTED;
    }
    const double k = call->scalars[0];
    if (!(k == 0.0 || k == 1.0)) { set_path(call, "unsupported:scale_constant"); return KP_NOT_SUPPORTED; }
    if (!ep1_size_ok(B, L, C)) { set_path(call, "unsupported:too_large"); return KP_NOT_SUPPORTED; }

    const bool both_scalar = !frames && ms.kind == kScalar && mh.kind == kScalar;
    const bool xvec = C % 16 == 0 && aligned16(x.data) && aligned16(out.data);
    if (frames) {
        // The 4-D kernel addresses compacted rows: row stride C, column stride 1.
        ms.vec = ms.sc == 1 && ms.sl % 16 == 0 && ms.sb % 16 == 0 && aligned16(ms.p);
        mh.vec = mh.sc == 1 && mh.sl % 16 == 0 && mh.sb % 16 == 0 && aligned16(mh.p);
    } else {
        ms.vec = triton_vec_ok(ms);
        mh.vec = triton_vec_ok(mh);
    }
    const int64_t block_c = C < 1024 ? next_pow2(C) : 1024;
    const int64_t block_n = frames ? (C <= 64 ? 64 : C >= 512 ? 512 : next_pow2(C)) : 0;
    char path[KP_PATH_LEN];
    if (frames)
        snprintf(path, sizeof path, "frame4d_block%lld%s", static_cast<long long>(block_n), xvec ? "_vec" : "_scalar");
    else if (both_scalar)
        snprintf(path, sizeof path, "scalar_zero_check_copy_or_tile%lldx%lld", static_cast<long long>(kTileElems / block_c),
                 static_cast<long long>(block_c));
    else
        snprintf(path, sizeof path, "tile%lldx%lld%s", static_cast<long long>(kTileElems / block_c),
                 static_cast<long long>(block_c),
                 !xvec ? "_scalar" : (ms.vec || ms.kind == kScalar) && (mh.vec || mh.kind == kScalar) ? "_vec" : "_vec_x_strided_operand");
    set_path(call, path);
    if (B * L * C == 0) return KP_OK;

    TileArgs a{};
    a.x = x.data;
    a.out = out.data;
    a.scale = ms;
    a.shift = mh;
    a.L = L;
    a.C = C;
    a.k = static_cast<float>(k);
    a.zero_check = both_scalar ? 1 : 0;
    a.block_c = static_cast<int>(block_c);
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    const int bn = static_cast<int>(block_n);
    if (x.dtype == KP_BF16) launch_ep1_s<bf16>(sc.dtype, sh.dtype, a, B, frames, xvec, bn, st);
    else if (x.dtype == KP_F16) launch_ep1_s<f16>(sc.dtype, sh.dtype, a, B, frames, xvec, bn, st);
    else launch_ep1_s<float>(sc.dtype, sh.dtype, a, B, frames, xvec, bn, st);
    return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
}

}  // extern "C"

namespace {

// ---------------------------------------------------------------------------------------------
// EP2 / EP3 dispatch
// ---------------------------------------------------------------------------------------------

// Tensor slots of the two gated-LayerNorm entry points.
struct LnSlots {
    int x, res, res_gate, w, b, mod0, index, out, res_out, gate_out, n;
};
constexpr LnSlots kEp2Slots{0, -1, -1, 1, 2, 3, 9, 10, -1, 11, 12};
constexpr LnSlots kEp3Slots{0, 1, 2, 3, 4, 5, 11, 12, 13, 14, 15};

// Optional affine vector: absent (KP_ABSENT), or a float [C] with any stride.
bool affine_ok(const kp_tensor& t, int64_t C, const void** p, int* dt, int64_t* s) {
    *p = nullptr; *dt = KP_ABSENT; *s = 0;
    if (t.dtype == KP_ABSENT) return true;
    if (!is_float_dt(t.dtype) || t.rank != 1 || t.shape[0] != C || (t.data == nullptr && C > 0)) return false;
    *p = t.data; *dt = t.dtype; *s = C == 1 ? 0 : t.stride[0];
    return true;
}

template <typename XT, typename MT, int V, bool RESID, bool SIMPLE>
void launch_ln_ept(int ept, const LnArgs& a, int64_t rows, cudaStream_t st) {
    const dim3 grid(static_cast<unsigned>(rows));
    // EPT >= V always (nt <= BLOCK_N / V); instantiate only those.
#define KP_LN_CASE(E)                                                                          \
    case E:                                                                                    \
        if constexpr (E >= V) ln_select01_kernel<XT, MT, V, E, RESID, SIMPLE><<<grid, kLnThreads, 0, st>>>(a); \
        break;
    switch (ept) {
        KP_LN_CASE(1)
        KP_LN_CASE(2)
        KP_LN_CASE(4)
        KP_LN_CASE(8)
        KP_LN_CASE(16)
        KP_LN_CASE(32)
        default:
            if constexpr (64 >= V) ln_select01_kernel<XT, MT, V, 64, RESID, SIMPLE><<<grid, kLnThreads, 0, st>>>(a);
            break;
    }
#undef KP_LN_CASE
}

// simple: 16-byte vectors, no weight or bias, and all six modulation rows vector-loadable (every
// production row): a kernel without the strided and affine code, as Triton compiles one kernel per
// HAS_WEIGHT / HAS_BIAS and stride specialisation. Same loads, same arithmetic.
template <typename XT, typename MT, bool RESID>
void launch_ln_v(int v, int ept, bool simple, const LnArgs& a, int64_t rows, cudaStream_t st) {
    constexpr int VX = 16 / static_cast<int>(sizeof(XT));
    if (v == VX && simple) launch_ln_ept<XT, MT, VX, RESID, true>(ept, a, rows, st);
    else if (v == VX) launch_ln_ept<XT, MT, VX, RESID, false>(ept, a, rows, st);
    else if (v == 1) launch_ln_ept<XT, MT, 1, RESID, false>(ept, a, rows, st);
    // BLOCK_N / 128 below 16 bytes: one access of v elements a thread, v == EPT.
    else if (v == 2) ln_select01_kernel<XT, MT, 2, 2, RESID, false><<<dim3(static_cast<unsigned>(rows)), kLnThreads, 0, st>>>(a);
    else if constexpr (VX > 4) ln_select01_kernel<XT, MT, 4, 4, RESID, false><<<dim3(static_cast<unsigned>(rows)), kLnThreads, 0, st>>>(a);
}

template <typename XT, bool RESID>
void launch_ln_m(int mdt, int vec, int ept, bool simple, const LnArgs& a, int64_t rows, cudaStream_t st) {
    if (mdt == KP_BF16) launch_ln_v<XT, bf16, RESID>(vec, ept, simple, a, rows, st);
    else if (mdt == KP_F16) launch_ln_v<XT, f16, RESID>(vec, ept, simple, a, rows, st);
    else launch_ln_v<XT, float, RESID>(vec, ept, simple, a, rows, st);
}

int32_t ln_entry(kp_call* call, void* stream, bool resid) {
    const LnSlots& s = resid ? kEp3Slots : kEp2Slots;
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != static_cast<uint32_t>(s.n) ||
        call->n_scalars != 1 || !ranks_valid(call))
        return KP_INVALID;
    const kp_tensor* t = call->tensors;
    const kp_tensor& x = t[s.x];
    if (!is_float_dt(x.dtype) || x.rank != 3 || !shape_nonneg(x)) { set_path(call, "unsupported:x"); return KP_NOT_SUPPORTED; }
    const int64_t B = x.shape[0], L = x.shape[1], C = x.shape[2];
    const int dt = x.dtype;
    bool ok = is_blc(x, dt, B, L, C) && is_blc(t[s.out], dt, B, L, C) && is_blc(t[s.gate_out], dt, B, L, C);
    if (resid)
        ok = ok && is_blc(t[s.res], dt, B, L, C) && is_blc(t[s.res_gate], dt, B, L, C) && is_blc(t[s.res_out], dt, B, L, C);
    if (!ok) { set_path(call, "unsupported:row_tensor_layout"); return KP_NOT_SUPPORTED; }

    LnArgs a{};
    if (!affine_ok(t[s.w], C, &a.w, &a.w_dt, &a.w_s) || !affine_ok(t[s.b], C, &a.bb, &a.b_dt, &a.b_s)) {
        set_path(call, "unsupported:weight_or_bias");
        return KP_NOT_SUPPORTED;
    }
    const int mdt = t[s.mod0].dtype;
    for (int i = 0; i < 6; ++i) {
        const kp_tensor& m = t[s.mod0 + i];
        if (!is_float_dt(m.dtype) || m.rank != 2 || !(m.shape[0] == B || m.shape[0] == 1) || m.shape[1] != C ||
            (m.data == nullptr && C > 0)) {
            set_path(call, "unsupported:modulation_shape");
            return KP_NOT_SUPPORTED;
        }
        if (m.dtype != mdt) { set_path(call, "unsupported:mixed_modulation_dtypes"); return KP_NOT_SUPPORTED; }
        a.mod[i] = m.data;
        a.mod_sb[i] = m.shape[0] == 1 ? 0 : m.stride[0];
        a.mod_sc[i] = C == 1 ? 0 : m.stride[1];
    }
    const kp_tensor& idx = t[s.index];
    if (!(idx.dtype == KP_I32 || idx.dtype == KP_I64) || idx.rank != 2 || idx.shape[0] != B || idx.shape[1] != L ||
        (idx.data == nullptr && B * L > 0)) {
        set_path(call, "unsupported:index");
        return KP_NOT_SUPPORTED;
    }
    if (C > kLnMaxC) { set_path(call, "unsupported:C_above_8192"); return KP_NOT_SUPPORTED; }
    // One program per row (grid.x).
    if (B * L >= (1ll << 31)) { set_path(call, "unsupported:too_large"); return KP_NOT_SUPPORTED; }

    // BLOCK_N = next_pow2(C) (<= 8192 here, under upstream's 65536-byte cap). Triton vectorises
    // the row loads when C % 16 == 0 (16-divisible row stride) and the bases are 16-byte aligned.
    const int64_t bn = next_pow2(C);
    a.x = x.data;
    a.out = t[s.out].data;
    a.gate_out = t[s.gate_out].data;
    bool vec = C % 16 == 0 && aligned16(a.x) && aligned16(a.out) && aligned16(a.gate_out);
    if (resid) {
        a.res = t[s.res].data;
        a.res_gate = t[s.res_gate].data;
        a.res_out = t[s.res_out].data;
        vec = vec && aligned16(a.res) && aligned16(a.res_gate) && aligned16(a.res_out);
    }
    // Triton's coalescing caps the elements a thread takes per access at BLOCK_N / 128 (at least
    // 1): a 512-wide bf16 row is 4-element accesses over all 128 threads, not 8 over 64.
    const int64_t vmax = vec ? 16 / dt_size(dt) : 1;
    const int64_t V = vmax < (bn / kLnThreads > 1 ? bn / kLnThreads : 1) ? vmax : (bn / kLnThreads > 1 ? bn / kLnThreads : 1);
    const int64_t nt = bn / V < kLnThreads ? bn / V : kLnThreads;
    const int64_t ept = bn / nt;
    char path[KP_PATH_LEN];
    snprintf(path, sizeof path, "%s_row_block%lld_v%lld", resid ? "residual_ln_select01" : "ln_select01",
             static_cast<long long>(bn), static_cast<long long>(V));
    set_path(call, path);
    if (B * L * C == 0) return KP_OK;

    // An operand loads as vectors when its last stride is 1 and its rows stay 16-byte aligned.
    auto operand_vec = [&](const void* p, int odt, int64_t row_stride, int64_t col_stride) {
        return vec && col_stride == 1 && aligned16(p) && (row_stride * dt_size(odt)) % 16 == 0 ? 1 : 0;
    };
    for (int i = 0; i < 6; ++i) a.mod_vec[i] = operand_vec(a.mod[i], mdt, a.mod_sb[i], a.mod_sc[i]);
    a.w_vec = a.w ? operand_vec(a.w, a.w_dt, 0, a.w_s) : 0;
    a.b_vec = a.bb ? operand_vec(a.bb, a.b_dt, 0, a.b_s) : 0;
    a.index = idx.data;
    a.index_i64 = idx.dtype == KP_I64;
    a.index_sb = B == 1 ? 0 : idx.stride[0];
    a.index_sl = L == 1 ? 0 : idx.stride[1];
    a.L = L;
    a.C = C;
    a.eps = static_cast<float>(call->scalars[0]);
    a.nt = static_cast<int>(nt);
    a.opaque_zero = 0;

    cudaStream_t st = static_cast<cudaStream_t>(stream);
    const int64_t rows = B * L;
    const int e = static_cast<int>(ept);
    const int vw = static_cast<int>(V);
    bool simple = V == 16 / dt_size(dt) && a.w == nullptr && a.bb == nullptr;
    for (int i = 0; i < 6; ++i) simple = simple && a.mod_vec[i];
    if (resid) {
        if (dt == KP_BF16) launch_ln_m<bf16, true>(mdt, vw, e, simple, a, rows, st);
        else if (dt == KP_F16) launch_ln_m<f16, true>(mdt, vw, e, simple, a, rows, st);
        else launch_ln_m<float, true>(mdt, vw, e, simple, a, rows, st);
    } else {
        if (dt == KP_BF16) launch_ln_m<bf16, false>(mdt, vw, e, simple, a, rows, st);
        else if (dt == KP_F16) launch_ln_m<f16, false>(mdt, vw, e, simple, a, rows, st);
        else launch_ln_m<float, false>(mdt, vw, e, simple, a, rows, st);
    }
    return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
}

}  // namespace

extern "C" {

int32_t kp_fuse_layernorm_scale_shift_gate_select01_kernel(kp_call* call, void* stream) {
    return ln_entry(call, stream, false);
}

int32_t kp_fuse_residual_layernorm_scale_shift_gate_select01_kernel(kp_call* call, void* stream) {
    return ln_entry(call, stream, true);
}

}  // extern "C"
