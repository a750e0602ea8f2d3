// SAME-padded NHWC x HWIO float32 convolution, its input gradient and its kernel gradient as
// XLA FFI handlers calling oneDNN. Primitives are built once per shape and cached.
#include <algorithm>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "common.h"
#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using onednn_ops::Engine;
using Tag = memory::format_tag;

namespace {

// One convolution problem: input N,H,W,C; kernel KH,KW,C,F; output N,OH,OW,F.
struct Shape {
  int64_t n, h, w, c, kh, kw, f, oh, ow, stride, pad_top, pad_left;
  bool operator<(const Shape& o) const {
    return std::tie(n, h, w, c, kh, kw, f, oh, ow, stride, pad_top, pad_left) <
           std::tie(o.n, o.h, o.w, o.c, o.kh, o.kw, o.f, o.oh, o.ow, o.stride, o.pad_top,
                    o.pad_left);
  }
  memory::desc Input() const { return {{n, c, h, w}, memory::data_type::f32, Tag::nhwc}; }
  memory::desc Kernel() const { return {{f, c, kh, kw}, memory::data_type::f32, Tag::hwio}; }
  memory::desc Output() const { return {{n, f, oh, ow}, memory::data_type::f32, Tag::nhwc}; }
  memory::dims Strides() const { return {stride, stride}; }
  memory::dims PadL() const { return {pad_top, pad_left}; }
  memory::dims PadR() const {
    return {(oh - 1) * stride + kh - h - pad_top, (ow - 1) * stride + kw - w - pad_left};
  }
};

using Dims = ffi::Buffer<ffi::F32>::Dimensions;

enum class Op { kForward, kInputGrad, kKernelGrad };

// A cached primitive and the reorder between the kernel's HWIO layout and the one it wants.
struct Entry {
  dnnl::primitive primitive;
  memory::desc kernel;  // the layout the primitive takes or gives the kernel (gradient) in
  dnnl::primitive reorder;  // HWIO to that layout (kernel grad: from it), when they differ
  bool reordered = false;
  memory::desc scratchpad;  // allocated per call: one primitive may run on several threads
};

// Every primitive takes its scratchpad from the caller: oneDNN's own is shared per thread.
dnnl::primitive_attr UserScratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

memory::desc AnyKernel(const Shape& s) {
  return {{s.f, s.c, s.kh, s.kw}, memory::data_type::f32, Tag::any};
}

Entry MakeEntry(Op op, const Shape& s) {
  auto fwd = [&](memory::desc kernel) {
    return dnnl::convolution_forward::primitive_desc(
        Engine(), dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
        s.Input(), kernel, s.Output(), s.Strides(), s.PadL(), s.PadR(), UserScratchpad());
  };
  Entry e;
  if (op == Op::kForward) {
    auto pd = fwd(AnyKernel(s));
    e.primitive = dnnl::convolution_forward(pd);
    e.kernel = pd.weights_desc();
    e.scratchpad = pd.scratchpad_desc();
  } else if (op == Op::kInputGrad) {
    dnnl::convolution_backward_data::primitive_desc pd(
        Engine(), dnnl::algorithm::convolution_direct, s.Input(), AnyKernel(s), s.Output(),
        s.Strides(), s.PadL(), s.PadR(), fwd(AnyKernel(s)), UserScratchpad());
    e.primitive = dnnl::convolution_backward_data(pd);
    e.kernel = pd.weights_desc();
    e.scratchpad = pd.scratchpad_desc();
  } else {
    dnnl::convolution_backward_weights::primitive_desc pd(
        Engine(), dnnl::algorithm::convolution_direct, s.Input(), AnyKernel(s), s.Output(),
        s.Strides(), s.PadL(), s.PadR(), fwd(AnyKernel(s)), UserScratchpad());
    e.primitive = dnnl::convolution_backward_weights(pd);
    e.kernel = pd.diff_weights_desc();
    e.scratchpad = pd.scratchpad_desc();
  }
  e.reordered = e.kernel != s.Kernel();
  if (e.reordered) {
    bool to_plain = op == Op::kKernelGrad;
    e.reorder = dnnl::reorder(dnnl::reorder::primitive_desc(
        Engine(), to_plain ? e.kernel : s.Kernel(), Engine(), to_plain ? s.Kernel() : e.kernel));
  }
  return e;
}

const Entry& Cached(Op op, const Shape& s) {
  return onednn_ops::Memoized(std::make_pair(op, s), [](const std::pair<Op, Shape>& key) {
    return MakeEntry(key.first, key.second);
  });
}

Shape MakeShape(Dims x, Dims k, Dims y, int64_t stride, int64_t pad_top, int64_t pad_left) {
  return {x[0], x[1], x[2], x[3], k[0], k[1], k[3], y[1], y[2], stride, pad_top, pad_left};
}

// Runs `op` on one shape with its three tensors (input, kernel, output gradient or output).
void RunPart(Op op, const Shape& s, float* input, float* kernel, float* output) {
  onednn_ops::UseThreads();
  thread_local dnnl::stream stream(Engine());
  const Entry& e = Cached(op, s);
  memory x(s.Input(), Engine(), input), plain(s.Kernel(), Engine(), kernel),
      y(s.Output(), Engine(), output);
  memory k = e.reordered ? memory(e.kernel, Engine()) : plain;
  if (e.reordered && op != Op::kKernelGrad) {
    e.reorder.execute(stream, {{DNNL_ARG_FROM, plain}, {DNNL_ARG_TO, k}});
  }
  int x_arg = op == Op::kInputGrad ? DNNL_ARG_DIFF_SRC : DNNL_ARG_SRC;
  int k_arg = op == Op::kKernelGrad ? DNNL_ARG_DIFF_WEIGHTS : DNNL_ARG_WEIGHTS;
  int y_arg = op == Op::kForward ? DNNL_ARG_DST : DNNL_ARG_DIFF_DST;
  memory scratchpad(e.scratchpad, Engine());
  e.primitive.execute(stream, {{x_arg, x}, {k_arg, k}, {y_arg, y}, {DNNL_ARG_SCRATCHPAD, scratchpad}});
  if (e.reordered && op == Op::kKernelGrad) {
    e.reorder.execute(stream, {{DNNL_ARG_FROM, k}, {DNNL_ARG_TO, plain}});
  }
  stream.wait();
}

// Convolutions of at least this many multiply-adds split the batch in two, whatever the threads
// (a kernel gradient sums its halves: the split decides its bits, so the shape alone decides it).
constexpr int64_t kSplitMacs = 4 << 20;

// Runs `op`, the batch's second half on one of XLA's threads where it is large enough
// (`onednn_ops::InTwo`).
ffi::Error Run(ffi::ThreadPool pool, Op op, const Shape& s, float* input, float* kernel,
               float* output) {
  return onednn_ops::Guarded("oneDNN convolution", [&] {
    int64_t macs = s.n * s.oh * s.ow * s.f * s.c * s.kh * s.kw;
    if (s.n < 2 || macs < kSplitMacs) {
      RunPart(op, s, input, kernel, output);
      return ffi::Error::Success();
    }
    Shape first = s, second = s;
    first.n = s.n / 2;
    second.n = s.n - first.n;
    // Kernel gradient: the second half's partial sum goes to its own buffer, added at the end.
    std::vector<float> partial(op == Op::kKernelGrad ? s.kh * s.kw * s.c * s.f : 0);
    onednn_ops::InTwo(pool, [&](int half) {
      if (half == 0) return RunPart(op, first, input, kernel, output);
      RunPart(op, second, input + first.n * s.h * s.w * s.c,
              op == Op::kKernelGrad ? partial.data() : kernel,
              output + first.n * s.oh * s.ow * s.f);
    });
    for (size_t i = 0; i < partial.size(); ++i) kernel[i] += partial[i];
    return ffi::Error::Success();
  });
}

using F32 = ffi::Buffer<ffi::F32>;
using F32Out = ffi::ResultBuffer<ffi::F32>;

ffi::Error Forward(ffi::ThreadPool pool, F32 x, F32 k, F32Out y, int64_t stride,
                   int64_t pad_top, int64_t pad_left) {
  Shape s = MakeShape(x.dimensions(), k.dimensions(), y->dimensions(), stride, pad_top, pad_left);
  return Run(pool, Op::kForward, s, x.typed_data(), k.typed_data(), y->typed_data());
}

ffi::Error InputGrad(ffi::ThreadPool pool, F32 g, F32 k, F32Out dx, int64_t stride,
                     int64_t pad_top, int64_t pad_left) {
  Shape s = MakeShape(dx->dimensions(), k.dimensions(), g.dimensions(), stride, pad_top, pad_left);
  return Run(pool, Op::kInputGrad, s, dx->typed_data(), k.typed_data(), g.typed_data());
}

ffi::Error KernelGrad(ffi::ThreadPool pool, F32 x, F32 g, F32Out dk, int64_t stride,
                      int64_t pad_top, int64_t pad_left) {
  Shape s = MakeShape(x.dimensions(), dk->dimensions(), g.dimensions(), stride, pad_top, pad_left);
  return Run(pool, Op::kKernelGrad, s, x.typed_data(), dk->typed_data(), g.typed_data());
}

}  // namespace

#define CONV_HANDLER(name, impl)                                                  \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(name, impl,                                       \
                                ffi::Ffi::Bind()                                  \
                                    .Ctx<ffi::ThreadPool>()                       \
                                    .Arg<F32>()                                   \
                                    .Arg<F32>()                                   \
                                    .Ret<F32>()                                   \
                                    .Attr<int64_t>("stride")                      \
                                    .Attr<int64_t>("pad_top")                     \
                                    .Attr<int64_t>("pad_left"));

CONV_HANDLER(OnednnConvForward, Forward)
CONV_HANDLER(OnednnConvInputGrad, InputGrad)
CONV_HANDLER(OnednnConvKernelGrad, KernelGrad)

extern "C" void OnednnSetThreads(int threads) { onednn_ops::g_threads = threads; }

// The implementation oneDNN picked for `op` (0 forward, 1 input grad, 2 kernel grad).
extern "C" const char* OnednnImplementation(int op, int64_t n, int64_t h, int64_t w, int64_t c,
                                            int64_t k, int64_t f, int64_t stride) {
  static thread_local std::string name;
  int64_t oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
  int64_t pad_top = std::max<int64_t>((oh - 1) * stride + k - h, 0) / 2;
  int64_t pad_left = std::max<int64_t>((ow - 1) * stride + k - w, 0) / 2;
  Shape s{n, h, w, c, k, k, f, oh, ow, stride, pad_top, pad_left};
  auto pd = Cached(static_cast<Op>(op), s).primitive.get_primitive_desc();
  const char* info = nullptr;
  dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &info);
  name = info ? info : "";
  return name.c_str();
}
