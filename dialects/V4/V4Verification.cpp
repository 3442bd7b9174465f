//===- V4Verification.cpp - shape rules shared by v4 verifiers ------------===//
#include "dialects/V4/V4Verification.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;

namespace mlir::v4 {

std::string dimToString(int64_t d) {
  return ShapedType::isDynamic(d) ? std::string("?") : std::to_string(d);
}

std::string shapeToString(ArrayRef<int64_t> shape) {
  std::string s = "[";
  llvm::raw_string_ostream os(s);
  llvm::interleaveComma(shape, os, [&](int64_t d) { os << dimToString(d); });
  os << "]";
  return s;
}

LogicalResult verifyRank(Operation *op, StringRef label, StringRef what,
                         ShapedType type, int64_t rank) {
  if (type.getRank() == rank)
    return success();
  return op->emitOpError() << what << " must have rank " << rank << ", got "
                           << type.getRank() << " (shape "
                           << shapeToString(type.getShape()) << ") [" << label
                           << "]";
}

LogicalResult verifyMinRank(Operation *op, StringRef label, StringRef what,
                            ShapedType type, int64_t minRank) {
  if (type.getRank() >= minRank)
    return success();
  return op->emitOpError() << what << " must have rank >= " << minRank
                           << ", got " << type.getRank() << " [" << label
                           << "]";
}

LogicalResult verifyDimEq(Operation *op, StringRef label, StringRef what,
                          int64_t actual, int64_t expected) {
  if (dimsCompatible(actual, expected))
    return success();
  return op->emitOpError() << "expected " << what << " = " << expected
                           << ", got " << actual << " [" << label << "]";
}

LogicalResult verifyShape(Operation *op, StringRef label, StringRef what,
                          ShapedType type, ArrayRef<int64_t> expected,
                          StringRef note) {
  ArrayRef<int64_t> actual = type.getShape();
  bool ok = actual.size() == expected.size();
  for (size_t i = 0; ok && i < actual.size(); ++i)
    ok = dimsCompatible(actual[i], expected[i]);
  if (ok)
    return success();
  InFlightDiagnostic diag = op->emitOpError()
                            << "expected " << what << " shape "
                            << shapeToString(expected);
  if (!note.empty())
    diag << " (" << note << ")";
  diag << ", got " << shapeToString(actual) << " [" << label << "]";
  return diag;
}

LogicalResult verifyShapesCompatible(Operation *op, StringRef label,
                                     StringRef whatA, ArrayRef<int64_t> a,
                                     StringRef whatB, ArrayRef<int64_t> b) {
  bool ok = a.size() == b.size();
  for (size_t i = 0; ok && i < a.size(); ++i)
    ok = dimsCompatible(a[i], b[i]);
  if (ok)
    return success();
  return op->emitOpError() << "expected " << whatA << " shape "
                           << shapeToString(a) << " to match " << whatB
                           << " shape " << shapeToString(b) << " [" << label
                           << "]";
}

LogicalResult verifyMultipleOf(Operation *op, StringRef label, StringRef what,
                               int64_t value, int64_t divisor) {
  if (ShapedType::isDynamic(value) || (divisor > 0 && value % divisor == 0))
    return success();
  return op->emitOpError() << "expected " << what << " (" << value
                           << ") to be a multiple of " << divisor << " ["
                           << label << "]";
}

LogicalResult verifyPositive(Operation *op, StringRef label, StringRef what,
                             int64_t value) {
  if (value > 0)
    return success();
  return op->emitOpError() << "expected " << what << " > 0, got " << value
                           << " [" << label << "]";
}

LogicalResult verifyElementType(Operation *op, StringRef label, StringRef what,
                                Type elementType, ArrayRef<Type> allowed) {
  if (llvm::is_contained(allowed, elementType))
    return success();
  InFlightDiagnostic diag = op->emitOpError()
                            << "expected " << what << " element type ";
  llvm::interleave(
      allowed, [&](Type t) { diag << t; }, [&] { diag << " or "; });
  diag << ", got " << elementType << " [" << label << "]";
  return diag;
}

bool isFloatActivation(Type t) { return t.isBF16() || t.isF16() || t.isF32(); }
bool isFp8E4M3(Type t) { return isa<Float8E4M3FNType>(t); }
bool isFp4E2M1(Type t) { return isa<Float4E2M1FNType>(t); }
bool isE8M0(Type t) { return isa<Float8E8M0FNUType>(t); }
bool isPowerOf2(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

int64_t mulDim(int64_t a, int64_t b) {
  if (ShapedType::isDynamic(a) || ShapedType::isDynamic(b))
    return ShapedType::kDynamic;
  return a * b;
}

int64_t ceilDivDim(int64_t a, int64_t b) {
  if (ShapedType::isDynamic(a))
    return a;
  return (a + b - 1) / b;
}

} // namespace mlir::v4
