# dev/test_lib.sh: shell helpers shared by the test scripts (source it from the repository root:
# `. dev/test_lib.sh`). Each check prints one line for dev/run_tests.sh.

fails=0
report() {  # report OK NAME WHY: PASS when OK is 0, else FAIL with WHY (and counts it in $fails)
    if [ "$1" = 0 ]; then echo "PASS $2"; else echo "FAIL $2: $3"; fails=$((fails + 1)); fi
}

# "step loss" of every step record of a log.jsonl, in order
step_losses() { grep -v '"eval_' "$1" | sed -n 's/.*"step": \([0-9]*\), "loss": \([^,]*\),.*/\1 \2/p'; }

# "step loss grad_norm" of every step record of a log.jsonl, in order
step_values() { grep -v '"eval_' "$1" 2>/dev/null | sed -n 's/.*"step": \([0-9]*\), "loss": \([^,]*\),.*"grad_norm": \([^,]*\),.*/\1 \2 \3/p'; }

# close A B: two step_values files have the same steps, losses within 1e-5 absolute and gradient
# norms within 1e-4 relative (exit status 0), and are not empty
close() {
    paste "$1" "$2" | awk 'NF != 6 || $1 != $4 { bad = 1 }
        { d = $2 - $5; if (d < 0) d = -d; if (d > 1e-5) bad = 1;
          g = $3 - $6; if (g < 0) g = -g; if (g > 1e-4 * $6) bad = 1 }
        END { exit (bad || NR == 0) }'
}

# killed_rank_check NAME PID LOG TEXT STEPS TENTHS: the mpirun job PID (started in the background
# by the caller, its output in TEXT) has written STEPS step records to LOG (waited for up to TENTHS
# tenths of a second); then its rank 1 is killed with signal 9, and the whole job must end within
# 60 s with a non-zero status and mpirun naming rank 1. Reports NAME.
killed_rank_check() {
    local name=$1 pid=$2 log=$3 text=$4 steps=$5 tenths=$6 victim= n p start ended=0 rc ok=1
    for _ in $(seq "$tenths"); do
        n=$(grep -c '"step"' "$log" 2>/dev/null)
        [ "${n:-0}" -ge "$steps" ] && break
        sleep 0.1
    done
    for p in $(pgrep -P "$pid"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && victim=$p
    done
    start=$(date +%s)
    [ -n "$victim" ] && kill -9 "$victim"
    timeout 60 tail --pid="$pid" -f /dev/null || { ended=1; kill -9 "$pid"; }
    wait "$pid"; rc=$?
    [ -n "$victim" ] && [ $ended = 0 ] && [ $rc -ne 0 ] && grep -q "rank 1 .*exited on signal 9" "$text" && ok=0
    report $ok "$name" "victim '$victim', ended in $(( $(date +%s) - start )) s, rc $rc: $(tail -4 "$text" | tr '\n' ' ')"
}

# nan_ref_cache SRC DST PAIR: DST is a copy of the reference cache SRC (common/ref_cache.h) whose
# pair PAIR has a NaN chosen log-prob, its payload hash re-keyed so that the trainer loads it.
nan_ref_cache() {
    python3 - "$1" "$2" "$3" <<'PY'
import struct, sys
data = bytearray(open(sys.argv[1], 'rb').read())
head = 40  # magic, version, n_pairs, model hash, data hash, payload hash
struct.pack_into('<d', data, head + 16 * int(sys.argv[3]), float('nan'))  # the pair's chosen log-prob
def hash_bytes(b):  # common/hash.h, to re-key the payload
    h, mask = 0xcbf29ce484222325, (1 << 64) - 1
    for i in range(0, len(b) - len(b) % 8, 8):
        h = ((h ^ int.from_bytes(b[i:i + 8], 'little')) * 0x100000001b3) & mask
    for c in b[len(b) - len(b) % 8:]:
        h = ((h ^ c) * 0x100000001b3) & mask
    h ^= h >> 33; h = (h * 0xff51afd7ed558ccd) & mask; h ^= h >> 33
    return h
struct.pack_into('<Q', data, 32, hash_bytes(bytes(data[head:])))
open(sys.argv[2], 'wb').write(data)
PY
}
