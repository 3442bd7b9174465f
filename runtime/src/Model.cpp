//===- Model.cpp - loading a model ----------------------------------------===//
#include "runtime/src/Model.h"

#include "runtime/base/Bytes.h"
#include "runtime/base/NumpyRandom.h"
#include "runtime/safetensors/Safetensors.h"
#include "runtime/src/Digest.h"
#include "runtime/src/SyntheticWeights.h"
#include "runtime/src/comm/MpiPlugin.h"

#include <cstring>

namespace v4::rt {

namespace art = v4::artifact;
namespace st = v4::safetensors;

namespace {

/// The values of a derived parameter (AF-12 has checked it is I64 [n]).
std::vector<int64_t> derivedValues(const art::Parameter &p) {
  return numpy::engramMultipliers(p.derived.seed, p.derived.bound,
                                  static_cast<size_t>(p.shape[0]));
}

std::string derivedRule(const art::Parameter &p) {
  return numpy::describeEngramMultiplierRule(p.derived.seed, p.derived.bound);
}

/// RT-8: the checkpoint's copy of `name` equals `values`.
Status checkCopy(const std::string &ckpt, const st::Reader &reader,
                 const std::string &name, const std::vector<int64_t> &values,
                 const std::string &rule) {
  std::vector<int64_t> stored(values.size());
  if (Status s = reader.copyTensor(name, stored.data(),
                                   stored.size() * sizeof(int64_t));
      !s)
    return s;
  for (size_t i = 0; i < values.size(); ++i)
    if (stored[i] != values[i])
      return Status::error(
          "RT-8", ckpt + ": checkpoint tensor '" + name + "' element " +
                      std::to_string(i) + " is " + std::to_string(stored[i]) +
                      ", but " + rule + " gives " + std::to_string(values[i]) +
                      "; a stored copy must equal the computed values (or be "
                      "left out)");
  return Status::success();
}

} // namespace

Model::~Model() = default;

Expected<std::unique_ptr<Model>> Model::load(const std::string &path,
                                             const LoadOptions &opts) {
  if (opts.syntheticSeed && !opts.checkpoint.empty())
    return Status::error("RT-9",
                         path + ": synthetic weights (seed " +
                             std::to_string(*opts.syntheticSeed) +
                             ") and the checkpoint '" + opts.checkpoint +
                             "' were both given: synthetic weights replace the "
                             "checkpoint, give one of them");
  art::LoadOptions options;
  if (!opts.expectedSha256.empty()) {
    auto expected = normalizeSha256(opts.expectedSha256);
    if (!expected)
      return expected.status();
    options.checkBytes = [&path, digest = *expected](const uint8_t *data,
                                                     uint64_t size) {
      return checkSha256(path, data, size, digest);
    };
  }
  auto loaded = art::Artifact::loadFile(path, options);
  if (!loaded)
    return loaded.status();
  std::unique_ptr<Model> m(new Model(loaded.take()));
  const art::Artifact &a = m->art;

  m->stepEntry = a.findEntryPoint("step");
  m->initEntry = a.findEntryPoint("init_state");
  if (!m->stepEntry || !m->initEntry)
    return Status::error(StatusCode::Incompatible, "RT-1",
                         path + ": no 'step' and 'init_state' entry points");
  // Outputs: bit 0 the logits, bit 1 the MTP logits (Session::run).
  for (bool mtp : {false, true})
    m->stepVariants[mtp] = art::stepsFor(*m->stepEntry, mtp ? 3 : 1);
  for (const char *role : art::role::kInputs) {
    const art::Buffer *b = a.findBufferByRole(role);
    if (!b || b->kind != art::BufferKind::Input)
      return Status::error(StatusCode::Incompatible, "RT-2",
                           path + ": no input with role '" + role + "'");
    m->inputIds.push_back(b->id);
  }
  for (size_t i = 0;; ++i) {
    const art::Buffer *b = a.findBufferByRole(art::outputRole(i));
    if (!b)
      break;
    m->outputIds.push_back(b->id);
  }
  if (m->outputIds.empty())
    return Status::error(StatusCode::Incompatible, "RT-2",
                         path + ": no output with role 'logits'");
  // AF-17 has checked the shapes: logits F32 [batch, -1 or 1, vocab].
  const art::Buffer &logits = *a.findBuffer(m->outputIds[0]);
  m->modelInfo.batch = a.bounds().batch;
  m->modelInfo.maxContext = a.bounds().maxContext;
  m->modelInfo.maxChunk = a.bounds().maxChunk;
  m->modelInfo.vocabSize = logits.shape[2];
  m->modelInfo.numOutputs = static_cast<int64_t>(m->outputIds.size());
  // The logits' token dim: -1 (every position) or 1 (the last one).
  m->modelInfo.logitsPositions = logits.shape[1] < 0 ? 0 : 1;

  // RT-3: the device asked for (else the first target's) and its kernels.
  DeviceSpec spec{a.target(), 0};
  if (!opts.device.empty()) {
    auto parsed = parseDeviceSpec(opts.device, "device");
    if (!parsed)
      return parsed.status();
    spec = *parsed;
  }
  if (!a.kernelsFor(spec.target)) {
    std::string has;
    for (art::Target t : a.targets())
      has += (has.empty() ? "" : ", ") + std::string(art::targetName(t));
    return Status::error(StatusCode::Incompatible, "RT-3",
                         path + ": device " + deviceSpecName(spec) + " runs " +
                             art::targetName(spec.target) +
                             " kernels, and the artifact has kernels for " +
                             has + " only: compile with v4c --target=" + has +
                             "," + art::targetName(spec.target));
  }
  if (Status s = m->joinWorld(opts); !s)
    return s;
  auto device = createDevice(spec.target, path, opts.threads, spec.ordinal);
  if (!device)
    return device.status();
  m->dev = device.take();
  m->memoryLimit = opts.memoryLimit;
  art::Artifact::MemoryTotals need = a.memoryTotals();
  if (Status s = m->checkFits(need.weights + need.session(), 0,
                              "its weights and one session", true);
      !s)
    return s;
  m->reserved = need.weights;
  if (Status s = m->dev->loadKernels(a); !s)
    return s;
  if (Status s = opts.syntheticSeed ? m->bindSyntheticParameters(
                                          *opts.syntheticSeed, opts.threads)
                                    : m->bindParameters(opts.checkpoint);
      !s)
    return s;
  // The weights went up on the device's default queue; sessions launch on
  // queues of their own, which do not wait for it.
  if (Status s = m->dev->synchronize(); !s)
    return s;
  return m;
}

Status Model::joinWorld(const LoadOptions &opts) {
  const art::Artifact &a = art;
  if (const art::Buffer *b = a.findBufferByRole(art::role::kRank))
    rankInputId = b->id;
  uint32_t world = a.worldSize();
  if (world == 1)
    return Status::success();
  comm = opts.collectives;
  if (!comm) {
    CollectivesOptions co;
    if (opts.collectiveTimeout > 0)
      co.timeoutSeconds = opts.collectiveTimeout;
    auto opened = openCollectives(co);
    if (!opened)
      return opened.status();
    comm = *opened;
  }
  if (comm->world() != int(world))
    return Status::error(
        StatusCode::FailedPrecondition, "RT-10",
        a.source() + ": the artifact is partitioned over " +
            std::to_string(world) + " ranks (v4c --ep " +
            std::to_string(world) + "), but this process is rank " +
            std::to_string(comm->rank()) + " of a world of " +
            std::to_string(comm->world()) + " (" + comm->engine() +
            "): launch it with mpirun -np " + std::to_string(world));
  rankIndex = uint32_t(comm->rank());
  // Every rank must run the same plan: count the ranks whose artifact
  // differs from rank 0's, so that all of them fail together.
  int64_t mine[2] = {int64_t(a.fileCrc32()), int64_t(a.fileSize())};
  int64_t first[2] = {mine[0], mine[1]};
  if (Status s = comm->broadcast(first, sizeof(first), 0); !s)
    return s;
  int64_t differing = first[0] != mine[0] || first[1] != mine[1];
  if (Status s = comm->allReduceSum(&differing, 1, DType::I64); !s)
    return s;
  if (differing)
    return Status::error(
        StatusCode::FailedPrecondition, "RT-10",
        a.source() + ": " + std::to_string(differing) + " of " +
            std::to_string(world) +
            " ranks loaded a different artifact than rank 0 (CRC-32 or "
            "size differ; this rank's: " +
            std::to_string(a.fileCrc32()) + ", " +
            std::to_string(a.fileSize()) +
            " B): every rank must load the same file");
  return Status::success();
}

Status Model::checkFits(uint64_t need, uint64_t used, const std::string &what,
                        bool load) const {
  uint64_t available = memoryLimit
                           ? (memoryLimit > used ? memoryLimit - used : 0)
                           : dev->availableMemory();
  if (need <= available)
    return Status::success();
  art::Artifact::MemoryTotals t = art.memoryTotals();
  const art::Bounds &b = art.bounds();
  std::string source = memoryLimit ? "of the memory limit of " +
                                         formatBytes(memoryLimit) + " are left"
                                   : "are available on the device";
  std::string message =
      art.source() + ": " + (load ? "the model" : "a session") + " needs " +
      formatBytes(need) + " (" + std::to_string(need) + " B) of " +
      dev->name() + " memory for " + what + ", but only " +
      formatBytes(available) + " (" + std::to_string(available) + " B) " +
      source + ". Weights " + formatBytes(t.weights) + "; per session " +
      formatBytes(t.session()) + ": state " + formatBytes(t.state) +
      " at batch " + std::to_string(b.batch) + " and max context " +
      std::to_string(b.maxContext) + ", activation arena " +
      formatBytes(t.arena + t.otherActivations) + " at max chunk " +
      std::to_string(b.maxChunk) + ", inputs/outputs " + formatBytes(t.io) +
      ". ";
  if (load && t.weights > available)
    message += "The weights alone do not fit: use a device with more memory";
  else
    message += "Recompile with a smaller --max-context, --max-chunk or "
               "--batch (v4c --emit=plan shows the memory at other bounds)";
  return Status::error(StatusCode::ResourceExhausted, "RT-6", message);
}

Status Model::reserveSession() const {
  uint64_t need = art.memoryTotals().session();
  uint64_t used = reserved.load();
  if (Status s =
          checkFits(need, used, "its state, arena and inputs/outputs", false);
      !s)
    return s;
  reserved += need;
  return Status::success();
}

void Model::releaseSession() const { reserved -= art.memoryTotals().session(); }

/// Checks the checkpoint against the manifest (all mismatches at once) and
/// copies every parameter into its device buffer.
Status Model::bindParameters(const std::string &ckpt) {
  const art::Artifact &a = art;
  auto reader = st::Reader::open(ckpt);
  if (!reader)
    return reader.status();
  struct Member {
    std::string name;
    uint32_t buffer;
    size_t offset, bytes;
  };
  std::vector<st::ManifestEntry> expected;
  std::vector<Member> members;
  // Derived parameters the checkpoint lacks: computed below (RT-8).
  std::vector<const art::Parameter *> computed;
  // This rank's slices of tensor-parallel parameters or stack members
  // (prepared): the slice, and its offset and bytes in the parameter's
  // buffer.
  struct Slice {
    art::Parameter param;
    size_t offset = 0, bytes = 0;
  };
  std::vector<Slice> sliced;
  for (const art::Parameter &p : a.parameters()) {
    const art::Buffer *buf = a.findBuffer(p.buffer);
    size_t total = a.bufferBytes(*buf, a.bounds().maxChunk);
    size_t at = p.name.find("{}");
    bool derived = p.derived.rule != art::DerivedRule::None;
    if (derived && !reader->find(p.name)) {
      expected.push_back({p.name, p.dtype, p.shape, true});
      computed.push_back(&p);
      continue;
    }
    if (p.sliceDim >= 0 && at == std::string::npos) {
      // A tensor-parallel slice: gathered below from the whole tensor.
      expected.push_back({p.name, p.dtype, art::checkpointShape(p), derived});
      sliced.push_back({p, 0, total});
      continue;
    }
    if (at == std::string::npos) {
      expected.push_back({p.name, p.dtype, p.shape, derived});
      members.push_back({p.name, p.buffer, 0, total});
      continue;
    }
    // A per-expert stack: member e is slice e of the buffer.
    int64_t count = p.shape.empty() ? 0 : p.shape[0];
    std::vector<int64_t> shape(p.shape.begin() + 1, p.shape.end());
    size_t each = count > 0 ? total / static_cast<size_t>(count) : 0;
    if (p.sliceDim >= 0) {
      // Every member's slice (tensor-parallel experts).
      for (int64_t e = 0; e < count; ++e) {
        art::Parameter m = art::stackMemberSlice(p, e);
        expected.push_back({m.name, m.dtype, art::checkpointShape(m), false});
        sliced.push_back({std::move(m), static_cast<size_t>(e) * each, each});
      }
      continue;
    }
    for (int64_t e = 0; e < count; ++e) {
      std::optional<std::string> name = art::stackMemberName(p, e, rankIndex);
      // Padding of a shard (zeros) is in no checkpoint.
      members.push_back(
          {name.value_or(""), p.buffer, static_cast<size_t>(e) * each, each});
      if (name)
        expected.push_back({*name, p.dtype, shape, false});
    }
    // The other ranks' shards: a whole checkpoint carries them, a rank's
    // own need not; this rank reads none of their bytes.
    for (uint32_t r = 0; r < p.shards; ++r)
      if (r != rankIndex)
        for (int64_t e = 0; e < count; ++e)
          if (std::optional<std::string> name = art::stackMemberName(p, e, r))
            expected.push_back({*name, p.dtype, shape, true});
  }
  for (const art::CheckedTensor &c : a.checkedTensors())
    expected.push_back(
        {c.name, DType::I64, {static_cast<int64_t>(c.values.size())}, true});
  if (Status check = st::checkManifest(ckpt, reader->tensors(), expected);
      !check)
    return check;
  // RT-8: stored copies of derived parameters and checked tensors.
  for (const art::Parameter &p : a.parameters())
    if (p.derived.rule != art::DerivedRule::None && reader->find(p.name))
      if (Status s = checkCopy(ckpt, *reader, p.name, derivedValues(p),
                               derivedRule(p));
          !s)
        return s;
  for (const art::CheckedTensor &c : a.checkedTensors())
    if (reader->find(c.name))
      if (Status s = checkCopy(ckpt, *reader, c.name, c.values, c.rule); !s)
        return s;
  // A parameter the checkpoint stores as the kernels read it (every one but
  // the per-expert stacks, gathered from E tensors) is served from the
  // mapped checkpoint when the device can read host memory; the rest is
  // prepared: copied into a buffer of its own.
  paramViews.resize(a.buffers().size());
  std::vector<bool> mapped(paramViews.size(), false);
  for (const art::Parameter &p : a.parameters()) {
    if (p.name.find("{}") != std::string::npos)
      continue;
    // A tensor-parallel slice that is one run of the tensor (rows) is
    // mapped too; the rest of the tensor is never touched.
    std::optional<std::pair<uint64_t, uint64_t>> run;
    if (p.sliceDim >= 0 &&
        !(run = art::contiguousSliceBytes(p, rankIndex)).has_value())
      continue;
    auto span = reader->data(p.name);
    if (!span)
      continue; // accepted misaligned: copied below
    if (run)
      span = st::ByteSpan{span->data + run->first, size_t(run->second)};
    auto view = dev->mapHostMemory(span->data, span->size);
    if (!view)
      continue;
    paramViews[a.bufferSlot(p.buffer)] = *view;
    mapped[a.bufferSlot(p.buffer)] = true;
    modelInfo.weightsMapped += span->size;
  }
  if (Status s = allocateParameterBuffers(mapped); !s)
    return s;
  std::vector<uint8_t> staging;
  for (const Member &mem : members) {
    size_t slot = a.bufferSlot(mem.buffer);
    if (mapped[slot])
      continue;
    DeviceBuffer dst = paramViews[slot];
    if (mem.name.empty())
      continue; // a shard's padding: zeroed at allocation

    if (auto *host = static_cast<uint8_t *>(dev->hostAddress(dst))) {
      if (Status s = reader->copyTensor(mem.name, host + mem.offset, mem.bytes);
          !s)
        return s;
      continue;
    }
    staging.resize(mem.bytes);
    if (Status s = reader->copyTensor(mem.name, staging.data(), mem.bytes); !s)
      return s;
    if (Status s = dev->upload(dst, mem.offset, staging.data(), mem.bytes); !s)
      return s;
  }
  // A slice reads the rank's rows of the whole tensor (mapped, or copied
  // when the checkpoint holds it misaligned).
  std::vector<uint8_t> whole;
  for (const auto &[p, offset, bytes] : sliced) {
    if (mapped[a.bufferSlot(p.buffer)])
      continue;
    DeviceBuffer dst = paramViews[a.bufferSlot(p.buffer)];
    const uint8_t *src = nullptr;
    if (auto span = reader->data(p.name)) {
      src = span->data;
    } else {
      const st::TensorInfo *info = reader->find(p.name);
      whole.resize(info ? info->byteSize() : 0);
      if (Status s = reader->copyTensor(p.name, whole.data(), whole.size()); !s)
        return s;
      src = whole.data();
    }
    if (auto *host = static_cast<uint8_t *>(dev->hostAddress(dst))) {
      art::gatherSlice(p, rankIndex, src, host + offset);
      continue;
    }
    staging.resize(bytes);
    art::gatherSlice(p, rankIndex, src, staging.data());
    if (Status s = dev->upload(dst, offset, staging.data(), bytes); !s)
      return s;
  }
  for (const art::Parameter *p : computed) {
    std::vector<int64_t> values = derivedValues(*p);
    size_t bytes = values.size() * sizeof(int64_t);
    DeviceBuffer dst = paramViews[a.bufferSlot(p->buffer)];
    if (auto *host = static_cast<uint8_t *>(dev->hostAddress(dst))) {
      std::memcpy(host, values.data(), bytes);
      continue;
    }
    if (Status s = dev->upload(dst, 0, values.data(), bytes); !s)
      return s;
  }
  checkpoint = std::make_unique<st::Reader>(reader.take());
  return Status::success();
}

Status Model::allocateParameterBuffers(const std::vector<bool> &mapped) {
  const art::Artifact &a = art;
  for (size_t slot = 0; slot < a.buffers().size(); ++slot) {
    const art::Buffer &b = a.buffers()[slot];
    if (b.kind != art::BufferKind::Parameter || mapped[slot])
      continue;
    uint64_t bytes = a.bufferBytes(b, a.bounds().maxChunk);
    auto buffer = dev->allocate(bytes);
    if (!buffer)
      return Status::error(StatusCode::ResourceExhausted, "RT-6",
                           "out of " + std::string(dev->name()) +
                               " memory for parameter buffer " +
                               std::to_string(b.id) + ": " +
                               buffer.status().message());
    owned.push_back(DeviceAllocation(dev.get(), *buffer));
    paramViews[slot] = *buffer;
    modelInfo.weightsPrepared += bytes;
  }
  // A padded shard's members past the pattern's are zeros no token is
  // routed to (Parameter::members): zero those buffers whole, then bind.
  for (const art::Parameter &p : a.parameters()) {
    if (p.members == 0)
      continue;
    DeviceBuffer dst = paramViews[a.bufferSlot(p.buffer)];
    uint8_t zero = 0;
    if (Status s = dev->fill(dst, 0, dst.bytes, &zero, 1); !s)
      return s;
  }
  return Status::success();
}

/// Synthetic weights (SyntheticWeights.h): every parameter buffer of its
/// own, generated on a pool of the model's thread count into the buffer
/// when the device's memory is host memory, else into staging memory
/// uploaded tensor by tensor.
Status Model::bindSyntheticParameters(uint64_t seed, unsigned threads) {
  const art::Artifact &a = art;
  paramViews.resize(a.buffers().size());
  if (Status s =
          allocateParameterBuffers(std::vector<bool>(paramViews.size(), false));
      !s)
    return s;
  SyntheticSink sink;
  sink.hostMemory = [this](const SyntheticTensor &t) -> uint8_t * {
    auto *host = static_cast<uint8_t *>(
        dev->hostAddress(paramViews[art.bufferSlot(t.buffer)]));
    return host ? host + t.offset : nullptr;
  };
  sink.upload = [this](const SyntheticTensor &t, const uint8_t *bytes) {
    return dev->upload(paramViews[art.bufferSlot(t.buffer)], t.offset, bytes,
                       t.bytes);
  };
  ThreadPool pool(resolveThreadCount(threads));
  if (Status s = generateSyntheticWeights(a, seed, pool, sink, rankIndex); !s)
    return s;
  modelInfo.syntheticWeights = true;
  modelInfo.syntheticSeed = seed;
  return Status::success();
}

Expected<NcclCollectives *> Model::deviceCollectives() const {
  std::lock_guard<std::mutex> lock(deviceCommMutex);
  if (deviceCommOpened) {
    if (!deviceCommStatus)
      return deviceCommStatus;
    return deviceComm.get();
  }
  deviceCommOpened = true;
  auto open = [&]() -> Status {
    auto mode = deviceCollectivesMode();
    if (!mode)
      return mode.status();
    // Host memory (the CPU), or no ranks: the host collectives.
    if (!comm || *mode == DeviceCollectivesMode::Host)
      return Status::success();
    if (!dev->nativeStream(nullptr)) {
      if (*mode == DeviceCollectivesMode::Nccl)
        return Status::error(StatusCode::FailedPrecondition, kCollectivesRule,
                             std::string("V4RT_DEVICE_COLLECTIVES=nccl, but "
                                         "the model runs on the ") +
                                 dev->name() +
                                 " device: NCCL runs on CUDA devices");
      return Status::success();
    }
    // The ranks agree after each stage, so that they all take the same
    // path: one rank's failure sends every rank to the host path in auto
    // mode, and fails every rank in nccl mode.
    bool fallBack = false;
    auto agree = [&](const Status &mine, const char *failure) -> Status {
      int64_t failed = mine ? 0 : 1;
      if (Status s = comm->allReduceSum(&failed, 1, DType::I64); !s)
        return s;
      fallBack = failed && *mode == DeviceCollectivesMode::Auto;
      if (!failed || fallBack || !mine)
        return fallBack ? Status::success() : mine;
      return Status::error(StatusCode::Unavailable, kCollectivesRule,
                           "V4RT_DEVICE_COLLECTIVES=nccl, but " +
                               std::to_string(failed) + " of " +
                               std::to_string(comm->world()) + " ranks " +
                               failure + " (their errors say why)");
    };
    auto library = loadNccl();
    if (Status s = agree(library.status(), "cannot load NCCL"); !s || fallBack)
      return s;
    auto opened = NcclCollectives::open(library.take(), *comm, *dev,
                                        openedCollectivesTimeout());
    if (Status s = agree(opened.status(), "cannot open the NCCL communicator");
        !s || fallBack) {
      if (opened)
        (*opened)->abort();
      return s;
    }
    deviceComm = opened.take();
    return Status::success();
  };
  deviceCommStatus = open();
  if (!deviceCommStatus)
    return deviceCommStatus;
  return deviceComm.get();
}

} // namespace v4::rt
