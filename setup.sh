#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: installs the Debian packages
# gemmac needs, builds it, makes the built-in demo model (the real Gemma 3
# architecture at a small size, random weights, a tokenizer trained on local
# text), compiles it to a module and generates from it. The demo's output is
# noise: its weights are random.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")" && pwd)"
BUILD="${GEMMAC_BUILD_DIR:-$ROOT/build}"
DEMO="$BUILD/demo"

"$ROOT/scripts/install-deps.sh"
"$ROOT/scripts/build.sh"

if [ ! -f "$DEMO/checkpoint/config.json" ]; then
  "$ROOT/tools/make-demo-model/make_demo_model.sh" "$DEMO/checkpoint"
fi
"$BUILD/bin/gemma-compile" "$DEMO/checkpoint" -o "$DEMO/gemma3-demo.gmc"
"$BUILD/bin/gemma-dump" "$DEMO/gemma3-demo.gmc"
echo
echo "== gemma-run $DEMO/gemma3-demo.gmc -p 'Why is the sky blue?' -n 48 (random weights: the text is noise)"
"$BUILD/bin/gemma-run" "$DEMO/gemma3-demo.gmc" -p "Why is the sky blue?" -n 48 --stats
