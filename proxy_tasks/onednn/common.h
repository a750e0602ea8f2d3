// What conv.cc and pool.cc share: oneDNN's CPU engine and the OpenMP threads a call may use.
#pragma once

#include "oneapi/dnnl/dnnl.hpp"

#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
#include <omp.h>
#endif

namespace onednn_ops {

// Threads each oneDNN call may use (0: the runtime's default); set once from Python.
inline int g_threads = 0;

inline dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Gives the calling thread's oneDNN calls `g_threads` OpenMP threads.
inline void UseThreads() {
#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
  if (g_threads > 0 && omp_get_max_threads() != g_threads) omp_set_num_threads(g_threads);
#endif
}

}  // namespace onednn_ops
