// Threads: one process-wide count used by every parallel region (set by
// pydl.set_num_threads / PYDL_NUM_THREADS), instead of OpenMP's per-thread ICV, so a
// count set from one Python thread holds for calls made from any other.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace pydl {

int num_threads();
void set_num_threads(int n);

// Threads worth using for `work` units of roughly `grain` cost each: small problems run
// on one thread rather than paying for a parallel region (~1-5 us).
inline int threads_for(int64_t work, int64_t grain) {
  int64_t useful = std::max<int64_t>(1, work / std::max<int64_t>(1, grain));
  return static_cast<int>(std::min<int64_t>(num_threads(), useful));
}

}  // namespace pydl
