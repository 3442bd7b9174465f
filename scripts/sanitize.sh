#!/usr/bin/env bash
# The sanitizer suites of docs/RELIABILITY.md 3.3, each in its own build
# tree beside the main one:
#
#   scripts/sanitize.sh asan   clang-22, ASan + UBSan (UB fatal) and libFuzzer
#                              coverage: every test (ctest, with the fuzz
#                              replays) and the lit suite ("build-asan")
#   scripts/sanitize.sh tsan   ThreadSanitizer on the runtime alone
#                              (V4_BUILD_COMPILER=OFF): the runtime tests,
#                              concurrent sessions included ("build-tsan")
#
# Ends with one line "N passed, N failed". Extra arguments go to ninja.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
kind="${1:-asan}"
shift || true
source "$root/scripts/suites.sh"
"$root/scripts/setup.sh" >/dev/null || exit 1

# NDEBUG as in the main build: LLVM's headers change layouts with it
# (statistics), and libMLIR.so is built with it.
common=(-G Ninja -S "$root" -DCMAKE_BUILD_TYPE=Release
        "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -gline-tables-only -DNDEBUG"
        "-DCMAKE_C_FLAGS_RELEASE=-O1 -gline-tables-only -DNDEBUG"
        -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22
        -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit)
if command -v ccache >/dev/null; then
  export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/v4c-ccache}"
  common+=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
case "$kind" in
  asan)
    build="${V4_ASAN_BUILD_DIR:-$root/build-asan}"
    flags=(-DV4_SANITIZE=address,undefined -DV4_FUZZ=ON)
    # Leaks are findings. LLVM's allocators poison and unpoison memory from
    # header code: our instrumented copies and libMLIR.so's plain ones
    # disagree (false use-after-poison), so user poisoning is off.
    export ASAN_OPTIONS="detect_leaks=1:allow_user_poisoning=0:${ASAN_OPTIONS:-}"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
    ;;
  tsan)
    build="${V4_TSAN_BUILD_DIR:-$root/build-tsan}"
    flags=(-DV4_SANITIZE=thread -DV4_BUILD_COMPILER=OFF)
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:${TSAN_OPTIONS:-}"
    ;;
  *)
    echo "usage: scripts/sanitize.sh [asan|tsan] [ninja targets]" >&2
    exit 2
    ;;
esac
if [ ! -f "$build/build.ninja" ]; then
  cmake "${common[@]}" -B "$build" "${flags[@]}" >/dev/null ||
    { note_failure "sanitize $kind: configure failed"; echo "0 passed, 1 failed (configure $kind)"; exit 1; }
fi
ninja -C "$build" "$@" ||
  { note_failure "sanitize $kind: build failed"; echo "0 passed, 1 failed (build $kind)"; exit 1; }

passed=0
failed=0
[ "$kind" = asan ] && run_lit "$build"
run_ctest "$build"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
