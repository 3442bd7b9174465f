# Runs a command and succeeds iff it exits with the expected code:
#   exit-code.py CODE COMMAND ARGS...
import subprocess
import sys

code = subprocess.call(sys.argv[2:])
if code != int(sys.argv[1]):
    sys.stderr.write("expected exit code %s, got %d\n" % (sys.argv[1], code))
    sys.exit(1)
