#!/usr/bin/env python3
"""dev/bench_table.py WORK: the markdown report of dev/bench_train.sh, from WORK/runs.tsv (one
line per job), WORK/settings.txt, each trainer run's log.jsonl and each model's torch.tsv
(dev/bench_torch_dpo.py). Prints to stdout.

From a run's log.jsonl (step records: those with "step_ms"), the first record is the warm-up and
is left out; over the rest: tokens/s = sum(tokens) / sum(step_ms), pairs/s likewise, MFU = the
time-weighted mean of the steps' mfu (= the FLOPs of all timed steps over their time and the
peak), peak memory = the largest peak_mem_gb. Real tokens per pair = sum(tokens) / sum(pairs);
padded tokens per pair count the rows as allocated: tokens / (1 - padding) per step.
Ideal speedups are ratios of tokens per pair of two layouts over the same pairs: prefix sharing
(baseline / shared), padding excluded (the linear layers' ideal, docs/DESIGN.md §1.4) and
included (what the GPU computes); packing (unpacked / packed padded tokens).
"""
import json
import os
import sys

TARGETS = {"mfu_d12": 0.45, "mfu_d48": 0.55, "sharing_of_ideal": 0.90, "vs_flex": 1.5}


def read_tsv(path):
    with open(path) as f:
        lines = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    return [dict(zip(lines[0], row)) for row in lines[1:]]


def run_metrics(log_path):
    """Sums over the timed step records of a trainer's log.jsonl; None without a timed step."""
    records = []
    try:
        with open(log_path) as f:
            for line in f:
                line = line.strip()
                if line:
                    rec = json.loads(line)
                    if "step_ms" in rec:
                        records.append(rec)
    except (OSError, ValueError):
        return None
    timed = records[1:]
    if not timed:
        return None
    ms = sum(r["step_ms"] for r in timed)
    pairs = sum(r["pairs"] for r in timed)
    tokens = sum(r["tokens"] for r in timed)
    padded = sum(r["tokens"] / (1 - r["padding"]) if r["padding"] < 1 else 0 for r in timed)
    mfus = [r.get("mfu") for r in timed]
    mfu = sum(m * r["step_ms"] for m, r in zip(mfus, timed)) / ms if all(m is not None for m in mfus) else None
    peaks = [r["peak_mem_gb"] for r in timed if r.get("peak_mem_gb") is not None]
    sec = ms / 1000
    return {"steps": len(timed), "sec": sec, "step_ms": ms / len(timed), "pairs": pairs,
            "tokens_per_sec": tokens / sec, "pairs_per_sec": pairs / sec, "mfu": mfu,
            "peak_gb": max(peaks) if peaks else None, "tokens_per_pair": tokens / pairs,
            "padded_per_pair": padded / pairs, "padding": 1 - tokens / padded if padded else 0}


def times(x):
    return "—" if x is None else "%.2f×" % x


def ratio(a, b):
    return a / b if a is not None and b else None


def main():
    work = sys.argv[1]
    settings = {}
    with open(os.path.join(work, "settings.txt")) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            settings[key] = value
    jobs = read_tsv(os.path.join(work, "runs.tsv"))
    models = settings["models"].split()
    ours = {}    # (model, sharing, packing) -> (job, metrics)
    torch = {}   # (model, variant) -> TSV row
    torch_jobs = {}
    exports = {}
    for job in jobs:
        m = job["model"]
        if job["kind"] == "ours":
            ours[(m, job["sharing"], job["packing"])] = (job, run_metrics(os.path.join(job["dir"], "log.jsonl")))
        elif job["kind"] == "torch":
            torch_jobs[m] = job
            if os.path.exists(job["dir"]):
                for row in read_tsv(job["dir"]):
                    torch[(m, row["variant"])] = row
        elif job["kind"] in ("export", "data"):
            exports[m] = job

    out = []
    w = out.append
    w("## Training benchmark (dev/bench_train.sh)")
    w("")
    if settings.get("gpu"):
        w("GPU: %s." % settings["gpu"])
        w("")
    w("GPT-2 random init, rows of T = %s tokens, the first pairs of HH-RLHF harmless-base (vendored, "
      "`prepare_dpo --max-len %s`), in file order, so all four layouts of a model train the same pairs. "
      "The first step of every run is a warm-up and is not counted. Budget %s s for the whole benchmark "
      "(it took %s s); runs past their model's share were stopped and say so. MFU counts the FLOPs of "
      "real tokens only (train_dpo.cu `batch_flops`: 6·12·L·C² per token, 12·C·L per visible "
      "query-key pair, 6·C·V per scored token) over the GPU's dense bf16 peak."
      % (settings.get("seq_len"), settings.get("seq_len"), settings.get("budget_s"), settings.get("took_s", "?")))
    w("")
    w("| model | prefix sharing | packing | B × T, pairs/step | timed steps | step | tokens/s | pairs/s | MFU "
      "| device memory | real / padded tokens per pair | status |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for m in models:
        for sharing, packing in (("on", "on"), ("off", "on"), ("on", "off"), ("off", "off")):
            if (m, sharing, packing) not in ours:
                continue
            job, r = ours[(m, sharing, packing)]
            shape = "%s × %s, %s" % (job["B"], settings.get("seq_len"), job["N"])
            if r is None:
                w("| %s | %s | %s | %s | 0 of %d | | | | | | | %s |" % (m, sharing, packing, shape,
                                                                      int(job["S"]) - 1, job["status"]))
                continue
            mfu = "—" if r["mfu"] is None else "%.1f%%" % (100 * r["mfu"])
            peak = "—" if r["peak_gb"] is None else "%.1f GB" % r["peak_gb"]
            w("| %s | %s | %s | %s | %d of %d | %.1f ms | %.0f | %.2f | %s | %s | %.1f / %.1f (%.0f%% padding) | %s |"
              % (m, sharing, packing, shape, r["steps"], int(job["S"]) - 1, r["step_ms"], r["tokens_per_sec"],
                 r["pairs_per_sec"], mfu, peak, r["tokens_per_pair"], r["padded_per_pair"], 100 * r["padding"],
                 job["status"]))
    for m in models:
        if m in exports and exports[m]["status"] != "ok":
            w("")
            w("%s: %s: %s" % (m, exports[m]["kind"], exports[m]["status"]))
    w("")

    def metrics(m, sharing, packing):
        entry = ours.get((m, sharing, packing))
        return entry[1] if entry else None

    w("### Speedups beside their ideal")
    w("")
    w("Measured = pairs/s of the first layout / pairs/s of the second. Ideal = tokens per pair of the "
      "second / tokens per pair of the first, padding excluded (the linear layers' ideal) and included "
      "(the rows the GPU computes).")
    w("")
    w("| model | comparison | measured | ideal, padding excluded | measured / ideal | ideal, padding included |")
    w("|---|---|---|---|---|---|")
    sharing_of_ideal = {}
    vs_flex = {}
    for m in models:
        for what, a, b in (("sharing on / off, packing on", ("on", "on"), ("off", "on")),
                           ("sharing on / off, packing off", ("on", "off"), ("off", "off")),
                           ("packing on / off, sharing on", ("on", "on"), ("on", "off")),
                           ("packing on / off, sharing off", ("off", "on"), ("off", "off"))):
            ra, rb = metrics(m, *a), metrics(m, *b)
            if ra is None or rb is None:
                if (m, a[0], a[1]) in ours or (m, b[0], b[1]) in ours:
                    w("| %s | %s | — | | | |" % (m, what))
                continue
            measured = ratio(ra["pairs_per_sec"], rb["pairs_per_sec"])
            ideal = ratio(rb["tokens_per_pair"], ra["tokens_per_pair"])
            ideal_padded = ratio(rb["padded_per_pair"], ra["padded_per_pair"])
            if what.startswith("packing"):  # packing changes no real token: only the padded ratio means anything
                w("| %s | %s | %.3f | (1.000: same tokens) | | %.3f (%.0f%% of it) |"
                  % (m, what, measured, ideal_padded, 100 * measured / ideal_padded))
            else:
                w("| %s | %s | %.3f | %.3f | %.0f%% | %.3f |" % (m, what, measured, ideal, 100 * measured / ideal, ideal_padded))
                if a == ("on", "on"):
                    sharing_of_ideal[m] = measured / ideal
    w("")

    w("### Ours and PyTorch on the same GPU (dev/bench_torch_dpo.py)")
    w("")
    if settings.get("torch_note"):
        w("Not run: %s." % settings["torch_note"])
        w("")
    else:
        torch_section(w, models, torch, torch_jobs, metrics, vs_flex)
    targets_section(w, models, metrics, sharing_of_ideal, vs_flex)
    print("\n".join(out))


def torch_section(w, models, torch, torch_jobs, metrics, vs_flex):
    """The PyTorch runs beside ours; fills vs_flex[model] = ours (shared, packed) / flex."""
    w("Same model shape, pairs, pairs per step and micro-batch rows; PyTorch: autocast bf16, fp32 weights, fused "
      "AdamW, LM head on the scored tokens only. SDPA: one causal row per response, padded to the micro-batch's "
      "longest row. Flex: train_dpo's shared, packed micro-batches with the end[] mask. Peak memory: "
      "torch.cuda.max_memory_allocated; ours (above) is what train_dpo allocates, all of it before step 1.")
    w("")
    w("| model | PyTorch variant | compiled | timed steps | tokens/s | pairs/s | peak memory | status "
      "| ours in the same layout / theirs, pairs/s | ours (shared, packed) / theirs |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for m in models:
        if m in torch_jobs and not any(k[0] == m for k in torch):
            w("| %s | | | | | | | %s | | |" % (m, torch_jobs[m]["status"]))
        for variant in ("sdpa", "flex"):
            row = torch.get((m, variant))
            if row is None:
                continue
            theirs = float(row["pairs_per_sec"]) or None
            shared = metrics(m, "on", "on")
            same = shared if variant == "flex" else metrics(m, "off", "off")  # SDPA: one response per row
            r_same = ratio(same and same["pairs_per_sec"], theirs)
            r_shared = ratio(shared and shared["pairs_per_sec"], theirs)
            if variant == "flex" and r_shared is not None:
                vs_flex[m] = r_shared
            status = row["status"] if torch_jobs[m]["status"] == "ok" else "%s; %s" % (row["status"], torch_jobs[m]["status"])
            w("| %s | %s (%s) | %s | %s | %.0f | %.2f | %.1f GB | %s | %s | %s |"
              % (m, variant, row["layout"], row["compile"], row["timed_steps"], float(row["tokens_per_sec"]),
                 float(row["pairs_per_sec"]), float(row["peak_mem_gb"]), status,
                 times(r_same), times(r_shared)))
    w("")


def targets_section(w, models, metrics, sharing_of_ideal, vs_flex):
    w("### The issue's targets")
    w("")
    w("| target | measured | met |")
    w("|---|---|---|")

    def verdict(x, goal):
        return "—" if x is None else ("yes" if x >= goal else "**no**")

    for m, key in (("d12", "mfu_d12"), ("d48", "mfu_d48")):
        r = metrics(m, "on", "on")
        mfu = r["mfu"] if r else None
        w("| bf16 MFU ≥ %d%% at %s (shared, packed) | %s | %s |"
          % (100 * TARGETS[key], m, "—" if mfu is None else "%.1f%%" % (100 * mfu), verdict(mfu, TARGETS[key])))
    for m in models:
        x = sharing_of_ideal.get(m)
        w("| prefix-sharing speedup ≥ 90%% of ideal at %s (packing on, padding excluded) | %s | %s |"
          % (m, "—" if x is None else "%.0f%%" % (100 * x), verdict(x, TARGETS["sharing_of_ideal"])))
    for m in models:
        x = vs_flex.get(m)
        w("| ≥ 1.5× the PyTorch + FlexAttention step at %s (pairs/s) | %s | %s |"
          % (m, times(x), verdict(x, TARGETS["vs_flex"])))
    w("")


if __name__ == "__main__":
    main()
