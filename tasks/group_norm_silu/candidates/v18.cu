// kpilot-parent: v12 sha256 d47f722eaae04cbc7065553e648d136692fa110b950a3b962b12de8a5927e2f4
// Candidate v18 for tasks/group_norm_silu: v12 (#included whole, its entry under another symbol)
// plus one path for the large contiguous fp16/bf16 rows: v17's idea (x streamed through shared
// memory once by a co-resident grid, each chunk applied once its own group's statistics are in)
// with warps that own their chunks and never wait for one another (the sketch NOTES leaves under
// v17).
//
// Why. v17-v17d (commits b069999-60c5c68, NVIDIA H200) read x once but ran each CTA in lockstep
// steps: one thread decided, polled and published while 15 warps waited at a barrier, about 8-10 us
// a step whatever its bytes (ncu 20261203T161817Z-396e4d1b: top stall `barrier`, DRAM 33% of
// peak). Here a warp is the unit of progress: it loads, sums, publishes, polls and applies its own
// chunk; the only barrier is the one after the mbarriers are initialised.
//
// The kernel (ws_kernel<T>; one CTA an SM, W warps, one 16 KB slot a warp):
//   - The B*G groups ("units") of contiguous x are consecutive runs of nvg 16-byte vectors, each
//     cut into cpu chunks of up to 1024 vectors. Chunk c (of U*cpu) belongs to CTA c % P, and
//     within it (k = c / P) to warp k % W, which takes its chunks in order, one at a time, in its
//     own slot (TMA bulk copy, one mbarrier a warp, parity = its chunk count & 1).
//   - Statistics: a lane sums its 32 vectors in fp32 over 16 elements at a time and in fp64 after
//     (v17's chains), a warp butterfly, then lane 0 adds the chunk's {sum, sum of squares} into the
//     unit's fp64 accumulators (red.add.f64, each on its own 128-byte line) and increments the
//     unit's counter with a release. The unit is complete when its counter reaches cpu.
//   - Apply: lane 0 polls the counter (acquire), reads the two sums, and every lane computes mean,
//     var = max(Q/n - mean^2, 0) and rstd in fp64 from the same two values (the same numbers in
//     every warp of every CTA: the sums are read only once complete). The chunk's (at most two)
//     channels' weights are loaded before the poll. y = silu((x - mean) a + b) as v10h's cg_silu,
//     st.global.cs. Then the next chunk into the slot.
//   - Counters clean themselves: the last of a unit's cpu chunks to read its sums zeroes its
//     accumulators and counters, so every call starts from zero without a memset.
//   - No deadlock when no warp holds two chunks of one unit, i.e. a CTA holds at most W chunks of
//     a unit (ceil(cpu / P) <= W, the host's condition): a warp waits on unit u holding one chunk of
//     u; its earlier chunks were of lower units. The lowest unfinished unit u*: every chunk of it is
//     owned by a warp whose earlier chunks' units are finished, so each is loaded, summed and
//     counted, and u* finishes; by induction every unit does. A poll that has not ended after 2^26
//     tries traps (a bug, not a wait).
//   - The sums' fp64 additions run in arrival order: the mean and rstd are the same in every CTA of
//     a call, and may differ in the last bits from call to call.
//
// Dispatch (host; everything else, and any failed launch, runs v12 unchanged): contiguous x and y,
// fp16/bf16, x at least 64 MiB, S % 8 == 0, S >= 8192 (a chunk spans at most two channels), C/G <=
// 64, 16-byte aligned, B*G <= 8192, ceil(cpu / P) <= W. W = the 16 KB slots an SM's shared memory
// holds (14 on the H200), P = SMs, cooperative launch. (A launch that fails outside stream capture
// falls back to v12; under capture the error ends the capture, and the harness reports it.)
// Path: `ws_onepass_w<W>_P<P>_cpu<chunks a unit>`.
// Known limits: one call at a time a process (the __device__ accumulators, which also carry over
// between calls), as v14-v17. Two calls at once on one device would count into each other's
// units: a count that runs past cpu traps, but an overlap that lands exactly on cpu would mix the
// two calls' sums, and the counters would stay wrong for later calls.
// Amended after its run (a review, CPU only): the cleanup's increment is acquire-release and the
// zeroing stores are relaxed gpu-scope stores (they were a relaxed atomicAdd and plain stores: a
// data race in the PTX model, not seen in the run), and a count past cpu traps. As measured in run
// 20261203T163347Z-d2cc52ff the file is at commit dd7332b.
//
// PREDICTION (H200, not measured): correct on every row. A warp's chunk lives ~8-10 us (load,
// sums, wait, apply); with 13 warps an SM in flight that is ~21-26 GB/s of x a SM against the ~14.5
// that 90% of copy needs, so the 10 contiguous rows go from v17c's 40-50% of copy to 60-80% and
// 1.0-1.3x v12's speed, if a unit's wait for its slowest chunk stays short. If the hot counters
// (up to 1088 increments and polls a unit) serialise in the L2, less.

#include <stdint.h>

#include "kpilot_abi.h"

extern "C" int32_t v12_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("gns_v12_group_norm_silu");
#pragma nv_diag_suppress 1306
#include "v12.cu"
#pragma nv_diag_default 1306

namespace {

constexpr int WS_CV = 1024;  // 16-byte vectors a chunk (16 KB)
constexpr int WS_MAX_WARPS = 16;
constexpr int WS_MAX_CPG = 64;
constexpr int kWsMaxUnits = 8192;
constexpr int kWsLine = 16;  // doubles (or 32 uints) between two units' accumulators: 128 bytes
constexpr int64_t kWsMinX = int64_t(64) << 20;
constexpr unsigned int kWsMaxPolls = 1u << 26;

__device__ double ws_sum[kWsMaxUnits * kWsLine];
__device__ double ws_sq[kWsMaxUnits * kWsLine];
__device__ unsigned int ws_cnt[kWsMaxUnits * 2 * kWsLine];   // chunks summed
__device__ unsigned int ws_done[kWsMaxUnits * 2 * kWsLine];  // chunks that read the sums

__device__ __forceinline__ unsigned int ws_ld_acquire(const unsigned int* p) {
    unsigned int v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ double ws_ld_relaxed(const double* p) {
    double v;
    asm volatile("ld.relaxed.gpu.global.f64 %0, [%1];" : "=d"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ void ws_red_add_f64(double* p, double v) {
    asm volatile("red.relaxed.gpu.global.add.f64 [%0], %1;" ::"l"(p), "d"(v) : "memory");
}
__device__ __forceinline__ unsigned int ws_atom_add_acq_rel(unsigned int* p) {
    unsigned int old;
    asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;" : "=r"(old) : "l"(p) : "memory");
    return old;
}
__device__ __forceinline__ void ws_st_relaxed(double* p, double v) {
    asm volatile("st.relaxed.gpu.global.f64 [%0], %1;" ::"l"(p), "d"(v) : "memory");
}
__device__ __forceinline__ void ws_st_relaxed(unsigned int* p, unsigned int v) {
    asm volatile("st.relaxed.gpu.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ void ws_red_release(unsigned int* p) {
    asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(p) : "memory");
}

template <typename T>
__global__ void __launch_bounds__(WS_MAX_WARPS * 32, 1)
    ws_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, T* y, int units, int G,
              int cpg, int S, int nvg, int cpu, float eps) {
    constexpr int V = Vec<T>::N;
    extern __shared__ __align__(128) unsigned char ws_smem[];
    unsigned long long* mbar = reinterpret_cast<unsigned long long*>(ws_smem);  // one a warp
    uint4* buf = reinterpret_cast<uint4*>(ws_smem + 128);
    const int W = static_cast<int>(blockDim.x) >> 5;
    const int lane = threadIdx.x & 31, wp = threadIdx.x >> 5;
    const int P = static_cast<int>(gridDim.x), p = static_cast<int>(blockIdx.x);
    const int64_t nchunks = static_cast<int64_t>(units) * cpu;
    const int K = p < nchunks ? static_cast<int>((nchunks - p + P - 1) / P) : 0;
    const uint4* xv = reinterpret_cast<const uint4*>(x);
    uint4* yv = reinterpret_cast<uint4*>(y);
    uint4* slot = buf + static_cast<int64_t>(wp) * WS_CV;
    unsigned long long* mb = mbar + wp;

    if (lane == 0) {
        cg_mbar_init(mb);
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();  // the only CTA barrier

    const double n = static_cast<double>(nvg) * V;
    int uses = 0;
    for (int k = wp; k < K; k += W, ++uses) {
        const int64_t c = p + static_cast<int64_t>(k) * P;
        const int u = static_cast<int>(c / cpu);
        const int a = static_cast<int>(c - static_cast<int64_t>(u) * cpu) * WS_CV;
        const int e = a + WS_CV < nvg ? a + WS_CV : nvg;
        const int len = e - a;
        if (lane == 0) {
            if (uses > 0) asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
            cg_mbar_expect(mb, static_cast<uint32_t>(len) * 16u);
            cg_bulk_load(slot, xv + static_cast<int64_t>(u) * nvg + a, static_cast<uint32_t>(len) * 16u, mb);
        }
        // The chunk's channels (at most two: S >= V * WS_CV) and their weights, before any wait.
        const int c0 = a * V / S;
        const int bound = (c0 + 1) * S;
        const int g = u % G;
        const int c1 = c0 + 1 < cpg ? c0 + 1 : c0;
        const float w0 = to_f(__ldg(w + g * cpg + c0)), b0 = to_f(__ldg(b + g * cpg + c0));
        const float w1 = to_f(__ldg(w + g * cpg + c1)), b1 = to_f(__ldg(b + g * cpg + c1));
        cg_mbar_wait(mb, static_cast<uint32_t>(uses & 1));

        // Statistics: fp32 over at most 16 elements a lane, fp64 after, then the warp's butterfly.
        double ts = 0.0, tq = 0.0;
        for (int i0 = lane; i0 < len; i0 += 64) {
            float s = 0.0f, ss = 0.0f;
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                const int i = i0 + 32 * r;
                if (i < len) {
                    Vec<T> v;
                    v.raw = slot[i];
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
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            ts += __shfl_xor_sync(0xffffffffu, ts, o);
            tq += __shfl_xor_sync(0xffffffffu, tq, o);
        }
        double S0 = 0.0, Q0 = 0.0;
        if (lane == 0) {
            ws_red_add_f64(&ws_sum[u * kWsLine], ts);
            ws_red_add_f64(&ws_sq[u * kWsLine], tq);
            ws_red_release(&ws_cnt[u * 2 * kWsLine]);  // orders the two additions before it
            unsigned int polls = 0, got = 0;
            while ((got = ws_ld_acquire(&ws_cnt[u * 2 * kWsLine])) < static_cast<unsigned int>(cpu)) {
                if (++polls > kWsMaxPolls) __trap();
                __nanosleep(64);
            }
            // More than cpu chunks counted: another call shares these counters (two streams at
            // once): stop loudly rather than apply another call's sums.
            if (got != static_cast<unsigned int>(cpu)) __trap();
            S0 = ws_ld_relaxed(&ws_sum[u * kWsLine]);
            Q0 = ws_ld_relaxed(&ws_sq[u * kWsLine]);
            // The last of the unit's chunks to read its sums zeroes them for the next call. The
            // acquire-release increment orders every reader's loads above before the last reader's
            // zeroing (a relaxed one would let a slow reader's load see the zero).
            const unsigned int before = ws_atom_add_acq_rel(&ws_done[u * 2 * kWsLine]);
            if (before >= static_cast<unsigned int>(cpu)) __trap();
            if (before + 1u == static_cast<unsigned int>(cpu)) {
                ws_st_relaxed(&ws_sum[u * kWsLine], 0.0);
                ws_st_relaxed(&ws_sq[u * kWsLine], 0.0);
                ws_st_relaxed(&ws_cnt[u * 2 * kWsLine], 0u);
                ws_st_relaxed(&ws_done[u * 2 * kWsLine], 0u);
            }
        }
        S0 = __shfl_sync(0xffffffffu, S0, 0);
        Q0 = __shfl_sync(0xffffffffu, Q0, 0);
        const double m = S0 / n;
        double var = Q0 / n - m * m;
        if (var < 0.0) var = 0.0;
        const double rstd = 1.0 / sqrt(var + static_cast<double>(eps));
        const float mean = static_cast<float>(m);
        const float A0 = static_cast<float>(rstd * static_cast<double>(w0) * cg_coef_scale<T>());
        const float B0 = static_cast<float>(static_cast<double>(b0) * cg_coef_scale<T>());
        const float A1 = static_cast<float>(rstd * static_cast<double>(w1) * cg_coef_scale<T>());
        const float B1 = static_cast<float>(static_cast<double>(b1) * cg_coef_scale<T>());

        uint4* out = yv + static_cast<int64_t>(u) * nvg + a;
        for (int i = lane; i < len; i += 32) {
            Vec<T> v;
            v.raw = slot[i];
            const bool hi = (a + i) * V >= bound;
            const float A = hi ? A1 : A0, Bc = hi ? B1 : B0;
#pragma unroll
            for (int j = 0; j < V; ++j) v.set(j, cg_silu<T>(__fsub_rn(v.get(j), mean), A, Bc));
            cg_st_cs(out + i, v.raw);
        }
        __syncwarp();  // the slot read by every lane before the next copy into it
    }
}

// ---- host ----

struct WsCard {
    int sms = 0;
    int warps = 0;
    size_t dyn = 0;
};

template <typename T>
const WsCard& ws_card() {
    static WsCard cards[kMaxDevices + 1];
    static bool filled[kMaxDevices + 1] = {};
    int cur = 0;
    if (cudaGetDevice(&cur) != cudaSuccess || cur < 0 || cur >= kMaxDevices) {
        cudaGetLastError();
        return cards[kMaxDevices];  // sms 0: the path is off
    }
    WsCard& card = cards[cur];
    if (filled[cur]) return card;
    filled[cur] = true;
    int sms = 0, per_sm = 0, optin = 0, reserved = 0, coop = 0;
    const void* fn = reinterpret_cast<const void*>(ws_kernel<T>);
    bool ok = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, cur) == cudaSuccess &&
              cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, cur) == cudaSuccess &&
              cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, cur) == cudaSuccess &&
              cudaDeviceGetAttribute(&reserved, cudaDevAttrReservedSharedMemoryPerBlock, cur) == cudaSuccess &&
              cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, cur) == cudaSuccess && coop != 0;
    int d = per_sm - reserved - 256;
    if (d > optin) d = optin;
    int warps = (d - 128) / (16 * WS_CV);
    if (warps > WS_MAX_WARPS) warps = WS_MAX_WARPS;
    if (warps < 2) ok = false;
    const size_t dyn = 128 + static_cast<size_t>(warps) * 16 * WS_CV;
    if (ok) ok = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(dyn)) ==
                 cudaSuccess;
    int n = 0;
    if (ok && (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, fn, warps * 32, dyn) != cudaSuccess || n < 1))
        ok = false;
    cudaGetLastError();
    card.sms = ok ? sms : 0;
    card.warps = warps;
    card.dyn = dyn;
    return card;
}

// A contiguous call's shape as v18's path sees it; false where the path does not take the call
// (every refusal but the card's). v18b's dispatch reads the same shape.
struct WsShape {
    int G;
    int64_t S, cpg, units, gs, nvg, cpu;
};

template <typename T>
bool ws_shape(const kp_call* call, WsShape* sh) {
    constexpr int V = Vec<T>::N;
    const kp_tensor& xt = call->tensors[0];
    if (!is_contiguous(xt)) return false;
    sh->G = static_cast<int>(call->scalars[0]);
    sh->S = 1;
    for (int d = 2; d < xt.rank; ++d) sh->S *= xt.shape[d];
    sh->cpg = xt.shape[1] / sh->G;
    sh->units = xt.shape[0] * sh->G;
    sh->gs = sh->cpg * sh->S;
    if (sh->units * sh->gs * static_cast<int64_t>(sizeof(T)) < kWsMinX) return false;
    if (sh->S % V != 0 || sh->S < int64_t(V) * WS_CV || sh->cpg > WS_MAX_CPG || sh->units > kWsMaxUnits)
        return false;
    if ((reinterpret_cast<uintptr_t>(xt.data) | reinterpret_cast<uintptr_t>(call->tensors[3].data)) % 16 != 0)
        return false;
    sh->nvg = sh->gs / V;
    if (sh->nvg >= (int64_t(1) << 30) / V) return false;  // element offsets in a unit fit int
    sh->cpu = (sh->nvg + WS_CV - 1) / WS_CV;
    return true;
}

template <typename T>
bool try_ws(kp_call* call, cudaStream_t s, int32_t* rc) {
    WsShape sh;
    if (!ws_shape<T>(call, &sh)) return false;
    const T* x = static_cast<const T*>(call->tensors[0].data);
    const T* w = static_cast<const T*>(call->tensors[1].data);
    const T* b = static_cast<const T*>(call->tensors[2].data);
    T* y = static_cast<T*>(call->tensors[3].data);
    const float eps = static_cast<float>(call->scalars[1]);
    const WsCard& card = ws_card<T>();
    if (card.sms <= 0) return false;
    const int64_t P = card.sms;
    if ((sh.cpu + P - 1) / P > card.warps) return false;  // no warp holds two chunks of a unit
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeCooperative;
    attr[0].val.cooperative = 1;
    cfg.gridDim = dim3(static_cast<unsigned int>(P));
    cfg.blockDim = dim3(static_cast<unsigned int>(card.warps * 32));
    cfg.dynamicSmemBytes = card.dyn;
    cfg.stream = s;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    const cudaError_t e =
        cudaLaunchKernelEx(&cfg, ws_kernel<T>, x, w, b, y, static_cast<int>(sh.units), sh.G, static_cast<int>(sh.cpg),
                           static_cast<int>(sh.S), static_cast<int>(sh.nvg), static_cast<int>(sh.cpu), eps);
    if (e != cudaSuccess) {  // nothing launched: v12 takes the row
        cudaGetLastError();
        return false;
    }
    snprintf(call->path, KP_PATH_LEN, "ws_onepass_w%d_P%d_cpu%d", card.warps, static_cast<int>(P),
             static_cast<int>(sh.cpu));
    *rc = launched(call);
    return true;
}

}  // namespace

extern "C" int32_t v18_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("kp_group_norm_silu");

extern "C" int32_t v18_group_norm_silu(kp_call* call, void* stream_ptr) {
    if (resident_call(call) && is_contiguous(call->tensors[0])) {
        cudaStream_t s = static_cast<cudaStream_t>(stream_ptr);
        int32_t rc = KP_OK;
        const int32_t dt = call->tensors[0].dtype;
        const bool ran = dt == KP_F16    ? try_ws<__half>(call, s, &rc)
                         : dt == KP_BF16 ? try_ws<__nv_bfloat16>(call, s, &rc)
                                         : false;
        if (ran) return rc;
    }
    return v12_group_norm_silu(call, stream_ptr);
}
