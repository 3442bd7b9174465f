#!/bin/sh
# Runs its arguments; on MPI rank 1 the process is killed (SIGKILL) after
# 1 s, as a rank that dies mid-run (expert-parallel.test).
if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then exec timeout -s KILL 1 "$@"; fi
exec "$@"
