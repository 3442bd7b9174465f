#!/usr/bin/env python3
"""Rewrites a safetensors checkpoint the way other tools lay them out, with
an independent writer (plain Python, no project code): tensors ordered as the
Python safetensors library does (wider dtypes first, so every tensor stays
aligned without gaps) but by reverse name within a dtype, the header padded with trailing spaces to a different length,
a __metadata__ map, and N shards with a model.safetensors.index.json whose
weight_map lists shards in a shuffled order. The bytes of every tensor are
unchanged, so a model must produce identical logits with either copy.

usage: reshard.py SRC_DIR DST_DIR SHARDS
"""
import json
import os
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    return {k: (v["dtype"], v["shape"],
                data[base + v["data_offsets"][0]:base + v["data_offsets"][1]])
            for k, v in header.items()}


def load(src):
    index = os.path.join(src, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
    else:
        shards = ["model.safetensors"]
    tensors = {}
    for s in shards:
        tensors.update(read(os.path.join(src, s)))
    return tensors


def write(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt", "writer": "reshard.py"}}, [], 0
    width = {"I64": 8, "F32": 4, "I32": 4, "BF16": 2, "F16": 2}
    # Wider dtypes first (no gaps, all aligned), reverse name order inside.
    order = sorted(tensors, reverse=True)
    order.sort(key=lambda k: -width.get(tensors[k][0], 1))
    for name in order:
        dtype, shape, blob = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    # The data section must start right after the header; pad it with spaces
    # to a multiple of 8 plus some slack a different writer might add.
    text = json.dumps(header, separators=(", ", ": ")).encode()
    text += b" " * ((-(8 + len(text))) % 8 + 16)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tensors = load(src)
    os.makedirs(dst, exist_ok=True)
    names = sorted(tensors, reverse=True)
    weight_map = {}
    for i in range(n):
        part = {k: tensors[k] for k in names[i::n]}
        shard = "part-%d-of-%d.safetensors" % (i + 1, n)
        write(os.path.join(dst, shard), part)
        weight_map.update({k: shard for k in part})
    total = sum(len(b) for _, _, b in tensors.values())
    with open(os.path.join(dst, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total},
                   "weight_map": dict(sorted(weight_map.items(), key=lambda kv: kv[1]))},
                  f, indent=1)


if __name__ == "__main__":
    main()
