//===- CPUKernels.cpp - CPU kernel builders for v4 ops --------------------===//
#include "lowering/KernelBuilders/CPUKernels.h"

#include "dialects/V4/V4Ops.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace mlir::v4 {

void registerCPUKernelDialects(DialectRegistry &registry) {
  registry.insert<func::FuncDialect, scf::SCFDialect, arith::ArithDialect,
                  math::MathDialect, memref::MemRefDialect>();
}

namespace {

/// The memref a kernel argument of tensor type `t` has.
MemRefType memrefFor(RankedTensorType t) {
  return MemRefType::get(t.getShape(), t.getElementType());
}

/// Helpers to emit loops and numerics in kernel bodies.
struct KernelBody {
  ImplicitLocOpBuilder &b;

  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, v); }
  Value f32(double v) {
    return arith::ConstantOp::create(b, b.getF32FloatAttr(v));
  }
  /// Widens a loaded element to f32.
  Value toF32(Value v) {
    if (v.getType().isF32())
      return v;
    return arith::ExtFOp::create(b, b.getF32Type(), v);
  }
  /// Narrows an f32 value to `t` (round to nearest even).
  Value fromF32(Value v, Type t) {
    if (t.isF32())
      return v;
    return arith::TruncFOp::create(b, t, v);
  }
  /// Rounds an f32 value to bf16 and back: a bf16 rounding point.
  Value roundBF16(Value v) {
    return toF32(fromF32(v, b.getBF16Type()));
  }
  /// Collapses a memref [d0, ..., dn-1] to [prod(d0..dk-1), prod(dk..)],
  /// with k = n - innerRank.
  Value collapse2D(Value m, int64_t innerRank) {
    auto type = cast<MemRefType>(m.getType());
    int64_t rank = type.getRank();
    SmallVector<ReassociationIndices> groups(2);
    for (int64_t i = 0; i < rank; ++i)
      groups[i < rank - innerRank ? 0 : 1].push_back(i);
    if (groups[0].empty()) {
      // No leading dims: view as [1, ...].
      SmallVector<ReassociationIndices> expand = {{0, 1}};
      for (int64_t i = 1; i < rank; ++i)
        expand[0].push_back(i + 1);
      Value flat = m;
      if (rank != 1)
        flat = memref::CollapseShapeOp::create(
            b, m, ArrayRef<ReassociationIndices>{groups[1]});
      return memref::ExpandShapeOp::create(
          b, MemRefType::get({1, cast<MemRefType>(flat.getType()).getDimSize(0)},
                             type.getElementType()),
          flat, ArrayRef<ReassociationIndices>{{0, 1}},
          ArrayRef<OpFoldResult>{b.getIndexAttr(1),
                                 memref::getMixedSize(b, b.getLoc(), flat, 0)});
    }
    return memref::CollapseShapeOp::create(b, m, groups);
  }
  Value dim(Value m, int64_t i) { return memref::DimOp::create(b, m, i); }
};

//===----------------------------------------------------------------------===//
// v4.rms_norm (V4-SPEC 2.1, 5.1)
//===----------------------------------------------------------------------===//

LogicalResult buildRmsNorm(RMSNormOp op, func::FuncOp fn) {
  auto b = ImplicitLocOpBuilder::atBlockEnd(op.getLoc(), fn.addEntryBlock());
  KernelBody k{b};
  bool hasWeight = static_cast<bool>(op.getWeight());
  Value x = fn.getArgument(0);
  Value w = hasWeight ? fn.getArgument(1) : Value();
  Value y = fn.getArgument(hasWeight ? 2 : 1);
  Type elt = cast<MemRefType>(x.getType()).getElementType();
  int64_t r = op.getReduceRank();
  bool inputPrecision = op.getPrecision() == Precision::input;

  Value x2 = k.collapse2D(x, r), y2 = k.collapse2D(y, r);
  Value w1;
  if (w) {
    auto wt = cast<MemRefType>(w.getType());
    w1 = wt.getRank() == 1 ? w
                           : memref::CollapseShapeOp::create(
                                 b, w,
                                 ArrayRef<ReassociationIndices>{
                                     llvm::to_vector(llvm::seq<int64_t>(
                                         0, wt.getRank()))});
  }
  Value rows = k.dim(x2, 0), cols = k.dim(x2, 1);
  Value zero = k.idx(0), one = k.idx(1);
  Value colsF = arith::UIToFPOp::create(
      b, b.getF32Type(),
      arith::IndexCastUIOp::create(b, b.getI64Type(), cols));
  Value eps = k.f32(op.getEps().convertToDouble());

  scf::ForOp::create(
      b, zero, rows, one, ValueRange(),
      [&](OpBuilder &nb, Location loc, Value i, ValueRange) {
        ImplicitLocOpBuilder ib(loc, nb);
        KernelBody kb{ib};
        // Sum of squares, accumulated in fp32. In "input" precision each
        // square is a bf16 value (the reference squares the bf16 tensor).
        auto sum = scf::ForOp::create(
            ib, zero, cols, one, ValueRange{kb.f32(0.0)},
            [&](OpBuilder &sb, Location l2, Value j, ValueRange acc) {
              ImplicitLocOpBuilder jb(l2, sb);
              KernelBody kj{jb};
              Value v = kj.toF32(memref::LoadOp::create(jb, x2, ValueRange{i, j}));
              Value sq = arith::MulFOp::create(jb, v, v);
              if (inputPrecision && !elt.isF32())
                sq = kj.roundBF16(sq);
              scf::YieldOp::create(jb, ValueRange{
                  arith::AddFOp::create(jb, acc[0], sq).getResult()});
            });
        Value mean = arith::DivFOp::create(ib, sum.getResult(0), colsF);
        Value rstd;
        if (inputPrecision && !elt.isF32()) {
          // Per-head q norm (V4-SPEC 5.1): mean, + eps, rsqrt, each bf16.
          mean = kb.roundBF16(mean);
          Value t = kb.roundBF16(arith::AddFOp::create(ib, mean, eps));
          rstd = kb.roundBF16(math::RsqrtOp::create(ib, t));
        } else {
          rstd = math::RsqrtOp::create(ib, arith::AddFOp::create(ib, mean, eps));
        }
        scf::ForOp::create(
            ib, zero, cols, one, ValueRange(),
            [&](OpBuilder &sb, Location l2, Value j, ValueRange) {
              ImplicitLocOpBuilder jb(l2, sb);
              KernelBody kj{jb};
              Value v = kj.toF32(memref::LoadOp::create(jb, x2, ValueRange{i, j}));
              Value out = arith::MulFOp::create(jb, v, rstd);
              if (w1) {
                // The weight (bf16 in the checkpoint, held in fp32) multiplies
                // the normalised value.
                Value wv = kj.toF32(memref::LoadOp::create(jb, w1, ValueRange{j}));
                out = arith::MulFOp::create(jb, wv, out);
              }
              memref::StoreOp::create(jb, kj.fromF32(out, elt), y2,
                                      ValueRange{i, j});
              scf::YieldOp::create(jb);
            });
        scf::YieldOp::create(ib);
      });
  func::ReturnOp::create(b);
  return success();
}

//===----------------------------------------------------------------------===//
// v4.mhc.sinkhorn (V4-SPEC 4.2 step 4)
//===----------------------------------------------------------------------===//

LogicalResult buildSinkhorn(MhcSinkhornOp op, func::FuncOp fn) {
  auto b = ImplicitLocOpBuilder::atBlockEnd(op.getLoc(), fn.addEntryBlock());
  KernelBody k{b};
  Value in = fn.getArgument(0), out = fn.getArgument(1);
  auto type = cast<MemRefType>(in.getType());
  int64_t n = type.getDimSize(type.getRank() - 1);
  // [..., n, n] -> [M, n*n]: one matrix per row, kept in registers.
  Value in2 = k.collapse2D(in, 2), out2 = k.collapse2D(out, 2);
  Value zero = k.idx(0), one = k.idx(1);
  Value eps = k.f32(op.getEps().convertToDouble());
  int64_t iters = op.getIters();

  scf::ForOp::create(
      b, zero, k.dim(in2, 0), one, ValueRange(),
      [&](OpBuilder &nb, Location loc, Value m, ValueRange) {
        ImplicitLocOpBuilder ib(loc, nb);
        KernelBody kb{ib};
        // n is small (4 lanes): unroll into SSA values.
        SmallVector<Value> c(n * n);
        for (int64_t e = 0; e < n * n; ++e)
          c[e] = memref::LoadOp::create(ib, in2, ValueRange{m, kb.idx(e)});
        // softmax over each row (k), then + eps.
        for (int64_t j = 0; j < n; ++j) {
          Value mx = c[j * n];
          for (int64_t q = 1; q < n; ++q)
            mx = arith::MaximumFOp::create(ib, mx, c[j * n + q]);
          SmallVector<Value> ex(n);
          Value s = kb.f32(0.0);
          for (int64_t q = 0; q < n; ++q) {
            ex[q] = math::ExpOp::create(
                ib, arith::SubFOp::create(ib, c[j * n + q], mx));
            s = arith::AddFOp::create(ib, s, ex[q]);
          }
          for (int64_t q = 0; q < n; ++q)
            c[j * n + q] = arith::AddFOp::create(
                ib, arith::DivFOp::create(ib, ex[q], s), eps);
        }
        auto normCols = [&] {
          for (int64_t q = 0; q < n; ++q) {
            Value s = kb.f32(0.0);
            for (int64_t j = 0; j < n; ++j)
              s = arith::AddFOp::create(ib, s, c[j * n + q]);
            Value d = arith::AddFOp::create(ib, s, eps);
            for (int64_t j = 0; j < n; ++j)
              c[j * n + q] = arith::DivFOp::create(ib, c[j * n + q], d);
          }
        };
        auto normRows = [&] {
          for (int64_t j = 0; j < n; ++j) {
            Value s = kb.f32(0.0);
            for (int64_t q = 0; q < n; ++q)
              s = arith::AddFOp::create(ib, s, c[j * n + q]);
            Value d = arith::AddFOp::create(ib, s, eps);
            for (int64_t q = 0; q < n; ++q)
              c[j * n + q] = arith::DivFOp::create(ib, c[j * n + q], d);
          }
        };
        normCols();
        for (int64_t it = 1; it < iters; ++it) {
          normRows();
          normCols();
        }
        for (int64_t e = 0; e < n * n; ++e)
          memref::StoreOp::create(ib, c[e], out2, ValueRange{m, kb.idx(e)});
        scf::YieldOp::create(ib);
      });
  func::ReturnOp::create(b);
  return success();
}

} // namespace

bool hasCPUKernelBuilder(Operation *op) {
  return isa<RMSNormOp, MhcSinkhornOp>(op);
}

FailureOr<func::FuncOp> buildCPUKernel(Operation *op, ModuleOp module,
                                       StringRef name) {
  SmallVector<Type> argTypes;
  for (Type t : llvm::concat<Type>(op->getOperandTypes(), op->getResultTypes())) {
    auto tensor = dyn_cast<RankedTensorType>(t);
    if (!tensor)
      return op->emitError() << "CPU kernels take tensors; got " << t;
    argTypes.push_back(memrefFor(tensor));
  }
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  auto fn = func::FuncOp::create(b, op->getLoc(), name,
                                 b.getFunctionType(argTypes, {}));
  LogicalResult built =
      llvm::TypeSwitch<Operation *, LogicalResult>(op)
          .Case<RMSNormOp>([&](auto o) { return buildRmsNorm(o, fn); })
          .Case<MhcSinkhornOp>([&](auto o) { return buildSinkhorn(o, fn); })
          .Default([&](Operation *o) {
            return o->emitError()
                   << "no CPU kernel builder for '" << o->getName() << "' yet";
          });
  if (failed(built)) {
    fn.erase();
    return failure();
  }
  return fn;
}

} // namespace mlir::v4
