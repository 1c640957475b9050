#!/usr/bin/env python3
"""check_arches.py LIB: the CUDA plugin carries sm_80 and sm_90 ELF (cubin)
and sm_90 PTX, read from its fatbinary headers (the cuobjdump-free form of
check_arches.sh, for toolkits without cuobjdump).

Fatbinary layout (little-endian): a header {u32 magic 0xBA55ED50, u16 version,
u16 header_size, u64 size}, then entries {u16 kind (1 PTX, 2 ELF), u16, u32
header_size, u64 size, ..., u32 arch at byte 28}, each followed by its
payload."""
import struct
import sys

MAGIC = 0xBA55ED50


def entries(data):
    at = 0
    while True:
        at = data.find(struct.pack("<I", MAGIC), at)
        if at < 0:
            return
        _, _, hsize, size = struct.unpack_from("<IHHQ", data, at)
        e, end = at + hsize, at + hsize + size
        while e + 32 <= end:
            kind, _, ehsize, esize = struct.unpack_from("<HHIQ", data, e)
            arch = struct.unpack_from("<I", data, e + 28)[0]
            if ehsize == 0:
                break
            yield kind, arch
            e += ehsize + esize
        at = max(end, at + 4)


def main():
    lib = sys.argv[1]
    with open(lib, "rb") as f:
        data = f.read()
    found = sorted(set(entries(data)))
    names = ["%s sm_%d" % ({1: "PTX", 2: "ELF"}.get(k, "kind%d" % k), a)
             for k, a in found]
    print("%s: %s" % (lib, ", ".join(names) or "no fatbinary entries"))
    missing = [n for n in ("ELF sm_80", "ELF sm_90", "PTX sm_90") if n not in names]
    if missing:
        print("FAIL: %s lacks %s, expected sm_80/sm_90 ELF and sm_90 PTX"
              % (lib, ", ".join(missing)))
        return 1
    print("OK: sm_80 and sm_90 ELF and sm_90 PTX present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
