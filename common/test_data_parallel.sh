#!/usr/bin/env bash
# Data parallelism of train_dpo_cpu under mpirun (cpu/data_parallel.h): 1, 2 and 3 processes with
# the same global batch train the same model; ZeRO-1 and the plain all-reduce give the same bits;
# the reference cache is the same file whatever the world size; ZeRO-1 runs save the sharded
# checkpoint (common/checkpoint.h: a manifest, rank 0's weights, one moment shard per rank) and
# hold the same weights and moments as one process's one-file checkpoint; a resumed run continues
# exactly with the same world size and, resharded, within the tolerance with another; a killed
# rank ends the job. Prints PASS/FAIL lines for dev/run_tests.sh.
#
# Tolerances (fp32, 10 steps of the tiny model, lr 1e-3): the ranks pack their slices of a step
# into other micro-batches than one process does, so the fp32 gradient sums run in another order
# (relative differences ~1e-7 per step). Measured: losses agree to 5e-8 relative, parameters to
# 1.4e-6 absolute. Checked: losses to 1e-6 relative; parameters to 2e-5 absolute, a third of 1% of
# the summed learning rates (6e-3): an AdamW update moves a parameter by up to ~lr whatever the
# gradient's size, so a parameter whose gradient is rounding noise may differ by a fraction of lr;
# moments to 1e-5 of their largest value.
set -u
cd "$(dirname "$0")/.."
BIN=./train_dpo_cpu
if ! command -v mpirun >/dev/null; then echo "SKIP data_parallel: mpirun is not installed (make deps)"; exit 0; fi
# root in containers; more ranks than cores on a small machine
MPIRUN="mpirun --allow-run-as-root --oversubscribe"
tmp=$(mktemp -d)
mpirun_pid=
trap '[ -n "$mpirun_pid" ] && kill -9 "$mpirun_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
. dev/test_lib.sh  # report, step_losses, killed_rank_check, nan_ref_cache
# compare_losses A B: same steps, losses within 1e-6 relative
compare_losses() {
    paste <(step_losses "$1") <(step_losses "$2") | awk '
        { n++; d = $2 - $4; if (d < 0) d = -d; r = d / ($2 < 0 ? -$2 : $2);
          if ($1 != $3 || r > 1e-6) { print "step " $1 ": " $2 " vs " $4; bad = 1 } }
        END { if (n != 10) { print n " steps instead of 10"; bad = 1 } exit bad }'
}
# compare_checkpoints A B [exact]: the weights, m and v of two checkpoints of either form (one
# file, or a manifest with its weights file and shards, read here independently of the trainer)
# within tolerance, or bit for bit with "exact"
compare_checkpoints() {
    python3 - "$@" <<'EOF'
import array, os, sys
def floats(data):
    a = array.array('f')
    a.frombytes(data)
    return a
def state(path):
    data = open(path, 'rb').read()
    if data[:8] == b'DPOCKPT1':  # one file: 256-byte header, params, m, v
        a = floats(data[256:])
        if len(a) % 3:
            sys.exit("%s: %d floats, not params + m + v" % (path, len(a)))
        n = len(a) // 3
        return a[:n], a[n:2 * n], a[2 * n:]
    lines = data.decode().split('\n')  # the manifest: its weights and shard lines name the files
    if not lines[0].startswith('DPOCKPTM') or not lines[-2].startswith('checksum '):
        sys.exit("%s: neither a checkpoint nor a manifest" % path)
    d = os.path.dirname(path)
    n = int(lines[3].split()[1])
    params = floats(open(os.path.join(d, lines[4].split()[2]), 'rb').read()[256:])
    m, v = array.array('f'), array.array('f')
    for line in lines[5:-2]:
        _, rank, begin, end, _, name = line.split()
        a = floats(open(os.path.join(d, name), 'rb').read()[128:])
        count = int(end) - int(begin)
        if len(a) != 2 * count or len(m) != int(begin):
            sys.exit("%s: shard %s holds %d floats for [%s, %s)" % (path, rank, len(a), begin, end))
        m.extend(a[:count]); v.extend(a[count:])
    if len(params) != n or len(m) != n:
        sys.exit("%s: %d weights and %d moments for %d parameters" % (path, len(params), len(m), n))
    return params, m, v
a, b = state(sys.argv[1]), state(sys.argv[2])
exact = len(sys.argv) > 3
if len(a[0]) != len(b[0]):
    sys.exit("%d and %d parameters" % (len(a[0]), len(b[0])))
bad = []
for name, x, y, tol in (("params", a[0], b[0], 2e-5), ("m", a[1], b[1], None), ("v", a[2], b[2], None)):
    if exact:
        if x.tobytes() != y.tobytes():
            bad.append("%s differ" % name)
        continue
    d = max(abs(p - q) for p, q in zip(x, y))
    if tol is None:
        tol = 1e-5 * max(abs(p) for p in x)
    if d > tol:
        bad.append("%s differ by %.3g > %.3g" % (name, d, tol))
sys.exit("; ".join(bad) if bad else 0)
EOF
}

# the global batch: 10 pairs (2 ranks: 5 + 5; 3 ranks: 3 + 3 + 4, uneven)
common="--steps 10 --batch-pairs 10 --warmup 3 --eval-every 0 --log-every 100 --sample-every 0 --threads 1"
$BIN $common --out "$tmp/w1" >"$tmp/w1.txt" 2>&1
report $? one_process_runs "$(tail -3 "$tmp/w1.txt")"
for np in 2 3; do
    $MPIRUN -np $np $BIN $common --out "$tmp/w$np" >"$tmp/w$np.txt" 2>&1
    report $? "mpirun_np${np}_runs" "$(tail -5 "$tmp/w$np.txt")"
    why=$(compare_losses "$tmp/w1/log.jsonl" "$tmp/w$np/log.jsonl")
    report $? "np${np}_losses_match_one_process" "$why"
    why=$(compare_checkpoints "$tmp/w1/checkpoint.bin" "$tmp/w$np/checkpoint.bin" 2>&1)
    report $? "np${np}_parameters_and_moments_match_one_process" "$why"
    cmp -s "$tmp/w1/ref_logps_train.bin" "$tmp/w$np/ref_logps_train.bin"
    report $? "np${np}_reference_cache_is_the_same_file" "split across $np ranks, it differs from one process's"
done
grep -q "data parallel: 3 ranks, ZeRO-1" "$tmp/w3.txt"; report $? np3_says_zero1 "$(head -2 "$tmp/w3.txt")"
[ "$(grep -c '^step ' "$tmp/w3.txt")" = 2 ]  # steps 1 and 10, once: the other ranks print nothing
report $? np3_only_rank0_prints "$(grep -c '^step ' "$tmp/w3.txt") step lines instead of 2"
# one process: one file; ZeRO-1 with 3 ranks: the manifest, rank 0's weights and 3 shards
ok=1
[ "$(head -c 8 "$tmp/w1/checkpoint.bin")" = DPOCKPT1 ] && [ "$(head -c 8 "$tmp/w3/checkpoint.bin")" = DPOCKPTM ] &&
    [ "$(cd "$tmp/w3" && echo checkpoint.bin.* | sed 's/-[0-9a-f]\{8\}\./-H./g')" = "checkpoint.bin.step10-H.shard0of3 checkpoint.bin.step10-H.shard1of3 checkpoint.bin.step10-H.shard2of3 checkpoint.bin.step10-H.weights" ] && ok=0
report $ok np3_zero1_checkpoint_is_sharded "$(ls "$tmp/w1" "$tmp/w3" | tr '\n' ' ')"

# ZeRO-1 vs all-reduce: the same sums in the same order, so the same bits (the all-reduce run
# keeps every moment on every rank and saves one file; ZeRO-1 saves shards)
$MPIRUN -np 3 $BIN $common --zero 0 --out "$tmp/z0" --ref-cache "$tmp/w3/ref_logps" >"$tmp/z0.txt" 2>&1
ok=1
[ "$(head -c 8 "$tmp/z0/checkpoint.bin")" = DPOCKPT1 ] && compare_checkpoints "$tmp/w3/checkpoint.bin" "$tmp/z0/checkpoint.bin" exact &&
    cmp -s <(step_losses "$tmp/w3/log.jsonl") <(step_losses "$tmp/z0/log.jsonl") && ok=0
report $ok zero1_and_allreduce_are_bit_identical "$(tail -3 "$tmp/z0.txt")"

# resume: 2 ranks stop at 5 (a sharded checkpoint) and resume with 2 (each rank reads its own
# shard: bitwise), or with 3 or 1 (the shards re-cut: within the tolerance above); and one
# process's one-file checkpoint resumed by 2 ranks
for np in 2 3 1; do
    $MPIRUN -np 2 $BIN $common --stop-after 5 --out "$tmp/r$np" --ref-cache "$tmp/w1/ref_logps" >"$tmp/r$np.txt" 2>&1
    $MPIRUN -np $np $BIN $common --resume --out "$tmp/r$np" --ref-cache "$tmp/w1/ref_logps" >>"$tmp/r$np.txt" 2>&1
done
$BIN $common --stop-after 5 --out "$tmp/o2" --ref-cache "$tmp/w1/ref_logps" >"$tmp/o2.txt" 2>&1
$MPIRUN -np 2 $BIN $common --resume --out "$tmp/o2" --ref-cache "$tmp/w1/ref_logps" >>"$tmp/o2.txt" 2>&1
why=$(compare_checkpoints "$tmp/w2/checkpoint.bin" "$tmp/r2/checkpoint.bin" exact 2>&1) &&
    why=$(cmp <(step_losses "$tmp/w2/log.jsonl") <(step_losses "$tmp/r2/log.jsonl") 2>&1) &&
    why="$(step_losses "$tmp/r2/log.jsonl" | wc -l) steps" && [ "$why" = "10 steps" ] && why=$(grep "resuming from .* at step 5$" "$tmp/r2.txt") &&
    why="old step files: $(cd "$tmp/r2" && echo checkpoint.bin.step5-*)" && [ "$why" = "old step files: checkpoint.bin.step5-*" ]
report $? resume_sharded_same_world_size_is_bitwise "$why $(tail -3 "$tmp/r2.txt")"
for np in 3 1; do
    why=$(compare_checkpoints "$tmp/w1/checkpoint.bin" "$tmp/r$np/checkpoint.bin" 2>&1) &&
        why=$(compare_losses "$tmp/w1/log.jsonl" "$tmp/r$np/log.jsonl")
    report $? "resume_2_ranks_sharded_checkpoint_with_$np" "$why $(tail -3 "$tmp/r$np.txt")"
done
grep -q "resuming from .* at step 5 (saved by 2 ranks, resharded for 3)" "$tmp/r3.txt"
report $? resume_with_3_says_resharded "$(grep resuming "$tmp/r3.txt")"
ok=1  # the 1-rank resume saved one file and removed the shards
[ "$(head -c 8 "$tmp/r1/checkpoint.bin")" = DPOCKPT1 ] && [ "$(cd "$tmp/r1" && echo checkpoint.bin.*)" = "checkpoint.bin.*" ] && ok=0
report $ok resume_with_1_saves_one_file "$(ls "$tmp/r1" | tr '\n' ' ')"
why=$(compare_checkpoints "$tmp/w1/checkpoint.bin" "$tmp/o2/checkpoint.bin" 2>&1) && why=$(compare_losses "$tmp/w1/log.jsonl" "$tmp/o2/log.jsonl")
report $? resume_one_file_checkpoint_with_2_ranks "$why $(tail -3 "$tmp/o2.txt")"

# one rank's NaN stops every rank at that step, naming the rank: a reference cache whose pair 7
# is NaN (--no-shuffle: step 1 is pairs 0..9, rank 1 of 2 takes pairs 5..9)
nan_ref_cache "$tmp/w1/ref_logps_train.bin" "$tmp/nan_train.bin" 7
cp "$tmp/w1/ref_logps_val.bin" "$tmp/nan_val.bin"
timeout 60 $MPIRUN -np 2 $BIN $common --no-shuffle --out "$tmp/n" --ref-cache "$tmp/nan" >"$tmp/n.txt" 2>&1; rc=$?
ok=1
[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "error: step 1: rank 1's loss or gradient is not finite" "$tmp/n.txt" && ok=0
report $ok nan_on_one_rank_stops_every_rank "rc $rc: $(tail -4 "$tmp/n.txt" | tr '\n' ' ')"

# a rank killed mid-run ends the whole job, within the timeout, naming the rank
$MPIRUN -np 2 $BIN $common --steps 1000000 --out "$tmp/k" --ref-cache "$tmp/w1/ref_logps" >"$tmp/k.txt" 2>&1 &
mpirun_pid=$!
killed_rank_check killed_rank_ends_the_job "$mpirun_pid" "$tmp/k/log.jsonl" "$tmp/k.txt" 3 300
mpirun_pid=
