"""Checks of v4-run's text mode that need the output of one run to build
the next (lit's shell has no command substitution).

  text-check.py ids V4RUN V4TOKENIZE TOKDIR MODEL CKPT PROMPT N [FLAGS...]
      runs --prompt, then --prompt-ids with the same ids (BOS + text) and
      checks that the streamed text equals the decoded ids up to EOS.
  text-check.py stop V4RUN TOKDIR MODEL CKPT PROMPT N
      runs --prompt, picks a stop string from the middle of its text, runs
      again with --stop and checks the text ends just before it.
"""
import json
import subprocess
import sys


def run(args, stdin=b""):
    p = subprocess.run(args, input=stdin, capture_output=True)
    if p.returncode != 0:
        sys.exit(f"{args}: exit {p.returncode}: {p.stderr.decode()}")
    return p.stdout, p.stderr.decode()


def main():
    mode = sys.argv[1]
    if mode == "ids":
        v4run, v4tok, tokdir, model, ckpt, prompt, n = sys.argv[2:9]
        flags = sys.argv[9:]
        text, err = run([v4run, model, "--checkpoint", ckpt, "--tokenizer",
                         tokdir, "--prompt", prompt, "--max-new-tokens", n]
                        + flags)
        ids, _ = run([v4tok, tokdir, "--bos"], prompt.encode())
        ids = json.loads(ids)
        out, _ = run([v4run, model, "--checkpoint", ckpt, "--prompt-ids",
                      ",".join(map(str, ids)), "--max-new-tokens", n] + flags)
        line = [l for l in out.decode().splitlines()
                if l.startswith("generated:")][0]
        gen = [int(x) for x in line.split()[1:]]
        if 1 in gen:  # EOS of the tiny configs
            gen = gen[:gen.index(1)]
        decoded, _ = run([v4tok, tokdir, "--decode"], json.dumps(gen).encode())
        if decoded != text:
            sys.exit(f"streamed {text!r} != decoded {decoded!r}")
        print(f"ids: {len(gen)} tokens, text {len(text)} bytes, equal; "
              + [l for l in err.splitlines() if l.startswith("stop:")][0])
    elif mode == "stop":
        v4run, tokdir, model, ckpt, prompt, n = sys.argv[2:8]
        base = [v4run, model, "--checkpoint", ckpt, "--tokenizer", tokdir,
                "--prompt", prompt, "--max-new-tokens", n]
        text, _ = run(base)
        stop = text[len(text) // 2:len(text) // 2 + 2].decode()
        cut, err = run(base + ["--stop", stop])
        want = text[:text.find(stop.encode())]
        if cut != want:
            sys.exit(f"--stop {stop!r}: {cut!r} != {want!r}")
        print("stop: " + [l for l in err.splitlines()
                          if l.startswith("stop:")][0])


if __name__ == "__main__":
    main()
