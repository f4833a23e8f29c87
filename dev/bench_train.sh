#!/usr/bin/env bash
# dev/bench_train.sh: the GPU trainer's benchmark (issue 11), run once by dev/gpu_check.sh.
#   dev/bench_train.sh TRAINER REPORT.md
# For GPT-2 d12 (124M), d24 (350M) and d48 (1.5B), random init, rows of T = 1024 tokens, on the
# first pairs of the vendored HH-RLHF harmless-base split (data/prepare_dpo --max-len 1024), in
# file order (--no-shuffle, so every layout trains the same pairs):
#   1. TRAINER (./train_dpo) trains a few steps with prefix sharing on/off x packing on/off; from
#      its log.jsonl, without the first step (warm-up): tokens/s, pairs/s, MFU, peak memory, real
#      and padded tokens per pair (the ideal speedups: token ratios of the layouts, padding
#      excluded and included);
#   2. dev/bench_torch_dpo.py runs the same step in PyTorch (SDPA on the unshared layout,
#      FlexAttention on the shared one) with the same pairs and micro-batch rows;
#   3. dev/bench_table.py writes REPORT.md: the measurements, the speedups beside their ideal,
#      ours / theirs, and the issue's targets beside the measured values.
# Time: BENCH_BUDGET_S (default 150 s) for everything, shared by the models in proportion
# (d12 40%, d24 20%, d48 40%: the targets are at d12 and d48); a model's unused time passes to the
# next. Per model: the initial
# weights are made once and the four runs load them (so one reference-log-prob cache serves all
# four): GPT-2's init drawn by dev/bench_torch_dpo.py --write-hf on the GPU where torch works,
# else TRAINER --steps 0 --export-hf (its random init uses every core; d48's takes tens of seconds
# of one). Then, in this order: shared+packed, baseline+packed, PyTorch, shared+unpacked,
# baseline+unpacked. A trainer run writes no final checkpoint (--final-checkpoint 0: 18.7 GB with
# the moments at d48, no part of a step), so it ends after its last step; it is also stopped as
# soon as that step is logged, so that no budget waits on its exit (freeing tens of GB of device
# memory). A run still going at its model's deadline is stopped and the table says "cut" (with the
# steps it did); runs with no time left say "not run".
# Settings per model (micro-rows B, pairs per step N, steps S; the first step is not timed), sized
# for one H200 (141 GB; device memory from GPT2GPU::allocate's plan, bf16, T = 1024):
#   d12: B 16, N 128, S 6   (9.1 GB)    d24: B 16, N 128, S 5   (21.4 GB)
#   d48: B 16, N 64,  S 3   (70.7 GB; an unpacked baseline step is 8 micro-batches of 16 x 1024)
# Environment: BENCH_BUDGET_S, BENCH_MODELS ("d12 d24 d48"), BENCH_SEQ_LEN (1024), BENCH_TORCH
# (1; 0 skips PyTorch), BENCH_WORK (build/gpu/bench), BENCH_PYTHON (python3); for tests on the CPU
# (dev/test_bench.sh, with train_dpo_cpu and a tiny model): BENCH_ROWS, BENCH_PAIRS, BENCH_STEPS
# override every model's B, N, S.
# Exit status: 0 when the report was written (failed runs are in it), 1 otherwise.
set -u
cd "$(dirname "$0")/.."
TRAINER=${1:?usage: dev/bench_train.sh TRAINER REPORT.md}
REPORT=${2:?usage: dev/bench_train.sh TRAINER REPORT.md}
BUDGET=${BENCH_BUDGET_S:-150}
MODELS=${BENCH_MODELS:-d12 d24 d48}
SEQ=${BENCH_SEQ_LEN:-1024}
TORCH=${BENCH_TORCH:-1}
WORK=${BENCH_WORK:-build/gpu/bench}
PY=${BENCH_PYTHON:-python3}
HH=data/hh-rlhf/harmless-base-test.jsonl.gz

settings() {  # model -> "B N S share%"
  local s
  case $1 in
    d12) s="16 128 6 40" ;;
    d24) s="16 128 5 20" ;;
    d48) s="16 64 3 40" ;;
    *)   s="8 32 4 30" ;;
  esac
  read -r B N S share <<< "$s"
  B=${BENCH_ROWS:-$B}; N=${BENCH_PAIRS:-$N}; S=${BENCH_STEPS:-$S}
}

now() { date +%s.%N; }
left() { awk -v d="$1" -v n="$(now)" 'BEGIN { x = d - n; printf "%d", (x > 0 ? x : 0) }'; }  # whole seconds to a deadline
step_records() { local n; n=$(grep -c '"step_ms"' "$1" 2>/dev/null); echo "${n:-0}"; }

# run_capped LIMIT OUT RECORDS WANT CMD...: runs CMD (stdout and stderr to OUT) in a process group
# of its own; stops the group (CMD and what it started, e.g. torch.compile's workers) after LIMIT
# seconds, or, when RECORDS is a file, as soon as it holds WANT step records. Sets run_rc (the
# exit status; 0 when stopped after WANT records), run_secs and run_end (exit|records|limit).
run_capped() {
  local limit=$1 out=$2 records=$3 want=$4
  shift 4
  local t0 pid
  t0=$(now)
  setsid "$@" > "$out" 2>&1 &
  pid=$!
  run_end=exit
  while kill -0 "$pid" 2> /dev/null; do
    if [ -n "$records" ] && [ "$(step_records "$records")" -ge "$want" ]; then run_end=records; break; fi
    if [ "$(left "$(awk -v a="$t0" -v l="$limit" 'BEGIN { printf "%.3f", a + l }')")" -le 0 ]; then run_end=limit; break; fi
    sleep 0.2
  done
  if [ $run_end != exit ]; then
    kill -TERM -- "-$pid" 2> /dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2> /dev/null
  fi
  wait "$pid" 2> /dev/null
  run_rc=$?
  [ $run_end = records ] && run_rc=0
  run_secs=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
}

manifest=$WORK/runs.tsv   # one line per job: model kind sharing packing B N S status seconds dir
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$manifest"; }

rm -rf "${WORK:?}"
mkdir -p "$WORK" "$(dirname "$REPORT")"
printf 'model\tkind\tsharing\tpacking\tB\tN\tS\tstatus\tseconds\tdir\n' > "$manifest"
started=$(now)
{
  echo "budget_s=$BUDGET"; echo "seq_len=$SEQ"; echo "trainer=$TRAINER"; echo "models=$MODELS"
  echo "gpu=$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | head -1)"
} > "$WORK/settings.txt"

# data/prepare_dpo: the one built by make, else built here (gpu_check builds only CUDA programs),
# while python looks for torch
PREPARE=./data/prepare_dpo
if [ ! -x "$PREPARE" ]; then
  PREPARE=$WORK/prepare_dpo
  ${CXX:-g++} -O2 -std=c++17 -I. data/prepare_dpo.cpp -o "$PREPARE" -lz > "$WORK/prepare_build.txt" 2>&1 &
fi

torch_note=""
if [ "$TORCH" = 1 ]; then
  torch_note=$($PY -c '
import sys
try:
    import torch
    from torch.nn.attention.flex_attention import flex_attention
except Exception as e:
    print("PyTorch with FlexAttention cannot be imported (%s)" % e); sys.exit(0)
if not torch.cuda.is_available():
    print("torch %s sees no CUDA device" % torch.__version__); sys.exit(0)
' 2>&1 | tail -1)
  [ -z "$torch_note" ] || echo "bench_train: PyTorch not run: $torch_note"
else
  torch_note="BENCH_TORCH=0"
fi
echo "torch_note=$torch_note" >> "$WORK/settings.txt"

wait
if [ ! -x "$PREPARE" ]; then
  why="data/prepare_dpo did not build with ${CXX:-g++} ($WORK/prepare_build.txt: $(tail -1 "$WORK/prepare_build.txt"))"
  echo "bench_train: $why"
  { echo "## Training benchmark (dev/bench_train.sh)"; echo; echo "Not run: $why."; } > "$REPORT"
  exit 1
fi

total_share=0
for m in $MODELS; do settings "$m"; total_share=$((total_share + share)); done
cum_share=0
for m in $MODELS; do
  settings "$m"
  cum_share=$((cum_share + share))
  deadline=$(awk -v s="$started" -v b="$BUDGET" -v c="$cum_share" -v t="$total_share" 'BEGIN { printf "%.3f", s + b * c / t }')
  dir=$WORK/$m
  mkdir -p "$dir"
  # the data: the first N*S pairs, one step's worth each
  { zcat "$HH" || true; } | head -n $((N * S)) > "$dir/hh.jsonl"  # zcat stops early: SIGPIPE
  if ! "$PREPARE" --input "$dir/hh.jsonl" --output "$dir/hh.bin" --max-len "$SEQ" --quiet \
       > "$dir/prepare.txt" 2>&1; then
    echo "bench_train: data/prepare_dpo failed for $m: $(tail -2 "$dir/prepare.txt")"
    record "$m" data - - "$B" "$N" "$S" "failed: data/prepare_dpo" 0 "$dir"
    continue
  fi
  # the initial weights, once: the four runs load them (same weights, so one reference cache).
  # Drawn by torch where it works (seconds), else by the trainer's own init (one CPU core)
  model_src=$m
  run_rc=1
  if [ -z "$torch_note" ]; then
    run_capped "$(left "$deadline")" "$dir/export_torch.txt" "" 0 \
      "$PY" dev/bench_torch_dpo.py --write-hf "$dir/init_hf" --model "$m" --data "$dir/hh.bin" --seed 1337
  fi
  if [ $run_rc != 0 ] || [ ! -f "$dir/init_hf/model.safetensors" ]; then
    run_capped "$(left "$deadline")" "$dir/export.txt" "" 0 \
      "$TRAINER" --model "$m" --train "$dir/hh.bin" --steps 0 --export-hf "$dir/init_hf" --seed 1337
  fi
  if [ $run_rc = 0 ] && [ -f "$dir/init_hf/model.safetensors" ]; then
    model_src=$dir/init_hf
    record "$m" export - - "$B" "$N" "$S" ok "$run_secs" "$dir/init_hf"
  else
    record "$m" export - - "$B" "$N" "$S" "failed ($run_end, exit $run_rc): each run initialises" "$run_secs" "$dir/export.txt"
  fi
  echo "bench_train: $m: B=$B N=$N S=$S, $(left "$deadline") s left of its share"
  for job in "on on" "off on" torch "on off" "off off"; do
    limit=$(left "$deadline")
    if [ "$job" = torch ]; then
      if [ -n "$torch_note" ]; then continue; fi
      if [ "$limit" -lt 15 ]; then record "$m" torch - - "$B" "$N" "$S" "not run: budget" 0 -; continue; fi
      # the script stops stepping 10 s before the cap (its last step must end in time)
      run_capped "$limit" "$dir/torch.txt" "" 0 \
        "$PY" dev/bench_torch_dpo.py --data "$dir/hh.bin" --model "$m" --seq-len "$SEQ" --micro-rows "$B" \
        --batch-pairs "$N" --steps "$S" --variants flex,sdpa --time-limit $((limit - 10)) --out "$dir/torch.tsv"
      case $run_end in
        limit) status="cut at the budget ($run_secs s)" ;;
        *) [ $run_rc = 0 ] && status=ok ||
             status="failed (exit $run_rc): $(tail -1 "$dir/torch.txt" | tr '\t' ' ' | cut -c1-200)" ;;
      esac
      record "$m" torch - - "$B" "$N" "$S" "$status" "$run_secs" "$dir/torch.tsv"
      echo "bench_train: $m PyTorch: $status"
      continue
    fi
    read -r sharing packing <<< "$job"
    run=$dir/sharing-$sharing.packing-$packing
    if [ "$limit" -lt 5 ]; then record "$m" ours "$sharing" "$packing" "$B" "$N" "$S" "not run: budget" 0 "$run"; continue; fi
    run_capped "$limit" "$run.txt" "$run/log.jsonl" "$S" \
      "$TRAINER" --train "$dir/hh.bin" --val none --model "$model_src" --out "$run" --ref-cache "$dir/ref" \
      --prefix-sharing "$sharing" --packing "$packing" --seq-len "$SEQ" --micro-rows "$B" --batch-pairs "$N" \
      --steps "$S" --no-shuffle --seed 1337 --lr 1e-5 --warmup 1 --checkpoint-every 0 --final-checkpoint 0 \
      --eval-every 0 --sample-every 0 --log-every 1 --quiet
    done_steps=$(step_records "$run/log.jsonl")
    case $run_end in
      records) status=ok ;;
      limit) status="cut at the budget after $done_steps of $S steps" ;;
      *) [ $run_rc = 0 ] && status=ok ||
           status="failed (exit $run_rc): $(grep -v '^\s*$' "$run.txt" | tail -1 | tr '\t' ' ' | cut -c1-200)" ;;
    esac
    record "$m" ours "$sharing" "$packing" "$B" "$N" "$S" "$status" "$run_secs" "$run"
    echo "bench_train: $m sharing $sharing packing $packing: $status ($run_secs s)"
  done
  rm -rf "$dir/init_hf"  # up to 6.2 GB
done
echo "took_s=$(awk -v a="$started" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')" >> "$WORK/settings.txt"

if ! $PY dev/bench_table.py "$WORK" > "$REPORT.tmp" 2> "$WORK/table.err"; then
  echo "bench_train: dev/bench_table.py failed: $(tail -3 "$WORK/table.err")"
  { echo "## Training benchmark (dev/bench_train.sh)"; echo
    echo "dev/bench_table.py failed ($(tail -1 "$WORK/table.err")); the runs are in $WORK (runs.tsv)."; } > "$REPORT"
  rm -f "$REPORT.tmp"
  exit 1
fi
mv "$REPORT.tmp" "$REPORT"
echo "bench_train: report $REPORT ($(awk -v a="$started" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }') s)"
