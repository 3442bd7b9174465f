# -*- Python -*-
# lit configuration of the v4c regression suite.

import os
import shlex
import shutil
import subprocess
import sys

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "V4"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test", ".json"]
config.excludes = ["Inputs", "fuzz", "CMakeLists.txt", "README.md", "lit.cfg.py",
                   "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.v4_obj_root, "test")

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%v4_src_root", config.v4_src_root))
config.substitutions.append(("%v4_obj_root", config.v4_obj_root))
config.substitutions.append(("%python", sys.executable))
# %exit_code [--launcher] CODE CMD...: runs CMD, fails unless it exits with
# CODE (--launcher: runs an mpirun job again when mpirun itself crashes; see
# Inputs/exit_code.py).
config.substitutions.append(
    ("%exit_code", sys.executable + " " +
     os.path.join(config.v4_src_root, "test", "Inputs", "exit_code.py")))
config.environment["FILECHECK_OPTS"] = "-enable-var-scope"
# The code cache (cubins, CPU shared objects): the build's own, not the
# user's, unless V4C_CACHE_DIR names one (scripts/test.sh shares one folder
# between the build trees of its suites).
config.environment["V4C_CACHE_DIR"] = os.environ.get(
    "V4C_CACHE_DIR", os.path.join(config.v4_obj_root, "test", "v4c-cache"))

llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP"])
llvm_config.use_default_substitutions()

tool_dirs = [config.v4_tools_dir, config.llvm_tools_dir]
tools = [ToolSubst("v4-opt", unresolved="fatal"),
         ToolSubst("v4-gen-checkpoint", unresolved="fatal"),
         ToolSubst("v4c", unresolved="fatal"),
         ToolSubst("v4-dump", unresolved="fatal"),
         ToolSubst("v4-artifact-testgen", unresolved="fatal"),
         ToolSubst("v4-run", unresolved="fatal"),
         ToolSubst("v4-tokenize", unresolved="fatal"),
         ToolSubst("v4-check", unresolved="fatal")]
llvm_config.add_tool_substitutions(tools, tool_dirs)
# `not` and `count` at the start of a RUN line come from the LLVM tools.
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

# GPU features: a test that needs a GPU states it with REQUIRES, and the
# folders integration/gpu-sm90 and integration/multi-gpu gate themselves.
def _gpu_compute_capabilities():
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=compute_cap", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20).stdout
    except Exception:
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]

# The tools themselves are built with AddressSanitizer (scripts/sanitize.sh).
if "address" in config.v4_sanitize:
    config.available_features.add("asan")

if config.v4_enable_cuda:
    config.available_features.add("ptxas")
    config.substitutions.append(
        ("%ptxas", os.path.join(config.v4_cuda_toolkit, "bin", "ptxas")))
    config.substitutions.append(("%cuda_toolkit", config.v4_cuda_toolkit))
    if os.path.exists(os.path.join(config.v4_cuda_toolkit, "include", "nccl.h")):
        config.available_features.add("nccl")
caps = _gpu_compute_capabilities()
if caps:
    config.available_features.add("cuda")
    if "9.0" in caps:
        config.available_features.add("cuda-sm90")
    if len(caps) > 1:
        config.available_features.add("multi-gpu")

# MPI: the collectives' MPI engine (libv4rt-mpi.so, built where MPI was
# found) and an MPI launcher. %mpirun runs as root (containers) with more
# ranks than cores, the ranks of one host talking through shared memory.
_mpi_plugin = os.path.join(config.v4_obj_root, "lib", "libv4rt-mpi.so")
_mpirun = shutil.which("mpirun")
if _mpirun and os.path.exists(_mpi_plugin):
    config.available_features.add("mpi")
    config.substitutions.append(("%v4rt_mpi_plugin", _mpi_plugin))
    # Under AddressSanitizer the MPI processes run without the exit-time
    # leak check: Open MPI dlclose()s its MCA components in MPI_Finalize,
    # so the memory they keep is reported from unknown modules that no
    # suppression can name. Every other process keeps the check. The
    # ranks copy through shared memory without CMA (process_vm_readv, whose
    # interceptor AddressSanitizer reports past the end of a receive buffer
    # that the message fits exactly).
    _asan = os.environ.get("ASAN_OPTIONS", "")
    _mpi_env = "env ASAN_OPTIONS=%s " % shlex.quote(
        (_asan + ":" if _asan else "") + "detect_leaks=0")
    config.substitutions.append(("%mpi_env", _mpi_env))
    config.substitutions.append(
        ("%mpirun", _mpi_env + _mpirun + " --allow-run-as-root --oversubscribe"
         " --mca btl self,vader --mca btl_vader_single_copy_mechanism none"))
