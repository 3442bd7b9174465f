#!/usr/bin/env bash
# The main job on the built-in default model (models/tiny-v4-t1.config.json,
# the T1 model of V4-SPEC 11.1): install what is missing, build, then
#   1. v4-gen-checkpoint writes deterministic random weights in the official
#      layout for it,
#   2. v4c imports the config into a verified v4 module and checks every
#      parameter against that checkpoint,
#   3. v4-opt runs the graph pipeline over the module with verification after
#      every pass, timing and the model statistics report.
# Compile-to-artifact and running the model come with the lowering and the
# runtime (docs/ARCHITECTURE.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${V4_BUILD_DIR:-$root/build}"
config="${1:-$root/models/tiny-v4-t1.config.json}"
out="$build/default-model"

"$root/scripts/build.sh" v4c v4-opt v4-gen-checkpoint
mkdir -p "$out"

echo "== v4-gen-checkpoint: random weights (seed 0) -> $out/checkpoint"
rm -rf "$out/checkpoint"
"$build/bin/v4-gen-checkpoint" "$config" -o "$out/checkpoint" --seed 0

echo "== v4c: import $config and check it against the checkpoint"
"$build/bin/v4c" "$config" --checkpoint "$out/checkpoint" --emit=mlir \
  -o "$out/model.mlir" --mlir-timing
echo "checkpoint matches every parameter of the model"

echo "== v4-opt: verify, canonicalize, CSE, statistics"
"$build/bin/v4-opt" "$out/model.mlir" \
  --verify-each \
  --pass-pipeline='builtin.module(canonicalize,cse,v4-model-statistics{print-report=true})' \
  --mlir-timing \
  -o "$out/model.opt.mlir"
echo "== wrote $out/model.mlir, $out/model.opt.mlir and $out/checkpoint"
