#!/usr/bin/env bash
# The GPU trainer's data parallelism (kernels/zero.cuh) on the CPU, under mpirun, through dev/simt
# and the NCCL stand-in over MPI (dev/simt/nccl_cpu.h). Prints PASS/FAIL lines for dev/run_tests.sh.
#   1. test_dpo_fp32 --ranks with 2 processes (both cases) and 3 (the unpacked case): the
#      communication code against one process (its checks and tolerances are in test_dpo.cu).
#   2. train_dpo_simt_fp32 under mpirun -np 2 against one process, 3 steps of 7 pairs (3 + 4) of
#      the synthetic task: the same losses and gradient norms step by step, only rank 0 prints.
#      Tolerance as test_train_dpo.sh: the ranks pack other micro-batches and the stand-in sums
#      the ranks' gradients in another order, fp32 differences ~1e-6 relative per value, so
#      losses (~0.69) to 1e-5 absolute, gradient norms to 1e-4 relative.
#   3. resume of a 2-rank run (sharded checkpoint) with 2 ranks: bitwise; with 1 process: within
#      the tolerance above.
#   4. a NaN reference log-prob in rank 1's slice stops both ranks at step 1, naming rank 1.
#   5. a rank killed mid-run ends the job within 60 s, the message naming it.
# Both runs read one reference cache made by train_dpo_cpu (the emulator would need minutes to
# score the 4000 training pairs; test_train_dpo.sh checks that the two trainers' caches agree).
set -u
cd "$(dirname "$0")"
if ! command -v mpirun >/dev/null; then echo "SKIP train_dpo_ranks: mpirun is not installed (make deps)"; exit 0; fi
MPIRUN="mpirun --allow-run-as-root --oversubscribe"
tmp=$(mktemp -d)
mpirun_pid=
trap '[ -n "$mpirun_pid" ] && kill -9 "$mpirun_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
. dev/test_lib.sh  # report, step_values, close, killed_rank_check, nan_ref_cache

# 1. the communication code against one process
# (3 processes on the 2-core test machine: one case, the one with several micro-batches per rank)
for np in 2 3; do
    case_arg=; min=26; [ $np = 3 ] && { case_arg=baseline_unpacked; min=14; }
    timeout 900 $MPIRUN -np $np ./test_dpo_fp32 --ranks $case_arg >"$tmp/t$np.txt" 2>&1; rc=$?
    grep -E '^(PASS|FAIL|SKIP) ' "$tmp/t$np.txt"
    grep '^  np' "$tmp/t$np.txt"
    n=$(grep -c '^PASS ' "$tmp/t$np.txt")
    ok=1; [ $rc = 0 ] && [ "$n" -ge $min ] && ok=0
    report $ok "test_dpo_ranks_np${np}_runs" "rc $rc, $n checks passed: $(grep -v '^PASS' "$tmp/t$np.txt" | tail -5 | tr '\n' ' ')"
done

flags="--batch-pairs 7 --val none --eval-every 0 --sample-every 0 --log-every 1 --checkpoint-every 0"
./train_dpo_cpu --steps 0 --val none --threads 2 --out "$tmp/cpu" >"$tmp/cpu.txt" 2>&1
GPU=./train_dpo_simt_fp32

# 2. one process and two, the same global batch
$GPU --steps 3 $flags --out "$tmp/w1" --ref-cache "$tmp/cpu/ref_logps" >"$tmp/w1.txt" 2>&1; rc1=$?
timeout 900 $MPIRUN -np 2 $GPU --steps 3 $flags --out "$tmp/w2" --ref-cache "$tmp/cpu/ref_logps" >"$tmp/w2.txt" 2>&1; rc2=$?
step_values "$tmp/w1/log.jsonl" >"$tmp/v1"; step_values "$tmp/w2/log.jsonl" >"$tmp/v2"
ok=1; [ $rc1 = 0 ] && [ $rc2 = 0 ] && [ "$(wc -l <"$tmp/v2")" = 3 ] && close "$tmp/v2" "$tmp/v1" && ok=0
report $ok train_dpo_np2_matches_one_process "rc $rc1 $rc2; step loss grad_norm, np2 | np1: $(paste "$tmp/v2" "$tmp/v1" | tr '\n' ';') $(tail -c 300 "$tmp/w2.txt")"
ok=1; grep -q "data parallel: 2 ranks, ZeRO-1" "$tmp/w2.txt" && [ "$(grep -c '^step ' "$tmp/w2.txt")" = 3 ] && ok=0
report $ok train_dpo_np2_rank0_alone_prints "$(grep -c '^step ' "$tmp/w2.txt") step lines instead of 3: $(head -3 "$tmp/w2.txt" | tr '\n' ' ')"

# 3. resume: 2 ranks stop after step 2 (a sharded checkpoint: every rank its moment shard) and
# resume with 2 ranks (the same bits as the uninterrupted run) or with 1 process (resharded)
for np in 2 1; do
    timeout 600 $MPIRUN -np 2 $GPU --steps 3 --stop-after 2 $flags --out "$tmp/r$np" --ref-cache "$tmp/cpu/ref_logps" >"$tmp/r$np.txt" 2>&1
    if [ $np = 2 ]; then timeout 600 $MPIRUN -np 2 $GPU --steps 3 --resume $flags --out "$tmp/r$np" --ref-cache "$tmp/cpu/ref_logps" >>"$tmp/r$np.txt" 2>&1
    else $GPU --steps 3 --resume $flags --out "$tmp/r$np" --ref-cache "$tmp/cpu/ref_logps" >>"$tmp/r$np.txt" 2>&1; fi
    step_values "$tmp/r$np/log.jsonl" >"$tmp/vr$np"
done
ok=1; [ "$(wc -l <"$tmp/vr2")" = 3 ] && cmp -s "$tmp/vr2" "$tmp/v2" && ok=0
report $ok train_dpo_np2_resume_with_2_is_bitwise "$(diff "$tmp/vr2" "$tmp/v2" | tr '\n' ' ') $(tail -c 300 "$tmp/r2.txt")"
ok=1; [ "$(wc -l <"$tmp/vr1")" = 3 ] && close "$tmp/vr1" "$tmp/v1" && ok=0
report $ok train_dpo_np2_checkpoint_resumes_with_1 "$(paste "$tmp/vr1" "$tmp/v1" | tr '\n' ';') $(tail -c 300 "$tmp/r1.txt")"

# 4. one rank's NaN stops every rank at that step, naming the rank: a reference cache whose pair 5
# is NaN (--no-shuffle: step 1 is pairs 0..6, rank 1 of 2 takes pairs 3..6)
nan_ref_cache "$tmp/cpu/ref_logps_train.bin" "$tmp/nan_train.bin" 5
timeout 300 $MPIRUN -np 2 $GPU --steps 3 $flags --no-shuffle --out "$tmp/n" --ref-cache "$tmp/nan" >"$tmp/n.txt" 2>&1; rc=$?
ok=1
[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "error: step 1: rank 1's loss or gradient is not finite" "$tmp/n.txt" && ok=0
report $ok train_dpo_nan_on_one_rank_stops_every_rank "rc $rc: $(tail -4 "$tmp/n.txt" | tr '\n' ' ')"

# 5. a rank killed mid-run ends the whole job, within the timeout, naming the rank
$MPIRUN -np 2 $GPU --steps 1000000 $flags --out "$tmp/k" --ref-cache "$tmp/cpu/ref_logps" >"$tmp/k.txt" 2>&1 &
mpirun_pid=$!
killed_rank_check train_dpo_killed_rank_ends_the_job "$mpirun_pid" "$tmp/k/log.jsonl" "$tmp/k.txt" 2 1200
mpirun_pid=
