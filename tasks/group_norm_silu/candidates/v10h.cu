// kpilot-parent: v10g sha256 1024f06cbf6826997f74bd8287bfde5d9a2954f3b0b616ea92fe077ce7d29c14
// Candidate v10h for tasks/group_norm_silu: v10g with each thread's fp32 sums folded into fp64
// after every chunk (prediction and outcome in NOTES.md). A review's CPU emulation showed v10g
// less accurate than upstream on exactly constant fp32 groups whose value fp32 cannot hold (e.g.
// const(0.3) on a 2^18 group: every output out of tolerance, upstream none): v10g's fp32 chain was
// the whole slice of a thread (up to ~256 elements), upstream's is 32 (one 4096-element block of
// 128 threads) before its block sum. v10h's fp32 chain is one chunk of the thread's slice (at most
// 28 elements: a cluster holds at most 3.6 MB, 16 CTAs x 512 threads x 8 chunks), then fp64.
// Everything else is v10g's; v10g's notes follow.
//
// kpilot-parent: v10e sha256 ddf40caab191c4f902d8bb7b8453cb48fa6ea51326609d502a354d2e538836d0
// Candidate v10g for tasks/group_norm_silu: v10e without its shift, so that it is never less
// accurate than upstream (prediction and outcome in NOTES.md). Two changes:
//   1. No shift. v10e summed x - K around one shift, the group's first element: with that element
//      far from the mean, fp32 cancelled (the outlier stress rows: 3.15M of 4.19M fp32 outputs out
//      of tolerance, run 20261202T015254Z-cf754ea5). v10f's per-thread shifts still cancelled in
//      the thread whose first element is the outlier (3 outputs out, run 20261202T015617Z-fbde00ab)
//      and its fp64 Chan merges cost up to 13% on production rows. v10g sums x and x^2 in fp32 per
//      thread exactly as upstream's Triton kernels do (E[x^2] - mean^2), but over at most a few
//      hundred elements a thread, and everything after the thread (warp, CTA, cluster) in fp64:
//      the same formula with shorter fp32 chains than upstream's, so never less accurate than it.
//      The group's first element is no longer loaded.
//   2. A failed cudaLaunchKernelEx (cleared) falls back to v9c's code for the row instead of
//      returning KP_CUDA_ERROR, and the path is written only after a successful launch (v10f).
// v10e's, v10c's, v10b's and v10's notes follow (where they describe the shift K, v10g has none).
//
// kpilot-parent: v10c sha256 a8d65975cf11be33624651760214cee34701e727f57aad110c8423c147475b97
// Candidate v10e for tasks/group_norm_silu: v10c with ONE change in the host's plan: a row whose
// best cluster plan needs more than one round on clusters of fewer than 16 CTAs keeps v9c's code.
// Why (H200, copy 4.24-4.27 TB/s): those are the rows whose x (26-67 MB) is too large for the
// card's shared memory in one round but within its 60 MB L2, where v9c's chunked paths read x the
// second time from the L2. On each of them the cluster path was `same` or worse than v9c's code:
// v10c's anchor run 20261201T231536Z-55bc533a against v9c's anchor run 20261201T192917Z-2b8c242a,
// two rounds of clusters of 12: [1,128,5,256,80] 32.38 against 29.91 us (the one `slower` row of
// v10c, 0.986x), [1,256,9,48,128] 31.56 / 31.76, [1,128,17,96,80] 36.11 / 36.38,
// [1,128,5,96,256] 32.71 / 34.69 (the one it wins), reg_fp32_chunked_1x64x4x128x128 20.28 / 17.59,
// reg_bf16_chunked_scalar_b2_2x64x16x128x128 (four rounds) 66.55 / 60.10. v10d (a one-round plan
// wherever one exists, run 20261201T232058Z-af3ad768, 2.1080x) changed no path on the H200: no
// cluster shape holds those rows in one round there; it left the tree (source in commit f5a84a8).
// The multi-round rows on clusters of 16 (groups of 1.5-3.3 MB, 94-214 MB rows) stay on the
// cluster path: v10c beat v9c on every one of them (1.00-1.27x), where v9c reads x twice from DRAM.
// Everything else is v10c's; v10c's, v10b's and v10's notes follow.
//
// v10c: v10b with the fixed cost of a row cut and v10's plan
// model corrected, after v10b's H200 run 20261201T230948Z-89445d44 (2.0904x PASS) and its Nsight
// Compute digests (20261201T230949Z-f60cf9fb, 20261201T230955Z-288cdac8: top stall `barrier`):
//   1. the cluster's last row skips the per-chunk __syncthreads (they only guard the refill);
//   2. the block's and the cluster's sums are combined by warp 0 with shuffles, the CS partials
//      read by CS lanes at once (v10b: thread 0 summed 16 warps serially; threads < C/G each read
//      the CS partials one after another, CS dependent remote loads); every CTA of a cluster still
//      gets the same sums bit for bit (the same butterfly over the same lanes);
//   3. the plan's time model charges a round the slice at the card's rate (v10's charged every
//      CTA past the SM count, preferring fewer, larger slices: v10b's clusters of 5 and 14 ran
//      slower than v10's 6 and 16); sizes 5 and 14 dropped.
// Everything else is v10b's; v10b's and v10's notes follow.
//
// v10b: v10 (commit 11dafdc; left the tree) with three changes
// after its H200 run 20261201T230145Z-685f7811 (2.0763x, gate FAIL on two production rows whose
// groups are 20 and 24 KB, 0.87x and 0.90x):
//   1. groups under 48 KB of x keep v9c's code (kCgMinGroupBytes; v10 lost on every production
//      row with groups of 20-31 KB and won on every one from 51 KB);
//   2. the cluster sizes 5, 7, 10 and 14 join 1-4, 6, 8, 12, 16 (v10's plan put the 47-63 MB rows
//      on clusters of 12 in two rounds, where seven CTAs a group would hold every group at once);
//   3. the channel of a 16-byte vector from a float reciprocal and one correction each way
//      instead of a 32-bit integer division (exact: the element index is under 2^24).
// Everything else is v10's, described below.
//
// v10 (the design): v9c plus ONE new path for contiguous x: a group held in
// the shared memory of a thread-block cluster, x read from DRAM once (one-pass), y written once.
// Every other row runs v9c's code unchanged (v9c.cu is #included whole, its entry renamed).
//
// Why (v9c's H200 anchor run 20261201T192917Z-2b8c242a, 4.24 TB/s copy): the contiguous rows are
// far from the copy bandwidth on every path v9c has for them: the resident path's rows of 10-20 MB
// at 17-27% of copy (e.g. [1,128,5,96,80] 19.7 MB in 18.1 us), the L2-ordered chunked rows of 35-
// 357 MB at 35-53%, the baseline's scalar-affine chunked rows of 101-214 MB at 51-56% (x read
// twice from DRAM: ncu 20261201T192242Z-d15aa619, 1.48x the compulsory bytes). A group of up to
// 16 x 227 KB (3.6 MB of x: 1.8M fp16 elements) fits in the shared memory of one cluster of 16
// CTAs, one CTA an SM: x crosses the DRAM bus once, as in a copy.
//
// The kernel (cg_kernel<T>; cluster of CS CTAs of 512 threads, CS from the host's plan):
//   - CTA q of a cluster owns vectors [q nvc, (q+1) nvc) (16 bytes each) of every group row the
//     cluster takes; rows r = cluster, cluster + clusters, ... (persistent; the grid is at most the
//     clusters resident at once, the occupancy API's count for this cluster shape).
//   - Its slice is loaded by the Tensor Memory Accelerator (cp.async.bulk global -> shared, one
//     thread issues) in CG_K = 8 chunks, each with its own mbarrier; the statistics of chunk k are
//     summed as soon as it lands. Sums are of (x - K), K = the row's first element (one load, the
//     same value in every CTA of the cluster): fp32 per thread, fp64 from the warps on.
//   - The cluster's partial sums meet through distributed shared memory: each CTA writes its
//     (sum, sum of squares) to its own shared memory, barrier.cluster (release / acquire), and
//     every CTA adds all CS partials in rank order (the same order everywhere, so every CTA gets
//     the same mean and rstd bit for bit). The partial slot alternates by row parity: a CTA can
//     write row i+2's slot only after the cluster barrier of row i+1, which every CTA reaches only
//     after reading row i's partials.
//   - mean = K + S/n, var = max(Q/n - (S/n)^2, 0), rstd = 1/sqrt(var + eps) in fp64; per channel
//     a = rstd w_c (fp32); y = silu((x - mean) a + b_c) computed from shared memory in fp32 (fp16/
//     bf16 outputs with v8's one-MUFU tanh form, fp32 outputs with expf and a true division),
//     stored with st.global.cs.v4 (y is not read again here).
//   - Chunk k's buffer is refilled with the cluster's next row as soon as every thread has applied
//     it (__syncthreads, fence.proxy.async, then the bulk copy): the next row's loads overlap this
//     row's stores.
//   - Before leaving, one more cluster barrier: no CTA exits while another may read its partials.
//   No atomics, no global counters, no spin on global memory: the cluster barrier is hardware
//   (the CTAs of a cluster are co-scheduled), so no co-residency assumption beyond the cluster's.
//
// Dispatch (host, contiguous x only; fp16, bf16, fp32): S % V == 0 (a 16-byte vector lies in one
// channel), x and y 16-byte aligned, C/G <= 64, group >= 16 KB of x, rows x CS < 2^31. The plan
// picks the bucket b (1 or 2 CTAs an SM: 227 or 113 KB of shared memory a CTA, the card's own
// numbers) and the cluster size CS in {1, 2, 3, 4, 6, 8, 12, 16} (16: the non-portable size, only
// where the occupancy API places at least one such cluster) minimising a simple time model:
// rounds x (per-CTA slice bytes x max(active CTAs, SMs) x 2 / 4.2 TB/s + 2 us), rounds = ceil(rows
// / clusters resident). Groups larger than the largest cluster's capacity (every production row of
// 302 MB or more), other layouts and shapes: v9c's path, unchanged.
//
// PREDICTION (H200; not measured): see NOTES.md ("v10").

#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "kpilot_abi.h"

// v9c (and through it v9, v8, v5 and the baseline), whole; v9's entry under another symbol.
extern "C" int32_t v9_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("gns_v9_group_norm_silu");
#pragma nv_diag_suppress 1306
#include "v9c.cu"
#pragma nv_diag_default 1306

namespace {

namespace cgx = cooperative_groups;

constexpr int CG_THREADS = 512;
constexpr int CG_WARPS = CG_THREADS / 32;
constexpr int CG_K = 8;          // TMA chunks a slice
constexpr int CG_MAX_CPG = 64;   // channels a group the coefficient table holds
constexpr int CG_MAX_CS = 16;
// Groups of less x than this run v9c's code (v10 took groups from 16 KB and lost on every
// production row with groups of 20-31 KB: run 20261201T230145Z-685f7811).
constexpr int64_t kCgMinGroupBytes = 48 * 1024;

struct CgTail {
    unsigned long long mbar[CG_K];
    double red[2][CG_WARPS];
    double part[2][2];  // [row parity][sum, sum of squares] of this CTA's slice
    float ca[CG_MAX_CPG];
    float cb[CG_MAX_CPG];
    float mean;
};
constexpr int kCgTailBytes = (static_cast<int>(sizeof(CgTail)) + 127) / 128 * 128;

__device__ __forceinline__ uint32_t cg_smem_addr(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void cg_mbar_init(unsigned long long* m) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(cg_smem_addr(m)) : "memory");
}
__device__ __forceinline__ void cg_mbar_expect(unsigned long long* m, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(cg_smem_addr(m)), "r"(bytes)
                 : "memory");
}
__device__ __forceinline__ void cg_mbar_wait(unsigned long long* m, uint32_t parity) {
    asm volatile(
        "{\n\t.reg .pred P1;\n"
        "CG_WAIT:\n\t"
        "mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n\t"
        "@P1 bra CG_DONE;\n\t"
        "bra CG_WAIT;\n"
        "CG_DONE:\n\t}" ::"r"(cg_smem_addr(m)),
        "r"(parity)
        : "memory");
}
__device__ __forceinline__ void cg_bulk_load(void* dst, const void* src, uint32_t bytes, unsigned long long* m) {
    asm volatile(
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
            cg_smem_addr(dst)),
        "l"(src), "r"(bytes), "r"(cg_smem_addr(m))
        : "memory");
}
__device__ __forceinline__ void cg_st_cs(uint4* p, const uint4& v) {
    asm volatile("st.global.cs.v4.b32 [%0], {%1, %2, %3, %4};" ::"l"(p), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
                 : "memory");
}

// silu of t = (x - mean) a + b. fp16/bf16 output: a and b are stored halved, h = t/2 and
// silu(t) = fma(h, tanh.approx(h), h), 0 below h = -4.25 (v8's form and clip: one MUFU op an
// element; its error bound is in v8.cu's header). fp32 output: t / (1 + expf(-t)).
template <typename T>
__device__ __forceinline__ float cg_silu(float d, float a, float c) {
    const float h = __fmaf_rn(d, a, c);
    const float o = __fmaf_rn(h, tanh_approx(h), h);
    return h < -kC8Clip ? 0.0f : o;
}
template <>
__device__ __forceinline__ float cg_silu<float>(float d, float a, float c) {
    const float t = __fmaf_rn(d, a, c);
    return t / (1.0f + expf(-t));
}
template <typename T>
__host__ __device__ constexpr double cg_coef_scale() { return 0.5; }
template <>
__host__ __device__ constexpr double cg_coef_scale<float>() { return 1.0; }

// Vectors [a, e) of chunk k of a slice of `len` vectors, chunks of ck vectors.
__device__ __forceinline__ void cg_chunk(int k, int ck, int len, int* a, int* e) {
    *a = k * ck < len ? k * ck : len;
    *e = *a + ck < len ? *a + ck : len;
}

template <typename T>
__global__ void __launch_bounds__(CG_THREADS, 2)
    cg_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, T* __restrict__ y, int rows,
              int G, int cpg, int S, int nvg, int nvc, int ck, float eps) {
    constexpr int V = Vec<T>::N;
    extern __shared__ __align__(128) unsigned char cg_smem[];
    CgTail& tl = *reinterpret_cast<CgTail*>(cg_smem);
    uint4* buf = reinterpret_cast<uint4*>(cg_smem + kCgTailBytes);
    cgx::cluster_group cl = cgx::this_cluster();
    const int cs = static_cast<int>(cl.num_blocks());
    const int q = static_cast<int>(cl.block_rank());
    const int ncl = static_cast<int>(gridDim.x) / cs;
    const int tid = threadIdx.x;
    const int v0 = q * nvc < nvg ? q * nvc : nvg;
    const int len = (v0 + nvc < nvg ? v0 + nvc : nvg) - v0;
    const uint4* xv = reinterpret_cast<const uint4*>(x);
    uint4* yv = reinterpret_cast<uint4*>(y);
    const int64_t gs = static_cast<int64_t>(nvg) * V;
    const float invS = 1.0f / static_cast<float>(S);

    if (tid == 0) {
#pragma unroll
        for (int k = 0; k < CG_K; ++k) cg_mbar_init(&tl.mbar[k]);
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    int r = static_cast<int>(blockIdx.x) / cs;
    if (tid == 0 && r < rows) {
        for (int k = 0; k < CG_K; ++k) {
            int a, e;
            cg_chunk(k, ck, len, &a, &e);
            if (a >= e) break;
            cg_mbar_expect(&tl.mbar[k], static_cast<uint32_t>(e - a) * 16u);
            cg_bulk_load(buf + a, xv + static_cast<int64_t>(r) * nvg + v0 + a, static_cast<uint32_t>(e - a) * 16u,
                         &tl.mbar[k]);
        }
    }
    for (int it = 0; r < rows; r += ncl, ++it) {
        const int par = it & 1;
        const int g = r % G;
        // Warp 0 computes the coefficients of channels lane and lane + 32 (cpg <= 64).
        float w0 = 0.0f, b0 = 0.0f, w1 = 0.0f, b1 = 0.0f;
        if (tid < cpg) {
            w0 = to_f(__ldg(w + g * cpg + tid));
            b0 = to_f(__ldg(b + g * cpg + tid));
        }
        if (tid < 32 && tid + 32 < cpg) {
            w1 = to_f(__ldg(w + g * cpg + tid + 32));
            b1 = to_f(__ldg(b + g * cpg + tid + 32));
        }
        double sd = 0.0, ssd = 0.0;  // v10h: this thread's sums, fp64 across its chunks
        for (int k = 0; k < CG_K; ++k) {
            int a, e;
            cg_chunk(k, ck, len, &a, &e);
            if (a >= e) break;
            cg_mbar_wait(&tl.mbar[k], static_cast<uint32_t>(par));
            float s = 0.0f, ss = 0.0f;  // one chunk's fp32 sums (as upstream's per-thread sums)
            for (int i = a + tid; i < e; i += CG_THREADS) {
                Vec<T> v;
                v.raw = buf[i];
#pragma unroll
                for (int j = 0; j < V; ++j) {
                    const float d = v.get(j);  // v10g: no shift, as upstream
                    s += d;
                    ss = fmaf(d, d, ss);
                }
            }
            sd += static_cast<double>(s);
            ssd += static_cast<double>(ss);
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            sd += __shfl_xor_sync(0xffffffffu, sd, o);
            ssd += __shfl_xor_sync(0xffffffffu, ssd, o);
        }
        if ((tid & 31) == 0) {
            tl.red[0][tid >> 5] = sd;
            tl.red[1][tid >> 5] = ssd;
        }
        __syncthreads();
        if (tid < 32) {  // the block's sums: warp 0, a fixed butterfly
            double S0 = tid < CG_WARPS ? tl.red[0][tid] : 0.0, Q0 = tid < CG_WARPS ? tl.red[1][tid] : 0.0;
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) {
                S0 += __shfl_xor_sync(0xffffffffu, S0, o);
                Q0 += __shfl_xor_sync(0xffffffffu, Q0, o);
            }
            if (tid == 0) {
                tl.part[par][0] = S0;
                tl.part[par][1] = Q0;
            }
        }
        cl.sync();  // every CTA's partials of row r visible in the cluster
        if (tid < 32) {
            // Lane j reads rank j's partials (all at once), then the same butterfly in every CTA:
            // every CTA of the cluster gets the same sums, bit for bit.
            double S0 = 0.0, Q0 = 0.0;
            if (tid < cs) {
                const double* p = cl.map_shared_rank(&tl.part[par][0], tid);
                S0 = p[0];
                Q0 = p[1];
            }
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) {
                S0 += __shfl_xor_sync(0xffffffffu, S0, o);
                Q0 += __shfl_xor_sync(0xffffffffu, Q0, o);
            }
            const double n = static_cast<double>(gs);
            const double m = S0 / n;
            double var = Q0 / n - m * m;
            if (var < 0.0) var = 0.0;
            const double rstd = 1.0 / sqrt(var + static_cast<double>(eps));
            if (tid < cpg) {
                tl.ca[tid] = static_cast<float>(rstd * static_cast<double>(w0) * cg_coef_scale<T>());
                tl.cb[tid] = static_cast<float>(static_cast<double>(b0) * cg_coef_scale<T>());
            }
            if (tid + 32 < cpg) {
                tl.ca[tid + 32] = static_cast<float>(rstd * static_cast<double>(w1) * cg_coef_scale<T>());
                tl.cb[tid + 32] = static_cast<float>(static_cast<double>(b1) * cg_coef_scale<T>());
            }
            if (tid == 0) tl.mean = static_cast<float>(m);
        }
        __syncthreads();
        const float mean = tl.mean;
        const bool more = r + ncl < rows;
        for (int k = 0; k < CG_K; ++k) {
            int a, e;
            cg_chunk(k, ck, len, &a, &e);
            if (a >= e) break;
            for (int i = a + tid; i < e; i += CG_THREADS) {
                Vec<T> v;
                v.raw = buf[i];
                const int el = (v0 + i) * V;
                int c = __float2int_rz(__int2float_rn(el) * invS);  // el < 2^24: off by at most one
                c -= c * S > el;
                c += (c + 1) * S <= el;
                const float A = tl.ca[c], Bc = tl.cb[c];
#pragma unroll
                for (int j = 0; j < V; ++j) v.set(j, cg_silu<T>(__fsub_rn(v.get(j), mean), A, Bc));
                cg_st_cs(yv + static_cast<int64_t>(r) * nvg + v0 + i, v.raw);
            }
            if (!more) continue;  // the cluster's last row: no refill, no barrier
            __syncthreads();      // chunk k read by every thread
            if (tid == 0) {
                asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
                cg_mbar_expect(&tl.mbar[k], static_cast<uint32_t>(e - a) * 16u);
                cg_bulk_load(buf + a, xv + static_cast<int64_t>(r + ncl) * nvg + v0 + a,
                             static_cast<uint32_t>(e - a) * 16u, &tl.mbar[k]);
            }
        }
    }
    cl.sync();  // no CTA leaves while another may still read its partials
}

// ---- host: the card, the plan, the launch ----

constexpr int kCgSizes[] = {1, 2, 3, 4, 6, 7, 8, 10, 12, 16};
constexpr int kCgNSizes = static_cast<int>(sizeof(kCgSizes) / sizeof(kCgSizes[0]));

struct CgCard {
    int sms = 0;
    int buf_bytes[2] = {0, 0};          // slice bytes a CTA holds in bucket b (1 or 2 CTAs an SM)
    int clusters[2][kCgNSizes] = {};    // clusters resident at once per bucket and size (0: not placeable)
};

template <typename T>
const CgCard& cg_card() {
    // One entry per device, as v5's cards (kpilot's worker uses one device and one host thread).
    static CgCard cards[kMaxDevices + 1];
    static bool filled[kMaxDevices + 1] = {};
    int cur = 0;
    if (cudaGetDevice(&cur) != cudaSuccess || cur < 0 || cur >= kMaxDevices) {
        cudaGetLastError();
        return cards[kMaxDevices];  // sms 0: the path is off
    }
    CgCard& card = cards[cur];
    if (filled[cur]) return card;
    filled[cur] = true;
    int sms = 0, per_sm = 0, optin = 0, reserved = 0;
    const void* fn = reinterpret_cast<const void*>(cg_kernel<T>);
    bool ok = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, cur) == cudaSuccess &&
              cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, cur) == cudaSuccess &&
              cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, cur) == cudaSuccess &&
              cudaDeviceGetAttribute(&reserved, cudaDevAttrReservedSharedMemoryPerBlock, cur) == cudaSuccess &&
              cudaFuncSetAttribute(fn, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) == cudaSuccess;
    int dyn[2] = {0, 0};
    for (int bk = 0; ok && bk < 2; ++bk) {
        int d = per_sm / (bk + 1) - reserved - 256;  // 256: static shared memory and slack
        if (d > optin) d = optin;
        d = d / 128 * 128;
        dyn[bk] = d;
        card.buf_bytes[bk] = (d - kCgTailBytes) / (16 * CG_K) * (16 * CG_K);
        if (card.buf_bytes[bk] <= 0) ok = false;
    }
    if (ok) ok = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, dyn[0]) == cudaSuccess;
    for (int bk = 0; ok && bk < 2; ++bk) {
        for (int i = 0; i < kCgNSizes; ++i) {
            cudaLaunchConfig_t cfg = {};
            cudaLaunchAttribute attr[1];
            attr[0].id = cudaLaunchAttributeClusterDimension;
            attr[0].val.clusterDim.x = static_cast<unsigned int>(kCgSizes[i]);
            attr[0].val.clusterDim.y = 1;
            attr[0].val.clusterDim.z = 1;
            cfg.gridDim = dim3(static_cast<unsigned int>(kCgSizes[i]));
            cfg.blockDim = dim3(CG_THREADS);
            cfg.dynamicSmemBytes = static_cast<size_t>(dyn[bk]);
            cfg.attrs = attr;
            cfg.numAttrs = 1;
            int n = 0;
            if (cudaOccupancyMaxActiveClusters(&n, fn, &cfg) != cudaSuccess) n = 0;
            card.clusters[bk][i] = n;
        }
    }
    cudaGetLastError();
    card.sms = ok ? sms : 0;
    return card;
}

struct CgPlan {
    int bk, cs, clusters, nvc, ck;
    size_t dyn;
};

// The plan for a contiguous row (the caller tested the layout): false when the path does not take it.
template <typename T>
bool cg_plan(int64_t B, int64_t C, int64_t S, int G, const void* x, const void* y, CgPlan* p) {
    constexpr int V = Vec<T>::N;
    const int64_t cpg = C / G, gs = cpg * S, rows = B * G;
    const int64_t gbytes = gs * static_cast<int64_t>(sizeof(T));
    if (S % V != 0 || cpg > CG_MAX_CPG || gbytes < kCgMinGroupBytes) return false;
    if ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(y)) % 16 != 0) return false;
    if (gbytes > static_cast<int64_t>(CG_MAX_CS) * 232448 || rows > (int64_t(1) << 26)) return false;
    const CgCard& card = cg_card<T>();
    if (card.sms <= 0) return false;
    const int64_t nvg = gs / V;
    double best = 1e300;
    bool found = false;
    for (int bk = 0; bk < 2; ++bk) {
        for (int i = 0; i < kCgNSizes; ++i) {
            const int cs = kCgSizes[i];
            const int64_t ncl_res = card.clusters[bk][i];
            if (ncl_res <= 0) continue;
            const int64_t nvc = (nvg + cs - 1) / cs;
            if (nvc * 16 > card.buf_bytes[bk]) continue;
            const int64_t ncl = rows < ncl_res ? rows : ncl_res;
            const int64_t rounds = (rows + ncl - 1) / ncl;
            // v10c: the slice at the card's rate (v10's model charged every CTA past the SM count,
            // and so preferred fewer, larger slices; the runs preferred more CTAs).
            const double t = static_cast<double>(rounds) *
                             (static_cast<double>(nvc * 16) * static_cast<double>(card.sms) * 2.0 / 4.2e6 + 2.0);
            if (t < best * 0.999) {  // ties: the first (smaller cluster, the fuller bucket)
                best = t;
                found = true;
                const int64_t ck = (nvc + CG_K - 1) / CG_K;
                p->bk = bk;
                p->cs = cs;
                p->clusters = static_cast<int>(ncl);
                p->nvc = static_cast<int>(nvc);
                p->ck = static_cast<int>(ck);
                p->dyn = static_cast<size_t>(kCgTailBytes) + static_cast<size_t>(nvc) * 16;
            }
        }
    }
    // v10e: more than one round on clusters of fewer than 16: v9c's code (the header).
    if (found) {
        const int64_t rounds = (rows + p->clusters - 1) / p->clusters;
        if (rounds > 1 && p->cs < CG_MAX_CS) return false;
    }
    return found;
}

template <typename T>
bool try_cg(kp_call* call, cudaStream_t s, int32_t* rc) {
    const kp_tensor& xt = call->tensors[0];
    const T* x = static_cast<const T*>(xt.data);
    const T* w = static_cast<const T*>(call->tensors[1].data);
    const T* b = static_cast<const T*>(call->tensors[2].data);
    T* y = static_cast<T*>(call->tensors[3].data);
    const int G = static_cast<int>(call->scalars[0]);
    const float eps = static_cast<float>(call->scalars[1]);
    const int64_t B = xt.shape[0], C = xt.shape[1];
    int64_t S = 1;
    for (int d = 2; d < xt.rank; ++d) S *= xt.shape[d];
    CgPlan p;
    if (!cg_plan<T>(B, C, S, G, x, y, &p)) return false;
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = static_cast<unsigned int>(p.cs);
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    cfg.gridDim = dim3(static_cast<unsigned int>(p.clusters * p.cs));
    cfg.blockDim = dim3(CG_THREADS);
    cfg.dynamicSmemBytes = p.dyn;
    cfg.stream = s;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    const int64_t nvg = C / G * S / Vec<T>::N;
    const cudaError_t e =
        cudaLaunchKernelEx(&cfg, cg_kernel<T>, x, w, b, y, static_cast<int>(B * G), G, static_cast<int>(C / G),
                           static_cast<int>(S), static_cast<int>(nvg), p.nvc, p.ck, eps);
    if (e != cudaSuccess) {  // v10g (as v10f): nothing launched; v9c's code takes the row
        cudaGetLastError();
        return false;
    }
    snprintf(call->path, KP_PATH_LEN, "cluster_onepass_cs%d_b%d_ncl%d", p.cs, p.bk + 1, p.clusters);
    *rc = launched(call);
    return true;
}

template <typename T>
int32_t v10_run(kp_call* call, cudaStream_t s) {
    int32_t rc = KP_OK;
    if (is_contiguous(call->tensors[0]) && try_cg<T>(call, s, &rc)) return rc;
    return v9_run<T>(call, s);
}

}  // namespace

extern "C" int32_t v10_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("kp_group_norm_silu");

extern "C" int32_t v10_group_norm_silu(kp_call* call, void* stream_ptr) {
    // Every check of the baseline's entry, as v9: a call that fails one goes to the baseline's entry.
    if (!resident_call(call)) return baseline_group_norm_silu(call, stream_ptr);
    cudaStream_t s = static_cast<cudaStream_t>(stream_ptr);
    const int32_t dt = call->tensors[0].dtype;
    if (dt == KP_F16) return v10_run<__half>(call, s);
    if (dt == KP_BF16) return v10_run<__nv_bfloat16>(call, s);
    return v10_run<float>(call, s);
}
