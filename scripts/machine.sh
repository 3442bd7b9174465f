#!/usr/bin/env bash
# Prints the machine description that goes beside every benchmark result:
# CPU, memory, kernel and the commit built.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
echo "# machine"
lscpu | grep -E "Model name|^CPU\(s\)|Thread|Core|Socket|MHz|L1d|L2|L3"
echo "Vector ISA: $(grep -o -w -E 'avx2|fma|f16c|avx512f|avx512bw|avx512_bf16|avx512vbmi|avx512_fp16|avx512_vp2intersect' /proc/cpuinfo | sort -u | tr '\n' ' ')"
grep -E "MemTotal" /proc/meminfo
uname -srm
echo "# build"
git -C "$root" rev-parse --short HEAD
