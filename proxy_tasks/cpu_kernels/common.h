// What the custom calls share: oneDNN's CPU engine, the OpenMP threads a call may use, the
// cache of primitives, and how an exception becomes XLA's error.
#pragma once

#include <atomic>
#include <condition_variable>
#include <exception>
#include <map>
#include <memory>
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

// Runs `part(0)` on the calling thread and `part(1)` on one of XLA's pool threads, both before it
// returns; the caller runs `part(1)` too if no pool thread has started it by then, so a busy pool
// costs no waiting and no threads are added to XLA's. Rethrows the first part's exception.
template <typename Part>
void InTwo(xla::ffi::ThreadPool& pool, const Part& part) {
  struct Second {
    std::atomic<bool> claimed{false};
    std::mutex mutex;
    std::condition_variable finished_cv;
    bool finished = false;
    std::exception_ptr error;
  };
  auto second = std::make_shared<Second>();
  // The pool's copy touches `part` only when it wins the claim, and the caller waits for it then.
  auto run_second = [second, part = &part]() {
    if (second->claimed.exchange(true)) return;
    std::exception_ptr error;
    try {
      (*part)(1);
    } catch (...) {
      error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(second->mutex);
    second->error = error;
    second->finished = true;
    second->finished_cv.notify_all();
  };
  pool.Schedule([run_second] { run_second(); });
  std::exception_ptr error;
  try {
    part(0);
  } catch (...) {
    error = std::current_exception();
  }
  run_second();
  std::unique_lock<std::mutex> lock(second->mutex);
  second->finished_cv.wait(lock, [&] { return second->finished; });
  if (!error) error = second->error;
  if (error) std::rethrow_exception(error);
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
