"""gemma-run and gemma-dump end to end on the runtime tests' tiny module,
run on the reference test plugin. Checks the flags the e2e tests rely on
(--raw --temp 0 --json --dump-logits), error exits, and gemma-dump output."""
import argparse
import json
import os
import subprocess
import sys

import numpy as np


def run(cmd, env=None, ok=True, stdin=None):
    p = subprocess.run(cmd, capture_output=True, env=env, input=stdin, timeout=120)
    if ok and p.returncode != 0:
        sys.exit("FAIL: %s exited %d\n%s" % (cmd, p.returncode, p.stderr.decode()))
    if not ok and p.returncode == 0:
        sys.exit("FAIL: %s should have failed" % cmd)
    if p.returncode < 0:
        sys.exit("FAIL: %s crashed (signal %d)" % (cmd, -p.returncode))
    return p


def check(cond, msg):
    if not cond:
        sys.exit("FAIL: " + msg)


def main():
    ap = argparse.ArgumentParser()
    for a in ("--writer", "--run", "--dump", "--plugin", "--work"):
        ap.add_argument(a, required=True)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    model = os.path.join(args.work, "tiny.gmc")
    run([args.writer, model])
    plugin = ["--plugin", args.plugin]

    # The e2e tests' exact command line.
    npy = os.path.join(args.work, "logits.npy")
    p = run([args.run, model, "-p", "Once upon a time", "--raw", "-n", "8",
             "--temp", "0", "--json", "--dump-logits", npy] + plugin)
    out = json.loads(p.stdout.decode())
    check(out["prompt_ids"][0] == 2, "prompt starts with BOS: %s" % out)
    check(1 <= len(out["generated_ids"]) <= 8, "generated ids: %s" % out)
    logits = np.load(npy)
    check(logits.dtype == np.float32, "npy dtype %s" % logits.dtype)
    check(logits.shape == (len(out["prompt_ids"]), 400), "npy shape %s" % (logits.shape,))
    # Greedy: the first generated token is the argmax of the last prompt row.
    check(int(np.argmax(logits[-1])) == out["generated_ids"][0],
          "first generated id %d vs argmax %d" % (out["generated_ids"][0],
                                                 int(np.argmax(logits[-1]))))
    # Deterministic.
    p2 = run([args.run, model, "-p", "Once upon a time", "--raw", "-n", "8",
              "--temp", "0", "--json"] + plugin)
    check(json.loads(p2.stdout.decode()) == out, "greedy runs differ")

    # The same plugin found through GEMMAC_PLUGIN_PATH (the bad-ABI plugin
    # beside it is skipped with a warning).
    env = dict(os.environ, GEMMAC_PLUGIN_PATH=os.path.dirname(args.plugin))
    p3 = run([args.run, model, "-p", "Once upon a time", "--raw", "-n", "8",
              "--temp", "0", "--json", "--stats"], env=env)
    check(json.loads(p3.stdout.decode()) == out, "plugin path run differs")
    check(b"speaks ABI 2.0" in p3.stderr, "no warning for the bad plugin")
    check(b"tokens/s" in p3.stderr and b"KV cache" in p3.stderr, "stats missing")

    # Chat format, streaming, and the interactive loop.
    run([args.run, model, "-p", "Hi", "-n", "4", "--system", "Be brief",
         "--temp", "0.7", "--top-k", "20", "--top-p", "0.9", "--seed", "3"] + plugin)
    p4 = run([args.run, model, "--chat", "-n", "3"] + plugin,
             stdin=b"hello\nand again\n")
    check(p4.stdout.count(b"\n") >= 2, "chat printed %r" % p4.stdout)
    run([args.run, model, "-p", "x", "--verify-weights", "-n", "1"] + plugin)

    # Errors: message and non-zero exit, never a crash.
    e = run([args.run, os.path.join(args.work, "missing.gmc"), "-p", "x"] + plugin, ok=False)
    check(b"missing.gmc" in e.stderr, "missing model message: %r" % e.stderr)
    e = run([args.run, model, "-p", "x", "--ctx", "100000"] + plugin, ok=False)
    check(b"max_context" in e.stderr, "ctx message: %r" % e.stderr)
    e = run([args.run, model, "-p", "x", "--bogus"] + plugin, ok=False)
    e = run([args.run, model, "-p", "x", "--plugin", "/nonexistent/libgemmac_x.so"], ok=False)
    check(b"/nonexistent/libgemmac_x.so" in e.stderr, "plugin message")
    garbage = os.path.join(args.work, "garbage.gmc")
    with open(garbage, "wb") as f:
        f.write(b"GEMMACMD" + os.urandom(5000))
    run([args.run, garbage, "-p", "x"] + plugin, ok=False)
    run([args.dump, garbage], ok=False)

    # gemma-dump.
    d = run([args.dump, model, "--instructions"]).stdout.decode()
    for s in ("version 1.1", "Gemma3ForCausalLM", "400 pieces", "prefill: max_tokens 8",
              "Attention(", "window 4, ring of 11", "weight bf16",
              "quantization: (not recorded)", "required features: (none)",
              "sliding window 4 (ring of 11): 1 layer, f32, kv heads 1 x head_dim 8, "
              "64 bytes per position, 704 bytes per layer",
              "global (context length): 1 layer, f32, kv heads 1 x head_dim 8, "
              "64 bytes per position, 64 bytes per layer per token of context"):
        check(s in d, "gemma-dump lacks %r:\n%s" % (s, d))
    dj = json.loads(run([args.dump, model, "--json", "--instructions"]).stdout)
    check(dj["config"]["hidden_size"] == 16, "dump json config")
    check(dj["functions"][0]["code"][0]["op"] == "Embed", "dump json code")
    check(dj["version"] == "1.1" and dj["required_features"] == [], "dump json header")
    check([k["dtype"] for k in dj["kv_plan"]] == ["f32", "f32"], "dump json kv plan")

    # Module format 1.1: fused ops, q4g32 projections with a q8c embedding,
    # int8 KV caches and a prefill that returns only the last row.
    new = os.path.join(args.work, "tiny_q4_fused.gmc")
    run([args.writer, new, "--quant", "q4g32", "--kv-i8", "--prefill-logits-last"])
    d = run([args.dump, new, "--instructions"]).stdout.decode()
    for s in ("quantization: q4g32, embed=q8c",
              "required features: op:qkv_proj, op:add_rms_norm, op:gated_mlp, "
              "op:final_head, dtype:q4g32, dtype:q8c, kv:i8",
              "weight q4g32", "weight q8c", "QkvProj(", "GatedMlp(", "FinalHead(",
              "AddRmsNorm(", "embed: q8c[403,32]", "l0.q: q4g32[32,32]",
              "-> logits.last: f32[1,400]",
              # layer 1 gets its input norm from add_rms_norm: `norm` absent.
              "QkvProj(l0.next_input_norm.out: f32[T,32], -, ",
              "sliding window 4 (ring of 11): 1 layer, "
              "i8 (+ f32 scale per position and head), kv heads 1 x head_dim 16, "
              "40 bytes per position, 440 bytes per layer",
              "global (context length): 1 layer, i8",
              "0: window 4, ring of 11, kv heads 1, head_dim 16, i8"):
        check(s in d, "gemma-dump lacks %r:\n%s" % (s, d))
    dj = json.loads(run([args.dump, new, "--json", "--instructions"]).stdout)
    check(dj["quantization"] == "q4g32, embed=q8c", "dump json quantization")
    check("kv:i8" in dj["required_features"], "dump json features")
    check(all(k["dtype"] == "i8" for k in dj["kv_layers"]), "dump json kv dtype")
    qkv = [c for c in dj["functions"][0]["code"] if c["op"] == "QkvProj"]
    check(qkv[1]["inputs"][1] is None, "absent input in json: %s" % qkv[1])

    # Generation works on it (greedy, deterministic) ...
    p = run([args.run, new, "-p", "Once upon a time", "--raw", "-n", "6",
             "--temp", "0", "--json", "--stats"] + plugin)
    out_new = json.loads(p.stdout.decode())
    check(1 <= len(out_new["generated_ids"]) <= 6, "q4 generated ids: %s" % out_new)
    check(b"KV cache" in p.stderr, "stats missing")
    p2 = run([args.run, new, "-p", "Once upon a time", "--raw", "-n", "6",
              "--temp", "0", "--json"] + plugin)
    check(json.loads(p2.stdout.decode()) == out_new, "q4 greedy runs differ")
    # ... but every prompt position's logits cannot be dumped from it.
    e = run([args.run, new, "-p", "x", "--raw", "-n", "1", "--dump-logits",
             os.path.join(args.work, "no.npy")] + plugin, ok=False)
    check(b"--dump-logits" in e.stderr and b"--prefill-logits=last" in e.stderr,
          "dump-logits message: %r" % e.stderr)
    check(not os.path.exists(os.path.join(args.work, "no.npy")), "npy written")

    # A fused f32 module gives the same greedy tokens as the unfused one.
    fused = os.path.join(args.work, "tiny_fused.gmc")
    run([args.writer, fused, "--fused"])
    p = run([args.run, fused, "-p", "Once upon a time", "--raw", "-n", "8",
             "--temp", "0", "--json", "--dump-logits", npy] + plugin)
    check(json.loads(p.stdout.decode()) == out, "fused greedy run differs")
    check(np.allclose(np.load(npy), logits, atol=3e-4), "fused logits differ")
    print("ok")


if __name__ == "__main__":
    main()
