#!/usr/bin/env bash
# Runs the libFuzzer targets of test/fuzz (docs/RELIABILITY.md 3.1) from the
# ASan + UBSan tree that `scripts/sanitize.sh asan` builds:
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Each target (default: all) fuzzes for SECONDS (default 60: the CI smoke
# run) from its seed corpus (test/fuzz/make-seeds.sh) and regress/ inputs,
# with undefined behaviour fatal, a 10 s per-input timeout, a 2 GiB RSS
# limit and a 512 MiB single-allocation limit, so a crash, a hang or a
# resource blow-up is a finding. New corpus entries go to a scratch
# directory, findings to $V4_FUZZ_OUT (default build-asan/fuzz-findings);
# minimize a finding into test/fuzz/<target>/regress/ before fixing it.
# Prints, per target, the executions run; ends with "N passed, N failed"
# (one test per target).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${V4_ASAN_BUILD_DIR:-$root/build-asan}"
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(artifact safetensors safetensors-index config tokenizer v4-ir runtime)
out="${V4_FUZZ_OUT:-$build/fuzz-findings}"
mkdir -p "$out"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"
# allow_user_poisoning=0: see scripts/sanitize.sh.
export ASAN_OPTIONS="detect_leaks=1:allow_user_poisoning=0:${ASAN_OPTIONS:-}"

source "$root/scripts/suites.sh"
seeds="$build/test/fuzz/seeds"
"$root/test/fuzz/make-seeds.sh" "$build/bin" "$seeds" >/dev/null ||
  { note_failure "fuzz: seed corpus not made"; echo "0 passed, 1 failed (seeds)"; exit 1; }

passed=0
failed=0
for t in "${targets[@]}"; do
  bin="$build/bin/v4-fuzz-$t"
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin missing: run scripts/sanitize.sh asan first" >&2
    note_failure "fuzz: $t: $bin missing"
    failed=$((failed + 1))
    continue
  fi
  work="$(mktemp -d)"
  log="$out/$t.log"
  # The runtime target writes an artifact per input: keep its inputs small.
  max_len=65536
  [ "$t" = runtime ] && max_len=256
  "$bin" "$work" "$seeds/$t" "$root/test/fuzz/$t/regress" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=512 -max_len=$max_len -print_final_stats=1 \
    -artifact_prefix="$out/$t-" >"$log" 2>&1
  rc=$?
  runs=$(grep -E "^stat::number_of_executed_units:" "$log" | awk '{print $2}')
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1))
    echo "fuzz: $t: ${runs:-?} executions in ${seconds} s, no finding"
  else
    failed=$((failed + 1))
    note_failure "fuzz: $t: finding (exit $rc), log $log"
    echo "fuzz: $t: FINDING after ${runs:-?} executions (exit $rc); log $log:"
    grep -E "ERROR|SUMMARY|runtime error|==[0-9]+==|Test unit written" "$log" | head -20
  fi
  rm -rf "$work"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
