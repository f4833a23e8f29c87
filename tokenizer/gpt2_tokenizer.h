// GPT-2's byte-level BPE tokenizer, header-only: loads OpenAI's encoder.json + vocab.bpe (or
// Hugging Face's vocab.json + merges.txt) and encodes UTF-8 text exactly like tiktoken's "gpt2"
// encoding with encode_ordinary ("<|endoftext|>" in the text is ordinary text), and decodes ids.
//
// Encoding has two stages, as in tiktoken:
//  1. pre-tokenisation: the text is cut into pieces by GPT-2's regex
//       's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//     implemented by hand over code point classes (tokenizer/unicode_tables.h, Unicode 16.0);
//  2. byte-pair merging inside each piece: a piece that is itself a token becomes that token;
//     otherwise start from single bytes and repeatedly merge the adjacent pair whose
//     concatenation is the earliest merge in vocab.bpe (leftmost on ties).
// The token strings of encoder.json are written in GPT-2's byte-to-unicode alphabet (each byte is
// shown as a printable code point); they are turned back into raw bytes on load.
// encode/decode are const and keep no cache, so one loaded tokenizer may serve many threads.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <unistd.h>
#include <vector>

#include "common/hash.h"
#include "tokenizer/unicode_tables.h"

// ----------------------------------------------------------------------------------------------
// UTF-8 and code point classes

// Class of one code point: UC_LETTER, UC_NUMBER, UC_SPACE or UC_OTHER (binary search in the table).
inline uint8_t unicode_class(uint32_t cp) {
    size_t lo = 0, hi = sizeof(kUnicodeClassRanges) / sizeof(kUnicodeClassRanges[0]);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (kUnicodeClassRanges[mid].last < cp) lo = mid + 1;
        else hi = mid;
    }
    size_t count = sizeof(kUnicodeClassRanges) / sizeof(kUnicodeClassRanges[0]);
    if (lo < count && kUnicodeClassRanges[lo].first <= cp) return kUnicodeClassRanges[lo].cls;
    return UC_OTHER;
}

// Class of each ASCII character, looked up once from the table.
inline const uint8_t* ascii_classes() {
    static const std::vector<uint8_t> table = [] {
        std::vector<uint8_t> t(128);
        for (uint32_t c = 0; c < 128; c++) t[c] = unicode_class(c);
        return t;
    }();
    return table.data();
}

// Decodes the code point starting at s[i] (i < n). Returns its length in bytes (1-4) and sets
// *cp, or returns 0 and sets *why if the bytes there are not valid UTF-8.
inline int utf8_decode(const unsigned char* s, size_t n, size_t i, uint32_t* cp, const char** why) {
    unsigned char b = s[i];
    if (b < 0x80) { *cp = b; return 1; }
    if (b < 0xC0) { *why = "continuation byte without a lead byte"; return 0; }
    if (b < 0xC2) { *why = "overlong 2-byte sequence (lead byte 0xC0 or 0xC1)"; return 0; }
    if (b > 0xF4) { *why = "byte 0xF5..0xFF never occurs in UTF-8"; return 0; }
    int len = b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    uint32_t v = b & (0x7F >> len);
    for (int k = 1; k < len; k++) {
        if (i + k >= n || (s[i + k] & 0xC0) != 0x80) { *why = "truncated multi-byte sequence"; return 0; }
        v = (v << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && v < 0x10000)) { *why = "overlong encoding"; return 0; }
    if (v >= 0xD800 && v <= 0xDFFF) { *why = "UTF-16 surrogate (U+D800..U+DFFF)"; return 0; }
    if (v > 0x10FFFF) { *why = "code point above U+10FFFF"; return 0; }
    *cp = v;
    return len;
}

// Appends code point cp to out as UTF-8.
inline void utf8_append(std::string* out, uint32_t cp) {
    if (cp < 0x80) { out->push_back((char)cp); return; }
    if (cp < 0x800) {
        out->push_back((char)(0xC0 | (cp >> 6)));
    } else if (cp < 0x10000) {
        out->push_back((char)(0xE0 | (cp >> 12)));
        out->push_back((char)(0x80 | ((cp >> 6) & 0x3F)));
    } else {
        out->push_back((char)(0xF0 | (cp >> 18)));
        out->push_back((char)(0x80 | ((cp >> 12) & 0x3F)));
        out->push_back((char)(0x80 | ((cp >> 6) & 0x3F)));
    }
    out->push_back((char)(0x80 | (cp & 0x3F)));
}

// GPT-2's byte-to-unicode alphabet: bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF are shown as the
// code point of the same value; the other 68 bytes, in increasing order, as U+0100, U+0101, ...
// Returns, for each code point below 324, the byte it stands for, or -1.
inline std::vector<int> gpt2_unicode_to_byte() {
    std::vector<int> to_byte(324, -1);
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        bool shown_as_itself = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        to_byte[shown_as_itself ? b : 256 + extra++] = b;
    }
    return to_byte;
}

// Reads a whole file into *out; false if it cannot be opened or read.
inline bool read_whole_file(const std::string& path, std::string* out) {
    FILE* f = fopen(path.c_str(), "rb");
    if (!f) return false;
    out->clear();
    char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof(buf), f)) > 0) out->append(buf, got);
    bool ok = !ferror(f);
    fclose(f);
    return ok;
}

// The vocabulary directory to use when the user names none: $DPO_TOKENIZER_DIR if set, else the
// first of tokenizer/gpt2 (from the current directory, i.e. the repo root) and, beside the running
// program, gpt2, tokenizer/gpt2 and ../tokenizer/gpt2 that holds a vocabulary; else tokenizer/gpt2.
inline std::string default_tokenizer_dir() {
    const char* env = getenv("DPO_TOKENIZER_DIR");
    if (env && *env) return env;
    std::vector<std::string> candidates = {"tokenizer/gpt2"};
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len > 0) {
        std::string exe_dir(exe, len);
        exe_dir = exe_dir.substr(0, exe_dir.rfind('/') + 1);
        for (const char* rel : {"gpt2", "tokenizer/gpt2", "../tokenizer/gpt2"}) candidates.push_back(exe_dir + rel);
    }
    for (const std::string& dir : candidates) {
        if (access((dir + "/encoder.json").c_str(), R_OK) == 0 || access((dir + "/vocab.json").c_str(), R_OK) == 0) return dir;
    }
    return "tokenizer/gpt2";
}

// ----------------------------------------------------------------------------------------------
// The tokenizer

struct GPT2Tokenizer {
    // Reads encoder.json + vocab.bpe (OpenAI's names) or vocab.json + merges.txt (Hugging Face's)
    // from `dir`. On failure returns false and sets *err (file name + what is wrong + what to do).
    bool load(const std::string& dir, std::string* err);
    // Encodes UTF-8 text exactly like tiktoken's "gpt2" encoding (encode_ordinary: the text
    // "<|endoftext|>" is ordinary text). Invalid UTF-8 -> false, *err names the byte offset.
    bool encode(const std::string& text, std::vector<int32_t>* ids, std::string* err) const;
    std::string decode(const int32_t* ids, size_t n) const;  // raw bytes (may be partial UTF-8); ids out of range are skipped
    bool decode_checked(const int32_t* ids, size_t n, std::string* out, std::string* err) const;  // ids out of range -> error
    int vocab_size() const { return (int)token_start.size() - 1; }  // 50257 for GPT-2
    int eot_id() const { return eot; }                               // 50256, "<|endoftext|>"; -1 if the vocabulary has none
    // Stable id of this vocabulary: "gpt2-bpe-" + 16 hex digits of FNV-1a 64 over the tokens (as raw
    // bytes, in id order) and the merges (in rank order); the same for either file naming.
    std::string identity() const { return identity_str; }

    // Token bytes: token id t is token_bytes[token_start[t] .. token_start[t+1]).
    std::string token_bytes;
    std::vector<uint32_t> token_start;  // (V+1)
    std::vector<int32_t> merge_rank;    // (V) rank of the merge that makes token t, or INT32_MAX
    std::vector<int32_t> hash_slots;    // open addressing: token id or -1; size a power of two
    int eot = -1;
    std::string identity_str;

    // Token id whose bytes are exactly s[0..n), or -1.
    int32_t find_token(const char* s, size_t n) const {
        size_t mask = hash_slots.size() - 1;
        for (size_t slot = fnv1a64(FNV1A64_OFFSET, s, n) & mask;; slot = (slot + 1) & mask) {
            int32_t t = hash_slots[slot];
            if (t < 0) return -1;
            if (token_start[t + 1] - token_start[t] == n && memcmp(&token_bytes[token_start[t]], s, n) == 0) return t;
        }
    }

    // Working memory of the byte-pair merging, reused across the pieces of one encode() call.
    struct MergeCandidate { int32_t rank; uint32_t left; uint32_t end; int32_t token; };  // merge parts [left, end)
    struct MergeScratch {
        std::vector<uint32_t> next, prev;
        std::vector<int32_t> id;
        std::vector<uint8_t> alive;
        std::vector<MergeCandidate> heap;
    };
    // Appends the ids of one pre-tokenised piece piece[0..n) to *ids (the byte-pair merging).
    void encode_piece(const char* piece, size_t n, std::vector<int32_t>* ids, MergeScratch* scratch) const;
};

// Reads a JSON object of string keys and integer values ({"tok": 0, ...}) from `text`, calling
// add(key, value) for each; returns false with *err naming the byte offset if it is malformed.
template <typename AddFn>
inline bool parse_json_string_to_int(const std::string& text, const std::string& path, AddFn add, std::string* err) {
    size_t i = 0, n = text.size();
    auto fail = [&](const char* what) {
        *err = path + ": byte offset " + std::to_string(i) + ": " + what +
               " (expected a JSON object mapping token strings to integer ids, as in GPT-2's encoder.json)";
        return false;
    };
    auto skip_space = [&] { while (i < n && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t')) i++; };
    auto hex4 = [&](uint32_t* v) {
        if (i + 4 > n) return false;
        *v = 0;
        for (int k = 0; k < 4; k++) {
            char c = text[i + k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0) return false;
            *v = *v * 16 + d;
        }
        i += 4;
        return true;
    };
    skip_space();
    if (i >= n || text[i] != '{') return fail("missing '{'");
    i++;
    skip_space();
    if (i < n && text[i] == '}') return fail("empty object");
    std::string key;
    while (true) {
        skip_space();
        if (i >= n || text[i] != '"') return fail("expected a string key");
        size_t key_offset = i;
        i++;
        key.clear();
        while (true) {
            if (i >= n) return fail("unterminated string");
            char c = text[i++];
            if (c == '"') break;
            if (c != '\\') { key.push_back(c); continue; }
            if (i >= n) return fail("unterminated escape");
            char e = text[i++];
            uint32_t cp;
            switch (e) {
                case '"': key.push_back('"'); break;
                case '\\': key.push_back('\\'); break;
                case '/': key.push_back('/'); break;
                case 'b': key.push_back('\b'); break;
                case 'f': key.push_back('\f'); break;
                case 'n': key.push_back('\n'); break;
                case 'r': key.push_back('\r'); break;
                case 't': key.push_back('\t'); break;
                case 'u':
                    if (!hex4(&cp)) return fail("bad \\u escape");
                    if (cp >= 0xD800 && cp <= 0xDBFF) {  // surrogate pair
                        uint32_t low;
                        if (i + 2 > n || text[i] != '\\' || text[i + 1] != 'u') return fail("lone surrogate in \\u escape");
                        i += 2;
                        if (!hex4(&low) || low < 0xDC00 || low > 0xDFFF) return fail("bad surrogate pair in \\u escape");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                        return fail("lone surrogate in \\u escape");
                    }
                    utf8_append(&key, cp);
                    break;
                default: return fail("unknown escape");
            }
        }
        skip_space();
        if (i >= n || text[i] != ':') return fail("expected ':'");
        i++;
        skip_space();
        long long value = 0;
        size_t digits = 0;
        while (i < n && text[i] >= '0' && text[i] <= '9' && digits < 10) { value = value * 10 + (text[i] - '0'); i++; digits++; }
        if (digits == 0) return fail("expected a non-negative integer id");
        if (!add(key, value, key_offset)) return false;
        skip_space();
        if (i < n && text[i] == ',') { i++; continue; }
        if (i < n && text[i] == '}') return true;
        return fail("expected ',' or '}'");
    }
}

inline bool GPT2Tokenizer::load(const std::string& dir, std::string* err) {
    std::string base = dir.empty() ? std::string(".") : dir;
    if (base.back() != '/') base += '/';
    std::string vocab_path = base + "encoder.json", merges_path = base + "vocab.bpe";
    std::string vocab_text, merges_text;
    if (!read_whole_file(vocab_path, &vocab_text) || !read_whole_file(merges_path, &merges_text)) {
        std::string openai_vocab = vocab_path, openai_merges = merges_path;
        vocab_path = base + "vocab.json";
        merges_path = base + "merges.txt";
        if (!read_whole_file(vocab_path, &vocab_text) || !read_whole_file(merges_path, &merges_text)) {
            *err = "cannot read a GPT-2 vocabulary in " + dir + ": need " + openai_vocab + " + " + openai_merges +
                   " (OpenAI's names) or " + vocab_path + " + " + merges_path +
                   " (Hugging Face's); the repository ships them in tokenizer/gpt2 (pass --tokenizer DIR "
                   "or set DPO_TOKENIZER_DIR, relative paths start from the current directory)";
            return false;
        }
    }

    // Vocabulary: token string (in the byte-to-unicode alphabet) -> id; ids must be 0..V-1.
    std::vector<int> to_byte = gpt2_unicode_to_byte();
    std::vector<std::pair<int64_t, std::string>> entries;  // (id, raw bytes)
    auto to_raw = [&](const std::string& shown, std::string* raw, size_t offset) {
        raw->clear();
        const unsigned char* s = (const unsigned char*)shown.data();
        for (size_t k = 0; k < shown.size();) {
            uint32_t cp = 0;
            const char* why = nullptr;
            int len = utf8_decode(s, shown.size(), k, &cp, &why);
            if (len == 0 || cp >= to_byte.size() || to_byte[cp] < 0) {
                char buf[64];
                snprintf(buf, sizeof(buf), "U+%04X", len ? cp : 0u);
                *err = "byte offset " + std::to_string(offset) + ": token \"" + shown + "\" has " +
                       (len ? std::string("character ") + buf : std::string("invalid UTF-8")) +
                       ", which is not in GPT-2's byte-to-unicode alphabet (is this a GPT-2 byte-level BPE file?)";
                return false;
            }
            raw->push_back((char)to_byte[cp]);
            k += len;
        }
        return true;
    };
    std::string raw;
    bool ok = parse_json_string_to_int(vocab_text, vocab_path, [&](const std::string& key, long long id, size_t offset) {
        if (!to_raw(key, &raw, offset)) { *err = vocab_path + ": " + *err; return false; }
        entries.emplace_back(id, raw);
        return true;
    }, err);
    if (!ok) return false;
    std::sort(entries.begin(), entries.end());
    for (size_t k = 0; k < entries.size(); k++) {
        if (entries[k].first != (int64_t)k) {
            *err = vocab_path + ": token ids must be 0.." + std::to_string(entries.size() - 1) + " each exactly once, but id " +
                   std::to_string(k) + " is " + (entries[k].first < (int64_t)k ? "repeated" : "missing") +
                   " (the file is damaged: fetch GPT-2's encoder.json again)";
            return false;
        }
    }
    if (entries.size() < 256) {
        *err = vocab_path + ": only " + std::to_string(entries.size()) + " tokens; a byte-level BPE vocabulary has all 256 bytes";
        return false;
    }
    token_bytes.clear();
    token_start.assign(1, 0);
    for (auto& e : entries) {
        token_bytes += e.second;
        token_start.push_back((uint32_t)token_bytes.size());
    }
    int V = (int)entries.size();
    size_t slots = 1;
    while (slots < 2 * (size_t)V) slots *= 2;
    hash_slots.assign(slots, -1);
    for (int t = 0; t < V; t++) {
        const char* s = &token_bytes[token_start[t]];
        size_t n = token_start[t + 1] - token_start[t];
        if (find_token(s, n) >= 0) {
            *err = vocab_path + ": token id " + std::to_string(t) + " has the same bytes as an earlier token (the file is damaged)";
            return false;
        }
        size_t slot = fnv1a64(FNV1A64_OFFSET, s, n) & (slots - 1);
        while (hash_slots[slot] >= 0) slot = (slot + 1) & (slots - 1);
        hash_slots[slot] = t;
    }
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        if (find_token(&c, 1) < 0) {
            *err = vocab_path + ": byte " + std::to_string(b) + " has no token; a byte-level BPE vocabulary has all 256 bytes";
            return false;
        }
    }
    eot = find_token("<|endoftext|>", 13);

    uint64_t hash = FNV1A64_OFFSET;
    for (int t = 0; t < V; t++) {
        uint32_t len = token_start[t + 1] - token_start[t];
        hash = fnv1a64(hash, &len, sizeof(len));
        hash = fnv1a64(hash, &token_bytes[token_start[t]], len);
    }

    // Merges: one "left right" pair per line, in priority order, after a "#version" line.
    merge_rank.assign(V, INT32_MAX);
    size_t pos = 0, line_no = 0;
    int32_t rank = 0;
    std::string left, right;
    while (pos < merges_text.size()) {
        size_t eol = merges_text.find('\n', pos);
        if (eol == std::string::npos) eol = merges_text.size();
        std::string line = merges_text.substr(pos, eol - pos);
        size_t line_offset = pos;
        pos = eol + 1;
        line_no++;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
        size_t sp = line.find(' ');
        if (sp == std::string::npos || sp == 0 || sp + 1 == line.size() || line.find(' ', sp + 1) != std::string::npos) {
            *err = merges_path + ":" + std::to_string(line_no) + ": expected two tokens separated by one space, got \"" + line +
                   "\" (is this GPT-2's vocab.bpe / merges.txt?)";
            return false;
        }
        if (!to_raw(line.substr(0, sp), &left, line_offset) || !to_raw(line.substr(sp + 1), &right, line_offset + sp + 1)) {
            *err = merges_path + ":" + std::to_string(line_no) + ": " + *err;
            return false;
        }
        std::string joined = left + right;
        int32_t t = find_token(joined.data(), joined.size());
        if (t < 0) {
            *err = merges_path + ":" + std::to_string(line_no) + ": the merge \"" + line + "\" makes a token that " + vocab_path +
                   " does not have (the two files do not belong together)";
            return false;
        }
        if (merge_rank[t] == INT32_MAX) merge_rank[t] = rank;
        rank++;
        uint32_t len = (uint32_t)left.size();
        hash = fnv1a64(hash, &len, sizeof(len));
        hash = fnv1a64(hash, left.data(), len);
        len = (uint32_t)right.size();
        hash = fnv1a64(hash, &len, sizeof(len));
        hash = fnv1a64(hash, right.data(), len);
    }
    if (rank == 0) {
        *err = merges_path + ": no merges found (is this GPT-2's vocab.bpe / merges.txt?)";
        return false;
    }
    char hex[17];
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)hash);
    identity_str = std::string("gpt2-bpe-") + hex;
    return true;
}

inline void GPT2Tokenizer::encode_piece(const char* piece, size_t n, std::vector<int32_t>* ids, MergeScratch* scratch) const {
    int32_t whole = find_token(piece, n);  // tiktoken's shortcut, and the fast path for common words
    if (whole >= 0 && whole != eot) { ids->push_back(whole); return; }
    // Parts form a linked list over the piece; part i covers bytes [i, next[i]) and has token id[i].
    // A min-heap of candidate merges (rank, left part) finds the best pair; entries made stale by
    // earlier merges are recognised (left part gone, or its right neighbour changed) and skipped.
    auto later = [](const MergeCandidate& a, const MergeCandidate& b) { return a.rank != b.rank ? a.rank > b.rank : a.left > b.left; };
    std::vector<uint32_t>& next = scratch->next;
    std::vector<uint32_t>& prev = scratch->prev;
    std::vector<int32_t>& id = scratch->id;
    std::vector<uint8_t>& alive = scratch->alive;
    std::vector<MergeCandidate>& heap = scratch->heap;
    next.resize(n);
    prev.resize(n);
    id.resize(n);
    alive.assign(n, 1);
    heap.clear();
    auto push_candidate = [&](uint32_t left) {
        uint32_t right = next[left];
        if (right >= n) return;
        uint32_t end = next[right];
        int32_t t = find_token(piece + left, end - left);
        if (t < 0 || merge_rank[t] == INT32_MAX) return;
        heap.push_back({merge_rank[t], left, end, t});
        std::push_heap(heap.begin(), heap.end(), later);
    };
    for (uint32_t i = 0; i < n; i++) {
        next[i] = i + 1;
        prev[i] = i == 0 ? UINT32_MAX : i - 1;
        id[i] = find_token(piece + i, 1);
    }
    for (uint32_t i = 0; i + 1 < n; i++) push_candidate(i);
    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), later);
        MergeCandidate c = heap.back();
        heap.pop_back();
        if (!alive[c.left] || next[c.left] >= n || next[next[c.left]] != c.end) continue;
        uint32_t right = next[c.left];
        alive[right] = 0;
        next[c.left] = c.end;
        if (c.end < n) prev[c.end] = c.left;
        id[c.left] = c.token;
        if (prev[c.left] != UINT32_MAX) push_candidate(prev[c.left]);
        push_candidate(c.left);
    }
    for (uint32_t i = 0; i < n; i = next[i]) ids->push_back(id[i]);
}

inline bool GPT2Tokenizer::encode(const std::string& text, std::vector<int32_t>* ids, std::string* err) const {
    ids->clear();
    const unsigned char* s = (const unsigned char*)text.data();
    size_t n = text.size();
    if (n >= UINT32_MAX) {
        *err = "text of " + std::to_string(n) + " bytes is too long to encode at once (limit 4 GiB): split it into documents";
        return false;
    }
    // Pass 1: validate and classify. Code point k starts at byte start[k] and has class cls[k].
    std::vector<uint32_t> start;
    std::vector<uint8_t> cls;
    start.reserve(n + 1);
    cls.reserve(n);
    const uint8_t* ascii = ascii_classes();
    for (size_t i = 0; i < n;) {
        start.push_back((uint32_t)i);
        if (s[i] < 0x80) { cls.push_back(ascii[s[i]]); i++; continue; }
        uint32_t cp;
        const char* why = nullptr;
        int len = utf8_decode(s, n, i, &cp, &why);
        if (len == 0) {
            char buf[160];
            snprintf(buf, sizeof(buf), "invalid UTF-8 at byte offset %zu (byte 0x%02X): %s", i, s[i], why);
            *err = buf;
            ids->clear();
            return false;
        }
        cls.push_back(unicode_class(cp));
        i += len;
    }
    size_t K = cls.size();
    start.push_back((uint32_t)n);
    // Pass 2: cut into pieces by GPT-2's regex (first matching alternative wins) and merge each.
    auto byte_at = [&](size_t k, size_t ahead) -> int {  // the byte `ahead` bytes after code point k, or -1
        size_t b = start[k] + ahead;
        return b < n ? s[b] : -1;
    };
    MergeScratch scratch;
    for (size_t k = 0; k < K;) {
        size_t end;
        int b0 = s[start[k]];
        int b1 = byte_at(k, 1), b2 = byte_at(k, 2);
        if (b0 == '\'' && (b1 == 's' || b1 == 't' || b1 == 'm' || b1 == 'd')) {
            end = k + 2;  // 's 't 'm 'd
        } else if (b0 == '\'' && ((b1 == 'r' && b2 == 'e') || (b1 == 'v' && b2 == 'e') || (b1 == 'l' && b2 == 'l'))) {
            end = k + 3;  // 're 've 'll
        } else {
            size_t first = (b0 == ' ' && k + 1 < K && cls[k + 1] != UC_SPACE) ? k + 1 : k;  // optional leading space
            uint8_t c = cls[first];
            end = first + 1;
            if (c != UC_SPACE) {  // ?\p{L}+  ?\p{N}+  ?[^\s\p{L}\p{N}]+
                while (end < K && cls[end] == c) end++;
            } else {  // \s+(?!\S) leaves the last whitespace of a run before a non-space; else \s+
                while (end < K && cls[end] == UC_SPACE) end++;
                if (end < K && end - k >= 2) end--;
            }
        }
        encode_piece(text.data() + start[k], start[end] - start[k], ids, &scratch);
        k = end;
    }
    return true;
}

inline std::string GPT2Tokenizer::decode(const int32_t* ids, size_t n) const {
    std::string out;
    int V = vocab_size();
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= V) continue;
        out.append(token_bytes, token_start[ids[i]], token_start[ids[i] + 1] - token_start[ids[i]]);
    }
    return out;
}

inline bool GPT2Tokenizer::decode_checked(const int32_t* ids, size_t n, std::string* out, std::string* err) const {
    int V = vocab_size();
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= V) {
            *err = "token id " + std::to_string(ids[i]) + " at position " + std::to_string(i) + " is out of range [0, " +
                   std::to_string(V) + ") for this vocabulary (" + identity_str + ")";
            return false;
        }
    }
    *out = decode(ids, n);
    return true;
}
