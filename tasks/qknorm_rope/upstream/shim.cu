// kpilot fidelity shim for tasks/qknorm_rope: SGLang 0.5.23's own CUDA kernel and host launch code
// (sglang/kernels/jit/csrc/diffusion/qknorm_rope.cuh, QKNormRopeKernel<...>::run), compiled
// standalone behind the kpilot ABI. Nothing of upstream is copied here: the .cuh is included from
// the unpacked wheel (-I<wheel root>), its sgl_kernel headers from the wheel's jit include dir, and
// only the tvm-ffi / dlpack headers outside the wheel are kpilot stand-ins (kernels/upstream_stubs).
//
// What this file adds is what tvm-ffi and the Python wrapper do around `run`:
//   * sglang/kernels/ops/diffusion/rope/qknorm_rope_jit.py, fused_inplace_qknorm_rope with its
//     defaults (round_norm_before_rope=False, cache_has_full_width=False, pack_kv=False,
//     out_of_place=False, half_warp=True), as the production caller
//     (multimodal_gen/runtime/layers/layernorm.py apply_qk_norm_rope) uses them for these models:
//       head_dim = q.size(-1), rope_dim = cos_sin_cache.size(-1),
//       template args <head_dim, rope_dim, is_neox, is_arch_support_pdl(), q.dtype,
//                      cos_sin_cache.dtype, false, false, true>;
//   * _can_use_fused_qknorm_rope's gate (dtype, head_dim in {64,128,256}, 0 < rope_dim <= head_dim,
//     rope_dim % (head_dim/32) == 0, NeoX: an even rotary lane count): refused here with
//     KP_NOT_SUPPORTED, where upstream would not instantiate the template;
//   * tvm-ffi's tensor marshalling (kp_tensor -> DLTensor -> TensorView), float eps, and the stream.
// Upstream's own TensorMatcher checks then run unchanged inside run() (shapes, strides, dtypes,
// int32/int64 positions); a failed check is KP_NOT_SUPPORTED (kernels/upstream_stubs/
// kpilot_upstream_glue.h). PDL: use_pdl = is_arch_support_pdl() = (major >= 9), i.e. true for the
// sm_90a build; upstream's LaunchKernel sets cudaLaunchAttributeProgrammaticStreamSerialization.
//
// Instantiated: q/k dtype bf16 and fp16, cos_sin_cache fp32 only (the task's cache dtype; upstream
// also accepts fp16/bf16 caches, refused here as "unsupported:shim_cache_dtype" to bound the build),
// every (head_dim, rope_dim, is_neox) the gate accepts: 3 head dims x (32 interleaved + 16 NeoX
// rope dims) x 2 dtypes = 288 run() instantiations, each with its int32 and int64 positions kernels.
//
// Build (task.toml [fidelity]): shim_flags = ["-DSGL_CUDA_ARCH=900", "-std=c++20", "-O3",
// "--expt-relaxed-constexpr"] (upstream's get_default_target_flags on an sm_90a GPU; SGL_CUDA_ARCH
// must equal the target's __CUDA_ARCH__, upstream static_asserts it), shim_includes =
// ["kernels/upstream_stubs", "wheel:.", "wheel:sglang/kernels/jit/include"], on top of the
// harness's -gencode=arch=compute_90a,code=sm_90a -Xcompiler=-fPIC -shared -cudart=static -Ikernels.

#include "kpilot_abi.h"

#include <sglang/kernels/jit/csrc/diffusion/qknorm_rope.cuh>

// Quoted, under kernels/: kpilot hashes it (and the stand-ins it includes) into the build key.
#include "upstream_stubs/kpilot_upstream_glue.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace {

using sglang::bf16_t;
using sglang::fp16_t;
using sglang::fp32_t;
using tvm::ffi::TensorView;

// is_arch_support_pdl(): CUDA and compute capability major >= 9.
constexpr bool kUsePDL = SGL_CUDA_ARCH >= 900;

using RunFn = void (*)(TensorView, TensorView, TensorView, TensorView, TensorView, TensorView, float);

struct Entry {
  RunFn run;
  bool half_warp;
};

constexpr int kRopeSlots = 32;  // rope_dim = k * head_dim / 32, k = 1..32

// _can_use_fused_qknorm_rope for round_norm_before_rope = pack_kv = cache_has_full_width = False.
template <int64_t D, int64_t R, bool NEOX>
constexpr bool upstream_accepts() {
  if (!(D == 64 || D == 128 || D == 256)) return false;
  constexpr int64_t E = D / 32;
  if (R <= 0 || R > D || R % E != 0) return false;
  if (NEOX && ((R / E) < 2 || (R / E) % 2 != 0)) return false;
  return true;
}

template <int64_t D, int64_t R, bool NEOX, typename DT>
using Kernel = sglang::QKNormRopeKernel<
    D,
    R,
    NEOX,
    kUsePDL,
    DT,
    fp32_t,  // cache_dtype
    false,   // round_norm_before_rope
    false,   // cache_has_full_width
    true>;   // half_warp (kAllowHalfWarp)

template <int64_t D, int64_t R, bool NEOX, typename DT>
constexpr Entry make_entry() {
  if constexpr (upstream_accepts<D, R, NEOX>()) {
    return Entry{&Kernel<D, R, NEOX, DT>::run, Kernel<D, R, NEOX, DT>::kHalfWarp};
  } else {
    return Entry{nullptr, false};
  }
}

template <int64_t D, bool NEOX, typename DT, std::size_t... K>
constexpr std::array<Entry, kRopeSlots> make_row(std::index_sequence<K...>) {
  return {make_entry<D, static_cast<int64_t>(K + 1) * (D / 32), NEOX, DT>()...};
}

template <int64_t D, bool NEOX, typename DT>
constexpr std::array<Entry, kRopeSlots> kRow = make_row<D, NEOX, DT>(std::make_index_sequence<kRopeSlots>{});

template <typename DT>
Entry lookup_dt(int64_t D, int64_t k, bool neox) {
  const auto pick = [&](const auto& interleaved, const auto& neox_row) { return neox ? neox_row[k] : interleaved[k]; };
  switch (D) {
    case 64: return pick(kRow<64, false, DT>, kRow<64, true, DT>);
    case 128: return pick(kRow<128, false, DT>, kRow<128, true, DT>);
    case 256: return pick(kRow<256, false, DT>, kRow<256, true, DT>);
    default: return Entry{nullptr, false};
  }
}

const char* dtype_name(int32_t d) {
  switch (d) {
    case KP_BF16: return "bf16";
    case KP_F16: return "fp16";
    case KP_F32: return "fp32";
    case KP_I32: return "i32";
    case KP_I64: return "i64";
    default: return "absent";
  }
}

}  // namespace

extern "C" int32_t kp_fused_inplace_qknorm_rope(kp_call* call, void* stream) {
  using namespace kpilot_upstream;
  if (const int32_t rc = check_descriptor(call, 6, 2); rc != KP_OK) return rc;
  kp_tensor* t = call->tensors;  // q, k, q_weight, k_weight, cos_sin_cache, positions

  // The wrapper's template arguments: head_dim = q.size(-1), rope_dim = cos_sin_cache.size(-1).
  if (t[0].rank < 1 || t[4].rank < 1) return refuse(call, "qk_or_cache_rank");
  const int64_t D = t[0].shape[t[0].rank - 1];
  const int64_t R = t[4].shape[t[4].rank - 1];
  const double neox_s = call->scalars[0];
  if (!(neox_s == 0.0 || neox_s == 1.0)) return refuse(call, "is_neox");
  const bool neox = neox_s == 1.0;

  // _can_use_fused_qknorm_rope.
  if (!(t[0].dtype == KP_BF16 || t[0].dtype == KP_F16)) return refuse(call, "dtype");
  if (!(t[4].dtype == KP_BF16 || t[4].dtype == KP_F16 || t[4].dtype == KP_F32)) return refuse(call, "cache_dtype");
  if (!(D == 64 || D == 128 || D == 256)) return refuse(call, "head_dim");
  const int64_t E = D / 32;
  if (R <= 0 || R > D) return refuse(call, "rope_dim");
  if (R % E != 0) return refuse(call, "rope_dim_per_lane");
  if (neox && ((R / E) < 2 || (R / E) % 2 != 0)) return refuse(call, "neox_rotary_lanes");
  // Accepted upstream but not instantiated in this shim.
  if (t[4].dtype != KP_F32) return refuse(call, "shim_cache_dtype");

  const Entry e = t[0].dtype == KP_BF16 ? lookup_dt<bf16_t>(D, R / E - 1, neox) : lookup_dt<fp16_t>(D, R / E - 1, neox);
  if (e.run == nullptr) return refuse(call, "shim_no_instance");

  DLDevice device;
  if (!current_device(&device)) {
    set_path(call, "error:cudaGetDevice");
    return KP_CUDA_ERROR;
  }
  DLTensor dl[6];
  for (int i = 0; i < 6; ++i)
    if (!make_dltensor(t[i], device, &dl[i])) return refuse(call, "absent_tensor");
  const float eps = static_cast<float>(call->scalars[1]);

  char ok_path[KP_PATH_LEN];
  snprintf(
      ok_path,
      sizeof ok_path,
      "upstream:%s_D%d_R%d_%s_%s_pos%s",
      e.half_warp ? "half_warp" : "warp",
      static_cast<int>(D),
      static_cast<int>(R),
      neox ? "neox" : "interleaved",
      dtype_name(t[0].dtype),
      dtype_name(t[5].dtype));
  return invoke(call, stream, ok_path, [&] {
    e.run(
        TensorView(&dl[0]),
        TensorView(&dl[1]),
        TensorView(&dl[2]),
        TensorView(&dl[3]),
        TensorView(&dl[4]),
        TensorView(&dl[5]),
        eps);
  });
}
