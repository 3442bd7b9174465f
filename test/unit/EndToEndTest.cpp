//===- EndToEndTest.cpp - compiled CPU model against the C++ reference ----===//
//
// The whole path of issue 4: a config is imported, compiled by v4c's
// pipeline into a CPU artifact, loaded by the runtime through the public C
// API with a generated checkpoint, and run as a prefill followed by decode
// steps. Every position's logits are compared with the plain C++ reference
// (reference/) on the same weights and the same token ids.
//
//===----------------------------------------------------------------------===//
#include "frontend/Checkpoint.h"
#include "frontend/ModelImporter.h"
#include "lowering/Pipelines.h"
#include "reference/ConfigAdapter.h"
#include "reference/Model.h"
#include "runtime/artifact/Artifact.h"
#include "runtime/base/Bytes.h"
#include "runtime/safetensors/Safetensors.h"
#include "runtime/src/SyntheticWeights.h"
#include "v4rt/v4rt.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>

#ifndef V4_SOURCE_DIR
#error "V4_SOURCE_DIR must point at the repository root"
#endif

namespace {

struct Case {
  const char *config;
  int64_t batch, maxContext, prompt, decodeSteps, chunk;
};
/// Readable parameter values in gtest output.
void PrintTo(const Case &c, std::ostream *os) {
  *os << c.config << " batch " << c.batch << " context " << c.maxContext
      << " prompt " << c.prompt << " decode " << c.decodeSteps << " chunk "
      << c.chunk;
}

/// The model's info through the C API (a failure fails the test).
v4rt_model_info_t modelInfo(const v4rt_model_t *model) {
  v4rt_model_info_t info{};
  info.struct_size = sizeof info;
  v4rt_status_t st = v4rt_model_info(model, &info);
  EXPECT_EQ(st, nullptr) << v4rt_status_message(st);
  v4rt_status_free(st);
  return info;
}

/// The position of row `b`, or the status message's code negated.
int64_t sequencePosition(const v4rt_session_t *session, int64_t b) {
  int64_t position = 0;
  v4rt_status_t st = v4rt_session_position(session, b, &position);
  if (st)
    position = -int64_t(v4rt_status_code(st));
  v4rt_status_free(st);
  return position;
}

/// Normwise relative error ||a - b|| / ||b|| over one [vocab] row.
double relError(const float *a, const float *b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    double d = double(a[i]) - double(b[i]);
    num += d * d;
    den += double(b[i]) * double(b[i]);
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

/// Imports `configPath` at the bounds, generates a checkpoint (seed 1234,
/// with the derived Engram tensors `copies`) and compiles a CPU artifact
/// with v4c's pipeline (by default with every position's logits, which the
/// reference comparison needs).
void compile(const std::string &configPath, int64_t batch, int64_t maxContext,
             const std::string &ckpt, const std::string &artifact,
             bool allLogits = true,
             v4::DerivedCopies copies = v4::DerivedCopies::Multipliers) {
  mlir::MLIRContext ctx;
  v4::ImportOptions opts;
  opts.batch = batch;
  opts.maxContext = maxContext;
  opts.allLogits = allLogits;
  auto module = v4::loadModel(ctx, configPath, opts);
  ASSERT_TRUE(module);
  ASSERT_FALSE(static_cast<bool>(
      v4::generateCheckpoint(*module, 1234, ckpt, 0, copies)));
  std::string bytes;
  ASSERT_TRUE(succeeded(mlir::v4::compileToArtifact(
      *module, mlir::v4::V4PipelineOptions(), bytes)));
  std::error_code ec;
  llvm::raw_fd_ostream os(artifact, ec);
  ASSERT_FALSE(ec);
  os << bytes;
}

class EndToEnd : public ::testing::TestWithParam<Case> {};

TEST_P(EndToEnd, CompiledLogitsMatchReference) {
  const Case &c = GetParam();
  std::string configPath = std::string(V4_SOURCE_DIR) + "/models/" + c.config;
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("v4-e2e", dir));
  std::string ckpt = (dir + "/checkpoint").str();
  std::string artifact = (dir + "/model.v4a").str();

  // Compile: import -> checkpoint -> artifact.
  ASSERT_NO_FATAL_FAILURE(
      compile(configPath, c.batch, c.maxContext, ckpt, artifact));

  // The runtime, through the C API.
  v4rt_model_options_t options;
  v4rt_model_options_initialize(&options);
  options.checkpoint_path = ckpt.c_str();
  v4rt_model_t *model = nullptr;
  v4rt_status_t st = v4rt_model_load(artifact.c_str(), &options, &model);
  ASSERT_EQ(st, nullptr) << v4rt_status_message(st);
  v4rt_session_t *session = nullptr;
  st = v4rt_session_create(model, &session);
  ASSERT_EQ(st, nullptr) << v4rt_status_message(st);
  v4rt_model_info_t info = modelInfo(model);
  const int64_t B = c.batch, V = info.vocab_size;

  // The reference on the same checkpoint.
  auto config = v4::loadModelConfig(configPath);
  ASSERT_TRUE(static_cast<bool>(config));
  auto reader = v4::safetensors::Reader::open(ckpt);
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  std::string err;
  auto ref = v4::ref::Model::load(v4::ref::configFrom(*config), *reader,
                                  v4::ref::Options(), &err);
  ASSERT_TRUE(ref) << err;
  auto refState = ref->newState(B);

  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> token(0, V - 1);
  const int64_t total = c.prompt + c.decodeSteps;
  std::vector<std::vector<int64_t>> seq(B, std::vector<int64_t>(total + 1));
  for (auto &row : seq)
    for (auto &t : row)
      t = token(rng);

  std::vector<double> errors;
  std::vector<float> compiledLogits; // row 0, every position, for replay
  double worst = 0, sum = 0;
  int64_t rows = 0, argmaxAgree = 0;
  int64_t pos = 0;
  while (pos < total) {
    int64_t n = pos < c.prompt ? std::min(c.chunk, c.prompt - pos) : 1;
    std::vector<int64_t> ids(B * n), next(B * n);
    std::vector<std::vector<int64_t>> rIds(B), rNext(B);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < n; ++t) {
        ids[b * n + t] = seq[b][pos + t];
        next[b * n + t] = seq[b][pos + t + 1];
        rIds[b].push_back(seq[b][pos + t]);
        rNext[b].push_back(seq[b][pos + t + 1]);
      }
    std::vector<float> logits(B * n * V), mtp(B * n * V);
    st = v4rt_session_run(session, ids.data(), next.data(), n, logits.data(),
                          logits.size(), mtp.data(), mtp.size());
    ASSERT_EQ(st, nullptr) << v4rt_status_message(st);
    auto want = ref->forward(refState, rIds, rNext, pos);
    compiledLogits.insert(compiledLogits.end(), logits.begin(),
                          logits.begin() + n * V);
    for (int64_t r = 0; r < B * n; ++r) {
      double e = relError(&logits[r * V], &want.logits[r * V], V);
      double em = relError(&mtp[r * V], &want.mtpLogits[r * V], V);
      worst = std::max({worst, e, em});
      sum += e;
      ++rows;
      auto am = [&](const float *x) { return std::max_element(x, x + V) - x; };
      argmaxAgree += am(&logits[r * V]) == am(&want.logits[r * V]);
      errors.push_back(e);
      errors.push_back(em);
    }
    pos += n;
  }
  std::printf("[ e2e ] %s: %lld positions x %lld sequences: max normwise "
              "relative error %.3g, mean %.3g, argmax agreement %lld/%lld\n",
              c.config, static_cast<long long>(total),
              static_cast<long long>(B), worst, sum / rows,
              static_cast<long long>(argmaxAgree),
              static_cast<long long>(rows));

  // Tolerance (docs/ARCHITECTURE.md): the reference accumulates in fp32 in
  // the kernels' order (reference/Ops.h, Acc), and the compiled model
  // then reproduces it bit for bit on this case (measured: max error 0, all
  // 256 logit rows, argmax 128/128). The bound of 1e-6 leaves room for
  // last-ulp differences of libm only: any real semantic difference, or a
  // single bf16/FP8 rounding flip, shows up as 1e-4 or more.
  size_t exact = std::count_if(errors.begin(), errors.end(),
                               [](double e) { return e <= 1e-6; });
  EXPECT_EQ(exact, errors.size())
      << "logit rows differ from the reference by more than 1e-6";
  EXPECT_LE(worst, 1e-6) << "largest normwise relative error";
  EXPECT_EQ(argmaxAgree, rows) << "argmax disagrees with the reference";
  std::printf("[ e2e ] %zu of %zu logit rows within 1e-6 of the reference\n",
              exact, errors.size());

  // Decode == prefill in the compiled model itself: one chunk of `total`
  // tokens gives bit-identical logits to the prefill chunks + decode steps.
  {
    v4rt_session_t *once = nullptr;
    ASSERT_EQ(v4rt_session_create(model, &once), nullptr);
    if (total <= info.max_chunk) {
      std::vector<int64_t> all(B * total);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < total; ++t)
          all[b * total + t] = seq[b][t];
      std::vector<float> l(B * total * V);
      ASSERT_EQ(v4rt_session_run(once, all.data(), nullptr, total, l.data(),
                                 l.size(), nullptr, 0),
                nullptr);
      EXPECT_EQ(std::memcmp(l.data(), compiledLogits.data(),
                            total * V * sizeof(float)),
                0)
          << "one-shot prefill differs from chunked prefill + decode";
    }
    v4rt_session_release(once);
  }

  // Identical across runs: a fresh session replays the same logits.
  v4rt_session_t *again = nullptr;
  ASSERT_EQ(v4rt_session_create(model, &again), nullptr);
  std::vector<int64_t> ids(B * c.chunk);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < c.chunk; ++t)
      ids[b * c.chunk + t] = seq[b][t];
  std::vector<float> l1(B * c.chunk * V), l2(B * c.chunk * V);
  ASSERT_EQ(v4rt_session_run(again, ids.data(), nullptr, c.chunk, l1.data(),
                             l1.size(), nullptr, 0),
            nullptr);
  ASSERT_EQ(v4rt_session_reset(again), nullptr);
  ASSERT_EQ(v4rt_session_run(again, ids.data(), nullptr, c.chunk, l2.data(),
                             l2.size(), nullptr, 0),
            nullptr);
  EXPECT_EQ(std::memcmp(l1.data(), l2.data(), l1.size() * sizeof(float)), 0);

  // Past the compiled context: a clear error, not a crash.
  std::vector<int64_t> one(B, 1);
  std::vector<float> lo(B * V);
  v4rt_status_t over = v4rt_session_run(session, one.data(), nullptr, 1,
                                        lo.data(), lo.size(), nullptr, 0);
  if (total == c.maxContext) {
    ASSERT_NE(over, nullptr);
    EXPECT_EQ(v4rt_status_code(over), V4RT_OUT_OF_RANGE);
    EXPECT_NE(std::string(v4rt_status_message(over)).find("maximum context"),
              std::string::npos);
  }
  v4rt_status_free(over);
  v4rt_session_release(again);
  v4rt_session_release(session);
  v4rt_model_release(model);
  llvm::sys::fs::remove_directories(dir);
}

// The runtime checks memory before it allocates (RT-6): the model needs its
// weights plus one session, each session its state, arena and I/O.
TEST(EndToEndMemory, RefusesWhatDoesNotFitBeforeAllocating) {
  std::string configPath =
      std::string(V4_SOURCE_DIR) + "/models/tiny-v4-t1.config.json";
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("v4-e2e-mem", dir));
  std::string ckpt = (dir + "/checkpoint").str();
  std::string artifact = (dir + "/model.v4a").str();
  ASSERT_NO_FATAL_FAILURE(compile(configPath, 2, 64, ckpt, artifact));
  auto a = v4::artifact::Artifact::loadFile(artifact);
  ASSERT_TRUE(a) << a.status().message();
  v4::artifact::Artifact::MemoryTotals need = a->memoryTotals();
  ASSERT_GT(need.weights, 0u);
  ASSERT_GT(need.session(), 0u);

  auto load = [&](uint64_t limit, v4rt_model_t **model) {
    v4rt_model_options_t options;
    v4rt_model_options_initialize(&options);
    options.checkpoint_path = ckpt.c_str();
    options.memory_limit = limit;
    return v4rt_model_load(artifact.c_str(), &options, model);
  };
  v4rt_model_t *model = nullptr;
  // One byte short of weights + one session.
  v4rt_status_t st = load(need.weights + need.session() - 1, &model);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(model, nullptr);
  EXPECT_EQ(v4rt_status_code(st), V4RT_RESOURCE_EXHAUSTED);
  std::string msg = v4rt_status_message(st);
  std::printf("[ e2e ] %s\n", msg.c_str());
  uint64_t total = need.weights + need.session();
  EXPECT_NE(msg.find("the model needs " + v4::formatBytes(total) + " (" +
                     std::to_string(total) +
                     " B) of cpu memory for its weights and one session, but "
                     "only " +
                     v4::formatBytes(total - 1) + " (" +
                     std::to_string(total - 1) + " B) of the memory limit"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("at batch 2 and max context 64"), std::string::npos);
  EXPECT_NE(msg.find("Recompile with a smaller --max-context, --max-chunk or "
                     "--batch"),
            std::string::npos);
  EXPECT_NE(msg.find("[RT-6]"), std::string::npos);
  v4rt_status_free(st);
  // Less than the weights.
  st = load(need.weights / 2, &model);
  ASSERT_NE(st, nullptr);
  EXPECT_NE(
      std::string(v4rt_status_message(st)).find("The weights alone do not fit"),
      std::string::npos);
  v4rt_status_free(st);

  // Exactly one session fits: a second is refused until the first is gone.
  st = load(need.weights + need.session(), &model);
  ASSERT_EQ(st, nullptr) << v4rt_status_message(st);
  // Weights are served from the mapped checkpoint but for the per-expert
  // stacks, which are gathered into buffers of their own.
  v4rt_model_info_t info = modelInfo(model);
  EXPECT_GT(info.weights_mapped_bytes, 0);
  EXPECT_GT(info.weights_prepared_bytes, 0);
  EXPECT_EQ(uint64_t(info.weights_mapped_bytes + info.weights_prepared_bytes),
            need.weights);
  // The memory needs the info reports are what the limit is checked with.
  EXPECT_EQ(uint64_t(info.weights_bytes), need.weights);
  EXPECT_EQ(uint64_t(info.session_bytes), need.session());
  EXPECT_EQ(info.session_state_bytes + info.session_activation_bytes +
                info.session_io_bytes,
            info.session_bytes);
  EXPECT_GT(info.session_state_bytes, 0);
  std::printf("[ e2e ] T1 weights: %lld B mapped, %lld B prepared\n",
              (long long)info.weights_mapped_bytes,
              (long long)info.weights_prepared_bytes);
  v4rt_session_t *first = nullptr, *second = nullptr;
  ASSERT_EQ(v4rt_session_create(model, &first), nullptr);
  st = v4rt_session_create(model, &second);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(second, nullptr);
  EXPECT_EQ(v4rt_status_code(st), V4RT_RESOURCE_EXHAUSTED);
  EXPECT_NE(std::string(v4rt_status_message(st)).find("a session needs"),
            std::string::npos)
      << v4rt_status_message(st);
  v4rt_status_free(st);
  v4rt_session_release(first);
  ASSERT_EQ(v4rt_session_create(model, &second), nullptr);
  v4rt_session_release(second);
  v4rt_model_release(model);
  llvm::sys::fs::remove_directories(dir);
}

// The default logits (v4.last_token before the head) are the last row of
// every-position logits, bit for bit, in prefill chunks and decode steps.
TEST(EndToEndLogits, LastPositionIsTheLastRowOfAll) {
  std::string configPath =
      std::string(V4_SOURCE_DIR) + "/models/tiny-v4-t1.config.json";
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("v4-e2e-last", dir));
  std::string ckpt = (dir + "/checkpoint").str();
  std::string all = (dir + "/all.v4a").str(), last = (dir + "/last.v4a").str();
  ASSERT_NO_FATAL_FAILURE(compile(configPath, 2, 32, ckpt, all, true));
  ASSERT_NO_FATAL_FAILURE(compile(configPath, 2, 32, ckpt, last, false));
  v4rt_model_options_t options;
  v4rt_model_options_initialize(&options);
  options.checkpoint_path = ckpt.c_str();
  v4rt_model_t *mAll = nullptr, *mLast = nullptr;
  v4rt_status_t st = v4rt_model_load(all.c_str(), &options, &mAll);
  ASSERT_EQ(st, nullptr) << v4rt_status_message(st);
  st = v4rt_model_load(last.c_str(), &options, &mLast);
  ASSERT_EQ(st, nullptr) << v4rt_status_message(st);
  v4rt_model_info_t iAll = modelInfo(mAll), iLast = modelInfo(mLast);
  EXPECT_EQ(iAll.logits_positions, 0);
  EXPECT_EQ(iLast.logits_positions, 1);
  v4rt_session_t *sAll = nullptr, *sLast = nullptr;
  ASSERT_EQ(v4rt_session_create(mAll, &sAll), nullptr);
  ASSERT_EQ(v4rt_session_create(mLast, &sLast), nullptr);
  const int64_t B = 2, V = iAll.vocab_size;
  std::mt19937_64 rng(11);
  for (int64_t n : {7, 5, 1, 1, 3, 1}) {
    std::vector<int64_t> ids(B * n);
    for (auto &t : ids)
      t = int64_t(rng() % uint64_t(V));
    std::vector<float> la(B * n * V), ma(B * n * V), ll(B * V), ml(B * V);
    ASSERT_EQ(v4rt_session_run(sAll, ids.data(), nullptr, n, la.data(),
                               la.size(), ma.data(), ma.size()),
              nullptr);
    // Too small for every position, right for the last one.
    ASSERT_EQ(v4rt_session_run(sLast, ids.data(), nullptr, n, ll.data(),
                               ll.size(), ml.data(), ml.size()),
              nullptr);
    for (int64_t b = 0; b < B; ++b) {
      EXPECT_EQ(
          std::memcmp(&ll[b * V], &la[(b * n + n - 1) * V], V * sizeof(float)),
          0)
          << "chunk of " << n << ", sequence " << b;
      EXPECT_EQ(
          std::memcmp(&ml[b * V], &ma[(b * n + n - 1) * V], V * sizeof(float)),
          0)
          << "MTP, chunk of " << n << ", sequence " << b;
    }
  }
  v4rt_session_release(sAll);
  v4rt_session_release(sLast);
  v4rt_model_release(mAll);
  v4rt_model_release(mLast);
  llvm::sys::fs::remove_directories(dir);
}

// Outputs a call does not ask for (issue 8: a decode step reads each
// weight once): a call with no MTP logits buffer skips the launches only
// the MTP logits need (v4-mark-output-only-dispatches: the MTP block's
// query path, attention, MoE and head), while its KV path still advances
// its own state. A
// session that asks for the MTP logits only at its last call gets the bits
// of one that asked every time, every call's logits are the same bits, and
// its one-token calls run fewer launches.
TEST(EndToEndOutputs, CallsWithoutMtpLogitsSkipOnlyWhatOnlyTheyNeed) {
  std::string configPath =
      std::string(V4_SOURCE_DIR) + "/models/tiny-v4-t1.config.json";
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("v4-e2e-outputs", dir));
  std::string ckpt = (dir + "/checkpoint").str(), m = (dir + "/m.v4a").str();
  ASSERT_NO_FATAL_FAILURE(compile(configPath, 2, 32, ckpt, m, false));
  v4rt_model_options_t options;
  v4rt_model_options_initialize(&options);
  options.checkpoint_path = ckpt.c_str();
  v4rt_model_t *model = nullptr;
  v4rt_status_t st = v4rt_model_load(m.c_str(), &options, &model);
  ASSERT_EQ(st, nullptr) << v4rt_status_message(st);
  const int64_t B = 2, V = modelInfo(model).vocab_size;
  v4rt_session_t *always = nullptr, *once = nullptr;
  ASSERT_EQ(v4rt_session_create(model, &always), nullptr);
  ASSERT_EQ(v4rt_session_create(model, &once), nullptr);
  // One-token launches of each session, counted by the profile.
  auto launches = [&](v4rt_session_t *s) {
    std::vector<v4rt_profile_entry_t> e(256);
    size_t n = 0;
    EXPECT_EQ(v4rt_session_profile(s, e.data(), e.size(), &n), nullptr);
    int64_t calls = 0;
    for (size_t i = 0; i < std::min(n, e.size()); ++i)
      if (e[i].kind == V4RT_PROFILE_KERNEL && e[i].one_token)
        calls += e[i].calls;
    return calls;
  };
  ASSERT_EQ(v4rt_session_set_profiling(always, 1), nullptr);
  ASSERT_EQ(v4rt_session_set_profiling(once, 1), nullptr);
  std::mt19937_64 rng(5);
  const std::vector<int64_t> chunks = {9, 1, 1, 4, 1};
  for (size_t c = 0; c < chunks.size(); ++c) {
    int64_t n = chunks[c];
    std::vector<int64_t> ids(B * n);
    for (auto &t : ids)
      t = int64_t(rng() % uint64_t(V));
    bool last = c + 1 == chunks.size();
    std::vector<float> la(B * V), ma(B * V), lo(B * V), mo(B * V);
    ASSERT_EQ(v4rt_session_run(always, ids.data(), nullptr, n, la.data(),
                               la.size(), ma.data(), ma.size()),
              nullptr);
    ASSERT_EQ(v4rt_session_run(once, ids.data(), nullptr, n, lo.data(),
                               lo.size(), last ? mo.data() : nullptr,
                               last ? mo.size() : 0),
              nullptr);
    EXPECT_EQ(std::memcmp(la.data(), lo.data(), la.size() * sizeof(float)), 0)
        << "logits of call " << c;
    if (last) {
      EXPECT_EQ(std::memcmp(ma.data(), mo.data(), ma.size() * sizeof(float)), 0)
          << "MTP logits after calls without them";
    }
  }
  // Three one-token calls each; the last one of `once` ran everything.
  int64_t all = launches(always), fewer = launches(once);
  EXPECT_EQ(all % 3, 0);
  EXPECT_LT(fewer, all);
  EXPECT_GT(fewer, 2 * all / 3);
  v4rt_session_release(always);
  v4rt_session_release(once);
  v4rt_model_release(model);
  llvm::sys::fs::remove_directories(dir);
}

// The launch grid (issue 8): the hot kernels run their blocks on the CPU
// device's thread pool. The logits (main and MTP, every position) of a
// prefill chunk and decode steps are the same bits with 1 thread and with 3
// (V4RT_NUM_THREADS, read when the model is loaded), since every output
// element is computed by one block in a fixed order.
TEST(EndToEndThreads, LogitsAreIndependentOfTheThreadCount) {
  std::string configPath =
      std::string(V4_SOURCE_DIR) + "/models/tiny-v4-t1.config.json";
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("v4-e2e-threads", dir));
  std::string ckpt = (dir + "/checkpoint").str(), m = (dir + "/m.v4a").str();
  ASSERT_NO_FATAL_FAILURE(compile(configPath, 2, 64, ckpt, m));
  const int64_t B = 2, T = 21, steps = 6;
  auto runWith = [&](const char *threads, std::vector<float> &out) {
    const char *old = std::getenv("V4RT_NUM_THREADS");
    std::string saved = old ? old : "";
    setenv("V4RT_NUM_THREADS", threads, 1);
    v4rt_model_options_t options;
    v4rt_model_options_initialize(&options);
    options.checkpoint_path = ckpt.c_str();
    v4rt_model_t *model = nullptr;
    v4rt_status_t st = v4rt_model_load(m.c_str(), &options, &model);
    if (old)
      setenv("V4RT_NUM_THREADS", saved.c_str(), 1);
    else
      unsetenv("V4RT_NUM_THREADS");
    ASSERT_EQ(st, nullptr) << v4rt_status_message(st);
    const int64_t V = modelInfo(model).vocab_size;
    v4rt_session_t *s = nullptr;
    ASSERT_EQ(v4rt_session_create(model, &s), nullptr);
    std::mt19937_64 rng(11);
    auto step = [&](int64_t tokens) {
      std::vector<int64_t> ids(B * tokens);
      for (auto &t : ids)
        t = int64_t(rng() % uint64_t(V));
      std::vector<float> l(B * tokens * V), mtp(B * tokens * V);
      ASSERT_EQ(v4rt_session_run(s, ids.data(), nullptr, tokens, l.data(),
                                 l.size(), mtp.data(), mtp.size()),
                nullptr);
      out.insert(out.end(), l.begin(), l.end());
      out.insert(out.end(), mtp.begin(), mtp.end());
    };
    step(T);
    for (int64_t i = 0; i < steps; ++i)
      step(1);
    v4rt_session_release(s);
    v4rt_model_release(model);
  };
  std::vector<float> one, three;
  ASSERT_NO_FATAL_FAILURE(runWith("1", one));
  ASSERT_NO_FATAL_FAILURE(runWith("3", three));
  ASSERT_EQ(one.size(), three.size());
  ASSERT_FALSE(one.empty());
  EXPECT_EQ(std::memcmp(one.data(), three.data(), one.size() * sizeof(float)),
            0);
  llvm::sys::fs::remove_directories(dir);
}

// Continuous batching: four sequences start at different steps in the rows
// of one batch-4 session (v4rt_session_reset_sequence) while the others go
// on, each at its own position; every sequence's logits equal those of
// running it alone in a batch-1 model, bit for bit.
TEST(EndToEndBatch, SequencesStartedAtDifferentStepsMatchRunningAlone) {
  std::string configPath =
      std::string(V4_SOURCE_DIR) + "/models/tiny-v4-t1.config.json";
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("v4-e2e-batch", dir));
  std::string ckpt = (dir + "/checkpoint").str(),
              ckpt1 = (dir + "/checkpoint1").str();
  std::string m4 = (dir + "/b4.v4a").str(), m1 = (dir + "/b1.v4a").str();
  ASSERT_NO_FATAL_FAILURE(compile(configPath, 4, 32, ckpt, m4, false));
  ASSERT_NO_FATAL_FAILURE(compile(configPath, 1, 32, ckpt1, m1, false));
  v4rt_model_options_t options;
  v4rt_model_options_initialize(&options);
  options.checkpoint_path = ckpt.c_str(); // one set of weights for both
  v4rt_model_t *batched = nullptr, *alone = nullptr;
  v4rt_status_t st = v4rt_model_load(m4.c_str(), &options, &batched);
  ASSERT_EQ(st, nullptr) << v4rt_status_message(st);
  st = v4rt_model_load(m1.c_str(), &options, &alone);
  ASSERT_EQ(st, nullptr) << v4rt_status_message(st);
  v4rt_model_info_t info = modelInfo(batched);
  const int64_t V = info.vocab_size, B = 4, N = 12;
  const int64_t start[B] = {0, 3, 5, 9};
  std::mt19937_64 rng(5);
  std::vector<std::vector<int64_t>> stream(B, std::vector<int64_t>(N));
  for (auto &row : stream)
    for (auto &t : row)
      t = int64_t(rng() % uint64_t(V));

  // Each sequence alone, one token per step.
  std::vector<std::vector<float>> want(B);
  for (int64_t b = 0; b < B; ++b) {
    v4rt_session_t *s = nullptr;
    ASSERT_EQ(v4rt_session_create(alone, &s), nullptr);
    for (int64_t i = 0; i < N; ++i) {
      std::vector<float> l(V);
      ASSERT_EQ(v4rt_session_run(s, &stream[b][i], nullptr, 1, l.data(),
                                 l.size(), nullptr, 0),
                nullptr);
      want[b].insert(want[b].end(), l.begin(), l.end());
    }
    v4rt_session_release(s);
  }

  // Together: a row feeds other tokens before its sequence starts and after
  // it ends.
  v4rt_session_t *s = nullptr;
  ASSERT_EQ(v4rt_session_create(batched, &s), nullptr);
  int64_t compared = 0;
  for (int64_t step = 0; step < start[B - 1] + N; ++step) {
    std::vector<int64_t> ids(B);
    for (int64_t b = 0; b < B; ++b) {
      int64_t i = step - start[b];
      if (i == 0) {
        ASSERT_EQ(v4rt_session_reset_sequence(s, b), nullptr);
        EXPECT_EQ(sequencePosition(s, b), 0);
      }
      ids[b] = i >= 0 && i < N ? stream[b][i] : int64_t(rng() % uint64_t(V));
    }
    std::vector<float> l(B * V);
    st = v4rt_session_run(s, ids.data(), nullptr, 1, l.data(), l.size(),
                          nullptr, 0);
    ASSERT_EQ(st, nullptr) << v4rt_status_message(st);
    for (int64_t b = 0; b < B; ++b) {
      int64_t i = step - start[b];
      if (i < 0 || i >= N)
        continue;
      EXPECT_EQ(std::memcmp(&l[b * V], &want[b][i * V], V * sizeof(float)), 0)
          << "sequence " << b << ", token " << i;
      ++compared;
    }
  }
  EXPECT_EQ(compared, B * N);
  EXPECT_EQ(sequencePosition(s, 3), N);
  EXPECT_EQ(sequencePosition(s, 0), start[B - 1] + N);
  EXPECT_EQ(sequencePosition(s, 4), -int64_t(V4RT_OUT_OF_RANGE));
  v4rt_status_t bad = v4rt_session_reset_sequence(s, 4);
  EXPECT_EQ(v4rt_status_code(bad), V4RT_OUT_OF_RANGE);
  v4rt_status_free(bad);
  v4rt_session_release(s);
  v4rt_model_release(batched);
  v4rt_model_release(alone);
  llvm::sys::fs::remove_directories(dir);
}

/// Adds `delta` to element 0 of the I64 tensor `name` of the single-file
/// checkpoint in `dir`.
void corruptFirstElement(const std::string &dir, const std::string &name,
                         int64_t delta) {
  uint64_t offset = 0;
  {
    auto reader = v4::safetensors::Reader::open(dir);
    ASSERT_TRUE(reader.ok()) << reader.status().message();
    const v4::safetensors::TensorInfo *t = reader->find(name);
    ASSERT_NE(t, nullptr) << name;
    offset = t->fileOffset;
  }
  std::string file = dir + "/model.safetensors";
  std::FILE *f = std::fopen(file.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  int64_t v = 0;
  ASSERT_EQ(std::fseek(f, long(offset), SEEK_SET), 0);
  ASSERT_EQ(std::fread(&v, sizeof v, 1, f), 1u);
  v += delta;
  ASSERT_EQ(std::fseek(f, long(offset), SEEK_SET), 0);
  ASSERT_EQ(std::fwrite(&v, sizeof v, 1, f), 1u);
  std::fclose(f);
}

/// Loads `artifact` with `ckpt` and returns every logit of a 12-token
/// prefill (chunks of 5) and 6 decode steps, or the load error in `error`.
std::vector<float> engramLogits(const std::string &artifact,
                                const std::string &ckpt, int64_t vocab,
                                std::string &error) {
  v4rt_model_options_t options;
  v4rt_model_options_initialize(&options);
  options.checkpoint_path = ckpt.c_str();
  v4rt_model_t *model = nullptr;
  if (v4rt_status_t st = v4rt_model_load(artifact.c_str(), &options, &model)) {
    error = v4rt_status_message(st);
    v4rt_status_free(st);
    return {};
  }
  v4rt_session_t *session = nullptr;
  EXPECT_EQ(v4rt_session_create(model, &session), nullptr);
  std::vector<float> all;
  std::mt19937_64 rng(3);
  int64_t pos = 0;
  while (pos < 18) {
    int64_t n = pos < 12 ? std::min<int64_t>(5, 12 - pos) : 1;
    std::vector<int64_t> ids(static_cast<size_t>(n));
    for (int64_t &t : ids)
      t = int64_t(rng() % uint64_t(vocab));
    std::vector<float> logits(static_cast<size_t>(n * vocab));
    v4rt_status_t st =
        v4rt_session_run(session, ids.data(), nullptr, n, logits.data(),
                         logits.size(), nullptr, 0);
    EXPECT_EQ(st, nullptr) << v4rt_status_message(st);
    all.insert(all.end(), logits.begin(), logits.end());
    pos += n;
  }
  v4rt_session_release(session);
  v4rt_model_release(model);
  return all;
}

// Issue 15 item 4: a DeepSeek-V4.1-layout Engram checkpoint carries neither
// `layers.L.engram.multipliers` nor `layers.L.engram.primes`; the runtime
// computes the multipliers (numpy default_rng, V4-SPEC 8.4) and gives the
// logits of a checkpoint that stores them, bit for bit. A stored copy with a
// wrong value is rejected, naming the tensor and the rule (RT-8).
TEST(EndToEndEngram, CheckpointWithoutDerivedCopiesGivesTheSameLogits) {
  std::string configPath =
      std::string(V4_SOURCE_DIR) + "/models/tiny-v4-engram.config.json";
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("v4-e2e-engram", dir));
  std::string stored = (dir + "/stored").str(), shipped = (dir + "/v41").str(),
              artifact = (dir + "/model.v4a").str();
  // The same weights (seed 1234), with both copies and with neither; the
  // compiler's check accepts both (CheckpointTest).
  ASSERT_NO_FATAL_FAILURE(compile(configPath, 1, 32, stored, artifact, true,
                                  v4::DerivedCopies::All));
  ASSERT_NO_FATAL_FAILURE(compile(configPath, 1, 32, shipped,
                                  (dir + "/unused.v4a").str(), true,
                                  v4::DerivedCopies::None));
  {
    auto reader = v4::safetensors::Reader::open(shipped);
    ASSERT_TRUE(reader.ok());
    for (const auto &t : reader->tensors())
      EXPECT_EQ(t.name.find("engram.multipliers"), std::string::npos) << t.name;
  }

  auto config = v4::loadModelConfig(configPath);
  ASSERT_TRUE(static_cast<bool>(config));
  const int64_t V = config->vocabSize;
  std::string error;
  {
    // The C++ reference computes the multipliers the same way.
    auto reader = v4::safetensors::Reader::open(shipped);
    ASSERT_TRUE(reader.ok());
    auto ref = v4::ref::Model::load(v4::ref::configFrom(*config), *reader,
                                    v4::ref::Options(), &error);
    ASSERT_TRUE(ref) << error;
  }
  std::vector<float> want = engramLogits(artifact, stored, V, error);
  ASSERT_TRUE(error.empty()) << error;
  std::vector<float> got = engramLogits(artifact, shipped, V, error);
  ASSERT_TRUE(error.empty()) << error;
  ASSERT_EQ(got.size(), want.size());
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)),
            0);

  // A wrong stored multiplier, then a wrong stored prime.
  corruptFirstElement(stored, "layers.3.engram.multipliers", 2);
  engramLogits(artifact, stored, V, error);
  EXPECT_NE(error.find("'layers.3.engram.multipliers' element 0"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("Engram multiplier rule (V4-SPEC 8.4"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("[RT-8]"), std::string::npos) << error;
  corruptFirstElement(stored, "layers.3.engram.multipliers", -2);
  corruptFirstElement(stored, "layers.1.engram.primes", 2);
  error.clear();
  engramLogits(artifact, stored, V, error);
  EXPECT_NE(error.find("'layers.1.engram.primes' element 0"), std::string::npos)
      << error;
  EXPECT_NE(error.find("Engram prime rule"), std::string::npos) << error;
  llvm::sys::fs::remove_directories(dir);
}

// T1 (V4-SPEC 11.1): prefill 21 tokens in chunks of 8 then 43 decode steps,
// completing 4:1 and 8:1 compression blocks many times; the context is full
// at the end.
INSTANTIATE_TEST_SUITE_P(
    Models, EndToEnd,
    ::testing::Values(Case{"tiny-v4-t1.config.json", 2, 64, 21, 43, 8},
                      Case{"tiny-v4-engram.config.json", 2, 64, 21, 43, 8},
                      // Batch 1, chunks of 21 tokens: the token-local
                      // kernels run on slices of 8 tokens (artifact
                      // Launch.tokenSlice) in parallel.
                      Case{"tiny-v4-t1.config.json", 1, 64, 21, 43, 21},
                      Case{"tiny-v4-engram.config.json", 1, 64, 21, 43, 21}),
    [](const ::testing::TestParamInfo<Case> &info) {
      std::string n = info.param.config;
      std::string name =
          n.find("engram") != std::string::npos ? "Engram" : "T1";
      if (info.param.batch == 1)
        name += "TokenSlices";
      return name;
    });

// Synthetic weights (v4rt_model_options_t synthetic_weights, runtime/src/
// SyntheticWeights.h): the logits are finite with a softmax that is neither
// uniform nor one-hot, the same seed gives the same logits bit for bit on 1
// and 2 threads, another seed other logits, and the synthetic bytes written
// as a checkpoint give the same logits as the synthetic load.
/// The logits of a 9-token prefill and 3 decode steps (greedy) of `artifact`
/// loaded with synthetic weights of `seed` on `threads` threads, or with
/// `checkpoint` when it is not empty.
void runSynthetic(const std::string &artifact, uint64_t seed, uint32_t threads,
                  std::vector<float> &out, int64_t &vocab,
                  const std::string &checkpoint = "") {
  v4rt_model_options_t options;
  v4rt_model_options_initialize(&options);
  if (checkpoint.empty()) {
    options.synthetic_weights = 1;
    options.synthetic_seed = seed;
  } else {
    options.checkpoint_path = checkpoint.c_str();
  }
  options.num_threads = threads;
  v4rt_model_t *model = nullptr;
  v4rt_status_t st = v4rt_model_load(artifact.c_str(), &options, &model);
  ASSERT_EQ(st, nullptr) << v4rt_status_message(st);
  v4rt_model_info_t info{};
  info.struct_size = sizeof info;
  ASSERT_EQ(v4rt_model_info(model, &info), nullptr);
  EXPECT_EQ(info.synthetic_weights, checkpoint.empty() ? 1 : 0);
  EXPECT_EQ(info.num_threads, int64_t(threads));
  vocab = info.vocab_size;
  v4rt_session_t *s = nullptr;
  ASSERT_EQ(v4rt_session_create(model, &s), nullptr);
  std::vector<int64_t> ids = {1, 5, 9, 13, 17, 21, 25, 29, 33};
  for (int step = 0; step < 4; ++step) {
    int64_t tokens = int64_t(ids.size());
    std::vector<float> l(size_t(tokens * vocab));
    st = v4rt_session_run(s, ids.data(), nullptr, tokens, l.data(), l.size(),
                          nullptr, 0);
    ASSERT_EQ(st, nullptr) << v4rt_status_message(st);
    out.insert(out.end(), l.begin(), l.end());
    const float *last = l.data() + (tokens - 1) * vocab;
    ids = {int64_t(std::max_element(last, last + vocab) - last)};
  }
  v4rt_session_release(s);
  v4rt_model_release(model);
}

class EndToEndSynthetic : public ::testing::TestWithParam<const char *> {};

TEST_P(EndToEndSynthetic, LogitsAreFiniteDeterministicAndSeeded) {
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("v4-e2e-synthetic", dir));
  std::string m = (dir + "/m.v4a").str(), ck = (dir + "/ck").str();
  ASSERT_NO_FATAL_FAILURE(compile(
      std::string(V4_SOURCE_DIR) + "/models/" + GetParam(), 1, 32, ck, m));
  std::vector<float> one, two, other;
  int64_t V = 0;
  ASSERT_NO_FATAL_FAILURE(runSynthetic(m, 5, 1, one, V));
  ASSERT_NO_FATAL_FAILURE(runSynthetic(m, 5, 2, two, V));
  ASSERT_NO_FATAL_FAILURE(runSynthetic(m, 6, 2, other, V));
  ASSERT_EQ(one.size(), size_t(12 * V));
  ASSERT_EQ(one.size(), two.size());
  EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)), 0);
  ASSERT_EQ(one.size(), other.size());
  EXPECT_NE(std::memcmp(one.data(), other.data(), one.size() * sizeof(float)),
            0);
  // Every row: finite, not all equal, a softmax between uniform and
  // one-hot.
  for (const std::vector<float> *logits : {&one, &other})
    for (int64_t row = 0; row < 12; ++row) {
      const float *l = logits->data() + row * V;
      float lo = *std::min_element(l, l + V), hi = *std::max_element(l, l + V);
      for (int64_t i = 0; i < V; ++i)
        ASSERT_TRUE(std::isfinite(l[i])) << "row " << row << " token " << i;
      EXPECT_GT(hi - lo, 0.1f) << "row " << row;
      double z = 0, entropy = 0;
      for (int64_t i = 0; i < V; ++i)
        z += std::exp(double(l[i]) - hi);
      for (int64_t i = 0; i < V; ++i) {
        double p = std::exp(double(l[i]) - hi) / z;
        entropy -= p > 0 ? p * std::log(p) : 0;
      }
      EXPECT_GT(entropy, 0.5) << "row " << row;
      EXPECT_LT(entropy, std::log(double(V)) - 0.05) << "row " << row;
    }

  // The synthetic bytes as a checkpoint: the same logits.
  auto artifact = v4::artifact::Artifact::loadFile(m);
  ASSERT_TRUE(artifact) << artifact.status().message();
  auto tensors = v4::rt::syntheticTensors(*artifact);
  ASSERT_TRUE(tensors) << tensors.status().message();
  std::map<std::string, std::vector<uint8_t>> bytes;
  v4::rt::SyntheticSink sink;
  sink.upload = [&](const v4::rt::SyntheticTensor &t, const uint8_t *data) {
    bytes[t.name].assign(data, data + t.bytes);
    return v4::Status::success();
  };
  v4::rt::ThreadPool pool(2);
  ASSERT_TRUE(v4::rt::generateSyntheticWeights(*artifact, 5, pool, sink).ok());
  std::vector<v4::safetensors::TensorData> data;
  for (const v4::rt::SyntheticTensor &t : *tensors)
    data.push_back(
        {t.name, t.dtype, t.shape, bytes[t.name].data(), bytes[t.name].size()});
  std::string ckpt = (dir + "/synthetic.safetensors").str();
  v4::Status written = v4::safetensors::writeFile(ckpt, data);
  ASSERT_TRUE(written.ok()) << written.message();
  std::vector<float> fromFile;
  ASSERT_NO_FATAL_FAILURE(runSynthetic(m, 0, 2, fromFile, V, ckpt));
  ASSERT_EQ(fromFile.size(), one.size());
  EXPECT_EQ(
      std::memcmp(fromFile.data(), one.data(), one.size() * sizeof(float)), 0);
  llvm::sys::fs::remove_directories(dir);
}

INSTANTIATE_TEST_SUITE_P(Models, EndToEndSynthetic,
                         ::testing::Values("tiny-v4-t1.config.json",
                                           "tiny-v4-engram.config.json"),
                         [](const ::testing::TestParamInfo<const char *> &i) {
                           return std::string(i.index == 0 ? "T1" : "Engram");
                         });

} // namespace
