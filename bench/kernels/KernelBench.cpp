//===- KernelBench.cpp - linear kernels against OpenBLAS sgemm ------------===//
//
// v4-bench-kernels: the CPU target's linear and grouped_linear kernels,
// compiled by the compiler's kernel pipeline for the shapes of the
// mid-size config (bench/configs/mid-v4.config.json: the FP8 projections,
// the bf16 head, the FP8 grouped wo_a) at a decode call (1 token) and a
// prefill chunk (64 tokens), run over their launch grid on the runtime's thread
// pool (runtime/src/devices/ThreadPool.h) exactly as the CPU device runs
// them; and, in the same process, OpenBLAS cblas_sgemm on the same shapes
// with the weights dequantised to fp32, on the same number of threads.
// Counter GFLOPs: 2*M*N*K per call (the same formula for both); each
// shape's peer runs just before ours (scripts/bench.sh runs it).
// Built without OpenBLAS, the peer cases say that it is missing.
//
// Usage: v4-bench-kernels [--threads N] [google benchmark flags]
//
//===----------------------------------------------------------------------===//
#include "dialects/V4/V4Dialect.h"
#include "dialects/V4/V4Ops.h"
#include "lowering/Dispatch/DispatchFormation.h"
#include "lowering/Pipelines.h"
#include "lowering/Target/TargetBackend.h"
#include "runtime/base/KernelABI.h"
#include "runtime/numerics/Numerics.h"
#include "runtime/src/devices/ThreadPool.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include <benchmark/benchmark.h>

#ifdef V4_HAVE_OPENBLAS
#include <cblas.h>
#endif

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

using namespace mlir;
namespace q = ::v4::quant;

/// One GEMM shape of the model: y[M, G*N] = x[M, G, K] . W[G*N, K]^T.
struct Shape {
  const char *name;
  int64_t groups; // 1: v4.linear
  int64_t n;      // outputs per group
  int64_t k;
  bool fp8; // FP8 + 128x128 e8m0 scales; else bf16
};

// bench/configs/mid-v4.config.json: hidden 1024, q_lora 512, 16 heads x 128,
// o_groups 4 x o_lora 256, vocab 8192.
const Shape kShapes[] = {
    {"wq_a", 1, 512, 1024, true},   {"wq_b", 1, 2048, 512, true},
    {"wo_b", 1, 1024, 1024, true},  {"wkv", 1, 128, 1024, true},
    {"head", 1, 8192, 1024, false}, {"wo_a_grouped", 4, 256, 512, true},
};
const int64_t kTokens[] = {1, 64};

unsigned gThreads = 0;

std::string tensorType(std::vector<int64_t> shape, const char *elt) {
  std::string s = "tensor<";
  for (int64_t d : shape)
    s += (d < 0 ? std::string("?") : std::to_string(d)) + "x";
  return s + elt + ">";
}

/// A compiled kernel of one shape: its entry and launch grid.
struct Kernel {
  void *handle = nullptr;
  ::v4::abi::KernelEntry entry = nullptr;
  std::array<int64_t, 6> grid{1, 0, 1, 0, 1, 0};
  ~Kernel() {
    if (handle)
      dlclose(handle);
  }
  int64_t blocks(int d, int64_t tokens) const {
    int64_t f = grid[2 * d], t = grid[2 * d + 1];
    return t == 0 ? f : f * ((tokens + t - 1) / t);
  }
};

/// Compiles the op of `source` with the CPU target's kernel pipeline, as
/// the compiler does for a model (lowering/Target, v4c's kernel phase).
std::unique_ptr<Kernel> compileKernel(const std::string &source) {
  MLIRContext context;
  DialectRegistry registry;
  registry.insert<mlir::v4::V4Dialect, func::FuncDialect, arith::ArithDialect,
                  tensor::TensorDialect>();
  mlir::v4::registerLoweringDialects(registry);
  context.appendDialectRegistry(registry);
  context.loadAllAvailableDialects();
  OwningOpRef<ModuleOp> input = parseSourceString<ModuleOp>(source, &context);
  if (!input)
    return nullptr;
  Operation *op = nullptr;
  input->walk([&](Operation *o) {
    if (isa<mlir::v4::V4Dialect>(o->getDialect()))
      op = o;
  });
  OwningOpRef<ModuleOp> kernels = ModuleOp::create(UnknownLoc::get(&context));
  (*kernels)->setAttr("v4.target", StringAttr::get(&context, "cpu"));
  if (!op || failed(mlir::v4::outlineKernel(op, *kernels, "kernel")))
    return nullptr;
  mlir::v4::registerBuiltinTargetBackends();
  const mlir::v4::TargetBackend *cpu = mlir::v4::lookupTargetBackend("cpu");
  PassManager pm(&context);
  cpu->buildKernelPipeline(pm);
  if (failed(pm.run(*kernels)))
    return nullptr;
  auto k = std::make_unique<Kernel>();
  if (Operation *fn = SymbolTable::lookupSymbolIn(*kernels, "kernel"))
    if (auto g =
            fn->getAttrOfType<DenseI64ArrayAttr>(mlir::v4::kLaunchGridAttrName))
      for (int i = 0; i < 6; ++i)
        k->grid[i] = g[i];
  FailureOr<SmallVector<mlir::v4::CodeObject>> objects =
      cpu->serialize(*kernels);
  if (failed(objects) || objects->size() != 1)
    return nullptr;
  const mlir::v4::CodeObject *so = &objects->front();
  char path[] = "/tmp/v4-bench-kernel-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0)
    return nullptr;
  bool written = ::write(fd, so->bytes.data(), so->bytes.size()) ==
                 ssize_t(so->bytes.size());
  ::close(fd);
  k->handle = written ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : nullptr;
  ::unlink(path);
  if (!k->handle)
    return nullptr;
  k->entry =
      reinterpret_cast<::v4::abi::KernelEntry>(dlsym(k->handle, "kernel"));
  return k->entry ? std::move(k) : nullptr;
}

/// The operands of one shape at M tokens: bf16 activations, FP8 codes and
/// scales (or bf16 weights), their fp32 dequantisation for the peer, and
/// the outputs.
struct Operands {
  int64_t m;
  std::vector<uint16_t> x;
  std::vector<float> xf, wf, yf;
  std::vector<uint8_t> w8, s8;
  std::vector<uint16_t> wbf, y;
  std::vector<float> yHead;
};

Operands makeOperands(const Shape &s, int64_t m) {
  Operands o;
  o.m = m;
  int64_t rows = s.groups * s.n;
  std::mt19937_64 rng(7);
  std::normal_distribution<float> dist(0, 1);
  o.x.resize(m * s.groups * s.k);
  o.xf.resize(o.x.size());
  for (size_t i = 0; i < o.x.size(); ++i) {
    o.x[i] = q::encodeBF16(dist(rng));
    o.xf[i] = q::decodeBF16(o.x[i]);
  }
  std::vector<float> w(rows * s.k);
  for (auto &v : w)
    v = dist(rng) * 0.05f;
  o.wf.resize(w.size());
  if (s.fp8) {
    int64_t sr = (rows + 127) / 128, sc = (s.k + 127) / 128;
    o.w8.resize(w.size());
    o.s8.resize(sr * sc);
    q::quantizeFP8(w.data(), rows, s.k, 128, 128, o.w8.data(), o.s8.data());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < s.k; ++c)
        o.wf[r * s.k + c] =
            q::decodeE4M3(o.w8[r * s.k + c]) *
            float(q::decodeE8M0(o.s8[(r / 128) * sc + c / 128]));
  } else {
    o.wbf.resize(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      o.wbf[i] = q::encodeBF16(w[i]);
      o.wf[i] = q::decodeBF16(o.wbf[i]);
    }
  }
  o.y.resize(m * rows);
  o.yHead.resize(m * rows);
  o.yf.resize(m * rows);
  return o;
}

std::string kernelSource(const Shape &s) {
  bool grouped = s.groups > 1;
  int64_t rows = s.groups * s.n;
  std::string x = grouped ? tensorType({1, -1, s.groups, s.k}, "bf16")
                          : tensorType({1, -1, s.k}, "bf16");
  // The head produces f32 logits, as in the model.
  const char *outElt = s.fp8 ? "bf16" : "f32";
  std::string y = grouped ? tensorType({1, -1, s.groups, s.n}, outElt)
                          : tensorType({1, -1, rows}, outElt);
  std::string w = tensorType({rows, s.k}, s.fp8 ? "f8E4M3FN" : "bf16");
  std::string sc =
      tensorType({(rows + 127) / 128, (s.k + 127) / 128}, "f8E8M0FNU");
  std::string op = grouped ? "v4.grouped_linear" : "v4.linear";
  std::string args = "%x: " + x + ", %w: " + w + (s.fp8 ? ", %s: " + sc : "");
  std::string use = std::string("%x, %w") + (s.fp8 ? " scale %s" : "") +
                    (grouped ? " blockSize 128" : "");
  std::string types = x + ", " + w + (s.fp8 ? ", " + sc : "");
  return "module attributes {v4.target = \"cpu\"} {\nfunc.func @f(" + args +
         ") -> " + y + " {\n  %y = " + op + " " + use + " : " + types + " -> " +
         y + "\n  return %y : " + y + "\n}\n}\n";
}

std::map<std::string, std::unique_ptr<Kernel>> &kernelCache() {
  static std::map<std::string, std::unique_ptr<Kernel>> c;
  return c;
}

::v4::rt::ThreadPool &pool() {
  static ::v4::rt::ThreadPool p(gThreads);
  return p;
}

struct GridCall {
  const Kernel *k;
  std::vector<void *> args; // buffers, then the launch-block slot
  int64_t grid[3];
};

void runBlock(void *context, uint64_t index) {
  auto &c = *static_cast<GridCall *>(context);
  ::v4::abi::LaunchBlock block{
      int64_t(index % uint64_t(c.grid[0])),
      int64_t(index / uint64_t(c.grid[0]) % uint64_t(c.grid[1])),
      0,
      c.grid[0],
      c.grid[1],
      c.grid[2]};
  void *args[8];
  size_t n = c.args.size();
  for (size_t i = 0; i < n; ++i)
    args[i] = c.args[i];
  args[n] = &block;
  c.k->entry(args);
}

template <int R>
::v4::abi::MemRefDescriptor<R> describe(void *data,
                                        std::array<int64_t, R> sizes) {
  ::v4::abi::MemRefDescriptor<R> d;
  ::v4::abi::writeDescriptor(data, sizes.data(), R,
                             reinterpret_cast<int64_t *>(&d));
  return d;
}

std::string caseName(const Shape &s, int64_t m) {
  return std::string(s.name) + "/M:" + std::to_string(m);
}

void setCounters(benchmark::State &state, const Shape &s, int64_t m) {
  double flops = 2.0 * double(m) * double(s.groups * s.n) * double(s.k);
  state.counters["GFLOPs"] = benchmark::Counter(
      flops * 1e-9 * double(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["M"] = double(m);
  state.counters["N"] = double(s.groups * s.n);
  state.counters["K"] = double(s.k);
  state.counters["threads"] = double(pool().size());
}

void benchOurs(benchmark::State &state, Shape s, int64_t m) {
  std::unique_ptr<Kernel> &k = kernelCache()[s.name];
  if (!k)
    k = compileKernel(kernelSource(s));
  if (!k) {
    state.SkipWithError("the kernel did not compile");
    return;
  }
  Operands o = makeOperands(s, m);
  bool grouped = s.groups > 1;
  int64_t rows = s.groups * s.n;
  auto dx = describe<4>(o.x.data(), {1, m, s.groups, s.k});
  auto dx3 = describe<3>(o.x.data(), {1, m, s.k});
  auto dw = describe<2>(s.fp8 ? (void *)o.w8.data() : (void *)o.wbf.data(),
                        {rows, s.k});
  auto ds = describe<2>(o.s8.data(), {(rows + 127) / 128, (s.k + 127) / 128});
  void *out = s.fp8 ? (void *)o.y.data() : (void *)o.yHead.data();
  auto dy = describe<4>(out, {1, m, s.groups, s.n});
  auto dy3 = describe<3>(out, {1, m, rows});
  GridCall c{k.get(), {}, {k->blocks(0, m), k->blocks(1, m), k->blocks(2, m)}};
  c.args.push_back(grouped ? (void *)&dx : (void *)&dx3);
  c.args.push_back(&dw);
  if (s.fp8)
    c.args.push_back(&ds);
  c.args.push_back(grouped ? (void *)&dy : (void *)&dy3);
  uint64_t blocks = uint64_t(c.grid[0] * c.grid[1] * c.grid[2]);
  for (auto _ : state) {
    pool().run(blocks, runBlock, &c);
    benchmark::ClobberMemory();
  }
  setCounters(state, s, m);
  state.counters["blocks"] = double(blocks);
}

void benchOpenBLAS(benchmark::State &state, Shape s, int64_t m) {
#ifdef V4_HAVE_OPENBLAS
  openblas_set_num_threads(int(pool().size()));
  Operands o = makeOperands(s, m);
  int64_t rows = s.groups * s.n;
  for (auto _ : state) {
    // One sgemm per group: y[:, g] = x[:, g, :] . W[g*N:(g+1)*N, :]^T.
    for (int64_t g = 0; g < s.groups; ++g)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(s.n),
                  int(s.k), 1.0f, o.xf.data() + g * s.k, int(s.groups * s.k),
                  o.wf.data() + g * s.n * s.k, int(s.k), 0.0f,
                  o.yf.data() + g * s.n, int(rows));
    benchmark::ClobberMemory();
  }
  setCounters(state, s, m);
#else
  state.SkipWithError("OpenBLAS is missing: this build has no sgemm peer "
                      "(install libopenblas-dev and reconfigure)");
#endif
}

} // namespace

int main(int argc, char **argv) {
  std::vector<char *> rest;
  for (int i = 0; i < argc; ++i) {
    if (i > 0 && std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      gThreads = unsigned(std::strtoul(argv[++i], nullptr, 10));
      continue;
    }
    rest.push_back(argv[i]);
  }
  gThreads = ::v4::rt::resolveThreadCount(gThreads);
  benchmark::AddCustomContext("threads", std::to_string(gThreads));
#ifdef V4_HAVE_OPENBLAS
  benchmark::AddCustomContext("peer", "OpenBLAS cblas_sgemm (fp32, "
                                      "dequantised weights)");
#else
  benchmark::AddCustomContext("peer", "missing (built without OpenBLAS)");
#endif
  for (const Shape &s : kShapes)
    for (int64_t m : kTokens) {
      std::string name = caseName(s, m);
      benchmark::RegisterBenchmark(("openblas_sgemm/" + name).c_str(),
                                   benchOpenBLAS, s, m)
          ->Unit(benchmark::kMicrosecond)
          ->MinTime(0.3)
          ->UseRealTime();
      benchmark::RegisterBenchmark(("v4_kernel/" + name).c_str(), benchOurs, s,
                                   m)
          ->Unit(benchmark::kMicrosecond)
          ->MinTime(0.3)
          ->UseRealTime();
    }
  int n = int(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
