# Sourced by scripts/test.sh and scripts/sanitize.sh: runs a build tree's
# test suites and adds their counts to the caller's $passed and $failed.

# run_lit BUILD: the lit suite (check-v4) of BUILD.
run_lit() {
  local out n k
  out="$(mktemp)"
  /usr/lib/llvm-22/bin/lit -sv "$1/test" 2>&1 | tee "$out"
  _count() { grep -E "^ *$1: +[0-9]+" "$out" | head -1 | sed -E 's/[^0-9]*([0-9]+).*/\1/'; }
  n=$(_count "Passed"); passed=$((passed + ${n:-0}))
  n=$(_count "Expectedly Failed"); passed=$((passed + ${n:-0}))
  for k in "Failed" "Unresolved" "Timed Out" "Unexpectedly Passed"; do
    n=$(_count "$k"); failed=$((failed + ${n:-0}))
  done
  grep -qE "^ *(Passed|Expectedly Failed|Failed|Unresolved): +[0-9]+" "$out" ||
    failed=$((failed + 1)) # lit did not run
  rm -f "$out"
}

# run_ctest BUILD: every ctest test of BUILD (GoogleTest cases, fuzz replays).
run_ctest() {
  local out line total nf
  out="$(mktemp)"
  (cd "$1" && ctest --output-on-failure -j2) 2>&1 | tee "$out"
  line=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$out" | tail -1)
  if [ -n "$line" ]; then
    total=$(echo "$line" | sed -E 's/.*out of ([0-9]+).*/\1/')
    nf=$(echo "$line" | sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/')
    passed=$((passed + total - nf))
    failed=$((failed + nf))
  else
    failed=$((failed + 1)) # ctest did not run
  fi
  rm -f "$out"
}
