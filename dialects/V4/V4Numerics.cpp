//===- V4Numerics.cpp - the numerics mode of a module ---------------------===//
#include "dialects/V4/V4Numerics.h"

namespace mlir::v4 {

FailureOr<ModuleNumerics> getModuleNumerics(Operation *op) {
  Operation *holder = op;
  while (holder &&
         !(isa<ModuleOp>(holder) && (holder->hasAttr(kNumericsAttrName) ||
                                     holder->hasAttr(kFakeQuantAttrName) ||
                                     holder->hasAttr(kSumOrderAttrName))))
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
  if (Attribute a = holder->getAttr(kSumOrderAttrName)) {
    auto s = dyn_cast<StringAttr>(a);
    std::optional<::v4::SumOrder> order =
        s ? ::v4::parseSumOrder(s.getValue()) : std::nullopt;
    if (!order)
      return holder->emitError()
             << "'" << kSumOrderAttrName << "' must be \"reference\" or "
             << "\"fast\", got " << a;
    result.sumOrder = *order;
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
  if (numerics.sumOrder == ::v4::SumOrder::Reference)
    module->removeAttr(kSumOrderAttrName);
  else
    module->setAttr(
        kSumOrderAttrName,
        StringAttr::get(ctx, ::v4::sumOrderName(numerics.sumOrder)));
}

} // namespace mlir::v4
