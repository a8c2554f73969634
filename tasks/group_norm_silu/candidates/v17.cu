// kpilot-parent: v12 sha256 d47f722eaae04cbc7065553e648d136692fa110b950a3b962b12de8a5927e2f4
// Candidate v17 for tasks/group_norm_silu: v12 (#included whole, its entry under another symbol)
// plus ONE new path for the large contiguous fp16/bf16 rows: a persistent, co-resident grid that
// streams x through every SM's shared memory in 16 KB chunks, so x crosses the DRAM bus once.
// NOTES' "Left to do" 3 lists it: "one persistent launch holding both roles".
//
// Why. On the 10 contiguous production rows of 75-570 MB of x, v12 runs at 58-64% of copy. The
// six with groups of 4.7-17.8 MB read x twice from DRAM (v9c's chunked code); the four with
// groups of 2.4-3.3 MB run v10's one-pass cluster kernel, which reads x once but in lockstep
// rounds: a cluster applies a group only after all of it has landed, then refills, so every round
// ends in a bubble (the last chunk's load, the statistics, the cluster barrier) with nothing in
// flight. v14-v16 (slabs in the L2) paid short-kernel ramps. Here nothing waits on a kernel
// boundary or a whole-grid barrier: each CTA holds several chunks of several groups at once and
// applies a chunk as soon as its own group's statistics are complete.
//
// The kernel (ps_kernel<T>; 512 threads, 1 or 2 CTAs an SM, ns slots of 16 KB each):
//   - The B*G groups ("units") of contiguous x are consecutive runs of nvg 16-byte vectors; unit u
//     is cut into cpu chunks of up to 1024 vectors; chunk c (of U*cpu) belongs to CTA c % P (P =
//     the grid, all CTAs co-resident: cooperative launch). CTA p takes its chunks k = 0, 1, ... in
//     order (c = p + k P), chunk k in slot k % ns, loaded by the Tensor Memory Accelerator
//     (cp.async.bulk, one mbarrier a slot, parity (k / ns) & 1).
//   - Statistics: per chunk each thread sums its <= 2 vectors (16 elements) in fp32 as upstream's
//     per-thread sums do, then adds them into fp64; at the CTA's last chunk of a unit the CTA
//     reduces its fp64 sums (a fixed butterfly) and thread 0 writes them to the unit's slot j of
//     this CTA, then a release increment of the unit's counter.
//   - Apply: chunks leave in order. A chunk's unit is ready when its counter equals m_u = min(cpu,
//     P), the CTAs that hold chunks of it. Warp 0 then sums the m_u partials in slot order (lane l
//     slots l, l + 32, ..., then an xor butterfly: every CTA gets the same sums bit for bit), and
//     v10h's arithmetic follows: mean, var = max(Q/n - mean^2, 0), rstd in fp64, a = rstd w_c and
//     b_c halved, y = silu((x - mean) a + b) in fp32 with the one-MUFU tanh form (cg_silu), stored
//     st.global.cs. The slot is refilled with chunk k + ns as soon as every thread has read it.
//   - The loop, one decision a step by one thread for the CTA (broadcast through shared memory):
//     take the statistics of the next chunk if it has landed (a non-blocking mbarrier test); else
//     apply the oldest summed chunks while their unit's coefficients are in; else, once this CTA
//     has published the oldest chunk's unit, read that unit's counter; poll until one holds.
//     (The first version, b069999, always took the statistics of the next chunk first, waiting
//     for its load: 0.49-0.80x the baseline on its rows, run 20261203T152845Z-9e31bed8; the
//     second, 9128035, applied first and took statistics only of landed chunks: 0.46-0.64x, run
//     20261203T160647Z-c9d59138. Publishing late delays every CTA of the unit.)
//   - No deadlock when no CTA holds more than ns chunks of one unit (the host's condition): a CTA
//     spins on unit u only when its ns slots hold chunks [oldest, oldest + ns), all summed, so its
//     chunks of u (at most ns, from `oldest` on) are summed and published. The lowest unfinished
//     unit u*: every CTA with chunks of it either has published u* or is still summing toward it
//     (its lower units are complete; it spins on nothing higher), so u* completes; by induction
//     all do. A spin that has not ended after 2^26 polls traps (a bug, not a wait).
//   - Counters clean themselves: each CTA that used unit u's sums increments the unit's done
//     counter; the last of the m_u resets both to zero, so the next call starts from zero without
//     a memset. A call that does not finish leaves the context dead (a trap), never half-counted.
//
// Dispatch (host; everything else, and any launch failure, runs v12 unchanged): contiguous x and y
// (in place allowed: a chunk is read before it is written and by no one else), fp16/bf16, x at
// least 64 MiB, S % 8 == 0, S >= 8192 (a chunk spans at most 2 channels), C/G <= 64, 16-byte
// aligned, B*G <= 8192, B*G*min(cpu, P) <= 2^16, and ceil(cpu / P) <= ns. 2 CTAs an SM (6 slots of
// 16 KB each on the H200) when the condition holds there, else 1 (13 slots).
// Path: `ps_onepass_b<CTAs an SM>_s<slots>_P<grid>_cpu<chunks a unit>`.
//
// Known limits: the counters and partials are one per process (__device__ arrays): one call at a
// time (kpilot's worker runs one stream), as v14-v16.
//
// PREDICTION (H200, not measured; v12 in the same lease as control): every row correct (fp32
// chains of 16 elements, fp64 after, as v10h). The 10 contiguous rows of 64 MB or more from 58-64%
// of copy to 75-88% (DRAM sees one read and one write; what is left is each CTA's serial time a
// chunk and the wait for a unit's last chunk): [1,128,17,256,80] 70 -> ~48 us, [1,256,17,256,256]
// 425 -> ~320 us (the largest units, 17.8 MB, fill 2/3 of the card's shared memory, so the least
// overlap there). If the per-chunk serial path (a counter read is an L2 round trip) dominates,
// the small-unit rows gain and the 570 MB row may not. Every other row is v12's code.

#include <stdint.h>

#include "kpilot_abi.h"

extern "C" int32_t v12_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("gns_v12_group_norm_silu");
#pragma nv_diag_suppress 1306
#include "v12.cu"
#pragma nv_diag_default 1306

namespace {

constexpr int PS_THREADS = 512;
constexpr int PS_WARPS = PS_THREADS / 32;
// GNS_V17_CHUNK_VECS (v17c: 4096): 16-byte vectors a chunk (v17: 1024, 16 KB).
#ifndef GNS_V17_CHUNK_VECS
#define GNS_V17_CHUNK_VECS 1024
#endif
constexpr int PS_CV = GNS_V17_CHUNK_VECS;
// GNS_V17_STORE_FREE_WARP0 (v17d: 1): the apply runs on warps 1-15 only.
#ifndef GNS_V17_STORE_FREE_WARP0
#define GNS_V17_STORE_FREE_WARP0 0
#endif
constexpr int PS_MAX_SLOTS = 16;
constexpr int PS_MAX_CPG = 64;
constexpr int kPsMaxUnits = 8192;
constexpr int kPsMaxParts = 1 << 16;
constexpr int64_t kPsMinX = int64_t(64) << 20;
constexpr unsigned int kPsMaxPolls = 1u << 26;

__device__ double ps_part[2 * kPsMaxParts];  // {sum, sum of squares} of (unit, CTA slot j)
__device__ unsigned int ps_cnt[kPsMaxUnits];   // partials published a unit
__device__ unsigned int ps_done[kPsMaxUnits];  // CTAs that read a unit's sums
// GNS_V17_FINALIZER (v17b sets it to 1): the CTA whose partial completes a unit sums the m_u
// partials once and publishes {mean, rstd}; the others read those two values instead of m_u pairs.
#ifndef GNS_V17_FINALIZER
#define GNS_V17_FINALIZER 0
#endif
__device__ double ps_fin[2 * kPsMaxUnits];     // {mean, rstd} of a unit (finalizer form)
__device__ unsigned int ps_flag[kPsMaxUnits];  // the unit's {mean, rstd} published (finalizer form)

struct PsTail {
    unsigned long long mbar[PS_MAX_SLOTS];
    double red[2][2][PS_WARPS];  // [publish parity][sum, squares][warp]
    float ca[PS_MAX_CPG];
    float cb[PS_MAX_CPG];
    float mean;
    int flag[2];  // [check parity] ready
};
constexpr int kPsTailBytes = (static_cast<int>(sizeof(PsTail)) + 127) / 128 * 128;

__device__ __forceinline__ unsigned int ps_ld_acquire(const unsigned int* p) {
    unsigned int v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ double ps_ld_relaxed(const double* p) {
    double v;
    asm volatile("ld.relaxed.gpu.global.f64 %0, [%1];" : "=d"(v) : "l"(p) : "memory");
    return v;
}
// Non-blocking: has the mbarrier's phase of this parity completed?
__device__ __forceinline__ bool ps_mbar_test(unsigned long long* m, uint32_t parity) {
    uint32_t done;
    asm volatile(
        "{\n\t.reg .pred P1;\n\t"
        "mbarrier.test_wait.parity.shared::cta.b64 P1, [%1], %2;\n\t"
        "selp.u32 %0, 1, 0, P1;\n\t}"
        : "=r"(done)
        : "r"(cg_smem_addr(m)), "r"(parity)
        : "memory");
    return done != 0;
}
__device__ __forceinline__ unsigned int ps_atom_add_acq_rel(unsigned int* p) {
    unsigned int old;
    asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;" : "=r"(old) : "l"(p) : "memory");
    return old;
}
__device__ __forceinline__ void ps_st_release(unsigned int* p, unsigned int v) {
    asm volatile("st.release.gpu.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
// The unit's sums from its m_u partials, in slot order (lane l: slots l, l + 32, ...), then an xor
// butterfly: the same value in every lane and every CTA, bit for bit. Warp-wide.
__device__ __forceinline__ void ps_unit_stats(int u, int mu, int nvg, int V, float eps, int lane, double* mean,
                                              double* rstd) {
    double S0 = 0.0, Q0 = 0.0;
    const double* base = ps_part + 2 * static_cast<int64_t>(u) * mu;
    for (int i = lane; i < mu; i += 32) {
        S0 += ps_ld_relaxed(base + 2 * i);
        Q0 += ps_ld_relaxed(base + 2 * i + 1);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        S0 += __shfl_xor_sync(0xffffffffu, S0, o);
        Q0 += __shfl_xor_sync(0xffffffffu, Q0, o);
    }
    const double n = static_cast<double>(nvg) * V;
    const double m = S0 / n;
    double var = Q0 / n - m * m;
    if (var < 0.0) var = 0.0;
    *mean = m;
    *rstd = 1.0 / sqrt(var + static_cast<double>(eps));
}
__device__ __forceinline__ void ps_red_release(unsigned int* p) {
    asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(p) : "memory");
}

// Chunk c's unit and its vectors [a, e) within the unit.
__device__ __forceinline__ void ps_chunk(int64_t c, int cpu, int nvg, int* u, int* a, int* e) {
    *u = static_cast<int>(c / cpu);
    const int j = static_cast<int>(c - static_cast<int64_t>(*u) * cpu);
    *a = j * PS_CV;
    *e = *a + PS_CV < nvg ? *a + PS_CV : nvg;
}

template <typename T>
__global__ void __launch_bounds__(PS_THREADS, 2)
    ps_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, T* y, int units, int G,
              int cpg, int S, int nvg, int cpu, int ns, float eps) {
    constexpr int V = Vec<T>::N;
    extern __shared__ __align__(128) unsigned char ps_smem[];
    PsTail& tl = *reinterpret_cast<PsTail*>(ps_smem);
    uint4* buf = reinterpret_cast<uint4*>(ps_smem + kPsTailBytes);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int P = static_cast<int>(gridDim.x), p = static_cast<int>(blockIdx.x);
    const int64_t nchunks = static_cast<int64_t>(units) * cpu;
    const int K = p < nchunks ? static_cast<int>((nchunks - p + P - 1) / P) : 0;
    const uint4* xv = reinterpret_cast<const uint4*>(x);
    uint4* yv = reinterpret_cast<uint4*>(y);
    const int mu = cpu < P ? cpu : P;  // CTAs holding chunks of a unit

    if (tid == 0) {
        for (int s = 0; s < ns; ++s) cg_mbar_init(&tl.mbar[s]);
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    auto issue = [&](int k) {  // thread 0: chunk k into slot k % ns
        int u, a, e;
        ps_chunk(p + static_cast<int64_t>(k) * P, cpu, nvg, &u, &a, &e);
        const int s = k % ns;
        cg_mbar_expect(&tl.mbar[s], static_cast<uint32_t>(e - a) * 16u);
        cg_bulk_load(buf + static_cast<int64_t>(s) * PS_CV, xv + static_cast<int64_t>(u) * nvg + a,
                     static_cast<uint32_t>(e - a) * 16u, &tl.mbar[s]);
    };
    if (tid == 0)
        for (int k = 0; k < K && k < ns; ++k) issue(k);

    int next_stats = 0, next_apply = 0, coef_unit = -1, decisions = 0, pubs = 0;
    int published = -1;  // highest unit this CTA has published (the same in every thread)
    double ts = 0.0, tq = 0.0;
    while (next_apply < K) {
        // One decision a step, by lane 0 of warp 0, for the whole CTA, in this order:
        //   0: take the statistics of the next chunk, which has landed;
        //   1: apply the oldest summed chunk(s), its unit's coefficients already in shared memory;
        //   2: the oldest summed chunk's unit is complete: coefficients, then apply.
        // It spins (polling the slot's mbarrier and the unit's counter) only when none holds.
        const int issued = K < next_apply + ns ? K : next_apply + ns;
        int ua = -1, ea = 0, aa = 0;
        if (next_apply < next_stats) ps_chunk(p + static_cast<int64_t>(next_apply) * P, cpu, nvg, &ua, &aa, &ea);
        const int par = decisions & 1;
        ++decisions;
        if (warp == 0) {
            int act = -1;
            // Statistics of a landed chunk first: a unit completes only when every CTA holding it
            // has published, so publishing early is what the other CTAs wait for (the order
            // "apply first" ran every row slower, run 20261203T160647Z-c9d59138).
            if (lane == 0 && next_stats < issued &&
                ps_mbar_test(&tl.mbar[next_stats % ns], static_cast<uint32_t>((next_stats / ns) & 1)))
                act = 0;
            act = __shfl_sync(0xffffffffu, act, 0);
            if (act < 0 && ua >= 0 && ua == coef_unit) act = 1;
            // The oldest chunk's channel weights, loaded before the poll so their latency overlaps it.
            float wl0 = 0.0f, bl0 = 0.0f, wl1 = 0.0f, bl1 = 0.0f;
            if (ua >= 0 && act < 0) {
                const int g = ua % G;
                if (lane < cpg) {
                    wl0 = to_f(__ldg(w + g * cpg + lane));
                    bl0 = to_f(__ldg(b + g * cpg + lane));
                }
                if (lane + 32 < cpg) {
                    wl1 = to_f(__ldg(w + g * cpg + lane + 32));
                    bl1 = to_f(__ldg(b + g * cpg + lane + 32));
                }
            }
            if (lane == 0 && act < 0) {
                unsigned int polls = 0;
                for (;;) {
                    if (next_stats < issued &&
                        ps_mbar_test(&tl.mbar[next_stats % ns], static_cast<uint32_t>((next_stats / ns) & 1))) {
                        act = 0;
                        break;
                    }
                    if (ua >= 0 && ua <= published &&
                        (GNS_V17_FINALIZER ? ps_ld_acquire(&ps_flag[ua]) != 0u
                                           : ps_ld_acquire(&ps_cnt[ua]) >= static_cast<unsigned int>(mu))) {
                        act = 2;
                        break;
                    }
                    if (++polls > kPsMaxPolls) __trap();
                    __nanosleep(32);
                }
            }
            act = __shfl_sync(0xffffffffu, act, 0);
            if (act == 2) {
                // Every lane takes its own acquire (the unit is complete and stays so until this
                // CTA's done increment below), then the unit's sums or its published {mean, rstd}.
                double m, rstd;
                if (GNS_V17_FINALIZER) {
                    while (ps_ld_acquire(&ps_flag[ua]) == 0u) {
                    }
                    m = ps_ld_relaxed(ps_fin + 2 * ua);
                    rstd = ps_ld_relaxed(ps_fin + 2 * ua + 1);
                } else {
                    while (ps_ld_acquire(&ps_cnt[ua]) < static_cast<unsigned int>(mu)) {
                    }
                    ps_unit_stats(ua, mu, nvg, V, eps, lane, &m, &rstd);
                }
                if (lane < cpg) {
                    tl.ca[lane] = static_cast<float>(rstd * static_cast<double>(wl0) * cg_coef_scale<T>());
                    tl.cb[lane] = static_cast<float>(static_cast<double>(bl0) * cg_coef_scale<T>());
                }
                if (lane + 32 < cpg) {
                    tl.ca[lane + 32] = static_cast<float>(rstd * static_cast<double>(wl1) * cg_coef_scale<T>());
                    tl.cb[lane + 32] = static_cast<float>(static_cast<double>(bl1) * cg_coef_scale<T>());
                }
                if (lane == 0) {
                    tl.mean = static_cast<float>(m);
                    // The last of the unit's CTAs to read its sums resets its counters.
                    if (atomicAdd(&ps_done[ua], 1u) + 1u == static_cast<unsigned int>(mu)) {
                        ps_cnt[ua] = 0u;
                        ps_done[ua] = 0u;
                        if (GNS_V17_FINALIZER) ps_flag[ua] = 0u;
                    }
                }
            }
            if (lane == 0) tl.flag[par] = act;
        }
        __syncthreads();
        const int act = tl.flag[par];
        if (act == 0) {
            const int k = next_stats;
            const int64_t c = p + static_cast<int64_t>(k) * P;
            int u, a, e;
            ps_chunk(c, cpu, nvg, &u, &a, &e);
            cg_mbar_wait(&tl.mbar[k % ns], static_cast<uint32_t>((k / ns) & 1));  // landed: returns at once
            const uint4* sb = buf + static_cast<int64_t>(k % ns) * PS_CV;
            // fp32 over at most 2 vectors (16 elements) a thread, then fp64.
            for (int i0 = tid; i0 < e - a; i0 += 2 * PS_THREADS) {
                float s = 0.0f, ss = 0.0f;
#pragma unroll
                for (int r = 0; r < 2; ++r) {
                    const int i = i0 + r * PS_THREADS;
                    if (i < e - a) {
                        Vec<T> v;
                        v.raw = sb[i];
#pragma unroll
                        for (int j = 0; j < V; ++j) {
                            const float d = v.get(j);
                            s += d;
                            ss = fmaf(d, d, ss);
                        }
                    }
                }
                ts += static_cast<double>(s);
                tq += static_cast<double>(ss);
            }
            const bool last = k + 1 == K || (c + P) / cpu != u;
            if (last) {  // this CTA's sums of unit u: a fixed butterfly, then the slot and the counter
                const int pp = pubs & 1;
                ++pubs;
#pragma unroll
                for (int o = 16; o > 0; o >>= 1) {
                    ts += __shfl_xor_sync(0xffffffffu, ts, o);
                    tq += __shfl_xor_sync(0xffffffffu, tq, o);
                }
                if (lane == 0) {
                    tl.red[pp][0][warp] = ts;
                    tl.red[pp][1][warp] = tq;
                }
                __syncthreads();
                if (warp == 0) {
                    double S0 = lane < PS_WARPS ? tl.red[pp][0][lane] : 0.0;
                    double Q0 = lane < PS_WARPS ? tl.red[pp][1][lane] : 0.0;
#pragma unroll
                    for (int o = 16; o > 0; o >>= 1) {
                        S0 += __shfl_xor_sync(0xffffffffu, S0, o);
                        Q0 += __shfl_xor_sync(0xffffffffu, Q0, o);
                    }
                    unsigned int before = 0u;
                    if (lane == 0) {
                        const int64_t first = static_cast<int64_t>(u) * cpu;
                        const int j = static_cast<int>(((p - first % P) + P) % P);
                        double* slot = ps_part + 2 * (static_cast<int64_t>(u) * mu + j);
                        slot[0] = S0;
                        slot[1] = Q0;
                        __threadfence();
                        if (GNS_V17_FINALIZER)
                            before = ps_atom_add_acq_rel(&ps_cnt[u]);
                        else
                            ps_red_release(&ps_cnt[u]);
                    }
                    if (GNS_V17_FINALIZER) {
                        // The CTA whose partial completed the unit finalizes it for all.
                        before = __shfl_sync(0xffffffffu, before, 0);
                        if (before + 1u == static_cast<unsigned int>(mu)) {
                            while (ps_ld_acquire(&ps_cnt[u]) < static_cast<unsigned int>(mu)) {
                            }
                            double m, rstd;
                            ps_unit_stats(u, mu, nvg, V, eps, lane, &m, &rstd);
                            if (lane == 0) {
                                ps_fin[2 * u] = m;
                                ps_fin[2 * u + 1] = rstd;
                                ps_st_release(&ps_flag[u], 1u);
                            }
                        }
                    }
                }
                ts = 0.0;
                tq = 0.0;
                published = u;
            }
            ++next_stats;
            continue;
        }
        if (act == 2) coef_unit = ua;
        // Apply, in order, every summed chunk of the coefficients' unit.
        const float mean = tl.mean;
        while (next_apply < next_stats) {
            const int k = next_apply;
            int u, a, e;
            ps_chunk(p + static_cast<int64_t>(k) * P, cpu, nvg, &u, &a, &e);
            if (u != coef_unit) break;
            // A chunk spans at most 2 channels (S >= V * PS_CV).
            const uint4* sb = buf + static_cast<int64_t>(k % ns) * PS_CV;
            const int c0 = a * V / S;
            const int bound = (c0 + 1) * S;
            uint4* out = yv + static_cast<int64_t>(u) * nvg;
            // GNS_V17_STORE_FREE_WARP0: warp 0 (the one that publishes with a release and polls)
            // stores no y, so its release never waits for stores of its own to drain.
            constexpr int kAt = GNS_V17_STORE_FREE_WARP0 ? 32 : 0;
            for (int i = tid - kAt; i < e - a; i += PS_THREADS - kAt) {
                if (i < 0) break;
                Vec<T> v;
                v.raw = sb[i];
                const int ch = c0 + ((a + i) * V >= bound ? 1 : 0);
                const float A = tl.ca[ch], Bc = tl.cb[ch];
#pragma unroll
                for (int j = 0; j < V; ++j) v.set(j, cg_silu<T>(__fsub_rn(v.get(j), mean), A, Bc));
                cg_st_cs(out + a + i, v.raw);
            }
            __syncthreads();  // the slot read by every thread
            if (tid == 0 && k + ns < K) {
                asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
                issue(k + ns);
            }
            ++next_apply;
        }
    }
}

// ---- host ----

struct PsCard {
    int sms = 0;
    int per_sm[3] = {0, 0, 0};  // resident CTAs an SM with bucket b's shared memory (b = 1, 2)
    int slots[3] = {0, 0, 0};
    size_t dyn[3] = {0, 0, 0};
};

template <typename T>
const PsCard& ps_card() {
    static PsCard cards[kMaxDevices + 1];
    static bool filled[kMaxDevices + 1] = {};
    int cur = 0;
    if (cudaGetDevice(&cur) != cudaSuccess || cur < 0 || cur >= kMaxDevices) {
        cudaGetLastError();
        return cards[kMaxDevices];  // sms 0: the path is off
    }
    PsCard& card = cards[cur];
    if (filled[cur]) return card;
    filled[cur] = true;
    int sms = 0, per_sm = 0, optin = 0, reserved = 0, coop = 0;
    const void* fn = reinterpret_cast<const void*>(ps_kernel<T>);
    bool ok = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, cur) == cudaSuccess &&
              cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, cur) == cudaSuccess &&
              cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, cur) == cudaSuccess &&
              cudaDeviceGetAttribute(&reserved, cudaDevAttrReservedSharedMemoryPerBlock, cur) == cudaSuccess &&
              cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, cur) == cudaSuccess && coop != 0;
    int dmax = 0;
    for (int bk = 1; ok && bk <= 2; ++bk) {
        int d = per_sm / bk - reserved - 256;
        if (d > optin) d = optin;
        int slots = (d - kPsTailBytes) / (16 * PS_CV);
        if (slots > PS_MAX_SLOTS) slots = PS_MAX_SLOTS;
        if (slots < 2) continue;
        card.slots[bk] = slots;
        card.dyn[bk] = static_cast<size_t>(kPsTailBytes) + static_cast<size_t>(slots) * 16 * PS_CV;
        if (static_cast<int>(card.dyn[bk]) > dmax) dmax = static_cast<int>(card.dyn[bk]);
    }
    if (ok && dmax > 0) ok = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, dmax) == cudaSuccess;
    for (int bk = 1; ok && bk <= 2; ++bk) {
        if (card.slots[bk] == 0) continue;
        int n = 0;
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, fn, PS_THREADS, card.dyn[bk]) != cudaSuccess) n = 0;
        card.per_sm[bk] = n >= bk ? bk : 0;
    }
    cudaGetLastError();
    card.sms = ok ? sms : 0;
    return card;
}

template <typename T>
bool try_ps(kp_call* call, cudaStream_t s, int32_t* rc) {
    constexpr int V = Vec<T>::N;
    const kp_tensor& xt = call->tensors[0];
    if (!is_contiguous(xt)) return false;
    const T* x = static_cast<const T*>(xt.data);
    const T* w = static_cast<const T*>(call->tensors[1].data);
    const T* b = static_cast<const T*>(call->tensors[2].data);
    T* y = static_cast<T*>(call->tensors[3].data);
    const int G = static_cast<int>(call->scalars[0]);
    const float eps = static_cast<float>(call->scalars[1]);
    const int64_t B = xt.shape[0], C = xt.shape[1];
    int64_t S = 1;
    for (int d = 2; d < xt.rank; ++d) S *= xt.shape[d];
    const int64_t cpg = C / G, units = B * G, gs = cpg * S;
    if (units * gs * static_cast<int64_t>(sizeof(T)) < kPsMinX) return false;
    if (S % V != 0 || S < int64_t(V) * PS_CV || cpg > PS_MAX_CPG || units > kPsMaxUnits) return false;
    if ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(y)) % 16 != 0) return false;
    const int64_t nvg = gs / V;
    if (nvg >= (int64_t(1) << 30) / V) return false;  // element offsets in a unit fit int
    const int64_t cpu = (nvg + PS_CV - 1) / PS_CV;
    const PsCard& card = ps_card<T>();
    if (card.sms <= 0) return false;
    int bk = 0;
    int64_t P = 0;
    for (int cand = 2; cand >= 1; --cand) {
        if (card.per_sm[cand] <= 0) continue;
        const int64_t grid = static_cast<int64_t>(card.sms) * card.per_sm[cand];
        const int64_t mu = cpu < grid ? cpu : grid;
        if ((cpu + grid - 1) / grid > card.slots[cand] || units * mu > kPsMaxParts) continue;
        bk = cand;
        P = grid;
        break;
    }
    if (bk == 0) return false;
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeCooperative;
    attr[0].val.cooperative = 1;
    cfg.gridDim = dim3(static_cast<unsigned int>(P));
    cfg.blockDim = dim3(PS_THREADS);
    cfg.dynamicSmemBytes = card.dyn[bk];
    cfg.stream = s;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    const cudaError_t e = cudaLaunchKernelEx(&cfg, ps_kernel<T>, x, w, b, y, static_cast<int>(units), G,
                                             static_cast<int>(cpg), static_cast<int>(S), static_cast<int>(nvg),
                                             static_cast<int>(cpu), card.slots[bk], eps);
    if (e != cudaSuccess) {  // nothing launched: v12 takes the row
        cudaGetLastError();
        return false;
    }
    snprintf(call->path, KP_PATH_LEN, "ps_onepass_b%d_s%d_P%d_cpu%d", bk, card.slots[bk], static_cast<int>(P),
             static_cast<int>(cpu));
    *rc = launched(call);
    return true;
}

}  // namespace

extern "C" int32_t v17_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("kp_group_norm_silu");

extern "C" int32_t v17_group_norm_silu(kp_call* call, void* stream_ptr) {
    if (resident_call(call) && is_contiguous(call->tensors[0])) {
        cudaStream_t s = static_cast<cudaStream_t>(stream_ptr);
        int32_t rc = KP_OK;
        const int32_t dt = call->tensors[0].dtype;
        const bool ran = dt == KP_F16    ? try_ps<__half>(call, s, &rc)
                         : dt == KP_BF16 ? try_ps<__nv_bfloat16>(call, s, &rc)
                                         : false;
        if (ran) return rc;
    }
    return v12_group_norm_silu(call, stream_ptr);
}
