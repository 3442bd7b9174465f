//===- Session.cpp - running entry points ---------------------------------===//
#include "runtime/src/Session.h"

#include <algorithm>

namespace v4::rt {

namespace art = v4::artifact;

Expected<std::unique_ptr<Session>> Session::create(const Model &model) {
  if (Status fits = model.reserveSession(); !fits)
    return fits;
  std::unique_ptr<Session> s(new Session(model));
  const art::Artifact &a = model.artifact();
  Device &dev = model.device();
  auto allocate = [&](uint64_t bytes,
                      const std::string &what) -> Expected<DeviceAllocation> {
    auto buffer = dev.allocate(bytes);
    if (!buffer)
      return Status::error(StatusCode::ResourceExhausted, "RT-6",
                           "out of " + std::string(dev.name()) +
                               " memory for " + what + ": " +
                               buffer.status().message());
    return DeviceAllocation(&dev, *buffer);
  };
  DeviceBuffer arena;
  if (a.arenaBytes() > 0) {
    auto owned = allocate(a.arenaBytes(), "the activation arena");
    if (!owned)
      return owned.status();
    arena = owned->buffer();
    s->owned.push_back(owned.take());
  }
  s->views.resize(a.buffers().size());
  for (const art::Buffer &b : a.buffers()) {
    uint64_t bytes = a.bufferBytes(b, a.bounds().maxChunk);
    if (b.kind == art::BufferKind::Parameter) {
      s->views[b.id] = model.parameter(b.id);
    } else if (b.arenaOffset >= 0) {
      s->views[b.id] = DeviceBuffer{
          static_cast<char *>(arena.address) + b.arenaOffset, bytes};
    } else {
      auto owned = allocate(bytes, "session buffer " + std::to_string(b.id));
      if (!owned)
        return owned.status();
      s->views[b.id] = owned->buffer();
      s->owned.push_back(owned.take());
    }
  }
  if (Status st = s->reset(); !st)
    return st;
  return s;
}

Session::~Session() { m.releaseSession(); }

DeviceBuffer Session::buffer(uint32_t id) const { return views[id]; }

Status Session::reset() {
  if (Status s = runEntry(m.initState(), 1); !s)
    return s;
  pos = 0;
  return Status::success();
}

Status Session::runEntry(const art::EntryPoint &entry, int64_t tokens) {
  const art::Artifact &a = m.artifact();
  Device &dev = m.device();
  for (const art::Step &step : entry.steps) {
    args.resize(step.buffers.size());
    for (size_t i = 0; i < step.buffers.size(); ++i) {
      const art::Buffer &b = *a.findBuffer(step.buffers[i]);
      args[i].buffer = buffer(b.id);
      args[i].sizes.resize(b.shape.size());
      for (size_t r = 0; r < b.shape.size(); ++r)
        args[i].sizes[r] = b.shape[r] < 0 ? tokens : b.shape[r];
    }
    if (Status s = dev.launch(step.kernel, args, tokens); !s)
      return s;
  }
  return dev.synchronize();
}

Status Session::run(const int64_t *ids, const int64_t *nextIds, int64_t tokens,
                    float *logits, float *mtpLogits) {
  const ModelInfo &info = m.info();
  Device &dev = m.device();
  const int64_t B = info.batch;
  const size_t n = static_cast<size_t>(B * tokens);
  // The inputs, by role (artifact::role::kInputs order).
  staging.resize(n);
  std::copy(ids, ids + n, staging.begin());
  if (Status s = dev.upload(buffer(m.inputs()[0]), 0, staging.data(),
                            n * sizeof(int64_t));
      !s)
    return s;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < tokens; ++t) {
      int64_t i = b * tokens + t;
      staging[i] =
          nextIds ? nextIds[i] : ids[b * tokens + std::min(t + 1, tokens - 1)];
    }
  if (Status s = dev.upload(buffer(m.inputs()[1]), 0, staging.data(),
                            n * sizeof(int64_t));
      !s)
    return s;
  std::vector<int64_t> starts(static_cast<size_t>(B), pos);
  if (Status s = dev.upload(buffer(m.inputs()[2]), 0, starts.data(),
                            starts.size() * sizeof(int64_t));
      !s)
    return s;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < tokens; ++t)
      staging[b * tokens + t] = pos + t;
  if (Status s = dev.upload(buffer(m.inputs()[3]), 0, staging.data(),
                            n * sizeof(int64_t));
      !s)
    return s;

  if (Status s = runEntry(m.step(), tokens); !s)
    return s;
  size_t rows = info.logitsPositions ? static_cast<size_t>(B) : n;
  size_t bytes = rows * static_cast<size_t>(info.vocabSize) * sizeof(float);
  if (Status s = dev.download(logits, buffer(m.outputs()[0]), 0, bytes); !s)
    return s;
  if (mtpLogits)
    if (Status s = dev.download(mtpLogits, buffer(m.outputs()[1]), 0, bytes);
        !s)
      return s;
  pos += tokens;
  return Status::success();
}

} // namespace v4::rt
