#!/usr/bin/env bash
# Installs gemmac's build and test dependencies from Debian 12's packages,
# only when one is missing (so a warm machine pays nothing).
set -euo pipefail

PACKAGES=(
  cmake ninja-build g++ pkg-config
  libmlir-19-dev mlir-19-tools llvm-19-dev llvm-19-tools
  libflatbuffers-dev flatbuffers-compiler
  libsentencepiece-dev sentencepiece
  libtbb-dev libgtest-dev libbenchmark-dev
  python3 python3-numpy
  hipcc libamdhip64-dev rocm-device-libs
  # scripts/sanitize.sh and scripts/fuzz.sh: clang with libFuzzer and the
  # sanitizer runtimes, llvm-symbolizer for readable reports.
  clang-14 libclang-rt-14-dev llvm-14
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
