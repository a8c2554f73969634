/*
 * kpilot C ABI, version 1.
 *
 * Every kernel implementation (a task's baseline and each candidate) is one .cu file that
 * exports, for every entry point the task declares, a symbol
 *
 *     int32_t kp_<entry>(kp_call *call, void *stream);
 *
 * `stream` is the harness's cudaStream_t (a CUstream); implementations launch on it and on
 * nothing else, never synchronize, and never allocate. The harness reads build.rs-generated
 * Rust bindings of this header, and build.rs checks every size and offset against a C probe,
 * so both languages see one layout. Keep this file plain C: no CUDA headers.
 */
#ifndef KPILOT_ABI_H
#define KPILOT_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KP_ABI_VERSION 1
#define KP_MAX_RANK 8
#define KP_MAX_TENSORS 16
#define KP_MAX_SCALARS 8
#define KP_PATH_LEN 64

/* Element types. KP_ABSENT marks an optional tensor the caller did not pass (data == NULL). */
#define KP_ABSENT 0
#define KP_BF16 1
#define KP_F16 2
#define KP_F32 3
#define KP_I32 4
#define KP_I64 5

/* Return codes of an entry point. */
#define KP_OK 0
#define KP_NOT_SUPPORTED 1  /* valid call this implementation refuses (shape, dtype, layout) */
#define KP_INVALID 2        /* malformed descriptor (wrong ABI version, tensor count, ...) */
#define KP_CUDA_ERROR 3     /* a CUDA call or launch failed; nothing is promised about outputs */

typedef struct kp_tensor {
    void *data;                   /* device address of element [0, ..., 0]; NULL when absent */
    int32_t dtype;                /* KP_* element type */
    int32_t rank;                 /* number of dimensions, 0..KP_MAX_RANK (0 = a scalar) */
    int64_t shape[KP_MAX_RANK];   /* sizes; entries past rank are 0 */
    int64_t stride[KP_MAX_RANK];  /* strides in elements (not bytes); may be 0 for broadcast */
} kp_tensor;

typedef struct kp_call {
    uint32_t abi_version;                /* KP_ABI_VERSION */
    uint32_t n_tensors;                  /* tensors in the task's declared order */
    uint32_t n_scalars;                  /* scalars in the task's declared order */
    uint32_t reserved;                   /* 0 */
    kp_tensor tensors[KP_MAX_TENSORS];
    double scalars[KP_MAX_SCALARS];      /* integer and boolean parameters are passed exactly */
    char path[KP_PATH_LEN];              /* out: NUL-terminated name of the dispatch path taken */
} kp_call;

typedef int32_t (*kp_entry_fn)(kp_call *call, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* KPILOT_ABI_H */
