//===- V4Ops.h - v4 operations ----------------------------------*- C++ -*-===//
//
// Declares every op of the v4 dialect. Each concern file (V4<Family>Ops.td)
// generates its own classes; this header includes them all.
//
//===----------------------------------------------------------------------===//
#ifndef V4_DIALECTS_V4_V4OPS_H
#define V4_DIALECTS_V4_V4OPS_H

#include "dialects/V4/V4Attrs.h"
#include "dialects/V4/V4Dialect.h"
#include "dialects/V4/V4Types.h"

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/V4/V4Interfaces.h.inc"

#define GET_OP_CLASSES
#include "dialects/V4/V4CoreOps.h.inc"
#define GET_OP_CLASSES
#include "dialects/V4/V4AttentionOps.h.inc"
#define GET_OP_CLASSES
#include "dialects/V4/V4CompressionOps.h.inc"
#define GET_OP_CLASSES
#include "dialects/V4/V4MoEOps.h.inc"
#define GET_OP_CLASSES
#include "dialects/V4/V4HyperConnOps.h.inc"
#define GET_OP_CLASSES
#include "dialects/V4/V4EngramOps.h.inc"
#define GET_OP_CLASSES
#include "dialects/V4/V4CommOps.h.inc"
#define GET_OP_CLASSES
#include "dialects/V4/V4PlanOps.h.inc"

#endif // V4_DIALECTS_V4_V4OPS_H
