#!/usr/bin/env bash
# Test of the attention benchmark's scripts without a GPU or torch: dev/cuda/attention_bench.sh in
# its plan-only mode (the real HH-RLHF pair file, dev/cuda/attention --suite --plan-only, the report),
# then dev/cuda/attention_torch.py --self-test on the mask files it wrote (its reader, visible pairs
# and tile classes recomputed in Python against cases.tsv, the report's arithmetic), and that a
# damaged mask file is refused with its name. Needs dev/cuda/attention and data/prepare_dpo built.
# Prints PASS/FAIL lines.
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
report() {  # report OK NAME WHY
    if [ "$1" = 0 ]; then echo "PASS $2"; else echo "FAIL $2: $3"; fails=$((fails + 1)); fi
}
python3 -m py_compile dev/cuda/attention_torch.py 2>"$tmp/compile.txt"
report $? attention_torch_compiles "$(cat "$tmp/compile.txt")"

ATTN_BENCH_PLAN_ONLY=1 ATTN_BENCH_TOKENS=8192 dev/cuda/attention_bench.sh "$tmp/bench" > "$tmp/bench.txt" 2>&1
report $? attention_bench_plan_only "$(tail -5 "$tmp/bench.txt")"
md=$tmp/bench/attention_bench.md
# 3 HH-RLHF groups (T = 1024, 2048, 4096) and 5 x 4 synthetic ones, each shared and unshared
rows=$(grep -cE '^\| (hh-T(1024|2048|4096)|syn-P[0-9]+-r[1248]) \| (shared|unshared) \|' "$md" 2>/dev/null)
report $([ "$rows" = 46 ] && echo 0 || echo 1) attention_bench_report_plan_rows "$rows plan rows, expected 46"
grep -q "the plan only, nothing timed" "$md" 2>/dev/null && grep -q "No times: nothing was measured" "$md"
report $? attention_bench_report_says_nothing_was_timed "$(tail -5 "$md" 2>/dev/null)"

python3 dev/cuda/attention_torch.py --self-test --masks "$tmp/bench/masks" > "$tmp/self.txt" 2>&1
rc=$?
cat "$tmp/self.txt"
[ $rc = 0 ] || grep -q '^FAIL' "$tmp/self.txt" || report 1 attention_torch_self_test "exit $rc: $(tail -3 "$tmp/self.txt")"
grep -q '^FAIL' "$tmp/self.txt" && fails=$((fails + 1))

# a mask file one int short is refused, naming the file and the sizes
f=$(ls "$tmp"/bench/masks/*.end.i32 | head -1)
head -c -4 "$f" > "$tmp/short" && mv "$tmp/short" "$f"
python3 dev/cuda/attention_torch.py --self-test --masks "$tmp/bench/masks" > "$tmp/bad.txt" 2>&1
rc=$?
report $([ $rc != 0 ] && grep -q "$(basename "$f"): .* bytes, expected B\*T\*4" "$tmp/bad.txt" && echo 0 || echo 1) \
    attention_torch_refuses_short_mask_file "exit $rc: $(tail -2 "$tmp/bad.txt")"
[ $fails = 0 ]
