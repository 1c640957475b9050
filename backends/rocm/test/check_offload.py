#!/usr/bin/env python3
"""check_offload.py LIB ARCH...: the ROCm plugin carries an AMD GPU code
object for each ARCH (e.g. gfx90a gfx940), read from the clang offload
bundle(s) hipcc embeds in the .hip_fatbin section, without
clang-offload-bundler or roc-obj-ls.

Bundle layout (little-endian): the magic "__CLANG_OFFLOAD_BUNDLE__", u64
entry count, then per entry {u64 offset (from the magic), u64 size, u64 id
length, id}, e.g. id "hipv4-amdgcn-amd-amdhsa--gfx90a". A device entry must
be a non-empty ELF whose e_flags name the same processor (EF_AMDGPU_MACH), so
a mislabelled or empty entry does not count."""
import struct
import sys

MAGIC = b"__CLANG_OFFLOAD_BUNDLE__"
# EF_AMDGPU_MACH values (LLVM's ELF.h) of the targets this plugin may build.
MACH = {"gfx908": 0x030, "gfx90a": 0x03F, "gfx940": 0x040, "gfx941": 0x04B,
        "gfx942": 0x04C}


def bundles(data):
    """(arch, problem or None) for every amdgcn entry of every bundle."""
    at = data.find(MAGIC)
    while at >= 0:
        (count,) = struct.unpack_from("<Q", data, at + len(MAGIC))
        e = at + len(MAGIC) + 8
        for _ in range(count):
            off, size, idlen = struct.unpack_from("<QQQ", data, e)
            ident = data[e + 24:e + 24 + idlen].decode("ascii", "replace")
            e += 24 + idlen
            if "amdgcn" not in ident:
                continue
            arch = ident.rsplit("--", 1)[-1].split(":")[0]
            payload = data[at + off:at + off + size]
            problem = None
            if size == 0 or payload[:4] != b"\x7fELF":
                problem = "is %d bytes, not an ELF code object" % size
            elif arch in MACH:
                (flags,) = struct.unpack_from("<I", payload, 48)
                if flags & 0xFF != MACH[arch]:
                    problem = ("has EF_AMDGPU_MACH 0x%03x, expected 0x%03x"
                               % (flags & 0xFF, MACH[arch]))
            yield arch, problem
        at = data.find(MAGIC, e)


def main():
    if len(sys.argv) < 3:
        print("usage: check_offload.py LIB ARCH...")
        return 2
    lib, want = sys.argv[1], sys.argv[2:]
    with open(lib, "rb") as f:
        data = f.read()
    found = {}
    for arch, problem in bundles(data):
        if problem:
            print("FAIL: %s: the %s code object %s" % (lib, arch, problem))
            return 1
        found[arch] = True
    print("%s: code objects for %s" % (lib, ", ".join(sorted(found)) or
                                       "no target (no offload bundle found)"))
    missing = [a for a in want if a not in found]
    if missing:
        print("FAIL: %s lacks code objects for %s, expected %s"
              % (lib, ", ".join(missing), ", ".join(want)))
        return 1
    print("OK: %s present" % ", ".join(want))
    return 0


if __name__ == "__main__":
    sys.exit(main())
