//===- CPUKernelsEngram.cpp - CPU kernels: Engram ---===//
//
// v4.engram.* (V4-SPEC 8): state_empty, hash, lookup, gate (production form).
//
// The hash look-back state (kernel ABI: i64 [B, N-1]) holds, per sequence,
// the last N-1 compressed ids most recent first: state[b, k] = c_{-1-k}
// relative to the first token of the next call (the layout of the C++
// reference's SequenceState::lookback).
//
//===----------------------------------------------------------------------===//
#include "lowering/KernelBuilders/CPUKernelBody.h"

#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;

namespace mlir::v4::cpu {
namespace {

//===----------------------------------------------------------------------===//
// v4.engram.state_empty (V4-SPEC 8.8)
//===----------------------------------------------------------------------===//

//===----------------------------------------------------------------------===//
// v4.engram.hash (V4-SPEC 8.3, 8.4)
//===----------------------------------------------------------------------===//

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
  loop(b, zero, k.dim(rows, 0), [&](ImplicitLocOpBuilder &ib, Value bi) {
    loop(ib, zero, KernelBody{ib}.dim(rows, 1),
         [&](ImplicitLocOpBuilder &tb, Value t) {
           loop(tb, zero, R, [&](ImplicitLocOpBuilder &rb, Value r) {
             KernelBody kr{rb};
             Value row = kr.toIndex(kr.load(rows, {bi, t, r}));
             Value base = kr.muli(r, De);
             loop(rb, zero, De, [&](ImplicitLocOpBuilder &cb, Value c) {
               KernelBody kc{cb};
               Value v;
               if (fp8) {
                 Value q = lowp::decodeE4M3(cb, kc.load(table, {row, c}));
                 Value sIdx = arith::DivUIOp::create(cb, c, blk);
                 Value s = lowp::decodeE8M0(cb, kc.load(scale, {row, sIdx}));
                 v = kc.fromF32(kc.mulf(q, s), elt);
               } else {
                 v = kc.load(table, {row, c});
                 if (v.getType() != elt)
                   v = kc.fromF32(kc.toF32(v), elt);
               }
               kc.store(v, e, {bi, t, kc.addi(base, c)});
             });
           });
         });
  });
  func::ReturnOp::create(b);
  return success();
}

//===----------------------------------------------------------------------===//
// v4.engram.gate (V4-SPEC 8.6 steps 2-4, production form)
//===----------------------------------------------------------------------===//

} // namespace

std::optional<LogicalResult> buildEngramKernel(Operation *op, func::FuncOp fn) {
  return llvm::TypeSwitch<Operation *, std::optional<LogicalResult>>(op)
      .Case<EngramLookupOp>([&](auto o) { return buildLookup(o, fn); })
      .Default([](Operation *) { return std::nullopt; });
}

} // namespace mlir::v4::cpu
