#!/usr/bin/env python3
"""Checks that every verifier rule of the v4 dialect has a negative test.

Every diagnostic a v4 verifier emits ends with a rule label such as
`[moe_gate_c2]` (docs/DIALECT.md). This script collects the labels used in
dialects/V4/*.cpp (bracketed in a message, or a string handed to a helper) and requires each to appear in an `expected-error` of some
test/dialects/V4/invalid-*.mlir file. It also flags labels that tests expect
but no verifier emits (a stale test). Exit 1 with the list on failure.
"""
import pathlib
import re
import sys

LABEL = re.compile(r"\[([a-z][a-z0-9_]*_c[0-9]+)\]")
# Labels handed to the shared helpers of V4Verification.h as plain strings.
QUOTED = re.compile(r"\"\[?([a-z][a-z0-9_]*_c[0-9]+)\]?\"")


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    emitted = {}
    for src in sorted((root / "dialects" / "V4").glob("*.cpp")):
        for lineno, line in enumerate(src.read_text().splitlines(), 1):
            for label in LABEL.findall(line) + QUOTED.findall(line):
                emitted.setdefault(label, f"{src.relative_to(root)}:{lineno}")
    tested = set()
    for test in sorted((root / "test" / "dialects" / "V4").glob("invalid-*.mlir")):
        for line in test.read_text().splitlines():
            if "expected-error" in line:
                tested.update(LABEL.findall(line))
    missing = sorted(set(emitted) - tested)
    stale = sorted(tested - set(emitted))
    for label in missing:
        print(f"error: rule [{label}] ({emitted[label]}) has no invalid-*.mlir case")
    for label in stale:
        print(f"error: tests expect rule [{label}] but no verifier emits it")
    print(f"{len(emitted)} rules, {len(emitted) - len(missing)} covered")
    return 1 if missing or stale else 0


if __name__ == "__main__":
    sys.exit(main())
