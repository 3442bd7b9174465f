"""Checks that a command's memory on a large input stays within a multiple
of the input's size (issue 16: an input at its format's cap costs at most
4x its size before its error).

Usage: peak_rss.py --ratio R --baseline SMALL --input BIG -- CMD... with {}
  for the input path. Runs CMD on SMALL and on BIG, each in its own child
  (peak RSS from wait4), prints both and the ratio of the growth to BIG's
  size, and exits 1 when the growth exceeds R x size.
"""
import argparse
import os
import subprocess
import sys


def peak_kib(cmd, path):
    argv = [path if a == "{}" else a for a in cmd]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    return usage.ru_maxrss, os.waitstatus_to_exitcode(status)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ratio", type=float, required=True)
    p.add_argument("--baseline", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    a = p.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    base, _ = peak_kib(cmd, a.baseline)
    big, code = peak_kib(cmd, a.input)
    size_kib = os.path.getsize(a.input) / 1024.0
    ratio = max(0, big - base) / size_kib
    print(f"peak {big} KiB, baseline {base} KiB, input {size_kib:.0f} KiB, "
          f"growth {ratio:.2f}x the input (limit {a.ratio}x), exit {code}")
    sys.exit(0 if ratio <= a.ratio else 1)


main()
