// kpilot-parent: v17 sha256 0d73b44d4eb8e4dd00d57a02a03fd6e67fdb395d405f330d124fcd033e6ee964
// Candidate v17b for tasks/group_norm_silu: v17 with ONE knob changed, GNS_V17_FINALIZER = 1: the
// CTA whose partial completes a unit (its atomic increment returns m_u - 1) sums the unit's m_u
// partials once, in v17's slot order, and publishes {mean, rstd} behind a release flag; every other
// CTA of the unit then reads two values instead of m_u pairs, a butterfly, a division and a square
// root. Same numbers in every CTA (one CTA computes them); v17's arithmetic otherwise.
//
// Why: on the rows whose units are small next to the grid ([1,128,17,256,80]: 170 chunks a unit,
// 264 CTAs, each CTA holds one chunk of each unit it touches) every chunk a CTA applies starts
// with that work on one warp while the other 15 wait at the decision barrier.
//
// PREDICTION (H200, not measured): correct on every row; on the 10 rows v17 takes, 0-10% faster
// than v17 in the same lease, most on the small-unit rows, nothing on [1,256,17,256,256] (5 chunks
// of a unit a CTA, one switch every 5 chunks). Every other row v12's code, as in v17.
#define GNS_V17_FINALIZER 1
#include "v17.cu"
