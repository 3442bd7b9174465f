//===- DispatchFormation.cpp - model -> kernels + plan --------------------===//
#include "lowering/Dispatch/DispatchFormation.h"

#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4Types.h"
#include "lowering/KernelBuilders/CPUKernels.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/Extensions/InlinerExtension.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"

using namespace mlir;
namespace art = ::v4::artifact;

namespace mlir::v4 {
namespace {

std::string str(Type t) {
  std::string s;
  llvm::raw_string_ostream os(s);
  t.print(os);
  return s;
}

/// Storage dtype of a kernel buffer element.
FailureOr<art::DType> storageDType(Type t) {
  if (t.isBF16())
    return art::DType::BF16;
  if (t.isF16())
    return art::DType::F16;
  if (t.isF32())
    return art::DType::F32;
  if (t.isInteger(8))
    return art::DType::I8;
  if (t.isInteger(32))
    return art::DType::I32;
  if (t.isInteger(64))
    return art::DType::I64;
  return failure();
}

/// Checkpoint dtype and shape of a parameter of tensor type `t`
/// (V4-SPEC 1.4: FP4 is stored as I8 with two values per byte).
FailureOr<std::pair<art::DType, std::vector<int64_t>>>
checkpointLayout(RankedTensorType t) {
  std::vector<int64_t> shape(t.getShape().begin(), t.getShape().end());
  Type e = t.getElementType();
  if (isa<Float8E4M3FNType>(e))
    return std::make_pair(art::DType::F8E4M3, shape);
  if (isa<Float8E8M0FNUType>(e))
    return std::make_pair(art::DType::F8E8M0, shape);
  if (isa<Float4E2M1FNType>(e)) {
    shape.back() /= 2;
    return std::make_pair(art::DType::I8, shape);
  }
  FailureOr<art::DType> d = storageDType(e);
  if (failed(d))
    return failure();
  return std::make_pair(*d, shape);
}

std::string locationName(Location loc) {
  if (auto name = dyn_cast<NameLoc>(loc))
    return name.getName().str();
  if (auto fused = dyn_cast<FusedLoc>(loc))
    for (Location l : fused.getLocations())
      if (auto n = locationName(l); !n.empty())
        return n;
  return "";
}

class Former {
public:
  explicit Former(ModuleOp model) : model(model), ctx(model.getContext()) {
    plan.kernels = ModuleOp::create(UnknownLoc::get(ctx));
  }

  FailureOr<DispatchPlan> run();

private:
  ModuleOp model;
  MLIRContext *ctx;
  DispatchPlan plan;
  llvm::DenseMap<Value, SmallVector<uint32_t>> bufs;
  llvm::StringMap<uint32_t> kernelIndex;
  llvm::StringMap<uint32_t> locationIndex;
  /// Parameter name -> its value, so that a parameter read by several
  /// (inlined) layer functions, e.g. engram.token_map, gets one buffer.
  llvm::StringMap<Value> parameterValues;

  art::Description &desc() { return plan.description; }

  FailureOr<SmallVector<uint32_t>> newBuffers(Value v, art::BufferKind kind,
                                              Location loc);
  FailureOr<uint32_t> kernelFor(Operation *op);
  FailureOr<uint32_t> reshapeKernel(Operation *op);
  int32_t debugLocation(Location loc);
  LogicalResult addStep(art::EntryPoint &entry, uint32_t kernel,
                        ArrayRef<uint32_t> buffers, Location loc);
  LogicalResult formStep(func::FuncOp step);
  LogicalResult formInit(func::FuncOp init, func::FuncOp step);
};

FailureOr<SmallVector<uint32_t>>
Former::newBuffers(Value v, art::BufferKind kind, Location loc) {
  SmallVector<Type> types;
  if (failed(kernelArgumentTypes(v.getType(), types)))
    return emitError(loc) << "no buffer layout for " << v.getType();
  SmallVector<uint32_t> ids;
  for (Type t : types) {
    auto m = cast<MemRefType>(t);
    FailureOr<art::DType> dtype = storageDType(m.getElementType());
    if (failed(dtype))
      return emitError(loc) << "no buffer dtype for " << m;
    art::Buffer b;
    b.id = static_cast<uint32_t>(desc().buffers.size());
    b.dtype = *dtype;
    for (int64_t d : m.getShape())
      b.shape.push_back(ShapedType::isDynamic(d) ? -1 : d);
    b.kind = kind;
    desc().buffers.push_back(b);
    ids.push_back(b.id);
  }
  bufs[v] = ids;
  return ids;
}

int32_t Former::debugLocation(Location loc) {
  std::string name = locationName(loc);
  if (name.empty())
    return -1;
  auto [it, inserted] = locationIndex.try_emplace(
      name, static_cast<uint32_t>(desc().debugLocations.size()));
  if (inserted)
    desc().debugLocations.push_back({name, "", 0, 0});
  return static_cast<int32_t>(it->second);
}

FailureOr<uint32_t> Former::kernelFor(Operation *op) {
  // One kernel per distinct (op name, attributes, operand and result types).
  std::string key = op->getName().getStringRef().str();
  {
    llvm::raw_string_ostream os(key);
    os << op->getAttrDictionary();
    for (Type t : op->getOperandTypes())
      os << "|" << t;
    os << "->";
    for (Type t : op->getResultTypes())
      os << "|" << t;
  }
  auto it = kernelIndex.find(key);
  if (it != kernelIndex.end())
    return it->second;
  uint32_t index = static_cast<uint32_t>(desc().kernels.size());
  std::string opName = op->getName().stripDialect().str();
  std::replace(opName.begin(), opName.end(), '.', '_');
  std::string name = "k" + std::to_string(index) + "_" + opName;
  FailureOr<func::FuncOp> fn = buildCPUKernel(op, *plan.kernels, name);
  if (failed(fn))
    return failure();
  art::Kernel k;
  k.name = name;
  k.codeObject = 0;
  k.entrySymbol = name;
  k.numBufferArgs = fn->getNumArguments();
  k.debugLocation = locationName(op->getLoc());
  desc().kernels.push_back(k);
  kernelIndex[key] = index;
  return index;
}

FailureOr<uint32_t> Former::reshapeKernel(Operation *op) {
  // A reshape keeps the bytes; the kernel copies them (row-major order).
  auto in = cast<RankedTensorType>(op->getOperand(0).getType());
  auto out = cast<RankedTensorType>(op->getResult(0).getType());
  std::string key = "reshape|" + str(in) + "|" + str(out);
  auto it = kernelIndex.find(key);
  if (it != kernelIndex.end())
    return it->second;
  uint32_t index = static_cast<uint32_t>(desc().kernels.size());
  std::string name = "k" + std::to_string(index) + "_reshape";
  SmallVector<Type> args;
  if (failed(kernelArgumentTypes(in, args)) ||
      failed(kernelArgumentTypes(out, args)))
    return op->emitError() << "no buffer layout for the reshape";
  OpBuilder ob = OpBuilder::atBlockEnd(plan.kernels->getBody());
  auto fn = func::FuncOp::create(ob, op->getLoc(), name,
                                 ob.getFunctionType(args, {}));
  auto b = ImplicitLocOpBuilder::atBlockEnd(op->getLoc(), fn.addEntryBlock());
  auto flat = [&](Value m) -> Value {
    auto t = cast<MemRefType>(m.getType());
    if (t.getRank() == 1)
      return m;
    ReassociationIndices all;
    for (int64_t i = 0; i < t.getRank(); ++i)
      all.push_back(i);
    return memref::CollapseShapeOp::create(b, m,
                                           ArrayRef<ReassociationIndices>{all});
  };
  Value src = flat(fn.getArgument(0)), dst = flat(fn.getArgument(1));
  Value zero = arith::ConstantIndexOp::create(b, 0);
  Value one = arith::ConstantIndexOp::create(b, 1);
  Value n = memref::DimOp::create(b, src, 0);
  scf::ForOp::create(b, zero, n, one, ValueRange(),
                     [&](OpBuilder &nb, Location loc, Value i, ValueRange) {
                       Value v = memref::LoadOp::create(nb, loc, src, i);
                       memref::StoreOp::create(nb, loc, v, dst, i);
                       scf::YieldOp::create(nb, loc);
                     });
  func::ReturnOp::create(b);
  art::Kernel k;
  k.name = name;
  k.entrySymbol = name;
  k.numBufferArgs = 2;
  desc().kernels.push_back(k);
  kernelIndex[key] = index;
  return index;
}

LogicalResult Former::addStep(art::EntryPoint &entry, uint32_t kernel,
                              ArrayRef<uint32_t> buffers, Location loc) {
  if (buffers.size() != desc().kernels[kernel].numBufferArgs)
    return emitError(loc) << "internal error: kernel '"
                          << desc().kernels[kernel].name << "' takes "
                          << desc().kernels[kernel].numBufferArgs
                          << " buffers, the step binds " << buffers.size();
  art::Step s;
  s.kernel = kernel;
  s.buffers.assign(buffers.begin(), buffers.end());
  s.debugLocation = debugLocation(loc);
  entry.steps.push_back(std::move(s));
  return success();
}

LogicalResult Former::formStep(func::FuncOp step) {
  Block &body = step.getBody().front();
  if (body.getNumArguments() < 4)
    return step.emitError() << "@step must take ids, next ids, start "
                               "positions and positions first";
  for (unsigned i = 0; i < body.getNumArguments(); ++i) {
    BlockArgument a = body.getArgument(i);
    if (failed(newBuffers(
            a, i < 4 ? art::BufferKind::Input : art::BufferKind::State,
            step.getLoc())))
      return failure();
  }
  art::EntryPoint entry;
  entry.name = "step";
  for (Operation &op : body.without_terminator()) {
    if (isa<arith::ConstantOp, tensor::DimOp, arith::SubIOp>(op))
      continue; // index arithmetic of reshape shapes: sizes are dynamic
    if (auto p = dyn_cast<ParameterOp>(op)) {
      auto [seen, inserted] =
          parameterValues.try_emplace(p.getName(), p.getResult());
      if (!inserted) {
        if (seen->second.getType() != p.getResult().getType())
          return p.emitError() << "parameter '" << p.getName()
                               << "' is read with two different types";
        bufs[p.getResult()] = bufs.lookup(seen->second);
        continue;
      }
      FailureOr<SmallVector<uint32_t>> ids =
          newBuffers(p.getResult(), art::BufferKind::Parameter, p.getLoc());
      auto layout = checkpointLayout(p.getResult().getType());
      if (failed(ids) || failed(layout))
        return p.emitError()
               << "no checkpoint layout for " << p.getResult().getType();
      desc().parameters.push_back(
          {p.getName().str(), layout->first, layout->second, ids->front()});
      continue;
    }
    if (auto p = dyn_cast<ParameterStackOp>(op)) {
      FailureOr<SmallVector<uint32_t>> ids =
          newBuffers(p.getResult(), art::BufferKind::Parameter, p.getLoc());
      auto layout = checkpointLayout(p.getResult().getType());
      if (failed(ids) || failed(layout))
        return p.emitError()
               << "no checkpoint layout for " << p.getResult().getType();
      // A `{}` pattern: member e is the stacked buffer's slice e.
      desc().parameters.push_back(
          {p.getPattern().str(), layout->first, layout->second, ids->front()});
      continue;
    }
    if (isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(op)) {
      FailureOr<uint32_t> k = reshapeKernel(&op);
      if (failed(k))
        return failure();
      auto out =
          newBuffers(op.getResult(0), art::BufferKind::Activation, op.getLoc());
      if (failed(out))
        return failure();
      SmallVector<uint32_t> args = bufs.lookup(op.getOperand(0));
      args.append(*out);
      if (failed(addStep(entry, *k, args, op.getLoc())))
        return failure();
      continue;
    }
    if (!isa<V4Dialect>(op.getDialect()))
      return op.emitError()
             << "dispatch formation does not handle '" << op.getName() << "'";
    FailureOr<uint32_t> k = kernelFor(&op);
    if (failed(k))
      return failure();
    SmallVector<uint32_t> args;
    for (Value v : op.getOperands())
      args.append(bufs.lookup(v));
    // State results are written in place into their state operand.
    SmallVector<bool> usedOperand(op.getNumOperands(), false);
    for (Value r : op.getResults()) {
      if (isa<RankedTensorType>(r.getType())) {
        auto out = newBuffers(r, art::BufferKind::Activation, op.getLoc());
        if (failed(out))
          return failure();
        args.append(*out);
        continue;
      }
      if (r.use_empty()) {
        // A dead state result (e.g. the look-back computed by every Engram
        // layer but the last) goes to scratch: writing it in place would
        // clobber the state that later ops still read.
        auto out = newBuffers(r, art::BufferKind::Activation, op.getLoc());
        if (failed(out))
          return failure();
        args.append(*out);
        continue;
      }
      bool found = false;
      for (unsigned i = 0; i < op.getNumOperands() && !found; ++i) {
        if (usedOperand[i] || op.getOperand(i).getType() != r.getType())
          continue;
        usedOperand[i] = found = true;
        SmallVector<uint32_t> state = bufs.lookup(op.getOperand(i));
        args.append(state);
        bufs[r] = std::move(state);
      }
      if (!found)
        return op.emitError() << "state result of type " << r.getType()
                              << " has no state operand to update in place";
    }
    if (failed(addStep(entry, *k, args, op.getLoc())))
      return failure();
  }
  // Results: the logits are outputs; every state comes back in its buffers.
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  unsigned numStates = body.getNumArguments() - 4;
  if (ret.getNumOperands() < numStates)
    return step.emitError() << "@step must return its states last";
  unsigned numOutputs = ret.getNumOperands() - numStates;
  for (unsigned i = 0; i < numOutputs; ++i)
    for (uint32_t id : bufs.lookup(ret.getOperand(i)))
      desc().buffers[id].kind = art::BufferKind::Output;
  for (unsigned j = 0; j < numStates; ++j)
    if (bufs.lookup(ret.getOperand(numOutputs + j)) !=
        bufs.lookup(body.getArgument(4 + j)))
      return step.emitError()
             << "state " << j << " is not updated in place; cannot plan it";
  desc().entryPoints.push_back(std::move(entry));
  return success();
}

LogicalResult Former::formInit(func::FuncOp init, func::FuncOp step) {
  Block &stepBody = step.getBody().front();
  auto ret = cast<func::ReturnOp>(init.getBody().front().getTerminator());
  if (ret.getNumOperands() != stepBody.getNumArguments() - 4)
    return init.emitError()
           << "@init_state returns " << ret.getNumOperands()
           << " states, @step takes " << stepBody.getNumArguments() - 4;
  art::EntryPoint entry;
  entry.name = "init_state";
  for (unsigned j = 0; j < ret.getNumOperands(); ++j) {
    Operation *def = ret.getOperand(j).getDefiningOp();
    if (!def || def->getNumOperands() != 0 ||
        !isa<V4Dialect>(def->getDialect()))
      return init.emitError() << "state " << j
                              << " of @init_state must come from a v4 "
                                 "*.empty op";
    FailureOr<uint32_t> k = kernelFor(def);
    if (failed(k) ||
        failed(addStep(entry, *k, bufs.lookup(stepBody.getArgument(4 + j)),
                       def->getLoc())))
      return failure();
    // State specs, one per buffer, with the reset the empty op performs.
    SmallVector<uint32_t> ids = bufs.lookup(stepBody.getArgument(4 + j));
    for (auto [n, id] : llvm::enumerate(ids)) {
      art::StateSpec spec;
      spec.name = "state" + std::to_string(j) +
                  (ids.size() > 1 ? (n == 0 ? ".kv" : ".score") : "");
      spec.buffers = {id};
      if (isa<KVStateEmptyOp>(def) && n == 1)
        spec.reset = art::ResetKind::NegativeInfinity;
      if (auto e = dyn_cast<EngramStateEmptyOp>(def)) {
        spec.reset = art::ResetKind::PadId;
        spec.padValue = static_cast<int64_t>(e.getPadId());
      }
      desc().stateSpecs.push_back(std::move(spec));
    }
  }
  desc().entryPoints.insert(desc().entryPoints.begin(), std::move(entry));
  return success();
}

FailureOr<DispatchPlan> Former::run() {
  auto step = model.lookupSymbol<func::FuncOp>("step");
  auto init = model.lookupSymbol<func::FuncOp>("init_state");
  if (!step || !init)
    return model.emitError() << "a model needs @step and @init_state to be "
                                "compiled";
  if (failed(formStep(step)) || failed(formInit(init, step)))
    return failure();
  return std::move(plan);
}

} // namespace

FailureOr<DispatchPlan> formDispatches(ModuleOp model) {
  // Kernel bodies use dialects the model itself may not have loaded.
  DialectRegistry registry;
  registerCPUKernelDialects(registry);
  func::registerInlinerExtension(registry);
  model.getContext()->appendDialectRegistry(registry);
  model.getContext()->loadAllAvailableDialects();
  // Work on a copy with every layer function inlined into @step, then fuse
  // every mHC boundary (post of one site + pre of the next, also across
  // layers now that they are inlined) into one v4.mhc.post_pre.
  OwningOpRef<ModuleOp> copy = cast<ModuleOp>(model->clone());
  PassManager pm(model.getContext());
  pm.addPass(createInlinerPass());
  pm.addNestedPass<func::FuncOp>(createV4FuseMhcBoundariesPass());
  if (failed(pm.run(*copy)))
    return failure();
  Former former(*copy);
  return former.run();
}

} // namespace mlir::v4
