"""Overwrites the first elements of an F32 tensor in DIR/model.safetensors
with values that exercise rounding: bf16 and f16 ties (both directions),
f16 subnormals and underflow, f16 overflow, signed zero, f32 subnormals.

  poke_values.py DIR TENSOR
"""
import json
import struct
import sys

import numpy as np

path = sys.argv[1] + "/model.safetensors"
raw = bytearray(open(path, "rb").read())
(n,) = struct.unpack("<Q", raw[:8])
entry = json.loads(raw[8:8 + n])[sys.argv[2]]
assert entry["dtype"] == "F32"
values = np.array([
    1.0 + 2.0**-8,            # bf16 tie, even below: rounds down
    1.0 + 3 * 2.0**-8,        # bf16 tie, odd below: rounds up
    1.0 + 2.0**-8 + 2.0**-20,  # just above a bf16 tie
    -(1.0 + 3 * 2.0**-8),
    1.0 + 2.0**-11,           # f16 tie
    1.0 + 3 * 2.0**-11,
    65504.0, 65519.0, 65520.0, 70000.0, -1e6,  # f16 max, below/at rounding to inf
    6e-8, 2.0**-25, 3 * 2.0**-26, 2.0**-24, 1e-7, 3e-5, 2.0**-14 - 2.0**-30,
    -0.0, 1e-45, 1e-40, 123.456, -7.25, np.pi,
], dtype=np.float32)
start = 8 + n + entry["data_offsets"][0]
assert entry["data_offsets"][1] - entry["data_offsets"][0] >= values.nbytes
raw[start:start + values.nbytes] = values.astype("<f4").tobytes()
open(path, "wb").write(bytes(raw))
