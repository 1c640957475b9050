#!/usr/bin/python3
"""End-to-end quality test: how far do bf16 and quantized modules drift from f32?

    run_quality.py --bin-dir BUILD/bin --work-dir DIR [--schemes bf16,q8,...]
                   [--compiler PATH] [--measure]

Makes one tiny random Gemma 3 checkpoint, compiles it as f32 (REF) and once per
scheme in SCHEMES, and runs gemma-kld (tools/gemma-kld) of each module against REF
over test/e2e/quality_text.txt. What is checked:
  1. REF against itself: KL divergence exactly 0, top-1 agreement 100 %, equal
     perplexities (the softmaxes are computed in double from identical logits).
  2. gemma-kld's arithmetic: on one window of the text, its JSON numbers equal a
     NumPy computation from the two modules' logits dumped by gemma-run.
  3. Per scheme, the mean KL divergence, its 99th percentile and the top-1 agreement
     lie within BOUNDS, which were set from measured values with a stated margin. A
     lower bound on the mean KL divergence catches a scheme that silently did
     nothing (a module that stayed f32 would have KL 0).
  4. Per scheme, the module against its "twin": an f32 module compiled from the
     checkpoint whose weights were rounded here, in NumPy, exactly as
     docs/quantization.md says the scheme stores them (see ROUNDING). The two compute with the
     same weight values, so their KL divergence is near 0 (TWIN_MAX_KLD); a
     quantizer whose bytes disagree with the documented layout fails this even when
     its error is small enough for the bounds of 3.
  5. gemma-kld refuses modules with different vocabularies, and modules whose
     tokenizers give the text different ids.
  6. q4 packed for the CPU (gemma-compile's default --target cpu: Q4G32R8, the same
     values as Q4G32 in 8-row runs) against q4 compiled with --target none
     (unpacked Q4G32): the default module must hold packed weights and the other
     none, their KL divergence must be ~0 (PACKED_MAX_KLD) with 100 % top-1
     agreement, and greedy generation must give the same tokens.

--measure prints the numbers and checks nothing but 1, 2 and 5: use it to re-derive
BOUNDS after a change to the model or the text.

Exit status 0 on success; on failure a readable report on stderr and status 1.
"""

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_ROOT = os.path.dirname(os.path.dirname(HERE))
MAKE_CHECKPOINT = os.path.join(SRC_ROOT, "tools", "make-demo-model", "make_checkpoint.py")
TEXT = os.path.join(HERE, "quality_text.txt")

# The model: hidden, heads * head_dim and ff are multiples of 128, so every matrix
# (cols = hidden, 128 or ff = 256) can be stored in each scheme, q4z's 128-groups
# included, and none is silently kept in float. 7 layers: 5 sliding, 1 global, 1
# sliding, as in the other e2e cases.
CKPT = ["--form", "flat", "--dtype", "f32", "--layers", "7", "--hidden", "128",
        "--heads", "4", "--kv-heads", "2", "--head-dim", "32", "--ff", "256",
        "--window", "16", "--seed", "5"]
# Norm weights rescaled after make_checkpoint.py writes them (see shape_checkpoint).
# Random weights give nearly flat predictions: with make_checkpoint.py's scales the
# mean entropy is 5.7 nats (ln 512 = 6.2), the mean top probability 0.04 and the
# median top-1 margin 0.33 logits. Its only knob, --embed-std, sharpens them the wrong
# way: the head is tied to the embedding, so a larger embedding makes the current
# token's own row dominate the residual stream and the model predicts "repeat the
# current token" (at --embed-std 0.13 the top-1 is the current token at 83 % of
# positions and a model with other random weights agrees on the top-1 76 % of the
# time, so top-1 agreement measures nothing). Instead:
#   * the final norm's scale (1 + w) is multiplied by FINAL_NORM_GAIN: every logit is
#     scaled, so the argmaxes and the residual stream stay as they were and only the
#     predictions get as peaked as a real model's on English text (mean entropy 2.3
#     nats, mean top probability 0.46, median top-1 margin 1.05 logits; the top-1 is
#     the current token at 46 % of positions);
#   * the QK-norm scales (1 + w) are multiplied by QK_NORM_GAIN: less peaked
#     attention makes the random network less chaotic, so that 4-bit weights perturb
#     its predictions rather than scramble them (q4 top-1 agreement 65 % instead of
#     40 %).
# A model with other random weights (seed 6, same shaping) then agrees with REF on
# the top-1 at 24 % of positions, with a mean KL divergence of 6.1 nats: the floor
# that the bounds below are far from.
FINAL_NORM_GAIN = 3.0
QK_NORM_GAIN = 0.5
CTX = 512

# The schemes compared with REF: their gemma-compile flags (ROUNDING holds the NumPy
# rounding that makes each one's twin). Run once with --measure to see each module's
# numbers next to its twin's.
SCHEMES = {
    "bf16": ["--dtype", "bf16"],
    "q8": ["--quant", "q8"],
    "q4": ["--quant", "q4"],
    "q4z": ["--quant", "q4z"],
}
ENABLED = ["bf16", "q8", "q4", "q4z"]

# Bounds per scheme: (min mean KLD, max mean KLD, max p99 KLD, min top-1 agreement %),
# from the values measured with --measure on the checkpoint above and the whole text
# (2804 tokens, 5 windows of 512, 1275 scored positions: the second half of each).
# Margins: max mean KLD about 3x the measured mean, max p99 2.5x the measured p99,
# min mean KLD a third of the measured mean (a scheme that changed no weight has KL
# 0); min top-1 leaves 3x the measured disagreement (bf16, q8) or, where that would
# go below 0, is 3/4 of the measured agreement (q4, q4z; still twice the 24 % of an
# unrelated model).
# Measured on the modules with the CPU kernels' default Q8 activations
# (docs/quantization.md, "Kernel arithmetic"); q8's numbers include that
# rounding (its weights alone, in the f32-activation mode: 2.09e-3, 96.86 %).
#            measured:  mean KLD   p99 KLD   top-1
#   bf16                1.356e-4   4.79e-4   99.29 %
#   q8                  3.097e-3   1.195e-2  96.00 %
#   q4                  0.3412     1.134     65.02 %
#   q4z                 0.4788     1.578     62.59 %
BOUNDS = {
    "bf16": (4.5e-5, 4e-4, 1.2e-3, 97.5),
    "q8": (1e-3, 9e-3, 3e-2, 88.0),
    "q4": (0.11, 1.0, 2.8, 48.0),
    "q4z": (0.16, 1.4, 4.0, 47.0),
}
# The module against its NumPy-rounded f32 twin: the same weight values; what remains
# is f32 summation order and, for bf16, the embedding scale sqrt(hidden), which the
# bf16 module stores rounded to bf16 (11.3137 -> 11.3125): measured 6.5e-8 for bf16.
# A real layout error is far above this bound (bf16 by truncation instead of rounding
# to nearest: 5.3e-4; Q8C with per-column instead of per-row scales: 6e-3), and so is
# GGUF's rule of rounding 4-bit codes against the unrounded f32 scale (1.5e-3 for q4,
# 9.8e-3 for q4z) where docs/quantization.md rounds against the stored f16 values: a
# module must match its twin, not merely come close. Measured: 1e-12 (q4), 8e-12 (q4z).
TWIN_MAX_KLD = 1e-5
# Check 4 runs with the CPU kernels' f32-activation mode (docs/quantization.md,
# "Kernel arithmetic"): quantized weights then meet the f32 activations, as
# in the twin. In the default mode they meet the activations' Q8 codes, which
# adds its own error (q8 module against its twin: 1.1e-3), covered by the
# bounds of check 3.
F32_ACTS = {"GEMMAC_CPU_F32_ACTS": "1"}
# q4 packed against unpacked: the same weights, summed in another f32 order by
# another kernel (docs/quantization.md, "Packed layouts"). Measured: 8.7e-13 mean,
# 9.3e-12 max; a kernel that read each row's scale from its neighbour in the 8-row
# run gave 5.6 (and fails check 4 first), so the bound sits between rounding and any
# layout error.
PACKED_MAX_KLD = 1e-8
# The same with the default Q8 activations: code flips at ties between two f32
# orders, which this random network amplifies. Measured 2.9e-4; a layout error
# is far above (5.6, as above).
PACKED_MAX_KLD_Q8 = 3e-3
# Tokens generated greedily from the first paragraph of the text by each module.
PACKED_GREEDY_TOKENS = 48


class Failure(Exception):
    pass


def run(cmd, what, timeout=300, expect_rc=0, env=None):
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout,
                              env=dict(os.environ, **env) if env else None)
    except FileNotFoundError:
        raise Failure("%s: %s not found" % (what, cmd[0]))
    except subprocess.TimeoutExpired:
        raise Failure("%s: timed out after %d s: %s" % (what, timeout, " ".join(cmd)))
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != expect_rc:
        raise Failure("%s: exit %d, expected %d: %s\n--- stdout ---\n%s\n--- stderr ---\n%s"
                      % (what, proc.returncode, expect_rc, " ".join(cmd), out[-3000:],
                         err[-3000:]))
    return out, err


# ---------------------------------------------------------------------------------
# The schemes' rounding in NumPy, written from docs/quantization.md. The page fixes
# the scales (d, m, scale) and the layouts but not which values the 4-bit codes are
# rounded against: GGUF's reference quantizers (whose Q4_0 and Q4_1 blocks q4 and q4z
# copy) round against the f32 d and min and then store them as f16; rounding against
# the stored f16 values (what test/unit/cpu's QuantizeMatrix does) is as valid. The
# two differ in a few codes per block: the KL divergence between their twins is
# 1.5e-3 (q4) and 9.8e-3 (q4z), far above TWIN_MAX_KLD, so each rule has its twin
# and a module must match one of them.


def f16(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


def round_bf16(w):
    """Round to nearest, ties to even, as gemma-compile --dtype bf16 stores it."""
    u = np.ascontiguousarray(w, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32)


def round_q8(w):
    """Q8C: per row, symmetric, scale = max|w_row| / 127 (f32), w = q * scale."""
    scale = (np.abs(w).max(axis=1, keepdims=True) / np.float32(127)).astype(np.float32)
    safe = np.where(scale == 0, np.float32(1), scale)
    q = np.clip(np.rint(w / safe), -127, 127)
    return (q * scale).astype(np.float32)


def _inverse(d):
    return np.where(d == 0, np.float32(0),
                    np.float32(1) / np.where(d == 0, np.float32(1), d)).astype(np.float32)


def _q4_blocks(w):
    """Q4G32 blocks and their d = m / -8, m the element of largest magnitude (the
    first one on ties, as GGUF)."""
    rows, cols = w.shape
    b = w.reshape(rows, cols // 32, 32).astype(np.float32)
    m = np.take_along_axis(b, np.abs(b).argmax(axis=2)[..., None], axis=2)
    return b, (m / np.float32(-8)).astype(np.float32)


def round_q4_stored(w):
    """Q4G32 rounded against the stored d: nibble = clamp(round(x / f16(d)) + 8)."""
    b, d = _q4_blocks(w)
    d = f16(d)
    q = np.clip(np.rint(b * _inverse(d)) + 8, 0, 15)
    return ((q - 8) * d).astype(np.float32).reshape(w.shape)


def _q4z_blocks(w):
    rows, cols = w.shape
    b = w.reshape(rows, cols // 128, 128).astype(np.float32)
    lo = b.min(axis=2, keepdims=True)
    d = ((b.max(axis=2, keepdims=True) - lo) / np.float32(15)).astype(np.float32)
    return b, d, lo


def round_q4z_stored(w):
    """Q4G128 rounded against the stored values: nibble = clamp(round((x - f16(m)) /
    f16(d)))."""
    b, d, lo = _q4z_blocks(w)
    d, lo = f16(d), f16(lo)
    q = np.clip(np.rint((b - lo) * _inverse(d)), 0, 15)
    return (q * d + lo).astype(np.float32).reshape(w.shape)


# Per scheme, the rounding rules a module may follow: (name, function). The first is
# the one --measure reports and BOUNDS were measured with.
ROUNDING = {
    "bf16": [("nearest-even", round_bf16)],
    "q8": [("nearest", round_q8)],
    "q4": [("stored-d", round_q4_stored)],
    "q4z": [("stored-d-m", round_q4z_stored)],
}


def rewrite_tensors(path, fn):
    """Rewrites the F32 tensors of one safetensors file in place: fn(name, array)
    returns the new values (same shape) or None to leave the tensor as it is."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    (hlen,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise Failure("%s: tensor %s is %s; expected F32" % (path, name, info["dtype"]))
        begin, end = info["data_offsets"]
        w = np.frombuffer(bytes(data[base + begin:base + end]), dtype="<f4")
        new = fn(name, w.reshape(info["shape"]))
        if new is not None:
            data[base + begin:base + end] = np.asarray(new, dtype="<f4").tobytes()
    with open(path, "wb") as f:
        f.write(data)


def shape_checkpoint(ckpt):
    """Rescales the final norm and the QK-norms (see FINAL_NORM_GAIN)."""
    def gain(name, w):
        g = FINAL_NORM_GAIN if name == "model.norm.weight" else \
            QK_NORM_GAIN if name.endswith(("q_norm.weight", "k_norm.weight")) else None
        # Gemma's norms scale by (1 + w): scaling that factor by g.
        return None if g is None else (np.float32(1) + w) * np.float32(g) - np.float32(1)
    rewrite_tensors(os.path.join(ckpt, "model.safetensors"), gain)


def make_twin(ckpt, out, rounding):
    """Copies the (flat, single-file, f32) checkpoint with every non-norm matrix
    passed through `rounding`. Norm weights stay f32 in every scheme."""
    if os.path.exists(out):
        shutil.rmtree(out)
    shutil.copytree(ckpt, out)

    def rounded(name, w):
        if name.endswith("norm.weight"):
            return None
        if w.ndim != 2:
            raise Failure("%s: tensor %s has shape %s; expected a matrix" %
                          (out, name, w.shape))
        return rounding(w)
    rewrite_tensors(os.path.join(out, "model.safetensors"), rounded)


# ---------------------------------------------------------------------------------


class Tools:
    def __init__(self, bin_dir, compiler):
        self.compile = compiler or os.path.join(bin_dir, "gemma-compile")
        self.run = os.path.join(bin_dir, "gemma-run")
        self.kld = os.path.join(bin_dir, "gemma-kld")
        self.dump = os.path.join(bin_dir, "gemma-dump")

    def compile_module(self, ckpt, out, flags):
        if os.path.exists(out):
            os.remove(out)
        run([self.compile, ckpt, "-o", out, "--quiet"] + flags, "gemma-compile " +
            " ".join(flags))

    def kld_json(self, ref, test, text, extra=(), env=None):
        out, _ = run([self.kld, ref, test, "--text", text, "--ctx", str(CTX), "--json",
                      "--threads", "2"] + list(extra), "gemma-kld %s %s" % (ref, test),
                     env=env)
        try:
            return json.loads(out)
        except ValueError as e:
            raise Failure("gemma-kld --json: not one JSON object (%s):\n%s" % (e, out))


def check_self(tools, ref):
    r = tools.kld_json(ref, ref, TEXT)
    print("REF vs REF: %d positions, KLD mean %g max %g, top-1 %.2f %%, ppl %.4f / %.4f" %
          (r["scored_positions"], r["kld_mean"], r["kld_max"], r["top1_agreement_pct"],
           r["ppl_ref"], r["ppl_test"]))
    if r["kld_mean"] != 0 or r["kld_max"] != 0 or r["top1_agreement_pct"] != 100 or \
            r["ppl_ref"] != r["ppl_test"]:
        raise Failure("a module against itself must give KL divergence exactly 0, top-1 "
                      "agreement 100 %% and equal perplexities; got %s" % json.dumps(r))
    if r["windows"] < 2 or r["scored_positions"] != r["windows"] * (CTX - 1 - CTX // 2):
        raise Failure("expected >= 2 windows of %d tokens scoring %d positions each; got %s"
                      % (CTX, CTX - 1 - CTX // 2, json.dumps(r)))
    return r


def check_arithmetic(tools, ref, test, work):
    """gemma-kld's numbers against NumPy on logits dumped by gemma-run."""
    with open(TEXT, encoding="utf-8") as f:
        text = f.read()
    short = text[:text.index("\n\n")]  # the first paragraph: one window
    short_path = os.path.join(work, "short.txt")
    with open(short_path, "w", encoding="utf-8") as f:
        f.write(short)
    got = tools.kld_json(ref, test, short_path, ["--all-positions"])
    logits, ids = [], None
    for i, module in enumerate((ref, test)):
        dump = os.path.join(work, "short_logits_%d.npy" % i)
        out, _ = run([tools.run, module, "-p", short, "--raw", "-n", "0", "--json",
                      "--dump-logits", dump, "--threads", "2"], "gemma-run --dump-logits")
        ids = json.loads(out)["prompt_ids"]
        logits.append(np.load(dump).astype(np.float64))
    T = len(ids)
    if got["windows"] != 1 or got["ctx"] != T or got["scored_positions"] != T - 1:
        raise Failure("gemma-kld on %s: expected one window of %d tokens scoring %d "
                      "positions, got %s" % (short_path, T, T - 1, json.dumps(got)))

    def log_softmax(x):
        x = x - x.max(axis=1, keepdims=True)
        return x - np.log(np.exp(x).sum(axis=1, keepdims=True))

    lp, lq = log_softmax(logits[0][:-1]), log_softmax(logits[1][:-1])
    kl = (np.exp(lp) * (lp - lq)).sum(axis=1)
    nxt = np.array(ids[1:])
    rows = np.arange(T - 1)
    want = {
        "kld_mean": kl.mean(),
        "kld_median": np.percentile(kl, 50),
        "kld_p99": np.percentile(kl, 99),
        "kld_max": kl.max(),
        "top1_agreement_pct": 100.0 * np.mean(logits[0][:-1].argmax(1) ==
                                              logits[1][:-1].argmax(1)),
        "ppl_ref": np.exp(-lp[rows, nxt].mean()),
        "ppl_test": np.exp(-lq[rows, nxt].mean()),
    }
    bad = ["%s: gemma-kld %.9g, NumPy %.9g" % (k, got[k], v) for k, v in want.items()
           if abs(got[k] - v) > 1e-6 * abs(v) + 1e-12]
    if bad:
        raise Failure("gemma-kld disagrees with NumPy on %s (%d positions):\n  %s" %
                      (short_path, T - 1, "\n  ".join(bad)))
    print("gemma-kld arithmetic: %d positions, all %d numbers equal NumPy's within 1e-6 "
          "relative (KLD mean %.4g)" % (T - 1, len(want), want["kld_mean"]))


def check_vocab_mismatch(tools, ref, work):
    other = os.path.join(work, "ckpt_vocab384")
    run([sys.executable, MAKE_CHECKPOINT, "--out", other, "--vocab", "384"] + CKPT,
        "make_checkpoint.py --vocab 384")
    module = os.path.join(work, "vocab384.gmc")
    tools.compile_module(other, module, ["--dtype", "f32"])
    _, err = run([tools.kld, ref, module, "--text", TEXT],
                 "gemma-kld with two vocabularies",
                 expect_rc=1)
    if "different vocabularies" not in err:
        raise Failure("gemma-kld on modules of 512 and 384 pieces: expected an error "
                      "naming different vocabularies, got:\n%s" % err)
    print("vocabulary mismatch refused: %s" % err.strip())


def check_tokenizer_mismatch(tools, ckpt, ref, work):
    """Same vocabulary size, one piece renamed: the text's ids differ."""
    other = os.path.join(work, "ckpt_renamed_piece")
    if os.path.exists(other):
        shutil.rmtree(other)
    shutil.copytree(ckpt, other)
    path = os.path.join(other, "tokenizer.model")
    with open(path, "rb") as f:
        data = f.read()
    # A SentencePiece's `piece` field (1, length-delimited) holding "▁the".
    old = b"\x0a\x06" + "\u2581the".encode("utf-8")
    new = b"\x0a\x06" + "\u2581thq".encode("utf-8")
    if data.count(old) != 1 or data.count(new) != 0:
        raise Failure("%s: expected the piece '\u2581the' once (and no '\u2581thq') to "
                      "rename; the tokenizer changed, pick another piece" % path)
    with open(path, "wb") as f:
        f.write(data.replace(old, new))
    module = os.path.join(work, "renamed_piece.gmc")
    tools.compile_module(other, module, ["--dtype", "f32"])
    _, err = run([tools.kld, ref, module, "--text", TEXT],
                 "gemma-kld with two tokenizers", expect_rc=1)
    if "tokenizers differ" not in err or "first difference at token" not in err:
        raise Failure("gemma-kld on modules whose tokenizers differ in one piece: "
                      "expected an error naming the first differing token, got:\n%s" % err)
    print("tokenizer mismatch refused: %s" % err.strip())


def describe(label, r):
    return ("%-14s KLD mean %.4g (+/- %.2g) median %.4g p99 %.4g max %.4g; top-1 %.2f %%; "
            "ppl REF %.1f TEST %.1f" %
            (label, r["kld_mean"], r["kld_mean_stderr"], r["kld_median"], r["kld_p99"],
             r["kld_max"], r["top1_agreement_pct"], r["ppl_ref"], r["ppl_test"]))


def make_twins(tools, scheme, ckpt, work):
    """Compiles one f32 twin per rounding rule of `scheme`: [(rule, module path)]."""
    twins = []
    for rule, fn in ROUNDING[scheme]:
        name = "twin_%s_%s" % (scheme, rule)
        make_twin(ckpt, os.path.join(work, name), fn)
        tools.compile_module(os.path.join(work, name), os.path.join(work, name + ".gmc"),
                             ["--dtype", "f32"])
        twins.append((rule, os.path.join(work, name + ".gmc")))
    return twins


def check_scheme(tools, scheme, ckpt, ref, work, measure):
    twins = make_twins(tools, scheme, ckpt, work)
    if measure:
        # The twins alone predict the scheme's numbers before its compiler flag exists.
        for rule, twin in twins:
            print(describe("twin %s %s/REF:" % (scheme, rule),
                           tools.kld_json(ref, twin, TEXT)))
    module = os.path.join(work, scheme + ".gmc")
    try:
        tools.compile_module(ckpt, module, SCHEMES[scheme])
    except Failure as e:
        if not measure:
            raise
        print("%-14s no module: %s" % (scheme + ":", str(e).splitlines()[0]))
        return False
    r = tools.kld_json(ref, module, TEXT)
    print(describe("%s/REF:" % scheme, r))
    vs_twin = []
    for rule, twin in twins:
        # Weights against weights: the CPU kernels' f32-activation mode, so that
        # the Q8 codes of the activations (tiles.h) do not blur the comparison.
        t = tools.kld_json(twin, module, TEXT, env=F32_ACTS)
        vs_twin.append((rule, t["kld_mean"]))
        print("%-14s KLD mean %.3g max %.3g, top-1 %.2f %%" %
              ("%s/twin %s:" % (scheme, rule), t["kld_mean"], t["kld_max"],
               t["top1_agreement_pct"]))
    if measure:
        return True
    if BOUNDS.get(scheme) is None:
        raise Failure("%s: no bounds yet; run with --measure and fill BOUNDS" % scheme)
    lo, hi, p99, top1 = BOUNDS[scheme]
    errs = []
    if not lo <= r["kld_mean"] <= hi:
        errs.append("mean KL divergence %.4g outside [%.3g, %.3g]%s" %
                    (r["kld_mean"], lo, hi, " (did the scheme change any weight?)"
                     if r["kld_mean"] < lo else ""))
    if r["kld_p99"] > p99:
        errs.append("99th percentile KL divergence %.4g > %.3g" % (r["kld_p99"], p99))
    if r["top1_agreement_pct"] < top1:
        errs.append("top-1 agreement %.2f %% < %.1f %%" % (r["top1_agreement_pct"], top1))
    if min(k for _, k in vs_twin) > TWIN_MAX_KLD:
        errs.append("mean KL divergence against the NumPy-rounded twins (%s) > %.1g: "
                    "the module's weights are not the values docs/quantization.md "
                    "defines" % (", ".join("%s %.4g" % v for v in vs_twin), TWIN_MAX_KLD))
    if errs:
        raise Failure("%s against REF (f32):\n  %s" % (scheme, "\n  ".join(errs)))
    return True


def check_packed(tools, ckpt, work):
    """Check 6: q4 for --target cpu (packed) against --target none (unpacked)."""
    packed = os.path.join(work, "q4.gmc")
    unpacked = os.path.join(work, "q4_target_none.gmc")
    tools.compile_module(ckpt, unpacked, SCHEMES["q4"] + ["--target", "none"])
    # The comparison means something only if the layouts differ.
    for module, want in ((packed, True), (unpacked, False)):
        out, _ = run([tools.dump, module], "gemma-dump " + module)
        if ("weight q4g32r8" in out) != want:
            raise Failure("%s: expected %s Q4G32R8 weights; gemma-dump says:\n%s" %
                          (module, "packed" if want else "no", out))
    # Weights against weights in the f32-activation mode (check 4's reason);
    # in the default mode the two layouts' kernels round an activation to a
    # code differently at an exact tie now and then, which the network
    # carries on: bounded by PACKED_MAX_KLD_Q8.
    r = tools.kld_json(unpacked, packed, TEXT, env=F32_ACTS)
    print(describe("q4 packed/none:", r))
    r8 = tools.kld_json(unpacked, packed, TEXT)
    print(describe("q4 packed/none (Q8 activations):", r8))
    with open(TEXT, encoding="utf-8") as f:
        text = f.read()
    prompt = text[:text.index("\n\n")]
    generated = []
    for module in (unpacked, packed):
        out, _ = run([tools.run, module, "-p", prompt, "--raw", "-n",
                      str(PACKED_GREEDY_TOKENS), "--temp", "0", "--json", "--threads",
                      "2"], "gemma-run greedy " + module, env=F32_ACTS)
        generated.append(json.loads(out)["generated_ids"])
    print("q4 packed/none: greedy %d tokens %s" %
          (len(generated[1]), "identical" if generated[0] == generated[1] else "DIFFER"))
    errs = []
    if r["kld_mean"] > PACKED_MAX_KLD or r["kld_max"] > 100 * PACKED_MAX_KLD:
        errs.append("KL divergence mean %.3g max %.3g > %.1g (max 100x)" %
                    (r["kld_mean"], r["kld_max"], PACKED_MAX_KLD))
    if r8["kld_mean"] > PACKED_MAX_KLD_Q8:
        errs.append("with Q8 activations, KL divergence mean %.3g > %.1g" %
                    (r8["kld_mean"], PACKED_MAX_KLD_Q8))
    if r["top1_agreement_pct"] != 100:
        errs.append("top-1 agreement %.2f %% != 100 %%" % r["top1_agreement_pct"])
    if len(generated[0]) != PACKED_GREEDY_TOKENS or generated[0] != generated[1]:
        errs.append("greedy tokens differ:\n    none   %s\n    packed %s" %
                    (generated[0], generated[1]))
    if errs:
        raise Failure("q4 packed (--target cpu) against unpacked (--target none): the "
                      "same weight values must give the same predictions:\n  %s" %
                      "\n  ".join(errs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin-dir", required=True,
                    help="directory holding gemma-compile, gemma-run and gemma-kld")
    ap.add_argument("--compiler", help="gemma-compile to use instead of BIN_DIR's")
    ap.add_argument("--work-dir", required=True)
    ap.add_argument("--schemes", default=",".join(ENABLED),
                    help="comma-separated subset of %s (default %s)" %
                    (",".join(SCHEMES), ",".join(ENABLED)))
    ap.add_argument("--measure", action="store_true",
                    help="print the numbers; check no bounds")
    args = ap.parse_args()
    schemes = [s for s in args.schemes.split(",") if s]
    for s in schemes:
        if s not in SCHEMES:
            ap.error("unknown scheme %s; known: %s" % (s, ", ".join(SCHEMES)))
    try:
        work = args.work_dir
        os.makedirs(work, exist_ok=True)
        tools = Tools(args.bin_dir, args.compiler)
        ckpt = os.path.join(work, "ckpt")
        run([sys.executable, MAKE_CHECKPOINT, "--out", ckpt] + CKPT, "make_checkpoint.py")
        shape_checkpoint(ckpt)
        ref = os.path.join(work, "ref_f32.gmc")
        tools.compile_module(ckpt, ref, ["--dtype", "f32"])
        check_self(tools, ref)
        built = [s for s in schemes
                 if check_scheme(tools, s, ckpt, ref, work, args.measure)]
        # The arithmetic check needs two modules that differ: the first scheme's, or
        # (only with no scheme given) a twin.
        if built:
            other = os.path.join(work, built[0] + ".gmc")
        else:
            other = make_twins(tools, "bf16", ckpt, work)[0][1]
        if "q4" in built and not args.measure:
            check_packed(tools, ckpt, work)
        check_arithmetic(tools, ref, other, work)
        check_vocab_mismatch(tools, ref, work)
        check_tokenizer_mismatch(tools, ckpt, ref, work)
    except Failure as e:
        sys.stderr.write("FAIL quality:\n%s\n" % e)
        return 1
    print("e2e quality: %s (%s)" % ("measured" if args.measure else "OK",
                                     ", ".join(schemes) or "no schemes"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
