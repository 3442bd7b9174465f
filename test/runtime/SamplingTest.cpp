//===- SamplingTest.cpp - v4rt_sample: greedy, temperature, top-p ---------===//
#include "v4rt/v4rt.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace {

/// v4rt_sample's token; a failed call fails the test.
int64_t sampled(const float *logits, int64_t vocab, const v4rt_sampling_t *s,
                uint64_t *state) {
  int64_t token = -1;
  v4rt_status_t st = v4rt_sample(logits, vocab, s, state, &token);
  EXPECT_EQ(st, nullptr) << v4rt_status_message(st);
  v4rt_status_free(st);
  return token;
}

/// The code of v4rt_sample's status (the status freed).
v4rt_status_code_t sampleCode(const float *logits, int64_t vocab,
                              const v4rt_sampling_t *s, uint64_t *state,
                              int64_t *token) {
  v4rt_status_t st = v4rt_sample(logits, vocab, s, state, token);
  v4rt_status_code_t code = v4rt_status_code(st);
  if (st) {
    EXPECT_NE(std::string(v4rt_status_message(st)).find("v4rt_sample"),
              std::string::npos);
  }
  v4rt_status_free(st);
  return code;
}

TEST(Sampling, GreedyTakesTheLowestIdOnTies) {
  std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f};
  v4rt_sampling_t s;
  v4rt_sampling_initialize(&s);
  EXPECT_EQ(s.temperature, 0.0f);
  uint64_t state = 1;
  EXPECT_EQ(sampled(logits.data(), 4, &s, &state), 1);
  EXPECT_EQ(sampled(logits.data(), 4, nullptr, nullptr), 1);
  EXPECT_EQ(sampled(logits.data(), 4, &s, nullptr), 1); // greedy: no state
}

TEST(Sampling, TopPCutKeepsOnlyTheNucleus) {
  // exp(0) : exp(-10) ... the first token holds > 99.9% of the mass.
  std::vector<float> logits = {0.0f, -10.0f, -10.0f, -10.0f};
  v4rt_sampling_t s{1.0f, 0.5f, 7};
  uint64_t state = s.seed;
  for (int i = 0; i < 200; ++i)
    EXPECT_EQ(sampled(logits.data(), 4, &s, &state), 0);
}

TEST(Sampling, TemperatureSamplesFollowTheDistribution) {
  // Two equal logits: about half each; seeded, so reproducible.
  std::vector<float> logits = {1.0f, 1.0f, -50.0f};
  v4rt_sampling_t s{1.0f, 1.0f, 42};
  uint64_t a = s.seed, b = s.seed;
  int zeros = 0;
  for (int i = 0; i < 2000; ++i) {
    int64_t x = sampled(logits.data(), 3, &s, &a);
    EXPECT_EQ(x, sampled(logits.data(), 3, &s, &b)) << "same seed";
    EXPECT_NE(x, 2);
    zeros += x == 0;
  }
  EXPECT_GT(zeros, 850);
  EXPECT_LT(zeros, 1150);
}

TEST(Sampling, BadArgumentsAreStatusesAndLeaveTheTokenAlone) {
  float logits[2] = {1.0f, 2.0f};
  uint64_t state = 1;
  int64_t token = 77;
  EXPECT_EQ(sampleCode(nullptr, 2, nullptr, nullptr, &token),
            V4RT_INVALID_ARGUMENT);
  EXPECT_EQ(sampleCode(logits, 0, nullptr, nullptr, &token),
            V4RT_INVALID_ARGUMENT);
  EXPECT_EQ(sampleCode(logits, -3, nullptr, nullptr, &token),
            V4RT_INVALID_ARGUMENT);
  EXPECT_EQ(sampleCode(logits, 2, nullptr, nullptr, nullptr),
            V4RT_INVALID_ARGUMENT);
  v4rt_sampling_t bad[] = {
      {-1.0f, 1.0f, 0},    // negative temperature
      {NAN, 1.0f, 0},      // not a number
      {INFINITY, 1.0f, 0}, // not finite
      {1.0f, 0.0f, 0},     // top_p outside (0, 1]
      {1.0f, 1.5f, 0},     //
      {1.0f, NAN, 0},      //
  };
  for (const v4rt_sampling_t &s : bad)
    EXPECT_EQ(sampleCode(logits, 2, &s, &state, &token), V4RT_INVALID_ARGUMENT)
        << "temperature " << s.temperature << " top_p " << s.top_p;
  // Sampling at a temperature draws from the caller's RNG state.
  v4rt_sampling_t hot{1.0f, 1.0f, 0};
  EXPECT_EQ(sampleCode(logits, 2, &hot, nullptr, &token),
            V4RT_INVALID_ARGUMENT);
  EXPECT_EQ(token, 77);
  EXPECT_EQ(sampleCode(logits, 2, &hot, &state, &token), V4RT_OK);
  EXPECT_TRUE(token == 0 || token == 1);
}

TEST(RuntimeApi, ErrorsAreStatusesNamingTheInput) {
  v4rt_model_t *model = nullptr;
  v4rt_model_options_t options;
  v4rt_model_options_initialize(&options);
  v4rt_status_t st =
      v4rt_model_load("/nonexistent/model.v4a", &options, &model);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(v4rt_status_code(st), V4RT_INVALID_ARGUMENT); // no checkpoint
  v4rt_status_free(st);
  options.checkpoint_path = "/nonexistent/ckpt";
  st = v4rt_model_load("/nonexistent/model.v4a", &options, &model);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(v4rt_status_code(st), V4RT_NOT_FOUND);
  EXPECT_NE(std::string(v4rt_status_message(st)).find("/nonexistent/model.v4a"),
            std::string::npos);
  EXPECT_EQ(model, nullptr);
  v4rt_status_free(st);
  // NULL handles are no-ops; a NULL status is OK.
  v4rt_model_release(nullptr);
  v4rt_session_release(nullptr);
  EXPECT_EQ(v4rt_status_code(nullptr), V4RT_OK);
  EXPECT_STREQ(v4rt_status_message(nullptr), "");
}

} // namespace

namespace {

/// The message of v4rt_sample's status (the status freed).
std::string sampleMessage(const float *logits, int64_t vocab,
                          const v4rt_sampling_t *s, uint64_t *state) {
  int64_t token = -1;
  v4rt_status_t st = v4rt_sample(logits, vocab, s, state, &token);
  std::string m = v4rt_status_message(st);
  v4rt_status_free(st);
  return m;
}

// Issue 16 item 3: NaN parameters are refused by name at every temperature,
// and a NaN or Inf logit is an error, never a sampled token.
TEST(Sampling, NaNParametersAreRefusedByName) {
  std::vector<float> logits = {0.5f, 2.0f};
  uint64_t state = 1;
  v4rt_sampling_t s;
  v4rt_sampling_initialize(&s);
  s.top_p = NAN; // greedy, but still a bad argument
  EXPECT_NE(sampleMessage(logits.data(), 2, &s, &state).find("top_p"),
            std::string::npos);
  s.top_p = 1.0f;
  for (float t : {NAN, INFINITY, -INFINITY, -0.5f}) {
    s.temperature = t;
    std::string m = sampleMessage(logits.data(), 2, &s, &state);
    EXPECT_NE(m.find("temperature"), std::string::npos) << t;
    EXPECT_NE(m.find("[ARG]"), std::string::npos) << m;
  }
}

TEST(Sampling, NonFiniteLogitsAreAnError) {
  uint64_t state = 1;
  v4rt_sampling_t hot;
  v4rt_sampling_initialize(&hot);
  hot.temperature = 1.0f;
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    std::vector<float> logits = {0.5f, 2.0f, bad, 1.0f};
    for (const v4rt_sampling_t *s :
         {(const v4rt_sampling_t *)nullptr, (const v4rt_sampling_t *)&hot}) {
      int64_t token = -1;
      EXPECT_EQ(sampleCode(logits.data(), 4, s, &state, &token),
                V4RT_INVALID_ARGUMENT);
      EXPECT_EQ(token, -1);
      std::string m = sampleMessage(logits.data(), 4, s, &state);
      EXPECT_NE(m.find("logits[2]"), std::string::npos) << m;
      EXPECT_NE(m.find("[VAL-2]"), std::string::npos) << m;
    }
  }
}

} // namespace
