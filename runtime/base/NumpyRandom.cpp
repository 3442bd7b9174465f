//===- NumpyRandom.cpp - numpy's default_rng, bit for bit -----------------===//
#include "runtime/base/NumpyRandom.h"

#include <limits>

namespace v4::numpy {

namespace {

__extension__ typedef unsigned __int128 U128;

// SeedSequence's hash constants (numpy/random/bit_generator.pyx).
constexpr uint32_t kInitA = 0x43b0d7e5, kMultA = 0x931e8875;
constexpr uint32_t kInitB = 0x8b51f9dd, kMultB = 0x58f38ded;
constexpr uint32_t kMixMultL = 0xca01f9dd, kMixMultR = 0x4973f715;
constexpr unsigned kXShift = 16; // half the bits of a word

/// One hash step; `hashConst` advances with every call.
uint32_t hashMix(uint32_t value, uint32_t &hashConst) {
  value ^= hashConst;
  hashConst *= kMultA;
  value *= hashConst;
  return value ^ (value >> kXShift);
}

uint32_t mix(uint32_t x, uint32_t y) {
  uint32_t r = kMixMultL * x - kMixMultR * y;
  return r ^ (r >> kXShift);
}

// PCG64's default multiplier, 2549297995355413924 * 2^64 +
// 4865540595714422341.
constexpr U128 kPcgMultiplier =
    (U128(0x2360ED051FC65DA4ull) << 64) | U128(0x4385DF649FCCF645ull);

U128 join(uint64_t hi, uint64_t lo) { return (U128(hi) << 64) | U128(lo); }

uint64_t rotr64(uint64_t v, unsigned r) {
  r &= 63;
  return r == 0 ? v : (v >> r) | (v << (64 - r));
}

/// Lemire's multiply-and-reject (no masking) for a range in [1, max(U) - 1]:
/// U is the draw (32 or 64 bits), W twice as wide.
template <typename U, typename W, typename Next> U lemire(U range, Next next) {
  const U excl = range + 1;
  W m = W(next()) * excl;
  U leftover = U(m);
  if (leftover < excl) {
    const U threshold = U(std::numeric_limits<U>::max() - range) % excl;
    while (leftover < threshold) {
      m = W(next()) * excl;
      leftover = U(m);
    }
  }
  return U(m >> (8 * sizeof(U)));
}

} // namespace

std::vector<uint32_t> seedWords(uint64_t seed) {
  std::vector<uint32_t> words{uint32_t(seed)};
  if (seed >> 32)
    words.push_back(uint32_t(seed >> 32));
  return words;
}

SeedSequence::SeedSequence(const std::vector<uint32_t> &entropy) {
  uint32_t hashConst = kInitA;
  const size_t n = pool.size();
  for (size_t i = 0; i < n; ++i)
    pool[i] = hashMix(i < entropy.size() ? entropy[i] : 0u, hashConst);
  for (size_t src = 0; src < n; ++src)
    for (size_t dst = 0; dst < n; ++dst)
      if (src != dst)
        pool[dst] = mix(pool[dst], hashMix(pool[src], hashConst));
  for (size_t src = n; src < entropy.size(); ++src)
    for (size_t dst = 0; dst < n; ++dst)
      pool[dst] = mix(pool[dst], hashMix(entropy[src], hashConst));
}

std::vector<uint32_t> SeedSequence::generateState32(size_t n) const {
  std::vector<uint32_t> state(n);
  uint32_t hashConst = kInitB;
  for (size_t i = 0; i < n; ++i) {
    uint32_t v = pool[i % pool.size()] ^ hashConst;
    hashConst *= kMultB;
    v *= hashConst;
    state[i] = v ^ (v >> kXShift);
  }
  return state;
}

std::vector<uint64_t> SeedSequence::generateState64(size_t n) const {
  std::vector<uint32_t> words = generateState32(2 * n);
  std::vector<uint64_t> state(n);
  for (size_t i = 0; i < n; ++i)
    state[i] = uint64_t(words[2 * i]) | (uint64_t(words[2 * i + 1]) << 32);
  return state;
}

PCG64::PCG64(const SeedSequence &seq) {
  std::vector<uint64_t> s = seq.generateState64(4);
  // pcg_setseq_128_srandom_r(initstate = s0:s1, initseq = s2:s3).
  U128 inc = (join(s[2], s[3]) << 1) | 1u;
  incHi = uint64_t(inc >> 64);
  incLo = uint64_t(inc);
  stateHi = stateLo = 0;
  step();
  U128 st = join(stateHi, stateLo) + join(s[0], s[1]);
  stateHi = uint64_t(st >> 64);
  stateLo = uint64_t(st);
  step();
}

void PCG64::step() {
  U128 st = join(stateHi, stateLo) * kPcgMultiplier + join(incHi, incLo);
  stateHi = uint64_t(st >> 64);
  stateLo = uint64_t(st);
}

uint64_t PCG64::next64() {
  step(); // XSL-RR of the new state
  return rotr64(stateHi ^ stateLo, unsigned(stateHi >> 58));
}

uint32_t PCG64::next32() {
  if (hasHalf) {
    hasHalf = false;
    return half;
  }
  uint64_t v = next64();
  hasHalf = true;
  half = uint32_t(v >> 32);
  return uint32_t(v);
}

void boundedFill(PCG64 &rng, uint64_t off, uint64_t range, uint64_t *out,
                 size_t count) {
  for (size_t i = 0; i < count; ++i) {
    uint64_t x;
    if (range == 0)
      x = 0;
    else if (range == UINT32_MAX)
      x = rng.next32();
    else if (range < UINT32_MAX)
      x = lemire<uint32_t, uint64_t>(uint32_t(range),
                                     [&] { return rng.next32(); });
    else if (range == UINT64_MAX)
      x = rng.next64();
    else
      x = lemire<uint64_t, U128>(range, [&] { return rng.next64(); });
    out[i] = off + x;
  }
}

void integers(PCG64 &rng, int64_t low, int64_t high, int64_t *out,
              size_t count) {
  std::vector<uint64_t> raw(count);
  uint64_t range = uint64_t(high) - 1 - uint64_t(low);
  boundedFill(rng, uint64_t(low), range, raw.data(), count);
  for (size_t i = 0; i < count; ++i)
    out[i] = int64_t(raw[i]);
}

std::vector<int64_t> defaultRngIntegers(uint64_t seed, int64_t low,
                                        int64_t high, size_t count) {
  PCG64 rng{SeedSequence(seedWords(seed))};
  std::vector<int64_t> out(count);
  integers(rng, low, high, out.data(), count);
  return out;
}

int64_t engramMultiplierBound(int64_t compressedVocab) {
  int64_t b = compressedVocab >= 1 ? INT64_MAX / compressedVocab / 2 : 0;
  return b < 1 ? 1 : b;
}

uint64_t engramMultiplierSeed(uint64_t engramSeed, int64_t layer) {
  return engramSeed + 10007u * uint64_t(layer);
}

std::vector<int64_t> engramMultipliers(uint64_t seed, int64_t bound,
                                       size_t count) {
  std::vector<int64_t> m = defaultRngIntegers(seed, 0, bound, count);
  for (int64_t &v : m)
    v = 2 * v + 1;
  return m;
}

std::string describeEngramMultiplierRule(uint64_t seed, int64_t bound) {
  return "the Engram multiplier rule (V4-SPEC 8.4: m = 2r + 1, r = numpy "
         "default_rng(" +
         std::to_string(seed) + ").integers(0, " + std::to_string(bound) +
         ", dtype=int64))";
}

const char *engramPrimeRule() {
  return "the Engram prime rule (V4-SPEC 8.4: per layer, order and head the "
         "smallest unused prime >= engram_vocab_size)";
}

} // namespace v4::numpy
