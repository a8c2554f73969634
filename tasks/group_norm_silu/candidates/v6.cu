// kpilot-parent: v5 sha256 9e4d6484f1a75cd7127e5dcdcac6493171425364cb432e4dc20591fb94cbf564
// Candidate v6 for tasks/group_norm_silu: v5 plus ONE PERSISTENT launch for every contiguous chunked
// call (group >= 2^18), general and scalar-affine shapes alike, that keeps v4/v5's L2 reuse (x read
// once from DRAM, its second read an L2 hit) but keeps DRAM fed. Channels-last, one-pass and
// resident paths: v5's, unchanged (the channels-last path still runs v5's l2_chunked_kernel on y).
//
// Why (NVIDIA H200, v5 anchor run 20261201T042116Z-a8535f77): the contiguous chunked rows of 64 MB
// or more run at 43-63% of the copy bandwidth (4.23 TB/s): [1,256,17,256,256] 424.7 us (63.5%,
// stream reference 270.6 us), [1,128,17,256,256] 219.5 (61.4%), [1,256,17,256,80] 157.6 (53.5%),
// [1,256,5,256,80] 52.2 (47.5%). The scalar-affine ones run the baseline's three launches (x read
// twice from DRAM: 1.45x the compulsory bytes); the general-apply ones run v4's L2-ordered kernel,
// whose bytes are right (0.93x compulsory, ncu 20261201T040630Z-18c6d105) but which reaches only
// 43.7% of DRAM peak: 21760 short CTAs, each one 8192-element item with two block reductions, a
// ticket atomic and (apply) a flag wait; top stall `barrier`.
//
// Design (l2p_kernel<T, SCALAR>; path `l2p_persist_r<R>_<scalar|runch>_look<D>_grid<P>`):
// - Work list. A slice is L6_NT * R * 16 bytes of one group row (R = GNS6_RUNS = 4: 16 KB, 8192
//   fp16/bf16 or 4096 fp32 elements), slices numbered row-major (n_slices = rows * ns). Global step t
//   (0 <= t < n_slices + D) = stats of slice t (t < n_slices) + apply of slice t - D (t >= D), with D
//   = ns + (one round of tickets: the grid), capped so that D slices of x are at most 45% of the L2,
//   and never below ns (the path is refused when one row of x exceeds 45% of the L2).
// - Grid: the resident CTA count (occupancy API: 2 CTAs a SM at R = 4, 264 on the H200), 288
//   threads: 8 compute warps and 1 control warp. Each CTA draws tickets (atom.inc on one counter:
//   start order) and runs its steps in ticket order, software-pipelined: in iteration k the compute
//   threads issue cp.async (16 B, L1 bypassed) for the stats slice of local step k+2 (DRAM, normal
//   L2 priority) and the apply slice of local step k+1 (an L2 hit, evict-first policy), wait for
//   stats(k) and apply(k-1) (cp.async.wait_group 2: two steps of loads stay in flight, 64 KB a CTA,
//   128 KB a SM), reduce stats(k) (thread sums from shared memory, warp butterfly, one partial a
//   warp: the ONE block reduction of the step, one __syncthreads), then apply step k-1 (mean and
//   rstd from the control warp, w and b once a slice when S % slice == 0 -- the scalar-affine apply
//   -- else once a 16-byte run; y stored st.global.cs). Each thread reads only the shared bytes its
//   own cp.asyncs wrote (3 stats + 3 apply slots, 96 KB), so no barrier is needed for the data.
// - Control warp, after the barrier of iteration k, concurrently with the apply: draws the ticket
//   of local step k+4; publishes step k's slice (fp64 red.add of the slice's fp32 sum and sum of
//   squares into the row's accumulators, fence.acq_rel, atom.inc of the row's arrive counter); the
//   row's last arrival finalizes in fp64 (mean = S/n, var = max(Q/n - mean^2, 0), rstd =
//   1/sqrt(var + eps)), resets the accumulators and st.release's the row's ready flag; then gets the
//   statistics of step k's apply row: from its register cache when the CTA already holds that row's,
//   else by spinning on the flag (ld.acquire, nanosleep) -- an apply's loads are in flight already.
// - Reuse distance: between a slice's stats read and its apply read the card reads about D slices
//   of x (ns + grid: 22 MB on [1,256,17,256,256], 10 MB on [1,256,17,256,80]; v4 measured 0.93x
//   compulsory DRAM bytes at 11 MB).
//
// Why it cannot hang (no co-residency assumption: a CTA that is not resident holds no ticket):
// (1) tickets are drawn by running CTAs only, in increasing order per CTA, and a CTA processes its
// steps in ticket order; (2) the control lane publishes step k's stats (its arrive atomic) BEFORE
// it waits for step k's apply row, and it never waits for anything else; every stats step it holds
// unpublished at that moment has a larger ticket than the step it waits in; (3) the apply of step
// t needs the stats of the slices of its row, all of index <= t - D + ns - 1 < t (D >= ns), each
// drawn earlier by a running CTA; (4) a finalize never waits. Take the smallest step t whose wait
// never ends: each slice it needs was drawn by some CTA C; C reaches that slice's publication,
// because before it C only waits in steps of smaller index (they end, t being the smallest) and
// barriers (all of C's warps arrive unless C's control lane waits forever, which by the same
// reason it does not); so every slice of the row arrives, the last one finalizes and sets the
// flag, and t's wait ends: contradiction. Checked by a protocol simulation (random interleavings,
// 1-40 CTAs, down to one resident CTA at a time, slack 0 to grid, 1-5 rows, 1-16 slices a row).
// Clean state for back-to-back calls and graph replays: every counter is an atom.inc that wraps to
// 0 on its last use in the launch: the ticket after exactly n_steps + grid draws (each CTA draws
// until its first ticket >= n_steps, then stops: one failing draw a CTA), a row's arrive after its
// ns slices, its leave after its ns applies (the one that wraps it also clears the ready flag:
// every reader of the flag has counted itself after reading); the finalizer zeroes the row's fp64
// accumulators after reading them (all ns additions precede the last arrival). The counters are
// per process, as v5's: two launches in flight at once on different streams would share them.
//
// Numerics: per thread, a run's 8 (fp32: 4) elements summed in order and its squares as an fma
// chain, runs added pairwise, a warp butterfly and the 8 warps' partials in fp32 (a slice's sums
// in fp32 as the baseline's chunk partials), then rows summed in fp64: at least as accurate as the
// baseline's all-fp32 sum / sum of squares; var clamped at 0 (the baseline's fp32 form can go
// negative). Apply: y = silu(x * a + c) with a = rstd * w, c = b - mean * a (one fma an element),
// silu as v * rcp.approx.ftz(1 + ex2.approx.ftz(-v log2 e)). Not the baseline's bits; errors
// ~1e-6 absolute against tolerances 3e-3 (fp16), 7e-2 (bf16), 1e-5 + 1e-5 |ref| (fp32).
// Registers (ptxas, sm_90a, CUDA 13): fp16 90 / 96 (general / scalar), bf16 94 / 94, fp32 70 / 66;
// no spills; 2 CTAs a SM (shared memory: 96 KB dynamic + 160 B).
//
// Prediction (H200, not measured). Two regimes; the first is the central one. (a) L2-bound: the
// design moves 1.5x the compulsory bytes through the L2 (x read twice, y written once), and ncu
// puts the L2 near its limit at about 4.2-4.7 TB/s of such traffic (lts__throughput: the baseline's
// stats kernel 84-87% at 3.89 TB/s of reads; v5 72.6% at 3.41 TB/s; ncu 20261201T040630Z-18c6d105),
// so about 3.0 TB/s of compulsory bytes, 68-76% of copy: [1,256,17,256,256] 356-400 us (1.06-1.19x
// over v5's 424.7), [1,128,17,256,256] 179-201 us, [1,256,17,256,80] 112-127 us (1.24-1.41x),
// [1,256,5,256,80] 34-40 us (1.32-1.55x), the 35-63 MB rows 11-25 us (1.4-1.9x). (b) If the L2 does
// not bind: 0.78-0.92 of the row's stream reference, e.g. [1,256,17,256,256] 294-347 us (78-92%).
// Issue 11's 90% of copy is NOT predicted (only the top of regime (b) reaches it): that needs the
// second read from on-chip memory, not L2 (NOTES.md, v6, "next").
// NOTES.md, "v6", has the table.
//
// v5's header follows (its parent: v4 sha256 c8c68b5ea21c846973fb9351e1e78a423f3b2f35ff68a3217324b7a67d4baf2d).
// Candidate v5 for tasks/group_norm_silu: v4 with its L2-ordered chunked launch only where the
// baseline's chunked path uses its general apply. v4 (run 20261201T035820Z-32a02a7b, NVIDIA H200)
// was 1.008-1.087x on the 16 contiguous general-apply rows but 0.856-0.948x on the 10 rows where the
// baseline runs apply_scalar_affine (spatial % 8192 == 0 and 64 chunks or more a group: a leaner
// apply than the general one v4's single launch uses), failing the gate. v5 sends those shapes to
// v3's path (the baseline's chunked launches; after the transpose for channels-last x).
// Prediction (H200): the general-apply rows as in v4's run (contiguous 1.01-1.09x, channels-last
// as v3 within 2%), the scalar-affine rows `same` as in v3, everything else v3's: headline about
// 1.86x, no row `slower`. Everything else is v4's, whose header follows.
// Revised after review (same kernels, same times expected): the resident and L2 cards (occupancy,
// shared-memory opt-in) are cached per device instead of once per process, and a channels-last C
// past the transpose grid's y limit goes to the baseline's copy instead of failing the launch.
//
// Candidate v4 for tasks/group_norm_silu: v3 (the baseline #included whole, v2's resident bucket,
// v3's tiled transpose for a channels-last x), plus the chunked path in one launch that reads a
// chunk of x the second time while it is still in L2.
//
// What changes from v3: every call the baseline would run on its chunked path (group >= 2^18) with
// a contiguous x, or on y after v3's transpose, with 16-byte runs (group % 16 == 0, x and y
// 16-byte aligned, spatial % (16 / element size) == 0: every production row), runs
// l2_chunked_kernel instead of the baseline's three launches (stats, finalize, apply). One CTA an
// 8192-element work item, 2N CTAs (N = rows x chunks); a CTA's ticket (atomicAdd, start order)
// names its item in the list stats(0..D-1), apply(0), stats(D), apply(1), stats(D+1), ...,
// apply(N-1) with D = chunks a row + half the resident CTAs (D >= chunks: a row's stats items all
// precede its apply items). A row's last stats item computes mean/rstd in the baseline's finalize
// order and releases a per-row flag; apply items load x (evict-first), wait for the flag, write y
// (evict-first). Statistics and y are the baseline's bit for bit (same summation order, same
// apply rounding). The reuse distance of x is D chunks (23.2 MB on the largest row, 5 CTAs a SM); the path is
// taken only when that is under 45% of the L2. Everything else: v3's code, unchanged. Paths
// `l2_chunked_v16B_look<D>` and `tiled_transpose+l2_chunked_v16B_look<D>`.
//
// Prediction (not measured; H200, v3's run 20261201T034038Z-5a4add7a as reference): DRAM moves x
// once and y once on the contiguous chunked rows of 64 MB or more, at 70-85% of the copy bandwidth
// (the row's stream reference / 0.70-0.85): [1,256,17,256,256] 424 -> 318-387 us (1.10-1.33x),
// [1,128,17,256,256] 220 -> 160-195 us, [1,256,17,256,80] 164 -> 101-123 us, the 67-214 MB rows
// 1.2-1.8x; contiguous chunked rows of 35-63 MB (x already L2-resident for the baseline's second
// read) 1.00-1.30x; channels-last chunked rows the transpose plus that: 1.07-1.48x. Issue 11's 90%
// of copy is not predicted (NOTES.md, v4).

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

// v3: v2's kernel body, unchanged, as a device function, so that it is compiled twice: as v2's
// resident_kernel (x and y __restrict__, distinct buffers) and as resident_inplace_kernel (one
// buffer xy, no __restrict__ promise), which the channels-last path runs on y after its
// transpose. In place is correct: a CTA reads exactly the elements [start, start + n) of its
// group row into shared memory, and writes exactly those elements, after its reads (block
// reductions and barriers in between); no other CTA reads or writes them.
template <typename T>
__device__ __forceinline__ void resident_body(const T* x, const T* w, const T* b, T* y, int spatial, int groups,
                                              int cpg, int group_size, int clen, int chunks, int total, float eps) {
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

template <typename T>
__global__ void __launch_bounds__(RES_THREADS) resident_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                                               const T* __restrict__ b, T* __restrict__ y,
                                                               int spatial, int groups, int cpg, int group_size,
                                                               int clen, int chunks, int total, float eps) {
    resident_body<T>(x, w, b, y, spatial, groups, cpg, group_size, clen, chunks, total, eps);
}

template <typename T>
__global__ void __launch_bounds__(RES_THREADS) resident_inplace_kernel(T* xy, const T* __restrict__ w,
                                                                       const T* __restrict__ b, int spatial,
                                                                       int groups, int cpg, int group_size, int clen,
                                                                       int chunks, int total, float eps) {
    resident_body<T>(xy, w, b, xy, spatial, groups, cpg, group_size, clen, chunks, total, eps);
}

struct ResidentCard {
    int slots;  // CTAs of the resident kernel resident at once (0: the path is off)
    int sms;
};

// The card as resident_kernel<T> (INPLACE: resident_inplace_kernel<T>) sees it (occupancy API,
// cached per kernel; errors cleared). Each kernel gets its own 104 KB dynamic shared memory
// opt-in and its own occupancy (same body; checked, not assumed).
constexpr int kMaxDevices = 16;  // a device past this takes the baseline's paths

template <typename T, bool INPLACE>
const ResidentCard& resident_card() {
    // One entry per device: the opt-in and the occupancy are per device (kpilot's worker uses one
    // device and one host thread; a multi-threaded host would need these behind a lock).
    static ResidentCard cards[kMaxDevices + 1] = {};
    static bool filled[kMaxDevices + 1] = {};
    int cur = 0;
    if (cudaGetDevice(&cur) != cudaSuccess || cur < 0 || cur >= kMaxDevices) {
        cudaGetLastError();
        return cards[kMaxDevices];  // slots 0: the path is off
    }
    ResidentCard& card = cards[cur];
    if (!filled[cur]) {
        filled[cur] = true;
        int dev = 0, sms = 0, per_sm = 0;
        const size_t smem = sizeof(uint4) * RES_THREADS * RES_RUNS;
        const void* fn = INPLACE ? reinterpret_cast<const void*>(resident_inplace_kernel<T>)
                                 : reinterpret_cast<const void*>(resident_kernel<T>);
        const bool ok =
            cudaGetDevice(&dev) == cudaSuccess &&
            cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) == cudaSuccess &&
            cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)) ==
                cudaSuccess &&
            cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, fn, RES_THREADS, smem) == cudaSuccess;
        cudaGetLastError();
        card.sms = ok ? sms : 0;
        card.slots = ok ? sms * per_sm : 0;
    }
    return card;
}

// v2's bucket rule, unchanged, as a plan (nothing launched): true when a contiguous x of this
// shape at these addresses runs resident_kernel. The caller has checked x's layout.
struct ResPlan {
    int S, cpg, gs, clen, chunks, total;
};
template <typename T, bool INPLACE>
bool resident_plan(const kp_tensor& xt, int G, const void* x, const void* y, ResPlan* p) {
    const int64_t B = xt.shape[0], C = xt.shape[1];
    int64_t S = 1;
    for (int d = 2; d < xt.rank; ++d) S *= xt.shape[d];
    const int64_t gs = C / G * S;
    constexpr int V = Vec<T>::N;
    constexpr int kResElems = RES_THREADS * RES_RUNS * V;
    // The baseline's one-pass domain, with more than 3 of its 4096-element trips over a group
    // (v1 measured 1.029x at 3 trips, 1.20x at 4).
    if (gs <= 3 * kBlock || gs >= kLargeGroup || gs % V != 0) return false;
    if ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(y)) % 16 != 0) return false;
    const ResidentCard& card = resident_card<T, INPLACE>();
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
    *p = ResPlan{static_cast<int>(S), static_cast<int>(C / G), static_cast<int>(gs), static_cast<int>(clen),
                 static_cast<int>(res_chunks), static_cast<int>(total)};
    return true;
}

// v2's bucket: contiguous x, resident_kernel from x into y.
template <typename T>
bool try_resident(kp_call* call, cudaStream_t s, int32_t* rc) {
    const kp_tensor& xt = call->tensors[0];
    const T* x = static_cast<const T*>(xt.data);
    const T* w = static_cast<const T*>(call->tensors[1].data);
    const T* b = static_cast<const T*>(call->tensors[2].data);
    T* y = static_cast<T*>(call->tensors[3].data);
    const int G = static_cast<int>(call->scalars[0]);
    const float eps = static_cast<float>(call->scalars[1]);
    ResPlan p;
    if (!is_contiguous(xt) || !resident_plan<T, false>(xt, G, x, y, &p)) return false;
    const size_t smem = sizeof(uint4) * RES_THREADS * RES_RUNS;
    resident_kernel<T><<<p.total, RES_THREADS, smem, s>>>(x, w, b, y, p.S, G, p.cpg, p.gs, p.clen, p.chunks,
                                                          p.total, eps);
    snprintf(call->path, KP_PATH_LEN, "resident_single_read_c%d", p.chunks);
    *rc = launched(call);
    return true;
}

// ---- v3: x.contiguous() for a channels-last x as a tiled transpose through shared memory ----
// x viewed as [B][S][C] (C innermost), y as [B][C][S]. A CTA (256 threads) moves a tile of
// TS = 16 V spatial positions x TC = 8 V channels (V = 16 / element size: 128 x 64 fp16/bf16,
// 64 x 32 fp32; 16 KB, fp32 8 KB): every thread loads its 4 (fp32: 2) 16-byte vectors of x first
// (8 consecutive threads read 128 contiguous bytes of one spatial row), stores them to shared
// memory, and after the barrier gathers V elements of one channel into each 16-byte vector of y
// (8 consecutive threads write 128 contiguous bytes of one channel row; a warp writes 4 channel
// rows). Shared rows are 128 bytes (8 chunks of 16 bytes), the chunk of channel c in spatial row
// s stored at (c / V) ^ ((s / V) & 7): conflict-free 16-byte stores (8 lanes of a phase: 8
// distinct chunks of one row) and conflict-free element reads (8 lanes: 8 distinct chunks, the
// 4 channels of a lane quad in one chunk). Element-size templated (raw bits: the copy is exact);
// edges: C % V == 0 and S % V == 0 (whole 16-byte chunks), partial tiles masked per chunk.
// Loads are evict-first (x is read once); stores default (the kernels that follow read y).
constexpr int TR_THREADS = 256;

template <int ES>
struct RawT;
template <>
struct RawT<2> {
    using type = unsigned short;
};
template <>
struct RawT<4> {
    using type = unsigned int;
};

template <int ES>
__global__ void __launch_bounds__(TR_THREADS) cl_transpose_kernel(const uint4* __restrict__ x, uint4* __restrict__ y,
                                                                  int C, int S) {
    using R = typename RawT<ES>::type;
    constexpr int V = 16 / ES, TS = 16 * V, TC = 8 * V;
    constexpr int LOADS = TS * 8 / TR_THREADS;  // 16-byte vectors a thread: 4 (fp32: 2)
    __shared__ uint4 tile[TS][8];
    const int s0 = blockIdx.x * TS, c0 = blockIdx.y * TC;
    const int64_t base = static_cast<int64_t>(blockIdx.z) * C * S;  // elements
    const int cv_n = C / V;                                         // 16-byte vectors a spatial row
    uint4 v[LOADS];
#pragma unroll
    for (int k = 0; k < LOADS; ++k) {
        const int j = k * TR_THREADS + threadIdx.x;
        const int sl = j >> 3, cv = j & 7;
        const int s = s0 + sl, c = c0 + cv * V;
        v[k] = make_uint4(0u, 0u, 0u, 0u);
        if (s < S && c < C) v[k] = __ldcs(x + (base / V + static_cast<int64_t>(s) * cv_n + c / V));
    }
#pragma unroll
    for (int k = 0; k < LOADS; ++k) {
        const int j = k * TR_THREADS + threadIdx.x;
        const int sl = j >> 3, cv = j & 7;
        tile[sl][cv ^ ((sl / V) & 7)] = v[k];
    }
    __syncthreads();
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int k = 0; k < LOADS; ++k) {
        const int w = k * (TR_THREADS / 32) + (threadIdx.x >> 5);  // warp-instruction index, 0 .. 4V-1
        const int sv = (w & 1) * 8 + (lane & 7);                   // output vector within the tile's spatial run
        const int cl = (w >> 1) * 4 + (lane >> 3);                 // channel within the tile
        const int s = s0 + sv * V, c = c0 + cl;
        uint4 o;
        R* op = reinterpret_cast<R*>(&o);
        const int pc = (cl / V) ^ (sv & 7), e = cl % V;
#pragma unroll
        for (int i = 0; i < V; ++i) op[i] = reinterpret_cast<const R*>(&tile[sv * V + i][pc])[e];
        if (s < S && c < C) y[(base + static_cast<int64_t>(c) * S + s) / V] = o;
    }
}

// ---- v4: the chunked path in one launch, the second read of x from L2 ----
// The baseline's chunked path (stats grid, finalize grid, apply grid) reads x twice, a whole
// tensor apart: on rows of 64 MB or more the second read comes from DRAM (1.5x the compulsory
// bytes). Here one launch of 2N CTAs (N = rows x chunks, the baseline's 8192-element chunks) runs
// the same work items in an order that brings each chunk's apply close to its stats. Each CTA
// takes a ticket (atomicAdd, in start order); ticket t names item t of the list
//   stats(0), ..., stats(D-1), apply(0), stats(D), apply(1), stats(D+1), ..., apply(N-D-1),
//   stats(N-1), apply(N-D), ..., apply(N-1)
// (chunks numbered row-major over (row, chunk)). D >= chunks a row, so every stats item of a row
// precedes every apply item of that row; D = chunks + half the CTAs resident at once, so a
// row's last stats item is one resident window of tickets (2 (D - chunks)) ahead of the row's
// first apply and has normally finished when that apply starts (an apply issues its loads before
// it waits, so a short wait is hidden behind them). Between a chunk's stats read and its apply
// read the card reads D chunks of x (and writes about D chunks of y with evict-first stores), so
// the host takes this path only when D chunks of x fit in 45% of the L2.
//
// Statistics: a stats item is the baseline's stats_kernel CTA (same thread layout, thread sums,
// block_sum<8>, sum = (0 + S0) + S1), its partials in the baseline's partial arrays; the row's
// last stats item to arrive (per-row counter) runs the baseline's finalize_kernel order on its
// first 128 threads (the other 128 add zeros: block_sum<8> over warps 4-7 at 0 equals block_sum<4>)
// and finish_stats, so mean and rstd are the baseline's bit for bit, and then releases the row's
// ready flag. An apply item loads its x (evict-first: the last use), then waits for the flag,
// then computes the baseline's norm_silu (add.rn form) per element with the channel's w and b
// (one lookup a 16-byte run: spatial % V == 0) and stores y evict-first: y equals the baseline's
// bit for bit.
//
// Cannot hang: an apply item waits only for stats items of its own row, all of which have lower
// tickets; a ticket is taken by a CTA that is running, and stats items never wait, so each of
// them finishes (the last one's finalize included) whatever the later CTAs do.
// Clean state for the next call or graph replay: the last apply CTA of a row through its leave
// counter zeroes the row's arrive, ready and leave (every stats CTA of the row has arrived, every
// apply CTA has read the flag and the statistics); the CTA that takes the launch's last ticket
// (2N - 1) zeroes g4_ticket right after its atomicAdd (every CTA takes exactly one ticket, so no
// other ticket is taken after it in this launch).
constexpr int L2C_THREADS = 256;
constexpr int kL2cMaxRows = 65536;

__device__ unsigned int g4_ticket;
__device__ unsigned int g4_arrive[kL2cMaxRows];
__device__ unsigned int g4_ready[kL2cMaxRows];
__device__ unsigned int g4_leave[kL2cMaxRows];
__device__ float g4_stats[2 * kL2cMaxRows];

__device__ __forceinline__ void st_release(unsigned int* p, unsigned int v) {
    asm volatile("st.release.gpu.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

// Predicated 16-byte loads and store (masked runs read 0); CS: evict-first (ld/st.global.cs).
template <bool CS>
__device__ __forceinline__ uint4 ld16(const void* p, bool pred) {
    uint4 v;
    if (CS)
        asm volatile(
            "{\n\t.reg .pred p;\n\tsetp.ne.b32 p, %4, 0;\n\tmov.u32 %0, 0;\n\tmov.u32 %1, 0;\n\tmov.u32 %2, 0;"
            "\n\tmov.u32 %3, 0;\n\t@p ld.global.cs.v4.b32 {%0, %1, %2, %3}, [%5];\n\t}"
            : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
            : "r"(static_cast<int>(pred)), "l"(p)
            : "memory");
    else
        asm volatile(
            "{\n\t.reg .pred p;\n\tsetp.ne.b32 p, %4, 0;\n\tmov.u32 %0, 0;\n\tmov.u32 %1, 0;\n\tmov.u32 %2, 0;"
            "\n\tmov.u32 %3, 0;\n\t@p ld.global.v4.b32 {%0, %1, %2, %3}, [%5];\n\t}"
            : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
            : "r"(static_cast<int>(pred)), "l"(p)
            : "memory");
    return v;
}
__device__ __forceinline__ void st16_cs(void* p, bool pred, const uint4& v) {
    asm volatile("{\n\t.reg .pred p;\n\tsetp.ne.b32 p, %0, 0;\n\t@p st.global.cs.v4.b32 [%1], {%2, %3, %4, %5};\n\t}"
                 :
                 : "r"(static_cast<int>(pred)), "l"(p), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
                 : "memory");
}

// x and y may be one buffer (the channels-last path runs this in place on y): an apply item reads
// exactly the elements it then writes, all its reads before its writes; the only other reader of
// those elements is the chunk's stats item, and the apply item writes only after the row's ready
// flag, which is set after every stats item of the row has consumed its loads (block reductions
// before its arrival).
template <typename T>
__global__ void __launch_bounds__(L2C_THREADS) l2_chunked_kernel(const T* x, const T* __restrict__ w,
                                                                 const T* __restrict__ b, T* y, int spatial,
                                                                 int groups, int cpg, int group_size, int chunks,
                                                                 int n_items, int look, int rb, float eps) {
    constexpr int NT = L2C_THREADS, V = Vec<T>::N, REPS = kBlock / (NT * V), RUNS = 2 * REPS;
    __shared__ float smem[8];
    __shared__ unsigned int s_ticket;
    __shared__ int s_last;
    __shared__ float s_ms[2];
    const unsigned int D = static_cast<unsigned int>(look), N = static_cast<unsigned int>(n_items), M = N - D;
    if (threadIdx.x == 0) {
        const unsigned int tk = atomicAdd(&g4_ticket, 1u);
        // The last ticket: every CTA of the launch has taken its one ticket, none will take another.
        if (tk == 2u * N - 1u) g4_ticket = 0u;
        s_ticket = tk;
    }
    __syncthreads();
    const unsigned int t = s_ticket;
    bool apply;
    unsigned int c;
    if (t < D) {
        apply = false;
        c = t;
    } else {
        const unsigned int j = t - D;
        if (j < 2u * M) {
            apply = (j & 1u) == 0u;
            c = apply ? j / 2u : D + j / 2u;
        } else {
            apply = true;
            c = M + (j - 2u * M);
        }
    }
    const int row = static_cast<int>(c / static_cast<unsigned int>(chunks));
    const int chunk = static_cast<int>(c) - row * chunks;
    const int64_t base = static_cast<int64_t>(row) * group_size;  // contiguous: groups back to back
    const int start = chunk * kChunk;
    // Run k of the thread: block k / REPS, rep k % REPS, at start + blk*kBlock + tid*V + rep*NT*V
    // (the baseline's stats and apply layout, both blocks loaded at once).
    Vec<T> v[RUNS];
    if (!apply) {
#pragma unroll
        for (int k = 0; k < RUNS; ++k) {
            const int idx = start + (k / REPS) * kBlock + threadIdx.x * V + (k % REPS) * NT * V;
            v[k].raw = ld16<false>(x + base + idx, idx < group_size);
        }
        float sum = 0.0f, sq = 0.0f;
#pragma unroll
        for (int blk = 0; blk < 2; ++blk) {
            // thread_sums' order: s = x0 + x1 + ...; q = fma(x0, x0, x1 * x1), then fma(xk, xk, q).
            const float x0 = v[blk * REPS].get(0), x1 = v[blk * REPS].get(1);
            float s = __fadd_rn(x0, x1);
            float q = __fmaf_rn(x0, x0, __fmul_rn(x1, x1));
#pragma unroll
            for (int r = 0; r < REPS; ++r)
#pragma unroll
                for (int i = 0; i < V; ++i) {
                    if (r == 0 && i < 2) continue;
                    const float xv = v[blk * REPS + r].get(i);
                    s = __fadd_rn(s, xv);
                    q = __fmaf_rn(xv, xv, q);
                }
            sum = __fadd_rn(sum, block_sum<8>(s, smem));
            sq = __fadd_rn(sq, block_sum<8>(q, smem));
        }
        if (threadIdx.x == 0) {
            g_partial_sum[c] = sum;
            g_partial_sq[c] = sq;
            __threadfence();
            const bool last = atomicAdd(&g4_arrive[row], 1u) == static_cast<unsigned int>(chunks) - 1u;
            if (last) __threadfence();
            s_last = last;
        }
        __syncthreads();
        if (s_last) {
            // finalize_kernel's order on threads 0..127 (grid (rows,), 4 warps there).
            const float* ps = g_partial_sum + static_cast<int64_t>(row) * chunks;
            const float* pq = g_partial_sq + static_cast<int64_t>(row) * chunks;
            float fsum = 0.0f, fsq = 0.0f;
            for (int off = 0; off < chunks; off += rb) {
                float s = 0.0f, q = 0.0f;
                if (threadIdx.x < 128) {
                    for (int r = 0; r * 512 < rb; ++r)
#pragma unroll
                        for (int i = 0; i < 4; ++i) {
                            const int j = threadIdx.x * 4 + r * 512 + i;
                            if (j < rb && off + j < chunks) {
                                s = __fadd_rn(s, __ldcg(ps + off + j));
                                q = __fadd_rn(q, __ldcg(pq + off + j));
                            }
                        }
                }
                fsum = __fadd_rn(fsum, block_sum<8>(s, smem));
                fsq = __fadd_rn(fsq, block_sum<8>(q, smem));
            }
            if (threadIdx.x == 0) {
                float mean, rstd;
                finish_stats(fsum, fsq, group_size, eps, mean, rstd);
                g4_stats[2 * row] = mean;
                g4_stats[2 * row + 1] = rstd;
                __threadfence();
                st_release(&g4_ready[row], 1u);
            }
        }
    } else {
        // The loads first (they do not depend on the statistics), then the wait.
#pragma unroll
        for (int k = 0; k < RUNS; ++k) {
            const int idx = start + (k / REPS) * kBlock + threadIdx.x * V + (k % REPS) * NT * V;
            v[k].raw = ld16<true>(x + base + idx, idx < group_size);
        }
        if (threadIdx.x == 0) {
            while (ld_acquire(&g4_ready[row]) == 0u) __nanosleep(100);
            s_ms[0] = __ldcg(&g4_stats[2 * row]);
            s_ms[1] = __ldcg(&g4_stats[2 * row + 1]);
            if (atomicAdd(&g4_leave[row], 1u) == static_cast<unsigned int>(chunks) - 1u) {
                // Every stats CTA of the row has arrived and every apply CTA has read the flag.
                g4_arrive[row] = 0u;
                g4_ready[row] = 0u;
                g4_leave[row] = 0u;
            }
        }
        __syncthreads();
        const float mean = s_ms[0], rstd = s_ms[1];
        const int wgo = (row % groups) * cpg;
#pragma unroll
        for (int k = 0; k < RUNS; ++k) {
            const int idx = start + (k / REPS) * kBlock + threadIdx.x * V + (k % REPS) * NT * V;
            const bool in = idx < group_size;
            const int ch = wgo + (in ? idx / spatial : 0);  // a run never crosses a channel (spatial % V == 0)
            const float wc = to_f(__ldg(w + ch)), bc = to_f(__ldg(b + ch));
#pragma unroll
            for (int i = 0; i < V; ++i) v[k].set(i, norm_silu(v[k].get(i), mean, rstd, wc, bc));
            st16_cs(y + base + idx, in, v[k].raw);
        }
    }
}

struct L2Card {
    int slots;  // CTAs of l2_chunked_kernel<T> resident at once (0: the path is off)
    int64_t l2_bytes;
};
template <typename T>
const L2Card& l2_card() {
    // One entry per device, as resident_card.
    static L2Card cards[kMaxDevices + 1] = {};
    static bool filled[kMaxDevices + 1] = {};
    int cur = 0;
    if (cudaGetDevice(&cur) != cudaSuccess || cur < 0 || cur >= kMaxDevices) {
        cudaGetLastError();
        return cards[kMaxDevices];  // slots 0: the path is off
    }
    L2Card& card = cards[cur];
    if (!filled[cur]) {
        filled[cur] = true;
        int dev = 0, sms = 0, per_sm = 0, l2 = 0;
        const bool ok =
            cudaGetDevice(&dev) == cudaSuccess &&
            cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) == cudaSuccess &&
            cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev) == cudaSuccess &&
            cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, l2_chunked_kernel<T>, L2C_THREADS, 0) ==
                cudaSuccess;
        cudaGetLastError();
        card.slots = ok ? sms * per_sm : 0;
        card.l2_bytes = ok ? l2 : 0;
    }
    return card;
}

// The chunked-path shapes this takes: a contiguous x (or y after the transpose) with group >= 2^18,
// 16-byte runs (group % 16 == 0, x and y 16-byte aligned, as the baseline's vec), spatial % V == 0
// (a run never crosses a channel), the baseline's workspace limits, and D chunks of x within 45%
// of the L2. Launches and returns true; false: nothing launched.
template <typename T>
bool try_l2_chunked(kp_call* call, cudaStream_t s, const kp_tensor& xt, const T* x, const T* w, const T* b, T* y,
                    int G, float eps, const char* pre, int32_t* rc) {
    constexpr int V = Vec<T>::N;
    const int64_t B = xt.shape[0], C = xt.shape[1];
    int64_t S = 1;
    for (int d = 2; d < xt.rank; ++d) S *= xt.shape[d];
    const int64_t gs = C / G * S;
    if (gs < kLargeGroup || gs % 16 != 0 || S % V != 0) return false;
    if ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(y)) % 16 != 0) return false;
    const int64_t rows = B * G, chunks = (gs + kChunk - 1) / kChunk, n = rows * chunks;
    if (n > kWsFloats || rows > kL2cMaxRows || 2 * n >= (int64_t(1) << 31)) return false;
    // v5: the baseline's scalar-affine shapes keep the baseline's launches (v4 lost there).
    if (S % kChunk == 0 && chunks >= 64) return false;
    const L2Card& card = l2_card<T>();
    if (card.slots <= 0) return false;
    int64_t look = chunks + card.slots / 2;
    if (look > n) look = n;
    if (look * kChunk * static_cast<int64_t>(sizeof(T)) * 100 > card.l2_bytes * 45) return false;
    const int rb = next_pow2(static_cast<int>(chunks)) < 1024 ? next_pow2(static_cast<int>(chunks)) : 1024;
    l2_chunked_kernel<T><<<static_cast<unsigned int>(2 * n), L2C_THREADS, 0, s>>>(
        x, w, b, y, static_cast<int>(S), G, static_cast<int>(C / G), static_cast<int>(gs), static_cast<int>(chunks),
        static_cast<int>(n), static_cast<int>(look), rb, eps);
    snprintf(call->path, KP_PATH_LEN, "%sl2_chunked_v16B_look%d", pre, static_cast<int>(look));
    *rc = launched(call);
    return true;
}

// v4's contiguous entry: a contiguous x in the chunked domain.
template <typename T>
bool try_l2_contiguous(kp_call* call, cudaStream_t s, int32_t* rc) {
    const kp_tensor& xt = call->tensors[0];
    if (!is_contiguous(xt)) return false;
    return try_l2_chunked<T>(call, s, xt, static_cast<const T*>(xt.data), static_cast<const T*>(call->tensors[1].data),
                             static_cast<const T*>(call->tensors[2].data), static_cast<T*>(call->tensors[3].data),
                             static_cast<int>(call->scalars[0]), static_cast<float>(call->scalars[1]), "", rc);
}

// Channels-last: x's strides are those of a contiguous [B, *spatial, C] (C stride 1, each spatial
// dim the product of C and the spatial sizes inside it, the batch C * S), size-1 dims ignored.
// channels_last_3d (rank 5) and channels_last (rank 4) are both this.
bool is_channels_last(const kp_tensor& t) {
    if (t.rank < 3) return false;
    if (t.shape[1] != 1 && t.stride[1] != 1) return false;
    int64_t want = t.shape[1];
    for (int d = t.rank - 1; d >= 2; --d) {
        if (t.shape[d] != 1 && t.stride[d] != want) return false;
        want *= t.shape[d];
    }
    return t.shape[0] == 1 || t.stride[0] == want;
}

// A channels-last x: the tiled transpose into y, then on y, in place, exactly what follows the
// baseline's copy (its run<T> with contiguous = true: the same kernels, grids and arguments as
// after its contiguous_copy_kernel, which also runs them on y in place), or v2's resident kernel
// in place when y, as a contiguous x, is in v2's bucket. Shapes this does not handle (C or S not
// a multiple of V, unaligned x or y, B > 65535, a call the baseline would refuse after its copy)
// return false having launched nothing: the caller runs the baseline.
template <typename T>
bool try_channels_last(kp_call* call, cudaStream_t s, int32_t* rc) {
    const kp_tensor& xt = call->tensors[0];
    if (is_contiguous(xt) || !is_channels_last(xt)) return false;
    constexpr int V = Vec<T>::N;
    const T* x = static_cast<const T*>(xt.data);
    const T* w = static_cast<const T*>(call->tensors[1].data);
    const T* b = static_cast<const T*>(call->tensors[2].data);
    T* y = static_cast<T*>(call->tensors[3].data);
    const int G = static_cast<int>(call->scalars[0]);
    const float eps = static_cast<float>(call->scalars[1]);
    const int64_t B = xt.shape[0], C = xt.shape[1];
    int64_t S = 1;
    for (int d = 2; d < xt.rank; ++d) S *= xt.shape[d];
    if (C % V != 0 || S % V != 0 || B > 65535) return false;
    if ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(y)) % 16 != 0) return false;
    // run()'s refusals (numel < 2^31 is resident_call's): the baseline refuses these itself.
    const int64_t gs = C / G * S;
    if (gs >= kLargeGroup) {
        const int64_t rows = B * G, chunks = (gs + kChunk - 1) / kChunk;
        if (rows * chunks > kWsFloats || rows > 65536) return false;
    }
    // y as the contiguous x of the kernels that follow.
    kp_tensor yt = xt;
    yt.data = y;
    int64_t want = 1;
    for (int d = xt.rank - 1; d >= 0; --d) {
        yt.stride[d] = want;
        want *= xt.shape[d];
    }
    ResPlan p;
    const bool res = resident_plan<T, true>(yt, G, y, y, &p);
    constexpr int TS = 16 * V, TC = 8 * V;
    if ((C + TC - 1) / TC > 65535) return false;  // grid.y's limit: the baseline's copy instead
    const dim3 grid(static_cast<unsigned int>((S + TS - 1) / TS), static_cast<unsigned int>((C + TC - 1) / TC),
                    static_cast<unsigned int>(B));
    cl_transpose_kernel<sizeof(T)><<<grid, TR_THREADS, 0, s>>>(reinterpret_cast<const uint4*>(x),
                                                               reinterpret_cast<uint4*>(y), static_cast<int>(C),
                                                               static_cast<int>(S));
    if (res) {
        const size_t smem = sizeof(uint4) * RES_THREADS * RES_RUNS;
        resident_inplace_kernel<T><<<p.total, RES_THREADS, smem, s>>>(y, w, b, p.S, G, p.cpg, p.gs, p.clen,
                                                                      p.chunks, p.total, eps);
        snprintf(call->path, KP_PATH_LEN, "tiled_transpose+resident_single_read_c%d", p.chunks);
        *rc = launched(call);
        return true;
    }
    if (try_l2_chunked<T>(call, s, yt, y, w, b, y, G, eps, "tiled_transpose+", rc)) return true;
    *rc = run<T>(call, s, yt, w, b, y, G, eps, /*contiguous=*/true);
    char after[KP_PATH_LEN];
    snprintf(after, KP_PATH_LEN, "%s", call->path);
    snprintf(call->path, KP_PATH_LEN, "tiled_transpose+%s", after);
    return true;
}

// ---- v6: every contiguous chunked call in one PERSISTENT launch, the second read of x from L2 ----
// (The design, the hang-freedom argument and the clean-state argument are in the file header.)
// Knob: GNS6_RUNS, the 16-byte runs a compute thread loads a slice (v6: 4, v6b: 2); a slice is
// L6_NT * GNS6_RUNS * 16 bytes of one group row (16 KB at 4), the unit of every step.
#ifndef GNS6_RUNS
#define GNS6_RUNS 4
#endif
constexpr int L6_NT = 256;                  // compute threads (8 warps); warp 8 is the control warp
constexpr int L6_THREADS = L6_NT + 32;
constexpr int L6_R = GNS6_RUNS;
static_assert(L6_R == 1 || L6_R == 2 || L6_R == 4 || L6_R == 8, "GNS6_RUNS: a power of two up to 8");
constexpr int L6_MINB = L6_R <= 2 ? 4 : (L6_R == 4 ? 2 : 1);  // CTAs a SM its shared memory allows
constexpr size_t kL6Smem = sizeof(uint4) * 6 * L6_R * L6_NT;    // 3 stats slots + 3 apply slots

__device__ unsigned int g6_ticket;
__device__ unsigned int g6_arrive[kL2cMaxRows];
__device__ unsigned int g6_ready[kL2cMaxRows];
__device__ unsigned int g6_leave[kL2cMaxRows];
__device__ double g6_sum[kL2cMaxRows];
__device__ double g6_sq[kL2cMaxRows];
__device__ float2 g6_stats[kL2cMaxRows];  // (mean, rstd) of a row, valid while its ready flag is set

// n / d for n < 2^31 (PyTorch's IntDivider, the baseline's int_divider): q = (umulhi(n, magic) + n) >> shift.
struct FastDiv {
    unsigned int magic, shift;
};
__device__ __forceinline__ unsigned int fdiv(unsigned int n, FastDiv d) { return (__umulhi(n, d.magic) + n) >> d.shift; }
FastDiv make_fastdiv(unsigned int v) {
    FastDiv d;
    int_divider(v, d.magic, d.shift);
    return d;
}

// 16-byte cp.async (L1 bypassed, cached in L2); `bytes` 0 zero-fills the slot and reads nothing.
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, uint32_t bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(bytes) : "memory");
}
// The same with an L2 evict-first policy (the apply read: x's last use).
__device__ __forceinline__ void cp_async16_ef(uint32_t dst, const void* src, uint32_t bytes, uint64_t pol) {
    asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2, %3;" ::"r"(dst), "l"(src), "r"(bytes),
                 "l"(pol)
                 : "memory");
}
// atom.global.inc.u32: returns the old value and stores (old >= lim ? 0 : old + 1), so a counter that
// is taken exactly lim + 1 times in a launch is back at 0 after the last (the clean state for the
// next launch, with no separate reset store). Not atom.add: ptxas aggregates a warp-uniform
// atom.add (vote, popc, shuffle of the result), which waits for the round trip at once.
__device__ __forceinline__ unsigned int atom_inc(unsigned int* p, unsigned int lim) {
    unsigned int old;
    asm volatile("atom.global.inc.u32 %0, [%1], %2;" : "=r"(old) : "l"(p), "r"(lim) : "memory");
    return old;
}
__device__ __forceinline__ void fence_acq_rel_gpu() { asm volatile("fence.acq_rel.gpu;" ::: "memory"); }
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}
__device__ __forceinline__ uint64_t policy_evict_first() {
    uint64_t p;
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(p));
    return p;
}
__device__ __forceinline__ float ex2_ftz(float v) {
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(v));
    return r;
}
__device__ __forceinline__ float rcp_ftz(float v) {
    float r;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(v));
    return r;
}
// silu(v) = v / (1 + 2^(-v log2 e)): MUFU.EX2 + MUFU.RCP, no fix-ups (v very negative: 2^t = inf,
// 1 / inf = 0, v * 0 = -0; v very positive: 2^t = 0, v * 1).
__device__ __forceinline__ float silu6(float v) {
    const float e = ex2_ftz(__fmul_rn(v, -1.44269504088896341f));
    return __fmul_rn(v, rcp_ftz(__fadd_rn(e, 1.0f)));
}

// A compute thread's R cp.asyncs of slice `slice` (row-major over (row, slice of the row)) into
// the slot whose run 0 (for this thread) is at shared address dst0; runs past the row's end zero-fill.
template <typename T, bool EF>
__device__ __forceinline__ void l6_issue(const T* x, uint32_t dst0, unsigned int slice, unsigned int gs,
                                         unsigned int ns, FastDiv ns_div, uint64_t pol) {
    constexpr int V = Vec<T>::N, R = L6_R, NT = L6_NT;
    constexpr unsigned int SL = NT * R * V;
    const unsigned int row = fdiv(slice, ns_div);
    const unsigned int off = (slice - row * ns) * SL + threadIdx.x * V;
    const T* src = x + static_cast<int64_t>(row) * gs;
#pragma unroll
    for (int j = 0; j < R; ++j) {
        const unsigned int e = off + j * NT * V;
        const bool in = e < gs;
        const T* p = src + (in ? e : 0u);
        const uint32_t dst = dst0 + static_cast<uint32_t>(j * NT * 16);
        if (EF)
            cp_async16_ef(dst, p, in ? 16u : 0u, pol);
        else
            cp_async16(dst, p, in ? 16u : 0u);
    }
}

// One launch of gridDim.x persistent CTAs (L6_THREADS threads: 8 compute warps, 1 control warp).
// Global step t (0 <= t < n_steps = n_slices + look) = stats of slice t (t < n_slices) + apply of
// slice t - look (t >= look). A CTA's local step k is the k-th ticket it drew. Iteration k:
//   A: compute threads issue stats(k+2) (DRAM) and apply(k+1) (L2) by cp.async into their own
//      shared slots; wait until stats(k) and apply(k-1) have landed (cp.async.wait_group 2);
//   B: stats of step k: thread sums from shared memory, a warp butterfly, one partial a warp to
//      shared memory; one __syncthreads;
//   D: (control lane) draw the ticket of local step k+4; publish step k's slice sums (fp64 atomics
//      into the row's accumulators, fence, arrive counter; the row's last arrival finalizes mean
//      and rstd in fp64 and releases the row's ready flag); then the statistics of step k's apply
//      row (waiting on its ready flag unless the CTA already holds that row's);
//   E: (compute threads, concurrently with D) apply of step k-1 from its shared slot, y stored
//      evict-first.
// Every thread reads only the shared bytes its own cp.asyncs wrote, so the one barrier a step is
// the reduction's; it also orders the control warp's s_ms / s_tick writes before their readers.
template <typename T, bool SCALAR>
__global__ void __launch_bounds__(L6_THREADS, L6_MINB)
    l2p_kernel(const T* x, const T* __restrict__ w, const T* __restrict__ b, T* y, unsigned int gs,
               unsigned int groups, unsigned int cpg, unsigned int ns, FastDiv ns_div, FastDiv sp_div,
               unsigned int n_slices, unsigned int look, unsigned int n_steps, float eps) {
    constexpr int V = Vec<T>::N, R = L6_R, NT = L6_NT, NWC = NT / 32;
    constexpr unsigned int SL = NT * R * V;
    constexpr uint32_t SLOT = static_cast<uint32_t>(R * NT * 16);  // bytes of one slot
    extern __shared__ uint4 l6_buf[];                               // [6][R][NT]: stats 0-2, apply 3-5
    __shared__ float2 red[2][NWC];
    __shared__ float2 s_ms[2];
    __shared__ unsigned int s_tick[2];
    __shared__ unsigned int s_first[2];
    const int tid = threadIdx.x;
    const bool ctrl = tid >= NT;
    const uint32_t my0 = static_cast<uint32_t>(__cvta_generic_to_shared(l6_buf)) + static_cast<uint32_t>(tid) * 16u;

    // Control lane state: drawing until the first ticket past the list; the last row's statistics.
    bool drawing = true;
    unsigned int cached_row = 0xffffffffu;
    float2 cached_ms = make_float2(0.0f, 0.0f);
    // The first four tickets (local steps 0-3), drawn one after the other (a ticket >= n_steps ends
    // the drawing; the launch's draws are exactly n_steps + gridDim.x, the last wraps the counter to
    // 0): step 0 first, so that its loads go out while the control lane draws steps 1-3.
    auto draw0 = [&]() -> unsigned int {
        if (!drawing) return n_steps;
        const unsigned int t = atom_inc(&g6_ticket, n_steps + gridDim.x - 1u);
        if (t >= n_steps) {
            drawing = false;
            return n_steps;
        }
        return t;
    };
    if (tid == NT) s_first[0] = draw0();
    __syncthreads();
    unsigned int t_prev = n_steps, t_cur = s_first[0];
    uint64_t pol = 0;
    if (!ctrl) {
        pol = policy_evict_first();
        if (t_cur < n_slices) l6_issue<T, false>(x, my0, t_cur, gs, ns, ns_div, pol);
        cp_async_commit();
    } else if (tid == NT) {
        s_first[1] = draw0();
        s_tick[0] = draw0();  // local step m >= 2 lives in s_tick[m & 1]
        s_tick[1] = draw0();
    }
    __syncthreads();
    unsigned int t_n1 = s_first[1];
    if (!ctrl) {
        if (t_n1 < n_slices) l6_issue<T, false>(x, my0 + SLOT, t_n1, gs, ns, ns_div, pol);
        if (t_cur < n_steps && t_cur >= look) l6_issue<T, true>(x, my0 + 3u * SLOT, t_cur - look, gs, ns, ns_div, pol);
        cp_async_commit();
    }
    for (unsigned int k = 0;; ++k) {
        const unsigned int t_n2 = s_tick[k & 1u];  // local step k + 2
        // A
        if (!ctrl) {
            if (t_n2 < n_slices) l6_issue<T, false>(x, my0 + ((k + 2u) % 3u) * SLOT, t_n2, gs, ns, ns_div, pol);
            if (t_n1 < n_steps && t_n1 >= look)
                l6_issue<T, true>(x, my0 + (3u + (k + 1u) % 3u) * SLOT, t_n1 - look, gs, ns, ns_div, pol);
            cp_async_commit();
        }
        const bool prev_apply = t_prev < n_steps && t_prev >= look;
        if (t_cur >= n_steps && !prev_apply) break;  // uniform: every thread holds the same tickets
        // B
        if (!ctrl) {
            cp_async_wait<2>();
            float s = 0.0f, q = 0.0f;
            if (t_cur < n_slices) {
                const uint4* src = l6_buf + (k % 3u) * R * NT + tid;
                float ss[R], qq[R];
#pragma unroll
                for (int j = 0; j < R; ++j) {
                    Vec<T> v;
                    v.raw = src[j * NT];
                    const float x0 = v.get(0);
                    float sj = x0, qj = __fmul_rn(x0, x0);
#pragma unroll
                    for (int i = 1; i < V; ++i) {
                        const float xi = v.get(i);
                        sj = __fadd_rn(sj, xi);
                        qj = __fmaf_rn(xi, xi, qj);
                    }
                    ss[j] = sj;
                    qq[j] = qj;
                }
#pragma unroll
                for (int h = R / 2; h > 0; h >>= 1)
#pragma unroll
                    for (int j = 0; j < h; ++j) {
                        ss[j] = __fadd_rn(ss[j], ss[j + h]);
                        qq[j] = __fadd_rn(qq[j], qq[j + h]);
                    }
                s = ss[0];
                q = qq[0];
            }
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) {
                s = __fadd_rn(s, __shfl_xor_sync(0xffffffffu, s, o));
                q = __fadd_rn(q, __shfl_xor_sync(0xffffffffu, q, o));
            }
            if ((tid & 31) == 0) red[k & 1u][tid >> 5] = make_float2(s, q);
        }
        __syncthreads();
        if (ctrl) {
            // D
            const int lane = tid & 31;
            float2 v = lane < NWC ? red[k & 1u][lane] : make_float2(0.0f, 0.0f);
#pragma unroll
            for (int o = NWC / 2; o > 0; o >>= 1) {
                v.x = __fadd_rn(v.x, __shfl_xor_sync(0xffffffffu, v.x, o));
                v.y = __fadd_rn(v.y, __shfl_xor_sync(0xffffffffu, v.y, o));
            }
            if (lane == 0) {
                // The draw and a cached row's leave first (their round trips overlap the rest).
                const unsigned int raw = drawing ? atom_inc(&g6_ticket, n_steps + gridDim.x - 1u) : 0u;  // local step k + 4
                const bool app = t_cur < n_steps && t_cur >= look;
                const unsigned int ra = app ? fdiv(t_cur - look, ns_div) : 0u;
                unsigned int lv = 0u;
                if (app && ra == cached_row) lv = atom_inc(&g6_leave[ra], ns - 1u);
                if (t_cur < n_slices) {
                    // Publish step k's slice before any wait (the hang-freedom rule).
                    const unsigned int r = fdiv(t_cur, ns_div);
                    atomicAdd(&g6_sum[r], static_cast<double>(v.x));
                    atomicAdd(&g6_sq[r], static_cast<double>(v.y));
                    fence_acq_rel_gpu();
                    if (atom_inc(&g6_arrive[r], ns - 1u) == ns - 1u) {  // the last of ns: back to 0
                        // Every slice of row r has added its sums: finalize (fp64), reset the
                        // accumulators for the next launch, release the flag.
                        fence_acq_rel_gpu();
                        const double S = __ldcg(&g6_sum[r]), Q = __ldcg(&g6_sq[r]);
                        const double inv = 1.0 / static_cast<double>(gs);
                        const double mean = S * inv;
                        const double var = fmax(Q * inv - mean * mean, 0.0);
                        const float rstd = static_cast<float>(1.0 / sqrt(var + static_cast<double>(eps)));
                        g6_stats[r] = make_float2(static_cast<float>(mean), rstd);
                        g6_sum[r] = 0.0;
                        g6_sq[r] = 0.0;
                        fence_acq_rel_gpu();
                        st_release(&g6_ready[r], 1u);
                    }
                }
                if (app) {
                    if (ra != cached_row) {
                        while (ld_acquire(&g6_ready[ra]) == 0u) __nanosleep(32);
                        cached_ms = __ldcg(&g6_stats[ra]);
                        cached_row = ra;
                        lv = atom_inc(&g6_leave[ra], ns - 1u);  // after its reads of the flag and the statistics
                    }
                    s_ms[k & 1u] = cached_ms;
                    // The row's last apply slice through here (leave back at 0): every reader of its
                    // flag is done.
                    if (lv == ns - 1u) g6_ready[ra] = 0u;
                }
                unsigned int next = n_steps;
                if (drawing) {
                    if (raw >= n_steps)
                        drawing = false;
                    else
                        next = raw;
                }
                s_tick[k & 1u] = next;
            }
        } else if (prev_apply) {
            // E: apply of local step k - 1 (its slice's statistics in s_ms[(k - 1) & 1]).
            const float2 ms = s_ms[(k + 1u) & 1u];
            const unsigned int ia = t_prev - look;
            const unsigned int row = fdiv(ia, ns_div);
            const unsigned int off = (ia - row * ns) * SL;
            const int64_t base = static_cast<int64_t>(row) * gs;
            const unsigned int wgo = (row % groups) * cpg;
            const uint4* src = l6_buf + (3u + (k + 2u) % 3u) * R * NT + tid;
            float a = 0.0f, c = 0.0f;
            if (SCALAR) {  // the slice lies in one channel
                const unsigned int ch = wgo + fdiv(off, sp_div);
                a = __fmul_rn(ms.y, to_f(__ldg(w + ch)));
                c = __fmaf_rn(-ms.x, a, to_f(__ldg(b + ch)));
            }
            Vec<T> v[R];
#pragma unroll
            for (int j = 0; j < R; ++j) v[j].raw = src[j * NT];  // zero-filled past the row's end
#pragma unroll
            for (int j = 0; j < R; ++j) {
                const unsigned int e = off + (j * NT + tid) * V;
                if (!SCALAR) {  // a 16-byte run lies in one channel (spatial % V == 0)
                    const unsigned int ch = wgo + fdiv(e < gs ? e : 0u, sp_div);
                    a = __fmul_rn(ms.y, to_f(__ldg(w + ch)));
                    c = __fmaf_rn(-ms.x, a, to_f(__ldg(b + ch)));
                }
#pragma unroll
                for (int i = 0; i < V; ++i) v[j].set(i, silu6(__fmaf_rn(v[j].get(i), a, c)));
                st16_cs(y + base + (e < gs ? e : 0u), e < gs, v[j].raw);
            }
        }
        t_prev = t_cur;
        t_cur = t_n1;
        t_n1 = t_n2;
    }
    if (!ctrl) cp_async_wait<0>();
}

struct L6Card {
    int slots;  // CTAs of l2p_kernel<T, SCALAR> resident at once (0: the path is off)
    int64_t l2_bytes;
};
template <typename T, bool SCALAR>
const L6Card& l6_card() {
    // One entry per device, as resident_card.
    static L6Card cards[kMaxDevices + 1] = {};
    static bool filled[kMaxDevices + 1] = {};
    int cur = 0;
    if (cudaGetDevice(&cur) != cudaSuccess || cur < 0 || cur >= kMaxDevices) {
        cudaGetLastError();
        return cards[kMaxDevices];  // slots 0: the path is off
    }
    L6Card& card = cards[cur];
    if (!filled[cur]) {
        filled[cur] = true;
        int sms = 0, per_sm = 0, l2 = 0;
        const void* fn = reinterpret_cast<const void*>(l2p_kernel<T, SCALAR>);
        const bool ok =
            cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, cur) == cudaSuccess &&
            cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, cur) == cudaSuccess &&
            cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kL6Smem)) ==
                cudaSuccess &&
            cudaFuncSetAttribute(fn, cudaFuncAttributePreferredSharedMemoryCarveout,
                                 static_cast<int>(cudaSharedmemCarveoutMaxShared)) == cudaSuccess &&
            cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, fn, L6_THREADS, kL6Smem) == cudaSuccess;
        cudaGetLastError();
        card.slots = ok ? sms * per_sm : 0;
        card.l2_bytes = ok ? l2 : 0;
    }
    return card;
}

// v6's contiguous entry: every contiguous x in the chunked domain (group >= 2^18), general and
// scalar-affine shapes alike, with 16-byte runs (group % 16 == 0, x and y 16-byte aligned,
// spatial % V == 0), within the baseline's workspace limits, and a row of x (ns slices) within
// 45% of the L2. Launches and returns true; false: nothing launched (v5's chain follows).
template <typename T>
bool try_l2p_contiguous(kp_call* call, cudaStream_t s, int32_t* rc) {
    const kp_tensor& xt = call->tensors[0];
    if (!is_contiguous(xt)) return false;
    constexpr int V = Vec<T>::N;
    constexpr int64_t SL = static_cast<int64_t>(L6_NT) * L6_R * V;
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
    if (gs < kLargeGroup || gs % 16 != 0 || S % V != 0) return false;
    if ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(y)) % 16 != 0) return false;
    const int64_t rows = B * G, chunks = (gs + kChunk - 1) / kChunk;
    if (rows * chunks > kWsFloats || rows > kL2cMaxRows) return false;  // the baseline's limits
    const int64_t ns = (gs + SL - 1) / SL, n = rows * ns;
    const bool scalar = S % SL == 0;  // a slice never crosses a channel
    const L6Card& card = scalar ? l6_card<T, true>() : l6_card<T, false>();
    if (card.slots <= 0) return false;
    const int64_t grid = card.slots < n ? card.slots : n;
    // Slices of x the reuse window may span: 45% of the L2. One row must fit (look >= ns is what
    // the hang-freedom argument needs); the slack past it is one round of tickets (grid).
    const int64_t cap = card.l2_bytes * 45 / 100 / (SL * static_cast<int64_t>(sizeof(T)));
    if (ns > cap) return false;
    int64_t look = ns + grid;
    if (look > cap) look = cap;
    if (look > n) look = n;
    const int64_t steps = n + look;
    if (steps + grid >= (int64_t(1) << 31)) return false;
    const FastDiv nsd = make_fastdiv(static_cast<unsigned int>(ns)), spd = make_fastdiv(static_cast<unsigned int>(S));
    const unsigned int g = static_cast<unsigned int>(grid);
    if (scalar)
        l2p_kernel<T, true><<<g, L6_THREADS, kL6Smem, s>>>(
            x, w, b, y, static_cast<unsigned int>(gs), static_cast<unsigned int>(G), static_cast<unsigned int>(C / G),
            static_cast<unsigned int>(ns), nsd, spd, static_cast<unsigned int>(n), static_cast<unsigned int>(look),
            static_cast<unsigned int>(steps), eps);
    else
        l2p_kernel<T, false><<<g, L6_THREADS, kL6Smem, s>>>(
            x, w, b, y, static_cast<unsigned int>(gs), static_cast<unsigned int>(G), static_cast<unsigned int>(C / G),
            static_cast<unsigned int>(ns), nsd, spd, static_cast<unsigned int>(n), static_cast<unsigned int>(look),
            static_cast<unsigned int>(steps), eps);
    snprintf(call->path, KP_PATH_LEN, "l2p_persist_r%d_%s_look%d_grid%d", L6_R, scalar ? "scalar" : "runch",
             static_cast<int>(look), static_cast<int>(grid));
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
        // v6: try_l2p_contiguous (every contiguous chunked shape) before v5's chain.
        const bool ran = dt == KP_F16 ? try_resident<__half>(call, s, &rc) ||
                                            try_l2p_contiguous<__half>(call, s, &rc) ||
                                            try_l2_contiguous<__half>(call, s, &rc) ||
                                            try_channels_last<__half>(call, s, &rc)
                         : dt == KP_BF16 ? try_resident<__nv_bfloat16>(call, s, &rc) ||
                                               try_l2p_contiguous<__nv_bfloat16>(call, s, &rc) ||
                                               try_l2_contiguous<__nv_bfloat16>(call, s, &rc) ||
                                               try_channels_last<__nv_bfloat16>(call, s, &rc)
                                         : try_resident<float>(call, s, &rc) ||
                                               try_l2p_contiguous<float>(call, s, &rc) ||
                                               try_l2_contiguous<float>(call, s, &rc) ||
                                               try_channels_last<float>(call, s, &rc);
        if (ran) return rc;
    }
    return baseline_group_norm_silu(call, stream_ptr);
}

}  // extern "C"
