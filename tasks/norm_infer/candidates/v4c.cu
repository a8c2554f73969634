// kpilot-parent: baseline sha256 f3543eb3b11904a91e2594b0ce380bb311fdd800df3983f254266875a36576c5
// Candidate v4c for tasks/norm_infer: v4 with ONE knob changed, `__launch_bounds__(256, 6)`
// (kV4MinBlocks = 6): ptxas then gives the helios kernel 40 registers, no spill, so 6 rows an SM
// instead of v4's 5 (the baseline: 4). Why: v4 (5 an SM) ran helios 1.012x `faster` in run
// 20261201T034050Z-dfbcdf09 and v4b (capped at 4 by an unused shared-memory pad) 0.952x in run
// 20261201T034104Z-e69cb604, so rows an SM is the knob that moved it. Prediction (H200): helios
// 87.5-88.5 µs, 1.01-1.02x; if the 4 fewer registers cost instruction-level overlap, `same` as v4.
// Path `v4_ln_f32_n5120_t256_k5_b6`. Everything else is v4's, whose header follows.
//
// Candidate v4 for tasks/norm_infer: the baseline's own code (included below, unchanged) for every
// call but one family, fp32 LayerNorm with fp32 weight and bias at N 5120 (helios [8640, 5120] and
// the regression row M64 N5120), which runs the baseline's helios kernel cut to an exact fit.
//
// What changes (reasoning, ptxas numbers and the prediction in NOTES.md, section "v4"):
//   * The baseline's helios kernel is Triton's layout: 256 threads, BLOCK_N 8192, so 8 float4
//     slots a thread of which 3 are predicated off, 56 registers, `__launch_bounds__(256, 4)`:
//     4 rows an SM. v4 keeps the same 256 threads and the same ownership (thread t owns float4
//     t + 256 k, i.e. columns 4 t + 1024 k, k < 5), but with N a compile-time 5120 there is no
//     masked slot and no predicate: 5 float4 loads of x issued before any arithmetic, then the
//     baseline's reduction helpers (lanes_sum, warps_sum, sumsq) and rounding points, then the
//     epilogue chunk by chunk with that chunk's weight and bias loaded there (plain ld.global, as
//     the baseline's). `__launch_bounds__(256, 5)`: ptxas gives 44 registers, no spill, so 5 rows
//     an SM (the baseline: 4). Path `v4_ln_f32_n5120_t256_k5_b5`.
//   * Rounding: identical to the baseline's, element by element: mean = div.full(sum, N),
//     d = x - mean, var = div.full(d1*d1, fma(d0, d0, .), ..., N), rstd = div.full(1,
//     sqrt.approx.ftz(var + eps)), x_hat = d * rstd rounded, y = fma(x_hat, w, b); the same
//     thread ownership, the same in-thread order (the baseline's 3 masked slots add exact zeros),
//     the same butterfly and warp-partial tree: the outputs are expected bit-identical.
//   * Prediction (NOTES.md "v4"): helios 88 us (86.5-89.5), about 1.01x, most likely `same`; v4b
//     (the same code capped at 4 rows an SM) separates the exact fit from the extra row an SM.
//   * Everything else (the one-pass rows, other N, other dtypes, RMS, absent affine, misaligned
//     or strided operands): the baseline's entry point and path names, byte for byte.

#define kp_norm_infer base_norm_infer
#include "../baseline.cu"
#undef kp_norm_infer

namespace {

// Rows an SM asked of ptxas: 5 (65536 / 1280 = 51 registers); ptxas takes 44, no spill, and the
// same 44 registers and byte-identical machine code at (256, 4): the bound does not bind, so it
// cannot be v4b's knob.
constexpr int kV4MinBlocks = 6;
// The one knob v4b changes: dynamic shared memory requested at launch and never touched, only to
// cap the blocks an SM. 0 here (5 blocks an SM, by registers); v4b 47104 bytes (46 KB): with the
// 32 B static and 1 KB reserved a block, 5 blocks need 235 KB > 228 KB, 4 fit: the baseline's 4
// rows an SM with v4's code.
constexpr int kV4SmemPad = 0;

constexpr int kV4Threads = 256;                   // 8 warps, as Triton's helios program
constexpr int kV4Warps = kV4Threads / 32;
constexpr int kV4K = 5;                           // float4 a thread
constexpr int kV4N = kV4Threads * kV4K * 4;       // 5120 columns, exact fit
constexpr int kV4CS = kV4Threads * 4;             // columns between a thread's chunks (1024)

__global__ void __launch_bounds__(kV4Threads, kV4MinBlocks)
    v4_ln_kernel(const float* x, float* y, const float* w, const float* b, float eps) {
    __shared__ float red[kV4Warps];
    const int t = threadIdx.x, warp = t >> 5;
    const int c0 = t * 4;
    const int base = static_cast<int>(blockIdx.x) * kV4N;  // the baseline's i32 row * stride
    const float* xr = x + base + c0;

    // All 5 loads of x before any arithmetic (plain ld.global.v4, as the baseline's).
    float v[kV4K * 4];
#pragma unroll
    for (int k = 0; k < kV4K; ++k) load_f<float, 4>(xr + k * kV4CS, v + 4 * k);

    const float n_f = static_cast<float>(kV4N);
    float s = v[0];
#pragma unroll
    for (int e = 1; e < kV4K * 4; ++e) s = s + v[e];
    s = lanes_sum<32>(s);
    s = warps_sum<1, kV4Warps>(s, red, t, 0, warp, false);
    const float mean = div_full(s, n_f);
    float d[kV4K * 4];
#pragma unroll
    for (int e = 0; e < kV4K * 4; ++e) d[e] = v[e] - mean;
    float q = sumsq<kV4K * 4, 32>(d);
    q = warps_sum<1, kV4Warps>(q, red, t, 0, warp, true);
    const float rstd = div_full(1.0f, sqrt_approx_ftz(div_full(q, n_f) + eps));

    // x_hat first, then chunk by chunk: that chunk's weight and bias, outputs, store.
    float xh[kV4K * 4];
#pragma unroll
    for (int e = 0; e < kV4K * 4; ++e) xh[e] = __fmul_rn(d[e], rstd);
    float* yr = y + base + c0;
#pragma unroll
    for (int k = 0; k < kV4K; ++k) {
        const Vec<float, 4> wr = *reinterpret_cast<const Vec<float, 4>*>(w + c0 + k * kV4CS);
        const Vec<float, 4> br = *reinterpret_cast<const Vec<float, 4>*>(b + c0 + k * kV4CS);
        float o[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) o[i] = fmaf(xh[4 * k + i], wr.v[i], br.v[i]);
        store_f<float, 4>(yr + k * kV4CS, o);
    }
}

}  // namespace

extern "C" {

// Tensors: x [M, N], weight [N]?, bias [N]?, out [M, N]. Scalars: eps, is_rms_norm.
int32_t kp_norm_infer(kp_call* call, void* stream) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != 4 || call->n_scalars != 2 ||
        !ranks_valid(call))
        return KP_INVALID;
    const kp_tensor& x = call->tensors[0];
    const kp_tensor& w = call->tensors[1];
    const kp_tensor& b = call->tensors[2];
    const kp_tensor& out = call->tensors[3];
    const bool ln = call->scalars[1] == 0.0;
    const int64_t M = x.rank == 2 ? x.shape[0] : 0, N = x.rank == 2 ? x.shape[1] : 0;
    const bool family = ln && x.dtype == KP_F32 && x.rank == 2 && N == kV4N && M >= 1 && contiguous(x) &&
                        out.dtype == KP_F32 && same_shape(out, x) && contiguous(out) && M * N < (1LL << 31) &&
                        x.data != nullptr && out.data != nullptr && aligned16(x.data) && aligned16(out.data) &&
                        w.dtype == KP_F32 && w.rank == 1 && w.shape[0] == N && w.stride[0] == 1 &&
                        w.data != nullptr && aligned16(w.data) && b.dtype == KP_F32 && b.rank == 1 &&
                        b.shape[0] == N && b.stride[0] == 1 && b.data != nullptr && aligned16(b.data);
    if (family) {
        set_path(call, "v4_ln_f32_n5120_t256_k5_b6");
        v4_ln_kernel<<<static_cast<unsigned>(M), kV4Threads, kV4SmemPad, static_cast<cudaStream_t>(stream)>>>(
            static_cast<const float*>(x.data), static_cast<float*>(out.data), static_cast<const float*>(w.data),
            static_cast<const float*>(b.data), static_cast<float>(call->scalars[0]));
        return launched();
    }
    return base_norm_infer(call, stream);
}

}  // extern "C"
