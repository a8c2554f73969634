// kpilot-parent: v5 sha256 3e068f8ee51ffdc52a62932cadd4b16182ba4d79511fbf38ad98f267b6fe3114
//
// Candidate v5c for tasks/fuse_scale_shift: v5 restricted to the shapes where its flat stream won.
// v5 (run 20261201T035113Z-401ecd7a, NVIDIA H200) was 1.113-1.241x `faster` on the five small EP1
// rows (S19-S195: 0.36-3.6 MB) and 0.969-0.985x `slower` on every large one (75-1161 MB). The
// small rows are where the baseline's EP1 grid, cdiv(L, 4) x C / 1024 x B CTAs of 128 threads,
// leaves the card short of work (S19: 15 CTAs, S195: 147 on 132 SMs) while v5 spreads the same
// vectors over B*L*C / 2048 CTAs of 256 threads; on the large rows the baseline's grid fills the
// card many times over and its own kernel is the faster one. v5c therefore takes v5's flat path
// only when the baseline's grid would have fewer than two CTAs an SM (SM count from
// cudaDeviceGetAttribute, cached per device) and leaves every other call to the baseline.
// Prediction (H200): the five small rows as in v5's run (1.11-1.24x device, eager 1.01-1.06x), every
// large EP1 row and EP2 / EP3 `same` (the baseline's code): headline about 1.04x.
// Everything else is v5's, whose header follows.
//
//
// Candidate v5 for tasks/fuse_scale_shift: the baseline (the SGLang 0.5.23 port, included below,
// its EP1 entry renamed) everywhere, except EP1 on the production layouts, which runs a flat
// stream shaped like the harness's stream reference (kps_stream in kernels/kpilot_support.cu).
//
// Why. On the H200 (run 20261201T013703Z-a82f6df5) the baseline's EP1 is at 95.3-97.9% of the
// stream reference on the large broadcast-scale rows (hunyuanvideo S27030 120.27 vs 115.27 us,
// wan-t2v 279.29 vs 266.73 us), while kps_stream itself runs those byte mixes at 101-102% of copy.
// What the baseline does that kps_stream does not (baseline.cu, fss_tile_kernel / launch_ep1):
//   * grid (cdiv(L, 4), C / 1024, B) with blockIdx.x the ROW group: the CTAs in flight walk one
//     1024-column strip (2 KB of each 6 KB bf16 row) down the whole tensor, then the next strip,
//     so every DRAM page and every TLB entry of x, shift and out is visited C / 1024 times (3 at
//     C = 3072, 5 at C = 5120), each time a third or a fifth of it; kps_stream walks memory once,
//     in address order;
//   * all 12 loads of a thread issued before any store: 64 registers (all-bf16) / 80 (fp32 scale),
//     8 / 6 CTAs of 128 an SM (1024 / 768 threads), where kps_stream has 2048 threads of 2 loads;
//   * the broadcast scale loaded 4 times a thread (once per tile row, stride 0 at run time);
//   * default write-back stores (kps_stream: st.global.cs).
// v1's rows kernel walked memory in order but kept 4 rows a thread in flight at 63 registers with
// L1::no_allocate loads and lost a further 2-3% with fresh buffers (NOTES.md), so v5 copies the
// reference's shape exactly rather than v1's: 256 threads, thread j handles 16-byte output vector
// j (VPT = 1; v5b: 2, j and j + 256 of a 512-vector block chunk), x and shift read with
// ld.global.cs, out written with st.global.cs, the scale's vector read with ld.global.nc (L1/L2
// hits: the same C-wide row for every row; a per-row scale, the scalefull layouts, is streamed with
// ld.global.cs like x). The scale's column is j mod (C / 8), its row j / (C / 8), from one 32-bit
// multiply-high (a round-up magic number, exact for j < 2^31) instead of a division.
//
// Arithmetic is the baseline's own functions (fss_pair16 for an all-16-bit row: add.bf16x2 then
// fma.rn.bf16x2; fss_one for an fp32 scale: fmaf(x, k + s, shift) in fp32, rounded once to x's
// dtype), applied to the same elements, so the outputs are bit-identical to the baseline's.
//
// Fast path ("flat"): x and out bf16 or fp16 contiguous [B, L, C]; shift of x's dtype and
// contiguous [B, L, C]; scale of x's dtype or fp32, rank 2 or 3, unit column stride, one row
// stride for the flattened B*L rows (0: broadcast [1, C] / [1, 1, C]; else [B|1, L, C] views whose
// batch stride is L times the row stride); C % 16 == 0; every base and row 16-byte aligned;
// scale_constant 0 or 1; B*L*C/8 < 2^31 - 4096; and every check the baseline makes passes.
// Anything else goes to the baseline's entry unchanged (its path names, its rejections).
//
// Prediction (not measured): the large broadcast rows move to the stream reference's time plus
// ~0.5% for the scale's L1 reads: hunyuanvideo S27030 120.27 -> ~116 us (1.036x), S27085 ~1.036x,
// wan-i2v 273.78 -> ~262.5 us (1.043x), wan-t2v 279.29 -> ~268.5 us (1.040x), firered S8424
// 38.84 -> ~37.7 us (1.03x), qwen S4096 19.88 -> ~19.6 us (1.014x); qwen-edit scalefull 50.52 ->
// ~49.6 us (1.018x); wan-ti2v scalefull fp32 (the baseline already at 100.7% of the stream)
// 134.20 -> ~133.5 (same); the S19-S195 rows same; EP2 / EP3 same (the baseline's code).

#define kp_fuse_scale_shift_kernel v5_baseline_fuse_scale_shift_kernel
#include "../baseline.cu"
#undef kp_fuse_scale_shift_kernel

#ifndef V5_VPT
#define V5_VPT 1  // 16-byte output vectors a thread (v5b: 2)
#endif
#ifndef V5_NAME
#define V5_NAME "flat1small"
#endif

namespace v5 {

constexpr int kThreads = 256;  // kps_stream's block
constexpr int kVpt = V5_VPT;
constexpr int kChunk = kThreads * kVpt;  // vectors a CTA

struct FlatArgs {
    const uint4* x;
    const uint4* shift;
    uint4* out;
    const void* scale;  // element [0, 0, 0] of the scale (ST)
    int64_t s_row;      // scale elements between consecutive rows of the flattened [B*L, C] (0: broadcast)
    uint32_t n;         // 16-byte output vectors, B*L*C / 8
    uint32_t nv;        // vectors a row, C / 8
    uint32_t mul, shr;  // j / nv == __umulhi(j, mul) >> shr for j < 2^31 (nv >= 2)
    float k;            // scale_constant
    uint32_t k2;        // k as a packed pair of x's 16-bit type
};

__device__ __forceinline__ uint4 ld_cs(const uint4* p) { return __ldcs(p); }
__device__ __forceinline__ uint4 ld_nc(const uint4* p) { return __ldg(p); }

// 8 scale elements (16 bytes of a 16-bit type, 32 of fp32) as the baseline's Vec.
template <typename ST, bool S_ROW>
__device__ __forceinline__ void load_scale(Vec<ST, 8>& v, const ST* p) {
    const uint4* q = reinterpret_cast<const uint4*>(p);
#pragma unroll
    for (int i = 0; i < Vec<ST, 8>::kWords / 4; ++i) {
        const uint4 u = S_ROW ? ld_cs(q + i) : ld_nc(q + i);
        v.w[4 * i] = u.x; v.w[4 * i + 1] = u.y; v.w[4 * i + 2] = u.z; v.w[4 * i + 3] = u.w;
    }
}

// XT: x / shift / out (16-bit); ST: scale (XT or fp32); S_ROW: the scale changes with the row.
template <typename XT, typename ST, bool S_ROW>
__global__ void __launch_bounds__(kThreads) fss_flat_kernel(FlatArgs a) {
    constexpr bool kAll16 = std::is_same<XT, ST>::value;
    const uint32_t j0 = blockIdx.x * static_cast<uint32_t>(kChunk) + threadIdx.x;
    Vec<XT, 8> xv[kVpt], hv[kVpt];
    Vec<ST, 8> sv[kVpt];
#pragma unroll
    for (int u = 0; u < kVpt; ++u) {
        const uint32_t j = j0 + u * kThreads;
        if (j >= a.n) continue;
        const uint4 xu = ld_cs(a.x + j), hu = ld_cs(a.shift + j);
        xv[u].w[0] = xu.x; xv[u].w[1] = xu.y; xv[u].w[2] = xu.z; xv[u].w[3] = xu.w;
        hv[u].w[0] = hu.x; hv[u].w[1] = hu.y; hv[u].w[2] = hu.z; hv[u].w[3] = hu.w;
        const uint32_t row = __umulhi(j, a.mul) >> a.shr;
        const uint32_t col = j - row * a.nv;
        const ST* sp = static_cast<const ST*>(a.scale) + static_cast<int64_t>(col) * 8;
        if constexpr (S_ROW) sp += static_cast<int64_t>(row) * a.s_row;
        load_scale<ST, S_ROW>(sv[u], sp);
    }
#pragma unroll
    for (int u = 0; u < kVpt; ++u) {
        const uint32_t j = j0 + u * kThreads;
        if (j >= a.n) continue;
        Vec<XT, 8> o;
        if constexpr (kAll16) {
#pragma unroll
            for (int w = 0; w < 4; ++w) o.w[w] = fss_pair16<XT>(xv[u].w[w], sv[u].w[w], hv[u].w[w], a.k2);
        } else {
#pragma unroll
            for (int i = 0; i < 8; ++i)
                o.set(i, from_f<XT>(fss_one<XT, ST, XT>(xv[u].get(i), sv[u].get(i), hv[u].get(i), a.k)));
        }
        __stcs(a.out + j, make_uint4(o.w[0], o.w[1], o.w[2], o.w[3]));
    }
}

// Round-up magic number for 32-bit dividends below 2^31 (CUTLASS FastDivmod's rule):
// p = 31 + ceil(log2 d), mul = ceil(2^p / d), q = umulhi(j, mul) >> (p - 32). d >= 2.
void magic(uint32_t d, uint32_t* mul, uint32_t* shr) {
    uint32_t l = 0;
    while ((1ull << l) < d) ++l;
    const uint32_t p = 31 + l;
    *mul = static_cast<uint32_t>(((1ull << p) + d - 1) / d);
    *shr = p - 32;
}

template <typename XT, typename ST>
void launch(const FlatArgs& a, bool s_row, cudaStream_t st) {
    const unsigned grid = (a.n + kChunk - 1) / kChunk;
    if (s_row) fss_flat_kernel<XT, ST, true><<<grid, kThreads, 0, st>>>(a);
    else fss_flat_kernel<XT, ST, false><<<grid, kThreads, 0, st>>>(a);
}

// Takes the call when it is the production layout; false: the baseline's entry decides.
// Multiprocessors of the current device, cached per device (0 when the query fails: then the
// flat path is never taken).
int sm_count() {
    static int cached_dev = -1, cached = 0;
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    if (dev != cached_dev) {
        int n = 0;
        if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
            cudaGetLastError();
            n = 0;
        }
        cached_dev = dev;
        cached = n;
    }
    return cached;
}

bool try_flat(kp_call* call, void* stream, int32_t* rc) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != 4 || call->n_scalars != 1 ||
        !ranks_valid(call))
        return false;
    const kp_tensor& x = call->tensors[0];
    const kp_tensor& sc = call->tensors[1];
    const kp_tensor& sh = call->tensors[2];
    const kp_tensor& out = call->tensors[3];
    if ((x.dtype != KP_BF16 && x.dtype != KP_F16) || x.rank != 3 || !shape_nonneg(x)) return false;
    const int64_t B = x.shape[0], L = x.shape[1], C = x.shape[2];
    if (C % 16 != 0 || B * L * C == 0) return false;
    if (!is_blc(x, x.dtype, B, L, C) || !is_blc(out, x.dtype, B, L, C) || !is_blc(sh, x.dtype, B, L, C)) return false;
    if (sc.dtype != x.dtype && sc.dtype != KP_F32) return false;
    if (sc.rank != 2 && sc.rank != 3) return false;
    ModArg ms{};
    if (!classify_mod(sc, false, B, L, C, &ms) || ms.kind != kGrid || ms.sc != 1) return false;
    const double k = call->scalars[0];
    if (!(k == 0.0 || k == 1.0) || !ep1_size_ok(B, L, C)) return false;
    int64_t s_row;
    if (B == 1 || (ms.sb == 0 && ms.sl == 0)) s_row = ms.sl;
    else if (ms.sb == L * ms.sl) s_row = ms.sl;
    else return false;
    const int64_t ssize = sc.dtype == KP_F32 ? 4 : 2;
    if ((s_row * ssize) % 16 != 0 || !aligned16(x.data) || !aligned16(out.data) || !aligned16(sh.data) ||
        !aligned16(sc.data))
        return false;
    const int64_t n = B * L * C / 8;
    if (n > (1ll << 31) - 4096) return false;
    // v5c: only where the baseline's EP1 grid (cdiv(L, 4) x cdiv(C, 1024) x B CTAs) has fewer
    // than two CTAs an SM.
    if (B * ((L + 3) / 4) * ((C + 1023) / 1024) >= 2 * static_cast<int64_t>(sm_count())) return false;

    FlatArgs a;
    a.x = static_cast<const uint4*>(x.data);
    a.shift = static_cast<const uint4*>(sh.data);
    a.out = static_cast<uint4*>(out.data);
    a.scale = sc.data;
    a.s_row = s_row;
    a.n = static_cast<uint32_t>(n);
    a.nv = static_cast<uint32_t>(C / 8);
    magic(a.nv, &a.mul, &a.shr);
    a.k = static_cast<float>(k);
    const bool srow = s_row != 0;
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    const char* path;
    if (x.dtype == KP_BF16) {
        a.k2 = (k == 1.0 ? 0x3F80u : 0u) * 0x10001u;  // bf16 1.0 / 0.0, as from_f<bf16>(k)
        if (sc.dtype == KP_F32) launch<bf16, float>(a, srow, st);
        else launch<bf16, bf16>(a, srow, st);
    } else {
        a.k2 = (k == 1.0 ? 0x3C00u : 0u) * 0x10001u;  // fp16 1.0 / 0.0, as from_f<f16>(k)
        if (sc.dtype == KP_F32) launch<f16, float>(a, srow, st);
        else launch<f16, f16>(a, srow, st);
    }
    if (sc.dtype == KP_F32) path = srow ? V5_NAME "_v8_scale_row_f32" : V5_NAME "_v8_scale_bcast_f32";
    else path = srow ? V5_NAME "_v8_scale_row" : V5_NAME "_v8_scale_bcast";
    set_path(call, path);
    *rc = cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
    return true;
}

}  // namespace v5

extern "C" {

int32_t kp_fuse_scale_shift_kernel(kp_call* call, void* stream) {
    int32_t rc;
    if (v5::try_flat(call, stream, &rc)) return rc;
    return v5_baseline_fuse_scale_shift_kernel(call, stream);
}

}  // extern "C"
