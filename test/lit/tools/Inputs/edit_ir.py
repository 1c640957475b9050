"""Breaks planned gemma IR (from gemma-compile --compile-to=planned) in one
way, for the emitter's error tests:  edit_ir.py IN OUT COMMAND

  weight-past-eof    the embedding's offset points past its file's end
  drop-arena-offset  the first gemma.rms_norm loses its gemma.arena_offset
  no-tokenizer       gemma.tokenizer names a file that does not exist
"""
import re
import sys

src, dst, cmd = sys.argv[1:4]
text = open(src).read()
if cmd == "weight-past-eof":
    text = re.sub(r'("model\.embed_tokens\.weight" \{file = "[^"]*", offset = )\d+', r"\g<1>999999999", text)
elif cmd == "drop-arena-offset":
    text = re.sub(r"(gemma\.rms_norm [^{]*)\{gemma\.arena_offset = \d+ : i64\}", r"\1", text, count=1)
elif cmd == "no-tokenizer":
    text = re.sub(r'gemma\.tokenizer = "[^"]*"', 'gemma.tokenizer = "/nonexistent/tokenizer.model"', text, count=1)
else:
    sys.exit("unknown command " + cmd)
open(dst, "w").write(text)
