// kpilot stand-in for <tvm/ffi/extra/c_env_api.h> (apache-tvm-ffi 0.1.x): only
// TVMFFIEnvGetStream, which sglang::host::LaunchKernel calls to resolve the launch stream of a
// DLDevice. In tvm-ffi it returns the stream the Python caller set as current (torch's current
// stream); here it returns the stream the kpilot shim installed for the duration of one entry
// call (kpilot_stub::StreamScope, kernels/upstream_stubs/kpilot_upstream_glue.h), i.e. the
// harness's `stream` argument, whatever the device.
#ifndef KPILOT_STUB_TVM_FFI_EXTRA_C_ENV_API_H_
#define KPILOT_STUB_TVM_FFI_EXTRA_C_ENV_API_H_

#include <stdint.h>

typedef void* TVMFFIStreamHandle;

namespace kpilot_stub {
inline TVMFFIStreamHandle& current_stream() {
  static thread_local TVMFFIStreamHandle stream = nullptr;
  return stream;
}
}  // namespace kpilot_stub

inline TVMFFIStreamHandle TVMFFIEnvGetStream(int32_t /*device_type*/, int32_t /*device_id*/) {
  return kpilot_stub::current_stream();
}

#endif  // KPILOT_STUB_TVM_FFI_EXTRA_C_ENV_API_H_
