//===- Model.cpp - plain C++ reference of the whole V4 model --------------===//
#include "reference/Model.h"

#include "runtime/base/NumpyRandom.h"
#include "runtime/numerics/Numerics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

namespace v4::ref {

namespace st = ::v4::safetensors;
namespace qn = ::v4::quant;

namespace {

[[noreturn]] void fatal(const std::string &msg) {
  std::fprintf(stderr, "v4reference: %s\n", msg.c_str());
  std::abort();
}

//===----------------------------------------------------------------------===//
// Weight loading
//===----------------------------------------------------------------------===//

struct Loader {
  const st::Reader &reader;
  int64_t blockSize;
  std::string error;

  const st::TensorInfo *info(const std::string &name) {
    const st::TensorInfo *t = reader.find(name);
    if (!t && error.empty())
      error = "missing tensor '" + name + "'";
    return t;
  }
  bool has(const std::string &name) const { return reader.find(name); }

  const uint8_t *bytes(const std::string &name, const st::TensorInfo **out) {
    const st::TensorInfo *t = info(name);
    *out = t;
    if (!t)
      return nullptr;
    auto span = reader.data(name);
    if (!span) {
      if (error.empty())
        error = span.status().message();
      return nullptr;
    }
    return span->data;
  }

  Vec floats(const std::string &name) {
    const st::TensorInfo *t;
    const uint8_t *p = bytes(name, &t);
    if (!p)
      return {};
    Vec out(size_t(t->numElements));
    for (size_t i = 0; i < out.size(); ++i) {
      switch (t->dtype) {
      case st::DType::F32:
        std::memcpy(&out[i], p + 4 * i, 4);
        break;
      case st::DType::BF16: {
        uint16_t b;
        std::memcpy(&b, p + 2 * i, 2);
        out[i] = qn::decodeBF16(b);
        break;
      }
      case st::DType::F8E4M3:
        out[i] = qn::decodeE4M3(p[i]);
        break;
      case st::DType::F8E8M0:
        out[i] = float(qn::decodeE8M0(p[i]));
        break;
      default:
        if (error.empty())
          error = "tensor '" + name + "': unexpected dtype " +
                  st::safetensorsDTypeName(t->dtype);
        return {};
      }
    }
    return out;
  }

  std::vector<int64_t> ints(const std::string &name) {
    const st::TensorInfo *t;
    const uint8_t *p = bytes(name, &t);
    if (!p)
      return {};
    std::vector<int64_t> out(size_t(t->numElements));
    for (size_t i = 0; i < out.size(); ++i) {
      if (t->dtype == st::DType::I64) {
        std::memcpy(&out[i], p + 8 * i, 8);
      } else if (t->dtype == st::DType::I32) {
        int32_t v;
        std::memcpy(&v, p + 4 * i, 4);
        out[i] = v;
      } else {
        if (error.empty())
          error = "tensor '" + name + "': expected an integer dtype";
        return {};
      }
    }
    return out;
  }

  static int64_t blockFor(int64_t n, int64_t s, int64_t big) {
    for (int64_t b : {int64_t(1), int64_t(32), big})
      if ((n + b - 1) / b == s)
        return b;
    return -1;
  }

  /// PREFIX.weight (+ PREFIX.scale) as a linear weight.
  Weight weight(const std::string &prefix) {
    Weight w;
    std::string name = prefix + ".weight";
    const st::TensorInfo *t;
    const uint8_t *p = bytes(name, &t);
    if (!p)
      return w;
    if (t->shape.size() != 2) {
      error = "tensor '" + name + "' is not a matrix";
      return w;
    }
    w.rows = t->shape[0];
    w.cols = t->shape[1];
    switch (t->dtype) {
    case st::DType::F8E4M3:
      w.kind = Weight::FP8;
      w.q = floats(name);
      break;
    case st::DType::I8:
    case st::DType::U8:
    case st::DType::F4E2M1:
      w.kind = Weight::FP4;
      if (t->dtype != st::DType::F4E2M1)
        w.cols *= 2; // two e2m1 per byte, low nibble first
      w.q.resize(size_t(w.rows * w.cols));
      for (int64_t i = 0; i < w.rows * w.cols / 2; ++i) {
        w.q[size_t(2 * i)] = qn::decodeE2M1(p[i] & 0xF);
        w.q[size_t(2 * i + 1)] = qn::decodeE2M1(p[i] >> 4);
      }
      break;
    case st::DType::BF16:
      w.kind = Weight::BF16;
      w.q = floats(name);
      break;
    case st::DType::F32:
      w.kind = Weight::F32;
      w.q = floats(name);
      break;
    default:
      error = "tensor '" + name + "': unsupported weight dtype";
      return w;
    }
    std::string sname = prefix + ".scale";
    if ((w.kind == Weight::FP8 || w.kind == Weight::FP4) && has(sname)) {
      const st::TensorInfo *s = info(sname);
      w.scale = floats(sname);
      if (s->shape.size() != 2 ||
          (w.br = blockFor(w.rows, s->shape[0], blockSize)) < 0 ||
          (w.bc = blockFor(w.cols, s->shape[1], blockSize)) < 0)
        error = "scale '" + sname + "' does not block '" + name + "'";
    } else {
      w.br = w.rows ? w.rows : 1;
      w.bc = w.cols ? w.cols : 1;
    }
    return w;
  }
};

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

template <typename T> struct AttnW {
  int64_t ratio = 0;
  BasicRopeTable<T> rope;
  Weight wqA, wqB, wkv, woB;
  Vec woA; // bf16 values [G*oLora, H*D/G]
  Vec qNorm, kvNorm, sink;
  bool hasComp = false, hasIndexer = false;
  CompressorParams comp, icomp;
  Weight iwqB, iwProj;
};

struct FfnW {
  Weight gate; // fp32 matmul
  Vec bias;
  std::vector<int64_t> tid2eid;
  std::vector<ExpertWeights> experts;
  ExpertWeights shared;
};

struct EngramW {
  Vec tableQ, tableS;
  Weight wkv;
  Vec qW, kW;
  std::vector<int64_t> mult;
  std::vector<int64_t> primes;
};

template <typename T> struct BlockW {
  int64_t id = 0;
  Vec hcAttnFn, hcAttnBase, hcAttnScale, hcFfnFn, hcFfnBase, hcFfnScale;
  Vec attnNorm, ffnNorm;
  AttnW<T> attn;
  FfnW ffn;
  bool hash = false;
  std::optional<EngramW> engram;
};

template <typename T> struct MtpW {
  BlockW<T> block;
  Weight eProj, hProj;
  Vec enorm, hnorm, norm, hcFn, hcBase, hcScale;
};

} // namespace

/// The numerics-independent face of the model; ModelImpl<N> below is the
/// model in one numerics.
struct Model::Impl {
  Config cfg;
  Options opt;
  virtual ~Impl() = default;
  /// Reads every weight; returns an error message or "".
  virtual std::string load(const st::Reader &reader) = 0;
  virtual std::vector<SequenceState> newState(int64_t batch) const = 0;
  /// Runs one sequence's chunk; writes its logits at r.logits[at...] (and
  /// MTP, lanes at the same row).
  virtual void forwardSequence(SequenceState &s,
                               const std::vector<int64_t> &ids,
                               const std::vector<int64_t> *next,
                               int64_t startPos, ForwardResult &r,
                               size_t at) const = 0;
};

namespace {

/// The model in numerics Num (Ops.h): weights (floats, exact) and the
/// forward pass on values of type Num::T.
template <typename Num> struct ModelImpl final : Model::Impl {
  using Val = typename Num::T;
  using O = Ops<Num>;
  using V = std::vector<Val>;
  using LS = BasicLayerState<Val>;

  Vec embed, head, norm, hcHeadFn, hcHeadBase, hcHeadScale;
  std::vector<int64_t> tokenMap;
  std::vector<BlockW<Val>> blocks;
  std::vector<MtpW<Val>> mtp;

  // Loading.
  void loadCompressor(Loader &ld, const std::string &p, int64_t c, int64_t r,
                      CompressorParams &cp) {
    cp.c = c;
    cp.r = r;
    cp.overlap = r == 4;
    cp.d = cfg.dim;
    cp.wkv = ld.floats(p + ".wkv.weight");
    cp.wgate = ld.floats(p + ".wgate.weight");
    cp.ape = ld.floats(p + ".ape");
    cp.norm = ld.floats(p + ".norm.weight");
  }

  void loadBlock(Loader &ld, const std::string &p, int64_t id, BlockW<Val> &b) {
    b.id = id;
    b.hcAttnFn = ld.floats(p + ".hc_attn_fn");
    b.hcAttnBase = ld.floats(p + ".hc_attn_base");
    b.hcAttnScale = ld.floats(p + ".hc_attn_scale");
    b.hcFfnFn = ld.floats(p + ".hc_ffn_fn");
    b.hcFfnBase = ld.floats(p + ".hc_ffn_base");
    b.hcFfnScale = ld.floats(p + ".hc_ffn_scale");
    b.attnNorm = ld.floats(p + ".attn_norm.weight");
    b.ffnNorm = ld.floats(p + ".ffn_norm.weight");
    AttnW<Val> &a = b.attn;
    a.ratio = cfg.ratios[size_t(id)];
    if (a.ratio == 0)
      a.rope = O::makeRopeTable(cfg.ropeDim, cfg.ropeTheta, false, 1, 0, 0, 0);
    else
      a.rope = O::makeRopeTable(cfg.ropeDim, cfg.compressRopeTheta,
                                cfg.yarnFactor > 1, cfg.yarnFactor,
                                cfg.yarnOriginal, cfg.betaFast, cfg.betaSlow);
    a.wqA = ld.weight(p + ".attn.wq_a");
    a.wqB = ld.weight(p + ".attn.wq_b");
    a.wkv = ld.weight(p + ".attn.wkv");
    a.woB = ld.weight(p + ".attn.wo_b");
    a.woA = ld.weight(p + ".attn.wo_a").dequant(); // convert.py: to bf16
    if constexpr (Num::kRoundBF16)
      bfInPlace(a.woA.data(), int64_t(a.woA.size()));
    a.qNorm = ld.floats(p + ".attn.q_norm.weight");
    a.kvNorm = ld.floats(p + ".attn.kv_norm.weight");
    a.sink = ld.floats(p + ".attn.attn_sink");
    if (a.ratio != 0) {
      a.hasComp = true;
      loadCompressor(ld, p + ".attn.compressor", cfg.headDim, a.ratio, a.comp);
    }
    if (a.ratio == 4) {
      a.hasIndexer = true;
      a.iwqB = ld.weight(p + ".attn.indexer.wq_b");
      a.iwProj = ld.weight(p + ".attn.indexer.weights_proj");
      loadCompressor(ld, p + ".attn.indexer.compressor", cfg.indexHeadDim, 4,
                     a.icomp);
    }
    FfnW &f = b.ffn;
    f.gate = ld.weight(p + ".ffn.gate");
    f.gate.kind = Weight::F32; // fp32 matmul on the upcast weight
    b.hash = id < cfg.nLayers && id < cfg.nHashLayers;
    if (b.hash)
      f.tid2eid = ld.ints(p + ".ffn.gate.tid2eid");
    else
      f.bias = ld.floats(p + ".ffn.gate.bias");
    f.experts.resize(size_t(cfg.nExperts));
    for (int64_t e = 0; e < cfg.nExperts; ++e) {
      std::string ep = p + ".ffn.experts." + std::to_string(e);
      f.experts[size_t(e)] = {ld.weight(ep + ".w1"), ld.weight(ep + ".w2"),
                              ld.weight(ep + ".w3")};
    }
    std::string sp = p + ".ffn.shared_experts";
    f.shared = {ld.weight(sp + ".w1"), ld.weight(sp + ".w2"),
                ld.weight(sp + ".w3")};
    if (cfg.engram && id < cfg.nLayers) {
      auto &ids = cfg.engram->layerIds;
      auto it = std::find(ids.begin(), ids.end(), id);
      if (it != ids.end()) {
        EngramW e;
        std::string q = p + ".engram";
        e.tableQ = ld.floats(q + ".embed.weight");
        if (ld.has(q + ".embed.scale"))
          e.tableS = ld.floats(q + ".embed.scale");
        else
          e.tableS.assign(e.tableQ.size() /
                              size_t(std::max<int64_t>(1, cfg.engram->De / 32)),
                          1.0f);
        e.wkv = ld.weight(q + ".wkv");
        e.qW = ld.floats(q + ".q_weight");
        e.kW = ld.floats(q + ".k_weight");
        // A V4.1 checkpoint has no multipliers: V4-SPEC 8.4's numpy rule.
        if (ld.has(q + ".multipliers"))
          e.mult = ld.ints(q + ".multipliers");
        else
          e.mult = numpy::engramMultipliers(
              numpy::engramMultiplierSeed(cfg.engram->seed, id),
              numpy::engramMultiplierBound(cfg.engram->compressedVocab),
              size_t(cfg.engram->N));
        e.primes = cfg.engram->primes[size_t(it - ids.begin())];
        b.engram = std::move(e);
      }
    }
  }

  std::string load(const st::Reader &reader) override {
    const Config &c = cfg;
    Loader ld{reader, c.blockSize, {}};
    embed = ld.floats("embed.weight");
    head = ld.floats("head.weight");
    norm = ld.floats("norm.weight");
    hcHeadFn = ld.floats("hc_head_fn");
    hcHeadBase = ld.floats("hc_head_base");
    hcHeadScale = ld.floats("hc_head_scale");
    if (c.engram) {
      if (ld.has("engram.token_map"))
        tokenMap = ld.ints("engram.token_map");
      if (c.engram->primes.size() != c.engram->layerIds.size())
        return "Engram primes missing from the config";
    }
    blocks.resize(size_t(c.nLayers));
    for (int64_t L = 0; L < c.nLayers; ++L)
      loadBlock(ld, "layers." + std::to_string(L), L, blocks[size_t(L)]);
    mtp.resize(size_t(c.nMtp));
    for (int64_t k = 0; k < c.nMtp; ++k) {
      MtpW<Val> &m = mtp[size_t(k)];
      std::string p = "mtp." + std::to_string(k);
      loadBlock(ld, p, c.nLayers + k, m.block);
      m.eProj = ld.weight(p + ".e_proj");
      m.hProj = ld.weight(p + ".h_proj");
      m.enorm = ld.floats(p + ".enorm.weight");
      m.hnorm = ld.floats(p + ".hnorm.weight");
      m.norm = ld.floats(p + ".norm.weight");
      m.hcFn = ld.floats(p + ".hc_head_fn");
      m.hcBase = ld.floats(p + ".hc_head_base");
      m.hcScale = ld.floats(p + ".hc_head_scale");
    }
    if (!ld.error.empty())
      return ld.error;
    if (int64_t(embed.size()) != c.vocab * c.dim ||
        int64_t(head.size()) != c.vocab * c.dim)
      return "embed/head shape does not match the config";
    return "";
  }

  std::vector<SequenceState> newState(int64_t batch) const override {
    const Config &c = cfg;
    std::vector<SequenceState> out(static_cast<size_t>(batch));
    for (auto &s : out) {
      std::vector<LS> layers(size_t(c.nLayers + c.nMtp));
      for (int64_t L = 0; L < c.nLayers + c.nMtp; ++L) {
        const BlockW<Val> &b = L < c.nLayers ? blocks[size_t(L)]
                                             : mtp[size_t(L - c.nLayers)].block;
        LS &ls = layers[size_t(L)];
        ls.ring.assign(size_t(c.window * c.headDim), Val(0));
        if (b.attn.hasComp)
          ls.comp.reset(b.attn.comp);
        if (b.attn.hasIndexer)
          ls.indexComp.reset(b.attn.icomp);
      }
      s.layers = std::move(layers);
      if (c.engram) {
        int64_t pad = c.engram->padId;
        int64_t cpad = tokenMap.empty() ? pad : tokenMap[size_t(pad)];
        s.lookback.assign(size_t(c.engram->N - 1), cpad);
      }
    }
    return out;
  }

  //===--------------------------------------------------------------------===//
  // Forward pieces (one sequence)
  //===--------------------------------------------------------------------===//

  /// Consumes the chunk's tokens x [T, d] with a compressor; appends the
  /// completed entries to `cache`.
  void compress(const CompressorParams &cp, const typename O::Post &pp,
                typename O::State &cs, const V &x, int64_t T, int64_t startPos,
                V &cache) const {
    if (startPos == 0) {
      V e = O::compressorPrefill(cp, pp, x.data(), T, cs);
      cache.assign(e.begin(), e.end());
      return;
    }
    for (int64_t t = 0; t < T; ++t) {
      auto e =
          O::compressorDecode(cp, pp, x.data() + t * cfg.dim, startPos + t, cs);
      if (e)
        cache.insert(cache.end(), e->begin(), e->end());
    }
  }

  void attention(const AttnW<Val> &a, LS &ls, const V &x, int64_t T,
                 int64_t startPos, V &out) const {
    const int64_t d = cfg.dim, H = cfg.nHeads, D = cfg.headDim,
                  rd = cfg.ropeDim, nope = D - rd, W = cfg.window;
    const bool fq = quantizesActivations(opt.fakeQuant),
               fqKV = fakeQuantizesKV(opt.fakeQuant);
    V qr(size_t(T * cfg.qLora)), q(size_t(T * H * D)), kv(size_t(T * D));
    V tmp(size_t(std::max({cfg.qLora, D, d})));
    for (int64_t t = 0; t < T; ++t) {
      const Val *xt = x.data() + t * d;
      int64_t p = startPos + t;
      O::linear(a.wqA, xt, tmp.data(), fq, cfg.blockSize);
      O::rmsNorm(tmp.data(), a.qNorm.data(), cfg.qLora, cfg.normEps,
                 qr.data() + t * cfg.qLora);
      Val *qt = q.data() + t * H * D;
      O::linear(a.wqB, qr.data() + t * cfg.qLora, qt, fq, cfg.blockSize);
      for (int64_t h = 0; h < H; ++h) {
        O::headRmsNormBF16(qt + h * D, D, cfg.normEps);
        O::rope(qt + h * D + nope, a.rope, p);
      }
      O::linear(a.wkv, xt, tmp.data(), fq, cfg.blockSize);
      Val *kt = kv.data() + t * D;
      O::rmsNorm(tmp.data(), a.kvNorm.data(), D, cfg.normEps, kt);
      O::rope(kt + nope, a.rope, p);
      if (fqKV)
        O::fakeQuantFP8(kt, nope, 64);
    }

    // Indexer (CSA): queries, weights, its compressor, then scores.
    const int64_t HI = cfg.indexHeads, DI = cfg.indexHeadDim;
    V qI, wI;
    if (a.hasIndexer) {
      qI.resize(size_t(T * HI * DI));
      wI.resize(size_t(T * HI));
      // model.py: softmax_scale * n_heads ** -0.5, with softmax_scale =
      // index_head_dim ** -0.5 (V4-SPEC 5.5 step 3), in double.
      Val c =
          Val((1.0 / std::sqrt(double(DI))) * (1.0 / std::sqrt(double(HI))));
      for (int64_t t = 0; t < T; ++t) {
        Val *qt = qI.data() + t * HI * DI;
        O::linear(a.iwqB, qr.data() + t * cfg.qLora, qt, fq, cfg.blockSize);
        for (int64_t h = 0; h < HI; ++h) {
          O::rope(qt + h * DI + DI - rd, a.rope, startPos + t);
          O::hadamard(qt + h * DI, DI);
          if (fqKV)
            O::fakeQuantFP4(qt + h * DI, DI, 32);
        }
        Val *wt = wI.data() + t * HI;
        O::linear(a.iwProj, x.data() + t * d, wt, false);
        for (int64_t h = 0; h < HI; ++h)
          wt[h] = O::bf(wt[h] * c);
      }
      typename O::Post pp{&a.rope, cfg.normEps, true, fqKV};
      compress(a.icomp, pp, ls.indexComp, x, T, startPos, ls.indexKeys);
    }
    if (a.hasComp) {
      typename O::Post pp{&a.rope, cfg.normEps, false, fqKV};
      compress(a.comp, pp, ls.comp, x, T, startPos, ls.compressed);
    }

    auto kvAt = [&](int64_t pos) -> const Val * {
      if (pos >= startPos)
        return kv.data() + (pos - startPos) * D;
      return ls.ring.data() + (pos % W) * D;
    };
    const Val scale = Val(1.0 / std::sqrt(double(D)));
    const int64_t G = cfg.oGroups, inG = H * D / G;
    V o(size_t(H * D)), u(size_t(G * cfg.oLora));
    for (int64_t t = 0; t < T; ++t) {
      int64_t p = startPos + t;
      std::vector<const Val *> rows;
      for (int64_t pos : windowList(p, startPos, T, W))
        rows.push_back(pos < 0 ? nullptr : kvAt(pos));
      std::vector<int64_t> comp;
      if (a.hasIndexer) {
        int64_t total = int64_t(ls.indexKeys.size()) / DI;
        V s = O::indexerScores(qI.data() + t * HI * DI, wI.data() + t * HI, HI,
                               DI, ls.indexKeys.data(), total);
        comp = O::indexerTopk(s, (p + 1) / 4, cfg.indexTopk, total);
      } else if (a.hasComp) {
        comp = compressedList(p, startPos, T, a.ratio);
      }
      for (int64_t b : comp)
        rows.push_back(b < 0 ? nullptr : ls.compressed.data() + b * D);
      for (int64_t h = 0; h < H; ++h) {
        O::sinkAttention(q.data() + (t * H + h) * D, rows, D, scale,
                         a.sink[size_t(h)], o.data() + h * D);
        O::rope(o.data() + h * D + nope, a.rope, p, /*inverse=*/true);
      }
      O::groupedLinear(a.woA, G, cfg.oLora, inG, o.data(), u.data());
      O::linear(a.woB, u.data(), out.data() + t * d, fq, cfg.blockSize);
    }
    // Ring write: the last min(T, W) tokens.
    for (int64_t t = std::max<int64_t>(0, T - W); t < T; ++t)
      std::copy(kv.begin() + t * D, kv.begin() + (t + 1) * D,
                ls.ring.begin() + ((startPos + t) % W) * D);
  }

  void moe(const BlockW<Val> &b, const Val *x, int64_t id, Val *y) const {
    const FfnW &f = b.ffn;
    const int64_t d = cfg.dim;
    const bool fq = quantizesActivations(opt.fakeQuant);
    V z(size_t(cfg.nExperts));
    O::linear(f.gate, x, z.data(), false, cfg.blockSize, true);
    V s = O::sqrtSoftplus(z);
    typename O::Gate g =
        b.hash ? O::hashGate(s, f.tid2eid.data() + id * cfg.topk, cfg.topk,
                             cfg.routeScale)
               : O::scoreGate(s, f.bias, cfg.topk, cfg.routeScale);
    // Experts in ascending id order; a repeated id counts once (last slot).
    std::map<int64_t, Val> sel;
    for (size_t i = 0; i < g.ids.size(); ++i)
      sel[g.ids[i]] = g.weights[i];
    std::vector<V> ys;
    for (auto &[e, w] : sel) {
      ys.emplace_back(size_t(d));
      O::expert(f.experts[size_t(e)], x, cfg.swigluLimit, &w, fq,
                ys.back().data());
    }
    V sh(static_cast<size_t>(d));
    O::expert(f.shared, x, cfg.swigluLimit, nullptr, fq, sh.data());
    std::vector<const Val *> ptrs;
    for (auto &v : ys)
      ptrs.push_back(v.data());
    O::moeCombine(ptrs, sh.data(), d, y);
  }

  void engram(const EngramW &e, V &X, int64_t T,
              const std::vector<std::vector<int64_t>> &hist) const {
    const int64_t d = cfg.dim, n = cfg.hc, De = cfg.engram->De,
                  He = cfg.engram->He, N = cfg.engram->N;
    const int64_t E = (N - 1) * He * De;
    V emb(static_cast<size_t>(E)), kv(size_t((n + 1) * d));
    for (int64_t t = 0; t < T; ++t) {
      auto idx =
          engramHash(hist[size_t(t)].data(), N, e.mult.data(), e.primes, He);
      for (size_t i = 0; i < idx.size(); ++i)
        O::engramLookupRow(e.tableQ, e.tableS, De, idx[i],
                           emb.data() + int64_t(i) * De);
      O::linear(e.wkv, emb.data(), kv.data(),
                quantizesActivations(opt.fakeQuant), cfg.blockSize);
      O::engramGate(X.data() + t * n * d, kv.data(), kv.data() + n * d,
                    e.qW.data(), e.kW.data(), n, d, cfg.engram->eps);
    }
  }

  void block(const BlockW<Val> &b, LS &ls, V &X, int64_t T, int64_t startPos,
             const std::vector<int64_t> &ids,
             const std::vector<std::vector<int64_t>> &hist) const {
    const int64_t d = cfg.dim, n = cfg.hc;
    if (b.engram)
      engram(*b.engram, X, T, hist);
    V y(size_t(T * d)), xn(size_t(T * d)), o(size_t(T * d));
    std::vector<typename O::Split> splits(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) {
      splits[size_t(t)] =
          O::hcPre(X.data() + t * n * d, n, d, b.hcAttnFn.data(),
                   b.hcAttnScale.data(), b.hcAttnBase.data(), cfg.sinkhornIters,
                   cfg.normEps, cfg.hcEps, y.data() + t * d);
      O::rmsNorm(y.data() + t * d, b.attnNorm.data(), d, cfg.normEps,
                 xn.data() + t * d);
    }
    attention(b.attn, ls, xn, T, startPos, o);
    V Xn(X.size());
    for (int64_t t = 0; t < T; ++t)
      O::hcPost(o.data() + t * d, X.data() + t * n * d, splits[size_t(t)], n, d,
                Xn.data() + t * n * d);
    X.swap(Xn);
    for (int64_t t = 0; t < T; ++t) {
      splits[size_t(t)] =
          O::hcPre(X.data() + t * n * d, n, d, b.hcFfnFn.data(),
                   b.hcFfnScale.data(), b.hcFfnBase.data(), cfg.sinkhornIters,
                   cfg.normEps, cfg.hcEps, y.data() + t * d);
      O::rmsNorm(y.data() + t * d, b.ffnNorm.data(), d, cfg.normEps,
                 xn.data() + t * d);
      moe(b, xn.data() + t * d, ids.empty() ? 0 : ids[size_t(t)],
          o.data() + t * d);
      O::hcPost(o.data() + t * d, X.data() + t * n * d, splits[size_t(t)], n, d,
                Xn.data() + t * n * d);
    }
    X.swap(Xn);
  }

  void headLogits(const Val *X, const Vec &fn, const Vec &scale,
                  const Vec &base, const Vec &normW, Val *logits) const {
    const int64_t d = cfg.dim;
    V y(static_cast<size_t>(d)), yn(static_cast<size_t>(d));
    O::hcHead(X, cfg.hc, d, fn.data(), scale.data(), base.data(), cfg.normEps,
              cfg.hcEps, y.data());
    O::rmsNorm(y.data(), normW.data(), d, cfg.normEps, yn.data());
    for (int64_t v = 0; v < cfg.vocab; ++v) {
      Val acc = 0;
      for (int64_t c = 0; c < d; ++c)
        acc += yn[size_t(c)] * Val(head[size_t(v * d + c)]);
      logits[v] = acc;
    }
  }

  static double lanesRms(const V &X, int64_t T, int64_t per) {
    double mx = 0;
    for (int64_t t = 0; t < T; ++t) {
      double s = 0;
      for (int64_t i = 0; i < per; ++i)
        s += double(X[size_t(t * per + i)]) * X[size_t(t * per + i)];
      mx = std::max(mx, std::sqrt(s / double(per)));
    }
    return mx;
  }

  void forwardSequence(SequenceState &s, const std::vector<int64_t> &ids,
                       const std::vector<int64_t> *next, int64_t startPos,
                       ForwardResult &r, size_t at) const override {
    const int64_t T = int64_t(ids.size()), d = cfg.dim, n = cfg.hc,
                  vocab = cfg.vocab;
    std::vector<double> &laneRms = r.laneRms;
    auto &layers = std::get<std::vector<LS>>(s.layers);
    if (s.pos != startPos)
      fatal("state at position " + std::to_string(s.pos) +
            " but the chunk starts at " + std::to_string(startPos));
    for (int64_t id : ids)
      if (id < 0 || id >= cfg.vocab)
        fatal("token id out of range");
    V X(size_t(T * n * d)), logits(size_t(T * vocab));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < n; ++j)
        std::copy(embed.begin() + ids[size_t(t)] * d,
                  embed.begin() + (ids[size_t(t)] + 1) * d,
                  X.begin() + (t * n + j) * d);
    laneRms[0] = std::max(laneRms[0], lanesRms(X, T, n * d));

    // Engram look-back histories c_t, c_{t-1}, ..., c_{t-N+1}.
    std::vector<std::vector<int64_t>> hist;
    if (cfg.engram) {
      int64_t N = cfg.engram->N;
      auto cmap = [&](int64_t id) {
        return tokenMap.empty() ? id : tokenMap[size_t(id)];
      };
      hist.resize(size_t(T));
      for (int64_t t = 0; t < T; ++t)
        for (int64_t k = 0; k < N; ++k)
          hist[size_t(t)].push_back(t - k >= 0 ? cmap(ids[size_t(t - k)])
                                               : s.lookback[size_t(k - t - 1)]);
      std::vector<int64_t> lb(size_t(N - 1));
      for (int64_t k = 0; k < N - 1; ++k)
        lb[size_t(k)] = T - 1 - k >= 0 ? cmap(ids[size_t(T - 1 - k)])
                                       : s.lookback[size_t(k - T)];
      s.lookback = lb;
    }

    for (int64_t L = 0; L < cfg.nLayers; ++L) {
      block(blocks[size_t(L)], layers[size_t(L)], X, T, startPos, ids, hist);
      laneRms[size_t(L + 1)] =
          std::max(laneRms[size_t(L + 1)], lanesRms(X, T, n * d));
    }
    for (int64_t t = 0; t < T; ++t)
      headLogits(X.data() + t * n * d, hcHeadFn, hcHeadScale, hcHeadBase, norm,
                 logits.data() + t * vocab);
    std::copy(logits.begin(), logits.end(), r.logits.begin() + at);
    std::copy(logits.begin(), logits.end(), r.logits64.begin() + at);
    std::copy(X.begin(), X.end(), r.lanes.begin() + (at / vocab) * n * d);

    if (!next || mtp.empty()) {
      s.mtpValid = false;
    } else {
      const MtpW<Val> &m = mtp[0];
      const bool fq = quantizesActivations(opt.fakeQuant);
      V Xm(X.size()), e(static_cast<size_t>(d)), ep(static_cast<size_t>(d)),
          hn(static_cast<size_t>(d)), hp(static_cast<size_t>(d));
      for (int64_t t = 0; t < T; ++t) {
        int64_t nid = (*next)[size_t(t)];
        if (nid < 0 || nid >= cfg.vocab)
          fatal("next id out of range");
        V en(embed.begin() + nid * d, embed.begin() + (nid + 1) * d);
        O::rmsNorm(en.data(), m.enorm.data(), d, cfg.normEps, e.data());
        O::linear(m.eProj, e.data(), ep.data(), fq, cfg.blockSize);
        for (int64_t j = 0; j < n; ++j) {
          O::rmsNorm(X.data() + (t * n + j) * d, m.hnorm.data(), d, cfg.normEps,
                     hn.data());
          O::linear(m.hProj, hn.data(), hp.data(), fq, cfg.blockSize);
          for (int64_t c = 0; c < d; ++c)
            Xm[size_t((t * n + j) * d + c)] =
                O::bf(ep[size_t(c)] + hp[size_t(c)]);
        }
      }
      block(m.block, layers[size_t(cfg.nLayers)], Xm, T, startPos, {}, {});
      for (int64_t t = 0; t < T; ++t)
        headLogits(Xm.data() + t * n * d, m.hcFn, m.hcScale, m.hcBase, m.norm,
                   logits.data() + t * vocab);
      std::copy(logits.begin(), logits.end(), r.mtpLogits.begin() + at);
      std::copy(logits.begin(), logits.end(), r.mtpLogits64.begin() + at);
    }
    s.pos += T;
  }
};

} // namespace

Model::Model(std::unique_ptr<Impl> i) : impl(std::move(i)) {}
Model::~Model() = default;
const Config &Model::config() const { return impl->cfg; }
const Options &Model::options() const { return impl->opt; }

std::unique_ptr<Model> Model::load(const Config &config,
                                   const st::Reader &reader,
                                   const Options &options, std::string *error) {
  auto fail = [&](const std::string &msg) -> std::unique_ptr<Model> {
    if (error)
      *error = msg;
    return nullptr;
  };
  const Config &c = config;
  if (int64_t(c.ratios.size()) < c.nLayers + c.nMtp)
    return fail("compress_ratios has too few entries");
  if (c.nMtp > 1)
    return fail("the reference supports at most one MTP layer");
  if (c.headDim <= c.ropeDim || c.nHeads % c.oGroups)
    return fail("bad head layout");
  std::unique_ptr<Impl> impl;
  switch (options.precision) {
  case Precision::Production:
    impl = std::make_unique<ModelImpl<ProductionNumerics>>();
    break;
  case Precision::FP32:
    impl = std::make_unique<ModelImpl<FP32Numerics>>();
    break;
  case Precision::Double:
    impl = std::make_unique<ModelImpl<DoubleNumerics>>();
    break;
  }
  if (!impl)
    return fail("unknown precision");
  impl->cfg = config;
  impl->opt = options;
  std::string err = impl->load(reader);
  if (!err.empty())
    return fail(err);
  return std::unique_ptr<Model>(new Model(std::move(impl)));
}

std::vector<SequenceState> Model::newState(int64_t batch) const {
  return impl->newState(batch);
}

ForwardResult Model::forward(std::vector<SequenceState> &state,
                             const std::vector<std::vector<int64_t>> &ids,
                             const std::vector<std::vector<int64_t>> &nextIds,
                             int64_t startPos) const {
  const Config &c = impl->cfg;
  int64_t B = int64_t(ids.size());
  if (B != int64_t(state.size()))
    fatal("batch size does not match the state");
  int64_t T = B ? int64_t(ids[0].size()) : 0;
  ForwardResult r;
  const size_t rows = size_t(B * T * c.vocab);
  r.logits.assign(rows, 0.0f);
  r.logits64.assign(rows, 0.0);
  bool withMtp = !nextIds.empty() && c.nMtp > 0;
  if (withMtp) {
    r.mtpLogits.assign(rows, 0.0f);
    r.mtpLogits64.assign(rows, 0.0);
  }
  r.laneRms.assign(size_t(c.nLayers + 1), 0.0);
  r.lanes.assign(size_t(B * T * c.hc * c.dim), 0.0f);
  for (int64_t b = 0; b < B; ++b) {
    if (int64_t(ids[size_t(b)].size()) != T ||
        (withMtp && int64_t(nextIds[size_t(b)].size()) != T))
      fatal("ragged ids");
    impl->forwardSequence(state[size_t(b)], ids[size_t(b)],
                          withMtp ? &nextIds[size_t(b)] : nullptr, startPos, r,
                          size_t(b * T * c.vocab));
  }
  return r;
}

} // namespace v4::ref
