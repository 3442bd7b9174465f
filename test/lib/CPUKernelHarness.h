//===- CPUKernelHarness.h - build, compile and load one CPU kernel -*- C++
//-*-===//
//
// Test support: parses one v4 op, outlines it as dispatch formation does,
// compiles it with the CPU target's kernel phase (hand-built or linalg body,
// bufferized, LLVM, in-process lld) into a shared object, dlopens it and
// calls it through the kernel ABI (runtime/base/KernelABI.h).
//
//===----------------------------------------------------------------------===//
#ifndef V4_TEST_LIB_CPUKERNELHARNESS_H
#define V4_TEST_LIB_CPUKERNELHARNESS_H

#include "dialects/V4/V4Dialect.h"
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4StorageLayout.h"
#include "lowering/Dispatch/DispatchFormation.h"
#include "lowering/Pipelines.h"
#include "lowering/Target/TargetBackend.h"
#include "runtime/base/KernelABI.h"
#include "runtime/numerics/Numerics.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <dlfcn.h>
#include <random>
#include <string>
#include <vector>

namespace v4test {

using namespace mlir;

/// A strided memref descriptor of rank R (runtime/base/KernelABI.h).
template <int R> using Descriptor = ::v4::abi::MemRefDescriptor<R>;

template <int R>
inline Descriptor<R> describe(void *data, std::array<int64_t, R> sizes) {
  Descriptor<R> d;
  ::v4::abi::writeDescriptor(data, sizes.data(), R,
                             reinterpret_cast<int64_t *>(&d));
  return d;
}

/// Compiles the kernel of the single v4 op in `source` and loads it.
class CompiledKernel {
public:
  /// Use as ASSERT_NO_FATAL_FAILURE(kernel.compile(source)).
  void compile(const std::string &source) {
    DialectRegistry registry;
    registry.insert<mlir::v4::V4Dialect, func::FuncDialect, arith::ArithDialect,
                    tensor::TensorDialect>();
    mlir::v4::registerLoweringDialects(registry);
    context.appendDialectRegistry(registry);
    context.loadAllAvailableDialects();
    OwningOpRef<ModuleOp> input = parseSourceString<ModuleOp>(source, &context);
    ASSERT_TRUE(input);
    Operation *op = nullptr;
    input->walk([&](Operation *o) {
      if (isa<mlir::v4::V4Dialect>(o->getDialect()))
        op = o;
    });
    ASSERT_NE(op, nullptr);
    // The ABI takes the storage buffers of the operands and of the fresh
    // results; tests pass every result's, so remember which to drop.
    auto tied = dyn_cast<mlir::v4::TiedResultsOpInterface>(op);
    for (Value v : op->getOperands()) {
      SmallVector<Type> types;
      ASSERT_TRUE(
          succeeded(mlir::v4::getStorageMemRefTypes(v.getType(), types)));
      keep.insert(keep.end(), types.size(), true);
    }
    for (OpResult r : op->getResults()) {
      SmallVector<Type> types;
      ASSERT_TRUE(
          succeeded(mlir::v4::getStorageMemRefTypes(r.getType(), types)));
      bool isTied = tied && tied.getTiedOperandIndex(r.getResultNumber());
      keep.insert(keep.end(), types.size(), !isTied);
    }
    OwningOpRef<ModuleOp> kernels = ModuleOp::create(UnknownLoc::get(&context));
    (*kernels)->setAttr("v4.target", StringAttr::get(&context, "cpu"));
    // The numerics of the source module (v4.numerics, v4.sum_order, ...)
    // are the kernels'.
    for (NamedAttribute a : (*input)->getAttrs())
      if (a.getName().getValue().starts_with("v4."))
        (*kernels)->setAttr(a.getName(), a.getValue());
    ASSERT_TRUE(succeeded(mlir::v4::outlineKernel(op, *kernels, "kernel")));
    ASSERT_NO_FATAL_FAILURE(compileAndLoad(*kernels));
  }

  /// Compiles a kernels module as written (public functions marked
  /// v4.kernel, one named "kernel"; every argument a buffer) and loads it.
  /// Use as ASSERT_NO_FATAL_FAILURE(kernel.compileModule(source, buffers)).
  void compileModule(const std::string &source, size_t buffers) {
    DialectRegistry registry;
    registry.insert<func::FuncDialect, arith::ArithDialect>();
    mlir::v4::registerLoweringDialects(registry);
    context.appendDialectRegistry(registry);
    context.loadAllAvailableDialects();
    OwningOpRef<ModuleOp> kernels =
        parseSourceString<ModuleOp>(source, &context);
    ASSERT_TRUE(kernels);
    keep.assign(buffers, true);
    ASSERT_NO_FATAL_FAILURE(compileAndLoad(*kernels));
  }

private:
  void compileAndLoad(ModuleOp kernels) {
    const mlir::v4::TargetBackend *cpu = mlir::v4::lookupTargetBackend("cpu");
    ASSERT_NE(cpu, nullptr);
    PassManager pm(&context);
    cpu->buildKernelPipeline(pm);
    ASSERT_TRUE(succeeded(pm.run(kernels)));
    FailureOr<llvm::SmallVector<mlir::v4::CodeObject>> objects =
        cpu->serialize(kernels);
    ASSERT_TRUE(succeeded(objects));
    ASSERT_EQ(objects->size(), 1u);
    const mlir::v4::CodeObject *so = &objects->front();
    object = so->bytes;
    llvm::SmallString<128> path;
    int fd;
    ASSERT_FALSE(llvm::sys::fs::createTemporaryFile("v4-test", "so", fd, path));
    {
      llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
      os.write(reinterpret_cast<const char *>(so->bytes.data()),
               so->bytes.size());
    }
    handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    llvm::sys::fs::remove(path);
    ASSERT_NE(handle, nullptr) << dlerror();
    entry = reinterpret_cast<::v4::abi::KernelEntry>(dlsym(handle, "kernel"));
    ASSERT_NE(entry, nullptr) << dlerror();
  }

public:
  /// The loaded shared object's bytes.
  const std::vector<uint8_t> &code() const { return object; }
  ~CompiledKernel() {
    if (handle)
      dlclose(handle);
  }
  /// Runs the kernel with a descriptor per storage buffer of every operand
  /// and every result (those of tied results are dropped: the kernel
  /// updates the operand in place), as one call: a null launch block
  /// (block 0 of a 1x1x1 grid, runtime/base/KernelABI.h).
  void run(std::vector<void *> descriptors) {
    runBlock(std::move(descriptors), nullptr);
  }
  /// Runs every block of a gridX x gridY grid, in reverse order (a kernel
  /// with a launch grid computes each output in exactly one block, so the
  /// result is the one call's).
  void runGrid(std::vector<void *> descriptors, int64_t gridX, int64_t gridY) {
    for (int64_t y = gridY; y-- > 0;)
      for (int64_t x = gridX; x-- > 0;) {
        ::v4::abi::LaunchBlock block{x, y, 0, gridX, gridY, 1};
        runBlock(descriptors, &block);
      }
  }

private:
  void runBlock(std::vector<void *> descriptors,
                ::v4::abi::LaunchBlock *block) {
    ASSERT_EQ(descriptors.size(), keep.size());
    std::vector<void *> args;
    for (size_t i = 0; i < descriptors.size(); ++i)
      if (keep[i])
        args.push_back(descriptors[i]);
    args.push_back(block);
    entry(args.data());
  }

public:
private:
  std::vector<bool> keep;
  std::vector<uint8_t> object;
  MLIRContext context;
  void *handle = nullptr;
  ::v4::abi::KernelEntry entry = nullptr;
};

using ::v4::quant::decodeBF16;
using ::v4::quant::encodeBF16;

/// n bf16 codes uniform in [-scale, scale].
inline std::vector<uint16_t> randomBf16(size_t n, uint64_t seed,
                                        float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<uint16_t> v(n);
  for (auto &x : v)
    x = encodeBF16(dist(rng));
  return v;
}

/// The activations of the tests where the pair dots' order shows: M rows
/// of K (bf16 codes), each 16, 0, -16, 2^-13, then zeros. Against weights
/// 1, 0, 1, 2^-9 they sum to 2^-22 in order, to 0 in pairs (the odd
/// element's product first: 16 + 2^-22 rounds to 16).
inline std::vector<uint16_t> pairOrderActivations(int64_t M, int64_t K) {
  std::vector<uint16_t> x(M * K, encodeBF16(0.0f));
  for (int64_t r = 0; r < M; ++r) {
    x[r * K + 0] = encodeBF16(16.0f);
    x[r * K + 2] = encodeBF16(-16.0f);
    x[r * K + 3] = encodeBF16(0x1p-13f);
  }
  return x;
}

/// Runs a kernel of pairOrderActivations against weights 1, 0, 1, 2^-9
/// (`run(module attributes)`, its f32 outputs) in the fast order on
/// x86-64-v4-bf16 (pair dots: 0), on x86-64-v4 (2^-22) and in the
/// reference order (2^-22).
template <typename Run> void expectPairOrderShows(Run run) {
  const std::string fast = "v4.sum_order = \"fast\", v4.cpu = ";
  for (float v : run(fast + "\"x86-64-v4-bf16\""))
    ASSERT_EQ(v, 0.0f) << "pair dots";
  for (float v : run(fast + "\"x86-64-v4\""))
    ASSERT_EQ(v, 0x1p-22f) << "x86-64-v4, fast";
  for (float v : run("v4.cpu = \"x86-64-v4-bf16\""))
    ASSERT_EQ(v, 0x1p-22f) << "reference order";
}

} // namespace v4test

#endif // V4_TEST_LIB_CPUKERNELHARNESS_H
