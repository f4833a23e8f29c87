#!/usr/bin/env bash
# dev/cuda/attention_bench.sh: issue 12's attention benchmark in one call (dev/gpu_check.sh runs it):
#   1. the HH-RLHF pair file: data/prepare_dpo on data/hh-rlhf/harmless-base-test.jsonl.gz;
#   2. dev/cuda/attention VERSION --suite: the plan (masks, visible pairs, tile classes), the mask
#      files, and on a GPU our times (the nvcc build: $ATTN_BENCH_BIN, where gpu_check names its
#      own or "none" when it failed to build, else build/gpu/attention, else built here); without
#      a GPU the CPU build with --plan-only;
#   3. on a GPU, if torch with CUDA imports: dev/cuda/attention_torch.py --check (FlexAttention's
#      mask against float64) and its benchmark (FlexAttention, SDPA) on the same mask files;
#   4. the markdown report OUT_DIR/attention_bench.md (dev/cuda/attention_torch.py --report).
# Usage: dev/cuda/attention_bench.sh [OUT_DIR]   (default build/attn_bench)
# Environment: ATTN_BENCH_BUDGET seconds for steps 1-3 (default 90; an nvcc build here is not
# counted): ours may start cases during a third of it, torch during what is left minus 15 s, and
# each is killed by a timeout past its share, keeping what it measured; ATTN_BENCH_VERSION
# (default 0: the launchers train_dpo calls);
# ATTN_BENCH_TOKENS (real shared tokens per case, default 32768); ATTN_BENCH_PLAN_ONLY=1 (the plan
# only, as without a GPU: the test); NVCC; PYTHON (default python3).
# Cases are run in order (HH-RLHF, then the synthetic grid from prefix 1024 up, then 256 and 512);
# the report lists what the budget cut. Exit status 0 when our benchmark (or plan) ran and the
# report was written, else 1.
set -u
cd "$(dirname "$0")/../.."
OUT_DIR=${1:-build/attn_bench}
BUDGET=${ATTN_BENCH_BUDGET:-90}
VERSION=${ATTN_BENCH_VERSION:-0}
TOKENS=${ATTN_BENCH_TOKENS:-32768}
PYTHON=${PYTHON:-python3}
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
started=$(date +%s)
elapsed() { echo $(( $(date +%s) - started )); }
mkdir -p "$OUT_DIR"
rm -rf "$OUT_DIR/masks" "$OUT_DIR/ours.tsv" "$OUT_DIR/torch.tsv" "$OUT_DIR/attention_bench.md"
notes=()
say() { echo "attention_bench: $*"; }

# ---- 1. the HH-RLHF pairs
hh_args=()
if [ -x data/prepare_dpo ] || make -s data/prepare_dpo > "$OUT_DIR/make_prepare.log" 2>&1; then
  if ./data/prepare_dpo --input data/hh-rlhf/harmless-base-test.jsonl.gz --output "$OUT_DIR/hh.bin" \
       > "$OUT_DIR/prepare.log" 2>&1; then
    hh_args=(--hh "$OUT_DIR/hh.bin")
  else
    notes+=("data/prepare_dpo failed: no HH-RLHF cases ($(tail -1 "$OUT_DIR/prepare.log"))")
  fi
else
  notes+=("data/prepare_dpo does not build here: no HH-RLHF cases (see $OUT_DIR/make_prepare.log)")
fi

# ---- 2. the plan and our times
gpu=0
if [ "${ATTN_BENCH_PLAN_ONLY:-0}" != 1 ] && command -v nvidia-smi > /dev/null 2>&1 &&
   nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then gpu=1; fi
suite=("$VERSION" --suite "${hh_args[@]}" --tokens "$TOKENS" --masks "$OUT_DIR/masks")
ours_ok=0
if [ $gpu = 1 ]; then
  bin=${ATTN_BENCH_BIN:-}
  if [ -n "$bin" ] && [ ! -x "$bin" ]; then
    notes+=("no nvcc build of dev/cuda/attention at '$bin' (ATTN_BENCH_BIN): nothing timed")
    bin=none
  fi
  [ -z "$bin" ] && [ -x build/gpu/attention ] && bin=build/gpu/attention
  if [ -z "$bin" ]; then
    arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')
    say "building dev/cuda/attention with nvcc for sm_$arch (not counted in the budget)"
    build_start=$(date +%s)
    if "$NVCC" -O2 -std=c++17 -lineinfo -I. -I/usr/include/x86_64-linux-gnu/openblas-openmp -Xcompiler -fopenmp \
         -arch=sm_"$arch" dev/cuda/attention.cu -o "$OUT_DIR/attention" > "$OUT_DIR/build.log" 2>&1; then
      bin=$OUT_DIR/attention
    else
      notes+=("dev/cuda/attention.cu does not build with nvcc (see $OUT_DIR/build.log)")
    fi
    started=$(( started + $(date +%s) - build_start ))
  fi
  if [ -n "$bin" ] && [ "$bin" != none ]; then
    ours_budget=$(( BUDGET / 3 ))
    say "$bin ${suite[*]} --budget $ours_budget"
    timeout $(( ours_budget + 30 )) "$bin" "${suite[@]}" --tsv "$OUT_DIR/ours.tsv" --budget "$ours_budget" \
      > "$OUT_DIR/ours.log" 2>&1
    rc=$?
    if [ $rc = 0 ]; then ours_ok=1
    else notes+=("dev/cuda/attention --suite exited with status $rc: $(tail -3 "$OUT_DIR/ours.log" | tr '\n' ' ')"); fi
  fi
else
  bin=dev/cuda/attention
  [ -x "$bin" ] || make -s dev/cuda/attention > "$OUT_DIR/make_attention.log" 2>&1
  "$bin" "${suite[@]}" --plan-only > "$OUT_DIR/ours.log" 2>&1 && ours_ok=1 ||
    notes+=("$bin --plan-only failed: $(tail -3 "$OUT_DIR/ours.log" | tr '\n' ' ')")
  notes+=("no GPU here (nvidia-smi finds none, or ATTN_BENCH_PLAN_ONLY=1): the plan only, nothing timed")
fi
[ -f "$OUT_DIR/masks/cases.tsv" ] || { say "no mask files were written (see $OUT_DIR/ours.log)"; cat "$OUT_DIR/ours.log"; exit 1; }
say "ours done at $(elapsed) s"

# ---- 3. PyTorch: FlexAttention and SDPA on the same masks
if [ $gpu = 1 ]; then
  if torch_version=$("$PYTHON" -c 'import torch, sys; print(torch.__version__); sys.exit(0 if torch.cuda.is_available() else 1)' 2>"$OUT_DIR/torch_import.log"); then
    left=$(( BUDGET - $(elapsed) ))
    if [ $left -gt 20 ]; then
      say "torch $torch_version: --check and the benchmark, budget $(( left - 15 )) s"
      timeout "$left" "$PYTHON" dev/cuda/attention_torch.py --check --masks "$OUT_DIR/masks" --tsv "$OUT_DIR/torch.tsv" \
        --budget $(( left - 15 )) > "$OUT_DIR/torch.log" 2>&1
      rc=$?
      [ $rc = 124 ] && notes+=("torch: killed after $left s (timeout); the measurements before are kept")
      [ $rc != 0 ] && [ $rc != 124 ] && notes+=("torch: exited with status $rc: $(grep -v '^PASS' "$OUT_DIR/torch.log" | tail -3 | tr '\n' ' ')")
      checks="$(grep -c '^PASS' "$OUT_DIR/torch.log") passed, $(grep -c '^FAIL' "$OUT_DIR/torch.log") failed"
      notes+=("torch $torch_version; attention_torch.py --check (FlexAttention's mask_mod and varlen_attn against float64): $checks$(grep -E '^(FAIL|SKIP)' "$OUT_DIR/torch.log" | sed 's/^/; /' | tr '\n' ' ')")
    else
      notes+=("torch: not run, only $left s of the budget left")
    fi
  else
    notes+=("torch with CUDA does not import: no FlexAttention/SDPA columns ($(tail -1 "$OUT_DIR/torch_import.log"))")
  fi
fi

# ---- 4. the report
note_args=()
for n in "${notes[@]}"; do note_args+=(--note "$n"); done
note_args+=(--note "the benchmark took $(elapsed) s of its budget of $BUDGET s (ATTN_BENCH_BUDGET)")
if "$PYTHON" dev/cuda/attention_torch.py --report --masks "$OUT_DIR/masks" --ours "$OUT_DIR/ours.tsv" \
     --torch "$OUT_DIR/torch.tsv" "${note_args[@]}" > "$OUT_DIR/attention_bench.md"; then
  say "report: $OUT_DIR/attention_bench.md"
  [ $ours_ok = 1 ]
else
  say "the report failed"
  exit 1
fi
