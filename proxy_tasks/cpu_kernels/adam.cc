// The proxy's AdamW step as an XLA FFI handler: one call a parameter for its clipped Adam
// moments, decoupled weight decay and update, in place. optax's chain compiles to about six kernels
// a parameter (2,448 for the `default` detector: about half of its train step's compile); these
// are a custom call a parameter, which XLA compiles to nothing. The arithmetic is what XLA compiles
// optax's chain to for a detector's step, operation for operation, so both paths give the same
// bits (bench/optimizer_paths.py): build.py turns off the compiler's own FMA contraction, and the
// multiply-adds that XLA's CPU backend fuses are explicit std::fma calls.
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

// optax's chain as XLA compiles it: g clipped to (g / norm) * clip_norm unless norm < clip_norm,
// the bias corrections' divisions merged into one, and the multiply-adds XLA fuses (nu's the other
// way round where there is no clipping).
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
void Update(int64_t n, float* __restrict p, const float* __restrict g, float* __restrict mu,
            float* __restrict nu, float rate, float bc1, float bc2, float norm, float clip_norm,
            float b1, float b2, float one_minus_b1, float one_minus_b2, float eps, float decay) {
  const bool clipping = clip_norm > 0, clipped = clipping && !(norm < clip_norm);
  for (int64_t i = 0; i < n; ++i) {
    float t = clipped ? (g[i] / norm) * clip_norm : g[i];
    float m = std::fma(t, one_minus_b1, mu[i] * b1);
    float v = clipping ? std::fma(nu[i], b2, (t * t) * one_minus_b2)
                       : std::fma(t * t, one_minus_b2, nu[i] * b2);
    float u = m / (bc1 * (std::sqrt(v / bc2) + eps));
    if (decay != 0) u = std::fma(p[i], decay, u);
    mu[i] = m;
    nu[i] = v;
    p[i] = std::fma(-rate, u, p[i]);
  }
}

// One parameter's step. scalars: the learning rate, 1 - b1^t, 1 - b2^t and the gradients' global
// norm (optax's, so that the clipping and the reported norm are optax's too).
// The results alias p, mu and nu (copied first where XLA gave them buffers of their own).
ffi::Error Step(F32 p, F32 g, F32 mu, F32 nu, F32 scalars, F32Out p_out, F32Out mu_out,
                F32Out nu_out, float b1, float b2, float one_minus_b1, float one_minus_b2,
                float eps, float decay, float clip_norm) {
  return onednn_ops::Guarded("adamw step", [&] {
    int64_t n = p.element_count();
    for (auto [from, to] : {std::pair{p.typed_data(), p_out->typed_data()},
                            std::pair{mu.typed_data(), mu_out->typed_data()},
                            std::pair{nu.typed_data(), nu_out->typed_data()}}) {
      if (from != to) std::copy(from, from + n, to);
    }
    const float* s = scalars.typed_data();
    Update(n, p_out->typed_data(), g.typed_data(), mu_out->typed_data(), nu_out->typed_data(),
           s[0], s[1], s[2], s[3], clip_norm, b1, b2, one_minus_b1, one_minus_b2, eps, decay);
    return ffi::Error::Success();
  });
}

}  // namespace

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
                                  .Attr<float>("decay")
                                  .Attr<float>("clip_norm"));  // 0: none
