#!/usr/bin/env bash
# Prints the machine description that goes beside every benchmark result:
# CPU, memory, kernel and the commit built.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
echo "# machine"
lscpu | grep -E "Model name|^CPU\(s\)|Thread|Core|Socket|MHz|L1d|L2|L3"
grep -E "MemTotal" /proc/meminfo
uname -srm
echo "# build"
git -C "$root" rev-parse --short HEAD
