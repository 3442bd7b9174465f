"""A stand-in for a launcher that crashes on its first run.

Usage: crash-once.py MARKER CODE. Without MARKER it creates it (if it can),
prints 'crashing' and kills itself with SIGSEGV; with it, it exits CODE.
"""
import os
import signal
import sys

marker, code = sys.argv[1], int(sys.argv[2])
if not os.path.exists(marker):
    try:
        open(marker, "w").close()
    except OSError:
        pass
    print("crashing", flush=True)
    os.kill(os.getpid(), signal.SIGSEGV)
print(f"run 2: exiting {code}", flush=True)
sys.exit(code)
