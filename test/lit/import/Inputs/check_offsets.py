"""Checks every gemma.weight in importer output against the safetensors
headers, read independently of the importer: same file, absolute offset =
8 + header length + data_offsets[0], and the file's dtype."""
import json
import os
import re
import struct
import sys

ckpt, mlir = sys.argv[1], sys.argv[2]
headers = {}
for name in os.listdir(ckpt):
    if name.endswith(".safetensors"):
        path = os.path.join(ckpt, name)
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            headers[os.path.realpath(path)] = (8 + n, json.loads(f.read(n)))
pattern = re.compile(r'gemma\.weight "([^"]+)" \{file = "([^"]+)", offset = (\d+) : i64, source_dtype = "(\w+)"\}')
count, files = 0, set()
for m in pattern.finditer(open(mlir).read()):
    name, path, offset, dtype = m.group(1), m.group(2), int(m.group(3)), m.group(4)
    start, header = headers[os.path.realpath(path)]
    entry = header.get(name)
    if entry is None:
        sys.exit("%s is not in %s" % (name, path))
    if start + entry["data_offsets"][0] != offset or entry["dtype"] != dtype:
        sys.exit("%s: offset %d / %s, expected %d / %s" % (
            name, offset, dtype, start + entry["data_offsets"][0], entry["dtype"]))
    count += 1
    files.add(path)
print("checked %d weights, %d files, all offsets agree" % (count, len(files)))
