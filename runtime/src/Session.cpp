//===- Session.cpp - running entry points ---------------------------------===//
#include "runtime/src/Session.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

namespace v4::rt {

namespace art = v4::artifact;

Expected<std::unique_ptr<Session>> Session::create(const Model &model) {
  if (Status fits = model.reserveSession(); !fits)
    return fits;
  std::unique_ptr<Session> s(new Session(model));
  const art::Artifact &a = model.artifact();
  Device &dev = model.device();
  // The session's own queue (on the GPU: a stream and a kernel workspace).
  auto queue = dev.createQueue();
  if (!queue)
    return queue.status();
  s->queue = queue.take();
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
  for (size_t slot = 0; slot < a.buffers().size(); ++slot) {
    const art::Buffer &b = a.buffers()[slot];
    uint64_t bytes = a.bufferBytes(b, a.bounds().maxChunk);
    if (b.kind == art::BufferKind::Parameter) {
      s->views[slot] = model.parameter(slot);
    } else if (b.arenaOffset >= 0) {
      s->views[slot] = DeviceBuffer{
          static_cast<char *>(arena.address) + b.arenaOffset, bytes};
    } else {
      auto owned = allocate(bytes, "session buffer " + std::to_string(b.id));
      if (!owned)
        return owned.status();
      s->views[slot] = owned->buffer();
      s->owned.push_back(owned.take());
    }
  }
  // A partitioned plan's rank input: written once, read by every step.
  if (model.rankInput() >= 0) {
    int64_t rank = model.rank();
    if (Status st = dev.upload(s->buffer(uint32_t(model.rankInput())), 0, &rank,
                               sizeof(rank), s->queue.get());
        !st)
      return st;
  }
  if (Status st = s->reset(); !st)
    return st;
  return s;
}

Session::~Session() { m.releaseSession(); }

DeviceBuffer Session::buffer(uint32_t id) const {
  // Every id the model uses resolves (AF-9..AF-12, RT-2).
  return views[m.artifact().bufferSlot(id)];
}

Status Session::reset() {
  if (Status s = runEntry(m.initState(), 1); !s)
    return s;
  pos.assign(static_cast<size_t>(m.info().batch), 0);
  return Status::success();
}

Status Session::resetSequence(int64_t row) {
  const art::Artifact &a = m.artifact();
  Device &dev = m.device();
  const int64_t B = m.info().batch;
  for (const art::StateSpec &spec : a.stateSpecs()) {
    for (uint32_t id : spec.buffers) {
      const art::Buffer &b = *a.findBuffer(id);
      // State buffers lead with the batch dim: row `row` is one slice.
      uint64_t bytes = a.bufferBytes(b, a.bounds().maxChunk);
      if (b.shape.empty() || b.shape[0] != B || bytes % uint64_t(B))
        return Status::error(StatusCode::Internal, "RT-7",
                             "state buffer " + std::to_string(id) +
                                 " does not lead with the batch dim");
      uint64_t rowBytes = bytes / uint64_t(B);
      // The init_state values (AF-11 reset kinds).
      uint8_t pattern[8] = {};
      size_t width = 1;
      if (spec.reset == art::ResetKind::NegativeInfinity) {
        if (b.dtype == art::DType::F32) {
          float v = -INFINITY;
          std::memcpy(pattern, &v, 4);
          width = 4;
        } else if (b.dtype == art::DType::BF16) {
          pattern[0] = 0x80;
          pattern[1] = 0xFF;
          width = 2;
        } else {
          return Status::error(StatusCode::Internal, "RT-7",
                               "-inf reset of a " +
                                   std::string(art::dtypeName(b.dtype)) +
                                   " state");
        }
      } else if (spec.reset == art::ResetKind::PadId) {
        width = (art::dtypeBits(b.dtype) + 7) / 8;
        if (width != 4 && width != 8)
          return Status::error(StatusCode::Internal, "RT-7",
                               "pad-id reset of a " +
                                   std::string(art::dtypeName(b.dtype)) +
                                   " state");
        if (width == 8) {
          int64_t v = spec.padValue;
          std::memcpy(pattern, &v, 8);
        } else {
          int32_t v = static_cast<int32_t>(spec.padValue);
          std::memcpy(pattern, &v, 4);
        }
      }
      if (Status s = dev.fill(buffer(id), uint64_t(row) * rowBytes, rowBytes,
                              pattern, width, queue.get());
          !s)
        return s;
    }
  }
  pos[row] = 0;
  return dev.synchronize(queue.get());
}

namespace {
/// An all_to_all's rows buffer of `bytes` bytes (its shape at this call's
/// token count): `world` blocks along dim 0 of `rows` rows of the last
/// dim's `rowElements` elements (AF-19: rank >= 2, dim 0 the world).
struct RowBlocks {
  size_t rows = 0, rowElements = 0;
};
RowBlocks rowBlocks(const art::Buffer &b, uint64_t bytes, int world) {
  RowBlocks r;
  r.rowElements = size_t(b.shape.back());
  uint64_t rowBytes = r.rowElements * ((art::dtypeBits(b.dtype) + 7) / 8);
  r.rows = rowBytes == 0 ? 0 : size_t(bytes / rowBytes / uint64_t(world));
  return r;
}
} // namespace

Status Session::collective(const art::Step &step, int64_t tokens) {
  const art::Artifact &a = m.artifact();
  Device &dev = m.device();
  Collectives *comm = m.collectives();
  // AF-19: a collective is in a plan of more than one rank, which Model
  // has joined (RT-10).
  if (!comm)
    return Status::error(StatusCode::Internal, "RT-7",
                         "a collective step without collectives");
  auto nccl = m.deviceCollectives();
  if (!nccl)
    return nccl.status();
  if (*nccl)
    return deviceCollective(**nccl, step, tokens);
  // The kernels before it have finished; the engines work on host memory:
  // the buffers' own, or staged copies (`in` then `out`, one allocation).
  if (Status s = dev.synchronize(queue.get()); !s)
    return s;
  struct Side {
    DeviceBuffer buffer;
    uint64_t bytes = 0;
    void *host = nullptr;
  };
  std::vector<Side> sides;
  uint64_t staged = 0;
  for (uint32_t id : step.buffers) {
    size_t slot = a.bufferSlot(id);
    Side side{views[slot], a.bufferBytes(a.buffers()[slot], tokens)};
    side.host = dev.hostAddress(side.buffer);
    if (!side.host)
      staged += side.bytes;
    sides.push_back(side);
  }
  collectiveStaging.resize(staged);
  uint64_t at = 0;
  for (Side &side : sides)
    if (!side.host) {
      side.host = collectiveStaging.data() + at;
      at += side.bytes;
      if (Status s =
              dev.download(side.host, side.buffer, 0, side.bytes, queue.get());
          !s)
        return s;
    }
  const art::Buffer &first = *a.findBuffer(step.buffers[0]);
  const uint64_t width = (art::dtypeBits(first.dtype) + 7) / 8;
  Status done;
  // The sides written: the last (and all_to_all's received counts).
  size_t results = 1;
  switch (step.collective) {
  case art::Collective::AllReduceSum:
    done =
        comm->allReduceSum(sides[0].host, sides[0].bytes / width, first.dtype);
    break;
  case art::Collective::AllGather:
    done = comm->allGather(sides[0].host, sides[1].host, sides[0].bytes / width,
                           first.dtype);
    break;
  case art::Collective::ReduceScatterSum:
    done = comm->reduceScatterSum(sides[0].host, sides[1].host,
                                  sides[1].bytes / width, first.dtype);
    break;
  case art::Collective::AllToAll: {
    const art::Buffer &rows = *a.findBuffer(step.buffers[1]);
    RowBlocks blocks = rowBlocks(rows, sides[1].bytes, comm->world());
    done = comm->allToAll(static_cast<const int64_t *>(sides[0].host),
                          sides[1].host, static_cast<int64_t *>(sides[2].host),
                          sides[3].host, blocks.rows, blocks.rowElements,
                          rows.dtype);
    results = 2;
    break;
  }
  case art::Collective::None:
    done = Status::error(StatusCode::Internal, "RT-7",
                         "a launch step run as a collective");
    break;
  }
  if (!done)
    return done;
  for (size_t i = sides.size() - results; i < sides.size(); ++i) {
    Side &result = sides[i];
    if (dev.hostAddress(result.buffer))
      continue;
    if (Status s = dev.upload(result.buffer, 0, result.host, result.bytes,
                              queue.get());
        !s)
      return s;
  }
  return Status::success();
}

Status Session::deviceCollective(NcclCollectives &nccl, const art::Step &step,
                                 int64_t tokens) {
  const art::Artifact &a = m.artifact();
  std::vector<DeviceBuffer> sides;
  for (uint32_t id : step.buffers) {
    size_t slot = a.bufferSlot(id);
    sides.push_back({views[slot].address,
                     size_t(a.bufferBytes(a.buffers()[slot], tokens))});
  }
  const art::Buffer &first = *a.findBuffer(step.buffers[0]);
  const uint64_t width = (art::dtypeBits(first.dtype) + 7) / 8;
  switch (step.collective) {
  case art::Collective::AllReduceSum:
    return nccl.allReduceSum(sides[0].address, sides[0].bytes / width,
                             first.dtype, queue.get());
  case art::Collective::AllGather:
    return nccl.allGather(sides[0].address, sides[1].address,
                          sides[0].bytes / width, first.dtype, queue.get());
  case art::Collective::ReduceScatterSum:
    return nccl.reduceScatterSum(sides[0].address, sides[1].address,
                                 sides[1].bytes / width, first.dtype,
                                 queue.get());
  case art::Collective::AllToAll: {
    const art::Buffer &rows = *a.findBuffer(step.buffers[1]);
    RowBlocks blocks = rowBlocks(rows, sides[1].bytes, nccl.world());
    return nccl.allToAll(
        static_cast<const int64_t *>(sides[0].address), sides[1].address,
        static_cast<int64_t *>(sides[2].address), sides[3].address, blocks.rows,
        blocks.rowElements, rows.dtype, queue.get());
  }
  case art::Collective::None:
    break;
  }
  return Status::error(StatusCode::Internal, "RT-7",
                       "a launch step run as a collective");
}

void Session::setProfiling(bool enabled) {
  profiling = enabled;
  measured.clear();
  for (std::unique_ptr<Device::Recording> &r : decodeSteps)
    r.reset();
}

std::vector<Session::ProfileEntry> Session::profile() const {
  std::vector<ProfileEntry> out;
  for (const ProfileEntry &e : measured)
    if (e.calls)
      out.push_back(e);
  std::stable_sort(out.begin(), out.end(),
                   [](const ProfileEntry &x, const ProfileEntry &y) {
                     return x.seconds > y.seconds;
                   });
  return out;
}

Session::ProfileEntry &Session::profileEntry(size_t index, int64_t tokens) {
  const art::Artifact &a = m.artifact();
  const size_t kernels = a.kernels().size(), kinds = kernels + 6;
  if (measured.empty()) {
    measured.resize(2 * kinds);
    for (size_t i = 0; i < 2 * kinds; ++i) {
      size_t k = i % kinds;
      ProfileEntry &e = measured[i];
      e.oneToken = i >= kinds;
      e.kind = k < kernels       ? ProfileEntry::Kernel
               : k < kernels + 5 ? ProfileEntry::Collective
                                 : ProfileEntry::Call;
      e.name = e.kind == ProfileEntry::Kernel ? a.kernels()[k].name.c_str()
               : e.kind == ProfileEntry::Collective
                   ? art::collectiveName(art::Collective(k - kernels))
                   : m.step().name.c_str();
    }
  }
  return measured[(tokens == 1 ? kinds : 0) + index];
}

Status Session::launchEntry(const art::EntryPoint &entry, int64_t tokens) {
  const art::Artifact &a = m.artifact();
  Device &dev = m.device();
  using Clock = std::chrono::steady_clock;
  auto timed = [&](const art::Step &step, Clock::time_point start) {
    if (Status s = dev.synchronize(queue.get()); !s)
      return s;
    size_t k = step.collective == art::Collective::None
                   ? step.kernel
                   : a.kernels().size() + size_t(step.collective);
    ProfileEntry &e = profileEntry(k, tokens);
    e.calls++;
    e.seconds += std::chrono::duration<double>(Clock::now() - start).count();
    return Status::success();
  };
  // The launch arguments of `step` into `out`.
  auto bind = [&](const art::Step &step, std::vector<LaunchArg> &out) {
    out.resize(step.buffers.size());
    const bool sliced = a.kernels()[step.kernel].launch.tokenSlice != 0;
    for (size_t i = 0; i < step.buffers.size(); ++i) {
      size_t slot = a.bufferSlot(step.buffers[i]);
      const art::Buffer &b = a.buffers()[slot];
      out[i].buffer = views[slot];
      out[i].sizes.resize(b.shape.size());
      out[i].tokenDim = -1;
      out[i].tokenBytes = 0;
      for (size_t r = 0; r < b.shape.size(); ++r) {
        out[i].sizes[r] = b.shape[r] < 0 ? tokens : b.shape[r];
        // AF-10: only size-1 dims before a sliced kernel's token dim.
        if (sliced && b.shape[r] < 0) {
          out[i].tokenDim = int(r);
          out[i].tokenBytes = a.bufferBytes(b, 1);
        }
      }
    }
  };
  const std::vector<art::Step> &steps = entry.steps;
  for (size_t at = 0; at < steps.size(); ++at) {
    const art::Step &step = steps[at];
    Clock::time_point start = profiling ? Clock::now() : Clock::time_point();
    if (step.collective != art::Collective::None) {
      if (Status s = collective(step, tokens); !s)
        return s;
      if (profiling)
        if (Status s = timed(step, start); !s)
          return s;
      continue;
    }
    // A launch and the concurrent ones after it (AF-10: launches) run as
    // one group; profiling times each step alone.
    size_t end = at + 1;
    while (!profiling && end < steps.size() && steps[end].concurrent)
      ++end;
    if (end - at > 1) {
      if (groupArgs.size() < end - at)
        groupArgs.resize(end - at);
      group.clear();
      for (size_t j = at; j < end; ++j) {
        bind(steps[j], groupArgs[j - at]);
        group.push_back({steps[j].kernel, &groupArgs[j - at]});
      }
      if (Status s = dev.launchConcurrent(group, tokens, queue.get()); !s)
        return s;
      at = end - 1;
      continue;
    }
    bind(step, args);
    if (Status s = dev.launch(step.kernel, args, tokens, queue.get()); !s)
      return s;
    if (profiling)
      if (Status s = timed(step, start); !s)
        return s;
  }
  return Status::success();
}

Status Session::runEntry(const art::EntryPoint &entry, int64_t tokens) {
  if (Status s = launchEntry(entry, tokens); !s)
    return s;
  return m.device().synchronize(queue.get());
}

Status Session::runStep(int64_t tokens, bool mtpLogits) {
  Device &dev = m.device();
  const art::EntryPoint &steps = m.stepFor(mtpLogits);
  // A host collective cannot be part of a recording; profiling times each
  // step.
  if (tokens != 1 || !dev.canRecord() || m.collectives() || profiling)
    return runEntry(steps, tokens);
  std::unique_ptr<Device::Recording> &decodeStep = decodeSteps[mtpLogits];
  if (!decodeStep) {
    if (Status s = dev.beginRecording(queue.get()); !s)
      return s;
    Status launched = launchEntry(steps, tokens);
    auto recording = dev.endRecording(queue.get());
    if (!launched)
      return launched;
    if (!recording)
      return recording.status();
    decodeStep = recording.take();
  }
  if (Status s = dev.replay(*decodeStep, queue.get()); !s)
    return s;
  return dev.synchronize(queue.get());
}

Status Session::run(const int64_t *ids, const int64_t *nextIds, int64_t tokens,
                    float *logits, float *mtpLogits) {
  const ModelInfo &info = m.info();
  Device &dev = m.device();
  const int64_t B = info.batch;
  const size_t n = static_cast<size_t>(B * tokens);
  std::chrono::steady_clock::time_point start;
  if (profiling)
    start = std::chrono::steady_clock::now();
  // The inputs, by role (artifact::role::kInputs order).
  staging.resize(n);
  std::copy(ids, ids + n, staging.begin());
  if (Status s = dev.upload(buffer(m.inputs()[0]), 0, staging.data(),
                            n * sizeof(int64_t), queue.get());
      !s)
    return s;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < tokens; ++t) {
      int64_t i = b * tokens + t;
      staging[i] =
          nextIds ? nextIds[i] : ids[b * tokens + std::min(t + 1, tokens - 1)];
    }
  if (Status s = dev.upload(buffer(m.inputs()[1]), 0, staging.data(),
                            n * sizeof(int64_t), queue.get());
      !s)
    return s;
  std::vector<int64_t> starts(pos);
  if (Status s = dev.upload(buffer(m.inputs()[2]), 0, starts.data(),
                            starts.size() * sizeof(int64_t), queue.get());
      !s)
    return s;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < tokens; ++t)
      staging[b * tokens + t] = pos[b] + t;
  if (Status s = dev.upload(buffer(m.inputs()[3]), 0, staging.data(),
                            n * sizeof(int64_t), queue.get());
      !s)
    return s;

  if (Status s = runStep(tokens, mtpLogits != nullptr); !s)
    return s;
  size_t rows = info.logitsPositions ? static_cast<size_t>(B) : n;
  size_t bytes = rows * static_cast<size_t>(info.vocabSize) * sizeof(float);
  if (Status s =
          dev.download(logits, buffer(m.outputs()[0]), 0, bytes, queue.get());
      !s)
    return s;
  if (mtpLogits)
    if (Status s = dev.download(mtpLogits, buffer(m.outputs()[1]), 0, bytes,
                                queue.get());
        !s)
      return s;
  for (int64_t &p : pos)
    p += tokens;
  if (profiling) {
    ProfileEntry &e = profileEntry(m.artifact().kernels().size() + 5, tokens);
    e.calls++;
    e.seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
  }
  return Status::success();
}

} // namespace v4::rt
