//===- SyntheticWeights.cpp - deterministic weights without a checkpoint --===//
#include "runtime/src/SyntheticWeights.h"

#include "runtime/base/NumpyRandom.h"
#include "runtime/numerics/WeightRecipe.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <type_traits>

namespace v4::rt {

namespace art = v4::artifact;

namespace {

/// Elements per work item of the float tensors and bands.
constexpr int64_t kGrain = int64_t(1) << 16;

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t elementsOf(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d; // the artifact has checked the product (AF-12)
  return n;
}

/// Calls fn(i) for every i in [0, n) on `pool`.
template <typename Fn> void parallelFor(ThreadPool &pool, uint64_t n, Fn &fn) {
  using F = std::remove_reference_t<Fn>;
  pool.run(
      n, [](void *context, uint64_t i) { (*static_cast<F *>(context))(i); },
      &fn);
}

Status noRule(const std::string &source, const std::string &what) {
  return Status::error(StatusCode::Incompatible, "RT-9",
                       source + ": synthetic weights: " + what);
}

/// What to do with one tensor.
enum class Kind {
  Floats,      // bf16, f32
  Weight,      // FP8 / FP4 codes, with their scale when `scale` >= 0
  LoneScale,   // an e8m0 tensor no weight fills: scale 1
  PairedScale, // filled with its weight
  Table        // i32, i64
};

struct Plan {
  Kind kind = Kind::Floats;
  recipe::Format format = recipe::Format::F32;
  /// Weight: the index of its scale tensor, or -1.
  int64_t scale = -1;
  recipe::Blocking blocking;
  std::vector<int64_t> logical; // logical shape (FP4: full K)
  /// Integer tables: the expert count of a tid2eid table (0: not one).
  int64_t experts = 0;
};

/// Host memory for one tensor: the sink's, or a staging vector uploaded
/// afterwards.
struct Target {
  uint8_t *data = nullptr;
  std::unique_ptr<uint8_t[]> staging;

  static Target of(const SyntheticTensor &t, const SyntheticSink &sink) {
    Target target;
    // A slice is generated whole, then the rank's part is gathered.
    target.data = sink.hostMemory && !t.slice ? sink.hostMemory(t) : nullptr;
    if (!target.data) {
      target.staging.reset(new uint8_t[std::max<size_t>(t.bytes, 1)]);
      target.data = target.staging.get();
    }
    return target;
  }
  Status finish(const SyntheticTensor &t, const SyntheticSink &sink) {
    if (!t.slice)
      return staging ? sink.upload(t, staging.get()) : Status::success();
    SyntheticTensor part = t;
    part.shape = t.slice->shape;
    part.bytes = size_t(elementsOf(part.shape)) * dtypeBits(t.dtype) / 8;
    if (uint8_t *host = sink.hostMemory ? sink.hostMemory(part) : nullptr) {
      art::gatherSlice(*t.slice, t.rank, staging.get(), host);
      return Status::success();
    }
    std::vector<uint8_t> bytes(part.bytes);
    art::gatherSlice(*t.slice, t.rank, staging.get(), bytes.data());
    return sink.upload(part, bytes.data());
  }
};

template <typename T>
void storeInts(const std::vector<int64_t> &v, uint8_t *out) {
  for (size_t i = 0; i < v.size(); ++i) {
    T x = static_cast<T>(v[i]);
    std::memcpy(out + i * sizeof(T), &x, sizeof(T));
  }
}

} // namespace

Expected<std::vector<SyntheticTensor>> syntheticTensors(const art::Artifact &a,
                                                        uint32_t rank) {
  std::vector<SyntheticTensor> out;
  for (const art::Parameter &p : a.parameters()) {
    const art::Buffer *buf = a.findBuffer(p.buffer);
    if (!buf)
      return Status::error(StatusCode::Internal, "RT-7",
                           a.source() + ": parameter '" + p.name +
                               "' has no buffer");
    uint64_t total = a.bufferBytes(*buf, a.bounds().maxChunk);
    size_t at = p.name.find("{}");
    uint64_t bits = dtypeBits(p.dtype);
    if (at == std::string::npos) {
      uint64_t bytes = uint64_t(elementsOf(p.shape)) * bits / 8;
      if (bytes != total)
        return Status::error(StatusCode::Internal, "RT-7",
                             a.source() + ": parameter '" + p.name +
                                 "' does not fill its buffer");
      if (p.sliceDim >= 0) {
        // The whole checkpoint tensor, so that every rank's slice has the
        // values of one rank's tensor.
        std::vector<int64_t> whole = art::checkpointShape(p);
        out.push_back({p.name, p.dtype, whole, p.buffer, 0,
                       size_t(uint64_t(elementsOf(whole)) * bits / 8), p,
                       rank});
        continue;
      }
      out.push_back({p.name, p.dtype, p.shape, p.buffer, 0, size_t(bytes),
                     std::nullopt, rank});
      continue;
    }
    int64_t count = p.shape.empty() ? 0 : p.shape[0];
    std::vector<int64_t> shape(p.shape.begin() + (p.shape.empty() ? 0 : 1),
                               p.shape.end());
    uint64_t each = uint64_t(elementsOf(shape)) * bits / 8;
    if (count > 0 && each * uint64_t(count) != total)
      return Status::error(StatusCode::Internal, "RT-7",
                           a.source() + ": parameter stack '" + p.name +
                               "' does not fill its buffer");
    if (p.sliceDim >= 0) {
      // Every member whole, then the rank's slice of it.
      for (int64_t e = 0; e < count; ++e) {
        art::Parameter m = art::stackMemberSlice(p, e);
        std::vector<int64_t> whole = art::checkpointShape(m);
        size_t bytes = size_t(uint64_t(elementsOf(whole)) * bits / 8);
        std::string name = m.name;
        out.push_back({std::move(name), p.dtype, std::move(whole), p.buffer,
                       size_t(e) * size_t(each), bytes, std::move(m), rank});
      }
      continue;
    }
    // A shard's padding (no name) stays the zeros of its allocation.
    for (int64_t e = 0; e < count; ++e)
      if (std::optional<std::string> name = art::stackMemberName(p, e, rank))
        out.push_back({*name, p.dtype, shape, p.buffer,
                       size_t(e) * size_t(each), size_t(each), std::nullopt,
                       rank});
  }
  return out;
}

Status generateSyntheticWeights(const art::Artifact &a, uint64_t seed,
                                ThreadPool &pool, const SyntheticSink &sink,
                                uint32_t rank) {
  auto listed = syntheticTensors(a, rank);
  if (!listed)
    return listed.status();
  const std::vector<SyntheticTensor> &tensors = *listed;
  std::map<std::string, size_t> byName;
  for (size_t i = 0; i < tensors.size(); ++i)
    byName.emplace(tensors[i].name, i);
  std::map<std::string, const art::Parameter *> derived;
  for (const art::Parameter &p : a.parameters())
    if (p.derived.rule != art::DerivedRule::None)
      derived.emplace(p.name, &p);
  // V_c of stored (not derived) multipliers: the token map's entries.
  int64_t vc = 1;
  for (const SyntheticTensor &t : tensors)
    if (recipe::isTokenMap(t.name))
      vc = std::max(vc, elementsOf(t.shape));

  // Plan every tensor first: each RT-9 error before any byte is written.
  std::vector<Plan> plans(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const SyntheticTensor &t = tensors[i];
    Plan &plan = plans[i];
    std::string what = "parameter '" + t.name + "' (" + dtypeName(t.dtype) +
                       " " + shapeText(t.shape) + ")";
    switch (t.dtype) {
    case DType::F32:
    case DType::BF16:
      plan.kind = Kind::Floats;
      plan.format =
          t.dtype == DType::F32 ? recipe::Format::F32 : recipe::Format::BF16;
      plan.logical = t.shape;
      break;
    case DType::F8E8M0:
      plan.kind = Kind::LoneScale; // PairedScale when a weight claims it
      break;
    case DType::F8E4M3:
    case DType::F4E2M1:
    case DType::I8: {
      plan.kind = Kind::Weight;
      plan.logical = t.shape;
      if (t.dtype == DType::F8E4M3) {
        plan.format = recipe::Format::FP8;
      } else {
        plan.format = recipe::Format::FP4;
        if (t.dtype == DType::I8 && !t.shape.empty())
          plan.logical.back() *= 2; // packed e2m1, two codes per byte
        if (plan.logical.empty() || plan.logical.back() % 2 != 0)
          return noRule(a.source(), what +
                                        " is packed FP4 and needs an even last "
                                        "dimension");
      }
      std::string scaleName = recipe::scaleNameFor(t.name);
      auto s = byName.find(scaleName);
      bool hasScale =
          s != byName.end() && tensors[s->second].dtype == DType::F8E8M0;
      auto blocking = recipe::weightBlocking(
          plan.logical, hasScale ? &tensors[s->second].shape : nullptr);
      if (!blocking)
        return noRule(a.source(), "scale '" + scaleName + "' " +
                                      shapeText(tensors[s->second].shape) +
                                      " does not block " + what + " (logical " +
                                      shapeText(plan.logical) +
                                      ") in 128, 32 or 1 element blocks");
      plan.blocking = *blocking;
      if (hasScale)
        plan.scale = int64_t(s->second);
      break;
    }
    case DType::I64:
    case DType::I32:
      plan.kind = Kind::Table;
      if (recipe::isTid2eid(t.name) && !derived.count(t.name)) {
        std::string gate = recipe::tid2eidGate(t.name);
        auto g = byName.find(gate);
        if (t.shape.size() != 2)
          return noRule(a.source(), what + " is a tid2eid table and must be "
                                           "[vocab, k]");
        if (g == byName.end() || tensors[g->second].shape.empty())
          return noRule(a.source(), what + ": no gate weight '" + gate +
                                        "' gives the expert count");
        plan.experts = tensors[g->second].shape[0];
        if (t.shape[1] > plan.experts)
          return noRule(a.source(), what + ": " + std::to_string(t.shape[1]) +
                                        " distinct experts per row but only " +
                                        std::to_string(plan.experts) +
                                        " experts");
      }
      break;
    default:
      return noRule(a.source(), what + ": no synthetic rule for dtype " +
                                    dtypeName(t.dtype) +
                                    " (bf16, f32, f8e4m3, f8e8m0, packed "
                                    "e2m1, i32, i64)");
    }
  }
  for (const Plan &plan : plans)
    if (plan.kind == Kind::Weight && plan.scale >= 0)
      plans[size_t(plan.scale)].kind = Kind::PairedScale;

  for (size_t i = 0; i < tensors.size(); ++i) {
    const SyntheticTensor &t = tensors[i];
    const Plan &plan = plans[i];
    if (plan.kind == Kind::PairedScale)
      continue; // with its weight
    uint64_t key = recipe::tensorSeed(seed, t.name);
    Target target = Target::of(t, sink);
    uint8_t *out = target.data;
    int64_t n = elementsOf(plan.logical.empty() ? t.shape : plan.logical);

    if (plan.kind == Kind::LoneScale) {
      std::memset(out, recipe::kUnitScaleCode, t.bytes);
    } else if (plan.kind == Kind::Floats) {
      recipe::Init init = recipe::initFor(t.name, plan.logical.size());
      double std1 = recipe::matrixStd(plan.logical);
      size_t width = plan.format == recipe::Format::F32 ? 4 : 2;
      auto item = [&](uint64_t c) {
        int64_t begin = int64_t(c) * kGrain;
        int64_t end = std::min(n, begin + kGrain);
        std::vector<float> values(size_t(end - begin));
        for (int64_t j = begin; j < end; ++j) {
          recipe::CounterSource src(key, uint64_t(j));
          values[j - begin] = recipe::drawValue(init, std1, src);
        }
        recipe::storeFloats(plan.format, values.data(), end - begin,
                            out + size_t(begin) * width);
      };
      parallelFor(pool, uint64_t((n + kGrain - 1) / kGrain), item);
    } else if (plan.kind == Kind::Weight) {
      const recipe::Blocking &b = plan.blocking;
      bool hasScale = plan.scale >= 0;
      const SyntheticTensor *scaleTensor =
          hasScale ? &tensors[size_t(plan.scale)] : nullptr;
      Target scaleTarget;
      if (hasScale)
        scaleTarget = Target::of(*scaleTensor, sink);
      bool fp4 = plan.format == recipe::Format::FP4;
      // Bands of whole block rows (any rows when the codes stand alone).
      int64_t unit = hasScale ? b.blockRows : 1;
      int64_t band =
          unit *
          std::max<int64_t>(1, kGrain / std::max<int64_t>(unit * b.cols, 1));
      recipe::Init init = recipe::initFor(t.name, plan.logical.size());
      double std1 = recipe::matrixStd(plan.logical);
      uint8_t *scales = hasScale ? scaleTarget.data : nullptr;
      auto item = [&](uint64_t index) {
        int64_t r0 = int64_t(index) * band;
        int64_t r1 = std::min(b.rows, r0 + band);
        std::vector<float> values(size_t((r1 - r0) * b.cols));
        for (int64_t j = r0 * b.cols; j < r1 * b.cols; ++j) {
          recipe::CounterSource src(key, uint64_t(j));
          values[size_t(j - r0 * b.cols)] = recipe::drawValue(init, std1, src);
        }
        size_t codeAt = size_t(r0 * b.cols) / (fp4 ? 2 : 1);
        recipe::quantizeWeight(
            plan.format, values.data(), r1 - r0, b, hasScale, out + codeAt,
            scales ? scales + size_t((r0 / b.blockRows) * b.blockColCount())
                   : nullptr);
      };
      parallelFor(pool, uint64_t((b.rows + band - 1) / band), item);
      if (hasScale)
        if (Status s = scaleTarget.finish(*scaleTensor, sink); !s)
          return s;
    } else if (plan.kind == Kind::Table) {
      std::vector<int64_t> values(size_t(n), 0);
      auto d = derived.find(t.name);
      if (d != derived.end()) {
        values = numpy::engramMultipliers(d->second->derived.seed,
                                          d->second->derived.bound, size_t(n));
      } else if (plan.experts > 0) {
        int64_t k = t.shape[1];
        auto item = [&](uint64_t row) {
          recipe::CounterSource src(key, row);
          std::vector<int64_t> perm;
          recipe::drawTid2eidRow(
              plan.experts, k, [&](uint64_t bound) { return src.below(bound); },
              perm, &values[size_t(row) * size_t(k)]);
        };
        parallelFor(pool, uint64_t(t.shape[0]), item);
      } else if (recipe::isTokenMap(t.name)) {
        for (int64_t j = 0; j < n; ++j)
          values[size_t(j)] = j;
      } else if (recipe::isHashMultipliers(t.name)) {
        for (int64_t j = 0; j < n; ++j) {
          recipe::CounterSource src(key, uint64_t(j));
          values[size_t(j)] = recipe::drawMultiplier(
              vc, [&](uint64_t bound) { return src.below(bound); });
        }
      }
      if (t.dtype == DType::I64)
        storeInts<int64_t>(values, out);
      else
        storeInts<int32_t>(values, out);
    }
    if (Status s = target.finish(t, sink); !s)
      return s;
  }
  return Status::success();
}

} // namespace v4::rt
