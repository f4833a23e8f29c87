// A fast 64-bit content hash (FNV-1a over 8-byte words, then a final mix) used to key
// checkpoints and reference caches to the exact model and data they belong to.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

inline uint64_t hash_bytes(const void* data, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
    const unsigned char* p = (const unsigned char*)data;
    const uint64_t prime = 0x100000001b3ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * prime;
    }
    for (; i < n; i++) h = (h ^ p[i]) * prime;
    h ^= h >> 33; h *= 0xff51afd7ed558ccdull; h ^= h >> 33;
    return h;
}
