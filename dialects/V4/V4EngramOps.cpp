//===- V4EngramOps.cpp - verifiers of the Engram op family ----------------===//
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4Verification.h"

using namespace mlir;
using namespace mlir::v4;

#define GET_OP_CLASSES
#include "dialects/V4/V4EngramOps.cpp.inc"
