// DROPPED (slower than the baseline on EP2/EP3, H200 runs 20261130T202528Z-190db9fa and
// 20261130T202932Z-54b5f344; see NOTES.md). Kept as the record of a hypothesis that failed.
//
// Candidate v2 for tasks/fuse_scale_shift: the baseline (the SGLang 0.5.23 port, included below
// under other names) on every path but one, plus a new path for the gated LayerNorm + select01
// entry points (EP2, EP3) on the production layout.
//
// Why (ncu, H200, runs 20261130T201705Z-0b39173a and 20261130T201713Z-70bbf5b4): the baseline's
// EP2 kernel is L2-bound (L2 at 84.9% of peak, DRAM at 69.7%): every row re-reads its three
// selected modulation rows (3 x C elements) from L2, three times the bytes of x itself. v1's
// warp-per-row kernel holds the row in 160 registers and runs at 17% occupancy (DRAM 54%). v1's
// EP1 path is slower than the baseline's with a fresh buffer per launch, so v2 keeps the
// baseline's EP1.
//
// The new path ("ln_smem_persistent"): persistent CTAs, one row at a time per CTA, C/16 threads a
// row (16 elements, two 16-byte vectors a thread); the six modulation rows of the batch are loaded
// into shared memory once per CTA (36 KB at C = 3072) and read from there, so per row only x (EP3:
// x, residual, residual_gate) is read and the outputs written, with streaming loads and
// evict-first stores. Arithmetic as the baseline: fp32, two-pass variance from registers,
// out = fma(x_hat, 1 + scale, shift) rounded once, gate_out = the selected gate's bits, EP3's
// residual_out = fma(x, residual_gate, residual) rounded once (the normalisation uses it
// unrounded).
// Condition (else the baseline's path): x / outputs bf16 contiguous [B, L, C], 512 <= C <= 4096,
// C % 512 == 0, B * L < 2^31, no weight or bias, the six modulation tensors bf16 [1|B, C] with unit
// C stride and 16-byte aligned rows, index i32 or i64 contiguous [B, L], all 16-byte aligned.

#define kp_fuse_scale_shift_kernel v2_baseline_fuse_scale_shift_kernel
#define kp_fuse_layernorm_scale_shift_gate_select01_kernel v2_baseline_ln_select01
#define kp_fuse_residual_layernorm_scale_shift_gate_select01_kernel v2_baseline_residual_ln_select01
#include "../baseline.cu"
#undef kp_fuse_scale_shift_kernel
#undef kp_fuse_layernorm_scale_shift_gate_select01_kernel
#undef kp_fuse_residual_layernorm_scale_shift_gate_select01_kernel

namespace v2 {

struct Args {
    const uint4* x;
    const uint4* res;       // EP3
    const uint4* res_gate;  // EP3
    const __nv_bfloat16* mod[6];
    int64_t mod_sb[6];  // batch stride in elements, 0 when the tensor has one batch row
    const void* index;
    bool index_i64;
    uint4* out;
    uint4* res_out;  // EP3
    uint4* gate_out;
    int64_t rows, L;
    int C;
    float eps;
};

__device__ __forceinline__ float bf_lo(uint32_t w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float bf_hi(uint32_t w) { return __uint_as_float(w & 0xFFFF0000u); }
__device__ __forceinline__ uint32_t pack(float lo, float hi) {
    const uint32_t l = __bfloat16_as_ushort(__float2bfloat16_rn(lo));
    const uint32_t h = __bfloat16_as_ushort(__float2bfloat16_rn(hi));
    return l | (h << 16);
}
__device__ __forceinline__ void unpack(const uint4& u, float* f) {
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        f[2 * i] = bf_lo(w[i]);
        f[2 * i + 1] = bf_hi(w[i]);
    }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

template <bool RESID>
__global__ void __launch_bounds__(256) ln_smem_kernel(Args a) {
    extern __shared__ uint4 mod_s[];  // 6 rows of C/8 vectors
    __shared__ float red[2][8];
    const int t = threadIdx.x, nt = blockDim.x;
    const int lane = t & 31, warp = t >> 5, nw = nt >> 5;
    const int cv = a.C / 8;
    const float n_f = static_cast<float>(a.C);
    int64_t cur_b = -1;
    // The next row's loads are issued before this row's reductions (two rows in flight a CTA).
    constexpr int NL = RESID ? 6 : 2;
    uint4 pre[NL];
    auto load_row = [&](int64_t r) {
        const int64_t rb = r * cv;
        pre[0] = __ldcs(a.x + rb + t);
        pre[1] = __ldcs(a.x + rb + nt + t);
        if constexpr (RESID) {
            pre[2] = __ldcs(a.res + rb + t);
            pre[3] = __ldcs(a.res + rb + nt + t);
            pre[4] = __ldcs(a.res_gate + rb + t);
            pre[5] = __ldcs(a.res_gate + rb + nt + t);
        }
    };
    if (blockIdx.x < a.rows) load_row(blockIdx.x);
    for (int64_t row = blockIdx.x; row < a.rows; row += gridDim.x) {
        const int64_t b = row / a.L;
        if (b != cur_b) {
            __syncthreads();  // every thread is done with the previous batch's rows
            for (int i = t; i < 6 * cv; i += nt) {
                const int m = i / cv, j = i - m * cv;
                mod_s[i] = reinterpret_cast<const uint4*>(a.mod[m] + b * a.mod_sb[m])[j];
            }
            __syncthreads();
            cur_b = b;
        }
        const int64_t base = row * cv;
        const int c0 = t, c1 = nt + t;  // this thread's two vectors of the row
        float v[16];
        if constexpr (RESID) {
            float xf[16], rf[16], gf[16];
            unpack(pre[0], xf);
            unpack(pre[1], xf + 8);
            unpack(pre[2], rf);
            unpack(pre[3], rf + 8);
            unpack(pre[4], gf);
            unpack(pre[5], gf + 8);
#pragma unroll
            for (int i = 0; i < 16; ++i) v[i] = fmaf(xf[i], gf[i], rf[i]);
        } else {
            unpack(pre[0], v);
            unpack(pre[1], v + 8);
        }
        if (row + gridDim.x < a.rows) load_row(row + gridDim.x);
        if constexpr (RESID) {
            uint4 o0, o1;
            o0.x = pack(v[0], v[1]); o0.y = pack(v[2], v[3]); o0.z = pack(v[4], v[5]); o0.w = pack(v[6], v[7]);
            o1.x = pack(v[8], v[9]); o1.y = pack(v[10], v[11]); o1.z = pack(v[12], v[13]); o1.w = pack(v[14], v[15]);
            __stcs(a.res_out + base + c0, o0);
            __stcs(a.res_out + base + c1, o1);
        }
        // Mean, then the variance of the centred values, each a block sum.
        float s = 0.f;
#pragma unroll
        for (int i = 0; i < 16; ++i) s += v[i];
        s = warp_sum(s);
        if (lane == 0) red[0][warp] = s;
        __syncthreads();
        float tot = 0.f;
        for (int w = 0; w < nw; ++w) tot += red[0][w];
        const float mean = __fdiv_rn(tot, n_f);
        float q = 0.f;
#pragma unroll
        for (int i = 0; i < 16; ++i) {
            v[i] -= mean;
            q = fmaf(v[i], v[i], q);
        }
        q = warp_sum(q);
        if (lane == 0) red[1][warp] = q;
        __syncthreads();
        float qt = 0.f;
        for (int w = 0; w < nw; ++w) qt += red[1][w];
        const float rstd = rsqrtf(__fdiv_rn(qt, n_f) + a.eps);

        const bool sel = a.index_i64 ? (static_cast<const long long*>(a.index)[row] != 0)
                                     : (static_cast<const int*>(a.index)[row] != 0);
        const int m0 = sel ? 3 : 0;
#pragma unroll
        for (int k = 0; k < 2; ++k) {
            const int c = k == 0 ? c0 : c1;
            float sc[8], sh[8];
            unpack(mod_s[m0 * cv + c], sc);
            unpack(mod_s[(m0 + 1) * cv + c], sh);
            float o[8];
#pragma unroll
            for (int i = 0; i < 8; ++i) o[i] = fmaf(v[8 * k + i] * rstd, 1.0f + sc[i], sh[i]);
            uint4 po;
            po.x = pack(o[0], o[1]); po.y = pack(o[2], o[3]); po.z = pack(o[4], o[5]); po.w = pack(o[6], o[7]);
            __stcs(a.out + base + c, po);
            __stcs(a.gate_out + base + c, mod_s[(m0 + 2) * cv + c]);
        }
    }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

bool dense_blc(const kp_tensor& t, int64_t B, int64_t L, int64_t C) {
    return t.dtype == KP_BF16 && t.rank == 3 && t.shape[0] == B && t.shape[1] == L && t.shape[2] == C &&
           t.stride[2] == 1 && t.stride[1] == C && (B == 1 || t.stride[0] == L * C) && t.data != nullptr &&
           aligned16(t.data);
}

// The new path when the row fits its condition; false (nothing launched) otherwise.
bool try_launch(kp_call* call, void* stream, bool resid) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION) return false;
    const int n = resid ? 15 : 12;
    if (call->n_tensors != static_cast<uint32_t>(n) || call->n_scalars < 1) return false;
    const int sx = 0, sw = resid ? 3 : 1, smod = resid ? 5 : 3, sidx = resid ? 11 : 9;
    const kp_tensor& x = call->tensors[sx];
    if (x.dtype != KP_BF16 || x.rank != 3) return false;
    const int64_t B = x.shape[0], L = x.shape[1], C = x.shape[2];
    if (B < 1 || L < 1 || C < 512 || C > 4096 || C % 512 != 0 || B * L >= (1ll << 31)) return false;
    if (!dense_blc(x, B, L, C)) return false;
    if (call->tensors[sw].dtype != KP_ABSENT || call->tensors[sw + 1].dtype != KP_ABSENT) return false;
    Args a{};
    for (int m = 0; m < 6; ++m) {
        const kp_tensor& t = call->tensors[smod + m];
        if (t.dtype != KP_BF16 || t.rank != 2 || t.shape[1] != C || t.stride[1] != 1 || t.data == nullptr) return false;
        if (t.shape[0] != 1 && t.shape[0] != B) return false;
        const int64_t sb = t.shape[0] == 1 ? 0 : t.stride[0];
        if (!aligned16(t.data) || (sb * 2) % 16 != 0) return false;
        a.mod[m] = static_cast<const __nv_bfloat16*>(t.data);
        a.mod_sb[m] = sb;
    }
    const kp_tensor& idx = call->tensors[sidx];
    if ((idx.dtype != KP_I32 && idx.dtype != KP_I64) || idx.rank != 2 || idx.shape[0] != B || idx.shape[1] != L ||
        idx.data == nullptr || (L > 1 && idx.stride[1] != 1) || (B > 1 && idx.stride[0] != L))
        return false;
    const kp_tensor& out = call->tensors[resid ? 12 : 10];
    const kp_tensor& gout = call->tensors[resid ? 14 : 11];
    if (!dense_blc(out, B, L, C) || !dense_blc(gout, B, L, C)) return false;
    if (resid) {
        if (!dense_blc(call->tensors[1], B, L, C) || !dense_blc(call->tensors[2], B, L, C) ||
            !dense_blc(call->tensors[13], B, L, C))
            return false;
        a.res = static_cast<const uint4*>(call->tensors[1].data);
        a.res_gate = static_cast<const uint4*>(call->tensors[2].data);
        a.res_out = static_cast<uint4*>(call->tensors[13].data);
    }
    a.x = static_cast<const uint4*>(x.data);
    a.index = idx.data;
    a.index_i64 = idx.dtype == KP_I64;
    a.out = static_cast<uint4*>(out.data);
    a.gate_out = static_cast<uint4*>(gout.data);
    a.rows = B * L;
    a.L = L;
    a.C = static_cast<int>(C);
    a.eps = static_cast<float>(call->scalars[0]);

    const int threads = static_cast<int>(C / 16);
    const size_t smem = static_cast<size_t>(6 * C * 2);
    // Resident CTAs per SM for this block size and shared memory (host queries, cached per shape).
    static int sms = 0;
    static int cached_c[2] = {0, 0}, cached_blocks[2] = {0, 0};
    if (sms == 0) {
        int dev = 0;
        cudaGetDevice(&dev);
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
        cudaGetLastError();
        if (sms <= 0) sms = 132;
    }
    const int ri = resid ? 1 : 0;
    if (cached_c[ri] != C) {
        int blocks = 0;
        if (resid) cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, ln_smem_kernel<true>, threads, smem);
        else cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, ln_smem_kernel<false>, threads, smem);
        cudaGetLastError();
        cached_blocks[ri] = blocks > 0 ? blocks : 1;
        cached_c[ri] = static_cast<int>(C);
    }
    const int64_t grid64 = static_cast<int64_t>(sms) * cached_blocks[ri];
    const unsigned grid = static_cast<unsigned>(a.rows < grid64 ? a.rows : grid64);
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    if (resid) ln_smem_kernel<true><<<grid, threads, smem, st>>>(a);
    else ln_smem_kernel<false><<<grid, threads, smem, st>>>(a);
    snprintf(call->path, KP_PATH_LEN, "ln_smem_persistent");
    return true;
}

}  // namespace v2

extern "C" {

int32_t kp_fuse_scale_shift_kernel(kp_call* call, void* stream) {
    return v2_baseline_fuse_scale_shift_kernel(call, stream);
}

int32_t kp_fuse_layernorm_scale_shift_gate_select01_kernel(kp_call* call, void* stream) {
    if (v2::try_launch(call, stream, false)) return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
    return v2_baseline_ln_select01(call, stream);
}

int32_t kp_fuse_residual_layernorm_scale_shift_gate_select01_kernel(kp_call* call, void* stream) {
    if (v2::try_launch(call, stream, true)) return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
    return v2_baseline_residual_ln_select01(call, stream);
}

}  // extern "C"
