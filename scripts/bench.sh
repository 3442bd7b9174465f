#!/usr/bin/env bash
# Builds and runs the benchmarks, writing bench/results/<host>-<date>-*.json
# with the machine description. Usage: scripts/bench.sh [config.json]
# (default: the mid-size config of bench/configs). V4_BENCH_SYNTHETIC=SEED:
# the runtime's synthetic weights of that seed instead of a generated
# checkpoint (models too large to generate one for).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${V4_BUILD_DIR:-$root/build}"
config="${1:-$root/bench/configs/mid-v4.config.json}"
"$root/scripts/build.sh" v4c v4-gen-checkpoint v4-bench-model v4-bench-kernels
work="$build/bench-work"
rm -rf "$work" && mkdir -p "$work"
if [[ -n "${V4_BENCH_SYNTHETIC:-}" ]]; then
  weights=(--synthetic-weights "$V4_BENCH_SYNTHETIC")
else
  "$build/bin/v4-gen-checkpoint" "$config" -o "$work/ck" --seed 1 >/dev/null
  weights=("$work/ck")
fi
# Kernels for this machine's newest x86-64 level (recorded in the results).
"$build/bin/v4c" "$config" --max-context 1024 --max-chunk 64 --cpu=native \
  -o "$work/m.v4a"
# The same with the decode GEMVs' sums reassociated (v4c --sum-order=fast).
"$build/bin/v4c" "$config" --max-context 1024 --max-chunk 64 --cpu=native \
  --sum-order=fast -o "$work/fast.v4a"
# Prefill of a longer chunk (a serving prefill's size): experts get
# 4x the rows of a 64-token chunk.
"$build/bin/v4c" "$config" --max-context 1024 --max-chunk 256 --cpu=native \
  --sum-order=fast -o "$work/fast256.v4a"
# V4_BENCH_NAME: another name for a second run on the same day.
name="${V4_BENCH_NAME:-$(hostname)-$(date +%Y%m%d)-$(basename "$config" .config.json)}"
out="$root/bench/results/$name"
"$root/scripts/machine.sh" > "$out.machine.txt"
"$build/bin/v4-bench-model" "$work/m.v4a" "${weights[@]}" "$config" \
  --benchmark_out="$out.model.json" --benchmark_out_format=json
"$build/bin/v4-bench-model" "$work/fast.v4a" "${weights[@]}" "$config" \
  --benchmark_out="$out.model-fast.json" --benchmark_out_format=json
"$build/bin/v4-bench-model" "$work/fast256.v4a" "${weights[@]}" "$config" \
  --benchmark_filter=prefill \
  --benchmark_out="$out.model-fast-chunk256.json" --benchmark_out_format=json
"$build/bench/v4-bench-kernels" \
  --benchmark_out="$out.kernels.json" --benchmark_out_format=json
echo "wrote $out.machine.txt, $out.model.json, $out.model-fast.json," \
  "$out.model-fast-chunk256.json and $out.kernels.json"
