#!/usr/bin/env bash
# Installs what v4c needs to build and test on Debian 12, skipping what is
# already there. Safe to run repeatedly. Needs root (or sudo) only when a
# package is missing.
set -euo pipefail

PACKAGES=(
  # compiler: LLVM/MLIR 22 and the test tools (lit, FileCheck, not)
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools
  # artifact format
  libflatbuffers-dev flatbuffers-compiler
  # build
  cmake ninja-build g++ ccache python3
  # runtime JSON, unit tests, benchmarks
  nlohmann-json3-dev googletest libgtest-dev libbenchmark-dev
  # the peer of the linear-kernel benchmark (OpenBLAS sgemm; optional in CMake)
  libopenblas-dev
  # tokenizer: Unicode regexes of tokenizer.json split patterns
  libpcre2-dev pkg-config
  # the argument parser of the LLVM-free tools (v4-run, v4-dump, v4-tokenize)
  libcli11-dev
  # CPU target: in-process linking of kernel objects into a shared object
  liblld-22-dev lld-22 zlib1g-dev libzstd-dev
  # the sanitizer and fuzzing build (scripts/sanitize.sh): clang with
  # libFuzzer, and FuzzedDataProvider.h for every build's fuzz replays
  clang-22 libclang-rt-22-dev
  # runtime: SHA-256 of artifacts (v4rt_model_options_t.expected_sha256)
  libssl-dev
  # runtime: the collectives' MPI engine (the plugin libv4rt-mpi.so; without
  # it only a single rank runs) and mpirun for its tests (lit feature 'mpi')
  libopenmpi-dev openmpi-bin
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root to install ${missing[*]}" >&2; exit 3; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; then
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
