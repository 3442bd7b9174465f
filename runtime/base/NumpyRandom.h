//===- NumpyRandom.h - numpy's default_rng, bit for bit ---------*- C++ -*-===//
//
// A reproduction of what numpy computes for
//
//   np.random.default_rng(seed).integers(low, high, size=n, dtype=np.int64)
//
// so that the Engram hash multipliers of V4-SPEC 8.4 (drawn by the model's
// authors with numpy and not stored in DeepSeek-V4.1 checkpoints) can be
// computed by the compiler and the runtime alike. Written from numpy's
// documented algorithms (numpy/random: SeedSequence in bit_generator.pyx,
// PCG64 in src/pcg64, bounded integers in src/distributions):
//
//  * SeedSequence: the seed, a non-negative integer of any size, as 32-bit
//    words (least significant first; 0 is one word), hash-mixed into a pool
//    of 4 words; generate_state(n) hashes the pool, cycled, into n words.
//  * PCG64: a 128-bit LCG (numpy's default multiplier) with the XSL-RR
//    output; default_rng seeds it with generate_state(4, uint64) = s0..s3 as
//    initstate = s0:s1 and initseq = s2:s3 (high:low). A 32-bit draw uses
//    the low half of a 64-bit output and keeps the high half for the next.
//  * integers(low, high) with dtype int64 (high exclusive): the range
//    r = high - 1 - low; r = 0 draws nothing; r < 2^32 - 1 uses Lemire's
//    multiply-and-reject on 32-bit draws; r = 2^32 - 1 one 32-bit draw;
//    r = 2^64 - 1 one 64-bit draw; otherwise Lemire on 64-bit draws.
//
// Plain C++17, no exceptions, no MLIR/LLVM (the runtime and the compiler
// share it). Checked bit for bit against values numpy produced
// (test/runtime/NumpyRandomTest.cpp, test/runtime/Inputs/
// numpy-pcg64-golden.txt, written by scripts/dev/gen-numpy-pcg64-golden.py).
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_BASE_NUMPYRANDOM_H
#define V4_RUNTIME_BASE_NUMPYRANDOM_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace v4::numpy {

/// The 32-bit words numpy makes of a non-negative integer seed.
std::vector<uint32_t> seedWords(uint64_t seed);

/// numpy.random.SeedSequence(entropy) without spawn key, pool size 4.
class SeedSequence {
public:
  /// `entropy`: the seed's 32-bit words, least significant first (at least
  /// one; seedWords makes them).
  explicit SeedSequence(const std::vector<uint32_t> &entropy);
  /// generate_state(n, uint32).
  std::vector<uint32_t> generateState32(size_t n) const;
  /// generate_state(n, uint64): pairs of 32-bit words, low word first.
  std::vector<uint64_t> generateState64(size_t n) const;

private:
  std::array<uint32_t, 4> pool{};
};

/// numpy.random.PCG64.
class PCG64 {
public:
  /// Seeded as PCG64(SeedSequence(entropy)).
  explicit PCG64(const SeedSequence &seq);
  /// The raw 64-bit output (random_raw, next_uint64).
  uint64_t next64();
  /// next_uint32: the halves of one 64-bit output, low half first.
  uint32_t next32();

private:
  uint64_t stateHi = 0, stateLo = 0, incHi = 0, incLo = 0;
  bool hasHalf = false;
  uint32_t half = 0;
  void step();
};

/// Generator.integers(low, high, size=out.size(), dtype=np.int64) on
/// `rng`: `count` values in [low, high). Requires low < high.
void integers(PCG64 &rng, int64_t low, int64_t high, int64_t *out,
              size_t count);
/// numpy's random_bounded_uint64_fill without masking: `count` values
/// off + x, x uniform in the CLOSED range [0, range] (wrapping modulo 2^64).
/// integers(low, high) is boundedFill(off = low, range = high - 1 - low).
void boundedFill(PCG64 &rng, uint64_t off, uint64_t range, uint64_t *out,
                 size_t count);

/// np.random.default_rng(seed).integers(low, high, size=count,
/// dtype=np.int64).
std::vector<int64_t> defaultRngIntegers(uint64_t seed, int64_t low,
                                        int64_t high, size_t count);

//===----------------------------------------------------------------------===//
// The Engram hash multipliers (V4-SPEC 8.4)
//===----------------------------------------------------------------------===//

/// B = max(1, floor(floor((2^63 - 1) / V_c) / 2)) for compressedVocab V_c >= 1.
int64_t engramMultiplierBound(int64_t compressedVocab);
/// The default_rng seed of layer `layer`: engram_seed + 10007 * layer
/// (modulo 2^64; the config keeps engram_seed <= 2^63 - 1 and layer small,
/// so it never wraps in practice).
uint64_t engramMultiplierSeed(uint64_t engramSeed, int64_t layer);
/// m_k = 2 r_k + 1, r = default_rng(seed).integers(0, bound, size=count,
/// dtype=int64).
std::vector<int64_t> engramMultipliers(uint64_t seed, int64_t bound,
                                       size_t count);
/// The multiplier rule with its seed and bound, as messages name it.
std::string describeEngramMultiplierRule(uint64_t seed, int64_t bound);
/// The prime rule, as messages name it.
const char *engramPrimeRule();

} // namespace v4::numpy

#endif // V4_RUNTIME_BASE_NUMPYRANDOM_H
