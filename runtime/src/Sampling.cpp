//===- Sampling.cpp - v4rt_sample: greedy, temperature and nucleus --------===//
#include "v4rt/v4rt.h"

#include "runtime/src/ApiStatus.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

namespace {

/// The sampled token of v4rt_sample's valid arguments.
int64_t sample(const float *logits, int64_t vocab,
               const v4rt_sampling_t *sampling, uint64_t *state) {
  int64_t best = 0;
  for (int64_t i = 1; i < vocab; ++i)
    if (logits[i] > logits[best])
      best = i;
  if (!sampling || sampling->temperature == 0.0f)
    return best;
  // Softmax at the temperature, nucleus cut at top_p, then one draw.
  std::vector<std::pair<float, int64_t>> p(vocab);
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    double e = std::exp((logits[i] - logits[best]) / sampling->temperature);
    p[i] = {static_cast<float>(e), i};
    sum += e;
  }
  std::sort(p.begin(), p.end(), [](auto &x, auto &y) {
    return x.first > y.first || (x.first == y.first && x.second < y.second);
  });
  double keep = 0, cut = sampling->top_p * sum;
  size_t n = 0;
  while (n < p.size() && (n == 0 || keep < cut))
    keep += p[n++].first;
  // splitmix64
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  double u = static_cast<double>(z >> 11) * 0x1.0p-53 * keep;
  for (size_t i = 0; i < n; ++i) {
    u -= p[i].first;
    if (u <= 0)
      return p[i].second;
  }
  return p[n - 1].second;
}

} // namespace

extern "C" {

void v4rt_sampling_initialize(v4rt_sampling_t *sampling) {
  if (sampling)
    *sampling = v4rt_sampling_t{0.0f, 1.0f, 0};
}

v4rt_status_t v4rt_sample(const float *logits, int64_t vocab,
                          const v4rt_sampling_t *sampling, uint64_t *state,
                          int64_t *out_token) {
  using v4::rt::makeStatus;
  if (!logits || !out_token || vocab < 1)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_sample: logits and out_token must not be NULL "
                      "and vocab (" +
                          std::to_string(vocab) + ") must be >= 1 [ARG]");
  if (sampling) {
    float t = sampling->temperature, p = sampling->top_p;
    if (!std::isfinite(t) || t < 0.0f)
      return makeStatus(V4RT_INVALID_ARGUMENT,
                        "v4rt_sample: temperature " + std::to_string(t) +
                            " is not a finite number >= 0 [ARG]");
    if (!(p > 0.0f && p <= 1.0f)) // NaN fails too
      return makeStatus(V4RT_INVALID_ARGUMENT, "v4rt_sample: top_p " +
                                                   std::to_string(p) +
                                                   " is outside (0, 1] [ARG]");
    if (t > 0.0f && !state)
      return makeStatus(V4RT_INVALID_ARGUMENT,
                        "v4rt_sample: temperature > 0 needs the RNG state "
                        "[ARG]");
  }
  for (int64_t i = 0; i < vocab; ++i)
    if (!std::isfinite(logits[i]))
      return makeStatus(V4RT_INVALID_ARGUMENT,
                        "v4rt_sample: logits[" + std::to_string(i) + "] is " +
                            (std::isnan(logits[i]) ? "NaN" : "Inf") +
                            ": no token can be sampled; load the model with "
                            "check_weights (v4-run --check-weights) [VAL-2]");
  *out_token = sample(logits, vocab, sampling, state);
  return nullptr;
}

} // extern "C"
