#!/usr/bin/python3
"""Writes a tiny random Gemma text checkpoint in the Hugging Face layout.

--family picks the generation: gemma3 (the default; Gemma3ForCausalLM, or the
multimodal layouts with --form nested/nested-new), gemma2 (Gemma2ForCausalLM) or
gemma1 (GemmaForCausalLM, also CodeGemma). Each writes the keys of the published
config.json of its family (gemma-3-1b-it, gemma-2-2b, gemma-2b) with small numbers
and only the tensors that family has.

The end-to-end tests and the README's demo model need a checkpoint that looks exactly
like a released one (config.json keys, tensor names, safetensors files, a sentencepiece
tokenizer.model) but is small enough to compile and run in seconds. The weights are
random, drawn deterministically from --seed; the tokenizer is trained with Debian's
`spm_train` on the committed corpus.txt (plus the GPL-3 text when the system has it).

Uses only numpy and the standard library; run it with /usr/bin/python3.

Weight scales (why they are what they are):
  * Projections (q/k/v/o, gate/up/down): N(0, 1/fan_in), so a unit-RMS input gives a
    unit-RMS output and nothing explodes or vanishes over the layers.
  * Embedding: N(0, embed_std^2) with embed_std = 1/sqrt(hidden) by default, so that
    `E[token] * sqrt(hidden)` has unit-RMS elements, the same size as what each
    sandwich-normed block adds to the residual. A larger embedding (std ~1) makes the
    residual stream a copy of the current token's embedding and the tied head then
    predicts "repeat the last token" forever, which tests almost nothing. The tied head
    gives logits of O(1..3); the e2e tests compare against tolerances relative to the
    logit range, so the absolute scale does not matter, only that positions differ.
  * Norm weights: N(0, 0.1^2) around zero, as stored by HF (the model multiplies by
    1 + w), so an engine that forgets the +1 or ignores w produces different logits.
    QK-norm weights use a larger spread (N(0.5, 0.3^2)) so the attention scores are
    peaked enough that positions (RoPE, windows) change the result visibly. Gemma 1/2
    have no QK-norm; their q_proj is drawn with --q-gain times the usual spread
    (default 2.5 for them) for the same reason, and so that Gemma 2's attention
    soft-cap (--attn-softcap, scaled down with the model) is reached.
"""

import argparse
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus.txt")
EXTRA_CORPUS = "/usr/share/common-licenses/GPL-3"


def fail(msg):
    sys.stderr.write("make_checkpoint.py: error: %s\n" % msg)
    sys.exit(1)


# ---------------------------------------------------------------------------------
# Tokenizer


def read_pieces(model_path):
    """Returns the piece strings of a sentencepiece ModelProto (field 1, repeated)."""
    with open(model_path, "rb") as f:
        data = f.read()

    def varint(buf, pos):
        result = shift = 0
        while True:
            if pos >= len(buf):
                raise ValueError("truncated varint")
            b = buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result, pos
            shift += 7

    def skip(buf, pos, wire):
        if wire == 0:
            return varint(buf, pos)[1]
        if wire == 1:
            return pos + 8
        if wire == 2:
            n, pos = varint(buf, pos)
            return pos + n
        if wire == 5:
            return pos + 4
        raise ValueError("unsupported wire type %d" % wire)

    pieces = []
    pos = 0
    while pos < len(data):
        key, pos = varint(data, pos)
        field, wire = key >> 3, key & 7
        if field == 1 and wire == 2:
            n, pos = varint(data, pos)
            sub, sp, piece = data[pos:pos + n], 0, None
            while sp < len(sub):
                k, sp = varint(sub, sp)
                if k >> 3 == 1 and k & 7 == 2:
                    m, sp = varint(sub, sp)
                    piece = sub[sp:sp + m].decode("utf-8", "replace")
                    sp += m
                else:
                    sp = skip(sub, sp, k & 7)
            pieces.append(piece)
            pos += n
        else:
            pos = skip(data, pos, wire)
    return pieces


# User-defined pieces in front of the turn markers, so that <start_of_turn> and
# <end_of_turn> get the ids they have in the released vocabularies: Gemma 1/2's
# 256000-piece vocabulary has <mask>, <2mass>, [@BOS@] and <unused0..98> at 4..105
# and the markers at 106/107; Gemma 3's has <mask>, [multimodal] and <unused0..98>
# at 4..104 and the markers at 105/106. "compact" puts the markers at 4/5.
SPECIAL_LAYOUTS = {
    "compact": [],
    "gemma1": ["<mask>", "<2mass>", "[@BOS@]"] + ["<unused%d>" % i for i in range(99)],
    "gemma3": ["<mask>", "[multimodal]"] + ["<unused%d>" % i for i in range(99)],
}


def train_tokenizer(vocab, out_path, layout="compact"):
    spm = shutil.which("spm_train")
    if spm is None:
        fail("spm_train not found on PATH (Debian package sentencepiece)")
    with tempfile.TemporaryDirectory() as tmp:
        # The trainer records its input and output paths in the model; relative names
        # in a scratch directory keep the file identical from run to run.
        inputs = ["corpus.txt"]
        shutil.copyfile(CORPUS, os.path.join(tmp, "corpus.txt"))
        if os.path.exists(EXTRA_CORPUS):
            inputs.append("GPL-3.txt")
            shutil.copyfile(EXTRA_CORPUS, os.path.join(tmp, "GPL-3.txt"))
        prefix = os.path.join(tmp, "tok")
        cmd = [
            spm,
            "--input=" + ",".join(inputs),
            "--model_prefix=tok",
            "--model_type=bpe",
            "--vocab_size=%d" % vocab,
            "--hard_vocab_limit=false",
            "--byte_fallback=true",
            "--split_digits=true",
            "--add_dummy_prefix=false",
            "--remove_extra_whitespaces=false",
            "--allow_whitespace_only_pieces=true",
            "--normalization_rule_name=identity",
            "--character_coverage=1.0",
            "--pad_id=0",
            "--eos_id=1",
            "--bos_id=2",
            "--unk_id=3",
            "--user_defined_symbols=" + ",".join(
                SPECIAL_LAYOUTS[layout] + ["<start_of_turn>", "<end_of_turn>"]),
            "--num_threads=1",
            "--minloglevel=2",
        ]
        proc = subprocess.run(cmd, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            fail("spm_train failed (exit %d):\n%s" %
                 (proc.returncode, proc.stderr.decode("utf-8", "replace")[-4000:]))
        shutil.copyfile(prefix + ".model", out_path)


# ---------------------------------------------------------------------------------
# safetensors


def bf16_bits(a):
    """Rounds float32 to bfloat16 (nearest, ties to even); returns the uint16 bits."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def tensor_bytes(a, dtype):
    if dtype == "bf16":
        return bf16_bits(a).astype("<u2").tobytes()
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def write_safetensors(path, tensors, dtype):
    """tensors: list of (name, float32 array). Returns total data bytes."""
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name, arr in tensors:
        blob = tensor_bytes(arr, dtype)
        header[name] = {
            "dtype": "BF16" if dtype == "bf16" else "F32",
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        offset += len(blob)
        blobs.append(blob)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # The reference writer pads the header with spaces so the data starts 8-aligned.
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for blob in blobs:
            f.write(blob)
    return offset


# ---------------------------------------------------------------------------------
# Model


def make_weights(args, rows, rng):
    """Returns [(hf_name_without_prefix, float32 array)] in HF order."""
    H, F, D = args.hidden, args.ff, args.head_dim
    nq, nkv = args.heads, args.kv_heads

    def proj(out_dim, in_dim):
        return rng.normal(0.0, 1.0 / math.sqrt(in_dim), (out_dim, in_dim))

    def norm(n, mean=0.0, std=0.1):
        return rng.normal(mean, std, (n,))

    embed_std = args.embed_std if args.embed_std is not None else 1.0 / math.sqrt(H)
    out = [("embed_tokens.weight", rng.normal(0.0, embed_std, (rows, H)))]
    q_gain = args.q_gain if args.q_gain is not None else (
        1.0 if args.family == "gemma3" else 2.5)
    for i in range(args.layers):
        p = "layers.%d." % i
        layer = [
            (p + "input_layernorm.weight", norm(H)),
            (p + "self_attn.q_proj.weight", q_gain * proj(nq * D, H)),
            (p + "self_attn.k_proj.weight", proj(nkv * D, H)),
            (p + "self_attn.v_proj.weight", proj(nkv * D, H)),
            (p + "self_attn.o_proj.weight", proj(H, nq * D)),
        ]
        if args.family == "gemma3":
            layer += [
                (p + "self_attn.q_norm.weight", norm(D, 0.5, 0.3)),
                (p + "self_attn.k_norm.weight", norm(D, 0.5, 0.3)),
            ]
        layer.append((p + "post_attention_layernorm.weight", norm(H)))
        if args.family != "gemma1":
            layer += [
                (p + "pre_feedforward_layernorm.weight", norm(H)),
                (p + "post_feedforward_layernorm.weight", norm(H)),
            ]
        layer += [
            (p + "mlp.gate_proj.weight", proj(F, H)),
            (p + "mlp.up_proj.weight", proj(F, H)),
            (p + "mlp.down_proj.weight", proj(H, F)),
        ]
        out += layer
    out.append(("norm.weight", norm(H)))
    return [(n, a.astype(np.float32)) for n, a in out]


def gemma1_config(args, rows):
    """The keys of google/gemma-2b's config.json (GemmaForCausalLM)."""
    return {
        "architectures": ["GemmaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 2,
        "eos_token_id": 1,
        "head_dim": args.head_dim,
        "hidden_act": "gelu",
        "hidden_size": args.hidden,
        "initializer_range": 0.02,
        "intermediate_size": args.ff,
        "max_position_embeddings": args.max_pos,
        "model_type": "gemma",
        "num_attention_heads": args.heads,
        "num_hidden_layers": args.layers,
        "num_key_value_heads": args.kv_heads,
        "pad_token_id": 0,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "torch_dtype": "bfloat16" if args.dtype == "bf16" else "float32",
        "transformers_version": "4.38.0.dev0",
        "use_cache": True,
        "vocab_size": rows,
    }


def gemma2_config(args, rows):
    """The keys of google/gemma-2-2b's config.json (Gemma2ForCausalLM)."""
    cfg = {
        "architectures": ["Gemma2ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "attn_logit_softcapping": args.attn_softcap,
        "bos_token_id": 2,
        "cache_implementation": "hybrid",
        "eos_token_id": 1,
        "final_logit_softcapping": args.final_softcap,
        "head_dim": args.head_dim,
        "hidden_act": "gelu_pytorch_tanh",
        "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": args.hidden,
        "initializer_range": 0.02,
        "intermediate_size": args.ff,
        "max_position_embeddings": args.max_pos,
        "model_type": "gemma2",
        "num_attention_heads": args.heads,
        "num_hidden_layers": args.layers,
        "num_key_value_heads": args.kv_heads,
        "pad_token_id": 0,
        "query_pre_attn_scalar": args.query_pre_attn_scalar or args.head_dim,
        "rms_norm_eps": 1e-06,
        "rope_theta": 10000.0,
        "sliding_window": args.window,
        "torch_dtype": "bfloat16" if args.dtype == "bf16" else "float32",
        "transformers_version": "4.42.4",
        "use_cache": True,
        "vocab_size": rows,
    }
    if args.layer_types:
        cfg["layer_types"] = ["sliding_attention" if i % 2 == 0 else "full_attention"
                              for i in range(args.layers)]
    return cfg


def text_config(args, rows, eot_id):
    if args.family == "gemma1":
        return gemma1_config(args, rows)
    if args.family == "gemma2":
        return gemma2_config(args, rows)
    cfg = {
        "architectures": ["Gemma3ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "attn_logit_softcapping": None,
        "bos_token_id": 2,
        "cache_implementation": "hybrid",
        "eos_token_id": [1, eot_id],
        "final_logit_softcapping": None,
        "head_dim": args.head_dim,
        "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": args.hidden,
        "initializer_range": 0.02,
        "intermediate_size": args.ff,
        "max_position_embeddings": args.max_pos,
        "model_type": "gemma3_text",
        "num_attention_heads": args.heads,
        "num_hidden_layers": args.layers,
        "num_key_value_heads": args.kv_heads,
        "pad_token_id": 0,
        "query_pre_attn_scalar": args.query_pre_attn_scalar or args.head_dim,
        "rms_norm_eps": 1e-06,
        "rope_local_base_freq": 10000,
        "rope_scaling": None,
        "rope_theta": 1000000,
        "sliding_window": args.window,
        "sliding_window_pattern": 6,
        "torch_dtype": "bfloat16" if args.dtype == "bf16" else "float32",
        "transformers_version": "4.50.0",
        "use_cache": True,
        "vocab_size": rows,
    }
    if args.rope_scaling is not None:
        cfg["rope_scaling"] = {"factor": float(args.rope_scaling), "rope_type": "linear"}
    if args.layer_types:
        cfg["layer_types"] = [
            "full_attention" if (i + 1) % 6 == 0 else "sliding_attention"
            for i in range(args.layers)
        ]
    return cfg


def full_config(args, rows, eot_id):
    text = text_config(args, rows, eot_id)
    if args.form == "flat":
        return text
    del text["architectures"]
    return {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "boi_token_index": 255999,
        "eoi_token_index": 256000,
        "bos_token_id": 2,
        "eos_token_id": [1, eot_id],
        "pad_token_id": 0,
        "image_token_index": 262144,
        "initializer_range": 0.02,
        "mm_tokens_per_image": 256,
        "model_type": "gemma3",
        "text_config": text,
        "torch_dtype": text["torch_dtype"],
        "transformers_version": "4.50.0",
        "vision_config": {
            "hidden_size": 32,
            "image_size": 56,
            "intermediate_size": 64,
            "model_type": "siglip_vision_model",
            "num_attention_heads": 2,
            "num_hidden_layers": 1,
            "patch_size": 14,
            "vision_use_head": False,
        },
    }


def vision_tensors(rng, hidden):
    """A few tiny tensors standing in for the SigLIP tower of a multimodal checkpoint,
    so that importers are exercised on files that hold more than the text model."""
    f = np.float32
    return [
        ("multi_modal_projector.mm_input_projection_weight",
         rng.normal(0, 0.1, (32, hidden)).astype(f)),
        ("multi_modal_projector.mm_soft_emb_norm.weight", rng.normal(0, 0.1, (32,)).astype(f)),
        ("vision_tower.vision_model.post_layernorm.weight", rng.normal(0, 0.1, (32,)).astype(f)),
        ("vision_tower.vision_model.post_layernorm.bias", rng.normal(0, 0.1, (32,)).astype(f)),
    ]


PREFIX = {"flat": "model.", "nested": "language_model.model.", "nested-new": "model.language_model."}


def split_shards(tensors, n, dtype):
    """Splits the tensor list, in order, into n non-empty groups of similar byte size."""
    if n > len(tensors):
        fail("--shards %d is more than the %d tensors" % (n, len(tensors)))
    elem = 2 if dtype == "bf16" else 4
    sizes = [a.size * elem for _, a in tensors]
    total = sum(sizes)
    groups, cur, acc = [], [], 0
    for i, (t, s) in enumerate(zip(tensors, sizes)):
        cur.append(t)
        acc += s
        left_tensors = len(tensors) - i - 1
        left_groups = n - len(groups) - 1
        if left_groups > 0 and (acc >= total * (len(groups) + 1) / n or
                                left_tensors == left_groups):
            groups.append(cur)
            cur = []
    groups.append(cur)
    assert len(groups) == n and all(groups)
    return groups


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory (created)")
    ap.add_argument("--family", choices=["gemma1", "gemma2", "gemma3"], default="gemma3")
    ap.add_argument("--form", choices=["flat", "nested", "nested-new"], default="flat")
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--layers", type=int, default=7)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=16)
    ap.add_argument("--ff", type=int, default=128)
    ap.add_argument("--window", type=int, default=8)
    ap.add_argument("--max-pos", type=int, default=2048)
    ap.add_argument("--vocab", type=int, default=512,
                    help="sentencepiece vocab size asked for (a soft limit)")
    ap.add_argument("--special-layout", choices=sorted(SPECIAL_LAYOUTS), default="compact",
                    help="place the turn markers at the ids of a released vocabulary "
                         "(gemma1: 106/107, also Gemma 2; gemma3: 105/106)")
    ap.add_argument("--pad-rows", type=int, default=0,
                    help="extra embedding rows past the tokenizer's pieces")
    ap.add_argument("--layer-types", action="store_true",
                    help='write "layer_types" explicitly')
    ap.add_argument("--rope-scaling", type=float, default=None,
                    help="linear RoPE scaling factor for the global layers")
    ap.add_argument("--embed-std", type=float, default=None,
                    help="embedding std (default 1/sqrt(hidden))")
    ap.add_argument("--no-vision-tensors", action="store_true",
                    help="nested forms: leave out the stand-in vision tensors")
    ap.add_argument("--q-gain", type=float, default=None,
                    help="q_proj spread factor (default 1 for gemma3, 2.5 for gemma1/2)")
    ap.add_argument("--attn-softcap", type=float, default=50.0,
                    help="gemma2: attn_logit_softcapping")
    ap.add_argument("--final-softcap", type=float, default=30.0,
                    help="gemma2: final_logit_softcapping")
    ap.add_argument("--query-pre-attn-scalar", type=int, default=None,
                    help="gemma2/3: query_pre_attn_scalar (default head_dim)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer", default=None,
                    help="copy this tokenizer.model instead of training one")
    args = ap.parse_args()

    for name in ("shards", "layers", "hidden", "heads", "kv_heads", "head_dim", "ff",
                 "window", "max_pos", "vocab"):
        if getattr(args, name) < 1:
            fail("--%s must be >= 1, got %d" % (name.replace("_", "-"), getattr(args, name)))
    if args.pad_rows < 0:
        fail("--pad-rows must be >= 0, got %d" % args.pad_rows)
    if args.heads % args.kv_heads:
        fail("--heads (%d) must be a multiple of --kv-heads (%d)" % (args.heads, args.kv_heads))
    if args.head_dim % 2:
        fail("--head-dim must be even for RoPE, got %d" % args.head_dim)
    if args.family != "gemma3" and args.form != "flat":
        fail("--family %s has only the flat form, got --form %s" % (args.family, args.form))
    if args.family != "gemma3" and args.rope_scaling is not None:
        fail("--rope-scaling is a Gemma 3 option, not one of --family %s" % args.family)

    os.makedirs(args.out, exist_ok=True)
    tok_path = os.path.join(args.out, "tokenizer.model")
    if args.tokenizer:
        if not os.path.isfile(args.tokenizer):
            fail("--tokenizer %s: no such file" % args.tokenizer)
        if os.path.abspath(args.tokenizer) != os.path.abspath(tok_path):
            shutil.copyfile(args.tokenizer, tok_path)
    else:
        train_tokenizer(args.vocab, tok_path, args.special_layout)
    try:
        pieces = read_pieces(tok_path)
    except ValueError as e:
        fail("%s: not a sentencepiece model (%s)" % (tok_path, e))
    if "<end_of_turn>" not in pieces:
        fail("%s: has no <end_of_turn> piece" % tok_path)
    eot_id = pieces.index("<end_of_turn>")
    rows = len(pieces) + args.pad_rows

    rng = np.random.default_rng(args.seed)
    weights = make_weights(args, rows, rng)
    prefix = PREFIX[args.form]
    tensors = [(prefix + n, a) for n, a in weights]
    if args.form != "flat" and not args.no_vision_tensors:
        tensors += vision_tensors(rng, args.hidden)

    # Remove files a previous run with another shard count may have left.
    for f in os.listdir(args.out):
        if f.startswith("model") and (f.endswith(".safetensors") or f.endswith(".index.json")):
            os.remove(os.path.join(args.out, f))

    if args.shards == 1:
        write_safetensors(os.path.join(args.out, "model.safetensors"), tensors, args.dtype)
    else:
        weight_map, total = {}, 0
        groups = split_shards(tensors, args.shards, args.dtype)
        for i, group in enumerate(groups):
            fname = "model-%05d-of-%05d.safetensors" % (i + 1, args.shards)
            total += write_safetensors(os.path.join(args.out, fname), group, args.dtype)
            for name, _ in group:
                weight_map[name] = fname
        with open(os.path.join(args.out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f,
                      indent=2)
            f.write("\n")

    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(full_config(args, rows, eot_id), f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 2, "eos_token_id": [1, eot_id], "pad_token_id": 0,
                   "do_sample": True, "top_k": 64, "top_p": 0.95}, f, indent=2)
        f.write("\n")
    sys.stdout.write("wrote %s: %s, %s, %s, %d layers, %d rows (%d pieces + %d padding)\n" %
                     (args.out, args.family, args.form, args.dtype, args.layers, rows,
                      len(pieces), args.pad_rows))


if __name__ == "__main__":
    main()
