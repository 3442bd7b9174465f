//===- ApiTest.cpp - the v4rt C API: version, ABI, handles, info ----------===//
//
// The C API on a model that loads without the compiler: the tiny artifact
// with the roles the runtime needs, the test host kernels library as its
// code object (no kernel launched) and a checkpoint holding its two
// parameters. Version and ABI check, reference counting of every handle
// type (a release of the last reference frees: seen through the memory
// limit, which a live session holds), the struct_size protocol of the info
// structs, the model's memory needs and status returns.
//
//===----------------------------------------------------------------------===//
#include "runtime/artifact/Artifact.h"
#include "runtime/numerics/Numerics.h"
#include "runtime/safetensors/Safetensors.h"
#include "runtime/src/Digest.h"
#include "runtime/src/WeightScan.h"
#include "test/lib/RunOnThreads.h"
#include "test/lib/TestArtifacts.h"
#include "v4rt/v4rt.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <unistd.h>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

using namespace v4::artifact;
namespace fs = std::filesystem;
namespace st = v4::safetensors;

/// The code of `status`, freed.
v4rt_status_code_t codeOf(v4rt_status_t status) {
  v4rt_status_code_t code = v4rt_status_code(status);
  v4rt_status_free(status);
  return code;
}

TEST(ApiVersion, IsTheProjectVersionAndTheHeaderAbi) {
  const v4rt_version_t *v = v4rt_version();
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v, v4rt_version()); // static storage
  EXPECT_EQ(v->abi, V4RT_ABI_VERSION);
  EXPECT_EQ(std::string(v->string), kRuntimeVersion);
  EXPECT_EQ(std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                std::to_string(v->patch),
            v->string);
}

TEST(ApiVersion, AnotherHeaderAbiIsIncompatible) {
  EXPECT_EQ(v4rt_check_abi(V4RT_ABI_VERSION), nullptr);
  for (int other : {V4RT_ABI_VERSION - 1, V4RT_ABI_VERSION + 1, 0, -7}) {
    v4rt_status_t s = v4rt_check_abi(other);
    ASSERT_NE(s, nullptr) << other;
    EXPECT_EQ(v4rt_status_code(s), V4RT_INCOMPATIBLE);
    std::string message = v4rt_status_message(s);
    EXPECT_NE(message.find("ABI version " + std::to_string(other)),
              std::string::npos)
        << message;
    EXPECT_NE(
        message.find("has ABI version " + std::to_string(V4RT_ABI_VERSION)),
        std::string::npos)
        << message;
    v4rt_status_free(s);
  }
}

TEST(ApiHandles, NullHandlesAreNoOpsAndStatuses) {
  v4rt_model_retain(nullptr);
  v4rt_model_release(nullptr);
  v4rt_session_retain(nullptr);
  v4rt_session_release(nullptr);
  v4rt_tokenizer_retain(nullptr);
  v4rt_tokenizer_release(nullptr);
  v4rt_detokenizer_retain(nullptr);
  v4rt_detokenizer_release(nullptr);
  v4rt_model_info_t info;
  info.struct_size = sizeof info;
  EXPECT_EQ(codeOf(v4rt_model_info(nullptr, &info)), V4RT_INVALID_ARGUMENT);
  v4rt_tokenizer_info_t tinfo;
  tinfo.struct_size = sizeof tinfo;
  EXPECT_EQ(codeOf(v4rt_tokenizer_info(nullptr, &tinfo)),
            V4RT_INVALID_ARGUMENT);
  int64_t position = 5;
  EXPECT_EQ(codeOf(v4rt_session_position(nullptr, 0, &position)),
            V4RT_INVALID_ARGUMENT);
  EXPECT_EQ(position, 5);
  const char *text = nullptr;
  size_t length = 0;
  EXPECT_EQ(codeOf(v4rt_detokenizer_finish(nullptr, &text, &length)),
            V4RT_INVALID_ARGUMENT);
}

/// The tiny artifact, loadable: every input role, no kernels (its steps
/// launch nothing), the test host kernels as its code object; and a
/// checkpoint with its parameters.
class HostModelTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir = fs::temp_directory_path() /
          ("v4rt-api-test-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    Writer w(v4::artifact::testing::kernelFreeDescription());
    ASSERT_TRUE(
        v4::artifact::testing::addHostCodeObjectFile(w, V4_TEST_HOST_KERNELS));
    artifactPath = (dir / "m.v4a").string();
    ASSERT_TRUE(w.writeFile(artifactPath).ok());
    auto loaded = Artifact::loadFile(artifactPath);
    ASSERT_TRUE(loaded) << loaded.status().message();
    memory = loaded->memoryTotals();

    std::vector<uint8_t> embed(32 * 8 * 2, 0), norm(8 * 4, 0);
    checkpointPath = (dir / "model.safetensors").string();
    v4::Status written = st::writeFile(
        checkpointPath,
        {{"embed.weight", DType::BF16, {32, 8}, embed.data(), embed.size()},
         {"norm.weight", DType::F32, {8}, norm.data(), norm.size()}});
    ASSERT_TRUE(written.ok()) << written.message();
  }
  void TearDown() override { fs::remove_all(dir); }

  /// Loads the model with `memoryLimit` (0: none) and `threads`.
  v4rt_model_t *load(uint64_t memoryLimit = 0, uint32_t threads = 0) {
    v4rt_model_options_t options;
    v4rt_model_options_initialize(&options);
    EXPECT_EQ(options.num_threads, 0u);
    options.checkpoint_path = checkpointPath.c_str();
    options.memory_limit = memoryLimit;
    options.num_threads = threads;
    v4rt_model_t *model = nullptr;
    v4rt_status_t s = v4rt_model_load(artifactPath.c_str(), &options, &model);
    EXPECT_EQ(s, nullptr) << v4rt_status_message(s);
    v4rt_status_free(s);
    return model;
  }
  /// The status code of creating a second session (released at once).
  v4rt_status_code_t createCode(v4rt_model_t *model) {
    v4rt_session_t *session = nullptr;
    v4rt_status_code_t code = codeOf(v4rt_session_create(model, &session));
    v4rt_session_release(session);
    return code;
  }
  /// Runs one decode step on every row; the status code.
  v4rt_status_code_t step(v4rt_session_t *session) {
    int64_t ids[2] = {3, 4};
    std::vector<float> logits(2 * 32);
    return codeOf(v4rt_session_run(session, ids, nullptr, 1, logits.data(),
                                   logits.size(), nullptr, 0));
  }

  fs::path dir;
  std::string artifactPath, checkpointPath;
  Artifact::MemoryTotals memory;
};

constexpr int64_t kIoBytes = 3 * 2 * 16 * 8 + 2 * 8 + 2 * 16 * 32 * 4;

TEST_F(HostModelTest, InfoReportsBoundsTokensAndMemoryNeeds) {
  v4rt_model_t *model = load();
  ASSERT_NE(model, nullptr);
  v4rt_model_info_t info;
  info.struct_size = sizeof info;
  ASSERT_EQ(codeOf(v4rt_model_info(model, &info)), V4RT_OK);
  EXPECT_EQ(info.struct_size, sizeof info);
  EXPECT_EQ(info.batch, 2);
  EXPECT_EQ(info.max_context, 64);
  EXPECT_EQ(info.max_chunk, 16);
  EXPECT_EQ(info.vocab_size, 32);
  EXPECT_EQ(info.bos_token_id, 0);
  EXPECT_EQ(info.eos_token_id, 1);
  // The artifact's totals at its bounds: weights 32x8 bf16 + 8 f32; state
  // 2x64x8 bf16; a 512-byte arena; ids, next_ids and positions [2,16]
  // i64, start_positions [2] i64 and [2,16,32] f32 logits.
  EXPECT_EQ(info.weights_bytes, 32 * 8 * 2 + 8 * 4);
  EXPECT_EQ(uint64_t(info.weights_bytes), memory.weights);
  EXPECT_EQ(info.weights_mapped_bytes + info.weights_prepared_bytes,
            info.weights_bytes);
  EXPECT_EQ(info.session_state_bytes, 2 * 64 * 8 * 2);
  EXPECT_EQ(info.session_activation_bytes, 512);
  EXPECT_EQ(info.session_io_bytes, kIoBytes);
  EXPECT_EQ(info.session_bytes, info.session_state_bytes +
                                    info.session_activation_bytes +
                                    info.session_io_bytes);
  EXPECT_EQ(uint64_t(info.session_bytes), memory.session());
  v4rt_model_release(model);
}

TEST_F(HostModelTest, InfoFillsOnlyTheCallersStructSize) {
  v4rt_model_t *model = load();
  ASSERT_NE(model, nullptr);
  // A caller built against a later header: a longer struct. The library
  // writes its own struct and says so in struct_size; the rest is kept.
  struct Longer {
    v4rt_model_info_t info;
    int64_t later[4];
  } longer;
  longer.info.struct_size = sizeof longer;
  for (int64_t &x : longer.later)
    x = -42;
  ASSERT_EQ(codeOf(v4rt_model_info(model, &longer.info)), V4RT_OK);
  EXPECT_EQ(longer.info.struct_size, sizeof(v4rt_model_info_t));
  EXPECT_EQ(longer.info.session_io_bytes, kIoBytes);
  for (int64_t x : longer.later)
    EXPECT_EQ(x, -42);
  // Shorter than ABI 1's struct (or unset): refused, nothing written.
  v4rt_model_info_t info;
  info.struct_size = offsetof(v4rt_model_info_t, weights_bytes);
  info.batch = -9;
  v4rt_status_t s = v4rt_model_info(model, &info);
  EXPECT_EQ(v4rt_status_code(s), V4RT_INVALID_ARGUMENT);
  EXPECT_NE(std::string(v4rt_status_message(s)).find("struct_size"),
            std::string::npos);
  v4rt_status_free(s);
  EXPECT_EQ(info.batch, -9);
  info.struct_size = 0;
  EXPECT_EQ(codeOf(v4rt_model_info(model, &info)), V4RT_INVALID_ARGUMENT);
  EXPECT_EQ(codeOf(v4rt_model_info(model, nullptr)), V4RT_INVALID_ARGUMENT);
  v4rt_model_release(model);
}

TEST_F(HostModelTest, PositionIsAStatusPerRow) {
  v4rt_model_t *model = load();
  ASSERT_NE(model, nullptr);
  v4rt_session_t *session = nullptr;
  ASSERT_EQ(codeOf(v4rt_session_create(model, &session)), V4RT_OK);
  ASSERT_EQ(step(session), V4RT_OK);
  ASSERT_EQ(step(session), V4RT_OK);
  ASSERT_EQ(codeOf(v4rt_session_reset_sequence(session, 1)), V4RT_OK);
  int64_t position = -1;
  ASSERT_EQ(codeOf(v4rt_session_position(session, 0, &position)), V4RT_OK);
  EXPECT_EQ(position, 2);
  ASSERT_EQ(codeOf(v4rt_session_position(session, 1, &position)), V4RT_OK);
  EXPECT_EQ(position, 0);
  position = 77;
  for (int64_t row : {int64_t(-1), int64_t(2)}) {
    v4rt_status_t s = v4rt_session_position(session, row, &position);
    EXPECT_EQ(v4rt_status_code(s), V4RT_OUT_OF_RANGE);
    EXPECT_NE(std::string(v4rt_status_message(s)).find("the compiled batch"),
              std::string::npos);
    v4rt_status_free(s);
  }
  EXPECT_EQ(position, 77);
  EXPECT_EQ(codeOf(v4rt_session_position(session, 0, nullptr)),
            V4RT_INVALID_ARGUMENT);
  v4rt_session_release(session);
  v4rt_model_release(model);
}

TEST_F(HostModelTest, ProfilingTimesEveryStepOfEveryCall) {
  v4rt_model_t *model = load();
  ASSERT_NE(model, nullptr);
  v4rt_session_t *session = nullptr;
  ASSERT_EQ(codeOf(v4rt_session_create(model, &session)), V4RT_OK);
  size_t count = 99;
  // Off: nothing measured.
  ASSERT_EQ(step(session), V4RT_OK);
  ASSERT_EQ(codeOf(v4rt_session_profile(session, nullptr, 0, &count)), V4RT_OK);
  EXPECT_EQ(count, 0u);
  ASSERT_EQ(codeOf(v4rt_session_set_profiling(session, 1)), V4RT_OK);
  ASSERT_EQ(step(session), V4RT_OK);
  ASSERT_EQ(step(session), V4RT_OK);
  ASSERT_EQ(step(session), V4RT_OK);
  ASSERT_EQ(codeOf(v4rt_session_profile(session, nullptr, 0, &count)), V4RT_OK);
  std::vector<v4rt_profile_entry_t> e(count + 1);
  e.back().calls = -5; // beyond the count: not written
  size_t again = 0;
  ASSERT_EQ(codeOf(v4rt_session_profile(session, e.data(), e.size(), &again)),
            V4RT_OK);
  EXPECT_EQ(again, count);
  EXPECT_EQ(e.back().calls, -5);
  // One entry per kernel of the step plan (its launches per call times 3)
  // and one for the whole calls, all one-token, most time first; the
  // steps take part of the calls' time. (This artifact's steps launch
  // nothing: test/tools/v4-run/profile.test profiles real kernels.)
  auto loaded = Artifact::loadFile(artifactPath);
  ASSERT_TRUE(loaded) << loaded.status().message();
  const Artifact &a = *loaded;
  std::set<uint32_t> kernels;
  for (const Step &st : a.findEntryPoint("step")->steps)
    kernels.insert(st.kernel);
  ASSERT_EQ(count, kernels.size() + 1);
  double steps = 0, calls = -1;
  for (size_t i = 0; i < count; ++i) {
    EXPECT_EQ(e[i].one_token, 1);
    EXPECT_EQ(e[i].calls,
              3 * (e[i].kind == V4RT_PROFILE_CALL
                       ? 1
                       : std::count_if(a.findEntryPoint("step")->steps.begin(),
                                       a.findEntryPoint("step")->steps.end(),
                                       [&](const Step &st) {
                                         return a.kernels()[st.kernel].name ==
                                                e[i].name;
                                       })))
        << e[i].name;
    if (i) {
      EXPECT_LE(e[i].seconds, e[i - 1].seconds);
    }
    if (e[i].kind == V4RT_PROFILE_CALL) {
      EXPECT_STREQ(e[i].name, "step");
      calls = e[i].seconds;
    } else {
      EXPECT_EQ(e[i].kind, V4RT_PROFILE_KERNEL);
      steps += e[i].seconds;
    }
  }
  EXPECT_GT(calls, 0.0);
  EXPECT_LE(steps, calls);
  // Turning it on again (or off) clears it; off measures nothing.
  ASSERT_EQ(codeOf(v4rt_session_set_profiling(session, 0)), V4RT_OK);
  ASSERT_EQ(step(session), V4RT_OK);
  ASSERT_EQ(codeOf(v4rt_session_profile(session, nullptr, 0, &count)), V4RT_OK);
  EXPECT_EQ(count, 0u);
  // Bad arguments.
  EXPECT_EQ(codeOf(v4rt_session_set_profiling(nullptr, 1)),
            V4RT_INVALID_ARGUMENT);
  EXPECT_EQ(codeOf(v4rt_session_profile(nullptr, nullptr, 0, &count)),
            V4RT_INVALID_ARGUMENT);
  EXPECT_EQ(codeOf(v4rt_session_profile(session, nullptr, 0, nullptr)),
            V4RT_INVALID_ARGUMENT);
  EXPECT_EQ(codeOf(v4rt_session_profile(session, nullptr, 2, &count)),
            V4RT_INVALID_ARGUMENT);
  v4rt_session_release(session);
  v4rt_model_release(model);
}

TEST_F(HostModelTest, ReleasingTheLastSessionReferenceFreesIt) {
  // Room for the weights and exactly one session: a second is refused
  // while the first lives, whatever its reference count.
  v4rt_model_t *model = load(memory.weights + memory.session());
  ASSERT_NE(model, nullptr);
  v4rt_session_t *session = nullptr;
  ASSERT_EQ(codeOf(v4rt_session_create(model, &session)), V4RT_OK);
  EXPECT_EQ(createCode(model), V4RT_RESOURCE_EXHAUSTED);
  v4rt_session_retain(session);
  v4rt_session_retain(session);
  v4rt_session_release(session);
  v4rt_session_release(session);
  EXPECT_EQ(step(session), V4RT_OK) << "one reference is left";
  EXPECT_EQ(createCode(model), V4RT_RESOURCE_EXHAUSTED);
  v4rt_session_release(session); // the last: freed
  EXPECT_EQ(createCode(model), V4RT_OK);
  v4rt_model_release(model);
}

TEST_F(HostModelTest, ASessionKeepsItsModelAlive) {
  v4rt_model_t *model = load();
  ASSERT_NE(model, nullptr);
  v4rt_model_retain(model);
  v4rt_model_release(model);
  v4rt_session_t *session = nullptr;
  ASSERT_EQ(codeOf(v4rt_session_create(model, &session)), V4RT_OK);
  v4rt_model_release(model); // the session holds the last reference
  EXPECT_EQ(step(session), V4RT_OK);
  ASSERT_EQ(codeOf(v4rt_session_reset_sequence(session, 0)), V4RT_OK);
  EXPECT_EQ(step(session), V4RT_OK);
  v4rt_session_release(session); // frees the session, then the model
}

TEST_F(HostModelTest, ReferenceCountsAreAtomic) {
  v4rt_model_t *model = load(memory.weights + memory.session());
  ASSERT_NE(model, nullptr);
  v4rt_session_t *session = nullptr;
  ASSERT_EQ(codeOf(v4rt_session_create(model, &session)), V4RT_OK);
  // Threads retain and release both handles at once; every retain is
  // matched, so one reference of each is left at the end.
  v4::test::runOnThreads(8, 20000, [&] {
    v4rt_session_retain(session);
    v4rt_model_retain(model);
    v4rt_session_release(session);
    v4rt_model_release(model);
  });
  EXPECT_EQ(step(session), V4RT_OK);
  EXPECT_EQ(createCode(model), V4RT_RESOURCE_EXHAUSTED);
  v4rt_session_release(session);
  EXPECT_EQ(createCode(model), V4RT_OK) << "the session was freed";
  v4rt_model_release(model);
}

} // namespace

namespace {

/// Loads `artifact` with `checkpoint` and the given options; the status
/// (the model, when loaded, released).
std::pair<v4rt_status_code_t, std::string>
loadWith(const std::string &artifact, v4rt_model_options_t options) {
  v4rt_model_t *model = nullptr;
  v4rt_status_t s = v4rt_model_load(artifact.c_str(), &options, &model);
  std::pair<v4rt_status_code_t, std::string> r{v4rt_status_code(s),
                                               v4rt_status_message(s)};
  v4rt_status_free(s);
  EXPECT_EQ(model != nullptr, r.first == V4RT_OK);
  v4rt_model_release(model);
  return r;
}

// Issue 16 item 1: the expected SHA-256 of an artifact, checked before it is
// parsed.
TEST(ApiDigest, Sha256OfBytes) {
  auto found = v4::rt::sha256Hex("abc", 3);
  ASSERT_TRUE(found) << found.status().message();
  EXPECT_EQ(*found,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(HostModelTest, ExpectedSha256LoadsOnlyTheTrustedArtifact) {
  std::ifstream in(artifactPath, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
  auto digest = v4::rt::sha256Hex(bytes.data(), bytes.size());
  ASSERT_TRUE(digest) << digest.status().message();
  v4rt_model_options_t o;
  v4rt_model_options_initialize(&o);
  o.checkpoint_path = checkpointPath.c_str();
  o.expected_sha256 = digest->c_str();
  EXPECT_EQ(loadWith(artifactPath, o).first, V4RT_OK);
  std::string upper = *digest;
  for (char &c : upper)
    c = char(std::toupper(static_cast<unsigned char>(c)));
  o.expected_sha256 = upper.c_str();
  EXPECT_EQ(loadWith(artifactPath, o).first, V4RT_OK);
  // One digit off: refused naming both digests.
  std::string other = *digest;
  other[0] = other[0] == '0' ? '1' : '0';
  o.expected_sha256 = other.c_str();
  auto [code, message] = loadWith(artifactPath, o);
  EXPECT_EQ(code, V4RT_FAILED_PRECONDITION);
  EXPECT_NE(message.find(*digest), std::string::npos) << message;
  EXPECT_NE(message.find(other), std::string::npos) << message;
  EXPECT_NE(message.find("[DIG-1]"), std::string::npos) << message;
  // Refused before parsing: a file that is no artifact gets DIG-1, not AF-1.
  std::string junk = (dir / "junk.v4a").string();
  std::ofstream(junk) << "<!DOCTYPE html>";
  EXPECT_NE(loadWith(junk, o).second.find("[DIG-1]"), std::string::npos);
  // Malformed: not 64 hex digits.
  for (std::string bad : {std::string("abc"), std::string(64, 'g'),
                          digest->substr(0, 63), *digest + "0"}) {
    o.expected_sha256 = bad.c_str();
    auto [c, m] = loadWith(artifactPath, o);
    EXPECT_EQ(c, V4RT_INVALID_ARGUMENT) << bad;
    EXPECT_NE(m.find("64 hexadecimal digits"), std::string::npos) << m;
  }
}

TEST_F(HostModelTest, OptionsStructSizeIsChecked) {
  v4rt_model_options_t o;
  v4rt_model_options_initialize(&o);
  EXPECT_EQ(o.struct_size, sizeof o);
  o.checkpoint_path = checkpointPath.c_str();
  // A caller whose header ends at memory_limit: the new fields default.
  v4rt_model_options_t shorter = o;
  shorter.struct_size = offsetof(v4rt_model_options_t, check_weights);
  shorter.check_weights = 1;
  shorter.expected_sha256 = "not read";
  EXPECT_EQ(loadWith(artifactPath, shorter).first, V4RT_OK);
  for (size_t bad : {size_t(0), sizeof o + 8}) {
    o.struct_size = bad;
    auto [code, message] = loadWith(artifactPath, o);
    EXPECT_EQ(code, V4RT_INVALID_ARGUMENT);
    EXPECT_NE(message.find("v4rt_model_options_initialize"), std::string::npos)
        << message;
  }
}

// Issue 8: the thread count is a load option, reported back by
// v4rt_model_info; 0 resolves to V4RT_NUM_THREADS or every core.
TEST_F(HostModelTest, NumThreadsIsALoadOptionReportedByInfo) {
  auto threadsOf = [&](uint32_t requested) -> int64_t {
    v4rt_model_t *model = load(0, requested);
    if (!model)
      return -1;
    v4rt_model_info_t info;
    info.struct_size = sizeof info;
    EXPECT_EQ(codeOf(v4rt_model_info(model, &info)), V4RT_OK);
    v4rt_model_release(model);
    return info.num_threads;
  };
  EXPECT_EQ(threadsOf(1), 1);
  EXPECT_EQ(threadsOf(3), 3);
  EXPECT_GE(threadsOf(0), 1);
  // Above the bound: refused before anything is loaded.
  v4rt_model_options_t o;
  v4rt_model_options_initialize(&o);
  o.checkpoint_path = checkpointPath.c_str();
  o.num_threads = 5000;
  auto [code, message] = loadWith(artifactPath, o);
  EXPECT_EQ(code, V4RT_INVALID_ARGUMENT);
  EXPECT_NE(message.find("num_threads 5000 is above 4096"), std::string::npos)
      << message;
}

// Issue 16 item 3: the opt-in finite-value scan of the weights.
TEST(WeightScan, FindsTheFirstNonFiniteElementOfEveryStoredDType) {
  using v4::DType;
  using v4::rt::firstNonFinite;
  uint16_t bf16[4] = {0x3F80, 0x0000, 0x7FC0, 0xFF80}; // 1, 0, NaN, -Inf
  EXPECT_EQ(firstNonFinite(DType::BF16, bf16, 4), 2);
  EXPECT_EQ(firstNonFinite(DType::BF16, bf16, 2), -1);
  uint16_t f16[3] = {0x3C00, 0x7C00, 0x7E00}; // 1, Inf, NaN
  EXPECT_EQ(firstNonFinite(DType::F16, f16, 3), 1);
  float f32[3] = {1.0f, -3e38f, INFINITY};
  EXPECT_EQ(firstNonFinite(DType::F32, f32, 3), 2);
  f32[2] = NAN;
  EXPECT_EQ(firstNonFinite(DType::F32, f32, 3), 2);
  // e4m3fn: 0x7E is 448 (finite), 0x7F and 0xFF are NaN; no infinity.
  uint8_t e4m3[4] = {0x7E, 0xFE, 0xFF, 0x7F};
  EXPECT_EQ(firstNonFinite(DType::F8E4M3, e4m3, 4), 2);
  EXPECT_EQ(firstNonFinite(DType::F8E4M3, e4m3, 2), -1);
  EXPECT_EQ(v4::quant::decodeE4M3(0x7E), 448.0f);
  // e8m0: 0xFE is 2^127, 0xFF is NaN.
  uint8_t e8m0[3] = {0x00, 0xFE, 0xFF};
  EXPECT_EQ(firstNonFinite(DType::F8E8M0, e8m0, 3), 2);
  // e2m1 and the integers have no NaN.
  uint8_t bytes[2] = {0xFF, 0xFF};
  EXPECT_EQ(firstNonFinite(DType::F4E2M1, bytes, 4), -1);
  EXPECT_EQ(firstNonFinite(DType::U8, bytes, 2), -1);
  EXPECT_EQ(firstNonFinite(DType::I8, bytes, 2), -1);
}

TEST_F(HostModelTest, CheckWeightsNamesTheTensorAndTheElement) {
  std::vector<uint16_t> embed(32 * 8, 0x3F80);
  embed[13] = 0x7FC0; // NaN
  std::vector<float> norm(8, 1.0f);
  v4::Status written = st::writeFile(
      checkpointPath,
      {{"embed.weight", DType::BF16, {32, 8}, embed.data(), embed.size() * 2},
       {"norm.weight", DType::F32, {8}, norm.data(), norm.size() * 4}});
  ASSERT_TRUE(written.ok()) << written.message();
  v4rt_model_options_t o;
  v4rt_model_options_initialize(&o);
  o.checkpoint_path = checkpointPath.c_str();
  EXPECT_EQ(loadWith(artifactPath, o).first, V4RT_OK); // off by default
  o.check_weights = 1;
  auto [code, message] = loadWith(artifactPath, o);
  EXPECT_EQ(code, V4RT_INVALID_ARGUMENT);
  EXPECT_NE(message.find("tensor 'embed.weight' (bf16 [32, 8]) element 13"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("[VAL-1]"), std::string::npos) << message;
  // An f32 Inf in the other tensor; the bf16 one fixed.
  embed[13] = 0;
  norm[7] = -INFINITY;
  ASSERT_TRUE(
      st::writeFile(
          checkpointPath,
          {{"embed.weight",
            DType::BF16,
            {32, 8},
            embed.data(),
            embed.size() * 2},
           {"norm.weight", DType::F32, {8}, norm.data(), norm.size() * 4}})
          .ok());
  auto [code2, message2] = loadWith(artifactPath, o);
  EXPECT_EQ(code2, V4RT_INVALID_ARGUMENT);
  EXPECT_NE(message2.find("'norm.weight' (f32 [8]) element 7"),
            std::string::npos)
      << message2;
}

} // namespace
