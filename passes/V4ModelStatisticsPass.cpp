//===- V4ModelStatisticsPass.cpp - parameter and op counts ----------------===//
#include "dialects/V4/V4Dialect.h"
#include "dialects/V4/V4Ops.h"
#include "passes/Passes.h"

#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::v4 {
#define GEN_PASS_DEF_V4MODELSTATISTICSPASS
#include "passes/Passes.h.inc"
} // namespace mlir::v4

using namespace mlir;
using namespace mlir::v4;

namespace {

/// Bits of one element as stored in a checkpoint.
static uint64_t storageBits(Type t) {
  if (auto ft = dyn_cast<FloatType>(t))
    return ft.getWidth();
  if (auto it = dyn_cast<IntegerType>(t))
    return it.getWidth();
  return 0;
}

class V4ModelStatisticsPass
    : public v4::impl::V4ModelStatisticsPassBase<V4ModelStatisticsPass> {
public:
  using Base::Base;

  void runOnOperation() override {
    llvm::StringMap<RankedTensorType> params;
    llvm::MapVector<StringRef, uint64_t> families;
    uint64_t v4Ops = 0;
    bool conflict = false;
    getOperation().walk([&](Operation *op) {
      if (!isa<V4Dialect>(op->getDialect()))
        return;
      ++v4Ops;
      StringRef name = op->getName().stripDialect();
      ++families[name.split('.').first];
      StringRef key;
      RankedTensorType type;
      if (auto param = dyn_cast<ParameterOp>(op)) {
        key = param.getName();
        type = param.getResult().getType();
      } else if (auto stack = dyn_cast<ParameterStackOp>(op)) {
        key = stack.getPattern();
        type = stack.getResult().getType();
      } else {
        return;
      }
      auto [it, inserted] = params.try_emplace(key, type);
      if (!inserted && it->second != type) {
        op->emitError() << "parameter '" << key << "' is used with type "
                        << type << " here and " << it->second << " elsewhere";
        conflict = true;
      }
    });
    if (conflict)
      return signalPassFailure();

    // Routed experts: a token uses top-k of the E stacked experts; k and E
    // come from the moe.experts operand types.
    llvm::StringMap<std::pair<int64_t, int64_t>> routedFraction;
    getOperation().walk([&](MoEExpertsOp op) {
      auto idx = cast<RankedTensorType>(op.getExpertIndices().getType());
      int64_t k = idx.getShape().back();
      for (Value w : {op.getW1(), op.getW3(), op.getW2()}) {
        auto stackOp = w.getDefiningOp<ParameterStackOp>();
        if (!stackOp || ShapedType::isDynamic(k))
          continue;
        int64_t e = stackOp.getResult().getType().getDimSize(0);
        routedFraction[stackOp.getPattern()] = {k, e};
      }
    });

    // A stacked parameter (pattern with `{}`) stands for `dim 0` tensors.
    uint64_t tensors = 0, elements = 0, bits = 0;
    for (auto &entry : params) {
      uint64_t n = entry.second.getNumElements();
      tensors += entry.first().contains("{}") ? entry.second.getDimSize(0) : 1;
      elements += n;
      bits += n * storageBits(entry.second.getElementType());
    }
    // Model parameters (V4-SPEC 1.3): block scales and integer tables
    // (tid2eid, token map, multipliers) are not parameters. Activated per
    // token: main model only (no mtp.*), no embedding tables, routed experts
    // at k/E.
    uint64_t total = 0, totalNoMtp = 0, activated = 0;
    for (auto &entry : params) {
      StringRef name = entry.first();
      RankedTensorType type = entry.second;
      if (name.ends_with(".scale") || !isa<FloatType>(type.getElementType()))
        continue;
      uint64_t n = type.getNumElements();
      total += n;
      if (name.starts_with("mtp."))
        continue;
      totalNoMtp += n;
      if (name == "embed.weight" || name.ends_with(".engram.embed.weight"))
        continue;
      auto it = routedFraction.find(name);
      if (it != routedFraction.end())
        n = n / it->second.second * it->second.first;
      activated += n;
    }
    numModelParameters = total;
    numActivatedParameters = activated;

    numParameters = tensors;
    numParameterElements = elements;
    numParameterBytes = bits / 8;
    numV4Ops = v4Ops;

    if (!printReport)
      return;
    llvm::raw_ostream &os = llvm::errs();
    os << "v4 model statistics\n";
    os << "  parameter tensors:  " << tensors << "\n";
    os << "  parameter elements: " << elements << "\n";
    os << "  parameter bytes:    " << bits / 8 << "\n";
    // Parameter counts in words: "577.5 thousand", "290.9 billion".
    auto billions = [](uint64_t n) {
      double v = static_cast<double>(n);
      const char *unit = "";
      for (auto [scale, name] :
           {std::pair{1e12, "trillion"}, std::pair{1e9, "billion"},
            std::pair{1e6, "million"}, std::pair{1e3, "thousand"}})
        if (v >= scale) {
          v /= scale;
          unit = name;
          break;
        }
      std::string s;
      llvm::raw_string_ostream os(s);
      if (*unit)
        os << llvm::format("%.1f ", v) << unit;
      else
        os << n;
      return s;
    };
    os << "  model parameters:   " << total << " (" << billions(total) << ")\n";
    os << "  without MTP:        " << totalNoMtp << " (" << billions(totalNoMtp)
       << ")\n";
    os << "  activated / token:  " << activated << " (" << billions(activated)
       << ")\n";
    os << "  v4 ops:             " << v4Ops << "\n";
    for (auto &[family, count] : families)
      os << "    " << family << ": " << count << "\n";
  }
};

} // namespace
