//===- v4-run.cpp - run a compiled model through the v4rt C API -----------===//
//
//   v4-run model.v4a --checkpoint DIR --prompt-ids 1,2,3 --max-new-tokens N
//          [--chunk C] [--temperature T --top-p P --seed S]
//          [--dump-logits FILE.npy] [--check-weights] [--expect-sha256 HEX]
//   v4-run model.v4a --synthetic-weights SEED ... (instead of --checkpoint)
//   v4-run model.v4a --checkpoint DIR (--prompt TEXT | --chat MESSAGE
//          [--system TEXT] [--thinking] [--reasoning-effort max|high])
//          [--tokenizer DIR] [--max-new-tokens N] [--stop STRING]...
//
// Prefills the prompt in chunks, then decodes N tokens one at a time. With
// ids, prints the generated ids and the prefill and decode throughput; with
// --dump-logits, writes the float32 logits of every prompt position and
// every generated step as a [steps, vocab] .npy array (batch row 0).
// With text (--prompt: BOS + the text; --chat: DeepSeek-V4's chat encoding),
// the tokenizer is DIR/tokenizer.json of the checkpoint or --tokenizer; the
// generated text streams to stdout as it is generated (whole UTF-8
// characters), generation stops at EOS, --max-new-tokens or a --stop string
// (not printed), and the timing report, with load time, goes to stderr.
// --synthetic-weights SEED binds deterministic synthetic weights of the
// manifest's dtypes and scale formats instead of a checkpoint (models that
// cannot travel with their weights; text needs --tokenizer then).
// Uses only the public C API. Exit codes: 0 ok, 1 rejected input or model,
// 2 bad command line, 3 I/O.
//
//===----------------------------------------------------------------------===//
#include "runtime/base/Bytes.h"
#include "runtime/base/OutputFile.h"
#include "tools/common/CommandLine.h"
#include "v4rt/v4rt.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

/// Writes a float32 [rows, cols] array in the .npy format (version 1.0)
/// through the tools' one output writer (base/OutputFile.h).
v4::Status writeNpy(const std::string &path, const std::vector<float> &data,
                    int64_t rows, int64_t cols) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       std::to_string(rows) + ", " + std::to_string(cols) +
                       "), }";
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  uint16_t len = static_cast<uint16_t>(header.size());
  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes.append(reinterpret_cast<const char *>(&len), 2);
  bytes += header;
  bytes.append(reinterpret_cast<const char *>(data.data()),
               data.size() * sizeof(float));
  return v4::writeOutputFile(path, bytes);
}

/// Reads a float32 [rows, cols] .npy array (version 1.x, little-endian,
/// C order) as --dump-logits writes it; an error names the file and what
/// is wrong with it.
v4::Expected<std::vector<float>> readNpy(const std::string &path, int64_t &rows,
                                         int64_t &cols) {
  auto bad = [&](const std::string &why) {
    return v4::Status::error(v4::StatusCode::InvalidArgument, "ARG",
                             "--compare-logits " + path + ": " + why);
  };
  std::FILE *f = std::fopen(path.c_str(), "rb");
  if (!f)
    return bad(std::strerror(errno));
  std::string bytes;
  char buf[65536];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;)
    bytes.append(buf, n);
  std::fclose(f);
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0 ||
      bytes[6] != 1)
    return bad("not a version 1 .npy file");
  size_t len = uint8_t(bytes[8]) | size_t(uint8_t(bytes[9])) << 8;
  if (10 + len > bytes.size())
    return bad("truncated header");
  std::string header = bytes.substr(10, len);
  if (header.find("'descr': '<f4'") == std::string::npos ||
      header.find("'fortran_order': False") == std::string::npos)
    return bad("expected a little-endian float32 array in C order");
  long long r = 0, c = 0;
  size_t at = header.find("'shape': (");
  if (at == std::string::npos ||
      std::sscanf(header.c_str() + at + 10, "%lld, %lld)", &r, &c) != 2 ||
      r < 1 || c < 1)
    return bad("expected a 2-D shape (rows, vocab)");
  size_t data = 10 + len;
  if (bytes.size() - data != size_t(r) * size_t(c) * sizeof(float))
    return bad("holds " + std::to_string(bytes.size() - data) +
               " data bytes, not the " +
               std::to_string(size_t(r) * size_t(c) * sizeof(float)) +
               " of its shape");
  std::vector<float> out(size_t(r) * size_t(c));
  std::memcpy(out.data(), bytes.data() + data, out.size() * sizeof(float));
  rows = r;
  cols = c;
  return out;
}

int fail(v4rt_status_t status) {
  v4rt_status_code_t code = v4rt_status_code(status);
  std::fprintf(stderr, "v4-run: error: %s\n", v4rt_status_message(status));
  v4rt_status_free(status);
  return code == V4RT_NOT_FOUND || code == V4RT_UNAVAILABLE ? 3 : 1;
}

/// Whether `text` is a decimal integer in [0, 2^64).
bool isUint64(const std::string &text) {
  if (text.empty() || text.size() > 20 ||
      !std::all_of(text.begin(), text.end(),
                   [](unsigned char c) { return std::isdigit(c) != 0; }))
    return false;
  return text.size() < 20 || text <= "18446744073709551615";
}

/// "weights: synthetic, seed S\n" for synthetic weights, else where the
/// checkpoint's bytes are: served mapped, or copied (prepared).
std::string weightsLine(const v4rt_model_info_t &info) {
  if (!info.synthetic_weights)
    return "weights: " + v4::formatBytes(uint64_t(info.weights_mapped_bytes)) +
           " mapped from the checkpoint, " +
           v4::formatBytes(uint64_t(info.weights_prepared_bytes)) +
           " prepared\n";
  return "weights: synthetic, seed " + std::to_string(info.synthetic_seed) +
         "\n";
}

/// The folder of the tokenizer: --tokenizer, else the checkpoint's folder.
/// --profile: where the time of the one-token calls (decode) and of the
/// chunks (prefill) went, per call, by kernel or collective, most first:
/// the rows that make up 99% of the steps' time, the rest summed; and the
/// time of the calls outside their steps (inputs, outputs, the API).
v4rt_status_t printProfile(const v4rt_session_t *session, FILE *out) {
  size_t n = 0;
  if (v4rt_status_t s = v4rt_session_profile(session, nullptr, 0, &n))
    return s;
  std::vector<v4rt_profile_entry_t> entries(n);
  if (v4rt_status_t s = v4rt_session_profile(session, entries.data(), n, &n))
    return s;
  for (int oneToken : {0, 1}) {
    const v4rt_profile_entry_t *call = nullptr;
    double total = 0;
    std::vector<const v4rt_profile_entry_t *> rows;
    for (const v4rt_profile_entry_t &e : entries) {
      if (e.one_token != oneToken)
        continue;
      if (e.kind == V4RT_PROFILE_CALL) {
        call = &e;
        continue;
      }
      rows.push_back(&e);
      total += e.seconds;
    }
    if (!call || call->calls == 0)
      continue;
    double calls = double(call->calls);
    std::fprintf(out,
                 "profile: %s: %lld calls, %.4f ms per call, of which the "
                 "steps %.4f ms (run one at a time)\n  %-32s %8s %10s %7s\n",
                 oneToken ? "decode (one token)" : "chunks (prefill)",
                 static_cast<long long>(call->calls),
                 call->seconds * 1e3 / calls, total * 1e3 / calls, "step",
                 "per call", "ms/call", "share");
    double shown = 0;
    size_t i = 0;
    for (; i < rows.size() && (shown < 0.99 * total || i == 0); ++i) {
      const v4rt_profile_entry_t &e = *rows[i];
      shown += e.seconds;
      std::fprintf(out, "  %-32s %8.2f %10.4f %6.1f%%\n", e.name,
                   double(e.calls) / calls, e.seconds * 1e3 / calls,
                   100.0 * e.seconds / std::max(total, 1e-30));
    }
    if (i < rows.size())
      std::fprintf(out, "  %-32s %8s %10.4f %6.1f%%\n",
                   ("(" + std::to_string(rows.size() - i) + " more)").c_str(),
                   "", (total - shown) * 1e3 / calls,
                   100.0 * (total - shown) / std::max(total, 1e-30));
  }
  return nullptr;
}

std::string tokenizerDir(const std::string &flag, const std::string &ckpt) {
  if (!flag.empty())
    return flag;
  struct stat st;
  if (::stat(ckpt.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    return ckpt;
  size_t slash = ckpt.rfind('/');
  return slash == std::string::npos ? "." : ckpt.substr(0, slash);
}

/// Streams generated tokens as text: whole UTF-8 characters, holding back
/// just enough to never print the start of a stop string.
class TextStream {
public:
  TextStream(v4rt_detokenizer_t *detok, std::vector<std::string> stops)
      : detok(detok), stops(std::move(stops)) {
    for (const std::string &s : this->stops)
      holdBack = std::max(holdBack, s.size() - 1);
  }
  /// Feeds one token; true when a stop string ended the text.
  bool push(int32_t id, v4rt_status_t &status) {
    const char *text = nullptr;
    size_t n = 0;
    status = v4rt_detokenizer_push(detok, id, &text, &n);
    if (status)
      return false;
    held.append(text, n);
    return flush(false);
  }
  void finish() {
    const char *text = nullptr;
    size_t n = 0;
    if (v4rt_status_t s = v4rt_detokenizer_finish(detok, &text, &n)) {
      v4rt_status_free(s); // only for NULL arguments
      return;
    }
    held.append(text, n);
    flush(true);
  }

private:
  bool flush(bool final) {
    size_t stopAt = std::string::npos;
    for (const std::string &s : stops)
      stopAt = std::min(stopAt, held.find(s));
    size_t upTo = stopAt;
    if (stopAt == std::string::npos) {
      upTo = final || held.size() <= holdBack ? (final ? held.size() : 0)
                                              : held.size() - holdBack;
      // Never cut a character: back up to a lead byte.
      while (upTo > 0 && upTo < held.size() &&
             (static_cast<unsigned char>(held[upTo]) & 0xC0) == 0x80)
        --upTo;
    }
    std::fwrite(held.data(), 1, upTo, stdout);
    std::fflush(stdout);
    held.erase(0, upTo);
    return stopAt != std::string::npos;
  }

  v4rt_detokenizer_t *detok;
  std::vector<std::string> stops;
  size_t holdBack = 0;
  std::string held;
};

/// The prompt ids of --prompt (BOS + text) or --chat (the V4 chat
/// encoding, which starts with BOS).
v4rt_status_t textPrompt(const v4rt_tokenizer_t *tok, int64_t bos,
                         const std::string &prompt, const std::string &chat,
                         const std::string &system, bool thinking,
                         const std::string &effort, std::vector<int64_t> &ids) {
  std::string text = prompt;
  if (!chat.empty()) {
    std::vector<v4rt_chat_message_t> messages;
    if (!system.empty())
      messages.push_back({"system", system.c_str(), nullptr});
    messages.push_back({"user", chat.c_str(), nullptr});
    v4rt_chat_options_t options;
    v4rt_chat_options_initialize(&options);
    options.thinking = thinking;
    options.reasoning_effort = effort.empty() ? nullptr : effort.c_str();
    size_t length = 0;
    v4rt_status_t s = v4rt_chat_encode_v4(messages.data(), messages.size(),
                                          &options, nullptr, 0, &length);
    if (s && v4rt_status_code(s) != V4RT_OUT_OF_RANGE)
      return s;
    v4rt_status_free(s);
    text.resize(length);
    if (v4rt_status_t s2 =
            v4rt_chat_encode_v4(messages.data(), messages.size(), &options,
                                text.data(), length, &length))
      return s2;
  } else if (bos >= 0) {
    ids.push_back(bos);
  }
  std::vector<int32_t> out(text.size() + 1);
  size_t count = 0;
  if (v4rt_status_t s = v4rt_tokenizer_encode(tok, text.data(), text.size(),
                                              out.data(), out.size(), &count))
    return s;
  ids.insert(ids.end(), out.begin(), out.begin() + count);
  return nullptr;
}

} // namespace

int main(int argc, char **argv) {
  std::string model, checkpoint, dump, compare;
  double maxError = -1, minTop1 = -1;
  std::string promptText, chat, system, tokenizerFlag, effort;
  std::vector<std::string> stops;
  bool thinking = false, checkWeights = false, profile = false;
  std::string expectSha256, device;
  std::vector<int64_t> prompt;
  int64_t maxNew = -1, chunk = 0, threads = 0;
  double collectiveTimeout = 0;
  uint64_t syntheticSeed = 0;
  v4rt_sampling_t sampling;
  v4rt_sampling_initialize(&sampling);
  int64_t seed = static_cast<int64_t>(sampling.seed);
  using v4::cli::rule;
  CLI::App cli(std::string(), "v4-run");
  v4::cli::setup(
      cli, "v4-run: runs a compiled model (.v4a) through the runtime's C API",
      "usage: v4-run MODEL.v4a --checkpoint DIR --prompt-ids 1,2,3 "
      "--max-new-tokens N [--chunk C]\n"
      "              [--temperature T --top-p P --seed S] "
      "[--dump-logits FILE.npy]\n"
      "       v4-run MODEL.v4a --checkpoint DIR (--prompt TEXT | --chat "
      "MESSAGE [--system TEXT]\n"
      "              [--thinking] [--reasoning-effort max|high]) "
      "[--tokenizer DIR] [--max-new-tokens N]\n"
      "              [--stop STRING]... [sampling flags]\n"
      "       (--synthetic-weights SEED instead of --checkpoint DIR: "
      "deterministic synthetic weights)",
      "Exit codes: 0 success; 1 rejected input; 2 bad command line; 3 I/O.");
  cli.add_option("MODEL.v4a", model, "The compiled model");
  cli.add_option("--checkpoint", checkpoint,
                 "Checkpoint: safetensors file, folder or index")
      ->type_name("DIR");
  CLI::Option *synthetic =
      cli.add_option("--synthetic-weights", syntheticSeed,
                     "Instead of --checkpoint: deterministic synthetic "
                     "weights of this seed (the manifest's dtypes and scales)")
          ->type_name("SEED")
          ->check(rule<std::string>(
              "an integer in [0, 2^64)",
              [](std::string text) { return isUint64(text); }));
  cli.add_option("--prompt-ids", prompt, "Prompt token ids, comma-separated")
      ->type_name("1,2,3")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->check(rule<int64_t>("an integer", [](int64_t) { return true; }));
  cli.add_option("--max-new-tokens", maxNew,
                 "Tokens to generate (default 128 with text)")
      ->type_name("N")
      ->check(
          rule<int64_t>("an integer >= 0", [](int64_t n) { return n >= 0; }));
  cli.add_option("--chunk", chunk,
                 "Prefill chunk (default and at most the compiled max chunk)")
      ->type_name("C")
      ->check(
          rule<int64_t>("an integer >= 1", [](int64_t n) { return n >= 1; }));
  cli.add_option("--temperature", sampling.temperature,
                 "Sampling temperature (0: greedy, the default)")
      ->type_name("T")
      ->check(rule<float>("a finite number >= 0",
                          [](float t) { return std::isfinite(t) && t >= 0; }));
  cli.add_option("--top-p", sampling.top_p, "Nucleus sampling mass")
      ->type_name("P")
      ->check(rule<float>("a number in (0, 1]",
                          [](float p) { return p > 0 && p <= 1; }));
  cli.add_option("--seed", seed, "Sampling seed")
      ->type_name("S")
      ->check(rule<int64_t>("an integer", [](int64_t) { return true; }));
  cli.add_option("--prompt", promptText, "Prompt text (BOS + the text)")
      ->type_name("TEXT")
      ->check(rule<std::string>("a non-empty text",
                                [](std::string t) { return !t.empty(); }));
  cli.add_option("--chat", chat, "A user message in the V4 chat encoding")
      ->type_name("MESSAGE");
  cli.add_option("--system", system, "System prompt of --chat")
      ->type_name("TEXT");
  cli.add_flag("--thinking", thinking, "Thinking mode of --chat");
  cli.add_option("--reasoning-effort", effort, "Reasoning effort of --chat")
      ->type_name("max|high")
      ->check(rule<std::string>("max or high", [](std::string e) {
        return e == "max" || e == "high";
      }));
  cli.add_option("--tokenizer", tokenizerFlag,
                 "Folder of tokenizer.json (default: the checkpoint's)")
      ->type_name("DIR");
  cli.add_option("--stop", stops,
                 "Stop before this text (repeatable; not printed)")
      ->type_name("STRING")
      ->allow_extra_args(false)
      ->check(rule<std::string>("a non-empty string",
                                [](std::string t) { return !t.empty(); }));
  cli.add_option("--threads", threads,
                 "Host threads of the CPU device (default: V4RT_NUM_THREADS, "
                 "else every core)")
      ->type_name("N")
      ->check(
          rule<int64_t>("an integer >= 1", [](int64_t n) { return n >= 1; }));
  cli.add_option("--device", device,
                 "Device to run on: cpu, cuda (CUDA device 0) or cuda:N "
                 "(default: that of the artifact's first target; an artifact "
                 "built with v4c --target=cpu,sm_90a runs on either)")
      ->type_name("DEVICE");
  cli.add_option("--collective-timeout", collectiveTimeout,
                 "Seconds a collective of a partitioned model (v4c --ep N, "
                 "run with mpirun -np N) waits for the other ranks before "
                 "failing (default 300)")
      ->type_name("SECONDS")
      ->check(rule<double>("a number of seconds > 0",
                           [](double t) { return t > 0; }));
  cli.add_flag("--check-weights", checkWeights,
               "Refuse a checkpoint holding a NaN or Inf (one pass at load)");
  cli.add_option("--expect-sha256", expectSha256,
                 "Refuse an artifact whose SHA-256 is not HEX, before loading")
      ->type_name("HEX")
      ->check(rule<std::string>("64 hexadecimal digits", [](std::string h) {
        return h.size() == 64 &&
               std::all_of(h.begin(), h.end(), [](unsigned char c) {
                 return std::isxdigit(c) != 0;
               });
      }));
  cli.add_flag("--profile", profile,
               "Time every step (kernel or collective) and print where the "
               "prefill and decode time went (steps then run one at a time)");
  cli.add_option("--dump-logits", dump,
                 "Write the logits of every step as float32 [steps, vocab] "
                 "(a %r in FILE is the rank of a partitioned model)")
      ->type_name("FILE.npy");
  cli.add_option("--compare-logits", compare,
                 "Compare the logits of every step (as --dump-logits writes "
                 "them) with FILE's, e.g. a one-rank run of the same model: "
                 "the largest normwise error of a row and the top-1 "
                 "agreement; exit 1 outside --max-error / --min-top1")
      ->type_name("FILE.npy");
  cli.add_option("--max-error", maxError,
                 "With --compare-logits: the largest accepted normwise "
                 "relative error ||a - b|| / ||b|| of a logit row")
      ->type_name("X")
      ->check(rule<double>("a number >= 0", [](double x) { return x >= 0; }));
  cli.add_option("--min-top1", minTop1,
                 "With --compare-logits: the smallest accepted fraction of "
                 "rows whose largest logit is at the same token")
      ->type_name("F")
      ->check(rule<double>("a fraction in [0, 1]",
                           [](double x) { return x >= 0 && x <= 1; }));
  if (int code = v4::cli::parse(cli, argc, argv); code != v4::cli::kContinue)
    return code;
  if (!compare.empty() && maxError < 0 && minTop1 < 0)
    return v4::cli::usageError(
        cli, "--compare-logits needs --max-error or --min-top1: the "
             "agreement it expects");
  if (compare.empty() && (maxError >= 0 || minTop1 >= 0))
    return v4::cli::usageError(
        cli, "--max-error and --min-top1 go with --compare-logits");
  sampling.seed = static_cast<uint64_t>(seed);
  auto usage = [&](const char *message) {
    return v4::cli::usageError(cli, message);
  };
  const bool textMode = !promptText.empty() || !chat.empty();
  if (int(!prompt.empty()) + int(!promptText.empty()) + int(!chat.empty()) > 1)
    return usage("give one of --prompt-ids, --prompt and --chat");
  if (!textMode && (!system.empty() || thinking || !stops.empty() ||
                    !tokenizerFlag.empty() || !effort.empty()))
    return usage("--system, --thinking, --reasoning-effort, --tokenizer and "
                 "--stop need --prompt or --chat");
  if ((!system.empty() || thinking || !effort.empty()) && chat.empty())
    return usage("--system, --thinking and --reasoning-effort need --chat");
  if (textMode && !dump.empty())
    return usage("--dump-logits needs --prompt-ids");
  if (textMode && maxNew < 0)
    maxNew = 128;
  const bool syntheticWeights = synthetic->count() > 0;
  if (syntheticWeights && !checkpoint.empty())
    return usage("--synthetic-weights and --checkpoint exclude each other: "
                 "synthetic weights replace the checkpoint");
  if (syntheticWeights && textMode && tokenizerFlag.empty())
    return usage("--prompt and --chat with --synthetic-weights need "
                 "--tokenizer (there is no checkpoint folder to find it in)");
  if (syntheticWeights && checkWeights)
    return usage("--check-weights reads a checkpoint: synthetic weights "
                 "have none (and are finite)");
  if (model.empty() || (checkpoint.empty() && !syntheticWeights) ||
      (prompt.empty() && !textMode) || maxNew < 0)
    return usage("MODEL, --checkpoint (or --synthetic-weights), --prompt-ids "
                 "(or --prompt or --chat) and --max-new-tokens are required");

  // The output path is checked before any work (RELIABILITY.md §2.11).
  if (!dump.empty()) {
    if (v4::Status s = v4::checkOutputPath(dump); !s) {
      std::fprintf(stderr, "v4-run: error: --dump-logits %s\n",
                   s.message().c_str());
      return 3;
    }
  }

  v4rt_model_options_t options;
  v4rt_model_options_initialize(&options);
  options.checkpoint_path = syntheticWeights ? nullptr : checkpoint.c_str();
  options.synthetic_weights = syntheticWeights;
  options.synthetic_seed = syntheticSeed;
  options.check_weights = checkWeights;
  // The library owns the upper bound (V4RT_INVALID_ARGUMENT above it).
  options.num_threads =
      static_cast<uint32_t>(std::min<int64_t>(threads, UINT32_MAX));
  options.device = device.empty() ? nullptr : device.c_str();
  options.collective_timeout_s = collectiveTimeout;
  options.expected_sha256 =
      expectSha256.empty() ? nullptr : expectSha256.c_str();
  using clock = std::chrono::steady_clock;
  auto tLoad = clock::now();
  v4rt_model_t *m = nullptr;
  if (v4rt_status_t s = v4rt_model_load(model.c_str(), &options, &m))
    return fail(s);
  v4rt_model_info_t info;
  info.struct_size = sizeof info;
  if (v4rt_status_t s = v4rt_model_info(m, &info)) {
    v4rt_model_release(m);
    return fail(s);
  }
  // Every rank of a partitioned model runs the same steps (--dump-logits's
  // extra one included). Under expert parallelism alone they compute the
  // same tokens and logits: rank 0 prints them and writes the files. Under
  // data-parallel attention each rank runs its own prompt: each prints and
  // writes its own (a "%r" in --dump-logits is the rank).
  if (size_t at = dump.find("%r"); at != std::string::npos)
    dump.replace(at, 2, std::to_string(info.rank));
  const bool writeFiles = info.rank == 0 || info.data_parallel_attention;
  if (!writeFiles) {
    if (!std::freopen("/dev/null", "w", stdout)) {
      std::fprintf(stderr, "v4-run: error: rank %lld: /dev/null: %s\n",
                   static_cast<long long>(info.rank), std::strerror(errno));
      v4rt_model_release(m);
      return 3;
    }
  }
  // Text mode's tokenizer and detokenizer, released on every return.
  struct TextHandles {
    v4rt_tokenizer_t *tok = nullptr;
    v4rt_detokenizer_t *detok = nullptr;
    ~TextHandles() {
      v4rt_detokenizer_release(detok);
      v4rt_tokenizer_release(tok);
    }
  } handles;
  v4rt_tokenizer_t *&tok = handles.tok;
  v4rt_detokenizer_t *&detok = handles.detok;
  int64_t eos = info.eos_token_id;
  if (textMode) {
    std::string dir = tokenizerDir(tokenizerFlag, checkpoint);
    v4rt_status_t s = v4rt_tokenizer_load(dir.c_str(), &tok);
    if (!s)
      s = v4rt_detokenizer_create(tok, &detok);
    int64_t bos = info.bos_token_id;
    v4rt_tokenizer_info_t tinfo{};
    tinfo.struct_size = sizeof tinfo;
    tinfo.bos_id = tinfo.eos_id = -1;
    if (!s)
      s = v4rt_tokenizer_info(tok, &tinfo);
    if (bos < 0)
      bos = tinfo.bos_id;
    if (eos < 0)
      eos = tinfo.eos_id;
    if (!s)
      s = textPrompt(tok, bos, promptText, chat, system, thinking, effort,
                     prompt);
    if (s) {
      v4rt_model_release(m);
      return fail(s);
    }
    for (int64_t id : prompt)
      if (id >= info.vocab_size) {
        std::fprintf(stderr,
                     "v4-run: error: %s: the prompt's token id %lld is outside "
                     "the model's vocabulary (%lld): this tokenizer does not "
                     "belong to the model (--tokenizer)\n",
                     dir.c_str(), static_cast<long long>(id),
                     static_cast<long long>(info.vocab_size));
        v4rt_model_release(m);
        return 1;
      }
  }
  double loadS = std::chrono::duration<double>(clock::now() - tLoad).count();
  if (chunk == 0 || chunk > info.max_chunk)
    chunk = info.max_chunk;
  int64_t total = 0;
  if (__builtin_add_overflow(static_cast<int64_t>(prompt.size()), maxNew,
                             &total) ||
      total > info.max_context) {
    std::fprintf(stderr,
                 "v4-run: error: prompt (%zu tokens) + %lld new tokens "
                 "exceeds the compiled maximum context %lld; recompile with a "
                 "larger --max-context\n",
                 prompt.size(), static_cast<long long>(maxNew),
                 static_cast<long long>(info.max_context));
    v4rt_model_release(m);
    return 1;
  }
  v4rt_session_t *session = nullptr;
  if (v4rt_status_t s = v4rt_session_create(m, &session)) {
    v4rt_model_release(m);
    return fail(s);
  }
  if (profile)
    if (v4rt_status_t s = v4rt_session_set_profiling(session, 1)) {
      v4rt_session_release(session);
      v4rt_model_release(m);
      return fail(s);
    }
  const int64_t B = info.batch, V = info.vocab_size;
  // The logits of every step, for --dump-logits and --compare-logits.
  const bool collect = !dump.empty() || !compare.empty();
  if (collect && info.logits_positions != 0) {
    std::fprintf(stderr, "v4-run: error: --dump-logits and --compare-logits "
                         "need the logits of "
                         "every position: compile the model with v4c "
                         "--logits=all\n");
    v4rt_session_release(session);
    v4rt_model_release(m);
    return 2;
  }
  std::vector<float> dumped;
  std::vector<float> logits;
  std::vector<int64_t> ids;
  uint64_t rng = sampling.seed;

  // Prefill in chunks; every sequence of the batch gets the same prompt.
  auto t0 = clock::now();
  int64_t next = -1;
  for (size_t at = 0; at < prompt.size(); at += chunk) {
    int64_t n = std::min<int64_t>(chunk, prompt.size() - at);
    ids.assign(B * n, 0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < n; ++t)
        ids[b * n + t] = prompt[at + t];
    // Logit rows per sequence: every position, or the last one.
    int64_t rows = info.logits_positions ? 1 : n;
    logits.assign(B * rows * V, 0.0f);
    if (v4rt_status_t s =
            v4rt_session_run(session, ids.data(), nullptr, n, logits.data(),
                             logits.size(), nullptr, 0)) {
      v4rt_session_release(session);
      v4rt_model_release(m);
      return fail(s);
    }
    if (collect)
      dumped.insert(dumped.end(), logits.begin(), logits.begin() + n * V);
    if (v4rt_status_t s =
            v4rt_sample(&logits[(rows - 1) * V], V, &sampling, &rng, &next)) {
      v4rt_session_release(session);
      v4rt_model_release(m);
      return fail(s);
    }
  }
  auto t1 = clock::now();

  // Decode. Text mode streams every token and stops at EOS or a stop
  // string (neither is printed).
  std::vector<int64_t> generated;
  TextStream stream(detok, stops);
  const char *stopReason = "max-new-tokens";
  for (int64_t step = 0; step < maxNew; ++step) {
    if (textMode) {
      if (next == eos) {
        stopReason = "eos";
        break;
      }
      v4rt_status_t s = nullptr;
      bool stopped = stream.push(static_cast<int32_t>(next), s);
      if (s) {
        v4rt_session_release(session);
        v4rt_model_release(m);
        return fail(s);
      }
      generated.push_back(next);
      if (stopped) {
        stopReason = "stop string";
        break;
      }
    } else {
      generated.push_back(next);
    }
    if (step + 1 == maxNew && !collect)
      break;
    ids.assign(B, next);
    logits.assign(B * V, 0.0f);
    if (v4rt_status_t s =
            v4rt_session_run(session, ids.data(), nullptr, 1, logits.data(),
                             logits.size(), nullptr, 0)) {
      v4rt_session_release(session);
      v4rt_model_release(m);
      return fail(s);
    }
    if (collect)
      dumped.insert(dumped.end(), logits.begin(), logits.begin() + V);
    if (v4rt_status_t s =
            v4rt_sample(logits.data(), V, &sampling, &rng, &next)) {
      v4rt_session_release(session);
      v4rt_model_release(m);
      return fail(s);
    }
  }
  auto t2 = clock::now();
  if (textMode) {
    if (std::strcmp(stopReason, "stop string") != 0)
      stream.finish();
    double prefillS = std::chrono::duration<double>(t1 - t0).count();
    double decodeS = std::chrono::duration<double>(t2 - t1).count();
    int64_t steps = std::max<int64_t>(generated.size(), 1) - 1;
    std::fprintf(stderr,
                 "\nload: %.3f ms (model and tokenizer)\n"
                 "prefill: %zu tokens in %.3f ms (%.1f tokens/s)\n"
                 "decode: %zu tokens, %lld steps in %.3f ms (%.1f tokens/s)\n"
                 "stop: %s\n"
                 "numerics: %s, fake-quant %s\n"
                 "threads: %lld\n%s",
                 loadS * 1e3, prompt.size(), prefillS * 1e3,
                 prompt.size() / std::max(prefillS, 1e-9), generated.size(),
                 static_cast<long long>(steps), decodeS * 1e3,
                 steps / std::max(decodeS, 1e-9), stopReason, info.numerics,
                 info.fake_quant, static_cast<long long>(info.num_threads),
                 weightsLine(info).c_str());
    v4rt_status_t profiled = profile ? printProfile(session, stderr) : nullptr;
    v4rt_session_release(session);
    v4rt_model_release(m);
    if (profiled)
      return fail(profiled);
    return std::fflush(stdout) == 0 ? 0 : 3;
  }

  std::printf("generated:");
  for (int64_t id : generated)
    std::printf(" %lld", static_cast<long long>(id));
  std::printf("\n");
  double prefillS = std::chrono::duration<double>(t1 - t0).count();
  double decodeS = std::chrono::duration<double>(t2 - t1).count();
  int64_t decodeSteps = collect ? maxNew : std::max<int64_t>(maxNew - 1, 0);
  std::printf("prefill: %zu tokens in %.3f ms (%.1f tokens/s)\n", prompt.size(),
              prefillS * 1e3, prompt.size() / std::max(prefillS, 1e-9));
  std::printf("decode: %lld steps in %.3f ms (%.1f tokens/s)\n",
              static_cast<long long>(decodeSteps), decodeS * 1e3,
              decodeSteps / std::max(decodeS, 1e-9));
  std::printf("numerics: %s, fake-quant %s\n", info.numerics, info.fake_quant);
  std::printf("threads: %lld\n", static_cast<long long>(info.num_threads));
  if (info.world_size > 1) {
    std::string how;
    if (info.tensor_parallel > 1)
      how = "tensor parallel";
    if (info.expert_parallel > 1)
      how += std::string(how.empty() ? "" : ", ") + "expert parallel";
    if (info.data_parallel_attention)
      how += ", data-parallel attention";
    std::printf("ranks: %lld (%s)\n", static_cast<long long>(info.world_size),
                how.c_str());
  }
  std::printf("%s", weightsLine(info).c_str());
  if (profile)
    if (v4rt_status_t s = printProfile(session, stdout)) {
      v4rt_session_release(session);
      v4rt_model_release(m);
      return fail(s);
    }
  int code = 0;
  if (!dump.empty() && writeFiles) {
    int64_t rows = static_cast<int64_t>(dumped.size()) / V;
    if (v4::Status s = writeNpy(dump, dumped, rows, V); !s) {
      std::fprintf(stderr, "v4-run: error: --dump-logits %s\n",
                   s.message().c_str());
      code = 3;
    } else {
      std::printf("logits: [%lld, %lld] -> %s\n", static_cast<long long>(rows),
                  static_cast<long long>(V), dump.c_str());
    }
  }
  if (!compare.empty()) {
    int64_t rows = 0, cols = 0;
    auto want = readNpy(compare, rows, cols);
    int64_t have = static_cast<int64_t>(dumped.size()) / V;
    if (!want) {
      std::fprintf(stderr, "v4-run: error: %s\n",
                   want.status().message().c_str());
      code = 1;
    } else if (rows != have || cols != V) {
      std::fprintf(stderr,
                   "v4-run: error: --compare-logits %s is [%lld, %lld], this "
                   "run's logits are [%lld, %lld]\n",
                   compare.c_str(), static_cast<long long>(rows),
                   static_cast<long long>(cols), static_cast<long long>(have),
                   static_cast<long long>(V));
      code = 1;
    } else {
      double worst = 0;
      int64_t same = 0;
      for (int64_t r = 0; r < rows; ++r) {
        const float *a = dumped.data() + r * V, *b = want->data() + r * V;
        double diff = 0, norm = 0;
        for (int64_t v = 0; v < V; ++v) {
          diff += (double(a[v]) - b[v]) * (double(a[v]) - b[v]);
          norm += double(b[v]) * b[v];
        }
        double e = std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30);
        worst = std::isnan(e) ? INFINITY : std::max(worst, e);
        same +=
            std::max_element(a, a + V) - a == std::max_element(b, b + V) - b;
      }
      double top1 = double(same) / double(rows);
      bool ok = (maxError < 0 || worst <= maxError) &&
                (minTop1 < 0 || top1 >= minTop1);
      std::printf("compare: %lld rows vs %s: max normwise error %.3g, top-1 "
                  "agreement %.4f: %s\n",
                  static_cast<long long>(rows), compare.c_str(), worst, top1,
                  ok ? "ok" : "OUTSIDE");
      if (!ok) {
        char limits[96] = "";
        if (maxError >= 0)
          std::snprintf(limits, sizeof limits, " --max-error %g", maxError);
        if (minTop1 >= 0)
          std::snprintf(limits + std::strlen(limits),
                        sizeof limits - std::strlen(limits), " --min-top1 %g",
                        minTop1);
        std::fprintf(stderr, "v4-run: error: logits outside%s of %s\n", limits,
                     compare.c_str());
        code = 1;
      }
    }
  }
  v4rt_session_release(session);
  v4rt_model_release(m);
  return code;
}
