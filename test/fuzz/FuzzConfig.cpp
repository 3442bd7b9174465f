//===- FuzzConfig.cpp - fuzz-config: bytes through config.json checks -----===//
//
// Bytes -> parseModelConfig (CF rules: JSON, schema, cross-checks, the
// Engram prime search) -> the shapes the importer derives from an accepted
// config. Warnings are dropped; errors are the expected outcome.
//
//===----------------------------------------------------------------------===//
#include "frontend/ModelConfig.h"

#include "llvm/Support/Error.h"

#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  auto config = v4::parseModelConfig(text, "fuzz.config.json",
                                     [](const std::string &) {});
  if (!config) {
    llvm::consumeError(config.takeError());
    return 0;
  }
  for (int64_t layer = 0; layer < config->numLayers; ++layer) {
    (void)config->isHashLayer(layer);
    (void)config->isEngramLayer(layer);
  }
  return 0;
}
