#!/usr/bin/python3
"""End-to-end tests: make a tiny random Gemma checkpoint, compile it with
gemma-compile, run it with gemma-run, and compare with the NumPy reference.

    run_e2e.py --case NAME --bin-dir BUILD/bin --work-dir DIR
    run_e2e.py --case selftest --work-dir DIR      # checks the reference itself

Each case is one ctest test (see CMakeLists.txt). What is compared:
  1. the logits of every prompt position (gemma-run --dump-logits) against the
     reference's, within a tolerance relative to the reference's logit range;
  2. 32 greedy tokens against the reference's greedy continuation (which recomputes
     the whole sequence at every step, so it shares no KV-cache logic with the engine);
  3. that the reference's top-1 margin at every compared greedy step is at least
     MARGIN_FACTOR times that tolerance, so identical tokens cannot be luck.

Exit status 0 on success; on failure a readable report on stderr and status 1.
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
sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, HERE)
import reference  # noqa: E402  (the reference lives beside this script)

# Tolerances on prompt logits, as a fraction of the reference's (max - min) logit range.
# f32 modules: the engine computes in f32 what the reference computes in f64 from the
# same weights; the accumulated rounding of a 7-layer, 64-wide model is ~1e-6 of the
# range, so 1e-4 leaves a wide margin for summation order, tanh/exp approximations and
# chunked prefill while still catching any real semantic error (those move logits by
# >1e-2 of the range).
# bf16 modules: the reference rounds the weights to bf16 exactly as gemma-compile does
# (round to nearest even), so both sides use bit-identical weight values, and docs/ops.md
# says bf16 weights are widened to f32 and activations and accumulation stay f32. The
# arithmetic is therefore the same as in the f32 case and so is the tolerance; a larger
# one would be needed only if the engine kept activations in bf16, which the op set
# forbids.
REL_TOL = {"f32": 1e-4, "bf16": 1e-4}
MARGIN_FACTOR = 10.0
GREEDY_STEPS = 32

PROMPT = ("The lighthouse keeper climbed 117 steps every morning, wiped the glass and "
          "counted the ships: a ferry, two yachts and a cargo ship in the rain.")

# Each case: checkpoint options, compile options. All have >= 7 layers so both layer
# kinds run, and prompt + generation longer than the window so the ring buffers wrap.
CASES = {
    # Prompt > 2x window, prefilled in chunks of 5 tokens.
    "flat_f32_chunked": {
        "ckpt": ["--form", "flat", "--dtype", "f32", "--layers", "7", "--window", "8",
                 "--seed", "4"],
        "compile": ["--dtype", "f32", "--max-chunk", "5"],
        "module_dtype": "f32",
        "min_prompt": 17,
        "variants": ["unfused", "last_logits"],
    },
    # bf16 checkpoint, multimodal layout, 8 padding rows that must not be scored;
    # hidden 48 != heads * head_dim (64), and sqrt(48) is not a bf16 number, so the
    # embedding scale's rounding to bf16 shows.
    "nested_bf16_pad": {
        "ckpt": ["--form", "nested", "--dtype", "bf16", "--pad-rows", "8", "--layers", "7",
                 "--hidden", "48", "--seed", "1"],
        "compile": ["--dtype", "bf16"],
        "module_dtype": "bf16",
        "min_prompt": 9,
        "variants": ["unfused"],
    },
    # Newer multimodal layout in 3 shards, explicit layer_types, f32 compiled to bf16.
    "nested_new_sharded_bf16": {
        "ckpt": ["--form", "nested-new", "--dtype", "f32", "--shards", "3", "--layer-types",
                 "--layers", "8", "--seed", "2"],
        "compile": ["--dtype", "bf16"],
        "module_dtype": "bf16",
        "min_prompt": 9,
    },
    # Gemma 1 2B-like: multi-query attention (1 KV head), pre-norm blocks, no window,
    # the turn markers at Gemma 1's ids 106/107; prefilled in chunks of 7.
    "gemma1_mqa": {
        "ckpt": ["--family", "gemma1", "--dtype", "f32", "--layers", "6", "--heads", "4",
                 "--kv-heads", "1", "--special-layout", "gemma1", "--vocab", "640",
                 "--seed", "5"],
        "compile": ["--dtype", "f32", "--max-chunk", "7"],
        "module_dtype": "f32",
        "min_prompt": 17,
        "variants": ["unfused"],
        "system": "reject",
    },
    # Gemma 1 7B-like: multi-head attention (KV heads = heads), bf16 checkpoint.
    "gemma1_mha": {
        "ckpt": ["--family", "gemma1", "--dtype", "bf16", "--layers", "6", "--heads", "4",
                 "--kv-heads", "4", "--seed", "6"],
        "compile": ["--dtype", "bf16"],
        "module_dtype": "bf16",
        "min_prompt": 9,
    },
    # Gemma 2: sandwich norms without QK-norm, layers alternating local (window 8, far
    # shorter than the prompt) and global, attention and final soft-caps scaled down
    # with the model so that both bite (scores and logits reach several times the cap).
    "gemma2_softcap": {
        "ckpt": ["--family", "gemma2", "--dtype", "f32", "--layers", "6", "--window", "8",
                 "--attn-softcap", "4", "--final-softcap", "2", "--query-pre-attn-scalar",
                 "12", "--special-layout", "gemma1", "--vocab", "640", "--seed", "7"],
        "compile": ["--dtype", "f32", "--max-chunk", "5"],
        "module_dtype": "f32",
        "min_prompt": 17,
        "variants": ["unfused", "last_logits"],
        "system": "reject",
    },
    # Linear RoPE scaling on the global layers.
    "rope_scaling": {
        "ckpt": ["--form", "flat", "--dtype", "f32", "--rope-scaling", "8", "--layers", "7",
                 "--seed", "3"],
        "compile": ["--dtype", "f32"],
        "module_dtype": "f32",
        "min_prompt": 9,
    },
}


# Long context: thousands of tokens through small rings. The prompt is prefilled in
# chunks of --max-chunk, so prefill runs dozens of chunks and each sliding layer's ring
# (window + largest chunk rows) wraps many times before the greedy decode steps. What is
# compared against the reference, at f32 tolerance (REL_TOL above; measured errors are
# printed):
#   * the logits of every prompt position (reported for the first chunk, a middle chunk
#     and the last position);
#   * the logits each greedy decode step sampled from (gemma-run --dump-gen-logits,
#     against the reference run over the engine's own tokens), and that the engine's
#     tokens are the reference's argmax wherever the reference's margin pins them;
#   * the KV cache size gemma-run prints before it allocates, against the formula.
# int8 KV cache (kv "i8"): the reference passes keys and values through the same int8
# rounding (reference.Model.quantize_i8). That cannot be bit-exact: where x / s lands
# within f32-vs-f64 noise of a .5 the two round apart by one quantum (max|x| / 127),
# and through the global layers such a key reaches every later position. Measured on
# long_gemma3_kv_i8 (per-position max error, as a fraction of the logit range): against
# the simulated rounding median 7e-4, max 5.5e-3; against the unrounded reference median
# 7.7e-3, max 2.8e-2. I8_REL_TOL = 1.5e-2 is 2.7x the first maximum and below the
# second; a wrong ring costs more than the range (see the report of this case).
I8_REL_TOL = 1.5e-2
LONG_PROMPT_WORDS = 950  # about 3000 tokens with the demo tokenizer
LONG_DECODE_STEPS = 8
LONG_CASES = {
    # Gemma 3: 5 local (window 64) : 1 global, QK-norm, dual theta; 3000 tokens in
    # chunks of 128: the rings hold 64 + 128 = 192 rows and wrap ~15 times.
    "long_gemma3": {
        "ckpt": ["--form", "flat", "--dtype", "f32", "--layers", "7", "--window", "64",
                 "--max-pos", "4096", "--seed", "4"],
        "compile": ["--dtype", "f32", "--max-chunk", "128"],
        "kv": "f32",
        "check_ctx_refusal": True,
    },
    # The same with an int8 KV cache.
    "long_gemma3_kv_i8": {
        "ckpt": ["--form", "flat", "--dtype", "f32", "--layers", "7", "--window", "64",
                 "--max-pos", "4096", "--seed", "4"],
        "compile": ["--dtype", "f32", "--max-chunk", "128", "--kv-dtype", "i8"],
        "kv": "i8",
    },
    # Gemma 2: alternating local (window 64) / global layers, attention and final
    # soft-caps that bite (scaled down with the model, as in gemma2_softcap).
    "long_gemma2": {
        "ckpt": ["--family", "gemma2", "--dtype", "f32", "--layers", "6", "--window", "64",
                 "--attn-softcap", "4", "--final-softcap", "2", "--query-pre-attn-scalar",
                 "12", "--special-layout", "gemma1", "--vocab", "640", "--max-pos", "4096",
                 "--seed", "7"],
        "compile": ["--dtype", "f32", "--max-chunk", "128"],
        "kv": "f32",
    },
}


class Failure(Exception):
    pass


def run(cmd, what, timeout=300, stderr_too=False):
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout)
    except FileNotFoundError:
        raise Failure("%s: %s not found" % (what, cmd[0]))
    except subprocess.TimeoutExpired:
        raise Failure("%s: timed out after %d s: %s" % (what, timeout, " ".join(cmd)))
    if proc.returncode != 0:
        raise Failure("%s failed (exit %d): %s\n--- stdout ---\n%s\n--- stderr ---\n%s" %
                      (what, proc.returncode, " ".join(cmd),
                       proc.stdout.decode("utf-8", "replace")[-3000:],
                       proc.stderr.decode("utf-8", "replace")[-3000:]))
    out = proc.stdout.decode("utf-8", "replace")
    return (out, proc.stderr.decode("utf-8", "replace")) if stderr_too else out


def make_checkpoint(out, opts):
    run([sys.executable, MAKE_CHECKPOINT, "--out", out] + opts, "make_checkpoint.py")


def eos_ids(ckpt):
    with open(os.path.join(ckpt, "config.json")) as f:
        cfg = json.load(f)
    eos = cfg.get("eos_token_id", cfg.get("text_config", {}).get("eos_token_id", 1))
    return set(eos if isinstance(eos, list) else [eos])


def compare_logits(got, ref, rel_tol, prompt_ids):
    """Fails with a per-position table when |got - ref| exceeds the tolerance."""
    if got.shape != ref.shape:
        raise Failure("dumped logits have shape %s, expected %s ([prompt positions, "
                      "scored rows])" % (got.shape, ref.shape))
    if not np.all(np.isfinite(got)):
        bad = np.argwhere(~np.isfinite(got))[0]
        raise Failure("dumped logits hold non-finite values, first at position %d row %d" %
                      tuple(bad))
    rng = float(ref.max() - ref.min())
    tol = rel_tol * rng
    err = np.abs(got.astype(np.float64) - ref)
    worst = float(err.max())
    print("prompt logits: %d positions x %d rows, max abs error %.3g, tolerance %.3g "
          "(%.0e of range %.3g)" % (ref.shape[0], ref.shape[1], worst, tol, rel_tol, rng))
    if worst <= tol:
        return tol
    lines = ["prompt logits differ from the reference by %.4g > tolerance %.4g" %
             (worst, tol),
             " pos    id  max|err|  at row   engine    reference  argmax eng/ref"]
    over = [t for t in range(ref.shape[0]) if err[t].max() > tol]
    for t in over[:40]:
        r = int(err[t].argmax())
        lines.append("%4d %5d %9.3g  %6d %9.4f %9.4f   %5d/%-5d" %
                     (t, prompt_ids[t], err[t, r], r, got[t, r], ref[t, r],
                      int(got[t].argmax()), int(ref[t].argmax())))
    lines.append("%d of %d positions over the tolerance, the first at position %d" %
                 (len(over), ref.shape[0], over[0]))
    raise Failure("\n".join(lines))


def comparable_steps(margins, ranges, rel_tol):
    """For a device plugin (--rel-tol): the greedy steps whose reference top-1 margin is
    over twice the tolerance, up to the first that is not. Within the tolerance each
    logit may move by tol, so the top two by 2 tol: only a wider margin pins the token,
    and after an unpinned step the two sequences may part legitimately."""
    n = 0
    while n < len(margins) and margins[n] > 2.0 * rel_tol * ranges[n]:
        n += 1
    if n == 0:
        raise Failure("no greedy step is comparable at tolerance %g of the range: the "
                      "first margin is %.3g; change the case" % (rel_tol, margins[0]))
    return n


def compare_greedy(got, ref, margins, ranges, rel_tol, eos, prompt_len, window):
    n = len(got)
    # gemma-run may stop early at <eos>/<end_of_turn>; the stop token may or may not be
    # reported, so accept either as long as the reference agrees it stops there.
    stopped = n < len(ref) and ((n > 0 and got[-1] in eos) or ref[n] in eos)
    if n != len(ref) and not stopped:
        raise Failure("gemma-run generated %d tokens, expected %d (no stop token)\n"
                      "engine:    %s\nreference: %s" % (n, len(ref), got, ref))
    compared = min(n, len(ref))
    # Margins first: if the reference cannot tell its top two tokens apart by clearly
    # more than the tolerance, agreement (or disagreement) would prove nothing.
    for i in range(compared):
        need = MARGIN_FACTOR * rel_tol * ranges[i]
        if margins[i] <= need:
            raise Failure(
                "the test model is ill-conditioned: at greedy step %d the reference's "
                "top-1 margin is %.3g, not more than %g x the tolerance (%.3g); change the "
                "case's --seed or prompt" % (i, margins[i], MARGIN_FACTOR, need))
    if got[:compared] != ref[:compared]:
        first = next(i for i in range(compared) if got[i] != ref[i])
        lines = ["greedy tokens differ from the reference from step %d on" % first,
                 " step  engine  reference  ref margin"]
        for i in range(compared):
            lines.append("%5d %7d %10d %11.4f%s" % (i, got[i], ref[i], margins[i],
                                                    "  <--" if got[i] != ref[i] else ""))
        lines.append("step %d predicts sequence position %d (prompt %d tokens, sliding "
                     "window %d): the prompt logits matched, so suspect decoding with a "
                     "KV cache" % (first, prompt_len + first, prompt_len, window))
        raise Failure("\n".join(lines))
    if compared:
        print("greedy: %d tokens identical, smallest reference margin %.3g (%.1fx the "
              "tolerance)" % (compared, min(margins[:compared]),
                             min(m / (rel_tol * r) for m, r in
                                 zip(margins[:compared], ranges[:compared]))))


def run_case(name, bin_dir, work, plugin=None, rel_tol=None, expect=None):
    case = CASES[name]
    os.makedirs(work, exist_ok=True)
    ckpt = os.path.join(work, "ckpt")
    module = os.path.join(work, "model.gmc")
    dump = os.path.join(work, "prompt_logits.npy")
    for path in (module, dump):
        if os.path.exists(path):
            os.remove(path)
    make_checkpoint(ckpt, case["ckpt"])
    compile_tool = os.path.join(bin_dir, "gemma-compile")
    run_tool = os.path.join(bin_dir, "gemma-run")
    run([compile_tool, ckpt, "-o", module] + case["compile"], "gemma-compile")
    # With a plugin, --stats also says what ran where (graph mode, fallbacks).
    out, err = run([run_tool, module, "-p", PROMPT, "--raw", "-n", str(GREEDY_STEPS),
                    "--temp", "0", "--json", "--dump-logits", dump, "--threads", "2"] +
                   (["--plugin", plugin, "--stats"] if plugin else []), "gemma-run",
                   stderr_too=True)
    try:
        result = json.loads(out)
        prompt_ids = [int(t) for t in result["prompt_ids"]]
        generated = [int(t) for t in result["generated_ids"]]
    except (ValueError, KeyError, TypeError) as e:
        raise Failure("gemma-run --json: expected one JSON object with prompt_ids and "
                      "generated_ids (%s); stdout was:\n%s" % (e, out[-3000:]))
    if not prompt_ids or prompt_ids[0] != 2:
        raise Failure("prompt_ids should start with <bos> (2) under --raw: %s" % prompt_ids)
    if len(prompt_ids) < case["min_prompt"]:
        raise Failure("the prompt has %d tokens; this case needs at least %d" %
                      (len(prompt_ids), case["min_prompt"]))
    if not os.path.exists(dump):
        raise Failure("gemma-run did not write %s" % dump)
    try:
        got = np.load(dump)
    except (OSError, ValueError) as e:
        raise Failure("%s: not a readable .npy file (%s)" % (dump, e))
    if got.dtype != np.float32 or got.ndim != 2:
        raise Failure("%s: expected a 2-D float32 array, got %s %s" %
                      (dump, got.dtype, got.shape))

    dtype = case["module_dtype"]
    model = reference.Model(ckpt, compile_dtype=dtype)
    rows = model.default_rows()
    ref = model.logits(prompt_ids, rows)
    rel_tol = rel_tol or REL_TOL[dtype]
    compare_logits(got, ref, rel_tol, prompt_ids)
    gen, margins, ranges = model.greedy(prompt_ids, GREEDY_STEPS, rows)
    if plugin:
        n = comparable_steps(margins, ranges, rel_tol)
        if generated[:n] != gen[:n]:
            raise Failure("greedy tokens differ from the reference within the %d pinned "
                          "steps:\nengine:    %s\nreference: %s" % (n, generated[:n], gen[:n]))
        print("greedy: the %d pinned steps agree (of %d generated)" % (n, len(generated)))
        line = next((l for l in err.splitlines() if l.startswith("backend:")), "")
        print(line)
        if expect and expect not in line:
            raise Failure("gemma-run --stats: expected '%s' in the backend line, got "
                          "'%s'" % (expect, line))
    else:
        compare_greedy(generated, gen, margins, ranges, rel_tol, eos_ids(ckpt),
                       len(prompt_ids), model.cfg.window)
    if case.get("system") == "reject" and not plugin:
        check_system_rejected(run_tool, module)
    # The variants compare other compilations on the CPU plugin with these logits
    # exactly; a device plugin's logits are not that reference.
    for variant in ([] if plugin else case.get("variants", [])):
        check_variant(variant, case, ckpt, work, compile_tool, run_tool, got, generated)
    print("e2e %s: OK (%d prompt tokens, window %d, %d layers)" %
          (name, len(prompt_ids), model.cfg.window, model.cfg.layers))


def long_prompt(path, words):
    """Writes `words` words drawn (seeded) from the demo corpus: text the tokenizer
    knows, in an order it has never seen."""
    corpus = os.path.join(SRC_ROOT, "tools", "make-demo-model", "corpus.txt")
    with open(corpus) as f:
        vocab = f.read().split()
    rng = np.random.default_rng(11)
    text = " ".join(vocab[i] for i in rng.integers(0, len(vocab), words))
    with open(path, "w") as f:
        f.write(text)


def expected_kv_bytes(cfg, ctx, chunk, kv):
    """The KV cache a session of `ctx` tokens needs (docs/families.md, "Long
    context"): per layer and position, K and V of kv_heads x head_dim (f32, or int8
    plus one f32 scale per KV head); a sliding layer keeps a ring of window + largest
    chunk rows (never more than the context), a global layer the whole context."""
    per_pos = 2 * cfg.kv_heads * (cfg.head_dim * 4 if kv == "f32" else cfg.head_dim + 4)
    rows = sum(min(cfg.window + chunk, ctx) if sliding else ctx for sliding in cfg.sliding)
    return rows * per_pos


def run_long_case(name, bin_dir, work):
    case = LONG_CASES[name]
    os.makedirs(work, exist_ok=True)
    ckpt = os.path.join(work, "ckpt")
    module = os.path.join(work, "model.gmc")
    prompt = os.path.join(work, "prompt.txt")
    dump = os.path.join(work, "prompt_logits.npy")
    gen_dump = os.path.join(work, "gen_logits.npy")
    for path in (module, dump, gen_dump):
        if os.path.exists(path):
            os.remove(path)
    make_checkpoint(ckpt, case["ckpt"])
    long_prompt(prompt, LONG_PROMPT_WORDS)
    chunk = int(case["compile"][case["compile"].index("--max-chunk") + 1])
    ctx = 4096
    run([os.path.join(bin_dir, "gemma-compile"), ckpt, "-o", module, "--quiet"] +
        case["compile"], "gemma-compile")
    out, err = run([os.path.join(bin_dir, "gemma-run"), module, "-f", prompt, "--raw",
                    "-n", str(LONG_DECODE_STEPS), "--temp", "0", "--json", "--ctx", str(ctx),
                    "--dump-logits", dump, "--dump-gen-logits", gen_dump, "--threads", "2",
                    "--stats"], "gemma-run", stderr_too=True)
    try:
        result = json.loads(out)
        prompt_ids = [int(t) for t in result["prompt_ids"]]
        generated = [int(t) for t in result["generated_ids"]]
    except (ValueError, KeyError, TypeError) as e:
        raise Failure("gemma-run --json: expected one JSON object with prompt_ids and "
                      "generated_ids (%s); stdout was:\n%s" % (e, out[-3000:]))
    model = reference.Model(ckpt, compile_dtype="f32", kv_dtype=case["kv"])
    cfg = model.cfg
    P = len(prompt_ids)
    if not 2000 <= P <= ctx - LONG_DECODE_STEPS:
        raise Failure("the long prompt has %d tokens; expected 2000 to %d" %
                      (P, ctx - LONG_DECODE_STEPS))

    # The memory line gemma-run prints before the session allocates.
    want_kv = expected_kv_bytes(cfg, ctx, chunk, case["kv"])
    line = next((l for l in err.splitlines() if l.startswith("session: context")), None)
    if line is None:
        raise Failure("gemma-run --stats printed no 'session: context ...' line before "
                      "the session; stderr:\n%s" % err[-2000:])
    if ("session: context %d needs KV cache" % ctx) not in line or \
            ("(%d + " % want_kv) not in line:
        raise Failure("gemma-run's memory line says\n  %s\nexpected context %d and a KV "
                      "cache of %d bytes (sliding rings of %d + %d rows)" %
                      (line, ctx, want_kv, cfg.window, chunk))
    print(line)

    try:
        got = np.load(dump).astype(np.float64)
        got_gen = np.load(gen_dump).astype(np.float64)
    except (OSError, ValueError) as e:
        raise Failure("gemma-run's logit dumps are not readable .npy files (%s)" % e)
    rows = model.default_rows()
    # One pass over the engine's own sequence gives the reference logits of every
    # prompt position and of every decode step (teacher forcing: step i is predicted
    # from the prompt and the engine's first i tokens).
    # A stop token ends generation unreported, so without a logits row.
    steps = got_gen.shape[0] if got_gen.ndim == 2 else -1
    if not (steps == len(generated) or (steps == len(generated) - 1 and
                                        generated[-1] in eos_ids(ckpt))):
        raise Failure("gemma-run --dump-gen-logits wrote %s rows for %d generated tokens" %
                      (got_gen.shape, len(generated)))
    generated = generated[:steps]
    seq = prompt_ids + generated[:-1] if generated else prompt_ids
    ref_all = model.logits(seq, rows)
    ref = ref_all[:P]
    ref_gen = ref_all[P - 1:P - 1 + steps]
    if steps == 0:
        got_gen = got_gen.reshape(0, rows)
    rel_tol = I8_REL_TOL if case["kv"] == "i8" else REL_TOL["f32"]
    tol = rel_tol * float(ref.max() - ref.min())
    if got.shape != ref.shape:
        raise Failure("prompt logits have shape %s, expected %s" % (got.shape, ref.shape))
    if got_gen.shape != ref_gen.shape:
        raise Failure("decode logits have shape %s, expected %s (%d generated tokens)" %
                      (got_gen.shape, ref_gen.shape, len(generated)))
    err_pos = np.abs(got - ref).max(axis=1)
    mid = (P // chunk // 2) * chunk
    parts = [("first chunk", 0, min(chunk, P)), ("middle chunk", mid, min(mid + chunk, P)),
             ("last position", P - 1, P), ("all prompt", 0, P)]
    report = ["%s [%d, %d): %.3g" % (n, a, b, err_pos[a:b].max()) for n, a, b in parts]
    gen_err = np.abs(got_gen - ref_gen).max(axis=1) if len(generated) else np.zeros(0)
    report.append("decode steps: %s" % (
        ", ".join("%.3g" % e for e in gen_err) if len(gen_err) else "none"))
    print("%d prompt tokens in %d chunks of %d; rings of %d rows wrap %d times; max abs "
          "error vs the reference (tolerance %.3g = %.2g of the range):\n  %s" %
          (P, -(-P // chunk), chunk, min(cfg.window + chunk, ctx),
           P // min(cfg.window + chunk, ctx), tol, rel_tol, "\n  ".join(report)))
    if err_pos.max() > tol:
        bad = np.nonzero(err_pos > tol)[0]
        raise Failure("prompt logits differ from the reference at %d of %d positions, "
                      "the first at %d (chunk %d): error %.4g > tolerance %.4g" %
                      (len(bad), P, bad[0], bad[0] // chunk, err_pos[bad[0]], tol))
    if len(gen_err) and gen_err.max() > tol:
        step = int(np.argmax(gen_err > tol))
        raise Failure("decode step %d (position %d) differs from the reference by %.4g > "
                      "tolerance %.4g: the prompt matched, so suspect the KV cache" %
                      (step, P + step, gen_err[step], tol))
    if steps < LONG_DECODE_STEPS - 1:
        raise Failure("gemma-run generated %d tokens, expected %d: the case checks too "
                      "few decode steps; change its --seed" % (steps, LONG_DECODE_STEPS))
    for i, t in enumerate(generated):
        order = np.argsort(-ref_gen[i], kind="stable")
        margin = ref_gen[i][order[0]] - ref_gen[i][order[1]]
        if margin > 2 * tol and t != int(order[0]):
            raise Failure("decode step %d chose token %d; the reference's argmax is %d "
                          "with a margin of %.3g (> 2 x tolerance)" %
                          (i, t, int(order[0]), margin))
    if case.get("check_ctx_refusal"):
        check_ctx_refused(os.path.join(bin_dir, "gemma-run"), module, ctx + 1, ctx)
    print("e2e %s: OK (%d prompt + %d generated tokens, window %d, %d layers, KV %s)" %
          (name, P, len(generated), cfg.window, cfg.layers, case["kv"]))


def check_ctx_refused(run_tool, module, ctx, max_ctx):
    """gemma-run --ctx above the module's max_context: a non-zero exit and a message
    naming both numbers, before anything is allocated."""
    proc = subprocess.run([run_tool, module, "-p", "Hi", "--raw", "-n", "1", "--ctx",
                           str(ctx)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60)
    err = proc.stderr.decode("utf-8", "replace")
    want = "context length %d exceeds the model's max_context %d" % (ctx, max_ctx)
    if proc.returncode == 0 or want not in err:
        raise Failure("gemma-run --ctx %d on a model of max_context %d: expected a non-zero "
                      "exit and '%s', got exit %d and stderr:\n%s" %
                      (ctx, max_ctx, want, proc.returncode, err[-2000:]))
    print("--ctx %d refused: %s" % (ctx, err.strip().splitlines()[-1]))


def check_system_rejected(run_tool, module):
    """Gemma 1/2 have no system role: HF's chat templates raise, and so must gemma-run
    (with a message that says so, not a crash or a silently dropped system text)."""
    proc = subprocess.run([run_tool, module, "-p", "Hi", "--system", "Be brief.", "-n", "1",
                           "--temp", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60)
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode == 0 or "no system role" not in err:
        raise Failure("gemma-run --system on a model without a system role: expected a "
                      "non-zero exit and an error naming the missing system role, got "
                      "exit %d and stderr:\n%s" % (proc.returncode, err[-2000:]))
    print("--system refused: %s" % err.strip().splitlines()[-1])


# The same checkpoint compiled another way must give the same answers as the default
# (fused) module checked above against the reference:
#   "unfused": --no-fuse, one kernel per op. Fused ops are defined as exactly the chain
#     they replace (docs/ops.md), so only f32 summation order differs: the prompt
#     logits must agree within FUSED_REL_TOL of their range (10x below REL_TOL; the
#     measured difference on flat_f32_chunked is 1.2e-6 of the range), the greedy
#     tokens exactly.
#   "last_logits": --prefill-logits=last, prefill computes only the last position; the
#     greedy tokens must be identical.
FUSED_REL_TOL = 1e-5


def check_variant(variant, case, ckpt, work, compile_tool, run_tool, fused_logits,
                  fused_generated):
    flag = {"unfused": ["--no-fuse"], "last_logits": ["--prefill-logits=last"]}[variant]
    module = os.path.join(work, "model_%s.gmc" % variant)
    dump = os.path.join(work, "prompt_logits_%s.npy" % variant)
    for path in (module, dump):
        if os.path.exists(path):
            os.remove(path)
    run([compile_tool, ckpt, "-o", module, "--quiet"] + case["compile"] + flag,
        "gemma-compile " + " ".join(flag))
    cmd = [run_tool, module, "-p", PROMPT, "--raw", "-n", str(GREEDY_STEPS), "--temp", "0",
           "--json", "--threads", "2"]
    if variant == "unfused":
        cmd += ["--dump-logits", dump]
    generated = [int(t) for t in json.loads(run(cmd, "gemma-run (%s)" % variant))
                 ["generated_ids"]]
    if generated != fused_generated:
        raise Failure("%s module generated %s, the default module %s" %
                      (variant, generated, fused_generated))
    if variant == "unfused":
        unfused = np.load(dump).astype(np.float64)
        rng = float(unfused.max() - unfused.min())
        worst = float(np.abs(unfused - fused_logits).max())
        print("fused vs unfused: max abs difference %.3g, tolerance %.3g (%.0e of range)" %
              (worst, FUSED_REL_TOL * rng, FUSED_REL_TOL))
        if unfused.shape != fused_logits.shape or worst > FUSED_REL_TOL * rng:
            raise Failure("fused and unfused prompt logits differ by %.3g (tolerance %.3g)"
                          % (worst, FUSED_REL_TOL * rng))
    print("variant %s: OK" % variant)


# ---------------------------------------------------------------------------------
# Self-test of the reference (no C++ involved).


def check(cond, msg):
    if not cond:
        raise Failure("reference self-test: " + msg)


def selftest(work):
    os.makedirs(work, exist_ok=True)
    flat = os.path.join(work, "flat")
    make_checkpoint(flat, ["--form", "flat", "--dtype", "f32", "--window", "8"])
    tok = os.path.join(flat, "tokenizer.model")
    nested_new = os.path.join(work, "nested_new")
    make_checkpoint(nested_new, ["--form", "nested-new", "--dtype", "f32", "--shards", "3",
                                 "--window", "8", "--layer-types", "--tokenizer", tok])
    nested_bf16 = os.path.join(work, "nested_bf16")
    make_checkpoint(nested_bf16, ["--form", "nested", "--dtype", "bf16", "--window", "8",
                                  "--tokenizer", tok])
    scaled = os.path.join(work, "scaled")
    make_checkpoint(scaled, ["--form", "flat", "--dtype", "f32", "--window", "8",
                             "--rope-scaling", "8", "--tokenizer", tok])

    m = reference.Model(flat)
    W = m.cfg.window
    check(m.cfg.sliding == [True] * 5 + [False, True],
          "layer kinds %s, expected 5 sliding, 1 global, 1 sliding" % m.cfg.sliding)
    rng = np.random.default_rng(7)
    ids = [2] + [int(t) for t in rng.integers(4, m.default_rows(), 39)]
    T = len(ids)

    # Known values of the pieces.
    g = reference.Model.gelu_tanh(np.array([-1.0, 0.0, 1.0]))
    check(np.allclose(g, [-0.15880800939172324, 0.0, 0.8411919906082768], rtol=0,
                      atol=1e-12), "gelu_tanh values %s" % g)
    x = rng.normal(size=(5, 2, 16))
    y = reference.Model.rope(x, np.arange(5), 10000.0, 1.0)
    check(np.allclose(np.linalg.norm(y, axis=-1), np.linalg.norm(x, axis=-1)),
          "RoPE does not preserve norms")
    check(np.allclose(y[0], x[0]), "RoPE at position 0 is not the identity")
    # RoPE makes q.k depend on the distance only: shift both positions by 3.
    q, k = x[0, 0], x[1, 1]
    d1 = reference.Model.rope(q[None, None], np.array([4]), 1e4, 1.0)[0, 0] @ \
        reference.Model.rope(k[None, None], np.array([1]), 1e4, 1.0)[0, 0]
    d2 = reference.Model.rope(q[None, None], np.array([7]), 1e4, 1.0)[0, 0] @ \
        reference.Model.rope(k[None, None], np.array([4]), 1e4, 1.0)[0, 0]
    check(abs(d1 - d2) < 1e-9, "RoPE scores depend on absolute position (%g vs %g)" %
          (d1, d2))

    # Causality: the logits at t of the full sequence equal those of the prefix [:t+1].
    full = m.logits(ids)
    for t in (0, 1, W - 1, W, 2 * W + 3, T - 2):
        pre = m.logits(ids[:t + 1])[-1]
        check(np.allclose(full[t], pre, rtol=0, atol=1e-10),
              "position %d depends on later tokens (max diff %g)" %
              (t, np.abs(full[t] - pre).max()))

    # A sliding layer ignores keys at distance >= W and sees distance W - 1.
    t = T - 1
    base = m.hidden_states(ids, 1)[t]
    far = list(ids)
    for j in range(1, t - W + 1):
        far[j] = (far[j] + 1) % m.default_rows()
    check(np.array_equal(m.hidden_states(far, 1)[t], base),
          "sliding layer 0 sees tokens more than W-1 = %d positions back" % (W - 1))
    near = list(ids)
    near[t - W + 1] = (near[t - W + 1] + 1) % m.default_rows()
    check(np.abs(m.hidden_states(near, 1)[t] - base).max() > 1e-6,
          "sliding layer 0 ignores the token W-1 = %d positions back" % (W - 1))
    # Five sliding layers reach back 5 * (W - 1) = 35 positions; the global layer 5 then
    # sees everything.
    first = list(ids)
    first[1] = (first[1] + 1) % m.default_rows()
    check(t - 1 > 5 * (W - 1), "self-test sequence too short")
    check(np.array_equal(m.hidden_states(first, 5)[t], m.hidden_states(ids, 5)[t]),
          "five sliding layers see further than 5 * (W - 1) positions")
    check(np.abs(m.hidden_states(first, 6)[t] - m.hidden_states(ids, 6)[t]).max() > 1e-6,
          "the global layer 5 does not see the whole sequence")

    # The loader: the same seed in another layout, sharded, with explicit layer_types,
    # gives bit-identical logits.
    check(np.array_equal(reference.Model(nested_new).logits(ids), full),
          "nested-new sharded checkpoint with layer_types differs from the flat one")
    # bf16: a bf16 checkpoint equals the f32 one rounded to bf16 (norm weights are
    # rounded in the file but not by --compile-dtype, so compare with the norms of the
    # bf16 file put into the f32 model).
    mb = reference.Model(nested_bf16)
    mr = reference.Model(flat, compile_dtype="bf16")
    check(mb.embed_scale == mr.embed_scale == 8.0, "embed scale for hidden 64 is not 8")
    for a, b in zip(mb.layers, mr.layers):
        for key in ("q", "k", "v", "o", "gate", "up", "down"):
            check(np.array_equal(a[key], b[key]),
                  "bf16 file and --compile-dtype bf16 disagree on %s" % key)
    check(np.array_equal(mb.embed, mr.embed), "bf16 embedding differs")
    rel = np.abs(mr.embed - m.embed).max() / np.abs(m.embed).max()
    check(0 < rel <= 2.0 ** -8, "bf16 rounding error %g outside (0, 2^-8]" % rel)
    # Linear RoPE scaling changes global layers only: with 5 sliding layers first, the
    # states after layer 5 are identical and the states after layer 6 differ.
    ms = reference.Model(scaled)
    check(ms.cfg.global_factor == 8.0, "rope_scaling factor not read")
    check(np.array_equal(ms.hidden_states(ids, 5), m.hidden_states(ids, 5)),
          "RoPE scaling changed a sliding layer")
    check(np.abs(ms.hidden_states(ids, 6) - m.hidden_states(ids, 6)).max() > 1e-6,
          "RoPE scaling did not change the global layer")
    # Padding rows are not scored.
    check(m.logits(ids[:3], 100).shape == (3, 100), "rows argument ignored")

    # Gemma 1: every layer global (a single layer sees the first token from the last
    # position), causal, no soft-caps.
    g1 = os.path.join(work, "gemma1")
    make_checkpoint(g1, ["--family", "gemma1", "--dtype", "f32", "--layers", "3",
                         "--kv-heads", "1", "--tokenizer", tok])
    m1 = reference.Model(g1)
    check(m1.cfg.family == "gemma1" and m1.cfg.sliding == [False] * 3,
          "gemma1 layer kinds %s, expected 3 global" % m1.cfg.sliding)
    check(m1.cfg.query_pre_attn_scalar == m1.cfg.head_dim,
          "gemma1 attention scale is not head_dim^-1/2")
    check(np.abs(m1.hidden_states(first, 1)[t] - m1.hidden_states(ids, 1)[t]).max() > 1e-6,
          "gemma1 layer 0 does not see the whole sequence")
    full1 = m1.logits(ids)
    check(np.allclose(full1[W], m1.logits(ids[:W + 1])[-1], rtol=0, atol=1e-10),
          "gemma1 is not causal")
    # Gemma 2: layers alternate sliding/global starting with sliding; the final soft-cap
    # bounds every logit.
    g2 = os.path.join(work, "gemma2")
    make_checkpoint(g2, ["--family", "gemma2", "--dtype", "f32", "--layers", "4",
                         "--window", "8", "--final-softcap", "2", "--tokenizer", tok])
    m2 = reference.Model(g2)
    check(m2.cfg.sliding == [True, False, True, False],
          "gemma2 layer kinds %s, expected sliding, global, ..." % m2.cfg.sliding)
    check(m2.cfg.attn_softcap == 50.0 and m2.cfg.final_softcap == 2.0,
          "gemma2 soft-caps %s/%s not read" % (m2.cfg.attn_softcap, m2.cfg.final_softcap))
    check(np.array_equal(m2.hidden_states(far, 1)[t], m2.hidden_states(ids, 1)[t]),
          "gemma2 sliding layer 0 sees more than its window")
    lg2 = m2.logits(ids)
    check(np.abs(lg2).max() < 2.0 and np.abs(lg2).max() > 1.0,
          "gemma2 final soft-cap 2 does not bound the logits (max |logit| %g)" %
          np.abs(lg2).max())
    print("reference self-test: OK")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", required=True,
                    choices=sorted(CASES) + sorted(LONG_CASES) + ["selftest"])
    ap.add_argument("--bin-dir", help="directory holding gemma-compile and gemma-run")
    ap.add_argument("--work-dir", required=True)
    ap.add_argument("--plugin", help="run gemma-run on this backend plugin library")
    ap.add_argument("--rel-tol", type=float,
                    help="logit tolerance relative to the range, for a plugin whose "
                         "arithmetic differs from the op set's f32 (say why where it is set)")
    ap.add_argument("--expect-backend",
                    help="text the backend line of gemma-run --stats must hold (with "
                         "--plugin), e.g. 'graphs: prefill, decode'")
    args = ap.parse_args()
    try:
        if args.case == "selftest":
            selftest(args.work_dir)
        elif args.case in LONG_CASES:
            if not args.bin_dir:
                ap.error("--bin-dir is required for case %s" % args.case)
            run_long_case(args.case, args.bin_dir, args.work_dir)
        else:
            if not args.bin_dir:
                ap.error("--bin-dir is required for case %s" % args.case)
            run_case(args.case, args.bin_dir, args.work_dir, args.plugin, args.rel_tol,
                     args.expect_backend)
    except (Failure, reference.ReferenceError) as e:
        sys.stderr.write("FAIL %s:\n%s\n" % (args.case, e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
