"""Sets one element of an F32 tensor in DIR/model.safetensors:

  set_value.py DIR TENSOR INDEX VALUE      (INDEX in the flattened tensor;
                                           VALUE as Python's float() reads it)
"""
import json
import struct
import sys

path, name, index, value = sys.argv[1] + "/model.safetensors", sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
raw = bytearray(open(path, "rb").read())
(n,) = struct.unpack("<Q", raw[:8])
entry = json.loads(raw[8:8 + n])[name]
assert entry["dtype"] == "F32"
at = 8 + n + entry["data_offsets"][0] + 4 * index
assert at + 4 <= 8 + n + entry["data_offsets"][1]
raw[at:at + 4] = struct.pack("<f", value)
open(path, "wb").write(bytes(raw))
