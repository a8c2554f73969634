// kpilot-parent: v6 sha256 1294b5ccf6e319e5e57a565126897f42be57ab9c3a3ce9aad3b0115a9ceabb4e
// Candidate v6c for tasks/qknorm_rope: v6 (warp-specialised TMA producer, pooled tickets; NOTES.md
// "v6 / v6b") with every spin wait BOUNDED, and nothing else changed in the design.
//
// Why: v6 hung on an H200 (commit 27baf57): the first row on v6's path (joyai-edit T7904 H32) made
// no progress until the task's 180 s watchdog killed the worker, on every row tried, and the lease
// was cut (~320 s; no ledger record). A review of v6's source and of its SASS (nvcc 13.0, sm_90a)
// found no deadlock in the protocol (NOTES.md "v6 / v6b outcome"): init counts, expect_tx bytes,
// parities, ticket counts and alignment all check out. So v6c is v6 made to fail fast:
//   * each of the three waits (producer on a slot's empty barrier, compute warp on the empty barrier
//     for the previous occupant's release, compute warp on the full barrier) first polls exactly as
//     v6 (one mbarrier.try_wait.parity); only when that fails does it enter a counted loop of the
//     same poll that executes trap after 2^22 polls without completion, so a remaining deadlock
//     fails the row with a launch error instead of hanging the worker (no clock, no printf: the
//     harness's scan refuses both in candidates, so the failure does not say which wait).
// The header check (t >= n or j >= ipt -> trap) is v6's. When the first poll succeeds the path is
// v6's (one try_wait and a branch); the counted loop only runs on a failed first poll.
//
// ptxas (nvcc 13.0, sm_90a, the task's flags): see NOTES.md "v6c" (qk_v6c_kernel).
// Path: v6c_tma_producer_r16_c8_m2_d128_r128_interleaved_vec_bounded (other calls: v4b's, as v6).
// Prediction (H200; NOTES.md "v6c"; not measured): if v6's hang is a deadlock of the kernel, every
// row on v6c's path fails with a launch error (trap) within seconds instead of hanging; if the rows
// pass, their times are v6's prediction (within [-2.5%, +3%] of v4b's run 20261201T034141Z-df2dbc67).

#define kp_fused_inplace_qknorm_rope v4b_fused_inplace_qknorm_rope
#include "v4b.cu"
#undef kp_fused_inplace_qknorm_rope

// The knobs (v6's values).
#ifndef KP_V6_RING
#define KP_V6_RING 16  // slots a CTA (one item each), shared by its compute warps
#endif
#ifndef KP_V6_COMPUTE
#define KP_V6_COMPUTE 8  // compute warps a CTA (plus one producer warp)
#endif
#ifndef KP_V6_MIN_BLOCKS
#define KP_V6_MIN_BLOCKS 2  // CTAs an SM asked of ptxas (__launch_bounds__)
#endif

namespace {

// ---------------------------------------------------------------------------------------------
// v6: v4b's item and math behind a warp-specialised TMA producer.
//
// A CTA is kV6Compute compute warps and one producer warp around one ring of kV6Ring slots in
// shared memory. A slot is one item (v4b's: 8 heads of one token, 2 KB, then the item's 512-byte
// [cos | sin] row) plus an 8-byte header (the item's token t and item-of-token j), with two
// mbarriers: full (1 arrival, the producer's arrive.expect_tx, plus the slot's bytes) and empty
// (32 arrivals: every lane of the warp that read the slot).
//
// Work: the CTA's items are v4b's warps' items of that CTA taken together, in grid-stride rounds:
// ticket k (0, 1, 2, ...) is item b * 8 + (k % 8) + (k / 8) * stride, stride = grid * 8 (every
// item exactly once, as under v4b); the CTA has ktot of them, a prefix of the ticket sequence.
//
// Producer (the last warp): fills ticket k into slot k % R in ticket order. Before filling it
// waits on the slot's empty barrier for the release of ticket k - R (k >= R), writes the header,
// arms the full barrier with the item's bytes and issues the item's bulk copies (its q heads, its
// k heads where the item straddles q and k, its cache row). The (t, j, position) of 32 tickets at a
// time, with their copies' addresses and sizes, are computed lane-parallel one batch ahead (one
// division a lane a batch), so the position loads are in flight a whole batch before they are
// needed; lane i then fills ticket k0 + i.
//
// Compute warps: a warp takes the next ticket from a shared counter (lane 0's atom.shared.add)
// when it is free, so a late item holds up one warp, not a fixed share of the CTA's work, and a
// CTA's last items go to whichever warps are free. For ticket k >= R it first waits on the slot's
// empty barrier for ticket k - R's release (so its parity wait on the full barrier cannot alias
// a phase two back: see below), then on the full barrier, reads the header, its 4 rows and the
// cos / sin chunks (6 LDS.128 + 1 LDS.64 a lane), arrives on the empty barrier (every lane: its own
// reads are ordered before its release), and does v4b's math and stores (v2_parts, butterfly
// 8/4/2/1, rsqrt, v2_norm_rope, 4 STG.128): the outputs are bit-identical to v4b's. The compute
// warps hold no ring state: no cursor, no position, no copies, no arming.
//
// Parity waits are exact: a warp holds one ticket at a time and claims tickets in order; with R
// > kV6Compute, ticket k cannot be claimed while ticket k - 2R is unreleased (the producer fills in
// order, so tickets k - R + 1 .. k - 1 would all be unfillable and held by R - 1 >= kV6Compute
// other warps), so the empty barrier is at most one phase from the one waited for; after k - R's
// release its fill has completed, and k + R cannot be filled before k's release, so the full
// barrier's current phase is k / R. Every phase a copy completes is waited on by its consumer, and
// every issued ticket is consumed, so nothing is in flight into shared memory at exit. Barriers
// and the counter are initialised at every launch (no state across calls or graph replays).
// ---------------------------------------------------------------------------------------------

constexpr uint32_t kV6Ring = KP_V6_RING;
constexpr uint32_t kV6Compute = KP_V6_COMPUTE;
constexpr uint32_t kV6Threads = (kV6Compute + 1u) * 32u;
constexpr uint32_t kV6Round = 8;  // items a CTA takes a grid-stride round (v4b: one a warp, 8 warps)
constexpr int kV6MinBlocks = KP_V6_MIN_BLOCKS;
static_assert(kV6Ring > kV6Compute, "parity waits need more slots than compute warps");
static_assert(kV6Compute >= 1 && kV6Threads <= 1024, "CTA size");

// Dynamic shared memory: slots, then headers, full barriers, empty barriers, the ticket counter.
constexpr uint32_t kV6HdrOff = kV6Ring * kV4SlotBytes;
constexpr uint32_t kV6FullOff = kV6HdrOff + kV6Ring * 8u;
constexpr uint32_t kV6EmptyOff = kV6FullOff + kV6Ring * 8u;
constexpr uint32_t kV6TicketOff = kV6EmptyOff + kV6Ring * 8u;
constexpr uint32_t kV6SmemBytes = kV6TicketOff + 16u;

__device__ __forceinline__ void v6_mbar_arrive(uint32_t bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}

__device__ __forceinline__ uint32_t v6_ticket(uint32_t ctr) {
    uint32_t k;
    asm volatile("atom.shared.add.u32 %0, [%1], 1;\n" : "=r"(k) : "r"(ctr) : "memory");
    return k;
}

__device__ __forceinline__ void v6_sts64(uint32_t a, uint32_t x, uint32_t y) {
    asm volatile("st.shared.v2.u32 [%0], {%1, %2};\n" ::"r"(a), "r"(x), "r"(y) : "memory");
}

__device__ __forceinline__ uint2 v6_lds64(uint32_t a) {
    uint2 v;
    asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];\n" : "=r"(v.x), "=r"(v.y) : "r"(a) : "memory");
    return v;
}

// ---------------------------------------------------------------------------------------------
// v6c: bounded waits. One poll as v6's v4_mbar_wait; on failure, a counted loop of the same poll
// that executes trap after kV6cMaxPolls polls without the phase completing. (No clock and no
// printf: the harness's scan refuses both in candidates.)
// ---------------------------------------------------------------------------------------------

constexpr uint32_t kV6cMaxPolls = 1u << 22;

__device__ __forceinline__ uint32_t v6c_try(uint32_t bar, uint32_t parity) {
    uint32_t done;
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
    return done;
}

__device__ __forceinline__ void v6c_wait(uint32_t bar, uint32_t parity) {
    if (v6c_try(bar, parity)) return;  // v6's first poll
    uint32_t polls = 1;
    while (!v6c_try(bar, parity)) {
        if (++polls == kV6cMaxPolls) __trap();
    }
}

template <typename T, typename IdT>
__global__ void __launch_bounds__(kV6Threads, kV6MinBlocks) qk_v6c_kernel(const __grid_constant__ Params p) {
    constexpr int D = 128;
    extern __shared__ __align__(128) unsigned char v6_smem[];

    const uint32_t lane = threadIdx.x % 32;
    const uint32_t warp = threadIdx.x / 32;
    const uint32_t hq = p.hq;
    const uint32_t heads = hq + p.hk;
    const uint32_t ipt = (heads + kItemRows - 1) / kItemRows;  // items per token
    const uint32_t items = ipt * p.n;
    const uint32_t stride = gridDim.x * kV6Round;
    const uint32_t base = blockIdx.x * kV6Round;  // < items: grid <= ceil(items / 8)
    // This CTA's tickets: every round of `stride` items gives it up to kV6Round of them.
    const uint32_t rem = items > base ? items - base : 0u;
    const uint32_t rmod = rem % stride;
    const uint32_t ktot = (rem / stride) * kV6Round + (rmod < kV6Round ? rmod : kV6Round);

    const uint32_t smem0 = static_cast<uint32_t>(__cvta_generic_to_shared(v6_smem));
    const uint32_t hdrs = smem0 + kV6HdrOff;
    const uint32_t fulls = smem0 + kV6FullOff;
    const uint32_t empties = smem0 + kV6EmptyOff;
    const uint32_t ctr = smem0 + kV6TicketOff;

    if (threadIdx.x == 0) {
        for (uint32_t s = 0; s < kV6Ring; ++s) {
            v4_mbar_init(fulls + 8u * s, 1u);
            v4_mbar_init(empties + 8u * s, 32u);
        }
        asm volatile("st.shared.u32 [%0], %1;\n" ::"r"(ctr), "r"(0u) : "memory");
        v4_fence_mbar_init();
    }
    __syncthreads();

    grid_dep_wait();

    if (warp == kV6Compute) {
        // Producer warp. Lane i prepares ticket k0 + i of each batch of 32, one batch ahead: the
        // item's header, its one or two row runs (source, bytes, offset in the slot) and its
        // position (a load in flight for a whole batch); the serial part per ticket is then the
        // wait, the header store, the arm and the copies.
        struct Fill {
            const char* src_a;  // the first run: the item's q heads, or its k heads if it has none
            const char* src_b;  // the second run (k heads of an item that straddles q and k)
            int64_t ps;         // position (its cache row)
            uint32_t t, j;      // header
            uint32_t bytes_a, bytes_b, off_b, tx;
        };
        auto prep = [&](uint32_t k, Fill& f) {
            f.src_a = f.src_b = nullptr;
            f.ps = 0;
            f.t = f.j = f.bytes_a = f.bytes_b = f.off_b = f.tx = 0;
            if (k < ktot) {
                const uint32_t it = base + (k % kV6Round) + (k / kV6Round) * stride;
                const uint32_t t = it / ipt;
                const uint32_t j = it - t * ipt;
                const uint32_t h0 = j * kItemRows;
                const uint32_t hend = h0 + kItemRows < heads ? h0 + kItemRows : heads;
                const uint32_t qe = hend < hq ? hend : hq;  // q heads [h0, qe)
                const uint32_t kb = h0 > hq ? h0 : hq;      // k heads [kb, hend)
                const char* qsrc = static_cast<const char*>(p.q) + int64_t(t) * p.q_tok_b + int64_t(h0) * kV4RowBytes;
                const char* ksrc = static_cast<const char*>(p.k_base) + int64_t(t) * p.k_tok_b + int64_t(kb) * kV4RowBytes;
                const uint32_t kbytes = kb < hend ? (hend - kb) * kV4RowBytes : 0u;
                if (h0 < qe) {
                    f.src_a = qsrc;
                    f.bytes_a = (qe - h0) * kV4RowBytes;
                    f.src_b = ksrc;
                    f.bytes_b = kbytes;
                    f.off_b = (kb - h0) * kV4RowBytes;
                } else {
                    f.src_a = ksrc;  // kb == h0
                    f.bytes_a = kbytes;
                }
                f.t = t;
                f.j = j;
                f.tx = (hend - h0) * kV4RowBytes + kV4CacheBytes;
                f.ps = v2_position<IdT>(p, t);
            }
        };
        Fill cur, nxt;
        prep(lane, cur);
        for (uint32_t k0 = 0; k0 < ktot; k0 += 32u) {
            prep(k0 + 32u + lane, nxt);
            const uint32_t nb = ktot - k0 < 32u ? ktot - k0 : 32u;
            for (uint32_t i = 0; i < nb; ++i) {
                if (lane == i) {
                    const uint32_t k = k0 + i;
                    const uint32_t s = k % kV6Ring;
                    const uint32_t ph = k / kV6Ring;
                    const uint32_t sa = smem0 + s * kV4SlotBytes;
                    const uint32_t full = fulls + 8u * s;
                    const char* csrc = static_cast<const char*>(p.cache) + cur.ps * int64_t(kV4CacheBytes);
                    if (ph > 0) v6c_wait(empties + 8u * s, (ph - 1u) & 1u);
                    v6_sts64(hdrs + 8u * s, cur.t, cur.j);
                    v4_mbar_expect(full, cur.tx);
                    v4_bulk_g2s(sa, cur.src_a, cur.bytes_a, full);
                    if (cur.bytes_b != 0) v4_bulk_g2s(sa + cur.off_b, cur.src_b, cur.bytes_b, full);
                    v4_bulk_g2s(sa + kItemRows * kV4RowBytes, csrc, kV4CacheBytes, full);
                }
            }
            cur = nxt;
        }
    } else {
        // Compute warp.
        const uint32_t rl = lane % 16;
        const uint32_t hw = lane / 16;
        // This lane's reads inside a slot: row hw + 2u at (hw + 2u) * 256 + rl * 16; cos / sin chunk rl.
        const uint32_t rd_x = hw * kV4RowBytes + rl * 16u;
        const uint32_t rd_c = kItemRows * kV4RowBytes + rl * 16u;
        // Both weight chunks of this lane, in registers (v4b's).
        const uint4 wq = *(static_cast<const uint4*>(p.qw) + rl);
        const uint4 wk = *(static_cast<const uint4*>(p.kw) + rl);

        for (;;) {
            uint32_t k = 0;
            if (lane == 0) k = v6_ticket(ctr);
            k = __shfl_sync(0xffffffffu, k, 0);
            if (k >= ktot) break;  // warp-uniform
            const uint32_t s = k % kV6Ring;
            const uint32_t ph = k / kV6Ring;
            const uint32_t sa = smem0 + s * kV4SlotBytes;
            if (ph > 0) v6c_wait(empties + 8u * s, (ph - 1u) & 1u);
            v6c_wait(fulls + 8u * s, ph & 1u);

            const uint2 hd = v6_lds64(hdrs + 8u * s);
            uint4 xv[kTokU];
#pragma unroll
            for (int u = 0; u < kTokU; ++u) xv[u] = v4_lds128(sa + rd_x + uint32_t(u) * 2u * kV4RowBytes);
            const uint4 cu = v4_lds128(sa + rd_c);
            const uint4 su = v4_lds128(sa + rd_c + kV4CacheBytes / 2);
            v6_mbar_arrive(empties + 8u * s);  // this lane's reads of the slot are done
            const uint32_t t = hd.x;
            const uint32_t j = hd.y;
            // Never taken (the producer writes t < n, j < ipt). A branch here ends the block, so
            // ptxas issues the slot's reads and the release together at the top of the item (as
            // in v4b, whose refill branches follow its reads) instead of spreading the reads
            // through the math and holding the slot ~200 instructions longer.
            if (t >= p.n || j >= ipt) __trap();
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
            const uint32_t hb = j * kItemRows + hw;
            char* const qrow = static_cast<char*>(p.q) + int64_t(t) * p.q_tok_b;
            char* const krow = static_cast<char*>(p.k_base) + int64_t(t) * p.k_tok_b;
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
        }
    }

    grid_dep_launch();
}

// v6's launch: kV6Threads-thread CTAs, the ring in dynamic shared memory, as many CTAs an SM as
// registers and shared memory allow (the carveout asked for at its largest, occupancy queried once
// per device), grid min(that x SMs, ceil(items / 8)), PDL as v4b.
template <typename T, typename IdT>
int32_t run_v6(const Problem& pr, cudaStream_t st) {
    constexpr auto kKernel = qk_v6c_kernel<T, IdT>;
    static std::atomic<int> occ_cache[kMaxDevices];
    int dev = 0, sms = 0;
    bool pdl = false;
    if (!device_info(&dev, &sms, &pdl)) {
        cudaGetLastError();
        return KP_CUDA_ERROR;
    }
    int occ = dev >= 0 && dev < kMaxDevices ? occ_cache[dev].load(std::memory_order_relaxed) : 0;
    if (occ <= 0) {
        if (cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(kV6SmemBytes)) != cudaSuccess) {
            cudaGetLastError();
            return KP_CUDA_ERROR;
        }
        // A hint only; a failure leaves the default carveout (and the occupancy it gives).
        if (cudaFuncSetAttribute(kKernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                 static_cast<int>(cudaSharedmemCarveoutMaxShared)) != cudaSuccess)
            cudaGetLastError();
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, kKernel, static_cast<int>(kV6Threads),
                                                          kV6SmemBytes) != cudaSuccess) {
            cudaGetLastError();
            return KP_CUDA_ERROR;
        }
        if (occ <= 0) return KP_CUDA_ERROR;
        if (dev >= 0 && dev < kMaxDevices) occ_cache[dev].store(occ, std::memory_order_relaxed);
    }
    const uint32_t items = static_cast<uint32_t>(pr.N * ((pr.heads + 7) / 8));
    const uint32_t max_blocks = static_cast<uint32_t>(occ) * static_cast<uint32_t>(sms);
    const uint32_t needed = (items + kV6Round - 1) / kV6Round;
    const uint32_t grid = needed < max_blocks ? needed : max_blocks;

    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(grid);
    cfg.blockDim = dim3(kV6Threads);
    cfg.dynamicSmemBytes = kV6SmemBytes;
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

// Whether a call can possibly take v6's path, from its raw shapes alone (no validation: a call
// that passes still goes through check_call). Everything else, the tiny production rows first
// among them, goes straight to v4b's entry point, so their host path is v4b's plus these compares.
bool v6_may_apply(const kp_call* call) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != 6) return false;
    const kp_tensor& q = call->tensors[0];
    const kp_tensor& k = call->tensors[1];
    if (q.rank != 3 || k.rank != 3 || q.shape[2] != 128) return false;
    const int64_t n = q.shape[0], hq = q.shape[1], hk = k.shape[1];
    if (n <= 0 || hq < 0 || hk < 0 || n >= (1ll << 31) || hq >= (1ll << 31) || hk >= (1ll << 31)) return false;
    return n * (hq + hk) >= kV2MinRows;
}

}  // namespace

extern "C" int32_t kp_fused_inplace_qknorm_rope(kp_call* call, void* stream) {
    if (!v6_may_apply(call)) return v4b_fused_inplace_qknorm_rope(call, stream);
    if (call->n_scalars != 2 || !ranks_valid(call)) return KP_INVALID;
    Problem pr{};
    const int32_t gate = check_call(call, &pr);
    if (gate != KP_OK) return gate;

    // v4b's v4 path, restated from its entry point: the half-warp layout (D 128, interleaved) with
    // 16-byte vectors (q, k, weights and cache aligned, token strides multiples of 16 bytes), full
    // rotary, at least kV2MinRows rows, heads 256 bytes apart. Anything else: v4b's entry point.
    const ParamsR& p = pr.p;
    const bool v6 = pr.D == 128 && !pr.neox && pr.R == 128 && aligned_to(p.q, 16) && aligned_to(pr.k_data, 16) &&
                    aligned_to(p.qw, 16) && aligned_to(p.kw, 16) && aligned_to(p.cache, 16) && p.q_tok_b % 16 == 0 &&
                    p.k_tok_b % 16 == 0 && p.head_b == int64_t(kV4RowBytes) && pr.N * pr.heads >= kV2MinRows;
    if (!v6) return v4b_fused_inplace_qknorm_rope(call, stream);

    char path[KP_PATH_LEN];
    snprintf(path, sizeof path, "v6c_tma_producer_r%u_c%u_m%d_d128_r128_interleaved_vec_bounded", kV6Ring, kV6Compute,
             kV6MinBlocks);
    set_path(call, path);
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    if (pr.dtype == KP_BF16) {
        return pr.id_dtype == KP_I64 ? run_v6<bf16, int64_t>(pr, st) : run_v6<bf16, int32_t>(pr, st);
    }
    return pr.id_dtype == KP_I64 ? run_v6<f16, int64_t>(pr, st) : run_v6<f16, int32_t>(pr, st);
}
