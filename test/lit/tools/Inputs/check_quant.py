"""Checks the weights of a .gmc module against the checkpoint it was compiled
from, quantized formats included, with no gemmac code: the FlatBuffer is
decoded by flatc against runtime/schema/module.fbs, and every weight is
converted or quantized here, independently, from docs/quantization.md:

  check_quant.py MODULE SCHEMA CHECKPOINT_DIR

  Q8C     per row: scale = f32(max|w| / 127); q = clamp(round(w / scale), -127,
          127) (0 for a zero row); int8 q[rows][cols] then f32 scale[rows]
  Q4G32   per 32-block: m = first element of largest magnitude, d = f16(m / -8),
          nibble = clamp(round(w / d) + 8, 0, 15) (8 if d == 0); 18-byte blocks
          f16 d, qs[16], element j < 16 low nibble of qs[j], j >= 16 high of qs[j-16]
  Q4G128  per 128-block: m = f16(min), d = f16((max - min) / 15) (0 if max == min),
          nibble = clamp(round((w - m) / d), 0, 15) (0 if d == 0); 68-byte blocks
          f16 d, f16 m, qs[64]
  Q4G32R8 Q4G32's blocks, rows in groups of 8: per group, per 32-column block,
          a 144-byte run of the 8 rows' f16 d, then the 8 rows' qs[16]

`round` is to nearest, ties away from zero (C's roundf), computed in float64
from the float32 quotient, which numpy forms exactly as C does.

Each weight's bytes must equal this script's, byte for byte, and size_bytes
the layout's size. It also dequantizes each quantized weight and reports the
largest error relative to the block's step. Prints a report for FileCheck;
exits non-zero on the first mismatch.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

module_path, schema, ckpt = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(module_path, "rb").read()


def fail(msg):
    sys.exit("check_quant: " + msg)


(prog_off, prog_size) = struct.unpack("<2Q", data[16:32])
with tempfile.TemporaryDirectory() as tmp:
    prog = os.path.join(tmp, "program.bin")
    open(prog, "wb").write(data[prog_off:prog_off + prog_size])
    flatc = shutil.which("flatc") or "/usr/bin/flatc"
    subprocess.run([flatc, "--json", "--strict-json", "--raw-binary", "-o", tmp, schema, "--", prog],
                   check=True)
    m = json.load(open(os.path.join(tmp, "program.json")))

tensors = {}
for name in sorted(os.listdir(ckpt)):
    if name.endswith(".safetensors"):
        raw = open(os.path.join(ckpt, name), "rb").read()
        (n,) = struct.unpack("<Q", raw[:8])
        for tname, e in json.loads(raw[8:8 + n]).items():
            if tname != "__metadata__":
                b, end = e["data_offsets"]
                tensors[tname] = (e["dtype"], e["shape"], raw[8 + n + b:8 + n + end])


def as_f32(dtype, buf):
    if dtype == "F32":
        return np.frombuffer(buf, "<f4").copy()
    if dtype == "F16":
        return np.frombuffer(buf, "<f2").astype(np.float32)
    return (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view(np.float32)


def to_bf16(x):
    bits = x.view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype("<u2").tobytes()


def round_away(v):
    v = v.astype(np.float64)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def f16(x):
    with np.errstate(over="ignore"):
        return x.astype(np.float16)


def q8c(w):
    amax = np.abs(w).max(axis=1, keepdims=True)
    scale = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(scale == 0, 0, np.clip(round_away(w / scale), -127, 127))
    deq = q * scale.astype(np.float64)
    step = scale.astype(np.float64)
    return q.astype(np.int8).tobytes() + scale.astype("<f4").tobytes(), deq, step


def q4g32(w):
    rows, cols = w.shape
    b = w.reshape(rows, cols // 32, 32)
    idx = np.abs(b).argmax(axis=2)[..., None]
    m = np.take_along_axis(b, idx, axis=2)
    dh = f16((m / np.float32(-8)).astype(np.float32))
    d = dh.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        nib = np.where(d == 0, 8, np.clip(round_away(b / d), -8, 7) + 8).astype(np.uint8)
    qs = nib[..., :16] | (nib[..., 16:] << 4)
    blocks = np.concatenate([dh.astype("<f2").view(np.uint8).reshape(rows, cols // 32, 2), qs], axis=2)
    deq = (nib.astype(np.float64) - 8) * d.astype(np.float64)
    return blocks.tobytes(), deq.reshape(rows, cols), np.broadcast_to(np.abs(d), b.shape).reshape(rows, cols)


def q4g128(w):
    rows, cols = w.shape
    b = w.reshape(rows, cols // 128, 128)
    lo = b.min(axis=2, keepdims=True)
    hi = b.max(axis=2, keepdims=True)
    dh = f16(np.where(hi == lo, np.float32(0), ((hi - lo) / np.float32(15)).astype(np.float32)))
    mh = f16(lo)
    d, mm = dh.astype(np.float32), mh.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        nib = np.where(d == 0, 0, np.clip(round_away((b - mm) / d), 0, 15)).astype(np.uint8)
    qs = nib[..., :64] | (nib[..., 64:] << 4)
    head = np.concatenate([dh.astype("<f2").view(np.uint8).reshape(rows, cols // 128, 2),
                           mh.astype("<f2").view(np.uint8).reshape(rows, cols // 128, 2)], axis=2)
    blocks = np.concatenate([head, qs], axis=2)
    deq = nib.astype(np.float64) * d.astype(np.float64) + mm.astype(np.float64)
    return blocks.tobytes(), deq.reshape(rows, cols), np.broadcast_to(d, b.shape).reshape(rows, cols)


def q4g32r8(w):
    rows, cols = w.shape
    if rows % 8:
        fail("a Q4G32R8 weight of %d rows (not a multiple of 8)" % rows)
    blocks, deq, step = q4g32(w)
    b = np.frombuffer(blocks, np.uint8).reshape(rows // 8, 8, cols // 32, 18)
    b = b.transpose(0, 2, 1, 3)  # [group, block, row in group, 18 bytes]
    d = b[..., :2].reshape(rows // 8, cols // 32, 16)
    qs = b[..., 2:].reshape(rows // 8, cols // 32, 128)
    return np.concatenate([d, qs], axis=2).tobytes(), deq, step


QUANT = {"Q8C": q8c, "Q4G32": q4g32, "Q4G128": q4g128, "Q4G32R8": q4g32r8}
segs = m["segments"]
by_dtype = {}
worst = {}
for t in m["tensors"]:
    if t.get("storage", "Weight") != "Weight":
        continue
    src = tensors.get(t["name"])
    if src is None:
        fail("weight %s is not in the checkpoint" % t["name"])
    if list(src[1]) != list(t["shape"]):
        fail("weight %s shape %r != %r" % (t["name"], t["shape"], src[1]))
    s = segs[t.get("segment", 0)]
    start = s["offset"] + t.get("offset", 0)
    got = data[start:start + t["size_bytes"]]
    dtype = t.get("dtype", "F32")
    x = as_f32(src[0], src[2])
    if dtype in QUANT:
        w = x.reshape(src[1])
        want, deq, step = QUANT[dtype](w)
        # Error in units of the block's step: at most 1/2, except Q4G32's
        # top nibble (7, for values up to 8 steps) and f16 rounding of m.
        err = np.abs(deq - w.astype(np.float64)) / np.where(step == 0, 1, step)
        worst[dtype] = max(worst.get(dtype, 0.0), float(err.max()))
    elif dtype == "F32":
        want = x.astype("<f4").tobytes()
    elif dtype == "F16":
        want = f16(x).astype("<f2").tobytes()
    else:
        want = to_bf16(x)
    if t["size_bytes"] != len(want):
        fail("weight %s (%s): size_bytes %d, the layout needs %d" % (t["name"], dtype, t["size_bytes"], len(want)))
    if got != want:
        diff = next(i for i in range(len(want)) if got[i] != want[i])
        fail("weight %s (%s): byte %d of %d differs from the independent quantization" % (
            t["name"], dtype, diff, len(want)))
    by_dtype[dtype] = by_dtype.get(dtype, 0) + 1
print("weights: %d match (%s)" % (sum(by_dtype.values()), ", ".join("%s %d" % kv for kv in sorted(by_dtype.items()))))
for dtype in sorted(worst):
    print("%s max error %.3f steps" % (dtype, worst[dtype]))
print("quantization: %s" % m.get("quantization", ""))
print("required_features: %s" % " ".join(m.get("required_features", [])))
print("kv dtypes: %s" % " ".join(k.get("dtype", "F32") for k in m["kv_layers"]))
for f in m["functions"]:
    out = m["tensors"][f["outputs"][0]]
    ops = sorted({i["op"] for i in f["instructions"]})
    print("function %s: output %s, ops %s" % (f["name"], out["shape"], " ".join(ops)))
