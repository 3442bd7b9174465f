"""Checks v4-run --profile's tables: each table's shares add up to 100%
(0.1% per row of rounding), its ms/call add up to the steps' time per call
(1e-4 ms per row), and the rows come most time first."""
import re
import sys

text = open(sys.argv[1]).read().splitlines()
tables = 0
i = 0
while i < len(text):
    head = re.match(r"profile: .*: (\d+) calls, ([0-9.]+) ms per call, of "
                    r"which the steps ([0-9.]+) ms", text[i])
    if not head:
        i += 1
        continue
    tables += 1
    call, steps = float(head.group(2)), float(head.group(3))
    assert steps <= call + 1e-4, (steps, call)
    i += 2  # the column header
    shares, times = [], []
    while i < len(text) and text[i].startswith("  "):
        fields = text[i].split()
        shares.append(float(fields[-1].rstrip("%")))
        times.append(float(fields[-2]))
        i += 1
    assert abs(sum(shares) - 100.0) <= 0.1 * len(shares), shares
    assert abs(sum(times) - steps) <= 1e-4 * len(times) + 1e-3, (times, steps)
    kernels = times[:-1] if text[i - 1].split()[0].startswith("(") else times
    assert kernels == sorted(kernels, reverse=True), kernels
assert tables == 2, tables
print("ok:", tables, "tables")
