//===- V4MoEOps.cpp - verifiers of the MoE op family ----------------===//
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4Verification.h"

using namespace mlir;
using namespace mlir::v4;

#define GET_OP_CLASSES
#include "dialects/V4/V4MoEOps.cpp.inc"
