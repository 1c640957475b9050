#!/usr/bin/python3
"""Smoke test of gemma-bench (ctest gemma_bench_smoke): runs it on tiny modules made here
and checks its JSON, in a few seconds.

    gemma_bench_smoke.py --bin-dir BUILD/bin --work-dir DIR

Makes a tiny random Gemma 3 checkpoint (tools/make-demo-model/make_checkpoint.py) with 64
padding rows past the tokenizer's pieces, compiles it twice (f32; q4 with the embedding kept
at q8) and runs `gemma-bench -p 16 -n 8 -r 2 --json` on each. Checks:
  * every field is there; every timing, rate and size is positive and finite; each spread
    has min <= median <= max and one value per repetition;
  * the roofline against numbers computed here from the checkpoint alone (not from the
    runtime): the weight bytes a decode step reads (all tensors, minus the embedding rows
    the head does not score, with the embedding's size from the docs/quantization.md
    layout), the KV bytes read at the run's positions (from config.json's layer pattern),
    and limit = bandwidth / bytes, fraction = tg / limit, with 0 < fraction < 1.5;
  * usage errors exit with status 2 and say what was wrong.
Exit status 0 when all pass.
"""

import argparse
import json
import math
import os
import shutil
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MAKE_CKPT = os.path.join(HERE, "..", "tools", "make-demo-model", "make_checkpoint.py")
PAD_ROWS = 64
P, N, R = 16, 8, 2

SPREADS = ["pp_tps", "tg_tps", "ttft_s", "load_s", "session_create_s", "peak_rss_bytes"]
TOP = ["model", "backend", "cpu", "quantization", "threads", "prompt_tokens", "gen_tokens",
       "repetitions", "warmup", "decode_mode", "weights_bytes", "parameter_count",
       "kv_cache_bytes", "arena_bytes", "rss_before_load_bytes", "rss_budget_bytes",
       "pp_gflops", "tg_gflops", "probe", "roofline"] + SPREADS
PROBE = ["threads", "buffer_bytes", "passes", "best_gbps", "median_gbps",
         "before_runs_best_gbps", "after_runs_best_gbps"]
ROOF = ["weight_bytes_per_token", "embed_bytes", "embed_estimate", "head_rows",
        "kv_bytes_per_token", "kv_estimate", "mean_context", "bytes_per_token",
        "tg_limit_tps", "tg_fraction"]

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def close(a, b, rel=1e-6):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1.0)


def positive(v):
    return isinstance(v, (int, float)) and math.isfinite(v) and v > 0


def safetensors_sizes(path):
    """{name: (dtype, shape, bytes)} from a safetensors header."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        out[name] = (t["dtype"], t["shape"], t["data_offsets"][1] - t["data_offsets"][0])
    return out


def expected_kv_read(cfg):
    """Mean KV bytes a decode step reads over positions [P, P + N): K and V, f32, per KV
    head; sliding layers see min(pos + 1, window) rows, global layers pos + 1."""
    layers = cfg["num_hidden_layers"]
    if "layer_types" in cfg:
        sliding = [t == "sliding_attention" for t in cfg["layer_types"]]
    else:
        pattern = cfg["sliding_window_pattern"]
        sliding = [(i + 1) % pattern != 0 for i in range(layers)]
    per_pos = 2 * cfg["num_key_value_heads"] * cfg["head_dim"] * 4
    window = cfg["sliding_window"]
    total = 0
    for pos in range(P, P + N):
        rows = pos + 1
        for s in sliding:
            total += per_pos * (min(rows, window) if s else rows)
    return total / N


def run_bench(bench, args):
    return subprocess.run([bench] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60)


def check_report(tag, j, cfg, tensors, embed_bytes_expected):
    for k in TOP:
        check(k in j, "%s: field %s missing" % (tag, k))
    if failures:
        return
    for k in PROBE:
        check(k in j["probe"], "%s: probe.%s missing" % (tag, k))
    for k in ROOF:
        check(k in j["roofline"], "%s: roofline.%s missing" % (tag, k))
    if failures:
        return
    check(j["prompt_tokens"] == P and j["gen_tokens"] == N and j["repetitions"] == R,
          "%s: shape echoed as %s/%s/%s" % (tag, j["prompt_tokens"], j["gen_tokens"],
                                            j["repetitions"]))
    check(j["backend"] == "cpu", "%s: backend %r, expected cpu" % (tag, j["backend"]))
    for k in SPREADS:
        s = j[k]
        ok = all(positive(s[f]) for f in ("median", "min", "max"))
        ok = ok and s["min"] <= s["median"] <= s["max"]
        ok = ok and len(s["values"]) == R and all(positive(v) for v in s["values"])
        check(ok, "%s: %s is not a sane spread: %s" % (tag, k, s))
    for k in ("weights_bytes", "parameter_count", "kv_cache_bytes", "arena_bytes",
              "rss_before_load_bytes", "rss_budget_bytes", "pp_gflops", "tg_gflops"):
        check(positive(j[k]), "%s: %s = %r" % (tag, k, j[k]))
    pr = j["probe"]
    check(positive(pr["best_gbps"]) and positive(pr["median_gbps"]) and
          pr["median_gbps"] <= pr["best_gbps"] and pr["passes"] >= 1 and
          pr["threads"] == j["threads"], "%s: probe %s" % (tag, pr))
    # Half the passes run before the repetitions (in a child), half after.
    check(positive(pr["before_runs_best_gbps"]) and positive(pr["after_runs_best_gbps"]) and
          pr["best_gbps"] == max(pr["before_runs_best_gbps"], pr["after_runs_best_gbps"]) and
          pr["passes"] == 10, "%s: probe halves %s" % (tag, pr))

    ro = j["roofline"]
    params = sum(b for _, _, b in tensors.values()) // 4  # f32 checkpoint
    check(j["parameter_count"] == params,
          "%s: parameter_count %d, the checkpoint holds %d" % (tag, j["parameter_count"], params))
    if tag == "f32":
        # Stored as in the checkpoint: the module's weights are its tensors' bytes.
        ckpt_bytes = sum(b for _, _, b in tensors.values())
        check(j["weights_bytes"] == ckpt_bytes, "%s: weights_bytes %d, the checkpoint's "
              "tensors are %d bytes" % (tag, j["weights_bytes"], ckpt_bytes))
    # What the head scores: the tokenizer's pieces, not the padding rows.
    rows, hidden = tensors["model.embed_tokens.weight"][1]
    head = rows - PAD_ROWS
    check(ro["head_rows"] == head, "%s: head_rows %d, expected %d" % (tag, ro["head_rows"], head))
    check(ro["embed_bytes"] == embed_bytes_expected,
          "%s: embed_bytes %d, expected %d (%s)" % (tag, ro["embed_bytes"],
                                                   embed_bytes_expected, ro["embed_estimate"]))
    want_w = j["weights_bytes"] - embed_bytes_expected * (rows - head) / rows
    check(close(ro["weight_bytes_per_token"], want_w),
          "%s: weight bytes per token %r, expected %r" % (tag, ro["weight_bytes_per_token"], want_w))
    check(ro["kv_estimate"] == "measured", "%s: kv_estimate %r" % (tag, ro["kv_estimate"]))
    want_kv = expected_kv_read(cfg)
    check(close(ro["kv_bytes_per_token"], want_kv),
          "%s: KV bytes per token %r, expected %r" % (tag, ro["kv_bytes_per_token"], want_kv))
    check(close(ro["mean_context"], P + (N + 1) / 2),
          "%s: mean_context %r" % (tag, ro["mean_context"]))
    bpt = ro["weight_bytes_per_token"] + ro["kv_bytes_per_token"]
    check(close(ro["bytes_per_token"], bpt, 1e-5), "%s: bytes_per_token %r != %r" %
          (tag, ro["bytes_per_token"], bpt))
    limit = pr["best_gbps"] * 1e9 / bpt
    check(close(ro["tg_limit_tps"], limit, 1e-4),
          "%s: tg_limit_tps %r, expected %r" % (tag, ro["tg_limit_tps"], limit))
    frac = j["tg_tps"]["median"] / limit
    check(close(ro["tg_fraction"], frac, 1e-4),
          "%s: tg_fraction %r, expected %r" % (tag, ro["tg_fraction"], frac))
    check(0 < ro["tg_fraction"] < 1.5, "%s: tg_fraction %r outside (0, 1.5)" %
          (tag, ro["tg_fraction"]))

    # Probes alongside: one before the first repetition and one after each;
    # repetition r against the better of probes r and r + 1.
    al = j.get("alongside")
    check(isinstance(al, dict) and al.get("passes") == 2, "%s: alongside %r" % (tag, al))
    if failures:
        return
    near = al["probe_best_gbps"]
    check(len(near) == R + 1 and all(positive(v) for v in near),
          "%s: alongside probes %r, expected %d positive figures" % (tag, near, R + 1))
    if failures:
        return
    want = [tg * bpt / (max(near[r], near[r + 1]) * 1e9)
            for r, tg in enumerate(j["tg_tps"]["values"])]
    got = al["tg_fraction"]["values"]
    check(len(got) == R and all(close(g, w, 1e-4) for g, w in zip(got, want)),
          "%s: alongside tg_fraction %r, expected %r" % (tag, got, want))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--work-dir", required=True)
    ap.add_argument("--python", default=sys.executable)
    a = ap.parse_args()
    bench = os.path.join(a.bin_dir, "gemma-bench")
    compile_ = os.path.join(a.bin_dir, "gemma-compile")
    shutil.rmtree(a.work_dir, ignore_errors=True)
    os.makedirs(a.work_dir)
    ckpt = os.path.join(a.work_dir, "ckpt")
    subprocess.run([a.python, MAKE_CKPT, "--out", ckpt, "--pad-rows", str(PAD_ROWS)],
                   check=True, stdout=subprocess.DEVNULL, timeout=60)
    with open(os.path.join(ckpt, "config.json")) as f:
        cfg = json.load(f)
    tensors = safetensors_sizes(os.path.join(ckpt, "model.safetensors"))
    rows, hidden = tensors["model.embed_tokens.weight"][1]

    # The embedding's size from docs/quantization.md: f32 4 bytes a weight; Q8C one byte a
    # weight plus an f32 scale a row.
    cases = [("f32", [], rows * hidden * 4),
             ("q4-embed-q8", ["--quant", "q4", "--keep", "embed=q8"], rows * (hidden + 4))]
    for tag, flags, embed_bytes in cases:
        gmc = os.path.join(a.work_dir, tag + ".gmc")
        subprocess.run([compile_, ckpt, "-o", gmc] + flags, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        # A small probe buffer keeps the test quick; its figure is then partly the
        # cache's, which is fine for checking the arithmetic.
        proc = run_bench(bench, [gmc, "-p", str(P), "-n", str(N), "-r", str(R), "-t", "2",
                                 "--json", "--probe-mib", "64"])
        if proc.returncode != 0:
            failures.append("%s: gemma-bench exited %d: %s" %
                            (tag, proc.returncode, proc.stderr.decode()[-2000:]))
            continue
        try:
            j = json.loads(proc.stdout)
        except ValueError as e:
            failures.append("%s: not JSON (%s): %s" % (tag, e, proc.stdout[:500]))
            continue
        check_report(tag, j, cfg, tensors, embed_bytes)

    gmc = os.path.join(a.work_dir, "f32.gmc")
    usage = [
        ([], "no model given"),
        ([gmc, "-p", "0"], "-p needs an integer >= 1, got '0'"),
        ([gmc, "-r"], "-r needs an integer >= 1, got nothing"),
        ([gmc, "--bogus"], "unknown option --bogus"),
        ([gmc, "-p", "4000", "-n", "100"], "needs a context of 4100 tokens"),
    ]
    for args, want in usage:
        proc = run_bench(bench, args)
        err = proc.stderr.decode("utf-8", "replace")
        check(proc.returncode == 2 and want in err,
              "gemma-bench %s: exit %d, stderr %r; expected 2 and %r" %
              (" ".join(args), proc.returncode, err[:300], want))

    if failures:
        for f in failures:
            sys.stderr.write("FAIL %s\n" % f)
        return 1
    print("gemma-bench smoke: %d modules, %d usage cases OK" % (len(cases), len(usage)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
