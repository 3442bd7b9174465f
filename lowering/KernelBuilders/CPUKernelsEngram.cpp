//===- CPUKernelsEngram.cpp - CPU kernels: Engram ------------------------===//
//
// v4.engram.lookup (V4-SPEC 8.5); the other Engram ops have target-neutral
// bodies (lowering/V4ToLinalg).
//
//===----------------------------------------------------------------------===//
#include "lowering/KernelBuilders/CPUKernelBody.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace mlir::v4::cpu {
namespace {

//===----------------------------------------------------------------------===//
// v4.engram.lookup (V4-SPEC 8.5)
//===----------------------------------------------------------------------===//

LogicalResult buildLookup(EngramLookupOp op, func::FuncOp fn) {
  auto b = bodyBuilder(op, fn);
  KernelBody k{b};
  bool fp8 = static_cast<bool>(op.getScale());
  Value rows = fn.getArgument(0), table = fn.getArgument(1);
  Value scale = fp8 ? fn.getArgument(2) : Value();
  Value e = fn.getArgument(fp8 ? 3 : 2);
  Type elt = cast<MemRefType>(e.getType()).getElementType();
  Value zero = k.idx(0);
  Value R = k.dim(rows, 2), De = k.dim(table, 1);
  Value blk = k.idx(32);
  loop(k, zero, k.dim(rows, 0), [&](KernelBody &k, Value bi) {
    loop(k, zero, k.dim(rows, 1), [&](KernelBody &k, Value t) {
      loop(k, zero, R, [&](KernelBody &k, Value r) {
        Value row = k.toIndex(k.load(rows, {bi, t, r}));
        Value base = k.muli(r, De);
        loop(k, zero, De, [&](KernelBody &k, Value c) {
          Value v;
          if (fp8) {
            // One e8m0 scale per 32 columns of a row.
            Value code = k.load(table, {row, c});
            Value scaleCode = k.load(scale, {row, k.divui(c, blk)});
            v = k.fromF32(lowp::dequantizeE4M3(k.b, code, scaleCode), elt);
          } else {
            v = k.load(table, {row, c});
            if (v.getType() != elt)
              v = k.fromF32(k.toF32(v), elt);
          }
          k.store(v, e, {bi, t, k.addi(base, c)});
        });
      });
    });
  });
  func::ReturnOp::create(b);
  return success();
}

} // namespace

std::optional<LogicalResult> buildEngramKernel(Operation *op, func::FuncOp fn) {
  return llvm::TypeSwitch<Operation *, std::optional<LogicalResult>>(op)
      .Case<EngramLookupOp>([&](auto o) { return buildLookup(o, fn); })
      .Default([](Operation *) { return std::nullopt; });
}

} // namespace mlir::v4::cpu
