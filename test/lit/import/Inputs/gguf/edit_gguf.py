#!/usr/bin/python3
"""Damages a GGUF file in one named way, for the lit tests of the reader's errors.

    edit_gguf.py IN OUT ACTION [ARGS...]

Actions:
  truncate N            keep the first N bytes
  magic TEXT            replace the 4-byte magic
  version V             set the version field
  key-length N          set the length of the first key to N
  del-key KEY           drop a metadata entry
  set-str KEY VALUE     set a string entry (added when absent)
  tensor-dims NAME D,D  set a tensor's dims (ggml order)
  tensor-type NAME T    set a tensor's ggml type id
  tensor-offset NAME N  set a tensor's data offset (relative to the data section)
  tensor-rename NAME N  rename a tensor
  tensor-drop NAME      drop a tensor's info (its data stays, unreferenced)

Everything but truncate/magic/version/key-length parses the file and writes it back
whole, with the data section unchanged (tensor offsets are relative to it).
"""

import struct
import sys


def parse(data):
    pos = 24
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", data, 4)

    def string(p):
        n = struct.unpack_from("<Q", data, p)[0]
        return data[p + 8:p + 8 + n], p + 8 + n

    def skip_value(p, t):
        sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
        if t in sizes:
            return p + sizes[t]
        if t == 8:
            return string(p)[1]
        et, n = struct.unpack_from("<IQ", data, p)
        p += 12
        for _ in range(n):
            p = skip_value(p, et)
        return p

    kvs = []
    for _ in range(n_kv):
        key, pos = string(pos)
        t = struct.unpack_from("<I", data, pos)[0]
        end = skip_value(pos + 4, t)
        kvs.append([key.decode(), t, data[pos + 4:end]])
        pos = end
    tensors = []
    for _ in range(n_tensors):
        name, pos = string(pos)
        nd = struct.unpack_from("<I", data, pos)[0]
        dims = list(struct.unpack_from("<%dQ" % nd, data, pos + 4))
        pos += 4 + 8 * nd
        typ, off = struct.unpack_from("<IQ", data, pos)
        pos += 12
        tensors.append([name.decode(), dims, typ, off])
    align = 32
    for key, t, raw in kvs:
        if key == "general.alignment":
            align = struct.unpack("<I", raw)[0]
    start = (pos + align - 1) // align * align
    return version, kvs, tensors, data[start:], align


def serialize(version, kvs, tensors, blob, align):
    def s(b):
        b = b.encode() if isinstance(b, str) else b
        return struct.pack("<Q", len(b)) + b
    out = bytearray(b"GGUF") + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for key, t, raw in kvs:
        out += s(key) + struct.pack("<I", t) + raw
    for name, dims, typ, off in tensors:
        out += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", typ, off)
    out += b"\0" * ((align - len(out) % align) % align)
    return bytes(out) + blob


def main():
    src, dst, action, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    data = bytearray(open(src, "rb").read())
    if action == "truncate":
        data = data[:int(args[0])]
    elif action == "magic":
        data[0:4] = args[0].encode()[:4]
    elif action == "version":
        data[4:8] = struct.pack("<I", int(args[0]))
    elif action == "key-length":
        data[24:32] = struct.pack("<Q", int(args[0]))
    else:
        version, kvs, tensors, blob, align = parse(bytes(data))
        if action == "del-key":
            kvs = [kv for kv in kvs if kv[0] != args[0]]
        elif action == "set-str":
            raw = struct.pack("<Q", len(args[1].encode())) + args[1].encode()
            for kv in kvs:
                if kv[0] == args[0]:
                    kv[1], kv[2] = 8, raw
                    break
            else:
                kvs.append([args[0], 8, raw])
        elif action == "tensor-drop":
            tensors = [t for t in tensors if t[0] != args[0]]
        else:
            t = next(t for t in tensors if t[0] == args[0])
            if action == "tensor-dims":
                t[1] = [int(d) for d in args[1].split(",")]
            elif action == "tensor-type":
                t[2] = int(args[1])
            elif action == "tensor-offset":
                t[3] = int(args[1])
            elif action == "tensor-rename":
                t[0] = args[1]
            else:
                sys.exit("edit_gguf.py: unknown action " + action)
        data = serialize(version, kvs, tensors, blob, align)
    open(dst, "wb").write(bytes(data))


if __name__ == "__main__":
    main()
