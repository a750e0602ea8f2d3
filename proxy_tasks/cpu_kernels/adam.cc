// The proxy's AdamW step as XLA FFI handlers: the gradients' global norm in one call, then one
// call a parameter for its clipped Adam moments, decoupled weight decay and update, in place.
// optax's chain compiles to about six kernels a parameter (2,448 for the `default` detector: about
// half of its train step's compile); these are a custom call a parameter, which XLA compiles to
// nothing.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

#include "common.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using F32 = ffi::Buffer<ffi::F32>;
using F32Out = ffi::ResultBuffer<ffi::F32>;

__attribute__((target_clones("avx512f", "avx2", "default")))
double SumOfSquares(const float* __restrict g, int64_t n) {
  double sum = 0.0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += double(g[i]) * g[i];
  return sum;
}

// The global norm of all the arguments, summed in double.
ffi::Error Norm(ffi::RemainingArgs grads, F32Out norm) {
  return onednn_ops::Guarded("global norm", [&] {
    double sum = 0.0;
    for (size_t i = 0; i < grads.size(); ++i) {
      F32 g = grads.get<F32>(i).value();
      sum += SumOfSquares(g.typed_data(), g.element_count());
    }
    norm->typed_data()[0] = static_cast<float>(std::sqrt(sum));
    return ffi::Error::Success();
  });
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void Update(int64_t n, float* __restrict p, const float* __restrict g, float* __restrict mu,
            float* __restrict nu, float step, float bc1, float bc2, float scale, float b1,
            float b2, float one_minus_b1, float one_minus_b2, float eps, float decay) {
  for (int64_t i = 0; i < n; ++i) {
    float t = g[i] * scale;
    float m = one_minus_b1 * t + b1 * mu[i];
    float v = one_minus_b2 * (t * t) + b2 * nu[i];
    float u = (m / bc1) / (std::sqrt(v / bc2) + eps) + decay * p[i];
    mu[i] = m;
    nu[i] = v;
    p[i] -= step * u;
  }
}

// One parameter's step. scalars: the learning rate, 1 - b1^t, 1 - b2^t and the clipping factor.
// The results alias p, mu and nu (copied first where XLA gave them buffers of their own).
ffi::Error Step(F32 p, F32 g, F32 mu, F32 nu, F32 scalars, F32Out p_out, F32Out mu_out,
                F32Out nu_out, float b1, float b2, float one_minus_b1, float one_minus_b2,
                float eps, float decay) {
  return onednn_ops::Guarded("adamw step", [&] {
    int64_t n = p.element_count();
    for (auto [from, to] : {std::pair{p.typed_data(), p_out->typed_data()},
                            std::pair{mu.typed_data(), mu_out->typed_data()},
                            std::pair{nu.typed_data(), nu_out->typed_data()}}) {
      if (from != to) std::copy(from, from + n, to);
    }
    const float* s = scalars.typed_data();
    Update(n, p_out->typed_data(), g.typed_data(), mu_out->typed_data(), nu_out->typed_data(),
           s[0], s[1], s[2], s[3], b1, b2, one_minus_b1, one_minus_b2, eps, decay);
    return ffi::Error::Success();
  });
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(GlobalNorm, Norm,
                              ffi::Ffi::Bind().RemainingArgs().Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(AdamWStep, Step,
                              ffi::Ffi::Bind()
                                  .Arg<F32>()  // p
                                  .Arg<F32>()  // g
                                  .Arg<F32>()  // mu
                                  .Arg<F32>()  // nu
                                  .Arg<F32>()  // scalars
                                  .Ret<F32>()
                                  .Ret<F32>()
                                  .Ret<F32>()
                                  .Attr<float>("b1")
                                  .Attr<float>("b2")
                                  .Attr<float>("one_minus_b1")  // 1 - b1 rounded once, as optax's
                                  .Attr<float>("one_minus_b2")
                                  .Attr<float>("eps")
                                  .Attr<float>("decay"));
