//===- V4Dialect.cpp - v4 dialect registration ----------------------------===//
#include "dialects/V4/V4Dialect.h"
#include "dialects/V4/V4Ops.h"

using namespace mlir;
using namespace mlir::v4;

#include "dialects/V4/V4Dialect.cpp.inc"

void V4Dialect::initialize() {
  registerTypes();
  registerAttributes();
  // One list per concern file; see V4Ops.h.
  addOperations<
#define GET_OP_LIST
#include "dialects/V4/V4CoreOps.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "dialects/V4/V4AttentionOps.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "dialects/V4/V4CompressionOps.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "dialects/V4/V4MoEOps.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "dialects/V4/V4HyperConnOps.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "dialects/V4/V4EngramOps.cpp.inc"
      >();
}
