// Training-mode batch normalization's statistics and gradient for a float32 map with channels
// last (per channel, over all other axes: its rows) as XLA FFI handlers, written by hand rather
// than through oneDNN: one pass over the map for the statistics, two for the gradient, each split
// over two of XLA's threads, and none of the intermediate maps XLA's passes write. Blocks of rows
// are summed in float while in cache and merged in double, so neither the variance nor the
// gradient's sums lose digits to cancellation or to long float sums.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int64_t kBlock = 64;  // rows a block: 64 rows of 256 channels stay in a 64 KiB cache

// Per-channel count, mean and sum of squared deviations of some rows, in double.
struct Moments {
  double count = 0;
  std::vector<double> mean, m2;
  explicit Moments(int64_t c) : mean(c), m2(c) {}

  // Adds `n` rows whose mean is `mean_b` and sum of squared deviations `m2_b` (Chan et al.).
  void Merge(double n, const double* mean_b, const double* m2_b) {
    double total = count + n;
    for (size_t j = 0; j < mean.size(); ++j) {
      double delta = mean_b[j] - mean[j];
      mean[j] += delta * n / total;
      m2[j] += m2_b[j] + delta * delta * count * n / total;
    }
    count = total;
  }
};

// A block's mean and sum of squared deviations: about its float mean `center`, with the sum of the
// deviations as the correction (the corrected two-pass algorithm), so `center`'s rounding is gone.
__attribute__((target_clones("avx512f", "avx2", "default")))
void BlockMoments(const float* __restrict x, int64_t rows, int64_t c, float* __restrict center,
                  float* __restrict deviation, float* __restrict m2) {
  std::fill(center, center + c, 0.f);
  std::fill(deviation, deviation + c, 0.f);
  std::fill(m2, m2 + c, 0.f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < c; ++j) center[j] += x[r * c + j];
  }
  for (int64_t j = 0; j < c; ++j) center[j] /= rows;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < c; ++j) {
      float d = x[r * c + j] - center[j];
      deviation[j] += d;
      m2[j] += d * d;
    }
  }
}

// Moments of rows [begin, end) of a rows x c map.
Moments RowMoments(const float* x, int64_t begin, int64_t end, int64_t c) {
  Moments m(c);
  std::vector<float> center(c), deviation(c), m2(c);
  std::vector<double> mean(c), m2_exact(c);
  for (int64_t r = begin; r < end; r += kBlock) {
    int64_t n = std::min(kBlock, end - r);
    BlockMoments(x + r * c, n, c, center.data(), deviation.data(), m2.data());
    for (int64_t j = 0; j < c; ++j) {
      mean[j] = center[j] + double(deviation[j]) / n;
      m2_exact[j] = m2[j] - double(deviation[j]) * deviation[j] / n;
    }
    m.Merge(n, mean.data(), m2_exact.data());
  }
  return m;
}

// What the gradient flows through after the normalization: nothing, or a ReLU, whose mask is
// recomputed from x as the forward pass computed it (x - mean) * multiplier + offset > 0.
struct Relu {
  const float* multiplier;
  const float* offset;
};

// Per-channel sums of g and of g * (x - mean) over some rows (g masked by the ReLU if kRelu).
template <bool kRelu>
__attribute__((target_clones("avx512f", "avx2", "default")))
void BlockGradSums(const float* __restrict x, const float* __restrict g, int64_t rows, int64_t c,
                   const float* __restrict mean, Relu relu, float* __restrict g_sum,
                   float* __restrict gc_sum) {
  std::fill(g_sum, g_sum + c, 0.f);
  std::fill(gc_sum, gc_sum + c, 0.f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < c; ++j) {
      float xc = x[r * c + j] - mean[j], gj = g[r * c + j];
      if (kRelu) gj = xc * relu.multiplier[j] + relu.offset[j] > 0.f ? gj : 0.f;
      g_sum[j] += gj;
      gc_sum[j] += gj * xc;
    }
  }
}

// The same summed in double over rows [begin, end).
template <bool kRelu>
void RowGradSums(const float* x, const float* g, int64_t begin, int64_t end, int64_t c,
                 const float* mean, Relu relu, double* g_total, double* gc_total) {
  std::vector<float> g_sum(c), gc_sum(c);
  for (int64_t r = begin; r < end; r += kBlock) {
    int64_t n = std::min(kBlock, end - r);
    BlockGradSums<kRelu>(x + r * c, g + r * c, n, c, mean, relu, g_sum.data(), gc_sum.data());
    for (int64_t j = 0; j < c; ++j) {
      g_total[j] += g_sum[j];
      gc_total[j] += gc_sum[j];
    }
  }
}

// dx = g * m + (x - mean) * a + b over some rows (g masked by the ReLU if kRelu).
template <bool kRelu>
__attribute__((target_clones("avx512f", "avx2", "default")))
void InputGrad(const float* __restrict x, const float* __restrict g, int64_t rows, int64_t c,
               const float* __restrict mean, Relu relu, const float* __restrict m,
               const float* __restrict a, const float* __restrict b, float* __restrict dx) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < c; ++j) {
      float xc = x[r * c + j] - mean[j], gj = g[r * c + j];
      if (kRelu) gj = xc * relu.multiplier[j] + relu.offset[j] > 0.f ? gj : 0.f;
      dx[r * c + j] = gj * m[j] + xc * a[j] + b[j];
    }
  }
}

// Maps of at least this many values split their rows in two, whatever the threads (the halves'
// sums are merged: the split decides the bits, so the shape alone decides it).
constexpr int64_t kSplitValues = 1 << 16;

// Runs `part(begin, end, k)` on rows [0, rows) as one part (k = 0) or two halves (k = 0, 1).
template <typename Part>
void OverRows(ffi::ThreadPool& pool, int64_t rows, int64_t c, const Part& part) {
  if (rows * c < kSplitValues || rows < 2) return part(0, rows, 0);
  int64_t half = rows / 2;
  onednn_ops::InTwo(pool, [&](int k) { k == 0 ? part(0, half, 0) : part(half, rows, 1); });
}

using F32 = ffi::Buffer<ffi::F32>;
using F32Out = ffi::ResultBuffer<ffi::F32>;

int64_t Rows(F32 x) {
  auto d = x.dimensions();
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < d.size(); ++i) rows *= d[i];
  return rows;
}

// (mean, biased variance) of each channel of x.
ffi::Error Statistics(ffi::ThreadPool pool, F32 x, F32Out mean, F32Out var) {
  return onednn_ops::Guarded("batch norm statistics", [&] {
    int64_t c = x.dimensions().back(), rows = Rows(x);
    std::vector<Moments> parts(2, Moments(c));
    OverRows(pool, rows, c, [&](int64_t begin, int64_t end, int k) {
      parts[k] = RowMoments(x.typed_data(), begin, end, c);
    });
    parts[0].Merge(parts[1].count, parts[1].mean.data(), parts[1].m2.data());
    for (int64_t j = 0; j < c; ++j) {
      mean->typed_data()[j] = parts[0].mean[j];
      var->typed_data()[j] = parts[0].m2[j] / rows;
    }
    return ffi::Error::Success();
  });
}

// (dx, dscale, doffset) of y = (x - mean) * scale / sqrt(var + epsilon) + offset (then the ReLU
// if kRelu), for dy = g.
template <bool kRelu>
ffi::Error Gradient(ffi::ThreadPool pool, F32 x, F32 g, F32 scale, F32 mean, F32 var, Relu relu,
                    F32Out dx, F32Out dscale, F32Out doffset, float epsilon) {
  return onednn_ops::Guarded("batch norm gradient", [&] {
    int64_t c = x.dimensions().back(), rows = Rows(x);
    const float* mu = mean.typed_data();
    std::vector<double> sums(4 * c, 0.0);  // g and g * (x - mean), for each half
    OverRows(pool, rows, c, [&](int64_t begin, int64_t end, int k) {
      RowGradSums<kRelu>(x.typed_data(), g.typed_data(), begin, end, c, mu, relu,
                         &sums[2 * k * c], &sums[(2 * k + 1) * c]);
    });
    std::vector<float> m(c), a(c), b(c);
    for (int64_t j = 0; j < c; ++j) {
      double g_sum = sums[j] + sums[2 * c + j], gc_sum = sums[c + j] + sums[3 * c + j];
      double inv_std = 1.0 / std::sqrt(double(var.typed_data()[j]) + epsilon);
      double multiplier = scale.typed_data()[j] * inv_std, scale_grad = inv_std * gc_sum;
      m[j] = multiplier;
      a[j] = -multiplier * inv_std * scale_grad / rows;
      b[j] = -multiplier * g_sum / rows;
      dscale->typed_data()[j] = scale_grad;
      doffset->typed_data()[j] = g_sum;
    }
    OverRows(pool, rows, c, [&](int64_t begin, int64_t end, int) {
      InputGrad<kRelu>(x.typed_data() + begin * c, g.typed_data() + begin * c, end - begin, c,
                       mu, relu, m.data(), a.data(), b.data(), dx->typed_data() + begin * c);
    });
    return ffi::Error::Success();
  });
}

ffi::Error PlainGradient(ffi::ThreadPool pool, F32 x, F32 g, F32 scale, F32 mean, F32 var,
                         F32Out dx, F32Out dscale, F32Out doffset, float epsilon) {
  return Gradient<false>(pool, x, g, scale, mean, var, {nullptr, nullptr}, dx, dscale, doffset,
                         epsilon);
}

// The ReLU's mask from the forward pass's multiplier (scale / sqrt(var + epsilon), as it
// computed it) and offset.
ffi::Error ReluGradient(ffi::ThreadPool pool, F32 x, F32 g, F32 scale, F32 mean, F32 var,
                        F32 multiplier, F32 offset, F32Out dx, F32Out dscale, F32Out doffset,
                        float epsilon) {
  return Gradient<true>(pool, x, g, scale, mean, var,
                        {multiplier.typed_data(), offset.typed_data()}, dx, dscale, doffset,
                        epsilon);
}

// The arguments both gradients start with: x, g, scale, mean, var.
auto GradientArgs() {
  return ffi::Ffi::Bind().Ctx<ffi::ThreadPool>().Arg<F32>().Arg<F32>().Arg<F32>().Arg<F32>()
      .Arg<F32>();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(BatchNormStatistics, Statistics,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32>()
                                  .Ret<F32>()
                                  .Ret<F32>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(BatchNormGradient, PlainGradient,
                              GradientArgs().Ret<F32>().Ret<F32>().Ret<F32>()
                                  .Attr<float>("epsilon"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(BatchNormReluGradient, ReluGradient,
                              GradientArgs().Arg<F32>().Arg<F32>()  // multiplier, offset
                                  .Ret<F32>().Ret<F32>().Ret<F32>().Attr<float>("epsilon"));
