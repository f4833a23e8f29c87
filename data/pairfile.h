// The binary pair file: what data/prepare_dpo writes and the trainers read. A fixed 256-byte
// header, an index of one entry per pair, then every pair's tokens (prompt, chosen, rejected)
// back to back. All integers little-endian. The byte-by-byte layout is in data/README.md.
//
//   header  [256 bytes]          magic, version, sizes, tokenizer identity, flags, hashes
//   index   [n_pairs x 20 bytes] uint64 offset (in tokens), uint32 P, uint32 C, uint32 R
//   tokens  [n_tokens x width]   uint16 if vocab_size <= 65536, else uint32
//
// content_hash = FNV-1a 64 over the index and token bytes exactly as stored; it becomes
// PairSet::content_hash and keys the trainer's reference log-prob cache. header_hash = FNV-1a 64
// over header bytes [0, 248), so a damaged header is caught too.
#pragma once
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>
#include "common/atomic_file.h"
#include "common/hash.h"
#include "data/pairs.h"

static const char PAIRFILE_MAGIC[8] = {'D', 'P', 'O', 'P', 'A', 'I', 'R', 'S'};
static const uint32_t PAIRFILE_VERSION = 1;
static const uint32_t PAIRFILE_HEADER_BYTES = 256;
static const uint32_t PAIRFILE_INDEX_ENTRY_BYTES = 20;
static const uint32_t PAIRFILE_TOKENIZER_ID_BYTES = 64;

// flags
static const uint32_t PAIRFILE_FLAG_EOS = 1u;   // each response ends with the end-of-text token
static const uint32_t PAIRFILE_FLAG_BOS = 2u;   // each prompt starts with the end-of-text token
static const uint32_t PAIRFILE_KNOWN_FLAGS = PAIRFILE_FLAG_EOS | PAIRFILE_FLAG_BOS;

// byte offsets of the header fields
enum PairFileHeaderField : size_t {
    PF_MAGIC = 0, PF_VERSION = 8, PF_HEADER_BYTES = 12, PF_VOCAB = 16, PF_TOKEN_BYTES = 20,
    PF_N_PAIRS = 24, PF_N_TOKENS = 32, PF_FLAGS = 40, PF_INDEX_ENTRY_BYTES = 44,
    PF_CONTENT_HASH = 48, PF_TOKENIZER_ID = 56, PF_RESERVED = 120, PF_HEADER_HASH = 248,
};

static inline void put_le(uint8_t* dst, uint64_t v, int nbytes) {
    for (int i = 0; i < nbytes; i++) dst[i] = (uint8_t)(v >> (8 * i));
}
static inline uint64_t get_le(const uint8_t* src, int nbytes) {
    uint64_t v = 0;
    for (int i = 0; i < nbytes; i++) v |= (uint64_t)src[i] << (8 * i);
    return v;
}

// Largest vocabulary a pair file may declare: 2^24 ids (GPT-2 has 50257, the largest common
// tokenizers a few hundred thousand), the bound of the model loaders, so every size computed
// from it (padded vocabulary, the LM head's Vp x C) stays far from overflowing.
static const int PAIRFILE_MAX_VOCAB = 1 << 24;

static inline uint32_t pairfile_token_bytes(int vocab_size) { return vocab_size <= 65536 ? 2 : 4; }

// Checks that a PairSet is well formed (what the writer promises and the loader re-checks):
// at least one pair, offsets contiguous from 0, every length >= 1, ids in [0, vocab_size).
static inline bool check_pair_set(const PairSet& set, std::string* err) {
    char buf[256];
    if (set.vocab_size <= 0 || set.vocab_size > PAIRFILE_MAX_VOCAB) {
        *err = "vocab_size " + std::to_string(set.vocab_size) + " is outside [1, 2^24]";
        return false;
    }
    if (set.pairs.empty()) { *err = "the set holds no pairs"; return false; }
    if (set.tokenizer_id.size() >= PAIRFILE_TOKENIZER_ID_BYTES) {
        *err = "tokenizer identity \"" + set.tokenizer_id + "\" is longer than 63 bytes";
        return false;
    }
    int64_t expect = 0;
    for (size_t i = 0; i < set.pairs.size(); i++) {
        const PairRef& p = set.pairs[i];
        if (p.offset != expect || p.P < 1 || p.C < 1 || p.R < 1) {
            snprintf(buf, sizeof buf, "pair %zu: offset %lld P %d C %d R %d (expected offset %lld, "
                     "every length >= 1)", i, (long long)p.offset, p.P, p.C, p.R, (long long)expect);
            *err = buf;
            return false;
        }
        expect += (int64_t)p.P + p.C + p.R;
    }
    if ((size_t)expect != set.tokens.size()) {
        snprintf(buf, sizeof buf, "the pairs cover %lld tokens but the set holds %zu",
                 (long long)expect, set.tokens.size());
        *err = buf;
        return false;
    }
    for (size_t j = 0; j < set.tokens.size(); j++) {
        if (set.tokens[j] < 0 || set.tokens[j] >= set.vocab_size) {
            snprintf(buf, sizeof buf, "token %zu has id %d, outside [0, %d)", j, set.tokens[j],
                     set.vocab_size);
            *err = buf;
            return false;
        }
    }
    return true;
}

// Writes `set` to `path` atomically (common/atomic_file.h: path + ".tmp", fsync, rename). On any
// error nothing is left behind (the .tmp is removed, an existing `path` is untouched). hash_out (optional) receives the
// content hash written.
static inline bool write_pair_file(const std::string& path, const PairSet& set, uint32_t flags,
                                   std::string* err, uint64_t* hash_out = nullptr) {
    std::string why;
    if (!check_pair_set(set, &why)) { *err = path + ": refusing to write: " + why; return false; }
    if (flags & ~PAIRFILE_KNOWN_FLAGS) { *err = path + ": unknown flags"; return false; }
    const uint32_t width = pairfile_token_bytes(set.vocab_size);

    AtomicFile out;
    if (!out.open(path, err)) return false;
    FILE* f = out.file();

    // the header last (it holds the hash); first a placeholder, then the index and the tokens in
    // chunks, hashed as they are written
    uint8_t header[PAIRFILE_HEADER_BYTES] = {0};
    bool ok = fwrite(header, 1, sizeof header, f) == sizeof header;
    uint64_t hash = FNV1A64_OFFSET;
    std::vector<uint8_t> chunk;
    auto flush = [&]() {
        hash = fnv1a64(hash, chunk.data(), chunk.size());
        ok = ok && fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size();
        chunk.clear();
    };
    const size_t chunk_bytes = (size_t)1 << 20;
    uint8_t e[PAIRFILE_INDEX_ENTRY_BYTES];
    for (size_t i = 0; i < set.pairs.size(); i++) {
        put_le(e, (uint64_t)set.pairs[i].offset, 8);
        put_le(e + 8, (uint32_t)set.pairs[i].P, 4);
        put_le(e + 12, (uint32_t)set.pairs[i].C, 4);
        put_le(e + 16, (uint32_t)set.pairs[i].R, 4);
        chunk.insert(chunk.end(), e, e + sizeof e);
        if (chunk.size() >= chunk_bytes) flush();
    }
    for (size_t j = 0; j < set.tokens.size(); j++) {
        put_le(e, (uint32_t)set.tokens[j], width);
        chunk.insert(chunk.end(), e, e + width);
        if (chunk.size() >= chunk_bytes) flush();
    }
    flush();

    memcpy(header + PF_MAGIC, PAIRFILE_MAGIC, 8);
    put_le(header + PF_VERSION, PAIRFILE_VERSION, 4);
    put_le(header + PF_HEADER_BYTES, PAIRFILE_HEADER_BYTES, 4);
    put_le(header + PF_VOCAB, (uint32_t)set.vocab_size, 4);
    put_le(header + PF_TOKEN_BYTES, width, 4);
    put_le(header + PF_N_PAIRS, set.pairs.size(), 8);
    put_le(header + PF_N_TOKENS, set.tokens.size(), 8);
    put_le(header + PF_FLAGS, flags, 4);
    put_le(header + PF_INDEX_ENTRY_BYTES, PAIRFILE_INDEX_ENTRY_BYTES, 4);
    put_le(header + PF_CONTENT_HASH, hash, 8);
    memcpy(header + PF_TOKENIZER_ID, set.tokenizer_id.data(), set.tokenizer_id.size());
    put_le(header + PF_HEADER_HASH, fnv1a64(FNV1A64_OFFSET, header, PF_HEADER_HASH), 8);
    ok = ok && fseeko(f, 0, SEEK_SET) == 0 && fwrite(header, 1, sizeof header, f) == sizeof header;
    if (!out.commit(err, ok)) return false;
    if (hash_out) *hash_out = hash;
    return true;
}

// Loads and validates a pair file. On failure returns false and sets *err to the FIRST
// inconsistency found, as "PATH: byte OFFSET: what; what to do". Never reads past the end of the
// file and never allocates more than the file's length justifies. flags_out (optional) receives
// the PAIRFILE_FLAG_* bits.
static inline bool load_pair_file(const std::string& path, PairSet* out, std::string* err,
                                  uint32_t* flags_out = nullptr) {
    char buf[512];
    auto fail = [&](uint64_t at, const char* fmt, auto... args) {
        int n = snprintf(buf, sizeof buf, "%s: byte %llu: ", path.c_str(), (unsigned long long)at);
        if (n > 0 && (size_t)n < sizeof buf) snprintf(buf + n, sizeof buf - n, fmt, args...);
        *err = buf;
        return false;
    };
    FILE* f = fopen(path.c_str(), "rb");
    if (!f) { *err = path + ": cannot open: " + strerror(errno); return false; }
    struct Closer { FILE* f; ~Closer() { fclose(f); } } closer{f};
    if (fseeko(f, 0, SEEK_END) != 0) { *err = path + ": cannot seek: " + strerror(errno); return false; }
    const uint64_t file_bytes = (uint64_t)ftello(f);
    rewind(f);

    const char* remake = "remake it with data/prepare_dpo";
    uint8_t h[PAIRFILE_HEADER_BYTES] = {0};
    size_t got = fread(h, 1, (size_t)std::min<uint64_t>(file_bytes, sizeof h), f);
    if (got < 8 || memcmp(h, PAIRFILE_MAGIC, 8) != 0) {
        std::string shown;
        for (size_t i = 0; i < std::min<size_t>(got, 8); i++)
            shown += (h[i] >= 32 && h[i] < 127) ? std::string(1, (char)h[i]) : "\\x" + std::string(
                     {"0123456789abcdef"[h[i] >> 4], "0123456789abcdef"[h[i] & 15]});
        return fail(0, "not a dpo pair file (magic \"%s\", expected \"DPOPAIRS\"); make one with "
                    "data/prepare_dpo", shown.c_str());
    }
    if (got < sizeof h)
        return fail(got, "file ends inside the %u-byte header (file is %llu bytes); the file is "
                    "truncated, %s", PAIRFILE_HEADER_BYTES, (unsigned long long)file_bytes, remake);
    uint32_t version = (uint32_t)get_le(h + PF_VERSION, 4);
    if (version != PAIRFILE_VERSION)
        return fail(PF_VERSION, "format version %u, this build reads version %u; %s", version,
                    PAIRFILE_VERSION, remake);
    uint32_t header_bytes = (uint32_t)get_le(h + PF_HEADER_BYTES, 4);
    if (header_bytes != PAIRFILE_HEADER_BYTES)
        return fail(PF_HEADER_BYTES, "header size %u, version 1 has %u; the file is damaged, %s",
                    header_bytes, PAIRFILE_HEADER_BYTES, remake);
    uint64_t header_hash = get_le(h + PF_HEADER_HASH, 8);
    if (header_hash != fnv1a64(FNV1A64_OFFSET, h, PF_HEADER_HASH))
        return fail(PF_HEADER_HASH, "header checksum mismatch; the header is damaged, %s", remake);
    uint32_t vocab = (uint32_t)get_le(h + PF_VOCAB, 4);
    if (vocab == 0 || vocab > (uint32_t)PAIRFILE_MAX_VOCAB)
        return fail(PF_VOCAB, "vocab_size %u is outside [1, %d]; %s", vocab, PAIRFILE_MAX_VOCAB, remake);
    uint32_t width = (uint32_t)get_le(h + PF_TOKEN_BYTES, 4);
    if (width != pairfile_token_bytes((int)vocab))
        return fail(PF_TOKEN_BYTES, "token width %u bytes, but vocab_size %u needs %u; %s", width,
                    vocab, pairfile_token_bytes((int)vocab), remake);
    uint64_t n_pairs = get_le(h + PF_N_PAIRS, 8), n_tokens = get_le(h + PF_N_TOKENS, 8);
    uint32_t flags = (uint32_t)get_le(h + PF_FLAGS, 4);
    if (flags & ~PAIRFILE_KNOWN_FLAGS)
        return fail(PF_FLAGS, "unknown flags 0x%x; %s", flags, remake);
    uint32_t entry_bytes = (uint32_t)get_le(h + PF_INDEX_ENTRY_BYTES, 4);
    if (entry_bytes != PAIRFILE_INDEX_ENTRY_BYTES)
        return fail(PF_INDEX_ENTRY_BYTES, "index entry size %u, version 1 has %u; %s", entry_bytes,
                    PAIRFILE_INDEX_ENTRY_BYTES, remake);
    const uint8_t* id = h + PF_TOKENIZER_ID;
    size_t id_len = strnlen((const char*)id, PAIRFILE_TOKENIZER_ID_BYTES);
    if (id_len == PAIRFILE_TOKENIZER_ID_BYTES)
        return fail(PF_TOKENIZER_ID, "tokenizer identity is not NUL-terminated; %s", remake);
    for (size_t i = id_len; i < PAIRFILE_TOKENIZER_ID_BYTES; i++)
        if (id[i]) return fail(PF_TOKENIZER_ID + i, "tokenizer identity padding is not zero; %s", remake);
    for (size_t i = PF_RESERVED; i < PF_HEADER_HASH; i++)
        if (h[i]) return fail(i, "reserved header byte is not zero; %s", remake);

    // sizes against the file length, overflow-safe, before allocating anything
    const uint64_t body = file_bytes - PAIRFILE_HEADER_BYTES;
    if (n_pairs == 0) return fail(PF_N_PAIRS, "the file holds no pairs; %s", remake);
    if (n_pairs > body / entry_bytes || n_tokens > (body - n_pairs * entry_bytes) / width)
        return fail(file_bytes, "file ends here, but the header says %llu pairs and %llu tokens, "
                    "more than the file holds; the file is truncated, %s", (unsigned long long)n_pairs,
                    (unsigned long long)n_tokens, remake);
    const uint64_t end = PAIRFILE_HEADER_BYTES + n_pairs * entry_bytes + n_tokens * width;
    if (end != file_bytes)
        return fail(end, "the %llu pairs and %llu tokens end here, but the file has %llu bytes; "
                    "the file is damaged, %s", (unsigned long long)n_pairs,
                    (unsigned long long)n_tokens, (unsigned long long)file_bytes, remake);

    // index
    std::vector<uint8_t> index(n_pairs * entry_bytes);
    if (fread(index.data(), 1, index.size(), f) != index.size())
        return fail(PAIRFILE_HEADER_BYTES, "read error in the index: %s", strerror(errno));
    uint64_t hash = fnv1a64(FNV1A64_OFFSET, index.data(), index.size());
    PairSet set;
    set.vocab_size = (int)vocab;
    set.tokenizer_id.assign((const char*)id, id_len);
    set.pairs.resize(n_pairs);
    uint64_t expect = 0;
    for (uint64_t i = 0; i < n_pairs; i++) {
        const uint8_t* e = &index[i * entry_bytes];
        uint64_t at = PAIRFILE_HEADER_BYTES + i * entry_bytes;
        uint64_t offset = get_le(e, 8);
        uint32_t len[3] = {(uint32_t)get_le(e + 8, 4), (uint32_t)get_le(e + 12, 4), (uint32_t)get_le(e + 16, 4)};
        if (offset != expect)
            return fail(at, "pair %llu starts at token %llu, expected %llu (pairs are contiguous); "
                        "the index is damaged, %s", (unsigned long long)i, (unsigned long long)offset,
                        (unsigned long long)expect, remake);
        for (int k = 0; k < 3; k++) {
            if (len[k] < 1 || len[k] > (uint32_t)INT32_MAX || len[k] > n_tokens - expect)
                return fail(at + 8 + 4 * k, "pair %llu: %c = %u, must be >= 1 and fit in the %llu "
                            "tokens; the index is damaged, %s", (unsigned long long)i, "PCR"[k], len[k],
                            (unsigned long long)n_tokens, remake);
            expect += len[k];
        }
        set.pairs[i] = PairRef{(int64_t)offset, (int32_t)len[0], (int32_t)len[1], (int32_t)len[2]};
    }
    if (expect != n_tokens)
        return fail(PAIRFILE_HEADER_BYTES + (n_pairs - 1) * entry_bytes, "the pairs cover %llu tokens "
                    "but the header says %llu; the index is damaged, %s", (unsigned long long)expect,
                    (unsigned long long)n_tokens, remake);

    // tokens, in chunks: hashed as stored, ids checked against the vocabulary
    set.tokens.resize(n_tokens);
    const uint64_t tokens_at = PAIRFILE_HEADER_BYTES + n_pairs * entry_bytes;
    std::vector<uint8_t> chunk((size_t)1 << 20);
    for (uint64_t j0 = 0; j0 < n_tokens;) {
        uint64_t n = std::min<uint64_t>(n_tokens - j0, chunk.size() / width);
        if (fread(chunk.data(), 1, n * width, f) != n * width)
            return fail(tokens_at + j0 * width, "read error in the tokens: %s", strerror(errno));
        hash = fnv1a64(hash, chunk.data(), n * width);
        for (uint64_t j = 0; j < n; j++) {
            uint32_t t = (uint32_t)get_le(&chunk[j * width], width);
            if (t >= vocab)
                return fail(tokens_at + (j0 + j) * width, "token id %u >= vocab_size %u; the tokens "
                            "are damaged, %s", t, vocab, remake);
            set.tokens[j0 + j] = (int32_t)t;
        }
        j0 += n;
    }
    uint64_t stored = get_le(h + PF_CONTENT_HASH, 8);
    if (hash != stored)
        return fail(PF_CONTENT_HASH, "content hash mismatch (stored %016llx, computed %016llx over "
                    "the index and tokens); the file is damaged, %s", (unsigned long long)stored,
                    (unsigned long long)hash, remake);
    set.content_hash = hash;
    *out = std::move(set);
    if (flags_out) *flags_out = flags;
    return true;
}
