// kpilot glue shared by the upstream fidelity shims (tasks/<task>/upstream/shim.cu): turns kp_call
// tensors into tvm::ffi::TensorView (the stand-in in kernels/upstream_stubs/tvm/ffi/...), installs
// the harness's stream as the one TVMFFIEnvGetStream hands to upstream's LaunchKernel, and maps
// what upstream's host code throws onto kpilot return codes.
//
// Return-code policy (one place, kpilot_upstream::invoke):
//   * upstream host checks (TensorMatcher, RuntimeCheck, Panic) throw sglang::host::PanicError
//     before anything is launched: KP_NOT_SUPPORTED, path "unsupported:upstream:<root cause>"
//     (a valid call upstream refuses; nothing launched, nothing written);
//   * a PanicError whose message carries "CUDA error" (RuntimeDeviceCheck after
//     cudaLaunchKernelEx, CHECK_CUDA around occupancy / attribute queries), any other exception,
//     or cudaGetLastError() != cudaSuccess after upstream's run returns: KP_CUDA_ERROR.
// Set KP_UPSTREAM_DEBUG=1 in the environment to print upstream's full message on stderr.
#ifndef KPILOT_UPSTREAM_GLUE_H_
#define KPILOT_UPSTREAM_GLUE_H_

#include <cuda_runtime.h>
#include <sgl_kernel/utils.h>

// The stand-ins by quoted paths (this folder first), so that kpilot's build key, which follows
// quoted includes only, hashes them; upstream's <...> includes of the same files then hit the
// include guards.
#include "dlpack/dlpack.h"
#include "tvm/ffi/container/tensor.h"
#include "tvm/ffi/dtype.h"
#include "tvm/ffi/extra/c_env_api.h"

#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include "kpilot_abi.h"

namespace kpilot_upstream {

inline void set_path(kp_call* call, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(call->path, KP_PATH_LEN, fmt, ap);
  va_end(ap);
}

inline int32_t refuse(kp_call* call, const char* why) {
  set_path(call, "unsupported:%s", why);
  return KP_NOT_SUPPORTED;
}

/// ABI version, tensor and scalar counts, ranks. KP_OK or KP_INVALID.
inline int32_t check_descriptor(const kp_call* call, uint32_t n_tensors, uint32_t n_scalars) {
  if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != n_tensors ||
      call->n_scalars != n_scalars)
    return KP_INVALID;
  for (uint32_t i = 0; i < n_tensors; ++i)
    if (call->tensors[i].rank < 0 || call->tensors[i].rank > KP_MAX_RANK) return KP_INVALID;
  return KP_OK;
}

/// DLPack dtype of a kpilot element type; false for KP_ABSENT or an unknown code.
inline bool dl_dtype(int32_t kp_dtype, DLDataType* out) {
  switch (kp_dtype) {
    case KP_BF16: *out = DLDataType{kDLBfloat, 16, 1}; return true;
    case KP_F16: *out = DLDataType{kDLFloat, 16, 1}; return true;
    case KP_F32: *out = DLDataType{kDLFloat, 32, 1}; return true;
    case KP_I32: *out = DLDataType{kDLInt, 32, 1}; return true;
    case KP_I64: *out = DLDataType{kDLInt, 64, 1}; return true;
    default: return false;
  }
}

/// The DLTensor a framework (torch, through tvm-ffi) would hand upstream for this kp_tensor:
/// data at element [0, ...], shape and strides in elements (borrowed from the kp_tensor, which
/// outlives the call), byte_offset 0. False for an absent tensor or an unknown dtype.
inline bool make_dltensor(kp_tensor& t, DLDevice device, DLTensor* out) {
  DLDataType dtype;
  if (t.dtype == KP_ABSENT || !dl_dtype(t.dtype, &dtype)) return false;
  out->data = t.data;
  out->device = device;
  out->ndim = t.rank;
  out->dtype = dtype;
  out->shape = t.shape;
  out->strides = t.stride;
  out->byte_offset = 0;
  return true;
}

/// The current CUDA device as a DLDevice (the device the harness's tensors and stream live on).
inline bool current_device(DLDevice* out) {
  int id = 0;
  if (cudaGetDevice(&id) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  *out = DLDevice{kDLCUDA, id};
  return true;
}

/// An integral scalar passed as double; false when it is not an exact integer.
inline bool scalar_int64(double v, int64_t* out) {
  if (!std::isfinite(v) || v != std::trunc(v) || std::fabs(v) >= 9.2e18) return false;
  *out = static_cast<int64_t>(v);
  return true;
}

/// Makes `stream` the one TVMFFIEnvGetStream returns for the lifetime of the scope.
struct StreamScope {
  explicit StreamScope(void* stream) : prev_(kpilot_stub::current_stream()) {
    kpilot_stub::current_stream() = stream;
  }
  ~StreamScope() { kpilot_stub::current_stream() = prev_; }
  StreamScope(const StreamScope&) = delete;
  StreamScope& operator=(const StreamScope&) = delete;

 private:
  TVMFFIStreamHandle prev_;
};

inline bool debug_enabled() {
  const char* v = std::getenv("KP_UPSTREAM_DEBUG");
  return v != nullptr && v[0] != '\0' && v[0] != '0';
}

/// Upstream's message without its "Failed at <file>:<line>: " prefixes, on one line.
inline std::string short_reason(const std::string& msg) {
  std::string_view s = msg;
  if (const auto p = s.rfind("Root cause: "); p != std::string_view::npos) s = s.substr(p + 12);
  while (s.substr(0, 10) == "Failed at ") {
    const auto p = s.find(": ");
    if (p == std::string_view::npos) break;
    s = s.substr(p + 2);
  }
  std::string out(s);
  for (char& c : out)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return out;
}

/// Runs upstream host code `fn` (which launches on the installed stream) and maps the outcome
/// onto a kpilot return code; sets call->path to `ok_path` on success.
template <typename Fn>
int32_t invoke(kp_call* call, void* stream, const char* ok_path, Fn&& fn) {
  StreamScope scope(stream);
  try {
    fn();
  } catch (const sglang::host::PanicError& e) {
    const std::string msg = e.what();
    if (debug_enabled()) std::fprintf(stderr, "[kpilot upstream shim] %s\n", msg.c_str());
    if (msg.find("CUDA error") != std::string::npos) {
      (void)cudaGetLastError();
      set_path(call, "error:upstream:%s", short_reason(msg).c_str());
      return KP_CUDA_ERROR;
    }
    set_path(call, "unsupported:upstream:%s", short_reason(msg).c_str());
    return KP_NOT_SUPPORTED;
  } catch (const std::exception& e) {
    if (debug_enabled()) std::fprintf(stderr, "[kpilot upstream shim] exception: %s\n", e.what());
    (void)cudaGetLastError();
    set_path(call, "error:upstream_exception");
    return KP_CUDA_ERROR;
  } catch (...) {
    (void)cudaGetLastError();
    set_path(call, "error:upstream_exception");
    return KP_CUDA_ERROR;
  }
  if (cudaGetLastError() != cudaSuccess) {
    set_path(call, "error:launch");
    return KP_CUDA_ERROR;
  }
  set_path(call, "%s", ok_path);
  return KP_OK;
}

}  // namespace kpilot_upstream

#endif  // KPILOT_UPSTREAM_GLUE_H_
