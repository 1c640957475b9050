#!/bin/sh
# Makes the built-in demo model used by the README's set-up command: a random Gemma 3
# text checkpoint (flat Gemma3ForCausalLM form, bf16) big enough to show the tools
# working, small enough (about 16 MB) to make in seconds. Its output is nonsense.
#
#   tools/make-demo-model/make_demo_model.sh OUT_DIR
set -eu
if [ "$#" -ne 1 ]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
here=$(dirname "$0")
# Debian's python3 has numpy; a pyenv/venv python3 earlier on PATH may not.
python=${GEMMAC_PYTHON:-/usr/bin/python3}
exec "$python" "$here/make_checkpoint.py" --out "$1" --form flat --dtype bf16 \
  --layers 8 --hidden 256 --heads 4 --kv-heads 1 --head-dim 64 --ff 1024 \
  --vocab 2048 --window 64 --max-pos 8192 --seed 0
