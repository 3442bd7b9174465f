//===- V4ToLinalgCore.cpp - target-neutral bodies (Core family)
//---------------===//
#include "lowering/V4ToLinalg/V4ToLinalgPatterns.h"

#include "dialects/V4/V4Ops.h"

using namespace mlir;

void mlir::v4::populateV4ToLinalgCorePatterns(const TypeConverter &,
                                              RewritePatternSet &) {}

bool mlir::v4::isLoweredByV4ToLinalgCore(Operation *) { return false; }
