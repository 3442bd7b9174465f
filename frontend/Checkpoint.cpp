//===- Checkpoint.cpp - parameter manifest, check and T1 weights ----------===//
#include "frontend/Checkpoint.h"
#include "runtime/base/NumpyRandom.h"
#include "runtime/numerics/Numerics.h"
#include "runtime/numerics/WeightRecipe.h"

#include "dialects/V4/V4DerivedParameters.h"
#include "dialects/V4/V4Dialect.h"
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4StorageLayout.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>

using namespace mlir;
namespace st = ::v4::safetensors;

namespace v4 {

char CheckpointError::ID = 0;

std::error_code CheckpointError::convertToErrorCode() const {
  return kind == IO ? std::make_error_code(std::errc::io_error)
                    : std::make_error_code(std::errc::invalid_argument);
}

static llvm::Error rejected(const llvm::Twine &message) {
  return llvm::make_error<CheckpointError>(CheckpointError::Rejected,
                                           message.str());
}

static llvm::Error fromStatus(const st::Status &status) {
  return llvm::make_error<CheckpointError>(
      status.rule() == "IO" ? CheckpointError::IO : CheckpointError::Rejected,
      status.message());
}

// The quantisers (namespace quant) live in runtime/numerics/Numerics.h.

//===----------------------------------------------------------------------===//
// Manifest
//===----------------------------------------------------------------------===//

namespace {

/// A checkpoint tensor as the module declares it (logical type).
struct LogicalParam {
  std::string name;
  Type elementType;
  std::vector<int64_t> shape; // logical (FP4: full K)
  st::ManifestEntry entry;    // checkpoint dtype and shape
};

} // namespace

static std::string typeString(Type type) {
  std::string s;
  llvm::raw_string_ostream os(s);
  type.print(os);
  return s;
}

static std::string shapeString(llvm::ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

/// The checkpoint dtype and shape of a logical element type and shape: the
/// storage-layout rule (dialects/V4/V4StorageLayout.h).
static llvm::Expected<st::ManifestEntry>
checkpointEntry(llvm::StringRef name, Type elementType,
                llvm::ArrayRef<int64_t> shape) {
  FailureOr<mlir::v4::CheckpointLayout> layout =
      mlir::v4::getCheckpointLayout(RankedTensorType::get(shape, elementType));
  if (failed(layout)) {
    if (isa<Float4E2M1FNType>(elementType))
      return rejected("parameter '" + name +
                      "': packed FP4 needs an even last dimension, got " +
                      shapeString(shape));
    return rejected("parameter '" + name + "': element type " +
                    typeString(elementType) + " has no checkpoint dtype");
  }
  st::ManifestEntry entry;
  entry.name = name.str();
  entry.dtype = layout->dtype;
  entry.shape = std::move(layout->shape);
  return entry;
}

/// Collects the logical parameters, sorted by name.
static llvm::Expected<std::vector<LogicalParam>>
collectParams(ModuleOp module) {
  std::map<std::string, LogicalParam> byName;
  std::string conflicts;
  auto add = [&](const std::string &name, Type elementType,
                 llvm::ArrayRef<int64_t> shape) -> llvm::Error {
    auto it = byName.find(name);
    if (it != byName.end()) {
      if (it->second.elementType != elementType ||
          llvm::ArrayRef<int64_t>(it->second.shape) != shape)
        conflicts += "\n  '" + name + "' is used as " +
                     typeString(it->second.elementType) +
                     shapeString(it->second.shape) + " and as " +
                     typeString(elementType) + shapeString(shape);
      return llvm::Error::success();
    }
    auto entry = checkpointEntry(name, elementType, shape);
    if (!entry)
      return entry.takeError();
    LogicalParam p{name, elementType,
                   std::vector<int64_t>(shape.begin(), shape.end()),
                   entry.get()};
    byName.emplace(name, std::move(p));
    return llvm::Error::success();
  };

  llvm::Error err = llvm::Error::success();
  module.walk([&](Operation *op) -> WalkResult {
    if (auto param = dyn_cast<mlir::v4::ParameterOp>(op)) {
      auto type = cast<RankedTensorType>(param.getType());
      err = add(param.getName().str(), type.getElementType(), type.getShape());
    } else if (auto stack = dyn_cast<mlir::v4::ParameterStackOp>(op)) {
      auto type = cast<RankedTensorType>(stack.getType());
      if (type.getRank() < 1 ||
          type.getDimSize(0) != int64_t(stack.getCount())) {
        err = rejected("parameter_stack '" + stack.getPattern() +
                       "': leading dimension differs from count");
        return WalkResult::interrupt();
      }
      // A shard (expert parallelism) checks every rank's members.
      int64_t members = stack.getMembers().value_or(
          int64_t(stack.getCount()) * stack.getShards().value_or(1));
      for (int64_t i = 0; i < members && !err; ++i)
        err = add(stack.getMemberName(i), type.getElementType(),
                  type.getShape().drop_front());
    } else {
      return WalkResult::advance();
    }
    return err ? WalkResult::interrupt() : WalkResult::advance();
  });
  if (err)
    return std::move(err);
  if (!conflicts.empty())
    return rejected("conflicting uses of parameter names:" + conflicts);

  std::vector<LogicalParam> params;
  params.reserve(byName.size());
  for (auto &kv : byName)
    params.push_back(std::move(kv.second));
  return params;
}

llvm::Expected<std::vector<st::ManifestEntry>>
collectManifest(ModuleOp module) {
  auto params = collectParams(module);
  if (!params)
    return params.takeError();
  std::vector<st::ManifestEntry> manifest;
  manifest.reserve(params->size());
  std::map<std::string, mlir::v4::EngramMultiplierRule> rules =
      mlir::v4::getEngramMultiplierRules(module);
  for (auto &p : *params) {
    manifest.push_back(p.entry);
    manifest.back().optional = rules.count(p.name) != 0;
  }
  // Checked copies no kernel reads (V4-SPEC 8.4 primes): optional.
  for (auto &[name, primes] : mlir::v4::getEngramPrimeCopies(module))
    manifest.push_back({name,
                        st::DType::I64,
                        {static_cast<int64_t>(primes.size())},
                        /*optional=*/true});
  std::sort(manifest.begin(), manifest.end(),
            [](const st::ManifestEntry &a, const st::ManifestEntry &b) {
              return a.name < b.name;
            });
  return manifest;
}

/// The checkpoint's copy of `name` against `values` (V4-SPEC 8.4): "" or
/// the first difference, naming the tensor and `rule`.
static std::string compareCopy(const st::Reader &reader,
                               const std::string &name,
                               const std::vector<int64_t> &values,
                               const std::string &rule) {
  std::vector<int64_t> stored(values.size());
  st::Status s =
      reader.copyTensor(name, stored.data(), stored.size() * sizeof(int64_t));
  if (!s.ok())
    return "\n  unreadable: " + name + ": " + s.message();
  for (size_t i = 0; i < values.size(); ++i)
    if (stored[i] != values[i])
      return "\n  wrong value: " + name + " element " + std::to_string(i) +
             " is " + std::to_string(stored[i]) + ", but " + rule + " gives " +
             std::to_string(values[i]) +
             " (a stored copy must equal the computed values, or be left out)";
  return "";
}

//===----------------------------------------------------------------------===//
// Check
//===----------------------------------------------------------------------===//

llvm::Error checkCheckpoint(ModuleOp module, llvm::StringRef checkpointPath) {
  auto manifest = collectManifest(module);
  if (!manifest)
    return manifest.takeError();
  auto reader = st::Reader::open(checkpointPath.str());
  if (!reader)
    return fromStatus(reader.status());
  std::vector<st::ManifestMismatch> mismatches =
      st::compareManifest(reader->tensors(), *manifest);
  if (mismatches.empty()) {
    // Stored copies of the derived Engram constants (V4-SPEC 8.4).
    std::string wrong;
    for (auto &[name, rule] : mlir::v4::getEngramMultiplierRules(module))
      if (const st::TensorInfo *t = reader->find(name))
        wrong += compareCopy(
            *reader, name,
            ::v4::numpy::engramMultipliers(rule.seed, rule.bound,
                                           static_cast<size_t>(t->numElements)),
            ::v4::numpy::describeEngramMultiplierRule(rule.seed, rule.bound));
    for (auto &[name, primes] : mlir::v4::getEngramPrimeCopies(module))
      if (reader->find(name))
        wrong +=
            compareCopy(*reader, name, primes, ::v4::numpy::engramPrimeRule());
    if (wrong.empty())
      return llvm::Error::success();
    return rejected("checkpoint '" + checkpointPath +
                    "' does not match the module:" + wrong);
  }
  std::string message;
  llvm::raw_string_ostream os(message);
  os << "checkpoint '" << checkpointPath << "' does not match the module ("
     << mismatches.size() << (mismatches.size() == 1 ? " problem" : " problems")
     << "):";
  for (const auto &m : mismatches) {
    switch (m.kind) {
    case st::ManifestMismatch::Missing:
      os << "\n  missing: " << m.name;
      break;
    case st::ManifestMismatch::Unexpected:
      os << "\n  unexpected: " << m.name;
      break;
    case st::ManifestMismatch::WrongDType:
      os << "\n  wrong dtype: " << m.name << ": " << m.detail;
      break;
    case st::ManifestMismatch::WrongShape:
      os << "\n  wrong shape: " << m.name << ": " << m.detail;
      break;
    }
  }
  return llvm::make_error<CheckpointError>(CheckpointError::Rejected, os.str(),
                                           std::move(mismatches));
}

//===----------------------------------------------------------------------===//
// Generation
//===----------------------------------------------------------------------===//

namespace {

/// Portable random numbers: mt19937_64 (its sequence is fixed by the C++
/// standard) with hand-written distributions: a recipe::drawValue Source.
class Rng {
public:
  explicit Rng(uint64_t seed) : engine(seed) {}
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return double(engine() >> 11) * 0x1p-53; }
  /// Uniform integer in [0, n), unbiased (rejection sampling).
  uint64_t below(uint64_t n) { return recipe::below(engine, n); }
  /// Standard normal (approximately): Irwin-Hall sum of 12 uniforms minus 6.
  /// Only IEEE additions, so the values are identical on every platform;
  /// bounded by +-6, so never infinite.
  double normal() {
    double sum = 0;
    for (int i = 0; i < 12; ++i)
      sum += uniform();
    return sum - 6.0;
  }

private:
  std::mt19937_64 engine;
};

int64_t numElements(llvm::ArrayRef<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

/// The float values of one tensor before quantisation (the recipe's init
/// rule, drawn in element order from one stream).
std::vector<float> drawValues(Rng &rng, llvm::StringRef name,
                              llvm::ArrayRef<int64_t> shape) {
  int64_t n = numElements(shape);
  std::vector<float> v(static_cast<size_t>(n));
  recipe::Init init = recipe::initFor(name, shape.size());
  double std1 = recipe::matrixStd({shape.begin(), shape.end()});
  for (auto &x : v)
    x = recipe::drawValue(init, std1, rng);
  return v;
}

struct OwnedTensor {
  std::string name;
  st::DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

template <typename T> void appendRaw(std::vector<uint8_t> &out, T value) {
  uint8_t raw[sizeof(T)];
  std::memcpy(raw, &value, sizeof(T)); // little-endian hosts only
  out.insert(out.end(), raw, raw + sizeof(T));
}

} // namespace

llvm::Error generateCheckpoint(ModuleOp module, uint64_t seed,
                               llvm::StringRef outDir, int64_t maxShardBytes,
                               DerivedCopies copies) {
  auto paramsOr = collectParams(module);
  if (!paramsOr)
    return paramsOr.takeError();
  std::vector<LogicalParam> &params = *paramsOr;
  std::map<std::string, const LogicalParam *> byName;
  for (auto &p : params)
    byName[p.name] = &p;

  // The generator holds the checkpoint in memory (with its random draws):
  // refuse one that cannot fit before allocating any of it (vocab_size 2^31
  // used to abort with LLVM's out-of-memory handler). Sizes overflow-checked.
  uint64_t needBytes = 0;
  for (auto &p : params) {
    uint64_t elements = 1;
    for (int64_t d : p.entry.shape)
      if (d < 0 || __builtin_mul_overflow(elements, uint64_t(d), &elements))
        return rejected("parameter '" + p.name + "': its size overflows");
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(
            elements, uint64_t(::v4::dtypeBits(p.entry.dtype)), &bytes) ||
        __builtin_add_overflow(needBytes, bytes / 8, &needBytes))
      return rejected("parameter '" + p.name + "': its size overflows");
  }
  uint64_t memory =
      uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGE_SIZE));
  if (needBytes > memory / 2)
    return rejected("the checkpoint of this model is " +
                    llvm::Twine(needBytes) +
                    " bytes; v4-gen-checkpoint builds it in memory and this "
                    "machine has " +
                    llvm::Twine(memory) +
                    " bytes (at most half are used): generate a smaller "
                    "config (vocab_size, hidden_size, layers, experts)");

  // V_c for the Engram multipliers: the token map's entries (identity map).
  int64_t vc = 1;
  for (auto &p : params)
    if (recipe::isTokenMap(p.name))
      vc = std::max(vc, numElements(p.shape));

  // Scales written together with their weight.
  std::map<std::string, std::vector<uint8_t>> scaleBytes;
  std::vector<OwnedTensor> out;
  out.reserve(params.size());
  std::map<std::string, mlir::v4::EngramMultiplierRule> derived =
      mlir::v4::getEngramMultiplierRules(module);

  for (auto &p : params) {
    llvm::StringRef name = p.name;
    auto rule = derived.find(p.name);
    if (rule != derived.end() && copies == DerivedCopies::None)
      continue;
    OwnedTensor t{p.name, p.entry.dtype, p.entry.shape, {}};
    Rng rng(recipe::tensorSeed(seed, name));
    int64_t n = numElements(p.shape);
    Type et = p.elementType;

    if (isa<Float8E8M0FNUType>(et)) {
      // Filled by its weight below when there is one; scale 1 otherwise.
      out.push_back(std::move(t));
      continue;
    }

    if (et.isInteger(64) || et.isInteger(32)) {
      std::vector<int64_t> values(size_t(n), 0);
      if (recipe::isTid2eid(name)) {
        if (p.shape.size() != 2)
          return rejected("'" + name + "' must be [vocab, k]");
        std::string gate = recipe::tid2eidGate(name);
        auto g = byName.find(gate);
        if (g == byName.end() || g->second->shape.empty())
          return rejected("'" + name + "': no gate weight '" + gate +
                          "' gives the expert count");
        int64_t experts = g->second->shape[0], k = p.shape[1];
        if (k > experts)
          return rejected("'" + name + "': " + llvm::Twine(k) +
                          " distinct experts per row but only " +
                          llvm::Twine(experts) + " experts");
        std::vector<int64_t> perm;
        for (int64_t row = 0; row < p.shape[0]; ++row)
          recipe::drawTid2eidRow(
              experts, k, [&](uint64_t bound) { return rng.below(bound); },
              perm, &values[size_t(row * k)]);
      } else if (recipe::isTokenMap(name)) {
        for (int64_t i = 0; i < n; ++i)
          values[i] = i;
      } else if (rule != derived.end()) {
        values = ::v4::numpy::engramMultipliers(rule->second.seed,
                                                rule->second.bound, size_t(n));
      } else if (recipe::isHashMultipliers(name)) {
        for (auto &m : values)
          m = recipe::drawMultiplier(
              vc, [&](uint64_t bound) { return rng.below(bound); });
      }
      for (int64_t v : values) {
        if (et.isInteger(64))
          appendRaw<int64_t>(t.bytes, v);
        else
          appendRaw<int32_t>(t.bytes, int32_t(v));
      }
      out.push_back(std::move(t));
      continue;
    }

    std::vector<float> values = drawValues(rng, name, p.shape);
    if (et.isF32() || et.isBF16()) {
      recipe::Format format =
          et.isF32() ? recipe::Format::F32 : recipe::Format::BF16;
      t.bytes.resize(size_t(n) * (et.isF32() ? 4 : 2));
      recipe::storeFloats(format, values.data(), n, t.bytes.data());
    } else if (isa<Float8E4M3FNType, Float4E2M1FNType>(et)) {
      bool fp4 = isa<Float4E2M1FNType>(et);
      // Pair with NAME.scale when the module has it.
      std::string scaleName = recipe::scaleNameFor(name);
      auto s = byName.find(scaleName);
      bool hasScale =
          s != byName.end() && isa<Float8E8M0FNUType>(s->second->elementType);
      std::optional<recipe::Blocking> blocking = recipe::weightBlocking(
          p.shape, hasScale ? &s->second->shape : nullptr);
      if (!blocking)
        return rejected(
            "scale '" + scaleName + "' " + shapeString(s->second->shape) +
            " does not block weight '" + name + "' " + shapeString(p.shape) +
            " in 128, 32 or 1 element blocks");
      std::vector<uint8_t> scales(
          static_cast<size_t>(hasScale ? blocking->scaleCount() : 0));
      t.bytes.resize(size_t(fp4 ? n / 2 : n));
      recipe::quantizeWeight(fp4 ? recipe::Format::FP4 : recipe::Format::FP8,
                             values.data(), blocking->rows, *blocking, hasScale,
                             t.bytes.data(), scales.data());
      if (hasScale)
        scaleBytes[scaleName] = std::move(scales);
    } else {
      return rejected("parameter '" + name + "': cannot generate " +
                      typeString(et));
    }
    out.push_back(std::move(t));
  }

  if (copies == DerivedCopies::All)
    for (auto &[name, primes] : mlir::v4::getEngramPrimeCopies(module)) {
      OwnedTensor t{name, st::DType::I64, {int64_t(primes.size())}, {}};
      for (int64_t v : primes)
        appendRaw<int64_t>(t.bytes, v);
      out.push_back(std::move(t));
    }

  // Fill the scales.
  for (auto &t : out) {
    if (t.dtype != st::DType::F8E8M0)
      continue;
    auto it = scaleBytes.find(t.name);
    if (it != scaleBytes.end())
      t.bytes = std::move(it->second);
    else
      t.bytes.assign(size_t(numElements(t.shape)), recipe::kUnitScaleCode);
  }

  std::vector<st::TensorData> tensors;
  uint64_t total = 0;
  for (auto &t : out) {
    tensors.push_back(
        {t.name, t.dtype, t.shape, t.bytes.data(), t.bytes.size()});
    total += t.bytes.size();
  }

  if (std::error_code ec = llvm::sys::fs::create_directories(outDir))
    return llvm::make_error<CheckpointError>(
        CheckpointError::IO,
        ("cannot create directory '" + outDir + "': " + ec.message()).str());

  st::WriteOptions options;
  options.metadata = {{"format", "pt"},
                      {"generator", "v4-gen-checkpoint"},
                      {"seed", std::to_string(seed)}};
  llvm::SmallString<256> single(outDir), index(outDir);
  llvm::sys::path::append(single, "model.safetensors");
  llvm::sys::path::append(index, st::kIndexFileName);
  st::Status status;
  if (maxShardBytes > 0 && total > uint64_t(maxShardBytes) &&
      tensors.size() > 1) {
    uint64_t shards =
        (total + uint64_t(maxShardBytes) - 1) / uint64_t(maxShardBytes);
    shards = std::min<uint64_t>(shards, tensors.size());
    status = st::writeSharded(outDir.str(), tensors, unsigned(shards), options);
    if (status.ok())
      llvm::sys::fs::remove(single); // no stale single file beside the index
  } else {
    status = st::writeFile(single.str().str(), tensors, options);
    if (status.ok())
      llvm::sys::fs::remove(index); // no stale index beside the single file
  }
  if (!status.ok())
    return fromStatus(status);
  return llvm::Error::success();
}

} // namespace v4
