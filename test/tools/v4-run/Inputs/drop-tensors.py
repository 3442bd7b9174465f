#!/usr/bin/env python3
"""Writes a copy of a single-file safetensors checkpoint without the
tensors whose names match a regular expression (re.search), as a rank's
own slice of a checkpoint would be: the bytes of every kept tensor are
unchanged, laid out in the source order. Plain Python, no project code.

usage: drop-tensors.py SRC.safetensors DST.safetensors REGEX
"""
import json
import re
import struct
import sys


def main():
    src, dst, pattern = sys.argv[1:4]
    with open(src, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    meta = header.pop("__metadata__", None)
    kept = sorted((v["data_offsets"][0], k, v) for k, v in header.items()
                  if not re.search(pattern, k))
    out_header = {} if meta is None else {"__metadata__": meta}
    blobs, at = [], 0
    for _, name, v in kept:
        blob = data[base + v["data_offsets"][0]:base + v["data_offsets"][1]]
        out_header[name] = {"dtype": v["dtype"], "shape": v["shape"],
                            "data_offsets": [at, at + len(blob)]}
        blobs.append(blob)
        at += len(blob)
    text = json.dumps(out_header).encode()
    text += b" " * (-len(text) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    print("kept %d of %d tensors" % (len(kept), len(header)), file=sys.stderr)


if __name__ == "__main__":
    main()
