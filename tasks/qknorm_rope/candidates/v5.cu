// kpilot-parent: v4b sha256 e8b94169468e2fa29976b694fe1326b97f21b5d71aa49ce539786c84cfb13947
// Candidate v5 for tasks/qknorm_rope: v4b's design (v2b's item, a per-warp ring of shared-memory
// slots filled by TMA bulk copies) with the rotation done in place on the slot and the finished
// rows written back by TMA bulk stores, so that no item's data lives in registers en masse and
// three CTAs of 256 fit an SM without a register cap.
//
// Why (NOTES.md, "v4 / v4b" and its ncu digest): v4b (run 20261201T034141Z-df2dbc67, H200) is at
// 82.4-87.5% of copy and 90.6-91.8% of its stream reference on the large rows; ncu of v4b on joyai
// T7904 (20261201T040622Z-92c141eb) finds it latency-bound at 24% of warps active: 106 registers,
// 2 CTAs of 256 an SM, DRAM 71% of peak. v4c (v4b forced to 80 registers, 3 CTAs) lost (0.992x,
// run 20261201T035156Z-58a719ad; NOTES: fewer registers cost more than the extra CTA bought). v5
// removes live state instead of capping it.
//
// What changes against v4b's kernel (qk_tma_ring_kernel; everything else is v4b's, included below):
//   * The item (8 heads of one token, 4 rows a half-warp, 16 lanes x 8 elements a row) is read
//     from its slot twice: once for the two partial sums of each row (4 LDS.128 a lane; only the 8
//     sums stay live through the butterfly), and once row by row for the rotation, each result
//     written back over its input in the slot (STS.128). The weights come from a per-warp copy in
//     shared memory, one LDS.128 a row. Every shared access is `ld/st.volatile.shared`: with plain
//     ones ptxas sank the four stores below the whole item and kept four rows of outputs and of
//     nf * w live (92-96 registers, measured on this code before the change).
//   * Out: after `fence.proxy.async.shared::cta` and `__syncwarp`, lane 0 writes the item's q run
//     and k run back with `cp.async.bulk.global.shared::cta.bulk_group` (one group an item); no
//     STG. In: lane 0 alone issues the item's bulk copies (q run, k run where it straddles, the
//     512-byte cache row) on the slot's mbarrier, as v4b's lanes 0-2 did.
//   * Ring: S = 3 slots a warp with one item of store slack (L = 1): in the middle of item n
//     (after its butterfly) lane 0 waits until item n-1's bulk store, issued at the end of n-1,
//     has read its slot (`cp.async.bulk.wait_group.read 0`) and refills that slot with item n+2.
//     So items n+1 and n+2 are in flight during the rotation of item n, as in v4b (which copies a
//     slot to registers and refills it at once), with 1.5x v4b's warps.
//   * Cursors (token, item-of-token) without the flat item index (t < n ends the loop); no
//     division in the loop (v4b's advance); positions loaded by lane 0 right after an item's proxy
//     fence, one to two items before their refill (a fence never waits on a position load).
//   * Launch: 256-thread CTAs, 8 x 3 x 2568 + 8 x 512 = 65728 bytes of dynamic shared memory, the
//     largest carveout, occupancy queried once per device, persistent grid min(occ x SMs,
//     ceil(items / 8)), PDL as v4b. At exit lane 0 waits for all its bulk groups to complete.
// Per row the math is v2b's / v4b's (v2_parts, butterfly 8/4/2/1, rsqrt, v2_norm_rope: the same
// operations in the same order on the same bits), so the outputs are bit-identical to v4b's.
//
// ptxas (nvcc 13.0, sm_90a, the task's flags), qk_v5_kernel<bf16, int64_t, 3, 1, 1> (production):
// 64 registers, 0 spill, 0 stack (every dtype / index instantiation 64), no register cap
// (__launch_bounds__(256, 1)); 65728 bytes dynamic shared memory. CTAs an SM: 4 by registers
// (64 x 256 x 4 = 65536), 3 by shared memory (3 x (64.2 + 1) KB <= 228 KB < 4 x 65.2 KB): 3, i.e.
// 24 warps an SM (37.5% occupancy) against v4b's 16 (25%; ncu: 24% of warps active). ~1420 SASS
// instructions, the loop ~690 static (v4b ~640): 14 LDS.128 + 4 STS.128 a lane, 32 SHFL, 4
// MUFU.RSQ, up to 3 UBLKCP in and 2 out (lane 0), 1 MEMBAR.ALL.CTA + FENCE.VIEW.ASYNC.S (the proxy
// fence), 1 LDG.E.64 (a position, after the fence); no STG, no local memory. (With the refill at
// the item's end instead of mid-item, ptxas took 71-72 registers: 3 CTAs by registers too.)
//
// Where: v4b's v4 path exactly (bf16/fp16, head_dim 128, interleaved, rope_dim 128, 16-byte
// vectors, heads 256 bytes apart, at least 65536 (token, head) rows): every large production row.
// Everything else goes to v4b's entry point unchanged (v2b's kernel or the baseline's; the tiny
// production rows keep `half_warp_d128_r128_interleaved_vec`).
// Path: v5_tma_inplace_s3_l1_m1_d128_r128_interleaved_vec.
//
// Prediction (H200, against v4b's run 20261201T034141Z-df2dbc67, copy 4.23 TB/s; NOTES.md "v5"):
// joyai T7904 ~69.3 us (89.8% of copy, 93.4% of stream), qwen-edit T8424 ~56.2 us (88.9%, 93.2%),
// qwen T4096 ~28.9 us (84.1%, 92.4%), zimage T4096 / T4128 ~35.3 / ~35.8 us (85.7% / 85.2%,
// 92.6% / 92.0%): 1-2.5% under v4b's us, each within [-4%, +3%] of v4b; tiny rows `same`.

#define kp_fused_inplace_qknorm_rope v4b_fused_inplace_qknorm_rope
#include "v4b.cu"
#undef kp_fused_inplace_qknorm_rope

namespace {

// ---------------------------------------------------------------------------------------------
// v5: v4b's ring (kV4* sizes, v4_mbar_*, v4_bulk_g2s) with the rotation in place on the slot and
// TMA bulk stores; v2b's per-row math (v2_parts, v2_norm_rope).
// ---------------------------------------------------------------------------------------------

// Volatile shared-memory accesses: ptxas keeps them in program order (plain ld/st.shared at
// distinct constant offsets it reorders freely, and it sank the four row stores below the whole
// item's math, keeping four rows of outputs and their nf * w products live: 92+ registers).
__device__ __forceinline__ void v5_sts128(uint32_t a, const uint4& v) {
    asm volatile("st.volatile.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(a), "r"(v.x), "r"(v.y), "r"(v.z),
                 "r"(v.w)
                 : "memory");
}

__device__ __forceinline__ uint4 v5_lds128(uint32_t a) {
    uint4 v;
    asm volatile("ld.volatile.shared.v4.u32 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "r"(a)
                 : "memory");
    return v;
}

// Generic-proxy writes to shared memory made visible to the async proxy (the bulk store).
__device__ __forceinline__ void v5_fence_proxy_async_smem() {
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

__device__ __forceinline__ void v5_bulk_s2g(void* dst, uint32_t src, uint32_t bytes) {
    asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;\n" ::"l"(dst), "r"(src), "r"(bytes)
                 : "memory");
}

__device__ __forceinline__ void v5_bulk_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }

// At most N of this thread's committed bulk groups still reading their shared-memory source.
template <int N>
__device__ __forceinline__ void v5_bulk_wait_read() {
    asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(N) : "memory");
}

// Every bulk group of this thread complete (its global writes performed).
__device__ __forceinline__ void v5_bulk_wait_all() { asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory"); }

// A warp's item as (token t, item-of-token j); item t * ipt + j exists while t < n. Advanced by the
// grid stride (qs tokens and rs items, stride = qs * ipt + rs) without a division; v4b's V3Cursor
// without the flat item index, which v5 does not need (one register less a cursor).
struct V5Cursor {
    uint32_t t, j;
};

__device__ __forceinline__ void v5_advance(V5Cursor& c, uint32_t qs, uint32_t rs, uint32_t ipt) {
    c.t += qs;
    c.j += rs;
    if (c.j >= ipt) {
        c.j -= ipt;
        c.t += 1;
    }
}

template <typename T, typename IdT, int S, int L, int MINB>
__global__ void __launch_bounds__(kBlock, MINB) qk_v5_kernel(const __grid_constant__ Params p) {
    static_assert(L == 0 || L == 1, "store slack: 0 or 1 items");
    static_assert(S - L >= 2, "two items ahead");
    constexpr int D = 128;
    constexpr uint32_t kWarps = kBlock / 32;
    extern __shared__ __align__(128) unsigned char v5_smem[];

    const uint32_t lane = threadIdx.x % 32;
    const uint32_t rl = lane % 16;
    const uint32_t hw = lane / 16;
    const uint32_t warp = threadIdx.x / 32;
    const uint32_t first = blockIdx.x * kWarps + warp;
    const uint32_t stride = gridDim.x * kWarps;
    const uint32_t hq = p.hq;
    const uint32_t heads = hq + p.hk;
    const uint32_t ipt = (heads + kItemRows - 1) / kItemRows;
    const uint32_t n = p.n;
    const uint32_t items = ipt * n;
    const uint32_t qs = stride / ipt;
    const uint32_t rs = stride - qs * ipt;

    const uint32_t smem0 = static_cast<uint32_t>(__cvta_generic_to_shared(v5_smem));
    const uint32_t ring = smem0 + warp * (uint32_t(S) * kV4SlotBytes);
    const uint32_t bars = smem0 + kWarps * uint32_t(S) * kV4SlotBytes + warp * uint32_t(S) * 8u;
    // This warp's copy of both weight vectors (q's 256 bytes, then k's), after every ring and barrier.
    const uint32_t wts = smem0 + kWarps * uint32_t(S) * (kV4SlotBytes + 8u) + warp * 2u * kV4RowBytes;
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
        // Lane 0 alone moves data: the item's q run, k run (where it straddles) and cache row in,
        // and (after the compute) its q and k runs out of the same slot.
        auto load_item = [&](uint32_t t, uint32_t j, int64_t ps, uint32_t dst, uint32_t bar) {
            const uint32_t h0 = j * kItemRows;
            const uint32_t hend = h0 + kItemRows < heads ? h0 + kItemRows : heads;
            v4_mbar_expect(bar, (hend - h0) * kV4RowBytes + kV4CacheBytes);
            const uint32_t e = hend < hq ? hend : hq;
            if (h0 < e)
                v4_bulk_g2s(dst, byte_at(p.q, int64_t(t) * p.q_tok_b, int64_t(h0) * kV4RowBytes),
                            (e - h0) * kV4RowBytes, bar);
            const uint32_t b = h0 > hq ? h0 : hq;
            if (b < hend)
                v4_bulk_g2s(dst + (b - h0) * kV4RowBytes,
                            byte_at(p.k_base, int64_t(t) * p.k_tok_b, int64_t(b) * kV4RowBytes),
                            (hend - b) * kV4RowBytes, bar);
            v4_bulk_g2s(dst + kItemRows * kV4RowBytes, byte_at(p.cache, ps * int64_t(kV4CacheBytes), 0),
                        kV4CacheBytes, bar);
        };
        auto store_item = [&](uint32_t t, uint32_t j, uint32_t src) {
            const uint32_t h0 = j * kItemRows;
            const uint32_t hend = h0 + kItemRows < heads ? h0 + kItemRows : heads;
            const uint32_t e = hend < hq ? hend : hq;
            if (h0 < e)
                v5_bulk_s2g(static_cast<char*>(p.q) + (int64_t(t) * p.q_tok_b + int64_t(h0) * kV4RowBytes), src,
                            (e - h0) * kV4RowBytes);
            const uint32_t b = h0 > hq ? h0 : hq;
            if (b < hend)
                v5_bulk_s2g(static_cast<char*>(p.k_base) + (int64_t(t) * p.k_tok_b + int64_t(b) * kV4RowBytes),
                            src + (b - h0) * kV4RowBytes, (hend - b) * kV4RowBytes);
            v5_bulk_commit();
        };

        // Lane l < 16 copies chunk l of q's weight, lane 16 + l chunk l of k's: wts + lane * 16.
        v5_sts128(wts + lane * 16u, *(static_cast<const uint4*>(hw == 0 ? p.qw : p.kw) + rl));
        __syncwarp();

        V5Cursor cur;
        cur.t = first / ipt;
        cur.j = first - cur.t * ipt;
        V5Cursor pf = cur;
        if (lane == 0) {
            int64_t pps[S];
            V5Cursor c = pf;
#pragma unroll
            for (int s = 0; s < S; ++s) {
                pps[s] = c.t < n ? v2_position<IdT>(p, c.t) : 0;
                v5_advance(c, qs, rs, ipt);
            }
#pragma unroll
            for (int s = 0; s < S; ++s) {
                if (pf.t < n) load_item(pf.t, pf.j, pps[s], ring + uint32_t(s) * kV4SlotBytes, bars + 8u * s);
                v5_advance(pf, qs, rs, ipt);
            }
        } else {
#pragma unroll
            for (int s = 0; s < S; ++s) v5_advance(pf, qs, rs, ipt);
        }
        // Positions (lane 0): pf_ps for the next refill. Every position load is issued right after
        // an item's proxy fence (MEMBAR.ALL.CTA), and consumed no earlier than an item later, so no
        // fence ever waits on one in flight: at L = 1 (refill mid-item) pf_ps2 holds the refill
        // after next, loaded at the end of item n for the refill in the middle of item n + 2.
        int64_t pf_ps = (lane == 0 && pf.t < n) ? v2_position<IdT>(p, pf.t) : 0;
        int64_t pf_ps2 = 0;
        if constexpr (L == 1) {
            V5Cursor c2 = pf;
            v5_advance(c2, qs, rs, ipt);
            if (lane == 0 && c2.t < n) pf_ps2 = v2_position<IdT>(p, c2.t);
        }

        uint32_t slot = 0, parity = 0;
        uint32_t prev = uint32_t(S) - 1;  // slot of the previous item (L == 1)
        bool have_prev = false;
        do {
            const uint32_t sa = ring + slot * kV4SlotBytes;
            v4_mbar_wait(bars + 8u * slot, parity);

            float part[kTokU][2];
#pragma unroll
            for (int u = 0; u < kTokU; ++u) {
                const uint4 x = v5_lds128(sa + rd_x + uint32_t(u) * 2u * kV4RowBytes);
                v2_parts<T>(x, part[u][0], part[u][1]);
            }
#pragma unroll
            for (int m = 8; m >= 1; m >>= 1) {
#pragma unroll
                for (int u = 0; u < kTokU; ++u) {
                    part[u][0] += __shfl_xor_sync(0xffffffffu, part[u][0], m);
                    part[u][1] += __shfl_xor_sync(0xffffffffu, part[u][1], m);
                }
            }
            bool refilled = false;  // warp-uniform
            if constexpr (L == 1) {
                // Mid-item refill: the previous item's slot, once its bulk store (issued at the end
                // of that item) has read it, gets item n - 1 + S (n + 2 at S = 3).
                refilled = have_prev && pf.t < n;
                if (lane == 0) {
                    v5_bulk_wait_read<0>();
                    if (refilled) load_item(pf.t, pf.j, pf_ps, ring + prev * kV4SlotBytes, bars + 8u * prev);
                }
                if (refilled) v5_advance(pf, qs, rs, ipt);
            }
            const uint4 cu = v5_lds128(sa + rd_c);
            const uint4 su = v5_lds128(sa + rd_c + kV4CacheBytes / 2);
            const float4 c4 = make_float4(__uint_as_float(cu.x), __uint_as_float(cu.y), __uint_as_float(cu.z),
                                          __uint_as_float(cu.w));
            const float4 s4 = make_float4(__uint_as_float(su.x), __uint_as_float(su.y), __uint_as_float(su.z),
                                          __uint_as_float(su.w));
            const uint32_t hb = cur.j * kItemRows + hw;
#pragma unroll
            for (int u = 0; u < kTokU; ++u) {
                const bool is_q = hb + 2u * u < hq;
                const float nf = rsqrtf((part[u][0] + part[u][1]) / static_cast<float>(D) + p.eps);
                const uint4 w = v5_lds128(wts + (is_q ? 0u : kV4RowBytes) + rl * 16u);
                const uint32_t a = sa + rd_x + uint32_t(u) * 2u * kV4RowBytes;
                v5_sts128(a, v2_norm_rope<T>(v5_lds128(a), w, nf, c4, s4));
            }
            v5_fence_proxy_async_smem();
            __syncwarp();

            if (lane == 0) store_item(cur.t, cur.j, sa);
            if constexpr (L == 1) {
                if (refilled) {  // pf moved on: rotate the positions, load the one after next
                    pf_ps = pf_ps2;
                    V5Cursor c2 = pf;
                    v5_advance(c2, qs, rs, ipt);
                    if (lane == 0 && c2.t < n) pf_ps2 = v2_position<IdT>(p, c2.t);
                }
            } else {
                // End-of-item refill: this slot, once the store just issued has read it, gets
                // item n + S (n + 2 at S = 2).
                const bool refill = pf.t < n;  // warp-uniform
                if (lane == 0) {
                    v5_bulk_wait_read<0>();
                    if (refill) load_item(pf.t, pf.j, pf_ps, sa, bars + 8u * slot);
                }
                if (refill) {
                    v5_advance(pf, qs, rs, ipt);
                    if (lane == 0 && pf.t < n) pf_ps = v2_position<IdT>(p, pf.t);
                }
            }
            // No lane writes a slot again before lane 0's bulk store has read it: the next write
            // to a slot follows a wait on its barrier, whose phase completes only after lane 0's
            // refill, issued after that read.
            have_prev = true;
            prev = slot;
            v5_advance(cur, qs, rs, ipt);
            if (++slot == uint32_t(S)) {
                slot = 0;
                parity ^= 1u;
            }
        } while (cur.t < n);
        if (lane == 0) v5_bulk_wait_all();
    }

    grid_dep_launch();
}


// The knob v5b turns (it defines these three before including this file): slots a warp (S), the
// store slack in items (L; L = 1 needs S >= 3) and the CTAs an SM asked of ptxas (MINB, 1: none).
#ifndef KP_V5_STAGES
#define KP_V5_STAGES 3
#endif
#ifndef KP_V5_SLACK
#define KP_V5_SLACK 1
#endif
#ifndef KP_V5_MIN_BLOCKS
#define KP_V5_MIN_BLOCKS 1
#endif
constexpr int kV5Stages = KP_V5_STAGES;
constexpr int kV5Slack = KP_V5_SLACK;
constexpr int kV5MinBlocks = KP_V5_MIN_BLOCKS;

template <int S>
constexpr uint32_t v5_smem_bytes() {
    return kWarpsPerBlock * (uint32_t(S) * (kV4SlotBytes + 8u) + 2u * kV4RowBytes);
}

template <typename T, typename IdT, int S, int L, int MINB>
int32_t run_v5(const Problem& pr, cudaStream_t st) {
    constexpr auto kKernel = qk_v5_kernel<T, IdT, S, L, MINB>;
    constexpr uint32_t kSmem = v5_smem_bytes<S>();
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

    // v4b's v4 path, restated from its entry point: the half-warp layout (D 128, interleaved) with
    // 16-byte vectors (q, k, weights and cache aligned, token strides multiples of 16 bytes), full
    // rotary, at least kV2MinRows rows, heads 256 bytes apart. Anything else: v4b's entry point.
    const ParamsR& p = pr.p;
    const bool v5 = pr.D == 128 && !pr.neox && pr.R == 128 && aligned_to(p.q, 16) && aligned_to(pr.k_data, 16) &&
                    aligned_to(p.qw, 16) && aligned_to(p.kw, 16) && aligned_to(p.cache, 16) && p.q_tok_b % 16 == 0 &&
                    p.k_tok_b % 16 == 0 && p.head_b == int64_t(kV4RowBytes) && pr.N * pr.heads >= kV2MinRows;
    if (!v5) return v4b_fused_inplace_qknorm_rope(call, stream);

    constexpr int S = kV5Stages, L = kV5Slack, B = kV5MinBlocks;
    char path[KP_PATH_LEN];
    snprintf(path, sizeof path, "v5_tma_inplace_s%d_l%d_m%d_d128_r128_interleaved_vec", S, L, B);
    set_path(call, path);
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    if (pr.dtype == KP_BF16) {
        return pr.id_dtype == KP_I64 ? run_v5<bf16, int64_t, S, L, B>(pr, st) : run_v5<bf16, int32_t, S, L, B>(pr, st);
    }
    return pr.id_dtype == KP_I64 ? run_v5<f16, int64_t, S, L, B>(pr, st) : run_v5<f16, int32_t, S, L, B>(pr, st);
}
