//===- V4Verification.h - shape rules shared by v4 verifiers ----*- C++ -*-===//
//
// Small helpers every v4 verifier uses, so that diagnostics read the same
// everywhere. Convention for messages (see docs/DIALECT.md):
//
//   'v4.op' op <operand> <what was expected>, with the numbers [rule_label]
//
// The trailing [rule_label] ties the verifier, the spec section and the
// invalid-*.mlir test together (scripts/check_verifier_coverage.py).
//
// Dynamic dimensions (`?`) are compatible with anything: the rule is checked
// again at run time against the static bounds.
//
//===----------------------------------------------------------------------===//
#ifndef V4_DIALECTS_V4_V4VERIFICATION_H
#define V4_DIALECTS_V4_V4VERIFICATION_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Operation.h"
#include "mlir/Support/LLVM.h"

namespace mlir::v4 {

/// True if two dimension sizes can be equal (either is dynamic or they match).
inline bool dimsCompatible(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

/// Prints a dimension, `?` for dynamic.
std::string dimToString(int64_t d);

/// Prints a shape as `[a, b, ?]`.
std::string shapeToString(ArrayRef<int64_t> shape);

/// Fails with "<what> must have rank <rank>, got <actual> (shape [...])".
LogicalResult verifyRank(Operation *op, StringRef label, StringRef what,
                         ShapedType type, int64_t rank);

/// Fails with "<what> must have rank >= <minRank>, got <actual>".
LogicalResult verifyMinRank(Operation *op, StringRef label, StringRef what,
                            ShapedType type, int64_t minRank);

/// Fails with "<what> expected <expected>, got <actual>" when two static
/// sizes differ. `what` names the dimension, e.g. "weight dim 1 (in features)".
LogicalResult verifyDimEq(Operation *op, StringRef label, StringRef what,
                          int64_t actual, int64_t expected);

/// Fails with "expected <what> shape <expected> (<note>), got <actual>"
/// unless `type` has the rank of `expected` and compatible dimensions.
LogicalResult verifyShape(Operation *op, StringRef label, StringRef what,
                          ShapedType type, ArrayRef<int64_t> expected,
                          StringRef note = {});

/// Fails unless the two shapes are equal up to dynamic dimensions.
LogicalResult verifyShapesCompatible(Operation *op, StringRef label,
                                     StringRef whatA, ArrayRef<int64_t> a,
                                     StringRef whatB, ArrayRef<int64_t> b);

/// Fails with "<what> must be a multiple of <divisor>, got <value>".
LogicalResult verifyMultipleOf(Operation *op, StringRef label, StringRef what,
                               int64_t value, int64_t divisor);

/// Fails with "<what> must be positive, got <value>".
LogicalResult verifyPositive(Operation *op, StringRef label, StringRef what,
                             int64_t value);

/// Fails with "<what> must have element type <one of allowed>, got <type>".
LogicalResult verifyElementType(Operation *op, StringRef label, StringRef what,
                                Type elementType, ArrayRef<Type> allowed);

/// Convenience predicates on element types.
bool isFloatActivation(Type t); // bf16, f16 or f32
bool isFp8E4M3(Type t);         // f8E4M3FN
bool isFp4E2M1(Type t);         // f4E2M1FN
bool isE8M0(Type t);            // f8E8M0FNU
bool isPowerOf2(int64_t v);

/// Product of two sizes; dynamic if either is.
int64_t mulDim(int64_t a, int64_t b);

/// Ceiling division for positive sizes; dynamic stays dynamic.
int64_t ceilDivDim(int64_t a, int64_t b);

} // namespace mlir::v4

#endif // V4_DIALECTS_V4_V4VERIFICATION_H
