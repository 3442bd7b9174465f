//===- TargetBackend.h - the one interface a code target implements -*- C++
//-*-===//
//
// A target (the CPU, sm_90a) plugs into the lowering through this
// interface only, as IREE's TargetBackend: it names the dialects its kernels
// use, builds the kernel phase pipeline that turns the kernels module of
// dispatch formation into its code, hand-builds the kernels of the hot ops
// it has schedules for, serializes the lowered kernels into a code object,
// and describes each kernel's launch geometry. `v4c --target=<name>` and
// the module attribute `v4.target` select a registered backend.
//
// Adding a target: one folder lowering/Target/<Name>/ with a subclass and a
// register function called from registerBuiltinTargetBackends(). Dispatch
// formation, V4ToLinalg, the pipelines and the artifact writer do not
// change.
//
//===----------------------------------------------------------------------===//
#ifndef V4_LOWERING_TARGET_TARGETBACKEND_H
#define V4_LOWERING_TARGET_TARGETBACKEND_H

#include "runtime/artifact/Artifact.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/LLVM.h"

#include <memory>
#include <vector>

namespace mlir::v4 {

/// A compiled code object of a kernels module (a target may give several
/// forms of the same kernels, e.g. PTX and a cubin; kernels refer to the
/// first).
struct CodeObject {
  ::v4::artifact::Target target;
  ::v4::artifact::CodeFormat format;
  std::vector<uint8_t> bytes;
  /// A host object's x86-64 level (runtime/base/HostISA.h).
  std::string isa;
};

/// The module attribute naming the x86-64 level of the CPU target's kernels
/// (v4c --cpu; absent: ::v4::kDefaultHostISA).
constexpr llvm::StringLiteral kHostISAAttrName = "v4.cpu";

/// The module attribute asking for AddressSanitizer instrumentation of the
/// CPU target's kernels (v4c --sanitize-kernels=address; docs/RELIABILITY.md
/// 3.3): "address", or absent. Such kernels load only into a runtime built
/// with V4_SANITIZE=address (elsewhere their __asan_* references fail RT-4).
constexpr llvm::StringLiteral kSanitizeKernelsAttrName = "v4.sanitize_kernels";

/// A kernel function with a launch grid carries this attribute,
/// array<i64: fixedX, tokenTileX, fixedY, tokenTileY, fixedZ, tokenTileZ>
/// (the artifact's GridDim per dimension), and takes, after its buffers,
/// kLaunchBlockArgs index arguments: the LaunchBlock of
/// runtime/base/KernelABI.h (block x, y, z, then grid x, y, z). A kernel
/// without it is one call per dispatch.
constexpr llvm::StringLiteral kLaunchGridAttrName = "v4.launch_grid";
/// Optionally, beside kLaunchGridAttrName and in its layout, the finest grid
/// the body's work splits into usefully (a GEMM: 8 output features and one
/// token per block). The body takes its share from the launch block's grid
/// dims, so every grid is correct; a target of many small processors
/// (sm_90a) launches this one, the CPU the coarse one.
constexpr llvm::StringLiteral kFinestLaunchGridAttrName =
    "v4.launch_grid_finest";
constexpr unsigned kLaunchBlockArgs = 6;
/// A kernel function of one dispatch (no launch grid) whose op computes
/// each token from that token's inputs alone carries this i64 attribute:
/// the most tokens of one slice a host runtime may call it on, slices in
/// parallel (artifact Launch.tokenSlice). Set by dispatch formation.
constexpr llvm::StringLiteral kTokenSliceAttrName = "v4.token_slice";

class TargetBackend {
public:
  virtual ~TargetBackend();

  /// The name `--target=` and `v4.target` use ("cpu").
  virtual StringRef getName() const = 0;
  virtual StringRef getDescription() const = 0;
  /// The artifact's target enum for this backend's code objects.
  virtual ::v4::artifact::Target getArtifactTarget() const = 0;

  /// Dialects (and their external interface models) the kernel phase of
  /// this target creates.
  virtual void getDependentDialects(DialectRegistry &registry) const = 0;

  /// Appends the kernel phase to `pm`, a pass manager on the kernels module
  /// (`module @kernels`): from v4.kernel functions on model types to the
  /// IR `serialize` takes.
  virtual void buildKernelPipeline(OpPassManager &pm) const = 0;

  /// Whether this target builds the kernel of `op` by hand.
  virtual bool hasHandBuiltKernel(Operation *op) const = 0;
  /// Builds the kernel of `op` by hand at the end of `kernels` as a public
  /// func.func `name` on storage memrefs: the operands' buffers, then the
  /// buffers of every result (a tied result's buffers alias its operand's,
  /// and the body must be correct under that aliasing). Emits a diagnostic
  /// at `op` on failure.
  virtual FailureOr<func::FuncOp>
  buildHandBuiltKernel(Operation *op, ModuleOp kernels,
                       StringRef name) const = 0;

  /// Serializes a kernels module after the kernel phase into code objects:
  /// at least one; the first is the one the artifact's kernels name, later
  /// ones are other forms of the same kernels.
  virtual FailureOr<SmallVector<CodeObject>>
  serialize(ModuleOp kernels) const = 0;

  /// Fills the launch geometry of kernel `name` (default: one call per
  /// dispatch; the CPU target: the grid its hand builders recorded with
  /// kLaunchGridAttrName).
  virtual void describeLaunch(ModuleOp kernels, StringRef name,
                              ::v4::artifact::Kernel &kernel) const;
};

/// Registers `backend` under its name (later registrations of a name win).
void registerTargetBackend(std::unique_ptr<TargetBackend> backend);
/// The backend named `name`, or nullptr.
const TargetBackend *lookupTargetBackend(StringRef name);
/// The names of every registered backend, sorted.
SmallVector<StringRef> getRegisteredTargetBackendNames();
/// Registers the backends built into this compiler (cpu). Idempotent.
void registerBuiltinTargetBackends();

/// The backends of a target list: one name ("cpu") or several, comma
/// separated ("cpu,sm_90a": one artifact with the kernels of each; the first
/// is the artifact's target). On failure `error` says why: an empty or
/// unknown name (listing the known ones), or a name given twice.
FailureOr<SmallVector<const TargetBackend *>>
parseTargetList(StringRef list, std::string &error);

/// The start of every target's kernel phase, target-neutral: `target`'s
/// hand builders (v4-build-target-kernels), convert-v4-to-linalg, the
/// numerics passes, and one-shot bufferization of each kernel into its
/// argument buffers (v4-finalize-kernel-abi).
void addBufferizedKernelPasses(OpPassManager &pm, StringRef target);
/// The dialects and bufferization models addBufferizedKernelPasses needs.
void registerBufferizedKernelDialects(DialectRegistry &registry);

/// The target of `op`'s nearest enclosing module with a `v4.target`
/// attribute; emits an error naming the attribute or the unknown name.
FailureOr<const TargetBackend *> getTargetBackendFor(Operation *op);

} // namespace mlir::v4

#endif // V4_LOWERING_TARGET_TARGETBACKEND_H
