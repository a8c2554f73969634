// kpilot fidelity shim for tasks/residual_gate_add: SGLang 0.5.23's own CUDA kernels and host launch
// code (sglang/kernels/kda_kernels/csrc/diffusion/residual_gate_add.cuh,
// residual_gate_add::ResidualGateAddKernel<T>::run), compiled standalone behind the kpilot ABI.
// Nothing of upstream is copied here: the .cuh is included from the unpacked wheel (-I<wheel root>),
// its sgl_kernel headers from the wheel's jit include dir, and only the tvm-ffi / dlpack headers
// outside the wheel are kpilot stand-ins (kernels/upstream_stubs).
//
// What this file adds is what the Python side does around `run`
// (sglang/kernels/kda_kernels/residual_gate_add_jit.py):
//   * residual_gate_add(): the CUDA op only for fp16/bf16 (_BIT_EXACT_DTYPES) when _route() gives
//     a gate mode; _route(): one dtype, residual.dim() >= 2, numel > 0, update.shape ==
//     residual.shape, not the transposed-dense layout (that one runs the Triton kernel
//     _rga_transposed), residual and update contiguous, _gate_mode (0 full, 1 shared row,
//     3 one row per batch, 2 per token), mode 2 only for a per-token gate, a contiguous gate
//     unless mode 3.
//   * _residual_gate_add_cuda_impl: out preallocated (here the harness's `out`), mode 3 gate
//     .contiguous(), then run(out.view(-1), residual.view(-1), update.view(-1), gate.view(-1),
//     residual.shape[-1], mode): the four tensors go in as 1-D contiguous views.
// Calls that 0.5.23 does not send to this CUDA op (fp32 and the other eager fallbacks, the Triton
// transposed path, a mode-3 gate that needs the .contiguous() copy: an allocation) are refused
// here (KP_NOT_SUPPORTED, "unsupported:not_cuda_path:<why>"): fidelity times the CUDA op, which is
// what every production row takes. Upstream's own checks then run unchanged inside run(); a failed
// check is KP_NOT_SUPPORTED (kernels/upstream_stubs/kpilot_upstream_glue.h).
// No PDL: upstream launches these kernels without it (LaunchKernel without enable_pdl).
//
// Build (task.toml [fidelity]): shim_flags = ["-DSGL_CUDA_ARCH=900", "-std=c++20", "-O3",
// "--expt-relaxed-constexpr"] (upstream's get_default_target_flags on an sm_90a GPU), shim_includes
// = ["kernels/upstream_stubs", "wheel:.", "wheel:sglang/kernels/jit/include"], on top of the
// harness's -gencode=arch=compute_90a,code=sm_90a -Xcompiler=-fPIC -shared -cudart=static -Ikernels.

#include "kpilot_abi.h"

#include <sglang/kernels/kda_kernels/csrc/diffusion/residual_gate_add.cuh>

// Quoted, under kernels/: kpilot hashes it (and the stand-ins it includes) into the build key.
#include "upstream_stubs/kpilot_upstream_glue.h"

#include <cstdint>

namespace {

using sglang::bf16_t;
using sglang::fp16_t;
using tvm::ffi::TensorView;

using RunFn = void (*)(TensorView, TensorView, TensorView, TensorView, int64_t, int64_t);

int64_t numel_of(const kp_tensor& t) {
  int64_t n = 1;
  for (int d = 0; d < t.rank; ++d) n *= t.shape[d];
  return n;
}

// torch's Tensor.is_contiguous(): row-major, size-1 dims ignored.
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

// _is_transposed_dense_residual.
bool transposed_dense(const kp_tensor& res, const kp_tensor& upd, const kp_tensor& gate) {
  if (res.rank != 3 || gate.rank != 3 || gate.shape[0] != 1 || gate.shape[1] != 1 || gate.shape[2] != res.shape[2])
    return false;
  const int64_t b = res.shape[0], t = res.shape[1], h = res.shape[2];
  return res.stride[0] == t * h && res.stride[1] == 1 && res.stride[2] == t && b <= 65535 &&
         (t + 31) / 32 <= 65535 && (h + 31) / 32 <= 65535 && is_contiguous(upd) && is_contiguous(gate);
}

// _gate_mode.
int64_t gate_mode(const kp_tensor& res, const kp_tensor& gate) {
  if (same_shape(gate, res)) return 0;
  const int64_t d = res.shape[res.rank - 1];
  bool row = gate.rank == res.rank && gate.shape[gate.rank - 1] == d;
  for (int k = 0; row && k < gate.rank - 1; ++k) row = gate.shape[k] == 1;
  if (row) return 1;
  if (res.rank == 3 && res.shape[0] > 1 && res.shape[0] <= 65535 && gate.rank == 3 && gate.shape[0] == res.shape[0] &&
      gate.shape[1] == 1 && gate.shape[2] == d)
    return 3;
  return 2;
}

// _is_per_token_gate.
bool per_token(const kp_tensor& res, const kp_tensor& gate) {
  if (gate.rank != res.rank || gate.shape[gate.rank - 1] != 1) return false;
  for (int k = 0; k < res.rank - 1; ++k)
    if (gate.shape[k] != res.shape[k]) return false;
  return true;
}

// A 1-D contiguous view (tensor.view(-1)) of n elements.
struct Flat {
  int64_t shape[1];
  int64_t stride[1];
  DLTensor dl;
};

bool flat_view(const kp_tensor& t, DLDevice device, int64_t n, Flat* f) {
  DLDataType dtype;
  if (t.dtype == KP_ABSENT || !kpilot_upstream::dl_dtype(t.dtype, &dtype)) return false;
  f->shape[0] = n;
  f->stride[0] = 1;
  f->dl.data = t.data;
  f->dl.device = device;
  f->dl.ndim = 1;
  f->dl.dtype = dtype;
  f->dl.shape = f->shape;
  f->dl.strides = f->stride;
  f->dl.byte_offset = 0;
  return true;
}

}  // namespace

extern "C" int32_t kp_residual_gate_add(kp_call* call, void* stream) {
  using namespace kpilot_upstream;
  if (const int32_t rc = check_descriptor(call, 4, 0); rc != KP_OK) return rc;
  kp_tensor& res = call->tensors[0];
  kp_tensor& upd = call->tensors[1];
  kp_tensor& gate = call->tensors[2];
  kp_tensor& out = call->tensors[3];

  // residual_gate_add: the CUDA op only for fp16/bf16; _route's dtype and shape conditions.
  RunFn run = nullptr;
  const char* name = nullptr;
  switch (res.dtype) {
    case KP_F16: run = &sglang::residual_gate_add::ResidualGateAddKernel<fp16_t>::run; name = "fp16"; break;
    case KP_BF16: run = &sglang::residual_gate_add::ResidualGateAddKernel<bf16_t>::run; name = "bf16"; break;
    case KP_F32: return refuse(call, "not_cuda_path:fp32_eager");
    default: return refuse(call, "dtype");
  }
  if (upd.dtype != res.dtype || gate.dtype != res.dtype || out.dtype != res.dtype) return refuse(call, "mixed_dtype");
  const int64_t numel = numel_of(res);
  if (res.rank < 2 || numel == 0 || !same_shape(upd, res)) return refuse(call, "not_cuda_path:eager");
  if (transposed_dense(res, upd, gate)) return refuse(call, "not_cuda_path:triton_transposed");
  if (!is_contiguous(res) || !is_contiguous(upd)) return refuse(call, "not_cuda_path:eager");
  const int64_t mode = gate_mode(res, gate);
  if (mode == 2 && !per_token(res, gate)) return refuse(call, "not_cuda_path:eager");
  if (!is_contiguous(gate)) {
    if (mode != 3) return refuse(call, "not_cuda_path:eager");
    return refuse(call, "not_cuda_path:mode3_gate_copy");
  }
  // out = torch.empty_like(residual): the harness's out must be residual-shaped and contiguous.
  if (!same_shape(out, res) || !is_contiguous(out)) return refuse(call, "out_layout");

  DLDevice device;
  if (!current_device(&device)) {
    set_path(call, "error:cudaGetDevice");
    return KP_CUDA_ERROR;
  }
  Flat f_out, f_res, f_upd, f_gate;
  if (!flat_view(out, device, numel, &f_out) || !flat_view(res, device, numel, &f_res) ||
      !flat_view(upd, device, numel, &f_upd) || !flat_view(gate, device, numel_of(gate), &f_gate))
    return refuse(call, "absent_tensor");
  const int64_t hidden = res.shape[res.rank - 1];

  char ok_path[KP_PATH_LEN];
  snprintf(ok_path, sizeof ok_path, "upstream:residual_gate_add_mode%d_%s", static_cast<int>(mode), name);
  return invoke(call, stream, ok_path, [&] {
    run(TensorView(&f_out.dl), TensorView(&f_res.dl), TensorView(&f_upd.dl), TensorView(&f_gate.dl), hidden, mode);
  });
}
