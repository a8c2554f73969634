// kpilot stand-in for <tvm/ffi/dtype.h> (apache-tvm-ffi 0.1.x): only what the SGLang jit include
// headers use from it, equality and printing of DLDataType (tvm-ffi declares both at global
// scope, so sgl_kernel/tensor.h finds them by ADL).
#ifndef KPILOT_STUB_TVM_FFI_DTYPE_H_
#define KPILOT_STUB_TVM_FFI_DTYPE_H_

#include <dlpack/dlpack.h>

#include <ostream>

inline bool operator==(const DLDataType& lhs, const DLDataType& rhs) {
  return lhs.code == rhs.code && lhs.bits == rhs.bits && lhs.lanes == rhs.lanes;
}

inline bool operator!=(const DLDataType& lhs, const DLDataType& rhs) { return !(lhs == rhs); }

inline std::ostream& operator<<(std::ostream& os, DLDataType dtype) {
  switch (dtype.code) {
    case kDLInt: os << "int"; break;
    case kDLUInt: os << "uint"; break;
    case kDLFloat: os << "float"; break;
    case kDLBfloat: os << "bfloat"; break;
    case kDLBool: os << "bool"; break;
    default: os << "code" << static_cast<int>(dtype.code) << "_"; break;
  }
  os << static_cast<int>(dtype.bits);
  if (dtype.lanes != 1) os << "x" << static_cast<int>(dtype.lanes);
  return os;
}

#endif  // KPILOT_STUB_TVM_FFI_DTYPE_H_
