#!/usr/bin/python3
"""GGUF end to end: the GGUF path and the HF path of the same model must tokenize and
generate identically.

    run_gguf.py --case NAME --bin-dir BUILD/bin --work-dir DIR

Each case makes a tiny random checkpoint (tools/make-demo-model), converts it to GGUF
with gguf_writer.py (llama.cpp's conventions: norms hold 1 + w, dims reversed,
tokenizer.ggml.* from tokenizer.model), compiles both with gemma-compile, runs both
with gemma-run, and compares:
  * the prompt ids of several texts (digits, runs of spaces, newlines, accents, CJK
    and an emoji that only byte fallback can spell, a literal turn marker): identical;
  * the same text as a user turn (the chat format's markers come from the special
    ids the importer finds): identical prompt ids and first tokens;
  * 24 greedy tokens: identical;
  * the logits of every prompt position. Float cases compare the GGUF file with the
    original checkpoint: within 1e-5 of the logit range (the stored norm 1 + w is
    rounded to f32 once; measured 0). Quantized cases compare it with the checkpoint
    of the values the GGUF decodes to (gguf_writer.py --dequant-checkpoint, decoded in
    numpy independently of the C++ code) compiled with the scheme the GGUF default
    picks: bit-identical, since Q4_0 is copied into Q4G32 and Q8_0/K-quants are decoded
    exactly as ggml does and then quantized by the same quantizer as the HF path.
The GGUF compile's stderr must show the default policy and, where the file's format has
no identical module format, one warning per tensor with the measured error.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_ROOT = os.path.dirname(os.path.dirname(HERE))
MAKE_CHECKPOINT = os.path.join(SRC_ROOT, "tools", "make-demo-model", "make_checkpoint.py")
WRITER = os.path.join(HERE, "gguf_writer.py")
sys.dont_write_bytecode = True

PROMPT = ("The lighthouse keeper climbed 117 steps every morning, wiped the glass and "
          "counted the ships: a ferry, two yachts and a cargo ship in the rain.")
TEXTS = [
    "Numbers 2024 and 3.14159,   three spaces\nand a newline.",
    "Caf\u00e9 cr\u00e8me, \u65e5\u672c\u8a9e, and \U0001F600 need byte fallback.",
    "<start_of_turn>user\nhello<end_of_turn>",
]
STEPS = 24
SMALL = ["--form", "flat", "--dtype", "f32", "--layers", "7", "--window", "8"]
# K-quants need rows of whole 256-value blocks.
WIDE = SMALL + ["--hidden", "256", "--ff", "256", "--head-dim", "64"]

CASES = {
    "gemma3_f32": {"ckpt": SMALL + ["--seed", "4"], "type": "f32",
                   "compile": ["--dtype", "f32"], "exact": False},
    "gemma3_nested_bf16": {"ckpt": ["--form", "nested", "--dtype", "bf16", "--pad-rows",
                                    "8", "--layers", "7", "--hidden", "48", "--seed", "1"],
                           "type": "bf16", "compile": ["--dtype", "bf16"], "exact": False},
    "gemma2_f32": {"ckpt": SMALL + ["--family", "gemma2", "--seed", "4"], "type": "f32",
                   "compile": ["--dtype", "f32"], "exact": False},
    "gemma1_f32": {"ckpt": SMALL + ["--family", "gemma1", "--seed", "4"], "type": "f32",
                   "compile": ["--dtype", "f32"], "exact": False},
    "gemma3_q4_0": {"ckpt": SMALL + ["--seed", "6"], "type": "q4_0", "exact": True,
                    "hf_compile": ["--quant", "q4"], "policy": "--quant q4",
                    "warn": []},
    "gemma3_q8_0": {"ckpt": SMALL + ["--seed", "7"], "type": "q8_0", "exact": True,
                    "hf_compile": ["--quant", "q8"], "policy": "--quant q8",
                    "warn": ["Q8_0"]},
    "gemma3_q4_0_mixed": {"ckpt": WIDE + ["--seed", "8"], "type": "q4_0_mixed",
                          "exact": True, "hf_compile": ["--quant", "q4", "--keep", "embed=q8"],
                          "policy": "--quant q4 --keep 'embed=q8'", "warn": ["Q6_K"]},
    "gemma3_kquants": {"ckpt": WIDE + ["--seed", "5"], "type": "kquants", "exact": True,
                       "hf_compile": ["--quant", "q8"], "policy": "--quant q8",
                       "warn": ["Q4_K", "Q5_K", "Q6_K"]},
}


class Failure(Exception):
    pass


def run(cmd, what):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    if proc.returncode != 0:
        raise Failure("%s failed (exit %d): %s\n%s" % (
            what, proc.returncode, " ".join(cmd),
            proc.stderr.decode("utf-8", "replace")[-3000:]))
    return proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def generate(run_tool, module, text, steps, dump=None, raw=True):
    cmd = [run_tool, module, "-p", text, "-n", str(steps), "--temp", "0",
           "--json", "--threads", "2"] + (["--raw"] if raw else [])
    if dump:
        cmd += ["--dump-logits", dump]
    out, _ = run(cmd, "gemma-run " + os.path.basename(module))
    result = json.loads(out)
    return [int(t) for t in result["prompt_ids"]], [int(t) for t in result["generated_ids"]]


def run_case(name, bin_dir, work):
    case = CASES[name]
    os.makedirs(work, exist_ok=True)
    compile_tool = os.path.join(bin_dir, "gemma-compile")
    run_tool = os.path.join(bin_dir, "gemma-run")
    ckpt = os.path.join(work, "ckpt")
    gguf = os.path.join(work, "model.gguf")
    run([sys.executable, MAKE_CHECKPOINT, "--out", ckpt] + case["ckpt"], "make_checkpoint.py")
    writer = [sys.executable, WRITER, ckpt, gguf, "--type", case["type"]]
    hf_dir, hf_flags = ckpt, case.get("compile", [])
    if case["exact"]:
        hf_dir = os.path.join(work, "dequant")
        writer += ["--dequant-checkpoint", hf_dir]
        hf_flags = case["hf_compile"]
    run(writer, "gguf_writer.py")

    g_mod, h_mod = os.path.join(work, "gguf.gmc"), os.path.join(work, "hf.gmc")
    for path in (g_mod, h_mod):
        if os.path.exists(path):
            os.remove(path)
    _, err = run([compile_tool, gguf, "-o", g_mod] + case.get("compile", []),
                 "gemma-compile (GGUF)")
    run([compile_tool, hf_dir, "-o", h_mod, "--quiet"] + hf_flags, "gemma-compile (HF)")
    if "policy" in case and case["policy"] not in err:
        raise Failure("gemma-compile on the GGUF file should say it keeps the file's "
                      "quantization (%s); stderr:\n%s" % (case["policy"], err[-2000:]))
    warnings = [l for l in err.splitlines() if "warning: weight" in l]
    for fmt in case.get("warn", []):
        hits = [l for l in warnings if ("is %s in the GGUF file" % fmt) in l
                and "max abs error" in l]
        if not hits:
            raise Failure("expected a requantization warning for a %s tensor; stderr:\n%s"
                          % (fmt, err[-2000:]))
    if not case.get("warn") and warnings:
        raise Failure("unexpected requantization warnings:\n%s" % "\n".join(warnings[:5]))

    for text in TEXTS:
        g_ids, _ = generate(run_tool, g_mod, text, 1)
        h_ids, _ = generate(run_tool, h_mod, text, 1)
        if g_ids != h_ids:
            raise Failure("the GGUF and HF modules tokenize %r differently:\nGGUF: %s\nHF:   %s"
                          % (text, g_ids, h_ids))
    # The chat form: turn markers and stop tokens come from the special ids.
    g_ids, g_gen = generate(run_tool, g_mod, TEXTS[0], 4, raw=False)
    h_ids, h_gen = generate(run_tool, h_mod, TEXTS[0], 4, raw=False)
    if (g_ids, g_gen) != (h_ids, h_gen):
        raise Failure("the chat-formatted prompt differs:\nGGUF: %s -> %s\nHF:   %s -> %s"
                      % (g_ids, g_gen, h_ids, h_gen))
    g_dump, h_dump = os.path.join(work, "gguf.npy"), os.path.join(work, "hf.npy")
    g_ids, g_gen = generate(run_tool, g_mod, PROMPT, STEPS, g_dump)
    h_ids, h_gen = generate(run_tool, h_mod, PROMPT, STEPS, h_dump)
    if g_ids != h_ids:
        raise Failure("prompt ids differ:\nGGUF: %s\nHF:   %s" % (g_ids, h_ids))
    if g_gen != h_gen:
        raise Failure("greedy tokens differ:\nGGUF: %s\nHF:   %s" % (g_gen, h_gen))
    got, ref = np.load(g_dump), np.load(h_dump)
    if got.shape != ref.shape:
        raise Failure("logits shapes differ: %s vs %s" % (got.shape, ref.shape))
    worst = float(np.abs(got.astype(np.float64) - ref).max())
    rng = float(ref.max() - ref.min())
    if case["exact"]:
        if not np.array_equal(got, ref):
            raise Failure("logits differ by up to %.3g; expected bit-identical" % worst)
    elif worst > 1e-5 * rng:
        raise Failure("logits differ by %.3g, more than 1e-5 of the range %.3g" % (worst, rng))
    print("gguf %s: OK (%d texts tokenize alike, %d prompt tokens, %d greedy tokens "
          "identical, max logit difference %.3g of range %.3g%s)" % (
              name, len(TEXTS), len(g_ids), len(g_gen), worst, rng,
              "; %d requantization warnings" % len(warnings) if warnings else ""))


def reader_fuzz(bin_dir, work):
    """Truncations all over the header and single-byte corruptions of it: gemma-compile must answer each with success or a diagnostic and exit
    status 1, never a crash, a hang or an allocation beyond the file."""
    os.makedirs(work, exist_ok=True)
    ckpt, gguf = os.path.join(work, "ckpt"), os.path.join(work, "model.gguf")
    run([sys.executable, MAKE_CHECKPOINT, "--out", ckpt, "--layers", "2"],
        "make_checkpoint.py")
    run([sys.executable, WRITER, ckpt, gguf], "gguf_writer.py")
    data = open(gguf, "rb").read()
    # The header ends where the first tensor's data starts: after the last name.
    header_end = data.rindex(b"output_norm.weight") + 64
    rng = np.random.default_rng(0)
    # Each run costs a process start (~0.2 s), so: every field of the fixed header,
    # 45 cuts spread over the rest, 35 corrupted bytes.
    cuts = sorted(set(range(0, 48, 3)) | set(range(48, header_end, header_end // 45)))
    cases = [("truncated at %d" % n, data[:n]) for n in cuts]
    for _ in range(35):
        pos = int(rng.integers(0, header_end))
        damaged = bytearray(data)
        damaged[pos] = int(rng.integers(0, 256)) if rng.random() < 0.5 else 0xFF
        cases.append(("byte %d set to %d" % (pos, damaged[pos]), bytes(damaged)))
    path = os.path.join(work, "damaged.gguf")
    compile_tool = os.path.join(bin_dir, "gemma-compile")
    refused = 0
    for what, blob in cases:
        with open(path, "wb") as f:
            f.write(blob)
        try:
            proc = subprocess.run([compile_tool, path, "--compile-to=import", "-o", os.devnull],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=20)
        except subprocess.TimeoutExpired:
            raise Failure("%s: gemma-compile did not finish in 20 s" % what)
        err = proc.stderr.decode("utf-8", "replace")
        if proc.returncode not in (0, 1) or (proc.returncode == 1 and "error:" not in err):
            raise Failure("%s: gemma-compile exited with %d (expected 0, or 1 with a "
                          "diagnostic); stderr:\n%s" % (what, proc.returncode, err[-2000:]))
        refused += proc.returncode == 1
    print("gguf reader_fuzz: OK (%d damaged headers, %d refused with a diagnostic, none "
          "crashed)" % (len(cases), refused))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", required=True, choices=sorted(CASES) + ["reader_fuzz"])
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--work-dir", required=True)
    args = ap.parse_args()
    try:
        if args.case == "reader_fuzz":
            reader_fuzz(args.bin_dir, args.work_dir)
        else:
            run_case(args.case, args.bin_dir, args.work_dir)
    except Failure as e:
        sys.stderr.write("gguf %s: FAILED\n%s\n" % (args.case, e))
        sys.exit(1)


if __name__ == "__main__":
    main()
