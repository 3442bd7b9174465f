//===- ChatEncoding.h - DeepSeek-V4's chat prompt encoding ------*- C++ -*-===//
//
// The prompt string of a conversation for DeepSeek-V4, following the
// `encoding_dsv4` module DeepSeek published with the V4 release
// (encode_messages): BOS, the system prompt, <｜User｜>…<｜Assistant｜>
// turns, chat mode (</think> after <｜Assistant｜>) or thinking mode
// (<think>, the reasoning, </think>), the reasoning-effort preamble of
// effort "max", and earlier turns' reasoning dropped (drop_thinking).
// Consecutive user messages merge into one turn joined by a blank line, as
// the reference's merge_tool_messages does. Tool schemas, tool calls, tool
// results and internal task tokens are not encoded here (refused with
// TK-11). The result is text; Tokenizer::encode turns it into ids (the
// special tokens in it are added tokens).
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_TOKENIZER_CHATENCODING_H
#define V4_RUNTIME_TOKENIZER_CHATENCODING_H

#include "runtime/base/Status.h"

#include <optional>
#include <string>
#include <vector>

namespace v4::tokenizer {

struct ChatMessage {
  /// "system", "user", "developer", "assistant" or "latest_reminder".
  std::string role;
  std::string content;
  /// An assistant turn's reasoning (thinking mode).
  std::optional<std::string> reasoning;
};

struct ChatOptions {
  bool thinking = false;    ///< thinking mode (else chat mode)
  bool dropThinking = true; ///< drop reasoning of turns before the last user
  bool addBos = true;
  /// "", "high" or "max" (only "max" adds a preamble, in thinking mode).
  std::string reasoningEffort;
};

namespace v4chat {
constexpr const char *kBos = "<｜begin▁of▁sentence｜>";
constexpr const char *kEos = "<｜end▁of▁sentence｜>";
constexpr const char *kUser = "<｜User｜>";
constexpr const char *kAssistant = "<｜Assistant｜>";
constexpr const char *kThinkStart = "<think>";
constexpr const char *kThinkEnd = "</think>";
constexpr const char *kLatestReminder = "<｜latest_reminder｜>";
} // namespace v4chat

/// The V4 prompt of `messages`; TK-11 for a role or option it does not
/// encode.
Expected<std::string> encodeV4Chat(const std::vector<ChatMessage> &messages,
                                   const ChatOptions &options);

} // namespace v4::tokenizer

#endif // V4_RUNTIME_TOKENIZER_CHATENCODING_H
