//===- TokenizerApi.cpp - the v4rt C API of tokenizers and chat -----------===//
//
// Handles and argument checks over runtime/tokenizer (Tokenizer,
// StreamDecoder, encodeV4Chat).
//
//===----------------------------------------------------------------------===//
#include "v4rt/v4rt.h"

#include "runtime/src/ApiStatus.h"
#include "runtime/tokenizer/ChatEncoding.h"
#include "runtime/tokenizer/Tokenizer.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>

struct v4rt_tokenizer_t {
  v4::rt::RefCount refs;
  std::unique_ptr<v4::tokenizer::Tokenizer> tokenizer;
};

/// Holds a reference to its tokenizer, released after the stream is freed.
struct v4rt_detokenizer_t {
  v4::rt::RefCount refs;
  v4rt_tokenizer_t *tokenizer = nullptr;
  std::unique_ptr<v4::tokenizer::StreamDecoder> stream;
  std::string text;
  ~v4rt_detokenizer_t() {
    stream.reset(); // before the tokenizer it refers to
    v4rt_tokenizer_release(tokenizer);
  }
};

using v4::rt::fromStatus;
using v4::rt::makeStatus;

namespace {

/// Copies `text` into the caller's buffer: the length always, the bytes when
/// they fit.
v4rt_status_t copyOut(const char *what, const std::string &text, char *out,
                      size_t capacity, size_t *outLength) {
  *outLength = text.size();
  if (out)
    std::memcpy(out, text.data(), std::min(capacity, text.size()));
  if (text.size() > capacity)
    return makeStatus(
        V4RT_OUT_OF_RANGE,
        std::string(what) + ": the text is " + std::to_string(text.size()) +
            " bytes, the buffer holds " + std::to_string(capacity) + " [ARG]");
  return nullptr;
}

} // namespace

extern "C" {

v4rt_status_t v4rt_tokenizer_load(const char *path,
                                  v4rt_tokenizer_t **out_tokenizer) {
  if (!path || !out_tokenizer)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_tokenizer_load: path and out_tokenizer must not "
                      "be NULL [ARG]");
  *out_tokenizer = nullptr;
  auto tokenizer = v4::tokenizer::Tokenizer::load(path);
  if (!tokenizer)
    return fromStatus(tokenizer.status());
  auto handle =
      std::unique_ptr<v4rt_tokenizer_t>(new (std::nothrow) v4rt_tokenizer_t());
  if (!handle)
    return makeStatus(V4RT_RESOURCE_EXHAUSTED,
                      "v4rt_tokenizer_load: out of memory");
  handle->tokenizer = tokenizer.take();
  *out_tokenizer = handle.release();
  return nullptr;
}

void v4rt_tokenizer_retain(v4rt_tokenizer_t *tokenizer) {
  v4::rt::retainHandle(tokenizer);
}

void v4rt_tokenizer_release(v4rt_tokenizer_t *tokenizer) {
  v4::rt::releaseHandle(tokenizer);
}

v4rt_status_t v4rt_tokenizer_info(const v4rt_tokenizer_t *tokenizer,
                                  v4rt_tokenizer_info_t *info) {
  if (!tokenizer)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_tokenizer_info: the tokenizer is NULL [ARG]");
  const auto &t = *tokenizer->tokenizer;
  v4rt_tokenizer_info_t full{};
  full.vocab_size = t.vocabSize();
  full.bos_id = t.bosId().value_or(-1);
  full.eos_id = t.eosId().value_or(-1);
  return v4::rt::copyInfo("v4rt_tokenizer_info", full, info,
                          offsetof(v4rt_tokenizer_info_t, eos_id) +
                              sizeof(int32_t));
}

v4rt_status_t v4rt_tokenizer_encode(const v4rt_tokenizer_t *tokenizer,
                                    const char *text, size_t length,
                                    int32_t *ids, size_t capacity,
                                    size_t *out_count) {
  if (!tokenizer || (!text && length) || !out_count || (!ids && capacity))
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_tokenizer_encode: tokenizer, text, ids and "
                      "out_count must not be NULL [ARG]");
  std::vector<int32_t> result;
  if (v4::Status st = tokenizer->tokenizer->encode(
          std::string_view(text ? text : "", length), result);
      !st)
    return fromStatus(st);
  *out_count = result.size();
  std::copy_n(result.begin(), std::min(capacity, result.size()), ids);
  if (result.size() > capacity)
    return makeStatus(
        V4RT_OUT_OF_RANGE,
        "v4rt_tokenizer_encode: " + std::to_string(result.size()) +
            " ids, capacity " + std::to_string(capacity) + " [ARG]");
  return nullptr;
}

v4rt_status_t v4rt_tokenizer_decode(const v4rt_tokenizer_t *tokenizer,
                                    const int32_t *ids, size_t count,
                                    char *text, size_t capacity,
                                    size_t *out_length) {
  if (!tokenizer || (!ids && count) || !out_length || (!text && capacity))
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_tokenizer_decode: tokenizer, ids, text and "
                      "out_length must not be NULL [ARG]");
  std::string result;
  if (v4::Status st = tokenizer->tokenizer->decode(ids, count, result); !st)
    return fromStatus(st);
  return copyOut("v4rt_tokenizer_decode", result, text, capacity, out_length);
}

v4rt_status_t v4rt_tokenizer_token_id(const v4rt_tokenizer_t *tokenizer,
                                      const char *token, int32_t *out_id) {
  if (!tokenizer || !token || !out_id)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_tokenizer_token_id: arguments must not be NULL "
                      "[ARG]");
  auto id = tokenizer->tokenizer->tokenId(token);
  if (!id)
    return makeStatus(V4RT_NOT_FOUND, std::string("token '") + token +
                                          "' is not in the vocabulary of " +
                                          tokenizer->tokenizer->source() +
                                          " [ARG]");
  *out_id = *id;
  return nullptr;
}

v4rt_status_t v4rt_detokenizer_create(v4rt_tokenizer_t *tokenizer,
                                      v4rt_detokenizer_t **out_detokenizer) {
  if (!tokenizer || !out_detokenizer)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_detokenizer_create: arguments must not be NULL "
                      "[ARG]");
  auto handle = std::unique_ptr<v4rt_detokenizer_t>(new (std::nothrow)
                                                        v4rt_detokenizer_t());
  if (!handle)
    return makeStatus(V4RT_RESOURCE_EXHAUSTED,
                      "v4rt_detokenizer_create: out of memory");
  handle->stream =
      std::make_unique<v4::tokenizer::StreamDecoder>(*tokenizer->tokenizer);
  v4rt_tokenizer_retain(tokenizer);
  handle->tokenizer = tokenizer;
  *out_detokenizer = handle.release();
  return nullptr;
}

void v4rt_detokenizer_retain(v4rt_detokenizer_t *detokenizer) {
  v4::rt::retainHandle(detokenizer);
}

void v4rt_detokenizer_release(v4rt_detokenizer_t *detokenizer) {
  v4::rt::releaseHandle(detokenizer);
}

v4rt_status_t v4rt_detokenizer_push(v4rt_detokenizer_t *detokenizer, int32_t id,
                                    const char **out_text, size_t *out_length) {
  if (!detokenizer || !out_text || !out_length)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_detokenizer_push: arguments must not be NULL "
                      "[ARG]");
  detokenizer->text.clear();
  v4::Status st = detokenizer->stream->push(id, detokenizer->text);
  *out_text = detokenizer->text.data();
  *out_length = detokenizer->text.size();
  return fromStatus(st);
}

v4rt_status_t v4rt_detokenizer_finish(v4rt_detokenizer_t *detokenizer,
                                      const char **out_text,
                                      size_t *out_length) {
  if (!detokenizer || !out_text || !out_length)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_detokenizer_finish: arguments must not be NULL "
                      "[ARG]");
  detokenizer->text.clear();
  detokenizer->stream->finish(detokenizer->text);
  *out_text = detokenizer->text.data();
  *out_length = detokenizer->text.size();
  return nullptr;
}

void v4rt_chat_options_initialize(v4rt_chat_options_t *options) {
  if (options)
    *options = v4rt_chat_options_t{0, 1, 1, nullptr};
}

v4rt_status_t v4rt_chat_encode_v4(const v4rt_chat_message_t *messages,
                                  size_t count,
                                  const v4rt_chat_options_t *options,
                                  char *text, size_t capacity,
                                  size_t *out_length) {
  if ((!messages && count) || !options || !out_length || (!text && capacity))
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_chat_encode_v4: messages, options, text and "
                      "out_length must not be NULL [ARG]");
  std::vector<v4::tokenizer::ChatMessage> list;
  for (size_t i = 0; i < count; ++i) {
    if (!messages[i].role || !messages[i].content)
      return makeStatus(V4RT_INVALID_ARGUMENT,
                        "v4rt_chat_encode_v4: message " + std::to_string(i) +
                            " needs a role and content [ARG]");
    v4::tokenizer::ChatMessage m{messages[i].role, messages[i].content,
                                 std::nullopt};
    if (messages[i].reasoning)
      m.reasoning = std::string(messages[i].reasoning);
    list.push_back(std::move(m));
  }
  v4::tokenizer::ChatOptions chat;
  chat.thinking = options->thinking != 0;
  chat.dropThinking = options->drop_thinking != 0;
  chat.addBos = options->add_bos != 0;
  if (options->reasoning_effort)
    chat.reasoningEffort = options->reasoning_effort;
  auto prompt = v4::tokenizer::encodeV4Chat(list, chat);
  if (!prompt)
    return fromStatus(prompt.status());
  return copyOut("v4rt_chat_encode_v4", *prompt, text, capacity, out_length);
}

} // extern "C"
