//===- FuzzArtifact.cpp - fuzz-artifact: bytes through the loader ---------===//
//
// Bytes -> Artifact::load (docs/RELIABILITY.md 2.5 layers 1-3) -> the
// tables the runtime reads from a loaded artifact. No driver, no dlopen.
// Under libFuzzer a custom mutator recomputes the whole-file checksum of
// most mutants, so byte-level mutations reach the FlatBuffer verifier and
// the semantic layer instead of stopping at AF-3.
//
//===----------------------------------------------------------------------===//
#include "runtime/artifact/Artifact.h"
#include "test/lib/TestArtifacts.h"

#include <cstdint>
#include <vector>

using namespace v4::artifact;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto loaded = Artifact::load("fuzz.v4a", data, size);
  if (!loaded)
    return 0;
  // What the runtime derives from a loaded artifact.
  (void)loaded->memoryTotals();
  for (const Buffer &b : loaded->buffers())
    (void)loaded->bufferBytes(b, loaded->bounds().maxChunk);
  for (size_t i = 0; i < loaded->codeObjects().size(); ++i)
    (void)loaded->code(i);
  for (const char *role : role::kInputs)
    (void)loaded->findBufferByRole(role);
  (void)loaded->findBufferByRole(role::kLogits);
  for (const EntryPoint &e : loaded->entryPoints())
    for (const Step &s : e.steps) {
      // A collective step launches no kernel: its index is ignored.
      if (s.collective == Collective::None &&
          s.kernel >= loaded->kernels().size())
        __builtin_trap(); // AF-10 promises every launch's kernel exists
      for (uint32_t id : s.buffers)
        if (!loaded->findBuffer(id))
          __builtin_trap(); // AF-10 promises every reference resolves
    }
  return 0;
}

#ifdef V4_LIBFUZZER
extern "C" size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t maxSize);

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size,
                                          size_t maxSize, unsigned seed) {
  size = LLVMFuzzerMutate(data, size, maxSize);
  // One mutant in eight keeps its (now wrong) size and checksum, for
  // AF-1..AF-3; the others get the prefix's declared size (offset 16) and
  // checksum recomputed.
  if (size >= kPrefixSize && seed % 8 != 0) {
    std::vector<uint8_t> bytes(data, data + size);
    for (int i = 0; i < 8; ++i)
      bytes[16 + i] = uint8_t(uint64_t(size) >> (8 * i));
    testing::fixChecksum(bytes);
    std::copy(bytes.begin(), bytes.end(), data);
  }
  return size;
}
#endif
