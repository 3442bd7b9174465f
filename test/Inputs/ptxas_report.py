#!/usr/bin/env python3
"""Assembles a PTX code object for sm_90a with `ptxas -v` and checks each
kernel's resources.

Usage: ptxas_report.py PTXAS FILE.ptx [--allow-stack SUBSTRING ...]

Prints one line per kernel (entry, threads per block, registers, stack frame
and spill bytes), then a summary. A kernel whose block has more than one
thread (a target-neutral body mapped onto a block: the memory-bound ops)
must use no spill stores or loads and no stack frame (local memory), unless
its name contains an --allow-stack substring, which permits a stack frame
but still no spills. Kernels of one thread per block (the hand-built hot
bodies, placeholders until the tensor-core builders) are reported only.
Exits 1 when a check fails or ptxas fails, naming the kernel and the rule.
"""
import re
import subprocess
import sys


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    ptxas, ptx = argv[1], argv[2]
    allow_stack = []
    rest = argv[3:]
    while rest:
        if rest[0] != "--allow-stack" or len(rest) < 2:
            print(f"ptxas_report.py: unknown argument '{rest[0]}'", file=sys.stderr)
            return 2
        allow_stack.append(rest[1])
        rest = rest[2:]

    with open(ptx) as f:
        text = f.read()
    # Threads per block from each entry's .maxntid directive.
    threads = {}
    for m in re.finditer(r"\.entry (\w+)\((.*?)\)\s*(\.maxntid (\d+), (\d+), (\d+))?",
                         text, re.S):
        n = 1
        if m.group(3):
            n = int(m.group(4)) * int(m.group(5)) * int(m.group(6))
        threads[m.group(1)] = n

    run = subprocess.run([ptxas, "-arch=sm_90a", "-v", ptx, "-o", "/dev/null"],
                         capture_output=True, text=True)
    if run.returncode != 0:
        print(f"ptxas_report.py: {ptxas} failed on {ptx}:\n{run.stderr}",
              file=sys.stderr)
        return 1
    kernels = {}
    name = None
    for line in run.stderr.splitlines():
        m = re.search(r"Compiling entry function '(\w+)'", line)
        if m:
            name = m.group(1)
            kernels[name] = {"stack": 0, "spill": 0, "regs": 0}
            continue
        if name is None:
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, "
                      r"(\d+) bytes spill loads", line)
        if m:
            kernels[name]["stack"] = int(m.group(1))
            kernels[name]["spill"] = int(m.group(2)) + int(m.group(3))
        m = re.search(r"Used (\d+) registers", line)
        if m:
            kernels[name]["regs"] = int(m.group(1))

    failures = []
    threaded = 0
    for name in sorted(kernels, key=lambda n: (len(n), n)):
        k = kernels[name]
        t = threads.get(name, 1)
        print(f"{name} threads {t} registers {k['regs']} stack {k['stack']} "
              f"spill {k['spill']}")
        if t == 1:
            continue
        threaded += 1
        if k["spill"]:
            failures.append(f"{name}: {k['spill']} bytes of spills in a "
                            f"{t}-thread kernel (the rule: none)")
        if k["stack"] and not any(s in name for s in allow_stack):
            failures.append(f"{name}: a {k['stack']}-byte stack frame (local "
                            f"memory) in a {t}-thread kernel (the rule: none)")
    missing = sorted(set(threads) - set(kernels))
    for name in missing:
        failures.append(f"{name}: ptxas reported nothing for it")
    print(f"{len(kernels)} kernels assembled for sm_90a, {threaded} of them "
          f"threaded: {len(failures)} failed")
    for f in failures:
        print(f"ptxas_report.py: {ptx}: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
