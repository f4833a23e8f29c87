#!/usr/bin/python3
# Plots of training runs from their OUT/log.jsonl (the trainer's log, see README "Training on real
# data"): one panel per metric, the train series and the eval_ series of every run overlaid,
# labelled with the run directory names.
#
#   dev/plot_run.py RUN [RUN ...] [-o FILE.png] [--x step|time|cpu] [--title TEXT]
#
# --x time puts the training wall-clock seconds on the x axis: the running sum of the step
# records' step_ms (the reference pass and evaluations are not counted; an eval record sits at
# the time of the step it follows). --x cpu does the same with cpu_ms, the process's CPU time
# (all threads): on a machine shared with other work it is the steadier measure of cost. Beside the PNG, FILE.png.json summarises what was drawn
# (panels, series per panel, points per series) for tests and scripts.
#
# Runs with Debian's /usr/bin/python3 (the shebang), which sees python3-matplotlib; install it
# with `dev/install_deps.sh plot`.
import argparse
import json
import os
import sys

# (panel title, metrics drawn in it); each metric also drawn as eval_<metric> where present
PANELS = [
    ("loss", ["loss"]),
    ("rewards/accuracies", ["rewards/accuracies"]),
    ("rewards/margins", ["rewards/margins"]),
    ("rewards/chosen, rewards/rejected", ["rewards/chosen", "rewards/rejected"]),
    ("logps/chosen, logps/rejected", ["logps/chosen", "logps/rejected"]),
    ("grad_norm", ["grad_norm"]),
    ("learning_rate", ["learning_rate"]),
    ("tokens_per_sec", ["tokens_per_sec"]),
]
# drawn only when some run logged it (the synthetic task's greedy exact-match rate)
OPTIONAL_PANELS = [("exact_match", ["exact_match"])]


def read_log(run):
    """The step records and the eval records of RUN/log.jsonl, in file order."""
    path = os.path.join(run, "log.jsonl")
    steps, evals = [], []
    try:
        f = open(path)
    except OSError as e:
        sys.exit("plot_run: cannot read %s: %s (is %s a run directory, the --out of a training run?)"
                 % (path, e.strerror, run))
    with f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except ValueError as e:
                sys.exit("plot_run: %s:%d: not JSON (%s)" % (path, n, e))
            if "step" not in rec:
                sys.exit("plot_run: %s:%d: a record without \"step\"" % (path, n))
            (evals if any(k.startswith("eval_") for k in rec) else steps).append(rec)
    if not steps and not evals:
        sys.exit("plot_run: %s has no records" % path)
    return steps, evals


AXIS_LABELS = {"step": "step", "time": "training seconds (wall)", "cpu": "training CPU seconds"}


def x_values(steps, evals, axis, run):
    """x of every step record and every eval record: the step, or training seconds so far."""
    if axis == "step":
        return [r["step"] for r in steps], [r["step"] for r in evals]
    field = "step_ms" if axis == "time" else "cpu_ms"
    if any(field not in r for r in steps):
        sys.exit("plot_run: %s/log.jsonl: step records without \"%s\" (a log of an older trainer); "
                 "use --x step" % (run, field))
    seconds_at = {0: 0.0}
    total = 0.0
    for r in steps:
        total += r[field] / 1000.0
        seconds_at[r["step"]] = total
    xs = [seconds_at[r["step"]] for r in steps]
    # an eval at step s comes right after step s (at step 0: before any)
    xe = [seconds_at.get(r["step"], total) for r in evals]
    return xs, xe


def run_labels(runs):
    """The run directory names; the full paths where two names collide."""
    names = [os.path.basename(os.path.normpath(r)) for r in runs]
    return [r if names.count(n) > 1 else n for r, n in zip(runs, names)]


def main():
    ap = argparse.ArgumentParser(description="Plot training runs from their log.jsonl.")
    ap.add_argument("runs", nargs="+", metavar="RUN", help="run directories (the trainer's --out)")
    ap.add_argument("-o", "--output", default="run.png", help="PNG to write (default run.png)")
    ap.add_argument("--x", choices=["step", "time", "cpu"], default="step",
                    help="x axis: optimizer steps, training wall-clock seconds or training CPU seconds")
    ap.add_argument("--title", default="", help="a title above the panels")
    args = ap.parse_args()

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot_run: matplotlib is missing for %s; install it with `dev/install_deps.sh plot` "
                 "(Debian's python3-matplotlib) and run this script as dev/plot_run.py" % sys.executable)

    logs = [read_log(r) for r in args.runs]
    labels = run_labels(args.runs)
    present = set()
    for steps, evals in logs:
        for r in steps + evals:
            present.update(r.keys())
    panels = PANELS + [p for p in OPTIONAL_PANELS
                       if any(m in present or "eval_" + m in present for m in p[1])]

    cols = 3
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    summary = {"x": args.x, "runs": labels, "panels": []}
    for k, (title, metrics) in enumerate(panels):
        ax = axes[k // cols][k % cols]
        drawn = []
        for i, ((steps, evals), label, run) in enumerate(zip(logs, labels, args.runs)):
            xs, xe = x_values(steps, evals, args.x, run)
            color = colors[i % len(colors)]
            for j, metric in enumerate(metrics):
                # train: chosen solid, rejected dashed; eval: dotted with markers (chosen o, rejected s)
                style = "-" if j == 0 else "--"
                suffix = "" if len(metrics) == 1 else " " + metric.split("/")[-1]
                pts = [(x, r[metric]) for x, r in zip(xs, steps) if metric in r]
                if pts:
                    ax.plot(*zip(*pts), style, color=color, lw=1.2, label=label + suffix)
                    drawn.append({"label": label + suffix, "metric": metric, "points": len(pts)})
                pts = [(x, r["eval_" + metric]) for x, r in zip(xe, evals) if "eval_" + metric in r]
                if pts:
                    ax.plot(*zip(*pts), ":", color=color, lw=1.0, marker="o" if j == 0 else "s", ms=5,
                            mec="black", mew=0.6, label=label + suffix + " eval")
                    drawn.append({"label": label + suffix + " eval", "metric": "eval_" + metric,
                                  "points": len(pts)})
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(AXIS_LABELS[args.x], fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=7)
        summary["panels"].append({"title": title, "series": drawn})
    for k in range(len(panels), rows * cols):
        axes[k // cols][k % cols].axis("off")
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.output, dpi=70)
    with open(args.output + ".json", "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    print("plot_run: %d runs, %d panels -> %s" % (len(logs), len(panels), args.output))


if __name__ == "__main__":
    main()
