#!/usr/bin/env bash
# dev/gpu_check_zero.sh: the multi-GPU step of dev/gpu_check.sh (issue 13, kernels/zero.cuh).
# Builds train_dpo with NCCL, runs the synthetic task for 30 steps through the NCCL path with one
# rank (--world-size 1: NCCL with a communicator of one, file rendezvous, no MPI) and, if
# nvidia-smi lists 2 GPUs or more, with 2 ranks (2 processes, file rendezvous) and ZeRO-1; the
# 2-rank losses must follow the 1-rank ones (bf16: other sums, so within 2% per step) and both
# runs must end with exit 0. Then a 2-rank run whose rank 1 is killed must end within its
# --dist-timeout (20 s) with "did not complete".
# `dev/gpu_check_zero.sh --nccl-flags` only prints the nvcc flags for NCCL (empty: not found).
# Writes its markdown section to $1 (default build/gpu/zero.md); exit 0 if every run passed or was
# skipped (no NCCL, the budget spent: the section says SKIPPED), 1 if one failed.
# Budget: ZERO_CHECK_BUDGET s (default 150) in all, each step capped by timeout; past it the rest
# is skipped. gpu_check.sh
# passes TRAIN_DPO_NCCL_BIN, its own train_dpo when it built it with NCCL, which saves the build.
# NCCL: nccl.h and libnccl from NCCL_HOME, the CUDA toolkit, /usr, or PyTorch's nvidia-nccl wheel
# (which has the library; if it lacks the header the step is skipped and says so).
set -u
cd "$(dirname "$0")/.."
REPORT=${1:-build/gpu/zero.md}
OUT=build/gpu/zero
[ "${1:-}" = --nccl-flags ] && REPORT=/dev/null
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
BUDGET=${ZERO_CHECK_BUDGET:-150}
started=$(date +%s)
mkdir -p "$OUT" "$(dirname "$REPORT")"
left() { echo $(( BUDGET - ($(date +%s) - started) )); }
table=""
ok=1
finish() {
  {
    echo "## Several GPUs over NCCL (dev/gpu_check_zero.sh)"
    echo
    echo "$1"
    echo
    if [ -n "$table" ]; then echo "| run | result | details |"; echo "|---|---|---|"; printf '%s' "$table"; fi
  } > "$REPORT"
  echo "gpu_check_zero: $1"
  exit $(( 1 - ok ))
}

# ---- NCCL
inc=""; lib=""
for d in "${NCCL_HOME:-}" "$(dirname "$(dirname "$NVCC")")" /usr /usr/local; do
  [ -n "$d" ] && [ -f "$d/include/nccl.h" ] && { inc=$d/include; break; }
done
for d in "${NCCL_HOME:-}/lib" "$(dirname "$(dirname "$NVCC")")/lib64" /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/lib; do
  [ -f "$d/libnccl.so.2" ] && { lib=$d; break; }
done
wheel=$(python3 -c 'import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__ or list(nvidia.nccl.__path__)[0]))' 2>/dev/null)
if [ -n "$wheel" ]; then
  [ -z "$inc" ] && [ -f "$wheel/include/nccl.h" ] && inc=$wheel/include
  [ -z "$lib" ] && [ -f "$wheel/lib/libnccl.so.2" ] && lib=$wheel/lib
fi
if [ "${1:-}" = --nccl-flags ]; then  # for gpu_check.sh: nvcc flags that compile and link NCCL, or nothing
  [ -n "$inc" ] && [ -n "$lib" ] && echo "-I$inc -L$lib -l:libnccl.so.2 -Xlinker -rpath=$lib"
  exit 0
fi
if [ -z "$inc" ] || [ -z "$lib" ]; then
  finish "SKIPPED: NCCL not found (header: ${inc:-none}, libnccl.so.2: ${lib:-none}; PyTorch's wheel: ${wheel:-none}); set NCCL_HOME"
fi

# ---- build (the arch of GPU 0)
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
[ -n "$arch" ] || finish "SKIPPED: no GPU (nvidia-smi lists none)"
t0=$(date +%s)
if [ -n "${TRAIN_DPO_NCCL_BIN:-}" ] && [ -x "$TRAIN_DPO_NCCL_BIN" ]; then
  cp "$TRAIN_DPO_NCCL_BIN" "$OUT/train_dpo"
  echo "built by gpu_check.sh with -DUSE_NCCL=1" > "$OUT/build.log"
elif ! timeout "$(left)" "$NVCC" -O3 -std=c++17 -I. -I"$inc" -I/usr/include/x86_64-linux-gnu/openblas-openmp -arch=sm_$arch \
     -DUSE_NCCL=1 train_dpo.cu -o "$OUT/train_dpo" -lcublasLt -lcublas -L"$lib" -l:libnccl.so.2 \
     -Xlinker -rpath="$lib" > "$OUT/build.log" 2>&1; then
  ok=0
  table+="| build (nvcc sm_$arch, NCCL from $lib) | FAILED | $(tail -3 "$OUT/build.log" | tr '\n|' '  ') |"$'\n'
  finish "FAILED: the build (log $OUT/build.log)"
fi
table+="| build (nvcc sm_$arch, NCCL headers $inc, library $lib) | ok | $(( $(date +%s) - t0 )) s |"$'\n'

losses() { grep -v '"eval_' "$1" 2>/dev/null | sed -n 's/.*"step": \([0-9]*\), "loss": \([^,]*\),.*/\1 \2/p'; }
tok_s() { grep -v '"eval_' "$1" 2>/dev/null | tail -5 | grep -o '"tokens_per_sec": [0-9.]*' | grep -o '[0-9.]*$' | awk '{s+=$1} END {if (NR) printf "%.0f", s/NR}'; }
common="--steps 30 --eval-every 0 --sample-every 0 --log-every 10 --dist-timeout 60"

# ---- one rank through NCCL
run1=$OUT/w1
rm -rf "$run1"
timeout "$(left)" "./$OUT/train_dpo" $common --world-size 1 --rank 0 --dist-init "file:$run1/rendezvous" --out "$run1" \
  > "$OUT/w1.log" 2>&1
rc=$?
if [ $rc -eq 0 ] && [ "$(losses "$run1/log.jsonl" | wc -l)" = 30 ]; then v=ok; else v="FAILED (exit $rc)"; ok=0; fi
table+="| 1 rank, NCCL path (--world-size 1, file rendezvous) | $v | last step: $(grep '^step' "$OUT/w1.log" | tail -1); $(tok_s "$run1/log.jsonl") tokens/s |"$'\n'

# ---- two ranks, if there are two GPUs
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
if [ "$gpus" -lt 2 ]; then
  finish "1 rank through NCCL: $v; 2 ranks not run (nvidia-smi lists $gpus GPU)"
fi
if [ "$(left)" -lt 30 ]; then finish "SKIPPED the 2-rank runs: the ${BUDGET} s budget is spent"; fi
run2=$OUT/w2
rm -rf "$run2"
pids=()
for r in 0 1; do
  timeout "$(left)" "./$OUT/train_dpo" $common --world-size 2 --rank $r --local-rank $r --dist-init "file:$run2/rendezvous" \
    --out "$run2" --ref-cache "$run1/ref_logps" > "$OUT/w2.rank$r.log" 2>&1 &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
why=$(paste <(losses "$run1/log.jsonl") <(losses "$run2/log.jsonl") | awk '
  { n++; d = $2 - $4; if (d < 0) d = -d; r = d / ($2 < 0 ? -$2 : $2); if (r > m) m = r; if ($1 != $3 || r > 0.02) bad = 1 }
  END { printf "%d steps, largest relative loss difference to 1 rank %.2g", n, m; exit (bad || n != 30) }')
close=$?
if [ $rc -eq 0 ] && [ $close -eq 0 ]; then v=ok; else v="FAILED (exit $rc)"; ok=0; fi
table+="| 2 ranks, ZeRO-1 (2 GPUs, file rendezvous) | $v | $why; $(tok_s "$run2/log.jsonl") tokens/s (both GPUs; not a benchmark: tiny model) |"$'\n'

# ---- a rank that dies: the other ends within --dist-timeout
if [ "$(left)" -lt 40 ]; then finish "SKIPPED the killed-rank run: the ${BUDGET} s budget is spent"; fi
run3=$OUT/kill
rm -rf "$run3"
timeout 60 "./$OUT/train_dpo" --steps 100000 --eval-every 0 --sample-every 0 --dist-timeout 20 --world-size 2 --rank 0 \
  --local-rank 0 --dist-init "file:$run3/rendezvous" --out "$run3" --ref-cache "$run1/ref_logps" > "$OUT/kill.rank0.log" 2>&1 &
p0=$!
timeout 60 "./$OUT/train_dpo" --steps 100000 --eval-every 0 --sample-every 0 --dist-timeout 20 --world-size 2 --rank 1 \
  --local-rank 1 --dist-init "file:$run3/rendezvous" --out "$run3" --ref-cache "$run1/ref_logps" > "$OUT/kill.rank1.log" 2>&1 &
p1=$!
for _ in $(seq 200); do [ "$(losses "$run3/log.jsonl" | wc -l)" -ge 5 ] && break; sleep 0.1; done
kill -9 $p1 2>/dev/null
t0=$(date +%s)
wait $p0; rc=$?
secs=$(( $(date +%s) - t0 ))
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "rank 0 of 2: .*\(did not complete\|failed\)" "$OUT/kill.rank0.log"; then v=ok; else v="FAILED (exit $rc)"; ok=0; fi
table+="| 2 ranks, rank 1 killed after step 5 | $v | rank 0 ended in $secs s (--dist-timeout 20): $(grep 'error' "$OUT/kill.rank0.log" | head -1 | tr '|' ' ') |"$'\n'
finish "$([ $ok = 1 ] && echo 'all passed' || echo 'FAILURES') in $(( $(date +%s) - started )) s"
