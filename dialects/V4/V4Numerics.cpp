//===- V4Numerics.cpp - the numerics mode of a module ---------------------===//
#include "dialects/V4/V4Numerics.h"

namespace mlir::v4 {

FailureOr<ModuleNumerics> getModuleNumerics(Operation *op) {
  Operation *holder = op;
  while (holder &&
         !(isa<ModuleOp>(holder) && (holder->hasAttr(kNumericsAttrName) ||
                                     holder->hasAttr(kFakeQuantAttrName))))
    holder = holder->getParentOp();
  ModuleNumerics result;
  if (!holder)
    return result;
  if (Attribute a = holder->getAttr(kNumericsAttrName)) {
    auto s = dyn_cast<StringAttr>(a);
    std::optional<::v4::NumericsMode> mode =
        s ? ::v4::parseNumericsMode(s.getValue()) : std::nullopt;
    if (!mode)
      return holder->emitError()
             << "'" << kNumericsAttrName << "' must be \"production\" or "
             << "\"fp32\", got " << a;
    result.numerics = *mode;
  }
  if (Attribute a = holder->getAttr(kFakeQuantAttrName)) {
    auto s = dyn_cast<StringAttr>(a);
    std::optional<::v4::FakeQuantMode> mode =
        s ? ::v4::parseFakeQuantMode(s.getValue()) : std::nullopt;
    if (!mode)
      return holder->emitError()
             << "'" << kFakeQuantAttrName << "' must be \"all\", \"kv\" or "
             << "\"none\", got " << a;
    result.fakeQuant = *mode;
  }
  return result;
}

void setModuleNumerics(ModuleOp module, ModuleNumerics numerics) {
  MLIRContext *ctx = module.getContext();
  module->setAttr(
      kNumericsAttrName,
      StringAttr::get(ctx, ::v4::numericsModeName(numerics.numerics)));
  module->setAttr(
      kFakeQuantAttrName,
      StringAttr::get(ctx, ::v4::fakeQuantModeName(numerics.fakeQuant)));
}

} // namespace mlir::v4
