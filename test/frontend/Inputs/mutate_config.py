"""Writes a copy of a config.json with keys changed: KEY=JSON sets, -KEY drops.

Usage: mutate_config.py SRC OUT [KEY=JSON | -KEY]...
"""
import json
import sys

src, out, edits = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(src) as f:
    config = json.load(f)
for edit in edits:
    if edit.startswith("-"):
        del config[edit[1:]]
    else:
        key, value = edit.split("=", 1)
        config[key] = json.loads(value)
with open(out, "w") as f:
    json.dump(config, f, indent=2)
