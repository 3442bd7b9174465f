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
#include "runtime/src/Model.h"
#include "runtime/src/Session.h"

#include <atomic>
#include <memory>
#include <new>
#include <string>

struct v4rt_model_t {
  std::atomic<int> refs{1};
  std::unique_ptr<v4::rt::Model> model;
};

struct v4rt_session_t {
  v4rt_model_t *model = nullptr;
  std::unique_ptr<v4::rt::Session> session;
};

using v4::rt::fromStatus;
using v4::rt::makeStatus;

extern "C" {

v4rt_status_code_t v4rt_status_code(v4rt_status_t status) {
  return status ? status->code : V4RT_OK;
}
const char *v4rt_status_message(v4rt_status_t status) {
  return status ? status->message.c_str() : "";
}
void v4rt_status_free(v4rt_status_t status) { delete status; }

void v4rt_model_options_initialize(v4rt_model_options_t *options) {
  if (options)
    *options = v4rt_model_options_t{nullptr, 0};
}

v4rt_status_t v4rt_model_load(const char *artifact_path,
                              const v4rt_model_options_t *options,
                              v4rt_model_t **out_model) {
  if (!artifact_path || !out_model)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_model_load: artifact_path and out_model must not "
                      "be NULL");
  *out_model = nullptr;
  if (!options || !options->checkpoint_path)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_model_load: options->checkpoint_path is required");
  auto model = v4::rt::Model::load(artifact_path, options->checkpoint_path,
                                   options->memory_limit);
  if (!model)
    return fromStatus(model.status());
  auto handle = std::unique_ptr<v4rt_model_t>(new (std::nothrow) v4rt_model_t);
  if (!handle)
    return makeStatus(V4RT_RESOURCE_EXHAUSTED,
                      "v4rt_model_load: out of memory");
  handle->model = model.take();
  *out_model = handle.release();
  return nullptr;
}

void v4rt_model_retain(v4rt_model_t *model) {
  if (model)
    model->refs.fetch_add(1);
}

void v4rt_model_release(v4rt_model_t *model) {
  if (model && model->refs.fetch_sub(1) == 1)
    delete model;
}

void v4rt_model_info(const v4rt_model_t *model, v4rt_model_info_t *out_info) {
  if (!model || !out_info)
    return;
  const v4::rt::ModelInfo &i = model->model->info();
  *out_info = v4rt_model_info_t{i.batch,
                                i.maxContext,
                                i.maxChunk,
                                i.vocabSize,
                                i.numOutputs,
                                i.logitsPositions,
                                static_cast<int64_t>(i.weightsMapped),
                                static_cast<int64_t>(i.weightsPrepared),
                                -1,
                                -1};
  const auto &tokens = model->model->artifact().description().tokens;
  out_info->bos_token_id = tokens.bos;
  out_info->eos_token_id = tokens.eos;
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

void v4rt_session_release(v4rt_session_t *session) {
  if (!session)
    return;
  v4rt_model_t *model = session->model;
  delete session; // before the model it refers to
  v4rt_model_release(model);
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
  int64_t B = session->model->model->info().batch;
  if (sequence < 0 || sequence >= B)
    return makeStatus(V4RT_OUT_OF_RANGE,
                      "v4rt_session_reset_sequence: sequence " +
                          std::to_string(sequence) + " is outside [0, " +
                          std::to_string(B) + "), the compiled batch");
  return fromStatus(session->session->resetSequence(sequence));
}

int64_t v4rt_session_position(const v4rt_session_t *session) {
  return session ? session->session->position(0) : 0;
}

int64_t v4rt_session_sequence_position(const v4rt_session_t *session,
                                       int64_t sequence) {
  if (!session || sequence < 0 ||
      sequence >= session->model->model->info().batch)
    return -1;
  return session->session->position(sequence);
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
  return fromStatus(
      session->session->run(ids, next_ids, tokens, logits, mtp_logits));
}

} // extern "C"
