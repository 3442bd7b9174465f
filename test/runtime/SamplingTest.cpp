//===- SamplingTest.cpp - v4rt_sample: greedy, temperature, top-p ---------===//
#include "v4rt/v4rt.h"

#include <gtest/gtest.h>

#include <vector>

namespace {

TEST(Sampling, GreedyTakesTheLowestIdOnTies) {
  std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f};
  v4rt_sampling_t s;
  v4rt_sampling_initialize(&s);
  EXPECT_EQ(s.temperature, 0.0f);
  uint64_t state = 1;
  EXPECT_EQ(v4rt_sample(logits.data(), 4, &s, &state), 1);
  EXPECT_EQ(v4rt_sample(logits.data(), 4, nullptr, nullptr), 1);
}

TEST(Sampling, TopPCutKeepsOnlyTheNucleus) {
  // exp(0) : exp(-10) ... the first token holds > 99.9% of the mass.
  std::vector<float> logits = {0.0f, -10.0f, -10.0f, -10.0f};
  v4rt_sampling_t s{1.0f, 0.5f, 7};
  uint64_t state = s.seed;
  for (int i = 0; i < 200; ++i)
    EXPECT_EQ(v4rt_sample(logits.data(), 4, &s, &state), 0);
}

TEST(Sampling, TemperatureSamplesFollowTheDistribution) {
  // Two equal logits: about half each; seeded, so reproducible.
  std::vector<float> logits = {1.0f, 1.0f, -50.0f};
  v4rt_sampling_t s{1.0f, 1.0f, 42};
  uint64_t a = s.seed, b = s.seed;
  int zeros = 0;
  for (int i = 0; i < 2000; ++i) {
    int64_t x = v4rt_sample(logits.data(), 3, &s, &a);
    EXPECT_EQ(x, v4rt_sample(logits.data(), 3, &s, &b)) << "same seed";
    EXPECT_NE(x, 2);
    zeros += x == 0;
  }
  EXPECT_GT(zeros, 850);
  EXPECT_LT(zeros, 1150);
}

TEST(Sampling, BadArguments) {
  EXPECT_EQ(v4rt_sample(nullptr, 4, nullptr, nullptr), -1);
  float one = 1.0f;
  EXPECT_EQ(v4rt_sample(&one, 0, nullptr, nullptr), -1);
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
