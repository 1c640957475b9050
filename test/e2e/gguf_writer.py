#!/usr/bin/python3
"""Converts a Hugging Face Gemma checkpoint directory into a GGUF file, as llama.cpp's
convert_hf_to_gguf.py (and llama-quantize) would, written from the GGUF spec with numpy
only (no gguf package).

    gguf_writer.py CKPT_DIR OUT.gguf [--type f32|f16|bf16|q8_0|q4_0|q4_0_mixed|kquants]
                   [--dequant-checkpoint DIR] [--version 3]

What it does the way llama.cpp does it:
  * architecture `gemma`, `gemma2` or `gemma3` from config.json's model_type, with the
    `{arch}.*` keys of convert_hf_to_gguf.py (context_length, embedding_length,
    block_count, feed_forward_length, attention.head_count[_kv], attention.key_length,
    attention.value_length, attention.layer_norm_rms_epsilon, attention.sliding_window,
    rope.freq_base, rope.scaling.type/factor, the soft-caps);
  * tensor names token_embd, blk.N.attn_q ... output_norm; dims in ggml order (the
    numpy shape reversed); no lm_head (Gemma ties it);
  * norm weights hold 1 + w (stored f32), as Gemma's converters write them;
  * tokenizer.ggml.* from tokenizer.model (the ModelProto parsed here): model "llama",
    tokens, scores, token_type (user-defined pieces become NORMAL, as
    _set_vocab_sentencepiece does, except the turn markers, which Gemma's
    tokenizer_config.json marks special: CONTROL), bos/eos/unk/padding ids, eot,
    add_space_prefix false;
  * matrices quantized with ggml's reference quantizers (quantize_row_q8_0_ref,
    quantize_row_q4_0_ref); "kquants" stores a Q4_K_M-like mix of Q4_K, Q5_K and Q6_K
    made by a simple quantizer of this script's own (any bytes are valid K-quant blocks;
    the test checks decoding, not ggml's search for the best scales).

--dequant-checkpoint writes an f32 HF checkpoint holding the values the GGUF file
decodes to (dequantized here, independently of the C++ code, as ggml's reference
dequantize_row_* functions compute them in f32), with norm weights w' such that
1 + w' is exactly the stored 1 + w: the same model in the HF layout, for comparisons
that must be bit-identical.
"""

import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

ARCH = {"gemma": "gemma", "gemma2": "gemma2", "gemma3": "gemma3", "gemma3_text": "gemma3"}

# ggml_type ids
F32, F16, Q4_0, Q8_0, Q4_K, Q5_K, Q6_K, BF16 = 0, 1, 2, 8, 12, 13, 14, 30
BLOCK = {F32: (1, 4), F16: (1, 2), BF16: (1, 2), Q4_0: (32, 18), Q8_0: (32, 34),
         Q4_K: (256, 144), Q5_K: (256, 176), Q6_K: (256, 210)}
# GGUF metadata value types
U8, I8, U16, I16, U32, I32, F32V, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)


def fail(msg):
    sys.stderr.write("gguf_writer.py: error: %s\n" % msg)
    sys.exit(1)


# ---------------------------------------------------------------------------------
# sentencepiece ModelProto (the fields a GGUF vocabulary needs)


def _varint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf):
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        yield field, value


def read_tokenizer(path):
    """Returns (pieces [(text, score, type)], trainer {field: value})."""
    with open(path, "rb") as f:
        data = f.read()
    pieces, trainer = [], {}
    for field, value in _fields(data):
        if field == 1:
            text, score, typ = "", 0.0, 1
            for f2, v2 in _fields(value):
                if f2 == 1:
                    text = v2.decode("utf-8")
                elif f2 == 2:
                    score = struct.unpack("<f", v2)[0]
                elif f2 == 3:
                    typ = v2
            pieces.append((text, score, typ))
        elif field == 2:
            for f2, v2 in _fields(value):
                trainer[f2] = v2
    return pieces, trainer


# ---------------------------------------------------------------------------------
# safetensors


def read_checkpoint(ckpt):
    files = []
    index = os.path.join(ckpt, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors = {}
    for name in files:
        with open(os.path.join(ckpt, name), "rb") as f:
            data = f.read()
        n = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8:8 + n])
        base = 8 + n
        for key, t in header.items():
            if key == "__metadata__":
                continue
            begin, end = t["data_offsets"]
            raw = data[base + begin:base + end]
            if t["dtype"] == "F32":
                a = np.frombuffer(raw, dtype="<f4")
            elif t["dtype"] == "BF16":
                a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
            elif t["dtype"] == "F16":
                a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
            else:
                continue
            tensors[key] = a.reshape(t["shape"]).astype(np.float32)
    return tensors


def write_safetensors(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, arr in tensors:
        blob = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for blob in blobs:
            f.write(blob)


# ---------------------------------------------------------------------------------
# ggml block formats: quantizers (ggml's reference ones for Q8_0 / Q4_0) and decoders


def f16(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16)


def quantize_q8_0(x):
    """quantize_row_q8_0_ref: d = amax / 127, q = roundf(x * (1/d))."""
    b = x.reshape(-1, 32).astype(np.float32)
    amax = np.abs(b).max(axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    v = (b * idv[:, None]).astype(np.float32)
    q = (np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))).astype(np.int8)  # roundf
    out = np.zeros((b.shape[0], 34), np.uint8)
    out[:, 0:2] = f16(d).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def quantize_q4_0(x):
    """quantize_row_q4_0_ref: d = max / -8 (max: the element of largest |x|),
    nibble = min(15, (int8)(x * (1/d) + 8.5))."""
    b = x.reshape(-1, 32).astype(np.float32)
    idx = np.abs(b).argmax(axis=1)  # the first of equal magnitudes, as ggml's loop
    mx = b[np.arange(b.shape[0]), idx]
    d = (mx / np.float32(-8)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    v = (b * idv[:, None] + np.float32(8.5)).astype(np.float32)
    q = np.minimum(15, np.trunc(v).astype(np.int32)).astype(np.uint8)
    out = np.zeros((b.shape[0], 18), np.uint8)
    out[:, 0:2] = f16(d).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


def _round(v):
    return np.floor(v + 0.5).astype(np.int32)


def _pack_scales_k4(sc, mn):
    """12 bytes of 6-bit scales and mins per block (inverse of get_scale_min_k4)."""
    n = sc.shape[0]
    out = np.zeros((n, 12), np.uint8)
    for j in range(4):
        out[:, j] = (sc[:, j] & 63) | ((sc[:, j + 4] >> 4) << 6)
        out[:, j + 4] = (mn[:, j] & 63) | ((mn[:, j + 4] >> 4) << 6)
        out[:, j + 8] = (sc[:, j + 4] & 15) | ((mn[:, j + 4] & 15) << 4)
    return out


def quantize_qk(x, bits):
    """Q4_K (bits 4) or Q5_K (bits 5): 8 sub-blocks of 32 with 6-bit scale and min."""
    b = x.reshape(-1, 8, 32).astype(np.float32)
    top = (1 << bits) - 1
    lo = np.minimum(b.min(axis=2), 0)
    scale = (b.max(axis=2) - lo) / top
    d = np.maximum(scale.max(axis=1), 1e-8) / 63
    dmin = np.maximum((-lo).max(axis=1), 1e-8) / 63
    d16, dmin16 = f16(d), f16(dmin)
    sc = np.clip(_round(scale / d16.astype(np.float32)[:, None]), 1, 63).astype(np.uint8)
    mn = np.clip(_round(-lo / dmin16.astype(np.float32)[:, None]), 0, 63).astype(np.uint8)
    step = d16.astype(np.float32)[:, None] * sc
    offset = dmin16.astype(np.float32)[:, None] * mn
    q = np.clip(_round((b + offset[:, :, None]) / step[:, :, None]), 0, top).astype(np.uint8)
    n = b.shape[0]
    head = np.zeros((n, 4), np.uint8)
    head[:, 0:2] = d16.view(np.uint8).reshape(-1, 2)
    head[:, 2:4] = dmin16.view(np.uint8).reshape(-1, 2)
    scales = _pack_scales_k4(sc, mn)
    # Sub-blocks 2k and 2k+1 share 32 bytes: low nibbles, then high nibbles.
    low = q & 15
    qs = (low[:, 0::2, :] | (low[:, 1::2, :] << 4)).reshape(n, 128)
    if bits == 4:
        return np.concatenate([head, scales, qs], axis=1).tobytes()
    hi = (q >> 4) & 1  # [n, 8, 32]
    qh = np.zeros((n, 32), np.uint8)
    for s in range(8):
        qh |= (hi[:, s, :] << s).astype(np.uint8)
    return np.concatenate([head, scales, qh, qs], axis=1).tobytes()


def quantize_q6_k(x):
    """Q6_K: 16 sub-blocks of 16 with int8 scales, 6-bit codes - 32."""
    b = x.reshape(-1, 16, 16).astype(np.float32)
    n = b.shape[0]
    scale = np.abs(b).max(axis=2) / 31
    d = np.maximum(np.abs(scale).max(axis=1), 1e-8) / 127
    d16 = f16(d)
    sc = np.clip(_round(scale / d16.astype(np.float32)[:, None]), 1, 127).astype(np.int8)
    step = d16.astype(np.float32)[:, None] * sc.astype(np.float32)
    q = (np.clip(_round(b / step[:, :, None]), -32, 31) + 32).astype(np.uint8)
    q = q.reshape(n, 2, 128)  # two halves of 128
    ql = np.zeros((n, 2, 64), np.uint8)
    qh = np.zeros((n, 2, 32), np.uint8)
    for l in range(32):
        q1, q2, q3, q4 = q[:, :, l], q[:, :, l + 32], q[:, :, l + 64], q[:, :, l + 96]
        ql[:, :, l] = (q1 & 15) | ((q3 & 15) << 4)
        ql[:, :, l + 32] = (q2 & 15) | ((q4 & 15) << 4)
        qh[:, :, l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)
    return np.concatenate([ql.reshape(n, 128), qh.reshape(n, 64), sc.view(np.uint8),
                           d16.view(np.uint8).reshape(-1, 2)], axis=1).tobytes()


def _h(raw):
    return np.frombuffer(raw.tobytes(), dtype="<f2").astype(np.float32)


def dequantize(raw, typ, count):
    """ggml's reference dequantize_row_* in numpy f32 (each product rounded to f32 in
    the order ggml's C computes it)."""
    bs, nbytes = BLOCK[typ]
    blocks = np.frombuffer(raw, np.uint8).reshape(-1, nbytes)
    f = np.float32
    if typ == Q8_0:
        return (blocks[:, 2:].view(np.int8).astype(f) * _h(blocks[:, 0:2])[:, None]).reshape(-1)
    if typ == Q4_0:
        d = _h(blocks[:, 0:2])[:, None]
        qs = blocks[:, 2:]
        lo = ((qs & 15).astype(np.int32) - 8).astype(f) * d
        hi = ((qs >> 4).astype(np.int32) - 8).astype(f) * d
        return np.concatenate([lo, hi], axis=1).reshape(-1)
    if typ in (Q4_K, Q5_K):
        d = _h(blocks[:, 0:2])
        dmin = _h(blocks[:, 2:4])
        s = blocks[:, 4:16].astype(np.int32)
        sc = np.zeros((len(blocks), 8), np.int32)
        mn = np.zeros((len(blocks), 8), np.int32)
        for j in range(8):
            if j < 4:
                sc[:, j], mn[:, j] = s[:, j] & 63, s[:, j + 4] & 63
            else:
                sc[:, j] = (s[:, j + 4] & 15) | ((s[:, j - 4] >> 6) << 4)
                mn[:, j] = (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)
        qs = blocks[:, 16:144] if typ == Q4_K else blocks[:, 48:176]
        qh = blocks[:, 16:48] if typ == Q5_K else None
        out = np.zeros((len(blocks), 256), f)
        for k in range(4):  # 64 values per step: sub-blocks 2k and 2k+1
            q = qs[:, 32 * k:32 * k + 32].astype(np.int32)
            for half, vals in ((0, q & 15), (1, q >> 4)):
                sub = 2 * k + half
                if qh is not None:
                    vals = vals + np.where(qh & (1 << sub), 16, 0)
                d1 = (d * sc[:, sub].astype(f)).astype(f)
                m1 = (dmin * mn[:, sub].astype(f)).astype(f)
                out[:, 64 * k + 32 * half:64 * k + 32 * half + 32] = \
                    (d1[:, None] * vals.astype(f)).astype(f) - m1[:, None]
        return out.reshape(-1)
    if typ == Q6_K:
        ql = blocks[:, 0:128].astype(np.int32)
        qh = blocks[:, 128:192].astype(np.int32)
        sc = blocks[:, 192:208].view(np.int8).astype(f)
        d = _h(blocks[:, 208:210])
        out = np.zeros((len(blocks), 256), f)
        for n in range(2):
            L, H, S = ql[:, 64 * n:64 * n + 64], qh[:, 32 * n:32 * n + 32], sc[:, 8 * n:8 * n + 8]
            for l in range(32):
                i = l // 16
                q1 = ((L[:, l] & 15) | (((H[:, l] >> 0) & 3) << 4)) - 32
                q2 = ((L[:, l + 32] & 15) | (((H[:, l] >> 2) & 3) << 4)) - 32
                q3 = ((L[:, l] >> 4) | (((H[:, l] >> 4) & 3) << 4)) - 32
                q4 = ((L[:, l + 32] >> 4) | (((H[:, l] >> 6) & 3) << 4)) - 32
                for off, qv, si in ((0, q1, 0), (32, q2, 2), (64, q3, 4), (96, q4, 6)):
                    out[:, 128 * n + l + off] = ((d * S[:, i + si]).astype(f) * qv.astype(f)).astype(f)
        return out.reshape(-1)
    raise ValueError(typ)


def encode(arr, typ):
    if typ == F32:
        return np.ascontiguousarray(arr, "<f4").tobytes()
    if typ == F16:
        return np.ascontiguousarray(arr, "<f2").tobytes()
    if typ == BF16:
        u = np.ascontiguousarray(arr, np.float32).view(np.uint32).astype(np.uint64)
        return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2").tobytes()
    return {Q8_0: quantize_q8_0, Q4_0: quantize_q4_0, Q6_K: quantize_q6_k,
            Q4_K: lambda x: quantize_qk(x, 4), Q5_K: lambda x: quantize_qk(x, 5)}[typ](arr)


def decode(raw, typ, shape):
    count = int(np.prod(shape))
    if typ == F32:
        a = np.frombuffer(raw, "<f4")
    elif typ == F16:
        a = np.frombuffer(raw, "<f2").astype(np.float32)
    elif typ == BF16:
        a = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
    else:
        a = dequantize(raw, typ, count)
    return a.astype(np.float32).reshape(shape)


# ---------------------------------------------------------------------------------
# GGUF


class Writer:
    def __init__(self):
        self.kv = []

    def add(self, key, vtype, value, elem=None):
        self.kv.append((key, vtype, value, elem))

    @staticmethod
    def _string(s):
        b = s.encode("utf-8") if isinstance(s, str) else s
        return struct.pack("<Q", len(b)) + b

    def _value(self, vtype, value, elem):
        fmt = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i",
               F32V: "<f", BOOL: "<B", U64: "<Q", I64: "<q", F64: "<d"}
        if vtype == STRING:
            return self._string(value)
        if vtype == ARRAY:
            out = struct.pack("<IQ", elem, len(value))
            if elem == STRING:
                return out + b"".join(self._string(v) for v in value)
            if elem in (F32V, I32):
                return out + np.asarray(value, "<f4" if elem == F32V else "<i4").tobytes()
            return out + b"".join(self._value(elem, v, None) for v in value)
        return struct.pack(fmt[vtype], value)

    def write(self, path, tensors, version=3, alignment=32):
        """tensors: [(name, ggml dims, type, bytes)]."""
        out = bytearray(b"GGUF")
        out += struct.pack("<IQQ", version, len(tensors), len(self.kv))
        for key, vtype, value, elem in self.kv:
            out += self._string(key) + struct.pack("<I", vtype) + self._value(vtype, value, elem)
        offset = 0
        for name, dims, typ, blob in tensors:
            out += self._string(name) + struct.pack("<I", len(dims))
            out += b"".join(struct.pack("<Q", d) for d in dims)
            out += struct.pack("<IQ", typ, offset)
            offset += (len(blob) + alignment - 1) // alignment * alignment
        out += b"\0" * ((alignment - len(out) % alignment) % alignment)
        for _, _, _, blob in tensors:
            out += blob + b"\0" * ((alignment - len(blob) % alignment) % alignment)
        with open(path, "wb") as f:
            f.write(out)


def gguf_name(hf, family):
    """HF name (without the text prefix) -> GGUF name (llama.cpp's tensor_mapping)."""
    if hf == "embed_tokens.weight":
        return "token_embd.weight"
    if hf == "norm.weight":
        return "output_norm.weight"
    parts = hf.split(".")
    assert parts[0] == "layers", hf
    rest = ".".join(parts[2:])
    table = {
        "input_layernorm.weight": "attn_norm.weight",
        "self_attn.q_proj.weight": "attn_q.weight",
        "self_attn.k_proj.weight": "attn_k.weight",
        "self_attn.v_proj.weight": "attn_v.weight",
        "self_attn.o_proj.weight": "attn_output.weight",
        "self_attn.q_norm.weight": "attn_q_norm.weight",
        "self_attn.k_norm.weight": "attn_k_norm.weight",
        "pre_feedforward_layernorm.weight": "ffn_norm.weight",
        "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
        "mlp.gate_proj.weight": "ffn_gate.weight",
        "mlp.up_proj.weight": "ffn_up.weight",
        "mlp.down_proj.weight": "ffn_down.weight",
    }
    if rest == "post_attention_layernorm.weight":
        name = "ffn_norm.weight" if family == "gemma" else "post_attention_norm.weight"
    else:
        name = table[rest]
    return "blk.%s.%s" % (parts[1], name)


def tensor_type(gguf, kind, ndim):
    """The ggml type of a tensor under --type `kind` (1-D tensors stay F32)."""
    if ndim == 1:
        return F32
    simple = {"f32": F32, "f16": F16, "bf16": BF16, "q8_0": Q8_0, "q4_0": Q4_0}
    if kind in simple:
        return simple[kind]
    if kind == "q4_0_mixed":  # llama-quantize's Q4_0: the tied embedding at Q6_K
        return Q6_K if gguf == "token_embd.weight" else Q4_0
    # kquants: a Q4_K_M-like mix (llama-quantize keeps attn_v, ffn_down and the
    # embedding/output at Q6_K; Q5_K stands in for the layers it bumps up).
    if gguf == "token_embd.weight" or ".attn_v." in gguf:
        return Q6_K
    if ".ffn_down." in gguf or ".attn_output." in gguf:
        return Q5_K
    return Q4_K


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("out")
    ap.add_argument("--type", default="f32",
                    choices=["f32", "f16", "bf16", "q8_0", "q4_0", "q4_0_mixed", "kquants"])
    ap.add_argument("--dequant-checkpoint")
    ap.add_argument("--version", type=int, default=3)
    args = ap.parse_args()

    with open(os.path.join(args.ckpt, "config.json")) as f:
        config = json.load(f)
    text = config.get("text_config", config)
    model_type = text.get("model_type", config.get("model_type"))
    arch = ARCH.get(model_type) or ARCH.get(config.get("model_type"))
    if arch is None:
        fail("config.json: model_type %r is not a Gemma text model" % model_type)
    family = arch
    tensors = read_checkpoint(args.ckpt)
    prefix = next(p for p in ("model.language_model.", "language_model.model.", "model.")
                  if p + "embed_tokens.weight" in tensors)
    pieces, trainer = read_tokenizer(os.path.join(args.ckpt, "tokenizer.model"))
    n_vocab = len(pieces)

    w = Writer()
    w.add("general.architecture", STRING, arch)
    w.add("general.name", STRING, "gemmac test model")
    w.add("general.alignment", U32, 32)
    a = arch + "."
    w.add(a + "context_length", U32, text["max_position_embeddings"])
    w.add(a + "embedding_length", U32, text["hidden_size"])
    w.add(a + "block_count", U32, text["num_hidden_layers"])
    w.add(a + "feed_forward_length", U32, text["intermediate_size"])
    w.add(a + "attention.head_count", U32, text["num_attention_heads"])
    w.add(a + "attention.head_count_kv", U32, text["num_key_value_heads"])
    w.add(a + "attention.layer_norm_rms_epsilon", F32V, text.get("rms_norm_eps", 1e-6))
    w.add(a + "attention.key_length", U32, text["head_dim"])
    w.add(a + "attention.value_length", U32, text["head_dim"])
    w.add(a + "rope.freq_base", F32V, float(text.get("rope_theta", 10000.0)))
    if arch == "gemma2":
        w.add(a + "attn_logit_softcapping", F32V, float(text["attn_logit_softcapping"]))
        w.add(a + "final_logit_softcapping", F32V, float(text["final_logit_softcapping"]))
    if arch in ("gemma2", "gemma3"):
        w.add(a + "attention.sliding_window", U32, text["sliding_window"])
    if arch == "gemma3" and text.get("final_logit_softcapping"):
        w.add(a + "final_logit_softcapping", F32V, float(text["final_logit_softcapping"]))
    scaling = text.get("rope_scaling")
    if scaling and scaling.get("rope_type", scaling.get("type")) == "linear":
        w.add(a + "rope.scaling.type", STRING, "linear")
        w.add(a + "rope.scaling.factor", F32V, float(scaling["factor"]))

    # Vocabulary, as _set_vocab_sentencepiece writes it.
    specials = {"<start_of_turn>", "<end_of_turn>"}
    types = []
    for text_, _, typ in pieces:
        if typ == 4:  # USER_DEFINED -> NORMAL, unless tokenizer_config marks it special
            typ = 3 if text_ in specials else 1
        types.append(typ)
    w.add("tokenizer.ggml.model", STRING, "llama")
    w.add("tokenizer.ggml.pre", STRING, "default")
    w.add("tokenizer.ggml.tokens", ARRAY, [p[0] for p in pieces], STRING)
    w.add("tokenizer.ggml.scores", ARRAY, [p[1] for p in pieces], F32V)
    w.add("tokenizer.ggml.token_type", ARRAY, types, I32)
    w.add("tokenizer.ggml.bos_token_id", U32, config.get("bos_token_id", trainer.get(41, 2)))
    eos = config.get("eos_token_id", text.get("eos_token_id", 1))
    eos = eos if isinstance(eos, list) else [eos]
    w.add("tokenizer.ggml.eos_token_id", U32, eos[0])
    if len(eos) > 1:
        w.add("tokenizer.ggml.eot_token_id", U32, eos[1])
    w.add("tokenizer.ggml.unknown_token_id", U32, trainer.get(40, 0))
    w.add("tokenizer.ggml.padding_token_id", U32, config.get("pad_token_id", 0))
    w.add("tokenizer.ggml.add_bos_token", BOOL, 1)
    w.add("tokenizer.ggml.add_eos_token", BOOL, 0)
    w.add("tokenizer.ggml.add_space_prefix", BOOL, 0)

    out, dequant = [], []
    for hf, arr in tensors.items():
        if not hf.startswith(prefix):
            continue  # vision tower, projector
        short = hf[len(prefix):]
        if short.startswith("lm_head"):
            continue
        name = gguf_name(short, family)
        if short == "embed_tokens.weight":
            arr = arr[:n_vocab]  # converters drop the padding rows
        if arr.ndim == 1 and short.endswith("norm.weight"):
            stored = (arr + np.float32(1)).astype(np.float32)
            back = (stored - np.float32(1)).astype(np.float32)
            # 1 + back must give the stored value exactly, or the two paths differ.
            assert np.array_equal((back + np.float32(1)).astype(np.float32), stored), hf
        else:
            stored = arr
        typ = tensor_type(name, args.type, arr.ndim)
        blob = encode(stored, typ)
        out.append((name, list(reversed(arr.shape)), typ, blob))
        if arr.ndim == 1 and short.endswith("norm.weight"):
            dequant.append((hf, back))
        else:
            dequant.append((hf, decode(blob, typ, arr.shape)))
    w.write(args.out, out, version=args.version)

    if args.dequant_checkpoint:
        d = args.dequant_checkpoint
        os.makedirs(d, exist_ok=True)
        write_safetensors(os.path.join(d, "model.safetensors"), dequant)
        cfg = dict(config)
        if "text_config" in cfg:
            fail("--dequant-checkpoint needs a flat checkpoint")
        cfg["vocab_size"] = n_vocab
        cfg["torch_dtype"] = "float32"
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        shutil.copyfile(os.path.join(args.ckpt, "tokenizer.model"),
                        os.path.join(d, "tokenizer.model"))


if __name__ == "__main__":
    main()
