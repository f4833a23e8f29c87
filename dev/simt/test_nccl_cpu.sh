#!/usr/bin/env bash
# The NCCL stand-in (dev/simt/nccl_cpu.h) under mpirun: dev/simt/test_nccl_cpu with 1, 2 and 3
# processes, the ncclUniqueId sent through MPI (the program starts MPI itself) and, for 2 and 3,
# also through a file (the stand-in starts MPI in ncclCommInitRank, as under a launcher without
# MPI in the program). Each rank prints its own PASS/FAIL lines; a run that exits non-zero
# without a FAIL line (a crash, a hang cut by the timeout) is a FAIL here. The program alone
# (one rank, no MPI) is run by make test directly.
set -u
cd "$(dirname "$0")/../.."
BIN=./dev/simt/test_nccl_cpu
if ! command -v mpirun >/dev/null; then echo "SKIP nccl_cpu under mpirun: mpirun is not installed (make deps)"; exit 0; fi
# root in containers; more ranks than cores on a small machine
MPIRUN="mpirun --allow-run-as-root --oversubscribe"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
run() {  # run NP EXCHANGE: EXCHANGE is mpi or file
    local np=$1 how=$2 log="$tmp/np$1-$2.log" env=()
    [ "$how" = file ] && env=(-x NCCL_TEST_ID_FILE="$tmp/id-np$np")
    timeout 120 $MPIRUN -np "$np" "${env[@]}" "$BIN" > "$log" 2>&1
    local rc=$?
    grep -E '^(PASS|FAIL|SKIP) ' "$log"
    local fails
    fails=$(grep -c '^FAIL ' "$log")
    if [ $rc -ne 0 ] && [ "$fails" = 0 ]; then
        echo "FAIL nccl_cpu mpirun -np $np (id by $how): exit status $rc without a FAIL line; its output:"
        grep -vE '^(PASS|SKIP) ' "$log" | tail -20
    fi
    [ $rc -eq 0 ] || status=1
}
run 1 mpi
run 2 mpi
run 3 mpi
run 2 file
run 3 file

# rank 1 of 3 fails an NCCL_CHECK while ranks 0 and 2 wait for it in ncclAllReduce: the whole job
# ends (the stand-in's NCCL_CHECK calls MPI_Abort) with the message, well within the timeout
start=$(date +%s)
NCCL_TEST_FAIL_RANK=1 timeout 60 $MPIRUN -np 3 -x NCCL_TEST_FAIL_RANK "$BIN" > "$tmp/abort.log" 2>&1
rc=$?
took=$(( $(date +%s) - start ))
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $took -lt 30 ] && \
   grep -q 'test_nccl_cpu.cu:[0-9]*: NCCL error in ncclGroupEnd(): invalid usage' "$tmp/abort.log"; then
    echo "PASS a failing NCCL_CHECK on one rank ends the whole job (exit $rc after ${took} s)"
else
    echo "FAIL a failing NCCL_CHECK on one rank ends the whole job: exit $rc after ${took} s; its output:"
    tail -20 "$tmp/abort.log"
    status=1
fi
exit $status
