// kpilot-parent: v3
//
// v3 with one 16-byte vector a thread (C / 8 threads a row: 384 at C = 3072): fewer registers a
// thread and more warps resident, fewer bytes in flight a thread.
#define V3_THREADS 384
#define V3_PATH "ln_row_l1mod_wide"
#include "v3.cu"
