//===- ExpandExpFTest.cpp - v4-cpu-expand-expf against the host's expf ----===//
//
// The CPU kernel phase writes f32 math.exp as glibc's expf arithmetic
// (lowering/Target/CPU/ExpandExpF.cpp). A kernel of one scalar and one
// 16-lane exp loop, compiled by the real pipeline at x86-64-v3, must give
// the host's expf (the one the reference calls) bit for bit on an
// evenly spread sample of every f32 bit pattern (NaNs, infinities,
// subnormals included) and on the neighbourhoods of glibc's special-case
// thresholds.
//
//===----------------------------------------------------------------------===//
#include "test/lib/CPUKernelHarness.h"

#include "runtime/base/HostISA.h"

#include <cstdint>
#include <cstring>

namespace {

using namespace v4test;

uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float fromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

constexpr const char *kExpKernel = R"(
module attributes {v4.target = "cpu", v4.cpu = "x86-64-v3"} {
  func.func @kernel(%x: memref<?xf32>, %s: memref<?xf32>, %v: memref<?xf32>)
      attributes {v4.kernel} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c16 = arith.constant 16 : index
    %n = memref.dim %x, %c0 : memref<?xf32>
    scf.for %i = %c0 to %n step %c1 {
      %a = memref.load %x[%i] : memref<?xf32>
      %e = math.exp %a : f32
      memref.store %e, %s[%i] : memref<?xf32>
    }
    %nv = arith.divui %n, %c16 : index
    scf.for %j = %c0 to %nv step %c1 {
      %i = arith.muli %j, %c16 : index
      %a = vector.load %x[%i] : memref<?xf32>, vector<16xf32>
      %e = math.exp %a : vector<16xf32>
      vector.store %e, %v[%i] : memref<?xf32>, vector<16xf32>
    }
    return
  }
})";

TEST(ExpandExpF, BitExactWithTheHostExpf) {
  if (!::v4::hostSupportsISA("x86-64-v3"))
    GTEST_SKIP() << "the host is not x86-64-v3";
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compileModule(kExpKernel, 3));
  // Inline: the object names no expf to import.
  std::string code(k.code().begin(), k.code().end());
  EXPECT_EQ(code.find(std::string("expf") + '\0'), std::string::npos);
  std::vector<float> x;
  // Every 4099th bit pattern (4099 is odd, so every exponent and both
  // signs are visited with varied mantissas).
  for (uint64_t u = 0; u < (uint64_t(1) << 32); u += 4099)
    x.push_back(fromBits(uint32_t(u)));
  // glibc's thresholds (log 2^128, log 2^-150, log 2^-149, |x| top bits
  // 0x42a) and the values around them, the special values, and a dense
  // run over [-2, 2].
  for (float t : {0x1.62e42ep6f, -0x1.9fe368p6f, -0x1.9d1d9ep6f, 88.0f, -88.0f,
                  0x1p-126f, -0x1p-126f, 0x1p-149f, 0.0f, 1.0f})
    for (int d = -64; d <= 64; ++d)
      x.push_back(fromBits(uint32_t(int64_t(bitsOf(t)) + d)));
  for (float v : {std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity(),
                  std::numeric_limits<float>::quiet_NaN(), -0.0f,
                  std::numeric_limits<float>::max(),
                  std::numeric_limits<float>::lowest()})
    x.push_back(v);
  for (float v = -2.0f; v <= 2.0f; v += 0x1p-12f)
    x.push_back(v);
  x.resize((x.size() + 15) / 16 * 16, 1.0f);
  std::vector<float> s(x.size()), v(x.size());
  int64_t n = int64_t(x.size());
  auto dx = describe<1>(x.data(), {n});
  auto ds = describe<1>(s.data(), {n});
  auto dv = describe<1>(v.data(), {n});
  k.run({&dx, &ds, &dv});
  int64_t mismatches = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    float want = std::exp(x[i]);
    for (float got : {s[i], v[i]}) {
      bool same =
          (std::isnan(want) && std::isnan(got)) || bitsOf(want) == bitsOf(got);
      if (!same && mismatches++ < 8)
        ADD_FAILURE() << "exp(" << x[i] << " = 0x" << std::hex << bitsOf(x[i])
                      << "): expf 0x" << bitsOf(want) << ", kernel 0x"
                      << bitsOf(got);
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << 2 * x.size();
}

} // namespace
