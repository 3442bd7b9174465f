//===- TestArtifacts.h - tiny artifacts and lies for tests -------*- C++
//-*-===//
//
// Test support (library v4artifact-testing; not part of the runtime): a valid
// tiny artifact that needs no compiler, and the lies table of
// docs/RELIABILITY.md section 3.2: named corruptions, each violating one AF
// rule. Used by test/runtime/ArtifactTest.cpp and v4-artifact-testgen (lit).
//
//===----------------------------------------------------------------------===//

#ifndef V4_TEST_LIB_TESTARTIFACTS_H
#define V4_TEST_LIB_TESTARTIFACTS_H

#include "runtime/artifact/Artifact.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace v4::artifact::testing {

/// Size of the tiny artifact's fake host code image.
constexpr size_t kTinyCodeSize = 1237;

/// The tiny artifact's writer: CPU target, bounds batch 2 / context 64 /
/// chunk 16; one host code object; kernels "embed" (3 buffers, 1 scalar) and
/// "head" (4 buffers, 2 scalars), both with the host launch; 6 buffers (2
/// parameters, input "ids", 1 activation, output "logits", 1 state); state spec
/// "kv"; entry points "init_state" (no steps) and "step" (2 steps); 2
/// parameters; 2 debug locations.
Writer tinyWriter();
/// Makes `d` (the tiny artifact's description) hold every input the runtime
/// needs by role (RT-2): "ids" becomes I64, and "next_ids" and "positions"
/// (I64 [2, -1]) and "start_positions" (I64 [2]) are added as buffers
/// 10..12.
void addRuntimeInputs(Description &d);
/// The tiny artifact's description as a model the runtime loads and runs
/// without launching anything: every input role (addRuntimeInputs), no code
/// objects, kernels, debug locations or steps.
Description kernelFreeDescription();
/// Adds the host shared object at `path` as a CPU code object; false when
/// the file cannot be read or is empty.
bool addHostCodeObjectFile(Writer &w, const std::string &path);
/// Adds to the tiny artifact's writer an sm_90a PTX code object (index 1)
/// and a kernel set for sm_90a (format 1.5): both kernels on it, 256
/// threads per block, 1024 bytes of workspace.
void addGPUKernelSet(Writer &w);
/// Makes the tiny description partitioned (format 1.6): a world of 2, the
/// rank input (id 20), a sharded `{}` stack "e.{}.w" (id 21: 2 members per
/// rank of 3) and an all_reduce_sum of the activation (id 3) as step 1 of
/// "step".
void makePartitioned(Description &d);
/// tinyWriter().serialize() (verified).
std::vector<uint8_t> tinyArtifact();

/// Recomputes the prefix checksum of a complete file (>= 32 bytes).
void fixChecksum(std::vector<uint8_t> &bytes);

/// One corruption of the tiny artifact.
struct Lie {
  std::string name;
  /// The rule the loader must report, e.g. "AF-7".
  std::string rule;
  /// Edits the writer and options before serializing (verify is off).
  std::function<void(Writer &, WriteOptions &)> edit;
  /// Patches the serialized bytes; the checksum is then recomputed unless
  /// `keepChecksum`.
  std::function<void(std::vector<uint8_t> &)> patch;
  bool keepChecksum = false;
  /// Load options to use (e.g. lowered verifier limits).
  LoadOptions load;
};

/// The lies table: at least one row per AF rule.
const std::vector<Lie> &lies();
/// The bytes of a lie.
std::vector<uint8_t> lieBytes(const Lie &lie);

} // namespace v4::artifact::testing

#endif // V4_TEST_LIB_TESTARTIFACTS_H
