//===- V4Dialect.cpp - v4 dialect registration ----------------------------===//
#include "dialects/V4/V4Dialect.h"
#include "dialects/V4/V4Ops.h"

#include "mlir/Transforms/InliningUtils.h"

using namespace mlir;
using namespace mlir::v4;

#include "dialects/V4/V4Dialect.cpp.inc"

namespace {
/// Every v4 op has value semantics and no region, so a call to a function
/// of v4 ops (a layer block) can always be inlined.
struct V4InlinerInterface : public DialectInlinerInterface {
  using DialectInlinerInterface::DialectInlinerInterface;
  bool isLegalToInline(Operation *, Operation *, bool) const final {
    return true;
  }
  bool isLegalToInline(Operation *, Region *, bool, IRMapping &) const final {
    return true;
  }
};
} // namespace

void V4Dialect::initialize() {
  registerTypes();
  registerAttributes();
  addInterfaces<V4InlinerInterface>();
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
  addOperations<
#define GET_OP_LIST
#include "dialects/V4/V4CommOps.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "dialects/V4/V4PlanOps.cpp.inc"
      >();
}
