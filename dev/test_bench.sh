#!/usr/bin/env bash
# Test of the GPU training benchmark's CPU-side logic (dev/bench_train.sh, dev/bench_table.py,
# dev/bench_torch_dpo.py): everything but the GPU and PyTorch. Prints PASS/FAIL lines.
#   - the Python files compile (py_compile), the shell script parses (bash -n);
#   - bench_torch_dpo.py --self-test: its pair-file reader and layouts (tokens, position ids,
#     targets, end[] mask, slots, sides, rows) equal the C++ packer's (dev/dump_batches) for both
#     layouts, packed and not, on HH-RLHF pairs and the synthetic task, and end[] is the rule;
#   - bench_train.sh end to end with train_dpo_cpu and the tiny model (T = 64): a report with the
#     four runs, and the ideal sharing speedup in it equal to the pairs' token ratio computed here
#     from the pair file (sum(2P+C+R) / sum(P+C+1+R) over the timed pairs);
#   - bench_train.sh with a fake trainer: a run is stopped as soon as its last step is logged (no
#     waiting for the checkpoint), a run past the budget is cut and reported so, the runs after it
#     are "not run", a failed weight export falls back to each run's own init.
set -u
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. dev/test_lib.sh  # report

for f in dev/bench_torch_dpo.py dev/bench_table.py; do
    out=$(python3 -c "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)" \
          "$f" "$tmp/compiled.pyc" 2>&1)
    report $? "py_compile_$(basename "$f" .py)" "$out"
done
out=$(bash -n dev/bench_train.sh 2>&1)
report $? bench_train_sh_parses "$out"

# the layouts against the C++ packer
{ zcat data/hh-rlhf/harmless-base-test.jsonl.gz || true; } | head -n 60 > "$tmp/hh.jsonl"
./data/prepare_dpo --input "$tmp/hh.jsonl" --output "$tmp/hh.bin" --max-len 256 --quiet > /dev/null 2>&1 ||
    report 1 prepare_hh_pairs "data/prepare_dpo failed"
python3 -B dev/bench_torch_dpo.py --self-test --data "$tmp/hh.bin" --shapes 4x256x12,3x512x9,2x1024x7 --dump dev/dump_batches
[ $? = 0 ] || fails=$((fails + 1))
python3 -B dev/bench_torch_dpo.py --self-test --data data/synthetic/sort_train.bin --shapes 4x64x6,2x40x3 --dump dev/dump_batches
[ $? = 0 ] || fails=$((fails + 1))

# end to end on the CPU trainer
work=$tmp/cpu
BENCH_MODELS=tiny BENCH_SEQ_LEN=64 BENCH_ROWS=4 BENCH_PAIRS=8 BENCH_STEPS=3 BENCH_TORCH=0 BENCH_WORK=$work \
    OMP_NUM_THREADS=1 dev/bench_train.sh ./train_dpo_cpu "$tmp/cpu.md" > "$tmp/cpu.txt" 2>&1
rc=$?
report $rc bench_train_cpu_runs "exit $rc: $(tail -3 "$tmp/cpu.txt")"
n_ok=$(grep -c '^| tiny | o[nf]*f* | o[nf]*f* | .* | ok |$' "$tmp/cpu.md" 2>/dev/null)
report $([ "${n_ok:-0}" = 4 ] && echo 0 || echo 1) bench_train_cpu_reports_four_runs "$n_ok rows ok in the report"
# the timed pairs are 8..23 (step 1, pairs 0..7, is the warm-up)
want=$(python3 -B -c '
import sys
sys.path.insert(0, "dev")
from bench_torch_dpo import PairFile
pf = PairFile(sys.argv[1])
ids = range(8, 24)
print("%.3f" % (sum(2 * pf.P[i] + pf.C[i] + pf.R[i] for i in ids) / sum(pf.P[i] + pf.C[i] + 1 + pf.R[i] for i in ids)))
' "$work/tiny/hh.bin")
got=$(grep '| tiny | sharing on / off, packing on |' "$tmp/cpu.md" | awk -F'|' '{ gsub(/ /, "", $5); print $5 }')
report $([ -n "$want" ] && [ "$got" = "$want" ] && echo 0 || echo 1) bench_table_ideal_is_the_token_ratio \
    "report says '$got', the pair file gives '$want'"
grep -q '^| bf16 MFU ≥ 45% at d12' "$tmp/cpu.md"
report $? bench_table_lists_the_targets "no targets table in $tmp/cpu.md"

# a fake trainer: export fails; a run logs FAKE_STEPS step records, then sleeps (as if writing a
# checkpoint); the run with FAKE_SLOW_DIR in its --out never finishes its steps
cat > "$tmp/fake_trainer" <<'EOF'
#!/usr/bin/env bash
out=""; steps=0
while [ $# -gt 0 ]; do
  case $1 in --out) out=$2; shift ;; --steps) steps=$2; shift ;; esac; shift
done
[ "$steps" = 0 ] && { echo "fake: no export"; exit 1; }
mkdir -p "$out"
n=$steps; [[ "$out" == *"$FAKE_SLOW_DIR"* ]] && n=1
for i in $(seq 1 "$n"); do
  echo "{\"step\": $i, \"loss\": 0.69, \"step_ms\": 100.0, \"pairs\": 8, \"tokens\": 800," \
       "\"tokens_per_sec\": 8000.0, \"padding\": 0.2000, \"mfu\": 0.5000, \"peak_mem_gb\": 1.000}" >> "$out/log.jsonl"
done
exec sleep 30
EOF
chmod +x "$tmp/fake_trainer"
t0=$(date +%s)
FAKE_SLOW_DIR=sharing-on.packing-off BENCH_BUDGET_S=9 BENCH_MODELS=tiny BENCH_SEQ_LEN=64 BENCH_ROWS=4 \
    BENCH_PAIRS=8 BENCH_STEPS=3 BENCH_TORCH=0 BENCH_WORK=$tmp/fake dev/bench_train.sh "$tmp/fake_trainer" "$tmp/fake.md" \
    > "$tmp/fake.txt" 2>&1
secs=$(( $(date +%s) - t0 ))
row() { grep "^| tiny | $1 | $2 |" "$tmp/fake.md"; }
row on on | grep -q '| 2 of 2 | 100.0 ms | 8000 | 80.00 | 50.0% | 1.0 GB | 100.0 / 125.0 (20% padding) | ok |$'
report $? bench_train_stops_a_run_at_its_last_step "$(row on on)"
row on off | grep -q 'cut at the budget after 1 of 3 steps |$'
report $? bench_train_cuts_a_run_past_the_budget "$(row on off)"
row off off | grep -q 'not run: budget |$'
report $? bench_train_skips_runs_after_the_budget "$(row off off)"
grep -q 'tiny: export: failed' "$tmp/fake.md"
report $? bench_train_reports_a_failed_export "$(grep export "$tmp/fake/runs.tsv")"
report $([ "$secs" -le 14 ] && echo 0 || echo 1) bench_train_keeps_its_budget "took $secs s with a budget of 9 s"

# the PyTorch part of the table, with a fake python: torch "imports", --write-hf fails (the
# trainer's export is used instead), the benchmark writes a TSV where flex does 40 pairs/s
cat > "$tmp/fake_python" <<'EOF'
#!/usr/bin/env bash
[ "$1" = -c ] && exit 0
[ "$1" != dev/bench_torch_dpo.py ] && exec python3 "$@"
out=""
while [ $# -gt 0 ]; do
  case $1 in --write-hf) exit 1 ;; --out) out=$2; shift ;; esac; shift
done
printf 'model\tvariant\tlayout\tcompile\tstatus\ttimed_steps\tpairs\ttokens\tpadded_tokens\tseconds' > "$out"
printf '\ttokens_per_sec\tpairs_per_sec\tpeak_mem_gb\n' >> "$out"
printf 'tiny\tsdpa\tunshared\teager\tok\t2\t16\t1600\t2000\t0.8\t2000.0\t20.000\t2.500\n' >> "$out"
printf 'tiny\tflex\tshared\tflex_attention compiled\tok\t2\t16\t1600\t2000\t0.4\t4000.0\t40.000\t2.000\n' >> "$out"
EOF
chmod +x "$tmp/fake_python"
FAKE_SLOW_DIR=none BENCH_PYTHON=$tmp/fake_python BENCH_BUDGET_S=60 BENCH_MODELS=tiny BENCH_SEQ_LEN=64 BENCH_ROWS=4 \
    BENCH_PAIRS=8 BENCH_STEPS=3 BENCH_WORK=$tmp/faketorch dev/bench_train.sh "$tmp/fake_trainer" "$tmp/faketorch.md" \
    > "$tmp/faketorch.txt" 2>&1
grep -q '^| tiny | sdpa (unshared) | eager | 2 | 2000 | 20.00 | 2.5 GB | ok | 4.00× | 4.00× |$' "$tmp/faketorch.md" &&
    grep -q '^| tiny | flex (shared) | flex_attention compiled | 2 | 4000 | 40.00 | 2.0 GB | ok | 2.00× | 2.00× |$' "$tmp/faketorch.md"
report $? bench_table_ours_over_theirs "$(grep '^| tiny | [fs][ld]' "$tmp/faketorch.md")"
grep -q '^| ≥ 1.5× the PyTorch + FlexAttention step at tiny (pairs/s) | 2.00× | yes |$' "$tmp/faketorch.md"
report $? bench_table_judges_the_pytorch_target "$(grep 'FlexAttention step' "$tmp/faketorch.md")"

exit $((fails > 0))
