#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora under test/fuzz/corpus/<target>/.

The seeds are small, valid inputs of each format (libFuzzer mutates from them
and keeps what reaches new code): the runtime tests' tiny module, the text
tests' Gemma-like sentencepiece models, config.json files of every Gemma
generation and layout, small safetensors files with Gemma tensor names, and a
few chat conversations. Run it again when a format changes:

  test/fuzz/make_corpus.py --writer BUILD/bin/gemmac_write_test_module \\
      --spm BUILD/test/unit/text/text_test.model \\
      --spm BUILD/test/unit/text/text_test_dummy_prefix.model
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape)]; data is zeros of the right size."""
    size = {"F32": 4, "BF16": 2, "F16": 2, "I64": 8}
    header, offset = {}, 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape in tensors:
        n = size[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + bytes(offset)


def gemma_tensors(dtype, hidden=8, heads=2, kv=1, head_dim=4, ff=16,
                  vocab=16, layers=1):
    t = [("model.embed_tokens.weight", dtype, [vocab, hidden]),
         ("model.norm.weight", dtype, [hidden])]
    for i in range(layers):
        p = "model.layers.%d." % i
        t += [(p + "input_layernorm.weight", dtype, [hidden]),
              (p + "post_attention_layernorm.weight", dtype, [hidden]),
              (p + "pre_feedforward_layernorm.weight", dtype, [hidden]),
              (p + "post_feedforward_layernorm.weight", dtype, [hidden]),
              (p + "self_attn.q_proj.weight", dtype, [heads * head_dim, hidden]),
              (p + "self_attn.k_proj.weight", dtype, [kv * head_dim, hidden]),
              (p + "self_attn.v_proj.weight", dtype, [kv * head_dim, hidden]),
              (p + "self_attn.o_proj.weight", dtype, [hidden, heads * head_dim]),
              (p + "self_attn.q_norm.weight", dtype, [head_dim]),
              (p + "self_attn.k_norm.weight", dtype, [head_dim]),
              (p + "mlp.gate_proj.weight", dtype, [ff, hidden]),
              (p + "mlp.up_proj.weight", dtype, [ff, hidden]),
              (p + "mlp.down_proj.weight", dtype, [hidden, ff])]
    return t


def gguf(metadata, tensors, version=3):
    """metadata: [(key, type, value)] with GGUF value types; tensors:
    [(name, ggml type, ggml dims, data bytes)]. Little-endian, alignment 32."""
    fmt = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f",
           7: "<?", 10: "<Q", 11: "<q", 12: "<d"}

    def string(s):
        b = s.encode()
        return struct.pack("<Q", len(b)) + b

    def value(t, v):
        if t == 8:
            return string(v)
        if t == 9:
            et, items = v
            return (struct.pack("<IQ", et, len(items)) +
                    b"".join(value(et, x) for x in items))
        return struct.pack(fmt[t], v)

    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(metadata))
    for key, t, v in metadata:
        out += string(key) + struct.pack("<I", t) + value(t, v)
    offset, blobs = 0, b""
    for name, gtype, dims, blob in tensors:
        out += string(name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", gtype, offset)
        pad = -len(blob) % 32
        blobs += blob + bytes(pad)
        offset += len(blob) + pad
    out += bytes(-len(out) % 32)
    return out + blobs


def gguf_gemma3():
    pieces = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>",
              "<end_of_turn>", "\u2581", "a", "b", "\u2581a", "<0x41>",
              "<0x42>", "c", "d", "e", "f"]
    meta = [("general.architecture", 8, "gemma3"),
            ("general.alignment", 4, 32),
            ("gemma3.block_count", 4, 1),
            ("gemma3.context_length", 4, 64),
            ("gemma3.embedding_length", 4, 8),
            ("gemma3.feed_forward_length", 4, 32),
            ("gemma3.attention.head_count", 4, 2),
            ("gemma3.attention.head_count_kv", 4, 1),
            ("gemma3.attention.key_length", 4, 4),
            ("gemma3.attention.value_length", 4, 4),
            ("gemma3.attention.sliding_window", 4, 4),
            ("gemma3.attention.layer_norm_rms_epsilon", 6, 1e-6),
            ("gemma3.rope.freq_base", 6, 1000000.0),
            ("tokenizer.ggml.model", 8, "llama"),
            ("tokenizer.ggml.tokens", 9, (8, pieces)),
            ("tokenizer.ggml.scores", 9, (6, [0.0] * 6 + [-float(i)
                                                      for i in range(10)])),
            ("tokenizer.ggml.token_type", 9, (5, [3, 3, 3, 2, 4, 4] +
                                              [1] * 4 + [6, 6] + [1] * 4)),
            ("tokenizer.ggml.bos_token_id", 4, 2),
            ("tokenizer.ggml.eos_token_id", 4, 1),
            ("tokenizer.ggml.unknown_token_id", 4, 3),
            ("tokenizer.ggml.padding_token_id", 4, 0),
            ("tokenizer.ggml.add_space_prefix", 7, False)]
    f32 = lambda n: bytes(4 * n)
    q4_0 = lambda rows, cols: bytes(rows * cols // 32 * 18)
    tensors = [("token_embd.weight", 0, [8, 16], f32(128)),
               ("output_norm.weight", 0, [8], f32(8)),
               ("blk.0.attn_norm.weight", 0, [8], f32(8)),
               ("blk.0.ffn_up.weight", 2, [32, 32], q4_0(32, 32)),
               ("blk.0.ffn_down.weight", 8, [32, 8], bytes(8 * 34)),
               ("blk.0.attn_q.weight", 1, [8, 8], bytes(2 * 64))]
    return gguf(meta, tensors)


def configs():
    base = {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text",
            "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
            "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4,
            "vocab_size": 16, "max_position_embeddings": 64,
            "sliding_window": 4, "sliding_window_pattern": 2,
            "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0,
            "query_pre_attn_scalar": 4, "rms_norm_eps": 1e-6,
            "attn_logit_softcapping": None, "final_logit_softcapping": None,
            "hidden_activation": "gelu_pytorch_tanh", "rope_scaling": None,
            "bos_token_id": 2, "eos_token_id": [1, 106], "pad_token_id": 0,
            "torch_dtype": "float32"}
    out = {"flat_gemma3.json": base}
    typed = dict(base, layer_types=["sliding_attention", "full_attention"],
                 rope_scaling={"rope_type": "linear", "factor": 8.0})
    out["flat_gemma3_layer_types.json"] = typed
    nested = {"architectures": ["Gemma3ForConditionalGeneration"],
              "model_type": "gemma3",
              "text_config": dict(base, model_type="gemma3_text"),
              "vision_config": {"model_type": "siglip_vision_model"},
              "eos_token_id": [1, 106]}
    out["nested_gemma3.json"] = nested
    g2 = dict(base, architectures=["Gemma2ForCausalLM"], model_type="gemma2",
              attn_logit_softcapping=50.0, final_logit_softcapping=30.0)
    for k in ("sliding_window_pattern", "rope_local_base_freq"):
        g2.pop(k)
    out["gemma2.json"] = g2
    g1 = {"architectures": ["GemmaForCausalLM"], "model_type": "gemma",
          "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
          "num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 4,
          "vocab_size": 16, "hidden_act": "gelu", "bos_token_id": 2,
          "eos_token_id": 1, "pad_token_id": 0}
    out["gemma1.json"] = g1
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writer", required=True,
                    help="gemmac_write_test_module from a build")
    ap.add_argument("--spm", action="append", required=True,
                    help="a sentencepiece model (repeatable)")
    ap.add_argument("--out", default=os.path.join(HERE, "corpus"))
    args = ap.parse_args()
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)

    for name, variant in (("tiny.gmc", []), ("tiny_fused_kv_i8.gmc",
                                             ["--fused", "--kv-i8"])):
        path = os.path.join(args.out, "module", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        r = subprocess.run([args.writer, path] + variant)
        if r.returncode != 0:
            sys.exit("make_corpus: %s %s failed" % (args.writer, variant))

    os.makedirs(os.path.join(args.out, "tokenizer"), exist_ok=True)
    for spm in args.spm:
        shutil.copy(spm, os.path.join(args.out, "tokenizer",
                                      os.path.basename(spm)))

    for name, cfg in configs().items():
        write(os.path.join(args.out, "hf_config", name),
              json.dumps(cfg, indent=2).encode())
    for name in ("gemma-3-1b-it.config.json", "gemma-3-4b-it.config.json"):
        shutil.copy(os.path.join(ROOT, "test/lit/import/Inputs", name),
                    os.path.join(args.out, "hf_config", name))

    st = os.path.join(args.out, "safetensors")
    write(os.path.join(st, "f32.safetensors"),
          safetensors(gemma_tensors("F32"), {"format": "pt"}))
    write(os.path.join(st, "bf16_2layers.safetensors"),
          safetensors(gemma_tensors("BF16", layers=2)))
    write(os.path.join(st, "f16_vision.safetensors"),
          safetensors(gemma_tensors("F16")[:3] +
                      [("vision_tower.position_ids", "I64", [1, 4])]))

    gg = os.path.join(args.out, "gguf")
    write(os.path.join(gg, "gemma3_tiny.gguf"), gguf_gemma3())
    write(os.path.join(gg, "empty_v2.gguf"), gguf([("general.architecture", 8,
                                                    "gemma")], [], version=2))

    chats = {
        "user.txt": b"\x01user\x1fHello there",
        "system_folds.txt": b"\x03system\x1fBe brief.\x1euser\x1fWhy is the "
                            b"sky blue?",
        "multi_turn.txt": b"\x01user\x1f Hi \x1emodel\x1fHello! 123\x1euser"
                          b"\x1f\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80",
        "assistant_no_prompt.txt": b"\x02user\x1fa\x1eassistant\x1fb",
    }
    for name, data in chats.items():
        write(os.path.join(args.out, "chat_format", name), data)
    for d in sorted(os.listdir(args.out)):
        files = os.listdir(os.path.join(args.out, d))
        size = sum(os.path.getsize(os.path.join(args.out, d, f)) for f in files)
        print("%-12s %d seeds, %d bytes" % (d, len(files), size))


if __name__ == "__main__":
    main()
