#!/usr/bin/env bash
# sdk.example_out_of_tree: the installed gemmac package is all a plugin author
# needs. Installs the build to a scratch prefix, then builds plugins/example,
# plugins/sdk/template and plugins/sdk/consumer out of tree against that
# prefix alone, and checks what an author relies on:
#   - the installed package names no source or build path;
#   - each plugin exports exactly one dynamic symbol, gemmac_plugin_entry;
#   - each plugin passes the installed conformance suite, run as its own
#     project's ctest (when this build has gemmac-conformance);
#   - the installed runtime finds the installed CPU plugin by itself and the
#     two plugins on GEMMAC_PLUGIN_PATH.
# No network; the scratch folder is kept for a look after a failure.
set -euo pipefail

expect_conformance=0
while [[ $# -gt 0 ]]; do
  case "$1" in
  --build) build=$2 ;;
  --source) source=$2 ;;
  --work) work=$2 ;;
  --cmake) cmake=$2 ;;
  --generator) generator=$2 ;;
  --make-program) make_program=$2 ;;
  --c-compiler) cc=$2 ;;
  --cxx-compiler) cxx=$2 ;;
  --expect-conformance) expect_conformance=$2 ;;
  *)
    echo "test_out_of_tree.sh: unknown argument '$1'" >&2
    exit 2
    ;;
  esac
  shift 2
done
ctest="$(dirname "$cmake")/ctest"
prefix="$work/prefix"

fail() {
  echo "sdk.example_out_of_tree: FAIL: $*" >&2
  exit 1
}

rm -rf "$work"
mkdir -p "$work"

echo "== install $build to $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 ||
  fail "cmake --install $build failed (see $work/install.log):
$(tail -n 20 "$work/install.log")"

# Paths into the source or build tree would make the package work here and
# nowhere else.
if leaks=$(grep -rlF -e "$source" -e "$build" "$prefix/include" \
  "$prefix/lib/cmake" 2>/dev/null); then
  fail "installed files name the source or build tree, expected only
prefix-relative paths: $leaks"
fi

# Configures and builds one project against the scratch prefix only.
build_project() {
  local name=$1 src=$2 out="$work/$1"
  echo "== build $name ($src) against $prefix"
  "$cmake" -S "$src" -B "$out" -G "$generator" \
    -DCMAKE_MAKE_PROGRAM="$make_program" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
    -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF \
    >"$work/$name.configure.log" 2>&1 ||
    fail "configuring $src against $prefix failed:
$(tail -n 30 "$work/$name.configure.log")"
  local found
  found=$(sed -n 's/^gemmac_DIR:PATH=//p' "$out/CMakeCache.txt")
  [[ "$found" == "$prefix/"* ]] ||
    fail "$name found the gemmac package at '$found', expected it under $prefix"
  "$cmake" --build "$out" >"$work/$name.build.log" 2>&1 ||
    fail "building $src against $prefix failed:
$(tail -n 30 "$work/$name.build.log")"
}

# The exact dynamic symbol table a plugin must have.
check_exports() {
  local lib=$1 syms
  [[ -f "$lib" ]] || fail "$lib was not built, expected it from gemmac_add_plugin"
  syms=$(nm -D --defined-only "$lib" | awk '{print $NF}' | sort)
  [[ "$syms" == "gemmac_plugin_entry" ]] ||
    fail "$lib exports '$(echo $syms)', expected exactly gemmac_plugin_entry"
  echo "   $lib exports only gemmac_plugin_entry"
}

# The project's own add_test(... GEMMAC_CONFORMANCE_EXECUTABLE ...), as an
# author would run it.
run_conformance() {
  local name=$1 out="$work/$1" count
  count=$("$ctest" --test-dir "$out" -N | sed -n 's/^Total Tests: //p')
  if [[ "$expect_conformance" != 1 ]]; then
    echo "   conformance: skipped (this build has no gemmac-conformance)"
    return
  fi
  [[ "$count" -ge 1 ]] ||
    fail "$name registered no conformance test, expected one: the package did
not set GEMMAC_CONFORMANCE_EXECUTABLE (is bin/gemmac-conformance installed?)"
  "$ctest" --test-dir "$out" --output-on-failure >"$work/$name.ctest.log" 2>&1 ||
    fail "$name failed the conformance suite:
$(tail -n 40 "$work/$name.ctest.log")"
  echo "   conformance: $name passes"
}

build_project example "$source/plugins/example"
check_exports "$work/example/libgemmac_example.so"
run_conformance example

build_project template "$source/plugins/sdk/template"
check_exports "$work/template/libgemmac_template.so"
run_conformance template

# gemmac::runtime and the plugin search of an installed runtime.
build_project consumer "$source/plugins/sdk/consumer"
listed=$(GEMMAC_PLUGIN_PATH="$work/example:$work/template" \
  "$work/consumer/gemmac_list_plugins") ||
  fail "gemmac_list_plugins failed: $listed"
for want in cpu example template; do
  grep -qx "plugin $want" <<<"$listed" ||
    fail "the installed runtime did not load plugin '$want'; it listed:
$listed"
done
echo "   the installed runtime loads: $(grep '^plugin ' <<<"$listed" | cut -d' ' -f2 | tr '\n' ' ')"
echo "sdk.example_out_of_tree: PASS"
