//===- KernelDump.h - v4c --dump-kernels-to DIR -----------------*- C++ -*-===//
//
// Writes what the kernel phase made of each kernel into a folder:
//   <symbol>.mlir   the kernel-phase IR of one kernel: a module (with the
//                   kernels module's attributes) holding the kernel's entry
//                   function and every symbol it reaches (its body, helper
//                   declarations, constants), parseable by v4-opt;
//   code<N>.<ext>   code object N of the artifact, byte for byte (.so for
//                   the CPU target, which links every kernel into one
//                   shared object: one file for all kernels; .ptx/.cubin
//                   for GPU code);
//   kernels.txt     one line per kernel: name, entry symbol, IR file, code
//                   object file.
// The code objects come from the artifact, so they are written only when
// v4c builds one.
//
//===----------------------------------------------------------------------===//
#ifndef V4_TOOLS_V4C_KERNELDUMP_H
#define V4_TOOLS_V4C_KERNELDUMP_H

#include "mlir/IR/BuiltinOps.h"

#include "llvm/ADT/StringRef.h"

#include <string>
#include <utility>
#include <vector>

namespace v4 {

/// (entry symbol, IR text) of every kernel (functions with the `v4.kernel`
/// attribute) of the kernels module of `module`, after the kernel phase.
std::vector<std::pair<std::string, std::string>>
getKernelIR(mlir::ModuleOp module);

/// Writes the folder's files (see above); `artifact` is the artifact's
/// bytes, or null when v4c wrote IR only. Prints an error naming the file
/// and returns false when one cannot be written.
bool writeKernelDump(llvm::StringRef dir,
                     const std::vector<std::pair<std::string, std::string>> &ir,
                     const std::string *artifact);

} // namespace v4

#endif // V4_TOOLS_V4C_KERNELDUMP_H
