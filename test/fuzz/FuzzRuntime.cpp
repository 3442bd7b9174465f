//===- FuzzRuntime.cpp - fuzz-runtime: structure-aware load and run -------===//
//
// The runtime load-and-run path on artifacts that pass every AF rule: the
// input bytes choose edits (bounds, buffer ids, dtypes, shapes, kinds,
// roles, arena offsets, state specs, parameters, token ids) of the tiny
// loadable artifact (test/runtime/ApiTest.cpp's: every input role, the test
// host kernels as its code object, no kernel launched); the edited
// description is written through the Writer with verification on; what it
// writes must load and re-serialize to the same bytes (the writer -> reader
// round trip), and is then loaded with v4rt_model_load against a
// fixed checkpoint, given a session, and run for one chunk within the
// bounds the model reports. Whatever the loader accepts must run without a
// crash or a sanitizer report (issue 16: the runtime trusted the artifact
// more than the artifact checks did).
//
//===----------------------------------------------------------------------===//
#include "runtime/artifact/Artifact.h"
#include "runtime/safetensors/Safetensors.h"
#include "test/lib/TestArtifacts.h"
#include "v4rt/v4rt.h"

#include <fuzzer/FuzzedDataProvider.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace v4::artifact;
namespace fs = std::filesystem;

namespace {

struct Fixture {
  Description base;
  std::vector<uint8_t> image;
  std::string dir, artifactPath, checkpointPath;

  Fixture() {
    dir = (fs::temp_directory_path() /
           ("v4-fuzz-runtime-" + std::to_string(::getpid())))
              .string();
    fs::create_directories(dir);
    base = testing::tinyWriter().description();
    base.codeObjects.clear();
    base.kernels.clear();
    base.debugLocations.clear();
    for (EntryPoint &e : base.entryPoints)
      e.steps.clear();
    testing::addRuntimeInputs(base);
    std::ifstream in(V4_TEST_HOST_KERNELS, std::ios::binary);
    image.assign(std::istreambuf_iterator<char>(in), {});
    if (image.empty()) {
      std::fprintf(stderr, "fuzz-runtime: cannot read %s\n",
                   V4_TEST_HOST_KERNELS);
      std::abort();
    }
    artifactPath = dir + "/m.v4a";
    checkpointPath = dir + "/model.safetensors";
    std::vector<uint8_t> embed(32 * 8 * 2, 0), norm(8 * 4, 0);
    v4::Status written = v4::safetensors::writeFile(
        checkpointPath,
        {{"embed.weight", DType::BF16, {32, 8}, embed.data(), embed.size()},
         {"norm.weight", DType::F32, {8}, norm.data(), norm.size()}});
    if (!written.ok()) {
      std::fprintf(stderr, "fuzz-runtime: %s\n", written.message().c_str());
      std::abort();
    }
  }
  ~Fixture() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

Fixture &fixture() {
  static Fixture f;
  return f;
}

int64_t pickDim(FuzzedDataProvider &in) {
  static const int64_t dims[] = {-1, 0, 1, 2, 3, 7, 8, 16, 31, 32, 33, 64};
  return in.PickValueInArray(dims);
}

void editBuffer(FuzzedDataProvider &in, Description &d) {
  if (d.buffers.empty())
    return;
  Buffer &b =
      d.buffers[in.ConsumeIntegralInRange<size_t>(0, d.buffers.size() - 1)];
  static const char *const roles[] = {
      "ids",    "next_ids",   "positions",    "start_positions",
      "logits", "mtp_logits", "mtp_logits.1", ""};
  switch (in.ConsumeIntegralInRange<int>(0, 7)) {
  case 0:
    b.id = in.ConsumeIntegralInRange<uint32_t>(0, 40);
    break;
  case 1:
    b.dtype = DType(in.ConsumeIntegralInRange<int>(0, 12));
    break;
  case 2: {
    b.shape.resize(in.ConsumeIntegralInRange<size_t>(0, 4));
    for (int64_t &dim : b.shape)
      dim = pickDim(in);
    break;
  }
  case 3:
    if (!b.shape.empty())
      b.shape[in.ConsumeIntegralInRange<size_t>(0, b.shape.size() - 1)] =
          pickDim(in);
    break;
  case 4:
    b.kind = BufferKind(in.ConsumeIntegralInRange<int>(0, 5));
    break;
  case 5:
    b.role = in.PickValueInArray(roles);
    break;
  case 6:
    b.arenaOffset = in.ConsumeIntegralInRange<int64_t>(-2, 4096);
    d.arenaBytes = in.ConsumeIntegralInRange<uint64_t>(0, 8192);
    break;
  case 7:
    b.alignment = uint32_t(1) << in.ConsumeIntegralInRange<int>(0, 12);
    break;
  }
}

/// Applies the edits the input chooses to `d`.
void edit(FuzzedDataProvider &in, Description &d) {
  int edits = in.ConsumeIntegralInRange<int>(1, 6);
  for (int i = 0; i < edits && in.remaining_bytes() > 0; ++i) {
    switch (in.ConsumeIntegralInRange<int>(0, 9)) {
    case 0:
      d.bounds.batch = in.ConsumeIntegralInRange<int64_t>(0, 5);
      break;
    case 1:
      d.bounds.maxChunk = in.ConsumeIntegralInRange<int64_t>(0, 40);
      break;
    case 2:
      d.bounds.maxContext = in.ConsumeIntegralInRange<int64_t>(0, 130);
      break;
    case 3:
    case 4:
    case 5:
      editBuffer(in, d);
      break;
    case 6:
      if (!d.buffers.empty()) {
        size_t at = in.ConsumeIntegralInRange<size_t>(0, d.buffers.size() - 1);
        if (in.ConsumeBool())
          d.buffers.erase(d.buffers.begin() + at);
        else
          d.buffers.push_back(d.buffers[at]);
      }
      break;
    case 7:
      if (!d.stateSpecs.empty()) {
        StateSpec &s = d.stateSpecs[in.ConsumeIntegralInRange<size_t>(
            0, d.stateSpecs.size() - 1)];
        if (!s.buffers.empty() && in.ConsumeBool())
          s.buffers.pop_back();
        else
          s.buffers.push_back(in.ConsumeIntegralInRange<uint32_t>(0, 40));
        s.padValue = in.ConsumeIntegralInRange<int64_t>(-3, 3);
      }
      break;
    case 8:
      if (!d.parameters.empty()) {
        Parameter &p = d.parameters[in.ConsumeIntegralInRange<size_t>(
            0, d.parameters.size() - 1)];
        p.buffer = in.ConsumeIntegralInRange<uint32_t>(0, 40);
      }
      break;
    case 9:
      d.tokens.bos = in.ConsumeIntegralInRange<int64_t>(-2, 40);
      d.tokens.eos = in.ConsumeIntegralInRange<int64_t>(-2, 40);
      break;
    }
  }
}

/// Writer -> reader -> writer: the file the Writer wrote loads, and its
/// description and code images serialize to the same bytes again.
void roundTrip(const std::string &path) {
  auto loaded = Artifact::loadFile(path);
  if (!loaded)
    __builtin_trap(); // the Writer verified what it wrote
  Description again = loaded->description();
  again.codeObjects.clear();
  Writer w(again);
  for (size_t i = 0; i < loaded->codeObjects().size(); ++i) {
    const CodeObject &c = loaded->codeObjects()[i];
    ByteSpan image = loaded->code(i);
    w.addCodeObject(c.target, c.format,
                    std::vector<uint8_t>(image.data, image.data + image.size),
                    c.isa);
  }
  auto bytes = w.serialize();
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> file(std::istreambuf_iterator<char>(in), {});
  if (!bytes || *bytes != file)
    __builtin_trap();
}

v4rt_status_code_t codeOf(v4rt_status_t status) {
  v4rt_status_code_t code = v4rt_status_code(status);
  v4rt_status_free(status);
  return code;
}

} // namespace

// One CPU thread, so that an input's coverage does not depend on how the
// pool's workers were scheduled (their wait loops run a varying number of
// times). The pool is covered by the TSan suite instead.
extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  ::setenv("V4RT_NUM_THREADS", "1", 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Fixture &f = fixture();
  FuzzedDataProvider in(data, size);
  Description d = f.base;
  edit(in, d);
  Writer w(d);
  w.addCodeObject(Target::CPU, CodeFormat::HostSharedObject, f.image);
  if (!w.writeFile(f.artifactPath).ok())
    return 0; // the writer's own checks refused the edit
  roundTrip(f.artifactPath);
  v4rt_model_options_t options;
  v4rt_model_options_initialize(&options);
  options.checkpoint_path = f.checkpointPath.c_str();
  options.memory_limit = 64 << 20;
  v4rt_model_t *model = nullptr;
  v4rt_status_t loaded =
      v4rt_model_load(f.artifactPath.c_str(), &options, &model);
  // V4_FUZZ_VERBOSE=1: why each written artifact did or did not load.
  static const bool verbose = std::getenv("V4_FUZZ_VERBOSE") != nullptr;
  if (verbose)
    std::fprintf(stderr, "fuzz-runtime: %s\n",
                 loaded ? v4rt_status_message(loaded) : "loaded");
  if (codeOf(loaded) != V4RT_OK)
    return 0;
  v4rt_model_info_t info;
  info.struct_size = sizeof info;
  v4rt_session_t *session = nullptr;
  if (codeOf(v4rt_model_info(model, &info)) == V4RT_OK &&
      codeOf(v4rt_session_create(model, &session)) == V4RT_OK) {
    int64_t tokens = in.ConsumeIntegralInRange<int64_t>(
        1, info.max_chunk > 0 ? info.max_chunk : 1);
    int64_t rows = info.logits_positions == 1 ? 1 : tokens;
    uint64_t idCount = uint64_t(info.batch) * uint64_t(tokens);
    uint64_t logitCount = uint64_t(info.batch) * rows *
                          uint64_t(info.vocab_size > 0 ? info.vocab_size : 1);
    if (info.batch > 0 && idCount < (1u << 20) && logitCount < (1u << 24)) {
      std::vector<int64_t> ids(idCount);
      for (int64_t &id : ids)
        id = in.ConsumeIntegralInRange<int64_t>(
            0, info.vocab_size > 0 ? info.vocab_size - 1 : 0);
      std::vector<float> logits(logitCount);
      for (int call = 0; call < 2; ++call)
        (void)codeOf(v4rt_session_run(session, ids.data(), nullptr, tokens,
                                      logits.data(), logits.size(), nullptr,
                                      0));
      int64_t position = 0;
      (void)codeOf(v4rt_session_position(session, 0, &position));
      (void)codeOf(v4rt_session_reset_sequence(session, info.batch - 1));
    }
    v4rt_session_release(session);
  }
  v4rt_model_release(model);
  return 0;
}
