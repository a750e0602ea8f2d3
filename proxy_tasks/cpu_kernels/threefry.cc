// JAX's Threefry-2x32 hash as an XLA FFI handler for the CPU. JAX lowers it there to a loop of
// integer HLO for every call, which XLA compiles anew for each shape: the random initializers of a
// detector's parameters were about 1,600 of its init's 1,776 kernels. Integer arithmetic, so the
// bits are JAX's by construction (Salmon et al. 2011, 20 rounds; JAX's key schedule).
#include <cstdint>

#include "common.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using U32 = ffi::Buffer<ffi::U32>;
using U32Out = ffi::ResultBuffer<ffi::U32>;

inline uint32_t RotateLeft(uint32_t v, int r) { return (v << r) | (v >> (32 - r)); }

// Four rounds rotating by R0..R3, then the key injection number `i`.
template <int R0, int R1, int R2, int R3>
inline void Rounds(uint32_t& x0, uint32_t& x1, uint32_t k0, uint32_t k1, uint32_t i) {
  for (int r : {R0, R1, R2, R3}) {
    x0 += x1;
    x1 = RotateLeft(x1, r) ^ x0;
  }
  x0 += k0;
  x1 += k1 + i;
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
void Hash(int64_t n, const uint32_t* __restrict key0, const uint32_t* __restrict key1,
          const uint32_t* __restrict count0, const uint32_t* __restrict count1,
          uint32_t* __restrict out0, uint32_t* __restrict out1) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t k0 = key0[i], k1 = key1[i], k2 = k0 ^ k1 ^ 0x1BD11BDAu;
    uint32_t x0 = count0[i] + k0, x1 = count1[i] + k1;
    Rounds<13, 15, 26, 6>(x0, x1, k1, k2, 1);
    Rounds<17, 29, 16, 24>(x0, x1, k2, k0, 2);
    Rounds<13, 15, 26, 6>(x0, x1, k0, k1, 3);
    Rounds<17, 29, 16, 24>(x0, x1, k1, k2, 4);
    Rounds<13, 15, 26, 6>(x0, x1, k2, k0, 5);
    out0[i] = x0;
    out1[i] = x1;
  }
}

// The key halves and counts come broadcast to the outputs' shape.
ffi::Error Threefry(U32 key0, U32 key1, U32 count0, U32 count1, U32Out out0, U32Out out1) {
  return onednn_ops::Guarded("threefry2x32", [&] {
    Hash(out0->element_count(), key0.typed_data(), key1.typed_data(), count0.typed_data(),
         count1.typed_data(), out0->typed_data(), out1->typed_data());
    return ffi::Error::Success();
  });
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(Threefry2x32, Threefry,
                              ffi::Ffi::Bind()
                                  .Arg<U32>()  // key0
                                  .Arg<U32>()  // key1
                                  .Arg<U32>()  // count0
                                  .Arg<U32>()  // count1
                                  .Ret<U32>()
                                  .Ret<U32>());
