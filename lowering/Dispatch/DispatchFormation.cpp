//===- DispatchFormation.cpp - kernels and the plan as IR -----------------===//
//
// Pass v4-form-dispatches (lowering/Passes.td). @step and @init_state become
// plans over buffers (v4.plan.dispatch, v4.plan.parameter, memref.alloc),
// and every distinct op becomes one outlined kernel of `module @kernels`.
//
//===----------------------------------------------------------------------===//
#include "lowering/Dispatch/DispatchFormation.h"

#include "dialects/V4/V4Numerics.h"
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4StorageLayout.h"
#include "dialects/V4/V4Types.h"
#include "lowering/Passes.h"
#include "lowering/Target/PTX/PTXTarget.h"
#include "lowering/Target/TargetBackend.h"
#include "runtime/artifact/Artifact.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/TypeSwitch.h"

namespace mlir::v4 {
#define GEN_PASS_DEF_V4FORMDISPATCHESPASS
#include "lowering/Passes.h.inc"
} // namespace mlir::v4

using namespace mlir;
using namespace mlir::v4;

/// Values the plan gives buffers: tensors and decode state.
static bool isModelType(Type t) {
  return isa<RankedTensorType, WindowRingType, KVCacheType, CompressorStateType,
             EngramStateType>(t);
}

static std::optional<unsigned> tiedOperand(Operation *op, unsigned result) {
  if (auto tied = dyn_cast<TiedResultsOpInterface>(op))
    return tied.getTiedOperandIndex(result);
  return std::nullopt;
}

ModuleOp mlir::v4::getKernelsModule(ModuleOp module) {
  for (auto m : module.getOps<ModuleOp>())
    if (m.getSymName() == kKernelsModuleName)
      return m;
  return nullptr;
}

SmallVector<ModuleOp> mlir::v4::getTargetKernelModules(ModuleOp module) {
  SmallVector<ModuleOp> all;
  if (ModuleOp kernels = getKernelsModule(module))
    all.push_back(kernels);
  for (auto m : module.getOps<ModuleOp>())
    if (m.getSymName() &&
        m.getSymName()->starts_with(kTargetKernelsModulePrefix))
      all.push_back(m);
  return all;
}

PlanBounds mlir::v4::getPlanBounds(ModuleOp module) {
  auto get = [&](StringRef name, int64_t dflt) {
    if (auto a = module->getAttrOfType<IntegerAttr>(name))
      return a.getInt();
    return dflt;
  };
  PlanBounds b;
  b.batch = get("v4.batch", 1);
  b.maxContext = get("v4.max_context", 1);
  b.maxChunk = get(kMaxChunkAttrName, std::min(b.maxContext, kDefaultMaxChunk));
  return b;
}

namespace {
/// Tokens per slice of a token-local kernel (kTokenSliceAttrName): a
/// 64-token chunk is 8 slices for the threads to share.
constexpr int64_t kTokenSlice = 8;

/// Whether `op`'s kernel may run on slices of the token dim: an op that
/// computes each token from that token's inputs alone (no state, no
/// positions derived from the token index), whose every tensor has its
/// token dim (the one dynamic dim) after only size-1 dims (batch 1), so
/// that a slice of tokens is one contiguous run of each buffer.
bool isTokenSliceable(Operation *op) {
  if (!isa<MhcExpandOp, MhcPreOp, MhcPostOp, MhcPostPreOp, MhcHeadOp,
           MtpInputOp, RMSNormOp, RopeOp, HadamardOp, FakeQuantOp, ConvertOp,
           MoEGateOp, MoEHashGateOp, MoECombineOp, EmbeddingOp>(op))
    return false;
  bool anyToken = false;
  for (Type t :
       llvm::concat<Type>(op->getOperandTypes(), op->getResultTypes())) {
    auto r = dyn_cast<RankedTensorType>(t);
    if (!r)
      return false;
    int64_t dynamic = 0;
    bool leadingOnes = true;
    for (int64_t d = 0; d < r.getRank(); ++d) {
      if (r.isDynamicDim(d)) {
        ++dynamic;
        anyToken |= leadingOnes;
        if (!leadingOnes)
          return false;
      } else if (dynamic == 0 && r.getDimSize(d) != 1) {
        leadingOnes = false;
      }
    }
    if (dynamic > 1)
      return false;
  }
  return anyToken;
}
} // namespace

FailureOr<func::FuncOp> mlir::v4::outlineKernel(Operation *op, ModuleOp kernels,
                                                StringRef name) {
  // Arguments: the model operands, then a destination per fresh result.
  SmallVector<Type> argTypes;
  DenseMap<unsigned, unsigned> operandArg; // op operand -> kernel argument
  for (OpOperand &o : op->getOpOperands()) {
    if (!isModelType(o.get().getType())) {
      if (isa<tensor::ExpandShapeOp>(op))
        continue; // dynamic output sizes: recomputed in the kernel
      return op->emitError()
             << "cannot outline '" << op->getName() << "': operand #"
             << o.getOperandNumber() << " of type " << o.get().getType()
             << " is not a tensor or decode state";
    }
    operandArg[o.getOperandNumber()] = argTypes.size();
    argTypes.push_back(o.get().getType());
  }
  SmallVector<unsigned> dest;
  for (OpResult r : op->getResults()) {
    if (!isModelType(r.getType()))
      return op->emitError()
             << "cannot outline '" << op->getName() << "': result #"
             << r.getResultNumber() << " of type " << r.getType()
             << " is not a tensor or decode state";
    if (std::optional<unsigned> t = tiedOperand(op, r.getResultNumber())) {
      dest.push_back(operandArg.lookup(*t));
      continue;
    }
    dest.push_back(argTypes.size());
    argTypes.push_back(r.getType());
  }

  OpBuilder top = OpBuilder::atBlockEnd(kernels.getBody());
  auto fn =
      func::FuncOp::create(top, op->getLoc(), name,
                           top.getFunctionType(argTypes, op->getResultTypes()));
  fn->setAttr("v4.kernel", top.getUnitAttr());
  fn->setAttr(kKernelOpAttrName,
              top.getStringAttr(op->getName().getStringRef()));
  if (isTokenSliceable(op))
    fn->setAttr(kTokenSliceAttrName, top.getI64IntegerAttr(kTokenSlice));
  for (OpResult r : op->getResults())
    if (std::optional<unsigned> t = tiedOperand(op, r.getResultNumber()))
      fn.setResultAttr(r.getResultNumber(), "v4.tied_operand",
                       top.getI64IntegerAttr(operandArg.lookup(*t)));
  auto b = ImplicitLocOpBuilder::atBlockEnd(op->getLoc(), fn.addEntryBlock());

  Operation *body;
  if (auto expand = dyn_cast<tensor::ExpandShapeOp>(op)) {
    // The dynamic sizes of the result are those of its destination.
    auto type = expand.getResultType();
    SmallVector<OpFoldResult> sizes;
    for (int64_t d = 0; d < type.getRank(); ++d)
      sizes.push_back(type.isDynamicDim(d)
                          ? OpFoldResult(tensor::DimOp::create(
                                b, fn.getArgument(dest[0]), d))
                          : OpFoldResult(b.getIndexAttr(type.getDimSize(d))));
    body = tensor::ExpandShapeOp::create(
        b, type, fn.getArgument(0), expand.getReassociationIndices(), sizes);
  } else {
    body = b.clone(*op);
    for (auto [operand, arg] : operandArg)
      body->setOperand(operand, fn.getArgument(arg));
  }
  SmallVector<Value> results;
  for (OpResult r : body->getResults())
    results.push_back(KernelStoreOp::create(
        b, r.getType(), r, fn.getArgument(dest[r.getResultNumber()])));
  func::ReturnOp::create(b, results);
  return fn;
}

namespace {

/// Builds the plan of one model module.
class Former {
public:
  Former(ModuleOp module, ModuleOp kernels)
      : module(module), kernels(kernels) {}

  LogicalResult run();

  unsigned numKernels = 0, numDispatches = 0, numCopies = 0;

private:
  ModuleOp module, kernels;
  /// Old (tensor-level) value -> its buffers in the new function.
  DenseMap<Value, SmallVector<Value>> bufs;
  llvm::StringMap<func::FuncOp> kernelByKey;
  llvm::StringMap<Value> parameters;
  /// The token count T of the step (dim 1 of the ids).
  Value tokens;

  FailureOr<func::FuncOp> kernelFor(Operation *op);
  FailureOr<func::FuncOp> copyKernelFor(Type type, Location loc);
  FailureOr<SmallVector<Value>> allocate(OpBuilder &b, Location loc, Type t);
  void dispatch(OpBuilder &b, Location loc, func::FuncOp kernel,
                ValueRange buffers);
  LogicalResult formStep(func::FuncOp step, func::FuncOp &newStep);
  LogicalResult formInit(func::FuncOp init, func::FuncOp newStep,
                         func::FuncOp &newInit);
};

FailureOr<func::FuncOp> Former::kernelFor(Operation *op) {
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
  if (auto it = kernelByKey.find(key); it != kernelByKey.end())
    return it->second;
  std::string opName = isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(op)
                           ? "reshape"
                           : op->getName().stripDialect().str();
  std::replace(opName.begin(), opName.end(), '.', '_');
  std::string name = "k" + std::to_string(numKernels) + "_" + opName;
  FailureOr<func::FuncOp> fn = outlineKernel(op, kernels, name);
  if (failed(fn))
    return failure();
  ++numKernels;
  kernelByKey[key] = *fn;
  return *fn;
}

FailureOr<func::FuncOp> Former::copyKernelFor(Type type, Location loc) {
  std::string key;
  {
    llvm::raw_string_ostream os(key);
    os << "copy|" << type;
  }
  if (auto it = kernelByKey.find(key); it != kernelByKey.end())
    return it->second;
  std::string name = "k" + std::to_string(numKernels++) + "_copy";
  OpBuilder top = OpBuilder::atBlockEnd(kernels.getBody());
  auto fn = func::FuncOp::create(top, loc, name,
                                 top.getFunctionType({type, type}, {type}));
  fn->setAttr("v4.kernel", top.getUnitAttr());
  auto b = ImplicitLocOpBuilder::atBlockEnd(loc, fn.addEntryBlock());
  Value r =
      KernelStoreOp::create(b, type, fn.getArgument(0), fn.getArgument(1));
  func::ReturnOp::create(b, r);
  kernelByKey[key] = fn;
  return fn;
}

FailureOr<SmallVector<Value>> Former::allocate(OpBuilder &b, Location loc,
                                               Type t) {
  SmallVector<Type> types;
  if (failed(getStorageMemRefTypes(t, types)))
    return emitError(loc) << "no storage layout for " << t;
  SmallVector<Value> out;
  for (Type mt : types) {
    auto m = cast<MemRefType>(mt);
    SmallVector<Value> dyn(m.getNumDynamicDims(), tokens);
    out.push_back(memref::AllocOp::create(b, loc, m, dyn));
  }
  return out;
}

void Former::dispatch(OpBuilder &b, Location loc, func::FuncOp kernel,
                      ValueRange buffers) {
  auto ref =
      SymbolRefAttr::get(b.getStringAttr(kKernelsModuleName),
                         {FlatSymbolRefAttr::get(kernel.getSymNameAttr())});
  PlanDispatchOp::create(b, loc, ref, buffers);
  ++numDispatches;
}

LogicalResult Former::formStep(func::FuncOp step, func::FuncOp &newStep) {
  Block &body = step.getBody().front();
  if (body.getNumArguments() < 4)
    return step.emitError() << "@step must take ids, next ids, start "
                               "positions and positions first";
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  unsigned numStates = body.getNumArguments() - 4;
  if (ret.getNumOperands() < numStates)
    return step.emitError() << "@step must return its states last";
  unsigned numOutputs = ret.getNumOperands() - numStates;

  // The signature: every argument's storage buffers (the rank, of a
  // partitioned model, after the inputs); the outputs.
  SmallVector<Type> argTypes, resultTypes;
  SmallVector<SmallVector<NamedAttribute>> argAttrs;
  Builder attrs(step.getContext());
  auto ranks = body.getOps<CommRankOp>();
  bool hasRank = !ranks.empty();
  unsigned rankArg = 0;
  for (BlockArgument a : body.getArguments()) {
    if (hasRank && a.getArgNumber() == 4) {
      SmallVector<Type> types;
      (void)getStorageMemRefTypes((*ranks.begin()).getType(), types);
      rankArg = argTypes.size();
      argTypes.push_back(types.front());
      argAttrs.push_back({attrs.getNamedAttr(
          "v4.role", attrs.getStringAttr(::v4::artifact::role::kRank))});
    }
    SmallVector<Type> types;
    if (failed(getStorageMemRefTypes(a.getType(), types)))
      return step.emitError() << "no storage layout for argument #"
                              << a.getArgNumber() << " of type " << a.getType();
    unsigned j = a.getArgNumber();
    for (auto [n, t] : llvm::enumerate(types)) {
      argTypes.push_back(t);
      SmallVector<NamedAttribute> na;
      if (j < 4) {
        na.push_back(attrs.getNamedAttr(
            "v4.role", attrs.getStringAttr(::v4::artifact::role::kInputs[j])));
      } else {
        std::string name = "state" + std::to_string(j - 4);
        if (types.size() > 1)
          name += n == 0 ? ".kv" : ".score";
        na.push_back(attrs.getNamedAttr("v4.state", attrs.getStringAttr(name)));
      }
      argAttrs.push_back(std::move(na));
    }
  }
  for (unsigned i = 0; i < numOutputs; ++i) {
    SmallVector<Type> types;
    if (failed(getStorageMemRefTypes(ret.getOperand(i).getType(), types)) ||
        types.size() != 1)
      return step.emitError()
             << "output #" << i << " of type " << ret.getOperand(i).getType()
             << " is not a tensor";
    resultTypes.push_back(types.front());
  }

  OpBuilder top(step);
  newStep = func::FuncOp::create(top, step.getLoc(), "step.plan",
                                 top.getFunctionType(argTypes, resultTypes));
  for (auto [i, na] : llvm::enumerate(argAttrs))
    newStep.setArgAttrs(i, na);
  for (unsigned i = 0; i < numOutputs; ++i)
    newStep.setResultAttr(i, "v4.role",
                          top.getStringAttr(::v4::artifact::outputRole(i)));
  Block *entry = newStep.addEntryBlock();
  OpBuilder b = OpBuilder::atBlockEnd(entry);
  {
    unsigned k = 0;
    for (BlockArgument a : body.getArguments()) {
      SmallVector<Type> types;
      (void)getStorageMemRefTypes(a.getType(), types);
      SmallVector<Value> vs;
      for (size_t n = 0; n < types.size(); ++n) {
        if (hasRank && k == rankArg)
          ++k;
        vs.push_back(entry->getArgument(k++));
      }
      bufs[a] = vs;
    }
    tokens = memref::DimOp::create(b, step.getLoc(), entry->getArgument(0), 1);
  }

  for (Operation &op : body.without_terminator()) {
    Location loc = op.getLoc();
    if (isa<CommRankOp>(op)) {
      bufs[op.getResult(0)] = {newStep.getArgument(rankArg)};
      continue;
    }
    if (auto p = dyn_cast<ParameterOp>(op)) {
      auto [it, inserted] = parameters.try_emplace(p.getName(), Value());
      if (!inserted) {
        auto seen = it->second.getDefiningOp<PlanParameterOp>();
        if (seen.getLogicalType() != p.getResult().getType() ||
            seen.getSliceDim() != p.getSliceDim() ||
            seen.getSliceBlock() != p.getSliceBlock())
          return p.emitError() << "parameter '" << p.getName()
                               << "' is read with two different types "
                                  "or slices";
        bufs[p.getResult()] = {it->second};
        continue;
      }
      SmallVector<Type> types;
      if (failed(getStorageMemRefTypes(p.getResult().getType(), types)))
        return p.emitError()
               << "no storage layout for " << p.getResult().getType();
      it->second = PlanParameterOp::create(
          b, loc, types.front(), b.getStringAttr(p.getName()),
          TypeAttr::get(p.getResult().getType()), p.getShardsAttr(),
          /*members=*/IntegerAttr(), p.getSliceDimAttr(), p.getSliceBlockAttr(),
          p.getSliceBlockOfAttr());
      bufs[p.getResult()] = {it->second};
      continue;
    }
    if (auto p = dyn_cast<ParameterStackOp>(op)) {
      // A `{}` pattern: member e is the stacked buffer's slice e.
      SmallVector<Type> types;
      if (failed(getStorageMemRefTypes(p.getResult().getType(), types)))
        return p.emitError()
               << "no storage layout for " << p.getResult().getType();
      Value stack = PlanParameterOp::create(
          b, loc, types.front(), b.getStringAttr(p.getPattern()),
          TypeAttr::get(p.getResult().getType()), p.getShardsAttr(),
          p.getMembersAttr(), p.getSliceDimAttr(),
          /*sliceBlock=*/IntegerAttr(), /*sliceBlockOf=*/IntegerAttr());
      bufs[p.getResult()] = {stack};
      continue;
    }
    bool isKernel = isa<V4Dialect>(op.getDialect()) ||
                    isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(op);
    if (!isKernel) {
      // Host-side index arithmetic (reshape sizes): the plan recomputes
      // sizes from its buffers.
      if (llvm::none_of(op.getResultTypes(), isModelType) &&
          isa<arith::ArithDialect, tensor::TensorDialect>(op.getDialect()))
        continue;
      return op.emitError()
             << "dispatch formation does not handle '" << op.getName() << "'";
    }
    // A collective runs in the plan, not in a kernel.
    StringRef collective =
        llvm::TypeSwitch<Operation *, StringRef>(&op)
            .Case<CommAllReduceOp>([](auto) { return "all_reduce_sum"; })
            .Case<CommAllGatherOp>([](auto) { return "all_gather"; })
            .Case<CommReduceScatterOp>(
                [](auto) { return "reduce_scatter_sum"; })
            .Case<CommAllToAllOp>([](auto) { return "all_to_all"; })
            .Default([](Operation *) { return StringRef(); });
    FailureOr<func::FuncOp> kernel =
        collective.empty() ? kernelFor(&op) : func::FuncOp();
    if (failed(kernel))
      return failure();

    // Operand buffers; a tied operand that is still read later (or a weight
    // or step input) is copied first, and the op updates the copy.
    SmallVector<SmallVector<Value>> operandBufs;
    for (Value v : op.getOperands())
      operandBufs.push_back(bufs.lookup(v));
    SmallVector<SmallVector<Value>> resultBufs(op.getNumResults());
    for (OpResult r : op.getResults()) {
      std::optional<unsigned> t = tiedOperand(&op, r.getResultNumber());
      if (!t)
        continue;
      Value v = op.getOperand(*t);
      auto arg = dyn_cast<BlockArgument>(v);
      bool readLater = llvm::any_of(v.getUsers(), [&](Operation *u) {
        return u != &op && op.isBeforeInBlock(u);
      });
      bool immutable = v.getDefiningOp<ParameterOp>() ||
                       v.getDefiningOp<ParameterStackOp>() ||
                       (arg && arg.getArgNumber() < 4);
      if (readLater || immutable) {
        FailureOr<func::FuncOp> copy = copyKernelFor(v.getType(), loc);
        FailureOr<SmallVector<Value>> scratch = allocate(b, loc, v.getType());
        if (failed(copy) || failed(scratch))
          return failure();
        SmallVector<Value> args(operandBufs[*t]);
        args.append(*scratch);
        dispatch(b, loc, *copy, args);
        ++numCopies;
        operandBufs[*t] = *scratch;
      }
      resultBufs[r.getResultNumber()] = operandBufs[*t];
    }
    SmallVector<Value> args;
    for (auto [i, v] : llvm::enumerate(op.getOperands()))
      if (isModelType(v.getType()))
        args.append(operandBufs[i]);
    for (OpResult r : op.getResults()) {
      if (tiedOperand(&op, r.getResultNumber()))
        continue;
      FailureOr<SmallVector<Value>> out = allocate(b, loc, r.getType());
      if (failed(out))
        return failure();
      args.append(*out);
      resultBufs[r.getResultNumber()] = *out;
    }
    for (OpResult r : op.getResults())
      bufs[r] = resultBufs[r.getResultNumber()];
    if (!collective.empty()) {
      PlanCollectiveOp::create(b, loc, collective, args);
      continue;
    }
    dispatch(b, loc, *kernel, args);
  }

  // Every state ends in its own buffers (copied back if it was updated in a
  // copy); the outputs are returned.
  for (unsigned j = 0; j < numStates; ++j) {
    Value v = ret.getOperand(numOutputs + j);
    SmallVector<Value> have = bufs.lookup(v);
    SmallVector<Value> want = bufs.lookup(body.getArgument(4 + j));
    if (have == want)
      continue;
    FailureOr<func::FuncOp> copy = copyKernelFor(v.getType(), ret.getLoc());
    if (failed(copy))
      return failure();
    SmallVector<Value> args(have);
    args.append(want);
    dispatch(b, ret.getLoc(), *copy, args);
    ++numCopies;
  }
  SmallVector<Value> outputs;
  for (unsigned i = 0; i < numOutputs; ++i)
    outputs.push_back(bufs.lookup(ret.getOperand(i)).front());
  func::ReturnOp::create(b, ret.getLoc(), outputs);
  return success();
}

LogicalResult Former::formInit(func::FuncOp init, func::FuncOp newStep,
                               func::FuncOp &newInit) {
  auto ret = cast<func::ReturnOp>(init.getBody().front().getTerminator());
  unsigned numStates = newStep.getFunctionType().getNumInputs();
  // The state arguments of the new @step start after the 4 inputs.
  unsigned firstState = 0;
  for (unsigned i = 0; i < numStates; ++i)
    if (newStep.getArgAttr(i, "v4.role"))
      firstState = i + 1;
  SmallVector<Type> stateTypes(
      newStep.getFunctionType().getInputs().drop_front(firstState));
  OpBuilder top(init);
  newInit = func::FuncOp::create(top, init.getLoc(), "init_state.plan",
                                 top.getFunctionType(stateTypes, {}));
  Block *entry = newInit.addEntryBlock();
  OpBuilder b = OpBuilder::atBlockEnd(entry);
  unsigned k = 0;
  for (unsigned j = 0; j < ret.getNumOperands(); ++j) {
    Operation *def = ret.getOperand(j).getDefiningOp();
    if (!def || def->getNumOperands() != 0 ||
        !isa<V4Dialect>(def->getDialect()))
      return init.emitError() << "state " << j
                              << " of @init_state must come from a v4 "
                                 "*.empty op";
    SmallVector<Type> types;
    if (failed(getStorageMemRefTypes(def->getResult(0).getType(), types)))
      return def->emitError()
             << "no storage layout for " << def->getResult(0).getType();
    if (k + types.size() > stateTypes.size())
      return init.emitError() << "@init_state returns more state than @step "
                                 "takes";
    SmallVector<Value> args;
    for (size_t n = 0; n < types.size(); ++n) {
      unsigned stepArg = firstState + k;
      args.push_back(entry->getArgument(k++));
      // The reset the empty op performs, for sessions that clear state
      // without running @init_state.
      if (isa<KVStateEmptyOp>(def) && n == 1)
        newStep.setArgAttr(stepArg, "v4.reset",
                           b.getStringAttr("negative_infinity"));
      if (auto e = dyn_cast<EngramStateEmptyOp>(def)) {
        newStep.setArgAttr(stepArg, "v4.reset", b.getStringAttr("pad_id"));
        newStep.setArgAttr(
            stepArg, "v4.pad_value",
            b.getI64IntegerAttr(static_cast<int64_t>(e.getPadId())));
      }
    }
    FailureOr<func::FuncOp> kernel = kernelFor(def);
    if (failed(kernel))
      return failure();
    dispatch(b, def->getLoc(), *kernel, args);
  }
  if (k != stateTypes.size())
    return init.emitError()
           << "@init_state returns " << k << " state buffers, @step takes "
           << stateTypes.size();
  func::ReturnOp::create(b, init.getLoc());
  return success();
}

LogicalResult Former::run() {
  auto step = module.lookupSymbol<func::FuncOp>("step");
  auto init = module.lookupSymbol<func::FuncOp>("init_state");
  if (!step || !init)
    return module.emitError() << "a model needs @step and @init_state to be "
                                 "compiled";
  func::FuncOp newStep, newInit;
  if (failed(formStep(step, newStep)) ||
      failed(formInit(init, newStep, newInit)))
    return failure();
  step.erase();
  init.erase();
  newStep.setSymName("step");
  newInit.setSymName("init_state");
  return success();
}

namespace {
struct V4FormDispatchesPass
    : public mlir::v4::impl::V4FormDispatchesPassBase<V4FormDispatchesPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (getKernelsModule(module)) {
      module.emitError() << "the module already has a kernels module: "
                            "dispatches are formed once";
      return signalPassFailure();
    }
    OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
    auto kernels = ModuleOp::create(b, module.getLoc(), kKernelsModuleName);
    // The kernels are built for the module's target and numerics.
    for (StringRef name :
         {StringRef("v4.target"), StringRef(kNumericsAttrName),
          StringRef(kFakeQuantAttrName), StringRef(kSumOrderAttrName),
          StringRef(kHostISAAttrName), StringRef(kSanitizeKernelsAttrName),
          StringRef(kCUDAToolkitAttrName)})
      if (Attribute a = module->getAttr(name))
        kernels->setAttr(name, a);
    kernels->setAttr(kMaxChunkAttrName,
                     b.getI64IntegerAttr(getPlanBounds(module).maxChunk));
    // A target list: the kernels module is the first target's, and a copy
    // per further target is compiled by that target (v4-kernel-phase).
    SmallVector<const TargetBackend *> targets;
    if (auto list = module->getAttrOfType<StringAttr>("v4.target")) {
      std::string error;
      FailureOr<SmallVector<const TargetBackend *>> parsed =
          parseTargetList(list.getValue(), error);
      if (failed(parsed)) {
        module.emitError() << "v4.target: " << error;
        return signalPassFailure();
      }
      targets = std::move(*parsed);
      kernels->setAttr("v4.target",
                       b.getStringAttr(targets.front()->getName()));
    }
    Former former(module, kernels);
    if (failed(former.run()))
      return signalPassFailure();
    b.setInsertionPointAfter(kernels);
    for (const TargetBackend *t :
         ArrayRef<const TargetBackend *>(targets).drop_front(
             targets.empty() ? 0 : 1)) {
      auto copy = cast<ModuleOp>(b.clone(*kernels));
      copy.setSymName((kTargetKernelsModulePrefix + t->getName()).str());
      copy->setAttr("v4.target", b.getStringAttr(t->getName()));
    }
    numKernels = former.numKernels;
    numDispatches = former.numDispatches;
    numCopies = former.numCopies;
  }
};
} // namespace

} // namespace
