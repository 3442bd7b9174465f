//===- V4ToLinalgPatterns.h - per-family V4ToLinalg patterns ----*- C++ -*-===//
//
// Internal to lowering/V4ToLinalg. Each op family has its own file of
// conversion patterns; V4ToLinalg.cpp collects them. A family says which of
// its ops it lowers, so the targets know which ops still need a hand-built
// kernel.
//
// Conventions for a pattern (OpConversionPattern<Op> with the storage type
// converter of dialects/V4/V4StorageLayout.h):
// * operands arrive in storage types (FP8/e8m0 as i8 codes, FP4 packed two
//   per byte, decode state as its tensors); use the OneToNOpAdaptor form
//   when an operand may be a compressor state (two tensors);
// * results are created in destination-passing style: a fresh result from
//   tensor.empty (its dynamic sizes from the operands), a result tied to an
//   operand (TiedResultsOpInterface) computed into that operand (it is the
//   kernel's argument buffer after bufferization, updated in place);
// * every bf16/fp32 rounding point of V4-SPEC is an explicit op
//   (arith.truncf/extf), reductions are linalg reductions (or scf.for over
//   tensors) in ascending index order, accumulated in fp32, so that the
//   result is bit-identical to the hand-built CPU kernels and reference/;
// * low-precision numerics come from lowering/Numerics (one library).
//
//===----------------------------------------------------------------------===//
#ifndef V4_LOWERING_V4TOLINALG_V4TOLINALGPATTERNS_H
#define V4_LOWERING_V4TOLINALG_V4TOLINALGPATTERNS_H

#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/DialectConversion.h"

namespace mlir::v4 {

/// Core family: embedding, rms_norm, rope, hadamard, fake_quant; attention
/// and compression state: ring.empty, ring.write, cache.empty,
/// kv.state_empty, kv.compress, attn.window_indices; engram.state_empty.
void populateV4ToLinalgCorePatterns(const TypeConverter &converter,
                                    RewritePatternSet &patterns);
bool isLoweredByV4ToLinalgCore(Operation *op);

/// mHC, MTP input, MoE gates, combine and the expert-parallel dispatch
/// and undispatch, Engram hash/lookup/gate.
void populateV4ToLinalgHyperConnPatterns(const TypeConverter &converter,
                                         RewritePatternSet &patterns);
bool isLoweredByV4ToLinalgHyperConn(Operation *op);

/// `lanes` consecutive elements of tensor `t` at `ix` (in bounds) as a
/// vector of f32 (widened exactly when narrower): the row reads of the
/// vectorised bodies (kv.compress's projections, the mHC mixes).
Value readF32Vector(ImplicitLocOpBuilder &b, Value t, ValueRange ix,
                    int64_t lanes);

/// Whether the kernel of `op` is for the host CPU (its module's v4.target;
/// none: the default, cpu), where one thread runs a kernel's loops in
/// order: work hoisted out of a loop nest stays in the thread (the mHC
/// mix dots carry their sum of squares, RoPE's angles go to a table); a
/// GPU target maps each loop nest onto threads (v4-gpu-map-kernels).
bool onHostCPU(Operation *op);

} // namespace mlir::v4

#endif // V4_LOWERING_V4TOLINALG_V4TOLINALGPATTERNS_H
