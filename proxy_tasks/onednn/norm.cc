// The gradient of training-mode batch normalization of an NHWC float32 map (statistics over N,
// H, W) as an XLA FFI handler calling oneDNN: one call for what XLA does in several passes over
// the map. The forward pass stays in XLA, fused with its neighbours. Primitives are built once
// per shape and cached.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <tuple>

#include "common.h"
#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using onednn_ops::Engine;

namespace {

struct Shape {
  int64_t n, h, w, c;
  float epsilon;
  bool operator<(const Shape& o) const {
    return std::tie(n, h, w, c, epsilon) < std::tie(o.n, o.h, o.w, o.c, o.epsilon);
  }
  memory::desc Map() const {
    return {{n, c, h, w}, memory::data_type::f32, memory::format_tag::nhwc};
  }
  memory::desc Channels() const { return {{c}, memory::data_type::f32, memory::format_tag::a}; }
};

struct Entry {
  dnnl::batch_normalization_backward primitive;
  memory::desc scratchpad;
};

Entry MakeEntry(const Shape& s) {
  const auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::batch_normalization_forward::primitive_desc hint(
      Engine(), dnnl::prop_kind::forward_training, s.Map(), s.Map(), s.epsilon, flags, attr);
  dnnl::batch_normalization_backward::primitive_desc pd(
      Engine(), dnnl::prop_kind::backward, s.Map(), s.Map(), s.Map(), s.epsilon, flags, hint,
      attr);
  return {dnnl::batch_normalization_backward(pd), pd.scratchpad_desc()};
}

const Entry& Cached(const Shape& s) {
  return onednn_ops::Memoized(s, [](const Shape& s) { return MakeEntry(s); });
}

using F32 = ffi::Buffer<ffi::F32>;
using F32Out = ffi::ResultBuffer<ffi::F32>;

// (dx, dscale, doffset) from the map x, the output's gradient g, and the forward's scale, batch
// mean and biased batch variance.
ffi::Error Backward(F32 x, F32 g, F32 scale, F32 mean, F32 var, F32Out dx, F32Out dscale,
                    F32Out doffset, float epsilon) {
  return onednn_ops::Guarded("oneDNN batch norm gradient", [&] {
    auto d = x.dimensions();
    if (d.size() != 4) throw std::invalid_argument("a map of rank " + std::to_string(d.size()));
    Shape s{d[0], d[1], d[2], d[3], epsilon};
    const Entry& e = Cached(s);
    onednn_ops::UseThreads();
    thread_local dnnl::stream stream(Engine());
    auto map = [&](float* data) { return memory(s.Map(), Engine(), data); };
    auto channels = [&](float* data) { return memory(s.Channels(), Engine(), data); };
    e.primitive.execute(
        stream, {{DNNL_ARG_SRC, map(x.typed_data())},
                 {DNNL_ARG_DIFF_DST, map(g.typed_data())},
                 {DNNL_ARG_SCALE, channels(scale.typed_data())},
                 {DNNL_ARG_MEAN, channels(mean.typed_data())},
                 {DNNL_ARG_VARIANCE, channels(var.typed_data())},
                 {DNNL_ARG_DIFF_SRC, map(dx->typed_data())},
                 {DNNL_ARG_DIFF_SCALE, channels(dscale->typed_data())},
                 {DNNL_ARG_DIFF_SHIFT, channels(doffset->typed_data())},
                 {DNNL_ARG_SCRATCHPAD, memory(e.scratchpad, Engine())}});
    stream.wait();
    return ffi::Error::Success();
  });
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(OnednnBatchNormBackward, Backward,
                              ffi::Ffi::Bind()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Ret<F32>()
                                  .Ret<F32>()
                                  .Ret<F32>()
                                  .Attr<float>("epsilon"));
