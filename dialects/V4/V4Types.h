//===- V4Types.h - v4 decode-state types ------------------------*- C++ -*-===//
#ifndef V4_DIALECTS_V4_V4TYPES_H
#define V4_DIALECTS_V4_V4TYPES_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Types.h"

#define GET_TYPEDEF_CLASSES
#include "dialects/V4/V4Types.h.inc"

#endif // V4_DIALECTS_V4_V4TYPES_H
