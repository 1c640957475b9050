#!/usr/bin/python3
"""An independent NumPy implementation of the Gemma text models, for the e2e tests.

Written from the Hugging Face transformers definitions of `GemmaForCausalLM` (Gemma 1,
CodeGemma; modeling_gemma.py), `Gemma2ForCausalLM` (modeling_gemma2.py) and
`Gemma3ForCausalLM` (modeling_gemma3.py), not from gemmac's op set: it reads a
checkpoint directory itself (config.json with model_type gemma, gemma2, gemma3_text,
or gemma3 with the text model nested under `text_config`; one
model.safetensors or shards listed in model.safetensors.index.json; tensors under
`model.`, `language_model.model.` or `model.language_model.`; F32, BF16 or F16) and
computes everything in float64 with a full causal recompute (no KV cache), so that it
shares nothing with the compiled path but the checkpoint.

Numpy and the standard library only; run with /usr/bin/python3.

    reference.py CKPT_DIR --ids 2,5,9 [--greedy 32] [--rows R] [--compile-dtype bf16]
                 [--kv-dtype i8]
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np

TEXT_PREFIXES = ("model.", "language_model.model.", "model.language_model.")

# Gemma3TextConfig's defaults: the released multimodal configs leave most text keys out.
GEMMA3_DEFAULTS = {
    "vocab_size": 262208,
    "hidden_size": 2304,
    "intermediate_size": 9216,
    "num_hidden_layers": 26,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "hidden_activation": "gelu_pytorch_tanh",
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "query_pre_attn_scalar": 256,
    "sliding_window": 4096,
    "final_logit_softcapping": None,
    "attn_logit_softcapping": None,
    "rope_scaling": None,
    "rope_local_base_freq": 10000.0,
    "sliding_window_pattern": 6,
    "layer_types": None,
}

# GemmaConfig's defaults (Gemma 1, CodeGemma). No window, no soft-caps, one theta; the
# attention scale is head_dim^-1/2 (GemmaAttention); hidden_act is ignored and an absent
# hidden_activation means gelu_pytorch_tanh (GemmaMLP).
GEMMA1_DEFAULTS = {
    "vocab_size": 256000,
    "hidden_size": 3072,
    "intermediate_size": 24576,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 16,
    "head_dim": 256,
    "hidden_activation": None,
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "rope_scaling": None,
}

# Gemma2Config's defaults. Layers alternate sliding/full starting with sliding.
GEMMA2_DEFAULTS = {
    "vocab_size": 256000,
    "hidden_size": 2304,
    "intermediate_size": 9216,
    "num_hidden_layers": 26,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "hidden_activation": "gelu_pytorch_tanh",
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "query_pre_attn_scalar": 256,
    "sliding_window": 4096,
    "final_logit_softcapping": 30.0,
    "attn_logit_softcapping": 50.0,
    "rope_scaling": None,
    "layer_types": None,
}

FAMILY_OF_MODEL_TYPE = {"gemma": "gemma1", "gemma2": "gemma2", "gemma3_text": "gemma3",
                        "gemma3": "gemma3"}


class ReferenceError(Exception):
    pass


# ---------------------------------------------------------------------------------
# Loading


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ReferenceError("%s: %s" % (path, e))


def _read_safetensors(path, wanted):
    """Returns {name: float64 array} for the names in `wanted` found in one file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ReferenceError("%s: %s" % (path, e))
    if len(data) < 8:
        raise ReferenceError("%s: too short for a safetensors file" % path)
    (hlen,) = struct.unpack("<Q", data[:8])
    if 8 + hlen > len(data):
        raise ReferenceError("%s: header length %d past the end of the file" % (path, hlen))
    header = json.loads(data[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or name not in wanted:
            continue
        begin, end = info["data_offsets"]
        raw = data[base + begin:base + end]
        dt = info["dtype"]
        if dt == "F32":
            arr = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        elif dt == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float64)
        elif dt == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32).astype(np.float64)
        else:
            raise ReferenceError("%s: tensor %s has dtype %s, expected F32, BF16 or F16" %
                                 (path, name, dt))
        shape = tuple(info["shape"])
        if arr.size != int(np.prod(shape)):
            raise ReferenceError("%s: tensor %s: %d elements for shape %s" %
                                 (path, name, arr.size, shape))
        out[name] = (arr.reshape(shape), dt)
    return out


def _count_pieces(model_path):
    """Number of pieces in a sentencepiece ModelProto (repeated field 1)."""
    with open(model_path, "rb") as f:
        buf = f.read()
    pos, count = 0, 0

    def varint(p):
        v = s = 0
        while True:
            b = buf[p]
            p += 1
            v |= (b & 0x7F) << s
            if b < 0x80:
                return v, p
            s += 7

    while pos < len(buf):
        key, pos = varint(pos)
        wire = key & 7
        if wire == 0:
            _, pos = varint(pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            n, pos = varint(pos)
            pos += n
            if key >> 3 == 1:
                count += 1
        else:
            raise ReferenceError("%s: unexpected protobuf wire type %d" % (model_path, wire))
    return count


def bf16_round(x):
    """float64 -> nearest float32 -> nearest bfloat16 (ties to even), as float64."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32).astype(np.float64)


def f32_round(x):
    return np.asarray(x, dtype=np.float32).astype(np.float64)


class Config:
    def __init__(self, cfg_json, path):
        model_type = cfg_json.get("model_type")
        if model_type not in FAMILY_OF_MODEL_TYPE:
            raise ReferenceError("%s: model_type %r, expected one of %s" %
                                 (path, model_type, ", ".join(FAMILY_OF_MODEL_TYPE)))
        self.family = FAMILY_OF_MODEL_TYPE[model_type]
        defaults = {"gemma1": GEMMA1_DEFAULTS, "gemma2": GEMMA2_DEFAULTS,
                    "gemma3": GEMMA3_DEFAULTS}[self.family]
        text = cfg_json.get("text_config", cfg_json) if model_type == "gemma3" else cfg_json
        if not isinstance(text, dict):
            raise ReferenceError("%s: text_config is not an object" % path)
        get = lambda k: text.get(k, defaults[k])
        self.hidden = int(get("hidden_size"))
        self.ff = int(get("intermediate_size"))
        self.layers = int(get("num_hidden_layers"))
        self.heads = int(get("num_attention_heads"))
        self.kv_heads = int(get("num_key_value_heads"))
        self.head_dim = int(get("head_dim"))
        self.vocab = int(get("vocab_size"))
        self.eps = float(get("rms_norm_eps"))
        act = get("hidden_activation")
        if act is None and self.family != "gemma3":
            act = "gelu_pytorch_tanh"  # GemmaMLP's fallback; hidden_act is ignored
        if act != "gelu_pytorch_tanh":
            raise ReferenceError("%s: hidden_activation %r, expected gelu_pytorch_tanh" %
                                 (path, act))
        if self.family == "gemma1":
            self.window = 0
            self.query_pre_attn_scalar = float(self.head_dim)
            self.attn_softcap = None
            self.final_softcap = None
        else:
            self.window = int(get("sliding_window"))
            self.query_pre_attn_scalar = float(get("query_pre_attn_scalar"))
            self.attn_softcap = get("attn_logit_softcapping")
            self.final_softcap = get("final_logit_softcapping")
        # RoPE: Gemma 3's global layers use rope_theta with rope_scaling, its sliding
        # layers rope_local_base_freq without scaling (Gemma3RotaryEmbedding local
        # copy); Gemma 1/2 use rope_theta on every layer.
        self.global_theta = float(get("rope_theta"))
        self.local_theta = (float(get("rope_local_base_freq")) if self.family == "gemma3"
                            else self.global_theta)
        self.global_factor = 1.0
        scaling = get("rope_scaling")
        params = text.get("rope_parameters")
        if isinstance(params, dict) and "full_attention" in params:
            # Newer transformers write one RoPE dict per layer type.
            full, local = params["full_attention"], params.get("sliding_attention", {})
            self.global_theta = float(full.get("rope_theta", self.global_theta))
            self.local_theta = float(local.get("rope_theta", self.local_theta))
            scaling = full if full.get("rope_type", "default") != "default" else None
        if scaling is not None:
            kind = scaling.get("rope_type", scaling.get("type"))
            if kind != "linear" or self.family != "gemma3":
                raise ReferenceError("%s: rope_scaling %r, only linear on Gemma 3 is "
                                     "modelled" % (path, scaling))
            self.global_factor = float(scaling["factor"])
        if self.family == "gemma1":
            types = ["full_attention"] * self.layers
        else:
            types = get("layer_types")
        if types is None and self.family == "gemma2":
            types = ["sliding_attention" if (i + 1) % 2 else "full_attention"
                     for i in range(self.layers)]
        if types is None:
            pattern = int(get("sliding_window_pattern"))
            types = ["sliding_attention" if (i + 1) % pattern else "full_attention"
                     for i in range(self.layers)]
        if len(types) != self.layers:
            raise ReferenceError("%s: %d layer_types for %d layers" %
                                 (path, len(types), self.layers))
        self.sliding = [t == "sliding_attention" for t in types]


class Model:
    """Gemma 1/2/3 text model with float64 weights.

    compile_dtype: None keeps the checkpoint's values; "bf16" rounds every non-norm
    weight to bfloat16 first (what `gemma-compile --dtype bf16` stores), "f32" rounds
    them to float32. It also decides the precision of the embedding scale, which Hugging
    Face rounds to the embedding's dtype.

    kv_dtype: "i8" passes every key and value through the int8 KV cache's rounding
    (`gemma-compile --kv-dtype i8`) before attention; None or "f32" keeps them exact.
    """

    def __init__(self, ckpt_dir, compile_dtype=None, kv_dtype=None):
        if kv_dtype not in (None, "f32", "i8"):
            raise ReferenceError("kv_dtype %r, expected f32 or i8" % kv_dtype)
        self.kv_dtype = kv_dtype
        cfg_path = os.path.join(ckpt_dir, "config.json")
        self.cfg = Config(_read_json(cfg_path), cfg_path)
        c = self.cfg
        index_path = os.path.join(ckpt_dir, "model.safetensors.index.json")
        if os.path.exists(index_path):
            weight_map = _read_json(index_path).get("weight_map", {})
            files = sorted(set(weight_map.values()))
        else:
            weight_map = None
            files = ["model.safetensors"]
        names = set(weight_map) if weight_map is not None else None
        if names is None:
            path = os.path.join(ckpt_dir, files[0])
            try:
                with open(path, "rb") as f:
                    (hlen,) = struct.unpack("<Q", f.read(8))
                    names = set(json.loads(f.read(hlen).decode("utf-8")))
            except (OSError, ValueError, struct.error) as e:
                raise ReferenceError("%s: cannot read the safetensors header (%s)" % (path, e))
        prefix = next((p for p in TEXT_PREFIXES if p + "embed_tokens.weight" in names), None)
        if prefix is None:
            raise ReferenceError("%s: no embed_tokens.weight under any of %s" %
                                 (ckpt_dir, ", ".join(TEXT_PREFIXES)))
        wanted = {n for n in names if n.startswith(prefix)}
        raw = {}
        for fname in files:
            raw.update(_read_safetensors(os.path.join(ckpt_dir, fname), wanted))

        def take(name, shape, is_norm=False):
            full = prefix + name
            if full not in raw:
                raise ReferenceError("%s: missing tensor %s" % (ckpt_dir, full))
            arr, dt = raw[full]
            if tuple(arr.shape) != tuple(shape):
                raise ReferenceError("%s: tensor %s has shape %s, expected %s" %
                                     (ckpt_dir, full, list(arr.shape), list(shape)))
            if not is_norm and compile_dtype == "bf16":
                arr = bf16_round(arr)
            elif not is_norm and compile_dtype == "f32":
                arr = f32_round(arr)
            return arr, dt

        H, D = c.hidden, c.head_dim
        self.embed, edt = take("embed_tokens.weight", (c.vocab, H))
        scale_dtype = {"bf16": "BF16", "f32": "F32"}.get(compile_dtype, edt)
        root = math.sqrt(H)
        self.embed_scale = {"BF16": lambda v: float(bf16_round(np.array([v]))[0]),
                            "F16": lambda v: float(np.float16(v)),
                            "F32": lambda v: float(np.float32(v))}[scale_dtype](root)
        self.layers = []
        for i in range(c.layers):
            p = "layers.%d." % i
            L = {}
            norms = ["input_layernorm", "post_attention_layernorm"]
            if c.family != "gemma1":
                norms += ["pre_feedforward_layernorm", "post_feedforward_layernorm"]
            for n in norms:
                L[n] = take(p + n + ".weight", (H,), True)[0]
            if c.family == "gemma3":
                L["q_norm"] = take(p + "self_attn.q_norm.weight", (D,), True)[0]
                L["k_norm"] = take(p + "self_attn.k_norm.weight", (D,), True)[0]
            L["q"] = take(p + "self_attn.q_proj.weight", (c.heads * D, H))[0]
            L["k"] = take(p + "self_attn.k_proj.weight", (c.kv_heads * D, H))[0]
            L["v"] = take(p + "self_attn.v_proj.weight", (c.kv_heads * D, H))[0]
            L["o"] = take(p + "self_attn.o_proj.weight", (H, c.heads * D))[0]
            L["gate"] = take(p + "mlp.gate_proj.weight", (c.ff, H))[0]
            L["up"] = take(p + "mlp.up_proj.weight", (c.ff, H))[0]
            L["down"] = take(p + "mlp.down_proj.weight", (H, c.ff))[0]
            self.layers.append(L)
        self.final_norm = take("norm.weight", (H,), True)[0]
        tok = os.path.join(ckpt_dir, "tokenizer.model")
        self.pieces = _count_pieces(tok) if os.path.exists(tok) else None

    # --- the network, following Gemma{,2,3}ForCausalLM.forward ---

    def rms_norm(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.cfg.eps) * (1.0 + w)

    @staticmethod
    def rope(x, positions, theta, factor):
        """x: [T, heads, D]; rotate_half pairing (i, i + D/2), linear scaling divides
        the inverse frequencies by `factor`."""
        D = x.shape[-1]
        inv_freq = 1.0 / (theta ** (np.arange(0, D, 2, dtype=np.float64) / D)) / factor
        ang = positions[:, None].astype(np.float64) * inv_freq[None, :]
        ang = np.concatenate([ang, ang], axis=-1)[:, None, :]
        x1, x2 = x[..., :D // 2], x[..., D // 2:]
        rotated = np.concatenate([-x2, x1], axis=-1)
        return x * np.cos(ang) + rotated * np.sin(ang)

    @staticmethod
    def gelu_tanh(x):
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))

    # Queries per block of the attention: bounds the score matrix at BLOCK x (BLOCK +
    # window) for a sliding layer and BLOCK x T for a global one, so that sequences
    # of thousands of tokens (the long-context cases) cost seconds and little memory.
    BLOCK = 256

    @staticmethod
    def quantize_i8(x):
        """What an int8 KV cache stores and gives back (docs/quantization.md): per
        (position, KV head) row, s = max|x| / 127 and q = round(x / s), half away from
        zero, in float32 as the engine computes them; returns q * s as float64."""
        x32 = np.asarray(x, dtype=np.float32)
        s = (np.abs(x32).max(axis=-1, keepdims=True) / np.float32(127.0)).astype(np.float32)
        safe = np.where(s > 0, s, np.float32(1.0))
        r = (x32 / safe).astype(np.float64)
        q = np.clip(np.sign(r) * np.floor(np.abs(r) + 0.5), -127, 127)
        q = np.where(s > 0, q, 0.0)
        return q * s.astype(np.float64)

    def attention(self, L, x, sliding):
        c = self.cfg
        T = x.shape[0]
        D = c.head_dim
        q = (x @ L["q"].T).reshape(T, c.heads, D)
        k = (x @ L["k"].T).reshape(T, c.kv_heads, D)
        v = (x @ L["v"].T).reshape(T, c.kv_heads, D)
        if c.family == "gemma3":
            q = self.rms_norm(q, L["q_norm"])
            k = self.rms_norm(k, L["k_norm"])
        pos = np.arange(T)
        if sliding:
            q = self.rope(q, pos, c.local_theta, 1.0)
            k = self.rope(k, pos, c.local_theta, 1.0)
        else:
            q = self.rope(q, pos, c.global_theta, c.global_factor)
            k = self.rope(k, pos, c.global_theta, c.global_factor)
        if self.kv_dtype == "i8":
            k, v = self.quantize_i8(k), self.quantize_i8(v)
        group = c.heads // c.kv_heads
        scale = c.query_pre_attn_scalar ** -0.5
        # Query head h reads KV head h // group: [KV, group, T, D] against [KV, T, D].
        qg = q.reshape(T, c.kv_heads, group, D).transpose(1, 2, 0, 3)
        kt = k.transpose(1, 2, 0)  # [KV, D, T]
        vt = v.transpose(1, 0, 2)  # [KV, T, D]
        out = np.empty((c.kv_heads, group, T, D))
        for s0 in range(0, T, self.BLOCK):
            s1 = min(T, s0 + self.BLOCK)
            # The first key any query of the block may see; the mask below is exact.
            j0 = max(0, s0 - c.window + 1) if sliding else 0
            s = (qg[:, :, s0:s1, :] @ kt[:, None, :, j0:s1]) * scale
            if c.attn_softcap:
                s = c.attn_softcap * np.tanh(s / c.attn_softcap)
            i = np.arange(s0, s1)[:, None]
            j = np.arange(j0, s1)[None, :]
            visible = j <= i
            if sliding:
                visible &= j > i - c.window
            s = np.where(visible, s, -np.inf)
            s = s - s.max(axis=-1, keepdims=True)
            p = np.exp(s)
            p /= p.sum(axis=-1, keepdims=True)
            out[:, :, s0:s1, :] = p @ vt[:, None, j0:s1, :]
        return out.transpose(2, 0, 1, 3).reshape(T, c.heads * D) @ L["o"].T

    def hidden_states(self, ids, num_layers=None):
        """Residual stream after `num_layers` decoder layers (all by default)."""
        c = self.cfg
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 1 or ids.size == 0:
            raise ReferenceError("expected a non-empty list of token ids")
        if ids.min() < 0 or ids.max() >= c.vocab:
            raise ReferenceError("token id out of range [0, %d)" % c.vocab)
        x = self.embed[ids] * self.embed_scale
        n = c.layers if num_layers is None else num_layers
        mlp = lambda L, h: (self.gelu_tanh(h @ L["gate"].T) * (h @ L["up"].T)) @ L["down"].T
        for li in range(n):
            L = self.layers[li]
            a = self.attention(L, self.rms_norm(x, L["input_layernorm"]), c.sliding[li])
            if c.family == "gemma1":
                # GemmaDecoderLayer: pre-norm only; post_attention_layernorm feeds the MLP.
                x = x + a
                x = x + mlp(L, self.rms_norm(x, L["post_attention_layernorm"]))
            else:
                x = x + self.rms_norm(a, L["post_attention_layernorm"])
                h = self.rms_norm(x, L["pre_feedforward_layernorm"])
                x = x + self.rms_norm(mlp(L, h), L["post_feedforward_layernorm"])
        return x

    def default_rows(self):
        return self.pieces if self.pieces is not None else self.cfg.vocab

    def logits(self, ids, rows=None, positions=None):
        """float64 [len(ids), rows]: the tied head over the first `rows` embedding rows
        (the tokenizer's pieces; padding rows are not scored). With `positions`, only
        those rows of the result, in that order."""
        rows = self.default_rows() if rows is None else rows
        if not 0 < rows <= self.cfg.vocab:
            raise ReferenceError("rows %d outside (0, %d]" % (rows, self.cfg.vocab))
        x = self.hidden_states(ids)
        if positions is not None:
            x = x[np.asarray(positions, dtype=np.int64)]
        x = self.rms_norm(x, self.final_norm)
        out = x @ self.embed[:rows].T
        if self.cfg.final_softcap:
            out = self.cfg.final_softcap * np.tanh(out / self.cfg.final_softcap)
        return out

    def greedy(self, ids, steps, rows=None):
        """Greedy continuation recomputing the whole sequence each step.

        Returns (generated ids, top-1 minus top-2 logit margin at each step, logit range
        (max - min) at each step)."""
        seq = list(ids)
        gen, margins, ranges = [], [], []
        for _ in range(steps):
            last = self.logits(seq, rows)[-1]
            order = np.argsort(-last, kind="stable")
            gen.append(int(order[0]))
            margins.append(float(last[order[0]] - last[order[1]]))
            ranges.append(float(last.max() - last.min()))
            seq.append(int(order[0]))
        return gen, margins, ranges


def main():
    ap = argparse.ArgumentParser(description="NumPy Gemma 1/2/3 reference (float64).")
    ap.add_argument("ckpt", help="Hugging Face checkpoint directory")
    ap.add_argument("--ids", required=True, help="comma-separated prompt token ids")
    ap.add_argument("--greedy", type=int, default=0, help="greedy tokens to generate")
    ap.add_argument("--rows", type=int, default=None,
                    help="scored rows (default: the tokenizer's piece count)")
    ap.add_argument("--compile-dtype", choices=["f32", "bf16"], default=None)
    ap.add_argument("--kv-dtype", choices=["f32", "i8"], default=None,
                    help="i8: round keys and values as an int8 KV cache stores them")
    ap.add_argument("--save-logits", default=None, help="write prompt logits as .npy")
    args = ap.parse_args()
    try:
        ids = [int(t) for t in args.ids.split(",") if t.strip()]
    except ValueError:
        sys.exit("reference.py: --ids: expected comma-separated integers, got %r" % args.ids)
    try:
        model = Model(args.ckpt, args.compile_dtype, args.kv_dtype)
        lg = model.logits(ids, args.rows)
        if args.save_logits:
            np.save(args.save_logits, lg.astype(np.float32))
        top = np.argsort(-lg, axis=-1)[:, :3]
        for t in range(len(ids)):
            print("pos %3d id %6d  top: %s" % (t, ids[t], ", ".join(
                "%d (%.4f)" % (j, lg[t, j]) for j in top[t])))
        if args.greedy:
            gen, margins, _ = model.greedy(ids, args.greedy, args.rows)
            print("greedy:", ",".join(map(str, gen)))
            print("min top-1 margin: %.4g" % min(margins))
    except ReferenceError as e:
        sys.exit("reference.py: error: %s" % e)


if __name__ == "__main__":
    main()
