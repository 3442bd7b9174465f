"""Runs a command and fails unless it exits with the given code.

Usage: exit_code.py [--launcher] CODE COMMAND [ARG]...
(the command's output passes through)

--launcher: COMMAND is a job launcher (mpirun) whose exit status reports its
ranks'. When the launcher itself dies of a signal, that report is lost, not
wrong: Open MPI 4.1's mpirun sometimes crashes in PMIx_server_finalize while
it tears down a job that called MPI_Abort. Then the job runs again, at most
three times in all, and only the last run's output passes through. A rank
that dies of a signal is reported by a launcher that exits normally, so this
never hides a crash of the program under test.
"""
import subprocess
import sys

args = sys.argv[1:]
launcher = args[:1] == ["--launcher"]
if launcher:
    args = args[1:]
want = int(args[0])
command = args[1:]

if not launcher:
    got = subprocess.run(command).returncode
else:
    for attempt in range(1, 4):
        run = subprocess.run(command, capture_output=True)
        got = run.returncode
        if got >= 0 or attempt == 3:
            break
        sys.stderr.write(
            f"exit_code.py: the launcher itself died of signal {-got} "
            f"(attempt {attempt}); its report of the job is lost, so the "
            f"job runs again\n")
    sys.stdout.buffer.write(run.stdout)
    sys.stdout.flush()
    sys.stderr.buffer.write(run.stderr)
    sys.stderr.flush()
print(f"exit code {got}")
sys.exit(0 if got == want else 1)
