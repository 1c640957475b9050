#!/usr/bin/env bash
# The sanitizer stage of CI (docs/robustness.md, "Sanitizers"):
#
#  1. The whole tree built by clang with AddressSanitizer and
#     UndefinedBehaviorSanitizer (-fno-sanitize-recover=all: the first finding
#     fails its test) and libFuzzer's coverage hooks, then the unit, e2e and
#     lit tests and a short smoke run of every fuzz target.
#  2. The CPU plugin's kernel tests (threaded with TBB) built by GCC with
#     ThreadSanitizer; scripts/tsan.supp says what is suppressed and why.
#
# Usage: scripts/sanitize.sh [asan|tsan|configure]...   (default: asan tsan)
# Build dirs: $GEMMAC_ASAN_BUILD_DIR (build-asan), $GEMMAC_TSAN_BUILD_DIR
# (build-tsan). $GEMMAC_FUZZ_SMOKE_SECONDS sets each fuzz smoke run (15).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ASAN_BUILD="${GEMMAC_ASAN_BUILD_DIR:-$ROOT/build-asan}"
TSAN_BUILD="${GEMMAC_TSAN_BUILD_DIR:-$ROOT/build-tsan}"
JOBS="${GEMMAC_JOBS:-$(nproc)}"
SMOKE="${GEMMAC_FUZZ_SMOKE_SECONDS:-15}"
STAGES=("$@")
[ ${#STAGES[@]} -eq 0 ] && STAGES=(asan tsan)

"$ROOT/scripts/install-deps.sh"

SYMBOLIZER=/usr/lib/llvm-14/bin/llvm-symbolizer
export ASAN_SYMBOLIZER_PATH="$SYMBOLIZER"
# allocator_may_return_null: the plugins' tests ask for absurd sizes on
# purpose and check for NULL, which ASan would otherwise report as fatal.
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

# Not run here: the out-of-tree SDK example (builds a plain, uninstrumented
# project against this tree, which says nothing about memory safety), the
# benchmark smoke test (timing), the ISA hygiene check (it inspects the
# release objects' instructions; instrumentation adds its own) and the
# quality measurement (minutes of the same compile and run paths the e2e
# cases already take, measured for its numbers, not its memory use).
ASAN_EXCLUDE='^(sdk\.example_out_of_tree|gemma_bench_smoke|cpu\.isa_hygiene|e2e_quality)$'

# The compiler is chosen once, when the build dir is made: naming it again
# makes CMake start the dir over.
compilers() {
  if [ ! -f "$1/CMakeCache.txt" ]; then
    echo "-DCMAKE_C_COMPILER=$2" "-DCMAKE_CXX_COMPILER=$3"
  fi
}

configure_asan() {
  # shellcheck disable=SC2046
  cmake -S "$ROOT" -B "$ASAN_BUILD" -G Ninja \
    $(compilers "$ASAN_BUILD" clang-14 clang++-14) \
    -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_C_FLAGS_RELEASE=-O1 -gline-tables-only -DNDEBUG" \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -gline-tables-only -DNDEBUG" \
    -DGEMMAC_SANITIZE=address,undefined -DGEMMAC_FUZZ=ON \
    -DGEMMAC_FUZZ_SMOKE_SECONDS="$SMOKE" \
    -DGEMMAC_BUILD_CUDA=OFF -DGEMMAC_BUILD_ROCM=OFF >/dev/null
}

run_asan() {
  local t0=$SECONDS
  configure_asan
  ninja -C "$ASAN_BUILD" -j "$JOBS"
  echo "sanitize: asan+ubsan build took $((SECONDS - t0)) s"
  t0=$SECONDS
  ctest --test-dir "$ASAN_BUILD" --output-on-failure -j "$JOBS" \
    -E "$ASAN_EXCLUDE"
  echo "sanitize: asan+ubsan tests (fuzz smoke runs included) took $((SECONDS - t0)) s"
}

run_tsan() {
  local t0=$SECONDS
  # Only what the threaded kernels' tests need: no compiler, no GPU plugins.
  # shellcheck disable=SC2046
  cmake -S "$ROOT" -B "$TSAN_BUILD" -G Ninja \
    $(compilers "$TSAN_BUILD" gcc g++) \
    -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_C_FLAGS_RELEASE=-O1 -g1 -DNDEBUG" \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -g1 -DNDEBUG" \
    -DGEMMAC_SANITIZE=thread -DGEMMAC_BUILD_COMPILER=OFF \
    -DGEMMAC_BUILD_CUDA=OFF -DGEMMAC_BUILD_ROCM=OFF >/dev/null
  ninja -C "$TSAN_BUILD" -j "$JOBS" gemmac_cpu_tests
  echo "sanitize: tsan build took $((SECONDS - t0)) s"
  t0=$SECONDS
  # The statically linked entry only: frames inside the dlopened plugin are
  # not symbolized, so tsan.supp could not match them (the kernels are the
  # same code). The concurrent-launch and every-format tile tests take over
  # five minutes each under TSan and are left to the ASan stage.
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/scripts/tsan.supp" \
    "$TSAN_BUILD/bin/gemmac_cpu_tests" \
    --gtest_filter="*/Static:Levels/*-*Concurrent*:*EveryFormat*"
  echo "sanitize: tsan tests took $((SECONDS - t0)) s"
}

for stage in "${STAGES[@]}"; do
  case "$stage" in
  asan) run_asan ;;
  configure) configure_asan ;; # for scripts/fuzz.sh
  tsan) run_tsan ;;
  *) echo "sanitize.sh: unknown stage '$stage' (expected asan, tsan or configure)" >&2; exit 2 ;;
  esac
done
