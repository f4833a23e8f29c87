#!/usr/bin/env bash
# make compare: the paper's claim, shown. Trains the same small model (random init, same seed) on
# the same HH-RLHF pairs in the same order twice, with prefix sharing on ("shared") and off
# ("baseline"), then
#   - prints the largest absolute difference of the per-step training loss (prefix sharing does
#     not change the math: only fp32 rounding separates the two runs),
#   - prints the wall-clock ratio baseline / shared to reach the last step (training steps only,
#     the sum of step_ms, and the whole process including the reference pass), and the ratio of
#     the CPU seconds the two processes used (less disturbed by other work on a shared machine),
#   - plots both runs over steps, training wall-clock seconds and training CPU seconds
#     (dev/plot_run.py: compare_step.png, compare_time.png, compare_cpu.png).
#   env: MODEL (d6) PAIRS (128) BATCH (8 pairs/step) MAXLEN (256 tokens per pair) THREADS (all)
#        LR (3e-4) WORK (build/compare; the runs) PLOT_DIR (WORK; where the PNGs go)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-d6}; PAIRS=${PAIRS:-128}; BATCH=${BATCH:-8}; MAXLEN=${MAXLEN:-256}
THREADS=${THREADS:-0}; LR=${LR:-3e-4}; WORK=${WORK:-build/compare}; PLOT_DIR=${PLOT_DIR:-$WORK}
STEPS=$((PAIRS / BATCH))
mkdir -p "$WORK" "$PLOT_DIR"
{ zcat data/hh-rlhf/harmless-base-test.jsonl.gz || true; } | head -n "$PAIRS" >"$WORK/hh.jsonl"  # zcat stops early: SIGPIPE
./data/prepare_dpo --input "$WORK/hh.jsonl" --output "$WORK/hh.bin" --max-len "$MAXLEN" >"$WORK/prepare.txt"
grep -E "pairs written|mean P" "$WORK/prepare.txt"
TIMEFORMAT='%R %U %S'  # bash's `time`: wall, user and system seconds
for run in shared baseline; do
  rm -rf "${WORK:?}/$run"
  { time \
  ./train_dpo_cpu --train "$WORK/hh.bin" --val none --model "$MODEL" --out "$WORK/$run" \
    --prefix-sharing "$([ $run = shared ] && echo on || echo off)" --steps "$STEPS" \
    --batch-pairs "$BATCH" --seq-len "$MAXLEN" --lr "$LR" --warmup 2 --no-shuffle --seed 1 \
    --checkpoint-every 0 --sample-every 0 --log-every 1 --threads "$THREADS" >"$WORK/train_$run.txt" 2>&1; } 2>"$WORK/time_$run.txt" ||
    { echo "compare: the $run run failed:"; tail -5 "$WORK/train_$run.txt"; exit 1; }
  read -r wall user sys <"$WORK/time_$run.txt"
  echo "$run: $STEPS steps, $wall s wall, $user s user + $sys s system CPU; $(grep '^reference log-probs: computed' "$WORK/train_$run.txt")"
done

# "step loss step_ms cpu_ms" of every step record
steps_of() { grep -v '"eval_' "$1" |
  sed -n 's/.*"step": \([0-9]*\), "loss": \([^,]*\),.*"step_ms": \([^,]*\), "cpu_ms": \([^,]*\),.*/\1 \2 \3 \4/p'; }
steps_of "$WORK/shared/log.jsonl" >"$WORK/steps_shared.txt"
steps_of "$WORK/baseline/log.jsonl" >"$WORK/steps_baseline.txt"
paste -d' ' "$WORK/steps_shared.txt" "$WORK/steps_baseline.txt" | awk -v want="$STEPS" \
  -v time_on="$(cat "$WORK/time_shared.txt")" -v time_off="$(cat "$WORK/time_baseline.txt")" '
  $1 != $5 { printf "compare: step records out of line (%s vs %s)\n", $1, $5; bad = 1; exit 1 }
  { d = $2 - $6; if (d < 0) d = -d; if (d > maxd) { maxd = d; at = $1 }
    ms_on += $3; ms_off += $7; cpu_on += $4; cpu_off += $8; n++ }
  END {
    if (bad) exit 1
    if (n != want) { printf "compare: %d step records, expected %d\n", n, want; exit 1 }
    printf "loss: largest |shared - baseline| over %d steps = %.3g (at step %d)\n", n, maxd, at
    printf "training steps (sum of step_ms): shared %.1f s, baseline %.1f s, ratio %.3f\n",
           ms_on / 1000, ms_off / 1000, ms_off / ms_on
    printf "training steps (sum of cpu_ms): shared %.1f s, baseline %.1f s, ratio %.3f\n",
           cpu_on / 1000, cpu_off / 1000, cpu_off / cpu_on
    split(time_on, a, " "); split(time_off, b, " ")
    printf "whole run (with the reference pass), wall: shared %.1f s, baseline %.1f s, ratio %.3f\n",
           a[1], b[1], b[1] / a[1]
    printf "whole run, CPU time (user + system): shared %.1f s, baseline %.1f s, ratio %.3f\n",
           a[2] + a[3], b[2] + b[3], (b[2] + b[3]) / (a[2] + a[3]) }'
title="$MODEL, $PAIRS HH-RLHF pairs, $BATCH pairs/step"
for axis in step time cpu; do
  ./dev/plot_run.py "$WORK/shared" "$WORK/baseline" --x $axis -o "$PLOT_DIR/compare_$axis.png" \
    --title "prefix sharing on (shared) and off (baseline): $title"
done
