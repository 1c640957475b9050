#!/usr/bin/env bash
# Makes the benchmark models of docs/benchmarks.md: a Gemma-3-1B-shaped
# checkpoint with random weights (hidden 1152, 26 layers, 4 heads, 1 KV head,
# head_dim 256, ff 6912, 262144 embedding rows, sliding window 512, every 6th
# layer global), stored as f32, and three modules compiled from it:
#
#   OUTDIR/ckpt-f32/     the checkpoint (about 4.0 GB)
#   OUTDIR/1b-bf16.gmc   gemma-compile --dtype bf16   (about 2.0 GB)
#   OUTDIR/1b-q8.gmc     gemma-compile --quant q8     (about 1.0 GB)
#   OUTDIR/1b-q4.gmc     gemma-compile --quant q4     (about 0.6 GB)
#
#   scripts/make-bench-models.sh OUTDIR
#
# Needs about 10 GB of free disk in OUTDIR and about 12 GB of free memory
# while the checkpoint is written (make_checkpoint.py draws the weights in
# float64). Takes a few minutes on two cores. Outputs that already exist are
# kept (delete them to remake them). Not run in CI: the models are meant to be
# larger than the last-level cache, as benchmark models must be.
#
# The tokenizer is trained on the small local corpus, so it has only about
# 2048 pieces; the embedding is padded to 262144 rows like the real model's,
# and the tied head scores only the tokenizer's pieces (gemma-bench accounts
# for that in its roofline).
#
# Environment: GEMMAC_BIN_DIR (default: build/bin of this checkout) holds
# gemma-compile; GEMMAC_PYTHON (default /usr/bin/python3) has numpy.
set -euo pipefail

if [ "$#" -ne 1 ]; then
  echo "usage: $0 OUTDIR   (needs ~10 GB of disk in OUTDIR)" >&2
  exit 2
fi
out=$1
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${GEMMAC_BIN_DIR:-$root/build/bin}
python=${GEMMAC_PYTHON:-/usr/bin/python3}
make_ckpt=$root/tools/make-demo-model/make_checkpoint.py
compile=$bin/gemma-compile
rows=262144

if [ ! -x "$compile" ]; then
  echo "$0: $compile not found; build gemma-compile first or set GEMMAC_BIN_DIR" >&2
  exit 1
fi
mkdir -p "$out"
avail_kb=$(df -Pk "$out" | awk 'NR == 2 { print $4 }')
if [ "${avail_kb:-0}" -lt $((10 * 1024 * 1024)) ]; then
  echo "$0: warning: $out has $((avail_kb / 1024)) MiB free; the models need about 10 GB" >&2
fi

ckpt=$out/ckpt-f32
if [ -f "$ckpt/config.json" ] && [ -f "$ckpt/model.safetensors" ]; then
  echo "keeping $ckpt"
else
  # Train the tokenizer once on a throwaway tiny checkpoint to learn its
  # piece count (a soft limit of 2048), then pad the embedding to 262144 rows.
  tok=$out/tokenizer-only
  "$python" "$make_ckpt" --out "$tok" --layers 1 --hidden 64 --heads 1 \
    --kv-heads 1 --head-dim 64 --ff 64 --vocab 2048 --seed 0 >/dev/null
  pieces=$("$python" -c '
import sys
sys.path.insert(0, sys.argv[1])
import make_checkpoint
print(len(make_checkpoint.read_pieces(sys.argv[2])))
' "$root/tools/make-demo-model" "$tok/tokenizer.model")
  echo "tokenizer: $pieces pieces; embedding padded with $((rows - pieces)) rows to $rows"
  "$python" "$make_ckpt" --out "$ckpt" --form flat --dtype f32 \
    --layers 26 --hidden 1152 --heads 4 --kv-heads 1 --head-dim 256 --ff 6912 \
    --window 512 --max-pos 32768 --vocab 2048 --pad-rows $((rows - pieces)) \
    --tokenizer "$tok/tokenizer.model" --seed 0
  rm -rf "$tok"
fi

compile_one() { # NAME, then gemma-compile's options
  local name=$1
  shift
  if [ -f "$out/$name" ]; then
    echo "keeping $out/$name"
    return
  fi
  echo "compiling $name: gemma-compile $*"
  "$compile" "$ckpt" -o "$out/$name" "$@"
}
compile_one 1b-bf16.gmc --dtype bf16
compile_one 1b-q8.gmc --quant q8
compile_one 1b-q4.gmc --quant q4

echo
echo "sizes:"
for f in "$ckpt/model.safetensors" "$out/1b-bf16.gmc" "$out/1b-q8.gmc" "$out/1b-q4.gmc"; do
  printf '  %-40s %6.2f GB\n' "$f" "$(stat -c %s "$f" | awk '{ print $1 / 1e9 }')"
done
echo
echo "benchmark them with: build/bin/gemma-bench $out/1b-q4.gmc -p 512 -n 128 -t 2 -r 5"
