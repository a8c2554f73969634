// kpilot fidelity shim for tasks/causal_conv3d_cat_pad: SGLang 0.5.23's own CUDA fast path and its
// host launch code (sglang/kernels/kda_kernels/csrc/diffusion/causal_conv3d_cat_pad.cuh,
// causal_conv3d_cat_pad::CausalConv3dCatPadKernel<T>::run), compiled standalone behind the
// kpilot ABI. Nothing of upstream is copied here: the .cuh is included from the unpacked wheel
// (-I<wheel root>), its sgl_kernel headers from the wheel's jit include dir, and only the tvm-ffi /
// dlpack headers outside the wheel are kpilot stand-ins (kernels/upstream_stubs).
//
// What this file adds is what tvm-ffi and the Python side do around `run`:
//   * sglang/kernels/kda_kernels/causal_conv3d_cat_pad_jit.py: T = x.dtype (fp16_t, bf16_t,
//     fp32_t), run(out, x, cache_x, w_left, w_right, h_top, h_bottom, d_left, d_right) with out
//     preallocated (here: the harness's `out`, the kp_call's third tensor);
//   * can_use_fused_causal_conv3d_cat_pad_cuda's gate (dtype, d_left >= cache_t, d_right == 0,
//     out numel divisible by 16 bytes) and the model caller's precondition that a cache exists
//     (multimodal_gen/runtime/layers/parallel_conv.py causal_conv3d_cat_pad takes the fused path
//     only with cache_x): KP_NOT_SUPPORTED. Upstream's own checks then run unchanged inside run()
//     (5-D shapes, contiguity, one dtype, symmetric W/H padding, output shape, 16-byte aligned
//     out); a failed check is KP_NOT_SUPPORTED (kernels/upstream_stubs/kpilot_upstream_glue.h).
//   * The model caller (_can_fuse_causal_conv3d_cat_pad) also skips the fused op when there is no
//     spatial padding (w_left == h_top == 0) and uses torch.cat + F.pad instead; the kernel itself
//     accepts that case, so it runs here, with ":not_model_path" appended to the path.
// No PDL: upstream launches this kernel without it (LaunchKernel without enable_pdl).
//
// Build (task.toml [fidelity]): shim_flags = ["-DSGL_CUDA_ARCH=900", "-std=c++20", "-O3",
// "--expt-relaxed-constexpr"] (upstream's get_default_target_flags on an sm_90a GPU; SGL_CUDA_ARCH
// must equal the target's __CUDA_ARCH__, upstream static_asserts it), shim_includes =
// ["kernels/upstream_stubs", "wheel:.", "wheel:sglang/kernels/jit/include"], on top of the
// harness's -gencode=arch=compute_90a,code=sm_90a -Xcompiler=-fPIC -shared -cudart=static -Ikernels.

#include "kpilot_abi.h"

#include <sglang/kernels/kda_kernels/csrc/diffusion/causal_conv3d_cat_pad.cuh>

// Quoted, under kernels/: kpilot hashes it (and the stand-ins it includes) into the build key.
#include "upstream_stubs/kpilot_upstream_glue.h"

#include <cstdint>

namespace {

using sglang::bf16_t;
using sglang::fp16_t;
using sglang::fp32_t;
using tvm::ffi::TensorView;

using RunFn = void (*)(TensorView, TensorView, TensorView, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t);

}  // namespace

extern "C" int32_t kp_fused_causal_conv3d_cat_pad(kp_call* call, void* stream) {
  using namespace kpilot_upstream;
  if (const int32_t rc = check_descriptor(call, 3, 6); rc != KP_OK) return rc;
  kp_tensor& x = call->tensors[0];
  kp_tensor& cache = call->tensors[1];
  kp_tensor& out = call->tensors[2];

  int64_t pad[6];  // w_left, w_right, h_top, h_bottom, d_left, d_right
  for (int i = 0; i < 6; ++i)
    if (!scalar_int64(call->scalars[i], &pad[i])) return refuse(call, "padding_not_integer");

  // The model caller only takes the fused path with a cache.
  if (cache.dtype == KP_ABSENT) return refuse(call, "no_cache");

  // can_use_fused_causal_conv3d_cat_pad_cuda.
  RunFn run = nullptr;
  const char* name = nullptr;
  int64_t elem_size = 0;
  switch (x.dtype) {
    case KP_F16: run = &sglang::causal_conv3d_cat_pad::CausalConv3dCatPadKernel<fp16_t>::run; name = "fp16"; elem_size = 2; break;
    case KP_BF16: run = &sglang::causal_conv3d_cat_pad::CausalConv3dCatPadKernel<bf16_t>::run; name = "bf16"; elem_size = 2; break;
    case KP_F32: run = &sglang::causal_conv3d_cat_pad::CausalConv3dCatPadKernel<fp32_t>::run; name = "fp32"; elem_size = 4; break;
    default: return refuse(call, "dtype");
  }
  if (x.rank != 5 || cache.rank != 5) return refuse(call, "rank");  // the gate indexes shape[0..4]
  const int64_t cache_t = cache.shape[2];
  const int64_t depth_left = pad[4] - cache_t;
  if (depth_left < 0 || pad[5] != 0) return refuse(call, "depth_padding");
  const int64_t out_numel = x.shape[0] * x.shape[1] * (x.shape[2] + cache_t + depth_left + pad[5]) *
                            (x.shape[3] + pad[2] + pad[3]) * (x.shape[4] + pad[0] + pad[1]);
  if (out_numel % (16 / elem_size) != 0) return refuse(call, "numel_not_vec_multiple");

  DLDevice device;
  if (!current_device(&device)) {
    set_path(call, "error:cudaGetDevice");
    return KP_CUDA_ERROR;
  }
  DLTensor dl_x, dl_cache, dl_out;
  if (!make_dltensor(x, device, &dl_x) || !make_dltensor(cache, device, &dl_cache) ||
      !make_dltensor(out, device, &dl_out))
    return refuse(call, "absent_tensor");

  char ok_path[KP_PATH_LEN];
  snprintf(
      ok_path,
      sizeof ok_path,
      "upstream:cat_pad_flat_%s_vec%d%s",
      name,
      static_cast<int>(16 / elem_size),
      (pad[0] == 0 && pad[2] == 0) ? ":not_model_path" : "");
  return invoke(call, stream, ok_path, [&] {
    run(TensorView(&dl_out), TensorView(&dl_x), TensorView(&dl_cache), pad[0], pad[1], pad[2], pad[3], pad[4], pad[5]);
  });
}
