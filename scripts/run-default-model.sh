#!/usr/bin/env bash
# The main job on the built-in default model (models/tiny-v4-t1.config.json,
# the T1 model of V4-SPEC 11.1): install what is missing, build, then
#   1. v4-gen-checkpoint writes deterministic random weights in the official
#      layout for it,
#   2. v4c imports the config into a verified v4 module and checks every
#      parameter against that checkpoint,
#   3. v4-opt runs the graph pipeline over the module with verification after
#      every pass, timing and the model statistics report.
#   4. v4c compiles it into a CPU artifact (kernels in a host shared object),
#   5. v4-run prefills a prompt and decodes through the runtime C API and
#      prints the tokens and the prefill/decode throughput.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${V4_BUILD_DIR:-$root/build}"
config="${1:-$root/models/tiny-v4-t1.config.json}"
out="$build/default-model"

"$root/scripts/build.sh" v4c v4-opt v4-gen-checkpoint v4-run v4-dump
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
echo "== v4c: the dispatch phase (kernels + plan over buffers) as IR"
"$build/bin/v4c" "$config" --batch 1 --max-context 128 --compile-to=dispatch \
  -o "$out/model.dispatch.mlir"
echo "== v4c: the memory plan (weights, state, activation arena, over bounds)"
"$build/bin/v4c" "$config" --batch 1 --max-context 128 --emit=plan
echo "== v4c: compile to a CPU artifact (graph, dispatch, kernel phases)"
"$build/bin/v4c" "$config" --batch 1 --max-context 128 --target=cpu \
  -o "$out/model.v4a" --mlir-timing
"$build/bin/v4-dump" "$out/model.v4a" --verify
"$build/bin/v4-dump" "$out/model.v4a" | sed -n '1,8p'

echo "== v4-run: prefill a 21-token prompt, decode 32 tokens"
"$build/bin/v4-run" "$out/model.v4a" --checkpoint "$out/checkpoint" \
  --prompt-ids 5,17,33,2,9,41,7,23,11,3,60,12,8,90,1,44,31,29,77,5,66 \
  --max-new-tokens 32
echo "== wrote $out/{model.mlir,model.opt.mlir,model.dispatch.mlir,model.v4a} and $out/checkpoint"
