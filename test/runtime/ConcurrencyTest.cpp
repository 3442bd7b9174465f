//===- ConcurrencyTest.cpp - host models: threads and the contract --------===//
//
// docs/RELIABILITY.md 2.10: a loaded model is shared by threads, each with
// its own session. Eight threads run chunks on their sessions of one model
// at once; the model's step launches a kernel with a launch grid, so the
// sessions share the model's thread pool. Every call succeeds and every
// session's positions advance by exactly its own tokens. Built with
// V4_SANITIZE=thread (scripts/sanitize.sh tsan), this is the TSan test.
// Also the runtime's side of the artifact contract (issue 16): what the AF
// rules accept, the runtime runs.
//
//===----------------------------------------------------------------------===//
#include "runtime/artifact/Artifact.h"
#include "runtime/safetensors/Safetensors.h"
#include "test/lib/TestArtifacts.h"
#include "v4rt/v4rt.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace v4::artifact;
namespace fs = std::filesystem;

/// A model that loads without the compiler: `d` (the tiny artifact's
/// description with every input role) with the test host kernels as its
/// code object, and a checkpoint with its two parameters, in a temporary
/// folder removed at the end.
class HostModel {
public:
  explicit HostModel(Description d) {
    dir = fs::temp_directory_path() /
          ("v4rt-host-model-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    d.codeObjects.clear();
    d.debugLocations.clear();
    Writer w(d);
    std::ifstream in(V4_TEST_HOST_KERNELS, std::ios::binary);
    w.addCodeObject(
        Target::CPU, CodeFormat::HostSharedObject,
        std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {}));
    std::string artifact = (dir / "m.v4a").string();
    v4::Status written = w.writeFile(artifact);
    EXPECT_TRUE(written.ok()) << written.message();
    std::vector<uint8_t> embed(32 * 8 * 2, 0), norm(8 * 4, 0);
    std::string checkpoint = (dir / "model.safetensors").string();
    written = v4::safetensors::writeFile(
        checkpoint,
        {{"embed.weight", DType::BF16, {32, 8}, embed.data(), embed.size()},
         {"norm.weight", DType::F32, {8}, norm.data(), norm.size()}});
    EXPECT_TRUE(written.ok()) << written.message();
    v4rt_model_options_t options;
    v4rt_model_options_initialize(&options);
    options.checkpoint_path = checkpoint.c_str();
    v4rt_status_t s = v4rt_model_load(artifact.c_str(), &options, &model);
    EXPECT_EQ(s, nullptr) << v4rt_status_message(s);
    v4rt_status_free(s);
  }
  ~HostModel() {
    v4rt_model_release(model);
    fs::remove_all(dir);
  }
  v4rt_model_t *model = nullptr;

private:
  fs::path dir;
};

/// The tiny description with every input role and no kernels.
Description tinyRuntimeDescription() {
  Description d = v4::artifact::testing::tinyWriter().description();
  v4::artifact::testing::addRuntimeInputs(d);
  d.kernels.clear();
  for (EntryPoint &e : d.entryPoints)
    e.steps.clear();
  return d;
}

// Buffer ids are unique but need not be dense or small (AF-9): the runtime
// indexes its tables by slot. Ids near 2^32 used to size a table of 2^32
// entries (bad_alloc, an abort).
TEST(RuntimeContract, BufferIdsNeedNotBeDenseOrSmall) {
  Description d = tinyRuntimeDescription();
  uint32_t big = 4000000000u;
  for (Buffer &b : d.buffers) {
    uint32_t id = b.id;
    b.id = big + id;
    for (Parameter &p : d.parameters)
      if (p.buffer == id)
        p.buffer = b.id;
    for (StateSpec &s : d.stateSpecs)
      for (uint32_t &x : s.buffers)
        if (x == id)
          x = b.id;
  }
  HostModel host(d);
  ASSERT_NE(host.model, nullptr);
  v4rt_session_t *session = nullptr;
  v4rt_status_t s = v4rt_session_create(host.model, &session);
  ASSERT_EQ(s, nullptr) << v4rt_status_message(s);
  int64_t ids[2] = {3, 4};
  std::vector<float> logits(2 * 32, 1.0f);
  s = v4rt_session_run(session, ids, nullptr, 1, logits.data(), logits.size(),
                       nullptr, 0);
  EXPECT_EQ(s, nullptr) << v4rt_status_message(s);
  v4rt_status_free(s);
  EXPECT_EQ(logits[0], 0.0f); // the zeroed logits buffer, read back
  v4rt_session_release(session);
}

TEST(Concurrency, SessionsOfOneModelRunOnManyThreads) {
  Description d = tinyRuntimeDescription();
  // One kernel: v4_test_blocks on a 64-word activation, grid 3 x
  // 2 * ceil(T / 4) (24 blocks at T = 16).
  Kernel blocks{"blocks", 0, "v4_test_blocks", 1, 0, ""};
  blocks.launch.grid[0].fixed = 3;
  blocks.launch.grid[1].fixed = 2;
  blocks.launch.grid[1].tokenTile = 4;
  d.kernels = {blocks};
  Buffer words;
  words.id = 20;
  words.dtype = DType::I64;
  words.shape = {64};
  words.kind = BufferKind::Activation;
  d.buffers.push_back(words);
  for (EntryPoint &e : d.entryPoints)
    if (e.name == "step")
      e.steps.push_back({0, {20}, {}, -1});
  HostModel host(d);
  v4rt_model_t *model = host.model;
  ASSERT_NE(model, nullptr);

  constexpr int kThreads = 8, kCalls = 24;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      v4rt_session_t *session = nullptr;
      v4rt_status_t st = v4rt_session_create(model, &session);
      if (st) {
        ++failures;
        v4rt_status_free(st);
        return;
      }
      int64_t expected = 0;
      for (int call = 0; call < kCalls; ++call) {
        int64_t tokens = 1 + (t + call) % 2; // decode and 2-token chunks
        if (expected + tokens > 64)
          break;
        std::vector<int64_t> ids(2 * tokens, 3 + t);
        std::vector<float> logits(2 * tokens * 32);
        st = v4rt_session_run(session, ids.data(), nullptr, tokens,
                              logits.data(), logits.size(), nullptr, 0);
        if (st) {
          ++failures;
          v4rt_status_free(st);
          break;
        }
        expected += tokens;
      }
      for (int64_t row = 0; row < 2; ++row) {
        int64_t position = -1;
        v4rt_status_free(v4rt_session_position(session, row, &position));
        failures += position != expected;
      }
      v4rt_session_release(session);
    });
  for (std::thread &th : threads)
    th.join();
  EXPECT_EQ(failures.load(), 0);
}

} // namespace
