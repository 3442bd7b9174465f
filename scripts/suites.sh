# Sourced by scripts/test.sh, scripts/sanitize.sh and scripts/fuzz.sh: runs
# a build tree's test suites and adds their counts to the caller's $passed
# and $failed. Each failure is also named, one line each, in the file
# $V4_FAILURE_LOG when it is set: scripts/test.sh prints that list just above
# its last line, where a CI log's tail shows it.

# note_failure TEXT: names one failure in $V4_FAILURE_LOG.
note_failure() {
  [ -n "${V4_FAILURE_LOG:-}" ] && echo "$*" >>"$V4_FAILURE_LOG"
  return 0
}

# run_lit BUILD: the lit suite (check-v4) of BUILD.
run_lit() {
  local out n k t0=$SECONDS
  out="$(mktemp)"
  /usr/lib/llvm-22/bin/lit -sv --time-tests "$1/test" 2>&1 | tee "$out"
  # lit pads the labels to the longest one present ("Passed     : 67"
  # beside "Unsupported:  1").
  _count() { grep -E "^ *$1 *: +[0-9]+" "$out" | head -1 | sed -E 's/[^0-9]*([0-9]+).*/\1/'; }
  n=$(_count "Passed"); passed=$((passed + ${n:-0}))
  n=$(_count "Expectedly Failed"); passed=$((passed + ${n:-0}))
  for k in "Failed" "Unresolved" "Timed Out" "Unexpectedly Passed"; do
    n=$(_count "$k"); failed=$((failed + ${n:-0}))
  done
  if grep -qE "^ *(Passed|Expectedly Failed|Failed|Unresolved|Unsupported) *: +[0-9]+" "$out"; then
    # "Failed Tests (2):" and the like, then "  V4 :: path" lines.
    awk -v b="$1" '/^(Failed|Unresolved|Timed Out|Unexpectedly Passed) Tests \(/ {on=1; next}
      on && /^  [^ ]/ {sub(/^ +/, ""); print "lit " b ": " $0; next} {on=0}' "$out" |
      while read -r l; do note_failure "$l"; done
  else
    failed=$((failed + 1)) # lit did not run
    note_failure "lit $1: no summary (lit did not run)"
  fi
  rm -f "$out"
  echo "time: lit $1: $((SECONDS - t0)) s"
}

# run_ctest BUILD: every ctest test of BUILD (GoogleTest cases, fuzz replays).
run_ctest() {
  local out line total nf t0=$SECONDS
  out="$(mktemp)"
  (cd "$1" && ctest --output-on-failure -j2) 2>&1 | tee "$out"
  line=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$out" | tail -1)
  if [ -n "$line" ]; then
    total=$(echo "$line" | sed -E 's/.*out of ([0-9]+).*/\1/')
    nf=$(echo "$line" | sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/')
    passed=$((passed + total - nf))
    failed=$((failed + nf))
    sed -n '/^The following tests FAILED:/,/^$/p' "$out" | grep -E "^[[:space:]]+[0-9]+ - " |
      while read -r l; do note_failure "ctest $1: $l"; done
  else
    failed=$((failed + 1)) # ctest did not run
    note_failure "ctest $1: no summary (ctest did not run)"
  fi
  rm -f "$out"
  echo "time: ctest $1: $((SECONDS - t0)) s"
}
