#!/usr/bin/env bash
# Configures (once) and builds gemmac into build/ with Ninja, Release.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${GEMMAC_BUILD_DIR:-$ROOT/build}"
JOBS="${GEMMAC_JOBS:-$(nproc)}"

if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$BUILD" -j "$JOBS"
