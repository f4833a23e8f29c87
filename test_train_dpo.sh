#!/usr/bin/env bash
# The GPU trainer end to end on the CPU: train_dpo_simt_fp32 (train_dpo.cu built all-fp32 with g++
# through dev/simt and the cuBLASLt stand-in) against train_dpo_cpu on the bundled synthetic task,
# same seed and flags, 3 steps of 8 pairs; exact resume; checkpoints resumed across the trainers;
# score against the CPU's; the out-of-memory message. Prints PASS/FAIL lines for dev/run_tests.sh.
# The GPU run reads the CPU run's reference cache (same file format and keys; the emulator would
# need minutes to score the 4000 training pairs), so both start from the same reference log-probs.
# Tolerances: the fp32 GPU arithmetic differs from the CPU's (BLAS, other summation orders) by
# ~1e-6 relative per value (test_dpo measures it), so losses agree to 1e-5 absolute (losses ~0.69)
# and gradient norms to 1e-4 relative; three steps of AdamW do not amplify that noticeably.
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. dev/test_lib.sh  # report, step_values, close
flags="--batch-pairs 8 --val none --eval-every 0 --sample-every 0 --log-every 1 --checkpoint-every 0"
CPU=./train_dpo_cpu
GPU=./train_dpo_simt_fp32

# 1. 3 steps on each trainer: the same losses and gradient norms step by step
$CPU --steps 3 $flags --threads 2 --out "$tmp/cpu" >"$tmp/cpu.txt" 2>&1
$GPU --steps 3 $flags --out "$tmp/gpu" --ref-cache "$tmp/cpu/ref_logps" >"$tmp/gpu.txt" 2>&1; rc=$?
step_values "$tmp/cpu/log.jsonl" >"$tmp/vc"; step_values "$tmp/gpu/log.jsonl" >"$tmp/vg"
ok=1; [ $rc = 0 ] && [ "$(wc -l <"$tmp/vg")" = 3 ] && close "$tmp/vg" "$tmp/vc" && ok=0
report $ok gpu_trainer_matches_cpu_trainer "rc=$rc; step loss grad_norm, gpu | cpu: $(paste "$tmp/vg" "$tmp/vc" | tr '\n' ';') $(tail -c 300 "$tmp/gpu.txt")"

# 2. the step record has the CPU's fields plus mfu and peak_mem_gb
ok=1; grep -q '"tokens_per_sec": .*"epoch": .*"mfu": .*"peak_mem_gb": ' "$tmp/gpu/log.jsonl" && ok=0
report $ok gpu_step_record_has_mfu_and_memory "$(head -c 400 "$tmp/gpu/log.jsonl")"

# 3. --resume on the GPU trainer is exact: 2 steps, stop, resume for the 3rd == 3 steps straight
$GPU --steps 3 --stop-after 2 $flags --out "$tmp/g2" --ref-cache "$tmp/cpu/ref_logps" >/dev/null 2>&1
$GPU --steps 3 --resume $flags --out "$tmp/g2" --ref-cache "$tmp/cpu/ref_logps" >"$tmp/g2.txt" 2>&1
step_values "$tmp/g2/log.jsonl" >"$tmp/v2"
ok=1; [ "$(wc -l <"$tmp/v2")" = 3 ] && cmp -s "$tmp/vg" "$tmp/v2" && cmp -s "$tmp/gpu/checkpoint.bin" "$tmp/g2/checkpoint.bin" && ok=0
report $ok gpu_resume_is_bitwise_identical "$(diff "$tmp/vg" "$tmp/v2" | tr '\n' ' ') $(tail -c 200 "$tmp/g2.txt")"

# 4. checkpoints are interchangeable: a CPU checkpoint resumes on the GPU trainer, a GPU one on the CPU
$CPU --steps 3 --stop-after 2 $flags --threads 2 --out "$tmp/c2g" >/dev/null 2>&1
$GPU --steps 3 --resume $flags --out "$tmp/c2g" --ref-cache "$tmp/cpu/ref_logps" >"$tmp/c2g.txt" 2>&1
step_values "$tmp/c2g/log.jsonl" >"$tmp/v3"
ok=1; [ "$(wc -l <"$tmp/v3")" = 3 ] && close "$tmp/v3" "$tmp/vc" && ok=0
report $ok cpu_checkpoint_resumes_on_gpu_trainer "$(paste "$tmp/v3" "$tmp/vc" | tr '\n' ';') $(tail -c 200 "$tmp/c2g.txt")"
# ... and so does a sharded one (2 CPU ranks under ZeRO-1: common/checkpoint.h's manifest and
# shards; the one GPU process reads every shard)
if command -v mpirun >/dev/null; then
    mpirun --allow-run-as-root --oversubscribe -np 2 $CPU --steps 3 --stop-after 2 $flags --threads 1 --out "$tmp/s2g" \
        --ref-cache "$tmp/cpu/ref_logps" >/dev/null 2>&1
    $GPU --steps 3 --resume $flags --out "$tmp/s2g" --ref-cache "$tmp/cpu/ref_logps" >"$tmp/s2g.txt" 2>&1
    step_values "$tmp/s2g/log.jsonl" >"$tmp/v5"
    ok=1; [ "$(head -c 8 "$tmp/s2g/checkpoint.bin")" = DPOCKPT1 ] && [ "$(wc -l <"$tmp/v5")" = 3 ] && close "$tmp/v5" "$tmp/vc" && ok=0
    report $ok sharded_cpu_checkpoint_resumes_on_gpu_trainer "$(paste "$tmp/v5" "$tmp/vc" | tr '\n' ';') $(tail -c 200 "$tmp/s2g.txt")"
else
    echo "SKIP sharded_cpu_checkpoint_resumes_on_gpu_trainer: mpirun is not installed (make deps)"
fi
mkdir -p "$tmp/g2c" && cp "$tmp/cpu/ref_logps_train.bin" "$tmp/g2c/"
$GPU --steps 3 --stop-after 2 $flags --out "$tmp/g2c" >/dev/null 2>&1
$CPU --steps 3 --resume $flags --threads 2 --out "$tmp/g2c" >"$tmp/g2c.txt" 2>&1
step_values "$tmp/g2c/log.jsonl" >"$tmp/v4"
ok=1; [ "$(wc -l <"$tmp/v4")" = 3 ] && close "$tmp/v4" "$tmp/vc" && ok=0
report $ok gpu_checkpoint_resumes_on_cpu_trainer "$(paste "$tmp/v4" "$tmp/vc" | tr '\n' ';') $(tail -c 200 "$tmp/g2c.txt")"

# 5. score on the GPU trainer: the same log-probs as the CPU trainer's score (validation set)
model="$tmp/cpu/checkpoint.bin"
$CPU score --model "$model" --data data/synthetic/sort_val.bin --out "$tmp/score_cpu.tsv" >/dev/null 2>&1
$GPU score --model "$model" --data data/synthetic/sort_val.bin --out "$tmp/score_gpu.tsv" >"$tmp/score.txt" 2>&1; rc=$?
ok=1
[ $rc = 0 ] && [ "$(wc -l <"$tmp/score_gpu.tsv")" = 257 ] && paste "$tmp/score_gpu.tsv" "$tmp/score_cpu.tsv" | awk -F'\t' '
    NR == 1 { next }
    $1 != $6 || $4 != $9 || $5 != $10 { bad = 1 }
    { for (k = 2; k <= 3; k++) { d = $k - $(k + 5); if (d < 0) d = -d; a = $(k + 5); if (a < 0) a = -a;
        if (d > 1e-5 * (a > 1 ? a : 1)) bad = 1 } }
    END { exit bad }' && ok=0
report $ok gpu_score_matches_cpu_score "rc=$rc $(tail -c 300 "$tmp/score.txt") $(diff "$tmp/score_gpu.tsv" "$tmp/score_cpu.tsv" | head -4 | tr '\n' ' ')"

# 6. a run that cannot fit the GPU's memory says how much it needs and which flags lower it
$GPU --model d12 --micro-rows 512 --seq-len 1024 --steps 1 --val none --out "$tmp/mem" >"$tmp/mem.txt" 2>&1; rc=$?
ok=1; [ $rc -ne 0 ] && grep -q "this run needs .* GB .*lower --micro-rows or --seq-len" "$tmp/mem.txt" && ok=0
report $ok too_little_gpu_memory_is_a_clear_error "rc=$rc: $(tail -c 300 "$tmp/mem.txt")"
