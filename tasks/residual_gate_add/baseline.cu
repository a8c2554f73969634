// Baseline for tasks/residual_gate_add: a CUDA port of what SGLang 0.5.23 runs on NVIDIA GPUs for
//
//   out = residual + update * gate      (product rounded to the I/O dtype, then the sum rounded)
//
// Lineage (package sglang 0.5.23 from PyPI, wheel sglang-0.5.23-cp311-cp311-manylinux_2_34_x86_64.whl;
// paths relative to the unpacked wheel):
//   * Call sites: sglang/multimodal_gen/runtime/models/dits/ltx_2.py (LTX2TransformerBlock.forward:
//     residual_gate_add(hidden_states, attn_hidden_states, vgate_msa) and the other gated updates),
//     ideogram.py (residual_gate_add(residual, normed, tanh_gate)), flux_2.py
//     (_materialize_gated_residual / _defer_gated_residual). Each imports residual_gate_add from
//     sglang.kernels.ops.diffusion, which resolves it lazily (_EXPORTS) to
//     sglang/kernels/kda_kernels/residual_gate_add_jit.py:residual_gate_add.
//   * Dispatch (residual_gate_add): fp16/bf16 with _route() not None -> custom op
//     diffusion_residual_gate_add -> _launch: the CUDA kernels below (gate modes 0-3) or, for a
//     transposed-dense residual, the Triton kernel _rga_transposed; anything else (fp32 always) ->
//     eager `residual + update * gate`. _route: one dtype, dim >= 2, numel > 0,
//     update.shape == residual.shape; transposed-dense -> Triton; residual and update contiguous;
//     mode 0 gate.shape == residual.shape, 1 same rank with leading dims 1 and last D, 3 rank 3 with
//     gate (B, 1, D), 1 < B <= 65535 (gate made .contiguous()), 2 gate (.., 1) with residual's
//     leading dims (any other gate: eager); a mode other than 3 needs a contiguous gate.
//   * CUDA: sglang/kernels/kda_kernels/csrc/diffusion/residual_gate_add.cuh,
//     residual_gate_add::ResidualGateAddKernel<T>::run(out, residual, update, gate, hidden, mode)
//     on 1-D views. residual_gate_value: p = T(float(u) * float(g)); out = T(float(r) + float(p)),
//     round-to-nearest-even conversions (__float2bfloat16_rn / __float2half_rn).
//     Vectorized when out, residual, update and gate are 16-byte aligned and D % kVec == 0
//     (kVec = 8 for 16-bit T; 16-byte device::AlignedVector loads and stores):
//       mode 0: residual_gate_add_vec_kernel, 256 threads, grid min(cdiv(numel / 8, 256), 65535),
//               grid-stride over vectors;
//       modes 1, 3: residual_gate_add_broadcast_kernel, 256 threads (kBroadcastColsPerBlock), grid
//               (cdiv(D / 8, 256), min(cdiv(rows, 4), 65535), batches): a thread owns one column
//               vector, loads its gate vector once, then walks 4-row tiles (kBroadcastRowsPerBlock)
//               with a grid-stride over the tiles; columns past D / 8 return at once;
//       mode 2: residual_gate_add_scalar_kernel<kPerToken>, 256 threads, grid
//               min(cdiv(numel, 256), 65535), one element per thread per step, gate via __ldg.
//     Not vectorized: residual_gate_add_scalar_kernel<mode> with that launch. No dynamic shared
//     memory, no PDL. numel == 0 launches nothing.
//   * Eager (PyTorch): `update * gate` (one elementwise kernel writing a temporary rounded to the
//     dtype), then `residual + tmp` (a second kernel; fp32 opmath, rounded). For fp16/bf16 this is
//     bit-identical to the CUDA kernel; for fp32 it is two fp32 roundings with no FMA.
//
// This file:
//   * kda_vec_kernel / kda_bcast_kernel / kda_scalar_kernel<mode>: the CUDA kernels above, same
//     arithmetic, same launch, same dispatch (paths "kda_vec8_full_<dt>", "kda_bcast8_row_<dt>",
//     "kda_bcast8_batch_<dt>", "kda_scalar_<mode>_<dt>").
//   * eager_mul_kernel then eager_add_kernel ("eager_mul_add_<dt>"): PyTorch's two kernels for the
//     fallback, 128 threads x 4 elements per thread (PyTorch's elementwise block of 128 threads and
//     4 items per thread), broadcast through strides. The product goes to `out` (the harness's
//     output) instead of a fresh temporary (an implementation must not allocate): the same bytes
//     move, the same values are rounded at the same points.
//
// Deliberate differences from upstream, none visible in the result:
//   * Transposed-dense residual (upstream: Triton _rga_transposed, output in residual's layout):
//     the ABI's output is contiguous, so it runs the eager path here
//     ("eager_mul_add_<dt>:upstream_triton_transposed"). Regression row only.
//   * Mode 3 with a gate that has gaps between batch rows: upstream copies the [B, 1, D] gate
//     (.contiguous(), an allocation and a copy kernel) and then runs the broadcast kernel; here it
//     runs the eager path reading the gate in place ("...:upstream_mode3_gate_copy"). Regression row only.
//   * Mixed dtypes (PyTorch would type-promote, the output dtype then differs from residual's) and
//     integer dtypes: refused (no call site passes them). Shapes that do not broadcast to residual's
//     shape are refused, as PyTorch raises for them.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>

#include <algorithm>

#include "kpilot_abi.h"

namespace {

constexpr uint32_t kBlockSize = 256;
constexpr uint32_t kBcastRows = 4;    // kBroadcastRowsPerBlock
constexpr uint32_t kBcastCols = 256;  // kBroadcastColsPerBlock
constexpr int64_t kMaxGrid = 65535;
constexpr uintptr_t kAlign = 16;

enum Mode : int { kFull = 0, kRow = 1, kPerToken = 2, kBatchRow = 3 };

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_f(float x);
template <>
__device__ __forceinline__ float from_f<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half from_f<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// residual_gate_value: the product rounded to T, then the sum rounded to T (16-bit T only here).
template <typename T>
__device__ __forceinline__ T rga_value(T r, T u, T g) {
    const T p = from_f<T>(to_f(u) * to_f(g));
    return from_f<T>(to_f(r) + to_f(p));
}

// device::AlignedVector<T, 8> for a 2-byte T: 16-byte aligned storage of 8 uint16_t.
struct alignas(16) Pack8 {
    uint16_t v[8];
};

template <typename T>
struct Vec8 {
    Pack8 s;
    __device__ __forceinline__ void load(const void* p, int64_t i) { s = reinterpret_cast<const Pack8*>(p)[i]; }
    __device__ __forceinline__ void store(void* p, int64_t i) const { reinterpret_cast<Pack8*>(p)[i] = s; }
    __device__ __forceinline__ T& operator[](int k) { return reinterpret_cast<T*>(&s)[k]; }
    __device__ __forceinline__ T operator[](int k) const { return reinterpret_cast<const T*>(&s)[k]; }
};

template <typename T>
__global__ void kda_vec_kernel(T* __restrict__ out, const T* __restrict__ res, const T* __restrict__ upd,
                               const T* __restrict__ gate, int64_t num_vectors) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t v = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; v < num_vectors; v += stride) {
        Vec8<T> r, u, g, o;
        r.load(res, v);
        u.load(upd, v);
        g.load(gate, v);
#pragma unroll
        for (int k = 0; k < 8; ++k) o[k] = rga_value(r[k], u[k], g[k]);
        o.store(out, v);
    }
}

template <typename T>
__global__ void kda_bcast_kernel(T* __restrict__ out, const T* __restrict__ res, const T* __restrict__ upd,
                                 const T* __restrict__ gate, int64_t rows, int64_t row_vectors) {
    const int64_t col = static_cast<int64_t>(blockIdx.x) * kBcastCols + threadIdx.x;
    if (col >= row_vectors) return;
    Vec8<T> g;
    g.load(gate, static_cast<int64_t>(blockIdx.z) * row_vectors + col);
    const int64_t row_stride = static_cast<int64_t>(gridDim.y) * kBcastRows;
    for (int64_t base = static_cast<int64_t>(blockIdx.y) * kBcastRows; base < rows; base += row_stride) {
#pragma unroll
        for (uint32_t k = 0; k < kBcastRows; ++k) {
            const int64_t row = base + k;
            if (row >= rows) continue;
            const int64_t v = (static_cast<int64_t>(blockIdx.z) * rows + row) * row_vectors + col;
            Vec8<T> r, u, o;
            r.load(res, v);
            u.load(upd, v);
#pragma unroll
            for (int e = 0; e < 8; ++e) o[e] = rga_value(r[e], u[e], g[e]);
            o.store(out, v);
        }
    }
}

template <typename T, int M>
__global__ void kda_scalar_kernel(T* __restrict__ out, const T* __restrict__ res, const T* __restrict__ upd,
                                  const T* __restrict__ gate, int64_t numel, int64_t hidden, int64_t batch_numel) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < numel; i += stride) {
        int64_t gi;
        if constexpr (M == kFull) {
            gi = i;
        } else if constexpr (M == kPerToken) {
            gi = i / hidden;
        } else if constexpr (M == kBatchRow) {
            gi = (i / batch_numel) * hidden + i % hidden;
        } else {
            gi = i % hidden;
        }
        const T gv = __ldg(gate + gi);
        out[i] = rga_value(res[i], upd[i], gv);
    }
}

// ---- Eager fallback: PyTorch's `update * gate` then `residual + tmp`, broadcast via strides. ----

constexpr int kEagerThreads = 128;
constexpr int kEagerItems = 4;

struct Bcast {
    int rank;
    int64_t size[KP_MAX_RANK];    // out's shape (contiguous)
    int64_t st[3][KP_MAX_RANK];   // element strides of three operands over out's index (0: broadcast)
    bool flat[3];                 // operand i addressed by the linear index itself
};

__device__ __forceinline__ int64_t operand_offset(const Bcast& b, int k, int64_t i) {
    if (b.flat[k]) return i;
    int64_t off = 0;
    for (int d = b.rank - 1; d >= 0; --d) {
        const int64_t n = b.size[d];
        off += (i % n) * b.st[k][d];
        i /= n;
    }
    return off;
}

__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }

// tmp (= out) = T(update * gate); operands: 0 update, 1 gate.
template <typename T>
__global__ void __launch_bounds__(kEagerThreads) eager_mul_kernel(T* __restrict__ out, const T* __restrict__ upd,
                                                                    const T* __restrict__ gate, Bcast b, int64_t n) {
    const int64_t base = static_cast<int64_t>(blockIdx.x) * (kEagerThreads * kEagerItems) + threadIdx.x;
#pragma unroll
    for (int k = 0; k < kEagerItems; ++k) {
        const int64_t i = base + k * kEagerThreads;
        if (i < n) out[i] = from_f<T>(mul_rn(to_f(upd[operand_offset(b, 0, i)]), to_f(gate[operand_offset(b, 1, i)])));
    }
}

// out = T(residual + tmp); operand 2: residual.
template <typename T>
__global__ void __launch_bounds__(kEagerThreads) eager_add_kernel(T* __restrict__ out, const T* __restrict__ res,
                                                                    Bcast b, int64_t n) {
    const int64_t base = static_cast<int64_t>(blockIdx.x) * (kEagerThreads * kEagerItems) + threadIdx.x;
#pragma unroll
    for (int k = 0; k < kEagerItems; ++k) {
        const int64_t i = base + k * kEagerThreads;
        if (i < n) out[i] = from_f<T>(add_rn(to_f(res[operand_offset(b, 2, i)]), to_f(out[i])));
    }
}

// ---- Host side ----

void set_path(kp_call* call, const char* fmt, const char* a = "", const char* b = "") {
    snprintf(call->path, KP_PATH_LEN, fmt, a, b);
}

int32_t refuse(kp_call* call, const char* why) {
    snprintf(call->path, KP_PATH_LEN, "unsupported:%s", why);
    return KP_NOT_SUPPORTED;
}

int64_t numel_of(const kp_tensor& t) {
    int64_t n = 1;
    for (int d = 0; d < t.rank; ++d) n *= t.shape[d];
    return n;
}

// torch's is_contiguous: row-major, size-1 dims ignored.
bool is_contiguous(const kp_tensor& t) {
    int64_t want = 1;
    for (int d = t.rank - 1; d >= 0; --d) {
        if (t.shape[d] == 1) continue;
        if (t.stride[d] != want) return false;
        want *= t.shape[d];
    }
    return true;
}

bool same_shape(const kp_tensor& a, const kp_tensor& b) {
    if (a.rank != b.rank) return false;
    for (int d = 0; d < a.rank; ++d)
        if (a.shape[d] != b.shape[d]) return false;
    return true;
}

// Right-aligned broadcast of t to `out`'s shape: strides over out's index (0 where t repeats).
bool broadcast_strides(const kp_tensor& t, const kp_tensor& out, int64_t* st) {
    if (t.rank > out.rank) return false;
    const int lead = out.rank - t.rank;
    for (int d = 0; d < out.rank; ++d) {
        if (d < lead) { st[d] = 0; continue; }
        const int64_t m = t.shape[d - lead], n = out.shape[d];
        if (m == n) st[d] = (m == 1) ? 0 : t.stride[d - lead];
        else if (m == 1) st[d] = 0;
        else return false;
    }
    return true;
}

bool flat_like(const int64_t* st, const kp_tensor& out) {
    int64_t want = 1;
    for (int d = out.rank - 1; d >= 0; --d) {
        if (out.shape[d] != 1 && st[d] != want) return false;
        want *= out.shape[d];
    }
    return true;
}

const char* dt_name(int32_t dt) { return dt == KP_BF16 ? "bf16" : (dt == KP_F16 ? "fp16" : "fp32"); }

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % kAlign == 0; }

// _gate_mode + the None cases of _route, for a contiguous residual/update of residual's shape.
// Returns the mode, or -1 for the eager fallback.
int route_mode(const kp_tensor& res, const kp_tensor& gate, bool* mode3_gate_copy) {
    *mode3_gate_copy = false;
    const int64_t D = res.shape[res.rank - 1];
    int mode;
    if (same_shape(gate, res)) {
        mode = kFull;
    } else {
        bool row = gate.rank == res.rank && gate.shape[gate.rank - 1] == D;
        for (int d = 0; row && d < gate.rank - 1; ++d) row = gate.shape[d] == 1;
        const bool batch = res.rank == 3 && res.shape[0] > 1 && res.shape[0] <= kMaxGrid && gate.rank == 3 &&
                           gate.shape[0] == res.shape[0] && gate.shape[1] == 1 && gate.shape[2] == D;
        if (row) mode = kRow;
        else if (batch) mode = kBatchRow;
        else mode = kPerToken;
    }
    if (mode == kPerToken) {
        bool per_token = gate.rank == res.rank && gate.shape[gate.rank - 1] == 1;
        for (int d = 0; per_token && d < res.rank - 1; ++d) per_token = gate.shape[d] == res.shape[d];
        if (!per_token) return -1;
    }
    if (!is_contiguous(gate)) {
        if (mode != kBatchRow) return -1;
        *mode3_gate_copy = true;  // upstream: gate.contiguous(), then the kernel
        return -1;
    }
    return mode;
}

// _is_transposed_dense_residual: 3-D, strides exactly (T*H, 1, T), gate (1, 1, H), update and gate contiguous.
bool transposed_dense(const kp_tensor& res, const kp_tensor& upd, const kp_tensor& gate) {
    if (res.rank != 3 || gate.rank != 3 || gate.shape[0] != 1 || gate.shape[1] != 1 || gate.shape[2] != res.shape[2])
        return false;
    const int64_t B = res.shape[0], T = res.shape[1], H = res.shape[2];
    return res.stride[0] == T * H && res.stride[1] == 1 && res.stride[2] == T && B <= kMaxGrid &&
           (T + 31) / 32 <= kMaxGrid && (H + 31) / 32 <= kMaxGrid && is_contiguous(upd) && is_contiguous(gate);
}

template <typename T>
int32_t launch_kda(kp_call* call, cudaStream_t stream, int mode, T* out, const T* res, const T* upd, const T* gate,
                   int64_t numel, int64_t hidden, int64_t gate_numel) {
    const char* dt = dt_name(call->tensors[0].dtype);
    int64_t batches = 1;
    if (mode == kBatchRow) batches = gate_numel / hidden;
    const bool vectorized = aligned16(out) && aligned16(res) && aligned16(upd) && aligned16(gate) && hidden % 8 == 0;
    const int64_t batch_numel = numel / batches;
    auto scalar_blocks = [&] {
        return static_cast<unsigned>(std::min<int64_t>((numel + kBlockSize - 1) / kBlockSize, kMaxGrid));
    };
    if (vectorized && mode == kFull) {
        const int64_t nv = numel / 8;
        const auto blocks = static_cast<unsigned>(std::min<int64_t>((nv + kBlockSize - 1) / kBlockSize, kMaxGrid));
        kda_vec_kernel<T><<<blocks, kBlockSize, 0, stream>>>(out, res, upd, gate, nv);
        set_path(call, "kda_vec8_full_%s", dt);
    } else if (vectorized && mode == kPerToken) {
        kda_scalar_kernel<T, kPerToken><<<scalar_blocks(), kBlockSize, 0, stream>>>(out, res, upd, gate, numel, hidden,
                                                                                    batch_numel);
        set_path(call, "kda_scalar_per_token_%s", dt);
    } else if (vectorized) {
        const int64_t rows = numel / hidden / batches;
        const int64_t row_vectors = hidden / 8;
        const auto cols = static_cast<unsigned>((row_vectors + kBcastCols - 1) / kBcastCols);
        const auto row_blocks = static_cast<unsigned>(std::min<int64_t>((rows + kBcastRows - 1) / kBcastRows, kMaxGrid));
        kda_bcast_kernel<T><<<dim3(cols, row_blocks, static_cast<unsigned>(batches)), kBcastCols, 0, stream>>>(
            out, res, upd, gate, rows, row_vectors);
        set_path(call, mode == kRow ? "kda_bcast8_row_%s" : "kda_bcast8_batch_%s", dt);
    } else if (mode == kBatchRow) {
        kda_scalar_kernel<T, kBatchRow><<<scalar_blocks(), kBlockSize, 0, stream>>>(out, res, upd, gate, numel, hidden,
                                                                                    batch_numel);
        set_path(call, "kda_scalar_batch_row_%s", dt);
    } else if (mode == kPerToken) {
        kda_scalar_kernel<T, kPerToken><<<scalar_blocks(), kBlockSize, 0, stream>>>(out, res, upd, gate, numel, hidden,
                                                                                    batch_numel);
        set_path(call, "kda_scalar_per_token_%s", dt);
    } else if (mode == kRow) {
        kda_scalar_kernel<T, kRow><<<scalar_blocks(), kBlockSize, 0, stream>>>(out, res, upd, gate, numel, hidden,
                                                                              batch_numel);
        set_path(call, "kda_scalar_row_%s", dt);
    } else {
        kda_scalar_kernel<T, kFull><<<scalar_blocks(), kBlockSize, 0, stream>>>(out, res, upd, gate, numel, hidden,
                                                                               batch_numel);
        set_path(call, "kda_scalar_full_%s", dt);
    }
    return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
}

template <typename T>
int32_t launch_eager(kp_call* call, cudaStream_t stream, const Bcast& b, int64_t n, const char* why) {
    T* out = static_cast<T*>(call->tensors[3].data);
    const T* res = static_cast<const T*>(call->tensors[0].data);
    const T* upd = static_cast<const T*>(call->tensors[1].data);
    const T* gate = static_cast<const T*>(call->tensors[2].data);
    const int64_t per_block = kEagerThreads * kEagerItems;
    const auto blocks = static_cast<unsigned>((n + per_block - 1) / per_block);
    eager_mul_kernel<T><<<blocks, kEagerThreads, 0, stream>>>(out, upd, gate, b, n);
    eager_add_kernel<T><<<blocks, kEagerThreads, 0, stream>>>(out, res, b, n);
    set_path(call, "eager_mul_add_%s%s", dt_name(call->tensors[0].dtype), why);
    return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
}

}  // namespace

extern "C" {

int32_t kp_residual_gate_add(kp_call* call, void* stream_ptr) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != 4 || call->n_scalars != 0)
        return KP_INVALID;
    for (int i = 0; i < 4; ++i)
        if (call->tensors[i].rank < 0 || call->tensors[i].rank > KP_MAX_RANK) return KP_INVALID;
    const kp_tensor& res = call->tensors[0];
    const kp_tensor& upd = call->tensors[1];
    const kp_tensor& gate = call->tensors[2];
    const kp_tensor& out = call->tensors[3];
    cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);

    const int32_t dt = res.dtype;
    if (dt != KP_BF16 && dt != KP_F16 && dt != KP_F32) return refuse(call, "dtype");
    if (upd.dtype != dt || gate.dtype != dt || out.dtype != dt) return refuse(call, "mixed_dtype");
    if (res.rank < 1) return refuse(call, "rank0");
    // PyTorch raises for shapes that do not broadcast; the output must be residual-shaped.
    Bcast b{};
    b.rank = res.rank;
    for (int d = 0; d < res.rank; ++d) b.size[d] = res.shape[d];
    if (!broadcast_strides(upd, res, b.st[0]) || !broadcast_strides(gate, res, b.st[1]) ||
        !broadcast_strides(res, res, b.st[2]))
        return refuse(call, "shape_mismatch");
    if (!same_shape(out, res) || !is_contiguous(out)) return refuse(call, "out_layout");
    for (int k = 0; k < 3; ++k) b.flat[k] = flat_like(b.st[k], res);

    const int64_t numel = numel_of(res);
    if (numel == 0) {
        set_path(call, "empty");
        return KP_OK;
    }

    // residual_gate_add: the CUDA/Triton op only for the bit-exact dtypes and a _route() mode.
    const char* why = "";
    if (dt != KP_F32 && res.rank >= 2 && same_shape(upd, res)) {
        if (transposed_dense(res, upd, gate)) {
            why = ":upstream_triton_transposed";
        } else if (is_contiguous(res) && is_contiguous(upd)) {
            bool gate_copy = false;
            const int mode = route_mode(res, gate, &gate_copy);
            if (mode >= 0) {
                const int64_t hidden = res.shape[res.rank - 1];
                const int64_t gate_numel = numel_of(gate);
                if (dt == KP_BF16)
                    return launch_kda<__nv_bfloat16>(call, stream, mode, static_cast<__nv_bfloat16*>(out.data),
                                                     static_cast<const __nv_bfloat16*>(res.data),
                                                     static_cast<const __nv_bfloat16*>(upd.data),
                                                     static_cast<const __nv_bfloat16*>(gate.data), numel, hidden,
                                                     gate_numel);
                return launch_kda<__half>(call, stream, mode, static_cast<__half*>(out.data),
                                          static_cast<const __half*>(res.data), static_cast<const __half*>(upd.data),
                                          static_cast<const __half*>(gate.data), numel, hidden, gate_numel);
            }
            if (gate_copy) why = ":upstream_mode3_gate_copy";
        }
    }
    if (dt == KP_BF16) return launch_eager<__nv_bfloat16>(call, stream, b, numel, why);
    if (dt == KP_F16) return launch_eager<__half>(call, stream, b, numel, why);
    return launch_eager<float>(call, stream, b, numel, why);
}

}  // extern "C"
