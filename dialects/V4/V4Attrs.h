//===- V4Attrs.h - v4 attributes and enums ----------------------*- C++ -*-===//
#ifndef V4_DIALECTS_V4_V4ATTRS_H
#define V4_DIALECTS_V4_V4ATTRS_H

#include "mlir/IR/Attributes.h"
#include "mlir/IR/BuiltinAttributes.h"

#include "dialects/V4/V4Enums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/V4/V4Attrs.h.inc"

#endif // V4_DIALECTS_V4_V4ATTRS_H
