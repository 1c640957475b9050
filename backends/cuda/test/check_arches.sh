#!/bin/sh
# check_arches.sh CUOBJDUMP LIB: the CUDA plugin carries sm_80 and sm_90
# machine code and PTX (CMAKE_CUDA_ARCHITECTURES "80-real;90-real;90-virtual"),
# so it runs on A100/H100-class GPUs without JIT and on newer ones via PTX.
set -u
cuobjdump=$1
lib=$2
elf=$("$cuobjdump" --list-elf "$lib" 2>&1) || {
  echo "FAIL: $cuobjdump --list-elf $lib failed: $elf"
  exit 1
}
ptx=$("$cuobjdump" --list-ptx "$lib" 2>&1) || {
  echo "FAIL: $cuobjdump --list-ptx $lib failed: $ptx"
  exit 1
}
echo "ELF: $elf"
echo "PTX: $ptx"
status=0
for arch in sm_80 sm_90; do
  if ! printf '%s\n' "$elf" | grep -q "\.$arch\.cubin"; then
    echo "FAIL: $lib has no $arch ELF (cubin), expected one"
    status=1
  fi
done
if ! printf '%s\n' "$ptx" | grep -q "\.sm_90\.ptx"; then
  echo "FAIL: $lib has no sm_90 PTX, expected one (90-virtual)"
  status=1
fi
[ $status -eq 0 ] && echo "OK: sm_80 and sm_90 ELF and sm_90 PTX present"
exit $status
