#!/usr/bin/env python3
"""The malformed-input corpus: one bad input per case, each with the exact
message fragment and exit code the tools must give (README.md lists the
cases and the lit and unit tests that cover the rest).

Every case makes its input from a good one (a tiny checkpoint made by
tools/make-demo-model/make_checkpoint.py and the module compiled from it),
runs one tool and checks: the exit code, no signal and no sanitizer report,
each expected fragment (the file, the field or tensor, what was found and
what was expected) in the output, and, for gemma-compile, that a refused
compile leaves no file behind (a warning-only compile leaves the module).

  run_malformed.py --bin-dir BUILD/bin --bad-abi-plugin libgemmac_bad_abi.so \\
      --work-dir DIR [--case NAME]...
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
MAKE_CHECKPOINT = os.path.join(ROOT, "tools/make-demo-model/make_checkpoint.py")
# The lit tests' checkpoint editor: its safetensors reader and writer.
sys.path.insert(0, os.path.join(ROOT, "test/lit/import/Inputs"))
from edit_checkpoint import read_st, write_st  # noqa: E402

# Seconds a case may take (a release build needs about 1; ASan about 5).
CASE_TIMEOUT = 60

# Reports that mean a crash even when the exit code looks like an error.
CRASH_MARKERS = ("AddressSanitizer", "LeakSanitizer", "ThreadSanitizer",
                 "runtime error:", "Segmentation fault", "terminate called",
                 "Assertion", "Aborted")


# ---- inputs -----------------------------------------------------------------

def edit_config(ckpt, key, value):
    path = os.path.join(ckpt, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg[key] = value
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)


def set_dtype(ckpt, name, dtype):
    st = os.path.join(ckpt, "model.safetensors")
    header, body = read_st(st)
    header[name]["dtype"] = dtype
    write_st(st, header, body)


def poke_f32(ckpt, name, index, value):
    """Writes one f32 element of an F32 tensor."""
    st = os.path.join(ckpt, "model.safetensors")
    header, body = read_st(st)
    begin = header[name]["data_offsets"][0] + 4 * index
    body = body[:begin] + struct.pack("<f", value) + body[begin + 4:]
    write_st(st, header, body)


def truncate(path, keep):
    with open(path, "r+b") as f:
        f.truncate(keep)


def patch(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def gmc_header(path):
    with open(path, "rb") as f:
        raw = f.read(64)
    names = ("magic", "version_major", "version_minor", "program_offset",
             "program_size", "weights_offset", "weights_size", "file_size")
    return dict(zip(names, struct.unpack("<8sIIQQQQQ", raw[:56])))


# ---- cases ------------------------------------------------------------------
#
# Each case: (name, setup(work, case_dir) -> argv, exit code, [fragments],
# output path to check or None, whether the output must exist). Fragments
# may contain {dir} (the case's directory).

def module_copy(work, d, name="bad.gmc"):
    path = os.path.join(d, name)
    shutil.copy(os.path.join(work, "base.gmc"), path)
    return path


def checkpoint_copy(work, d):
    path = os.path.join(d, "ckpt")
    shutil.copytree(os.path.join(work, "base"), path)
    return path


def compile_argv(bins, ckpt, d, *extra):
    return [bins["gemma-compile"], ckpt, "-o", os.path.join(d, "out", "m.gmc"),
            "--quiet"] + list(extra)


def cases(bins, bad_abi, host):
    c = []

    def add(name, rc, fragments, setup, output=None, output_exists=False):
        c.append((name, setup, rc, fragments, output, output_exists))

    def config_case(key, value):
        # A compile of the checkpoint with config.json's key set to value.
        def setup(work, d):
            ck = checkpoint_copy(work, d)
            edit_config(ck, key, value)
            return compile_argv(bins, ck, d)
        return setup

    # Module files (the runtime's loader, through gemma-run and gemma-dump).
    def too_short(work, d):
        p = os.path.join(d, "bad.gmc")
        with open(p, "wb") as f:
            f.write(b"GEMMACMD\x01\x00")
        return [bins["gemma-dump"], p]
    add("gmc_too_short", 1, ["{dir}/bad.gmc: file is 10 bytes; a module "
                             "starts with a 64-byte header"], too_short)

    def truncated(work, d):
        p = module_copy(work, d)
        truncate(p, os.path.getsize(p) // 2)
        return [bins["gemma-run"], p, "-p", "hi", "-n", "1"]
    add("gmc_truncated", 1, ["{dir}/bad.gmc: header.file_size is ",
                             " (truncated)"], truncated)

    def program_past_end(work, d):
        p = module_copy(work, d)
        h = gmc_header(p)
        patch(p, 24, struct.pack("<Q", h["file_size"]))  # program_size
        return [bins["gemma-dump"], p]
    add("gmc_program_size_past_end", 1,
        ["{dir}/bad.gmc: header.program_offset/program_size (",
         "must be an 8-aligned range after the header inside the"],
        program_past_end)

    def newer_major(work, d):
        p = module_copy(work, d)
        patch(p, 8, struct.pack("<II", 2, 0))
        return [bins["gemma-run"], p, "-p", "hi", "-n", "1"]
    add("gmc_newer_major_version", 1,
        ["{dir}/bad.gmc: module version 2.0 is not supported; this runtime "
         "reads 1.x"], newer_major)

    def bad_magic(work, d):
        p = module_copy(work, d)
        patch(p, 0, b"GGUF\x03\x00\x00\x00")
        return [bins["gemma-dump"], p]
    add("gmc_bad_magic", 1, ["{dir}/bad.gmc: bad magic: expected \"GEMMACMD\""],
        bad_magic)

    def fuzz_regression(name):
        # A module the module fuzzer found, kept in
        # test/fuzz/regressions/module/, as gemma-dump reads it.
        def make(work, d):
            p = os.path.join(d, "bad.gmc")
            shutil.copyfile(os.path.join(ROOT, "test/fuzz/regressions/module",
                                         name), p)
            return [bins["gemma-dump"], p]
        return make

    # A tensor's shape vector (int64 elements) at an address aligned to 4
    # bytes only, which the FlatBuffers Verifier lets through.
    add("gmc_misaligned_shape_vector", 1,
        ["{dir}/bad.gmc: tensor ",
         ": shape vector is not 8-byte aligned (its int64 elements must be; "
         "corrupt FlatBuffer)"], fuzz_regression("misaligned-shape.gmc"))
    # An instruction whose outputs field points at its inputs vector, which
    # holds an absent-input id (0xFFFFFFFF). The verifier took the outputs
    # for inputs and let the id through, and the loader then read tensor
    # 0xFFFFFFFF.
    add("gmc_outputs_alias_inputs", 1,
        ["{dir}/bad.gmc: function 'prefill' instruction 11 (QkvProj",
         "tensor id 4294967295 out of range; the module has 57 tensors "
         "(0xFFFFFFFF marks an absent input and cannot be an output)"],
        fuzz_regression("outputs-alias-inputs.gmc"))

    def flatbuffer_garbage(work, d):
        p = module_copy(work, d)
        h = gmc_header(p)
        # Keep the root offset and the "GMC1" identifier, wreck the rest.
        start = h["program_offset"] + 8
        patch(p, start, b"\xff" * min(256, h["program_size"] - 8))
        return [bins["gemma-dump"], p]
    add("gmc_flatbuffer_garbage", 1,
        ["{dir}/bad.gmc: the FlatBuffers program (",
         "fails verification against schema/module.fbs"], flatbuffer_garbage)

    def corrupt_weights(work, d):
        p = module_copy(work, d)
        h = gmc_header(p)
        off = h["weights_offset"] + 16
        with open(p, "r+b") as f:
            f.seek(off)
            b = f.read(1)
            f.seek(off)
            f.write(bytes([b[0] ^ 0x55]))
        return [bins["gemma-run"], p, "-p", "hi", "-n", "1",
                "--verify-weights"]
    add("gmc_weights_checksum", 1,
        ["{dir}/bad.gmc: segment 0 checksum mismatch: stored 0x",
         "(weights corrupted)"], corrupt_weights)

    # Checkpoints (the importer, through gemma-compile; no output may remain).
    def wrong_dtype(work, d):
        ck = checkpoint_copy(work, d)
        set_dtype(ck, "model.norm.weight", "I32")
        return compile_argv(bins, ck, d)
    add("st_wrong_dtype", 1,
        ["{dir}/ckpt/model.safetensors:0:0: error: safetensors tensor "
         "'model.norm.weight', field 'dtype': \"I32\" is not supported, "
         "expected F32, BF16 or F16"], wrong_dtype, output="out/m.gmc")

    def data_cut(work, d):
        ck = checkpoint_copy(work, d)
        st = os.path.join(ck, "model.safetensors")
        truncate(st, os.path.getsize(st) - 1000)
        return compile_argv(bins, ck, d)
    add("st_truncated_data", 1,
        ["{dir}/ckpt/model.safetensors:0:0: error: safetensors tensor '",
         "field 'data_offsets': [", ") lies outside the data section ("],
        data_cut, output="out/m.gmc")

    # The tensors hold 4 heads of 16; the config now claims 8.
    heads_mismatch = config_case("num_attention_heads", 8)
    add("heads_inconsistent_with_tensors", 1,
        ["{dir}/ckpt/model.safetensors:0:0: error: tensor "
         "'model.layers.0.self_attn.q_proj.weight': shape [64, 64] does not "
         "match config.json, expected [128, 64]"],
        heads_mismatch, output="out/m.gmc")

    head_dim_odd = config_case("head_dim", 15)
    add("head_dim_odd", 1,
        ["{dir}/ckpt/config.json:", "error: key 'head_dim': expected an even "
         "number (RoPE pairs dimensions), found 15"],
        head_dim_odd, output="out/m.gmc")

    heads_zero = config_case("num_attention_heads", 0)
    add("heads_zero", 1,
        ["{dir}/ckpt/config.json:", "error: key 'num_attention_heads': "
         "expected an integer >= 1, found 0"], heads_zero, output="out/m.gmc")

    layers_absurd = config_case("num_hidden_layers", 4000000000000)
    # Was an endless loop sizing the layer list (found by reading for the
    # hf_config fuzz target).
    add("layers_absurd", 1,
        ["{dir}/ckpt/config.json:", "error: key 'num_hidden_layers': expected "
         "at most 4096, found 4000000000000"], layers_absurd,
        output="out/m.gmc")

    def shape_wraps(work, d):
        ck = checkpoint_copy(work, d)
        st = os.path.join(ck, "model.safetensors")
        header, body = read_st(st)
        # 2^62 f32 elements are 2^64 bytes, which wraps to the 0-byte range.
        header["model.norm.weight"]["shape"] = [1 << 62, 1]
        begin = header["model.norm.weight"]["data_offsets"][0]
        header["model.norm.weight"]["data_offsets"] = [begin, begin]
        write_st(st, header, body)
        return compile_argv(bins, ck, d)
    add("st_shape_size_wraps", 1,
        ["{dir}/ckpt/model.safetensors:0:0: error: safetensors tensor "
         "'model.norm.weight', field 'shape': too many elements"],
        shape_wraps, output="out/m.gmc")

    def config_not_json(work, d):
        ck = checkpoint_copy(work, d)
        with open(os.path.join(ck, "config.json"), "w") as f:
            f.write('{"model_type": "gemma3_text", "hidden_size": 64,')
        return compile_argv(bins, ck, d)
    add("config_not_json", 1, ["{dir}/ckpt/config.json:", "invalid JSON"],
        config_not_json, output="out/m.gmc")

    def nan_weights(work, d):
        ck = checkpoint_copy(work, d)
        poke_f32(ck, "model.norm.weight", 3, float("nan"))
        poke_f32(ck, "model.norm.weight", 5, float("inf"))
        return compile_argv(bins, ck, d)
    # Policy (docs/robustness.md): float weights are stored as they are, with
    # a warning naming the tensor, the file, the count and the first index.
    add("nan_inf_weights_warn", 0,
        ["{dir}/ckpt/model.safetensors:0:0: warning: weight "
         "'model.norm.weight' has 2 non-finite value(s) (NaN or Inf) as f32, "
         "the first at element 3; stored as is, expected finite weights"],
        nan_weights, output="out/m.gmc", output_exists=True)

    def nan_quantized(work, d):
        ck = checkpoint_copy(work, d)
        poke_f32(ck, "model.layers.0.mlp.up_proj.weight", 70, float("nan"))
        return compile_argv(bins, ck, d, "--quant", "q8")
    # A quantized weight cannot hold a NaN (its row scale would be NaN).
    add("nan_weights_quantized_refused", 1,
        ["error: 'gemma.weight' op weight 'model.layers.0.mlp.up_proj.weight' "
         "has a non-finite value (nan) at [1, 6]; it cannot be stored as q8c"],
        nan_quantized, output="out/m.gmc")

    # Sessions and plugins (gemma-run on the good module).
    def long_prompt(work, d):
        return [bins["gemma-run"], os.path.join(work, "base.gmc"), "--ctx", "8",
                "-p", "a prompt that is much longer than eight tokens of context",
                "-n", "1"]
    add("prompt_longer_than_context", 1,
        ["context full: the session holds 0 of 8 tokens",
         "(create the session with a larger context length)"], long_prompt)

    def ctx_over_max(work, d):
        return [bins["gemma-run"], os.path.join(work, "base.gmc"), "--ctx",
                "100000000", "-p", "hi", "-n", "1"]
    add("context_over_max_context", 1,
        ["base.gmc: context length 100000000 exceeds the model's max_context "
         "2048 (it would need "], ctx_over_max)

    def empty_prompt(work, d):
        return [bins["gemma-run"], os.path.join(work, "base.gmc"), "--raw",
                "-p", "", "-n", "2", "--temp", "0"]
    # Not an error: an empty raw prompt is BOS alone, a valid prompt (the C
    # API refuses to generate from a session with nothing appended).
    add("empty_prompt_is_bos", 0, [], empty_prompt)

    def wrong_abi(work, d):
        return [bins["gemma-run"], os.path.join(work, "base.gmc"), "-p", "hi",
                "-n", "1", "--plugin", bad_abi]
    add("plugin_wrong_abi", 1,
        ["plugin " + bad_abi + " speaks ABI 2.0; this runtime speaks "],
        wrong_abi)

    def missing_plugin(work, d):
        return [bins["gemma-run"], os.path.join(work, "base.gmc"), "-p", "hi",
                "-n", "1", "--plugin", os.path.join(d, "nothing.so")]
    add("plugin_missing", 1, ["plugin {dir}/nothing.so: cannot load: "],
        missing_plugin)

    def c_api(work, d):
        # Every bad module the cases above made, then the good one.
        bad = sorted(os.path.join(work, n, "bad.gmc") for n in os.listdir(work)
                     if os.path.isfile(os.path.join(work, n, "bad.gmc")))
        # Corrupt weights load (checksums are opt-in) and fail the check.
        bad = ["checksum=" + p if "checksum" in p else p for p in bad]
        return [host, os.path.join(work, "base.gmc")] + bad
    # Last, so that every gmc_* case has left its module behind.
    add("c_api_host_survives", 0,
        ["refused context 100000000: ", "refused generate on an empty "
         "session: generate: the session is empty; append a prompt first",
         "refused 64 tokens into a context of 16: ", "host alive"], c_api)
    return c


# ---- driver -----------------------------------------------------------------

def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          errors="replace", **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--bad-abi-plugin", required=True)
    ap.add_argument("--host", required=True,
                    help="gemmac_host_survives (host_survives.c)")
    ap.add_argument("--work-dir", required=True)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--case", action="append", help="run only these")
    args = ap.parse_args()
    bins = {t: os.path.join(args.bin_dir, t)
            for t in ("gemma-compile", "gemma-run", "gemma-dump")}
    work = os.path.abspath(args.work_dir)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)

    # The good inputs every case starts from.
    r = run([args.python, MAKE_CHECKPOINT, "--out", os.path.join(work, "base"),
             "--layers", "1"])
    if r.returncode != 0:
        sys.exit("malformed: make_checkpoint.py failed:\n" + r.stdout)
    r = run([bins["gemma-compile"], os.path.join(work, "base"), "-o",
             os.path.join(work, "base.gmc"), "--quiet"])
    if r.returncode != 0:
        sys.exit("malformed: compiling the good checkpoint failed:\n" + r.stdout)

    failures, ran = [], 0
    for name, setup, rc, fragments, output, output_exists in cases(
            bins, os.path.abspath(args.bad_abi_plugin),
            os.path.abspath(args.host)):
        if args.case and name not in args.case:
            continue
        ran += 1
        d = os.path.join(work, name)
        os.makedirs(os.path.join(d, "out"))
        argv = setup(work, d)
        problems = []
        try:
            r = run(argv, timeout=CASE_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            out = e.output or ""
            r = subprocess.CompletedProcess(
                argv, 0, out if isinstance(out, str) else out.decode())
            problems.append("still running after %d s (killed)" % CASE_TIMEOUT)
        if problems:
            pass
        elif r.returncode < 0:
            problems.append("killed by signal %d" % -r.returncode)
        elif r.returncode != rc:
            problems.append("exit code %d, expected %d" % (r.returncode, rc))
        for marker in CRASH_MARKERS:
            if marker in r.stdout:
                problems.append("output shows a crash (%r)" % marker)
        for fragment in fragments:
            fragment = fragment.replace("{dir}", d)
            if fragment not in r.stdout:
                problems.append("missing message fragment: %s" % fragment)
        if output is not None:
            out_dir = os.path.dirname(os.path.join(d, output))
            left = sorted(os.listdir(out_dir))
            want = [os.path.basename(output)] if output_exists else []
            if left != want:
                problems.append("%s holds %s, expected %s" %
                                (out_dir, left or "nothing", want or "nothing"))
        status = "ok" if not problems else "FAIL"
        print("%-34s %s" % (name, status))
        if problems:
            failures.append(name)
            print("  command: " + " ".join(argv))
            for p in problems:
                print("  " + p)
            print("  output:\n    " + r.stdout.strip().replace("\n", "\n    "))
    print("malformed: %d of %d cases passed" % (ran - len(failures), ran))
    sys.exit(1 if failures or ran == 0 else 0)


if __name__ == "__main__":
    main()
