#!/usr/bin/env bash
# The CUDA plugin's checks on a machine with an NVIDIA GPU (docs/cuda.md), one
# command, no network:
#   1. configure + build (Release, -j16) only gemmac_cuda, gemmac_cuda_probe,
#      gemmac-conformance, gemma-run, gemma-bench, gemma-compile, gemmac_cpu;
#   2. the conformance suite on libgemmac_cuda.so (must end with 0 failures);
#   3. the tiny e2e model (tools/make-demo-model, as test/e2e does): gemma-run
#      --dump-logits on the CUDA plugin vs the CPU plugin, max |d| / max |cpu|
#      must be <= 1e-3;
#   4. gemma-bench on the 1B-shaped bench models (scripts/make-bench-models.sh)
#      in q4 and bf16, tg as a fraction of the HBM roofline (weight bytes per
#      token / device-to-device bandwidth from gemmac_cuda_probe --bandwidth).
#
#   scripts/device-check-cuda.sh [BUILD_DIR]      (default build-cuda)
#
# Environment: OUT (results are written there when set), GEMMAC_SKIP_BENCH=1
# (skip step 4: it writes ~10 GB of models), GEMMAC_BENCH_DIR (default
# BUILD_DIR/bench-models), JOBS (default 16). Exit status: non-zero when any
# step failed; every step still runs so one call reports everything.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-cuda}
jobs=${JOBS:-16}
out=${OUT:-$build/device-check}
mkdir -p "$out"
python=${GEMMAC_PYTHON:-/usr/bin/python3}
status=0
log() { echo "== $*" | tee -a "$out/summary.txt"; }
fail() { log "FAIL: $*"; status=1; }

log "device check of the CUDA plugin, $(date -u +%FT%TZ)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv \
  >"$out/nvidia-smi.txt" 2>&1 || true
cat "$out/nvidia-smi.txt"

# ---- 1. build -----------------------------------------------------------
if ! cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    >"$out/configure.log" 2>&1; then
  fail "configure (see configure.log)"
  tail -20 "$out/configure.log"
  exit 1
fi
grep -i "cuda" "$out/configure.log" | tee -a "$out/summary.txt"
if ! ninja -C "$build" -j"$jobs" gemmac_cuda gemmac_cuda_probe \
    gemmac-conformance gemmac_cpu >"$out/build.log" 2>&1; then
  fail "build of the plugin (see build.log)"
  tail -30 "$out/build.log"
  exit 1
fi
tools_ok=1
if ! ninja -C "$build" -j"$jobs" gemma-run gemma-bench gemma-compile \
    >>"$out/build.log" 2>&1; then
  fail "build of gemma-run/gemma-bench/gemma-compile (see build.log); steps 3-4 skipped"
  tail -30 "$out/build.log"
  tools_ok=0
fi
bin=$build/bin
lib=$build/lib
cuda_so=$lib/libgemmac_cuda.so
cpu_so=$lib/libgemmac_cpu.so

"$bin/gemmac_cuda_probe" --bandwidth | tee "$out/probe.txt"
if [ "${PIPESTATUS[0]}" -ne 0 ]; then
  fail "gemmac_cuda_probe found no usable device"
  exit 1
fi
bw=$(awk '/^bandwidth_gbps/ { print $2 }' "$out/probe.txt")

# ---- 2. conformance -----------------------------------------------------
log "conformance suite on $cuda_so"
timeout 300 "$bin/gemmac-conformance" --plugin "$cuda_so" \
  >"$out/conformance.txt" 2>&1
rc=$?
tail -3 "$out/conformance.txt" | tee -a "$out/summary.txt"
[ $rc -eq 0 ] || { fail "conformance (exit $rc; failures in conformance.txt)";
  grep -E "^\[  FAILED" "$out/conformance.txt" | head -40; }

# ---- 3. tiny e2e model: CUDA vs CPU logits --------------------------------
if [ $tools_ok -eq 1 ]; then
  work=$build/device-check-e2e
  mkdir -p "$work"
  log "tiny model: CUDA vs CPU logits"
  # The e2e tests' first case (test/e2e/run_e2e.py: flat_f32_chunked).
  if "$python" "$root/tools/make-demo-model/make_checkpoint.py" --out "$work/ckpt" \
      --form flat --dtype f32 --layers 7 --window 8 --seed 4 >"$out/e2e.log" 2>&1 &&
     "$bin/gemma-compile" "$work/ckpt" -o "$work/tiny.gmc" --dtype f32 \
      --max-chunk 5 >>"$out/e2e.log" 2>&1; then
    prompt="The quick brown fox jumps over the lazy dog, then the dog sleeps."
    for p in cpu cuda; do
      so=$cpu_so; [ $p = cuda ] && so=$cuda_so
      "$bin/gemma-run" "$work/tiny.gmc" --plugin "$so" -p "$prompt" --raw -n 1 \
        --temp 0 --dump-logits "$work/logits-$p.npy" >>"$out/e2e.log" 2>&1 ||
        fail "gemma-run --plugin $p (see e2e.log)"
    done
    "$python" - "$work/logits-cpu.npy" "$work/logits-cuda.npy" <<'PY' \
      | tee -a "$out/summary.txt"
import sys
import numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
if a.shape != b.shape:
    print("FAIL: logits shapes differ: cpu %s, cuda %s" % (a.shape, b.shape))
    sys.exit(1)
rel = float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a))), 1e-30))
print("logits %s: max |cuda - cpu| / max |cpu| = %.3g (bound 1e-3) %s"
      % (a.shape, rel, "OK" if rel <= 1e-3 else "FAIL"))
sys.exit(0 if rel <= 1e-3 else 1)
PY
    [ "${PIPESTATUS[0]}" -eq 0 ] || fail "CUDA logits differ from the CPU plugin's"
  else
    fail "making the tiny model (see e2e.log)"
  fi
fi

# ---- 4. bench on the 1B-shaped models -----------------------------------
if [ $tools_ok -eq 1 ] && [ "${GEMMAC_SKIP_BENCH:-0}" != 1 ]; then
  models=${GEMMAC_BENCH_DIR:-$build/bench-models}
  log "bench models in $models"
  if GEMMAC_BIN_DIR=$bin "$root/scripts/make-bench-models.sh" "$models" \
      >"$out/bench-models.log" 2>&1; then
    for m in q4 bf16; do
      timeout 300 "$bin/gemma-bench" "$models/1b-$m.gmc" --plugin "$cuda_so" \
        -p 512 -n 128 -r 3 --json >"$out/bench-$m.json" 2>"$out/bench-$m.err" ||
        { fail "gemma-bench 1b-$m (see bench-$m.err)"; continue; }
      "$python" - "$out/bench-$m.json" "$bw" "$m" <<'PY' | tee -a "$out/summary.txt"
import json, sys
j = json.load(open(sys.argv[1]))
bw = float(sys.argv[2]) * 1e9
tg = j["tg_tps"]["median"] if isinstance(j["tg_tps"], dict) else j["tg_tps"]
per_tok = j["roofline"]["weight_bytes_per_token"]
limit = bw / per_tok
print("1b-%s: tg %.1f tok/s, %.0f MB/token, HBM %.0f GB/s -> roofline %.1f tok/s,"
      " tg = %.1f%% of it" % (sys.argv[3], tg, per_tok / 1e6, bw / 1e9, limit,
                               100 * tg / limit))
PY
    done
  else
    fail "making the bench models (see bench-models.log)"
  fi
fi

log "done: $([ $status -eq 0 ] && echo all passed || echo FAILURES above)"
exit $status
