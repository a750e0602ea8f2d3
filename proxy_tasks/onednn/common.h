// What the custom calls share: oneDNN's CPU engine, the OpenMP threads a call may use, the
// cache of primitives, and how an exception becomes XLA's error.
#pragma once

#include <exception>
#include <map>
#include <mutex>
#include <string>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

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

// `make(key)`, made once per key and kept, safe across threads. The cache belongs to the type of
// `make`: give each call site its own lambda.
template <typename Key, typename Make>
const auto& Memoized(const Key& key, Make make) {
  static std::mutex mutex;
  static std::map<Key, decltype(make(key))> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, make(key)).first;
  return it->second;
}

// `body()`'s error, or an internal error "`what`: message" where it throws.
template <typename Body>
xla::ffi::Error Guarded(const char* what, Body&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    return xla::ffi::Error::Internal(std::string(what) + ": " + e.what());
  }
}

}  // namespace onednn_ops
