// kpilot-parent: baseline sha256 79728d62ae02cba4fa9b34719ca168c5c5dc2b121b8b015d3cc83ab4ea22fec1
// Candidate v2 for tasks/group_norm_silu: the baseline's own code on every path (baseline.cu is
// #included below, its entry renamed, not copied), plus v1's single-read resident kernel in ONE
// bucket of contiguous shapes, the one where v1's run 20261201T022451Z-e89f9a7d (NVIDIA H200)
// measured it faster: the baseline's one-pass domain (group < 2^18 elements), where upstream runs
// one 4-warp CTA a group (G*B = 32 CTAs on 132 SMs, latency-bound, each group walked twice).
//
// Bucket (a rule on the shape and the occupancy API, not a list of rows): x contiguous, 16-byte
// runs (group % (16 / sizeof(T)) == 0, x and y 16-byte aligned), 3 * 4096 < group < 2^18,
// B*G <= SM count (upstream's one-pass grid leaves SMs idle), and
//   chunks = min(floor(slots / (B*G)), floor(group / 8192))  (slots = resident CTAs on the card),
//   chunks < 3 -> 1 (one 512-thread CTA a group, no cross-CTA wait),
//   the chunk fitting the CTA's shared memory and B*G*chunks <= slots (one wave).
// Everything else (the chunked path, where v1 lost 0.55-0.98x; channels-last rows; small groups;
// other layouts and dtypes that miss the rule) calls the baseline, so it is the baseline's code and
// path names. Changes to v1's resident kernel: chunks per group = floor(slots / groups) instead of
// ceil (v1 launched 9 x 32 = 288 CTAs for 264 slots: a second wave that waited on the first), and
// never 2 chunks (regression row stress_offset_onepass_1x128x4x32x32, 2 chunks, measured 0.957x in that
// run: the wait cost more than the second CTA gained; one chunk of 15360 measured 1.20x).
//
// Prediction (not measured): the 18 contiguous production rows with 15360 <= group < 2^18 faster
// (group 15360, 1 chunk: about 1.2x as v1 measured; 3-6 chunks: 1.4-2.0x as v1 measured; the 10
// rows of group >= 81920, 8 chunks in one wave: at least v1's 1.86-3.51x, about 2.2-4x if the
// second wave was what cost v1 there); the other 62 production rows `same` (the baseline's code:
// its 43 kernels compile to the same SASS here as in baseline.cu); headline about 1.18-1.26x.

// The baseline, whole: its kernels, helpers (Vec, to_f, norm_silu, is_contiguous, refuse, ...) and
// its entry under another name, called for every shape outside the bucket.
#define kp_group_norm_silu baseline_group_norm_silu
#include "../baseline.cu"
#undef kp_group_norm_silu

namespace {

// ---- v1: single read of x. Each CTA of RES_THREADS threads takes a ticket (its start order),
// which names its (group, chunk); it loads its chunk of up to RES_ELEMS elements once from DRAM
// into shared memory, publishes the chunk's count, mean and M2 (two passes over shared memory),
// waits until every chunk of its group has published, combines the group's partials (Chan's
// formula, in float64, every CTA in the same order: identical statistics in every CTA), and
// writes y from shared memory. Tickets are taken in start order, so the CTAs of a later group
// only exist once every CTA of the earlier groups has started: with chunks-per-group <= CTAs
// that fit on the card at once (checked on the host with the occupancy API), every wait ends.
// Counters are left at zero by the last CTA through them, so graph replays start clean. ----
constexpr int RES_THREADS = 512;
constexpr int RES_RUNS = 13;  // 16-byte runs a thread: 104 KB of shared memory a CTA, two a SM
constexpr int kResMaxCtas = 1 << 20;
constexpr int kResMaxGroups = 1 << 16;

__device__ unsigned int g_ticket;
__device__ unsigned int g_done;
__device__ unsigned int g_arrive[kResMaxGroups];
__device__ unsigned int g_leave[kResMaxGroups];
// (count, mean, M2) of each chunk.
__device__ float g_part_n[kResMaxCtas];
__device__ float g_part_mean[kResMaxCtas];
__device__ float g_part_m2[kResMaxCtas];

__device__ __forceinline__ unsigned int ld_acquire(const unsigned int* p) {
    unsigned int v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

template <int NW>
__device__ __forceinline__ double block_sum_d(double v, double* smem) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    if (warp == 0) {
        double t = lane < NW ? smem[lane] : 0.0;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
        if (lane == 0) smem[0] = t;
    }
    __syncthreads();
    return smem[0];
}

template <typename T>
__global__ void __launch_bounds__(RES_THREADS) resident_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                                               const T* __restrict__ b, T* __restrict__ y,
                                                               int spatial, int groups, int cpg, int group_size,
                                                               int clen, int chunks, int total, float eps) {
    constexpr int V = Vec<T>::N, NW = RES_THREADS / 32;
    extern __shared__ uint4 tile[];
    __shared__ double red[32];
    __shared__ unsigned int s_ticket;
    if (threadIdx.x == 0) s_ticket = atomicAdd(&g_ticket, 1u);
    __syncthreads();
    const unsigned int ticket = s_ticket;
    const int row = static_cast<int>(ticket / chunks), chunk = static_cast<int>(ticket % chunks);
    const int g = row % groups;
    const int64_t base = static_cast<int64_t>(row) * group_size;  // contiguous x: groups back to back
    const int start = chunk * clen;  // clen <= RES_THREADS * RES_RUNS * V, a multiple of V
    const int n = min(clen, group_size - start);

    // One read of the chunk from DRAM, into shared memory; the sum on the way.
    float s = 0.0f;
#pragma unroll
    for (int r = 0; r < RES_RUNS; ++r) {
        const int i = (r * RES_THREADS + threadIdx.x) * V;  // element index within the chunk
        Vec<T> v;
        v.raw = i < n ? *reinterpret_cast<const uint4*>(x + base + start + i) : make_uint4(0, 0, 0, 0);
        tile[r * RES_THREADS + threadIdx.x] = v.raw;
#pragma unroll
        for (int k = 0; k < V; ++k) s += v.get(k);
    }
    const double cmean = block_sum_d<NW>(s, red) / n;
    float m2 = 0.0f;
    const float cm = static_cast<float>(cmean);
#pragma unroll
    for (int r = 0; r < RES_RUNS; ++r) {
        const int i = (r * RES_THREADS + threadIdx.x) * V;
        if (i < n) {
            Vec<T> v;
            v.raw = tile[r * RES_THREADS + threadIdx.x];
#pragma unroll
            for (int k = 0; k < V; ++k) {
                const float d = v.get(k) - cm;
                m2 = fmaf(d, d, m2);
            }
        }
    }
    const double cm2 = block_sum_d<NW>(m2, red);

    double mean, var;
    if (chunks == 1) {
        mean = cmean;
        var = cm2 / n;
    } else {
        if (threadIdx.x == 0) {
            g_part_n[ticket] = static_cast<float>(n);
            g_part_mean[ticket] = cm;
            g_part_m2[ticket] = static_cast<float>(cm2);
            __threadfence();
            atomicAdd(&g_arrive[row], 1u);
            while (ld_acquire(&g_arrive[row]) < static_cast<unsigned int>(chunks)) __nanosleep(64);
        }
        __syncthreads();
        // Chan: mean = sum(n_j mean_j) / N; M2 = sum(M2_j + n_j (mean_j - mean)^2), every CTA
        // reading the group's partials in the same order.
        const int64_t first = static_cast<int64_t>(row) * chunks;
        double sm = 0.0;
        for (int j = threadIdx.x; j < chunks; j += RES_THREADS)
            sm += static_cast<double>(__ldcg(&g_part_n[first + j])) * __ldcg(&g_part_mean[first + j]);
        mean = block_sum_d<NW>(sm, red) / group_size;
        double sq = 0.0;
        for (int j = threadIdx.x; j < chunks; j += RES_THREADS) {
            const double d = __ldcg(&g_part_mean[first + j]) - mean;
            sq += __ldcg(&g_part_m2[first + j]) + static_cast<double>(__ldcg(&g_part_n[first + j])) * d * d;
        }
        var = block_sum_d<NW>(sq, red) / group_size;
        if (threadIdx.x == 0 && atomicAdd(&g_leave[row], 1u) == static_cast<unsigned int>(chunks) - 1u) {
            // Every CTA of this group has read its statistics: reset for the next call.
            g_arrive[row] = 0u;
            g_leave[row] = 0u;
        }
    }
    const float fmean = static_cast<float>(mean);
    const float rstd = static_cast<float>(1.0 / sqrt(var + static_cast<double>(eps)));

    // Apply from shared memory; a 16-byte run never crosses a channel when spatial % V == 0.
    const int wgo = g * cpg;
    const bool per_run = spatial % V == 0;
#pragma unroll
    for (int r = 0; r < RES_RUNS; ++r) {
        const int i = (r * RES_THREADS + threadIdx.x) * V;
        if (i >= n) continue;
        Vec<T> v;
        v.raw = tile[r * RES_THREADS + threadIdx.x];
        const int e0 = start + i;
        if (per_run) {
            const int c = wgo + e0 / spatial;
            const float wc = to_f(w[c]), bc = to_f(b[c]);
#pragma unroll
            for (int k = 0; k < V; ++k) v.set(k, norm_silu(v.get(k), fmean, rstd, wc, bc));
        } else {
#pragma unroll
            for (int k = 0; k < V; ++k) {
                const int c = wgo + (e0 + k) / spatial;
                v.set(k, norm_silu(v.get(k), fmean, rstd, to_f(w[c]), to_f(b[c])));
            }
        }
        *reinterpret_cast<uint4*>(y + base + e0) = v.raw;
    }
    if (threadIdx.x == 0 && atomicAdd(&g_done, 1u) == static_cast<unsigned int>(total) - 1u) {
        g_ticket = 0u;
        g_done = 0u;
    }
}

struct ResidentCard {
    int slots;  // CTAs of resident_kernel<T> resident at once (0: the path is off)
    int sms;
};

// The card as resident_kernel<T> sees it (occupancy API, cached per dtype; errors cleared).
template <typename T>
const ResidentCard& resident_card() {
    static ResidentCard card{-1, 0};
    if (card.slots < 0) {
        int dev = 0, sms = 0, per_sm = 0;
        const size_t smem = sizeof(uint4) * RES_THREADS * RES_RUNS;
        const bool ok =
            cudaGetDevice(&dev) == cudaSuccess &&
            cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) == cudaSuccess &&
            cudaFuncSetAttribute(resident_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(smem)) == cudaSuccess &&
            cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, resident_kernel<T>, RES_THREADS, smem) ==
                cudaSuccess;
        cudaGetLastError();
        card.sms = ok ? sms : 0;
        card.slots = ok ? sms * per_sm : 0;
    }
    return card;
}

// The bucket: launches resident_kernel and returns true when the shape is in it, else returns
// false having launched and written nothing (the caller then runs the baseline). The call has
// already passed every check of the baseline's entry (resident_call below).
template <typename T>
bool try_resident(kp_call* call, cudaStream_t s, int32_t* rc) {
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
    const int64_t gs = C / G * S;
    constexpr int V = Vec<T>::N;
    constexpr int kResElems = RES_THREADS * RES_RUNS * V;
    // The baseline's one-pass domain, with more than 3 of its 4096-element trips over a group
    // (v1 measured 1.029x at 3 trips, 1.20x at 4).
    if (!is_contiguous(xt) || gs <= 3 * kBlock || gs >= kLargeGroup || gs % V != 0) return false;
    if ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(y)) % 16 != 0) return false;
    const ResidentCard& card = resident_card<T>();
    const int64_t bg = B * G;
    if (card.slots <= 0 || bg > card.sms || bg > kResMaxGroups) return false;
    // Chunks a group: as many as fill the card in one wave, each at least 8192 elements; never 2.
    int64_t chunks = card.slots / bg;
    if (chunks > gs / 8192) chunks = gs / 8192;
    if (chunks < 3) chunks = 1;
    const int64_t clen = ((gs + chunks - 1) / chunks + V - 1) / V * V;  // a multiple of V
    if (clen > kResElems) return false;  // the chunk must fit the CTA's shared memory
    const int64_t res_chunks = (gs + clen - 1) / clen;
    const int64_t total = bg * res_chunks;
    if (total > card.slots || total > kResMaxCtas) return false;  // one wave: every wait ends
    const size_t smem = sizeof(uint4) * RES_THREADS * RES_RUNS;
    resident_kernel<T><<<static_cast<int>(total), RES_THREADS, smem, s>>>(
        x, w, b, y, static_cast<int>(S), G, static_cast<int>(C / G), static_cast<int>(gs), static_cast<int>(clen),
        static_cast<int>(res_chunks), static_cast<int>(total), eps);
    snprintf(call->path, KP_PATH_LEN, "resident_single_read_c%d", static_cast<int>(res_chunks));
    *rc = launched(call);
    return true;
}

// Every check of the baseline's entry (kp_group_norm_silu in baseline.cu), in the same terms: a
// call that fails one of them goes to the baseline, which refuses it as upstream does.
bool resident_call(const kp_call* call) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != 4 || call->n_scalars != 2)
        return false;
    for (int i = 0; i < 4; ++i)
        if (call->tensors[i].rank < 0 || call->tensors[i].rank > KP_MAX_RANK) return false;
    const kp_tensor& x = call->tensors[0];
    const kp_tensor& w = call->tensors[1];
    const kp_tensor& b = call->tensors[2];
    const kp_tensor& y = call->tensors[3];
    const double g_d = call->scalars[0];
    if (x.rank < 2 || x.rank > 5) return false;
    if (!(g_d >= 1.0 && g_d <= 65535.0) || g_d != static_cast<double>(static_cast<int>(g_d))) return false;
    const int G = static_cast<int>(g_d);
    if (x.shape[1] % G != 0) return false;
    const int32_t dt = x.dtype;
    if (dt != KP_BF16 && dt != KP_F16 && dt != KP_F32) return false;
    if (w.dtype != dt || b.dtype != dt || y.dtype != dt) return false;
    if (w.rank != 1 || b.rank != 1 || w.shape[0] != x.shape[1] || b.shape[0] != x.shape[1]) return false;
    if (w.shape[0] > 1 && (w.stride[0] != 1 || b.stride[0] != 1)) return false;
    if (y.rank != x.rank || !is_contiguous(y)) return false;
    int64_t numel = 1;
    for (int d = 0; d < x.rank; ++d) {
        if (y.shape[d] != x.shape[d] || x.shape[d] <= 0) return false;
        numel *= x.shape[d];
    }
    return numel > 0 && numel < (int64_t(1) << 31);
}

}  // namespace

extern "C" {

int32_t kp_group_norm_silu(kp_call* call, void* stream_ptr) {
    if (resident_call(call)) {
        cudaStream_t s = static_cast<cudaStream_t>(stream_ptr);
        int32_t rc = KP_OK;
        const int32_t dt = call->tensors[0].dtype;
        const bool ran = dt == KP_F16    ? try_resident<__half>(call, s, &rc)
                         : dt == KP_BF16 ? try_resident<__nv_bfloat16>(call, s, &rc)
                                         : try_resident<float>(call, s, &rc);
        if (ran) return rc;
    }
    return baseline_group_norm_silu(call, stream_ptr);
}

}  // extern "C"
