#!/usr/bin/python3
"""Smoke test of gemma-kld's command line: usage errors, missing and empty files.

    kld_cli_test.py BUILD/bin/gemma-kld

Needs no module (every case fails before one is loaded, or on a missing one), so it
runs in a fraction of a second. Each case: arguments, expected exit status, a piece
of text stderr (or stdout, for --help) must contain. Exit status 0 when all pass.
"""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TEXT = os.path.join(HERE, "quality_text.txt")


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: kld_cli_test.py PATH/TO/gemma-kld\n")
        return 2
    kld = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        empty = os.path.join(tmp, "empty.txt")
        open(empty, "w").close()
        missing = os.path.join(tmp, "missing.txt")
        missing_gmc = os.path.join(tmp, "missing.gmc")
        cases = [
            ([], 2, "expected two modules (REF.gmc TEST.gmc), got 0"),
            (["a.gmc", "b.gmc", "--text", TEXT, "--bogus"], 2, "unknown option --bogus"),
            (["a.gmc", "b.gmc", "c.gmc", "--text", TEXT], 2, "got 3"),
            (["a.gmc", "b.gmc"], 2, "no text given: pass --text FILE"),
            (["a.gmc", "b.gmc", "--text"], 2, "--text needs a value"),
            (["a.gmc", "b.gmc", "--text", TEXT, "--ctx", "abc"], 2,
             "--ctx needs an integer >= 4, got 'abc'"),
            (["a.gmc", "b.gmc", "--text", TEXT, "--ctx", "3"], 2, "--ctx needs an integer"),
            (["a.gmc", "b.gmc", "--text", TEXT, "--threads", "-1"], 2,
             "--threads needs an integer >= 0"),
            (["a.gmc", "b.gmc", "--text", missing], 1,
             missing + ": cannot open the text file"),
            (["a.gmc", "b.gmc", "--text", tmp], 1, tmp + ": is a directory"),
            (["a.gmc", "b.gmc", "--text", empty], 1, empty + ": the text file is empty"),
            ([missing_gmc, missing_gmc, "--text", TEXT], 1, missing_gmc),
            # A text file given as a module: the loader names it and what it expected.
            ([TEXT, TEXT, "--text", TEXT], 1, TEXT + ": bad magic"),
            (["--help"], 0, "usage: gemma-kld REF.gmc TEST.gmc --text FILE"),
        ]
        failed = 0
        for args, rc, want in cases:
            proc = subprocess.run([kld] + args, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=30)
            out = proc.stdout.decode("utf-8", "replace")
            err = proc.stderr.decode("utf-8", "replace")
            where = out if rc == 0 else err
            if proc.returncode != rc or want not in where:
                failed += 1
                sys.stderr.write("FAIL gemma-kld %s\n  exit %d (expected %d)\n  expected "
                                 "%s to contain: %s\n  stdout: %s\n  stderr: %s\n" %
                                 (" ".join(args), proc.returncode, rc,
                                  "stdout" if rc == 0 else "stderr", want, out[:500],
                                  err[:500]))
    if failed:
        sys.stderr.write("%d of %d gemma-kld CLI cases failed\n" % (failed, len(cases)))
        return 1
    print("gemma-kld CLI: %d cases OK" % len(cases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
