#!/usr/bin/env bash
# make bench-cpu-step: one training step of GPT-2 124M (B=4, T=64) on the CPU, tokens/s.
# Runs dev/bench_cpu_step with the OpenBLAS kernels this environment selects, and, when the
# environment forces a core type (OPENBLAS_CORETYPE, set on some machines because old OpenBLAS
# builds misbehave on new CPUs), once more with OpenBLAS's own detection. Each run checks its
# sgemm results against double precision.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-5}
echo "== environment as given (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset})"
./dev/bench_cpu_step "$STEPS"
if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
  echo "== OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset: OpenBLAS detects the CPU itself"
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ./dev/bench_cpu_step "$STEPS"
fi
echo "llm.c's train_gpt2.c on this machine, as measured and quoted in the issue that set the"
echo "target: 2.7-2.9 s per step, about 90 tokens/s (not measured by this script)"
