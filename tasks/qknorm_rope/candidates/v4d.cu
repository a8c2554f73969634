// kpilot-parent: v4b sha256 e8b94169468e2fa29976b694fe1326b97f21b5d71aa49ce539786c84cfb13947
// Candidate v4d for tasks/qknorm_rope: v4b (#included whole, its entry under another symbol) with
// ONE change in its TMA-ring kernel: where the position that addresses an item's cos/sin row comes
// from.
//
// Why (measured). Source-level stall sampling of v4b's kernel on joyai-edit T7904 H32 (NVIDIA H200,
// ncu --set full, one call after two warm-ups, --clock-control none; the SASS CSV came back from the
// GPU machine but is not a ledger record, so its counts are quoted here only as the reason for this
// version): of 7704 warp samples, 566 sit on `LEA R64, R2, ...` (lane 2 forming the cache-row address
// from the position's LDG, all long_scoreboard), 657 on the issuing loop's `BRA.U.ANY` after it
// (635 long_scoreboard), and 502 on the slot's mbarrier wait (the data itself). v4b loads the
// position of the item it refills next one loop iteration before the refill; with S = 2 items in
// flight a warp's iteration is about half a DRAM round trip, so the position is still in flight when
// the refill needs it, and the refill (and its bytes in flight) waits for it. A deeper ring (v4, S =
// 4) made iterations shorter still, which fits v4 losing to v4b.
//
// Change: lane i of a warp holds the position of the warp's item 32 b + i (batch b), loaded when
// the warp starts consuming batch b - 1, so a position is loaded about 32 items before its refill;
// the refill takes it by one shuffle from the lane that holds it. Two batches live (4 registers a
// lane instead of v4b's one 2-register prefetch); each lane divides once a batch (item / items per
// token). Everything else is v4b's kernel line for line: ring, barriers, copies, math, stores, grid,
// PDL, host gate, and every other path (v4b's entry takes every call the ring does not).
// QK_V4D_STAGES (default v4b's 2) is the ring depth, the one knob v4e changes.
//
// PREDICTION (H200, against v4b in the same lease): every row correct and bit-identical to v4b
// (the same position, the same bytes and math); the ring rows faster: joyai T7904 and qwen-edit T8424
// 2-5% (v4b 70.9-71.2 and 57.4-57.6 us in runs 20261203T185405Z-8e5c2431 and
// 20261203T185448Z-ef216528), the T4096/T4128 rows (about 12 items a warp, so the position waits were
// a larger share) 2-6%; tiny rows `same` (v4b's code). If the warps instead wait on DRAM for the
// data once the position is early, the rows stay within 1% of v4b.
// Path: v4d_tma_ring_pb32_s<S>_b256x2_d128_r128_interleaved_vec on the ring rows, v4b's elsewhere.

#include <stdint.h>

#include "kpilot_abi.h"

extern "C" int32_t kp_fused_inplace_qknorm_rope(kp_call* call, void* stream) __asm__("qk_v4b_fused_inplace_qknorm_rope");
#pragma nv_diag_suppress 1306
#include "v4b.cu"
#pragma nv_diag_default 1306

#ifndef QK_V4D_STAGES
#define QK_V4D_STAGES 2
#endif

namespace {

constexpr int kV4dStages = QK_V4D_STAGES;
static_assert(kV4dStages >= 2 && kV4dStages <= 16, "the ring needs 2 slots; the prologue's positions come from batch 0");

// The position of the warp's item `first + k * stride` for k = k0 + lane (0 past the last item).
template <typename IdT>
__device__ __forceinline__ int64_t v4d_batch(const Params& p, uint32_t first, uint32_t stride, uint32_t k0,
                                             uint32_t lane, uint32_t ipt, uint32_t items) {
    const uint64_t it = uint64_t(first) + uint64_t(k0 + lane) * stride;
    if (it >= items) return 0;
    return v2_position<IdT>(p, static_cast<uint32_t>(it) / ipt);
}

// v4b's qk_tma_ring_kernel with the position batches of the header; marked "v4d:" where it differs.
template <typename T, typename IdT, int S, int MINB>
__global__ void __launch_bounds__(kBlock, MINB) qk_tma_ring_pb_kernel(const __grid_constant__ Params p) {
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
    const uint32_t qs = stride / ipt;
    const uint32_t rs = stride - qs * ipt;

    const uint32_t smem0 = static_cast<uint32_t>(__cvta_generic_to_shared(v4_smem));
    const uint32_t ring = smem0 + warp * (uint32_t(S) * kV4SlotBytes);
    const uint32_t bars = smem0 + kWarps * uint32_t(S) * kV4SlotBytes + warp * uint32_t(S) * 8u;
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
        auto issue = [&](uint32_t t, uint32_t j, int64_t ps, uint32_t dst, uint32_t bar) {
            const uint32_t h0 = j * kItemRows;
            const uint32_t hend = h0 + kItemRows < heads ? h0 + kItemRows : heads;
            const void* src = nullptr;
            uint32_t off = 0, bytes = 0;
            if (lane == 0) {
                const uint32_t e = hend < hq ? hend : hq;
                if (h0 < e) {
                    src = byte_at(p.q, int64_t(t) * p.q_tok_b, int64_t(h0) * kV4RowBytes);
                    bytes = (e - h0) * kV4RowBytes;
                }
            } else if (lane == 1) {
                const uint32_t b = h0 > hq ? h0 : hq;
                if (b < hend) {
                    src = byte_at(p.k_base, int64_t(t) * p.k_tok_b, int64_t(b) * kV4RowBytes);
                    off = (b - h0) * kV4RowBytes;
                    bytes = (hend - b) * kV4RowBytes;
                }
            } else if (lane == 2) {
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

        // v4d: batches 0 and 1 of the warp's positions, in flight together with the weights.
        int64_t pos_a = v4d_batch<IdT>(p, first, stride, 0, lane, ipt, items);
        int64_t pos_b = v4d_batch<IdT>(p, first, stride, 32, lane, ipt, items);

        const uint4 wq = *(static_cast<const uint4*>(p.qw) + rl);
        const uint4 wk = *(static_cast<const uint4*>(p.kw) + rl);

        V3Cursor pf;
        pf.item = first;
        pf.t = first / ipt;
        pf.j = first - pf.t * ipt;
        const V3Cursor first_cur = pf;
        {
            int64_t pps[S];
#pragma unroll
            for (int s = 0; s < S; ++s) pps[s] = __shfl_sync(0xffffffffu, pos_a, s);  // v4d
            V3Cursor c = pf;
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
        uint32_t m = S;  // v4d: pf is the warp's item m (batch m / 32, lane m % 32)

        V3Cursor cur = first_cur;
        uint32_t slot = 0, parity = 0;
        do {
            const uint32_t sa = ring + slot * kV4SlotBytes;
            const uint32_t bar = bars + 8u * slot;
            v4_mbar_wait(bar, parity);

            uint4 xv[kTokU];
#pragma unroll
            for (int u = 0; u < kTokU; ++u) xv[u] = v4_lds128(sa + rd_x + uint32_t(u) * 2u * kV4RowBytes);
            const uint4 cu = v4_lds128(sa + rd_c);
            const uint4 su = v4_lds128(sa + rd_c + kV4CacheBytes / 2);

            const int64_t pf_ps = __shfl_sync(0xffffffffu, pos_a, m & 31u);  // v4d (warp-uniform loop)
            const bool refill = pf.item < items;
            if (refill) arm(pf.j, bar);
            __syncwarp();
            if (refill) issue(pf.t, pf.j, pf_ps, sa, bar);
            v3_advance(pf, stride, qs, rs, ipt);
            if ((++m & 31u) == 0) {  // v4d: batch m / 32 is next; load the one after it
                pos_a = pos_b;
                pos_b = v4d_batch<IdT>(p, first, stride, m + 32, lane, ipt, items);
            }

            const float4 c4 = make_float4(__uint_as_float(cu.x), __uint_as_float(cu.y), __uint_as_float(cu.z),
                                          __uint_as_float(cu.w));
            const float4 s4 = make_float4(__uint_as_float(su.x), __uint_as_float(su.y), __uint_as_float(su.z),
                                          __uint_as_float(su.w));
            float part[kTokU][2];
#pragma unroll
            for (int u = 0; u < kTokU; ++u) v2_parts<T>(xv[u], part[u][0], part[u][1]);
#pragma unroll
            for (int mm = 8; mm >= 1; mm >>= 1) {
#pragma unroll
                for (int u = 0; u < kTokU; ++u) {
                    part[u][0] += __shfl_xor_sync(0xffffffffu, part[u][0], mm);
                    part[u][1] += __shfl_xor_sync(0xffffffffu, part[u][1], mm);
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

// v4b's run_v4 with this file's kernel (same shared memory per slot, carveout, occupancy cache,
// grid and PDL).
template <typename T, typename IdT, int S, int MINB>
int32_t run_v4d(const Problem& pr, cudaStream_t st) {
    constexpr auto kKernel = qk_tma_ring_pb_kernel<T, IdT, S, MINB>;
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

extern "C" int32_t v4d_fused_inplace_qknorm_rope(kp_call* call, void* stream) __asm__("kp_fused_inplace_qknorm_rope");

// v4b's entry decides every call (its gate, refusals and paths); only the calls it would send to
// its ring kernel come here instead. The conditions are v4b's v4 path, re-derived from the same
// Problem check_call fills.
extern "C" int32_t v4d_fused_inplace_qknorm_rope(kp_call* call, void* stream) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != 6 || call->n_scalars != 2 ||
        !ranks_valid(call))
        return kp_fused_inplace_qknorm_rope(call, stream);
    Problem pr{};
    if (check_call(call, &pr) != KP_OK) return kp_fused_inplace_qknorm_rope(call, stream);
    const ParamsR& p = pr.p;
    const bool half = pr.D == 128 && !pr.neox && pr.R % 8 == 0;
    constexpr uintptr_t kVec = 16;  // the half-warp layout's 8 elements of 2 bytes
    const bool vec = half && aligned_to(p.q, kVec) && aligned_to(pr.k_data, kVec) && aligned_to(p.qw, kVec) &&
                     aligned_to(p.kw, kVec) && p.q_tok_b % 16 == 0 && p.k_tok_b % 16 == 0 && p.head_b % 16 == 0 &&
                     aligned_to(p.cache, 16);
    const bool ring = vec && pr.R == 128 && pr.N * pr.heads >= kV2MinRows && p.head_b == int64_t(kV4RowBytes);
    if (!ring || pr.N == 0 || pr.heads == 0) return kp_fused_inplace_qknorm_rope(call, stream);

    char path[KP_PATH_LEN];
    snprintf(path, sizeof path, "v4d_tma_ring_pb32_s%d_b256x%d_d128_r128_interleaved_vec", kV4dStages, kV4MinBlocks);
    set_path(call, path);
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    constexpr int S = kV4dStages, B = kV4MinBlocks;
    if (pr.dtype == KP_BF16) {
        return pr.id_dtype == KP_I64 ? run_v4d<bf16, int64_t, S, B>(pr, st) : run_v4d<bf16, int32_t, S, B>(pr, st);
    }
    return pr.id_dtype == KP_I64 ? run_v4d<f16, int64_t, S, B>(pr, st) : run_v4d<f16, int32_t, S, B>(pr, st);
}
