// In-memory preference pairs: token ids of prompt, chosen and rejected, for every pair of a
// dataset, in one flat array. The binary pair file (data/pairfile.h) loads into this; tests
// build it directly.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

struct PairRef {
    int64_t offset;   // index into PairSet::tokens of the prompt's first token
    int32_t P, C, R;  // lengths; prompt, chosen, rejected follow each other from offset
};

// One pair's tokens by pointer: prompt p[0..P), chosen c[0..C), rejected r[0..R).
struct PairTokens {
    const int32_t* p; int P;
    const int32_t* c; int C;
    const int32_t* r; int R;
};

struct PairSet {
    std::vector<int32_t> tokens;   // all pairs' tokens: p[0..P) c[0..C) r[0..R) per pair
    std::vector<PairRef> pairs;
    int vocab_size = 50257;        // token ids are < vocab_size
    std::string tokenizer_id;      // identity of the tokenizer that wrote the tokens ("" = unknown)
    uint64_t content_hash = 0;     // hash of the pair file's contents (keys the reference cache)

    size_t size() const { return pairs.size(); }
    const int32_t* prompt(size_t i) const { return &tokens[pairs[i].offset]; }
    const int32_t* chosen(size_t i) const { return prompt(i) + pairs[i].P; }
    const int32_t* rejected(size_t i) const { return chosen(i) + pairs[i].C; }
    PairTokens tokens_of(size_t i) const {
        return {prompt(i), pairs[i].P, chosen(i), pairs[i].C, rejected(i), pairs[i].R};
    }
    void add(const std::vector<int32_t>& p, const std::vector<int32_t>& c, const std::vector<int32_t>& r) {
        PairRef ref{(int64_t)tokens.size(), (int32_t)p.size(), (int32_t)c.size(), (int32_t)r.size()};
        tokens.insert(tokens.end(), p.begin(), p.end());
        tokens.insert(tokens.end(), c.begin(), c.end());
        tokens.insert(tokens.end(), r.begin(), r.end());
        pairs.push_back(ref);
    }
};
