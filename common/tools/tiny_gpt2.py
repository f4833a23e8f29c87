#!/usr/bin/env python3
"""Independent writer and reader of GPT-2 checkpoints for common/test_model_io.cpp.

Python standard library only (no numpy, torch or safetensors), so it shares no code with the
C++ loaders it checks.

  tiny_gpt2.py fixtures OUTDIR   write a tiny random GPT-2 (L=2, C=32, NH=4, V=100, maxT=16) as
                                 Hugging Face directories (F32, F16, BF16; with and without the
                                 "transformer." prefix, lm_head and attention-mask buffers;
                                 sharded), llm.c .bin files (versions 3 and 5), files that must load
                                 with a warning and files that must fail; each loadable fixture
                                 comes with expected.f32: the values in the project's flat layout
  tiny_gpt2.py read DIR OUT.f32  read a Hugging Face GPT-2 directory and write its parameters in the
                                 project's flat layout (float32, padded vocabulary rows zero)

The project's layout (common/model_config.h) is llm.c's: 16 tensors back to back, wte [Vp, C],
wpe [maxT, C], then per-layer stacks, linear weights as [out, in]; Hugging Face's Conv1D weights
are [in, out].
"""
import json
import os
import random
import struct
import sys

L, C, NH, V, MAXT = 2, 32, 4, 100, 16
VP = (V + 127) // 128 * 128

# per-layer Hugging Face tensors: (suffix, shape as stored, is Conv1D weight)
def layer_specs(c):
    return [("ln_1.weight", [c], False), ("ln_1.bias", [c], False),
            ("attn.c_attn.weight", [c, 3 * c], True), ("attn.c_attn.bias", [3 * c], False),
            ("attn.c_proj.weight", [c, c], True), ("attn.c_proj.bias", [c], False),
            ("ln_2.weight", [c], False), ("ln_2.bias", [c], False),
            ("mlp.c_fc.weight", [c, 4 * c], True), ("mlp.c_fc.bias", [4 * c], False),
            ("mlp.c_proj.weight", [4 * c, c], True), ("mlp.c_proj.bias", [c], False)]

# our 16 tensors in order, each the per-layer Hugging Face suffix it stacks (None: not per layer)
OUR_ORDER = ["wte.weight", "wpe.weight", "ln_1.weight", "ln_1.bias", "attn.c_attn.weight",
             "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight",
             "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight",
             "mlp.c_proj.bias", "ln_f.weight", "ln_f.bias"]


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def transpose(values, rows, cols):
    """[rows, cols] row-major -> [cols, rows] row-major."""
    return [values[r * cols + k] for k in range(cols) for r in range(rows)]


# ---------------------------------------------------------------------------- dtypes

def f32_round(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def bf16_bits(x):
    b = struct.unpack("<I", struct.pack("<f", x))[0]
    if (b & 0x7F800000) == 0x7F800000:          # inf / nan: keep, force a quiet nan bit
        return (b >> 16) | (0x40 if b & 0x7FFFFF else 0)
    return (b + 0x7FFF + ((b >> 16) & 1)) >> 16  # round to nearest even


def encode(values, dtype):
    """-> (bytes, the values as the dtype represents them)."""
    n = len(values)
    if dtype == "F32":
        raw = struct.pack("<%df" % n, *values)
        return raw, list(struct.unpack("<%df" % n, raw))
    if dtype == "F16":
        raw = struct.pack("<%de" % n, *values)
        return raw, list(struct.unpack("<%de" % n, raw))
    if dtype == "BF16":
        bits = [bf16_bits(x) for x in values]
        raw = struct.pack("<%dH" % n, *bits)
        return raw, [struct.unpack("<f", struct.pack("<I", b << 16))[0] for b in bits]
    raise ValueError(dtype)


def decode(raw, dtype):
    if dtype == "F32":
        return list(struct.unpack("<%df" % (len(raw) // 4), raw))
    if dtype == "F16":
        return list(struct.unpack("<%de" % (len(raw) // 2), raw))
    if dtype == "BF16":
        bits = struct.unpack("<%dH" % (len(raw) // 2), raw)
        return [struct.unpack("<f", struct.pack("<I", b << 16))[0] for b in bits]
    raise ValueError("dtype %s not supported by this reader" % dtype)


# values at the edges of each dtype (subnormals, signed zero, the largest finite)
SPECIALS = {"F32": [1e-45, -0.0, 3.0e38, 1.17e-38, -2.5e-40],
            "F16": [5.960464477539063e-08, -0.0, 65504.0, 3.0e-05, -6.1e-05],
            "BF16": [1e-39, -0.0, -3.0e38, 1.2e-38, 7.0e-41]}


# ---------------------------------------------------------------------------- the model

def random_model(rng, dtype):
    """-> (ordered dict name -> (shape, values as the dtype stores them, raw bytes), flat our layout)."""
    tensors = {}

    def add(name, shape, specials=False):
        vals = [rng.uniform(-1.0, 1.0) for _ in range(numel(shape))]
        if specials:
            vals[:len(SPECIALS[dtype])] = SPECIALS[dtype]
        raw, stored = encode(vals, dtype)
        tensors[name] = [shape, stored, raw]

    add("wte.weight", [V, C])
    add("wpe.weight", [MAXT, C])
    for layer in range(L):
        for suffix, shape, _ in layer_specs(C):
            add("h.%d.%s" % (layer, suffix), shape, specials=(layer == 1 and suffix == "attn.c_attn.weight"))
    add("ln_f.weight", [C])
    add("ln_f.bias", [C], specials=True)
    return tensors


def our_layout(tensors, c, v, vp, layers):
    """The project's flat parameter list from Hugging Face tensors (names without prefix)."""
    conv = {suffix: is_conv for suffix, _, is_conv in layer_specs(c)}
    flat = []
    for name in OUR_ORDER:
        if name in ("wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias"):
            flat += tensors[name][1]
            if name == "wte.weight":
                flat += [0.0] * ((vp - v) * c)
            continue
        for layer in range(layers):
            shape, vals = tensors["h.%d.%s" % (layer, name)][:2]
            flat += transpose(vals, shape[0], shape[1]) if conv[name] else vals
    return flat


def config_json(**overrides):
    cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "activation_function": "gelu_new",
           "n_embd": C, "n_head": NH, "n_layer": L, "n_positions": MAXT, "n_ctx": MAXT, "vocab_size": V,
           "layer_norm_epsilon": 1e-05, "bos_token_id": 50256, "eos_token_id": 50256}
    cfg.update(overrides)
    return {k: v for k, v in cfg.items() if v is not None}


def safetensors_bytes(entries, metadata=None, edit_header=None):
    """entries: list of (name, dtype, shape, raw bytes), written back to back in that order."""
    header, offset = {}, 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    if edit_header:
        edit_header(header)
    text = json.dumps(header).encode()
    text += b" " * (-(8 + len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(raw for _, _, _, raw in entries)


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)


def write_flat(path, values):
    write_file(path, struct.pack("<%df" % len(values), *values))


def hf_fixture(outdir, name, tensors, dtype, prefix=False, lm_head=None, buffers=False, metadata=None,
               config=None, edit_entries=None, edit_header=None, edit_bytes=None, expected=True):
    """Writes OUTDIR/name/{config.json, model.safetensors[, expected.f32]}."""
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    p = "transformer." if prefix else ""
    entries = []
    for tname, (shape, _, raw) in tensors.items():
        entries.append((p + tname, dtype, shape, raw))
        if buffers and tname.endswith("attn.c_attn.weight"):
            h = tname[:-len("c_attn.weight")]
            mask = [1.0 if k <= q else 0.0 for q in range(MAXT) for k in range(MAXT)]
            entries.append((p + h + "bias", dtype, [1, 1, MAXT, MAXT], encode(mask, dtype)[0]))
            entries.append((p + h + "masked_bias", dtype, [], encode([-1e4], dtype)[0]))
    if lm_head is not None:
        entries.append(("lm_head.weight", dtype, [V, C], lm_head))
    if edit_entries:
        entries = edit_entries(entries)
    data = safetensors_bytes(entries, metadata, edit_header)
    if edit_bytes:
        data = edit_bytes(data)
    write_file(os.path.join(d, "model.safetensors"), data)
    write_file(os.path.join(d, "config.json"), json.dumps(config or config_json(), indent=2).encode())
    if expected:
        write_flat(os.path.join(d, "expected.f32"), our_layout(tensors, C, V, VP, L))
    return d


def llmc_fixture(path, flat, version, header_edit=None, cut=0):
    """llm.c checkpoint: 256 int32 header, then the flat parameters (fp32 or bf16)."""
    header = [0] * 256
    header[:8] = [20240326, version, MAXT, V, L, NH, C, VP]
    if header_edit:
        header_edit(header)
    if version == 5:
        raw, stored = encode(flat, "BF16")
    else:
        raw, stored = encode(flat, "F32")
    data = struct.pack("<256i", *header) + raw
    write_file(path, data[:len(data) - cut])
    return stored


def fixtures(outdir):
    rng = random.Random(int.from_bytes(os.urandom(8), "little"))  # fresh values every run
    os.makedirs(outdir, exist_ok=True)
    f32 = random_model(rng, "F32")
    f16 = random_model(rng, "F16")
    bf16 = random_model(rng, "BF16")
    pt = {"format": "pt"}

    # loadable, every variation of naming and extras
    hf_fixture(outdir, "f32_prefix_lmhead_buffers", f32, "F32", prefix=True, lm_head=f32["wte.weight"][2],
               buffers=True, metadata=pt)
    hf_fixture(outdir, "f16_plain", f16, "F16", config=config_json(n_positions=None))  # n_ctx only
    hf_fixture(outdir, "bf16_prefix_buffers_lmhead", bf16, "BF16", prefix=True, buffers=True,
               lm_head=bf16["wte.weight"][2], metadata=pt)
    # sharded: first half of the tensors in one file, the rest in another, plus the index
    d = os.path.join(outdir, "f32_sharded")
    os.makedirs(d, exist_ok=True)
    names = list(f32.keys())
    weight_map = {}
    for i, part in enumerate([names[:len(names) // 2], names[len(names) // 2:]]):
        shard = "model-%05d-of-00002.safetensors" % (i + 1)
        write_file(os.path.join(d, shard), safetensors_bytes([(n, "F32", f32[n][0], f32[n][2]) for n in part], pt))
        weight_map.update({n: shard for n in part})
    write_file(os.path.join(d, "model.safetensors.index.json"),
               json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}).encode())
    write_file(os.path.join(d, "config.json"), json.dumps(config_json()).encode())
    write_flat(os.path.join(d, "expected.f32"), our_layout(f32, C, V, VP, L))

    # loadable with a warning
    nan = {k: [v[0], list(v[1]), v[2]] for k, v in f32.items()}
    vals = nan["h.1.ln_2.weight"][1]
    vals[3] = float("nan")
    nan["h.1.ln_2.weight"][2] = encode(vals, "F32")[0]
    hf_fixture(outdir, "warn_nan", nan, "F32", expected=False)
    inf = {k: [v[0], list(v[1]), v[2]] for k, v in f16.items()}
    vals = inf["wpe.weight"][1]
    vals[5] = float("inf")
    inf["wpe.weight"][2] = encode(vals, "F16")[0]
    hf_fixture(outdir, "warn_inf", inf, "F16", expected=False)
    other = encode([x + 0.5 for x in f32["wte.weight"][1]], "F32")[0]
    hf_fixture(outdir, "warn_untied_lm_head", f32, "F32", lm_head=other)
    hf_fixture(outdir, "warn_gelu", f32, "F32", config=config_json(activation_function="gelu"))

    # must fail
    def set_offsets(name, begin_end):
        def edit(header):
            header[name]["data_offsets"] = begin_end(header[name]["data_offsets"])
        return edit

    def set_field(name, field, value):
        def edit(header):
            header[name][field] = value
        return edit

    hf_fixture(outdir, "bad_truncated", f32, "F32", edit_bytes=lambda b: b[:-100], expected=False)
    hf_fixture(outdir, "bad_header_length", f32, "F32", expected=False,
               edit_bytes=lambda b: struct.pack("<Q", 1 << 40) + b[8:])
    broken = b'{"wte.weight": {"dtype": "F32",,'  # a doubled comma, same length as what it replaces
    hf_fixture(outdir, "bad_json", f32, "F32", expected=False,
               edit_bytes=lambda b: b[:8] + broken + b[8 + len(broken):])
    hf_fixture(outdir, "bad_overlap", f32, "F32", expected=False,  # ln_1.bias starts inside ln_1.weight
               edit_header=set_offsets("h.0.ln_1.bias", lambda o: [o[0] - 8, o[1] - 8]))
    hf_fixture(outdir, "bad_out_of_range", f32, "F32", expected=False,
               edit_header=set_offsets("ln_f.bias", lambda o: [o[0] + 4096, o[1] + 4096]))
    hf_fixture(outdir, "bad_byte_count", f32, "F32", expected=False,
               edit_header=set_offsets("ln_f.weight", lambda o: [o[0], o[1] - 4]))
    hf_fixture(outdir, "bad_shape", f32, "F32", expected=False,  # [out, in] instead of Conv1D's [in, out]
               edit_header=set_field("h.1.attn.c_attn.weight", "shape", [3 * C, C]))
    hf_fixture(outdir, "bad_dtype_unknown", f32, "F32", expected=False,
               edit_header=set_field("h.0.ln_2.bias", "dtype", "Q4_K"))
    f64 = lambda entries: [(n, "F64", s, struct.pack("<%dd" % C, *f32[n][1])) if n == "ln_f.bias"
                           else (n, dt, s, raw) for n, dt, s, raw in entries]
    hf_fixture(outdir, "bad_dtype_f64", f32, "F32", expected=False, edit_entries=f64)
    hf_fixture(outdir, "bad_missing", f32, "F32", expected=False,
               edit_entries=lambda e: [x for x in e if x[0] != "h.1.mlp.c_fc.bias"])
    hf_fixture(outdir, "bad_unexpected", f32, "F32", expected=False,
               edit_entries=lambda e: e + [("h.0.attn.rotary_emb.inv_freq", "F32", [4], b"\0" * 16)])
    hf_fixture(outdir, "bad_config_missing", f32, "F32", expected=False, config=config_json(n_embd=None))
    hf_fixture(outdir, "bad_config_layers", f32, "F32", expected=False, config=config_json(n_layer=100000))
    hf_fixture(outdir, "bad_config_model_type", f32, "F32", expected=False, config=config_json(model_type="llama"))
    hf_fixture(outdir, "bad_config_positions", f32, "F32", expected=False,
               config=config_json(n_positions=2 * MAXT, n_ctx=2 * MAXT))

    # llm.c
    flat = our_layout(f32, C, V, VP, L)
    write_flat(os.path.join(outdir, "llmc_v3.expected.f32"), llmc_fixture(os.path.join(outdir, "llmc_v3.bin"), flat, 3))
    write_flat(os.path.join(outdir, "llmc_v5.expected.f32"), llmc_fixture(os.path.join(outdir, "llmc_v5.bin"), flat, 5))
    llmc_fixture(os.path.join(outdir, "llmc_bad_magic.bin"), flat, 3, header_edit=lambda h: h.__setitem__(0, 20240520))
    llmc_fixture(os.path.join(outdir, "llmc_bad_version.bin"), flat, 3, header_edit=lambda h: h.__setitem__(1, 4))
    llmc_fixture(os.path.join(outdir, "llmc_truncated.bin"), flat, 5, cut=6)
    write_file(os.path.join(outdir, "not_a_model.bin"), b"hello, this is not a checkpoint\n" * 64)


# ---------------------------------------------------------------------------- reading

def read_hf(directory, out_path):
    cfg = json.load(open(os.path.join(directory, "config.json")))
    c, v, layers = cfg["n_embd"], cfg["vocab_size"], cfg["n_layer"]
    vp = (v + 127) // 128 * 128
    data = open(os.path.join(directory, "model.safetensors"), "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        b, e = entry["data_offsets"]
        vals = decode(data[8 + n + b:8 + n + e], entry["dtype"])
        assert len(vals) == numel(entry["shape"]), name
        short = name[len("transformer."):] if name.startswith("transformer.") else name
        tensors[short] = [entry["shape"], vals]
    write_flat(out_path, our_layout(tensors, c, v, vp, layers))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "fixtures":
        fixtures(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "read":
        read_hf(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
