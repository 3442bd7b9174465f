//===- CPUKernelEngramTest.cpp - CPU kernels of the Engram family ---------===//
//
// v4.engram.state_empty / hash / lookup / gate against V4-SPEC 8.3-8.8 and
// 11.2 items 15-17. The oracle is the plain C++ reference
// (reference/Ops.h: engramHash, engramLookupRow, engramGate).
// Tolerances: row ids and states exact; lookup bit-exact (the dequantised
// values are exact in bf16); gate bit-exact against the reference (same
// fp32 operation order, one bf16 rounding).
//
//===----------------------------------------------------------------------===//
#include "test/lib/CPUKernelHarness.h"

#include "reference/Ops.h"

#include <cstring>

using namespace v4test;
namespace q = ::v4::quant;
namespace ref = ::v4::ref;

namespace {

//===----------------------------------------------------------------------===//
// v4.engram.state_empty
//===----------------------------------------------------------------------===//

TEST(CPUKernels, EngramStateEmptyFillsPad) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f() -> !v4.engram_state<batch = 3, lookback = 2> {
      %s = v4.engram.state_empty pad 5 : !v4.engram_state<batch = 3, lookback = 2>
      return %s : !v4.engram_state<batch = 3, lookback = 2>
    })"));
  std::vector<int64_t> s(6, -1);
  auto ds = describe<2>(s.data(), {3, 2});
  k.run({&ds});
  for (int64_t v : s)
    EXPECT_EQ(v, 5);
}

//===----------------------------------------------------------------------===//
// v4.engram.hash
//===----------------------------------------------------------------------===//

// V4-SPEC 11.2 item 15: V_c = 97, N = 3, H = 2, explicit multipliers.
const char *kHashSource = R"(
    func.func @f(%ids: tensor<2x?xi64>, %map: tensor<97xi64>, %m: tensor<3xi64>,
                 %s0: !v4.engram_state<batch = 2, lookback = 2>)
        -> (tensor<2x?x4xi32>, !v4.engram_state<batch = 2, lookback = 2>) {
      %rows, %s1 = v4.engram.hash %ids, %map, %m, %s0
          {heads = 2 : i64, maxNgram = 3 : i64, padId = 2 : i64,
           primes = array<i64: 41, 43, 47, 53>}
          : (tensor<2x?xi64>, tensor<97xi64>, tensor<3xi64>,
             !v4.engram_state<batch = 2, lookback = 2>)
          -> (tensor<2x?x4xi32>, !v4.engram_state<batch = 2, lookback = 2>)
      return %rows, %s1 : tensor<2x?x4xi32>, !v4.engram_state<batch = 2, lookback = 2>
    })";

struct HashCase {
  static constexpr int64_t B = 2, N = 3, H = 2, R = 4, V = 97, pad = 2;
  std::vector<int64_t> map, mult = {1000003, 77777, 123456789};
  std::vector<int64_t> primes = {41, 43, 47, 53};
  HashCase() : map(V) {
    for (int64_t i = 0; i < V; ++i)
      map[i] = (i * 31 + 7) % V; // a permutation: c(pad) = 69
  }
  /// Runs the kernel on ids [B, T] with the state buffer updated in place
  /// (the state result aliases its operand, as the runtime passes it).
  std::vector<int32_t> run(CompiledKernel &k, std::vector<int64_t> ids,
                           int64_t T, std::vector<int64_t> &state) {
    std::vector<int32_t> rows(B * T * R, -1);
    auto di = describe<2>(ids.data(), {B, T});
    auto dm = describe<1>(map.data(), {V});
    auto dmu = describe<1>(mult.data(), {N});
    auto ds = describe<2>(state.data(), {B, N - 1});
    auto dr = describe<3>(rows.data(), {B, T, R});
    auto ds2 = describe<2>(state.data(), {B, N - 1});
    k.run({&di, &dm, &dmu, &ds, &dr, &ds2});
    return rows;
  }
  /// Oracle rows of one-shot hashing of `ids` [B, T] from the empty state.
  std::vector<int32_t> expected(const std::vector<int64_t> &ids, int64_t T) {
    std::vector<int32_t> out;
    int64_t cpad = map[pad];
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        std::vector<int64_t> hist;
        for (int64_t kk = 0; kk < N; ++kk)
          hist.push_back(t - kk >= 0 ? map[ids[b * T + t - kk]] : cpad);
        for (int64_t r :
             ref::engramHash(hist.data(), N, mult.data(), primes, H))
          out.push_back(int32_t(r));
      }
    return out;
  }
};

std::vector<int64_t> randomIds(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> v(n);
  for (auto &x : v)
    x = int64_t(rng() % 97);
  return v;
}

TEST(CPUKernels, EngramHashMatchesSpec) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(kHashSource));
  HashCase c;
  const int64_t T = 9;
  auto ids = randomIds(c.B * T, 5);
  std::vector<int64_t> state(c.B * (c.N - 1), c.map[c.pad]);
  auto rows = c.run(k, ids, T, state);
  EXPECT_EQ(rows, c.expected(ids, T));
  // Hand check of token (b = 0, t = 0): look-back is all pad; h_2 = c_0 m_0
  // XOR c_pad m_1; h_3 = h_2 XOR c_pad m_2; mod, then offsets 0, 41, 84, 131.
  int64_t c0 = c.map[ids[0]], cp = c.map[c.pad];
  int64_t h2 = (c0 * c.mult[0]) ^ (cp * c.mult[1]);
  int64_t h3 = h2 ^ (cp * c.mult[2]);
  EXPECT_EQ(rows[0], h2 % 41);
  EXPECT_EQ(rows[1], h2 % 43 + 41);
  EXPECT_EQ(rows[2], h3 % 47 + 84);
  EXPECT_EQ(rows[3], h3 % 53 + 131);
  for (int32_t r : rows) {
    EXPECT_GE(r, 0);
    EXPECT_LT(r, 184);
  }
  // New state: the last N-1 compressed ids, most recent first.
  for (int64_t b = 0; b < c.B; ++b) {
    EXPECT_EQ(state[b * 2 + 0], c.map[ids[b * T + T - 1]]);
    EXPECT_EQ(state[b * 2 + 1], c.map[ids[b * T + T - 2]]);
  }
}

TEST(CPUKernels, EngramHashRowsDependOnlyOnTheNgram) {
  // A token's rows change only when one of c_t ... c_{t-N+1} changes.
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(kHashSource));
  HashCase c;
  const int64_t T = 8, changed = 3;
  auto ids = randomIds(c.B * T, 6);
  auto ids2 = ids;
  ids2[changed] = (ids[changed] + 1) % 97;
  std::vector<int64_t> s1(4, c.map[c.pad]), s2(4, c.map[c.pad]);
  auto r1 = c.run(k, ids, T, s1), r2 = c.run(k, ids2, T, s2);
  for (int64_t t = 0; t < T; ++t) {
    bool same = std::equal(r1.begin() + t * 4, r1.begin() + t * 4 + 4,
                           r2.begin() + t * 4);
    if (t < changed || t > changed + 2) {
      EXPECT_TRUE(same) << t;
    } else {
      EXPECT_FALSE(same) << t;
    }
  }
  // Sequence 1 is untouched.
  EXPECT_TRUE(std::equal(r1.begin() + T * 4, r1.end(), r2.begin() + T * 4));
}

TEST(CPUKernels, EngramHashIncrementalEqualsOneShot) {
  // V4-SPEC 11.2 item 17: token by token and chunked == one shot.
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(kHashSource));
  HashCase c;
  const int64_t T = 7;
  auto ids = randomIds(c.B * T, 7);
  std::vector<int64_t> s0(4, c.map[c.pad]);
  auto oneShot = c.run(k, ids, T, s0);
  EXPECT_EQ(oneShot, c.expected(ids, T));
  for (std::vector<int64_t> chunks :
       {std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1}, {3, 4}, {1, 5, 1}}) {
    std::vector<int64_t> s(4, c.map[c.pad]);
    std::vector<int32_t> got(oneShot.size(), -1);
    int64_t t0 = 0;
    for (int64_t len : chunks) {
      std::vector<int64_t> part;
      for (int64_t b = 0; b < c.B; ++b)
        for (int64_t t = 0; t < len; ++t)
          part.push_back(ids[b * T + t0 + t]);
      auto rows = c.run(k, part, len, s);
      for (int64_t b = 0; b < c.B; ++b)
        std::memcpy(&got[(b * T + t0) * 4], &rows[b * len * 4],
                    size_t(len * 4) * sizeof(int32_t));
      t0 += len;
    }
    EXPECT_EQ(got, oneShot);
    EXPECT_EQ(s, s0);
  }
}

TEST(CPUKernels, EngramHashI32IdsAndI64Rows) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%ids: tensor<1x?xi32>, %map: tensor<97xi32>, %m: tensor<4xi64>,
                 %s0: !v4.engram_state<batch = 1, lookback = 3>)
        -> (tensor<1x?x3xi64>, !v4.engram_state<batch = 1, lookback = 3>) {
      %rows, %s1 = v4.engram.hash %ids, %map, %m, %s0
          {heads = 1 : i64, maxNgram = 4 : i64, padId = 0 : i64,
           primes = array<i64: 101, 103, 107>}
          : (tensor<1x?xi32>, tensor<97xi32>, tensor<4xi64>,
             !v4.engram_state<batch = 1, lookback = 3>)
          -> (tensor<1x?x3xi64>, !v4.engram_state<batch = 1, lookback = 3>)
      return %rows, %s1 : tensor<1x?x3xi64>, !v4.engram_state<batch = 1, lookback = 3>
    })"));
  const int64_t T = 2, N = 4;
  std::vector<int32_t> ids = {96, 13}, map(97);
  for (int i = 0; i < 97; ++i)
    map[i] = (i * 5 + 1) % 97;
  // Large odd multipliers (V4-SPEC 8.4: c * m stays below 2^63).
  std::vector<int64_t> mult = {46539438283891, 12345678901233, 3, 99999999999};
  // A state from an earlier call: c_{-1} = 40, c_{-2} = 41, c_{-3} = 42.
  std::vector<int64_t> state = {40, 41, 42}, state2(3, -1);
  std::vector<int64_t> rows(T * 3, -1);
  auto di = describe<2>(ids.data(), {1, T});
  auto dm = describe<1>(map.data(), {97});
  auto dmu = describe<1>(mult.data(), {N});
  auto ds = describe<2>(state.data(), {1, 3});
  auto dr = describe<3>(rows.data(), {1, T, 3});
  auto ds2 = describe<2>(state2.data(), {1, 3});
  k.run({&di, &dm, &dmu, &ds, &dr, &ds2});
  std::vector<int64_t> primes = {101, 103, 107};
  std::vector<std::vector<int64_t>> hist = {{map[96], 40, 41, 42},
                                            {map[13], map[96], 40, 41}};
  for (int64_t t = 0; t < T; ++t) {
    auto want = ref::engramHash(hist[t].data(), N, mult.data(), primes, 1);
    for (int64_t r = 0; r < 3; ++r)
      EXPECT_EQ(rows[t * 3 + r], want[r]) << t << " " << r;
  }
  // The new state is tied to the old one: updated in place.
  EXPECT_EQ(state, (std::vector<int64_t>{map[13], map[96], 40}));
  EXPECT_EQ(state2, (std::vector<int64_t>(3, -1)));
}

//===----------------------------------------------------------------------===//
// v4.engram.lookup
//===----------------------------------------------------------------------===//

TEST(CPUKernels, EngramLookupFp8MatchesSpec) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%rows: tensor<2x?x4xi32>, %t: tensor<184x64xf8E4M3FN>,
                 %s: tensor<184x2xf8E8M0FNU>) -> tensor<2x?x256xbf16> {
      %e = v4.engram.lookup %rows, %t scale %s {numEmbeddings = 184 : i64}
          : (tensor<2x?x4xi32>, tensor<184x64xf8E4M3FN>, tensor<184x2xf8E8M0FNU>)
          -> tensor<2x?x256xbf16>
      return %e : tensor<2x?x256xbf16>
    })"));
  const int64_t NE = 184, De = 64, B = 2, T = 3, R = 4;
  std::mt19937_64 rng(9);
  std::vector<uint8_t> codes(NE * De), scales(NE * 2);
  for (auto &c : codes) {
    c = uint8_t(rng() & 0xFF);
    if ((c & 0x7F) == 0x7F)
      c = 0x3C; // no NaN codes
  }
  for (auto &s : scales)
    s = uint8_t(117 + rng() % 20);
  std::vector<int32_t> rows(B * T * R);
  for (auto &r : rows)
    r = int32_t(rng() % NE);
  rows[0] = 0;
  rows[1] = NE - 1;
  std::vector<uint16_t> e(B * T * R * De, 0xFFFF);
  auto dr = describe<3>(rows.data(), {B, T, R});
  auto dt = describe<2>(codes.data(), {NE, De});
  auto ds = describe<2>(scales.data(), {NE, 2});
  auto de = describe<3>(e.data(), {B, T, R * De});
  k.run({&dr, &dt, &ds, &de});
  ref::Vec qv(NE * De), sv(NE * 2);
  for (size_t i = 0; i < qv.size(); ++i)
    qv[i] = q::decodeE4M3(codes[i]);
  for (size_t i = 0; i < sv.size(); ++i)
    sv[i] = float(q::decodeE8M0(scales[i]));
  std::vector<float> want(De);
  for (int64_t i = 0; i < B * T * R; ++i) {
    ref::engramLookupRow(qv, sv, De, rows[i], want.data());
    for (int64_t c = 0; c < De; ++c)
      EXPECT_EQ(e[i * De + c], encodeBF16(want[c])) << i << " " << c;
  }
}

TEST(CPUKernels, EngramLookupBf16TableF32Result) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%rows: tensor<1x?x2xi64>, %t: tensor<30x16xbf16>) -> tensor<1x?x32xf32> {
      %e = v4.engram.lookup %rows, %t {numEmbeddings = 30 : i64}
          : (tensor<1x?x2xi64>, tensor<30x16xbf16>) -> tensor<1x?x32xf32>
      return %e : tensor<1x?x32xf32>
    })"));
  auto table = randomBf16(30 * 16, 3, 4.0f);
  std::vector<int64_t> rows = {29, 0, 7, 7};
  std::vector<float> e(2 * 32, -1);
  auto dr = describe<3>(rows.data(), {1, 2, 2});
  auto dt = describe<2>(table.data(), {30, 16});
  auto de = describe<3>(e.data(), {1, 2, 32});
  k.run({&dr, &dt, &de});
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t c = 0; c < 16; ++c)
      EXPECT_EQ(e[i * 16 + c], decodeBF16(table[rows[i] * 16 + c]));
}

//===----------------------------------------------------------------------===//
// v4.engram.gate
//===----------------------------------------------------------------------===//

const char *kGateSource = R"(
    func.func @f(%x: tensor<2x?x4x64xbf16>, %kv: tensor<2x?x320xbf16>,
                 %qw: tensor<4x64xbf16>, %kw: tensor<4x64xbf16>)
        -> tensor<2x?x4x64xbf16> {
      %y = v4.engram.gate %x, %kv, %qw, %kw {eps = 1.0e-20 : f64}
          : (tensor<2x?x4x64xbf16>, tensor<2x?x320xbf16>, tensor<4x64xbf16>,
             tensor<4x64xbf16>) -> tensor<2x?x4x64xbf16>
      return %y : tensor<2x?x4x64xbf16>
    })";

struct GateCase {
  static constexpr int64_t B = 2, n = 4, d = 64;
  int64_t T;
  std::vector<uint16_t> x, kv, qw, kw;
  GateCase(int64_t T, uint64_t seed)
      : T(T), x(randomBf16(B * T * n * d, seed, 2.0f)),
        kv(randomBf16(B * T * (n + 1) * d, seed + 1, 1.5f)),
        qw(randomBf16(n * d, seed + 2)), kw(randomBf16(n * d, seed + 3)) {
    for (auto &v : qw)
      v = encodeBF16(1.0f + 0.5f * decodeBF16(v));
  }
  std::vector<uint16_t> run(CompiledKernel &k) {
    std::vector<uint16_t> y(x.size(), 0xFFFF);
    auto dx = describe<4>(x.data(), {B, T, n, d});
    auto dkv = describe<3>(kv.data(), {B, T, (n + 1) * d});
    auto dq = describe<2>(qw.data(), {n, d});
    auto dk = describe<2>(kw.data(), {n, d});
    auto dy = describe<4>(y.data(), {B, T, n, d});
    k.run({&dx, &dkv, &dq, &dk, &dy});
    return y;
  }
  /// The reference output and the gates [B*T, n].
  std::vector<uint16_t> expected(std::vector<float> *gates = nullptr) {
    auto f = [](const std::vector<uint16_t> &v) {
      std::vector<float> o(v.size());
      for (size_t i = 0; i < v.size(); ++i)
        o[i] = decodeBF16(v[i]);
      return o;
    };
    auto X = f(x), KV = f(kv), Q = f(qw), K = f(kw);
    if (gates)
      gates->assign(size_t(B * T * n), 0);
    for (int64_t r = 0; r < B * T; ++r)
      ref::engramGate(X.data() + r * n * d, KV.data() + r * (n + 1) * d,
                      KV.data() + r * (n + 1) * d + n * d, Q.data(), K.data(),
                      n, d, 1e-20f, gates ? gates->data() + r * n : nullptr);
    std::vector<uint16_t> y(X.size());
    for (size_t i = 0; i < X.size(); ++i)
      y[i] = encodeBF16(X[i]);
    return y;
  }
};

TEST(CPUKernels, EngramGateMatchesSpec) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(kGateSource));
  GateCase c(5, 31);
  auto y = c.run(k);
  auto want = c.expected();
  int64_t exact = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    exact += y[i] == want[i];
    float g = decodeBF16(y[i]), w = decodeBF16(want[i]);
    EXPECT_LE(std::fabs(g - w), std::ldexp(std::fabs(w), -7)) << i;
  }
  std::printf("[engram.gate] %lld of %zu values bit-exact\n", (long long)exact,
              y.size());
  EXPECT_EQ(exact, int64_t(y.size()));
}

TEST(CPUKernels, EngramGateProperties) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(kGateSource));
  const int64_t n = 4, d = 64, W = (n + 1) * d;
  GateCase c(2, 41);
  auto base = c.run(k);
  // Scaling k_i by a power of two (exact) leaves the gate, hence X', as is.
  {
    GateCase s = c;
    for (int64_t r = 0; r < 2 * 2; ++r)
      for (int64_t j = 0; j < 2 * d; ++j) // lanes 0 and 1
        s.kv[r * W + j] = encodeBF16(2.0f * decodeBF16(c.kv[r * W + j]));
    EXPECT_EQ(s.run(k), base);
  }
  // v = 0 leaves X unchanged.
  {
    GateCase s = c;
    for (int64_t r = 0; r < 2 * 2; ++r)
      for (int64_t j = n * d; j < W; ++j)
        s.kv[r * W + j] = 0;
    EXPECT_EQ(s.run(k), s.x);
  }
  // dot = 0 exactly (k_0 = 0) gives gate 0.5 on lane 0 only: X' = X + v/2.
  {
    GateCase s = c;
    for (int64_t r = 0; r < 2 * 2; ++r)
      for (int64_t j = 0; j < d; ++j)
        s.kv[r * W + j] = 0;
    auto y = s.run(k);
    std::vector<float> gates;
    auto want = s.expected(&gates);
    EXPECT_EQ(y, want);
    for (int64_t r = 0; r < 2 * 2; ++r) {
      EXPECT_EQ(gates[r * n], 0.5f);
      EXPECT_NE(gates[r * n + 1], 0.5f);
      for (int64_t j = 0; j < d; ++j) {
        float xv = decodeBF16(s.x[r * n * d + j]);
        float v = decodeBF16(s.kv[r * W + n * d + j]);
        EXPECT_EQ(y[r * n * d + j], encodeBF16(xv + 0.5f * v));
      }
    }
  }
}

TEST(CPUKernels, EngramGateDemoFormIsRejected) {
  // The demo short-conv form has no kernel on any path: the CPU kernel
  // phase fails with an error that names the form.
  MLIRContext context;
  DialectRegistry registry;
  registry.insert<mlir::v4::V4Dialect, func::FuncDialect>();
  mlir::v4::registerLoweringDialects(registry);
  context.appendDialectRegistry(registry);
  context.loadAllAvailableDialects();
  std::string diag;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &d) {
    diag += d.str();
    return success();
  });
  OwningOpRef<ModuleOp> input = parseSourceString<ModuleOp>(R"(
    func.func @f(%x: tensor<1x?x4x64xbf16>, %kv: tensor<1x?x320xbf16>,
                 %qw: tensor<4x64xbf16>, %kw: tensor<4x64xbf16>,
                 %cw: tensor<256x1x4xbf16>, %cn: tensor<4x64xbf16>,
                 %h0: tensor<1x9x256xbf16>)
        -> (tensor<1x?x4x64xbf16>, tensor<1x9x256xbf16>) {
      %x3, %h1 = v4.engram.gate %x, %kv, %qw, %kw
          conv(%cw, %cn, %h0) {convDilation = 3 : i64}
          : (tensor<1x?x4x64xbf16>, tensor<1x?x320xbf16>, tensor<4x64xbf16>,
             tensor<4x64xbf16>, tensor<256x1x4xbf16>, tensor<4x64xbf16>,
             tensor<1x9x256xbf16>) -> (tensor<1x?x4x64xbf16>, tensor<1x9x256xbf16>)
      return %x3, %h1 : tensor<1x?x4x64xbf16>, tensor<1x9x256xbf16>
    })",
                                                            &context);
  ASSERT_TRUE(input);
  Operation *op = nullptr;
  input->walk([&](mlir::v4::EngramGateOp o) { op = o; });
  ASSERT_NE(op, nullptr);
  OwningOpRef<ModuleOp> kernels = ModuleOp::create(UnknownLoc::get(&context));
  (*kernels)->setAttr("v4.target", StringAttr::get(&context, "cpu"));
  ASSERT_TRUE(succeeded(mlir::v4::outlineKernel(op, *kernels, "kernel")));
  PassManager pm(&context);
  mlir::v4::lookupTargetBackend("cpu")->buildKernelPipeline(pm);
  EXPECT_TRUE(failed(pm.run(*kernels)));
  EXPECT_NE(diag.find("short-conv"), std::string::npos) << diag;
  EXPECT_NE(diag.find("not supported"), std::string::npos) << diag;
}

} // namespace
