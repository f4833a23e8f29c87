# Computes GPT2Tokenizer::identity() of a vocabulary independently of the C++ code, to pin the
# value test_tokenizer checks: FNV-1a 64 over every token's raw bytes (uint32 little-endian length,
# then the bytes; in id order), then every merge's left and right token the same way (file order).
#   python3 tokenizer/testdata/identity.py tokenizer/gpt2   ->  gpt2-bpe-bb6ebd04c9d85e3d
import json
import struct
import sys

d = sys.argv[1] if len(sys.argv) > 1 else "tokenizer/gpt2"
# GPT-2's byte-to-unicode alphabet: printable Latin-1 bytes as themselves, the rest from U+0100 on.
shown_as_itself = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
to_byte = {chr(b): b for b in shown_as_itself}
others = [b for b in range(256) if b not in shown_as_itself]
to_byte.update({chr(256 + k): b for k, b in enumerate(others)})


def raw(token):
    return bytes(to_byte[ch] for ch in token)


h = 0xCBF29CE484222325


def update(data):
    global h
    for x in data:
        h = ((h ^ x) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF


def update_token(token):
    r = raw(token)
    update(struct.pack("<I", len(r)))
    update(r)


vocab = json.load(open(f"{d}/encoder.json", encoding="utf-8"))
for token, _ in sorted(vocab.items(), key=lambda kv: kv[1]):
    update_token(token)
for line in open(f"{d}/vocab.bpe", encoding="utf-8").read().split("\n")[1:]:
    if line:
        left, right = line.split(" ")
        update_token(left)
        update_token(right)
print("gpt2-bpe-%016x" % h)
