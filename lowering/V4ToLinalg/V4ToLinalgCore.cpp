//===- V4ToLinalgCore.cpp - target-neutral bodies (Core family) -----------===//
//
// v4.embedding, v4.rms_norm, v4.rope, v4.hadamard, v4.fake_quant; the state
// constructors v4.ring.empty, v4.cache.empty, v4.kv.state_empty,
// v4.engram.state_empty; v4.ring.write, v4.kv.compress (its tied state and
// cache updated in place) and v4.attn.window_indices (V4-SPEC 2, 3, 5, 8.8,
// 9).
//
// Each body reproduces the arithmetic of the hand-built CPU kernel
// (lowering/KernelBuilders) op for op: the same fp32 formulas in the same
// operand order, the same bf16 rounding points (arith.truncf/extf), and
// reductions in ascending index order accumulated in fp32 (linalg reductions
// become ascending loops), so both paths give bit-identical results.
//
//===----------------------------------------------------------------------===//
#include "lowering/KernelBuilders/Transpose8x8.h"
#include "lowering/Numerics/LowPrecision.h"
#include "lowering/V4ToLinalg/V4ToLinalgPatterns.h"

#include "dialects/V4/V4Attrs.h"
#include "dialects/V4/V4Numerics.h"
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4Types.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <cmath>
#include <limits>
#include <numeric>
#include <tuple>
#include <type_traits>

using namespace mlir;
using namespace mlir::v4;

bool mlir::v4::onHostCPU(Operation *op) {
  for (Operation *p = op; p; p = p->getParentOp())
    if (auto a = p->getAttrOfType<StringAttr>("v4.target"))
      return a.getValue() == "cpu";
  return true;
}

Value mlir::v4::readF32Vector(ImplicitLocOpBuilder &b, Value t, ValueRange ix,
                              int64_t lanes) {
  Type elt = cast<RankedTensorType>(t.getType()).getElementType();
  Value pad = arith::ConstantOp::create(b, b.getFloatAttr(elt, 0.0));
  Value v = vector::TransferReadOp::create(b, VectorType::get({lanes}, elt), t,
                                           ix, pad, ArrayRef<bool>{true});
  if (elt.isF32())
    return v;
  return arith::ExtFOp::create(b, VectorType::get({lanes}, b.getF32Type()), v);
}

namespace {

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

/// Scalar arithmetic in a body, with the rounding helpers of the kernels.
struct Scalar {
  ImplicitLocOpBuilder &b;

  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, v); }
  Value f32(double v) {
    return arith::ConstantOp::create(b, b.getF32FloatAttr(v));
  }
  Value i64(int64_t v) {
    return arith::ConstantOp::create(b, b.getI64IntegerAttr(v));
  }
  /// Widening, narrowing and bf16 rounding points (lowering/Numerics).
  Value toF32(Value v) { return lowp::toF32(b, v); }
  Value fromF32(Value v, Type t) { return lowp::fromF32(b, v, t); }
  Value roundBF16(Value v) { return lowp::roundBF16(b, v); }
  Value add(Value x, Value y) { return arith::AddFOp::create(b, x, y); }
  Value sub(Value x, Value y) { return arith::SubFOp::create(b, x, y); }
  Value mul(Value x, Value y) { return arith::MulFOp::create(b, x, y); }
  Value div(Value x, Value y) { return arith::DivFOp::create(b, x, y); }
  Value addi(Value x, Value y) { return arith::AddIOp::create(b, x, y); }
  Value subi(Value x, Value y) { return arith::SubIOp::create(b, x, y); }
  Value muli(Value x, Value y) { return arith::MulIOp::create(b, x, y); }
  Value cmpi(arith::CmpIPredicate p, Value x, Value y) {
    return arith::CmpIOp::create(b, p, x, y);
  }
  Value select(Value c, Value x, Value y) {
    return arith::SelectOp::create(b, c, x, y);
  }
  Value index(int64_t dim) { return linalg::IndexOp::create(b, dim); }
  /// The bits of a narrow float (bf16, f16) as an integer, so that control
  /// flow and selects carry integers: the CPU backend promotes a bf16 phi
  /// or select through f32 and back, a conversion libcall the kernels do
  /// not link. Other values pass through.
  Value toBits(Value v) {
    auto ft = dyn_cast<FloatType>(v.getType());
    if (!ft || ft.getWidth() >= 32)
      return v;
    return arith::BitcastOp::create(b, b.getIntegerType(ft.getWidth()), v);
  }
  Value fromBits(Value v, Type t) {
    if (v.getType() == t)
      return v;
    return arith::BitcastOp::create(b, t, v);
  }
  Value toIndex(Value v) {
    return arith::IndexCastOp::create(b, b.getIndexType(), v);
  }
  Value dim(Value t, int64_t d) { return tensor::DimOp::create(b, t, d); }
};

/// tensor.empty of `type`; dynamic dim d gets the size `dynSize(d)`.
Value emptyTensor(ImplicitLocOpBuilder &b, RankedTensorType type,
                  function_ref<Value(int64_t)> dynSize) {
  SmallVector<Value> dyn;
  for (int64_t d = 0; d < type.getRank(); ++d)
    if (type.isDynamicDim(d))
      dyn.push_back(dynSize(d));
  return tensor::EmptyOp::create(b, type.getShape(), type.getElementType(),
                                 dyn);
}

/// tensor.empty of `type` shaped like `like` (same rank).
Value emptyLike(ImplicitLocOpBuilder &b, RankedTensorType type, Value like) {
  return emptyTensor(
      b, type, [&](int64_t d) { return tensor::DimOp::create(b, like, d); });
}

/// A fresh tensor of the static `type` filled with `value`.
Value filled(ImplicitLocOpBuilder &b, RankedTensorType type, TypedAttr value) {
  Value init = tensor::EmptyOp::create(b, type.getShape(),
                                       type.getElementType(), ValueRange());
  Value v = arith::ConstantOp::create(b, value);
  return linalg::FillOp::create(b, ValueRange{v}, ValueRange{init})
      .getResult(0);
}

/// The map (d0, ..., d{rank-1}) -> (d{first}, ..., d{first+count-1}).
AffineMap projection(MLIRContext *ctx, int64_t rank, int64_t first,
                     int64_t count) {
  SmallVector<AffineExpr> exprs;
  for (int64_t i = first; i < first + count; ++i)
    exprs.push_back(getAffineDimExpr(i, ctx));
  return AffineMap::get(rank, 0, exprs, ctx);
}

using BodyFn = function_ref<void(Scalar &, ValueRange)>;

/// A linalg.generic whose body is built by `fn` with an ImplicitLocOpBuilder
/// (fn ends with the linalg.yield).
linalg::GenericOp generic(ImplicitLocOpBuilder &b, Type result, ValueRange ins,
                          ValueRange outs, ArrayRef<AffineMap> maps,
                          ArrayRef<utils::IteratorType> iterators, BodyFn fn) {
  return linalg::GenericOp::create(
      b, TypeRange{result}, ins, outs, maps, iterators,
      [&](OpBuilder &nb, Location loc, ValueRange args) {
        ImplicitLocOpBuilder ib(loc, nb);
        Scalar s{ib};
        fn(s, args);
      });
}

SmallVector<utils::IteratorType> parallel(int64_t rank) {
  return SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel);
}

/// The single converted type of `t` (null if it converts to several).
RankedTensorType convertedTensor(const TypeConverter *converter, Type t) {
  return dyn_cast_or_null<RankedTensorType>(converter->convertType(t));
}

//===----------------------------------------------------------------------===//
// v4.embedding (V4-SPEC 3 step 1): out[b, t, :] = table[ids[b, t], :]
//===----------------------------------------------------------------------===//

struct EmbeddingLowering : public OpConversionPattern<EmbeddingOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(EmbeddingOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    auto type = convertedTensor(getTypeConverter(), op.getType());
    if (!type)
      return rewriter.notifyMatchFailure(op, "result is not one tensor");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Value table = adaptor.getTable(), ids = adaptor.getIds();
    Value init = emptyTensor(b, type, [&](int64_t d) -> Value {
      return d < 2 ? tensor::DimOp::create(b, ids, d)
                   : tensor::DimOp::create(b, table, 1);
    });
    MLIRContext *ctx = op.getContext();
    auto r =
        generic(b, type, ids, init,
                {projection(ctx, 3, 0, 2), projection(ctx, 3, 0, 3)},
                parallel(3), [&](Scalar &s, ValueRange args) {
                  // An exact copy (widened when the activations are f32).
                  Value v = tensor::ExtractOp::create(
                      s.b, table, ValueRange{s.toIndex(args[0]), s.index(2)});
                  if (v.getType() != type.getElementType())
                    v = arith::ExtFOp::create(s.b, type.getElementType(), v);
                  linalg::YieldOp::create(s.b, v);
                });
    rewriter.replaceOp(op, r.getResults());
    return success();
  }
};

//===----------------------------------------------------------------------===//
// v4.convert: f32 -> bf16 (RNE), bf16 -> f32 (exact), element by element
//===----------------------------------------------------------------------===//

struct ConvertLowering : public OpConversionPattern<ConvertOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(ConvertOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    auto type = convertedTensor(getTypeConverter(), op.getType());
    if (!type)
      return rewriter.notifyMatchFailure(op, "result is not one tensor");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Value input = adaptor.getInput();
    Value init = emptyTensor(b, type, [&](int64_t d) -> Value {
      return tensor::DimOp::create(b, input, d);
    });
    int64_t rank = type.getRank();
    AffineMap id = AffineMap::getMultiDimIdentityMap(rank, op.getContext());
    auto r =
        generic(b, type, ValueRange{input}, init, {id, id}, parallel(rank),
                [&](Scalar &s, ValueRange args) {
                  linalg::YieldOp::create(
                      s.b, s.fromF32(s.toF32(args[0]), type.getElementType()));
                });
    rewriter.replaceOp(op, r.getResults());
    return success();
  }
};

//===----------------------------------------------------------------------===//
// v4.last_token: out[b, 0, ...] = in[b, T - 1, ...], an exact copy
//===----------------------------------------------------------------------===//

struct LastTokenLowering : public OpConversionPattern<LastTokenOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(LastTokenOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    auto type = convertedTensor(getTypeConverter(), op.getType());
    if (!type)
      return rewriter.notifyMatchFailure(op, "result is not one tensor");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Value input = adaptor.getInput();
    Value last = arith::SubIOp::create(b, tensor::DimOp::create(b, input, 1),
                                       arith::ConstantIndexOp::create(b, 1));
    // A gather of row T - 1 (a loop nest on every target; a strided slice
    // copy would need a runtime copy helper).
    Value init = emptyTensor(b, type, [&](int64_t d) -> Value {
      return tensor::DimOp::create(b, input, d);
    });
    int64_t rank = type.getRank();
    auto r = generic(b, type, ValueRange{}, init,
                     {AffineMap::getMultiDimIdentityMap(rank, op.getContext())},
                     parallel(rank), [&](Scalar &s, ValueRange) {
                       SmallVector<Value> at;
                       for (int64_t d = 0; d < rank; ++d)
                         at.push_back(d == 1 ? last : s.index(d));
                       Value v = tensor::ExtractOp::create(s.b, input, at);
                       linalg::YieldOp::create(s.b, v);
                     });
    rewriter.replaceOp(op, r.getResults());
    return success();
  }
};

//===----------------------------------------------------------------------===//
// v4.rms_norm (V4-SPEC 2.1, 5.1)
//===----------------------------------------------------------------------===//

struct RMSNormLowering : public OpConversionPattern<RMSNormOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(RMSNormOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Value x = adaptor.getX(), w = adaptor.getWeight();
    auto xType = dyn_cast<RankedTensorType>(x.getType());
    if (!xType)
      return rewriter.notifyMatchFailure(op, "x is not a ranked tensor");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = op.getContext();
    Scalar k{b};
    Type elt = xType.getElementType(), f32 = b.getF32Type();
    int64_t rank = xType.getRank(), red = op.getReduceRank(), lead = rank - red;
    // In "input" precision (bf16 x) the squares, the mean, mean + eps, the
    // rsqrt and the normalised value are bf16 rounding points.
    bool inputPrecision = op.getPrecision() == Precision::input && !elt.isF32();

    // The number of reduced elements, as the kernels form it.
    Value cols = k.idx(1);
    for (int64_t d = lead; d < rank; ++d)
      cols = arith::MulIOp::create(b, cols, k.dim(x, d));
    Value colsF = arith::UIToFPOp::create(
        b, f32, arith::IndexCastUIOp::create(b, b.getI64Type(), cols));
    Value eps = k.f32(op.getEps().convertToDouble());

    // Per row: the sum of squares in fp32, ascending over the reduced dims.
    auto rowType =
        RankedTensorType::get(xType.getShape().take_front(lead), f32);
    Value rowInit = emptyLike(b, rowType, x);
    Value zeros =
        linalg::FillOp::create(b, ValueRange{k.f32(0.0)}, ValueRange{rowInit})
            .getResult(0);
    SmallVector<utils::IteratorType> iters = parallel(rank);
    for (int64_t d = lead; d < rank; ++d)
      iters[d] = utils::IteratorType::reduction;
    AffineMap id = AffineMap::getMultiDimIdentityMap(rank, ctx);
    AffineMap rowMap = projection(ctx, rank, 0, lead);
    Value sum = generic(b, rowType, x, zeros, {id, rowMap}, iters,
                        [&](Scalar &s, ValueRange args) {
                          Value v = s.toF32(args[0]);
                          Value sq = s.mul(v, v);
                          if (inputPrecision)
                            sq = s.roundBF16(sq);
                          linalg::YieldOp::create(s.b, s.add(args[1], sq));
                        })
                    .getResult(0);

    // Per row: rstd.
    AffineMap rowId = AffineMap::getMultiDimIdentityMap(lead, ctx);
    Value rstd =
        generic(b, rowType, sum, rowInit, {rowId, rowId}, parallel(lead),
                [&](Scalar &s, ValueRange args) {
                  Value mean = s.div(args[0], colsF);
                  Value r;
                  if (inputPrecision) {
                    mean = s.roundBF16(mean);
                    Value t = s.roundBF16(s.add(mean, eps));
                    r = s.roundBF16(math::RsqrtOp::create(s.b, t));
                  } else {
                    r = math::RsqrtOp::create(s.b, s.add(mean, eps));
                  }
                  linalg::YieldOp::create(s.b, r);
                })
            .getResult(0);

    // Per element: x * rstd, then the weight.
    SmallVector<Value> ins = {x, rstd};
    SmallVector<AffineMap> maps = {id, rowMap};
    if (w) {
      ins.push_back(w);
      maps.push_back(projection(ctx, rank, lead, red));
    }
    maps.push_back(id);
    auto out = generic(b, xType, ins, emptyLike(b, xType, x), maps,
                       parallel(rank), [&](Scalar &s, ValueRange args) {
                         Value v = s.mul(s.toF32(args[0]), args[1]);
                         if (w) {
                           // In "input" precision the product with x is itself
                           // a rounding point before the weight multiplies it.
                           if (inputPrecision)
                             v = s.toF32(s.fromF32(v, elt));
                           v = s.mul(s.toF32(args[2]), v);
                         }
                         linalg::YieldOp::create(s.b, s.fromF32(v, elt));
                       });
    rewriter.replaceOp(op, out.getResults());
    return success();
  }
};

//===----------------------------------------------------------------------===//
// v4.rope (V4-SPEC 2.2)
//===----------------------------------------------------------------------===//

struct RopeLowering : public OpConversionPattern<RopeOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(RopeOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Value x = adaptor.getX(), pos = adaptor.getPositions();
    auto xType = dyn_cast<RankedTensorType>(x.getType());
    auto pType = dyn_cast<RankedTensorType>(pos.getType());
    if (!xType || !pType)
      return rewriter.notifyMatchFailure(op, "operands are not ranked tensors");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = op.getContext();
    Scalar k{b};
    Type elt = xType.getElementType();
    int64_t rank = xType.getRank(), pRank = pType.getRank();
    SmallVector<float> freqs = op.getTable().getFrequencies();
    int64_t ropeDim = op.getTable().getRopeDim();
    bool inverse = op.getInverse();

    // The frequency table f'_i as a constant.
    auto freqType = RankedTensorType::get({static_cast<int64_t>(freqs.size())},
                                          b.getF32Type());
    Value freqTable = arith::ConstantOp::create(
        b, DenseElementsAttr::get(freqType, ArrayRef<float>(freqs)));
    // The rotated part is the last ropeDim channels.
    Value offset = k.subi(k.dim(x, rank - 1), k.idx(ropeDim));

    // On the host CPU each token's cos and sin of fp32(fp32(p) * f'_i) go
    // to a table first, once per frequency instead of once per element of
    // every head (the same calls, so the same bits); a GPU target keeps
    // them in the one loop nest it maps onto threads.
    Value cosTable, sinTable;
    if (onHostCPU(op)) {
      SmallVector<int64_t> tableShape(pType.getShape());
      tableShape.push_back(static_cast<int64_t>(freqs.size()));
      auto tableType = RankedTensorType::get(tableShape, b.getF32Type());
      Value empty = emptyTensor(b, tableType, [&](int64_t d) -> Value {
        return tensor::DimOp::create(b, pos, d);
      });
      AffineMap tableId = AffineMap::getMultiDimIdentityMap(pRank + 1, ctx);
      auto tables = linalg::GenericOp::create(
          b, TypeRange{tableType, tableType}, ValueRange{pos},
          ValueRange{empty, empty},
          ArrayRef<AffineMap>{projection(ctx, pRank + 1, 0, pRank), tableId,
                              tableId},
          parallel(pRank + 1),
          [&](OpBuilder &nb, Location loc, ValueRange args) {
            ImplicitLocOpBuilder ib(loc, nb);
            Scalar s{ib};
            Value pf = arith::SIToFPOp::create(ib, ib.getF32Type(), args[0]);
            Value theta =
                s.mul(pf, tensor::ExtractOp::create(
                              ib, freqTable, ValueRange{s.index(pRank)}));
            linalg::YieldOp::create(ib,
                                    ValueRange{math::CosOp::create(ib, theta),
                                               math::SinOp::create(ib, theta)});
          });
      cosTable = tables.getResult(0);
      sinTable = tables.getResult(1);
    }

    AffineMap id = AffineMap::getMultiDimIdentityMap(rank, ctx);
    auto out = generic(
        b, xType, pos, emptyLike(b, xType, x),
        {projection(ctx, rank, 0, pRank), id}, parallel(rank),
        [&](Scalar &s, ValueRange args) {
          SmallVector<Value> at;
          for (int64_t d = 0; d < rank; ++d)
            at.push_back(s.index(d));
          Value c = at.back();
          Value isNope = s.cmpi(arith::CmpIPredicate::ult, c, offset);
          auto ifOp = scf::IfOp::create(
              s.b, isNope,
              [&](OpBuilder &nb, Location loc) {
                // The nope part passes through.
                ImplicitLocOpBuilder ib(loc, nb);
                Value v = tensor::ExtractOp::create(ib, x, ValueRange(at));
                scf::YieldOp::create(ib, ValueRange{Scalar{ib}.toBits(v)});
              },
              [&](OpBuilder &nb, Location loc) {
                ImplicitLocOpBuilder ib(loc, nb);
                Scalar r{ib};
                Value rel = r.subi(c, offset);
                Value i = arith::DivUIOp::create(ib, rel, r.idx(2));
                SmallVector<Value> atA(at), atB(at);
                atA.back() = r.addi(offset, r.muli(i, r.idx(2)));
                atB.back() = r.addi(atA.back(), r.idx(1));
                Value a = r.toF32(tensor::ExtractOp::create(ib, x, atA));
                Value bv = r.toF32(tensor::ExtractOp::create(ib, x, atB));
                // fp32(fp32(p) * f'_i), then cos / sin.
                Value cosv, sinv;
                if (cosTable) {
                  SmallVector<Value> atTable(at.begin(), at.begin() + pRank);
                  atTable.push_back(i);
                  cosv = tensor::ExtractOp::create(ib, cosTable, atTable);
                  sinv = tensor::ExtractOp::create(ib, sinTable, atTable);
                } else {
                  Value pf =
                      arith::SIToFPOp::create(ib, ib.getF32Type(), args[0]);
                  Value theta = r.mul(pf, tensor::ExtractOp::create(
                                              ib, freqTable, ValueRange{i}));
                  cosv = math::CosOp::create(ib, theta);
                  sinv = math::SinOp::create(ib, theta);
                }
                if (inverse)
                  sinv = arith::NegFOp::create(ib, sinv);
                // (a + ib)(cos + i sin): fp32, rounded back once.
                Value ra = r.sub(r.mul(a, cosv), r.mul(bv, sinv));
                Value rb = r.add(r.mul(a, sinv), r.mul(bv, cosv));
                Value even =
                    r.cmpi(arith::CmpIPredicate::eq,
                           arith::RemUIOp::create(ib, rel, r.idx(2)), r.idx(0));
                scf::YieldOp::create(ib, ValueRange{r.toBits(r.fromF32(
                                             r.select(even, ra, rb), elt))});
              });
          linalg::YieldOp::create(s.b, s.fromBits(ifOp.getResult(0), elt));
        });
    rewriter.replaceOp(op, out.getResults());
    return success();
  }
};

//===----------------------------------------------------------------------===//
// v4.hadamard (V4-SPEC 2.5)
//===----------------------------------------------------------------------===//

/// The butterfly stages of the fast Walsh-Hadamard transform on the last
/// dim of the f32 tensor `buf` [..., n] (n static): stage h maps the pair
/// (i, i + h) of each block of 2h to (a + b, a - b), one linalg.generic per
/// stage into a fresh tensor.
Value hadamardStages(ImplicitLocOpBuilder &b, Value buf) {
  auto bufType = cast<RankedTensorType>(buf.getType());
  int64_t rank = bufType.getRank(), n = bufType.getShape().back();
  AffineMap id = AffineMap::getMultiDimIdentityMap(rank, b.getContext());
  for (int64_t h = 1; h < n; h *= 2) {
    Value prev = buf;
    buf = generic(b, bufType, ValueRange(), emptyLike(b, bufType, prev), {id},
                  parallel(rank),
                  [&](Scalar &s, ValueRange) {
                    SmallVector<Value> at;
                    for (int64_t d = 0; d < rank; ++d)
                      at.push_back(s.index(d));
                    Value i = at.back(), hV = s.idx(h);
                    Value upper =
                        s.cmpi(arith::CmpIPredicate::ne,
                               arith::AndIOp::create(s.b, i, hV), s.idx(0));
                    SmallVector<Value> at0(at), at1(at);
                    at0.back() = s.select(upper, s.subi(i, hV), i);
                    at1.back() = s.addi(at0.back(), hV);
                    Value a = tensor::ExtractOp::create(s.b, prev, at0);
                    Value c = tensor::ExtractOp::create(s.b, prev, at1);
                    linalg::YieldOp::create(
                        s.b, s.select(upper, s.sub(a, c), s.add(a, c)));
                  })
              .getResult(0);
  }
  return buf;
}

/// `x`'s type if it is a ranked tensor with a static last dim, else null.
RankedTensorType withStaticLastDim(Value x) {
  auto type = dyn_cast<RankedTensorType>(x.getType());
  if (!type || type.isDynamicDim(type.getRank() - 1))
    return {};
  return type;
}

/// Fast Walsh-Hadamard transform in fp32 along the last dim (natural /
/// Sylvester order): stage h maps the pair (i, i + h) of each block of 2h
/// to (a + b, a - b); one linalg.generic per stage. Then scale by n^-1/2 and
/// round once.
struct HadamardLowering : public OpConversionPattern<HadamardOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(HadamardOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Value x = adaptor.getX();
    auto xType = withStaticLastDim(x);
    if (!xType)
      return rewriter.notifyMatchFailure(op, "last dim is not static");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = op.getContext();
    Type elt = xType.getElementType();
    int64_t rank = xType.getRank(), n = xType.getShape().back();
    auto bufType = RankedTensorType::get(xType.getShape(), b.getF32Type());
    AffineMap id = AffineMap::getMultiDimIdentityMap(rank, ctx);

    Value buf = generic(b, bufType, x, emptyLike(b, bufType, x), {id, id},
                        parallel(rank),
                        [&](Scalar &s, ValueRange args) {
                          linalg::YieldOp::create(s.b, s.toF32(args[0]));
                        })
                    .getResult(0);
    buf = hadamardStages(b, buf);
    Value scale = Scalar{b}.f32(1.0 / std::sqrt(static_cast<double>(n)));
    auto out = generic(b, xType, buf, emptyLike(b, xType, x), {id, id},
                       parallel(rank), [&](Scalar &s, ValueRange args) {
                         linalg::YieldOp::create(
                             s.b, s.fromF32(s.mul(args[0], scale), elt));
                       });
    rewriter.replaceOp(op, out.getResults());
    return success();
  }
};

//===----------------------------------------------------------------------===//
// State constructors: v4.ring.empty, v4.cache.empty (zeros),
// v4.kv.state_empty (kv = 0, score = -inf), v4.engram.state_empty (pad ids)
//===----------------------------------------------------------------------===//

template <typename OpTy>
struct ZeroStateLowering : public OpConversionPattern<OpTy> {
  using OpConversionPattern<OpTy>::OpConversionPattern;
  LogicalResult
  matchAndRewrite(OpTy op, typename OpConversionPattern<OpTy>::OpAdaptor,
                  ConversionPatternRewriter &rewriter) const override {
    auto type = convertedTensor(this->getTypeConverter(), op.getType());
    if (!type || !type.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "state is not one static tensor");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    rewriter.replaceOp(
        op,
        filled(b, type, cast<TypedAttr>(b.getZeroAttr(type.getElementType()))));
    return success();
  }
};

struct KVStateEmptyLowering : public OpConversionPattern<KVStateEmptyOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(KVStateEmptyOp op, OneToNOpAdaptor,
                  ConversionPatternRewriter &rewriter) const override {
    SmallVector<Type> types;
    if (failed(getTypeConverter()->convertType(op.getType(), types)) ||
        types.size() != 2)
      return rewriter.notifyMatchFailure(op, "state is not two tensors");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto kvType = cast<RankedTensorType>(types[0]);
    auto scoreType = cast<RankedTensorType>(types[1]);
    Value kv = filled(b, kvType, b.getF32FloatAttr(0.0));
    Value score =
        filled(b, scoreType,
               b.getF32FloatAttr(-std::numeric_limits<float>::infinity()));
    rewriter.replaceOpWithMultiple(op, {{kv, score}});
    return success();
  }
};

struct EngramStateEmptyLowering
    : public OpConversionPattern<EngramStateEmptyOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(EngramStateEmptyOp op, OpAdaptor,
                  ConversionPatternRewriter &rewriter) const override {
    auto type = convertedTensor(getTypeConverter(), op.getType());
    if (!type || !type.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "state is not one static tensor");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    rewriter.replaceOp(
        op, filled(b, type,
                   IntegerAttr::get(type.getElementType(),
                                    static_cast<int64_t>(op.getPadId()))));
    return success();
  }
};

//===----------------------------------------------------------------------===//
// v4.ring.write (V4-SPEC 5.2, 9.2.1): computed into the ring operand
//===----------------------------------------------------------------------===//

/// scf.for iv in [lb, ub) carrying `init`; fn returns the next values.
SmallVector<Value>
forLoop(ImplicitLocOpBuilder &b, Value lb, Value ub, ValueRange init,
        function_ref<SmallVector<Value>(Scalar &, Value, ValueRange)> fn) {
  Value one = arith::ConstantIndexOp::create(b, 1);
  auto loop = scf::ForOp::create(
      b, lb, ub, one, init,
      [&](OpBuilder &nb, Location loc, Value iv, ValueRange acc) {
        ImplicitLocOpBuilder ib(loc, nb);
        Scalar s{ib};
        scf::YieldOp::create(ib, fn(s, iv, acc));
      });
  return SmallVector<Value>(loop.getResults());
}

/// fn(s, bi, t, acc) for every token (bi, t) of x [B, T, ...] in order,
/// carrying `init`.
SmallVector<Value> forEachToken(
    ImplicitLocOpBuilder &b, Value x, ValueRange init,
    function_ref<SmallVector<Value>(Scalar &, Value, Value, ValueRange)> fn) {
  Value zero = arith::ConstantIndexOp::create(b, 0);
  return forLoop(b, zero, tensor::DimOp::create(b, x, 0), init,
                 [&](Scalar &s, Value bi, ValueRange acc) {
                   return forLoop(s.b, zero, s.dim(x, 1), acc,
                                  [&](Scalar &s, Value t, ValueRange acc) {
                                    return fn(s, bi, t, acc);
                                  });
                 });
}

/// Rows [from, from + len) of kv [B, T, D] at batch row `bi` copied
/// exactly into ring [B, slots, D] from slot `slot` on (no wrap).
Value copyRows(ImplicitLocOpBuilder &b, Value kv, Value ring, Value bi,
               Value from, Value slot, Value len) {
  MLIRContext *ctx = b.getContext();
  OpFoldResult one = b.getIndexAttr(1), zero = b.getIndexAttr(0);
  OpFoldResult d = tensor::getMixedSize(b, b.getLoc(), ring, 2);
  SmallVector<OpFoldResult> sizes{one, len, d}, strides(3, one);
  Value src = tensor::ExtractSliceOp::create(
      b, kv, SmallVector<OpFoldResult>{bi, from, zero}, sizes, strides);
  SmallVector<OpFoldResult> at{bi, slot, zero};
  Value dst = tensor::ExtractSliceOp::create(b, ring, at, sizes, strides);
  AffineMap id = AffineMap::getMultiDimIdentityMap(3, ctx);
  // An exact copy: no conversion.
  Value copied = generic(b, cast<RankedTensorType>(dst.getType()), src, dst,
                         {id, id}, parallel(3),
                         [&](Scalar &s, ValueRange args) {
                           linalg::YieldOp::create(s.b, args[0]);
                         })
                     .getResult(0);
  return tensor::InsertSliceOp::create(b, copied, ring, at, sizes, strides);
}

/// Token t of the call goes to slot (start_pos + t) mod slots; only the
/// last `slots` tokens land (V4-SPEC 5.2), so per batch row the written
/// slots are at most two runs (the second after the wrap). Only those
/// rows are touched: a decode step copies one row, not the whole ring.
struct RingWriteLowering : public OpConversionPattern<RingWriteOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(RingWriteOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Value ring = adaptor.getRing(), kv = adaptor.getKv(),
          startPos = adaptor.getStartPos();
    auto ringType = dyn_cast<RankedTensorType>(ring.getType());
    if (!ringType || ringType.getRank() != 3)
      return rewriter.notifyMatchFailure(op, "ring is not one rank-3 tensor");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Scalar k{b};
    Value slots = k.dim(ring, 1), T = k.dim(kv, 1), zero = k.idx(0);
    Value t0 = arith::MaxSIOp::create(b, zero, k.subi(T, slots));
    Value n = k.subi(T, t0);
    Value out = forLoop(
        b, zero, k.dim(ring, 0), ValueRange{ring},
        [&](Scalar &e, Value bi, ValueRange acc) {
          Value sp = e.toIndex(
              tensor::ExtractOp::create(e.b, startPos, ValueRange{bi}));
          Value s0 = arith::RemUIOp::create(e.b, e.addi(sp, t0), slots);
          Value len1 = arith::MinUIOp::create(e.b, n, e.subi(slots, s0));
          Value r = copyRows(e.b, kv, acc[0], bi, t0, s0, len1);
          r = copyRows(e.b, kv, r, bi, e.addi(t0, len1), zero, e.subi(n, len1));
          return SmallVector<Value>{r};
        })[0];
    rewriter.replaceOp(op, out);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// v4.attn.window_indices (V4-SPEC 5.2)
//===----------------------------------------------------------------------===//

struct WindowIndicesLowering : public OpConversionPattern<AttnWindowIndicesOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(AttnWindowIndicesOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    auto type = convertedTensor(getTypeConverter(), op.getType());
    if (!type || type.getRank() != 3)
      return rewriter.notifyMatchFailure(op, "result is not a rank-3 tensor");
    Value startPos = adaptor.getStartPos(), numTokens = adaptor.getNumTokens();
    if (type.isDynamicDim(1) && !numTokens)
      return rewriter.notifyMatchFailure(op, "dynamic T without numTokens");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = op.getContext();
    int64_t window = op.getWindow();
    Value init = emptyTensor(b, type, [&](int64_t d) -> Value {
      if (d == 1)
        return numTokens;
      return tensor::DimOp::create(b, startPos, 0);
    });
    auto out = generic(
        b, type, startPos, init,
        {projection(ctx, 3, 0, 1), projection(ctx, 3, 0, 3)}, parallel(3),
        [&](Scalar &s, ValueRange args) {
          Type i64 = s.b.getI64Type();
          Value p =
              s.addi(args[0], arith::IndexCastOp::create(s.b, i64, s.index(1)));
          Value q0 = arith::MaxSIOp::create(s.b, s.i64(0),
                                            s.subi(p, s.i64(window - 1)));
          Value q =
              s.addi(q0, arith::IndexCastOp::create(s.b, i64, s.index(2)));
          linalg::YieldOp::create(
              s.b,
              s.select(s.cmpi(arith::CmpIPredicate::sle, q, p), q, s.i64(-1)));
        });
    rewriter.replaceOp(op, out.getResults());
    return success();
  }
};

//===----------------------------------------------------------------------===//
// v4.csa.topk (V4-SPEC 5.5 step 6)
//===----------------------------------------------------------------------===//

/// Selection by repeated arg-max, as the hand-built kernel: the i-th pick is
/// the best entry after the (i-1)-th pick in the order (score descending, id
/// ascending); ties go to the lowest id; -1 pads past the visible entries.
/// On the host CPU a token whose visible scores hold no NaN instead puts
/// each visible id at its rank in that order, counted 16 candidates to a
/// vector (the same picks: the order is total without NaN; V^2 / 16 vector
/// steps instead of about K V scalar ones, taken while V <= 16 K).
/// A GPU target keeps the rounds (v4-gpu-map-kernels runs each round's
/// arg-max as one warp).
/// Scalar loops over a tensor; the result is copied into a fresh tensor at
/// the end (a loop result stored straight into the kernel's destination
/// does not bufferize: the destination must be written in place while the
/// loop's init aliases it).
struct TopKLowering : public OpConversionPattern<CSATopKOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(CSATopKOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    auto type = convertedTensor(getTypeConverter(), op.getType());
    Value scores = adaptor.getScores(), startPos = adaptor.getStartPos();
    if (!type || type.getRank() != 3)
      return rewriter.notifyMatchFailure(op, "result is not a rank-3 tensor");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = op.getContext();
    Scalar k{b};
    using P = arith::CmpIPredicate;
    using F = arith::CmpFPredicate;
    constexpr float inf = std::numeric_limits<float>::infinity();
    auto sizeOf = [&](int64_t d) -> Value {
      return tensor::DimOp::create(b, scores, d);
    };
    Value init = emptyTensor(b, type, sizeOf);
    Value zero = k.idx(0), N = k.dim(scores, 2), K = k.idx(type.getDimSize(2));
    Value T = type.isDynamicDim(1) ? sizeOf(1) : k.idx(type.getDimSize(1));
    Value B = type.isDynamicDim(0) ? sizeOf(0) : k.idx(type.getDimSize(0));
    Value ratio = k.idx(op.getRatio());
    const bool hostCPU = onHostCPU(op);
    constexpr int64_t L = 16;
    Value picked =
        forLoop(b, zero, B, init, [&](Scalar &e, Value bi, ValueRange o0) {
          Value sp = e.toIndex(
              tensor::ExtractOp::create(e.b, startPos, ValueRange{bi}));
          return forLoop(
              e.b, zero, T, o0, [&](Scalar &e, Value t, ValueRange o1) {
                Value p = e.addi(sp, t);
                Value V = arith::MinSIOp::create(
                    e.b, N,
                    arith::DivUIOp::create(e.b, e.addi(p, e.idx(1)), ratio));
                Value nsel = arith::MinSIOp::create(e.b, K, V);
                auto at = [&](Scalar &e, Value id) {
                  return e.toF32(tensor::ExtractOp::create(
                      e.b, scores, ValueRange{bi, t, id}));
                };
                auto rounds = [&](Scalar &e, Value o) -> Value {
                  SmallVector<Value> r = forLoop(
                      e.b, zero, K, {e.f32(inf), e.i64(-1), o},
                      [&](Scalar &e, Value i, ValueRange prev) {
                        Value ub = e.select(e.cmpi(P::slt, i, nsel), V, zero);
                        SmallVector<Value> best = forLoop(
                            e.b, zero, ub, {e.f32(-inf), e.i64(-1)},
                            [&](Scalar &e, Value id, ValueRange acc) {
                              Value s = at(e, id);
                              Value idI = arith::IndexCastOp::create(
                                  e.b, e.b.getI64Type(), id);
                              auto cmpf = [&](F pred, Value x,
                                              Value y) -> Value {
                                return arith::CmpFOp::create(e.b, pred, x, y);
                              };
                              // Sequenced, so the IR order is fixed.
                              Value lt = cmpf(F::OLT, s, prev[0]);
                              Value eq = cmpf(F::OEQ, s, prev[0]);
                              Value later = e.cmpi(P::sgt, idI, prev[1]);
                              Value after = arith::OrIOp::create(
                                  e.b, lt,
                                  arith::AndIOp::create(e.b, eq, later));
                              Value none = e.cmpi(P::slt, acc[1], e.i64(0));
                              Value gt = cmpf(F::OGT, s, acc[0]);
                              Value better =
                                  arith::OrIOp::create(e.b, none, gt);
                              Value take =
                                  arith::AndIOp::create(e.b, after, better);
                              return SmallVector<Value>{
                                  e.select(take, s, acc[0]),
                                  e.select(take, idI, acc[1])};
                            });
                        Value out = tensor::InsertOp::create(
                            e.b, best[1], prev[2], ValueRange{bi, t, i});
                        return SmallVector<Value>{best[0], best[1], out};
                      });
                  return r[2];
                };
                if (!hostCPU)
                  return SmallVector<Value>{rounds(e, o1[0])};
                // Host CPU: without a NaN among the visible scores the
                // picks are the visible ids in the order (score
                // descending, id ascending), so id j goes to slot
                // rank(j) = #{i : s_i > s_j, or s_i == s_j and i < j} when
                // that is below nsel: 16 candidates to a vector, instead
                // of K scalar scans. A NaN row, and more than 16 K visible
                // entries, keep the rounds.
                Value nan = forLoop(
                    e.b, zero, V,
                    {arith::ConstantOp::create(e.b, e.b.getBoolAttr(false))},
                    [&](Scalar &e, Value id, ValueRange a) {
                      Value s = at(e, id);
                      return SmallVector<Value>{arith::OrIOp::create(
                          e.b, a[0], arith::CmpFOp::create(e.b, F::UNO, s, s))};
                    })[0];
                auto ranks = [&](Scalar &e, Value o) -> Value {
                  Type i32 = e.b.getI32Type();
                  auto vi32 = VectorType::get({L}, i32);
                  auto toI32 = [&](Scalar &e, Value v) -> Value {
                    return arith::IndexCastOp::create(e.b, i32, v);
                  };
                  SmallVector<int32_t> iota(L);
                  std::iota(iota.begin(), iota.end(), 0);
                  Value lane = arith::ConstantOp::create(
                      e.b, DenseElementsAttr::get(vi32, ArrayRef(iota)));
                  Value none = arith::ConstantOp::create(
                      e.b, DenseElementsAttr::get(vi32, int32_t(0)));
                  Value oneV = arith::ConstantOp::create(
                      e.b, DenseElementsAttr::get(vi32, int32_t(1)));
                  Value steps = arith::DivUIOp::create(e.b, V, e.idx(L));
                  Value vEnd = e.muli(steps, e.idx(L));
                  Value placed = forLoop(
                      e.b, zero, V, {o},
                      [&](Scalar &e, Value j, ValueRange acc) {
                        Value sj = at(e, j);
                        Value sjV = vector::BroadcastOp::create(
                            e.b, VectorType::get({L}, e.b.getF32Type()), sj);
                        Value jV =
                            vector::BroadcastOp::create(e.b, vi32, toI32(e, j));
                        Value sums = forLoop(
                            e.b, zero, steps, {none},
                            [&](Scalar &e, Value q, ValueRange a) {
                              Value i0 = e.muli(q, e.idx(L));
                              Value sv = readF32Vector(
                                  e.b, scores, ValueRange{bi, t, i0}, L);
                              Value ids = arith::AddIOp::create(
                                  e.b, lane,
                                  vector::BroadcastOp::create(e.b, vi32,
                                                              toI32(e, i0)));
                              Value before = arith::AndIOp::create(
                                  e.b,
                                  arith::CmpFOp::create(e.b, F::OEQ, sv, sjV),
                                  e.cmpi(P::slt, ids, jV));
                              Value ahead = arith::OrIOp::create(
                                  e.b,
                                  arith::CmpFOp::create(e.b, F::OGT, sv, sjV),
                                  before);
                              return SmallVector<Value>{arith::AddIOp::create(
                                  e.b, a[0], e.select(ahead, oneV, none))};
                            })[0];
                        Value rank = arith::IndexCastOp::create(
                            e.b, e.b.getIndexType(),
                            vector::ReductionOp::create(
                                e.b, vector::CombiningKind::ADD, sums));
                        rank = forLoop(
                            e.b, vEnd, V, {rank},
                            [&](Scalar &e, Value i, ValueRange a) {
                              Value si = at(e, i);
                              Value ahead = arith::OrIOp::create(
                                  e.b,
                                  arith::CmpFOp::create(e.b, F::OGT, si, sj),
                                  arith::AndIOp::create(
                                      e.b,
                                      arith::CmpFOp::create(e.b, F::OEQ, si,
                                                            sj),
                                      e.cmpi(P::ult, i, j)));
                              return SmallVector<Value>{e.select(
                                  ahead, e.addi(a[0], e.idx(1)), a[0])};
                            })[0];
                        auto put = scf::IfOp::create(
                            e.b, e.cmpi(P::ult, rank, nsel),
                            [&](OpBuilder &nb, Location loc) {
                              ImplicitLocOpBuilder ib(loc, nb);
                              Value jI = arith::IndexCastOp::create(
                                  ib, ib.getI64Type(), j);
                              scf::YieldOp::create(
                                  ib,
                                  tensor::InsertOp::create(
                                      ib, jI, acc[0], ValueRange{bi, t, rank})
                                      .getResult());
                            },
                            [&](OpBuilder &nb, Location loc) {
                              ImplicitLocOpBuilder ib(loc, nb);
                              scf::YieldOp::create(ib, acc[0]);
                            });
                        return SmallVector<Value>{put.getResult(0)};
                      })[0];
                  return forLoop(
                      e.b, nsel, K, {placed},
                      [&](Scalar &e, Value i, ValueRange acc) {
                        return SmallVector<Value>{
                            tensor::InsertOp::create(e.b, e.i64(-1), acc[0],
                                                     ValueRange{bi, t, i})
                                .getResult()};
                      })[0];
                };
                // Past 16 K visible entries the ranks' V^2 / 16 steps
                // would outnumber the rounds' K V.
                Value many = e.cmpi(P::ugt, V, e.muli(K, e.idx(L)));
                auto choose = scf::IfOp::create(
                    e.b, arith::OrIOp::create(e.b, nan, many),
                    [&](OpBuilder &nb, Location loc) {
                      ImplicitLocOpBuilder ib(loc, nb);
                      Scalar q{ib};
                      scf::YieldOp::create(ib, rounds(q, o1[0]));
                    },
                    [&](OpBuilder &nb, Location loc) {
                      ImplicitLocOpBuilder ib(loc, nb);
                      Scalar q{ib};
                      scf::YieldOp::create(ib, ranks(q, o1[0]));
                    });
                return SmallVector<Value>{choose.getResult(0)};
              });
        })[0];
    AffineMap id = AffineMap::getMultiDimIdentityMap(3, ctx);
    auto out = generic(b, type, picked, emptyTensor(b, type, sizeOf), {id, id},
                       parallel(3), [&](Scalar &s, ValueRange args) {
                         linalg::YieldOp::create(s.b, args[0]);
                       });
    rewriter.replaceOp(op, out.getResults());
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Fake quantisation (V4-SPEC 2.3): v4.fake_quant and the compressor's
//===----------------------------------------------------------------------===//

/// The pow-2 scales of the fake-quant blocks of `x` [..., n]: block j of the
/// last dim covers [j*blk, min((j+1)*blk, end)); its absolute maximum is an
/// fp32 maximum from 0, ascending (an scf.for in the body), and its scale
/// fp8ActScale / fp4ActScale of it. Result [..., ceil(end / blk)] f32.
Value fakeQuantScales(ImplicitLocOpBuilder &b, Value x, int64_t blk,
                      int64_t end, bool fp4) {
  auto xType = cast<RankedTensorType>(x.getType());
  int64_t rank = xType.getRank();
  SmallVector<int64_t> shape(xType.getShape());
  shape.back() = (end + blk - 1) / blk;
  auto type = RankedTensorType::get(shape, b.getF32Type());
  Value init = emptyTensor(
      b, type, [&](int64_t d) { return tensor::DimOp::create(b, x, d); });
  return generic(
             b, type, ValueRange{}, init,
             {AffineMap::getMultiDimIdentityMap(rank, b.getContext())},
             parallel(rank),
             [&](Scalar &s, ValueRange) {
               SmallVector<Value> at;
               for (int64_t d = 0; d < rank; ++d)
                 at.push_back(s.index(d));
               Value k0 = s.muli(at.back(), s.idx(blk));
               Value k1 = arith::MinUIOp::create(s.b, s.addi(k0, s.idx(blk)),
                                                 s.idx(end));
               Value amax = forLoop(
                   s.b, k0, k1, {s.f32(0.0)},
                   [&](Scalar &e, Value i, ValueRange acc) {
                     SmallVector<Value> xi(at);
                     xi.back() = i;
                     Value v = e.toF32(tensor::ExtractOp::create(e.b, x, xi));
                     return SmallVector<Value>{arith::MaximumFOp::create(
                         e.b, acc[0], math::AbsFOp::create(e.b, v))};
                   })[0];
               linalg::YieldOp::create(s.b, fp4 ? lowp::fp4ActScale(s.b, amax)
                                                : lowp::fp8ActScale(s.b, amax));
             })
      .getResult(0);
}

/// Fake-quantises the first `end` elements of the last dim of `x` [..., n]
/// in blocks of `blk` (the last one may be shorter) into a fresh tensor of
/// element type `elt`: y = finish(grid(v / s) * s), with finish the
/// narrowing to `elt` (or, for an f32 `elt`, `roundBF16` when `bf16` is
/// set). Elements from `end` on are copied (then `elt` must be x's element
/// type): the result is first a copy of x, and the quantised values are
/// computed into its slice [..., 0:end] (no bf16 value crosses a branch).
Value fakeQuant(ImplicitLocOpBuilder &b, Value x, int64_t blk, int64_t end,
                bool fp4, Type elt, bool bf16) {
  auto xType = cast<RankedTensorType>(x.getType());
  int64_t rank = xType.getRank(), n = xType.getShape().back();
  MLIRContext *ctx = b.getContext();
  Value scales = fakeQuantScales(b, x, blk, end, fp4);
  auto type = RankedTensorType::get(xType.getShape(), elt);
  AffineMap id = AffineMap::getMultiDimIdentityMap(rank, ctx);
  Value out = emptyLike(b, type, x), in = x;
  SmallVector<OpFoldResult> offsets(rank, b.getIndexAttr(0)),
      strides(rank, b.getIndexAttr(1)),
      sizes = tensor::getMixedSizes(b, b.getLoc(), x);
  if (end != n) {
    // An exact copy, then the first `end` elements are overwritten.
    out = generic(b, type, x, out, {id, id}, parallel(rank),
                  [&](Scalar &s, ValueRange args) {
                    linalg::YieldOp::create(s.b, args[0]);
                  })
              .getResult(0);
    sizes.back() = b.getIndexAttr(end);
    in = tensor::ExtractSliceOp::create(b, x, offsets, sizes, strides);
  }
  Value dest = end == n ? out
                        : Value(tensor::ExtractSliceOp::create(b, out, offsets,
                                                               sizes, strides));
  Value q = generic(b, dest.getType(), in, dest, {id, id}, parallel(rank),
                    [&](Scalar &s, ValueRange args) {
                      SmallVector<Value> at;
                      for (int64_t d = 0; d < rank; ++d)
                        at.push_back(s.index(d));
                      at.back() =
                          arith::DivUIOp::create(s.b, at.back(), s.idx(blk));
                      Value scale = tensor::ExtractOp::create(s.b, scales, at);
                      Value v = s.toF32(args[0]);
                      Value g = fp4 ? lowp::quantizeE2M1(s.b, v, scale)
                                    : lowp::quantizeE4M3(s.b, v, scale);
                      // The grid value times s is exact in bf16.
                      Value y = s.mul(g, scale);
                      linalg::YieldOp::create(s.b, bf16 ? s.roundBF16(y)
                                                        : s.fromF32(y, elt));
                    })
                .getResult(0);
  if (end == n)
    return q;
  return tensor::InsertSliceOp::create(b, q, out, offsets, sizes, strides);
}

/// v4.fake_quant: floor(extent / blockSize) whole blocks are quantised, the
/// rest of the last dim passes through.
struct FakeQuantLowering : public OpConversionPattern<FakeQuantOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(FakeQuantOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    auto xType = withStaticLastDim(adaptor.getX());
    if (!xType)
      return rewriter.notifyMatchFailure(op, "last dim is not static");
    Value x = adaptor.getX();
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    int64_t n = xType.getShape().back(), blk = op.getBlockSize();
    int64_t end = (op.getExtent().value_or(n) / blk) * blk;
    Value y = fakeQuant(b, x, blk, end, op.getFormat() == QuantFormat::fp4_e2m1,
                        xType.getElementType(), /*bf16=*/false);
    rewriter.replaceOp(op, y);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// v4.kv.compress (V4-SPEC 5.3, 9.2): computed into the state and the cache
//===----------------------------------------------------------------------===//

/// The post-processing of one pooled entry [c] f32 of block `blk` (V4-SPEC
/// 5.3): bf16, RMSNorm (fp32 sum of squares, bf16 out), RoPE at blk * r on
/// the last ropeDim channels (bf16 out), then the main compressor's FP8
/// fake-quant of the first c - ropeDim channels (blocks of 64) or the
/// indexer's Hadamard (fp32 butterflies, scale c^-1/2, bf16) and FP4
/// fake-quant (blocks of 32). Every step a generic over the c channels into
/// a fresh tensor; the values stay f32 (each a bf16 value after a rounding
/// point).
template <typename CompressOp>
Value compressPost(ImplicitLocOpBuilder &b, CompressOp op, Value entry,
                   Value norm, Value blk, bool quantize) {
  MLIRContext *ctx = b.getContext();
  auto stateType = cast<CompressorStateType>(op.getState().getType());
  int64_t c = stateType.getDim(), r = stateType.getRatio();
  int64_t rd = op.getRope().getRopeDim();
  SmallVector<float> freqs = op.getRope().getFrequencies();
  auto type = cast<RankedTensorType>(entry.getType());
  AffineMap id = AffineMap::getMultiDimIdentityMap(1, ctx);
  AffineMap all = AffineMap::get(1, 0, {}, ctx);
  auto fresh = [&]() {
    return Value(
        tensor::EmptyOp::create(b, ArrayRef<int64_t>{c}, b.getF32Type()));
  };
  auto map = [&](ValueRange ins, ArrayRef<AffineMap> inMaps,
                 function_ref<Value(Scalar &, ValueRange)> fn) {
    SmallVector<AffineMap> maps(inMaps);
    maps.push_back(id);
    return generic(b, type, ins, fresh(), maps, parallel(1),
                   [&](Scalar &s, ValueRange args) {
                     linalg::YieldOp::create(s.b, fn(s, args));
                   })
        .getResult(0);
  };
  Scalar k{b};

  // bf16, then the sum of squares (ascending, from 0).
  Value e = map(entry, {id},
                [](Scalar &s, ValueRange a) { return s.roundBF16(a[0]); });
  Value zero = filled(b, RankedTensorType::get({}, b.getF32Type()),
                      b.getF32FloatAttr(0.0));
  Value ss =
      generic(b, zero.getType(), e, zero, {id, all},
              {utils::IteratorType::reduction},
              [&](Scalar &s, ValueRange a) {
                linalg::YieldOp::create(s.b, s.add(a[1], s.mul(a[0], a[0])));
              })
          .getResult(0);
  Value ssV = tensor::ExtractOp::create(b, ss, ValueRange{});
  float eps = static_cast<float>(op.getNormEps().convertToDouble());
  Value rstd = math::RsqrtOp::create(
      b, k.add(k.div(ssV, k.f32(static_cast<double>(c))), k.f32(eps)));
  e = map({e, norm}, {id, id}, [&](Scalar &s, ValueRange a) {
    return s.roundBF16(s.mul(s.toF32(a[1]), s.mul(a[0], rstd)));
  });

  // RoPE at blk * r (interleaved pairs, fp32, bf16 out).
  auto freqType = RankedTensorType::get({static_cast<int64_t>(freqs.size())},
                                        b.getF32Type());
  Value freqTable = arith::ConstantOp::create(
      b, DenseElementsAttr::get(freqType, ArrayRef<float>(freqs)));
  Value posF = arith::UIToFPOp::create(
      b, b.getF32Type(),
      arith::IndexCastOp::create(b, b.getI64Type(), k.muli(blk, k.idx(r))));
  Value prev = e;
  e = map({}, {}, [&](Scalar &s, ValueRange) {
    Value ch = s.index(0);
    Value rotated = s.cmpi(arith::CmpIPredicate::uge, ch, s.idx(c - rd));
    auto ifOp = scf::IfOp::create(
        s.b, rotated,
        [&](OpBuilder &nb, Location loc) {
          ImplicitLocOpBuilder ib(loc, nb);
          Scalar q{ib};
          Value rel = q.subi(ch, q.idx(c - rd));
          Value i = arith::DivUIOp::create(ib, rel, q.idx(2));
          Value th = q.mul(
              posF, tensor::ExtractOp::create(ib, freqTable, ValueRange{i}));
          Value cs = math::CosOp::create(ib, th);
          Value sn = math::SinOp::create(ib, th);
          Value i0 = q.addi(q.idx(c - rd), q.muli(i, q.idx(2)));
          Value x0 = tensor::ExtractOp::create(ib, prev, ValueRange{i0});
          Value x1 = tensor::ExtractOp::create(
              ib, prev, ValueRange{q.addi(i0, q.idx(1))});
          Value even =
              q.cmpi(arith::CmpIPredicate::eq,
                     arith::RemUIOp::create(ib, rel, q.idx(2)), q.idx(0));
          Value ra = q.roundBF16(q.sub(q.mul(x0, cs), q.mul(x1, sn)));
          Value rb = q.roundBF16(q.add(q.mul(x0, sn), q.mul(x1, cs)));
          scf::YieldOp::create(ib, ValueRange{q.select(even, ra, rb)});
        },
        [&](OpBuilder &nb, Location loc) {
          ImplicitLocOpBuilder ib(loc, nb);
          scf::YieldOp::create(
              ib,
              tensor::ExtractOp::create(ib, prev, ValueRange{ch}).getResult());
        });
    return ifOp.getResult(0);
  });

  // The FP8 / FP4 fake quantisation of the entry runs unless the module's
  // fake-quant mode is none (dialects/V4/V4Numerics.h).
  if (!op.getRotate())
    return quantize ? fakeQuant(b, e, 64, c - rd, /*fp4=*/false, b.getF32Type(),
                                /*bf16=*/true)
                    : e;
  // Hadamard (fp32 butterflies), scaled by c^-1/2 and rounded to bf16.
  e = hadamardStages(b, e);
  Value hs = k.f32(static_cast<float>(1.0 / std::sqrt(static_cast<double>(c))));
  e = map(e, {id}, [&](Scalar &s, ValueRange a) {
    return s.roundBF16(s.mul(a[0], hs));
  });
  return quantize ? fakeQuant(b, e, 32, c, /*fp4=*/true, b.getF32Type(),
                              /*bf16=*/true)
                  : e;
}

/// The pooled entry [c] f32 of the block whose rows are in the state (kv,
/// score) of sequence `bi`: per channel ch, over the candidates q (rows 0..r-1
/// at column ch; overlapping, also rows r..2r-1 at column c + ch) the fp32
/// maximum score (from -inf), the sum of exp(score - max) (from 0), then the
/// sum of kv * (exp(score - max) / sum) (from 0), each ascending in q.
Value poolBlock(ImplicitLocOpBuilder &b, Value bi, Value kv, Value score,
                int64_t r, int64_t c, bool overlap) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  auto type = RankedTensorType::get({c}, b.getF32Type());
  AffineMap id = AffineMap::getMultiDimIdentityMap(1, b.getContext());
  return generic(
             b, type, ValueRange{},
             Value(tensor::EmptyOp::create(b, ArrayRef<int64_t>{c},
                                           b.getF32Type())),
             {id}, parallel(1),
             [&](Scalar &s, ValueRange) {
               Value ch = s.index(0), zero = s.idx(0);
               Value n = s.idx(overlap ? 2 * r : r);
               // Candidate q: row q, column ch (+ c for rows r..2r-1).
               auto at = [&](Scalar &e, Value m, Value q) -> Value {
                 Value col = ch;
                 if (overlap)
                   col =
                       e.select(e.cmpi(arith::CmpIPredicate::uge, q, e.idx(r)),
                                e.addi(ch, e.idx(c)), ch);
                 return tensor::ExtractOp::create(e.b, m,
                                                  ValueRange{bi, q, col});
               };
               auto expOf = [&](Scalar &e, Value q, Value mx) -> Value {
                 return math::ExpOp::create(e.b, e.sub(at(e, score, q), mx));
               };
               Value mx = forLoop(
                   s.b, zero, n, {s.f32(-inf)},
                   [&](Scalar &e, Value q, ValueRange a) {
                     return SmallVector<Value>{
                         arith::MaximumFOp::create(e.b, a[0], at(e, score, q))};
                   })[0];
               Value sum = forLoop(s.b, zero, n, {s.f32(0.0)},
                                   [&](Scalar &e, Value q, ValueRange a) {
                                     return SmallVector<Value>{
                                         e.add(a[0], expOf(e, q, mx))};
                                   })[0];
               Value acc = forLoop(s.b, zero, n, {s.f32(0.0)},
                                   [&](Scalar &e, Value q, ValueRange a) {
                                     Value w = e.div(expOf(e, q, mx), sum);
                                     return SmallVector<Value>{
                                         e.add(a[0], e.mul(at(e, kv, q), w))};
                                   })[0];
               linalg::YieldOp::create(s.b, acc);
             })
      .getResult(0);
}

/// k = wkv · fp32(x) and g = wgate · fp32(x) of kv.compress, [B, T, width]
/// f32, each element the sequential fp32 sum over ascending e of w[o, e] *
/// x[e] (the reference's order). Channels go 8 to a vector: per 8
/// elements of d, the 8 x 8 weight block is read row by row (contiguous)
/// and transposed in registers, so each lane adds its channel's products in
/// order; the d % 8 last elements and the width % 8 last channels one at a
/// time. (A linalg.generic over (b, t, e, o) vectorised across o read the
/// weights with a stride of d: ~20x slower than the GEMMs per weight.)
std::pair<Value, Value> projectKG(ImplicitLocOpBuilder &b, Value x, Value wkv,
                                  Value wgate, int64_t width) {
  Scalar k{b};
  Type f32 = b.getF32Type();
  constexpr int64_t L = 8;
  auto lanes = VectorType::get({L}, f32);
  SmallVector<OpFoldResult> shape = tensor::getMixedSizes(b, b.getLoc(), x);
  shape.back() = b.getIndexAttr(width);
  Value kInit = tensor::EmptyOp::create(b, shape, f32);
  Value gInit = tensor::EmptyOp::create(b, shape, f32);
  Value zero = k.idx(0), D = k.dim(x, 2), LV = k.idx(L);
  Value dFull = k.muli(arith::DivUIOp::create(b, D, LV), LV);
  int64_t wFull = width / L * L;
  Value weights[2] = {wkv, wgate};
  // Row i of the 8 x 8 block of `w` at (o0, e0), widened to f32.
  auto readRow = [&](Scalar &s, Value w, Value o, Value e) -> Value {
    return readF32Vector(s.b, w, ValueRange{o, e}, L);
  };
  SmallVector<Value> out = forEachToken(
      b, x, {kInit, gInit}, [&](Scalar &s, Value bi, Value t, ValueRange acc1) {
        auto xAt = [&](Scalar &s, Value e) {
          return s.toF32(
              tensor::ExtractOp::create(s.b, x, ValueRange{bi, t, e}));
        };
        // Channels [0, wFull), 8 at a time.
        SmallVector<Value> acc2 = forLoop(
            s.b, zero, s.idx(wFull / L), acc1,
            [&](Scalar &s, Value ob, ValueRange acc) {
              Value o0 = s.muli(ob, s.idx(L));
              Value vzero = arith::ConstantOp::create(
                  s.b, DenseElementsAttr::get(lanes, 0.0f));
              SmallVector<Value> sums = forLoop(
                  s.b, zero, arith::DivUIOp::create(s.b, D, LV), {vzero, vzero},
                  [&](Scalar &s, Value q, ValueRange part) {
                    Value e0 = s.muli(q, s.idx(L));
                    SmallVector<Value> xs;
                    for (int64_t j = 0; j < L; ++j)
                      xs.push_back(vector::BroadcastOp::create(
                          s.b, lanes, xAt(s, s.addi(e0, s.idx(j)))));
                    SmallVector<Value> next;
                    for (int m = 0; m < 2; ++m) {
                      SmallVector<Value> rows;
                      for (int64_t i = 0; i < L; ++i)
                        rows.push_back(
                            readRow(s, weights[m], s.addi(o0, s.idx(i)), e0));
                      next.push_back(
                          addTransposedProducts(s.b, part[m], rows, xs));
                    }
                    return next;
                  });
              sums = forLoop(
                  s.b, dFull, D, sums,
                  [&](Scalar &s, Value e, ValueRange part) {
                    Value xv =
                        vector::BroadcastOp::create(s.b, lanes, xAt(s, e));
                    SmallVector<Value> next;
                    for (int m = 0; m < 2; ++m) {
                      SmallVector<Value> ws;
                      for (int64_t i = 0; i < L; ++i)
                        ws.push_back(s.toF32(tensor::ExtractOp::create(
                            s.b, weights[m],
                            ValueRange{s.addi(o0, s.idx(i)), e})));
                      Value w = vector::FromElementsOp::create(s.b, lanes, ws);
                      next.push_back(s.add(part[m], s.mul(w, xv)));
                    }
                    return next;
                  });
              SmallVector<Value> written;
              for (int m = 0; m < 2; ++m)
                written.push_back(
                    vector::TransferWriteOp::create(s.b, sums[m], acc[m],
                                                    ValueRange{bi, t, o0},
                                                    ArrayRef<bool>{true})
                        .getResult());
              return written;
            });
        // Channels [wFull, width), one at a time.
        return forLoop(
            s.b, s.idx(wFull), s.idx(width), acc2,
            [&](Scalar &s, Value o, ValueRange acc) {
              SmallVector<Value> sums =
                  forLoop(s.b, zero, D, {s.f32(0.0), s.f32(0.0)},
                          [&](Scalar &s, Value e, ValueRange part) {
                            Value xv = xAt(s, e);
                            SmallVector<Value> next;
                            for (int m = 0; m < 2; ++m)
                              next.push_back(s.add(
                                  part[m],
                                  s.mul(s.toF32(tensor::ExtractOp::create(
                                            s.b, weights[m], ValueRange{o, e})),
                                        xv)));
                            return next;
                          });
              SmallVector<Value> written;
              for (int m = 0; m < 2; ++m)
                written.push_back(tensor::InsertOp::create(
                    s.b, sums[m], acc[m], ValueRange{bi, t, o}));
              return written;
            });
      });
  return {out[0], out[1]};
}

/// Lowers v4.kv.compress, or v4.kv.compress_projected with the projections
/// given (the rest is the same code). The compressor runs token by token,
/// as V4-SPEC 9.2 states it: scf.for loops over the sequences and their
/// tokens carry the state (kv, score) and the cache, which start as the
/// kernel's state and cache arguments, so every update is in place in their
/// buffers (tensor.insert per element). The projections k = wkv x and
/// g = wgate x of all tokens come first (projectKG), or are the operands of
/// kv.compress_projected. Per token: row off + (p mod r) of the state gets
/// (k, g + ape[p mod r]); when p completes block blk < capacity, the block
/// is pooled per channel (softmax over its candidate rows: max, sum of
/// exps, then the weighted sum, each ascending), post-processed
/// (compressPost) and written to cache row blk; an overlapping compressor
/// then shifts state rows [r, 2r) to [0, r).
template <typename CompressOp>
struct CompressLowering : public OpConversionPattern<CompressOp> {
  using OpConversionPattern<CompressOp>::OpConversionPattern;
  using OneToNOpAdaptor =
      typename OpConversionPattern<CompressOp>::OneToNOpAdaptor;
  LogicalResult
  matchAndRewrite(CompressOp op, OneToNOpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    constexpr bool projected =
        std::is_same_v<CompressOp, KVCompressProjectedOp>;
    auto single = [](ValueRange v) { return v.size() == 1 ? v[0] : Value(); };
    Value ape = single(adaptor.getApe()), norm = single(adaptor.getNorm()),
          cache = single(adaptor.getCache()),
          startPos = single(adaptor.getStartPos());
    // The tokens' operands: x and the weights, or the projections.
    SmallVector<Value, 3> tokens;
    if constexpr (projected)
      tokens = {single(adaptor.getKv()), single(adaptor.getScore())};
    else
      tokens = {single(adaptor.getX()), single(adaptor.getWkv()),
                single(adaptor.getWgate())};
    ValueRange state = adaptor.getState();
    FailureOr<ModuleNumerics> modes = getModuleNumerics(op);
    if (failed(modes))
      return failure();
    bool quantizeKV = ::v4::fakeQuantizesKV(modes->fakeQuant);
    if (llvm::is_contained(tokens, Value()) || !ape || !norm || !cache ||
        !startPos || state.size() != 2)
      return rewriter.notifyMatchFailure(op, "unexpected storage operands");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Scalar k{b};
    using P = arith::CmpIPredicate;
    auto stateType = cast<CompressorStateType>(op.getState().getType());
    int64_t c = stateType.getDim(), r = stateType.getRatio();
    bool overlap = stateType.isOverlapping();
    int64_t width = stateType.getWidth(), off = overlap ? r : 0;
    Type cacheElt = cast<RankedTensorType>(cache.getType()).getElementType();

    // k, g [B, T, width]: fp32 sums over d, ascending, wkv * x (in either
    // sum order), or given.
    Value kAll = tokens[0], gAll = tokens.size() == 2 ? tokens[1] : Value();
    if (!projected)
      std::tie(kAll, gAll) =
          projectKG(b, tokens[0], tokens[1], tokens[2], width);

    Value zero = k.idx(0), rV = k.idx(r), widthV = k.idx(width);
    Value T = k.dim(kAll, 1), capacity = k.dim(cache, 1);
    SmallVector<Value> out = forLoop(
        b, zero, k.dim(kAll, 0), {state[0], state[1], cache},
        [&](Scalar &e, Value bi, ValueRange s0) {
          Value sp = e.toIndex(
              tensor::ExtractOp::create(e.b, startPos, ValueRange{bi}));
          return forLoop(
              e.b, zero, T, s0, [&](Scalar &e, Value t, ValueRange s1) {
                Value p = e.addi(sp, t);
                Value pm = arith::RemUIOp::create(e.b, p, rV);
                Value row = e.addi(e.idx(off), pm);
                // 1-2. The token's (k, g + ape[p mod r]) into its state row.
                SmallVector<Value> st = forLoop(
                    e.b, zero, widthV, {s1[0], s1[1]},
                    [&](Scalar &e, Value o, ValueRange s2) {
                      Value kv = tensor::ExtractOp::create(
                          e.b, kAll, ValueRange{bi, t, o});
                      Value g = tensor::ExtractOp::create(e.b, gAll,
                                                          ValueRange{bi, t, o});
                      Value a = e.toF32(tensor::ExtractOp::create(
                          e.b, ape, ValueRange{pm, o}));
                      return SmallVector<Value>{
                          tensor::InsertOp::create(e.b, kv, s2[0],
                                                   ValueRange{bi, row, o}),
                          tensor::InsertOp::create(e.b, e.add(g, a), s2[1],
                                                   ValueRange{bi, row, o})};
                    });
                Value kvS = st[0], scS = st[1];
                // 3. Block completion.
                Value done = e.cmpi(P::eq, pm, e.idx(r - 1));
                Value blk = arith::DivUIOp::create(e.b, p, rV);
                Value write = arith::AndIOp::create(
                    e.b, done, e.cmpi(P::slt, blk, capacity));
                auto ifOp = scf::IfOp::create(
                    e.b, write,
                    [&](OpBuilder &nb, Location loc) {
                      ImplicitLocOpBuilder ib(loc, nb);
                      Value entry = poolBlock(ib, bi, kvS, scS, r, c, overlap);
                      Value post =
                          compressPost(ib, op, entry, norm, blk, quantizeKV);
                      Value next = forLoop(
                          ib, zero, arith::ConstantIndexOp::create(ib, c),
                          {s1[2]}, [&](Scalar &q, Value ch, ValueRange acc) {
                            Value v = q.fromF32(tensor::ExtractOp::create(
                                                    q.b, post, ValueRange{ch}),
                                                cacheElt);
                            return SmallVector<Value>{tensor::InsertOp::create(
                                q.b, v, acc[0], ValueRange{bi, blk, ch})};
                          })[0];
                      scf::YieldOp::create(ib, next);
                    },
                    [&](OpBuilder &nb, Location loc) {
                      ImplicitLocOpBuilder ib(loc, nb);
                      scf::YieldOp::create(ib, s1[2]);
                    });
                Value cacheNext = ifOp.getResult(0);
                if (!overlap)
                  return SmallVector<Value>{kvS, scS, cacheNext};
                // Overlap: the completed block becomes the previous block.
                auto shift = scf::IfOp::create(
                    e.b, done,
                    [&](OpBuilder &nb, Location loc) {
                      ImplicitLocOpBuilder ib(loc, nb);
                      SmallVector<Value> moved = forLoop(
                          ib, zero, rV, {kvS, scS},
                          [&](Scalar &e, Value j, ValueRange s3) {
                            return forLoop(
                                e.b, zero, widthV, s3,
                                [&](Scalar &e, Value o, ValueRange s4) {
                                  Value src = e.addi(j, rV);
                                  SmallVector<Value> r4;
                                  for (Value m : s4) {
                                    Value v = tensor::ExtractOp::create(
                                        e.b, m, ValueRange{bi, src, o});
                                    r4.push_back(tensor::InsertOp::create(
                                        e.b, v, m, ValueRange{bi, j, o}));
                                  }
                                  return r4;
                                });
                          });
                      scf::YieldOp::create(ib, moved);
                    },
                    [&](OpBuilder &nb, Location loc) {
                      ImplicitLocOpBuilder ib(loc, nb);
                      scf::YieldOp::create(ib, ValueRange{kvS, scS});
                    });
                return SmallVector<Value>{shift.getResult(0),
                                          shift.getResult(1), cacheNext};
              });
        });
    rewriter.replaceOpWithMultiple(op, {{out[0], out[1]}, {out[2]}});
    return success();
  }
};

} // namespace

void mlir::v4::populateV4ToLinalgCorePatterns(const TypeConverter &converter,
                                              RewritePatternSet &patterns) {
  patterns.add<EmbeddingLowering, ConvertLowering, LastTokenLowering,
               RMSNormLowering, RopeLowering, HadamardLowering,
               ZeroStateLowering<RingEmptyOp>, ZeroStateLowering<CacheEmptyOp>,
               KVStateEmptyLowering, EngramStateEmptyLowering,
               RingWriteLowering, WindowIndicesLowering, TopKLowering,
               FakeQuantLowering, CompressLowering<KVCompressOp>,
               CompressLowering<KVCompressProjectedOp>>(converter,
                                                        patterns.getContext());
}

bool mlir::v4::isLoweredByV4ToLinalgCore(Operation *op) {
  return isa<EmbeddingOp, ConvertOp, LastTokenOp, RMSNormOp, RopeOp, HadamardOp,
             RingEmptyOp, CacheEmptyOp, KVStateEmptyOp, EngramStateEmptyOp,
             RingWriteOp, AttnWindowIndicesOp, CSATopKOp, FakeQuantOp,
             KVCompressOp, KVCompressProjectedOp>(op);
}
