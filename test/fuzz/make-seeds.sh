#!/usr/bin/env bash
# make-seeds.sh BIN_DIR OUT_DIR: assembles each fuzz target's seed corpus
# in OUT_DIR/<target>/ from inputs checked in elsewhere in the repository
# (one home per file), plus test/fuzz/<target>/corpus where a target has
# hand-made seeds:
#   artifact     the tiny artifact and every row of the lies table
#                (v4-artifact-testgen)
#   safetensors  test/fuzz/safetensors/corpus (hand-made small files)
#   safetensors-index  test/fuzz/safetensors-index/corpus (index files)
#   config       models/*.config.json
#   tokenizer    test/Inputs/tokenizers/*/tokenizer.json
#   v4-ir        test/dialects/V4/*.mlir, split at "// -----"
#   runtime      test/fuzz/runtime/corpus (edit scripts)
set -euo pipefail
bin="$1"
out="$2"
src="$(cd "$(dirname "$0")/../.." && pwd)"
rm -rf "$out"
mkdir -p "$out"/{artifact,safetensors,safetensors-index,config,tokenizer,v4-ir,runtime}

"$bin/v4-artifact-testgen" "$out/artifact/tiny.v4a" >/dev/null
"$bin/v4-artifact-testgen" --list-lies | while read -r name rule; do
  "$bin/v4-artifact-testgen" --lie="$name" "$out/artifact/lie-$name.v4a" \
    >/dev/null
done

cp "$src"/test/fuzz/safetensors/corpus/* "$out/safetensors/"
cp "$src"/test/fuzz/safetensors-index/corpus/* "$out/safetensors-index/"
cp "$src"/test/fuzz/runtime/corpus/* "$out/runtime/"
for f in "$src"/models/*.config.json; do
  cp "$f" "$out/config/$(basename "$f")"
done
for d in "$src"/test/Inputs/tokenizers/*/; do
  cp "$d/tokenizer.json" "$out/tokenizer/$(basename "$d").json"
done
for f in "$src"/test/dialects/V4/*.mlir; do
  awk -v prefix="$out/v4-ir/$(basename "$f" .mlir)" '
    BEGIN { n = 0; file = prefix "-" n ".mlir" }
    /^\/\/ -----/ { close(file); n++; file = prefix "-" n ".mlir"; next }
    { print > file }' "$f"
done
echo "make-seeds: $(find "$out" -type f | wc -l) seeds in $out"
