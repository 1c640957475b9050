#!/usr/bin/env bash
# A long libFuzzer run of one gemmac fuzz target (docs/robustness.md):
#
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]
#
# TARGET is module, safetensors, hf_config, gguf, tokenizer or chat_format.
# Builds the target in $GEMMAC_FUZZ_BUILD_DIR (default build-asan, the
# sanitizer stage's clang ASan+UBSan build, which has GEMMAC_FUZZ on), then
# fuzzes from the committed seeds (test/fuzz/corpus/TARGET) plus the inputs
# earlier runs kept (BUILD/test/fuzz/TARGET/corpus). Crash, leak and timeout
# inputs land in BUILD/test/fuzz/TARGET/artifacts; the final line gives the
# executions, coverage (cov:) and features (ft:). Exits non-zero when the run
# found a crash.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${GEMMAC_FUZZ_BUILD_DIR:-$ROOT/build-asan}"
if [ $# -lt 2 ]; then
  echo "usage: $0 TARGET SECONDS [libFuzzer flags...]" >&2
  exit 2
fi
TARGET="$1"
SECONDS_TO_RUN="$2"
shift 2
SEEDS="$ROOT/test/fuzz/corpus/$TARGET"
if [ ! -d "$SEEDS" ]; then
  echo "fuzz.sh: no seeds for '$TARGET' in $SEEDS (targets: $(ls "$ROOT/test/fuzz/corpus" | tr '\n' ' '))" >&2
  exit 2
fi
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  GEMMAC_ASAN_BUILD_DIR="$BUILD" "$ROOT/scripts/sanitize.sh" configure
fi
ninja -C "$BUILD" -j "${GEMMAC_JOBS:-2}" "gemmac_fuzz_$TARGET"

WORK="$BUILD/test/fuzz/$TARGET"
mkdir -p "$WORK/corpus" "$WORK/artifacts"
export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# Inputs that once crashed the target (test/fuzz/regressions) are replayed too.
REGRESSIONS=()
[ -d "$ROOT/test/fuzz/regressions/$TARGET" ] &&
  REGRESSIONS=("$ROOT/test/fuzz/regressions/$TARGET")
exec "$BUILD/bin/gemmac_fuzz_$TARGET" -max_total_time="$SECONDS_TO_RUN" \
  -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$WORK/artifacts/" "$@" "$WORK/corpus" "$SEEDS" \
  "${REGRESSIONS[@]}"
