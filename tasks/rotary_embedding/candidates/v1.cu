// kpilot-parent: baseline sha256 e0e77a8b93875da74521410a771f43a8720c9c08a681aa4cc36d46056120cb3d
// Candidate v1 for tasks/rotary_embedding, started from the baseline. What changes and why:
//   * Both upstream kernels move 2-byte (standard) or 4/8-byte (LTX-2) pieces per thread with one
//     short-lived CTA per token: the standard kernel's x loads are 2-byte with stride 2 (half of
//     each 32-byte sector fetched per load instruction) and its LTX-2 tiles issue 4-8 byte accesses.
//     v1 gives every thread one 16-byte chunk (8 elements of x, 4 adjacent pairs for the standard
//     kernel; 8 elements of each half for LTX-2), loads x, cos and sin as 16-byte vectors, and runs
//     a flat 1-D grid of 256-thread CTAs over (token row, head, chunk), so each warp streams
//     contiguous 512-byte spans of x and out.
//   * The arithmetic is the baseline's, operation for operation (fp32 fma with 0 - x2 for the
//     standard kernel; x*cos in x's dtype rounded to bf16, then fp32 fma, for LTX-2), so the output
//     is bit-identical to the baseline.
//   * Rows the fast paths do not cover (fp32 x, head_dim (standard) or half (LTX-2) not a multiple
//     of 8 elements, views not 16-byte aligned, a subsampled or 16-bit cos for the standard kernel)
//     run the baseline's kernels unchanged, path "base_*".
//   * Bucket: small LTX-2 rows run the baseline's kernel, path "base_small_ltx2_*". Condition: the
//     v1 LTX-2 kernel runs only when it has at least kV1LtxMinChunks = 131072 16-byte chunks
//     (B*S*H*half/8, i.e. 512 CTAs of 256 threads, about 4 per SM on a 132-SM H200, x of at least
//     4 MiB in bf16); below that the baseline's multi-head-block kernel runs unchanged. Why: on the
//     H200 (run 20261201T013248Z-e0eb7184) v1 was slower on [1,126,2048] (63 CTAs: 69 of 132 SMs
//     idle, 0.940x) and [2,126,2048] (126 CTAs, 0.975x), same on a 256-CTA row (0.991x) and
//     faster from 768 CTAs up ([1,1536,2048], 1.020x). At these sizes the kernel is latency-bound
//     (about 2 us for 1.5 MB). Likely causes (read from the code, not profiled): v1's flat grid
//     puts fewer, fuller CTAs on fewer SMs, and each thread does two runtime 32-bit divisions
//     (chunk, head) before its first load, where the baseline's CTA takes its token and head
//     block straight from blockIdx. (The first v1 run was against the old standard config; the
//     LTX-2 kernels did not change with it.)
// Baseline for tasks/rotary_embedding: a CUDA port of SGLang 0.5.23's two Triton rotary kernels.
//
// Lineage (package sglang 0.5.23 from PyPI, wheel sglang-0.5.23-cp311-cp311-manylinux_2_34_x86_64.whl;
// paths relative to the unpacked wheel; task.toml pins each file's sha256):
//   * sglang/kernels/ops/diffusion/rope/rotary_triton.py: apply_rotary_embedding(x, cos, sin,
//     interleaved=False) -> _rotary_embedding_kernel, @triton.autotune over (BLOCK_HEADS,
//     BLOCK_HS_HALF, num_warps) in {(1,32,2), (2,32,2), (4,32,4), (4,64,4), (8,64,8)}, key
//     (num_heads, head_size). Called from multimodal_gen/runtime/layers/rotary_embedding/utils.py
//     _apply_rotary_emb(..., is_neox_style=False) (HunyuanVideo's img_q / img_k).
//   * sglang/kernels/ops/diffusion/rope/ltx2_rotary_triton.py: apply_ltx2_split_rotary_emb(x, cos,
//     sin) -> _ltx2_split_rotary_kernel (shapes and strides constexpr, BLOCK_HEADS = min(16,
//     next_pow2(H)), num_warps = min(8, BLOCK_HEADS), BLOCK_HALF = next_pow2(half)). Called from
//     multimodal_gen/runtime/models/dits/ltx_2.py apply_split_rotary_emb for bf16 x, cos, sin.
//
// How Triton 3.6 lays both kernels out on sm_90 (read from their TTGIR and PTX, compiled for the
// production shapes; NOTES.md has the table), and how this file reproduces it:
//   * A 2-D tile [rows, cols] in a blocked layout: sizePerThread [1, V] (V consecutive elements of
//     the fastest dim per thread), lanes filled along the fastest dim first, the rest of the lanes
//     and of the warps going to the other dim; a tile smaller than the CTA's coverage is replicated
//     (replica threads load too, only the first copy stores), a larger one repeats per thread.
//     Layout2D below derives exactly Triton's threadsPerWarp / warpsPerCTA from the tile, V and the
//     warp count at compile time; every launch is a template instantiation (no runtime layout).
//   * Standard kernel: tile [BLOCK_HEADS, BLOCK_HS_HALF], order [0, 1] (heads fastest across
//     lanes), V = 1: per element two 2-byte x loads (x1 = x[2j], x2 = x[2j+1]), 4-byte cos and sin
//     loads, and two 2-byte stores (the pair offsets have stride 2, so Triton does not vectorize);
//     a loop over D/2 in steps of BLOCK_HS_HALF; o1 = fma(0 - x2, s, x1*c), o2 = fma(x1, s, x2*c) in
//     fp32, each rounded once to x's dtype; 32-bit offsets (Triton's i32 arguments) widened into
//     64-bit pointers.
//   * LTX-2 kernel: tile [BLOCK_HEADS, BLOCK_HALF], order [1, 0] (the half dim fastest), V as Triton
//     picks it (for the production H = 32: 4 for half 64, 2 for half 32): V-wide loads of a, b, cos,
//     sin and V-wide stores of both halves; p = x*cos in x's dtype (mul.bf16 for bf16), rounded to
//     bf16, widened, then fma(0 - b, s, p_a) and fma(a, s, p_b) in fp32, stored in x's dtype.
//     Triton folds the constexpr seq_len division into a multiply-high; here the same
//     multiply-high with a magic number computed on the host.
//
// The autotuned config of the standard kernel: Triton's autotuner times the five configs on the
// first call and keeps the fastest for the key (num_heads, head_size); which one it keeps on an H200
// cannot be known without one. std_config() below follows the choices an H200 run reported, and
// `kpilot fidelity` prints the config upstream's autotuner chose (the adapter reports
// best_config), so the rule can be set to it.
//
// Deliberate differences from upstream (none on a production row):
//   * cos/sin of the standard kernel are read in place through their strides (upstream first
//     makes them .contiguous(), and for interleaved with a full-width cos copies cos[..., ::2]: an
//     allocation and a copy kernel each, which an ABI call may not do). Same values read.
//   * Dtype combinations: x bf16/fp16/fp32; the standard kernel's cos/sin fp32 or x's dtype, the
//     LTX-2 kernel's cos/sin x's dtype. Others (which Triton would promote) are refused.
//   * Offsets past 2^31 - 1 elements are refused (Triton's i32 index math would wrap there).
//   * A standard-kernel x whose last dim is not unit-stride, and a non-contiguous LTX-2 x, are
//     refused: upstream's kernels assume them (they read the wrong elements otherwise).

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>

#include "kpilot_abi.h"

namespace {

// ---------------------------------------------------------------------------------------------
// Triton's default blocked layout for a 2-D tile, fastest dim F (NF elements, V per thread), the
// other dim L (NL elements, 1 per thread), NW warps.

constexpr int cmin(int a, int b) { return a < b ? a : b; }
constexpr int cmax(int a, int b) { return a > b ? a : b; }

template <int NF, int NL, int V, int NW>
struct Layout2D {
    static constexpr int TF0 = cmax(1, cmin(32, NF / V));
    static constexpr int TL0 = cmax(1, cmin(32 / TF0, NL));
    static constexpr int TL = 32 / TF0;  // leftover lanes go to the slow dim
    static constexpr int TF = TF0;
    static constexpr int WF = cmax(1, cmin(NW, NF / (V * TF)));
    static constexpr int WL = NW / WF;  // leftover warps go to the slow dim
    static constexpr int CovF = V * TF * WF;
    static constexpr int CovL = TL * WL;
    static constexpr int RepF = cmax(1, NF / CovF);  // repeats per thread
    static constexpr int RepL = cmax(1, NL / CovL);
    static_assert(TL0 <= TL, "lanes");
    // Position of the thread in the tile (before wrapping a replicated layout onto the tile).
    __device__ static int f0(int tid) { return V * ((tid & 31) % TF) + V * TF * ((tid >> 5) % WF); }
    __device__ static int l0(int tid) { return (tid & 31) / TF + TL * ((tid >> 5) / WF); }
};

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }

template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }

// x*cos in x's dtype, then rounded to bf16 and widened (the LTX-2 kernel's one rounding point).
__device__ __forceinline__ float prod_bf16(__nv_bfloat16 a, __nv_bfloat16 c) { return __bfloat162float(__hmul(a, c)); }
__device__ __forceinline__ float prod_bf16(__half a, __half c) {
    return __bfloat162float(__float2bfloat16_rn(__half2float(__hmul(a, c))));
}
__device__ __forceinline__ float prod_bf16(float a, float c) {
    return __bfloat162float(__float2bfloat16_rn(__fmul_rn(a, c)));
}

template <typename T, int V>
struct alignas(sizeof(T) * V) Vec {
    T v[V];
};

// Vector loads and stores through a plain integer type of the vector's size, so that nvcc emits
// one access of that width (a struct store may be split into 2-byte stores).
template <int B> struct Raw;
template <> struct Raw<2> { using type = uint16_t; };
template <> struct Raw<4> { using type = uint32_t; };
template <> struct Raw<8> { using type = uint2; };
template <> struct Raw<16> { using type = uint4; };

template <typename VT, typename T>
__device__ __forceinline__ VT load_vec(const T* p) {
    using R = typename Raw<sizeof(VT)>::type;
    const R r = *reinterpret_cast<const R*>(p);
    VT v;
    memcpy(&v, &r, sizeof(VT));
    return v;
}

__device__ __forceinline__ uint32_t bits_of(__nv_bfloat16 v) { return __bfloat16_as_ushort(v); }
__device__ __forceinline__ uint32_t bits_of(__half v) { return __half_as_ushort(v); }
__device__ __forceinline__ uint32_t bits_of(float v) { return __float_as_uint(v); }

// The vector packed into 32-bit words (two 16-bit elements a word, low one first) and stored as
// one access: a struct or memcpy store of 16-bit elements is split into 2-byte stores by nvcc.
template <typename VT, typename T>
__device__ __forceinline__ void store_vec(T* p, const VT& v) {
    constexpr int kBytes = sizeof(VT);
    constexpr int kElems = kBytes / sizeof(T);
    if constexpr (kBytes == 2) {
        *reinterpret_cast<uint16_t*>(p) = static_cast<uint16_t>(bits_of(v.v[0]));
    } else {
        uint32_t w[kBytes / 4];
#pragma unroll
        for (int i = 0; i < kBytes / 4; ++i) {
            if constexpr (sizeof(T) == 4) {
                w[i] = bits_of(v.v[i]);
            } else {
                w[i] = bits_of(v.v[2 * i]) | (bits_of(v.v[2 * i + 1]) << 16);
            }
        }
        static_assert(kElems >= 1, "elements");
        if constexpr (kBytes == 4) *reinterpret_cast<uint32_t*>(p) = w[0];
        // One 64-bit integer: a uint2 store at a runtime offset is split into two 4-byte stores.
        if constexpr (kBytes == 8)
            *reinterpret_cast<unsigned long long*>(p) = static_cast<unsigned long long>(w[0]) | (static_cast<unsigned long long>(w[1]) << 32);
        if constexpr (kBytes == 16) *reinterpret_cast<uint4*>(p) = make_uint4(w[0], w[1], w[2], w[3]);
    }
}

// ---------------------------------------------------------------------------------------------
// Standard RoPE: _rotary_embedding_kernel, grid (B*S, cdiv(H, BH)), NW warps.

struct StdArgs {
    void* out;
    const void* x;
    const void* cos;
    const void* sin;
    int32_t num_heads, half, num_tokens;
    int32_t s_out_bt, s_out_head, s_x_bt, s_x_head;
    int32_t s_cos_row, s_sin_row, s_cos_col, s_sin_col;  // col stride 2 for a subsampled full-width cos
};

template <typename T, typename C, int BH, int BW, int NW>
__global__ void __launch_bounds__(NW * 32) std_rope_kernel(StdArgs a) {
    using L = Layout2D<BH, BW, 1, NW>;  // fastest dim: heads (order [0, 1])
    // Every config has one head per thread and lanes covering the head block exactly.
    static_assert(L::RepF == 1 && L::CovF == BH, "one head per thread");
    const int bt = blockIdx.x;
    const int token = bt % a.num_tokens;
    const int tid = threadIdx.x;
    const int head = blockIdx.y * BH + L::f0(tid);
    const int col = L::l0(tid) % BW;      // first column of this thread in the tile
    const bool own = L::l0(tid) < BW;     // false: a replica lane (CovL > BW), loads only
    const bool hmask = head < a.num_heads;
    // Base pointers, advanced by one tile width per step as Triton's loop does.
    const C* cp = static_cast<const C*>(a.cos) + token * a.s_cos_row + col * a.s_cos_col;
    const C* sp = static_cast<const C*>(a.sin) + token * a.s_sin_row + col * a.s_sin_col;
    const T* xp = static_cast<const T*>(a.x) + bt * a.s_x_bt + head * a.s_x_head + 2 * col;
    T* op = static_cast<T*>(a.out) + bt * a.s_out_bt + head * a.s_out_head + 2 * col;
    const int cstep = L::CovL * a.s_cos_col, sstep = L::CovL * a.s_sin_col;

#pragma unroll 1  // Triton's loop is not unrolled
    for (int start = col; start < a.half + col; start += BW) {
        float c[L::RepL], s[L::RepL];
        bool jm[L::RepL];
#pragma unroll
        for (int r = 0; r < L::RepL; ++r) {
            jm[r] = start + r * L::CovL < a.half;
            c[r] = jm[r] ? to_f(cp[r * cstep]) : 0.0f;
        }
#pragma unroll
        for (int r = 0; r < L::RepL; ++r) s[r] = jm[r] ? to_f(sp[r * sstep]) : 0.0f;
        T x1[L::RepL], x2[L::RepL];
#pragma unroll
        for (int r = 0; r < L::RepL; ++r) x1[r] = (hmask && jm[r]) ? xp[2 * r * L::CovL] : from_f<T>(0.0f);
#pragma unroll
        for (int r = 0; r < L::RepL; ++r) x2[r] = (hmask && jm[r]) ? xp[2 * r * L::CovL + 1] : from_f<T>(0.0f);
#pragma unroll
        for (int r = 0; r < L::RepL; ++r) {
            const float f1 = to_f(x1[r]), f2 = to_f(x2[r]);
            const float o1 = __fmaf_rn(__fsub_rn(0.0f, f2), s[r], __fmul_rn(f1, c[r]));
            const float o2 = __fmaf_rn(f1, s[r], __fmul_rn(f2, c[r]));
            if (hmask && jm[r] && own) {
                op[2 * r * L::CovL] = from_f<T>(o1);
                op[2 * r * L::CovL + 1] = from_f<T>(o2);
            }
        }
        cp += BW * a.s_cos_col;
        sp += BW * a.s_sin_col;
        xp += 2 * BW;
        op += 2 * BW;
    }
}

// ---------------------------------------------------------------------------------------------
// LTX-2 split RoPE: _ltx2_split_rotary_kernel, grid (B*S, cdiv(H, BH)), NW warps.

struct LtxArgs {
    void* out;
    const void* x;
    const void* cos;
    const void* sin;
    uint32_t seq_len, seq_magic, seq_shift;  // token split: b = (umulhi(bt, magic) + bt) >> shift
    int32_t num_heads, half;
    int32_t cb, ch, ct, sb, sh, st;  // cos / sin strides (batch, head, token)
};

template <typename T, int BH, int BHALF, int V, int NW>
__global__ void __launch_bounds__(NW * 32) ltx_rope_kernel(LtxArgs a) {
    using L = Layout2D<BHALF, BH, V, NW>;  // fastest dim: the half (order [1, 0])
    using VT = Vec<T, V>;
    const uint32_t bt = blockIdx.x;
    const uint32_t batch =
        static_cast<uint32_t>((static_cast<uint64_t>(__umulhi(bt, a.seq_magic)) + bt) >> a.seq_shift);
    const int token = static_cast<int>(bt - batch * a.seq_len);
    const int tid = threadIdx.x;
    const int head_dim = 2 * a.half;
    const T* x = static_cast<const T*>(a.x);
    const T* cs = static_cast<const T*>(a.cos);
    const T* sn = static_cast<const T*>(a.sin);
    T* out = static_cast<T*>(a.out);

#pragma unroll
    for (int i = 0; i < L::RepL; ++i) {
        const int ph = L::l0(tid) + i * L::CovL;
        const int head = blockIdx.y * BH + ph % BH;
        const bool hm = head < a.num_heads;
        const int xb = (static_cast<int>(bt) * a.num_heads + head) * head_dim;
        const int cbase = static_cast<int>(batch) * a.cb + head * a.ch + token * a.ct;
        const int sbase = static_cast<int>(batch) * a.sb + head * a.sh + token * a.st;
#pragma unroll
        for (int r = 0; r < L::RepF; ++r) {
            const int pf = L::f0(tid) + r * L::CovF;
            const int off = pf % BHALF;
            const bool own = ph < BH && pf < BHALF;
            // Triton masks per element; a V-group is all in or all out (V divides half).
            const bool m = hm && off < a.half;
            VT xa, xbv, cv, sv;
            if (m) {
                xa = load_vec<VT>(x + xb + off);
                xbv = load_vec<VT>(x + xb + a.half + off);
                cv = load_vec<VT>(cs + cbase + off);
                sv = load_vec<VT>(sn + sbase + off);
            } else {
#pragma unroll
                for (int v = 0; v < V; ++v) xa.v[v] = xbv.v[v] = cv.v[v] = sv.v[v] = from_f<T>(0.0f);
            }
            VT oa, ob;
#pragma unroll
            for (int v = 0; v < V; ++v) {
                const float pa = prod_bf16(xa.v[v], cv.v[v]);
                const float pb = prod_bf16(xbv.v[v], cv.v[v]);
                const float fs = to_f(sv.v[v]);
                oa.v[v] = from_f<T>(__fmaf_rn(__fsub_rn(0.0f, to_f(xbv.v[v])), fs, pa));
                ob.v[v] = from_f<T>(__fmaf_rn(to_f(xa.v[v]), fs, pb));
            }
            if (m && own) {
                store_vec(out + xb + off, oa);
                store_vec(out + xb + a.half + off, ob);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Host side.

int32_t refuse(kp_call* call, const char* why) {
    snprintf(call->path, KP_PATH_LEN, "unsupported:%s", why);
    return KP_NOT_SUPPORTED;
}

const char* dt_name(int32_t dt) {
    return dt == KP_BF16 ? "bf16" : dt == KP_F16 ? "fp16" : dt == KP_F32 ? "fp32" : "?";
}

bool fits_i32(int64_t v) { return v >= 0 && v <= INT32_MAX; }

int next_pow2(int64_t v) {
    int p = 1;
    while (p < v) p <<= 1;
    return p;
}

// The config upstream's autotuner keeps for (num_heads, head_size, x's dtype) on an H200, as the
// fidelity adapter's best_config notes reported it (run 20261201T013059Z-3b1e546d, H200): (4, 64,
// w4) for head size 128 and 48 (hunyuanvideo's 24 x 128 included), (8, 64, w8) for head size 256
// and for fp16 8 x 64, (4, 32, w4) for bf16 head size 64. The first guess, (2, 32, w2) from an L1
// cost model, was 1.57x slower than upstream on the hunyuanvideo row. An autotuner choice is a
// timing on one card: re-read the notes after a fidelity run on another card.
int std_config(int64_t heads, int64_t head_size, int x_dtype) {
    if (head_size >= 256) return 4;
    if (head_size == 64) return (x_dtype == KP_F16 && heads == 8) ? 4 : 2;
    return 3;
}

struct StdCfg {
    int bh, bw, nw;
};
constexpr StdCfg kStdCfgs[5] = {{1, 32, 2}, {2, 32, 2}, {4, 32, 4}, {4, 64, 4}, {8, 64, 8}};

template <typename T, typename C>
cudaError_t launch_std(int cfg, dim3 grid, const StdArgs& a, cudaStream_t st) {
    switch (cfg) {
        case 0: std_rope_kernel<T, C, 1, 32, 2><<<grid, 64, 0, st>>>(a); break;
        case 1: std_rope_kernel<T, C, 2, 32, 2><<<grid, 64, 0, st>>>(a); break;
        case 2: std_rope_kernel<T, C, 4, 32, 4><<<grid, 128, 0, st>>>(a); break;
        case 3: std_rope_kernel<T, C, 4, 64, 4><<<grid, 128, 0, st>>>(a); break;
        default: std_rope_kernel<T, C, 8, 64, 8><<<grid, 256, 0, st>>>(a); break;
    }
    return cudaGetLastError();
}

// The LTX-2 tiles this file instantiates: (BLOCK_HEADS, BLOCK_HALF, V, num_warps) as Triton
// derives them for the rows of rows.toml; any other tile is refused (add an instantiation).
template <typename T>
cudaError_t launch_ltx(int bh, int bhalf, int v, int nw, dim3 grid, const LtxArgs& a, cudaStream_t st,
                       bool* found) {
    *found = true;
#define KP_LTX(BH, BHALF, V, NW)                                                  \
    if (bh == BH && bhalf == BHALF && v == V && nw == NW) {                      \
        ltx_rope_kernel<T, BH, BHALF, V, NW><<<grid, NW * 32, 0, st>>>(a);       \
        return cudaGetLastError();                                               \
    }
    KP_LTX(16, 64, 4, 8)
    KP_LTX(16, 32, 2, 8)
    KP_LTX(8, 32, 1, 8)
    KP_LTX(4, 16, 1, 4)
    KP_LTX(1, 8, 1, 1)
#undef KP_LTX
    *found = false;
    return cudaSuccess;
}

// The vector width Triton gives the LTX-2 loads: the elements per thread of the tile, at most 16
// bytes, at most the power of two dividing half (the mask's constancy and the second half's
// alignment), the strides' alignment (cos/sin strides and head_dim are constexpr divisibility).
int ltx_vec(int32_t dt, int bh, int bhalf, int nw, int64_t half, const int64_t* strides, int n) {
    const int elem = dt == KP_F32 ? 4 : 2;
    int v = (bh * bhalf) / (32 * nw);
    if (v < 1) v = 1;
    if (v > 16 / elem) v = 16 / elem;
    auto pow2_div = [](int64_t x) {
        int p = 1;
        while (p < 64 && x % (2 * p) == 0) p *= 2;
        return p;
    };
    if (pow2_div(half) < v) v = pow2_div(half);
    for (int i = 0; i < n; ++i)
        if (strides[i] != 0 && pow2_div(strides[i]) < v) v = pow2_div(strides[i]);
    return v;
}

bool valid_tensor(const kp_tensor& t) { return t.rank >= 0 && t.rank <= KP_MAX_RANK; }

bool is_contiguous(const kp_tensor& t) {
    int64_t expect = 1;
    for (int d = t.rank - 1; d >= 0; --d) {
        if (t.shape[d] != 1 && t.stride[d] != expect) return false;
        expect *= t.shape[d];
    }
    return true;
}

// ---------------------------------------------------------------------------------------------
// v1 fast paths: one 16-byte chunk per thread, flat 1-D grid of 256 threads.

constexpr int kV1Threads = 256;
// The small-row bucket of the LTX-2 entry point (see the file header): fewer 16-byte chunks than
// this run the baseline's kernel.
constexpr int64_t kV1LtxMinChunks = 131072;

template <typename T>
struct alignas(16) V16 {
    T v[16 / sizeof(T)];
};

// Standard RoPE, x 16-bit, cos/sin fp32: a chunk is 8 elements of x = 4 adjacent pairs.
template <typename T>
__global__ void __launch_bounds__(kV1Threads) v1_std_kernel(StdArgs a, uint32_t chunks_per_head, uint32_t total) {
    const uint32_t i = blockIdx.x * kV1Threads + threadIdx.x;
    if (i >= total) return;
    const uint32_t ch = i % chunks_per_head;
    const uint32_t row = i / chunks_per_head;  // bt * H + h
    const uint32_t h = row % static_cast<uint32_t>(a.num_heads);
    const uint32_t bt = row / static_cast<uint32_t>(a.num_heads);
    const int token = static_cast<int>(bt % static_cast<uint32_t>(a.num_tokens));
    const int j0 = static_cast<int>(ch) * 4;
    const T* xp = static_cast<const T*>(a.x) + static_cast<int>(bt) * a.s_x_bt + static_cast<int>(h) * a.s_x_head + 2 * j0;
    const float4 c = *reinterpret_cast<const float4*>(static_cast<const float*>(a.cos) + token * a.s_cos_row + j0);
    const float4 s = *reinterpret_cast<const float4*>(static_cast<const float*>(a.sin) + token * a.s_sin_row + j0);
    const V16<T> xv = load_vec<V16<T>>(xp);
    const float cc[4] = {c.x, c.y, c.z, c.w};
    const float ss[4] = {s.x, s.y, s.z, s.w};
    V16<T> ov;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
        const float f1 = to_f(xv.v[2 * k]), f2 = to_f(xv.v[2 * k + 1]);
        ov.v[2 * k] = from_f<T>(__fmaf_rn(__fsub_rn(0.0f, f2), ss[k], __fmul_rn(f1, cc[k])));
        ov.v[2 * k + 1] = from_f<T>(__fmaf_rn(f1, ss[k], __fmul_rn(f2, cc[k])));
    }
    store_vec(static_cast<T*>(a.out) + row * (2u * a.half) + 2 * j0, ov);
}

// LTX-2 split RoPE, 16-bit T: a chunk is 8 elements of each half of one head.
template <typename T>
__global__ void __launch_bounds__(kV1Threads) v1_ltx_kernel(LtxArgs a, uint32_t chunks_per_head, uint32_t total) {
    const uint32_t i = blockIdx.x * kV1Threads + threadIdx.x;
    if (i >= total) return;
    const uint32_t ch = i % chunks_per_head;
    const uint32_t row = i / chunks_per_head;  // bt * H + h
    const uint32_t head = row % static_cast<uint32_t>(a.num_heads);
    const uint32_t bt = row / static_cast<uint32_t>(a.num_heads);
    const uint32_t batch =
        static_cast<uint32_t>((static_cast<uint64_t>(__umulhi(bt, a.seq_magic)) + bt) >> a.seq_shift);
    const int token = static_cast<int>(bt - batch * a.seq_len);
    const int off = static_cast<int>(ch) * 8;
    const int xb = static_cast<int>(row) * 2 * a.half + off;
    const int cbase = static_cast<int>(batch) * a.cb + static_cast<int>(head) * a.ch + token * a.ct + off;
    const int sbase = static_cast<int>(batch) * a.sb + static_cast<int>(head) * a.sh + token * a.st + off;
    const T* x = static_cast<const T*>(a.x);
    const V16<T> xa = load_vec<V16<T>>(x + xb);
    const V16<T> xbv = load_vec<V16<T>>(x + xb + a.half);
    const V16<T> cv = load_vec<V16<T>>(static_cast<const T*>(a.cos) + cbase);
    const V16<T> sv = load_vec<V16<T>>(static_cast<const T*>(a.sin) + sbase);
    V16<T> oa, ob;
#pragma unroll
    for (int v = 0; v < 8; ++v) {
        const float pa = prod_bf16(xa.v[v], cv.v[v]);
        const float pb = prod_bf16(xbv.v[v], cv.v[v]);
        const float fs = to_f(sv.v[v]);
        oa.v[v] = from_f<T>(__fmaf_rn(__fsub_rn(0.0f, to_f(xbv.v[v])), fs, pa));
        ob.v[v] = from_f<T>(__fmaf_rn(to_f(xa.v[v]), fs, pb));
    }
    T* out = static_cast<T*>(a.out);
    store_vec(out + xb, oa);
    store_vec(out + xb + a.half, ob);
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace

extern "C" {

int32_t kp_apply_rotary_embedding(kp_call* call, void* stream_ptr) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != 4 || call->n_scalars != 1)
        return KP_INVALID;
    for (int i = 0; i < 4; ++i)
        if (!valid_tensor(call->tensors[i])) return KP_INVALID;
    const kp_tensor& x = call->tensors[0];
    const kp_tensor& cs = call->tensors[1];
    const kp_tensor& sn = call->tensors[2];
    const kp_tensor& out = call->tensors[3];
    const bool interleaved = call->scalars[0] != 0.0;
    cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);

    // Upstream unpacks x.shape into 4 or 3 names (ValueError otherwise) and asserts D % 2 == 0.
    if (x.rank != 3 && x.rank != 4) return refuse(call, "x_rank");
    const int o = x.rank - 3;
    const int64_t bsz = x.rank == 4 ? x.shape[0] : 1;
    const int64_t tokens = x.shape[o], heads = x.shape[o + 1], hs = x.shape[o + 2];
    if (hs % 2 != 0) return refuse(call, "head_size_odd");
    // x.view(B*S, H, D): B and S must merge (PyTorch raises otherwise).
    if (x.rank == 4 && bsz > 1 && tokens > 1 && x.stride[0] != tokens * x.stride[1])
        return refuse(call, "x_view");
    const int dt = x.dtype;
    if (dt != KP_BF16 && dt != KP_F16 && dt != KP_F32) return refuse(call, "dtype");
    if (out.dtype != dt || out.rank != x.rank || !is_contiguous(out)) return refuse(call, "out_layout");
    for (int d = 0; d < x.rank; ++d)
        if (out.shape[d] != x.shape[d]) return refuse(call, "out_layout");
    if (hs > 1 && x.stride[x.rank - 1] != 1) return refuse(call, "x_last_stride");
    const int64_t half = hs / 2;
    // cos, sin: [rows >= S, width] with width D/2, or D (subsampled [..., ::2] when interleaved).
    if (cs.rank != 2 || sn.rank != 2 || cs.dtype != sn.dtype) return refuse(call, "cos_layout");
    if (cs.dtype != KP_F32 && cs.dtype != dt) return refuse(call, "cos_dtype");
    for (int d = 0; d < 2; ++d)
        if (cs.shape[d] != sn.shape[d]) return refuse(call, "cos_sin_shape");
    if (cs.shape[0] < tokens) return refuse(call, "cos_rows");
    if (cs.shape[1] != half && cs.shape[1] != hs) return refuse(call, "cos_width");
    const int64_t col = (interleaved && cs.shape[1] == hs) ? 2 : 1;
    const int64_t bt = bsz * tokens;
    if (bt == 0 || heads == 0 || hs == 0) {
        snprintf(call->path, KP_PATH_LEN, "empty");
        return KP_OK;
    }
    const int64_t s_x_bt = x.rank == 4 && bsz > 1 ? x.stride[0] / tokens : x.stride[o];
    const int64_t s_x_bt_eff = tokens > 1 ? x.stride[o] : s_x_bt;
    const int64_t s_x_head = heads > 1 ? x.stride[o + 1] : hs;
    const int64_t s_cr = cs.stride[0], s_sr = sn.stride[0];
    const int64_t s_cc = cs.stride[1] * col, s_sc = sn.stride[1] * col;
    // i32 offsets: the farthest element each side addresses.
    if (!fits_i32((bt - 1) * s_x_bt_eff + (heads - 1) * s_x_head + hs) || !fits_i32(bt * heads * hs) ||
        !fits_i32((tokens - 1) * s_cr + (half - 1) * s_cc + 1) || !fits_i32((tokens - 1) * s_sr + (half - 1) * s_sc + 1) ||
        !fits_i32(bt))
        return refuse(call, "offsets_past_int32");

    StdArgs a{};
    a.out = out.data;
    a.x = x.data;
    a.cos = cs.data;
    a.sin = sn.data;
    a.num_heads = static_cast<int32_t>(heads);
    a.half = static_cast<int32_t>(half);
    a.num_tokens = static_cast<int32_t>(tokens);
    a.s_out_bt = static_cast<int32_t>(heads * hs);
    a.s_out_head = static_cast<int32_t>(hs);
    a.s_x_bt = static_cast<int32_t>(s_x_bt_eff);
    a.s_x_head = static_cast<int32_t>(s_x_head);
    a.s_cos_row = static_cast<int32_t>(s_cr);
    a.s_sin_row = static_cast<int32_t>(s_sr);
    a.s_cos_col = static_cast<int32_t>(s_cc);
    a.s_sin_col = static_cast<int32_t>(s_sc);

    // v1: 16-byte chunks when x is 16-bit, cos/sin fp32 read without subsampling, every 16-byte
    // chunk aligned (pointers, strides and D/2 multiples of the vector).
    const bool x16 = dt == KP_BF16 || dt == KP_F16;
    if (x16 && cs.dtype == KP_F32 && s_cc == 1 && s_sc == 1 && hs % 8 == 0 && s_x_bt_eff % 8 == 0 &&
        s_x_head % 8 == 0 && s_cr % 4 == 0 && s_sr % 4 == 0 && aligned16(x.data) && aligned16(out.data) &&
        aligned16(cs.data) && aligned16(sn.data) && fits_i32(bt * heads * hs / 8 + kV1Threads)) {
        const uint32_t cph = static_cast<uint32_t>(hs / 8);
        const uint32_t total = static_cast<uint32_t>(bt * heads) * cph;
        const dim3 g((total + kV1Threads - 1) / kV1Threads);
        if (dt == KP_BF16) v1_std_kernel<__nv_bfloat16><<<g, kV1Threads, 0, stream>>>(a, cph, total);
        else v1_std_kernel<__half><<<g, kV1Threads, 0, stream>>>(a, cph, total);
        snprintf(call->path, KP_PATH_LEN, "v1_std_vec16_%s", dt_name(dt));
        return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
    }
    const int cfg = std_config(heads, hs, x.dtype);
    const StdCfg c = kStdCfgs[cfg];
    const dim3 grid(static_cast<unsigned>(bt), static_cast<unsigned>((heads + c.bh - 1) / c.bh));
    if (grid.y > 65535) return refuse(call, "grid_y");
    cudaError_t err;
    if (cs.dtype == KP_F32) {
        if (dt == KP_BF16) err = launch_std<__nv_bfloat16, float>(cfg, grid, a, stream);
        else if (dt == KP_F16) err = launch_std<__half, float>(cfg, grid, a, stream);
        else err = launch_std<float, float>(cfg, grid, a, stream);
    } else if (dt == KP_BF16) {
        err = launch_std<__nv_bfloat16, __nv_bfloat16>(cfg, grid, a, stream);
    } else {
        err = launch_std<__half, __half>(cfg, grid, a, stream);
    }
    snprintf(call->path, KP_PATH_LEN, "base_std_bh%d_bw%d_w%d_%s_cos%s%s", c.bh, c.bw, c.nw, dt_name(dt),
             dt_name(cs.dtype), col == 2 ? "_sub2" : "");
    return err == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
}

int32_t kp_apply_ltx2_split_rotary_emb(kp_call* call, void* stream_ptr) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != 4 || call->n_scalars != 0)
        return KP_INVALID;
    for (int i = 0; i < 4; ++i)
        if (!valid_tensor(call->tensors[i])) return KP_INVALID;
    const kp_tensor& x = call->tensors[0];
    const kp_tensor& cs = call->tensors[1];
    const kp_tensor& sn = call->tensors[2];
    const kp_tensor& out = call->tensors[3];
    cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);

    // Upstream: batch, seq_len, inner_dim = x.shape; cos_batch, num_heads, cos_seq_len, half_dim =
    // cos.shape (ValueError for other ranks), then its ValueError shape checks.
    if (x.rank != 3 || cs.rank != 4) return refuse(call, "rank");
    const int64_t B = x.shape[0], S = x.shape[1], inner = x.shape[2];
    const int64_t H = cs.shape[1], half = cs.shape[3];
    bool same = sn.rank == 4;
    for (int d = 0; same && d < 4; ++d) same = sn.shape[d] == cs.shape[d];
    if (cs.shape[0] != B || cs.shape[2] != S || inner != H * 2 * half || !same) return refuse(call, "shape_mismatch");
    const int dt = x.dtype;
    if (dt != KP_BF16 && dt != KP_F16 && dt != KP_F32) return refuse(call, "dtype");
    if (cs.dtype != dt || sn.dtype != dt) return refuse(call, "mixed_dtype");
    if (out.dtype != dt || out.rank != 3 || !is_contiguous(out)) return refuse(call, "out_layout");
    for (int d = 0; d < 3; ++d)
        if (out.shape[d] != x.shape[d]) return refuse(call, "out_layout");
    if (!is_contiguous(x)) return refuse(call, "x_not_contiguous");
    if ((half > 1 && (cs.stride[3] != 1 || sn.stride[3] != 1))) return refuse(call, "cos_last_stride");
    if (B * S == 0 || H == 0 || half == 0) {
        snprintf(call->path, KP_PATH_LEN, "empty");
        return KP_OK;
    }
    auto reach = [&](const kp_tensor& t) {
        return (t.shape[0] - 1) * t.stride[0] + (t.shape[1] - 1) * t.stride[1] + (t.shape[2] - 1) * t.stride[2] + half;
    };
    if (!fits_i32(B * S * inner) || !fits_i32(reach(cs)) || !fits_i32(reach(sn)) || !fits_i32(B * S))
        return refuse(call, "offsets_past_int32");
    const int bh = next_pow2(H) < 16 ? next_pow2(H) : 16;
    const int nw = bh < 8 ? bh : 8;
    const int bhalf = next_pow2(half);
    // Strides of size-1 dims do not matter; Triton specializes the others as constexprs.
    const int64_t strides[6] = {B > 1 ? cs.stride[0] : 0, H > 1 ? cs.stride[1] : 0, S > 1 ? cs.stride[2] : 0,
                                B > 1 ? sn.stride[0] : 0, H > 1 ? sn.stride[1] : 0, S > 1 ? sn.stride[2] : 0};
    int v = ltx_vec(dt, bh, bhalf, nw, half, strides, 6);
    // Triton also specializes on pointer alignment (divisibility by 16 bytes): a view starting
    // off a vector boundary gets narrower accesses (here: refused unless that tile exists).
    const int esz = dt == KP_F32 ? 4 : 2;
    for (const void* p : {x.data, cs.data, sn.data, out.data})
        while (v > 1 && (reinterpret_cast<uintptr_t>(p) % (static_cast<uintptr_t>(v) * esz)) != 0) v /= 2;

    LtxArgs a{};
    a.out = out.data;
    a.x = x.data;
    a.cos = cs.data;
    a.sin = sn.data;
    a.seq_len = static_cast<uint32_t>(S);
    // Division by S as a multiply-high: shift = ceil(log2 S), magic = floor(2^32 (2^shift - S) / S) + 1.
    uint32_t shift = 0;
    while ((uint64_t(1) << shift) < static_cast<uint64_t>(S)) ++shift;
    a.seq_shift = shift;
    a.seq_magic = static_cast<uint32_t>(((uint64_t(1) << 32) * ((uint64_t(1) << shift) - S)) / S + 1);
    a.num_heads = static_cast<int32_t>(H);
    a.half = static_cast<int32_t>(half);
    a.cb = static_cast<int32_t>(cs.stride[0]);
    a.ch = static_cast<int32_t>(cs.stride[1]);
    a.ct = static_cast<int32_t>(cs.stride[2]);
    a.sb = static_cast<int32_t>(sn.stride[0]);
    a.sh = static_cast<int32_t>(sn.stride[1]);
    a.st = static_cast<int32_t>(sn.stride[2]);
    const bool x16 = dt == KP_BF16 || dt == KP_F16;
    bool str8 = true;
    for (int i = 0; i < 6; ++i) str8 = str8 && strides[i] % 8 == 0;
    const bool v1_ok = x16 && half % 8 == 0 && str8 && aligned16(x.data) && aligned16(out.data) &&
                       aligned16(cs.data) && aligned16(sn.data) && fits_i32(B * S * H * (half / 8) + kV1Threads);
    const bool small = B * S * H * (half / 8) < kV1LtxMinChunks;
    if (v1_ok && !small) {
        const uint32_t cph = static_cast<uint32_t>(half / 8);
        const uint32_t total = static_cast<uint32_t>(B * S * H) * cph;
        const dim3 g((total + kV1Threads - 1) / kV1Threads);
        if (dt == KP_BF16) v1_ltx_kernel<__nv_bfloat16><<<g, kV1Threads, 0, stream>>>(a, cph, total);
        else v1_ltx_kernel<__half><<<g, kV1Threads, 0, stream>>>(a, cph, total);
        snprintf(call->path, KP_PATH_LEN, "v1_ltx2_vec16_%s", dt_name(dt));
        return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
    }
    const dim3 grid(static_cast<unsigned>(B * S), static_cast<unsigned>((H + bh - 1) / bh));
    if (grid.y > 65535) return refuse(call, "grid_y");
    bool found = false;
    cudaError_t err;
    if (dt == KP_BF16) err = launch_ltx<__nv_bfloat16>(bh, bhalf, v, nw, grid, a, stream, &found);
    else if (dt == KP_F16) err = launch_ltx<__half>(bh, bhalf, v, nw, grid, a, stream, &found);
    else err = launch_ltx<float>(bh, bhalf, v, nw, grid, a, stream, &found);
    if (!found) return refuse(call, "tile_not_instantiated");
    snprintf(call->path, KP_PATH_LEN, "base_%sltx2_bh%d_half%d_v%d_w%d_%s", v1_ok ? "small_" : "", bh, bhalf, v,
             nw, dt_name(dt));
    return err == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
}

}  // extern "C"
