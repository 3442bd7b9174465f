#!/usr/bin/env bash
# The GPU check of the sm_90a target (issue 10), in two halves so the GPU
# machine (no compiler, no Debian packages) needs only the bundle:
#
#   scripts/gpu-check.sh prepare [DIR]  here: build v4c, v4-run and
#       v4-gen-checkpoint; compile each model for the CPU and for sm_90a
#       (--logits=all), write its checkpoint, and copy v4-run with the
#       shared libraries it needs into DIR (default build/gpu-bundle).
#   scripts/gpu-check.sh run [DIR]      on the GPU machine: for each model,
#       run the prompt on the CUDA device and on the CPU device from the
#       same bundle, and compare every step's logits; print the device,
#       driver and figures, and exit 1 when a model disagrees.
#   scripts/gpu-check.sh                both, on a machine that has both.
#
# Agreement (production numerics; the GPU's libdevice transcendentals differ
# from glibc's in the last bits): the same greedy tokens, every step's
# logits within a normwise relative error of 1e-2, and top-1 agreement of
# every step.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${V4_BUILD_DIR:-$root/build}"
mode="${1:-all}"
bundle="${2:-$build/gpu-bundle}"
models="tiny-v4-t1 tiny-v4-engram"
prompt="1,2,3,4,5,6,7,8,9,10,11,12"

prepare() {
  "$root/scripts/build.sh" v4c v4-run v4-gen-checkpoint
  rm -rf "$bundle"
  mkdir -p "$bundle/bin" "$bundle/lib"
  cp "$build/bin/v4-run" "$bundle/bin/"
  # Every shared library v4-run needs but the C library's own.
  ldd "$build/bin/v4-run" | awk '$3 ~ /^\// {print $3}' |
    grep -v -E '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*)\.so' |
    while read -r lib; do cp -L "$lib" "$bundle/lib/"; done
  for m in $models; do
    config="$root/models/$m.config.json"
    "$build/bin/v4-gen-checkpoint" "$config" -o "$bundle/$m.ck" --seed 7
    for target in cpu sm_90a; do
      "$build/bin/v4c" "$config" --target=$target --logits=all \
        -o "$bundle/$m.$target.v4a"
    done
  done
  cp "$root/scripts/gpu-check.sh" "$bundle/"
  du -sh "$bundle"
}

run() {
  # v4-run alone takes the bundled libraries (python3 keeps the system's).
  local libs="$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  local v4run="$bundle/bin/v4-run" failed=0
  echo "== device"
  nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total \
    --format=csv,noheader || true
  for m in $models; do
    echo "== $m"
    local ran=1
    for target in cpu sm_90a; do
      if ! LD_LIBRARY_PATH="$libs" "$v4run" "$bundle/$m.$target.v4a" --checkpoint "$bundle/$m.ck" \
        --prompt-ids "$prompt" --max-new-tokens 16 \
        --dump-logits "$bundle/$m.$target.npy" > "$bundle/$m.$target.out"; then
        echo "$m: v4-run failed on $target"
        ran=0
        continue
      fi
      grep -E "^(generated|prefill|decode):" "$bundle/$m.$target.out" |
        sed "s/^/$target /"
    done
    if [ "$ran" = 0 ]; then
      failed=1
      continue
    fi
    python3 - "$bundle/$m.cpu.npy" "$bundle/$m.sm_90a.npy" <<'EOF' || failed=1
import sys
import numpy as np
cpu, gpu = (np.load(p).astype(np.float64) for p in sys.argv[1:3])
if cpu.shape != gpu.shape:
    sys.exit(f"logits shapes differ: cpu {cpu.shape}, gpu {gpu.shape}")
cpu2, gpu2 = cpu.reshape(-1, cpu.shape[-1]), gpu.reshape(-1, gpu.shape[-1])
err = np.linalg.norm(gpu2 - cpu2, axis=1) / np.maximum(
    np.linalg.norm(cpu2, axis=1), 1e-30)
top1 = np.mean(np.argmax(cpu2, axis=1) == np.argmax(gpu2, axis=1))
print(f"rows {cpu2.shape[0]}  max normwise error {err.max():.3e}  "
      f"top-1 agreement {top1:.4f}")
sys.exit(0 if err.max() <= 1e-2 and top1 == 1.0 else "logits disagree")
EOF
    if ! diff <(grep -E "^generated:" "$bundle/$m.cpu.out") \
      <(grep -E "^generated:" "$bundle/$m.sm_90a.out") > /dev/null; then
      echo "$m: the greedy tokens differ between cpu and sm_90a"
      failed=1
    fi
  done
  [ "$failed" = 0 ] && echo "gpu-check: all models agree" ||
    echo "gpu-check: FAILED"
  return "$failed"
}

case "$mode" in
  prepare) prepare ;;
  run) run ;;
  all) prepare && run ;;
  *) echo "usage: scripts/gpu-check.sh [prepare|run] [DIR]" >&2; exit 2 ;;
esac
