//===- V4Dialect.h - v4 dialect ---------------------------------*- C++ -*-===//
#ifndef V4_DIALECTS_V4_V4DIALECT_H
#define V4_DIALECTS_V4_V4DIALECT_H

#include "mlir/IR/Dialect.h"

#include "dialects/V4/V4Dialect.h.inc"

#endif // V4_DIALECTS_V4_V4DIALECT_H
