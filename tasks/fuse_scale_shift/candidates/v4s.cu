// kpilot-parent: v4
//
// v4 with the outputs also stored evict-first (st.global.cs).
#define V4_CS_STORES 1
#define V4_PATH "ln_row_x_no_allocate_cs"
#include "v4.cu"
