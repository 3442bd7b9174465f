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
# (one test per target). V4_FUZZ_RUNS=N runs each target for N executions
# instead of SECONDS (the long campaigns of docs/RELIABILITY.md 3.1).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${V4_ASAN_BUILD_DIR:-$root/build-asan}"
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(artifact safetensors safetensors-index config tokenizer v4-ir runtime)
out="${V4_FUZZ_OUT:-$build/fuzz-findings}"
# The index and runtime targets write a file per input: on a tmpfs that is
# 8-15x faster than on ext4, which flushes a file truncated and rewritten.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  export TMPDIR=/dev/shm
fi
budget=(-max_total_time="$seconds")
what="in ${seconds} s"
if [ -n "${V4_FUZZ_RUNS:-}" ]; then
  budget=(-runs="$V4_FUZZ_RUNS")
  what="(of ${V4_FUZZ_RUNS} asked)"
fi
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
  # A tokenizer.json of 8 KiB holds every component (tiny97.json is 2.8
  # KiB); 64 KiB inputs ran ~10x slower for less coverage.
  max_len=65536
  [ "$t" = runtime ] && max_len=256
  [ "$t" = tokenizer ] && max_len=8192
  rm -f "$out/$t-"{crash,leak,timeout,oom,slow-unit}-*
  start=$(date +%s)
  "$bin" "$work" "$seeds/$t" "$root/test/fuzz/$t/regress" \
    "${budget[@]}" -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=512 -max_len=$max_len -print_final_stats=1 \
    -artifact_prefix="$out/$t-" >"$log" 2>&1
  rc=$?
  runs=$(grep -E "^stat::number_of_executed_units:" "$log" | awk '{print $2}')
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1))
    echo "fuzz: $t: ${runs:-?} executions ${what}, $(($(date +%s) - start)) s, no finding"
  else
    failed=$((failed + 1))
    note_failure "fuzz: $t: finding (exit $rc), log $log"
    # The CI log shows only its tail: name the finding there, and carry a
    # small reproducer as base64 so it can be replayed from the log alone.
    why=$(grep -m1 -E "ERROR|runtime error|^fuzz-[a-z-]+:" "$log")
    [ -n "$why" ] && note_failure "  $why"
    for unit in "$out/$t-"{crash,leak,timeout,oom,slow-unit}-*; do
      [ -f "$unit" ] || continue
      if [ "$(stat -c %s "$unit")" -le 1536 ]; then
        note_failure "  $(basename "$unit") (base64): $(base64 -w0 "$unit")"
      else
        note_failure "  $(basename "$unit"): $(stat -c %s "$unit") bytes"
      fi
    done
    echo "fuzz: $t: FINDING after ${runs:-?} executions (exit $rc); log $log:"
    grep -E "ERROR|SUMMARY|runtime error|==[0-9]+==|Test unit written" "$log" | head -20
  fi
  rm -rf "$work"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
