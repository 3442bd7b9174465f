//===- ChatEncoding.cpp - DeepSeek-V4's chat prompt encoding --------------===//
//
// Mirrors encode_messages of DeepSeek's encoding_dsv4 step by step (merge
// consecutive user turns, drop earlier reasoning, render each message, the
// transition after a user turn); test/runtime/Inputs/chat holds the
// reference's output for a set of conversations.
//
//===----------------------------------------------------------------------===//
#include "runtime/tokenizer/ChatEncoding.h"

namespace v4::tokenizer {

namespace {

/// The reasoning-effort "max" preamble of the V4 release.
constexpr const char *kReasoningEffortMax =
    "Reasoning Effort: Absolute maximum with no shortcuts permitted.\n"
    "You MUST be very thorough in your thinking and comprehensively decompose "
    "the problem to resolve the root cause, rigorously stress-testing your "
    "logic against all potential paths, edge cases, and adversarial "
    "scenarios.\n"
    "Explicitly write out your entire deliberation process, documenting "
    "every intermediate step, considered alternative, and rejected "
    "hypothesis to ensure absolutely no assumption is left unchecked.\n\n";

/// A message after preprocessing: a user turn holds its text blocks.
struct Turn {
  std::string role;
  std::vector<std::string> blocks; // user: merged contents
  std::string content;
  std::optional<std::string> reasoning;
};

int lastUserIndex(const std::vector<Turn> &turns) {
  for (int i = static_cast<int>(turns.size()) - 1; i >= 0; --i)
    if (turns[i].role == "user" || turns[i].role == "developer")
      return i;
  return -1;
}

/// _drop_thinking_messages: before the last user turn, assistants lose
/// their reasoning and developer turns are dropped.
std::vector<Turn> dropThinking(std::vector<Turn> turns) {
  int last = lastUserIndex(turns);
  std::vector<Turn> out;
  for (int i = 0; i < static_cast<int>(turns.size()); ++i) {
    Turn &t = turns[i];
    if (t.role == "user" || t.role == "system" || t.role == "latest_reminder" ||
        i >= last) {
      out.push_back(std::move(t));
    } else if (t.role == "assistant") {
      t.reasoning.reset();
      out.push_back(std::move(t));
    }
  }
  return out;
}

std::string render(int index, const std::vector<Turn> &turns,
                   const ChatOptions &options, bool drop) {
  using namespace v4chat;
  std::string prompt;
  const Turn &t = turns[index];
  int last = lastUserIndex(turns);
  if (index == 0 && options.thinking && options.reasoningEffort == "max")
    prompt += kReasoningEffortMax;

  if (t.role == "system") {
    prompt += t.content;
  } else if (t.role == "developer") {
    prompt += kUser;
    prompt += t.content;
  } else if (t.role == "user") {
    prompt += kUser;
    for (size_t i = 0; i < t.blocks.size(); ++i) {
      if (i)
        prompt += "\n\n";
      prompt += t.blocks[i];
    }
  } else if (t.role == "latest_reminder") {
    prompt += kLatestReminder;
    prompt += t.content;
  } else { // assistant
    if (options.thinking && (!drop || index > last)) {
      prompt += t.reasoning.value_or("");
      prompt += kThinkEnd;
    }
    prompt += t.content;
    prompt += kEos;
  }

  if (index + 1 < static_cast<int>(turns.size()) &&
      turns[index + 1].role != "assistant" &&
      turns[index + 1].role != "latest_reminder")
    return prompt;
  if (t.role == "user" || t.role == "developer") {
    prompt += kAssistant;
    bool think = options.thinking && (!drop || index >= last);
    prompt += think ? kThinkStart : kThinkEnd;
  }
  return prompt;
}

} // namespace

Expected<std::string> encodeV4Chat(const std::vector<ChatMessage> &messages,
                                   const ChatOptions &options) {
  const std::string &effort = options.reasoningEffort;
  if (!effort.empty() && effort != "high" && effort != "max")
    return Status::error("TK-11", "chat encoding: reasoning effort '" + effort +
                                      "' is not one of high, max");
  // merge_tool_messages: consecutive user turns merge into one.
  std::vector<Turn> turns;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage &m = messages[i];
    if (m.role == "user") {
      if (!turns.empty() && turns.back().role == "user") {
        turns.back().blocks.push_back(m.content);
        continue;
      }
      turns.push_back({m.role, {m.content}, m.content, std::nullopt});
    } else if (m.role == "system" || m.role == "assistant" ||
               m.role == "latest_reminder" || m.role == "developer") {
      if (m.role == "developer" && m.content.empty())
        return Status::error("TK-11", "chat encoding: message " +
                                          std::to_string(i) +
                                          ": a developer message needs "
                                          "content");
      turns.push_back({m.role, {}, m.content, m.reasoning});
    } else {
      return Status::error("TK-11", "chat encoding: message " +
                                        std::to_string(i) + ": role '" +
                                        m.role +
                                        "' is not supported (system, user, "
                                        "developer, assistant, "
                                        "latest_reminder)");
    }
  }
  bool drop = options.dropThinking;
  if (options.thinking && drop)
    turns = dropThinking(std::move(turns));
  std::string prompt = options.addBos ? v4chat::kBos : "";
  for (int i = 0; i < static_cast<int>(turns.size()); ++i)
    prompt += render(i, turns, options, drop);
  return prompt;
}

} // namespace v4::tokenizer
