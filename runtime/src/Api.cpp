//===- Api.cpp - the v4rt C API -------------------------------------------===//
//
// Argument checks and handles; the work is in Model, Session and the device
// (runtime/src/devices). Plain C++17; links the artifact and safetensors
// libraries and libdl only. The runtime holds no model math: every
// operation is a kernel of the artifact's code objects.
//
//===----------------------------------------------------------------------===//
#include "v4rt/v4rt.h"

#include "runtime/src/ApiStatus.h"
#include "runtime/src/Digest.h"
#include "runtime/src/Model.h"
#include "runtime/src/Session.h"
#include "runtime/src/WeightScan.h"
#include "runtime/src/devices/ThreadPool.h"

#include <cmath>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#if !defined(V4RT_VERSION_MAJOR) || !defined(V4RT_VERSION_MINOR) ||            \
    !defined(V4RT_VERSION_PATCH)
#error "the build defines V4RT_VERSION_MAJOR/MINOR/PATCH (from V4_VERSION)"
#endif
#define V4RT_STRINGIFY_(x) #x
#define V4RT_STRINGIFY(x) V4RT_STRINGIFY_(x)

struct v4rt_model_t {
  v4::rt::RefCount refs;
  std::unique_ptr<v4::rt::Model> model;
};

/// Holds a reference to its model, released after the session is freed.
struct v4rt_session_t {
  v4::rt::RefCount refs;
  v4rt_model_t *model = nullptr;
  std::unique_ptr<v4::rt::Session> session;
  ~v4rt_session_t() {
    session.reset(); // before the model it refers to
    v4rt_model_release(model);
  }
};

using v4::rt::fromStatus;
using v4::rt::makeStatus;

namespace {

/// V4RT_OUT_OF_RANGE unless `sequence` is a row of the session's batch.
v4rt_status_t checkSequence(const char *what, const v4rt_session_t &session,
                            int64_t sequence) {
  int64_t B = session.model->model->info().batch;
  if (sequence >= 0 && sequence < B)
    return nullptr;
  return makeStatus(V4RT_OUT_OF_RANGE,
                    std::string(what) + ": sequence " +
                        std::to_string(sequence) + " is outside [0, " +
                        std::to_string(B) + "), the compiled batch");
}

} // namespace

extern "C" {

const v4rt_version_t *v4rt_version(void) {
  static const v4rt_version_t version = {
      V4RT_VERSION_MAJOR, V4RT_VERSION_MINOR, V4RT_VERSION_PATCH,
      V4RT_ABI_VERSION,
      V4RT_STRINGIFY(V4RT_VERSION_MAJOR) "." V4RT_STRINGIFY(
          V4RT_VERSION_MINOR) "." V4RT_STRINGIFY(V4RT_VERSION_PATCH)};
  return &version;
}

v4rt_status_t v4rt_check_abi(int header_abi) {
  if (header_abi == V4RT_ABI_VERSION)
    return nullptr;
  return makeStatus(V4RT_INCOMPATIBLE,
                    "v4rt_check_abi: the program was compiled against the "
                    "v4rt.h of ABI version " +
                        std::to_string(header_abi) + ", but this libv4rt " +
                        v4rt_version()->string + " has ABI version " +
                        std::to_string(V4RT_ABI_VERSION) +
                        "; rebuild the program against this library's "
                        "header, or link the library of ABI " +
                        std::to_string(header_abi));
}

v4rt_status_code_t v4rt_status_code(v4rt_status_t status) {
  return status ? status->code : V4RT_OK;
}
const char *v4rt_status_message(v4rt_status_t status) {
  return status ? status->message.c_str() : "";
}
void v4rt_status_free(v4rt_status_t status) { delete status; }

void v4rt_model_options_initialize(v4rt_model_options_t *options) {
  if (options)
    *options = v4rt_model_options_t{sizeof(v4rt_model_options_t),
                                    nullptr,
                                    0,
                                    0,
                                    nullptr,
                                    0,
                                    nullptr,
                                    0,
                                    0,
                                    0};
}

v4rt_status_t v4rt_model_load(const char *artifact_path,
                              const v4rt_model_options_t *options,
                              v4rt_model_t **out_model) {
  if (!artifact_path || !out_model)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_model_load: artifact_path and out_model must not "
                      "be NULL");
  *out_model = nullptr;
  if (!options ||
      options->struct_size <
          offsetof(v4rt_model_options_t, memory_limit) + sizeof(uint64_t) ||
      options->struct_size > sizeof(v4rt_model_options_t))
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_model_load: options->struct_size " +
                          std::to_string(options ? options->struct_size : 0) +
                          " is not that of a v4rt_model_options_t (at most " +
                          std::to_string(sizeof(v4rt_model_options_t)) +
                          "): call v4rt_model_options_initialize [ARG]");
  // Only the fields the caller's struct_size covers; the rest default.
  v4rt_model_options_t o;
  v4rt_model_options_initialize(&o);
  std::memcpy(&o, options, options->struct_size);
  if (o.synthetic_weights != 0 && o.synthetic_weights != 1)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_model_load: options->synthetic_weights is " +
                          std::to_string(o.synthetic_weights) +
                          ", expected 0 or 1 [ARG]");
  if (!o.checkpoint_path && !o.synthetic_weights)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_model_load: options->checkpoint_path is required "
                      "(or options->synthetic_weights)");
  std::string expectedSha256;
  if (o.expected_sha256) {
    auto expected = v4::rt::normalizeSha256(o.expected_sha256);
    if (!expected)
      return fromStatus(expected.status());
    expectedSha256 = *expected;
  }
  if (!(o.collective_timeout_s >= 0))
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_model_load: options->collective_timeout_s is " +
                          std::to_string(o.collective_timeout_s) +
                          ", expected seconds >= 0 (0: the default) [ARG]");
  if (o.num_threads > v4::rt::kMaxThreads)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_model_load: options->num_threads " +
                          std::to_string(o.num_threads) + " is above " +
                          std::to_string(v4::rt::kMaxThreads) + " [ARG]");
  v4::rt::Model::LoadOptions load;
  if (o.checkpoint_path)
    load.checkpoint = o.checkpoint_path;
  if (o.synthetic_weights)
    load.syntheticSeed = o.synthetic_seed;
  load.memoryLimit = o.memory_limit;
  load.expectedSha256 = expectedSha256;
  load.threads = o.num_threads;
  load.collectiveTimeout = o.collective_timeout_s;
  if (o.device)
    load.device = o.device;
  auto model = v4::rt::Model::load(artifact_path, load);
  if (!model)
    return fromStatus(model.status());
  if (o.check_weights && !o.synthetic_weights)
    if (v4::Status s = v4::rt::scanWeights(o.checkpoint_path); !s)
      return fromStatus(s);
  auto handle = std::unique_ptr<v4rt_model_t>(new (std::nothrow) v4rt_model_t);
  if (!handle)
    return makeStatus(V4RT_RESOURCE_EXHAUSTED,
                      "v4rt_model_load: out of memory");
  handle->model = model.take();
  *out_model = handle.release();
  return nullptr;
}

void v4rt_model_retain(v4rt_model_t *model) { v4::rt::retainHandle(model); }

void v4rt_model_release(v4rt_model_t *model) { v4::rt::releaseHandle(model); }

v4rt_status_t v4rt_model_info(const v4rt_model_t *model,
                              v4rt_model_info_t *info) {
  if (!model)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_model_info: the model is NULL [ARG]");
  const v4::rt::ModelInfo &i = model->model->info();
  const v4::artifact::Artifact &a = model->model->artifact();
  v4::artifact::Artifact::MemoryTotals memory = a.memoryTotals();
  auto bytes = [](uint64_t n) { return static_cast<int64_t>(n); };
  v4rt_model_info_t full{};
  full.batch = i.batch;
  full.max_context = i.maxContext;
  full.max_chunk = i.maxChunk;
  full.vocab_size = i.vocabSize;
  full.num_outputs = i.numOutputs;
  full.logits_positions = i.logitsPositions;
  full.weights_mapped_bytes = bytes(i.weightsMapped);
  full.weights_prepared_bytes = bytes(i.weightsPrepared);
  full.bos_token_id = a.description().tokens.bos;
  full.eos_token_id = a.description().tokens.eos;
  full.weights_bytes = bytes(memory.weights);
  full.session_bytes = bytes(memory.session());
  full.session_state_bytes = bytes(memory.state);
  full.session_activation_bytes = bytes(memory.arena + memory.otherActivations);
  full.session_io_bytes = bytes(memory.io);
  full.numerics = v4::numericsModeName(a.description().numerics);
  full.fake_quant = v4::fakeQuantModeName(a.description().fakeQuant);
  full.num_threads = model->model->device().numThreads();
  full.synthetic_weights = i.syntheticWeights ? 1 : 0;
  full.synthetic_seed = i.syntheticSeed;
  full.rank = model->model->rank();
  full.world_size = a.worldSize();
  full.data_parallel_attention = a.description().dataParallelAttention ? 1 : 0;
  full.expert_parallel = a.description().expertParallel;
  full.tensor_parallel = a.description().tensorParallel;
  return v4::rt::copyInfo("v4rt_model_info", full, info,
                          offsetof(v4rt_model_info_t, session_io_bytes) +
                              sizeof(int64_t));
}

v4rt_status_t v4rt_session_create(v4rt_model_t *model,
                                  v4rt_session_t **out_session) {
  if (!model || !out_session)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_session_create: model and out_session must not "
                      "be NULL");
  *out_session = nullptr;
  auto session = v4::rt::Session::create(*model->model);
  if (!session)
    return fromStatus(session.status());
  auto handle =
      std::unique_ptr<v4rt_session_t>(new (std::nothrow) v4rt_session_t);
  if (!handle)
    return makeStatus(V4RT_RESOURCE_EXHAUSTED,
                      "v4rt_session_create: out of memory");
  handle->session = session.take();
  v4rt_model_retain(model);
  handle->model = model;
  *out_session = handle.release();
  return nullptr;
}

void v4rt_session_retain(v4rt_session_t *session) {
  v4::rt::retainHandle(session);
}

void v4rt_session_release(v4rt_session_t *session) {
  v4::rt::releaseHandle(session);
}

v4rt_status_t v4rt_session_reset(v4rt_session_t *session) {
  if (!session)
    return makeStatus(V4RT_INVALID_ARGUMENT, "v4rt_session_reset: NULL");
  return fromStatus(session->session->reset());
}

v4rt_status_t v4rt_session_reset_sequence(v4rt_session_t *session,
                                          int64_t sequence) {
  if (!session)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_session_reset_sequence: NULL");
  if (v4rt_status_t st =
          checkSequence("v4rt_session_reset_sequence", *session, sequence))
    return st;
  return fromStatus(session->session->resetSequence(sequence));
}

v4rt_status_t v4rt_session_position(const v4rt_session_t *session,
                                    int64_t sequence, int64_t *out_position) {
  if (!session || !out_position)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_session_position: session and out_position must "
                      "not be NULL [ARG]");
  if (v4rt_status_t st =
          checkSequence("v4rt_session_position", *session, sequence))
    return st;
  *out_position = session->session->position(sequence);
  return nullptr;
}

v4rt_status_t v4rt_session_set_profiling(v4rt_session_t *session, int enabled) {
  if (!session)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_session_set_profiling: session must not be NULL "
                      "[ARG]");
  session->session->setProfiling(enabled != 0);
  return nullptr;
}

v4rt_status_t v4rt_session_profile(const v4rt_session_t *session,
                                   v4rt_profile_entry_t *entries,
                                   size_t capacity, size_t *out_count) {
  if (!session || !out_count || (capacity && !entries))
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_session_profile: session and out_count must not "
                      "be NULL, nor entries when capacity is not 0 [ARG]");
  std::vector<v4::rt::Session::ProfileEntry> measured =
      session->session->profile();
  *out_count = measured.size();
  for (size_t i = 0; i < measured.size() && i < capacity; ++i)
    entries[i] = {measured[i].name, int32_t(measured[i].kind),
                  measured[i].oneToken ? 1 : 0, measured[i].calls,
                  measured[i].seconds};
  return nullptr;
}

v4rt_status_t v4rt_session_run(v4rt_session_t *session, const int64_t *ids,
                               const int64_t *next_ids, int64_t tokens,
                               float *logits, size_t logits_capacity,
                               float *mtp_logits, size_t mtp_capacity) {
  if (!session || !ids || !logits)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_session_run: session, ids and logits must not be "
                      "NULL");
  const v4::rt::ModelInfo &info = session->model->model->info();
  if (tokens < 1 || tokens > info.maxChunk)
    return makeStatus(V4RT_OUT_OF_RANGE,
                      "v4rt_session_run: tokens = " + std::to_string(tokens) +
                          " is outside [1, " + std::to_string(info.maxChunk) +
                          "], the compiled chunk bound");
  for (int64_t b = 0; b < info.batch; ++b) {
    int64_t position = session->session->position(b);
    if (position + tokens > info.maxContext)
      return makeStatus(
          V4RT_OUT_OF_RANGE,
          "v4rt_session_run: sequence " + std::to_string(b) + " at position " +
              std::to_string(position) + " + " + std::to_string(tokens) +
              " tokens exceeds the compiled maximum context " +
              std::to_string(info.maxContext) +
              "; recompile with a larger --max-context, or reset the "
              "sequence");
  }
  const int64_t B = info.batch, V = info.vocabSize;
  const int64_t positions = info.logitsPositions ? 1 : tokens;
  const size_t need = static_cast<size_t>(B * positions * V);
  if (logits_capacity < need || (mtp_logits && mtp_capacity < need))
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      std::string("v4rt_session_run: the logits buffers hold "
                                  "fewer than batch x ") +
                          (info.logitsPositions ? "1" : "tokens") +
                          " x vocab = " + std::to_string(need) + " floats");
  if (mtp_logits && info.numOutputs < 2)
    return makeStatus(V4RT_FAILED_PRECONDITION,
                      "v4rt_session_run: the model has no MTP block");
  for (int64_t i = 0; i < B * tokens; ++i)
    if (ids[i] < 0 || ids[i] >= V ||
        (next_ids && (next_ids[i] < 0 || next_ids[i] >= V)))
      return makeStatus(V4RT_INVALID_ARGUMENT,
                        "v4rt_session_run: ids[" + std::to_string(i) +
                            "] is outside [0, " + std::to_string(V) +
                            "), the vocabulary");
  std::vector<int64_t> start(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b)
    start[b] = session->session->position(b);
  if (v4::Status s =
          session->session->run(ids, next_ids, tokens, logits, mtp_logits);
      !s)
    return fromStatus(s);
  // VAL-2: a NaN or an Inf in the logits is an error, not a token (the
  // sampler would read them anyway; the scan costs as much).
  const float *outputs[2] = {logits, mtp_logits};
  for (const float *out : outputs) {
    if (!out)
      continue;
    for (size_t i = 0; i < need; ++i) {
      if (std::isfinite(out[i]))
        continue;
      int64_t b = static_cast<int64_t>(i) / (positions * V);
      int64_t row = static_cast<int64_t>(i) / V % positions;
      int64_t position = start[b] + (info.logitsPositions ? tokens - 1 : row);
      return makeStatus(
          V4RT_FAILED_PRECONDITION,
          std::string("v4rt_session_run: the ") +
              (out == logits ? "logits" : "MTP logits") + " of sequence " +
              std::to_string(b) + " at position " + std::to_string(position) +
              " hold " + (std::isnan(out[i]) ? "NaN" : "Inf") + " (token id " +
              std::to_string(i % V) +
              "): the weights or the numerics are broken; load with "
              "check_weights (v4-run --check-weights) to find a non-finite "
              "weight [VAL-2]");
    }
  }
  return nullptr;
}

} // extern "C"
