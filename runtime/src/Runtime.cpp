//===- Runtime.cpp - the v4 runtime (C API implementation) ----------------===//
//
// Plain C++17; links the artifact and safetensors libraries and libdl only.
// The runtime holds no model math: every operation is a kernel from the
// artifact's code object, called through the kernel ABI
// (void k(void **descriptors), one strided memref descriptor per buffer).
//
//===----------------------------------------------------------------------===//
#include "v4rt/v4rt.h"

#include "runtime/artifact/Artifact.h"
#include "runtime/safetensors/Safetensors.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <memory>
#include <new>
#include <numeric>
#include <optional>
#include <string>
#include <unistd.h>
#include <vector>

namespace art = v4::artifact;
namespace st = v4::safetensors;

struct v4rt_status_s {
  v4rt_status_code_t code;
  std::string message;
};

namespace {

v4rt_status_t makeStatus(v4rt_status_code_t code, std::string message) {
  return new (std::nothrow) v4rt_status_s{code, std::move(message)};
}

/// 64-byte aligned, zeroed storage.
struct Storage {
  void *data = nullptr;
  size_t bytes = 0;
  Storage() = default;
  Storage(const Storage &) = delete;
  Storage &operator=(const Storage &) = delete;
  Storage(Storage &&o) noexcept : data(o.data), bytes(o.bytes) {
    o.data = nullptr;
  }
  ~Storage() { std::free(data); }
  bool allocate(size_t n) {
    bytes = n;
    size_t rounded = std::max<size_t>(64, (n + 63) / 64 * 64);
    data = std::aligned_alloc(64, rounded);
    if (data)
      std::memset(data, 0, rounded);
    return data != nullptr;
  }
};

using KernelFn = void (*)(void **);

std::optional<st::DType> checkpointDType(art::DType d) {
  switch (d) {
  case art::DType::BF16:
    return st::DType::BF16;
  case art::DType::F16:
    return st::DType::F16;
  case art::DType::F32:
    return st::DType::F32;
  case art::DType::F8E4M3:
    return st::DType::F8_E4M3;
  case art::DType::F8E8M0:
    return st::DType::F8_E8M0;
  case art::DType::I8:
    return st::DType::I8;
  case art::DType::I32:
    return st::DType::I32;
  case art::DType::I64:
    return st::DType::I64;
  case art::DType::F4E2M1:
    return st::DType::F4;
  }
  return std::nullopt;
}

} // namespace

struct v4rt_model_t {
  std::atomic<int> refs{1};
  art::Artifact artifact;
  void *library = nullptr;
  std::vector<KernelFn> kernels;
  /// Parameter storage, by buffer id (empty for other buffers).
  std::vector<Storage> parameters;
  v4rt_model_info_t info{};
  std::vector<uint32_t> inputs;  // ids, next ids, start positions, positions
  std::vector<uint32_t> outputs; // logits, then MTP logits

  explicit v4rt_model_t(art::Artifact a) : artifact(std::move(a)) {}
  ~v4rt_model_t() {
    if (library)
      dlclose(library);
  }
};

struct v4rt_session_t {
  v4rt_model_t *model;
  std::vector<Storage> buffers; // by buffer id; parameters live in the model
  int64_t position = 0;
};

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
    *options = v4rt_model_options_t{nullptr};
}

} // extern "C"

namespace {

/// Writes the host shared object to a private temporary file and dlopens it
/// (unlinked right away: the mapping keeps it alive).
v4rt_status_t loadKernels(v4rt_model_t &m, const std::string &path) {
  const art::Artifact &a = m.artifact;
  if (a.target() != art::Target::CPU)
    return makeStatus(V4RT_INCOMPATIBLE,
                      path + ": artifact targets " +
                          art::targetName(a.target()) +
                          "; this runtime runs CPU artifacts only");
  if (a.codeObjects().size() != 1 ||
      a.codeObjects()[0].format != art::CodeFormat::HostSharedObject)
    return makeStatus(V4RT_INCOMPATIBLE,
                      path + ": expected one host shared object");
  art::ByteSpan code = a.code(0);
  char tmpl[] = "/tmp/v4rt-kernels-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0)
    return makeStatus(V4RT_UNAVAILABLE,
                      std::string("cannot create a temporary file for the "
                                  "kernels: ") +
                          std::strerror(errno));
  size_t done = 0;
  while (done < code.size) {
    ssize_t n = ::write(fd, code.data + done, code.size - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      ::close(fd);
      ::unlink(tmpl);
      return makeStatus(V4RT_UNAVAILABLE,
                        std::string("cannot write the kernels: ") +
                            std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  m.library = dlopen(tmpl, RTLD_NOW | RTLD_LOCAL);
  ::unlink(tmpl);
  if (!m.library)
    return makeStatus(V4RT_UNAVAILABLE,
                      path + ": cannot load the CPU kernels: " + dlerror());
  for (const art::Kernel &k : a.kernels()) {
    void *sym = dlsym(m.library, k.entrySymbol.c_str());
    if (!sym)
      return makeStatus(V4RT_INCOMPATIBLE,
                        path + ": kernel '" + k.name + "' has no symbol '" +
                            k.entrySymbol + "' in the code object");
    m.kernels.push_back(reinterpret_cast<KernelFn>(sym));
  }
  return nullptr;
}

/// Checks the checkpoint against the manifest (all mismatches at once) and
/// copies every parameter into its buffer.
v4rt_status_t bindParameters(v4rt_model_t &m, const std::string &ckpt) {
  const art::Artifact &a = m.artifact;
  auto reader = st::Reader::open(ckpt);
  if (!reader)
    return makeStatus(reader.status().rule() == "IO" ? V4RT_NOT_FOUND
                                                     : V4RT_INVALID_ARGUMENT,
                      reader.status().message());
  struct Member {
    std::string name;
    uint32_t buffer;
    size_t offset, bytes;
  };
  std::vector<st::ManifestEntry> expected;
  std::vector<Member> members;
  for (const art::Parameter &p : a.parameters()) {
    auto dt = checkpointDType(p.dtype);
    const art::Buffer *buf = a.findBuffer(p.buffer);
    if (!dt || !buf)
      return makeStatus(V4RT_INTERNAL,
                        "parameter '" + p.name + "' has no usable buffer");
    size_t total = a.bufferBytes(*buf, a.bounds().maxChunk);
    size_t at = p.name.find("{}");
    if (at == std::string::npos) {
      expected.push_back({p.name, *dt, p.shape, false});
      members.push_back({p.name, p.buffer, 0, total});
      continue;
    }
    // A per-expert stack: member e is slice e of the buffer.
    int64_t count = p.shape.empty() ? 0 : p.shape[0];
    std::vector<int64_t> shape(p.shape.begin() + 1, p.shape.end());
    size_t each = count > 0 ? total / static_cast<size_t>(count) : 0;
    for (int64_t e = 0; e < count; ++e) {
      std::string name =
          p.name.substr(0, at) + std::to_string(e) + p.name.substr(at + 2);
      expected.push_back({name, *dt, shape, false});
      members.push_back({name, p.buffer, static_cast<size_t>(e) * each, each});
    }
  }
  st::Status check = st::checkManifest(ckpt, reader->tensors(), expected);
  if (!check.ok())
    return makeStatus(V4RT_INVALID_ARGUMENT, check.message());
  m.parameters.resize(a.buffers().size());
  for (const art::Buffer &b : a.buffers())
    if (b.kind == art::BufferKind::Parameter &&
        !m.parameters[b.id].allocate(a.bufferBytes(b, a.bounds().maxChunk)))
      return makeStatus(V4RT_RESOURCE_EXHAUSTED,
                        "out of memory for parameter buffer " +
                            std::to_string(b.id));
  for (const Member &mem : members) {
    auto *dst = static_cast<uint8_t *>(m.parameters[mem.buffer].data);
    st::Status s = reader->copyTensor(mem.name, dst + mem.offset, mem.bytes);
    if (!s.ok())
      return makeStatus(V4RT_INVALID_ARGUMENT, s.message());
  }
  return nullptr;
}

/// Runs the steps of entry point `name` with the token dim at `tokens`.
void runEntry(v4rt_session_t &s, const art::EntryPoint &entry, int64_t tokens) {
  v4rt_model_t &m = *s.model;
  const art::Artifact &a = m.artifact;
  std::vector<std::vector<int64_t>> descriptors;
  std::vector<void *> args;
  for (const art::Step &step : entry.steps) {
    descriptors.assign(step.buffers.size(), {});
    args.assign(step.buffers.size(), nullptr);
    for (size_t i = 0; i < step.buffers.size(); ++i) {
      const art::Buffer &b = *a.findBuffer(step.buffers[i]);
      void *data = b.kind == art::BufferKind::Parameter
                       ? m.parameters[b.id].data
                       : s.buffers[b.id].data;
      size_t rank = b.shape.size();
      // struct { void *allocated, *aligned; int64_t offset, sizes[rank],
      //          strides[rank]; }
      std::vector<int64_t> &d = descriptors[i];
      d.assign(3 + 2 * rank, 0);
      std::memcpy(&d[0], &data, sizeof(void *));
      std::memcpy(&d[1], &data, sizeof(void *));
      int64_t stride = 1;
      for (size_t r = rank; r-- > 0;) {
        int64_t size = b.shape[r] < 0 ? tokens : b.shape[r];
        d[3 + r] = size;
        d[3 + rank + r] = stride;
        stride *= size;
      }
      args[i] = d.data();
    }
    m.kernels[step.kernel](args.data());
  }
}

} // namespace

extern "C" {

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
  auto loaded = art::Artifact::loadFile(artifact_path);
  if (!loaded) {
    const std::string &rule = loaded.status().rule();
    v4rt_status_code_t code = rule == "IO"     ? V4RT_NOT_FOUND
                              : rule == "AF-2" ? V4RT_INCOMPATIBLE
                                               : V4RT_INVALID_ARGUMENT;
    return makeStatus(code, loaded.status().message());
  }
  auto model = std::make_unique<v4rt_model_t>(loaded.take());
  const art::Artifact &a = model->artifact;
  const art::EntryPoint *step = a.findEntryPoint("step");
  if (!step || !a.findEntryPoint("init_state"))
    return makeStatus(V4RT_INCOMPATIBLE,
                      std::string(artifact_path) +
                          ": no 'step' and 'init_state' entry points");
  for (const art::Buffer &b : a.buffers()) {
    if (b.kind == art::BufferKind::Input)
      model->inputs.push_back(b.id);
    if (b.kind == art::BufferKind::Output)
      model->outputs.push_back(b.id);
  }
  if (model->inputs.size() != 4 || model->outputs.empty())
    return makeStatus(V4RT_INCOMPATIBLE,
                      std::string(artifact_path) +
                          ": expected 4 inputs and at least one output");
  const art::Buffer &logits = *a.findBuffer(model->outputs[0]);
  model->info.batch = a.bounds().batch;
  model->info.max_context = a.bounds().maxContext;
  model->info.max_chunk = a.bounds().maxChunk;
  model->info.vocab_size = logits.shape.back();
  model->info.num_outputs = static_cast<int64_t>(model->outputs.size());
  if (v4rt_status_t s = loadKernels(*model, artifact_path))
    return s;
  if (v4rt_status_t s = bindParameters(*model, options->checkpoint_path))
    return s;
  *out_model = model.release();
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
  if (model && out_info)
    *out_info = model->info;
}

v4rt_status_t v4rt_session_reset(v4rt_session_t *session) {
  if (!session)
    return makeStatus(V4RT_INVALID_ARGUMENT, "v4rt_session_reset: NULL");
  runEntry(*session, *session->model->artifact.findEntryPoint("init_state"), 1);
  session->position = 0;
  return nullptr;
}

v4rt_status_t v4rt_session_create(v4rt_model_t *model,
                                  v4rt_session_t **out_session) {
  if (!model || !out_session)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_session_create: model and out_session must not "
                      "be NULL");
  *out_session = nullptr;
  auto s = std::make_unique<v4rt_session_t>();
  s->model = model;
  const art::Artifact &a = model->artifact;
  s->buffers.resize(a.buffers().size());
  for (const art::Buffer &b : a.buffers())
    if (b.kind != art::BufferKind::Parameter &&
        !s->buffers[b.id].allocate(a.bufferBytes(b, a.bounds().maxChunk)))
      return makeStatus(V4RT_RESOURCE_EXHAUSTED,
                        "out of memory for session buffer " +
                            std::to_string(b.id));
  v4rt_model_retain(model);
  if (v4rt_status_t st = v4rt_session_reset(s.get())) {
    v4rt_model_release(model);
    return st;
  }
  *out_session = s.release();
  return nullptr;
}

void v4rt_session_release(v4rt_session_t *session) {
  if (!session)
    return;
  v4rt_model_release(session->model);
  delete session;
}

int64_t v4rt_session_position(const v4rt_session_t *session) {
  return session ? session->position : 0;
}

v4rt_status_t v4rt_session_run(v4rt_session_t *session, const int64_t *ids,
                               const int64_t *next_ids, int64_t tokens,
                               float *logits, size_t logits_capacity,
                               float *mtp_logits, size_t mtp_capacity) {
  if (!session || !ids || !logits)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_session_run: session, ids and logits must not be "
                      "NULL");
  v4rt_model_t &m = *session->model;
  const v4rt_model_info_t &info = m.info;
  if (tokens < 1 || tokens > info.max_chunk)
    return makeStatus(V4RT_OUT_OF_RANGE,
                      "v4rt_session_run: tokens = " + std::to_string(tokens) +
                          " is outside [1, " + std::to_string(info.max_chunk) +
                          "], the compiled chunk bound");
  if (session->position + tokens > info.max_context)
    return makeStatus(V4RT_OUT_OF_RANGE,
                      "v4rt_session_run: position " +
                          std::to_string(session->position) + " + " +
                          std::to_string(tokens) +
                          " tokens exceeds the compiled "
                          "maximum context " +
                          std::to_string(info.max_context) +
                          "; recompile with a larger --max-context");
  const int64_t B = info.batch, V = info.vocab_size;
  const size_t need = static_cast<size_t>(B * tokens * V);
  if (logits_capacity < need || (mtp_logits && mtp_capacity < need))
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      "v4rt_session_run: the logits buffers hold fewer than "
                      "batch x tokens x vocab = " +
                          std::to_string(need) + " floats");
  if (mtp_logits && info.num_outputs < 2)
    return makeStatus(V4RT_FAILED_PRECONDITION,
                      "v4rt_session_run: the model has no MTP block");
  for (int64_t i = 0; i < B * tokens; ++i)
    if (ids[i] < 0 || ids[i] >= V ||
        (next_ids && (next_ids[i] < 0 || next_ids[i] >= V)))
      return makeStatus(V4RT_INVALID_ARGUMENT,
                        "v4rt_session_run: ids[" + std::to_string(i) +
                            "] is outside [0, " + std::to_string(V) +
                            "), the vocabulary");

  auto *in0 = static_cast<int64_t *>(session->buffers[m.inputs[0]].data);
  auto *in1 = static_cast<int64_t *>(session->buffers[m.inputs[1]].data);
  auto *in2 = static_cast<int64_t *>(session->buffers[m.inputs[2]].data);
  auto *in3 = static_cast<int64_t *>(session->buffers[m.inputs[3]].data);
  for (int64_t b = 0; b < B; ++b) {
    in2[b] = session->position;
    for (int64_t t = 0; t < tokens; ++t) {
      int64_t i = b * tokens + t;
      in0[i] = ids[i];
      in1[i] = next_ids ? next_ids[i]
                        : ids[b * tokens + std::min(t + 1, tokens - 1)];
      in3[i] = session->position + t;
    }
  }
  runEntry(*session, *m.artifact.findEntryPoint("step"), tokens);
  std::memcpy(logits, session->buffers[m.outputs[0]].data,
              need * sizeof(float));
  if (mtp_logits)
    std::memcpy(mtp_logits, session->buffers[m.outputs[1]].data,
                need * sizeof(float));
  session->position += tokens;
  return nullptr;
}

void v4rt_sampling_initialize(v4rt_sampling_t *sampling) {
  if (sampling)
    *sampling = v4rt_sampling_t{0.0f, 1.0f, 0};
}

int64_t v4rt_sample(const float *logits, int64_t vocab,
                    const v4rt_sampling_t *sampling, uint64_t *state) {
  if (!logits || vocab <= 0)
    return -1;
  int64_t best = 0;
  for (int64_t i = 1; i < vocab; ++i)
    if (logits[i] > logits[best])
      best = i;
  if (!sampling || sampling->temperature <= 0.0f || !state)
    return best;
  // Softmax at the temperature, nucleus cut at top_p, then one draw.
  std::vector<std::pair<float, int64_t>> p(vocab);
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    double e = std::exp((logits[i] - logits[best]) / sampling->temperature);
    p[i] = {static_cast<float>(e), i};
    sum += e;
  }
  std::sort(p.begin(), p.end(), [](auto &x, auto &y) {
    return x.first > y.first || (x.first == y.first && x.second < y.second);
  });
  double keep = 0, cut = sampling->top_p * sum;
  size_t n = 0;
  while (n < p.size() && (n == 0 || keep < cut))
    keep += p[n++].first;
  // splitmix64
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  double u = static_cast<double>(z >> 11) * 0x1.0p-53 * keep;
  for (size_t i = 0; i < n; ++i) {
    u -= p[i].first;
    if (u <= 0)
      return p[i].second;
  }
  return p[n - 1].second;
}

} // extern "C"
