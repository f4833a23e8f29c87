#!/usr/bin/env bash
# Runs every libFuzzer target of fuzz/ (fuzz/fuzz.mk) for a short, fixed number of inputs
# (FUZZ_RUNS, default 2000, fixed seed) from its committed seed corpus, so a loader that
# crashes, hangs, leaks past a bound or reads out of range fails make test. Skips loudly when
# clang++ or its libFuzzer runtime is missing. Prints PASS/FAIL/SKIP lines for dev/run_tests.sh.
set -u
runs=${FUZZ_RUNS:-2000}
targets="pairfile checkpoint ref_cache hf_model llmc jsonl_line tokenizer"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! command -v "${FUZZ_CXX:-clang++}" >/dev/null 2>&1; then
    echo "SKIP fuzz_targets: ${FUZZ_CXX:-clang++} not found (install clang to fuzz the loaders)"
    exit 0
fi
printf '#include <cstdint>\n#include <cstddef>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n' >"$tmp/probe.cpp"
if ! "${FUZZ_CXX:-clang++}" -fsanitize=fuzzer,address,undefined "$tmp/probe.cpp" -o "$tmp/probe" >"$tmp/probe.txt" 2>&1; then
    echo "SKIP fuzz_targets: ${FUZZ_CXX:-clang++} cannot link -fsanitize=fuzzer (no libFuzzer runtime): $(head -c 200 "$tmp/probe.txt")"
    exit 0
fi
if ! make --no-print-directory fuzz-build >"$tmp/build.txt" 2>&1; then
    echo "FAIL fuzz_build: $(tail -c 600 "$tmp/build.txt")"
    exit 1
fi
fails=0
for t in $targets; do
    mkdir -p "$tmp/corpus_$t"
    # new inputs go to the scratch corpus (first directory); the committed seeds are only read
    if build/fuzz/fuzz_$t -runs="$runs" -seed=1 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$tmp/" \
        "$tmp/corpus_$t" "fuzz/corpus/$t" >"$tmp/$t.txt" 2>&1; then
        echo "PASS fuzz_$t ($runs runs)"
    else
        echo "FAIL fuzz_$t: $(grep -m3 -E 'ERROR|SUMMARY|error does not name|abort|deadly' "$tmp/$t.txt" | tr '\n' ' ') (reproduce: build/fuzz/fuzz_$t with the input it reports)"
        tail -30 "$tmp/$t.txt" | sed 's/^/    /'
        fails=$((fails + 1))
    fi
done
exit $((fails > 0))
