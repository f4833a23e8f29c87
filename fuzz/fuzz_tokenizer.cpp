// libFuzzer target: tokenizer/gpt2_tokenizer.h with GPT-2's vocabulary (tokenizer/gpt2; run from
// the repository root). Encodes the input as text: valid UTF-8 must encode and decode back to
// itself, invalid UTF-8 must be refused; then decodes the input read as int32 ids (any values),
// with decode (skips ids out of range) and decode_checked (refuses them).
#include <cstring>
#include "tokenizer/gpt2_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static GPT2Tokenizer tok;
    static bool loaded = [] {
        std::string err;
        if (!tok.load("tokenizer/gpt2", &err)) { fprintf(stderr, "%s (run from the repository root)\n", err.c_str()); abort(); }
        return true;
    }();
    (void)loaded;
    std::string text((const char*)data, size), err;
    std::vector<int32_t> ids;
    if (tok.encode(text, &ids, &err)) {
        if (tok.decode(ids.data(), ids.size()) != text) { fprintf(stderr, "encode/decode round trip differs\n"); abort(); }
    } else if (err.empty()) {
        abort();
    }
    std::vector<int32_t> raw(size / 4);
    if (!raw.empty()) memcpy(raw.data(), data, raw.size() * 4);
    std::string out = tok.decode(raw.data(), raw.size());
    bool ok = tok.decode_checked(raw.data(), raw.size(), &out, &err);
    bool all_in_range = true;
    for (int32_t id : raw) all_in_range &= id >= 0 && id < tok.vocab_size();
    if (ok != all_in_range) abort();
    return 0;
}
