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
. dev/test_lib.sh  # report
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

# the PyTorch side's control flow with a stand-in torch (no numbers: every op returns a dummy and
# every event pair times 1 ms): --check and the whole benchmark run through, write a TSV the report
# reads (flex on every shared case, an SDPA backend on every unshared one), and a budget cuts it
fake=$tmp/faketorch/torch
mkdir -p "$fake/nn/attention" "$fake/_dynamo"
cat > "$fake/__init__.py" <<'PY'
__version__ = "0.0-standin"
class Dummy:
    def __getattr__(self, name): return self
    def __call__(self, *a, **k): return self
    def __getitem__(self, i): return self
    def __iter__(self): return iter(())
    def __enter__(self): return self
    def __exit__(self, *a): return False
    def __and__(self, o): return self
    def __invert__(self): return self
    def __neg__(self): return self
    __le__ = __lt__ = __ge__ = __gt__ = __rand__ = __matmul__ = __truediv__ = __sub__ = __and__
    def item(self): return 0.0
    def __float__(self): return 1.0
    def elapsed_time(self, other): return 1.0
dummy = Dummy()
int32 = int64 = bfloat16 = float32 = float64 = dummy
def _dummy(*a, **k): return dummy
tensor = randn = arange = softmax = compile = manual_seed = set_float32_matmul_precision = _dummy
class cuda:
    is_available = staticmethod(lambda: True)
    synchronize = empty_cache = staticmethod(_dummy)
    Event = staticmethod(_dummy)
class autograd:
    grad = staticmethod(lambda out, inputs, *a, **k: tuple(dummy for _ in inputs))
from . import nn, _dynamo
PY
cat > "$fake/_dynamo/__init__.py" <<'PY'
class config:
    cache_size_limit = 8
PY
cat > "$fake/nn/__init__.py" <<'PY'
from . import attention, functional
PY
cat > "$fake/nn/functional.py" <<'PY'
from torch import _dummy as scaled_dot_product_attention
PY
cat > "$fake/nn/attention/__init__.py" <<'PY'
import enum
from torch import _dummy as sdpa_kernel
class SDPBackend(enum.Enum):
    FLASH_ATTENTION = 1
    CUDNN_ATTENTION = 2
PY
cat > "$fake/nn/attention/flex_attention.py" <<'PY'
from torch import dummy, _dummy as flex_attention
def create_block_mask(mask_mod, B, H, Q, K, device=None):
    mask_mod(dummy, dummy, dummy, dummy)
    return dummy
PY
cat > "$fake/nn/attention/varlen.py" <<'PY'
from torch import dummy
def varlen_attn(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, is_causal=False):
    return dummy
PY
PYTHONPATH=$tmp/faketorch python3 dev/cuda/attention_torch.py --check --masks "$tmp/bench/masks" --tsv "$tmp/torch.tsv" \
    > "$tmp/torch.txt" 2>&1
rc=$?
flex=$(grep -c "^flex	.*	shared	.*	1.000000	" "$tmp/torch.tsv" 2>/dev/null)
sdpa=$(grep -cE "^sdpa-(flash|varlen)	.*	unshared	.*	1.000000	" "$tmp/torch.tsv" 2>/dev/null)
report $([ $rc = 0 ] && [ "$flex" = 138 ] && [ "$sdpa" = 138 ] && grep -q "^PASS flex mask_mod" "$tmp/torch.txt" &&
         echo 0 || echo 1) attention_torch_runs_through_with_a_standin_torch \
    "exit $rc, $flex flex and $sdpa SDPA lines (expected 138 each): $(tail -3 "$tmp/torch.txt")"
python3 dev/cuda/attention_torch.py --report --masks "$tmp/bench/masks" --torch "$tmp/torch.tsv" > "$tmp/report.md" 2>&1
report $(grep -qE '^\| hh-T1024 \| 64 \| — \|  \| — \| — \([0-9.]+x\) \| 1\.000 \| — \| 1\.000 sdpa-varlen \|' "$tmp/report.md" &&
         echo 0 || echo 1) attention_torch_report_reads_its_tsv "$(grep -m1 '^| hh-T1024 | 64' "$tmp/report.md")"
PYTHONPATH=$tmp/faketorch python3 dev/cuda/attention_torch.py --masks "$tmp/bench/masks" --tsv "$tmp/cut.tsv" \
    --budget 1e-9 > "$tmp/cut.txt" 2>&1
report $(grep -q "^# torch: budget of 0 s reached: 69 of 69" "$tmp/cut.tsv" && echo 0 || echo 1) \
    attention_torch_budget_cuts "$(tail -2 "$tmp/cut.tsv")"

# dev/cuda/attention_bench.sh's GPU path, with stand-ins for nvidia-smi, the nvcc build (the CPU
# build's plan and mask files, and one made-up time of ours: 0.5 ms) and torch (1 ms everywhere):
# the report must join them (ours 2x faster than flex and than SDPA on that row) and say so
mkdir -p "$tmp/bin"
printf '#!/bin/sh\necho "GPU 0: stand-in (UUID: none)"\n' > "$tmp/bin/nvidia-smi"
cat > "$tmp/ours.sh" <<'SH'
#!/usr/bin/env bash
tsv=""; args=()
while [ $# -gt 0 ]; do case $1 in --tsv) tsv=$2; shift 2 ;; --budget) shift 2 ;; *) args+=("$1"); shift ;; esac; done
dev/cuda/attention "${args[@]}" --plan-only || exit 1
printf 'impl\tdetail\tgroup\tlayout\ths\tNH\tpass\tms\ttflops\tvisible_pairs\tnote\n' > "$tsv"
printf 'ours\tstand-in\thh-T1024\tshared\t64\t12\tfwd\t0.5\t7.5\t1\tok\n' >> "$tsv"
SH
chmod +x "$tmp/bin/nvidia-smi" "$tmp/ours.sh"
PATH=$tmp/bin:$PATH PYTHONPATH=$tmp/faketorch ATTN_BENCH_BIN=$tmp/ours.sh ATTN_BENCH_TOKENS=8192 \
    dev/cuda/attention_bench.sh "$tmp/gpu" > "$tmp/gpu.txt" 2>&1
rc=$?
md=$tmp/gpu/attention_bench.md
grep -qE '^\| hh-T1024 \| 64 \| 0\.500 \| 7\.5 \| — \| — \([0-9.]+x\) \| 1\.000 \| 2\.00x \| 1\.000 sdpa-varlen \| 2\.00x \(' "$md" &&
  grep -q "^- hh-T1024 hs=64 fwd: faster than FlexAttention (0.500 vs 1.000 ms)" "$md" &&
  grep -q "torch 0.0-standin; attention_torch.py --check .*: 2 passed, 0 failed" "$md"
report $([ $? = 0 ] && [ $rc = 0 ] && echo 0 || echo 1) attention_bench_gpu_path_with_standins \
    "exit $rc: $(tail -3 "$tmp/gpu.txt") / $(grep -m1 '^| hh-T1024 | 64' "$md" 2>/dev/null)"

# a mask file one int short is refused, naming the file and the sizes
f=$(ls "$tmp"/bench/masks/*.end.i32 | head -1)
head -c -4 "$f" > "$tmp/short" && mv "$tmp/short" "$f"
python3 dev/cuda/attention_torch.py --self-test --masks "$tmp/bench/masks" > "$tmp/bad.txt" 2>&1
rc=$?
report $([ $rc != 0 ] && grep -q "$(basename "$f"): .* bytes, expected B\*T\*4" "$tmp/bad.txt" && echo 0 || echo 1) \
    attention_torch_refuses_short_mask_file "exit $rc: $(tail -2 "$tmp/bad.txt")"
[ $fails = 0 ]
