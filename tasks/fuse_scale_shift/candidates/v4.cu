// kpilot-parent: baseline
//
// Candidate v4 for tasks/fuse_scale_shift: the baseline (the SGLang 0.5.23 port, included below
// under other names) everywhere, except that on the production layout of EP2/EP3 the rows it
// streams (x; EP3: x, residual, residual_gate) are read with ld.global.nc.L1::no_allocate
// instead of the baseline's ld.global.nc (__ldg). The kernel is the baseline's
// ln_select01_simple, copied below with only those loads changed (V4_CS_STORES: the outputs
// stored st.global.cs as well): same grid (one 128-thread CTA a row), same registers, same
// arithmetic and rounding, so any difference in time is the cache policy alone.
//
// Why (ncu, H200, run 20261130T201705Z-0b39173a): the baseline's EP2 kernel is L2-bound (L2 at
// 84.9% of peak, DRAM 69.7%), L2 working at 1.22x DRAM's share where EP1 (no re-read operand)
// works at 1.05x. The extra L2 traffic fits L1 misses on the three selected modulation rows
// (6 KB each, re-read by every token) evicted by x streaming through L1. v3 (its own kernel with
// the same hint, H200 run 20261130T224207Z-6e8ccb8f) was slower, but it also changed the kernel:
// 64 registers with a 40-byte spill against the baseline's 45, so it did not test the hint. v4
// tests the hint alone.
//
// Condition (else the baseline's path, which also does every refusal): bf16 x and outputs
// contiguous [B, L, C] and 16-byte aligned, 1024 < C <= 8192 with C % 16 == 0 (BLOCK_N / 128 =
// 16, 32 or 64 elements a thread, 128 threads), B * L < 2^31, no weight or bias, the six
// modulation tensors bf16 [1|B, C] with unit C stride and 16-byte aligned rows, index i32 or i64
// [B, L] (any strides), exactly one scalar (eps).

#define kp_fuse_scale_shift_kernel v4_baseline_fuse_scale_shift_kernel
#define kp_fuse_layernorm_scale_shift_gate_select01_kernel v4_baseline_ln_select01
#define kp_fuse_residual_layernorm_scale_shift_gate_select01_kernel v4_baseline_residual_ln_select01
#include "../baseline.cu"
#undef kp_fuse_scale_shift_kernel
#undef kp_fuse_layernorm_scale_shift_gate_select01_kernel
#undef kp_fuse_residual_layernorm_scale_shift_gate_select01_kernel

#ifndef V4_CS_STORES
#define V4_CS_STORES 0
#endif
#ifndef V4_PATH
#define V4_PATH "ln_row_x_no_allocate"
#endif

namespace v4 {

// One 16-byte vector read once: not allocated in L1.
template <typename T, int N>
__device__ __forceinline__ void load_stream(Vec<T, N>& v, const T* p) {
    static_assert(Vec<T, N>::kBytes == 16, "16-byte vectors only");
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(v.w[0]), "=r"(v.w[1]), "=r"(v.w[2]), "=r"(v.w[3])
                 : "l"(p));
}

template <typename T, int N>
__device__ __forceinline__ void store_out(const Vec<T, N>& v, T* p) {
#if V4_CS_STORES
    static_assert(Vec<T, N>::kBytes == 16, "16-byte vectors only");
    __stcs(reinterpret_cast<uint4*>(p), make_uint4(v.w[0], v.w[1], v.w[2], v.w[3]));
#else
    v.store(p);
#endif
}

// The baseline's ln_select01_simple (baseline.cu), with the streamed loads (and stores) above.
template <typename XT, typename MT, int V, int EPT, bool RESID>
__device__ __forceinline__ void ln_simple_stream(const LnArgs& a) {
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
                load_stream(px[r], xr + col(r));
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
            if (in(r)) load_stream(lx[r], xr + col(r));
#pragma unroll
        for (int r = 0; r < R; ++r)
            if (in(r)) load_stream(lr[r], rr + col(r));
#pragma unroll
        for (int r = 0; r < R; ++r)
            if (in(r)) load_stream(lg[r], gr + col(r));
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
                store_out(o, ro + col(r));
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
            store_out(po, out + c);
            Vec<XT, V> pg;
#pragma unroll
            for (int i = 0; i < V; ++i) {
                if constexpr (std::is_same<XT, MT>::value) pg.set(i, gt.bits(i));
                else pg.set(i, from_f<XT>(gt.get(i)));
            }
            store_out(pg, gout + c);
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
            if constexpr (V > 1) store_out(po, out + c);
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
            if constexpr (V > 1) store_out(pg, gout + c);
            else st_bits(gout + c, pg.w[0]);
        }
    }
}


template <int EPT, bool RESID>
__global__ void __launch_bounds__(kLnThreads) ln_stream_kernel(LnArgs a) {
    ln_simple_stream<bf16, bf16, 8, EPT, RESID>(a);
}

bool dense_blc(const kp_tensor& t, int64_t B, int64_t L, int64_t C) {
    return t.dtype == KP_BF16 && t.rank == 3 && t.shape[0] == B && t.shape[1] == L && t.shape[2] == C &&
           t.stride[2] == 1 && t.stride[1] == C && (B == 1 || t.stride[0] == L * C) && t.data != nullptr &&
           aligned16(t.data);
}

// The new path when the call fits its condition; false (nothing launched) otherwise.
bool try_launch(kp_call* call, void* stream, bool resid) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION) return false;
    const int n = resid ? 15 : 12;
    if (call->n_tensors != static_cast<uint32_t>(n) || call->n_scalars != 1 || !ranks_valid(call)) return false;
    const int sx = 0, sw = resid ? 3 : 1, smod = resid ? 5 : 3, sidx = resid ? 11 : 9;
    const kp_tensor& x = call->tensors[sx];
    if (x.dtype != KP_BF16 || x.rank != 3) return false;
    const int64_t B = x.shape[0], L = x.shape[1], C = x.shape[2];
    if (B < 1 || L < 1 || C <= 1024 || C > 8192 || C % 16 != 0 || B * L >= (1ll << 31)) return false;
    if (!dense_blc(x, B, L, C)) return false;
    if (call->tensors[sw].dtype != KP_ABSENT || call->tensors[sw + 1].dtype != KP_ABSENT) return false;
    LnArgs a{};
    for (int m = 0; m < 6; ++m) {
        const kp_tensor& t = call->tensors[smod + m];
        if (t.dtype != KP_BF16 || t.rank != 2 || t.shape[1] != C || t.stride[1] != 1 || t.data == nullptr) return false;
        if (t.shape[0] != 1 && t.shape[0] != B) return false;
        const int64_t sb = t.shape[0] == 1 ? 0 : t.stride[0];
        if (!aligned16(t.data) || sb % 8 != 0) return false;
        a.mod[m] = t.data;
        a.mod_sb[m] = sb;
        a.mod_sc[m] = 1;
        a.mod_vec[m] = 1;
    }
    const kp_tensor& idx = call->tensors[sidx];
    if ((idx.dtype != KP_I32 && idx.dtype != KP_I64) || idx.rank != 2 || idx.shape[0] != B || idx.shape[1] != L ||
        idx.data == nullptr)
        return false;
    const kp_tensor& out = call->tensors[resid ? 12 : 10];
    const kp_tensor& gout = call->tensors[resid ? 14 : 11];
    if (!dense_blc(out, B, L, C) || !dense_blc(gout, B, L, C)) return false;
    if (resid) {
        if (!dense_blc(call->tensors[1], B, L, C) || !dense_blc(call->tensors[2], B, L, C) ||
            !dense_blc(call->tensors[13], B, L, C))
            return false;
        a.res = call->tensors[1].data;
        a.res_gate = call->tensors[2].data;
        a.res_out = call->tensors[13].data;
    }
    a.x = x.data;
    a.out = out.data;
    a.gate_out = gout.data;
    a.w = nullptr;
    a.w_dt = KP_ABSENT;
    a.bb = nullptr;
    a.b_dt = KP_ABSENT;
    a.index = idx.data;
    a.index_i64 = idx.dtype == KP_I64;
    a.index_sb = B == 1 ? 0 : idx.stride[0];
    a.index_sl = L == 1 ? 0 : idx.stride[1];
    a.L = L;
    a.C = C;
    a.eps = static_cast<float>(call->scalars[0]);
    a.nt = kLnThreads;
    a.opaque_zero = 0;

    // BLOCK_N = next_pow2(C) as the baseline; EPT = BLOCK_N / 128.
    const int64_t ept = next_pow2(C) / kLnThreads;
    const dim3 grid(static_cast<unsigned>(B * L));
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    if (ept == 16) {
        if (resid) ln_stream_kernel<16, true><<<grid, kLnThreads, 0, st>>>(a);
        else ln_stream_kernel<16, false><<<grid, kLnThreads, 0, st>>>(a);
    } else if (ept == 32) {
        if (resid) ln_stream_kernel<32, true><<<grid, kLnThreads, 0, st>>>(a);
        else ln_stream_kernel<32, false><<<grid, kLnThreads, 0, st>>>(a);
    } else {
        if (resid) ln_stream_kernel<64, true><<<grid, kLnThreads, 0, st>>>(a);
        else ln_stream_kernel<64, false><<<grid, kLnThreads, 0, st>>>(a);
    }
    snprintf(call->path, KP_PATH_LEN, "%s_block%lld", V4_PATH, static_cast<long long>(next_pow2(C)));
    return true;
}

}  // namespace v4

extern "C" {

int32_t kp_fuse_scale_shift_kernel(kp_call* call, void* stream) {
    return v4_baseline_fuse_scale_shift_kernel(call, stream);
}

int32_t kp_fuse_layernorm_scale_shift_gate_select01_kernel(kp_call* call, void* stream) {
    if (v4::try_launch(call, stream, false)) return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
    return v4_baseline_ln_select01(call, stream);
}

int32_t kp_fuse_residual_layernorm_scale_shift_gate_select01_kernel(kp_call* call, void* stream) {
    if (v4::try_launch(call, stream, true)) return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
    return v4_baseline_residual_ln_select01(call, stream);
}

}  // extern "C"
