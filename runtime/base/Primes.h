//===- Primes.h - 64-bit primality ------------------------------*- C++ -*-===//
//
// The one primality test of the project: deterministic Miller-Rabin for
// every 64-bit integer (the first 12 primes as bases suffice below 2^64).
// Used by the Engram prime search of the frontend (V4-SPEC 8.4) and the
// verifier of v4.engram ops; microseconds per test, so a search over an
// in-range config takes no time (trial division took days).
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_BASE_PRIMES_H
#define V4_RUNTIME_BASE_PRIMES_H

#include <cstdint>

namespace v4 {

namespace detail {
/// (a * b) mod m without overflow.
inline uint64_t mulMod(uint64_t a, uint64_t b, uint64_t m) {
  return static_cast<uint64_t>(static_cast<unsigned __int128>(a) * b % m);
}

inline uint64_t powMod(uint64_t a, uint64_t e, uint64_t m) {
  uint64_t r = 1;
  a %= m;
  for (; e; e >>= 1, a = mulMod(a, a, m))
    if (e & 1)
      r = mulMod(r, a, m);
  return r;
}
} // namespace detail

/// Whether `value` is prime (false below 2).
inline bool isPrime(int64_t value) {
  if (value < 2)
    return false;
  uint64_t n = static_cast<uint64_t>(value);
  for (uint64_t p : {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37})
    if (n % p == 0)
      return n == p;
  uint64_t d = n - 1;
  int s = 0;
  for (; (d & 1) == 0; d >>= 1)
    ++s;
  for (uint64_t a : {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37}) {
    uint64_t x = detail::powMod(a, d, n);
    if (x == 1 || x == n - 1)
      continue;
    bool composite = true;
    for (int r = 1; r < s && composite; ++r) {
      x = detail::mulMod(x, x, n);
      composite = x != n - 1;
    }
    if (composite)
      return false;
  }
  return true;
}

} // namespace v4

#endif // V4_RUNTIME_BASE_PRIMES_H
