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
  /// An i8 code zero-extended to i32.
  Value code(Value i8) { return arith::ExtUIOp::create(b, b.getI32Type(), i8); }

  /// e8m0 code -> 2^(code - 127) (code 0 is the subnormal 2^-127, 0xFF NaN).
  Value decodeE8M0(Value i8) {
    Value c = code(i8);
    Value bits = select(eqi(c, 0), i32(0x00400000), shl(c, 23));
    return floatOf(select(eqi(c, 0xFF), i32(0x7FC00000), bits));
  }
  /// e4m3fn code -> f32 (exact; 0x7F / 0xFF are NaN).
  Value decodeE4M3(Value i8) {
    Value c = code(i8);
    Value e = andi(shr(c, 3), 0xF), m = andi(c, 7);
    Value normal = ori(shl(addi(e, i32(120)), 23), shl(m, 20));
    Value subnormal =
        bitsOf(mul(arith::UIToFPOp::create(b, b.getF32Type(), m), f32(0x1p-9)));
    Value bits = select(eqi(e, 0), subnormal, normal);
    bits = select(eqi(andi(c, 0x7F), 0x7F), i32(0x7FC00000), bits);
    return floatOf(ori(bits, shl(andi(c, 0x80), 24)));
  }
};

//===----------------------------------------------------------------------===//
// v4.engram.state_empty (V4-SPEC 8.8)
//===----------------------------------------------------------------------===//

LogicalResult buildStateEmpty(EngramStateEmptyOp op, func::FuncOp fn) {
  auto b = bodyBuilder(op, fn);
  Num k{{b}};
  Value s = fn.getArgument(0);
  Value pad = k.i64(static_cast<int64_t>(op.getPadId()));
  Value zero = k.idx(0);
  loop(b, zero, k.dim(s, 0), [&](ImplicitLocOpBuilder &ib, Value bi) {
    loop(ib, zero, Num{{ib}}.dim(s, 1), [&](ImplicitLocOpBuilder &jb, Value j) {
      Num{{jb}}.store(pad, s, {bi, j});
    });
  });
  func::ReturnOp::create(b);
  return success();
}

//===----------------------------------------------------------------------===//
// v4.engram.hash (V4-SPEC 8.3, 8.4)
//===----------------------------------------------------------------------===//

LogicalResult buildHash(EngramHashOp op, func::FuncOp fn) {
  auto b = bodyBuilder(op, fn);
  Num k{{b}};
  Value ids = fn.getArgument(0), map = fn.getArgument(1),
        mult = fn.getArgument(2), state = fn.getArgument(3),
        rows = fn.getArgument(4), newState = fn.getArgument(5);
  const int64_t N = static_cast<int64_t>(op.getMaxNgram());
  const int64_t H = static_cast<int64_t>(op.getHeads());
  ArrayRef<int64_t> primes = op.getPrimes();
  Type rowType = cast<MemRefType>(rows.getType()).getElementType();
  Value zero = k.idx(0);
  Value T = k.dim(ids, 1);

  // c = tokenMap[ids[bi, pos]] as i64.
  auto compressed = [&](ImplicitLocOpBuilder &ib, Value bi, Value pos) {
    Num kn{{ib}};
    Value id = kn.toIndex(kn.load(ids, {bi, pos}));
    return kn.toI64(kn.load(map, {id}));
  };
  // c_{t-kk}: from this call's ids when t >= kk, else state[bi, kk-t-1].
  auto lookBack = [&](ImplicitLocOpBuilder &ib, Value bi, Value t,
                      int64_t kk) -> Value {
    if (kk == 0)
      return compressed(ib, bi, t);
    Num kn{{ib}};
    Value kkV = kn.idx(kk);
    Value inChunk =
        arith::CmpIOp::create(ib, arith::CmpIPredicate::uge, t, kkV);
    auto ifOp = scf::IfOp::create(
        ib, inChunk,
        [&](OpBuilder &tb, Location loc) {
          ImplicitLocOpBuilder ob(loc, tb);
          Value pos = arith::SubIOp::create(ob, t, kkV);
          scf::YieldOp::create(ob, compressed(ob, bi, pos));
        },
        [&](OpBuilder &eb, Location loc) {
          ImplicitLocOpBuilder ob(loc, eb);
          Num ko{{ob}};
          Value slot = ko.subi(ko.subi(kkV, t), ko.idx(1));
          scf::YieldOp::create(ob, ko.load(state, {bi, slot}));
        });
    return ifOp.getResult(0);
  };

  SmallVector<int64_t> offsets;
  int64_t off = 0;
  for (int64_t p : primes) {
    offsets.push_back(off);
    off += p;
  }

  loop(b, zero, k.dim(ids, 0), [&](ImplicitLocOpBuilder &ib, Value bi) {
    Num kb{{ib}};
    SmallVector<Value> m;
    for (int64_t kk = 0; kk < N; ++kk)
      m.push_back(kb.load(mult, {kb.idx(kk)}));
    loop(ib, zero, T, [&](ImplicitLocOpBuilder &tb, Value t) {
      Num kt{{tb}};
      // Cumulative XOR in n: h_n = h_{n-1} XOR c_{t-n+1} * m_{n-1}.
      Value h = kt.muli(lookBack(tb, bi, t, 0), m[0]);
      for (int64_t n = 2; n <= N; ++n) {
        Value term = kt.muli(lookBack(tb, bi, t, n - 1), m[n - 1]);
        h = arith::XOrIOp::create(tb, h, term);
        for (int64_t j = 0; j < H; ++j) {
          int64_t r = (n - 2) * H + j;
          Value row = kt.addi(arith::RemSIOp::create(tb, h, kt.i64(primes[r])),
                              kt.i64(offsets[r]));
          kt.store(kt.fromI64(row, rowType), rows, {bi, t, kt.idx(r)});
        }
      }
    });
    // New look-back: newState[bi, kk] = c_{T-1-kk}, from this call's ids or
    // the old state[bi, kk-T]. Descending kk reads only slots < kk, which
    // are not yet written, so newState may alias state.
    for (int64_t kk = N - 2; kk >= 0; --kk) {
      Value last = kb.subi(T, kb.idx(1));
      // c_{(T-1) - kk} relative to the chunk: lookBack at t = T-1.
      kb.store(lookBack(ib, bi, last, kk), newState, {bi, kb.idx(kk)});
    }
  });
  func::ReturnOp::create(b);
  return success();
}

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
                 Value q = kc.decodeE4M3(kc.load(table, {row, c}));
                 Value sIdx = arith::DivUIOp::create(cb, c, blk);
                 Value s = kc.decodeE8M0(kc.load(scale, {row, sIdx}));
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

LogicalResult buildGate(EngramGateOp op, func::FuncOp fn) {
  if (op.hasShortConv())
    return op.emitError()
           << "the CPU kernel of v4.engram.gate does not support the demo "
              "short-conv form (V4-SPEC 8.6 step 5) yet";
  auto b = bodyBuilder(op, fn);
  Num k{{b}};
  Value x = fn.getArgument(0), kv = fn.getArgument(1), qw = fn.getArgument(2),
        kw = fn.getArgument(3), y = fn.getArgument(4);
  auto xType = cast<MemRefType>(x.getType());
  Type elt = xType.getElementType();
  const int64_t n = xType.getDimSize(2), d = xType.getDimSize(3);
  Value zero = k.idx(0), nV = k.idx(n), dV = k.idx(d);
  Value eps = k.f32(static_cast<float>(op.getEps().convertToDouble()));
  Value dF = k.f32(static_cast<double>(static_cast<float>(d)));
  Value sqrtD = k.f32(std::sqrt(static_cast<float>(d)));
  Value one = k.f32(1.0), clampMin = k.f32(1e-6f);

  loop(b, zero, k.dim(x, 0), [&](ImplicitLocOpBuilder &bb, Value bi) {
    loop(bb, zero, Num{{bb}}.dim(x, 1), [&](ImplicitLocOpBuilder &tb, Value t) {
      loop(tb, zero, nV, [&](ImplicitLocOpBuilder &ib, Value i) {
        Num ki{{ib}};
        Value kBase = ki.muli(i, dV);
        // One pass, three fp32 sums in ascending channel order.
        SmallVector<Value> s = reduce(
            ib, zero, dV, {ki.f32(0.0), ki.f32(0.0), ki.f32(0.0)},
            [&](ImplicitLocOpBuilder &cb, Value c,
                ValueRange acc) -> SmallVector<Value> {
              Num kc{{cb}};
              Value xv = kc.toF32(kc.load(x, {bi, t, i, c}));
              Value kvv = kc.toF32(kc.load(kv, {bi, t, kc.addi(kBase, c)}));
              Value w = kc.mul(kc.toF32(kc.load(qw, {i, c})),
                               kc.toF32(kc.load(kw, {i, c})));
              Value dotT = kc.mul(kc.mul(xv, w), kvv);
              return {kc.add(acc[0], dotT), kc.add(acc[1], kc.mul(xv, xv)),
                      kc.add(acc[2], kc.mul(kvv, kvv))};
            });
        auto rstd = [&](Value ss) {
          return ki.div(one,
                        math::SqrtOp::create(ib, ki.add(ki.div(ss, dF), eps)));
        };
        Value dot = ki.div(ki.mul(ki.mul(s[0], rstd(s[1])), rstd(s[2])), sqrtD);
        Value pos = arith::CmpFOp::create(ib, arith::CmpFPredicate::OGT, dot,
                                          ki.f32(0));
        Value neg = arith::CmpFOp::create(ib, arith::CmpFPredicate::OLT, dot,
                                          ki.f32(0));
        Value sign =
            ki.select(pos, one, ki.select(neg, ki.f32(-1.0), ki.f32(0)));
        Value mag = math::SqrtOp::create(
            ib, arith::MaximumFOp::create(ib, math::AbsFOp::create(ib, dot),
                                          clampMin));
        Value z = ki.mul(sign, mag);
        Value gate = ki.div(
            one,
            ki.add(one, math::ExpOp::create(ib, arith::NegFOp::create(ib, z))));
        Value vBase = ki.idx(n * d);
        loop(ib, zero, dV, [&](ImplicitLocOpBuilder &cb, Value c) {
          Num kc{{cb}};
          Value xv = kc.toF32(kc.load(x, {bi, t, i, c}));
          Value vv = kc.toF32(kc.load(kv, {bi, t, kc.addi(vBase, c)}));
          kc.store(kc.fromF32(kc.add(xv, kc.mul(gate, vv)), elt), y,
                   {bi, t, i, c});
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
      .Case<EngramStateEmptyOp>([&](auto o) { return buildStateEmpty(o, fn); })
      .Case<EngramHashOp>([&](auto o) { return buildHash(o, fn); })
      .Case<EngramLookupOp>([&](auto o) { return buildLookup(o, fn); })
      .Case<EngramGateOp>([&](auto o) { return buildGate(o, fn); })
      .Default([](Operation *) { return std::nullopt; });
}

} // namespace mlir::v4::cpu
