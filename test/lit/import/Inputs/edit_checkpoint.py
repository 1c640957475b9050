"""Damages a checkpoint made by make_checkpoint.py in one precise way, so the
importer's error paths can be tested on otherwise valid input.

  edit_checkpoint.py DIR set-config KEY JSON     (KEY may be text_config.KEY)
  edit_checkpoint.py DIR del-config KEY
  edit_checkpoint.py DIR drop-tensor NAME        (single-file checkpoints)
  edit_checkpoint.py DIR set-shape NAME D0,D1,...
  edit_checkpoint.py DIR set-offsets NAME BEGIN,END
  edit_checkpoint.py DIR header-length N
  edit_checkpoint.py DIR remove FILE
"""
import json
import os
import struct
import sys


def config_edit(path, key, value, delete):
    with open(path) as f:
        cfg = json.load(f)
    obj = cfg
    parts = key.split(".")
    for p in parts[:-1]:
        obj = obj[p]
    if delete:
        del obj[parts[-1]]
    else:
        obj[parts[-1]] = json.loads(value)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)


def read_st(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def write_st(path, header, body):
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + body)


def main():
    d, cmd = sys.argv[1], sys.argv[2]
    args = sys.argv[3:]
    st = os.path.join(d, "model.safetensors")
    if cmd == "set-config":
        config_edit(os.path.join(d, "config.json"), args[0], args[1], False)
    elif cmd == "del-config":
        config_edit(os.path.join(d, "config.json"), args[0], None, True)
    elif cmd in ("drop-tensor", "set-shape", "set-offsets"):
        header, body = read_st(st)
        if args[0] not in header:
            sys.exit("no tensor %s" % args[0])
        if cmd == "drop-tensor":
            del header[args[0]]
        elif cmd == "set-shape":
            header[args[0]]["shape"] = [int(x) for x in args[1].split(",")]
        else:
            header[args[0]]["data_offsets"] = [int(x) for x in args[1].split(",")]
        write_st(st, header, body)
    elif cmd == "header-length":
        with open(st, "r+b") as f:
            f.write(struct.pack("<Q", int(args[0])))
    elif cmd == "remove":
        os.remove(os.path.join(d, args[0]))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
