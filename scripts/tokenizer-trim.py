#!/usr/bin/env python3
"""Trims a byte-level BPE tokenizer.json to its first N merges.

The result is a smaller tokenizer of the same family: every byte-level
character, the first N merges and the tokens they produce, and the added
tokens, renumbered densely in the original id order (added tokens last).
Its pre-tokenizer, decoder and the rest are kept as they are, so it
exercises the same pipeline at a fraction of the size.

  scripts/tokenizer-trim.py IN/tokenizer.json OUT/tokenizer.json --merges 12000
"""
import argparse
import json


def bytes_to_unicode():
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--merges", type=int, default=12000)
    args = ap.parse_args()

    with open(args.input, encoding="utf-8") as f:
        tok = json.load(f)
    model = tok["model"]
    vocab = model["vocab"]
    merges = model["merges"][: args.merges]
    pairs = [m.split(" ") if isinstance(m, str) else m for m in merges]

    keep = set(bytes_to_unicode())
    for a, b in pairs:
        keep.update((a, b, a + b))
    missing = [t for t in keep if t not in vocab]
    if missing:
        raise SystemExit(f"tokens not in the vocab: {missing[:5]}")
    ordered = sorted(keep, key=lambda t: vocab[t])
    new_vocab = {t: i for i, t in enumerate(ordered)}
    next_id = len(new_vocab)
    added = []
    for a in tok.get("added_tokens", []):
        a = dict(a)
        if a["content"] in new_vocab:
            a["id"] = new_vocab[a["content"]]
        else:
            a["id"] = next_id
            next_id += 1
        added.append(a)

    model["vocab"] = new_vocab
    model["merges"] = [" ".join(p) for p in pairs]
    tok["added_tokens"] = added
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"{args.output}: {len(new_vocab)} vocab entries, {len(pairs)} merges, "
          f"{len(added)} added tokens")


if __name__ == "__main__":
    main()
