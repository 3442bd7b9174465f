#!/usr/bin/env bash
# Builds everything and runs every test suite: the lit suite (check-v4) and
# the C++ unit tests (ctest). Ends with one line "N passed, N failed" that
# sums all suites. Exit status is non-zero if any test failed.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${V4_BUILD_DIR:-$root/build}"

"$root/scripts/build.sh" || { echo "0 passed, 1 failed (build)"; exit 1; }

passed=0
failed=0
status=0

# lit: regression tests (FileCheck, verify-diagnostics, tools).
lit_out="$(mktemp)"
/usr/lib/llvm-22/bin/lit -sv "$build/test" 2>&1 | tee "$lit_out"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
count() { grep -E "^ *$1: +[0-9]+" "$lit_out" | head -1 | sed -E 's/[^0-9]*([0-9]+).*/\1/'; }
lp=$(count "Passed"); lp=${lp:-0}
lx=$(count "Expectedly Failed"); lx=${lx:-0}
lf=0
for kind in "Failed" "Unresolved" "Timed Out" "Unexpectedly Passed"; do
  n=$(count "$kind"); lf=$((lf + ${n:-0}))
done
passed=$((passed + lp + lx))
failed=$((failed + lf))
rm -f "$lit_out"

# ctest: C++ unit tests (GoogleTest, one ctest test per case).
if [ -f "$build/CTestTestfile.cmake" ]; then
  ct_out="$(mktemp)"
  (cd "$build" && ctest --output-on-failure -j2) 2>&1 | tee "$ct_out"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  line=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$ct_out" | tail -1)
  if [ -n "$line" ]; then
    total=$(echo "$line" | sed -E 's/.*out of ([0-9]+).*/\1/')
    nf=$(echo "$line" | sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/')
    passed=$((passed + total - nf))
    failed=$((failed + nf))
  fi
  rm -f "$ct_out"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && exit $status
exit 1
