//===- Session.h - one set of sequences being decoded ----------*- C++ -*-===//
//
// A session owns the model's non-parameter buffers on the model's device
// (inputs, outputs, decode state, and the activation arena that holds the
// activations at their planned offsets) and its position, and runs
// the artifact's entry points over them: init_state on reset, step on every
// chunk. Callers check arguments (the C API does); a session trusts them.
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_SRC_SESSION_H
#define V4_RUNTIME_SRC_SESSION_H

#include "runtime/src/Model.h"

#include <memory>
#include <vector>

namespace v4::rt {

class Session {
public:
  /// Reserves the session's memory with the model (RT-6), then allocates.
  static Expected<std::unique_ptr<Session>> create(const Model &model);
  ~Session();

  const Model &model() const { return m; }
  /// Tokens sequence `b` has consumed: the position of its next token.
  int64_t position(int64_t b = 0) const { return pos[b]; }
  /// Resets the decode state of every sequence; positions 0.
  Status reset();
  /// Resets sequence `b` only (its state to the init_state values, its
  /// position to 0): a new sequence starts in that row while the others go
  /// on.
  Status resetSequence(int64_t b);
  /// Runs one chunk of `tokens` tokens per sequence, each at its own
  /// position: ids and nextIds are
  /// [batch, tokens] (nextIds null: the ids shifted by one, the last
  /// repeated); writes [batch, tokens, vocab] logits ([batch, 1, vocab] for
  /// a model with last-position logits), and the MTP logits when
  /// `mtpLogits` is not null.
  Status run(const int64_t *ids, const int64_t *nextIds, int64_t tokens,
             float *logits, float *mtpLogits);

  /// What profiling measured for one kind of step: a kernel (its name in
  /// the artifact) or a collective (its schema name), in one-token calls
  /// (decode) or in chunks.
  struct ProfileEntry {
    enum Kind { Kernel, Collective, Call };
    const char *name = "";
    Kind kind = Kernel;
    bool oneToken = false;
    int64_t calls = 0;
    double seconds = 0;
  };
  /// Turns per-step timing on or off and clears what was measured. While
  /// on, each step of every entry point is waited for before the next
  /// starts (no overlap, no recorded decode step), and its wall time
  /// added to its kernel's entry.
  void setProfiling(bool enabled);
  /// The entries measured, most time first.
  std::vector<ProfileEntry> profile() const;

private:
  explicit Session(const Model &model) : m(model) {}
  /// The profile entry of kernel k, collective c (kernels + c) or the
  /// whole calls (kernels + 5) of `tokens` tokens; made on first use.
  ProfileEntry &profileEntry(size_t index, int64_t tokens);
  /// Launches every step of `entry` for `tokens` tokens (no wait).
  Status launchEntry(const artifact::EntryPoint &entry, int64_t tokens);
  /// Runs the collective `step` over its buffers (RT-10), after the work
  /// queued before it: on device memory (Model::deviceCollectives), or
  /// else in host memory (staged when the device's is not).
  Status collective(const artifact::Step &step, int64_t tokens);
  /// The collective `step` on the buffers themselves, on the session's
  /// queue.
  Status deviceCollective(NcclCollectives &nccl, const artifact::Step &step,
                          int64_t tokens);
  /// launchEntry, then waits.
  Status runEntry(const artifact::EntryPoint &entry, int64_t tokens);
  /// The step entry point, less the launches only the MTP logits need
  /// unless `mtpLogits` (Model::stepFor): a decode step (one token) on a
  /// device that records launches is recorded once per variant and replayed
  /// after (the same kernels over the same buffers: the inputs change in
  /// place).
  Status runStep(int64_t tokens, bool mtpLogits);
  DeviceBuffer buffer(uint32_t id) const;

  const Model &m;
  /// The session's own memory: the activation arena, then the buffers
  /// outside it (inputs, outputs, state, unplanned activations).
  std::vector<DeviceAllocation> owned;
  /// Every buffer by id: a parameter of the model, a slice of the arena or
  /// an owned buffer.
  std::vector<DeviceBuffer> views;
  std::vector<int64_t> pos;    // per sequence
  std::vector<LaunchArg> args; // reused by runEntry
  /// A concurrent group's arguments and launches (Step.concurrent).
  std::vector<std::vector<LaunchArg>> groupArgs;
  std::vector<Device::Launch> group;
  std::vector<int64_t> staging;           // host copy of the inputs
  std::vector<uint8_t> collectiveStaging; // a collective's buffer
  /// The session's queue, declared after `owned` so that it is destroyed
  /// (waiting for its work) before the buffers are released.
  std::unique_ptr<Device::Queue> queue;
  /// The recorded decode steps, without and with the MTP logits.
  std::unique_ptr<Device::Recording> decodeSteps[2];
  /// Profiling (setProfiling): on or off, and the entries by kernel (then,
  /// for a collective, the kernel count plus its Collective code; then the
  /// whole calls of `run`), twice: chunks first, then one-token calls.
  bool profiling = false;
  std::vector<ProfileEntry> measured;
};

} // namespace v4::rt

#endif // V4_RUNTIME_SRC_SESSION_H
