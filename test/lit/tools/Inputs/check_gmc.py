"""Reads a .gmc module without any gemmac code (the FlatBuffer is decoded by
flatc against runtime/schema/module.fbs) and checks it against the checkpoint
it was compiled from:

  check_gmc.py MODULE SCHEMA CHECKPOINT_DIR

header fields and file size, 4 KiB aligned non-overlapping segments, FNV-1a
checksums, every weight's bytes equal to the checkpoint tensor converted
independently here (bf16 by nearest-even choice between neighbours, f16 by
numpy), arena slots inside their arenas, the tokenizer bytes. Prints a short
report for FileCheck; exits non-zero on the first mismatch.
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
    sys.exit("check_gmc: " + msg)


magic = data[:8]
(major, minor, prog_off, prog_size, w_off, w_size, file_size, reserved) = struct.unpack(
    "<II6Q", data[8:64])
if magic != b"GEMMACMD":
    fail("bad magic %r" % magic)
if file_size != len(data):
    fail("file_size %d but the file has %d bytes" % (file_size, len(data)))
if prog_off != 64 or prog_off + prog_size > w_off or w_off % 4096 or reserved:
    fail("bad layout %r" % ((prog_off, prog_size, w_off),))
if w_off + w_size != file_size:
    fail("weights end %d != file size %d" % (w_off + w_size, file_size))
if any(data[prog_off + prog_size:w_off]):
    fail("padding after the program is not zero")
print("header: version %d.%d, program %d bytes, weights at %d" % (major, minor, prog_size, w_off))

with tempfile.TemporaryDirectory() as tmp:
    prog = os.path.join(tmp, "program.bin")
    open(prog, "wb").write(data[prog_off:prog_off + prog_size])
    flatc = shutil.which("flatc") or "/usr/bin/flatc"
    subprocess.run([flatc, "--json", "--strict-json", "--raw-binary", "-o", tmp, schema, "--", prog],
                   check=True)
    m = json.load(open(os.path.join(tmp, "program.json")))

# Checkpoint tensors, read with our own header parser.
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
        return np.frombuffer(buf, "<f4")
    if dtype == "F16":
        return np.frombuffer(buf, "<f2").astype(np.float32)
    return (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view(np.float32)


def to_bf16(x):
    bits = x.view(np.uint32)
    lo = bits & 0xFFFF0000
    hi = lo + 0x10000
    lo_f = lo.view(np.float32).astype(np.float64)
    hi_f = hi.view(np.float32).astype(np.float64)
    xd = x.astype(np.float64)
    dlo, dhi = np.abs(xd - lo_f), np.abs(hi_f - xd)
    lo_even = ((lo >> 16) & 1) == 0
    pick_hi = (dhi < dlo) | ((dhi == dlo) & ~lo_even)
    return (np.where(pick_hi, hi, lo) >> 16).astype("<u2").tobytes()


def convert(src_dtype, buf, dst_dtype):
    if src_dtype == dst_dtype:
        return buf
    x = as_f32(src_dtype, buf)
    if dst_dtype == "F32":
        return x.astype("<f4").tobytes()
    if dst_dtype == "F16":
        with np.errstate(over="ignore"):  # overflow to inf is the expected result
            return x.astype("<f2").tobytes()
    return to_bf16(x)


def fnv1a(buf):
    h = 0xcbf29ce484222325
    for byte in buf:
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


segs = m["segments"]
prev_end = w_off
for i, s in enumerate(segs):
    if s["offset"] % 4096 or s["offset"] < prev_end or s["offset"] + s["size"] > file_size:
        fail("segment %d misplaced: %r" % (i, s))
    if fnv1a(data[s["offset"]:s["offset"] + s["size"]]) != int(s["checksum"]):
        fail("segment %d checksum mismatch" % i)
    prev_end = s["offset"] + s["size"]
print("segments: %d, aligned, checksums ok" % len(segs))

by_dtype = {}
weights = [t for t in m["tensors"] if t.get("storage", "Weight") == "Weight"]
for t in weights:
    src = tensors.get(t["name"])
    if src is None:
        fail("weight %s is not in the checkpoint" % t["name"])
    if list(src[1]) != list(t["shape"]):
        fail("weight %s shape %r != %r" % (t["name"], t["shape"], src[1]))
    s = segs[t.get("segment", 0)]
    got = data[s["offset"] + t.get("offset", 0):s["offset"] + t.get("offset", 0) + t["size_bytes"]]
    want = convert(src[0], src[2], t.get("dtype", "F32"))
    if got != want:
        fail("weight %s bytes differ from the converted checkpoint tensor" % t["name"])
    by_dtype[t.get("dtype", "F32")] = by_dtype.get(t.get("dtype", "F32"), 0) + 1
print("weights: %d match the checkpoint (%s)" % (
    len(weights), ", ".join("%s %d" % kv for kv in sorted(by_dtype.items()))))

for f in m["functions"]:
    ids = set(f["inputs"]) | set(f["outputs"])
    for inst in f["instructions"]:
        ids |= set(inst["inputs"]) | set(inst["outputs"])
    ids.discard(0xFFFFFFFF)  # an absent optional input (module.fbs)
    for i in ids:
        t = m["tensors"][i]
        if t.get("storage") == "Arena" and t.get("offset", 0) + t["size_bytes"] > f["arena_bytes"]:
            fail("%s: tensor %s outside the arena" % (f["name"], t["name"]))
    print("function %s: max_tokens %d, %d instructions, input %s, output %s" % (
        f["name"], f["max_tokens"], len(f["instructions"]),
        m["tensors"][f["inputs"][0]]["shape"], m["tensors"][f["outputs"][0]]["shape"]))

print("kv capacities: %s" % " ".join(str(k.get("capacity", 0)) for k in m["kv_layers"]))
tok = open(os.path.join(ckpt, "tokenizer.model"), "rb").read()
if bytes(m["tokenizer"]) != tok:
    fail("tokenizer bytes differ from tokenizer.model")
print("tokenizer: %d bytes, %d pieces" % (len(tok), m["tokenizer_vocab_size"]))
st = m["special_tokens"]
print("stop: %s" % st.get("stop"))
print("producer: %s" % m["producer"])
