//===- v4-run.cpp - run a compiled model through the v4rt C API -----------===//
//
//   v4-run model.v4a --checkpoint DIR --prompt-ids 1,2,3 --max-new-tokens N
//          [--chunk C] [--temperature T --top-p P --seed S]
//          [--dump-logits FILE.npy]
//
// Prefills the prompt in chunks, then decodes N tokens one at a time, and
// prints the generated ids and the prefill and decode throughput. With
// --dump-logits, writes the float32 logits of every prompt position and
// every generated step as a [steps, vocab] .npy array (batch row 0).
// Uses only the public C API. Exit codes: 0 ok, 1 rejected input or model,
// 2 bad command line, 3 I/O.
//
//===----------------------------------------------------------------------===//
#include "v4rt/v4rt.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int usage(const char *msg) {
  std::fprintf(stderr,
               "v4-run: %s\n"
               "usage: v4-run MODEL.v4a --checkpoint DIR --prompt-ids 1,2,3 "
               "--max-new-tokens N [--chunk C] [--temperature T] [--top-p P] "
               "[--seed S] [--dump-logits FILE.npy]\n",
               msg);
  return 2;
}

bool parseInt(const char *s, int64_t &out) {
  char *end = nullptr;
  errno = 0;
  long long v = std::strtoll(s, &end, 10);
  if (errno || end == s || *end)
    return false;
  out = v;
  return true;
}

bool parseFloat(const char *s, float &out) {
  char *end = nullptr;
  out = std::strtof(s, &end);
  return end != s && !*end;
}

/// Writes a float32 [rows, cols] array in the .npy format (version 1.0).
bool writeNpy(const std::string &path, const std::vector<float> &data,
              int64_t rows, int64_t cols) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       std::to_string(rows) + ", " + std::to_string(cols) +
                       "), }";
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::string tmp = path + ".tmp";
  FILE *f = std::fopen(tmp.c_str(), "wb");
  if (!f)
    return false;
  const char magic[] = "\x93NUMPY\x01\x00";
  uint16_t len = static_cast<uint16_t>(header.size());
  bool ok =
      std::fwrite(magic, 1, 8, f) == 8 && std::fwrite(&len, 2, 1, f) == 1 &&
      std::fwrite(header.data(), 1, header.size(), f) == header.size() &&
      std::fwrite(data.data(), sizeof(float), data.size(), f) == data.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

int fail(v4rt_status_t status) {
  v4rt_status_code_t code = v4rt_status_code(status);
  std::fprintf(stderr, "v4-run: error: %s\n", v4rt_status_message(status));
  v4rt_status_free(status);
  return code == V4RT_NOT_FOUND || code == V4RT_UNAVAILABLE ? 3 : 1;
}

} // namespace

int main(int argc, char **argv) {
  std::string model, checkpoint, dump;
  std::vector<int64_t> prompt;
  int64_t maxNew = -1, chunk = 0;
  v4rt_sampling_t sampling;
  v4rt_sampling_initialize(&sampling);
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char *name) -> const char * {
      if (i + 1 >= argc) {
        usage((std::string(name) + " needs a value").c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--checkpoint") {
      checkpoint = value("--checkpoint");
    } else if (a == "--prompt-ids") {
      std::string list = value("--prompt-ids");
      size_t at = 0;
      while (at <= list.size()) {
        size_t comma = list.find(',', at);
        std::string item = list.substr(at, comma - at);
        int64_t id;
        if (!parseInt(item.c_str(), id))
          return usage(
              ("--prompt-ids: '" + item + "' is not an integer").c_str());
        prompt.push_back(id);
        if (comma == std::string::npos)
          break;
        at = comma + 1;
      }
    } else if (a == "--max-new-tokens") {
      if (!parseInt(value("--max-new-tokens"), maxNew) || maxNew < 0)
        return usage("--max-new-tokens needs an integer >= 0");
    } else if (a == "--chunk") {
      if (!parseInt(value("--chunk"), chunk) || chunk < 1)
        return usage("--chunk needs an integer >= 1");
    } else if (a == "--temperature") {
      if (!parseFloat(value("--temperature"), sampling.temperature) ||
          sampling.temperature < 0)
        return usage("--temperature needs a number >= 0");
    } else if (a == "--top-p") {
      if (!parseFloat(value("--top-p"), sampling.top_p) ||
          !(sampling.top_p > 0 && sampling.top_p <= 1))
        return usage("--top-p needs a number in (0, 1]");
    } else if (a == "--seed") {
      int64_t s;
      if (!parseInt(value("--seed"), s))
        return usage("--seed needs an integer");
      sampling.seed = static_cast<uint64_t>(s);
    } else if (a == "--dump-logits") {
      dump = value("--dump-logits");
    } else if (a == "--version") {
      std::printf("v4-run 0.1.0 (v4rt API %d)\n", V4RT_API_VERSION);
      return 0;
    } else if (a.size() > 1 && a[0] == '-') {
      return usage(("unknown option '" + a + "'").c_str());
    } else if (model.empty()) {
      model = a;
    } else {
      return usage(("unexpected argument '" + a + "'").c_str());
    }
  }
  if (model.empty() || checkpoint.empty() || prompt.empty() || maxNew < 0)
    return usage("MODEL, --checkpoint, --prompt-ids and --max-new-tokens are "
                 "required");

  v4rt_model_options_t options;
  v4rt_model_options_initialize(&options);
  options.checkpoint_path = checkpoint.c_str();
  v4rt_model_t *m = nullptr;
  if (v4rt_status_t s = v4rt_model_load(model.c_str(), &options, &m))
    return fail(s);
  v4rt_model_info_t info;
  v4rt_model_info(m, &info);
  if (chunk == 0 || chunk > info.max_chunk)
    chunk = info.max_chunk;
  int64_t total = static_cast<int64_t>(prompt.size()) + maxNew;
  if (total > info.max_context) {
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
  const int64_t B = info.batch, V = info.vocab_size;
  if (!dump.empty() && info.logits_positions != 0) {
    std::fprintf(stderr, "v4-run: error: --dump-logits needs the logits of "
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
  using clock = std::chrono::steady_clock;

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
    if (!dump.empty())
      dumped.insert(dumped.end(), logits.begin(), logits.begin() + n * V);
    next = v4rt_sample(&logits[(rows - 1) * V], V, &sampling, &rng);
  }
  auto t1 = clock::now();

  // Decode.
  std::vector<int64_t> generated;
  for (int64_t step = 0; step < maxNew; ++step) {
    generated.push_back(next);
    if (step + 1 == maxNew && dump.empty())
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
    if (!dump.empty())
      dumped.insert(dumped.end(), logits.begin(), logits.begin() + V);
    next = v4rt_sample(logits.data(), V, &sampling, &rng);
  }
  auto t2 = clock::now();

  std::printf("generated:");
  for (int64_t id : generated)
    std::printf(" %lld", static_cast<long long>(id));
  std::printf("\n");
  double prefillS = std::chrono::duration<double>(t1 - t0).count();
  double decodeS = std::chrono::duration<double>(t2 - t1).count();
  int64_t decodeSteps =
      dump.empty() ? std::max<int64_t>(maxNew - 1, 0) : maxNew;
  std::printf("prefill: %zu tokens in %.3f ms (%.1f tokens/s)\n", prompt.size(),
              prefillS * 1e3, prompt.size() / std::max(prefillS, 1e-9));
  std::printf("decode: %lld steps in %.3f ms (%.1f tokens/s)\n",
              static_cast<long long>(decodeSteps), decodeS * 1e3,
              decodeSteps / std::max(decodeS, 1e-9));
  int code = 0;
  if (!dump.empty()) {
    int64_t rows = static_cast<int64_t>(dumped.size()) / V;
    if (!writeNpy(dump, dumped, rows, V)) {
      std::fprintf(stderr, "v4-run: error: cannot write '%s'\n", dump.c_str());
      code = 3;
    } else {
      std::printf("logits: [%lld, %lld] -> %s\n", static_cast<long long>(rows),
                  static_cast<long long>(V), dump.c_str());
    }
  }
  v4rt_session_release(session);
  v4rt_model_release(m);
  return code;
}
