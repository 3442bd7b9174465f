"""Runs a command and fails unless it exits with the given code.

Usage: exit_code.py CODE COMMAND [ARG]...   (the command's output passes through)
"""
import subprocess
import sys

want = int(sys.argv[1])
got = subprocess.run(sys.argv[2:]).returncode
print(f"exit code {got}")
sys.exit(0 if got == want else 1)
