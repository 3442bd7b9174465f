#!/usr/bin/env bash
# Encode speed of the runtime's tokenizer against the reference
# implementation (@huggingface/tokenizers under node) on the same 1 MB text,
# in the same run. Writes bench/results/<host>-<date>-tokenizer.{machine.txt,json}.
# Usage: bench/tokenizer/run.sh [TOKENIZER_DIR] (default: DeepSeek's in
# ../shared/models). Needs node and NODE_PATH with @huggingface/tokenizers
# (npm install --prefix /tmp/hftok @huggingface/tokenizers@0.2.0).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${V4_BUILD_DIR:-$root/build}"
dir="${1:-$root/../shared/models/deepseek-v3-tokenizer}"
export NODE_PATH="${NODE_PATH:-/tmp/hftok/node_modules}"
flock /tmp/v4-ninja.lock ninja -C "$build" v4-bench-tokenizer >/dev/null
work="$build/bench-work" && mkdir -p "$work"
node "$root/bench/tokenizer/make-text.mjs" "$work/text-1mb.txt"
name="$(hostname)-$(date +%Y%m%d)-tokenizer"
out="$root/bench/results/$name"
{
  "$root/scripts/machine.sh"
  echo "# tokenizer"
  echo "$dir"
} > "$out.machine.txt"
"$build/bin/v4-bench-tokenizer" "$dir" "$work/text-1mb.txt" \
  --benchmark_out="$work/v4.json" --benchmark_out_format=json >&2
node "$root/bench/tokenizer/reference.mjs" "$dir" "$work/text-1mb.txt" \
  > "$work/reference.json"
python3 - "$work/v4.json" "$work/reference.json" "$out.json" <<'PY'
import json, sys
v4 = {b["name"].split("/")[0]: b
      for b in json.load(open(sys.argv[1]))["benchmarks"]}
ref = json.load(open(sys.argv[2]))
warm = v4["encode_warm"]["bytes_per_second"]
cold = v4["encode_cold"]["text_bytes"] / (v4["encode_cold"]["real_time"] / 1e3)
result = {
    "text_bytes": ref["text_bytes"],
    "tokens": {"v4": v4["encode_warm"]["tokens"], "reference": ref["tokens"]},
    "v4_bytes_per_second": {"cold": cold, "warm": warm},
    "reference": ref,
    "ratio_v4_over_reference": {
        "cold": cold / (ref["text_bytes"] / ref["cold_seconds"]),
        "warm": warm / ref["warm_bytes_per_second"]},
}
json.dump(result, open(sys.argv[3], "w"), indent=1)
print(json.dumps(result, indent=1))
PY
echo "wrote $out.machine.txt and $out.json"
