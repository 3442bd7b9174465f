#!/usr/bin/env bash
# The GPU check of the sm_90a target (issue 10), run on a Hopper machine
# from the bundle scripts/gpu-bundle.sh builds (it needs the NVIDIA driver,
# bash and python3 with numpy; no compiler, no packages, no network):
#
#   DIR/gpu-check.sh [DIR]     (DIR: the bundle, default: this script's
#                              folder)
#   scripts/gpu-check.sh --bundle [DIR]   here: build the bundle first
#
# Every artifact holds the kernels of both targets, so each comparison runs
# one file on the CUDA device and on the CPU device (v4-run --device). It
# prints the device, the driver and every figure, and exits 1 when a check
# fails. The checks:
#   fp32     --numerics=fp32 --fake-quant=none artifacts (T1, Engram, five
#            variants): GPU logits within 1e-4 normwise of the CPU's at
#            every row (prefill and every decode step)
#   prod     production artifacts (T1, Engram): top-1 agreement >= 0.98 and
#            a normwise spread within V4-SPEC 2.6's 2e-2
#   decode   decode == one-shot prefill on the GPU: the prompt token by
#            token (--chunk 1) against one chunk, every row within 1e-4
#            (fp32 T1)
#   graph    the decode steps replayed from a CUDA graph give the logits of
#            eager launches (V4RT_CUDA_GRAPH=0), bit for bit (fp32 T1)
#   nccl     the collectives' NCCL engine as a world of one rank on the
#            GPU, real NCCL calls (bin/v4-runtime-tests, RealNccl.*):
#            all-reduce, reduce-scatter and all-gather of f32, bf16 and i64
#            give back every bit. NCCL is not in the bundle (over 200 MB):
#            V4RT_NCCL_LIBRARY, else the loader's libnccl.so.2, else
#            /usr/local/cuda*/lib*, else the nvidia-nccl-cu* wheel of
#            python3 (torch ships one); skipped, saying so, without any
#   memcheck compute-sanitizer --tool memcheck on T1, when installed
#   time     the decode step time of T1 and of the mid-size config (on
#            synthetic weights; v4-run's prefill and decode tokens/s)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ "${1:-}" = "--bundle" ]; then
  bundle="${2:-$here/../build/gpu-bundle}"
  "$here/gpu-bundle.sh" "$bundle" || exit 1
else
  bundle="${1:-$here}"
fi
bundle="$(cd "$bundle" && pwd)"
models="$bundle/models"
out="$bundle/out"
mkdir -p "$out"
libs="$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
prompt="1,2,3,4,5,6,7,8,9,10,11,12"
failed=0

v4run() { LD_LIBRARY_PATH="$libs" "$bundle/bin/v4-run" "$@"; }

# compare NAME A.npy B.npy MAX_ERR MIN_TOP1: normwise row error and top-1.
compare() {
  python3 - "$@" <<'EOF'
# The standard library only (no numpy): v4-run's .npy files are
# little-endian float32 C arrays.
import array, ast, math, struct, sys

def load(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        sys.exit(f"{path}: not a .npy file")
    major = data[6]
    (n,) = struct.unpack_from("<I" if major >= 2 else "<H", data, 8)
    start = 8 + (4 if major >= 2 else 2)
    header = ast.literal_eval(data[start:start + n].decode("latin1"))
    if header["descr"] != "<f4" or header["fortran_order"]:
        sys.exit(f"{path}: expected little-endian float32 C order")
    values = array.array("f")
    values.frombytes(data[start + n:])
    return header["shape"], values

name, a, b, max_err, min_top1 = sys.argv[1:6]
(sx, x), (sy, y) = load(a), load(b)
if sx != sy:
    sys.exit(f"{name}: logits shapes differ: {sx} and {sy}")
vocab = sx[-1]
rows = len(x) // vocab
worst, same = 0.0, 0
for r in range(rows):
    xr, yr = x[r * vocab:(r + 1) * vocab], y[r * vocab:(r + 1) * vocab]
    diff = math.sqrt(sum((q - p) ** 2 for p, q in zip(xr, yr)))
    norm = max(math.sqrt(sum(p * p for p in xr)), 1e-30)
    worst = max(worst, diff / norm)
    same += max(range(vocab), key=xr.__getitem__) == max(range(vocab),
                                                         key=yr.__getitem__)
top1 = same / rows
ok = worst <= float(max_err) and top1 >= float(min_top1)
print(f"{name}: rows {rows}  max normwise error {worst:.3e} (limit {max_err})"
      f"  top-1 agreement {top1:.4f} (limit {min_top1})  "
      f"{'ok' if ok else 'FAILED'}")
sys.exit(0 if ok else 1)
EOF
}

# run MODEL.v4a DEVICE NAME [v4-run flags]: greedy prompt, logits dumped.
run() {
  local artifact="$1" device="$2" name="$3"
  shift 3
  local m
  m="$(basename "$artifact" | cut -d. -f1)"
  if ! v4run "$artifact" --device "$device" --checkpoint "$models/$m.ck" \
    --prompt-ids "$prompt" --max-new-tokens 16 --dump-logits "$out/$name.npy" \
    "$@" > "$out/$name.out" 2> "$out/$name.err"; then
    echo "$name: v4-run failed on $device: $(tail -1 "$out/$name.err")"
    return 1
  fi
  grep -E "^(generated|prefill|decode):" "$out/$name.out" | sed "s/^/$name /"
}

echo "== device"
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total \
  --format=csv,noheader || echo "nvidia-smi: not found"

# both KIND MAX_ERR MIN_TOP1: every DIR/models/*.KIND.v4a on the GPU and on
# the CPU, compared.
both() {
  local kind="$1" a m
  for a in "$models"/*."$kind".v4a; do
    m="$(basename "$a" ".$kind.v4a")"
    if run "$a" cuda "$m.$kind.cuda" && run "$a" cpu "$m.$kind.cpu"; then
      compare "$m.$kind" "$out/$m.$kind.cpu.npy" "$out/$m.$kind.cuda.npy" \
        "$2" "$3" || failed=1
    else
      failed=1
    fi
  done
}

echo "== fp32: GPU vs CPU logits of the same artifact, <= 1e-4 normwise"
both fp32 1e-4 1.0
echo "== prod: production numerics, top-1 >= 0.98, spread <= 2e-2"
both prod 2e-2 0.98

echo "== decode: token by token == one chunk, on the GPU (fp32 T1)"
if run "$models/t1.fp32.v4a" cuda t1.decode.cuda --chunk 1 &&
  run "$models/t1.fp32.v4a" cuda t1.prefill.cuda --chunk 12; then
  compare t1.decode "$out/t1.prefill.cuda.npy" "$out/t1.decode.cuda.npy" \
    1e-4 1.0 || failed=1
else
  failed=1
fi

echo "== graph: decode steps replayed from a CUDA graph == eager launches"
if V4RT_CUDA_GRAPH=0 run "$models/t1.fp32.v4a" cuda t1.eager.cuda; then
  compare t1.graph "$out/t1.eager.cuda.npy" "$out/t1.fp32.cuda.npy" 0 1.0 ||
    failed=1
else
  failed=1
fi

echo "== nccl: the NCCL engine as a world of one on the GPU (real NCCL)"
# find_nccl: the path of a libnccl.so.2 on this machine, or nothing.
find_nccl() {
  if [ -n "${V4RT_NCCL_LIBRARY:-}" ]; then
    echo "$V4RT_NCCL_LIBRARY"
    return
  fi
  local found
  found="$(ldconfig -p 2> /dev/null |
    awk '$1 == "libnccl.so.2" {print $NF; exit}')"
  if [ -z "$found" ]; then
    found="$(ls /usr/local/cuda*/lib*/libnccl.so.2 2> /dev/null | head -1)"
  fi
  if [ -z "$found" ]; then
    found="$(python3 -c '
import glob, os
import nvidia.nccl
for folder in nvidia.nccl.__path__:
    for path in sorted(glob.glob(os.path.join(folder, "lib", "libnccl.so*"))):
        print(path)
        raise SystemExit
' 2> /dev/null)"
  fi
  echo "$found"
}
nccl="$(find_nccl)"
if [ -z "$nccl" ] || [ ! -e "$nccl" ]; then
  echo "nccl: no libnccl.so.2 on this machine (set V4RT_NCCL_LIBRARY, or" \
    "pip install nvidia-nccl-cu13), skipped"
elif LD_LIBRARY_PATH="$libs" V4_TEST_REAL_NCCL=1 V4RT_NCCL_LIBRARY="$nccl" \
  "$bundle/bin/v4-runtime-tests" --gtest_filter='RealNccl.*' \
  > "$out/nccl.out" 2>&1 && grep -q "^\[  PASSED  \] 1 test" "$out/nccl.out"; then
  echo "nccl: $nccl"
  grep -E "^NCCL |OK \]" "$out/nccl.out"
else
  echo "nccl: FAILED with $nccl"
  grep -E "Failure|Expected|Which|error|RT-|FAILED" "$out/nccl.out" | head -20
  failed=1
fi

echo "== memcheck: compute-sanitizer on T1"
if command -v compute-sanitizer > /dev/null; then
  if LD_LIBRARY_PATH="$libs" compute-sanitizer --tool memcheck \
    --error-exitcode 9 "$bundle/bin/v4-run" "$models/t1.prod.v4a" \
    --device cuda --checkpoint "$models/t1.ck" --prompt-ids "$prompt" \
    --max-new-tokens 4 > "$out/memcheck.out" 2>&1; then
    grep -E "ERROR SUMMARY" "$out/memcheck.out" || echo "memcheck: clean"
  else
    echo "memcheck: FAILED"
    grep -E "ERROR SUMMARY|Invalid|error" "$out/memcheck.out" | head -20
    failed=1
  fi
else
  echo "memcheck: compute-sanitizer not installed, skipped"
fi

echo "== time: decode step (production T1; the mid-size config on synthetic weights)"
grep -h "^decode:" "$out/t1.prod.cuda.out" "$out/t1.prod.cpu.out" 2>/dev/null |
  paste -d' ' <(printf 't1 cuda\nt1 cpu\n') - || true
mid_prompt="$(seq -s, 2 65)"
for device in cuda cpu; do
  if v4run "$models/mid.time.v4a" --device "$device" --synthetic-weights 1 \
    --prompt-ids "$mid_prompt" --max-new-tokens 32 \
    > "$out/mid.$device.out" 2> "$out/mid.$device.err"; then
    grep -E "^(prefill|decode):" "$out/mid.$device.out" | sed "s/^/mid $device /"
  else
    echo "mid $device: v4-run failed: $(tail -1 "$out/mid.$device.err")"
    failed=1
  fi
done

if [ "$failed" = 0 ]; then
  echo "gpu-check: all checks passed"
else
  echo "gpu-check: FAILED"
fi
exit "$failed"
