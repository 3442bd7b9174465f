//===- SerializeArtifact.cpp - plan IR + code object -> .v4a --------------===//
#include "lowering/Artifact/SerializeArtifact.h"

#include "dialects/V4/V4Numerics.h"

#include "dialects/V4/V4DerivedParameters.h"
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4Partition.h"
#include "dialects/V4/V4StorageLayout.h"
#include "lowering/Dispatch/DispatchFormation.h"
#include "lowering/Target/TargetBackend.h"
#include "runtime/artifact/Artifact.h"
#include "runtime/base/NumpyRandom.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Config/llvm-config.h"

#include <algorithm>

using namespace mlir;
namespace art = ::v4::artifact;

namespace mlir::v4 {
namespace {

std::string locationName(Location loc) {
  if (auto name = dyn_cast<NameLoc>(loc))
    return name.getName().str();
  if (auto fused = dyn_cast<FusedLoc>(loc))
    for (Location l : fused.getLocations())
      if (auto n = locationName(l); !n.empty())
        return n;
  return "";
}

/// Reads the plan functions into an artifact description.
class PlanReader {
public:
  PlanReader(ModuleOp module, art::Description &desc)
      : module(module), desc(desc) {}

  LogicalResult read();

private:
  ModuleOp module;
  art::Description &desc;
  llvm::DenseMap<Value, uint32_t> bufferIds;
  llvm::DenseSet<Value> arenas;
  llvm::StringMap<uint32_t> kernelIds;
  llvm::StringMap<uint32_t> locationIds;

  FailureOr<uint32_t> addBuffer(Value v, art::BufferKind kind, Location loc);
  int32_t debugLocation(Location loc);
  LogicalResult readEntry(func::FuncOp fn, StringRef name,
                          ArrayRef<uint32_t> argIds);
};

FailureOr<uint32_t> PlanReader::addBuffer(Value v, art::BufferKind kind,
                                          Location loc) {
  auto type = dyn_cast<MemRefType>(v.getType());
  if (!type)
    return emitError(loc) << "plan value of type " << v.getType()
                          << " is not a buffer";
  FailureOr<art::DType> dtype = getStorageDType(type.getElementType());
  if (failed(dtype))
    return emitError(loc) << "no buffer dtype for " << type;
  art::Buffer b;
  b.id = static_cast<uint32_t>(desc.buffers.size());
  b.dtype = *dtype;
  for (int64_t d : type.getShape())
    b.shape.push_back(ShapedType::isDynamic(d) ? -1 : d);
  b.kind = kind;
  desc.buffers.push_back(b);
  bufferIds[v] = b.id;
  return b.id;
}

int32_t PlanReader::debugLocation(Location loc) {
  std::string name = locationName(loc);
  if (name.empty())
    return -1;
  auto [it, inserted] = locationIds.try_emplace(
      name, static_cast<uint32_t>(desc.debugLocations.size()));
  if (inserted)
    desc.debugLocations.push_back({name, "", 0, 0});
  return static_cast<int32_t>(it->second);
}

LogicalResult PlanReader::readEntry(func::FuncOp fn, StringRef name,
                                    ArrayRef<uint32_t> argIds) {
  art::EntryPoint entry;
  entry.name = name.str();
  for (auto [arg, id] : llvm::zip(fn.getArguments(), argIds))
    bufferIds[arg] = id;
  for (Operation &op : fn.getBody().front()) {
    if (auto p = dyn_cast<PlanParameterOp>(op)) {
      FailureOr<uint32_t> id =
          addBuffer(p.getBuffer(), art::BufferKind::Parameter, p.getLoc());
      FailureOr<CheckpointLayout> layout =
          getCheckpointLayout(cast<RankedTensorType>(p.getLogicalType()));
      if (failed(id) || failed(layout))
        return p.emitError()
               << "no checkpoint layout for " << p.getLogicalType();
      art::Parameter param{p.getName().str(), layout->dtype, layout->shape,
                           *id};
      param.shards = static_cast<uint32_t>(p.getShards().value_or(1));
      param.members = static_cast<uint64_t>(p.getMembers().value_or(0));
      if (std::optional<int64_t> dim = p.getSliceDim()) {
        param.sliceDim = static_cast<int32_t>(*dim);
        param.sliceBlock = static_cast<uint64_t>(p.getSliceBlock().value_or(1));
        param.sliceBlockOf =
            static_cast<uint64_t>(p.getSliceBlockOf().value_or(1));
      }
      desc.parameters.push_back(std::move(param));
      continue;
    }
    if (auto a = dyn_cast<memref::AllocOp>(op)) {
      if (a->hasAttr("v4.arena")) {
        // The session's activation arena (v4-plan-memory): one per plan,
        // shared by the entry points, which never run at the same time.
        if (a.getType().getRank() != 1 || !a.getType().hasStaticShape())
          return a.emitError() << "the arena must be a static 1-D buffer";
        desc.arenaBytes = std::max<uint64_t>(
            desc.arenaBytes,
            static_cast<uint64_t>(a.getType().getNumElements()));
        arenas.insert(a.getResult());
        continue;
      }
      if (failed(addBuffer(a.getResult(), art::BufferKind::Activation,
                           a.getLoc())))
        return failure();
      continue;
    }
    if (auto v = dyn_cast<memref::ViewOp>(op)) {
      std::optional<int64_t> offset = getConstantIntValue(v.getByteShift());
      if (!arenas.contains(v.getSource()) || !offset)
        return v.emitError() << "a plan view must be of the arena at a "
                                "constant offset";
      FailureOr<uint32_t> id =
          addBuffer(v.getResult(), art::BufferKind::Activation, v.getLoc());
      if (failed(id))
        return failure();
      desc.buffers[*id].arenaOffset = *offset;
      continue;
    }
    if (auto d = dyn_cast<PlanDispatchOp>(op)) {
      StringRef kernel = d.getKernel().getLeafReference().getValue();
      auto [it, inserted] = kernelIds.try_emplace(
          kernel, static_cast<uint32_t>(desc.kernels.size()));
      if (inserted) {
        art::Kernel k;
        k.name = kernel.str();
        k.codeObject = 0;
        k.entrySymbol = kernel.str();
        k.numBufferArgs = d.getBuffers().size();
        k.debugLocation = locationName(d.getLoc());
        desc.kernels.push_back(k);
      } else if (desc.kernels[it->second].numBufferArgs !=
                 d.getBuffers().size()) {
        return d.emitError()
               << "kernel '" << kernel << "' is dispatched with "
               << d.getBuffers().size() << " and "
               << desc.kernels[it->second].numBufferArgs << " buffers";
      }
      art::Step s;
      s.kernel = it->second;
      for (Value v : d.getBuffers()) {
        auto found = bufferIds.find(v);
        if (found == bufferIds.end())
          return d.emitError() << "dispatch of '" << kernel
                               << "' uses a buffer the plan does not declare "
                                  "(an argument, v4.plan.parameter or "
                                  "memref.alloc)";
        s.buffers.push_back(found->second);
      }
      s.debugLocation = debugLocation(d.getLoc());
      s.concurrent = d->hasAttr(kConcurrentAttrName);
      if (auto only =
              d->getAttrOfType<DenseI64ArrayAttr>(kOnlyForOutputsAttrName)) {
        // Results of the plan, named in the artifact by their outputs'
        // role indices (art::outputRole).
        for (int64_t r : only.asArrayRef()) {
          auto role = r >= 0 && r < fn.getNumResults()
                          ? fn.getResultAttrOfType<StringAttr>(r, "v4.role")
                          : StringAttr();
          uint32_t index = 0;
          while (role && index <= fn.getNumResults() &&
                 art::outputRole(index) != role.getValue())
            ++index;
          if (!role || index > fn.getNumResults())
            return d.emitError() << "only for result " << r
                                 << ", which is no output of @" << name;
          s.onlyForOutputs.push_back(index);
        }
        llvm::sort(s.onlyForOutputs);
      }
      entry.steps.push_back(std::move(s));
      continue;
    }
    if (auto c = dyn_cast<PlanCollectiveOp>(op)) {
      art::Step s;
      s.collective =
          llvm::StringSwitch<art::Collective>(c.getKind())
              .Case("all_gather", art::Collective::AllGather)
              .Case("reduce_scatter_sum", art::Collective::ReduceScatterSum)
              .Case("all_to_all", art::Collective::AllToAll)
              .Default(art::Collective::AllReduceSum);
      for (Value v : c.getBuffers()) {
        auto found = bufferIds.find(v);
        if (found == bufferIds.end())
          return c.emitError() << "collective over a buffer the plan does "
                                  "not declare";
        s.buffers.push_back(found->second);
      }
      s.debugLocation = debugLocation(c.getLoc());
      entry.steps.push_back(std::move(s));
      continue;
    }
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
        auto found = bufferIds.find(v);
        if (found == bufferIds.end())
          return ret.emitError() << "returned value is not a plan buffer";
        art::Buffer &b = desc.buffers[found->second];
        if (b.kind == art::BufferKind::Output)
          return ret.emitError() << "buffer returned twice";
        b.kind = art::BufferKind::Output;
        auto role = fn.getResultAttrOfType<StringAttr>(i, "v4.role");
        if (!role)
          return ret.emitError()
                 << "result #" << i << " of @" << name << " has no v4.role";
        b.role = role.str();
      }
      continue;
    }
    if (isa<memref::DimOp, arith::ConstantOp>(op))
      continue; // sizes: the runtime binds the token count
    return op.emitError() << "the artifact plan cannot hold '" << op.getName()
                          << "'";
  }
  desc.entryPoints.push_back(std::move(entry));
  return success();
}

LogicalResult PlanReader::read() {
  auto step = module.lookupSymbol<func::FuncOp>("step");
  auto init = module.lookupSymbol<func::FuncOp>("init_state");
  if (!step || !init)
    return module.emitError()
           << "the artifact phase needs @step and @init_state as plans (run "
              "the dispatch phase first)";
  // Step arguments: the inputs, then the state (shared with @init_state).
  SmallVector<uint32_t> stepIds, stateIds;
  for (BlockArgument a : step.getArguments()) {
    bool isState =
        static_cast<bool>(step.getArgAttr(a.getArgNumber(), "v4.state"));
    FailureOr<uint32_t> id =
        addBuffer(a, isState ? art::BufferKind::State : art::BufferKind::Input,
                  step.getLoc());
    if (failed(id))
      return failure();
    stepIds.push_back(*id);
    if (!isState) {
      auto role =
          step.getArgAttrOfType<StringAttr>(a.getArgNumber(), "v4.role");
      if (!role)
        return step.emitError() << "input #" << a.getArgNumber()
                                << " of @step has neither v4.role nor v4.state";
      desc.buffers[*id].role = role.str();
      continue;
    }
    stateIds.push_back(*id);
    art::StateSpec spec;
    spec.name =
        cast<StringAttr>(step.getArgAttr(a.getArgNumber(), "v4.state")).str();
    spec.buffers = {*id};
    if (auto reset =
            step.getArgAttrOfType<StringAttr>(a.getArgNumber(), "v4.reset")) {
      if (reset.getValue() == "negative_infinity")
        spec.reset = art::ResetKind::NegativeInfinity;
      else if (reset.getValue() == "pad_id")
        spec.reset = art::ResetKind::PadId;
      else
        return step.emitError()
               << "unknown v4.reset '" << reset.getValue() << "'";
    }
    if (auto pad = step.getArgAttrOfType<IntegerAttr>(a.getArgNumber(),
                                                      "v4.pad_value"))
      spec.padValue = pad.getInt();
    desc.stateSpecs.push_back(std::move(spec));
  }
  if (init.getNumArguments() != stateIds.size())
    return init.emitError()
           << "@init_state takes " << init.getNumArguments()
           << " buffers, @step has " << stateIds.size() << " state buffers";
  if (failed(readEntry(init, "init_state", stateIds)) ||
      failed(readEntry(step, "step", stepIds)))
    return failure();
  return success();
}

} // namespace

/// Every kernel of `table` found in `kernels` (or a symbol table nested in
/// it: sm_90a's gpu.module), by name: its position there, or an error.
static FailureOr<llvm::StringMap<unsigned>>
kernelPositions(ModuleOp module, ModuleOp kernels,
                ArrayRef<art::Kernel> table) {
  llvm::StringMap<unsigned> position;
  for (Operation &op : kernels.getBody()->getOperations()) {
    if (auto sym = dyn_cast<SymbolOpInterface>(op))
      position.try_emplace(sym.getName(), position.size());
    if (op.hasTrait<OpTrait::SymbolTable>() && op.getNumRegions() == 1)
      for (Operation &inner : op.getRegion(0).front())
        if (auto sym = dyn_cast<SymbolOpInterface>(inner))
          position.try_emplace(sym.getName(), position.size());
  }
  for (const art::Kernel &k : table)
    if (!position.count(k.name))
      return module.emitError()
             << "kernel '" << k.name << "' is dispatched but not in the "
             << (kernels.getSymName() ? *kernels.getSymName() : "kernels")
             << " module";
  return position;
}

/// The code objects of one target's kernels module, which must give one.
static FailureOr<SmallVector<CodeObject>>
serializeKernels(const TargetBackend &target, ModuleOp kernels) {
  FailureOr<SmallVector<CodeObject>> code = target.serialize(kernels);
  if (failed(code))
    return failure();
  if (code->empty())
    return kernels.emitError()
           << "target '" << target.getName() << "' gave no code object";
  return code;
}

LogicalResult serializeArtifact(ModuleOp module, std::string &bytes) {
  SmallVector<ModuleOp> modules = getTargetKernelModules(module);
  if (modules.empty() || modules.front() != getKernelsModule(module))
    return module.emitError() << "no kernels module: run the dispatch and "
                                 "kernel phases first";
  ModuleOp kernels = modules.front();
  FailureOr<const TargetBackend *> target = getTargetBackendFor(kernels);
  if (failed(target))
    return failure();

  art::Description desc;
  if (failed(PlanReader(module, desc).read()))
    return failure();
  // The kernel table in the kernels module's order (k0, k1, ...), not in
  // the order of first dispatch; a target's code module nested in it (the
  // sm_90a gpu.module) holds its kernels in the same order.
  FailureOr<llvm::StringMap<unsigned>> position =
      kernelPositions(module, kernels, desc.kernels);
  if (failed(position))
    return failure();
  std::vector<uint32_t> order(desc.kernels.size());
  for (uint32_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return position->lookup(desc.kernels[a].name) <
           position->lookup(desc.kernels[b].name);
  });
  std::vector<uint32_t> newIndex(order.size());
  std::vector<art::Kernel> sorted;
  for (uint32_t i = 0; i < order.size(); ++i) {
    newIndex[order[i]] = i;
    sorted.push_back(std::move(desc.kernels[order[i]]));
  }
  desc.kernels = std::move(sorted);
  for (art::EntryPoint &e : desc.entryPoints)
    for (art::Step &st : e.steps)
      st.kernel = newIndex[st.kernel];
  // Each further target's table: the same kernels, with its own launch
  // geometry and code objects (after those of the targets before it).
  std::vector<art::Kernel> plain = desc.kernels;
  for (art::Kernel &k : desc.kernels)
    (*target)->describeLaunch(kernels, k.name, k);
  FailureOr<SmallVector<CodeObject>> code = serializeKernels(**target, kernels);
  if (failed(code))
    return failure();
  for (ModuleOp other : llvm::drop_begin(modules)) {
    FailureOr<const TargetBackend *> t = getTargetBackendFor(other);
    if (failed(t) || failed(kernelPositions(module, other, plain)))
      return failure();
    art::KernelSet set;
    set.target = (*t)->getArtifactTarget();
    set.kernels = plain;
    for (art::Kernel &k : set.kernels) {
      k.codeObject = static_cast<uint32_t>(code->size());
      (*t)->describeLaunch(other, k.name, k);
    }
    FailureOr<SmallVector<CodeObject>> more = serializeKernels(**t, other);
    if (failed(more))
      return failure();
    for (CodeObject &c : *more)
      code->push_back(std::move(c));
    desc.kernelSets.push_back(std::move(set));
  }

  art::Writer writer(std::move(desc));
  art::Description &d = writer.description();
  d.versions.compiler = "v4c 0.1.0";
  d.versions.mlir = LLVM_VERSION_STRING;
  d.target = code->front().target;
  PlanBounds bounds = getPlanBounds(module);
  d.bounds.batch = bounds.batch;
  d.bounds.maxContext = bounds.maxContext;
  d.bounds.maxChunk = bounds.maxChunk;
  // BOS/EOS of the config (frontend attributes), for the runtime's stops.
  if (auto bos = module->getAttrOfType<IntegerAttr>("v4.bos_token_id"))
    d.tokens.bos = bos.getInt();
  if (auto eos = module->getAttrOfType<IntegerAttr>("v4.eos_token_id"))
    d.tokens.eos = eos.getInt();
  FailureOr<ModuleNumerics> numerics = getModuleNumerics(module);
  if (failed(numerics))
    return failure();
  d.numerics = numerics->numerics;
  d.fakeQuant = numerics->fakeQuant;
  d.sumOrder = numerics->sumOrder;
  FailureOr<int64_t> ep = getExpertParallel(module);
  FailureOr<int64_t> tp = getTensorParallel(module);
  if (failed(ep) || failed(tp))
    return failure();
  d.expertParallel = static_cast<uint32_t>(*ep);
  d.tensorParallel = static_cast<uint32_t>(*tp);
  d.dataParallelAttention = getDataParallelAttention(module);
  // The Engram constants a checkpoint may leave out (V4-SPEC 8.4): the
  // runtime computes the multipliers and checks stored copies.
  std::map<std::string, EngramMultiplierRule> derived =
      getEngramMultiplierRules(module);
  for (art::Parameter &p : d.parameters)
    if (auto it = derived.find(p.name); it != derived.end())
      p.derived = {art::DerivedRule::EngramMultipliers, it->second.seed,
                   it->second.bound};
  for (auto &[name, primes] : getEngramPrimeCopies(module))
    d.checkedTensors.push_back({name, primes, ::v4::numpy::engramPrimeRule()});
  for (const art::Parameter &p : d.parameters) {
    if (p.dtype == art::DType::F8E4M3 || p.dtype == art::DType::F8E8M0)
      d.features |= art::kFeatureFP8;
    if (p.name.find("{}") != std::string::npos && p.dtype == art::DType::I8)
      d.features |= art::kFeatureFP4;
  }
  for (const art::StateSpec &s : d.stateSpecs)
    if (s.reset == art::ResetKind::PadId)
      d.features |= art::kFeatureEngram;
  for (CodeObject &c : *code)
    writer.addCodeObject(c.target, c.format, std::move(c.bytes), c.isa);
  art::Expected<std::vector<uint8_t>> file = writer.serialize();
  if (!file)
    return module.emitError()
           << "writing the artifact failed: " << file.status().message();
  // Self-check with the runtime's loader: every AF layer.
  art::Expected<art::Artifact> check =
      art::Artifact::load("compiled artifact", file->data(), file->size());
  if (!check)
    return module.emitError() << "the compiled artifact does not verify (a "
                                 "compiler bug): "
                              << check.status().message();
  bytes.assign(file->begin(), file->end());
  return success();
}

} // namespace mlir::v4
