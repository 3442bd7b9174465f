#!/usr/bin/env bash
# The main job on the built-in default model: install what is missing, build,
# then run v4-opt over the example model IR with verification after every
# pass, canonicalization + CSE, timing and the model statistics report.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${V4_BUILD_DIR:-$root/build}"
model="${1:-$root/models/example/tiny-v4-model.mlir}"

"$root/scripts/build.sh" v4-opt

echo "== v4-opt on $model"
"$build/bin/v4-opt" "$model" \
  --verify-each \
  --pass-pipeline='builtin.module(v4-model-statistics{print-report=true},canonicalize,cse,v4-model-statistics{print-report=true})' \
  --mlir-timing \
  -o "$build/tiny-v4-model.opt.mlir"
echo "== wrote $build/tiny-v4-model.opt.mlir ($(wc -l < "$build/tiny-v4-model.opt.mlir") lines)"
