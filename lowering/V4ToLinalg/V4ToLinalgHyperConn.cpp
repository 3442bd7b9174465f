//===- V4ToLinalgHyperConn.cpp - target-neutral bodies (HyperConn family)
//---------------===//
#include "lowering/V4ToLinalg/V4ToLinalgPatterns.h"

#include "dialects/V4/V4Ops.h"

using namespace mlir;

void mlir::v4::populateV4ToLinalgHyperConnPatterns(const TypeConverter &,
                                                   RewritePatternSet &) {}

bool mlir::v4::isLoweredByV4ToLinalgHyperConn(Operation *) { return false; }
