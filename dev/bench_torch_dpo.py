#!/usr/bin/env python3
"""dev/bench_torch_dpo.py: the DPO training step of train_dpo.cu, written plainly in PyTorch, to
compare with on the same GPU, model shape and data (issue 11's benchmark; dev/bench_train.sh runs
it and puts "ours / theirs" in the report).

Two variants of one bf16 GPT-2 DPO step (autocast bf16, fp32 weights and AdamW, the sigmoid DPO
loss with beta 0.1 against reference log-probs computed beforehand, gradient clipping at 1.0):
  sdpa  the unshared layout: each pair's chosen and rejected as two causal rows [p|c], [p|r],
        B rows per micro-batch (B/2 pairs), padded to the micro-batch's longest row (as TRL
        pads); attention is torch's scaled_dot_product_attention(is_causal=True).
  flex  prefix sharing, the paper's method: the very micro-batches train_dpo packs (shared units
        [p|c|p'|r], first-fit-decreasing into B rows of T tokens), position ids from the packer,
        and FlexAttention with the one-integer mask of docs/DESIGN.md §1.3: key k is visible to
        query q iff k <= q < end[k].
Both run the LM head on the scored tokens only (as train_dpo does), so the two implementations do
the same arithmetic and the comparison is of the implementations.

  bench_torch_dpo.py --data PAIRS.bin --model d12 --micro-rows 16 --batch-pairs 128 --steps 6 \
                     [--seq-len 1024] [--variants sdpa,flex] [--compile flex|model|none] \
                     [--time-limit SECONDS] [--out RESULTS.tsv]
  bench_torch_dpo.py --self-test [--dump dev/dump_batches] [--data PAIRS.bin ...]
  bench_torch_dpo.py --write-hf DIR --model d48 --data PAIRS.bin [--seed S]
      (the initial weights of the trainer runs, drawn by torch: see write_hf)
Dev checks on the CPU with any torch >= 1.13 (Debian's python3-torch; README, GPU benchmark):
  bench_torch_dpo.py --data PAIRS.bin --hf HF_DIR --score LOGPS.tsv --model M --seq-len T --micro-rows B
      this file's model, on both variants' layouts with explicit masked-softmax attention, against
      `train_dpo_cpu score` of the same model (per-pair log-probs);
  bench_torch_dpo.py --device cpu --data PAIRS.bin --model tiny ...
      the benchmark itself in fp32 with masked-softmax attention (its losses step by step against
      train_dpo_cpu's from the same --write-hf weights).

--compile flex (default) compiles flex_attention only (FlexAttention needs it to be fast); the
rest runs eagerly in both variants. --compile model compiles the whole model (slow to start).
The first step of each variant is a warm-up and not timed. Timing covers host-to-device copies,
forward, backward, clipping and AdamW; the Python packing is done before the timed steps.

The pair file reader and the layout construction below are pure Python (no torch), so
--self-test runs anywhere: it rebuilds the batches that dev/dump_batches prints from the C++
packer (data/dataloader.h) and requires them equal field by field, and checks the mask of each
case's first micro-batch against the explicit visibility rule of docs/DESIGN.md §1.2. Output:
PASS/FAIL lines (dev/test_util.h's convention), exit 1 on a failure.
"""
import argparse
import contextlib
import os
import struct
import subprocess
import sys
import time
import traceback
from array import array

# ---------------------------------------------------------------------------------------------
# The binary pair file (data/pairfile.h; byte by byte in data/README.md): a 256-byte header,
# an index of 20 bytes per pair (uint64 offset, uint32 P, C, R), then the tokens (uint16 when the
# vocabulary fits 16 bits, else uint32). Little-endian.

PAIRFILE_MAGIC = b"DPOPAIRS"
HEADER_BYTES = 256
ENTRY_BYTES = 20
FNV_OFFSET, FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3


def fnv1a64(data, h=FNV_OFFSET):
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


class PairFileError(Exception):
    pass


class PairFile:
    """A pair file in memory: tokens (array of ints), and per pair offset, P, C, R."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            data = f.read()

        def fail(at, what):
            raise PairFileError("%s: byte %d: %s; remake it with data/prepare_dpo" % (path, at, what))

        if len(data) < HEADER_BYTES or data[:8] != PAIRFILE_MAGIC:
            fail(0, "not a dpo pair file (no \"DPOPAIRS\" header of 256 bytes)")
        (version, header_bytes, vocab, width, n_pairs, n_tokens, flags, entry_bytes) = \
            struct.unpack_from("<IIIIQQII", data, 8)
        if version != 1:
            fail(8, "format version %d, this reader knows version 1" % version)
        if header_bytes != HEADER_BYTES or entry_bytes != ENTRY_BYTES:
            fail(12, "header size %d / index entry size %d, expected 256 / 20" % (header_bytes, entry_bytes))
        if struct.unpack_from("<Q", data, 248)[0] != fnv1a64(data[:248]):
            fail(248, "header checksum mismatch")
        if width != (2 if vocab <= 65536 else 4):
            fail(20, "token width %d bytes for vocab_size %d" % (width, vocab))
        tokens_at = HEADER_BYTES + n_pairs * ENTRY_BYTES
        if n_pairs == 0 or tokens_at + n_tokens * width != len(data):
            fail(24, "%d pairs and %d tokens do not make the file's %d bytes" % (n_pairs, n_tokens, len(data)))
        self.vocab_size = vocab
        self.offset, self.P, self.C, self.R = [], [], [], []
        expect = 0
        for i in range(n_pairs):
            at = HEADER_BYTES + i * ENTRY_BYTES
            offset, P, C, R = struct.unpack_from("<QIII", data, at)
            if offset != expect or min(P, C, R) < 1 or offset + P + C + R > n_tokens:
                fail(at, "pair %d: offset %d, P %d, C %d, R %d (expected offset %d, lengths >= 1)"
                     % (i, offset, P, C, R, expect))
            expect = offset + P + C + R
            self.offset.append(offset); self.P.append(P); self.C.append(C); self.R.append(R)
        if expect != n_tokens:
            fail(HEADER_BYTES, "the pairs cover %d tokens, the header says %d" % (expect, n_tokens))
        self.tokens = array("H" if width == 2 else "I")
        if self.tokens.itemsize != width:
            raise PairFileError("%s: this Python has no %d-byte array type" % (path, width))
        self.tokens.frombytes(data[tokens_at:])
        if sys.byteorder != "little":
            self.tokens.byteswap()

    def __len__(self):
        return len(self.P)

    def parts(self, i):
        """(prompt, chosen, rejected) token lists of pair i."""
        o, P, C, R = self.offset[i], self.P[i], self.C[i], self.R[i]
        t = self.tokens
        return t[o:o + P].tolist(), t[o + P:o + P + C].tolist(), t[o + P + C:o + P + C + R].tolist()


# ---------------------------------------------------------------------------------------------
# Layouts: the Batch of data/batch.h and the packer of data/dataloader.h, line for line.
# Units (docs/DESIGN.md §1.2): shared [p | c | p(P-1)' | r]; baseline [p | c] and [p | r].
# Per token: token id, position id, target (-1 none), end (key k is visible to query q iff
# k <= q < end[k]; padding: k + 1), pair slot and side (1 chosen, 2 rejected) of scored tokens.

SIDE_NONE, SIDE_CHOSEN, SIDE_REJECTED = 0, 1, 2
FIELDS = ("tokens", "pos", "target", "end", "slot", "side")


class Batch:
    def __init__(self, B, T):
        self.B, self.T = B, T
        n = B * T
        self.tokens = [0] * n
        self.pos = [0] * n
        self.target = [-1] * n
        self.slot = [-1] * n
        self.side = [SIDE_NONE] * n
        self.end = [(i % T) + 1 for i in range(n)]  # padding sees only itself
        self.row_len = [0] * B
        self.pair_ids = []

    def real_tokens(self):
        return sum(self.row_len)


def unit_len(shared, unit, P, C, R):
    if shared:
        return P + C + 1 + R
    return P + C if unit == 0 else P + R


def write_unit(b, shared, unit, row, start, slot, p, c, r):
    """Unit `unit` (0: the shared or baseline-chosen unit, 1: baseline rejected) of a pair at
    row `row`, columns from `start` (data/batch.h write_unit)."""
    P, C, R = len(p), len(c), len(r)
    base = row * b.T
    second = (not shared) and unit == 1
    resp, N, first_side = (r, R, SIDE_REJECTED) if second else (c, C, SIDE_CHOSEN)
    length = P + C + 1 + R if shared else P + N
    unit_end = start + length
    for i in range(P):
        t = base + start + i
        b.tokens[t], b.pos[t], b.end[t] = p[i], i, unit_end
        if i == P - 1:
            b.target[t], b.slot[t], b.side[t] = resp[0], slot, first_side
    for j in range(N):
        t = base + start + P + j
        b.tokens[t], b.pos[t], b.end[t] = resp[j], P + j, unit_end
        if j + 1 < N:
            b.target[t], b.slot[t], b.side[t] = resp[j + 1], slot, first_side
    if shared:
        for t in range(base + start + P - 1, base + start + P + C):  # hidden from the rejected side
            b.end[t] = start + P + C
        t = base + start + P + C  # the copy of the last prompt token, at position P-1
        b.tokens[t], b.pos[t], b.end[t] = p[P - 1], P - 1, unit_end
        b.target[t], b.slot[t], b.side[t] = r[0], slot, SIDE_REJECTED
        for j in range(R):
            u = t + 1 + j
            b.tokens[u], b.pos[u], b.end[u] = r[j], P + j, unit_end
            if j + 1 < R:
                b.target[u], b.slot[u], b.side[u] = r[j + 1], slot, SIDE_REJECTED
    b.row_len[row] = max(b.row_len[row], unit_end)


def pack_pairs(pf, ids, B, T, shared, packing):
    """Micro-batches of B rows x T tokens holding the pairs ids (dataset indices, step order):
    first-fit-decreasing with packing, else one unit per row (data/dataloader.h pack_pairs).
    A pair that cannot fit is an error (the trainers' default --overlong error)."""
    U = 1 if shared else 2
    if not packing and not shared and B < 2:
        raise ValueError("the baseline layout without packing needs B >= 2")
    lens = []
    for i in ids:
        L = [unit_len(shared, u, pf.P[i], pf.C[i], pf.R[i]) for u in range(U)]
        fits = L[0] <= T if shared else (max(L) <= T and (B >= 2 or L[0] + L[1] <= T))
        if not fits:
            raise ValueError("%s: pair %d (P=%d C=%d R=%d) does not fit rows of T=%d; make the data "
                             "with data/prepare_dpo --max-len %d" % (pf.path, i, pf.P[i], pf.C[i], pf.R[i], T, T))
        lens.append(L)
    n = len(ids)
    place = [[None] * U for _ in range(n)]  # (batch, row, start) per unit
    n_batches = 0
    if not packing:
        per_batch = B // U  # baseline: rows 2i and 2i+1 hold pair i's two units
        for j in range(n):
            for u in range(U):
                place[j][u] = (j // per_batch, (j % per_batch) * U + u, 0)
        n_batches = (n + per_batch - 1) // per_batch
    else:
        order = sorted(range(n), key=lambda j: -sum(lens[j]))  # stable: ties in step order
        used = []  # [n_batches][B] tokens used per row
        for j in order:
            L = lens[j]
            first = 1 if U == 2 and L[1] > L[0] else 0  # the longer unit first
            row_of = [-1, -1]
            b = 0
            while True:
                if b == n_batches:
                    n_batches += 1
                    used.append([0] * B)
                ok = True
                for v in range(U):
                    u = first if v == 0 else 1 - first
                    row_of[u] = -1
                    for r in range(B):
                        extra = L[first] if (v == 1 and r == row_of[first]) else 0
                        if used[b][r] + extra + L[u] <= T:
                            row_of[u] = r
                            break
                    if row_of[u] < 0:
                        ok = False
                        break
                if ok:
                    break
                b += 1
            for v in range(U):
                u = first if v == 0 else 1 - first
                place[j][u] = (b, row_of[u], used[b][row_of[u]])
                used[b][row_of[u]] += L[u]
    batches = [Batch(B, T) for _ in range(n_batches)]
    for j, i in enumerate(ids):
        batch = batches[place[j][0][0]]
        slot = len(batch.pair_ids)
        batch.pair_ids.append(i)
        p, c, r = pf.parts(i)
        for u in range(U):
            _, row, start = place[j][u]
            write_unit(batch, shared, u, row, start, slot, p, c, r)
    return batches


def step_pair_ids(n_pairs, pairs_per_step, step):
    """Dataset indices of step `step` with pairs in file order (the trainers' --no-shuffle)."""
    return [(step * pairs_per_step + k) % n_pairs for k in range(pairs_per_step)]


# ---------------------------------------------------------------------------------------------
# Self-test against the C++ packer

def parse_dump(text):
    """dev/dump_batches' output -> list of steps, each a list of dicts (one per micro-batch)."""
    steps = []
    for line in text.splitlines():
        words = line.split()
        if words[0] == "step":
            steps.append({"batches": [], "real_tokens": int(words[5]), "padded_tokens": int(words[7])})
            for _ in range(int(words[3])):
                steps[-1]["batches"].append({})
        elif words[0] == "batch":
            steps[-1]["batches"][int(words[1])][words[2]] = [int(w) for w in words[3:]]
    return steps


def check_mask(pf, b, shared):
    """Returns '' if end[] gives exactly the visibility of docs/DESIGN.md §1.2 for every (q, k)
    of the batch, else the first difference. The units of a row are found from the pair lengths
    alone: a unit's first scored token (its last prompt token) names its pair and side, hence its
    length; in a shared unit of prompt length P and chosen length C the rejected side is columns
    >= P + C and the hidden keys are columns P - 1 .. P + C - 1."""
    for row in range(b.B):
        unit_of, rej, hidden = [], [], []
        t, u = 0, 0
        while t < b.row_len[row]:
            first = next(x for x in range(t, b.row_len[row]) if b.slot[row * b.T + x] >= 0)
            i = b.pair_ids[b.slot[row * b.T + first]]
            P, C, R = pf.P[i], pf.C[i], pf.R[i]
            if shared:
                length = P + C + 1 + R
            else:
                length = P + C if b.side[row * b.T + first] == SIDE_CHOSEN else P + R
            for x in range(length):
                unit_of.append(u)
                rej.append(shared and x >= P + C)
                hidden.append(shared and P - 1 <= x < P + C)
            t += length
            u += 1
        if t != b.row_len[row]:
            return "row %d: units of %d tokens, row_len %d" % (row, t, b.row_len[row])
        for x in range(t, b.T):  # padding: each token a unit of its own
            unit_of.append(-1 - x); rej.append(False); hidden.append(False)
        for q in range(b.T):
            for k in range(b.T):
                want = k <= q and unit_of[k] == unit_of[q] and not (rej[q] and hidden[k])
                got = k <= q < b.end[row * b.T + k]
                if want != got:
                    return "row %d query %d key %d: end[] says %s, the rule %s" % (row, q, k, got, want)
    return ""


def self_test(args):
    fails = 0

    def report(ok, name, why=""):
        nonlocal fails
        if ok:
            print("PASS " + name)
        else:
            print("FAIL %s: %s" % (name, why))
            fails += 1

    # the reader: a damaged file is an error naming the file and byte
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        with open(args.data[0], "rb") as f:
            good = f.read()
        for name, data, at in (("bad_magic", b"X" + good[1:], "byte 0"),
                               ("truncated", good[:-1], "byte 24"),
                               ("header_hash", good[:100] + bytes([good[100] ^ 1]) + good[101:], "byte 248")):
            path = os.path.join(tmp, name + ".bin")
            with open(path, "wb") as f:
                f.write(data)
            try:
                PairFile(path)
                report(False, "reader_rejects_%s_%s" % (name, os.path.basename(args.data[0])),
                       "a damaged file was read without an error")
            except PairFileError as e:
                report(path in str(e) and at in str(e), "reader_rejects_%s_%s" % (name, os.path.basename(args.data[0])),
                       "message: %s" % e)

    cases = [(B, T, N, shared, packing)
             for (B, T, N) in args.shapes
             for shared in (True, False) for packing in (True, False)]
    for path in args.data:
        pf = PairFile(path)
        tag = os.path.basename(path)
        for (B, T, N, shared, packing) in cases:
            name = "%s_B%d_T%d_N%d_%s_%s" % (tag, B, T, N, "shared" if shared else "baseline",
                                            "packed" if packing else "unpacked")
            cmd = [args.dump, path, "--micro-rows", str(B), "--seq-len", str(T), "--batch-pairs", str(N),
                   "--steps", str(args.steps), "--prefix-sharing", "on" if shared else "off",
                   "--packing", "on" if packing else "off"]
            run = subprocess.run(cmd, capture_output=True, text=True)
            if run.returncode != 0:
                report(False, "packer_matches_cpp_" + name, "%s failed: %s" % (" ".join(cmd), run.stderr.strip()))
                continue
            want = parse_dump(run.stdout)
            why = ""
            mask_why = ""
            for s in range(args.steps):
                ids = step_pair_ids(len(pf), N, s)
                try:
                    got = pack_pairs(pf, ids, B, T, shared, packing)
                except ValueError as e:
                    why = "step %d: %s" % (s, e)
                    break
                if len(got) != len(want[s]["batches"]):
                    why = "step %d: %d micro-batches, C++ %d" % (s, len(got), len(want[s]["batches"]))
                    break
                real = sum(b.real_tokens() for b in got)
                if real != want[s]["real_tokens"] or len(got) * B * T - real != want[s]["padded_tokens"]:
                    why = "step %d: real/padded tokens %d/%d, C++ %d/%d" % (
                        s, real, len(got) * B * T - real, want[s]["real_tokens"], want[s]["padded_tokens"])
                    break
                for bi, (g, w) in enumerate(zip(got, want[s]["batches"])):
                    for field in ("pair_ids", "row_len") + FIELDS:
                        if getattr(g, field) != w[field]:
                            at = next(k for k, (x, y) in enumerate(zip(getattr(g, field), w[field])) if x != y) \
                                if len(getattr(g, field)) == len(w[field]) else "length"
                            why = "step %d batch %d: %s differs at %s" % (s, bi, field, at)
                            break
                    if why:
                        break
                    if not mask_why and s == 0 and bi == 0:
                        mask_why = check_mask(pf, g, shared)
                if why:
                    break
            report(not why, "packer_matches_cpp_" + name, why)
            report(not mask_why, "mask_is_the_rule_" + name, mask_why)

    # the mask check itself can fail: one chosen token made visible to the rejected side
    pf = PairFile(args.data[0])
    B, T, N = args.shapes[0]
    b = pack_pairs(pf, step_pair_ids(len(pf), N, 0), B, T, True, True)[0]
    k = next(t for t in range(B * T) if b.side[t] == SIDE_CHOSEN)
    b.end[k] = b.row_len[k // T]  # visible up to the end of its row: to the rejected side too
    report(check_mask(pf, b, True) != "", "mask_check_catches_a_wrong_end_" + os.path.basename(args.data[0]),
           "a wrong end[] passed")
    return fails


# ---------------------------------------------------------------------------------------------
# The PyTorch benchmark (torch imported here only)

PRESETS = {  # common/train_config.h model_preset: layers, heads, channels, context
    "tiny": (2, 4, 64, 64), "small": (4, 4, 128, 256), "d6": (6, 6, 384, 1024),
    "d12": (12, 12, 768, 1024), "d24": (24, 16, 1024, 1024), "d36": (36, 20, 1280, 1024),
    "d48": (48, 25, 1600, 1024),
}


def build_model(torch, L, NH, C, maxT, V, seed, attention, device="cuda"):
    """GPT-2 (tied LM head, tanh GELU), fp32 weights on `device`, GPT-2's initialisation.
    attention(q, k, v, mask) -> y, all [B,NH,T,hs]; `mask` is what the forward is given."""
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
            self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
            self.c_fc, self.c_fcproj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

        def forward(self, x, mask):  # x [B,T,C]
            B, T, _ = x.shape
            q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
            q, k, v = (a.view(B, T, NH, C // NH).transpose(1, 2) for a in (q, k, v))  # [B,NH,T,hs]
            y = attention(q, k, v, mask).transpose(1, 2).reshape(B, T, C)
            x = x + self.c_proj(y)
            return x + self.c_fcproj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(maxT, C)
            self.h = nn.ModuleList([Block() for _ in range(L)])
            self.ln_f = nn.LayerNorm(C)

        def forward(self, tokens, pos, mask, scored, targets):
            """-log p(target) of the scored positions: tokens, pos [B,T]; scored [M] flat indices."""
            x = self.wte(tokens) + self.wpe(pos)
            for block in self.h:
                x = block(x, mask)
            h = self.ln_f(x).view(-1, C).index_select(0, scored)  # [M,C]: the LM head sees scored tokens only
            logits = h @ self.wte.weight.t()                        # [M,V]
            return F.cross_entropy(logits.float(), targets, reduction="none")

    torch.manual_seed(seed)
    model = GPT().to(device)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif "ln_" in name:
                p.fill_(1.0)
            else:
                std = 0.02 / (2 * L) ** 0.5 if name.endswith(("c_proj.weight", "c_fcproj.weight")) else 0.02
                p.normal_(0.0, std)
    return model


def to_device(torch, b, trim, pin=True):
    """A Batch as host tensors (pinned for the copy to the GPU); trim: keep only the columns up to
    the longest row (padded rows of the unshared layout, as a plain implementation pads)."""
    T = max(b.row_len) if trim else b.T
    keep = [r * b.T + t for r in range(b.B) for t in range(T)] if trim else None

    def tensor(values, dtype):
        if keep is not None:
            values = [values[i] for i in keep]
        x = torch.tensor(values, dtype=dtype).view(b.B, T)
        return x.pin_memory() if pin else x

    host = {f: tensor(getattr(b, f), torch.int64 if f in ("tokens", "pos") else torch.int32) for f in FIELDS}
    flat_target = host["target"].view(-1)
    scored = torch.nonzero(flat_target >= 0).view(-1)
    side = host["side"].view(-1)[scored].long()
    host["scored"] = scored
    host["targets"] = flat_target[scored].long()
    host["bucket"] = host["slot"].view(-1)[scored].long() * 2 + (side - 1)  # slot*2 + chosen 0 / rejected 1
    host["pair_ids"] = torch.tensor(b.pair_ids, dtype=torch.int64)
    if pin:
        for key in ("scored", "targets", "bucket", "pair_ids"):
            host[key] = host[key].pin_memory()
    host["n_slots"] = len(b.pair_ids)
    host["real_tokens"] = b.real_tokens()
    host["padded_tokens"] = b.B * T
    return host


def masked_attention(torch, q, k, v, visible):
    """Attention by explicit masked softmax (the CPU checks): q, k, v [B,NH,T,hs], visible [B,T,T]."""
    scores = (q @ k.transpose(-2, -1)) / (q.shape[-1] ** 0.5)
    scores = scores.masked_fill(~visible.unsqueeze(1), float("-inf"))
    return torch.nn.functional.softmax(scores, dim=-1) @ v


def visible_from(torch, end, shared):
    """[B,T,T] bool: key k visible to query q; shared: k <= q < end[k] (docs/DESIGN.md §1.3),
    else causal (one unit per row, padding after it)."""
    B, T = end.shape
    q = torch.arange(T, device=end.device).view(1, T, 1)
    k = torch.arange(T, device=end.device).view(1, 1, T)
    if shared:
        return (k <= q) & (q < end.long().view(B, 1, T))
    return (k <= q).expand(B, T, T)


def run_variant(torch, args, pf, variant, L, NH, C, maxT, deadline):
    """Returns (timed sums, peak GB, status); stops after the step that passes `deadline`
    (time.time()), once at least one step is timed. --device cpu (a check of this code where
    torch has no CUDA, SDPA or FlexAttention) runs fp32 with masked-softmax attention instead."""
    F = torch.nn.functional
    shared = variant == "flex"
    cuda = args.device == "cuda"
    B, T, N = args.micro_rows, args.seq_len, args.batch_pairs
    # the layouts of every step, before any timing
    steps = []
    for s in range(args.steps):
        batches = pack_pairs(pf, step_pair_ids(len(pf), N, s), B, T, shared, packing=shared)
        steps.append([to_device(torch, b, trim=not shared, pin=cuda) for b in batches])

    if not cuda:
        def attention(q, k, v, visible):
            return masked_attention(torch, q, k, v, visible)
    elif shared:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
        flex = torch.compile(flex_attention, dynamic=False) if args.compile in ("flex", "model") else flex_attention
        end_now = torch.zeros(B, T, dtype=torch.int32, device="cuda")  # the current micro-batch's end[]

        def mask_mod(b, h, q, k):  # docs/DESIGN.md §1.3
            return (k <= q) & (q < end_now[b, k])

        def attention(q, k, v, mask):
            return flex(q, k, v, block_mask=mask)
    else:
        def attention(q, k, v, mask):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    model = build_model(torch, L, NH, C, maxT, pf.vocab_size, args.seed, attention, device=args.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.999), eps=1e-8,
                                  weight_decay=0.0, **({"fused": True} if cuda else {}))
    forward = torch.compile(model) if args.compile == "model" else model

    def mask_for(dev):  # flex: the block mask of this micro-batch's end[]; SDPA: none
        if not cuda:
            return visible_from(torch, dev["end"], shared)
        if not shared:
            return None
        end_now.copy_(dev["end"])
        return create_block_mask(mask_mod, B, None, T, T, device="cuda")

    def upload(host):
        return {k: (v.to(args.device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in host.items()}

    def neg_logps(dev):
        with (torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()):
            nll = forward(dev["tokens"], dev["pos"], mask_for(dev), dev["scored"], dev["targets"])
        sums = torch.zeros(2 * dev["n_slots"], device=args.device).index_add_(0, dev["bucket"], nll.float())
        return sums[0::2], sums[1::2]  # -logp chosen, -logp rejected per slot

    def synchronize():
        if cuda:
            torch.cuda.synchronize()

    # reference log-probs per dataset pair: the initial weights, forward only (not timed)
    ref_chosen = torch.zeros(len(pf), device=args.device)
    ref_rejected = torch.zeros(len(pf), device=args.device)
    with torch.no_grad():
        for host_batches in steps:
            for host in host_batches:
                dev = upload(host)
                nc, nr = neg_logps(dev)
                ref_chosen[dev["pair_ids"]] = -nc
                ref_rejected[dev["pair_ids"]] = -nr

    beta = 0.1
    synchronize()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    timed = {"steps": 0, "pairs": 0, "tokens": 0, "padded": 0, "seconds": 0.0}
    status = "ok"
    for s, host_batches in enumerate(steps):
        if deadline and time.time() > deadline and s >= 2:
            status = "cut: time limit after %d of %d steps" % (s, len(steps))
            break
        synchronize()
        t0 = time.time()
        pairs = sum(h["n_slots"] for h in host_batches)
        step_loss = 0.0
        for host in host_batches:
            dev = upload(host)
            nc, nr = neg_logps(dev)
            rc, rr = ref_chosen[dev["pair_ids"]], ref_rejected[dev["pair_ids"]]
            margin = beta * ((-nc - rc) - (-nr - rr))
            loss = -F.logsigmoid(margin).sum() / pairs  # the mean over the step's pairs
            loss.backward()
            step_loss += loss.detach()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        synchronize()
        dt = time.time() - t0
        if s > 0:  # the first step warms up (compilation, allocator)
            timed["steps"] += 1
            timed["pairs"] += pairs
            timed["tokens"] += sum(h["real_tokens"] for h in host_batches)
            timed["padded"] += sum(h["padded_tokens"] for h in host_batches)
            timed["seconds"] += dt
        print("%s %s step %d: loss %.6f, %.1f ms, %d pairs" % (args.model, variant, s + 1, float(step_loss),
                                                             1000 * dt, pairs), flush=True)
    return timed, (torch.cuda.max_memory_allocated() / 1e9 if cuda else 0.0), status


def load_hf_weights(torch, model, directory, L):
    """Our --export-hf model.safetensors (F32, Conv1D layout: common/INTEROP.md) into the model."""
    import json
    with open(os.path.join(directory, "model.safetensors"), "rb") as f:
        data = f.read()
    n = struct.unpack_from("<Q", data, 0)[0]
    header = json.loads(data[8:8 + n])

    def tensor(name):
        entry = header[name]
        if entry["dtype"] != "F32":
            raise ValueError("%s: tensor %s is %s; this check reads F32" % (directory, name, entry["dtype"]))
        lo, hi = entry["data_offsets"]
        return torch.frombuffer(bytearray(data[8 + n + lo:8 + n + hi]), dtype=torch.float32).view(entry["shape"])

    with torch.no_grad():
        model.wte.weight.copy_(tensor("wte.weight"))
        model.wpe.weight.copy_(tensor("wpe.weight"))
        model.ln_f.weight.copy_(tensor("ln_f.weight")); model.ln_f.bias.copy_(tensor("ln_f.bias"))
        for i, block in enumerate(model.h):
            ours = {"ln_1": block.ln_1, "ln_2": block.ln_2, "attn.c_attn": block.c_attn,
                    "attn.c_proj": block.c_proj, "mlp.c_fc": block.c_fc, "mlp.c_proj": block.c_fcproj}
            for name, module in ours.items():
                w = tensor("h.%d.%s.weight" % (i, name))
                module.weight.copy_(w if name.startswith("ln") else w.t())  # Conv1D: [in, out]
                module.bias.copy_(tensor("h.%d.%s.bias" % (i, name)))


def hf_tensors(model):
    """(name, tensor) in the Hugging Face GPT-2 layout of common/INTEROP.md (Conv1D: [in, out])."""
    out = [("wte.weight", model.wte.weight), ("wpe.weight", model.wpe.weight)]
    for i, block in enumerate(model.h):
        for name, module in (("ln_1", block.ln_1), ("attn.c_attn", block.c_attn), ("attn.c_proj", block.c_proj),
                             ("ln_2", block.ln_2), ("mlp.c_fc", block.c_fc), ("mlp.c_proj", block.c_fcproj)):
            weight = module.weight if name.startswith("ln") else module.weight.t()
            out += [("h.%d.%s.weight" % (i, name), weight), ("h.%d.%s.bias" % (i, name), module.bias)]
    return out + [("ln_f.weight", model.ln_f.weight), ("ln_f.bias", model.ln_f.bias)]


def write_hf(args):
    """The initial weights for the trainer runs of dev/bench_train.sh: GPT-2's initialisation drawn
    by torch (on the GPU if there is one: seconds, where the trainer's own random init of d48 takes
    tens of seconds of one CPU core), written as a Hugging Face GPT-2 directory (config.json,
    model.safetensors in F32) that --model reads."""
    import json
    import torch
    L, NH, C, maxT = PRESETS[args.model]
    V = PairFile(args.data[0]).vocab_size
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.no_grad():
        model = build_model(torch, L, NH, C, maxT, V, args.seed, None, device=device)
        tensors = hf_tensors(model)
        header, offset = {}, 0
        for name, t in tensors:
            header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + 4 * t.numel()]}
            offset += 4 * t.numel()
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
        os.makedirs(args.write_hf, exist_ok=True)
        path = os.path.join(args.write_hf, "model.safetensors")
        with open(path + ".tmp", "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for _, t in tensors:
                f.write(memoryview(t.float().contiguous().cpu().numpy()))
        os.replace(path + ".tmp", path)
    config = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_layer": L, "n_head": NH, "n_embd": C,
              "n_positions": maxT, "n_ctx": maxT, "vocab_size": V, "layer_norm_epsilon": 1e-5,
              "activation_function": "gelu_new", "tie_word_embeddings": True}
    with open(os.path.join(args.write_hf, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    print("bench_torch_dpo: %s (%d parameters, seed %d, drawn on the %s) -> %s"
          % (args.model, sum(t.numel() for _, t in tensors), args.seed, device, args.write_hf))


def score_check(args):
    """Dev check (torch on the CPU, any version with nn.functional.gelu(approximate=)): per-pair
    log-probs of --data under the Hugging Face export --hf, computed by this file's model on both
    of its layouts with explicit masked-softmax attention (the flex layout's mask built from
    end[]), against `train_dpo_cpu score` of the same model (--score TSV). fp32 throughout."""
    import json
    import torch
    F = torch.nn.functional
    with open(os.path.join(args.hf, "config.json")) as f:
        cfg = json.load(f)
    L, NH, C = cfg["n_layer"], cfg["n_head"], cfg["n_embd"]
    pf = PairFile(args.data[0])

    def attention(q, k, v, visible):
        return masked_attention(torch, q, k, v, visible)
    model = build_model(torch, L, NH, C, cfg["n_positions"], cfg["vocab_size"], 0, attention, device="cpu")
    load_hf_weights(torch, model, args.hf, L)
    want = {}
    for row in read_tsv(args.score):
        want[int(row["index"])] = (float(row["logp_chosen"]), float(row["logp_rejected"]))
    fails = 0
    for variant in ("sdpa", "flex"):
        shared = variant == "flex"
        worst = 0.0
        for b in pack_pairs(pf, list(range(len(pf))), args.micro_rows, args.seq_len, shared, packing=shared):
            host = to_device(torch, b, trim=not shared, pin=False)
            with torch.no_grad():
                nll = model(host["tokens"], host["pos"], visible_from(torch, host["end"], shared), host["scored"],
                            host["targets"])
            sums = torch.zeros(2 * host["n_slots"], dtype=torch.float64).index_add_(0, host["bucket"], nll.double())
            for slot, i in enumerate(host["pair_ids"].tolist()):
                for side in range(2):
                    got, ref = -sums[2 * slot + side].item(), want[i][side]
                    worst = max(worst, abs(got - ref) / max(1.0, abs(ref)))
        ok = worst <= args.tolerance
        print("%s score_check_%s: largest relative difference from train_dpo_cpu score %.2e (tolerance %.0e)"
              % ("PASS" if ok else "FAIL", variant, worst, args.tolerance))
        fails += not ok
    return fails


def read_tsv(path):
    with open(path) as f:
        lines = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    return [dict(zip(lines[0], row)) for row in lines[1:]]


TSV_COLUMNS = ("model", "variant", "layout", "compile", "status", "timed_steps", "pairs", "tokens",
               "padded_tokens", "seconds", "tokens_per_sec", "pairs_per_sec", "peak_mem_gb")


def benchmark(args):
    import torch
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_torch_dpo: no CUDA device visible to torch (--device cpu checks this script on the CPU)")
    L, NH, C, maxT = PRESETS[args.model]
    pf = PairFile(args.data[0])
    torch.backends.cuda.matmul.allow_tf32 = False
    out = open(args.out, "w") if args.out else sys.stdout
    print("\t".join(TSV_COLUMNS), file=out, flush=True)
    layouts = {"sdpa": "unshared, one causal row per response, padded to the longest row",
               "flex": "prefix-shared, packed (train_dpo's micro-batches), FlexAttention end[] mask"}
    if args.device == "cpu":
        layouts = {v: text + "; CPU check: fp32, masked-softmax attention" for v, text in layouts.items()}
    compiled = {"none": "eager", "flex": "flex_attention compiled", "model": "whole model compiled"}[args.compile]
    started = time.time()
    for n, variant in enumerate(args.variants):
        # the time limit split evenly: each variant may use what the ones before it left
        deadline = started + args.time_limit * (n + 1) / len(args.variants) if args.time_limit else 0
        try:
            timed, peak_gb, status = run_variant(torch, args, pf, variant, L, NH, C, maxT, deadline)
        except Exception as e:  # e.g. out of memory: reported in the table, the other variant still runs
            traceback.print_exc()
            timed = {"steps": 0, "pairs": 0, "tokens": 0, "padded": 0, "seconds": 0.0}
            peak_gb = 0.0
            status = "failed: " + ((str(e).splitlines() or [type(e).__name__])[0][:200])
        if args.device == "cuda":
            torch.cuda.empty_cache()  # the variant's model and optimizer are gone: give their memory back
        sec = timed["seconds"]
        row = (args.model, variant, layouts[variant],
               compiled if variant == "flex" or args.compile == "model" else "eager", status.replace("\t", " "),
               timed["steps"], timed["pairs"], timed["tokens"], timed["padded"], "%.4f" % sec,
               "%.1f" % (timed["tokens"] / sec if sec else 0), "%.3f" % (timed["pairs"] / sec if sec else 0),
               "%.3f" % peak_gb)
        print("\t".join(str(x) for x in row), file=out, flush=True)
    if out is not sys.stdout:
        out.close()


def shape_list(text):
    shapes = []
    for item in text.split(","):
        B, T, N = (int(x) for x in item.split("x"))
        shapes.append((B, T, N))
    return shapes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", help="pair file(s) from data/prepare_dpo")
    ap.add_argument("--model", default="d12", choices=sorted(PRESETS))
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--micro-rows", type=int, default=16)
    ap.add_argument("--batch-pairs", type=int, default=128)
    ap.add_argument("--steps", type=int, default=6, help="steps per variant; the first is not timed")
    ap.add_argument("--variants", default="sdpa,flex")
    ap.add_argument("--compile", default="flex", choices=("none", "flex", "model"))
    ap.add_argument("--time-limit", type=float, default=0,
                    help="seconds for all variants together (split evenly); a variant stops after the step that "
                         "passes its share, once one step is timed")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                    help="cpu: a check of this script (fp32, masked-softmax attention, nothing compiled)")
    ap.add_argument("--out", help="TSV file (default stdout)")
    ap.add_argument("--self-test", action="store_true", help="compare the Python layouts with dev/dump_batches")
    ap.add_argument("--score", help="dev check: per-pair log-probs from `train_dpo_cpu score` to compare with")
    ap.add_argument("--hf", help="dev check: the model (--export-hf directory) --score used")
    ap.add_argument("--tolerance", type=float, default=1e-4, help="dev check: relative tolerance")
    ap.add_argument("--write-hf", metavar="DIR", help="write --model's initial weights (seed --seed, the "
                    "vocabulary of --data) as a Hugging Face GPT-2 directory, and exit")
    ap.add_argument("--dump", default="dev/dump_batches")
    ap.add_argument("--shapes", type=shape_list, default=shape_list("4x64x6,3x128x9,2x512x5"),
                    help="self-test micro-batch shapes BxTxPAIRS, comma-separated")
    args = ap.parse_args()
    if not args.data:
        ap.error("--data is required")
    if args.self_test:
        args.steps = 2
        sys.exit(1 if self_test(args) else 0)
    if args.write_hf:
        write_hf(args)
        return
    if args.score:
        if not args.hf:
            ap.error("--score needs --hf")
        sys.exit(1 if score_check(args) else 0)
    if args.device == "cpu":
        args.compile = "none"
    args.variants = [v for v in args.variants.split(",") if v]
    for v in args.variants:
        if v not in ("sdpa", "flex"):
            ap.error("--variants: %s is not sdpa or flex" % v)
    if args.seq_len > PRESETS[args.model][3]:
        ap.error("--seq-len %d is longer than %s's context %d" % (args.seq_len, args.model, PRESETS[args.model][3]))
    try:
        benchmark(args)
    except (PairFileError, ValueError) as e:
        sys.exit("bench_torch_dpo: %s" % e)


if __name__ == "__main__":
    main()
