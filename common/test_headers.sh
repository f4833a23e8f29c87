#!/usr/bin/env bash
# Each common/ header is host code that both trainers include, so each must compile on its own
# (it includes what it uses) with g++ and with nvcc, and must not pull in BLAS, OpenMP or CUDA
# (the compilers' dependency lists are checked, since cblas.h sits on the default include path).
# One translation unit per header: "#include "common/X.h"" and nothing else.
set -u
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. dev/test_lib.sh  # report

headers=(common/*.h)

for h in "${headers[@]}"; do
  name=$(basename "$h" .h)
  printf '#include "%s"\n' "$h" >"$tmp/$name.cu"
  cp "$tmp/$name.cu" "$tmp/$name.cpp"
  # -Werror includes unknown pragmas: an "omp" pragma in a header is an OpenMP dependency
  g++ -std=c++17 -Wall -Wextra -Wno-unused-parameter -Werror -I. -fsyntax-only "$tmp/$name.cpp" \
      >"$tmp/$name.gxx" 2>&1
  report $? "header_alone_gxx_$name" "$(head -c 600 "$tmp/$name.gxx")"
  bad=$(g++ -std=c++17 -I. -M "$tmp/$name.cpp" 2>/dev/null | tr ' \\' '\n\n' |
        grep -E '(^|/)(cblas|openblas_config|omp|cuda_runtime|cuda)\.h$' | tr '\n' ' ')
  report "$([ -z "$bad" ] && echo 0 || echo 1)" "header_no_blas_omp_cuda_$name" "includes $bad"
done

# nvcc: -cuda runs the CUDA front end (host and device sides of the translation unit) and stops
# before the host compiler's own compile, which the g++ check above already does; 2-5 s per
# header, two at a time.
if ! command -v nvcc >/dev/null 2>&1; then
  echo "SKIP header_alone_nvcc: nvcc is not installed"
  exit $((fails > 0))
fi
printf '%s\n' "${headers[@]}" | xargs -P 2 -I{} sh -c '
  name=$(basename {} .h)
  nvcc -std=c++17 -I. -x cu -cuda "$0/$name.cu" -o "$0/$name.ii" >"$0/$name.nvcc" 2>&1
  echo $? >"$0/$name.nvcc_rc"' "$tmp"
for h in "${headers[@]}"; do
  name=$(basename "$h" .h)
  report "$(cat "$tmp/$name.nvcc_rc")" "header_alone_nvcc_$name" "$(head -c 600 "$tmp/$name.nvcc")"
done
exit $((fails > 0))
