// kpilot stand-in for <tvm/ffi/container/tensor.h> (apache-tvm-ffi 0.1.x): a non-owning
// tvm::ffi::TensorView over a DLTensor, with the accessors the SGLang jit include headers
// (sgl_kernel/tensor.h, runtime.cuh) and the kernels' host `run` functions call:
// data_ptr, device, dtype, dim/ndim, size(i), stride(i), shape(), strides(), numel,
// is_contiguous. The DLTensor's shape and strides arrays are borrowed: they must outlive the
// view (the kpilot shim builds them from the kp_call, which lives for the whole entry call).
// Semantics follow tvm-ffi: negative indices count from the back, data_ptr() adds byte_offset,
// contiguity ignores size-1 dims and an empty tensor is contiguous.
#ifndef KPILOT_STUB_TVM_FFI_CONTAINER_TENSOR_H_
#define KPILOT_STUB_TVM_FFI_CONTAINER_TENSOR_H_

#include <dlpack/dlpack.h>
#include <tvm/ffi/dtype.h>

#include <cstddef>
#include <cstdint>

namespace tvm {
namespace ffi {

inline bool IsContiguous(const DLTensor& arr) {
  if (arr.strides == nullptr) return true;
  for (int32_t i = 0; i < arr.ndim; ++i) {
    if (arr.shape[i] == 0) return true;
  }
  int64_t expected_stride = 1;
  for (int32_t i = arr.ndim; i != 0; --i) {
    const int32_t k = i - 1;
    if (arr.shape[k] == 1) continue;
    if (arr.strides[k] != expected_stride) return false;
    expected_stride *= arr.shape[k];
  }
  return true;
}

/// A read-only span of int64 (shape or strides), as tvm-ffi's ShapeView.
class ShapeView {
 public:
  ShapeView(const int64_t* data, std::size_t size) : data_(data), size_(size) {}
  const int64_t* begin() const { return data_; }
  const int64_t* end() const { return data_ + size_; }
  const int64_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  int64_t operator[](std::size_t i) const { return data_[i]; }

 private:
  const int64_t* data_;
  std::size_t size_;
};

class TensorView {
 public:
  explicit TensorView(const DLTensor* tensor) : tensor_(*tensor) {}

  void* data_ptr() const { return static_cast<char*>(tensor_.data) + tensor_.byte_offset; }
  DLDevice device() const { return tensor_.device; }
  DLDataType dtype() const { return tensor_.dtype; }
  int32_t ndim() const { return tensor_.ndim; }
  int32_t dim() const { return tensor_.ndim; }
  int64_t size(int64_t idx) const { return tensor_.shape[idx < 0 ? idx + tensor_.ndim : idx]; }
  int64_t stride(int64_t idx) const { return tensor_.strides[idx < 0 ? idx + tensor_.ndim : idx]; }
  ShapeView shape() const { return ShapeView(tensor_.shape, static_cast<std::size_t>(tensor_.ndim)); }
  ShapeView strides() const { return ShapeView(tensor_.strides, static_cast<std::size_t>(tensor_.ndim)); }
  int64_t numel() const {
    int64_t n = 1;
    for (int32_t i = 0; i < tensor_.ndim; ++i) n *= tensor_.shape[i];
    return n;
  }
  bool is_contiguous() const { return ::tvm::ffi::IsContiguous(tensor_); }
  bool IsContiguous() const { return ::tvm::ffi::IsContiguous(tensor_); }
  const DLTensor* GetDLTensorPtr() const { return &tensor_; }

 private:
  DLTensor tensor_;
};

}  // namespace ffi
}  // namespace tvm

#endif  // KPILOT_STUB_TVM_FFI_CONTAINER_TENSOR_H_
