// kpilot-parent: v3
//
// v3 with the outputs stored evict-first (st.global.cs): written once, never re-read by the
// kernel, so they need not compete with the modulation rows and the streamed reads for L2.
#define V3_STREAM_STORES 1
#define V3_PATH "ln_row_l1mod_cs"
#include "v3.cu"
