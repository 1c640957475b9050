#!/usr/bin/env python3
"""The CPU plugin's object files keep each instruction-set level to itself.

One plugin binary runs on every x86-64 CPU because only the level files
(*_avx2.cc, *_avx512.cc, *_amx.cc) hold AVX (and AMX) code, and only in functions that the
dispatch (cpu_features.h) calls after CPUID said yes. Two ways to break
that, both silent on this machine and a SIGILL on an older one:
  - a baseline file compiled with AVX (a stray -m flag, a target pragma left
    open): baseline objects must use no ymm/zmm/tmm register;
  - a level file defining an inline function or template instantiation with
    weak (COMDAT) linkage: the linker may keep its AVX copy for every caller.
    Level files' weak symbols must use no ymm/zmm/tmm register, avx2 files
    no zmm, and only amx files tmm.
Usage: isa_hygiene.py OBJECT_LIST_FILE (one object path per line).
"""
import re
import subprocess
import sys

REG = re.compile(r"%(ymm|zmm|tmm)\d+|%k[1-7]\b")


def functions(obj):
    """{symbol: [instruction lines]} from objdump -d."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", obj],
                         stdout=subprocess.PIPE, check=True, text=True).stdout
    funcs, cur = {}, None
    for line in out.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            cur = m.group(1)
            funcs[cur] = []
        elif cur and line.startswith(" "):
            funcs[cur].append(line)
    return funcs


def weak_symbols(obj):
    out = subprocess.run(["nm", obj], stdout=subprocess.PIPE, check=True,
                         text=True).stdout
    weak = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in ("W", "V", "u"):
            weak.add(parts[2])
    return weak


def main():
    with open(sys.argv[1]) as f:
        objects = [l.strip() for l in f if l.strip()]
    if not objects:
        print("no object files listed in %s" % sys.argv[1])
        return 1
    errors = []
    levels = 0
    for obj in objects:
        level = ("amx" if "_amx" in obj else "avx512" if "_avx512" in obj
                 else "avx2" if "_avx2" in obj else None)
        funcs = functions(obj)
        weak = weak_symbols(obj) if level else set()
        for name, lines in funcs.items():
            regs = {m.group(0).rstrip("0123456789") for l in lines
                    for m in REG.finditer(l)}
            if not regs:
                continue
            if level is None:
                errors.append("%s: baseline function %s uses %s" %
                              (obj, name, ", ".join(sorted(regs))))
            elif name in weak:
                errors.append("%s: weak (shared) symbol %s uses %s" %
                              (obj, name, ", ".join(sorted(regs))))
            elif level == "avx2" and "%zmm" in regs:
                errors.append("%s: %s uses zmm in an avx2 file" % (obj, name))
            elif level != "amx" and "%tmm" in regs:
                errors.append("%s: %s uses tmm outside an amx file" %
                              (obj, name))
        if level and any(REG.search(l) for ls in funcs.values() for l in ls):
            levels += 1
    for e in errors:
        print("FAIL " + e)
    print("%d objects, %d level objects with SIMD code, %d problems" %
          (len(objects), levels, len(errors)))
    # The check means something only if the level files hold SIMD code.
    if levels == 0:
        print("FAIL no level object uses ymm/zmm: were the levels compiled?")
        return 1
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
