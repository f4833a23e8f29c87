#!/usr/bin/env bash
# Runs each test program given as an argument (from the repository root) and totals the
# results. A test program prints one line per check: "PASS name", "FAIL name: why" or
# "SKIP name: why". A program that exits non-zero without printing a FAIL line (a crash,
# an abort) counts as one failure. The last line is "N passed, N failed, N skipped".
set -u
pass=0; fail=0; skip=0
for t in "$@"; do
  echo "== $t"
  log=$(mktemp)
  "./$t" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  p=$(grep -c '^PASS' "$log"); f=$(grep -c '^FAIL' "$log"); s=$(grep -c '^SKIP' "$log")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL $t: exited with status $rc"; f=1
  fi
  pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
  rm -f "$log"
done
echo
[ "$skip" -gt 0 ] && echo "note: $skip skipped (see SKIP lines above)"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
