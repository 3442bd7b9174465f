//===- Model.h - a loaded model: artifact, device, kernels, weights -*- C++
//-*-===//
//
// Loading checks, after the artifact's own rules (AF-*, Artifact.h) and the
// checkpoint's (ST-*, Safetensors.h):
//
//   RT-1  the artifact has the entry points "step" and "init_state"
//   RT-2  it has the inputs ids, next_ids, start_positions, positions (by
//         role) and the output logits
//   RT-3  this runtime has a device for the artifact's target
//   RT-4  every code object loads and every kernel's symbol resolves
//   RT-5  the checkpoint holds every parameter of the manifest with its
//         dtype and shape (all mismatches at once; reported with the ST
//         rule of the mismatch, Safetensors.h)
//   RT-6  the device has memory for the parameters and session buffers:
//         checked before anything is allocated, against the caller's limit
//         or what the device has available (one session must fit at load)
//   RT-7  internal consistency of a launch or a copy (a runtime bug)
//   RT-8  a parameter the artifact derives (the Engram hash multipliers,
//         V4-SPEC 8.4: numpy default_rng, runtime/base/NumpyRandom.h) is
//         computed when the checkpoint lacks it; a copy the checkpoint
//         carries, and a checked tensor it carries (the Engram primes), must
//         equal the computed values (the error names the tensor and rule)
//   RT-10 a partitioned artifact (v4c --ep N) runs on a world of exactly N
//         ranks (runtime/src/comm/Collectives.h), every rank with the same
//         artifact; a collective that fails or times out is an error
//   RT-9  synthetic weights (LoadOptions::syntheticSeed, SyntheticWeights.h):
//         no checkpoint is given with them, and every parameter of the
//         manifest has a synthetic rule
//
// A loaded model is immutable and shared by its sessions.
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_SRC_MODEL_H
#define V4_RUNTIME_SRC_MODEL_H

#include "runtime/artifact/Artifact.h"
#include "runtime/safetensors/Safetensors.h"
#include "runtime/src/comm/Collectives.h"
#include "runtime/src/comm/NcclCollectives.h"
#include "runtime/src/devices/Device.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace v4::rt {

struct ModelInfo {
  int64_t batch = 0;
  int64_t maxContext = 0;
  int64_t maxChunk = 0;
  int64_t vocabSize = 0;
  int64_t numOutputs = 0;
  /// Logit positions per sequence and call: 0 every position of the call,
  /// 1 its last position only.
  int64_t logitsPositions = 0;
  /// Weight bytes served from the mapped checkpoint, and copied into
  /// buffers of their own (per-expert stacks, or where the device cannot
  /// read host memory).
  uint64_t weightsMapped = 0;
  uint64_t weightsPrepared = 0;
  /// Whether the weights are synthetic (LoadOptions::syntheticSeed), and
  /// their seed.
  bool syntheticWeights = false;
  uint64_t syntheticSeed = 0;
};

class Model {
public:
  /// How to load a model (v4rt_model_options_t, resolved).
  struct LoadOptions {
    /// The safetensors checkpoint (file, directory or index.json).
    std::string checkpoint;
    /// Bytes the model and its sessions may use (0: what the device has
    /// available at each check).
    uint64_t memoryLimit = 0;
    /// When not empty, the artifact's digest (64 hex digits, see Digest.h),
    /// checked on the bytes read before any is parsed (DIG-1).
    std::string expectedSha256;
    /// The host threads of a CPU device (createDevice).
    unsigned threads = 0;
    /// The device to run on (parseDeviceSpec: "cpu", "cuda", "cuda:N");
    /// empty: the device of the artifact's first target.
    std::string device;
    /// When set, no checkpoint is opened (`checkpoint` must be empty, RT-9):
    /// every parameter is filled with deterministic synthetic values of
    /// this seed (SyntheticWeights.h), generated on `threads` host threads.
    std::optional<uint64_t> syntheticSeed;
    /// The collectives of a partitioned artifact; null: opened from the
    /// process's launcher (openCollectives) when the artifact needs more
    /// than one rank, with `collectiveTimeout` seconds per collective (0:
    /// the default).
    std::shared_ptr<Collectives> collectives;
    double collectiveTimeout = 0;
  };
  static Expected<std::unique_ptr<Model>> load(const std::string &artifactPath,
                                               const LoadOptions &options);
  Model(const Model &) = delete;
  Model &operator=(const Model &) = delete;
  ~Model();

  const artifact::Artifact &artifact() const { return art; }
  Device &device() const { return *dev; }
  const ModelInfo &info() const { return modelInfo; }
  /// The parameter buffer in buffer slot `slot` (Artifact::bufferSlot;
  /// empty for other buffers).
  DeviceBuffer parameter(size_t slot) const {
    return slot < paramViews.size() ? paramViews[slot] : DeviceBuffer{};
  }
  /// Buffer ids of the inputs, in the order of artifact::role::kInputs.
  const std::vector<uint32_t> &inputs() const { return inputIds; }
  /// Buffer ids of the outputs: logits, then the MTP logits.
  const std::vector<uint32_t> &outputs() const { return outputIds; }
  const artifact::EntryPoint &step() const { return *stepEntry; }
  /// The steps of a call that wants the logits, and the MTP logits when
  /// `mtpLogits`: step() less the launches only other outputs need
  /// (artifact::stepsFor).
  const artifact::EntryPoint &stepFor(bool mtpLogits) const {
    return stepVariants[mtpLogits];
  }
  /// The ranks' collectives (null for an artifact of one rank), this
  /// process's rank, and the buffer id of the rank input (none: -1).
  Collectives *collectives() const { return comm.get(); }
  /// The ranks' collectives on device memory for the collective steps (the
  /// NCCL engine, V4RT_DEVICE_COLLECTIVES): opened at the first call, which
  /// every rank makes at the same collective step (Session.cpp); null: the
  /// steps stage through host memory and collectives().
  Expected<NcclCollectives *> deviceCollectives() const;
  uint32_t rank() const { return rankIndex; }
  int64_t rankInput() const { return rankInputId; }
  const artifact::EntryPoint &initState() const { return *initEntry; }

  /// Reserves the bytes of one session (RT-6), released by
  /// releaseSession(); an error naming both numbers and the flags that
  /// would make it fit.
  Status reserveSession() const;
  void releaseSession() const;

private:
  explicit Model(artifact::Artifact a) : art(std::move(a)) {}
  Status bindParameters(const std::string &checkpoint);
  /// RT-10: joins the world of a partitioned artifact.
  Status joinWorld(const LoadOptions &options);
  /// Fills every parameter with synthetic weights of `seed` (RT-9).
  Status bindSyntheticParameters(uint64_t seed, unsigned threads);
  /// Allocates a buffer for every parameter buffer slot not `mapped`.
  Status allocateParameterBuffers(const std::vector<bool> &mapped);
  /// RT-6 for `need` bytes, of which `what` says what they are.
  Status checkFits(uint64_t need, uint64_t used, const std::string &what,
                   bool load) const;

  artifact::Artifact art;
  // The mapped checkpoint and the device are declared before the buffers,
  // so that they outlive them.
  std::unique_ptr<safetensors::Reader> checkpoint;
  std::unique_ptr<Device> dev;
  /// Prepared parameters (copies); mapped ones live in `checkpoint`.
  std::vector<DeviceAllocation> owned;
  /// Every parameter buffer by id: mapped or prepared.
  std::vector<DeviceBuffer> paramViews;
  ModelInfo modelInfo;
  std::vector<uint32_t> inputIds, outputIds;
  std::shared_ptr<Collectives> comm;
  uint32_t rankIndex = 0;
  int64_t rankInputId = -1;
  const artifact::EntryPoint *stepEntry = nullptr;
  artifact::EntryPoint stepVariants[2];
  const artifact::EntryPoint *initEntry = nullptr;
  uint64_t memoryLimit = 0;
  /// Bytes reserved: the weights and every live session.
  mutable std::atomic<uint64_t> reserved{0};
  /// deviceCollectives(): whether it was opened, and what it gave (declared
  /// after `dev` and `comm`, so the communicator goes first).
  mutable std::mutex deviceCommMutex;
  mutable bool deviceCommOpened = false;
  mutable Status deviceCommStatus;
  mutable std::unique_ptr<NcclCollectives> deviceComm;
};

} // namespace v4::rt

#endif // V4_RUNTIME_SRC_MODEL_H
