#!/usr/bin/env bash
# make bench-cpu: prefix sharing against the baseline layout on real data, on the CPU.
# Takes the first PAIRS pairs of the vendored HH-RLHF harmless-base test split, trains STEPS
# steps of a fixed config (GPT-2 124M shape, random init) once with prefix sharing and once
# without, on the same pairs in the same order, and prints pairs/s of both (step 1 excluded: it
# warms up), the measured speedup and the ideal one for those pairs, which is the ratio of their
# token counts: sum(2P+C+R) / sum(P+C+1+R). Last line: "speedup <measured> ideal <ideal>".
#   env: MODEL (d12) STEPS (4) BATCH (16 pairs/step) THREADS (all) WORK (build/bench_cpu)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-d12}; STEPS=${STEPS:-4}; BATCH=${BATCH:-16}; WORK=${WORK:-build/bench_cpu}
THREADS=${THREADS:-0}
PAIRS=$((STEPS * BATCH))
mkdir -p "$WORK"
{ zcat data/hh-rlhf/harmless-base-test.jsonl.gz || true; } | head -n "$PAIRS" >"$WORK/hh.jsonl"  # zcat stops early: SIGPIPE
./data/prepare_dpo --input "$WORK/hh.jsonl" --output "$WORK/hh.bin" --max-len 1024 >"$WORK/prepare.txt"
grep -E "pairs written|mean P" "$WORK/prepare.txt"
rm -f "$WORK"/ref_*.bin
for mode in on off; do
  rm -rf "$WORK/$mode"
  ./train_dpo_cpu --train "$WORK/hh.bin" --val none --model "$MODEL" --out "$WORK/$mode" \
    --prefix-sharing "$mode" --steps "$STEPS" --batch-pairs "$BATCH" --seq-len 1024 --micro-rows 8 \
    --ref-cache "$WORK/ref" --checkpoint-every 0 --no-shuffle --log-every 1 --threads "$THREADS" \
    >"$WORK/train_$mode.txt"
done
# sums over steps 2..STEPS of pairs, step_ms and real tokens
sums() { grep -v '"eval_' "$1" | awk -F'[:,]' '
  { for (i = 1; i < NF; i++) { k = $i; gsub(/[ "{]/, "", k); v[k] = $(i + 1) }
    if (v["step"] > 1) { p += v["pairs"]; ms += v["step_ms"]; tok += v["tokens"] } }
  END { printf "%d %.3f %d\n", p, ms, tok }'; }
read -r p_on ms_on tok_on < <(sums "$WORK/on/log.jsonl")
read -r p_off ms_off tok_off < <(sums "$WORK/off/log.jsonl")
awk -v pon="$p_on" -v mon="$ms_on" -v ton="$tok_on" -v poff="$p_off" -v moff="$ms_off" -v toff="$tok_off" -v model="$MODEL" 'BEGIN {
  rate_on = pon / (mon / 1000); rate_off = poff / (moff / 1000)
  printf "model %s, %d timed pairs per layout\n", model, pon
  printf "prefix sharing: %7.3f pairs/s  (%d tokens, %.1f s)\n", rate_on, ton, mon / 1000
  printf "baseline:       %7.3f pairs/s  (%d tokens, %.1f s)\n", rate_off, toff, moff / 1000
  s = rate_on / rate_off; ideal = toff / ton
  printf "measured speedup %.3f = %.1f%% of the ideal token ratio %.3f\n", s, 100 * s / ideal, ideal
  printf "speedup %.3f ideal %.3f\n", s, ideal }'
