//===- V4Numerics.h - the numerics mode of a module -------------*- C++ -*-===//
//
// The numerics a module is compiled in (issue 9) are two module attributes,
// set by `v4c --numerics` / `--fake-quant` or written in the .mlir:
//   v4.numerics  = "production" | "fp32"      (default production)
//   v4.fake_quant = "all" | "kv" | "none"     (default all)
//   v4.sum_order = "reference" | "fast"       (default reference; v4c
//                                              --sum-order)
// `v4-apply-numerics` (graph phase) makes the graph say them (activations
// f32, fake_quant ops removed); the kernel phase reads them here to drop
// the bf16 rounding points and the FP8 activation quantisation. This is the
// one reader; the enums are runtime/base/NumericsMode.h.
//
//===----------------------------------------------------------------------===//
#ifndef V4_DIALECTS_V4_V4NUMERICS_H
#define V4_DIALECTS_V4_V4NUMERICS_H

#include "runtime/base/NumericsMode.h"

#include "mlir/IR/BuiltinOps.h"

namespace mlir::v4 {

constexpr llvm::StringLiteral kNumericsAttrName = "v4.numerics";
constexpr llvm::StringLiteral kFakeQuantAttrName = "v4.fake_quant";
constexpr llvm::StringLiteral kSumOrderAttrName = "v4.sum_order";

struct ModuleNumerics {
  ::v4::NumericsMode numerics = ::v4::NumericsMode::Production;
  ::v4::FakeQuantMode fakeQuant = ::v4::FakeQuantMode::All;
  ::v4::SumOrder sumOrder = ::v4::SumOrder::Reference;
};

/// The modes of the nearest module enclosing `op` (or `op` itself) that
/// carries any of the attributes; the defaults when none does. An attribute
/// that is not a string of the allowed values is an error at that module.
FailureOr<ModuleNumerics> getModuleNumerics(Operation *op);

/// Writes the attributes on `module` (v4.sum_order only when it is not the
/// default, so that modules compiled as before print as before).
void setModuleNumerics(ModuleOp module, ModuleNumerics numerics);

} // namespace mlir::v4

#endif // V4_DIALECTS_V4_V4NUMERICS_H
