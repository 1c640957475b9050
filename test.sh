#!/usr/bin/env bash
# Runs every gemmac test (lit, unit, e2e) through ctest. Installs missing
# Debian packages and builds first, so it works on a fresh Debian 12 machine.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")" && pwd)"
BUILD="${GEMMAC_BUILD_DIR:-$ROOT/build}"

"$ROOT/scripts/install-deps.sh"
"$ROOT/scripts/build.sh"
cd "$BUILD"
ctest --output-on-failure -j "$(nproc)" "$@"
