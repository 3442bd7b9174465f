#!/usr/bin/env bash
# Builds everything and runs every test suite: the lit suite (check-v4), the
# C++ unit tests and fuzz replays (ctest), then the sanitized suites and the
# fuzz smoke runs. Ends with one line "N passed, N failed" that sums all
# suites. Exit status is non-zero if any test failed.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${V4_BUILD_DIR:-$root/build}"
source "$root/scripts/suites.sh"

"$root/scripts/build.sh" || { echo "0 passed, 1 failed (build)"; exit 1; }
echo "time: build: $SECONDS s"

# Every suite names its failures here; they are listed above the last line.
V4_FAILURE_LOG="$(mktemp)"
export V4_FAILURE_LOG
trap 'rm -f "$V4_FAILURE_LOG"' EXIT

# One code cache for every suite and build tree (docs/ARCHITECTURE.md, "The
# code cache"): a kernels module compiled once, by any suite, is not
# optimised and generated again. An exported V4C_CACHE_DIR (empty: off)
# wins.
export V4C_CACHE_DIR="${V4C_CACHE_DIR-$build/test/v4c-cache}"

passed=0
failed=0

# lit: regression tests (FileCheck, verify-diagnostics, tools).
run_lit "$build"
# ctest: C++ unit tests (GoogleTest, one ctest test per case) and the fuzz
# targets' seed and regress/ inputs.
run_ctest "$build"

# The sanitizer and fuzzing suites of docs/RELIABILITY.md 3.1/3.3, each in
# its own build tree: every test again under ASan + UBSan, a smoke run of
# every fuzz target (V4_FUZZ_SECONDS each, default 60), and the runtime's
# tests under TSan. V4_TEST_SANITIZERS=0 skips them (a quick local run).
suite() {
  local out line t0=$SECONDS
  out="$(mktemp)"
  "$@" 2>&1 | tee "$out"
  line=$(grep -E "^[0-9]+ passed, [0-9]+ failed" "$out" | tail -1)
  rm -f "$out"
  echo "time: $*: $((SECONDS - t0)) s"
  if [ -z "$line" ]; then
    failed=$((failed + 1))
    note_failure "$*: no summary line"
    return
  fi
  passed=$((passed + $(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')))
  failed=$((failed + $(echo "$line" | sed -E 's/.*, ([0-9]+) failed.*/\1/')))
}
if [ "${V4_TEST_SANITIZERS:-1}" != 0 ]; then
  suite "$root/scripts/sanitize.sh" asan
  suite "$root/scripts/fuzz.sh" "${V4_FUZZ_SECONDS:-60}"
  suite "$root/scripts/sanitize.sh" tsan
fi

if [ -s "$V4_FAILURE_LOG" ]; then
  echo "Failures:"
  sed 's/^/  /' "$V4_FAILURE_LOG"
fi
echo "time: total: $SECONDS s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
