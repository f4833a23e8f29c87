#!/usr/bin/env python3
"""dev/cuda/attention_torch.py: PyTorch's side of the attention benchmark, on the same masks.

dev/cuda/attention N --suite --masks DIR writes DIR/cases.tsv and one DIR/<case>.end.i32 per case
(end[] of B rows x T tokens, little-endian int32: key k is visible to query q iff k <= q < end[k]).
This script reads them and times, with the same conventions as dev/cuda/attention:
  flex         FlexAttention, mask_mod(b, h, q, k) = (k <= q) & (q < end[b, k]) from the same end[],
               the block mask built once per case outside the timing, flex_attention torch.compile'd;
               on the shared case and on its unshared twin
  sdpa-flash,  scaled_dot_product_attention(is_causal=True) on the unshared causal rows of the
  sdpa-cudnn   synthetic cases (one backend each, whichever this torch and GPU have)
  sdpa-varlen  torch.nn.attention.varlen.varlen_attn (flash, causal) on the unshared units of the
               HH-RLHF cases (packed sequences of different lengths: SDPA's causal mask cannot
               separate them)
bf16, head size 64 (12 heads) and 128 (8 heads), forward, backward (grad of q, k, v given dout) and
both; median of event-timed runs after warm-up (the compilation). TFLOP/s counts only visible (q, k)
pairs of real tokens: forward 4*hs FLOPs per pair and head, backward 2.5 times that, both 3.5 times.

Modes:
  --masks DIR --tsv OUT [--budget S]   the benchmark (needs torch with CUDA); one TSV line per
                                       measurement, in dev/cuda/attention's --tsv format
  --check                              FlexAttention (and varlen_attn) against an explicit masked
                                       softmax attention in float64 on small masks: output and
                                       gradients (needs torch with CUDA); PASS/FAIL lines; with
                                       --masks and --tsv, before the benchmark in the same process
  --report --masks DIR --ours TSV [--torch TSV] [--note TEXT]...
                                       the markdown comparison (no torch needed)
  --self-test --masks DIR              no torch: reads the mask files, recomputes visible pairs and
                                       tile classes, checks them against cases.tsv, checks --check's
                                       mask writer and the report on made-up timings; PASS/FAIL lines
"""
import argparse
import array
import csv
import math
import os
import sys
import time

STARTED = time.time()  # --budget counts from here: --check's compilations included
PASSES = ("fwd", "bwd", "both")
FLOP_FACTOR = {"fwd": 4.0, "bwd": 10.0, "both": 14.0}  # FLOPs per visible pair, head and head dim
HEADS = ((64, 12), (128, 8))  # (head size, heads): C = 768 and 1024
TSV_COLUMNS = ("impl", "detail", "group", "layout", "hs", "NH", "pass", "ms", "tflops", "visible_pairs", "note")
TILE_SKIP, TILE_FULL, TILE_PARTIAL = 0, 1, 2


# ---------------------------------------------------------------------------------------------
# mask files (no torch)

def read_cases(mask_dir):
    """cases.tsv as a list of dicts (numbers as int), in the benchmark's order."""
    path = os.path.join(mask_dir, "cases.tsv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    need = ("group", "suite", "layout", "P", "ratio", "pairs", "B", "T", "real_tokens", "visible_pairs", "tile",
            "tiles_skip", "tiles_full", "tiles_partial", "end_file")
    for line, row in enumerate(rows, start=2):
        missing = [c for c in need if row.get(c) in (None, "")]
        if missing:
            sys.exit(f"{path}: line {line}: missing {', '.join(missing)}; rewrite it with dev/cuda/attention N --suite --masks")
        for c in need[3:-1]:
            row[c] = int(row[c])
    return rows


def read_end(mask_dir, case):
    """end[] of a case as an array('i') of B*T entries (row-major)."""
    path = os.path.join(mask_dir, case["end_file"])
    end = array.array("i")
    if end.itemsize != 4:
        sys.exit("attention_torch.py: this Python's array('i') is not 32-bit")
    with open(path, "rb") as f:
        data = f.read()
    n = case["B"] * case["T"]
    if len(data) != 4 * n:
        sys.exit(f"{path}: {len(data)} bytes, expected B*T*4 = {4 * n} (B={case['B']}, T={case['T']}); "
                 "rewrite the mask files with dev/cuda/attention N --suite --masks")
    end.frombytes(data)
    if sys.byteorder != "little":
        end.byteswap()
    T = case["T"]
    for i, e in enumerate(end):
        k = i % T
        if not k < e <= T:
            sys.exit(f"{path}: row {i // T} key {k}: end {e} outside ({k}, {T}]")
    return end


def visible_pairs(case, end):
    """Visible (q, k) pairs of real tokens: key k is seen by queries [k, end[k]); each padding key
    (end = k + 1) adds one pair, and there are B*T - real_tokens of them."""
    T = case["T"]
    total = sum(e - (i % T) for i, e in enumerate(end))
    return total - (case["B"] * T - case["real_tokens"])


def tile_counts(case, end, tile):
    """Tiles of tile x tile on or below the diagonal by class (skip, full, partial), from each key
    tile's min and max end[] (the rule of kernels/attention_mask.h)."""
    B, T = case["B"], case["T"]
    n = (T + tile - 1) // tile
    counts = [0, 0, 0]
    for r in range(B):
        row = end[r * T:(r + 1) * T]
        for kt in range(n):
            k0, k1 = kt * tile, min(T, kt * tile + tile)
            lo, hi = min(row[k0:k1]), max(row[k0:k1])
            for qt in range(kt, n):
                q0, q1 = qt * tile, min(T, qt * tile + tile)
                if q1 - 1 < k0 or hi <= q0:
                    counts[TILE_SKIP] += 1
                elif k1 - 1 <= q0 and lo >= q1:
                    counts[TILE_FULL] += 1
                else:
                    counts[TILE_PARTIAL] += 1
    return counts


def shared_row(units, T):
    """end[] of one row of shared units (P, C, R) as data/batch.h writes them, padding after."""
    end = [k + 1 for k in range(T)]
    s = 0
    for P, C, R in units:
        u = s + P + C + 1 + R
        for t in range(s, u):
            end[t] = u
        for t in range(s + P - 1, s + P + C):
            end[t] = s + P + C
        s = u
    return end


def causal_segments(case, end):
    """The unshared layout's units as (start, length) over the flattened [B*T] tokens: in a causal
    unit every key ends where the unit ends, so a unit is [k, end[k]); padding gives units of one."""
    B, T = case["B"], case["T"]
    segments = []
    for r in range(B):
        k = 0
        while k < T:
            e = end[r * T + k]
            if any(end[r * T + j] != e for j in range(k, e)):
                sys.exit(f"case {case['group']}-{case['layout']}: row {r}: keys {k}..{e - 1} do not all end at {e}: "
                         "not a causal unit")
            segments.append((r * T + k, e - k))
            k = e
    return segments


# ---------------------------------------------------------------------------------------------
# the report (no torch)

def read_tsv(path):
    """Measurement lines and '#' note lines of a --tsv file."""
    rows, notes = [], []
    with open(path) as f:
        lines = f.read().splitlines()
    if not lines or lines[0].split("\t") != list(TSV_COLUMNS):
        sys.exit(f"{path}: the first line must be the header {' '.join(TSV_COLUMNS)}")
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        if line.startswith("#"):
            notes.append(line.lstrip("# "))
            continue
        fields = line.split("\t")
        if len(fields) != len(TSV_COLUMNS):
            sys.exit(f"{path}: line {n}: {len(fields)} fields, expected {len(TSV_COLUMNS)}")
        row = dict(zip(TSV_COLUMNS, fields))
        row["hs"] = int(row["hs"])
        row["ms"] = float(row["ms"]) if row["ms"] not in ("", "-") else None
        rows.append(row)
    return rows, notes


def fmt_ms(ms):
    return "—" if ms is None else f"{ms:.3f}"


def ratio(a, b):
    return None if a is None or b is None or b <= 0 else a / b


def fmt_x(x):
    return "—" if x is None else f"{x:.2f}x"


def make_report(cases, ours_rows, torch_rows, notes):
    """Markdown: the plan table, then per pass a table of ours against FlexAttention and SDPA."""
    out = []
    by_group = {}
    for c in cases:
        by_group.setdefault(c["group"], {})[c["layout"]] = c
    ideal = {}
    for g, pair in by_group.items():
        if "shared" in pair and "unshared" in pair and pair["shared"]["visible_pairs"] > 0:
            ideal[g] = pair["unshared"]["visible_pairs"] / pair["shared"]["visible_pairs"]

    out.append("Plan (exact host computations from end[], not measurements): tiles of "
               f"{cases[0]['tile'] if cases else '?'}x{cases[0]['tile'] if cases else '?'} on or below the diagonal; "
               "ideal = visible pairs unshared / shared.")
    out.append("")
    out.append("| case | layout | pairs | B x T | real tokens | visible pairs | skip | full | partial | ideal |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for c in cases:
        n = max(1, c["tiles_skip"] + c["tiles_full"] + c["tiles_partial"])
        idl = f"{ideal[c['group']]:.3f}" if c["layout"] == "shared" and c["group"] in ideal else ""
        out.append(f"| {c['group']} | {c['layout']} | {c['pairs']} | {c['B']} x {c['T']} | {c['real_tokens']} | "
                   f"{c['visible_pairs']} | {100 * c['tiles_skip'] / n:.1f}% | {100 * c['tiles_full'] / n:.1f}% | "
                   f"{100 * c['tiles_partial'] / n:.1f}% | {idl} |")
    out.append("")

    def lookup(rows, impls, group, layout, hs, pas):
        """Fastest measurement of any of impls: (ms, impl, note of a failure)."""
        best, failure = None, ""
        for r in rows:
            if r["impl"] in impls and r["group"] == group and r["layout"] == layout and r["hs"] == hs and r["pass"] == pas:
                if r["ms"] is None:
                    failure = r["note"]
                elif best is None or r["ms"] < best[0]:
                    best = (r["ms"], r["impl"])
        return (best[0], best[1], "") if best else (None, "", failure)

    if not ours_rows and not torch_rows:
        out.append("No times: nothing was measured (see the notes).")
        out.append("")
        if notes:
            out.extend(["Notes:", ""] + [f"- {n}" for n in notes] + [""])
        return "\n".join(out)
    ours_detail = sorted({r["detail"] for r in ours_rows})
    out.append(f"Times in ms (median); ours = dev/cuda/attention ({', '.join(ours_detail) or 'no measurements'}); "
               "flex = FlexAttention on the same end[]; SDPA = the fastest of sdpa-flash / sdpa-cudnn (synthetic) or "
               "sdpa-varlen (HH-RLHF) on the unshared causal layout of the same pairs. Speedups: the other's time "
               "over ours on the shared mask; ideal = quadratic (visible pairs). — = not measured (see notes).")
    out.append("")
    groups = list(by_group)
    for pas in PASSES:
        out.append(f"#### {pas}")
        out.append("")
        out.append("| case | hs | ours shared | TFLOP/s | ours unshared | speedup (ideal) | flex shared | ours vs flex "
                   "| SDPA unshared | vs SDPA (ideal) |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for g in groups:
            if "shared" not in by_group[g]:
                continue
            for hs, _ in HEADS:
                o_s, _, o_fail = lookup(ours_rows, ("ours",), g, "shared", hs, pas)
                o_u, _, _ = lookup(ours_rows, ("ours",), g, "unshared", hs, pas)
                f_s, _, f_fail = lookup(torch_rows, ("flex",), g, "shared", hs, pas)
                s_u, s_impl, s_fail = lookup(torch_rows, ("sdpa-flash", "sdpa-cudnn", "sdpa-varlen"), g, "unshared",
                                             hs, pas)
                tf = ""
                for r in ours_rows:
                    if (r["group"], r["layout"], r["hs"], r["pass"]) == (g, "shared", hs, pas) and r["ms"] is not None:
                        tf = r["tflops"]
                idl = ideal.get(g)
                idl_s = f" ({idl:.2f}x)" if idl else ""
                sdpa = fmt_ms(s_u) + (f" {s_impl}" if s_impl else "") + (f" ({s_fail})" if s_fail else "")
                out.append(f"| {g} | {hs} | {fmt_ms(o_s)} | {tf} | {fmt_ms(o_u)} | {fmt_x(ratio(o_u, o_s))}{idl_s} | "
                           f"{fmt_ms(f_s)}{' (' + f_fail + ')' if f_fail else ''} | {fmt_x(ratio(f_s, o_s))} | {sdpa} | "
                           f"{fmt_x(ratio(s_u, o_s))}{idl_s} |")
        out.append("")

    # the targets, where measured
    verdicts = []
    for g in groups:
        if not g.startswith("hh-"):
            continue
        for hs, _ in HEADS:
            for pas in ("fwd", "bwd"):
                o_s = lookup(ours_rows, ("ours",), g, "shared", hs, pas)[0]
                f_s = lookup(torch_rows, ("flex",), g, "shared", hs, pas)[0]
                if o_s is not None and f_s is not None:
                    verdicts.append(f"- {g} hs={hs} {pas}: {'faster' if o_s < f_s else '**slower**'} than "
                                    f"FlexAttention ({o_s:.3f} vs {f_s:.3f} ms)")
    for g in groups:
        c = by_group[g].get("shared")
        if not c or c["suite"] != "syn" or c["P"] < 1024 or g not in ideal:
            continue
        for hs, _ in HEADS:
            for pas in PASSES:
                o_s = lookup(ours_rows, ("ours",), g, "shared", hs, pas)[0]
                s_u, s_impl, _ = lookup(torch_rows, ("sdpa-flash", "sdpa-cudnn", "sdpa-varlen"), g, "unshared", hs, pas)
                base, name = (s_u, s_impl) if s_u is not None else (lookup(ours_rows, ("ours",), g, "unshared", hs, pas)[0], "ours unshared")
                s = ratio(base, o_s)
                if s is not None:
                    ok = s >= 0.75 * ideal[g]
                    verdicts.append(f"- {g} hs={hs} {pas}: speedup {s:.2f}x over {name}, ideal {ideal[g]:.2f}x: "
                                    f"{'within' if ok else '**not within**'} 25%")
    out.append("Targets of issue 12 (faster than FlexAttention on HH-RLHF, forward and backward; within 25% of the "
               "ideal speedup over unshared causal on the synthetic grid at prefix >= 1024):")
    out.append("")
    out.extend(verdicts or ["- nothing measured that the targets need"])
    out.append("")
    if notes:
        out.append("Notes:")
        out.append("")
        out.extend(f"- {n}" for n in notes)
        out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# the self-test (no torch)

def self_test(mask_dir):
    failures = 0

    def report(ok, name, why=""):
        nonlocal failures
        print(f"PASS {name}" if ok else f"FAIL {name}: {why}")
        failures += 0 if ok else 1

    cases = read_cases(mask_dir)
    report(len(cases) > 0 and len(cases) % 2 == 0, "attention_torch reads cases.tsv", f"{len(cases)} cases")
    for c in cases:
        end = read_end(mask_dir, c)
        name = f"{c['group']}-{c['layout']}"
        v = visible_pairs(c, end)
        report(v == c["visible_pairs"], f"attention_torch visible pairs {name}", f"{v}, cases.tsv {c['visible_pairs']}")
        t = tile_counts(c, end, c["tile"])
        want = [c["tiles_skip"], c["tiles_full"], c["tiles_partial"]]
        report(t == want, f"attention_torch tile classes {name}", f"{t}, cases.tsv {want}")
        if c["layout"] == "unshared":
            seg = causal_segments(c, end)
            # each pair has two units of at least 2 tokens (P >= 1, C, R >= 1); the rest are padding
            units = sum(1 for _, n in seg if n > 1)
            report(sum(n for _, n in seg) == c["B"] * c["T"] and units == 2 * c["pairs"],
                   f"attention_torch causal units {name}", f"{units} units of 2 or more tokens, {c['pairs']} pairs")

    # the --check masks' writer against dev/cuda/README.md's drawing of its worked example
    drawn = [12] * 4 + [8] * 4 + [12] * 4 + [20, 20, 17, 17, 17, 20, 20, 20, 21, 22, 23, 24]
    got = shared_row([(5, 3, 3), (3, 2, 2)], 24)
    report(got == drawn, "attention_torch shared_row as dev/cuda/README.md draws it", f"{got}")

    # the report on made-up timings: ours 1 ms shared, 2 ms unshared; flex 3 ms; SDPA 4 ms
    g = cases[0]["group"]
    ours = [dict(impl="ours", detail="version 2 bf16", group=g, layout=lay, hs=64, NH="12", **{"pass": p},
                 ms=ms, tflops="9.9", visible_pairs="0", note="ok")
            for lay, ms in (("shared", 1.0), ("unshared", 2.0)) for p in PASSES]
    impl = "sdpa-varlen" if cases[0]["suite"] == "hh" else "sdpa-flash"
    torch_rows = [dict(impl="flex", detail="", group=g, layout="shared", hs=64, NH="12", **{"pass": p}, ms=3.0,
                       tflops="", visible_pairs="0", note="ok") for p in PASSES]
    torch_rows += [dict(impl=impl, detail="", group=g, layout="unshared", hs=64, NH="12", **{"pass": p}, ms=4.0,
                        tflops="", visible_pairs="0", note="ok") for p in PASSES]
    md = make_report(cases, ours, torch_rows, ["a note"])
    pair = [c for c in cases if c["group"] == g]
    idl = [c for c in pair if c["layout"] == "unshared"][0]["visible_pairs"] / \
        [c for c in pair if c["layout"] == "shared"][0]["visible_pairs"]
    row = f"| {g} | 64 | 1.000 | 9.9 | 2.000 | 2.00x ({idl:.2f}x) | 3.000 | 3.00x | 4.000 {impl} | 4.00x ({idl:.2f}x) |"
    report(md.count(row) == 3, "attention_torch report row", f"expected 3 times: {row}\n{md}")
    report(md.count("| — |") > 0 and "- a note" in md, "attention_torch report marks what was not measured")
    report(f"{idl:.3f}" in md, "attention_torch report ideal speedup")
    return 1 if failures else 0


# ---------------------------------------------------------------------------------------------
# with torch (GPU)

def median_ms(torch, run, min_runs=5, max_runs=25, target_ms=150.0):
    """Median of event-timed runs after two warm-up runs (the first compiles)."""
    for _ in range(2):
        run()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    while len(times) < min_runs or (len(times) < max_runs and sum(times) < target_ms):
        start.record()
        run()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return times[len(times) // 2]


def compiled_flex(torch, flex_attention):
    """flex_attention under torch.compile, with room for one compilation per shape and mask: past
    dynamo's recompile limit (8 by default) it would fall back to the unfused eager version."""
    import torch._dynamo
    for name in ("cache_size_limit", "recompile_limit", "accumulated_cache_size_limit",
                 "accumulated_recompile_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, max(1024, getattr(torch._dynamo.config, name)))
    return torch.compile(flex_attention, dynamic=False)


def flex_mask_mod(end_t):
    """mask_mod of FlexAttention from end[B, T]: key k visible to query q iff k <= q < end[b, k]."""
    def mask_mod(b, h, q_idx, kv_idx):
        return (kv_idx <= q_idx) & (q_idx < end_t[b, kv_idx])
    return mask_mod


def varlen_causal(torch):
    """varlen_attn with causal masking, whichever of its signatures this torch has, or None."""
    try:
        import inspect
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    params = inspect.signature(varlen_attn).parameters
    if "is_causal" in params:
        return lambda q, k, v, cu, mx: varlen_attn(q, k, v, cu, cu, mx, mx, is_causal=True)
    if "window_size" in params:
        return lambda q, k, v, cu, mx: varlen_attn(q, k, v, cu, cu, mx, mx, window_size=(-1, 0))
    return None


def time_passes(torch, forward, inputs, dout):
    """Median ms of forward, backward (grads of inputs, forward graph kept) and both, as a dict,
    and "ok" or the first error: a pass that fails is None and the others are still timed."""
    def backward_alone():
        out = forward(*inputs)
        return median_ms(torch, lambda: torch.autograd.grad(out, inputs, dout, retain_graph=True))
    runs = {"fwd": lambda: median_ms(torch, lambda: forward(*inputs)),
            "bwd": backward_alone,
            "both": lambda: median_ms(torch, lambda: torch.autograd.grad(forward(*inputs), inputs, dout))}
    ms, note = {}, "ok"
    for p in PASSES:
        try:
            ms[p] = runs[p]()
        except Exception as e:  # noted in the TSV; the other passes go on
            ms[p] = None
            if note == "ok":
                note = f"{p} error: {type(e).__name__}: {e}"
    return ms, note


def benchmark(args):
    import torch
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    if not torch.cuda.is_available():
        sys.exit("attention_torch.py: no CUDA device")
    flex = compiled_flex(torch, flex_attention)
    varlen = varlen_causal(torch)
    from torch.nn.attention import SDPBackend, sdpa_kernel
    sdpa_backends = [("sdpa-flash", SDPBackend.FLASH_ATTENTION)]
    if hasattr(SDPBackend, "CUDNN_ATTENTION"):
        sdpa_backends.append(("sdpa-cudnn", SDPBackend.CUDNN_ATTENTION))
    cases = read_cases(args.masks)
    version = f"torch {torch.__version__}"
    # written line by line: a run cut short by a timeout keeps what it measured
    tsv = open(args.tsv, "w")
    tsv.write("\t".join(TSV_COLUMNS) + "\n")

    def emit(impl, detail, c, hs, NH, ms, note="ok"):
        """One TSV line per pass; ms None (nothing timed) or a dict whose failed passes are None."""
        note = " ".join(note.split())[:300]
        for p in PASSES:
            t = ms.get(p) if ms else None
            timed = [f"{t:.6f}", f"{FLOP_FACTOR[p] * hs * NH * c['visible_pairs'] / t * 1e-9:.3f}"] if t else ["-", "-"]
            tsv.write("\t".join([impl, detail, c["group"], c["layout"], str(hs), str(NH), p] + timed +
                                [str(c["visible_pairs"]), note]) + "\n")
        tsv.flush()
        times = " ".join(f"{p} {ms[p]:.3f}" if ms and ms.get(p) else f"{p} -" for p in PASSES)
        print(f"{impl:12s} {c['group']:16s} {c['layout']:8s} hs={hs:3d} {times} ms {'' if note == 'ok' else note}",
              flush=True)

    # the order of the work: for each group the shared case with flex, the unshared with SDPA, then
    # the unshared with flex (the least needed: cut first when the budget runs out)
    ordered = []
    for c in cases:
        if c["layout"] == "shared":
            ordered.append(("flex", c))
            twin = [u for u in cases if u["group"] == c["group"] and u["layout"] == "unshared"]
            ordered += [("sdpa", u) for u in twin]
    ordered += [("flex", c) for c in cases if c["layout"] == "unshared"]
    done = 0
    for kind, c in ordered:
        if args.budget and time.time() - STARTED > args.budget:
            break
        done += 1
        B, T = c["B"], c["T"]
        end = read_end(args.masks, c)
        end_t = torch.tensor(end.tolist(), dtype=torch.int32, device="cuda").view(B, T)
        block_mask = None
        for hs, NH in HEADS:
            shape = (B, NH, T, hs)
            q, k, v = (torch.randn(shape, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
            dout = torch.randn(shape, device="cuda", dtype=torch.bfloat16)
            if kind == "flex":
                try:
                    if block_mask is None:  # once per case, outside the timing
                        block_mask = create_block_mask(flex_mask_mod(end_t), B, None, T, T, device="cuda")
                    ms, note = time_passes(torch, lambda a, b, d: flex(a, b, d, block_mask=block_mask), (q, k, v),
                                           dout)
                    emit("flex", f"{version} compiled", c, hs, NH, ms, note)
                except Exception as e:  # report, go on with the rest
                    emit("flex", version, c, hs, NH, None, f"error: {type(e).__name__}: {e}")
            elif c["suite"] == "syn":
                for name, backend in sdpa_backends:
                    def sdpa(a, b, d, backend=backend):
                        with sdpa_kernel([backend]):
                            return torch.nn.functional.scaled_dot_product_attention(a, b, d, is_causal=True)
                    try:
                        emit(name, version, c, hs, NH, *time_passes(torch, sdpa, (q, k, v), dout))
                    except Exception as e:
                        emit(name, version, c, hs, NH, None, f"error: {type(e).__name__}: {e}")
            else:
                if varlen is None:
                    emit("sdpa-varlen", version, c, hs, NH, None, "torch.nn.attention.varlen.varlen_attn not available")
                    continue
                seg = causal_segments(c, end)
                cu = torch.tensor([s for s, _ in seg] + [B * T], dtype=torch.int32, device="cuda")
                longest = max(n for _, n in seg)
                # [B*T, NH, hs] token-major views of the same numbers
                qv, kv, vv = (x.detach().transpose(1, 2).reshape(B * T, NH, hs).contiguous().requires_grad_(True)
                              for x in (q, k, v))
                dout_v = dout.transpose(1, 2).reshape(B * T, NH, hs).contiguous()
                try:
                    ms, note = time_passes(torch, lambda a, b, d: varlen(a, b, d, cu, longest), (qv, kv, vv), dout_v)
                    emit("sdpa-varlen", f"{version} varlen_attn causal", c, hs, NH, ms, note)
                except Exception as e:
                    emit("sdpa-varlen", version, c, hs, NH, None, f"error: {type(e).__name__}: {e}")
        end_t = block_mask = None  # free the GPU memory before the next case
        torch.cuda.empty_cache()
    if done < len(ordered):
        note = (f"torch: budget of {args.budget:.0f} s reached: {len(ordered) - done} of {len(ordered)} "
                f"(implementation, case) runs not done, from {ordered[done][0]} on {ordered[done][1]['group']}-"
                f"{ordered[done][1]['layout']}")
        tsv.write("# " + note + "\n")
        print(note)
    tsv.close()


def check(args):
    """FlexAttention's output and gradients on small masks against an explicit masked softmax in
    float64. Inputs fp32, matmul precision "highest" (no tf32): sums of <= 200 fp32 products stay
    near 1e-6 of the largest entry; tolerance 1e-4 of it (one key too many or too few among 200
    moves the output by ~1e-3 or more)."""
    import torch
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    if not torch.cuda.is_available():
        sys.exit("attention_torch.py: no CUDA device")
    flex = compiled_flex(torch, flex_attention)
    varlen = varlen_causal(torch)
    failures = 0

    def report(ok, name, why=""):
        nonlocal failures
        print(f"PASS {name}" if ok else f"FAIL {name}: {why}", flush=True)
        failures += 0 if ok else 1

    def explicit(q, k, v, end_t):
        """float64 softmax(q k^T / sqrt(hs)) v with the mask built element by element."""
        T = q.shape[2]
        qi = torch.arange(T, device=q.device).view(T, 1)
        ki = torch.arange(T, device=q.device).view(1, T)
        visible = (ki <= qi) & (qi < end_t[:, None, None, :].to(torch.int64))  # [B, 1, T, T]
        s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        s = s.masked_fill(~visible, float("-inf"))
        return torch.softmax(s, dim=-1) @ v

    def scaled_error(got, want):
        return ((got.double() - want).abs().max() / want.abs().max().clamp_min(1e-30)).item()

    torch.manual_seed(0)
    torch.set_float32_matmul_precision("highest")
    # one mask (each new shape compiles again): dev/cuda/README.md's example row, units of several
    # sizes, one long unit, 50 units of P = C = R = 1; T = 200 is not a multiple of flex's blocks
    rows = [shared_row([(5, 3, 3), (3, 2, 2)], 200), shared_row([(40, 30, 20), (10, 5, 7), (3, 1, 1)], 200),
            shared_row([(150, 20, 28)], 200), shared_row([(1, 1, 1)] * 50, 200)]

    def check_flex():
        B, T, NH, hs = len(rows), len(rows[0]), 2, 64  # one head size: each shape compiles again
        end_t = torch.tensor(rows, dtype=torch.int32, device="cuda")
        q, k, v = (torch.randn(B, NH, T, hs, device="cuda", requires_grad=True) for _ in range(3))
        dout = torch.randn(B, NH, T, hs, device="cuda")
        bm = create_block_mask(flex_mask_mod(end_t), B, None, T, T, device="cuda")
        out = flex(q, k, v, block_mask=bm)
        grads = torch.autograd.grad(out, (q, k, v), dout)
        q64, k64, v64 = (x.detach().double().requires_grad_(True) for x in (q, k, v))
        ref = explicit(q64, k64, v64, end_t)
        ref_grads = torch.autograd.grad(ref, (q64, k64, v64), dout.double())
        err = max([scaled_error(out, ref)] + [scaled_error(g, r) for g, r in zip(grads, ref_grads)])
        return err <= 1e-4, f"error {err:.3g} > 1e-4"

    def check_varlen():
        """varlen_attn on causal units of different lengths (the unshared HH-RLHF runs)."""
        lens = [37, 1, 90, 64, 8]
        N, NH, hs = sum(lens), 2, 64
        cu = torch.tensor([0] + [sum(lens[:i + 1]) for i in range(len(lens))], dtype=torch.int32, device="cuda")
        q, k, v = (torch.randn(N, NH, hs, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        out = varlen(q, k, v, cu, max(lens))
        end = []
        for n in lens:
            end += [len(end) + n] * n
        end_t = torch.tensor([end], dtype=torch.int32, device="cuda")
        as_bhtd = lambda x: x.double().transpose(0, 1).unsqueeze(0)  # [1, NH, N, hs]
        ref = explicit(as_bhtd(q), as_bhtd(k), as_bhtd(v), end_t)[0].transpose(0, 1)
        # bf16 inputs and output: 8 significant bits, 2^-8 = 3.9e-3 per rounding
        err = scaled_error(out, ref)
        return err <= 1.5e-2, f"error {err:.3g} > 1.5e-2"

    checks = [(f"flex mask_mod B={len(rows)} T={len(rows[0])} hs=64", check_flex)]
    if varlen is None:
        print("SKIP varlen_attn causal units: torch.nn.attention.varlen.varlen_attn not available")
    else:
        checks.append(("varlen_attn causal units", check_varlen))
    for name, run in checks:
        try:
            ok, why = run()
        except Exception as e:  # a failure to run is a failure, and the benchmark still goes on
            ok, why = False, f"{type(e).__name__}: {e}"
        report(ok, name, why)
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--masks", help="directory written by dev/cuda/attention N --suite --masks DIR")
    ap.add_argument("--tsv", help="benchmark: the TSV file to write")
    ap.add_argument("--budget", type=float, default=0.0, help="benchmark: start nothing after this many seconds")
    ap.add_argument("--check", action="store_true", help="FlexAttention against float64 on small masks (GPU)")
    ap.add_argument("--report", action="store_true", help="markdown from --masks, --ours and --torch")
    ap.add_argument("--ours", help="report: dev/cuda/attention's --tsv file")
    ap.add_argument("--torch", help="report: this script's --tsv file (optional)")
    ap.add_argument("--note", action="append", default=[], help="report: a line for its notes (repeatable)")
    ap.add_argument("--self-test", action="store_true", help="the checks that need no torch (with --masks)")
    args = ap.parse_args()
    if args.self_test:
        if not args.masks:
            ap.error("--self-test needs --masks DIR")
        return self_test(args.masks)
    if args.check and not args.tsv:
        return check(args)
    if args.report:
        if not args.masks:
            ap.error("--report needs --masks DIR")
        cases = read_cases(args.masks)
        ours, notes = read_tsv(args.ours) if args.ours and os.path.exists(args.ours) else ([], [])
        torch_rows, torch_notes = read_tsv(args.torch) if args.torch and os.path.exists(args.torch) else ([], [])
        print(make_report(cases, ours, torch_rows, args.note + notes + torch_notes))
        return 0
    if not args.masks or not args.tsv:
        ap.error("the benchmark needs --masks DIR and --tsv FILE (or --check, --report, --self-test)")
    status = check(args) if args.check else 0  # in the same process: torch imported and warmed up once
    benchmark(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
