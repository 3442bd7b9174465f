//===- V4AttentionOps.cpp - verifiers of the Attention op family ----------------===//
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4Verification.h"

using namespace mlir;
using namespace mlir::v4;

#define GET_OP_CLASSES
#include "dialects/V4/V4AttentionOps.cpp.inc"
