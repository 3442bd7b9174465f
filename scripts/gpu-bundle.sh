#!/usr/bin/env bash
# Builds the bundle scripts/gpu-check.sh runs on a GPU machine that has the
# NVIDIA driver but no compiler, no Debian packages and no network (issue
# 10): everything it needs, compiled here.
#
#   scripts/gpu-bundle.sh [DIR]      (default build/gpu-bundle)
#
# DIR/bin       v4-run and v4-dump (the runtime only: no MLIR/LLVM), and
#               v4-runtime-tests for the NCCL engine's GPU test (RealNccl.*)
# DIR/lib       the shared libraries they need beyond the C library
# DIR/models    per model: its config, a checkpoint (v4-gen-checkpoint,
#               seed 7) and artifacts built for both targets
#               (--target=cpu,sm_90a --logits=all), so the GPU machine
#               computes the CPU side of every comparison itself:
#                 <model>.fp32.v4a  --numerics=fp32 --fake-quant=none
#                 <model>.prod.v4a  production numerics (T1 and Engram)
#               Models: T1, Engram, and the five variants of the numerics
#               issue's fidelity test (test/unit/FidelityTest.cpp), each
#               changing one thing of T1. And mid.time.v4a: the mid-size
#               config (bench/configs/mid-v4.config.json, production,
#               --max-context 1024 --max-chunk 64) for the decode step
#               time, run on synthetic weights (no checkpoint).
# DIR/gpu-check.sh
# DIR.tar.gz    all of it, the form that travels: under 60 MB (about 20;
#               unpacked about 62, the artifacts' PTX and cubin dominating).
#               On the GPU machine: tar xzf gpu-bundle.tar.gz &&
#               gpu-bundle/gpu-check.sh. The script fails above the limit.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${V4_BUILD_DIR:-$root/build}"
bundle="${1:-$build/gpu-bundle}"
limit_mb=60

"$root/scripts/build.sh" v4c v4-run v4-dump v4-gen-checkpoint v4-runtime-tests
rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib" "$bundle/models"
cp "$build/bin/v4-run" "$build/bin/v4-dump" \
  "$build/test/runtime/v4-runtime-tests" "$bundle/bin/"
# Every shared library they need but the C library's own.
for tool in v4-run v4-dump v4-runtime-tests; do
  ldd "$bundle/bin/$tool" | awk '$3 ~ /^\// {print $3}' |
    grep -v -E '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*)\.so' |
    while read -r lib; do cp -L "$lib" "$bundle/lib/"; done
done

# The configs: T1, Engram, and the fidelity test's variants of T1.
python3 - "$root/models" "$bundle/models" <<'EOF'
import json, shutil, sys
src, dst = sys.argv[1:3]
shutil.copy(f"{src}/tiny-v4-t1.config.json", f"{dst}/t1.config.json")
shutil.copy(f"{src}/tiny-v4-engram.config.json", f"{dst}/engram.config.json")
variants = {
    "hc_mult_2": {"hc_mult": 2},
    "window_16_ratio_16": {"sliding_window": 16,
                           "compress_ratios": [0, 4, 16, 4, 16, 0]},
    "top3_of_8_index_topk_2": {"n_routed_experts": 8,
                               "num_experts_per_tok": 3, "index_topk": 2},
    "o_groups_4": {"o_groups": 4},
    "no_hash_layers": {"num_hash_layers": 0},
}
base = json.load(open(f"{src}/tiny-v4-t1.config.json"))
for name, change in variants.items():
    config = dict(base)
    config.update(change)
    with open(f"{dst}/{name}.config.json", "w") as f:
        json.dump(config, f, indent=2)
EOF

for config in "$bundle"/models/*.config.json; do
  m="$(basename "$config" .config.json)"
  "$build/bin/v4-gen-checkpoint" "$config" -o "$bundle/models/$m.ck" --seed 7
  "$build/bin/v4c" "$config" --target=cpu,sm_90a --logits=all \
    --numerics=fp32 --fake-quant=none -o "$bundle/models/$m.fp32.v4a"
  case "$m" in
    t1 | engram)
      "$build/bin/v4c" "$config" --target=cpu,sm_90a --logits=all \
        -o "$bundle/models/$m.prod.v4a" ;;
  esac
done
# The mid-size config of the real-size plans issue (bench/configs), for the
# decode step time: no checkpoint travels, v4-run binds synthetic weights.
cp "$root/bench/configs/mid-v4.config.json" "$bundle/models/mid.config.json"
"$build/bin/v4c" "$bundle/models/mid.config.json" --target=cpu,sm_90a \
  --max-context 1024 --max-chunk 64 -o "$bundle/models/mid.time.v4a"
cp "$root/scripts/gpu-check.sh" "$bundle/"

tar czf "$bundle.tar.gz" -C "$(dirname "$bundle")" "$(basename "$bundle")"
size_kb="$(du -sk "$bundle.tar.gz" | cut -f1)"
echo "gpu-bundle: $bundle.tar.gz, $((size_kb / 1024)) MB" \
  "($(du -sm "$bundle" | cut -f1) MB unpacked in $bundle)"
if [ "$size_kb" -gt $((limit_mb * 1024)) ]; then
  echo "gpu-bundle: the bundle is above $limit_mb MB" >&2
  exit 1
fi
