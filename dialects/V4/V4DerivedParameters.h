//===- V4DerivedParameters.h - checkpoint tensors derived from the config -*-
//C++ -*-===//
//
// The Engram hash constants of V4-SPEC 8.4 follow from the config, so a
// checkpoint need not carry them (DeepSeek-V4.1 checkpoints do not):
//
//  * the multipliers `layers.L.engram.multipliers` (I64 [N]) are a
//    v4.parameter the kernels read; the importer records how they are
//    computed (numpy default_rng seed engram_seed + 10007 * L, bound
//    B = max(1, (2^63 - 1) / V_c / 2)) in the module attribute
//
//      v4.engram_multipliers = {"layers.1.engram.multipliers" =
//                               array<i64: SEED, B>, ...}
//
//    (SEED as the bits of a uint64). The checkpoint check, the generator and
//    the artifact writer (Parameter.derived, 1.2) read it; the runtime
//    computes the values when the checkpoint lacks the tensor.
//  * the primes are attributes of v4.engram_hash; a checkpoint may carry
//    copies `layers.L.engram.primes` (I64 [(N-1) * H_e]), which no kernel
//    reads. The importer records their values in
//
//      v4.engram_primes = {"layers.1.engram.primes" = array<i64: ...>, ...}
//
//    and the artifact lists them as checked tensors.
//
// Either copy, when present, must equal the computed values; the values
// and the rules' wording come from runtime/base/NumpyRandom.h.
//
//===----------------------------------------------------------------------===//
#ifndef V4_DIALECTS_V4_V4DERIVEDPARAMETERS_H
#define V4_DIALECTS_V4_V4DERIVEDPARAMETERS_H

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mlir::v4 {

inline constexpr llvm::StringLiteral kEngramMultipliersAttr =
    "v4.engram_multipliers";
inline constexpr llvm::StringLiteral kEngramPrimesAttr = "v4.engram_primes";

/// How one multipliers parameter is computed.
struct EngramMultiplierRule {
  uint64_t seed = 0;
  int64_t bound = 1;
};

/// The derived multipliers of `module`, by parameter name (empty when the
/// attribute is absent or malformed entries are skipped).
inline std::map<std::string, EngramMultiplierRule>
getEngramMultiplierRules(ModuleOp module) {
  std::map<std::string, EngramMultiplierRule> rules;
  if (auto dict = module->getAttrOfType<DictionaryAttr>(kEngramMultipliersAttr))
    for (NamedAttribute a : dict)
      if (auto v = dyn_cast<DenseI64ArrayAttr>(a.getValue());
          v && v.size() == 2)
        rules[a.getName().str()] = {static_cast<uint64_t>(v[0]), v[1]};
  return rules;
}

/// The checked prime copies of `module`, by tensor name.
inline std::map<std::string, std::vector<int64_t>>
getEngramPrimeCopies(ModuleOp module) {
  std::map<std::string, std::vector<int64_t>> primes;
  if (auto dict = module->getAttrOfType<DictionaryAttr>(kEngramPrimesAttr))
    for (NamedAttribute a : dict)
      if (auto v = dyn_cast<DenseI64ArrayAttr>(a.getValue()))
        primes[a.getName().str()] =
            std::vector<int64_t>(v.asArrayRef().begin(), v.asArrayRef().end());
  return primes;
}

} // namespace mlir::v4

#endif // V4_DIALECTS_V4_V4DERIVEDPARAMETERS_H
