// SAME-padded NHWC float32 max-pooling and its gradient as XLA FFI handlers calling oneDNN. The
// forward pass also returns oneDNN's workspace (where each window's maximum was), which the
// gradient takes. Primitives are built once per shape and cached.
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
using Tag = memory::format_tag;

namespace {

// Input N,H,W,C; output N,OH,OW,C; a window x window window every `stride` positions.
struct Shape {
  int64_t n, h, w, c, oh, ow, window, stride, pad_top, pad_left;
  bool operator<(const Shape& o) const {
    return std::tie(n, h, w, c, oh, ow, window, stride, pad_top, pad_left) <
           std::tie(o.n, o.h, o.w, o.c, o.oh, o.ow, o.window, o.stride, o.pad_top, o.pad_left);
  }
  memory::desc Input() const { return {{n, c, h, w}, memory::data_type::f32, Tag::nhwc}; }
  memory::desc Output() const { return {{n, c, oh, ow}, memory::data_type::f32, Tag::nhwc}; }
  dnnl::pooling_forward::primitive_desc Forward() const {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    memory::dims pad_r = {(oh - 1) * stride + window - h - pad_top,
                          (ow - 1) * stride + window - w - pad_left};
    return {Engine(), dnnl::prop_kind::forward_training, dnnl::algorithm::pooling_max, Input(),
            Output(), {stride, stride}, {window, window}, {0, 0}, {pad_top, pad_left}, pad_r, attr};
  }
};

struct Entry {
  dnnl::primitive forward, backward;
  memory::desc workspace, forward_scratchpad, backward_scratchpad;
};

Entry MakeEntry(const Shape& s) {
  auto fwd = s.Forward();
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  memory::dims pad_r = {(s.oh - 1) * s.stride + s.window - s.h - s.pad_top,
                        (s.ow - 1) * s.stride + s.window - s.w - s.pad_left};
  dnnl::pooling_backward::primitive_desc bwd(
      Engine(), dnnl::algorithm::pooling_max, s.Input(), s.Output(), {s.stride, s.stride},
      {s.window, s.window}, {0, 0}, {s.pad_top, s.pad_left}, pad_r, fwd, attr);
  return {dnnl::pooling_forward(fwd), dnnl::pooling_backward(bwd), fwd.workspace_desc(),
          fwd.scratchpad_desc(), bwd.scratchpad_desc()};
}

const Entry& Cached(const Shape& s) {
  return onednn_ops::Memoized(s, [](const Shape& s) { return MakeEntry(s); });
}

// Runs the forward (x, y) or backward (dx, dy) pass; both share the workspace.
void RunPart(bool backward, const Shape& s, float* input, float* output, uint8_t* workspace) {
  onednn_ops::UseThreads();
  thread_local dnnl::stream stream(Engine());
  const Entry& e = Cached(s);
  memory x(s.Input(), Engine(), input), y(s.Output(), Engine(), output),
      ws(e.workspace, Engine(), workspace),
      scratchpad(backward ? e.backward_scratchpad : e.forward_scratchpad, Engine());
  if (backward) {
    e.backward.execute(stream, {{DNNL_ARG_DIFF_SRC, x}, {DNNL_ARG_DIFF_DST, y},
                                {DNNL_ARG_WORKSPACE, ws}, {DNNL_ARG_SCRATCHPAD, scratchpad}});
  } else {
    e.forward.execute(stream, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}, {DNNL_ARG_WORKSPACE, ws},
                               {DNNL_ARG_SCRATCHPAD, scratchpad}});
  }
  stream.wait();
}

// Pools of at least this many input values split the batch over two threads.
constexpr int64_t kSplitValues = 1 << 16;

// Whether the workspace holds one byte an output, in the output's order: then a batch's halves
// have their own stretches of it.
bool WorkspacePerOutput(const Shape& s) {
  return Cached(s).workspace ==
         memory::desc({s.n, s.c, s.oh, s.ow}, memory::data_type::u8, Tag::nhwc);
}

// Runs the pass, the batch's second half on one of XLA's threads where it is large enough
// (`onednn_ops::InTwo`).
void Run(ffi::ThreadPool& pool, bool backward, const Shape& s, float* input, float* output,
         uint8_t* workspace) {
  Shape first = s, second = s;
  first.n = s.n / 2;
  second.n = s.n - first.n;
  if (s.n < 2 || s.n * s.h * s.w * s.c < kSplitValues || pool.num_threads() < 2 ||
      !WorkspacePerOutput(first) || !WorkspacePerOutput(second)) {
    return RunPart(backward, s, input, output, workspace);
  }
  int64_t outputs = first.n * s.oh * s.ow * s.c;
  onednn_ops::InTwo(pool, [&](int half) {
    if (half == 0) return RunPart(backward, first, input, output, workspace);
    RunPart(backward, second, input + first.n * s.h * s.w * s.c, output + outputs,
            workspace + outputs);
  });
}

Shape MakeShape(ffi::Buffer<ffi::F32>::Dimensions x, ffi::Buffer<ffi::F32>::Dimensions y,
                int64_t window, int64_t stride, int64_t pad_top, int64_t pad_left) {
  return {x[0], x[1], x[2], x[3], y[1], y[2], window, stride, pad_top, pad_left};
}

ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::ResultBuffer<ffi::F32> y,
                   ffi::ResultBuffer<ffi::U8> workspace, int64_t window, int64_t stride,
                   int64_t pad_top, int64_t pad_left) {
  return onednn_ops::Guarded("oneDNN max-pool", [&] {
    Shape s = MakeShape(x.dimensions(), y->dimensions(), window, stride, pad_top, pad_left);
    if (Cached(s).workspace.get_size() != workspace->size_bytes()) {
      return ffi::Error::InvalidArgument("oneDNN max-pool: wrong workspace size");
    }
    Run(pool, false, s, x.typed_data(), y->typed_data(), workspace->typed_data());
    return ffi::Error::Success();
  });
}

ffi::Error Backward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> g, ffi::Buffer<ffi::U8> workspace,
                    ffi::ResultBuffer<ffi::F32> dx, int64_t window, int64_t stride,
                    int64_t pad_top, int64_t pad_left) {
  return onednn_ops::Guarded("oneDNN max-pool gradient", [&] {
    Shape s = MakeShape(dx->dimensions(), g.dimensions(), window, stride, pad_top, pad_left);
    Run(pool, true, s, dx->typed_data(), g.typed_data(), workspace.typed_data());
    return ffi::Error::Success();
  });
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(OnednnMaxPoolForward, Forward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::U8>>()
                                  .Attr<int64_t>("window")
                                  .Attr<int64_t>("stride")
                                  .Attr<int64_t>("pad_top")
                                  .Attr<int64_t>("pad_left"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(OnednnMaxPoolBackward, Backward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::U8>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("window")
                                  .Attr<int64_t>("stride")
                                  .Attr<int64_t>("pad_top")
                                  .Attr<int64_t>("pad_left"));

// Bytes of the workspace oneDNN keeps for one max-pooling shape.
extern "C" int64_t OnednnMaxPoolWorkspaceBytes(int64_t n, int64_t h, int64_t w, int64_t c,
                                               int64_t oh, int64_t ow, int64_t window,
                                               int64_t stride, int64_t pad_top,
                                               int64_t pad_left) {
  return static_cast<int64_t>(
      Cached({n, h, w, c, oh, ow, window, stride, pad_top, pad_left}).workspace.get_size());
}
