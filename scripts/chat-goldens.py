#!/usr/bin/env python3
"""Writes the V4 chat-encoding goldens with DeepSeek's reference encoder.

The reference is `encoding/encoding_dsv4.py` of the DeepSeek-V4 release
(not part of this repository; pass the folder that holds it):

  scripts/chat-goldens.py /path/to/encoding test/runtime/Inputs/tokenizer/v4-chat.golden.json

Each case: messages, options (thinking, drop_thinking, add_bos,
reasoning_effort) and the prompt encode_messages returns.
"""
import json
import sys

CONVERSATIONS = [
    ("single user", [{"role": "user", "content": "Hello!"}]),
    ("system and user", [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is 2+2?"}]),
    ("multi-turn", [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."}]),
    ("multi-turn with reasoning", [
        {"role": "user", "content": "1+1=?"},
        {"role": "assistant", "content": "2", "reasoning_content": "Adding one and one."},
        {"role": "user", "content": "And 2+2?"},
        {"role": "assistant", "content": "4", "reasoning_content": "Two plus two."},
        {"role": "user", "content": "Thanks. 3+3?"}]),
    ("last assistant turn kept", [
        {"role": "user", "content": "Question"},
        {"role": "assistant", "content": "Answer", "reasoning_content": "Thinking about it."}]),
    ("consecutive users merge", [
        {"role": "user", "content": "First part."},
        {"role": "user", "content": "Second part."}]),
    ("unicode content", [
        {"role": "system", "content": "你是一个有用的助手。"},
        {"role": "user", "content": "こんにちは 👋 Привет\nnew line"}]),
    ("empty user", [{"role": "user", "content": ""}]),
    ("developer turn", [
        {"role": "developer", "content": "Follow the rules."},
        {"role": "user", "content": "ok"}]),
    ("system only", [{"role": "system", "content": "System prompt alone."}]),
]

OPTIONS = [
    {"thinking": False, "drop_thinking": True, "add_bos": True, "reasoning_effort": None},
    {"thinking": True, "drop_thinking": True, "add_bos": True, "reasoning_effort": None},
    {"thinking": True, "drop_thinking": True, "add_bos": True, "reasoning_effort": "max"},
    {"thinking": True, "drop_thinking": False, "add_bos": True, "reasoning_effort": "high"},
    {"thinking": False, "drop_thinking": True, "add_bos": False, "reasoning_effort": None},
]


def main():
    sys.path.insert(0, sys.argv[1])
    from encoding_dsv4 import encode_messages  # noqa: E402

    cases = []
    for name, messages in CONVERSATIONS:
        for opt in OPTIONS:
            prompt = encode_messages(
                [dict(m) for m in messages],
                thinking_mode="thinking" if opt["thinking"] else "chat",
                drop_thinking=opt["drop_thinking"],
                add_default_bos_token=opt["add_bos"],
                reasoning_effort=opt["reasoning_effort"])
            cases.append({"name": name, "messages": messages, "options": opt,
                          "prompt": prompt})
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write('{"generator": "encoding_dsv4.encode_messages (DeepSeek-V4 release)",\n "cases": [\n')
        f.write(",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in cases))
        f.write("\n]}\n")
    print(f"{sys.argv[2]}: {len(cases)} cases")


if __name__ == "__main__":
    main()
