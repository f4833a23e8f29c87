#!/usr/bin/env bash
# Test of dev/plot_run.py: two tiny training runs, rendered together over steps, wall time and CPU time;
# the PNG must exist and be a PNG, and the sidecar summary (FILE.png.json) must list the expected
# panels, with each run's train and eval series and as many points as the logs hold records.
# Installs matplotlib on demand (dev/install_deps.sh plot). Prints PASS/FAIL/SKIP lines.
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. dev/test_lib.sh  # report
if ! ./dev/install_deps.sh plot >"$tmp/deps.txt" 2>&1; then
    echo "SKIP plot_run: python3-matplotlib could not be installed: $(tail -c 300 "$tmp/deps.txt")"
    exit 0
fi

# two runs of 6 steps, evaluated at steps 0, 3 and 6
for run in alpha beta; do
    ./train_dpo_cpu --steps 6 --batch-pairs 8 --eval-every 3 --sample-every 0 --threads 2 \
        --seed $([ $run = alpha ] && echo 1 || echo 2) --out "$tmp/$run" >"$tmp/$run.txt" 2>&1 ||
        { report 1 tiny_runs_train "$(tail -c 300 "$tmp/$run.txt")"; exit 1; }
done
n_steps=$(grep -vc '"eval_' "$tmp/alpha/log.jsonl")
n_evals=$(grep -c '"eval_' "$tmp/alpha/log.jsonl")
report $([ "$n_steps" = 6 ] && [ "$n_evals" = 3 ] && echo 0 || echo 1) tiny_runs_log_their_records \
    "$n_steps step records, $n_evals eval records (expected 6 and 3)"

for axis in step time cpu; do
    png="$tmp/plot_$axis.png"
    ./dev/plot_run.py "$tmp/alpha" "$tmp/beta" -o "$png" --x $axis >"$tmp/plot_$axis.txt" 2>&1; rc=$?
    ok=1; [ $rc -eq 0 ] && [ -s "$png" ] && [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] && ok=0
    report $ok "png_written_x_$axis" "rc=$rc: $(tail -c 300 "$tmp/plot_$axis.txt")"
    # the expected summary, from the logs' record counts (not from the plotting code)
    /usr/bin/python3 - "$png.json" "$axis" "$n_steps" "$n_evals" "$(grep -c eval_exact_match "$tmp/alpha/log.jsonl")" >"$tmp/check.txt" 2>&1 <<'EOF'
import json, sys
path, axis, n_steps, n_evals, n_exact = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = json.load(open(path))
titles = ["loss", "rewards/accuracies", "rewards/margins", "rewards/chosen, rewards/rejected",
          "logps/chosen, logps/rejected", "grad_norm", "learning_rate", "tokens_per_sec"]
if n_exact:
    titles.append("exact_match")
got = [p["title"] for p in s["panels"]]
assert s["x"] == axis, "x axis %r, expected %r" % (s["x"], axis)
assert s["runs"] == ["alpha", "beta"], "run labels %r" % s["runs"]
assert got == titles, "panels %r, expected %r" % (got, titles)
panel = {p["title"]: {x["label"]: x["points"] for x in p["series"]} for p in s["panels"]}
for run in ["alpha", "beta"]:
    expect = {
        "loss": {run: n_steps, run + " eval": n_evals},
        "rewards/accuracies": {run: n_steps, run + " eval": n_evals},
        "rewards/chosen, rewards/rejected": {run + " chosen": n_steps, run + " chosen eval": n_evals,
                                             run + " rejected": n_steps, run + " rejected eval": n_evals},
        "logps/chosen, logps/rejected": {run + " chosen": n_steps, run + " rejected eval": n_evals},
        "grad_norm": {run: n_steps}, "learning_rate": {run: n_steps}, "tokens_per_sec": {run: n_steps},
    }
    if n_exact:
        expect["exact_match"] = {run + " eval": n_exact}
    for title, series in expect.items():
        for label, n in series.items():
            assert panel[title].get(label) == n, "%s: series %r has %r points, expected %d (all: %r)" % (
                title, label, panel[title].get(label), n, panel[title])
    assert run + " eval" not in panel["grad_norm"], "grad_norm has an eval series"
EOF
    report $? "sidecar_lists_panels_and_series_x_$axis" "$(tail -c 400 "$tmp/check.txt")"
done

# a directory without a log: a clear error naming it, no PNG
./dev/plot_run.py "$tmp/alpha" "$tmp/nothing" -o "$tmp/bad.png" >"$tmp/bad.txt" 2>&1; rc=$?
ok=1; [ $rc -ne 0 ] && grep -q "nothing/log.jsonl" "$tmp/bad.txt" && [ ! -e "$tmp/bad.png" ] && ok=0
report $ok missing_log_is_an_error "rc=$rc: $(head -c 300 "$tmp/bad.txt")"
exit $((fails > 0))
