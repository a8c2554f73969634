// kpilot-parent: v7 sha256 d3cc451bed8ecd4a98ed931f3a1b0030447cdbf392aa91f8d98fa4743e5ff839
// Candidate v7b for tasks/causal_conv3d_cat_pad: v7 with ONE knob changed, V7_ZERO_FIRST = 1: on
// v7's path (the c1024 t2 h60 w104 cache1 row, 92 MB) the zero-only CTAs are the grid's first
// z slices, dispatched before every data CTA, instead of after them (path
// `img7_zfirst_u16_t128_b8064`). Every other call runs v5's code, as in v7.
//
// Why a second run: v7 changes two things against v5 on that row -- the zero planes leave the
// data CTAs (as in v5b / v4, where their CTAs were interleaved per channel) and they are
// written as one block of pure writes at one end of the launch. Back to back in a graph, zero
// first and zero last alternate the same two phases; they differ only at the launch's start
// (v7b: a wave of stores with no load in flight) and tail (v7: the last data CTAs' load
// latency covered by zero stores). v7 faster than v7b says the tail placement (the stream
// reference's order) is the mechanism; both equal and faster than v5 says separating the
// phases is; both at v5b's time (25.43 us, run 20261201T053528Z-6efa119e) says neither, and the
// zero plane's cost lies elsewhere (the DRAM side of pure writes).
//
// PREDICTION (H200, cold, not measured; v5 run 20261201T053521Z-29abf3a3): 92 MB row 25.2 us
// (24.4-25.9), about v5's 25.15 (86.0% of copy); every other row v5's code and times.

#define V7_ZERO_FIRST 1
#include "v7.cu"
