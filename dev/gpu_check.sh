#!/usr/bin/env bash
# dev/gpu_check.sh: the one-call check on a machine with an NVIDIA GPU (a few minutes on an H200).
#   1. detects the GPU and its architecture (nvidia-smi --query-gpu=compute_cap);
#   2. builds natively with nvcc (in parallel) every kernel layer program dev/cuda/<layer>.cu, the
#      emulator tests dev/simt/test_*.cu and the probes dev/cuda/probes/probe_*.cu;
#   3. runs each of those tests on the GPU (they check the hardware against the same CPU references
#      that the CPU execution layer is tested against); then each layer program's benchmark mode,
#      `dev/cuda/<layer> N` for N = 1, 2, ... while the program accepts N (times and GB/s or
#      TFLOP/s go in the report, not judged);
#   4. runs each instruction probe on the GPU and compares its output with the same probe run on the
#      CPU emulation (build/probes-cpu/*.txt: made here by `make probe-outputs` if this machine can
#      build the CPU layer, or made elsewhere and copied in), with dev/cuda/probes/probe_compare;
#   4b. builds the GPU trainer (train_dpo, and test_dpo in bf16 and fp32) with nvcc (also without a
#      GPU), runs test_dpo, the default ./train_dpo (the synthetic task) and a repeat of its first 20
#      steps (bit-identical losses);
#   4c. compute-sanitizer memcheck and racecheck on one small training step of train_dpo;
#   4d. issue 12's attention benchmark, ours against FlexAttention and SDPA (dev/cuda/attention_bench.sh);
#   4e. dev/bench_train.sh: the training benchmark (d12/d24/d48, ours against PyTorch);
#      the two benchmarks get what is left of the budget (GPU_CHECK_BUDGET): the attention one at
#      most 90 s, the training one the rest but 20 s for the report; either is skipped, and the
#      report says so, when less than 30 s is left for it;
#   5. writes a markdown report dev/reports/gpu_check-<UTC date and time>.md and prints its path.
# Without a GPU it says so, compiles everything for sm_80 and sm_90 (programs using wgmma also for
# sm_90a), and exits 0 (1 if a build fails). On a GPU of compute capability 9.0 it builds for sm_90a.
# Exit status with a GPU: 0 if every build, test, sanitizer run and exact probe passed, else 1.
# The mma probe is a measurement (the emulation does not model the tensor cores' rounding), so its
# differences are reported, not failed.
# To extend it (the GPU trainer's end-to-end test and benchmarks): a dev/cuda/<layer>.cu or
# dev/simt/test_*.cu is picked up by itself; other steps go before section 5, adding their results
# to a table of the report and setting all_ok=0 on failure.
# Environment: NVCC (nvcc to use), NVCC_LIBS (extra link flags, e.g. -lcublas), GPU_CHECK_JOBS
# (parallel builds), GPU_CHECK_TIMEOUT (seconds per test run, default 120), GPU_CHECK_SANITIZE=0
# (skip compute-sanitizer), GPU_CHECK_BUDGET (seconds for the whole check, default 480: the issue's
# 8 minutes on an H200; the benchmarks shrink to fit it).
set -u
cd "$(dirname "$0")/.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
NVCC_LIBS=${NVCC_LIBS:--lcublasLt -lcublas}   # kernels/matmul.cuh calls cuBLASLt
JOBS=${GPU_CHECK_JOBS:-$(nproc)}
TIMEOUT=${GPU_CHECK_TIMEOUT:-120}
SANITIZE=${GPU_CHECK_SANITIZE:-1}
BUDGET=${GPU_CHECK_BUDGET:-480}
OUT=build/gpu
mkdir -p "$OUT"
# a GPU machine without apt: the -dev packages fetched elsewhere by dev/gpu_deps.sh download
if [ -d build/gpu-deps/debs ]; then
  eval "$(dev/gpu_deps.sh unpack)" || echo "gpu_check: dev/gpu_deps.sh unpack failed; builds that need JSON, zlib or cblas.h will fail"
fi
started=$(date +%s)
seconds_left() { echo $(( BUDGET - ($(date +%s) - started) )); }

if [ ! -x "$NVCC" ]; then
  echo "gpu_check: nvcc not found (set NVCC=/path/to/nvcc)"; exit 1
fi

# ---- 1. the GPU
gpu_line=""
if command -v nvidia-smi > /dev/null 2>&1; then
  gpu_line=$(nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader 2>/dev/null | head -1)
fi
if [ -n "$gpu_line" ]; then
  IFS=',' read -r gpu_name gpu_driver gpu_cap gpu_memory <<< "$gpu_line"
  gpu_name=$(echo $gpu_name); gpu_driver=$(echo $gpu_driver); gpu_memory=$(echo $gpu_memory)
  arch=$(echo "$gpu_cap" | tr -d ' .')
  # compute capability 9.0: sm_90a, the target with Hopper's wgmma (kernels/ptx.cuh), which
  # dev/simt/test_wgmma and the wgmma probe need; code for sm_90a runs only on 9.0 devices
  [ "$arch" = 90 ] && arch=90a
  ARCH_FLAGS="-arch=sm_$arch"
  echo "gpu_check: $gpu_name (driver $gpu_driver, compute capability $(echo $gpu_cap), $gpu_memory)"
  # a CUDA runtime newer than the driver supports fails every call with cudaErrorInsufficientDriver
  driver_cuda=$(nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' | grep -o '[0-9.]*$')
  nvcc_cuda=$($NVCC --version | grep -o 'release [0-9.]*' | grep -o '[0-9.]*$')
  driver_note="driver supports CUDA ${driver_cuda:-?}, nvcc is CUDA ${nvcc_cuda:-?}"
  if [ -n "$driver_cuda" ] && [ -n "$nvcc_cuda" ] && \
     [ "$(printf '%s\n%s\n' "$driver_cuda" "$nvcc_cuda" | sort -V | head -1)" != "$nvcc_cuda" ]; then
    driver_note="$driver_note: **the driver is older than the toolkit; expect cudaErrorInsufficientDriver** (use an nvcc no newer than the driver: NVCC=...)"
  fi
  echo "gpu_check: $driver_note"
else
  ARCH_FLAGS="-gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90"
  echo "gpu_check: no GPU found (nvidia-smi absent or reports none): build-only pass for sm_80 and sm_90 (and sm_90a for wgmma users)"
fi

# ---- 2. build (one nvcc per source, in parallel; a log per program)
# NCCL, for the programs that include kernels/nccl_common.h (dev/simt/test_nccl_cpu): where
# dev/gpu_check_zero.sh finds it (NCCL_HOME, the toolkit, /usr, PyTorch's nvidia-nccl wheel);
# elsewhere they are skipped, and the build table says so
NCCL_FLAGS=$(dev/gpu_check_zero.sh --nccl-flags)
[ -n "$NCCL_FLAGS" ] || echo "gpu_check: NCCL not found (nccl.h and libnccl.so.2; set NCCL_HOME): its programs are SKIPPED"
layers=$(ls dev/cuda/*.cu 2>/dev/null)
sources=$(ls dev/cuda/*.cu dev/simt/test_*.cu dev/cuda/probes/probe_*.cu 2>/dev/null)
# -fopenmp for the host code: layer programs call their cpu/ references (LayerNorm's uses OpenMP)
build_one() {  # source -> $OUT/<name>, status in $OUT/<name>.build ("ok", "failed" or "skipped: ...")
  local src=$1 name nccl="" arch_flags=$ARCH_FLAGS
  name=$(basename "${src%.*}")
  # without a GPU, programs that use wgmma are also built for sm_90a (their only real target)
  if [ -z "$gpu_line" ] && grep -q 'wgmma' "$src"; then arch_flags="$arch_flags -gencode arch=compute_90a,code=sm_90a"; fi
  if grep -q 'kernels/nccl_common.h' "$src"; then
    [ -n "$NCCL_FLAGS" ] || { echo "skipped: no NCCL" > "$OUT/$name.build"; return; }
    nccl=$NCCL_FLAGS
  fi
  if $NVCC -O2 -std=c++17 -lineinfo -I. -I/usr/include/x86_64-linux-gnu/openblas-openmp -Xcompiler -fopenmp $arch_flags "$src" -o "$OUT/$name" $NVCC_LIBS $nccl > "$OUT/$name.build.log" 2>&1
  then echo ok > "$OUT/$name.build"; else echo failed > "$OUT/$name.build"; fi
}
export -f build_one; export NVCC ARCH_FLAGS NVCC_LIBS NCCL_FLAGS OUT gpu_line
echo "gpu_check: building $(echo $sources | wc -w) programs and probe_compare with $JOBS jobs"
printf '%s\n' $sources dev/cuda/probes/probe_compare.cpp | xargs -P "$JOBS" -I{} bash -c 'build_one {}'
build_ok=1
build_table=""
for src in $sources dev/cuda/probes/probe_compare.cpp; do
  name=$(basename "${src%.*}")
  status=$(cat "$OUT/$name.build")
  build_table+="| $src | $status |"$'\n'
  case $status in ok|skipped*) ;; *) build_ok=0; echo "BUILD FAILED $src:"; tail -20 "$OUT/$name.build.log";; esac
done

# the GPU trainer and its test (test_dpo.cu includes train_dpo.cu, and the CPU reference cpu/*.h:
# OpenMP for it); headers cblas.h and nlohmann-json, no BLAS library; test_dpo also all-fp32
build_trainer() {  # name source extra-flags [extra-libraries]
  if $NVCC -O3 -std=c++17 -I. -I/usr/include/x86_64-linux-gnu/openblas-openmp $ARCH_FLAGS $3 "$2" -o "$OUT/$1" \
       -lcublasLt -lcublas ${4:-} > "$OUT/$1.build.log" 2>&1
  then echo ok > "$OUT/$1.build"; else echo failed > "$OUT/$1.build"; fi
}
echo "gpu_check: building train_dpo, test_dpo, test_dpo_fp32"
build_trainer train_dpo train_dpo.cu "$([ -n "$NCCL_FLAGS" ] && echo -DUSE_NCCL=1)" "$NCCL_FLAGS" &  # NCCL where found
build_trainer test_dpo test_dpo.cu "-Xcompiler -fopenmp -lgomp" &
build_trainer test_dpo_fp32 test_dpo.cu "-DENABLE_FP32 -Xcompiler -fopenmp -lgomp" &
wait
for name in train_dpo test_dpo test_dpo_fp32; do
  status=$(cat "$OUT/$name.build")
  [ "$status" = ok ] || { build_ok=0; echo "BUILD FAILED $name:"; tail -20 "$OUT/$name.build.log"; }
  build_table+="| $name | $status |"$'\n'
done

if [ -z "$gpu_line" ]; then
  if [ $build_ok = 1 ]; then echo "gpu_check: every program builds; no GPU, so nothing was run"; exit 0; fi
  echo "gpu_check: build failures above; no GPU, so nothing was run"; exit 1
fi

# ---- 3. tests on the GPU
all_ok=$build_ok
test_table=""
failures=""
tests=$(printf '%s\n' $sources | grep -v '/probe_')
probes=$(printf '%s\n' $sources | grep '/probe_')
for src in $tests; do
  name=$(basename "$src" .cu)
  [ "$(cat "$OUT/$name.build")" = ok ] || { test_table+="| $name | not built ($(cat "$OUT/$name.build")) | | | |"$'\n'; continue; }
  t0=$(date +%s%N)
  timeout "$TIMEOUT" "./$OUT/$name" > "$OUT/$name.log" 2>&1
  rc=$?
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  p=$(grep -c '^PASS' "$OUT/$name.log"); f=$(grep -c '^FAIL' "$OUT/$name.log"); s=$(grep -c '^SKIP' "$OUT/$name.log")
  verdict=ok
  if [ $rc -ne 0 ] || [ "$f" -ne 0 ]; then verdict="FAILED (exit $rc)"; all_ok=0
    failures+="#### $name"$'\n\n```\n'"$(grep -v '^PASS' "$OUT/$name.log" | tail -30)"$'\n```\n\n'
  fi
  test_table+="| $name | $verdict | $p | $f | $s | $ms ms |"$'\n'
  echo "gpu_check: $name: $verdict ($p passed, $f failed, $s skipped)"
done

bench_text=""
for src in $layers; do
  name=$(basename "$src" .cu)
  [ "$(cat "$OUT/$name.build")" = ok ] || continue
  for version in $(seq 1 20); do
    timeout "$TIMEOUT" "./$OUT/$name" "$version" > "$OUT/$name.bench$version.log" 2>&1 || break
    bench_text+="$(cat "$OUT/$name.bench$version.log")"$'\n'
    echo "gpu_check: benchmark $(tail -1 "$OUT/$name.bench$version.log")"
  done
done

# ---- 4. probes: GPU against the CPU emulation
probe_text=""
for src in $probes; do
  name=$(basename "$src" .cu)
  [ -f "build/probes-cpu/$name.txt" ] && continue
  echo "gpu_check: no build/probes-cpu/$name.txt; trying make probe-outputs (CPU emulation)"
  make -j"$JOBS" probe-outputs > "$OUT/probe-outputs.log" 2>&1 || true
  break
done
for src in $probes; do
  name=$(basename "$src" .cu)
  probe_text+="#### $name"$'\n\n```\n'
  if [ "$(cat "$OUT/$name.build")" != ok ]; then
    probe_text+="not built"$'\n'; all_ok=0
  elif [ "$name" = probe_wgmma ] && [ "$arch" != 90a ]; then
    probe_text+="skipped: wgmma needs a GPU of compute capability 9.0 (sm_90a); this one is $arch"$'\n'
  elif ! timeout "$TIMEOUT" "./$OUT/$name" > "$OUT/$name.gpu.txt" 2> "$OUT/$name.gpu.err"; then
    probe_text+="failed on the GPU: $(tail -5 "$OUT/$name.gpu.err")"$'\n'; all_ok=0
  elif [ ! -f "build/probes-cpu/$name.txt" ]; then
    probe_text+="no CPU output to compare with: run 'make probe-outputs' where the CPU layer builds"$'\n'
    probe_text+="and copy build/probes-cpu/ here (see $OUT/probe-outputs.log)"$'\n'; all_ok=0
  else
    compared=$("./$OUT/probe_compare" "$OUT/$name.gpu.txt" "build/probes-cpu/$name.txt" --measure mma_ --nan-equal bf16_ 2>&1)
    [ $? -eq 0 ] || all_ok=0
    probe_text+="$compared"$'\n'
  fi
  probe_text+='```'$'\n\n'
done

# ---- 4b. the GPU trainer: test_dpo (against the CPU reference in double), then the bundled
# synthetic task with the defaults (as ./train_dpo with no arguments) and a repeat of its first 20
# steps, which must give bit-identical losses (determinism)
trainer_table=""
for name in test_dpo test_dpo_fp32; do
  [ "$(cat "$OUT/$name.build")" = ok ] || { trainer_table+="| $name | not built | |"$'\n'; continue; }
  timeout "$TIMEOUT" "./$OUT/$name" > "$OUT/$name.log" 2>&1
  rc=$?
  p=$(grep -c '^PASS' "$OUT/$name.log"); f=$(grep -c '^FAIL' "$OUT/$name.log")
  verdict=ok
  if [ $rc -ne 0 ] || [ "$f" -ne 0 ]; then verdict="FAILED (exit $rc)"; all_ok=0
    failures+="#### $name"$'\n\n```\n'"$(grep -v '^PASS' "$OUT/$name.log" | tail -30)"$'\n```\n\n'
  fi
  trainer_table+="| $name | $verdict | $p passed, $f failed; $(grep 'max errors' "$OUT/$name.log" | head -1 | sed 's/^ *//') |"$'\n'
  echo "gpu_check: $name: $verdict ($p passed, $f failed)"
done
if [ "$(cat "$OUT/train_dpo.build")" = ok ]; then
  run_dir=$OUT/train_dpo_default
  rm -rf "$run_dir" "$run_dir.repeat"
  t0=$(date +%s)
  timeout "$TIMEOUT" "./$OUT/train_dpo" --out "$run_dir" > "$OUT/train_dpo.log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - t0 ))
  acc=$(grep '"eval_' "$run_dir/log.jsonl" 2>/dev/null | tail -1 | grep -o '"eval_rewards/accuracies": [0-9.e+-]*' | grep -o '[0-9.e+-]*$')
  last=$(grep '^step' "$OUT/train_dpo.log" | tail -1)
  verdict=ok
  [ $rc -eq 0 ] || { verdict="FAILED (exit $rc)"; all_ok=0
    failures+="#### train_dpo"$'\n\n```\n'"$(tail -30 "$OUT/train_dpo.log")"$'\n```\n\n'; }
  trainer_table+="| ./train_dpo (no arguments: the demo) | $verdict | ${secs} s; final eval accuracy ${acc:-?}; last step line: $last |"$'\n'
  echo "gpu_check: train_dpo defaults: $verdict, eval accuracy ${acc:-?}"
  timeout "$TIMEOUT" "./$OUT/train_dpo" --out "$run_dir.repeat" --stop-after 20 --ref-cache "$run_dir/ref_logps" \
    > "$OUT/train_dpo.repeat.log" 2>&1
  losses() { grep -v '"eval_' "$1" | sed -n 's/.*"step": \([0-9]*\), "loss": \([^,]*\),.*/\1 \2/p' | head -20; }
  if [ "$(losses "$run_dir/log.jsonl" | wc -l)" = 20 ] && \
     [ "$(losses "$run_dir/log.jsonl")" = "$(losses "$run_dir.repeat/log.jsonl")" ]; then verdict=ok
  else verdict="FAILED: the losses of the first 20 steps differ between two runs"; all_ok=0; fi
  trainer_table+="| train_dpo run twice (20 steps) | $verdict | losses bit-identical |"$'\n'
  echo "gpu_check: train_dpo determinism: $verdict"
else
  trainer_table+="| ./train_dpo | not built | |"$'\n'
fi

# ---- 4c. compute-sanitizer on one small training step (every kernel the trainer runs, on the
# smallest bundled data): memcheck (out-of-bounds and misaligned accesses) and racecheck (shared
# memory races, which the CPU layer's thread orderings can hide)
sanitizer_table=""
if [ "$SANITIZE" = 1 ] && command -v compute-sanitizer > /dev/null 2>&1 && [ "$(cat "$OUT/train_dpo.build")" = ok ]; then
  for tool in memcheck racecheck; do
    rm -rf "$OUT/sanitize_$tool"
    timeout "$TIMEOUT" compute-sanitizer --tool $tool --error-exitcode 99 "./$OUT/train_dpo" --out "$OUT/sanitize_$tool" \
      --train data/synthetic/sort_val.bin --val none --steps 1 --sample-every 0 --quiet > "$OUT/sanitize_$tool.log" 2>&1
    rc=$?
    case $rc in
      0) verdict=ok ;;
      124) verdict="timed out after $TIMEOUT s" ;;
      *) verdict="FAILED (exit $rc)"; all_ok=0
         failures+="#### $tool, one training step"$'\n\n```\n'"$(tail -30 "$OUT/sanitize_$tool.log")"$'\n```\n\n' ;;
    esac
    sanitizer_table+="| train_dpo, one step of the sort task | $tool | $verdict |"$'\n'
    echo "gpu_check: $tool on one training step: $verdict"
  done
else
  sanitizer_table="| train_dpo, one step | memcheck, racecheck | not run: compute-sanitizer not found, train_dpo not built or GPU_CHECK_SANITIZE=0 |"$'\n'
fi

# ---- several GPUs over NCCL (dev/gpu_check_zero.sh: train_dpo through NCCL with 1 rank, 2 ranks
# where there are 2 GPUs, a killed rank), at most 120 s of the budget; its own markdown section
zero_budget=$(( $(seconds_left) - 20 - 60 - 30 ))   # kept: the report, the training and attention benchmarks
[ $zero_budget -gt 120 ] && zero_budget=120
if [ $zero_budget -ge 45 ]; then
  ZERO_CHECK_BUDGET=$zero_budget \
  TRAIN_DPO_NCCL_BIN=$([ -n "$NCCL_FLAGS" ] && [ "$(cat "$OUT/train_dpo.build")" = ok ] && echo "$OUT/train_dpo") \
    timeout $(( zero_budget + 20 )) dev/gpu_check_zero.sh "$OUT/zero.md" || all_ok=0
else
  printf '## Several GPUs over NCCL (dev/gpu_check_zero.sh)\n\nSKIPPED: %s s of the %s s budget were left\n' \
    "$(seconds_left)" "$BUDGET" > "$OUT/zero.md"
fi

# ---- 4d. the attention benchmark (at most 90 s of the budget; report: $OUT/attn_bench/attention_bench.md)
attn_budget=$(( $(seconds_left) - 20 - 60 ))   # 60 s kept for the training benchmark
[ $attn_budget -gt 90 ] && attn_budget=90
rm -rf "$OUT/attn_bench"
if [ $attn_budget -ge 30 ]; then
  ATTN_BENCH_BUDGET=$attn_budget ATTN_BENCH_BIN=$([ "$(cat "$OUT/attention.build")" = ok ] && echo "$OUT/attention" || echo none) \
    timeout $(( attn_budget + 110 )) dev/cuda/attention_bench.sh "$OUT/attn_bench" > "$OUT/attn_bench.log" 2>&1 \
    || echo "gpu_check: attention benchmark: see $OUT/attn_bench.log"
else
  mkdir -p "$OUT/attn_bench"
  echo "not run: $(seconds_left) s of the ${BUDGET} s budget were left (GPU_CHECK_BUDGET)" > "$OUT/attn_bench/attention_bench.md"
fi

# ---- 4e. the training benchmark: d12/d24/d48, sharing x packing, and PyTorch (not a test; what is
# left of the budget but 20 s for the report)
rm -f "$OUT/bench_train.md"
train_budget=$(( $(seconds_left) - 20 ))
if [ "$(cat "$OUT/train_dpo.build")" != ok ]; then
  printf '## Training benchmark\n\nnot run: train_dpo did not build\n' > "$OUT/bench_train.md"
elif [ $train_budget -ge 30 ]; then
  BENCH_BUDGET_S=$train_budget dev/bench_train.sh "$OUT/train_dpo" "$OUT/bench_train.md"
else
  printf '## Training benchmark\n\nnot run: %s s of the %s s budget were left (GPU_CHECK_BUDGET)\n' \
    "$(seconds_left)" "$BUDGET" > "$OUT/bench_train.md"
fi

# ---- 5. report
stamp=$(date -u +%Y%m%d-%H%M%S)
mkdir -p dev/reports
report=dev/reports/gpu_check-$stamp.md
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "unknown (no git)")
dirty=$(git status --porcelain 2>/dev/null | grep -v '^??' | head -1)
[ -n "$dirty" ] && commit="$commit (with uncommitted changes)"
{
  echo "# gpu_check $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- GPU: $gpu_name, compute capability $(echo $gpu_cap), $gpu_memory"
  echo "- driver: $gpu_driver ($driver_note); $($NVCC --version | tail -2 | head -1)"
  echo "- commit: $commit; host: $(hostname), $(nproc) CPUs"
  echo "- result: $([ $all_ok = 1 ] && echo 'everything passed' || echo '**failures, see below**'); took $(( $(date +%s) - started )) s"
  echo
  echo "## Builds (nvcc $ARCH_FLAGS)"
  echo
  echo "| source | build |"; echo "|---|---|"; printf '%s' "$build_table"
  echo
  echo "## Tests on the GPU"
  echo
  echo "| test | result | passed | failed | skipped | time |"; echo "|---|---|---|---|---|---|"; printf '%s' "$test_table"
  echo
  echo "## Benchmarks (dev/cuda/<layer> <version>)"
  echo
  echo '```'; printf '%s' "$bench_text"; echo '```'
  echo
  echo "## Attention: ours against FlexAttention and SDPA (dev/cuda/attention_bench.sh)"
  echo
  cat "$OUT/attn_bench/attention_bench.md" 2>/dev/null || echo "no report: see $OUT/attn_bench.log"
  echo
  echo "## The GPU trainer"
  echo
  echo "| run | result | details |"; echo "|---|---|---|"; printf '%s' "$trainer_table"
  echo
  echo "## compute-sanitizer"
  echo
  echo "| test | tool | result |"; echo "|---|---|---|"; printf '%s' "$sanitizer_table"
  echo
  echo "## Instruction probes: GPU against the CPU emulation"
  echo
  echo "Bit patterns compared value by value. ldmatrix, wgmma and bf16 must be identical (bf16 NaNs may differ"
  echo "in payload: host and device CUDA pick different NaNs; the wgmma inputs make every sum exact, so a"
  echo "difference is a layout the emulation gets wrong); mma_case<k> is a"
  echo "measurement of how the tensor cores' accumulation differs from the emulation's (fp32, k order,"
  echo "round to nearest); see dev/simt/TENSOR.md for the cases."
  echo
  printf '%s' "$probe_text"
  cat "$OUT/zero.md" 2>/dev/null; echo
  [ -f "$OUT/bench_train.md" ] && { cat "$OUT/bench_train.md"; echo; }
  if [ -n "$failures" ]; then echo "## Failures"; echo; printf '%s' "$failures"; fi
} > "$report"
echo "gpu_check: $([ $all_ok = 1 ] && echo 'all passed' || echo 'FAILURES'); report: $report"
[ $all_ok = 1 ]
