// The project's hashes, all 64-bit FNV-1a based:
//   fnv1a64      byte-wise FNV-1a, continuing from a state (the pair file's header and content
//                hashes, the tokenizer's identity and its hash tables: fixed by file formats)
//   hash_bytes   FNV-1a over 8-byte words, then a final mix; fast, used to key checkpoints and
//                reference caches to the exact model and data they belong to
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

static const uint64_t FNV1A64_OFFSET = 0xcbf29ce484222325ull;
static const uint64_t FNV1A64_PRIME = 0x100000001b3ull;

inline uint64_t fnv1a64(uint64_t h, const void* data, size_t n) {
    const unsigned char* p = (const unsigned char*)data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * FNV1A64_PRIME;
    return h;
}

inline uint64_t hash_bytes(const void* data, size_t n, uint64_t h = FNV1A64_OFFSET) {
    const unsigned char* p = (const unsigned char*)data;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * FNV1A64_PRIME;
    }
    for (; i < n; i++) h = (h ^ p[i]) * FNV1A64_PRIME;
    h ^= h >> 33; h *= 0xff51afd7ed558ccdull; h ^= h >> 33;
    return h;
}
