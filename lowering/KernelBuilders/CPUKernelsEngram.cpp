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

struct Num : KernelBody {
  Value i32(int64_t v) {
    return arith::ConstantOp::create(b, b.getI32IntegerAttr(v));
  }
  Value i64(int64_t v) {
    return arith::ConstantOp::create(b, b.getI64IntegerAttr(v));
  }
  Value add(Value x, Value y) { return arith::AddFOp::create(b, x, y); }
  Value mul(Value x, Value y) { return arith::MulFOp::create(b, x, y); }
  Value div(Value x, Value y) { return arith::DivFOp::create(b, x, y); }
  Value addi(Value x, Value y) { return arith::AddIOp::create(b, x, y); }
  Value subi(Value x, Value y) { return arith::SubIOp::create(b, x, y); }
  Value muli(Value x, Value y) { return arith::MulIOp::create(b, x, y); }
  Value andi(Value x, int64_t m) { return arith::AndIOp::create(b, x, i32(m)); }
  Value ori(Value x, Value y) { return arith::OrIOp::create(b, x, y); }
  Value shl(Value x, int64_t s) { return arith::ShLIOp::create(b, x, i32(s)); }
  Value shr(Value x, int64_t s) { return arith::ShRUIOp::create(b, x, i32(s)); }
  Value eqi(Value x, int64_t v) {
    return arith::CmpIOp::create(b, arith::CmpIPredicate::eq, x, i32(v));
  }
  Value select(Value c, Value x, Value y) {
    return arith::SelectOp::create(b, c, x, y);
  }
  Value load(Value m, ValueRange ix) {
    return memref::LoadOp::create(b, m, ix);
  }
  void store(Value v, Value m, ValueRange ix) {
    memref::StoreOp::create(b, v, m, ix);
  }
  Value bitsOf(Value f) {
    return arith::BitcastOp::create(b, b.getI32Type(), f);
  }
  Value floatOf(Value bits) {
    return arith::BitcastOp::create(b, b.getF32Type(), bits);
  }
  /// An integer value sign-extended (or kept) as i64.
  Value toI64(Value v) {
    if (v.getType().isInteger(64))
      return v;
    return arith::ExtSIOp::create(b, b.getI64Type(), v);
  }
  /// An i64 value narrowed (or kept) to integer type `t`.
  Value fromI64(Value v, Type t) {
    if (t.isInteger(64))
      return v;
    return arith::TruncIOp::create(b, t, v);
  }
  Value toIndex(Value v) {
    return arith::IndexCastOp::create(b, b.getIndexType(), v);
  }
};

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
  Num k{{b}};
  bool fp8 = static_cast<bool>(op.getScale());
  Value rows = fn.getArgument(0), table = fn.getArgument(1);
  Value scale = fp8 ? fn.getArgument(2) : Value();
  Value e = fn.getArgument(fp8 ? 3 : 2);
  Type elt = cast<MemRefType>(e.getType()).getElementType();
  Value zero = k.idx(0);
  Value R = k.dim(rows, 2), De = k.dim(table, 1);
  Value blk = k.idx(32);
  loop(b, zero, k.dim(rows, 0), [&](ImplicitLocOpBuilder &ib, Value bi) {
    loop(ib, zero, Num{{ib}}.dim(rows, 1),
         [&](ImplicitLocOpBuilder &tb, Value t) {
           loop(tb, zero, R, [&](ImplicitLocOpBuilder &rb, Value r) {
             Num kr{{rb}};
             Value row = kr.toIndex(kr.load(rows, {bi, t, r}));
             Value base = kr.muli(r, De);
             loop(rb, zero, De, [&](ImplicitLocOpBuilder &cb, Value c) {
               Num kc{{cb}};
               Value v;
               if (fp8) {
                 Value q = lowp::decodeE4M3(cb, kc.load(table, {row, c}));
                 Value sIdx = arith::DivUIOp::create(cb, c, blk);
                 Value s = lowp::decodeE8M0(cb, kc.load(scale, {row, sIdx}));
                 v = kc.fromF32(kc.mul(q, s), elt);
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
