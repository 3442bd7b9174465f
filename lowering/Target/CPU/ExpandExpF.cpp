//===- ExpandExpF.cpp - math.exp on f32 as glibc's expf, inline ----------===//
//
// The CPU kernels' f32 exponentials (SwiGLU, gates, softmax, Sinkhorn) were
// calls of libm's expf, one per element: LLVM scalarises a vector exp into
// that many calls. The reference (reference/Ops.cpp) calls the same expf,
// so the kernels are bit-exact with it, but the calls cost 3-4% of a
// mid-size prefill.
//
// This pass writes each f32 math.exp (scalar or vector) as the arithmetic
// that glibc's expf performs on a host with FMA (glibc 2.28 and later, the
// __expf_fma variant the dynamic linker picks on such a host): in double,
// x * 32 / ln 2 split into k and r by adding 1.5 * 2^52, 2^(k / 32) from a
// table of 2^(j / 32) with k / 32's integer part added to its exponent
// field, a cubic in r by three fused multiply-adds, one product and one
// rounding to f32. Every step is a correctly rounded IEEE operation, so the
// result is glibc's, bit for bit; the inputs glibc routes to its special
// cases (|x| >= 2^43 in its top bits: NaN, infinities, overflow, underflow)
// are selected the same way. The table is computed here (2^(j / 32) in long
// double, rounded to double) and ExpandExpF's unit test compares the whole
// expansion with the host's expf.
//
// Only for levels with FMA (x86-64-v3 and up): there the host that runs the
// kernels and the reference is one whose glibc takes the FMA variant.
//
//===----------------------------------------------------------------------===//
#include "lowering/Passes.h"
#include "lowering/Target/TargetBackend.h"
#include "runtime/base/HostISA.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/ADT/bit.h"

#include <cmath>

namespace mlir::v4 {
#define GEN_PASS_DEF_V4CPUEXPANDEXPFPASS
#include "lowering/Passes.h.inc"
} // namespace mlir::v4

using namespace mlir;

namespace {

constexpr int64_t kTableBits = 5, kTableSize = int64_t(1) << kTableBits;
constexpr llvm::StringLiteral kTableName = "__v4_expf_table";

/// T[j] = bits(2^(j / 32)) - (j << 47): adding k << 47 (k = 32 i + j)
/// then puts 2^i into the exponent field.
SmallVector<int64_t> expTable() {
  SmallVector<int64_t> t;
  for (int64_t j = 0; j < kTableSize; ++j) {
    double v = static_cast<double>(
        std::exp2l(static_cast<long double>(j) / kTableSize));
    t.push_back(llvm::bit_cast<int64_t>(v) - (j << (52 - kTableBits)));
  }
  return t;
}

/// The module's table, created on first use.
memref::GlobalOp tableOf(ModuleOp module) {
  if (auto g = module.lookupSymbol<memref::GlobalOp>(kTableName))
    return g;
  OpBuilder b = OpBuilder::atBlockBegin(module.getBody());
  auto i64 = b.getI64Type();
  auto type = MemRefType::get({kTableSize}, i64);
  auto values = DenseElementsAttr::get(RankedTensorType::get({kTableSize}, i64),
                                       ArrayRef<int64_t>(expTable()));
  return memref::GlobalOp::create(b, module.getLoc(), kTableName,
                                  b.getStringAttr("private"), type, values,
                                  /*constant=*/true, b.getI64IntegerAttr(64));
}

struct ExpandExpF : OpRewritePattern<math::ExpOp> {
  ExpandExpF(MLIRContext *ctx, memref::GlobalOp table)
      : OpRewritePattern(ctx), tableType(table.getType()),
        tableName(table.getSymName().str()) {}

  LogicalResult matchAndRewrite(math::ExpOp op,
                                PatternRewriter &rw) const override {
    Type type = op.getType();
    auto vt = dyn_cast<VectorType>(type);
    if (!getElementTypeOrSelf(type).isF32() ||
        (vt && (vt.getRank() != 1 || vt.isScalable())))
      return failure();
    ImplicitLocOpBuilder b(op.getLoc(), rw);
    auto like = [&](Type elt) -> Type { return vt ? vt.clone(elt) : elt; };
    Type f64 = like(b.getF64Type()), i64 = like(b.getI64Type()),
         i32 = like(b.getI32Type());
    auto cst = [&](Type t, TypedAttr scalar) -> Value {
      Attribute a = scalar;
      if (vt)
        a = DenseElementsAttr::get(cast<ShapedType>(t), scalar);
      return arith::ConstantOp::create(b, t, cast<TypedAttr>(a));
    };
    auto d = [&](double v) { return cst(f64, b.getF64FloatAttr(v)); };
    auto f = [&](float v) { return cst(type, b.getF32FloatAttr(v)); };
    auto i = [&](Type t, int64_t v) {
      return cst(t, b.getIntegerAttr(getElementTypeOrSelf(t), v));
    };
    Value x = op.getOperand();

    // z = x * 32 / ln 2 = k + r, k rounded to nearest by the 1.5 * 2^52
    // shift (its low bits are k), r = z - k by one fused operation.
    const double invLn2N = 0x1.71547652b82fep+0 * kTableSize, shift = 0x1.8p+52;
    Value xd = arith::ExtFOp::create(b, f64, x);
    Value kdShifted = math::FmaOp::create(b, d(invLn2N), xd, d(shift));
    Value ki = arith::BitcastOp::create(b, i64, kdShifted);
    Value kd = arith::SubFOp::create(b, kdShifted, d(shift));
    Value r =
        math::FmaOp::create(b, d(invLn2N), xd, arith::NegFOp::create(b, kd));
    // s = 2^(k / 32): T[k mod 32] + (k << 47).
    Value j = arith::AndIOp::create(b, ki, i(i64, kTableSize - 1));
    Value tab = memref::GetGlobalOp::create(b, tableType, tableName);
    Value tj;
    if (vt) {
      Value jIdx = arith::IndexCastOp::create(b, vt.clone(b.getIndexType()), j);
      Value mask = cst(vt.clone(b.getI1Type()), b.getBoolAttr(true));
      tj = vector::GatherOp::create(
          b, vt.clone(b.getI64Type()), tab,
          ValueRange{arith::ConstantIndexOp::create(b, 0)}, jIdx, mask,
          i(i64, 0));
    } else {
      tj = memref::LoadOp::create(
          b, tab,
          ValueRange{arith::IndexCastOp::create(b, b.getIndexType(), j)});
    }
    Value s = arith::BitcastOp::create(
        b, f64,
        arith::AddIOp::create(
            b, tj, arith::ShLIOp::create(b, ki, i(i64, 52 - kTableBits))));
    // 2^(r / 32) - 1 ~ C0 r^3 + C1 r^2 + C2 r, as (C0 r + C1) r^2 + (C2 r +
    // 1) with glibc's fused operations.
    const double c0 = 0x1.c6af84b912394p-5 /
                      (kTableSize * kTableSize * kTableSize),
                 c1 = 0x1.ebfce50fac4f3p-3 / (kTableSize * kTableSize),
                 c2 = 0x1.62e42ff0c52d6p-1 / kTableSize;
    Value z = math::FmaOp::create(b, r, d(c0), d(c1));
    Value r2 = arith::MulFOp::create(b, r, r);
    Value y = math::FmaOp::create(b, r, d(c2), d(1.0));
    y = math::FmaOp::create(b, z, r2, y);
    y = arith::MulFOp::create(b, y, s);
    Value result = arith::TruncFOp::create(b, type, y);

    // glibc's special cases: the top 12 bits of |x| above those of 88.
    Value bits = arith::BitcastOp::create(b, i32, x);
    Value abstop = arith::AndIOp::create(
        b, arith::ShRUIOp::create(b, bits, i(i32, 20)), i(i32, 0x7ff));
    auto ugt = [&](Value v, int64_t c) {
      return arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, v, i(i32, c));
    };
    auto fcmp = [&](arith::CmpFPredicate p, float c) {
      return arith::CmpFOp::create(b, p, x, f(c));
    };
    Value special = arith::SelectOp::create(
        b, fcmp(arith::CmpFPredicate::OLT, -0x1.9d1d9ep6f),
        // log(2^-149) > x >= log(2^-150): 2^-149 (__math_may_uflowf).
        f(0x1p-149f), result);
    special = arith::SelectOp::create(
        b, fcmp(arith::CmpFPredicate::OLT, -0x1.9fe368p6f), f(0.0f), special);
    special = arith::SelectOp::create(
        b, fcmp(arith::CmpFPredicate::OGT, 0x1.62e42ep6f),
        f(std::numeric_limits<float>::infinity()), special);
    // NaN and +-inf: x + x; then -inf: +0.
    special = arith::SelectOp::create(b, ugt(abstop, 0x7f7),
                                      arith::AddFOp::create(b, x, x), special);
    special = arith::SelectOp::create(
        b,
        arith::CmpIOp::create(
            b, arith::CmpIPredicate::eq, bits,
            i(i32, static_cast<int32_t>(0xff800000u)) /* -inf */),
        f(0.0f), special);
    rw.replaceOp(
        op, arith::SelectOp::create(b, ugt(abstop, 0x42a), special, result));
    return success();
  }

  MemRefType tableType;
  std::string tableName;
};

struct V4CPUExpandExpFPass
    : public mlir::v4::impl::V4CPUExpandExpFPassBase<V4CPUExpandExpFPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    // Levels without FMA keep the libm calls (their host's expf may not be
    // the FMA variant).
    std::string level(::v4::kDefaultHostISA);
    if (auto a = module->getAttrOfType<StringAttr>(mlir::v4::kHostISAAttrName))
      level = a.getValue().str();
    if (!::v4::isKnownHostISA(level) ||
        !::v4::hostISAIncludes(level, "x86-64-v3"))
      return;
    bool any = false;
    module.walk([&](math::ExpOp op) {
      any |= getElementTypeOrSelf(op.getType()).isF32();
    });
    if (!any)
      return;
    RewritePatternSet patterns(&getContext());
    patterns.add<ExpandExpF>(&getContext(), tableOf(module));
    if (failed(applyPatternsGreedily(module, std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
