//===- V4EngramOps.cpp - verifiers of the Engram op family ----------------===//
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4Verification.h"
#include "runtime/base/Primes.h"

#include "llvm/ADT/DenseSet.h"
#include "llvm/Support/MathExtras.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::v4;

#define GET_OP_CLASSES
#include "dialects/V4/V4EngramOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Family-local helpers
//===----------------------------------------------------------------------===//

static SmallVector<Type> intTypes(MLIRContext *ctx) {
  Builder b(ctx);
  return {b.getI32Type(), b.getI64Type()};
}

static SmallVector<Type> activationTypes(MLIRContext *ctx) {
  Builder b(ctx);
  return {b.getBF16Type(), b.getF16Type(), b.getF32Type()};
}

static SmallVector<Type> weightTypes(MLIRContext *ctx) {
  Builder b(ctx);
  return {b.getBF16Type(), b.getF32Type()};
}

/// Largest value of a signless integer type (i32 or i64).
static uint64_t maxSigned(Type t) {
  return t.isInteger(32) ? uint64_t(std::numeric_limits<int32_t>::max())
                         : uint64_t(std::numeric_limits<int64_t>::max());
}

static LogicalResult verifyEps(Operation *op, StringRef label, StringRef what,
                               double eps) {
  if (eps > 0 && std::isfinite(eps))
    return success();
  return op->emitOpError() << "expected " << what << " > 0, got " << eps << " ["
                           << label << "]";
}

//===----------------------------------------------------------------------===//
// EngramStateEmptyOp
//===----------------------------------------------------------------------===//

LogicalResult EngramStateEmptyOp::verify() {
  // I64Attr getters return the bits zero-extended; read them as signed.
  auto padId = static_cast<int64_t>(getPadId());
  // engram_state_empty_c1: the pad is a compressed id, hence >= 0.
  if (padId < 0)
    return emitOpError() << "expected padId >= 0, got " << padId
                         << " [engram_state_empty_c1]";
  return success();
}

//===----------------------------------------------------------------------===//
// EngramHashOp
//===----------------------------------------------------------------------===//

LogicalResult EngramHashOp::verify() {
  // I64Attr getters return the bits zero-extended; read them as signed.
  auto maxNgram = static_cast<int64_t>(getMaxNgram());
  auto heads = static_cast<int64_t>(getHeads());
  auto padId = static_cast<int64_t>(getPadId());
  // engram_hash_c1: orders n = 2 ... N are used, so N >= 2.
  if (maxNgram < 2)
    return emitOpError() << "expected maxNgram >= 2, got " << maxNgram
                         << " [engram_hash_c1]";
  // engram_hash_c2: at least one head per order.
  if (failed(verifyPositive(*this, "engram_hash_c2", "heads", heads)))
    return failure();
  // engram_hash_c3: one table size per (order, head).
  ArrayRef<int64_t> primes = getPrimes();
  int64_t tables = (maxNgram - 1) * heads;
  if (static_cast<int64_t>(primes.size()) != tables)
    return emitOpError() << "expected (maxNgram-1)*heads = " << tables
                         << " primes, got " << primes.size()
                         << " [engram_hash_c3]";
  // engram_hash_c4: every table size is a prime.
  for (auto [i, p] : llvm::enumerate(primes))
    if (!::v4::isPrime(p))
      return emitOpError() << "expected primes[" << i << "] to be a prime, got "
                           << p << " [engram_hash_c4]";
  // engram_hash_c5: no table size is used twice within a layer.
  llvm::DenseSet<int64_t> seen;
  for (auto [i, p] : llvm::enumerate(primes))
    if (!seen.insert(p).second)
      return emitOpError() << "expected distinct primes, got " << p
                           << " again at index " << i << " [engram_hash_c5]";
  // engram_hash_c6: within one order the heads' primes increase (each head
  // searches from the previous head's prime + 1).
  for (int64_t i = 0; i < tables; ++i)
    if (i % heads != 0 && primes[i] <= primes[i - 1])
      return emitOpError() << "expected primes of order " << (i / heads + 2)
                           << " to increase with the head, "
                           << "got " << primes[i - 1] << " then " << primes[i]
                           << " at index " << i << " [engram_hash_c6]";

  MLIRContext *ctx = getContext();
  // engram_hash_c7: ids are [B, T] integer token ids.
  auto idsType = cast<ShapedType>(getIds().getType());
  if (failed(verifyRank(*this, "engram_hash_c7", "ids", idsType, 2)) ||
      failed(verifyElementType(*this, "engram_hash_c7", "ids",
                               idsType.getElementType(), intTypes(ctx))))
    return failure();
  int64_t b = idsType.getDimSize(0), t = idsType.getDimSize(1);
  // engram_hash_c8: tokenMap is a [vocab] integer table.
  auto mapType = cast<ShapedType>(getTokenMap().getType());
  if (failed(verifyRank(*this, "engram_hash_c8", "tokenMap", mapType, 1)) ||
      failed(verifyElementType(*this, "engram_hash_c8", "tokenMap",
                               mapType.getElementType(), intTypes(ctx))))
    return failure();
  // engram_hash_c9: multipliers are [N] i64.
  auto multType = cast<ShapedType>(getMultipliers().getType());
  if (failed(verifyShape(*this, "engram_hash_c9", "multipliers", multType,
                         {maxNgram}, "[maxNgram]")) ||
      failed(verifyElementType(*this, "engram_hash_c9", "multipliers",
                               multType.getElementType(),
                               {Builder(ctx).getI64Type()})))
    return failure();
  // engram_hash_c10: the state holds N-1 ids of each of the B sequences.
  EngramStateType state = getState().getType();
  if (state.getLookback() != maxNgram - 1)
    return emitOpError() << "expected state lookback = maxNgram-1 = "
                         << maxNgram - 1 << ", got " << state.getLookback()
                         << " [engram_hash_c10]";
  if (failed(verifyDimEq(*this, "engram_hash_c10", "state batch (B of ids)",
                         state.getBatch(), b)))
    return failure();
  // engram_hash_c11: the new state has the type of the old one.
  if (getNewState().getType() != state)
    return emitOpError() << "expected newState type " << state << ", got "
                         << getNewState().getType() << " [engram_hash_c11]";
  // engram_hash_c12: rows are [B, T, (N-1)*H] i32 or i64.
  auto rowsType = cast<ShapedType>(getRows().getType());
  if (failed(verifyShape(*this, "engram_hash_c12", "rows", rowsType,
                         {b, t, tables}, "[B, T, (maxNgram-1)*heads]")) ||
      failed(verifyElementType(*this, "engram_hash_c12", "rows",
                               rowsType.getElementType(), intTypes(ctx))))
    return failure();
  // engram_hash_c13: every row index (< sum of primes) fits the row type.
  uint64_t limit = maxSigned(rowsType.getElementType());
  uint64_t sum = 0;
  for (int64_t p : primes)
    sum = llvm::SaturatingAdd(sum, static_cast<uint64_t>(p));
  if (sum > limit)
    return emitOpError() << "expected the sum of primes (table rows) <= "
                         << limit << " for " << rowsType.getElementType()
                         << " row indices, got " << sum << " [engram_hash_c13]";
  // engram_hash_c14: the pad is a compressed id of the token map's type.
  uint64_t padLimit = maxSigned(mapType.getElementType());
  if (padId < 0 || static_cast<uint64_t>(padId) > padLimit)
    return emitOpError() << "expected padId in [0, " << padLimit
                         << "] (a compressed id of type "
                         << mapType.getElementType() << "), got " << padId
                         << " [engram_hash_c14]";
  return success();
}

//===----------------------------------------------------------------------===//
// EngramLookupOp
//===----------------------------------------------------------------------===//

LogicalResult EngramLookupOp::verify() {
  MLIRContext *ctx = getContext();
  Builder builder(ctx);
  // engram_lookup_c1: rows are [B, T, R] i32 or i64.
  auto rowsType = cast<ShapedType>(getRows().getType());
  if (failed(verifyRank(*this, "engram_lookup_c1", "rows", rowsType, 3)) ||
      failed(verifyElementType(*this, "engram_lookup_c1", "rows",
                               rowsType.getElementType(), intTypes(ctx))))
    return failure();
  // engram_lookup_c2: the table is [numEmbeddings, De] FP8 or bf16.
  auto tableType = cast<ShapedType>(getTable().getType());
  Type tableElt = tableType.getElementType();
  if (failed(verifyRank(*this, "engram_lookup_c2", "table", tableType, 2)) ||
      failed(verifyElementType(
          *this, "engram_lookup_c2", "table", tableElt,
          {builder.getType<Float8E4M3FNType>(), builder.getBF16Type()})))
    return failure();
  int64_t rows = tableType.getDimSize(0), de = tableType.getDimSize(1);
  // engram_lookup_c3: numEmbeddings > 0 is the table's row count.
  auto numEmbeddings = static_cast<int64_t>(getNumEmbeddings());
  if (failed(verifyPositive(*this, "engram_lookup_c3", "numEmbeddings",
                            numEmbeddings)) ||
      failed(verifyDimEq(*this, "engram_lookup_c3",
                         "table rows (numEmbeddings)", rows, numEmbeddings)))
    return failure();
  // engram_lookup_c4: every row index (< numEmbeddings) fits the row type.
  uint64_t limit = maxSigned(rowsType.getElementType());
  if (static_cast<uint64_t>(numEmbeddings) - 1 > limit)
    return emitOpError() << "expected numEmbeddings (" << numEmbeddings
                         << ") <= " << limit + 1 << " for "
                         << rowsType.getElementType()
                         << " row indices [engram_lookup_c4]";
  // engram_lookup_c5: an FP8 table comes with its scales, a bf16 one without.
  bool fp8 = isFp8E4M3(tableElt);
  if (fp8 != static_cast<bool>(getScale()))
    return emitOpError() << "expected " << (fp8 ? "a" : "no")
                         << " scale operand with a " << tableElt
                         << " table [engram_lookup_c5]";
  if (fp8) {
    // engram_lookup_c6: one scale per 32 elements of a row.
    if (failed(verifyMultipleOf(*this, "engram_lookup_c6", "table row width De",
                                de, 32)))
      return failure();
    // engram_lookup_c7: scale is [numEmbeddings, De/32] f8E8M0FNU.
    auto scaleType = cast<ShapedType>(getScale().getType());
    int64_t blocks = ShapedType::isDynamic(de) ? de : de / 32;
    if (failed(verifyShape(*this, "engram_lookup_c7", "scale", scaleType,
                           {numEmbeddings, blocks},
                           "[numEmbeddings, De/32]")) ||
        failed(verifyElementType(*this, "engram_lookup_c7", "scale",
                                 scaleType.getElementType(),
                                 {builder.getType<Float8E8M0FNUType>()})))
      return failure();
  }
  // engram_lookup_c8: e is [B, T, R*De], bf16 or f32.
  auto eType = cast<ShapedType>(getE().getType());
  ArrayRef<int64_t> r = rowsType.getShape();
  if (failed(verifyShape(*this, "engram_lookup_c8", "e", eType,
                         {r[0], r[1], mulDim(r[2], de)}, "[B, T, R*De]")) ||
      failed(verifyElementType(*this, "engram_lookup_c8", "e",
                               eType.getElementType(), weightTypes(ctx))))
    return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// EngramGateOp
//===----------------------------------------------------------------------===//

LogicalResult EngramGateOp::verify() {
  MLIRContext *ctx = getContext();
  // engram_gate_c1: x is [B, T, n, d] activations with a static lane count.
  auto xType = cast<ShapedType>(getX().getType());
  if (xType.getRank() != 4 || ShapedType::isDynamic(xType.getDimSize(2)) ||
      xType.getDimSize(2) <= 0)
    return emitOpError() << "expected x of shape [B, T, n, d] with a static "
                            "lane count n > 0, got "
                         << shapeToString(xType.getShape())
                         << " [engram_gate_c1]";
  Type elt = xType.getElementType();
  if (failed(verifyElementType(*this, "engram_gate_c1", "x", elt,
                               activationTypes(ctx))))
    return failure();
  ArrayRef<int64_t> x = xType.getShape();
  int64_t b = x[0], t = x[1], n = x[2], d = x[3];
  // engram_gate_c2: kv is [B, T, (n+1)*d]: n keys, then the value.
  auto kvType = cast<ShapedType>(getKv().getType());
  if (failed(verifyShape(*this, "engram_gate_c2", "kv", kvType,
                         {b, t, mulDim(n + 1, d)}, "[B, T, (n+1)*d] of x")) ||
      failed(verifyElementType(*this, "engram_gate_c2", "kv",
                               kvType.getElementType(), {elt})))
    return failure();
  // engram_gate_c3: qWeight is [n, d], bf16 or f32.
  auto qType = cast<ShapedType>(getQWeight().getType());
  if (failed(verifyShape(*this, "engram_gate_c3", "qWeight", qType, {n, d},
                         "[n, d] of x")) ||
      failed(verifyElementType(*this, "engram_gate_c3", "qWeight",
                               qType.getElementType(), weightTypes(ctx))))
    return failure();
  // engram_gate_c4: kWeight is [n, d], bf16 or f32.
  auto kType = cast<ShapedType>(getKWeight().getType());
  if (failed(verifyShape(*this, "engram_gate_c4", "kWeight", kType, {n, d},
                         "[n, d] of x")) ||
      failed(verifyElementType(*this, "engram_gate_c4", "kWeight",
                               kType.getElementType(), weightTypes(ctx))))
    return failure();
  // engram_gate_c5: eps > 0.
  if (failed(verifyEps(*this, "engram_gate_c5", "eps",
                       getEps().convertToDouble())))
    return failure();
  // engram_gate_c6: the result has the type of x.
  if (getResult().getType() != getX().getType())
    return emitOpError() << "expected result type " << getX().getType()
                         << " (that of x), got " << getResult().getType()
                         << " [engram_gate_c6]";

  // engram_gate_c7: the short-conv branch is all or nothing: its three
  // operands, its dilation and its new-history result come together.
  unsigned parts =
      static_cast<bool>(getConvWeight()) + static_cast<bool>(getConvNorm()) +
      static_cast<bool>(getConvState()) + static_cast<bool>(getNewConvState()) +
      getConvDilation().has_value();
  if (parts != 0 && parts != 5)
    return emitOpError()
           << "expected convWeight, convNorm, convState, convDilation and the "
              "newConvState result all present or all absent, got "
           << parts << " of 5 [engram_gate_c7]";
  if (parts == 0)
    return success();

  // engram_gate_c8: convWeight is the depthwise [n*d, 1, K] layout, K >= 2.
  auto cwType = cast<ShapedType>(getConvWeight().getType());
  int64_t channels = mulDim(n, d);
  if (cwType.getRank() != 3 || ShapedType::isDynamic(cwType.getDimSize(2)) ||
      cwType.getDimSize(2) < 2)
    return emitOpError() << "expected convWeight of shape [n*d, 1, K] with a "
                            "static kernel size K >= 2, got "
                         << shapeToString(cwType.getShape())
                         << " [engram_gate_c8]";
  int64_t kernel = cwType.getDimSize(2);
  if (failed(verifyShape(*this, "engram_gate_c8", "convWeight", cwType,
                         {channels, 1, kernel}, "[n*d, 1, K] of x")) ||
      failed(verifyElementType(*this, "engram_gate_c8", "convWeight",
                               cwType.getElementType(), weightTypes(ctx))))
    return failure();
  // engram_gate_c9: convNorm holds one RMSNorm weight per lane: [n, d].
  auto cnType = cast<ShapedType>(getConvNorm().getType());
  if (failed(verifyShape(*this, "engram_gate_c9", "convNorm", cnType, {n, d},
                         "[n, d] of x")) ||
      failed(verifyElementType(*this, "engram_gate_c9", "convNorm",
                               cnType.getElementType(), weightTypes(ctx))))
    return failure();
  // engram_gate_c10: the dilation (= maxNgram) is positive.
  auto dilation = static_cast<int64_t>(*getConvDilation());
  if (failed(
          verifyPositive(*this, "engram_gate_c10", "convDilation", dilation)))
    return failure();
  // engram_gate_c11: convState is [B, (K-1)*dilation, n*d] activations.
  auto csType = cast<ShapedType>(getConvState().getType());
  std::string note = ("[B, (K-1)*convDilation, n*d] with K = " + Twine(kernel) +
                      ", convDilation = " + Twine(dilation))
                         .str();
  if (failed(verifyShape(*this, "engram_gate_c11", "convState", csType,
                         {b, (kernel - 1) * dilation, channels}, note)) ||
      failed(verifyElementType(*this, "engram_gate_c11", "convState",
                               csType.getElementType(), activationTypes(ctx))))
    return failure();
  // engram_gate_c12: newConvState has the type of convState.
  if (getNewConvState().getType() != getConvState().getType())
    return emitOpError() << "expected newConvState type "
                         << getConvState().getType() << ", got "
                         << getNewConvState().getType() << " [engram_gate_c12]";
  // engram_gate_c13: convNormEps > 0.
  return verifyEps(*this, "engram_gate_c13", "convNormEps",
                   getConvNormEps().convertToDouble());
}
